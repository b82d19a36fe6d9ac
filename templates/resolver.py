"""The intrinsic-function evaluator: what a layer template says in one environment, as far as it is
known before deploy. The review shows it (scripts/review/), and the deployer reads the names a
template gives its resources with it (scripts/deploy/guards.py)."""

import json
import re
from decimal import Decimal

from templates import inputs
from templates.template_reads import SUB_PLACEHOLDER, references

DECLARED = inputs.INPUTS | inputs.WIRED | inputs.DEPLOY_TIME  # every parameter of every layer template


class _Unknown:
    """A value not known before deploy (an upstream output, an attribute of a new resource)."""

    def __repr__(self):
        return "UNKNOWN"


UNKNOWN = _Unknown()
NO_VALUE = object()  # AWS::NoValue: the property is left out


def declared_parameters(template: dict) -> dict:
    """The template's Parameters section, or none where it is no map (a template edited by hand: CloudFormation
    refuses it; the evaluator reads what it can, never an AttributeError)."""
    declared = template.get("Parameters")
    return declared if isinstance(declared, dict) else {}


class Resolver:
    """Evaluates a template's intrinsic functions with one environment's parameter values, as far
    as they are known before deploy (scripts/review/resolver.py adds how the review shows them)."""

    def __init__(self, template: dict, values: dict, wired: dict, region: str, deploy_time=frozenset(), reads_undeclared=False):
        self.template = template
        self.values = values  # parameter -> its value in this environment (a string)
        self.wired = wired  # parameter -> "upstream-layer.Output", filled in at deploy time
        self.region = region
        self.parameters = declared_parameters(template)
        self.deploy_time = frozenset(deploy_time) & set(self.parameters)  # set by the deployer on each deploy
        # What a partly substituted Fn::Sub leaves as ${...} though known: the review shows ${AWS::Region} and the image
        # tag so (its subclass); evaluated, they are what a Ref of them is (two templates compared alike: changes_nothing)
        self.shown_as_written, self.set_each_run = frozenset(), frozenset()
        # A parameter of no layer (a template edited by hand) is read too: a comparison of two templates must never
        # leave a value unknown on both sides alike (changes_nothing). The review and the guards leave it unknown.
        self.reads_undeclared = reads_undeclared
        self.deciding = 0  # within a condition's definition, where {"Condition": name} is the function
        self.deploy_time_read = set()  # the deploy-time parameters whose value was asked for
        # Each condition worked out once: one named by several others (Fn::And and Fn::Or take up to 10) was worked out
        # again at each naming, exponential in a chain of them. None while one is being worked out: a cycle (which
        # CloudFormation refuses, in a template edited by hand) reads as decided at deploy time, not a RecursionError.
        self.conditions_decided, self.conditions_read = {}, {}

    def at_deploy_time_defaults(self) -> "Resolver":
        """This resolver with the deploy-time parameters at their defaults, as the estimate takes them."""
        defaults = {name: str(inputs.DEPLOY_TIME[name].default) for name in self.deploy_time}
        return type(self)(self.template, self.values | defaults, self.wired, self.region, self.deploy_time, self.reads_undeclared)

    # -- values

    def parameter(self, name):
        if name == "AWS::Region":
            return self.region
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.deploy_time:
            self.deploy_time_read.add(name)
        if self.values.get(name) is None or (name not in DECLARED and not self.reads_undeclared):
            return UNKNOWN
        # A list as the template declares it: AlertEmails is a String of its items comma-joined (inputs.Input.declared_type)
        return self.items(name) if self.declares_a_list(name) else self.values[name]

    def declares_a_list(self, name) -> bool:
        declared = self.parameters.get(name)
        kind = str(declared.get("Type", "")) if isinstance(declared, dict) else ""
        return kind == "CommaDelimitedList" or kind.startswith("List<")

    def items(self, name) -> list:
        """A list parameter's value: "each member string is space trimmed"
        (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/parameters-section-structure.html)."""
        return [item.strip() for item in self.values[name].split(",")]

    def condition(self, name: str) -> bool | None:
        """True or False in this environment; None when it is decided at deploy time."""
        if not isinstance(name, str):  # an Fn::If naming none, in a template edited by hand
            return None
        if name not in self.conditions_decided:
            self.conditions_decided[name] = None
            self.deciding += 1
            try:
                result = self.value(self.template.get("Conditions", {}).get(name, {"Ref": "AWS::AccountId"}))
            finally:
                self.deciding -= 1
            self.conditions_decided[name] = result if isinstance(result, bool) else None
        return self.conditions_decided[name]

    def references(self, node) -> set:
        """The parameters a value or condition depends on, through the conditions it names."""
        if isinstance(node, list):
            return set().union(*(self.references(item) for item in node))
        if not isinstance(node, dict):
            return set()
        intrinsic = self.intrinsic(node)
        if intrinsic and intrinsic[0] == "Ref":
            name = intrinsic[1]
            if not isinstance(name, str):  # a Ref of a function (value(), below): what the function reads
                return self.references(name)
            return {name} if name in self.parameters or name.startswith("AWS::") and name != "AWS::NoValue" else set()
        if intrinsic and intrinsic[0] == "Condition":
            name = intrinsic[1]
            if not isinstance(name, str):
                return set()
            if name not in self.conditions_read:  # once each, as condition() (a cycle reads nothing more)
                self.conditions_read[name] = set()
                self.conditions_read[name] = self.references(self.template.get("Conditions", {}).get(name))
            return self.conditions_read[name]
        if intrinsic and intrinsic[0] == "Fn::If":
            return self.references({"Condition": intrinsic[1][0]}) | self.references(intrinsic[1][1:])
        if intrinsic and intrinsic[0] == "Fn::Sub":
            text, variables = (intrinsic[1], {}) if isinstance(intrinsic[1], str) else intrinsic[1]
            named = set(re.findall(r"\$\{([^}!.]+)\}", text)) & set(self.parameters)
            return (named - set(variables)) | self.references(list(variables.values()))
        return self.references(list(node.values()))

    def resources_read(self, node) -> set:
        """The template's resources whose id or attributes a value reads (template_reads.references) in this
        environment: an Fn::If's branch where its condition is decided here, both where it is not."""
        if isinstance(node, list):
            return set().union(*(self.resources_read(item) for item in node))
        intrinsic = self.intrinsic(node)
        if intrinsic and intrinsic[0] == "Fn::If" and isinstance(intrinsic[1], list) and len(intrinsic[1]) == 3:
            chosen = self.condition(intrinsic[1][0])
            return self.resources_read(intrinsic[1][1:] if chosen is None else intrinsic[1][1 if chosen else 2])
        resources = set(self.template.get("Resources") or {})
        if intrinsic and intrinsic[0] == "Fn::Sub" and None not in (parts := sub_parts(intrinsic[1])):
            text, variables = parts  # its variables' values read as any value (an Fn::If's branch)
            return (references({"Fn::Sub": text}) - set(variables)) & resources | self.resources_read(list(variables.values()))
        if isinstance(node, dict) and (intrinsic is None or intrinsic[0] not in ("Ref", "Fn::GetAtt", "Fn::Sub")):
            return self.resources_read(list(node.values()))
        return references(node) & resources

    def naming_resources(self, node):
        """The node with each Ref and Fn::GetAtt of the template's resources (${...} of an Fn::Sub too) as a text
        that names it, <Topic> or <Topic.TopicName>: two values that read the same resources, kept, then compare
        by the rest of what they read."""
        resources = set(self.template.get("Resources") or {})
        if isinstance(node, list):
            return [self.naming_resources(item) for item in node]
        if not isinstance(node, dict):
            return node
        intrinsic = self.intrinsic(node)
        if intrinsic and intrinsic[0] in ("Ref", "Fn::GetAtt") and (read := references(node)) and read <= resources:
            return f"<{'.'.join(map(str, intrinsic[1])) if isinstance(intrinsic[1], list) else intrinsic[1]}>"
        if intrinsic and intrinsic[0] == "Fn::Sub" and None not in (parts := sub_parts(intrinsic[1])):
            text, variables = parts

            def name(match):
                read = match.group(1)
                return f"<{read}>" if read.split(".")[0] in resources and read not in variables else match.group(0)

            return {"Fn::Sub": [SUB_PLACEHOLDER.sub(name, text), self.naming_resources(variables)]}
        return {key: self.naming_resources(item) for key, item in node.items()}

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
            # A Ref of a function, { "Ref" : "IntrinsicFunction" }, which the AWS::LanguageExtensions transform takes, in a
            # deployed template edited by hand: not worked out.
            # https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/intrinsic-function-reference-ref.html
            return self.parameter(argument) if isinstance(argument, str) else UNKNOWN
        if key == "Condition":
            if not self.deciding:  # a map passed as written (function_of)
                return {key: self.value(argument)}
            result = self.condition(argument)
            return UNKNOWN if result is None else result
        return self.function(key, argument)

    def evaluated(self, node, kept=False):
        """node with each intrinsic function whose value is known before deploy replaced by that value, and the others
        kept, their arguments evaluated: two templates that evaluate alike give their resources the same values.
        kept: node is an argument of a function kept, where an AWS::NoValue (a branch of an Fn::If decided at deploy
        time) is kept as written, not left out."""
        if isinstance(node, list):
            items = [self.evaluated(item, kept) for item in node]
            return items if kept else [item for item in items if item is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        intrinsic = self.function_of(node)
        if intrinsic is None:
            items = {key: self.evaluated(item, kept) for key, item in node.items()}
            return items if kept else {key: item for key, item in items.items() if item is not NO_VALUE}
        value = self.value(node)
        if value is NO_VALUE:
            return node if kept else NO_VALUE
        if not holds_unknown(value):
            return value
        key, argument = intrinsic
        if key == "Fn::Sub":  # its text with what is known put in: ${ImageTag} beside an ${AWS::AccountId}
            text, variables = sub_parts(argument)
            if text is not None and not self.ambiguous_once_substituted(text, variables):
                return {key: [self.substitute(argument, resolve_all=False), self.evaluated(variables, kept=True)]}
        return {key: self.evaluated(argument, kept=True)}

    def ambiguous_once_substituted(self, text: str, variables: dict) -> bool:
        """An Fn::Sub whose text, partly substituted, could read as another's: a ${!Literal} (written ${Literal}
        then, as a variable is) or a value put in that holds $, { or }, which Fn::Sub inserts as text and which could
        make a placeholder with the text around it.
        https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/intrinsic-function-reference-sub.html"""
        if "${!" in text:
            return True
        for name in re.findall(r"\$\{([^}]+)\}", text):
            value = self.value(variables[name]) if name in variables else UNKNOWN if "." in name else self.parameter(name)
            if value is not UNKNOWN and value is not NO_VALUE and any(mark in scalar_text(value) for mark in "${}"):
                return True
        return False

    def function_of(self, node):
        """intrinsic(node) where node is worked out as a value: {"Condition": name} is a function in the Conditions
        section only; in a property, a map passed as written (to a custom resource, say).
        https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/intrinsic-function-reference-condition.html"""
        found = self.intrinsic(node)
        return None if found and found[0] == "Condition" and not self.deciding else found

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
        if key in ("Fn::And", "Fn::Or") and isinstance(values, list) and any(v is (key == "Fn::Or") for v in values):
            # One false condition makes Fn::And false, one true makes Fn::Or true, whatever the others are at deploy time:
            # https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/intrinsic-function-reference-conditions.html
            return key == "Fn::Or"
        if not isinstance(values, list) or any(v is UNKNOWN or isinstance(v, dict) for v in values):
            return UNKNOWN
        if key in ("Fn::Select", "Fn::Join"):
            first, items = values if len(values) == 2 else (None, None)
            if not isinstance(items, list) or any(item is UNKNOWN or isinstance(item, (dict, list)) for item in items):
                return UNKNOWN
            if key == "Fn::Join":
                return scalar_text(first).join(scalar_text(item) for item in items)
            index = scalar_text(first)  # a whole number, as AWS takes it ("0 GB" is no index)
            return items[int(index)] if re.fullmatch(r"[0-9]+", index) and int(index) < len(items) else UNKNOWN
        if any(isinstance(v, list) for v in values):
            return UNKNOWN
        if key == "Fn::Split":
            separator, text = values
            return scalar_text(text).split(scalar_text(separator)) if scalar_text(separator) else UNKNOWN  # "": AWS refuses
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
        text, variables = sub_parts(argument)
        if text is None:  # a form CloudFormation refuses
            return UNKNOWN
        unknown = False

        def replace(match):
            nonlocal unknown
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            value = self.value(variables[name]) if name in variables else UNKNOWN if "." in name else self.parameter(name)
            read = self.references(variables[name]) if name in variables else {name}  # a variable of its own reads its value's
            if (name in self.shown_as_written or read & self.set_each_run) and not resolve_all:
                value = UNKNOWN  # shown as ${AWS::Region}, like the other pseudo parameters, and ${ImageTag}
            if value is UNKNOWN or isinstance(value, (dict, list)) or value is NO_VALUE:
                unknown = True
                return match.group(0)
            return scalar_text(value)

        result = re.sub(r"\$\{([^}]+)\}", replace, text)
        return UNKNOWN if unknown and resolve_all else result


def sub_parts(argument) -> tuple:
    """An Fn::Sub's (text, variables): its text alone, or a list of the text and a map of its own variables; (None,
    None) for a form CloudFormation refuses."""
    text, variables = (
        (argument, {}) if isinstance(argument, str) else ([*argument, {}, None][:2] if isinstance(argument, list) else (None, None))
    )
    return (text, variables) if isinstance(text, str) and isinstance(variables, dict) else (None, None)


def holds_unknown(value) -> bool:
    if isinstance(value, dict):
        return any(holds_unknown(each) for each in value.values())
    if isinstance(value, list):
        return any(holds_unknown(each) for each in value)
    return value is UNKNOWN


def evaluates_alike(before: Resolver, old, after: Resolver, new) -> bool:
    """old (read by before: a deployed template with the values it runs) and new (after: the template and values a
    deploy sends) give the same values: a parameter's as the text CloudFormation passes (a Number parameter's value
    "becomes a string" where a template uses it:
    https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/parameters-section-structure.html), what the
    templates write of the type they write it (8000 and "8000" in an EventPattern match other events). AWS changes
    nothing for such a template: the UpdateStack and CreateChangeSet APIs "will fail with an error stating that "The
    submitted information didn't contain changes." if the template provided does not update the property values of
    existing resources in the Resources or Outputs section of the stack" (AWS's CloudFormation roadmap, not its
    documentation: https://github.com/aws-cloudformation/cloudformation-coverage-roadmap/issues/2027). The user guide
    says as much of two sections alone: "you cannot update the Metadata section by itself", nor the Description
    (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/metadata-section-structure.html,
    https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/template-description-structure.html)."""
    try:
        return same_values(before.evaluated(old), after.evaluated(new))
    except NOT_JUDGED:
        return False


# What CloudFormation refuses or would not read alike (a function of the wrong arguments, a section of another type,
# functions nested hundreds deep: a template edited by hand) is not judged alike: never a traceback in make diff, nor a
# 500 from the sandbox, whose change sets judge each property so.
NOT_JUDGED = (RecursionError, TypeError, ValueError, LookupError, AttributeError)


def same_values(one, other) -> bool:
    """Equal, each scalar of the same JSON type: Python takes True for 1 and 1.0, an EventPattern does not."""
    return json.dumps(one, sort_keys=True, default=repr) == json.dumps(other, sort_keys=True, default=repr)


def outside_properties(resource: dict | None) -> dict | None:
    """A resource but its Properties: its type, condition, DependsOn, policies and metadata."""
    return None if resource is None else {key: value for key, value in resource.items() if key != "Properties"}


def with_defaults(template: dict, values: dict, region: str) -> Resolver:
    """A resolver of template that compares it (reads_undeclared) with values as the text CloudFormation is given,
    and its defaults for those left out."""
    declared = declared_parameters(template)
    defaults = {name: each["Default"] for name, each in declared.items() if isinstance(each, dict) and "Default" in each}
    given = defaults | values
    texts = {name: None if value is None else scalar_text(value) for name, value in given.items()}
    return Resolver(template, texts, {}, region, reads_undeclared=True)


def changes_nothing(old: dict, old_values: dict, new: dict, new_values: dict, region: str) -> bool:
    """A stack that runs old with old_values is what new with new_values makes (evaluates_alike): the same resources,
    each with the same Type, attributes and property values, under conditions of the same values, and the same
    outputs. Whatever is not known before deploy (an attribute, a condition decided then) must be written alike. Only
    for the values the stack runs: what AWS makes of a new value that no resource reads is not judged here."""
    try:
        return _changes_nothing(old, old_values, new, new_values, region)
    except NOT_JUDGED:
        return False


def _changes_nothing(old: dict, old_values: dict, new: dict, new_values: dict, region: str) -> bool:
    before, after = with_defaults(old, old_values, region), with_defaults(new, new_values, region)
    if before.values != after.values or not same_values(
        old.get("Mappings"), new.get("Mappings")
    ):  # a lookup by a key unknown before deploy
        return False
    if any(calls_a_macro(t) for t in (old, new)):  # macros make another template of it at each change set
        return False
    # A rule not certain to pass refuses the change set ("rule functions that validate parameter values before
    # CloudFormation creates or updates any resources"): no "no changes" then.
    # https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/rules-section-structure.html
    if any(applies is not False and holds is not True for applies, _, holds in assertions(new, after)):
        return False
    # A nested stack's template may have changed at its URL: "CloudFormation sets the ChangeSource to Automatic".
    # https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_ResourceChangeDetail.html
    if any(r.get("Type") == "AWS::CloudFormation::Stack" for t in (old, new) for r in t.get("Resources", {}).values()):
        return False
    # A Systems Manager parameter type reads the parameter store at each deploy: its value is not the one given.
    if any(
        str(each.get("Type", "")).startswith("AWS::SSM::")
        for t in (old, new)
        for each in declared_parameters(t).values()
        if isinstance(each, dict)
    ):
        return False
    old_resources, new_resources = old.get("Resources", {}), new.get("Resources", {})
    if set(old_resources) != set(new_resources):  # (outputs added or removed: the last comparison sees them)
        return False
    old_conditions, new_conditions = old.get("Conditions", {}), new.get("Conditions", {})
    # a condition written alike is decided alike only over parameters declared alike (a String's "a", a list's ["a"])
    declared_alike = same_values(*({n: d.get("Type") for n, d in declared_parameters(t).items()} for t in (old, new)))
    for name in set(old_conditions) | set(new_conditions):
        decided = (before.condition(name) if name in old_conditions else None), (after.condition(name) if name in new_conditions else None)
        if (None in decided or decided[0] != decided[1]) and not (
            declared_alike and same_values(old_conditions.get(name), new_conditions.get(name))
        ):
            return False
    for name, resource in new_resources.items():
        previous = old_resources[name]
        if not same_values(outside_properties(previous), outside_properties(resource)):
            return False
        if not evaluates_alike(before, previous.get("Properties", {}), after, resource.get("Properties", {})):
            return False
    return evaluates_alike(before, old.get("Outputs", {}), after, new.get("Outputs", {}))


def assertions(template: dict, resolver: Resolver):
    """(whether its rule applies, its AssertDescription, whether it holds) of each assertion of the template's Rules,
    each True, False, or None where it is not known before deploy (a rule without a RuleCondition applies).
    https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/rules-section-structure.html"""

    def known(value):
        return value if isinstance(value, bool) else None

    for rule in template.get("Rules", {}).values():
        applies = known(resolver.value(rule["RuleCondition"])) if "RuleCondition" in rule else True
        for assertion in rule.get("Assertions", []):
            yield (
                applies,
                assertion.get("AssertDescription", "a rule of the template fails"),
                known(resolver.value(assertion.get("Assert"))),
            )


def calls_a_macro(node) -> bool:
    """A Transform section, an Fn::Transform anywhere, or its short form {"Transform": ...} within a section: AWS runs
    the macro (AWS::Include reads its file) again at each change set. (A property of that name reads as one too: not
    judged either.)
    https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/intrinsic-function-reference-transform.html"""
    if isinstance(node, list):
        return any(calls_a_macro(item) for item in node)
    if not isinstance(node, dict):
        return False
    return "Fn::Transform" in node or "Transform" in node or any(calls_a_macro(item) for item in node.values())


def scalar_text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(scalar_text(v) for v in value)
    return str(value)


def as_number(value) -> Decimal | None:
    """A count or size from a resolved property: 2, "512", "0.5 vCPU" (x1024), "1 GB" (x1024)."""
    if isinstance(value, bool) or value is UNKNOWN or value is None:
        return None
    text = str(value).strip()
    match = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)\s*(vCPU|GB)?", text, re.IGNORECASE)
    if not match:
        return None
    return Decimal(match.group(1)) * (1024 if match.group(2) else 1)
