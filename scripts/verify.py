"""`make verify STACK=service ENV=…`: is the deployed service really serving?

One line per check, exit 1 if any fails: the ECS rollout finished with running == desired,
every target registered in either target group healthy (a blue/green release leaves the tasks in
either), HTTP answers 301 to HTTPS, HTTPS on the alb layer's HealthCheckPath (its stack's parameter, which
the stack sets on the target groups' health check; /health by default) answers 200 with {"status": "healthy", "database": "ok"} over a certificate
valid for the host, and the environment's own smoke checks
(params file, `smoke_checks`). Failing checks are retried until --timeout while a rollout may
still be settling. With TEST_LISTENER=1 the HTTPS checks go to the test listener instead, which
reaches a release's new tasks before production traffic does.

On an emulator (the sandbox: AWS_ENDPOINT_URL set) a check that cannot pass there is not run but
printed as skipped, with the reason: the emulator runs no containers, so no rollout completes and
no target registers (an "ecs service" check runs instead: the service exists, is active and runs
the stack's task definition); and the public host in the stacks' outputs is not the emulator's, so
an HTTP check runs only when --connect-to maps its host and port (a local server), never against
the public host."""

import http.client
import io
import ipaddress
import os
import re
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

from templates.alb import target_group_name
from templates.errors import RefusedFile, open_regular_file, printable, untrusted_json
from templates.inputs import INPUTS

HEALTHY_BODY = {"status": "healthy", "database": "ok"}
NO_CONTAINERS = "the emulator runs no containers"
MOST_CA_BUNDLE_BYTES = 16 << 20  # a system's whole bundle is some 200 KiB: ssl reads all of a bigger file into memory


@dataclass
class Result:
    """One check's outcome; ok None: not run (skipped), detail says why. A skip is never a pass."""

    name: str
    ok: bool | None
    detail: str

    @classmethod
    def skip(cls, name, reason) -> "Result":
        return cls(name, None, reason)

    @property
    def skipped(self) -> bool:
        return self.ok is None

    @property
    def failed(self) -> bool:
        return self.ok is False

    def line(self) -> str:
        label = "skip" if self.skipped else "ok  " if self.ok else "FAIL"
        # the detail may quote the server's answer: on one line, or its newlines would print forged results
        return f"{label}  {self.name:<28} {printable(self.detail, one_line=True)}"


