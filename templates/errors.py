"""The one base exception of every tool in this project, and the one place that prints it; how text
from outside the tools is read and shown; and what the tools tell Python's cyclic garbage collector
about objects that live as long as the process.

A ToolError is a problem the person running the tool can fix: str() is the message, `code` the
exit status (1 by default, 2 for bad input). Every entry point prints it with `report`, and it
becomes the exit status; Ctrl-C becomes "interrupted" and 130, never a traceback. A main() with
nothing to do after an error is an `@entry_point`, which does both; the deployer's main
(scripts/deploy/__init__.py) does them itself, as it frees its lock and prints its API-call count
after. `run(main)` exits with what main() returns.
"""

import contextlib
import errno
import fcntl
import functools
import gc
import json
import os
import re
import select
import signal
import stat
import sys
import threading
import time
from pathlib import Path


class ToolError(Exception):
    """A problem the person running the tool can fix; `code` is the exit status."""

    code = 1
    prefix = "error: "  # printed before every line of the message

    def __init__(self, message, code: int | None = None):
        super().__init__(message)
        if code is not None:
            self.code = code

    def lines(self) -> list[str]:
        # A newline alone ends a line: str.splitlines() ends one at a carriage return, \x0b, \x0c, \x1c-\x1e, \x85, U+2028
        # and U+2029 too, which text the message quotes from outside may hold, and made of the rest a line of its own
        # with the prefix, a forged error line, where report() shows such a character escaped.
        return [self.prefix + line for line in str(self).removesuffix("\n").split("\n")]


def report(error: ToolError, stream=None) -> int:
    """Print error on stream (stderr by default); return its exit status."""
    stream = stream or sys.stderr
    if stream is not None:  # None: stderr was closed when the tool started (`2>&-`)
        for line in error.lines():
            print(printable(line), file=stream)  # as Deployer.say: what an error quotes from outside is escaped
    return error.code


INTERRUPTED = "interrupted"  # what Ctrl-C prints, whenever it comes


def quiet_interrupts(hook):
    """sys.excepthook for a tool while it imports, before its entry point runs: Ctrl-C (and a stop signal
    taken as Ctrl-C, Terminated) then prints the same one line as later, not a traceback through the
    imports, and exits with 130 as later (Python exits so by SIGINT itself); any other exception goes to
    hook, the one it replaces."""

    def excepthook(kind, value, traceback) -> None:
        if issubclass(kind, KeyboardInterrupt):
            ignore_stop_signals()  # (Python sets SIGINT's default itself before it ends by it)
            print(INTERRUPTED, file=sys.stderr)
            if issubclass(kind, Terminated):  # Python's exit by SIGINT (130) is Ctrl-C's own: 1 otherwise
                for stream in (sys.stdout, sys.stderr):
                    with contextlib.suppress(Exception):
                        stream.flush()
                os._exit(130)
        else:
            hook(kind, value, traceback)

    return excepthook


def ignore_stop_signals() -> None:
    """A tool that says `interrupted` ends: a second stop signal while it does (a logout's SIGTERM, then SIGHUP at once;
    a CI cancel's SIGTERM twice) changes nothing, rather than saying it again or ending the tool by the signal's default
    (Python's finalization puts that back for a handler of its own; an ignored signal stays ignored). One that came
    while they are set aside is dropped."""
    with contextlib.suppress(KeyboardInterrupt, ValueError):  # ValueError: called outside the main thread
        for number in STOPPING_SIGNALS:
            if signal.getsignal(number) in (terminated, signal.default_int_handler):
                signal.signal(number, signal.SIG_IGN)


_main_ends_the_process = False  # while run() runs main


def ending_interrupted() -> None:
    """Before a main() under run() says `interrupted`: the process ends, and ignores later stop signals from here. Not
    a test calling main() itself: its own Ctrl-C stays."""
    if _main_ends_the_process:
        ignore_stop_signals()


