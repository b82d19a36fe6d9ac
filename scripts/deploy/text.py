"""What the deployer prints, as pure functions of what AWS answered: each returns its lines, and the
Deployer prints them. `colour` adds ANSI colours (only on a terminal). Also the readings of a change
set that the guards and advice decide on (stateful_changes, replaced, custom_named_replacements)."""

import difflib
import json
import re
import shlex

import templates
from templates import template_reads
from templates.alb import target_group_name
from templates.errors import INTERRUPTED, printable
from templates.generation import PARAMS_DIR
from templates.inputs import IMAGE_TAG, KEEP_RUNNING_COUNT, LOG_RETENTION_DAYS, TRAFFIC_SHIFTING
from templates.params import SANDBOX_CANNOT_REHEARSE, SANDBOX_ENV
from templates.resolver import UNKNOWN, Resolver

NOT_CONFIRMED = "not confirmed"  # why a run goes no further after a "no" on the terminal (Deployer.why_not)
SECURITY_GROUP_TYPES = {"AWS::EC2::SecurityGroup", "AWS::EC2::SecurityGroupIngress", "AWS::EC2::SecurityGroupEgress"}
RED, YELLOW, GREEN = "31", "33", "32"


def paint(line, colour, on) -> str:
    return f"\033[{colour}m{line}\033[0m" if on and colour else line


# paint's colours alone (not one that hides or blinks a line), after the indent a change-set row has
PAINTED = re.compile(rf"( *\033\[(?:{RED}|{YELLOW}|{GREEN})m)(.*)(\033\[0m)", re.DOTALL)


def as_printed(line: str) -> str:
    """A line as the deployer prints it: every control character escaped (one its text quotes from outside the tools: a
    stack's outputs, an endpoint's answer), but the colour paint gave it."""
    painted = PAINTED.fullmatch(line)
    return printable(line) if painted is None else painted[1] + printable(painted[2]) + painted[3]


def parameter_values(described: dict) -> dict:
    """ParameterKey -> ParameterValue of a DescribeStacks or DescribeChangeSet entry."""
    return {p["ParameterKey"]: p.get("ParameterValue") for p in (described or {}).get("Parameters", [])}


def output_values(described: dict) -> dict:
    """OutputKey -> OutputValue of a DescribeStacks entry (none for a stack that has no outputs, or None); both are
    optional in the API's model: an output without a key is none this tool reads."""
    return {o["OutputKey"]: o.get("OutputValue") for o in (described or {}).get("Outputs", []) if "OutputKey" in o}


# --- change sets ------------------------------------------------------------------------------
def change_set_table(change_set, deployed=None, colour=False, conditions=None) -> list[str]:
    """A DescribeChangeSet answer as a table, marking what is replaced or removed, stateful, IAM or a
    security group, then the parameters and tags that differ from the deployed stack's (a DescribeStacks entry).
    conditions: logical id -> the Condition of that resource in the template deployed (Layer.conditions)."""
    rows, colours = [("", "action", "logical id", "type", "replacement", "cause")], [None]
    for change in change_set.get("Changes", []):
        rc = change.get("ResourceChange", {})
        action, kind = rc.get("Action", ""), rc.get("ResourceType", "")
        replacement = rc.get("Replacement", "") if action == "Modify" else ""
        # What may delete the resource, in red: REPLACE? for "Conditional", which CloudFormation decides as the update
        # runs (a property that reads another resource's attribute recreates only if that attribute changes);
        # DYNAMIC for an action it cannot tell yet, which may replace or remove (STATEFUL_ACTIONS).
        deletes = {"Remove": "REMOVE", "Dynamic": "DYNAMIC"}.get(action) or (
            ("REPLACE?" if replacement == "Conditional" else "REPLACE") if replaced(rc) else ""
        )
        marks = [deletes] if deletes else []
        marks += ["STATEFUL"] if marks and kind in templates.STATEFUL_TYPES else []
        marks += ["IAM"] if kind.startswith("AWS::IAM::") else ["SG"] if kind in SECURITY_GROUP_TYPES else []
        rows.append(
            (
                "!" + ",".join(marks) if marks else "",
                action,
                rc.get("LogicalResourceId", ""),
                kind,
                replacement,
                cause(rc, conditions or {}),
            )
        )
        colours.append(RED if deletes else YELLOW if marks else None)
    rows = [tuple(printable(cell, one_line=True) for cell in row) for row in rows]  # from AWS: a newline would forge a line
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = [f"change set {change_set['ChangeSetName']} for {change_set['StackName']}:"]
    for row, row_colour in zip(rows, colours, strict=True):
        line = "  ".join(cell.ljust(width) for cell, width in zip(row, widths + [0], strict=False)).rstrip()
        lines.append("  " + paint(line, row_colour, colour))
    before = parameter_values(deployed)
    changed = [p for p in change_set.get("Parameters", []) if deployed and before.get(p["ParameterKey"]) != p.get("ParameterValue")]
    lines += [
        f"  parameter {p['ParameterKey']}: {shown(before.get(p['ParameterKey']))} -> {shown(p.get('ParameterValue'))}" for p in changed
    ]
    # Tags go on every taggable resource of the stack; a change set made without tags (one made by hand)
    # is not taken to remove them.
    if deployed and change_set.get("Tags"):
        tags_before, tags_after = (
            {tag["Key"]: tag.get("Value") for tag in described.get("Tags", [])} for described in (deployed, change_set)
        )
        lines += [
            f"  tag {printable(key, one_line=True)}: {shown(tags_before.get(key))} -> {shown(tags_after.get(key))}"
            for key in sorted(tags_before.keys() | tags_after.keys())
            if tags_before.get(key) != tags_after.get(key)
        ]
    if any(p["ParameterKey"] == "DesiredCount" for p in changed):
        lines += desired_count_note(
            parameter_values(change_set), "the Service row above is CloudFormation's reading of the new DesiredCount"
        )
    if len(rows) == 1:
        lines.append("  (no resource changes: parameter values or tags only)")
    return lines


def desired_count_note(sent: dict, what: str) -> list[str]:
    """A new DesiredCount for a running service (sent: the parameters a deploy sends, KeepRunningCount
    true on an update) changes no running count: what says where it shows."""
    if sent.get(KEEP_RUNNING_COUNT) != "true":
        return []
    return [
        f"  note: {what}, which counts only when the service is created (README, Decisions: Desired count vs auto-scaling): "
        "the running count does not change, auto-scaling keeps it; to run more tasks, raise MinCapacity (the scaling layer)"
    ]


def shown(value) -> str:
    """A parameter value as the table prints it: an empty one, or one the stack did not have, is said;
    escaped, as it comes from AWS (printable)."""
    return "(none)" if value is None else "(empty)" if value == "" else printable(value, one_line=True)


