"""The intrinsic-function evaluator: what a layer template says in one environment, as far as it is
known before deploy, and the same values rendered compactly for people."""

import re
from decimal import Decimal

from templates import inputs

DEPLOY_TIME_TEXT = "set by the deployer at deploy time"
WIDTH = 100  # a property whose one-line form is longer is split into one bullet per key or item
PAIRS = (("Key", "Value"), ("Name", "Value"), ("Name", "ValueFrom"))
DECLARED = inputs.INPUTS | inputs.WIRED | inputs.DEPLOY_TIME  # every parameter of every layer template


class _Unknown:
    """A value not known before deploy (an upstream output, an attribute of a new resource)."""

    def __repr__(self):
        return "UNKNOWN"


UNKNOWN = _Unknown()
NO_VALUE = object()  # AWS::NoValue: the property is left out


class Resolver:
    """Evaluates a template's intrinsic functions with one environment's parameter values, as far
    as they are known before deploy, and renders values compactly for people."""

    def __init__(self, template: dict, values: dict, wired: dict, region: str, deploy_time=frozenset()):
        self.template = template
        self.values = values  # parameter -> its value in this environment (a string)
        self.wired = wired  # parameter -> "upstream-layer.Output", filled in at deploy time
        self.region = region
        self.deploy_time = frozenset(deploy_time) & set(template.get("Parameters", {}))  # set by the deployer on each deploy
        # The image tag: the deployer sets it at each run (TAG=, else the image running); the params value only on a first deploy.
        self.set_each_run = (frozenset(inputs.SET_EACH_RUN) - frozenset(inputs.DEPLOY_TIME)) & set(template.get("Parameters", {}))
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
            if (name == "AWS::Region" or name in self.set_each_run) and not resolve_all:
                value = UNKNOWN  # shown as ${AWS::Region}, like the other pseudo parameters, and ${ImageTag}
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


def as_number(value) -> Decimal | None:
    """A count or size from a resolved property: 2, "512", "0.5 vCPU" (x1024), "1 GB" (x1024)."""
    if isinstance(value, bool) or value is UNKNOWN or value is None:
        return None
    text = str(value).strip()
    match = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)\s*(vCPU|GB)?", text, re.IGNORECASE)
    if not match:
        return None
    return Decimal(match.group(1)) * (1024 if match.group(2) else 1)