def entry_point(main):
    """main(...) -> exit status, with ToolError and Ctrl-C turned into their status."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs) -> int:
        try:
            return main(*args, **kwargs)
        except ToolError as error:
            return report(error)
        except KeyboardInterrupt:
            ending_interrupted()
            print(INTERRUPTED, file=sys.stderr)
            return 130

    return wrapper


@contextlib.contextmanager
def long_lived():
    """What the block makes lives as long as the process (the imports of cfn-lint, moto, the tests):
    it is made with the cyclic collector paused, then frozen (gc.freeze) with every object alive then,
    and the collector is put back as it was. The collector no longer walks those objects at every full
    collection, nor, in a forked child, writes to the pages it shares with its parent: the gc module's
    documentation advises this before a fork. https://docs.python.org/3/library/gc.html#gc.freeze
    Garbage the block left in reference cycles is frozen too, and never freed."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


def yaml_problem(error) -> str:
    """A YAML parser's error as a message names it: ' line N: cannot be read as YAML: <problem>', on one
    line and at most 200 characters of the problem, whatever it quotes."""
    mark, context, since = (getattr(error, name, None) for name in ("problem_mark", "context", "context_mark"))
    problem = " ".join((getattr(error, "problem", None) or str(error)).split())[:200]
    if context and problem.startswith("but "):  # "expected a single document in the stream, but found another document"
        problem = f"{' '.join(context.split())[:100]}, {problem}"
    if mark and since and since.line < mark.line and context in ("while scanning a simple key", "while scanning a quoted scalar"):
        # a key whose colon is missing ("DesiredCount 1") is found so on the line after, and a quote left open at the
        # file's end: the key's line, the quote's, holds the mistake. Other contexts (a block mapping, a flow sequence)
        # start far above it.
        return f" line {since.line + 1}: cannot be read as YAML: {' '.join(context.split())[:100]}, up to line {mark.line + 1}: {problem}"
    line = f" line {mark.line + 1}:" if mark else ""
    # a line that continues the one before it (deeper, under a line that opens no block) holds a value, not a key
    key = len(key_of(line_at(mark))) if mark and deeper_than(mark) is None else 0
    if key > 1024:  # PyYAML says "could not find expected ':'" or "mapping values are not allowed here", as the place goes
        # "it is limited to 1024 Unicode characters": https://yaml.org/spec/1.2.2/#rule-ns-s-block-map-implicit-key
        return f"{line} cannot be read as YAML: a key of {key} characters; allowed: at most 1024 (YAML's limit)"
    # PyYAML takes no tab where a token starts (MaxCapacity:<tab>2, an indent): its message names the character alone
    tab = "; allowed: spaces there (a tab, which editors show as spaces)" if "'\\t'" in problem else ""
    allowed = misplaced_key(mark) if problem.startswith("mapping values are not") else ""
    if problem.endswith("but found another document"):
        allowed = "; allowed: one document (a '---' line at most once, above its first key)"
    if mark and problem.startswith("expected <block end>, but found '<block mapping start>'"):
        allowed = unaligned_key(mark)
    if mark and problem.startswith("expected <block end>, but found '<block sequence start>'"):
        allowed = unaligned_item(mark)
    if problem.startswith("could not determine a constructor for the tag"):  # a CloudFormation habit: VpcId: !Ref Vpc
        allowed = "; allowed: a plain value, without a tag (!Ref, !Sub and !!python/... are not read)"
    return f"{line} cannot be read as YAML: {problem}{tab}{allowed}"


def buffer_lines(mark) -> list[str]:
    """The lines of the text the parser read ([""] where it kept none: a stream)."""
    return (getattr(mark, "buffer", None) or "").split("\n")


def line_at(mark) -> str:
    """The text of the mark's line, "" where the parser kept no text."""
    lines = buffer_lines(mark)
    return lines[mark.line] if mark.line < len(lines) else ""


def key_of(text) -> str:
    """The key a line of a block mapping starts with (after a list's "- "), quoted or plain, "" where it has none."""
    body = text.strip().removeprefix("- ").strip()
    if body[:1] in ("'", '"') and (end := body.find(body[0], 1)) > 0 and body[end + 1 : end + 2] == ":":
        return body[: end + 1]  # a quoted key may hold ": " itself
    return body.split(": ", 1)[0] if ": " in body else body[:-1] if body.endswith(":") else ""


