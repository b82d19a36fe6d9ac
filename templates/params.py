"""Per-environment params files (params/<env>.yaml): loading and every check on them.

A file has `region`, optional `tags`, and `parameters`: values for the inputs declared in
templates/inputs.py. Anything wrong becomes a ParamsError whose lines each name the file, the
key, the value and what is allowed."""

import copy
import datetime
import difflib
import functools
import ipaddress
import json
import os
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import yaml

from templates import OPTIONAL_LAYERS, alb, layer_order, own_tags, relative
from templates.common import CI_DEPLOY_JOB_MINUTES, MOST_MONITORING_MINUTES, MOST_RELEASE_WAIT_MINUTES, ROLE_BOUNDARY
from templates.errors import ANY_CONTROL_CHARACTER, RefusedFile, ToolError, printable, read_regular_file, yaml_problem
from templates.inputs import (
    FARGATE_MEMORY_BY_CPU,
    GITHUB_SUB,
    HTTP_PATH,
    INPUTS,
    PARAMETER_VALUE_BYTES,
    TRAFFIC_SHIFTING,
    TRUST_POLICY_MAX_CHARACTERS,
    TRUST_POLICY_OTHER_CHARACTERS,
    Input,
)

TOP_LEVEL_KEYS = ("region", "tags", "enabled_layers", "smoke_checks", "shared_inputs", "parameters")
INPUTS_BY_LOWER = {name.lower(): name for name in INPUTS}
# Inputs that keep environments apart: two environments with the same backend security group let
# one's load balancer reach the other's tasks; the same database secret gives one the other's
# credentials; the same database name on one server (a shared secret, or secrets naming one host) gives
# both one database (a copied params file kept it). Sharing one needs `shared_inputs: {Input: "why"}` in
# one of the two files.
ISOLATING_INPUTS = ("BackendSecurityGroupId", "DatabaseSecretArn", "DatabaseName")
# Not "review": output/review/ holds the review documents, not an environment's files.
ENV_NAME = re.compile(r"(?!review\Z)[a-z][a-z0-9]{1,15}")
ENV_NAME_ALLOWED = "2 to 16 lower-case letters and digits, starting with a letter, other than review"
# The environment that lives in the local emulator (emulator/sandbox.py), never in an AWS account.
SANDBOX_ENV = "sandbox"
# Optional layers the emulator cannot take through create, destroy and create again, and why.
SANDBOX_CANNOT_REHEARSE = {"ci": "the emulator deletes its roles before detaching their policies, so its destroy fails half way"}
# The sandbox's credentials, as environment variables: fixed and fake (moto takes any). emulator/sandbox.py
# points clients at the sandbox with them; the deployer names them in the commands it prints for it.
SANDBOX_KEYS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
# Why the sandbox cannot be used (not running, seeded in another region), as make passes it from
# `python -m emulator.sandbox env --defer-problem` to the deployer, which says it once it has checked
# the command's own values: a mistyped STACK= is said before "start the sandbox", as on AWS.
SANDBOX_PROBLEM = "SANDBOX_PROBLEM"
# A client of the sandbox reads no profile, config or credentials file of the user's (an AWS_PROFILE
# naming a profile that does not exist stopped every sandbox run), as botocore.session.Session's
# session_vars take them: name -> (config file key, environment variables, default, conversion).
SANDBOX_SESSION_VARS = {
    "profile": (None, None, None, None),
    "config_file": (None, None, os.devnull, None),
    "credentials_file": (None, None, os.devnull, None),
}
# A key may not start with aws:, reserved for AWS's own tags; refused in any case (AWS:, Aws:), as
# AWS reports it reserved in every case combination (github.com/awsdocs/amazon-ecs-developer-guide/issues/72).
# https://docs.aws.amazon.com/tag-editor/latest/userguide/tagging.html
TAG_KEY = re.compile(r"[A-Za-z0-9 _.:/=+@-]{1,128}")
# CloudFormation stack tags: at most 50, values of 1 to 256 characters of letters, digits, spaces and _.:/=+-@
# https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_Tag.html ("Minimum length of 1")
TAG_VALUE = re.compile(r"[\w .:/=+@-]{1,256}")
STACK_MAX_TAGS = 50
# make verify runs every smoke check in each round, each request up to 10 s (scripts/verify.py): a
# bounded list keeps a round bounded. A path as long as the load balancer's health-check path may be.
# https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_CreateTargetGroup.html
MAX_SMOKE_CHECKS, MAX_SMOKE_PATH = 20, 1024
RESERVED_TAGS = tuple(own_tags("", ""))  # templates/generation.py sets them on every stack
MAX_NESTING = 10  # mappings and lists inside one another; the params files use 3
MAX_NUMBER_DIGITS = 30
MAX_PROBLEMS = 20


class ParamsLoader(yaml.SafeLoader):
    """safe_load with YAML 1.2's core schema, so that what the file says is what is deployed:
    04000 is 4000 (not octal), 1000:59 and 2025-01-31 stay strings (not base 60, not a date), only
    true/false are booleans (not yes/no/on/off). Refused: a key given twice (instead of keeping the
    last silently), a key that is not a plain value, anchors and aliases (they expand without bound)
    and the merge key <<, which YAML 1.2 does not have.
    https://yaml.org/spec/1.2.2/#1032-tag-resolution"""

    yaml_implicit_resolvers = {}
    nesting = 0

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(None, None, "aliases (*name) are not allowed: they expand without bound", event.start_mark)
        event = self.peek_event()
        if getattr(event, "anchor", None):
            raise yaml.composer.ComposerError(
                None, None, "anchors (&name) are not allowed: an alias would expand them without bound", event.start_mark
            )
        # Refused at the first level too many: the pure-Python scanner's work grows with the square
        # of the depth (10,000 brackets took over a second to reach Python's recursion limit).
        if self.nesting == MAX_NESTING and isinstance(event, yaml.CollectionStartEvent):
            raise yaml.composer.ComposerError(
                None, None, f"nested more than {MAX_NESTING} levels deep; allowed: at most {MAX_NESTING}", event.start_mark
            )
        self.nesting += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self.nesting -= 1

    def flatten_mapping(self, node):
        pass  # no merge keys: << is an ordinary (and unknown) key

    def construct_mapping(self, node, deep=False):
        if not isinstance(node, yaml.MappingNode):  # !!map or !!set on a plain value or a list: said at its line
            tag = node.tag.replace("tag:yaml.org,2002:", "!!")
            raise yaml.constructor.ConstructorError(
                None, None, f"{tag} on a value that is no mapping; allowed: a plain value, without a tag", node.start_mark
            )
        seen = set()
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag.rsplit(":", 1)[-1] in ("map", "set", "seq", "omap", "pairs"):
                raise yaml.constructor.ConstructorError(
                    None, None, "a key must be a plain name, not a list or mapping", key_node.start_mark
                )
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"key {shown(key)} is given twice", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)

    def construct_object(self, node, deep=False):
        core = CORE_SCALARS.get(node.tag) if isinstance(node, yaml.ScalarNode) else None
        if core and not core[0].fullmatch(node.value):
            # an explicit tag takes what YAML 1.2 does: !!bool yes was true, !!int 1_0 was 10, !!null 5 was no value
            tag = node.tag.rsplit(":", 1)[-1]
            raise yaml.constructor.ConstructorError(
                None, None, f"!!{tag} {shown(node.value)}: not a valid {tag} in YAML 1.2; allowed: {core[1]}", node.start_mark
            )
        try:
            return super().construct_object(node, deep)
        except (ValueError, KeyError, AttributeError, TypeError, OverflowError):
            # an explicit tag its value does not fit (!!int abc, !!bool maybe, !!timestamp 2020-13-45): at its line
            tag = node.tag.rsplit(":", 1)[-1]
            raise yaml.constructor.ConstructorError(
                None, None, f"!!{tag} {shown(node.value)}: not a valid {tag}; allowed: the value without a tag", node.start_mark
            ) from None

    def construct_yaml_int(self, node):
        text = self.construct_scalar(node)
        digits = text.lstrip("+-")
        if len(digits) > MAX_NUMBER_DIGITS:  # no input takes one; Python refuses to print one over 4,300 digits
            raise yaml.constructor.ConstructorError(
                None, None, f"a number of {len(digits)} characters; allowed: up to {MAX_NUMBER_DIGITS}", node.start_mark
            )
        base = {"0o": 8, "0x": 16}.get(text[:2], 10)
        return WrittenInt.of(int(text[2:] if base != 10 else text, base), text)

    def construct_yaml_float(self, node):
        return WrittenFloat.of(super().construct_yaml_float(node), self.construct_scalar(node))