class Endpoint:
    """Where to connect for host:port; `connect_to` maps (host, port) to another (address, port),
    like curl's --connect-to, so that checks can run against a local server. TLS still verifies
    the certificate against the real host name."""

    def __init__(self, connect_to=None, ca_bundle=None, timeout=10, until=None):
        self.connect_to = connect_to or {}
        self.own_ca = ca_bundle is not None
        # ssl reads a CA bundle by path: a FIFO blocked that read past any timeout, /dev/zero never ended. It
        # reads the file opened and judged here, through its descriptor (/dev/fd), not the path again.
        descriptor = None if ca_bundle is None else open_regular_file(ca_bundle)
        try:
            if descriptor is not None and os.fstat(descriptor).st_size > MOST_CA_BUNDLE_BYTES:
                raise RefusedFile(f"larger than {MOST_CA_BUNDLE_BYTES >> 20} MiB; allowed: a PEM file of CA certificates of at most that")
            self.context = ssl.create_default_context(cafile=None if descriptor is None else f"/dev/fd/{descriptor}")
        except ssl.SSLError:  # no certificate, bad base64
            raise RefusedFile("no certificate in it that ssl can read; allowed: a PEM file of CA certificates") from None
        finally:
            if descriptor is not None:
                os.close(descriptor)
        self.timeout = timeout
        # time.monotonic() past which make verify's TIMEOUT has gone. A round runs every check, each
        # request with its own timeout (a slow answer passes); past `until`, a server (a host name, or
        # CONNECT_TO's address) that let one request time out is not asked again, on any port, so that a
        # round against a server that never answers ends one timeout after TIMEOUT, not one a check (or a
        # port: the redirect's 80, then 443) later (smoke_checks hold up to 20). The round fails either way.
        self.until = until
        self.unanswered = set()  # servers that let a request time out past `until`

    def maps(self, host, port) -> bool:
        return (host.lower(), port) in self.connect_to  # host names are case-insensitive, as curl takes them

    def request(self, scheme, host, path, port=None):
        """(status, headers (case-insensitive), body, peer certificate or None). With connect_to given,
        only the host:ports it maps are requested: never the public host for one it leaves out."""
        port = port or (443 if scheme == "https" else 80)
        if self.connect_to and not self.maps(host, port):
            raise NotMapped(f"{host}:{port} is not in CONNECT_TO: with it given, the public host is never requested")
        address = self.connect_to.get((host.lower(), port), (host, port))
        if self.late() and address[0] in self.unanswered:
            raise TimeoutError(f"not requested: {address[0]} let an earlier request time out after TIMEOUT")
        try:
            return self.request_once(scheme, host, path, port, address)
        except TimeoutError:
            if self.late():  # when it timed out: one started just before TIMEOUT counts too
                self.unanswered.add(address[0])
            raise

    def late(self) -> bool:
        return self.until is not None and time.monotonic() > self.until

    def request_once(self, scheme, host, path, port, address):
        deadline = time.monotonic() + self.timeout  # for the whole request: a server sending a byte at a time
        sock = connect(address, deadline)
        certificate = None
        try:
            sock.settimeout(max(deadline - time.monotonic(), 0.001))  # the TLS handshake gets only what is left
            if scheme == "https":
                sock = self.context.wrap_socket(sock, server_hostname=host)
                certificate = sock.getpeercert()
            connection = http.client.HTTPConnection(host, port, timeout=self.timeout)
            connection.sock = Deadline(sock, deadline)
            connection.request("GET", path, headers={"User-Agent": "startupwebapp-verify", "Accept": "application/json"})
            response = connection.getresponse()
            return response.status, response.headers, response.read(65536), certificate
        finally:
            sock.close()

    def target(self, host, port) -> str:
        """Where a request for host:port goes, as a message names it."""
        mapped = self.connect_to.get((host.lower(), port))
        return f"{mapped[0]}:{mapped[1]}, CONNECT_TO's for {host}:{port}" if mapped else f"{host}:{port}"


def connect(address, deadline) -> socket.socket:
    """A TCP connection to one of the addresses the host name resolves to, by the deadline. A load
    balancer's name has one address per zone: socket.create_connection gave each the whole timeout,
    so one that dropped the connection cost it all (twice it, for two), and the address that answered
    was left no time for its TLS handshake. Each address but the last gets half of what is left, as
    curl gives it."""
    host, port = address
    found = look_up(host, port, deadline)
    failed = None
    for n, (family, kind, protocol, _, where) in enumerate(found):
        left = deadline - time.monotonic()
        if left <= 0:
            break
        sock = None
        try:  # the socket too: a family this kernel lacks (IPv6 turned off) goes on to the next address, as create_connection does
            sock = socket.socket(family, kind, protocol)
            sock.settimeout(left if n == len(found) - 1 else left / 2)
            sock.connect(where)
            return sock
        except OSError as error:
            if sock is not None:
                sock.close()
            failed = error
    raise failed or TimeoutError(f"no time left to connect to {host}:{port}")


def look_up(host, port, deadline) -> list:
    """socket.getaddrinfo(host, port) by the deadline. The system's resolver has time limits of its own,
    which no socket timeout bounds: 5 s an attempt, 2 attempts, for each name server of resolv.conf
    (https://man7.org/linux/man-pages/man5/resolv.conf.5.html), so a name server that does not answer
    held a request for 10 s or more past its timeout. A lookup still under way at the deadline is left
    to end in its own (daemon) thread."""
    answer = {}

    def ask():
        try:
            answer["found"] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except BaseException as error:  # raised in the caller, as getaddrinfo's own (a UnicodeError for a label over 63 characters)
            answer["error"] = error

    lookup = threading.Thread(target=ask, name=f"look up {host}", daemon=True)
    lookup.start()
    lookup.join(max(deadline - time.monotonic(), 0))
    if lookup.is_alive():
        raise TimeoutError(f"looking up {host} took longer than the request's timeout")
    if "error" in answer:
        raise answer["error"]
    return answer["found"]


