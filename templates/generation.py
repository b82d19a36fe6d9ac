"""Generation's library: every output file built in memory, compared with output/, staged, linted
and moved into place all or nothing. generate.py is its command line (`make templates`); the
review and the tests use the same functions."""

import contextlib
import fcntl
import json
import os
import shlex
import shutil
import stat
import sys
import tempfile
from pathlib import Path

import templates
from templates import ROOT, ci, inputs, relative
from templates.errors import (
    RefusedFile,
    ToolError,
    flock_within,
    open_regular_file,
    printable,
    read_regular_file,
    stops_held,
    untrusted_json,
)
from templates.params import ENV_NAME, SANDBOX_CANNOT_REHEARSE, SANDBOX_ENV, Environment, ParamsError, environment_problem, load, load_all

PARAMS_DIR = ROOT / "params"
OUTPUT_DIR = ROOT / "output"


def render(document: dict) -> str:
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


ALLOW_EVERY_UPDATE = {"Effect": "Allow", "Action": "Update:*", "Principal": "*", "Resource": "*"}


def stack_policy(template: dict) -> dict | None:
    """Deny replacing or deleting the layer's stateful resources; allow every other update."""
    stateful = sorted(name for name, resource in template["Resources"].items() if resource["Type"] in templates.STATEFUL_TYPES)
    if not stateful:
        return None
    return {
        "Statement": [
            ALLOW_EVERY_UPDATE,
            {
                "Effect": "Deny",
                "Action": ["Update:Replace", "Update:Delete"],
                "Principal": "*",
                "Resource": [f"LogicalResourceId/{name}" for name in stateful],
            },
        ]
    }


def template_configuration(env: Environment, layer: str, template: dict) -> dict:
    """CloudFormation's template-configuration format; wired parameters come at deploy time."""
    config = {
        "Parameters": {name: env.values[name] for name in sorted(template.get("Parameters", {})) if name in inputs.INPUTS},
        "Tags": templates.own_tags(env.name, layer) | env.tags,
    }
    policy = stack_policy(template)
    if policy:
        config["StackPolicy"] = policy
    return config


def build_all(environments: list[Environment], output_dir: Path = OUTPUT_DIR) -> dict[Path, str]:
    """Every output file's path and content; pure, writes nothing."""
    built = {layer: module.build() for layer, module in templates.LAYERS.items()}
    templates.check_wiring(built)
    for template in built.values():
        template.set_metadata({"AWS::CloudFormation::Interface": inputs.console_interface(template.parameters)})
    files = {}
    for layer in templates.layer_order():
        document = built[layer].to_dict()
        files[output_dir / f"{layer}.json"] = render(document)
        for env in environments:
            if not env.deploys(layer):
                continue
            files[output_dir / env.name / f"{layer}.json"] = render(template_configuration(env, layer, document))
    return files


def values_no_layer_takes(environments: list[Environment], files: dict[Path, str], output_dir: Path = OUTPUT_DIR) -> list[str]:
    """Values a params file gives for inputs that only layers it does not deploy take (GitHubSubjects where ci is
    not enabled: the file reads as if the environment limited who may deploy it): each goes nowhere, said as a
    warning, not refused, so that a layer taken out of enabled_layers keeps its values for when it is back."""
    takers = {}
    for layer in templates.LAYERS:
        for name in json.loads(files[output_dir / f"{layer}.json"]).get("Parameters", {}):
            takers.setdefault(name, []).append(layer)
    lines = []
    for env in environments:
        taken = {name for layer in env.layers for name in json.loads(files[output_dir / env.name / f"{layer}.json"])["Parameters"]}
        for key in sorted(env.explicit - taken):
            layers = takers.get(key, [])
            # the sandbox refuses the layers it cannot rehearse in enabled_layers: leaving the value out is the one way
            can = [layer for layer in layers if env.name != SANDBOX_ENV or layer not in SANDBOX_CANNOT_REHEARSE]
            fix = (
                f"add {can[0]} to enabled_layers, or leave the value out" if can else "leave the value out: the sandbox cannot rehearse it"
            )
            lines.append(
                f"{templates.relative(env.path)}: parameters.{key}: only the {' and '.join(layers)} layer takes it, which {env.name} "
                f"does not deploy: it has no effect ({fix})"
            )
    return lines


