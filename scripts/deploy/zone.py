"""The domain's public hosted zone and its delegation: `make zone ENV=<env>`.

ACM validates the cert-dns layer's certificate by a CNAME record in the domain's hosted zone, and
that record only resolves once the registrar delegates the domain to the zone's four name servers.
A zone created in the same stack as the certificate never is, and the stack waits 72 hours, so the
zone is made here, once per domain, as its own explicit step: find the domain's public zone or
create it, print the name servers to set at the registrar, and wait until public DNS answers with
them. https://docs.aws.amazon.com/Route53/latest/DeveloperGuide/GetInfoAboutHostedZone.html
https://docs.aws.amazon.com/Route53/latest/DeveloperGuide/migrate-dns-domain-in-use.html

A zone is never deleted here: it holds the domain's records, and destroy leaves it too."""

from botocore.exceptions import ClientError

from scripts.deploy.aws import error_code
from templates import PROJECT
from templates.errors import ToolError

DNS_TIMEOUT_SECONDS = 5  # one NS look-up, all retries of the resolver included
CHECK_EVERY_SECONDS = 30  # between two look-ups while waiting for the registrar


class ZoneError(ToolError):
    """Stops `make zone` with its message; the deployer turns it into its Failure."""


def public_name_servers(domain: str, resolver=None) -> set[str] | None:
    """The name servers public DNS gives for the domain (lower case, no final dot): empty when it
    has none; None when DNS did not answer within DNS_TIMEOUT_SECONDS. resolver: a
    dns.resolver.Resolver (default: the system's)."""
    import dns.exception  # here: dnspython takes 70 ms to import, and only a few commands ask DNS
    import dns.resolver

    try:
        resolver = resolver or dns.resolver.Resolver()  # NoResolverConfiguration: no name server in /etc/resolv.conf
        answer = resolver.resolve(domain, "NS", lifetime=DNS_TIMEOUT_SECONDS)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return set()
    except dns.exception.DNSException:  # a timeout, no name server answering or none configured
        return None
    return {normal(record.target.to_text()) for record in answer}


def normal(name: str) -> str:
    return name.rstrip(".").lower()


def heard_from(answered) -> str:
    return "no answer from DNS" if answered is None else ", ".join(sorted(normal(n) for n in answered)) or "no name servers"


def delegated(name_servers, answered) -> bool:
    return answered is not None and {normal(n) for n in answered} == {normal(n) for n in name_servers}


def find_or_create(route53, domain: str, given_id: str, env: str, confirm, say, caller_reference: str) -> tuple[str, list[str]]:
    """(zone id, its name servers): the zone ExistingHostedZoneId names, else the account's one
    public zone of the domain, else a new one once confirmed (confirm: Deployer.confirm, which stops the run if not)."""
    if given_id:
        return given_id, name_servers(given_zone(route53, given_id, domain), given_id, domain)
    found = public_zone(route53, domain, say, "found its public hosted zone {}")
    if found:
        return found
    confirm(
        f"create a public hosted zone for {domain} (about $0.50 a month)? [y/N] ",
        f"{domain} has no public hosted zone and none was created",
        "create it",
    )
    # Looked for again: another make zone of the domain (another environment's, or a second terminal)
    # may have made one while the question was open, and a second zone would leave the domain
    # delegated to one and the certificate's record in the other.
    found = public_zone(route53, domain, say, "a public hosted zone, {}, was made while you answered: using it, not making a second")
    if found:
        return found
    try:
        created = route53.create_hosted_zone(
            Name=domain,
            CallerReference=caller_reference,
            HostedZoneConfig={"Comment": f"{PROJECT} public zone, made by make zone ENV={env}", "PrivateZone": False},
        )
        zone_id, servers = created["HostedZone"]["Id"].split("/")[-1], created["DelegationSet"]["NameServers"]
    except ClientError as error:
        # botocore's retry of a request whose answer was lost: Route 53 "returns this error when a hosted zone
        # has already been created with the specified CallerReference", this run's own (random, commands.py zone).
        # https://docs.aws.amazon.com/Route53/latest/APIReference/API_CreateHostedZone.html
        if error_code(error) != "HostedZoneAlreadyExists":
            raise
        # The zone of this reference, which ListHostedZonesByName names (HostedZone's CallerReference): not
        # any zone of the domain, which another run may have made meanwhile under another reference.
        listed = route53.list_hosted_zones_by_name(DNSName=domain, MaxItems="100")["HostedZones"]
        made = [z["Id"].split("/")[-1] for z in listed if z.get("CallerReference") == caller_reference]
        if not made:
            raise
        zone_id = made[0]
        say(f"{domain}: the public hosted zone {zone_id} was made by this run's request, whose answer was lost")
        servers = route53.get_hosted_zone(Id=zone_id)["DelegationSet"]["NameServers"]
    route53.change_tags_for_resource(ResourceType="hostedzone", ResourceId=zone_id, AddTags=[{"Key": "Project", "Value": PROJECT}])
    say(f"{domain}: created the public hosted zone {zone_id}")
    return zone_id, servers


