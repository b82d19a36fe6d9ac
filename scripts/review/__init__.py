"""`make review`: the documents ops read before they open the console.

    python -m scripts.review [--env prod] [--check] [--output-dir output] [--params-dir params]

writes <output-dir>/review/<env>.md for every params/<env>.yaml (or only --env's; a document that
would not change is left alone, and with every environment reviewed, the document of an environment
params/ no longer has is removed) from what
`make templates` generated: the layer templates (<output-dir>/<layer>.json), the environment's
template configurations (<output-dir>/<env>/<layer>.json), params/<env>.yaml (to say where each
value comes from) and the price table scripts/prices.yaml. The document holds the layer order as a
Mermaid diagram; per layer what it is for, its stack, its resources, parameters and outputs; the
cfn-lint and checkov findings; and an estimated monthly cost per layer and in total, every
assumption printed beside its figure. --check writes nothing and exits 1 naming every stale
document (and, for every environment, a document of an environment params/ does not have).

cfn-lint reads the layer templates; checkov reads each layer as each environment deploys it (scan.py).
Each template's scan is cached by content in .cache/review-scan/: a review of templates scanned
before runs neither cfn-lint nor checkov.

An optional layer (templates.OPTIONAL_LAYERS) is deployed only where params/<env>.yaml lists it
in `enabled_layers`; elsewhere the document says it is not deployed and leaves it out of the cost.
A parameter the deployer sets itself (templates.inputs.DEPLOY_TIME) is shown as set at deploy time.
The committed output/review/<env>.md are the goldens: tests/test_review.py regenerates them.
The document is deterministic (no time stamps, no absolute paths, everything sorted) and written
atomically; on wrong or stale input it prints one line per problem (--check: per stale document), exits 2
(bad environment or params file) or 1 (stale output: run `make templates`) and writes nothing.

Modules: collect.py (what a document says, read from the output directory and params), resolver.py
(templates/resolver.py's intrinsic-function evaluator, and how values are shown), cost.py (the price table and the estimate), timing.py (how long a release takes), scan.py (cfn-lint and
checkov), render.py (the Markdown).
"""

import templates  # noqa: F401  (first: its hook makes a Ctrl-C in every import after it one line: templates/__init__.py)

# isort: split
import argparse
from decimal import Decimal
from pathlib import Path

from scripts.review import collect, render
from scripts.review.collect import ReviewError
from scripts.review.cost import plural
from templates import relative
from templates.errors import entry_point
from templates.generation import (
    OUTPUT_DIR,
    PARAMS_DIR,
    followed,
    owned,
    same_content,
    unusable_output_dir,
    write_atomically,
    written_here,
)


class StaleDocument(ReviewError):
    """`--check`: documents that are not what the review writes now, one line each."""

    prefix = "stale: "


