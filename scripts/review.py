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
import contextlib
import json
import re
import signal
import sys
import tempfile
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from functools import cache, cached_property
from importlib.metadata import version
from pathlib import Path

import yaml

import templates
from templates import inputs
from templates.generation import build_all, differences, relative, write_atomically
from templates.params import Environment, ParamsError, load_all

ROOT = Path(__file__).resolve().parent.parent
PRICES = Path(__file__).resolve().with_name("prices.yaml")
PARAMS_DIR = Path("params")
OUTPUT_DIR = Path("output")
CENT = Decimal("0.01")
ZERO = Decimal("0.00")
DEPLOY_TIME_TEXT = "set by the deployer at deploy time"
WIDTH = 100  # a property whose one-line form is longer is split into one bullet per key or item
PAIRS = (("Key", "Value"), ("Name", "Value"), ("Name", "ValueFrom"))
DECLARED = inputs.INPUTS | inputs.WIRED | inputs.DEPLOY_TIME  # every parameter of every layer template


class ReviewError(Exception):
    """Wrong or stale input; str() is one line. code is the exit status."""

    def __init__(self, message, code=1):
        super().__init__(message)
        self.code = code


class _Unknown:
    """A value not known before deploy (an upstream output, an attribute of a new resource)."""

    def __repr__(self):
        return "UNKNOWN"


UNKNOWN = _Unknown()
NO_VALUE = object()  # AWS::NoValue: the property is left out


# ---------------------------------------------------------------------------------------------
# What a template says in one environment


