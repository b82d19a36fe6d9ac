"""After an update, and before the question that allows one: what the layers that read the updated
layer's outputs or share its values keep until they are deployed, and what a replacement left in the
account, each said with the command that follows."""

import json

import templates
from scripts.deploy import guards, purge, text
from scripts.deploy.aws import AWS_ERRORS, error_code
from scripts.deploy.failure import Failure
from scripts.deploy.layer import load_layer
from scripts.deploy.text import output_values
from templates import template_reads

# The advice after an update other layers read: the change that made it (a new NamePrefix) may replace
# their stateful resources too, which their deploy then refuses without ALLOW_REPLACE=1.
NEEDS_ALLOW_REPLACE = "with ALLOW_REPLACE=1 where their own change sets replace stateful resources, as a new NamePrefix does"


def kept_replacements(deployer, layer, change_set):
    """A resource replaced under UpdateReplacePolicy Retain leaves the old one in the account, out
    of every stack (destroy and purge never see it): named, with the command that frees it.
    https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-attribute-updatereplacepolicy.html"""
    candidates = [
        rc
        for rc in (change.get("ResourceChange", {}) for change in change_set.get("Changes", []))
        if text.replaced(rc) and rc.get("PhysicalResourceId") and rc["LogicalResourceId"] in layer.kept_when_replaced
    ]
    if not candidates:
        return
    # "Conditional" may not have replaced it: only a resource whose physical id changed was.
    try:
        # the first 100 resources only: tests/test_layers.py keeps every layer below that
        resources = deployer.cf.describe_stack_resources(StackName=layer.stack)["StackResources"]
    except AWS_ERRORS as error:  # only a note: the update stands, and what follows it must still run
        resources = []
        deployer.say(f"  note: the stack's resources could not be read ({type(error).__name__}): each below may not have been replaced")
    now = {r["LogicalResourceId"]: r.get("PhysicalResourceId") for r in resources}
    for rc in candidates:
        old = rc["PhysicalResourceId"]
        if now.get(rc["LogicalResourceId"]) != old:
            free = purge.free_command(rc["ResourceType"], old, deployer.cli)
            deployer.say(
                f"  {rc['LogicalResourceId']} ({rc['ResourceType']}) was replaced; the old one stays in the account, in no stack "
                f"(UpdateReplacePolicy Retain): {old}" + (f"; once it is not needed: {free}" if free else "")
            )


def readers_of_replaced(deployer, layer, change_set):
    """Before the confirmation: an update that replaces resources whose outputs deployed layers of
    later runs read (a new load balancer's target groups) leaves them on the old ones, which the
    update deletes at its end (or, kept on replace, leaves in no stack), until they are deployed.
    Said ahead, with how to avoid the gap.
    Only a warning: a stack that cannot be read is said, and the run goes on."""
    replaced = {rc["LogicalResourceId"] for rc in (c.get("ResourceChange", {}) for c in change_set.get("Changes", [])) if text.replaced(rc)}
    outputs = json.loads(layer.template).get("Outputs", {})
    read = {name: template_reads.references(output["Value"]) & replaced for name, output in outputs.items()}
    stale = deployed_readers(deployer, layer, {name for name, resources in read.items() if resources})
    if stale:
        old = set().union(*(read[name] for names in stale.values() for name in names))
        deleted, kept = sorted(old - layer.kept_when_replaced), sorted(old & layer.kept_when_replaced)
        fate = "; ".join(
            [f"the update deletes the old {', '.join(deleted)} at its end"] * bool(deleted)
            + [f"the old {', '.join(kept)} {'is' if len(kept) == 1 else 'are'} kept on replace, in no stack"] * bool(kept)
        )
        deployer.say(
            f"warning: this update replaces {', '.join(sorted(replaced))}; "
            + "; ".join(f"{reader} (reads {', '.join(sorted(names))})" for reader, names in stale.items())
            + f" keep the old values until deployed ({fate}): deploy them right after "
            f"(make deploy ENV={deployer.env}, {NEEDS_ALLOW_REPLACE}), or every layer in one run (make deploy ENV={deployer.env} ALLOW_REPLACE=1)"
        )


