"""make verify's checks against local HTTP and HTTPS servers on 127.0.0.1 with a test CA, and
the AWS checks against botocore's Stubber."""

import datetime
import gc
import io
import json
import os
import re
import shlex
import shutil
import socket
import ssl
import subprocess
import threading
import time
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import pytest
import yaml
from botocore.stub import Stubber
from conftest import ROOT, no_real_aws, within
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

import templates
from scripts import deploy, verify
from templates.inputs import INPUTS
from templates.params import load

HOST = "api.example.test"
PROD_SMOKE = load(ROOT / "params" / "prod.yaml").smoke_checks  # what make verify ENV=prod checks besides /health


def make_certificate(name, issuer_key, issuer_name, key, ca=False):
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=90))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pki")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "verify test CA")])
    ca = make_certificate("verify test CA", ca_key, ca_name, ca_key, ca=True)
    (folder / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    for host in (HOST, "wrong.example.test"):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = make_certificate(host, ca_key, ca_name, key)
        (folder / f"{host}.pem").write_bytes(
            cert.public_bytes(serialization.Encoding.PEM)
            + key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        )
    return folder


class Site:
    """What the servers answer; tests change it."""

    def __init__(self):
        self.redirect = True
        self.redirect_status = 301  # what the redirect answers
        self.location = None  # where the redirect points; None: https:// with the request's host and path
        self.location_header = "Location"  # its name as sent: any case is the same header
        self.requests = []  # (scheme, path) of every request served
        self.health = (200, {"status": "healthy", "database": "ok"})
        self.health_path = "/health"  # where the application answers health checks
        self.paths = {"/api/user/login": 200}


def serve(site, tls_context=None):
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            site.requests.append(("http" if tls_context is None else "https", self.path))
            if tls_context is None:
                if site.redirect:
                    self.send_response(site.redirect_status)
                    self.send_header(site.location_header, site.location or f"https://{self.headers['Host']}{self.path}")
                else:
                    self.send_response(200)
                self.end_headers()
                return
            status, body = site.health if self.path == site.health_path else (site.paths.get(self.path, 404), {})
            payload = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if tls_context is not None:
        server.socket = tls_context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    return server


@pytest.fixture
def servers(pki):
    """(site, endpoint factory taking the certificate's host name)."""
    site = Site()
    started = []

    def endpoint(certificate_host=HOST, ca=True):
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(pki / f"{certificate_host}.pem")
        https = serve(site, context)
        http = serve(site)
        started.extend([https, http])
        connect_to = {(HOST, 443): https.server_address, (HOST, 80): http.server_address}
        return verify.Endpoint(connect_to, ca_bundle=str(pki / "ca.pem") if ca else None, timeout=5)

    yield site, endpoint
    for server in started:
        server.shutdown()
        server.server_close()


def test_a_lower_case_location_header_and_an_upper_case_host_pass(servers):
    # Header names and host names are case-insensitive (a proxy may lower-case the one, an output the other).
    site, endpoint = servers
    site.location_header = "location"
    results = by_name(verify.run_checks(endpoint(), HOST.upper()))
    assert all(r.ok for r in results.values()), [r.line() for r in results.values()]


def test_on_aws_the_rollout_check_is_of_the_task_definition_the_stack_deployed(servers):
    site, endpoint = servers
    ecs, stub = stubbed("ecs")
    ecs_rolled_back = service_response("COMPLETED", 2, 2, task_definition=TASK_DEFINITION.replace(":7", ":6"))
    stub.add_response("describe_services", ecs_rolled_back, {"cluster": "c", "services": ["svc"]})
    with stub:
        results = by_name(verify.run_checks(endpoint(), HOST, ecs=ecs, cluster="c", service="svc", task_definition=TASK_DEFINITION))
    assert results["ecs rollout"].ok is False and "but the stack's is svc-task:7" in results["ecs rollout"].detail


def test_with_connect_to_given_a_port_it_leaves_out_is_skipped_and_never_requested(servers, monkeypatch):
    # Not AWS_ENDPOINT_URL: before, the unmapped port 80 went to the public host.
    _, endpoint = servers
    given = endpoint()
    del given.connect_to[(HOST, 80)]
    connected = []
    connect = verify.connect

    def recorded(address, *args, **kwargs):
        connected.append(address)
        return connect(address, *args, **kwargs)

    monkeypatch.setattr(verify, "connect", recorded)
    results = by_name(verify.run_checks(given, HOST))
    assert results["http redirects to https"].skipped and "not in CONNECT_TO" in results["http redirects to https"].detail
    assert results["https /health"].ok and connected and all(address[0] == "127.0.0.1" for address in connected), connected


@pytest.fixture
def dropping():
    """An address on loopback that drops connections, as a firewall does: a listener whose queue of
    connections not yet accepted is full, so that the kernel drops further SYNs."""
    server = socket.create_server(("127.0.0.1", 0), backlog=0)
    queued = [socket.create_connection(server.getsockname(), timeout=1)]
    for _ in range(3):  # until one is dropped: the queue is full then
        attempt = socket.socket()
        attempt.settimeout(0.2)
        try:
            attempt.connect(server.getsockname())
            queued.append(attempt)
        except TimeoutError:
            attempt.close()
            break
    yield server.getsockname()
    for sock in [*queued, server]:
        sock.close()


def test_a_host_with_several_addresses_is_asked_within_the_requests_time_however_many_drop(servers, dropping, monkeypatch):
    # A load balancer's name has one address per zone: each one that dropped the connection cost the
    # whole timeout, and the one that answered was left no time for its TLS handshake.
    site, endpoint = servers
    given = endpoint()
    https = given.connect_to[(HOST, 443)]
    resolve = socket.getaddrinfo

    def addresses(host, port, *args, **kwargs):  # the name of a load balancer: a zone out of reach, then one that answers
        if (host, port) == (HOST, 443):
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", where) for where in (dropping, https)]
        return resolve(host, port, *args, **kwargs)

    monkeypatch.setattr(verify.socket, "getaddrinfo", addresses)
    given.connect_to, given.timeout = {}, 1.0  # as on AWS: the host name, resolved
    started = time.monotonic()
    status, _, _, _ = given.request("https", HOST, "/health")
    assert status == 200 and time.monotonic() - started < 1.0
    monkeypatch.setattr(
        verify.socket, "getaddrinfo", lambda host, port, *a, **k: [(socket.AF_INET, socket.SOCK_STREAM, 6, "", dropping)] * 3
    )
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        given.request("https", HOST, "/health")
    assert time.monotonic() - started < 1.2  # the request's 1 s in all, not 1 s an address


def test_a_name_lookup_that_does_not_end_fails_the_request_at_its_timeout(monkeypatch):
    # The system's resolver waits 5 s an attempt for a name server that does not answer, twice, for
    # each one: the lookup held the request that long past its timeout.
    released = threading.Event()
    monkeypatch.setattr(verify.socket, "getaddrinfo", lambda *args, **kwargs: released.wait(30) and [])
    given = verify.Endpoint(timeout=0.3)
    started = time.monotonic()
    try:
        with pytest.raises(TimeoutError, match=r"^looking up app\.example\.com took longer than the request's timeout$"):
            given.request("https", "app.example.com", "/health")
        assert time.monotonic() - started < 1.0
    finally:
        released.set()


def test_what_the_name_lookup_raises_is_raised_to_the_request_as_it_was(monkeypatch):
    with pytest.raises(UnicodeError):  # a label over 63 characters: idna's error, not a thread's traceback
        verify.Endpoint(timeout=1).request("https", f"{'x' * 64}.example.com", "/health")

    def stop(*args, **kwargs):
        raise SystemExit(3)

    monkeypatch.setattr(verify.socket, "getaddrinfo", stop)
    with pytest.raises(SystemExit):  # not a KeyError for the answer it never gave
        verify.Endpoint(timeout=1).request("https", "app.example.com", "/health")


def test_an_address_family_the_kernel_lacks_goes_on_to_the_next_address(servers, monkeypatch):
    # IPv6 turned off (ipv6.disable=1): a dual-stack name's AAAA record failed the request before its A record was tried.
    site, endpoint = servers
    given = endpoint()
    https = given.connect_to[(HOST, 443)]
    real = socket.socket

    def no_ipv6(family=socket.AF_INET, *args, **kwargs):
        if family == socket.AF_INET6:
            raise OSError(97, "Address family not supported by protocol")
        return real(family, *args, **kwargs)

    monkeypatch.setattr(
        verify.socket,
        "getaddrinfo",
        lambda *a, **k: [
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("::1", https[1], 0, 0)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", https),
        ],
    )
    monkeypatch.setattr(verify.socket, "socket", no_ipv6)
    given.connect_to = {}
    assert given.request("https", HOST, "/health")[0] == 200


def test_past_verifys_timeout_an_address_that_let_a_request_time_out_is_not_asked_again():
    """A round runs every check: against a server that never answers, four smoke checks at 10 s each
    took a round past a minute with TIMEOUT=0. Past `until`, the first request still gets its whole
    timeout (a slow answer passes); once one timed out, the rest of the round's requests to that
    address fail at once, saying why."""
    frozen = socket.create_server(("127.0.0.1", 0))  # accepts connections (the kernel does), never answers
    endpoint = verify.Endpoint({(HOST, 80): frozen.getsockname()}, timeout=0.3, until=time.monotonic() - 1)
    try:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            endpoint.request("http", HOST, "/health")
        assert time.monotonic() - started >= 0.3  # its whole timeout
        started = time.monotonic()
        with pytest.raises(TimeoutError, match=r"not requested: 127\.0\.0\.1 let an earlier request time out after TIMEOUT"):
            endpoint.request("http", HOST, "/api/user/login")
        assert time.monotonic() - started < 0.3  # not asked again
        endpoint.until = time.monotonic() + 60  # before the deadline every request is made, whatever came before
        with pytest.raises(TimeoutError, match="took longer|timed out"):
            endpoint.request("http", HOST, "/health")
    finally:
        frozen.close()


def test_a_server_answering_a_byte_at_a_time_fails_at_the_request_timeout():
    # Socket timeouts bound each read alone: a byte every 0.2 s kept a 1 s request going for as long as the server did
    # (here a byte every 0.05 s and a 0.25 s limit).
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def drip():
        connection, _ = server.accept()
        with connection:
            for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"x" * 100:
                if stop.wait(0.05):
                    return
                connection.sendall(bytes([byte]))

    thread = threading.Thread(target=drip, daemon=True)
    thread.start()
    endpoint = verify.Endpoint({(HOST, 80): server.getsockname()}, timeout=0.25)
    started = time.monotonic()
    try:
        with pytest.raises(TimeoutError):
            endpoint.request("http", HOST, "/health")
        assert time.monotonic() - started < 2  # the drip alone would take 7 s
    finally:
        stop.set()
        thread.join(5)
        server.close()


def by_name(results):
    return {r.name: r for r in results}


def test_a_healthy_site_passes_every_http_check(servers):
    site, endpoint = servers
    results = by_name(verify.run_checks(endpoint(), HOST, smoke_checks=[{"path": "/api/user/login", "status": 200}]))
    assert all(r.ok for r in results.values()), [r.line() for r in results.values()]
    assert set(results) == {"http redirects to https", "certificate valid for host", "https /health", "smoke /api/user/login"}
    assert re.fullmatch(rf"{HOST}, expires in 8[89] days", results["certificate valid for host"].detail)


@pytest.mark.parametrize(("days", "said"), [(0, "within a day"), (1, "in 1 day"), (2, "in 2 days")])
def test_a_certificate_near_its_end_says_how_near_in_words(days, said):
    assert verify.in_days(days) == said


def test_a_refused_connection_names_the_address_connect_to_sent_it_to():
    """It read as if the public host refused; CONNECT_TO had sent the request to a local port."""
    endpoint = verify.Endpoint({(HOST, 443): ("127.0.0.1", 9), (HOST, 80): ("127.0.0.1", 9)}, timeout=2)  # port 9: nothing there
    results = by_name(verify.run_checks(endpoint, HOST))
    for name in ("http redirects to https", "https /health"):
        detail = results[name].detail
        port = 80 if name.startswith("http ") else 443
        assert detail.startswith("ConnectionRefusedError") and detail.endswith(f"(127.0.0.1:9, CONNECT_TO's for {HOST}:{port})"), detail


def test_failing_health(servers):
    site, endpoint = servers
    site.health = (503, {"status": "unhealthy", "database": "error"})
    results = by_name(verify.run_checks(endpoint(), HOST))
    assert not results["https /health"].ok and "503" in results["https /health"].detail
    assert results["certificate valid for host"].ok


def test_the_health_check_is_requested_on_the_path_the_target_group_probes(servers):
    # make verify asked /health whatever HealthCheckPath the alb layer gave the target group.
    site, endpoint = servers
    site.health_path = "/healthz"
    results = by_name(verify.run_checks(endpoint(), HOST, health_path="/healthz"))
    default = INPUTS["HealthCheckPath"].default  # what a stack deployed without the parameter probes
    assert results["https /healthz"].ok and f"https {default}" not in results, results
    assert ("https", "/healthz") in site.requests and ("http", "/healthz") in site.requests, site.requests
    assert not any(path == default for _, path in site.requests), site.requests
    assert not by_name(verify.run_checks(endpoint(), HOST))[f"https {default}"].ok  # the default path answers 404 here


@pytest.mark.parametrize(
    "body",
    [{"status": "healthy", "database": "down"}, {"status": "degraded", "database": "ok"}, b"[" * 60_000],  # the last: too deep for json
    ids=["database down", "degraded", "nested too deep"],
)
def test_health_with_wrong_body(servers, body):
    site, endpoint = servers
    site.health = (200, body)
    health = by_name(verify.run_checks(endpoint(), HOST))["https /health"]
    assert not health.ok
    assert health.detail.startswith("200 "), health.detail  # failed on the body it read, not on another answer or none


def test_wrong_certificate(servers):
    site, endpoint = servers
    results = by_name(verify.run_checks(endpoint("wrong.example.test"), HOST))
    assert not results["certificate valid for host"].ok
    assert "match" in results["certificate valid for host"].detail  # ssl's "Hostname mismatch" or "doesn't match"
    assert not results["https /health"].ok


def test_a_certificate_of_a_ca_not_trusted_names_ca_bundle_where_none_was_given(servers):
    # A local rehearsal without CA_BUNDLE= failed "unable to get local issuer certificate" alone: the setting that fixes
    # it, which the README gives for it, went unsaid. Given one, a certificate it does not sign is not told to give it.
    site, endpoint = servers
    detail = by_name(verify.run_checks(endpoint(ca=False), HOST))["certificate valid for host"].detail
    assert detail.endswith(
        "; the system's trust store lacks its issuer (a CA of your own, at the server CONNECT_TO maps the host to; or a proxy"
        " that inspects TLS, or a Python without the public CAs): CA_BUNDLE=<a PEM file holding it>"
    ), detail
    assert "CA_BUNDLE" not in by_name(verify.run_checks(endpoint("wrong.example.test"), HOST))["certificate valid for host"].detail


def test_missing_redirect(servers):
    site, endpoint = servers
    site.redirect = False
    results = by_name(verify.run_checks(endpoint(), HOST))
    assert not results["http redirects to https"].ok
    assert results["http redirects to https"].detail.startswith("200")


@pytest.mark.parametrize(
    "location",
    [
        "https://api.example.test.attacker.example/health",
        "https://attacker.example/?https://api.example.test",
        "http://api.example.test/health",
        "https://api.example.test:8443/health",  # the host, but not on the port the checks use
    ],
)
def test_redirect_elsewhere_fails(servers, location):
    site, endpoint = servers
    site.location = location
    redirect = by_name(verify.run_checks(endpoint(), HOST))["http redirects to https"]
    assert not redirect.ok
    assert redirect.detail == f"301 -> {location}", redirect.detail  # failed on where it points, not on another answer or none


def test_failing_smoke_check(servers):
    site, endpoint = servers
    results = by_name(verify.run_checks(endpoint(), HOST, smoke_checks=[{"path": "/api/order", "status": 200}]))
    assert not results["smoke /api/order"].ok and "404" in results["smoke /api/order"].detail


def test_unreachable_host_is_a_failed_check_not_a_traceback():
    endpoint = verify.Endpoint({(HOST, 443): ("127.0.0.1", 9), (HOST, 80): ("127.0.0.1", 9)}, timeout=2)
    results = verify.run_checks(endpoint, HOST)
    assert [r.name for r in results] == ["http redirects to https", "certificate valid for host", "https /health"]
    assert all(r.failed and "ConnectionRefusedError" in r.detail for r in results)


@pytest.mark.parametrize(
    "value",
    ["h:443:127.0.0.1", "h:443:127.0.0.1:99999", "h:0:127.0.0.1:1", ":443:127.0.0.1:1", "h:443::1", "h:x:a:1", "h:000443:127.0.0.1:1"],
)
def test_connect_to_rejects_malformed_values(value):
    with pytest.raises(ValueError, match="HOST:PORT:ADDRESS:PORT"):
        verify.parse_connect_to([value])


def test_connect_to_mapping_one_host_and_port_to_two_addresses_is_refused():
    # make verify CONNECT_TO="api...:443:127.0.0.1:8443 api...:443:127.0.0.1:8444" (a line edited, the old one kept)
    # sent every check to 8444 without a word; curl's --connect-to, which README likens it to, takes the first string
    # that matches (CURLOPT_CONNECT_TO(3)). Found by a walk through make's targets with mistyped values.
    first, second = f"{HOST}:443:127.0.0.1:8443", f"{HOST.upper()}:443:127.0.0.1:8444"  # host names are case-insensitive
    with pytest.raises(ValueError) as refused:
        verify.parse_connect_to([first, second])
    assert str(refused.value) == (
        f"CONNECT_TO (--connect-to) {second!r}: {HOST}:443 is mapped to 127.0.0.1:8443 already: allowed: one address for a host and port"
    )
    assert verify.parse_connect_to([first, first.upper()]) == {(HOST, 443): ("127.0.0.1", 8443)}  # the same twice: one mapping


def test_connect_to_the_same_address_in_another_case_twice_is_one_mapping_not_two_addresses():
    # host names are case-insensitive (README: "host names in any case"), the address's too where it is a name (a load
    # balancer's DNS name): the same mapping given twice, once as copied from the console in capitals, was refused as
    # "mapped to LB... already: allowed: one address for a host and port", naming one address twice (an attacker review)
    first, second = f"{HOST}:443:LB-1.eu-west-1.elb.amazonaws.com:443", f"{HOST}:443:lb-1.eu-west-1.elb.amazonaws.com:443"
    assert verify.parse_connect_to([first, second]) == verify.parse_connect_to([first])


def stubbed(service):
    client = boto3.client(service, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    return client, Stubber(client)


TASK_DEFINITION = "arn:aws:ecs:us-east-1:123456789012:task-definition/svc-task:7"


def service_response(state, running, desired, deployments=1, status="ACTIVE", task_definition=TASK_DEFINITION):
    deployment = {"id": "ecs-svc/1", "status": "PRIMARY"} | ({"rolloutState": state} if state else {})
    extra = [{"id": "ecs-svc/0", "status": "ACTIVE", "rolloutState": "COMPLETED"}] * (deployments - 1)
    service = {"serviceName": "svc", "status": status, "taskDefinition": task_definition, "runningCount": running, "desiredCount": desired}
    return {"services": [service | {"deployments": [deployment, *extra]}]}


@pytest.mark.parametrize(
    "state, running, desired, deployments, ok",
    [
        ("COMPLETED", 2, 2, 1, True),
        ("IN_PROGRESS", 2, 2, 2, False),
        ("COMPLETED", 2, 2, 2, False),  # the primary done, the old tasks still draining: not yet
        ("COMPLETED", 1, 2, 1, False),
        ("COMPLETED", 0, 0, 1, False),  # scaled to nothing: nothing serves the site
        ("FAILED", 2, 2, 1, False),
        # No rolloutState (ECS documents it for rolling updates): one deployment with every task running is complete.
        (None, 2, 2, 1, True),
        (None, 2, 2, 2, False),
        (None, 1, 2, 1, False),
        # A rollout ECS says is still in progress is not complete, though one deployment is left with every task running
        # (a first deployment before steady state): only a missing rolloutState is taken for complete.
        ("IN_PROGRESS", 2, 2, 1, False),
        (None, 0, 0, 1, False),
    ],
)
def test_rollout_check(state, running, desired, deployments, ok):
    ecs, stub = stubbed("ecs")
    stub.add_response("describe_services", service_response(state, running, desired, deployments), {"cluster": "c", "services": ["svc"]})
    with stub:
        result = verify.check_rollout(ecs, "c", "svc")
    assert result.ok is ok
    assert f"running {running}/{desired}" in result.detail


def test_a_rollout_with_no_primary_deployment_is_not_complete():
    ecs, stub = stubbed("ecs")
    answer = service_response(None, 2, 2)
    answer["services"][0]["deployments"][0]["status"] = "ACTIVE"
    stub.add_response("describe_services", answer, {"cluster": "c", "services": ["svc"]})
    with stub:
        result = verify.check_rollout(ecs, "c", "svc")
    assert result.ok is False, result.detail
    assert result.detail == "running 2/2, 1 deployment(s), rollout state not given"


@pytest.mark.parametrize("runs", [TASK_DEFINITION, TASK_DEFINITION.replace(":7", ":6")])
def test_a_complete_rollout_of_another_task_definition_than_the_stacks_fails(runs):
    # ECS rolled the release back by itself (stop-service-deployment, the circuit breaker), or someone ran update-service:
    # the rollout completes, on another revision than the stack deployed.
    ecs, stub = stubbed("ecs")
    stub.add_response("describe_services", service_response("COMPLETED", 2, 2, task_definition=runs), {"cluster": "c", "services": ["svc"]})
    with stub:
        result = verify.check_rollout(ecs, "c", "svc", TASK_DEFINITION)
    assert result.ok is (runs == TASK_DEFINITION), result.detail
    if runs != TASK_DEFINITION:
        assert result.detail.endswith(", of task definition svc-task:6, but the stack's is svc-task:7"), result.detail


@pytest.mark.parametrize(
    "response, ok, detail",
    [
        # What moto answers: no task ever runs, the rollout stays IN_PROGRESS.
        (service_response("IN_PROGRESS", 0, 1), True, "ACTIVE, desired 1, task definition svc-task:7"),
        (service_response("IN_PROGRESS", 0, 1, task_definition=TASK_DEFINITION[:-1] + "6"), False, "but the stack's is svc-task:7"),
        (service_response("IN_PROGRESS", 0, 1, status="DRAINING"), False, "DRAINING"),
        ({"services": []}, False, "service svc not found in cluster c"),
    ],
)
def test_service_check_on_an_emulator(response, ok, detail):
    ecs, stub = stubbed("ecs")
    stub.add_response("describe_services", response, {"cluster": "c", "services": ["svc"]})
    with stub:
        result = verify.check_service(ecs, "c", "svc", TASK_DEFINITION)
    assert result.name == "ecs service" and result.ok is ok and detail in result.detail


def test_on_an_emulator_the_checks_it_cannot_pass_are_skipped_with_their_reason():
    """No containers run there, and without a connect-to mapping no HTTP request leaves (the host
    would be the public one). Skipped is neither passed nor failed."""
    ecs, stub = stubbed("ecs")
    elbv2, elbv2_stub = stubbed("elbv2")  # nothing queued: a call would fail the test
    stub.add_response("describe_services", service_response("IN_PROGRESS", 0, 1), {"cluster": "c", "services": ["svc"]})
    with stub, elbv2_stub:
        results = verify.run_checks(
            None,
            HOST,
            ecs=ecs,
            elbv2=elbv2,
            cluster="c",
            service="svc",
            target_group_arns=["arn"],
            smoke_checks=[{"path": "/x", "status": 200}],
            emulator=True,
            task_definition=TASK_DEFINITION,
        )
    assert [(r.name, r.ok) for r in results] == [
        ("ecs service", True),
        ("ecs rollout", None),
        ("targets healthy", None),
        ("http redirects to https", None),
        ("certificate valid for host", None),
        ("https /health", None),
        ("smoke /x", None),
    ]
    lines = {r.name: r.line() for r in results}
    assert lines["ecs rollout"].startswith("skip  ecs rollout") and "runs no containers" in lines["ecs rollout"]
    assert "runs no containers" in lines["targets healthy"]
    assert f"{HOST}:80 is the public host, not the emulator's: CONNECT_TO=" in lines["http redirects to https"]
    assert f"{HOST}:443 is the public host" in lines["smoke /x"]
    said = []
    assert verify.verify(lambda: results, timeout=600, sleep=pytest.fail, say=said.append)
    assert said[-1] == "1 passed, 0 failed, 6 skipped" and not any(line.startswith("attempt") for line in said)


def test_on_an_emulator_only_the_mapped_ports_are_requested(servers, monkeypatch):
    """CONNECT_TO for 443 only: the HTTPS checks run against the local server, the redirect is
    skipped rather than sent to the public host."""
    site, endpoint = servers
    started = endpoint()
    del started.connect_to[(HOST, 80)]
    connect = socket.create_connection

    def loopback_only(address, *args, **kwargs):
        assert address[0] == "127.0.0.1", f"verify connected to {address}"
        return connect(address, *args, **kwargs)

    monkeypatch.setattr(verify.socket, "create_connection", loopback_only)
    results = by_name(verify.run_checks(started, HOST, smoke_checks=[{"path": "/api/user/login", "status": 200}], emulator=True))
    assert results["http redirects to https"].skipped, results
    # CONNECT_TO= was given: it maps no :80 (it said "CONNECT_TO= maps it to a local server", as if none were given)
    assert (
        results["http redirects to https"].detail == f"{HOST}:80 is the public host, not the emulator's, and CONNECT_TO= maps no {HOST}:80"
    )
    assert all(results[name].ok for name in ("certificate valid for host", "https /health", "smoke /api/user/login"))
    assert site.requests == [("https", "/health"), ("https", "/api/user/login")]
    # none given, as make verify passes an Endpoint all the same: the hint that it maps the host
    results = by_name(verify.run_checks(verify.Endpoint(), HOST, smoke_checks=[], emulator=True))
    assert results["https /health"].detail == f"{HOST}:443 is the public host, not the emulator's: CONNECT_TO= maps it to a local server"


def test_a_servers_answer_is_printed_on_one_line_and_forges_no_result():
    # A /health body a broken site serves: its newlines printed passing results and a summary of their own.
    body = 'maintenance\nok    https /health                200 {"status": "healthy"}\n3 passed, 0 failed, 3 skipped'
    line = verify.Result("https /health", False, f"503 {body}").line()
    assert line == (
        "FAIL  https /health                503 maintenance\\nok    https /health                200 "
        '{"status": "healthy"}\\n3 passed, 0 failed, 3 skipped'
    ), line


def test_a_skipped_check_never_counts_as_passed():
    said = []
    assert not verify.verify(lambda: [verify.Result.skip("https /health", "why")], timeout=0, say=said.append)
    assert said == ["skip  https /health                why", "0 passed, 0 failed, 1 skipped: nothing was checked"]
    said = []
    results = [verify.Result.skip("ecs rollout", "why"), verify.Result("ecs service", False, "DRAINING")]
    assert not verify.verify(lambda: results, timeout=0, say=said.append)
    assert said[-1] == "0 passed, 1 failed, 1 skipped"


PRIMARY = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/app-tg/0123456789abcdef"
ALTERNATE = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/app-tg-alt/fedcba9876543210"


def target(address, state, reason=None):
    return {"Target": {"Id": address, "Port": 8000}, "TargetHealth": {"State": state, **({"Reason": reason} if reason else {})}}


def test_targets_check_names_the_unhealthy_target_and_its_group():
    elbv2, stub = stubbed("elbv2")
    descriptions = [target("10.0.1.5", "healthy"), target("10.0.2.7", "unhealthy", "Target.ResponseCodeMismatch")]
    for response in (descriptions, []):
        for arn in (PRIMARY, ALTERNATE):
            stub.add_response(
                "describe_target_health", {"TargetHealthDescriptions": response if arn == PRIMARY else []}, {"TargetGroupArn": arn}
            )
    with stub:
        first = verify.check_targets(elbv2, [PRIMARY, ALTERNATE])
        second = verify.check_targets(elbv2, [PRIMARY, ALTERNATE])
    assert not first.ok and first.detail == "10.0.2.7 in app-tg unhealthy (Target.ResponseCodeMismatch)"
    assert not second.ok and second.detail == "no target registered"


def test_targets_are_looked_for_in_both_target_groups():
    """After a blue/green release the tasks serve from the alternate target group; during its bake
    time from both. The primary one empty is no failure then."""
    elbv2, stub = stubbed("elbv2")
    after_release = {PRIMARY: [], ALTERNATE: [target("10.0.1.9", "healthy"), target("10.0.2.9", "healthy")]}
    baking = {PRIMARY: [target("10.0.1.5", "healthy")], ALTERNATE: [target("10.0.1.9", "healthy")]}
    draining = {PRIMARY: [target("10.0.1.5", "draining", "Target.DeregistrationInProgress")], ALTERNATE: [target("10.0.1.9", "healthy")]}
    for state in (after_release, baking, draining):
        for arn in (PRIMARY, ALTERNATE):
            stub.add_response("describe_target_health", {"TargetHealthDescriptions": state[arn]}, {"TargetGroupArn": arn})
    with stub:
        results = [verify.check_targets(elbv2, [PRIMARY, ALTERNATE]) for _ in range(3)]
    assert [(r.ok, r.detail) for r in results] == [
        (True, "2 of 2 healthy (app-tg-alt)"),
        (True, "2 of 2 healthy (app-tg, app-tg-alt)"),
        (False, "10.0.1.5 in app-tg draining (Target.DeregistrationInProgress)"),
    ]


def test_the_test_listener_checks_go_to_its_port_only(servers):
    """TEST_LISTENER=1: /health and the smoke checks through the test listener's port; nothing on 80 or
    443, and the checks that judge a finished release are skipped, saying why."""
    site, endpoint = servers
    started = endpoint()
    test_port = 8443
    started.connect_to = {(HOST, test_port): started.connect_to[(HOST, 443)]}  # only the test listener is reachable
    results = verify.run_checks(started, HOST, smoke_checks=[{"path": "/api/user/login", "status": 200}], test_listener_port=test_port)
    assert [(r.name, r.ok) for r in results] == [
        ("ecs rollout", None),
        ("targets healthy", None),
        ("http redirects to https", None),
        ("certificate valid for host", True),
        ("https /health", True),
        ("smoke /api/user/login", True),
    ]
    assert "test listener" in results[0].detail and "HTTPS only" in results[2].detail
    assert site.requests == [("https", "/health"), ("https", "/api/user/login")]


def test_verify_retries_until_the_checks_pass_then_prints_one_line_each():
    rounds = iter([[verify.Result("ecs rollout", False, "rollout IN_PROGRESS")], [verify.Result("ecs rollout", True, "rollout COMPLETED")]])
    now = [0.0]
    lines = []
    ok = verify.verify(
        lambda: next(rounds), timeout=60, interval=5, sleep=lambda s: now.__setitem__(0, now[0] + s), clock=lambda: now[0], say=lines.append
    )
    assert ok
    assert lines[0].startswith("attempt 1: 1 check(s) failing (ecs rollout)")
    assert lines[1].split() == ["FAIL", "ecs", "rollout", "rollout", "IN_PROGRESS"]  # why, before the wait
    assert lines[-2].startswith("ok    ecs rollout") and lines[-1] == "1 passed, 0 failed"


def test_verify_gives_up_at_the_deadline():
    calls = []
    now = [0.0]

    def run():
        calls.append(1)
        return [verify.Result("https /health", False, "503")]

    lines = []
    ok = verify.verify(run, timeout=12, interval=5, sleep=lambda s: now.__setitem__(0, now[0] + s), clock=lambda: now[0], say=lines.append)
    assert not ok and len(calls) == 4  # at 0, 5 and 10 s, and the last at the deadline, 12 s
    assert [line for line in lines if line.startswith("attempt ")][-1].endswith("retrying in 2 s"), lines
    # The reason is said once while it stays the same, and again at the end.
    assert [line.split() for line in lines if "503" in line] == [["FAIL", "https", "/health", "503"]] * 2
    assert lines[-1] == "0 passed, 1 failed" and lines[-2].startswith("FAIL  https /health")


def make_verify(servers, pki, extra_argv=(), ports=(443, 80), alb_parameters=None, alb_outputs=None):
    """deploy.main("verify", ...) on stubbed CloudFormation, ECS and ELBv2 (a healthy service) with
    --connect-to the local servers for `ports`: (exit code, printed lines). alb_parameters: the
    deployed alb stack's parameter values (none by default)."""
    site, endpoint = servers
    started = endpoint()
    arn = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/tg/0123456789abcdef"
    clients = {name: stubbed(name) for name in ("cloudformation", "ecs", "elbv2")}
    stacks = {
        "startupwebapp-prod-alb": {"ServiceHost": HOST, "ServiceUrl": f"https://{HOST}", "TargetGroupArn": arn},
        "startupwebapp-prod-service": {"ClusterName": "c", "ServiceName": "svc", "TaskDefinitionArn": TASK_DEFINITION},
    }
    stacks["startupwebapp-prod-alb"] |= alb_outputs or {}
    for name, outputs in stacks.items():
        stack = {
            "StackName": name,
            "StackId": f"arn:aws:cloudformation:us-east-1:123456789012:stack/{name}/1",
            "CreationTime": datetime.datetime(2025, 11, 1, tzinfo=datetime.UTC),
            "StackStatus": "UPDATE_COMPLETE",
            "Outputs": [{"OutputKey": k, "OutputValue": v} for k, v in outputs.items()],
        }
        if name.endswith("-alb") and alb_parameters:
            stack["Parameters"] = [{"ParameterKey": k, "ParameterValue": v} for k, v in alb_parameters.items()]
        clients["cloudformation"][1].add_response("describe_stacks", {"Stacks": [stack]}, {"StackName": name})
    healthy = [{"Target": {"Id": f"10.0.{i}.5", "Port": 8000}, "TargetHealth": {"State": "healthy"}} for i in (1, 2)]
    for _ in range(2):  # a failing check is tried again at --timeout's end: a second round
        clients["ecs"][1].add_response("describe_services", service_response("COMPLETED", 2, 2), {"cluster": "c", "services": ["svc"]})
        clients["elbv2"][1].add_response("describe_target_health", {"TargetHealthDescriptions": healthy}, {"TargetGroupArn": arn})
    argv = ["verify", "--env", "prod", "--stack", "service", "--timeout", "5", "--ca-bundle", str(pki / "ca.pem"), *extra_argv]
    for port in ports:
        address, local_port = started.connect_to[(HOST, port)]
        argv += ["--connect-to", f"{HOST}:{port}:{address}:{local_port}"]
    for check in PROD_SMOKE:
        site.paths[check["path"]] = check["status"]
    out, err = io.StringIO(), io.StringIO()
    for _, stub in clients.values():
        stub.activate()
    now = [0.0]  # the retries' waits pass on this clock at once
    code = deploy.main(
        argv,
        clients=lambda service: clients[service][0],
        out=out,
        err=err,
        sleep=lambda s: now.__setitem__(0, now[0] + s),
        clock=lambda: now[0],
    )
    return code, out.getvalue().splitlines() + err.getvalue().splitlines()


def test_make_verify_prints_the_stacks_service_url_escaped(servers, pki, monkeypatch):
    """The alb stack's ServiceUrl output is text from outside the tools (a stack changed by hand, an endpoint's
    answer): make verify's first line printed it raw, where a CR, U+202E or an 8-bit CSI (U+009B) reached the terminal."""
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    code, lines = make_verify(servers, pki, alb_outputs={"ServiceUrl": f"https://{HOST}\r\u202eevil\x9b2J"})
    assert lines[0] == f"verifying https://{HOST}\\r\\u202eevil\\x9b2J (prod), for up to 5 s", lines[0]
    assert not any(c in line for line in lines for c in "\r\u202e\x9b"), lines


def test_make_verify_reads_the_stacks_outputs_and_runs_every_check(servers, pki, monkeypatch):
    """The whole command: outputs from CloudFormation, AWS checks and HTTP checks, one line each."""
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)  # real AWS (every client is stubbed)
    seen, real = [], verify.verify

    def verify_seeing_the_endpoint(run, **kwargs):
        seen.append(kwargs["endpoint"])
        before = time.monotonic()
        passed = real(run, **kwargs)
        assert before + 5 <= seen[0].until <= time.monotonic() + 5  # TIMEOUT's deadline, on the endpoint's clock
        return passed

    monkeypatch.setattr(verify, "verify", verify_seeing_the_endpoint)
    code, lines = make_verify(servers, pki)
    assert code == 0, lines
    assert len(seen) == 1 and isinstance(seen[0], verify.Endpoint)  # the endpoint the checks go through learns the deadline
    assert lines[0] == f"verifying https://{HOST} (prod), for up to 5 s"
    assert [line.split()[0] for line in lines[1:-1]] == ["ok"] * (5 + len(PROD_SMOKE))
    assert lines[-1] == f"{5 + len(PROD_SMOKE)} passed, 0 failed"


def test_make_verify_asks_the_health_check_path_the_deployed_alb_stack_gives_its_target_group(servers, pki, monkeypatch):
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)  # real AWS (every client is stubbed)
    site, _ = servers
    site.health_path = "/healthz"
    code, lines = make_verify(servers, pki, alb_parameters={"HealthCheckPath": "/healthz"})
    assert code == 0, lines
    assert any(line.split()[:3] == ["ok", "https", "/healthz"] for line in lines), lines
    assert ("https", "/healthz") in site.requests and ("http", "/healthz") in site.requests, site.requests


