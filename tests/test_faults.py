"""Faults and hostile input, kept together: each case once failed with a traceback, a hang, lost
state or a silently wrong value, and now gets one clear line (README: Faults and how they are handled)."""

import contextlib
import errno
import functools
import gc
import io
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest
import yaml
from conftest import (
    NOWHERE,
    ROOT,
    Ran,
    deployed,
    deploying_into,
    generate_main,
    no_real_aws,
    on_each_client,
    refused_answer,
    seeded,
    within,
    without_ci,
    without_unused_value_warnings,
)

import templates
from templates.inputs import MOST_SECRET_NAME
from templates.params import SANDBOX_ENV, load, load_all

PROD = (ROOT / "params" / "prod.yaml").read_text()
GOOD = yaml.safe_load(PROD)


def generate(tmp_path, text: str | bytes, name="prod.yaml", others=()):
    """Run generate.py's entry point on one params file (plus others: name -> text); (exit code,
    stderr). In this process: an exception it let through would fail the test with its traceback."""
    params = tmp_path / "params"
    params.mkdir(exist_ok=True)
    for other, content in [*others, (name, text)]:
        path = params / other
        path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)
    out = tmp_path / "out"
    result = generate_main("--no-lint", "--params-dir", params, "--output-dir", out)
    return result.returncode, result.stderr, out


class Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data):
        return True  # a value used twice is written twice, not as an anchor the loader refuses


def dump(document) -> str:
    return yaml.dump(document, Dumper=Dumper)


def prod_parameters(**changes):
    return dump({**GOOD, "parameters": {**GOOD["parameters"], **changes}})


GOOD_TEXT = dump(GOOD)  # params/prod.yaml as read, written again: the cases below change one thing in it
REGION_LINE = f"region: {GOOD['region']}"
REGION_LINE_NUMBER = GOOD_TEXT.splitlines().index(REGION_LINE) + 1

BILLION_LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8)
)

HOSTILE = [
    # (what, file content, words the one error line must hold)
    ("binary file", b"\x00\x01\xff\xfe garbage", "not UTF-8 text"),
    *(
        (
            f"{encoding} file",
            PROD.encode(encoding.lower()),
            f"byte 0 is not UTF-8 text (it starts as {encoding} does: save it as UTF-8); allowed: a YAML file in UTF-8",
        )
        for encoding in ("UTF-16", "UTF-32")  # UTF-32's mark starts as UTF-16's does: it was named UTF-16 (helper S2)
    ),
    (  # big-endian, its mark first (Python's utf-32 is the machine's order)
        "UTF-32 big-endian file",
        b"\x00\x00\xfe\xff" + PROD.encode("utf-32-be"),
        "byte 2 is not UTF-8 text (it starts as UTF-32 does: save it as UTF-8); allowed: a YAML file in UTF-8",  # 00 00 is UTF-8
    ),
    # YAML 1.2 takes it; PyYAML names the character alone, which an editor shows as spaces
    (
        "a tab after a colon",
        dump({**GOOD, "parameters": {**GOOD["parameters"], "DesiredCount": 1}}).replace("DesiredCount: 1", "DesiredCount:\t1"),
        "found character '\\t' that cannot start any token; allowed: spaces there (a tab, which editors show as spaces)",
    ),
    ("10,000 nested brackets", "region: " + "[" * 10_000 + "]" * 10_000, "levels deep; allowed: at most"),
    ("a list for a scalar", dump({**GOOD, "region": [GOOD["region"]]}), f"region: [{GOOD['region']}] is not supported"),
    ("a list as a key", PROD + "[DesiredCount]: 1\n", "a key must be a plain name"),
    ("nested e-mail lists", prod_parameters(AlertEmails=[["ops@startupwebapp.com"]]), "parameters.AlertEmails"),
    ("a merge key", PROD + "<<: {region: eu-west-1}\n", "'<<': unknown key"),
    (
        "a tag its value does not fit",
        GOOD_TEXT.replace(REGION_LINE, "region: !!int abc", 1),
        f"line {REGION_LINE_NUMBER}: cannot be read as YAML: !!int 'abc': not a valid int",
    ),
    # a tag takes what YAML 1.2 takes untagged: Python's int() and PyYAML's YAML 1.1 booleans read these as 10, 3, true
    *(
        (
            f"!!{tag} {value}",
            GOOD_TEXT.replace(REGION_LINE, f"region: !!{tag} {value}", 1),
            f"!!{tag} {said}: not a valid {tag} in YAML 1.2",
        )
        for tag, value, said in (("int", "1_0", "'1_0'"), ("int", "\u0663", "'\u0663'"), ("bool", "yes", "'yes'"), ("null", "5", "'5'"))
    ),
    # CloudFormation's short form in a params file: PyYAML's "could not determine a constructor" said no more (helper S2)
    *(
        (
            f"a {tag} tag",
            GOOD_TEXT.replace(REGION_LINE, f"region: {tag} x", 1),
            f"line {REGION_LINE_NUMBER}: cannot be read as YAML: could not determine a constructor for the tag '{said}'"
            "; allowed: a plain value, without a tag (!Ref, !Sub and !!python/... are not read)",
        )
        for tag, said in (("!Ref", "!Ref"), ("!!python/object:os.system", "tag:yaml.org,2002:python/object:os.system"))
    ),
    # PyYAML names the colon of the line after a key put back out of its block, and nothing of why
    (
        "a key out of its block",
        GOOD_TEXT + "x:\n  a: 1\nb: 2\n  c: 3\n",
        f"line {GOOD_TEXT.count(chr(10)) + 4}: cannot be read as YAML: mapping values are not allowed here; allowed: keys of one mapping "
        f"indented alike: this line is indented deeper than line {GOOD_TEXT.count(chr(10)) + 3}, whose value it then reads as",
    ),
    # a key a space short of its neighbours sits in no open mapping: PyYAML's "expected <block end>" said nothing of why
    (
        "a key a space short of its neighbours",
        GOOD_TEXT + "x:\n  a: 1\n  # a comment\n\n b: 2\n",
        f"line {GOOD_TEXT.count(chr(10)) + 5}: cannot be read as YAML: expected <block end>, but found '<block mapping start>'; allowed: "
        f"keys of one mapping indented alike: this line is indented 1 space, between the keys of line {GOOD_TEXT.count(chr(10)) + 2} "
        f"(2) and those of line {GOOD_TEXT.count(chr(10)) + 1} (0): give it the indentation of the keys it belongs with",
    ),
    (
        "a key two spaces short of its neighbours",
        GOOD_TEXT + "x:\n    a: 1\n  b: 2\n",
        "this line is indented 2 spaces, between the keys of line",
    ),
    # a key between two nesting levels: both are named, not the nearest key above alone (line 3's, 4, where "d" belongs
    # with b, at 2, or with a, at 0)
    (
        "a key between two nesting levels",
        GOOD_TEXT + "a:\n  b:\n    c: 1\n d: 2\n",
        f"this line is indented 1 space, between the keys of line {GOOD_TEXT.count(chr(10)) + 2} (2) and those of line "
        f"{GOOD_TEXT.count(chr(10)) + 1} (0): ",
    ),
    # PyYAML said "could not find expected ':'" of a line that has one
    (
        "a key of 1,025 characters",
        GOOD_TEXT + "k" * 1025 + ": 1\n",
        "a key of 1025 characters; allowed: at most 1024 (YAML's limit)",
    ),
    # the first key of a block, and of the file: PyYAML words each place apart ("mapping values are not allowed here")
    ("a key of 1,100 characters first in its block", GOOD_TEXT + "x:\n  " + "k" * 1100 + ": 1\n", "a key of 1100 characters; allowed"),
    (
        "a key of 1,100 characters first in the file",
        "k" * 1100 + ": 1\n" + GOOD_TEXT,
        "line 1: cannot be read as YAML: a key of 1100 characters",
    ),
    # the first key of a block is deeper than the line that opens it: no indentation to blame
    (
        "a colon in a block's first value",
        GOOD_TEXT + "x:\n  a: b: c\n",
        "mapping values are not allowed here; allowed: a value holding ': ' in quotes",
    ),
    # a value line holding ": " is no key, however long; a quoted key may hold ": " itself
    ("a long value line", GOOD_TEXT + "x: text\n  " + "w" * 1100 + ": more\n", "indented deeper than line"),
    # under a list item, whose mapping starts after its "- ": no continuation of the item's line
    ("a key of 1,100 characters in a list item", GOOD_TEXT + "x:\n  - a: 1\n    " + "k" * 1100 + ": 2\n", "a key of 1100 characters"),
    # a list item that is a plain text: the deeper line continues it, however long; a mapping item's keys start after
    # the "-" and its spaces, however many
    ("a long line under a text item", GOOD_TEXT + "x:\n  - text\n    " + "k" * 1100 + ": more\n", "indented deeper than line"),
    (
        "a key of 1,100 characters in a list item after two spaces",
        GOOD_TEXT + "x:\n  -  a: 1\n     " + "k" * 1100 + ": 2\n",
        "a key of 1100",
    ),
    ("a quoted key of 1,105 characters", GOOD_TEXT + "'x: " + "k" * 1100 + "': 1\n", "a key of 1105 characters; allowed: at most 1024"),
    # indented as the line before it: no indentation to blame either
    (
        "a colon in a later value",
        GOOD_TEXT + "x:\n  a: 1\n  b: c: d\n",
        "mapping values are not allowed here; allowed: a value holding ': ' in quotes",
    ),
    # a blank line between them is no line of the mapping: the line before it is
    (
        "a key out of its block after a blank line",
        GOOD_TEXT + "x:\n  a: 1\nb: 2\n\n  c: 3\n",
        f"allowed: keys of one mapping indented alike: this line is indented deeper than line {GOOD_TEXT.count(chr(10)) + 3}, whose",
    ),
    (
        "a colon in a value",
        GOOD_TEXT.replace(REGION_LINE, "region: a: b", 1),
        "mapping values are not allowed here; allowed: a value holding ': ' in quotes",
    ),
    # a key of YAML's limit itself is a key: the colon in its value is the mistake
    (
        "a colon in the value of a key of 1,024 characters",
        GOOD_TEXT + "k" * 1024 + ": a: b\n",
        "mapping values are not allowed here; allowed: a value holding ': ' in quotes",
    ),
    # a key is counted without the "- " of its list item, with a colon it holds, and to its colon after a quoted part
    ("a key of 1,100 characters as a list item", GOOD_TEXT + "x:\n  - " + "k" * 1100 + ": 1\n", "a key of 1100 characters; allowed"),
    ("a key of 1,101 characters holding a colon", GOOD_TEXT + "k" * 600 + ":" + "k" * 500 + ": 1\n", "a key of 1101 characters; allowed"),
    ("a quoted part and more as a key", GOOD_TEXT + "'" + "k" * 1100 + "'x: 1\n", "a key of 1103 characters; allowed"),
    # a comment is no line of the mapping, nor a comment after the colon that opens a block
    (
        "a colon in a block's first value after a comment",
        GOOD_TEXT + "x:\n# a comment\n  a: b: c\n",
        "mapping values are not allowed here; allowed: a value holding ': ' in quotes",
    ),
    (
        "a colon in the first value of a block whose line ends in a comment",
        GOOD_TEXT + "x:  # a comment\n  a: b: c\n",
        "mapping values are not allowed here; allowed: a value holding ': ' in quotes",
    ),
    # a second document after "---" (two params files joined): PyYAML's composer puts "expected a single document in the
    # stream" in its context and "but found another document" in its problem, and the line said the problem alone:
    # "cannot be read as YAML: but found another document", with nothing of what was expected (an attacker review)
    (
        "a second document",
        GOOD_TEXT + "---\nregion: eu-west-1\n",
        "cannot be read as YAML: expected a single document in the stream, but found another document; "
        "allowed: one document (a '---' line at most once, above its first key)\n",
    ),
    # what is allowed for a misplaced colon is said of that problem alone (the words end the line)
    ("an unclosed list", GOOD_TEXT + "x: [1\n", "cannot be read as YAML: expected ',' or ']', but got '<stream end>'\n"),
    (
        "a !!map tag on a list",
        GOOD_TEXT + "x: !!map [1]\n",
        "cannot be read as YAML: !!map on a value that is no mapping; allowed: a plain",
    ),
    (
        "a bad date tag",
        GOOD_TEXT.replace(REGION_LINE, "region: !!timestamp 2020-13-45", 1),
        "!!timestamp '2020-13-45': not a valid timestamp",
    ),
    (
        "a 5,000-digit number",
        dump({**GOOD, "parameters": {**GOOD["parameters"], "DesiredCount": 1}}).replace("DesiredCount: 1", "DesiredCount: " + "9" * 5000),
        "a number of 5000",
    ),
    ("a 5,000-digit hex number", GOOD_TEXT + "x: 0x" + "f" * 5000 + "\n", "a number of"),
    (
        "a 31-digit number",
        dump({**GOOD, "parameters": {**GOOD["parameters"], "DesiredCount": 1}}).replace("DesiredCount: 1", "DesiredCount: " + "9" * 31),
        "a number of 31 characters; allowed: up to 30",
    ),
    (
        "a UTF-16 file, big-endian",
        b"\xfe\xff" + PROD.encode("utf-16-be"),
        "byte 0 is not UTF-8 text (it starts as UTF-16 does: save it as UTF-8)",
    ),
    # PyYAML quotes the handle whole: the line is cut to a readable length
    ("a tag handle of 1,000 characters", GOOD_TEXT.replace(REGION_LINE, "region: !" + "h" * 1000 + "!x 1", 1), "undefined tag handle"),
    ("a key of 1,100 characters that opens a block", GOOD_TEXT + "k" * 1100 + ":\n  a: 1\n", "a key of 1100 characters; allowed"),
    ("shared_inputs: []", dump({**GOOD, "shared_inputs": []}), "shared_inputs: [] is not a mapping"),
    ("a key holding a newline", GOOD_TEXT + '"evil\\nerror: forged": 1\n', "unknown key"),
    ("a 100,000-character key", GOOD_TEXT + "? " + "x" * 100_000 + "\n: 1\n", "characters): unknown key"),
    ("a NUL byte", GOOD_TEXT.replace(REGION_LINE, 'region: "us\0east"', 1), "cannot be read as YAML"),
    ("tags: 0", dump({**GOOD, "tags": 0}), "tags: 0 is not a mapping; allowed: tag names with their values (Owner: platform), or none"),
    ("a tag named by a number", dump({**GOOD, "tags": {1: "x"}}), "tags.1: not a tag name"),
    ("enabled_layers: false", dump({**GOOD, "enabled_layers": False}), "enabled_layers: false is not a list"),  # as YAML writes it
    # its items not written: read as none, it removed every optional layer's files
    (
        "enabled_layers: with no value",
        dump({**GOOD, "enabled_layers": None}),
        "enabled_layers: no value (null to YAML); allowed: a list of optional layers (waf, ci), each once, or [] for none",
    ),
    ("smoke_checks: {}", dump({**GOOD, "smoke_checks": {}}), "smoke_checks: {} is not a list"),
    ("an AWS: tag", dump({**GOOD, "tags": {"AWS:cloudformation:x": "y"}}), "not starting with aws: (in any case)"),
    ("aliases (billion laughs)", BILLION_LAUGHS, "anchors (&name) are not allowed"),
    ("an alias alone", GOOD_TEXT.replace(REGION_LINE, "region: *x", 1), "aliases (*name) are not allowed"),
    ("enabled_layers with a list item", dump({**GOOD, "enabled_layers": [["ci"]]}), "enabled_layers: [ci] is not a layer name"),
    # PyYAML ends a line at each, where git diff, grep and editors show one line: "# the region<U+2028>region: ..."
    # looked like a comment and was read as the key (any value: a DeletionProtection: false so)
    *(
        (
            f"a comment hiding a key behind {name}",
            GOOD_TEXT.replace(REGION_LINE, f"# the region{character}{REGION_LINE}", 1),
            f"prod.yaml: line {REGION_LINE_NUMBER}: the character {character!r} ends a line for the YAML reader, but not for git diff",
        )
        for name, character in (("NEL", "\x85"), ("a line separator", "\u2028"), ("a paragraph separator", "\u2029"), ("a lone CR", "\r"))
    ),
    ("a tag name with a space at its end", dump({**GOOD, "tags": {"Environment ": "prod"}}), "no space at either end, not starting"),
    ("a tag value with a space at its start", dump({**GOOD, "tags": {"Owner": " ops"}}), "tags.Owner: ' ops'; allowed: a string"),
    # a letter that shows as nothing: the review showed startupwebapp<U+3164> as startupwebapp
    ("a tag value with an invisible letter", dump({**GOOD, "tags": {"Owner": "ops\u3164"}}), "tags.Owner: 'ops\\u3164'; allowed: a string"),
    # a combining accent read as part of the letter before it: the refused value showed as 'á', with nothing to see wrong
    ("a tag value with a combining accent", dump({**GOOD, "tags": {"Owner": "a\u0301"}}), "tags.Owner: 'a\\u0301'; allowed: a string"),
]


def test_a_params_file_with_windows_line_ends_is_read_as_with_newlines(tmp_path):
    # \r\n ends a line for every tool; a lone \r does not (HOSTILE above)
    windows, unix = tmp_path / "windows", tmp_path / "unix"
    windows.mkdir(), unix.mkdir()
    text = (ROOT / "params" / "sandbox.yaml").read_bytes()
    assert b"\r" not in text
    assert generate(windows, text.replace(b"\n", b"\r\n"), name="sandbox.yaml")[0] == 0
    assert generate(unix, text, name="sandbox.yaml")[0] == 0
    assert snapshot(windows / "out") == snapshot(unix / "out") != {}


@pytest.mark.parametrize(("what", "text", "words"), HOSTILE, ids=[case[0] for case in HOSTILE])
def test_hostile_params_get_one_clear_line_and_nothing_is_written(tmp_path, what, text, words):
    code, stderr, out = generate(tmp_path, text)
    assert code == 2, stderr
    assert words in stderr, stderr[:2000]
    *problems, last = stderr.splitlines()
    assert last == "nothing was written" and problems, stderr[:2000]
    # each problem one line of its own, naming the file, of a readable length: none split or forged by the input
    assert all(line.startswith("error: ") and "prod.yaml" in line and len(line) < 600 for line in problems), stderr[:2000]
    assert not out.exists()


def test_a_second_document_before_the_first_key_is_not_told_to_drop_a_line_after_its_first_key(tmp_path):
    # a params file that starts with "---" twice (a header pasted above one that had it): PyYAML reads an empty first
    # document and the keys as a second one. The line said "allowed: one document (no '---' line after its first key)",
    # which the file keeps already: both '---' lines are above its first key, and the advice leads nowhere (an attacker review).
    code, stderr, out = generate(tmp_path, "---\n---\n" + GOOD_TEXT)
    assert code == 2, stderr[:2000]
    assert (
        "line 2: cannot be read as YAML: expected a single document in the stream, but found another document; "
        "allowed: one document (a '---' line at most once, above its first key)\n" in stderr
    ), stderr[:2000]


def test_nesting_is_refused_one_level_past_the_limit_not_at_python_recursion_limit():
    from templates.params import MAX_NESTING, parse_yaml

    def nested(levels):  # the top mapping is one level, each list another
        return "a: " + "[" * (levels - 1) + "x" + "]" * (levels - 1)

    assert parse_yaml(nested(MAX_NESTING)) == {"a": functools.reduce(lambda inner, _: [inner], range(MAX_NESTING - 1), "x")}
    with pytest.raises(yaml.YAMLError, match=f"nested more than {MAX_NESTING} levels deep") as refused:
        parse_yaml(nested(MAX_NESTING + 1))
    assert refused.value.problem_mark.column == len("a: ") + MAX_NESTING - 1  # at the bracket too many


def test_aliases_are_refused_at_once_not_expanded(tmp_path):
    path = tmp_path / "prod.yaml"
    path.write_text(BILLION_LAUGHS)
    with pytest.raises(Exception, match="not allowed"):
        load(path)  # with aliases expanded this took over 60 s and gigabytes


@pytest.mark.parametrize(
    ("line", "key", "value"),
    [
        ("TaskMemory: 02048", "TaskMemory", "2048"),  # YAML 1.1: octal 1064
        ("ContainerUser: 1000:59", "ContainerUser", "1000:59"),  # YAML 1.1: base 60, 60059
        ("ImageTag: 2025-01-31", "ImageTag", "2025-01-31"),  # YAML 1.1: a date
        ("ApiHostLabel: on", "ApiHostLabel", "on"),  # YAML 1.1: true
    ],
)
def test_what_the_file_says_is_what_is_deployed(tmp_path, line, key, value):
    # 2048 MB is a size 0.5 vCPU takes, whatever size params/prod.yaml sets
    lines = [line, "TaskCpu: 512"] if key == "TaskMemory" else [line]
    given = {entry.split(":", 1)[0] for entry in lines}
    kept = [kept for kept in PROD.splitlines(keepends=True) if kept.strip().split(":", 1)[0] not in given or not kept.startswith("  ")]
    path = tmp_path / "prod.yaml"
    path.write_text("".join(kept).replace("parameters:\n", "parameters:\n" + "".join(f"  {entry}\n" for entry in lines), 1))
    assert load(path).values[key] == value


SILENTLY_ACCEPTED = [
    (
        "private subnets equal to the public ones",
        prod_parameters(PrivateSubnetIds=GOOD["parameters"]["PublicSubnetIds"]),
        "parameters.PrivateSubnetIds: " + ", ".join(sorted(GOOD["parameters"]["PublicSubnetIds"])) + " also in PublicSubnetIds",
    ),
    ("more than 47 tags", dump({**GOOD, "tags": {f"Tag{i}": "x" for i in range(48)}}), "allowed: at most 47"),
    ("a tag value over 256 characters", dump({**GOOD, "tags": {"Owner": "x" * 257}}), "tags.Owner"),
    ("a tag value with a newline", dump({**GOOD, "tags": {"Owner": "a\nb"}}), "(no newline, no space at either end)"),
    (
        "a database secret in a mistyped region",
        prod_parameters(
            DatabaseSecretArn=re.sub(r"^(arn:aws:secretsmanager:)[^:]+", r"\1us-esat-1", GOOD["parameters"]["DatabaseSecretArn"])
        ),
        "not a region this project supports (mistyped?)",
    ),
    # CloudFormation's Tag.Value: "Minimum length of 1" (API_Tag.html); the deploy failed after its first calls
    ("an empty tag value", dump({**GOOD, "tags": {"Owner": ""}}), "tags.Owner: ''; allowed: a string of 1 to 256"),
    # "CostCenter: 12: allowed: ... letters, digits" read as a contradiction: the value is a number to YAML
    (
        "a tag value YAML reads as a number",
        dump({**GOOD, "tags": {"Owner": 12}}),
        "(no newline, no space at either end), in quotes (unquoted, YAML reads it as a number)",
    ),
    (
        "a tag value YAML reads as true",
        dump({**GOOD, "tags": {"Owner": True}}),
        "tags.Owner: true; allowed: a string of 1 to 256 letters, digits, spaces and _.:/=+-@ (no newline, no space at either end), in quotes (unquoted, YAML reads it as true or false)",
    ),
    ("a tag overriding Project", dump({**GOOD, "tags": {"Project": "other"}}), "the deployer sets Project itself"),
    ("a tag overriding Environment", dump({**GOOD, "tags": {"Environment": "staging"}}), "sets Environment itself"),
    # no secret has a name past Secrets Manager's 512 characters: a deploy with it would fail each task's start
    (
        "a database secret whose name is longer than a secret's may be",
        prod_parameters(
            DatabaseSecretArn=re.sub(r"(:secret:[^-]+)", lambda m: m[1] + "x" * MOST_SECRET_NAME, GOOD["parameters"]["DatabaseSecretArn"])
        ),
        f"of at most {MOST_SECRET_NAME} characters, and ends in -XXXXXX",
    ),
    # IAM takes tag names that differ only in case for one, and refuses a role given both: the service layer's create failed
    (
        "the deployer's tag in another case",
        dump({**GOOD, "tags": {"environment": "x"}}),
        "tags.environment: the same name as the deployer's Environment but for case, which IAM takes for one tag",
    ),
    (
        "the deployer's tag in capitals",
        dump({**GOOD, "tags": {"ENVIRONMENT": "x"}}),
        "tags.ENVIRONMENT: the same name as the deployer's Environment but for case",
    ),
    # AWS's tag keys: "Maximum length of 128" (API_Tag.html)
    ("a tag name over 128 characters", dump({**GOOD, "tags": {"k" * 129: "x"}}), "not a tag name; allowed: up to 128"),
    (
        "two tags that differ only in case",
        dump({**GOOD, "tags": {"CostCenter": "a", "costcenter": "b"}}),
        "tags.costcenter: the same name as tags.CostCenter but for case, which IAM takes for one tag (a role given both is refused); "
        "allowed: a name no other tag has in any case",
    ),
]


@pytest.mark.parametrize(("what", "text", "words"), SILENTLY_ACCEPTED, ids=[case[0] for case in SILENTLY_ACCEPTED])
def test_bad_values_once_accepted_are_refused(tmp_path, what, text, words):
    code, stderr, out = generate(tmp_path, text)
    assert code == 2 and words in stderr, stderr
    assert not out.exists()


@pytest.mark.parametrize(
    "value, said",
    [
        ("!!timestamp 2026-01-02", "a date (!!timestamp 2026-01-02)"),  # (a plain date is read as text)
        ("!!binary djE=", "binary data (!!binary, 2 bytes)"),
        ("!!set {v1: null}", "a set (!!set)"),
    ],
)
def test_a_value_of_a_yaml_type_no_input_takes_is_named_as_yaml_names_it(tmp_path, value, said):
    code, stderr, _ = generate(tmp_path, prod_parameters(ImageTag="image-tag-here").replace("image-tag-here", value))
    assert code == 2 and f"parameters.ImageTag: {said} is not allowed" in stderr, stderr


def test_a_quoted_number_is_told_to_lose_its_quotes(tmp_path):
    code, stderr, _ = generate(tmp_path, prod_parameters(DesiredCount="2"))
    (line,) = [line for line in stderr.splitlines() if "DesiredCount" in line]
    assert code == 2 and "'2' is not allowed; allowed: a whole number" in line and line.endswith(", without quotes"), stderr
    code, stderr, _ = generate(tmp_path, prod_parameters(DesiredCount="-1"))  # not allowed with or without them
    assert code == 2 and "without quotes" not in stderr and "DesiredCount: '-1' is not allowed" in stderr, stderr
    code, stderr, _ = generate(tmp_path, prod_parameters(DesiredCount="٢"))  # an Arabic-Indic 2: YAML reads no number in it, quoted or not
    assert code == 2 and "without quotes" not in stderr and "DesiredCount: '٢' is not allowed" in stderr, stderr
    code, stderr, _ = generate(tmp_path, prod_parameters(DesiredCount="2\x1c"))  # white space to \s, not to int(): was a traceback
    assert code == 2 and "Traceback" not in stderr and "without quotes" not in stderr and "parameters.DesiredCount: " in stderr, stderr
    code, stderr, _ = generate(tmp_path, prod_parameters(DesiredCount="9" * 5000))  # past int()'s digit limit
    assert code == 2 and "DesiredCount: '99999" in stderr and "Traceback" not in stderr, stderr


def test_a_huge_value_is_quoted_by_its_start_end_and_length_not_whole(tmp_path):
    code, stderr, _ = generate(tmp_path, prod_parameters(NamePrefix="a" + "x" * 9_998 + "z"))
    (line,) = [line for line in stderr.splitlines() if "NamePrefix" in line]
    assert code == 2 and "'axxx" in line and "xxxz' (10000 characters) is not allowed; allowed:" in line and len(line) < 400, line


def test_a_long_arn_is_quoted_whole_and_a_longer_one_keeps_its_end(tmp_path):
    """The end of a secret ARN is what tells two apart: a realistic one is quoted whole, and past 200
    characters its end still shows."""
    from templates.params import shown

    realistic = "arn:aws:secretsmanager:us-east-1:123456789012:secret:startupwebapp/production/database/primary-AbCdEf"
    assert shown(realistic) == repr(realistic)
    assert shown("a" * 198) == repr("a" * 198) and shown("a" * 199) != repr("a" * 199)  # 200 characters quoted, and no more
    longer = realistic.replace("primary", "p" * 150)
    assert shown(longer).startswith(repr(longer)[:40]) and f"{'p' * 20}-AbCdEf' ({len(longer)} characters)" in shown(longer)


