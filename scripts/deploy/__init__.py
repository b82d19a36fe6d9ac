"""Apply the generated layers to AWS through reviewed change sets: `python -m scripts.deploy --help`.

Exit codes: 0 done or nothing to do, 1 failed or refused (diff: differs; drift: drifted), 2 bad
input (diff, drift: any error), 130 interrupted, 141 the output's reader gone (`| head`).

Here: the command line (parse, validate) and main, which holds the environment's lock around the
command (freed in its finally, on a failure and a Ctrl-C too) and turns each failure into its line and
exit code. commands.py has one method per command, deployer.py the Deployer they use (its parts in
reading.py, change_sets.py and waiting.py), guards.py its refusals before it changes anything, text.py
what it prints, aws.py the clients, call counts and error lines, history.py the release history,
lock.py the environment's lock, policies.py relaxing a stack policy for an --allow-replace update
and putting it back (also one a stopped run left relaxed)."""

import templates  # first: its hook makes a Ctrl-C in every import after it one line (templates/__init__.py)

# isort: split
import argparse
import contextlib
import os
import re
import sys
import time
import urllib.parse
from pathlib import Path

from scripts.deploy import guards, zone
from scripts.deploy.aws import (
    API_CALLS,
    AWS_ERRORS,
    CONFIG,
    MAX_ATTEMPTS,
    UNREADABLE,
    SandboxGone,
    boto_clients,
    explain,
    on_this_machine,
    parse_api_calls,
)
from scripts.deploy.commands import (
    ACTING_COMMANDS,
    CHANGING_COMMANDS,
    COMMANDS,
    LOCKING_COMMANDS,
    Commands,
    going_on_after_ctrl_c,
    verify_endpoint,
)
from scripts.deploy.deployer import Deployer
from scripts.deploy.failure import Failure, StoppedWaiting
from scripts.deploy.layer import layer_named_in, load_layer
from scripts.deploy.logs import parse_since
from scripts.deploy.policies import ALLOW_ALL_POLICY
from scripts.deploy.tasks import parse_command
from scripts.deploy.text import as_printed
from templates.errors import (
    ANY_CONTROL_CHARACTER,
    INTERRUPTED,
    READER_GONE,
    Output,
    OutputFailed,
    ReaderGone,
    ToolError,
    ending_interrupted,
    report,
    stops_held,
)
from templates.generation import OUTPUT_DIR, PARAMS_DIR, OutputHeld, output_held
from templates.inputs import IMAGE_TAG, MOST_IMAGE_TAG
from templates.params import (
    SANDBOX_CANNOT_REHEARSE,
    SANDBOX_ENV,
    SANDBOX_PROBLEM,
    ParamsError,
    did_you_mean,
    environment_problem,
    load_for_reading,
    params_files,
    shown,
)
from templates.params import load as load_params

# What tests and bench.py take from here.
__all__ = ["ALLOW_ALL_POLICY", "API_CALLS", "CONFIG", "MAX_ATTEMPTS", "Deployer", "Failure", "main", "parse", "parse_api_calls"]

CONTINUE_ACTIONS = ("CONTINUE", "ROLLBACK")  # ContinueServiceDeployment's actions
SERVICE_COMMANDS = ("rollback", "verify", "task", "logs", "continue", "releases")  # the commands of the service layer alone
TAKES_TAG = ("deploy", "changeset", "diff", "rollback", "task")  # the commands an image tag (TAG=) means something to
# REPAIR=1 makes a change set without rollback triggers, which are set when it is made (a rollback makes one so)
TAKES_REPAIR = ("deploy", "changeset", "rollback")
# ALLOW_REPLACE=1 and ALLOW_TRAFFIC_RESET=1 let a change set run that guards.refuse_before_execute refuses
# otherwise: the commands that execute one. RECREATE=1 makes a failed first create's change set anew.
TAKES_ALLOW = ("deploy", "execute", "rollback")
TAKES_RECREATE = ("deploy", "changeset")
# YES=1 answers a question: the commands that ask before they change something. MAX_WAIT= bounds a wait for a
# stack operation (changeset's too: it waits for a stack to settle, or for a failed create's deletion with RECREATE=1)
# or for a one-off task. Given to another command they meant nothing (make verify MAX_WAIT=1 waited its 10 minutes).
TAKES_YES = ("deploy", "execute", "destroy", "purge", "recover", "rollback", "zone", "unlock", "task", "continue")
TAKES_MAX_WAIT = ("deploy", "changeset", "execute", "destroy", "recover", "rollback", "task")
# ChangeSetName: https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_CreateChangeSet.html
CHANGE_SET_NAME = re.compile(r"[a-zA-Z][-a-zA-Z0-9]{0,127}")
CHANGE_SET_NAME_ALLOWED = "a letter, then letters, digits and hyphens, 128 characters at most"
NEEDS_STACK = ("changeset", "execute", "events")  # execute: unless its change set's name gives the layer
TAKES_NO_STACK = ("unlock", "zone")
# Commands that look at or remove a layer's stack whether or not enabled_layers has it (it may have been deployed
# before it was taken out); drift checks a layer by its stack's name too.
TAKES_ANY_LAYER = ("status", "outputs", "events", "destroy", "purge")