class Resolver:
    """Evaluates a template's intrinsic functions with one environment's parameter values, as far
    as they are known before deploy, and renders values compactly for people."""

    def __init__(self, template: dict, values: dict, wired: dict, region: str, deploy_time=frozenset()):
        self.template = template
        self.values = values  # parameter -> its value in this environment (a string)
        self.wired = wired  # parameter -> "upstream-layer.Output", filled in at deploy time
        self.region = region
        self.deploy_time = frozenset(deploy_time) & set(template.get("Parameters", {}))  # set by the deployer on each deploy
        self.parameters = template.get("Parameters", {})
        self.deploy_time_read = set()  # the deploy-time parameters whose value was asked for

    def at_deploy_time_defaults(self) -> "Resolver":
        """This resolver with the deploy-time parameters at their defaults, as the estimate takes them."""
        defaults = {name: str(inputs.DEPLOY_TIME[name].default) for name in self.deploy_time}
        return Resolver(self.template, self.values | defaults, self.wired, self.region, self.deploy_time)

    # -- values

    def parameter(self, name):
        if name == "AWS::Region":
            return self.region
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.deploy_time:
            self.deploy_time_read.add(name)
        if name not in self.values:
            return UNKNOWN
        value = self.values[name]
        return value.split(",") if DECLARED[name].is_list else value

    def condition(self, name: str) -> bool | None:
        """True or False in this environment; None when it is decided at deploy time."""
        result = self.value(self.template.get("Conditions", {}).get(name, {"Ref": "AWS::AccountId"}))
        return result if isinstance(result, bool) else None

    def references(self, node) -> set:
        """The parameters a value or condition depends on, through the conditions it names."""
        if isinstance(node, list):
            return set().union(*(self.references(item) for item in node))
        if not isinstance(node, dict):
            return set()
        intrinsic = self.intrinsic(node)
        if intrinsic and intrinsic[0] == "Ref":
            name = intrinsic[1]
            return {name} if name in self.parameters or name.startswith("AWS::") and name != "AWS::NoValue" else set()
        if intrinsic and intrinsic[0] == "Condition":
            return self.references(self.template.get("Conditions", {}).get(intrinsic[1]))
        if intrinsic and intrinsic[0] == "Fn::If":
            return self.references({"Condition": intrinsic[1][0]}) | self.references(intrinsic[1][1:])
        if intrinsic and intrinsic[0] == "Fn::Sub":
            text, variables = (intrinsic[1], {}) if isinstance(intrinsic[1], str) else intrinsic[1]
            named = set(re.findall(r"\$\{([^}!.]+)\}", text)) & set(self.parameters)
            return (named - set(variables)) | self.references(list(variables.values()))
        return self.references(list(node.values()))

    def value(self, node):
        if isinstance(node, list):
            items = [self.value(item) for item in node]
            return [item for item in items if item is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        intrinsic = self.intrinsic(node)
        if intrinsic is None:
            items = {key: self.value(item) for key, item in node.items()}
            return {key: item for key, item in items.items() if item is not NO_VALUE}
        key, argument = intrinsic
        if key == "Ref":
            return self.parameter(argument)
        if key == "Condition":
            result = self.condition(argument)
            return UNKNOWN if result is None else result
        return self.function(key, argument)

    @staticmethod
    def intrinsic(node):
        if isinstance(node, dict) and len(node) == 1:
            ((key, argument),) = node.items()
            if key == "Ref" or key.startswith("Fn::") or key == "Condition":
                return key, argument
        return None

    def function(self, key, argument):
        if key == "Fn::If":
            chosen = self.condition(argument[0])
            return UNKNOWN if chosen is None else self.value(argument[1] if chosen else argument[2])
        if key == "Fn::Sub":
            return self.substitute(argument, resolve_all=True)
        if key in ("Fn::GetAtt", "Fn::ImportValue", "Fn::GetAZs", "Fn::Cidr", "Fn::Base64"):
            return UNKNOWN
        values = self.value(argument)
        if not isinstance(values, list) or any(v is UNKNOWN or isinstance(v, dict) for v in values):
            return UNKNOWN
        if key in ("Fn::Select", "Fn::Join"):
            first, items = values if len(values) == 2 else (None, None)
            if not isinstance(items, list) or any(item is UNKNOWN or isinstance(item, (dict, list)) for item in items):
                return UNKNOWN
            if key == "Fn::Join":
                return scalar_text(first).join(scalar_text(item) for item in items)
            index = as_number(first)
            return items[int(index)] if index is not None and index == int(index) and int(index) < len(items) else UNKNOWN
        if any(isinstance(v, list) for v in values):
            return UNKNOWN
        if key == "Fn::Split":
            separator, text = values
            return scalar_text(text).split(scalar_text(separator))
        if key == "Fn::Equals":
            return scalar_text(values[0]) == scalar_text(values[1])
        if key in ("Fn::Not", "Fn::And", "Fn::Or"):
            if not all(isinstance(v, bool) for v in values):
                return UNKNOWN
            return not values[0] if key == "Fn::Not" else (all(values) if key == "Fn::And" else any(values))
        if key == "Fn::FindInMap":
            return self.template.get("Mappings", {}).get(values[0], {}).get(values[1], {}).get(values[2], UNKNOWN)
        return UNKNOWN

    def substitute(self, argument, resolve_all: bool):
        """Fn::Sub with this environment's parameter values. resolve_all: the whole value or UNKNOWN;
        otherwise the text with whatever is unknown before deploy left as ${...}."""
        text, variables = (argument, {}) if isinstance(argument, str) else argument
        unknown = False

        def replace(match):
            nonlocal unknown
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            value = self.value(variables[name]) if name in variables else UNKNOWN if "." in name else self.parameter(name)
            if name == "AWS::Region" and not resolve_all:
                value = UNKNOWN  # shown as ${AWS::Region}, like the other pseudo parameters
            if value is UNKNOWN or isinstance(value, (dict, list)) or value is NO_VALUE:
                unknown = True
                return match.group(0)
            return scalar_text(value)

        result = re.sub(r"\$\{([^}]+)\}", replace, text)
        return UNKNOWN if unknown and resolve_all else result

    # -- text for people

    def text(self, node):
        """One line; None for AWS::NoValue."""
        if isinstance(node, list):
            items = [self.text(item) for item in node]
            return "[" + ", ".join(item for item in items if item is not None) + "]"
        if not isinstance(node, dict):
            return scalar_text(node) if node != "" else '""'
        intrinsic = self.intrinsic(node)
        if intrinsic:
            return self.intrinsic_text(*intrinsic)
        pair = self.pair(node)
        if pair:
            return pair
        items = {key: self.text(item) for key, item in sorted(node.items()) if key != "Tags"}
        return "{" + ", ".join(f"{key}: {item}" for key, item in items.items() if item is not None) + "}"

    def pair(self, node):
        for name, value in PAIRS:
            if set(node) == {name, value} and isinstance(node[name], str):
                shown = self.text(node[value])
                return None if shown is None else f"{node[name]}={shown}"
        return None

    def intrinsic_text(self, key, argument):
        if key == "Ref":
            if argument == "AWS::NoValue":
                return None
            if argument in self.values:
                return f"{self.values[argument] or chr(34) * 2} ({argument})"
            if argument in self.wired:
                return f"{self.wired[argument]} (at deploy time)"
            if argument in self.deploy_time:
                return f"{argument} ({DEPLOY_TIME_TEXT})"
            if argument == "AWS::Region":
                return f"{self.region} (AWS::Region)"
            return argument if argument.startswith("AWS::") else f"Ref {argument}"
        if key == "Fn::GetAtt":
            resource, attribute = argument.split(".", 1) if isinstance(argument, str) else argument
            return f"GetAtt {resource}.{self.text(attribute)}"
        if key == "Fn::Sub":
            return self.substitute(argument, resolve_all=False)
        if key == "Fn::If":
            name, when_true, when_false = argument
            chosen = self.condition(name)
            if chosen is None:
                shown = [self.text(branch) or "(left out)" for branch in (when_true, when_false)]
                return f"If {name} (decided at deploy time): {shown[0]} | {shown[1]}"
            shown = self.text(when_true if chosen else when_false)
            return None if shown is None else f"{shown} (as {name} is {scalar_text(chosen)})"
        value = self.function(key, argument)
        if value is not UNKNOWN and not isinstance(value, (dict, list)):
            return scalar_text(value) or '""'
        if key == "Fn::Equals" and isinstance(argument, list) and len(argument) == 2:
            return f"{self.text(argument[0])} = {self.text(argument[1])}"
        if key == "Fn::Join" and isinstance(argument, list) and len(argument) == 2 and isinstance(argument[0], str):
            return f"Join({chr(34)}{argument[0]}{chr(34)}, {self.text(argument[1])})"
        return f"{key.removeprefix('Fn::')}({self.text(argument)})"

    def statement(self, statement: dict) -> str:
        """A policy statement in one line: effect, actions, resources, principal, condition."""
        parts = [statement.get("Effect", "?")]
        for key, prefix in (("Action", ""), ("NotAction", "all but "), ("Resource", "on "), ("NotResource", "on all but ")):
            if key in statement:
                parts.append(prefix + self.list_text(statement[key]))
        if "Principal" in statement:
            principal = statement["Principal"]
            if isinstance(principal, dict) and not self.intrinsic(principal):
                parts.append("for " + ", ".join(f"{kind} {self.list_text(who)}" for kind, who in sorted(principal.items())))
            else:
                parts.append(f"for {self.text(principal)}")
        for operator, tests in sorted(statement.get("Condition", {}).items()):
            parts.append(f"if {operator} " + ", ".join(f"{key}={self.list_text(value)}" for key, value in sorted(tests.items())))
        sid = statement.get("Sid")
        return (f"{sid}: " if sid else "") + " ".join(parts)

    def list_text(self, node):
        if isinstance(node, list):
            return ", ".join(item for item in (self.text(item) for item in node) if item is not None)
        return self.text(node)

    def property_lines(self, name: str, node, depth: int = 0, split: bool = False) -> list[str]:
        """Markdown bullets for one property: one line, or one bullet per key or item when long."""
        indent = "  " * depth
        if isinstance(node, dict) and isinstance(node.get("Statement"), list):
            return [f"{indent}- {name}:"] + [f"{indent}  - {code(self.statement(s))}" for s in node["Statement"]]
        shown = self.text(node)
        if shown is None:
            return [f"{indent}- {name}: (left out in this environment)"]
        plain_dict = isinstance(node, dict) and not self.intrinsic(node) and not self.pair(node)
        if (len(name) + len(shown) <= WIDTH and not split) or depth >= 3 or not (plain_dict or isinstance(node, list)):
            return [f"{indent}- {name}: {code(shown)}"]
        lines = [f"{indent}- {name}:"]
        if plain_dict:
            for key, item in sorted(node.items()):
                lines += self.property_lines(key, item, depth + 1)
            return lines
        # Items of one list look alike: when one is split, all are.
        split = any(len(self.text(item) or "") > WIDTH for item in node)
        for number, item in enumerate(node, 1):
            if isinstance(item, dict) and not self.intrinsic(item) and not self.pair(item):
                label = next((item[k] for k in ("Name", "PolicyName", "Id", "Sid", "Key") if isinstance(item.get(k), str)), f"#{number}")
                lines += self.property_lines(label, item, depth + 1, split)
            else:
                shown = self.text(item)
                if shown is not None:
                    lines.append(f"{indent}  - {code(shown)}")
        return lines


def scalar_text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(scalar_text(v) for v in value)
    return str(value)


def code(text: str) -> str:
    return "`" + text.replace("`", "'") + "`"


def cell(text: str) -> str:
    """Text for a Markdown table cell."""
    return text.replace("|", "\\|")


# ---------------------------------------------------------------------------------------------
# Inputs: templates, configurations, params


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
    findings: tuple
    prices: "Prices"
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
    """Everything the document says, computed; raises ReviewError on wrong or stale input."""
    try:
        environments = load_all(params_dir)
    except ParamsError as error:
        raise ReviewError(str(error).replace("\n", "; "), code=2) from None
    allowed = [environment.name for environment in environments]
    if env not in allowed:
        raise ReviewError(f"unknown environment {env!r}; allowed: {', '.join(allowed)}", code=2)
    environment = environments[allowed.index(env)]
    check_fresh(environments, output_dir)

    layers = []
    for name in templates.layer_order():
        template = json.loads((output_dir / f"{name}.json").read_text())
        config = json.loads((output_dir / env / f"{name}.json").read_text()) if environment.deploys(name) else None
        wired = {parameter: f"{up}.{output}" for parameter, (up, output) in templates.wired_into(name).items()}
        values = (config or {}).get("Parameters", {})
        layers.append(
            Layer(
                name=name,
                purpose=purpose(name, templates.LAYERS[name].__doc__),
                stack=templates.stack_name(env, name),
                template=template,
                config=config,
                resolver=Resolver(template, values, wired, environment.region, inputs.DEPLOY_TIME),
                optional=name in templates.OPTIONAL_LAYERS,
            )
        )
    review = Review(
        environment=environment,
        params_file=shown_path(environment.path),
        layers=layers,
        findings=findings(scan(tuple((layer.name, (output_dir / f"{layer.name}.json").read_bytes()) for layer in layers)), layers),
        prices=Prices(load_prices()),
    )
    estimate(review)
    return review


def check_fresh(environments: list[Environment], output_dir: Path) -> None:
    """The output directory holds exactly what `make templates` generates from the params files."""
    changed, stale = differences(build_all(environments, output_dir), output_dir)
    problems = [
        f"{path.relative_to(output_dir)} {'differs from' if path.exists() else 'is missing from'} what generation produces"
        for path in changed
    ]
    problems += [f"{path.relative_to(output_dir)} is produced by no layer or environment" for path in stale]
    if problems:
        raise ReviewError(f"stale output directory: {'; '.join(problems)}: run `make templates`")


def purpose(name: str, docstring: str | None) -> str:
    """The module docstring as Markdown, without a leading "<layer>: ": paragraphs and bullets
    each on one line."""
    text = re.sub(rf"^\s*{re.escape(name)}:\s*", "", docstring or "")
    blocks = []
    for paragraph in re.split(r"\n\s*\n", text.strip()):
        items = re.split(r"\n\s*(?=- )", paragraph.strip())
        blocks.append("\n".join(" ".join(item.split()) for item in items if item.strip()))
    text = "\n\n".join(block for block in blocks if block)
    return text[:1].upper() + text[1:] if text else "(the layer module has no docstring)"


def shown_path(path: Path) -> str:
    """Relative to the project, or only the name: the document holds no absolute path."""
    shown = relative(path.resolve())
    return path.name if shown.is_absolute() else str(shown)


def load_prices(path: Path = PRICES) -> dict:
    return yaml.safe_load(path.read_text())


# ---------------------------------------------------------------------------------------------
# Security findings


@cache
def scan(files: tuple) -> dict:
    """layer -> (cfn-lint problems, checkov failed, checkov skipped with reasons, checkov passed
    count) for the layer templates given as (layer, content); a checkov check is the tuple
    templates.validation.checkov() gives: (file, status, resource, text). One scan of every layer
    serves every environment (each keeps the layers it deploys): it runs once per content in a process."""
    from templates import validation

    # cfn-lint reads .cfnlintrc and keeps its cache (keyed by content) in the project directory.
    with tempfile.TemporaryDirectory(prefix="review-") as directory, contextlib.chdir(ROOT):
        paths = []
        for name, content in files:
            path = Path(directory) / f"{name}.json"
            path.write_bytes(content)
            paths.append(path)
        problems = validation.cfn_lint(paths)
        checks = validation.checkov(Path(directory))
        prefix = f"{directory}/"
    result = {}
    for name, _ in files:
        file = f"{name}.json"
        mine = [check for check in checks if check[0] == file]
        result[name] = (
            sorted(p.replace(prefix, "") for p in problems if p.startswith(prefix + file + ":")),
            sorted(check for check in mine if check[1] == "failed"),
            sorted(check for check in mine if check[1] == "skipped"),
            sum(1 for check in mine if check[1] == "passed"),
        )
    return result


def findings(scanned: dict, layers: list) -> tuple:
    """The scan of the layers deployed in the environment, as (problems, failed, skipped, passed)."""
    deployed = [scanned[layer.name] for layer in layers if layer.deployed]
    return (
        sorted(line for f in deployed for line in f[0]),
        sorted(line for f in deployed for line in f[1]),
        sorted(line for f in deployed for line in f[2]),
        sum(f[3] for f in deployed),
    )


# ---------------------------------------------------------------------------------------------
# Cost


@dataclass(frozen=True)
class Cost:
    resource: str
    type: str
    item: str  # item id of the price table, "" for a type it does not price
    label: str  # what is charged
    basis: str  # how: prices and assumptions
    amount: Decimal | None  # a month, rounded to the cent; None: not priced
    absent: bool = False  # not there in this environment: not created, or left empty (zero_when)


def money(amount: Decimal | None) -> str:
    return "not priced" if amount is None else f"${amount:,.2f}"


def number(value: Decimal) -> str:
    """A quantity as people write it: 730, 0.5, 1.25."""
    return format(value.normalize(), "f")


def price_text(value: Decimal) -> str:
    """A price as people write it: $0.50, $1.00, $0.0225."""
    return f"${value:.2f}" if value == value.quantize(CENT) else f"${number(value)}"


def plural(count: Decimal, word: str) -> str:
    return f"{number(count)} {word}{'' if count == 1 else 's'}"


def dec(value) -> Decimal:
    return Decimal(str(value))


class Prices:
    """The price table; remembers which assumptions the estimate used."""

    def __init__(self, table: dict):
        self.table = table
        self.used = set()
        self.notes = []  # what the estimate took for values known only at deploy time, printed with the assumptions

    def price(self, key) -> tuple[Decimal, str]:
        entry = self.table["prices"][key]
        return dec(entry["usd"]), f"{price_text(dec(entry['usd']))} per {entry['per']}"

    def assumption(self, key) -> tuple[Decimal, str]:
        self.used.add(key)
        entry = self.table["assumptions"][key]
        return dec(entry["value"]), f"{number(dec(entry['value']))} {entry['text']} (assumed)"

    @property
    def hours(self) -> tuple[Decimal, str]:
        value = dec(self.table["hours_per_month"])
        return value, f"{number(value)} hours"


def as_number(value) -> Decimal | None:
    """A count or size from a resolved property: 2, "512", "0.5 vCPU" (x1024), "1 GB" (x1024)."""
    if isinstance(value, bool) or value is UNKNOWN or value is None:
        return None
    text = str(value).strip()
    match = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)\s*(vCPU|GB)?", text, re.IGNORECASE)
    if not match:
        return None
    return dec(match.group(1)) * (1024 if match.group(2) else 1)