def write_atomically(path: Path, content: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        # UTF-8 whatever the locale: the documents hold →, × and — (LC_ALL=C made this an ASCII write)
        with os.fdopen(fd, "wb") if isinstance(content, bytes) else os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(content)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        # gone once os.replace has moved it: Ctrl-C right after the replace is then said, not a FileNotFoundError
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def owned(path: Path, output_dir: Path) -> bool:
    """Generation's own files: <layer>.json, <env>/<layer>.json, and review/<env>.md (make review)."""
    parts = path.relative_to(output_dir).parts
    if len(parts) == 1:
        return path.suffix == ".json" and path.stem in templates.LAYERS
    if len(parts) == 2 and parts[0] == "review":
        return path.suffix == ".md" and ENV_NAME.fullmatch(path.stem) is not None
    return len(parts) == 2 and ENV_NAME.fullmatch(parts[0]) is not None and path.suffix == ".json" and path.stem in templates.LAYERS


REVIEW_TITLE = "# StartupWebApp review: {env}"  # a review document's first line (scripts/review/render.py)
MOST_OWN_FILE_BYTES = 1 << 20  # a layer template is tens of kilobytes, a review document some hundred
MOST_OUTPUT_ENTRIES = 10_000  # output/ holds some 40 files: a directory with more is none generation made


def written_here(path: Path, output_dir: Path) -> bool:
    """Whether a file named as generation's own (owned) holds what generation or the review writes
    under that name: a stale one is removed only then, so that a file someone else made under such a
    name (review/notes.md, or an alb.json in a directory named like an environment) is never deleted."""
    parts = path.relative_to(output_dir).parts
    try:
        content = read_regular_file(path, MOST_OWN_FILE_BYTES)
    except (OSError, RefusedFile):
        return False
    if parts[0] == "review":  # its title, whatever line ends an editor gave it
        return content.replace(b"\r\n", b"\n").startswith(f"{REVIEW_TITLE.format(env=path.stem)}\n".encode())
    # <env>/<layer>.json (a layer template's own name is always one generation writes now: never stale)
    data = untrusted_json(content)  # a configuration nested past what json parses is none of ours either
    tags = data.get("Tags") if isinstance(data, dict) else None
    return isinstance(tags, dict) and all(tags.get(key) == value for key, value in templates.own_tags(parts[0], path.stem).items())


def foreign_files(output_dir: Path, expected: frozenset = frozenset()) -> list[Path]:
    """Files in output_dir that generation did not write (hidden ones, its own temporaries, aside),
    and any symlink: writing or removing through one would reach files outside output_dir. A file
    named as generation's own is foreign unless it is one of `expected` (written now) or written_here."""
    if not output_dir.is_dir():
        return []
    found = [p for p in visible_entries(output_dir, len(expected)) if p.is_symlink() or not p.is_dir()]
    return sorted(p for p in found if p.is_symlink() or not owned(p, output_dir) or (p not in expected and not written_here(p, output_dir)))


def visible_entries(output_dir: Path, expected_count: int) -> list[Path]:
    """Every file, directory and symlink in output_dir but hidden ones and what they hold (a .git, its
    own staging directories), symlinks not followed; GenerationError past MOST_OUTPUT_ENTRIES: for
    --output-dir / or ~, at once rather than after a walk of the whole tree."""

    def unreadable(error):
        raise error

    entries = []
    for top, directories, names in os.walk(output_dir, onerror=unreadable):
        directories[:] = [name for name in directories if not name.startswith(".")]
        entries += [Path(top) / name for name in directories + names if not name.startswith(".")]
        if len(entries) > MOST_OUTPUT_ENTRIES:
            raise GenerationError(
                f"--output-dir {output_dir} holds more than {MOST_OUTPUT_ENTRIES:,} files and directories: not an output directory "
                f"(generation and the review write {expected_count} files there); use {relative(OUTPUT_DIR)}/ or an empty directory",
                2,
            )
    return entries


def differences(files: dict[Path, str], output_dir: Path) -> tuple[list[Path], list[Path]]:
    """(files to write because absent or different, stale generated files to remove). A file named as
    generation's own that it did not write (written_here) is no stale one: refuse_output_dir names it."""
    changed = [path for path, content in files.items() if not same_content(path, content.encode())]
    existing = {p for p in set(output_dir.glob("*.json")) | set(output_dir.glob("*/*.json")) if owned(p, output_dir)}
    existing = {p for p in existing if p in files or written_here(p, output_dir)}
    stale = sorted(existing - set(files))
    return changed, stale


def same_content(path: Path, content: bytes) -> bool:
    """Whether path is a regular file holding content: bytes, so that any file compares, even garbled;
    its size first, so that a huge file left in its place is not read (nor a FIFO, nor a device)."""
    try:
        return path.stat().st_size == len(content) and read_regular_file(path, len(content)) == content
    except (OSError, RefusedFile):  # missing, a FIFO, a directory
        return False


def stage(files: dict[Path, str], output_dir: Path) -> Path:
    """Write files into a hidden directory inside output_dir (same file system: moves are atomic)."""
    output_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=output_dir, prefix=".staging-"))
    try:
        for path, content in files.items():
            target = staging / path.relative_to(output_dir)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content, encoding="utf-8")
            os.chmod(target, 0o644)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return staging