def layers_to_name(args) -> list[str]:
    """The layers a refusal of STACK= offers: those the command can work on in args.env. The sandbox's deploying
    commands do not take a layer it cannot rehearse, so naming one would lead to a second refusal."""
    if args.command in SERVICE_COMMANDS:
        return ["service"]
    if args.env == SANDBOX_ENV and args.command not in (*TAKES_ANY_LAYER, "drift"):
        return [layer for layer in templates.LAYERS if layer not in SANDBOX_CANNOT_REHEARSE]
    return list(templates.LAYERS)


def stack_left_out(args) -> str:
    """What STACK= left out means to the command, for a refusal that names it as a way on ("" where it needs one)."""
    if args.command in SERVICE_COMMANDS:
        return "leave STACK= out for the service layer"
    if args.command == "execute" and args.changeset and (named := layer_named_in(args.changeset, args.env)):
        return f"leave STACK= out for the layer the change set's name gives ({named})"
    if args.command == "recover":
        return "leave STACK= out for the one layer whose update's rollback failed"
    return "" if args.command in NEEDS_STACK else "leave STACK= out for every layer"


class Parser(argparse.ArgumentParser):
    """A command line argparse cannot read is bad input like any other: one line, exit 2."""

    def error(self, message):
        raise Failure(f"error: {message}; the options: python -m scripts.deploy --help, the make variables: make help", 2)


def parse(argv):
    parser = Parser(
        prog="python -m scripts.deploy",
        description="Deploy the generated CloudFormation layers through reviewed change sets.",
        epilog="exit codes: 0 done or no changes, 1 failed or refused (diff: differs; drift: drifted), 2 bad input "
        "(diff, drift: error), 130 interrupted",
    )
    parser.add_argument("command", choices=COMMANDS, help="what to do")
    parser.add_argument("--env", required=True, help="environment: params/<env>.yaml and output/<env>/")
    parser.add_argument("--stack", metavar="LAYER", help=f"one layer ({', '.join(templates.LAYERS)}); default every layer")
    parser.add_argument("--yes", action="store_true", help="execute (or destroy) without asking; needed without a terminal")
    parser.add_argument("--allow-replace", action="store_true", help="allow replacing or removing stateful resources")
    parser.add_argument("--recreate", action="store_true", help="delete a ROLLBACK_COMPLETE stack and create it again")
    parser.add_argument(
        "--allow-traffic-reset",
        action="store_true",
        help="execute a change that puts production traffic back on the primary target group while a release left it on the alternate one",
    )
    parser.add_argument(
        "--repair",
        action="store_true",
        help="a deploy that repairs: without rollback triggers, which would undo it while the release alarms fire (rollback implies it)",
    )
    parser.add_argument(
        "--max-wait",
        metavar="MINUTES",
        help="minutes to wait for one stack operation (default: per layer, 30 to 60), or for a one-off task to stop (default 30)",
    )
    parser.add_argument("--changeset", metavar="NAME", help="the change set `execute` runs")
    parser.add_argument(
        "--image-tag",
        metavar="TAG",
        help="ImageTag for the service layer (default: the running image; for rollback, the release before it; "
        "for a first deploy, the params file)",
    )
    parser.add_argument("--output-dir", type=Path, default=OUTPUT_DIR, help="generated templates (default: the project's output/)")
    parser.add_argument("--params-dir", type=Path, default=PARAMS_DIR, help="params files (default: the project's params/)")
    parser.add_argument(
        "--role-arn",
        default=os.environ.get("CFN_EXECUTION_ROLE_ARN") or None,
        help="service role CloudFormation uses for the stacks (default: $CFN_EXECUTION_ROLE_ARN, else your own permissions)",
    )
    parser.add_argument(
        "--timeout", default=600, help="verify, zone: seconds to keep retrying failing checks or waiting for DNS (default 600)"
    )
    parser.add_argument(
        "--connect-to",
        action="append",
        default=[],
        metavar="HOST:PORT:ADDRESS:PORT",
        help="verify: connect to ADDRESS:PORT for HOST:PORT, like curl --connect-to (for a local rehearsal; "
        "with AWS_ENDPOINT_URL an HTTP check runs only for a HOST:PORT mapped here)",
    )
    parser.add_argument("--ca-bundle", help="verify: CA certificates to trust (default: the system's)")
    parser.add_argument(
        "--action",
        default="CONTINUE",
        help="continue: move a release paused for tests to production traffic (CONTINUE), or roll it back (ROLLBACK)",
    )
    parser.add_argument(
        "--test-listener",
        action="store_true",
        help="verify: check the health-check path and the smoke checks through the load balancer's test listener, which reaches a "
        "release's new tasks before production traffic does (not with DeploymentStrategy ROLLING)",
    )
    parser.add_argument(
        "--cmd", metavar="COMMAND", help='task: the web container\'s command, split like a shell does ("python manage.py migrate")'
    )
    parser.add_argument("--since", default="10m", help="logs: how far back, a number and s, m, h or d (default 10m)")
    parser.add_argument("--follow", action="store_true", help="logs: keep printing new events every 2 s until Ctrl-C (which exits 0)")
    parser.add_argument("--api-calls", action="store_true", help="print the AWS API calls made per stack on stderr")
    args = parser.parse_args(argv)
    refuse_unprintable_values(args)
    return args