# Formulas: (item's entry in the price table, resource name, resource, layer, prices, context) ->
# (amount a month or None when not priced, how it was computed). They read the template with the
# layer's estimator: deploy-time parameters at their defaults.


def fargate(cfg, name, resource, layer, prices, context):
    """DesiredCount tasks all month, each of the task definition's Cpu and Memory."""
    props = resource.get("Properties", {})
    resolver = layer.estimator
    if resolver.value(props.get("LaunchType", "FARGATE")) != "FARGATE":
        return None, "only Fargate services are priced"
    count = props.get("DesiredCount")
    tasks = as_number(resolver.value(count))
    if tasks is None:
        return None, "the number of tasks is not known before deploy"
    references = resolver.references(count)
    source = ", ".join(sorted(references - resolver.deploy_time)) or "DesiredCount"
    decided_by = ", ".join(f"{parameter}={resolver.values[parameter]}" for parameter in sorted(references & resolver.deploy_time))
    definition = props.get("TaskDefinition")
    target = definition.get("Ref") if isinstance(definition, dict) else None
    task = layer.template["Resources"].get(target, {}).get("Properties", {})
    cpu, memory = as_number(resolver.value(task.get("Cpu"))), as_number(resolver.value(task.get("Memory")))
    if cpu is None or memory is None:
        return None, "the task definition's Cpu and Memory are not known before deploy"
    vcpu, gb = cpu / 1024, memory / 1024
    (vcpu_price, vcpu_text), (gb_price, gb_text) = prices.price(cfg["vcpu_price"]), prices.price(cfg["gb_price"])
    hours, hours_text = prices.hours
    per_task = (vcpu * vcpu_price + gb * gb_price) * hours
    context.append({"layer": layer.name, "resource": name, "tasks": tasks, "per_task": per_task})
    basis = (
        f"{plural(tasks, 'task')} ({source}{f' with {decided_by}' if decided_by else ''}, taken as the average) × "
        f"({number(vcpu)} vCPU × {vcpu_text} + {number(gb)} GB × {gb_text}) × {hours_text}"
    )
    return tasks * per_task, basis