@entry_point
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.review",
        description="Write the review documents ops read before they open the console: one per params/<env>.yaml, or --env's.",
        epilog="cfn-lint reads the layer templates, checkov each layer with each environment's values; each scan is cached by content in .cache/review-scan/.",
    )
    parser.add_argument("--env", help="only this environment (one of the params/<env>.yaml files); default: every one")
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=OUTPUT_DIR,
        help="generated templates; the documents go to <dir>/review/ (default: the project's output/)",
    )
    parser.add_argument(
        "--params-dir", type=Path, default=PARAMS_DIR, help="where the <env>.yaml files are (default: the project's params/)"
    )
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 naming every stale document")
    args = parser.parse_args(argv)
    unusable = unusable_output_dir(args.output_dir)
    if unusable:
        raise ReviewError(unusable, 2)
    output_dir, params_dir = followed(args.output_dir, "--output-dir"), followed(args.params_dir, "--params-dir")
    documents = {
        output_dir / "review" / f"{review.env}.md": render.document(review)
        for review in collect.collect_all(output_dir, params_dir, args.env)
    }
    try:  # the looks before any write: one the system refuses (a directory that may not be searched) writes nothing
        if args.check:
            check(documents, output_dir / "review" if args.env is None else None)
            return 0
        changed = looked_over(output_dir, documents)
    except OSError as error:
        where = relative(Path(error.filename)) if error.filename else f"{relative(output_dir / 'review')}/"
        raise ReviewError(f"cannot read {where}: {error.strerror or error}; nothing was written", 2) from None
    for number, path in enumerate(changed):
        try:
            write_atomically(path, documents[path])
        except OSError as error:
            kept = "it and the documents after it were not written" if number else "nothing was written"
            # What the system said, not its temporary file's name (write_atomically writes one beside the document)
            raise ReviewError(f"cannot write {relative(path)}: {error.strerror or error}; {kept}") from None
        print(f"{relative(path)}: written")
    # Every environment reviewed: the documents of environments params/ no longer has go, as
    # `make templates` removes their templates.
    removed = orphans(documents, output_dir / "review") if args.env is None else []
    for path in removed:
        try:
            path.unlink()
        except OSError as error:
            raise ReviewError(f"cannot remove {relative(path)}: {error.strerror or error}; the documents were written") from None
        print(f"{relative(path)}: removed (no {relative(params_dir / path.stem)}.yaml)")
    print(
        f"{relative(output_dir / 'review')}/: {plural(Decimal(len(documents)), 'document')}, {len(changed)} written, {len(removed)} removed"
    )
    return 0


def looked_over(output_dir: Path, documents: dict[Path, str]) -> list[Path]:
    """The documents to write, once nothing is in their way (ReviewError where something is)."""
    if (output_dir / "review").is_symlink():  # writing and removing through it would reach files elsewhere
        raise ReviewError(
            f"{relative(output_dir / 'review')} is a symlink: the documents go to a directory of their own; nothing was written"
        )
    if (output_dir / "review").exists() and not (output_dir / "review").is_dir():  # each write would name a document, not it
        raise ReviewError(
            f"{relative(output_dir / 'review')} is not a directory: the documents go to a directory of their own there; "
            "move it away; nothing was written"
        )
    changed = differing(documents)
    # Said before the first write, so that none is written: a write of each in turn would stop at it.
    in_the_way = [path for path in changed if is_in_the_way(path)]
    if in_the_way:
        raise ReviewError(
            f"{', '.join(str(relative(path)) for path in in_the_way)}: not a file (a directory, a symlink, ...) where a document "
            "is written; move it away; nothing was written"
        )
    return changed


def differing(documents: dict[Path, str]) -> list[Path]:
    """The documents whose file is missing or holds other text."""
    return [path for path, text in documents.items() if not same_content(path, text.encode())]


def orphans(documents: dict[Path, str], directory: Path) -> list[Path]:
    """The review documents (generation.owned, written_here) in directory of no environment reviewed."""
    return [
        path
        for path in sorted(directory.glob("*.md"))
        if path not in documents and owned(path, directory.parent) and written_here(path, directory.parent)
    ]


def stale_because(path: Path) -> str:
    """Why a document that differs is stale, leading to the make review that writes it."""
    command = f"`make review ENV={path.stem}`"
    if not path.exists() and not path.is_symlink():
        return f"is missing; {command} writes it"
    if is_in_the_way(path):  # make review refuses to write there (looked_over): said here first, not "run it" alone
        return f"is not a file (a directory, a symlink, ...) where {command} writes the document: move it away"
    return f"is not what {command} writes"


def is_in_the_way(path: Path) -> bool:
    return path.is_symlink() or (path.exists() and not path.is_file())


def check(documents: dict[Path, str], directory: Path | None) -> None:
    """Raise StaleDocument naming each document that differs from what the review writes now and,
    when every environment was reviewed (directory: where their documents are), each document there
    of an environment params/ does not have."""
    problems = [f"{relative(path)} {stale_because(path)}; run it and commit output/review/" for path in differing(documents)]
    if directory is not None:
        problems += [
            f"{relative(path)} is the review of no environment in params/; run `make review` (it removes it) and commit output/review/"
            for path in orphans(documents, directory)
        ]
    if problems:
        raise StaleDocument("\n".join(problems))
