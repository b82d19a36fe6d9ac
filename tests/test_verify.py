"""make verify's checks against local HTTP and HTTPS servers on 127.0.0.1 with a test CA, and
the AWS checks against botocore's Stubber."""

import datetime
import json
import re
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import pytest
from botocore.stub import Stubber
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from scripts import verify

HOST = "api.example.test"


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
        self.health = (200, {"status": "healthy", "database": "ok"})
        self.paths = {"/api/user/login": 200}


def serve(site, tls_context=None):
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            if tls_context is None:
                if site.redirect:
                    self.send_response(301)
                    self.send_header("Location", f"https://{self.headers['Host']}{self.path}")
                else:
                    self.send_response(200)
                self.end_headers()
                return
            status, body = site.health if self.path == "/health" else (site.paths.get(self.path, 404), {})
            payload = json.dumps(body).encode()
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
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server


@pytest.fixture
def servers(pki):
    """(site, endpoint factory taking the certificate's host name)."""
    site = Site()
    started = []

    def endpoint(certificate_host=HOST):
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(pki / f"{certificate_host}.pem")
        https = serve(site, context)
        http = serve(site)
        started.extend([https, http])
        connect_to = {(HOST, 443): https.server_address, (HOST, 80): http.server_address}
        return verify.Endpoint(connect_to, ca_bundle=str(pki / "ca.pem"), timeout=5)

    yield site, endpoint
    for server in started:
        server.shutdown()
        server.server_close()


def by_name(results):
    return {r.name: r for r in results}


def test_a_healthy_site_passes_every_http_check(servers):
    site, endpoint = servers
    results = by_name(verify.run_checks(endpoint(), HOST, smoke_checks=[{"path": "/api/user/login", "status": 200}]))
    assert all(r.ok for r in results.values()), [r.line() for r in results.values()]
    assert set(results) == {"http redirects to https", "certificate valid for host", "https /health", "smoke /api/user/login"}
    assert re.fullmatch(rf"{HOST}, expires in 8[89] days", results["certificate valid for host"].detail)


def test_failing_health(servers):
    site, endpoint = servers
    site.health = (503, {"status": "unhealthy", "database": "error"})
    results = by_name(verify.run_checks(endpoint(), HOST))
    assert not results["https /health"].ok and "503" in results["https /health"].detail
    assert results["certificate valid for host"].ok


def test_health_with_wrong_body(servers):
    site, endpoint = servers
    site.health = (200, {"status": "healthy", "database": "down"})
    assert not by_name(verify.run_checks(endpoint(), HOST))["https /health"].ok


def test_wrong_certificate(servers):
    site, endpoint = servers
    results = by_name(verify.run_checks(endpoint("wrong.example.test"), HOST))
    assert not results["certificate valid for host"].ok
    assert "mismatch" in results["certificate valid for host"].detail or "match" in results["certificate valid for host"].detail
    assert not results["https /health"].ok


def test_missing_redirect(servers):
    site, endpoint = servers
    site.redirect = False
    results = by_name(verify.run_checks(endpoint(), HOST))
    assert not results["http redirects to https"].ok
    assert results["http redirects to https"].detail.startswith("200")


def test_failing_smoke_check(servers):
    site, endpoint = servers
    results = by_name(verify.run_checks(endpoint(), HOST, smoke_checks=[{"path": "/api/order", "status": 200}]))
    assert not results["smoke /api/order"].ok and "404" in results["smoke /api/order"].detail


def test_unreachable_host_is_a_failed_check_not_a_traceback():
    endpoint = verify.Endpoint({(HOST, 443): ("127.0.0.1", 9), (HOST, 80): ("127.0.0.1", 9)}, timeout=2)
    results = verify.run_checks(endpoint, HOST)
    assert results and not any(r.ok for r in results)
    assert all("ConnectionRefusedError" in r.detail for r in results)