def cause(rc, conditions) -> str:
    """Why a resource changes: the table's last column. A resource with a Condition is added when the
    Condition turns true and removed when it turns false, the template unchanged (a DeploymentStrategy
    that leaves ROLLING adds the test listener): CloudFormation creates a resource only while its
    Condition holds. https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-attribute-condition.html"""
    condition = conditions.get(rc.get("LogicalResourceId"))
    if rc.get("Action") == "Add":
        return f"Condition {condition} holds" if condition else "new in the template"
    if rc.get("Action") == "Remove":
        return f"Condition {condition} no longer holds" if condition else "gone from the template"
    if rc.get("Action") != "Modify":
        return ""
    found = []
    for detail in rc.get("Details", []):
        target = detail.get("Target", {})
        what = target.get("Name") or target.get("Attribute", "")
        source = detail.get("ChangeSource", "")
        by = {"ParameterReference": "parameter", "ResourceReference": "ref", "ResourceAttribute": "attribute"}.get(source)
        text = f"{what} <- {by} {detail.get('CausingEntity')}" if by else f"{what} ({source or detail.get('Evaluation', '')})"
        if target.get("RequiresRecreation") == "Always":
            text += " recreates"
        if text not in found:
            found.append(text)
    return "; ".join(found)


def replaced(rc) -> bool:
    """A ResourceChange that replaces its resource, or may: "Conditional" is decided as the update
    runs. https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_ResourceChange.html"""
    return rc.get("Action") == "Modify" and rc.get("Replacement") in ("True", "Conditional")


# The actions besides a Modify that replaces (replaced()) that may delete a resource: a stateful one's needs
# --allow-replace, and a protected load balancer's is refused (guards), said so.
# "Dynamic": "exact action for the resource can't be determined", which may be a replacement or a removal:
# https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_ResourceChange.html
STATEFUL_ACTIONS = {"Remove": "removed", "Dynamic": "may be replaced or removed: its action is Dynamic, decided as the update runs"}


def stateful_changes(change_set) -> list[str]:
    """The stateful resources the change set replaces or removes, or may: what needs --allow-replace."""
    risky = []
    for change in change_set.get("Changes", []):
        rc = change.get("ResourceChange", {})
        said = "replaced" if replaced(rc) else STATEFUL_ACTIONS.get(rc.get("Action"))
        if said and rc.get("ResourceType") in templates.STATEFUL_TYPES:
            risky.append(f"{rc['LogicalResourceId']} ({rc['ResourceType']}, {said})")
    return risky


def custom_named_replacements(change_set, named: frozenset, replacement="True") -> list[str]:
    """The resources the change set replaces (replacement "True"; "Conditional": may replace, decided as the update
    runs) while the custom name the template gives them (named: their logical ids) stays: CloudFormation cannot
    replace them (templates.CUSTOM_NAMES), so the update would fail and roll back."""
    found = []
    for change in change_set.get("Changes", []):
        rc = change.get("ResourceChange", {})
        if rc.get("Action") != "Modify" or rc.get("Replacement") != replacement or rc.get("LogicalResourceId") not in named:
            continue
        name = templates.CUSTOM_NAMES[rc["ResourceType"]]
        renamed = any(
            d.get("Target", {}).get("Attribute") == "Properties" and d["Target"].get("Name") == name for d in rc.get("Details", [])
        )
        if not renamed:
            found.append(f"{rc['LogicalResourceId']} ({rc['ResourceType']}, its {name} unchanged)")
    return found


def custom_named_maybe_replaced(change_set, named: frozenset) -> list[str]:
    """Before the question, and with a change set left for review: a resource the change set may replace (Conditional)
    under the custom name it keeps is no refusal, as CloudFormation may well not replace it, but should it, the update
    fails and rolls back."""
    return [
        f"warning: {found} may be replaced (Replacement Conditional, decided as the update runs); should it be, CloudFormation "
        "cannot replace it under the same name, and the update fails and rolls back"
        for found in custom_named_replacements(change_set, named, "Conditional")
    ]


def listener_rule_changes(change_set) -> list[tuple[str, str, str]]:
    """(logical id, rule ARN, Modify or Remove) of each existing listener rule the change set changes."""
    found = []
    for change in change_set.get("Changes", []):
        rc = change.get("ResourceChange", {})
        if rc.get("ResourceType") == "AWS::ElasticLoadBalancingV2::ListenerRule" and rc.get("Action") in ("Modify", "Remove"):
            found.append((rc["LogicalResourceId"], rc.get("PhysicalResourceId", ""), rc["Action"]))
    return found


def shifted_weights(rule, primary_arn) -> list[str]:
    """'<group> <weight>' of each target group other than `primary_arn` the rule sends traffic to."""
    shifted = []
    for action in rule.get("Actions", []):
        groups = action.get("ForwardConfig", {}).get("TargetGroups") or [{"TargetGroupArn": action.get("TargetGroupArn"), "Weight": 1}]
        for group in groups:
            arn = group.get("TargetGroupArn")
            if arn and arn != primary_arn and group.get("Weight", 1) > 0:
                shifted.append(f"{target_group_name(arn)} weight {group.get('Weight', 1)}")
    return shifted


def execute_command(layer_name, env, change_set_name, switches="") -> str:
    """The make execute that runs a change set left for review (switches: " ALLOW_REPLACE=1" and the like)."""
    return f"make execute STACK={layer_name} ENV={env} CHANGESET={change_set_name}{switches}"


def execute_switches(change_set) -> str:
    """The switches the make execute of a change set left for review needs: ALLOW_REPLACE=1 where it replaces or
    removes a stateful resource (left_for_review's lines say which), as make deploy's and make diff's commands carry it."""
    return " ALLOW_REPLACE=1" if stateful_changes(change_set) else ""


def left_for_review(change_set, layer) -> list[str]:
    """`make changeset`: how to execute the change set it left, and what executing it needs."""
    name = change_set["ChangeSetName"]
    command = execute_command(layer.name, layer.env, name, execute_switches(change_set))
    lines = [f"change set {name} left for review; execute it with: {command}"]
    lines += [f"  executing needs ALLOW_REPLACE=1 (--allow-replace): {risky}" for risky in stateful_changes(change_set)]
    return (
        lines
        + [
            f"  CloudFormation cannot execute it: {named} would be replaced under the same name"
            for named in custom_named_replacements(change_set, layer.custom_named)
        ]
        + [f"  {warning}" for warning in custom_named_maybe_replaced(change_set, layer.custom_named)]
    )


