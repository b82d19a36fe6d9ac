"""botocore checks a request's types, required members and minimum lengths on the client, not its maximum
lengths, list sizes, enum values or patterns: AWS refuses those, and neither botocore's Stubber nor the moto
sandbox does. Every request a test's in-process clients send is checked against them too (conftest.py's
requests_as_aws_takes fixture), so that a value AWS would refuse fails the test that sends it.

A pattern must match the whole value: ChangeSetName's [a-zA-Z][-a-zA-Z0-9]* is what the API reference words as "must
start with an alphabetical character" (https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_CreateChangeSet.html),
which a search for it would not check. The models' regular expressions are Java's: the regex package reads them,
once a range of UTF-16 surrogate pairs is written as the characters it stands for, and \\w, \\d, \\s, \\S
and \\p{Print} as the ASCII classes they are in Java (the regex package reads them as Unicode's)."""

import functools

import regex
from botocore.validate import ParamValidationDecorator

SERIALIZE = ParamValidationDecorator.serialize_to_request
refused: list[str] = []  # what the test's requests sent beyond the models, said as AWS would refuse it


# Java's \w, \d, \s and \p{Print}, ASCII's where the regex package reads Unicode's, written out: inside a character
# class, and outside one (\S outside one only: a negated class cannot be written into another).
JAVA_SPACE = " \\t\\n\\x0B\\f\\r"
ASCII_CLASSES = {
    "w": ("A-Za-z0-9_", "[A-Za-z0-9_]"),
    "d": ("0-9", "[0-9]"),
    "s": (JAVA_SPACE, f"[{JAVA_SPACE}]"),
    "S": ("\\S", f"[^{JAVA_SPACE}]"),
    "p{Print}": ("\\x20-\\x7E", "[\\x20-\\x7E]"),
}


def as_java_reads_it(pattern: str) -> str:
    """pattern with \\uD800\\uDC00-\\uDBFF\\uDFFF (every character past U+FFFF, as UTF-16 pairs) as those
    characters, and \\w and \\d as ASCII's."""
    pattern = pattern.replace("\\uD800\\uDC00-\\uDBFF\\uDFFF", "\\U00010000-\\U0010FFFF")
    written, in_class, i = [], False, 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            escaped = next((name for name in ASCII_CLASSES if pattern.startswith(name, i + 1)), pattern[i + 1])
            written.append(ASCII_CLASSES[escaped][not in_class] if escaped in ASCII_CLASSES else c + escaped)
            i += 1 + len(escaped)
            continue
        in_class = (in_class or c == "[") and not (in_class and c == "]")
        written.append(c)
        i += 1
    return "".join(written)


@functools.cache
def compiled(pattern: str):
    """A model's pattern as Java reads it; None for one the regex package cannot read (tests/test_requests_as_aws_takes.py
    checks the models of the services the tools call have none)."""
    try:
        return regex.compile(as_java_reads_it(pattern))
    except regex.error:
        return None


def beyond_the_model(value, shape, where) -> list[str]:
    """Where value goes past shape's maximum length or size, enum or pattern."""
    found, most = [], shape.metadata.get("max")
    if shape.type_name == "structure" and isinstance(value, dict):
        for name, member in value.items():
            if name in shape.members:
                found += beyond_the_model(member, shape.members[name], f"{where}.{name}")
    elif shape.type_name == "list" and isinstance(value, list | tuple):
        if most is not None and len(value) > most:
            found.append(f"{where}: {len(value)} items; the model takes at most {most}")
        for i, item in enumerate(value):
            found += beyond_the_model(item, shape.member, f"{where}[{i}]")
    elif shape.type_name == "map" and isinstance(value, dict):
        if most is not None and len(value) > most:
            found.append(f"{where}: {len(value)} entries; the model takes at most {most}")
        for key, item in value.items():
            found += beyond_the_model(key, shape.key, f"{where} key {key!r}") + beyond_the_model(item, shape.value, f"{where}[{key!r}]")
    elif shape.type_name in ("integer", "long") and isinstance(value, int):
        if most is not None and value > most:  # botocore checks the minimum alone
            found.append(f"{where}: {value}; the model takes at most {most}")
    elif shape.type_name == "string" and isinstance(value, str):
        if most is not None and len(value) > most:
            found.append(f"{where}: {len(value)} characters; the model takes at most {most}")
        if shape.enum and value not in shape.enum:
            found.append(f"{where}: {value[:80]!r}; the model takes one of {', '.join(shape.enum)}")
        pattern = shape.metadata.get("pattern")
        if pattern and compiled(pattern) and not compiled(pattern).fullmatch(value):
            found.append(f"{where}: {value[:80]!r}; the model's pattern is {pattern}")
    return found


def checked(self, parameters, operation_model):
    if operation_model.input_shape is not None:
        refused.extend(f"{operation_model.name}{problem}" for problem in beyond_the_model(parameters, operation_model.input_shape, ""))
    return SERIALIZE(self, parameters, operation_model)
