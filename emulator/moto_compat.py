"""Closes the moto 5.2.5 CloudFormation gaps that a change-set deploy of our layers hits.

Each patch delegates to moto's own service backends and names the gap it closes. Only what the
deployer's calls (change sets, DescribeStacks, termination protection, destroy, purge) and the
end-to-end checks through the services' own APIs rely on is here. Left open because nothing we run
reads them: S3 bucket policy and inline security-group egress not created; load balancer and target
group attributes dropped; target group updates that replace nothing not applied
(the resource is kept); the CloudFormation-made hosted zone's name has no trailing dot and holds no
ACM validation records; change sets judge replacement from the templates and createOnlyProperties
(not from the resolved values) and show every resource that refers to a modified one as Modify too, ignore DependsOn and stack policies, and finish synchronously; an
update rollback whose own removal step fails half way can leave deleted resources listed; rollback
triggers are kept but never watched, alarms never leave OK, e-mail subscriptions are never pending
confirmation, a web ACL is associated with any ARN and deleted while associated, and an SNS topic
whose properties change is replaced, losing the subscriptions other resources made; a security group
whose inline rules change is replaced too (AWS changes them in place: only GroupDescription, GroupName
and VpcId are createOnlyProperties in the resource schema cfn-lint ships, and "Update requires: No
interruption" for the rules in
https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-ec2-securitygroup.html), and the replacement is refused once another group's rule names it;
drift detection checks only log groups' retention and target groups' health check path and interval.

Import this module before moto's CloudFormation parser collects its models: parsing.get_model_list()
caches CloudFormationModel.__subclasses__() at the first stack, and the classes below must be in it.
The sandbox server imports it at start-up. moto is pinned exactly: this touches its internals.
"""

import contextlib
import copy
import json
import threading
import uuid
from functools import cache
from graphlib import TopologicalSorter

import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from moto import backends as moto_backends
from moto.acm.models import acm_backends
from moto.applicationautoscaling.models import applicationautoscaling_backends
from moto.cloudformation import exceptions as cfn_exceptions
from moto.cloudformation import models as cfn_models
from moto.cloudformation import parsing, responses
from moto.cloudwatch import models as cloudwatch_models
from moto.core import responses as responses_base
from moto.core import utils as moto_utils
from moto.core.common_models import CloudFormationModel
from moto.core.utils import camelcase_to_underscores, pascal_to_camelcase, remap_nested_keys, utcnow
from moto.ec2 import exceptions as ec2_exceptions
from moto.ec2 import models as ec2_models
from moto.ec2.models import security_groups as ec2_security_groups
from moto.ecs import exceptions as ecs_exceptions
from moto.ecs import models as ecs_models
from moto.elbv2 import models as elbv2_models
from moto.kms import exceptions as kms_exceptions
from moto.kms import models as kms_models
from moto.logs import models as logs_models
from moto.route53 import models as route53_models
from moto.s3 import models as s3_models
from moto.sns import models as sns_models
from moto.ssm import models as ssm_models
from moto.utilities.utils import get_partition
from moto.wafv2 import models as wafv2_models

from scripts.botocore_models import MODELS
from templates import resolver, template_reads
from templates.errors import long_lived


# Gap: moto reads every template, a JSON one too, with PyYAML's pure-Python loader (a tenth of a
# second per layer template, several times per change set). A template is JSON or YAML
# (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/template-formats.html): a body
# that is a JSON object is read with json, anything else goes to YAML, as moto does.
class _JsonFirstYaml:
    """The yaml module as moto's CloudFormation modules see it, but load reads JSON as JSON."""

    def __getattr__(self, name):
        return getattr(yaml, name)

    @staticmethod
    def load(stream, Loader):
        if isinstance(stream, str) and stream.lstrip().startswith("{"):
            try:
                return json.loads(stream)
            except ValueError:
                pass  # not JSON after all (YAML flow mapping): the YAML loader says what it is
        return yaml.load(stream, Loader=Loader)


cfn_models.yaml = responses.yaml = _JsonFirstYaml()

# Gap: hosted zone ids are 22 random characters, where Route 53's start with Z (Z0123456789ABCDEFGHIJ):
# params refuse them by the real pattern (templates/inputs.py HOSTED_ZONE_ID).
_zone_id = route53_models.create_route53_zone_id
route53_models.create_route53_zone_id = lambda *args, **kwargs: "Z" + _zone_id(*args, **kwargs)[1:]

# Gap: a stack created or updated through a change set has no (or stale) Outputs, parameters
# and template. execute_change_set applies the resources but never rebuilds the output map.
_execute_change_set = cfn_models.CloudFormationBackend.execute_change_set


def _execute_change_set_with_outputs(self, change_set_name, stack_name=None):
    change_set = self.describe_change_set(change_set_name, stack_name)
    # Gap: moto ran a change set again, a failed one too. AWS: "If an update fails, you must create a
    # new change set"; ExecuteChangeSet answers InvalidChangeSetStatus for one that "can't be used".
    # https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/using-cfn-updating-stacks-changesets-execute.html
    # https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_ExecuteChangeSet.html
    if change_set.execution_status != "AVAILABLE":
        raise _InvalidChangeSetStatus(
            f"ChangeSet [{change_set.change_set_id}] cannot be executed in its current execution status of [{change_set.execution_status}]"
        )
    stack = self.stacks[change_set.stack_id]
    before = (
        None
        if change_set.change_set_type == "CREATE"
        else (copy.deepcopy(stack.resource_map._template), dict(stack.resource_map.input_parameters))
    )
    try:
        _execute_change_set(self, change_set.change_set_id, stack_name)  # by ARN: moto's own lookup by name takes any stack's
    except Exception as error:
        # as AWS does, after an ExecuteChangeSet that succeeded
        if before is None:
            _roll_back_create(stack, change_set, error)
        else:
            _roll_back_update(stack, change_set, error, *before)
        return
    finally:
        _end_change_sets(self, stack, kept=change_set)  # after any execution, failed or not: AWS ends the others
    _clean_up_replaced(stack)
    stack.template_dict, stack.parameters = change_set.template_dict, change_set.parameters
    if change_set.tags:  # the executed change set's, also on a waiting stack an earlier CREATE change set made with others
        if dict(change_set.tags) != stack.resource_map.tags:  # a create's resources were tagged with the first one's
            _tag_the_resources_anew(stack, change_set.tags)
        stack.tags = dict(change_set.tags)
    # Gap: DescribeStacks had no LastUpdatedTime (make status shows it), which AWS returns once a
    # stack "has been updated at least once": https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_Stack.html
    if change_set.change_set_type != "CREATE":
        stack.last_updated_time = utcnow()
    stack.description = stack.template_dict.get("Description")
    stack.output_map = stack._create_output_map()
    if getattr(change_set, "rollback_configuration", None) is not None:  # set only by the create_change_set patch below
        stack.rollback_configuration = change_set.rollback_configuration


cfn_models.CloudFormationBackend.execute_change_set = _execute_change_set_with_outputs


# Gap: a resource that fails to create (a name another resource holds) makes ExecuteChangeSet an
# HTTP error and leaves the stack REVIEW_IN_PROGRESS with what it created so far, reported as not
# deployed and never cleaned up. AWS accepts the execution, marks the resource CREATE_FAILED,
# deletes what the create made (in reverse order; only DeletionPolicy Retain keeps a resource,
# RetainExceptOnCreate does not) and ends ROLLBACK_COMPLETE, which only a delete leaves.
# https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/stack-failure-options.html
# https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-attribute-deletionpolicy.html
def _message(error) -> str:
    return " ".join(str(getattr(error, "message", None) or error or type(error).__name__).split())


def _resource_event(stack, logical_id, resource_type, status, physical_id="", reason=None):
    event = cfn_models.Event(stack.stack_id, stack.name, logical_id, physical_id, resource_type, status, reason, None)
    stack.events.append(event)


def _failed_event(stack, error, status) -> str:
    """The event of the resource whose create or update failed (the stack's when moto did not say); its logical id."""
    failed, failed_type = getattr(error, "compat_failed", (stack.name, "AWS::CloudFormation::Stack"))
    _resource_event(stack, failed, failed_type, status, reason=f'Resource handler returned message: "{_message(error)}"')
    return failed


def _roll_back_create(stack, change_set, error):
    resource_map, resources = stack.resource_map, change_set.template_dict["Resources"]
    failed = _failed_event(stack, error, "CREATE_FAILED")
    reason = f"The following resource(s) failed to create: [{failed}]. Rollback requested by user."
    stack._add_stack_event("ROLLBACK_IN_PROGRESS", resource_status_reason=reason)
    created = [name for name in reversed(resource_map._parsed_resources) if name in resources and resource_map._parsed_resources[name]]
    left, problems, progress = [], {}, True
    for name in created:
        if resources[name].get("DeletionPolicy") == "Retain":
            physical_id = getattr(resource_map._parsed_resources[name], "physical_resource_id", "")
            _resource_event(stack, name, resources[name]["Type"], "DELETE_SKIPPED", physical_id)
        else:
            left.append(name)
    while left and progress:  # one that another resource still uses goes on a later pass
        progress = False
        for name in list(left):
            resource = resource_map._parsed_resources[name]
            try:
                resource_map._delete_resource(resource, resources[name])
            except Exception as problem:
                problems[name] = _message(problem)
                continue
            left.remove(name)
            progress = True
            del resource_map._parsed_resources[name]
            _resource_event(stack, name, resources[name]["Type"], "DELETE_COMPLETE", getattr(resource, "physical_resource_id", ""))
    for name in left:
        _resource_event(stack, name, resources[name]["Type"], "DELETE_FAILED", reason=problems.get(name))
    stack.template, stack.template_dict = change_set.template, change_set.template_dict
    stack.status = "ROLLBACK_FAILED" if left else "ROLLBACK_COMPLETE"
    stack.status_reason = reason
    stack._add_stack_event(stack.status)
    change_set.execution_status = "EXECUTE_FAILED"


def _clean_up_replaced(stack) -> None:
    """The update stands: what it replaced is no longer switched back to, and is deleted where its
    UpdateReplacePolicy says Delete; one another old resource still uses (a target group its old
    listener forwards to) goes on a later pass. What cannot be deleted stays, as in AWS's cleanup."""
    replaced = []
    for resource in stack.resource_map._parsed_resources.values():
        if hasattr(resource, "compat_replaced"):
            if resource.compat_cleanup is not None:
                replaced.append((resource.compat_replaced, resource.compat_cleanup))
            del resource.compat_replaced, resource.compat_cleanup
    _delete_in_passes(stack.resource_map, replaced)


def _delete_in_passes(resource_map, resources: list) -> Exception | None:
    """Delete each (resource, its template entry); one another still uses goes on a later pass, and one
    already gone (a listener with its load balancer) counts as deleted (_delete_resource_unless_gone).
    The last problem, if any stays."""
    left, problem, progress = list(resources), None, True
    while left and progress:
        progress = False
        for resource, resource_json in list(left):
            try:
                resource_map._delete_resource(resource, resource_json)
            except Exception as error:  # noqa: BLE001 (still in use: a later pass)
                problem = error
                continue
            left.remove((resource, resource_json))
            progress = True
    return problem if left else None


def _end_change_sets(backend, stack, kept=None):
    """Gap: executed change sets stayed listed, and a new one of the same name (made within the same
    second) was then shadowed. When one runs, "CloudFormation deletes all other change sets associated
    with the stack": the one that ran (`kept`) stays, EXECUTE_COMPLETE or EXECUTE_FAILED, and cannot
    run again (make execute after a run stopped while asking to execute it reads it).
    https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_ExecuteChangeSet.html"""
    for name in [name for name, c in backend.change_sets.items() if c.stack_id == stack.stack_id and c is not kept]:
        del backend.change_sets[name]


