"""The review's resolver: the evaluator of templates/resolver.py, and the same values rendered
compactly for people."""

import re

from templates import inputs
from templates.resolver import DECLARED, UNKNOWN, scalar_text
from templates.resolver import Resolver as Evaluator

DEPLOY_TIME_TEXT = "set by the deployer at deploy time"
WIDTH = 100  # a property whose one-line form is longer is split into one bullet per key or item
PAIRS = (("Key", "Value"), ("Name", "Value"), ("Name", "ValueFrom"))


# Resources whose Ref is the name a property of theirs gives, known before deploy where that property is: Ref returns
# a resource's primary identifier, which the resource schemas cfn-lint ships give as /properties/AlarmName and
# /properties/LogGroupName (tests/test_review.py checks them). The resources' Return values say so too:
# https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-logs-loggroup.html
REF_IS_NAME = {"AWS::CloudWatch::Alarm": "AlarmName", "AWS::Logs::LogGroup": "LogGroupName"}


def is_number(declaration: dict, name: str) -> bool:
    """A parameter whose value is a number: declared Number, or one of ours the template declares a String because
    it writes the number into text (inputs.Input.declared_type)."""
    return declaration.get("Type") == "Number" or (name in DECLARED and DECLARED[name].type == "Number")


class Resolver(Evaluator):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The image tag: the deployer sets it at each run (TAG=, else the image running); the params value only on a
        # first deploy. Shown as ${ImageTag} where an Fn::Sub puts it in.
        self.set_each_run = (frozenset(inputs.SET_EACH_RUN) - frozenset(inputs.DEPLOY_TIME)) & set(self.parameters)
        self.shown_as_written = frozenset({"AWS::Region"})  # ${AWS::Region} as written, like the other pseudo parameters

    def parameter(self, name):
        resource = self.template.get("Resources", {}).get(name)
        if resource and resource.get("Type") in REF_IS_NAME and "Condition" not in resource:  # the name its property gives
            named = resource.get("Properties", {}).get(REF_IS_NAME[resource["Type"]])
            value = self.value(named) if named is not None else None
            if isinstance(value, str):
                return value
        return super().parameter(name)

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
            if argument in self.wired:  # known before deploy where the upstream layer's output is (collect.known_outputs)
                shown = self.values.get(argument)
                return f"{self.wired[argument]} (at deploy time)" if shown is None else f"{shown or chr(34) * 2} ({self.wired[argument]})"
            if argument in self.values:
                return f"{self.values[argument] or chr(34) * 2} ({argument})"
            if argument in self.deploy_time:
                return f"{argument} ({DEPLOY_TIME_TEXT})"
            if argument == "AWS::Region":
                return f"{self.region} (AWS::Region)"
            return argument if argument.startswith("AWS::") else f"Ref {argument}"
        if key == "Fn::GetAtt":
            resource, attribute = argument.split(".", 1) if isinstance(argument, str) else argument
            return f"GetAtt {resource}.{self.text(attribute)}"
        if key == "Fn::Sub":
            # a number put into text (an alarm's expression) is named, as a Ref's value is: it moves with its setting
            text, local = (argument, {}) if isinstance(argument, str) else argument  # a local variable is not the parameter
            numbers = [
                name
                for name in dict.fromkeys(re.findall(r"\$\{([A-Za-z0-9]+)\}", text))
                if is_number(self.parameters.get(name, {}), name) and name in self.values and name not in local
            ]
            if numbers and text == f"${{{numbers[0]}}}":  # the value alone, as a Ref shows it
                return self.intrinsic_text("Ref", numbers[0])
            named = f" ({', '.join(f'{name} {self.values[name]}' for name in numbers)})" if numbers else ""
            return self.substitute(argument, resolve_all=False) + named
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

    def decided_branch(self, node):
        """(why, the branch taken) of an Fn::If that holds a number of UNITS' and whose condition the environment decides,
        through the decided Fn::Ifs nested in it (why: "as A is true, B is false"), else None: such a value is laid out
        as the branch, its units shown."""
        said = []
        while True:
            intrinsic = self.intrinsic(node) if isinstance(node, dict) else None
            if not (intrinsic and intrinsic[0] == "Fn::If" and (said or holds_unit(node))):  # the outer one holds the unit
                break
            condition, when_true, when_false = intrinsic[1]
            chosen = self.condition(condition)
            if chosen is None:
                break
            said.append(f"{condition} is {scalar_text(chosen)}")
            node = when_true if chosen else when_false
        return (f"as {', '.join(said)}", node) if said else None

    def list_text(self, node):
        if isinstance(node, list):
            return ", ".join(item for item in (self.text(item) for item in node) if item is not None)
        return self.text(node)

    def property_lines(self, name: str, node, depth: int = 0, split: bool = False) -> list[str]:
        """Markdown bullets for one property: one line, or one bullet per key or item when long."""
        indent = "  " * depth
        if isinstance(node, dict) and isinstance(node.get("Statement"), list):
            return [f"{indent}- {name}:"] + [f"{indent}  - {code(self.statement(s))}" for s in node["Statement"]]
        decided = self.decided_branch(node)
        if decided:  # the branch the environment takes, laid out as any value is
            why, branch = decided
            return self.property_lines(f"{name} ({why})", branch, depth, split)
        shown = self.text(node)
        if shown is None:
            return [f"{indent}- {name}: (left out in this environment)"]
        plain_dict = isinstance(node, dict) and not self.intrinsic(node) and not self.pair(node)
        # a number whose unit its name does not say is shown on a line of its own, with the unit, however deep
        with_unit = (plain_dict or isinstance(node, list)) and holds_unit(node)
        if (
            (len(name) + len(shown) <= WIDTH and not split and not with_unit)
            or (depth >= 3 and not with_unit)
            or not (plain_dict or isinstance(node, list))
        ):
            unit = f" {UNITS[name]}" if name in UNITS and not plain_dict and not isinstance(node, list) else ""
            return [f"{indent}- {name}: {code(shown)}{unit}"]
        lines = [f"{indent}- {name}:"]
        if plain_dict:
            for key, item in sorted(node.items()):
                lines += self.property_lines(key, item, depth + 1)
            return lines
        # Items of one list look alike: when one is split, all are.
        split = any(len(self.text(item) or "") > WIDTH for item in node)
        for number, item in enumerate(node, 1):
            if decided := self.decided_branch(item):
                why, branch = decided
                if self.text(branch) is not None:  # AWS::NoValue: no item
                    lines += self.property_lines(f"{item_label(branch, number)} ({why})", branch, depth + 1, split)
            elif isinstance(item, dict) and not self.intrinsic(item) and not self.pair(item):
                label = item_label(item, number)
                lines += self.property_lines(label, item, depth + 1, split)
            else:
                shown = self.text(item)
                if shown is not None:
                    lines.append(f"{indent}  - {code(shown)}")
        return lines