def test_two_environments_may_not_serve_the_same_host_in_one_zone(tmp_path):
    qa = {
        "NamePrefix": "startupwebapp-qa",
        "BackendSecurityGroupId": "sg-0fedcba987654321f",
        "DatabaseSecretArn": GOOD["parameters"]["DatabaseSecretArn"].replace("/db-", "/qa/db-"),
        "DatabaseName": "startupwebapp_qa",
        "GitHubSubjects": ["environment:prod"],  # no staging here
    }
    prod = prod_parameters(GitHubSubjects=qa["GitHubSubjects"])

    def qa_parameters(**changes):  # without the ci layer, which an account has once (prod's)
        return dump(
            {
                **GOOD,
                "enabled_layers": without_ci(GOOD),
                "parameters": {**GOOD["parameters"], **changes},
            }
        )

    code, stderr, _ = generate(tmp_path, qa_parameters(**qa), name="qa.yaml", others=[("prod.yaml", prod)])
    assert code == 2, stderr
    prod = load(ROOT / "params" / "prod.yaml").values
    label, host = prod["ApiHostLabel"], f"{prod['ApiHostLabel']}.{prod['DomainName']}"
    assert f"prod.yaml and {tmp_path}/params/qa.yaml: parameters.ApiHostLabel: both {label!r}" in stderr
    assert f"which makes {host} in the same hosted zone for both" in stderr
    assert generate(tmp_path, qa_parameters(**qa, ApiHostLabel=f"{label}-qa"), name="qa.yaml")[0] == 0


# --- output/: only generation's own files, all old or all new, never unlinted -----------------
def ctrl_c_then(call):
    """call, after a SIGINT to this process: the Ctrl-C comes as it starts."""

    def stopped_then(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)
        return call(*args, **kwargs)

    return stopped_then


def generate_in_process(out, *extra):
    import generate

    return generate.main(["--params-dir", str(ROOT / "params"), "--output-dir", str(out), *extra])


def generation_stderr(capsys):
    """What generation said on stderr since the last read, its warnings of params values that go nowhere left out."""
    return without_unused_value_warnings(capsys.readouterr().err)