class NotMapped(OSError):
    """A host:port CONNECT_TO leaves out, once given: nothing is requested, and run_http_checks skips the check."""


class Deadline:
    """A socket whose every receive and send gets only the time left of the request (socket timeouts
    bound each call alone, and a server may answer a byte at a time)."""

    def __init__(self, sock, deadline):
        self.sock, self.deadline = sock, deadline

    def _left(self):
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the request took longer than its timeout")
        self.sock.settimeout(left)

    def recv_into(self, *args):
        self._left()
        return self.sock.recv_into(*args)

    def recv(self, *args):
        self._left()
        return self.sock.recv(*args)

    def sendall(self, *args):
        self._left()
        return self.sock.sendall(*args)

    def makefile(self, mode="rb", *args, **kwargs):  # http.client reads the response through it
        return io.BufferedReader(socket.SocketIO(self, "rb"))

    def _decref_socketios(self):  # SocketIO's close: the socket itself is closed by request()
        pass

    def close(self):  # http.client closes a connection it will not reuse before the body is read: request() closes it after
        pass

    def __getattr__(self, name):
        return getattr(self.sock, name)


def check_rollout(ecs, cluster, service, task_definition=None) -> Result:
    """The service's release is complete and runs task_definition, the stack's: a rollback of ECS's
    own (stop-service-deployment, a circuit breaker) or an update-service by hand completes too."""
    found = ecs.describe_services(cluster=cluster, services=[service])["services"]
    if not found:
        return Result("ecs rollout", False, f"service {service} not found in cluster {cluster}")
    svc = found[0]
    primary = next((d for d in svc["deployments"] if d["status"] == "PRIMARY"), None)
    # "The rolloutState of a service is only returned for services that use the rolling update (ECS) deployment
    # type" (Deployment, in ECS's API reference, as the SDKs give it:
    # https://docs.aws.amazon.com/sdk-for-kotlin/api/latest/ecs/aws.sdk.kotlin.services.ecs.model/-deployment/rollout-state.html). Written before ECS's own
    # blue/green, canary and linear strategies; should ECS leave it out for them, one deployment left (the release's
    # old one gone) with every task running is the release complete.
    state = (primary or {}).get("rolloutState")
    counts = f"running {svc['runningCount']}/{svc['desiredCount']}, {len(svc['deployments'])} deployment(s), rollout {state or 'state not given'}"
    running = (primary or {}).get("taskDefinition") or svc.get("taskDefinition", "")
    if task_definition and running != task_definition:
        return Result(
            "ecs rollout",
            False,
            f"{counts}, of task definition {running.split('/')[-1]}, but the stack's is {task_definition.split('/')[-1]}",
        )
    ok = (
        state in ("COMPLETED", None)
        and primary is not None
        and len(svc["deployments"]) == 1
        and svc["runningCount"] == svc["desiredCount"] > 0
    )
    return Result("ecs rollout", ok, counts)


def check_service(ecs, cluster, service, task_definition=None) -> Result:
    """What an emulator can show of the service: it exists, is ACTIVE and runs task_definition (the
    stack's), which a deploy's update changes at once; no task runs there, so no counts."""
    found = ecs.describe_services(cluster=cluster, services=[service])["services"]
    if not found:
        return Result("ecs service", False, f"service {service} not found in cluster {cluster}")
    svc = found[0]
    running = svc.get("taskDefinition", "")
    detail = f"{svc.get('status', 'UNKNOWN')}, desired {svc.get('desiredCount', '?')}, task definition {running.split('/')[-1] or '(none)'}"
    if task_definition and running != task_definition:
        return Result("ecs service", False, f"{detail}, but the stack's is {task_definition.split('/')[-1]}")
    # "The valid values are ACTIVE, DRAINING, or INACTIVE": https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_Service.html
    return Result("ecs service", svc.get("status") == "ACTIVE", detail)


