"""`make diff`: a layer's template and values against its deployed stack's, said line by line, with
what a deploy would and would not do about the difference."""

import dataclasses
import json
import shlex
from dataclasses import dataclass

from scripts.deploy import guards, purge, text
from scripts.deploy.deployer import Deployer
from scripts.deploy.layer import template_problem
from scripts.deploy.policies import ALLOW_ALL_POLICY
from scripts.deploy.reading import reason_of
from scripts.deploy.status import UPDATABLE
from scripts.deploy.text import parameter_values
from templates.errors import printable, untrusted_json
from templates.inputs import KEEP_RUNNING_COUNT, WIRED
from templates.resolver import calls_a_macro, changes_nothing, same_values

# Why a deploy would not apply a difference make diff found (Compared.held_back)
POLICY_ONLY = "only the stack policy differs"  # a deploy sets it only with a change to the stack
NOT_OURS = "not ours"  # a stack of our name this tool did not make: a deploy refuses it
NOT_COMPARED = "not compared"  # in no settled state: a failed create, an update under way
REFUSED = "refused"  # a deploy would be refused: a resource replaced under the name it keeps


@dataclass(frozen=True)
class Compared:
    differs: bool
    held_back: str | None = None  # why a deploy would not apply the difference, if it would not
    replaces: bool = False  # it replaces or removes stateful resources: a deploy needs ALLOW_REPLACE=1 (once it is not held back)
    outputs_changed: frozenset = frozenset()  # the outputs its deploy certainly changes, which the layers reading them take then
    outputs_removed: frozenset = frozenset()  # those of them it takes away: their readers take the input's default then


def policy_difference(deployer, layer) -> tuple[list[str], bool]:
    """The stack policy set on the stack, when it is not the one output/ gives the layer (a layer
    without one: none, or one that allows every update, which is what AWS makes of none): set
    outside this tool (SetStackPolicy is anyone's who may call it), which a deploy with nothing else
    to change leaves as it is, or left relaxed by a stopped --allow-replace run. CloudFormation's
    drift detection does not look at stack policies. For a deployed stack of ours (diff looks first).
    Returns its lines, and whether a deploy puts it back (a relaxed one) or only the printed command.
    Without a policy "all update actions are allowed on all resources", and the API has no call that
    removes one (SetStackPolicy and GetStackPolicy only): allow-all stands for none.
    https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/protect-stack-resources.html"""
    body = deployer.cf.get_stack_policy(StackName=layer.stack).get("StackPolicyBody")
    deployed = untrusted_json(body) if body else None
    if deployed == layer.policy or (not layer.policy and deployed in (None, ALLOW_ALL_POLICY)):
        return [], False
    if layer.policy and deployed == ALLOW_ALL_POLICY:
        if not deployer.relaxed_marks.was_read:
            deployer.relaxed_marks.read(no_answer_is_a_note=True)
        if layer.name in deployer.relaxed_marks:
            return [
                f"{layer.stack}: its stack policy is relaxed (every update allowed) by a stopped --allow-replace run: "
                f"the next deploy of the layer puts it back (make deploy STACK={layer.name} ENV={deployer.env})"
            ], True
    command = (
        f"  {deployer.cli} cloudformation set-stack-policy --stack-name {layer.stack} "
        f"--stack-policy-body {shlex.quote(json.dumps(layer.policy or ALLOW_ALL_POLICY))}"
    )
    if not layer.policy:
        return [
            f"{layer.stack}: a stack policy is set on it outside this tool, and {layer.configuration} gives it none: "
            "an update it denies fails. A deploy never sets one for this layer; to allow every update now:",
            command,
        ], False
    now = "none is set" if not body else "another is set, not by this tool"
    if not (deployer.describe(layer.stack) or {}).get("EnableTerminationProtection"):
        # a deploy with nothing else to change protects the stack, its policy first (deploy, protect)
        return [
            f"{layer.stack}: its stack policy is not the one {layer.configuration} gives it: {now}, and its termination protection "
            "is off (a run stopped before it set them, or a change by hand): the next deploy of the layer sets both, even with "
            f"nothing else to change (make deploy STACK={layer.name} ENV={deployer.env})"
        ], True
    return [
        f"{layer.stack}: its stack policy is not the one {layer.configuration} gives it: {now}. "
        "A deploy sets it only with a change to the stack; to set it now:",
        command,
    ], False


