"""requirements.txt: what `make lock` wrote from requirements.in, every package pinned with its hashes."""

import re
from pathlib import Path

from conftest import ROOT
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name


def requirements(path: Path) -> dict[str, tuple[Requirement, list[str]]]:
    """Each requirement of a pip requirements file by its canonical name, with its --hash options."""
    text = re.sub(r"\\\n", " ", path.read_text())  # a requirement goes on over lines ending in "\"
    found = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        # An option line (--index-url, --find-links, -e): a machine's own index must not travel with the file.
        assert not line.startswith("-"), f"{path.name}: an option line, not a requirement: {line}"
        spec, *options = line.split(" --")
        requirement = Requirement(spec.strip())
        found[canonicalize_name(requirement.name)] = (requirement, [o.strip() for o in options])
    return found


def pinned_version(requirement: Requirement) -> str:
    (specifier,) = requirement.specifier
    assert specifier.operator == "==", f"{requirement}: not pinned with =="
    return specifier.version


def test_every_package_is_pinned_with_its_hashes_and_nothing_else_is_set():
    locked = requirements(ROOT / "requirements.txt")
    assert len(locked) > 100  # the whole tree, not only what requirements.in names
    for name, (requirement, options) in locked.items():
        pinned_version(requirement)
        hashes = [o for o in options if o.startswith("hash=sha256:")]
        assert hashes and len(hashes) == len(options), f"requirements.txt: {name} has no sha256 hash"


def test_the_lock_has_every_pin_of_requirements_in_at_its_version():
    wanted = requirements(ROOT / "requirements.in")
    locked = requirements(ROOT / "requirements.txt")
    for name, (requirement, _) in wanted.items():
        assert name in locked, f"requirements.txt lacks {name}: run make lock"
        assert pinned_version(locked[name][0]) == pinned_version(requirement), f"{name}: run make lock"