def check_targets(elbv2, target_group_arns) -> Result:
    """Every target registered in the service's target groups is healthy, and there is one. A
    BLUE_GREEN, CANARY or LINEAR release leaves the tasks in either group (templates/alb.py), and
    during its bake time in both."""
    found = []
    for arn in target_group_arns:
        group = target_group_name(arn)
        found += [(group, t) for t in elbv2.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]]
    if not found:
        return Result("targets healthy", False, "no target registered")
    # State healthy, or initial, unhealthy, unused, draining, unavailable with a Reason ("If the target state is healthy,
    # a reason code is not provided"): https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_TargetHealth.html
    unhealthy = [
        f"{t['Target']['Id']} in {group} {t['TargetHealth']['State']} ({t['TargetHealth'].get('Reason', '')})"
        for group, t in found
        if t["TargetHealth"]["State"] != "healthy"
    ]
    groups = sorted({group for group, _ in found})
    healthy = f"{len(found)} of {len(found)} healthy ({', '.join(groups)})"
    return Result("targets healthy", not unhealthy, "; ".join(unhealthy) or healthy)


def check_redirect(endpoint, host, path) -> Result:
    status, headers, _, _ = endpoint.request("http", host, path)
    location = headers.get("Location", "")  # an HTTP header: any case (an HTTPMessage's get ignores it)
    try:
        target = urlsplit(location)
        ok = status == 301 and target.scheme == "https" and target.hostname == host.lower() and target.port in (None, 443)
    except ValueError:  # a malformed Location (bad port, ...)
        ok = False
    return Result("http redirects to https", ok, f"{status} -> {location or '(no Location)'}")


def in_days(days: int) -> str:
    return "within a day" if days < 1 else f"in {days} day{'' if days == 1 else 's'}"


# OpenSSL's verify codes for an issuer the trust store lacks: X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT (2),
# X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT (18), X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN (19),
# X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY (20): https://docs.openssl.org/master/man3/X509_STORE_CTX_get_error/
UNKNOWN_ISSUER = (2, 18, 19, 20)


def untrusted_issuer(endpoint, host, port) -> str:
    """What to do about a certificate whose issuer is not trusted: CA_BUNDLE= holds the CAs trusted instead of the
    system's (ssl.create_default_context(cafile=...) loads no default CAs beside it:
    https://docs.python.org/3/library/ssl.html#ssl.create_default_context)."""
    if endpoint.own_ca:
        return "; the CA_BUNDLE= file does not hold its issuer (while it is given, only its CAs are trusted, not the system's)"
    if endpoint.maps(host, port):  # CONNECT_TO: a server of one's own, or a public one (a load balancer's address)
        return (
            "; the system's trust store lacks its issuer (a CA of your own, at the server CONNECT_TO maps the host to; or a proxy"
            " that inspects TLS, or a Python without the public CAs): CA_BUNDLE=<a PEM file holding it>"
        )
    return "; the system's trust store lacks its issuer (a proxy that inspects TLS, or a Python without the public CAs): CA_BUNDLE=<a PEM file holding it>"


def check_health(endpoint, host, path, port=443) -> list[Result]:
    """The certificate and the health-check path; a TLS failure fails both."""
    try:
        status, _, body, certificate = endpoint.request("https", host, path, port)
    except ssl.SSLCertVerificationError as error:
        reason = error.verify_message or str(error)
        if error.verify_code in UNKNOWN_ISSUER:
            reason += untrusted_issuer(endpoint, host, port)
        return [Result("certificate valid for host", False, reason), Result(f"https {path}", False, "no TLS connection")]
    expires = datetime.strptime(certificate["notAfter"], "%b %d %H:%M:%S %Y %Z").replace(tzinfo=UTC)
    days = (expires - datetime.now(UTC)).days
    results = [Result("certificate valid for host", True, f"{host}, expires {in_days(days)}")]
    document = untrusted_json(body)
    ok = status == 200 and isinstance(document, dict) and all(document.get(k) == v for k, v in HEALTHY_BODY.items())
    results.append(Result(f"https {path}", ok, f"{status} {body[:200].decode(errors='replace').strip()}"))
    return results