def snapshot(directory):
    return {p.relative_to(directory): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def test_files_generation_did_not_write_are_never_deleted(tmp_path, capsys):
    out = tmp_path / "site"
    (out / "sub").mkdir(parents=True)
    (out / "package.json").write_text("{}")
    (out / "sub" / "settings.json").write_text("{}")
    assert generate_in_process(out, "--no-lint") == 2
    err = generation_stderr(capsys)
    assert err == (
        f"error: {out}/ holds files generation did not write: package.json, sub/settings.json; it writes only <layer>.json, "
        "<env>/<layer>.json and review/<env>.md there and removes stale ones of those, never another file (one named so counts as "
        "its own only with its content: a configuration's Project, Environment and Layer tags, a document's title): move or delete "
        "them, or use an empty directory\nnothing was written\n"  # output/'s: then run make templates again
    ), err
    assert snapshot(out) == {Path("package.json"): b"{}", Path("sub/settings.json"): b"{}"}


@pytest.mark.parametrize("content", ['{"mine": 1}', "[" * 200_000 + "]" * 200_000], ids=["another's", "nested past json"])
def test_a_file_named_as_an_environments_but_not_generations_is_refused_by_generation_and_not_called_stale(tmp_path, capsys, content):
    # The review's --check called it stale and advised generate.py, which refused it; one nested deeper
    # than json parses was a RecursionError traceback in both.
    from scripts import review

    out = tmp_path / "out"
    assert generate_in_process(out, "--no-lint") == 0
    assert review.main(["--output-dir", str(out)]) == 0
    stray = "nowhere"  # shaped as an environment's name, and none is (README's example "qa" may well be)
    assert not (ROOT / "params" / f"{stray}.yaml").exists()
    (out / stray).mkdir()
    (out / stray / "alb.json").write_text(content)
    capsys.readouterr()
    assert generate_in_process(out, "--no-lint", "--check") == 2
    said = capsys.readouterr().err
    assert said.startswith(f"error: {out}/ holds files generation did not write: {stray}/alb.json; "), said
    assert review.main(["--check", "--output-dir", str(out)]) == 0, capsys.readouterr().err  # its documents are current
    assert "Traceback" not in said + capsys.readouterr().err and (out / stray / "alb.json").read_text() == content


def generated_then_all_outdated(out: Path) -> dict:
    """out/ generated, then every file edited so that the next generation must rewrite each; its snapshot."""
    assert generate_in_process(out, "--no-lint") == 0
    for path in out.rglob("*.json"):
        path.write_text(path.read_text().replace('"2010-09-09"', '"old"'))
    return snapshot(out)


def test_a_stale_file_that_cannot_be_removed_leaves_output_as_it_was(tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    assert generate_in_process(out, "--no-lint") == 0
    # the configuration of a layer an environment does not deploy: generation removes it
    env, layer = next((e.name, name) for e in load_all(ROOT / "params") for name in templates.LAYERS if not e.deploys(name))
    left = out / env / f"{layer}.json"
    left.write_text(json.dumps({"Parameters": {}, "Tags": templates.own_tags(env, layer)}))  # as generation wrote it once
    (out / "alb.json").write_text("{}\n")  # and one file to write again
    before = snapshot(out)
    unlink = Path.unlink

    def refused(path, *args, **kwargs):
        if path == left:
            raise PermissionError(13, "Permission denied", str(path))
        return unlink(path, *args, **kwargs)

    monkeypatch.setattr(Path, "unlink", refused)
    capsys.readouterr()
    assert generate_in_process(out, "--no-lint") == 1
    err = generation_stderr(capsys)
    assert err == f"error: cannot remove {left}: Permission denied; nothing was changed\n", err
    assert snapshot(out) == before  # the file written before the refusal was put back


def test_a_stale_file_gone_by_itself_before_a_later_refusal_is_no_part_of_the_put_back(tmp_path, capsys, monkeypatch):
    # Removed by someone between the look and the removal, it is missing when what was done goes back:
    # that is no reason to call output/ part old, part new.

    out = tmp_path / "out"
    assert generate_in_process(out, "--no-lint") == 0
    gone, refused = [
        out / env / f"{layer}.json"
        for env, layer in itertools.islice(
            ((e.name, name) for e in load_all(ROOT / "params") for name in templates.LAYERS if not e.deploys(name)), 2
        )
    ]
    for path in (gone, refused):  # configurations of layers their environments do not deploy, as generation wrote them once
        path.write_text(json.dumps({"Parameters": {}, "Tags": templates.own_tags(path.parent.name, path.stem)}))
    gone_by_itself_and_removal_refused(monkeypatch, gone, refused)
    assert generate_in_process(out, "--no-lint") == 1
    assert capsys.readouterr().err.endswith(f"error: cannot remove {refused}: Permission denied; nothing was changed\n")
    assert refused.exists() and not gone.exists()


def gone_by_itself_and_removal_refused(monkeypatch, gone, refused):
    """generation's put-back keeps gone, which then goes by itself (meanwhile, someone else), and the removal of refused
    is refused."""
    from templates import generation

    real_keep, unlink = generation.keep_previous, Path.unlink

    def removed_meanwhile(path, kept):
        if path == gone:
            unlink(path)
        return real_keep(path, kept)

    def refuse(path, *args, **kwargs):
        if path == refused:
            raise PermissionError(13, "Permission denied", str(path))
        return unlink(path, *args, **kwargs)

    monkeypatch.setattr(generation, "keep_previous", removed_meanwhile)
    monkeypatch.setattr(Path, "unlink", refuse)


def test_a_failed_removal_leaves_a_removed_environments_directory_though_its_one_file_went_by_itself(tmp_path, capsys, monkeypatch):
    # The clean-up that removes a removed environment's directory once empty comes only once output/ is new as a whole:
    # after a refusal output/ is old, and the directory stays, though the file it held went meanwhile by itself.

    out = tmp_path / "out"
    assert generate_in_process(out, "--no-lint") == 0
    env, layer = next((e.name, name) for e in load_all(ROOT / "params") for name in templates.LAYERS if not e.deploys(name))
    gone_env = next(f"a{n}" for n in range(100) if not (ROOT / "params" / f"a{n}.yaml").exists())  # first in the sorted removals
    gone, refused = out / gone_env / f"{layer}.json", out / env / f"{layer}.json"
    gone.parent.mkdir()
    for path in (gone, refused):  # as generation wrote them once
        path.write_text(json.dumps({"Parameters": {}, "Tags": templates.own_tags(path.parent.name, path.stem)}))
    gone_by_itself_and_removal_refused(monkeypatch, gone, refused)
    assert generate_in_process(out, "--no-lint") == 1
    assert capsys.readouterr().err.endswith(f"error: cannot remove {refused}: Permission denied; nothing was changed\n")
    assert refused.exists() and gone.parent.is_dir() and not gone.exists()


def test_the_files_of_an_environment_whose_params_file_is_gone_are_removed_with_their_directory(tmp_path, capsys):
    out = tmp_path / "out"
    assert generate_in_process(out, "--no-lint") == 0
    # generated while params/<name>.yaml was there: a name no params file has today
    gone = out / next(f"gone{n}" for n in range(100) if not (ROOT / "params" / f"gone{n}.yaml").exists())
    shutil.copytree(next(path for path in out.iterdir() if path.is_dir() and path.name != "review"), gone)
    for path in gone.iterdir():  # with the tags generation gave that environment's configurations
        document = json.loads(path.read_text())
        path.write_text(json.dumps(document | {"Tags": document["Tags"] | {"Environment": gone.name}}))
    assert generate_in_process(out, "--no-lint") == 0
    assert not gone.exists() and f"{len(list(out.rglob('*.json')))} files, 0 written, " in capsys.readouterr().out


def test_a_failed_write_leaves_the_old_output_whole(tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    before = generated_then_all_outdated(out)
    written = []
    real_write = Path.write_text

    def disk_fills_up(path, *args, **kwargs):
        if len(written) == 5:
            raise OSError(28, "No space left on device")  # as write() says it: no file named
        written.append(path)
        return real_write(path, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", disk_fills_up)
    assert generate_in_process(out, "--no-lint") == 1
    err = generation_stderr(capsys)
    assert err.startswith(f"error: cannot write {out}/: No space left on device; nothing was written"), err
    assert snapshot(out) == before  # not one file replaced, no staging directory left
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize("stop", ["a directory in its place", "Ctrl-C"])
def test_a_file_that_cannot_be_replaced_puts_back_the_ones_already_replaced(tmp_path, capsys, monkeypatch, stop):
    # Staged and linted, the new files replace the old ones one by one: at the fifth, a directory in
    # its place (or a refusing disk) or Ctrl-C, and the four before it go back to what they were.

    from templates import generation

    out = tmp_path / "out"
    before = generated_then_all_outdated(out)
    replaced, real_replace = [], os.replace

    def fifth_fails(source, target):
        replaced.append(target)
        if len(replaced) == 5:
            if stop == "Ctrl-C":
                raise KeyboardInterrupt
            raise IsADirectoryError(21, "Is a directory", str(source), None, str(target))
        return real_replace(source, target)

    monkeypatch.setattr(generation.os, "replace", fifth_fails)
    code, err = generate_in_process(out, "--no-lint"), generation_stderr(capsys)
    if stop == "Ctrl-C":
        assert (code, err) == (130, "interrupted\n")
    else:
        assert code == 1 and err == f"error: cannot write {replaced[4]}: Is a directory; nothing was changed\n", err
    assert snapshot(out) == before  # the four replaced ones put back, no staging directory left
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize("when", ["right after the fifth move", "in the clean-up"])
def test_a_stop_signal_once_the_moves_began_acts_when_output_is_new_as_a_whole(tmp_path, capsys, monkeypatch, when):
    # A Ctrl-C between a move and its record left that file out of the put-back (output/ part new,
    # with no word of it); one in the clean-up left the staging directory, with the old files, behind.
    import shutil
    import signal

    from templates import generation

    out = tmp_path / "out"
    before = generated_then_all_outdated(out)
    assert generate_in_process(tmp_path / "fresh", "--no-lint") == 0
    capsys.readouterr()
    fresh = snapshot(tmp_path / "fresh")
    count = sum(before.get(name) != content for name, content in fresh.items())
    moves, real_replace, real_rmtree = [], os.replace, shutil.rmtree

    def ctrl_c_after_the_fifth(source, target):
        real_replace(source, target)
        moves.append(target)
        if len(moves) == 5:
            os.kill(os.getpid(), signal.SIGINT)

    if when == "in the clean-up":
        monkeypatch.setattr(generation.shutil, "rmtree", ctrl_c_then(real_rmtree))
    else:
        monkeypatch.setattr(generation.os, "replace", ctrl_c_after_the_fifth)
    code, captured = generate_in_process(out, "--no-lint"), capsys.readouterr()
    assert (code, without_unused_value_warnings(captured.err)) == (130, "interrupted\n")
    assert captured.out == f"{out}/: {count} written, 0 removed before the stop\n"
    assert count > 5 and snapshot(out) == fresh  # every file new, and no staging directory left


def test_a_failure_in_the_moves_is_said_though_a_stop_signal_came_meanwhile(tmp_path, capsys, monkeypatch):
    # The held Ctrl-C acted at the end of the hold and took the failure's place: "interrupted" alone,
    # while the put-back itself had failed and output/ was part old, part new.
    import signal

    from templates import generation

    out = tmp_path / "out"
    generated_then_all_outdated(out)
    moves, real_replace = [], os.replace

    def ctrl_c_then_every_later_replace_refused(source, target):
        moves.append(target)
        if len(moves) == 2:
            os.kill(os.getpid(), signal.SIGINT)
        if len(moves) >= 4:
            raise PermissionError(13, "Permission denied", str(source), None, str(target))
        return real_replace(source, target)

    monkeypatch.setattr(generation.os, "replace", ctrl_c_then_every_later_replace_refused)
    code, err = generate_in_process(out, "--no-lint"), generation_stderr(capsys)
    assert (code, err) == (
        1,
        f"error: cannot write {moves[3]}: Permission denied; output/ is part old, part new: run make templates again once the cause is gone\n",
    )


def test_cfn_lint_that_cannot_run_is_one_line_and_nothing_is_written(tmp_path, capsys, monkeypatch):
    # A refused fork (cfn-lint lints in worker processes) was a traceback.
    from templates import generation

    out = tmp_path / "out"
    before = generated_then_all_outdated(out)

    def no_fork(*args, **kwargs):
        raise BlockingIOError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(generation, "lint", no_fork)
    code, err = generate_in_process(out), generation_stderr(capsys)
    assert (code, err) == (1, "error: cfn-lint could not run: Resource temporarily unavailable; nothing was written\n")
    assert snapshot(out) == before  # and no staging directory


@pytest.mark.parametrize("second", [False, True], ids=["one", "a second in the clean-up"])
def test_a_stop_signal_between_the_lint_and_the_moves_leaves_no_staging_directory(tmp_path, capsys, monkeypatch, second):
    # Two stop signals at once (a closed terminal's SIGHUPs: the shell's, the system's): the second, as the staging
    # directory was removed, left it behind.
    from templates import generation

    out = tmp_path / "out"
    before = generated_then_all_outdated(out)

    def stopped(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(generation, "commit", stopped)
    if second:
        monkeypatch.setattr(generation.shutil, "rmtree", ctrl_c_then(shutil.rmtree))
    assert generate_in_process(out, "--no-lint") == 130
    assert snapshot(out) == before


def test_a_stop_signal_in_the_clean_up_still_removes_a_removed_environments_directory(tmp_path, capsys, monkeypatch):

    from templates import generation

    out, params = tmp_path / "out", shutil.copytree(ROOT / "params", tmp_path / "params")
    assert generate_in_process(out, "--no-lint") == 0
    gone = params / f"{SANDBOX_ENV}.yaml"  # no other environment names it (a GitHub subject, a shared input)
    gone.unlink()
    monkeypatch.setattr(generation.shutil, "rmtree", ctrl_c_then(shutil.rmtree))
    import generate

    assert generate.main(["--params-dir", str(params), "--output-dir", str(out), "--no-lint"]) == 130
    assert not (out / gone.stem).exists() and (out / "alb.json").exists()


def test_a_ctrl_c_while_the_files_are_staged_leaves_no_staging_directory(tmp_path, capsys, monkeypatch):
    # stage() removes its directory whatever stops it: a Ctrl-C between two staged files (not only a refusing disk)
    # left output/.staging-*/ behind, which make check then names as a killed run's.
    from templates import generation

    out = tmp_path / "out"
    before = generated_then_all_outdated(out)
    staged, real_chmod = [], os.chmod

    def ctrl_c_at_the_third_staged_file(path, mode, *args, **kwargs):
        if ".staging-" in str(path):
            staged.append(path)
            if len(staged) == 3:
                raise KeyboardInterrupt
        return real_chmod(path, mode, *args, **kwargs)

    monkeypatch.setattr(generation.os, "chmod", ctrl_c_at_the_third_staged_file)
    code, err = generate_in_process(out, "--no-lint"), generation_stderr(capsys)
    assert (code, err, len(staged)) == (130, "interrupted\n", 3)
    assert snapshot(out) == before
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []


def test_a_ctrl_c_the_put_back_undid_claims_no_file_written(tmp_path, capsys, monkeypatch):
    # commit says "N written, M removed before the stop" once output/ is new as a whole; a Ctrl-C that move_in undid
    # (output/ old as a whole again) must not say files were written.
    from templates import generation

    out = tmp_path / "out"
    before = generated_then_all_outdated(out)
    capsys.readouterr()
    replaced, real_replace = [], os.replace

    def ctrl_c_at_the_fifth(source, target):
        replaced.append(target)
        if len(replaced) == 5:
            raise KeyboardInterrupt
        return real_replace(source, target)

    monkeypatch.setattr(generation.os, "replace", ctrl_c_at_the_fifth)
    code, captured = generate_in_process(out, "--no-lint"), capsys.readouterr()
    assert (code, captured.out, without_unused_value_warnings(captured.err)) == (130, "", "interrupted\n")
    assert snapshot(out) == before


def test_a_refused_first_generation_leaves_no_environment_directory_behind(tmp_path, capsys, monkeypatch):
    # Into a new output directory: the environment directories the moves made go with the files.
    from templates import generation

    out, real_replace, environments = tmp_path / "out", os.replace, []

    def second_environment_fails(source, target):
        if Path(target).parent not in (out, *environments):
            environments.append(Path(target).parent)
        if len(environments) == 2:
            raise IsADirectoryError(21, "Is a directory", str(source), None, str(target))
        return real_replace(source, target)

    monkeypatch.setattr(generation.os, "replace", second_environment_fails)
    assert generate_in_process(out, "--no-lint") == 1
    assert "Is a directory; nothing was changed" in capsys.readouterr().err
    assert list(out.iterdir()) == [], list(out.rglob("*"))


def test_an_old_file_of_gigabytes_is_put_back_as_it_was_without_being_read(tmp_path, capsys, monkeypatch):
    # The old files were read into memory to be put back: a 3 GB one in output/ took 3 GB, or a MemoryError's traceback.
    from templates import generation

    out = tmp_path / "out"
    generated_then_all_outdated(out)
    big = out / "alb.json"
    os.truncate(big, 1 << 30)  # sparse: 1 GiB that takes no disk
    inode, real_replace, moved = big.stat().st_ino, os.replace, []

    def the_next_after_alb_fails(source, target):  # once: putting back the moved ones then works
        if len(moved) == 1:
            moved.append(target)
            raise IsADirectoryError(21, "Is a directory", str(source), None, str(target))
        if Path(target) == big:
            moved.append(target)
        return real_replace(source, target)

    monkeypatch.setattr(generation.os, "replace", the_next_after_alb_fails)
    assert generate_in_process(out, "--no-lint") == 1
    # moved in, the next refused, and the old file put back through os.replace, not rewritten
    assert moved[0] == big and moved[1] != big and "Is a directory; nothing was changed" in capsys.readouterr().err
    assert (big.stat().st_ino, big.stat().st_size) == (inode, 1 << 30)  # the file itself, back in place


def test_an_old_file_that_cannot_be_kept_to_put_back_is_named_as_in_output_and_nothing_changes(tmp_path, capsys, monkeypatch):
    from templates import generation

    out = tmp_path / "out"
    before = generated_then_all_outdated(out)

    def full(source, target, *args, **kwargs):
        raise OSError(28, "No space left on device", str(source), None, str(target))

    monkeypatch.setattr(generation.os, "link", full)
    monkeypatch.setattr(generation.shutil, "copy2", full)
    assert generate_in_process(out, "--no-lint") == 1
    err = generation_stderr(capsys)
    assert ".staging-" not in err and ": No space left on device; nothing was changed" in err, err
    assert snapshot(out) == before


def test_a_garbled_output_file_is_replaced_like_any_other(tmp_path):
    out = tmp_path / "out"
    generated_then_all_outdated(out)
    (out / "alb.json").write_bytes(b"\xff\xfe not UTF-8")
    assert generate_in_process(out, "--no-lint") == 0
    assert json.loads((out / "alb.json").read_text())["Resources"]


def test_a_directory_where_a_generated_file_goes_is_named_and_the_files_moved_before_it_go_back(tmp_path, capsys):
    # no stand-in for the disk: keep_previous keeps nothing of a directory (a hard link to one is refused, EPERM),
    # and the move itself then names it as the system says it
    out = tmp_path / "out"
    generated_then_all_outdated(out)
    blocked = out / "service.json"
    blocked.unlink()
    blocked.mkdir()
    before = snapshot(out)
    assert generate_in_process(out, "--no-lint") == 1
    err = generation_stderr(capsys)
    assert err == f"error: cannot write {blocked}: Is a directory; nothing was changed\n", err
    assert snapshot(out) == before and blocked.is_dir()
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []


def test_a_put_back_the_disk_refuses_too_is_said_not_hidden(tmp_path, capsys, monkeypatch):

    from templates import generation

    out = tmp_path / "out"
    generated_then_all_outdated(out)
    replaced, real_replace = [], os.replace

    def refused_from_the_fifth(source, target):  # the fifth move in, and then putting back the moved ones
        replaced.append(target)
        if len(replaced) >= 5:
            raise OSError(28, "No space left on device", str(source), None, str(target))
        return real_replace(source, target)

    monkeypatch.setattr(generation.os, "replace", refused_from_the_fifth)
    assert generate_in_process(out, "--no-lint") == 1
    err = generation_stderr(capsys)
    assert (
        f"cannot write {replaced[4]}: No space left on device; output/ is part old, part new: run make templates again once the cause is gone"
        in err
    )


def test_a_template_cfn_lint_rejects_is_not_written_and_fails_the_check(tmp_path, capsys, monkeypatch):
    from templates import scaling

    out = tmp_path / "out"
    assert generate_in_process(out, "--no-lint") == 0
    before = snapshot(out)
    build = scaling.build

    def broken():
        template = build()
        for resource in template.resources.values():
            if resource.resource_type == "AWS::ApplicationAutoScaling::ScalableTarget":
                resource.ScalableDimension = "ecs:service:DesiredCont"
        return template

    monkeypatch.setattr(scaling, "build", broken)
    assert generate_in_process(out) == 1
    err = generation_stderr(capsys)
    assert f"{out}/scaling.json" in err and "nothing was written" in err and ".staging-" not in err
    *problems, summary = err.splitlines()  # cfn-lint's lines as it words them, then their count
    assert problems and summary == f"cfn-lint: {len(problems)} problems; nothing was written", err
    assert snapshot(out) == before
    # written anyway (as --no-lint does), the check that `make deploy` runs first still refuses it
    assert generate_in_process(out, "--no-lint") == 0
    # and so does make templates, which then writes nothing: it lints the templates already in place too, not the changed alone
    capsys.readouterr()
    assert generate_in_process(out) == 1
    err = generation_stderr(capsys)
    assert f"{out}/scaling.json" in err and err.endswith("; nothing was written\n"), err
    assert generate_in_process(out, "--check") == 1
    assert "cfn-lint:" in capsys.readouterr().err


# --- the sandbox: its state files and its server ---------------------------------------------
# Where a release is when Ctrl-C comes: the line of `make deploy`'s output after which it is sent.
RELEASE_POINTS = {
    "the order is known, nothing is changed yet": "order: ",
    "the service's change set is shown": "change set startupwebapp-sandbox-service-",
    "the service stack's update is being followed": "UPDATE_IN_PROGRESS",
    "the service stack is updated (the release is being recorded)": "startupwebapp-sandbox-service: UPDATE_COMPLETE",
}


# `make deploy` that signals its own process group (as Ctrl-C or a closed terminal reaches it) the moment
# it writes a line holding argv[1]: at that point exactly (signalled by the test once it had read the
# line, the deploy could go on past it first).
STOPPED_AT_A_LINE = """
import os, runpy, signal, sys
marker, number = sys.argv[1], int(sys.argv[2])
# As in a terminal: a test run started in the background of a shell without job control (bash's
# `pytest &`) ignores SIGINT, and its children inherit that; Python would then ignore Ctrl-C too.
signal.signal(signal.SIGINT, signal.default_int_handler)
signal.signal(signal.SIGHUP, signal.SIG_DFL)
sys.argv = ["scripts.deploy", *sys.argv[3:]]
class Tripwire:
    def __init__(self, stream):
        self.stream = stream
    def write(self, text):
        written = self.stream.write(text)
        if marker in text:
            self.stream.flush()
            os.killpg(os.getpgrp(), number)
        return written
    def __getattr__(self, name):
        return getattr(self.stream, name)
sys.stdout = Tripwire(sys.stdout)
runpy.run_module("scripts.deploy", run_name="__main__", alter_sys=True)
"""


def stop_if_running(process) -> None:
    """A `make deploy` a test started and gave up on (it hung past its bound) must not go on writing
    into the session's sandbox while later tests use it: its whole process group goes."""
    import signal

    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def test_ctrl_c_in_a_deploy_leaves_the_sandbox_and_its_stacks(seeded_sandbox):
    import signal

    from emulator.sandbox import environment

    box, env, command = seeded_sandbox

    def interrupted(argv, point, stop):
        # Ctrl-C reaches the whole foreground process group: the deploy signals its own (a new session)
        python, _, _, *arguments = argv  # [python, -m, scripts.deploy, ...]
        deploy = subprocess.Popen(
            [python, "-c", STOPPED_AT_A_LINE, RELEASE_POINTS[point], str(int(stop)), *arguments],
            cwd=ROOT,
            env=env,
            start_new_session=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            printed, _ = deploy.communicate(timeout=120)  # a deploy that hangs must not hang the run
        finally:
            stop_if_running(deploy)
        assert RELEASE_POINTS[point] in printed, f"the deploy ended before {point!r}:\n{printed}"
        assert deploy.returncode != 0, f"the deploy interrupted when {point} went on to succeed:\n{printed}"
        assert box.running(), f"the sandbox died with a deploy interrupted when {point}"

    with deploying_into(box) as run:  # the first release, in this process: the interrupted ones are `make deploy`'s own
        deployed(box, run)
    before = releases(box)
    # Ctrl-C at each point; at the first, a closed terminal (SIGHUP) instead, which must end the run as Ctrl-C does.
    for n, point in enumerate(RELEASE_POINTS):
        interrupted([*command, "--image-tag", f"interrupted{n}"], point, signal.SIGHUP if n == 0 else signal.SIGINT)
    # Nothing lost: every stack is still there, and the release history still reads, starting with
    # the first release; an interrupted one is in it at most once. (A deploy right after an
    # interrupted one is not asserted here: the emulator itself sometimes answers 500 after one, a
    # gap of moto's.)
    stacks = {s["StackName"]: s["StackStatus"] for s in box.client("cloudformation").describe_stacks()["Stacks"]}
    expected = {templates.stack_name("sandbox", layer) for layer in environment().layers}
    assert expected <= set(stacks), stacks
    history = releases(box)
    added = [entry["image_tag"] for entry in history[len(before) :]]
    assert history[: len(before)] == before and len(added) == len(set(added)), history
    assert set(added) <= {f"interrupted{n}" for n in range(len(RELEASE_POINTS))}, history
    with pytest.raises(box.client("ssm").exceptions.ParameterNotFound):  # and every run freed the lock
        box.client("ssm").get_parameter(Name=f"/{templates.PROJECT}/sandbox/deploy-lock")


def releases(box) -> list:
    """The sandbox's service release history, as the deployer keeps it (scripts/deploy/history.py)."""
    return json.loads(box.client("ssm").get_parameter(Name=f"/{templates.PROJECT}/sandbox/service/releases")["Parameter"]["Value"])


@pytest.fixture
def state(tmp_path):
    from emulator.sandbox import Sandbox

    box = Sandbox(tmp_path / "state")
    yield box
    box.stop()


def sandbox_cli(*argv, state_dir, params_file=None) -> Ran:
    """`python -m emulator.sandbox ARGV` with its state in state_dir (and params_file for
    params/sandbox.yaml), run in this process: its exit status and what it printed. An exception
    it let through fails the test with its traceback."""
    import contextlib
    import io

    import emulator.sandbox as s

    patch = pytest.MonkeyPatch()
    patch.setattr(s, "STATE_DIR", Path(state_dir))
    if params_file is not None:
        patch.setattr(s, "PARAMS_FILE", Path(params_file))
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = s.main(list(argv))
    finally:
        patch.undo()
    return Ran(code, out.getvalue(), err.getvalue())


def test_ctrl_c_while_a_tool_still_imports_is_one_line_and_exit_130():
    # Every tool imports templates/ before troposphere, boto3 or cfn-lint: a Ctrl-C in those
    # imports, before the entry point can catch it, printed a traceback through them.
    import signal

    ended = subprocess.run(
        [sys.executable, "-c", "import templates; raise KeyboardInterrupt"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert (ended.returncode, ended.stderr) == (-signal.SIGINT, "interrupted\n")  # Python ends itself by SIGINT: 130 in a shell
    # Any other exception goes to the hook there was before, not to Python's default one.
    other = "import sys; sys.excepthook = lambda *exc: print('their hook'); import templates; raise ValueError"
    ended = subprocess.run([sys.executable, "-c", other], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert (ended.returncode, ended.stdout) == (1, "their hook\n"), ended.stderr


def test_a_stop_signal_while_a_tool_still_imports_keeps_what_it_had_printed():
    # quiet_interrupts ends a Terminated by os._exit(130), which flushes no stream: what the tool had printed to a
    # pipe (`make ... | tee log`: block-buffered) was lost with it, where Ctrl-C's own exit flushes it. (Buffered as a
    # tool's stdout is: PYTHONUNBUFFERED, which a CI runner may set, would hide the loss.)
    probe = "print('printed before'); import templates; from templates.errors import Terminated; raise Terminated"
    buffered = {name: value for name, value in os.environ.items() if name != "PYTHONUNBUFFERED"}
    ended = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=buffered, capture_output=True, text=True, timeout=60)
    assert (ended.returncode, ended.stdout, ended.stderr) == (130, "printed before\n", "interrupted\n")


# A sitecustomize that sends the process stop signals once templates/ has set its hooks: at the lookup of the first
# layer module its __init__ imports after them (both signals pending at once, as a logout's SIGTERM and SIGHUP).
SIGNALS_WHILE_A_TOOL_IMPORTS = """
import importlib.abc, os, signal, sys
class SendOnce(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "templates.alarms" and self in sys.meta_path:
            sys.meta_path.remove(self)
            stops = {stops}
            signal.pthread_sigmask(signal.SIG_BLOCK, stops)
            for number in stops:
                os.kill(os.getpid(), number)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, stops)
        return None
sys.meta_path.insert(0, SendOnce())
"""


@pytest.mark.parametrize(
    "stops", [{signal.SIGTERM}, {signal.SIGHUP}, {signal.SIGTERM, signal.SIGHUP}], ids=["SIGTERM", "SIGHUP", "SIGTERM and SIGHUP"]
)
def test_a_kill_or_a_closed_terminal_while_a_tool_still_imports_is_one_line_as_ctrl_c_is(tmp_path, stops):
    # README: SIGTERM and SIGHUP end a tool "as under Ctrl-C", and Ctrl-C while it still imports is one line. The tools
    # took them as Ctrl-C only in templates.errors.run(), after every import: a `timeout -s TERM 0.4 make deploy` (a CI
    # cancel) or a closed terminal in the first half second of each process make starts ended the tool without a word
    # (found by a live interruption trial). Both at once printed two tracebacks through the hook (an attacker review).
    (tmp_path / "sitecustomize.py").write_text(SIGNALS_WHILE_A_TOOL_IMPORTS.replace("{stops}", repr({int(s) for s in stops})))
    environment = os.environ | {"PYTHONPATH": str(tmp_path)}
    ended = subprocess.run(
        [sys.executable, "generate.py", "--check"], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60
    )
    assert (ended.returncode, ended.stderr) == (130, "interrupted\n"), (ended.returncode, ended.stderr)


def test_a_process_that_only_imports_templates_keeps_sigterms_own_ending():
    # pytest's workers import templates/ (tests/conftest.py): a SIGTERM taken as Ctrl-C there stopped the whole run
    # ("received keyboard-interrupt"), where pytest-xdist replaces a worker the signal kills (an attacker review)
    probe = "import os, signal, time, templates; os.kill(os.getpid(), signal.SIGTERM); time.sleep(10)"
    ended = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert (ended.returncode, ended.stderr) == (-signal.SIGTERM, ""), (ended.returncode, ended.stderr)


# An attacker review of b329417: command lines started_as_a_tool answered wrongly. Each is a way Python runs one of
# the project's tools (generate.py is a module of the project as scripts/ is a package of it; "--" ends Python's
# options; a Python without a virtual environment whose prefix holds the checkout, as /usr/local of the python
# image holds /usr/local/src/app), and a SIGTERM while it imported ended it without a word (status 143).
@pytest.mark.parametrize(
    ("argv", "prefix"),
    [
        (["python", "-m", "generate", "--check"], None),
        (["python", "-O", "-m", "bench"], None),
        (["python", "--", "generate.py", "--check"], None),
        (["python", "generate.py", "--check"], "parent"),
        (["python", "--check-hash-based-pycs", "default", "generate.py"], None),
        (["python", "-X", "dev", "generate.py"], None),
        (["python", "-W", "ignore", "-m", "generate"], None),
    ],
    ids=["-m generate", "-m bench", "-- generate.py", "prefix holds the checkout", "a long option's value", "-X dev", "-W ignore"],
)
def test_every_way_python_starts_a_tool_is_a_tool(monkeypatch, argv, prefix):
    from templates.errors import started_as_a_tool

    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(sys, "orig_argv", argv)
    if prefix == "parent":  # no virtual environment: the interpreter's own prefix, an ancestor of the checkout
        monkeypatch.setattr(sys, "prefix", str(ROOT.parent))
        monkeypatch.setattr(sys, "base_prefix", str(ROOT.parent))
    assert started_as_a_tool(ROOT)


@pytest.mark.parametrize(
    "argv",
    [
        ["python", "-", "generate.py"],
        ["python", "--", "-"],
        ["python", "-c", "import generate"],
        ["python", "-X", "dev", "-c", "import generate"],
        ["python", "--version"],
    ],
    ids=["stdin", "-- stdin", "-c", "-X dev -c", "--version"],
)
def test_a_program_python_reads_from_elsewhere_is_no_tool(monkeypatch, argv):
    # a program from stdin or -c, whatever it imports: its SIGTERM stays its own, as pytest's workers' does
    from templates.errors import started_as_a_tool

    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(sys, "orig_argv", argv)
    assert not started_as_a_tool(ROOT)


@pytest.mark.parametrize("argv", [["-m", "generate", "--check"], ["--", "generate.py", "--check"]], ids=["-m generate", "--"])
def test_a_kill_while_a_tool_started_otherwise_imports_is_one_line_too(tmp_path, argv):
    # The live form of the cases above: `python -m generate --check` and `python -- generate.py --check` run
    # generate.py's main as `python generate.py --check` does, and a SIGTERM while they imported ended them silently.
    (tmp_path / "sitecustomize.py").write_text(SIGNALS_WHILE_A_TOOL_IMPORTS.replace("{stops}", repr({int(signal.SIGTERM)})))
    environment = os.environ | {"PYTHONPATH": str(tmp_path)}
    ended = subprocess.run([sys.executable, *argv], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60)
    assert (ended.returncode, ended.stderr) == (130, "interrupted\n"), (ended.returncode, ended.stderr)


# A tool's lint: two groups in forked workers (templates.validation.lint_groups), one quick, one slow; each marks a
# file when it starts. The stop signal then goes to the whole process group, as `timeout -s TERM 1.5 make check`,
# a CI runner's cancel of the job's group or a closed terminal's SIGHUP send it.
LINT_WORKERS_PROBE = """
import os, sys, time
from templates import validation
from templates.errors import entry_point, run
marks = sys.argv[1]
def linted(runner, paths):
    open(os.path.join(marks, paths[0]), "w").close()
    if paths[0] == "slow":
        time.sleep(2)  # the group it finishes, ignoring the signal, before the tool ends
    return []
validation.lint_group = linted
run(entry_point(lambda: validation.lint_groups(None, [["quick"], ["slow"]]) and 0))
"""


def _lint_probe_started(tmp_path, probe=LINT_WORKERS_PROBE):
    import time

    marks = tmp_path / "marks"
    marks.mkdir()
    tool = subprocess.Popen(
        [sys.executable, "-c", probe, str(marks)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while not ((marks / "quick").exists() and (marks / "slow").exists()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return tool


def _session_processes(sid, ended_too=True) -> list[int]:
    """The processes of session sid; without ended_too, not those ended (a zombie has ended: an orphan's waits for
    PID 1 to reap it, which here took up to 2 s, and holds no file open)."""
    listed = subprocess.run(["ps", "-eo", "pid=,sid=,stat="], capture_output=True, text=True).stdout.split("\n")
    return [
        int(pid)
        for pid, session, state in (line.split() for line in listed if line.strip())
        if int(session) == sid and (ended_too or not state.startswith("Z"))
    ]


def _end_session(tool):
    import contextlib

    for pid in _session_processes(tool.pid):
        with contextlib.suppress(ProcessLookupError):  # ended meanwhile
            os.kill(pid, signal.SIGKILL)
    tool.wait()


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_a_stop_signal_to_the_process_group_while_a_tool_lints_is_one_line(tmp_path, stop):
    # The lint workers fork with the tool's SIGTERM and SIGHUP handler (terminated, set by run()), and ignore only SIGINT:
    # a worker waiting for its next group raised Terminated in multiprocessing's queue read, and multiprocessing printed
    # "Process ForkProcess-1: Traceback ... templates.errors.Terminated" before the tool's `interrupted` (found with
    # `timeout -s TERM 1.5 make check` on a cold lint cache; pre-existing, before b329417 too).
    import time

    tool = _lint_probe_started(tmp_path)
    try:
        time.sleep(0.5)  # the quick group's worker is back waiting for work
        os.killpg(tool.pid, stop)
        _, stderr = tool.communicate(timeout=60)
    finally:
        _end_session(tool)
    assert (tool.returncode, stderr) == (130, "interrupted\n"), (tool.returncode, stderr)


@pytest.mark.parametrize(
    "stops",
    [(signal.SIGTERM, signal.SIGTERM), (signal.SIGHUP, signal.SIGHUP), (signal.SIGTERM, signal.SIGHUP)],
    ids=["SIGTERM twice", "SIGHUP twice (the terminal's, then the shell's)", "a logout's SIGTERM and SIGHUP"],
)
def test_a_second_stop_signal_to_the_process_group_while_a_tool_lints_does_not_hang_it(tmp_path, stops):
    # The first stop signal raises Terminated where the parent waits for a group (future.result), and the pool's
    # __exit__ waits for the workers (shutdown(wait=True)); the second raises Terminated out of that wait. The tool says
    # `interrupted`, and at exit multiprocessing's finalizer closes the queue the workers read before the executor's
    # thread has put the workers' sentinels in it: the parent joined workers that waited for work for ever, as df0d3ba
    # had them ignore SIGTERM, SIGHUP and SIGINT (`timeout` without -k, a terminal closed under it, or a CI step without
    # its own limit waited for ever; an attacker review). They end at each by default now (1beee17, 07c7143).
    import time

    tool = _lint_probe_started(tmp_path)
    try:
        os.killpg(tool.pid, stops[0])
        time.sleep(0.2)
        os.killpg(tool.pid, stops[1])
        try:
            _, stderr = tool.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            stderr = "still running 20 s later: " + " ".join(map(str, _session_processes(tool.pid)))
    finally:
        _end_session(tool)
    assert (tool.returncode, stderr) == (130, "interrupted\n"), (tool.returncode, stderr)


def test_a_stop_signal_to_the_process_group_as_the_lint_workers_fork_ends_them_before_they_lint(tmp_path):
    # lint_groups forks its workers with the stop signals held back: one that reaches a worker before its fork hook set
    # its quiet ending ran the parent's handler there (a hold of the parent's) and was lost, and the worker linted on.
    # Held back, it ends the worker at its start (start_worker), before any group. Here it comes in a fork hook that
    # runs before templates/' own, to the worker and to the tool, as one to the process group does.
    probe = (
        "import os, signal, sys\n"
        "def stopped_as_forked():\n"
        "    os.kill(os.getppid(), signal.SIGTERM)\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "os.register_at_fork(after_in_child=stopped_as_forked)\n"
        "from templates import validation\n"
        "from templates.errors import entry_point, run\n"
        "def linted(runner, paths):\n"
        "    open(os.path.join(sys.argv[1], paths[0]), 'w').close()\n"
        "    return []\n"
        "validation.lint_group = linted\n"
        "run(entry_point(lambda: validation.lint_groups(None, [['a'], ['b']]) and 0))\n"
    )
    ran = subprocess.run([sys.executable, "-c", probe, str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert (ran.returncode, ran.stderr, sorted(p.name for p in tmp_path.iterdir())) == (130, "interrupted\n", [])


def test_a_lint_worker_killed_outright_is_one_line_and_a_failure(tmp_path):
    # The out-of-memory killer (or a kill -9) ending a worker while it lints: multiprocessing's BrokenProcessPool, a
    # traceback ("A process in the process pool was terminated abruptly ...").
    tool = _lint_probe_started(tmp_path)
    try:
        workers = [pid for pid in _session_processes(tool.pid) if pid != tool.pid]
        assert len(workers) == 2, workers
        os.kill(workers[-1], signal.SIGKILL)
        _, stderr = tool.communicate(timeout=30)
    finally:
        _end_session(tool)
    assert (tool.returncode, stderr) == (
        1,
        "error: cfn-lint could not finish: a process it linted in was killed (the system's out-of-memory killer, or a kill -9); "
        "nothing was written: run the command again\n",
    )


def test_lint_workers_whose_tool_was_killed_end_by_themselves(tmp_path):
    # The tool killed outright while it lints (SIGKILL: `kill -9`, the OOM killer) left its workers behind, waiting
    # for work that never comes and holding its stdout and stderr open (`make check | tee log` never ended), and with
    # them output/, which make templates holds while it lints (helper Q6): they end once their tool is gone.
    import time

    tool = _lint_probe_started(tmp_path)
    try:
        workers = _session_processes(tool.pid)
        assert len(workers) >= 2, workers  # the tool and a worker at least: what is killed below has workers
        os.kill(tool.pid, signal.SIGKILL)
        tool.wait()
        deadline = time.monotonic() + 10
        while _session_processes(tool.pid, ended_too=False) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = _session_processes(tool.pid, ended_too=False)
    finally:
        _end_session(tool)
    assert left == [], f"still running 10 s after their tool was killed: {left}"


def test_checkov_workers_whose_review_was_killed_end_by_themselves(tmp_path):
    # make review killed outright (`kill -9`, the OOM killer) while checkov parsed in its forked workers (its
    # ParallelRunner, fork): each worker blocked for good sending a result to the pipe only the review read, whose read
    # end it holds itself (inherited), keeping checkov's memory and the review's stdout and stderr (`make review | tee
    # log` never ended). Forked within forks_end_quietly, they end once their parent is gone, as cfn-lint's do.
    import time

    probe = (
        "import os, sys, time\n"
        "from checkov.common.parallelizer.parallel_runner import ParallelRunner\n"
        "from templates.errors import forks_end_quietly\n"
        "def parsed(item):\n    return item, bytes(1 << 20)\n"  # as a parsed template and its lines: past a pipe's buffer
        "with forks_end_quietly():\n"
        "    results = ParallelRunner(workers_number=2).run_function(parsed, [1, 2])\n"
        "    next(results)\n"  # the workers forked; one result read, the other worker's send then waits on the review
        "print('forked', flush=True)\n"
        "time.sleep(60)\n"
    )
    tool = subprocess.Popen(
        [sys.executable, "-c", probe], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        assert tool.stdout.readline() == "forked\n", tool.stderr.read()
        workers = [pid for pid in _session_processes(tool.pid) if pid != tool.pid]
        assert workers, "no worker forked"
        os.kill(tool.pid, signal.SIGKILL)
        tool.wait()
        deadline = time.monotonic() + 10
        while _running(workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = _running(workers)
    finally:
        _end_session(tool)
    assert left == [], f"still running 10 s after the review was killed: {left}"


def _running(pids) -> list[int]:
    """Those of pids not ended (a zombie has ended: what reaps it is no matter here)."""
    listed = subprocess.run(["ps", "-o", "pid=,stat=", "-p", ",".join(map(str, pids))], capture_output=True, text=True).stdout
    return [int(pid) for pid, state in (line.split() for line in listed.splitlines() if line.strip()) if not state.startswith("Z")]


# An attacker review of 1beee17: Ctrl-C twice to the group while a tool linted hung it (older: the workers ignored SIGINT).


def _stopped_twice(tmp_path, stops, gap, then=None):
    import time

    tool = _lint_probe_started(tmp_path)
    try:
        os.killpg(tool.pid, stops[0])
        time.sleep(gap)
        os.killpg(tool.pid, stops[1])
        if then is not None:
            time.sleep(1)
            os.killpg(tool.pid, then)
        try:
            _, stderr = tool.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            stderr = "still running 20 s later: " + " ".join(map(str, _session_processes(tool.pid)))
        # what is left 0.3 s on: at once when none is (an empty session gets no process again)
        deadline = time.monotonic() + 0.3
        while [pid for pid in _session_processes(tool.pid) if pid != tool.pid] and time.monotonic() < deadline:
            time.sleep(0.02)
        left = [pid for pid in _session_processes(tool.pid) if pid != tool.pid]
    finally:
        _end_session(tool)
    return tool.returncode, stderr, left


def test_a_stop_signal_while_a_tools_lint_pool_shuts_down_waits_until_it_has(tmp_path):
    # Two at once (a closed terminal's SIGHUP and its shell's; a CI cancel that signals the job's processes twice): the
    # second raised inside concurrent.futures while the first's Terminated unwound the pool, and hung the tool for good (a
    # future's lock left held: the pool's shutdown joined a thread that waited for it), or ended it by SIGPIPE (-13) or
    # SIGTERM (-15) after `interrupted`, or printed "Exception ignored in ... Terminated": about one run in four of
    # `kill -TERM -- -<pgid>` twice at once. Here the second comes as the pool starts to shut down, every time.
    probe = LINT_WORKERS_PROBE.replace(
        "validation.lint_group = linted\n",
        "validation.lint_group = linted\n"
        "import signal\n"
        "from concurrent.futures import ProcessPoolExecutor\n"
        "shutdown = ProcessPoolExecutor.shutdown\n"
        "def shutdown_after_a_second_signal(pool, *args, **kwargs):\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "    shutdown(pool, *args, **kwargs)\n"
        "    open(os.path.join(marks, 'shut down'), 'w').close()\n"
        "ProcessPoolExecutor.shutdown = shutdown_after_a_second_signal\n",
    )
    assert "shut down" in probe
    tool = _lint_probe_started(tmp_path, probe)
    try:
        os.killpg(tool.pid, signal.SIGTERM)
        _, stderr = tool.communicate(timeout=20)
    finally:
        _end_session(tool)
    assert (tool.returncode, stderr, (tmp_path / "marks" / "shut down").exists()) == (130, "interrupted\n", True), (
        tool.returncode,
        stderr,
    )


def test_ctrl_c_twice_while_a_tool_lints_does_not_hang_it(tmp_path):
    # generate.py --check, cold lint cache, SIGINT to its group at 1.1 s and 1.3 s: still running 15 s later, the tool
    # and both workers (`interrupted` said once). As the test above names: at exit the parent joins workers that wait for
    # work that never comes, and they ignore SIGINT. A third Ctrl-C then ends the tool with a traceback (below) and leaves
    # the two workers running, orphans holding its stdout and stderr: `make check | tee log` never ends.
    code, stderr, left = _stopped_twice(tmp_path, (signal.SIGINT, signal.SIGINT), 0.2)
    assert (code, stderr, left) == (130, "interrupted\n", []), (code, stderr, left)


@pytest.mark.parametrize("then", [signal.SIGINT, signal.SIGTERM], ids=["a third Ctrl-C", "a SIGTERM"])
def test_a_stop_signal_after_ctrl_c_twice_while_a_tool_lints_is_no_traceback(tmp_path, then):
    # generate.py --check, cold lint cache, SIGINT to its group at 1.2 s and 1.4 s, then SIGTERM at 3 s: rc 130 and
    # "interrupted", "Exception ignored in atexit callback: <function _exit_function ...>", a traceback through
    # multiprocessing's join (os.waitpid) ending "templates.errors.Terminated". A third SIGINT instead: the same
    # traceback ending KeyboardInterrupt, and both workers left running (parent 1), never ending on their own.
    # (As before 1beee17, which hung there instead at a SIGTERM.)
    code, stderr, left = _stopped_twice(tmp_path, (signal.SIGINT, signal.SIGINT), 0.2, then=then)
    assert "Traceback" not in stderr and left == [], (code, stderr, left)


@pytest.mark.parametrize("tool", ["generate", "scripts.deploy", "scripts.review", "emulator.sandbox", "bench"])  # what make runs
def test_every_tool_imports_templates_first(tool):
    """So that its Ctrl-C hook is in place while everything else loads (a Ctrl-C half a second into
    make deploy printed a traceback through botocore, which scripts/deploy/__init__.py imported first,
    and then through urllib, which emulator/sandbox.py imported before templates)."""
    probe = (
        "import sys\n"
        "started = []\n"
        "class Recorder:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        started.append(name)\n"
        "sys.meta_path.insert(0, Recorder())\n"
        f"import {tool}\n"
        "heavy = [n for n in started if n.split('.')[0] in ('botocore', 'boto3', 'troposphere', 'cfnlint', 'checkov', 'moto', 'yaml')]\n"
        "print(started.index('templates'), started.index(heavy[0]) if heavy else len(started), heavy[:1])"
    )
    ran = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60)
    first_templates, first_heavy, heavy = ran.stdout.split(maxsplit=2)
    assert int(first_templates) < int(first_heavy), f"{tool} imports {heavy} before templates"
    assert int(first_templates) == len(tool.split(".")), f"{tool} imports other modules before templates"  # after its own package


@pytest.mark.parametrize(("answer", "removed"), [(0, False), (3, True), (1, False)])
def test_make_clean_is_refused_while_the_sandbox_runs_on_the_virtual_environment(tmp_path, answer, removed):
    """Removed under a running server, .venv would have to be installed again just to stop it. The
    Makefile runs here on a stand-in .venv whose python answers the "does it run?" question: 0 it
    runs, 3 it does not, 1 the check itself failed (a broken .venv), which must refuse too."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    python = venv / "bin" / "python"
    python.write_text(f"#!/bin/sh\nexit {answer}\n")
    python.chmod(0o755)
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MAKE")}
    made = subprocess.run(
        ["make", "-s", "-f", str(ROOT / "Makefile"), "clean", "VENV=venv"], cwd=tmp_path, env=environment, capture_output=True, text=True
    )
    assert venv.exists() is not removed and (made.returncode == 0) is removed, made.stderr
    if not removed:
        assert "error: the sandbox may run on venv's Python: make sandbox-stop first" in made.stderr


def test_a_kill_or_a_closed_terminal_stops_a_tool_as_ctrl_c_does_unless_it_runs_under_nohup():
    # Every tool make runs turns SIGTERM and SIGHUP into Ctrl-C (whose clean-up the tests above
    # check: a `timeout 1 make templates` left output/.staging-* behind), except a SIGHUP ignored on
    # purpose. One process runs each tool's entry (--help) in turn, the signals as the shell left them.
    cases = [("scripts.deploy", "SIG_IGN")] + [
        (tool, "SIG_DFL") for tool in ("scripts.deploy", "generate", "scripts.review", "emulator.sandbox")
    ]
    probe = (
        "import runpy, signal, sys\n"
        "name = lambda handler: 'kept' if handler is signal.SIG_IGN else getattr(handler, '__name__', repr(handler))\n"
        f"for tool, inherited in {cases!r}:\n"
        "    signal.signal(signal.SIGHUP, getattr(signal, inherited))\n"
        "    signal.signal(signal.SIGTERM, signal.SIG_DFL)\n"
        "    sys.argv = [tool, '--help']\n"
        "    try:\n        runpy.run_module(tool, run_name='__main__')\n    except SystemExit:\n        pass\n"
        "    print('probe:', tool, inherited, name(signal.getsignal(signal.SIGHUP)), name(signal.getsignal(signal.SIGTERM)))"
    )
    ran = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60)
    said = [line.split()[1:] for line in ran.stdout.splitlines() if line.startswith("probe: ")]
    # under nohup the SIGHUP stays ignored; else each tool's own handler ends the run as Ctrl-C does
    expected = [[tool, inherited, "kept" if inherited == "SIG_IGN" else "terminated", "terminated"] for tool, inherited in cases]
    assert said == expected, ran.stdout + ran.stderr


@pytest.mark.parametrize("quiet", [True, False])
def test_a_process_checkov_forks_ends_without_a_traceback_at_ctrl_c(quiet):
    # Ctrl-C during make review reached checkov's forked workers too: each printed its KeyboardInterrupt's traceback
    # (multiprocessing's "Process ForkProcess-1: Traceback ..."). Forked within forks_end_quietly, a worker ends
    # without a word; outside it (the control), the traceback this guards against.
    probe = (
        "import multiprocessing, os, signal, time\n"
        "from templates.errors import forks_end_quietly\n"
        # as a terminal's shell starts it, whatever the test's process passed on (a SIGINT ignored, or blocked, stays so)
        "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
        "signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})\n"
        "def work(ready):\n    ready.set()\n    time.sleep(30)\n"
        f"with forks_end_quietly() if {quiet} else open(os.devnull):\n"
        "    ready = multiprocessing.get_context('fork').Event()\n"
        "    worker = multiprocessing.get_context('fork').Process(target=work, args=(ready,))\n"
        "    worker.start()\n"
        "ready.wait(20)\n"
        "os.kill(worker.pid, signal.SIGINT)\n"
        "worker.join(20)\n"
        "print('exit', worker.exitcode)\n"
    )
    ran = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert ran.stdout == ("exit 130\n" if quiet else "exit 1\n"), ran.stdout + ran.stderr
    assert ("Traceback" in ran.stderr) != quiet, ran.stderr


def test_a_stop_signal_the_tool_ignores_stays_ignored_in_what_it_forks():
    # Under nohup SIGHUP is ignored: a worker forked within forks_end_quietly must not end at it either.
    probe = (
        "import multiprocessing, os, signal, time\n"
        "from templates.errors import forks_end_quietly\n"
        "signal.signal(signal.SIGHUP, signal.SIG_IGN)\n"
        "def work(ready):\n    ready.set()\n    time.sleep(30)\n"
        "with forks_end_quietly():\n"
        "    ready = multiprocessing.get_context('fork').Event()\n"
        "    worker = multiprocessing.get_context('fork').Process(target=work, args=(ready,))\n"
        "    worker.start()\n"
        "ready.wait(20)\n"
        "os.kill(worker.pid, signal.SIGHUP)\n"
        "worker.join(1)\n"
        "print('alive' if worker.is_alive() else f'exit {worker.exitcode}')\n"
        "worker.kill()\n"
        "worker.join(20)\n"
    )
    ran = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert ran.stdout == "alive\n", ran.stdout + ran.stderr


def test_checkov_scans_with_its_forks_ending_quietly(tmp_path, monkeypatch):
    # What the test above checks of the helper holds for checkov's own forks only if its scan runs inside it.
    import types

    from checkov.cloudformation import runner

    from templates import errors, validation

    inside = []

    def scanned(self, **_):
        inside.append(errors._forks_end_quietly.is_set())
        return types.SimpleNamespace(passed_checks=[], failed_checks=[], skipped_checks=[])

    monkeypatch.setattr(runner.Runner, "run", scanned)
    assert validation.checkov(tmp_path) == [] and inside == [True]
    assert not errors._forks_end_quietly.is_set()  # and only inside it


def test_ctrl_c_while_the_server_starts_stops_it(tmp_path, monkeypatch):
    # Before it answers, as while it seeds (below): the server is in a session of its own.
    import emulator.sandbox as s

    calls = []

    class Started:  # stands in for the server process
        pid = 12345

    def interrupted(self):
        calls.append("wait")
        raise KeyboardInterrupt

    monkeypatch.setattr(s.subprocess, "Popen", lambda *args, **kwargs: calls.append("popen") or Started())
    monkeypatch.setattr(s.Sandbox, "wait_until_started", interrupted)
    monkeypatch.setattr(s.Sandbox, "stop", lambda self: calls.append("stop") or True)
    with pytest.raises(KeyboardInterrupt):
        s.Sandbox(tmp_path / "state").start()
    assert calls == ["popen", "wait", "stop"]


@pytest.mark.parametrize("interrupted", [True, False], ids=["ctrl-c", "ids not in params"])
def test_a_seed_that_stops_stops_the_server_make_sandbox_started(tmp_path, monkeypatch, interrupted):
    # The server runs in a session of its own, so Ctrl-C does not reach it: left running unseeded, the next make
    # sandbox would call it ready; so would one whose seed failed. (start and stop stand in for the server here.)
    from emulator.sandbox import Sandbox, SandboxError

    stop = KeyboardInterrupt() if interrupted else SandboxError("params/sandbox.yaml does not hold the ids the seed creates")
    code, said = (130, "interrupted\n") if interrupted else (2, "\nerror: the sandbox is stopped\n")
    calls = []
    monkeypatch.setattr(Sandbox, "running", lambda self: False)
    monkeypatch.setattr(Sandbox, "start", lambda self, **kwargs: calls.append("start") or self)
    monkeypatch.setattr(Sandbox, "started_here", lambda self: True)
    monkeypatch.setattr(Sandbox, "stop", lambda self: calls.append("stop") or True)

    def seed(self):
        calls.append("seed")
        raise stop

    monkeypatch.setattr(Sandbox, "seed", seed)
    result = sandbox_cli("start", state_dir=tmp_path / "state")
    assert result.returncode == code and "Traceback" not in result.stderr, result
    assert result.stderr == said if interrupted else result.stderr.endswith(said), result  # Ctrl-C: that line alone
    assert calls == ["start", "seed", "stop"]


def test_make_sandbox_with_a_params_file_it_cannot_seed_from_starts_no_server(tmp_path, monkeypatch):
    # It started the server, then the seed read the file, and the run ended "the sandbox is stopped" (a newcomer's walk).
    from emulator.sandbox import PARAMS_FILE, Sandbox

    broken = tmp_path / "sandbox.yaml"
    broken.write_text(PARAMS_FILE.read_text() + "\tbroken: 1\n")
    calls = []
    monkeypatch.setattr(Sandbox, "running", lambda self: False)
    monkeypatch.setattr(Sandbox, "start", lambda self, **kwargs: calls.append("start") or self)
    result = sandbox_cli("start", state_dir=tmp_path / "state", params_file=broken)
    assert result.returncode == 2 and calls == [], result
    (problem, last) = result.stderr.splitlines()
    assert problem.startswith(f"error: {broken}: line ") and "YAML" in problem, result.stderr
    assert last == "error: the sandbox is not started", result.stderr


def test_ctrl_c_as_the_start_returns_before_the_seed_stops_the_server_too(tmp_path, monkeypatch):
    # A Ctrl-C that arrived as start() returned, before the seed (botocore's imports ran there), left an
    # unseeded server that the next make sandbox called running (found by a new on-call user).
    from emulator.sandbox import Sandbox

    calls = []
    monkeypatch.setattr(Sandbox, "running", lambda self: False)

    def started_then_interrupted(self, **kwargs):
        calls.append("start")
        self._process = object()  # the server start() left running
        raise KeyboardInterrupt

    monkeypatch.setattr(Sandbox, "start", started_then_interrupted)
    monkeypatch.setattr(Sandbox, "seed", lambda self: calls.append("seed"))
    monkeypatch.setattr(Sandbox, "stop", lambda self: calls.append("stop") or True)
    result = sandbox_cli("start", state_dir=tmp_path / "state")
    assert (result.returncode, result.stderr) == (130, "interrupted\n")
    assert calls == ["start", "stop"]


def test_a_server_that_cannot_start_is_said_so_not_called_a_failed_seed(tmp_path):
    # Its log a directory: the start fails before any server runs, and says where.
    state = tmp_path / "state"
    (state / "server.log").mkdir(parents=True)
    result = sandbox_cli("start", state_dir=state)
    said = f"error: {state / 'server.log'} is not a regular file (a symbolic link, a FIFO, a directory), which the sandbox does not write: remove it\n"
    assert (result.returncode, result.stderr) == (2, said), result
    assert "seed" not in result.stderr


def seed_failures():
    import urllib.error

    from botocore.exceptions import ClientError, EndpointConnectionError

    return [
        ClientError({"Error": {"Code": "InternalFailure", "Message": "moto broke"}}, "CreateVpc"),
        EndpointConnectionError(endpoint_url="http://127.0.0.1:9/"),
        urllib.error.URLError("refused"),  # the seed's reset, before any client
    ]


@pytest.mark.parametrize("failure", seed_failures(), ids=["ClientError", "EndpointConnectionError", "URLError"])
def test_a_seed_that_fails_stops_the_server_and_is_one_line_naming_the_log(tmp_path, monkeypatch, failure):
    from emulator.sandbox import Sandbox

    calls = []
    monkeypatch.setattr(Sandbox, "running", lambda self: False)
    monkeypatch.setattr(Sandbox, "start", lambda self, **kwargs: calls.append("start") or self)
    monkeypatch.setattr(Sandbox, "started_here", lambda self: True)
    monkeypatch.setattr(Sandbox, "stop", lambda self: calls.append("stop") or True)

    def seed(self):
        raise failure

    monkeypatch.setattr(Sandbox, "seed", seed)
    result = sandbox_cli("start", state_dir=tmp_path / "state")
    assert calls == ["start", "stop"]
    assert result.returncode == 2 and len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith(f"error: seeding the sandbox failed, and it is stopped: {failure} (its log: "), result.stderr


def test_a_start_refused_stops_no_server(tmp_path, monkeypatch):
    """start() refuses while a server runs (one it did not start: another make sandbox's, just now): that
    server, with what is deployed in it, is left running, not stopped as a half-started one would be."""
    from emulator.sandbox import Sandbox, SandboxError

    stopped = []
    monkeypatch.setattr(Sandbox, "running", lambda self: False)  # when make sandbox looked; running by the time it starts

    def start(self, **kwargs):
        raise SandboxError("a sandbox already runs at http://127.0.0.1:1 (PID 1); stop it first: make sandbox-stop")

    monkeypatch.setattr(Sandbox, "start", start)
    monkeypatch.setattr(Sandbox, "stop", lambda self: stopped.append(True) or True)
    result = sandbox_cli("start", state_dir=tmp_path / "state")
    assert result.returncode == 2 and "a sandbox already runs at" in result.stderr, result
    assert stopped == []


def test_an_os_error_without_a_message_is_named_by_itself_not_none(tmp_path, monkeypatch):
    import urllib.error

    import emulator.sandbox as s

    def refused(args, sandbox):
        raise urllib.error.URLError("refused")  # an OSError with no strerror

    monkeypatch.setattr(s, "command", refused)
    result = sandbox_cli("status", state_dir=tmp_path / "state")
    assert result.returncode == 2 and result.stderr.rstrip().endswith("<urlopen error refused>"), result.stderr
    assert "None" not in result.stderr


@pytest.mark.parametrize(
    "garbage", ["", "not a url", "http://10.0.0.1:80", "http://127.0.0.1:99999", "http://127.0.0.1:65536", "http://127.0.0.1:0", "\x00\xff"]
)
def test_a_garbled_endpoint_file_is_named_not_a_traceback(sandbox, garbage):
    endpoint = sandbox.endpoint_file.read_text()
    sandbox.endpoint_file.write_text(garbage)
    try:
        results = [sandbox_cli(command, state_dir=sandbox.state_dir) for command in ("env", "status", "start")]
    finally:
        sandbox.endpoint_file.write_text(endpoint)
    for result in results:  # status and a second start said "running at None" (exit 0)
        assert result.returncode == 2 and "Traceback" not in result.stderr and "None" not in result.stdout
        assert "does not name it: make sandbox-stop && make sandbox" in result.stderr


def test_a_paused_server_goes_on_and_a_garbled_pid_file_neither_hides_it_nor_starts_a_second_and_stop_stops_it_alone(
    state, sandbox, monkeypatch, tmp_path
):
    import signal
    import time

    import emulator.sandbox as sandbox_module
    from emulator.sandbox import SandboxError

    state.start(exit_with_parent=True)
    first = state.pid
    # A debugger or a paused container stops and continues it: it used to exit at a SIGCONT, at times.
    for _ in range(3):
        os.kill(first, signal.SIGSTOP)
        time.sleep(0.05)
        os.kill(first, signal.SIGCONT)
        time.sleep(0.05)
    # A stop signal is kept until the server's loop looks, every 0.2 s: one wait past that sees any of the three.
    time.sleep(0.3)
    assert state.running() and state.client("sts").get_caller_identity()["Account"]
    # Stopped, its port still takes connections: only an answer tells, and status says how to resume it.
    monkeypatch.setattr(sandbox_module, "ANSWER_TIMEOUT_SECONDS", 0.3)
    os.kill(first, signal.SIGSTOP)
    paused = sandbox_cli("status", state_dir=state.state_dir)
    assert paused.returncode == 1 and "but it did not answer within 0.3 s" in paused.stdout, paused
    assert f"it is stopped (Ctrl-Z or a debugger): `kill -CONT {first}` resumes it" in paused.stdout, paused
    again = sandbox_cli("start", state_dir=state.state_dir)  # left as it is, and said to be stopped
    assert again.returncode == 0 and f"note: it is stopped (Ctrl-Z or a debugger) and answers nothing: `kill -CONT {first}`" in again.stdout
    os.kill(first, signal.SIGCONT)
    monkeypatch.undo()  # continued, it may take more than 0.3 s to answer on a busy machine
    for proxy in ("HTTP_PROXY", "http_proxy"):  # asked straight, never through a proxy the shell names (here one that refuses)
        monkeypatch.setenv(proxy, NOWHERE)
    for bypass in ("NO_PROXY", "no_proxy"):  # one listing 127.0.0.1 would skip the proxy anyway
        monkeypatch.delenv(bypass, raising=False)
    import urllib.request

    monkeypatch.setattr(urllib.request, "_opener", None)  # urlopen's opener reads the proxies when made, as in a new process
    sandbox_module.loopback.cache_clear()  # and so does the sandbox's own (made once a process), as in a new process
    resumed = sandbox_cli("status", state_dir=state.state_dir)
    monkeypatch.undo()
    sandbox_module.loopback.cache_clear()
    assert (resumed.returncode, resumed.stdout) == (0, f"sandbox running at {state.endpoint} (PID {first})\n"), resumed
    state.pid_file.write_text("garbage")
    assert state.running() and state.pid == first
    garbled = sandbox_cli("status", state_dir=state.state_dir)  # found by its process: reported as usual (the README's faults table)
    assert (garbled.returncode, garbled.stdout) == (0, f"sandbox running at {state.endpoint} (PID {first})\n"), garbled
    result = sandbox_cli("start", state_dir=state.state_dir)
    assert result.returncode == 0 and f"sandbox already running at {state.endpoint} (PID {first})" in result.stdout
    assert state.server_pids() == [first]
    with pytest.raises(SandboxError, match="a sandbox already runs"):  # nor does the library start a second
        state.start()
    assert state.server_pids() == [first]
    process = state._process
    os.kill(first, signal.SIGSTOP)  # stopped, it still ends at the stop signal, not killed after a wait
    state.state_dir.rename(tmp_path / "moved")  # and its state directory become a file: found and stopped all the same
    state.state_dir.write_text("a file")
    status = sandbox_cli("status", state_dir=state.state_dir)
    assert status.stderr.endswith(f"make sandbox-stop, move the file {state.state_dir} away, then make sandbox\n"), status
    assert sandbox_cli("stop", state_dir=state.state_dir).stdout == "sandbox stopped, and every stack deployed in it with it\n"
    assert process.wait(timeout=10) == 0, "the stopped server was killed, not stopped by its signal handler"
    assert state.server_pids() == []
    assert sandbox.running(), "another state directory's server (the session's) was stopped too"
    assert sandbox_cli("stop", state_dir=state.state_dir).stdout == "sandbox was not running\n"


# A stand-in of the server: its command line is the one `Sandbox.start` gives the real one, as the other
# stand-ins here (test_a_server_that_ignores_its_stop_signal_is_killed_not_left_running).
SLEEPING_SERVER = "import sys, time; print(flush=True); time.sleep(120)"


def sleeping_server(state_dir: Path, python=sys.executable, **popen) -> subprocess.Popen:
    process = subprocess.Popen(
        [python, "-c", SLEEPING_SERVER, "-m", "emulator.sandbox", "serve", "--state-dir", str(state_dir), "--port", "0"],
        stdout=subprocess.PIPE,
        **popen,
    )
    process.stdout.readline()  # it runs
    return process


def end_sleeping_server(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.kill()
    process.wait()
    process.stdout.close()


@pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists("/usr/bin/python3"), reason="another user's process: root, a system Python")
def test_another_users_process_whose_command_line_names_the_state_directory_is_not_the_sandbox_nor_stopped(tmp_path):
    """Only processes the tool started are stopped: another user's process (a local user on a shared host,
    or a sandbox-looking process run under runuser) whose command line merely carries `emulator.sandbox serve
    --state-dir <ours>` is no server of ours. Taken for one, make sandbox-status said it ran, make deploy sent
    its requests to whatever it listened on at the endpoint file's port (one a server killed with kill -9 left),
    make sandbox refused to start, and make sandbox-stop (run as root) killed it."""
    from emulator.sandbox import Sandbox

    state = Sandbox(tmp_path / "state")
    state.make_state_dir()
    (state.state_dir / "endpoint").write_text(f"{NOWHERE}\n")
    # a system Python, which the other user may run (the venv's may sit in a home directory it may not enter)
    foreign = sleeping_server(state.state_dir, python="/usr/bin/python3", user=65534, group=65534, cwd="/")
    try:
        assert state.server_pids() == [] and not state.running(), "another user's process taken for the sandbox"
        assert sandbox_cli("stop", state_dir=state.state_dir).stdout == "sandbox was not running\n"
        assert foreign.poll() is None, "make sandbox-stop killed another user's process"
    finally:
        end_sleeping_server(foreign)


def _logging_server(checkout: Path) -> subprocess.Popen:
    """A stand-in of the server as Sandbox.start runs it: in the checkout, its output the state directory's log."""
    state = checkout / ".sandbox"
    state.mkdir(parents=True, exist_ok=True)
    with open(state / "server.log", "ab") as log:
        server = subprocess.Popen(
            [sys.executable, "-c", SLEEPING_SERVER, "-m", "emulator.sandbox", "serve", "--state-dir", str(state), "--port", "0"],
            cwd=checkout,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    # Popen returns once the exec has begun; the new command line shows a moment later (on a busy machine)
    with within(10):
        while b"serve" not in Path(f"/proc/{server.pid}/cmdline").read_bytes().split(b"\0"):
            time.sleep(0.01)
    return server


def _stop_stand_in(server: subprocess.Popen) -> None:
    if server.poll() is None:
        server.kill()
    server.wait()


def test_a_state_directory_moved_aside_and_replaced_by_a_symlink_while_its_server_runs_keeps_the_server_found(tmp_path):
    """.sandbox moved aside and a symlink to another directory put in its place: the server runs in this checkout and
    the path on its command line is still its .sandbox, so it is this checkout's (found, stopped, and make clean
    refuses), and the directory moved aside finds it by its log too. (A new clone at a moved checkout's old path, whose
    server runs elsewhere, takes none: test_a_new_checkout_at_a_moved_checkouts_old_path_does_not_take_its_server.)"""
    from emulator.sandbox import Sandbox

    state = tmp_path / "app" / ".sandbox"
    server = _logging_server(tmp_path / "app")
    try:
        state.rename(tmp_path / "kept")
        (tmp_path / "elsewhere").mkdir()
        state.symlink_to(tmp_path / "elsewhere")
        assert Sandbox(state).server_pids() == [server.pid] and Sandbox(state).running()
        assert Sandbox(tmp_path / "kept").server_pids() == [server.pid]
        assert sandbox_cli("stop", state_dir=state).stdout == "sandbox stopped, and every stack deployed in it with it\n"
        assert server.wait(timeout=15) is not None
    finally:
        _stop_stand_in(server)


def test_a_project_moved_while_its_sandbox_runs_does_not_lose_the_server(tmp_path):
    """A checkout renamed while its sandbox runs (mv ~/app ~/app-old): the server, whose command line names
    the old path, was no longer found: make sandbox-status said `sandbox not running`, make sandbox-stop
    `sandbox was not running` (leaving it running), and make clean no longer refused (verified with make in a
    clone moved while its sandbox ran). Here the state directory's parent stands for the checkout: the
    server runs in it and writes its log into the state directory, as Sandbox.start runs the real one."""
    from emulator.sandbox import Sandbox

    server = _logging_server(tmp_path / "app")
    try:
        assert Sandbox(tmp_path / "app" / ".sandbox").server_pids() == [server.pid]
        (tmp_path / "app").rename(tmp_path / "app-old")
        moved = tmp_path / "app-old" / ".sandbox"
        assert Sandbox(moved).server_pids() == [server.pid], "the moved checkout's server is not found"
        assert Sandbox(moved).running()  # make clean refuses
    finally:
        _stop_stand_in(server)


def test_a_new_checkout_at_a_moved_checkouts_old_path_does_not_take_its_server(tmp_path):
    """mv app app-old && git clone ... app while app's sandbox runs: the server is app-old's (its log is
    app-old/.sandbox/server.log, app-old's make sandbox-status finds it), but its command line still names
    app/.sandbox, so the new clone took it for its own too: its make sandbox-status and make sandbox said
    `the sandbox runs (PID n) but app/.sandbox/endpoint does not name it: make sandbox-stop && make sandbox`, and
    that make sandbox-stop stopped app-old's server with every stack in it (verified with make in clones).
    The README: only a server of this checkout's is taken for the sandbox or stopped, also after the checkout is moved."""
    from emulator.sandbox import Sandbox

    server = _logging_server(tmp_path / "app")
    try:
        (tmp_path / "app").rename(tmp_path / "app-old")
        assert Sandbox(tmp_path / "app-old" / ".sandbox").server_pids() == [server.pid]
        (tmp_path / "app" / ".sandbox").mkdir(parents=True)  # the new clone's, after its own make sandbox-status
        assert Sandbox(tmp_path / "app" / ".sandbox").server_pids() == [], "the new clone takes the moved checkout's server"
    finally:
        _stop_stand_in(server)


def test_a_hard_linked_copy_of_the_checkout_does_not_take_the_originals_server(tmp_path):
    """cp -al app app-copy (or rsync --link-dest) copies .sandbox/server.log as a hard link: the same file.
    The copy's tool then took app's server for its own by the log it writes to: make sandbox-status in the
    copy said `sandbox running at <the copy's stale endpoint> (PID <app's server>)`, make sandbox left it
    'as it is', make sandbox-stop stopped it (verified with make in clones). Before 9db520f it was not taken."""
    from emulator.sandbox import Sandbox

    (tmp_path / "app" / ".sandbox").mkdir(parents=True)
    (tmp_path / "app" / ".sandbox" / "server.log").write_text("")
    (tmp_path / "app-copy" / ".sandbox").mkdir(parents=True)
    os.link(tmp_path / "app" / ".sandbox" / "server.log", tmp_path / "app-copy" / ".sandbox" / "server.log")
    server = _logging_server(tmp_path / "app")
    try:
        assert Sandbox(tmp_path / "app" / ".sandbox").server_pids() == [server.pid]
        assert Sandbox(tmp_path / "app-copy" / ".sandbox").server_pids() == [], "the copy takes the original's server"
    finally:
        _stop_stand_in(server)


def test_a_state_directory_moved_aside_in_its_own_checkout_keeps_its_server_found(tmp_path):
    """mv .sandbox .sandbox.old while the sandbox runs (verified with make in a clone, real server): make
    sandbox-status said `sandbox not running`, make sandbox-stop `sandbox was not running`, make clean's check
    let it remove .venv under the running server, and make sandbox started a second server beside the first,
    which nothing the tool offers stops. Its log is still in the checkout (app/.sandbox.old/server.log): no other
    checkout's, as in the moved-checkout and hard-link cases, which the log's own checkout tells apart."""
    from emulator.sandbox import Sandbox

    server = _logging_server(tmp_path / "app")
    try:
        (tmp_path / "app" / ".sandbox").rename(tmp_path / "app" / ".sandbox.old")
        assert Sandbox(tmp_path / "app" / ".sandbox").running(), "make clean removes .venv under the server; make sandbox starts a second"
    finally:
        _stop_stand_in(server)


def test_a_log_moved_out_of_the_state_directory_keeps_its_server_found(tmp_path):
    """mv .sandbox/server.log ~/server.log (kept for a bug report) while the sandbox runs: renamed in place
    (server.log.1) the server is still found by its command line, moved out under its own name it is lost:
    make sandbox-status says not running, make sandbox starts a second, make clean goes on."""
    from emulator.sandbox import Sandbox

    server = _logging_server(tmp_path / "app")
    try:
        (tmp_path / "kept").mkdir()
        (tmp_path / "app" / ".sandbox" / "server.log").rename(tmp_path / "kept" / "server.log")
        assert Sandbox(tmp_path / "app" / ".sandbox").server_pids() == [server.pid]
    finally:
        _stop_stand_in(server)


@pytest.mark.parametrize("log_was", ["deleted", "renamed in place"])
def test_a_moved_checkout_whose_log_was_deleted_or_renamed_keeps_its_server_and_a_new_clone_takes_none(tmp_path, log_was):
    """rm .sandbox/server.log (or git clean -fdx), or mv .sandbox/server.log .sandbox/server.log.1, then mv app app-old
    && git clone ... app: the server writes to app-old/.sandbox/server.log (deleted) or server.log.1, runs in app-old,
    and its command line names app/.sandbox. Decided by that path, app-old's make sandbox-status said not running (make
    clean went on) and the new clone at app took the server, its make sandbox-stop stopping app-old's. README: found
    also after the checkout is moved, never by a new clone at its old path."""
    from emulator.sandbox import Sandbox

    server = _logging_server(tmp_path / "app")
    log = tmp_path / "app" / ".sandbox" / "server.log"
    try:
        log.unlink() if log_was == "deleted" else log.rename(log.with_name("server.log.1"))
        assert Sandbox(tmp_path / "app" / ".sandbox").server_pids() == [server.pid]
        (tmp_path / "app").rename(tmp_path / "app-old")
        (tmp_path / "app" / ".sandbox").mkdir(parents=True)  # the new clone's
        assert Sandbox(tmp_path / "app" / ".sandbox").server_pids() == [], "the new clone takes the moved checkout's server"
        assert Sandbox(tmp_path / "app-old" / ".sandbox").server_pids() == [server.pid], "the moved checkout loses its server"
    finally:
        _stop_stand_in(server)


def test_a_moved_checkout_whose_state_directory_is_a_symlink_keeps_its_server(tmp_path):
    """.sandbox a symlink to a directory elsewhere (a faster disk, say), then mv app app-old: the server writes to
    <elsewhere>/server.log, which is app-old/.sandbox/server.log once the link is followed; the command line names
    app/.sandbox. The log's directory and the state directory compare as the kernel resolves them, not as written."""
    from emulator.sandbox import Sandbox

    (tmp_path / "fast").mkdir()
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / ".sandbox").symlink_to(tmp_path / "fast")
    server = _logging_server(tmp_path / "app")
    try:
        (tmp_path / "app").rename(tmp_path / "app-old")
        assert Sandbox(tmp_path / "app-old" / ".sandbox").server_pids() == [server.pid], "the moved checkout loses its server"
        (tmp_path / "app" / ".sandbox").mkdir(parents=True)  # a new clone's
        assert Sandbox(tmp_path / "app" / ".sandbox").server_pids() == []
    finally:
        _stop_stand_in(server)


def _waits_on(pid: int, path: Path) -> bool:
    """pid has path open and sleeps (state S): a flock_within between its tries."""
    try:
        opened = {os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
        return os.path.realpath(path) in opened and Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] == "S"
    except OSError:  # it ended, or closed a descriptor as it was read
        return False


def test_a_stop_that_waits_for_its_turn_with_its_readers_gone_still_stops_the_server(tmp_path):
    """make sandbox-stop 2>&1 | <a reader that is gone> while another start or stop holds the turn: the new
    `waiting for ...` line met the closed pipe before the stop, and SIGPIPE ended it (141) with the server left
    running; without the wait the same command stops it. README: with the output's reader gone (`2>&1 |`),
    a command that changes the environment goes on to its end with the rest of its output dropped."""
    import fcntl
    import time

    from templates import ROOT

    state = tmp_path / "state"
    state.mkdir()
    server = sleeping_server(state)
    program = (
        "import sys; from pathlib import Path; import emulator.sandbox as s; from templates.errors import run; "
        f"s.STATE_DIR = Path({str(state)!r}); sys.argv = ['sandbox', 'stop']; run(s.main)"
    )
    try:
        with open(state / "turn.lock", "a") as turn:
            fcntl.flock(turn, fcntl.LOCK_EX)
            read, write = os.pipe()
            os.close(read)  # the reader is gone
            stopping = subprocess.Popen([sys.executable, "-c", program], cwd=ROOT, stdout=write, stderr=write)
            os.close(write)
            # it waits for the turn: turn.lock open and asleep between its tries (after its `waiting for` line), however
            # long a busy machine takes to start it (a fixed 1 s could end before it looked, and the test pass untried)
            deadline = time.monotonic() + 30
            while stopping.poll() is None and not _waits_on(stopping.pid, state / "turn.lock"):
                assert time.monotonic() < deadline, "the stop did not come to wait for its turn within 30 s"
                time.sleep(0.01)
        stopping.wait(timeout=30)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the server was left running (the stop exited {stopping.returncode})")
    finally:
        end_sleeping_server(server)


def test_a_state_directory_that_is_a_file_is_one_line(tmp_path):
    (tmp_path / "state").write_text("I am a file")
    for command in ("start", "stop", "status"):
        result = sandbox_cli(command, state_dir=tmp_path / "state")
        assert "Traceback" not in result.stderr, result.stderr
    assert "is a file, not the sandbox's state directory" in sandbox_cli("start", state_dir=tmp_path / "state").stderr


def test_a_broken_sandbox_params_file_does_not_block_stop_or_status(tmp_path):
    broken = tmp_path / "sandbox.yaml"
    broken.write_text("region: [")
    for command, code_expected in (("status", 1), ("stop", 0)):
        result = sandbox_cli(command, state_dir=tmp_path / "state", params_file=broken)
        assert result.returncode == code_expected and "Traceback" not in result.stderr, result.stderr


def test_each_problem_of_the_sandbox_params_file_is_one_line_with_one_prefix(sandbox, tmp_path):
    # make deploy, status... on the sandbox read its region first (make's `sandbox env`): the
    # deployer then judges the rest (make status reads all the same, make deploy refuses).
    broken = tmp_path / "sandbox.yaml"
    text = (ROOT / "params" / "sandbox.yaml").read_text() + "unknown_key: 1\nother_unknown_key: 2\n"
    broken.write_text(text)
    result = sandbox_cli("env", state_dir=sandbox.state_dir, params_file=broken)
    assert result.returncode == 0 and f"AWS_DEFAULT_REGION={sandbox.environment()['AWS_DEFAULT_REGION']}" in result.stdout, result
    broken.write_text(re.sub(r"(?m)^region: .*$", "region: nowhere-1", text))
    result = sandbox_cli("env", state_dir=sandbox.state_dir, params_file=broken)
    lines = result.stderr.splitlines()
    assert result.returncode == 2 and len(lines) == 3, result.stderr
    assert all(line.startswith(f"error: {broken}: ") and "error: error:" not in line for line in lines), result.stderr


def test_a_sandbox_seeded_in_another_region_than_params_names_is_refused_before_any_command(sandbox, tmp_path):
    """region changed in params/sandbox.yaml while the sandbox runs: a deploy created cert-dns in the new
    region, then failed at alb (no VpcId there) and advised RECREATE=1, which cannot help. make runs
    `sandbox env` before every command on ENV=sandbox: it refuses, naming both regions and both ways out."""
    sandbox.seed()
    seeded = sandbox.environment()["AWS_DEFAULT_REGION"]
    other = "eu-west-1" if seeded != "eu-west-1" else "us-west-2"
    moved = tmp_path / "sandbox.yaml"
    moved.write_text(re.sub(r"(?m)^region: .*$", f"region: {other}", (ROOT / "params" / "sandbox.yaml").read_text()))
    result = sandbox_cli("env", state_dir=sandbox.state_dir, params_file=moved)
    assert result.returncode == 2 and result.stdout == "", result
    assert result.stderr.startswith(f"error: the sandbox was seeded in {seeded}, but {moved} now says region: {other}; "), result
    assert f"Put region: {seeded} back, or start it afresh in {other}: make sandbox-stop && make sandbox" in result.stderr, result
    assert sandbox_cli("env", state_dir=sandbox.state_dir).returncode == 0  # params/sandbox.yaml's own region


def test_an_empty_endpoint_is_refused_not_read_as_aws(monkeypatch):
    # AWS_ENDPOINT_URL=$EMU with EMU unset: botocore reads an empty one as none, and the run went to AWS
    import io

    from scripts import deploy

    no_real_aws(monkeypatch, "")
    out, err = io.StringIO(), io.StringIO()
    code = deploy.main(
        ["status", "--env", "prod"], out=out, err=err, interactive=False, clients=lambda *_: pytest.fail("a client was made")
    )
    assert code == 2 and err.getvalue().startswith("error: AWS_ENDPOINT_URL is set but empty"), err.getvalue()
    assert "unset AWS_ENDPOINT_URL to reach AWS" in err.getvalue() and out.getvalue() == ""


def test_a_params_file_inside_the_project_is_named_as_people_type_it():
    from templates import params

    with pytest.raises(params.ParamsError) as refused:
        params.load(ROOT / "params" / "nope.yaml")
    assert refused.value.problems == ["params/nope.yaml: cannot be read: No such file or directory"]


@pytest.mark.parametrize(
    "endpoint", ["http://127.0.0.1:99999", "http://127.0.0.1:0", "notaurl", "http://[::1", "ftp://127.0.0.1:21", "http://my_host:4566"]
)
def test_an_endpoint_botocore_cannot_use_is_one_line_before_any_call(monkeypatch, endpoint):
    import io

    from scripts import deploy

    no_real_aws(monkeypatch, endpoint)
    out, err = io.StringIO(), io.StringIO()
    assert deploy.main(["status", "--env", "prod"], out=out, err=err, interactive=False) == 2
    assert err.getvalue() == f"error: AWS_ENDPOINT_URL={endpoint!r} is not an http(s)://HOST[:PORT] URL (ports 1 to 65535)\n"
    assert out.getvalue() == ""


# --- an endpoint that refuses, freezes or is not AWS: bounded, each retry said, one clear line --
@pytest.fixture
def offline_aws(monkeypatch):
    no_real_aws(monkeypatch)  # each test points AWS_ENDPOINT_URL at its own local endpoint

    # botocore sleeps between attempts in its endpoint module (standard mode: a random share of
    # 1, 2, 4, 8 s); the waits are recorded instead of slept, and counted in the elapsed time.
    import botocore.endpoint

    backoff = []
    monkeypatch.setattr(botocore.endpoint, "time", types.SimpleNamespace(sleep=backoff.append))  # that module's sleep only

    def run(endpoint, *argv):
        import io
        import time

        from scripts import deploy

        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
        out, err = io.StringIO(), io.StringIO()
        started = time.monotonic()
        code = deploy.main([*argv, "--env", "prod", "--params-dir", str(ROOT / "params")], out=out, err=err)
        run.out = out.getvalue()  # what the run printed, for a test that looks at it
        return code, err.getvalue(), time.monotonic() - started + sum(backoff)

    return run


def closed_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_refused_connection_fails_within_20_seconds_saying_each_retry(offline_aws):
    attempts = 5  # as the README's "Faults and how they are handled" promises, not the code's own constant
    endpoint = f"http://127.0.0.1:{closed_port()}"
    code, err, elapsed = offline_aws(endpoint, "status")
    assert code == 1 and elapsed < 20, (elapsed, err)
    # One round of retries, by the first call (the relaxed-policy marks' read): not a second round
    # by the next call to the same unreachable endpoint.
    retries = [line for line in err.splitlines() if line.startswith("AWS not answering")]
    assert [line.rsplit("retry ", 1)[1] for line in retries] == [f"{n} of {attempts - 1}" for n in range(1, attempts)]
    assert err.splitlines()[-1].startswith(f"error: cannot reach {endpoint}")
    assert "Traceback" not in err


def test_a_lock_whose_every_attempt_was_refused_is_not_said_to_be_held(offline_aws):
    # No attempt of the PutParameter connected, so nothing was written: no warning that the lock
    # "may still be held", and no second round of attempts to free it.
    # (alb: a layer a deploy of which needs no hosted zone id, which params/prod.yaml may not have yet)
    code, err, _ = offline_aws(f"http://127.0.0.1:{closed_port()}", "deploy", "--stack", "alb", "--yes")
    assert code == 1 and "may still be held" not in err, err
    retries = [line for line in err.splitlines() if line.startswith("AWS not answering")]
    assert retries and all(line.startswith("AWS not answering PutParameter") for line in retries), err


@pytest.fixture
def own_sandbox(tmp_path, monkeypatch):
    """A seeded sandbox of the test's own, which the test may stop (the session's serves other tests);
    stopped at its end. The retries' backoff is skipped: a stopped server refuses at once."""
    import botocore.endpoint

    from emulator.sandbox import Sandbox

    monkeypatch.setattr(botocore.endpoint, "time", types.SimpleNamespace(sleep=lambda seconds: None))
    box = Sandbox(tmp_path / "state").start(exit_with_parent=True)
    try:
        box.seed()
        yield box
    finally:
        box.stop()


# Stopped once the change set is made (before it runs), while ExecuteChangeSet is under way (its first attempt's
# answer lost, as when a paused server is stopped: the retries find nothing listening), and in the wait.
@pytest.mark.parametrize(
    "after",
    [
        "after-call.cloudformation.CreateChangeSet",
        "before-send.cloudformation.ExecuteChangeSet",
        "after-call.cloudformation.ExecuteChangeSet",
    ],
)
def test_a_sandbox_whose_server_is_gone_mid_deploy_says_that_alone(own_sandbox, monkeypatch, after):
    # Its change sets, stacks and lock went with it: the advice to delete a change set, follow or delete
    # the stack and free the lock named a server that was no more (make execute of a change set it no longer had).
    from botocore.exceptions import ReadTimeoutError

    from scripts.deploy import aws

    box, endpoint = own_sandbox, own_sandbox.endpoint

    def stop(**_):
        if box.stop() and after.startswith("before-send"):  # sent, and its answer lost; what a handler returns is the response
            raise ReadTimeoutError(endpoint_url=endpoint)

    on_each_client(monkeypatch, after, stop)
    with deploying_into(box) as run:
        code, out, err = run("deploy", "--stack", "cert-dns", "--yes")
    assert code == 1 and not box.running(), out + err
    assert "may be left" not in out and "delete-" not in out, out
    *retries, last = err.splitlines()
    assert last == (
        f"error: cannot reach {endpoint}/ ({aws.MAX_ATTEMPTS} tries): is the sandbox running? make sandbox-status; one started "
        "again (make sandbox) is empty, and make deploy YES=1 creates every layer again"
    ), err
    # each retry said, and nothing else; those of one call alone: the calls after it (the lock's release) end the run at once
    # named the sandbox: a run on it never reaches AWS
    assert len(retries) == aws.MAX_ATTEMPTS - 1 and all(line.startswith("the sandbox not answering ") for line in retries), err


def test_a_destroy_on_a_sandbox_whose_server_is_gone_says_that_alone(own_sandbox, monkeypatch):
    # It named the purge of the layers it had seen deleted and "make destroy destroys what is left", of stacks gone with the server.
    box, endpoint = own_sandbox, own_sandbox.endpoint
    with deploying_into(box) as run:
        for layer in ("cert-dns", "alb"):
            code, out, err = run("deploy", "--stack", layer, "--yes")
            assert code == 0, out + err
        on_each_client(monkeypatch, "after-call.cloudformation.DeleteStack", lambda **_: box.stop())  # alb's, the first
        code, out, err = run("destroy", "--yes")
    assert code == 1 and "not destroyed yet" not in out and "make purge" not in out, out
    assert err.splitlines()[-1].startswith(f"error: cannot reach {endpoint}/ "), err


def test_once_every_attempt_of_a_call_to_the_sandbox_was_refused_its_next_call_ends_the_run_past_any_best_effort_read():
    """A best-effort read (Container Insights, a change set list) takes an AWS error for a note: after a call whose
    every attempt the sandbox refused, the run asked its question and retried each later call in vain, to the same
    line. Its next call raises SandboxGone, which no `except AWS_ERRORS` takes, and main says that line."""
    from botocore.exceptions import EndpointConnectionError, ReadTimeoutError

    from scripts.deploy import aws

    refused = EndpointConnectionError(endpoint_url="http://127.0.0.1:9")
    assert not issubclass(aws.SandboxGone, aws.AWS_ERRORS)
    on_aws, sandbox = aws.AwsCalls(io.StringIO()), aws.AwsCalls(io.StringIO(), sandbox=True)
    for calls in (on_aws, sandbox):
        calls.remember_problem(caught_exception=refused, attempts=aws.MAX_ATTEMPTS - 1)  # not the last attempt: it retries
        calls.refuse_once_gone()
    on_aws.remember_problem(caught_exception=refused, attempts=aws.MAX_ATTEMPTS)
    on_aws.refuse_once_gone()  # off the sandbox, a refused endpoint may come back: every call retries
    sandbox.remember_problem(caught_exception=ReadTimeoutError(endpoint_url="http://127.0.0.1:9"), attempts=aws.MAX_ATTEMPTS)
    sandbox.refuse_once_gone()  # a paused server times out, and holds every stack and lock still: not gone
    sandbox.remember_problem(caught_exception=refused, attempts=aws.MAX_ATTEMPTS)
    with pytest.raises(aws.SandboxGone) as gone:
        sandbox.refuse_once_gone()
    assert aws.explain(gone.value, "sandbox") == aws.explain(refused, "sandbox")
    assert aws.explain(gone.value, "sandbox").startswith("error: cannot reach http://127.0.0.1:9 ")


def test_no_credentials_is_one_line_naming_the_environment_and_the_sandbox_command(offline_aws, monkeypatch):
    # It said "or use the sandbox", without how; nothing is sent (botocore stops before signing).
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    # these runs go to an emulator (AWS_ENDPOINT_URL, as every test's): said, with the keys one takes (helper S1)
    keys = f"; the emulator at AWS_ENDPOINT_URL={NOWHERE} may take any: AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing"
    code, err, _ = offline_aws(NOWHERE, "status")
    assert code == 1 and err == (
        f"error: no AWS credentials found for ENV=prod: set AWS_PROFILE (or run `aws sso login`){keys}, or rehearse on the local "
        "sandbox: make sandbox, then the same command with ENV=sandbox\n"
    ), err
    assert offline_aws.out == "", offline_aws.out  # no table's header above it, for a table that never came
    # not for what the sandbox refuses: it runs no containers and no release (make continue's first call meets it)
    code, err, _ = offline_aws(NOWHERE, "continue", "--yes")
    assert code == 1 and err == f"error: no AWS credentials found for ENV=prod: set AWS_PROFILE (or run `aws sso login`){keys}\n", err
    from botocore.exceptions import NoCredentialsError

    from scripts.deploy import aws

    monkeypatch.delenv("AWS_ENDPOINT_URL")  # on AWS: no emulator's keys to suggest
    said = aws.explain(NoCredentialsError(), "prod", "task")  # whose emulator check comes before its first call
    assert said == "error: no AWS credentials found for ENV=prod: set AWS_PROFILE (or run `aws sso login`)", said


@pytest.mark.parametrize("argv", [["status"], ["deploy", "--stack", "alarms", "--yes"]])
def test_a_frozen_endpoint_times_out_instead_of_hanging(offline_aws, monkeypatch, argv):
    """A deploy's first call takes the environment's lock: unanswered, it is not released with a second
    round of unanswered calls (stop signals held), but named as maybe held."""
    import socket

    from botocore.config import Config

    from scripts import deploy

    # The same settings with a 0.04 s read timeout, so that the test waits a fifth of a second, not the 20 s a real call may take.
    assert (deploy.CONFIG.connect_timeout, deploy.CONFIG.read_timeout) == (5, 20)
    monkeypatch.setattr(deploy, "CONFIG", deploy.CONFIG.merge(Config(read_timeout=0.04)))
    frozen = socket.create_server(("127.0.0.1", 0))  # accepts connections (the kernel does), never answers
    try:
        code, err, elapsed = offline_aws(f"http://127.0.0.1:{frozen.getsockname()[1]}", *argv)
    finally:
        frozen.close()
    assert code == 1 and elapsed < 30, (elapsed, err)
    # One round of attempts, each a read timeout: the first call's, not a second by the next call.
    retries = [line for line in err.splitlines() if line.startswith("AWS not answering")]
    assert [line.rsplit("retry ", 1)[1] for line in retries] == [f"{n} of {deploy.MAX_ATTEMPTS - 1}" for n in range(1, deploy.MAX_ATTEMPTS)]
    assert all("(Read timeout on endpoint URL" in line for line in retries), err
    if argv[0] == "deploy":  # the error, then what its lock needs first
        assert "did not answer in time" in err.splitlines()[-2], err
        assert (
            err.splitlines()[-1]
            == "  first: /startupwebapp/prod/deploy-lock may still be held by this run (the warning above); make unlock ENV=prod"
        )
    else:
        assert "did not answer in time" in err.splitlines()[-1], err
    if argv[0] == "deploy":
        assert "warning: /startupwebapp/prod/deploy-lock may be held by this run" in err and "make unlock ENV=prod" in err, err


def test_an_endpoint_that_is_not_aws_is_named_with_what_it_said(offline_aws):
    import http.server
    import threading

    class NotAws(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = b'{"message": "no such API here"}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotAws)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        endpoint = f"http://127.0.0.1:{server.server_address[1]}"
        code, err, _ = offline_aws(endpoint, "status")
    finally:
        server.shutdown()
        server.server_close()
    assert code == 1
    assert f"error: {endpoint} answered with something that is not an AWS API response: " in err
    assert "no such API here" in err and "check the AWS configuration" not in err


def test_a_deploy_whose_output_reader_is_gone_goes_on_to_its_end_and_frees_its_lock(seeded_sandbox):
    """`make deploy YES=1 | head -3`, or a CI log reader that died: the writes that find the pipe
    closed are dropped (SIGPIPE ended the run half way, its lock taken, its change set left)."""
    box, env, command = seeded_sandbox
    reader, writer = os.pipe()
    os.close(reader)  # gone before the first line: every write finds the pipe closed
    try:
        ran = subprocess.run(
            [*command, "--stack", "cert-dns"], cwd=ROOT, env=env, stdout=writer, stderr=subprocess.PIPE, text=True, timeout=120
        )
    finally:
        os.close(writer)
    assert ran.returncode == 0 and ran.stderr == "", (ran.returncode, ran.stderr)
    (stack,) = box.client("cloudformation").describe_stacks(StackName=templates.stack_name("sandbox", "cert-dns"))["Stacks"]
    assert stack["StackStatus"] == "CREATE_COMPLETE" and stack["EnableTerminationProtection"]
    lock = f"/{templates.PROJECT}/sandbox/deploy-lock"
    assert lock not in {p["Name"] for p in box.client("ssm").describe_parameters()["Parameters"]}


def test_a_deploy_started_with_stderr_closed_still_exits_with_its_own_status():
    # `2>&-`: Python starts with sys.stderr None; the error line is dropped, its status (2: bad input) kept.
    for argv in (["diff", "--env", "sandbox", "--stack", "nope"], ["nope", "--env", "sandbox"]):  # a bad stack, a bad command
        ran = subprocess.run(
            [sys.executable, "-m", "scripts.deploy", *argv],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            preexec_fn=lambda: os.close(2),
            timeout=60,
        )
        assert (ran.returncode, ran.stdout) == (2, b""), ran


def test_a_command_started_with_stdin_closed_runs_as_without_a_terminal(seeded_sandbox):
    # `<&-` (a job runner or script that closes it): Python starts with sys.stdin None, which is no terminal, so
    # a command asks nothing and runs as under `< /dev/null`; it was "AttributeError: 'NoneType' object has no
    # attribute 'isatty' ... an AWS answer without what this tool reads, or a bug of the tool's" for every command.
    box, env, command = seeded_sandbox
    for argv, code, said in (
        (["status", "--env", "sandbox"], 0, ""),
        ([*command[3:], "--stack", "cert-dns"], 0, ""),  # deploy --env sandbox --yes
        (["destroy", "--env", "sandbox", "--stack", "cert-dns"], 1, "terminal"),  # no YES=1: refused as without a terminal
    ):
        ran = subprocess.run(
            [sys.executable, "-m", "scripts.deploy", *argv],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            preexec_fn=lambda: os.close(0),
            timeout=120,
        )
        assert ran.returncode == code and "AttributeError" not in ran.stderr and said in ran.stderr, (argv, ran.returncode, ran.stderr)


@pytest.mark.parametrize("stderr_too", [False, True], ids=["> destroy.log", "> destroy.log 2>&1"])
def test_a_question_with_stdout_in_a_file_is_asked_on_the_terminal(seeded_sandbox, tmp_path, stderr_too):
    # `make destroy STACK=cert-dns > destroy.log` at a terminal: input() wrote the question into the file, and the run
    # waited for an answer nobody was asked for, without end, holding the environment's lock. It is asked on the
    # terminal itself (/dev/tty), also when stderr goes to the file too.
    import pty
    import select

    box, env, command = seeded_sandbox
    with deploying_into(box) as run:
        deployed(box, run, "cert-dns")
    log = tmp_path / "destroy.log"
    pid, terminal = pty.fork()
    if pid == 0:  # the child: stdin and stderr the terminal, stdout the file
        try:
            os.chdir(ROOT)
            descriptor = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            os.dup2(descriptor, 1)
            if stderr_too:
                os.dup2(descriptor, 2)
            os.execve(sys.executable, [sys.executable, "-m", "scripts.deploy", "destroy", "--env", "sandbox", "--stack", "cert-dns"], env)
        finally:
            os._exit(127)
    seen, status, answered, deadline = b"", None, False, time.monotonic() + 30
    try:
        while status is None and time.monotonic() < deadline:
            if select.select([terminal], [], [], 0.2)[0]:
                with contextlib.suppress(OSError):
                    seen += os.read(terminal, 65536)
            if b"[y/N] " in seen and not answered:
                os.write(terminal, b"n\n")
                answered = True
            ended, code = os.waitpid(pid, os.WNOHANG)
            status = os.waitstatus_to_exitcode(code) if ended else None
    finally:
        if status is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        os.close(terminal)
    written, stack = log.read_text(), templates.stack_name("sandbox", "cert-dns")
    assert answered and f"destroy {stack}".encode() in seen, (seen, written)
    assert status == 1 and "nothing destroyed" in (written if stderr_too else seen.decode()), (status, seen, written)
    # the file gets the question with its answer once answered (as a YES=1 run prints it), never a question waiting
    assert f"destroy {stack}" in written and "[y/N] n\n" in written and not written.rstrip("\n").endswith("[y/N]"), written
    assert box.client("cloudformation").describe_stacks(StackName=stack)["Stacks"]


@pytest.mark.parametrize("unbuffered", ["1", None], ids=["PYTHONUNBUFFERED=1", "buffered"])
def test_a_deploy_whose_stdout_is_a_non_blocking_pipe_loses_none_of_its_output_unsaid(seeded_sandbox, unbuffered):
    # A pipe another process of the CI step set O_NONBLOCK on (Node does: travis-ci/travis-ci#4704; asyncio's children:
    # Mic92/nix-fast-build#363), its reader a little slow: a write finds it full (EAGAIN). Under PYTHONUNBUFFERED=1, which
    # .github/workflows/deploy-service.yml sets, Python's unbuffered stdout drops what did not fit without raising: the
    # deploy's log ended after its first 4 KiB, exit 0, nothing said. Buffered, the first EAGAIN dropped the rest and
    # turned the deploy that worked into "error: cannot write the standard output", exit 1. The reader was only slow.
    import fcntl
    import threading

    box, env, command = seeded_sandbox
    env = {name: value for name, value in env.items() if name != "PYTHONUNBUFFERED"} | (
        {"PYTHONUNBUFFERED": unbuffered} if unbuffered else {}
    )
    reader, writer = os.pipe()
    fcntl.fcntl(writer, 1031, 4096)  # F_SETPIPE_SZ (Linux): one page
    os.set_blocking(writer, False)
    read = []

    def slow_reader():
        time.sleep(3)
        with os.fdopen(reader, "rb") as pipe:
            read.append(pipe.read())

    thread = threading.Thread(target=slow_reader)
    thread.start()
    try:
        ran = subprocess.run(command, cwd=ROOT, env=env, stdout=writer, stderr=subprocess.PIPE, text=True, timeout=120)
        # the tool's pipe made blocking is its own: the processes that share the step's keep theirs as they set it
        assert not os.get_blocking(writer)
    finally:
        os.close(writer)
        thread.join()
    stdout = read[0].decode()
    assert ran.returncode == 0 and "summary, " in stdout, (ran.returncode, ran.stderr, len(stdout), stdout[-300:])


def test_concurrent_deploys_of_one_environment_run_one_at_a_time_and_lose_no_release(seeded_sandbox):
    box, env, base = seeded_sandbox
    with deploying_into(box) as run:  # the first release, in this process: the concurrent ones are `make deploy`'s own
        deployed(box, run)
    ssm = box.client("ssm")
    before = len(releases(box))
    tags = [f"v{n}" for n in range(2, 8)]
    runs = {
        tag: subprocess.Popen(
            [*base, "--stack", "service", "--image-tag", tag],
            cwd=ROOT,
            env=env,
            start_new_session=True,  # a process group of its own, for stop_if_running
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for tag in tags
    }
    try:
        errors = {tag: run.communicate(timeout=300)[1] for tag, run in runs.items()}  # reading as they run: no full pipe
    finally:
        for run in runs.values():
            stop_if_running(run)
    results = {tag: (runs[tag].returncode, err) for tag, err in errors.items()}
    released = {tag for tag, (code, _) in results.items() if code == 0}
    refused = {  # refused naming the run that holds the lock, or because it finished just as this one started
        tag
        for tag, (code, err) in results.items()
        if code == 1
        and (
            "sandbox is being changed by another run: deploy STACK=service by" in err
            or "which finished just now; nothing was done: run this again" in err
        )
    }
    assert released and released | refused == set(tags), {tag: result for tag, result in results.items() if tag not in released | refused}
    history = releases(box)
    # every release that ran is recorded, once, and no refused one
    assert sorted(entry["image_tag"] for entry in history[before:]) == sorted(released), history
    assert ssm.get_parameters(Names=["/startupwebapp/sandbox/deploy-lock"])["InvalidParameters"]  # and the lock is free


def test_make_check_fails_on_a_stale_review_document(tmp_path, capsys):
    import shutil

    from scripts import review

    out = tmp_path / "output"
    shutil.copytree(ROOT / "output", out)
    check = ["--env", "prod", "--output-dir", str(out), "--params-dir", str(ROOT / "params"), "--check"]
    assert review.main(check) == 0, capsys.readouterr().err  # the committed document is current
    document = out / "review" / "prod.md"
    document.write_text(document.read_text().replace("review", "reveiw", 1))
    assert review.main(check) == 1
    err = capsys.readouterr().err
    assert "stale: " in err and "is not what `make review ENV=prod` writes" in err


def test_a_start_or_stop_waits_for_another_of_the_same_sandbox_and_says_so_past_its_bound(tmp_path, monkeypatch):
    """Two `make sandbox` at once: the second took the first's server, still starting, for a broken
    one and advised stopping it. It now waits its turn (bounded), then finds the server running."""
    import fcntl
    import threading
    import time

    import emulator.sandbox as sandbox_module

    state = tmp_path / "state"
    state.mkdir()
    other = open(state / "turn.lock", "a")  # noqa: SIM115 (closed by the timer below): another start or stop under way
    fcntl.flock(other, fcntl.LOCK_EX)
    monkeypatch.setattr(sandbox_module, "TURN_WAIT_SECONDS", 0.15)
    refused = sandbox_cli("stop", state_dir=state)
    assert refused.returncode != 0 and "another make sandbox or sandbox-stop has been under way for 0.15 s" in refused.stderr, refused
    monkeypatch.undo()  # its own bound, which must outlast another's start and seed
    threading.Timer(0.25, other.close).start()  # the other one ends
    started = time.monotonic()
    waited = sandbox_cli("stop", state_dir=state)
    assert waited.returncode == 0 and waited.stdout == "sandbox was not running\n", waited
    assert time.monotonic() - started >= 0.2
    assert waited.stderr == f"waiting for another make sandbox or sandbox-stop to end (at most {sandbox_module.TURN_WAIT_SECONDS} s)\n", (
        waited
    )


# --- a standard output that cannot be written (a full disk, `> /dev/full`) -------------------------
STDOUT_LOST = "error: cannot write the standard output (No space left on device): what was printed is incomplete\n"


class FullDisk:
    def write(self, text):
        raise OSError(28, "No space left on device")

    def flush(self):
        pass

    def isatty(self):
        return False


def test_a_full_disk_under_stdout_ends_a_deploy_where_it_would_and_says_so(seeded_sandbox, monkeypatch):
    import io

    from scripts import deploy

    box, _, _ = seeded_sandbox
    for name, value in box.environment().items():
        monkeypatch.setenv(name, value)
    err = io.StringIO()
    argv = ["deploy", "--env", "sandbox", "--stack", "cert-dns", "--yes"]
    assert deploy.main(argv, out=FullDisk(), err=err, interactive=False, sleep=lambda s: None) == 1
    assert err.getvalue().endswith(STDOUT_LOST) and "Traceback" not in err.getvalue(), err.getvalue()
    (stack,) = box.client("cloudformation").describe_stacks(StackName=templates.stack_name("sandbox", "cert-dns"))["Stacks"]
    assert stack["StackStatus"] == "CREATE_COMPLETE"  # it went on to its end: the change set executed, the lock freed
    assert box.client("ssm").get_parameters(Names=["/startupwebapp/sandbox/deploy-lock"])["InvalidParameters"]
    err = io.StringIO()  # a command that only reads stops at its first line
    assert deploy.main(["status", "--env", "sandbox"], out=FullDisk(), err=err, interactive=False) == 1
    assert err.getvalue() == STDOUT_LOST


@pytest.mark.parametrize("argv", [["generate.py", "--order"], ["-m", "emulator.sandbox", "status"]])
def test_a_full_disk_under_stdout_is_one_line_from_the_other_tools(argv):
    buffered = {name: value for name, value in os.environ.items() if name != "PYTHONUNBUFFERED"}  # the disk refuses at exit's flush
    with open("/dev/full", "w") as full:
        ran = subprocess.run([sys.executable, *argv], cwd=ROOT, env=buffered, stdout=full, stderr=subprocess.PIPE, text=True, timeout=60)
    assert (ran.returncode, ran.stderr) == (1, STDOUT_LOST)


@pytest.mark.parametrize("port", ["65536", "99999", "-1", "10" * 15, "0x50"])
def test_a_sandbox_port_out_of_range_is_refused_before_a_server_starts(tmp_path, port, capsys, monkeypatch):
    import emulator.sandbox as s

    monkeypatch.setattr(s, "STATE_DIR", tmp_path)
    with pytest.raises(SystemExit) as ended:
        s.main(["start", "--port", port])
    assert ended.value.code == 2 and "allowed: a port, 1 to 65535" in capsys.readouterr().err
    assert not (tmp_path / "pid").exists()  # no server was started to fail at its bind


def test_the_sandbox_help_lists_its_commands_only(capsys):
    import emulator.sandbox as s

    with pytest.raises(SystemExit):
        s.main(["--help"])
    help_text = capsys.readouterr().out  # the server's own command, `serve`, printed as ==SUPPRESS==
    assert "{start,stop,status,env}" in help_text and "SUPPRESS" not in help_text and " serve " not in help_text


def test_a_seed_that_params_sandbox_yaml_does_not_match_says_what_to_put_where(capsys):
    import emulator.sandbox as s

    values = s.environment().values
    created = {"VpcId": "vpc-0123456789abcdef0", "BackendSecurityGroupId": values["BackendSecurityGroupId"]}
    with pytest.raises(s.SandboxError) as refused:
        s.check_params(created)
    lines = str(refused.value).splitlines()
    assert lines[0] == "params/sandbox.yaml does not hold the ids the seed creates:"
    assert lines[1] == f"  parameters.VpcId: {values['VpcId']!r}, but the seed creates 'vpc-0123456789abcdef0'"
    assert lines[2].startswith("put these under parameters: in params/sandbox.yaml (or git checkout params/sandbox.yaml), run make")
    assert lines[3:] == [f"  {name}: {value}" for name, value in created.items()]


def test_sandbox_status_of_none_running_says_how_to_start_one(tmp_path, capsys, monkeypatch):
    import emulator.sandbox as s

    monkeypatch.setattr(s, "STATE_DIR", tmp_path)
    assert s.main(["status"]) == 1
    assert capsys.readouterr().out == "sandbox not running: start it with make sandbox (empty, seeded; make deploy YES=1 deploys into it)\n"


def test_a_start_waits_its_turn_as_a_stop_does(tmp_path, monkeypatch):
    """A second `make sandbox` while the first still starts: it must wait for the first's turn, not
    start a server of its own beside it nor take the first's, still starting, for a broken one."""
    import fcntl

    import emulator.sandbox as sandbox_module
    from emulator.sandbox import Sandbox

    started = []
    monkeypatch.setattr(Sandbox, "start", lambda self, **kwargs: started.append("start") or self)
    monkeypatch.setattr(Sandbox, "seed", lambda self: started.append("seed") or {})
    monkeypatch.setattr(sandbox_module, "TURN_WAIT_SECONDS", 0.15)
    state = tmp_path / "state"
    state.mkdir()
    with open(state / "turn.lock", "a") as other:  # another start or stop under way
        fcntl.flock(other, fcntl.LOCK_EX)
        refused = sandbox_cli("start", state_dir=state)
    assert refused.returncode == 2 and "another make sandbox or sandbox-stop has been under way for 0.15 s" in refused.stderr, refused
    assert started == []


def test_make_sandbox_says_where_the_server_it_started_runs_and_make_sandbox_stop_stops_it(tmp_path):
    from emulator.sandbox import Sandbox

    state = tmp_path / "state"
    try:
        started = sandbox_cli("start", state_dir=state)
        box = Sandbox(state)
        assert started.returncode == 0 and box.running(), started
        assert started.stdout.splitlines() == [
            f"sandbox running at {box.endpoint} (PID {box.pid}), seeded with the Phase 5.14 resources",
            "deploy into it with: make deploy YES=1 (ENV=sandbox is the default); its log: .sandbox/server.log",
        ]
        assert box.seeded_region() == environment_region()
        assert sandbox_cli("stop", state_dir=state).stdout == "sandbox stopped, and every stack deployed in it with it\n"
        assert not box.running()
    finally:
        Sandbox(state).stop()


def environment_region() -> str:
    from emulator.sandbox import PARAMS_FILE

    return load(PARAMS_FILE).region


def test_sandbox_env_prints_exports_that_reach_what_make_runs_after_it(sandbox):
    """make evaluates what `sandbox env` prints in the shell of the command it runs next (the
    Makefile's AWS): assignments without export would stay in that shell, and the deployer reach AWS."""
    result = sandbox_cli("env", state_dir=sandbox.state_dir)
    assert result.returncode == 0, result
    ran = subprocess.run(["sh", "-c", 'eval "$1" && exec env', "sh", result.stdout], capture_output=True, text=True, timeout=60)
    exported = dict(line.split("=", 1) for line in ran.stdout.splitlines() if "=" in line)
    assert {name: exported.get(name) for name in sandbox.environment()} == sandbox.environment(), ran


def test_an_endpoint_and_pid_files_a_killed_server_left_are_not_taken_for_a_running_sandbox(tmp_path):
    """A server killed (not stopped) leaves its files; its PID may be another process's by now (here
    this one's, which runs no sandbox): status and env say that no sandbox runs."""
    from emulator.sandbox import Sandbox

    state = tmp_path / "state"
    state.mkdir()
    (state / "endpoint").write_text(f"{NOWHERE}\n")
    (state / "pid").write_text(f"{os.getpid()}\n")
    assert not Sandbox(state).running() and Sandbox(state).pid is None
    for command, code in (("env", 2), ("status", 1)):
        result = sandbox_cli(command, state_dir=state)
        assert result.returncode == code and NOWHERE not in result.stdout + result.stderr, result
        assert "not running" in result.stdout + result.stderr, result


def test_a_client_of_a_sandbox_that_does_not_run_is_refused_not_pointed_at_aws(tmp_path):
    # Without an endpoint, botocore would make a client of AWS itself.
    from emulator.sandbox import Sandbox, SandboxError

    with pytest.raises(SandboxError, match="the sandbox is not running"):
        Sandbox(tmp_path / "state").client("sts")


def test_a_sandbox_port_at_either_end_of_its_range_is_taken():
    import emulator.sandbox as s

    assert [s.port_number(port) for port in ("0", "1", "65535")] == [0, 1, 65535]


def test_a_server_that_ignores_its_stop_signal_is_killed_not_left_running(state, monkeypatch):
    """A hung server (here one that ignores SIGTERM) must not outlive make sandbox-stop, which says it stopped."""
    import emulator.sandbox as sandbox_module

    ignoring = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print(flush=True); time.sleep(60)"
    # its command line names what a server of this state directory's does
    hung = subprocess.Popen(
        [sys.executable, "-c", ignoring, "emulator.sandbox", "serve", "--state-dir", str(state.state_dir)], stdout=subprocess.PIPE
    )
    try:
        hung.stdout.readline()  # its handler is in place
        assert state.server_pids() == [hung.pid]
        clock = itertools.count(step=5)  # the stop's wait for it to end passes in a few looks
        monkeypatch.setattr(sandbox_module, "time", types.SimpleNamespace(monotonic=lambda: next(clock), sleep=lambda seconds: None))
        assert state.stop()
        assert hung.wait(timeout=10) == -signal.SIGKILL
    finally:
        stop_if_running(hung)
        hung.stdout.close()


def test_a_server_that_refuses_the_status_request_is_one_that_answers(tmp_path, monkeypatch):
    """make sandbox-status asks without signing: any answer, a refusal too, tells a working server."""
    import http.server
    import threading

    from emulator.sandbox import Sandbox

    class Refusing(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_error(403)

        def log_message(self, *args):
            pass

    with http.server.HTTPServer(("127.0.0.1", 0), Refusing) as server:
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        try:
            monkeypatch.setattr(Sandbox, "running_endpoint", lambda self: f"http://127.0.0.1:{server.server_address[1]}")
            assert Sandbox(tmp_path / "state").answers()
        finally:
            server.shutdown()


@pytest.mark.parametrize(("state", "stopped"), [("S", False), ("R", False), ("T", True), ("t", True)])
def test_a_server_stopped_by_ctrl_z_or_by_a_debugger_is_said_stopped(tmp_path, monkeypatch, state, stopped):
    # T: stopped by a signal (Ctrl-Z, SIGSTOP); t: stopped by a debugger's trace (/proc/<pid>/stat, proc(5))
    import emulator.sandbox as s

    stat = tmp_path / "stat"
    stat.write_text(f"4242 (python) {state} 1 4242 4242 0 -1 4194560\n")
    monkeypatch.setattr(s.Sandbox, "pid", 4242)
    monkeypatch.setattr(s, "Path", lambda name: stat if str(name) == "/proc/4242/stat" else Path(name))
    assert s.Sandbox(tmp_path / "state").stopped() is stopped


@pytest.mark.parametrize(
    ("limits", "raised", "connections"),
    [((1024, 1048576), 4064, 4000), ((1024, 2048), 2048, 1984), ((8192, 8192), None, 4000), ((150, 150), 150, 100)],
)
def test_the_sandbox_keeps_as_many_connections_open_as_its_open_file_limit_leaves_room_for(monkeypatch, limits, raised, connections):
    import resource

    import emulator.sandbox as s

    now, set_to = list(limits), []

    def setrlimit(which, new):
        set_to.append(new[0])
        now[:] = new

    monkeypatch.setattr(resource, "getrlimit", lambda which: tuple(now))
    monkeypatch.setattr(resource, "setrlimit", setrlimit)
    assert s.connection_limit() == connections
    assert set_to == ([raised] if raised else [])


def test_a_fifo_where_a_generated_file_goes_is_put_back_when_a_later_write_fails(tmp_path, capsys, monkeypatch):
    # "nothing was changed" was said with the FIFO gone: the put-back kept regular files only (found by a mutation audit)
    from templates import generation

    out = tmp_path / "out"
    assert generate_in_process(out, "--no-lint") == 0
    fifo = out / "alb.json"
    fifo.unlink()
    os.mkfifo(fifo)
    refused = out / "service.json"
    refused.write_text("{}")  # changed too, and written after alb.json
    real = os.replace

    def replace(source, destination):
        if Path(destination) == refused:
            raise PermissionError(13, "Permission denied", str(destination))
        return real(source, destination)

    monkeypatch.setattr(generation.os, "replace", replace)
    assert generate_in_process(out, "--no-lint") == 1
    assert capsys.readouterr().err.endswith(f"error: cannot write {refused}: Permission denied; nothing was changed\n")
    assert fifo.is_fifo() and refused.read_text() == "{}"


def test_an_error_without_words_is_still_one_line_with_its_prefix():
    from templates.errors import ToolError, report

    stream = io.StringIO()
    assert report(ToolError("", code=2), stream) == 2
    assert stream.getvalue() == "error: \n"


def test_an_error_quoting_text_from_outside_reaches_the_terminal_escaped_on_stderr_with_its_status(monkeypatch):
    # report() is the one place that prints a ToolError: what its message quotes (a file name, an AWS answer) may hold an
    # escape sequence that would clear or retitle the terminal, or ring its bell
    from templates.errors import ToolError, report

    stderr, stdout = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stderr", stderr)
    monkeypatch.setattr(sys, "stdout", stdout)
    assert report(ToolError("cannot read a\x1b[2Jb\x07", code=2)) == 2
    assert report(ToolError("first\nsecond\n")) == 1
    # a carriage return or another of the characters str.splitlines() ends a line at, in quoted text, is no line of its own
    assert report(ToolError("cannot read a\rerror: forged\x85\u2028b")) == 1
    assert stderr.getvalue() == (
        "error: cannot read a\\x1b[2Jb\\x07\nerror: first\nerror: second\nerror: cannot read a\\rerror: forged\\x85\\u2028b\n"
    )
    assert stdout.getvalue() == ""


def test_long_lived_puts_the_collector_back_as_it_was_paused_or_not():
    from templates.errors import long_lived

    assert gc.isenabled()
    with long_lived():
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()  # paused by its caller: the block does not start it
    try:
        with long_lived():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_a_symlink_loop_is_a_refused_symlink_only_where_symlinks_are_refused(tmp_path):
    # where a path may be a symlink (generation's own files, a CA bundle), a loop is the OSError it is, not advice to copy the file
    from templates.errors import RefusedFile, open_regular_file

    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    with pytest.raises(RefusedFile, match="a symlink; allowed: a regular file"):
        open_regular_file(loop, follow_symlinks=False)
    with pytest.raises(OSError) as raised:
        open_regular_file(loop)
    assert raised.value.errno == errno.ELOOP


def test_an_output_whose_reader_left_takes_every_write_whole_and_flushes_no_more():
    from templates.errors import Output

    class Gone:
        """A pipe whose reader left: each write and flush is refused."""

        flushes = 0

        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self):
            self.flushes += 1
            raise BrokenPipeError(32, "Broken pipe")

    stream = Gone()
    out = Output(stream, goes_on=True)
    assert out.write("abc") == 3 and out.reader_gone  # dropped, as written: a caller that writes the rest does not loop
    assert out.write("more") == 4
    out.flush()
    assert stream.flushes == 0


def test_an_output_without_a_file_descriptor_dropped_leaves_no_descriptor_open():
    # drop() opened the null device, then found the stream had no descriptor, and kept the null device open (a mutation
    # audit found it): one per Output dropped
    import io

    from templates.errors import Output

    before = len(os.listdir("/proc/self/fd"))
    for _ in range(5):
        Output(io.StringIO(), goes_on=True).cannot_write(OSError(28, "No space left on device"))
    assert len(os.listdir("/proc/self/fd")) == before


def test_printable_escapes_each_end_of_the_control_character_ranges_and_keeps_tab_and_newline_on_request():
    from templates.errors import printable

    for character in "\x00\x08\x0b\x0c\x1f\x7f\x80\x9f":
        assert printable(f"a{character}b") == f"a{repr(character)[1:-1]}b", repr(character)
        assert printable(f"a{character}b", one_line=True) == f"a{repr(character)[1:-1]}b", repr(character)
    assert printable("a\tb\nc ~") == "a\tb\nc ~"
    assert printable("a\tb\nc ~", one_line=True) == "a\\tb\\nc ~"


def test_printable_escapes_what_reorders_a_line_shows_as_nothing_or_is_no_character_by_its_code():
    # a bidi override turned the rest of a line around, a Hangul filler read as nothing, a lone surrogate (JSON's "\\udc9b")
    # reached the terminal as a raw byte: each shown by its code, in the four digits Python writes
    from templates.errors import printable

    for character, shown in [
        ("\u202a", "\\u202a"),
        ("\u202e", "\\u202e"),
        ("\u2066", "\\u2066"),
        ("\u2069", "\\u2069"),
        ("\u200b", "\\u200b"),
        ("\u3164", "\\u3164"),
        ("\u034f", "\\u034f"),
        ("\ud800", "\\ud800"),
        ("\udfff", "\\udfff"),
        ("\u2028", "\\u2028"),
    ]:
        assert printable(f"a{character}b") == f"a{shown}b", repr(character)
    assert printable("caf\u00e9 \u65e5\u672c") == "caf\u00e9 \u65e5\u672c"  # letters that show stay as they are


def test_json_from_outside_nested_past_what_json_parses_is_no_value_not_a_traceback():
    from templates.errors import untrusted_json

    assert untrusted_json("[" * 100_000 + "]" * 100_000) is None
    assert untrusted_json("{") is None
    assert untrusted_json('{"a": [1]}') == {"a": [1]}


def test_a_file_of_exactly_the_most_bytes_is_read_and_one_byte_more_refused(tmp_path):
    from templates.errors import RefusedFile, read_regular_file

    path = tmp_path / "file"
    path.write_bytes(b"x" * 2048)
    assert read_regular_file(path, 2048) == b"x" * 2048
    path.write_bytes(b"x" * 2049)
    with pytest.raises(RefusedFile, match=r"^larger than 2 KiB; allowed: a params file of at most that$"):
        read_regular_file(path, 2048, "a params file")


def test_a_device_or_a_directory_where_a_file_is_read_is_refused_as_no_regular_file(tmp_path):
    # /dev/zero never ends, a FIFO blocks: judged by what was opened, before anything is read
    from templates.errors import RefusedFile, open_regular_file

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for path in ("/dev/zero", tmp_path, fifo):
        with pytest.raises(RefusedFile, match=r"^not a regular file; allowed: a regular file$"):
            open_regular_file(path)


def test_a_yaml_problem_is_one_line_of_at_most_200_characters_of_what_the_parser_said():
    from templates.errors import yaml_problem

    class Problem(Exception):
        problem = "x" * 150 + "\n  " + "y" * 150

    assert yaml_problem(Problem()) == " cannot be read as YAML: " + ("x" * 150 + " " + "y" * 150)[:200]


def test_a_tool_that_only_reads_ends_at_once_by_sigpipe_once_its_reader_is_gone():
    # `make status | head -1`: status 141 as a writer SIGPIPE ended, not main's own end after output no one reads
    probe = (
        "import sys, time\n"
        "from templates.errors import run\n"
        "def main():\n"
        "    for n in range(200):\n"
        "        print('line', n, flush=True)\n"
        "        time.sleep(0.01)\n"
        "    print('reached the end', file=sys.stderr)\n"
        "    return 0\n"
        "run(main)\n"
    )
    tool = subprocess.Popen([sys.executable, "-c", probe], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    tool.stdout.readline()
    tool.stdout.close()  # the reader leaves
    stderr = tool.stderr.read()
    assert (tool.wait(timeout=60), stderr) == (-signal.SIGPIPE, "")


def test_an_output_of_a_command_that_only_reads_stops_it_once_its_reader_left_and_drops_the_rest():
    from templates.errors import Output, ReaderGone

    class Gone:
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self):
            raise BrokenPipeError(32, "Broken pipe")

    out = Output(Gone(), goes_on=False)
    with pytest.raises(ReaderGone):
        out.write("status\n")
    assert out.reader_gone and out.write("more") == 4  # dropped from then on, as Python's flush at exit is


def test_stop_signals_held_leave_an_ignored_one_ignored_and_say_nothing_of_it():
    # under nohup SIGHUP is ignored: a hangup during the block is no stop, and `held` says nothing of one
    from templates.errors import stops_held

    told = []
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with stops_held(held=lambda: told.append("held")):
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
            os.kill(os.getpid(), signal.SIGHUP)
        assert told == [] and signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, previous)


@contextlib.contextmanager
def sigterm_recorded():
    """SIGTERM's handler, within the block, records each SIGTERM in the list it gives; the one before is put back."""
    acted = []
    previous = signal.signal(signal.SIGTERM, lambda number, frame: acted.append(number))
    try:
        yield acted
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_a_second_stop_signal_held_acts_at_once_and_not_again_as_the_block_ends():
    from templates.errors import stops_held

    told = []
    with sigterm_recorded() as acted:
        with stops_held(held=lambda: told.append("held")):
            os.kill(os.getpid(), signal.SIGTERM)
            assert (told, acted) == (["held"], [])
            os.kill(os.getpid(), signal.SIGTERM)
            assert acted == [signal.SIGTERM]
        assert (told, acted) == (["held"], [signal.SIGTERM])


@pytest.mark.parametrize("first", [signal.SIGHUP, signal.SIGTERM], ids=["SIGHUP twice", "SIGTERM and SIGHUP"])
def test_a_sighup_after_the_first_stop_held_waits_as_the_first_does(first):
    # A closed terminal sends SIGHUP twice at once (the shell's, the system's), a session's end SIGTERM and SIGHUP: the
    # second acted at once, as a second Ctrl-C does, and a deploy left its lock held and its release unrecorded.
    from templates.errors import stops_held

    told, acted = [], []
    handlers = {number: signal.signal(number, lambda number, frame: acted.append(number)) for number in (first, signal.SIGHUP)}
    try:
        with stops_held(held=lambda: told.append("held")):
            os.kill(os.getpid(), first)
            os.kill(os.getpid(), signal.SIGHUP)
            assert (told, acted) == (["held"], [])
        assert acted == [first]
    finally:
        for number, handler in handlers.items():
            signal.signal(number, handler)


def test_a_held_stop_whose_line_cannot_be_said_is_still_held():
    # `held` prints what the run finishes first; a stream that cannot take that line then (the run was itself writing to
    # it: RuntimeError, reentrant call) loses the line, not the hold: the stop acts as the block ends, not at once.
    from templates.errors import stops_held

    def cannot_say():
        raise RuntimeError("reentrant call inside <_io.BufferedWriter name='<stderr>'>")

    with sigterm_recorded() as acted:
        with stops_held(held=cannot_say):
            os.kill(os.getpid(), signal.SIGTERM)
            assert acted == []
        assert acted == [signal.SIGTERM]


def test_once_a_second_stop_signal_held_acted_a_third_acts_at_once_too():
    # The second acts at once, as the block may not end soon (AWS not answering): the handlers are back, and a third is
    # not held again (nor `held` said twice).
    from templates.errors import stops_held

    told = []
    with sigterm_recorded() as acted:
        with stops_held(held=lambda: told.append("held")):
            for _ in range(3):
                os.kill(os.getpid(), signal.SIGTERM)
            assert (told, acted) == (["held"], [signal.SIGTERM, signal.SIGTERM])
        assert acted == [signal.SIGTERM, signal.SIGTERM]


def test_a_stop_signal_held_whose_handler_is_the_default_ends_the_process_by_it_as_the_block_ends():
    # A process that is no tool (python -c, a pytest worker) keeps SIGTERM's default: held, it still ends the process by
    # SIGTERM once the block ends, not dropped.
    probe = (
        "import os, signal\n"
        "from templates.errors import stops_held\n"
        "signal.signal(signal.SIGTERM, signal.SIG_DFL)\n"
        "with stops_held():\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "    print('held', flush=True)\n"
        "print('not ended', flush=True)\n"
    )
    ran = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert (ran.returncode, ran.stdout) == (-signal.SIGTERM, "held\n"), ran.stderr


def test_a_lint_in_worker_processes_puts_back_the_sigpipe_handling_it_found():
    # lint_groups ignores SIGPIPE while its pool runs (a stopped worker's closed pipe is the pool's error); after it, a
    # closed reader (`make check | head`) ends the tool again (errors.run: SIG_DFL), rather than being ignored.
    probe = (
        "import signal\n"
        "from templates import validation\n"
        "validation.lint_group = lambda runner, paths: []\n"
        "signal.signal(signal.SIGPIPE, signal.SIG_DFL)\n"
        "print(validation.lint_groups(None, [['a'], ['b']]), signal.getsignal(signal.SIGPIPE) is signal.SIG_DFL)\n"
    )
    ran = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert (ran.returncode, ran.stdout) == (0, "[[], []] True\n"), ran.stderr


def test_a_run_whose_standard_output_failed_exits_with_mains_own_failing_status():
    probe = "from templates.errors import run\ndef main():\n    print('x')\n    return 2\nrun(main)\n"
    with open("/dev/full", "w") as full:
        ran = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, stdout=full, stderr=subprocess.PIPE, text=True, timeout=60)
    assert ran.returncode == 2, ran.stderr
    assert ran.stderr.startswith("error: cannot write the standard output"), ran.stderr


def test_under_run_ctrl_c_stays_a_keyboard_interrupt_and_sigterm_and_sighup_are_terminated():
    # make logs FOLLOW=1 ends by design at Ctrl-C, and at no other stop signal (templates/errors.py Terminated)
    probe = (
        "import os, signal, time\n"
        "from templates.errors import run\n"
        "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
        "signal.signal(signal.SIGHUP, signal.SIG_DFL)\n"
        "signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM, signal.SIGHUP})\n"
        "def main():\n"
        "    for number in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM):\n"
        "        try:\n"
        "            os.kill(os.getpid(), number)\n"
        "            time.sleep(20)\n"
        "        except KeyboardInterrupt as stop:\n"
        "            print(signal.Signals(number).name, type(stop).__name__)\n"
        "    return 0\n"
        "run(main)\n"
    )
    ran = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60)
    # (SIGHUP before SIGTERM: after a SIGTERM, a SIGHUP is ignored, as no second stop)
    assert (ran.returncode, ran.stdout) == (0, "SIGINT KeyboardInterrupt\nSIGHUP Terminated\nSIGTERM Terminated\n"), ran.stderr


SECOND_STOP_AS_RUN_ENDS = """
freeze = gc.freeze
def freeze_after_a_second_signal():
    os.kill(os.getpid(), SECOND)
    freeze()
gc.freeze = freeze_after_a_second_signal
"""
SECOND_STOP_AS_INTERRUPTED_IS_SAID = """
class Stderr:
    def write(self, text):
        written = sys.__stderr__.write(text)
        if text == "interrupted":
            os.kill(os.getpid(), SECOND)
        return written
    def flush(self):
        sys.__stderr__.flush()
sys.stderr = Stderr()
"""


@pytest.mark.parametrize("moment", [SECOND_STOP_AS_RUN_ENDS, SECOND_STOP_AS_INTERRUPTED_IS_SAID], ids=["run ends", "said"])
@pytest.mark.parametrize("second", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=lambda number: number.name)
def test_a_stop_signal_after_a_tool_said_interrupted_changes_nothing(second, moment):
    # A CI cancel's SIGTERM twice, a logout's SIGTERM and SIGHUP: the second, as the tool ended after `interrupted`,
    # said it again, a second Ctrl-C then ending the tool by SIGINT itself (-2) rather than with 130; later, as Python's
    # finalization puts a handled signal's default back, a SIGTERM ended it by SIGTERM (-15, exit status 143).
    # Here it comes as run() freezes the objects left alive (gc.freeze) after main() returned, or as main says it.
    probe = (
        "import gc, os, signal, sys, time\n"
        "from templates.errors import entry_point, run\n"
        "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
        f"{moment.replace('SECOND', str(int(second)))}"
        "@entry_point\n"
        "def main():\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "    time.sleep(20)\n"
        "run(main)\n"
    )
    ran = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert (ran.returncode, ran.stderr) == (130, "interrupted\n")


def test_a_stop_signal_after_a_main_of_its_own_returned_130_changes_nothing():
    # a main that says `interrupted` and returns 130 itself (no entry_point, as the deployer's): run() ignores the stop
    # signals from there, so that a CI cancel's second SIGTERM as it ends does not end the tool by SIGTERM (143)
    probe = (
        "import gc, os, signal, sys\n"
        "from templates.errors import run\n"
        f"{SECOND_STOP_AS_RUN_ENDS.replace('SECOND', str(int(signal.SIGTERM)))}"
        "def main():\n"
        "    print('interrupted', file=sys.stderr)\n"
        "    return 130\n"
        "run(main)\n"
    )
    ran = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert (ran.returncode, ran.stderr) == (130, "interrupted\n")


# The deployer's main says `interrupted` itself (its Failure, through report) and returns 130 after: run() ignores later stop
# signals only then. A deploy stopped while it waits on AWS: its first request reaches a loopback endpoint that never
# answers, which sends SIGTERM; the second signal comes as the deployer says `interrupted`, the moment the test above
# gives an entry_point tool.
DEPLOYER_SAYS_INTERRUPTED = """
import os, signal, socket, sys, threading, runpy
signal.signal(signal.SIGINT, signal.default_int_handler)
server = socket.socket()
server.bind(("127.0.0.1", 0))
server.listen(16)
os.environ.update(AWS_ENDPOINT_URL=f"http://127.0.0.1:{server.getsockname()[1]}", AWS_ACCESS_KEY_ID="testing",
                  AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION=SANDBOX_REGION, AWS_EC2_METADATA_DISABLED="true")
def first_stop():
    kept = server.accept()  # the deployer's first request: it now waits for an answer
    os.kill(os.getpid(), signal.SIGTERM)
threading.Thread(target=first_stop, daemon=True).start()
class Stderr:
    def write(self, text):
        written = sys.__stderr__.write(text)
        if text.startswith("interrupted"):
            os.kill(os.getpid(), SECOND)
        return written
    def flush(self):
        sys.__stderr__.flush()
    def __getattr__(self, name):
        return getattr(sys.__stderr__, name)
sys.stderr = Stderr()
sys.argv = ["scripts.deploy", "status", "--env=sandbox"]
runpy.run_module("scripts.deploy", run_name="__main__", alter_sys=True)
"""


@pytest.mark.parametrize("second", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=lambda number: number.name)
def test_a_stop_signal_as_the_deployer_says_interrupted_changes_nothing(second):
    # (an attacker review of dce5328) "run() ignores stop signals once main returns 130 (covers the deployer's main)": the
    # deployer says it before it returns, and a second signal then said it again on the same line ("interruptedinterrupted").
    from emulator import sandbox

    # the sandbox's region as the AWS configuration (make sets it so): another adds the deployer's note that they differ
    probe = DEPLOYER_SAYS_INTERRUPTED.replace("SECOND", str(int(second))).replace("SANDBOX_REGION", repr(sandbox.region()))
    ran = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert (ran.returncode, ran.stderr) == (130, "interrupted\n"), (ran.returncode, ran.stderr)


@pytest.mark.parametrize("first", [signal.SIGHUP, signal.SIGTERM], ids=["SIGHUP twice", "SIGTERM and SIGHUP"])
def test_a_sighup_as_the_first_stop_unwinds_does_not_cut_its_clean_up_short(first):
    # A closed terminal's two SIGHUPs, 0.1 ms apart where they do not merge (an attacker review measured it on a pty), or a
    # session's end's SIGTERM and SIGHUP: the second raised again in the clean-up the first had started (a deploy's
    # lock release, before its own hold).
    probe = (
        "import os, signal, time\n"
        "from templates.errors import entry_point, run\n"
        "@entry_point\n"
        "def main():\n"
        "    try:\n"
        f"        os.kill(os.getpid(), {int(first)})\n"
        "        time.sleep(20)\n"
        "    finally:\n"
        "        os.kill(os.getpid(), signal.SIGHUP)\n"
        "        time.sleep(0.05)\n"
        "        print('cleaned up', flush=True)\n"
        "run(main)\n"
    )
    ran = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert (ran.returncode, ran.stdout, ran.stderr) == (130, "cleaned up\n", "interrupted\n")


def test_a_run_in_this_process_leaves_its_ctrl_c_to_a_main_called_after_it():
    # (an attacker review of dce5328) run() marked the process as ending for good: a test that called it in-process, then
    # an entry_point main that met Ctrl-C, left pytest's own Ctrl-C ignored.
    from templates.errors import entry_point, run

    handlers = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        with pytest.raises(SystemExit):
            run(lambda: 0, reader_gone_ends=False)

        @entry_point
        def stopped():
            raise KeyboardInterrupt

        assert stopped() == 130
        assert signal.getsignal(signal.SIGINT) is handlers[signal.SIGINT]
    finally:
        for number, handler in handlers.items():
            signal.signal(number, handler)


def test_an_entry_point_interrupted_outside_the_main_thread_under_run_is_still_interrupted_and_130():
    # ending_interrupted sets the stop signals aside under run(); signal.signal refuses that outside the main thread
    # (ValueError), which must leave them as they are, not replace `interrupted` with a traceback in that thread.
    probe = (
        "import threading\n"
        "from templates.errors import entry_point, run\n"
        "said = []\n"
        "@entry_point\n"
        "def stopped():\n"
        "    raise KeyboardInterrupt\n"
        "def main():\n"
        "    worker = threading.Thread(target=lambda: said.append(stopped()))\n"
        "    worker.start()\n"
        "    worker.join()\n"
        "    print('returned', said, flush=True)\n"
        "    return 0\n"
        "run(main)\n"
    )
    ran = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert (ran.returncode, ran.stdout, ran.stderr) == (0, "returned [130]\n", "interrupted\n"), (ran.returncode, ran.stdout, ran.stderr)


@pytest.mark.parametrize("refused", [errno.EPERM, errno.EMLINK], ids=["protected_hardlinks", "link-count-at-limit"])
def test_a_fifo_that_cannot_be_linked_is_not_lost_by_a_failed_make_templates_said_to_have_changed_nothing(
    tmp_path, capsys, monkeypatch, refused
):
    # (an attacker review of 8f3952c) keep_previous linked a special file; where the link was refused it kept None ("put back
    # as absent"), yet move_in replaced the FIFO all the same, and a later failure unlinks the new file and says "nothing was
    # changed", the FIFO gone. EPERM is what fs.protected_hardlinks=1 (the default of most distributions) answers a runner who
    # does not own a special file (safe_hardlink_source: never a FIFO); EMLINK a file at the file system's link limit. Both
    # reproduced for real: a FIFO owned by uid 1000, make templates run without CAP_FOWNER, service.json a directory.
    from templates import generation

    out = tmp_path / "out"
    assert generate_in_process(out, "--no-lint") == 0
    fifo = out / "alb.json"
    fifo.unlink()
    os.mkfifo(fifo)
    blocked = out / "service.json"  # changed too, written after alb.json: a directory in its place
    blocked.unlink()
    blocked.mkdir()
    real = os.link

    def link(source, destination, **kwargs):
        if Path(source) == fifo:
            raise OSError(refused, os.strerror(refused), str(source), None, str(destination))
        return real(source, destination, **kwargs)

    monkeypatch.setattr(generation.os, "link", link)
    assert generate_in_process(out, "--no-lint") == 1
    err = capsys.readouterr().err
    # the run stops at the file it cannot keep, before replacing it, saying why
    assert err.endswith(f"error: cannot write {fifo}: {os.strerror(refused)}; nothing was changed\n"), err
    assert blocked.is_dir()
    assert os.path.lexists(fifo) and fifo.is_fifo(), err  # output/ as it was, file type for file type


def test_a_symlink_to_a_directory_where_a_generated_file_goes_is_put_back_by_move_in(tmp_path):
    # (an attacker review of 8f3952c; latent: refuse_output_dir refuses any symlink first, so make templates reaches this only
    # where one is made between that check and the move) keep_previous asks path.is_dir(), which follows a symlink: a symlink
    # to a directory is kept as None, os.replace replaces the link itself, and the put-back unlinks the new file, the link gone.
    from templates import generation
    from templates.errors import ToolError

    out, staging, elsewhere = tmp_path / "out", tmp_path / "out" / ".staging-x", tmp_path / "elsewhere"
    staging.mkdir(parents=True)
    elsewhere.mkdir()
    (out / "alb.json").symlink_to(elsewhere)
    (out / "service.json").mkdir()  # the write that fails, after alb.json's
    for name in ("alb.json", "service.json"):
        (staging / name).write_text("{}")
    with pytest.raises(ToolError) as failed:
        generation.move_in(staging, [out / "alb.json", out / "service.json"], [], out)
    assert "nothing was changed" in str(failed.value) or "part old" in str(failed.value)
    assert (out / "alb.json").is_symlink() and os.readlink(out / "alb.json") == str(elsewhere)


@pytest.mark.parametrize(
    "refused, theirs, kept_as",
    [
        (errno.EPERM, True, "itself"),  # fs.protected_hardlinks: another user's file
        (errno.EMLINK, False, "itself"),  # at the link limit: it has other names
        (errno.EPERM, False, "a copy"),  # a file system without hard links (vfat answers EPERM): the runner's own file
    ],
    ids=["protected_hardlinks", "link-count-at-limit", "no-links-here"],
)
def test_a_regular_file_no_link_keeps_is_put_back_as_itself_or_as_a_faithful_copy(tmp_path, monkeypatch, refused, theirs, kept_as):
    # (an attacker review of 39badea) keep_previous copied every regular file no link kept: another user's file came back
    # as the runner's (fs.protected_hardlinks refuses to link a file the runner does not own), one at the link limit no
    # longer linked with its other names, and the run said "nothing was changed". Such a file stops the run before it is
    # replaced; a copy is kept only of the runner's own file of one name, where the file system has no links.
    from templates import generation
    from templates.errors import ToolError

    out, staging = tmp_path / "out", tmp_path / "out" / ".staging-x"
    staging.mkdir(parents=True)
    kept = out / "alb.json"
    kept.write_text("old")
    before = os.lstat(kept)
    if theirs:  # the runner is someone else than the file's owner
        monkeypatch.setattr(generation.os, "geteuid", lambda: before.st_uid + 1)
    if refused == errno.EMLINK:
        os.link(kept, out / "alb-other-name.json")
        before = os.lstat(kept)
    (out / "service.json").mkdir()  # the write that fails, after alb.json's
    for name in ("alb.json", "service.json"):
        (staging / name).write_text("{}")
    real = os.link

    def link(source, destination, **kwargs):
        if Path(source) == kept:
            raise OSError(refused, os.strerror(refused), str(source), None, str(destination))
        return real(source, destination, **kwargs)

    monkeypatch.setattr(generation.os, "link", link)
    with pytest.raises(ToolError) as failed:
        generation.move_in(staging, [kept, out / "service.json"], [], out)
    after = os.lstat(kept)
    assert "nothing was changed" in str(failed.value) and kept.read_text() == "old"
    if kept_as == "itself":  # the run stopped before replacing it: its own inode, owner and names
        assert str(failed.value).startswith(f"cannot write {kept}: {os.strerror(refused)}"), failed.value
        assert (after.st_ino, after.st_uid, after.st_nlink) == (before.st_ino, before.st_uid, before.st_nlink)
    else:  # replaced, then put back from the copy: the later write is what failed
        assert str(failed.value).startswith(f"cannot write {out / 'service.json'}: "), failed.value
        assert (after.st_uid, after.st_mode) == (before.st_uid, before.st_mode)


# templates.errors.unaligned_key where the keys beside the line do not start their lines: it named where a list item's dash
# is, or a list item that is no key (the line before), and a key moved to that indentation was refused again
UNALIGNED_BESIDE_NO_KEY = [
    # smoke_checks written in block style, "status" a space short of "path" (at 4, after "- "): the guidance named line 2's
    # indentation, 2 (the dash's), and a key moved there is refused again ("expected <block end>, but found '?'")
    (
        "a list item's key a space short",
        "smoke_checks:\n  - path: /api/user/login\n   status: 405\n",
        3,
        "indented 3 spaces, between the keys of line 2 (4) and those of line 1 (0)",
    ),
    # a key a space short after a block list: it named "line 3 4", a list item, not a key the line could be aligned with
    (
        "a key a space short after a block list",
        "parameters:\n  AlertEmails:\n    - a@example.com\n DesiredCount: 1\n",
        4,
        "indented 1 space, between the keys of line 2 (2) and those of line 1 (0)",
    ),
    # (mutation audit) a list item whose comment holds ": " is no key: the key above it is the one compared with
    (
        "a key a space short after a list item whose comment holds a colon",
        "parameters:\n  AlertEmails:\n    - a@example.com  # ops: on call\n DesiredCount: 1\n",
        4,
        "indented 1 space, between the keys of line 2 (2) and those of line 1 (0)",
    ),
    # (mutation audit) the nearest key above may be the file's first line
    (
        "a key a space short under the first line's list",
        "parameters:\n  - x\n DesiredCount: 1\n",
        3,
        "indented 1 space, deeper than the keys of line 1 (0), where no open mapping has keys",
    ),
]


# templates.errors.unaligned_key took "the nearest line above that holds a key" by key_of, which read a comment at column 0
# and a list item of a flow mapping (prod.yaml's smoke_checks) as keys, and a block scalar's text as one too: the guidance
# then named a comment line, or the column of a list item's "{", or a line of text, as the keys to align with.
UNALIGNED_AFTER_NO_KEY = [
    # prod.yaml's own shape: a comment at column 0 holding ": " between tags and enabled_layers. Before d524706 the
    # guidance named line 3 (CostCenter, 2), as comments were passed over; it then named the comment, "line 4 0"
    (
        "a key a space short after a comment at column 0",
        "region: us-east-1\ntags:\n  CostCenter: startupwebapp\n# ci: the GitHub OIDC provider and deploy roles, once per account.\n"
        " enabled_layers: [ci]\n",
        5,
        "indented 1 space, between the keys of line 3 (2) and those of line 2 (0)",
    ),
    # smoke_checks as prod.yaml writes them, in flow style: "line 3 4" named a list item, where its "{" is
    (
        "a key a space short after a list of flow mappings",
        "region: us-east-1\nsmoke_checks:\n  - {path: /api/user/login, status: 405}\n parameters:\n  DesiredCount: 1\n",
        4,
        "indented 1 space, deeper than the keys of line 2 (0), where no open mapping has keys",
    ),
    # a block scalar's text holding ": " (not a regression of d524706: the line before was named before it too)
    (
        "a key a space short after a block scalar",
        "shared_inputs:\n  DatabaseSecretArn: |\n    reason: staging replays prod's data\n DatabaseName: x\n",
        4,
        "indented 1 space, between the keys of line 2 (2) and those of line 1 (0)",
    ),
]


# The block keys were once found line by line, passing over a one-line flow collection and a key's block scalar, but not a
# value that runs over several lines another way: the continuation of a flow mapping (a smoke check split over two lines), a quoted
# scalar's next line, a block scalar that is a list item ("- >-") or carries a tag (!!str |). Their text holding ": " was
# taken for a key, and the guidance named that line and its column as the keys to align with.
UNALIGNED_AFTER_MULTI_LINE_VALUE = [
    (
        "a key a space short after a smoke check split over two lines",
        "region: us-east-1\nsmoke_checks:\n  - {path: /api/user/login,\n     status: 405}\n parameters:\n  DesiredCount: 1\n",
        5,
        "indented 1 space, deeper than the keys of line 2 (0), where no open mapping has keys",
    ),
    (
        "a key a space short after a flow mapping over two lines",
        "parameters:\n  M: {a: 1,\n    b: 2}\n DesiredCount: 1\n",
        4,
        "indented 1 space, between the keys of line 2 (2) and those of line 1 (0)",
    ),
    (
        "a key a space short after a quoted scalar over two lines",
        'parameters:\n  A: "one\n    two: three"\n B: 2\n',
        4,
        "indented 1 space, between the keys of line 2 (2) and those of line 1 (0)",
    ),
    (
        "a key a space short after a list item that is a block scalar",
        "parameters:\n  AlertEmails:\n    - >-\n      ops: on call\n DesiredCount: 1\n",
        5,
        "indented 1 space, between the keys of line 2 (2) and those of line 1 (0)",
    ),
    (
        "a key a space short after a tagged block scalar",
        "parameters:\n  Note: !!str |\n    a: b\n B: 2\n",
        4,
        "indented 1 space, between the keys of line 2 (2) and those of line 1 (0)",
    ),
]


# A list item ("- ") closes the mapping of the item before it: a later item that is a scalar, a flow mapping, a block scalar
# or a list leaves no key of that mapping open, though its keys are the nearest above. They were named as an open mapping
# the line falls between (a mapping item's "to: b" for an item "- c@example.com" after it).
UNALIGNED_AFTER_CLOSED_ITEM = [
    (
        "a key a space short after a list whose last item is a scalar",
        "parameters:\n  AlertEmails:\n    - name: a\n      to: b\n    - c@example.com\n   DesiredCount: 1\n",
        6,
        "indented 3 spaces, deeper than the keys of line 2 (2), where no open mapping has keys",
    ),
    (
        "a key a space short after a list whose last item is a flow mapping",
        "smoke_checks:\n  - path: /a\n    status: 200\n  - {path: /b, status: 405}\n parameters:\n  DesiredCount: 1\n",
        5,
        "indented 1 space, deeper than the keys of line 1 (0), where no open mapping has keys",
    ),
    (
        "a key a space short after a list whose last item is a block scalar",
        "parameters:\n  - a: 1\n  - |\n    text: y\n b: 1\n",
        5,
        "indented 1 space, deeper than the keys of line 1 (0), where no open mapping has keys",
    ),
    (
        "a key a space short in a list item that is a list, after an item that is a mapping",
        "parameters:\n  - b: 1\n  - - c: 1\n     d: 2\n",
        4,
        "indented 5 spaces, between the keys of line 3 (6) and those of line 1 (0)",
    ),
]


UNALIGNED = UNALIGNED_BESIDE_NO_KEY + UNALIGNED_AFTER_NO_KEY + UNALIGNED_AFTER_MULTI_LINE_VALUE + UNALIGNED_AFTER_CLOSED_ITEM


@pytest.mark.parametrize(("what", "text", "line", "named"), UNALIGNED, ids=[c[0] for c in UNALIGNED])
def test_the_unaligned_key_guidance_compares_with_where_the_neighbouring_keys_start(tmp_path, what, text, line, named):
    from templates.params import ParamsError, read_yaml

    path = tmp_path / "prod.yaml"
    path.write_text(text)
    with pytest.raises(ParamsError) as refused:
        read_yaml(path, "prod.yaml")
    said = str(refused.value)
    assert f"line {line}: cannot be read as YAML: expected <block end>, but found '<block mapping start>'; allowed: " in said, said
    # where the nearest key above starts: the line a key a space short belongs beside
    assert f"keys of one mapping indented alike: this line is {named}: give it the indentation" in said, said
    assert said.endswith(": give it the indentation of the keys it belongs with"), said


# Review of this stop: with the sandbox down, make deploy STACK=nonsense, make logs SINCE=5x... said "the sandbox is not
# running" and only after a make sandbox the mistake in what was typed; on AWS (ENV=prod) the values are checked first.


def test_make_on_the_sandbox_says_a_mistyped_value_before_whether_the_sandbox_runs():
    """ROOT's own sandbox (.sandbox) runs in no test: in a fresh clone it is down, as for a newcomer."""
    from emulator.sandbox import Sandbox

    clean = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MAKE"))} | {"AWS_EC2_METADATA_DISABLED": "true"}

    def make(*argv):
        return subprocess.run(
            ["make", "-s", "--no-print-directory", *argv], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=120
        )

    mistyped = make("status", "STACK=nonsense")
    assert mistyped.returncode == 2 and mistyped.stderr.startswith("error: unknown layer 'nonsense'"), mistyped
    if not Sandbox().running():
        down = make("status")
        assert down.returncode == 2, down
        assert down.stderr.splitlines()[0] == "error: the sandbox is not running: start it with `make sandbox`", down


def test_sandbox_env_for_make_defers_why_the_sandbox_cannot_be_used_and_points_nothing_at_an_endpoint(tmp_path):
    """`env --defer-problem` (make's) exits 0 with the reason in SANDBOX_PROBLEM and AWS_ENDPOINT_URL unset, whatever
    the shell had; `env` alone, as a review document's commands run it, still fails."""
    from templates.params import SANDBOX_PROBLEM

    deferred = sandbox_cli("env", "--defer-problem", state_dir=tmp_path / "state")
    assert deferred.returncode == 0 and deferred.stderr == "", deferred
    shell = dict(os.environ, AWS_ENDPOINT_URL=NOWHERE)
    ran = subprocess.run(
        ["sh", "-c", 'eval "$1" && exec env', "sh", deferred.stdout], env=shell, capture_output=True, text=True, timeout=60
    )
    exported = dict(line.split("=", 1) for line in ran.stdout.splitlines() if "=" in line)
    assert exported.get(SANDBOX_PROBLEM) == "the sandbox is not running: start it with `make sandbox`", ran
    assert "AWS_ENDPOINT_URL" not in exported, ran
    assert sandbox_cli("env", state_dir=tmp_path / "state").returncode == 2


def test_sandbox_env_for_make_clears_a_problem_the_shell_had_when_the_sandbox_runs(sandbox):
    from templates.params import SANDBOX_PROBLEM

    result = sandbox_cli("env", "--defer-problem", state_dir=sandbox.state_dir)
    shell = dict(os.environ, **{SANDBOX_PROBLEM: "the sandbox is not running: start it with `make sandbox`"})
    ran = subprocess.run(["sh", "-c", 'eval "$1" && exec env', "sh", result.stdout], env=shell, capture_output=True, text=True, timeout=60)
    exported = dict(line.split("=", 1) for line in ran.stdout.splitlines() if "=" in line)
    assert exported.get(SANDBOX_PROBLEM) == "" and exported.get("AWS_ENDPOINT_URL") == sandbox.environment()["AWS_ENDPOINT_URL"], ran


@pytest.mark.parametrize("endpoint", [None, "http://127.0.0.1:9"])
def test_the_deployer_says_the_sandboxs_problem_after_the_commands_values_and_sends_nothing(monkeypatch, endpoint):
    import io

    from scripts import deploy
    from templates.params import SANDBOX_PROBLEM

    no_real_aws(monkeypatch, endpoint or "")
    if endpoint is None:
        monkeypatch.delenv("AWS_ENDPOINT_URL")
    # (a carriage return within a line is shown, not taken for a line of its own: no forged error line)
    monkeypatch.setenv(SANDBOX_PROBLEM, "the sandbox was seeded in us-east-1, but params/sandbox.yaml now says\nregion: x\rerror: y")

    def run(*argv):
        err = io.StringIO()
        code = deploy.main(list(argv), out=io.StringIO(), err=err, interactive=False, clients=lambda *_: pytest.fail("a client was made"))
        return code, err.getvalue()

    code, said = run("status", "--env", "sandbox", "--stack", "nonsense")
    assert code == 2 and said.startswith("error: unknown layer 'nonsense'"), said
    code, said = run("logs", "--env", "sandbox", "--since", "5x")
    assert code == 2 and said.startswith("error: SINCE=5x"), said
    code, said = run("status", "--env", "sandbox")
    expected = "error: the sandbox was seeded in us-east-1, but params/sandbox.yaml now says\nerror: region: x\\rerror: y\n"
    assert (code, said) == (2, expected)


# Review of 5206bd5 (S3): values a command checks before any call to AWS are said first on AWS, but on a sandbox that
# cannot be used its problem came first: make verify CONNECT_TO=garbage, make task on ENV=sandbox.


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["verify", "--env", "sandbox", "--connect-to", "garbage"], "error: CONNECT_TO (--connect-to) 'garbage'"),
        (["verify", "--env", "sandbox", "--ca-bundle", "/nonexistent/ca.pem"], "error: CA_BUNDLE=/nonexistent/ca.pem"),
        # the sandbox can never run a task: starting it only to be told "make task runs in AWS" sends a newcomer round
        (["task", "--env", "sandbox", "--cmd", "python manage.py migrate", "--yes"], "error: AWS_ENDPOINT_URL"),
    ],
)
def test_a_down_sandbox_is_said_after_the_values_a_command_checks_before_any_call(monkeypatch, argv, expected):
    import io

    from scripts import deploy
    from templates.params import SANDBOX_PROBLEM

    no_real_aws(monkeypatch, "")
    monkeypatch.delenv("AWS_ENDPOINT_URL")  # as make's sandbox env --defer-problem leaves it
    monkeypatch.setenv(SANDBOX_PROBLEM, "the sandbox is not running: start it with `make sandbox`")
    err = io.StringIO()
    code = deploy.main(argv, out=io.StringIO(), err=err, interactive=False, clients=lambda *_: pytest.fail("a client was made"))
    said = err.getvalue()
    assert code == 2 and "make sandbox" not in said.splitlines()[0], said
    if not expected.startswith("error: AWS_ENDPOINT_URL"):
        assert said.startswith(expected), said
    else:
        assert "make task runs in AWS" in said, said


def test_a_review_documents_sandbox_command_runs_no_aws_command_when_the_sandbox_is_down(tmp_path):
    """`(eval "$(... env)" && aws ...)`: env fails, but eval of the empty text it printed succeeds (POSIX: "If there
    are no arguments, or only null arguments, eval shall return a zero exit status"), so aws ran with the shell's
    own profile and no endpoint: a review document's `kms cancel-key-deletion` pasted reached the real account."""
    from scripts.review.render import aws_command

    class Review:
        env = "sandbox"

        class environment:
            region = "us-east-1"

    pasted = aws_command(Review, "cloudformation list-stacks")
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "aws").write_text(f"#!/bin/sh\necho ran > {tmp_path / 'aws-ran'}\n")
    (fake_bin / "aws").chmod(0o755)
    shell = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    shell |= {"PATH": f"{fake_bin}:{os.environ['PATH']}", "AWS_PROFILE": "work-admin", "AWS_EC2_METADATA_DISABLED": "true"}
    # env as it fails with the sandbox down (exit 2, nothing on stdout): a stand-in, as ROOT's sandbox may run
    failing_env = "sh -c 'echo \"error: the sandbox is not running: start it with make sandbox\" >&2; exit 2'"
    assert ".venv/bin/python -m emulator.sandbox env" in pasted, pasted

    def pasted_with(env_stand_in):
        command = pasted.replace(".venv/bin/python -m emulator.sandbox env", env_stand_in)
        return subprocess.run(["sh", "-c", command], cwd=tmp_path, env=shell, capture_output=True, text=True, timeout=60)

    ran = pasted_with(failing_env)
    assert not (tmp_path / "aws-ran").exists(), ran
    assert ran.returncode != 0 and "error: the sandbox is not running" in ran.stderr, ran  # env's failure stopped it
    # With the sandbox up the same command runs aws: not a pasted command that runs nothing whatever env does (one the
    # shell cannot read fails too, and ran no aws).
    up = pasted_with("echo export AWS_ENDPOINT_URL=http://127.0.0.1:9")
    assert up.returncode == 0 and (tmp_path / "aws-ran").exists(), up


def test_a_down_sandbox_is_said_after_a_connect_to_address_off_this_machine(monkeypatch):
    # Review of cb2f1d0 (S6): on ENV=sandbox CONNECT_TO= is held to loopback addresses even when make's env left no
    # endpoint (the sandbox down): a 10.x address is said first, not "make sandbox" and then, once it runs, the address.
    import io

    from scripts import deploy
    from templates.params import SANDBOX_PROBLEM

    no_real_aws(monkeypatch, "")
    monkeypatch.delenv("AWS_ENDPOINT_URL")  # as make's sandbox env --defer-problem leaves it
    monkeypatch.setenv(SANDBOX_PROBLEM, "the sandbox is not running: start it with `make sandbox`")
    err = io.StringIO()
    argv = ["verify", "--env", "sandbox", "--connect-to", "api.example.com:443:10.0.0.1:443"]
    code = deploy.main(argv, out=io.StringIO(), err=err, interactive=False, clients=lambda *_: pytest.fail("a client was made"))
    said = err.getvalue()
    assert code == 2 and said.startswith("error: CONNECT_TO (--connect-to)") and "loopback" in said.splitlines()[0], said


# --- the deployer's checks of what it was given come before the AWS_ENDPOINT_URL it reads (review R2) ---------------


@pytest.mark.parametrize(
    ("argv", "first"),
    [
        (["status", "--env", "prod", "--stack", "nosuch"], "error: unknown layer 'nosuch'"),
        (["continue", "--env", "prod", "--action", "x"], "error: ACTION=x: allowed: "),
        (["status", "--env", "nosuch"], "error: unknown environment 'nosuch'"),
    ],
)
def test_what_the_command_line_got_wrong_is_said_before_an_unusable_endpoint(monkeypatch, argv, first):
    # validate's order, which cab8f3f's split kept ("the first mistake said is the same"): STACK= and ACTION=, then ENV=,
    # then AWS_ENDPOINT_URL; calling emulator_endpoint() first left every test green
    import io

    from scripts import deploy

    no_real_aws(monkeypatch, "")
    out, err = io.StringIO(), io.StringIO()
    code = deploy.main(argv, out=out, err=err, interactive=False, clients=lambda *_: pytest.fail("a client was made"))
    assert code == 2 and err.getvalue().startswith(first), err.getvalue()


def test_a_sandbox_start_writes_through_no_symlink_planted_in_its_state_directory(tmp_path):
    """(Helper Q2) The files a start writes have fixed names in the state directory: a symlink left there (another
    process, a restored backup) had the start overwrite or append to the file it points to, outside the project."""
    from emulator.sandbox import Sandbox

    state_dir = tmp_path / "state"
    state_dir.mkdir()
    victims = {}
    for name in ("endpoint.tmp", "seeded-region.tmp", "pid", "endpoint", "seeded-region"):
        victims[name] = tmp_path / f"victim-{name}"
        victims[name].write_text("precious\n")
        (state_dir / name).symlink_to(victims[name])
    box = Sandbox(state_dir)
    try:
        box.start(exit_with_parent=True)
        box.seed()
        assert box.running() and box.pid_file.read_text() == f"{box.pid}\n"
    finally:
        box.stop()
    assert {name: victim.read_text() for name, victim in victims.items()} == dict.fromkeys(victims, "precious\n")


@pytest.mark.parametrize("planted", ["symlink", "fifo"])
@pytest.mark.parametrize("name", ["server.log", "turn.lock"])
def test_a_sandbox_appends_to_no_symlink_or_fifo_planted_in_its_state_directory(tmp_path, name, planted):
    # (helper Q8) a FIFO there held make sandbox's open for good, until something read it
    from emulator import sandbox

    state_dir = tmp_path / "state"
    state_dir.mkdir()
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    if planted == "symlink":
        (state_dir / name).symlink_to(victim)
    else:
        os.mkfifo(state_dir / name)
    box = sandbox.Sandbox(state_dir)
    with (
        pytest.raises(
            sandbox.SandboxError,
            match=f"^{re.escape(str(state_dir / name))} is not a regular file \\(a symbolic link, a FIFO, a directory\\), which the sandbox does not write: remove it$",
        ),
        box.one_at_a_time(),
    ):
        box.start(exit_with_parent=True)
    assert victim.read_text() == "precious\n" and not box.running()


def test_a_fifo_someone_reads_planted_in_the_state_directory_is_not_written_either(tmp_path):
    # (mutation audit Z3) A FIFO with a reader opens at once, without the ENXIO of one no one reads: only the check that
    # what opened is a regular file keeps make sandbox and sandbox-stop from writing to whoever reads it (mutant:
    # appended's `stat.S_ISREG(...)` check dropped)
    from emulator import sandbox

    state_dir = tmp_path / "state"
    state_dir.mkdir()
    os.mkfifo(state_dir / "turn.lock")
    reader = os.open(state_dir / "turn.lock", os.O_RDONLY | os.O_NONBLOCK)
    try:
        with (
            pytest.raises(sandbox.SandboxError, match=f"^{re.escape(str(state_dir / 'turn.lock'))} is not a regular file "),
            sandbox.Sandbox(state_dir).one_at_a_time(),
        ):
            pass
    finally:
        os.close(reader)


def test_a_process_of_another_sandbox_command_naming_the_state_directory_is_not_the_server_nor_stopped(tmp_path):
    """Only `emulator.sandbox serve` is the server: another of the tool's commands whose command line names the state
    directory (here `start`, as a stand-in for one still under way) is neither found as the running sandbox nor stopped."""
    from emulator.sandbox import Sandbox

    state = Sandbox(tmp_path / "state")
    state.make_state_dir()
    (state.state_dir / "endpoint").write_text(f"{NOWHERE}\n")
    other = subprocess.Popen(
        [sys.executable, "-c", SLEEPING_SERVER, "-m", "emulator.sandbox", "start", "--state-dir", str(state.state_dir)],
        stdout=subprocess.PIPE,
    )
    try:
        other.stdout.readline()  # it runs
        assert state.server_pids() == [] and not state.running(), "a start taken for the server"
        assert sandbox_cli("stop", state_dir=state.state_dir).stdout == "sandbox was not running\n"
        assert other.poll() is None, "make sandbox-stop stopped a process that is no server"
    finally:
        end_sleeping_server(other)


def test_a_server_that_never_says_where_it_listens_fails_the_start_within_its_bound_and_is_stopped(tmp_path, monkeypatch):
    """A server hung in its start (it runs, but never writes its endpoint file): make sandbox gives up after
    START_TIMEOUT_SECONDS, naming the bound and the log, and stops it, rather than wait for ever."""
    import emulator.sandbox as s

    class Hung:  # stands in for the server process: it runs on
        pid = 12345

        def poll(self):
            return None

    stopped = []
    looks = []

    def sleep(seconds):
        looks.append(seconds)
        assert len(looks) < 1000, "the start waits for the server's endpoint without a bound"

    clock = itertools.count(step=5)  # the wait passes in a few looks
    monkeypatch.setattr(s, "time", types.SimpleNamespace(monotonic=lambda: next(clock), sleep=sleep))
    monkeypatch.setattr(s.subprocess, "Popen", lambda *args, **kwargs: Hung())
    monkeypatch.setattr(s.Sandbox, "stop", lambda self: stopped.append(True) or True)
    box = s.Sandbox(tmp_path / "state")
    with pytest.raises(s.SandboxError) as refused:
        box.start()
    assert str(refused.value) == f"the sandbox server did not start within {s.START_TIMEOUT_SECONDS} s; see {box.log_file}"
    assert stopped == [True]


def test_a_start_or_stop_waits_for_another_at_most_the_two_minutes_the_readme_gives(tmp_path, monkeypatch):
    """README: a make sandbox or make sandbox-stop while another is under way waits for it, saying so, up to 2 minutes."""
    import emulator.sandbox as s

    asked = []

    def never_free(descriptor, how, seconds, waiting, say):
        asked.append(seconds)
        say(waiting)
        return False

    monkeypatch.setattr(s, "flock_within", never_free)
    refused = sandbox_cli("stop", state_dir=tmp_path / "state")
    assert asked == [120], asked
    assert refused.returncode == 2 and refused.stderr == (
        "waiting for another make sandbox or sandbox-stop to end (at most 120 s)\n"
        "error: another make sandbox or sandbox-stop has been under way for 120 s; "
        "when it ends, run this again (make sandbox-status says whether one runs)\n"
    ), refused


def test_a_server_that_takes_the_status_request_but_never_answers_is_given_up_on_within_seconds(tmp_path, monkeypatch):
    """make sandbox-status of a hung server (the kernel still takes its connections): not answered within
    ANSWER_TIMEOUT_SECONDS (2 s), it says so at once rather than wait for what will not come."""
    import socket

    from emulator.sandbox import ANSWER_TIMEOUT_SECONDS, Sandbox

    with socket.create_server(("127.0.0.1", 0)) as hung:  # listens, never accepts nor answers
        monkeypatch.setattr(Sandbox, "running_endpoint", lambda self: f"http://127.0.0.1:{hung.getsockname()[1]}")
        started = time.monotonic()
        assert not Sandbox(tmp_path / "state").answers()
        waited = time.monotonic() - started
    assert ANSWER_TIMEOUT_SECONDS <= waited < 5, waited


def test_a_seed_whose_ids_params_sandbox_yaml_misses_twice_names_both(capsys):
    """check_params names every difference, not the first alone: fixing one at a time would take a make sandbox each."""
    import emulator.sandbox as s

    values = s.environment().values
    created = {"VpcId": "vpc-0123456789abcdef0", "BackendSecurityGroupId": "sg-0123456789abcdef0"}
    with pytest.raises(s.SandboxError) as refused:
        s.check_params(created)
    assert str(refused.value).splitlines()[1:3] == [
        f"  parameters.VpcId: {values['VpcId']!r}, but the seed creates 'vpc-0123456789abcdef0'",
        f"  parameters.BackendSecurityGroupId: {values['BackendSecurityGroupId']!r}, but the seed creates 'sg-0123456789abcdef0'",
    ]


def test_a_restore_the_server_fails_is_an_error_not_a_state_never_saved(tmp_path):
    """restore() is False only for a name the server saved nothing under (404): a server failing the restore
    (500) must not pass for that, or the tests would go on from whatever the server holds."""
    import http.server
    import threading
    import urllib.error

    from emulator.sandbox import Sandbox

    class Failing(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            self.send_error(404 if "never-saved" in self.path else 500)

        def log_message(self, *args):
            pass

    with http.server.HTTPServer(("127.0.0.1", 0), Failing) as server:
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        try:
            box = Sandbox(tmp_path / "state")
            box.make_state_dir()
            box.endpoint_file.write_text(f"http://127.0.0.1:{server.server_address[1]}\n")
            assert box.restore("never-saved") is False
            with pytest.raises(urllib.error.HTTPError) as failed:
                box.restore("saved")
            failed.value.close()
            assert failed.value.code == 500
        finally:
            server.shutdown()


def test_make_sandbox_on_a_running_sandbox_leaves_it_and_says_how_to_start_afresh(sandbox):
    """A second make sandbox must not wipe what is deployed: it says so, and how to start empty if that is what was meant."""
    result = sandbox_cli("start", state_dir=sandbox.state_dir)
    assert result.returncode == 0 and result.stderr == "", result
    assert result.stdout.splitlines() == [
        f"sandbox already running at {sandbox.endpoint} (PID {sandbox.pid}); left as it is, with what is deployed in it",
        "to start afresh (empty, seeded again): make sandbox-stop && make sandbox",
    ]


def test_a_server_that_ends_at_its_stop_signal_is_given_the_time_to_and_not_killed(state):
    """make sandbox-stop asks the server to end (SIGTERM) and waits for it, as the server looks for the signal only
    five times a second (serve): a kill at once would leave it no chance to end by itself."""
    ending = (
        "import signal, sys, time; signal.signal(signal.SIGTERM, lambda *args: (time.sleep(0.3), sys.exit(0)));"
        " print(flush=True); time.sleep(60)"
    )
    server = subprocess.Popen(
        [sys.executable, "-c", ending, "emulator.sandbox", "serve", "--state-dir", str(state.state_dir)], stdout=subprocess.PIPE
    )
    try:
        server.stdout.readline()  # its handler is in place
        assert state.server_pids() == [server.pid]
        assert state.stop()
        assert server.wait(timeout=10) == 0, "the server was killed, not let end at its stop signal"
    finally:
        end_sleeping_server(server)


# --- Ctrl-C at one AWS call, then the way on the run named: it finishes the job (a sweep of every call of deploy,
# destroy, rollback and purge on the sandbox found these three) -----------------------------------------------------


def test_ctrl_c_as_a_deploy_of_every_layer_asks_to_execute_a_change_set_names_the_way_on_to_the_layers_after_it(sandbox, monkeypatch):
    # Stopped as it asked CloudFormation to execute cert-dns's change set, the deploy named `make execute STACK=cert-dns
    # CHANGESET=...` alone: that ran cert-dns's change set and exited 0, and nothing named the layers after it.
    seeded(sandbox)
    first, *rest = load(ROOT / "params" / f"{SANDBOX_ENV}.yaml").layers

    def stop(**_):
        raise KeyboardInterrupt

    with deploying_into(sandbox) as run:
        on_each_client(monkeypatch, "before-call.cloudformation.ExecuteChangeSet", stop)  # the first layer's
        code, out, err = run("deploy", "--yes")
        monkeypatch.undo()
        assert code == 130, out + err
        named = re.search(rf"make execute STACK={first} ENV={SANDBOX_ENV} CHANGESET=(\S+) executes it if it did not start", err)
        assert named, err
        going_on = "the same command again (what is done already is not done again)"
        assert err.rstrip("\n").endswith(f"\n  then, for {', '.join(rest)}: {going_on}"), err
        code, out, err = run("execute", "--stack", first, "--changeset", named.group(1), "--yes")
        assert code == 0, out + err
        code, out, err = run("deploy", "--yes")  # then the same command again
        assert code == 0, out + err
    stacks = sandbox.client("cloudformation").describe_stacks()["Stacks"]
    settled = {s["StackName"]: s["StackStatus"] for s in stacks}
    assert {templates.stack_name(SANDBOX_ENV, layer) for layer in [first, *rest]} <= {
        name for name, status in settled.items() if status in ("CREATE_COMPLETE", "UPDATE_COMPLETE")
    }, settled


def test_the_way_on_from_ctrl_c_in_a_releases_wait_says_it_does_not_record_the_release(sandbox, monkeypatch):
    # `make deploy TAG=v2` stopped in the service stack's wait said "to go on: the same command again"; that run found
    # the service with no changes (v2 runs), exited 0, and left the history without v2, unsaid: make rollback then asked
    # for TAG= (a rerun cannot tell that this run's release, rather than someone's, put v2 there).
    with deploying_into(sandbox) as run:
        deployed(sandbox, run)
        before = releases(sandbox)
        service = templates.stack_name(SANDBOX_ENV, "service")
        executed = []

        def remember(params, **_):
            executed.append(params["ChangeSetName"])

        def stop_in_the_wait(params, **_):  # the release's wait: its first DescribeStacks after the service's ExecuteChangeSet
            if executed and service in executed[-1] and service in params.get("StackName", ""):
                os.kill(os.getpid(), signal.SIGINT)

        on_each_client(monkeypatch, "provide-client-params.cloudformation.ExecuteChangeSet", remember)
        on_each_client(monkeypatch, "provide-client-params.cloudformation.DescribeStacks", stop_in_the_wait)
        code, out, err = run("deploy", "--yes", "--image-tag", "v2")
        monkeypatch.undo()
        assert code == 130 and "the release of v2 is live but not recorded" in err, out + err
        going_on = "to go on: the same command again (what is done already is not done again); it does not record the release said above"
        assert err.rstrip("\n").endswith(going_on), err
        code, out, err = run("deploy", "--yes", "--image-tag", "v2")
        assert code == 0 and f"{service}: no changes" in out, out + err
    assert releases(sandbox) == before  # as said


def sigint(**_):
    """A botocore event handler that stops the run as Ctrl-C does: a real SIGINT, which the tool may hold."""
    os.kill(os.getpid(), signal.SIGINT)


def purge_stopped(sandbox, run, monkeypatch, handlers: dict) -> tuple:
    """Every layer deployed and destroyed, then `make purge YES=1` with the botocore event handlers given (event ->
    handler) on its clients: (exit code, stdout, stderr)."""
    deployed(sandbox, run)
    code, out, err = run("destroy", "--yes")
    assert code == 0, out + err
    for event, handler in handlers.items():
        on_each_client(monkeypatch, event, handler)
    try:
        return run("purge", "--yes")
    finally:
        monkeypatch.undo()


def test_ctrl_c_as_purge_schedules_a_keys_deletion_is_held_until_it_is_scheduled(sandbox, monkeypatch):
    # Purge tags a key startupwebapp:purge-scheduled right before ScheduleKeyDeletion. A Ctrl-C between the two said
    # "make purge ENV=sandbox lists what is left of these and asks again"; that purge took the tagged key for one whose
    # deletion someone cancelled, said "nothing to purge", and left it enabled until an `aws kms untag-resource` by hand.
    with deploying_into(sandbox) as run:
        # the first key's mark just sent: the stop comes between the mark and the scheduling
        code, out, err = purge_stopped(sandbox, run, monkeypatch, {"provide-client-params.kms.TagResource": sigint})
        assert code == 130, out + err
        assert re.search(r"Key\) \S+: stopping once its deletion is scheduled \(Ctrl-C again", out), out
        assert re.search(r"Key\) \S+: deletion scheduled for ", out) and "was being scheduled" not in out, out
        code, out, err = run("purge", "--yes")  # the way on it named
    assert code == 0, out + err
    kms = sandbox.client("kms")
    states = {key["KeyId"]: kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["KeyState"] for key in kms.list_keys()["Keys"]}
    assert set(states.values()) == {"PendingDeletion"}, f"{states}; the way on said:\n{out + err}"


@pytest.mark.parametrize("operation", ["DescribeStackEvents", "SetStackPolicy", "UpdateTerminationProtection"])
def test_ctrl_c_in_make_execute_of_a_first_create_names_the_same_command_which_protects_the_stack(sandbox, monkeypatch, operation):
    # `make execute` of the change set `make changeset` left for a layer's first create, stopped once the create had
    # started (in its wait: DescribeStackEvents) or ended (before the stack's policy and protection), left the stack
    # without termination protection and stack policy, said `interrupted` alone (or how to follow the create), and
    # `make execute` again said "executed already ... make status" and changed nothing.
    from scripts.deploy.commands import GOING_ON_AFTER_EXECUTION

    layer = "alb"
    stack = templates.stack_name(SANDBOX_ENV, layer)
    cf = sandbox.client("cloudformation")
    with deploying_into(sandbox) as run:
        deployed(sandbox, run, "cert-dns")
        code, out, err = run("changeset", "--stack", layer)
        assert code == 0, out + err
        name = re.findall(r"CHANGESET=(\S+)", out + err)[-1]
        stopped = []

        def stop(**_):  # once: the create executed, its wait or what follows it
            if not stopped:
                stopped.append(operation)
                os.kill(os.getpid(), signal.SIGINT)

        on_each_client(monkeypatch, f"before-call.cloudformation.{operation}", stop)
        argv = ("execute", "--stack", layer, "--changeset", name, "--yes")
        code, out, err = run(*argv)
        monkeypatch.undo()
        assert code == 130 and stopped, out + err
        (found,) = cf.describe_stacks(StackName=stack)["Stacks"]
        assert found["StackStatus"] == "CREATE_COMPLETE" and not found.get("EnableTerminationProtection"), found  # what was left
        assert err.rstrip("\n").endswith(GOING_ON_AFTER_EXECUTION), err
        code, out, err = run(*argv)  # the way on
        assert code == 1 and "was executed already" in err and "termination protection was off" in out, out + err
    (found,) = cf.describe_stacks(StackName=stack)["Stacks"]
    assert found.get("EnableTerminationProtection") and cf.get_stack_policy(StackName=stack).get("StackPolicyBody"), found


def test_ctrl_c_as_a_first_creates_execute_change_set_lands_names_a_make_execute_which_protects_the_stack(sandbox, monkeypatch):
    # `make deploy STACK=alb` (a first create) stopped as its ExecuteChangeSet landed (its answer not read) named
    # `make execute ... CHANGESET=<name> executes it if it did not start, and says so if it did`. It had started: that
    # make execute said "executed already" and left the stack without termination protection and stack policy.
    layer = "alb"
    stack = templates.stack_name(SANDBOX_ENV, layer)
    cf = sandbox.client("cloudformation")
    with deploying_into(sandbox) as run:
        deployed(sandbox, run, "cert-dns")

        # the change set's execution asked for and begun; the answer not taken in
        on_each_client(monkeypatch, "after-call.cloudformation.ExecuteChangeSet", sigint)
        code, out, err = run("deploy", "--stack", layer, "--yes")
        monkeypatch.undo()
        assert code == 130, out + err
        named = re.search(rf"make execute STACK={layer} ENV={SANDBOX_ENV} CHANGESET=(\S+)", err)
        assert named, err
        (found,) = cf.describe_stacks(StackName=stack)["Stacks"]
        assert found["StackStatus"] == "CREATE_COMPLETE" and not found.get("EnableTerminationProtection"), found
        code, out, err = run("execute", "--stack", layer, "--changeset", named.group(1), "--yes")  # the way on named
        assert code == 1 and "was executed already" in err, out + err
    (found,) = cf.describe_stacks(StackName=stack)["Stacks"]
    assert found.get("EnableTerminationProtection") and cf.get_stack_policy(StackName=stack).get("StackPolicyBody"), found


@pytest.mark.parametrize("operation", ["DescribeStackEvents", "SetStackPolicy"])
def test_make_execute_again_puts_back_the_stack_policy_its_stopped_allow_replace_run_left_relaxed(
    sandbox, monkeypatch, tmp_path, operation
):
    # `make execute ALLOW_REPLACE=1` of a reviewed change set (a new NamePrefix: the load balancer replaced), stopped once
    # the update ran (in its wait, or at the SetStackPolicy that puts the policy back), left the alb stack's policy
    # relaxed, its mark set. README: "the next deploy, rollback or execute of that layer puts it back once the stack has
    # settled"; `make execute` again found the change set executed and refused before it looked at the mark.
    from scripts.deploy.policies import ALLOW_ALL_POLICY

    layer = "alb"
    stack = templates.stack_name(SANDBOX_ENV, layer)
    out = tmp_path / "output"
    shutil.copytree(ROOT / "output", out)
    config = out / SANDBOX_ENV / f"{layer}.json"
    document = json.loads(config.read_text())
    prefix = document["Parameters"]["NamePrefix"]  # another, as the params' pattern takes it: the load balancer's name changes
    document["Parameters"]["NamePrefix"] = prefix[:-1] + ("x" if prefix[-1] != "x" else "y")
    config.write_text(json.dumps(document))
    options = ("--output-dir", str(out), "--params-dir", str(ROOT / "params"))
    cf = sandbox.client("cloudformation")

    def policy():
        return json.loads(cf.get_stack_policy(StackName=stack).get("StackPolicyBody") or "null")

    with deploying_into(sandbox) as run:
        deployed(sandbox, run)
        kept = policy()
        assert kept and kept != ALLOW_ALL_POLICY, kept
        code, said, err = run("changeset", "--stack", layer, *options)
        assert code == 0 and "ALLOW_REPLACE=1" in said + err, said + err
        name = re.findall(r"CHANGESET=(\S+)", said + err)[-1]
        seen = []

        def stop(event_name, **_):  # once the change set runs: in its wait, or as the policy is put back
            seen.append(event_name.rsplit(".", 1)[-1])
            if seen[-1] == operation and "ExecuteChangeSet" in seen and seen.count(operation) == 1 + (operation == "SetStackPolicy"):
                os.kill(os.getpid(), signal.SIGINT)

        on_each_client(monkeypatch, "before-call.cloudformation", stop)
        argv = ("execute", "--stack", layer, "--changeset", name, "--allow-replace", "--yes", *options)
        code, said, err = run(*argv)
        monkeypatch.undo()
        assert code == 130, said + err
        assert cf.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"] == "UPDATE_COMPLETE"
        assert policy() == ALLOW_ALL_POLICY, "left relaxed, as the stop leaves it"
        code, said, err = run(*argv)  # the same command again: the change set ran; it puts the policy back, as a deploy would
    assert code == 1 and "was executed already" in err, said + err
    assert policy() == kept, f"make execute again left the stack policy relaxed ({policy()}):\n{said + err}"


def test_a_second_ctrl_c_as_purge_schedules_a_keys_deletion_says_how_to_hand_the_marked_key_back(sandbox, monkeypatch):
    # A second Ctrl-C (as the held line invites) stops between the key's mark and its scheduling, leaving the mark on.
    # The stopped purge said "make purge ENV=sandbox lists what is left of these and asks again"; that purge lists the key
    # as left ("cancelled since by someone who needs it"), asks nothing of it, and the key stays enabled.
    with deploying_into(sandbox) as run:
        stops = {"provide-client-params.kms.TagResource": sigint, "provide-client-params.kms.ScheduleKeyDeletion": sigint}
        code, out, err = purge_stopped(sandbox, run, monkeypatch, stops)  # the first held, the second at once
        assert code == 130, out + err
        key = re.search(r"Key\) (\S+): stopping once its deletion is scheduled", out)
        assert key, out
        kms = sandbox.client("kms")
        assert kms.describe_key(KeyId=key.group(1))["KeyMetadata"]["KeyState"] == "Enabled"  # left marked, not scheduled
        untag = re.search(rf"(aws .*kms untag-resource --key-id {key.group(1)} --tag-keys \S+) hands it back to purge", out)
        assert untag, out + err
        kms.untag_resource(KeyId=key.group(1), TagKeys=[untag.group(1).rsplit(" ", 1)[1]])  # as said
        code, out, err = run("purge", "--yes")
        assert code == 0, out + err
    assert kms.describe_key(KeyId=key.group(1))["KeyMetadata"]["KeyState"] == "PendingDeletion", out + err


def test_ctrl_c_in_the_make_execute_that_finishes_an_executed_first_create_does_not_say_the_change_set_was_not_executed(
    sandbox, monkeypatch
):
    # The way on GOING_ON_AFTER_EXECUTION names (make execute again, of the change set that ran) changes the stack: its
    # stack policy and termination protection. Stopped there, it said "to go on: the same command again (the change set
    # is kept, not executed)": the change set ran, and the stack is still unprotected.
    layer = "alb"
    stack = templates.stack_name(SANDBOX_ENV, layer)
    with deploying_into(sandbox) as run:
        deployed(sandbox, run, "cert-dns")
        code, out, err = run("changeset", "--stack", layer)
        assert code == 0, out + err
        name = re.findall(r"CHANGESET=(\S+)", out + err)[-1]
        argv = ("execute", "--stack", layer, "--changeset", name, "--yes")

        on_each_client(monkeypatch, "before-call.cloudformation.SetStackPolicy", sigint)  # as the run protects the new stack
        code, out, err = run(*argv)
        assert code == 130, out + err
        code, out, err = run(*argv)  # the way on it names, stopped as that protects the stack
        monkeypatch.undo()
    (found,) = sandbox.client("cloudformation").describe_stacks(StackName=stack)["Stacks"]
    assert code == 130 and not found.get("EnableTerminationProtection"), out + err
    assert "not executed" not in err, err


def test_make_execute_again_after_a_stop_before_a_new_services_settling_update_names_the_deploy_that_makes_it(sandbox, monkeypatch):
    # make execute of a service's first create, stopped after the create as it made the settling change set (the task
    # count left to auto-scaling, Deployer.settle), said "to go on: the same command again once the stack has settled:
    # ... puts on what this run may have left off". That command said "executed already" and left KeepRunningCount
    # false: every later update, a rollback's too, sets the service's count back to DesiredCount.
    from templates.inputs import KEEP_RUNNING_COUNT

    stack = templates.stack_name(SANDBOX_ENV, "service")
    cf = sandbox.client("cloudformation")
    with deploying_into(sandbox) as run:
        deployed(sandbox, run, "cert-dns", "alb", "release-alarms")
        code, out, err = run("changeset", "--stack", "service")
        assert code == 0, out + err
        name = re.findall(r"CHANGESET=(\S+)", out + err)[-1]
        argv = ("execute", "--stack", "service", "--changeset", name, "--yes")
        made = []

        def stop(**_):  # the second CreateChangeSet: the settling one
            made.append(1)
            if len(made) == 1:
                os.kill(os.getpid(), signal.SIGINT)

        on_each_client(monkeypatch, "before-call.cloudformation.CreateChangeSet", stop)
        code, out, err = run(*argv)
        monkeypatch.undo()
        assert code == 130 and made, out + err
        from scripts.deploy.commands import GOING_ON_AFTER_EXECUTION

        assert err.rstrip("\n").endswith(GOING_ON_AFTER_EXECUTION), err
        code, out, err = run(*argv)  # the way on it named
        # the settling update is a deploy's to make (from the files): named, and it does
        assert f"({KEEP_RUNNING_COUNT}=false)" in out and "make deploy STACK=service ENV=sandbox makes it" in out, out + err
        code, out, err = run("deploy", "--stack", "service", "--yes")
        assert code == 0, out + err
    (found,) = cf.describe_stacks(StackName=stack)["Stacks"]
    values = {p["ParameterKey"]: p["ParameterValue"] for p in found["Parameters"]}
    assert values[KEEP_RUNNING_COUNT] == "true", f"{values[KEEP_RUNNING_COUNT]}:\n{out + err}"


def test_one_ctrl_c_held_while_a_keys_scheduling_is_refused_does_not_say_the_key_may_be_left_marked(sandbox, monkeypatch):
    # One Ctrl-C, held as purge marks a key, then ScheduleKeyDeletion refused: the mark is taken off again
    # (_schedule_key_deletion), "failed: ..." said, and the held stop acts. The second-stop line ("stopped as its deletion
    # was being scheduled: if the next purge lists it as left, marked ...") came too, of a key left unmarked by one stop.
    with deploying_into(sandbox) as run:  # the one stop, held; then the scheduling refused
        handlers = {"provide-client-params.kms.TagResource": sigint, "before-call.kms.ScheduleKeyDeletion": lambda **_: refused_answer()}
        code, out, err = purge_stopped(sandbox, run, monkeypatch, handlers)
    assert code == 130, out + err
    key = re.search(r"failed: LogKey \(AWS::KMS::Key\) (\S+): AccessDenied", out)
    assert key, out
    kms = sandbox.client("kms")
    assert not kms.list_resource_tags(KeyId=key.group(1)).get("Tags"), "the mark was taken off"
    assert "was being scheduled" not in out, out
