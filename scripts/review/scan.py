"""cfn-lint and checkov over the layer templates: the findings of the review.

One scan of every layer template serves every environment (each keeps the layers it deploys): it
runs once per content in a process."""

import functools
import tempfile
from dataclasses import dataclass
from pathlib import Path

from templates import validation


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


@functools.cache
def scan_templates(files: tuple[tuple[str, bytes], ...]) -> dict[str, LayerScan]:
    """layer -> its scan, for the layer templates given as (layer, content)."""
    return run_scanners(dict(files))


def run_scanners(files: dict[str, bytes]) -> dict[str, LayerScan]:
    with tempfile.TemporaryDirectory(prefix="review-") as directory:
        paths = []
        for name, content in files.items():
            path = Path(directory) / f"{name}.json"
            path.write_bytes(content)
            paths.append(path)
        problems = validation.cfn_lint(paths)
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
