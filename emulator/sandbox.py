"""The local sandbox: moto's server mode on 127.0.0.1 with our compatibility module, seeded with
what Phase 5.14 left in the account, so that `make deploy ENV=sandbox` runs the production code
path without an AWS account.

    python -m emulator.sandbox start [--port N]   start in the background (a free port by default) and seed
    python -m emulator.sandbox stop               stop the server that `start` started (its PID only)
    python -m emulator.sandbox status             say whether it runs, and where
    python -m emulator.sandbox env                print the exports that point boto3 and the AWS CLI at it

The PID, endpoint and server log live in .sandbox/ (git-ignored). The seed is reproducible: it
resets the emulator and seeds moto's random generator first, so every run creates the same ids,
the ones params/sandbox.yaml holds, and it checks that they match.

Tests use the Sandbox class: `Sandbox(state_dir).start()`, `.seed()`, `.endpoint`, `.stop()`.
"""

import templates  # noqa: F401  (first: its hook makes a Ctrl-C in every import after it one line: templates/__init__.py)

# isort: split
import argparse
import contextlib
import errno
import fcntl
import functools
import json
import os
import re
import shlex
import signal
import socket
import stat
import subprocess
import sys
import time
import urllib.error
from pathlib import Path

from templates import ROOT, params, relative
from templates.errors import ToolError, entry_point, flock_within, long_lived, run
from templates.generation import PARAMS_DIR, write_atomically

STATE_DIR = ROOT / ".sandbox"
PARAMS_FILE = PARAMS_DIR / f"{params.SANDBOX_ENV}.yaml"
HOST = "127.0.0.1"  # loopback only: nothing listens beyond this machine
ENDPOINT = re.compile(r"http://127\.0\.0\.1:([0-9]{1,5})")
CREDENTIALS = {name.lower(): value for name, value in params.SANDBOX_KEYS.items()}  # as boto3.client takes them
SAVED_STATES_PATH = "/sandbox-api/"  # POST save/<name>, restore/<name>: emulator/saved_states.py
RANDOM_SEED = 5014  # seeds moto's id generator, so the seed creates the same ids on every run
START_TIMEOUT_SECONDS = 30
# How long a start or stop waits for another one of the same state directory: a start and its seed
# take seconds, bounded by START_TIMEOUT_SECONDS and the seed's request timeouts.
TURN_WAIT_SECONDS = 120


@functools.cache
def loopback():
    """The opener of requests to the server: straight to it, never through an HTTP_PROXY the shell
    sets, whose answer (or refusal) would pass for the server's. Made on first use: urllib.request
    is a fifth of the imports of make sandbox-status and of every make command's sandbox env."""
    import urllib.request

    return urllib.request.build_opener(urllib.request.ProxyHandler({}))


ANSWER_TIMEOUT_SECONDS = 2  # make sandbox-status: how long the server may take to answer a request

# What Phase 5.14 left in the account.
VPC_CIDR = "10.0.0.0/16"
# name -> (which of the region's availability zones, first or second by name; CIDR); public ones hold the
# ALB, private ones the tasks.
SUBNETS = {
    "public-a": (0, "10.0.1.0/24"),
    "public-b": (1, "10.0.2.0/24"),
    "private-a": (0, "10.0.11.0/24"),
    "private-b": (1, "10.0.12.0/24"),
}
SECRET_NAME = "startupwebapp/db"
SECRET_VALUE = {
    "username": "startupwebapp",
    "password": "sandbox-only-not-a-secret",
    "host": "startupwebapp-db.sandbox.internal",
    "port": 5432,
}


def runs_in(pid: int, directory: Path) -> bool:
    """The process's working directory is directory (the server runs in its checkout: Sandbox.start)."""
    try:
        return os.path.samefile(f"/proc/{pid}/cwd", directory)
    except OSError:
        return False


