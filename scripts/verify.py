"""`make verify STACK=service ENV=…`: is the deployed service really serving?

One line per check, exit 1 if any fails: the ECS rollout finished with running == desired,
every registered target healthy, HTTP answers 301 to HTTPS, HTTPS /health answers 200 with
{"status": "healthy", "database": "ok"} over a certificate valid for the host, and the
environment's own smoke checks (params file, `smoke_checks`). Failing checks are retried until
--timeout while a rollout may still be settling."""

import http.client
import json
import socket
import ssl
import time
from dataclasses import dataclass
from datetime import UTC, datetime

HEALTHY_BODY = {"status": "healthy", "database": "ok"}


@dataclass
class Result:
    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'}  {self.name:<28} {self.detail}"


class Endpoint:
    """Where to connect for host:port; `connect_to` maps (host, port) to another (address, port),
    like curl's --connect-to, so that checks can run against a local server. TLS still verifies
    the certificate against the real host name."""

    def __init__(self, connect_to=None, ca_bundle=None, timeout=10):
        self.connect_to = connect_to or {}
        self.context = ssl.create_default_context(cafile=ca_bundle)
        self.timeout = timeout

    def request(self, scheme, host, path):
        """(status, headers, body, peer certificate or None)."""
        port = 443 if scheme == "https" else 80
        address = self.connect_to.get((host, port), (host, port))
        sock = socket.create_connection(address, timeout=self.timeout)
        certificate = None
        if scheme == "https":
            sock = self.context.wrap_socket(sock, server_hostname=host)
            certificate = sock.getpeercert()
        connection = http.client.HTTPConnection(host, port, timeout=self.timeout)
        connection.sock = sock
        try:
            connection.request("GET", path, headers={"User-Agent": "startupwebapp-verify", "Accept": "application/json"})
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read(65536), certificate
        finally:
            connection.close()


def check_rollout(ecs, cluster, service) -> Result:
    found = ecs.describe_services(cluster=cluster, services=[service])["services"]
    if not found:
        return Result("ecs rollout", False, f"service {service} not found in cluster {cluster}")
    svc = found[0]
    primary = next((d for d in svc["deployments"] if d["status"] == "PRIMARY"), None)
    state = (primary or {}).get("rolloutState", "UNKNOWN")
    counts = f"running {svc['runningCount']}/{svc['desiredCount']}, {len(svc['deployments'])} deployment(s), rollout {state}"
    ok = state == "COMPLETED" and len(svc["deployments"]) == 1 and svc["runningCount"] == svc["desiredCount"] > 0
    return Result("ecs rollout", ok, counts)


def check_targets(elbv2, target_group_arn) -> Result:
    targets = elbv2.describe_target_health(TargetGroupArn=target_group_arn)["TargetHealthDescriptions"]
    states = [t["TargetHealth"]["State"] for t in targets]
    unhealthy = [
        f"{t['Target']['Id']} {t['TargetHealth']['State']} ({t['TargetHealth'].get('Reason', '')})"
        for t in targets
        if t["TargetHealth"]["State"] != "healthy"
    ]
    if not targets:
        return Result("targets healthy", False, "no target registered")
    return Result("targets healthy", not unhealthy, "; ".join(unhealthy) or f"{states.count('healthy')} of {len(states)} healthy")


def check_redirect(endpoint, host) -> Result:
    status, headers, _, _ = endpoint.request("http", host, "/health")
    location = headers.get("Location", "")
    ok = status == 301 and location.startswith(f"https://{host}")
    return Result("http redirects to https", ok, f"{status} -> {location or '(no Location)'}")


def check_health(endpoint, host, path="/health") -> list[Result]:
    """The certificate and /health; a TLS failure fails both."""
    try:
        status, _, body, certificate = endpoint.request("https", host, path)
    except ssl.SSLCertVerificationError as error:
        reason = error.verify_message or str(error)
        return [Result("certificate valid for host", False, reason), Result(f"https {path}", False, "no TLS connection")]
    expires = datetime.strptime(certificate["notAfter"], "%b %d %H:%M:%S %Y %Z").replace(tzinfo=UTC)
    days = (expires - datetime.now(UTC)).days
    results = [Result("certificate valid for host", True, f"{host}, expires in {days} days")]
    try:
        document = json.loads(body)
    except ValueError:
        document = None
    ok = status == 200 and isinstance(document, dict) and all(document.get(k) == v for k, v in HEALTHY_BODY.items())
    results.append(Result(f"https {path}", ok, f"{status} {body[:200].decode(errors='replace').strip()}"))
    return results


def check_smoke(endpoint, host, smoke) -> Result:
    status, _, _, _ = endpoint.request("https", host, smoke["path"])
    return Result(f"smoke {smoke['path']}", status == smoke["status"], f"{status} (expected {smoke['status']})")


def run_checks(endpoint, host, *, ecs=None, elbv2=None, cluster=None, service=None, target_group_arn=None, smoke_checks=()) -> list[Result]:
    results = []
    if ecs is not None:
        results.append(check_rollout(ecs, cluster, service))
    if elbv2 is not None:
        results.append(check_targets(elbv2, target_group_arn))
    if endpoint is None:
        return results
    for name, check in [
        ("http redirects to https", lambda: [check_redirect(endpoint, host)]),
        ("https /health", lambda: check_health(endpoint, host)),
        *[(f"smoke {s['path']}", lambda s=s: [check_smoke(endpoint, host, s)]) for s in smoke_checks],
    ]:
        try:
            results.extend(check())
        except (OSError, http.client.HTTPException) as error:
            results.append(Result(name, False, f"{type(error).__name__}: {error}"))
    return results


def verify(run, *, timeout, interval=5, sleep=time.sleep, clock=time.monotonic, say=print) -> bool:
    """Run the checks until they all pass or `timeout` seconds have gone; print the last round."""
    deadline = clock() + timeout
    attempt = 1
    while True:
        results = run()
        failed = [r for r in results if not r.ok]
        if not failed or clock() + interval > deadline:
            break
        say(f"attempt {attempt}: {len(failed)} check(s) failing ({', '.join(r.name for r in failed)}); retrying in {interval} s")
        sleep(interval)
        attempt += 1
    for result in results:
        say(result.line())
    say(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    return not failed


def parse_connect_to(values) -> dict:
    """["host:443:127.0.0.1:8443", ...] -> {("host", 443): ("127.0.0.1", 8443)}."""
    mapping = {}
    for value in values:
        parts = value.split(":")
        if len(parts) != 4 or not parts[1].isdigit() or not parts[3].isdigit():
            raise ValueError(f"--connect-to {value!r}: expected HOST:PORT:ADDRESS:PORT")
        mapping[(parts[0], int(parts[1]))] = (parts[2], int(parts[3]))
    return mapping
