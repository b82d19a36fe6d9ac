"""A layer as the deployer takes it: its template and values, read from the files `make templates`
writes to output/ (the template, and the environment's template configuration), each checked before
anything is sent to AWS; and the git revision change-set names carry (git_revision, revision_named_in)."""

import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import templates
from scripts.deploy.failure import Failure
from templates import ROOT
from templates.errors import RefusedFile, printable, read_regular_file
from templates.generation import MOST_OWN_FILE_BYTES, render

# TemplateBody: "a minimum length of 1 byte and a maximum length of 51,200 bytes".
# https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_CreateChangeSet.html
MAX_TEMPLATE_BODY = 51_200


@dataclass(frozen=True)
class Layer:
    env: str
    name: str
    stack: str
    template: str  # the body sent: output/<layer>.json's text where it fits (body())
    declared: frozenset  # the template's parameter names
    parameters: dict  # output/<env>/<layer>.json "Parameters", every value known before deploy
    tags: dict
    policy: dict | None
    conditions: dict  # logical id -> its Condition in the template (the resources it may not create)
    source: str  # the template's file, as messages name it (output/<layer>.json, or another --output-dir's)
    configuration: str  # where its parameters, tags and policy come from, as messages name it
    kept_when_replaced: frozenset = frozenset()  # logical ids with UpdateReplacePolicy Retain
    custom_named: frozenset = frozenset()  # logical ids the template gives a custom name (templates.CUSTOM_NAMES)


def read_template(path: Path) -> dict:
    """A layer's template in output/, read with the shape the deployer reads (template_problem), or a Failure naming it."""
    template = read_output_file(path)
    problem = template_problem(template)
    if problem:
        shown = templates.relative(path)
        raise Failure(f"error: {shown}: not a layer template `make templates` writes ({problem}); run `make templates`", 2)
    return template


def load_layer(env, name, output_dir: Path) -> Layer:
    files = [output_dir / f"{name}.json", output_dir / env / f"{name}.json"]
    template, config = read_template(files[0]), read_output_file(files[1])
    shown = [templates.relative(path) for path in files]
    problem = configuration_problem(config, frozenset(template.get("Parameters", {})))
    if problem:
        raise Failure(f"error: {shown[1]}: not a configuration `make templates` writes ({problem}); run `make templates`", 2)
    source, configuration = (str(templates.relative(path.resolve())) for path in files)  # output/'s, or another --output-dir's
    return layer_of(
        env, name, template, config.get("Parameters", {}), config.get("Tags", {}), config.get("StackPolicy"), source, configuration
    )


def compact(template: dict) -> str:
    """A template as two are compared: the smallest JSON of it, keys sorted."""
    return json.dumps(template, separators=(",", ":"), sort_keys=True)


def body(template: dict) -> str:
    """A template's body as sent, and as the console shows it (GetTemplate's Original stage: "the user-submitted
    template", https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_GetTemplate.html):
    output/<layer>.json's text, which ops read as they read the file, where it fits the 51,200 bytes CloudFormation
    takes inline; else one element a line without indenting (the ci layer's, whose indented text is over); else
    compact. A body that differs in its spaces alone changes nothing: CloudFormation compares what it means (a
    change set of it "didn't contain changes"; no AWS documentation page says so: AWS's own coverage roadmap does,
    https://github.com/aws-cloudformation/cloudformation-coverage-roadmap/issues/2027, and moto behaves so)."""
    for text in (render(template), json.dumps(template, indent=0, sort_keys=True)):
        if len(text.encode()) <= MAX_TEMPLATE_BODY:
            return text
    return compact(template)


def layer_of(env, name, template: dict, parameters: dict, tags: dict, policy: dict | None, source: str, configuration: str) -> Layer:
    """The layer a template (read by template_problem) and its values make; source names the template in
    messages, configuration where the values come from."""
    sent = body(template)
    if len(sent.encode()) > MAX_TEMPLATE_BODY:
        raise Failure(
            f"error: {source}: {len(sent.encode())} bytes even compact, over the {MAX_TEMPLATE_BODY} CloudFormation takes inline", 2
        )
    resources = template.get("Resources", {})
    return Layer(
        env,
        name,
        templates.stack_name(env, name),
        sent,
        frozenset(template.get("Parameters", {})),
        parameters,
        tags,
        policy,
        {logical_id: r["Condition"] for logical_id, r in resources.items() if "Condition" in r},
        kept_when_replaced=frozenset(logical_id for logical_id, r in resources.items() if r.get("UpdateReplacePolicy") == "Retain"),
        custom_named=frozenset(
            logical_id for logical_id, r in resources.items() if templates.CUSTOM_NAMES.get(r["Type"]) in r.get("Properties", {})
        ),
        source=source,
        configuration=configuration,
    )


