"""cert-dns: the Route 53 hosted zone (new, or an existing one) and the ACM certificate for
*.<domain> and <domain>, validated by DNS in that zone. Both survive stack deletion."""

from troposphere import Equals, If, Sub, Template
from troposphere.certificatemanager import Certificate, DomainValidationOption
from troposphere.route53 import HostedZone, HostedZoneConfiguration

from templates import inputs
from templates.common import RETAIN, add_outputs, new_template, skip_checkov


def build() -> Template:
    t = new_template("StartupWebApp cert-dns: hosted zone and the wildcard ACM certificate validated by DNS.")
    domain = inputs.add(t, "DomainName")
    existing_zone = inputs.add(t, "ExistingHostedZoneId")
    t.add_condition("CreateHostedZone", Equals(existing_zone.ref(), ""))

    zone = t.add_resource(
        HostedZone(
            "HostedZone",
            Condition="CreateHostedZone",
            Name=domain.ref(),
            HostedZoneConfig=HostedZoneConfiguration(Comment="StartupWebApp public zone"),
            **RETAIN,
        )
    )
    zone_id = If("CreateHostedZone", zone.ref(), existing_zone.ref())
    wildcard = Sub("*.${DomainName}")
    certificate = t.add_resource(
        Certificate(
            "Certificate",
            DomainName=wildcard,
            SubjectAlternativeNames=[domain.ref()],
            ValidationMethod="DNS",
            Metadata=skip_checkov(("CKV2_AWS_71", "The plan asks for *.<domain>: api and later hosts share one certificate.")),
            DomainValidationOptions=[
                DomainValidationOption(DomainName=wildcard, HostedZoneId=zone_id),
                DomainValidationOption(DomainName=domain.ref(), HostedZoneId=zone_id),
            ],
            **RETAIN,
        )
    )
    add_outputs(
        t,
        {
            "CertificateArn": (certificate.ref(), "ARN of the *.<domain> certificate."),
            "HostedZoneId": (zone_id, "Hosted zone of the domain."),
            "DomainName": (domain.ref(), "The apex domain."),
        },
    )
    return t