def said_if_read(line: str) -> None:
    """A line on stderr ahead of the work, which a reader gone (`2>&1 | ...` ended) must not stop: a stop or start goes
    on to its end with its output dropped, as the tools do (templates/errors.py run)."""
    reader_gone = signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    try:
        print(line, file=sys.stderr, flush=True)
    except (OSError, ValueError):  # ValueError: a stderr closed
        pass
    finally:
        signal.signal(signal.SIGPIPE, reader_gone)


def appended(path: Path) -> int:
    """path opened to append (created if missing), a regular file, never through a symbolic link: one planted in the state
    directory would have the sandbox write outside it, and a FIFO would hold the open until someone read it. (Its other
    files are replaced whole, write_atomically, which replaces what is there.)"""
    try:
        opened = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o644)
    except OSError as error:
        if error.errno not in (errno.ELOOP, errno.ENXIO, errno.EISDIR):  # ENXIO: a FIFO no one reads
            raise
        opened = None
    if opened is not None and stat.S_ISREG(os.fstat(opened).st_mode):
        os.set_blocking(opened, True)
        return opened
    if opened is not None:
        os.close(opened)
    raise SandboxError(
        f"{relative(path)} is not a regular file (a symbolic link, a FIFO, a directory), which the sandbox does not write: remove it"
    )


class SandboxError(ToolError):
    """The sandbox cannot start, stop or be found; exit 2."""

    code = 2


def environment() -> params.Environment:
    """params/sandbox.yaml: region, cluster and repository names, and the ids the seed must create.
    Read when needed, so that a broken file never blocks `make sandbox-stop` or `make status`."""
    try:
        return params.load(PARAMS_FILE)
    except params.ParamsError as error:
        raise SandboxError(str(error)) from None  # one problem a line, each printed with its "error: "


def region() -> str:
    """params/sandbox.yaml's region, read even while the file has problems elsewhere (the commands
    that only read, make status among them, run all the same: scripts/deploy/__init__.py)."""
    try:
        return params.load_for_reading(PARAMS_FILE).region
    except params.ParamsError as error:
        raise SandboxError(str(error)) from None