def compare(deployer, layer, image_tag=None, reads_changing=False, wired_ahead=None) -> Compared:
    """Say how the layer differs from its stack. reads_changing: outputs it reads change in the run before it
    (outputs_read_changing), so that a layer as deployed is not said to be the same (reads_changed_outputs says why);
    wired_ahead: the values it takes where those outputs go (read_after_removals)."""
    if not deployer.has_stack(layer.stack):
        deployer.say(f"{layer.stack}: not deployed; deploying creates everything in {layer.source}")
        return Compared(True)
    if deployer.foreign(found := deployer.describe(layer.stack)):
        deployer.say(text.not_ours(layer.stack, deployer.own_tags(found)))
        return Compared(True, NOT_OURS)
    # a failed create holds nothing; one in progress or stuck is no settled state to compare with
    if found["StackStatus"] not in UPDATABLE:
        deployer.say(
            f"{layer.stack}: {found['StackStatus']}{reason_of(found)}: not compared; {deployer.way_out(layer.name, found['StackStatus'])}"
        )
        return Compared(True, NOT_COMPARED)
    deployed = deployer.deployed_template(layer.stack)
    wanted = deployer.parameters(layer, deployer.wired_parameters(layer) | (wired_ahead or {}), image_tag)
    lines = text.template_diff(layer, found, deployed, wanted, deployer.colour)
    differs = bool(lines)
    if lines and not text.template_diff(layer, found, deployed, wanted, deployable_only=True):
        # "During a stack update, you cannot update the Metadata section by itself. You can update it only
        # when you include changes that add, modify, or delete resources." A deploy says "no changes";
        # so for parameter declarations (text.deployable_part).
        # https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/metadata-section-structure.html
        lines = [
            f"{layer.stack}: same as deployed, but for its Metadata, Description or parameter declarations, which CloudFormation takes "
            "only with a change to the resources: the next deploy that changes one carries them"
        ]
        differs = False
    elif lines and deployer.stack_tags(found) == layer.tags:  # changes_nothing judges no Transform nor shape it cannot read
        template = json.loads(layer.template)
        if changes_nothing(deployed, parameter_values(found), template, wanted, deployer.cf.meta.region_name):
            # Written otherwise (Fn::Sub for Fn::Join) to the same values: a deploy says "no changes"
            # (templates/resolver.py changes_nothing), and the template shown differing would differ for ever.
            declarations = any(not same_values(deployed.get(part), template.get(part)) for part in text.UNDEPLOYABLE_ALONE)
            lines = [
                f"{layer.stack}: same as deployed, but for expressions written otherwise that give the same values"
                + (" (and its Metadata, Description or parameter declarations)" * declarations)
                + ", which CloudFormation takes only with a change to the resources: the next deploy that changes one carries them"
            ]
            differs = False
    if not found.get("EnableTerminationProtection"):  # a deploy of the layer turns it back on, even with nothing else to change
        lines = (lines or [f"{layer.stack}: template and values as deployed, but"]) + [
            "  termination protection is off (a run stopped before setting it, or a change by hand): "
            f"make deploy STACK={layer.name} ENV={deployer.env} turns it back on"
        ]
        differs = True
    policy, by_deploy = policy_difference(deployer, layer)
    held_back = POLICY_ONLY if policy and not differs and not by_deploy else None
    same = f"{layer.stack}: " + (
        "template and values as deployed, but what it reads changes (note below)" if reads_changing else "same as deployed"
    )
    lines, differs = (lines + policy) or [same], differs or bool(policy)
    if not differs:  # what a drift check found, no template comparison shows (DescribeStacks' DriftInformation: no call)
        lines += [f"  {line}" for line in text.drift_left(found, layer)]
    # The looks ahead below read the deployed template with the tool's evaluator: one changed outside the tool into what
    # it does not read (another shape of a section; a Transform or Fn::Transform, which GetTemplate's Original stage gives untransformed:
    # https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_GetTemplate.html) is not looked into.
    looks_ahead = differs and template_problem(deployed) is None and not calls_a_macro(deployed)
    if differs and not looks_ahead:
        lines.append(
            "  note: its template as deployed has a Transform or a shape this tool does not read (changed outside it): what make "
            f"deploy would refuse or replace for the template's changes is not looked at here; make changeset STACK={layer.name} ENV={deployer.env} shows "
            "what CloudFormation would change"
        )
    same_name = guards.named_replacements_ahead(deployer, layer, deployed, parameter_values(found), wanted) if looks_ahead else []
    if same_name:
        held_back = REFUSED
        lines.append(
            f"  note: make deploy refuses this: CloudFormation cannot replace a resource under the name it has: {', '.join(same_name)}; "
            f"give it a new name in the same change (a new NamePrefix renames them all), or {deployer.destroy_and_deploy_again(layer.name)}"
        )
    retyped = guards.type_changes_ahead(deployer, layer, deployed, parameter_values(found), wanted) if looks_ahead else []
    if retyped:
        held_back = REFUSED
        lines.append(
            f"  note: make deploy fails at its change set: {guards.TYPE_CHANGE_WAY}: {', '.join(retyped)}; "
            f"{deployer.destroy_and_deploy_again(layer.name)}"
        )
    stateful = guards.stateful_replacements_ahead(deployer, layer, deployed, parameter_values(found), wanted) if looks_ahead else []
    if stateful:  # with a refusal too: once the refusal's cause is gone, the deploy needs ALLOW_REPLACE=1 as well
        lines.append(
            "  note: make deploy refuses this without ALLOW_REPLACE=1: it replaces or removes what holds data or a name others point at: "
            + ", ".join(f"{logical_id} ({kind}, {what})" for logical_id, kind, what in stateful)
        )
    lines += resources_added_and_removed(deployer, layer, deployed, parameter_values(found), wanted) if looks_ahead else []
    in_use = guards.rules_in_use_removed_ahead(deployer, layer, deployed, parameter_values(found), wanted) if looks_ahead else None
    if in_use:
        held_back = REFUSED
        lines.append(f"  note: make deploy refuses this: it {in_use[0]}. {in_use[1]}")
    load_balancers = [logical_id for logical_id, kind, _ in stateful if kind == "AWS::ElasticLoadBalancingV2::LoadBalancer"]
    protected = purge.deletion_protected(deployer, [layer.stack]) if load_balancers else {}
    if protected:  # refused with ALLOW_REPLACE=1 too
        held_back = REFUSED
        lines.append(
            f"  note: make deploy refuses this even with ALLOW_REPLACE=1: {', '.join(load_balancers)} {protected[layer.stack].said}, "
            f"which CloudFormation cannot delete; {guards.protection_off_first(deployer, layer, protected[layer.stack])}"
        )
    notes = []  # a name that could not be checked, said with the layer's lines, not above them
    taken = (
        guards.log_groups_taken_ahead(deployer, layer, found, deployed, wanted, say=lambda *said: notes.extend(said)) if looks_ahead else []
    )
    reset = guards.traffic_reset_ahead(deployer, layer, wanted, say=lambda *said: notes.extend(said)) if differs else None
    if reset:
        held_back = REFUSED
        lines.append(f"  note: make deploy refuses this: it {reset}")
    lines += [f"  {note.strip()}" for note in notes]
    if taken:
        held_back = REFUSED
        lines.append(
            "  note: make deploy refuses this: it makes a log group under a name another one holds:"
            + guards.each_on_its_line(taken).replace("\n", "\n  ")
            + f"\n  {guards.FREE_THE_NAMES}"
        )
    running_count, new_count = parameter_values(found).get("DesiredCount"), wanted.get("DesiredCount")
    if differs and None not in (running_count, new_count) and running_count != new_count:
        lines += text.desired_count_note(wanted, "the new DesiredCount above")
    if differs and parameter_values(found).get(KEEP_RUNNING_COUNT) == "false" and wanted.get(KEEP_RUNNING_COUNT) == "true":
        lines.append(
            f"  note: {KEEP_RUNNING_COUNT} false: the step after the service's create (or replacement) that leaves the task count "
            f"to auto-scaling did not run (a run stopped before it); make deploy STACK={layer.name} ENV={deployer.env} runs it"
        )
    running, configured = parameter_values(found).get("ImageTag"), layer.parameters.get("ImageTag")
    if image_tag is None and configured is not None and running not in (None, configured):
        lines.append(
            f"  image {printable(running, one_line=True)} runs: ImageTag {configured} of {deployer.params_file} counts only for a first create "
            f"(a deploy keeps the running image; make deploy STACK={layer.name} ENV={deployer.env} TAG=<tag> releases another)"
        )
    deployer.say(*lines)
    empty = (frozenset(), frozenset())
    changing, removed = guards.outputs_changed_ahead(deployer, layer, deployed, parameter_values(found), wanted) if looks_ahead else empty
    return Compared(differs, held_back, replaces=bool(stateful), outputs_changed=changing, outputs_removed=removed)