def subscriptions_to_confirm(change_set, template: dict, sandbox: bool = False, values=None, region=None) -> list[str]:
    """After a change set that made e-mail subscriptions anew (the first create, an address added,
    the topic replaced under a new NamePrefix): each address is sent a confirmation message and gets
    no alarm until it confirms, within three days; on AWS, that is: the sandbox sends no mail.
    https://docs.aws.amazon.com/sns/latest/api/API_Subscribe.html
    values: (before, after) parameter values. A subscription the change set may replace only for a parameter whose
    change leaves its properties as they were (an address added to AlertEmails: the first one's Endpoint, Select 0 of
    the list, is the same address) is not made anew: a Conditional replacement is decided as the update runs
    (API_ResourceChange), and the sandbox, which calls it True, kept it too."""
    resources = template.get("Resources", {})

    def kept(rc) -> bool:
        if values is None or rc.get("Action") != "Modify":
            return False
        details = rc.get("Details", [])
        if not details or any(detail.get("ChangeSource") != "ParameterReference" for detail in details):
            return False
        properties = resources.get(rc.get("LogicalResourceId"), {}).get("Properties", {})
        named = {detail.get("Target", {}).get("Name") for detail in details}
        known = [{k: v for k, v in each.items() if v is not None} for each in values]  # a value DescribeStacks left out: unknown
        before, after = ({name: Resolver(template, each, {}, region).value(properties.get(name)) for name in named} for each in known)
        return before == after and UNKNOWN not in before.values()

    made = [
        rc["LogicalResourceId"]
        for rc in (change.get("ResourceChange", {}) for change in change_set.get("Changes", []))
        if rc.get("ResourceType") == "AWS::SNS::Subscription"
        and (rc.get("Action") == "Add" or replaced(rc))
        and resources.get(rc.get("LogicalResourceId"), {}).get("Properties", {}).get("Protocol") == "email"
        and not kept(rc)
    ]
    if not made:
        return []
    return [
        f"  note: e-mail subscriptions made anew ({', '.join(made)}): {'on AWS, ' * sandbox}each address is sent a confirmation "
        "message from AWS Notifications and gets no alarm until it confirms (the link is valid for three days)"
        + ("; the sandbox sends none" if sandbox else "")
    ]


def rollback_triggers(change_set, operation="update", what="this change set", repair=False, on_aws=True) -> list[str]:
    """The release alarms CloudFormation watches during the create or update (operation) and the
    monitoring time after it: "during stack creation and updating operations, and for the specified
    monitoring period afterwards".
    https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_RollbackConfiguration.html"""
    configuration = change_set.get("RollbackConfiguration") or {}
    triggers = configuration.get("RollbackTriggers") or []
    if not triggers and not configuration and not repair:
        # made without one (by hand): "To use the rollback triggers previously specified for this stack, if any, don't specify this parameter"
        return [f"rollback triggers: none given with {what}: CloudFormation keeps those the stack last had, watched as before"]
    if not triggers:
        return [
            f"rollback triggers: none for {what} (a repair: make rollback or REPAIR=1); the release alarms "
            "may still be in ALARM from the release being repaired; the next deploy without REPAIR=1 watches them again"
        ]
    minutes = configuration.get("MonitoringTimeInMinutes", 0)
    return [
        f"rollback triggers: {len(triggers)} release alarms, watched during the {operation} and {minutes} minutes after; "
        f"CloudFormation rolls the {operation} back if one goes to ALARM" + ("" if on_aws else " (on AWS; the emulator watches no alarm)")
    ]


# --- stacks and their events ------------------------------------------------------------------
def readable_event(event) -> dict:
    """A stack event with the fields every reader of events takes: only StackId, EventId, StackName and
    Timestamp are required in the API's model (a hook's event may lack the rest), "?" where one is missing.
    https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_StackEvent.html"""
    return {"LogicalResourceId": "?", "ResourceType": "?", "ResourceStatus": "?"} | event


def event_line(event, when="%H:%M:%S") -> str:
    reason = f"  {printable(event['ResourceStatusReason'], one_line=True)}" if event.get("ResourceStatusReason") else ""
    return f"  {event['Timestamp']:{when}}  {event['ResourceStatus']:<32} {event['LogicalResourceId']:<28} {event['ResourceType']}{reason}"


def event_lines(events, colour=False) -> list[str]:
    """Events as a wait prints them, oldest first; failures and rollbacks in red."""
    lines = []
    for event in events:
        status = event["ResourceStatus"]
        lines.append(paint(event_line(event), RED if status.endswith("FAILED") or "ROLLBACK" in status else None, colour))
    return lines


def recent_events(stack, events) -> list[str]:
    """`make events`: DescribeStackEvents' newest-first events, printed oldest first with their date."""
    lines = [f"{stack}: the last {len(events)} events, oldest first"]
    return lines + [event_line(event, "%Y-%m-%d %H:%M:%S") for event in reversed(events)]


def failed_resources(failed_events) -> list[str]:
    return [
        f"  failed: {e['LogicalResourceId']} ({e.get('ResourceType')}): {printable(e.get('ResourceStatusReason', ''))}"
        for e in failed_events
    ]


def left_outside_the_stack(events, stack) -> list[str]:
    """What an update that completed could not delete (an old resource it replaced, or one it removed):
    CloudFormation tries three times, then skips it, drops it from the stack and completes the update
    (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/using-cfn-updating-stacks-monitor-stack.html,
    https://repost.aws/knowledge-center/cloudformation-stack-cleanup-stuck). It runs on, billed, in no
    stack: neither destroy nor purge will see it. Only those whose last event (oldest first) failed."""
    last = {}
    for event in events:
        if event["LogicalResourceId"] != stack and event.get("ResourceStatus", "").startswith("DELETE_"):
            last[(event["LogicalResourceId"], event.get("PhysicalResourceId"))] = event
    return [
        f"warning: CloudFormation could not delete the old {logical_id} ({e.get('ResourceType')} {printable(physical or '')}) and "
        f"left it out of the stack: it still exists, outside every stack ({printable(e.get('ResourceStatusReason', ''))}); "
        "delete it yourself once nothing uses it"
        for (logical_id, physical), e in last.items()
        if e["ResourceStatus"] == "DELETE_FAILED"
    ]


def outputs(found) -> list[str]:
    """A DescribeStacks entry's outputs, by key (both optional in the API's model, as output_values reads them)."""
    return [
        f"  {printable(o.get('OutputKey', '(no key)'), one_line=True)} = {printable(o.get('OutputValue', '(no value)'), one_line=True)}"
        for o in sorted(found.get("Outputs", []), key=lambda o: o.get("OutputKey", ""))
    ]


def still_in_progress(stack, env, status, minutes, events, cli, sandbox=False) -> list[str]:
    """Why a wait stopped: the resources whose latest event (of these, oldest first) is still *_IN_PROGRESS."""
    latest = {}
    for event in events:  # oldest first: the last one per resource wins
        latest[event["LogicalResourceId"]] = event
    busy = [e for e in latest.values() if e["ResourceStatus"].endswith("_IN_PROGRESS") and e["LogicalResourceId"] != stack]
    lines = [f"error: stopped waiting for {stack} after {minutes} minutes; it is still {status}."]
    for event in busy:
        lines.append(
            f"  still {event['ResourceStatus']} since {event['Timestamp']:%H:%M:%S}: {event['LogicalResourceId']} ({event.get('ResourceType', '')})"
        )
        if event.get("ResourceType") == "AWS::CertificateManager::Certificate":
            lines.append(
                "    a certificate waits for its DNS validation record to resolve: is the hosted zone delegated? "
                f"make zone ENV={env} checks and waits"
            )
    stop = how_to_stop(stack, status, cli, sandbox)
    return lines + [
        "  CloudFormation carries on; nothing was cancelled.",
        f"  follow it:   make status ENV={env}   (or: make events STACK={templates.layer_of(env, stack)} ENV={env})",
        f"  stop it:     {stop}",
        "  wait longer: rerun with MAX_WAIT=<minutes> (--max-wait); a rerun first waits for the stack to settle",
    ]