def hourly(cfg, name, resource, layer, prices, context):
    price, price_said = prices.price(cfg["price"])
    hours, hours_text = prices.hours
    units, units_text = prices.assumption(cfg["units"]) if "units" in cfg else (Decimal(1), None)
    return units * price * hours, " × ".join(part for part in (units_text, price_said, hours_text) if part)


def monthly(cfg, name, resource, layer, prices, context):
    price, price_said = prices.price(cfg["price"])
    return price, price_said


def per_unit(cfg, name, resource, layer, prices, context):
    price, price_said = prices.price(cfg["price"])
    units, units_text = prices.assumption(cfg["units"])
    return units * price, f"{units_text} × {price_said}"


def log_group(cfg, name, resource, layer, prices, context):
    """Logs the group receives; vended logs (such as a WAF's, to a group named aws-waf-logs-*) have their own price and volume."""
    group = layer.estimator.value(resource.get("Properties", {}).get("LogGroupName"))
    vended = cfg.get("vended")
    if vended and isinstance(group, str) and group.startswith(vended["name_prefix"]):
        amount, basis = per_unit(vended, name, resource, layer, prices, context)
        return amount, f"{vended['what']}: {basis}"
    return per_unit(cfg, name, resource, layer, prices, context)


def kms_key(cfg, name, resource, layer, prices, context):
    price, price_said = prices.price(cfg["price"])
    rotation = layer.estimator.value(resource.get("Properties", {}).get("EnableKeyRotation"))
    if rotation is True or rotation == "true":
        price_said += f"; {cfg['rotation_note']}"
    return price, price_said