def lint(paths: list[Path], shown_as: dict[Path, Path]) -> list[str]:
    """cfn-lint problems of paths, each line naming the file as shown_as maps it."""
    from templates.validation import cfn_lint

    return [problem.said(shown_as.get(problem.file, problem.file)) for problem in cfn_lint(paths)]


def regenerate_command(output_dir: Path, params_dir: Path) -> str:
    """The command that generates output_dir from params_dir again, as messages name it."""
    if (output_dir.resolve(), params_dir.resolve()) == (OUTPUT_DIR.resolve(), PARAMS_DIR.resolve()):  # either may be a symlink
        return "make templates"
    if not regenerates_in_place(output_dir, params_dir):  # output/ is params/'s: generate.py refuses another directory's there
        return (
            f".venv/bin/python generate.py --params-dir {relative(params_dir)} --output-dir <a directory outside {relative(OUTPUT_DIR)}/>"
        )
    return f".venv/bin/python generate.py --output-dir {relative(output_dir)} --params-dir {relative(params_dir)}"


def how_changed(path: Path, source: str) -> str:
    """How a file of output/ differs from what generation produces: missing, one that cannot be read (same_content
    took it for changed: said as differing, the permission went unsaid), or other content (source: what it is
    generated from, where a change by hand belongs: make templates writes the file anew)."""
    if not path.exists():
        return "is missing; generation produces it"
    try:
        os.close(open_regular_file(path))
    except OSError as error:
        return f"cannot be read ({error.strerror or error}); `make templates` writes it anew, or give it read permission"
    except RefusedFile:  # a FIFO (which generation replaces), a directory: other content
        if path.is_dir() and not path.is_symlink():  # one generation does not write over (it refuses to)
            return "is a directory where generation produces a file, which make templates does not write over: move it away, then run make templates"
    return f"differs from what generation produces (from {source}: make templates writes it anew from there, undoing any change made in the file itself)"


def generated_from(path: Path, output_dir: Path, params_dir: Path) -> str:
    """Where a change to a file of output/ belongs: a layer template's in templates/, a configuration's in its params file."""
    return "templates/" if path.parent == output_dir else f"{relative(params_dir / path.parent.name)}.yaml"


def stale_reasons(changed: list[Path], stale: list[Path], output_dir: Path, params_dir: Path) -> list[str]:
    """Why each file of differences() is stale, one line each: a changed one differs or is missing; an
    environment directory whose params file is gone (moved or deleted by mistake, most often) is one
    line for all its files, with the choice, since `make templates` would remove the directory."""
    orphaned = sorted({p.parent for p in stale if p.parent != output_dir and not (params_dir / f"{p.parent.name}.yaml").is_file()})
    return (
        [f"{relative(path)} {how_changed(path, generated_from(path, output_dir, params_dir))}" for path in changed]
        + [
            f"{relative(path)} is produced by no layer or environment"
            + (
                f" now: {path.stem} is not in enabled_layers of {relative(params_dir / path.parent.name)}.yaml"
                if path.parent != output_dir and path.stem in templates.LAYERS
                else ""
            )
            for path in stale
            if path.parent not in orphaned
        ]
        + [
            f"{relative(directory)}/ is no environment's: there is no {relative(params_dir / directory.name)}.yaml; "
            + (
                f"restore it to keep {directory.name}, or run `{regenerate_command(output_dir, params_dir)}`, which removes {relative(directory)}/"
                if regenerates_in_place(output_dir, params_dir)
                else f"{relative(OUTPUT_DIR)}/ holds what {relative(PARAMS_DIR)}/ generates, not {relative(params_dir)}/"
            )
            for directory in orphaned
        ]
    )