def resources_added_and_removed(deployer, layer, deployed: dict, running: dict, wanted: dict) -> list[str]:
    """The resources a deploy adds and removes, by the template or by its conditions on the new values: a parameter's
    line alone (DeploymentStrategy ROLLING -> BLUE_GREEN) does not tell a reviewer that a listener, its rules and an
    ingress rule come with it. A condition decided only at deploy time counts as true, in both (guards.exists)."""
    template, before, after = guards.deployed_and_new(deployer, layer, deployed, running, wanted)
    old, new = deployed.get("Resources") or {}, template["Resources"]
    added = [
        f"{name} ({r['Type']})" for name, r in sorted(new.items()) if guards.exists(after, r) and not guards.exists(before, old.get(name))
    ]
    removed = [
        f"{name} ({r['Type']})" for name, r in sorted(old.items()) if guards.exists(before, r) and not guards.exists(after, new.get(name))
    ]
    return [f"  a deploy {what}: {', '.join(names)}" for what, names in (("adds", added), ("removes", removed)) if names]


def outputs_read_changing(layer, compared: dict) -> dict:
    """upstream -> the outputs the layer reads from it that the upstream's deploy before it changes to a value not
    known before deploy (compared: the run's layers before it); one it takes away is read_after_removals'."""
    changed = {}
    for upstream, output in sorted(Deployer.wired(layer).values()):
        if upstream in compared and output in compared[upstream].outputs_changed - compared[upstream].outputs_removed:
            changed.setdefault(upstream, []).append(output)
    return changed