def deeper_than(mark) -> int | None:
    """The index of the line before the mark's (blank lines and comments passed over) where the mark's line is
    indented deeper than it and that line opens no block (it does not end with ":"): the mark's line then continues
    it, as its value. None otherwise (the first key of a block is deeper than the line that opens it)."""
    lines = buffer_lines(mark)
    if mark.line >= len(lines):
        return None
    before = next((i for i in range(mark.line - 1, -1, -1) if lines[i].strip() and not lines[i].lstrip().startswith("#")), None)
    if before is None or lines[before].split(" #")[0].rstrip().endswith(":"):
        return None
    return before if key_indent(lines[mark.line]) > key_indent(lines[before]) else None


def key_indent(text) -> int:
    """The column a line's content starts at; a list item's mapping starts where its first key does, after the "-"."""
    stripped = text.lstrip(" ")
    item = re.match(r"-( +)", stripped) if key_of(stripped) else None
    return len(text) - len(stripped) + (1 + len(item.group(1)) if item else 0)


def unaligned_key(mark) -> str:
    """Why a block mapping ended where a key starts: the key is indented less than the keys before it and more than
    the mapping they sit in (a key with a space too few), so that it sits beside none of them. Named with the two
    open mappings it falls between: the keys above that still enclose it (each less indented than the one after it),
    where each starts (after a list item's "- "), the nearest deeper and the nearest shallower than the line."""
    enclosing = []  # the keys whose mappings are still open, outermost first: a key closes those at its column or deeper,
    for line, column, entry in block_keys(mark):  # a list's "- " those deeper than itself (another item begins)
        enclosing = [(at, where) for at, where in enclosing if where < column or (entry and where == column)]
        if not entry:
            enclosing.append((line, column))
    open_keys = enclosing[::-1]
    deeper = [(line, column) for line, column in open_keys if column > mark.column]
    shallower = [(line, column) for line, column in open_keys if column < mark.column]
    spaces = f"space{'' if mark.column == 1 else 's'}"
    if deeper:
        deep_line, deep = deeper[-1]
        around = f" and those of line {shallower[0][0] + 1} ({shallower[0][1]})" if shallower else ""
        where = f"between the keys of line {deep_line + 1} ({deep}){around}"
    elif shallower:  # under a list, say: no key of an open mapping is deeper
        where = f"deeper than the keys of line {shallower[0][0] + 1} ({shallower[0][1]}), where no open mapping has keys"
    else:
        return ""
    return (
        f"; allowed: keys of one mapping indented alike: this line is indented {mark.column} {spaces}, {where}: give it the "
        "indentation of the keys it belongs with"
    )


def unaligned_item(mark) -> str:
    """Why a block list ended where a "- " starts: the item is indented less than the list's last item above it (as
    PyYAML's scanner finds them: not a dash in a block scalar's text)."""
    items = [(line, column) for line, column, entry in block_keys(mark) if entry]
    if not items or items[-1][1] <= mark.column:
        return ""
    number, column = items[-1]
    spaces = f"space{'' if mark.column == 1 else 's'}"
    return (
        f"; allowed: the items of one list indented alike: this line's - is indented {mark.column} {spaces}, "
        f"line {number + 1}'s {column}: give it the indentation of the items it belongs with"
    )