# Gap: a resource that fails to update (a security group that does not exist) made ExecuteChangeSet an
# HTTP error and left the stack UPDATE_COMPLETE with the new parameters and template, the resources
# part new and part old: `make diff` then differs while a change set sees nothing to change. AWS
# accepts the execution, marks the resource UPDATE_FAILED, puts every resource back as the previous
# template and parameters say and ends UPDATE_ROLLBACK_COMPLETE (UPDATE_ROLLBACK_FAILED when it cannot).
# https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/stack-failure-options.html
# https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/using-cfn-updating-stacks-monitor-stack.html
# Gap: an update that removes a resource (from the template, or by its Condition) deleted it whatever
# its DeletionPolicy, where AWS keeps it in the account, out of the stack: the policy "also applies to
# stack update operations that lead to resources being deleted from stacks". RetainExceptOnCreate
# keeps it too, but for the operation that created it (a failed update's rollback deletes what it
# added); a plain Retain resource the failed update added stays: only ExecuteChangeSet's RetainExceptOnCreate
# flag set to true (the deployer leaves it false, its default) deletes it ("When set to true, newly
# created resources are deleted when the operation rolls back. This includes newly created resources
# marked with a deletion policy of Retain").
# https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-attribute-deletionpolicy.html
# https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_ExecuteChangeSet.html
def _kept_when_removed(resource_map, logical_id, resource_json) -> bool:
    policy = resource_json.get("DeletionPolicy")
    created_now = logical_id in getattr(resource_map, "compat_created_now", ())
    return policy == "Retain" or (policy == "RetainExceptOnCreate" and not created_now)


_resource_map_update = parsing.ResourceMap.update


def _update_keeping_what_deletion_policies_keep(self, template, parameters=None):
    for name, resource_json in self._resource_json_map.items():
        if name not in template.get("Resources", {}) and _kept_when_removed(self, name, resource_json):
            self._parsed_resources.pop(name, None)  # out of the stack, left in the account: moto's removal skips it
    return _resource_map_update(self, template, parameters)


parsing.ResourceMap.update = _update_keeping_what_deletion_policies_keep


def _roll_back_update(stack, change_set, error, template, parameters):
    failed = _failed_event(stack, error, "UPDATE_FAILED")
    reason = f"The following resource(s) failed to update: [{failed}]."
    stack._add_stack_event("UPDATE_ROLLBACK_IN_PROGRESS", resource_status_reason=reason)
    resource_map = stack.resource_map
    if resource_map._resource_json_map == change_set.template_dict["Resources"]:
        # moto deletes what the update removes first (AWS only once the update has succeeded), yet keeps
        # the deleted objects in its map, where putting them back would find them: forget them, so
        # that the rollback creates them again.
        for name in set(template["Resources"]) - set(change_set.template_dict["Resources"]):
            resource_map._parsed_resources.pop(name, None)
    try:
        # A resource the update replaced (kept until the cleanup phase) is switched back to, the
        # resources that use it are put back on it, and then its replacement is deleted, as AWS does
        # (deleted first, one still in use by a listener could not go): UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS,
        # the stack "rolled back to its previous working state", is the removal of the new resources.
        # https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/view-stack-events.html#cfn-console-view-stack-data-resources-status-codes
        replacements = []
        for name, resource in list(resource_map._parsed_resources.items()):
            original = getattr(resource, "compat_replaced", None)
            if original is not None:
                replacements.append((resource, change_set.template_dict["Resources"][name]))
                resource_map._parsed_resources[name] = original
        resource_map.compat_created_now = set(change_set.template_dict["Resources"]) - set(template["Resources"])
        try:
            resource_map.update(template, parameters)
        finally:
            del resource_map.compat_created_now
        if problem := _delete_in_passes(resource_map, replacements):
            raise problem
    except Exception as problem:
        stack.status, stack.status_reason = "UPDATE_ROLLBACK_FAILED", _message(problem)
    else:
        stack.status, stack.status_reason = "UPDATE_ROLLBACK_COMPLETE", reason
    stack.output_map = stack._create_output_map()  # the template and parameters stayed the previous ones
    stack._add_stack_event(stack.status, resource_status_reason=stack.status_reason)
    change_set.execution_status = "EXECUTE_FAILED"
    stack.last_updated_time = utcnow()  # updated, if back: make execute's guard sees the attempt


class _InvalidChangeSetStatus(cfn_exceptions.CloudFormationError):
    code = "InvalidChangeSetStatusException"  # sent as InvalidChangeSetStatus


# Gap: moto found a change set given by name in any stack (Describe took the last of that name,
# Execute and Delete the first), and DeleteChangeSet of one that is gone (a deploy deleted it
# meanwhile) was a 500, an UnboundLocalError. AWS: a change set given by name is the one of the stack
# StackName names; one that is not there is ChangeSetNotFound (404). AWS's DeleteChangeSet page names
# no error for it; the deployer takes either answer.
# https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_DescribeChangeSet.html
# https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_ExecuteChangeSet.html
class _ChangeSetNotFound(cfn_exceptions.CloudFormationError):
    code = "ChangeSetNotFoundException"  # the model's shape: sent as ChangeSetNotFound, 404


def _find_change_set(self, change_set_name, stack_name=None):
    """By ARN, or by name within the stack stack_name names (its name or id; any stack's when None).
    Of two of one name, the newest: moto makes the second, where AWS answers AlreadyExists, or takes
    one of the same ClientToken for a retry (the token lets CloudFormation know "you're not attempting to
    create another change set with the same name": API_CreateChangeSet.html; what it then answers is not
    documented). Only runs within one millisecond share the deployer's names: the sandbox's tests."""
    if change_set_name in self.change_sets:
        return self.change_sets[change_set_name]
    for change_set in reversed(self.change_sets.values()):
        stack = self.stacks.get(change_set.stack_id)
        if change_set.change_set_name == change_set_name and (
            stack_name is None or stack_name in (change_set.stack_id, getattr(stack, "name", None))
        ):
            return change_set
    raise _ChangeSetNotFound(f"ChangeSet [{change_set_name}] does not exist")


def _delete_change_set_of_the_stack(self, change_set_name, stack_name=None):
    del self.change_sets[_find_change_set(self, change_set_name, stack_name).change_set_id]


cfn_models.CloudFormationBackend.describe_change_set = _find_change_set
cfn_models.CloudFormationBackend.delete_change_set = _delete_change_set_of_the_stack


def _describe_change_set_response(self):
    return responses.ActionResult(
        self.cloudformation_backend.describe_change_set(self._get_param("ChangeSetName"), self._get_param("StackName"))
    )


def _delete_change_set_response(self):
    self.cloudformation_backend.delete_change_set(self._get_param("ChangeSetName"), self._get_param("StackName"))
    return responses.EmptyResult()


responses.CloudFormationResponse.describe_change_set = _describe_change_set_response
responses.CloudFormationResponse.delete_change_set = _delete_change_set_response

# Gap: GetTemplate ignored ChangeSetName and answered the stack's template, not the change set's
# ("returns the template associated with the change set", by name with StackName, or by ARN):
# https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_GetTemplate.html
_get_template_of_the_stack = responses.CloudFormationResponse.get_template


def _get_template_of_the_change_set_too(self):
    name = self._get_param("ChangeSetName")
    if not name:
        return _get_template_of_the_stack(self)
    if not name.startswith("arn:") and not self._get_param("StackName"):  # "If you specify a name, you must also specify the StackName"
        raise cfn_exceptions.ValidationError(name, "StackName is required when ChangeSetName is given by name, not ARN")
    change_set = self.cloudformation_backend.describe_change_set(name, self._get_param("StackName"))
    return responses.ActionResult({"TemplateBody": change_set.template})


responses.CloudFormationResponse.get_template = _get_template_of_the_change_set_too
# Gap: DescribeChangeSet answered Tags [] whatever tags the change set was made with (moto keeps them as a
# mapping, which only DescribeStacks' answer turns into Key/Value pairs); the deployer shows the tags a
# change set changes. https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_DescribeChangeSet.html
responses.CloudFormationResponse.RESPONSE_KEY_PATH_TO_TRANSFORMER["DescribeChangeSetOutput.Tags"] = responses.transform_dict


# Gap: ListChangeSets listed every stack's change sets, whatever StackName said (its one required parameter).
# https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_ListChangeSets.html
# By name, the live stack's: not those of a deleted stack of the same name (a destroyed, then created again layer).
def _list_change_sets_of_the_stack(self):
    wanted, backend = self._get_param("StackName"), self.cloudformation_backend
    listed = [c for c in backend.list_change_sets() if wanted == c.stack_id or (wanted == c.stack_name and c.stack_id in backend.stacks)]
    return responses.ActionResult({"Summaries": listed})


responses.CloudFormationResponse.list_change_sets = _list_change_sets_of_the_stack


# Gap: an unchanged redeploy answers CreateChangeSet with 400 "No updates are to be performed."
# when every parameter is a String. Real CloudFormation creates the change set and reports it
# FAILED ("The submitted information didn't contain changes..."), which moto's backend already
# does once the UpdateStack-only check is skipped for change sets.
# Gap: UpdateStack with the previous template and values and new stack tags was refused the same
# way; AWS updates the tags (UpdateStack's Tags: "CloudFormation also propagates these tags to
# supported resources in the stack"), as the deployer does when a change set sees no change.
# https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_UpdateStack.html
_validate_different_update = responses.CloudFormationResponse._validate_different_update


def _validate_different_update_of_update_stack(self, incoming_params, stack_body, old_stack):
    tags = {tag["Key"]: tag["Value"] for tag in self._get_param("Tags", [])}
    if self._get_action() != "CreateChangeSet" and not (tags and tags != old_stack.tags):
        _validate_different_update(self, incoming_params, stack_body, old_stack)


responses.CloudFormationResponse._validate_different_update = _validate_different_update_of_update_stack

# Gap: an UpdateStack (a change of stack tags alone) left LastUpdatedTime as it was, where AWS sets it
# as for any update (API_Stack.html, above): make status showed the time of the update before. And the
# stack's waiting change sets stayed AVAILABLE, to be executed against a stack they no longer describe:
# AWS makes them OBSOLETE, "because the stack was already updated".
# https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_ChangeSetSummary.html
_update_stack = cfn_models.CloudFormationBackend.update_stack


def _update_stack_with_its_time(self, *args, **kwargs):
    tags_before = dict(self.get_stack(kwargs["name"]).tags)  # CloudFormationResponse.update_stack names its arguments
    stack = _update_stack(self, *args, **kwargs)
    if stack.tags != tags_before:
        _tag_the_resources_anew(stack, stack.tags)
    stack.last_updated_time = utcnow()
    for change_set in self.change_sets.values():
        if change_set.stack_id == stack.stack_id and change_set.execution_status == "AVAILABLE":
            change_set.execution_status = "OBSOLETE"
    return stack


cfn_models.CloudFormationBackend.update_stack = _update_stack_with_its_time


# Gap: CreateChangeSet accepts RollbackConfiguration (the service stack's rollback triggers)
# and drops it: DescribeChangeSet and, once executed, DescribeStacks show none. Keep it; as in
# AWS, a change set without one leaves the stack's previous configuration in place.
# Gap: a request without ChangeSetType was a CREATE to moto, which answered 500 to one with
# UsePreviousValue (an update's, as `aws cloudformation create-change-set` sends by hand): to AWS
# it is an UPDATE ("By default, CloudFormation specifies UPDATE", ChangeSetType in
# https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_CreateChangeSet.html).
# And UsePreviousValue took moto's parsed value of a List parameter, a Python list, which the
# execution then failed to read: it takes the value as given, as DescribeStacks shows it.
_create_change_set = responses.CloudFormationResponse.create_change_set


def _create_change_set_keeping_rollback_configuration(self):
    self.params.setdefault("ChangeSetType", "UPDATE")
    if any(given.get("UsePreviousValue") for given in self.params.get("Parameters", [])):
        stack_name = self._get_param("StackName")
        creates = self.params["ChangeSetType"] == "CREATE"  # no stack, no previous values
        previous = {} if creates else self.cloudformation_backend.get_stack(stack_name).stack_parameters
        for given in self.params["Parameters"]:
            if given.get("UsePreviousValue") and given.get("ParameterKey") not in previous:  # moto: a KeyError, answered 500
                # No AWS page gives the wording: it is the one other emulators of CloudFormation give.
                raise cfn_exceptions.ValidationError(
                    stack_name,
                    message=f"Invalid input for parameter key {given['ParameterKey']}. Cannot specify usePreviousValue as true "
                    "for a parameter key not in the previous template",
                )
        self.params["Parameters"] = [
            {"ParameterKey": given["ParameterKey"], "ParameterValue": _as_given(previous[given["ParameterKey"]])}
            if given.get("UsePreviousValue")
            else given
            for given in self.params["Parameters"]
        ]
    result = _create_change_set(self)
    change_set = self.cloudformation_backend.change_sets[result.result["Id"]]
    change_set.rollback_configuration = self._get_param("RollbackConfiguration")
    return result