@pytest.mark.parametrize("path", ["/caf\u00e9", "http://evil.example/x", "/h\r\nX-Injected: 1", "/h\u202eevil\x9b2J"])
def test_make_verify_refuses_a_health_check_path_that_is_no_path_before_any_request(servers, pki, monkeypatch, path):
    # The alb stack's parameter, as anyone who may update the stack wrote it: a full URL was requested as one
    # (a forged Host), a non-ASCII one was a traceback in http.client, control characters went to the terminal.
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    site, _ = servers
    code, lines = make_verify(servers, pki, alb_parameters={"HealthCheckPath": path})
    assert code == 2 and site.requests == [], lines
    (said,) = [line for line in lines if line.startswith("error: ")]
    assert "HealthCheckPath " in said and "is no path this tool requests" in said and "nothing was requested" in said, said
    assert not any(c in said for c in "\r\n\u202e\x9b"), ascii(said)


def test_make_verify_on_an_emulator_with_connect_to_runs_the_http_checks_against_the_local_server(servers, pki, monkeypatch):
    """A local rehearsal: the sandbox's stacks, the app on a local HTTPS server."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    code, lines = make_verify(servers, pki)
    assert code == 0, lines
    assert lines[1] == "AWS_ENDPOINT_URL=http://127.0.0.1:9: an emulator; the checks it cannot pass are skipped, each with its reason"
    assert [[line[:4].strip(), line[6:34].strip()] for line in lines[2:-1]] == [
        ["ok", "ecs service"],
        ["skip", "ecs rollout"],
        ["skip", "targets healthy"],
        ["ok", "http redirects to https"],
        ["ok", "certificate valid for host"],
        ["ok", "https /health"],
        *(["ok", f"smoke {check['path']}"] for check in PROD_SMOKE),
    ]
    assert lines[-1] == f"{4 + len(PROD_SMOKE)} passed, 0 failed, 2 skipped"


def test_make_verify_on_an_emulator_fails_when_a_check_it_runs_fails(servers, pki, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    site, _ = servers
    site.health = (503, {"status": "unhealthy", "database": "error"})
    code, lines = make_verify(servers, pki, ports=[443])
    assert code == 1, lines
    assert lines[0] == f"verifying https://{HOST} (prod), for up to 5 s"
    assert any(line.startswith("attempt 1: 1 check(s) failing (https /health); retrying in 5 s") for line in lines), lines
    assert any(line.startswith("FAIL  https /health") and "503" in line for line in lines)
    assert any(line.startswith("skip  http redirects to https") for line in lines)
    assert lines[-1] == f"{2 + len(PROD_SMOKE)} passed, 1 failed, 3 skipped"


def test_make_verify_takes_connect_to_and_ca_bundle_as_make_variables():
    """CONNECT_TO: several mappings separated by spaces; CA_BUNDLE: a file."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MAKE")}
    command = ["make", "-n", "verify", "CONNECT_TO=h:443:127.0.0.1:8443 h:80:127.0.0.1:8080", "CA_BUNDLE=/tmp/ca dir/ca.pem"]
    printed = subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True, check=True).stdout
    words = shlex.split(printed[printed.index("scripts.deploy verify") :].replace("\\\n", " "))
    assert [w for w in words if w.startswith("--connect-to")] == ["--connect-to=h:443:127.0.0.1:8443", "--connect-to=h:80:127.0.0.1:8080"]
    assert "--ca-bundle=/tmp/ca dir/ca.pem" in words


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (
            ["--ca-bundle", "{tmp}/missing.pem"],
            "error: CA_BUNDLE={tmp}/missing.pem (--ca-bundle): No such file or directory; allowed: a PEM file",
        ),
        (
            ["--ca-bundle", "{tmp}/empty.pem"],
            "error: CA_BUNDLE={tmp}/empty.pem (--ca-bundle): no certificate in it that ssl can read; allowed: a PEM file",
        ),
        (
            ["--ca-bundle", "{tmp}/words.pem"],
            "error: CA_BUNDLE={tmp}/words.pem (--ca-bundle): no certificate in it that ssl can read; allowed: a PEM file",
        ),
        # a FIFO blocked ssl's own read of the path past every timeout
        (["--ca-bundle", "{tmp}/fifo"], "error: CA_BUNDLE={tmp}/fifo (--ca-bundle): not a regular file; allowed: a regular file"),
        (["--ca-bundle", "{tmp}"], "error: CA_BUNDLE={tmp} (--ca-bundle): not a regular file; allowed: a regular file"),
        # ssl would read all of it into memory: judged by its size, unread
        (["--ca-bundle", "{tmp}/huge.pem"], "error: CA_BUNDLE={tmp}/huge.pem (--ca-bundle): larger than 16 MiB; allowed: a PEM file"),
        (["--connect-to", "host:443"], "error: CONNECT_TO (--connect-to) 'host:443': expected HOST:PORT:ADDRESS:PORT (HOST a host name"),
        (
            ["--connect-to", "h:443:127.0.0.1:١٢٣"],
            "error: CONNECT_TO (--connect-to) 'h:443:127.0.0.1:١٢٣': expected HOST:PORT:ADDRESS:PORT",
        ),
        # an address Python's IDNA codec refuses: a traceback before
        (
            ["--connect-to", "h:443:127.0.0..1:8443"],
            "error: CONNECT_TO (--connect-to) 'h:443:127.0.0..1:8443': expected HOST:PORT:ADDRESS:PORT",
        ),
        # AWS_ENDPOINT_URL is set (an emulator): checks stay on this machine
        (
            ["--connect-to", "h:443:10.1.2.3:443"],
            "on an emulator (ENV=sandbox, or AWS_ENDPOINT_URL set) the address must be a loopback IPv4 address",
        ),
        (["--connect-to", "h:443:localhost:8443"], "(a name such as localhost is not taken: the hosts file may send it elsewhere)"),
        # split at every colon: an IPv6 address cannot be given, and the messages name IPv4 only (they offered ::1)
        (["--connect-to", "h:443:[::1]:8443"], "(HOST a host name, ADDRESS an IPv4 address or host name)"),
    ],
    ids=[
        "missing CA file",
        "empty CA file",
        "CA file of words",
        "CA FIFO",
        "CA directory",
        "CA file too large",
        "short CONNECT_TO",
        "a port in other digits",
        "bad address",
        "not loopback on an emulator",
        "a name on an emulator",
        "an IPv6 address",
    ],
)
def test_a_bad_ca_bundle_or_connect_to_is_one_line_naming_it(argv, said, tmp_path, monkeypatch):
    (tmp_path / "empty.pem").write_text("")
    (tmp_path / "words.pem").write_text("not a certificate\n")
    os.mkfifo(tmp_path / "fifo")
    with open(tmp_path / "huge.pem", "wb") as huge:  # sparse: no disk used
        huge.truncate((16 << 20) + 1)
    argv, said = [arg.format(tmp=tmp_path) for arg in argv], said.format(tmp=tmp_path)
    no_real_aws(monkeypatch)
    err = io.StringIO()
    # refused before any call to AWS: a client asked for fails the test; a FIFO read would block
    with within():
        assert deploy.main(["verify", "--env", "prod", "--stack", "service", *argv], clients=pytest.fail, out=io.StringIO(), err=err) == 2
    assert said in err.getvalue() and "Traceback" not in err.getvalue(), err.getvalue()
    assert err.getvalue().count("allowed:") <= 1, err.getvalue()  # a FIFO's said "allowed:" twice