def target_tracking_alarms(cfg, name, resource, layer, prices, context):
    """The alarms Application Auto Scaling creates for a target-tracking policy; other policies have none of their own."""
    kind = layer.estimator.value(resource.get("Properties", {}).get("PolicyType"))
    if kind != "TargetTrackingScaling":
        return Decimal(0), f"{kind} policy: its alarms are resources of their own"
    return per_unit(cfg, name, resource, layer, prices, context)


def alarm(cfg, name, resource, layer, prices, context):
    """Each metric the alarm reads; a period under a minute is high resolution."""
    props = layer.estimator.value(resource.get("Properties", {}))
    if isinstance(props.get("Metrics"), list):
        stats = [m["MetricStat"] for m in props["Metrics"] if isinstance(m, dict) and isinstance(m.get("MetricStat"), dict)]
        metrics, periods = max(len(stats), 1), [as_number(s.get("Period")) for s in stats]
    else:
        metrics, periods = 1, [as_number(props.get("Period"))]
    high = any(period is not None and period < 60 for period in periods)
    price, price_said = prices.price(cfg["high_resolution_price"] if high else cfg["price"])
    return metrics * price, f"{plural(Decimal(metrics), 'metric')} × {price_said}"


def waf_web_acl(cfg, name, resource, layer, prices, context):
    """The web ACL, each of its rules (a rule group counts as one rule) and the requests it inspects."""
    rules = layer.estimator.value(resource.get("Properties", {}).get("Rules", []))
    if not isinstance(rules, list) or any(rule is UNKNOWN for rule in rules):
        return None, "the number of rules is not known before deploy"
    (acl, acl_text), (rule, rule_text), (million, million_text) = (
        prices.price(cfg[key]) for key in ("price", "rule_price", "request_price")
    )
    requests, requests_text = prices.assumption(cfg["request_units"])
    groups = sum(1 for r in rules if isinstance(r, dict) and any("RuleGroup" in key for key in r.get("Statement", {})))
    count = Decimal(len(rules))
    kinds = f" ({plural(count - groups, 'rule')}, {plural(Decimal(groups), 'rule group')})" if groups else ""
    return acl + count * rule + requests * million, (
        f"{acl_text} + {plural(count, 'rule')}{kinds} × {rule_text} + {requests_text} × {million_text}"
    )


FORMULAS = {
    "hourly": hourly,
    "monthly": monthly,
    "per_unit": per_unit,
    "fargate": fargate,
    "target_tracking_alarms": target_tracking_alarms,
    "alarm": alarm,
    "waf_web_acl": waf_web_acl,
    "log_group": log_group,
    "kms_key": kms_key,
}


def price_resource(name: str, resource: dict, layer: Layer, prices: Prices, env: str, context: list) -> list[Cost]:
    """The cost lines of one resource in one environment."""
    kind = resource["Type"]
    resolver = layer.estimator
    condition = resource.get("Condition")
    created = resolver.condition(condition) if condition else True
    table = prices.table
    if created is False:
        items = table["resource_types"].get(kind, [""])
        return [Cost(name, kind, item, "not created", f"condition {condition} is false in {env}", ZERO, absent=True) for item in items]
    suffix = f"; only if {condition} (decided at deploy time)" if created is None else ""
    if kind in table["resource_types"]:
        lines = []
        for item in table["resource_types"][kind]:
            cfg = table["items"][item]
            off = cfg.get("zero_when")
            absent = off is not None and resolver.values.get(off["parameter"]) == off["value"]
            if absent:
                amount, basis = ZERO, off["reason"]
            else:
                amount, basis = FORMULAS[cfg["formula"]](cfg, name, resource, layer, prices, context)
                if cfg.get("note") and amount is not None:
                    basis += f"; {cfg['note']}"
            rounded = None if amount is None else amount.quantize(CENT, ROUND_HALF_UP)
            lines.append(Cost(name, kind, item, cfg["label"], basis + suffix, rounded, absent))
        return lines
    if kind in table["free"]:
        return [Cost(name, kind, "", "no charge", table["free"][kind], ZERO)]
    return [Cost(name, kind, "", "not priced", f"{kind} is not in scripts/prices.yaml", None)]


def estimate(review: Review) -> None:
    """Price every resource of every deployed layer; then the range auto-scaling may add."""
    context = []
    prices = review.prices
    deployed = [layer for layer in review.layers if layer.deployed]
    for layer in deployed:
        for name, resource in sorted(resources(layer).items()):
            layer.costs += price_resource(name, resource, layer, prices, review.env, context)
        for parameter in sorted(layer.estimator.deploy_time_read):
            spec = inputs.DEPLOY_TIME[parameter]
            prices.notes.append(
                f'{layer.name}: priced with {parameter}={spec.default}, its default ({DEPLOY_TIME_TEXT}): "{spec.description}"'
            )
    for layer in deployed:
        for name, resource in sorted(resources(layer).items()):
            if resource["Type"] != "AWS::ApplicationAutoScaling::ScalableTarget":
                continue
            props = layer.estimator.value(resource.get("Properties", {}))
            low, high = as_number(props.get("MinCapacity")), as_number(props.get("MaxCapacity"))
            if props.get("ServiceNamespace") != "ecs" or low is None or high is None or len(context) != 1:
                review.scaling.append(f"{layer.name}.{name}: the tasks it may add are not priced")
                continue
            service = context[0]
            tasks, per_task = service["tasks"], service["per_task"]
            review.scaling.append(
                f"{layer.name}.{name} keeps {service['layer']}.{service['resource']} between {number(low)} (MinCapacity) and "
                f"{number(high)} (MaxCapacity) tasks; the estimate counts {number(tasks)} all month, one task costs "
                f"{money(per_task.quantize(CENT, ROUND_HALF_UP))} a month"
            )
            if high > tasks:
                extra = ((high - tasks) * per_task).quantize(CENT, ROUND_HALF_UP)
                review.scaling.append(f"at MaxCapacity all month: {plural(high - tasks, 'more task')}, +{money(extra)}")
            if low < tasks:
                fewer = ((tasks - low) * per_task).quantize(CENT, ROUND_HALF_UP)
                review.scaling.append(f"at MinCapacity all month: {plural(tasks - low, 'task')} fewer, -{money(fewer)}")
            review.scaling_extra = (high - tasks) * per_task