# A role name and path as IAM's CreateRole takes them (RoleName [\w+=,.@-]{1,64}; Path / or /.../ of
# printable ASCII): https://docs.aws.amazon.com/IAM/latest/APIReference/API_CreateRole.html
ROLE_ARN = re.compile(r"arn:aws(?:-cn|-us-gov)?:iam::\d{12}:role/(?:[\x21-\x7e]{1,510}/)?[\w+=,.@-]{1,64}", re.ASCII)
# How the messages name a value: as make takes it, else as its option.
NAMED_AS = {
    "env": "ENV",
    "stack": "STACK",
    "image_tag": "TAG",
    "changeset": "CHANGESET",
    "max_wait": "MAX_WAIT",
    "timeout": "TIMEOUT",
    "connect_to": "CONNECT_TO",
    "ca_bundle": "CA_BUNDLE",
    "action": "ACTION",
    "cmd": "CMD",
    "since": "SINCE",
    "role_arn": "CFN_EXECUTION_ROLE_ARN (--role-arn)",
}
# Any real value fits: the longest, an IAM role ARN, is at most 2,048 characters (CreateChangeSet's
# RoleARN: https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_CreateChangeSet.html).
MOST_VALUE_CHARACTERS = 4096
MOST_CMD_CHARACTERS = 8192  # CMD is a command line, which may be longer: a bound of ours, so that a message can quote it


def refuse_unprintable_values(args) -> None:
    """Every value one line of printable text, and of a length a message may quote: a newline in a
    value split the error line that named it, and a 100 KB value became a 100 KB line. (CMD may hold tabs.)"""
    for name, given in vars(args).items():
        for value in given if isinstance(given, list) else [given]:
            if not isinstance(value, str | Path):
                continue
            text, variable = str(value), NAMED_AS.get(name, f"--{name.replace('_', '-')}")
            most = MOST_CMD_CHARACTERS if name == "cmd" else MOST_VALUE_CHARACTERS
            if len(text) > most:
                raise Failure(f"error: {variable}: a value of {len(text)} characters; allowed: at most {most}", 2)
            if ANY_CONTROL_CHARACTER.search(text.replace("\t", "") if name == "cmd" else text):
                if value in (OUTPUT_DIR, PARAMS_DIR):  # not given: the checkout's own path, which "--output-dir=" named
                    raise Failure(
                        f"error: this checkout's directory {shown(str(templates.ROOT))}: a control character, one that reorders a line or "
                        "shows as nothing, or a byte that is not UTF-8; allowed: a path of one line of printable text (move the checkout to one)",
                        2,
                    )
                raise Failure(
                    f"error: {variable}={shown(text)}: a control character, one that reorders a line or shows as nothing, or a byte that is not UTF-8; allowed: one line of printable text",
                    2,
                )


def whole_number(given, variable, low, high, allowed):
    """given (a command-line string, or None: not given) as an int from low to high."""
    if given is None:
        return None
    number = int(given) if re.fullmatch(r"-?[0-9]{1,9}", str(given)) else None
    if number is None or not low <= number <= high:
        raise Failure(f"error: {variable}={given}: allowed: {allowed}", 2)
    return number