responses.CloudFormationResponse.create_change_set = _create_change_set_keeping_rollback_configuration

# Gap: UpdateStack dropped its RollbackConfiguration too (a tags-only update sends one): keep it on the
# stack; one without it leaves the previous configuration, as for a change set.
_update_stack_response = responses.CloudFormationResponse.update_stack


def _update_stack_keeping_rollback_configuration(self):
    result = _update_stack_response(self)
    given = self._get_param("RollbackConfiguration")
    if given is not None:
        self.cloudformation_backend.get_stack(self._get_param("StackName")).rollback_configuration = given
    return result


responses.CloudFormationResponse.update_stack = _update_stack_keeping_rollback_configuration


# Gap: moto answers through botocore's model of each API, and the pinned botocore's ECS model
# predates blue/green: DescribeServices would drop a service's strategy, bake time, lifecycle hooks
# and advanced load-balancer configuration that the template set. Answer with the same additions to
# the model the deployer's clients use (scripts/models/, from the ECS API reference).
def _create_loader_with_our_models():
    loader = _create_loader()
    loader.search_paths.insert(0, str(MODELS))
    loader.extras_types.append("sdk")
    return loader


_create_loader = moto_utils.create_loader
moto_utils.create_loader = _create_loader_with_our_models


# Gap: the template's Rules section is ignored. CloudFormation checks it before anything changes, in
# CreateChangeSet too: where a rule whose RuleCondition holds has a false assertion, it neither
# creates nor updates the stack and shows the AssertDescription.
# https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/rules-section-structure.html
# The emulator refuses the request itself, with a ValidationError carrying that description, and
# creates nothing, not even a stack to review: its choice of shape, which the page leaves open.
# The rule functions the layers use are evaluated (Ref of a parameter, Fn::Equals, Fn::Not,
# Fn::And, Fn::Or); any other makes the emulator refuse with a message that says so. Checked in the
# backend, on the template and parameter values moto resolved (UsePreviousTemplate, UsePreviousValue,
# TemplateURL), read as moto reads templates.
_backend_create_change_set = cfn_models.CloudFormationBackend.create_change_set


def _create_change_set_unless_a_rule_fails(self, stack_name, change_set_name, template, parameters, description, change_set_type, **kwargs):
    _refuse_failed_rules(cfn_models.Stack.parse_template(template) or {}, parameters)
    # Gap: a CREATE change set for a name a live stack holds made a second stack of that name. AWS
    # refuses the CREATE type "for an existing stack", and takes it for the empty REVIEW_IN_PROGRESS
    # stack an earlier CREATE change set made (a deploy stopped after CreateChangeSet), which stays
    # so "until you execute the change set" (ChangeSetType in the page below; the deployer relies on
    # it in Deployer.ready, as the AWS CDK does).
    # https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_CreateChangeSet.html
    waiting = next((stack for stack in self.stacks.values() if stack.name == stack_name), None) if change_set_type == "CREATE" else None
    if waiting is not None and waiting.status != "REVIEW_IN_PROGRESS":
        raise cfn_exceptions.ValidationError(
            stack_name, message=f"Stack [{stack_name}] already exists and cannot be created again with the changeSet [{change_set_name}]."
        )
    change_set_id, stack_id = _backend_create_change_set(
        self, stack_name, change_set_name, template, parameters, description, change_set_type, **kwargs
    )
    if waiting is not None:  # moto made a new stack: the change set goes to the waiting one instead
        del self.stacks[stack_id]
        change_set = self.change_sets[change_set_id]
        change_set.stack, change_set.stack_id = waiting, waiting.stack_id
        stack_id = waiting.stack_id
    _failed_if_it_changes_nothing(self.change_sets[change_set_id], change_set_type)
    return change_set_id, stack_id


# Gap: moto reports a change set FAILED for no changes only when its template and values are the stack's own. AWS
# does whenever "the template provided does not update the property values of existing resources in the Resources
# or Outputs section" (https://github.com/aws-cloudformation/cloudformation-coverage-roadmap/issues/2027): a template
# written otherwise to the same values (Fn::Sub for Fn::Join, a parameter declared a String anew), or whose Metadata,
# Description or parameter declarations alone changed. Executing it updated the stack's template in the sandbox.
def _failed_if_it_changes_nothing(change_set, change_set_type) -> None:
    stack = change_set.stack
    if change_set_type != "UPDATE" or change_set.status == "FAILED" or stack.resource_map is None:
        return
    running = stack.resource_map.input_parameters or {}
    if resolver.changes_nothing(stack.template_dict, running, change_set.template_dict, change_set.parameters or {}, stack.region_name):
        change_set.status, change_set.execution_status = "FAILED", "UNAVAILABLE"
        change_set.status_reason = "The submitted information didn't contain changes. Submit different information to create a change set."


cfn_models.CloudFormationBackend.create_change_set = _create_change_set_unless_a_rule_fails


def _refuse_failed_rules(template: dict, given: dict) -> None:
    rules = template.get("Rules") or {}
    if not rules:
        return
    defaults = {name: str(spec.get("Default")) for name, spec in template.get("Parameters", {}).items() if "Default" in spec}
    values = defaults | given
    for name, rule in rules.items():
        if "RuleCondition" in rule and not _rule_value(rule["RuleCondition"], values, name):
            continue
        for assertion in rule.get("Assertions", []):
            if not _rule_value(assertion["Assert"], values, name):
                raise responses.ValidationError(message=assertion.get("AssertDescription", f"Rule {name} failed"))


def _rule_value(node, values, rule):
    if isinstance(node, str | int | float | bool):
        return str(node) if not isinstance(node, bool) else node
    if isinstance(node, dict) and len(node) == 1:
        ((function, argument),) = node.items()
        if function == "Ref":
            return values.get(argument, "")
        if function == "Fn::Equals":
            left, right = (_rule_value(a, values, rule) for a in argument)
            return left == right
        if function == "Fn::Not":
            return not _rule_value(argument[0], values, rule)
        if function == "Fn::And":
            return all(_rule_value(a, values, rule) for a in argument)
        if function == "Fn::Or":
            return any(_rule_value(a, values, rule) for a in argument)
    raise responses.ValidationError(
        message=f"emulator: rule {rule} uses {json.dumps(node)[:80]}, which emulator/moto_compat.py does not evaluate"
    )


# Gap: UpdateTerminationProtection is not implemented (the deployer protects every stack), and
# DeleteStack ignores the protection. Store the flag (DescribeStacks shows it) and refuse as AWS does.
def _update_termination_protection(self):
    stack = self.cloudformation_backend.get_stack(self._get_param("StackName"))
    stack.enable_termination_protection = self._get_bool_param("EnableTerminationProtection")
    return responses.ActionResult({"StackId": stack.stack_id})


_delete_stack = responses.CloudFormationResponse.delete_stack


def _delete_stack_unless_protected(self):
    name = self._get_param("StackName")
    stack = next((s for s in self.cloudformation_backend.stacks.values() if name in (s.name, s.stack_id)), None)
    if stack is not None and stack.enable_termination_protection:
        raise responses.ValidationError(message=f"Stack [{stack.name}] cannot be deleted while TerminationProtection is enabled")
    return _delete_stack(self)


responses.CloudFormationResponse.update_termination_protection = _update_termination_protection
responses.CloudFormationResponse.delete_stack = _delete_stack_unless_protected


# Gap: deleting a stack deletes the resources whose DeletionPolicy is RetainExceptOnCreate (moto
# keeps only Retain ones) and says nothing of what it kept; ListStacks shows no DeletionTime; and
# ListStackResources of a deleted stack lists its retained resources as CREATE_COMPLETE (and would
# create the deleted ones again). AWS keeps both kinds on stack deletion, with a DELETE_SKIPPED
# event, and lists a deleted stack's resources for 90 days after, by stack id: DELETE_SKIPPED what
# it retained, DELETE_COMPLETE the rest. `make purge` reads exactly that.
# https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_ListStackResources.html
_stack_delete = cfn_models.Stack.delete


# Gap: a resource gone before its stack deletes it (deleted by hand) failed moto's stack deletion, after
# moto had taken the stack out of its list: the stack vanished, with no DELETE_COMPLETE and nothing of
# what it retained for make purge to find. A resource handler answers NotFound for a resource that did
# not exist before the delete request, and "CloudFormation itself chooses to ignore this error during
# stack workflows" (aws-cloudformation/cloudformation-cli#456): taken as deleted here too, in a stack's
# deletion and an update's clean-up alike.
# https://docs.aws.amazon.com/cloudformation-cli/latest/userguide/resource-type-test-contract.html
_delete_resource = parsing.ResourceMap._delete_resource


def _not_found(error: Exception) -> bool:
    """Whether a moto error is its service's "no such resource" (TargetGroupNotFound, ResourceNotFoundException,
    InvalidGroup.NotFound, NoSuchBucket, WAFNonexistentItemException, ...): older errors carry the code in
    error_type, newer ones in code."""
    code = getattr(error, "error_type", None) or getattr(error, "code", None)
    return isinstance(code, str) and ("NotFound" in code or code.startswith("NoSuch") or "Nonexistent" in code)


def _unless_gone(delete, *args):
    """delete(*args), one already gone taken as deleted (_not_found)."""
    try:
        delete(*args)
    except Exception as error:
        if not _not_found(error):
            raise


def _delete_resource_unless_gone(self, parsed_resource, resource_json):
    try:
        _unless_gone(_delete_resource, self, parsed_resource, resource_json)
    except Exception as error:
        error.compat_failed = (parsed_resource.logical_resource_id, resource_json["Type"])  # the stack's DELETE_FAILED names it
        raise


parsing.ResourceMap._delete_resource = _delete_resource_unless_gone


# Gap: any other failure of a stack's deletion (a resource still in use) also lost the stack, and the
# DeleteStack call answered an error. AWS's DeleteStack starts the deletion, which then ends
# DELETE_FAILED, naming the resource: "The following resource(s) failed to delete: [...]", the stack
# still there with what it could not delete.
# https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_DeleteStack.html
_backend_delete_stack = cfn_models.CloudFormationBackend.delete_stack


def _delete_stack_or_fail(self, name_or_stack_id):
    stack = next((s for s in self.stacks.values() if name_or_stack_id in (s.stack_id, s.name)), None)
    try:
        _backend_delete_stack(self, name_or_stack_id)
    except Exception as error:  # noqa: BLE001 (every failure of a resource's deletion is the stack's DELETE_FAILED)
        if stack is None:
            raise
        failures = getattr(error, "compat_failures", None) or [
            (*getattr(error, "compat_failed", (stack.name, "AWS::CloudFormation::Stack")), error)
        ]
        for logical_id, resource_type, failure in failures:
            reason = f'Resource handler returned message: "{_message(failure)}"'
            _resource_event(stack, logical_id, resource_type, "DELETE_FAILED", reason=reason)
        named = ", ".join(logical_id for logical_id, _, _ in failures)
        # the stack's own reason too, which DescribeStacks gives (StackStatusReason), as it does after a failed rollback
        stack.status_reason = f"The following resource(s) failed to delete: [{named}]. "
        stack._add_stack_event("DELETE_FAILED", resource_status_reason=stack.status_reason)
        stack.status = "DELETE_FAILED"
        self.stacks[stack.stack_id] = stack


cfn_models.CloudFormationBackend.delete_stack = _delete_stack_or_fail


# moto's ResourceMap.delete raises the last failure alone: AWS's DELETE_FAILED names every resource that failed (an
# event each), so that the one fixed is not followed by another only the next attempt names. It also tried every
# resource in every pass: AWS deletes a resource only after those that use it (Ref, Fn::GetAtt, DependsOn), so one a
# failed resource uses is never tried, and stays. Its passes kept: one refused for a use the template does not say (a
# rule naming a group by id) goes on a later pass, until a pass deletes nothing.
# https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-attribute-dependson.html
def _uses(body) -> set:
    depends = body.get("DependsOn") or []
    return template_reads.references(body) | set([depends] if isinstance(depends, str) else depends)