def check_smoke(endpoint, host, smoke, port=443) -> Result:
    status, _, _, _ = endpoint.request("https", host, smoke["path"], port)
    return Result(f"smoke {smoke['path']}", status == smoke["status"], f"{status} (expected {smoke['status']})")


def run_checks(
    endpoint,
    host,
    *,
    ecs=None,
    elbv2=None,
    cluster=None,
    service=None,
    target_group_arns=(),
    smoke_checks=(),
    emulator=False,
    task_definition=None,
    test_listener_port=None,
    health_path=None,
) -> list[Result]:
    """One result per check, in a fixed order. With `emulator` the checks it cannot pass are
    skipped, and an HTTP check runs only where `endpoint` maps its host and port (a local server);
    endpoint None: no HTTP check runs. With `test_listener_port` the HTTPS checks go to the load
    balancer's test listener, which reaches a release's new tasks before production traffic does;
    the rollout and target checks, which judge a finished release, are skipped then. health_path: the
    path the target group probes (the alb layer's HealthCheckPath), which the application answers;
    None: the input's default (a stack deployed without the parameter)."""
    health_path = health_path or INPUTS["HealthCheckPath"].default
    results = []
    https = test_listener_port or 443
    if test_listener_port:
        reason = "TEST_LISTENER: the new tasks are checked through the test listener before the release completes"
        results.append(Result.skip("ecs rollout", reason))
        results.append(Result.skip("targets healthy", reason))
        results.append(Result.skip("http redirects to https", "the test listener answers HTTPS only"))
    elif emulator:
        if ecs is not None:
            results.append(check_service(ecs, cluster, service, task_definition))
            results.append(Result.skip("ecs rollout", f"{NO_CONTAINERS}, so no task starts and no rollout completes"))
        if elbv2 is not None:
            results.append(Result.skip("targets healthy", f"{NO_CONTAINERS}, so no target is registered to be healthy"))
    else:
        results += [check_rollout(ecs, cluster, service, task_definition)] if ecs is not None else []
        results += [check_targets(elbv2, target_group_arns)] if elbv2 is not None else []
    checks = [
        *([] if test_listener_port else [(80, ["http redirects to https"], lambda: [check_redirect(endpoint, host, health_path)])]),
        (https, ["certificate valid for host", f"https {health_path}"], lambda: check_health(endpoint, host, health_path, https)),
        *[(https, [f"smoke {s['path']}"], lambda s=s: [check_smoke(endpoint, host, s, https)]) for s in smoke_checks],
    ]
    return results + run_http_checks(endpoint, host, checks, emulator)


def run_http_checks(endpoint, host, checks, emulator) -> list[Result]:
    """checks: (port, the names of its results, check); on an emulator only the mapped ports are requested."""
    results = []
    for port, names, check in checks:
        if emulator and (endpoint is None or not endpoint.maps(host, port)):
            reason = f"{host}:{port} is the public host, not the emulator's: CONNECT_TO= maps it to a local server"
            if endpoint is not None and endpoint.connect_to:  # CONNECT_TO= given, without this port
                reason = f"{host}:{port} is the public host, not the emulator's, and CONNECT_TO= maps no {host}:{port}"
            results.extend(Result.skip(name, reason) for name in names)
            continue
        if endpoint is None:
            results.extend(Result.skip(name, "no HTTP endpoint given") for name in names)
            continue
        try:
            results.extend(check())
        except NotMapped as left_out:  # before OSError, which it is
            results.extend(Result.skip(name, str(left_out)) for name in names)
        except (OSError, http.client.HTTPException) as error:
            # which address refused or timed out: with CONNECT_TO, not the host the check names
            results.extend(Result(name, False, f"{type(error).__name__}: {error} ({endpoint.target(host, port)})") for name in names)
    return results