@pytest.mark.parametrize("command", ["verify", "logs", "rollback"])
def test_the_service_layers_commands_of_another_layer_say_so_first(tmp_path, command):
    # a layer the environment does not enable was refused as "not enabled", not as the wrong layer for the command
    params_dir = shutil.copytree(ROOT / "params", tmp_path / "params")
    data = yaml.safe_load((params_dir / "prod.yaml").read_text())
    taken_out = templates.OPTIONAL_LAYERS[0]
    data["enabled_layers"] = [name for name in data.get("enabled_layers") or [] if name != taken_out]  # optional: none when left out
    (params_dir / "prod.yaml").write_text(yaml.safe_dump(data))
    for layer in ("alb", taken_out):
        err = io.StringIO()
        argv = [command, "--env", "prod", "--stack", layer, "--params-dir", str(params_dir)]
        assert deploy.main(argv, out=io.StringIO(), err=err) == 2
        assert err.getvalue() == f"error: {command} works on the service layer: STACK=service (--stack service)\n", (layer, err.getvalue())


def test_make_verify_of_a_service_whose_first_create_failed_is_one_line(monkeypatch):
    """A failed first create (ROLLBACK_COMPLETE) is a stack with no outputs: nothing to verify, said
    in one line, not a KeyError."""
    no_real_aws(monkeypatch)
    cloudformation, stub = stubbed("cloudformation")
    alb = {"ServiceHost": HOST, "ServiceUrl": f"https://{HOST}", "TargetGroupArn": "arn:aws:elasticloadbalancing:tg"}
    for layer, status, outputs in (("alb", "CREATE_COMPLETE", alb), ("service", "ROLLBACK_COMPLETE", {})):
        name = f"startupwebapp-prod-{layer}"
        stack = {
            "StackName": name,
            "StackId": f"arn:aws:cloudformation:us-east-1:123456789012:stack/{name}/1",
            "CreationTime": datetime.datetime(2025, 11, 1, tzinfo=datetime.UTC),
            "StackStatus": status,
            "Outputs": [{"OutputKey": k, "OutputValue": v} for k, v in outputs.items()],
        }
        stub.add_response("describe_stacks", {"Stacks": [stack]}, {"StackName": name})
    stub.activate()
    out, err = io.StringIO(), io.StringIO()
    code = deploy.main(["verify", "--env", "prod", "--timeout", "0"], clients=lambda service: cloudformation, out=out, err=err)
    assert code == 1, err.getvalue()
    assert err.getvalue() == (
        "error: startupwebapp-prod-service is ROLLBACK_COMPLETE and has no output ClusterName, ServiceName: nothing to verify; "
        "make deploy STACK=service ENV=prod RECREATE=1 first\n"
    )
    stub.assert_no_pending_responses()


