"""`make bench`: performance figures, printed, never asserted (machines here are shared and noisy).

Each time is the median of several runs, measured in this one run so that ratios compare. Peak
memory is the largest resident set of the measured process tree (wait4's ru_maxrss), the largest of
the runs'; CPU is the user and system time of that tree, a steadier figure than wall time on a busy
machine."""

import templates  # noqa: F401  (first: its hook makes a Ctrl-C in every import after it one line: templates/__init__.py)

# isort: split
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from templates import ROOT
from templates.errors import ToolError, entry_point

DEFAULT_RUNS = 5
RUNS_GIVEN = r"[1-9][0-9]{0,2}"  # a number of runs, each of every figure: minutes each
SOURCES = ["generate.py", "templates", "scripts", "params", ".cfnlintrc", "Makefile", "requirements.txt", "pyproject.toml"]
REVIEWED_ENVIRONMENTS = 33  # the three of params/ and copies of staging with their own names


# Runs the measured command and prints its wall time and peak memory. A process started from this
# one would report this process's own peak too: Linux carries the parent's high-water mark over
# fork and exec into ru_maxrss. A small launcher in between keeps the figure the command's own (with the
# launcher's, some 12 MiB, which its fork carries over in the same way: the floor of every peak).
LAUNCHER = """
import os, resource, subprocess, sys, tempfile, time
# The child's output goes to a file, not a pipe: a process it leaves behind holding a pipe open would
# keep the bench waiting for its end.
output = tempfile.TemporaryFile()
start = time.perf_counter()
process = subprocess.Popen(sys.argv[1:], stdout=output)
_, status, usage = os.wait4(process.pid, 0)
if status:  # what a failed run printed (pytest's failures go to stdout), for the error line
    output.seek(0)
    sys.stderr.write(output.read().decode(errors="replace")[-4000:])
print(time.perf_counter() - start, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime, os.waitstatus_to_exitcode(status))
"""


def timed(command, cwd, env=None, errors=None) -> tuple[float, float, float]:
    """(wall seconds, peak MiB, CPU seconds) of one run of command and its children; its stderr is
    appended to `errors`."""
    result = subprocess.run([sys.executable, "-c", LAUNCHER, *command], cwd=cwd, env=env, capture_output=True, text=True)
    if result.returncode != 0 or not result.stdout.strip():
        raise ToolError(f"bench: launcher failed: {result.stderr}")
    seconds, mib, cpu, code = result.stdout.split()
    if int(code) != 0:
        raise ToolError(f"bench: {' '.join(command)} failed: {result.stderr}")
    if errors is not None:
        errors.append(result.stderr)
    return float(seconds), float(mib), float(cpu)


def project_copy() -> Path:
    """A copy of the generator's sources sharing this .venv, with no output/, no lint cache and none of the project's
    compiled bytecode (as a fresh clone has it)."""
    copy = Path(tempfile.mkdtemp(prefix="bench-"))
    for name in SOURCES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, copy / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, copy / name)
    (copy / ".venv").symlink_to(ROOT / ".venv")
    return copy


def report(name, samples, target_seconds=None, target_mib=None):
    seconds = statistics.median(s for s, _, _ in samples)
    mib = max(m for _, m, _ in samples)
    cpu = statistics.median(c for _, _, c in samples)
    verdict = ""
    if target_seconds is not None:
        verdict = f"  (target <= {target_seconds} s: {'ok' if seconds <= target_seconds else 'MISSED'}"
        verdict += f"; <= {target_mib} MiB: {'ok' if mib <= target_mib else 'MISSED'})" if target_mib else ")"
    print(f"{name:<44} median {seconds:6.3f} s   cpu {cpu:7.2f} s   peak {mib:6.1f} MiB   n={len(samples)}{verdict}")
    return seconds


def add_environments(params_dir: Path, count: int) -> None:
    """params/copyNN.yaml up to count environments: staging's values with their own names and host."""
    import yaml

    from templates import PROJECT
    from templates.params import ISOLATING_INPUTS

    staging = yaml.safe_load((params_dir / "staging.yaml").read_text())
    for n in range(count - len(list(params_dir.glob("*.yaml")))):
        name = f"copy{n:02d}"
        data = staging | {"parameters": staging["parameters"] | {"NamePrefix": f"{PROJECT}-{name}", "ApiHostLabel": f"api-{name}"}}
        data["shared_inputs"] = {key: "a copy of staging for make bench" for key in ISOLATING_INPUTS}
        (params_dir / f"{name}.yaml").write_text(yaml.safe_dump(data))


def review_figures(python, runs):
    """`make review` of REVIEWED_ENVIRONMENTS environments in one run: with the scan cache cold, then warm."""
    cold, warm = [], []
    for _ in range(runs):
        copy = project_copy()
        try:
            add_environments(copy / "params", REVIEWED_ENVIRONMENTS)
            timed(["make", "-s", "templates"], copy)
            shutil.rmtree(copy / ".cache" / "review-scan", ignore_errors=True)
            cold.append(timed([python, "-m", "scripts.review"], copy))
            warm.append(timed([python, "-m", "scripts.review"], copy))
        finally:
            shutil.rmtree(copy)
    return cold, warm


