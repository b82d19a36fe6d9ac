"""Generate every layer's template and every environment's template-configuration file into
output/, then lint what changed. Entry point of `make templates`.

    python generate.py            generate, write what changed, run cfn-lint
    python generate.py --check    exit 1 if output/ is not what generation produces
    python generate.py --order    print the layer order derived from the wiring
"""

import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path

import templates
from templates import inputs
from templates.params import ENV_NAME, Environment, ParamsError, load_all

ROOT = Path(__file__).resolve().parent
PARAMS_DIR = Path("params")
OUTPUT_DIR = Path("output")


def render(document: dict) -> str:
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def stack_policy(template: dict) -> dict | None:
    """Deny replacing or deleting the layer's stateful resources; allow every other update."""
    stateful = sorted(name for name, resource in template["Resources"].items() if resource["Type"] in templates.STATEFUL_TYPES)
    if not stateful:
        return None
    return {
        "Statement": [
            {"Effect": "Allow", "Action": "Update:*", "Principal": "*", "Resource": "*"},
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
        "Tags": {"Project": templates.PROJECT, "Environment": env.name, "Layer": layer} | env.tags,
    }
    policy = stack_policy(template)
    if policy:
        config["StackPolicy"] = policy
    return config


def build_all(environments: list[Environment], output_dir: Path = OUTPUT_DIR) -> dict[Path, str]:
    """Every output file's path and content; pure, writes nothing."""
    built = {layer: module.build() for layer, module in templates.LAYERS.items()}
    templates.check_wiring(built)
    files = {}
    for layer in templates.layer_order():
        document = built[layer].to_dict()
        files[output_dir / f"{layer}.json"] = render(document)
        for env in environments:
            if not env.deploys(layer):
                continue
            files[output_dir / env.name / f"{layer}.json"] = render(template_configuration(env, layer, document))
    return files


def write_atomically(path: Path, content: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(content)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
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


def foreign_files(output_dir: Path) -> list[Path]:
    """Files in output_dir that generation did not write (hidden ones, its own temporaries, aside)."""
    if not output_dir.is_dir():
        return []
    found = (
        p for p in output_dir.rglob("*") if not p.is_dir() and not any(part.startswith(".") for part in p.relative_to(output_dir).parts)
    )
    return sorted(p for p in found if not owned(p, output_dir))


def differences(files: dict[Path, str], output_dir: Path) -> tuple[list[Path], list[Path]]:
    """(files to write because absent or different, stale generated files to remove)."""
    changed = [path for path, content in files.items() if not path.exists() or path.read_text() != content]
    existing = {p for p in set(output_dir.glob("*.json")) | set(output_dir.glob("*/*.json")) if owned(p, output_dir)}
    stale = sorted(existing - set(files))
    return changed, stale


def stage(files: dict[Path, str], output_dir: Path) -> Path:
    """Write files into a hidden directory inside output_dir (same file system: moves are atomic)."""
    output_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=output_dir, prefix=".staging-"))
    try:
        for path, content in files.items():
            target = staging / path.relative_to(output_dir)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content)
            os.chmod(target, 0o644)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return staging


def lint(paths: list[Path], shown_as: dict[Path, Path]) -> list[str]:
    """cfn-lint problems of paths, each line naming the file as shown_as maps it."""
    from templates.validation import cfn_lint

    problems = cfn_lint(paths)
    for path, shown in shown_as.items():
        problems = [line.replace(str(path), str(shown)) for line in problems]
    return problems


def relative(path: Path) -> Path:
    """Paths under the project print short, as people type them."""
    return path.relative_to(ROOT) if path.is_relative_to(ROOT) else path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Generate and validate the StartupWebApp CloudFormation templates.")
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--order", action="store_true", help="print the layer order derived from the wiring and exit")
    action.add_argument("--check", action="store_true", help="write nothing; exit 1 if output/ is stale")
    parser.add_argument("--no-lint", action="store_true", help="skip cfn-lint")
    parser.add_argument("--params-dir", type=Path, default=PARAMS_DIR, help="where the <env>.yaml files are (default: params)")
    parser.add_argument("--output-dir", type=Path, default=OUTPUT_DIR, help="where to write (default: output)")
    args = parser.parse_args(argv)
    params_dir, output_dir = args.params_dir.resolve(), args.output_dir.resolve()
    os.chdir(ROOT)  # .cfnlintrc and the lint cache live here
    params_dir, output_dir = relative(params_dir), relative(output_dir)

    try:
        if args.order:
            print(" -> ".join(templates.layer_order()))
            return 0
        files = build_all(load_all(params_dir), output_dir)
    except (ParamsError, templates.WiringError, templates.ci.PermissionsError) as error:
        print(f"error: {error}".replace("\n", "\nerror: "), file=sys.stderr)
        print("nothing was written", file=sys.stderr)
        return 2
    foreign = foreign_files(output_dir)
    if foreign:
        named = ", ".join(str(p.relative_to(output_dir)) for p in foreign[:5]) + (
            f" and {len(foreign) - 5} more" if len(foreign) > 5 else ""
        )
        print(
            f"error: {output_dir}/ holds files generation did not write: {named}; it writes only <layer>.json, <env>/<layer>.json "
            "and review/<env>.md there and removes stale ones of those: use an empty directory or output/",
            file=sys.stderr,
        )
        print("nothing was written", file=sys.stderr)
        return 2
    layer_templates = sorted(path for path in files if path.parent == output_dir)

    changed, stale = differences(files, output_dir)
    if args.check:
        for path in changed:
            print(f"stale: {path} differs from what generation produces", file=sys.stderr)
        for path in stale:
            print(f"stale: {path} is produced by no layer or environment", file=sys.stderr)
        if changed or stale:
            print("run `make templates` and commit output/", file=sys.stderr)
            return 1
        problems = [] if args.no_lint else lint(layer_templates, {})
        for line in problems:
            print(line, file=sys.stderr)
        if problems:  # a template cfn-lint rejects is not fit to deploy, stale or not
            print(f"cfn-lint: {len(problems)} problems; fix templates/ and run `make templates`", file=sys.stderr)
            return 1
        return 0

    # All or nothing: every changed file is written to a staging directory and linted there; only
    # then do they replace the old ones, so output/ is never half old, half new, nor unlinted.
    try:
        staging = stage({path: files[path] for path in changed}, output_dir)
    except OSError as error:
        print(f"error: cannot write {output_dir}/: {error.strerror} ({error.filename}); nothing was written", file=sys.stderr)
        return 1
    try:
        if not args.no_lint:
            staged = {staging / p.relative_to(output_dir): p for p in layer_templates if p in changed}
            in_place = {p: p for p in layer_templates if p not in changed}
            problems = lint(sorted(staged) + sorted(in_place), staged)
            for line in problems:
                print(line, file=sys.stderr)
            if problems:
                print(f"cfn-lint: {len(problems)} problems; nothing was written", file=sys.stderr)
                return 1
        for path in changed:
            path.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / path.relative_to(output_dir), path)
        for path in stale:
            path.unlink()
    except OSError as error:
        print(f"error: cannot write {output_dir}/: {error.strerror} ({error.filename})", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    print(f"{output_dir}/: {len(files)} files, {len(changed)} written, {len(stale)} removed")
    if not args.no_lint:
        print(f"cfn-lint: {len(layer_templates)} templates clean (errors, warnings and informational checks)")
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `| head` ends the output quietly
    sys.exit(main())
