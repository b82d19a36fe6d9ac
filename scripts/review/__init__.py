"""`make review ENV=<env>`: the document ops read before they open the console.

    python -m scripts.review --env prod [--output-dir output] [--params-dir params]

writes <output-dir>/review/<env>.md from what `make templates` generated: the layer templates
(<output-dir>/<layer>.json), the environment's template configurations (<output-dir>/<env>/<layer>.json),
params/<env>.yaml (to say where each value comes from) and the price table scripts/prices.yaml.
The document holds the layer order as a Mermaid diagram; per layer what it is for, its stack, its
resources, parameters and outputs; the cfn-lint and checkov findings; and an estimated monthly cost
per layer and in total, every assumption printed beside its figure.

An optional layer (templates.OPTIONAL_LAYERS) is deployed only where params/<env>.yaml lists it
in `enabled_layers`; elsewhere the document says it is not deployed and leaves it out of the cost.
A parameter the deployer sets itself (templates.inputs.DEPLOY_TIME) is shown as set at deploy time.
The committed output/review/<env>.md are the goldens: tests/test_review.py regenerates them.
The document is deterministic (no time stamps, no absolute paths, everything sorted) and written
atomically; on wrong or stale input it prints one line, exits 2 (bad environment or params file) or
1 (stale output: run `make templates`) and writes nothing.
"""

import argparse
from pathlib import Path

from scripts.review import collect, render
from scripts.review.collect import ReviewError
from templates.errors import entry_point
from templates.generation import OUTPUT_DIR, PARAMS_DIR, relative, write_atomically


class StaleDocument(ReviewError):
    """`--check`: a document is not what the review writes now."""

    prefix = "stale: "


@entry_point
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Write the review document ops read before they open the console.")
    parser.add_argument("--env", required=True, help="environment: one of the params/<env>.yaml files")
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=OUTPUT_DIR,
        help="generated templates; the document goes to <dir>/review/ (default: the project's output/)",
    )
    parser.add_argument(
        "--params-dir", type=Path, default=PARAMS_DIR, help="where the <env>.yaml files are (default: the project's params/)"
    )
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if the document is stale")
    args = parser.parse_args(argv)
    output_dir, params_dir = args.output_dir.resolve(), args.params_dir.resolve()
    text = render.document(collect.collect(args.env, output_dir, params_dir))
    path = output_dir / "review" / f"{args.env}.md"
    if args.check:
        if not path.is_file() or path.read_text() != text:
            raise StaleDocument(f"{relative(path)} is not what `make review ENV={args.env}` writes; run it and commit output/review/")
        return 0
    try:
        write_atomically(path, text)
    except OSError as error:
        raise ReviewError(f"cannot write {path}: {error}; nothing was written") from None
    print(f"{relative(path)}: written")
    return 0