def leftover_staging(output_dir: Path) -> list[Path]:
    """Staging directories (stage()) in output_dir: a run killed before it removed its own (SIGKILL, a power
    cut) left them; a run under way now has its own there too."""
    with contextlib.suppress(OSError):
        return sorted(p for p in output_dir.glob(".staging-*") if p.is_dir() and not p.is_symlink())
    return []


def regenerates_in_place(output_dir: Path, params_dir: Path) -> bool:
    """Whether generation writes output_dir from params_dir: not the project's output/ from another directory's params."""
    return output_dir.resolve() != OUTPUT_DIR.resolve() or params_dir.resolve() == PARAMS_DIR.resolve()


def of_the_environment(
    changed: list[Path], stale: list[Path], env: str, output_dir: Path, layer: str | None = None
) -> tuple[list, list, list]:
    """(changed, stale) of differences() less another environment's files, and the directories of
    those: a deploy of env reads the layer templates and output/<env>/ alone, and a half-made edit of
    one environment's params must not hold back a deploy or a rollback of another. With layer, less
    the other layers' files too, and those files: a rollback reads the service layer's alone, and an
    edit of the alarms values not generated yet must not hold it back."""

    def theirs(path: Path) -> bool:
        return path.parent != output_dir and path.parent.parent == output_dir and path.parent.name != env

    def other_layers(path: Path) -> bool:
        return layer is not None and not theirs(path) and path.name != f"{layer}.json"

    others = sorted({path.parent for path in changed + stale if theirs(path)})
    others += sorted(path for path in changed + stale if other_layers(path))
    kept = [[path for path in paths if not theirs(path) and not other_layers(path)] for paths in (changed, stale)]
    return kept[0], kept[1], others


def publish(files: dict[Path, str], changed: list[Path], stale: list[Path], output_dir: Path, run_lint: bool = True) -> list[str]:
    """All or nothing: the changed files are written to a staging directory and linted there;
    only when cfn-lint finds no problem do they replace the old ones and the stale ones go, so
    output/ is never half old, half new, nor unlinted. Returns cfn-lint's problems (nothing moved
    then). A disk that refuses is a ToolError naming the file."""
    layer_templates = sorted(path for path in files if path.parent == output_dir)
    try:
        staging = stage({path: files[path] for path in changed}, output_dir)
    except OSError as error:
        raise ToolError(f"cannot write {output_dir}/: {os_problem(error)}; nothing was written") from None
    try:  # whatever stops the run, the staging directory goes (a second removal is harmless)
        if run_lint:
            staged = {staging / p.relative_to(output_dir): p for p in layer_templates if p in changed}
            in_place = {p: p for p in layer_templates if p not in changed}
            try:
                problems = lint(sorted(staged) + sorted(in_place), staged)
            except OSError as error:  # no process to lint in (a refused fork), a template gone meanwhile
                raise ToolError(f"cfn-lint could not run: {os_problem(error)}; nothing was written") from None
            if problems:
                return problems
        commit(staging, changed, stale, output_dir)
        return []
    finally:
        with stops_held():  # a second stop signal (a closed terminal sends two SIGHUPs at once) left it behind
            shutil.rmtree(staging, ignore_errors=True)


def commit(staging: Path, changed: list[Path], stale: list[Path], output_dir: Path) -> None:
    """move_in, then the clean-up, with stop signals held: one acts once output/ is old or new as a
    whole and the staging directory (which holds the old files while they may be put back) is gone.
    Between a move and its record, a Ctrl-C left that file out of the put-back, and one in the
    clean-up left the directory behind. A failure outweighs a stop signal that came meanwhile."""
    replaced, failure = False, None
    try:
        with stops_held():
            try:
                move_in(staging, changed, stale, output_dir)
                replaced = True
            except ToolError as error:
                failure = error
            finally:
                shutil.rmtree(staging, ignore_errors=True)
            for directory in ({path.parent for path in stale} - {output_dir}) if replaced else set():
                with contextlib.suppress(OSError):  # a removed environment's, once empty
                    directory.rmdir()
    except KeyboardInterrupt:
        if failure is not None:
            raise failure from None
        if replaced:
            print(f"{relative(output_dir)}/: {len(changed)} written, {len(stale)} removed before the stop", flush=True)
        raise
    if failure is not None:
        raise failure