# ---------------------------------------------------------------------------------------------
# The document


def render(review: Review) -> str:
    out = []
    add = out.append
    env = review.env
    deployed = [layer for layer in review.layers if layer.deployed]
    add(f"# StartupWebApp review: {env}")
    add("")
    add(
        f"Generated by `make review ENV={env}` (scripts/review.py) from the layer templates and the {env} template "
        f"configurations of the output directory, {review.params_file} and scripts/prices.yaml: do not edit, regenerate. "
        f"Region {review.environment.region}. File names are relative to the output directory."
    )
    add("")
    add("| # | Layer | Stack | Resources | Estimated monthly cost |")
    add("|---|---|---|---|---|")
    for number_, layer in enumerate(review.layers, 1):
        if layer.deployed:
            add(
                f"| {number_} | [{layer.name}](#{anchor(number_, layer.name)}) | `{layer.stack}` | {len(resources(layer))} | {money(layer.total)} |"
            )
        else:
            add(f"| {number_} | [{layer.name}](#{anchor(number_, layer.name)}) | {absent_text(review)} | | |")
    add(f"| | **Total** | | {sum(len(resources(layer)) for layer in deployed)} | **{money(review.total)}** |")
    add("")
    render_order(review, add)
    add("## Layers")
    add("")
    for number_, layer in enumerate(review.layers, 1):
        render_layer(review, number_, layer, add)
    render_findings(review, add)
    render_cost(review, add)
    while out and out[-1] == "":
        out.pop()
    return "\n".join(out) + "\n"


def absent_text(review: Review) -> str:
    return f"not deployed in {review.env} (optional, not in `enabled_layers`)"


def anchor(number_, name) -> str:
    return re.sub(r"[^a-z0-9 -]", "", f"{number_}. {name}".lower()).replace(" ", "-")


def resources(layer: Layer) -> dict:
    return layer.template.get("Resources", {})


def node_id(name: str) -> str:
    return re.sub(r"\W", "_", name)


def render_order(review: Review, add) -> None:
    add("## Layer order")
    add("")
    add(
        "Each arrow is an upstream output the deployer reads with DescribeStacks and passes to the downstream layer's "
        "parameter of the same name (or the name after `as`). The order is derived from this wiring: " + " → ".join(review.order) + "."
    )
    add("")
    add("```mermaid")
    add("flowchart LR")
    for layer in review.layers:
        label = layer.name if layer.deployed else f"{layer.name}<br/>not deployed in {review.env}"
        add(f'  {node_id(layer.name)}["{label}"]')
    edges = {}
    for down in review.order:
        for parameter, (up, output) in templates.wired_into(down).items():
            edges.setdefault((up, down), []).append(output if output == parameter else f"{output} as {parameter}")
    position = {name: index for index, name in enumerate(review.order)}
    for (up, down), names in sorted(edges.items(), key=lambda e: (position[e[0][0]], position[e[0][1]])):
        add(f'  {node_id(up)} -->|"{", ".join(sorted(names))}"| {node_id(down)}')
    absent = [node_id(layer.name) for layer in review.layers if not layer.deployed]
    if absent:
        add("  classDef absent stroke-dasharray: 5 5")
        add(f"  class {','.join(absent)} absent")
    add("```")
    add("")