def test_a_ca_bundle_with_comments_in_any_language_is_read_by_path_as_ssl_reads_it(pki, tmp_path):
    """Distribution bundles label each certificate in a comment, in its own language
    (p11-kit's --comment); decoded as ASCII, such a bundle was refused."""
    bundle = tmp_path / "tls-ca-bundle.pem"
    bundle.write_bytes("# NetLock Arany (Class Gold) Főtanúsítvány\n".encode() + (pki / "ca.pem").read_bytes())
    assert verify.Endpoint(ca_bundle=str(bundle)).context.cert_store_stats()["x509_ca"] == 1


def alb_redirect_status():
    """The status the alb layer's HTTP listener redirects with (HTTP_301: 301)."""
    listeners = templates.alb.build().to_dict()["Resources"].values()
    (http,) = [r["Properties"] for r in listeners if r["Type"] == "AWS::ElasticLoadBalancingV2::Listener" and r["Properties"]["Port"] == 80]
    return int(http["DefaultActions"][0]["RedirectConfig"]["StatusCode"].removeprefix("HTTP_"))


@pytest.mark.parametrize("status", [200, 301, 302, 303, 307, 308])
def test_a_redirect_passes_only_with_the_status_the_alb_layer_redirects_with(servers, status):
    # The right Location is not enough: another status is not the alb layer's listener answering.
    site, endpoint = servers
    site.redirect_status = status
    result = by_name(verify.run_checks(endpoint(), HOST))["http redirects to https"]
    assert result.ok is (status == alb_redirect_status()), result.line()
    assert result.detail == f"{status} -> https://{HOST}{INPUTS['HealthCheckPath'].default}"


