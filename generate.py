"""Generate every layer's template and every environment's template-configuration file into
output/, then lint what changed. Entry point of `make templates`; the work is done by
templates/generation.py.

    python generate.py            generate, write what changed, run cfn-lint
    python generate.py --check    exit 1 if output/ is not what generation produces
    python generate.py --order    print the layer order derived from the wiring
"""

import templates  # first: its hook makes a Ctrl-C in every import after it one line (templates/__init__.py)

# isort: split
import argparse
import contextlib
import shlex
import sys
from pathlib import Path

from templates import ci, relative
from templates.errors import ToolError, entry_point, printable, run
from templates.generation import (
    OUTPUT_DIR,
    PARAMS_DIR,
    GenerationError,
    LintFailed,
    StaleOutput,
    build_all,
    differences,
    followed,
    leftover_staging,
    lint,
    of_the_environment,
    publish,
    refuse_output_dir,
    regenerate_command,
    regenerates_in_place,
    same_content,
    stale_reasons,
    unusable_output_dir,
    values_no_layer_takes,
    write_atomically,
)
from templates.params import ParamsError, environment_problem, load, load_all


def as_typed(path: Path, option: str = "a path") -> Path:
    """A path under the working directory, short as people type it (output/prod/alb.json)."""
    path = followed(path, option)
    return path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path


@entry_point
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Generate and validate the StartupWebApp CloudFormation templates.")
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--order", action="store_true", help="print the layer order derived from the wiring and exit")
    action.add_argument("--check", action="store_true", help="write nothing; exit 1 if output/ is stale")
    parser.add_argument("--no-lint", action="store_true", help="skip cfn-lint")
    parser.add_argument("--params-dir", type=Path, default=PARAMS_DIR, help="where the <env>.yaml files are (default: params)")
    parser.add_argument("--output-dir", type=Path, default=OUTPUT_DIR, help="where to write (default: output)")
    parser.add_argument(
        "--env",
        help="with --check: only this environment's files and the layer templates must be current; another's stale "
        "files are noted (make deploy ENV=<env> checks so)",
    )
    parser.add_argument(
        "--layer",
        choices=templates.LAYERS,
        help="with --env: only this layer's template and configuration must be current (make rollback checks so: it reads the "
        "service layer's alone)",
    )
    args = parser.parse_args(argv)
    if args.env is not None and not args.check:
        parser.error("--env goes with --check (generation always writes every environment's files)")
    if args.layer is not None and args.env is None:
        parser.error("--layer goes with --check and --env")
    params_dir, output_dir = as_typed(args.params_dir, "--params-dir"), as_typed(args.output_dir, "--output-dir")

    if args.order:
        print(" -> ".join(templates.layer_order()))
        return 0
    GenerationError.checking = args.check  # at each run's start: every error of the run says it alike
    unusable = unusable_output_dir(output_dir)
    if unusable:
        raise GenerationError(unusable, 2)
    if not args.check and not regenerates_in_place(output_dir, params_dir):
        # output/ is what params/ generates (make check, make deploy and the review compare the two): written from
        # another directory, it would lose the files of every environment that directory lacks.
        raise GenerationError(
            f"--params-dir {params_dir} writes into {relative(OUTPUT_DIR)}/, which holds what {relative(PARAMS_DIR)}/ generates: "
            f"give --output-dir too (a directory outside {relative(OUTPUT_DIR)}/), or copy the files into {relative(PARAMS_DIR)}/",
            2,
        )
    # make deploy ENV=<typo> checks with --env first: checked as every environment, it named their stale files or problems
    unknown = None if args.env is None else environment_problem(args.env, params_dir)
    if unknown:
        raise GenerationError(unknown, 2)
    try:
        environments = load_all(params_dir)
        files = build_all(environments, output_dir)
    except ParamsError as error:
        raise GenerationError(str(error), error.code, notes=others_read_too(args.env, params_dir)) from None
    except ToolError as error:
        raise GenerationError(str(error), error.code) from None
    refuse_output_dir(output_dir, params_dir, files)
    layer_templates = sorted(path for path in files if path.parent == output_dir)
    read = [env for env in environments if args.env in (None, env.name)]  # a check of one environment: its file's
    for line in values_no_layer_takes(read, files, output_dir):
        print(f"warning: {line}", file=sys.stderr)

    changed, stale = differences(files, output_dir)
    kept_path, kept_text = ci.derived_actions_file()
    kept_changed = not same_content(kept_path, kept_text.encode())
    if args.check:
        if kept_changed:
            changed.append(kept_path)
        if args.env in {path.parent.name for path in files if path.parent != output_dir}:
            changed, stale, others = of_the_environment(changed, stale, args.env, output_dir, args.layer)
            if others:
                named = ", ".join(f"{relative(path)}{'' if path.suffix == '.json' else '/'}" for path in others)  # files, or directories
                than = f"environment or layer than {args.env}'s {args.layer}" if args.layer else f"environment than {args.env}"
                print(
                    f"note: {named} {'is' if len(others) == 1 else 'are'} stale, of another {than}, "
                    f"which this does not read: `{regenerate_command(output_dir, params_dir)}` writes {'it' if len(others) == 1 else 'them'}",
                    file=sys.stderr,
                )
        if changed or stale:
            also = f" and {relative(kept_path)}" if kept_changed else ""
            reasons = stale_reasons(changed, stale, output_dir, params_dir)
            command = regenerate_command(output_dir, params_dir)
            fix = f"run `{command}` and commit output/{also}" if command == "make templates" else f"run `{command}`{also}"
            raise StaleOutput(reasons, fix)
        problems = [] if args.no_lint else lint(layer_templates, {})
        if problems:  # a template cfn-lint rejects is not fit to deploy, stale or not
            raise LintFailed(problems, "fix templates/ and run `make templates`")
        say_leftover_staging(output_dir)
        return 0

    problems = publish(files, changed, stale, output_dir, run_lint=not args.no_lint)
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
    if not args.no_lint:
        print(f"cfn-lint: {len(layer_templates)} templates clean (errors, warnings and informational checks)")
    say_leftover_staging(output_dir)
    return 0


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


if __name__ == "__main__":
    run(main)