def how_to_stop(stack, status, cli, sandbox=False) -> str:
    """What stops the operation a stack is in: an update is cancelled (CancelUpdateStack takes only a
    stack in UPDATE_IN_PROGRESS; not on the sandbox, where moto leaves it unimplemented), a create
    deleted, a delete not at all (no API cancels one).
    https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_CancelUpdateStack.html"""
    if status == "DELETE_IN_PROGRESS":  # DELETE_COMPLETE and DELETE_FAILED (a final status interrupted() may get) ran
        return "nothing: a delete cannot be stopped; it ends DELETE_COMPLETE, or DELETE_FAILED naming what it could not delete"
    if status == "UPDATE_IN_PROGRESS" and sandbox:
        return "nothing on the sandbox, which cannot cancel an update (moto has no CancelUpdateStack); it ends by itself"
    if status == "UPDATE_IN_PROGRESS":
        return f"{cli} cloudformation cancel-update-stack --stack-name {stack}"
    if status in ("CREATE_IN_PROGRESS", "REVIEW_IN_PROGRESS", "in progress"):  # the last two: a create not yet read as one
        return f"{cli} cloudformation delete-stack --stack-name {stack}   (a create cannot be cancelled)"
    if status.endswith("_IN_PROGRESS"):
        return f"nothing: {status} (a rollback or a clean-up) cannot be stopped; it ends by itself"
    return f"nothing: it is {status}, no operation runs"


def interrupted(stack, env, status, cli, why=INTERRUPTED, sandbox=False, stack_id=None) -> list[str]:
    """A wait stopped (Ctrl-C; why: another cause): CloudFormation carries on; how to follow or stop
    it (cli: aws.cli). Its events by the stack's id where known: once a deletion ends, DescribeStackEvents takes
    a deleted stack by its unique id alone (API_DescribeStackEvents.html: "Deleted stacks: You must specify
    the unique stack ID"), and they say what it kept."""
    # A final status its events did not confirm yet (a wait stopped between the two reads) is no operation under way.
    going = status == "in progress" or status.endswith("_IN_PROGRESS")
    return [
        f"{why}: CloudFormation carries on with {stack} ({status}); nothing was cancelled."
        if going
        else f"{why}: {stack} reads {status}, which its events had not confirmed yet; nothing was cancelled.",
        f"  follow it:         make status ENV={env}   (or: {cli} cloudformation describe-stack-events --stack-name {shlex.quote(printable(stack_id or stack, one_line=True))})",
        f"  stop it:           {how_to_stop(stack, status, cli, sandbox)}",
    ]


def earlier_stack_image(releases, image, env) -> list[str]:
    """Before a service stack's create runs, or is left for review: the image the service stack before it last ran,
    where the history (releases) holds it and it is another (a stack destroyed, or deleted by hand, and created again
    runs the params file's ImageTag or TAG='s, which said nothing of it)."""
    if not releases or releases[-1]["image_tag"] == image:
        return []
    last = printable(releases[-1]["image_tag"], one_line=True)
    return [
        f"note: this new service stack runs {printable(image, one_line=True)}; the one before it last ran {last} "
        f"(make releases ENV={env}): make deploy STACK=service TAG={last} ENV={env} runs that instead, if it is the one to run"
    ]


# --- whole runs -------------------------------------------------------------------------------
def summary(names, outcomes, seconds, stopped=None, ahead=False) -> list[str]:
    """The end of a multi-layer deploy: each layer's outcome (layer -> what its deploy did), the layer
    the run stopped at, and those it did not reach; stopped: the layer the run was in when it stopped
    (None: it ended). The layer it stopped at was reached: its change set made, refused or declined,
    its stack operation failed or left running; ahead: refused by a look at the layers ahead, before
    that layer's change set was made (RefusedAhead)."""
    done = [f"{name} ({outcomes[name]})" for name in names if name in outcomes]
    left = [name for name in names if name not in outcomes]
    lines = [f"summary, {seconds:.1f} s: " + (", ".join(done) or "no layer deployed")]
    if stopped in outcomes:  # after its stack operation, in what follows it (the service's settling change set)
        where = f"in {stopped}, after its stack operation: {outcomes[stopped]}"
    elif left:
        stopped = stopped or left[0]
        where, left = f"at {stopped}", [name for name in left if name != stopped]
        if ahead:
            where = f"at {stopped}, before its change set: a look at the layers it deploys next refused it"
    else:
        return lines
    lines.append(f"  the run stopped {where} (the reason is below)" + (f"; not reached: {', '.join(left)}" if left else ""))
    return lines


UNDEPLOYABLE_ALONE = ("Metadata", "Description", "Parameters")  # the sections deployable_part leaves out


def deployable_part(template: dict) -> dict:
    """template without what a stack update cannot change alone: its Metadata section
    (metadata-section-structure), its Description and its parameters' declarations (descriptions,
    allowed values; what a deploy passes them is compared apart): "UpdateStack and CreateChangeSet fail ... if the
    template provided does not update the property values of existing resources in the Resources or
    Outputs section", a parameter's name changed among the examples.
    https://github.com/aws-cloudformation/cloudformation-coverage-roadmap/issues/2027"""
    return {key: value for key, value in template.items() if key not in UNDEPLOYABLE_ALONE}


def template_diff(layer, found, deployed_template, wanted, colour=False, deployable_only=False) -> list[str]:
    """`make diff`: the deployed template, parameters and tags (DescribeStacks entry, GetTemplate body)
    against the layer's and the parameter values a deploy would send; no lines when they are the same.
    deployable_only: the templates' deployable_part only."""
    part = deployable_part if deployable_only else (lambda template: template)
    old = sorted(f"parameter {p['ParameterKey']}={p.get('ParameterValue')}" for p in found.get("Parameters", []))
    old = as_lines(part(deployed_template)) + old + sorted(f"tag {t['Key']}={t['Value']}" for t in found.get("Tags", []))
    new = sorted(f"parameter {k}={v}" for k, v in wanted.items())
    new = as_lines(part(json.loads(layer.template))) + new + sorted(f"tag {k}={v}" for k, v in layer.tags.items())
    lines = [
        printable(line, one_line=True)
        for line in difflib.unified_diff(
            old,
            new,
            f"deployed {layer.stack}",
            f"local {layer.source} + parameters of {layer.configuration} and the outputs it reads",
            lineterm="",
        )
    ]
    return [paint(line, RED if line.startswith("-") else GREEN if line.startswith("+") else None, colour) for line in lines]


def as_lines(template) -> list[str]:
    return json.dumps(template, indent=2, sort_keys=True).splitlines()


def declined(why: str, refusal: str, without_asking: str | None = None) -> str:
    """Why a run goes no further, and what it left; and, but after a "no" on the terminal (the person
    just declined), how to go on without asking: "to <without_asking> without asking, rerun with YES=1"."""
    hint = f"; to {without_asking} without asking, rerun with YES=1 (--yes)" if without_asking and why != NOT_CONFIRMED else ""
    return f"{why}: {refusal}{hint}"


