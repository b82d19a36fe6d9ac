"""What a review document says about one environment, computed from the output directory (layer
templates and the environment's template configurations), its params file and the price table."""

import itertools
import json
import re
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cached_property
from pathlib import Path

import templates
from scripts.review import scan
from scripts.review.cost import ZERO, Prices, estimate, load_prices
from scripts.review.resolver import Resolver
from templates import inputs, params, relative
from templates.errors import ToolError, printable
from templates.generation import build_all, differences, output_held, regenerate_command, stale_reasons
from templates.params import Environment, ParamsError, environment_problem, load_all


class ReviewError(ToolError):
    """Wrong or stale input (code 1), a bad environment or params file (code 2); str() is one line."""


@dataclass
class Layer:
    name: str
    purpose: str
    stack: str
    template: dict
    config: dict | None  # None: not deployed in this environment
    resolver: Resolver
    optional: bool = False  # deployed only where params/<env>.yaml lists it in enabled_layers
    costs: list = field(default_factory=list)

    @property
    def deployed(self) -> bool:
        return self.config is not None

    @property
    def resources(self) -> dict:
        return self.template.get("Resources", {})

    @property
    def total(self) -> Decimal:
        return sum((c.amount for c in self.costs if c.amount is not None), ZERO)

    @cached_property
    def estimator(self) -> Resolver:
        """The resolver the cost reads: deploy-time parameters at their defaults."""
        return self.resolver.at_deploy_time_defaults()


@dataclass
class Review:
    environment: Environment
    params_file: str
    layers: list
    findings: scan.LayerScan  # of the layers deployed in the environment
    prices: Prices
    ci_deployed_in: list  # the environments of its params directory that deploy the ci layer
    deploy_role_of: Environment | None = None  # the environment whose ci layer's deploy role reaches its stacks (same account)
    sandbox_values: dict = field(default_factory=dict)  # the sandbox's values (params/sandbox.yaml), where its params directory has one
    scaling: list = field(default_factory=list)  # lines about the tasks auto-scaling may add
    scaling_extra: Decimal | None = None  # a month at MaxCapacity above the estimate, unrounded

    @property
    def env(self) -> str:
        return self.environment.name

    @property
    def order(self) -> list[str]:
        return [layer.name for layer in self.layers]

    @property
    def total(self) -> Decimal:
        return sum((layer.total for layer in self.layers if layer.deployed), ZERO)


def collect(env: str, output_dir: Path, params_dir: Path) -> Review:
    """Everything one environment's document says, computed; raises ReviewError on wrong or stale input."""
    return collect_all(output_dir, params_dir, env)[0]


def collect_all(output_dir: Path, params_dir: Path, env: str | None = None) -> list[Review]:
    """The reviews of every environment in params_dir (or only env's), from one scan of the layer
    templates; raises ReviewError on wrong or stale input."""
    unknown = None if env is None else environment_problem(env, params_dir)  # before other files' problems: the typo first
    if unknown:
        raise ReviewError(unknown, code=2)
    try:
        environments = load_all(params_dir)
    except ParamsError as error:
        raise ReviewError(str(error), code=2) from None  # one line per problem, as make templates prints them
    reviewed = [environment for environment in environments if env in (None, environment.name)]
    with output_held(output_dir):  # checked and read as one make templates wrote them
        check_fresh(environments, output_dir, params_dir)
        contents = {name: (output_dir / f"{name}.json").read_bytes() for name in templates.layer_order()}
        configs = {
            (environment.name, name): json.loads((output_dir / environment.name / f"{name}.json").read_text())
            for environment in reviewed
            for name in contents
            if environment.deploys(name)
        }
    # cfn-lint of each layer template; checkov of each layer as each environment deploys it
    scanned = scan.scan_templates(contents, scanners=("cfn-lint",))
    as_deployed = {f"{e}/{name}": scan.as_deployed(contents[name], config["Parameters"]) for (e, name), config in configs.items()}
    scanned |= scan.scan_templates(as_deployed, scanners=("checkov",))
    table = load_prices(params_dir=params_dir)
    ci_deployed_in = [environment.name for environment in environments if environment.deploys("ci")]
    # The ci layer's deploy role may change every stack of the project in its account (templates/ci.py): the other
    # environments of that account are reached through it too. Not the sandbox's emulator, whatever account it names.
    ci_of_account = {params.account_of(environment): environment for environment in environments if environment.deploys("ci")}
    sandbox = next((environment for environment in environments if environment.name == params.SANDBOX_ENV), None)
    reviews = [review_of(environment, contents, configs, scanned, table, ci_deployed_in) for environment in reviewed]
    for review in reviews:
        if review.env != params.SANDBOX_ENV:
            review.deploy_role_of = ci_of_account.get(params.account_of(review.environment))
            review.sandbox_values = sandbox.values if sandbox else {}
    return reviews


def known_outputs(template: dict, resolver: Resolver) -> dict:
    """The layer's outputs whose value its environment's values decide before deploy (a parameter passed on, a
    name made of NamePrefix), not a resource's attribute nor a value the deployer sets at each run: what a
    reviewer can check a change set's wired parameters against, rather than "(at deploy time)"."""
    found = {}
    for name, output in template.get("Outputs", {}).items():
        if "Condition" in output and resolver.condition(output["Condition"]) is not True:
            continue
        if resolver.references(output["Value"]) & (resolver.deploy_time | resolver.set_each_run):
            continue
        value = resolver.value(output["Value"])
        if isinstance(value, str):
            found[name] = value
    return found