def test_a_healthy_body_with_another_status_than_200_fails(servers):
    site, endpoint = servers
    site.health = (503, dict(verify.HEALTHY_BODY))
    results = by_name(verify.run_checks(endpoint(), HOST))
    assert not results["https /health"].ok and results["https /health"].detail.startswith("503 "), results["https /health"].line()


def test_the_rollout_is_judged_on_the_primary_deployment_wherever_ecs_lists_it():
    # During a release the old deployment (ACTIVE, its rollout COMPLETED) may come first: it is not the release.
    ecs, stub = stubbed("ecs")
    response = service_response("IN_PROGRESS", 2, 2, deployments=2)
    service = response["services"][0]
    old = {"id": "ecs-svc/0", "status": "ACTIVE", "rolloutState": "COMPLETED", "taskDefinition": TASK_DEFINITION.replace(":7", ":6")}
    service["deployments"] = [old, service["deployments"][0] | {"taskDefinition": TASK_DEFINITION}]
    stub.add_response("describe_services", response, {"cluster": "c", "services": ["svc"]})
    with stub:
        result = verify.check_rollout(ecs, "c", "svc", TASK_DEFINITION)
    assert result.ok is False and result.detail == "running 2/2, 2 deployment(s), rollout IN_PROGRESS", result.detail