def os_problem(error: OSError) -> str:
    """What the system said, and of which file when it said (a full disk names none)."""
    return f"{error.strerror or error}" + (f" ({error.filename})" if error.filename else "")


def move_in(staging: Path, changed: list[Path], stale: list[Path], output_dir: Path) -> None:
    """Each staged file replaces its path in output_dir and each stale file goes, each atomically;
    one that cannot (a directory in its place, a refusing disk, a file that may not be removed)
    puts back the ones already done, so that output/ is old or new as a whole, and the ToolError
    names the file of output/ (not the staged one). Run with stop signals held (publish)."""
    previous, done, made = {}, [], []  # made: the environment directories this call created
    going = set(stale)
    try:
        for path in changed + stale:
            previous[path] = keep_previous(path, staging / ".previous" / path.relative_to(output_dir))
            if path in going:
                path.unlink(missing_ok=True)
            else:
                try:
                    path.parent.mkdir(parents=True)
                    made.append(path.parent)
                except FileExistsError:  # there already (or a file in its place, which the move below then names)
                    pass
                os.replace(staging / path.relative_to(output_dir), path)
            done.append(path)
    except BaseException as error:  # whatever stopped it, what was done goes back before the run ends
        outcome = "nothing was changed"
        try:
            for path_done in reversed(done):
                if previous[path_done] is None:  # a new file goes; a stale one already gone stays so
                    path_done.unlink(missing_ok=True)
                else:
                    os.replace(previous[path_done], path_done)
            for directory in reversed(made):
                directory.rmdir()
        except OSError:  # the disk refuses the old contents too: say so, rather than "nothing"
            outcome = "output/ is part old, part new: run make templates again once the cause is gone"
        if not isinstance(error, OSError):
            raise
        raise ToolError(f"cannot {'remove' if path in going else 'write'} {relative(path)}: {error.strerror or error}; {outcome}") from None


def keep_previous(path: Path, kept: Path) -> Path | None:
    """The file at path as it is (garbled too), kept in the staging directory to be put back; None
    if there is none. A hard link, not a read: a file of gigabytes put there is kept without being
    read into memory (a copy where the file system has no links); a special file (a FIFO someone put
    there) or a symlink is linked as itself, as reading it would block or follow it. One no link keeps
    (fs.protected_hardlinks, the link limit) stops the run before it is replaced: its OSError. A copy is
    kept only of the runner's own regular file of one name, where the file system has no hard links: a
    copy of another's would come back the runner's, one of a file of several names unlinked from them."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return None
    if stat.S_ISDIR(info.st_mode):
        return None  # a directory in its place: the move names it, and nothing of it was moved
    kept.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(path, kept, follow_symlinks=False)
    except OSError:
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid() or info.st_nlink > 1:
            raise
        shutil.copy2(path, kept)
    return kept


class GenerationError(ToolError):
    """Generation stops before writing anything (said, unless the run was --check, which never writes:
    make deploy, changeset, execute, diff and rollback run it first)."""

    checking = False  # a --check run's (check) says nothing of writing

    def __init__(self, message, code: int | None = None, notes: tuple = ()):
        super().__init__(message, code)
        self.notes = list(notes)  # lines after the error's, without its prefix

    def lines(self):
        return super().lines() + ([] if self.checking else ["nothing was written"]) + self.notes


class StaleOutput(GenerationError):
    """--check: each file that is not what generation writes now, then what to do."""

    def __init__(self, reasons: list[str], advice: str):
        super().__init__("\n".join(reasons))
        self.reasons, self.advice = reasons, advice

    def lines(self):
        return [f"stale: {reason}" for reason in self.reasons] + [self.advice]


class LintFailed(GenerationError):
    """cfn-lint's problems as it words them, then their count and what follows from them."""

    def __init__(self, problems: list[str], outcome: str):
        super().__init__("\n".join(problems))
        self.problems, self.summary = problems, f"cfn-lint: {len(problems)} problems; {outcome}"

    def lines(self):
        return [*self.problems, self.summary]