# The unit of a number whose property name does not say it, as the resource schemas cfn-lint ships describe it: AWS::IAM::Role
# MaxSessionDuration, AWS::CloudWatch::Alarm Period, ScalingPolicy TargetTrackingScalingPolicyConfiguration
# ScaleInCooldown/ScaleOutCooldown and ContainerDefinition StopTimeout in seconds; AWS::ECS::TaskDefinition Cpu in
# CPU units (1,024 a vCPU) and Memory in MiB. https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-ecs-taskdefinition.html
UNITS = {
    "MaxSessionDuration": "seconds",
    "Period": "seconds",
    "ScaleInCooldown": "seconds",
    "ScaleOutCooldown": "seconds",
    "StopTimeout": "seconds",
    "Cpu": "CPU units (1,024 a vCPU)",
    "Memory": "MiB",
}


def item_label(item, number: int) -> str:
    """What a list item's bullet is called: its name or id where it has one, else its number."""
    named = (item.get(k) for k in ("Name", "PolicyName", "Id", "Sid", "Key")) if isinstance(item, dict) else ()
    return next((name for name in named if isinstance(name, str)), f"#{number}")


def holds_unit(node) -> bool:
    """Whether a number of UNITS' is in the node, at any depth."""
    if isinstance(node, dict):
        return not UNITS.keys().isdisjoint(node) or any(holds_unit(item) for item in node.values())
    return isinstance(node, list) and any(holds_unit(item) for item in node)


def code(text: str) -> str:
    return "`" + text.replace("`", "'") + "`"
