"""scripts/deploy/zone.py's DNS look-up against a DNS server of our own on 127.0.0.1 (never the network)."""

import socket
import threading
import time
import types

import dns.flags
import dns.message
import dns.rcode
import dns.resolver
import dns.rrset
import pytest

from scripts.deploy import zone

DOMAIN = "startupwebapp.com"
SERVERS = ["ns-1.awsdns-01.org.", "ns-2.awsdns-02.co.uk."]


class DnsServer:
    """Answers NS queries for DOMAIN with SERVERS, NXDOMAIN for any other name; silent if mute."""

    def __init__(self, mute=False):
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.bind(("127.0.0.1", 0))
        self.socket.settimeout(0.1)
        self.mute, self.running = mute, True
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    @property
    def port(self):
        return self.socket.getsockname()[1]

    def serve(self):
        while self.running:
            try:
                data, client = self.socket.recvfrom(512)
            except TimeoutError:
                continue
            if self.mute:
                continue
            query = dns.message.from_wire(data)
            response = dns.message.make_response(query)
            response.flags |= dns.flags.RA
            name = query.question[0].name
            if name.to_text() == f"{DOMAIN}.":
                response.answer.append(dns.rrset.from_text_list(name, 300, "IN", "NS", SERVERS))
            else:
                response.set_rcode(dns.rcode.NXDOMAIN)
            self.socket.sendto(response.to_wire(), client)

    def resolver(self):
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers, resolver.port = ["127.0.0.1"], self.port
        return resolver

    def stop(self):
        self.running = False
        self.thread.join(timeout=5)
        self.socket.close()


@pytest.fixture
def server():
    running = DnsServer()
    yield running
    running.stop()


def test_the_name_servers_dns_answers_with_are_read_and_normalised(server):
    answered = zone.public_name_servers(DOMAIN, server.resolver())
    assert answered == {"ns-1.awsdns-01.org", "ns-2.awsdns-02.co.uk"}  # without the final dot
    assert zone.delegated([name.upper() for name in SERVERS], answered)
    assert not zone.delegated(SERVERS[:1], answered)  # a registrar listing other servers too is not delegated
    assert not zone.delegated(SERVERS, {"ns-1.awsdns-01.org"})  # nor one listing only some of the zone's
    assert not zone.delegated(SERVERS, set())  # nor a domain DNS gives no name servers for


def test_an_unknown_domain_has_no_name_servers(server):
    answered = zone.public_name_servers("not-registered.example", server.resolver())
    assert answered == set()
    assert zone.heard_from(answered) == "no name servers"  # DNS answered: not said as no answer
    assert zone.heard_from(None) == "no answer from DNS"


def test_dns_that_does_not_answer_is_none_within_the_time_limit(monkeypatch):
    monkeypatch.setattr(zone, "DNS_TIMEOUT_SECONDS", 0.5)
    mute = DnsServer(mute=True)
    try:
        started = time.monotonic()
        assert zone.public_name_servers(DOMAIN, mute.resolver()) is None
        assert time.monotonic() - started < 2  # the limit, not dnspython's own 5 s
        assert not zone.delegated(SERVERS, None)  # not delegated yet, not a traceback: make zone asks again
    finally:
        mute.stop()


def test_a_machine_with_no_name_server_configured_gets_no_answer_not_a_traceback(monkeypatch, tmp_path):
    # dnspython reads /etc/resolv.conf when the resolver is made: with no name server in it, it
    # raises NoResolverConfiguration. No answer from DNS, as when DNS does not answer.
    import functools

    import dns.resolver

    empty = tmp_path / "resolv.conf"
    empty.write_text("# no nameserver line\n")
    monkeypatch.setattr(dns.resolver, "Resolver", functools.partial(dns.resolver.Resolver, filename=str(empty)))
    with pytest.raises(dns.resolver.NoResolverConfiguration):
        dns.resolver.Resolver()
    assert zone.public_name_servers(DOMAIN) is None


def test_a_subdomains_zone_or_a_private_zone_of_the_domain_is_not_its_public_zone():
    # ListHostedZonesByName lists the zones from DNSName on, in order: a subdomain's follows the domain's.
    listed = [
        {"Id": "/hostedzone/ZPRIVATE", "Name": f"{DOMAIN}.", "CallerReference": "a", "Config": {"PrivateZone": True}},
        {"Id": "/hostedzone/ZSUB", "Name": f"app.{DOMAIN}.", "CallerReference": "b", "Config": {"PrivateZone": False}},
    ]
    route53 = types.SimpleNamespace(list_hosted_zones_by_name=lambda **given: {"HostedZones": listed}, get_hosted_zone=pytest.fail)
    assert zone.public_zone(route53, DOMAIN, pytest.fail, "found {}") is None


def test_two_public_zones_of_the_domain_are_refused_not_one_picked():
    listed = [
        {"Id": f"/hostedzone/{zone_id}", "Name": f"{DOMAIN}.", "CallerReference": zone_id, "Config": {"PrivateZone": False}}
        for zone_id in ("ZONE1", "ZONE2")
    ]
    route53 = types.SimpleNamespace(list_hosted_zones_by_name=lambda **given: {"HostedZones": listed}, get_hosted_zone=pytest.fail)
    with pytest.raises(zone.ZoneError, match=f"the account has 2 public zones for {DOMAIN}: ZONE1, ZONE2; "):
        zone.public_zone(route53, DOMAIN, pytest.fail, "found {}")