def block_keys(mark) -> list[tuple[int, int, bool]]:
    """(line, column, False) of each key of a block mapping and (line, column, True) of each block list's "- " that
    start before the mark's line, in order, as PyYAML's own scanner finds them: none inside a flow collection, a quoted
    or block scalar, or a comment, however many lines those run over. The scanner stops at no indentation (the parser
    does): an error it meets further on ends the list there."""
    import yaml  # here: only a params file that failed to load gets this far

    found, flow = [], 0
    try:
        for token in yaml.scan("\n".join(buffer_lines(mark)).rstrip("\0")):
            if token.start_mark.line >= mark.line:
                break
            if isinstance(token, yaml.FlowMappingStartToken | yaml.FlowSequenceStartToken):
                flow += 1
            elif isinstance(token, yaml.FlowMappingEndToken | yaml.FlowSequenceEndToken):
                flow -= 1
            elif isinstance(token, yaml.KeyToken | yaml.BlockEntryToken) and flow == 0:
                found.append((token.start_mark.line, token.start_mark.column, isinstance(token, yaml.BlockEntryToken)))
    except yaml.YAMLError:
        pass
    return found


def misplaced_key(mark) -> str:
    """Why a key's colon is "not allowed here": the line is indented deeper than the one before it, which it then
    continues (a key put back out of its block: PyYAML names the next line's colon), where that line opens no block;
    else a value holding ": "."""
    before = deeper_than(mark)
    if before is not None:
        return (
            f"; allowed: keys of one mapping indented alike: this line is indented deeper than line {before + 1}, whose value it "
            "then reads as (check that line's indentation too)"
        )
    return "; allowed: a value holding ': ' in quotes"


class RefusedFile(ValueError):
    """A path given to a tool that is no file it reads: str() is the reason, with what is allowed."""


def read_regular_file(path, most_bytes: int, what: str = "a file", follow_symlinks: bool = True) -> bytes:
    """The bytes of a regular file of at most most_bytes (open_regular_file); a larger one is RefusedFile."""
    with open(open_regular_file(path, follow_symlinks), "rb") as file:
        data = file.read(most_bytes + 1)
    if len(data) > most_bytes:
        raise RefusedFile(f"larger than {most_bytes // 1024} KiB; allowed: {what} of at most that")
    return data


def open_regular_file(path, follow_symlinks: bool = True) -> int:
    """A descriptor of path, read-only, once it is a regular file. A FIFO (which blocks), a device
    (/dev/zero never ends), a directory or, unless follow_symlinks, a symlink is RefusedFile. Opened
    without waiting on a FIFO, then judged by what was opened: no gap between a look at the path and
    the read. Other OSErrors (missing, no permission) are raised as they are."""
    flags = os.O_RDONLY | os.O_NONBLOCK | (0 if follow_symlinks else os.O_NOFOLLOW)
    try:
        descriptor = os.open(path, flags)
    except OSError as error:
        if error.errno == errno.ELOOP and not follow_symlinks:
            raise RefusedFile("a symlink; allowed: a regular file (copy the file instead of linking it)") from None
        if error.errno == errno.ENXIO:  # a socket, which open(2) refuses so ("No such device or address")
            raise RefusedFile("not a regular file; allowed: a regular file") from None
        raise
    if not stat.S_ISREG(os.fstat(descriptor).st_mode):  # before open(), which refuses a directory with its own error
        os.close(descriptor)
        raise RefusedFile("not a regular file; allowed: a regular file")
    return descriptor


READER_GONE = 141  # the status of a writer that SIGPIPE ended, as a shell reports it (128 + 13)


class ReaderGone(Exception):
    """The output's reader went away (a closed pipe) while a command that only reads was writing."""


class OutputFailed(ToolError):
    """What a tool printed could not be written: a full disk, an I/O error (`> /dev/full`)."""


def pipe_without_reader(stream) -> bool:
    """The stream's descriptor is a pipe whose reading end is closed: poll() says POLLERR of its writing end (pipe(7))."""
    try:
        descriptor = stream.fileno()
    except (OSError, ValueError, AttributeError):  # no descriptor (a test's StringIO)
        return False
    poller = select.poll()
    poller.register(descriptor, select.POLLOUT)
    return any(events & select.POLLERR for _, events in poller.poll(0))


