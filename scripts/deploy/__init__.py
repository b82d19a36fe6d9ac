"""Apply the generated layers to AWS through reviewed change sets: `python -m scripts.deploy --help`.

Exit codes: 0 done or nothing to do, 1 failed or refused (diff: differs), 2 bad input (diff: any
error), 130 interrupted."""

import argparse
import os
import re
import sys
import time
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError
from botocore.parsers import ResponseParserError

import templates
from scripts import purge, verify, zone
from scripts.deploy import text
from scripts.deploy.aws import API_CALLS, CONFIG, MAX_ATTEMPTS, boto_clients, explain, parse_api_calls
from scripts.deploy.deployer import ALLOW_ALL_POLICY, Deployer, load_layer
from scripts.deploy.failure import Failure
from templates.inputs import IMAGE_TAG
from templates.params import ParamsError
from templates.params import load as load_params

# What tests, bench.py and scripts/purge.py take from here.
__all__ = ["ALLOW_ALL_POLICY", "API_CALLS", "CONFIG", "MAX_ATTEMPTS", "Deployer", "Failure", "main", "parse", "parse_api_calls"]

CHANGE_SET_NAME = re.compile(r"[a-zA-Z][-a-zA-Z0-9]{0,127}")
COMMANDS = (
    "deploy",
    "changeset",
    "execute",
    "status",
    "outputs",
    "events",
    "diff",
    "destroy",
    "recover",
    "rollback",
    "verify",
    "zone",
    "unlock",
    "purge",
)
# Commands that change an environment hold its lock (see Deployer.lock) while they run.
LOCKING_COMMANDS = ("deploy", "changeset", "execute", "destroy", "recover", "rollback", "purge")