# Commands that only read what is deployed, or free a dead run's lock: they run while the params file
# has problems elsewhere than its region (said first), so that a half-done edit hides nothing (in an
# incident too: the service's logs and releases are what one reads first).
READS_DESPITE_PARAMS_PROBLEMS = ("status", "outputs", "events", "unlock", "logs", "releases")


def refuse_another_environments(change_set, env, params_dir) -> None:
    """A change set this tool named for another environment's stack (<project>-<env>-<layer>-...): ENV= left
    out (the sandbox, then) or another one. Told, rather than "needs STACK=" and then "no change set on" this
    environment's stack."""
    named = [
        (other, layer)
        for other in (p.stem for p in params_files(params_dir))
        if other != env and (layer := layer_named_in(change_set, other))
    ]
    if named:
        other, layer = max(named, key=lambda found: len(templates.stack_name(*found)))
        raise Failure(
            f"error: change set {change_set} is one of {templates.stack_name(other, layer)}, of ENV={other}, not {env}: "
            f"make execute ENV={other} STACK={layer} CHANGESET={change_set}",
            2,
        )


def validate(args):
    """(environment, layers) or Failure(code 2); reads only local files."""
    settle_stack_and_action(args)
    unknown = environment_problem(args.env, args.params_dir, from_deployer=True)
    if unknown:
        raise Failure(f"error: {unknown}", 2)
    params_file = args.params_dir / f"{args.env}.yaml"
    endpoint = emulator_endpoint()
    try:
        environment = (load_for_reading if args.command in READS_DESPITE_PARAMS_PROBLEMS else load_params)(params_file)
    except ParamsError as error:
        raise Failure("\n".join(f"error: {line}" for line in error.problems), 2) from None
    enabled = environment.layers
    # A layer taken out of enabled_layers may still be deployed: it can be looked at and destroyed.
    everywhere = args.command in TAKES_ANY_LAYER
    if args.stack and args.stack not in enabled and not everywhere and args.command != "drift":  # drift: checks it by name
        if args.env == SANDBOX_ENV and args.stack in SANDBOX_CANNOT_REHEARSE:
            raise Failure(f"error: the sandbox cannot rehearse the {args.stack} layer: {SANDBOX_CANNOT_REHEARSE[args.stack]}", 2)
        # Its stack may still be deployed (taken out of enabled_layers): the way to remove it too, as make status says it
        raise Failure(
            f"error: layer {args.stack!r} is not enabled for {args.env}: add it to enabled_layers in {templates.relative(params_file)}"
            f"; a stack of it deployed before is left as it is (make status ENV={args.env} shows it; make destroy STACK={args.stack} "
            f"ENV={args.env} removes it)",
            2,
        )
    names = [args.stack] if args.stack else templates.layer_order() if everywhere else enabled
    refuse_values_the_command_does_not_take(args, enabled, endpoint)
    needs_files = args.command in ("deploy", "changeset", "execute", "diff", "rollback")
    try:  # the files of one make templates, not some of the one before and some of the next; held only by those that read them
        with output_held(args.output_dir) if needs_files else contextlib.nullcontext():
            layers = [load_layer(args.env, n, args.output_dir) if needs_files else n for n in names]
    except OutputHeld as error:
        raise Failure(f"error: {error}", 2) from None
    if args.command in ("deploy", "changeset"):
        guards.refuse_an_empty_zone(templates.relative(params_file), args.env, layers)
    if args.env == SANDBOX_ENV:  # last: what the command was given is said first, as on AWS before its credentials
        refuse_all_but_a_usable_sandbox(args.command, endpoint)
    return environment, layers