class Output:
    """A tool's standard output once its reader may go away (`| head` exited, a CI log reader died).
    Python ignores SIGPIPE, so a write then raises BrokenPipeError: from there on what is written is
    dropped, stdout pointing at the null device (also for Python's flush at exit), as Python's
    documentation advises: https://docs.python.org/3/library/signal.html#note-on-sigpipe
    A command that changes things goes on to its own end (`goes_on`: stopped half way, it would leave
    more to clean up, and its lock); one that only reads stops: ReaderGone. A write that fails
    otherwise (a full disk) is dropped the same way and kept in `failure`; one that only reads then
    stops with OutputFailed."""

    def __init__(self, stream, goes_on: bool):
        self.stream, self.goes_on, self.gone, self.failure = stream, goes_on, False, None

    def write(self, text) -> int:
        if not self.gone:
            try:
                if self.stream is None:  # the descriptor was closed when the tool started (`>&-`): no reader at all
                    raise BrokenPipeError
                return self.stream.write(text)
            except BrokenPipeError:
                self.reader_left()
            except OSError as error:
                self.cannot_write(error)
        return len(text)

    def flush(self) -> None:
        if not self.gone and self.stream is not None:
            try:
                self.stream.flush()
            except BrokenPipeError:
                self.reader_left()
            except OSError as error:
                self.cannot_write(error)

    def cannot_write(self, error: OSError):
        self.failure = f"cannot write the standard output ({error.strerror or error}): what was printed is incomplete"
        self.drop()
        if not self.goes_on:
            raise OutputFailed(self.failure)

    def __getattr__(self, name):  # encoding, fileno, buffer: the stream's own, for code that reads them
        if name == "stream":  # not set yet (a copy being made): no endless lookup
            raise AttributeError(name)
        return getattr(self.stream, name)

    def reader_left(self):
        self.drop()
        if not self.goes_on:
            raise ReaderGone

    def drop(self):
        """What is written from now on is dropped, the stream pointed at the null device."""
        self.gone = True
        if self.stream is not None:
            with contextlib.suppress(OSError, ValueError, AttributeError):  # a stream without a file descriptor keeps what it has
                descriptor = self.stream.fileno()  # first: one that has none leaves no null device open
                devnull = os.open(os.devnull, os.O_WRONLY)
                try:
                    os.dup2(devnull, descriptor)
                finally:
                    os.close(devnull)

    @property
    def reader_gone(self) -> bool:
        """No one reads it: its reader left, it was closed before the tool started (`>&-`), or it is a pipe whose
        reading end is closed, which no write has found yet (`make destroy | true`: nothing is written before its
        question)."""
        return self.gone or self.stream is None or pipe_without_reader(self.stream)

    def isatty(self) -> bool:
        return self.stream is not None and self.stream.isatty()


# C0 and C1 control characters but tab and newline: an escape sequence from a log line could retitle
# or clear the terminal, a carriage return let a line overwrite itself with a forged one. U+2028 and
# U+2029 too: str.splitlines() ends a line there, and so did the error lines that quoted them. And
# the bidirectional embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069), which reorder
# how the rest of a line is shown, and the invisible marks (U+200E, U+200F, U+061C), which move the
# characters around them: https://www.unicode.org/reports/tr9/#Explicit_Directional_Embeddings
# And the other invisible formatting characters (zero-width space, non-joiner and joiner, word joiner
# and invisible operators, the byte-order mark, the soft hyphen): a tag key holding one printed as
# another key, set and removed in the same change-set table. And the letters that show as nothing (the
# Hangul fillers, the Mongolian vowel separator, the combining grapheme joiner): "startupwebapp<U+3164>"
# read as startupwebapp in a review document.
UNPRINTABLE = (
    r"\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c\u00ad\u200b-\u200d\u2060-\u2064\ufeff"
    r"\u115f\u1160\u3164\uffa0\u180e\u034f"
    # Surrogates: JSON's "\udc9b" escapes give them, and stdout writes one as the raw byte it stands for
    # under surrogateescape (a C1 control, part of a bidi override) or fails on it (a traceback).
    r"\ud800-\udfff"
)
CONTROL_CHARACTERS = re.compile(rf"[\x00-\x08{UNPRINTABLE}]")
ANY_CONTROL_CHARACTER = re.compile(rf"[\x00-\x0a{UNPRINTABLE}]")