def remake_command(layer, change_set, running) -> str:
    """The command that makes the change set anew: a release's (another image than the running one) carries its TAG=
    (without it a deploy keeps the running image, and said "no changes"), but not where another image has run since it
    was made (it would undo that release); a rollback's is make rollback to its image (a change set of output/'s,
    recorded as a release, would make the next rollback go back to the image rolled back from)."""
    again = f"make changeset STACK={layer.name} ENV={layer.env}"
    tag = parameter_values(change_set).get("ImageTag")
    if layer.name != "service" or not tag or tag == running or not re.fullmatch(IMAGE_TAG, tag):
        return again
    left = rolled_back_from(change_set.get("Description"), layer)
    if left:  # made while another image ran than the one it leaves: TAG= would undo what ran since; the history decides
        return f"make rollback STACK={layer.name} ENV={layer.env}" + f" TAG={tag}" * (left == running)
    replaced = replaced_by_release(change_set.get("Description"), layer)
    return again if replaced and replaced != running else f"{again} TAG={tag}"


def values_since_the_change_set(change_set, layer, exists, wired: dict, again: str) -> list[str]:
    """Before the question: the values of output/ (from params/) that changed since `make changeset` made the
    change set, which executes the values it was made with. Not ImageTag of a stack that exists: params'
    counts only for a first create, and an update's change set keeps the running image or takes TAG='s. And the
    values it takes from other layers' outputs (wired: parameter -> what they say now) where it says another:
    made before those layers changed, or one of the reviewed name made by anyone who may make change sets. again:
    the command that makes one anew."""
    made_with = parameter_values(change_set)
    own = {k: v for k, v in layer.parameters.items() if not (k == "ImageTag" and exists)}
    return [
        *taken_otherwise(change_set, made_with, own, f"was made with other values than {layer.configuration} holds now", "", again),
        *taken_otherwise(
            change_set,
            made_with,
            wired,
            "takes other values than the layers it reads give now",
            " (a change set made before those layers changed, or by hand)",
            again,
        ),
    ]


def taken_otherwise(change_set, made_with, now: dict, what: str, why: str, again: str) -> list[str]:
    """The warning naming each value of now the change set was made with another of (made_with), if any."""
    changed = {k: v for k, v in now.items() if made_with.get(k) is not None and made_with[k] != v}
    if not changed:
        return []
    return [
        f"warning: {change_set['ChangeSetName']} {what}: "
        + ", ".join(f"{k} {shown(made_with[k])} (now {shown(v)})" for k, v in sorted(changed.items()))
        + f"; executing it deploys its values, not these{why}: {again} makes one with them"
    ]


# SINCE= that reads every event a log group can hold (scripts/deploy/logs.py refuses more: the longest retention).
EVERY_EVENT_SINCE = f"{max(LOG_RETENTION_DAYS)}d"


def read_or_export_first(env, cli, group, now, since=None) -> str:
    """How to keep a log group's events before they go: make logs for the service's (since: SINCE= that covers them,
    None for another group, which make logs does not read), or an export to S3, whose every argument CreateExportTask
    requires; it runs on after the call returns, one at a time in an account.
    https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_CreateExportTask.html"""
    reads = f"make logs ENV={env} SINCE={since}, or " if since else ""
    export = (
        f"{cli} logs create-export-task --log-group-name {shlex.quote(group)} --from 0 --to {int(now.timestamp() * 1000)} "
        "--destination <an S3 bucket CloudWatch Logs may write to>"
    )
    return f"read or export what is needed first ({reads}{export}, which runs on after it returns: {cli} logs describe-export-tasks says when it is COMPLETED)"


def kept_logs_unreadable(layer, change_set, cli, now) -> list[str]:
    """Before the question: a log group the update replaces (a new name) stays in the account, in no
    stack, with its events encrypted by the layer's KMS key, whose policy then names only the new
    group: "CloudWatch Logs will need permissions for the key whenever that data is accessed", so the
    old events can no longer be read.
    https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_DisassociateKmsKey.html"""
    resources = json.loads(layer.template).get("Resources", {})
    lines = []
    for rc in (c.get("ResourceChange", {}) for c in change_set.get("Changes", [])):
        logical_id = rc.get("LogicalResourceId", "")
        if rc.get("ResourceType") != "AWS::Logs::LogGroup" or not replaced(rc):
            continue
        keys = sorted(
            k for k in template_reads.references(resources.get(logical_id, {}).get("Properties", {}).get("KmsKeyId")) if k in resources
        )
        if keys:
            group = rc.get("PhysicalResourceId")
            old = printable(group or "the old log group", one_line=True)
            since = EVERY_EVENT_SINCE if layer.name == "service" else None  # make logs reads the service's
            keep = read_or_export_first(layer.env, cli, group or "<the old log group>", now, since)
            lines.append(
                f"warning: {logical_id} {'may be' if rc.get('Replacement') == 'Conditional' else 'is'} replaced: {old} would stay in the account, "
                f"in no stack, but its events stay encrypted with "
                f"{keys[0]}, whose policy this update makes name only the new log group, so CloudWatch Logs can no longer read "
                f"them; {printable(keep, one_line=True)}"
            )
    return lines


def tag_changes(layer, before) -> list[str]:
    """The stack's tags (before: key -> value) that differ from the layer's; the deployed ones as anyone
    who may tag the stack wrote them, escaped onto one line each."""
    lines = [f"{layer.stack}: but its stack tags differ from {layer.configuration}:"]
    for key in sorted(k for k in before.keys() | layer.tags.keys() if before.get(k) != layer.tags.get(k)):
        # as the change set's table shows a stack tag's change (shown): a removed one is (none)
        lines.append(f"  tag {printable(key, one_line=True)}: {shown(before.get(key))} -> {shown(layer.tags.get(key))}")
    return lines