def followed(path: Path, option: str) -> Path:
    """path with its links followed; a GenerationError (exit 2) for one that leads nowhere (a symlink loop, which
    Path.resolve gives as a RuntimeError)."""
    try:
        return path.resolve()
    except (RuntimeError, OSError) as error:
        why = "a symlink loop" if isinstance(error, RuntimeError) else error.strerror or str(error)
        raise GenerationError(
            f"{option} {printable(str(path), one_line=True)}: cannot be followed to a directory ({why}); allowed: a directory, "
            "or a link to one",
            2,
        ) from None


def unusable_output_dir(output_dir: Path) -> str | None:
    """Why the tools cannot even look at output_dir (a name longer than the file system takes, a
    directory above it they may not search), said before they try to read or write there; else None."""
    try:
        output_dir.exists()  # Python 3.11 says False only for the errors that mean "not there"
    except OSError as error:
        return f"{printable(str(output_dir), one_line=True)}: cannot be used ({error.strerror or error}); name another with --output-dir"
    return None


def refuse_output_dir(output_dir: Path, params_dir: Path, files: dict[Path, str]) -> None:
    """GenerationError unless output_dir is a directory generation may write into: not a directory
    inside the project's output/ (whose files it writes itself), and holding no file it did not write
    (files: what it writes now; the review documents of their environments are expected there too)."""
    if output_dir.exists() and not output_dir.is_dir():
        raise GenerationError(
            f"{output_dir} is not a directory: generation writes into a directory there (made when missing); move it away, "
            "or name another with --output-dir",
            2,
        )
    inside, own = output_dir.resolve(), OUTPUT_DIR.resolve()  # output/ may be a symlink to a directory elsewhere
    if inside != own and inside.is_relative_to(own):  # --output-dir output/prod: its files are output/'s
        raise GenerationError(
            f"--output-dir {output_dir} is inside {relative(OUTPUT_DIR)}/, whose files generation writes itself: "
            f"use {relative(OUTPUT_DIR)}/ or a directory outside it",
            2,
        )
    try:
        environments = {path.parent.name for path in files if path.parent != output_dir}
        foreign = foreign_files(output_dir, frozenset(files) | {output_dir / "review" / f"{env}.md" for env in environments})
    except OSError as error:  # a name too long to open, a directory gone while listed (/proc)
        found = Path(str(error.filename))  # where, inside output_dir, as short as it can be said
        where = printable(str(found.relative_to(output_dir) if found.is_relative_to(output_dir) else found), one_line=True)
        where = f" at {where[:60]}...{where[-60:]}" if len(where) > 120 else f" at {where}" if error.filename else ""
        raise GenerationError(f"{output_dir}/ cannot be searched{where}: {error.strerror or error}", 2) from None
    if foreign:
        named = ", ".join(
            printable(str(p.relative_to(output_dir)), one_line=True) + " (a symlink)" * p.is_symlink() for p in foreign[:5]
        ) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise GenerationError(
            f"{output_dir}/ holds files generation did not write: {named}; it writes only <layer>.json, <env>/<layer>.json "
            "and review/<env>.md there and removes stale ones of those, never another file (one named so counts as its own "
            "only with its content: a configuration's Project, Environment and Layer tags, a document's title): move or delete "
            + (
                f"them, then run {regenerate_command(output_dir, params_dir)} again" if inside == own else "them, or use an empty directory"
            ),
            2,
        )


# --- the two runs of generate.py: make templates, and make check (and make deploy's look first) ------------


def as_typed(path: Path, option: str = "a path") -> Path:
    """A path under the working directory, short as people type it (output/prod/alb.json)."""
    path = followed(path, option)
    return path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path