def _resource_map_delete_naming_every_failure(self):
    bodies = self._resource_json_map
    remaining = {name for name, body in bodies.items() if body.get("DeletionPolicy") != "Retain"}
    failures, progress = {}, True
    while remaining and progress:
        failures, progress = {}, False
        used = {name for other in remaining for name in _uses(bodies[other]) if name != other}
        for name in [name for name in remaining if name not in used] or list(remaining):  # all of a cycle
            parsed = self._parsed_resources.get(name)
            try:
                if not isinstance(parsed, str) and parsed is not None:
                    self._delete_resource(parsed, bodies[name])
                    self._parsed_resources.pop(name)
            except Exception as error:  # noqa: BLE001 (in use: a later pass; what stays is the stack's DELETE_FAILED)
                failures[name] = error
            else:
                remaining.discard(name)
                progress = True
    if remaining:
        last = failures[next(reversed(failures))]
        last.compat_failures = [(name, bodies[name]["Type"], failures[name]) for name in sorted(failures)]
        raise last


parsing.ResourceMap.delete = _resource_map_delete_naming_every_failure


def _stack_delete_keeping_retained(self):
    resource_map = self.resource_map
    bodies = resource_map._resource_json_map
    existed = {name: resource for name in bodies if (resource := resource_map._parsed_resources.get(name)) is not None}
    retain = {"DeletionPolicy": "Retain"}
    resource_map._resource_json_map = {
        name: body | retain if body.get("DeletionPolicy") == "RetainExceptOnCreate" else body for name, body in bodies.items()
    }
    try:
        _stack_delete(self)
    finally:
        resource_map._resource_json_map = bodies
    self.deletion_time = utcnow()
    self.compat_deleted_resources = [
        {
            "LogicalResourceId": name,
            "PhysicalResourceId": getattr(resource, "physical_resource_id", ""),
            "ResourceType": bodies[name]["Type"],
            "ResourceStatus": "DELETE_SKIPPED" if name in resource_map._parsed_resources else "DELETE_COMPLETE",
            "LastUpdatedTimestamp": self.deletion_time,
        }
        for name, resource in existed.items()
    ]
    finished = self.events.pop()  # the stack's DELETE_COMPLETE comes after the resources' events
    for entry in self.compat_deleted_resources:
        if entry["ResourceStatus"] == "DELETE_SKIPPED":
            _resource_event(self, entry["LogicalResourceId"], entry["ResourceType"], "DELETE_SKIPPED", entry["PhysicalResourceId"])
    self.events.append(finished)


_list_stack_resources = responses.CloudFormationResponse.list_stack_resources


def _list_stack_resources_of_deleted_stacks_too(self):
    stack = self.cloudformation_backend.get_stack(self._get_param("StackName"))  # a deleted one by its id only, as in AWS
    if stack.status != "DELETE_COMPLETE":
        return _list_stack_resources(self)
    return responses.ActionResult({"StackResourceSummaries": getattr(stack, "compat_deleted_resources", [])})


_describe_stack_resource = responses.CloudFormationResponse.describe_stack_resource


def _describe_stack_resource_of_deleted_stacks_too(self):
    # AWS answers "for up to 90 days after the stack has been deleted" (API_DescribeStackResource.html): the review's
    # way back for a key its stack deleted reads the key's id so (scripts/review/render.py).
    stack_name, logical_id = self._get_param("StackName"), self._get_param("LogicalResourceId")
    stack = self.cloudformation_backend.get_stack(stack_name)
    if stack.status != "DELETE_COMPLETE":
        return _describe_stack_resource(self)
    for entry in getattr(stack, "compat_deleted_resources", []):
        if entry["LogicalResourceId"] == logical_id:
            return responses.ActionResult({"StackResourceDetail": {"StackName": stack.name, "StackId": stack.stack_id, **entry}})
    raise cfn_exceptions.ValidationError(stack_name, f"Resource {logical_id} does not exist for stack {stack_name}")


cfn_models.Stack.delete = _stack_delete_keeping_retained
responses.CloudFormationResponse.list_stack_resources = _list_stack_resources_of_deleted_stacks_too
responses.CloudFormationResponse.describe_stack_resource = _describe_stack_resource_of_deleted_stacks_too


# Gap: DescribeStacks shows a List parameter as "['subnet-a', 'subnet-b']" (moto's parsed value),
# not the "subnet-a,subnet-b" that was given, so comparing deployed and new parameters finds a
# change that is none. Show every value as CloudFormation does: the string given.
def _parameter_list(self):
    hidden = self.resource_map.no_echo_parameter_keys
    return [
        {"ParameterKey": key, "ParameterValue": "****" if key in hidden else _as_given(value)}
        for key, value in self.resource_map.resolved_parameters.items()
    ]


def _as_given(value) -> str:
    """A parameter's value as it was given, from moto's parsed one."""
    return ",".join(map(str, value)) if isinstance(value, list) else str(value)


cfn_models.Stack.parameter_list = property(_parameter_list)


# Gap: DescribeStackResources and ListStackResources list a resource moto did not create (a type
# it skips, or a false Condition) as an entry without LogicalResourceId, and listing a deleted or
# rolled-back stack's resources creates them again (the resource map creates what it is asked
# for). List the created ones that still exist, in template order, creating nothing.
def _created_resources(resource_map) -> list:
    parsed = resource_map._parsed_resources
    return [parsed[name] for name in resource_map._resource_json_map if parsed.get(name) is not None]


cfn_models.Stack.stack_resources = property(lambda self: _created_resources(self.resource_map))


# Gap: parameters used only inside Fn::Sub (ImageTag, TaskCpu, DeregistrationDelaySeconds...)
# never mark a resource as changed: only Ref is scanned. Scan Sub variables and GetAtt too.
parsing.get_references_from_template = lambda template: sorted(template_reads.references(template))


# Gap: a resource whose inputs change because a resource it refers to was modified (the ECS
# service when a new task definition revision replaces the old) is never updated, and modified
# resources are updated in template order, not dependency order. Extend "Modify" to dependents
# and order it; an update whose resolved properties did not change is a no-op, as in AWS.
# Gap: a parameter read only through a condition (WafCountOnly in Fn::If, AlertEmails in the
# subscriptions' Condition) marks nothing changed, and an update ignores Condition: a resource
# whose condition turned false is updated instead of deleted, one turned true is not created.
# A resource reading such a condition changes when the condition's value does, and the change is
# the parameter's (the condition is evaluated on the new values with moto's own evaluator).
_build_resource_diff = parsing.ResourceMap.build_resource_diff


def _resolved(resource_map, template, parameters) -> tuple[dict, dict] | None:
    """(parameter values, condition values) of template on the given parameters, as moto resolves
    them on execution (defaults for what is left out, list parameters, mappings, pseudo parameters),
    with a throwaway ResourceMap; None if moto cannot resolve them: execution then fails with
    moto's own error."""
    probe = parsing.ResourceMap(
        resource_map.stack_id,
        resource_map._parsed_resources["AWS::StackName"],
        parameters or {},
        {},
        resource_map._region_name,
        resource_map._account_id,
        template,
        resource_map.cross_stack_resources,
    )
    try:
        probe.load_mapping()
        probe.load_parameters()
        probe.load_conditions()
        return probe.resolved_parameters, {name: bool(probe.lazy_condition_map[name]) for name in template.get("Conditions", {})}
    except Exception:
        return None


def _changed_inputs(resource_map, template, parameters) -> tuple[set, dict]:
    """(the parameters whose value changes, a default taking the place of a value left out
    included; condition -> the changed parameters it reads, directly or through other conditions,
    for each condition whose value changes with them). A condition that reads a changed parameter
    but keeps its value (Canary when ROLLING becomes BLUE_GREEN) changes nothing that reads it."""
    resolved, before = _resolved(resource_map, template, parameters), getattr(resource_map, "lazy_condition_map", {})
    if resolved is None:
        changed = {name for name, value in (parameters or {}).items() if resource_map.input_parameters.get(name) != value}
    else:
        # Compared as the text resources read: moto parses a Number into an int and a list parameter into a list, where
        # a Ref gives "8000" and "a,b" either way (resolver.evaluates_alike): a ContainerPort declared a String anew
        # with the value it had replaced both target groups.
        running = resource_map.resolved_parameters
        changed = {
            name
            for name, value in resolved[0].items()
            if name not in running or resolver.scalar_text(running[name]) != resolver.scalar_text(value)  # a list: its items comma-joined
        }
    conditions, reads = template.get("Conditions", {}), {}
    while more := {
        c: template_reads.references(body) & changed | {p for d in template_reads.conditions_used(body) & set(reads) for p in reads[d]}
        for c, body in conditions.items()
        if c not in reads and (template_reads.references(body) & changed or template_reads.conditions_used(body) & set(reads))
    }:
        reads |= more
    if resolved is not None:
        reads = {c: found for c, found in reads.items() if c not in before or bool(before[c]) != resolved[1][c]}
    return changed, reads


def _build_resource_diff_with_dependents(self, other_template, parameters=None):
    actions = _build_resource_diff(self, other_template, parameters)
    resources, existing = other_template["Resources"], self._resource_json_map
    refs = {name: template_reads.references(body) for name, body in resources.items()}
    uses = {name: template_reads.conditions_used(body) for name, body in resources.items()}
    changed, flipped = _changed_inputs(self, other_template, parameters)
    modify = set(actions["Modify"]) | {
        name for name in resources if name in existing and (uses[name] & set(flipped) or refs[name] & changed)
    }
    while dependents := {name for name in resources if name in existing and name not in modify and refs[name] & modify}:
        modify |= dependents
    order = TopologicalSorter({name: refs[name] & modify - {name} for name in sorted(modify)})
    return actions | {"Modify": list(order.static_order())}


parsing.ResourceMap.build_resource_diff = _build_resource_diff_with_dependents
_parse_and_update_resource = parsing.parse_and_update_resource
_parse_and_create_resource = parsing.parse_and_create_resource


def _resolved_properties(resource_json, resources_map):
    return parsing.clean_json(resource_json.get("Properties", {}), resources_map)


@cache
def _schemas():
    """cfn-lint's schema manager and its not-found error. Imported at the first change set, not at
    start-up: it takes a second, which a server that only answers a test's few calls would pay for
    nothing. What the import makes lives as long as the server (errors.long_lived: the collector
    walked it for a second of the server's CPU in a test run)."""
    with long_lived():
        from cfnlint.schema import ResourceNotFoundError

        from templates.validation import resource_schemas

        return resource_schemas(), ResourceNotFoundError


@cache
def _schema(resource_type: str, region_name: str) -> dict:
    """The CloudFormation resource schema of the type, as cfn-lint ships it ({} for one it lacks)."""
    manager, not_found = _schemas()
    try:
        return manager.get_resource_schema(region_name, resource_type).schema
    except not_found:
        return {}


def _create_only(resource_type: str, region_name: str) -> list[str]:
    """JSON pointers (/properties/Name) of the properties whose change replaces the resource."""
    return _schema(resource_type, region_name).get("createOnlyProperties", [])


_ABSENT = object()


def _at(properties, pointer: str):
    """The value a /properties/... pointer names; a * (each list item) compares the whole list."""
    node = properties
    for part in pointer.split("/")[2:]:
        if part == "*":
            break
        if not isinstance(node, dict) or part not in node:
            return _ABSENT
        node = node[part]
    return node


def _replaced(resource_type, original, properties, region_name) -> bool:
    before = getattr(original, "compat_properties", None)
    return before is not None and any(_at(before, p) != _at(properties, p) for p in _create_only(resource_type, region_name))


# Gap: resources a stack creates through a change set carry none of the stack's tags, nor the
# aws:cloudformation:stack-name, stack-id and logical-id tags CloudFormation adds to the types
# whose schema says so (cloudFormationSystemTags; not AWS::KMS::Key). Only AWS can set aws: tags,
# which is what lets `make purge` tell a resource its stacks created from one made by hand.
# https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-properties-resource-tags.html
def _tag_list(tags: dict) -> list:
    return [{"Key": key, "Value": value} for key, value in tags.items()]