def review_of(environment: Environment, contents: dict, configs: dict, scanned: dict, table: dict, ci_deployed_in: list) -> Review:
    """One environment's review: its layers (templates given as layer -> content, in layer order; their configurations
    as (env, layer) -> content, scans as label -> scan.LayerScan), their cost; ci_deployed_in: the
    environments of its params directory that deploy the ci layer."""
    env = environment.name
    layers, known = [], {}  # known: "layer.Output" -> its value, where the environment's values alone decide it
    for name, content in contents.items():  # in layer order, upstream first: its outputs are read below
        template = json.loads(content)
        config = configs.get((env, name))
        wired = {parameter: f"{up}.{output}" for parameter, (up, output) in templates.wired_into(name).items()}
        values = (config or {}).get("Parameters", {}) | {parameter: known[source] for parameter, source in wired.items() if source in known}
        resolver = Resolver(template, values, wired, environment.region, inputs.DEPLOY_TIME)
        layers.append(
            Layer(
                name=name,
                purpose=purpose(name, templates.LAYERS[name].__doc__),
                stack=templates.stack_name(env, name),
                template=template,
                config=config,
                resolver=resolver,
                optional=name in templates.OPTIONAL_LAYERS,
            )
        )
        if config is not None:
            known |= {f"{name}.{output}": value for output, value in known_outputs(template, resolver).items()}
    review = Review(
        environment=environment,
        params_file=shown_path(environment.path),
        layers=layers,
        findings=scan.combined([scanned[label] for layer in layers if layer.deployed for label in (layer.name, f"{env}/{layer.name}")]),
        prices=Prices(table),
        ci_deployed_in=ci_deployed_in,
    )
    estimate(review)
    return review


def check_fresh(environments: list[Environment], output_dir: Path, params_dir: Path) -> None:
    """The output directory holds exactly what `make templates` generates from the params files."""
    if not output_dir.is_dir():
        raise ReviewError(f"{relative(output_dir)}: not a directory; allowed: one `make templates` (generate.py --output-dir) writes", 2)
    changed, stale = differences(build_all(environments, output_dir), output_dir)
    problems = stale_reasons(changed, stale, output_dir, params_dir)
    if problems:
        generate = regenerate_command(output_dir, params_dir)
        shown = [f"  {problem}" for problem in problems[:MOST_SHOWN]] + [f"  and {len(problems) - MOST_SHOWN} more"] * (
            len(problems) > MOST_SHOWN
        )
        raise ReviewError("\n".join([f"stale output directory {relative(output_dir)}/: run `{generate}`, then the review again", *shown]))


MOST_SHOWN = 10  # a directory with every file missing is one problem, not 80 lines


def purpose(name: str, docstring: str | None) -> str:
    """The module docstring as Markdown, without a leading "<layer>: ": paragraphs and bullets
    each on one line."""
    text = re.sub(rf"^\s*{re.escape(name)}:\s*", "", docstring or "")
    blocks = []
    for paragraph in re.split(r"\n\s*\n", text.strip()):
        items = re.split(r"\n\s*(?=- )", paragraph.strip())
        blocks.append("\n".join(prose(" ".join(item.split())) for item in items if item.strip()))
    text = "\n\n".join(block for block in blocks if block)
    return text[:1].upper() + text[1:] if text else "(the layer module has no docstring)"


def prose(text: str) -> str:
    """Text Markdown shows as written: <domain> is no HTML tag for GitHub to strip, the * of *.<domain>
    and the __ of __init__.py open no emphasis. Code spans, bare URLs (a backslash in one would go into
    the link) and a bullet's leading "- " stay as they are."""
    bullet, text = ("- ", text[2:]) if text.startswith("- ") else ("", text)
    parts = re.split(r"(`[^`]*`|https?://[^\s<>`]*[^\s<>`.,;:)])", text)  # odd items: code spans and URLs
    escaped = (re.sub(r"[\\<*]|(?<![0-9A-Za-z])_|_(?![0-9A-Za-z])", lambda m: "\\" + m.group(0), part) for part in parts[::2])
    return bullet + "".join(part for pair in itertools.zip_longest(escaped, parts[1::2], fillvalue="") for part in pair)


# What Markdown reads as a link, code, emphasis or HTML, taken literally in a path: unlike prose(), which
# keeps the code spans and URLs the tools' own text holds, a path is someone's text and none of them.
# (A table cell's | is render.cell()'s to escape.)
MARKDOWN_SIGNIFICANT = re.compile(r"([\\`*\[\]<>])")


def shown_path(path: Path) -> str:
    """Relative to the project, or only the name: the document holds no absolute path. As text: a
    control character escaped (--params-dir "a<newline>## Findings" started a forged heading) and
    Markdown's own characters taken literally."""
    shown = relative(path.resolve())
    text = printable(path.name if shown.is_absolute() else str(shown), one_line=True)
    return MARKDOWN_SIGNIFICANT.sub(r"\\\1", text)