def settle_stack_and_action(args) -> None:
    """STACK= as the command takes it (the service commands', a change set's own layer) and ACTION= in capitals, or Failure(2)."""
    if args.command in TAKES_NO_STACK and args.stack is not None:
        what = (
            f"unlock frees the lock of {args.env}, one for every layer"
            if args.command == "unlock"
            else f"zone works on {args.env}'s domain, not on a layer"
        )
        raise Failure(f"error: {what}: leave out STACK= (--stack)", 2)
    if args.command in SERVICE_COMMANDS and args.stack is None:
        args.stack = "service"
    if args.command == "execute" and args.changeset and not layer_named_in(args.changeset, args.env):
        refuse_another_environments(args.changeset, args.env, args.params_dir)
    if args.command == "execute" and args.stack is None and args.changeset:
        args.stack = layer_named_in(args.changeset, args.env)  # STACK= left out: the layer the name says, if it is one of ours
    if args.action.upper() not in CONTINUE_ACTIONS:
        raise Failure(f"error: ACTION={args.action}: allowed: {' or '.join(CONTINUE_ACTIONS)}", 2)
    args.action = args.action.upper()
    left_out = stack_left_out(args)
    if args.stack == "":  # STACK=$LAYER with LAYER unset: passed on and refused, never read as left out
        raise Failure(
            f"error: STACK= is empty: name a layer ({', '.join(layers_to_name(args))}){f', or {left_out}' if left_out else ''}", 2
        )
    if args.command in SERVICE_COMMANDS and args.stack != "service":  # any other name, a layer's or not: the one way on
        raise Failure(f"error: {args.command} works on the service layer: STACK=service (--stack service)", 2)
    if args.stack and args.stack not in templates.LAYERS:
        named = next((layer for layer in templates.LAYERS if args.stack == templates.stack_name(args.env, layer)), None)
        takes = layers_to_name(args)
        hint = f" (STACK takes the layer: STACK={named})" if named else did_you_mean(args.stack, takes)
        if not named and len(args.stack.replace(",", " ").split()) > 1:  # STACK=alb,service or STACK="alb service"
            hint = f" (STACK takes one layer: a run per layer{f', or {left_out}' if left_out else ''})"
        raise Failure(f"error: unknown layer {args.stack!r}{hint}; layers: {', '.join(takes)}", 2)


def emulator_endpoint() -> str | None:
    """AWS_ENDPOINT_URL, where it names an emulator (README, Credentials), once it is a usable URL; else Failure(2)."""
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    if endpoint == "":  # botocore reads it as unset: AWS_ENDPOINT_URL=$EMU with EMU unset went to AWS
        raise Failure(
            "error: AWS_ENDPOINT_URL is set but empty (a variable that was not set, expanded?): give the emulator's URL, "
            "or unset AWS_ENDPOINT_URL to reach AWS",
            2,
        )
    if endpoint:
        # Here, not at the top: templates/ must be the first import, for its Ctrl-C hook (templates/__init__.py).
        from botocore.utils import is_valid_endpoint_url, is_valid_ipv6_endpoint_url

        try:  # botocore's own test of a client's endpoint (it raises ValueError at the first client), and a real port
            parts = urllib.parse.urlsplit(endpoint)
            usable = parts.scheme in ("http", "https") and parts.port != 0  # urlsplit refuses a port over 65535
            usable = usable and bool(is_valid_endpoint_url(endpoint) or is_valid_ipv6_endpoint_url(endpoint))
        except ValueError:
            usable = False
        if not usable:
            raise Failure(f"error: AWS_ENDPOINT_URL={endpoint!r} is not an http(s)://HOST[:PORT] URL (ports 1 to 65535)", 2)
    return endpoint


def layer_with_rollback_triggers() -> str:
    """STACK='s value in a command a message prints for the layer with rollback triggers: the one, or a placeholder."""
    layers = sorted(templates.ROLLBACK_TRIGGERS)
    return layers[0] if len(layers) == 1 else "<layer>"