def read_after_removals(layer, compared: dict) -> dict:
    """parameter -> the value the layer takes where the upstream's deploy before it takes away the output it reads: the
    input's default, as Deployer.wired_parameters gives it then. Compared with the current output, back to ROLLING
    showed the service's listener-rule ARNs changing to the ones alb's deploy removes, and the deploy found no change."""
    return {
        parameter: WIRED[parameter].default
        for parameter, (upstream, output) in Deployer.wired(layer).items()
        if upstream in compared and output in compared[upstream].outputs_removed and WIRED[parameter].default is not None
    }


def reads_changed_outputs(deployer, layer, changed: dict, each: Compared) -> Compared:
    """A layer compared the same as deployed, or a difference of its own, that reads outputs an upstream's deploy
    before it changes (changed: outputs_read_changing): the deploy of the run updates it too, said."""
    # a layer not deployed is created with what it reads then; a stack policy alone: the update carries it now
    if not changed or not deployer.has_stack(layer.stack) or each.held_back not in (None, POLICY_ONLY):
        return each
    deployer.say(
        f"  note: {layer.stack} reads "
        + "; ".join(f"{', '.join(outputs)} from {upstream}" for upstream, outputs in changed.items())
        + f", which {text.in_words(list(changed))}'s deploy before it changes: a deploy of these layers updates {layer.name} too"
    )
    return dataclasses.replace(each, differs=True, held_back=None)