def test_a_request_timing_out_before_verifys_timeout_does_not_keep_its_address_from_later_requests(monkeypatch):
    # Only a timeout past `until` keeps the address from the rest of the round: one before it may have been a blip.
    endpoint = verify.Endpoint({(HOST, 80): ("127.0.0.1", 9)}, timeout=0.3, until=time.monotonic() + 60)
    answers = [TimeoutError("timed out"), (200, {}, b"", None)]

    def request_once(*args):
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    monkeypatch.setattr(endpoint, "request_once", request_once)
    with pytest.raises(TimeoutError):
        endpoint.request("http", HOST, "/health")
    endpoint.until = time.monotonic() - 1  # verify's TIMEOUT has gone since
    assert endpoint.request("http", HOST, "/health")[0] == 200 and not answers


def test_a_server_that_never_answers_the_tls_handshake_fails_at_the_request_timeout():
    frozen = socket.create_server(("127.0.0.1", 0))  # accepts connections (the kernel does), never answers
    endpoint = verify.Endpoint({(HOST, 443): frozen.getsockname()}, timeout=0.3)
    raised = []

    def ask():
        try:
            endpoint.request("https", HOST, "/health")
        except Exception as error:  # noqa: BLE001 (which one is asserted below)
            raised.append(error)

    thread = threading.Thread(target=ask, daemon=True)
    started = time.monotonic()
    try:
        thread.start()
        thread.join(5)
        assert not thread.is_alive(), "the handshake was still waiting after 5 s"
        assert time.monotonic() - started < 2 and len(raised) == 1 and isinstance(raised[0], TimeoutError), raised
    finally:
        frozen.close()


