"""What a node of a CloudFormation template reads: pure functions over the template's JSON. The
deployer uses them for the outputs an update's replacements change (scripts/deploy/deployer.py),
emulator/moto_compat.py to judge which resources an update changes (and without importing moto)."""

import re


def reads(node) -> set:
    """What a template node reads: "Name" for a Ref (a resource, a parameter or a pseudo parameter),
    "Resource.Attribute" for a Fn::GetAtt, either for a ${...} of a Fn::Sub (not its own variables)."""
    found = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                found.add(value)
            elif key == "Fn::GetAtt":
                parts = value if isinstance(value, list) else str(value).split(".", 1)
                found.add(".".join(map(str, parts)))  # an attribute given by Ref reads as its parameter's name
            elif key == "Fn::Sub":  # ${Name} of the string, less the list form's own variables, which read what their values read
                form = value if isinstance(value, list) else [value]
                text = form[0] if form and isinstance(form[0], str) else ""
                variables = form[1] if len(form) > 1 and isinstance(form[1], dict) else {}
                found |= {name for name in re.findall(r"\$\{([^!}][^}]*)\}", text) if name not in variables} | reads(variables)
            else:
                found |= reads(value)
    elif isinstance(node, list):
        for item in node:
            found |= reads(item)
    return found


def references(node) -> set:
    """The names (resources, parameters) a template node reads."""
    return {read.split(".")[0] for read in reads(node)}


def attributes_read(node) -> set:
    """The "Resource.Attribute" entities a template node reads with Fn::GetAtt (or ${Resource.Attribute} in Fn::Sub)."""
    return {read for read in reads(node) if "." in read}


def conditions_used(node) -> set:
    """Names of the conditions a template node reads: a Condition key, Fn::If, a condition inside a condition."""
    found = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Condition" and isinstance(value, str):
                found.add(value)
            elif key == "Fn::If":
                found |= {value[0]} | conditions_used(value[1:])
            else:
                found |= conditions_used(value)
    elif isinstance(node, list):
        for item in node:
            found |= conditions_used(item)
    return found