def generated(params_dir: Path, output_dir: Path, env: str | None = None, writing: bool = False) -> dict[Path, str]:
    """Every file generation writes, once the output directory and params/ can be used; env: a check of one environment
    (its file's warnings alone, and an unknown name said before the others' problems); writing: a run that writes."""
    unusable = unusable_output_dir(output_dir)
    if unusable:
        raise GenerationError(unusable, 2)
    if writing and not regenerates_in_place(output_dir, params_dir):
        # output/ is what params/ generates (make check, make deploy and the review compare the two): written from
        # another directory, it would lose the files of every environment that directory lacks.
        raise GenerationError(
            f"--params-dir {params_dir} writes into {relative(OUTPUT_DIR)}/, which holds what {relative(PARAMS_DIR)}/ generates: "
            f"give --output-dir too (a directory outside {relative(OUTPUT_DIR)}/), or copy the files into {relative(PARAMS_DIR)}/",
            2,
        )
    # make deploy ENV=<typo> checks with --env first: checked as every environment, it named their stale files or problems
    unknown = None if env is None else environment_problem(env, params_dir)
    if unknown:
        raise GenerationError(unknown, 2)
    try:
        environments = load_all(params_dir)
        files = build_all(environments, output_dir)
    except ParamsError as error:
        raise GenerationError(str(error), error.code, notes=others_read_too(env, params_dir)) from None
    except ToolError as error:
        raise GenerationError(str(error), error.code) from None
    refuse_output_dir(output_dir, params_dir, files)
    read = [each for each in environments if env in (None, each.name)]  # a check of one environment: its file's
    for line in values_no_layer_takes(read, files, output_dir):
        print(f"warning: {line}", file=sys.stderr)
    return files


def check(params_dir: Path, output_dir: Path, env: str | None = None, layer: str | None = None, run_lint: bool = True) -> None:
    """Writes nothing: StaleOutput unless output/ (env: that environment's files and the layer templates; layer: that
    layer's alone) is what generation writes now, LintFailed where cfn-lint rejects a template."""
    with output_held(output_dir):
        _check(params_dir, output_dir, env, layer, run_lint)


def _check(params_dir: Path, output_dir: Path, env: str | None, layer: str | None, run_lint: bool) -> None:
    try:
        files = generated(params_dir, output_dir, env)
        changed, stale = differences(files, output_dir)
        kept_path, kept_text = ci.derived_actions_file()
        kept_changed = not same_content(kept_path, kept_text.encode())
        if kept_changed:
            changed.append(kept_path)
        if env in {path.parent.name for path in files if path.parent != output_dir}:
            changed, stale, others = of_the_environment(changed, stale, env, output_dir, layer)
            if others:
                named = ", ".join(f"{relative(path)}{'' if path.suffix == '.json' else '/'}" for path in others)  # files, or directories
                than = f"environment or layer than {env}'s {layer}" if layer else f"environment than {env}"
                print(
                    f"note: {named} {'is' if len(others) == 1 else 'are'} stale, of another {than}, "
                    f"which this does not read: `{regenerate_command(output_dir, params_dir)}` writes {'it' if len(others) == 1 else 'them'}",
                    file=sys.stderr,
                )
        if changed or stale:
            also = f" and {relative(kept_path)}" if kept_changed else ""
            reasons = stale_reasons(changed, stale, output_dir, params_dir)
            command = regenerate_command(output_dir, params_dir)
            # the review documents are made from output/: once it changes, make check finds them stale next (helper S1)
            outputs = any(path != kept_path for path in changed + stale)
            review = ", then `make review`," if outputs and (output_dir / "review").is_dir() else ""
            fix = f"run `{command}`{review} and commit output/{also}" if command == "make templates" else f"run `{command}`{also}"
            raise StaleOutput(reasons, fix)
        problems = lint(layer_templates(files, output_dir), {}) if run_lint else []
        if problems:  # a template cfn-lint rejects is not fit to deploy, stale or not
            raise LintFailed(problems, "fix templates/ and run `make templates`")
    except GenerationError as error:
        error.checking = True  # every error of a check says alike that nothing was to be written
        raise
    say_leftover_staging(output_dir)


def generate(params_dir: Path, output_dir: Path, run_lint: bool = True) -> None:
    """Write what changed into output_dir, all or nothing (publish), once linted; say what was written."""
    with output_held(output_dir, writing=True):
        files = generated(params_dir, output_dir, writing=True)
        changed, stale = differences(files, output_dir)
        kept_path, kept_text = ci.derived_actions_file()
        kept_changed = not same_content(kept_path, kept_text.encode())
        problems = publish(files, changed, stale, output_dir, run_lint=run_lint)
    if problems:
        raise LintFailed(problems, "nothing was written")
    if kept_changed:
        with contextlib.suppress(OSError):  # a read-only checkout only loses the speed
            write_atomically(kept_path, kept_text)
            print(f"{relative(kept_path)}: written (commit it with output/)")
    shown = printable(str(output_dir), one_line=True)  # as the errors show it: a newline would forge a second line
    print(f"{shown}/: {len(files)} files, {len(changed)} written, {len(stale)} removed")
    if (changed or stale) and (output_dir / "review").is_dir():
        print(
            f"note: {shown}/review/ was made from the files before this change and may be stale: make check says whether it is, "
            "make review writes it again"
        )
    if run_lint:
        print(f"cfn-lint: {len(layer_templates(files, output_dir))} templates clean (errors, warnings and informational checks)")
    say_leftover_staging(output_dir)