def test_a_response_body_is_read_up_to_64_kib_not_to_its_end():
    # A body that never ends (or is huge) is not read whole: the status arrives, and what is read stays bounded.
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def answer():
        connection, _ = server.accept()
        with connection:
            connection.recv(65536)
            connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 10000000\r\n\r\n" + b"x" * 200_000)
            stop.wait(5)  # the rest never comes

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    endpoint = verify.Endpoint({(HOST, 80): server.getsockname()}, timeout=1)
    try:  # read to its end, it would time out
        status, _, body, _ = endpoint.request("http", HOST, "/api/user/login")
        assert status == 200 and len(body) == 65536
    finally:
        stop.set()
        thread.join(5)
        server.close()


def test_a_lookup_that_leaves_no_time_connects_nowhere_and_times_out(monkeypatch):
    server = socket.create_server(("127.0.0.1", 0))
    found = socket.getaddrinfo(*server.getsockname(), type=socket.SOCK_STREAM)

    def slow_look_up(host, port, deadline):  # ends just at the deadline, as a slow name server's answer may
        time.sleep(max(deadline - time.monotonic(), 0) + 0.01)
        return found

    monkeypatch.setattr(verify, "look_up", slow_look_up)
    try:
        with pytest.raises(TimeoutError, match="no time left to connect"):
            verify.connect(server.getsockname(), time.monotonic() + 0.05)
    finally:
        server.close()


def test_a_read_or_write_past_the_requests_deadline_times_out():
    # Not a socket timeout of what is left (negative: a ValueError, a traceback): a TimeoutError, a failed check.
    left, right = socket.socketpair()
    try:
        late = verify.Deadline(left, time.monotonic() - 0.001)
        for call in (lambda: late.recv(1), lambda: late.recv_into(bytearray(1)), lambda: late.sendall(b"x")):
            with pytest.raises(TimeoutError, match="longer than its timeout"):
                call()
    finally:
        left.close()
        right.close()


def test_a_server_that_stalls_after_a_first_answer_fails_at_the_request_timeout_not_later():
    # Every read gets only what is left of the request's time, not what was left when the request began.
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def stall():
        connection, _ = server.accept()
        with connection:
            stop.wait(0.9)
            connection.sendall(b"HTTP/1.1 200 OK\r\n")  # then nothing
            stop.wait(5)

    thread = threading.Thread(target=stall, daemon=True)
    thread.start()
    endpoint = verify.Endpoint({(HOST, 80): server.getsockname()}, timeout=1.0)
    started = time.monotonic()
    try:
        with pytest.raises(TimeoutError):
            endpoint.request("http", HOST, "/health")
        assert time.monotonic() - started < 1.5  # about 1 s, not 0.9 s and another 1 s: half a second's room either way
    finally:
        stop.set()
        thread.join(5)
        server.close()


def test_an_untrusted_issuer_without_connect_to_is_not_said_to_be_a_local_rehearsals_ca(pki):
    # make verify ENV=prod without CONNECT_TO= checks the public host: no rehearsal. A Python whose trust store lacks the
    # public CA (a python.org build on macOS before "Install Certificates") fails the same way, "unable to get local issuer
    # certificate", and was told the certificate is "of a CA of your own (a local rehearsal)".
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki / f"{HOST}.pem")
    https = serve(Site(), context)
    try:
        endpoint = verify.Endpoint(timeout=5)  # no CONNECT_TO, no CA_BUNDLE: the public host, the system's trust store
        certificate, _ = verify.check_health(endpoint, "localhost", "/health", port=https.server_address[1])
    finally:
        https.shutdown()
        https.server_close()
    assert not certificate.ok
    assert certificate.detail.endswith(
        "; the system's trust store lacks its issuer (a proxy that inspects TLS, or a Python without the public CAs): "
        "CA_BUNDLE=<a PEM file holding it>"
    ), certificate.detail


def test_an_untrusted_issuer_behind_connect_to_a_public_address_is_not_said_to_be_a_ca_of_ones_own():
    # CONNECT_TO sends the checks "to another address, e.g. a local server" (README, make verify); outside the sandbox a
    # public one too, such as one of the load balancer's, whose certificate is ACM's. A Python whose trust store lacks the
    # public CA fails there as without CONNECT_TO, and was told the certificate is "of a CA of your own (the server
    # CONNECT_TO maps the host to)": the trust store went unsaid (an attacker review). No connection is made:
    # untrusted_issuer reads the mapping alone.
    endpoint = verify.Endpoint(connect_to=verify.parse_connect_to([f"{HOST}:443:54.239.28.85:443"]), timeout=5)
    detail = verify.untrusted_issuer(endpoint, HOST, 443)
    assert "the system's trust store lacks its issuer" in detail and "a Python without the public CAs" in detail, detail


def test_a_ca_bundle_that_does_not_hold_the_issuer_is_named(servers, tmp_path):
    # CA_BUNDLE= replaces the system's trust store (ssl.create_default_context(cafile=...)): a bundle of another CA (the
    # rehearsal's, given for prod) failed "unable to get local issuer certificate" alone, naming neither CA_BUNDLE= nor
    # that only its CAs were trusted.
    site, endpoint = servers
    other_key = ec.generate_private_key(ec.SECP256R1())
    other_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "another CA")])
    other = make_certificate("another CA", other_key, other_name, other_key, ca=True)
    (tmp_path / "other.pem").write_bytes(other.public_bytes(serialization.Encoding.PEM))
    given = endpoint()
    wrong = verify.Endpoint(given.connect_to, ca_bundle=str(tmp_path / "other.pem"), timeout=5)
    detail = by_name(verify.run_checks(wrong, HOST))["certificate valid for host"].detail
    assert detail.endswith(
        "; the CA_BUNDLE= file does not hold its issuer (while it is given, only its CAs are trusted, not the system's)"
    ), detail


class RefusingEndpoint:
    """(mutation audit) An endpoint whose TLS handshake fails with OpenSSL's verify code `code`."""

    own_ca = False

    def __init__(self, code):
        self.code = code

    def maps(self, host, port):
        return False

    def request(self, scheme, host, path, port=None):
        error = ssl.SSLCertVerificationError(1, "certificate verify failed")
        error.verify_code, error.verify_message = self.code, f"verify code {self.code}"
        raise error


# X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT, DEPTH_ZERO_SELF_SIGNED_CERT, SELF_SIGNED_CERT_IN_CHAIN, UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
# an issuer the trust store lacks; X509_V_ERR_CERT_HAS_EXPIRED (10), X509_V_ERR_HOSTNAME_MISMATCH (62): another cause
@pytest.mark.parametrize(("code", "hinted"), [(2, True), (18, True), (19, True), (20, True), (10, False), (62, False)])
def test_each_verify_code_of_an_issuer_not_trusted_and_only_those_names_ca_bundle(code, hinted):
    certificate, health = verify.check_health(RefusingEndpoint(code), "api.example.com", "/health")
    assert not certificate.ok and health.detail == "no TLS connection"
    assert certificate.detail.startswith(f"verify code {code}"), certificate.detail
    assert ("CA_BUNDLE=" in certificate.detail) == hinted, certificate.detail


def test_a_request_that_times_out_past_verifys_timeout_marks_its_address_though_it_started_before():
    """README (make verify): "a server that never answers ends the last round 10 s after TIMEOUT=, not
    10 s a check later". A request that starts just before `until` and times out after it must count
    as one that let a request time out after TIMEOUT: otherwise the next request of the round (a smoke
    check) gets its whole timeout as well, and the round ends up to two timeouts after TIMEOUT
    (make verify TIMEOUT=1 CONNECT_TO=api.startupwebapp.com:443:127.0.0.1:<frozen port> with three
    smoke checks on the sandbox: 20.8 s)."""
    frozen = socket.create_server(("127.0.0.1", 0))  # accepts connections (the kernel does), never answers
    endpoint = verify.Endpoint({(HOST, 80): frozen.getsockname()}, timeout=0.4, until=time.monotonic() + 0.1)
    try:
        with pytest.raises(TimeoutError):
            endpoint.request("http", HOST, "/health")  # started before until, timed out after it
        assert time.monotonic() > endpoint.until
        started = time.monotonic()
        with pytest.raises(TimeoutError, match=r"not requested: 127\.0\.0\.1 let an earlier request time out after TIMEOUT"):
            endpoint.request("http", HOST, "/api/user/login")
        assert time.monotonic() - started < 0.4  # not asked again
    finally:
        frozen.close()