def untrusted_json(text):
    """JSON from outside the tools (an SSM parameter, an HTTP answer) parsed; None when it is not
    JSON, nested past what json parses (RecursionError) included: a malformed value, never a traceback."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


def printable(text: str, one_line: bool = False) -> str:
    """Text from outside the tools (a log event, a task's stop reason, an HTTP answer) as it may be
    printed: each control character shown escaped, as \\x1b or \\r; one_line: tab and newline too
    (a name, which a newline would split into a second, forged message line)."""
    return (ANY_CONTROL_CHARACTER if one_line else CONTROL_CHARACTERS).sub(_escaped, text)


def _escaped(found) -> str:
    """A character as Python's repr escapes it, or, one repr shows as it is (a letter that shows as nothing), as \\uXXXX."""
    character = found.group()
    escaped = repr(character)[1:-1]
    return escaped if escaped != character else f"\\u{ord(character):04x}"


# Ctrl-C, and the signals the tools take as Ctrl-C (terminated).
STOPPING_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM, signal.SIGHUP})
NEVER_A_SECOND_STOP = signal.SIGHUP  # after a first stop signal, no one asked again (stops_held says why)


def flock_within(descriptor, how: int, seconds: float, waiting: str, say) -> bool:
    """flock(2) how (LOCK_EX, LOCK_SH) on descriptor, tried every 0.1 s for at most seconds: True once held, False past
    them; waiting is said once (by say) when the first try finds it held by another. An OSError where the file system
    has no such locks. The lock goes with the descriptor, however its process ends."""
    deadline, said = time.monotonic() + seconds, False
    while True:
        try:
            fcntl.flock(descriptor, how | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            pass
        if time.monotonic() > deadline:
            return False
        if not said:
            say(waiting)
            said = True
        time.sleep(0.1)


@contextlib.contextmanager
def stops_held(held=None):
    """Ctrl-C, SIGTERM and SIGHUP that come during the block act once it ends, as they would have
    (their handlers run then). Handlers, not a signal mask: a mask holds a signal back only in this
    thread, and the kernel may hand a process's signal to another thread, whose C-level handler
    has Python run the handler in this one at once. Main thread only, as signal.signal is.
    held: called at the first such signal, to say what the run finishes first; a second one then
    acts at once, so that a block whose calls take long (AWS not answering) is not beyond it. Not a
    SIGHUP: a closed terminal sends two at once, the shell's as it exits ("Before exiting, an interactive
    shell resends the SIGHUP to all jobs": https://www.gnu.org/software/bash/manual/html_node/Signals.html)
    and the system's as it has ("the SIGHUP signal shall be sent to each process in the foreground process
    group": https://pubs.opengroup.org/onlinepubs/9799919799/functions/_exit.html), and a session's end
    sends one right after its SIGTERM (systemd's SendSIGHUP=:
    https://www.freedesktop.org/software/systemd/man/latest/systemd.kill.html): no one asked twice.
    Gives the signals that came, in order, for a block that ends early at one."""
    came = []
    # Left alone: an ignored signal (SIGHUP under nohup), and one whose handler was set outside Python
    # (getsignal says None), which signal.signal could not put back.
    previous = {
        number: handler
        for number in sorted(STOPPING_SIGNALS)
        if (handler := signal.getsignal(number)) is not None and handler is not signal.SIG_IGN
    }

    def put_back():
        for number, handler in previous.items():
            signal.signal(number, handler)

    def act(number):
        handler = previous[number]
        if callable(handler):
            handler(number, None)  # Python's own for SIGINT raises KeyboardInterrupt; terminated, Terminated
        else:
            os.kill(os.getpid(), number)  # SIG_DFL: what the signal does by default

    def hold(number, frame):
        came.append(number)
        if held is not None and len(came) == 1:
            # The run was itself writing to that stream (RuntimeError), or it is gone: the line is lost, not the hold.
            with contextlib.suppress(Exception):
                held()
        elif held is not None and number != NEVER_A_SECOND_STOP:
            put_back()
            came.clear()
            act(number)

    for number in previous:
        signal.signal(number, hold)
    try:
        yield came
    finally:
        put_back()
        if came:
            act(came[0])


class Terminated(KeyboardInterrupt):
    """A stop signal other than Ctrl-C: handled as Ctrl-C is, except where Ctrl-C is the way a
    command ends by design (make logs FOLLOW=1)."""


_forks_end_quietly = threading.Event()


def end_quietly(number, frame):
    """A forked worker's stop signal (forks_end_quietly): it ends at once, without a word."""
    os._exit(128 + number)


_forking = 0  # the process that forks, as the child sees it: its parent (os.getppid() may already name another)


def _before_fork():
    global _forking
    _forking = os.getpid()


def _after_fork_in_child():
    if _forks_end_quietly.is_set():
        for number in STOPPING_SIGNALS:
            if signal.getsignal(number) not in (signal.SIG_IGN, None):
                signal.signal(number, end_quietly)
        threading.Thread(target=end_with_parent, args=(_forking,), name="end-with-parent", daemon=True).start()


os.register_at_fork(before=_before_fork, after_in_child=_after_fork_in_child)


def end_with_parent(parent: int) -> None:
    """A worker whose tool was killed outright (kill -9, the out-of-memory killer) waited on a pipe for good, for work
    (cfn-lint's pool) or to send a result no one reads (checkov's, whose read end it holds itself), keeping the
    scanner's memory and the tool's stdout (`make check | tee log` never ended): it ends once its parent is gone (it is
    then another process's child)."""
    while os.getppid() == parent:
        time.sleep(0.2)
    os._exit(1)


@contextlib.contextmanager
def forks_end_quietly():
    """Processes forked within the block (checkov forks its workers) end at once and without a word at a
    stop signal: Ctrl-C reaches the whole process group, the tool says `interrupted` for all, and each
    worker's KeyboardInterrupt was a traceback multiprocessing printed; and they end once the tool is gone
    (end_with_parent: killed outright, it left them blocked for good). So does what a worker forks, once that worker
    is gone: neither scanner's workers fork anything that outlives them."""
    _forks_end_quietly.set()
    try:
        yield
    finally:
        _forks_end_quietly.clear()


def terminated(signum, frame):
    """A CI cancel or `kill` (SIGTERM), or a closed terminal or dropped SSH session (SIGHUP), ends a
    tool as Ctrl-C does: what it made half way is cleaned up (generation's staging directory, a
    deploy's change set and lock), and a stack operation under way is left to CloudFormation. A SIGHUP
    after it is ignored (NEVER_A_SECOND_STOP): arriving as the first unwound, it cut the clean-up short
    (the terminal's two SIGHUPs come 0.1 ms apart when they do not merge into one)."""
    with contextlib.suppress(ValueError):  # outside the main thread: left as it is
        if signal.getsignal(NEVER_A_SECOND_STOP) is terminated:
            signal.signal(NEVER_A_SECOND_STOP, signal.SIG_IGN)
    raise Terminated


def started_as_a_tool(root) -> bool:
    """This process was started as one of the project's tools (`python generate.py`, `python -m scripts.deploy`):
    the script or module its command line names is the project's (under root, not in the virtual environment).
    Not pytest and its workers, whose SIGTERM stays theirs (xdist replaces a worker a SIGTERM kills), nor `python -c`.
    The command line as given (sys.orig_argv): while `-m`'s package imports, sys.argv[0] is only "-m"."""
    args = iter(sys.orig_argv[1:])
    for arg in args:
        if arg == "--check-hash-based-pycs":  # the one long option with a value
            next(args, None)
        elif arg == "--":  # the end of Python's options: the script follows
            arg = next(args, "-")
            return arg != "-" and project_file(Path(arg), root)
        elif arg.startswith("--") or arg == "-":  # --help and such; "-": the program is read from stdin
            return False
        elif arg.startswith("-"):  # short options, several at once too: -Bm module, -Wdefault
            for at, option in enumerate(arg[1:], start=2):
                if option in "cmXW":
                    value = arg[at:] or next(args, "")
                    if option == "m":  # a package of the project's (scripts.deploy) or a module (generate)
                        top = value.partition(".")[0]
                        return bool(top) and ((root / top).is_dir() or (root / f"{top}.py").is_file())
                    if option == "c":
                        return False
                    break
        else:
            return project_file(Path(arg), root)
    return False


def project_file(path, root) -> bool:
    """path is one of the project's files: under root, and not in a virtual environment there (pytest's script).
    Only a virtual environment's prefix is left out: a Python's own may hold the checkout (/usr/local/src/app)."""
    path = path.resolve()
    venv = sys.prefix != sys.base_prefix and path.is_relative_to(Path(sys.prefix).resolve())
    return path.is_relative_to(root) and not venv


def stop_signals_as_ctrl_c() -> None:
    """SIGTERM and SIGHUP end the process as Ctrl-C does (terminated), from now on. Main thread only, as
    signal.signal is: elsewhere (a thread that imports templates/ first) they are left as they are."""
    if threading.current_thread() is not threading.main_thread():
        return
    for number in STOPPING_SIGNALS - {signal.SIGINT}:
        if signal.getsignal(number) is not signal.SIG_IGN:  # under nohup, SIGHUP stays ignored
            signal.signal(number, terminated)


def blocking_outputs() -> None:
    """stdout and stderr written to as blocking descriptors. O_NONBLOCK belongs to an open pipe, which every process
    of a CI step shares (Node sets it on its stdio): a slow reader's full pipe then failed a write with EAGAIN, which
    Python's unbuffered stdout (PYTHONUNBUFFERED) drops without a word (a deploy's log cut after 4 KiB, exit 0) and
    its buffered one raises (a deploy that worked said "cannot write the standard output"). A pipe is opened again
    through /proc (Linux) as the tool's own, so that making it blocking changes nothing for the processes sharing it
    (O_NONBLOCK for the open: a pipe without a reader fails it at once); anything else is made blocking in place."""
    for descriptor in (1, 2):
        with contextlib.suppress(OSError):  # closed (`>&-`): nothing to write to
            if os.get_blocking(descriptor):
                continue
            if stat.S_ISFIFO(os.fstat(descriptor).st_mode):
                with contextlib.suppress(OSError):  # no /proc, or no reader any more (a write then says so: EPIPE)
                    own = os.open(f"/proc/self/fd/{descriptor}", os.O_WRONLY | os.O_NONBLOCK)
                    os.set_blocking(own, True)
                    os.dup2(own, descriptor)
                    os.close(own)
                    continue
            os.set_blocking(descriptor, True)


def run(main, reader_gone_ends=True) -> None:
    """`python -m ...`: exit with main()'s status. SIGTERM and SIGHUP end it as Ctrl-C does
    (terminated). A closed reader (`| head`) ends it at once (SIGPIPE: status 141, no message),
    unless reader_gone_ends is False: then main() handles it (Output)."""
    global _main_ends_the_process
    stop_signals_as_ctrl_c()
    blocking_outputs()
    if reader_gone_ends:
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
        # A full disk under stdout: the tool goes on to its end (generation's files, the review's
        # documents are written whole), then says so.
        sys.stdout = Output(sys.stdout, goes_on=True)
    _main_ends_the_process = True
    try:
        code = main()
    finally:
        _main_ends_the_process = False
    if code == 130:  # it said `interrupted`, and ends
        ignore_stop_signals()
    if isinstance(sys.stdout, Output):
        sys.stdout.flush()  # a file's buffer meets a full disk only here, and Python's flush at exit would not say so
    if isinstance(sys.stdout, Output) and sys.stdout.failure:
        failed = report(OutputFailed(sys.stdout.failure))
        code = code or failed
    # Before it ends, the interpreter would search everything still alive for reference cycles
    # (after a lint, cfn-lint's rules and schemas: about 0.3 s); it skips frozen objects.
    gc.freeze()
    sys.exit(code)