def say_on_stderr(line: str) -> None:
    print(line, file=sys.stderr)


# How long a run waits for another that holds output/ (make templates lints before it moves its files in: seconds).
OUTPUT_WAIT_SECONDS = 300


class OutputHeld(ToolError):
    """output/ held by another run past OUTPUT_WAIT_SECONDS."""


_held = {}  # output directory -> the descriptor this process holds it by: a second hold of one would wait for itself


def _let_go_in_a_child():
    """A process forked while output/ is held (cfn-lint's workers) shares the descriptor, and with it the lock: killed
    with kill -9, make templates left its workers holding output/ for every run after it. The child closes its copy."""
    for held in _held.values():
        os.close(held)
    _held.clear()


os.register_at_fork(after_in_child=_let_go_in_a_child)


@contextlib.contextmanager
def output_held(output_dir: Path, writing: bool = False):
    """output_dir held for the block: by a run that writes it (make templates) alone, from reading the files it compares
    through moving the new ones in; by those that read it (the checks, the deployer, make review) together, so that each
    reads the files of one generation, not some of the one before and some of the next, and a second make templates
    compares with what the first wrote. flock(2) of the directory itself: no lock file in output/, and the lock goes
    with the process, however it ends (a child forked meanwhile lets go of it: _let_go_in_a_child). Where the file system
    has no such locks, it goes on without."""
    key = os.path.realpath(output_dir)
    try:
        held = None if key in _held else os.open(output_dir, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:  # none yet (the first make templates makes it), no directory or none it may open: its reads say why
        held = None
    if held is None:
        yield
        return
    shown = printable(str(relative(output_dir)), one_line=True)
    try:
        waiting = f"waiting for another run {'using' if writing else 'writing'} {shown}/ to finish"
        try:
            taken = flock_within(held, fcntl.LOCK_EX if writing else fcntl.LOCK_SH, OUTPUT_WAIT_SECONDS, waiting, say_on_stderr)
        except OSError:  # no locks on this file system
            taken = True
        if not taken:
            raise OutputHeld(
                f"{shown}/ is still held, after {OUTPUT_WAIT_SECONDS} s, by another run "
                f"{'reading or ' if writing else ''}writing it (make templates{', make review or a deploy' if writing else ''}): "
                "let it finish, or stop it, and run this again"
            )
        _held[key] = held
        try:
            yield
        finally:
            _held.pop(key, None)
    finally:
        os.close(held)


def layer_templates(files: dict[Path, str], output_dir: Path) -> list[Path]:
    return sorted(path for path in files if path.parent == output_dir)


def others_read_too(env: str | None, params_dir: Path) -> list[str]:
    """Under the params problems of a check of one environment whose own file is sound on its own:
    why that check reads the others' (a draft params/qa.yaml stopped make deploy of every environment)."""
    if env is None:
        return []
    own = params_dir / f"{env}.yaml"
    try:
        load(own)
    except ToolError:
        return []  # its own file's problems are among them
    return [
        f"note: {relative(own)} is sound on its own; a check of {env} reads every params file, as make templates does "
        "(output/ holds what they all generate): keep a draft outside params/ until it is ready"
    ]


def say_leftover_staging(output_dir: Path) -> None:
    for staging in leftover_staging(output_dir):
        typed = str(as_typed(staging))  # shown as the errors show a path; the command quoted as the shell needs it
        print(
            f"note: {printable(typed, one_line=True)}/ is a staging directory left by a run of generation that was killed (or "
            f"used by one running now), not output: do not commit it; once no make templates runs, remove it: rm -r "
            f"{printable(shlex.quote(typed), one_line=True)}",
            file=sys.stderr,
        )