class Sandbox:
    """One sandbox server process. State (pid, endpoint, log) lives in state_dir."""

    def __init__(self, state_dir: Path | None = None):
        # The server runs in ROOT: give it an absolute path, as given (not through symlinks: a .sandbox replaced by a
        # symlink while its server runs must still name that server, is_ours).
        self.state_dir = Path(state_dir or STATE_DIR).absolute()
        self._process = None  # the Popen when this object started the server

    @property
    def pid_file(self) -> Path:
        return self.state_dir / "pid"

    @property
    def endpoint_file(self) -> Path:
        return self.state_dir / "endpoint"

    @property
    def log_file(self) -> Path:
        return self.state_dir / "server.log"

    @property
    def seeded_region_file(self) -> Path:
        return self.state_dir / "seeded-region"

    def seeded_region(self) -> str | None:
        """The region the running server's last seed was in (None: not known, as for one not seeded)."""
        try:
            return self.seeded_region_file.read_text().strip() or None
        except (OSError, UnicodeDecodeError):
            return None

    def check_region(self) -> None:
        """The server was seeded in params/sandbox.yaml's region: moved since, a deploy would create the
        layers there, beside nothing the seed made, and fail at the first that reads VpcId."""
        seeded, now = self.seeded_region(), region()
        if seeded and seeded != now:
            raise SandboxError(
                f"the sandbox was seeded in {seeded}, but {relative(PARAMS_FILE)} now says region: {now}; what it holds is in "
                f"{seeded}. Put region: {seeded} back, or start it afresh in {now}: make sandbox-stop && make sandbox "
                "(empty; moto's ids depend on the region, so its seed names the ids to put in the file)"
            )

    @property
    def pid(self) -> int | None:
        """Our server's PID: the recorded one if it is our server, else one found among the
        processes (a garbled or lost pid file must not hide a running server)."""
        try:
            recorded = int(self.pid_file.read_text())
        except (OSError, ValueError):
            recorded = None
        if recorded is not None and self.is_ours(recorded):
            return recorded
        return next(iter(self.server_pids()), None)

    @property
    def endpoint(self) -> str | None:
        """The server's URL, or None when the file is missing or not one of ours."""
        try:
            text = self.endpoint_file.read_text().strip()
        except (OSError, UnicodeDecodeError):
            return None
        found = ENDPOINT.fullmatch(text)
        return text if found and 0 < int(found.group(1)) < 65536 else None

    def is_ours(self, pid: int) -> bool:
        """pid runs `emulator.sandbox serve` for this state directory (not a reused PID), as this user: another user's
        process of that command line is none the tool started, and is never stopped. The state directory is the one
        that holds the file the server writes to (server.log, which start() makes its output, or that log renamed in
        place), where the kernel says that file is now, deleted or not: a checkout moved while its sandbox runs keeps its server, and a new clone at the old path, or a
        copy whose log is a hard link of it, takes none (the path on its command line names them all). A log moved
        elsewhere (the directory moved aside) leaves the server to the path on its command line where it runs in that
        path's checkout, or where a file took the directory's place (no other sandbox can hold it); a server writing to
        no file at all is known by that path."""
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            if os.stat(f"/proc/{pid}").st_uid != os.getuid():
                return False
        except OSError:
            return False
        if not (b"emulator.sandbox" in command and b"serve" in command):
            return False
        try:
            log = os.readlink(f"/proc/{pid}/fd/1").removesuffix(" (deleted)")  # the kernel's mark of a file gone
        except OSError:
            log = ""
        named = os.fsencode(self.state_dir) in command
        if not log.startswith("/"):  # its output is no file (a pipe, a terminal: a server started by hand)
            return named
        if os.path.realpath(os.path.dirname(log)) == os.path.realpath(self.state_dir):  # server.log, or renamed in place
            return True
        return named and (self.state_dir_is_a_file() or runs_in(pid, self.state_dir.parent))

    def server_pids(self) -> list[int]:
        return sorted(int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and self.is_ours(int(p.name)))

    def started_here(self) -> bool:
        """This object started the server, which start() left running."""
        return self._process is not None

    def running(self) -> bool:
        if self._process is not None and self._process.poll() is not None:
            return False
        return self.pid is not None

    def state_dir_is_a_file(self) -> bool:
        return self.state_dir.exists() and not self.state_dir.is_dir()

    def make_state_dir(self) -> None:
        if self.state_dir_is_a_file():
            raise SandboxError(f"{self.state_dir} is a file, not the sandbox's state directory: move it away")
        self.state_dir.mkdir(parents=True, exist_ok=True)

    @contextlib.contextmanager
    def one_at_a_time(self):
        """One start or stop at a time for this state directory: a second `make sandbox` waits for
        the first to finish, then finds its server running, instead of taking a server still starting
        for a broken one (and advising to stop it, with what is deployed in it)."""
        self.make_state_dir()
        with os.fdopen(appended(self.state_dir / "turn.lock"), "a") as turn:
            waiting = f"waiting for another make sandbox or sandbox-stop to end (at most {TURN_WAIT_SECONDS} s)"
            if not flock_within(turn, fcntl.LOCK_EX, TURN_WAIT_SECONDS, waiting, said_if_read):
                raise SandboxError(
                    f"another make sandbox or sandbox-stop has been under way for {TURN_WAIT_SECONDS} s; "
                    "when it ends, run this again (make sandbox-status says whether one runs)"
                )
            yield

    def start(self, port: int = 0, exit_with_parent: bool = False) -> "Sandbox":
        """Start the server in the background (port 0: a free one) and wait until it answers.
        With exit_with_parent the server stops by itself when this process is gone (tests)."""
        if self.running():
            raise SandboxError(f"a sandbox already runs at {self.endpoint} (PID {self.pid}); stop it first: make sandbox-stop")
        self.make_state_dir()
        for stale in (self.pid_file, self.endpoint_file, self.seeded_region_file):
            stale.unlink(missing_ok=True)
        command = [sys.executable, "-m", "emulator.sandbox", "serve", "--state-dir", str(self.state_dir), "--port", str(port)]
        if exit_with_parent:
            command += ["--exit-with-parent", str(os.getpid())]
        with os.fdopen(appended(self.log_file), "ab") as log:
            # Without the shell's AWS settings and files: moto's own sessions would read them (AWS_PROFILE
            # naming a profile that does not exist, or a garbled ~/.aws/config, stopped the server at its start).
            environment = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
            environment |= {"AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull}
            self._process = subprocess.Popen(
                command, cwd=ROOT, env=environment, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        try:
            write_atomically(self.pid_file, f"{self._process.pid}\n")
            self.wait_until_started()
        except BaseException:  # Ctrl-C too: the server runs in a session of its own, which Ctrl-C misses
            self.stop()
            raise
        return self

    def wait_until_started(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while self.endpoint is None:
            code = self._process.poll()
            if code is not None:
                last = (self.log_file.read_text().strip().splitlines() or [""])[-1]
                raise SandboxError(f"the sandbox server exited with {code}: {last} (see {self.log_file})")
            if time.monotonic() > deadline:
                raise SandboxError(f"the sandbox server did not start within {START_TIMEOUT_SECONDS} s; see {self.log_file}")
            time.sleep(0.05)

    def stop(self) -> bool:
        """Stop exactly our server processes (this state directory's); False if none was running."""
        pids = self.server_pids()
        signal_each(pids, signal.SIGTERM)
        signal_each(pids, signal.SIGCONT)  # a stopped server (Ctrl-Z) handles the SIGTERM once continued
        deadline = time.monotonic() + 10
        while self.server_pids() and time.monotonic() < deadline:
            time.sleep(0.05)
        signal_each(self.server_pids(), signal.SIGKILL)
        was_running = bool(pids)
        if self._process is not None:
            self._process.wait(timeout=10)
            self._process = None
        for path in (self.pid_file, self.endpoint_file, self.seeded_region_file) if not self.state_dir_is_a_file() else ():
            path.unlink(missing_ok=True)
        return was_running

    def client(self, service: str):
        """A boto3 client on the running server, the same one again for the same service and endpoint
        (a client takes milliseconds to make, and the seed and the tests ask often)."""
        if not self.endpoint:
            raise SandboxError("the sandbox is not running: start it with `make sandbox`")
        return _client(service, self.endpoint, region())

    def answers(self) -> bool:
        """The server answers an HTTP request within ANSWER_TIMEOUT_SECONDS (any answer: moto
        refuses an unsigned request). A stopped process's port still accepts connections, as the
        kernel queues them, so only an answer tells a working server from a paused or hung one."""
        try:
            loopback().open(self.running_endpoint() + "/", timeout=ANSWER_TIMEOUT_SECONDS).close()
        except urllib.error.HTTPError:
            return True
        except (OSError, SandboxError):
            return False
        return True

    def stopped(self) -> bool:
        """The server process is stopped (SIGSTOP, Ctrl-Z, a debugger): state T or t in /proc/<pid>/stat."""
        try:
            stat = Path(f"/proc/{self.pid}/stat").read_text()
        except OSError:
            return False
        return stat.rpartition(")")[2].split()[:1] in (["T"], ["t"])

    def running_endpoint(self) -> str:
        """The running server's URL; SandboxError if no server runs or its endpoint file does not name it."""
        if not self.running():
            raise SandboxError("the sandbox is not running: start it with `make sandbox`")
        if not self.endpoint:
            restart = "make sandbox-stop && make sandbox"
            if self.state_dir_is_a_file():
                restart = f"make sandbox-stop, move the file {self.state_dir} away, then make sandbox"
            raise SandboxError(f"the sandbox runs (PID {self.pid}) but {self.endpoint_file} does not name it: {restart}")
        return self.endpoint

    def environment(self) -> dict:
        """The variables that point boto3, the deployer and the AWS CLI at this sandbox."""
        endpoint = self.running_endpoint()
        return {"AWS_ENDPOINT_URL": endpoint, **params.SANDBOX_KEYS, "AWS_DEFAULT_REGION": region()}

    def seed(self) -> dict:
        """Empty the emulator, then create the Phase 5.14 resources; fail unless they are the ids
        params/sandbox.yaml holds. Returns them as params values."""
        import urllib.request

        values = environment().values
        ec2 = self.client("ec2")
        # Before the reset and the seed of moto's random numbers, which every request draws on: the ids stay those of
        # params/sandbox.yaml. The region's own zones, by name: their letters vary (ap-northeast-1 has no b).
        zones = sorted(zone["ZoneName"] for zone in ec2.describe_availability_zones()["AvailabilityZones"])
        for path in ("/moto-api/reset", f"/moto-api/seed?a={RANDOM_SEED}"):
            loopback().open(urllib.request.Request(self.endpoint + path, method="POST"), timeout=10).close()
        vpc_id = ec2.create_vpc(CidrBlock=VPC_CIDR, TagSpecifications=_name_tags("vpc", "startupwebapp-vpc"))["Vpc"]["VpcId"]
        subnet_ids = {
            name: ec2.create_subnet(
                VpcId=vpc_id,
                AvailabilityZone=zones[zone],
                CidrBlock=cidr,
                TagSpecifications=_name_tags("subnet", f"startupwebapp-{name}"),
            )["Subnet"]["SubnetId"]
            for name, (zone, cidr) in SUBNETS.items()
        }
        group_id = ec2.create_security_group(
            GroupName="startupwebapp-backend-sg",
            Description="StartupWebApp backend tasks",
            VpcId=vpc_id,
            TagSpecifications=_name_tags("security-group", "startupwebapp-backend-sg"),
        )["GroupId"]
        self.client("ecs").create_cluster(clusterName=values["ClusterName"])
        self.client("ecr").create_repository(repositoryName=values["EcrRepositoryName"])
        secret_arn = self.client("secretsmanager").create_secret(Name=SECRET_NAME, SecretString=json.dumps(SECRET_VALUE))["ARN"]
        # The domain's public zone, as `make zone` leaves it (delegation is not checked on the sandbox).
        zone = self.client("route53").create_hosted_zone(Name=values["DomainName"], CallerReference=f"seed-{RANDOM_SEED}")
        created = {
            "ExistingHostedZoneId": zone["HostedZone"]["Id"].split("/")[-1],
            "VpcId": vpc_id,
            "PublicSubnetIds": f"{subnet_ids['public-a']},{subnet_ids['public-b']}",
            "PrivateSubnetIds": f"{subnet_ids['private-a']},{subnet_ids['private-b']}",
            "BackendSecurityGroupId": group_id,
            "DatabaseSecretArn": secret_arn,
        }
        check_params(created)
        write_atomically(self.seeded_region_file, f"{region()}\n")
        return created

    def save(self, name: str) -> None:
        """Keep what the server holds now as name, in its memory (emulator/saved_states.py)."""
        self._post_saved_states("save", name)

    def restore(self, name: str) -> bool:
        """Put back what the server held when it saved name: False, with nothing changed, when it saved none."""
        try:
            self._post_saved_states("restore", name)
        except urllib.error.HTTPError as error:
            if error.code == 404:
                return False
            raise
        return True

    def _post_saved_states(self, action: str, name: str) -> None:
        import urllib.parse
        import urllib.request

        url = f"{self.endpoint}{SAVED_STATES_PATH}{action}/{urllib.parse.quote(name, safe='')}"
        loopback().open(urllib.request.Request(url, method="POST"), timeout=30).close()


@functools.cache
def _client(service: str, endpoint: str, region: str):
    """A client of the server with the sandbox's keys, reading nothing of the user's AWS
    configuration (params.SANDBOX_SESSION_VARS), through no proxy, within bounded waits and retries.
    Its session shares the deployer's data loader (scripts.botocore_models.make_session): a process that
    seeds sandboxes and deploys to them reads each service model once."""
    # Here, not at the top: make sandbox-status, -stop and env need none of it.
    from botocore.config import Config

    from scripts.botocore_models import make_session

    config = Config(proxies={}, connect_timeout=5, read_timeout=30, retries={"mode": "standard", "total_max_attempts": 3})
    session = make_session(params.SANDBOX_SESSION_VARS)
    return session.client(service, endpoint_url=endpoint, region_name=region, config=config, **CREDENTIALS)


def signal_each(pids, signal_number) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):  # it ended by itself meanwhile
            os.kill(pid, signal_number)


def _name_tags(resource_type: str, name: str) -> list:
    return [{"ResourceType": resource_type, "Tags": [{"Key": "Name", "Value": name}]}]


def check_params(created: dict) -> None:
    """Fail, naming every difference, unless params/sandbox.yaml holds the ids the seed created."""
    given = environment().values
    where = relative(PARAMS_FILE)
    wrong = [
        f"  parameters.{name}: {given[name]!r}, but the seed creates {value!r}" for name, value in created.items() if given[name] != value
    ]
    if wrong:
        lines = "\n".join(f"  {name}: {value}" for name, value in created.items())
        raise SandboxError(
            f"{where} does not hold the ids the seed creates:\n"
            + "\n".join(wrong)
            + f"\nput these under parameters: in {where} (or git checkout {where}), run make templates, then make sandbox:\n{lines}"
        )


def _share_region_lists() -> None:
    """moto asks a new boto3 session for a service's regions at import and for every backend, and
    each new session loads botocore's endpoint data again (0.2 s a time, most of a second of the
    server's start): in the server process, one session answers them all. The answers are botocore's
    static data, the same from any session."""
    from boto3.session import Session

    regions = functools.cache(Session().get_available_regions)
    Session.get_available_regions = lambda self, *args, **kwargs: list(regions(*args, **kwargs))


SANDBOX_CONNECTIONS = 4000  # open at once, at most: far past what deploys hold (a few each)


def connection_limit() -> int:
    """How many connections the server keeps open at once: SANDBOX_CONNECTIONS, within the process's
    limit of open files, raised as far as its hard limit allows (64 left for the server's own files)."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = SANDBOX_CONNECTIONS + 64
    if soft != resource.RLIM_INFINITY and soft < wanted:
        soft = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft == resource.RLIM_INFINITY:
        return SANDBOX_CONNECTIONS
    return max(min(SANDBOX_CONNECTIONS, soft - 64), 100)  # a hard limit under 164 files: waitress's own default


def serve(state_dir: Path, port: int, parent: int | None) -> int:
    """The server process itself: moto with our compatibility module, on loopback only."""
    import logging
    from importlib import metadata

    # A client that goes away mid-answer (Ctrl-C in a deploy) must cost a BrokenPipeError in one
    # request thread, not the whole server and every stack in it: never die of SIGPIPE.
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)

    if port:  # a busy port fails here, at once, not after the imports nor silently in the server thread
        socket.create_server((HOST, port)).close()
    # What start-up makes lives as long as the server. The garbage its imports leave is frozen too:
    # collecting it first left the seeded server's resident memory 1 MB smaller (218 MB), for a
    # tenth of a second more at every start.
    with long_lived():
        _share_region_lists()
        # moto loads some 2,700 default AMIs (each with a volume and a snapshot) into every EC2 backend
        # it creates, on every reset: half a second of each seed for images no layer uses.
        os.environ["MOTO_EC2_LOAD_DEFAULT_AMIS"] = "false"
        import threading

        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
        from waitress.server import create_server

        import emulator.moto_compat  # noqa: F401  (patches moto and adds its models before the first stack is parsed)
        from emulator import saved_states

        # A stop signal only marks the server to end; the loop below ends it. (Python runs the handler
        # in this thread, whichever thread the signal reaches.) A SIGSTOP and SIGCONT (a debugger, a
        # paused container) are no stop signal: Python 3.11's sigtimedwait, used before, returned a
        # siginfo of uninitialised memory after a SIGCONT, at times read as SIGINT.
        stopping = []
        for number in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(number, lambda signum, frame: stopping.append(signum))
        # moto's own application (what moto's ThreadedMotoServer serves), under waitress rather than
        # werkzeug's development server, which closes the connection after every answer (werkzeug's
        # serving.py: "Always close the connection") and starts a thread for each: a deploy's every call
        # paid a connection and a thread. waitress keeps a client's connection open (HTTP/1.1) and
        # answers from a pool of threads: 0.4 ms less of the server's CPU a request, 0.1 ms less of the
        # client's. It drops request headers with an underscore in their name, which moto's handler kept
        # for S3 object metadata, which no layer or command sends.
        # https://docs.pylonsproject.org/projects/waitress/en/stable/arguments.html
        # Its limit of 100 open connections (werkzeug had none) let any local process that held 100 idle ones
        # stall every deploy until the 120 s idle timeout closed them: the sandbox takes as many as the open-file
        # limit leaves room for, watched with poll() rather than select(), which takes no descriptor past 1023.
        server = create_server(
            saved_states.serving(DomainDispatcherApplication(create_backend_app), SAVED_STATES_PATH),
            host=HOST,
            port=port,
            threads=4,
            connection_limit=connection_limit(),
            asyncore_use_poll=True,
        )
        # Past 4 requests waiting it logs "Task queue depth is N" for each: server.log is for what goes wrong.
        logging.getLogger("waitress.queue").setLevel(logging.ERROR)
        threading.Thread(target=server.run, name="waitress", daemon=True).start()
    host, bound_port = HOST, server.effective_port
    endpoint_file = state_dir / "endpoint"
    write_atomically(endpoint_file, f"http://{host}:{bound_port}\n")  # the starter polls for this file
    print(f"sandbox: moto {metadata.version('moto')} with emulator.moto_compat on http://{host}:{bound_port}", flush=True)
    while not stopping:  # checks for a stop signal and for its parent five times a second
        time.sleep(0.2)
        if parent and os.getppid() != parent:
            break  # the test run that started us is gone: do not outlive it
    # The emulator keeps everything in memory, so there is nothing to save: end now rather than
    # wait for the HTTP server's shutdown poll.
    os._exit(0)


def port_number(text: str) -> int:
    """--port: checked here, before a server is started to fail at its bind."""
    if not re.fullmatch(r"[0-9]{1,5}", text) or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"{text!r}: allowed: a port, 1 to 65535 (0: a free one)")
    return int(text)


@entry_point
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m emulator.sandbox", description="The local AWS sandbox (moto server) for rehearsing deploys."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="{start,stop,status,env}")
    start = commands.add_parser("start", help="start the server in the background on 127.0.0.1 and seed it")
    start.add_argument("--port", type=port_number, default=0, help="port to listen on, 1 to 65535 (default: a free one)")
    commands.add_parser("stop", help="stop the server that `start` started")
    commands.add_parser("status", help="say whether the sandbox runs")
    env = commands.add_parser("env", help="print the exports that point AWS clients at the sandbox")
    env.add_argument(
        "--defer-problem",
        action="store_true",
        help=f"where the sandbox cannot be used, print its reason as {params.SANDBOX_PROBLEM} for the deployer to say, and exit 0",
    )
    serve_command = commands.add_parser("serve")  # the server process itself: no help line (help=SUPPRESS printed ==SUPPRESS==)
    serve_command.add_argument("--state-dir", type=Path, required=True)
    serve_command.add_argument("--port", type=port_number, default=0)
    serve_command.add_argument("--exit-with-parent", type=int, metavar="PID", help="stop once PID, our parent, is gone")
    args = parser.parse_args(argv)

    if args.command == "serve":
        return serve(args.state_dir, args.port, args.exit_with_parent)
    sandbox = Sandbox()
    try:
        # Where the state directory has become a file, no start can get past it (make_state_dir): a stop
        # goes on without the turn's lock there, and stops a server still running for that directory.
        taking_turns = args.command == "start" or (args.command == "stop" and not sandbox.state_dir_is_a_file())
        with sandbox.one_at_a_time() if taking_turns else contextlib.nullcontext():
            return command(args, sandbox)
    except OSError as error:  # some have no strerror (a refused connection is a URLError)
        raise SandboxError(f"{error.filename or sandbox.state_dir}: {error.strerror or error}") from None


def command(args, sandbox: Sandbox) -> int:
    """start, stop, status or env on sandbox; its exit status."""
    running = args.command in ("start", "status") and sandbox.running()
    # A server whose endpoint file is garbled or gone is one line, not "running at None".
    endpoint = sandbox.running_endpoint() if running else None
    if args.command == "start" and running:
        # Starting again must not wipe what is deployed in it: a no-op, as its stacks stay.
        print(f"sandbox already running at {endpoint} (PID {sandbox.pid}); left as it is, with what is deployed in it")
        if sandbox.stopped():  # or every command on it waits out its retries
            print(f"note: it is stopped (Ctrl-Z or a debugger) and answers nothing: `kill -CONT {sandbox.pid}` resumes it")
        print("to start afresh (empty, seeded again): make sandbox-stop && make sandbox")
    elif args.command == "start":
        from botocore.exceptions import BotoCoreError, ClientError
        from botocore.parsers import ResponseParserError

        try:  # the seed's values: a file with problems is said before a server starts (not "the sandbox is stopped")
            environment()
        except SandboxError as error:
            raise SandboxError(f"{error}\nthe sandbox is not started") from None
        seeding = False
        try:  # the start inside: a Ctrl-C as it returns, before the seed, must stop the server too
            sandbox.start(port=args.port)
            seeding = True
            sandbox.seed()
        except BaseException as error:  # Ctrl-C too: an unseeded server left running would pass for a ready one
            if sandbox.started_here():  # not one start() refused for running already, nor one its failure stopped
                sandbox.stop()
            if not seeding:  # start's own error, which says what failed
                raise
            if isinstance(error, BotoCoreError | ClientError | ResponseParserError | OSError):
                raise SandboxError(f"seeding the sandbox failed, and it is stopped: {error} (its log: {sandbox.log_file})") from None
            if isinstance(error, SandboxError):  # the seed's ids are not params/sandbox.yaml's
                raise SandboxError(f"{error}\nthe sandbox is stopped") from None
            raise
        print(f"sandbox running at {sandbox.endpoint} (PID {sandbox.pid}), seeded with the Phase 5.14 resources")
        print("deploy into it with: make deploy YES=1 (ENV=sandbox is the default); its log: .sandbox/server.log")
    elif args.command == "stop":
        # The emulator keeps everything in memory: its stacks went with it, which a next deploy must know.
        print("sandbox stopped, and every stack deployed in it with it" if sandbox.stop() else "sandbox was not running")
    elif args.command == "status":
        if running and sandbox.answers():
            print(f"sandbox running at {endpoint} (PID {sandbox.pid})")
        elif running:
            why = f"it is stopped (Ctrl-Z or a debugger): `kill -CONT {sandbox.pid}` resumes it" if sandbox.stopped() else "it may be hung"
            print(f"sandbox running at {endpoint} (PID {sandbox.pid}) but it did not answer within {ANSWER_TIMEOUT_SECONDS} s: {why}")
            print("to start afresh (empty, seeded again): make sandbox-stop && make sandbox")
            return 1
        else:
            print("sandbox not running: start it with make sandbox (empty, seeded; make deploy YES=1 deploys into it)")
            return 1
    elif args.command == "env":  # what make runs before every command on ENV=sandbox
        try:
            sandbox.check_region()
            exports = sandbox.environment()
        except SandboxError as problem:
            if not args.defer_problem:
                raise
            # No endpoint either: a deployer that missed the problem still refuses the sandbox without one.
            print(f"unset AWS_ENDPOINT_URL; export {params.SANDBOX_PROBLEM}={shlex.quote(str(problem))}")
            return 0
        no_problem = {params.SANDBOX_PROBLEM: ""} if args.defer_problem else {}
        print("export " + " ".join(f"{name}={shlex.quote(value)}" for name, value in (no_problem | exports).items()))
    return 0


if __name__ == "__main__":
    run(main)