def deployed_readers(deployer, layer, outputs) -> dict[str, set]:
    """Reader layer -> which of the layer's outputs it reads, for the deployed layers wired from
    them that this run does not deploy after it. Whether they are deployed cannot be read: said
    (a note), and none returned."""
    later = {each.name for each in guards.layers_ahead(deployer, layer)[1:]}
    reads = {}
    for (reader, _), (upstream, output) in templates.WIRING.items():
        if upstream == layer.name and output in outputs and reader not in later:
            reads.setdefault(reader, set()).add(output)
    if not reads:
        return {}
    try:
        deployed = set(deployer.consumers(layer.name))
    except AWS_ERRORS as error:
        deployer.say(
            f"  note: whether the layers reading {layer.stack}'s outputs ({', '.join(sorted(reads))}) are deployed "
            f"could not be read ({error_code(error)})"
        )
        return {}
    return {reader: names for reader, names in sorted(reads.items()) if templates.stack_name(deployer.env, reader) in deployed}


def downstream_to_deploy(deployer, layer, outputs_before, found):
    """An update that changed outputs other layers read (a replaced load balancer's ARN): the deployed
    layers that read them keep the old values until they are deployed, which this run does not do.
    Only a note: a stack that cannot be read is said, and the run goes on."""
    after = output_values(found)
    changed = {key for key in outputs_before.keys() | after.keys() if outputs_before.get(key) != after.get(key)}
    stale = deployed_readers(deployer, layer, changed)
    enabled = [reader for reader in stale if reader in deployer.enabled_layers]
    disabled = [reader for reader in stale if reader not in deployer.enabled_layers]
    if enabled:
        deployer.say(
            "note: this update changed values that deployed layers read, which keep the old ones until deployed: "
            + "; ".join(f"{reader} (reads {', '.join(sorted(stale[reader]))})" for reader in enabled)
            + f". make deploy ENV={deployer.env} deploys them (the layers with nothing to change say no changes; {NEEDS_ALLOW_REPLACE})"
        )
    for reader in disabled:
        deployer.say(
            f"note: {templates.stack_name(deployer.env, reader)} reads {', '.join(sorted(stale[reader]))}, which this update changed, and "
            f"keeps the old values: its layer is not in enabled_layers of {deployer.params_file}, so no deploy updates it. "
            f"Enable it and make deploy ENV={deployer.env}, or remove it: make destroy STACK={reader} ENV={deployer.env}"
        )


def shared_values_to_deploy(deployer, layer, before, given):
    """An update of params values other layers take too (MaxCapacity: scaling and alarms) in a run
    that does not deploy them: each enabled one whose settled stack (UPDATABLE, ours) still has an
    old value is named; one still changing or failed is left to its own deploy, which says so. Only
    a note: a stack that cannot be read is said, and the run goes on."""
    # a value the change set leaves out (UsePreviousValue: ParameterValue is optional in the API model) is the previous one
    changed = {name for name in layer.parameters if given.get(name) is not None and before.get(name) != given.get(name)}
    in_run = {each.name for each in deployer.run_layers} | {layer.name}
    stale, not_in_output = {}, {}
    for name in [each for each in deployer.enabled_layers if each not in in_run]:
        try:
            taken = load_layer(deployer.env, name, deployer.output_dir).parameters
            shared = sorted(changed & set(taken))
            settled = deployer.settled_values(templates.stack_name(deployer.env, name)) if shared else {}
        except Failure:
            continue  # its files are not current: the next deploy of it says so
        except AWS_ERRORS as error:
            deployer.say(f"  note: whether {name}'s stack still has the old {', '.join(shared)} could not be read ({error_code(error)})")
            continue
        for key in [key for key in shared if settled and settled.get(key) != given.get(key)]:
            # A deploy gives it output/'s value: not this run's after make execute of a change set made with other values.
            (stale if taken[key] == given.get(key) else not_in_output).setdefault(name, []).append(key)
    if stale:
        deployer.say(
            "note: this update changed values other layers take too, whose stacks keep the old ones until deployed: "
            + "; ".join(f"{name} ({', '.join(keys)})" for name, keys in stale.items())
            + f". make deploy ENV={deployer.env} deploys them (the layers with nothing to change say no changes; {NEEDS_ALLOW_REPLACE})"
        )
    if not_in_output:
        keys = sorted({key for keys in not_in_output.values() for key in keys})
        now, configured = (", ".join(f"{key} {values[key]}" for key in keys) for values in (given, layer.parameters))
        deployer.say(
            f"note: {layer.name} now has {now}, from the change set, where {layer.configuration} holds {configured}; "
            "other layers take the same values and keep their own until deployed: "
            + "; ".join(f"{name} ({', '.join(keys)})" for name, keys in not_in_output.items())
            + f". To have the change set's everywhere, set them in {deployer.params_file}, make templates, then make deploy "
            f"ENV={deployer.env}; make deploy ENV={deployer.env} as things are puts {layer.name} back to {configured}"
        )