def test_past_verifys_timeout_a_server_that_never_answers_on_either_port_ends_the_round_one_timeout_later():
    """README (make verify): "once TIMEOUT= has gone, an address that let a request time out is not asked
    again in that round ..., so that a server that never answers ends the last round 10 s after TIMEOUT=,
    not 10 s a check later". A round asks the site on two ports, the redirect on 80 and the certificate,
    health and smoke checks on 443: a load balancer that never answers is one server but two addresses
    ((host, 80) and (host, 443) without CONNECT_TO), and each got its whole timeout, so the last round
    ended two timeouts after TIMEOUT (20 s for the default 10 s), not one."""
    never = [socket.create_server(("127.0.0.1", 0)) for _ in range(2)]  # accept connections (the kernel does), never answer
    timeout = 0.5
    endpoint = verify.Endpoint(
        {(HOST, 80): never[0].getsockname(), (HOST, 443): never[1].getsockname()}, timeout=timeout, until=time.monotonic() - 1
    )
    try:
        started = time.monotonic()
        results = verify.run_checks(endpoint, HOST, smoke_checks=[{"path": "/api/user/login", "status": 200}])
        took = time.monotonic() - started
        assert all(r.failed for r in results), [r.line() for r in results]
        assert took < timeout * 1.5, f"the round ended {took:.2f} s after TIMEOUT; the request timeout is {timeout} s"
    finally:
        for server in never:
            server.close()


def test_the_only_address_of_a_host_gets_the_whole_timeout_to_connect(dropping, monkeypatch):
    # Half of what is left goes to each address but the last: one address alone (a CONNECT_TO, most names) gets all of
    # it, or a connection whose first SYN is lost (sent again after 1 s) fails at half the timeout.
    monkeypatch.setattr(verify.socket, "getaddrinfo", lambda *a, **k: [(socket.AF_INET, socket.SOCK_STREAM, 6, "", dropping)])
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        verify.Endpoint(timeout=0.6).request("https", HOST, "/health")
    assert 0.55 <= time.monotonic() - started < 1.0  # its whole 0.6 s, not 0.3 s


def test_a_tls_handshake_after_a_slow_connection_gets_only_what_is_left_of_the_request(dropping, monkeypatch):
    # The first of a load balancer's addresses drops the connection (half the time gone), the next accepts and never
    # answers the handshake: the request ends at its timeout, not a whole timeout after the connection.
    frozen = socket.create_server(("127.0.0.1", 0))  # accepts connections (the kernel does), never answers
    where = [(socket.AF_INET, socket.SOCK_STREAM, 6, "", address) for address in (dropping, frozen.getsockname())]
    monkeypatch.setattr(verify.socket, "getaddrinfo", lambda *a, **k: where)
    try:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            verify.Endpoint(timeout=1.0).request("https", HOST, "/health")
        assert time.monotonic() - started < 1.3  # about 1 s, not 0.5 s and another 1 s
    finally:
        frozen.close()


def test_a_service_ecs_does_not_find_fails_the_rollout_check():
    ecs, stub = stubbed("ecs")
    answer = {"services": [], "failures": [{"arn": "arn:aws:ecs:us-east-1:123456789012:service/c/svc", "reason": "MISSING"}]}
    stub.add_response("describe_services", answer, {"cluster": "c", "services": ["svc"]})
    with stub:
        result = verify.check_rollout(ecs, "c", "svc", TASK_DEFINITION)
    assert result.ok is False and result.detail == "service svc not found in cluster c", result


def test_more_tasks_running_than_desired_is_no_finished_rollout():
    # a scale-in still stopping tasks: running == desired, as make verify says, not running >= desired
    ecs, stub = stubbed("ecs")
    stub.add_response("describe_services", service_response("COMPLETED", 3, 2), {"cluster": "c", "services": ["svc"]})
    with stub:
        result = verify.check_rollout(ecs, "c", "svc")
    assert result.ok is False and "running 3/2" in result.detail, result


@pytest.mark.parametrize("state", ["initial", "draining", "unused", "unavailable"])
def test_a_target_in_any_state_but_healthy_fails_the_targets_check(state):
    elbv2, stub = stubbed("elbv2")
    stub.add_response(
        "describe_target_health",
        {"TargetHealthDescriptions": [target("10.0.1.5", "healthy"), target("10.0.2.7", state, "Elb.RegistrationInProgress")]},
        {"TargetGroupArn": PRIMARY},
    )
    with stub:
        result = verify.check_targets(elbv2, [PRIMARY])
    assert result.ok is False and result.detail == f"10.0.2.7 in app-tg {state} (Elb.RegistrationInProgress)", result


@pytest.mark.parametrize("status", [201, 299])
def test_a_healthy_body_with_another_success_status_than_200_fails(servers, status):
    site, endpoint = servers
    site.health = (status, dict(verify.HEALTHY_BODY))
    result = by_name(verify.run_checks(endpoint(), HOST))["https /health"]
    assert result.ok is False and result.detail.startswith(f"{status}"), result.line()


def test_a_failing_health_check_says_the_first_200_bytes_of_the_answer():
    # the application's own reason (which part failed) is what the reader acts on: the detail is its first 200 bytes,
    # neither fewer nor more (the cut falls inside the reason, where no space is there to strip)
    body = json.dumps({"status": "unhealthy", "database": "error: " + "x" * 300 + " connection refused"})

    class Answer:
        own_ca = False

        def request(self, scheme, host, path, port=None):
            return 503, {}, body.encode(), {"notAfter": "Jan  1 00:00:00 2999 GMT"}

    health = by_name(verify.check_health(Answer(), HOST, "/health"))["https /health"]
    assert len(body) > 250 and health.ok is False and health.detail == f"503 {body[:200]}", health.detail


@pytest.mark.parametrize(
    "answer", [b"garbage\r\n\r\n", b"HTTP/1.1 200 " + b"x" * 70000 + b"\r\n\r\n"], ids=["bad status line", "line too long"]
)
def test_a_server_that_answers_no_http_fails_the_check_not_with_a_traceback(answer):
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def answer_each():
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except TimeoutError:
                continue
            with connection:
                connection.settimeout(2)
                connection.recv(65536)
                connection.sendall(answer)

    thread = threading.Thread(target=answer_each, daemon=True)
    thread.start()
    try:
        endpoint = verify.Endpoint({(HOST, 80): server.getsockname()}, timeout=2)
        results = by_name(
            verify.run_http_checks(
                endpoint, HOST, [(80, ["http redirects to https"], lambda: [verify.check_redirect(endpoint, HOST, "/health")])], False
            )
        )
        result = results["http redirects to https"]
        assert result.ok is False and result.detail.startswith(("BadStatusLine", "LineTooLong")), result.line()
    finally:
        stop.set()
        thread.join(5)
        server.close()


def test_a_ca_bundle_of_just_the_largest_size_taken_is_read_and_one_byte_more_refused(pki, tmp_path, monkeypatch):
    bundle = (pki / "ca.pem").read_bytes()
    monkeypatch.setattr(verify, "MOST_CA_BUNDLE_BYTES", len(bundle))
    (tmp_path / "ca.pem").write_bytes(bundle)
    assert verify.Endpoint(ca_bundle=str(tmp_path / "ca.pem")).own_ca
    (tmp_path / "ca.pem").write_bytes(bundle + b"\n")
    with pytest.raises(templates.errors.RefusedFile, match="larger than"):
        verify.Endpoint(ca_bundle=str(tmp_path / "ca.pem"))


def test_a_request_leaves_no_socket_open(servers, dropping, monkeypatch):
    # each request closes what it opened, answered or not: make verify retries for minutes, up to 22 requests a round
    site, endpoint = servers
    given = endpoint()
    https = given.connect_to[(HOST, 443)]
    with socket.create_server(("127.0.0.1", 0)) as closed:  # a free port, nothing listening once closed: refused
        refused = closed.getsockname()
    monkeypatch.setattr(
        verify.socket,
        "getaddrinfo",
        lambda *a, **k: [(socket.AF_INET, socket.SOCK_STREAM, 6, "", where) for where in (refused, https)],
    )
    given.connect_to = {}
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always", ResourceWarning)
        assert given.request("https", HOST, "/health")[0] == 200
        gc.collect()
    assert not [w for w in said if issubclass(w.category, ResourceWarning)], [str(w.message) for w in said]


@pytest.mark.parametrize("value", ["h:65536:127.0.0.1:1", "h:443:127.0.0.1:65536"])
def test_connect_to_refuses_a_port_past_65535(value):
    # it was taken, and the request's connect raised OverflowError ("port must be 0-65535"), a traceback
    with pytest.raises(ValueError, match="ports 1 to 65535"):
        verify.parse_connect_to([value])


def test_a_certificate_not_valid_for_the_host_fails_both_checks_it_stops_not_skips_them(servers):
    site, endpoint = servers
    results = by_name(verify.run_checks(endpoint("wrong.example.test"), HOST))
    assert results["certificate valid for host"].ok is False and results["https /health"].ok is False, [r.line() for r in results.values()]