def render_layer(review: Review, number_: int, layer: Layer, add) -> None:
    env = review.env
    add(f"### {number_}. {layer.name}")
    add("")
    add(f"What it is for: {layer.purpose}")
    add("")
    if not layer.deployed:
        add(
            f"**Not deployed in {env}**: an optional layer that {review.params_file} does not list in `enabled_layers`, "
            f"so there is no `{env}/{layer.name}.json` and it is left out of the cost. Template: `{layer.name}.json`."
        )
        add("")
        return
    needs = {}
    for up, output in templates.wired_into(layer.name).values():
        needs.setdefault(up, []).append(output)
    feeds = {
        down: [output for up, output in templates.wired_into(down).values() if up == layer.name]
        for down in templates.downstream_of(layer.name)
    }
    add(f"- Stack: `{layer.stack}`")
    add(f"- Template: `{layer.name}.json`; parameters, tags and stack policy: `{env}/{layer.name}.json`")

    absent = {other.name for other in review.layers if not other.deployed}

    def linked(wired):
        return "; ".join(
            f"{other} ({', '.join(sorted(outputs))}{f'; not deployed in {env}' if other in absent else ''})"
            for other, outputs in sorted(wired.items(), key=lambda w: review.order.index(w[0]))
        )

    add(f"- Needs: {linked(needs) or 'nothing from other layers'}")
    add(f"- Feeds: {linked(feeds) or 'no other layer'}")
    if layer.optional:
        add(f"- Optional: deployed in {env} as {review.params_file} lists it in `enabled_layers`")
    deploy_time = sorted(layer.resolver.deploy_time)
    if deploy_time:
        add(f"- Set by the deployer at deploy time (in no params file, wired from no layer): {', '.join(deploy_time)}")
    denied = [
        r.removeprefix("LogicalResourceId/")
        for s in layer.config.get("StackPolicy", {}).get("Statement", [])
        if s.get("Effect") == "Deny"
        for r in (s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]])
    ]
    add(f"- Stack policy: {'updates may not replace or delete ' + ', '.join(sorted(denied)) if denied else 'none (no stateful resources)'}")
    tags = layer.config.get("Tags", {})
    add(f"- Tags: {', '.join(f'{k}={v}' for k, v in sorted(tags.items())) or 'none'}")
    add("")

    conditions = layer.template.get("Conditions", {})
    if conditions:
        add(f"#### Conditions ({len(conditions)})")
        add("")
        for name, expression in sorted(conditions.items()):
            value = layer.resolver.condition(name)
            depends = sorted(layer.resolver.references({"Condition": name}))
            later = sorted(set(depends) & layer.resolver.deploy_time)
            if value is not None:
                add(f"- **{name}**: {scalar_text(value)} in {env} (from {', '.join(depends) or 'no parameter'})")
                continue
            said = f"by {', '.join(later)}, which the deployer sets itself" if later else f"(from {', '.join(depends) or 'no parameter'})"
            shown = layer.resolver.text(expression) or ""
            add(f"- **{name}**: decided at deploy time {said}" + (f": {code(shown)}" if 0 < len(shown) <= WIDTH else ""))
        add("")

    add(f"#### Resources ({len(resources(layer))})")
    add("")
    for name, resource in sorted(resources(layer).items()):
        notes = []
        condition = resource.get("Condition")
        if condition:
            created = layer.resolver.condition(condition)
            notes.append(
                f"not created in {env}: {condition} is false"
                if created is False
                else f"created as {condition} is true"
                if created
                else f"created only if {condition} (decided at deploy time)"
            )
        deletion, replacement = resource.get("DeletionPolicy"), resource.get("UpdateReplacePolicy")
        kept = (
            ["deletion"]
            if deletion == "Retain"
            else ["deletion (not when its first create rolls back)"]
            if deletion == "RetainExceptOnCreate"
            else []
        )
        kept += ["replacement"] if replacement == "Retain" else []
        if kept:
            purged = "; make purge deletes it once its stack is gone" if deletion in ("Retain", "RetainExceptOnCreate") else ""
            notes.append(f"kept on {' and '.join(kept)}{purged}")
        depends = resource.get("DependsOn")
        if depends:
            notes.append("created after " + ", ".join(depends if isinstance(depends, list) else [depends]))
        add(f"- **{name}** `{resource['Type']}`" + (f": {'; '.join(notes)}" if notes else ""))
        for key, value in sorted(resource.get("Properties", {}).items()):
            if key != "Tags":
                for line in layer.resolver.property_lines(key, value, 1):
                    add(line)
    add("")

    parameters = layer.template.get("Parameters", {})
    add(f"#### Parameters ({len(parameters)})")
    add("")
    add("| Parameter | Value | From | Description |")
    add("|---|---|---|---|")
    values = layer.config["Parameters"]  # every input of the layer (the output directory is fresh)
    for name, spec in sorted(parameters.items()):
        if name in layer.resolver.wired:
            value, source = "(at deploy time)", f"output {layer.resolver.wired[name]}"
        elif name in layer.resolver.deploy_time:
            value, source = "(at deploy time)", DEPLOY_TIME_TEXT
        else:
            value, source = code(values[name] or '""'), review.params_file if name in review.environment.explicit else "default"
        add(f"| {name} | {cell(value)} | {cell(source)} | {cell(spec.get('Description', ''))} |")
    add("")

    outputs = layer.template.get("Outputs", {})
    add(f"#### Outputs ({len(outputs)})")
    add("")
    add("| Output | Value | Used by | Description |")
    add("|---|---|---|---|")
    for name, output in sorted(outputs.items()):
        users = sorted(
            f"{down}.{parameter}"
            for down in templates.downstream_of(layer.name)
            for parameter, source in templates.wired_into(down).items()
            if source == (layer.name, name)
        )
        shown = layer.resolver.text(output.get("Value"))
        add(f"| {name} | {cell(code(shown or ''))} | {', '.join(users) or '—'} | {cell(output.get('Description', ''))} |")
    add("")

    add(f"#### Estimated monthly cost: {money(layer.total)}")
    add("")
    add("| Resource | Item | How (prices and assumptions) | Monthly |")
    add("|---|---|---|---|")
    for line in layer.costs:
        add(f"| {line.resource} | {cell(line.label)} | {cell(line.basis)} | {money(line.amount)} |")
    add(f"| **{layer.name}** | | | **{money(layer.total)}** |")
    add("")


def render_findings(review: Review, add) -> None:
    problems, failed, skipped, passed = review.findings
    names = ", ".join(f"`{layer.name}.json`" for layer in review.layers if layer.deployed)
    add("## Security findings")
    add("")
    add(f"Scanned: the layer templates deployed in {review.env} ({names}).")
    add("")
    add(f"### cfn-lint {version('cfn-lint')}")
    add("")
    settings = yaml.safe_load((ROOT / ".cfnlintrc").read_text()) or {}
    ignored = settings.get("ignore_checks") or []
    ignored_text = f"ignores {', '.join(map(str, ignored))}" if ignored else "ignores no rule"
    add(f"Errors, warnings and informational checks, with the settings of `.cfnlintrc` (which {ignored_text}).")
    add("")
    if problems:
        add(f"{plural(Decimal(len(problems)), 'problem')}:")
        add("")
        for line in problems:
            add(f"- {code(line)}")
    else:
        add("No problems.")
    add("")
    add(f"### checkov {version('checkov')}")
    add("")
    add(f"CloudFormation checks: {passed} passed, {len(failed)} failed, {len(skipped)} skipped.")
    add("")
    add("Failed:" if failed else "Failed: none.")
    add("")
    if failed:
        add("| Template | Resource | Check |")
        add("|---|---|---|")
        for file, _, resource, check in failed:
            add(f"| {cell(file)} | {cell(resource)} | {cell(check)} |")
        add("")
    if skipped:
        add("Skipped, each with the reason written in the resource's Metadata:")
        add("")
        add("| Template | Resource | Check | Reason |")
        add("|---|---|---|---|")
        for file, _, resource, text in skipped:
            check, _, reason = text.partition(" skipped: ")
            add(f"| {cell(file)} | {cell(resource)} | {cell(check)} | {cell(reason.strip() or '(no reason given)')} |")
    else:
        add("Skipped: none.")
    add("")