TAGGERS = {  # type -> tag(resource, tags dict, account, region) through the service's own backend
    "AWS::Logs::LogGroup": lambda r, tags, a, region: logs_models.logs_backends[a][region].tag_resource(r.arn, tags),
    "AWS::S3::Bucket": lambda r, tags, a, region: s3_models.s3_backends[a][get_partition(region)].tagger.tag_resource(
        r.arn, _tag_list(tags)
    ),
    # ACM's API refuses aws: keys, as it should from a caller: set them as AWS itself does.
    "AWS::CertificateManager::Certificate": lambda r, tags, a, region: (
        acm_backends[a][region].get_certificate(r.physical_resource_id).tags.update(tags)
    ),
    "AWS::ElasticLoadBalancingV2::LoadBalancer": lambda r, tags, a, region: elbv2_models.elbv2_backends[a][region].add_tags(
        [r.arn], _tag_list(tags)
    ),
    "AWS::ElasticLoadBalancingV2::TargetGroup": lambda r, tags, a, region: elbv2_models.elbv2_backends[a][region].add_tags(
        [r.arn], _tag_list(tags)
    ),
    "AWS::EC2::SecurityGroup": lambda r, tags, a, region: ec2_models.ec2_backends[a][region].create_tags([r.id], tags),
}


def _tag_as_cloudformation_does(resource, resource_type, logical_id, resources_map, account_id, region_name):
    tagging = _schema(resource_type, region_name).get("tagging", {})
    if resource_type not in TAGGERS or not tagging.get("taggable"):
        return
    tags = {key: value for key, value in resources_map.tags.items() if not key.startswith("aws:")}
    if tagging.get("cloudFormationSystemTags"):
        tags |= {
            "aws:cloudformation:stack-name": resources_map["AWS::StackName"],
            "aws:cloudformation:stack-id": resources_map["AWS::StackId"],
            "aws:cloudformation:logical-id": logical_id,
        }
    TAGGERS[resource_type](resource, tags, account_id, region_name)


# Gap: an update with new stack tags (a change set's, or UpdateStack's) gave them to the stack alone; AWS: "CloudFormation
# also propagates these tags to supported resources in the stack" (Tags in
# https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_UpdateStack.html). Added or changed here; a
# tag taken off the stack stays on its resources in the sandbox.
def _tag_the_resources_anew(stack, tags) -> None:
    resource_map = stack.resource_map
    resource_map.tags = dict(tags)
    for logical_id, resource in resource_map._parsed_resources.items():
        declared = resource_map._resource_json_map.get(logical_id)
        if resource is not None and declared is not None:
            # one deleted outside CloudFormation is passed over: the sandbox reports the update complete, where AWS fails it
            # (README: The sandbox, Where it differs from AWS)
            with contextlib.suppress(Exception):
                _tag_as_cloudformation_does(resource, declared["Type"], logical_id, resource_map, stack.account_id, stack.region_name)


# Gap: deleting a log group or a bucket keeps its tags, and a new one of the same name (the same
# ARN) shows them: one made by hand would carry the aws:cloudformation tags of a deleted stack's.
_delete_log_group = logs_models.LogsBackend.delete_log_group
_delete_bucket = s3_models.S3Backend.delete_bucket


def _delete_log_group_and_tags(self, log_group_name):
    arn = self.groups[log_group_name].arn if log_group_name in self.groups else None
    _delete_log_group(self, log_group_name)
    self.tagger.delete_all_tags_for_resource(arn)


def _delete_bucket_and_tags(self, bucket_name):
    deleted = _delete_bucket(self, bucket_name)
    if deleted is not None:
        self.tagger.delete_all_tags_for_resource(deleted.arn)
    return deleted


logs_models.LogsBackend.delete_log_group = _delete_log_group_and_tags
s3_models.S3Backend.delete_bucket = _delete_bucket_and_tags


@contextlib.contextmanager
def _naming_the_failed(logical_id, resource_json):
    """An error raised inside names this resource (a rollback's event says which failed)."""
    try:
        yield
    except Exception as error:
        if not hasattr(error, "compat_failed"):  # the innermost one: a resource created on the way is not it
            error.compat_failed = (logical_id, resource_json["Type"])
        raise


def _parse_and_create_resource_remembering(logical_id, resource_json, resources_map, account_id, region_name):
    with _naming_the_failed(logical_id, resource_json):
        resource = _parse_and_create_resource(logical_id, resource_json, resources_map, account_id, region_name)
        if resource is not None:
            _tag_as_cloudformation_does(resource, resource_json["Type"], logical_id, resources_map, account_id, region_name)
    if resource is not None:
        resource.compat_properties = _resolved_properties(resource_json, resources_map)
    return resource


def _parse_and_update_resource_if_changed(logical_id, resource_json, resources_map, account_id, region_name):
    original, condition = resources_map[logical_id], resource_json.get("Condition")
    if condition and not resources_map.lazy_condition_map[condition]:
        # its Condition turned false: AWS deletes it (moto would update it), unless its DeletionPolicy keeps it
        if original is not None and not _kept_when_removed(resources_map, logical_id, resource_json):
            resources_map._delete_resource(original, resource_json)
        return None
    if original is None:  # its Condition turned true: create it (a type moto skips stays None)
        return _parse_and_create_resource_remembering(logical_id, resource_json, resources_map, account_id, region_name)
    properties = _resolved_properties(resource_json, resources_map)
    if getattr(original, "compat_properties", None) == properties:
        return original  # nothing to change
    if _replaced(resource_json["Type"], original, properties, region_name):
        # Gap: a create-only property change was dropped where moto cannot update the type (a new
        # LogGroupName), made in place where it can (a listener moved to another load balancer), or
        # made by deleting the old resource first (a security group others still use): a new
        # NamePrefix failed. AWS replaces: creates the new resource and, once every resource is updated
        # (the cleanup phase), deletes the old one unless its UpdateReplacePolicy keeps it. Until
        # then an update rollback switches back to the old one.
        # https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-attribute-updatereplacepolicy.html
        # https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/using-cfn-updating-stacks-monitor-stack.html
        replacement = _parse_and_create_resource_remembering(logical_id, resource_json, resources_map, account_id, region_name)
        replacement.compat_replaced = original
        replacement.compat_cleanup = resource_json if resource_json.get("UpdateReplacePolicy", "Delete") == "Delete" else None
        return replacement
    # moto returns None for types it cannot update, which would lose the resource: keep it.
    with _naming_the_failed(logical_id, resource_json):
        updated = _parse_and_update_resource(logical_id, resource_json, resources_map, account_id, region_name) or original
    if resource_json["Type"] in UPDATED_IN_PLACE:
        UPDATED_IN_PLACE[resource_json["Type"]](updated, properties, account_id, region_name)
    updated.compat_properties = properties
    return updated


# Gap: moto cannot update a log group or a target group, so a stack update that changed a log
# group's retention or a target group's health check kept the old values, and `make drift` then
# called the template's new values drift. AWS changes both in place (Update requires: No
# interruption); these apply what DRIFT_READERS reads back.
# https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-logs-loggroup.html
# https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-elasticloadbalancingv2-targetgroup.html
# A resource deleted by hand is left for drift detection to call DELETED.
def _update_log_group(group, properties, account_id, region_name) -> None:
    if (found := logs_models.logs_backends[account_id][region_name].groups.get(group.name)) is not None:
        found.set_retention_policy(properties.get("RetentionInDays"))
        # KmsKeyId is changed in place too: the resource schema cfn-lint ships has LogGroupName alone createOnly
        found.kms_key_id = properties.get("KmsKeyId")


# Gap: moto's LogGroup takes the API's kmsKeyId, not the template's KmsKeyId, so a log group a stack
# made had no key: make purge, which leaves a key that a log group in no stack still uses, could not
# be rehearsed with the groups an update or a destroy kept. (Same page as above: KmsKeyId.)
_log_group_create = logs_models.LogGroup.create_from_cloudformation_json.__func__


