"""requirements.txt: what `make lock` wrote from requirements.in, every package pinned with its hashes."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
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


@pytest.fixture(scope="session")
def venv_with_pip(tmp_path_factory):
    """A venv made once per test run and copied by each test: making one installs pip (about 3.5 s of CPU), a
    copy takes 0.1 s. A venv finds its base Python through its pyvenv.cfg, not its path, so a copy runs. Under
    pytest-xdist the workers share one, made by the first to ask (the others wait on a lock) in the run's own
    temporary directory, the parent of each worker's; no test changes it, each changes its copy."""
    import fcntl

    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent  # pytest-<n>/, of this run alone: each worker's is pytest-<n>/popen-gw<i>
    made, done = shared / "venv-with-pip" / "venv", shared / "venv-with-pip" / "made"
    made.parent.mkdir(exist_ok=True)
    with open(shared / "venv-with-pip" / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            shutil.rmtree(made, ignore_errors=True)  # a making that failed half way
            subprocess.run([sys.executable, "-m", "venv", str(made)], check=True, timeout=120)
            done.touch()
    return made


def _make_venv_in_a_copy(venv_with_pip, tmp_path, venv_dir, damage=lambda venv: None, **environment):
    """make venv in tmp_path (a copy of the Makefile, nothing pinned), .venv there already made at venv_dir (a
    copy of venv_with_pip, a module standing for the installed dependencies added, then damage done to it), with
    environment added."""
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    (tmp_path / "requirements.txt").write_text("# nothing pinned: only the venv's making is under test\n")
    shutil.copytree(venv_with_pip, venv_dir, symlinks=True)
    installed = next(venv_dir.glob("lib/python*/site-packages")) / "installed_dependency.py"
    installed.write_text("X = 1\n")
    damage(venv_dir)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "PYTHON", "MAKE"))} | environment
    made = subprocess.run(
        ["make", "--no-print-directory", "venv", f"PYTHON={sys.executable}"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return installed, made


def test_make_venv_keeps_a_working_venv_when_pip_refuses_a_setting_of_the_environment(venv_with_pip, tmp_path):
    """A pip.conf typo (or PIP_TIMEOUT=abc) makes `pip --version` fail as it makes the install fail: the venv,
    which has pip, must not be emptied for it (made again, its dependencies need the network)."""
    conf = tmp_path / "pip.conf"
    conf.write_text("[global]\ntimeout = 60s\n")
    installed, made = _make_venv_in_a_copy(venv_with_pip, tmp_path, tmp_path / ".venv", PIP_CONFIG_FILE=str(conf))
    assert installed.exists(), f"a working .venv was emptied by venv --clear:\n{made.stdout}{made.stderr}"


def test_make_venv_never_empties_the_venv_a_symlinked_venv_points_to(venv_with_pip, tmp_path):
    """.venv a symlink to another checkout's venv: venv --clear empties the directory it points to (then fails,
    'Unable to create directory'), so a PYTHONPATH that shadows pip here wipes the other checkout's venv."""
    (tmp_path / "checkout").mkdir()
    other = tmp_path / "other-venv"
    (tmp_path / "checkout" / ".venv").symlink_to(other)
    shadow = tmp_path / "shadow" / "pip"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('a pip shadowed by PYTHONPATH')\n")
    installed, made = _make_venv_in_a_copy(venv_with_pip, tmp_path / "checkout", other, PYTHONPATH=str(shadow.parent))
    assert installed.exists(), f"the venv .venv links to was emptied:\n{made.stdout}{made.stderr}"
    assert (other / "bin" / "python").exists(), f"the venv .venv links to was emptied:\n{made.stdout}{made.stderr}"


def _without_pip(venv):
    # what `python3 -m venv` leaves on a Debian/Ubuntu without python3-venv, or `uv venv` with packages but no pip
    site = next(venv.glob("lib/python*/site-packages"))
    shutil.rmtree(site / "pip")
    for info in site.glob("pip-*.dist-info"):
        shutil.rmtree(info)


def _python_uninstalled(venv):
    # pyenv uninstall, a distribution upgrade: bin/python3.x links to nothing
    versioned = venv / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    versioned.unlink()
    versioned.symlink_to(venv.parent / "uninstalled" / "bin" / versioned.name)


def _python_fails_to_start(venv):
    # a reason of this shell's: a shared library found through another shell's LD_LIBRARY_PATH, a checkout shared
    # with a dev container whose interpreter path this host lacks
    python = venv / "bin" / "python"
    python.unlink()
    python.write_text("#!/bin/sh\necho 'python: error while loading shared libraries: libpython3.so.1.0' >&2\nexit 127\n")
    python.chmod(0o755)


@pytest.mark.parametrize("damage", [_without_pip, _python_uninstalled, _python_fails_to_start])
def test_make_venv_says_what_to_do_with_a_venv_it_cannot_use_and_never_empties_it(venv_with_pip, tmp_path, damage):
    """A .venv whose Python does not run or has no pip failed every run with a bare 'No module named pip' (or the
    loader's error), naming no way on. Emptied and made again instead (cd9a85a to 05f7a9b), a working install went too:
    the cause may be this shell's, and a .venv without pip may hold every dependency (made by uv). Now: one line, exit
    2, naming rm -rf .venv (make clean refuses a .venv whose Python cannot say whether the sandbox runs), and nothing
    removed."""
    installed, made = _make_venv_in_a_copy(venv_with_pip, tmp_path, tmp_path / ".venv", damage=damage)
    assert made.returncode == 2, made
    assert "rm -rf .venv" in made.stderr and "Traceback" not in made.stderr, made.stderr
    assert installed.exists(), f".venv was emptied:\n{made.stdout}{made.stderr}"
    if damage is _python_fails_to_start:  # why it did not run is shown, not thrown away
        assert "error while loading shared libraries" in made.stderr, made.stderr