def public_zone(route53, domain: str, say, found_text: str) -> tuple[str, list[str]] | None:
    """(zone id, its name servers) of the account's one public zone of the domain, said with
    found_text ({}: its id); None when it has none; ZoneError when it has several."""
    listed = route53.list_hosted_zones_by_name(DNSName=domain, MaxItems="100")["HostedZones"]
    # A zone made without HostedZoneConfig is listed without Config ("the Config and Comment elements don't appear in
    # the response": https://docs.aws.amazon.com/Route53/latest/APIReference/API_HostedZone.html), a private one made
    # with a VPC alone too: GetHostedZone tells, a public zone's answer holding its DelegationSet, a private one's VPCs.
    named = {z["Id"].split("/")[-1]: z for z in listed if normal(z["Name"]) == domain}  # zone id -> the listed zone
    described = {zone_id: route53.get_hosted_zone(Id=zone_id) for zone_id, z in named.items() if "Config" not in z}
    public = [
        zone_id for zone_id, z in named.items() if (not z["Config"].get("PrivateZone") if "Config" in z else is_public(described[zone_id]))
    ]
    if len(public) > 1:
        raise ZoneError(
            f"the account has {len(public)} public zones for {domain}: {', '.join(public)}; "
            "set parameters.ExistingHostedZoneId to the one the registrar delegates to"
        )
    if not public:
        return None
    answer = described.get(public[0]) or route53.get_hosted_zone(Id=public[0])
    if not is_public(answer):  # listed as public (its Config without PrivateZone), described as private
        raise ZoneError(
            f"{domain}: zone {public[0]} is listed as public, but GetHostedZone gives it no name servers (a private zone); "
            "set parameters.ExistingHostedZoneId to the public zone the registrar delegates to"
        )
    say(f"{domain}: {found_text.format(public[0])}")
    return public[0], answer["DelegationSet"]["NameServers"]


def is_public(answer: dict) -> bool:
    """A GetHostedZone answer is of a public zone: a private one has VPCs and no DelegationSet, and may say PrivateZone.
    https://docs.aws.amazon.com/Route53/latest/APIReference/API_GetHostedZone.html"""
    return not answer["HostedZone"].get("Config", {}).get("PrivateZone") and "DelegationSet" in answer


def zone_allowed(domain) -> str:
    return f'allowed: the id of {domain}\'s public zone; to have make zone find or create it, set ExistingHostedZoneId: "" first'


def given_zone(route53, given_id: str, domain: str) -> dict:
    """GetHostedZone's answer for the zone ExistingHostedZoneId names: a zone of this account, of the domain."""
    try:
        found = route53.get_hosted_zone(Id=given_id)
    except route53.exceptions.NoSuchHostedZone:
        raise ZoneError(
            f"parameters.ExistingHostedZoneId: {given_id} is not a hosted zone of this account (are the credentials "
            f"those of the right account?); {zone_allowed(domain)}"
        ) from None
    if normal(found["HostedZone"]["Name"]) != domain:
        raise ZoneError(
            f"parameters.ExistingHostedZoneId: {given_id} is the zone of {normal(found['HostedZone']['Name'])}, not of {domain}; "
            + zone_allowed(domain)
        )
    return found


def name_servers(found: dict, zone_id: str, domain: str) -> list[str]:
    """The name servers of a GetHostedZone answer. A private zone has none (no DelegationSet), and
    ACM "cannot validate resources in an Amazon VPC private hosted zone": ZoneError.
    https://docs.aws.amazon.com/acm/latest/userguide/domain-ownership-validation.html"""
    if not is_public(found):
        raise ZoneError(
            f"parameters.ExistingHostedZoneId: {zone_id} is a private hosted zone, in which ACM cannot validate a certificate; "
            f"allowed: the id of {domain}'s public zone (make zone finds or creates it)"
        )
    return found["DelegationSet"]["NameServers"]


def wait_for_delegation(domain, name_servers, resolve, timeout, sleep, clock, say) -> bool:
    """Ask public DNS every CHECK_EVERY_SECONDS, for at most timeout seconds; True once delegated."""
    deadline = clock() + timeout
    while True:
        answered = resolve(domain)
        if delegated(name_servers, answered):
            return True
        heard = heard_from(answered)
        left = deadline - clock()
        if left <= 0:
            say(f"  DNS still answers for {domain}: {heard}")
            return False
        say(f"  not delegated yet: DNS answers for {domain}: {heard}; asking again in {CHECK_EVERY_SECONDS} s ({int(left)} s left)")
        sleep(min(CHECK_EVERY_SECONDS, left))
