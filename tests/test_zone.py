"""scripts/deploy/zone.py's DNS look-up against a DNS server of our own on 127.0.0.1 (never the network)."""

import socket
import threading
import time

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


def test_an_unknown_domain_has_no_name_servers(server):
    assert zone.public_name_servers("not-registered.example", server.resolver()) == set()


def test_dns_that_does_not_answer_is_none_within_the_time_limit(monkeypatch):
    monkeypatch.setattr(zone, "DNS_TIMEOUT_SECONDS", 0.5)
    mute = DnsServer(mute=True)
    try:
        started = time.monotonic()
        assert zone.public_name_servers(DOMAIN, mute.resolver()) is None
        assert time.monotonic() - started < 2  # the limit, not dnspython's own 5 s
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
