"""cfn-lint and checkov over the layer templates: the findings of the review.

One scan of every layer template serves every environment (each keeps the layers it deploys). It
is cached by content in .cache/review-scan/<key>.json: the key changes with any layer template,
.cfnlintrc, or the version of cfn-lint or checkov, so a cached scan is what a new one would say."""

import contextlib
import hashlib
import json
import tempfile
from dataclasses import asdict, dataclass
from importlib.metadata import version
from pathlib import Path

from templates import ROOT, validation
from templates.generation import write_atomically

CACHE = ROOT / ".cache" / "review-scan"


@dataclass(frozen=True, order=True)
class Check:
    """One checkov check of one resource."""

    file: str  # the template's file name: alb.json
    status: str  # passed, failed or skipped
    resource: str  # Type.LogicalId
    text: str  # "<check id> <check name>", or "<check id> skipped: <reason from the Metadata>"


@dataclass(frozen=True)
class LayerScan:
    """What cfn-lint and checkov say about one layer template, or about several together."""

    problems: tuple[str, ...] = ()  # cfn-lint's, as 'file:line:col: rule message'
    failed: tuple[Check, ...] = ()
    skipped: tuple[Check, ...] = ()
    passed: int = 0  # how many checkov checks passed


def cache_key(files: dict[str, bytes]) -> str:
    digest = hashlib.sha256()
    for name, content in sorted(files.items()):
        digest.update(f"{name}:{len(content)}:".encode())
        digest.update(content)
    digest.update(validation.LINT_SETTINGS.read_bytes())
    for tool in ("cfn-lint", "checkov"):
        digest.update(f"{tool} {version(tool)};".encode())
    return digest.hexdigest()


def scan_templates(files: dict[str, bytes], use_cache: bool = True) -> dict[str, LayerScan]:
    """layer -> its scan, for the layer templates given as layer -> content; use_cache=False runs
    both scanners, cfn-lint included, whatever either cache holds."""
    cached = CACHE / f"{cache_key(files)}.json"
    if use_cache and cached.is_file():
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError, AttributeError):  # a damaged entry is scanned again
            found = from_json(cached.read_text())
            if set(found) == set(files) and all(isinstance(scan, LayerScan) for scan in found.values()):
                return found
    result = run_scanners(files, use_cache)
    if use_cache:
        with contextlib.suppress(OSError):  # the cache only saves time
            write_atomically(cached, to_json(result))
    return result


def run_scanners(files: dict[str, bytes], use_cache: bool = True) -> dict[str, LayerScan]:
    with tempfile.TemporaryDirectory(prefix="review-") as directory:
        paths = []
        for name, content in files.items():
            path = Path(directory) / f"{name}.json"
            path.write_bytes(content)
            paths.append(path)
        problems = validation.cfn_lint(paths, use_cache=use_cache)
        checks = [Check(*check) for check in validation.checkov(Path(directory))]
        prefix = f"{directory}/"
    result = {}
    for name in files:
        file = f"{name}.json"
        mine = [check for check in checks if check.file == file]
        result[name] = LayerScan(
            problems=tuple(sorted(p.replace(prefix, "") for p in problems if p.startswith(prefix + file + ":"))),
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


def to_json(scans: dict[str, LayerScan]) -> str:
    return json.dumps({name: asdict(scan) for name, scan in scans.items()}, indent=1, sort_keys=True) + "\n"


def from_json(text: str) -> dict[str, LayerScan]:
    return {
        name: LayerScan(
            problems=tuple(scan["problems"]),
            failed=tuple(Check(**check) for check in scan["failed"]),
            skipped=tuple(Check(**check) for check in scan["skipped"]),
            passed=scan["passed"],
        )
        for name, scan in json.loads(text).items()
    }
