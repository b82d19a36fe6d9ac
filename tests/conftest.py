import contextlib
import errno
import faulthandler
import gc
import io
import ipaddress
import json
import os
import re
import signal
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

import templates
from templates import ROOT, generation
from templates.errors import long_lived
from templates.params import load, load_all

# No test reaches AWS, and none depends on the shell's AWS or proxy settings: they are dropped for
# the whole run (its subprocesses and servers too), and each test sets what it needs. Left, an
# AWS_ENDPOINT_URL_SSM or AWS_IGNORE_CONFIGURED_ENDPOINT_URLS sent the fault tests' requests to AWS's
# hosts, and an HTTP_PROXY got the sandbox's.
for name in [n for n in os.environ if n.startswith("AWS_") or n.lower() in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")]:
    del os.environ[name]
os.environ |= {"AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull}  # nor ~/.aws's files
# A run without credentials (a test of that error) must not ask the instance metadata service for
# some: botocore's chain ends there, at 169.254.169.254, off this machine.
# https://docs.aws.amazon.com/sdkref/latest/guide/feature-imds-credentials.html (AWS_EC2_METADATA_DISABLED)
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"

# A shell starts a background job (`make test &`, a script's `&`) with Ctrl-C's signal ignored, which the
# workers and every process they start inherit: the tests of what Ctrl-C does failed. Python's own
# handler, as at a terminal (exec resets a handled signal to its default, so the processes started get that).
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
# Under nohup (`nohup make bench`) a closed terminal's signal is ignored the same way, and the tools keep it so, as
# they should: the tests of what SIGHUP does start their processes with its default, as from a terminal.
if signal.getsignal(signal.SIGHUP) is signal.SIG_IGN:
    signal.signal(signal.SIGHUP, signal.SIG_DFL)


# The cyclic collector took 7.4 s of the two workers' CPU in a run (timed with gc.callbacks), 5.9 s
# of it in 39 full passes over their unfrozen heaps (checkov's graphs, cfn-lint's rules, botocore's
# models: up to 650,000 objects each). Young passes less often, and a full one only after 100 older
# ones (none in a run): 2.6 s. Three interleaved suite runs each: 74.6 s of CPU before, 71.6 s after, for
# about 100 MiB more at the largest process's peak. https://docs.python.org/3/library/gc.html#gc.set_threshold
gc.set_threshold(20_000, 20, 100)


@pytest.hookimpl(wrapper=True)
def pytest_collection(session):
    """What collection imports (troposphere, boto3, cfn-lint, the test modules) lives as long as the
    run (templates.errors.long_lived: walking it took half a second of each worker's CPU)."""
    with long_lived():
        return (yield)


@pytest.fixture(scope="session")
def generated():
    """path (under the project's output/) -> content, as generation produces it from params/."""
    return generation.build_all(load_all(generation.PARAMS_DIR), generation.OUTPUT_DIR)


# A value only a layer the environment does not deploy takes is a warning on every run of generation
# (templates/generation.py values_no_layer_takes): a layer taken out of enabled_layers keeps its values, as
# the README allows. Tests of generation's other messages read its stderr without those warnings, so that
# such a params change does not break them; tests/test_params.py tests the warning itself.
UNUSED_VALUE_WARNING = re.compile(
    r"^warning: [^\n]*: parameters\.\w+: only the [^\n]* layer takes it, which [^\n]* does not deploy: it has no effect \([^\n]*\)\n",
    re.MULTILINE,  # whole lines only: one glued to the end of another message is left to fail the comparison
)


def without_unused_value_warnings(stderr: str) -> str:
    return UNUSED_VALUE_WARNING.sub("", stderr)


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


def generate_main(*argv) -> Ran:
    """generate.py's entry point run in this process (a second or so less than a subprocess):
    its exit status and what it printed."""
    import generate

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = generate.main([str(arg) for arg in argv])
    return Ran(code, out.getvalue(), err.getvalue())


@pytest.fixture(scope="session")
def layer():
    """layer name -> its template as a dict."""
    return {name: module.build().to_dict() for name, module in templates.LAYERS.items()}


@pytest.fixture(scope="session")
def configurations(generated):
    """(env, layer) -> its template-configuration dict, as generation produces it."""
    return {(p.parent.name, p.stem): json.loads(c) for p, c in generated.items() if p.parent.name != "output"}


def configuration(env: str, layer: str, output_dir=ROOT / "output") -> dict:
    """output/<env>/<layer>.json: the layer's Parameters, Tags and StackPolicy in env, as committed."""
    return json.loads((output_dir / env / f"{layer}.json").read_text())


def parameters(env: str, layer: str, output_dir=ROOT / "output", params_dir=ROOT / "params", **overrides) -> dict:
    """The layer's parameter values in env (from its params file, through output/; for an optional layer
    env does not deploy, as generation would write them were it enabled), with overrides."""
    if (output_dir / env / f"{layer}.json").exists():
        given = configuration(env, layer, output_dir)["Parameters"]
    else:
        template = json.loads((output_dir / f"{layer}.json").read_text())
        given = generation.template_configuration(load(params_dir / f"{env}.yaml"), layer, template)["Parameters"]
    return given | {name: str(value) for name, value in overrides.items()}


def resources_of_type(template, type_):
    return {name: r for name, r in template["Resources"].items() if r["Type"] == type_}


def only(template, type_):
    found = list(resources_of_type(template, type_).values())
    assert len(found) == 1, f"expected one {type_}, found {len(found)}"
    return found[0]["Properties"]


def default(template, parameter_ref):
    """The production default behind {"Ref": name}."""
    return template["Parameters"][parameter_ref["Ref"]]["Default"]


# The slowest test takes a few seconds. One that waits for something that never comes (a server that does not
# answer, a poll whose end never comes) ends its process after this, with every thread's traceback, rather than
# holding the run until CI's own limit: under xdist the worker is replaced and the test reported as failed.
TEST_TIME_LIMIT_SECONDS = 120


@pytest.fixture(autouse=True, scope="session")
def requests_checked_as_aws_checks_them():
    """tests/requests_as_aws_takes.py: botocore's client checks, and those AWS adds (maximum lengths, enums,
    patterns), on every request the tests' in-process clients send."""
    import requests_as_aws_takes
    from botocore.validate import ParamValidationDecorator

    ParamValidationDecorator.serialize_to_request = requests_as_aws_takes.checked
    yield
    ParamValidationDecorator.serialize_to_request = requests_as_aws_takes.SERIALIZE


def rendered_once_per_content(real, layer):
    """layer.body that gives the body it gave before for a template of the same content rather than render it again:
    every in-process deployer run reads output/'s few templates and renders each with indents (json's pure-Python
    encoder, about 1 ms a layer; the key, its compact sorted JSON, the C encoder's, about 0.15 ms). What body returns
    depends on nothing else but render and MAX_TEMPLATE_BODY, which the key holds too: a template first seen, or one
    read while a test replaced either, goes through body itself."""
    bodies = {}

    def body(template):
        try:
            key = (json.dumps(template, separators=(",", ":"), sort_keys=True), layer.render, layer.MAX_TEMPLATE_BODY)
        except (TypeError, ValueError, RecursionError):  # what body would raise too, or not: body says
            return real(template)
        if key not in bodies:
            if len(bodies) >= 64:  # a test's own templates (a larger one, one edited) are not kept for the run
                bodies.clear()
            bodies[key] = real(template)
        return bodies[key]

    body.rendered_once_per_content = real
    return body


@pytest.fixture(autouse=True)
def template_bodies_rendered_once_per_content():
    """scripts.deploy.layer.body memoised (rendered_once_per_content) in the test processes, once a test module or a
    test imported the deployer (a test of generation alone does not pay for its imports)."""
    layer = sys.modules.get("scripts.deploy.layer")
    if layer is not None and not hasattr(layer.body, "rendered_once_per_content"):
        layer.body = rendered_once_per_content(layer.body, layer)
    yield


@pytest.fixture(autouse=True)
def requests_as_aws_takes(requests_checked_as_aws_checks_them):
    import requests_as_aws_takes

    requests_as_aws_takes.refused.clear()
    yield
    assert not requests_as_aws_takes.refused, "requests AWS would refuse:\n" + "\n".join(requests_as_aws_takes.refused)


@pytest.fixture(autouse=True)
def time_limit():
    faulthandler.dump_traceback_later(TEST_TIME_LIMIT_SECONDS, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


def without_ci(params: dict) -> list:
    """params' enabled_layers without the ci layer: another environment in the account has it, as an
    account has one."""
    return [layer for layer in params.get("enabled_layers") or [] if layer != "ci"]


def create_bucket(s3, name):
    """A bucket in the client's region: S3 takes a LocationConstraint for every region but us-east-1, which refuses one.
    https://docs.aws.amazon.com/AmazonS3/latest/API/API_CreateBucket.html"""
    region = s3.meta.region_name
    s3.create_bucket(Bucket=name, **({} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}))


# The environment the stubbed runs take (tests/stubbed_aws.py ENV), and its region as the shell's AWS configuration:
# another would add the deployer's note that the configuration says another region to every run's output.
STUBBED_ENV = "prod"
STUBBED_PARAMS = ROOT / "params" / f"{STUBBED_ENV}.yaml"
STUBBED_REGION = load(STUBBED_PARAMS).region if STUBBED_PARAMS.is_file() else None


def pytest_configure(config):
    if STUBBED_REGION is None:  # before the test modules, which read it, are collected (README: params/prod.yaml stays)
        raise pytest.UsageError(
            f"params/{STUBBED_ENV}.yaml is missing: its values are the defaults in templates/inputs.py, and the tests run against it"
        )


NOWHERE = "http://127.0.0.1:9"  # loopback, port 9: nothing answers there


# No test sends traffic off this machine. In the test processes (not the processes they start), a connection to an
# address that is not loopback, or a lookup of a name other than localhost, is refused as unreachable, not sent, and
# fails the test that made it: a request meant for a Stubber or the sandbox that went to AWS's hosts (an endpoint or
# proxy setting a test left out, clients made where stubbed ones were meant) is seen, and not sent.
OFF_THIS_MACHINE = []  # what the tests tried to reach, in order


def on_this_machine(host) -> bool:
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return host == "localhost"


def refused_off_this_machine(send, address_of):
    def guarded(self, *args):
        address = address_of(args)
        if address is not None and self.family in (socket.AF_INET, socket.AF_INET6) and not on_this_machine(address[0]):
            OFF_THIS_MACHINE.append(address)
            raise OSError(errno.ENETUNREACH, f"tests/conftest.py: {address} is off this machine; tests stay on loopback")
        return send(self, *args)

    return guarded


socket.socket.connect = refused_off_this_machine(socket.socket.connect, lambda args: args[0])
socket.socket.connect_ex = refused_off_this_machine(socket.socket.connect_ex, lambda args: args[0])
socket.socket.sendto = refused_off_this_machine(socket.socket.sendto, lambda args: args[-1])  # sendto(data[, flags], address)
# sendmsg(buffers[, ancdata[, flags[, address]]]): without an address, a connected socket's (connect guards it)
socket.socket.sendmsg = refused_off_this_machine(socket.socket.sendmsg, lambda args: args[3] if len(args) > 3 else None)


def looked_up_on_this_machine(lookup):
    def guarded(host, *args, **kwargs):
        name = host.decode() if isinstance(host, bytes) else host
        if name is not None and not on_this_machine(name):
            try:
                ipaddress.ip_address(name.split("%")[0])  # an address is no lookup: connect() guards it
            except ValueError:
                name.encode("idna")  # what the lookup refuses before it asks anyone (a label over 63 characters)
                OFF_THIS_MACHINE.append(name)
                raise socket.gaierror(socket.EAI_NONAME, f"tests/conftest.py: {name} would be looked up off this machine") from None
        return lookup(host, *args, **kwargs)

    return guarded


for _lookup in ("getaddrinfo", "gethostbyname", "gethostbyname_ex"):
    setattr(socket, _lookup, looked_up_on_this_machine(getattr(socket, _lookup)))


@pytest.fixture(autouse=True)
def stays_on_this_machine():
    before = len(OFF_THIS_MACHINE)
    yield
    assert OFF_THIS_MACHINE[before:] == [], f"the test tried to reach off this machine: {OFF_THIS_MACHINE[before:]}"


def no_real_aws(monkeypatch, endpoint=NOWHERE):
    """Fake credentials, no profile or config file, the endpoint on loopback (NOWHERE by default)
    and botocore's own retry settings: no test can reach or use a real account."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "AKIAFAKEFAKEFAKEFAKE",  # not the sandbox's: these runs stand for one on AWS
        "AWS_SECRET_ACCESS_KEY": "fake",
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_DEFAULT_REGION": STUBBED_REGION,
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE", "GITHUB_RUN_ID"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def aws(monkeypatch):
    """The deployer's clients answered by botocore Stubbers (tests/stubbed_aws.py Aws); a test fails
    on a call it queued no response for, and on a response it queued and no call used."""
    from stubbed_aws import Aws, stubbed

    yield from stubbed(monkeypatch, Aws)


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory):
    """One sandbox server for the test run (127.0.0.1, a free port), stopped at its end; it stops by
    itself if the run dies. Tests seed it to start from the Phase 5.14 account."""
    from emulator.sandbox import Sandbox

    box = Sandbox(tmp_path_factory.mktemp("sandbox")).start(exit_with_parent=True)
    try:
        yield box
    finally:
        box.stop()


@contextlib.contextmanager
def deploying_into(sandbox, *extra, reuse_clients=True):
    """run(*argv) -> (exit code, stdout, stderr) of scripts.deploy's entry point against sandbox,
    through the environment variables `make` sets for ENV=sandbox; extra arguments on every call.
    The runs of one test take the clients its first run made (reuse_clients=False: each run makes
    its own, as each `make` command's process does)."""
    from scripts import botocore_models, deploy

    patch = pytest.MonkeyPatch()
    for name, value in sandbox.environment().items():
        patch.setenv(name, value)
    patch.delenv("AWS_PROFILE", raising=False)
    # boto_clients' reuse: a third of a sandbox test's time went into making clients. Within one test
    # only (a module's fixture spans many): a client keeps its retry quota, which a new process starts
    # full, and so is dropped after a run that retried too. Those made while a test replaces what
    # makes or watches them carry its hooks: kept apart, by what made them.
    reused, reused_by = {}, [None]

    def made_by():
        return deploy.aws.AwsCalls.watch, deploy.aws.make_session, botocore_models.botocore_session

    def run(*argv):
        test = os.environ.get("PYTEST_CURRENT_TEST", "").rpartition(" ")[0]  # "tests/x.py::name (call)"
        if test != reused_by[0]:
            reused.clear()
            reused_by[0] = test
        out, err = io.StringIO(), io.StringIO()
        code = deploy.main(
            [*argv, "--env", "sandbox", *extra],
            out=out,
            err=err,
            interactive=False,
            sleep=lambda s: None,
            reuse_clients=reused.setdefault(made_by(), {}) if reuse_clients else None,
        )
        if deploy.aws.RETRY_LINE in err.getvalue():
            reused.clear()
        return code, out.getvalue(), err.getvalue()

    run.extra = extra
    try:
        yield run
    finally:
        patch.undo()


SEEDED = "seeded"  # the saved state seeded() keeps (deployed's are "deployed ...")


def seeded(sandbox):
    """sandbox.seed()'s state (emptied, then the Phase 5.14 account), as a test starts from: the first test of a
    worker's sandbox to ask seeds it (Sandbox.seed, which checks the ids it made against params/sandbox.yaml) and
    saves what that left (emulator/saved_states.py, moto's random numbers too); later ones get it back, as
    deployed's do: about 7 ms of the two processes' CPU against some 65 ms for a seed (a reset and a dozen calls).
    Tests of the seed itself, and of saved states, call sandbox.seed()."""
    if not sandbox.restore(SEEDED):
        sandbox.seed()
        sandbox.save(SEEDED)


def deployed(sandbox, run, *layers):
    """The sandbox seeded, then `make deploy STACK=<layer>` of each of layers in turn (`make deploy` of
    every layer when none), through run (deploying_into's), as a test starts from. The first test of a
    worker's sandbox to ask runs them and saves what they left (emulator/saved_states.py); later ones
    get it back: ~15 ms of the server's CPU against ~0.4 s of the two processes' for every layer."""
    name = " ".join(["deployed", *(layers or ["every layer"]), *run.extra])
    if sandbox.restore(name):
        return
    seeded(sandbox)
    for argv in [["--stack", layer] for layer in layers] or [[]]:
        code, out, err = run("deploy", *argv, "--yes")
        assert code == 0, out + err
    sandbox.save(name)


def refused_answer(code="AccessDenied", status=403):
    """What a before-call handler returns to have a call answered as AWS refusing it."""
    from botocore.awsrequest import AWSResponse

    return AWSResponse("", status, {}, None), {"Error": {"Code": code, "Message": "not allowed"}}


def on_each_client(monkeypatch, event, handler):
    """The deployer's clients made from now on call handler on botocore's event (until monkeypatch.undo())."""
    from scripts.deploy import aws

    watch = aws.AwsCalls.watch

    def watching(self, client):
        client.meta.events.register(event, handler, unique_id=f"test-{event}")  # once, however many runs watch it
        return watch(self, client)

    monkeypatch.setattr(aws.AwsCalls, "watch", watching)


@contextlib.contextmanager
def within(seconds=10):
    """What runs inside fails the test (TimeoutError) once it runs past seconds, rather than hang the run:
    for a test of a FIFO that must be refused, not read (a read blocks until something writes to it)."""

    def expired(signum, frame):
        raise TimeoutError(f"still running after {seconds} s: blocked, on a read?")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def deploy_command() -> list:
    """`make deploy ENV=sandbox YES=1` as a subprocess runs it."""
    return [sys.executable, "-m", "scripts.deploy", "deploy", "--env", "sandbox", "--yes"]


@pytest.fixture
def seeded_sandbox(sandbox):
    """The session's sandbox, emptied and seeded again (tests on one worker run one at a time):
    (the Sandbox, the environment that points a subprocess at it, the deploy command line)."""

    seeded(sandbox)
    return sandbox, os.environ | sandbox.environment(), deploy_command()


# --- The review's scan of output/, shared by test_review.py and test_scanners.py -----------------
# cfn-lint and checkov take seconds per run: the scan runs once per session on the committed layer
# templates (the two modules are one xdist_group, so that under pytest-xdist too one worker runs it, once).


@pytest.fixture(scope="session")
def output_scan():
    """layer -> the cfn-lint and checkov scan (scripts.review.scan.LayerScan) of output/<layer>.json,
    from neither the scan's cache nor cfn-lint's."""
    from scripts.review import scan

    return scan.scan_templates({name: (ROOT / "output" / f"{name}.json").read_bytes() for name in templates.layer_order()}, use_cache=False)


# --- end of the review's block ------------------------------------------------------------------


def refuse_to_open(monkeypatch, refused: Path) -> None:
    """os.open of refused answers as a file of mode 000 does to anyone but root (the tests run as root, whom it does not stop)."""
    real_open = os.open

    def open_(path, *args, **kwargs):
        if Path(path) == refused:
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", open_)


def declared_as_numbers_and_lists(template: dict) -> dict:
    """A layer template as f76673c~1 declared it: ContainerPort, GunicornWorkers and GunicornTimeoutSeconds Numbers
    (MinValue, MaxValue), AlertEmails a CommaDelimitedList joined back into text by Fn::Join; its resources read the
    same values as the template's (inputs.Input.declared_type)."""
    from templates import inputs

    declared = template["Parameters"]
    for name in ("ContainerPort", "GunicornWorkers", "GunicornTimeoutSeconds"):
        if name in declared:
            spec = inputs.INPUTS[name]
            declared[name] = {
                "Default": spec.default,
                "Description": declared[name]["Description"],
                "MaxValue": spec.max_value,
                "MinValue": spec.min_value,
                "Type": "Number",
            }
    if "AlertEmails" not in declared:
        return template
    declared["AlertEmails"] = declared["AlertEmails"] | {"Type": "CommaDelimitedList"}

    def joined(node):
        if node == {"Fn::Sub": "${AlertEmails},,,"}:
            return {"Fn::Join": ["", [{"Fn::Join": [",", {"Ref": "AlertEmails"}]}, ",,,"]]}
        if isinstance(node, dict):
            return {key: joined(value) for key, value in node.items()}
        return [joined(value) for value in node] if isinstance(node, list) else node

    return joined(template)