def render_cost(review: Review, add) -> None:
    prices, env = review.prices, review.env
    table = prices.table
    _, hours = prices.hours
    add("## Estimated monthly cost")
    add("")
    add(
        f"{table['region']} list prices in US dollars from scripts/prices.yaml, {hours} a month, "
        f"the sizes of {env} from its parameter values; each line above shows its prices and assumptions. "
        "Lines are rounded to the cent, totals add the rounded lines."
    )
    add("")
    add("| Layer | Stack | Monthly |")
    add("|---|---|---|")
    for layer in review.layers:
        if layer.deployed:
            add(f"| {layer.name} | `{layer.stack}` | {money(layer.total)} |")
        else:
            add(f"| {layer.name} | {absent_text(review)} | left out |")
    add(f"| **Total** | | **{money(review.total)}** |")
    add("")
    lines = [line for layer in review.layers if layer.deployed for line in layer.costs]
    unpriced = sorted({line.type for line in lines if line.amount is None})
    if unpriced:
        add(f"Not priced (add them to scripts/prices.yaml): {', '.join(f'`{t}`' for t in unpriced)}.")
        add("")
    add("Assumptions:")
    add("")
    add(f"- {hours} in a month")
    for key, entry in table["assumptions"].items():
        if key in prices.used:
            add(f"- {number(dec(entry['value']))} {entry['text']}" + (f": {entry['why']}" if entry.get("why") else ""))
    add("- the running tasks average the service's DesiredCount all month")
    for note in prices.notes:
        add(f"- {note}")
    add("")
    if review.scaling:
        add("Scaling range (not in the total):")
        add("")
        for line in review.scaling:
            add(f"- {line}")
        add("")
    add("Not included:")
    add("")
    for item in table["not_included"]:
        add(f"- {item}")
    add("")

    plan = table["plan"]
    add(f"### Against the plan ({plan['source']})")
    add("")
    note = "" if env == plan["environment"] else f" The plan's figures are for {plan['environment']}; these are for {env}."
    add(f"The plan estimated {plan['total']} a month for this phase in {plan['environment']}.{note}")
    add("")
    add(f"| Item | Plan ({plan['environment']}) | This estimate ({env}) |")
    add("|---|---|---|")
    counted, with_peak = set(), ""
    for row in plan["rows"]:
        if "scaling_peak_share" in row:
            share, extra = dec(row["scaling_peak_share"]), review.scaling_extra
            ours = "not in the total"
            if extra is not None:
                peak = (share * extra).quantize(CENT, ROUND_HALF_UP)
                ours += f"; at MaxCapacity {number(share * 100)}% of the month: +{money(peak)}"
                with_peak = f" ({money(review.total + peak)} with the plan's auto-scaling assumption)"
        elif "outside" in row:  # a cost of the account that no layer's template holds
            ours = row["outside"]
        else:
            chosen = [
                (index, line)
                for index, line in enumerate(lines)
                if line.item in row.get("items", []) or (line.type in row.get("types", []) and not line.item)
            ]
            counted |= {index for index, _ in chosen}
            amount = sum((line.amount for _, line in chosen if line.amount is not None), ZERO)
            ours = money(amount) if chosen else "none in this environment"
            absent = [line for _, line in chosen if line.absent]
            if chosen and len(absent) == len(chosen):
                ours += f" ({absent[0].basis})"
        add(f"| {cell(row['what'])} | {cell(row['plan'])} | {cell(ours)} |")
    rest = [line for index, line in enumerate(lines) if index not in counted and line.amount]
    if rest:
        labels = ", ".join(sorted({line.label for line in rest}))
        add(f"| Not in the plan: {cell(labels)} | — | {money(sum((line.amount for line in rest), ZERO))} |")
    add(f"| **Total** | **{cell(plan['total'])}** | **{money(review.total)}**{cell(with_peak)} |")
    add("")


# ---------------------------------------------------------------------------------------------
# Command line


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Write the review document ops read before they open the console.")
    parser.add_argument("--env", required=True, help="environment: one of the params/<env>.yaml files")
    parser.add_argument(
        "--output-dir", type=Path, default=OUTPUT_DIR, help="generated templates; the document goes to <dir>/review/ (default: output)"
    )
    parser.add_argument("--params-dir", type=Path, default=PARAMS_DIR, help="where the <env>.yaml files are (default: params)")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if the document is stale")
    args = parser.parse_args(argv)
    output_dir, params_dir = args.output_dir.resolve(), args.params_dir.resolve()
    try:
        text = render(collect(args.env, output_dir, params_dir))
    except ReviewError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.code
    except templates.WiringError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    path = output_dir / "review" / f"{args.env}.md"
    if args.check:
        if not path.is_file() or path.read_text() != text:
            print(
                f"stale: {relative(path)} is not what `make review ENV={args.env}` writes; run it and commit output/review/",
                file=sys.stderr,
            )
            return 1
        return 0
    try:
        write_atomically(path, text)
    except OSError as error:
        print(f"error: cannot write {path}: {error}; nothing was written", file=sys.stderr)
        return 1
    print(f"{relative(path)}: written")
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `| head` ends the output quietly
    sys.exit(main())
