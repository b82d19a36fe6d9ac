"""One run at a time per environment: the commands that change it hold its lock while they run."""

import getpass
import json
import os
import re
import socket
from pathlib import Path

from botocore.exceptions import ClientError

import templates
from scripts.deploy.aws import AWS_ERRORS, PARAMETER_NOT_FOUND, UNREADABLE, error_code, may_have_landed, sandbox_gone, unread_answer
from scripts.deploy.failure import Failure
from templates.errors import printable, stops_held, untrusted_json


def user() -> str:
    """Who runs this, for the lock's holder: a container run as a uid without a passwd entry and
    without USER or LOGNAME (docker run --user 1234) has no name; getpass raises then (KeyError,
    OSError from Python 3.13)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid {os.getuid()}"


def this_machine() -> str | None:
    """This kernel's boot and this process-id namespace ("<boot id>/<namespace>"): where a process id
    names one process. A host name does not: machines share names (ubuntu, localhost), and a
    container on the host's network has the host's name but process ids of its own. None where it
    cannot be read (not Linux)."""
    try:
        return f"{Path('/proc/sys/kernel/random/boot_id').read_text().strip()}/{os.readlink('/proc/self/ns/pid')}"
    except OSError:
        return None


def local_pid(held: dict) -> int | None:
    """The holder's process id when the lock was taken on this machine (its "machine", take's)."""
    pid = re.fullmatch(r".* \(pid (?P<pid>\d+)\)", str(held.get("holder")))
    machine = this_machine()
    if not pid or machine is None or held.get("machine") != machine:
        return None  # another machine's run (or one taken before the lock named its machine): not seen from here
    return int(pid["pid"])


def holder_runs(held: dict, env: str) -> bool | None:
    """Whether the process that took the lock is still the run that took it: None when this machine
    cannot tell (the lock was taken on another one, or the process may not be looked at). The run's
    start time tells it from a later process given the same id; a lock that records none (an older
    tool's) by its command line: a deployer of this environment (scripts.deploy and --env=<env>)."""
    pid = local_pid(held)
    if pid is None:
        return None
    try:
        os.kill(pid, 0)  # signal 0: only whether the process exists
    except ProcessLookupError:
        return False
    except (OSError, OverflowError):  # PermissionError: it runs, as another user
        pass
    fields = stat_fields(pid)
    if fields and fields[0] in ("Z", "X"):  # killed and not reaped yet (a zombie): it runs nothing and never frees the lock
        return False
    if held.get("started"):
        started = started_of(fields)
        return None if started is None else started == held["started"]
    command = command_line(pid)
    return None if command is None else runs_deployer_of(command, env)


def gone(held: dict, env: str) -> str:
    """A note when the lock was taken on this machine by a process that is no longer that run: it died
    (killed, its terminal closed) and left the lock."""
    if holder_runs(held, env) is False:
        return f" (its process {local_pid(held)} no longer runs on this machine: that run is gone)"
    return ""


def start_time(pid: int) -> str | None:
    """When the process started, in clock ticks since boot (/proc/<pid>/stat's 22nd field): with the
    machine, it tells the process that took a lock from a later one given the same id (proc(5))."""
    return started_of(stat_fields(pid))


def started_of(fields: list[str] | None) -> str | None:
    return fields[19] if fields and len(fields) > 19 else None


def stat_fields(pid: int) -> list[str] | None:
    """/proc/<pid>/stat's fields after the command name, the process's state first (proc(5)); None when unreadable."""
    try:  # the command name before them is the process's own bytes, not always UTF-8
        return Path(f"/proc/{pid}/stat").read_bytes().rpartition(b")")[2].decode("ascii", "replace").split()
    except OSError:
        return None


def stopped(pid: int) -> bool:
    """Stopped (state T: Ctrl-Z, SIGSTOP, a background job reading its terminal): a SIGTERM stays pending until it is
    continued (proc(5)). Not one a debugger stopped (t), which no signal of ours moves on."""
    fields = stat_fields(pid)
    return bool(fields) and fields[0] == "T"


def command_line(pid: int) -> list[str] | None:
    """The process's command line, its words as given (/proc/<pid>/cmdline), or None when it cannot be read."""
    try:
        return [word.decode(errors="replace") for word in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") if word]
    except (OSError, ValueError):
        return None


def runs_deployer_of(command: list[str], env: str) -> bool:
    """The command line is a deployer's of env: scripts.deploy with --env=<env> (make's form) or --env <env>."""
    return "scripts.deploy" in command and (f"--env={env}" in command or ("--env", env) in zip(command, command[1:], strict=False))


def still_running(value: str, env: str) -> int | None:
    """The holder's process id, from the lock's value, when holder_runs says it still runs. Never this
    process itself."""
    held = untrusted_json(value)
    if not isinstance(held, dict):
        return None
    pid = local_pid(held)
    if pid is None or pid == os.getpid():
        return None
    return pid if holder_runs(held, env) else None


class EnvironmentLock:
    """An SSM parameter that only one PutParameter without Overwrite can create (the others get
    ParameterAlreadyExists), naming its holder and start time.
    https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_PutParameter.html"""

    def __init__(self, ssm, env, now, err):
        self.ssm, self.env, self.now, self.err = ssm, env, now, err
        self.name = templates.deploy_parameter(env, templates.DEPLOY_LOCK)
        # the parameter's value while this run holds (or takes) the lock; after release(), one it may still hold
        self.value = None
        self.interrupted = False  # Ctrl-C came while PutParameter was under way
        self.unanswered = False  # the take's every attempt went unanswered (timeouts): the endpoint is not answering
        self.said_held = False  # release() warned that this run may still hold it, naming make unlock

    def warn_held(self, text):
        print(text, file=self.err)
        self.said_held = True

    def take(self, command, stack=None):
        """Take the lock for command, of one layer (stack) or, with None, of every layer it acts on."""
        runner = os.environ.get("GITHUB_RUN_ID")
        holder = f"GitHub run {os.environ.get('GITHUB_REPOSITORY', '')}#{runner}" if runner else f"{user()}@{socket.gethostname()}"
        value = {"holder": f"{holder} (pid {os.getpid()})", "command": command, "since": f"{self.now():%Y-%m-%dT%H:%M:%SZ}"}
        if stack:
            value["stack"] = stack
        if machine := this_machine():
            value["machine"] = machine
            value["started"] = start_time(os.getpid())
        # Marked before the call: a Ctrl-C while it is under way may leave the lock taken, and
        # release() frees it only if it is this value, never another run's.
        self.value = json.dumps(value)
        try:
            self.ssm.put_parameter(
                Name=self.name,
                Value=self.value,
                Type="String",
                Overwrite=False,
                Description=f"held by scripts/deploy while a run changes {self.env}",
            )
        except ClientError as error:
            # TooManyUpdates: another run's PutParameter on the same name is under way; whoever it
            # was, the lock is not ours to take now.
            # https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_PutParameter.html
            code = error_code(error)
            if code not in ("ParameterAlreadyExists", "TooManyUpdates"):
                if not may_have_landed(error):
                    self.value = None  # refused at the first attempt (AccessDenied...): nothing was written
                raise
            # botocore retries a PutParameter whose answer timed out: the first attempt may have
            # taken the lock, and the retry then finds it. Holding our own value, it is ours. Refused
            # at the first attempt, nothing of ours was written: another run's lock is never freed,
            # nor said to be ours, should the reads below fail.
            retried = may_have_landed(error)
            if retried and self.held_value() == self.value:
                return
            self.value = None
            held_value = self.held_value()
            holder = None if held_value is None else self.holder(held_value)
            if holder is None and code == "TooManyUpdates":  # a take under way has not landed yet: whose, we cannot tell
                maybe_ours = (
                    f" (by another run, or by this run's own retried request); nothing was done: run this again; if it then names "
                    f"this run ({value['holder']}) as the holder, free the lock: make unlock ENV={self.env}"
                )
                raise Failure(
                    f"error: {self.env}'s lock is being written at this moment"
                    + (maybe_ours if retried else " by another run; nothing was done: run this again")
                ) from None
            if holder is None:  # freed between our attempt and the read: that run just finished
                raise Failure(
                    f"error: {self.env} was being changed by another run, which finished just now; nothing was done: run this again"
                ) from None
            held = untrusted_json(held_value)
            gone_for_sure = isinstance(held, dict) and holder_runs(held, self.env) is False  # waiting would not end
            then = "free the lock" if gone_for_sure else "wait for it to finish; if that run died, free the lock"
            raise Failure(f"error: {self.env} is being changed by another run: {holder}; {then}: make unlock ENV={self.env}") from None
        except AWS_ERRORS as error:
            if not may_have_landed(error):
                self.value = None  # no credentials, or no attempt connected: nothing was sent, nothing to free
            else:
                self.unanswered = True
            raise
        except KeyboardInterrupt:
            self.interrupted = True  # the request may land after release() found no lock
            raise

    def release(self, stopping=False):
        """Free the lock if this run holds it (the parameter still has this run's value). A Ctrl-C,
        SIGTERM or SIGHUP (the tools take the last two as Ctrl-C) waits until it is freed, saying so:
        arriving in here, it would have left the lock taken. A second one (not a SIGHUP: errors.stops_held)
        acts at once (AWS not answering makes the wait minutes of retries), saying the lock may be held. After a take the run was
        stopped in (AWS may not be answering: the take's reason to last), the first one acts at once. In a run a stop
        ended (stopping), freeing the lock is said at once: AWS not answering, often why someone pressed Ctrl-C, makes
        it minutes of retries, silent otherwise; the next stop is held all the same, as a frantic double Ctrl-C's second
        would otherwise leave the lock held on an endpoint that answers (helper P4: 7 of 12 runs)."""
        if not self.interrupted:
            held = f"stopping once the lock ({self.name}) is freed; Ctrl-C again (or a SIGTERM) stops at once, and may leave it held"
            ended = []
            try:
                with stops_held(held=lambda: print(held, file=self.err, flush=True)):
                    if stopping and self.value is not None:  # said with the next stop held: a slow stderr is no window
                        print(f"stopping: freeing the lock this run holds ({self.name}) first", file=self.err, flush=True)
                    self.delete_if_held()  # freed, or said may still be held
                    ended.append(True)
            except KeyboardInterrupt:
                if not ended:  # a second stop, before the release ended (a held one acts once it has)
                    self.warn_held(
                        f"warning: {self.name} may be held by this run (stopped twice while it was freed); "
                        f"once AWS answers, see and free it with: make unlock ENV={self.env}"
                    )
                raise
            return
        if self.value is not None:  # said at once: AWS may take its retries to answer (a paused endpoint: minutes)
            print(
                f"stopping: freeing the lock this run was taking ({self.name}); Ctrl-C again (or a SIGTERM) stops at once",
                file=self.err,
                flush=True,
            )
        try:
            self.delete_if_held()
        except KeyboardInterrupt:
            self.warn_held(
                f"warning: {self.name} may be held by this run (stopped while it was taken, and again while it was freed); "
                f"once AWS answers, see and free it with: make unlock ENV={self.env}"
            )
            raise

    def delete_if_held(self):
        if self.value is None:
            return
        if self.unanswered:  # a second round of unanswered attempts, with stop signals held, would only double the wait
            self.warn_held(
                f"warning: {self.name} may be held by this run (the take's request went unanswered, and may have landed); "
                f"once AWS answers, see and free it with: make unlock ENV={self.env}"
            )
            return
        try:
            if self.ssm.get_parameter(Name=self.name)["Parameter"]["Value"] == self.value:
                self.ssm.delete_parameter(Name=self.name)
            self.value = None
        except (*AWS_ERRORS, *UNREADABLE) as error:  # an answer without the lock's Value too
            if isinstance(error, ClientError) and error_code(error) == PARAMETER_NOT_FOUND:
                self.value = None  # the take has not landed
                if self.interrupted:
                    print(
                        f"note: the lock was being taken when the run stopped; if the next run finds {self.env} held by this one "
                        f"(pid {os.getpid()}), its request landed late: free it with make unlock ENV={self.env}",
                        file=self.err,
                    )
                return
            if sandbox_gone(error, self.env):
                self.value = None  # gone with the sandbox's server: the run's error says so
                return
            # the error's own words, not explain()'s next step: the command is done, and the lock it left refuses it
            failed = printable(str(error), one_line=True) if isinstance(error, AWS_ERRORS) else unread_answer(error)
            self.warn_held(
                f"warning: {self.name} may still be held (freeing it failed: {failed}); free it with: make unlock ENV={self.env}"
            )

    def held_value(self) -> str | None:
        """The lock parameter's value; None once it is free."""
        try:
            return self.ssm.get_parameter(Name=self.name)["Parameter"]["Value"]
        except ClientError as error:
            if error_code(error) != PARAMETER_NOT_FOUND:
                raise
            return None

    def holder(self, value=None) -> str | None:
        """Whose the lock is (or the lock value given): "<command>[ STACK=<layer>] by <holder> since <time>"; None once it is free."""
        value = self.held_value() if value is None else value
        if value is None:
            return None
        held = untrusted_json(value)
        try:  # another run wrote it, or anyone who may write the parameter: shown on one line, escaped
            command = f"{held['command']} STACK={held['stack']}" if held.get("stack") else held["command"]
            return printable(f"{command} by {held['holder']} since {held['since']}{gone(held, self.env)}", one_line=True)
        except (AttributeError, TypeError, KeyError):  # not JSON (None), JSON but not an object, or not a lock's
            return printable(repr(value[:100]), one_line=True)

    def free(self, shown_value) -> str | None:
        """`make unlock`: delete the lock if it still holds the value its holder was named from (read
        again: the operator may answer long after, once that run ended and another took it). The
        lock's value as it now reads: None once it is free, by this call or meanwhile."""
        now = self.held_value()
        if now == shown_value:
            try:
                self.ssm.delete_parameter(Name=self.name)
            except ClientError as error:
                # gone: an earlier attempt of this call deleted it (its answer lost, botocore retried), or its holder just freed it
                if error_code(error) != PARAMETER_NOT_FOUND:
                    raise
            return None
        return now