def read_output_file(path: Path):
    """A generated file's JSON: a FIFO, a device or a huge file in --output-dir is refused, not read."""
    shown = templates.relative(path)
    try:
        return json.loads(read_regular_file(path, MOST_OWN_FILE_BYTES, "a generated file"))
    except FileNotFoundError:
        raise Failure(f"error: {shown}: missing; run `make templates` (generates output/ from params/)", 2) from None
    except RefusedFile as refused:
        raise Failure(f"error: {shown}: {refused}; run `make templates`", 2) from None
    except RecursionError:  # nested past what json parses, in a file well under the size limit
        raise Failure(f"error: {shown}: unreadable (nested too deep for JSON); run `make templates`", 2) from None
    except (OSError, ValueError) as error:  # UnicodeDecodeError and json's errors are ValueErrors
        raise Failure(f"error: {shown}: unreadable ({getattr(error, 'strerror', None) or error}); run `make templates`", 2) from None


def template_problem(template) -> str | None:
    """What makes a file no layer template the deployer can read, or None: the parts it reads have
    the types CloudFormation's template anatomy gives them."""
    if not isinstance(template, dict) or not isinstance(template.get("Resources"), dict) or not template["Resources"]:
        return "no object with Resources"
    for name, resource in template["Resources"].items():
        if not isinstance(resource, dict) or not isinstance(resource.get("Type"), str):
            return f"Resources.{printable(str(name), one_line=True)[:60]}: no object with a Type"
        if not isinstance(resource.get("Properties", {}), dict) or not all(
            isinstance(resource.get(key, ""), str) for key in ("Condition", "DeletionPolicy", "UpdateReplacePolicy")
        ):
            return f"Resources.{printable(str(name), one_line=True)[:60]}: Properties not an object, or a policy or Condition not a name"
    for section in ("Parameters", "Conditions", "Outputs", "Metadata"):
        if not isinstance(template.get(section, {}), dict):
            return f"{section}: not an object"
    if not all(isinstance(entry, dict) for entry in (*template.get("Parameters", {}).values(), *template.get("Outputs", {}).values())):
        return "a parameter or an output that is no object"
    if not all("Value" in output for output in template.get("Outputs", {}).values()):
        return "an output without a Value"
    return None


def configuration_problem(config, declared: frozenset) -> str | None:
    """What makes a file no template configuration of a template declaring `declared`, or None."""
    if not isinstance(config, dict) or set(config) - {"Parameters", "Tags", "StackPolicy"}:
        return "an object of Parameters, Tags and StackPolicy"
    for key in ("Parameters", "Tags"):
        values = config.get(key, {})
        if not isinstance(values, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in values.items()):
            return f"{key}: not an object of strings"
    unknown = sorted(set(config.get("Parameters", {})) - declared)
    if unknown:
        return f"Parameters: {', '.join(printable(name, one_line=True) for name in unknown[:5])} not declared by the template"
    if not isinstance(config.get("StackPolicy", {}), dict):
        return "StackPolicy: not an object"
    return None


# What git_revision gives: a commit's short hash, with -dirty where the files deployed are not the commit's.
REVISION = r"(?:[0-9a-f]{4,40}|nogit)(?:-dirty)?"


def git_revision(output_dir: Path, root: Path = ROOT) -> str:
    """What change-set names and the release history call the deployed files: HEAD's short hash,
    with "-dirty" unless output_dir (what the deploy reads) is what HEAD holds: a file edited, new
    or git-ignored there, a directory outside the repository, or a status git did not give in time;
    "nogit" without git or a repository."""

    def git(*argv):
        return subprocess.run(["git", *argv], cwd=root, capture_output=True, text=True, timeout=10)

    try:
        # at most 40 hex digits (layer.REVISION): --short honours core.abbrev, and a SHA-256 repository's full hash,
        # 64, would make a change set name past CreateChangeSet's 128 characters
        head = git("rev-parse", "--short", "HEAD").stdout.strip()[:40]
    except (OSError, subprocess.SubprocessError):
        return "nogit"
    if not head:
        return "nogit"
    try:
        status = git("status", "--porcelain", "--ignored=matching", "--untracked-files=all", "--", str(Path(output_dir).resolve()))
        clean = status.returncode == 0 and not status.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        clean = False
    return head if clean else f"{head}-dirty"


def revision_named_in(change_set_name, stack) -> str:
    """The git revision a change set this tool named was made at (<stack>-<time>-<revision>, Deployer.create_change_set):
    what it deploys, whatever output/ holds when it is executed; "unknown" for one named otherwise (by hand). The time is
    to the millisecond, 17 digits; to the second, 14, in the names of a deployer before 4 December 2026, whose change
    sets an upgrade may find left for review."""
    made = re.fullmatch(rf"{re.escape(stack)}-\d{{14}}(?:\d{{3}})?-({REVISION})(?:-settle)?", change_set_name)
    return made.group(1) if made else "unknown"


def layer_named_in(change_set_name, env) -> str | None:
    """The layer whose stack name starts a change set's name, as this tool names them (<stack>-<time>-<revision>): the
    longest such stack name's, so that a layer whose stack name begins another's does not take that one's change sets."""
    named = [layer for layer in templates.LAYERS if change_set_name.startswith(f"{templates.stack_name(env, layer)}-")]
    return max(named, key=lambda layer: len(templates.stack_name(env, layer)), default=None)