def _log_group_create_with_key(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
    group = _log_group_create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
    group.kms_key_id = cloudformation_json.get("Properties", {}).get("KmsKeyId")
    return group


logs_models.LogGroup.create_from_cloudformation_json = classmethod(_log_group_create_with_key)


def _update_target_group(group, properties, account_id, region_name) -> None:
    backend = elbv2_models.elbv2_backends[account_id][region_name]
    if group.arn not in backend.target_groups:
        return
    backend.modify_target_group(
        group.arn,
        health_check_proto=properties.get("HealthCheckProtocol"),
        health_check_port=properties.get("HealthCheckPort"),
        health_check_path=properties.get("HealthCheckPath"),
        health_check_interval=properties.get("HealthCheckIntervalSeconds"),
        health_check_timeout=properties.get("HealthCheckTimeoutSeconds"),
        healthy_threshold_count=properties.get("HealthyThresholdCount"),
        unhealthy_threshold_count=properties.get("UnhealthyThresholdCount"),
        http_codes=properties.get("Matcher", {}).get("HttpCode"),
        health_check_enabled=properties.get("HealthCheckEnabled"),
    )


# Gap: moto's key kept its description and policy through a stack update (a new NamePrefix), so make purge, which
# reads a retained key's own description, took the layer's key for another's. Both are updated in place on AWS
# (UpdateType Mutable): https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-kms-key.html
def _update_key(key, properties, account_id, region_name) -> None:
    key.description = properties.get("Description", "")
    if "KeyPolicy" in properties:
        policy = properties["KeyPolicy"]
        key.policy = policy if isinstance(policy, str) else json.dumps(policy)


UPDATED_IN_PLACE = {
    "AWS::Logs::LogGroup": _update_log_group,
    "AWS::ElasticLoadBalancingV2::TargetGroup": _update_target_group,
    "AWS::KMS::Key": _update_key,
}


parsing.parse_and_create_resource = _parse_and_create_resource_remembering
parsing.parse_and_update_resource = _parse_and_update_resource_if_changed


# Gap: a change set whose only difference is parameter values shows no Changes (ChangeSet.diff
# ignores parameters), so the deployer would call it empty.
# Gap: a Modify change carries no Replacement and no Details, so a change that replaces a
# stateful resource (a new LogGroupName or target group Name) looks harmless and the deployer's
# refusal cannot be rehearsed. Say, per changed property, what changes it (DirectModification,
# ParameterReference, ResourceReference) and whether it recreates the resource: Always for the
# properties the type's schema lists in createOnlyProperties. Replacement is True for an Always
# known now (Static), Conditional for one that depends on a replaced resource's new id (Dynamic);
# A Ref to a resource that is only modified, not replaced, changes nothing and is not listed; a
# Fn::GetAtt of one may (ResourceAttribute, Dynamic: its value is known once the update ran, as
# API_ResourceChangeDetail defines them; that AWS lists each such reader is not checked on AWS). A
# dependent (its own template unchanged) left with no detail changes nothing: moto still updates it
# (a no-op), but the change set does not list it (it showed an IAM role as modified, with no cause,
# when a log group's retention changed). One whose template changed outside its properties (a
# DeletionPolicy) is listed, as before.
# https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_ResourceChange.html
# https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_ResourceChangeDetail.html
def _change_details(resource_map, name, body, changed, flipped, replaced, modified=frozenset(), alike=None) -> list[dict]:
    """alike(value before, value after): a property written otherwise that takes the same value, which changes nothing."""
    before = resource_map._resource_json_map.get(name, {}).get("Properties", {})
    after = body.get("Properties", {})
    create_only = _create_only(body["Type"], resource_map._region_name)
    details = []
    for prop in sorted(set(before) | set(after)):
        value = after.get(prop)
        written_alike = alike is not None and prop in before and prop in after and alike(before[prop], value)
        if before.get(prop) != value and not written_alike:
            causes = [("DirectModification", None, "Static")]
        else:
            refs = template_reads.references(value)
            read = refs & changed | {
                p for c in template_reads.conditions_used(value) & set(flipped) for p in flipped[c]
            }  # parameters, never conditions
            causes = [("ParameterReference", entity, "Static") for entity in sorted(read)]
            causes += [("ResourceReference", entity, "Dynamic") for entity in sorted(refs & replaced - {name})]
            read = {entity for entity in template_reads.attributes_read(value) if entity.split(".")[0] in modified - replaced - {name}}
            causes += [("ResourceAttribute", entity, "Dynamic") for entity in sorted(read)]
        pointer = f"/properties/{prop}"
        recreation = (
            "Always" if pointer in create_only else "Conditionally" if any(p.startswith(pointer + "/") for p in create_only) else "Never"
        )
        for source, entity, evaluation in causes:
            target = {"Attribute": "Properties", "Name": prop, "RequiresRecreation": recreation}
            details.append(
                {"Target": target, "Evaluation": evaluation, "ChangeSource": source} | ({"CausingEntity": entity} if entity else {})
            )
    return details


def _readers(resource_map, template, parameters):
    """alike(old value, new value) for _change_details: the deployed template with the values it runs, and the new one
    with the change set's, evaluate alike (templates/resolver.py evaluates_alike)."""
    region = resource_map._region_name
    before = resolver.with_defaults(resource_map._template, resource_map.input_parameters or {}, region)
    after = resolver.with_defaults(template, parameters or {}, region)
    return lambda old_value, new_value: resolver.evaluates_alike(before, old_value, after, new_value)


def _replacement(details) -> str:
    recreations = {(d["Target"]["RequiresRecreation"], d["Evaluation"]) for d in details}
    if ("Always", "Static") in recreations:
        return "True"
    return "Conditional" if any(recreation != "Never" for recreation, _ in recreations) else "False"


# Gap: the Changes list every resource of the template, whatever its Condition: a first alb deploy
# listed the blue/green test listener, its rule and its ingress, which a rolling release never
# creates, and a Condition that turns false or true showed as Modify. CloudFormation creates a
# resource only while its Condition holds for the stack's parameters, so a change set adds one whose
# Condition turned true and removes one whose Condition turned false.
# https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-attribute-condition.html
# https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/conditions-section-structure.html
def _present(resources: dict, conditions) -> set:
    """The logical ids of resources whose Condition (if any) holds in conditions. One naming a
    condition the template lacks counts as present: executing the change set then fails as before."""
    return {name for name, body in resources.items() if body.get("Condition") not in conditions or conditions[body["Condition"]]}


def _change_set_diff_with_parameters(self):
    resource_map = self.stack.resource_map
    names_by_action = resource_map.build_resource_diff(self.template_dict, self.parameters)
    resolved = _resolved(resource_map, self.template_dict, self.parameters)
    if resolved is not None:
        new, old = self.template_dict["Resources"], resource_map._resource_json_map
        before = _present(old, getattr(resource_map, "lazy_condition_map", {}))
        after = _present(new, resolved[1])
        names_by_action = {
            "Add": [name for name in new if name in after - before],
            "Modify": [name for name in names_by_action["Modify"] if name in after & before],
            "Remove": [name for name in old if name in before - after],
        }
    types = {name: r["Type"] for name, r in (resource_map._resource_json_map | self.template_dict["Resources"]).items()}
    changed, flipped = _changed_inputs(resource_map, self.template_dict, self.parameters)
    readers = _readers(resource_map, self.template_dict, self.parameters)
    found, replaced, modified = [], set(), set()
    for action, names in names_by_action.items():
        for name in names:  # Modify in dependency order: whether what a resource refers to is replaced is known
            change = cfn_models.Change(action, name, types[name])
            if action != "Add":  # Gap: moto named no physical id; AWS does for what exists (API_ResourceChange.html)
                change.physical_resource_id = getattr(resource_map._parsed_resources.get(name), "physical_resource_id", None)
            if action == "Modify":
                body = self.template_dict["Resources"][name]
                change.details = _change_details(resource_map, name, body, changed, flipped, replaced, modified, readers)
                if not change.details and resolver.same_values(
                    resolver.outside_properties(resource_map._resource_json_map.get(name)), resolver.outside_properties(body)
                ):
                    continue  # a dependent whose inputs do not change, or one whose properties are written otherwise alone
                change.replacement = _replacement(change.details)
                change.scope = ["Properties"] if change.details else []  # [] : DeletionPolicy, DependsOn... changed
                modified.add(name)
                replaced |= {name} if change.replacement != "False" else set()
            found.append(change)
    return found


cfn_models.ChangeSet.diff = _change_set_diff_with_parameters


# Gap: GetAtt TargetGroupFullName, LoadBalancerFullName and CanonicalHostedZoneID are not
# implemented; one unresolved GetAtt in Outputs drops every output of the alb layer.
def _target_group_attribute(self, name):
    if name == "TargetGroupFullName":
        return self.arn.split(":")[-1]
    raise parsing.UnformattedGetAttTemplateException()


_load_balancer_attribute = elbv2_models.FakeLoadBalancer.get_cfn_attribute


def _load_balancer_attribute_full(self, name):
    if name == "LoadBalancerFullName":
        return self.arn.split(":loadbalancer/")[-1]
    if name == "CanonicalHostedZoneID":
        return self.canonical_hosted_zone_id
    return _load_balancer_attribute(self, name)


elbv2_models.FakeTargetGroup.get_cfn_attribute = _target_group_attribute
# Gap: a deleted load balancer or listener stays in its certificate's InUseBy and its target
# groups' LoadBalancerArns, so ACM refuses to delete the certificate ever after. AWS forgets it.
_delete_load_balancer = elbv2_models.ELBv2Backend.delete_load_balancer
_delete_listener = elbv2_models.ELBv2Backend.delete_listener


def _forget_users(backend, load_balancer_arn, listener_arns):
    for certificate in acm_backends[backend.account_id][backend.region_name]._certificates.values():
        certificate.in_use_by = [user for user in certificate.in_use_by if user not in listener_arns]
    if load_balancer_arn:
        for group in backend.target_groups.values():
            group.load_balancer_arns = [arn for arn in group.load_balancer_arns if arn != load_balancer_arn]


def _delete_load_balancer_and_its_uses(self, arn):
    balancer = self.load_balancers.get(arn)
    _delete_load_balancer(self, arn)
    if balancer is not None:
        _forget_users(self, arn, set(balancer.listeners))


def _delete_listener_and_its_uses(self, listener_arn):
    listener = _delete_listener(self, listener_arn)
    _forget_users(self, None, {listener_arn})
    return listener


elbv2_models.ELBv2Backend.delete_load_balancer = _delete_load_balancer_and_its_uses
elbv2_models.ELBv2Backend.delete_listener = _delete_listener_and_its_uses
# Gap: deleting a stack (or rolling back its create) leaves its target group: moto's model has no
# delete. Delete it through the backend, which refuses while a listener still forwards to it.
elbv2_models.FakeTargetGroup.delete = lambda self, account_id, region_name: elbv2_models.elbv2_backends[account_id][
    region_name
].delete_target_group(self.arn)
elbv2_models.FakeLoadBalancer.get_cfn_attribute = _load_balancer_attribute_full


# Gap: a listener, a listener rule or a security-group ingress rule that a stack removes (its
# Condition turned false: DeploymentStrategy back to ROLLING) or deletes stays in the emulator:
# moto's models have no delete. CloudFormation re-evaluates the conditions at each update and
# deletes the resources whose condition is now false, and a stack's deletion deletes its resources:
# https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/conditions-section-structure.html
# Delete them through the backends; one already gone with its load balancer or its group is no error
# (_not_found), also where a model deletes it itself, not through the stack's resource map.
def _deleted_quietly(delete):
    def quietly(self, account_id, region_name):
        _unless_gone(delete, self, account_id, region_name)

    return quietly


def _delete_ingress(self, account_id, region_name):
    p = self.properties
    source = {key: p[name] for key, name in (("GroupId", "SourceSecurityGroupId"), ("GroupName", "SourceSecurityGroupName")) if p.get(name)}
    ranges = [{"CidrIp": p["CidrIp"], "Description": p.get("Description")}] if p.get("CidrIp") else []
    ec2_models.ec2_backends[account_id][region_name].revoke_security_group_ingress(
        self.security_group.id, p.get("IpProtocol"), p.get("FromPort"), p.get("ToPort"), ranges, [source] if source else []
    )


# Gap: moto deletes a security group that another group's rule still names; AWS refuses with
# DependencyViolation. Refused here too, a stack's deletion deletes such a rule before its source
# group, as CloudFormation does (a resource that refers to another is deleted before it): moto's
# ResourceMap.delete tries a refused deletion again once the others have gone.
# https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DeleteSecurityGroup.html
# https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-attribute-dependson.html
_delete_security_group = ec2_security_groups.SecurityGroupBackend._delete_security_group


def _delete_security_group_unless_named(self, vpc_id, group_id):
    naming = [
        group.id
        for groups in self.groups.values()
        for group in groups.values()
        if group.id != group_id
        and any(rule.source_group.get("GroupId") == group_id for rule in [*group.ingress_rules, *group.egress_rules])
    ]
    if naming:
        raise ec2_exceptions.DependencyViolationError(f"resource {group_id} has a dependent object: the rules of {', '.join(naming)}")
    _delete_security_group(self, vpc_id, group_id)


ec2_security_groups.SecurityGroupBackend._delete_security_group = _delete_security_group_unless_named


elbv2_models.FakeListener.delete = _deleted_quietly(
    lambda self, account_id, region_name: elbv2_models.elbv2_backends[account_id][region_name].delete_listener(self.arn)
)
elbv2_models.FakeListenerRule.delete = _deleted_quietly(
    lambda self, account_id, region_name: elbv2_models.elbv2_backends[account_id][region_name].delete_rule(self.arn)
)
ec2_security_groups.SecurityGroupIngress.delete = _deleted_quietly(_delete_ingress)


# Gap: a KMS key made by CloudFormation keeps its KeyPolicy as an object, not the JSON text AWS
# stores, so DescribeKey and GetKeyPolicy of it (the alert topic's key) answer HTTP 500.
_key_create = kms_models.Key.create_from_cloudformation_json.__func__


def _key_create_with_policy_text(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
    key = _key_create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
    if not isinstance(key.policy, str):
        key.policy = json.dumps(key.policy)
    key.compat_pending_window = int(cloudformation_json.get("Properties", {}).get("PendingWindowInDays", 30))  # a Ref's is text
    return key


kms_models.Key.create_from_cloudformation_json = classmethod(_key_create_with_policy_text)


# Gap: moto deleted a key its stack deleted at once, so the review's and README's way back (cancel the deletion,
# then enable the key) failed on the sandbox with NotFoundException. "When you remove a KMS key from a CloudFormation
# stack, AWS KMS schedules the KMS key for deletion and starts the mandatory waiting period" (PendingWindowInDays,
# 30 when the template sets none): scheduled here too.
# https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-kms-key.html
def _key_delete_scheduled(self, account_id, region_name):
    backend = kms_models.kms_backends[account_id][region_name]
    if self.id not in backend.keys:
        raise kms_exceptions.NotFoundException(f"Key '{self.arn}' does not exist")  # gone: _not_found takes it as deleted
    if self.key_state != "PendingDeletion":  # one scheduled by hand keeps its date
        backend.schedule_key_deletion(self.id, getattr(self, "compat_pending_window", 30))


kms_models.Key.delete = _key_delete_scheduled


# Gap: the ECS service loses its load balancers, launch type, network configuration, deployment
# configuration (circuit breaker) and grace period; the task definition loses cpu, Fargate,
# network mode, roles and runtime platform. Pass every property to moto's ECS backend.
def _camel(value):
    return remap_nested_keys(value, pascal_to_camelcase)


def _task_definition_create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
    p = cloudformation_json["Properties"]
    return ecs_models.ecs_backends[account_id][region_name].register_task_definition(
        family=p["Family"],
        container_definitions=_camel(p["ContainerDefinitions"]),
        volumes=_camel(p.get("Volumes", [])),
        network_mode=p.get("NetworkMode"),
        requires_compatibilities=p.get("RequiresCompatibilities"),
        cpu=p.get("Cpu"),
        memory=p.get("Memory"),
        task_role_arn=p.get("TaskRoleArn"),
        execution_role_arn=p.get("ExecutionRoleArn"),
        runtime_platform=_camel(p.get("RuntimePlatform")),
    )


def _task_definition_update(cls, original_resource, new_resource_name, cloudformation_json, account_id, region_name):
    # Any change makes a new revision; the old one is deregistered, as AWS does after the update.
    new = _task_definition_create(cls, new_resource_name, cloudformation_json, account_id, region_name)
    ecs_models.ecs_backends[account_id][region_name].deregister_task_definition(original_resource.arn)
    return new


SERVICE_SETTINGS = {  # CloudFormation property -> attribute of moto's Service (what DescribeServices returns)
    "LoadBalancers": "load_balancers",
    "NetworkConfiguration": "network_configuration",
    "PlatformVersion": "platform_version",
    "PropagateTags": "propagate_tags",
    "DeploymentConfiguration": "deployment_configuration",
    "HealthCheckGracePeriodSeconds": "health_check_grace_period_seconds",
    "EnableECSManagedTags": "enable_ecs_managed_tags",
}


def _service_create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
    p = cloudformation_json["Properties"]
    backend = ecs_models.ecs_backends[account_id][region_name]
    service = backend.create_service(
        p["Cluster"],
        resource_name,
        p.get("DesiredCount", 1),  # AWS starts a new service with 1 task when DesiredCount is omitted
        task_definition_str=p["TaskDefinition"],
        launch_type=p.get("LaunchType"),
        network_configuration=_camel(p.get("NetworkConfiguration")),
        tags=_camel(p.get("Tags")),
    )
    for prop, attribute in SERVICE_SETTINGS.items():
        if prop in p:
            setattr(service, attribute, _camel(p[prop]))
    return service


def _service_update(cls, original_resource, new_resource_name, cloudformation_json, account_id, region_name):
    p = cloudformation_json["Properties"]
    settings = {attribute: _camel(p[prop]) for prop, attribute in SERVICE_SETTINGS.items() if prop in p}
    return ecs_models.ecs_backends[account_id][region_name].update_service(
        {"cluster": p["Cluster"], "service": original_resource.name, "task_definition": p["TaskDefinition"]}
        | {"desired_count": p.get("DesiredCount"), "launch_type": p.get("LaunchType")}
        | settings
    )


ecs_models.TaskDefinition.create_from_cloudformation_json = classmethod(_task_definition_create)
ecs_models.TaskDefinition.update_from_cloudformation_json = classmethod(_task_definition_update)
ecs_models.Service.create_from_cloudformation_json = classmethod(_service_create)
ecs_models.Service.update_from_cloudformation_json = classmethod(_service_update)
# Gap: deleting the stack leaves the ECS service active (moto's Service has no delete for it).
ecs_models.Service.delete = lambda self, account_id, region_name: self._backend.delete_service(self.cluster_name, self.name, force=True)


class _ClusterContainsServices(ecs_exceptions.ECSException):
    def __init__(self):
        super().__init__(
            "ClusterContainsServicesException",
            # the exception's documented description (the API reference gives no message text)
            "You can't delete a cluster that contains services. First, update the service to reduce its desired task count "
            "to 0, and then delete the service.",
        )


def _delete_cluster_without_services(self, cluster_str):
    """Gap: moto deleted (made INACTIVE) a cluster its services still ran in, and the next release of the service then
    completed in it. ECS refuses: "You can't delete a cluster that contains services. First, update the service to
    reduce its desired task count to 0, and then delete the service."
    https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DeleteCluster.html (ClusterContainsServicesException)"""
    cluster = self._get_cluster(cluster_str)
    if any(service.cluster_name == cluster.name and service.status == "ACTIVE" for service in self.services.values()):
        raise _ClusterContainsServices()
    return _moto_delete_cluster(self, cluster_str)


_moto_delete_cluster = ecs_models.EC2ContainerServiceBackend.delete_cluster
ecs_models.EC2ContainerServiceBackend.delete_cluster = _delete_cluster_without_services


def _create_service_of_a_new_name(self, cluster_str, service_name, *args, **kwargs):
    """Gap: moto's CreateService replaced an active service of the same name in the cluster, so a stack's create took
    over one made by hand (and its destroy then deleted it). "Service names must be unique within a cluster"
    (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_CreateService.html, serviceName); AWS's answer, as
    reported in the field: InvalidParameterException "Creation of service was not idempotent." (the field reports it
    for a service still draining after its deletion too, which moto makes INACTIVE at once; a repeat of the very same
    request, which AWS may take as that service, is refused here as well: nothing in the tools repeats one)."""
    cluster = self._get_cluster(cluster_str)
    existing = self.services.get(f"{cluster.name}:{service_name}")
    if existing is not None and existing.status == "ACTIVE":
        raise ecs_exceptions.InvalidParameterException("Creation of service was not idempotent.")
    return _moto_create_service(self, cluster_str, service_name, *args, **kwargs)


_moto_create_service = ecs_models.EC2ContainerServiceBackend.create_service
ecs_models.EC2ContainerServiceBackend.create_service = _create_service_of_a_new_name


# Gap: AWS::CertificateManager::Certificate, AWS::ApplicationAutoScaling::ScalableTarget and
# ::ScalingPolicy have no CloudFormation model: skipped with a warning, so the HTTPS listener
# has no certificate and nothing scales. Models for them over moto's ACM and
# Application Auto Scaling backends (a change replaces the resource: delete, then create).
class _Replaced:
    """Mixin: a physical id; update = delete + create; delete by physical id."""

    def __init__(self, physical_resource_id):
        self.physical_resource_id = physical_resource_id

    @staticmethod
    def cloudformation_name_type():
        return ""

    @classmethod
    def update_from_cloudformation_json(cls, original_resource, new_resource_name, cloudformation_json, account_id, region_name):
        cls.delete_from_cloudformation_json(original_resource.physical_resource_id, cloudformation_json, account_id, region_name)
        return cls.create_from_cloudformation_json(new_resource_name, cloudformation_json, account_id, region_name)

    def delete(self, account_id, region_name):
        self.delete_from_cloudformation_json(self.physical_resource_id, {}, account_id, region_name)


class Certificate(_Replaced, CloudFormationModel):
    @staticmethod
    def cloudformation_type():
        return "AWS::CertificateManager::Certificate"

    @classmethod
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        p = cloudformation_json["Properties"]
        backend = acm_backends[account_id][region_name]
        arn = backend.request_certificate(p["DomainName"], None, p.get("SubjectAlternativeNames", []), p.get("Tags", []))
        # CloudFormation finishes creating a DNS-validated certificate only once it is issued.
        backend.get_certificate(arn).status = "ISSUED"
        return cls(arn)

    @classmethod
    def delete_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name):
        acm_backends[account_id][region_name].delete_certificate(resource_name)


class ScalableTarget(_Replaced, CloudFormationModel):
    @staticmethod
    def cloudformation_type():
        return "AWS::ApplicationAutoScaling::ScalableTarget"

    @classmethod
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        p = cloudformation_json["Properties"]
        applicationautoscaling_backends[account_id][region_name].register_scalable_target(
            p["ServiceNamespace"], p["ResourceId"], p["ScalableDimension"], p["MinCapacity"], p["MaxCapacity"], p.get("RoleARN"), None
        )
        # Ref of a scalable target is "resource id|scalable dimension|service namespace".
        return cls("|".join([p["ResourceId"], p["ScalableDimension"], p["ServiceNamespace"]]))

    @classmethod
    def delete_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name):
        resource_id, dimension, namespace = resource_name.split("|")
        backend = applicationautoscaling_backends[account_id][region_name]
        if backend._scalable_target_exists(resource_id, dimension):  # one deregistered by hand is gone (moto: a ValidationException)
            backend.deregister_scalable_target(namespace, resource_id, dimension)


