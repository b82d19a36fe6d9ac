"""What a node of a CloudFormation template reads: pure functions over the template's JSON. The
deployer uses them for the outputs an update's replacements change (scripts/deploy/advice.py) and,
through templates/resolver.py, for those make diff says it changes; emulator/moto_compat.py to judge
which resources an update changes (and without importing moto)."""

import re

# An Fn::Sub placeholder, ${Name} or ${Resource.Attribute}: not ${!Literal}, which stays as written
SUB_PLACEHOLDER = re.compile(r"\$\{([^!}][^}]*)\}")


def items(node):
    """Every (key, value) of the mappings in a template node, at any depth."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield key, value
            yield from items(value)
    elif isinstance(node, list):
        for item in node:
            yield from items(item)


def reads(node) -> set:
    """What a template node reads: "Name" for a Ref (a resource, a parameter or a pseudo parameter),
    "Resource.Attribute" for a Fn::GetAtt, either for a ${...} of a Fn::Sub (not its own variables)."""
    found = set()
    for key, value in items(node):
        if key == "Ref" and isinstance(value, str):
            found.add(value)
        elif key == "Fn::GetAtt":  # an attribute given by a Ref is read as that Ref (found inside it)
            parts = value if isinstance(value, list) else str(value).split(".", 1)
            found.add(".".join(part for part in parts if isinstance(part, str)))
        elif key == "Fn::Sub":  # ${Name} of the string, less the list form's own variables (their values are read inside)
            form = value if isinstance(value, list) else [value]
            text = form[0] if form and isinstance(form[0], str) else ""
            variables = form[1] if len(form) > 1 and isinstance(form[1], dict) else {}
            found |= {name for name in SUB_PLACEHOLDER.findall(text) if name not in variables}
    return found


def references(node) -> set:
    """The names (resources, parameters) a template node reads."""
    return {read.split(".")[0] for read in reads(node)}


def attributes_read(node) -> set:
    """The "Resource.Attribute" entities a template node reads with Fn::GetAtt (or ${Resource.Attribute} in Fn::Sub)."""
    return {read for read in reads(node) if "." in read}


def conditions_used(node) -> set:
    """Names of the conditions a template node reads: a Condition key, Fn::If, a condition inside a condition."""
    return {
        value if key == "Condition" else value[0]
        for key, value in items(node)
        if (key == "Condition" and isinstance(value, str))
        or (key == "Fn::If" and isinstance(value, list) and value and isinstance(value[0], str))
    }