# --- drift ------------------------------------------------------------------------------------
def drift_report(stack, status, drifts) -> list[str]:
    """`make drift`: a DescribeStackDriftDetectionStatus answer and the MODIFIED or DELETED resources
    (DescribeStackResourceDrifts), each with its property differences."""
    drift_status, detection = status.get("StackDriftStatus", "UNKNOWN"), status["DetectionStatus"]
    lines = [f"{stack}: {drift_status}" + (f" ({detection})" if detection != "DETECTION_COMPLETE" else "")]
    if status.get("DetectionStatusReason") and detection != "DETECTION_COMPLETE":
        lines.append(f"  detection did not check everything: {printable(status['DetectionStatusReason'], one_line=True)}")
    if not drifts:
        return lines
    # every field as AWS gives it, escaped: a value changed out of band may hold anything
    rows = [("status", "logical id", "type")] + [
        tuple(printable(d[key], one_line=True) for key in ("StackResourceDriftStatus", "LogicalResourceId", "ResourceType")) for d in drifts
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(2)] + [0]
    for row, drift in zip(rows, [{}, *drifts], strict=True):
        lines.append("  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
        if drift.get("StackResourceDriftStatus") == "DELETED":
            lines.append(f"      deleted outside CloudFormation (was {printable(drift.get('PhysicalResourceId', '?'), one_line=True)})")
        elif moved_by_release(drift):
            lines.append(
                "      a BLUE_GREEN, CANARY or LINEAR release moves this rule's weights (ECS): expected after one; "
                "leave it, a deploy that would rewrite it while traffic is on the alternate target group is refused"
            )
        for difference in drift.get("PropertyDifferences", []):
            lines.append(
                f"      {printable(difference['PropertyPath'], one_line=True)}: expected {short(difference['ExpectedValue'])}, "
                f"actual {short(difference['ActualValue'])} ({printable(difference['DifferenceType'], one_line=True)})"
            )
    return lines


# Where a release moves a listener rule: the weights of its forward action's target groups, and
# nothing else (a changed condition, priority or action type is someone's change).
# https://docs.aws.amazon.com/AmazonECS/latest/developerguide/alb-resources-for-blue-green.html
# A difference's PropertyPath is "the fully-qualified path to the resource property"
# (https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_PropertyDifference.html);
# its slash-separated form below is not documented further. A path of any other form is reported as
# drift, never excused.
MOVED_WEIGHT = re.compile(r"/Actions/\d+/ForwardConfig/TargetGroups/\d+/Weight")


def moved_by_release(drift: dict) -> bool:
    """A listener rule whose only differences are the weights a release moves: expected, not drift."""
    differences = drift.get("PropertyDifferences") or []
    return (
        drift.get("ResourceType") == "AWS::ElasticLoadBalancingV2::ListenerRule"
        and drift.get("StackResourceDriftStatus") == "MODIFIED"
        and bool(differences)
        and all(MOVED_WEIGHT.fullmatch(d["PropertyPath"]) for d in differences)
    )


def short(value) -> str:
    """A drifted property's value as printed: escaped on one line (changed out of band, it may hold
    anything, a newline that would print a forged line too), cut at 200 characters."""
    value = printable(value, one_line=True)
    return value if len(value) <= 200 else value[:197] + "..."


def drift_busy(stack, status, env, layer_name) -> list[str]:
    return [
        f"error: {stack} is {status}: drift is detected only on a settled stack; wait until it settles "
        f"(make status ENV={env}), then: make drift STACK={layer_name} ENV={env}"
    ]


def drift_timeout(stack, detection, minutes, env, layer_name, cli) -> list[str]:
    return [
        f"error: stopped waiting for the drift detection of {stack} after {minutes} minutes; CloudFormation carries on.",
        f"  its result later: {cli} cloudformation describe-stack-drift-detection-status --stack-drift-detection-id {detection}",
        f"  then:             {cli} cloudformation describe-stack-resource-drifts --stack-name {stack} "
        "--stack-resource-drift-status-filters MODIFIED DELETED",
        f"  or detect again:  make drift STACK={layer_name} ENV={env}",
    ]


# What "in sync" speaks for: on AWS, the properties the templates set, on the types drift detection supports
# ("Only resource properties explicitly defined in the stack template are checked"; other types "can't be checked":
# https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_StackResourceDrift.html). Off AWS the
# endpoint's detection is an emulator's, and the sandbox compares two types: a security group opened to the world
# by hand went unseen there, reported as "no resource changed" (README, Drift).
IN_SYNC_ON_AWS = "in sync: no property the templates set changed outside CloudFormation, on the resource types drift detection supports"
OFF_AWS_DRIFT = (
    "note: this endpoint is not AWS (AWS_ENDPOINT_URL): its drift detection checks only the resource types it "
    "implements (the sandbox: log groups and target groups, README's Drift section); other changes go unseen here"
)


def drift_summary(
    drifted, unchecked, env, moved, deployed, looked_at, on_aws=True, params_file=None, deleted=None, theirs=(), again=None
) -> list[str]:
    """The end of `make drift`: the layers whose resources were changed (drifted) or deleted (layer -> logical ids)
    outside CloudFormation, those it could not check, and those whose only difference is the listener-rule weights a
    release moved; deployed: those of looked_at that have a stack of ours; theirs: those whose stack this tool did not
    make (not checked, and not in deployed). params_file: as messages name it (params/<env>.yaml by default). again:
    where some are deleted, how to destroy their layers and deploy them again, once each (Deployer.destroy_and_deploy_again)."""
    deleted = deleted or {}
    params_file = params_file or str(templates.relative(PARAMS_DIR / f"{env}.yaml"))
    # "in sync" speaks of what was checked: a stack not ours is named apart, never counted in it
    not_ours = [f"not checked: {', '.join(theirs)}: not made by this tool (see above)"] if theirs else []
    if not deployed and not unchecked:
        absent = [name for name in looked_at if name not in theirs]
        return [f"nothing was checked: not deployed in {env}: {', '.join(absent)}"] * bool(absent) + not_ours
    off_aws = [] if on_aws else [OFF_AWS_DRIFT]
    if not drifted and not deleted and not unchecked:
        if moved:
            return [f"in sync but for the listener-rule weights a release moved ({', '.join(moved)}): nothing to undo", *not_ours, *off_aws]
        return [IN_SYNC_ON_AWS if on_aws else "in sync: nothing it checked changed", *not_ours, *off_aws]
    lines = [*off_aws, *not_ours]
    if drifted:
        # "Traditional change sets ... do not account for stack drift"; a deployment may "revert
        # critical out-of-band changes": https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/drift-aware-change-sets.html
        lines.append(
            f"drifted: {', '.join(drifted)}: changed outside CloudFormation. Put the change into {params_file} "
            f"(make templates && make review, commit, then make deploy ENV={env}), or undo it by hand. A change set does not show drift: a resource it updates may get "
            "the template's values back, one it leaves alone keeps the change"
        )
    if deleted:
        # "CloudFormation requires that update actions to a non-existing resource always throw a ResourceNotFoundException"
        # https://docs.aws.amazon.com/cloudformation-cli/latest/userguide/resource-type-troubleshooting.html
        gone = ", ".join(f"{layer} ({', '.join(ids)})" for layer, ids in deleted.items())
        lines.append(
            f"deleted outside CloudFormation: {gone}: an update that changes it fails, as CloudFormation updates only what exists; "
            f"one that replaces it makes a new one (a property that replaces it changed, such as a new NamePrefix for what carries "
            f"the name, with ALLOW_REPLACE=1), and so does the layer destroyed and deployed again: {again}"
        )
    if unchecked:
        lines.append(f"not fully checked: {', '.join(unchecked)} (see above; exit 2)")
    return lines


def last_drift(found) -> tuple | None:
    """(when, updated) of a stack whose last drift check (DescribeStacks DriftInformation) found drift: that
    check's time (LastCheckTimestamp: "Most recent time when a drift detection operation was initiated on
    the stack, or any of its individual resources that support drift detection") and, when the stack was updated after it (which may have undone the drift), that update's
    time, else None. None for a stack that did not drift at its last check.
    https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_StackDriftInformation.html"""
    information = found.get("DriftInformation") or {}
    if information.get("StackDriftStatus") != "DRIFTED":
        return None
    when, updated = information.get("LastCheckTimestamp"), found.get("LastUpdatedTime")
    return when, (updated if when and updated and updated > when else None)


def drift_left(found, layer) -> list[str]:
    """After an empty change set: the stack's last drift check found drift, which a deploy with
    nothing to change leaves as it is (CloudFormation compares the template with the stack's last
    template, not with the resources)."""
    drifted = last_drift(found)
    if drifted is None:
        return []
    if drifted[1]:
        return [
            f"note: {layer.stack} drifted at its last drift check, before its last update, which may have undone it: "
            f"make drift STACK={layer.name} ENV={layer.env} says whether it still drifts"
        ]
    return [
        f"note: {layer.stack} drifted at its last drift check, and a deploy with nothing to change leaves what was changed "
        f"outside CloudFormation as it is: make drift STACK={layer.name} ENV={layer.env} says what, and whether it still is"
    ]


def drift_warning(found, layer) -> list[str]:
    """Before a change set runs: the stack's last drift check found drift (last_drift); when the stack was
    updated since, that is said too."""
    drifted = last_drift(found)
    if drifted is None:
        return []
    when, updated = drifted
    at = f" (of the stack or one of its resources) at {when:%Y-%m-%d %H:%M:%S %Z}" if when else ""
    if updated:
        return [
            # a note, not a warning: the update since may have undone it (README: Drift)
            f"note: {layer.stack} drifted: its last drift check{at} found resources changed outside CloudFormation; the stack was "
            f"updated since ({updated:%Y-%m-%d %H:%M:%S %Z}), after that check, which may no longer hold. Check again: "
            f"make drift STACK={layer.name} ENV={layer.env}"
        ]
    return [
        f"warning: {layer.stack} drifted: its last drift check{at} found resources changed outside CloudFormation; "
        f"this change set was computed from the template, not from them. See what: make drift STACK={layer.name} ENV={layer.env}"
    ]


def test_pause(given: dict, env: str, on_aws: bool = True, rolling_back_from=None) -> list[str]:
    """What a release that waits for tests asks of its operator (TestPauseMinutes above 0). Off AWS (an
    emulator) nothing runs the release, and so nothing waits: make verify TEST_LISTENER=1 and make
    continue would find nothing to check or let go. A rollback (rolling_back_from: the image it leaves)
    waits too, and one left alone, or let go with ACTION=ROLLBACK, puts that image back."""
    minutes = int(given.get("TestPauseMinutes") or 0)
    if not minutes or given.get("DeploymentStrategy") not in TRAFFIC_SHIFTING:
        return []
    what = "rollback" if rolling_back_from else "release"
    if not on_aws:
        return [
            f"note: on AWS this {what} would wait up to {minutes} minutes for make verify ENV={env} TEST_LISTENER=1 and make continue "
            "(see README: Releases); the emulator runs no release, so nothing waits here and neither command has one to act on"
        ]
    left = (
        f"  without make continue, ECS rolls this rollback back after {minutes} minutes, and so does ACTION=ROLLBACK: "
        f"{printable(rolling_back_from, one_line=True)}, the image it leaves, runs again"
        if rolling_back_from
        else f"  without either, ECS rolls the release back after {minutes} minutes"
    )
    return [
        f"this {what} waits, once the test listener reaches its new tasks, for at most {minutes} minutes before production "
        "traffic moves; meanwhile, from an address in TestListenerCidr:",
        f"  make verify ENV={env} TEST_LISTENER=1     then     make continue ENV={env}     (or: make continue ENV={env} ACTION=ROLLBACK)",
        left,
    ]


def release_not_recorded(image_tag, env, history, rolled_back_from, replaced, why=None) -> str:
    """A release that is (or may become) live without its entry in the release history, and the
    rollback from it, which must then name the image. What ran before is the way back only from a
    release of a new image: not from a rollback (back to the image rolled back from), nor from a
    redeploy of the image that ran."""
    new_image = replaced and replaced != image_tag and not rolled_back_from
    # replaced: the stack's ImageTag before, anyone's to write who may update the stack
    back = f"make rollback ENV={env} TAG={printable(replaced, one_line=True) if new_image else '<image tag>'}"
    if rolled_back_from:
        back += f" (not {rolled_back_from}, which this rollback left: an image that ran before it)"
    elif replaced is None:  # a create: no image ran in this stack before it
        back += " (the image to run instead)"
    elif not new_image:
        back += " (an image that ran before it)"
    because = f" ({why})" if why else ""
    return (
        f"the {'rollback to' if rolled_back_from else 'release of'} {image_tag} is live but not recorded in the release history "
        f"(SSM parameter {history}){because}; "
        f"a rollback from it must name the image: {back}"
    )


ROLLBACK_MARK = "; a rollback from image "
REPAIR_MARK = "; a repair, without rollback triggers"
REPLACING_MARK = "; a release replacing image "


def change_set_description(layer, rolling_back_from=None, repair=False, replacing=None) -> str:
    """A change set's Description: a rollback's names the image it leaves, so that `make execute` of
    it, made by a run that stopped at its question, records it as the rollback it is; another release's
    names the image it replaces (replacing), the way back from it once it ran, which `make execute` of
    it after it ran unrecorded cannot read anywhere else (the stack then runs its image, and the history
    lacks it); a repair's says so, so that what follows its execution goes without rollback triggers
    too (whether AWS echoes its empty list of them is not documented). At most some 330 characters (an
    image tag has 128), of the 1,024 CreateChangeSet takes:
    https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_CreateChangeSet.html"""
    if rolling_back_from:
        return f"{layer.name} layer of {layer.env}, by scripts/deploy{ROLLBACK_MARK}{rolling_back_from}"
    mark = (REPAIR_MARK if repair else "") + (f"{REPLACING_MARK}{replacing}" if replacing else "")
    return f"{layer.name} layer of {layer.env}, by scripts/deploy{mark}"


def made_as_repair(description, layer) -> bool:
    """A change set of the layer's made without rollback triggers on purpose: REPAIR=1, or a rollback."""
    replacing = replaced_by_release(description, layer)
    return (
        description == change_set_description(layer, repair=True, replacing=replacing) or rolled_back_from(description, layer) is not None
    )


def rolled_back_from(description, layer) -> str | None:
    """The image a change set of the layer's leaves, as change_set_description wrote it for a rollback;
    None for another change set."""
    return image_after(description, change_set_description(layer) + ROLLBACK_MARK)


def replaced_by_release(description, layer) -> str | None:
    """The image a release's change set of the layer's replaces, as change_set_description wrote it
    (a repair's too); None for a rollback, a change set made before it said so, or one made by hand."""
    marks = (change_set_description(layer, repair=repair) + REPLACING_MARK for repair in (False, True))
    return next(filter(None, (image_after(description, mark) for mark in marks)), None)


def image_after(description, prefix) -> str | None:
    """The image tag a description holds after prefix, and nothing else; None when it does not."""
    image = (description or "").removeprefix(prefix)
    return image if image != description and re.fullmatch(IMAGE_TAG, image) else None


def tag_list(tags: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in tags.items())


def not_ours(stack, own_tags) -> str:
    """A stack of our name that this tool did not make (Deployer.foreign), where a command that reads
    meets it: it is not this tool's to compare, check or change."""
    return f"{stack}: not made by this tool (it lacks the tags its stacks carry: {tag_list(own_tags)}): deploy and destroy refuse it while it is there"


# moto has no ContinueUpdateRollback: a stack stuck UPDATE_ROLLBACK_FAILED there stays so.
SANDBOX_CANNOT_RECOVER = (
    "the sandbox cannot continue a rollback (moto has no ContinueUpdateRollback): start it afresh with "
    "make sandbox-stop && make sandbox, then make deploy YES=1"
)


def in_words(names: list[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    return " and ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else names)


# The states whose way on destroys the stack (and purges what it keeps), and those whose way on is RollbackStack.
DESTROYED_ON_THE_WAY = ("ROLLBACK_FAILED", "DELETE_FAILED")
ROLLED_BACK_BY_HAND = ("CREATE_FAILED", "UPDATE_FAILED")


def way_out(env, layer_name, status, tag="", disabled_in=None, purge_first=(), cli="aws") -> str:
    """What to do with a layer's stack in a state no change set starts from (ready() waits out the
    states in progress itself); tag: the run's TAG= the command carries (Deployer.service_tag); disabled_in:
    the params file whose enabled_layers leaves the layer out, where it does (no deploy creates it again);
    purge_first: the layers a destroy on the way leaves holding a name their create needs (purge.keep_names);
    cli: how an AWS CLI command printed starts (Deployer.cli)."""
    if disabled_in and status in ("ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "DELETE_FAILED"):
        return layer_not_enabled_way_out(env, layer_name, status, disabled_in)
    if status == "ROLLBACK_COMPLETE":
        return (
            "its first create failed and CloudFormation cannot update it; fix the cause, then "
            f"make deploy STACK={layer_name} ENV={env} RECREATE=1{tag}, which deletes it and creates it again"
        )
    if status == "UPDATE_ROLLBACK_FAILED":
        return recover_hint(env, layer_name)
    if status == "DELETE_FAILED":  # such a stack takes a deletion alone (API_DeleteStack.html: "stacks in the DELETE_FAILED state")
        # destroy refuses it while a layer that reads its outputs is deployed: those go first, and are deployed again
        return f"{what_failed(env, layer_name, status)}; free them, then {destroy_and_deploy_again(env, [layer_name], tag, purge_first)}"
    # ROLLBACK_FAILED: no deploy updates it, and the way on is its deletion, as the user guide's stack status codes say
    # of it (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/view-stack-events.html#cfn-console-view-stack-data-resources-status-codes);
    # make destroy deletes it (README, make destroy); no layer that reads its outputs was ever made
    if status == "ROLLBACK_FAILED":
        return (
            f"{what_failed(env, layer_name, status)}; free that, then make destroy STACK={layer_name} ENV={env}, then "
            f"{purge_step(env, purge_first)}make deploy STACK={layer_name} ENV={env}{tag}"
        )
    if status.endswith("_IN_PROGRESS"):
        return f"wait for it to settle (make status ENV={env})"
    if status in ROLLED_BACK_BY_HAND:
        # Only an operation run with its rollback turned off ends so, which this tool never asks for. RollbackStack
        # "Rolls back the specified stack to the last known stable state from CREATE_FAILED or UPDATE_FAILED stack
        # statuses": https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_RollbackStack.html
        return (
            f"an operation run outside this tool with its rollback turned off failed (make events STACK={layer_name} ENV={env} "
            f"names what failed); roll it back: {cli} cloudformation rollback-stack --stack-name {templates.stack_name(env, layer_name)}, "
            f"then make deploy STACK={layer_name} ENV={env}{tag}, which says what the rollback left"
        )
    return "resolve it in the CloudFormation console"


def layer_not_enabled_way_out(env, layer_name, status, params_file) -> str:
    """A stack left of a layer taken out of enabled_layers goes with make destroy, and no deploy follows (it is refused)."""
    not_enabled = f"(not in enabled_layers of {params_file}: no deploy creates it again)"
    if status == "ROLLBACK_COMPLETE":
        return f"its first create failed and CloudFormation cannot update it; make destroy STACK={layer_name} ENV={env} removes it {not_enabled}"
    said = what_failed(env, layer_name, status)
    if status == "ROLLBACK_FAILED":
        return f"{said}; free that, then make destroy STACK={layer_name} ENV={env} removes it {not_enabled}"
    if env == SANDBOX_ENV and layer_name in SANDBOX_CANNOT_REHEARSE:  # what failed there is the emulator's gap
        return f"{said}; the sandbox cannot delete it ({SANDBOX_CANNOT_REHEARSE[layer_name]}): make sandbox-stop && make sandbox starts the sandbox empty"
    return f"{said}; free them, then make destroy STACK={layer_name} ENV={env} again {not_enabled}"


def what_failed(env, layer_name, status) -> str:
    """What a ROLLBACK_FAILED or DELETE_FAILED stack went through, and where the resources that failed are named."""
    if status == "ROLLBACK_FAILED":
        return (
            f"its first create failed and its rollback could not delete everything (make events STACK={layer_name} ENV={env} names "
            "what failed)"
        )
    return f"its deletion stopped half way (make events STACK={layer_name} ENV={env} names the resources that failed)"


def recover_hint(env, layer_name) -> str:
    if env == SANDBOX_ENV:
        return f"a rollback could not finish; {SANDBOX_CANNOT_RECOVER}"
    return (
        "a rollback could not finish and the stack is stuck until it does; "
        f"fix the resource named in the failed events, then: make recover STACK={layer_name} ENV={env}"
    )


def destroy_and_deploy_again(env, layer_names, tag="", purge_first=()) -> str:
    """How to destroy layers and deploy them again, once each: the layers that read their outputs, directly or
    through another, go first (destroy refuses one while one is deployed); tag: the TAG= the deploy
    carries where the service is among them (Deployer.destroy_and_deploy_again); purge_first: purge_step's."""
    order = templates.destroy_order(*layer_names)
    if len(order) == 1:
        return f"make destroy STACK={order[0]} ENV={env}, then {purge_step(env, purge_first)}make deploy STACK={order[0]} ENV={env}"
    them = "it and the layers that read its outputs" if len(layer_names) == 1 else "them and the layers that read their outputs"
    return (
        f"destroy {them}: make destroy ENV={env} STACK=<layer> for {', '.join(order)}, "
        f"in that order (one not deployed says so), then {purge_step(env, purge_first)}make deploy ENV={env}{tag}"
    )


def purge_step(env, layer_names) -> str:
    """The make purge between a destroy and the deploy that creates the layers again, for those whose deleted stack keeps
    a resource under a name their create gives (purge.keep_names): the deploy is refused while it holds it."""
    if not layer_names:
        return ""
    which = f"STACK={layer_names[0]}" if len(layer_names) == 1 else f"STACK=<layer> for {', '.join(layer_names)}"
    return (
        f"make purge ENV={env} {which} (it frees the names the create gives by deleting what the destroy kept, the logs "
        "included, and schedules their keys' deletion: read or export the logs first; or set a new NamePrefix instead), then "
    )