def test_a_private_zone_listed_without_config_is_not_taken_for_the_public_zone():
    # HostedZone's Config: "If you omitted the HostedZoneConfig and Comment elements from the request, the Config and
    # Comment elements don't appear in the response" (https://docs.aws.amazon.com/Route53/latest/APIReference/API_HostedZone.html),
    # and a private zone is made by giving a VPC alone: listed with no Config, it passed for public, and GetHostedZone's
    # answer for it, which holds VPCs and no DelegationSet, stopped make zone with a KeyError.
    import boto3
    from botocore.stub import Stubber

    route53 = boto3.client("route53", region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")
    listed = {
        "HostedZones": [{"Id": "/hostedzone/ZPRIVATE", "Name": f"{DOMAIN}.", "CallerReference": "made-with-a-vpc-alone"}],
        "DNSName": DOMAIN,
        "IsTruncated": False,
        "MaxItems": "100",
    }
    private = {
        "HostedZone": {"Id": "/hostedzone/ZPRIVATE", "Name": f"{DOMAIN}.", "CallerReference": "made-with-a-vpc-alone"},
        "VPCs": [{"VPCRegion": "us-east-1", "VPCId": "vpc-0a1b2c3d4e5f60718"}],
    }
    with Stubber(route53) as stubbed:
        stubbed.add_response("list_hosted_zones_by_name", listed, {"DNSName": DOMAIN, "MaxItems": "100"})
        stubbed.add_response("get_hosted_zone", private, {"Id": "ZPRIVATE"})
        assert (
            zone.public_zone(route53, DOMAIN, lambda *lines: None, "found {}") is None
        )  # not a public zone: make zone offers to create one


def test_a_public_zone_listed_without_config_is_found_with_one_get_hosted_zone_and_a_subdomains_is_not_read():
    # `aws route53 create-hosted-zone --name <domain> --caller-reference <ref>` (no --hosted-zone-config) makes a public
    # zone listed without Config (API_HostedZone.html): GetHostedZone's DelegationSet says it is public, and that answer
    # gives its name servers (no second GetHostedZone). A subdomain's zone listed without Config is no zone of the domain:
    # not read (each GetHostedZone is one more request that AccessDenied or a zone deleted meanwhile can stop).
    import boto3
    from botocore.stub import Stubber

    route53 = boto3.client("route53", region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")
    public = {"Id": "/hostedzone/ZPUBLIC", "Name": f"{DOMAIN}.", "CallerReference": "cli"}
    subdomain = {"Id": "/hostedzone/ZSUB", "Name": f"dev.{DOMAIN}.", "CallerReference": "cli-too"}
    listed = {"HostedZones": [public, subdomain], "DNSName": DOMAIN, "IsTruncated": False, "MaxItems": "100"}
    servers = ["ns-1.awsdns-01.org", "ns-2.awsdns-02.co.uk", "ns-3.awsdns-03.com", "ns-4.awsdns-04.net"]
    with Stubber(route53) as stubbed:
        stubbed.add_response("list_hosted_zones_by_name", listed, {"DNSName": DOMAIN, "MaxItems": "100"})
        stubbed.add_response("get_hosted_zone", {"HostedZone": public, "DelegationSet": {"NameServers": servers}}, {"Id": "ZPUBLIC"})
        said = []
        assert zone.public_zone(route53, DOMAIN, said.append, "found {}") == ("ZPUBLIC", servers)
        assert said == [f"{DOMAIN}: found ZPUBLIC"]
        stubbed.assert_no_pending_responses()


def test_a_zone_listed_as_public_that_get_hosted_zone_describes_as_private_is_one_line():
    # Listed with a Config that leaves PrivateZone out (the API reference makes it optional), described with no
    # DelegationSet: said as a private zone, not a KeyError at its name servers.
    import boto3
    from botocore.stub import Stubber

    route53 = boto3.client("route53", region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")
    listed_zone = {"Id": "/hostedzone/ZODD", "Name": f"{DOMAIN}.", "CallerReference": "odd", "Config": {"Comment": "made by hand"}}
    listed = {"HostedZones": [listed_zone], "DNSName": DOMAIN, "IsTruncated": False, "MaxItems": "100"}
    private = {"HostedZone": listed_zone, "VPCs": [{"VPCRegion": "us-east-1", "VPCId": "vpc-0a1b2c3d4e5f60718"}]}
    with Stubber(route53) as stubbed:
        stubbed.add_response("list_hosted_zones_by_name", listed, {"DNSName": DOMAIN, "MaxItems": "100"})
        stubbed.add_response("get_hosted_zone", private, {"Id": "ZODD"})
        with pytest.raises(zone.ZoneError, match="zone ZODD is listed as public, but GetHostedZone gives it no name servers"):
            zone.public_zone(route53, DOMAIN, pytest.fail, "found {}")