class ScalingPolicy(_Replaced, CloudFormationModel):
    @staticmethod
    def cloudformation_type():
        return "AWS::ApplicationAutoScaling::ScalingPolicy"

    @classmethod
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        p = cloudformation_json["Properties"]
        resource_id, dimension, namespace = p["ScalingTargetId"].split("|")
        body = p.get("TargetTrackingScalingPolicyConfiguration") or p.get("StepScalingPolicyConfiguration")
        policy = applicationautoscaling_backends[account_id][region_name].put_scaling_policy(
            p["PolicyName"], namespace, resource_id, dimension, body, p["PolicyType"]
        )
        return cls(policy.policy_arn)

    @classmethod
    def delete_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name):
        backend = applicationautoscaling_backends[account_id][region_name]
        policy = next((p for p in backend.policies.values() if p.policy_arn == resource_name), None)
        if policy is not None:  # one deleted by hand is gone
            backend.delete_scaling_policy(policy.policy_name, policy.service_namespace, policy.resource_id, policy.scalable_dimension)


# Gap: moto reads CloudWatch's JSON protocol (an AWS CLI or boto3 whose botocore is 1.42.7 or newer sends it:
# getmoto/moto#9253, #9562), but only for a service model that lists it, and the pinned botocore's lists the
# Query protocol alone: such a client's `aws cloudwatch describe-alarms` got an error 500, "Unsupported protocol".
# The JSON protocol's settings are those of newer botocore's model of CloudWatch.
# awsQueryCompatible: an error answer carries the x-amzn-query-error header, whose code (Query's) the client gives.
moto_utils.get_service_model("cloudwatch").metadata.update(
    {"protocols": ["query", "json"], "awsQueryCompatible": {}, "jsonVersion": "1.0", "targetPrefix": "GraniteServiceVersion20100801"}
)


# Gap: AWS::CloudWatch::Alarm has no CloudFormation model: the alarms are skipped, and a Ref or
# GetAtt Arn of one (the service's deployment alarms, the rollback triggers) turns into an HTTP 500.
# A model over moto's CloudWatch backend: plain, ExtendedStatistic and metric-math (Metrics) alarms.
def _metric_queries(metrics):
    queries = []
    for query in metrics:
        stat = query.get("MetricStat")
        if stat:
            metric = stat["Metric"]
            dimensions = [cloudwatch_models.Dimension(d["Name"], d["Value"]) for d in metric.get("Dimensions", [])]
            metric = cloudwatch_models.Metric(metric["MetricName"], metric["Namespace"], dimensions)
            stat = cloudwatch_models.MetricStat(metric, int(stat["Period"]), stat["Stat"], stat.get("Unit"))
        queries.append(
            cloudwatch_models.MetricDataQuery(
                query["Id"], query.get("Label"), query.get("Period"), query.get("ReturnData"), query.get("Expression"), stat
            )
        )
    return queries


def _number(value, kind=int):
    return None if value is None else kind(value)


class MetricAlarm(_Replaced, CloudFormationModel):
    @staticmethod
    def cloudformation_type():
        return "AWS::CloudWatch::Alarm"

    @staticmethod
    def cloudformation_name_type():
        return "AlarmName"

    @classmethod
    def has_cfn_attr(cls, attr):
        return attr == "Arn"

    def get_cfn_attribute(self, attribute_name):
        if attribute_name == "Arn":
            return self.arn
        raise parsing.UnformattedGetAttTemplateException()

    @classmethod
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        p = cloudformation_json["Properties"]
        alarm = cloudwatch_models.cloudwatch_backends[account_id][region_name].put_metric_alarm(
            name=resource_name,
            namespace=p.get("Namespace"),
            metric_name=p.get("MetricName"),
            metric_data_queries=_metric_queries(p.get("Metrics", [])),
            comparison_operator=p["ComparisonOperator"],
            evaluation_periods=int(p["EvaluationPeriods"]),
            datapoints_to_alarm=_number(p.get("DatapointsToAlarm")),
            period=_number(p.get("Period")),
            threshold=_number(p.get("Threshold"), float),
            statistic=p.get("Statistic"),
            extended_statistic=p.get("ExtendedStatistic"),
            description=p.get("AlarmDescription"),
            dimensions=p.get("Dimensions", []),
            alarm_actions=p.get("AlarmActions", []),
            ok_actions=p.get("OKActions", []),
            insufficient_data_actions=p.get("InsufficientDataActions", []),
            unit=p.get("Unit"),
            actions_enabled=p.get("ActionsEnabled", True),
            treat_missing_data=p.get("TreatMissingData"),
            evaluate_low_sample_count_percentile=p.get("EvaluateLowSampleCountPercentile"),
            threshold_metric_id=p.get("ThresholdMetricId"),
        )
        resource = cls(resource_name)  # Ref of an alarm is its name
        resource.arn = alarm.alarm_arn
        return resource

    @classmethod
    def delete_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name):
        cloudwatch_models.cloudwatch_backends[account_id][region_name].delete_alarms([resource_name])


