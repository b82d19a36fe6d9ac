"""Reading an environment's stacks for the Deployer: each once a run (DescribeStacks), whether it is ours (its tags;
in a run that changes stacks, describe refuses one of our name this tool did not make), its template, outputs and
what its deletion retains, and the values a layer takes from the layers it reads."""

import json

from botocore.exceptions import ClientError

import templates
from scripts.deploy import text
from scripts.deploy.aws import AWS_ERRORS, checked_pages, error_code, not_found
from scripts.deploy.failure import Failure, UpstreamsNotDeployed
from scripts.deploy.layer import Layer, layer_of, template_problem
from scripts.deploy.status import EMPTY_STATUSES, UPDATABLE, is_deployed
from scripts.deploy.text import output_values, parameter_values
from templates.errors import printable
from templates.generation import stack_policy
from templates.inputs import WIRED


def change_set_summaries(cf, stack) -> list[dict]:
    """ListChangeSets of the stack, every page; a summary's fields are all optional in the API's model, read so."""
    pages = checked_pages(cf.get_paginator("list_change_sets").paginate(StackName=stack), "ListChangeSets")
    return [summary for page in pages for summary in page.get("Summaries", [])]


def reason_of(found) -> str:
    """A stack's status reason, in parentheses, when it has one."""
    reason = found.get("StackStatusReason")
    return f" ({printable(reason, one_line=True)})" if reason else ""