def refuse_values_the_command_does_not_take(args, enabled, endpoint) -> None:
    """Every value the command line gave checked against the command and the layer (Failure(2)); those it takes read
    into args (MAX_WAIT, TIMEOUT, verify's endpoint, task's command, logs' SINCE)."""
    if args.changeset is not None and args.command != "execute":
        raise Failure(f"error: CHANGESET= (--changeset) is for make execute; {args.command} takes none: leave it out", 2)
    if args.repair and args.command not in TAKES_REPAIR:
        raise Failure(
            f"error: REPAIR=1 (--repair) is for make deploy and make changeset (and make rollback, which implies it), whose change sets it makes without rollback triggers; "
            f"{args.command} takes none: leave it out (for a reviewed change set without them: make changeset "
            f"STACK={layer_with_rollback_triggers()} ENV={args.env} REPAIR=1)",
            2,
        )
    for given, switch, takes in (
        (args.allow_replace, "ALLOW_REPLACE=1 (--allow-replace)", TAKES_ALLOW),
        (args.allow_traffic_reset, "ALLOW_TRAFFIC_RESET=1 (--allow-traffic-reset)", TAKES_ALLOW),
        (args.recreate, "RECREATE=1 (--recreate)", TAKES_RECREATE),
        (args.yes, "YES=1 (--yes)", TAKES_YES),
        (args.max_wait is not None, "MAX_WAIT= (--max-wait)", TAKES_MAX_WAIT),
    ):
        if given and args.command not in takes:  # accepted and ignored, it let make status ALLOW_REPLACE=1 look like it meant something
            bound = " (its own bound is TIMEOUT=<seconds>)" if takes is TAKES_MAX_WAIT and args.command in ("verify", "zone") else ""
            raise Failure(f"error: {switch} is for make {', '.join(takes)}; {args.command} takes none: leave it out{bound}", 2)
    if args.image_tag is not None and args.command not in TAKES_TAG:
        raise Failure(f"error: TAG= (--image-tag) is for make {', '.join(TAKES_TAG)}; {args.command} takes none: leave it out", 2)
    args.max_wait = whole_number(args.max_wait, "MAX_WAIT", 1, 720, "1 to 720 minutes")
    # zone's wait for a delegation, which can take 48 hours (commands.py zone), is the longest that makes sense
    args.timeout = whole_number(args.timeout, "TIMEOUT", 0, 172_800, "0 to 172800 seconds (48 hours)")
    # before STACK=, which a change set this tool named gives itself: "needs STACK=" sent a newcomer the wrong way
    if args.command == "execute" and not (args.changeset and CHANGE_SET_NAME.fullmatch(args.changeset)):
        got = f"; got {args.changeset!r}" if args.changeset is not None else ""
        allowed = f", which is no change set name; allowed: {CHANGE_SET_NAME_ALLOWED}" if args.changeset else ""
        raise Failure(f"error: execute needs CHANGESET=<name> (--changeset), the name `make changeset` printed{got}{allowed}", 2)
    if args.command in NEEDS_STACK and not args.stack:
        # execute's: a change set whose name does not start with one of the environment's stack names (make changeset's do)
        unnamed = (
            f" for change set {args.changeset!r}, whose name names no layer of {args.env} (make changeset's start with the layer's stack, "
            f"{templates.stack_name(args.env, enabled[0])}-...)"
            if args.command == "execute"
            else ""
        )
        # events reads a stack taken out of enabled_layers too: every layer named, as its STACK= refusals do
        offered = layers_to_name(args) if args.command in TAKES_ANY_LAYER else enabled
        raise Failure(f"error: {args.command} needs STACK=<layer> (--stack){unnamed}; layers: {', '.join(offered)}", 2)
    emulated = bool(endpoint) or args.env == SANDBOX_ENV  # the sandbox's, whether it runs or not
    if args.command == "verify":  # an emulator's addresses are this machine's only
        args.verify_endpoint = verify_endpoint(args.connect_to, args.ca_bundle, loopback_only=emulated)
    if args.command == "task":
        args.task_command = parse_command(args.cmd)
        if emulated:
            # moto keeps a task it is asked to run RUNNING for ever (it runs no containers), and its
            # RunTask fails on a Fargate task definition that sizes memory for the task only, which
            # AWS allows: https://docs.aws.amazon.com/AmazonECS/latest/developerguide/fargate-task-size-best-practice.html
            emulator = f"AWS_ENDPOINT_URL={endpoint}" if endpoint else f"ENV={SANDBOX_ENV}"
            raise Failure(
                f"error: {emulator}: the emulator runs no containers, so a one-off task would never run nor stop; make task runs in AWS",
                2,
            )
    if args.command == "logs":
        args.since_seconds = parse_since(args.since)
    if args.role_arn is not None and not ROLE_ARN.fullmatch(args.role_arn):
        raise Failure(
            f"error: CFN_EXECUTION_ROLE_ARN (--role-arn) {shown(args.role_arn)}: not an IAM role ARN; allowed: "
            "arn:aws:iam::<12-digit account>:role/<name>, with a path before the name if the role has one",
            2,
        )
    # Given empty (TAG=$T with T unset), it is refused rather than read as left out, which makes a
    # rollback go back by the history and a deploy keep the running image: not what was asked.
    if args.image_tag is not None and not re.fullmatch(IMAGE_TAG, args.image_tag):
        raise Failure(
            f"error: TAG={args.image_tag}: not a Docker image tag (letters, digits, _ . -, not starting with . or -, at most {MOST_IMAGE_TAG})"
            + ("; to leave it out, give no TAG=" if not args.image_tag else ""),
            2,
        )
    if args.image_tag and args.stack and args.stack != "service":
        raise Failure(f"error: TAG= (--image-tag) sets the service layer's image; STACK={args.stack} has none", 2)
    if args.repair and args.stack and args.stack not in templates.ROLLBACK_TRIGGERS:
        raise Failure(
            f"error: REPAIR=1 (--repair) makes a change set without rollback triggers; STACK={args.stack} has none: leave it out "
            f"(the layers with them: {', '.join(sorted(templates.ROLLBACK_TRIGGERS))})",
            2,
        )