# Gap: AWS::SNS::Subscription has no CloudFormation model (moto's Topic model only reads inline
# Subscription entries): the alert topic's e-mail subscriptions are skipped. Ref is the ARN.
class TopicSubscription(_Replaced, CloudFormationModel):
    @staticmethod
    def cloudformation_type():
        return "AWS::SNS::Subscription"

    @classmethod
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        p = cloudformation_json["Properties"]
        return cls(sns_models.sns_backends[account_id][region_name].subscribe(p["TopicArn"], p["Endpoint"], p["Protocol"]).arn)

    @classmethod
    def delete_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name):
        sns_models.sns_backends[account_id][region_name].unsubscribe(resource_name)


# Gap: AWS::WAFv2::WebACL, ::WebACLAssociation and ::LoggingConfiguration have no CloudFormation
# model: the web ACL, its association with the load balancer and its logging are skipped, and the
# GetAtt Arn in the waf layer's outputs turns DescribeStacks into an HTTP 500. Models over moto's
# WAFv2 backend, regional scope (the one a load balancer takes).
WEB_ACL_SETTINGS = ("AssociationConfig", "CaptchaConfig", "ChallengeConfig", "CustomResponseBodies", "TokenDomains")


def _wafv2(account_id, region_name):
    return wafv2_models.wafv2_backends[account_id][region_name]


class WebACL(CloudFormationModel):
    def __init__(self, acl):
        self.acl = acl
        self.physical_resource_id = f"{acl.name}|{acl.id}|REGIONAL"  # Ref of a web ACL: name|id|scope

    @staticmethod
    def cloudformation_type():
        return "AWS::WAFv2::WebACL"

    @staticmethod
    def cloudformation_name_type():
        return "Name"

    @classmethod
    def has_cfn_attr(cls, attr):
        return attr in ("Arn", "Id", "LabelNamespace")

    def get_cfn_attribute(self, attribute_name):
        if self.has_cfn_attr(attribute_name):
            return getattr(self.acl, camelcase_to_underscores(attribute_name))
        raise parsing.UnformattedGetAttTemplateException()

    @classmethod
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        p = cloudformation_json["Properties"]
        acl = _wafv2(account_id, region_name).create_web_acl(
            resource_name,
            p["VisibilityConfig"],
            p["DefaultAction"],
            p["Scope"],
            p.get("Description"),
            p.get("Tags", []),
            p.get("Rules", []),
            **{camelcase_to_underscores(key): p.get(key) for key in WEB_ACL_SETTINGS},
        )
        return cls(acl)

    @classmethod
    def update_from_cloudformation_json(cls, original_resource, new_resource_name, cloudformation_json, account_id, region_name):
        # Rules, actions and settings change in place: the id and ARN that the association and the
        # logging configuration hold stay, as in AWS. Another name replaces the web ACL.
        p, acl = cloudformation_json["Properties"], original_resource.acl
        if new_resource_name != acl.name:
            original_resource.delete(account_id, region_name)
            return cls.create_from_cloudformation_json(new_resource_name, cloudformation_json, account_id, region_name)
        acl.default_action, acl.visibility_config, acl.description = p["DefaultAction"], p["VisibilityConfig"], p.get("Description", "")
        acl.rules = [wafv2_models.FakeRule(**{camelcase_to_underscores(k): v for k, v in rule.items()}) for rule in p.get("Rules", [])]
        for key in WEB_ACL_SETTINGS:
            setattr(acl, camelcase_to_underscores(key), p.get(key))
        acl.lock_token = acl._generate_lock_token()
        return original_resource

    def delete(self, account_id, region_name):
        _wafv2(account_id, region_name).delete_web_acl(self.acl.name, "REGIONAL", self.acl.id, self.acl.lock_token)


class WebACLAssociation(_Replaced, CloudFormationModel):
    @staticmethod
    def cloudformation_type():
        return "AWS::WAFv2::WebACLAssociation"

    @classmethod
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        p = cloudformation_json["Properties"]
        _wafv2(account_id, region_name).associate_web_acl(p["WebACLArn"], p["ResourceArn"])
        return cls(f"{p['WebACLArn']}|{p['ResourceArn']}")

    @classmethod
    def delete_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name):
        _wafv2(account_id, region_name).disassociate_web_acl(resource_name.split("|")[1])


class WebACLLogging(_Replaced, CloudFormationModel):
    @staticmethod
    def cloudformation_type():
        return "AWS::WAFv2::LoggingConfiguration"

    @classmethod
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        p = cloudformation_json["Properties"]
        _wafv2(account_id, region_name).put_logging_configuration(
            p["ResourceArn"], p["LogDestinationConfigs"], p.get("RedactedFields"), False, p.get("LoggingFilter")
        )
        return cls(p["ResourceArn"])  # Ref of a logging configuration: the web ACL's ARN

    @classmethod
    def delete_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name):
        _wafv2(account_id, region_name).logging_configurations.pop(resource_name, None)


# Gap: drift detection is not implemented: DetectStackDrift, DescribeStackDriftDetectionStatus and
# DescribeStackResourceDrifts are unknown actions, and DescribeStacks has no DriftInformation.
# Here a detection compares, for the types DRIFT_READERS knows, the properties the template sets (as
# the stack resolved them when it created or updated the resource) with what that service's backend
# holds now; a resource gone from its backend is DELETED. Every other type is left unchecked and
# unlisted, as AWS does with a type without drift support. A detection finishes at once.
# https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/using-cfn-stack-drift.html
# https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_StackResourceDrift.html
# Chosen because an operator really changes them by hand and nothing else does: a log group's
# retention and a target group's health check. (Not the service's DesiredCount: the template leaves
# it to auto-scaling once the service exists.)
DRIFT_READERS = {  # type -> (resource, account, region) -> {property: value now}, or None when it is gone
    "AWS::Logs::LogGroup": lambda r, a, region: (
        None
        if (group := logs_models.logs_backends[a][region].groups.get(r.physical_resource_id)) is None
        else {"RetentionInDays": group.retention_in_days}
    ),
    "AWS::ElasticLoadBalancingV2::TargetGroup": lambda r, a, region: (
        None
        if (group := elbv2_models.elbv2_backends[a][region].target_groups.get(r.arn)) is None
        else {"HealthCheckPath": group.health_check_path, "HealthCheckIntervalSeconds": group.health_check_interval_seconds}
    ),
}


def _shown(value) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _resource_drift(stack, logical_id, resource_type, resource, now) -> dict | None:
    """One StackResourceDrift (IN_SYNC, MODIFIED or DELETED), or None for a type not checked."""
    expected = getattr(resource, "compat_properties", None)
    if resource_type not in DRIFT_READERS or expected is None:
        return None
    actual = DRIFT_READERS[resource_type](resource, stack.account_id, stack.region_name)
    drift = {
        "StackId": stack.stack_id,
        "LogicalResourceId": logical_id,
        "PhysicalResourceId": getattr(resource, "physical_resource_id", ""),
        "ResourceType": resource_type,
        "ExpectedProperties": json.dumps(expected, sort_keys=True),
        "Timestamp": now,
    }
    if actual is None:
        return drift | {"StackResourceDriftStatus": "DELETED"}
    differences = [  # only the properties the template sets are compared, as in AWS
        {
            "PropertyPath": f"/{name}",
            "ExpectedValue": _shown(expected[name]),
            "ActualValue": "" if value is None else _shown(value),
            "DifferenceType": "REMOVE" if value is None else "NOT_EQUAL",
        }
        for name, value in actual.items()
        if name in expected and (value is None or str(value) != str(expected[name]))
    ]
    drift["ActualProperties"] = json.dumps(expected | {name: actual[name] for name in actual if name in expected}, sort_keys=True)
    if differences:
        return drift | {"StackResourceDriftStatus": "MODIFIED", "PropertyDifferences": differences}
    return drift | {"StackResourceDriftStatus": "IN_SYNC"}


def _detections(backend) -> dict:
    return vars(backend).setdefault("compat_drift_detections", {})


def _detect_stack_drift(self):
    stack = self.cloudformation_backend.get_stack(self._get_param("StackName"))
    if stack.status.endswith("_IN_PROGRESS") or stack.status == "DELETE_COMPLETE":
        raise responses.ValidationError(message=f"Drift detection cannot be performed on stack [{stack.stack_id}] in {stack.status}")
    now, bodies, parsed = utcnow(), stack.resource_map._resource_json_map, stack.resource_map._parsed_resources
    found = [_resource_drift(stack, name, body["Type"], parsed[name], now) for name, body in bodies.items() if parsed.get(name) is not None]
    stack.compat_resource_drifts = [drift for drift in found if drift]
    drifted = sum(drift["StackResourceDriftStatus"] != "IN_SYNC" for drift in stack.compat_resource_drifts)
    stack.compat_drift = {"StackDriftStatus": "DRIFTED" if drifted else "IN_SYNC", "LastCheckTimestamp": now}
    detection_id = str(uuid.uuid4())
    _detections(self.cloudformation_backend)[detection_id] = {
        "StackId": stack.stack_id,
        "StackDriftDetectionId": detection_id,
        "StackDriftStatus": stack.compat_drift["StackDriftStatus"],
        "DetectionStatus": "DETECTION_COMPLETE",
        "DriftedStackResourceCount": drifted,
        "Timestamp": now,
    }
    return responses.ActionResult({"StackDriftDetectionId": detection_id})


def _describe_stack_drift_detection_status(self):
    detection = _detections(self.cloudformation_backend).get(self._get_param("StackDriftDetectionId"))
    if detection is None:
        raise responses.ValidationError(message="Stack drift detection ID not found")
    return responses.ActionResult(detection)


def _describe_stack_resource_drifts(self):
    stack = self.cloudformation_backend.get_stack(self._get_param("StackName"))
    wanted = self._get_param("StackResourceDriftStatusFilters") or ["IN_SYNC", "MODIFIED", "DELETED", "NOT_CHECKED"]
    drifts = [d for d in getattr(stack, "compat_resource_drifts", []) if d["StackResourceDriftStatus"] in wanted]
    return responses.ActionResult({"StackResourceDrifts": drifts})


responses.CloudFormationResponse.detect_stack_drift = _detect_stack_drift
responses.CloudFormationResponse.describe_stack_drift_detection_status = _describe_stack_drift_detection_status
responses.CloudFormationResponse.describe_stack_resource_drifts = _describe_stack_resource_drifts
cfn_models.Stack.drift_information = property(lambda self: getattr(self, "compat_drift", {"StackDriftStatus": "NOT_CHECKED"}))


# --- SSM writes one at a time ------------------------------------------------------------------
# In AWS, PutParameter with Overwrite=False either creates the parameter or fails with
# ParameterAlreadyExists, and each write gets the next version: the deployer's environment lock and
# its release history rely on both. moto's server answers requests on several threads and its
# check-then-write is not atomic, so two concurrent deploys could both take the lock (a lost
# release under load in tests/test_faults.py). One lock around moto's writes makes them atomic.
_ssm_writes = threading.Lock()
_put_parameter = ssm_models.SimpleSystemManagerBackend.put_parameter
_delete_parameter = ssm_models.SimpleSystemManagerBackend.delete_parameter


def _put_parameter_atomically(self, *args, **kwargs):
    with _ssm_writes:
        return _put_parameter(self, *args, **kwargs)


def _delete_parameter_atomically(self, *args, **kwargs):
    with _ssm_writes:
        return _delete_parameter(self, *args, **kwargs)


ssm_models.SimpleSystemManagerBackend.put_parameter = _put_parameter_atomically
ssm_models.SimpleSystemManagerBackend.delete_parameter = _delete_parameter_atomically


# --- Speed ----------------------------------------------------------------------------------------
# moto makes a new 2048-bit RSA key for every KMS key (of any key spec) and every ACM certificate a
# stack creates: a tenth of a second or more of the server's CPU each, a sixth of its time in a
# deploy. Nothing in the sandbox reads the key material, so one key per size serves them all; and
# the certificate's check of its key, which loads the PEM again (tens of milliseconds of RSA
# checks), loads that one PEM once.
rsa.generate_private_key = cache(rsa.generate_private_key)
serialization.load_pem_private_key = cache(serialization.load_pem_private_key)

# moto looks up a response class's methods (inspect.getmembers) on every request: once per class.
responses_base.method_names_from_class = cache(responses_base.method_names_from_class)

# moto's server lists its own package directory (some 200 stat calls) on every request to find the
# service it is for: list it once.
_moto_modules = tuple(moto_backends.list_of_moto_modules())
moto_backends.list_of_moto_modules = lambda: iter(_moto_modules)
