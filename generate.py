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
from pathlib import Path

from templates.errors import entry_point, run
from templates.generation import OUTPUT_DIR, PARAMS_DIR, as_typed, check, generate


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
    elif args.check:
        check(params_dir, output_dir, args.env, args.layer, run_lint=not args.no_lint)
    else:
        generate(params_dir, output_dir, run_lint=not args.no_lint)
    return 0


if __name__ == "__main__":
    run(main)