class StackReading:
    """Part of the Deployer (deployer.py, whose __init__ sets the state every part shares): its reads of the environment's
    stacks, DescribeStacks once a stack a run (self.stacks)."""

    def describe(self, stack, refuse_foreign=True):
        """The stack's DescribeStacks entry, or None when there is none. In a run that changes stacks,
        one of our name that is not ours (foreign) is refused before anything is done to it."""
        if stack not in self.stacks:
            try:
                self.stacks[stack] = self.cf.describe_stacks(StackName=stack)["Stacks"][0]
            except ClientError as error:
                if not not_found(error):
                    raise
                self.stacks[stack] = None
            if self.stacks[stack] and self.stacks[stack]["StackStatus"] == "REVIEW_IN_PROGRESS":
                self.waiting.add(stack)
        found = self.stacks[stack]
        if found and self.changes and refuse_foreign and self.untagged_under_review(found):
            self.refuse_others_under_review(found)
        if found and self.changes and refuse_foreign and self.foreign(found):
            raise Failure(
                f"error: {stack} exists but was not made by this tool: its tags are not "
                f"{text.tag_list(self.own_tags(found))}, which every stack it makes carries; "
                f"{self.nothing_changed(templates.layer_of(self.env, stack))}. If it is ours (its tags changed by hand), set those tags on it (console: Update stack, "
                "Use current template, Tags) and run this again; otherwise remove or rename it yourself"
            )
        return found

    def refuse_others_under_review(self, found) -> None:
        """Refuse an untagged stack under review holding a change set that is not ours, or whose change sets cannot
        be read (others_change_sets)."""
        stack = found["StackName"]
        theirs, unread = self.others_change_sets(found)
        if theirs:
            raise Failure(
                f"error: {stack} exists, empty and under review, with change sets this tool did not make (their tags are "
                f"not {text.tag_list(self.own_tags(found))}, which every change set it makes carries): {', '.join(theirs)}; "
                f"{self.nothing_changed(templates.layer_of(self.env, stack))}. Remove them, or the stack, yourself once their owner agrees"
            )
        if unread:  # a change or a deletion of it would end change sets that may be someone else's
            raise Failure(
                f"error: {stack} exists, empty and under review, without tags: whose it is, its change sets' tags say, and "
                f"they could not be read ({unread}); {self.nothing_changed(templates.layer_of(self.env, stack))}. Run this again; if it goes on, see that the "
                "credentials may call cloudformation:ListChangeSets and DescribeChangeSet"
            )

    def read_again_if_not_ours_yet(self, stack) -> None:
        """Forget a read of the stack that found none, or an empty one under review without tags, for it to be read
        again: someone may have made a change set of theirs under its name since (REVIEW_IN_PROGRESS, refused
        then), which a change set of ours executed would end, and an undo of ours delete. One of ours is read
        once a run."""
        found = self.stacks.get(stack, ())
        if found is None or (found and self.untagged_under_review(found)):
            del self.stacks[stack]
            self.others_under_review.pop((found or {}).get("StackId"), None)
            self.waiting.discard(stack)  # read again: waiting again if it still is

    def own_tags(self, found) -> dict:
        """The tags the stack would carry if this tool made it (templates.own_tags)."""
        return templates.own_tags(self.env, templates.layer_of(self.env, found["StackName"]))

    def foreign(self, found) -> bool:
        """A stack of our name without the tags every stack of ours carries: someone else's, not to
        be changed or deleted. A REVIEW_IN_PROGRESS one without tags is the empty stack a CREATE change
        set makes (ours too, if it shows no tags yet), which make deploy creates into: someone else's
        only while it holds a change set this tool did not make (others_change_sets)."""
        if self.untagged_under_review(found):
            return bool(self.others_change_sets(found)[0])
        return not self.own_tags(found).items() <= self.stack_tags(found).items()

    def untagged_under_review(self, found) -> bool:
        return found["StackStatus"] == "REVIEW_IN_PROGRESS" and not self.stack_tags(found)

    def others_change_sets(self, found) -> tuple[list[str], str | None]:
        """The change sets on an untagged stack under review that do not carry this tool's tags, which
        every one it makes does (CreateChangeSet's Tags, which DescribeChangeSet gives back:
        https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_DescribeChangeSet.html):
        executing ours or deleting the stack would end someone else's. And the error code when they could
        not all be read (None when they were): a command that changes the stack refuses it then (describe),
        one that reads it shows it as before. One deleted since it was listed is no one's."""
        if found["StackId"] not in self.others_under_review:
            wanted, others, unread = self.own_tags(found), [], None
            try:
                for summary in change_set_summaries(self.cf, found["StackId"]):
                    if "ChangeSetId" not in summary:  # optional in the API's model: one that cannot be read is not taken for ours
                        others.append(summary.get("ChangeSetName", "(unnamed)"))
                        continue
                    try:
                        tags = self.stack_tags(self.cf.describe_change_set(ChangeSetName=summary["ChangeSetId"]))
                    except ClientError as error:
                        if not not_found(error):
                            raise
                        continue
                    if not wanted.items() <= tags.items():
                        others.append(summary.get("ChangeSetName", "(unnamed)"))
            except AWS_ERRORS as error:
                # a stack deleted since it was read has no change sets: what follows finds it gone
                unread = None if isinstance(error, ClientError) and not_found(error) else error_code(error)
            self.others_under_review[found["StackId"]] = (others, unread)
        return self.others_under_review[found["StackId"]]

    def settled_values(self, stack) -> dict:
        """The parameter values a stack of ours stands with: those of one that has settled and works
        (UPDATABLE); none for one not deployed, an abandoned or failed create (which RECREATE=1 deletes),
        one still changing (its values may be the old or the new ones: AWS does not say), or a stack of
        our name that is not ours (foreign: a command that changes it refuses it where it reads it)."""
        found = self.describe(stack, refuse_foreign=False)
        return parameter_values(found) if found and found["StackStatus"] in UPDATABLE and not self.foreign(found) else {}

    def is_create(self, stack) -> bool:
        """A deploy of the stack creates it, and it holds no resource: there is none, an empty one under
        review (REVIEW_IN_PROGRESS), or a failed first create (ROLLBACK_COMPLETE: its rollback deleted
        what it made, and RECREATE=1 deletes it and creates it again)."""
        found = self.describe(stack, refuse_foreign=False)
        return found is None or found["StackStatus"] in EMPTY_STATUSES

    def left_alone(self, layer_name, named) -> bool:
        """Someone else's stack in a layer this environment does not use, which a destroy or purge of
        every layer leaves alone, saying so. named (in enabled_layers, or by STACK=): refused instead."""
        stack = templates.stack_name(self.env, layer_name)
        found = self.describe(stack, refuse_foreign=named)
        if found is None or named or not self.foreign(found):
            return False
        self.say(f"{stack} was not made by this tool, and {layer_name} is not in enabled_layers of {self.params_file}: left alone")
        return True

    def has_stack(self, stack) -> bool:
        """Deployed: exists and is not an abandoned create (REVIEW_IN_PROGRESS)."""
        return is_deployed(self.describe(stack))

    def deployed_template(self, stack, change_set=None) -> dict:
        """The stack's template as submitted (or a change set's: its ARN). boto3 parses a JSON body
        itself; a YAML one (someone updated the stack from the console or the CLI with YAML) comes as
        text, read with cfn-flip, which turns the short forms (!Ref) into the long ones.
        https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_GetTemplate.html"""
        which = {"ChangeSetName": change_set} if change_set else {}
        body = self.cf.get_template(StackName=stack, TemplateStage="Original", **which)["TemplateBody"]
        if not isinstance(body, str):
            return body
        import cfn_flip
        import yaml

        try:
            # cfn-flip reads YAML 1.1: an unquoted AWSTemplateFormatVersion is a date. As JSON text, as
            # a JSON template has it, it compares and prints like one.
            template = json.loads(json.dumps(cfn_flip.load(body)[0], default=str))
        except (ValueError, TypeError, yaml.YAMLError):  # TypeError: a key JSON has no form for (a date)
            template = None
        if not isinstance(template, dict):
            raise Failure(
                f"error: {stack}'s template, as CloudFormation gives it, is no JSON or YAML mapping this tool reads: {body[:60]!r}; "
                f"see it in the console, or: aws cloudformation get-template --stack-name {stack}"
            )
        return template

    def as_deployed(self, layer) -> Layer:
        """The layer as its stack runs it: the template it was last given, its parameter values and its
        tags, for a change of the image alone (a rollback). output/ may hold other changes (a newer
        checkout's), which a rollback, made without rollback alarms, must not carry in unasked."""
        found = self.describe(layer.stack)
        template = self.deployed_template(layer.stack)
        problem = template_problem(template)
        if problem:
            raise Failure(
                f"error: {layer.stack}'s template, as CloudFormation gives it, is not one this tool reads ({problem}); "
                f"roll back by deploying the image instead: make deploy STACK={layer.name} ENV={self.env} TAG=<image tag>"
            )
        policy = stack_policy(template)
        return layer_of(
            self.env,
            layer.name,
            template,
            parameter_values(found),
            self.stack_tags(found),
            policy,
            f"{layer.stack}'s template",
            f"{layer.stack}'s parameters and tags",
        )

    def retained(self, stack) -> dict:
        """Logical id -> type of what deleting the stack leaves in the account (read once a run)."""
        if stack not in self.retained_by:
            self.retained_by[stack] = templates.retained_resources(self.deployed_template(stack))
        return self.retained_by[stack]

    def retained_there(self, stack) -> tuple[dict, dict]:
        """What deleting the stack leaves in the account: retained() (logical id -> type), and the physical id of each
        of them the stack holds (read once a run): none for one never created (its Condition false, a create that failed
        before it) nor for one a failed first create's rollback deleted (RetainExceptOnCreate, templates/common.py: "If the
        stack operation that created the resource is rolled back, CloudFormation deletes the resource",
        https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-attribute-deletionpolicy.html; its
        ResourceStatus then DELETE_COMPLETE: https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_StackResource.html)."""
        keep = self.retained(stack)
        if keep and stack not in self.retained_ids_by:
            self.retained_ids_by[stack] = {
                r.get("LogicalResourceId"): r.get("PhysicalResourceId", "")
                for r in self.cf.describe_stack_resources(StackName=stack)["StackResources"]
                if r.get("ResourceStatus") != "DELETE_COMPLETE"
            }
        return keep, self.retained_ids_by.get(stack, {})

    def outputs(self, stack) -> dict:
        return output_values(self.describe(stack))

    @staticmethod
    def wired(layer) -> dict:
        """parameter -> (upstream layer, output) the layer's template takes (one of an earlier checkout, a rollback's, takes fewer)."""
        return {parameter: read for parameter, read in templates.wired_into(layer.name).items() if parameter in layer.declared}

    def wired_parameters(self, layer) -> dict:
        wired = self.wired(layer)
        missing = self.undeployed_upstreams(wired)
        if missing:
            first, *then = missing
            stacks = [templates.stack_name(self.env, name) for name in missing]
            raise UpstreamsNotDeployed(
                f"error: {layer.stack} needs {text.in_words(stacks)} deployed first"
                f"{', in that order' if then else ''}: make deploy STACK={first} ENV={self.env}"
                + "".join(f", then STACK={name}" for name in then)
                + f", or make deploy ENV={self.env} for every layer in order"
            )
        values = {}
        for parameter, (upstream, output) in wired.items():
            source = templates.stack_name(self.env, upstream)
            found = self.describe(source)
            if self.foreign(found):  # a deploy refuses it when it reads it; make diff would show its outputs as ours
                raise Failure(f"error: {layer.stack} reads {text.not_ours(source, self.own_tags(found))}")
            if found["StackStatus"] not in UPDATABLE:
                # a half-deleted upstream goes with the layers that read it, this one too, and its way out deploys them again;
                # else the command refused is the way on, whichever it was (a make rollback, a release's TAG=, make diff)
                again = "" if found["StackStatus"] == "DELETE_FAILED" else ", then run this command again"
                raise Failure(
                    f"error: {layer.stack} reads {source}, which is {found['StackStatus']}{reason_of(found)}; "
                    f"{self.way_out(upstream, found['StackStatus'])}{again}"
                )
            if output in self.outputs(source):
                values[parameter] = self.outputs(source)[output]
            elif WIRED[parameter].default is not None:
                # An output that exists only under a condition of its layer (templates/inputs.py says
                # which); the downstream template's rules refuse the default where it is needed.
                values[parameter] = WIRED[parameter].default
            else:
                raise Failure(f"error: {source} has no output {output}; redeploy it: make deploy STACK={upstream} ENV={self.env}")
        return values

    def undeployed_upstreams(self, wired) -> list:
        """The layers wired (parameter -> (layer, output)) reads that are not deployed, and those these read
        that are not, in deploy order: the whole way there, where naming the first alone cost a run for each."""
        missing, reading = set(), [wired]
        while reading:
            for upstream, _ in reading.pop().values():
                if upstream not in missing and not self.has_stack(templates.stack_name(self.env, upstream)):
                    missing.add(upstream)
                    reading.append(templates.wired_into(upstream))
        return sorted(missing, key=templates.layer_order().index)

    @staticmethod
    def stack_tags(found) -> dict:
        return {tag["Key"]: tag["Value"] for tag in found.get("Tags", [])}

    def consumers(self, layer_name):
        downstream = sorted(templates.downstream_of(layer_name))  # enabled or not: a deployed one reads the outputs
        stacks = [self.describe(templates.stack_name(self.env, d), refuse_foreign=False) for d in downstream]
        return [s["StackName"] for s in stacks if is_deployed(s) and not self.foreign(s)]