def refuse_all_but_a_usable_sandbox(command, endpoint) -> None:
    """The sandbox environment runs on the local sandbox alone: a reason make found it unusable (SANDBOX_PROBLEM),
    or an endpoint that is none or not on this machine, is refused."""
    problem = os.environ.get(SANDBOX_PROBLEM)
    if problem:
        raise Failure("\n".join(ToolError(problem).lines()), 2)  # each line "error: ", a newline alone ending one
    if not endpoint:
        raise Failure(
            f"error: ENV={SANDBOX_ENV} deploys only to the local sandbox, and AWS_ENDPOINT_URL is not set: run it through make "
            f"(make {command} ENV=sandbox points it at the running sandbox; make sandbox starts one), never with AWS credentials",
            2,
        )
    if not on_this_machine(endpoint):
        raise Failure(
            f"error: ENV={SANDBOX_ENV} deploys only to the local sandbox, and AWS_ENDPOINT_URL={endpoint} is no loopback address: "
            f"run it through make (make {command} ENV=sandbox points it at the running sandbox)",
            2,
        )


def stopped_once_done(command, commands) -> Failure:
    """A stop that came once the command had finished (as its lock was freed, or its connections closed): said so, and
    what the command did where running it again would not be a no-op (Commands.done: a rollback's would roll back
    once more), where a bare "interrupted" was taken for a command to run again."""
    said = f"{INTERRUPTED} once make {command} had finished (above)"
    return Failure(f"{said}: {commands.done}" if commands and commands.done else said, 130)


TERMINAL = "/dev/tty"  # the process's controlling terminal, wherever its output goes


def can_ask(out) -> bool:
    """A terminal to read the answer from (stdin: None when the tool started with it closed, `<&-`) and to show the
    question on: stdout, or else the terminal itself (asking_on_a_terminal)."""
    return sys.stdin is not None and sys.stdin.isatty() and (out.isatty() or terminal_opens())


def terminal_opens() -> bool:
    try:
        with open(TERMINAL, "w"):
            return True
    except OSError:  # no controlling terminal (setsid, a service)
        return False


def asking_on_a_terminal(out):
    """input(), its question written to the terminal itself where stdout is no terminal, as ssh and sudo ask:
    `make destroy > destroy.log` wrote the question into the file, and the run waited unseen for its answer, holding
    the environment's lock. The output then gets the question with its answer, as a YES=1 run prints it (the log says
    what was answered), and one whose reader left while it was answered refuses it (Deployer.why_not refuses a
    question where it had none before: Output.reader_gone)."""
    if out.isatty():
        return input

    def ask(question: str) -> str:
        try:
            with open(TERMINAL, "w", encoding="utf-8", errors="replace") as terminal:
                terminal.write(question)
                terminal.flush()
                try:
                    answer = input()
                except KeyboardInterrupt as interrupt:  # the ^C ends the question's line there, not in the output
                    terminal.write("\n")
                    interrupt.line_ended = True
                    raise
        except OSError:  # the terminal gone since can_ask found it: no answer, nothing done
            raise EOFError from None
        print(as_printed(f"{question}{answer}"), file=out, flush=True)
        if getattr(out, "reader_gone", False):  # templates.errors.Output: the reader left while it was answered
            raise BrokenPipeError
        return answer

    return ask


