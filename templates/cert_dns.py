"""cert-dns: the ACM certificate for *.<domain> and <domain>, validated by DNS in the domain's
existing public hosted zone (ExistingHostedZoneId). The certificate survives stack deletion.

The zone is not created here: a zone created in the same stack is not yet delegated from the
registrar, so ACM's DNS validation could never finish and the stack would wait for 72 hours.
`make zone` creates a zone once per domain, prints its name servers for the registrar and waits
until DNS answers with them (scripts/deploy/zone.py)."""

from troposphere import Equals, Not, Sub, Template
from troposphere.certificatemanager import Certificate, DomainValidationOption

from templates import inputs
from templates.common import RETAIN, add_outputs, new_template, skip_checkov


def build() -> Template:
    t = new_template("StartupWebApp cert-dns: the wildcard ACM certificate, validated by DNS in the domain's hosted zone.")
    domain = inputs.add(t, "DomainName")
    zone = inputs.add(t, "ExistingHostedZoneId")
    # CloudFormation checks rules before it changes anything, in the console too.
    # https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/rules-section-structure.html
    t.add_rule(
        "HostedZoneGiven",
        {
            "Assertions": [
                {
                    "Assert": Not(Equals(zone.ref(), "")),
                    "AssertDescription": "ExistingHostedZoneId must name the domain's delegated public hosted zone (make zone creates one)",
                }
            ]
        },
    )
    wildcard = Sub("*.${DomainName}")
    certificate = t.add_resource(
        Certificate(
            "Certificate",
            DomainName=wildcard,
            SubjectAlternativeNames=[domain.ref()],
            ValidationMethod="DNS",
            Metadata=skip_checkov(("CKV2_AWS_71", "The plan asks for *.<domain>: api and later hosts share one certificate.")),
            # ACM validates *.<domain> and <domain> with one and the same CNAME record; an entry for
            # each would have CloudFormation write that record twice, which Route 53 rejects. One entry,
            # for the certificate's DomainName itself: CloudFormation writes the validation record only
            # when DomainName is identical to a DomainName in DomainValidationOptions.
            # https://docs.aws.amazon.com/acm/latest/userguide/dns-validation.html
            # https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-certificatemanager-certificate.html
            DomainValidationOptions=[DomainValidationOption(DomainName=wildcard, HostedZoneId=zone.ref())],
            **RETAIN,
        )
    )
    add_outputs(
        t,
        {
            "CertificateArn": (certificate.ref(), "ARN of the *.<domain> certificate."),
            "HostedZoneId": (zone.ref(), "Hosted zone of the domain."),
            "DomainName": (domain.ref(), "The apex domain."),
        },
    )
    return t