def parse(argv):
    parser = argparse.ArgumentParser(
        prog="python -m scripts.deploy",
        description="Deploy the generated CloudFormation layers through reviewed change sets.",
        epilog="exit codes: 0 done or no changes, 1 failed or refused (diff: differs), 2 bad input (diff: error), 130 interrupted",
    )
    parser.add_argument("command", choices=COMMANDS, help="what to do")
    parser.add_argument("--env", required=True, help="environment: params/<env>.yaml and output/<env>/")
    parser.add_argument("--stack", metavar="LAYER", help=f"one layer ({', '.join(templates.LAYERS)}); default every layer")
    parser.add_argument("--yes", action="store_true", help="execute (or destroy) without asking; needed without a terminal")
    parser.add_argument("--allow-replace", action="store_true", help="allow replacing or removing stateful resources")
    parser.add_argument("--recreate", action="store_true", help="delete a ROLLBACK_COMPLETE stack and create it again")
    parser.add_argument(
        "--repair",
        action="store_true",
        help="a deploy that repairs: without rollback triggers, which would undo it while the release alarms fire (rollback implies it)",
    )
    parser.add_argument(
        "--max-wait", type=int, metavar="MINUTES", help="minutes to wait for one stack operation (default: per layer, 30 to 60)"
    )
    parser.add_argument("--changeset", metavar="NAME", help="the change set `execute` runs")
    parser.add_argument("--image-tag", metavar="TAG", help="ImageTag for the service layer (default: the params file)")
    parser.add_argument("--output-dir", type=Path, default=Path("output"), help="generated templates (default: output)")
    parser.add_argument("--params-dir", type=Path, default=Path("params"), help="params files (default: params)")
    parser.add_argument(
        "--role-arn",
        default=os.environ.get("CFN_EXECUTION_ROLE_ARN") or None,
        help="service role CloudFormation uses for the stacks (default: $CFN_EXECUTION_ROLE_ARN, else your own permissions)",
    )
    parser.add_argument(
        "--timeout", type=int, default=600, help="verify, zone: seconds to keep retrying failing checks or waiting for DNS (default 600)"
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
    parser.add_argument("--api-calls", action="store_true", help="print the AWS API calls made per stack on stderr")
    return parser.parse_args(argv)


def validate(args):
    """(environment, layers) or Failure(code 2); reads only local files."""
    if args.command in ("rollback", "verify") and not args.stack:
        args.stack = "service"
    if args.stack and args.stack not in templates.LAYERS:
        raise Failure(f"error: unknown layer {args.stack!r}; layers: {', '.join(templates.LAYERS)}", 2)
    params_file = args.params_dir / f"{args.env}.yaml"
    if not params_file.is_file():
        known = ", ".join(sorted(p.stem for p in args.params_dir.glob("*.yaml"))) or "none"
        raise Failure(f"error: unknown environment {args.env!r}: no {params_file}; environments: {known}", 2)
    try:
        environment = load_params(params_file)
    except ParamsError as error:
        raise Failure("\n".join(f"error: {line}" for line in error.problems), 2) from None
    enabled = environment.layers
    # A layer taken out of enabled_layers may still be deployed: it can be looked at and destroyed.
    everywhere = args.command in ("status", "outputs", "events", "destroy", "purge")
    if args.stack and args.stack not in enabled and not everywhere:
        raise Failure(f"error: layer {args.stack!r} is not enabled for {args.env}: add it to enabled_layers in {params_file}", 2)
    names = [args.stack] if args.stack else templates.layer_order() if everywhere else enabled
    if args.command == "zone" and args.stack:
        raise Failure(f"error: zone works on {args.env}'s domain, not on a layer: leave out STACK= (--stack)", 2)
    if args.max_wait is not None and not 1 <= args.max_wait <= 720:
        raise Failure(f"error: MAX_WAIT={args.max_wait}: allowed: 1 to 720 minutes", 2)
    if args.timeout < 0:
        raise Failure(f"error: TIMEOUT={args.timeout}: allowed: 0 or more seconds", 2)
    if args.command in ("changeset", "execute", "recover", "events") and not args.stack:
        raise Failure(f"error: {args.command} needs STACK=<layer> (--stack); layers: {', '.join(enabled)}", 2)
    if args.command in ("rollback", "verify") and args.stack != "service":
        raise Failure(f"error: {args.command} works on the service layer: --stack service", 2)
    if args.command == "execute" and not (args.changeset and CHANGE_SET_NAME.fullmatch(args.changeset)):
        got = f"; got {args.changeset!r}" if args.changeset else ""
        raise Failure(f"error: execute needs CHANGESET=<name> (--changeset), the name `make changeset` printed{got}", 2)
    if args.image_tag and not re.fullmatch(IMAGE_TAG, args.image_tag):
        raise Failure(f"error: TAG={args.image_tag}: not a Docker image tag (letters, digits, _ . -, at most 128)", 2)
    if args.image_tag and args.stack and args.stack != "service":
        raise Failure(f"error: TAG= (--image-tag) sets the service layer's image; STACK={args.stack} has none", 2)
    needs_files = args.command in ("deploy", "changeset", "execute", "diff", "rollback")
    layers = [load_layer(args.env, n, args.output_dir) if needs_files else n for n in names]
    for layer in layers if args.command in ("deploy", "changeset") else []:
        if "ExistingHostedZoneId" in layer.declared and not layer.parameters.get("ExistingHostedZoneId"):
            raise Failure(
                f"error: {args.params_dir / f'{args.env}.yaml'}: parameters.ExistingHostedZoneId is empty; {layer.name} validates its "
                "certificate by DNS in the domain's public hosted zone, which works only once the registrar delegates the domain "
                "to the zone's name servers (a zone made with the certificate is not delegated, and its stack would wait 72 hours). "
                f"Run make zone ENV={args.env}: it finds or creates the zone, prints the name servers to set at the registrar and "
                "waits until DNS answers with them; then set ExistingHostedZoneId to the zone id it prints",
                2,
            )
    return environment, layers


def verify_service(deployer, environment, args) -> bool:
    """`make verify`: the checks of scripts/verify.py on the service the stacks' outputs name."""
    stacks = {layer: templates.stack_name(environment.name, layer) for layer in ("alb", "service")}
    outputs = {}
    for layer, stack in stacks.items():
        if not deployer.has_stack(stack):
            raise Failure(f"error: {stack} is not deployed: nothing to verify")
        outputs[layer] = deployer.outputs(stack)
    alb, service = outputs["alb"], outputs["service"]
    deployer.say(f"verifying {alb['ServiceUrl']} ({environment.name}), for up to {args.timeout} s")
    # With AWS_ENDPOINT_URL the stacks live in an emulator: it runs no containers, and the public host
    # in their outputs is not theirs. verify.run_checks skips what cannot pass there, saying why, and
    # makes HTTP requests only to the --connect-to addresses (a local server), never the public host.
    emulator = os.environ.get("AWS_ENDPOINT_URL")
    if emulator:
        deployer.say(f"AWS_ENDPOINT_URL={emulator}: an emulator; the checks it cannot pass are skipped, each with its reason")
    try:
        endpoint = verify.Endpoint(verify.parse_connect_to(args.connect_to), ca_bundle=args.ca_bundle)
    except (ValueError, OSError) as error:
        raise Failure(f"error: {error}", 2) from None

    def run_once():
        return verify.run_checks(
            endpoint,
            alb["ServiceHost"],
            ecs=deployer.client("ecs"),
            elbv2=deployer.client("elbv2"),
            cluster=service["ClusterName"],
            service=service["ServiceName"],
            target_group_arn=alb["TargetGroupArn"],
            smoke_checks=environment.smoke_checks,
            emulator=bool(emulator),
            task_definition=service.get("TaskDefinitionArn"),
        )

    return verify.verify(run_once, timeout=args.timeout, sleep=deployer.sleep, say=deployer.say)


def run(deployer, args, layers, environment) -> int:
    command, env = args.command, args.env
    if command == "deploy":
        if args.stack:
            deployer.deploy(layers[0], args.image_tag, args.allow_replace, args.recreate)
            return 0
        deployer.say(f"order: {' -> '.join(layer.name for layer in layers)}")
        started = deployer.clock()
        try:
            for layer in layers:
                deployer.deploy(layer, args.image_tag, args.allow_replace, args.recreate)
        finally:  # also when a layer fails or is declined: say what was deployed and what was not
            deployer.say(*text.summary([layer.name for layer in layers], deployer.outcomes, deployer.clock() - started))
    elif command == "changeset":
        deployer.deploy(layers[0], args.image_tag, recreate=args.recreate, leave=True)
    elif command == "execute":
        deployer.execute_named(layers[0], args.changeset, args.allow_replace)
    elif command == "status":
        deployer.say(f"{'STACK':<36} {'STATUS':<28} LAST CHANGE")
        for name in layers:
            stack = templates.stack_name(env, name)
            found = deployer.describe(stack)
            enabled = name in environment.layers
            if found is None:
                if enabled:
                    deployer.say(f"{stack:<36} not deployed")
                continue
            when = found.get("LastUpdatedTime") or found.get("CreationTime")
            note = "  (abandoned create: not deployed)" if found["StackStatus"] == "REVIEW_IN_PROGRESS" else ""
            if not enabled:
                note += f"  (not in enabled_layers of params/{env}.yaml: make destroy STACK={name} ENV={env} removes it)"
            deployer.say(f"{stack:<36} {found['StackStatus']:<28} {when:%Y-%m-%d %H:%M:%S %Z}{note}")
    elif command == "outputs":
        for name in layers:
            stack = templates.stack_name(env, name)
            if not deployer.has_stack(stack) and name not in environment.layers:
                continue
            deployer.say(f"{stack}:" if deployer.has_stack(stack) else f"{stack}: not deployed")
            deployer.say(*text.outputs(deployer.describe(stack) or {}))
    elif command == "diff":
        differing = [layer.name for layer in layers if deployer.diff(layer, args.image_tag)]
        if differing:  # an outcome, not a failure: make's "Error 1" after it only carries the exit code
            deployer.say(f"differs from what {env} runs: {', '.join(differing)} (exit 1; make deploy applies it)")
        return 1 if differing else 0
    elif command == "destroy":
        names = list(reversed(layers))
        in_use = deployer.consumers(args.stack) if args.stack else []
        if in_use:
            raise Failure(
                f"error: refusing to destroy {templates.stack_name(env, args.stack)}: {', '.join(in_use)} still uses its outputs; destroy that first"
            )
        existing = []
        for name in names:
            stack = templates.stack_name(env, name)
            existing += [stack] if deployer.describe(stack) else []
        if not existing:
            deployer.say("nothing deployed")
            return 0
        protected = purge.deletion_protected(deployer, existing)  # refused before anything is deleted, not half way
        if protected:
            raise Failure(
                f"error: refusing to destroy {protected[0]}: its load balancer has deletion protection on (DeletionProtection=true), "
                "which CloudFormation cannot delete: the stack would end DELETE_FAILED. If it is really to go, set "
                f"DeletionProtection: false in params/{env}.yaml, make templates && make deploy ENV={env} STACK=alb, "
                "then destroy again; nothing destroyed"
            )
        for stack in existing:  # said before asking, so that the answer knows what stays
            if deployer.describe(stack)["StackStatus"] != "REVIEW_IN_PROGRESS" and deployer.retained(stack):
                kept = ", ".join(f"{logical_id} ({kind})" for logical_id, kind in deployer.retained(stack).items())
                deployer.say(f"{stack}: deleting it leaves in the account: {kept}")
        deployer.confirm(f"destroy {', '.join(existing)}? [y/N] ", "nothing destroyed")
        for name in names:
            deployer.destroy(name)
    elif command == "purge":
        return purge.purge(deployer, layers)
    elif command == "recover":
        deployer.recover(layers[0])
    elif command == "rollback":
        deployer.rollback(layers[0], args.image_tag, args.allow_replace)
    elif command == "events":
        deployer.print_recent_events(templates.stack_name(env, layers[0]))
    elif command == "verify":
        return 0 if verify_service(deployer, environment, args) else 1
    elif command == "zone":
        return deployer.zone(environment, args.timeout)
    elif command == "unlock":
        return deployer.force_unlock()
    return 0


def main(
    argv=None,
    *,
    clients=None,
    sleep=time.sleep,
    ask=input,
    interactive=None,
    now=None,
    revision=None,
    out=None,
    err=None,
    clock=time.monotonic,
    resolver=None,
    locking=True,
) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    args = parse(argv)
    deployer, failed = None, True
    try:
        environment, layers = validate(args)
        interactive = sys.stdin.isatty() if interactive is None else interactive
        options = {"out": out, "err": err, "sleep": sleep, "now": now, "revision": revision, "ask": ask, "yes": args.yes}
        options["role_arn"] = args.role_arn
        options["layers"] = environment.layers
        options |= {"clock": clock, "repair": args.repair, "max_wait": args.max_wait}
        if resolver is None and not os.environ.get("AWS_ENDPOINT_URL"):
            resolver = zone.public_name_servers  # an emulator's zones are unknown to public DNS
        options["resolver"] = resolver
        clients = clients or boto_clients(environment.region, err, CONFIG)  # this module's CONFIG: tests replace it
        deployer = Deployer(clients, args.env, interactive=interactive, **options)
        locked = locking and args.command in LOCKING_COMMANDS
        try:
            if locked:
                deployer.lock.take(args.command)
            code, failed = run(deployer, args, layers, environment), False
        finally:  # also on a failure and on Ctrl-C: the next run must not find the lock taken
            if locked:
                deployer.lock.release()
    except Failure as failure:
        print(failure, file=err)
        code = failure.code
    except KeyboardInterrupt:
        print("interrupted", file=err)
        code = 130
    except (BotoCoreError, ClientError, ResponseParserError) as error:
        print(explain(error, args.env), file=err)
        code = 1
    if args.command == "diff" and failed and code != 130:
        code = 2
    if args.api_calls and deployer:
        print(deployer.calls.line(), file=err)
    return code