def main(
    argv=None,
    *,
    clients=None,
    sleep=time.sleep,
    ask=None,
    interactive=None,
    now=None,
    revision=None,
    out=None,
    err=None,
    clock=time.monotonic,
    resolver=None,
    locking=True,
    reuse_clients=None,
) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    try:
        args = parse(argv)
    except Failure as failure:
        return report(failure, err)
    # A closed stderr (`2>&1 | head`) must not stop a run either: its lines (retries, the final error) are dropped.
    out, err = Output(out, goes_on=args.command in CHANGING_COMMANDS), Output(err, goes_on=True)
    deployer, commands, failure, locked, code = None, None, None, False, None
    try:
        environment, layers = validate(args)
        for line in ParamsError(list(environment.problems)).problems if environment.problems else []:
            print(f"warning: {line}", file=err)
        if environment.problems:
            does = "frees the lock" if args.command == "unlock" else "reads what is deployed"
            print(
                f"note: {args.command} {does} in {environment.region} all the same; deploys are refused until "
                f"{templates.relative(environment.path)} is fixed (make templates lists its problems)",
                file=err,
            )
        endpoint = os.environ.get("AWS_ENDPOINT_URL")  # checked by validate()
        if resolver is None and not endpoint:
            resolver = zone.public_name_servers  # an emulator's zones are unknown to public DNS
        deployer = Deployer(
            # this module's CONFIG: tests replace it
            # given, the tests' clients: a dict, which is empty (and false) until a test asks one of them
            clients
            if clients is not None
            else boto_clients(environment.region, err, CONFIG, endpoint, sandbox=args.env == SANDBOX_ENV, reuse=reuse_clients),
            args.env,
            out=out,
            err=err,
            sleep=sleep,
            now=now,
            revision=revision,
            output_dir=args.output_dir,
            params_file=templates.relative(environment.path),
            ask=ask or asking_on_a_terminal(out),
            interactive=can_ask(out) if interactive is None else interactive,
            yes=args.yes,
            role_arn=args.role_arn,
            clock=clock,
            repair=args.repair,
            allow_traffic_reset=args.allow_traffic_reset,
            max_wait=args.max_wait,
            resolver=resolver,
            changes=args.command in ACTING_COMMANDS,
            enabled_layers=environment.layers,
            on_aws=not endpoint,  # AWS_ENDPOINT_URL: an emulator (the sandbox), or another endpoint the commands take for one
            image_tag=args.image_tag,
        )
        locked, stopped_by, code = locking and args.command in LOCKING_COMMANDS, None, None
        commands = Commands(deployer, args, layers, environment)
        try:
            if locked:
                deployer.lock.take(args.command, args.stack)
                deployer.relaxed_marks.read()
            code = COMMANDS[args.command](commands)
        except BaseException as error:
            stopped_by = error
            raise
        finally:  # also on a failure and on Ctrl-C: the next run must not find the lock taken
            if locked:
                stopping = isinstance(stopped_by, KeyboardInterrupt) or (isinstance(stopped_by, Failure) and stopped_by.code == 130)
                try:
                    deployer.lock.release(stopping)
                except KeyboardInterrupt:
                    # Stopped (again) while the lock was freed, which said so: what stopped the run, if anything,
                    # is what it says, such as a change set that may have started; a command that had finished
                    # says so (stopped_once_done).
                    if stopped_by is None:
                        raise stopped_once_done(args.command, commands) from None
        if locked and code == 0 and deployer.lock.value is not None:
            # It said why (a warning); the next run that takes the lock is refused: in CI, a step later, had this one passed.
            raise Failure(
                f"error: make {args.command} finished, but {deployer.lock.name} may still be held (above): "
                f"runs of {args.env} that take it are refused until it is freed: make unlock ENV={args.env}"
            )
    except ToolError as error:  # a Failure, OutputFailed, or what the project's own code raises (generation's OutputHeld ...)
        failure = error if isinstance(error, (Failure, OutputFailed)) else Failure("\n".join(error.lines()), error.code)
        going_on = going_on_after_ctrl_c(args.command, deployer) if isinstance(error, StoppedWaiting) else None
        if going_on:  # the run's own way on, after how to follow the operation it left running (a rerun waits for it)
            failure = Failure(f"{error}\n  {going_on}", 130)
    except KeyboardInterrupt:
        going_on = going_on_after_ctrl_c(args.command, deployer)
        failure = Failure(f"{INTERRUPTED}; {going_on}" if going_on else INTERRUPTED, 130)
    except ReaderGone:
        return READER_GONE
    except (*AWS_ERRORS, SandboxGone, *UNREADABLE) as error:
        failure = Failure(explain(error, args.env, args.command))
    finally:
        if deployer:
            try:
                with stops_held():  # a stop signal inside urllib3's pool clean-up was a traceback ("Exception ignored")
                    deployer.close()
            except KeyboardInterrupt:
                failure = failure or (stopped_once_done(args.command, commands) if code is not None else Failure(INTERRUPTED, 130))
    if locked and isinstance(failure, Failure) and (code != 0 or failure.code == 130) and deployer.lock.said_held:
        # The warning that said so came before the run's last lines, whose way on (the same command again, make destroy ...)
        # the lock then refuses: said after them. (A command that succeeded says it above, as its error.)
        failure = Failure(
            f"{failure}\n  first: {deployer.lock.name} may still be held by this run (the warning above); make unlock ENV={args.env}",
            failure.code,
        )
    stdout_lost = out.failure and not isinstance(failure, OutputFailed)  # a command that changes things went on to its end
    if stdout_lost:
        report(OutputFailed(out.failure), err)
    if failure:
        if failure.code == 130:
            ending_interrupted()
        code = report(failure, err)
        if args.command in ("diff", "drift") and code != 130:
            code = 2  # their 1 means "differs" and "drifted"
    elif stdout_lost:
        code = code or OutputFailed.code
    if args.api_calls and deployer:
        print(deployer.calls.line(), file=err)
    return code