def deploy_figures(python, runs):
    """A full sandbox deploy of every layer and a redeploy with nothing changed, runs times each."""
    from emulator.sandbox import Sandbox
    from scripts.deploy import parse_api_calls

    state = Path(tempfile.mkdtemp(prefix="bench-sandbox-"))
    box = Sandbox(state).start(exit_with_parent=True)
    env = os.environ | box.environment()
    env.pop("AWS_PROFILE", None)
    command = [python, "-m", "scripts.deploy", "deploy", "--env", "sandbox", "--yes", "--api-calls"]
    full, again, calls = [], [], {}
    try:
        for _ in range(runs):
            box.seed()
            for samples, kind in ((full, "full"), (again, "unchanged")):
                errors = []
                samples.append(timed(command, ROOT, env, errors))
                calls[kind] = parse_api_calls(errors[0])
        costs = request_costs(box)
    finally:
        box.stop()
    shutil.rmtree(state)  # kept, with the server's log, where a run failed
    return full, again, calls, costs


REQUESTS = 50


def request_costs(box) -> dict:
    """request -> (server, client) CPU milliseconds of one call, the mean of REQUESTS calls on the
    deployed sandbox: where the sandbox tests' time goes. The server's is read from /proc, as the
    sandbox finds its server there too."""
    stat = Path(f"/proc/{box.pid}/stat")

    def server_cpu():
        fields = stat.read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime: proc(5)

    cloudformation, sts = box.client("cloudformation"), box.client("sts")
    stacks = [stack["StackName"] for stack in cloudformation.describe_stacks()["Stacks"]]
    requests = {
        "GetCallerIdentity (next to no work)": sts.get_caller_identity,
        f"DescribeStacks of one stack ({stacks[0]})": lambda: cloudformation.describe_stacks(StackName=stacks[0]),
        f"DescribeStacks of all {len(stacks)} stacks": cloudformation.describe_stacks,
    }
    costs = {}
    for name, call in requests.items():
        call()
        server, client = server_cpu(), time.process_time()
        for _ in range(REQUESTS):
            call()
        costs[name] = (1000 * (server_cpu() - server) / REQUESTS, 1000 * (time.process_time() - client) / REQUESTS)
    return costs


def runs_asked() -> int:
    """BENCH_RUNS=, checked: how many runs of each figure."""
    given = os.environ.get("BENCH_RUNS")
    if given is None:
        return DEFAULT_RUNS
    if not re.fullmatch(RUNS_GIVEN, given):
        raise ToolError(f"BENCH_RUNS={given!r}: allowed: a whole number of runs from 1 to 999 (default {DEFAULT_RUNS})", code=2)
    return int(given)


@entry_point
def main():
    runs = runs_asked()
    python = str(ROOT / ".venv" / "bin" / "python")
    print(f"{runs} runs each on {os.cpu_count()} cores\n")
    generate_only = [
        python,
        "-c",
        "from templates import generation, params; generation.build_all(params.load_all(generation.PARAMS_DIR))",
    ]
    generation = [timed(generate_only, ROOT) for _ in range(runs)]
    cold, warm = [], []
    for _ in range(runs):
        copy = project_copy()
        try:
            cold.append(timed(["make", "-s", "templates"], copy))
            warm.append(timed(["make", "-s", "templates"], copy))
        finally:
            shutil.rmtree(copy)
    g = report("generate every layer and environment", generation, 0.5, 200)
    c = report("make templates, cold (no output/, cache, bytecode)", cold, 2.5, 200)
    w = report("make templates, nothing changed", warm, 0.5, 200)
    print(f"\nratios: cold/generation {c / g:.1f}x, cold/unchanged {c / w:.1f}x")

    cold_review, warm_review = review_figures(python, runs)
    print()
    report(f"make review, {REVIEWED_ENVIRONMENTS} environments, scan cache cold", cold_review)
    report(f"make review, {REVIEWED_ENVIRONMENTS} environments, scan cached", warm_review, 10)

    from scripts.deploy.aws import NO_STACK

    full, again, calls, costs = deploy_figures(python, runs)
    print()
    report("sandbox deploy of every layer, from empty", full)
    report("sandbox redeploy, nothing changed", again, 1.5)
    for kind, per_stack in calls.items():
        unnamed = per_stack.pop(NO_STACK, 0)
        worst = max(per_stack.values())
        print(
            f"API calls per stack, {kind}: " + ", ".join(f"{stack.rsplit('-sandbox-', 1)[1]} {n}" for stack, n in per_stack.items()), end=""
        )
        print(f"  (target <= 4: {'ok' if worst <= 4 else 'MISSED'})" if kind == "unchanged" else "", end="")
        print(f"; and {unnamed} that name no stack (the environment's lock, the relaxed-policy marks, the release history)")
    for name, (server, client) in costs.items():
        print(f"one request, {name}: server {server:.1f} ms, client {client:.1f} ms of CPU (mean of {REQUESTS})")

    as_make_test = os.environ | {"PYTHONDONTWRITEBYTECODE": ""}  # the Makefile's test target lets pytest keep bytecode
    suite = [timed([python, "-m", "pytest", "-q", "-p", "no:cacheprovider"], ROOT, as_make_test) for _ in range(runs)]
    print()
    report("the test suite (pytest, as make test runs it)", suite, 30)


if __name__ == "__main__":
    sys.exit(main())