def _as_written(cls, value, written):
    number = cls(value)
    number.written = written
    return number


class WrittenInt(int):
    """A number as the file wrote it too (04000, 0x1A, 1.10, 1e3): a message quotes that text, as the
    value Python reads (4000, 26, 1.1, 1000.0) is not what to put in quotes."""

    written: str
    of = classmethod(_as_written)


class WrittenFloat(float):
    __doc__ = WrittenInt.__doc__
    written: str
    of = classmethod(_as_written)


# YAML 1.2's core schema: tag -> (pattern, first characters, what it allows), for a plain value and a tagged one alike
CORE_SCHEMA = {
    "bool": (r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF", "true or false"),
    "int": (r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", "-+0123456789", "digits, 0o<octal digits> or 0x<hex digits>"),
    "float": (
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        "-+0123456789.",
        "a decimal number such as 1.5 or 1e3",
    ),
    "null": (r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""], "null, ~ or nothing"),
}
CORE_SCALARS = {f"tag:yaml.org,2002:{tag}": (re.compile(pattern), allowed) for tag, (pattern, _, allowed) in CORE_SCHEMA.items()}
for tag, (pattern, first, _) in CORE_SCHEMA.items():
    ParamsLoader.add_implicit_resolver(f"tag:yaml.org,2002:{tag}", re.compile(pattern), list(first))
ParamsLoader.add_constructor("tag:yaml.org,2002:int", ParamsLoader.construct_yaml_int)
ParamsLoader.add_constructor("tag:yaml.org,2002:float", ParamsLoader.construct_yaml_float)


def named(key) -> str:
    """A key as a message names it: as written when it is a plain short name, else quoted and cut
    like a value (a key holding a newline must not start a line of its own; one with a space at either
    end, which the message would not show)."""
    return key if isinstance(key, str) and re.fullmatch(r"[\w.:/=+@ -]{1,80}", key) and key == key.strip() else shown(key)


class OneLineDumper(yaml.SafeDumper):
    """Flow style on one line: a string with a newline or another control character double-quoted,
    escaped ("a\\nb"), where PyYAML would fold it over lines (a newline in a value, printed, would start
    a forged message line of its own)."""


def _escaped_string(dumper, value):
    style = '"' if ANY_CONTROL_CHARACTER.search(value) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


OneLineDumper.add_representer(str, _escaped_string)
# Written as the params files are read (YAML 1.2's core schema, ParamsLoader): a number as its file wrote it,
# untagged ([1e3, 09], not [!!float '1e3', !!int '09']), and a string quoted where that schema would read another type.
OneLineDumper.yaml_implicit_resolvers = ParamsLoader.yaml_implicit_resolvers
for _number, _tag in ((WrittenInt, "int"), (WrittenFloat, "float")):
    OneLineDumper.add_representer(
        _number, lambda dumper, value, tag=_tag: dumper.represent_scalar(f"tag:yaml.org,2002:{tag}", value.written)
    )


def shown(value) -> str:
    """A value as a message quotes it: in full up to 200 characters (any realistic ARN), else its start,
    its end and its length (a 100,000-character tag must not become a 100,000-character error line;
    the end of an ARN is what tells it apart)."""
    if value is None:
        return "no value (null to YAML)"  # `key:` or `key: null`; not "empty": "" may be allowed where null is not
    if isinstance(value, bool):
        return "true" if value else "false"  # as YAML writes them, not Python's True
    if isinstance(value, WrittenFloat) and CORE_SCALARS["tag:yaml.org,2002:int"][0].fullmatch(value.written):
        return f"!!float {value.written}"  # a float by its tag alone: "2 is not allowed; allowed: a whole number" puzzled
    if isinstance(value, WrittenInt | WrittenFloat):
        return printable(value.written, one_line=True)[:200]
    # What YAML reads into no type a params file uses, named as YAML names it, not as Python writes it
    if isinstance(value, datetime.date):
        return f"a date (!!timestamp {value.isoformat()})"
    if isinstance(value, bytes | bytearray):
        return f"binary data (!!binary, {len(value)} bytes)"
    if isinstance(value, set | frozenset):
        return "a set (!!set)"
    if isinstance(value, list | dict):  # in YAML's flow style, as the file could write it: [a, {b: true}], not ['a', {'b': True}]
        flow = yaml.dump(value, Dumper=OneLineDumper, default_flow_style=True, width=float("inf"), allow_unicode=False, sort_keys=False)
        text = printable(flow.strip(), one_line=True)
        length = len(text)
    else:
        text, length = printable(repr(value), one_line=True), len(str(value))  # repr shows a letter that shows as nothing as it is
        # A combining mark shows as part of the letter before it: 'a' and U+0301 read as one refused 'á'.
        text = "".join(f"\\u{ord(c):04x}" if unicodedata.category(c) in ("Mn", "Me") else c for c in text)
    return text if len(text) <= 200 else f"{text[:60]}...{text[-40:]} ({length} characters)"


class ParamsError(ToolError):
    """Bad params; str() is one line per problem, at most MAX_PROBLEMS of them and a line counting the rest."""

    code = 2

    def __init__(self, problems):
        self.every_problem = problems  # what load_all gathers from each file
        super().__init__("\n".join(self.problems))

    @property
    def problems(self) -> list[str]:
        """The lines to print: a file of 80,000 unknown keys is one mistake, not 80,000 lines to read."""
        shown, left = self.every_problem[:MAX_PROBLEMS], len(self.every_problem) - MAX_PROBLEMS
        return shown + ([f"and {left} more problems: fix those above, then run again"] if left > 0 else [])


@dataclass(frozen=True)
class Environment:
    name: str
    path: Path
    region: str
    tags: dict
    enabled_layers: tuple  # optional layers this environment deploys
    smoke_checks: tuple  # ({"path": "/…", "status": 200}, …) that `make verify` requests
    values: dict  # input name -> value as CloudFormation takes it (a string)
    explicit: frozenset  # the inputs the params file sets; the others take their defaults
    shared_inputs: dict  # ISOLATING_INPUTS this file means to share with another environment -> why
    problems: tuple = ()  # load_for_reading: what is wrong in the file (then values holds none of it)

    def deploys(self, layer: str) -> bool:
        """Every layer but the optional ones this environment does not enable."""
        return layer not in OPTIONAL_LAYERS or layer in self.enabled_layers

    @property
    def layers(self) -> list[str]:
        """The layers this environment deploys, in deploy order."""
        return [layer for layer in layer_order() if self.deploys(layer)]


def params_files(params_dir: Path, suffix: str = ".yaml") -> list[Path]:
    """The params files in params_dir. Hidden files are not environments: an editor's lock or backup
    file (.#prod.yaml) among them."""
    return sorted(p for p in params_dir.glob(f"*{suffix}") if not p.name.startswith("."))


def environment_problem(env: str, params_dir: Path, from_deployer: bool = False) -> str | None:
    """Why env names no environment of params_dir (a name, not a path: ENV=./sandbox would read
    params/sandbox.yaml past the Makefile's ENV=sandbox guard; or no file of that name), naming those
    there are; None if it names one. The deployer, generate.py --check --env and the review say it so; the
    deployer (from_deployer) adds how to destroy the stacks of an environment whose file was removed first."""
    missing = missing_params_dir(params_dir)
    if missing:
        return missing
    names = [path.stem for path in params_files(params_dir)]
    known, hint = ", ".join(names) or "none", did_you_mean(env, names)
    if not ENV_NAME.fullmatch(env):
        return f"ENV={shown(env)} is not an environment name{hint}: names are {ENV_NAME_ALLOWED}; environments: {known} (params/<env>.yaml)"
    path = params_dir / f"{env}.yaml"
    if not os.path.lexists(path):  # one that is there but no file (a FIFO, a directory) is the loader's to refuse
        file = printable(str(relative(path)), one_line=True)
        # Not a misspelling: perhaps an environment removed before its stacks were (README: Remove an environment),
        # which nothing can destroy without the file: its name prefix and region are there
        removed = (
            ""
            if hint or not from_deployer
            else f" (one whose file was removed while its stacks are deployed: put {file} back, then make destroy ENV={env})"
        )
        return f"unknown environment {env!r}{hint}: no {file}; environments: {known}{removed}"
    return None


def missing_params_dir(params_dir: Path) -> str | None:
    """What is wrong with a params directory that is not one (a mistyped --params-dir), else None:
    said as that, not as a directory without the environment's file."""
    try:
        if params_dir.is_dir():
            os.listdir(params_dir)  # one that may not be listed: glob() finds nothing in it, and said "no params files"
            return None
        what = "not a directory" if params_dir.exists() else "no such directory"
    except OSError as error:  # Python 3.11's is_dir() raises a PermissionError (EACCES) rather than say False
        what = f"cannot be read ({error.strerror or error})"
    return f"{printable(str(params_dir), one_line=True)}: {what}; the params directory holds one <env>.yaml per environment"


def load_all(params_dir: Path) -> list[Environment]:
    """Load and check every params/<env>.yaml; raise ParamsError listing every problem."""
    missing = missing_params_dir(params_dir)
    if missing:
        raise ParamsError([missing])
    # qa.yml, qa.YAML: meant as params files, and silently not read as one.
    misnamed = [p for p in params_files(params_dir, "") if p.suffix.lower() in (".yaml", ".yml") and p.suffix != ".yaml"]
    if misnamed:
        raise ParamsError(
            [
                f"{printable(str(path), one_line=True)}: params files end in .yaml; rename it to "
                f"{printable(path.with_suffix('.yaml').name, one_line=True)}"
                for path in misnamed
            ]
        )
    files = params_files(params_dir)
    if not files:
        raise ParamsError([f"{printable(str(params_dir), one_line=True)}: no params files (<env>.yaml) found"])
    environments, problems = [], []
    for path in files:
        try:
            environments.append(load(path))
        except ParamsError as error:
            problems.extend(error.every_problem)
    every_file_read = not problems  # each file passed its own checks: what they share is judged on all of params/
    owners = {}
    for env in environments:  # resource names (ALB, target group, service, ...) come from NamePrefix
        owner = owners.setdefault(env.values["NamePrefix"], env)
        if owner is not env:
            problems.append(
                f"{both(owner, env, 'NamePrefix')}: both {shown(env.values['NamePrefix'])}{defaults(owner, env, 'NamePrefix')}; "
                "allowed: a prefix of each environment's own (their resources would collide): set it in the file of the one to change"
            )
    problems += shared_isolation(environments, every_file_read)
    problems += beyond_ci_roles(environments, {path.stem for path in files})
    problems += one_ci_per_account(environments)
    problems += oidc_provider_of_the_account(environments)
    problems += one_domain_per_zone(environments)
    hosts = {}
    for env in environments:  # the alb layer writes the host's alias record: two environments would fight over it
        host = f"{env.values['ApiHostLabel']}.{env.values['DomainName']}"
        owner = hosts.setdefault((env.values["ExistingHostedZoneId"], host), env)
        if owner is not env:
            problems.append(
                f"{both(owner, env, 'ApiHostLabel')}: both {shown(env.values['ApiHostLabel'])}{defaults(owner, env, 'ApiHostLabel')}, "
                f"which makes {host} in the same hosted zone for both; allowed: a host label of each environment's own in a zone: "
                "set it in the file of the one to change"
            )
    if problems:
        raise ParamsError(problems)
    return environments


def one_domain_per_zone(environments) -> list[str]:
    """One problem per environment that names another's hosted zone with another DomainName: a zone has one
    name, the domain (make deploy of cert-dns refuses a zone of another name, scripts/deploy/zone.py), so
    one of the two would be refused at its first deploy. https://docs.aws.amazon.com/Route53/latest/APIReference/API_HostedZone.html"""
    owners, problems = {}, []
    for env in (env for env in environments if env.values["ExistingHostedZoneId"]):
        owner = owners.setdefault(env.values["ExistingHostedZoneId"], env)
        if owner.values["DomainName"] != env.values["DomainName"]:
            problems.append(
                f"{both(owner, env, 'ExistingHostedZoneId')}: both {env.values['ExistingHostedZoneId']}, a zone of one domain, "
                f"for {shown(owner.values['DomainName'])} and {shown(env.values['DomainName'])}{defaults(owner, env, 'DomainName')}; "
                "allowed: the same DomainName, or each domain's own zone (make zone ENV=<env> finds or creates it once "
                'ExistingHostedZoneId is ""): set it in the file of the one to change'
            )
    return problems


def beyond_ci_roles(environments, names) -> list[str]:
    """One problem per value that puts an environment outside the ci roles its GitHub runs assume: those
    of the environment whose ci layer names it in GitHubSubjects (environment:<name>), unless it deploys
    a ci layer of its own. Those roles reach that environment's account, region, VPC and cluster alone, and its
    domain and the names under it (templates/ci.py): AWS denies what no statement allows, so the run
    would fail half way. And one per environment:<name> of no params file (names: those of the params
    directory, read or not): a removed environment's runs, or a misspelt one's, kept the deploy role.
    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html"""
    by_name = {env.name: env for env in environments}
    problems = []
    for ci in (env for env in environments if env.deploys("ci")):
        listed = (
            f"{relative(ci.path)}'s GitHubSubjects"
            if "GitHubSubjects" in ci.explicit
            else f"the GitHubSubjects {relative(ci.path)} takes by default"
        )
        for subject in dict.fromkeys(as_list(ci.values["GitHubSubjects"])):
            name = subject.removeprefix("environment:") if subject.startswith("environment:") else None
            if name is not None and name not in names:
                problems.append(
                    f"{relative(ci.path)}: parameters.GitHubSubjects{'' if 'GitHubSubjects' in ci.explicit else ' (its default)'}: "
                    f"{shown(subject)} names no environment of {relative(ci.path.parent)}/{did_you_mean(name, sorted(names))}, "
                    f"yet its GitHub runs could assume the deploy role: take it out, or restore {relative(ci.path.parent)}/{name}.yaml "
                    f"if it went by mistake; allowed: environment:<name> of {', '.join(sorted(names))}, or a ref: subject"
                )
                continue
            other = by_name.get(name)
            if other is None or other.deploys("ci"):  # none of ours, or one whose runs assume its own ci roles
                continue
            domain = ci.values["DomainName"]
            apart = [("region", other.region, ci.region, "the same")] if other.region != ci.region else []
            apart += [
                (f"parameters.{key}", other.values[key], ci.values[key], "the same")
                for key in ("VpcId", "ClusterName")
                if other.values[key] != ci.values[key]
            ]
            if other.values["DomainName"] != domain and not other.values["DomainName"].endswith(f".{domain}"):
                apart.append(("parameters.DomainName", other.values["DomainName"], domain, f"{domain} or a name under it"))
            if account_of(other) != account_of(ci):  # IAM roles act in their own account: its stacks are another's
                apart.append(
                    ("parameters.DatabaseSecretArn's account", account_of(other), account_of(ci), "the same (the stacks' account)")
                )
            problems += [
                f"{relative(other.path)}: {key}: {shown(value)}, while the ci roles its GitHub runs assume ({subject} in "
                f"{listed}) reach {shown(reached)} alone; allowed: {allowed}, or {subject} taken out of "
                f"{relative(ci.path)}'s GitHubSubjects (the ci layer has no role per environment)"
                for key, value, reached, allowed in apart
            ]
    return problems


def account_of(environment) -> str:
    """The account an environment's stacks go to, as generation can tell it: its DatabaseSecretArn's, which the deployer
    holds to the stacks' account (scripts/deploy/guards.py); SECRET_ARN (templates/inputs.py) names the account."""
    return environment.values["DatabaseSecretArn"].split(":")[4]


def one_ci_per_account(environments) -> list[str]:
    """One problem per second environment of an account that deploys the ci layer: it makes its roles'
    boundary, a managed policy of a fixed name (templates/ci.py), and "IAM user, group, role, and policy
    names must be unique within the account", so the second create would fail. (GitHub's OIDC provider,
    one per account too, a second ci layer could take as ExistingOidcProviderArn; the boundary it cannot.)
    The account: DatabaseSecretArn's, which the deployer holds to the stacks' account (scripts/deploy/guards.py).
    https://docs.aws.amazon.com/IAM/latest/APIReference/API_CreatePolicy.html"""
    owners, problems = {}, []
    for env in (env for env in environments if env.deploys("ci")):
        account = account_of(env)
        owner = owners.setdefault(account, env)
        if owner is not env:
            problems.append(
                f"{relative(owner.path)} and {relative(env.path)}: enabled_layers: both deploy the ci layer in account {account} (their "
                f"parameters.DatabaseSecretArn), whose roles' boundary, the managed policy {ROLE_BOUNDARY}, an account has once: the "
                "second create would fail; allowed: the ci layer in one of them, whose GitHubSubjects names the other "
                f"(environment:{owner.name} or environment:{env.name}), as the other's runs assume its roles"
            )
    return problems


def oidc_provider_of_the_account(environments) -> list[str]:
    """One problem per environment whose ci layer names GitHub's OIDC provider of another account than its stacks':
    the roles it makes trust a provider of the account they are in ("create an OIDC identity provider in IAM" of that
    account first). The account: DatabaseSecretArn's, as one_ci_per_account reads it.
    https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_create_for-idp_oidc.html"""
    problems = []
    for env in (env for env in environments if env.deploys("ci") and env.values.get("ExistingOidcProviderArn")):
        given, account = env.values["ExistingOidcProviderArn"], account_of(env)
        if given.split(":")[4] != account:
            problems.append(
                f"{relative(env.path)}: parameters.ExistingOidcProviderArn: {shown(given)} is a provider of account {given.split(':')[4]}, "
                f"while the environment's stacks go to account {account} (its parameters.DatabaseSecretArn), whose roles it would "
                f"trust; allowed: arn:aws:iam::{account}:oidc-provider/token.actions.githubusercontent.com, or empty (the ci layer "
                "creates it)"
            )
    return problems


def both(first, second, key) -> str:
    """Where two environments collide on a key, named as both files: which of the two is to change,
    only the person who added or edited one knows."""
    return f"{relative(first.path)} and {relative(second.path)}: parameters.{key}"


def defaults(first, second, key) -> str:
    """Which of the two take the value as templates/inputs.py's default, not from their file."""
    unset = [env.name for env in (first, second) if key not in env.explicit]
    if not unset:
        return ""
    return f" ({' and '.join(unset)} {'take' if len(unset) > 1 else 'takes'} the default from templates/inputs.py)"


def shared_isolation(environments, every_file_read=True) -> list[str]:
    """One problem per pair of environments sharing an ISOLATING_INPUTS value neither file opts into, and per share
    no other environment has; that last only with every_file_read (a file with problems of its own is not among
    environments: its value would go unseen, and a share it holds be called none)."""
    problems = []
    for key in ISOLATING_INPUTS:
        owners = {}
        for env in environments:
            owner = owners.setdefault(env.values[key], env)
            if owner is env or key in env.shared_inputs or key in owner.shared_inputs:
                continue
            problems.append(
                f"{both(owner, env, key)}: both {shown(env.values[key])}{defaults(owner, env, key)}; allowed: each environment's "
                f"own (set it in the file of the one to change), or, if sharing is meant, `shared_inputs: {{{key}: <why>}}` in one of the two files"
            )
    for env in environments if every_file_read else ():  # an exemption left from a share that ended would let a later,
        for key in env.shared_inputs:  # accidental one through unsaid
            if not [other for other in environments if other is not env and other.values[key] == env.values[key]]:
                problems.append(
                    f"{relative(env.path)}: shared_inputs.{key}: no other environment of {relative(env.path.parent)}/ has its {key}; "
                    "allowed: take it out (it would let a later, accidental share of it through), or share the value as it says"
                )
    return problems


@functools.lru_cache(maxsize=128)
def parse_yaml(text: str):
    """A params file's text as data, kept per text for the process: the deployer, `make review` and
    the tests read the same files again and again, and the pure-Python parser (the one whose
    composer can refuse anchors) takes some 15 ms a file. A file that fails to parse is not kept."""
    return yaml.load(text, Loader=ParamsLoader)


MOST_PARAMS_FILE_BYTES = 1 << 20  # a params file is a few kilobytes; a larger one is no params file


# Lines as people count them (git diff, grep, editors): PyYAML's reader also ends a line at NEL,
# U+2028 and U+2029, as YAML 1.1 did; YAML 1.2 reads them as ordinary characters
# (https://yaml.org/spec/1.2.2/#54-line-break-characters), as those tools do, which show what follows one
# on the same line: "# a comment<U+2028>key: value" looked like a comment and set the key. Refused, and so
# is a carriage return without a newline after it, which git diff shows as ^M and grep as nothing, on one line.
LINE_BREAK = re.compile("\r\n|[\r\n]")
HIDDEN_LINE_BREAK = re.compile("[\x85\u2028\u2029]|\r(?!\n)")


def read_yaml(path: Path, where: str, what: str = "a params file"):
    """The data of a YAML file the tools take (a params file, the price table), a copy of parse_yaml's:
    read only from a regular file of at most MOST_PARAMS_FILE_BYTES (a symlink to /dev/zero, or to a file
    outside the project whose lines the errors would print, and a FIFO, which blocks, are refused), in
    UTF-8, without a hidden line break. ParamsError, one line naming where, for what it cannot read."""
    try:
        text = read_regular_file(path, MOST_PARAMS_FILE_BYTES, what, follow_symlinks=False).decode("utf-8")
    except RefusedFile as refused:
        raise ParamsError([f"{where}: {refused}"]) from None
    except OSError as error:
        raise ParamsError([f"{where}: cannot be read: {error.strerror or error}"]) from None
    except UnicodeDecodeError as error:
        # an editor's "Unicode" (UTF-16) starts with its byte order mark, FF FE or FE FF; UTF-32's, FF FE 00 00 or 00 00 FE FF
        marks = (("UTF-32", (b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")), ("UTF-16", (b"\xff\xfe", b"\xfe\xff")))
        unicode = next((f" (it starts as {name} does: save it as UTF-8)" for name, boms in marks if error.object.startswith(boms)), "")
        raise ParamsError([f"{where}: byte {error.start} is not UTF-8 text{unicode}; allowed: a YAML file in UTF-8"]) from None
    hidden = HIDDEN_LINE_BREAK.search(text)
    if hidden:
        raise ParamsError(
            [
                f"{where}: line {len(LINE_BREAK.split(text[: hidden.start()]))}: the character {hidden.group()!r} ends a line for the "
                f"YAML reader, but not for {'git diff or grep' if hidden.group() == chr(13) else 'git diff, grep or an editor'}, which "
                "show what follows it on the same line; allowed: newlines (\\n, or \\r\\n) to end a line"
            ]
        )
    try:
        return copy.deepcopy(parse_yaml(text))  # a copy: callers own what they read
    except yaml.reader.ReaderError as error:  # a character YAML does not take: its position in the text, not a mark
        line = len(LINE_BREAK.split(text[: error.position]))
        character = repr(chr(error.character)) if isinstance(error.character, int) else repr(error.character)
        raise ParamsError(
            [f"{where}: line {line}: the character {character} cannot be read as YAML; allowed: printable text, tabs and newlines"]
        ) from None
    except yaml.YAMLError as error:
        raise ParamsError([f"{where}:{yaml_problem(error)}"]) from None
    except (ValueError, KeyError, AttributeError, TypeError, OverflowError) as error:
        # a tag on a collection it does not fit (!!map [1]): built after its node, past construct_object's check
        raise ParamsError([f"{where}: cannot be read as YAML: a tagged value (!!...) that is not one ({type(error).__name__})"]) from None


# The one line a params file YAML cannot read is read for its region: `region: <value>` at the line's start, the
# value plain or quoted, a comment after it allowed; in a file of printable ASCII (no control character that redraws
# a line on a terminal, no look-alike letter that hides a second region line).
REGION_LINE = re.compile(r"""region:[ \t]+(["']?)([a-z0-9-]+)\1(?:[ \t]+#.*|[ \t]*)""")  # YAML's # after a space only
PLAIN_TEXT = re.compile(r"[\t\n\x20-\x7e]*(?:\r\n[\t\n\x20-\x7e]*)*")


# What may stand above the region line for it to be read: blank lines, comments, a document's start (---). Nothing
# there can open a quote, a bracket or another key whose value the line would be part of.
ABOVE_THE_REGION = re.compile(r"[ \t]*(?:#.*)?|---")


def region_as_written(path: Path) -> str | None:
    """The region of a params file YAML cannot read as a whole (a tab, an unclosed list or quote, a key given twice:
    an edit half done), as a person reads it: the word region written once (in any letter case) in a file of printable
    ASCII without a backslash, on a line `region: <value>` (REGION_LINE) that is the file's first key (only comments,
    blank lines and --- above it: ABOVE_THE_REGION), the next line with anything but a comment on it not indented with
    a space (YAML would read it as more of the value; one below a comment may be meant as that too). None otherwise:
    a second mention (a move to another region half done, a comment, a tag of that name, a look-alike letter, a quoted
    key's escapes), a key above it (whose quoted or bracketed value the line may be part of), any other form."""
    try:
        text = read_regular_file(path, MOST_PARAMS_FILE_BYTES, "a params file", follow_symlinks=False).decode("utf-8")
    except (RefusedFile, OSError, UnicodeDecodeError):
        return None
    text = text.removeprefix("\ufeff")  # YAML's reader skips a byte order mark
    if text.lower().count("region") != 1 or "\\" in text or not PLAIN_TEXT.fullmatch(text):
        return None
    lines = text.replace("\r\n", "\n").split("\n")
    (at,) = [i for i, line in enumerate(lines) if "region" in line.lower()]
    found = REGION_LINE.fullmatch(lines[at])
    after = next((line for line in lines[at + 1 :] if line.strip() and not line.lstrip().startswith("#")), "")
    if not found or after.startswith(" ") or not all(ABOVE_THE_REGION.fullmatch(line) for line in lines[:at]):
        return None
    return found.group(2)


def load_for_reading(path: Path) -> Environment:
    """For the commands that only read what is deployed (make status, outputs, events, logs, releases, unlock): the
    environment even when its file has problems elsewhere, as long as its region can be read (the
    problems kept in .problems, its values left empty, every optional layer taken as enabled where
    enabled_layers is not a list of them, or YAML cannot read the file). A half-done edit must not hide
    what runs, nor keep a dead run's lock."""
    try:
        return load(path)
    except ParamsError as error:
        problems = error.every_problem
    try:
        data = read_yaml(path, str(path))
    except ParamsError:
        # YAML cannot read it: its region as written, and every optional layer (what it enables is not read)
        data = {"region": region_as_written(path), "enabled_layers": list(OPTIONAL_LAYERS)}
    region = data.get("region") if isinstance(data, dict) else None
    if not (isinstance(region, str) and region in alb.REGIONS):
        raise ParamsError(problems)
    enabled = data.get("enabled_layers") or []  # left out or empty: none, as load() reads it
    if not (isinstance(enabled, list) and all(isinstance(layer, str) and layer in OPTIONAL_LAYERS for layer in enabled)):
        enabled = OPTIONAL_LAYERS
    return Environment(path.stem, path, region, {}, tuple(enabled), (), {}, frozenset(), {}, tuple(problems))


def load(path: Path) -> Environment:
    regions, optional_layers = alb.REGIONS, OPTIONAL_LAYERS
    where = printable(str(relative(path)), one_line=True)  # a file name may hold control characters
    env = path.stem
    if not ENV_NAME.fullmatch(env):
        raise ParamsError([f"{where}: the file name {shown(env)} is not an environment name; allowed: {ENV_NAME_ALLOWED}"])
    data = read_yaml(path, where)
    if not isinstance(data, dict):
        said = "empty (or null)" if data is None else f"{shown(data)} is not a mapping"
        raise ParamsError([f"{where}: {said}; allowed: a mapping with keys {', '.join(TOP_LEVEL_KEYS)}"])

    problems = []
    for key in data:
        if key not in TOP_LEVEL_KEYS:
            # an input at the top level: indented one level too little
            hint = f" (an input: it goes under parameters:, as parameters.{key})" if key in INPUTS else did_you_mean(key, TOP_LEVEL_KEYS)
            problems.append(f"{where}: {named(key)}: unknown key{hint}; allowed: {', '.join(TOP_LEVEL_KEYS)}")
    region = data.get("region")
    if "region" not in data:
        problems.append(f"{where}: region: missing; allowed: {', '.join(sorted(regions))}")
    elif not isinstance(region, str) or region not in regions:
        problems.append(
            f"{where}: region: {shown(region)} is not supported{did_you_mean(region, regions)}; allowed: {', '.join(sorted(regions))}"
        )
    tags = {} if data.get("tags") is None else data["tags"]  # tags: 0 or [] is a mistake, not "no tags"
    if not isinstance(tags, dict):
        problems.append(f"{where}: tags: {shown(tags)} is not a mapping; allowed: tag names with their values (Owner: platform), or none")
        tags = {}
    # IAM takes tag names that differ only in case for one, and refuses a role given both ("Duplicate tag keys
    # found. Please note that Tag keys are case insensitive."): the stacks' tags reach their roles, so the
    # service layer's create would fail half way through a deploy of every layer.
    # https://docs.aws.amazon.com/IAM/latest/UserGuide/id_tags.html (Case sensitivity)
    taken = {name.lower(): f"the deployer's {name}" for name in RESERVED_TAGS}
    for key, value in tags.items():
        if key in RESERVED_TAGS:
            problems.append(f"{where}: tags.{key}: {shown(value)}: the deployer sets {key} itself; allowed: any other tag name")
        elif isinstance(key, str) and key.lower() in taken:
            problems.append(
                f"{where}: tags.{named(key)}: the same name as {taken[key.lower()]} but for case, which IAM takes for one tag "
                "(a role given both is refused); allowed: a name no other tag has in any case"
            )
        # an input indented under tags: by mistake became a tag on every stack, and the input kept its value
        elif isinstance(key, str) and key.lower() in INPUTS_BY_LOWER:
            problems.append(
                f"{where}: tags.{key}: {shown(value)}: named as the input {INPUTS_BY_LOWER[key.lower()]}, which goes under parameters: "
                "(as a tag it sets nothing); allowed: the input under parameters:, or a tag of another name"
            )
        # A space at either end is a tag of its own to AWS, and shown as the trimmed one: "Environment "
        # beside the deployer's Environment read as two values of one tag.
        elif not (isinstance(key, str) and TAG_KEY.fullmatch(key) and key == key.strip() and not key.lower().startswith("aws:")):
            problems.append(
                f"{where}: tags.{named(key)}: not a tag name; allowed: up to 128 ASCII letters, digits, spaces and _.:/=+-@, "
                "no space at either end, not starting with aws: (in any case)"
            )
        elif not (
            isinstance(value, str) and TAG_VALUE.fullmatch(value) and value == value.strip() and not ANY_CONTROL_CHARACTER.search(value)
        ):
            problems.append(  # CostCenter: 12 is a number to YAML
                f"{where}: tags.{key}: {shown(value)}; allowed: a string of 1 to 256 letters, digits, spaces and _.:/=+-@ "
                "(no newline, no space at either end)" + in_quotes(value, TAG_VALUE.fullmatch)
            )
        if isinstance(key, str):
            taken.setdefault(key.lower(), f"tags.{named(key)}")
    if len(tags) + len(RESERVED_TAGS) > STACK_MAX_TAGS:
        problems.append(
            f"{where}: tags: {len(tags)} tags and the {len(RESERVED_TAGS)} the deployer sets make {len(tags) + len(RESERVED_TAGS)}; "
            f"allowed: at most {STACK_MAX_TAGS - len(RESERVED_TAGS)} (CloudFormation takes {STACK_MAX_TAGS} per stack)"
        )
    enabled = data.get("enabled_layers", [])
    if env == SANDBOX_ENV:
        optional_layers = tuple(layer for layer in optional_layers if layer not in SANDBOX_CANNOT_REHEARSE)
    allowed_layers = f"allowed: a list of optional layers ({', '.join(optional_layers)}), each once"
    if enabled is None:  # `enabled_layers:` with its items not written (yet): read as none, it took every optional layer's files away
        problems.append(f"{where}: enabled_layers: {shown(enabled)}; {allowed_layers}, or [] for none")
        enabled = []
    elif not isinstance(enabled, list):
        problems.append(f"{where}: enabled_layers: {shown(enabled)} is not a list; {allowed_layers}")
        enabled = []
    seen = set()
    for layer in enabled:
        if not isinstance(layer, str):
            problems.append(f"{where}: enabled_layers: {shown(layer)} is not a layer name; {allowed_layers}")
        elif layer not in optional_layers or layer in seen:
            hint = (
                " is given twice"
                if layer in seen
                else f": the sandbox cannot rehearse it ({SANDBOX_CANNOT_REHEARSE[layer]})"
                if env == SANDBOX_ENV and layer in SANDBOX_CANNOT_REHEARSE
                else " is not an optional layer" + did_you_mean(layer, optional_layers)
            )
            problems.append(f"{where}: enabled_layers: {shown(layer)}{hint}; {allowed_layers}")
        seen.add(str(layer))
    enabled = [layer for layer in dict.fromkeys(e for e in enabled if isinstance(e, str)) if layer in optional_layers]
    smoke = [] if data.get("smoke_checks") is None else data["smoke_checks"]
    allowed_smoke = (
        f"allowed: a list of up to {MAX_SMOKE_CHECKS} {{path: /some/path, status: 200}} "
        f"(a path starting with /, of at most {MAX_SMOKE_PATH:,} characters; an HTTP status)"
    )
    if not isinstance(smoke, list):
        problems.append(f"{where}: smoke_checks: {shown(smoke)} is not a list; {allowed_smoke}")
        smoke = []
    if len(smoke) > MAX_SMOKE_CHECKS:
        problems.append(f"{where}: smoke_checks: {len(smoke)} checks; {allowed_smoke}")
    for number, check in enumerate(smoke, 1):
        wrong = smoke_check_problem(check)
        if wrong:
            problems.append(f"{where}: smoke_checks, item {number}: {shown(check)}: {wrong}; {allowed_smoke}")
    smoke = [check for check in smoke if not smoke_check_problem(check)]
    shared = {} if data.get("shared_inputs") is None else data["shared_inputs"]
    allowed_shared = f"allowed: a mapping of {', '.join(ISOLATING_INPUTS[:-1])} or {ISOLATING_INPUTS[-1]} to why this environment shares it"
    if not isinstance(shared, dict):
        problems.append(f"{where}: shared_inputs: {shown(shared)} is not a mapping; {allowed_shared}")
        shared = {}
    for key, why in shared.items():
        if key not in ISOLATING_INPUTS:
            problems.append(f"{where}: shared_inputs.{named(key)}: unknown key{did_you_mean(key, ISOLATING_INPUTS)}; {allowed_shared}")
        elif not (isinstance(why, str) and why.strip()):
            problems.append(f"{where}: shared_inputs.{key}: {shown(why)} gives no reason; {allowed_shared}")
    given = {} if data.get("parameters") is None else data["parameters"]
    if not isinstance(given, dict):
        problems.append(f"{where}: parameters: {shown(given)} is not a mapping; allowed: input names with their values (DesiredCount: 2)")
        given = {}

    values, inputs_listed = {}, False
    for key, raw in given.items():
        spec = INPUTS.get(key)
        if spec is None:
            hint = did_you_mean(key, INPUTS) if len(problems) < MAX_PROBLEMS else ""  # past those shown: not worth difflib's time
            # the inputs listed once a file: each unknown key's line ran to some 1,300 characters
            allowed = "the inputs listed above" if inputs_listed else ", ".join(sorted(INPUTS))
            problems.append(f"{where}: parameters.{named(key)}: unknown key{hint}; allowed: {allowed}")
            inputs_listed = True
            continue
        problem = check_value(spec, raw)
        if problem:
            named_choices = spec.allowed if spec.allowed not in (None, ("true", "false")) and spec.type == "String" else ()
            hint = did_you_mean(raw, named_choices) if named_choices else ""  # BLUE-GREEN: BLUE_GREEN
            problems.append(f"{where}: parameters.{key}: {shown(raw)} is not allowed{hint}; allowed: {problem}")
        else:
            values[key] = raw
    if problems:
        raise ParamsError(problems)

    merged = {name: spec.default for name, spec in INPUTS.items()} | values
    problems = [f"{where}: {line}" for line in cross_checks(merged, set(values)) + (trust_policy_checks(merged) if "ci" in enabled else [])]
    if problems:
        raise ParamsError(problems)
    as_strings = {name: to_cfn_string(INPUTS[name], value) for name, value in merged.items()}
    return Environment(env, path, region, dict(tags), tuple(enabled), tuple(smoke), as_strings, frozenset(values), dict(shared))


def trust_policy_checks(v: dict) -> list[str]:
    """The ci layer's deploy role trusts a sub claim per subject and repository: they must fit IAM's quota."""
    repositories = [v["GitHubRepository"], *([v["GitHubCallerRepository"]] if v["GitHubCallerRepository"] else [])]
    subjects = as_list(v["GitHubSubjects"])  # at most GITHUB_MAX_SUBJECTS, as the input's items= allowed
    claims = [GITHUB_SUB.format(repository=repository, subject=subject) for repository in repositories for subject in subjects]
    size = TRUST_POLICY_OTHER_CHARACTERS + len(json.dumps(claims, separators=(",", ":")))
    if size <= TRUST_POLICY_MAX_CHARACTERS:
        return []
    return [
        f"parameters.GitHubSubjects: the deploy role's trust policy would take about {size} characters, {len(claims)} sub claims "
        f"({len(subjects)} subjects for {' and '.join(repositories)}); allowed: at most {TRUST_POLICY_MAX_CHARACTERS}, IAM's quota "
        "for a role trust policy: fewer or shorter subjects"
    ]


def did_you_mean(word, choices) -> str:
    """A close choice, whatever the case: WAF finds waf. A word that only looks like an ASCII choice
    ("us-east-1" with a Cyrillic a, which difflib scored as close to us-west-1) is said to hold what it does."""
    if not isinstance(word, str) or len(word) > 80:
        return ""
    foreign = sorted({c for c in word if not c.isascii()})
    if foreign and choices and all(choice.isascii() for choice in choices):
        named = ", ".join(f"U+{ord(c):04X} {unicodedata.name(c, 'unnamed')}" for c in foreign[:3])
        return f" (it holds {named}: not ASCII, as every allowed value is)"
    by_lower = {choice.lower(): choice for choice in choices}
    close = difflib.get_close_matches(word.lower(), list(by_lower), n=3)
    # Every choice as close as the closest (us-east-l is us-east-1 or us-east-2 to difflib), in text order (choices may
    # be a set): one of them alone, the last in text order, was said for us-east-l (us-east-2)
    score = {choice: difflib.SequenceMatcher(None, choice, word.lower()).ratio() for choice in close}
    best = max(score.values(), default=None)
    tied = sorted(by_lower[choice] for choice, ratio in score.items() if ratio == best)
    return f" (did you mean {' or '.join(tied)}?)" if tied else ""


def smoke_check_problem(check) -> str | None:
    """What is wrong with one of smoke_checks' items, in words; None if nothing is."""
    if not isinstance(check, dict):
        return "not a mapping"
    unknown = [key for key in check if key not in ("path", "status")]
    if unknown:
        key = unknown[0]
        return f"{named(key)}: unknown key{did_you_mean(key, ['path', 'status'])}" if isinstance(key, str) else "a key that is no name"
    missing = [key for key in ("path", "status") if key not in check]
    if missing:
        return f"no {missing[0]}"
    path, status = check["path"], check["status"]
    if not isinstance(path, str):
        return "its path is not text"
    if not re.fullmatch(HTTP_PATH, path):
        return "its path does not start with / or holds characters other than ASCII letters, digits and /._~-"
    if len(path) > MAX_SMOKE_PATH:
        return f"its path is {len(path):,} characters"
    if isinstance(status, str):  # status: "200": "not an HTTP status" misled, the number being one
        return "its status is text (in quotes): an HTTP status is a whole number from 100 to 599, without quotes"
    if not (isinstance(status, int) and not isinstance(status, bool) and 100 <= status <= 599):
        return "its status is not an HTTP status (100 to 599)"
    return None


def check_value(spec: Input, value):
    """None if value suits the input, else what is allowed, in words."""
    if spec.type == "Number":
        ok = isinstance(value, int) and not isinstance(value, bool)
        if ok and spec.allowed is not None:
            ok = value in spec.allowed
        if ok and spec.min_value is not None:
            ok = spec.min_value <= value <= spec.max_value
        # "2" is a string to YAML: say so when the number itself would do
        # (ASCII digits, spaces and tabs: YAML reads no other digits as a number, though int() takes them,
        # and int() refuses other white space that \s would match: "2\x1c" was a traceback)
        quoted = isinstance(value, str) and re.fullmatch(r"[ \t]*-?[0-9]{1,18}[ \t]*", value) and check_value(spec, int(value)) is None
        return None if ok else spec.allowed_text() + (", without quotes" if quoted else "")
    if spec.allowed == ("true", "false"):
        if isinstance(value, bool):
            return None
        # yes/no/on/off: text to YAML 1.2's core schema, which the params files are read with
        word = value.strip().lower() if isinstance(value, str) else None
        if word in ("true", "false"):
            return "true or false, without quotes"
        return "true or false" + (" (yes, no, on and off are text to YAML 1.2)" if word in ("yes", "no", "on", "off") else "")
    if value is None and check_value(spec, "") is None:  # `key:` alone is null to YAML, not the empty string
        return f'{spec.allowed_text()}; write the empty value as "" ({spec.name}: "")'
    if spec.is_list:
        written = value
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",")] if value else []
        low, high = spec.items
        ok = isinstance(value, list) and all(isinstance(v, str) and re.fullmatch(spec.pattern, v) for v in value)
        ok = ok and low <= len(value) <= high and len({told_apart(v) for v in value}) == len(value)
        if not ok:
            return spec.allowed_text() + ", all different"
        return too_long(spec, to_cfn_string(spec, written))  # as CloudFormation gets it: the items comma-joined
    ok = isinstance(value, str)
    if ok and spec.allowed is not None:
        ok = value in spec.allowed
    if ok and spec.pattern is not None:
        ok = re.fullmatch(spec.pattern, value) is not None
    if ok:
        return too_long(spec, value)
    # ImageTag: 20250131 is a number to YAML (04000 even loses its zero): say so when the text would do
    return spec.allowed_text() + in_quotes(value, lambda text: check_value(spec, text) is None)


def in_quotes(value, fits) -> str:
    """ ", in quotes (...)" for a value YAML read as a number or true/false whose text as written fits (is
    allowed as a string); "" otherwise."""
    if not (isinstance(value, int | float) and fits(getattr(value, "written", str(value).lower()))):
        return ""
    return f", in quotes (unquoted, YAML reads it as {'true or false' if isinstance(value, bool) else 'a number'})"


def told_apart(item: str) -> str:
    """How a list's items are told apart: an e-mail address and a GitHub environment whatever their case (the same
    mailbox, the same environment); a branch or tag as written (git refs are case-sensitive, as the trust policy's
    StringLike match of the sub claim is)."""
    return item if item.startswith("ref:") else item.lower()


def too_long(spec: Input, value: str) -> str | None:
    """What is allowed, when a value that fits the input's pattern is longer than AWS takes."""
    if spec.max_length is not None and len(value) > spec.max_length:
        return spec.allowed_text()  # which says the length
    if len(value.encode()) > PARAMETER_VALUE_BYTES:
        return f"{spec.allowed_text()}, at most {PARAMETER_VALUE_BYTES} bytes (CloudFormation's limit for a parameter value)"
    return None


def said_value(v: dict, given: set, key: str) -> str:
    """key's value as a problem names it: said to be the default where the file does not set it (the edit that makes
    the problem was then another key's)."""
    return f"{v[key]}{'' if key in given else ' (the default: the file does not set it)'}"


def cross_checks(v: dict, given: set) -> list[str]:
    """Rules between inputs, and those a pattern says badly; each problem names the keys and values involved."""

    def value(key: str) -> str:
        return said_value(v, given, key)

    problems = []
    memory_sizes = FARGATE_MEMORY_BY_CPU.get(v["TaskCpu"], [])
    if v["TaskMemory"] not in memory_sizes:
        problems.append(
            f"parameters.TaskMemory: {value('TaskMemory')} is not offered by Fargate with TaskCpu {v['TaskCpu']}; "
            f"allowed: {', '.join(map(str, memory_sizes))}"
        )
    if v["MinCapacity"] > v["MaxCapacity"]:
        problems.append(
            f"parameters.MinCapacity: {value('MinCapacity')} is above MaxCapacity {v['MaxCapacity']}; allowed: MinCapacity <= MaxCapacity"
        )
    elif not v["MinCapacity"] <= v["DesiredCount"] <= v["MaxCapacity"]:
        problems.append(
            # the bounds named with their values: an edit of MaxCapacity alone is what puts DesiredCount outside them
            f"parameters.DesiredCount: {value('DesiredCount')} is outside MinCapacity {v['MinCapacity']}..MaxCapacity "
            f"{v['MaxCapacity']}; allowed: {v['MinCapacity']} to {v['MaxCapacity']}, or MinCapacity and MaxCapacity that hold it"
        )
    gunicorn = v["GunicornTimeoutSeconds"]

    def or_lower(key: str) -> str:  # a GunicornTimeoutSeconds below key's value, where the input takes one
        return ", or a GunicornTimeoutSeconds below it" if v[key] > INPUTS["GunicornTimeoutSeconds"].min_value else ""

    if v["StopTimeoutSeconds"] <= gunicorn:
        problems.append(
            f"parameters.StopTimeoutSeconds: {value('StopTimeoutSeconds')} does not leave gunicorn its graceful timeout "
            f"(GunicornTimeoutSeconds {gunicorn}); allowed: {gunicorn + 1} to {INPUTS['StopTimeoutSeconds'].max_value}"
            + or_lower("StopTimeoutSeconds")
        )
    if v["IdleTimeoutSeconds"] <= gunicorn:
        problems.append(
            f"parameters.IdleTimeoutSeconds: {value('IdleTimeoutSeconds')} would have the load balancer answer 504 to a request "
            f"gunicorn still works on (GunicornTimeoutSeconds {gunicorn}); "
            f"allowed: {gunicorn + 1} to {INPUTS['IdleTimeoutSeconds'].max_value}" + or_lower("IdleTimeoutSeconds")
        )
    public, private = (set(as_list(v[key])) for key in ("PublicSubnetIds", "PrivateSubnetIds"))
    if public & private:
        problems.append(
            f"parameters.PrivateSubnetIds: {', '.join(sorted(public & private))} also in PublicSubnetIds; "
            "allowed: private subnets apart from the public ones (the tasks must not share the load balancer's internet-facing subnets)"
        )
    problems.extend(traffic_shifting_problems(v, given))
    problems.extend(rollback_watch_problems(v, given))
    problems.extend(repository_name_problems(v))
    # The pattern takes any region-like word: a mistyped one (us-esat-1) names no secret, and the tasks
    # would fail to start minutes into the release. ECS takes the secret by its full ARN, region and all:
    # https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_Secret.html
    secret_region = str(v["DatabaseSecretArn"]).split(":")[3:4]
    if secret_region and secret_region[0] not in alb.REGIONS:
        problems.append(
            f"parameters.DatabaseSecretArn: {shown(v['DatabaseSecretArn'])} names region {shown(secret_region[0])}, not a region "
            f"this project supports (mistyped?); allowed: an ARN in one of {', '.join(sorted(alb.REGIONS))}"
        )
    return problems


# Names the pattern takes that no GitHub repository has, so no token ever names them: GitHub drops a
# name's .git and refuses one ending in .wiki (docs.github.com/en/repositories/creating-and-managing-
# repositories/repository-limits), and . or .. would be a path segment of the repository's URL. As
# written there: whether .GIT counts too is not said, and a name that may be real is not refused.
def repository_name_problems(v: dict) -> list[str]:
    problems = []
    for key in ("GitHubRepository", "GitHubCallerRepository"):
        owner, _, name = str(v[key]).partition("/")
        name, at, repository_id = name.partition("@")  # the immutable form: name@<repository id>
        if not repository_name_taken(name):
            without = name.removesuffix(".git")
            problems.append(
                f"parameters.{key}: {shown(v[key])} names no GitHub repository (GitHub drops a name's .git, refuses one ending "
                f"in .wiki, and a name of . or ..); allowed: "
                + ("owner@<owner id>/name@<repository id> as its tokens name it" if at else "owner/name as the repository's page shows it")
                + (
                    f", such as {owner}/{without}{at}{repository_id}"
                    if name.endswith(".git") and without and repository_name_taken(without)
                    else ""
                )
            )
    return problems


def repository_name_taken(name: str) -> bool:
    """Whether GitHub has repositories of this name (one the input's pattern takes); an empty one: none given."""
    return name not in (".", "..") and not name.endswith((".git", ".wiki"))


def rollback_watch_problems(v: dict, given: set) -> list[str]:
    """The rollback triggers' watch after a service update against the time its alarms take to fire.
    CloudFormation rolls the update back on a trigger in ALARM during the update or the RollbackMonitoringMinutes
    after it (0: during the update only), and a release alarm is in ALARM only after BadPeriodsToAlarm bad periods in
    a row: a shorter watch ends before a fault that starts once the update is done can make one fire.
    https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/using-cfn-rollback-triggers.html
    https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricAlarm.html (DatapointsToAlarm: "The
    number of data points that must be breaching to trigger the alarm")"""
    watch, period, periods = v["RollbackMonitoringMinutes"], v["AlarmPeriodSeconds"], v["BadPeriodsToAlarm"]
    alarm_minutes = -(-period * periods // 60)
    if not 0 < watch < alarm_minutes:
        return []
    # at most CloudFormation's 180, and what a traffic-shifting release's own waits leave of the CI job's (its check)
    most = min(MOST_MONITORING_MINUTES, MOST_RELEASE_WAIT_MINUTES - release_wait_minutes(v))
    longer = "" if alarm_minutes > most else f"{alarm_minutes}, " if alarm_minutes == most else f"{alarm_minutes} to {most}, "
    return [
        f"parameters.RollbackMonitoringMinutes: {said_value(v, given, 'RollbackMonitoringMinutes')} ends before a release alarm can fire: it needs "
        f"BadPeriodsToAlarm {periods} periods of AlarmPeriodSeconds {period} s in a row ({alarm_minutes} minutes), so a fault "
        f"that starts once the service update is done is never rolled back by CloudFormation; allowed: {longer}0 (watched "
        "during the update only), or fewer or shorter alarm periods"
    ]


def traffic_shifting_problems(v: dict, given: set) -> list[str]:
    problems = []
    if v["TestListenerCidr"]:  # whatever the strategy: the review shows it, and a switch to a shifting one deploys it
        try:
            ipaddress.IPv4Network(v["TestListenerCidr"])
        except ValueError:
            network = ipaddress.IPv4Network(v["TestListenerCidr"], strict=False)
            problems.append(f"parameters.TestListenerCidr: {v['TestListenerCidr']} has host bits set (EC2 refuses it); allowed: {network}")
    if v["DeploymentStrategy"] not in TRAFFIC_SHIFTING:
        if v["TestPauseMinutes"]:
            problems.append(
                f"parameters.TestPauseMinutes: {v['TestPauseMinutes']}, but DeploymentStrategy {v['DeploymentStrategy']} has no test "
                "listener to pause at; allowed: 0, or DeploymentStrategy BLUE_GREEN, CANARY or LINEAR"
            )
        return problems
    if not v["TestListenerCidr"]:
        problems.append(
            f"parameters.TestListenerCidr: empty, but DeploymentStrategy {said_value(v, given, 'DeploymentStrategy')} opens a test "
            "listener; allowed: the IPv4 CIDR of the addresses that test a release before it takes traffic (an office or VPN "
            "range), or DeploymentStrategy: ROLLING, which opens none"
        )
    # CloudFormation watches the rollback alarms for RollbackMonitoringMinutes after the service update
    # too (the deployer waits for it: scripts/deploy/waiting.py wait_for_stack). Checked only here:
    # a rolling release waits for nothing else, and RollbackMonitoringMinutes' 180 at most fit alone.
    release, monitoring = release_wait_minutes(v), v["RollbackMonitoringMinutes"]
    total = release + monitoring
    if total > MOST_RELEASE_WAIT_MINUTES:
        # Each key's minutes, the largest share named first: the key to change.
        shifting = SHIFTING_WAIT_INPUT.get(v["DeploymentStrategy"])
        shares = {
            **({shifting: shifting_minutes(v)} if shifting else {}),
            "BakeTimeMinutes": v["BakeTimeMinutes"],
            "TestPauseMinutes": v["TestPauseMinutes"],
            "RollbackMonitoringMinutes": monitoring,
        }
        key = max(shares, key=shares.get)
        steps = f" ({shifting_product(v)})" if v["DeploymentStrategy"] == "LINEAR" else ""  # the minutes' product
        parts = ", ".join(f"{minutes} {name}{steps if name == shifting else ''}" for name, minutes in shares.items())
        problems.append(
            f"parameters.{key}: with {v['DeploymentStrategy']} a release "
            f"waits up to {total} minutes ({parts}); allowed: waits that add up to at most {MOST_RELEASE_WAIT_MINUTES} minutes "
            f"(what the GitHub Actions deploy job's {CI_DEPLOY_JOB_MINUTES} minutes leave after its steps, the migrations and the "
            "deployer's own bounds)"
        )
    return problems


def linear_steps(step_percent: int) -> int:
    """Traffic shifts a LINEAR deployment bakes after: the last one, at 100 %, has no step bake (the
    formula of aws-properties-ecs-service-linearconfiguration.html, cited at templates/common.py MOST_RELEASE_WAIT_MINUTES)."""
    return 100 // step_percent - 1 if 100 % step_percent == 0 else 100 // step_percent


WAIT_INPUTS = ("BakeTimeMinutes", "CanaryBakeTimeMinutes", "LinearStepPercent", "LinearStepBakeTimeMinutes", "TestPauseMinutes")


def release_waits(values: dict) -> dict:
    """The inputs that set how long a release that shifts traffic waits, as numbers, from values
    as CloudFormation takes them (strings)."""
    return {"DeploymentStrategy": values["DeploymentStrategy"]} | {name: int(values[name]) for name in WAIT_INPUTS}


# The input whose bake time a release waits while it moves production traffic; BLUE_GREEN moves it at once.
SHIFTING_WAIT_INPUT = {"CANARY": "CanaryBakeTimeMinutes", "LINEAR": "LinearStepBakeTimeMinutes"}


def shifting_minutes(v: dict) -> int:
    """Minutes a deployment waits while it moves production traffic: the canary's bake time, or the
    linear steps' bake time once a step."""
    name = SHIFTING_WAIT_INPUT.get(v["DeploymentStrategy"])
    if name is None:
        return 0
    return v[name] * (linear_steps(v["LinearStepPercent"]) if v["DeploymentStrategy"] == "LINEAR" else 1)


def shifting_product(v: dict, times: str = "x") -> str:
    """shifting_minutes' factors in words, for a strategy that shifts: the bake time, and for LINEAR its
    steps; times is the sign of a product (the review documents' ×)."""
    minutes = v[SHIFTING_WAIT_INPUT[v["DeploymentStrategy"]]]
    if v["DeploymentStrategy"] == "LINEAR":
        return f"{minutes} {times} {linear_steps(v['LinearStepPercent'])} steps of LinearStepPercent {v['LinearStepPercent']}"
    return f"{minutes}"


def shifting_terms(v: dict) -> str:
    """shifting_minutes' terms in words, as the review documents write them: the input and
    shifting_product with × ("" for a strategy that waits for none)."""
    name = SHIFTING_WAIT_INPUT.get(v["DeploymentStrategy"])
    return f"{name} {shifting_product(v, '×')}" if name else ""


def release_wait_minutes(v: dict) -> int:
    """How long a traffic-shifting release may run on purpose: shifting_minutes, the bake time and,
    at most, the pause for tests."""
    if v["DeploymentStrategy"] not in TRAFFIC_SHIFTING:
        return 0
    return shifting_minutes(v) + v["BakeTimeMinutes"] + v["TestPauseMinutes"]


def as_list(value) -> list:
    """A list input's value, given as a YAML list or as CloudFormation's comma-joined string."""
    return value if isinstance(value, list) else [item.strip() for item in str(value).split(",") if item.strip()]


def to_cfn_string(spec: Input, value) -> str:
    """CloudFormation takes every parameter value as a string; lists comma-joined, each item as the
    checks read it (a string's spaces around its commas left out)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list) or spec.is_list:
        return ",".join(as_list(value))
    return str(value)