def stubbed(service):
    client = boto3.client(service, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    return client, Stubber(client)


def service_response(state, running, desired, deployments=1):
    deployment = {"id": "ecs-svc/1", "status": "PRIMARY", "rolloutState": state}
    extra = [{"id": "ecs-svc/0", "status": "ACTIVE", "rolloutState": "COMPLETED"}] * (deployments - 1)
    return {"services": [{"serviceName": "svc", "runningCount": running, "desiredCount": desired, "deployments": [deployment, *extra]}]}


@pytest.mark.parametrize(
    "state, running, desired, deployments, ok",
    [("COMPLETED", 2, 2, 1, True), ("IN_PROGRESS", 2, 2, 2, False), ("COMPLETED", 1, 2, 1, False), ("FAILED", 2, 2, 1, False)],
)
def test_rollout_check(state, running, desired, deployments, ok):
    ecs, stub = stubbed("ecs")
    stub.add_response("describe_services", service_response(state, running, desired, deployments), {"cluster": "c", "services": ["svc"]})
    with stub:
        result = verify.check_rollout(ecs, "c", "svc")
    assert result.ok is ok
    assert f"running {running}/{desired}" in result.detail


def test_targets_check_names_the_unhealthy_target():
    elbv2, stub = stubbed("elbv2")
    arn = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/tg/0123456789abcdef"
    descriptions = [
        {"Target": {"Id": "10.0.1.5", "Port": 8000}, "TargetHealth": {"State": "healthy"}},
        {"Target": {"Id": "10.0.2.7", "Port": 8000}, "TargetHealth": {"State": "unhealthy", "Reason": "Target.ResponseCodeMismatch"}},
    ]
    stub.add_response("describe_target_health", {"TargetHealthDescriptions": descriptions}, {"TargetGroupArn": arn})
    stub.add_response("describe_target_health", {"TargetHealthDescriptions": []}, {"TargetGroupArn": arn})
    with stub:
        first = verify.check_targets(elbv2, arn)
        second = verify.check_targets(elbv2, arn)
    assert not first.ok and "10.0.2.7 unhealthy (Target.ResponseCodeMismatch)" in first.detail
    assert not second.ok and second.detail == "no target registered"


def test_verify_retries_until_the_checks_pass_then_prints_one_line_each():
    rounds = iter([[verify.Result("ecs rollout", False, "rollout IN_PROGRESS")], [verify.Result("ecs rollout", True, "rollout COMPLETED")]])
    now = [0.0]
    lines = []
    ok = verify.verify(
        lambda: next(rounds), timeout=60, interval=5, sleep=lambda s: now.__setitem__(0, now[0] + s), clock=lambda: now[0], say=lines.append
    )
    assert ok
    assert lines[0].startswith("attempt 1: 1 check(s) failing (ecs rollout)")
    assert lines[-2].startswith("ok    ecs rollout") and lines[-1] == "1 passed, 0 failed"


def test_verify_gives_up_at_the_deadline():
    calls = []
    now = [0.0]

    def run():
        calls.append(1)
        return [verify.Result("https /health", False, "503")]

    lines = []
    ok = verify.verify(run, timeout=12, interval=5, sleep=lambda s: now.__setitem__(0, now[0] + s), clock=lambda: now[0], say=lines.append)
    assert not ok and len(calls) == 3
    assert lines[-1] == "0 passed, 1 failed" and lines[-2].startswith("FAIL  https /health")


def test_make_verify_reads_the_stacks_outputs_and_runs_every_check(servers, pki, monkeypatch):
    """The whole command: outputs from CloudFormation, AWS checks and HTTP checks, one line each."""
    import io

    from scripts import deploy

    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    site, endpoint = servers
    started = endpoint()
    https, http = started.connect_to[(HOST, 443)], started.connect_to[(HOST, 80)]
    arn = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/tg/0123456789abcdef"
    clients = {name: stubbed(name) for name in ("cloudformation", "ecs", "elbv2")}
    stacks = {
        "startupwebapp-prod-alb": {"ServiceHost": HOST, "ServiceUrl": f"https://{HOST}", "TargetGroupArn": arn},
        "startupwebapp-prod-service": {"ClusterName": "c", "ServiceName": "svc"},
    }
    for name, outputs in stacks.items():
        stack = {
            "StackName": name,
            "StackId": f"arn:aws:cloudformation:us-east-1:123456789012:stack/{name}/1",
            "CreationTime": datetime.datetime(2025, 11, 1, tzinfo=datetime.UTC),
            "StackStatus": "UPDATE_COMPLETE",
            "Outputs": [{"OutputKey": k, "OutputValue": v} for k, v in outputs.items()],
        }
        clients["cloudformation"][1].add_response("describe_stacks", {"Stacks": [stack]}, {"StackName": name})
    clients["ecs"][1].add_response("describe_services", service_response("COMPLETED", 2, 2), {"cluster": "c", "services": ["svc"]})
    healthy = [{"Target": {"Id": f"10.0.{i}.5", "Port": 8000}, "TargetHealth": {"State": "healthy"}} for i in (1, 2)]
    clients["elbv2"][1].add_response("describe_target_health", {"TargetHealthDescriptions": healthy}, {"TargetGroupArn": arn})
    argv = ["verify", "--env", "prod", "--stack", "service", "--timeout", "5", "--ca-bundle", str(pki / "ca.pem")]
    argv += ["--connect-to", f"{HOST}:443:{https[0]}:{https[1]}", "--connect-to", f"{HOST}:80:{http[0]}:{http[1]}"]
    site.paths["/api/user/login"] = 405
    site.paths["/api/order/orders"] = 401
    out, err = io.StringIO(), io.StringIO()
    for _, stub in clients.values():
        stub.activate()
    code = deploy.main(argv, clients=lambda service: clients[service][0], out=out, err=err, sleep=lambda s: None)
    lines = out.getvalue().splitlines()
    assert code == 0, out.getvalue() + err.getvalue()
    assert lines[0] == f"verifying https://{HOST} (prod), for up to 5 s"
    assert [line.split()[0] for line in lines[1:-1]] == ["ok"] * 7
    assert lines[-1] == "7 passed, 0 failed"


def test_make_verify_is_for_the_service_layer():
    import io

    from scripts import deploy

    err = io.StringIO()
    assert deploy.main(["verify", "--env", "prod", "--stack", "alb"], out=io.StringIO(), err=err) == 2
    assert "verify works on the service layer" in err.getvalue()