def verify(run, *, timeout, interval=5, sleep=time.sleep, clock=time.monotonic, say=print, endpoint=None) -> bool:
    """Run the checks until none fails or `timeout` seconds have gone, saying each retry; print the
    last round, one line per check, skipped ones with their reason. Fails when nothing was checked.
    The endpoint the checks go through learns the deadline (Endpoint.until, on its own clock:
    time.monotonic, which Endpoint.request reads)."""
    deadline = clock() + timeout
    if endpoint is not None:
        endpoint.until = time.monotonic() + timeout
    attempt, said = 1, []
    while True:
        results = run()
        failed = [r for r in results if r.failed]
        left = deadline - clock()
        if not failed or left <= 0:
            break
        wait = min(interval, left)  # the last attempt at the deadline, not one interval before it
        say(f"attempt {attempt}: {len(failed)} check(s) failing ({', '.join(r.name for r in failed)}); retrying in {wait:.2g} s")
        # Why, each time it changes: a wrong CA bundle fails the same way until the deadline (10 minutes).
        for result in failed:
            if result.line() not in said:
                say(f"  {result.line()}")
        said = [result.line() for result in failed]
        sleep(wait)
        attempt += 1
    for result in results:
        say(result.line())
    skipped = [r for r in results if r.skipped]
    passed = len(results) - len(failed) - len(skipped)
    nothing = "" if passed or failed else ": nothing was checked"
    say(f"{passed} passed, {len(failed)} failed" + (f", {len(skipped)} skipped" if skipped else "") + nothing)
    return passed > 0 and not failed


HOST_NAME = re.compile(r"(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*")


def parse_connect_to(values, loopback_only=False) -> dict:
    """["host:443:127.0.0.1:8443", ...] -> {("host", 443): ("127.0.0.1", 8443)}, host names in lower
    case. loopback_only: every address must be a loopback IP (an emulator's checks stay on this machine)."""
    mapping = {}
    for value in values:
        parts = value.split(":")
        ports_ok = len(parts) == 4 and all(
            re.fullmatch(r"[0-9]{1,5}", p) and 0 < int(p) < 65536 for p in parts[1::2]
        )  # ASCII digits: isdecimal took ١٢٣
        if not ports_ok or not HOST_NAME.fullmatch(parts[0]) or not (is_ip(parts[2]) or HOST_NAME.fullmatch(parts[2])):
            raise ValueError(
                f"CONNECT_TO (--connect-to) {value!r}: expected HOST:PORT:ADDRESS:PORT (HOST a host name, ADDRESS an IPv4 address "
                "or host name), ports 1 to 65535"
            )
        if loopback_only and not is_loopback_ip(parts[2]):
            raise ValueError(
                f"CONNECT_TO (--connect-to) {value!r}: on an emulator (ENV=sandbox, or AWS_ENDPOINT_URL set) the address must be a loopback IPv4 "
                "address such as 127.0.0.1 (a name such as localhost is not taken: the hosts file may send it elsewhere)"
            )
        key, address = (parts[0].lower(), int(parts[1])), (parts[2], int(parts[3]))
        taken = mapping.setdefault(key, address)
        # curl: "The first string that matches the request's host and port is used"
        # (https://curl.se/libcurl/c/CURLOPT_CONNECT_TO.html); here a second, other address is a slip, refused
        if (taken[0].lower(), taken[1]) != (address[0].lower(), address[1]):
            raise ValueError(
                f"CONNECT_TO (--connect-to) {value!r}: {key[0]}:{key[1]} is mapped to {taken[0]}:{taken[1]} already: "
                "allowed: one address for a host and port"
            )
    return mapping


def is_ip(text) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def is_loopback_ip(text) -> bool:
    """An IP address of this machine (127.0.0.0/8, ::1)."""
    return is_ip(text) and ipaddress.ip_address(text).is_loopback
