"""The deployer against botocore Stubber, with the response shapes real CloudFormation sends.

Nothing here reaches a network: every client's endpoint is 127.0.0.1 and every call is either
answered by a Stubber (which fails on any call not queued) or, for the retry test, by a
`before-send` hook inside botocore's HTTP layer. Polling sleeps are injected and recorded."""

import contextlib
import dataclasses
import functools
import getpass
import io
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import types
import uuid
from datetime import timedelta
from pathlib import Path

import botocore.parsers
import pytest
import stubbed_aws
import yaml
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError, EndpointConnectionError, PaginationError
from botocore.parsers import ResponseParserError
from botocore.stub import ANY, Stubber
from conftest import NOWHERE, ROOT, no_real_aws, refuse_to_open, within
from stubbed_aws import (
    ACCOUNT,
    CAPABILITIES,
    DOMAIN,
    ENV,
    IMAGE_TAG_CHANGES,
    LOCK,
    LOG_GROUP,
    NOT_FOUND,
    NOW,
    OUTPUT,
    OUTPUT_VALUES,
    PARAMS,
    PARAMS_FILE,
    PROD_LAYERS,
    REGION,
    REGION_CLI,
    RELAXED,
    SESSION,
    ZONE,
    ZONE_SERVERS,
    change,
    change_set,
    configuration,
    create_params,
    cs_name,
    deploy_time,
    described,
    detail,
    event,
    events,
    hosted_zone,
    lock_free,
    lock_freed,
    lock_taken,
    our_lock,
    outputs,
    parameters,
    relaxed_mark_read,
    rollback_configuration,
    service_parameters,
    stack,
    stack_id,
    template,
    wired,
)

import templates
from scripts import deploy
from scripts.botocore_models import botocore_session, make_session
from scripts.deploy import advice, deployer, drift, guards, lock, logs, purge, reading, waiting, zone
from scripts.deploy import status as deploy_status
from scripts.deploy import text as deploy_text
from scripts.deploy.aws import NO_STACK, explain
from scripts.deploy.history import RELEASES_KEPT, ReleaseHistory, stored, trimmed
from scripts.deploy.policies import RelaxedPolicyMarks
from templates import generation
from templates.alb import REGIONS
from templates.errors import STOPPING_SIGNALS, Output, terminated
from templates.inputs import KEEP_RUNNING_COUNT, LOG_RETENTION_DAYS, MOST_IMAGE_TAG, SERVICE_REPLACED_BY, TRAFFIC_SHIFTING
from templates.params import SANDBOX_CANNOT_REHEARSE, SANDBOX_ENV, SANDBOX_KEYS, load_all
from templates.params import load as load_params

CLI = f"{REGION_CLI} --endpoint-url {NOWHERE}"


@pytest.fixture
def disabled(aws, tmp_path):
    """(an optional layer prod does not enable, the layers prod enables), with aws's runs reading such
    files: params/ and output/ when prod leaves one out; when it enables them all, copies of them
    where the last is taken out."""
    left_out = [layer for layer in templates.OPTIONAL_LAYERS if layer not in PROD_LAYERS]
    if left_out:
        return left_out[0], PROD_LAYERS
    layer = templates.OPTIONAL_LAYERS[-1]
    params_dir = shutil.copytree(PARAMS, tmp_path / "params")
    data = yaml.safe_load((params_dir / f"{ENV}.yaml").read_text())
    data["enabled_layers"] = [name for name in data["enabled_layers"] if name != layer]
    (params_dir / f"{ENV}.yaml").write_text(yaml.safe_dump(data))
    for path, content in generation.build_all(load_all(params_dir), tmp_path / "output").items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    aws.dirs = tmp_path / "output", params_dir
    return layer, load_params(params_dir / f"{ENV}.yaml").layers


CERT_CHANGES = [change("Add", "Certificate", "AWS::CertificateManager::Certificate")]
# The make purge a way on names between a destroy and the deploy again, for the layers it creates again whose destroy keeps
# a log group under its name (service and waf: purge.keep_names reads it from their templates).
PURGE_STEP = (
    "(it frees the names the create gives by deleting what the destroy kept, the logs included, and schedules their keys' "
    "deletion: read or export the logs first; or set a new NamePrefix instead), then "
)


def purge_step(order, enabled=PROD_LAYERS) -> str:
    kept = [layer for layer in order if layer in ("service", "waf") and layer in enabled]
    if not kept:
        return ""
    which = f"STACK={kept[0]}" if len(kept) == 1 else "STACK=<layer> for " + ", ".join(kept)
    return f"make purge ENV={ENV} {which} {PURGE_STEP}"


LOOK_FOR_BLOCKED_CREATES = purge.blocking
DELETED_SERVICE_ID = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{stack('service')}/11111111-c9f1-11f0-8de9-0a1b2c3d4e5f"
# The service's log group, as its template names it with this environment's prefix.
RETAINED_LOG_GROUP = json.loads(template("service"))["Resources"]["LogGroup"]["Properties"]["LogGroupName"]["Fn::Sub"].replace(
    "${NamePrefix}", configuration(ENV, "service")["Parameters"]["NamePrefix"]
)


SECOND_DELETED_SERVICE_ID = DELETED_SERVICE_ID.replace("11111111", "22222222")


def a_deleted_service_retained_its_log_group(aws, monkeypatch, name=RETAINED_LOG_GROUP, ids=(DELETED_SERVICE_ID,)):
    """The service's layers upstream deployed, the service not; each deleted service stack of ours
    (ids: the service destroyed and created again) retained its log group."""
    aws.upstream_deployed("service")
    aws.not_deployed("service")
    monkeypatch.setattr(purge, "blocking", LOOK_FOR_BLOCKED_CREATES)
    deleted = [{"StackId": i, "StackName": stack("service"), "CreationTime": NOW, "StackStatus": "DELETE_COMPLETE"} for i in ids]
    aws.cf.add_response("list_stacks", {"StackSummaries": deleted}, {})
    retained = {
        "LogicalResourceId": "LogGroup",
        "PhysicalResourceId": name,
        "ResourceType": "AWS::Logs::LogGroup",
        "LastUpdatedTimestamp": NOW,
        "ResourceStatus": "DELETE_SKIPPED",
    }
    for deleted_id in ids:
        aws.cf.add_response("list_stack_resources", {"StackResourceSummaries": [retained]}, {"StackName": deleted_id})
        if name == RETAINED_LOG_GROUP:  # only a name the create needs makes it read the deleted stack's tags
            was = described("service", "DELETE_COMPLETE")["Stacks"][0] | {"StackId": deleted_id}
            aws.cf.add_response("describe_stacks", {"Stacks": [was]}, {"StackName": deleted_id})


def the_log_group_is_there(aws, tags):
    """The retained log group, found, with these tags (a deleted stack's own, or another's)."""
    arn = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{RETAINED_LOG_GROUP}"
    group = {"logGroupName": RETAINED_LOG_GROUP, "logGroupArn": arn, "arn": f"{arn}:*", "storedBytes": 0}
    aws.logs.add_response("describe_log_groups", {"logGroups": [group]}, {"logGroupNamePrefix": RETAINED_LOG_GROUP})
    aws.logs.add_response("list_tags_for_resource", {"tags": tags}, {"resourceArn": arn})


def test_a_create_whose_name_a_destroyed_stack_retained_is_refused_before_anything_naming_what_and_how(aws, monkeypatch):
    a_deleted_service_retained_its_log_group(aws, monkeypatch)
    the_log_group_is_there(aws, {"aws:cloudformation:stack-id": DELETED_SERVICE_ID, "aws:cloudformation:logical-id": "LogGroup"})
    assert aws.run("deploy", "--stack", "service", "--yes") == 1
    assert aws.err == (
        "error: refused before creating anything: what destroyed stacks retained still holds names their creates need: "
        f"{stack('service')}: LogGroup (AWS::Logs::LogGroup) {RETAINED_LOG_GROUP}. make purge ENV={ENV} STACK=service "
        "frees what it retained (it lists it and asks first), then deploy again\n"
    )


def test_a_name_taken_by_a_log_group_made_by_hand_is_named_once_with_the_command_that_deletes_it(aws, monkeypatch):
    # The service destroyed and purged twice, then its log group made by hand: both deleted stacks list the
    # name, which was named once per stack, and pointed at make purge, which leaves such a group alone.
    a_deleted_service_retained_its_log_group(aws, monkeypatch, ids=(DELETED_SERVICE_ID, SECOND_DELETED_SERVICE_ID))
    for _ in range(2):  # each deleted stack's item is looked at
        the_log_group_is_there(aws, {"Team": "by hand"})
    assert aws.run("deploy", "--stack", "service", "--yes") == 1
    assert aws.err == (
        "error: refused before creating anything: what destroyed stacks retained still holds names their creates need: "
        f"{stack('service')}: LogGroup (AWS::Logs::LogGroup) {RETAINED_LOG_GROUP} (not made by that stack). "
        f"make purge leaves {RETAINED_LOG_GROUP}, as that stack did not make it: delete it yourself if it is not needed: "
        f"{CLI} logs delete-log-group --log-group-name {RETAINED_LOG_GROUP}, then deploy again\n"
    )


def test_a_deletion_taken_for_done_when_not_found_is_so_by_the_error_its_operation_answers():
    # purge.GONE_CODES, against the pinned botocore's models of the operations purge.ACT calls (S3 keeps its codes apart).
    operations = {
        "AWS::Logs::LogGroup": ("logs", "DeleteLogGroup"),
        "AWS::KMS::Key": ("kms", "ScheduleKeyDeletion"),
        "AWS::CertificateManager::Certificate": ("acm", "DeleteCertificate"),
        "AWS::ElasticLoadBalancingV2::LoadBalancer": ("elbv2", "DeleteLoadBalancer"),
    }
    session = botocore_session()
    for kind, code in purge.GONE_CODES.items():
        if kind == "AWS::S3::Bucket":
            continue
        service, operation = operations[kind]
        errors = session.get_service_model(service).operation_model(operation).error_shapes
        assert code in {shape.metadata.get("error", {}).get("code", shape.name) for shape in errors}, (kind, code)
    assert set(purge.GONE_CODES) <= set(purge.ACT)


def test_purge_leaves_every_key_when_the_log_groups_that_may_use_one_cannot_be_listed(aws):
    # Unread, no key can be shown unused: each stays, with why, and the rest of the purge goes on.
    key = purge.Retained(
        stack("service"), DELETED_SERVICE_ID, "LogKey", "AWS::KMS::Key", "k-1", action="schedule", facts={"arn": "arn:k-1"}
    )
    group = purge.Retained(stack("service"), DELETED_SERVICE_ID, "LogGroup", "AWS::Logs::LogGroup", RETAINED_LOG_GROUP, action="delete")
    aws.logs.add_client_error("describe_log_groups", "AccessDeniedException", "not authorized", 400)
    purge.keep_keys_other_log_groups_use(aws.clients["logs"], [key, group], CLI)
    assert (key.action, key.note) == (None, "left: the log groups that may use it could not be listed (AccessDeniedException)")
    assert group.action == "delete"


def test_purge_leaves_the_key_of_its_stacks_log_group_that_stays_though_no_key_of_that_group_is_read():
    # The stack's own kept log group showed no kmsKeyId: its key was scheduled, and its logs would become unreadable.
    key = purge.Retained(
        stack("service"), DELETED_SERVICE_ID, "LogKey", "AWS::KMS::Key", "k-1", action="schedule", facts={"arn": "arn:k-1"}
    )
    group = purge.Retained(
        stack("service"), DELETED_SERVICE_ID, "LogGroup", "AWS::Logs::LogGroup", RETAINED_LOG_GROUP, facts={"kms": None, "tags": {}}
    )
    purge.keep_keys_of_kept_log_groups([key, group])
    assert (key.action, key.note) == (
        None,
        f"left: the log group {RETAINED_LOG_GROUP} it encrypts stays; its logs would become unreadable",
    )


def test_a_retained_load_balancer_or_target_group_holds_the_name_inside_its_arn():
    # takes() matched the whole ARN to the name: a load balancer or target group of the layer's name was never the layer's.
    names = guards.custom_names(a_deployer_whose_service_is(None), deploy.load_layer(ENV, "alb", OUTPUT))
    prefix = f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:"
    for logical_id, path in (("LoadBalancer", "loadbalancer/app/{}/0123456789abcdef"), ("TargetGroup", "targetgroup/{}/0123456789abcdef")):
        kind = f"AWS::ElasticLoadBalancingV2::{logical_id}"
        item = purge.Retained(stack("alb"), stack_id("alb"), logical_id, kind, prefix + path.format(names[logical_id]))
        assert purge.takes(item, {names[logical_id]}), item.physical_id
        assert not purge.takes(item, {names[logical_id] + "-alt"}), item.physical_id


def test_purge_leaves_a_retained_certificate_in_use():
    # An in-use certificate was deleted (ACM refuses it, and the purge failed half way).
    client = SESSION.client("acm", config=deploy.CONFIG)
    stubber = Stubber(client)
    arn = OUTPUT_VALUES["CertificateArn"]
    item = purge.Retained(stack("cert-dns"), stack_id("cert-dns"), "Certificate", "AWS::CertificateManager::Certificate", arn)
    user = OUTPUT_VALUES["LoadBalancerArn"]
    stubber.add_response(
        "describe_certificate", {"Certificate": {"CertificateArn": arn, "DomainName": DOMAIN, "InUseBy": [user]}}, {"CertificateArn": arn}
    )
    tags = [{"Key": purge.STACK_ID_TAG, "Value": item.stack_id}, {"Key": purge.LOGICAL_ID_TAG, "Value": item.logical_id}]
    stubber.add_response("list_tags_for_certificate", {"Tags": tags}, {"CertificateArn": arn})
    with stubber:
        assert purge.INSPECT[item.kind](lambda service: client, item) == (None, f"left: in use by {user}")
    stubber.assert_no_pending_responses()


def test_purge_does_not_look_into_a_retained_bucket_another_stack_made():
    # A bucket without the stack's tags was listed (another team's objects read), and, empty, taken for deletion.
    client = SESSION.client("s3", config=deploy.CONFIG)
    stubber = Stubber(client)
    item = purge.Retained(stack("alb"), stack_id("alb"), "AccessLogsBucket", "AWS::S3::Bucket", "their-bucket")
    theirs = [{"Key": purge.STACK_ID_TAG, "Value": SECOND_DELETED_SERVICE_ID}, {"Key": purge.LOGICAL_ID_TAG, "Value": item.logical_id}]
    stubber.add_response("get_bucket_tagging", {"TagSet": theirs}, {"Bucket": item.physical_id})
    with stubber:
        assert purge.INSPECT[item.kind](lambda service: client, item) == (None, "")
    stubber.assert_no_pending_responses()


@pytest.mark.parametrize(
    "maker, logical_id",
    [
        (DELETED_SERVICE_ID, "OtherLogGroup"),  # the deleted stack's id, another of its logical ids
        (SECOND_DELETED_SERVICE_ID, "OtherLogGroup"),  # a later stack of that name, another logical id
        (stack_id("alb"), "LogGroup"),  # a stack of no name looked at, the same logical id
    ],
    ids=["same stack, other logical id", "later stack, other logical id", "unlisted stack"],
)
def test_purge_leaves_a_retained_log_group_whose_tags_name_another_stack_or_logical_id(maker, logical_id):
    """Both aws:cloudformation tags must be the retained resource's: the stack id alone took a log group made for
    another logical id as the retained one (deleted, or hidden as gone), and a maker no deleted stack of these names
    is was said to be a later stack of that name that kept it on an update."""
    client = SESSION.client("logs", config=deploy.CONFIG)
    stubber = Stubber(client)
    item = purge.Retained(stack("service"), DELETED_SERVICE_ID, "LogGroup", "AWS::Logs::LogGroup", RETAINED_LOG_GROUP)
    arn = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{RETAINED_LOG_GROUP}"
    group = {"logGroupName": RETAINED_LOG_GROUP, "logGroupArn": arn, "arn": f"{arn}:*", "storedBytes": 0}
    stubber.add_response("describe_log_groups", {"logGroups": [group]}, {"logGroupNamePrefix": RETAINED_LOG_GROUP})
    tags = {purge.STACK_ID_TAG: maker, purge.LOGICAL_ID_TAG: logical_id}
    stubber.add_response("list_tags_for_resource", {"tags": tags}, {"resourceArn": arn})
    listed = {DELETED_SERVICE_ID: {RETAINED_LOG_GROUP}, SECOND_DELETED_SERVICE_ID: set()}
    with stubber:
        purge.inspect(types.SimpleNamespace(client=lambda service: client, cli=CLI), item, listed)
    stubber.assert_no_pending_responses()
    assert (item.action, item.gone, item.foreign, item.kept_on_replace) == (None, False, True, False)
    assert item.note.startswith(f"left alone: not the one {stack('service')} created (it carries no aws:cloudformation tags"), item.note


def test_purge_leaves_a_retained_bucket_that_holds_delete_markers_alone():
    # A versioned bucket whose objects were deleted keeps their delete markers: taken for empty, its deletion was
    # tried, which S3 refuses (BucketNotEmpty), and the purge failed where it should have said why the bucket stays.
    client = SESSION.client("s3", config=deploy.CONFIG)
    stubber = Stubber(client)
    item = purge.Retained(stack("alb"), stack_id("alb"), "AccessLogBucket", "AWS::S3::Bucket", "access-logs")
    ours = [{"Key": purge.STACK_ID_TAG, "Value": item.stack_id}, {"Key": purge.LOGICAL_ID_TAG, "Value": item.logical_id}]
    stubber.add_response("get_bucket_tagging", {"TagSet": ours}, {"Bucket": item.physical_id})
    marker = {"Key": "AWSLogs/access.log.gz", "VersionId": "1", "IsLatest": True}
    stubber.add_response("list_object_versions", {"DeleteMarkers": [marker]}, {"Bucket": item.physical_id, "MaxKeys": 1})
    with stubber:
        action, note = purge.INSPECT[item.kind](lambda service: client, item)
    stubber.assert_no_pending_responses()
    assert action is None and note.startswith("left: it holds objects (the access logs); purge deletes only an empty bucket"), note


def retained_key_described(manager):
    """A deleted service stack's retained LogKey, and a stubbed KMS client whose DescribeKey gives it as Enabled, of manager."""
    client = SESSION.client("kms", config=deploy.CONFIG)
    stubber = Stubber(client)
    key_id = "1234abcd-12ab-34cd-56ef-1234567890ab"
    item = purge.Retained(stack("service"), DELETED_SERVICE_ID, "LogKey", "AWS::KMS::Key", key_id)
    metadata = {"KeyId": key_id, "Arn": f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{key_id}", "KeyManager": manager, "KeyState": "Enabled"}
    stubber.add_response("describe_key", {"KeyMetadata": metadata}, {"KeyId": key_id})
    return client, stubber, item


def test_purge_never_schedules_the_deletion_of_an_aws_managed_key():
    # No stack creates one, yet a deleted stack's list may name one (a stack made by hand): it was taken for scheduling.
    client, stubber, item = retained_key_described("AWS")
    with stubber:
        assert purge.INSPECT[item.kind](lambda service: client, item) == (None, "an AWS managed key: never deleted")
    stubber.assert_no_pending_responses()
    assert item.foreign


def test_purge_leaves_a_retained_load_balancer_whose_deletion_protection_is_on():
    # ELB refuses its deletion: the purge failed half way, where it should have said why the load balancer stays.
    client = SESSION.client("elbv2", config=deploy.CONFIG)
    stubber = Stubber(client)
    arn = f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:loadbalancer/app/x/1"
    item = purge.Retained(stack("alb"), stack_id("alb"), "LoadBalancer", "AWS::ElasticLoadBalancingV2::LoadBalancer", arn)
    tags = [{"Key": purge.STACK_ID_TAG, "Value": item.stack_id}, {"Key": purge.LOGICAL_ID_TAG, "Value": item.logical_id}]
    stubber.add_response("describe_load_balancers", {"LoadBalancers": [{"LoadBalancerArn": arn}]}, {"LoadBalancerArns": [arn]})
    stubber.add_response("describe_tags", {"TagDescriptions": [{"ResourceArn": arn, "Tags": tags}]}, {"ResourceArns": [arn]})
    attributes = [{"Key": "deletion_protection.enabled", "Value": "true"}]
    stubber.add_response("describe_load_balancer_attributes", {"Attributes": attributes}, {"LoadBalancerArn": arn})
    with stubber:
        assert purge.INSPECT[item.kind](lambda service: client, item) == (
            None,
            "left: deletion protection is on; turn it off first if it is really to go",
        )
    stubber.assert_no_pending_responses()


def test_purge_leaves_a_retained_target_group_a_load_balancer_still_uses():
    # ELB refuses its deletion (ResourceInUse): the purge failed half way, where it should have said who uses it.
    client = SESSION.client("elbv2", config=deploy.CONFIG)
    stubber = Stubber(client)
    prefix = f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:"
    arn, user = prefix + "targetgroup/x/1", prefix + "loadbalancer/app/y/2"
    item = purge.Retained(stack("alb"), stack_id("alb"), "TargetGroup", "AWS::ElasticLoadBalancingV2::TargetGroup", arn)
    tags = [{"Key": purge.STACK_ID_TAG, "Value": item.stack_id}, {"Key": purge.LOGICAL_ID_TAG, "Value": item.logical_id}]
    group = {"TargetGroupArn": arn, "LoadBalancerArns": [user]}
    stubber.add_response("describe_target_groups", {"TargetGroups": [group]}, {"TargetGroupArns": [arn]})
    stubber.add_response("describe_tags", {"TagDescriptions": [{"ResourceArn": arn, "Tags": tags}]}, {"ResourceArns": [arn]})
    with stubber:
        assert purge.INSPECT[item.kind](lambda service: client, item) == (None, f"left: in use by {user}")
    stubber.assert_no_pending_responses()


def test_a_retained_resource_whose_name_only_contains_the_layers_name_is_not_the_layers():
    # takes() found the name anywhere in the id: a log group, load balancer or target group of a longer name (one of an
    # earlier NamePrefix that held today's) was taken for the layer's, and purged.
    names = guards.custom_names(a_deployer_whose_service_is(None), deploy.load_layer(ENV, "alb", OUTPUT))
    prefix = f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:"
    for logical_id, path in (("LoadBalancer", "loadbalancer/app/{}/0123456789abcdef"), ("TargetGroup", "targetgroup/{}/0123456789abcdef")):
        kind = f"AWS::ElasticLoadBalancingV2::{logical_id}"
        for longer in (names[logical_id] + "-2", "x" + names[logical_id]):
            item = purge.Retained(stack("alb"), stack_id("alb"), logical_id, kind, prefix + path.format(longer))
            assert not purge.takes(item, {names[logical_id]}), item.physical_id
    for longer in (RETAINED_LOG_GROUP + "-old", "/old" + RETAINED_LOG_GROUP):
        item = purge.Retained(stack("service"), DELETED_SERVICE_ID, "LogGroup", "AWS::Logs::LogGroup", longer)
        assert not purge.takes(item, {RETAINED_LOG_GROUP}), longer


def test_a_merge_puts_their_entries_before_one_both_hold_where_they_have_them():
    # (mutation audit) Another run's version holds X before A, which this run read without X: X stays, before A
    # (history.merged: "an entry of both places theirs up to it"), and what this run read alone after A follows it.
    from scripts.deploy.history import merged

    a, b, c, x = rel("a", None), rel("b", "a"), rel("c", "a"), rel("x", None)
    assert merged([a, c], [x, a, b]) == [x, a, c, b]


def test_trimming_drops_a_redeploy_that_repeats_the_entry_before_it_where_the_history_breaks_after_it():
    # v1 released, then redeployed, then a release of v2 went unrecorded and v3 replaced it: the redeploy adds nothing
    # to what v1's own entry says (the break after it shows as well without it), yet v1's release, the only one of v1,
    # was trimmed instead, when the entry after the redeploy did not name v1.
    first, again, after = rel("v1", None), rel("v1", "v1"), rel("v3", "v2")
    later = [rel(f"w{i}", f"w{i - 1}" if i else "v3") for i in range(RELEASES_KEPT - 2)]
    entries = [first, again, after, *later]
    assert len(entries) == RELEASES_KEPT + 1
    assert trimmed(entries) == [first, after, *later]


def test_purge_schedules_a_key_whose_own_stacks_log_group_is_deleted_though_another_stacks_stays():
    # A staying log group whose key was not read kept every key of the purge, other stacks' too, "for the log group it encrypts".
    waf_id = stack_id("waf")
    key = purge.Retained(stack("waf"), waf_id, "LogKey", "AWS::KMS::Key", "k-2", action="schedule", facts={"arn": "arn:k-2"})
    group = purge.Retained(
        stack("service"), DELETED_SERVICE_ID, "LogGroup", "AWS::Logs::LogGroup", RETAINED_LOG_GROUP, facts={"kms": None, "tags": {}}
    )
    purge.keep_keys_of_kept_log_groups([key, group])
    assert (key.action, key.note) == ("schedule", "")


def test_purge_leaves_a_key_a_staying_log_group_made_under_the_retained_name_by_someone_else_encrypts_with():
    # The log group under the retained name is another's (foreign, left), and names the key: its logs would become unreadable.
    # This look leaves the key, not only the account-wide one after it (keep_keys_other_log_groups_use), whose note differs.
    facts = {"arn": "arn:k-1"}
    key = purge.Retained(stack("service"), DELETED_SERVICE_ID, "LogKey", "AWS::KMS::Key", "k-1", action="schedule", facts=facts)
    group = purge.Retained(
        stack("service"), DELETED_SERVICE_ID, "LogGroup", "AWS::Logs::LogGroup", RETAINED_LOG_GROUP, foreign=True, facts={"kms": "arn:k-1"}
    )
    purge.keep_keys_of_kept_log_groups([key, group])
    assert (
        key.action is None and key.note == f"left: the log group {RETAINED_LOG_GROUP} it encrypts stays; its logs would become unreadable"
    )


def test_purge_takes_only_what_a_deleted_stack_skipped_on_purpose():
    # Any resource not DELETE_COMPLETE was taken as retained: one a forced deletion left DELETE_FAILED, for one.
    summary = {"StackName": stack("service"), "StackId": DELETED_SERVICE_ID}
    resources = [
        {"LogicalResourceId": logical_id, "PhysicalResourceId": physical_id, "ResourceType": kind, "ResourceStatus": status}
        for logical_id, physical_id, kind, status in (
            ("LogGroup", RETAINED_LOG_GROUP, "AWS::Logs::LogGroup", "DELETE_SKIPPED"),
            ("LogKey", "k-1", "AWS::KMS::Key", "DELETE_FAILED"),
            ("Cluster", "c-1", "AWS::ECS::Cluster", "DELETE_COMPLETE"),
            ("Service", "s-1", "AWS::ECS::Service", "CREATE_FAILED"),
        )
    ]
    assert [item.logical_id for item in purge.retained_in(summary, resources)] == ["LogGroup"]


def test_the_look_for_blocked_creates_skips_a_name_whose_stack_exists(aws):
    # A live stack's name was taken for a create: what its deleted predecessor retained was read (and its names said taken).
    summary = {"StackName": stack("service"), "CreationTime": NOW - timedelta(days=9)}
    deleted = summary | {"StackId": DELETED_SERVICE_ID, "StackStatus": "DELETE_COMPLETE", "DeletionTime": NOW - timedelta(days=8)}
    live = summary | {"StackId": stack_id("service"), "StackStatus": "UPDATE_COMPLETE"}
    aws.cf.add_response("list_stacks", {"StackSummaries": [live, deleted]}, {})
    deployer = types.SimpleNamespace(cf=aws.clients["cloudformation"])
    assert LOOK_FOR_BLOCKED_CREATES(deployer, {stack("service"): {RETAINED_LOG_GROUP}}) == []


@pytest.mark.parametrize("status", ["ROLLBACK_COMPLETE", "REVIEW_IN_PROGRESS"])
def test_a_stack_that_holds_no_resource_has_no_protected_load_balancer(aws, status):
    # An empty stack (a rolled back first create, one under review) was taken as holding a protected load balancer.
    made = deploy.Deployer(aws.clients.__getitem__, ENV, out=io.StringIO(), err=io.StringIO())
    made.stacks[stack("alb")] = described("alb", status)["Stacks"][0]
    assert purge.deletion_protected(made, [stack("alb")]) == {}


@pytest.mark.parametrize("tags, alone", [(None, False), ({"Owner": "another team"}, True)])
def test_a_run_of_every_layer_leaves_alone_only_a_stack_not_ours(aws, tags, alone):
    # A destroy or purge of every layer leaves alone someone else's stack in a layer the environment does not enable, and
    # no stack of ours: one of ours there is destroyed (README: a layer outside enabled_layers is destroyed if deployed).
    made = deploy.Deployer(aws.clients.__getitem__, ENV, out=io.StringIO(), err=io.StringIO())
    made.stacks[stack("alarms")] = described("alarms", tags=tags)["Stacks"][0]  # named=False: taken as not enabled
    assert made.left_alone("alarms", named=False) is alone
    assert ("was not made by this tool" in made.out.getvalue()) is alone, made.out.getvalue()


def a_deployer_whose_service_is(status, **more):
    """A stand-in Deployer for the guards: its service stack has this status (None: there is none),
    is_create the real rule on it; more: other attributes the guard reads."""

    class Deployer:
        cf = types.SimpleNamespace(meta=types.SimpleNamespace(region_name=REGION))
        is_create = deploy.deployer.Deployer.is_create

        def describe(self, stack_name, refuse_foreign=True):
            return {"StackStatus": status} if status and stack_name == stack("service") else None

    deployer = Deployer()
    deployer.__dict__.update(more)
    return deployer


def loose_log_groups_looked_for(status, named) -> tuple:
    """guards.loose_log_groups over a run of cert-dns and service, whose stack is in status (None: none), with the
    names a destroyed stack retained (named); what it found held, and the names it looked for (each found)."""
    cert, service = (deploy.layer.load_layer(ENV, name, OUTPUT) for name in ("cert-dns", "service"))
    looked = []

    def exists(deployer, name):
        looked.append(name)
        return True

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(deploy.guards, "log_group_exists", exists)
        return deploy.guards.loose_log_groups(a_deployer_whose_service_is(status), [cert, service], named), looked


@pytest.mark.parametrize(
    ("status", "checked"),
    [(None, True), ("REVIEW_IN_PROGRESS", True), ("ROLLBACK_COMPLETE", True), ("UPDATE_COMPLETE", False)],
)
def test_the_look_for_log_groups_that_hold_a_name_takes_every_create_and_no_deployed_stack(status, checked):
    # A failed first create (ROLLBACK_COMPLETE) is a create too: RECREATE=1 makes it again, and a run that
    # let it pass created the layers before it, then stopped there. A deployed stack's own group is no obstacle.
    service = deploy.layer.load_layer(ENV, "service", OUTPUT)
    held, looked = loose_log_groups_looked_for(status, set())
    assert held == ([(service.stack, RETAINED_LOG_GROUP)] if checked else []) and looked == ([RETAINED_LOG_GROUP] if checked else [])
    assert (
        deploy.guards.loose_log_groups(a_deployer_whose_service_is(status), [service], set()) == []
    )  # a run of one layer: its change set is checked


@pytest.mark.parametrize("status", [None, "ROLLBACK_COMPLETE"])
def test_a_retained_name_of_a_failed_first_create_is_freed_after_destroying_that_stack(status):
    # purge refuses while a stack of the layer exists: a failed first create (ROLLBACK_COMPLETE) is destroyed first.
    cert, service = (deploy.layer.load_layer(ENV, name, OUTPUT) for name in ("cert-dns", "service"))
    retained = purge.Retained(stack("service"), DELETED_SERVICE_ID, "LogGroup", "AWS::Logs::LogGroup", RETAINED_LOG_GROUP)
    deployer = a_deployer_whose_service_is(status, checked=set(), run_layers=[cert, service], env=ENV, cli=CLI)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(purge, "blocking", lambda deployer, creates: [retained])
        patch.setattr(deploy.guards, "loose_log_groups", lambda deployer, creates, named, even_one=False: [])
        with pytest.raises(deploy.guards.RefusedAhead) as refused:
            deploy.guards.refuse_blocked_creates(deployer, cert)
    first = f"make destroy ENV={ENV} STACK=<layer> for service (a failed first create: its empty stack goes too), then " if status else ""
    assert str(refused.value).endswith(
        f"{stack('service')}: LogGroup (AWS::Logs::LogGroup) {RETAINED_LOG_GROUP}. {first}make purge ENV={ENV} STACK=service "
        "frees what it retained (it lists it and asks first), then deploy again"
    ), str(refused.value)


def test_a_run_looks_for_names_its_creates_need_once_however_many_layers_it_creates():
    # The look at the run's first create takes every create of the run: the next creates ask nothing again.
    cert, service = (deploy.layer.load_layer(ENV, name, OUTPUT) for name in ("cert-dns", "service"))
    deployer = a_deployer_whose_service_is(None, checked=set(), run_layers=[cert, service], env=ENV, cli=CLI)
    looked = []

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(purge, "blocking", lambda deployer, creates: looked.append(sorted(creates)) or [])
        patch.setattr(deploy.guards, "loose_log_groups", lambda deployer, creates, named, even_one=False: [])
        deploy.guards.refuse_blocked_creates(deployer, cert)
        deploy.guards.refuse_blocked_creates(deployer, service)
    assert looked == [sorted([cert.stack, service.stack])]


def test_a_create_refused_for_a_log_group_in_no_stack_of_its_own_name_is_that_layers_refusal():
    # A refusal of the layer at hand is a Refused; RefusedAhead says a later layer stopped the run before this one.
    cert, service = (deploy.layer.load_layer(ENV, name, OUTPUT) for name in ("cert-dns", "service"))
    deployer = a_deployer_whose_service_is(None, checked=set(), run_layers=[cert, service], env=ENV, cli=CLI)

    for layer, refusal in ((service, deploy.guards.Refused), (cert, deploy.guards.RefusedAhead)):
        deployer.checked = set()
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(purge, "blocking", lambda deployer, creates: [])
            patch.setattr(
                deploy.guards, "loose_log_groups", lambda deployer, creates, named, even_one=False: [(service.stack, RETAINED_LOG_GROUP)]
            )
            with pytest.raises(deploy.guards.Failure) as refused:
                deploy.guards.refuse_blocked_creates(deployer, layer)
        assert type(refused.value) is refusal, layer.name
        assert f"{service.stack}: {RETAINED_LOG_GROUP}" in str(refused.value)


def test_a_guards_refusal_of_what_a_change_set_does_is_a_refused_and_a_wrong_value_a_failure():
    # make execute adds its stale-values note to a Refused only (review R1: mutants of either kind left every test green)
    service = deploy.layer.load_layer(ENV, "service", OUTPUT)
    removes = {
        "Changes": [{"ResourceChange": {"Action": "Remove", "LogicalResourceId": "LogGroup", "ResourceType": "AWS::Logs::LogGroup"}}]
    }
    with pytest.raises(deploy.guards.Failure) as refused:
        deploy.guards.refuse_before_execute(None, service, removes, False, False, "nothing changed")
    assert type(refused.value) is deploy.guards.Refused and "replaces or removes stateful resources: LogGroup" in str(refused.value)
    assert type(deploy.guards.refusal(service, {"service"}, "error: a wrong value")) is deploy.guards.Failure
    assert type(deploy.guards.refusal(service, {"service"}, "error: refused", deploy.guards.Refused)) is deploy.guards.Refused


def test_a_retained_name_the_new_template_does_not_create_blocks_nothing(aws, monkeypatch):
    """Destroyed, then deployed under a new NamePrefix: the old log group, kept on purpose, stays out of the way."""
    a_deleted_service_retained_its_log_group(aws, monkeypatch, name=RETAINED_LOG_GROUP.replace("-service", "old-service"))
    aws.cf.add_client_error("create_change_set", "ValidationError", "stop here", 400)  # nothing else read: no log group looked at
    assert aws.run("deploy", "--stack", "service", "--yes") == 1
    assert "refused before creating anything" not in aws.err and "stop here" in aws.err


def test_a_retained_name_that_cannot_be_read_or_listed_is_left_to_the_create(aws, monkeypatch):
    """The CI deploy role may read no log group: the look ahead is skipped, not the deploy."""
    a_deleted_service_retained_its_log_group(aws, monkeypatch)
    aws.logs.add_client_error("describe_log_groups", "AccessDeniedException", "not authorized", 400)
    aws.cf.add_client_error("create_change_set", "ValidationError", "stop here", 400)
    assert aws.run("deploy", "--stack", "service", "--yes") == 1
    assert "refused before creating anything" not in aws.err and "stop here" in aws.err


def test_stacks_that_cannot_be_listed_leave_the_create_to_say_what_blocks_it(aws, monkeypatch):
    aws.upstream_deployed("service")
    aws.not_deployed("service")
    monkeypatch.setattr(purge, "blocking", LOOK_FOR_BLOCKED_CREATES)
    aws.cf.add_client_error("list_stacks", "AccessDenied", "not authorized", 403)
    aws.cf.add_client_error("create_change_set", "ValidationError", "stop here", 400)
    assert aws.run("deploy", "--stack", "service", "--yes") == 1
    assert f"note: what destroyed stacks retained could not be listed (AccessDenied); creating {stack('service')}" in aws.out
    assert "stop here" in aws.err


def test_diff_of_a_layer_not_deployed_takes_the_deploys_look_at_held_names_and_a_failed_look_is_a_note(aws, monkeypatch):
    # tests/test_recreate.py runs the look that finds a held name on the sandbox; here the look cannot list the stacks.
    aws.not_deployed("service")
    aws.upstream_deployed("service")  # read by the deploy's first look (Deployer.wired_parameters)
    monkeypatch.setattr(purge, "blocking", LOOK_FOR_BLOCKED_CREATES)
    aws.cf.add_client_error("list_stacks", "AccessDenied", "not authorized", 403)
    assert aws.run("diff", "--stack", "service") == 1, aws.err
    lines = aws.out.splitlines()
    assert lines[:2] == [
        f"{stack('service')}: not deployed; deploying creates everything in {templates.relative(OUTPUT / 'service.json')}",
        "  note: what destroyed stacks retained could not be listed (AccessDenied); make deploy looks again before its first create",
    ], aws.out


# The execution's events carry ExecuteChangeSet's token ("same") or, where AWS stamps them so, CreateChangeSet's
# (the change set's name): AWS documents neither for change sets (Deployer.execution_tokens). With neither taken
# as this run's, the wait went on to its bound.
@pytest.mark.parametrize("carried", ["same", "the change set's name"])
def test_create_path_creates_executes_waits_protects_and_prints_outputs(aws, carried):
    aws.caller()  # the account a YES=1 run prints with its question, before it read any stack
    layer = "cert-dns"
    token = "same" if carried == "same" else cs_name(layer)
    aws.not_deployed(layer)
    aws.change_set(layer, "CREATE", CERT_CHANGES)
    aws.execute(layer)
    older = event(layer, stack(layer), "REVIEW_IN_PROGRESS", -60, reason="User Initiated", token=None)
    first = [older, event(layer, stack(layer), "CREATE_IN_PROGRESS", 1, reason="User Initiated", token=token)]
    first.append(event(layer, "Certificate", "CREATE_IN_PROGRESS", 2, "AWS::CertificateManager::Certificate", token=token))
    aws.poll(layer, stack_id(layer), described(layer, "CREATE_IN_PROGRESS", protected=False, with_outputs=False), *first)
    done = [
        *first,
        event(layer, "Certificate", "CREATE_COMPLETE", 90, "AWS::CertificateManager::Certificate", token=token),
        event(layer, stack(layer), "CREATE_COMPLETE", 91, token=token),
    ]
    aws.poll(layer, stack_id(layer), described(layer, "CREATE_COMPLETE", protected=False), *done)
    aws.cf.add_response(
        "set_stack_policy", {}, {"StackName": stack(layer), "StackPolicyBody": json.dumps(configuration(ENV, layer)["StackPolicy"])}
    )
    aws.cf.add_response(
        "update_termination_protection", {"StackId": stack_id(layer)}, {"StackName": stack(layer), "EnableTerminationProtection": True}
    )

    assert aws.run("deploy", "--stack", layer, "--yes") == 0, aws.err
    assert f"change set {cs_name(layer)} for {stack(layer)}" in aws.out
    assert "Add     Certificate" in aws.out and "new in the template" in aws.out
    assert "REVIEW_IN_PROGRESS" not in aws.out  # an event from before this operation
    lines = aws.out.splitlines()
    statuses = ("CREATE_IN_PROGRESS", "CREATE_COMPLETE")
    assert [sum("Certificate " in line and status in line for line in lines) for status in statuses] == [1, 1]
    assert f"CertificateArn = {OUTPUT_VALUES['CertificateArn']}" in aws.out
    assert f"{stack(layer)}: CREATE_COMPLETE" in aws.out
    assert aws.sleeps == [1.0]


def test_ctrl_c_while_protecting_a_new_stack_counts_it_created_and_the_next_run_protects_it(aws):
    aws.caller()  # the account a YES=1 run prints with its question, before it read any stack
    layer = PROD_LAYERS[0]
    policy = configuration(ENV, layer).get("StackPolicy")
    termination = {"StackName": stack(layer), "EnableTerminationProtection": True}

    def protection():  # the stack policy first (if the layer has one), then termination protection
        if policy:
            aws.cf.add_response("set_stack_policy", {}, {"StackName": stack(layer), "StackPolicyBody": json.dumps(policy)})
        aws.cf.add_response("update_termination_protection", {"StackId": stack_id(layer)}, termination)

    aws.not_deployed(layer)
    aws.change_set(layer, "CREATE", CERT_CHANGES)
    aws.execute(layer)
    done = [event(layer, stack(layer), "CREATE_IN_PROGRESS", 1, reason="User Initiated"), event(layer, stack(layer), "CREATE_COMPLETE", 91)]
    aws.poll(layer, stack_id(layer), described(layer, "CREATE_COMPLETE", protected=False), *done)
    protection()
    taken_back = interrupted_after(aws, "UpdateTerminationProtection")
    assert aws.run("deploy", "--yes") == 130
    assert [line for line in aws.out.splitlines() if line.startswith("summary, ")][0].endswith(f": {layer} (created, 1 change)")
    assert aws.err.splitlines()[-1] == "interrupted; to go on: the same command again (what is done already is not done again)"
    taken_back()
    # The next run, with nothing to change, finds the stack without termination protection and
    # protects it (a run stopped before the protection may have set the policy or not: both again).
    aws.deployed(layer, protected=False)
    aws.empty_change_set(layer)
    protection()
    assert aws.run("deploy", "--stack", layer, "--yes") == 0, aws.err
    assert (
        f"{stack(layer)}: termination protection was off (a run stopped before it set it, or a change by hand): turned back on"
        in aws.out.splitlines()
    ), aws.out  # said, not done silently under "no changes"


@pytest.mark.parametrize(
    "reason",
    [
        "The submitted information didn't contain changes. Submit different information to create a change set.",
        "No updates are to be performed.",
    ],
)
def test_empty_change_set_is_deleted_and_exits_zero_in_four_calls(aws, reason):
    aws.deployed("cert-dns")
    aws.empty_change_set("cert-dns", reason=reason)
    assert aws.run("deploy", "--stack", "cert-dns") == 0, aws.err
    assert f"{stack('cert-dns')}: no changes" in aws.out
    assert aws.calls("cert-dns") == 4


def test_recreate_given_where_no_stack_failed_its_first_create_says_it_recreated_nothing(aws):
    # RECREATE=1 on a stack that did not fail its first create was passed over in silence: one who gave it for a stack
    # in another state (ROLLBACK_FAILED, UPDATE_ROLLBACK_COMPLETE) was not told it did nothing (a walk through make's targets)
    aws.deployed("cert-dns")
    aws.empty_change_set("cert-dns")
    assert aws.run("deploy", "--stack", "cert-dns", "--recreate") == 0, aws.err
    assert aws.out.endswith(
        f"{stack('cert-dns')}: no changes\nnote: RECREATE=1 recreated nothing: {stack('cert-dns')} was not a failed first create "
        "(ROLLBACK_COMPLETE)\n"
    ), aws.out


def test_an_empty_change_set_found_gone_at_its_deletion_is_no_changes_still(aws):
    # The deletion's first attempt landed and its answer was lost: botocore's retry is answered ChangeSetNotFound
    # (by the sandbox; AWS's answer to a second deletion is not documented). It failed the deploy.
    aws.deployed("cert-dns")
    reason = "The submitted information didn't contain changes. Submit different information to create a change set."
    aws.cf.add_response("create_change_set", {"Id": "arn:x", "StackId": stack_id("cert-dns")}, create_params("cert-dns", "UPDATE"))
    aws.cf.add_response("describe_change_set", change_set("cert-dns", "FAILED", reason=reason))
    gone = f"ChangeSet [{cs_name('cert-dns')}] does not exist"
    aws.cf.add_client_error("delete_change_set", "ChangeSetNotFound", gone, 404, response_meta={"RetryAttempts": 1})
    assert aws.run("deploy", "--stack", "cert-dns") == 0, aws.err
    assert f"{stack('cert-dns')}: no changes" in aws.out


def test_an_empty_change_set_whose_deletion_is_refused_is_a_failure_not_no_changes(aws):
    # Only not-found means gone: a refused deletion leaves the change set, which the run must not call no changes.
    aws.deployed("cert-dns")
    reason = "The submitted information didn't contain changes. Submit different information to create a change set."
    aws.cf.add_response("create_change_set", {"Id": "arn:x", "StackId": stack_id("cert-dns")}, create_params("cert-dns", "UPDATE"))
    aws.cf.add_response("describe_change_set", change_set("cert-dns", "FAILED", reason=reason))
    for _ in range(2):  # and again by the run's clean-up, which says it may be left
        aws.cf.add_client_error("delete_change_set", "AccessDenied", "not allowed", 403)
    assert aws.run("deploy", "--stack", "cert-dns") == 1
    assert "DeleteChangeSet: AccessDenied" in aws.err and "no changes" not in aws.out, aws.out + aws.err


def test_no_updates_error_from_create_change_set_means_no_changes(aws):
    aws.deployed("cert-dns")
    aws.cf.add_client_error("create_change_set", "ValidationError", "No updates are to be performed.", 400)
    assert aws.run("deploy", "--stack", "cert-dns") == 0, aws.err
    assert "no changes" in aws.out


def test_failed_change_set_with_another_reason_is_reported_and_deleted(aws):
    reason = "Template error: instance of Fn::GetAtt references undefined resource Zone"
    aws.deployed("cert-dns")
    aws.cf.add_response("create_change_set", {"Id": "arn:x", "StackId": stack_id("cert-dns")}, create_params("cert-dns", "UPDATE"))
    aws.cf.add_response("describe_change_set", change_set("cert-dns", "FAILED", reason=reason))
    aws.cf.add_response("delete_change_set", {}, {"StackName": stack("cert-dns"), "ChangeSetName": cs_name("cert-dns")})
    assert aws.run("deploy", "--stack", "cert-dns", "--yes") == 1
    assert reason in aws.err and "Traceback" not in aws.err


def cert_dns_created(aws, status, *trail, **described_kwargs):
    """A first deploy of cert-dns as far as its stack's wait, which finds the stack `status` after trail's events."""
    layer = "cert-dns"
    aws.not_deployed(layer)
    aws.change_set(layer, "CREATE", CERT_CHANGES)
    aws.execute(layer)
    aws.poll(layer, stack_id(layer), described(layer, status, protected=False, **described_kwargs), *trail)


def test_create_ending_in_rollback_complete_prints_failed_resources(aws):
    aws.caller()  # the account a YES=1 run prints with its question, before it read any stack
    layer = "cert-dns"
    why = 'Resource handler returned message: "Invalid domain name" (RequestToken: 1a2b, HandlerErrorCode: InvalidRequest)'
    trail = [
        event(layer, stack(layer), "CREATE_IN_PROGRESS", 1),
        event(layer, "Certificate", "CREATE_FAILED", 5, "AWS::CertificateManager::Certificate", why),
        event(layer, stack(layer), "ROLLBACK_IN_PROGRESS", 6, reason="The following resource(s) failed to create: [Certificate]."),
        event(layer, stack(layer), "ROLLBACK_COMPLETE", 30),
    ]
    cert_dns_created(aws, "ROLLBACK_COMPLETE", *trail, with_outputs=False)
    assert aws.run("deploy", "--stack", layer, "--yes") == 1
    assert f"failed: Certificate (AWS::CertificateManager::Certificate): {why}" in aws.out
    assert "ended ROLLBACK_COMPLETE" in aws.err and f"make deploy STACK={layer} ENV={ENV} RECREATE=1" in aws.err


def test_a_run_of_one_layer_stopped_after_its_stack_operation_says_what_the_operation_did(aws, monkeypatch):
    aws.caller()  # the account a YES=1 run prints with its question, before it read any stack
    # Ctrl-C once the create had completed, in what follows it: "interrupted" alone, exit 130, as if nothing had happened.
    layer = "cert-dns"
    cert_dns_created(aws, "CREATE_COMPLETE", event(layer, stack(layer), "CREATE_COMPLETE", 30))

    def stopped(self, layer, found):
        raise KeyboardInterrupt

    monkeypatch.setattr(deploy.deployer.Deployer, "protect", stopped)
    assert aws.run("deploy", "--stack", layer, "--yes") == 130
    assert len(CERT_CHANGES) == 1
    summary, where = aws.out.splitlines()[-2:]
    assert re.fullmatch(rf"summary, [0-9.]+ s: {layer} \(created, 1 change\)", summary), aws.out  # as a run of every layer says it
    assert where == f"  the run stopped in {layer}, after its stack operation: created, 1 change (the reason is below)", aws.out


def test_update_ending_in_update_rollback_failed_points_to_recover(aws):
    layer = "cert-dns"
    aws.deployed(layer)
    aws.change_set(layer, "UPDATE", [change("Modify", "HostedZone", "AWS::Route53::HostedZone", details=[detail("HostedZoneConfig")])])
    aws.execute(layer)
    trail = [
        event(layer, stack(layer), "UPDATE_IN_PROGRESS", 1),
        event(layer, "HostedZone", "UPDATE_FAILED", 3, "AWS::Route53::HostedZone", "Rate exceeded for hosted zone changes"),
        event(layer, stack(layer), "UPDATE_ROLLBACK_IN_PROGRESS", 4),
        event(layer, "HostedZone", "UPDATE_FAILED", 8, "AWS::Route53::HostedZone", "Access denied: route53:UpdateHostedZoneComment"),
        event(layer, stack(layer), "UPDATE_ROLLBACK_FAILED", 9),
    ]
    aws.poll(layer, stack_id(layer), described(layer, "UPDATE_ROLLBACK_FAILED"), *trail)
    assert aws.run("deploy", "--stack", layer, "--yes") == 1
    assert "failed: HostedZone (AWS::Route53::HostedZone): Access denied: route53:UpdateHostedZoneComment" in aws.out
    assert f"make recover STACK={layer} ENV={ENV}" in aws.err


# A stateful replacement AWS can run: the target group gets a new name with its new port (one under
# the name it has is refused whatever ALLOW_REPLACE says: test_a_replacement_under_the_same_custom_name...).
ALB_CHANGES = [
    change(
        "Modify",
        "TargetGroup",
        "AWS::ElasticLoadBalancingV2::TargetGroup",
        "True",
        [detail("Port", recreation="Always"), detail("Name", recreation="Always")],
    ),
    change("Modify", "AlbSecurityGroup", "AWS::EC2::SecurityGroup", "False", [detail("SecurityGroupIngress")]),
]


def test_replacing_a_stateful_resource_is_refused_without_allow_replace(aws):
    aws.deployed("cert-dns")
    aws.deployed("alb")
    aws.change_set("alb", "UPDATE", ALB_CHANGES)
    # refused: what reads the target group it would replace is not read
    aws.cf.add_response("delete_change_set", {}, {"StackName": stack("alb"), "ChangeSetName": cs_name("alb")})
    assert aws.run("deploy", "--stack", "alb", "--yes") == 1
    assert "TargetGroup (AWS::ElasticLoadBalancingV2::TargetGroup, replaced)" in aws.err and "--allow-replace" in aws.err
    table = aws.out.splitlines()
    assert any(
        line.strip().startswith("!REPLACE,STATEFUL") and "TargetGroup" in line and "Port (DirectModification) recreates" in line
        for line in table
    )
    assert any(line.strip().startswith("!SG") and "AlbSecurityGroup" in line for line in table)


def service_log_group_renamed(aws):
    """A service update, with ALLOW_REPLACE=1, that makes its log group anew under the name
    service.py gives it; its name."""
    aws.deployed("alb")
    aws.deployed("release-alarms")
    aws.deployed("service")
    renamed = [change("Modify", "LogGroup", "AWS::Logs::LogGroup", "True", [detail("LogGroupName", recreation="Always")])]
    aws.change_set("service", "UPDATE", renamed)
    return f"/ecs/{configuration(ENV, 'service')['Parameters']['NamePrefix']}-service"


class Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.mark.parametrize("no_color, painted", [(None, True), ("", True), ("1", False)], ids=["unset", "empty", "set"])
def test_the_change_set_table_is_coloured_on_a_terminal_unless_no_color_is_set(aws, monkeypatch, no_color, painted):
    # NO_COLOR "when present and not an empty string, prevents the addition of ANSI color" (https://no-color.org/):
    # a platform engineer's shell that sets it (a screen reader, a log that keeps escapes) gets the marks alone.
    if no_color is None:
        monkeypatch.delenv("NO_COLOR", raising=False)
    else:
        monkeypatch.setenv("NO_COLOR", no_color)
    service_log_group_renamed(aws)
    aws.logs.add_response("describe_log_groups", {"logGroups": []}, {"logGroupNamePrefix": ANY})
    aws.cf.add_response("delete_change_set", {}, {"StackName": stack("service"), "ChangeSetName": cs_name("service")})
    assert aws.run("deploy", "--stack", "service", "--allow-replace", tty=True, answer="n", out=Terminal()) == 1
    (row,) = [line for line in aws.out.splitlines() if "!REPLACE" in line]
    assert ("\033[" in row) is painted and row.replace("\033[31m", "").replace("\033[0m", "").lstrip().startswith("!REPLACE"), row


def test_a_log_group_whose_name_only_starts_the_name_needed_blocks_nothing(aws, monkeypatch):
    monkeypatch.delenv("AWS_ENDPOINT_URL")  # on AWS: the question names the account alone, no emulator
    name = service_log_group_renamed(aws)
    group = {"logGroupName": f"{name}-old", "arn": f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{name}-old:*"}
    aws.logs.add_response("describe_log_groups", {"logGroups": [group]}, {"logGroupNamePrefix": name})
    aws.cf.add_response("delete_change_set", {}, {"StackName": stack("service"), "ChangeSetName": cs_name("service")})
    assert aws.run("deploy", "--stack", "service", "--allow-replace", tty=True, answer="n") == 1
    assert "not confirmed" in aws.err and "taken" not in aws.err
    # The question names the account and region it acts in: the account from the stack read (its StackId), no call added.
    assert aws.questions == [f"account {ACCOUNT}, {REGION}: execute {cs_name('service')} on {stack('service')}? [y/N] "]


def test_the_taken_name_check_waits_until_the_replacement_is_allowed(aws):
    """Without ALLOW_REPLACE=1 the stateful replacement is refused first, before any log group is
    read: the check may ask to delete logs, for a replacement that may not be wanted."""
    service_log_group_renamed(aws)  # no describe_log_groups queued: one made fails the test
    aws.cf.add_response("delete_change_set", {}, {"StackName": stack("service"), "ChangeSetName": cs_name("service")})
    assert aws.run("deploy", "--stack", "service", "--yes") == 1
    assert "refused: the change set replaces or removes stateful resources: LogGroup" in aws.err


def other_account_arn(arn):
    return arn.replace(f":{ACCOUNT}:", f":{int(ACCOUNT) + 1:012d}:")


def test_a_params_arn_of_another_account_than_the_stacks_is_refused_before_a_change_set(aws, tmp_path):
    """The service's roles may read only their own account's secrets: a task would fail to start,
    minutes into the release. The account is the one of a stack the run read (its own and the upstream
    ones it takes outputs from, before RECREATE=1 could delete anything): no call for it."""
    aws.deployed("alb")
    aws.deployed("release-alarms")
    aws.deployed("service")
    layer = deploy.load_layer(ENV, "service", OUTPUT)
    secret = layer.parameters["DatabaseSecretArn"]
    other = tmp_path / "output"  # a copy of output/ whose prod service configuration names another account's secret
    shutil.copytree(OUTPUT, other)
    config = other / ENV / "service.json"
    document = json.loads(config.read_text())
    document["Parameters"]["DatabaseSecretArn"] = other_account_arn(secret)
    config.write_text(json.dumps(document))
    # Refused before CreateChangeSet (and without GetCallerIdentity): the stubs answer neither
    assert aws.run("deploy", "--stack", "service", "--yes", "--output-dir", str(other)) == 1
    assert aws.err == (
        f"error: params/{ENV}.yaml: parameters.DatabaseSecretArn is in account {int(ACCOUNT) + 1:012d}, but the stacks go to account "
        f"{ACCOUNT}: the service's execution role has no KMS permission, which reading another account's secret needs (its customer "
        f"managed key), so no task would start; nothing changed. Set the ARN of the secret in account {ACCOUNT}, make templates, and "
        "deploy again\n"
    )


def test_with_no_stack_read_the_account_is_the_callers_for_a_layer_with_such_an_arn_and_later_ones_wait(aws):
    """The environment's first create: the account is asked only for a layer that has such an ARN
    itself; before it, the check waits until a stack the run made tells the account."""
    from scripts.deploy import guards

    def deployer(*layers):
        made = deploy.Deployer(aws.clients.__getitem__, ENV, out=io.StringIO(), err=io.StringIO())
        made.run_layers = [deploy.load_layer(ENV, name, OUTPUT) for name in layers]
        return made, made.run_layers[0]

    caller = {"UserId": "AIDAEXAMPLE", "Account": ACCOUNT, "Arn": f"arn:aws:iam::{ACCOUNT}:user/ops"}
    aws.sts.add_response("get_caller_identity", caller, {})
    guards.refuse_a_secret_of_another_account(*deployer("service"))  # params/prod.yaml's secret: the caller's account
    aws.sts.add_response("get_caller_identity", caller | {"Account": f"{int(ACCOUNT) + 1:012d}"}, {})
    with pytest.raises(deploy.Failure, match=f"parameters.DatabaseSecretArn is in account {ACCOUNT}, but"):
        guards.refuse_a_secret_of_another_account(*deployer("service"))
    # cert-dns first, nothing read: no call, and the check is left for the service layer's turn
    first, cert_dns = deployer("cert-dns", "service")
    guards.refuse_a_secret_of_another_account(first, cert_dns)
    assert guards.ACCOUNTS not in first.checked
    aws.sts.assert_no_pending_responses()


def test_a_new_database_secret_the_tasks_could_not_read_is_refused_before_anything(aws):
    """guards.refuse_a_secret_the_tasks_cannot_read: the service's roles may use no KMS key, and ECS
    needs kms:Decrypt on a customer managed one (task_execution_IAM_role.html): DescribeSecret leaves
    KmsKeyId out for the AWS managed key, a console-made secret names that key by its id, and
    DescribeKey's KeyManager decides. Asked only for a secret the service does not use yet, on AWS."""
    from scripts.deploy import guards

    service = deploy.load_layer(ENV, "service", OUTPUT)
    arn = service.parameters["DatabaseSecretArn"]
    key = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"

    def check(deployed=None, on_aws=True):
        """The guard at a run of the service layer; what it said."""
        made = deploy.Deployer(aws.clients, ENV, out=io.StringIO(), err=io.StringIO(), on_aws=on_aws)
        made.run_layers = [service]
        made.stacks[stack("service")] = deployed  # None: not deployed, a first create
        made.checked.add(guards.ACCOUNTS)  # the secret is the stacks' account's (refuse_a_secret_of_another_account)
        guards.refuse_a_secret_the_tasks_cannot_read(made, service)
        return made.out.getvalue()

    secrets, kms = aws.stubber("secretsmanager"), aws.stubber("kms")
    secrets.add_response("describe_secret", {"ARN": arn, "Name": arn.split(":")[6]}, {"SecretId": arn})  # the AWS managed key
    assert check() == ""
    for manager in ("AWS", "CUSTOMER"):  # the key named by its id: whose it is
        secrets.add_response("describe_secret", {"ARN": arn, "KmsKeyId": key}, {"SecretId": arn})
        kms.add_response("describe_key", {"KeyMetadata": {"KeyId": key.split("/")[1], "KeyManager": manager}}, {"KeyId": key})
        if manager == "AWS":
            assert check() == ""
            continue
        with pytest.raises(deploy.Failure) as refused:
            check()
        assert str(refused.value) == (
            f"error: params/{ENV}.yaml: parameters.DatabaseSecretArn: the secret is encrypted with the customer managed KMS key {key}, "
            "which the service's roles may not use (their permissions boundary allows no KMS key), so no task could read it and none "
            "would start; nothing changed. Encrypt it with the AWS managed key (the key a secret gets when none is given): as someone "
            f"who may use the current key (kms:Decrypt; without it the versions stay encrypted with it), {CLI} secretsmanager "
            f"update-secret --secret-id {arn} --kms-key-id alias/aws/secretsmanager, then deploy again"
        )
    # No such secret: refused, asked in the region the ARN names, the stacks' or another (ECS reads a secret
    # of another region by its full ARN, specifying-sensitive-data.html; a client of the stacks' region
    # would not find it there). Params may name either.
    other = next(name for name in sorted(REGIONS) if name != REGION)
    for region in (REGION, other):
        elsewhere = service.parameters["DatabaseSecretArn"].split(":")
        elsewhere[3] = region
        arn = ":".join(elsewhere)
        service = dataclasses.replace(service, parameters=service.parameters | {"DatabaseSecretArn": arn})
        aws.stubber("secretsmanager", region).add_client_error(
            "describe_secret",
            "ResourceNotFoundException",
            "Secrets Manager can't find the specified secret.",
            400,
            expected_params={"SecretId": arn},
        )
        there = "and region" if region == REGION else f"in {region}, the region the ARN names (the stacks go to {REGION})"
        with pytest.raises(deploy.Failure) as refused:
            check()
        assert (
            str(refused.value)
            == f"error: params/{ENV}.yaml: parameters.DatabaseSecretArn: no secret {arn} in the stacks' account {there}; nothing changed"
        )
    # there, under a customer managed key of that region: the key is asked there, and the command that re-encrypts names the region
    key_there = key.replace(f":{REGION}:", f":{other}:")
    aws.stubber("secretsmanager", other).add_response("describe_secret", {"ARN": arn, "KmsKeyId": key_there}, {"SecretId": arn})
    aws.stubber("kms", other).add_response(
        "describe_key", {"KeyMetadata": {"KeyId": key_there.split("/")[1], "KeyManager": "CUSTOMER"}}, {"KeyId": key_there}
    )
    with pytest.raises(deploy.Failure) as refused:
        check()
    assert f"{CLI.replace(f'--region {REGION}', f'--region {other}')} secretsmanager update-secret --secret-id {arn} " in str(refused.value)
    # not read there (any error but a missing secret: a region the account has not enabled, say): a note naming the region
    aws.stubber("secretsmanager", other).add_client_error(
        "describe_secret", "UnrecognizedClientException", "The security token is invalid.", 400
    )
    assert check() == (
        f"  note: the database secret {arn} and its KMS key could not be read in {other}, the region the ARN names "
        "(UnrecognizedClientException); going on\n"
    )
    # the deployer keeps that region's clients apart from its own region's
    made = deploy.Deployer(aws.clients, ENV, out=io.StringIO(), err=io.StringIO())
    assert made.client("kms", other) is not made.client("kms") and made.client("kms", other) is made.client("kms", other)
    assert (made.client("kms", other).meta.region_name, made.client("kms", REGION).meta.region_name) == (other, REGION)
    service = deploy.load_layer(ENV, "service", OUTPUT)
    arn = service.parameters["DatabaseSecretArn"]
    secrets.add_client_error("describe_secret", "AccessDeniedException", "not authorized to perform secretsmanager:DescribeSecret", 400)
    assert check() == f"  note: the database secret {arn} and its KMS key could not be read (AccessDeniedException); going on\n"
    # no call (the stubs fail an unqueued one): the secret the service uses already, and an emulator's
    assert check(deployed=described("service")["Stacks"][0]) == ""
    assert check(on_aws=False) == ""
    # a key of another account is a customer managed one: no DescribeKey (the deploy role may not read it)
    theirs = key.replace(f":{ACCOUNT}:", f":{int(ACCOUNT) + 1:012d}:")
    secrets.add_response("describe_secret", {"ARN": arn, "KmsKeyId": theirs}, {"SecretId": arn})
    with pytest.raises(deploy.Failure, match="the secret is encrypted with the customer managed KMS key"):
        check()
    # a run of every layer asks at its first layer, for the service layer ahead
    secrets.add_response("describe_secret", {"ARN": arn, "KmsKeyId": theirs}, {"SecretId": arn})
    made = deploy.Deployer(aws.clients.__getitem__, ENV, out=io.StringIO(), err=io.StringIO())
    made.run_layers = [deploy.load_layer(ENV, name, OUTPUT) for name in PROD_LAYERS]
    made.stacks |= {each.stack: None for each in made.run_layers}
    guards.refuse_a_secret_the_tasks_cannot_read(made, made.run_layers[0])  # the account not known yet: no call
    made.checked.add(guards.ACCOUNTS)  # once the account check knows it (at a later layer of the run)
    with pytest.raises(deploy.Failure, match="the secret is encrypted with the customer managed KMS key"):
        guards.refuse_a_secret_the_tasks_cannot_read(made, made.run_layers[1])


def test_a_deploy_on_aws_of_a_service_with_a_secret_under_a_customer_managed_key_stops_before_its_change_set(aws, monkeypatch):
    """The guard above in a run (on AWS: no AWS_ENDPOINT_URL): refused before any change set."""
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    service = deploy.load_layer(ENV, "service", OUTPUT)
    arn, key = service.parameters["DatabaseSecretArn"], f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    aws.upstream_deployed("service")
    aws.not_deployed("service")
    aws.image(service.parameters["ImageTag"])  # a first create runs params' image, looked for first
    aws.stubber("secretsmanager").add_response("describe_secret", {"ARN": arn, "KmsKeyId": key}, {"SecretId": arn})
    aws.stubber("kms").add_response("describe_key", {"KeyMetadata": {"KeyId": key.split("/")[1], "KeyManager": "CUSTOMER"}}, {"KeyId": key})
    assert aws.run("deploy", "--stack", "service", "--yes") == 1
    assert aws.err.startswith(f"error: {PARAMS_FILE}: parameters.DatabaseSecretArn: the secret is encrypted with the customer managed"), (
        aws.err
    )


def test_a_cluster_that_is_not_active_is_refused_before_the_service_is_created(aws):
    """guards.refuse_a_cluster_the_service_cannot_use, on AWS: the ClusterName the service's stack does not use yet is an
    ACTIVE cluster (ECS creates no service in one it does not find or a deleted one, minutes into the create)."""
    from scripts.deploy import guards

    service = deploy.load_layer(ENV, "service", OUTPUT)
    cluster = service.parameters["ClusterName"]

    made = deploy.Deployer(aws.clients.__getitem__, ENV, out=io.StringIO(), err=io.StringIO(), on_aws=True)

    def check(deployed=None):
        made.checked.clear()
        made.out = io.StringIO()
        made.run_layers = [deploy.load_layer(ENV, "cert-dns", OUTPUT), service]
        made.stacks[service.stack] = deployed
        guards.refuse_a_cluster_the_service_cannot_use(made, made.run_layers[0])
        return made.out.getvalue()

    def answered(answer):
        aws.stubber("ecs").add_response("describe_clusters", answer, {"clusters": [cluster]})

    for status in ("ACTIVE", "PROVISIONING", "FAILED"):  # the last two are its capacity providers', which Fargate does not use
        answered({"clusters": [{"clusterName": cluster, "status": status}]})
        assert check() == "", status
    for answer, said in (
        ({"clusters": [], "failures": [{"arn": cluster, "reason": "MISSING"}]}, "is not found"),
        ({"clusters": [{"clusterName": cluster, "status": "INACTIVE"}]}, "is INACTIVE"),
    ):
        answered(answer)
        with pytest.raises(deploy.Failure) as failure:
            check()
        assert str(failure.value) == (
            f"error: params/{ENV}.yaml: parameters.ClusterName: cluster {cluster} {said} in the stacks' account and region ({REGION}), "
            f"and ECS creates no service in it: name the Phase 5.14 cluster ({made.cli} ecs list-clusters lists them); "
            "nothing changed"
        )
    aws.stubber("ecs").add_client_error("describe_clusters", "AccessDeniedException", "not authorized", 400)
    assert check() == f"  note: cluster {cluster} could not be read (AccessDeniedException); going on\n"
    answered({})  # no list at all says nothing of the cluster: not "not found", which blamed the params file (helper G2)
    assert check() == f"  note: cluster {cluster} could not be read (its answer named no clusters); going on\n"
    answered({"failures": [{"arn": cluster, "reason": "MISSING"}]})  # an answer without the empty list: not found all the same
    with pytest.raises(deploy.Failure, match=f"cluster {cluster} is not found"):
        check()
    # the cluster the service's stack runs in already: no call (the stubs fail an unqueued one)
    assert check(deployed=described("service")["Stacks"][0]) == ""


def test_subnets_or_a_backend_group_outside_the_vpc_or_public_subnets_in_one_zone_are_refused_before_anything(aws):
    """guards.refuse_subnets_the_layers_cannot_use, on AWS: the subnets and backend security group a
    layer's stack does not use yet (or all, when VpcId changes) exist, are in VpcId
    (API_NetworkConfiguration: subnets and security groups of one VPC), and the load balancer's
    subnets are in two Availability Zones (API_CreateLoadBalancer)."""
    from scripts.deploy import guards

    alb, service = (deploy.load_layer(ENV, name, OUTPUT) for name in ("alb", "service"))
    vpc, group = alb.parameters["VpcId"], service.parameters["BackendSecurityGroupId"]
    public, private = alb.parameters["PublicSubnetIds"].split(","), service.parameters["PrivateSubnetIds"].split(",")
    other = "vpc-0f9e8d7c6b5a40718"

    def network(zones=("a", "b", "a", "b"), vpcs=(vpc,) * 4, group_vpc=vpc, subnet_ids=None, leave_out=()):
        """DescribeSubnets (public ones, then private ones, in these zones and VPCs) and DescribeSecurityGroups."""
        found = [
            {"SubnetId": i, "VpcId": v, "AvailabilityZone": f"{REGION}{z}"}
            for i, z, v in zip(public + private, zones, vpcs, strict=True)
            if i not in leave_out
        ]
        asked = sorted(subnet_ids or public + private)
        ec2 = aws.stubber("ec2")
        ec2.add_response(
            "describe_subnets",
            {"Subnets": [f for f in found if f["SubnetId"] in asked]},
            {"Filters": [{"Name": "subnet-id", "Values": asked}]},
        )
        groups = [{"GroupId": group, "VpcId": group_vpc, "GroupName": "backend", "Description": "backend", "OwnerId": ACCOUNT}]
        ec2.add_response("describe_security_groups", {"SecurityGroups": groups}, {"Filters": [{"Name": "group-id", "Values": [group]}]})

    def check(layers=(alb, service), deployed=None, on_aws=True):
        made = deploy.Deployer(aws.clients.__getitem__, ENV, out=io.StringIO(), err=io.StringIO(), on_aws=on_aws)
        made.run_layers = list(layers)
        for each in (alb, service):
            made.stacks[each.stack] = (deployed or {}).get(each.name)  # None: not deployed
        guards.refuse_subnets_the_layers_cannot_use(made, made.run_layers[0])
        return made.out.getvalue()

    def refused(**deployed_and_layers) -> str:
        with pytest.raises(deploy.Failure) as failure:
            check(**deployed_and_layers)
        return str(failure.value)

    network()
    assert check() == ""
    network(zones=("a", "a", "a", "b"))
    assert refused() == (
        f"error: params/{ENV}.yaml: parameters.PublicSubnetIds: {', '.join(public)} share the Availability Zone {REGION}a; "
        "the load balancer takes one subnet per zone, in at least two; nothing changed"
    )
    network(vpcs=(vpc, vpc, vpc, other), group_vpc=other)
    assert refused() == (
        f"error: params/{ENV}.yaml: parameters.BackendSecurityGroupId: {group} (in {other}) not in VpcId {vpc}; "
        f"parameters.PrivateSubnetIds: {private[1]} (in {other}) not in VpcId {vpc}; nothing changed"
    )
    network(leave_out=public[:1])  # a typo: no such subnet
    assert (
        refused()
        == f"error: params/{ENV}.yaml: parameters.PublicSubnetIds: no {public[0]} in the stacks' account and region; nothing changed"
    )
    aws.stubber("ec2").add_client_error("describe_subnets", "UnauthorizedOperation", "not authorized", 403)
    assert check() == "  note: the subnets and the backend security group could not be read (UnauthorizedOperation); going on\n"
    # what the stacks use already: no call (the stubs fail an unqueued one); nor on an emulator
    deployed = {name: described(name)["Stacks"][0] for name in ("alb", "service")}
    assert check(deployed=deployed) == ""
    assert check(on_aws=False) == ""
    # stacks still changing (their values may be the old or the new ones) use nothing for sure: asked again
    network()
    changing = {
        "alb": described("alb", "ROLLBACK_IN_PROGRESS")["Stacks"][0],
        "service": described("service", "UPDATE_IN_PROGRESS")["Stacks"][0],
    }
    assert check(deployed=changing) == ""
    # a layer without subnets or the backend group (cert-dns): nothing read, not even the alb stack
    made = deploy.Deployer(aws.clients.__getitem__, ENV, out=io.StringIO(), err=io.StringIO())
    made.run_layers = [deploy.load_layer(ENV, "cert-dns", OUTPUT)]
    guards.refuse_subnets_the_layers_cannot_use(made, made.run_layers[0])  # the stubs fail any call
    # a failed first create (RECREATE=1 deletes it) uses nothing: asked again
    network(zones=("a", "a", "a", "b"))
    assert "share the Availability Zone" in refused(deployed={name: described(name, "ROLLBACK_COMPLETE")["Stacks"][0] for name in deployed})
    # a new VpcId, the same subnets and group: every one asked again
    moved = {"alb": described("alb", parameters=parameters(ENV, "alb", VpcId=other))["Stacks"][0], "service": deployed["service"]}
    network()
    assert check(deployed=moved) == ""
    # a run of the service layer alone: VpcId is the deployed alb layer's
    network(vpcs=(vpc, vpc, other, other), subnet_ids=private)
    assert refused(layers=[service], deployed={"alb": deployed["alb"]}) == (
        f"error: params/{ENV}.yaml: parameters.PrivateSubnetIds: {private[0]} (in {other}), {private[1]} (in {other}) not in the "
        f"deployed alb layer's VpcId {vpc}; nothing changed"
    )
    # (mutation audit) no VpcId known (the alb stack still changing): the subnets are looked for, their VPC not judged
    network(vpcs=(vpc, vpc, other, other), subnet_ids=private)
    assert check(layers=[service], deployed={"alb": changing["alb"]}) == ""


def test_subnets_left_empty_in_a_hand_edited_output_file_are_refused_before_anything(aws):
    """guards.refuse_subnets_the_layers_cannot_use, on AWS: params are checked, but output/<env>/<layer>.json may be edited by hand."""
    from scripts.deploy import guards

    alb, service = (deploy.load_layer(ENV, name, OUTPUT) for name in ("alb", "service"))
    emptied = dataclasses.replace(service, parameters=service.parameters | {"PrivateSubnetIds": ""})
    group, vpc = service.parameters["BackendSecurityGroupId"], alb.parameters["VpcId"]
    groups = [{"GroupId": group, "VpcId": vpc, "GroupName": "backend", "Description": "backend", "OwnerId": ACCOUNT}]
    aws.stubber("ec2").add_response(
        "describe_security_groups", {"SecurityGroups": groups}, {"Filters": [{"Name": "group-id", "Values": [group]}]}
    )
    made = deploy.Deployer(aws.clients.__getitem__, ENV, out=io.StringIO(), err=io.StringIO(), on_aws=True)
    made.run_layers = [emptied]
    made.stacks[alb.stack], made.stacks[service.stack] = described("alb")["Stacks"][0], None
    with pytest.raises(deploy.Failure) as failure:
        guards.refuse_subnets_the_layers_cannot_use(made, emptied)
    assert str(failure.value) == f"error: params/{ENV}.yaml: parameters.PrivateSubnetIds is empty; nothing changed"


def test_a_change_set_that_removes_a_protected_load_balancer_is_refused(aws):
    # Only a replacement was refused: a removal of a load balancer with deletion protection on left it running outside the stack.
    alb = deploy.load_layer(ENV, "alb", OUTPUT)
    made = deploy.Deployer(aws.clients.__getitem__, ENV, out=io.StringIO(), err=io.StringIO())
    running = configuration(ENV, "alb")["Parameters"] | stubbed_aws.wired("alb") | stubbed_aws.deploy_time("alb")
    made.stacks[alb.stack] = described("alb", parameters=running | {"DeletionProtection": "true"})["Stacks"][0]  # whatever params say
    removal = change_set("alb", changes=[change("Remove", "LoadBalancer", "AWS::ElasticLoadBalancingV2::LoadBalancer")])
    with pytest.raises(deploy.Failure) as failure:
        guards.refuse_deleting_a_protected_load_balancer(made, alb, removal, "nothing changed")
    assert str(failure.value).startswith(
        "error: refused: the change set replaces or removes LoadBalancer, a load balancer that has deletion protection on "
        "(DeletionProtection=true)"
    ), failure.value


def test_an_image_of_a_new_repository_is_looked_for_though_its_tag_is_the_running_one(aws):
    """guards.refuse_a_missing_image, on AWS: the running tag in another EcrRepositoryName is not the image asked for."""
    service = deploy.load_layer(ENV, "service", OUTPUT)
    repository, tag = service.parameters["EcrRepositoryName"], service.parameters["ImageTag"]
    made = deploy.Deployer(aws.clients.__getitem__, ENV, out=io.StringIO(), err=io.StringIO(), on_aws=True)
    made.run_layers = [service]
    running = service_parameters(tag) | {"EcrRepositoryName": repository + "-old"}
    made.stacks[service.stack] = described("service", parameters=running)["Stacks"][0]
    aws.image(tag, "ImageNotFoundException")
    # the same tag was taken for the running image: a new repository without it failed minutes into the release
    with pytest.raises(deploy.Failure) as failure:
        guards.refuse_a_missing_image(made, service, None)
    assert str(failure.value) == f"{guards.not_in_ecr(made, repository, tag)}; no change set was made"


def test_the_image_of_a_failed_first_create_is_looked_for_though_it_was_given_the_same_tag(aws):
    """guards.refuse_a_missing_image, on AWS: a failed first create (ROLLBACK_COMPLETE) runs no image, whatever tag it was given."""
    service = deploy.load_layer(ENV, "service", OUTPUT)
    repository, tag = service.parameters["EcrRepositoryName"], service.parameters["ImageTag"]
    made = deploy.Deployer(aws.clients.__getitem__, ENV, out=io.StringIO(), err=io.StringIO(), on_aws=True)
    made.run_layers = [service]
    given = service_parameters(tag) | {"EcrRepositoryName": repository}
    made.stacks[service.stack] = described("service", status="ROLLBACK_COMPLETE", parameters=given)["Stacks"][0]
    aws.image(tag, "ImageNotFoundException")
    # RECREATE=1 deletes it and creates the service with that tag: a missing image failed minutes into the create
    with pytest.raises(deploy.Failure) as failure:
        guards.refuse_a_missing_image(made, service, None)
    assert str(failure.value) == f"{guards.not_in_ecr(made, repository, tag)}; no change set was made"


@pytest.mark.parametrize("code", ["AccessDeniedException", "AccessDenied"])
def test_an_image_that_may_not_be_looked_for_is_said_and_the_run_goes_on(aws, code):
    """guards.refuse_a_missing_image, on AWS: a deploy role made before the ci layer allowed ecr:DescribeImages."""
    service = deploy.load_layer(ENV, "service", OUTPUT)
    repository, tag = service.parameters["EcrRepositoryName"], service.parameters["ImageTag"]
    made = deploy.Deployer(aws.clients.__getitem__, ENV, out=io.StringIO(), err=io.StringIO(), on_aws=True)
    made.run_layers = [service]
    made.stacks[service.stack] = described("service", parameters=service_parameters(tag + "-old"))["Stacks"][0]
    aws.image(tag, code)
    guards.refuse_a_missing_image(made, service, tag)
    assert f"note: could not check that image {repository}:{tag} is in ECR (ecr:DescribeImages denied); going on" in made.out.getvalue()


def test_an_image_of_a_repository_the_account_does_not_have_is_refused_before_anything(aws):
    """guards.refuse_a_missing_image, on AWS: an EcrRepositoryName typo failed minutes into the release, at each task's pull."""
    service = deploy.load_layer(ENV, "service", OUTPUT)
    repository, tag = service.parameters["EcrRepositoryName"], service.parameters["ImageTag"]
    made = deploy.Deployer(aws.clients.__getitem__, ENV, out=io.StringIO(), err=io.StringIO(), on_aws=True)
    made.run_layers = [service]
    made.stacks[service.stack] = described("service", parameters=service_parameters(tag + "-old"))["Stacks"][0]
    aws.image(tag, "RepositoryNotFoundException")
    with pytest.raises(deploy.Failure) as failure:
        guards.refuse_a_missing_image(made, service, tag)
    assert str(failure.value) == (
        f"error: params/{ENV}.yaml: parameters.EcrRepositoryName: no ECR repository {repository} in the stacks' account and region; "
        "no change set was made"
    )


def test_a_service_already_rolling_is_not_switching_to_rolling(aws):
    # A ROLLING service deployed ROLLING again was taken for one leaving a traffic-shifting strategy.
    service = deploy.load_layer(ENV, "service", OUTPUT)
    made = deploy.Deployer(aws.clients.__getitem__, ENV, out=io.StringIO(), err=io.StringIO())
    rolling = service_parameters(service.parameters["ImageTag"]) | {"DeploymentStrategy": "ROLLING"}
    update = change_set("service", parameters=rolling)
    for running, switches in (("ROLLING", False), (TRAFFIC_SHIFTING[0], True)):
        made.stacks[service.stack] = described("service", parameters=rolling | {"DeploymentStrategy": running})["Stacks"][0]
        assert guards.switches_to_rolling(made, service, update) is switches, running


def test_a_service_whose_stack_names_no_strategy_is_not_switching_to_rolling(aws):
    # Only a traffic-shifting strategy leaves traffic where ECS moved it: a stack without the parameter shifted none.
    service = deploy.load_layer(ENV, "service", OUTPUT)
    made = deploy.Deployer(aws.clients.__getitem__, ENV, out=io.StringIO(), err=io.StringIO())
    rolling = service_parameters(service.parameters["ImageTag"]) | {"DeploymentStrategy": "ROLLING"}
    running = {name: value for name, value in rolling.items() if name != "DeploymentStrategy"}
    made.stacks[service.stack] = described("service", parameters=running)["Stacks"][0]
    assert guards.switches_to_rolling(made, service, change_set("service", parameters=rolling)) is False


def test_a_log_group_whose_name_only_starts_with_the_name_does_not_hold_it(aws):
    # DescribeLogGroups takes the name as a prefix: a longer-named group was taken for the name.
    made = deploy.Deployer(aws.clients.__getitem__, ENV, out=io.StringIO(), err=io.StringIO())
    longer = {"logGroupName": RETAINED_LOG_GROUP + "-old", "arn": f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{RETAINED_LOG_GROUP}-old:*"}
    aws.logs.add_response("describe_log_groups", {"logGroups": [longer]}, {"logGroupNamePrefix": RETAINED_LOG_GROUP})
    assert guards.log_group_exists(made, RETAINED_LOG_GROUP) is False


def test_the_look_ahead_for_taken_log_group_names_reads_no_stack_that_is_not_ours(aws):
    # Someone else's stack of a layer's name had its resources read (it is refused when its turn comes).
    alb, service = (deploy.load_layer(ENV, name, OUTPUT) for name in ("alb", "service"))
    made = deploy.Deployer(aws.clients.__getitem__, ENV, out=io.StringIO(), err=io.StringIO())
    made.run_layers = [alb, service]
    made.stacks[alb.stack] = None
    made.stacks[service.stack] = described("service", tags={"owner": "another-team"})["Stacks"][0]
    assert made.foreign(made.stacks[service.stack])
    guards.refuse_taken_names_ahead(made, alb)
    assert made.out.getvalue() == ""


@pytest.mark.parametrize("status", [None, "REVIEW_IN_PROGRESS", "ROLLBACK_COMPLETE"])
def test_the_look_ahead_for_taken_log_group_names_reads_no_stack_the_run_creates(aws, status):
    # A create has no names yet: refuse_blocked_creates looks at what holds the ones it needs, at the run's first create.
    alb, service = (deploy.load_layer(ENV, name, OUTPUT) for name in ("alb", "service"))
    made = deploy.Deployer(aws.clients.__getitem__, ENV, out=io.StringIO(), err=io.StringIO())
    made.run_layers = [alb, service]
    made.stacks[alb.stack] = None
    made.stacks[service.stack] = described("service", status)["Stacks"][0] if status else None
    guards.refuse_taken_names_ahead(made, alb)  # the stubs fail any call
    assert made.out.getvalue() == ""


def test_a_deploy_on_aws_of_a_load_balancer_on_public_subnets_of_one_zone_stops_before_its_change_set(aws, monkeypatch):
    """The guard above in a run (on AWS: no AWS_ENDPOINT_URL): refused before any change set, and
    with RECREATE=1 before the failed first create is deleted (it would say "nothing changed" after)."""
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    alb = deploy.load_layer(ENV, "alb", OUTPUT)
    public, vpc, group = alb.parameters["PublicSubnetIds"].split(","), alb.parameters["VpcId"], alb.parameters["BackendSecurityGroupId"]
    for argv, status in ((), None), (("--recreate",), "ROLLBACK_COMPLETE"):
        aws.upstream_deployed("alb")
        aws.deployed("alb", status=status) if status else aws.not_deployed("alb")
        found = [{"SubnetId": i, "VpcId": vpc, "AvailabilityZone": f"{REGION}a"} for i in public]
        ec2 = aws.stubber("ec2")
        ec2.add_response("describe_subnets", {"Subnets": found}, {"Filters": [{"Name": "subnet-id", "Values": sorted(public)}]})
        groups = [{"GroupId": group, "VpcId": vpc, "GroupName": "backend", "Description": "backend", "OwnerId": ACCOUNT}]
        ec2.add_response("describe_security_groups", {"SecurityGroups": groups}, {"Filters": [{"Name": "group-id", "Values": [group]}]})
        assert aws.run("deploy", "--stack", "alb", "--yes", *argv) == 1  # no DeleteStack queued: none made
        assert aws.err == (
            f"error: {PARAMS_FILE}: parameters.PublicSubnetIds: {', '.join(public)} share the Availability Zone {REGION}a; "
            "the load balancer takes one subnet per zone, in at least two; nothing changed\n"
        )


def stack_of_a_layer_prod_does_not_enable(layer):
    """DescribeStacks of an optional layer's stack, ours by its tags (prod generates no configuration for it)."""
    tags = [{"Key": k, "Value": v} for k, v in templates.own_tags(ENV, layer).items()]
    entry = described("alb")["Stacks"][0] | {"StackName": stack(layer), "StackId": stack_id(layer), "Parameters": [], "Tags": tags}
    return {"Stacks": [entry]}


def test_an_update_changing_what_other_layers_read_names_them_and_a_reader_not_enabled_apart(aws):
    readers = sorted(templates.downstream_of("alb"))  # consumers() reads them in this order
    for reader in readers:
        if reader in PROD_LAYERS:
            aws.deployed(reader)
        else:
            aws.cf.add_response("describe_stacks", stack_of_a_layer_prod_does_not_enable(reader), {"StackName": stack(reader)})
    out = io.StringIO()
    deployer = deploy.Deployer(aws.clients.__getitem__, ENV, out=out, err=io.StringIO(), enabled_layers=PROD_LAYERS)
    layer = deploy.load_layer(ENV, "alb", OUTPUT)
    found = {"Outputs": [{"OutputKey": "LoadBalancerArn", "OutputValue": "new"}, {"OutputKey": "TargetGroupArn", "OutputValue": "same"}]}
    advice.downstream_to_deploy(deployer, layer, {"LoadBalancerArn": "old", "TargetGroupArn": "same"}, found)
    wired = {reader for (reader, _), (upstream, output) in templates.WIRING.items() if upstream == "alb" and output == "LoadBalancerArn"}
    enabled, disabled = sorted(wired & set(PROD_LAYERS)), sorted(wired - set(PROD_LAYERS))
    assert enabled or disabled, "no layer reads LoadBalancerArn: this test checks nothing"
    lines = out.getvalue().splitlines()
    if enabled:
        (note,) = [line for line in lines if line.startswith("note: this update changed values that deployed layers read")]
        assert all(f"{reader} (reads LoadBalancerArn)" in note for reader in enabled) and "TargetGroupArn" not in note, note
    for reader in disabled:  # waf, which params/prod.yaml does not enable: no deploy would update it
        (note,) = [line for line in lines if line.startswith(f"note: {stack(reader)} reads LoadBalancerArn")]
        assert note.endswith(f"Enable it and make deploy ENV={ENV}, or remove it: make destroy STACK={reader} ENV={ENV}"), note


def test_an_update_changing_what_other_layers_read_says_nothing_of_the_readers_not_deployed(aws):
    aws.readers_not_deployed("alb")
    out = io.StringIO()
    deployer = deploy.Deployer(aws.clients.__getitem__, ENV, out=out, err=io.StringIO(), enabled_layers=PROD_LAYERS)
    layer = deploy.load_layer(ENV, "alb", OUTPUT)
    advice.downstream_to_deploy(
        deployer, layer, {"LoadBalancerArn": "old"}, {"Outputs": [{"OutputKey": "LoadBalancerArn", "OutputValue": "new"}]}
    )
    assert out.getvalue() == "", out.getvalue()


def test_an_update_that_removes_an_output_other_layers_read_names_them(aws):
    # A DeploymentStrategy of ROLLING removes the listener rules and their outputs: a reader keeps the old value as a changed one does.
    read = {output: reader for (reader, _), (upstream, output) in templates.WIRING.items() if upstream == "alb" and reader in PROD_LAYERS}
    assert read, "no enabled layer reads the alb layer's outputs: this test checks nothing"
    output, reader = sorted(read.items())[0]
    for each in sorted(templates.downstream_of("alb")):  # consumers() reads them in this order
        if each == reader:
            aws.deployed(each)
        else:
            aws.not_deployed(each)
    out = io.StringIO()
    deployer = deploy.Deployer(aws.clients.__getitem__, ENV, out=out, err=io.StringIO(), enabled_layers=PROD_LAYERS)
    advice.downstream_to_deploy(deployer, deploy.load_layer(ENV, "alb", OUTPUT), {output: "old"}, {"Outputs": []})
    assert out.getvalue().startswith(
        f"note: this update changed values that deployed layers read, which keep the old ones until deployed: {reader} (reads {output})"
    ), out.getvalue()


def test_a_deployed_reader_not_enabled_is_named_apart_not_among_the_layers_a_deploy_updates(aws):
    read = {output: reader for (reader, _), (upstream, output) in templates.WIRING.items() if upstream == "alb" and reader in PROD_LAYERS}
    assert read, "no enabled layer reads the alb layer's outputs: this test checks nothing"
    output, reader = sorted(read.items())[0]
    for each in sorted(templates.downstream_of("alb")):  # consumers() reads them in this order
        if each in PROD_LAYERS:
            aws.deployed(each)
        else:
            aws.not_deployed(each)
    out = io.StringIO()
    enabled = [layer for layer in PROD_LAYERS if layer != reader]  # taken out of enabled_layers, its stack still there
    deployer = deploy.Deployer(aws.clients.__getitem__, ENV, out=out, err=io.StringIO(), enabled_layers=enabled)
    advice.downstream_to_deploy(
        deployer, deploy.load_layer(ENV, "alb", OUTPUT), {output: "old"}, {"Outputs": [{"OutputKey": output, "OutputValue": "new"}]}
    )
    lines = out.getvalue().splitlines()
    assert not any(f"{reader} (reads" in line for line in lines), lines
    assert any(line.startswith(f"note: {stack(reader)} reads {output}, which this update changed") for line in lines), lines


def test_the_note_on_what_other_layers_read_is_only_a_note_when_they_cannot_be_read(aws):
    aws.cf.add_client_error("describe_stacks", "AccessDenied", "not authorized", 403)
    out = io.StringIO()
    deployer = deploy.Deployer(aws.clients.__getitem__, ENV, out=out, err=io.StringIO(), enabled_layers=PROD_LAYERS)
    layer = deploy.load_layer(ENV, "alb", OUTPUT)
    advice.downstream_to_deploy(
        deployer, layer, {"LoadBalancerArn": "old"}, {"Outputs": [{"OutputKey": "LoadBalancerArn", "OutputValue": "new"}]}
    )
    assert f"  note: whether the layers reading {stack('alb')}'s outputs (" in out.getvalue()
    assert "could not be read (AccessDenied)" in out.getvalue()
    # not known to be deployed: none is named as keeping the old values
    assert "note: this update changed values" not in out.getvalue() and len(out.getvalue().splitlines()) == 1, out.getvalue()


def test_a_reviewed_change_set_is_checked_with_its_own_name_prefix_not_the_params_files(aws, monkeypatch):
    """make execute of a change set made with another NamePrefix: the name it takes follows from the
    change set's values."""
    from scripts.deploy.deployer import Deployer

    prefix = f"{configuration(ENV, 'service')['Parameters']['NamePrefix']}-renamed"
    made = change_set("service", changes=[change("Add", "LogGroup", "AWS::Logs::LogGroup")], parameters={"NamePrefix": prefix})
    looked = []
    monkeypatch.setattr(guards.purge, "inspect", lambda deployer, item, others: looked.append(item.physical_id))
    deployer = Deployer(aws.clients.__getitem__, ENV, out=io.StringIO(), err=io.StringIO())
    layer = deploy.load_layer(ENV, "service", OUTPUT)
    group = {"logGroupName": f"/ecs/{prefix}-service", "arn": f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/ecs/{prefix}-service:*"}
    aws.logs.add_response("describe_log_groups", {"logGroups": [group]}, {"logGroupNamePrefix": f"/ecs/{prefix}-service"})
    with pytest.raises(deploy.Failure, match="which is taken"):
        guards.refuse_taken_log_group_names(deployer, layer, made, "nothing changed")
    assert looked == [f"/ecs/{prefix}-service"]


def test_a_log_group_that_may_be_replaced_under_the_name_it_has_takes_no_name_to_check(aws, monkeypatch):
    """refuse_taken_log_group_names: a "Conditional" replacement whose name stays (its own group holds it) makes no new name."""
    layer = deploy.load_layer(ENV, "service", OUTPUT)
    name = guards.custom_names(deploy.Deployer(aws.clients.__getitem__, ENV, out=io.StringIO(), err=io.StringIO()), layer)["LogGroup"]
    kept = change("Modify", "LogGroup", "AWS::Logs::LogGroup", replacement="Conditional")
    kept["ResourceChange"]["PhysicalResourceId"] = name
    looked = []
    monkeypatch.setattr(guards.purge, "inspect", lambda deployer, item, others: looked.append(item.physical_id))
    deployer = deploy.Deployer(aws.clients.__getitem__, ENV, out=io.StringIO(), err=io.StringIO())
    guards.refuse_taken_log_group_names(deployer, layer, change_set("service", changes=[kept]), "nothing changed")
    assert looked == []


def test_a_log_group_name_that_cannot_be_checked_is_left_to_the_update(aws):
    """The CI deploy role reads no log group: whether the name a replaced log group takes is free is
    said to be unknown, and the update goes on to its question."""
    name = service_log_group_renamed(aws)
    for _ in range(2):  # purge's look, then whether it is there at all
        aws.logs.add_client_error("describe_log_groups", "AccessDeniedException", "not authorized", 400, {"logGroupNamePrefix": name})
    aws.cf.add_response("delete_change_set", {}, {"StackName": stack("service"), "ChangeSetName": cs_name("service")})
    assert aws.run("deploy", "--stack", "service", "--allow-replace", tty=True, answer="n") == 1
    assert f"  note: could not check that log group {name} is free (AccessDeniedException)" in aws.out
    assert "not confirmed" in aws.err and "taken" not in aws.err


def test_a_log_group_name_taken_by_one_whose_tags_cannot_be_read_is_refused_all_the_same(aws):
    name = service_log_group_renamed(aws)
    group = {"logGroupName": name, "arn": f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{name}:*", "storedBytes": 10}
    aws.logs.add_response("describe_log_groups", {"logGroups": [group]}, {"logGroupNamePrefix": name})  # purge's look
    aws.logs.add_client_error("list_tags_for_resource", "AccessDeniedException", "not authorized", 400)
    aws.logs.add_response("describe_log_groups", {"logGroups": [group]}, {"logGroupNamePrefix": name})  # there, whoever's
    aws.cf.add_response("delete_change_set", {}, {"StackName": stack("service"), "ChangeSetName": cs_name("service")})
    assert aws.run("deploy", "--stack", "service", "--allow-replace", "--yes") == 1
    assert (
        f"LogGroup needs {name}, which is taken (whose, unknown: cannot read it (AccessDeniedException: not authorized))\n    free it: "
        in aws.err
    )


def alb_updated_with_allow_replace(aws, changes):
    """The alb layer's update with ALLOW_REPLACE=1 up to its end: its stack policy relaxed, the change set run."""
    aws.deployed("cert-dns")
    aws.deployed("alb")
    aws.change_set("alb", "UPDATE", changes)
    if changes is ALB_CHANGES:
        aws.readers_not_deployed("alb")  # the target group replaced: what reads its ARN, deployed?
    aws.policy_relaxed("alb")
    aws.execute("alb")
    aws.poll("alb", stack_id("alb"), described("alb", "UPDATE_COMPLETE"), event("alb", stack("alb"), "UPDATE_COMPLETE", 60))


def test_replacement_is_executed_with_allow_replace_under_a_relaxed_then_restored_policy(aws):
    alb_updated_with_allow_replace(aws, ALB_CHANGES)
    aws.policy_restored("alb")
    assert aws.run("deploy", "--stack", "alb", "--yes", "--allow-replace") == 0, aws.err
    assert "stack policy relaxed" in aws.out


@pytest.mark.parametrize(
    ("replacement", "now", "named"), [("True", "new-bucket", True), ("Conditional", "AccessLogBucket-physical", False)]
)
def test_a_replaced_resource_kept_by_its_update_replace_policy_is_named_with_the_command_that_frees_it(aws, replacement, now, named):
    # "Conditional" is decided as the update runs: the old one is named only once its physical id changed.
    bucket = [change("Modify", "AccessLogBucket", "AWS::S3::Bucket", replacement, [detail("BucketName", recreation="Always")])]
    alb_updated_with_allow_replace(aws, bucket)
    resource = {"LogicalResourceId": "AccessLogBucket", "PhysicalResourceId": now, "ResourceType": "AWS::S3::Bucket"}
    resource |= {"Timestamp": NOW, "ResourceStatus": "UPDATE_COMPLETE", "StackName": stack("alb")}
    aws.cf.add_response("describe_stack_resources", {"StackResources": [resource]}, {"StackName": stack("alb")})
    aws.policy_restored("alb")
    assert aws.run("deploy", "--stack", "alb", "--yes", "--allow-replace") == 0, aws.err
    line = "  AccessLogBucket (AWS::S3::Bucket) was replaced; the old one stays in the account, in no stack (UpdateReplacePolicy Retain): "
    line += f"AccessLogBucket-physical; once it is not needed: {CLI} s3api delete-bucket --bucket AccessLogBucket-physical"
    assert (line in aws.out.splitlines()) is named, aws.out


def test_a_resource_that_may_be_replaced_under_its_custom_name_is_warned_of_before_the_question(aws):
    # A Conditional replacement is no refusal (CloudFormation decides as the update runs, and may keep it), but should it
    # replace the target group under the Name it keeps, the update fails and rolls back: said before the question.
    conditional = change(
        "Modify", "TargetGroup", "AWS::ElasticLoadBalancingV2::TargetGroup", "Conditional", [detail("Port", recreation="Conditional")]
    )
    aws.deployed("cert-dns")
    aws.deployed("alb")
    aws.change_set("alb", "UPDATE", [conditional])
    aws.readers_not_deployed("alb")
    aws.policy_relaxed("alb")
    aws.execute("alb")
    aws.poll("alb", stack_id("alb"), described("alb", "UPDATE_COMPLETE"), event("alb", stack("alb"), "UPDATE_COMPLETE", 60))
    aws.policy_restored("alb")
    assert aws.run("deploy", "--stack", "alb", "--yes", "--allow-replace") == 0, aws.err
    warning = (
        "warning: TargetGroup (AWS::ElasticLoadBalancingV2::TargetGroup, its Name unchanged) may be replaced (Replacement Conditional, "
        "decided as the update runs); should it be, CloudFormation cannot replace it under the same name, and the update fails and rolls back"
    )
    lines = aws.out.splitlines()
    assert lines.count(warning) == 1, aws.out
    assert lines.index(warning) < next(i for i, line in enumerate(lines) if "UPDATE_COMPLETE" in line), aws.out  # before it runs


def test_a_kept_resource_updated_in_place_is_not_looked_up_nor_said_replaced(aws):
    # Only a change set's replacements may have left an old one in the account: one modified in place is not read after the update.
    bucket = [change("Modify", "AccessLogBucket", "AWS::S3::Bucket", "False", [detail("Tags")])]
    aws.deployed("cert-dns")
    aws.deployed("alb")
    aws.change_set("alb", "UPDATE", bucket)
    aws.execute("alb")
    aws.poll("alb", stack_id("alb"), described("alb", "UPDATE_COMPLETE"), event("alb", stack("alb"), "UPDATE_COMPLETE", 60))
    aws.cf.add_response(
        "set_stack_policy", {}, {"StackName": stack("alb"), "StackPolicyBody": json.dumps(configuration(ENV, "alb")["StackPolicy"])}
    )
    # no DescribeStackResources queued: the fixture fails a call made
    assert aws.run("deploy", "--stack", "alb", "--yes") == 0, aws.err
    assert "was replaced" not in aws.out and "resources could not be read" not in aws.out, aws.out


RULE_CHANGES = [change("Modify", "ProductionListenerRule", "AWS::ElasticLoadBalancingV2::ListenerRule", details=[detail("Priority")])]


def rule_weights(primary, alternate):
    """DescribeRules of the production listener rule with these weights."""
    groups = [
        {"TargetGroupArn": OUTPUT_VALUES["TargetGroupArn"], "Weight": primary},
        {"TargetGroupArn": OUTPUT_VALUES["AlternateTargetGroupArn"], "Weight": alternate},
    ]
    rule = {
        "RuleArn": "ProductionListenerRule-physical",
        "Priority": "1",
        "Conditions": [{"Field": "path-pattern", "Values": ["/*"]}],
        "Actions": [{"Type": "forward", "ForwardConfig": {"TargetGroups": groups}}],
        "IsDefault": False,
    }
    return {"Rules": [rule]}


def test_a_change_to_listener_rules_that_ecs_moved_to_the_alternate_target_group_is_refused(aws):
    """After a blue/green release the production rule sends traffic to the alternate target group;
    CloudFormation would write it back as the template says, all on the primary one, which runs no task."""
    aws.deployed("cert-dns")
    aws.deployed("alb")
    aws.change_set("alb", "UPDATE", RULE_CHANGES)
    aws.elbv2.add_response("describe_rules", rule_weights(0, 100), {"RuleArns": ["ProductionListenerRule-physical"]})
    aws.cf.add_response("delete_change_set", {}, {"StackName": stack("alb"), "ChangeSetName": cs_name("alb")})
    assert aws.run("deploy", "--stack", "alb", "--yes") == 1
    assert "ProductionListenerRule (Modify; now startupwebapp-tg-alt weight 100)" in aws.err
    assert "nothing changed" in aws.err and "make deploy STACK=service ENV=prod TAG=<new tag>" in aws.err
    assert f"{stack('alb')}: change set {cs_name('alb')} deleted" in aws.out


def test_allow_traffic_reset_executes_a_rule_change_while_traffic_is_on_the_alternate_group(aws):
    aws.deployed("cert-dns")
    aws.deployed("alb")
    aws.change_set("alb", "UPDATE", RULE_CHANGES)  # no describe_rules: the weights are not read
    aws.execute("alb")
    aws.poll("alb", stack_id("alb"), described("alb", "UPDATE_COMPLETE"), event("alb", stack("alb"), "UPDATE_COMPLETE", 60))
    aws.cf.add_response(
        "set_stack_policy", {}, {"StackName": stack("alb"), "StackPolicyBody": json.dumps(configuration(ENV, "alb")["StackPolicy"])}
    )
    assert aws.run("deploy", "--stack", "alb", "--yes", "--allow-traffic-reset") == 0, aws.err
    assert f"{stack('alb')}: UPDATE_COMPLETE" in aws.out


def test_removing_the_rules_while_traffic_is_on_the_alternate_group_says_to_switch_back_first(aws):
    # DeploymentStrategy set to ROLLING: the alb change set removes the rules; the listener's default
    # would send everything to the primary target group.
    aws.deployed("cert-dns")
    aws.deployed("alb")
    removed = [change("Remove", "ProductionListenerRule", "AWS::ElasticLoadBalancingV2::ListenerRule")]
    aws.change_set("alb", "UPDATE", removed)
    aws.elbv2.add_response("describe_rules", rule_weights(0, 100), {"RuleArns": ["ProductionListenerRule-physical"]})
    aws.deployed("service", parameters=service_parameters("v1") | {"DeploymentStrategy": "BLUE_GREEN"})  # still shifting
    aws.cf.add_response("delete_change_set", {}, {"StackName": stack("alb"), "ChangeSetName": cs_name("alb")})
    # ALLOW_REPLACE is for stateful replacements: it does not move production traffic.
    assert aws.run("deploy", "--stack", "alb", "--yes", "--allow-replace") == 1
    assert "ProductionListenerRule (Remove; now startupwebapp-tg-alt weight 100)" in aws.err
    assert f"Put DeploymentStrategy back in {PARAMS_FILE}, release once more with it" in aws.err
    assert "ALLOW_TRAFFIC_RESET=1" in aws.err


@pytest.mark.parametrize("service_status", ["UPDATE_COMPLETE", "ROLLBACK_COMPLETE"])
def test_removing_the_rules_once_the_service_runs_rolling_is_what_puts_traffic_back_on_its_tasks(aws, service_status):
    # The service already switched to ROLLING: its tasks are in the primary target group, and the rules'
    # weights send traffic where none runs. Told to put the strategy back, the operator would undo the switch.
    # A failed first create of it runs no task at all: refused as before.
    aws.deployed("alb")
    aws.deployed("service", status=service_status, parameters=service_parameters("v1") | {"DeploymentStrategy": "ROLLING"})
    aws.elbv2.add_response("describe_rules", rule_weights(0, 100), {"RuleArns": ["ProductionListenerRule-physical"]})
    out = io.StringIO()
    deployer = deploy.Deployer(aws.clients.__getitem__, ENV, out=out, err=io.StringIO())
    layer = deploy.load_layer(ENV, "alb", OUTPUT)
    removed = change_set("alb", changes=[change("Remove", "ProductionListenerRule", "AWS::ElasticLoadBalancingV2::ListenerRule")])
    if service_status == "ROLLBACK_COMPLETE":
        with pytest.raises(deploy.Failure, match="Put DeploymentStrategy back"):
            guards.refuse_moving_shifted_traffic(deployer, layer, removed, "change set left for review")
        return
    guards.refuse_moving_shifted_traffic(deployer, layer, removed, "change set left for review")  # not refused
    assert out.getvalue() == (
        "  note: the listener rules it removes send traffic to the alternate target group (ProductionListenerRule (Remove; now "
        "startupwebapp-tg-alt weight 100)), and the service already runs ROLLING, its tasks in the primary target group: "
        "removing them sends the traffic there\n"
    )


def test_a_switch_to_rolling_while_the_alb_layer_has_no_production_rule_reads_no_rule(aws):
    # A switch to ROLLING moves traffic only through the production listener rule the alb layer outputs: none, nothing to read.
    service = deploy.load_layer(ENV, "service", OUTPUT)
    made = deploy.Deployer(aws.clients.__getitem__, ENV, out=io.StringIO(), err=io.StringIO())
    rolling = service_parameters(service.parameters["ImageTag"]) | {"DeploymentStrategy": "ROLLING"}
    made.stacks[service.stack] = described("service", parameters=rolling | {"DeploymentStrategy": TRAFFIC_SHIFTING[0]})["Stacks"][0]
    made.stacks[stack("alb")] = described("alb", with_outputs=False)["Stacks"][0]
    assert "ProductionListenerRuleArn" not in made.outputs(stack("alb"))
    guards.refuse_moving_shifted_traffic(made, service, change_set("service", parameters=rolling), "nothing changed")  # no DescribeRules
    assert made.out.getvalue() == ""


def test_an_alb_change_set_that_rewrites_a_rule_too_is_refused_though_the_service_runs_rolling(aws):
    # Only removing every rule it changes puts the traffic back on a ROLLING service's tasks: one it rewrites is written as the template says.
    rules = ["ProductionListenerRule-physical", "TestListenerRule-physical"]
    aws.elbv2.add_response("describe_rules", rule_weights(0, 100), {"RuleArns": rules})
    deployer = deploy.Deployer(aws.clients.__getitem__, ENV, out=io.StringIO(), err=io.StringIO())
    deployer.stacks[stack("alb")] = described("alb")["Stacks"][0]
    rolling = service_parameters("v1") | {"DeploymentStrategy": "ROLLING"}
    deployer.stacks[stack("service")] = described("service", parameters=rolling)["Stacks"][0]  # read only where every rule goes
    layer = deploy.load_layer(ENV, "alb", OUTPUT)
    both = change_set(
        "alb",
        changes=[
            change("Remove", "ProductionListenerRule", "AWS::ElasticLoadBalancingV2::ListenerRule"),
            change("Modify", "TestListenerRule", "AWS::ElasticLoadBalancingV2::ListenerRule"),
        ],
    )
    with pytest.raises(deploy.Failure, match="rewrites or removes listener rules"):
        guards.refuse_moving_shifted_traffic(deployer, layer, both, "change set left for review")
    assert deployer.out.getvalue() == ""


def test_switching_the_service_to_rolling_while_traffic_is_on_the_alternate_group_is_refused(aws):
    """Its new tasks would register in the primary target group and the old ones, which take the
    traffic, would stop. (A reviewed change set: `make execute` leaves it for another try.)"""
    running = service_parameters("v1") | {"DeploymentStrategy": "BLUE_GREEN"}  # whatever params/prod.yaml says
    aws.deployed("service", parameters=running)
    aws.deployed("alb")
    rule = OUTPUT_VALUES["ProductionListenerRuleArn"]
    answer = rule_weights(0, 100)
    answer["Rules"][0]["RuleArn"] = rule
    aws.elbv2.add_response("describe_rules", answer, {"RuleArns": [rule]})
    deployer = deploy.Deployer(aws.clients.__getitem__, ENV, out=io.StringIO(), err=io.StringIO())
    layer = deploy.load_layer(ENV, "service", OUTPUT)
    switched = change_set("service", parameters=running | {"DeploymentStrategy": "ROLLING"})
    with pytest.raises(deploy.Failure) as refused:
        guards.refuse_moving_shifted_traffic(deployer, layer, switched, "change set left for review")
    assert "the change set switches the service to ROLLING while production traffic is on the alternate target group" in str(refused.value)
    assert "ProductionListenerRule (kept; now startupwebapp-tg-alt weight 100)" in str(refused.value)
    assert f"Put DeploymentStrategy back in params/{ENV}.yaml" in str(refused.value)
    # Staying BLUE_GREEN reads nothing more and goes ahead.
    guards.refuse_moving_shifted_traffic(deployer, layer, change_set("service", parameters=running), "left")


@pytest.mark.parametrize("service_status", ["UPDATE_COMPLETE", "REVIEW_IN_PROGRESS", "ROLLBACK_COMPLETE"])
def test_removing_the_rules_the_deployed_service_uses_is_refused_until_it_is_rolling(aws, service_status):
    # Back to ROLLING, the service layer goes first (README "Switching an environment"); an abandoned
    # or rolled-back create of the service stack uses nothing.
    running = service_parameters("v1") | {"DeploymentStrategy": "BLUE_GREEN"}
    aws.deployed("service", status=service_status, parameters=running)
    deployer = deploy.Deployer(aws.clients.__getitem__, ENV, out=io.StringIO(), err=io.StringIO())
    layer = deploy.load_layer(ENV, "alb", OUTPUT)
    removed = change_set("alb", changes=[change("Remove", "ProductionListenerRule", "AWS::ElasticLoadBalancingV2::ListenerRule")])
    if service_status != "UPDATE_COMPLETE":  # a create abandoned or rolled back: no service uses the rules
        guards.refuse_removing_rules_in_use(deployer, layer, removed, "nothing changed")
        return
    with pytest.raises(deploy.Failure) as refused:
        guards.refuse_removing_rules_in_use(deployer, layer, removed, "nothing changed")
    assert str(refused.value) == (
        f"error: refused: the change set removes the listener rules ProductionListenerRule, which {stack('service')} still uses "
        f"(it is deployed with DeploymentStrategy BLUE_GREEN); nothing changed. Deploy the service layer first "
        f"(make deploy STACK=service ENV={ENV}), so that ECS stops using them, then make deploy ENV={ENV}"
    )


def test_a_reviewed_change_set_that_would_move_traffic_is_left_for_another_try(aws):
    # make execute of a change set make changeset left: refused the same way, and not deleted.
    aws.reviewed_change_set("alb", made=change_set("alb", changes=RULE_CHANGES))
    aws.elbv2.add_response("describe_rules", rule_weights(0, 100), {"RuleArns": ["ProductionListenerRule-physical"]})
    assert aws.run("execute", "--stack", "alb", "--changeset", cs_name("alb"), "--yes") == 1
    assert "ProductionListenerRule (Modify; now startupwebapp-tg-alt weight 100)" in aws.err
    assert "change set left for review" in aws.err


def test_a_rule_that_cannot_be_read_leaves_no_change_set_behind(aws):
    aws.deployed("cert-dns")
    aws.deployed("alb")
    aws.change_set("alb", "UPDATE", RULE_CHANGES)
    aws.elbv2.add_client_error("describe_rules", "RuleNotFound", "One or more rules not found", 400)
    aws.cf.add_response("delete_change_set", {}, {"StackName": stack("alb"), "ChangeSetName": cs_name("alb")})
    assert aws.run("deploy", "--stack", "alb", "--yes") == 1
    assert "RuleNotFound" in aws.err and "Traceback" not in aws.err


def test_ctrl_c_at_the_question_deletes_the_change_set_this_run_made(aws):
    aws.deployed("cert-dns")
    aws.change_set("cert-dns", "UPDATE", CERT_CHANGES)
    aws.cf.add_response("delete_change_set", {}, {"StackName": stack("cert-dns"), "ChangeSetName": cs_name("cert-dns")})
    assert aws.run("deploy", "--stack", "cert-dns", tty=True, answer=KeyboardInterrupt()) == 130
    assert "interrupted" in aws.err and "Traceback" not in aws.err
    # the terminal's ^C ends the question's line: what follows starts a line of its own
    assert f"\n\n{stack('cert-dns')}: change set {cs_name('cert-dns')} deleted" in aws.out, aws.out


def test_a_change_set_that_cannot_be_deleted_after_ctrl_c_is_named_with_the_command_that_deletes_it(aws):
    aws.deployed("cert-dns")
    aws.change_set("cert-dns", "UPDATE", CERT_CHANGES)
    aws.cf.add_client_error("delete_change_set", "ValidationError", "Rate exceeded", 400)
    assert aws.run("deploy", "--stack", "cert-dns", tty=True, answer=KeyboardInterrupt()) == 130
    delete = f"{CLI} cloudformation delete-change-set --stack-name {stack('cert-dns')} --change-set-name {cs_name('cert-dns')}"
    assert f"change set {cs_name('cert-dns')} may be left; delete it: {delete}" in aws.out
    assert "interrupted" in aws.err and "Traceback" not in aws.err


def test_a_change_to_listener_rules_on_the_primary_target_group_goes_ahead(aws):
    aws.deployed("cert-dns")
    aws.deployed("alb")
    aws.change_set("alb", "UPDATE", RULE_CHANGES)
    aws.elbv2.add_response("describe_rules", rule_weights(100, 0), {"RuleArns": ["ProductionListenerRule-physical"]})
    aws.execute("alb")
    aws.poll("alb", stack_id("alb"), described("alb", "UPDATE_COMPLETE"), event("alb", stack("alb"), "UPDATE_COMPLETE", 60))
    aws.cf.add_response(
        "set_stack_policy", {}, {"StackName": stack("alb"), "StackPolicyBody": json.dumps(configuration(ENV, "alb")["StackPolicy"])}
    )
    assert aws.run("deploy", "--stack", "alb", "--yes") == 0, aws.err
    assert f"{stack('alb')}: UPDATE_COMPLETE" in aws.out


def test_shifted_weights_name_every_target_group_but_the_primary_that_takes_traffic():
    shifted = deploy.text.shifted_weights
    primary = OUTPUT_VALUES["TargetGroupArn"]
    assert shifted(rule_weights(100, 0)["Rules"][0], primary) == []
    assert shifted(rule_weights(90, 10)["Rules"][0], primary) == ["startupwebapp-tg-alt weight 10"]
    plain = {"Actions": [{"Type": "forward", "TargetGroupArn": OUTPUT_VALUES["AlternateTargetGroupArn"]}]}
    assert shifted(plain, primary) == ["startupwebapp-tg-alt weight 1"]


def test_sessions_share_one_model_loader_that_has_the_model_additions():
    """scripts/botocore_models.py: every session of a process reads each service model once, and the ECS
    model has the calls the pinned botocore lacks (scripts/models/)."""
    from scripts.botocore_models import botocore_session

    sessions = [make_session(region_name="us-east-1") for _ in range(3)]
    loader = botocore_session().get_component("data_loader")
    assert all(session._session.get_component("data_loader") is loader for session in sessions)
    assert len(loader.search_paths) == len(set(loader.search_paths)), loader.search_paths  # not one more per session
    ecs = sessions[-1].client("ecs", aws_access_key_id="x", aws_secret_access_key="x")
    assert "ContinueServiceDeployment" in ecs.meta.service_model.operation_names


def test_sessions_read_the_models_aws_data_path_names_too(tmp_path, monkeypatch):
    """botocore's AWS_DATA_PATH (a session's data_path) is searched as botocore searches it, with scripts/models/ still added."""
    from scripts.botocore_models import botocore_session

    (tmp_path / "mine" / "2020-01-01").mkdir(parents=True)
    (tmp_path / "mine" / "2020-01-01" / "service-2.json").write_text("{}")
    monkeypatch.setenv("AWS_DATA_PATH", str(tmp_path))
    core = botocore_session()
    assert "mine" in core.get_available_services()
    assert "ContinueServiceDeployment" in core.get_service_model("ecs").operation_names


def test_sessions_start_with_botocores_built_in_handlers_and_keep_their_own_apart(monkeypatch):
    """scripts/botocore_models.py copies botocore's built-in handlers into each session instead of
    registering them again: each event finds the handlers a session botocore made itself finds
    (HierarchicalEmitter's trie is what emit() searches), and what one session registers (boto3
    registers its own on each) stays out of the next."""
    import botocore.handlers
    import botocore.session

    from scripts.botocore_models import botocore_session

    def handlers(session, event):
        return list(session.get_component("event_emitter")._emitter._handlers.prefix_search(event))

    first, fresh = botocore_session(), botocore.session.Session()
    events = {spec[0] for spec in botocore.handlers.BUILTIN_HANDLERS}
    events |= {event.replace("*", "cloudformation") for event in events} | {"before-call.cloudformation.DescribeStacks"}
    assert len(events) > 100
    assert all(handlers(first, event) == handlers(fresh, event) for event in events)

    def mine(**_):
        pass

    first.register("before-call.cloudformation.DescribeStacks", mine)
    assert mine in handlers(first, "before-call.cloudformation.DescribeStacks")
    assert mine not in handlers(botocore_session(), "before-call.cloudformation.DescribeStacks")
    # one added to botocore's list later (moto adds its own when imported) is in the sessions made after,
    # and so is one put in another's place (a list of the same length)
    builtin = botocore.handlers.BUILTIN_HANDLERS
    monkeypatch.setattr(botocore.handlers, "BUILTIN_HANDLERS", [*builtin, ("before-send", mine)])
    assert mine in handlers(botocore_session(), "before-send.cloudformation.DescribeStacks")

    def theirs(**_):
        pass

    monkeypatch.setattr(botocore.handlers, "BUILTIN_HANDLERS", [*builtin, ("before-send", theirs)])
    assert theirs in handlers(botocore_session(), "before-send.cloudformation.DescribeStacks")


def test_throttling_is_retried_by_botocore(aws, monkeypatch):
    """Stubber answers in `before-call`, before botocore's retry loop, so a stubbed Throttling error is
    never retried. This test answers one level lower, in `before-send`, where the retry handler runs."""
    assert aws.clients["cloudformation"].meta.config.retries == {"mode": "standard", "total_max_attempts": deploy.MAX_ATTEMPTS}
    client = SESSION.client("cloudformation", config=deploy.CONFIG)
    ns = 'xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/"'
    throttled = f"<ErrorResponse {ns}><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>1</RequestId></ErrorResponse>"
    member = f"<member><StackName>{stack('cert-dns')}</StackName><StackId>{stack_id('cert-dns')}</StackId><CreationTime>2025-11-20T10:00:00.000Z</CreationTime><StackStatus>CREATE_COMPLETE</StackStatus></member>"
    ok = f"<DescribeStacksResponse {ns}><DescribeStacksResult><Stacks>{member}</Stacks></DescribeStacksResult><ResponseMetadata><RequestId>2</RequestId></ResponseMetadata></DescribeStacksResponse>"
    answers, sent, backoff = [(400, throttled), (400, throttled), (200, ok)], [], []

    class Body:
        def __init__(self, data):
            self.data = data.encode()

        def stream(self, **_):
            yield self.data

    def send(request, **_):
        sent.append(request.url)
        status, body = answers.pop(0)
        return AWSResponse(request.url, status, {}, Body(body))

    client.meta.events.register("before-send", send)
    monkeypatch.setattr(time, "sleep", backoff.append)  # botocore's backoff between attempts
    aws.clients["cloudformation"] = client  # answered by send, not by a Stubber
    status_reads(aws)
    assert aws.run("status", "--stack", "cert-dns") == 0, aws.err
    assert f"{stack('cert-dns')}" in aws.out and "CREATE_COMPLETE" in aws.out
    assert len(sent) == 3 and len(backoff) == 2 and all(url.startswith("http://127.0.0.1:9") for url in sent)
    assert aws.calls("cert-dns") == 1  # one call as the deployer sees it; botocore made the attempts
    max_retries = deploy.MAX_ATTEMPTS - 1
    assert [line for line in aws.err.splitlines() if line.startswith("AWS not answering")] == [
        f"AWS not answering DescribeStacks (Throttling): retry 1 of {max_retries}",
        f"AWS not answering DescribeStacks (Throttling): retry 2 of {max_retries}",
    ]


def test_every_client_has_the_timeouts_and_attempts_the_readme_promises(monkeypatch):
    """README (What a deploy guarantees; Faults): "5 attempts", "a 5 s connect and a 20 s read timeout", the retry line
    "retry 2 of 4": a refused endpoint fails within 20 s, one that stops answering within about 2 minutes. The other tests
    read deploy.MAX_ATTEMPTS and deploy.CONFIG back, which any value passes."""
    no_real_aws(monkeypatch)
    promised = re.search(
        r"standard retry mode \((\d+) attempts,\s+each retry printed\); every call has a (\d+) s connect and a (\d+) s read timeout",
        (ROOT / "README.md").read_text(),
    )
    attempts, connect, read = map(int, promised.groups())
    config = deploy.aws.boto_clients("us-east-1", io.StringIO(), deploy.aws.CONFIG)("cloudformation").meta.config
    assert (config.connect_timeout, config.read_timeout) == (connect, read)
    assert config.retries == {"mode": "standard", "total_max_attempts": attempts}
    from botocore.exceptions import ReadTimeoutError

    slow = ReadTimeoutError(endpoint_url="http://127.0.0.1:9")
    assert f"did not answer in time, {attempts} tries: " in explain(slow, ENV)


def test_a_retry_after_an_answer_without_an_error_code_names_its_http_status():
    # A load balancer's or proxy's 503 with an empty body: botocore parses no Error Code, and the retry line named nothing.
    err = io.StringIO()
    calls = deploy.aws.AwsCalls(err)
    calls.count({"StackName": stack("alb")})
    answer = types.SimpleNamespace(status_code=503)
    calls.remember_problem(response=(answer, {"ResponseMetadata": {"HTTPStatusCode": 503}}), attempts=1)
    calls.say_retry(types.SimpleNamespace(context={"retries": {"attempt": 2}}), "DescribeStacks")
    assert err.getvalue() == f"AWS not answering DescribeStacks (HTTP 503): retry 1 of {deploy.MAX_ATTEMPTS - 1}\n"


def test_a_retry_line_says_the_problem_of_the_attempt_before_on_one_line_as_it_reads():
    # An error whose text spans lines (a parser's, quoting the body it could not read) is said with its line breaks as spaces.
    err = io.StringIO()
    calls = deploy.aws.AwsCalls(err)
    calls.count({})
    calls.remember_problem(caught_exception=ResponseParserError("Unable to parse response (syntax error),\n invalid XML received"))
    calls.say_retry(types.SimpleNamespace(context={"retries": {"attempt": 3}}), "DescribeStacks")
    assert err.getvalue() == (
        "AWS not answering DescribeStacks (Unable to parse response (syntax error), invalid XML received): "
        f"retry 2 of {deploy.MAX_ATTEMPTS - 1}\n"
    )


def test_stack_in_progress_is_waited_for_with_short_growing_polls(aws):
    layer = "cert-dns"
    aws.deployed(layer, status="UPDATE_IN_PROGRESS")
    console = "Console-UpdateStack-7e3c"
    for status in ("UPDATE_IN_PROGRESS", "UPDATE_IN_PROGRESS", "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS"):
        aws.poll(
            layer,
            stack_id(layer),
            described(layer, status),
            event(layer, stack(layer), "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS", 3, token=console),
        )
    aws.poll(layer, stack_id(layer), described(layer, "UPDATE_COMPLETE"), event(layer, stack(layer), "UPDATE_COMPLETE", 6, token=console))
    aws.empty_change_set(layer)
    assert aws.run("deploy", "--stack", layer) == 0, aws.err
    assert f"{stack(layer)} is UPDATE_IN_PROGRESS: waiting for it to settle" in aws.out
    assert aws.out.index("UPDATE_COMPLETE ") < aws.out.index("no changes")
    assert aws.sleeps == [1.0, 1.5, 2.0]  # never more than 2 s between polls


def test_review_in_progress_counts_as_not_deployed_and_changeset_leaves_it(aws):
    aws.deployed("cert-dns", status="REVIEW_IN_PROGRESS", protected=False)
    aws.change_set("cert-dns", "CREATE", CERT_CHANGES, left=True)
    assert aws.run("changeset", "--stack", "cert-dns") == 0, aws.err
    assert f"make execute STACK=cert-dns ENV={ENV} CHANGESET={cs_name('cert-dns')}" in aws.out


def test_a_change_set_listed_without_an_id_on_an_untagged_stack_under_review_is_not_taken_for_ours(aws):
    # ChangeSetSummary's ChangeSetId is optional in the API's model: a KeyError, where whose it is cannot be told
    aws.deployed("cert-dns", status="REVIEW_IN_PROGRESS", protected=False, tags={})
    aws.cf.add_response("list_change_sets", {"Summaries": [{"StackName": stack("cert-dns")}]}, {"StackName": stack_id("cert-dns")})
    assert aws.run("changeset", "--stack", "cert-dns") == 1
    assert "with change sets this tool did not make" in aws.err and "): (unnamed); nothing changed." in aws.err, aws.err


def test_an_untagged_stack_under_review_deleted_since_it_was_read_is_not_said_to_be_unreadable(aws):
    # ListChangeSets of a stack deleted between the run's read and it answers "does not exist": no change sets of anyone's
    # (it said "could not be read (ValidationError)" and pointed at the credentials)
    aws.deployed("cert-dns", status="REVIEW_IN_PROGRESS", protected=False, tags={})
    gone = f"Stack [{stack_id('cert-dns')}] does not exist"
    aws.cf.add_client_error("list_change_sets", "ValidationError", gone, 400, expected_params={"StackName": stack_id("cert-dns")})
    aws.change_set("cert-dns", "CREATE", CERT_CHANGES, left=True)
    assert aws.run("changeset", "--stack", "cert-dns") == 0, aws.err
    assert "could not be read" not in aws.err and f"CHANGESET={cs_name('cert-dns')}" in aws.out, aws.out + aws.err


def test_a_change_set_deleted_between_its_listing_and_its_read_is_no_ones_on_an_untagged_stack_under_review(aws):
    # README: "One deleted since it was listed is no one's": its DescribeChangeSet answers ChangeSetNotFound, which is
    # neither a change set of someone else's nor one that could not be read (the stack was refused as unreadable).
    ours = change_set("cert-dns")
    aws.deployed("cert-dns", status="REVIEW_IN_PROGRESS", protected=False, tags={})
    summary = {key: ours[key] for key in ("ChangeSetName", "ChangeSetId", "StackId", "StackName", "ExecutionStatus", "Status")}
    withdrawn = summary | {"ChangeSetName": "their-review", "ChangeSetId": ours["ChangeSetId"].replace(cs_name("cert-dns"), "their-review")}
    listed = [withdrawn | {"CreationTime": NOW}, summary | {"CreationTime": NOW}]
    aws.cf.add_response("list_change_sets", {"Summaries": listed}, {"StackName": stack_id("cert-dns")})
    aws.cf.add_client_error(
        "describe_change_set",
        "ChangeSetNotFound",
        "ChangeSet [their-review] does not exist",
        404,
        expected_params={"ChangeSetName": withdrawn["ChangeSetId"]},
    )
    aws.cf.add_response("describe_change_set", ours, {"ChangeSetName": ours["ChangeSetId"]})
    aws.change_set("cert-dns", "CREATE", CERT_CHANGES, left=True)
    assert aws.run("changeset", "--stack", "cert-dns") == 0, aws.err
    assert "could not be read" not in aws.err and f"CHANGESET={cs_name('cert-dns')}" in aws.out, aws.out + aws.err


def test_an_untagged_stack_under_review_is_ours_when_its_change_sets_carry_our_tags_and_refused_when_they_cannot_be_read(aws):
    # The empty stack a CREATE change set makes may show no tags on AWS: whose it is, its change sets' tags say
    # (DescribeChangeSet gives them back); one whose change sets cannot be listed is not taken for ours.
    ours = change_set("cert-dns")
    assert stubbed_aws.configuration(ENV, "cert-dns")["Tags"].items() <= {t["Key"]: t["Value"] for t in ours["Tags"]}.items()
    aws.deployed("cert-dns", status="REVIEW_IN_PROGRESS", protected=False, tags={})
    summary = {key: ours[key] for key in ("ChangeSetName", "ChangeSetId", "StackId", "StackName", "ExecutionStatus", "Status")}
    aws.cf.add_response("list_change_sets", {"Summaries": [summary | {"CreationTime": NOW}]}, {"StackName": stack_id("cert-dns")})
    aws.cf.add_response("describe_change_set", ours, {"ChangeSetName": ours["ChangeSetId"]})
    aws.change_set("cert-dns", "CREATE", CERT_CHANGES, left=True)
    assert aws.run("changeset", "--stack", "cert-dns") == 0, aws.err
    assert f"make execute STACK=cert-dns ENV={ENV} CHANGESET={cs_name('cert-dns')}" in aws.out

    aws.deployed("cert-dns", status="REVIEW_IN_PROGRESS", protected=False, tags={})
    aws.cf.add_client_error("list_change_sets", "AccessDenied", "not allowed", 403)
    assert aws.run("deploy", "--stack", "cert-dns", "--yes") == 1
    assert aws.err.startswith(f"error: {stack('cert-dns')} exists, empty and under review, without tags: whose it is, its change ")
    assert "could not be read (AccessDenied); nothing changed. Run this again" in aws.err, aws.err


@pytest.mark.parametrize("status", ["ROLLBACK_COMPLETE", "DELETE_FAILED"])
def test_a_stack_reason_reaches_the_terminal_with_its_control_characters_escaped(aws, status):
    # CloudFormation's reasons quote what resource handlers and people wrote: an escape sequence in
    # one must not clear the terminal or retitle it, nor a newline print a forged line.
    aws.deployed("cert-dns", status=status, reason="failed \x1b]0;owned\x07 \x1b[2J here\nforged: ok")
    if status == "DELETE_FAILED":  # its way on names the image the service runs
        aws.not_deployed("service")
    assert aws.run("deploy", "--stack", "cert-dns", "--yes") == 1
    assert "\x1b" not in aws.err and "\x07" not in aws.err and "owned" in aws.err and "here" in aws.err
    assert "\nforged" not in aws.err and "here\\nforged: ok" in aws.err, aws.err


def test_an_aws_error_message_reaches_the_terminal_escaped_on_one_line(aws):
    # AWS's messages quote what they were given and what others named: an escape or a newline in one
    # retitled the terminal or printed a forged error line.
    aws.cf.add_client_error("describe_stacks", "AccessDenied", "denied \x1b]0;owned\x07\nerror: forged line", 403)
    assert aws.run("status", "--stack", "cert-dns") != 0
    assert "\x1b" not in aws.err and "\x07" not in aws.err and "\nerror: forged" not in aws.err, aws.err
    assert "AccessDenied: denied \\x1b]0;owned\\x07\\nerror: forged line; " in aws.err, aws.err


@pytest.mark.parametrize(
    "status, way_out",
    [
        (
            "ROLLBACK_COMPLETE",
            f"fix the cause, then make deploy STACK=cert-dns ENV={ENV} RECREATE=1, which deletes it and creates it again",
        ),
        ("UPDATE_ROLLBACK_FAILED", f"fix the resource named in the failed events, then: make recover STACK=cert-dns ENV={ENV}"),
        (  # it goes with the layers that read it (destroy refuses it while one is deployed), which are deployed again
            "DELETE_FAILED",
            f"its deletion stopped half way (make events STACK=cert-dns ENV={ENV} names the resources that failed); "
            f"free them, then destroy it and the layers that read its outputs: make destroy ENV={ENV} STACK=<layer> for {', '.join(templates.destroy_order('cert-dns'))}, in that "
            f"order (one not deployed says so), then {purge_step(templates.destroy_order('cert-dns'))}make deploy ENV={ENV}"
            # the image the service runs, which a deploy without TAG= would replace with params' ImageTag
            f" TAG={deploy_text.parameter_values(described('service')['Stacks'][0])['ImageTag']}",
        ),
        ("UPDATE_IN_PROGRESS", f"wait for it to settle (make status ENV={ENV})"),
    ],
)
@pytest.mark.parametrize("reason", [None, "Resource handler returned message: x"])
def test_an_upstream_stack_in_a_state_it_cannot_be_read_from_stops_before_anything_naming_what_frees_it(aws, status, way_out, reason):
    # Its outputs may be missing or stale (a rolled-back create has none): nothing is read from it. What
    # to do is about the upstream layer: a deploy of it again would be refused as this one is.
    aws.deployed("cert-dns", status=status, **({"reason": reason} if reason else {}))
    if status == "DELETE_FAILED":  # the service goes too, and comes back on the image it runs
        if reason:  # an ImageTag set by hand that is no image tag is not printed into the command
            running = configuration(ENV, "service")["Parameters"] | stubbed_aws.wired("service") | stubbed_aws.deploy_time("service")
            aws.deployed("service", parameters=running | {"ImageTag": "v1; rm -rf ~"})
            running = deploy_text.parameter_values(described("service")["Stacks"][0])["ImageTag"]
            way_out = way_out.replace(f" TAG={running}", " TAG=<the image the service runs>")
        else:
            aws.deployed("service")
    assert aws.run("deploy", "--stack", "alb", "--yes") == 1
    why = f" ({reason})" if reason else ""
    assert aws.err.startswith(f"error: {stack('alb')} reads {stack('cert-dns')}, which is {status}{why}; "), aws.err
    assert aws.err.endswith(way_out + ("\n" if status == "DELETE_FAILED" else ", then run this command again\n")), aws.err


@pytest.mark.parametrize("status", [None, "REVIEW_IN_PROGRESS"])
def test_upstream_not_deployed_stops_naming_it(aws, status):
    if status:
        aws.deployed("cert-dns", status=status)
    else:
        aws.not_deployed("cert-dns")
    assert aws.run("deploy", "--stack", "alb", "--yes") == 1
    assert aws.err == (
        f"error: {stack('alb')} needs {stack('cert-dns')} deployed first: make deploy STACK=cert-dns ENV={ENV}, "
        f"or make deploy ENV={ENV} for every layer in order\n"
    ), aws.err


def test_upstreams_not_deployed_are_all_named_in_deploy_order_with_the_commands_in_that_order(aws):
    # service reads alb and release-alarms, alb reads cert-dns: none deployed, every one is named, in the order
    # make deploy creates them (not by name: alb before cert-dns would fail again), each with its command.
    for layer in ("alb", "release-alarms", "cert-dns"):  # as they are read: service's wiring, then alb's
        aws.not_deployed(layer)
    assert aws.run("deploy", "--stack", "service", "--yes") == 1
    assert aws.err == (
        f"error: {stack('service')} needs {stack('cert-dns')}, {stack('alb')} and {stack('release-alarms')} deployed first, "
        f"in that order: make deploy STACK=cert-dns ENV={ENV}, then STACK=alb, then STACK=release-alarms, "
        f"or make deploy ENV={ENV} for every layer in order\n"
    ), aws.err


def wired_from_stacks_without(aws, missing) -> dict:
    """What the service layer's deploy reads from its upstream stacks (Deployer.wired_parameters), where the alb stack
    states every output its template declares but `missing`."""
    service = deploy.load_layer(ENV, "service", OUTPUT)
    alb = described("alb")
    alb["Stacks"][0]["Outputs"] = [o for o in alb["Stacks"][0]["Outputs"] if o["OutputKey"] not in missing]
    aws.cf.add_response("describe_stacks", alb, {"StackName": stack("alb")})
    aws.deployed("release-alarms")
    made = deploy.Deployer(aws.clients.__getitem__, ENV, out=io.StringIO(), err=io.StringIO(), changes=True)
    return made.wired_parameters(service)


def test_an_upstream_stack_without_an_output_the_layer_needs_is_refused_naming_the_redeploy_that_makes_it(aws):
    # (mutation audit, A2's R31) An alb stack without its TargetGroupArn output (deployed from an older checkout, say):
    # the service's deploy stops before anything, naming the output and the command that puts it there, rather than
    # sending the service an empty target group.
    with pytest.raises(deploy.Failure) as refused:
        wired_from_stacks_without(aws, ["TargetGroupArn"])
    assert str(refused.value) == f"error: {stack('alb')} has no output TargetGroupArn; redeploy it: make deploy STACK=alb ENV={ENV}"


@pytest.mark.parametrize(
    "argv",
    [
        ["deploy", "--stack", "nope"],
        ["deploy", "--env", "nope"],
        ["deploy", "--stack", "alb", "--output-dir", "/nonexistent", "--params-dir", str(PARAMS)],
        ["execute", "--stack", "alb", "--changeset", "not a name!"],
        ["execute", "--stack", "alb"],
        ["changeset"],
        ["deploy", "--stack", "alb", "--image-tag", "v1"],
        ["deploy", "--stack", "service", "--image-tag", "bad tag"],
        ["deploy", "--env", "./prod"],
        ["deploy", "--env", ""],
        ["deploy", "--env"],
        ["deploy", "--max-wait", "abc"],
        ["verify", "--timeout", "ten"],
        ["deploy", "--no-such-option"],
        ["nope"],
    ],
)
def test_bad_input_is_one_line_exit_2_and_no_aws_call(aws, argv):
    def no_clients(service):
        raise AssertionError(f"an AWS client was made for {service}")

    aws.clients = no_clients
    assert aws.run(*argv) == 2
    assert aws.err.startswith("error: ") and len(aws.err.strip().splitlines()) == 1, aws.err


@pytest.mark.parametrize(
    ("file", "content", "said"),
    [
        ("alb.json", "fifo", "alb.json: not a regular file; allowed: a regular file; run `make templates`"),
        ("alb.json", "/dev/zero", "alb.json: not a regular file; allowed: a regular file"),  # a symlink to a device: never ends
        ("alb.json", b" " * (1 << 20) + b"{}", "alb.json: larger than 1024 KiB; allowed: a generated file of at most that"),
        ("alb.json", b"\xff{}", "alb.json: unreadable ("),
        ("alb.json", [], "alb.json: not a layer template `make templates` writes (no object with Resources)"),
        ("alb.json", {"Resources": {"X": {}}}, "(Resources.X: no object with a Type)"),
        ("alb.json", {"Resources": {"X": 1}}, "(Resources.X: no object with a Type)"),
        ("alb.json", {"Resources": {"X": {"Type": "AWS::SNS::Topic"}}, "Parameters": []}, "(Parameters: not an object)"),
        ("alb.json", {"Resources": {"X": {"Type": "AWS::SNS::Topic", "Properties": "x"}}}, "(Resources.X: Properties not an object"),
        ("alb.json", {"Resources": {"X": {"Type": "AWS::SNS::Topic"}}, "Outputs": {"O": {}}}, "(an output without a Value)"),
        ("alb.json", b"[" * 200_000 + b"]" * 200_000, "alb.json: unreadable (nested too deep for JSON)"),
        (f"{ENV}/alb.json", None, f"{ENV}/alb.json: not a configuration `make templates` writes (an object of Parameters, Tags"),
        (f"{ENV}/alb.json", {"Parameters": {}, "Tags": "x"}, "(Tags: not an object of strings)"),
        (f"{ENV}/alb.json", {"Parameters": {"VpcId": 1}}, "(Parameters: not an object of strings)"),
        # generated files edited by hand: CloudFormation would refuse it, the sandbox took it
        (f"{ENV}/alb.json", {"Parameters": {"Bogus": "1"}}, "(Parameters: Bogus not declared by the template)"),
        (
            f"{ENV}/alb.json",
            {"Parameters": {f"Bogus{n}": "1" for n in range(1, 7)}},
            "(Parameters: Bogus1, Bogus2, Bogus3, Bogus4, Bogus5 not declared by the template)",
        ),
        ("alb.json", {"Resources": {}}, "alb.json: not a layer template `make templates` writes (no object with Resources)"),
        (
            "alb.json",
            {"Resources": {"X": {"Type": "AWS::SNS::Topic", "Condition": 1}}},
            "(Resources.X: Properties not an object, or a policy",
        ),
        (
            "alb.json",
            {"Resources": {"X": {"Type": "AWS::SNS::Topic", "UpdateReplacePolicy": ["Retain"]}}},
            "or a policy or Condition not a name)",
        ),
        ("alb.json", {"Resources": {"X": {"Type": "AWS::SNS::Topic"}}, "Outputs": []}, "(Outputs: not an object)"),
        (
            "alb.json",
            {"Resources": {"X": {"Type": "AWS::SNS::Topic"}}, "Parameters": {"P": "x"}},
            "(a parameter or an output that is no object)",
        ),
        (f"{ENV}/alb.json", {"Parameters": {}, "Other": {}}, "(an object of Parameters, Tags and StackPolicy)"),
        (f"{ENV}/alb.json", {"Parameters": {}, "StackPolicy": []}, "(StackPolicy: not an object)"),
        ("alb.json", {"Resources": {"X" * 61: {}}}, f"(Resources.{'X' * 60}: no object with a Type)"),
    ],
    ids=[
        "fifo",
        "device",
        "huge",
        "not utf-8",
        "a list",
        "no Type",
        "a number",
        "parameters a list",
        "properties a string",
        "an output without a value",
        "nested deep",
        "null",
        "tags",
        "a number value",
        "unknown",
        "six unknown",
        "no resources",
        "condition a number",
        "policy a list",
        "outputs a list",
        "a parameter a string",
        "another key",
        "policy not an object",
        "a long name",
    ],
)
def test_a_generated_file_no_generation_writes_is_one_line_before_any_aws_call(aws, tmp_path, file, content, said):
    """--output-dir may name any directory: what is in it is checked before anything is sent."""
    output = shutil.copytree(OUTPUT, tmp_path / "output")
    path = output / file
    path.unlink()
    if content == "fifo":
        os.mkfifo(path)
    elif content == "/dev/zero":
        path.symlink_to("/dev/zero")
    else:
        path.write_bytes(content if isinstance(content, bytes) else json.dumps(content).encode())
    aws.dirs = output, PARAMS

    def no_clients(service):
        raise AssertionError(f"an AWS client was made for {service}")

    aws.clients = no_clients
    with within():  # a FIFO read would block
        assert aws.run("deploy", "--stack", "alb", "--yes") == 2
    assert aws.err.startswith(f"error: {path}: ") and len(aws.err.strip().splitlines()) == 1, aws.err
    assert said in aws.err, aws.err


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (
            ["--role-arn", "not-an-arn"],
            "error: CFN_EXECUTION_ROLE_ARN (--role-arn) 'not-an-arn': not an IAM role ARN; allowed: arn:aws:iam::",
        ),
        (
            ["--role-arn", "arn:aws:iam::123456789012:user/ci"],
            "error: CFN_EXECUTION_ROLE_ARN (--role-arn) 'arn:aws:iam::123456789012:user/ci'",
        ),
        # an account of 11 digits: no IAM role ARN (CreateChangeSet would be refused it after the lock)
        (
            ["--role-arn", "arn:aws:iam::12345678901:role/ci"],
            "error: CFN_EXECUTION_ROLE_ARN (--role-arn) 'arn:aws:iam::12345678901:role/ci': not an IAM role ARN",
        ),
        (
            ["--stack", "service", "--image-tag", "v1\nerror: forged"],
            "error: TAG='v1\\nerror: forged': a control character, one that reorders a line or shows as nothing, or a byte that is not UTF-8; allowed: one line",
        ),
        # a line separator: str.splitlines() ends a line there too
        (
            ["--max-wait", "5\u2028error: forged"],
            "error: MAX_WAIT='5\\u2028error: forged': a control character, one that reorders a line or shows as nothing, or a byte that is not UTF-8; allowed: one line",
        ),
        # a right-to-left override: what follows it reads backwards
        (
            ["--image-tag", "v1\u202e"],
            "error: TAG='v1\\u202e': a control character, one that reorders a line or shows as nothing, or a byte that is not UTF-8; allowed: one line",
        ),
        (
            ["--image-tag", "v1\u200f"],
            "error: TAG='v1\\u200f': a control character, one that reorders a line or shows as nothing, or a byte that is not UTF-8; allowed: one line",
        ),
        (["--changeset", "x" * 100_000], "error: CHANGESET: a value of 100000 characters; allowed: at most 4096"),
        (["--output-dir", "out\x1b[2J"], "error: --output-dir='out\\x1b[2J': a control character"),
        # a path of bytes that are not UTF-8, as Python's arguments hold them (surrogates): refused, saying so
        (
            ["--output-dir", "caf\udce9"],
            "error: --output-dir='caf\\udce9': a control character, one that reorders a line or shows as nothing, or a byte that is not UTF-8",
        ),
        # CONNECT_TO is a list (given once per mapping): each of its values is checked too
        (
            ["--connect-to", "h:443:127.0.0.1:8443", "--connect-to", "h:80:127.0.0.1:8080\nerror: forged"],
            "error: CONNECT_TO='h:80:127.0.0.1:8080\\nerror: forged': a control character",
        ),
    ],
    ids=[
        "not an ARN",
        "a user's ARN",
        "an 11-digit account",
        "a newline",
        "a line separator",
        "an override",
        "a mark",
        "100 KB",
        "an escape sequence",
        "not UTF-8",
        "the second CONNECT_TO",
    ],
)
def test_an_unusable_value_is_refused_naming_it_on_one_line_before_any_aws_call(aws, argv, said):
    """A newline in a value split the line that quoted it (a forged second error line), a 100 KB
    value became a 100 KB line, and a role ARN that is none reached CreateChangeSet after the lock."""
    aws.clients = pytest.fail
    assert aws.run("deploy", *argv) == 2
    assert aws.err.startswith(said) and len(aws.err.splitlines()) == 1 and len(aws.err) < 1000, aws.err


def test_a_checkout_path_with_a_control_character_is_named_as_the_checkout_not_as_an_option(aws, monkeypatch):
    # a checkout in a directory whose name holds a newline: "--output-dir='...': a control character" named an option
    # no one gave (its default, the project's output/)
    checkout = Path("/tmp/a\nb/startupwebapp")
    monkeypatch.setattr(deploy, "OUTPUT_DIR", checkout / "output")
    monkeypatch.setattr(deploy, "PARAMS_DIR", checkout / "params")
    monkeypatch.setattr(templates, "ROOT", checkout)
    aws.clients = pytest.fail
    err = io.StringIO()
    assert deploy.main(["status", "--env", ENV], out=io.StringIO(), err=err) == 2
    assert err.getvalue() == (
        "error: this checkout's directory '/tmp/a\\nb/startupwebapp': a control character, one that reorders a line or shows as "
        "nothing, or a byte that is not UTF-8; allowed: a path of one line of printable text (move the checkout to one)\n"
    ), err.getvalue()
    assert "--output-dir" not in err.getvalue()


def test_the_execution_role_s_arn_is_taken_with_a_path(aws, monkeypatch):
    from scripts.deploy import parse, validate

    role = "arn:aws:iam::123456789012:role/ci/startupwebapp-cloudformation"
    monkeypatch.setenv("CFN_EXECUTION_ROLE_ARN", role)
    args = parse(["status", "--env", ENV])
    assert args.role_arn == role and validate(args)


def test_a_value_of_the_most_characters_is_taken_and_one_more_is_refused():
    from scripts.deploy import MOST_VALUE_CHARACTERS, parse

    most = "x" * MOST_VALUE_CHARACTERS
    assert parse(["status", "--env", ENV, "--since", most]).since == most
    with pytest.raises(deploy.Failure) as refused:
        parse(["status", "--env", ENV, "--since", most + "x"])
    assert refused.value.code == 2
    assert (
        str(refused.value) == f"error: SINCE: a value of {MOST_VALUE_CHARACTERS + 1} characters; allowed: at most {MOST_VALUE_CHARACTERS}"
    )


@pytest.mark.parametrize(
    "argv, variable, most, allowed",
    [
        (["destroy", "--max-wait"], "MAX_WAIT", 720, "1 to 720 minutes"),
        (["verify", "--timeout"], "TIMEOUT", 172_800, "0 to 172800 seconds (48 hours)"),  # zone's wait for a delegation
    ],
)
def test_the_longest_wait_is_taken_and_one_more_is_refused(aws, argv, variable, most, allowed):
    from scripts.deploy import parse, validate

    args = parse([*argv, str(most), "--env", ENV])
    validate(args)
    assert most in (args.max_wait, args.timeout)
    aws.clients = pytest.fail
    assert aws.run(*argv, str(most + 1)) == 2
    assert aws.err == f"error: {variable}={most + 1}: allowed: {allowed}\n", aws.err


@pytest.mark.parametrize("command", ["verify", "zone"])
def test_timeout_left_out_is_the_documented_600_seconds(command):
    # README (make verify, make zone): TIMEOUT= seconds, default 600; a shorter default gave up on a rollout or a
    # delegation still under way
    from scripts.deploy import parse, validate

    args = parse([command, "--env", ENV, "--output-dir", str(OUTPUT), "--params-dir", str(PARAMS)])
    validate(args)
    assert args.timeout == 600


def test_a_tag_with_a_layer_other_than_the_service_is_refused_naming_why_before_any_aws_call(aws):
    # TAG= is the service layer's image: given with STACK=alb it would look like it meant something
    aws.clients = pytest.fail
    assert aws.run("deploy", "--stack", "alb", "--image-tag", "v1") == 2
    assert aws.err == "error: TAG= (--image-tag) sets the service layer's image; STACK=alb has none\n", aws.err


def test_zone_with_a_layer_is_refused_before_any_aws_call(aws):
    # zone works on the environment's domain: a STACK= given to it would look like it meant something
    aws.clients = pytest.fail
    assert aws.run("zone", "--stack", PROD_LAYERS[0]) == 2
    assert aws.err == f"error: zone works on {ENV}'s domain, not on a layer: leave out STACK= (--stack)\n", aws.err


@pytest.mark.parametrize("command", ["changeset", "events"])
def test_a_command_of_one_layer_without_stack_is_refused_naming_the_layers(aws, command):
    # left out, STACK means every layer elsewhere: these work on one stack, so they ask for it. A change set is made
    # for an enabled layer only; events reads the stack of a layer taken out of enabled_layers too (README), so it
    # names every layer, as its refusal of a misspelt STACK= does: it named only the enabled ones.
    aws.clients = pytest.fail
    assert aws.run(command) == 2
    layers = PROD_LAYERS if command == "changeset" else templates.LAYERS
    assert aws.err == f"error: {command} needs STACK=<layer> (--stack); layers: {', '.join(layers)}\n", aws.err


@pytest.mark.parametrize("stuck", [["alb"], ["rolling back"], [], ["alb", "service"], ["foreign"]])
def test_recover_without_stack_recovers_the_one_layer_whose_update_rollback_failed(aws, stuck):
    # (helper P2: an on-call engineer typed make recover ENV=prod and was sent to make status to find the layer) The one
    # layer of ours stuck is recovered; none, or several, are refused, naming the way on; another's stack is none of ours.
    for layer in PROD_LAYERS:
        if layer in stuck:
            aws.deployed(layer, status="UPDATE_ROLLBACK_FAILED")
        elif layer == "alb" and stuck == ["foreign"]:
            theirs = described("alb", "UPDATE_ROLLBACK_FAILED", tags={"Project": "otherproj"})
            aws.cf.add_response("describe_stacks", theirs, {"StackName": stack("alb")})
        elif layer == "alb" and stuck == ["rolling back"]:  # a recover whose wait stopped: this one waits for it
            aws.deployed(layer, status="UPDATE_ROLLBACK_IN_PROGRESS")
        else:
            aws.deployed(layer)
    if stuck in (["alb"], ["rolling back"]):
        token = f"recover-{stack('alb')}-20251125120000" if stuck == ["alb"] else "recover-earlier-run"
        if stuck == ["alb"]:
            aws.cf.add_response("continue_update_rollback", {}, {"StackName": stack("alb"), "ClientRequestToken": token})
        rolled_back = event("alb", stack("alb"), "UPDATE_ROLLBACK_COMPLETE", 20, token=token)
        aws.poll("alb", stack_id("alb"), described("alb", "UPDATE_ROLLBACK_COMPLETE"), rolled_back)
        assert aws.run("recover", "--yes") == 0, aws.err
        said = f"{stack('alb')}: the one layer of {ENV} whose update's rollback failed or goes on (STACK=alb)\n"
        assert aws.out.startswith(said), aws.out
        assert "UPDATE_ROLLBACK_COMPLETE: back on its previous template" in aws.out
    elif len(stuck) > 1:
        assert aws.run("recover", "--yes") == 2
        assert aws.err == (
            f"error: the update rollbacks of alb and service failed or go on: one recover a layer, make recover STACK=<layer> ENV={ENV}\n"
        )
    else:
        assert aws.run("recover", "--yes") == 1
        nothing = f"error: no layer of {ENV} is UPDATE_ROLLBACK_FAILED, nor rolling back an update: nothing to recover"
        assert aws.err.startswith(nothing), aws.err


def test_execute_of_a_change_set_whose_name_names_no_layer_says_why_it_needs_stack(aws):
    # "execute needs STACK=<layer>" alone, where the README says STACK= may be left out for a change set this tool named:
    # it did not say that the name given is no such name
    aws.clients = pytest.fail
    assert aws.run("execute", "--changeset", "foo", "--yes") == 2
    assert aws.err == (
        f"error: execute needs STACK=<layer> (--stack) for change set 'foo', whose name names no layer of {ENV} (make changeset's "
        f"start with the layer's stack, {stack(PROD_LAYERS[0])}-...); layers: {', '.join(PROD_LAYERS)}\n"
    ), aws.err


@pytest.mark.parametrize("command", ["diff", "drift"])
def test_ctrl_c_in_diff_or_drift_exits_130_not_their_error_code(aws, command):
    # any error of theirs is 2 (their 1 means "differs" or "drifted"), but Ctrl-C is 130 as in every command
    def interrupted(*_):
        raise KeyboardInterrupt

    aws.clients = interrupted
    assert aws.run(command, "--stack", PROD_LAYERS[0]) == 130
    assert aws.err.startswith("interrupted"), aws.err


@pytest.mark.parametrize("command", ["diff", "drift"])
def test_an_aws_error_in_diff_or_drift_exits_2_not_their_differs_or_drifted(aws, command):
    # README: diff and drift exit 2 on any error, as their 1 means "differs" and "drifted"
    def unreachable(*_):
        raise EndpointConnectionError(endpoint_url=NOWHERE)

    aws.clients = unreachable
    assert aws.run(command, "--stack", PROD_LAYERS[0]) == 2
    assert aws.err.startswith("error: "), aws.err


def test_a_params_file_that_is_there_but_no_file_is_said_so_not_unknown(aws, tmp_path):
    params_dir = shutil.copytree(PARAMS, tmp_path / "params")
    (params_dir / f"{ENV}.yaml").unlink()
    os.mkfifo(params_dir / f"{ENV}.yaml")  # it said: unknown environment 'prod' (did you mean prod?)
    aws.dirs = OUTPUT, params_dir
    with within():  # a FIFO read would block
        assert aws.run("status") == 2
    assert aws.err == f"error: {params_dir / ENV}.yaml: not a regular file; allowed: a regular file\n"


def test_a_value_argparse_cannot_read_is_named_as_make_names_it(aws):
    assert aws.run("deploy", "--max-wait", "abc") == 2
    assert aws.err == "error: MAX_WAIT=abc: allowed: 1 to 720 minutes\n"
    assert aws.run("verify", "--timeout", "-1") == 2
    assert aws.err == "error: TIMEOUT=-1: allowed: 0 to 172800 seconds (48 hours)\n"
    assert aws.run("verify", "--timeout", "172801") == 2
    assert aws.err == "error: TIMEOUT=172801: allowed: 0 to 172800 seconds (48 hours)\n"
    assert aws.run("deploy", "--stak", "alb") == 2
    assert aws.err.startswith("error: unrecognized arguments: --stak alb; the options: python -m scripts.deploy --help")
    # A value the command does not take is refused, not ignored (an unlock of "one layer" frees the environment's lock).
    for given in ("alb", ""):  # STACK= empty too: not told to name a layer, which unlock then refuses
        assert aws.run("unlock", "--stack", given) == 2
        assert aws.err == f"error: unlock frees the lock of {ENV}, one for every layer: leave out STACK= (--stack)\n"
    assert aws.run("deploy", "--stack", "alb", "--changeset", cs_name("alb")) == 2
    assert aws.err == "error: CHANGESET= (--changeset) is for make execute; deploy takes none: leave it out\n"
    # TAG= to a command an image means nothing to: `make verify TAG=v9` passed, checking whatever ran.
    from scripts.deploy import TAKES_TAG

    assert set(TAKES_TAG) == {"deploy", "changeset", "diff", "rollback", "task"}  # what an image means something to
    for command in ("verify", "logs", "status", "events", "unlock", "continue", "execute", "destroy"):
        assert aws.run(command, *(["--stack", "service"] if command != "unlock" else []), "--image-tag", "v9") == 2
        assert aws.err == f"error: TAG= (--image-tag) is for make {', '.join(TAKES_TAG)}; {command} takes none: leave it out\n"
    # A switch to a command it means nothing to: `make status ALLOW_REPLACE=1` passed, meaning nothing.
    from scripts.deploy import TAKES_ALLOW, TAKES_RECREATE

    for switch, takes, said in (
        ("--allow-replace", TAKES_ALLOW, "ALLOW_REPLACE=1 (--allow-replace)"),
        ("--allow-traffic-reset", TAKES_ALLOW, "ALLOW_TRAFFIC_RESET=1 (--allow-traffic-reset)"),
        ("--recreate", TAKES_RECREATE, "RECREATE=1 (--recreate)"),
    ):
        for command in ("verify", "logs", "status", "events", "unlock", "continue", "diff", "destroy", "changeset", "execute"):
            if command in takes:
                continue
            assert aws.run(command, *(["--stack", "service"] if command != "unlock" else []), switch) == 2, (command, switch)
            assert aws.err == f"error: {said} is for make {', '.join(takes)}; {command} takes none: leave it out\n", aws.err
    # Given empty (CHANGESET=$C, M unset): refused as given, not read as left out, nor as a MAX_WAIT status would take
    assert aws.run("status", "--changeset=") == 2
    assert aws.err == "error: CHANGESET= (--changeset) is for make execute; status takes none: leave it out\n", aws.err
    assert aws.run("status", "--max-wait=") == 2
    assert aws.err == (
        f"error: MAX_WAIT= (--max-wait) is for make {', '.join(deploy.TAKES_MAX_WAIT)}; status takes none: leave it out\n"
    ), aws.err
    # YES=1 and MAX_WAIT= likewise: `make verify MAX_WAIT=1` waited verify's own 10 minutes.
    from scripts.deploy import TAKES_MAX_WAIT, TAKES_YES

    assert set(TAKES_YES) == {
        "deploy",
        "execute",
        "destroy",
        "purge",
        "recover",
        "rollback",
        "zone",
        "unlock",
        "task",
        "continue",
    }  # they ask
    assert set(TAKES_MAX_WAIT) == {
        "deploy",
        "changeset",
        "execute",
        "destroy",
        "recover",
        "rollback",
        "task",
    }  # they wait for a stack or task
    for command in deploy.COMMANDS:
        stack = [] if command in ("unlock", "zone") else ["--stack", "service"]
        for given, said, takes in (["--yes"], "YES=1 (--yes)", TAKES_YES), (["--max-wait", "5"], "MAX_WAIT= (--max-wait)", TAKES_MAX_WAIT):
            if command in takes:
                continue
            bound = " (its own bound is TIMEOUT=<seconds>)" if said.startswith("MAX_WAIT") and command in ("verify", "zone") else ""
            assert aws.run(command, *stack, *given) == 2, (command, given)
            assert aws.err == f"error: {said} is for make {', '.join(takes)}; {command} takes none: leave it out{bound}\n", aws.err
    # Given empty (TAG=$T, T unset), not read as left out: a rollback would go back by the history.
    for command in ("deploy", "changeset", "diff", "rollback"):  # task's: tests/test_task.py
        assert aws.run(command, "--stack", "service", "--image-tag", "") == 2
        assert aws.err == (
            "error: TAG=: not a Docker image tag (letters, digits, _ . -, not starting with . or -, at most 128); "
            "to leave it out, give no TAG=\n"
        )


def test_a_tool_error_a_command_meets_is_said_as_an_error_on_each_line_never_a_traceback(aws, monkeypatch):
    """Errors of the project's own code that a command calls (generation's OutputHeld and the like, each a ToolError)
    end the run as its Failures do; scripts/deploy/__main__.py's run() catches none (a traceback)."""
    from scripts.deploy import commands

    def held(_commands):
        raise generation.OutputHeld("output/ is held by another run\nwait for it", 3)

    monkeypatch.setitem(commands.COMMANDS, "status", held)
    assert aws.run("status", "--env", ENV) == 3
    assert aws.err == "error: output/ is held by another run\nerror: wait for it\n", aws.err


def test_the_sandbox_environment_never_runs_on_aws_credentials(aws, monkeypatch):
    # make sets AWS_ENDPOINT_URL for ENV=sandbox only (the Makefile's AWS guard); run without it, or
    # with a path that names the sandbox's params file, nothing is sent anywhere.
    def no_clients(service):
        raise AssertionError(f"an AWS client was made for {service}")

    aws.clients = no_clients
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    known = ", ".join(sorted(path.stem for path in PARAMS.glob("*.yaml")))
    assert aws.run("status", "--env", "sandbox") == 2
    assert aws.err.startswith("error: ENV=sandbox deploys only to the local sandbox, and AWS_ENDPOINT_URL is not set")
    assert "run it through make (make status ENV=sandbox points it at the running sandbox;" in aws.err  # the command run
    for path in ("./sandbox", str(PARAMS / "sandbox"), "../params/sandbox"):
        assert aws.run("status", "--env", path) == 2
        assert aws.err.startswith(f"error: ENV={path!r} is not an environment name") and f"; environments: {known}" in aws.err, aws.err
    assert aws.run("status", "--env", "Sandbox") == 2  # names are lower-case
    assert aws.err.startswith("error: ENV='Sandbox' is not an environment name (did you mean sandbox?): names are 2 to 16"), aws.err
    assert aws.run("status", "--env", "prd") == 2
    missing = templates.relative(aws.dirs[1] / "prd.yaml")
    assert aws.err == f"error: unknown environment 'prd' (did you mean prod?): no {missing}; environments: {known}\n", aws.err
    # No misspelling: perhaps an environment whose params file was removed before its stacks (README: Remove an environment)
    gone = next(name for name in ("gone", "removed") if not (aws.dirs[1] / f"{name}.yaml").exists())
    assert aws.run("destroy", "--env", gone) == 2
    missing = templates.relative(aws.dirs[1] / f"{gone}.yaml")
    assert aws.err == (
        f"error: unknown environment {gone!r}: no {missing}; environments: {known} (one whose file was removed while its "
        f"stacks are deployed: put {missing} back, then make destroy ENV={gone})\n"
    ), aws.err
    # Without --params-dir (aws.run gives it): params/ and output/ are the project's wherever the tool runs from.
    monkeypatch.chdir(ROOT / "templates")
    err = io.StringIO()
    assert deploy.main(["status", "--env", "prd"], clients=aws.clients, out=io.StringIO(), err=err) == 2
    assert err.getvalue() == f"error: unknown environment 'prd' (did you mean prod?): no params/prd.yaml; environments: {known}\n"


def test_the_clients_reach_the_emulator_aws_endpoint_url_names_whatever_the_aws_configuration_says(monkeypatch, tmp_path):
    """A service-specific endpoint (AWS_ENDPOINT_URL_<SERVICE>, a config file's services section)
    overrides AWS_ENDPOINT_URL, and AWS_IGNORE_CONFIGURED_ENDPOINT_URLS drops it; an endpoint given to
    the client wins over both (feature-ss-endpoints.html)."""
    no_real_aws(monkeypatch, "http://127.0.0.1:4566")
    config = tmp_path / "config"
    config.write_text("[default]\nservices = elsewhere\n[services elsewhere]\nssm =\n  endpoint_url = http://127.0.0.1:8\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDFORMATION", "http://127.0.0.1:9")
    plain = deploy.aws.boto_clients("us-east-1", io.StringIO(), deploy.aws.CONFIG)
    assert (
        plain("cloudformation").meta.endpoint_url == "http://127.0.0.1:9"
    )  # (botocore 1.35 puts the config file's after AWS_ENDPOINT_URL)
    # nor through the shell's proxy, nor with the shell's credentials
    monkeypatch.setenv("HTTP_PROXY", NOWHERE)
    monkeypatch.setenv("AWS_SESSION_TOKEN", "the shell's")
    for ignored in ("false", "true"):
        monkeypatch.setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", ignored)
        monkeypatch.setenv("AWS_PROFILE", "does-not-exist")  # read by no sandbox client
        sandbox = deploy.aws.boto_clients("us-east-1", io.StringIO(), deploy.aws.CONFIG, "http://127.0.0.1:4566", sandbox=True)
        for service in ("cloudformation", "ssm", "ecs", "logs"):
            client = sandbox(service)
            assert client.meta.endpoint_url == "http://127.0.0.1:4566", (ignored, service)
            assert client._endpoint.http_session._proxy_config._proxies == {}, service
            credentials = client._request_signer._credentials
            assert (credentials.access_key, credentials.token) == (SANDBOX_KEYS["AWS_ACCESS_KEY_ID"], None), service
        monkeypatch.delenv("AWS_PROFILE")
        # Another emulator, named by AWS_ENDPOINT_URL for another environment: reached as the sandbox
        # is (the commands treat the run as an emulator's), with the shell's credentials.
        emulated = deploy.aws.boto_clients("us-east-1", io.StringIO(), deploy.aws.CONFIG, "http://127.0.0.1:4566")
        for service in ("cloudformation", "ssm"):
            client = emulated(service)
            assert client.meta.endpoint_url == "http://127.0.0.1:4566", (ignored, service)
            assert client._endpoint.http_session._proxy_config._proxies == {}, service
            credentials = client._request_signer._credentials
            assert (credentials.access_key, credentials.token) == ("AKIAFAKEFAKEFAKEFAKE", "the shell's"), service
    assert plain("sts")._endpoint.http_session._proxy_config._proxies == {"http": NOWHERE}  # what it would have done
    for local in ("http://localhost:4566", "http://[::1]:4566"):  # this machine too, by name or IPv6
        assert (
            deploy.aws.boto_clients("us-east-1", io.StringIO(), deploy.aws.CONFIG, local)(
                "sts"
            )._endpoint.http_session._proxy_config._proxies
            == {}
        )
    remote = deploy.aws.boto_clients("us-east-1", io.StringIO(), deploy.aws.CONFIG, "http://10.0.0.1:4566")
    assert remote("sts")._endpoint.http_session._proxy_config._proxies == {"http": NOWHERE}  # not this machine: as configured
    # the deployer's clients are made with AWS_ENDPOINT_URL, whatever the environment; the sandbox's alone with its keys
    made = []

    class Made(Exception):
        pass

    def clients(service):
        raise Made(service)  # a client is asked for: what main() made them with is known, nothing is sent

    monkeypatch.setattr(
        deploy,
        "boto_clients",
        lambda region, err, config, endpoint=None, sandbox=False, reuse=None: made.append((endpoint, sandbox)) or clients,
    )
    for env in ("sandbox", ENV):
        with pytest.raises(Made):
            deploy.main(["status", "--env", env, "--stack", "alb"], sleep=lambda seconds: None, out=io.StringIO(), err=io.StringIO())
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    with pytest.raises(Made):
        deploy.main(["status", "--env", ENV, "--stack", "alb"], sleep=lambda seconds: None, out=io.StringIO(), err=io.StringIO())
    assert made == [("http://127.0.0.1:4566", True), ("http://127.0.0.1:4566", False), (None, False)]


def test_a_later_run_takes_the_clients_an_earlier_one_made_alike_and_counts_their_calls_alone(monkeypatch):
    """boto_clients' reuse (the tests run the deployer hundreds of times in one process): a client made
    again only when what it is made from changed, and each call counted by the run that makes it."""
    no_real_aws(monkeypatch)
    reuse = {}

    def run_clients(config=deploy.aws.CONFIG):
        return deploy.aws.boto_clients("us-east-1", io.StringIO(), config, NOWHERE, sandbox=True, reuse=reuse)

    first = run_clients()("ssm")
    assert run_clients()("ssm") is first
    assert run_clients(deploy.aws.CONFIG.merge(deploy.aws.Config(read_timeout=1)))("ssm") is not first
    monkeypatch.setenv("HTTPS_PROXY", NOWHERE)  # anything of the environment: made again
    assert run_clients()("ssm") is not first
    monkeypatch.delenv("HTTPS_PROXY")
    assert run_clients()("ssm") is first
    # a client for a resource params names in another region (guards.refuse_a_secret_the_tasks_cannot_read's): its own, kept apart
    there = run_clients()("ssm", "eu-west-1")
    assert (there.meta.region_name, first.meta.region_name) == ("eu-west-1", "us-east-1")
    assert run_clients()("ssm", "eu-west-1") is there and run_clients()("ssm") is first
    earlier, later = deploy.aws.AwsCalls(io.StringIO()), deploy.aws.AwsCalls(io.StringIO())
    earlier.watch(first)
    later.watch(first)
    with Stubber(first) as stubber:
        stubber.add_response("get_parameter", {"Parameter": {"Name": "/a", "Value": "b"}}, {"Name": "/a"})
        first.get_parameter(Name="/a")
    assert (sum(earlier.per_stack.values()), sum(later.per_stack.values())) == (0, 1)


@pytest.mark.parametrize(
    "endpoint", ["http://10.0.0.1:4566", "https://cloudformation.us-east-1.amazonaws.com", "http://127.0.0.1.example.com:4566"]
)
def test_the_sandbox_environment_refuses_an_endpoint_that_is_not_this_machine(aws, monkeypatch, endpoint):
    def no_clients(service):
        raise AssertionError(f"an AWS client was made for {service}")

    aws.clients = no_clients
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    assert aws.run("status", "--env", "sandbox") == 2
    assert aws.err.startswith(
        f"error: ENV=sandbox deploys only to the local sandbox, and AWS_ENDPOINT_URL={endpoint} is no loopback address: "
        "run it through make (make status ENV=sandbox points it at the running sandbox)"
    ), aws.err


def test_an_html_error_page_is_named_by_its_title_not_printed(aws):
    page = "<!doctype html>\n<html lang=en>\n<title>500 Internal Server Error</title>\n<h1>Internal Server Error</h1><p>The server ...</p>"
    # status reads the relaxed-policy marks only after CloudFormation answered: not here
    aws.cf.add_client_error("describe_stacks", "500", page, 500, expected_params={"StackName": stack("cert-dns")})
    assert aws.run("outputs", "--stack", "cert-dns") == 1
    assert aws.err == (
        "error: DescribeStacks: 500: 500 Internal Server Error (an HTML error page, not an AWS error answer); "
        f"see where things stand: make status ENV={ENV}\n"
    )
    # A proxy's page after a line end or indentation is one all the same.
    proxied = ClientError(
        {"Error": {"Code": "502", "Message": "\r\n  " + page.replace("500 Internal Server Error", "502 Bad Gateway")}}, "ListStacks"
    )
    assert explain(proxied, ENV) == (
        f"error: ListStacks: 502: 502 Bad Gateway (an HTML error page, not an AWS error answer); see where things stand: make status ENV={ENV}"
    )


def test_an_answer_that_is_no_aws_api_is_quoted_from_what_it_said(monkeypatch):
    # botocore's text leads with its own words; the 200 characters quoted start at the body it could not read.
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    error = ResponseParserError(
        "Unable to parse response (syntax error: line 1, column 0), invalid XML received. Further retries may succeed:\nb'<html>proxy login</html>'"
    )
    assert explain(error, ENV) == (
        "error: the AWS endpoint answered with something that is not an AWS API response: b'<html>proxy login</html>'; "
        "is that the endpoint you meant?"
    )


@pytest.mark.parametrize("retries", [0, 4])
def test_make_status_meeting_an_error_does_not_name_itself_as_the_way_on(aws, retries):
    # It said "see where things stand: make status", which had just failed. An error botocore retried
    # (ResponseMetadata's RetryAttempts, https://docs.aws.amazon.com/boto3/latest/guide/retries.html) may pass.
    meta = {"RetryAttempts": retries}
    aws.cf.add_client_error(
        "describe_stacks", "Throttling", "Rate exceeded", 400, response_meta=meta, expected_params={"StackName": stack("cert-dns")}
    )
    assert aws.run("status", "--stack", "cert-dns") == 1
    again = f"answered so {retries + 1} times: run it again in a few minutes, or " if retries else ""
    assert aws.err == f"error: DescribeStacks: Throttling: Rate exceeded; {again}see the stacks in the CloudFormation console\n", aws.err
    # on the sandbox, no console shows them; another command's error there still points at make status
    invalid = ClientError({"Error": {"Code": "ValidationError", "Message": "no"}}, "CreateChangeSet")
    assert deploy.aws.explain(invalid, "sandbox", "deploy").endswith("; see where things stand: make status ENV=sandbox")
    moto = ClientError(
        {"Error": {"Code": "InternalFailure", "Message": "moto crashed"}, "ResponseMetadata": {"RetryAttempts": retries}}, "DescribeStacks"
    )
    assert deploy.aws.explain(moto, "sandbox", "status").endswith(
        "; the sandbox's emulator failed it (its log: .sandbox/server.log); make sandbox-stop && make sandbox starts it afresh, empty "
        "(make deploy YES=1 then creates every layer again)"
    )


def test_execute_of_another_layers_change_set_names_the_layer_it_is_of(aws):
    # "no change set on stack alb (a deploy or execute since ... ends its other change sets)": the name said it was the service's.
    for layer, named in (("alb", "service"), ("alarms", "release-alarms"), ("release-alarms", "alarms")):
        name = f"{stack(named)}-20990101000000-abc1234"
        aws.cf.add_client_error("describe_change_set", "ChangeSetNotFound", f"ChangeSet [{name}] does not exist", 404)
        aws.deployed(layer)
        assert aws.run("execute", "--stack", layer, "--changeset", name, "--yes") == 2
        assert aws.err == (
            f"error: no change set {name} on stack {stack(layer)}: its name is one of {stack(named)}'s: "
            f"make execute STACK={named} ENV={ENV} CHANGESET={name}\n"
        ), aws.err


@pytest.mark.parametrize("given", [(), ("--changeset", "")])
def test_execute_without_a_change_set_asks_for_it_not_for_stack(aws, given):
    # "execute needs STACK=<layer>" first, though a change set this tool named gives its layer itself
    assert aws.run("execute", *given, "--yes") == 2  # no call: nothing is queued
    got = "; got ''" if given else ""
    assert aws.err == f"error: execute needs CHANGESET=<name> (--changeset), the name `make changeset` printed{got}\n", aws.err


@pytest.mark.parametrize("name", ["../../x", "1abc", "a_b", "a" * 129])
def test_execute_of_no_change_set_name_says_what_one_is(aws, name):
    # It said "execute needs CHANGESET=<name>" with the value given, and nothing of what a name holds
    assert aws.run("execute", "--changeset", name, "--yes") == 2  # no call: nothing is queued
    assert aws.err == (
        f"error: execute needs CHANGESET=<name> (--changeset), the name `make changeset` printed; got {name!r}, which is no change set "
        "name; allowed: a letter, then letters, digits and hyphens, 128 characters at most\n"
    ), aws.err


@pytest.mark.parametrize("given", [(), ("--stack", "alb")])
def test_execute_of_another_environments_change_set_names_that_environment(aws, given):
    # ENV= forgotten: "execute needs STACK=", then, with it, "no change set on" this environment's stack.
    from templates.generation import PARAMS_DIR
    from templates.params import params_files

    other = next(path.stem for path in params_files(PARAMS_DIR) if path.stem != ENV)
    name = f"{templates.stack_name(other, 'alb')}-20990101000000-abc1234"
    assert aws.run("execute", *given, "--changeset", name, "--yes") == 2  # no call: nothing is queued
    assert aws.err == (
        f"error: change set {name} is one of {templates.stack_name(other, 'alb')}, of ENV={other}, not {ENV}: "
        f"make execute ENV={other} STACK=alb CHANGESET={name}\n"
    ), aws.err


def test_execute_of_a_change_set_two_other_environments_could_name_takes_the_longer_stack_name(aws, tmp_path):
    # other-alb-service-... starts both other-alb's service stack and other's alb stack: the longer name is the one
    params_dir = shutil.copytree(PARAMS, tmp_path / "params")
    for other in ("other", "other-alb"):
        shutil.copy(params_dir / f"{ENV}.yaml", params_dir / f"{other}.yaml")
    aws.dirs = OUTPUT, params_dir
    name = f"{templates.stack_name('other-alb', 'service')}-20990101000000-abc1234"
    assert name.startswith(f"{templates.stack_name('other', 'alb')}-")
    assert aws.run("execute", "--changeset", name, "--yes") == 2  # no call: nothing is queued
    assert aws.err.startswith(f"error: change set {name} is one of {templates.stack_name('other-alb', 'service')}, of ENV=other-alb,"), (
        aws.err
    )


def test_execute_of_a_service_change_set_gone_says_which_image_a_new_one_keeps(aws):
    # "make changeset STACK=service ... makes a new one", run as printed, kept the running image: the reviewed release was
    # another; and the release that ended it runs now (a TAG= of the reviewed one would replace it)
    name = f"{stack('service')}-20990101000000-abc1234"
    aws.cf.add_client_error("describe_change_set", "ChangeSetNotFound", f"ChangeSet [{name}] does not exist", 404)
    aws.deployed("service", parameters=stubbed_aws.service_parameters("v5"))
    assert aws.run("execute", "--stack", "service", "--changeset", name, "--yes") == 2
    assert (
        f"make changeset STACK=service ENV={ENV} makes a new one (it keeps the image that runs now, v5; TAG= releases another in its "
        "place)); "
    ) in aws.err, aws.err


@pytest.mark.parametrize("deployed", [True, False])
def test_execute_of_a_change_set_that_does_not_exist_is_exit_2(aws, deployed):
    name = f"{stack('alb')}-20990101000000-abc1234"
    aws.cf.add_client_error("describe_change_set", "ChangeSetNotFound", f"ChangeSet [{name}] does not exist", 404)
    aws.deployed("alb") if deployed else aws.not_deployed("alb")
    assert aws.run("execute", "--stack", "alb", "--changeset", name, "--yes") == 2
    if deployed:
        assert f"no change set {name} on stack {stack('alb')}" in aws.err and len(aws.err.strip().splitlines()) == 1
        assert f"ends its other change sets: make changeset STACK=alb ENV={ENV} makes a new one" in aws.err  # the likely cause
        assert aws.err.endswith(f"; make status ENV={ENV} names those that could still run\n"), aws.err  # the tool's own listing
    else:  # not "ended by a deploy since": there is no stack
        assert aws.err == (
            f"error: {stack('alb')} is not deployed, and so has no change set {name}: "
            f"make changeset STACK=alb ENV={ENV} makes one (a first create's too)\n"
        )


def test_execute_whose_change_set_cannot_be_read_says_why_and_reads_no_stack(aws):
    # refused (not "not found"): the error as it is, not a look at the stack that names it "not deployed"
    name = f"{stack('alb')}-20990101000000-abc1234"
    aws.cf.add_client_error("describe_change_set", "AccessDenied", "not authorized", 403)
    assert aws.run("execute", "--stack", "alb", "--changeset", name, "--yes") == 1
    assert "AccessDenied" in aws.err and "not deployed" not in aws.err, aws.err


@pytest.mark.parametrize("tty", [False, True])
def test_without_yes_refuses_off_a_terminal_and_asks_on_one(aws, tty):
    aws.deployed("cert-dns")
    aws.change_set("cert-dns", "UPDATE", [change("Modify", "HostedZone", "AWS::Route53::HostedZone", details=[detail("HostedZoneConfig")])])
    aws.cf.add_response("delete_change_set", {}, {"StackName": stack("cert-dns"), "ChangeSetName": cs_name("cert-dns")})
    assert aws.run("deploy", "--stack", "cert-dns", tty=tty, answer="n") == 1
    assert ("not confirmed" if tty else "no terminal to ask on") in aws.err


def test_service_update_leaves_the_running_count_alone_and_passes_the_image_tag(aws):
    aws.deployed("alb")
    aws.deployed("release-alarms")
    aws.deployed("service")
    running = configuration(ENV, "service")["Parameters"]["ImageTag"]  # what the stack was deployed with
    wanted = {"ImageTag": "v1.4.2" if running != "v1.4.2" else "v1.4.3"}
    service_changes = [
        change(
            "Modify",
            "TaskDefinition",
            "AWS::ECS::TaskDefinition",
            "True",
            [detail("ContainerDefinitions", "ParameterReference", "ImageTag", "Always")],
        ),
        change("Modify", "Service", "AWS::ECS::Service", details=[detail("TaskDefinition", "ResourceReference", "TaskDefinition")]),
    ]
    expected = create_params("service", "UPDATE", **wanted)
    assert {"ParameterKey": KEEP_RUNNING_COUNT, "ParameterValue": "true"} in expected["Parameters"]
    parameters = configuration(ENV, "service")["Parameters"] | wired("service") | deploy_time("service") | wanted
    aws.change_set("service", "UPDATE", service_changes, expected, left=True, parameters=parameters)
    assert aws.run("changeset", "--stack", "service", "--image-tag", wanted["ImageTag"]) == 0, aws.err
    assert f"parameter ImageTag: {running} -> {wanted['ImageTag']}" in aws.out


def test_new_service_states_its_desired_count(aws):
    aws.deployed("alb")
    aws.deployed("release-alarms")
    aws.not_deployed("service")
    expected = create_params("service", "CREATE")
    assert {"ParameterKey": KEEP_RUNNING_COUNT, "ParameterValue": "false"} in expected["Parameters"]
    desired = configuration(ENV, "service")["Parameters"]["DesiredCount"]  # the params file's, passed on as it is
    assert {"ParameterKey": "DesiredCount", "ParameterValue": desired} in expected["Parameters"]
    aws.change_set("service", "CREATE", [change("Add", "Service", "AWS::ECS::Service")], expected, left=True)
    history(aws, None)  # what the stack before it last ran, said before the create (none: the first)
    assert aws.run("changeset", "--stack", "service") == 0, aws.err
    assert "the one before it last ran" not in aws.out, aws.out


def test_a_new_service_stack_whose_release_history_cannot_be_read_is_made_all_the_same_saying_so(aws):
    aws.deployed("alb")
    aws.deployed("release-alarms")
    aws.not_deployed("service")
    aws.change_set("service", "CREATE", [change("Add", "Service", "AWS::ECS::Service")], create_params("service", "CREATE"), left=True)
    aws.ssm.add_client_error("get_parameter", "AccessDenied", "not authorized", 403, expected_params={"Name": HISTORY})
    assert aws.run("changeset", "--stack", "service") == 0, aws.err
    assert (
        f"note: the release history could not be read (AccessDenied): make releases ENV={ENV} says which image the service stack "
        "before this one last ran"
    ) in aws.out, aws.out


@pytest.mark.parametrize("left_deployed", [False, True, "unreadable", "someone else's"])
def test_redeploy_of_every_layer_with_nothing_changed_prints_order_and_counts_calls(aws, disabled, left_deployed):
    """An optional layer the params file does not enable is looked for once: one left deployed (taken
    out of enabled_layers) is said, with how it goes; one that cannot be read is a note, the run done;
    a stack of its name not ours is not said (its destroy is refused). (disabled: params with one
    optional layer left out, whatever params/prod.yaml enables.)"""
    _, order = disabled
    for layer in order:
        aws.deployed(layer)
        aws.empty_change_set(layer)
    not_enabled = [layer for layer in templates.OPTIONAL_LAYERS if layer not in order]
    assert not_enabled
    for layer in not_enabled:
        if left_deployed == "unreadable":
            aws.cf.add_client_error("describe_stacks", "AccessDenied", "not authorized", 403)
            continue
        if not left_deployed:
            aws.not_deployed(layer)
            continue
        # prod generates no configuration for a layer it does not enable: a stack with our tags
        tags = [{"Key": k, "Value": v} for k, v in templates.own_tags(ENV, layer).items()]
        if left_deployed == "someone else's":
            tags = [{"Key": "Project", "Value": "otherproj"}]
        entry = described(order[0])["Stacks"][0] | {"StackName": stack(layer), "StackId": stack_id(layer), "Parameters": [], "Tags": tags}
        aws.cf.add_response("describe_stacks", {"Stacks": [entry]}, {"StackName": stack(layer)})
    assert aws.run("deploy") == 0, aws.err
    assert aws.out.splitlines()[0] == f"order: {' -> '.join(order)}"
    for layer in order:
        assert aws.calls(layer) == 4, layer
    for layer in not_enabled:
        assert aws.calls(layer) == 1, layer
        params_file = templates.relative(aws.dirs[1] / f"{ENV}.yaml")  # a copy's path as it is: no path under the project
        said = f"note: {stack(layer)} is deployed and left as it is (not in enabled_layers of {params_file}: make destroy STACK={layer}"
        assert (said in aws.out) == (left_deployed is True), aws.out
        unread = f"  note: whether {stack(layer)} is still deployed could not be read (AccessDenied)"
        assert (unread in aws.out) == (left_deployed == "unreadable"), aws.out


def test_destroy_is_refused_while_a_downstream_stack_consumes_the_outputs(aws):
    aws.not_deployed("alarms")
    aws.not_deployed("release-alarms")
    aws.deployed("service")
    aws.not_deployed("waf")
    assert aws.run("destroy", "--stack", "alb", "--yes") == 1
    assert f"refusing to destroy {stack('alb')}: {stack('service')} still uses its outputs" in aws.err


def test_a_refused_destroy_names_the_layers_to_destroy_first_and_then_the_layer_itself(aws):
    aws.not_deployed("alarms")
    aws.not_deployed("release-alarms")
    aws.deployed("service")
    aws.not_deployed("waf")
    assert aws.run("destroy", "--stack", "alb", "--yes") == 1
    readers = [name for name in templates.destroy_order("alb") if name != "alb"]  # readers first; the layer itself last
    assert aws.err.endswith(
        f"make destroy ENV={ENV} STACK=<layer> for {', '.join(readers)}, in that order (one not deployed says so), then STACK=alb\n"
    ), aws.err


@pytest.mark.parametrize(
    "status, ends", [("ROLLBACK_FAILED", "the stack would end DELETE_FAILED"), ("DELETE_FAILED", "its deletion would fail again")]
)
def test_destroy_of_an_alb_stack_no_deploy_updates_names_the_command_that_turns_its_protection_off(aws, status, ends):
    # prod's first create failed with the load balancer made: the rollback could not delete it (protected), the stack
    # ended ROLLBACK_FAILED (or a deletion in the console, DELETE_FAILED), and destroy said to deploy DeletionProtection:
    # false, which the deploy refuses for that state ("resolve it in the CloudFormation console").
    arn = stubbed_aws.OUTPUT_VALUES["LoadBalancerArn"]
    for layer in ("alarms", "release-alarms", "service", "waf"):  # the layers that read alb's outputs: none deployed
        aws.not_deployed(layer)
    running = configuration(ENV, "alb")["Parameters"] | stubbed_aws.wired("alb") | stubbed_aws.deploy_time("alb")
    aws.deployed("alb", status=status, with_outputs=False, parameters=running | {"DeletionProtection": "true"})
    load_balancer = {
        "StackName": stack("alb"),
        "LogicalResourceId": "LoadBalancer",
        "PhysicalResourceId": arn,
        "ResourceType": "AWS::ElasticLoadBalancingV2::LoadBalancer",
        "Timestamp": NOW,
        "ResourceStatus": "DELETE_FAILED",
    }
    aws.cf.add_response("describe_stack_resources", {"StackResources": [load_balancer]}, {"StackName": stack("alb")})
    on = [{"Key": "deletion_protection.enabled", "Value": "true"}]
    aws.elbv2.add_response("describe_load_balancer_attributes", {"Attributes": on}, {"LoadBalancerArn": arn})
    assert aws.run("destroy", "--stack", "alb", "--yes") == 1, aws.out + aws.err
    said = f"refusing to destroy {stack('alb')}: its load balancer has deletion protection on, which CloudFormation cannot delete: {ends}."
    assert said in aws.err, aws.err
    assert f"its stack is {status}, which no deploy updates: turn it off by hand, " in aws.err, aws.err
    assert f"elbv2 modify-load-balancer-attributes --load-balancer-arn {arn} --attributes" in aws.err, aws.err
    assert "make deploy" not in aws.err and "nothing destroyed" in aws.err, aws.err


@pytest.mark.parametrize("status", ["UPDATE_COMPLETE", "ROLLBACK_FAILED"])
def test_destroy_is_refused_while_whether_the_load_balancer_has_deletion_protection_cannot_be_read(aws, status):
    # The stack's DeletionProtection parameter false, ELB's attribute refused (a role without DescribeLoadBalancerAttributes):
    # counted as off, destroy deleted every other layer and ended DELETE_FAILED at alb were it on.
    for layer in ("alarms", "release-alarms", "service", "waf"):  # the layers that read alb's outputs: none deployed
        aws.not_deployed(layer)
    running = configuration(ENV, "alb")["Parameters"] | stubbed_aws.wired("alb") | stubbed_aws.deploy_time("alb")
    aws.deployed("alb", status=status, parameters=running | {"DeletionProtection": "false"})
    aws.elbv2.add_client_error(
        "describe_load_balancer_attributes",
        "AccessDenied",
        "not authorized",
        403,
        expected_params={"LoadBalancerArn": stubbed_aws.OUTPUT_VALUES["LoadBalancerArn"]},
    )
    assert aws.run("destroy", "--stack", "alb", "--yes") == 1, aws.out + aws.err
    said = "its load balancer may have deletion protection on (whether it does could not be read: AccessDenied), which CloudFormation"
    assert f"refusing to destroy {stack('alb')}: {said}" in aws.err, aws.err
    assert "allow elasticloadbalancing:DescribeLoadBalancerAttributes and run again" in aws.err, aws.err
    assert "nothing destroyed" in aws.err and "deleted" not in aws.out, aws.out + aws.err


def test_a_destroy_refuses_an_untagged_stack_under_review_whose_change_set_carries_another_projects_tags(aws):
    # Whose an empty stack under review is, its change sets' tags say: one tagged, but not with this tool's tags (another
    # project's review of a stack of our name), was taken for ours, and the stack deleted with that change set.
    for layer in sorted(templates.downstream_of("cert-dns")):
        aws.not_deployed(layer)
    aws.deployed("cert-dns", status="REVIEW_IN_PROGRESS", protected=False, tags={})
    tags = stubbed_aws.configuration(ENV, "cert-dns")["Tags"] | {"Project": "another-project"}
    theirs = change_set("cert-dns") | {"ChangeSetName": "their-review", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
    theirs["ChangeSetId"] = theirs["ChangeSetId"].replace(cs_name("cert-dns"), "their-review")
    summary = {key: theirs[key] for key in ("ChangeSetName", "ChangeSetId", "StackId", "StackName", "ExecutionStatus", "Status")}
    aws.cf.add_response("list_change_sets", {"Summaries": [summary | {"CreationTime": NOW}]}, {"StackName": stack_id("cert-dns")})
    aws.cf.add_response("describe_change_set", theirs, {"ChangeSetName": theirs["ChangeSetId"]})
    assert aws.run("destroy", "--stack", "cert-dns", "--yes") == 1, aws.out + aws.err
    assert f"error: {stack('cert-dns')} exists, empty and under review, with change sets this tool did not make" in aws.err, aws.err
    assert "their-review; nothing changed." in aws.err and "deleted" not in aws.out, aws.out + aws.err


def service_destroy_requested(aws, resource_status="UPDATE_COMPLETE", alarms=None, deleted=True, protection="turned off"):
    """The stubs of `make destroy STACK=service` up to its DeleteStack (alarms: the DescribeStacks
    answer of the alarms stack, downstream of it; none by default); deleted False: up to the
    UpdateTerminationProtection before it. protection: "turned off" by that call, "refused" it
    (AccessDenied), or "already off" (no call)."""
    if alarms is None:
        aws.not_deployed("alarms")
    else:
        aws.cf.add_response("describe_stacks", alarms, {"StackName": stack("alarms")})
    aws.not_deployed("scaling")
    aws.deployed("service", protected=protection != "already off")
    aws.cf.add_response("get_template", {"TemplateBody": template("service"), "StagesAvailable": ["Original", "Processed"]})
    resources = [
        {
            "StackName": stack("service"),
            "LogicalResourceId": k,
            "PhysicalResourceId": v,
            "ResourceType": t,
            "Timestamp": NOW,
            "ResourceStatus": resource_status,
        }
        for k, v, t in [("LogGroup", "/ecs/startupwebapp", "AWS::Logs::LogGroup"), ("LogKey", "0b1c2d3e-key", "AWS::KMS::Key")]
    ]
    aws.cf.add_response("describe_stack_resources", {"StackResources": resources})
    if protection == "refused":
        aws.cf.add_client_error("update_termination_protection", "AccessDenied", "not allowed", 403)
        return
    if protection == "turned off":
        aws.cf.add_response(
            "update_termination_protection",
            {"StackId": stack_id("service")},
            {"StackName": stack_id("service"), "EnableTerminationProtection": False},  # by its id: the stack read and checked
        )
    if deleted:
        aws.cf.add_response(
            "delete_stack", {}, {"StackName": stack_id("service"), "ClientRequestToken": f"delete-{stack('service')}-20251125120000"}
        )


def destroyed_service(aws, resource_status="UPDATE_COMPLETE", alarms=None) -> str:
    """What `make destroy STACK=service YES=1` prints when its resources are in resource_status."""
    service_destroy_requested(aws, resource_status, alarms)
    trail = [
        event("service", stack("service"), "DELETE_IN_PROGRESS", 1, token=None),
        event("service", "LogGroup", "DELETE_SKIPPED", 2, "AWS::Logs::LogGroup", token=None),
    ]
    aws.poll(
        "service",
        stack_id("service"),
        described("service", "DELETE_COMPLETE"),
        *trail,
        event("service", stack("service"), "DELETE_COMPLETE", 9, token=None),
    )
    assert aws.run("destroy", "--stack", "service", "--yes") == 0, aws.err
    assert f"{stack('service')}: deleted" in aws.out
    return aws.out


def test_destroy_turns_protection_off_deletes_and_lists_what_is_retained(aws):
    out = destroyed_service(aws)
    before_asking = f"{stack('service')}: deleting it leaves in the account: LogGroup (AWS::Logs::LogGroup), LogKey (AWS::KMS::Key)"
    assert out.index(before_asking) < out.index(f"{stack('service')}: deleted")
    assert f"{stack('service')}: termination protection turned off, to delete it" in out
    assert "retained, not deleted with the stack: LogGroup (AWS::Logs::LogGroup) /ecs/startupwebapp" in out
    assert "retained, not deleted with the stack: LogKey (AWS::KMS::Key) 0b1c2d3e-key" in out
    assert out.splitlines()[-1] == (
        f"free all that the destroyed stack retained, and only that, once the data may go: make purge ENV={ENV} STACK=service "
        f"(lists it and asks first); until then make logs ENV={ENV} reads the service's kept logs while its log group is there"
    )


def test_a_destroy_whose_deletion_failed_names_the_resources_it_says_to_fix(aws):
    # (mutation audit) Deployer.delete: "fix the failed resources above" came with none above when the wait's failed events
    # went unsaid; the operator had to find them in the console.
    service_destroy_requested(aws)
    reason = "Cannot delete log group /ecs/startupwebapp: access denied"
    trail = [
        event("service", stack("service"), "DELETE_IN_PROGRESS", 1, token=None),
        event("service", "LogKey", "DELETE_FAILED", 5, "AWS::KMS::Key", "key policy refuses ScheduleKeyDeletion", token=None),
        event("service", stack("service"), "DELETE_FAILED", 9, reason=reason, token=None),
    ]
    aws.poll("service", stack_id("service"), described("service", "DELETE_FAILED", reason=reason), *trail)
    assert aws.run("destroy", "--stack", "service", "--yes") == 1, aws.err
    assert "  failed: LogKey (AWS::KMS::Key): key policy refuses ScheduleKeyDeletion" in aws.out + aws.err, aws.out + aws.err
    assert f"error: {stack('service')} ended DELETE_FAILED; fix the failed resources above, then destroy it again" in aws.err, aws.err


def test_destroy_deletes_the_relaxed_policy_mark_of_the_layer_it_destroys(aws):
    lock_taken(aws, "service", command="destroy", stack="service")
    service_destroy_requested(aws)
    trail = [event("service", stack("service"), "DELETE_IN_PROGRESS", 1, token=None)]
    trail.append(event("service", stack("service"), "DELETE_COMPLETE", 9, token=None))
    aws.poll("service", stack_id("service"), described("service", "DELETE_COMPLETE"), *trail)
    aws.ssm.add_response("delete_parameter", {}, {"Name": f"{RELAXED}/service"})  # its stack, and policy, gone
    lock_freed(aws, command="destroy", stack="service")
    assert aws.run("destroy", "--stack", "service", "--yes", locking=True) == 0, aws.err
    assert "may still be held" not in aws.err  # the lock's own calls came in their turn


def test_a_destroy_that_waits_out_a_delete_under_way_deletes_the_layers_mark(aws):
    # A destroy stopped after DeleteStack, run again while CloudFormation still deletes the stack.
    lock_taken(aws, "alarms", command="destroy", stack="alarms")
    aws.cf.add_response("describe_stacks", described("alarms", "DELETE_IN_PROGRESS"), {"StackName": stack("alarms")})
    aws.cf.add_response("get_template", {"TemplateBody": template("alarms"), "StagesAvailable": ["Original", "Processed"]})
    gone = [event("alarms", stack("alarms"), "DELETE_COMPLETE", 9, token=None)]
    aws.poll("alarms", stack_id("alarms"), described("alarms", "DELETE_COMPLETE"), *gone)
    aws.ssm.add_response("delete_parameter", {}, {"Name": f"{RELAXED}/alarms"})
    lock_freed(aws, command="destroy", stack="alarms")
    assert aws.run("destroy", "--stack", "alarms", "--yes", locking=True) == 0, aws.err
    assert f"{stack('alarms')} is DELETE_IN_PROGRESS: waiting for it to settle" in aws.out and "may still be held" not in aws.err


def test_relaxed_policy_marks_that_cannot_be_read_are_a_note_and_the_deploy_goes_on(aws):
    expected = {"Name": LOCK, "Value": our_lock(stack="cert-dns"), "Type": "String", "Overwrite": False, "Description": ANY}
    aws.ssm.add_response("put_parameter", {"Version": 1}, expected)
    aws.ssm.add_client_error("get_parameters_by_path", "AccessDeniedException", "no", 400, expected_params={"Path": RELAXED})
    aws.deployed("cert-dns")
    aws.empty_change_set("cert-dns")
    lock_freed(aws, stack="cert-dns")
    assert aws.run("deploy", "--stack", "cert-dns", locking=True) == 0, aws.err
    assert f"note: the relaxed-policy marks ({RELAXED}/) could not be read (AccessDeniedException)" in aws.out


def test_destroy_of_a_layer_without_a_stack_deletes_the_mark_its_stack_outlived(aws):
    lock_taken(aws, "alarms", command="destroy", stack="alarms")
    aws.not_deployed("alarms")
    aws.ssm.add_response("delete_parameter", {}, {"Name": f"{RELAXED}/alarms"})
    lock_freed(aws, command="destroy", stack="alarms")
    assert aws.run("destroy", "--stack", "alarms", "--yes", locking=True) == 0, aws.err
    assert f"{stack('alarms')} is not deployed: nothing to destroy" in aws.out and "may still be held" not in aws.err


@pytest.mark.parametrize("changed", [{"Environment": "staging"}, {"Layer": "alb"}, {"Project": "startupwebapp2"}, {"Layer": None}])
def test_a_stack_with_our_project_tag_but_not_all_our_tags_is_not_ours(aws, changed):
    # A stack of this environment's cert-dns name made for another environment or layer (copied
    # tags, a renamed stack): deploy, destroy and the others leave it alone.
    tags = configuration(ENV, "cert-dns")["Tags"] | changed
    found = described("cert-dns", tags={key: value for key, value in tags.items() if value is not None})
    aws.cf.add_response("describe_stacks", found, {"StackName": stack("cert-dns")})
    assert aws.run("deploy", "--stack", "cert-dns", "--yes") == 1
    assert aws.err.startswith(f"error: {stack('cert-dns')} exists but was not made by this tool"), aws.err


def test_status_says_our_stack_waiting_for_review_is_not_deployed_and_someone_elses_is_not_ours(aws):
    status_reads(aws)
    for layer in templates.layer_order():
        if layer == "alarms":
            theirs = described("alarms", "REVIEW_IN_PROGRESS", tags={"Project": "otherproj"})
            aws.cf.add_response("describe_stacks", theirs, {"StackName": stack("alarms")})
        elif layer == "cert-dns":
            aws.deployed(layer, status="REVIEW_IN_PROGRESS", protected=False)
        else:
            aws.not_deployed(layer)
    aws.listed_change_sets("cert-dns")  # named too: make execute of a wrong name points here (someone else's: not listed)
    assert aws.run("status") == 0, aws.err
    (theirs,) = [line for line in aws.out.splitlines() if line.startswith(stack("alarms"))]
    (ours,) = [line for line in aws.out.splitlines() if line.startswith(stack("cert-dns"))]
    waiting = "(not deployed: its first create waits in a change set left for review (make changeset), or a run stopped"
    assert "(not made by this tool" in theirs and waiting not in theirs
    assert waiting in ours and f"make deploy STACK=cert-dns ENV={ENV} creates it)" in ours
    assert f"(change sets that could still run: {cs_name('cert-dns')} (made " in ours, ours


@pytest.mark.parametrize("listed", ["none left", "unreadable", "CREATE_PENDING", "CREATE_IN_PROGRESS"])
def test_status_of_an_empty_stack_under_review_with_no_change_set_left_says_destroy_removes_it(aws, listed):
    # (helper R2) its change set discarded (delete-change-set, as status prints): status said it waited in a change set.
    # (R4) One CloudFormation still makes is UNAVAILABLE too ("still creating it": API_ChangeSetSummary.html), like a
    # failed one, while a make changeset or deploy makes the one it would run: not none left.
    status_reads(aws)
    for layer in templates.layer_order():
        if layer == "cert-dns":
            aws.deployed(layer, status="REVIEW_IN_PROGRESS", protected=False)
        else:
            aws.not_deployed(layer)
    if listed == "unreadable":
        aws.cf.add_client_error("list_change_sets", "AccessDenied", "no", 403, expected_params={"StackName": stack("cert-dns")})
    else:
        status = "FAILED" if listed == "none left" else listed
        summary = {"StackName": stack("cert-dns"), "ChangeSetName": cs_name("cert-dns"), "ExecutionStatus": "UNAVAILABLE", "Status": status}
        aws.cf.add_response("list_change_sets", {"Summaries": [summary]}, {"StackName": stack("cert-dns")})
    assert aws.run("status") == 0, aws.err
    (line,) = [line for line in aws.out.splitlines() if line.startswith(stack("cert-dns"))]
    empty = "(not deployed: an empty stack a first create's change set made, with none left that could run"
    if listed == "none left":
        assert f"{empty}; make deploy STACK=cert-dns ENV={ENV} creates it, make destroy STACK=cert-dns ENV={ENV} removes it)" in line
    else:  # not known, or one on its way: the line as before, and no make destroy
        assert empty not in line and "waits in a change set left for review" in line and "make destroy" not in line, line
    if listed == "unreadable":
        assert f"change sets of {stack('cert-dns')} could not be listed (AccessDenied)" in aws.out, aws.out
    elif listed != "none left":
        assert f"(change sets that could still run: {cs_name('cert-dns')} (being made)" in line, line


def test_a_command_that_only_reads_with_stdout_closed_from_the_start_stops_with_141(aws, monkeypatch):
    monkeypatch.setattr("sys.stdout", None)  # `make status >&-`: Python starts without a stdout
    err = io.StringIO()
    argv = ["status", "--env", ENV, "--output-dir", str(OUTPUT), "--params-dir", str(PARAMS)]
    for layer in templates.layer_order():  # the header, the first write, comes once the stacks are read
        aws.not_deployed(layer)
    assert deploy.main(argv, clients=aws.clients.__getitem__, out=None, err=err, interactive=False) == 141
    assert err.getvalue() == ""


def test_a_stack_of_a_downstream_layers_name_that_is_not_ours_does_not_hold_a_destroy_back(aws):
    someone_elses = described("alarms", tags={"Owner": "another team"})
    assert f"{stack('service')}: deleted" in destroyed_service(aws, alarms=someone_elses)


def test_an_empty_downstream_stack_under_review_does_not_hold_a_destroy_back(aws):
    # alarms' stack made by a CREATE change set never executed (REVIEW_IN_PROGRESS) holds no resource and reads no output
    assert f"{stack('service')}: deleted" in destroyed_service(aws, alarms=described("alarms", status="REVIEW_IN_PROGRESS"))


def test_destroy_of_a_stack_whose_rollback_deleted_its_resources_lists_none_as_retained(aws):
    """A failed first create's rollback deleted what it made (RetainExceptOnCreate): nothing to free, nor, before the
    question, said to be left (it said "deleting it leaves in the account: LogGroup ..., LogKey ...")."""
    out = destroyed_service(aws, resource_status="DELETE_COMPLETE")
    assert "retained, not deleted with the stack" not in out and "make purge" not in out, out
    assert "leaves in the account" not in out, out


def test_destroy_of_a_stack_still_rolling_back_reads_what_it_retains_again_once_it_has_settled(aws):
    # Read before the question, mid-rollback, the log group and its key were still the stack's; the rollback of the failed
    # first create then deleted them (RetainExceptOnCreate): what the destroy says it retained is read after the wait.
    aws.not_deployed("alarms")
    aws.not_deployed("scaling")
    aws.deployed("service", status="ROLLBACK_IN_PROGRESS", protected=False)
    aws.cf.add_response("get_template", {"TemplateBody": template("service"), "StagesAvailable": ["Original", "Processed"]})

    def resources(status):
        kept = [("LogGroup", "/ecs/startupwebapp", "AWS::Logs::LogGroup"), ("LogKey", "0b1c2d3e-key", "AWS::KMS::Key")]
        return {
            "StackResources": [
                {"LogicalResourceId": k, "PhysicalResourceId": v, "ResourceType": t, "Timestamp": NOW, "ResourceStatus": status}
                for k, v, t in kept
            ]
        }

    aws.cf.add_response("describe_stack_resources", resources("CREATE_COMPLETE"))
    settled = event("service", stack("service"), "ROLLBACK_COMPLETE", 3, token=None)
    aws.poll("service", stack_id("service"), described("service", "ROLLBACK_COMPLETE", protected=False), settled)
    aws.cf.add_response("describe_stack_resources", resources("DELETE_COMPLETE"))
    aws.stack_deleted("service")
    assert aws.run("destroy", "--stack", "service", "--yes") == 0, aws.err
    said = (
        f"{stack('service')}: deleting it leaves in the account: LogGroup (AWS::Logs::LogGroup), LogKey (AWS::KMS::Key) "
        "(as it is now: it is ROLLBACK_IN_PROGRESS, which may change that first)"
    )
    assert said in aws.out.splitlines() and f"{stack('service')}: deleted" in aws.out, aws.out
    assert "retained, not deleted with the stack" not in aws.out and "make purge" not in aws.out, aws.out


def test_the_clients_read_a_json_apis_times_in_utc_whatever_the_machines_zone(monkeypatch):
    """botocore reads a JSON API's epoch times (KMS, ECS, Logs) into the machine's zone; printed with
    %Z, make purge said a key's deletion date in +14 on a machine there, every other time in UTC."""
    monkeypatch.setenv("TZ", "XYZ-14")  # UTC+14, a POSIX zone that needs no zone database
    time.tzset()
    try:
        core = botocore_session()
        operation = core.get_service_model("kms").operation_model("DescribeKey")
        parser = core.get_component("response_parser_factory").create_parser(operation.metadata["protocol"])
        body = json.dumps({"KeyMetadata": {"KeyId": "k", "DeletionDate": 1765341360}}).encode()
        parsed = parser.parse({"status_code": 200, "headers": {}, "body": body}, operation.output_shape)
        assert f"{parsed['KeyMetadata']['DeletionDate']:%Y-%m-%d %H:%M %Z}" == "2025-12-10 04:36 UTC"
        local = botocore.parsers.create_parser("json").parse({"status_code": 200, "headers": {}, "body": body}, operation.output_shape)
        assert local["KeyMetadata"]["DeletionDate"].utcoffset() == timedelta(hours=14)  # what botocore does by itself
    finally:
        monkeypatch.undo()
        time.tzset()


def test_the_purge_line_names_the_environment_after_a_whole_destroy_and_each_layer_otherwise():
    """A destroy that stopped half way leaves stacks that a purge of the whole environment refuses."""
    from scripts.deploy import purge

    said = []
    deployer = types.SimpleNamespace(env=ENV, say=said.append)
    purge.say_purge(deployer, ["service", "alb"], each=False)
    purge.say_purge(deployer, ["service", "alb"], each=True)
    purge.say_purge(deployer, [], each=True)
    purge.say_purge(deployer, ["alb"], each=True)  # no service: no logs make logs reads
    logs = f"; until then make logs ENV={ENV} reads the service's kept logs while its log group is there"
    assert said == [
        f"free all that the destroyed stacks retained, and only that, once the data may go: make purge ENV={ENV} (lists it and asks first)"
        + logs,
        "free all that the destroyed stacks retained, and only that, once the data may go: "
        f"make purge ENV={ENV} STACK=service; make purge ENV={ENV} STACK=alb (lists it and asks first)" + logs,
        f"free all that the destroyed stack retained, and only that, once the data may go: make purge ENV={ENV} STACK=alb "
        "(lists it and asks first)",
    ]


@pytest.mark.parametrize("status", ["DELETE_COMPLETE", "DELETE_FAILED"])
def test_a_delete_that_has_ended_is_not_said_to_run_on(status):
    # interrupted() may get a final status its events did not confirm yet: "a delete cannot be stopped; it ends ..." then
    # spoke of a delete that had ended (a mutation audit)
    lines = deploy.text.interrupted(stack("alb"), ENV, status, CLI)
    assert f"  stop it:           nothing: it is {status}, no operation runs" in lines, lines


@pytest.mark.parametrize(
    ("operation", "stop"),
    [
        ("update", f"{CLI} cloudformation cancel-update-stack --stack-name {stack('cert-dns')}"),
        ("delete", "nothing: a delete cannot be stopped"),
        (None, "nothing: it is CREATE_COMPLETE, no operation runs"),
    ],
)
def test_ctrl_c_before_the_stack_reads_as_this_runs_operation_names_that_operations_stop(aws, operation, stop):
    """A stack created once and never updated still reads CREATE_COMPLETE at the first poll of an
    update: Ctrl-C then must never advise deleting the stack, as a create's stop would."""
    aws.deployed("cert-dns", status="CREATE_COMPLETE")  # the run's first read, before polling
    aws.poll("cert-dns", stack_id("cert-dns"), described("cert-dns", "CREATE_COMPLETE"))

    def interrupt(seconds):
        raise KeyboardInterrupt

    deployer = deploy.Deployer(aws.clients.__getitem__, ENV, out=io.StringIO(), err=io.StringIO(), sleep=interrupt, now=lambda: NOW)
    with pytest.raises(deploy.Failure) as stopped:
        deployer.wait_for_stack(stack("cert-dns"), "a-token", NOW, operation=operation)
    assert f"  stop it:           {stop}" in str(stopped.value), str(stopped.value)
    assert "delete-stack" not in str(stopped.value)


def test_interrupt_while_waiting_leaves_the_stack_and_says_how_to_follow_or_cancel(aws):
    aws.caller()  # the account a YES=1 run prints with its question, before it read any stack
    layer = "cert-dns"
    cert_dns_created(aws, "CREATE_IN_PROGRESS", event(layer, stack(layer), "CREATE_IN_PROGRESS", 1))

    def interrupt(seconds):
        raise KeyboardInterrupt

    assert aws.run("deploy", "--stack", layer, "--yes", sleep=interrupt) == 130
    assert "nothing was cancelled" in aws.err and f"make status ENV={ENV}" in aws.err
    assert f"describe-stack-events --stack-name {stack_id(layer)})" in aws.err, aws.err
    assert f"{CLI} cloudformation delete-stack --stack-name {stack(layer)}   (a create cannot be cancelled)" in aws.err
    # and how the run goes on, once the operation it left is followed (a new user's walkthrough: how to follow and
    # stop the stack's operation was said, the layers not reached were named, and nothing said to run the deploy again)
    going_on = deploy.commands.GOING_ON_AFTER_CTRL_C["deploy"]
    assert aws.err.splitlines()[-1] == f"  {going_on}", aws.err


def test_a_create_that_failed_on_a_taken_name_is_recognised_by_its_handler_error_code_or_its_words(aws):
    deployer = deploy.Deployer(aws.clients.__getitem__, ENV, out=io.StringIO(), err=io.StringIO())
    layer = deploy.load_layer(ENV, "service", OUTPUT)
    for reason, recognised in [
        ('Resource handler returned message: "Log group aws-waf-logs-x exists" (HandlerErrorCode: AlreadyExists)', True),
        ("Resource of type 'AWS::Logs::LogGroup' with identifier 'aws-waf-logs-x' already exists.", True),
        ("Already exists: aws-waf-logs-x", True),  # (mutation audit) the words in any case
        ("Invalid request provided: the rule is malformed", False),
    ]:
        deployer.events = [{"ResourceStatus": "CREATE_FAILED", "ResourceStatusReason": reason}]
        hint = deployer.taken_name_hint(layer)
        assert (hint is not None) == recognised, reason
        assert not hint or f"make destroy STACK=service ENV={ENV} && make purge STACK=service ENV={ENV}" in hint


@pytest.mark.parametrize(
    "stopped",
    ["protection call refused", "at the protection call", "DeleteStack refused", "DeleteStack sent", "already off, DeleteStack refused"],
)
def test_a_destroy_stopped_after_turning_termination_protection_off_says_how_to_turn_it_back_on(aws, stopped):
    # It said only how to finish the destroy: a Ctrl-C there often means "keep it", and the stack stayed unprotected.
    # And where the call that turns it off was refused, that it is off; where its answer was lost, it may be.
    protection = {"protection call refused": "refused", "already off, DeleteStack refused": "already off"}.get(stopped, "turned off")
    service_destroy_requested(aws, deleted=stopped == "DeleteStack sent", protection=protection)
    if stopped == "at the protection call":
        interrupted_after(aws, "UpdateTerminationProtection")  # the answer lost to the Ctrl-C: it may have landed
    elif stopped.endswith("DeleteStack refused"):
        aws.cf.add_client_error("delete_stack", "ValidationError", "Stack is in UPDATE_IN_PROGRESS state and can not be deleted", 400)
    else:
        interrupted_after(aws, "DeleteStack")
    interrupted = stopped in ("at the protection call", "DeleteStack sent")
    assert aws.run("destroy", "--stack", "service", "--yes") == (130 if interrupted else 1), aws.err
    off = f"{stack('service')} has its termination protection off, turned off by this run to delete it"
    maybe = f"{stack('service')} may have its termination protection off, asked off by this run to delete it"
    back_on = f": make deploy STACK=service ENV={ENV} turns it back on, if it is to stay"
    said = [line for line in aws.out.splitlines() if "termination protection off" in line]
    assert (
        said
        == {
            "protection call refused": [],
            "at the protection call": [f"note: {maybe}{back_on}"],
            "DeleteStack refused": [f"note: {off}{back_on}"],
            "DeleteStack sent": [f"note: if it is still there, {off}{back_on}"],
            "already off, DeleteStack refused": [],  # not this run's doing
        }[stopped]
    ), aws.out


def test_a_destroy_off_a_terminal_without_yes_destroys_nothing_and_says_so_in_one_line(aws):
    aws.not_deployed("alarms")
    aws.not_deployed("scaling")
    aws.deployed("service")
    aws.cf.add_response("get_template", {"TemplateBody": template("service")})  # what it keeps, said before the question
    aws.cf.add_response("describe_stack_resources", {"StackResources": []})  # and whether the stack holds it
    assert aws.run("destroy", "--stack", "service") == 1
    assert aws.err == "error: no terminal to ask on and no YES=1 (--yes): nothing destroyed\n", aws.err  # YES=1 named in the why


@pytest.mark.parametrize("existing", ["", "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"])
def test_a_destroy_of_the_ci_layer_says_before_asking_that_it_deletes_the_oidc_provider_it_made(aws, existing):
    # one per account, and no DeletionPolicy: another project's CI that trusts it stops with it
    if "ci" not in PROD_LAYERS:
        pytest.skip(f"params/{ENV}.yaml does not enable the ci layer")
    for layer in sorted(templates.downstream_of("ci")):
        aws.not_deployed(layer)
    values = configuration(ENV, "ci")["Parameters"] | {"ExistingOidcProviderArn": existing}
    aws.cf.add_response("describe_stacks", described("ci", parameters=values), {"StackName": stack("ci")})
    aws.cf.add_response("get_template", {"TemplateBody": template("ci")})  # what it keeps, said before the question
    assert aws.run("destroy", "--stack", "ci") == 1
    provider = outputs("ci")["OidcProviderArn"]
    said = f"{stack('ci')}: deleting it deletes {provider}, the account's GitHub OIDC provider, which it made (one per account): "
    assert (said in aws.out) == (existing == ""), aws.out  # one it was given stays
    assert aws.err == "error: no terminal to ask on and no YES=1 (--yes): nothing destroyed\n", aws.err


def test_a_destroy_of_an_empty_stack_under_review_deletes_it_without_waiting_for_it_to_settle(aws):
    # REVIEW_IN_PROGRESS ends in _IN_PROGRESS, but no operation runs on it: a wait for it to settle would never end.
    aws.not_deployed("alarms")
    aws.not_deployed("scaling")
    aws.deployed("service", status="REVIEW_IN_PROGRESS", protected=False, with_outputs=False)
    aws.cf.add_response("list_change_sets", {"Summaries": []}, {"StackName": stack("service")})
    aws.stack_deleted("service")
    assert aws.run("destroy", "--stack", "service", "--yes") == 0, aws.err
    assert "waiting for it to settle" not in aws.out and f"{stack('service')}: deleted" in aws.out, aws.out


@pytest.mark.parametrize("left", [[], ["someones-review"]])
def test_a_destroy_of_a_stack_under_review_names_the_change_sets_its_deletion_deletes_and_only_those(aws, left):
    aws.not_deployed("alarms")
    aws.not_deployed("scaling")
    aws.deployed("service", status="REVIEW_IN_PROGRESS", protected=False, with_outputs=False)
    summaries = [{"StackName": stack("service"), "ChangeSetName": name, "ExecutionStatus": "AVAILABLE"} for name in left]
    aws.cf.add_response("list_change_sets", {"Summaries": summaries}, {"StackName": stack("service")})
    aws.stack_deleted("service")
    assert aws.run("destroy", "--stack", "service", "--yes") == 0, aws.err
    said = [line for line in aws.out.splitlines() if "deleting it deletes the change sets" in line]
    assert said == [
        f"{stack('service')}: deleting it deletes the change sets left on it for review or by a stopped run: {name}" for name in left
    ], aws.out


def test_interrupt_while_a_destroy_waits_says_a_delete_cannot_be_stopped(aws):
    # The first poll still reads the stack as it was before the DeleteStack (a read can lag).
    service_destroy_requested(aws)
    aws.poll("service", stack_id("service"), described("service", "UPDATE_COMPLETE"))

    def interrupt(seconds):
        raise KeyboardInterrupt

    assert aws.run("destroy", "--stack", "service", "--yes", sleep=interrupt) == 130
    assert f"CloudFormation carries on with {stack('service')} (DELETE_IN_PROGRESS)" in aws.err
    assert "not destroyed yet" not in aws.out, aws.out  # a destroy of one layer: make destroy ENV= alone would take every layer
    assert "stop it:           nothing: a delete cannot be stopped" in aws.err and "create cannot be cancelled" not in aws.err
    assert "to go on" not in aws.err and "same command again" not in aws.err, aws.err  # a destroy says its own (below)


def test_a_destroy_of_every_layer_stopped_in_a_deletion_says_what_is_left_and_how_to_finish_and_purge(aws):
    # The service alone deployed: the layers before it say they are not deployed; Ctrl-C in its deletion's wait.
    order = list(reversed(templates.layer_order()))  # readers first
    for layer in order:
        if layer != "service":
            aws.not_deployed(layer)
        else:
            aws.deployed("service")
    aws.cf.add_response("get_template", {"TemplateBody": template("service"), "StagesAvailable": ["Original", "Processed"]})
    resources = [
        {"StackName": stack("service"), "LogicalResourceId": "LogGroup", "PhysicalResourceId": "/ecs/startupwebapp"}
        | {"ResourceType": "AWS::Logs::LogGroup", "Timestamp": NOW, "ResourceStatus": "UPDATE_COMPLETE"}
    ]
    aws.cf.add_response("describe_stack_resources", {"StackResources": resources})
    aws.cf.add_response(
        "update_termination_protection",
        {"StackId": stack_id("service")},
        {"StackName": stack_id("service"), "EnableTerminationProtection": False},  # by its id: the stack read and checked
    )
    token = f"delete-{stack('service')}-{NOW:%Y%m%d%H%M%S}"
    aws.cf.add_response("delete_stack", {}, {"StackName": stack_id("service"), "ClientRequestToken": token})
    aws.poll("service", stack_id("service"), described("service", "UPDATE_COMPLETE"))

    def interrupt(seconds):
        raise KeyboardInterrupt

    assert aws.run("destroy", "--yes", sleep=interrupt) == 130
    named = [layer for layer in order if layer in PROD_LAYERS]  # one not enabled, and not deployed, is not mentioned
    before, left = named[: named.index("service")], named[named.index("service") :]
    for layer in before:  # enabled, so named, though not deployed
        assert f"{stack(layer)}: not deployed" in aws.out.splitlines(), aws.out
    assert (
        f"not destroyed yet: {', '.join(left)} (the run stopped in service's deletion: its stack may be gone or going already); "
        f"make destroy ENV={ENV} destroys what is left, in the same order"
    ) in aws.out.splitlines(), aws.out
    assert f"make purge ENV={ENV} STACK=service" in aws.out, aws.out  # each layer's: the others are not destroyed yet


def deleted_before(aws, *layers):
    """ListStacks' deleted stacks (DELETE_COMPLETE) of these layers: what purge reads to tell a destroyed layer."""
    summaries = [
        {"StackId": stack_id(layer), "StackName": stack(layer), "CreationTime": NOW, "DeletionTime": NOW, "StackStatus": "DELETE_COMPLETE"}
        for layer in layers
    ]
    aws.cf.add_response("list_stacks", {"StackSummaries": summaries}, {"StackStatusFilter": ["DELETE_COMPLETE"]})


def test_a_purge_of_every_layer_while_stacks_exist_names_them_in_the_order_destroy_takes_them(aws):
    order = list(reversed(templates.layer_order()))  # readers first, as destroy takes them
    for layer in order:
        aws.deployed(layer, status="DELETE_FAILED") if layer in ("service", "alb") else aws.not_deployed(layer)
    deleted_before(aws, "alarms")
    assert aws.run("purge", "--yes") == 1
    assert aws.err == (
        f"error: refusing to purge: {stack('service')} is DELETE_FAILED; {stack('alb')} is DELETE_FAILED. "
        f"purge deletes only what deleted stacks left behind: finish the destroy first (make destroy ENV={ENV}), or purge the destroyed layers "
        "one by one with STACK=<layer>; nothing purged\n"
    ), aws.err


def test_a_purge_of_every_layer_with_stacks_there_leaves_them_and_what_they_hold(aws):
    # (helper T10) deployed again since a destroy, or never destroyed: no refusal, a note naming them, what each holds
    # read (held_by), and only what deleted stacks retained is purged (none here)
    there = [layer for layer in reversed(templates.layer_order()) if layer in ("service", "alb")]
    for layer in reversed(templates.layer_order()):
        aws.deployed(layer) if layer in there else aws.not_deployed(layer)
    for layer in there:
        aws.cf.add_response("list_stack_resources", {"StackResourceSummaries": []}, {"StackName": stack_id(layer)})
    deleted_before(aws)
    assert aws.run("purge", "--yes") == 0, aws.err
    assert aws.out.splitlines() == [
        f"note: {', '.join(stack(layer) for layer in there)} are there now and left as they are: purge takes what deleted "
        "stacks of their names retained, never what a stack holds",
        f"nothing to purge in {ENV}",
    ], aws.out


@pytest.mark.parametrize("deleted", [["alarms"], []])
def test_a_purge_of_every_layer_with_one_stack_left_offers_the_destroyed_layers_one_by_one(aws, deleted):
    # (mutation audit) the offer hung on "some layer of the run has no stack left", not on how many stacks are left; and a
    # layer with no stack that was never made (no deleted stack of its name) is none to purge one by one
    for layer in reversed(templates.layer_order()):
        aws.deployed(layer, status="DELETE_FAILED") if layer == "service" else aws.not_deployed(layer)
    deleted_before(aws, *deleted)
    assert aws.run("purge", "--yes") == 1
    offer = ", or purge the destroyed layers one by one with STACK=<layer>" if deleted else ""
    assert aws.err == (
        f"error: refusing to purge: {stack('service')} is DELETE_FAILED. purge deletes only what deleted stacks left "
        f"behind: finish the destroy first (make destroy ENV={ENV}){offer}; nothing purged\n"
    ), aws.err


def test_a_purge_refused_whose_deleted_stacks_cannot_be_listed_is_refused_all_the_same(aws):
    # the offer is a hint: a ListStacks refused leaves the refusal as it is, not an AWS error in its place
    for layer in reversed(templates.layer_order()):
        aws.deployed(layer, status="DELETE_FAILED") if layer == "service" else aws.not_deployed(layer)
    aws.cf.add_client_error("list_stacks", "AccessDenied", "not authorized", 403)
    assert aws.run("purge", "--yes") == 1
    assert aws.err.endswith(f"finish the destroy first (make destroy ENV={ENV}); nothing purged\n"), aws.err


def test_a_purge_refused_stops_reading_deleted_stacks_at_the_first_of_the_run(aws):
    # the offer needs one deleted stack of the run, but destroyed_among read every page of ListStacks (DELETE_COMPLETE),
    # 90 days of every project's deleted stacks in the account, 100 a page, each page up to 5 attempts, before the refusal
    # was printed. Only the first page is answered here: a second page asked for is a call the test queued nothing for.
    for layer in reversed(templates.layer_order()):
        aws.deployed(layer, status="DELETE_FAILED") if layer == "service" else aws.not_deployed(layer)
    others = [
        {
            "StackId": f"arn:aws:cloudformation:us-east-1:{ACCOUNT}:stack/other-{i}/x",
            "StackName": f"other-{i}",
            "CreationTime": NOW,
            "StackStatus": "DELETE_COMPLETE",
        }
        for i in range(99)
    ]
    ours = {
        "StackId": stack_id("alarms"),
        "StackName": stack("alarms"),
        "CreationTime": NOW,
        "DeletionTime": NOW,
        "StackStatus": "DELETE_COMPLETE",
    }
    aws.cf.add_response(
        "list_stacks", {"StackSummaries": [ours, *others], "NextToken": "page2"}, {"StackStatusFilter": ["DELETE_COMPLETE"]}
    )
    assert aws.run("purge", "--yes") == 1
    assert aws.err.endswith(f"(make destroy ENV={ENV}), or purge the destroyed layers one by one with STACK=<layer>; nothing purged\n"), (
        aws.err
    )


def other_projects_deleted(start, count):
    return [
        {
            "StackId": f"arn:aws:cloudformation:us-east-1:{ACCOUNT}:stack/other-{i}/x",
            "StackName": f"other-{i}",
            "CreationTime": NOW,
            "StackStatus": "DELETE_COMPLETE",
        }
        for i in range(start, start + count)
    ]


def test_a_purge_refused_whose_deleted_stacks_page_lacks_its_summaries_is_refused_all_the_same(aws):
    # destroyed_among: "One that cannot be read offers nothing: the refusal stands without it". A ListStacks page
    # without StackSummaries (optional in the API's model) raised KeyError past `except aws.AWS_ERRORS`, and the
    # refusal was replaced by the unreadable-answer error
    for layer in reversed(templates.layer_order()):
        aws.deployed(layer, status="DELETE_FAILED") if layer == "service" else aws.not_deployed(layer)
    aws.cf.add_response("list_stacks", {}, {"StackStatusFilter": ["DELETE_COMPLETE"]})
    assert aws.run("purge", "--yes") == 1
    assert aws.err.endswith(f"finish the destroy first (make destroy ENV={ENV}); nothing purged\n"), aws.err
    assert "Traceback" not in aws.err


@pytest.mark.parametrize("tokens", [["A", "A"], ["A", "B", "A"]])
def test_a_purge_refused_whose_deleted_stacks_repeat_a_next_token_is_refused_all_the_same(aws, tokens):
    for layer in reversed(templates.layer_order()):
        aws.deployed(layer, status="DELETE_FAILED") if layer == "service" else aws.not_deployed(layer)
    for i, token in enumerate(tokens):
        expected = {"StackStatusFilter": ["DELETE_COMPLETE"], **({"NextToken": tokens[i - 1]} if i else {})}
        aws.cf.add_response("list_stacks", {"StackSummaries": other_projects_deleted(i * 10, 10), "NextToken": token}, expected)
    assert aws.run("purge", "--yes") == 1
    assert aws.err.endswith(f"finish the destroy first (make destroy ENV={ENV}); nothing purged\n"), aws.err


@pytest.mark.parametrize("code", ["AccessDenied", "Throttling"])
def test_a_purge_refused_whose_second_page_of_deleted_stacks_fails_is_refused_all_the_same(aws, code):
    for layer in reversed(templates.layer_order()):
        aws.deployed(layer, status="DELETE_FAILED") if layer == "service" else aws.not_deployed(layer)
    aws.cf.add_response(
        "list_stacks", {"StackSummaries": other_projects_deleted(0, 100), "NextToken": "page2"}, {"StackStatusFilter": ["DELETE_COMPLETE"]}
    )
    aws.cf.add_client_error("list_stacks", code, "no", 403 if code == "AccessDenied" else 400)
    assert aws.run("purge", "--yes") == 1
    assert aws.err.endswith(f"finish the destroy first (make destroy ENV={ENV}); nothing purged\n"), aws.err


def test_a_purge_refused_finds_the_deleted_stack_of_the_run_on_a_later_page(aws):
    for layer in reversed(templates.layer_order()):
        aws.deployed(layer, status="DELETE_FAILED") if layer == "service" else aws.not_deployed(layer)
    aws.cf.add_response(
        "list_stacks", {"StackSummaries": other_projects_deleted(0, 100), "NextToken": "page2"}, {"StackStatusFilter": ["DELETE_COMPLETE"]}
    )
    ours = {"StackId": stack_id("alarms"), "StackName": stack("alarms"), "CreationTime": NOW, "StackStatus": "DELETE_COMPLETE"}
    aws.cf.add_response("list_stacks", {"StackSummaries": [ours]}, {"StackStatusFilter": ["DELETE_COMPLETE"], "NextToken": "page2"})
    assert aws.run("purge", "--yes") == 1
    assert aws.err.endswith(f"(make destroy ENV={ENV}), or purge the destroyed layers one by one with STACK=<layer>; nothing purged\n"), (
        aws.err
    )


@pytest.mark.parametrize("status", ["DELETE_FAILED", "DELETE_IN_PROGRESS"])
def test_a_purge_of_one_layer_refused_for_its_stack_offers_no_purge_one_by_one(aws, status):
    # "or purge the destroyed layers one by one with STACK=<layer>" was said to make purge STACK=alarms, one layer already
    # and not destroyed (a purge of every layer says it while some layer has no stack: the test above). A stack being
    # deleted, or whose deletion failed, is refused: what it retains is listed once its destroy is over.
    aws.deployed("alarms", status=status)
    assert aws.run("purge", "--yes", "--stack", "alarms") == 1
    assert aws.err == (
        f"error: refusing to purge: {stack('alarms')} is {status}. purge deletes only what deleted stacks left behind: "
        f"finish the destroy first (make destroy ENV={ENV} STACK=alarms); nothing purged\n"
    ), aws.err


@pytest.mark.parametrize(
    "pages, value",
    [
        # ListResourceTags pages by NextMarker (purge._inspect_key): a mark on the second page leaves the key as on the first
        (
            [[{"TagKey": "Project", "TagValue": templates.PROJECT}], [{"TagKey": purge.PURGE_MARK, "TagValue": "2026-11-30T10:00:00Z"}]],
            "2026-11-30T10:00:00Z",
        ),
        # Helper T7 (mutation audit of _inspect_key): KMS allows a tag of an empty value; the mark is the tag's key, whatever
        # its value. With a mark of no value taken as none, every test passed and the key was scheduled.
        ([[{"TagKey": purge.PURGE_MARK, "TagValue": ""}]], ""),
    ],
)
def test_a_key_with_purges_mark_on_any_page_of_its_tags_whatever_its_value_is_left(pages, value):
    client, stubber, item = retained_key_described("CUSTOMER")
    for n, tags in enumerate(pages):
        more = {"Truncated": True, "NextMarker": f"m{n + 1}"} if n + 1 < len(pages) else {"Truncated": False}
        stubber.add_response("list_resource_tags", {"Tags": tags} | more, {"KeyId": item.physical_id} | ({"Marker": f"m{n}"} if n else {}))
    with stubber:
        action, note = purge.INSPECT[item.kind](lambda service: client, item)
    stubber.assert_no_pending_responses()
    assert action is None and note.startswith(f"left: make purge scheduled its deletion ({purge.PURGE_MARK} {value})"), note


def test_what_a_stack_there_now_holds_is_what_it_did_not_delete_or_fail_to_create():
    # purge.held_by: a rollback's deleted resources, and a create that failed (a name taken: its physical id may be that
    # name), are not the stack's; what it holds is
    client = SESSION.client("cloudformation", config=deploy.CONFIG)
    stubber = Stubber(client)
    rows = [
        ("LogGroup", "/ecs/taken", "CREATE_FAILED"),
        ("LogKey", "k-gone", "DELETE_COMPLETE"),
        ("TaskRole", "r-1", "CREATE_COMPLETE"),
        ("Certificate", "arn:c-1", "UPDATE_COMPLETE"),
    ]
    summaries = [
        {"LogicalResourceId": logical, "PhysicalResourceId": physical, "ResourceType": "AWS::X::Y", "LastUpdatedTimestamp": NOW}
        | {"ResourceStatus": status}
        for logical, physical, status in rows
    ]
    stubber.add_response("list_stack_resources", {"StackResourceSummaries": summaries}, {"StackName": stack_id("service")})
    deployer = types.SimpleNamespace(cf=client)
    with stubber:
        held = purge.held_by(deployer, {stack("service"): {"StackId": stack_id("service")}})
    stubber.assert_no_pending_responses()
    assert held == {"r-1": stack("service"), "arn:c-1": stack("service")}


def test_rollback_complete_is_explained_and_recreated_only_with_recreate(aws):
    aws.deployed(
        "cert-dns", status="ROLLBACK_COMPLETE", protected=False, reason="The following resource(s) failed to create: [Certificate]."
    )
    assert aws.run("deploy", "--stack", "cert-dns", "--yes") == 1
    assert aws.err == (
        f"error: {stack('cert-dns')} is ROLLBACK_COMPLETE (The following resource(s) failed to create: [Certificate].): its first "
        f"create failed and CloudFormation cannot update it; fix the cause, then make deploy STACK=cert-dns ENV={ENV} RECREATE=1, "
        "which deletes it and creates it again\n"
    )

    aws.deployed("cert-dns", status="ROLLBACK_COMPLETE", protected=False)
    aws.stack_deleted("cert-dns")
    aws.change_set("cert-dns", "CREATE", CERT_CHANGES, left=True)
    assert aws.run("changeset", "--stack", "cert-dns", "--recreate") == 0, aws.err
    # it recreated the stack: not told that RECREATE=1 did nothing (said only where no stack was a failed first create)
    assert "RECREATE=1 recreated nothing" not in aws.out, aws.out


@pytest.mark.parametrize(
    "status", ["UPDATE_ROLLBACK_FAILED", "UPDATE_ROLLBACK_IN_PROGRESS", "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS"]
)
def test_recover_continues_the_rollback_or_waits_for_the_one_going_on(aws, status):
    # UPDATE_ROLLBACK_IN_PROGRESS: a recover whose wait stopped, run again as its message says ("a rerun
    # first waits for the stack to settle"); it used to be refused as not UPDATE_ROLLBACK_FAILED. Its wait may
    # also stop in the rollback's clean-up, the status after that (both were refused once).
    aws.deployed("alb", status=status)
    token = f"recover-{stack('alb')}-20251125120000" if status == "UPDATE_ROLLBACK_FAILED" else "recover-earlier-run"
    if status == "UPDATE_ROLLBACK_FAILED":
        aws.cf.add_response("continue_update_rollback", {}, {"StackName": stack("alb"), "ClientRequestToken": token})
    aws.poll(
        "alb",
        stack_id("alb"),
        described("alb", "UPDATE_ROLLBACK_COMPLETE"),
        event("alb", stack("alb"), "UPDATE_ROLLBACK_COMPLETE", 20, token=token),
    )
    assert aws.run("recover", "--stack", "alb", "--yes") == 0, aws.err
    assert "UPDATE_ROLLBACK_COMPLETE: back on its previous template" in aws.out
    assert (f"{stack('alb')} is {status}: waiting for it to settle" in aws.out) == (status != "UPDATE_ROLLBACK_FAILED")


@pytest.mark.parametrize("tty", [False, True])
def test_recover_continues_a_rollback_only_once_confirmed(aws, monkeypatch, tty):
    monkeypatch.delenv("AWS_ENDPOINT_URL")  # on AWS: the question names the account alone, no emulator
    aws.deployed("alb", status="UPDATE_ROLLBACK_FAILED")
    # no continue_update_rollback queued (and no GetCallerIdentity: the question's account is the stack's): one sent fails the test
    assert aws.run("recover", "--stack", "alb", tty=tty, answer="n") == 1
    assert f"{stack('alb')} is UPDATE_ROLLBACK_FAILED: continuing its rollback puts it back on its previous template" in aws.out
    if tty:
        assert aws.questions == [f"account {ACCOUNT}, {REGION}: continue the rollback of {stack('alb')}? [y/N] "]
        assert aws.err == "error: not confirmed: nothing sent; the stack stays UPDATE_ROLLBACK_FAILED\n", aws.err
    else:
        assert aws.err == (
            "error: no terminal to ask on and no YES=1 (--yes): nothing sent; the stack stays UPDATE_ROLLBACK_FAILED; "
            "to continue without asking, rerun with YES=1 (--yes)\n"
        ), aws.err


def test_a_recover_that_fails_again_names_only_the_resources_continue_update_rollback_can_skip(aws):
    # ResourcesToSkip takes "only resources that are in the UPDATE_FAILED state because a rollback
    # failed": not the stack itself, and each once.
    # https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_ContinueUpdateRollback.html
    aws.deployed("alb", status="UPDATE_ROLLBACK_FAILED")
    token = f"recover-{stack('alb')}-20251125120000"
    aws.cf.add_response("continue_update_rollback", {}, {"StackName": stack("alb"), "ClientRequestToken": token})
    target_group = "AWS::ElasticLoadBalancingV2::TargetGroup"
    aws.poll(
        "alb",
        stack_id("alb"),
        described("alb", "UPDATE_ROLLBACK_FAILED"),
        event("alb", "TargetGroup", "UPDATE_FAILED", 10, kind=target_group, reason="rollback failed", token=token),
        event("alb", "TargetGroup", "UPDATE_FAILED", 12, kind=target_group, reason="rollback failed again", token=token),
        event("alb", "OldRule", "DELETE_FAILED", 14, kind="AWS::ElasticLoadBalancingV2::ListenerRule", reason="in use", token=token),
        event("alb", stack("alb"), "UPDATE_FAILED", 18, reason="as the sandbox names a failure it cannot place", token=token),
        event("alb", stack("alb"), "UPDATE_ROLLBACK_FAILED", 20, reason="resources failed to roll back", token=token),
    )
    assert aws.run("recover", "--stack", "alb", "--yes") == 1
    assert "  failed: TargetGroup (AWS::ElasticLoadBalancingV2::TargetGroup): rollback failed" in aws.out
    assert aws.err.splitlines()[-1].endswith(f"continue-update-rollback --stack-name {stack('alb')} --resources-to-skip TargetGroup")


@pytest.mark.parametrize("domain, code", [(None, 0), ("example.org", 1)])
def test_diff_against_deployed_template_and_parameters(aws, domain, code):
    parameters = configuration(ENV, "cert-dns")["Parameters"] | ({"DomainName": domain} if domain else {})
    aws.deployed("cert-dns", parameters=parameters)
    aws.cf.add_response(
        "get_template", {"TemplateBody": template("cert-dns")}, {"StackName": stack("cert-dns"), "TemplateStage": "Original"}
    )
    aws.stack_policy("cert-dns")
    if domain:  # another domain: the zone is looked at, as the deploy does (guards.refuse_undelegated_domain)
        aws.route53.add_response("get_hosted_zone", hosted_zone(), {"Id": ZONE})
    assert aws.run("diff", "--stack", "cert-dns") == code, aws.err
    if domain:
        assert (
            "-parameter DomainName=example.org" in aws.out
            and f"+parameter DomainName={configuration(ENV, 'cert-dns')['Parameters']['DomainName']}" in aws.out
        )
    else:
        assert "same as deployed" in aws.out


@pytest.mark.parametrize("version_quoted", [True, False])
def test_a_template_deployed_as_yaml_is_read_short_forms_included(aws, version_quoted):
    """A stack updated with YAML (from the console, say) gives its template back as text; boto3 parses
    only JSON. cfn-flip's YAML, with !Ref and !Sub, is the same template: nothing to deploy. Written
    by hand, AWSTemplateFormatVersion is often unquoted, a date to YAML 1.1."""
    import cfn_flip

    yaml_body = cfn_flip.to_yaml(template("cert-dns"))
    assert "!Ref" in yaml_body or "!Sub" in yaml_body  # the short forms are what a plain YAML reader refuses
    if not version_quoted:
        assert "AWSTemplateFormatVersion: '2010-09-09'" in yaml_body
        yaml_body = yaml_body.replace("AWSTemplateFormatVersion: '2010-09-09'", "AWSTemplateFormatVersion: 2010-09-09")
    aws.deployed("cert-dns")
    aws.cf.add_response("get_template", {"TemplateBody": yaml_body}, {"StackName": stack("cert-dns"), "TemplateStage": "Original"})
    aws.stack_policy("cert-dns")
    assert aws.run("diff", "--stack", "cert-dns") == 0, aws.err
    assert "same as deployed" in aws.out


# The second is YAML, of a string; the third a mapping with a key JSON cannot write (a date).
@pytest.mark.parametrize("body", ["{not a template", "just text", "Resources:\n  2010-09-09: {Type: AWS::SNS::Topic}\n"])
def test_a_deployed_template_that_is_no_json_or_yaml_mapping_is_one_error_line(aws, body):
    aws.deployed("cert-dns")
    aws.cf.add_response("get_template", {"TemplateBody": body}, {"StackName": stack("cert-dns"), "TemplateStage": "Original"})
    assert aws.run("diff", "--stack", "cert-dns") == 2  # make diff: 1 is "differs"
    assert aws.err.strip().splitlines()[-1] == (
        f"error: {stack('cert-dns')}'s template, as CloudFormation gives it, is no JSON or YAML mapping this tool reads: {body!r}; "
        f"see it in the console, or: aws cloudformation get-template --stack-name {stack('cert-dns')}"
    )


@pytest.mark.parametrize("resources_too", [False, True])
def test_a_template_differing_only_in_metadata_and_descriptions_is_not_a_difference_a_deploy_could_apply(aws, resources_too):
    # CloudFormation takes the Metadata section (and parameter declarations, which change no resource)
    # only with a resource change: alone, a deploy says "no changes", so make diff must not ask for one.
    deployed = json.loads(template("cert-dns"))
    deployed.pop("Metadata", None)
    deployed["Metadata"] = {"Old": "metadata"}
    deployed["Description"] = "an older description of the template"
    for parameter in deployed["Parameters"].values():
        parameter["Description"] = "an older description"
        parameter["AllowedPattern"] = ".*"  # an input whose pattern changed (EcrRepositoryName's did)
    if resources_too:
        deployed["Resources"]["Legacy"] = {"Type": "AWS::SNS::Topic"}
    aws.deployed("cert-dns")
    aws.cf.add_response(
        "get_template", {"TemplateBody": json.dumps(deployed)}, {"StackName": stack("cert-dns"), "TemplateStage": "Original"}
    )
    aws.stack_policy("cert-dns")
    assert aws.run("diff", "--stack", "cert-dns") == (1 if resources_too else 0), aws.err
    if resources_too:
        assert '-    "Legacy": {' in aws.out and '+      "Description"' in aws.out  # the whole difference shown
    else:
        assert aws.out.strip().endswith(
            "same as deployed, but for its Metadata, Description or parameter declarations, which CloudFormation "
            "takes only with a change to the resources: the next deploy that changes one carries them"
        )


def test_diff_says_a_deploy_that_gives_a_resource_another_type_fails_at_its_change_set(aws):
    # CloudFormation fails such a change set ("Update of resource type is not permitted"), which the sandbox takes: make
    # diff said "make deploy applies it" (a type changed under a logical id is neither added nor removed).
    deployed = json.loads(template("cert-dns"))
    logical_id, resource = next(iter(deployed["Resources"].items()))
    new_type, resource["Type"] = resource["Type"], "AWS::ACMPCA::Certificate"
    aws.deployed("cert-dns")
    aws.cf.add_response(
        "get_template", {"TemplateBody": json.dumps(deployed)}, {"StackName": stack("cert-dns"), "TemplateStage": "Original"}
    )
    aws.upstream_deployed("cert-dns")
    aws.stack_policy("cert-dns")
    aws.deployed("service")  # read for the image its deploy again keeps (Deployer.redeploy_tag)
    assert aws.run("diff", "--stack", "cert-dns") == 1, aws.err
    image = deploy_text.parameter_values(described("service")["Stacks"][0])["ImageTag"]
    said = (
        f"  note: make deploy fails at its change set: {guards.TYPE_CHANGE_WAY}: {logical_id} (AWS::ACMPCA::Certificate to {new_type}); "
        f"destroy it and the layers that read its outputs: make destroy ENV={ENV} STACK=<layer> for "
    )
    lines = aws.out.splitlines()
    assert any(line.startswith(said) and line.endswith(f"make deploy ENV={ENV} TAG={image}") for line in lines), aws.out
    assert lines[-1] == "a deploy would be refused: cert-dns (see the note above)" and "applies it" not in aws.out, aws.out


def test_a_change_set_failed_for_a_resource_given_another_type_says_the_way_on(aws):
    aws.deployed("cert-dns")
    aws.cf.add_response(
        "create_change_set",
        {"Id": change_set("cert-dns")["ChangeSetId"], "StackId": stack_id("cert-dns")},
        create_params("cert-dns", "UPDATE"),
    )
    reason = f"{guards.TYPE_CHANGE_REFUSED}. The new template modifies resource type of the following resources: [Certificate]"
    failed = change_set("cert-dns", "FAILED", reason=reason)
    aws.cf.add_response("describe_change_set", failed, {"StackName": stack("cert-dns"), "ChangeSetName": cs_name("cert-dns")})
    aws.deployed("service")  # read for the image its deploy again keeps (Deployer.redeploy_tag)
    aws.cf.add_response("delete_change_set", {}, {"StackName": stack("cert-dns"), "ChangeSetName": cs_name("cert-dns")})
    assert aws.run("deploy", "--stack", "cert-dns") == 1
    image = deploy_text.parameter_values(described("service")["Stacks"][0])["ImageTag"]
    said = f"error: change set {cs_name('cert-dns')} failed: {reason} ({guards.TYPE_CHANGE_WAY}: destroy it and the layers that read its outputs: "
    assert said in aws.err and aws.err.rstrip().endswith(f"make deploy ENV={ENV} TAG={image})"), aws.err


ALLOW_ALL = {"Statement": [{"Effect": "Allow", "Action": "Update:*", "Principal": "*", "Resource": "*"}]}
DENY_ALL = {"Statement": [{"Effect": "Deny", "Action": "Update:*", "Principal": "*", "Resource": "*"}]}


@pytest.mark.parametrize(
    ("deployed", "relaxed", "said"),
    [
        (None, False, "none is set"),
        (ALLOW_ALL, False, "another is set, not by this tool"),  # allow-all set by hand
        (ALLOW_ALL, True, None),  # left relaxed by a stopped --allow-replace run, which the next deploy puts back
    ],
)
def test_diff_names_a_stack_policy_set_outside_the_tool_and_how_to_set_it_back(aws, deployed, relaxed, said):
    # A policy set by hand or removed went unseen: a deploy with nothing else to change leaves it.
    layer = "cert-dns"
    aws.deployed(layer)
    aws.cf.add_response("get_template", {"TemplateBody": template(layer)}, {"StackName": stack(layer), "TemplateStage": "Original"})
    aws.stack_policy(layer, deployed)
    if deployed == ALLOW_ALL:
        stubbed_aws.relaxed_mark_read(aws, *([layer] if relaxed else []))
    assert aws.run("diff", "--stack", layer) == 1, aws.err
    policy = json.dumps(configuration(ENV, layer)["StackPolicy"])
    if relaxed:  # a deploy puts it back: counted among what make deploy applies
        assert aws.out.splitlines() == [
            f"{stack(layer)}: its stack policy is relaxed (every update allowed) by a stopped --allow-replace run: "
            f"the next deploy of the layer puts it back (make deploy STACK={layer} ENV={ENV})",
            f"differs from what {ENV} runs: {layer} (make deploy STACK={layer} ENV={ENV} applies it)",
        ]
        return
    assert aws.out.splitlines() == [
        f"{stack(layer)}: its stack policy is not the one {templates.relative(OUTPUT / ENV / f'{layer}.json')} gives it: {said}. A deploy sets it "
        "only with a change to the stack; to set it now:",
        f"  {CLI} cloudformation set-stack-policy --stack-name {stack(layer)} --stack-policy-body '{policy}'",
        f"only the stack policy differs: {layer} (set it as said above)",
    ]


def test_diff_reads_the_relaxed_policy_marks_once_for_every_layer_whose_policy_is_relaxed(aws):
    # (mutation audit) a read not remembered asked GetParametersByPath again for each such layer (a note each, unanswered)
    from scripts.deploy import diff

    made = deploy.Deployer(aws.clients.__getitem__, ENV, out=io.StringIO(), err=io.StringIO())
    layers = [deploy.load_layer(ENV, name, OUTPUT) for name in ("cert-dns", "alb")]
    assert all(layer.policy for layer in layers)
    stubbed_aws.relaxed_mark_read(aws, "cert-dns", "alb")  # one read: no second answer is queued
    for layer in layers:
        aws.stack_policy(layer.name, ALLOW_ALL)
        said, by_deploy = diff.policy_difference(made, layer)
        assert by_deploy and said[0].startswith(f"{layer.stack}: its stack policy is relaxed (every update allowed)"), said
    aws.ssm.assert_no_pending_responses()
    assert "could not be read" not in made.out.getvalue(), made.out.getvalue()


def test_diff_of_a_layer_that_differs_and_has_a_policy_set_by_hand_counts_it_among_what_a_deploy_applies(aws):
    # the policy's difference is "only the stack policy" only while nothing else differs: the deploy's change carries it
    layer = "cert-dns"
    deployed = json.loads(template(layer))
    deployed["Resources"]["Legacy"] = {"Type": "AWS::SNS::Topic"}  # a resource the deploy removes
    aws.deployed(layer)
    aws.cf.add_response("get_template", {"TemplateBody": json.dumps(deployed)}, {"StackName": stack(layer), "TemplateStage": "Original"})
    aws.stack_policy(layer, DENY_ALL)
    assert aws.run("diff", "--stack", layer) == 1, aws.err
    lines = aws.out.splitlines()
    assert '-    "Legacy": {' in lines and f"  {CLI} cloudformation set-stack-policy --stack-name {stack(layer)} " in aws.out, aws.out
    assert lines[-1] == f"differs from what {ENV} runs: {layer} (make deploy STACK={layer} ENV={ENV} applies it)", aws.out
    assert "only the stack policy differs" not in aws.out, aws.out


@pytest.mark.parametrize("differs", [False, True])
def test_diff_says_the_drift_a_deploy_with_nothing_to_change_leaves_only_of_a_layer_as_deployed(aws, differs):
    # A layer as deployed: a deploy changes nothing and leaves what the last drift check found, said as make deploy
    # says it. One that differs is deployed with a change set (whose own warning names the drift): not said to be left.
    layer = "cert-dns"
    found = described(layer)
    found["Stacks"][0]["DriftInformation"] = {"StackDriftStatus": "DRIFTED", "LastCheckTimestamp": NOW}
    aws.cf.add_response("describe_stacks", found, {"StackName": stack(layer)})
    deployed = json.loads(template(layer))
    if differs:
        deployed["Resources"]["Legacy"] = {"Type": "AWS::SNS::Topic"}  # a resource the deploy removes
    aws.cf.add_response("get_template", {"TemplateBody": json.dumps(deployed)}, {"StackName": stack(layer), "TemplateStage": "Original"})
    aws.stack_policy(layer)
    assert aws.run("diff", "--stack", layer) == (1 if differs else 0), aws.err
    left = (
        f"  note: {stack(layer)} drifted at its last drift check, and a deploy with nothing to change leaves what was changed "
        f"outside CloudFormation as it is: make drift STACK={layer} ENV={ENV} says what, and whether it still is"
    )
    if differs:
        assert left not in aws.out.splitlines(), aws.out
    else:
        assert aws.out.splitlines()[:2] == [f"{stack(layer)}: same as deployed", left], aws.out


@pytest.mark.parametrize("domain", ["params'", "another"])
def test_diff_says_a_stack_of_our_name_is_someone_elses_and_reads_nothing_more_of_it(aws, domain):
    # It ended "differs ... (make deploy applies it)", which deploy then refused; no template, policy
    # or parameter of it is ours to compare (no GetTemplate nor GetStackPolicy queued: a call would fail).
    # Another domain in it: the deploy stops at the stack before its look at the zone, and so does make
    # diff's (no GetHostedZone queued: the look's note would be in the output).
    layer = "cert-dns"
    other = "example.org" if DOMAIN != "example.org" else "example.net"
    parameters = configuration(ENV, layer)["Parameters"] | ({"DomainName": other} if domain == "another" else {})
    theirs = described(layer, tags={}, parameters=parameters)
    aws.cf.add_response("describe_stacks", theirs, {"StackName": stack(layer)})
    assert aws.run("diff", "--stack", layer) == 1, aws.out + aws.err
    assert aws.out == (
        f"{stack(layer)}: not made by this tool (it lacks the tags its stacks carry: Project={templates.PROJECT}, Environment={ENV}, "
        f"Layer={layer}): deploy and destroy refuse it while it is there\n"
    )


@pytest.mark.parametrize(
    ("status", "way_out"),
    [
        (
            "ROLLBACK_COMPLETE",
            f"its first create failed and CloudFormation cannot update it; fix the cause, then make deploy STACK=alarms ENV={ENV} RECREATE=1",
        ),
        ("UPDATE_ROLLBACK_IN_PROGRESS", f"wait for it to settle (make status ENV={ENV})"),
        ("UPDATE_ROLLBACK_FAILED", "a rollback could not finish and the stack is stuck until it does"),
        (  # no layer reads the alarms': destroyed alone, then deployed again
            "DELETE_FAILED",
            f"its deletion stopped half way (make events STACK=alarms ENV={ENV} names the resources that failed); free them, "
            f"then make destroy STACK=alarms ENV={ENV}, then make deploy STACK=alarms ENV={ENV}",
        ),
    ],
)
def test_diff_of_a_stack_in_no_settled_state_compares_nothing_and_says_what_to_do(aws, status, way_out):
    # A failed first create holds no resource, yet its template matched output/: "same as deployed", exit 0, for a CI gate to trust.
    aws.deployed("alarms", status=status, protected=False, with_outputs=False)  # no GetTemplate nor GetStackPolicy queued: none is read
    aws.upstream_deployed("alarms")  # read by the deploy's looks before it meets the stack's state, and so by make diff's
    assert aws.run("diff", "--stack", "alarms") == 1, aws.out + aws.err
    assert "note: " not in aws.out, aws.out  # the looks pass, and the deploy stops at the state diff names
    lines = aws.out.splitlines()
    assert lines[0].startswith(f"{stack('alarms')}: {status}: not compared; {way_out}"), aws.out
    assert lines[-1] == "not compared, in no settled state: alarms (see above)" and "applies it" not in aws.out, aws.out


@pytest.mark.parametrize("protected", ["false", "true", "by hand", "unreadable", "gone"])
def test_diff_says_a_deploy_needs_allow_replace_where_it_replaces_what_holds_data_or_a_name(aws, protected):
    # A new NamePrefix replaces the load balancer and target groups (their Name is create-only): make diff said
    # "make deploy applies it", and the deploy refused the change set without ALLOW_REPLACE=1, and with it
    # where the load balancer's deletion protection is on (refuse_deleting_a_protected_load_balancer).
    running = configuration(ENV, "alb")["Parameters"] | stubbed_aws.wired("alb") | stubbed_aws.deploy_time("alb")
    running |= {"NamePrefix": f"{running['NamePrefix']}-old", "DeletionProtection": "true" if protected == "true" else "false"}
    aws.diff_reads("alb", parameters=running)
    if protected == "unreadable":  # taken as on: read as off, a destroy deleted every other layer first
        aws.elbv2.add_client_error("describe_load_balancer_attributes", "AccessDenied", "not authorized", 403)
    elif protected == "gone":  # deleted by hand: nothing protects it, and nothing is refused
        aws.elbv2.add_client_error("describe_load_balancer_attributes", "LoadBalancerNotFound", "not found", 400)
    elif protected != "true":  # the parameter false: ELB's own attribute says (turned on by hand: "by hand")
        on = [{"Key": "deletion_protection.enabled", "Value": "true" if protected == "by hand" else "false"}]
        aws.elbv2.add_response(
            "describe_load_balancer_attributes", {"Attributes": on}, {"LoadBalancerArn": stubbed_aws.OUTPUT_VALUES["LoadBalancerArn"]}
        )
    assert aws.run("diff", "--stack", "alb") == 1, aws.err
    (note,) = [line for line in aws.out.splitlines() if "ALLOW_REPLACE=1: it replaces" in line]
    for kind in ("AWS::ElasticLoadBalancingV2::LoadBalancer", "AWS::ElasticLoadBalancingV2::TargetGroup"):
        assert f"({kind}, replaced: its Name changed)" in note, note
    named = re.findall(r"(\w+) \((AWS::[\w:]+), ", note.partition("others point at: ")[2])
    assert named and all(kind in templates.STATEFUL_TYPES for _, kind in named), named  # not a security group, say
    last = aws.out.splitlines()[-1]
    if protected == "true":
        assert "  note: make deploy refuses this even with ALLOW_REPLACE=1: LoadBalancer has deletion protection on" in aws.out, aws.out
        assert "first deploy DeletionProtection: false alone" in aws.out, aws.out  # the way on
        # then the change with protection on again, which protects the new load balancer
        assert "; then this change with DeletionProtection: true, which protects the new load balancer" in aws.out, aws.out
        assert last == "a deploy would be refused: alb (see the note above); alb then needs ALLOW_REPLACE=1 too", aws.out
        assert "applies it" not in aws.out, aws.out
    elif protected == "by hand":  # a deploy of DeletionProtection false changes nothing: turned off as it was turned on
        assert "  note: make deploy refuses this even with ALLOW_REPLACE=1: LoadBalancer has deletion protection on" in aws.out, aws.out
        assert (
            "it was turned on outside this tool (the stack's DeletionProtection parameter is false): turn it off as it was turned on, "
            f"aws --region {stubbed_aws.REGION} --endpoint-url {NOWHERE} elbv2 modify-load-balancer-attributes --load-balancer-arn {stubbed_aws.OUTPUT_VALUES['LoadBalancerArn']} "
            "--attributes Key=deletion_protection.enabled,Value=false; then this change"
        ) in aws.out, aws.out
        assert "then this change with DeletionProtection: true" not in aws.out, aws.out  # params say false: it was turned on by hand
        assert last == "a deploy would be refused: alb (see the note above); alb then needs ALLOW_REPLACE=1 too", aws.out
    elif protected == "unreadable":
        assert (
            "  note: make deploy refuses this even with ALLOW_REPLACE=1: LoadBalancer may have deletion protection on (whether it does "
            "could not be read: AccessDenied), which CloudFormation cannot delete; allow elasticloadbalancing:DescribeLoadBalancerAttributes "
            "and run again, or, if it may go, turn it off: "
        ) in aws.out, aws.out
        assert last == "a deploy would be refused: alb (see the note above); alb then needs ALLOW_REPLACE=1 too", aws.out
    else:
        assert last.endswith(
            f"(make deploy STACK=alb ENV={ENV} ALLOW_REPLACE=1 applies it; alb replacing or removing what its note above names)"
        )


@pytest.mark.parametrize("code", ["AccessDeniedException", "ThrottlingException"])
def test_a_diff_whose_new_log_group_name_cannot_be_checked_says_so_among_the_layers_lines(aws, code):
    # The note was printed at once, above the layer's diff: in a diff of every layer, under the layer before it.
    given = configuration(ENV, "service")["Parameters"]
    running = service_parameters(given["ImageTag"]) | {"NamePrefix": f"{given['NamePrefix']}-old"}
    aws.diff_reads("service", parameters=running)
    for _ in range(2):  # the name's owner, then whether it is there at all
        aws.logs.add_client_error("describe_log_groups", code, "no", 400)
    assert aws.run("diff", "--stack", "service") == 1, aws.err
    lines = aws.out.splitlines()
    (note,) = [n for n, line in enumerate(lines) if line.startswith("  note: could not check that log group ")]
    assert lines[0].startswith("--- deployed ") and note > 0 and code in lines[note], aws.out


def test_diff_of_every_layer_names_allow_replace_for_the_layers_that_replace_and_the_refused_ones_apart(aws, monkeypatch):
    # Two refused layers that both replace, a deployable one that replaces, one that does not: the command carries
    # ALLOW_REPLACE=1, and the refusal names only the refused ones, with the plural.
    from scripts.deploy import commands, diff

    refused_ones, deployable_ones = PROD_LAYERS[:2], PROD_LAYERS[2:4]
    outcome = {name: diff.Compared(True, diff.REFUSED, replaces=True) for name in refused_ones}
    outcome |= {deployable_ones[0]: diff.Compared(True, None, replaces=True), deployable_ones[1]: diff.Compared(True)}
    monkeypatch.setattr(
        diff,
        "compare",
        lambda deployer, layer, image_tag=None, reads_changing=False, wired_ahead=None: outcome.get(layer.name, diff.Compared(False)),
    )
    monkeypatch.setattr(commands.Commands, "say_creates_refused_ahead", lambda self: False)
    monkeypatch.setattr(commands.Commands, "say_looks_refused_ahead", lambda self, compared: False)
    monkeypatch.setattr(commands.Commands, "say_deployed_but_not_enabled", lambda self, compared=None: None)
    assert aws.run("diff") == 1, aws.err
    command, refusal = aws.out.splitlines()[-2:]
    assert command.startswith(
        f"differs from what {ENV} runs: {', '.join(deployable_ones)} (make deploy ENV={ENV} ALLOW_REPLACE=1 applies it"
    ), command
    assert (
        refusal
        == f"a deploy would be refused: {', '.join(refused_ones)} (see their notes above); {', '.join(refused_ones)} then need ALLOW_REPLACE=1 too"
    )


@pytest.mark.parametrize("takes", [True, False])
def test_a_layer_not_enabled_is_said_to_keep_only_the_changed_outputs_its_deployed_stack_takes(takes):
    # A stack deployed from an older template that takes no such parameter keeps nothing of the output: no line says it does.
    from scripts.deploy import commands, diff

    layer = next(name for name in templates.OPTIONAL_LAYERS if templates.wired_into(name))
    parameter, (upstream, output) = next(iter(templates.wired_into(layer).items()))
    values = {"Other": "x"} | ({parameter: "old"} if takes else {})
    found = {
        "StackName": stack(layer),
        "StackStatus": "UPDATE_COMPLETE",
        "Parameters": [{"ParameterKey": k, "ParameterValue": v} for k, v in values.items()],
    }
    said = []
    deployer = types.SimpleNamespace(
        describe=lambda name, refuse_foreign=True: found if name == stack(layer) else None,
        foreign=lambda found: False,
        say=lambda *lines: said.extend(lines),
    )
    environment = types.SimpleNamespace(layers=[], path=PARAMS / f"{ENV}.yaml")
    run = commands.Commands(deployer, types.SimpleNamespace(env=ENV, stack=None), [], environment)
    run.say_deployed_but_not_enabled({upstream: diff.Compared(True, outputs_changed=frozenset({output}))})
    assert said[0].startswith(f"note: {stack(layer)} is deployed and left as it is "), said
    kept = f"  it reads {output}, which the deploy changes, and keeps the old values"
    assert said[1:] == ([kept] if takes else []), said


def test_diff_of_every_layer_with_a_tag_the_service_runs_names_no_tag_in_the_deploy_of_what_differs(aws, monkeypatch):
    # TAG= the image the service runs already: the service does not differ, and the deploy of the layers that do needs no
    # TAG= (the command copied would carry it for nothing)
    from scripts.deploy import commands, diff

    differing = next(name for name in PROD_LAYERS if name != "service")
    monkeypatch.setattr(
        diff,
        "compare",
        lambda deployer, layer, image_tag=None, reads_changing=False, wired_ahead=None: diff.Compared(layer.name == differing),
    )
    monkeypatch.setattr(commands.Commands, "say_creates_refused_ahead", lambda self: False)
    monkeypatch.setattr(commands.Commands, "say_looks_refused_ahead", lambda self, compared: False)
    monkeypatch.setattr(commands.Commands, "say_deployed_but_not_enabled", lambda self, compared=None: None)
    assert aws.run("diff", "--image-tag", "v9") == 1, aws.err
    assert aws.out.splitlines()[-1] == f"differs from what {ENV} runs: {differing} (make deploy ENV={ENV} applies it)", aws.out


def test_diff_looks_for_the_names_of_log_groups_new_or_renamed_only(monkeypatch):
    # A log group new in the template (no stateful replacement) whose name is held was "applies it"; one without
    # Properties (CloudFormation names it) was a KeyError once every differing layer was looked at.
    def group(name=None):
        return {"Type": "AWS::Logs::LogGroup"} | ({"Properties": {"LogGroupName": name}} if name else {})

    deployed = {"Resources": {"Same": group("same"), "Renamed": group("old"), "Bare": group()}}
    now = {"Resources": {"Same": group("same"), "Renamed": group("new"), "Bare": group(), "Added": group("added"), "AlsoBare": group()}}
    looked = []
    monkeypatch.setattr(
        guards, "taken_log_group", lambda deployer, stack, stack_id, logical_id, name, say=None: looked.append(name) or f"{name} held"
    )
    deployer_ = types.SimpleNamespace(cf=types.SimpleNamespace(meta=types.SimpleNamespace(region_name=REGION)))
    layer = types.SimpleNamespace(template=json.dumps(now), stack=stack("alarms"))
    found = {"StackId": stack_id("alarms"), "Parameters": []}
    assert guards.log_groups_taken_ahead(deployer_, layer, found, deployed, {}) == ["added held", "new held"]
    assert looked == ["added", "new"]


def test_diff_looks_for_no_name_where_the_update_leaves_a_log_group_to_cloudformation_to_name(monkeypatch):
    # (mutation audit) A log group whose LogGroupName the new template leaves out has no name of ours to be taken: no
    # look, though its name changes (the one CloudFormation gives it is new).
    named, bare = {"Type": "AWS::Logs::LogGroup", "Properties": {"LogGroupName": "named"}}, {"Type": "AWS::Logs::LogGroup"}
    looked = []
    monkeypatch.setattr(
        guards, "taken_log_group", lambda deployer, stack, stack_id, logical_id, name, say=None: looked.append(name) or f"{name} held"
    )
    deployer_ = types.SimpleNamespace(cf=types.SimpleNamespace(meta=types.SimpleNamespace(region_name=REGION)))
    layer = types.SimpleNamespace(template=json.dumps({"Resources": {"Group": bare}}), stack=stack("alarms"))
    found = {"StackId": stack_id("alarms"), "Parameters": []}
    assert guards.log_groups_taken_ahead(deployer_, layer, found, {"Resources": {"Group": named}}, {}) == []
    assert looked == []


def test_the_stateful_resources_an_update_removes_are_those_gone_from_the_template_or_whose_condition_turns_false():
    # The look-ahead of make diff: a stateful resource taken out of the template, or made only under a condition the new
    # values make false, is removed; one whose condition is decided at deploy time, or that stays, is not named.
    def group(name, condition=None):
        return {"Type": "AWS::Logs::LogGroup", "Properties": {"LogGroupName": name}} | ({"Condition": condition} if condition else {})

    conditions = {
        "Named": {"Fn::Equals": [{"Ref": "NamePrefix"}, "kept"]},
        "Unknown": {"Fn::Equals": [{"Ref": "AWS::AccountId"}, "123456789012"]},
    }
    deployed = {
        "Conditions": conditions,
        "Resources": {"Stays": group("a"), "Taken": group("b"), "Off": group("c", "Named"), "Maybe": group("d", "Unknown")},
    }
    now = {"Conditions": conditions, "Resources": {"Stays": group("a"), "Off": group("c", "Named"), "Maybe": group("d", "Unknown")}}
    bare = {"Type": "AWS::Logs::LogGroup"}  # no Properties at all (CloudFormation names it): valid, and kept as it is
    deployed["Resources"]["Bare"] = now["Resources"]["Bare"] = bare
    deployer_ = types.SimpleNamespace(cf=types.SimpleNamespace(meta=types.SimpleNamespace(region_name=REGION)))
    layer = types.SimpleNamespace(template=json.dumps(now))
    found = guards.stateful_replacements_ahead(deployer_, layer, deployed, {"NamePrefix": "kept"}, {"NamePrefix": "other"})
    assert found == [("Off", "AWS::Logs::LogGroup", "removed"), ("Taken", "AWS::Logs::LogGroup", "removed")]


def test_a_stateful_resource_whose_condition_was_false_in_the_deployed_stack_is_not_said_to_be_removed():
    # Never made (its condition false with the values deployed): neither removed nor replaced by the update.
    group = {"Type": "AWS::Logs::LogGroup", "Properties": {"LogGroupName": "never"}, "Condition": "Named"}
    template = {"Conditions": {"Named": {"Fn::Equals": [{"Ref": "NamePrefix"}, "kept"]}}, "Resources": {"Never": group}}
    deployer_ = types.SimpleNamespace(cf=types.SimpleNamespace(meta=types.SimpleNamespace(region_name=REGION)))
    layer = types.SimpleNamespace(template=json.dumps(template))
    assert guards.stateful_replacements_ahead(deployer_, layer, template, {"NamePrefix": "other"}, {"NamePrefix": "other"}) == []


def test_an_output_that_reads_another_resource_than_the_deployed_one_is_changed():
    # Both resources stay as they are: the output's value is the other one's id now.
    def group(name):
        return {"Type": "AWS::Logs::LogGroup", "Properties": {"LogGroupName": name}}

    deployed = {"Resources": {"A": group("a"), "B": group("b")}, "Outputs": {"Out": {"Value": {"Ref": "A"}}}}
    now = deployed | {"Outputs": {"Out": {"Value": {"Ref": "B"}}}}
    deployer_ = types.SimpleNamespace(cf=types.SimpleNamespace(meta=types.SimpleNamespace(region_name=REGION)))
    layer = types.SimpleNamespace(template=json.dumps(now))
    assert guards.outputs_changed_ahead(deployer_, layer, deployed, {}, {}) == (frozenset({"Out"}), frozenset())
    assert guards.outputs_changed_ahead(deployer_, layer, now, {}, {}) == (frozenset(), frozenset())


def test_an_output_the_update_adds_is_changed_and_one_it_takes_away_removed_too():
    # (mutation audit) Removed: those readers then take their input's default (diff.read_after_removals); an output the
    # update adds (its condition true now, as the listener rules' ARNs are for a switch from ROLLING) is read as changed.
    template = {
        "Parameters": {"DeploymentStrategy": {"Type": "String"}},
        "Conditions": {"Shifts": {"Fn::Not": [{"Fn::Equals": [{"Ref": "DeploymentStrategy"}, "ROLLING"]}]}},
        "Resources": {"A": {"Type": "AWS::Logs::LogGroup", "Properties": {"LogGroupName": "a"}}},
        "Outputs": {"Out": {"Value": {"Ref": "A"}, "Condition": "Shifts"}},
    }
    deployer_ = types.SimpleNamespace(cf=types.SimpleNamespace(meta=types.SimpleNamespace(region_name=REGION)))
    layer = types.SimpleNamespace(template=json.dumps(template))
    rolling, canary = {"DeploymentStrategy": "ROLLING"}, {"DeploymentStrategy": "CANARY"}
    assert guards.outputs_changed_ahead(deployer_, layer, template, rolling, canary) == (frozenset({"Out"}), frozenset())
    assert guards.outputs_changed_ahead(deployer_, layer, template, canary, rolling) == (frozenset({"Out"}), frozenset({"Out"}))


def test_a_rule_that_may_not_apply_is_not_said_to_fail():
    # (mutation audit) Only what is certain: a rule whose RuleCondition reads a value not known before deploy may not
    # apply, and CloudFormation then passes it; one that surely applies and surely fails is said.
    template = {
        "Parameters": {"DeploymentStrategy": {"Type": "String"}, "NamePrefix": {"Type": "String"}},
        "Rules": {
            "Shifting": {
                "RuleCondition": {"Fn::Not": [{"Fn::Equals": [{"Ref": "DeploymentStrategy"}, "ROLLING"]}]},
                "Assertions": [
                    {"Assert": {"Fn::Not": [{"Fn::Equals": [{"Ref": "NamePrefix"}, ""]}]}, "AssertDescription": "NamePrefix is needed"}
                ],
            }
        },
        "Resources": {},
    }
    assert guards.failing_rules(template, {"DeploymentStrategy": "CANARY", "NamePrefix": ""}, REGION) == ["NamePrefix is needed"]
    assert guards.failing_rules(template, {"DeploymentStrategy": "ROLLING", "NamePrefix": ""}, REGION) == []
    assert guards.failing_rules(template, {"NamePrefix": ""}, REGION) == []  # DeploymentStrategy not known: it may not apply


def test_a_rule_without_a_rule_condition_always_applies_and_is_said_to_fail():
    # A rule without a RuleCondition: "Default: Rule's assertions will always take effect" (AWS's CDK reference of the
    # section, https://docs.aws.amazon.com/cdk/api/v2/docs/aws-cdk-lib.CfnRuleProps.html; the section itself:
    # https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/rules-section-structure.html): the deploy is refused
    # before its change set (mutation audit Y2, mutant: templates.resolver.assertions's applies True -> None without one)
    template = {
        "Parameters": {"NamePrefix": {"Type": "String"}},
        "Rules": {
            "Named": {
                "Assertions": [
                    {"Assert": {"Fn::Not": [{"Fn::Equals": [{"Ref": "NamePrefix"}, ""]}]}, "AssertDescription": "NamePrefix is needed"}
                ]
            }
        },
        "Resources": {},
    }
    assert guards.failing_rules(template, {"NamePrefix": ""}, REGION) == ["NamePrefix is needed"]
    assert guards.failing_rules(template, {"NamePrefix": "swa"}, REGION) == []


def test_a_failing_rule_without_a_description_is_still_refused_in_words():
    # AssertDescription is optional in a rule's assertion
    # (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/rules-section-structure.html): the refusal of one
    # that fails still says why, not a line ending in ": " (mutation audit Z3, mutant: assertions's default description
    # "a rule of the template fails" -> "")
    from scripts.deploy.failure import Failure

    template = {
        "Parameters": {"NamePrefix": {"Type": "String"}},
        "Rules": {"Named": {"Assertions": [{"Assert": {"Fn::Not": [{"Fn::Equals": [{"Ref": "NamePrefix"}, ""]}]}}]}},
        "Resources": {},
    }
    deployer_ = types.SimpleNamespace(cf=types.SimpleNamespace(meta=types.SimpleNamespace(region_name=REGION)))
    layer = types.SimpleNamespace(template=json.dumps(template), stack="startupwebapp-alb")
    with pytest.raises(Failure) as refused:
        guards.refuse_failing_rules(deployer_, layer, {"NamePrefix": ""})
    said = str(refused.value)
    assert said.startswith("error: CloudFormation would refuse startupwebapp-alb's change set: ") and said.split(": ", 2)[2].strip(), said


def test_a_stateful_resource_whose_condition_is_decided_at_deploy_time_is_said_to_be_replaced_by_a_new_name():
    # A condition not known before deploy counts as true: the resource may be there, and a new name replaces it.
    def group(name):
        return {"Type": "AWS::Logs::LogGroup", "Properties": {"LogGroupName": name}, "Condition": "Unknown"}

    conditions = {"Unknown": {"Fn::Equals": [{"Ref": "AWS::AccountId"}, "123456789012"]}}
    deployed = {"Conditions": conditions, "Resources": {"Maybe": group("d")}}
    now = {"Conditions": conditions, "Resources": {"Maybe": group("d-renamed")}}
    deployer_ = types.SimpleNamespace(cf=types.SimpleNamespace(meta=types.SimpleNamespace(region_name=REGION)))
    layer = types.SimpleNamespace(template=json.dumps(now))
    found = guards.stateful_replacements_ahead(deployer_, layer, deployed, {}, {})
    assert found == [("Maybe", "AWS::Logs::LogGroup", "replaced: its LogGroupName changed")]


def test_an_output_of_a_parameter_whose_value_changes_is_changed():
    # No resource read (one of our parameters): the value itself, with the values deployed and the new ones.
    template = {"Parameters": {"NamePrefix": {"Type": "String"}}, "Resources": {}, "Outputs": {"Out": {"Value": {"Ref": "NamePrefix"}}}}
    deployer_ = types.SimpleNamespace(cf=types.SimpleNamespace(meta=types.SimpleNamespace(region_name=REGION)))
    layer = types.SimpleNamespace(template=json.dumps(template))
    assert guards.outputs_changed_ahead(deployer_, layer, template, {"NamePrefix": "kept"}, {"NamePrefix": "other"}) == (
        frozenset({"Out"}),
        frozenset(),
    )
    assert guards.outputs_changed_ahead(deployer_, layer, template, {"NamePrefix": "kept"}, {"NamePrefix": "kept"}) == (
        frozenset(),
        frozenset(),
    )


def test_diff_of_a_named_stateful_resource_replaced_under_its_name_says_its_new_name_needs_allow_replace_too(aws):
    # The same-name note's way on, a new name in the same change, replaces a target group: refused again without
    # ALLOW_REPLACE=1, which the diff did not say.
    running = configuration(ENV, "alb")["Parameters"] | stubbed_aws.wired("alb") | stubbed_aws.deploy_time("alb")
    running |= {"ContainerPort": str(int(running["ContainerPort"]) + 1), "DeletionProtection": "false"}
    aws.diff_reads("alb", parameters=running)
    aws.deployed("service")  # read for the image its deploy again keeps (Deployer.redeploy_tag)
    assert aws.run("diff", "--stack", "alb") == 1, aws.err
    assert "  note: make deploy refuses this: CloudFormation cannot replace a resource under the name it has: " in aws.out
    image = deploy_text.parameter_values(described("service")["Stacks"][0])["ImageTag"]
    said = f"in that order (one not deployed says so), then {purge_step(templates.destroy_order('alb'))}make deploy ENV={ENV} TAG={image}\n"
    assert said in aws.out, aws.out
    assert (
        "  note: make deploy refuses this without ALLOW_REPLACE=1: it replaces or removes what holds data or a name others point at: "
        in aws.out
    )
    assert aws.out.splitlines()[-1] == "a deploy would be refused: alb (see the note above); alb then needs ALLOW_REPLACE=1 too", aws.out


@pytest.mark.parametrize("renamed", [False, True])
def test_diff_says_a_deploy_would_be_refused_for_a_named_resource_it_would_replace_unless_renamed_too(aws, renamed):
    # make diff said "make deploy applies it"; the deploy then refused the change set: ECS::Service's Cluster is create-only
    # in its resource schema, and the service keeps its ServiceName.
    given = configuration(ENV, "service")["Parameters"]
    running = service_parameters(given["ImageTag"]) | {"ClusterName": f"{given['ClusterName']}-old"}
    if renamed:  # a new NamePrefix names the new service otherwise: CloudFormation replaces it under that name
        running["NamePrefix"] = f"{running['NamePrefix']}-old"
    aws.diff_reads("service", parameters=running)
    if renamed:  # its log group's new name, looked for: free
        aws.logs.add_response("describe_log_groups", {"logGroups": []})
    assert aws.run("diff", "--stack", "service") == 1, aws.err
    said = (
        "  note: make deploy refuses this: CloudFormation cannot replace a resource under the name it has: Service (AWS::ECS::Service, "
        "its Cluster changed, its ServiceName unchanged); give it a new name in the same change (a new NamePrefix renames them all), "
        f"or destroy it and the layers that read its outputs: make destroy ENV={ENV} STACK=<layer> for alarms, scaling, service, "
        # its deploy again on the image the service runs, not params' ImageTag (Deployer.redeploy_tag)
        f"in that order (one not deployed says so), then {purge_step(templates.destroy_order('service'))}make deploy ENV={ENV} "
        f"TAG={running['ImageTag']}"
    )
    lines = aws.out.splitlines()
    if renamed:  # its log group renamed too: a stateful replacement, which the deploy makes with ALLOW_REPLACE=1
        applies = (
            f"(make deploy STACK=service ENV={ENV} ALLOW_REPLACE=1 applies it; service replacing or removing what its note above names)"
        )
        assert said not in lines and "would be refused" not in aws.out and lines[-1].endswith(applies), aws.out
    else:
        assert said in lines and lines[-1] == "a deploy would be refused: service (see the note above)" and "applies it" not in aws.out, (
            aws.out
        )


@pytest.mark.parametrize(
    "deployed_target, new_target, deployed_name, replaced, deployed_type",
    [
        ("a", "a", None, False, None),  # unchanged
        ("a", "b", None, True, None),  # both known, and they differ: replaced under the name it keeps
        ("a", {"Ref": "ScalableTarget"}, None, False, None),  # the new one known at deploy time alone: not said
        ({"Ref": "ScalableTarget"}, "a", None, False, None),  # so the deployed one
        ("a", "b", {"Fn::Sub": "${AWS::AccountId}-policy"}, False, None),  # its name known at deploy time alone: may be renamed
        ("a", "b", "another-policy", False, None),  # renamed in the same change: replaced under the new name
        # a resource of another type under the logical id: a new one, made beside the old, not a replacement of it
        ("a", "b", None, False, "AWS::ApplicationAutoScaling::ScalableTarget"),
    ],
)
def test_diffs_look_ahead_names_a_replacement_only_where_it_is_certain(deployed_target, new_target, deployed_name, replaced, deployed_type):
    # A policy's ScalingTargetId is create-only in its resource schema, PolicyName its custom name (templates.CUSTOM_NAMES).
    loaded = deploy.layer.load_layer(ENV, "scaling", OUTPUT)
    values = parameters(ENV, "scaling") | wired("scaling") | deploy_time("scaling")
    client = types.SimpleNamespace(cf=types.SimpleNamespace(meta=types.SimpleNamespace(region_name=REGION)))
    template, deployed = json.loads(loaded.template), json.loads(loaded.template)
    template["Resources"]["CpuScalingPolicy"]["Properties"]["ScalingTargetId"] = new_target
    deployed["Resources"]["CpuScalingPolicy"]["Properties"]["ScalingTargetId"] = deployed_target
    if deployed_type:
        deployed["Resources"]["CpuScalingPolicy"]["Type"] = deployed_type
    if isinstance(deployed_name, dict):  # in both templates
        template["Resources"]["CpuScalingPolicy"]["Properties"]["PolicyName"] = deployed_name
    if deployed_name is not None:
        deployed["Resources"]["CpuScalingPolicy"]["Properties"]["PolicyName"] = deployed_name
    layer = dataclasses.replace(loaded, template=json.dumps(template))
    said = "CpuScalingPolicy (AWS::ApplicationAutoScaling::ScalingPolicy, its ScalingTargetId changed, its PolicyName unchanged)"
    assert guards.named_replacements_ahead(client, layer, deployed, values, values) == [said] * replaced


def test_diffs_look_ahead_takes_a_parameter_a_template_edited_by_hand_declares_for_one_not_known():
    # The deployed template is anyone's who may update the stack: a parameter none of ours declares was a KeyError.
    loaded = deploy.layer.load_layer(ENV, "scaling", OUTPUT)
    values = parameters(ENV, "scaling") | wired("scaling") | deploy_time("scaling")
    client = types.SimpleNamespace(cf=types.SimpleNamespace(meta=types.SimpleNamespace(region_name=REGION)))
    deployed = json.loads(loaded.template)
    deployed["Parameters"]["ByHand"] = {"Type": "String"}
    deployed["Resources"]["CpuScalingPolicy"]["Properties"]["ScalingTargetId"] = {"Ref": "ByHand"}
    assert guards.named_replacements_ahead(client, loaded, deployed, values | {"ByHand": "x"}, values) == []


def test_a_value_holding_one_not_known_before_deploy_anywhere_in_it_is_not_compared():
    from templates.resolver import UNKNOWN

    assert guards.known_pair([UNKNOWN], ["x"]) is None and guards.known_pair(["x"], [["y", UNKNOWN]]) is None
    assert guards.known_pair({"k": UNKNOWN}, {"k": "x"}) is None and guards.known_pair("x", {"a": [{"b": UNKNOWN}]}) is None
    assert guards.known_pair([{"k": "a"}], [{"k": "b"}]) == ([{"k": "a"}], [{"k": "b"}])


@pytest.mark.parametrize("deployed", [None, ALLOW_ALL, DENY_ALL])
def test_diff_of_a_layer_without_a_stack_policy_names_one_set_by_hand_that_denies_updates(aws, deployed):
    # AWS cannot remove a stack policy, only replace it: none and allow-all are the same to an update.
    layer = next(name for name in PROD_LAYERS if "StackPolicy" not in configuration(ENV, name))
    aws.diff_reads(layer, deployed)
    assert aws.run("diff", "--stack", layer) == (1 if deployed == DENY_ALL else 0), aws.err
    if deployed != DENY_ALL:
        assert aws.out.splitlines() == [f"{stack(layer)}: same as deployed"], aws.out
        return
    assert aws.out.splitlines()[:2] == [
        f"{stack(layer)}: a stack policy is set on it outside this tool, and {templates.relative(OUTPUT / ENV / f'{layer}.json')} gives it none: "
        "an update it denies fails. A deploy never sets one for this layer; to allow every update now:",
        f"  {CLI} cloudformation set-stack-policy --stack-name {stack(layer)} --stack-policy-body '{json.dumps(ALLOW_ALL)}'",
    ]
    # no deploy sets it back for such a layer: not counted among what make deploy applies
    assert aws.out.splitlines()[-1] == f"only the stack policy differs: {layer} (set it as said above)", aws.out


def test_diff_of_a_layer_reading_a_stack_someone_else_made_compares_nothing(aws):
    # It showed that stack's outputs as new parameter values "make deploy applies", and the deploy then refused.
    aws.deployed("alb")
    aws.cf.add_response("get_template", {"TemplateBody": template("alb")}, {"StackName": stack("alb"), "TemplateStage": "Original"})
    aws.cf.add_response("describe_stacks", described("cert-dns", tags={"Owner": "mallory"}), {"StackName": stack("cert-dns")})
    assert aws.run("diff", "--stack", "alb") == 2
    assert aws.err.startswith(f"error: {stack('alb')} reads {stack('cert-dns')}: not made by this tool"), aws.err
    assert "applies it" not in aws.out, aws.out


def test_diff_error_is_exit_2(aws):
    aws.deployed("alb")
    aws.cf.add_response("get_template", {"TemplateBody": template("alb")})
    aws.not_deployed("cert-dns")
    assert aws.run("diff", "--stack", "alb") == 2
    # the error itself: a bug of the tool's (a TypeError at the same reads) exits 2 as well
    assert aws.err.startswith(f"error: {stack('alb')} needs {stack('cert-dns')} deployed first"), aws.err


# The disabled layer's stack, unprotected: a failed first create (a deploy refuses it), or an updatable
# stack (a deploy of a layer not enabled is refused): neither gets the note that a deploy would protect it.
@pytest.mark.parametrize("left_status", ["ROLLBACK_COMPLETE", "UPDATE_COMPLETE"])
def test_status_prints_a_header_and_one_line_per_layer_and_any_stack_left_from_a_disabled_layer(aws, disabled, left_status):
    disabled, enabled = disabled
    order = templates.layer_order()  # every layer: one taken out of enabled_layers may still be deployed
    first = next(layer for layer in order if layer in enabled)  # deployed; the others enabled are not
    status_reads(aws, first)  # its stack policy left relaxed by a stopped --allow-replace run
    for layer in order:
        if layer == disabled:  # prod has no output/prod/<layer>.json for it: a stack described by hand
            left = described(first, status=left_status, protected=False)
            tags = [{"Key": k, "Value": v} for k, v in templates.own_tags(ENV, layer).items()]
            left["Stacks"][0] |= {"StackName": stack(layer), "StackId": stack_id(layer), "Tags": tags}
            aws.cf.add_response("describe_stacks", left, {"StackName": stack(layer)})
        else:
            # its termination protection off: a run stopped before it set it (or a change by hand)
            aws.deployed(layer, protected=False) if layer == first else aws.not_deployed(layer)
    aws.no_change_sets(*(layer for layer in order if layer in (first, disabled)))
    assert aws.run("status") == 0, aws.err
    header, *lines = aws.out.splitlines()
    assert header.split() == ["STACK", "STATUS", "LAST", "CHANGE"]
    assert [line.split()[0] for line in lines] == [stack(layer) for layer in order if layer in enabled or layer == disabled]
    line = {layer: next(line for line in lines if line.split()[0] == stack(layer)) for layer in (first, disabled)}
    assert "UPDATE_COMPLETE" in line[first] and "2025-11-24 12:00:00 UTC" in line[first]
    assert line[first].endswith(
        "(its stack policy is still relaxed by a stopped --allow-replace run: the next deploy of the layer puts it back)"
        f"  (termination protection off: make deploy STACK={first} ENV={ENV} turns it back on)"
    )
    assert "termination protection" not in line[disabled]
    params_file = templates.relative(aws.dirs[1] / f"{ENV}.yaml")  # a copy's path as it is: no path under the project
    assert f"not in enabled_layers of {params_file}: make destroy STACK={disabled} ENV={ENV} removes it" in line[disabled]
    assert all(text.endswith("not deployed") for text in lines if text not in line.values())


def test_status_of_a_relaxed_policy_of_a_layer_not_enabled_names_no_deploy_that_puts_it_back(aws, disabled):
    # a deploy of a layer not in enabled_layers is refused: "the next deploy of the layer puts it back" would send the
    # operator to a command that refuses it
    disabled, enabled = disabled
    status_reads(aws, disabled)
    for layer in templates.layer_order():
        if layer == disabled:
            left = described(next(iter(enabled)))
            tags = [{"Key": k, "Value": v} for k, v in templates.own_tags(ENV, layer).items()]
            left["Stacks"][0] |= {"StackName": stack(layer), "StackId": stack_id(layer), "Tags": tags}
            aws.cf.add_response("describe_stacks", left, {"StackName": stack(layer)})
        else:
            aws.not_deployed(layer)
    aws.no_change_sets(disabled)
    assert aws.run("status") == 0, aws.err
    (line,) = [line for line in aws.out.splitlines() if line.startswith(stack(disabled))]
    assert "(its stack policy is still relaxed by a stopped --allow-replace run)" in line, line
    assert "puts it back" not in line, line


def test_status_says_nothing_of_the_termination_protection_of_a_stack_not_ours(aws):
    # someone else's stack of an enabled layer's name: deploy refuses it, so "make deploy turns it back on" is no way
    layer = next(name for name in templates.layer_order() if name not in templates.OPTIONAL_LAYERS)  # always enabled
    status_reads(aws)
    for each in templates.layer_order():
        if each == layer:
            theirs = described(layer, protected=False, tags={"Project": "otherproj"})
            aws.cf.add_response("describe_stacks", theirs, {"StackName": stack(layer)})
        else:
            aws.not_deployed(each)
    assert aws.run("status") == 0, aws.err
    (line,) = [line for line in aws.out.splitlines() if line.startswith(stack(layer))]
    assert "(not made by this tool" in line and "termination protection" not in line, line


def test_status_says_nothing_of_a_layer_not_enabled_that_has_no_stack(aws, disabled):
    # one that is deployed is shown, with how it goes; one that is not is nothing to this environment (STACK= names it: said)
    disabled, enabled = disabled
    status_reads(aws)
    for layer in templates.layer_order():
        aws.not_deployed(layer)
    assert aws.run("status") == 0, aws.err
    header, *lines = aws.out.splitlines()
    assert lines == [f"{stack(layer):<36} not deployed" for layer in templates.layer_order() if layer in enabled], aws.out


def test_status_of_someone_elses_stack_of_an_enabled_layers_name_says_deploy_and_destroy_refuse_it(aws):
    layer = next(name for name in templates.layer_order() if name not in templates.OPTIONAL_LAYERS)  # always enabled
    status_reads(aws)
    for each in templates.layer_order():
        if each == layer:
            aws.cf.add_response("describe_stacks", described(layer, tags={"Project": "otherproj"}), {"StackName": stack(layer)})
        else:
            aws.not_deployed(each)
    assert aws.run("status") == 0, aws.err
    (line,) = [line for line in aws.out.splitlines() if line.startswith(stack(layer))]
    assert line.endswith(
        "  (not made by this tool: it lacks the tags its stacks carry; deploy and destroy refuse to run while it is there)"
    ), line


# Protected, or in a state a deploy does not update (a failed first create, an update under way): no note that a deploy
# turns termination protection back on.
@pytest.mark.parametrize("status, protected", [("UPDATE_COMPLETE", True), ("ROLLBACK_COMPLETE", False), ("UPDATE_IN_PROGRESS", False)])
def test_status_says_termination_protection_is_off_only_of_an_updatable_stack_without_it(aws, status, protected):
    layer = next(name for name in templates.layer_order() if name not in templates.OPTIONAL_LAYERS)  # always enabled
    status_reads(aws)
    for each in templates.layer_order():
        aws.deployed(layer, status=status, protected=protected) if each == layer else aws.not_deployed(each)
    aws.no_change_sets(layer)
    assert aws.run("status") == 0, aws.err
    (line,) = [line for line in aws.out.splitlines() if line.startswith(stack(layer))]
    assert status in line and "termination protection" not in line, line


@pytest.mark.parametrize("failed", ["ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "ROLLBACK_IN_PROGRESS"])
def test_status_shows_no_running_image_of_a_service_stack_whose_first_create_failed(aws, failed):
    # Its rollback deleted (or is deleting) what it made, so no image runs, whatever value its parameters hold
    status_reads(aws)
    for each in templates.layer_order():
        if each == "service":
            aws.deployed("service", status=failed, parameters=service_parameters("v7"))
        else:
            aws.not_deployed(each)
    aws.no_change_sets("service")
    assert aws.run("status") == 0, aws.err
    (line,) = [line for line in aws.out.splitlines() if line.startswith(stack("service"))]
    assert failed in line and "image" not in line and "v7" not in line, line


@pytest.mark.parametrize(
    "status, way",
    [
        ("ROLLBACK_COMPLETE", f"make deploy STACK=cert-dns ENV={ENV} RECREATE=1, which deletes it and creates it again"),
        ("ROLLBACK_FAILED", f"then make destroy STACK=cert-dns ENV={ENV}, then "),
        ("UPDATE_ROLLBACK_FAILED", f"make recover STACK=cert-dns ENV={ENV}"),
        ("DELETE_FAILED", f"make events STACK=cert-dns ENV={ENV} names the resources that failed"),
        ("UPDATE_ROLLBACK_IN_PROGRESS", None),  # settling: a deploy waits for it, and status says nothing more
        ("UPDATE_ROLLBACK_COMPLETE", None),
    ],
)
def test_status_says_the_way_on_from_a_state_no_deploy_starts_from(aws, status, way):
    # It showed ROLLBACK_COMPLETE bare: only the deploy it then refused said RECREATE=1.
    status_reads(aws)
    for each in templates.layer_order():
        aws.deployed(each, status=status) if each == "cert-dns" else aws.not_deployed(each)
    aws.no_change_sets("cert-dns")
    assert aws.run("status") == 0, aws.err
    (line,) = [line for line in aws.out.splitlines() if line.startswith(stack("cert-dns"))]
    assert (way in line) if way else line.endswith(" UTC"), line


HOSTILE_IMAGE = "v1\x1b[2J\u202egpj.exe"  # set on the stack by anyone who may update it: a screen clear, a bidi override
HOSTILE_SHOWN = "v1\\x1b[2J\\u202egpj.exe"  # as the messages show it


def test_the_running_image_a_stack_holds_is_shown_escaped_by_status_and_in_the_unrecorded_release_hint(aws):
    status_reads(aws)
    aws.deployed("service", parameters=service_parameters(HOSTILE_IMAGE))
    aws.no_change_sets("service")
    assert aws.run("status", "--stack", "service") == 0, aws.err
    line = aws.out.splitlines()[-1]
    assert line.startswith(f"{stack('service'):<36} UPDATE_COMPLETE") and "  image v1\\x1b[2J\\u202egpj.exe" in line, line
    hint = deploy_text.release_not_recorded("v2", ENV, "/history", None, HOSTILE_IMAGE)
    assert f"make rollback ENV={ENV} TAG=v1\\x1b[2J\\u202egpj.exe" in hint and "\x1b" not in hint and "\u202e" not in hint, hint


def test_diff_of_the_service_shows_the_running_image_escaped_beside_params_own(aws):
    aws.diff_reads("service", parameters=service_parameters(HOSTILE_IMAGE))
    assert aws.run("diff", "--stack", "service") == 0, aws.err
    configured = configuration(ENV, "service")["Parameters"]["ImageTag"]
    assert aws.out.splitlines()[-1] == (
        f"  image {HOSTILE_SHOWN} runs: ImageTag {configured} of {PARAMS_FILE} counts only for a first create (a deploy keeps the "
        f"running image; make deploy STACK=service ENV={ENV} TAG=<tag> releases another)"
    ), ascii(aws.out)


def test_diff_with_tag_says_neither_params_image_tag_nor_an_unchanged_desired_count(aws):
    # TAG= names the image the deploy runs: params' ImageTag, which counts only for a first create, is no note then; and a
    # DesiredCount the deploy sends unchanged is no "new DesiredCount"
    # other tags than params' ImageTag, within a tag's length whatever its own (up to MOST_IMAGE_TAG)
    configured = configuration(ENV, "service")["Parameters"]["ImageTag"][: MOST_IMAGE_TAG - len("-running")]
    aws.diff_reads("service", parameters=service_parameters(f"{configured}-running"))
    assert aws.run("diff", "--stack", "service", "--image-tag", f"{configured}-new") == 1, aws.err
    lines = aws.out.splitlines()
    assert any(f"{configured}-new" in line for line in lines[:-1]), aws.out  # the new tag among the differences
    assert "counts only for a first create" not in aws.out and "new DesiredCount" not in aws.out, aws.out
    assert lines[-1] == f"differs from what {ENV} runs: service (make deploy STACK=service ENV={ENV} TAG={configured}-new applies it)"


@pytest.mark.parametrize("answer", ["ImageNotFoundException", "Throttling"])
def test_diff_takes_the_deploys_looks_before_its_change_set_and_says_what_the_deploy_would_refuse(aws, monkeypatch, answer):
    # make diff TAG=<a tag ECR lacks> said "make deploy ... applies it", and the deploy refused (guards.refuse_a_missing_image);
    # a look that cannot be taken is a note, as in the deploy, and the command stands.
    monkeypatch.delenv("AWS_ENDPOINT_URL")  # on AWS: the image is looked for there alone
    running, wanted = "v1", "v9"
    repository = configuration(ENV, "service")["Parameters"]["EcrRepositoryName"]
    aws.diff_reads("service", parameters=service_parameters(running))
    aws.image(wanted, code=answer)
    assert aws.run("diff", "--stack", "service", "--image-tag", wanted) == 1, aws.err
    lines = aws.out.splitlines()
    command = f"differs from what {ENV} runs: service (make deploy STACK=service ENV={ENV} TAG={wanted} applies it"
    if answer == "Throttling":
        assert "note: the image in ECR could not be looked at (Throttling); make deploy looks again" in lines, aws.out
        assert lines[-1] == command + ")", aws.out
    else:
        refused = f"note: make deploy would be refused: image {repository}:{wanted} is not in ECR: push it first"
        assert any(line.startswith(refused) for line in lines), aws.out
        assert lines[-1] == command + ", once what the note above names is fixed)", aws.out


def test_diff_says_the_deploys_first_refusal_and_takes_no_look_after_it(aws, monkeypatch):
    # The service alone, whose upstreams are not deployed: the deploy refuses at what it reads, before it
    # asks ECR (the Stubber fails a DescribeImages call); the command waits until that is fixed.
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    aws.not_deployed("service")
    upstreams, reading = [], ["service"]  # what it reads, and what those read, as the deploy asks (the whole way there)
    while reading:
        for upstream, _ in templates.wired_into(reading.pop(0)).values():
            if upstream not in upstreams:
                upstreams.append(upstream)
                reading.append(upstream)
    for upstream in upstreams:
        aws.not_deployed(upstream)
    assert aws.run("diff", "--stack", "service", "--image-tag", "v9") == 1, aws.err
    lines = aws.out.splitlines()
    (refused,) = [line for line in lines if line.startswith("note: make deploy would be refused: ")]
    assert refused.startswith(f"note: make deploy would be refused: {stack('service')} needs "), aws.out
    assert all(stack(upstream) in refused for upstream in upstreams), refused
    assert lines[-1].endswith("TAG=v9 applies it, once what the note above names is fixed)"), aws.out


def test_diff_of_a_layer_not_deployed_reads_its_deployed_upstreams_as_the_deploy_does_and_says_its_refusal(aws):
    # The service not deployed, the load balancer stuck in a failed rollback: the deploy refuses at what it reads;
    # make diff said "make deploy applies it". The note is the deploy's own error.
    def upstreams():
        for upstream in dict.fromkeys(upstream for upstream, _ in templates.wired_into("service").values()):
            aws.deployed(upstream, **({"status": "UPDATE_ROLLBACK_FAILED"} if upstream == "alb" else {}))

    upstreams()  # the deploy reads them first, make diff the service's stack first
    assert aws.run("deploy", "--stack", "service", "--yes") == 1
    refusal = aws.err.strip()
    assert refusal.startswith(f"error: {stack('service')} reads {stack('alb')}, which is UPDATE_ROLLBACK_FAILED"), aws.err
    aws.not_deployed("service")
    upstreams()
    assert aws.run("diff", "--stack", "service") == 1, aws.err
    assert "note: make deploy would be refused: " + refusal.removeprefix("error: ") in aws.out.splitlines(), aws.out


def test_diff_says_a_secret_of_another_account_and_looks_no_further(aws, monkeypatch):
    # The deploy stops at the account (guards.refuse_a_secret_of_another_account): no look at the secret's key
    # follows (the Stubber fails a DescribeSecret call), which the deploy role could not make in another account.
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    other = "210987654321" if ACCOUNT != "210987654321" else "123456789012"
    running = described("service", parameters=service_parameters(configuration(ENV, "service")["Parameters"]["ImageTag"]))
    running["Stacks"][0]["StackId"] = running["Stacks"][0]["StackId"].replace(f":{ACCOUNT}:", f":{other}:")
    aws.cf.add_response("describe_stacks", running, {"StackName": stack("service")})
    aws.cf.add_response("get_template", {"TemplateBody": template("service")}, {"StackName": stack("service"), "TemplateStage": "Original"})
    aws.upstream_deployed("service")
    aws.stack_policy("service")
    assert aws.run("diff", "--stack", "service") == 0, aws.err
    (note,) = [line for line in aws.out.splitlines() if line.startswith("note: make deploy would be refused: ")]
    assert note.startswith(
        f"note: make deploy would be refused: {PARAMS_FILE}: parameters.DatabaseSecretArn is in account {ACCOUNT}, "
        f"but the stacks go to account {other}"
    ), note


def test_diff_says_a_zone_of_another_domain_as_the_deploy_refuses_it(aws):
    # DomainName changed in params: the cert-dns update's look at the zone (guards.refuse_undelegated_domain), on an emulator too.
    deployed_domain = "example.org" if DOMAIN != "example.org" else "example.net"
    aws.diff_reads("cert-dns", parameters=configuration(ENV, "cert-dns")["Parameters"] | {"DomainName": deployed_domain})
    aws.route53.add_response("get_hosted_zone", hosted_zone(domain=deployed_domain), {"Id": ZONE})
    assert aws.run("diff", "--stack", "cert-dns") == 1, aws.err
    assert (
        f"note: make deploy would be refused: {PARAMS_FILE}: parameters.ExistingHostedZoneId: {ZONE} is the zone of "
        f"{deployed_domain}, not of {DOMAIN}; "
    ) in aws.out, aws.out
    assert "applies it, once what the note above names is fixed" in aws.out.splitlines()[-1], aws.out


@pytest.mark.parametrize("raised", ["KeyError", "Throttling"])
def test_a_look_of_diff_that_cannot_be_taken_is_a_note_not_a_failed_diff(aws, monkeypatch, raised):
    from scripts.deploy import guards

    def look(deployer, layer):
        if raised == "KeyError":
            raise KeyError("Subnets")  # an answer without a field the look reads
        raise ClientError({"Error": {"Code": "Throttling", "Message": "Rate exceeded"}}, "DescribeSubnets")

    monkeypatch.setattr(guards, "refuse_subnets_the_layers_cannot_use", look)
    aws.diff_reads("cert-dns", parameters=configuration(ENV, "cert-dns")["Parameters"] | {"DomainName": DOMAIN})
    assert aws.run("diff", "--stack", "cert-dns") == 0, aws.err
    why = "(an answer without what it reads: KeyError('Subnets'))" if raised == "KeyError" else "(Throttling)"
    assert f"note: the subnets could not be looked at {why}; make deploy looks again" in aws.out.splitlines(), aws.out


def test_diff_of_a_service_whose_create_stopped_before_its_settling_step_says_the_next_deploy_runs_it(aws):
    # Ctrl-C between the create and the update that sets KeepRunningCount true: the diff showed false -> true unexplained.
    configured = configuration(ENV, "service")["Parameters"]["ImageTag"]
    aws.diff_reads("service", parameters=service_parameters(configured) | {"KeepRunningCount": "false"})
    assert aws.run("diff", "--stack", "service") == 1, aws.err
    assert "-parameter KeepRunningCount=false" in aws.out.splitlines(), aws.out
    assert aws.out.splitlines()[-2] == (
        "  note: KeepRunningCount false: the step after the service's create (or replacement) that leaves the task count to "
        f"auto-scaling did not run (a run stopped before it); make deploy STACK=service ENV={ENV} runs it"
    ), aws.out


def test_diff_of_a_settled_service_that_differs_says_nothing_of_the_settling_step(aws):
    configured = configuration(ENV, "service")["Parameters"]
    aws.diff_reads("service", parameters=service_parameters(configured["ImageTag"]) | {"HealthCheckPath": "/other"})
    assert aws.run("diff", "--stack", "service") == 1, aws.err
    assert "-parameter HealthCheckPath=/other" in aws.out.splitlines() and "note: KeepRunningCount" not in aws.out, aws.out


def test_status_with_ssm_alone_not_answering_shows_the_stacks_and_notes_the_marks(aws):
    # The marks are read after CloudFormation answered: SSM out of reach alone (its own endpoint, a
    # proxy rule) is a note under a status that still shows every stack, not a failed status.
    from botocore.exceptions import ReadTimeoutError

    aws.deployed("cert-dns")
    aws.no_change_sets("cert-dns")

    def no_answer(**_):
        raise ReadTimeoutError(endpoint_url="https://ssm.us-east-1.amazonaws.com")

    aws.clients["ssm"].meta.events.register("provide-client-params.ssm.GetParametersByPath", no_answer)
    aws.clients["ssm"].meta.events.register("provide-client-params.ssm.GetParameter", no_answer)
    assert aws.run("status", "--stack", "cert-dns") == 0, aws.err
    assert f"note: the relaxed-policy marks ({RELAXED}/) could not be read (ReadTimeoutError)" in aws.out
    assert f"note: the lock ({LOCK}) could not be read (ReadTimeoutError)" in aws.out
    assert aws.out.splitlines()[-1].startswith(f"{stack('cert-dns'):<36} UPDATE_COMPLETE")


def marks_on(ssm):
    said = []
    return RelaxedPolicyMarks(ssm, ENV, lambda: NOW, said.append, lambda: "aws --region us-east-1"), said


def test_a_mark_is_deleted_once_and_one_already_gone_is_no_note():
    ssm = SESSION.client("ssm", region_name=REGION)
    marks, said = marks_on(ssm)
    with Stubber(ssm) as stub:
        stub.add_response(
            "put_parameter",
            {"Version": 1},
            {"Name": f"{RELAXED}/alb", "Value": ANY, "Type": "String", "Overwrite": True, "Description": ANY},
        )
        stub.add_client_error("delete_parameter", "ParameterNotFound", "gone", 400, expected_params={"Name": f"{RELAXED}/alb"})
        marks.mark("alb")
        assert "alb" in marks
        marks.clear("alb")
        marks.clear("alb")  # once cleared, not asked again: no second DeleteParameter is queued
        stub.assert_no_pending_responses()
    assert "alb" not in marks and said == []  # a mark already gone is what clearing wants


def test_a_mark_on_a_layer_whose_template_has_no_stack_policy_now_puts_nothing_back():
    # The layer's stateful resources moved out since a run stopped with its policy relaxed: there is none to put
    # back (make diff takes the stack's allow-all policy as its own), and SetStackPolicy with a body of null fails.
    from scripts.deploy.policies import StackPolicies

    ssm, cf = SESSION.client("ssm", region_name=REGION), SESSION.client("cloudformation", region_name=REGION)
    marks, said = marks_on(ssm)
    marks.layers.add("alb")  # as read from the stopped run's mark
    layer = types.SimpleNamespace(name="alb", stack=stack("alb"), policy=None)
    policies = StackPolicies(
        {"cloudformation": cf}.__getitem__, lambda: marks, lambda name: {"StackStatus": "UPDATE_COMPLETE"}, said.append, lambda: "aws"
    )
    with Stubber(cf), Stubber(ssm) as stub:  # any other call fails: none is queued
        stub.add_response("delete_parameter", {}, {"Name": f"{RELAXED}/alb"})  # the mark, which would stay for good
        policies.put_back_if_marked(layer)
        stub.assert_no_pending_responses()
    assert said == [] and "alb" not in marks


def test_marks_that_get_no_answer_stop_a_deploy_and_are_only_a_note_for_status():
    from botocore.exceptions import ReadTimeoutError

    ssm = SESSION.client("ssm", region_name=REGION)

    def no_answer(**_):
        raise ReadTimeoutError(endpoint_url="https://ssm.us-east-1.amazonaws.com")

    ssm.meta.events.register("provide-client-params.ssm.GetParametersByPath", no_answer)
    marks, said = marks_on(ssm)
    with pytest.raises(ReadTimeoutError):  # a deploy: the next call would fail the same way, after more retries
        marks.read()
    marks.read(no_answer_is_a_note=True)
    assert said == [f"  note: the relaxed-policy marks ({RELAXED}/) could not be read (ReadTimeoutError)"]


def test_a_disabled_layer_named_by_stack_is_said_not_deployed_by_status_and_outputs(aws, disabled):
    disabled, _ = disabled
    for command, said in (("status", f"{stack(disabled):<36} not deployed"), ("outputs", f"{stack(disabled)}: not deployed")):
        if command == "status":
            status_reads(aws)
        aws.not_deployed(disabled)
        assert aws.run(command, "--stack", disabled) == 0, aws.err
        assert aws.out.splitlines()[-1] == said, aws.out


def test_a_params_file_with_a_problem_still_lets_status_outputs_and_events_read_what_is_deployed(aws, tmp_path):
    # A half-done edit (a misspelt key) must not hide what runs, nor keep a dead run's lock (make
    # unlock), nor stop CI's failure step (make events); anything that changes stacks is refused.
    path = aws.read_a_misspelt_key(tmp_path)
    warning = "warning: " + f"{path}: parameters.DesiredCout: unknown key (did you mean DesiredCount?)"
    status_reads(aws)
    aws.deployed("cert-dns")
    aws.no_change_sets("cert-dns")
    assert aws.run("status", "--stack", "cert-dns") == 0, aws.err
    assert aws.err.startswith(warning) and f"note: status reads what is deployed in {REGION} all the same" in aws.err, aws.err
    aws.deployed("cert-dns")
    assert aws.run("outputs", "--stack", "cert-dns") == 0, aws.err
    assert aws.err.startswith(warning), aws.err
    aws.deployed("alb")
    aws.cf.add_response("describe_stack_events", events(event("alb", stack("alb"), "UPDATE_COMPLETE", 9)), {"StackName": stack_id("alb")})
    assert aws.run("events", "--stack", "alb") == 0, aws.err  # CI's failure step
    assert aws.err.startswith(warning) and aws.out.startswith(f"{stack('alb')}: the last 1 events"), aws.out + aws.err
    aws.ssm.add_client_error("get_parameter", "ParameterNotFound", f"Parameter {LOCK} not found.", 400, expected_params={"Name": LOCK})
    assert aws.run("unlock", tty=True, answer="y") == 0, aws.err
    assert f"note: unlock frees the lock in {REGION} all the same" in aws.err and aws.out == f"{ENV} is not locked\n"
    for command in ("deploy", "diff", "destroy", "drift"):
        assert aws.run(command, "--stack", "cert-dns", "--yes") == 2  # nothing queued: no call is made
        assert aws.err.startswith(f"error: {path}: parameters.DesiredCout: unknown key"), aws.err
    # Without a region to read, nothing can be read: the file's problems, as for any command.
    data = yaml.safe_load(path.read_text())
    data["region"] = "mars-1"
    path.write_text(yaml.safe_dump(data))
    assert aws.run("status") == 2
    assert aws.err.startswith("error: ") and "region: 'mars-1' is not supported" in aws.err, aws.err


def test_a_params_file_yaml_cannot_read_below_its_region_still_lets_status_and_unlock_read_what_is_deployed(aws, tmp_path):
    # The half-done edits an editor leaves most often (a tab, an unclosed list) are YAML errors: make status and
    # make unlock were refused with every other command, though the region line above them reads.
    params_dir = shutil.copytree(PARAMS, tmp_path / "params")
    path = params_dir / f"{ENV}.yaml"
    text = path.read_text()
    assert f"\n{text}".index("\nregion:") < text.index("\nparameters:\n"), "the edit goes below the region line"  # region: may open it
    path.write_text(text.replace("\nparameters:\n", "\nparameters:\n\tDesiredCount: 1\n", 1))
    aws.dirs = OUTPUT, params_dir
    status_reads(aws)
    aws.deployed("cert-dns")
    aws.no_change_sets("cert-dns")
    assert aws.run("status", "--stack", "cert-dns") == 0, aws.err
    assert aws.err.startswith(f"warning: {path}: line ") and "YAML" in aws.err.splitlines()[0], aws.err
    assert f"note: status reads what is deployed in {REGION} all the same" in aws.err, aws.err
    aws.ssm.add_client_error("get_parameter", "ParameterNotFound", f"Parameter {LOCK} not found.", 400, expected_params={"Name": LOCK})
    assert aws.run("unlock", tty=True, answer="y") == 0, aws.err
    assert aws.out == f"{ENV} is not locked\n", aws.out
    aws.not_deployed("service")
    history(aws, None)
    assert aws.run("releases") == 0, aws.err
    assert (
        aws.err.startswith(f"warning: {path}: line ")
        and aws.out == f"no release recorded in {HISTORY}\n{stack('service')} is not deployed: no image runs\n"
    )
    assert aws.run("deploy", "--stack", "cert-dns", "--yes") == 2  # nothing queued: no call is made
    assert aws.err.startswith(f"error: {path}: line "), aws.err


def test_every_problem_of_a_params_file_is_its_own_error_line_of_a_refused_deploy(aws, tmp_path):
    params_dir = shutil.copytree(PARAMS, tmp_path / "params")
    path = params_dir / f"{ENV}.yaml"
    data = yaml.safe_load(path.read_text())
    data["parameters"].update(NoSuchKeyOne=1, NoSuchKeyTwo=2)
    path.write_text(yaml.safe_dump(data))
    aws.dirs = OUTPUT, params_dir
    assert aws.run("deploy", "--stack", PROD_LAYERS[0], "--yes") == 2  # nothing queued: no call is made
    lines = aws.err.splitlines()
    assert all(line.startswith(f"error: {path}: ") for line in lines), aws.err
    assert [key for key in ("NoSuchKeyOne", "NoSuchKeyTwo") if any(key in line for line in lines)] == ["NoSuchKeyOne", "NoSuchKeyTwo"]


def test_a_layer_taken_out_of_enabled_layers_can_still_be_destroyed(aws, disabled):
    disabled, _ = disabled
    assert aws.run("deploy", "--stack", disabled) == 2  # deploying it needs it enabled
    for consumer in sorted(templates.downstream_of(disabled)):
        aws.not_deployed(consumer)
    aws.not_deployed(disabled)
    assert aws.run("destroy", "--stack", disabled, "--yes") == 0, aws.err
    assert f"{stack(disabled)} is not deployed: nothing to destroy" in aws.out


def test_drift_of_a_layer_taken_out_of_enabled_layers_checks_it_by_name(aws, disabled):
    # it may still be deployed, and drift after it was taken out: drift looks, where a deploy is refused
    disabled, _ = disabled
    aws.not_deployed(disabled)
    assert aws.run("drift", "--stack", disabled) == 0, aws.err
    assert f"{stack(disabled)}: not deployed, nothing to check" in aws.out, aws.out


def test_the_revision_a_deploy_records_says_dirty_when_the_deployed_files_are_not_the_commits(tmp_path):
    """Change-set names and the release history name the commit; a deploy of edited or new files in
    output/ (or of a directory outside the repository) is not that commit's, and says so."""
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "init.defaultBranch=main"]
    repository, output = tmp_path / "repository", tmp_path / "repository" / "output"
    (output / ENV).mkdir(parents=True)
    (output / "cert-dns.json").write_text("{}")
    (repository / "README.md").write_text("")
    assert deploy.layer.git_revision(output, repository) == "nogit"  # no repository yet
    for argv in (["init", "-q"], ["add", "."], ["commit", "-q", "-m", "first"]):
        subprocess.run([*git, *argv], cwd=repository, check=True)
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=repository, capture_output=True, text=True).stdout.strip()
    assert deploy.layer.git_revision(output, repository) == head
    (repository / "README.md").write_text("edited")  # not what a deploy reads
    assert deploy.layer.git_revision(output, repository) == head
    (output / ENV / "cert-dns.json").write_text("{}")  # new
    assert deploy.layer.git_revision(output, repository) == f"{head}-dirty"
    subprocess.run([*git, "add", "."], cwd=repository, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "second"], cwd=repository, check=True)
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=repository, capture_output=True, text=True).stdout.strip()
    assert deploy.layer.git_revision(output, repository) == head
    (output / "cert-dns.json").write_text('{"edited": true}')
    assert deploy.layer.git_revision(output, repository) == f"{head}-dirty"
    assert deploy.layer.git_revision(tmp_path / "elsewhere", repository) == f"{head}-dirty"
    (repository / ".gitignore").write_text("ignored/\n")
    (repository / "ignored").mkdir()
    (repository / "ignored" / "cert-dns.json").write_text("{}")
    assert deploy.layer.git_revision(repository / "ignored", repository) == f"{head}-dirty"  # git status hides it


def test_the_revision_of_a_sha256_checkout_with_full_hashes_still_names_a_change_set_aws_takes(tmp_path):
    """git_revision is `git rev-parse --short HEAD`, which honours core.abbrev: in a SHA-256 repository
    (git init --object-format=sha256) with core.abbrev=no (or any length over 40) it is 64 hex digits. The
    change set named from it, <stack>-<17 digits>-<revision>[-dirty][-settle], is then up to 141 characters,
    over the 128 CreateChangeSet takes (botocore checks no maximum: only AWS refuses it, after the lock and
    the reads), and the revision matches none of layer.REVISION (make execute and the history read it as
    "unknown"). https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_CreateChangeSet.html
    (ChangeSetName: "Maximum length of 128")"""
    from scripts.deploy.layer import REVISION

    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "init.defaultBranch=main"]
    repository, output = tmp_path / "repository", tmp_path / "repository" / "output"
    output.mkdir(parents=True)
    (output / "cert-dns.json").write_text("{}")
    made = subprocess.run([*git, "init", "-q", "--object-format=sha256"], cwd=repository, capture_output=True)
    if made.returncode:
        pytest.skip("this git makes no SHA-256 repository")
    for argv in (["config", "core.abbrev", "no"], ["add", "."], ["commit", "-q", "-m", "first"]):
        subprocess.run([*git, *argv], cwd=repository, check=True)
    revision = deploy.layer.git_revision(output, repository)
    assert re.fullmatch(REVISION, revision), revision
    longest_stack = max((templates.stack_name("a" * 16, layer) for layer in templates.LAYERS), key=len)
    create = botocore_session().get_service_model("cloudformation").operation_model("CreateChangeSet")
    most = create.input_shape.members["ChangeSetName"].metadata["max"]  # 128
    assert len(f"{longest_stack}-{'0' * 17}-{revision}-dirty-settle") <= most


def test_a_printed_command_names_the_runs_region_and_the_endpoint_it_was_pointed_at(monkeypatch):
    from templates.params import SANDBOX_KEYS  # what the sandbox sets (emulator/sandbox.py environment)

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAREALLOOKINGKEY01")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-sandbox-secret")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
    assert deploy.aws.cli("eu-west-1") == "aws --region eu-west-1 --endpoint-url http://127.0.0.1:4566"
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://[::1]:4566")  # brackets: a shell pattern unless quoted
    assert deploy.aws.cli("eu-west-1") == "aws --region eu-west-1 --endpoint-url 'http://[::1]:4566'"
    # The sandbox's key id with another secret is other keys all the same: none are named.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", SANDBOX_KEYS["AWS_ACCESS_KEY_ID"])
    assert deploy.aws.cli("eu-west-1") == "aws --region eu-west-1 --endpoint-url 'http://[::1]:4566'"
    # The sandbox's fixed fake keys are named, so that the command works pasted outside make's shell;
    # other keys never are.
    for name, value in SANDBOX_KEYS.items():
        monkeypatch.setenv(name, value)
    keys = " ".join(f"{name}={value}" for name, value in SANDBOX_KEYS.items())
    dropped = "-u AWS_PROFILE -u AWS_DEFAULT_PROFILE -u AWS_SESSION_TOKEN -u AWS_SECURITY_TOKEN -u AWS_CREDENTIAL_EXPIRATION"
    assert deploy.aws.cli("eu-west-1") == (
        f"env {dropped} no_proxy='[::1]' {keys} aws --region eu-west-1 --endpoint-url 'http://[::1]:4566'"
    )
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    assert deploy.aws.cli("eu-west-1") == "aws --region eu-west-1"


# A stand-in for the AWS CLI, which reads its profile, credentials and endpoint with botocore as this does.
AWS_CLI_STAND_IN = """
import json, sys
import botocore.session
session = botocore.session.Session()
from botocore.utils import get_environ_proxies
credentials = session.get_credentials()  # ProfileNotFound when AWS_PROFILE names a profile the files lack
keys = credentials.get_frozen_credentials()  # a refresh error when an expiry time is past
endpoint = sys.argv[sys.argv.index("--endpoint-url") + 1]
print(json.dumps({"keys": list(keys), "proxies": get_environ_proxies(endpoint), "argv": sys.argv[1:]}))
"""


def test_a_printed_sandbox_command_pasted_into_a_shell_set_for_another_account_reaches_the_sandbox_with_its_keys(monkeypatch, tmp_path):
    """A shell whose AWS_PROFILE names a profile it lacks stopped the pasted command (ProfileNotFound),
    its session token went along with the sandbox's fake keys, an expiry time past (aws-vault's)
    stopped it, and its proxy got the request."""
    for name, value in SANDBOX_KEYS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
    command = deploy.aws.cli("eu-west-1") + " cloudformation list-stacks"
    stand_in = tmp_path / "bin" / "aws"
    stand_in.parent.mkdir()
    stand_in.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -c {shlex.quote(AWS_CLI_STAND_IN)} "$@"\n')
    stand_in.chmod(0o755)
    shell = {"PATH": f"{stand_in.parent}:/usr/bin:/bin", "HOME": str(tmp_path), "AWS_ACCESS_KEY_ID": "AKIAREALLOOKINGKEY01"}
    shell |= {"AWS_SECRET_ACCESS_KEY": "not-the-sandbox-secret", "AWS_SESSION_TOKEN": "a-real-session-token"}
    shell |= {"HTTP_PROXY": "http://127.0.0.1:9", "http_proxy": "http://127.0.0.1:9", "NO_PROXY": "", "no_proxy": "example.com"}
    for setting in ({"AWS_PROFILE": "prod-admin"}, {"AWS_DEFAULT_PROFILE": "prod-admin"}, {"AWS_SECURITY_TOKEN": "a-legacy-token"}):
        setting |= {"AWS_CREDENTIAL_EXPIRATION": "2020-01-01T00:00:00Z"}
        pasted = subprocess.run(["/bin/sh", "-c", command], env=shell | setting, capture_output=True, text=True)
        assert pasted.returncode == 0, pasted.stderr
        assert json.loads(pasted.stdout) == {
            "keys": [*SANDBOX_KEYS.values(), None],
            "proxies": {},
            "argv": ["--region", "eu-west-1", "--endpoint-url", "http://127.0.0.1:4566", "cloudformation", "list-stacks"],
        }


def test_aws_errors_are_one_line_without_traceback(aws):
    # status reads the relaxed-policy marks only after CloudFormation answered: not here
    aws.cf.add_client_error("describe_stacks", "ExpiredToken", "The security token included in the request is expired", 403)
    assert aws.run("status", "--stack", "cert-dns") == 1
    assert (
        aws.err.splitlines()[0]
        == "error: DescribeStacks: ExpiredToken: The security token included in the request is expired; check the credentials: aws sts get-caller-identity"
    )


def test_the_execution_token_is_apart_from_the_change_sets_name_and_fits_128_characters():
    name = cs_name("alb")
    assert deployer.Deployer.execution_token(name) == f"execute-{name}"
    long = "a" + "-b" * 63 + "c"  # 128 characters: a name CHANGE_SET_NAME takes, made by hand
    token = deployer.Deployer.execution_token(long)
    assert len(token) <= 128 and token.startswith("execute-") and token == deployer.Deployer.execution_token(long)
    assert token != deployer.Deployer.execution_token(long[:-1] + "d")


def test_a_reused_client_request_token_is_not_called_a_credentials_problem():
    """TokenAlreadyExistsException (the botocore model's code for a ClientRequestToken used before)
    names a token, not the credentials: the hint is where things stand."""
    for code, operation in (("TokenAlreadyExistsException", "ExecuteChangeSet"), ("InvalidNextToken", "GetParameterHistory")):
        said = deploy.aws.explain(ClientError({"Error": {"Code": code, "Message": "the token"}}, operation), ENV)
        assert said.startswith(f"error: {operation}: {code}: ") and "credentials" not in said, said
        assert said.endswith(f"see where things stand: make status ENV={ENV}"), said
    for code in (
        "ExpiredTokenException",
        "UnrecognizedClientException",
        "SignatureDoesNotMatch",
        "InvalidSignatureException",
        "RequestExpired",
        "AuthFailure",
    ):
        assert "check the credentials" in deploy.aws.explain(ClientError({"Error": {"Code": code, "Message": "no"}}, "DescribeStacks"), ENV)


@pytest.mark.parametrize("code", ["AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthorizationError", "NotAuthorized"])
def test_a_permission_refused_is_not_called_a_credentials_problem(code):
    # Valid credentials without the permission: "check the credentials" sent the operator to aws sts
    # get-caller-identity, which works, rather than to what the caller may do.
    said = deploy.aws.explain(ClientError({"Error": {"Code": code, "Message": "no"}}, "SetStackPolicy"), ENV, "status")
    assert said == (
        f"error: SetStackPolicy: {code}: no; the caller may not do it (its IAM policy, a permissions boundary or an "
        "organization's SCP): aws sts get-caller-identity names it"
    )


@pytest.mark.parametrize(
    "code", ["IncompleteSignature", "InvalidClientTokenId", "MissingAuthenticationToken", "InvalidAccessKeyId", "UnauthorizedException"]
)
def test_more_credential_errors_are_said_as_such(code):
    said = explain(ClientError({"Error": {"Code": code, "Message": "no"}}, "DescribeStacks"), ENV)
    assert said == f"error: DescribeStacks: {code}: no; check the credentials: aws sts get-caller-identity"


def test_a_change_set_not_found_is_known_by_the_models_shape_name_too():
    # not_found takes ChangeSetNotFound and the botocore model's shape name, ChangeSetNotFoundException, alike
    for code in ("ChangeSetNotFound", "ChangeSetNotFoundException"):
        assert deploy.aws.not_found(ClientError({"Error": {"Code": code, "Message": "ChangeSet [x] does not exist"}}, "DescribeChangeSet"))


@pytest.mark.parametrize("made_from", ["an earlier checkout", "a hand swapped in"])
def test_a_change_set_made_from_another_template_than_output_holds_is_not_executed(aws, made_from):
    # Another template under the reviewed name (made by hand since the review), or output/ moved on (a pull and make
    # templates since make changeset): executing it deployed a template nobody compared with output/.
    other = json.loads(template("cert-dns"))
    other["Resources"]["OpenSsh"] = {"Type": "AWS::EC2::SecurityGroupIngress", "Properties": {"CidrIp": "0.0.0.0/0", "IpProtocol": "tcp"}}
    if made_from == "an earlier checkout":
        other = json.loads(template("cert-dns")) | {"Description": "what an earlier checkout generated"}
    aws.cf.add_response(
        "describe_change_set", change_set("cert-dns"), {"StackName": stack("cert-dns"), "ChangeSetName": cs_name("cert-dns")}
    )
    aws.deployed("cert-dns")
    aws.change_set_template("cert-dns", json.dumps(other))
    executions = requests_of(aws, "ExecuteChangeSet")
    assert aws.run("execute", "--stack", "cert-dns", "--changeset", cs_name("cert-dns"), "--yes") == 2
    assert executions == []
    assert aws.err.startswith(
        f"error: change set {cs_name('cert-dns')} was made from another template than {templates.relative(OUTPUT / 'cert-dns.json')} holds now"
    ), aws.err
    assert f"or check out the commit it was made from ({stubbed_aws.CHECKOUT}), make templates" in aws.err, aws.err  # its name gives it


def test_a_change_set_refused_as_made_from_another_template_names_the_commit_its_name_gives_where_one_does():
    from scripts.deploy.commands import made_at

    assert made_at("18d684f") == " (18d684f)"
    assert made_at("18d684f-dirty") == " (18d684f, with changes not committed then)"
    assert made_at("nogit") == made_at("nogit-dirty") == made_at("unknown") == ""


def rollbacks_change_set_left_at_its_question(aws, running, body=None, to="v1"):
    """make execute of the change set of a make rollback from v2 to `to` (v1) that stopped at its question, on a stack
    running the image `running` from the template `body` (output/'s by default), made from that template: no terminal, it
    goes as far as its question, and no further."""
    layer = deploy.layer.load_layer(ENV, "service", OUTPUT)
    description = deploy_text.change_set_description(layer, rolling_back_from="v2")
    left = change_set("service", parameters=service_parameters(to)) | {"Description": description}
    aws.cf.add_response("describe_change_set", left, {"StackName": stack("service"), "ChangeSetName": cs_name("service")})
    aws.deployed("service", parameters=service_parameters(running))
    body = body or template("service")
    aws.cf.add_response("get_template", {"TemplateBody": body}, {"StackName": stack("service"), "TemplateStage": "Original"})
    aws.change_set_template("service", body)
    aws.listed_change_sets("service")
    assert aws.run("execute", "--stack", "service", "--changeset", cs_name("service")) == 1  # no terminal: left at the question


def test_a_rollbacks_change_set_left_at_its_question_is_compared_with_the_template_the_stack_runs(aws):
    # make rollback makes it from the deployed template, not output/'s: compared with output/'s, make execute refused it.
    runs = json.loads(template("service")) | {"Description": "the service layer as an earlier checkout generated it"}
    rollbacks_change_set_left_at_its_question(aws, "v2", json.dumps(runs))
    assert "no terminal to ask on" in aws.err and "another template" not in aws.err, aws.err


def test_execute_of_a_rollbacks_change_set_made_while_another_image_ran_shows_the_running_image_escaped(aws):
    # Its description says it rolls back from v2, but the stack runs an image anyone who may update it wrote.
    rollbacks_change_set_left_at_its_question(aws, HOSTILE_IMAGE)
    assert (
        f"note: change set {cs_name('service')} says it is a rollback from v2, but {HOSTILE_SHOWN} runs: recorded as a release"
    ) in aws.out.splitlines(), ascii(aws.out)
    assert "\x1b" not in aws.out and "\u202e" not in aws.out, ascii(aws.out)


def test_execute_of_a_rollbacks_change_set_that_deploys_the_image_it_says_it_leaves_is_recorded_as_a_release(aws):
    # its description says it rolls back from v2, and v2 runs, but it deploys v2 itself: recorded as a rollback from v2,
    # the next make rollback would pass v2 over
    rollbacks_change_set_left_at_its_question(aws, "v2", to="v2")
    said = f"note: change set {cs_name('service')} says it is a rollback from v2, but it deploys v2 itself: recorded as a release"
    assert said in aws.out.splitlines() and "recorded as one" not in aws.out, aws.out


def reviewed_cert_dns_executed(aws, **made) -> None:
    """make execute of a reviewed change set of the cert-dns stack (made: reviewed_change_set's), which runs and completes."""
    aws.reviewed_change_set("cert-dns", **made)
    aws.execute("cert-dns")
    aws.poll("cert-dns", stack_id("cert-dns"), described("cert-dns"), event("cert-dns", stack("cert-dns"), "UPDATE_COMPLETE", 30))
    aws.cf.add_response(
        "set_stack_policy",
        {},
        {"StackName": stack("cert-dns"), "StackPolicyBody": json.dumps(configuration(ENV, "cert-dns")["StackPolicy"])},
    )
    assert aws.run("execute", "--stack", "cert-dns", "--changeset", cs_name("cert-dns"), "--yes") == 0, aws.err


def test_execute_runs_a_reviewed_change_set_of_that_stack(aws):
    reviewed_cert_dns_executed(aws)
    assert "HostedZoneConfig (DirectModification)" in aws.out and f"{stack('cert-dns')}: UPDATE_COMPLETE" in aws.out


def test_an_import_change_set_made_by_hand_and_executed_ends_as_a_success(aws):
    # (mutation audit) IMPORT_COMPLETE, where an IMPORT change set ends (the tool makes none; one made by hand under the
    # tool's name runs), taken out of the statuses that succeed passed: the run said it failed, with no failure to show
    aws.reviewed_change_set("cert-dns")
    aws.execute("cert-dns")
    aws.poll(
        "cert-dns",
        stack_id("cert-dns"),
        described("cert-dns", "IMPORT_COMPLETE"),
        event("cert-dns", stack("cert-dns"), "IMPORT_COMPLETE", 30),
    )
    policy = json.dumps(configuration(ENV, "cert-dns")["StackPolicy"])
    aws.cf.add_response("set_stack_policy", {}, {"StackName": stack("cert-dns"), "StackPolicyBody": policy})
    assert aws.run("execute", "--stack", "cert-dns", "--changeset", cs_name("cert-dns"), "--yes") == 0, aws.err
    assert f"{stack('cert-dns')}: IMPORT_COMPLETE" in aws.out.splitlines(), aws.out


def test_a_change_set_with_our_tags_alone_is_executed(aws):
    # an environment whose params file gives no tags of its own: the change set carries the tool's tags and no more
    changes = [change("Modify", "HostedZone", "AWS::Route53::HostedZone", details=[detail("HostedZoneConfig")])]
    ours = [{"Key": k, "Value": v} for k, v in templates.own_tags(ENV, "cert-dns").items()]
    reviewed_cert_dns_executed(aws, made=change_set("cert-dns", changes=changes) | {"Tags": ours})
    assert f"{stack('cert-dns')}: UPDATE_COMPLETE" in aws.out


MALLORY_TOPIC = f"arn:aws:sns:{REGION}:{ACCOUNT}:mallory"
HAND_MADE = "made by hand, it is not executed; make one: make changeset STACK=cert-dns ENV={env}"


@pytest.mark.parametrize(
    "asks, reads_stack, said",
    [
        # Other tags: its execution replaced the stack's, and the tool then took the stack for someone else's and
        # refused to deploy or destroy it.
        (
            {"Tags": [{"Key": "Owner", "Value": "mallory"}]},
            False,
            f"lacks the tags every stack of this tool carries (Project={templates.PROJECT}, Environment={ENV}, Layer=cert-dns): "
            f"made by hand, it would take {stack('cert-dns')} away from the tool, which would then refuse to deploy or destroy it; "
            f"make one: make changeset STACK=cert-dns ENV={ENV}",
        ),
        # Executed, its topics would become the stack's and receive its events; an import would take in resources
        # someone else made, which a destroy or purge would then delete.
        (
            {"NotificationARNs": [MALLORY_TOPIC]},
            True,
            f"asks for notification topics the stack has not ({MALLORY_TOPIC}), which this tool's change sets never do: "
            + HAND_MADE.format(env=ENV),
        ),
        (
            {"ImportExistingResources": True},
            True,
            "asks for ImportExistingResources (taking in resources it did not make), which this tool's change sets never do: "
            + HAND_MADE.format(env=ENV),
        ),
    ],
)
def test_a_change_set_made_by_hand_with_what_ours_never_carry_is_not_executed(aws, asks, reads_stack, said):
    hand = change_set("cert-dns") | asks
    aws.cf.add_response("describe_change_set", hand, {"StackName": stack("cert-dns"), "ChangeSetName": cs_name("cert-dns")})
    if reads_stack:
        aws.deployed("cert-dns")
    executions = requests_of(aws, "ExecuteChangeSet")
    assert aws.run("execute", "--stack", "cert-dns", "--changeset", cs_name("cert-dns"), "--yes") == 2
    assert executions == []
    assert aws.err == f"error: change set {cs_name('cert-dns')} {said}\n"


def test_a_change_set_keeping_the_notification_topics_the_stack_has_is_executed(aws, monkeypatch):
    # Topics an operator gave the stack (CreateChangeSet may state them again): the change set adds none.
    def with_topics(layer, **kwargs):
        found = described(layer, **kwargs)
        found["Stacks"][0]["NotificationARNs"] = [MALLORY_TOPIC] if layer == "cert-dns" else []
        return found

    monkeypatch.setattr(stubbed_aws, "described", with_topics)
    reviewed_cert_dns_executed(aws, made=change_set("cert-dns") | {"NotificationARNs": [MALLORY_TOPIC]})
    assert f"{stack('cert-dns')}: UPDATE_COMPLETE" in aws.out


def test_a_change_set_that_carries_no_tags_is_executed(aws):
    # CreateChangeSet without Tags leaves the stack's own ("If you don't specify this parameter, AWS CloudFormation doesn't
    # modify the stack's tags"): such a change set takes nothing away from the tool, unlike one with other tags.
    changes = [change("Modify", "HostedZone", "AWS::Route53::HostedZone", details=[detail("HostedZoneConfig")])]
    untagged = change_set("cert-dns", changes=changes)
    del untagged["Tags"]
    reviewed_cert_dns_executed(aws, made=untagged)
    assert f"{stack('cert-dns')}: UPDATE_COMPLETE" in aws.out and "lacks the tags" not in aws.err


def test_execute_of_a_change_set_the_stack_answers_with_another_stacks_is_refused(aws):
    # An emulator finds a change set by its name alone, whatever StackName says: named after another layer's stack, it
    # is that stack's, and executing it would change that stack, not the one STACK= names.
    other = change_set("alb")
    aws.cf.add_response("describe_change_set", other, {"StackName": stack("cert-dns"), "ChangeSetName": cs_name("alb")})
    executions = requests_of(aws, "ExecuteChangeSet")
    assert aws.run("execute", "--stack", "cert-dns", "--changeset", cs_name("alb"), "--yes") == 2
    assert executions == []
    assert aws.err == f"error: change set {cs_name('alb')} belongs to {stack('alb')}, not {stack('cert-dns')}\n"


def test_a_change_set_older_than_the_stacks_last_update_is_refused(aws):
    # Reviewed yesterday, and someone deployed since: executing it would revert that deploy.
    older = change_set("cert-dns") | {"CreationTime": NOW - timedelta(days=2)}
    aws.cf.add_response("describe_change_set", older, {"StackName": stack("cert-dns"), "ChangeSetName": cs_name("cert-dns")})
    aws.deployed("cert-dns")  # LastUpdatedTime: a day ago
    assert aws.run("execute", "--stack", "cert-dns", "--changeset", cs_name("cert-dns"), "--yes") == 1
    assert f"before {stack('cert-dns')}'s last update" in aws.err and "make changeset STACK=cert-dns" in aws.err


def test_parameter_only_change_still_shows(aws):
    before = configuration(ENV, "cert-dns")["Parameters"] | {"ExistingHostedZoneId": "Z0000000000OLDZONE"}
    aws.deployed("cert-dns", parameters=before)
    aws.zone_checked("cert-dns")  # another zone: asked for, as at a create
    aws.change_set("cert-dns", "UPDATE", [], left=True)
    assert aws.run("changeset", "--stack", "cert-dns") == 0, aws.err
    wanted = configuration(ENV, "cert-dns")["Parameters"]["ExistingHostedZoneId"]
    assert f"parameter ExistingHostedZoneId: Z0000000000OLDZONE -> {wanted}" in aws.out
    assert "(no resource changes: parameter values or tags only)" in aws.out


def test_a_deploy_names_the_change_sets_left_for_review_that_running_its_own_ends(aws):
    """CloudFormation deletes a stack's other change sets when one runs: a change set made by make
    changeset and not yet executed is named before the deploy asks, or runs with YES=1."""
    layer = "cert-dns"
    aws.deployed(layer)
    reviewed = f"{stack(layer)}-20251125110000-abc1234"
    aws.change_set(layer, "UPDATE", [change("Modify", "HostedZone", "AWS::Route53::HostedZone")], waiting=[reviewed])
    aws.cf.add_response("delete_change_set", {}, {"StackName": stack(layer), "ChangeSetName": cs_name(layer)})  # declined: discarded
    assert aws.run("deploy", "--stack", layer) == 1  # no answer off a terminal: nothing runs
    note = f"  note: running this change set ends the other change sets of {stack(layer)}, left for review or by a stopped run: {reviewed} (made 2025-11-25 11:00"
    assert note in aws.out, aws.out
    assert "no terminal to ask on and no YES=1" in aws.err  # said before the question, which here is refused


def test_make_execute_names_the_other_change_sets_left_for_review_that_it_ends(aws):
    layer = "cert-dns"
    other = f"{stack(layer)}-20251125110000-abc1234"
    aws.reviewed_change_set(layer, waiting=[other])
    assert aws.run("execute", "--stack", layer, "--changeset", cs_name(layer)) == 1  # no terminal: left, after the note
    assert (
        f"  note: running this change set ends the other change sets of {stack(layer)}, left for review or by a stopped run: {other} (made "
        in aws.out
    )
    assert "change set left for review; to execute without asking, rerun with YES=1 (--yes)" in aws.err
    assert "was made with other values" not in aws.out  # made with output/'s values: nothing to warn of


class ReaderGoneAfter(io.StringIO):
    """Standard output whose reader (`| head -n`) goes after `lines` lines: a write then finds the pipe closed."""

    def __init__(self, lines):
        super().__init__()
        self.lines = lines

    def write(self, text):
        if self.getvalue().count("\n") >= self.lines:
            raise BrokenPipeError(32, "Broken pipe")
        return super().write(text)


def test_a_deploy_whose_output_reader_is_gone_runs_to_its_end_with_yes_and_is_refused_without(aws):
    layer = "cert-dns"
    changes = [change("Modify", "HostedZone", "AWS::Route53::HostedZone", details=[detail("HostedZoneConfig")])]
    # Asked on a terminal while nobody reads the question: refused, and the change set is not left behind.
    aws.deployed(layer)
    aws.change_set(layer, "UPDATE", changes)
    aws.cf.add_response("delete_change_set", {}, {"StackName": stack(layer), "ChangeSetName": cs_name(layer)})
    assert aws.run("deploy", "--stack", layer, tty=True, answer="y", out=ReaderGoneAfter(1)) == 1
    assert "error: the output's reader is gone (a closed pipe: nobody reads the question) and no YES=1 (--yes)" in aws.err
    # The same when input()'s own prompt is what finds the pipe closed.
    aws.deployed(layer)
    aws.change_set(layer, "UPDATE", changes)
    aws.cf.add_response("delete_change_set", {}, {"StackName": stack(layer), "ChangeSetName": cs_name(layer)})
    assert aws.run("deploy", "--stack", layer, tty=True, answer=BrokenPipeError(32, "Broken pipe"), out=ReaderGoneAfter(100)) == 1
    assert "the output's reader is gone" in aws.err
    # With YES=1 the deploy goes on to its end, what it says after the first line dropped.
    aws.deployed(layer)
    aws.change_set(layer, "UPDATE", changes)
    aws.execute(layer)
    aws.poll(layer, stack_id(layer), described(layer), event(layer, stack(layer), "UPDATE_COMPLETE", 30))
    aws.cf.add_response(
        "set_stack_policy", {}, {"StackName": stack(layer), "StackPolicyBody": json.dumps(configuration(ENV, layer)["StackPolicy"])}
    )
    assert aws.run("deploy", "--stack", layer, "--yes", out=ReaderGoneAfter(1)) == 0, aws.err
    assert aws.out.count("\n") == 1 and aws.err == ""


def test_a_closed_stderr_neither_stops_a_deploy_nor_ends_it_in_a_traceback(aws):
    # `make deploy 2>&1 | head -3`: the reader of both streams gone, what goes to stderr is dropped too.
    layer = "cert-dns"
    aws.deployed(layer)
    aws.change_set(layer, "UPDATE", [change("Modify", "HostedZone", "AWS::Route53::HostedZone", details=[detail("HostedZoneConfig")])])
    aws.cf.add_response("delete_change_set", {}, {"StackName": stack(layer), "ChangeSetName": cs_name(layer)})
    assert aws.run("deploy", "--stack", layer, out=ReaderGoneAfter(1), err=ReaderGoneAfter(0)) == 1  # refused: no terminal, no YES=1
    # With YES=1 it runs to its end, every stub used (the fixture checks), though neither stream is read.
    aws.deployed(layer)
    aws.change_set(layer, "UPDATE", [change("Modify", "HostedZone", "AWS::Route53::HostedZone", details=[detail("HostedZoneConfig")])])
    aws.execute(layer)
    aws.poll(layer, stack_id(layer), described(layer), event(layer, stack(layer), "UPDATE_COMPLETE", 30))
    policy = json.dumps(configuration(ENV, layer)["StackPolicy"])
    aws.cf.add_response("set_stack_policy", {}, {"StackName": stack(layer), "StackPolicyBody": policy})
    assert aws.run("deploy", "--stack", layer, "--yes", out=ReaderGoneAfter(0), err=ReaderGoneAfter(0)) == 0


def test_make_status_prints_no_table_header_above_an_error_of_a_later_stacks_read(aws):
    first, second, *_ = templates.layer_order()
    aws.not_deployed(first)
    aws.cf.add_client_error("describe_stacks", "AccessDenied", "not allowed", 403, expected_params={"StackName": stack(second)})
    assert aws.run("status") == 1
    assert aws.out == "" and aws.err.startswith("error: DescribeStacks: AccessDenied: not allowed"), (aws.out, aws.err)


def test_a_command_that_only_reads_stops_quietly_when_its_output_reader_is_gone(aws):
    # `make status | head -1` after the header: 141, as a shell reports a writer that SIGPIPE ended; no AWS call after it
    # (the header comes once the stacks are read).
    for layer in templates.layer_order():
        aws.not_deployed(layer)
    assert aws.run("status", out=ReaderGoneAfter(0)) == 141
    assert aws.err == "" and aws.out == ""


def test_change_sets_that_cannot_be_listed_are_a_note_not_a_failure(aws):
    layer = "cert-dns"
    aws.deployed(layer)
    aws.change_set(layer, "UPDATE", [change("Modify", "HostedZone", "AWS::Route53::HostedZone")], left=True)
    aws.cf.add_client_error("list_change_sets", "AccessDenied", "not allowed", 403, expected_params={"StackName": stack(layer)})
    aws.cf.add_response("delete_change_set", {}, {"StackName": stack(layer), "ChangeSetName": cs_name(layer)})  # declined: discarded
    assert aws.run("deploy", "--stack", layer) == 1  # no terminal to ask on: refused as ever, after the note
    assert f"  note: the other change sets of {stack(layer)} could not be listed (AccessDenied); any ends when this one runs" in aws.out
    assert "no terminal to ask on" in aws.err


def test_credentials_that_expire_mid_wait_say_cloudformation_carries_on_and_how_to_follow_it(aws):
    # An SSO session that ends during an hour-long service release: the update goes on without us.
    layer = "cert-dns"
    aws.deployed(layer)
    aws.change_set(layer, "UPDATE", [change("Modify", "HostedZone", "AWS::Route53::HostedZone", details=[detail("HostedZoneConfig")])])
    aws.execute(layer)
    aws.poll(layer, stack_id(layer), described(layer, "UPDATE_IN_PROGRESS"), event(layer, stack(layer), "UPDATE_IN_PROGRESS", 1))
    aws.cf.add_client_error("describe_stacks", "ExpiredToken", "The security token included in the request is expired", 400)
    assert aws.run("deploy", "--stack", layer, "--yes") == 1
    lines = aws.err.splitlines()
    assert (
        lines[0]
        == "error: DescribeStacks: ExpiredToken: The security token included in the request is expired; check the credentials: aws sts get-caller-identity"
    )
    assert lines[1] == f"  the wait stopped: CloudFormation carries on with {stack(layer)} (UPDATE_IN_PROGRESS); nothing was cancelled."
    assert (
        lines[2].startswith(f"  follow it:         make status ENV={ENV}")
        and f"cancel-update-stack --stack-name {stack(layer)}" in lines[3]
    )
    # its events by the stack's id, which DescribeStackEvents takes once the stack is deleted too (the name it does not)
    assert lines[2].endswith(f"cloudformation describe-stack-events --stack-name {stack_id(layer)})"), lines[2]


def test_a_stale_final_status_read_right_after_execute_does_not_end_the_wait(aws):
    layer = "cert-dns"
    aws.deployed(layer)
    aws.change_set(layer, "UPDATE", [change("Modify", "HostedZone", "AWS::Route53::HostedZone", details=[detail("HostedZoneConfig")])])
    aws.execute(layer)
    previous = event(layer, stack(layer), "UPDATE_COMPLETE", -86400, token="an-earlier-deploy")
    aws.poll(layer, stack_id(layer), described(layer, "UPDATE_COMPLETE"), previous)  # not yet showing this update
    aws.poll(layer, stack_id(layer), described(layer, "UPDATE_IN_PROGRESS"), previous, event(layer, stack(layer), "UPDATE_IN_PROGRESS", 1))
    aws.poll(layer, stack_id(layer), described(layer, "UPDATE_COMPLETE"), previous, event(layer, stack(layer), "UPDATE_COMPLETE", 20))
    aws.cf.add_response(
        "set_stack_policy", {}, {"StackName": stack(layer), "StackPolicyBody": json.dumps(configuration(ENV, layer)["StackPolicy"])}
    )
    assert aws.run("deploy", "--stack", layer, "--yes") == 0, aws.err
    assert aws.sleeps == [1.0, 1.5] and "an-earlier" not in aws.out


@pytest.mark.parametrize("stale_polls", [1, 3], ids=["beside this update's first event", "for three polls"])
def test_a_stale_final_status_ends_the_wait_only_with_the_stacks_own_final_event_of_this_update(aws, stale_polls):
    """DescribeStacks may still say the previous update's UPDATE_COMPLETE after this one's "User
    Initiated" event is out, or for longer than two polls: only this operation's own final stack
    event ends the wait (else the release is recorded and the stack policy reapplied mid-update)."""
    layer = "cert-dns"
    aws.deployed(layer)
    aws.change_set(layer, "UPDATE", [change("Modify", "HostedZone", "AWS::Route53::HostedZone", details=[detail("HostedZoneConfig")])])
    aws.execute(layer)
    started = event(layer, stack(layer), "UPDATE_IN_PROGRESS", 1, reason="User Initiated")
    for _ in range(stale_polls):  # the first event is out at once, or only after the stale reads
        aws.poll(layer, stack_id(layer), described(layer, "UPDATE_COMPLETE"), *([started] if stale_polls == 1 else []))
    aws.poll(layer, stack_id(layer), described(layer, "UPDATE_IN_PROGRESS"), started)
    aws.poll(layer, stack_id(layer), described(layer, "UPDATE_COMPLETE"), started, event(layer, stack(layer), "UPDATE_COMPLETE", 20))
    aws.cf.add_response(
        "set_stack_policy", {}, {"StackName": stack(layer), "StackPolicyBody": json.dumps(configuration(ENV, layer)["StackPolicy"])}
    )
    assert aws.run("deploy", "--stack", layer, "--yes") == 0, aws.err
    assert len(aws.sleeps) == stale_polls + 1 and f"{stack(layer)}: UPDATE_COMPLETE" in aws.out


def test_a_stack_stuck_in_update_rollback_failed_is_not_touched_and_points_to_recover(aws):
    aws.deployed("cert-dns", status="UPDATE_ROLLBACK_FAILED")
    assert aws.run("deploy", "--stack", "cert-dns", "--yes") == 1
    assert aws.err.startswith(f"error: {stack('cert-dns')} is UPDATE_ROLLBACK_FAILED: a rollback could not finish")
    assert f"make recover STACK=cert-dns ENV={ENV}" in aws.err


def test_a_stack_name_given_for_stack_is_refused_naming_its_layer(aws):
    assert aws.run("status", "--stack", stack("alb")) == 2  # nothing queued: no call is made
    assert aws.err.startswith(f"error: unknown layer {stack('alb')!r} (STACK takes the layer: STACK=alb); layers: ")
    assert aws.run("status", "--stack", "albb") == 2
    assert aws.err.startswith("error: unknown layer 'albb' (did you mean alb?); layers: ")
    for several in ("alb,service", "alb service"):  # STACK="alb service" was "did you mean service?"
        assert aws.run("status", "--stack", several) == 2
        assert aws.err.startswith(
            f"error: unknown layer {several!r} (STACK takes one layer: a run per layer, or leave STACK= out for every layer); layers: "
        )


@pytest.mark.parametrize("command", ["destroy", "deploy", "status"])
def test_an_empty_stack_is_refused_not_taken_for_every_layer(aws, command):
    # STACK=$LAYER with LAYER unset: `make destroy STACK= YES=1` would have destroyed every layer.
    assert aws.run(command, "--stack=", "--yes") == 2  # nothing queued: no call is made
    assert aws.err == f"error: STACK= is empty: name a layer ({', '.join(templates.LAYERS)}), or leave STACK= out for every layer\n"


@pytest.mark.parametrize(
    "command, extra",
    [
        ("rollback", ["--yes"]),  # `make rollback STACK= YES=1` executed a rollback on the sandbox
        ("verify", ["--timeout=0"]),
        ("releases", []),
        ("logs", []),
        ("continue", ["--yes"]),
        ("task", ["--cmd=python manage.py migrate", "--yes"]),
        ("execute", ["--changeset", cs_name("service"), "--yes"]),  # `make execute STACK= CHANGESET=<name> YES=1` executed it
    ],
)
def test_an_empty_stack_is_refused_by_the_commands_that_fill_in_their_layer_too(aws, command, extra):
    # README (Values on make's command line): "A value given empty (...) is passed on and refused, never read as
    # left out". The service's commands and execute (whose change set's name gives the layer) read STACK= given
    # empty (STACK=$LAYER with LAYER unset) as left out, and went on to the stacks.
    # Named as the layers the command takes: "name a layer (ci, cert-dns, alb, ...)" led to "rollback works on the
    # service layer" for all but one of them (an attacker review).
    assert aws.run(command, "--stack=", *extra) == 2  # nothing queued: no call is made
    takes = "service" if command != "execute" else ", ".join(templates.LAYERS)
    assert aws.err.startswith(f"error: STACK= is empty: name a layer ({takes}), or leave STACK= out for the "), aws.err
    assert aws.out == ""


@pytest.mark.parametrize(
    "command, extra, left_out",
    [
        ("changeset", [], ""),
        ("events", [], ""),
        ("recover", ["--yes"], ", or leave STACK= out for the one layer whose update's rollback failed"),
        ("rollback", ["--yes"], ", or leave STACK= out for the service layer"),
        (
            "execute",
            ["--changeset", cs_name("service"), "--yes"],
            ", or leave STACK= out for the layer the change set's name gives (service)",
        ),
        ("execute", ["--changeset", "reviewed-by-hand", "--yes"], ""),  # a name that gives none: left out, it is refused
    ],
)
def test_a_refused_stack_offers_leaving_it_out_only_as_what_that_means_to_the_command(aws, command, extra, left_out):
    # `make changeset STACK=` said "or leave STACK= out for every layer"; left out, changeset (events, recover) is
    # refused as needing STACK=<layer>, and rollback works on the service layer alone: the advice led nowhere (a
    # walk through make's targets with mistyped values, then an attacker review).
    assert aws.run(command, "--stack=", *extra) == 2  # nothing queued: no call is made
    takes = "service" if command == "rollback" else ", ".join(templates.LAYERS)
    assert aws.err == f"error: STACK= is empty: name a layer ({takes}){left_out}\n", aws.err
    if command != "rollback":  # a service-layer command's refusal of any other STACK= is the test below
        assert aws.run(command, "--stack=alb service", *extra) == 2
        assert aws.err.startswith(f"error: unknown layer 'alb service' (STACK takes one layer: a run per layer{left_out}); layers: "), (
            aws.err
        )


@pytest.mark.parametrize("given", ["alb service", "alb,service", "albb", stack("alb")])
@pytest.mark.parametrize("command, extra", [("rollback", ["--yes"]), ("verify", ["--timeout=0"]), ("logs", [])])
def test_a_service_command_refusing_an_unknown_stack_names_no_other_layer_as_the_way_on(aws, command, extra, given):
    # An empty STACK= given to a service-layer command names the one layer it takes ("name a layer (service)"), for
    # "name a layer (ci, cert-dns, alb, ...)" led to "rollback works on the service layer". An unknown STACK= still
    # led there: "STACK takes one layer: a run per layer", "did you mean alb?", "STACK takes the layer: STACK=alb" and
    # "layers: ci, cert-dns, alb, ...", each followed, are refused as "rollback works on the service layer" (an
    # attacker review)
    assert aws.run(command, f"--stack={given}", *extra) == 2  # nothing queued: no call is made
    assert aws.err == f"error: {command} works on the service layer: STACK=service (--stack service)\n", aws.err


@pytest.mark.parametrize("command", ["zone", "unlock"])
def test_an_empty_stack_given_to_a_command_that_takes_none_is_told_to_leave_it_out(aws, command):
    # "STACK= is empty: name a layer" told make zone STACK= to name one, which zone then refuses
    assert aws.run(command, "--stack=", "--yes") == 2  # nothing queued: no call is made
    assert aws.err.endswith(": leave out STACK= (--stack)\n") and "name a layer" not in aws.err, aws.err


def test_on_the_sandbox_a_stack_stuck_in_update_rollback_failed_points_to_starting_it_afresh_not_to_recover(aws, monkeypatch):
    # moto has no ContinueUpdateRollback: recover there is refused, and only on a stack that needs it
    # (a healthy one is not told to start the sandbox afresh).
    monkeypatch.setattr(stubbed_aws, "ENV", SANDBOX_ENV)  # stack() and run() name the sandbox's stacks
    aws.deployed("cert-dns", status="UPDATE_ROLLBACK_FAILED")
    assert aws.run("deploy", "--stack", "cert-dns", "--yes") == 1
    assert aws.err.startswith(f"error: {stack('cert-dns')} is UPDATE_ROLLBACK_FAILED: a rollback could not finish; the sandbox cannot")
    assert "make sandbox-stop && make sandbox" in aws.err and "make recover" not in aws.err
    aws.deployed("cert-dns", status="UPDATE_ROLLBACK_FAILED")
    assert aws.run("recover", "--stack", "cert-dns") == 1
    assert aws.err == (
        f"error: {stack('cert-dns')} is UPDATE_ROLLBACK_FAILED; the sandbox cannot continue a rollback (moto has no "
        "ContinueUpdateRollback): start it afresh with make sandbox-stop && make sandbox, then make deploy YES=1\n"
    )
    aws.deployed("cert-dns", status="UPDATE_COMPLETE")
    assert aws.run("recover", "--stack", "cert-dns") == 1
    assert aws.err == f"error: {stack('cert-dns')} is UPDATE_COMPLETE; recover only continues an UPDATE_ROLLBACK_FAILED rollback\n"


HISTORY = f"/startupwebapp/{ENV}/service/releases"
CALLER = f"arn:aws:sts::{ACCOUNT}:assumed-role/deploy/ci"


SERVICE_CREATED = f"{described('service')['Stacks'][0]['CreationTime']:%Y-%m-%dT%H:%M:%SZ}"


def release(tag, time="2025-11-20T10:00:00Z", revision="1111111", stack_created=SERVICE_CREATED):
    return {"time": time, "image_tag": tag, "revision": revision, "by": CALLER, "stack_created": stack_created}


def history(aws, entries):
    if entries is None:
        aws.ssm.add_client_error("get_parameter", "ParameterNotFound", "not found", 400, expected_params={"Name": HISTORY})
    else:
        value = entries if isinstance(entries, str) else json.dumps(entries)  # a str: the parameter's raw text
        parameter = {"Name": HISTORY, "Type": "String", "Value": value, "Version": 1}
        aws.ssm.add_response("get_parameter", {"Parameter": parameter}, {"Name": HISTORY})


def service_update(
    aws,
    tag,
    entries_before,
    running="v1",
    service_read=False,
    rolled_back_from=None,
    repair=False,
    conflict=0,
    recorded=True,
    strategy=None,
    ran=None,
    runs_template=None,
    kept_revision="1111111",
):
    """A service deploy of image `tag` that executes, then records the release (its write left to the
    test when not `recorded`); a repair sends no rollback triggers. With `strategy`, the stack and
    its change set release that way whatever params/prod.yaml says. A rollback (rolled_back_from)
    reads the template the stack runs (runs_template, else output/'s) and sends it with the values
    it runs (ran, else output/'s), the image alone changed; its change set is named at, and its release
    records, kept_revision, the revision of the template it keeps (release()'s by default)."""
    if rolled_back_from:
        aws.named_at = kept_revision
    deployed = ran or service_parameters(running) | ({"DeploymentStrategy": strategy} if strategy else {})
    body = runs_template or template("service")
    if rolled_back_from:
        aws.cf.add_response("get_template", {"TemplateBody": body}, {"StackName": stack("service"), "TemplateStage": "Original"})
    aws.deployed("alb")
    aws.deployed("release-alarms")
    if not service_read:  # a rollback has read the service stack before it deploys
        aws.deployed("service", parameters=deployed)
    changes = IMAGE_TAG_CHANGES
    parameters = deployed | {"ImageTag": tag}
    expected = create_params("service", "UPDATE", repair, aws.named_at, ImageTag=tag)
    if rolled_back_from:
        sent = parameters | {KEEP_RUNNING_COUNT: "true"}
        expected |= {
            "TemplateBody": json.dumps(json.loads(body), indent=2, sort_keys=True) + "\n",  # as output/'s files are written
            "Parameters": [{"ParameterKey": k, "ParameterValue": v} for k, v in sorted(sent.items())],
        }
    aws.change_set("service", "UPDATE", changes, expected, parameters=parameters, repair=repair)
    aws.execute("service")
    aws.poll(
        "service",
        stack_id("service"),
        described("service", parameters=parameters),
        event("service", stack("service"), "UPDATE_COMPLETE", 30, revision=aws.named_at),
    )
    policy = json.dumps(configuration(ENV, "service")["StackPolicy"])
    aws.cf.add_response("set_stack_policy", {}, {"StackName": stack("service"), "StackPolicyBody": policy})
    history(aws, entries_before)
    aws.sts.add_response("get_caller_identity", {"UserId": "AROA:ci", "Account": ACCOUNT, "Arn": CALLER})
    after = [*(entries_before if isinstance(entries_before, list) else []), release(tag, "2025-11-25T12:00:00Z", aws.named_at)]
    if rolled_back_from:
        after[-1]["rolled_back_from"] = rolled_back_from
    after[-1]["replaced"] = running  # the image the stack ran before
    written = {"Name": HISTORY, "Value": json.dumps(after, separators=(",", ":")), "Type": "String", "Overwrite": True, "Description": ANY}
    version = 1 if entries_before is None else 2  # the version read (none, or 1) + 1: nobody wrote in between
    if not recorded:
        return
    aws.ssm.add_response("put_parameter", {"Version": version + conflict}, written)
    if conflict:  # another run wrote version 2: its entries are read back and written again with ours
        theirs = [*entries_before, release("v9", "2025-11-25T11:59:00Z", "fffffff")]
        history_versions = [{"Name": HISTORY, "Version": n, "Value": json.dumps(v)} for n, v in ((1, entries_before), (2, theirs))]
        aws.ssm.add_response("get_parameter_history", {"Parameters": history_versions}, {"Name": HISTORY})
        merged = json.dumps([*theirs, after[-1]], separators=(",", ":"))
        aws.ssm.add_response("put_parameter", {"Version": 4}, written | {"Value": merged})


def test_a_service_release_is_recorded_in_ssm(aws):
    service_update(aws, "v2", None)
    assert aws.run("deploy", "--stack", "service", "--image-tag", "v2", "--yes") == 0, aws.err
    assert f"{stack('service')}: UPDATE_COMPLETE" in aws.out
    minutes = OUTPUT_VALUES["RollbackMonitoringMinutes"]
    assert f"rollback triggers: 2 release alarms, watched during the update and {minutes} minutes after" in aws.out


def test_the_rollback_triggers_are_said_before_the_question(aws):
    # Said after the yes, a repair made without REPAIR=1 while the alarms fire was rolled back unwarned.
    aws.deployed("alb")
    aws.deployed("release-alarms")
    aws.deployed("service", parameters=service_parameters("v1"))
    parameters = service_parameters("v1") | {"ImageTag": "v2"}
    aws.change_set("service", "UPDATE", IMAGE_TAG_CHANGES, create_params("service", "UPDATE", ImageTag="v2"), parameters=parameters)
    aws.cf.add_response("delete_change_set", {}, {"StackName": stack("service"), "ChangeSetName": cs_name("service")})
    assert aws.run("deploy", "--stack", "service", "--image-tag", "v2", tty=True, answer="n") == 1
    # declined at the question, nothing ran after it: what is printed came before it
    assert len(aws.questions) == 1 and "not confirmed" in aws.err, aws.err
    assert "rollback triggers: 2 release alarms, watched during the update" in aws.out, aws.out


@pytest.mark.parametrize("command", [["execute", "--stack", "service", "--changeset", "x"], ["status"], ["destroy", "--stack", "alarms"]])
def test_repair_is_refused_where_it_cannot_apply(aws, command):
    # make execute REPAIR=1 ran the reviewed change set with the triggers it was made with: a repair rolled back.
    assert aws.run(*command, "--repair") == 2  # nothing queued: no call is made
    assert aws.err.startswith("error: REPAIR=1 (--repair) is for make deploy and make changeset (and make rollback, which implies it)"), (
        aws.err
    )
    # the way it names works as printed: the run's environment (left out, make runs the sandbox) and the layer REPAIR=1
    # is for (helper SZ: "STACK=<layer>" with no ENV=)
    (layer,) = templates.ROLLBACK_TRIGGERS
    assert aws.err.rstrip().endswith(f"(for a reviewed change set without them: make changeset STACK={layer} ENV={ENV} REPAIR=1)"), aws.err


@pytest.mark.parametrize("command", ["deploy", "changeset"])
def test_repair_is_refused_for_a_layer_without_rollback_triggers(aws, command):
    # make deploy STACK=alb REPAIR=1 ran as if it had not been given, unsaid (helper S1); the service's: a test above
    for layer in [layer for layer in templates.layer_order() if layer not in templates.ROLLBACK_TRIGGERS]:
        assert aws.run(command, "--stack", layer, "--repair") == 2, (layer, aws.err)  # nothing queued: no call is made
    assert aws.err.startswith("error: REPAIR=1 (--repair) makes a change set without rollback triggers; STACK="), aws.err
    assert aws.err.rstrip().endswith(f"leave it out (the layers with them: {', '.join(sorted(templates.ROLLBACK_TRIGGERS))})"), aws.err


def test_a_blue_green_release_is_waited_for_its_bake_time_on_top_of_the_layers_bound(aws, monkeypatch):
    waits = []
    wait_minutes = deploy.Deployer.wait_minutes

    def recorded(self, stack, extra=0):
        waits.append((stack, extra))
        return wait_minutes(self, stack, extra)

    monkeypatch.setattr(deploy.Deployer, "wait_minutes", recorded)
    service_update(aws, "v2", None, strategy="BLUE_GREEN")
    assert aws.run("deploy", "--stack", "service", "--image-tag", "v2", "--yes") == 0, aws.err
    values = configuration(ENV, "service")["Parameters"]
    # blue/green: the bake time and at most the pause for tests, and the minutes CloudFormation watches
    # the rollback triggers after the update, which the change set states
    monitoring = rollback_configuration("service")["RollbackConfiguration"]["MonitoringTimeInMinutes"]
    assert monitoring > 0
    assert waits == [(stack("service"), int(values["BakeTimeMinutes"]) + int(values["TestPauseMinutes"]) + monitoring)]


def test_a_wait_on_a_service_update_already_running_allows_for_the_waits_its_parameters_give(aws, monkeypatch):
    """A rerun after Ctrl-C (ready()) or make recover waits on an update it did not start: its bound
    comes from the parameters the stack states, the running update's, as the release's would, and
    from the rollback triggers' monitoring time the stack states."""
    waits = []
    wait_minutes = deploy.Deployer.wait_minutes
    monkeypatch.setattr(
        deploy.Deployer, "wait_minutes", lambda self, stack, extra=0: waits.append(extra) or wait_minutes(self, stack, extra)
    )
    # a blue/green release whatever params/prod.yaml says: its bake time and pause for tests are waited for
    values = service_parameters("v1") | {"DeploymentStrategy": "BLUE_GREEN"}
    monitored = described("service", status="UPDATE_IN_PROGRESS", parameters=values)
    monitored["Stacks"][0] |= {"RollbackConfiguration": {"MonitoringTimeInMinutes": 25}}
    aws.cf.add_response("describe_stacks", monitored, {"StackName": stack("service")})
    aws.poll("service", stack_id("service"), described("service"), event("service", stack("service"), "UPDATE_COMPLETE", 60))
    deployer = deploy.Deployer(aws.clients.__getitem__, ENV, out=io.StringIO(), err=io.StringIO(), sleep=lambda s: None, now=lambda: NOW)
    assert deployer.wait_for_stack(stack("service"), token=None)["StackStatus"] == "UPDATE_COMPLETE"
    assert waits == [int(values["BakeTimeMinutes"]) + int(values["TestPauseMinutes"]) + 25]


def test_a_release_this_run_started_is_waited_for_as_long_as_its_own_values_not_the_stacks_old_ones(aws, monkeypatch):
    """(mutation audit) The wait on an update this run executed takes its bound from the values it gave (`given`): a
    rolling stack released blue/green was given the rolling release's bound, and a long bake or pause for tests was
    said to be still in progress before it could end."""
    given = configuration(ENV, "service")["Parameters"] | {"DeploymentStrategy": "BLUE_GREEN"}  # the release's: waits on purpose
    token = event("service", stack("service"), "UPDATE_COMPLETE", 60)["ClientRequestToken"]
    waits = bounds_of_a_wait_on_a_stack_stating_rolling(aws, monkeypatch, given, token, given=given, monitoring=0)
    assert waits == [int(given["BakeTimeMinutes"]) + int(given["TestPauseMinutes"])]


def test_a_waits_events_are_printed_oldest_first_as_they_happened(aws):
    # (mutation audit) DescribeStackEvents lists the newest first: a poll that finds several new events prints them in
    # the order they happened, the stack's own UPDATE_COMPLETE last, not first.
    aws.cf.add_response("describe_stacks", described("service", status="UPDATE_IN_PROGRESS"), {"StackName": stack("service")})
    aws.poll(
        "service",
        stack_id("service"),
        described("service"),
        event("service", stack("service"), "UPDATE_IN_PROGRESS", 1),
        event("service", "Service", "UPDATE_COMPLETE", 30, "AWS::ECS::Service"),
        event("service", stack("service"), "UPDATE_COMPLETE", 60),
    )
    out = io.StringIO()
    deployer = deploy.Deployer(aws.clients.__getitem__, ENV, out=out, err=io.StringIO(), sleep=lambda s: None, now=lambda: NOW)
    token = event("service", stack("service"), "UPDATE_COMPLETE", 60)["ClientRequestToken"]
    assert deployer.wait_for_stack(stack("service"), token)["StackStatus"] == "UPDATE_COMPLETE"
    printed = [line for line in out.getvalue().splitlines() if "UPDATE_" in line]
    assert len(printed) == 3 and "UPDATE_IN_PROGRESS" in printed[0] and "Service" in printed[1], printed
    assert "UPDATE_COMPLETE" in printed[2] and "AWS::ECS::Service" not in printed[2], printed


def test_a_polls_events_read_back_to_the_first_of_an_earlier_operation_and_no_page_further(aws):
    # (mutation audit) A stack's history runs to thousands of events over many pages: each poll reads them only back to
    # the first event it has seen or that is not the operation's. Paging on through the history (W33) would ask for
    # the next page here, which no response answers.
    aws.cf.add_response("describe_stacks", described("service", status="UPDATE_IN_PROGRESS"), {"StackName": stack("service")})
    aws.cf.add_response("describe_stacks", described("service"), {"StackName": stack_id("service")})
    done = event("service", stack("service"), "UPDATE_COMPLETE", 60)
    earlier = event("service", stack("service"), "UPDATE_COMPLETE", -3600, token="an-earlier-operation")
    aws.cf.add_response("describe_stack_events", events(done, earlier) | {"NextToken": "older"}, {"StackName": stack_id("service")})
    out = io.StringIO()
    deployer = deploy.Deployer(aws.clients.__getitem__, ENV, out=out, err=io.StringIO(), sleep=lambda s: None, now=lambda: NOW)
    assert deployer.wait_for_stack(stack("service"), done["ClientRequestToken"])["StackStatus"] == "UPDATE_COMPLETE"
    assert len([line for line in out.getvalue().splitlines() if "UPDATE_COMPLETE" in line]) == 1, out.getvalue()  # not the earlier


@pytest.mark.parametrize("stop", ["its bound", "Ctrl-C", "AccessDenied"])
def test_a_wait_that_stops_while_the_stack_policy_is_relaxed_gives_the_command_that_puts_it_back(aws, stop):
    # (mutation audit) An --allow-replace update whose wait stops (at its bound, at Ctrl-C, at a refused DescribeStacks)
    # leaves the stack policy relaxed while the update runs on: each stop ends with the set-stack-policy of the layer's
    # own policy. With that line dropped from any of the three, every test passed.
    alb = deploy.load_layer(ENV, "alb", OUTPUT)
    aws.cf.add_response("describe_stacks", described("alb", status="UPDATE_IN_PROGRESS"), {"StackName": stack("alb")})
    if stop == "AccessDenied":
        aws.cf.add_client_error("describe_stacks", "AccessDenied", "not authorized to perform cloudformation:DescribeStacks", 403)
    for _ in range(2 if stop == "its bound" else 1 if stop == "Ctrl-C" else 0):
        aws.poll("alb", stack_id("alb"), described("alb", status="UPDATE_IN_PROGRESS"))
    sleeps = []

    def sleep(seconds):
        sleeps.append(seconds)
        if stop == "Ctrl-C":
            raise KeyboardInterrupt

    deployer = deploy.Deployer(
        aws.clients.__getitem__,
        ENV,
        out=io.StringIO(),
        err=io.StringIO(),
        sleep=sleep,
        now=lambda: NOW,
        clock=lambda: 1000 * len(sleeps),
        max_wait=1,
    )  # 60 s: the clock passes it after the second poll
    deployer.policies.relaxed = alb
    with pytest.raises(deploy.Failure) as stopped:
        deployer.wait_for_stack(stack("alb"), "a-token", stack_id=stack_id("alb"))
    said = str(stopped.value)
    assert (
        said.splitlines()[-1]
        == f"  the stack policy is still relaxed (--allow-replace); restore it once the stack settles: {deployer.cli} cloudformation "
        f"set-stack-policy --stack-name {stack('alb')} --stack-policy-body {shlex.quote(json.dumps(alb.policy))}"
    ), said
    assert {"its bound": "stopped waiting", "Ctrl-C": "interrupted", "AccessDenied": "AccessDenied"}[stop] in said, said


def test_a_stack_event_without_a_physical_id_ends_the_wait_on_its_status(aws):
    # (mutation audit, U1's W29) PhysicalResourceId is optional in a StackEvent (String? in AWS's SDK reference:
    # https://docs.aws.amazon.com/sdk-for-kotlin/api/latest/cloudformation/aws.sdk.kotlin.services.cloudformation.model/-stack-event/physical-resource-id.html):
    # the stack's own event without one still says the operation ended. Taken as another stack's, the wait polled on.
    aws.cf.add_response("describe_stacks", described("service", status="UPDATE_IN_PROGRESS"), {"StackName": stack("service")})
    done = event("service", stack("service"), "UPDATE_COMPLETE", 60)
    del done["PhysicalResourceId"]
    aws.poll("service", stack_id("service"), described("service"), done)
    deployer = deploy.Deployer(aws.clients.__getitem__, ENV, out=io.StringIO(), err=io.StringIO(), sleep=lambda s: None, now=lambda: NOW)
    assert deployer.wait_for_stack(stack("service"), done["ClientRequestToken"])["StackStatus"] == "UPDATE_COMPLETE"


def test_a_stack_that_describestacks_no_longer_finds_during_a_wait_is_deleted(aws):
    # (mutation audit, U1's W20) "If the stack doesn't exist, a ValidationError is returned" (API_DescribeStacks): a
    # deletion's wait that reads the stack gone ends it DELETE_COMPLETE, the stack forgotten, not as an error.
    aws.cf.add_response("describe_stacks", described("alb", status="DELETE_IN_PROGRESS"), {"StackName": stack("alb")})
    aws.cf.add_client_error(
        "describe_stacks",
        "ValidationError",
        f"Stack with id {stack_id('alb')} does not exist",
        400,
        expected_params={"StackName": stack_id("alb")},
    )
    deleted = event("alb", stack("alb"), "DELETE_COMPLETE", 5, token=None)
    aws.cf.add_response("describe_stack_events", events(deleted), {"StackName": stack_id("alb")})
    deployer = deploy.Deployer(aws.clients.__getitem__, ENV, out=io.StringIO(), err=io.StringIO(), sleep=lambda s: None, now=lambda: NOW)
    assert deployer.wait_for_stack(stack("alb"), token=None)["StackStatus"] == "DELETE_COMPLETE"
    assert deployer.stacks[stack("alb")] is None


def test_a_wait_on_an_operation_this_run_did_not_start_takes_a_final_status_without_its_events_from_the_third_poll(aws):
    # (mutation audit) A final status read with no event of the operation seen may be the previous operation's (a stale
    # read): it ends the wait from the third poll on, not the second.
    aws.cf.add_response("describe_stacks", described("service", status="UPDATE_IN_PROGRESS"), {"StackName": stack("service")})
    for _ in range(3):
        aws.poll("service", stack_id("service"), described("service"))
    deployer = deploy.Deployer(aws.clients.__getitem__, ENV, out=io.StringIO(), err=io.StringIO(), sleep=lambda s: None, now=lambda: NOW)
    assert deployer.wait_for_stack(stack("service"), token=None)["StackStatus"] == "UPDATE_COMPLETE"
    aws.cf.assert_no_pending_responses()  # the third poll was made


def test_a_running_update_the_stack_states_old_values_for_is_waited_for_as_long_as_the_configured_release(aws, monkeypatch):
    """Whether DescribeStacks shows a running update's new values is not documented: the wait takes
    the longer of what the stack states (rolling, here) and what the layer's parameters give."""
    values = configuration(ENV, "service")["Parameters"] | {"DeploymentStrategy": "BLUE_GREEN"}  # configured: waits on purpose
    waits = bounds_of_a_wait_on_a_stack_stating_rolling(aws, monkeypatch, values, None, configured=values)
    assert waits == [int(values["BakeTimeMinutes"]) + int(values["TestPauseMinutes"])]


def bounds_of_a_wait_on_a_stack_stating_rolling(aws, monkeypatch, values, token, **wait) -> list:
    """The minutes wait_for_stack(token, **wait) adds to the service's bound, where the stack states `values` but for a
    DeploymentStrategy of ROLLING, and the update completes at the first poll."""
    waits = []
    wait_minutes = deploy.Deployer.wait_minutes
    monkeypatch.setattr(
        deploy.Deployer, "wait_minutes", lambda self, stack, extra=0: waits.append(extra) or wait_minutes(self, stack, extra)
    )
    rolling = [{"ParameterKey": k, "ParameterValue": "ROLLING" if k == "DeploymentStrategy" else v} for k, v in values.items()]
    aws.cf.add_response(
        "describe_stacks",
        {"Stacks": [described("service", status="UPDATE_IN_PROGRESS")["Stacks"][0] | {"Parameters": rolling}]},
        {"StackName": stack("service")},
    )
    aws.poll("service", stack_id("service"), described("service"), event("service", stack("service"), "UPDATE_COMPLETE", 60))
    deployer = deploy.Deployer(aws.clients.__getitem__, ENV, out=io.StringIO(), err=io.StringIO(), sleep=lambda s: None, now=lambda: NOW)
    assert deployer.wait_for_stack(stack("service"), token, **wait)["StackStatus"] == "UPDATE_COMPLETE"
    return waits


def test_a_release_written_by_another_run_meanwhile_is_kept(aws):
    # Two deploys record at once: ours lands as version 3, not 2, so version 2 (theirs) is merged back.
    service_update(aws, "v2", [release("v1")], conflict=1)
    assert aws.run("deploy", "--stack", "service", "--image-tag", "v2", "--yes") == 0, aws.err
    assert "the release history changed while this run wrote it (version 1 to 3): merging" in aws.out


def test_a_release_history_write_that_meets_another_runs_write_reads_it_again_and_keeps_both(aws):
    """PutParameter answers TooManyUpdates while another write of the same parameter is under way."""
    before = [release("v1")]
    service_update(aws, "v2", before, recorded=False)
    ours = release("v2", "2025-11-25T12:00:00Z", "abc1234") | {"replaced": "v1"}
    written = {"Name": HISTORY, "Type": "String", "Overwrite": True, "Description": ANY}
    aws.ssm.add_client_error("put_parameter", "TooManyUpdates", "concurrent updates", 400, expected_params=written | {"Value": ANY})
    theirs = [*before, release("v9", "2025-11-25T11:59:00Z", "fffffff")]
    parameter = {"Name": HISTORY, "Type": "String", "Value": json.dumps(theirs), "Version": 2}
    aws.ssm.add_response("get_parameter", {"Parameter": parameter}, {"Name": HISTORY})
    aws.ssm.add_response("put_parameter", {"Version": 3}, written | {"Value": json.dumps([*theirs, ours], separators=(",", ":"))})
    assert aws.run("deploy", "--stack", "service", "--image-tag", "v2", "--yes") == 0, aws.err
    assert "the release history is being written by another run: reading it again in 1 s" in aws.out
    assert 1 in aws.sleeps


def unanswered(aws) -> dict:
    """service -> the calls queued for the run that it did not make (a run stopped early), which are
    then dropped; botocore's Stubber keeps them in its _queue."""
    pending = {}
    for service, stubber in aws.stubbers.items():
        if queued := [response["operation_name"] for response in stubber._queue]:
            pending[service] = queued
        stubber._queue.clear()
    return pending


def test_ctrl_c_as_a_release_is_recorded_is_held_until_it_is_recorded(aws):
    # Between the service update's success and its record, a Ctrl-C left the live release out of the history.
    service_update(aws, "v2", [release("v1")])
    # provide-client-params: before the Stubber, which answers in before-call
    aws.clients["sts"].meta.events.register("provide-client-params.sts.GetCallerIdentity", lambda **_: os.kill(os.getpid(), signal.SIGINT))
    assert aws.run("deploy", "--stack", "service", "--image-tag", "v2", "--yes") == 130
    assert "interrupted" in aws.err
    assert f"{stack('service')}: stopping once the release of v2 is recorded (Ctrl-C again, or a SIGTERM, stops now)" in aws.out
    assert "not recorded" not in aws.out, aws.out  # it was
    # the history written (PutParameter answered), then stopped, before the protection (the next deploy puts it back)
    assert unanswered(aws) == {"cloudformation": ["SetStackPolicy"]}


def test_a_release_is_recorded_before_its_stack_is_protected_which_may_fail(aws):
    # Recorded after the protection, a release whose SetStackPolicy failed (expired credentials after
    # a long wait) stayed out of the history, with nothing said.
    service_update(aws, "v2", [release("v1")])
    requests_of(aws, "SetStackPolicy", raising=ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "SetStackPolicy"))
    assert aws.run("deploy", "--stack", "service", "--image-tag", "v2", "--yes") == 1
    assert "AccessDenied" in aws.err and "not recorded" not in aws.out
    assert unanswered(aws) == {"cloudformation": ["SetStackPolicy"]}  # the history written (PutParameter answered)


def test_a_second_ctrl_c_as_a_release_is_recorded_stops_at_once_saying_how_to_roll_back_from_it(aws):
    service_update(aws, "v2", [release("v1")])
    for client, operation in (("sts", "GetCallerIdentity"), ("ssm", "PutParameter")):
        aws.clients[client].meta.events.register(
            f"provide-client-params.{client}.{operation}", lambda **_: os.kill(os.getpid(), signal.SIGINT)
        )
    assert aws.run("deploy", "--stack", "service", "--image-tag", "v2", "--yes") == 130
    assert (
        f"warning: the release of v2 is live but not recorded in the release history (SSM parameter {HISTORY}); "
        f"a rollback from it must name the image: make rollback ENV={ENV} TAG=v1"
    ) in aws.out, aws.out
    assert unanswered(aws) == {"ssm": ["PutParameter"], "cloudformation": ["SetStackPolicy"]}  # stopped there: protection too is left
    # the way on last: a rerun finds v2 deployed (no changes), and records no release of it
    assert aws.err == f"interrupted; {deploy.commands.GOING_ON_AFTER_CTRL_C['deploy']}; it does not record the release said above\n", (
        aws.err
    )


@pytest.mark.parametrize("tag", ["v2", "v1"], ids=["a new image", "the running image"])
def test_a_release_whose_wait_stops_says_a_rollback_from_it_must_name_the_image(aws, tag):
    service_update(aws, tag, [release("v1")])
    # Ctrl-C at the wait's first DescribeStacks
    aws.clients["cloudformation"].meta.events.register(
        "after-call.cloudformation.ExecuteChangeSet", lambda **_: interrupted_after(aws, "DescribeStacks")
    )
    assert aws.run("deploy", "--stack", "service", "--image-tag", tag, "--yes") == 130
    said = (
        f"if the update completes, the release of v2 is live but not recorded in the release history (SSM parameter {HISTORY}); "
        f"a rollback from it must name the image: make rollback ENV={ENV} TAG=v1\n"
        f"  {deploy.commands.GOING_ON_AFTER_CTRL_C['deploy']}; it does not record the release said above\n"  # the way on, last
    )
    # the running image's own release stays the way back: nothing to say
    assert aws.err.endswith(said) if tag == "v2" else "if the update completes" not in aws.err, aws.err
    assert "PutParameter" in unanswered(aws)["ssm"]


@pytest.mark.parametrize("how", ["a redeploy of the running image", "a rollback"])
def test_a_release_the_history_cannot_take_names_no_image_where_what_ran_before_is_no_way_back(aws, how):
    """Only from a release of a new image is what ran before the way back: after a rollback it is the
    image rolled back from, and after a redeploy the image itself. The warning asks for the image then."""
    if how == "a rollback":
        earlier = [release("v1", "2025-11-20T10:00:00Z"), release("v2", "2025-11-22T10:00:00Z")]
        aws.deployed("service", parameters=service_parameters("v2"))
        history(aws, earlier)
        service_update(aws, "v1", earlier, running="v2", service_read=True, rolled_back_from="v2", repair=True, recorded=False)
        command = ("rollback", "--stack", "service", "--yes")
    else:
        service_update(aws, "v2", [release("v1"), release("v2")], running="v2", recorded=False)
        command = ("deploy", "--stack", "service", "--image-tag", "v2", "--yes")
    aws.ssm.add_client_error("put_parameter", "AccessDeniedException", "no", 400)
    assert aws.run(*command) == 0, aws.err
    back = "(not v2, which this rollback left: an image that ran before it)" if how == "a rollback" else "(an image that ran before it)"
    assert f"a rollback from it must name the image: make rollback ENV={ENV} TAG=<image tag> {back}" in aws.out, aws.out


@pytest.mark.parametrize("recorded", [True, False])
def test_a_rollback_stopped_once_finished_says_it_is_done_and_recorded_only_where_its_release_was_recorded(aws, monkeypatch, recorded):
    # A Ctrl-C as the run's clients close, once the rollback ended: the line says a rerun would roll back once more
    # only where the history took the rollback (unrecorded, the warning above already says how to roll back from it).
    earlier = [release("v1", "2025-11-20T10:00:00Z"), release("v2", "2025-11-22T10:00:00Z")]
    aws.deployed("service", parameters=service_parameters("v2"))
    history(aws, earlier)
    service_update(aws, "v1", earlier, running="v2", service_read=True, rolled_back_from="v2", repair=True, recorded=recorded)
    if not recorded:
        aws.ssm.add_client_error("put_parameter", "AccessDeniedException", "no", 400)
    stop_while_closing(monkeypatch)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        assert aws.run("rollback", "--stack", "service", "--yes") == 130, aws.err
    finally:
        signal.signal(signal.SIGINT, previous)
    done = f": the rollback to v1 is done and recorded: make rollback ENV={ENV} again would roll back from v1 too"
    assert aws.err == "interrupted once make rollback had finished (above)" + (done if recorded else "") + "\n", aws.err


@pytest.mark.parametrize("code", ["AccessDeniedException", "ExpiredTokenException"])
def test_a_release_the_history_cannot_take_is_live_and_says_how_to_roll_back_from_it(aws, code):
    """The service runs the new image whatever the history's write meets (credentials expired in the
    service's long wait, say): a warning naming the rollback command, and the run goes on."""
    service_update(aws, "v2", [release("v1")], recorded=False)
    aws.ssm.add_client_error("put_parameter", code, "no", 400)
    assert aws.run("deploy", "--stack", "service", "--image-tag", "v2", "--yes") == 0, aws.err
    assert (
        f"warning: the release of v2 is live but not recorded in the release history (SSM parameter {HISTORY}) ({code}); "
        f"a rollback from it must name the image: make rollback ENV={ENV} TAG=v1"
    ) in aws.out


@pytest.mark.parametrize(
    "text",
    [
        "not json {",
        '{"image_tag": "v1"}',
        '[{"time": "x"}]',
        "[" * 100_000,  # nested deeper than json parses (RecursionError)
        '[{"image_tag": "v1\\u001b]0;x\\u0007"}]',  # not an image tag: a rollback would deploy it as ImageTag
        # what the warnings quote is anyone's text: a letter that shows as nothing and a lone surrogate, shown escaped
        "not json \u3164\udc9b",
        '[{"image_tag": "v1\u3164\\udc9b"}]',
    ],
    ids=["not json", "not a list", "no image tag", "nested too deep", "not an image tag", "not json, hidden", "not a tag, hidden"],
)
def test_a_release_history_that_is_not_a_list_of_releases_is_started_again_not_a_traceback(aws, text):
    service_update(aws, "v2", text)
    assert aws.run("deploy", "--stack", "service", "--image-tag", "v2", "--yes") == 0, aws.err
    listed = text.startswith("[{")  # a list whose entries are no release: they are left out, the list read
    warning = "holds 1 entry that is no release, such as" if listed else "is not a list of releases"
    assert f"warning: the release history (SSM parameter {HISTORY}) {warning}" in aws.out, aws.out
    assert not re.search("[\u3164\ud800-\udfff\x1b]", aws.out), ascii(aws.out)


def test_a_hand_edit_that_garbles_the_history_reads_the_last_version_that_is_a_list_and_loses_no_release():
    # A comma too many in the console: a rollback found nothing earlier, and the next release wrote itself alone over the history.

    kept = [release("v5"), release("v6"), release("v7")]
    versions = {3: json.dumps(kept[:2]), 4: json.dumps(kept), 5: json.dumps(kept)[:-1] + ",]"}
    written = []

    class Ssm:
        def get_parameter(self, Name):  # noqa: N803 (boto3's names)
            return {"Parameter": {"Name": Name, "Value": versions[5], "Version": 5}}

        def get_parameter_history(self, Name, NextToken=None):  # noqa: N803
            pages = {None: ([3, 4], "page-2"), "page-2": ([5], None)}  # two pages: the one before the last is on the first
            numbers, following = pages[NextToken]
            return {"Parameters": [{"Name": Name, "Version": n, "Value": versions[n]} for n in numbers]} | (
                {"NextToken": following} if following else {}
            )

        def put_parameter(self, **request):
            written.append(request)
            return {"Version": 6}

    said = []
    history = ReleaseHistory(Ssm(), ENV, said.append, sleep=lambda seconds: None)
    assert history.releases() == kept
    assert said == [
        f"warning: the release history (SSM parameter {HISTORY}) is not a list of releases in its version 5 "
        '(\'[{"time": "2025-11-20T10:00:00Z", "image_tag": "v5", "revisi\'); '
        "reading version 4, the last that is one"
    ]
    history.record(release("v8"))
    assert json.loads(written[-1]["Value"]) == [*kept, release("v8")]
    assert len(said) == 1, said  # the record's read of it again says nothing new
    # garbled at version 2: version 1 before it is a list, and was not read (the history started again)
    ssm, said = ScriptedSsm(stored(kept[:1])), []
    ssm.versions.append(versions[5])
    assert ReleaseHistory(ssm, ENV, said.append, lambda seconds: None).releases() == kept[:1]
    assert said[-1].endswith("; reading version 1, the last that is one"), said


@pytest.mark.parametrize("meets", ["a version written in between", "a write under way"])
def test_a_version_another_writer_left_garbled_costs_no_release_this_run_read(meets):
    """Another writer's version is not a list: the merge keeps what this run read, as it keeps theirs
    when it is one, whether that write came in between (a version skipped) or was under way
    (PutParameter's TooManyUpdates, then the history read again)."""

    read = [release("v1"), release("v2")]
    versions = {1: json.dumps(read), 2: "garbled {"}
    written = []

    class Ssm:
        def get_parameter(self, Name):  # noqa: N803 (boto3's names)
            version = max(versions) if written else 1  # read again after meeting another's write: theirs
            return {"Parameter": {"Name": Name, "Value": versions[version], "Version": version}}

        def get_parameter_history(self, Name):  # noqa: N803
            return {"Parameters": [{"Name": Name, "Version": n, "Value": v} for n, v in versions.items()]}

        def put_parameter(self, **request):
            written.append(json.loads(request["Value"]))
            if meets == "a write under way" and len(written) == 1:
                raise ClientError({"Error": {"Code": "TooManyUpdates", "Message": "under way"}}, "PutParameter")
            return {"Version": 3 if len(written) == 1 or meets == "a write under way" else 4}  # 3 first: another wrote 2

    said = []
    ours = release("v3")
    ReleaseHistory(Ssm(), ENV, said.append, lambda seconds: None).record(ours)
    assert written[-1] == [*read, ours], said


def paging_forever(service, operation, asked, page, key="NextToken"):
    """A client whose answers to operation give the next-page tokens A, B, then A again: paged on, it
    would be asked for B and A without end."""
    client = SESSION.client(service, config=deploy.CONFIG)
    stubber = Stubber(client)
    for asked_with, answered in ((None, "A"), ("A", "B"), ("B", "A")):
        stubber.add_response(operation, page | {key: answered}, asked | ({key: asked_with} if asked_with else {}))
    stubber.activate()
    return client


def stack_events_read(monkeypatch):
    client = paging_forever("cloudformation", "describe_stack_events", {"StackName": stack_id("alb")}, {"StackEvents": []})
    page = client.describe_stack_events  # each page holds an event of this run, so that the reader asks for the next
    answers = iter(
        [event("alb", "Listener", status, seconds) for status, seconds in (("CREATE_COMPLETE", 3), ("UPDATE", 2), ("CREATE", 1))]
    )
    monkeypatch.setattr(client, "describe_stack_events", lambda **asked: page(**asked) | {"StackEvents": [next(answers)]})
    run = types.SimpleNamespace(cf=client, events=[], say=lambda *lines: None, colour=False)
    deployer.Deployer.print_events(run, stack_id("alb"), deployer.Deployer.execution_token(cs_name("alb")), NOW, set())


def change_set_read(monkeypatch):
    client = paging_forever(
        "cloudformation",
        "describe_change_set",
        {"StackName": stack("alb"), "ChangeSetName": cs_name("alb")},
        {"Status": "CREATE_COMPLETE", "ExecutionStatus": "AVAILABLE", "Changes": []},
    )
    run = types.SimpleNamespace(cf=client, polls=lambda seconds: iter([0]))
    deployer.Deployer.wait_for_change_set(run, types.SimpleNamespace(stack=stack("alb"), name="alb"), cs_name("alb"))


def test_a_change_set_whose_first_page_holds_no_changes_takes_those_of_the_next():
    """Changes is optional in DescribeChangeSet's model: a first page without it, and a token, is no KeyError."""
    client = SESSION.client("cloudformation", config=deploy.CONFIG)
    stubber = Stubber(client)
    asked = {"StackName": stack("alb"), "ChangeSetName": cs_name("alb")}
    done = {"Status": "CREATE_COMPLETE", "ExecutionStatus": "AVAILABLE"}
    stubber.add_response("describe_change_set", done | {"NextToken": "A"}, asked)
    stubber.add_response("describe_change_set", done | {"Changes": ALB_CHANGES}, asked | {"NextToken": "A"})
    stubber.activate()
    run = types.SimpleNamespace(cf=client, polls=lambda seconds: iter([0]))
    read = deployer.Deployer.wait_for_change_set(run, types.SimpleNamespace(stack=stack("alb"), name="alb"), cs_name("alb"))
    assert read["Changes"] == ALB_CHANGES and "NextToken" not in read, read
    stubber.assert_no_pending_responses()


def resource_drifts_read(monkeypatch):
    asked = {"StackName": stack_id("alb"), "StackResourceDriftStatusFilters": ["MODIFIED", "DELETED"]}
    client = paging_forever("cloudformation", "describe_stack_resource_drifts", asked, {"StackResourceDrifts": []})
    drift.resource_drifts(types.SimpleNamespace(cf=client), stack_id("alb"))


def release_history_read(monkeypatch):
    client = paging_forever("ssm", "get_parameter_history", {"Name": HISTORY}, {"Parameters": []})
    list(ReleaseHistory(client, ENV, print, lambda seconds: None).versions())


def log_events_read(monkeypatch):
    client = paging_forever("logs", "filter_log_events", {"logGroupName": LOG_GROUP, "startTime": 0}, {"events": []}, "nextToken")
    list(logs.filtered(client, LOG_GROUP, 0))


def deleted_stacks_read(monkeypatch):
    # a botocore paginator's pages (purge reads deleted stacks with one)
    client = paging_forever("cloudformation", "list_stacks", {"StackStatusFilter": ["DELETE_COMPLETE"]}, {"StackSummaries": []})
    purge.deleted_stacks(types.SimpleNamespace(cf=client), [stack("alb")])


def retained_resources_read(monkeypatch):
    client = paging_forever("cloudformation", "list_stack_resources", {"StackName": stack_id("alb")}, {"StackResourceSummaries": []})
    purge.retained_by(types.SimpleNamespace(cf=client), {"StackId": stack_id("alb"), "StackName": stack("alb")})


def relaxed_marks_read(monkeypatch):
    prefix = f"/{templates.PROJECT}/{ENV}/relaxed-stack-policy"
    client = paging_forever("ssm", "get_parameters_by_path", {"Path": prefix}, {"Parameters": []})
    RelaxedPolicyMarks(client, ENV, lambda: NOW, print, lambda: "aws").read()


def stopped_tasks_listed(monkeypatch):
    # ListTasks pages by nextToken (lower case), read through a paginator as make deploy's failed release lists them
    asked = {"cluster": "c", "desiredStatus": "STOPPED"}
    client = paging_forever("ecs", "list_tasks", asked, {"taskArns": []}, "nextToken")
    list(deploy.aws.checked_pages(client.get_paginator("list_tasks").paginate(**asked), "ListTasks", "nextToken"))


def change_sets_listed(monkeypatch):
    client = paging_forever("cloudformation", "list_change_sets", {"StackName": stack_id("alb")}, {"Summaries": []})
    reading.change_set_summaries(client, stack_id("alb"))


@pytest.mark.parametrize(
    "read, operation",
    [
        (deleted_stacks_read, "ListStacks"),
        (relaxed_marks_read, "GetParametersByPath"),
        (retained_resources_read, "ListStackResources"),
        (stack_events_read, "DescribeStackEvents"),
        (change_set_read, "DescribeChangeSet"),
        (resource_drifts_read, "DescribeStackResourceDrifts"),
        (release_history_read, "GetParameterHistory"),
        (log_events_read, "FilterLogEvents"),
        (stopped_tasks_listed, "ListTasks"),
        (change_sets_listed, "ListChangeSets"),
    ],
)
def test_an_answer_that_gives_a_next_page_token_it_gave_before_stops_the_paging_and_says_so(read, operation, monkeypatch):
    """Paged on, such answers (AWS's fault, or an emulator's) would be asked for again and again, with no
    bound; botocore's paginators catch only the token a page was asked with, not A, B, A."""
    no_real_aws(monkeypatch)
    with pytest.raises(PaginationError) as stopped:
        read(monkeypatch)
    assert explain(stopped.value, "prod") == (
        f"error: {operation} answered a next-page token it had given before (A): paging on would never end, so the run "
        "stopped; run it again, and see where things stand: make status ENV=prod"
    )
    assert explain(stopped.value, "prod", "status").endswith("so the run stopped; run it again")  # not make status again


def test_an_allow_replace_update_that_rolled_back_puts_its_policy_back_and_says_it_is_not_still_relaxed(aws):
    aws.deployed("cert-dns")
    aws.deployed("alb")
    aws.change_set("alb", "UPDATE", ALB_CHANGES)
    aws.readers_not_deployed("alb")
    aws.policy_relaxed("alb")
    aws.execute("alb")
    aws.poll(
        "alb", stack_id("alb"), described("alb", "UPDATE_ROLLBACK_COMPLETE"), event("alb", stack("alb"), "UPDATE_ROLLBACK_COMPLETE", 60)
    )
    aws.policy_restored("alb")
    assert aws.run("deploy", "--stack", "alb", "--yes", "--allow-replace") == 1
    assert "ended UPDATE_ROLLBACK_COMPLETE" in aws.err and "still relaxed" not in aws.out + aws.err, aws.out + aws.err


class ScriptedSsm:
    """The release history's parameter as a list of versions (version n at index n - 1), PutParameter answered by
    the functions given, one a write."""

    def __init__(self, first, *puts):
        self.versions, self.puts = [first], list(puts)

    def get_parameter(self, Name):
        return {"Parameter": {"Value": self.versions[-1], "Version": len(self.versions)}}

    def get_parameter_history(self, Name, **_):
        return {"Parameters": [{"Version": n + 1, "Value": value} for n, value in enumerate(self.versions)]}

    def put_parameter(self, Name, Value, **_):
        return self.puts.pop(0)(self, Value)


def throttled_after_retries(ssm, value):
    raise ClientError({"Error": {"Code": "ThrottlingException"}, "ResponseMetadata": {"RetryAttempts": 4}}, "PutParameter")


ENTRY_A = {"time": "2026-01-01T00:00:00Z", "image_tag": "a", "revision": "r", "by": "x", "replaced": None}
ENTRY_E = {"time": "2026-01-03T00:00:00Z", "image_tag": "e", "revision": "r", "by": "z", "replaced": "a"}


def test_a_history_write_whose_retry_wrote_it_again_is_not_said_to_merge_another_runs():
    # botocore retried a PutParameter whose answer was lost: two versions of this run's own, said as another run's write.

    def written_twice(ssm, value):
        ssm.versions += [value, value]
        return {"Version": len(ssm.versions)}

    ssm, said = ScriptedSsm(stored([ENTRY_A]), written_twice), []
    ReleaseHistory(ssm, ENV, said.append, lambda seconds: None).record(ENTRY_E)
    assert said == [] and json.loads(ssm.versions[-1]) == [ENTRY_A, ENTRY_E], said


def test_another_runs_write_before_this_runs_first_attempt_and_its_retry_is_merged_back():
    # B wrote version 2; this run's first attempt landed as 3 (its answer lost), botocore's retry as 4: merging from
    # version 3 alone, this run's own, lost B's release.

    other = {"time": "2026-01-02T00:00:00Z", "image_tag": "b", "revision": "r", "by": "y", "replaced": "a"}

    def b_then_this_write_twice(ssm, value):
        ssm.versions += [stored([ENTRY_A, other]), value, value]
        return {"Version": len(ssm.versions)}

    ssm, said = ScriptedSsm(stored([ENTRY_A]), b_then_this_write_twice, written), []
    ReleaseHistory(ssm, ENV, said.append, lambda seconds: None).record(ENTRY_E)
    assert json.loads(ssm.versions[-1]) == [ENTRY_A, other, ENTRY_E], said


def test_a_landed_write_of_a_full_history_another_run_then_trimmed_is_taken_for_recorded():
    # The history at its RELEASES_KEPT: this run's write landed (the retry throttled), then another run's write trimmed
    # the oldest entry. The history holds this run's release, yet it was said not recorded: the read back asked for
    # every entry this run wrote, the trimmed one too.

    old = [ENTRY_A | {"time": f"2026-01-01T00:00:{n:02d}Z", "image_tag": f"v{n}"} for n in range(1, RELEASES_KEPT + 1)]
    theirs = ENTRY_A | {"time": "2026-02-01T00:00:01Z", "image_tag": "theirs", "replaced": "e"}

    def landed_then_trimmed_by_another_run(ssm, value):
        ssm.versions += [value, stored(trimmed([*json.loads(value), theirs]))]
        raise ClientError({"Error": {"Code": "ThrottlingException"}, "ResponseMetadata": {"RetryAttempts": 4}}, "PutParameter")

    ssm = ScriptedSsm(stored(old), landed_then_trimmed_by_another_run)
    # record() returns (it raised ThrottlingException, taken for not recorded), having written and read back what it holds
    ReleaseHistory(ssm, ENV, lambda line: None, lambda seconds: None).record(ENTRY_E)
    assert ssm.puts == [] and ENTRY_E in json.loads(ssm.versions[-1])


@pytest.mark.parametrize(
    "case", ["did not land", "an earlier release of the same image", "read back refused", "another run's release lost"]
)
def test_a_history_write_refused_after_retries_is_taken_for_recorded_only_if_the_history_holds_what_it_wrote(case):
    """A write refused on a retry may have landed: read back, it counts as recorded only when the history holds every
    entry it wrote (this run's, and another run's it merged), never by image tag alone, nor when it cannot be read."""

    entry, said = ENTRY_E, []
    if case == "did not land":
        ssm = ScriptedSsm(stored([ENTRY_A]), throttled_after_retries)
    elif case == "an earlier release of the same image":
        entry = ENTRY_A | {"time": "2026-01-05T00:00:00Z", "replaced": "b"}
        ssm = ScriptedSsm(stored([ENTRY_A, ENTRY_A | {"image_tag": "b", "replaced": "a"}]), throttled_after_retries)
    elif case == "read back refused":
        ssm, reads = ScriptedSsm(stored([ENTRY_A]), throttled_after_retries), []
        read = ssm.get_parameter

        def get_parameter(Name):  # the read before the write answers; the read back does not
            reads.append(Name)
            if len(reads) > 1:
                raise ClientError({"Error": {"Code": "ThrottlingException"}, "ResponseMetadata": {"RetryAttempts": 4}}, "GetParameter")
            return read(Name)

        ssm.get_parameter = get_parameter
    else:
        other = {"time": "2026-01-02T00:00:00Z", "image_tag": "b", "revision": "r", "by": "y", "replaced": "a"}

        def another_run_wrote_between(ssm, value):  # version 2 the other run's, version 3 this one's: a merge follows
            ssm.versions += [stored([ENTRY_A, other]), value]
            return {"Version": 3}

        ssm = ScriptedSsm(stored([ENTRY_A]), another_run_wrote_between, throttled_after_retries)
    history = ReleaseHistory(ssm, ENV, said.append, lambda seconds: None)
    with pytest.raises(ClientError):
        history.record(entry)


def test_the_history_keeps_the_newest_releases_whose_stored_value_fits_the_standard_tier():
    """The size is measured on the value written (compact JSON): measured with json.dumps's spaces, a
    history of long entries kept one release fewer than fits. Tags of many lengths, up to the longest
    IMAGE_TAG allows, so that some fall where the two measures keep different counts."""
    from scripts.deploy import history as release_history

    for length in range(64, 129):
        tag = "v" + "1" * (length - 1)
        entries = [release(f"{tag[:-3]}{i:03}", "2025-11-25T11:00:00Z", "a" * 40) | {"replaced": tag} for i in range(25)]
        written = []

        class Ssm:
            def get_parameter(self, Name, entries=entries):  # noqa: N803 (boto3's names)
                return {"Parameter": {"Name": Name, "Value": release_history.stored(entries[:-1]), "Version": 1}}

            def put_parameter(self, written=written, **given):
                written.append(given["Value"])
                return {"Version": 2}

        release_history.ReleaseHistory(Ssm(), ENV, print, lambda seconds: None).record(entries[-1])
        kept = json.loads(written[0])
        assert kept == entries[-len(kept) :], (length, kept)
        # within the limit, and one release more would not be
        assert len(written[0]) <= release_history.MOST_STORED < len(release_history.stored(entries[-len(kept) - 1 :])), length

    # A history of exactly the limit is kept whole.
    entries = [release(f"v{i}", "2025-11-25T11:00:00Z", "a" * 40) for i in range(release_history.RELEASES_KEPT)]
    entries[0]["by"] += "x" * (release_history.MOST_STORED - len(release_history.stored(entries)))
    assert len(release_history.stored(entries)) == release_history.MOST_STORED
    written = []

    class Exact:
        def get_parameter(self, Name):  # noqa: N803 (boto3's names)
            return {"Parameter": {"Name": Name, "Value": release_history.stored(entries[:-1]), "Version": 1}}

        def put_parameter(self, **given):
            written.append(given["Value"])
            return {"Version": 2}

    release_history.ReleaseHistory(Exact(), ENV, print, lambda seconds: None).record(entries[-1])
    assert json.loads(written[0]) == entries


def test_updates_that_kept_the_image_leave_the_history_before_the_release_a_rollback_goes_back_to():
    """Every service update that runs is recorded: a full history of setting changes that kept the image pushed
    out the running image's own release, and make rollback found nothing earlier. They go first, oldest first."""
    from scripts.deploy import history as release_history

    kept = release_history.RELEASES_KEPT
    v5 = release("v5", "2025-11-20T10:00:00Z") | {"replaced": None}
    v6 = release("v6", "2025-11-21T10:00:00Z") | {"replaced": "v5"}
    rollback = release("v5", "2025-11-21T11:00:00Z") | {"replaced": "v6", "rolled_back_from": "v6"}
    v6_again = release("v6", "2025-11-21T12:00:00Z") | {"replaced": "v5"}
    same = [release("v6", f"2025-11-22T10:{i:02}:00Z") | {"replaced": "v6"} for i in range(kept + 5)]
    entries = [v5, v6, rollback, v6_again, *same]
    written = []

    class Ssm:
        def get_parameter(self, Name):  # noqa: N803 (boto3's names)
            return {"Parameter": {"Name": Name, "Value": release_history.stored(entries[:-1]), "Version": 1}}

        def put_parameter(self, **given):
            written.append(json.loads(given["Value"]))
            return {"Version": 2}

    release_history.ReleaseHistory(Ssm(), ENV, print, lambda seconds: None).record(entries[-1])
    (history,) = written
    # the releases and the rollback stay, with the newest updates that kept the image after them
    assert history == [v5, v6, rollback, v6_again, *same[-(kept - 4) :]], history
    # v5, by its own release: the rollback's header said "released" with the time of the entry that last named it
    assert release_history.previous_release(history, "v6") == v5
    # with only releases left, the oldest go
    releases = [release(f"v{i}", "2025-11-20T10:00:00Z") | {"replaced": f"v{i - 1}"} for i in range(kept + 3)]
    assert release_history.trimmed([*releases, *same]) == releases[-(kept - 1) :] + same[-1:]
    # a rollback is no update that kept the image, whatever it replaced: its mark of what it left stays
    odd = release("v6", "2025-11-21T13:00:00Z") | {"replaced": "v6", "rolled_back_from": "v7"}
    assert odd in release_history.trimmed([odd, *same])


def test_change_sets_whose_listing_gives_a_token_again_are_a_note_and_the_run_goes_on():
    client = paging_forever("cloudformation", "list_change_sets", {"StackName": stack("alb")}, {"Summaries": []})
    said = []
    run = types.SimpleNamespace(cf=client, say=said.append)
    assert deployer.Deployer.change_sets_for_review(run, stack("alb"), "its line shows none") is None  # unknown, not none
    assert said == [f"  note: the change sets of {stack('alb')} could not be listed (PaginationError); its line shows none"], said


def test_a_change_set_listed_without_a_name_or_a_time_is_named_as_such_not_a_traceback():
    """ListChangeSets' summary fields are all optional in the API's model."""
    client = SESSION.client("cloudformation", config=deploy.CONFIG)
    stubber = Stubber(client)
    made = NOW
    summaries = [
        {"ExecutionStatus": "AVAILABLE"},
        {"ChangeSetName": "timeless", "ExecutionStatus": "AVAILABLE"},
        {"ChangeSetName": "ours", "ExecutionStatus": "AVAILABLE", "CreationTime": made},
        {"ChangeSetName": "ran", "ExecutionStatus": "EXECUTE_COMPLETE", "CreationTime": made},
    ]
    stubber.add_response("list_change_sets", {"Summaries": summaries}, {"StackName": stack("alb")})
    stubber.activate()
    run = types.SimpleNamespace(cf=client, say=print)
    assert deployer.Deployer.change_sets_for_review(run, stack("alb"), "its line shows none", but="ours") == "(unnamed), timeless"


def test_an_entry_that_is_no_release_is_left_out_and_the_releases_kept_also_in_another_runs_version():
    """One bad entry (another writer's, or a hand edit) must not cost the whole history."""

    good, bad = release("v1", "2025-11-25T11:00:00Z", "abc1234"), {"image_tag": "v2\x1b]0;x\x07"}
    value = json.dumps([good, bad, good | {"image_tag": "v3"}])

    class Ssm:
        def get_parameter(self, Name):  # noqa: N803 (boto3's names)
            return {"Parameter": {"Name": Name, "Value": value, "Version": 3}}

        def get_parameter_history(self, Name):  # noqa: N803
            return {"Parameters": [{"Name": Name, "Version": 3, "Value": value}]}

    said = []
    history = ReleaseHistory(Ssm(), ENV, said.append, lambda seconds: None)
    assert [entry["image_tag"] for entry in history.releases()] == ["v1", "v3"]
    assert [entry["image_tag"] for entry in history.releases()] == ["v1", "v3"]  # read again (a rollback's record): said once
    assert said == [
        f"warning: the release history (SSM parameter {HISTORY}) holds 1 entry that is no release, such as {str(bad)[:60]!r}: left out"
    ]
    assert [[entry["image_tag"] for entry in entries] for entries in history.between(2, 4)] == [["v1", "v3"]]


@pytest.mark.parametrize(
    "field, value",
    [
        ("replaced", "bad tag;rm -rf /"),
        ("replaced", ["v1"]),
        ("rolled_back_from", ["a"]),
        ("rolled_back_from", None),
        ("by", 7),
        ("time", None),
        ("revision", ["abc1234"]),
        ("stack_created", 5),  # (mutation audit) unchecked, it was kept and read as an earlier stack's
    ],
)
def test_an_entry_whose_fields_are_not_as_a_release_records_them_is_left_out(field, value):
    """A hand-edited history (anyone's SSM parameter): a replaced that is no image tag was deployed as
    ImageTag by a rollback, and a list where text belongs was a traceback in it."""
    from scripts.deploy.history import is_release, previous_release

    good = release("v2") | {"replaced": "v1"}
    assert is_release(good) and is_release(good | {"replaced": None}) and is_release(good | {"rolled_back_from": "v3"})
    assert not is_release(good | {field: value})
    assert previous_release([release("v1"), good], "v2")["image_tag"] == "v1"


def test_only_a_change_set_description_this_tool_wrote_for_a_rollback_names_an_image_rolled_back_from():
    from scripts.deploy import text

    service = types.SimpleNamespace(name="service", env=ENV)
    ours = f"service layer of {ENV}, by scripts/deploy; a rollback from image v2"  # as the rollback's CreateChangeSet sends it
    assert text.rolled_back_from(ours, service) == "v2"
    assert text.made_as_repair(ours, service)  # a rollback goes without rollback triggers, even if AWS drops its empty list
    others = [f"service layer of {ENV}, by scripts/deploy", None, "", "by hand; a rollback from image v2", ours + ";x"]
    others.append(ours.replace("service layer", "alb layer"))  # another layer's
    for description in others:
        assert text.rolled_back_from(description, service) is None, description


def test_only_a_change_set_description_this_tool_wrote_for_a_release_names_the_image_it_replaces():
    from scripts.deploy import text

    service = types.SimpleNamespace(name="service", env=ENV)
    base = f"service layer of {ENV}, by scripts/deploy"
    release, repair = base + "; a release replacing image v1", base + "; a repair, without rollback triggers; a release replacing image v1"
    assert text.replaced_by_release(release, service) == text.replaced_by_release(repair, service) == "v1"
    assert text.made_as_repair(repair, service) and not text.made_as_repair(release, service)
    others = [base, None, "", base + "; a rollback from image v1", "by hand; a release replacing image v1", release + ";x", release + " "]
    others.append(release.replace("service layer", "alb layer"))  # another layer's
    for description in others:
        assert text.replaced_by_release(description, service) is None, description


def test_a_repair_deploy_sends_an_empty_trigger_list_and_says_so(aws):
    # Without RollbackTriggers CloudFormation would reuse the stack's last ones (API_RollbackConfiguration).
    service_update(aws, "v2", None, repair=True)
    assert aws.run("deploy", "--stack", "service", "--image-tag", "v2", "--repair", "--yes") == 0, aws.err
    assert "rollback triggers: none for this change set (a repair" in aws.out


def test_a_rollback_shows_the_historys_text_escaped_on_one_line(aws):
    """The history is anyone's to write (an SSM parameter): its time, author and revision may hold
    control characters, which would retitle the terminal or forge a line."""
    hostile = CALLER + "\x1b]0;x\x07\nforged: ok"
    earlier = [release("v1", "2025-11-20T10:00:00Z") | {"by": hostile}, release("v2", "2025-11-22T10:00:00Z")]
    rolled_back(aws, earlier, "v2", "v1")
    assert f"to v1 (released 2025-11-20T10:00:00Z by {CALLER}\\x1b]0;x\\x07\\nforged: ok, git 1111111)" in aws.out, aws.out
    assert "\x1b" not in aws.out and "\nforged" not in aws.out


@pytest.mark.parametrize("kind", ["AWS::ElasticLoadBalancingV2::LoadBalancer", "AWS::ElasticLoadBalancingV2::TargetGroup"])
def test_purge_reads_a_retained_load_balancers_or_target_groups_tags_and_state(kind):
    """Each call as botocore's elbv2 model has it (a rename once made it call describe_pairs, a traceback)."""
    client = SESSION.client("elbv2", config=deploy.CONFIG)
    stubber = Stubber(client)
    arn = f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:" + (
        "loadbalancer/app/x/1" if kind.endswith("LoadBalancer") else "targetgroup/x/1"
    )
    item = purge.Retained(stack("alb"), stack_id("alb"), "Thing", kind, arn)
    tags = [{"Key": purge.STACK_ID_TAG, "Value": item.stack_id}, {"Key": purge.LOGICAL_ID_TAG, "Value": "Thing"}]
    if kind.endswith("LoadBalancer"):
        stubber.add_response("describe_load_balancers", {"LoadBalancers": [{"LoadBalancerArn": arn}]}, {"LoadBalancerArns": [arn]})
    else:
        stubber.add_response("describe_target_groups", {"TargetGroups": [{"TargetGroupArn": arn}]}, {"TargetGroupArns": [arn]})
    stubber.add_response("describe_tags", {"TagDescriptions": [{"ResourceArn": arn, "Tags": tags}]}, {"ResourceArns": [arn]})
    if kind.endswith("LoadBalancer"):
        attributes = [{"Key": "deletion_protection.enabled", "Value": "false"}]
        stubber.add_response("describe_load_balancer_attributes", {"Attributes": attributes}, {"LoadBalancerArn": arn})
    with stubber:
        action, _ = purge.INSPECT[kind](lambda service: client, item)
    stubber.assert_no_pending_responses()
    assert action == "delete" and item.facts["tags"] == {t["Key"]: t["Value"] for t in tags}


def test_releases_lists_the_history_newest_first_with_what_runs(aws):
    # On call, before make rollback: which releases the history holds and which image runs (it was an SSM read by hand).
    earlier = [
        release("v0", "2025-11-01T10:00:00Z", stack_created="2025-10-01T00:00:00Z"),  # a destroyed service stack's
        release("v1", "2025-11-20T10:00:00Z"),
        release("v2", "2025-11-22T10:00:00Z"),
        release("v1", "2025-11-23T10:00:00Z") | {"rolled_back_from": "v2"},
    ]
    aws.deployed("service", parameters=service_parameters("v1"))
    history(aws, earlier)
    lock_free(aws)
    assert aws.run("releases") == 0, aws.err
    assert aws.out.splitlines() == [
        f"2025-11-23T10:00:00Z  v1  git 1111111  by {CALLER}  (a rollback from v2)",
        f"2025-11-22T10:00:00Z  v2  git 1111111  by {CALLER}",
        f"2025-11-20T10:00:00Z  v1  git 1111111  by {CALLER}",
        f"2025-11-01T10:00:00Z  v0  git 1111111  by {CALLER}  (of an earlier service stack: make rollback passes it over)",
        # v1 ran first in this stack (v0 is an earlier one's): as make rollback without TAG= refuses
        f"{stack('service')} runs image v1; no release before it to roll back to: make rollback asks for TAG=<image tag>",
    ], aws.out


def test_releases_marks_an_update_that_kept_the_image(aws):
    # three entries of v2 alike, though the history drops a settings change first and no rollback goes back to it
    entries = [rel("v1", None), release("v2", "2025-11-21T10:00:00Z") | {"replaced": "v1"}]
    entries.append(release("v2", "2025-11-22T10:00:00Z") | {"replaced": "v2"})
    aws.deployed("service", parameters=service_parameters("v2"))
    history(aws, entries)
    assert aws.run("releases") == 0, aws.err
    assert aws.out.splitlines()[:2] == [
        f"2025-11-22T10:00:00Z  v2  git 1111111  by {CALLER}  (settings changed, same image)",
        f"2025-11-21T10:00:00Z  v2  git 1111111  by {CALLER}",
    ], aws.out


def test_releases_marks_an_update_that_kept_an_image_no_release_below_it_ran(aws):
    # the stack updated by hand from v2 to hotfix1, then a settings change by make deploy: listed as a settings change on
    # v2's release, the hand release unsaid
    entries = [release("v2", "2025-11-21T10:00:00Z") | {"replaced": "v1"}]
    entries.append(release("hotfix1", "2025-11-22T10:00:00Z") | {"replaced": "hotfix1"})
    aws.deployed("service", parameters=service_parameters("hotfix1"))
    history(aws, entries)
    # make rollback without TAG= would refuse: the lock is read, free, for whether a run under way may record it
    lock_free(aws)
    assert aws.run("releases") == 0, aws.err
    assert aws.out.splitlines()[0] == (
        f"2025-11-22T10:00:00Z  hotfix1  git 1111111  by {CALLER}  (settings changed, same image; hotfix1 ran before it, not the "
        "release listed below it: released outside make deploy, or its release not recorded; make rollback from it asks for TAG=)"
    ), aws.out
    assert aws.out.splitlines()[-1].endswith(
        "though it ran: its first entry there is a redeploy of it: make rollback asks for TAG=<image tag>"
    )


def test_releases_says_nothing_of_a_release_below_a_settings_change_the_history_starts_with(aws):
    # its oldest entries trimmed: nothing is listed below it to differ from
    entries = [release("v2", "2025-11-22T10:00:00Z") | {"replaced": "v2"}]
    aws.deployed("service", parameters=service_parameters("v2"))
    history(aws, entries)
    lock_free(aws)
    assert aws.run("releases") == 0, aws.err
    assert aws.out.splitlines()[0] == f"2025-11-22T10:00:00Z  v2  git 1111111  by {CALLER}  (settings changed, same image)", aws.out


def test_releases_names_what_a_release_replaced_when_it_is_not_the_release_listed_below_it(aws):
    # make rollback goes back to what the running release replaced, as its entry says: an entry anyone who may put the
    # parameter can write ("replaced": "evil"), which make releases did not show
    entries = [
        release("v1", "2025-11-20T10:00:00Z") | {"replaced": "v0"},  # the oldest kept: v0's release cut from the history
        release("v2", "2025-11-21T10:00:00Z") | {"replaced": "v1"},
        release("v3", "2025-11-22T10:00:00Z") | {"replaced": "evil"},
    ]
    aws.deployed("service", parameters=service_parameters("v3"))
    history(aws, entries)
    assert aws.run("releases") == 0, aws.err
    assert aws.out.splitlines()[:3] == [
        f"2025-11-22T10:00:00Z  v3  git 1111111  by {CALLER}  (it replaced evil, not the release listed below it: make rollback from it "
        "goes back to evil)",
        f"2025-11-21T10:00:00Z  v2  git 1111111  by {CALLER}",
        f"2025-11-20T10:00:00Z  v1  git 1111111  by {CALLER}  (it replaced v0: make rollback from it goes back to v0)",
    ], aws.out


def test_releases_says_nothing_of_what_a_rollback_replaced(aws):
    # a rollback's entry names the image it left as replaced; make rollback from it does not go back there (the history's
    # rollbacks are passed over): "make rollback from it goes back to v3" would be false
    entries = [
        release("v1", "2025-11-20T10:00:00Z") | {"replaced": "v0"},
        release("v2", "2025-11-21T10:00:00Z") | {"replaced": "v1"},
        release("v1", "2025-11-22T10:00:00Z") | {"replaced": "v3", "rolled_back_from": "v3"},  # v3's release not recorded
    ]
    aws.deployed("service", parameters=service_parameters("v1"))
    history(aws, entries)
    lock_free(aws)  # v1's release of 2025-11-20 is the oldest: make rollback finds nothing before it
    assert aws.run("releases") == 0, aws.err
    assert aws.out.splitlines()[0] == f"2025-11-22T10:00:00Z  v1  git 1111111  by {CALLER}  (a rollback from v3)", aws.out


def test_releases_prints_the_historys_text_escaped_whatever_it_holds(aws):
    # anyone who may write the parameter writes what make releases prints: surrogates (from JSON's \\u
    # escapes) went to the terminal as raw bytes, or failed to print at all (a traceback)
    hostile = "x\udc9b2J\udcc2\udc85y\u202e\ud800"
    aws.deployed("service", parameters=service_parameters("v1"))
    history(aws, [release("v1", hostile) | {"by": hostile}])
    lock_free(aws)  # its only release: nothing before it to roll back to
    assert aws.run("releases") == 0, aws.err
    assert "x\\udc9b2J\\udcc2\\udc85y\\u202e\\ud800  v1" in aws.out, aws.out
    assert not re.search("[\ud800-\udfff\u202e]", aws.out), ascii(aws.out)


@pytest.mark.parametrize(
    "entries, said",
    [
        # every release of a destroyed service stack is an earlier stack's
        (
            [release("v1", "2025-11-20T10:00:00Z")],
            "2025-11-20T10:00:00Z  v1  git 1111111  by {caller}  (of an earlier service stack: make rollback passes it over)",
        ),
        (None, "no release recorded in {history}"),
    ],
    ids=["releases of a destroyed stack", "no history"],
)
def test_releases_of_a_service_not_deployed_says_what_the_history_holds_and_that_no_image_runs(aws, entries, said):
    aws.not_deployed("service")
    history(aws, entries)
    assert aws.run("releases") == 0, aws.err
    assert aws.out.splitlines() == [said.format(caller=CALLER, history=HISTORY), f"{stack('service')} is not deployed: no image runs"], (
        aws.out
    )


def test_a_rollback_to_latest_warns_that_the_tag_may_name_another_image_now(aws):
    earlier = [release("latest", "2025-11-20T10:00:00Z"), release("v2", "2025-11-22T10:00:00Z")]
    aws.deployed("service", parameters=service_parameters("v2"))
    history(aws, earlier)
    service_update(aws, "latest", earlier, running="v2", service_read=True, rolled_back_from="v2", repair=True)
    assert aws.run("rollback", "--stack", "service", "--yes") == 0, aws.err
    assert "warning: latest is the tag a push moves by default: this deploys the image it names now" in aws.out, aws.out


def test_rollback_deploys_the_previous_image_through_a_change_set(aws):
    earlier = [release("v1", "2025-11-20T10:00:00Z"), release("v2", "2025-11-22T10:00:00Z")]
    aws.deployed("service", parameters=service_parameters("v2"))
    history(aws, earlier)
    # A rollback is made because the release alarms fire: as triggers they would undo it.
    service_update(aws, "v1", earlier, running="v2", service_read=True, rolled_back_from="v2", repair=True)
    made = requests_of(aws, "CreateChangeSet")
    assert aws.run("rollback", "--stack", "service", "--yes") == 0, aws.err
    # named so, make execute of it (its run stopped at the question) records the rollback it is
    assert [request["Description"] for request in made] == [f"service layer of {ENV}, by scripts/deploy; a rollback from image v2"]
    assert "rollback triggers: none for this change set" in aws.out
    assert f"rolling back {stack('service')} from v2 to v1 (released 2025-11-20T10:00:00Z by {CALLER}, git 1111111)" in aws.out
    assert f"change set {cs_name('service', '1111111')}" in aws.out  # named at v2's revision: the template it keeps


def test_a_rollback_is_named_and_recorded_at_the_revision_of_the_template_it_keeps(aws):
    # The checkout (abc1234) has moved on since v2 was released at 2222222: the rollback deploys v2's template, the one
    # the stack runs, with v1's image; its change set's name and its release said abc1234, whose files it did not deploy.
    earlier = [release("v1", "2025-11-20T10:00:00Z", "1111111"), release("v2", "2025-11-22T10:00:00Z", "2222222")]
    aws.deployed("service", parameters=service_parameters("v2"))
    history(aws, earlier)
    service_update(aws, "v1", earlier, running="v2", service_read=True, rolled_back_from="v2", repair=True, kept_revision="2222222")
    assert aws.run("rollback", "--stack", "service", "--yes") == 0, aws.err
    assert f"change set {cs_name('service', '2222222')}" in aws.out, aws.out


@pytest.mark.parametrize(
    "earlier, kept",
    [
        ([release("v1", revision="1111111"), release("v2", revision="2222222")], "2222222"),  # the running image's release
        ([release("v2", revision="2222222"), release("v3", revision="3333333")], "unknown"),  # v2 released outside this tool
        ([release("v1"), release("v2", revision="main; rm -rf /")], "unknown"),  # a hand edit: no revision, nor a name's
        ("AccessDenied", "unknown"),  # the history unreadable: TAG= rolls back all the same
    ],
)
def test_a_rollback_to_a_named_image_is_named_at_the_revision_the_history_gives_the_running_template(aws, earlier, kept):
    aws.deployed("service", parameters=service_parameters("v2"))
    if earlier == "AccessDenied":
        aws.ssm.add_client_error("get_parameter", "AccessDeniedException", "no", 400, expected_params={"Name": HISTORY})
        earlier = []
    else:
        history(aws, earlier)
    service_update(aws, "v1", earlier, running="v2", service_read=True, rolled_back_from="v2", repair=True, kept_revision=kept)
    assert aws.run("rollback", "--stack", "service", "--image-tag", "v1", "--yes") == 0, aws.err
    assert f"change set {cs_name('service', kept)}" in aws.out, aws.out


def rolled_back(aws, earlier, running, back_to):
    """make rollback of a service stack running `running`, with the release history `earlier`, back to `back_to`."""
    aws.deployed("service", parameters=service_parameters(running))
    history(aws, earlier)
    service_update(aws, back_to, earlier, running=running, service_read=True, rolled_back_from=running, repair=True)
    assert aws.run("rollback", "--stack", "service", "--yes") == 0, aws.err


def test_a_rollback_says_when_the_image_was_released_not_when_a_settings_change_kept_it(aws):
    # v1 released, then a settings change that kept it (a redeploy), then v2: the header gave the redeploy's time as v1's release
    earlier = [
        rel("v1", None),
        release("v1", "2025-11-21T10:00:00Z") | {"replaced": "v1"},
        release("v2", "2025-11-22T10:00:00Z") | {"replaced": "v1"},
    ]
    rolled_back(aws, earlier, "v2", "v1")
    assert f"rolling back {stack('service')} from v2 to v1 (released 2025-11-20T10:00:00Z by {CALLER}, git 1111111)" in aws.out, aws.out


def test_a_rollback_to_an_image_reached_by_a_rollback_alone_says_so_not_released(aws):
    # v3 never released: make rollback TAG=v3 from v1, then v4 over it; a rollback from v4 goes back to v3
    earlier = [rel("v1", None), release("v3", "2025-11-21T10:00:00Z") | {"replaced": "v1", "rolled_back_from": "v1"}]
    earlier.append(release("v3", "2025-11-21T12:00:00Z") | {"replaced": "v3"})  # a settings change that kept it: not when it began
    earlier.append(release("v4", "2025-11-22T10:00:00Z") | {"replaced": "v3"})
    rolled_back(aws, earlier, "v4", "v3")
    assert f"from v4 to v3 (reached by a rollback 2025-11-21T10:00:00Z by {CALLER}, git 1111111)" in aws.out, aws.out


def test_a_rollback_to_an_image_reached_by_rollbacks_alone_says_the_latest_of_them(aws):
    # (mutation audit) v3 never released: TAG=v3 from v1, v5 over it, TAG=v3 again from v5, then v4 over it. The header
    # gives when v3 last began to run (the second rollback to it), not the first rollback's time.
    earlier = [rel("v1", None), release("v3", "2025-11-21T10:00:00Z") | {"replaced": "v1", "rolled_back_from": "v1"}]
    earlier.append(release("v5", "2025-11-21T12:00:00Z") | {"replaced": "v3"})
    earlier.append(release("v3", "2025-11-21T14:00:00Z") | {"replaced": "v5", "rolled_back_from": "v5"})
    earlier.append(release("v4", "2025-11-22T10:00:00Z") | {"replaced": "v3"})
    rolled_back(aws, earlier, "v4", "v3")
    assert f"from v4 to v3 (reached by a rollback 2025-11-21T14:00:00Z by {CALLER}, git 1111111)" in aws.out, aws.out


def test_a_rollback_goes_back_by_releases_recorded_before_they_named_their_stack(aws):
    # entries without stack_created (written before it existed) were taken for an earlier stack's: nothing earlier to roll back to
    earlier = [release("v1", "2025-11-20T10:00:00Z"), release("v2", "2025-11-22T10:00:00Z")]
    for entry in earlier:
        del entry["stack_created"]
    rolled_back(aws, earlier, "v2", "v1")
    assert f"rolling back {stack('service')} from v2 to v1 (released 2025-11-20T10:00:00Z by {CALLER}, git 1111111)" in aws.out, aws.out
    assert "belong to an earlier" not in aws.out, aws.out


def test_a_rollback_to_an_image_the_history_holds_only_redeploys_of_says_when_one_ran(aws):
    # v1's release went unrecorded, a settings change that kept it was: the header said "its release is not in the history"
    earlier = [release("v1", "2025-11-21T10:00:00Z") | {"replaced": "v1"}, release("v2", "2025-11-22T10:00:00Z") | {"replaced": "v1"}]
    rolled_back(aws, earlier, "v2", "v1")
    assert f"rolling back {stack('service')} from v2 to v1 (released 2025-11-21T10:00:00Z by {CALLER}, git 1111111)" in aws.out, aws.out


def rolled_back_from_v2(aws, ran, runs) -> list:
    """make rollback of a service stack that runs v2 with values `ran` and template `runs` (a dict), back to v1:
    the CreateChangeSet requests it made."""
    earlier = [release("v1", "2025-11-20T10:00:00Z"), release("v2", "2025-11-22T10:00:00Z")]
    aws.deployed("service", parameters=ran)
    history(aws, earlier)
    service_update(
        aws, "v1", earlier, running="v2", service_read=True, rolled_back_from="v2", repair=True, ran=ran, runs_template=json.dumps(runs)
    )
    made = requests_of(aws, "CreateChangeSet")
    assert aws.run("rollback", "--stack", "service", "--yes") == 0, aws.err
    return made


def test_a_rollback_changes_the_image_alone_not_what_else_output_holds(aws):
    # output/ of a newer checkout (CI rolling back from main, say) holds another template and other
    # values than the stack runs: a rollback, made without rollback alarms, carried them in unasked.
    retention = configuration(ENV, "service")["Parameters"]["LogRetentionDays"]
    other = str(next(days for days in LOG_RETENTION_DAYS if str(days) != retention))
    runs = json.loads(template("service"))
    runs["Description"] = "the service layer as an earlier checkout generated it"
    made = rolled_back_from_v2(aws, service_parameters("v2") | {"LogRetentionDays": other}, runs)
    sent = {p["ParameterKey"]: p["ParameterValue"] for p in made[0]["Parameters"]}
    assert sent["LogRetentionDays"] == other and sent["ImageTag"] == "v1", sent
    assert json.loads(made[0]["TemplateBody"])["Description"] == runs["Description"]


def test_a_rollback_sends_no_wired_value_the_template_the_stack_runs_does_not_take(aws):
    # A template of an earlier checkout, without a parameter today's wiring fills: CloudFormation refuses a change
    # set given a parameter its template does not declare.
    runs = json.loads(template("service"))
    del runs["Parameters"]["TestListenerRuleArn"]
    made = rolled_back_from_v2(aws, {k: v for k, v in service_parameters("v2").items() if k != "TestListenerRuleArn"}, runs)
    assert "TestListenerRuleArn" not in {p["ParameterKey"] for p in made[0]["Parameters"]}


@pytest.mark.parametrize(
    ("runs", "problem"),
    [
        ({"Resources": {}}, "no object with Resources"),
        ({"Resources": {"Topic": {"Properties": {}}}}, "Resources.Topic: no object with a Type"),
    ],
)
def test_a_rollback_of_a_stack_whose_template_this_tool_cannot_read_names_the_deploy_of_an_image_instead(aws, runs, problem):
    # The template the stack runs, changed by hand into one the deployer cannot read: make rollback, which redeploys that
    # template with the earlier image, stops before any change set, naming the deploy of an image as the way back.
    aws.deployed("service", parameters=service_parameters("v2"))
    history(aws, [release("v1", "2025-11-20T10:00:00Z"), release("v2", "2025-11-22T10:00:00Z")])
    aws.cf.add_response("get_template", {"TemplateBody": json.dumps(runs)}, {"StackName": stack("service"), "TemplateStage": "Original"})
    assert aws.run("rollback", "--stack", "service", "--yes") == 1, aws.err
    assert aws.err.strip().splitlines()[-1] == (
        f"error: {stack('service')}'s template, as CloudFormation gives it, is not one this tool reads ({problem}); "
        f"roll back by deploying the image instead: make deploy STACK=service ENV={ENV} TAG=<image tag>"
    ), aws.err


def rollback_met_an_update_under_way(aws, status, image, restored):
    """make rollback of a service stack found `status` running `image`, which ends UPDATE_ROLLBACK_COMPLETE running `restored`."""
    aws.deployed("service", status=status, parameters=service_parameters(image))
    back = described("service", "UPDATE_ROLLBACK_COMPLETE", parameters=service_parameters(restored))
    aws.poll("service", stack_id("service"), back, event("service", stack("service"), "UPDATE_ROLLBACK_COMPLETE", 6, token="Console"))


@pytest.mark.parametrize(
    ("status", "image"),
    [
        # v3's release: its run stopped waiting; its alarms fire, someone runs make rollback, and CloudFormation, still at it,
        # rolls v3 back to v2
        ("UPDATE_IN_PROGRESS", "v3"),
        # CloudFormation was undoing v3 already, the stack showing v2 restored
        ("UPDATE_ROLLBACK_IN_PROGRESS", "v2"),
        ("UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS", "v2"),
    ],
)
def test_a_rollback_that_meets_a_release_cloudformation_undoes_rolls_back_nothing_more(aws, status, image):
    # Rolling back from v2 then undid the good release too.
    rollback_met_an_update_under_way(aws, status, image, "v2")
    # no history, change set nor execution queued: none is read or made (it went on from v2 to v1)
    assert aws.run("rollback", "--stack", "service", "--yes") == 0, aws.err
    assert (
        f"{stack('service')}: the update under way when this rollback started ended UPDATE_ROLLBACK_COMPLETE: CloudFormation rolled it "
        f"back, and v2 runs now; nothing more rolled back. If v2 is the image to leave too: make rollback ENV={ENV} again"
    ) in aws.out, aws.out


def test_a_rollback_that_waits_out_an_update_of_the_same_image_cloudformation_undoes_still_rolls_back(aws):
    # The update under way changed something else (its own alarms undid it): the image that runs is the bad one still.
    rollback_met_an_update_under_way(aws, "UPDATE_IN_PROGRESS", "v3", "v3")
    earlier = [release("v2", "2025-11-20T10:00:00Z") | {"replaced": None}, release("v3", "2025-11-22T10:00:00Z") | {"replaced": "v2"}]
    history(aws, earlier)
    service_update(aws, "v2", earlier, running="v3", service_read=True, rolled_back_from="v3", repair=True)
    assert aws.run("rollback", "--stack", "service", "--yes") == 0, aws.err
    assert f"rolling back {stack('service')} from v3 to v2" in aws.out and "nothing more rolled back" not in aws.out, aws.out


def test_releases_of_a_destroyed_service_stack_are_not_rolled_back_to(aws):
    # The service was destroyed and created again: the history of the stack before is not this one's.
    before = [release("v1", "2025-11-01T10:00:00Z", stack_created="2025-10-01T00:00:00Z")]
    aws.deployed("service", parameters=service_parameters("v2"))
    history(aws, [*before, release("v2", "2025-11-22T10:00:00Z")])
    assert aws.run("rollback", "--stack", "service") == 1
    assert f"1 release in the history belongs to an earlier {stack('service')} (destroyed, then created again at " in aws.out
    assert "nothing earlier to roll back to" in aws.err


def test_a_rollback_from_an_image_tag_of_anyones_writing_prints_it_escaped(aws):
    # The stack's ImageTag is whatever anyone who may update the stack wrote (a template swapped by hand).
    hostile = "a\r\u202e\u3164\x9b2J\u2028x"
    aws.deployed("service", parameters=service_parameters(hostile))
    history(aws, [])  # read for the revision of the template the stack runs: no release gives it
    service_update(aws, "v1", [], running=hostile, service_read=True, rolled_back_from=hostile, repair=True, kept_revision="unknown")
    assert aws.run("rollback", "--stack", "service", "--image-tag", "v1", "--yes") == 0, aws.err
    assert f"rolling back {stack('service')} from a\\r\\u202e\\u3164\\x9b2J\\u2028x to v1" in aws.out.splitlines(), aws.out
    assert not re.search("[\r\u202e\u3164\x9b\u2028]", aws.out), ascii(aws.out)


def test_rollback_with_nothing_earlier_says_so(aws):
    aws.deployed("service", parameters=service_parameters("v1"))
    history(aws, [release("v1")])
    assert aws.run("rollback", "--stack", "service") == 1
    assert "nothing earlier to roll back to" in aws.err and "TAG=<image tag>" in aws.err


def test_a_rollback_to_the_running_image_changes_nothing(aws):
    # It said "rolling back from v2 to v2", then made a change set of whatever else differed.
    aws.deployed("service", parameters=service_parameters("v2"))
    assert aws.run("rollback", "--stack", "service", "--image-tag", "v2", "--yes") == 0, aws.err  # no change set queued
    assert aws.out.splitlines()[-1] == f"{stack('service')} runs image v2 already: nothing to roll back"


def test_rollback_is_for_the_service_layer_only(aws):
    assert aws.run("rollback", "--stack", "alb") == 2
    assert "--stack service" in aws.err


def test_an_optional_layer_not_enabled_is_refused_without_aws_calls(aws, disabled):
    disabled, _ = disabled
    assert aws.run("deploy", "--stack", disabled) == 2
    assert f"layer '{disabled}' is not enabled for {ENV}: add it to enabled_layers" in aws.err


@pytest.mark.parametrize("command", ["deploy", "changeset", "diff"])
def test_an_optional_layer_not_enabled_names_the_way_to_remove_its_stack_too(aws, disabled, command):
    # Taken out of enabled_layers while deployed, make status, make diff and make deploy say
    # "make destroy STACK=<layer> ENV=<env> removes it"; the refusal of STACK=<layer> said only
    # "add it to enabled_layers", the way back, not the way a user who took it out meant to go.
    disabled, _ = disabled
    assert aws.run(command, "--stack", disabled) == 2
    assert f"make destroy STACK={disabled} ENV={ENV}" in aws.err, aws.err


def test_the_execution_role_is_passed_to_cloudformation(aws, monkeypatch):
    role = f"arn:aws:iam::{ACCOUNT}:role/ci/startupwebapp-cloudformation"
    monkeypatch.setenv("CFN_EXECUTION_ROLE_ARN", role)
    aws.not_deployed("cert-dns")
    aws.change_set("cert-dns", "CREATE", CERT_CHANGES, create_params("cert-dns", "CREATE") | {"RoleARN": role}, left=True)
    assert aws.run("changeset", "--stack", "cert-dns") == 0, aws.err


def test_events_prints_the_latest_events_oldest_first(aws):
    aws.deployed("alb")
    trail = [event("alb", "LoadBalancer", "UPDATE_COMPLETE", 5, "AWS::ElasticLoadBalancingV2::LoadBalancer")]
    trail.append(event("alb", stack("alb"), "UPDATE_COMPLETE", 9))
    aws.cf.add_response("describe_stack_events", events(*trail), {"StackName": stack_id("alb")})
    assert aws.run("events", "--stack", "alb") == 0, aws.err
    lines = aws.out.splitlines()
    assert lines[0] == f"{stack('alb')}: the last 2 events, oldest first"
    assert "LoadBalancer" in lines[1] and stack("alb") in lines[2]


def test_events_prints_the_25_latest_of_a_longer_trail_oldest_first(aws):
    aws.deployed("alb")
    trail = [event("alb", f"Topic{n}", "UPDATE_COMPLETE", n, "AWS::SNS::Topic") for n in range(30)]  # Topic29 the newest
    aws.cf.add_response("describe_stack_events", events(*trail), {"StackName": stack_id("alb")})
    assert aws.run("events", "--stack", "alb") == 0, aws.err
    lines = aws.out.splitlines()
    assert lines[0] == f"{stack('alb')}: the last 25 events, oldest first"
    assert [re.search(r"Topic\d+", line)[0] for line in lines[1:]] == [f"Topic{n}" for n in range(5, 30)], aws.out


def hook_event(layer, seconds, token="same"):
    """An event with only the fields the API's model requires (StackId, EventId, StackName, Timestamp) and a
    hook's: https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_StackEvent.html"""
    full = event(layer, "Hook", "UPDATE_IN_PROGRESS", seconds, token=token)
    required = {key: full[key] for key in ("StackId", "EventId", "StackName", "Timestamp", "ClientRequestToken") if key in full}
    return required | {"HookType": "Private::Guard::Hook", "HookStatus": "HOOK_COMPLETE_SUCCEEDED"}


def test_events_without_the_fields_the_api_leaves_optional_are_printed_with_a_question_mark(aws):
    aws.deployed("alb")
    trail = [hook_event("alb", 5), event("alb", stack("alb"), "UPDATE_COMPLETE", 9)]
    aws.cf.add_response("describe_stack_events", events(*trail), {"StackName": stack_id("alb")})
    assert aws.run("events", "--stack", "alb") == 0, aws.err  # a KeyError traceback
    assert aws.out.splitlines()[1].split()[2:] == ["?", "?", "?"], aws.out


def test_a_wait_that_meets_an_event_without_the_fields_the_api_leaves_optional_goes_on(aws):
    # A recover's wait, as every stack wait: event_lines indexed ResourceStatus (a KeyError traceback, and none of
    # the wait's advice while the rollback went on).
    aws.deployed("alb", status="UPDATE_ROLLBACK_FAILED")
    token = f"recover-{stack('alb')}-20251125120000"
    aws.cf.add_response("continue_update_rollback", {}, {"StackName": stack("alb"), "ClientRequestToken": token})
    aws.poll(
        "alb",
        stack_id("alb"),
        described("alb", "UPDATE_ROLLBACK_COMPLETE"),
        hook_event("alb", 10, token=token),
        event("alb", stack("alb"), "UPDATE_ROLLBACK_COMPLETE", 20, token=token),
    )
    assert aws.run("recover", "--stack", "alb", "--yes") == 0, aws.err
    assert "UPDATE_ROLLBACK_COMPLETE: back on its previous template" in aws.out, aws.out


def test_a_wait_stopped_after_a_final_status_its_events_had_not_confirmed_does_not_say_the_operation_goes_on(aws):
    # "CloudFormation carries on with ... (UPDATE_ROLLBACK_COMPLETE)": a finished stack, said to carry on.
    aws.deployed("alb", status="UPDATE_ROLLBACK_IN_PROGRESS")
    aws.cf.add_response("describe_stacks", described("alb", "UPDATE_ROLLBACK_COMPLETE"), {"StackName": stack_id("alb")})
    aws.cf.add_client_error("describe_stack_events", "Throttling", "Rate exceeded", 400)
    assert aws.run("recover", "--stack", "alb", "--yes") == 1
    assert f"  the wait stopped: {stack('alb')} reads UPDATE_ROLLBACK_COMPLETE, which its events had not confirmed yet" in aws.err, aws.err
    assert "carries on" not in aws.err, aws.err


def test_a_recover_whose_wait_stops_says_the_rollback_it_continued_goes_on(aws):
    # The first poll read the stack as before (UPDATE_ROLLBACK_FAILED): it said "nothing: it is UPDATE_ROLLBACK_FAILED,
    # no operation runs" of a rollback it had just continued.
    aws.deployed("alb", status="UPDATE_ROLLBACK_FAILED")
    token = f"recover-{stack('alb')}-20251125120000"
    aws.cf.add_response("continue_update_rollback", {}, {"StackName": stack("alb"), "ClientRequestToken": token})
    aws.cf.add_client_error("describe_stacks", "Throttling", "Rate exceeded", 400)
    assert aws.run("recover", "--stack", "alb", "--yes") == 1
    assert f"CloudFormation carries on with {stack('alb')} (UPDATE_ROLLBACK_IN_PROGRESS); nothing was cancelled." in aws.err, aws.err
    assert "(a rollback or a clean-up) cannot be stopped; it ends by itself" in aws.err, aws.err


def test_an_empty_list_where_one_item_is_read_is_an_error_naming_it_not_a_traceback():
    # (found,) = an empty Stacks list raised ValueError, which the catch of unreadable answers left out.
    try:
        (found,) = []  # noqa: F841
    except deploy.aws.UNREADABLE as error:
        said = deploy.aws.unreadable(error)
    assert said.startswith("ValueError: not enough values to unpack (expected 1, got 0), at tests/test_deploy.py:"), said


@pytest.mark.parametrize("command", ["outputs", "status"])
def test_an_answer_without_what_the_tool_reads_is_an_error_naming_it_not_a_traceback(aws, command):
    # Stacks is a list the API's model does not require to hold the stack asked for. make status is not its own way on.
    aws.cf.add_response("describe_stacks", {"Stacks": []}, {"StackName": stack("alb")})
    assert aws.run(command, "--stack", "alb") == 1
    said = re.fullmatch(r"error: IndexError: list index out of range, at (scripts/deploy/\S+\.py):\d+: an AWS answer (.*)\n", aws.err)
    assert said and said[2] == "without what this tool reads, or a bug of the tool's (worth reporting with this line)" + (
        f"; see where things stand: make status ENV={ENV}" if command != "status" else ""
    ), aws.err


def test_what_stopped_a_run_is_placed_at_the_projects_own_code_not_a_librarys():
    # A frame of .venv (under the project root too) was named: yaml's reader.py, for an error the call into it made.
    import yaml

    try:
        yaml.safe_load(1)
    except AttributeError as error:
        said = deploy.aws.unreadable(error)
    assert ", at tests/test_deploy.py:" in said and ".venv" not in said, said


def test_a_wait_that_meets_an_answer_it_cannot_read_says_the_operation_goes_on(aws):
    # A stack without its StackId (optional in the API's model): a traceback, and none of the wait's advice.
    aws.deployed("alb", status="UPDATE_ROLLBACK_FAILED")
    token = f"recover-{stack('alb')}-20251125120000"
    aws.cf.add_response("continue_update_rollback", {}, {"StackName": stack("alb"), "ClientRequestToken": token})
    answer = described("alb", "UPDATE_ROLLBACK_IN_PROGRESS")
    del answer["Stacks"][0]["StackId"]
    aws.cf.add_response("describe_stacks", answer, {"StackName": stack_id("alb")})
    assert aws.run("recover", "--stack", "alb", "--yes") == 1
    assert aws.err.startswith("error: KeyError: 'StackId', at scripts/deploy/waiting.py:"), aws.err
    assert (
        f"  the wait stopped: CloudFormation carries on with {stack('alb')} (UPDATE_ROLLBACK_IN_PROGRESS); nothing was cancelled."
        in aws.err
    )


def test_events_of_a_destroyed_layer_are_those_of_its_stack_deleted_last(aws):
    # After make destroy, what it deleted and what it kept (DELETE_SKIPPED) was "not deployed" alone. A stack of a
    # create declined since, deleted empty, is passed over (its three events were shown instead).
    aws.not_deployed("service")
    deleted_at = NOW + timedelta(hours=1)
    empty = stack_id("service").replace("service", "service-declined")
    summaries = [
        {"StackId": empty, "StackName": stack("service"), "CreationTime": NOW + timedelta(hours=2)}
        | {"StackStatus": "DELETE_COMPLETE", "DeletionTime": NOW + timedelta(hours=2)},
        {"StackId": stack_id("service").replace("service", "service-older"), "StackName": stack("service"), "CreationTime": NOW}
        | {"StackStatus": "DELETE_COMPLETE", "DeletionTime": NOW - timedelta(days=8)},
        {"StackId": stack_id("service"), "StackName": stack("service"), "CreationTime": NOW - timedelta(days=5)}
        | {"StackStatus": "DELETE_COMPLETE", "DeletionTime": deleted_at},
        {"StackId": stack_id("alb"), "StackName": stack("alb"), "CreationTime": NOW, "StackStatus": "DELETE_COMPLETE", "DeletionTime": NOW},
    ]
    aws.cf.add_response("list_stacks", {"StackSummaries": summaries}, {"StackStatusFilter": ["DELETE_COMPLETE"]})
    aws.cf.add_response("list_stack_resources", {"StackResourceSummaries": []}, {"StackName": empty})
    skipped = {"LogicalResourceId": "LogGroup", "PhysicalResourceId": "/ecs/x", "ResourceType": "AWS::Logs::LogGroup"}
    skipped |= {"LastUpdatedTimestamp": NOW, "ResourceStatus": "DELETE_SKIPPED"}
    aws.cf.add_response("list_stack_resources", {"StackResourceSummaries": [skipped]}, {"StackName": stack_id("service")})
    gone = described("service", status="DELETE_COMPLETE")
    gone["Stacks"][0]["DeletionTime"] = deleted_at
    aws.cf.add_response("describe_stacks", gone, {"StackName": stack_id("service")})
    kept = event("service", "LogGroup", "DELETE_SKIPPED", 3600, "AWS::Logs::LogGroup")
    trail = events(event("service", stack("service"), "DELETE_COMPLETE", 3601), kept)
    aws.cf.add_response("describe_stack_events", trail, {"StackName": stack_id("service")})
    assert aws.run("events", "--stack", "service") == 0, aws.err
    lines = aws.out.splitlines()
    assert lines[:2] == [
        f"{stack('service')}: not deployed; the one deleted last, at {deleted_at:%Y-%m-%d %H:%M:%S} UTC:",
        f"{stack('service')}: the last 2 events, oldest first",
    ], aws.out
    assert "LogGroup" in lines[2] and "DELETE_SKIPPED" in lines[2] and "DELETE_COMPLETE" in lines[3], aws.out
    aws.not_deployed("service")  # never deployed: as before
    aws.cf.add_response("list_stacks", {"StackSummaries": summaries[3:]}, {"StackStatusFilter": ["DELETE_COMPLETE"]})
    assert aws.run("events", "--stack", "service") == 0, aws.err
    assert aws.out == f"{stack('service')}: not deployed\n"


def test_events_and_outputs_of_a_stack_of_our_name_someone_else_made_say_so(aws):
    # status, diff and drift said "not made by this tool"; events and outputs showed it as the layer's
    aws.cf.add_response("describe_stacks", described("alb", tags={"Owner": "mallory"}), {"StackName": stack("alb")})
    hook = event("alb", "LoadBalancer", "UPDATE_COMPLETE", 5, "AWS::ElasticLoadBalancingV2::LoadBalancer")
    del hook["ResourceStatus"]  # optional in the API's model: a traceback once
    aws.cf.add_response("describe_stack_events", events(hook), {"StackName": stack_id("alb")})
    assert aws.run("events", "--stack", "alb") == 0, aws.err
    mark = f"note: {stack('alb')}: not made by this tool"
    assert aws.out.splitlines()[-1].startswith(mark) and "LoadBalancer" in aws.out, aws.out
    aws.cf.add_response("describe_stacks", described("alb", tags={"Owner": "mallory"}), {"StackName": stack("alb")})
    assert aws.run("outputs", "--stack", "alb") == 0, aws.err
    assert aws.out.splitlines()[1].startswith(f"  {mark}"), aws.out


def test_diff_says_termination_protection_found_off_which_a_deploy_turns_back_on(aws):
    layer = "cert-dns"
    aws.diff_reads(layer, protected=False)
    assert aws.run("diff", "--stack", layer) == 1, aws.out + aws.err
    assert aws.out.splitlines()[:2] == [
        f"{stack(layer)}: template and values as deployed, but",
        "  termination protection is off (a run stopped before setting it, or a change by hand): "
        f"make deploy STACK={layer} ENV={ENV} turns it back on",
    ], aws.out
    assert f"differs from what {ENV} runs: {layer} (make deploy STACK={layer} ENV={ENV} applies it)" in aws.out


def test_diff_of_a_stack_left_without_its_policy_and_protection_says_the_next_deploy_sets_both(aws):
    # A first create stopped before they were set: the next deploy, even with nothing else to change, protects the
    # stack (its policy first). diff advised setting the policy by hand, "a deploy sets it only with a change".
    layer = "cert-dns"
    assert configuration(ENV, layer).get("StackPolicy"), "the test needs a layer with a stack policy"
    aws.diff_reads(layer, None, protected=False)
    assert aws.run("diff", "--stack", layer) == 1, aws.out + aws.err
    assert (
        f"{stack(layer)}: its stack policy is not the one {templates.relative(OUTPUT / ENV / f'{layer}.json')} gives it: none is set, and "
        "its termination protection is off (a run stopped before it set them, or a change by hand): the next deploy of the layer sets "
        f"both, even with nothing else to change (make deploy STACK={layer} ENV={ENV})"
    ) in aws.out.splitlines(), aws.out
    assert "set-stack-policy" not in aws.out and aws.out.splitlines()[-1] == (
        f"differs from what {ENV} runs: {layer} (make deploy STACK={layer} ENV={ENV} applies it)"
    ), aws.out


def test_rollback_never_returns_to_an_image_rolled_back_from(aws):
    history_entries = [release("v1"), release("v2"), {**release("v1"), "rolled_back_from": "v2"}]
    aws.deployed("service", parameters=service_parameters("v1"))
    history(aws, history_entries)
    assert aws.run("rollback", "--stack", "service") == 1
    assert "nothing earlier to roll back to" in aws.err


@pytest.mark.parametrize(
    "running, entries, why",
    [
        # its first release, then a redeploy (a setting changed)
        (
            "v1",
            [("v1", None), ("v1", "v1")],
            "v1 is the only image this service stack has run (its first release); name one with TAG=<image tag>",
        ),
        # v1 first, then a and b; rolled back to a, then to v1: the third rollback gave the history's generic causes
        (
            "v1",
            [("v1", None), ("a", "v1"), ("b", "a"), ("a", "b", "b"), ("v1", "a", "a")],
            "v1's own release was this service stack's first: nothing ran before it; name one with TAG=<image tag> (to undo the "
            f"rollback to v1: make rollback TAG=a ENV={ENV})",
        ),
        # v1, then v2 over it; a rollback from v2 to v1, then one by TAG=v2 from v1: v1 was left since
        (
            "v2",
            [("v1", None), ("v2", "v1"), ("v1", "v2", "v2"), ("v2", "v1", "v1")],
            "what ran before v2's release, v1, was rolled back from since, and a rollback never goes back to it; name one with "
            f"TAG=<image tag> (to undo the rollback to v2: make rollback TAG=v1 ENV={ENV})",
        ),
    ],
    ids=["first release", "first release reached again", "way back rolled back from"],
)
def test_a_rollback_with_nothing_earlier_says_why_plainly(aws, running, entries, why):
    aws.deployed("service", parameters=service_parameters(running))
    history(aws, [rel(*entry) for entry in entries])  # (image, the image it replaced, the one a rollback left)
    assert aws.run("rollback", "--stack", "service") == 1
    assert aws.err.strip() == f"error: nothing earlier to roll back to: {why}", aws.err


def test_a_rollback_of_a_first_release_gone_back_to_is_not_said_to_be_the_only_image(aws):
    # v2's release not recorded (a run stopped in its wait), then make rollback TAG=v1 from v2: the history names v2
    aws.deployed("service", parameters=service_parameters("v1"))
    history(aws, [rel("v1", None), rel("v1", "v2", rolled_back_from="v2")])
    assert aws.run("rollback", "--stack", "service") == 1
    assert "nothing earlier to roll back to" in aws.err and "the only image" not in aws.err, aws.err


def test_the_previous_release_is_what_ran_before_the_running_images_own_release():
    def released(tag, replaced, rolled_back_from=None):
        return release(tag) | {"replaced": replaced} | ({"rolled_back_from": rolled_back_from} if rolled_back_from else {})

    def back_from(history, running):
        found = deploy.history.previous_release(history, running)
        return found and found["image_tag"]

    a, b, c = released("A", None), released("B", "A"), released("C", "B")
    assert back_from([a, b, c], "C") == "B"
    # C to B by a rollback Ctrl-C stopped, unrecorded; then D released: back from D is B, what ran before it.
    assert back_from([a, b, c, released("D", "B")], "D") == "B"
    # A chain of rollbacks steps back one release each time.
    assert back_from([a, b, c, released("B", "C", rolled_back_from="C")], "B") == "A"
    # Forward deploys of older images are releases like any other: back from what ran before.
    assert back_from([released("v1", None), released("v2", "v1"), released("v1", "v2"), released("v2", "v1")], "v2") == "v1"
    p, q = released("P", None), released("Q", "P")
    assert back_from([p, q, released("P", "Q", rolled_back_from="Q"), released("R", "P"), released("Q", "R")], "Q") == "R"
    # A release of the same image (a change of settings) is not what a rollback goes back from.
    assert back_from([a, b, released("B", "B")], "B") == "A"
    # The stack's first release: nothing before it.
    assert back_from([a], "A") is None
    # What ran before was rolled back from since its own latest release: not gone back to (no swinging between two).
    v1, v2 = released("v1", None), released("v2", "v1")
    assert back_from([v1, v2, released("v1", "v2"), released("v2", "v1", rolled_back_from="v1")], "v2") is None
    assert back_from([a, b, c, released("B", "C"), released("C", "B", rolled_back_from="B")], "C") is None
    # ... but one released again after that rollback is gone back to,
    assert back_from([a, b, released("A", "B", rolled_back_from="B"), released("B", "A"), released("C", "B")], "C") == "B"
    # as is one gone back to by a rollback that named it (TAG=B), then replaced: it was "rolled back from since".
    assert (
        back_from([a, b, released("A", "B", rolled_back_from="B"), released("B", "A", rolled_back_from="A"), released("C", "B")], "C")
        == "B"
    )
    # What ran before, whose own release is not in the history (cut short): named by its tag alone.
    assert deploy.history.previous_release([released("C", "B")], "C") == {"image_tag": "B"}
    # An image reached by a rollback only (TAG=, never released): what ran before the image that rollback left.
    assert back_from([a, b, c, released("X", "C", rolled_back_from="C")], "X") == "B"
    assert back_from([a, b, released("X", "B", rolled_back_from="B"), released("X", "X")], "X") == "A"  # and redeployed
    # Where the history misses a release or rollback (a run stopped in its wait: an entry's `replaced` is not the
    # image of the entry before it), a model of random histories found rollbacks to a wrong image; none now:
    # A left by an unrecorded rollback to B, then TAG=C: A is no way back.
    assert back_from([a, released("C", "B", rolled_back_from="B")], "C") is None
    # B and C released unrecorded, D released, rolled back (TAG=) to C: what ran before C (B) is not in the history.
    assert back_from([a, released("D", "C"), released("C", "D", rolled_back_from="D")], "C") is None
    # A released unrecorded first: the history's start is cut, and B came after A.
    assert back_from([released("B", "A"), released("C", "B"), released("A", "C", rolled_back_from="C")], "A") is None
    # B to A by a rollback, back to B by an unrecorded TAG=B (which left A), then a redeploy of B: A is no way back.
    assert back_from([a, b, released("A", "B", rolled_back_from="B"), released("B", "B")], "B") is None


def test_a_question_with_stdout_closed_from_the_start_is_refused_not_asked():
    # input() would raise "lost sys.stdout": nobody could read the question anyway.
    def never(question):
        raise AssertionError("asked")

    deployer = deploy.Deployer(None, ENV, out=Output(None, goes_on=True), err=io.StringIO(), interactive=True, ask=never)
    assert deployer.why_not("go on? ") == "the output's reader is gone (a closed pipe: nobody reads the question) and no YES=1 (--yes)"


@pytest.mark.parametrize(
    ("answer", "confirmed"),
    [
        ("y", True),
        ("yes", True),
        ("Y", True),
        (" YES \n", True),
        ("", False),
        ("n", False),
        ("ye", False),
        ("yess", False),
        ("y es", False),
    ],
)
def test_a_question_on_the_terminal_goes_on_after_y_or_yes_only(aws, answer, confirmed):
    # (mutation audit) "yes" typed in full at a [y/N] prompt confirms as "y" does, whatever its case or the spaces around it.
    deployer = deploy.Deployer(aws.clients, ENV, out=io.StringIO(), err=io.StringIO(), interactive=True, ask=aws.answering(answer))
    deployer.stacks[stack("alb")] = described("alb")["Stacks"][0]  # the account the question names, read: no call
    assert deployer.why_not("execute it? [y/N] ") == (None if confirmed else deploy_text.NOT_CONFIRMED)


def test_the_previous_release_is_neither_the_running_image_nor_one_a_rollback_left():
    # A history written before releases recorded what they replaced.
    previous_release = deploy.history.previous_release
    assert previous_release([release("v1"), release("v2")], "v2") == release("v1")
    assert previous_release([release("v1"), release("v2"), release("v3"), {**release("v2"), "rolled_back_from": "v3"}], "v2") == release(
        "v1"
    )
    assert previous_release([release("v1")], "v1") is None
    assert previous_release([], "v1") is None
    # A rollback to v1 that Ctrl-C stopped while CloudFormation finished it: v2 is not gone back to.
    assert previous_release([release("v1"), release("v2")], "v1") is None
    assert previous_release([release("v0"), release("v1"), release("v2")], "v1") == release("v0")
    # A deploy of v3 stopped the same way: v3 runs, unrecorded, and v2 is the one before it.
    assert previous_release([release("v1"), release("v2")], "v3") == release("v2")
    # An older image deployed again by TAG= (not by make rollback): v2 was gone back from, not gone back to.
    assert previous_release([release("v1"), release("v2"), release("v1")], "v1") is None
    # ... and a later deploy of the running image after such a rollback changes nothing of that.
    assert previous_release([release("v1"), release("v2"), release("v3"), release("v2")], "v2") == release("v1")
    assert previous_release([release("v1"), release("v2"), release("v3"), release("v4"), release("v2")], "v2") == release("v1")
    # After a recorded rollback from v3 to v2, v4 is released: a rollback from v4 goes to v2, what ran before it.
    rolled = [release("v1"), release("v2"), release("v3"), {**release("v2"), "rolled_back_from": "v3"}, release("v4")]
    assert previous_release(rolled, "v4")["image_tag"] == "v2"


def test_a_rollback_with_nothing_earlier_still_puts_back_a_policy_a_stopped_run_left_relaxed(aws):
    lock_taken(aws, "service", command="rollback", stack="service")
    aws.deployed("service", parameters=service_parameters("v1"))
    aws.policy_restored("service")
    history(aws, [release("v1") | {"replaced": None}])
    lock_freed(aws, command="rollback", stack="service")
    assert aws.run("rollback", "--stack", "service", locking=True) == 1
    assert "nothing earlier to roll back to" in aws.err and "put back" in aws.out


V0, V2 = release("v0") | {"replaced": None}, release("v2") | {"replaced": "v1"}
LAST_IS_V2 = f"but the last release in the history ({HISTORY}) is v2 ({V2['time']}): a release or rollback since was not recorded (its write refused or unanswered, or its wait stopped before it), and v1 runs"


@pytest.mark.parametrize(
    "releases, why",
    [
        ([release("v1") | {"replaced": None}, V2], LAST_IS_V2),
        ([V0, release("v1") | {"replaced": "v0"}, V2], LAST_IS_V2),
        (
            [V0, V2],
            f"which no release in the history ({HISTORY}) names: it was released outside make deploy, or its release was not recorded",
        ),
        (
            # v1's release went unrecorded (a run stopped in its wait), then a change of settings alone redeployed v1 and
            # a rollback went back to it: going by the history's order rolled back past the image that ran before v1
            [V0, release("v1") | {"replaced": "v1"}, V2, release("v1") | {"replaced": "v2", "rolled_back_from": "v2"}],
            f"whose own release the history ({HISTORY}) does not hold (not recorded, or trimmed from it), though it ran: its first "
            "entry there is a redeploy of it",
        ),
        (
            # v1 released by a hand update of the stack, then a settings change by make deploy (make releases says so)
            [V0, release("v1") | {"replaced": "v1"}],
            f"whose own release the history ({HISTORY}) does not hold (not recorded, or trimmed from it), though it ran: its first "
            "entry there is a redeploy of it",
        ),
    ],
    ids=[
        "first release",
        "a release before it",
        "no release names it",
        "only a redeploy and a rollback name it",
        "a hand release, then a settings change",
    ],
)
def test_a_rollback_of_an_image_whose_release_the_history_missed_asks_which_image(aws, releases, why):
    # The rollback from v2 to v1 stopped waiting before it was recorded: v1 runs, the history ends
    # with v2. Going by v1's own release would roll back a second time (to v0); by v2's, forward.
    # Or no release names v1 (a run stopped between its update and the record, or a release outside
    # this tool): going back to the last recorded one skipped whatever ran in between.
    aws.deployed("service", parameters=service_parameters("v1"))
    history(aws, releases)
    assert aws.run("rollback", "--stack", "service") == 1
    assert "rolling back" not in aws.out
    assert aws.err == (
        f"error: {stack('service')} runs image v1, {why}. What ran before v1 is not known: name the image to roll back to with "
        "TAG=<image tag> (make rollback TAG=<image tag> ENV=prod)\n"
    )


@pytest.mark.parametrize(
    "releases, error",
    [
        (
            [V0, V2],
            f"error: {stack('service')} runs image {HOSTILE_SHOWN}, which no release in the history ({HISTORY}) names: it was released "
            f"outside make deploy, or its release was not recorded. What ran before {HOSTILE_SHOWN} is not known: name the image to roll "
            f"back to with TAG=<image tag> (make rollback TAG=<image tag> ENV={ENV})\n",
        ),
        (
            [],
            f"error: nothing earlier to roll back to: the release history (SSM parameter {HISTORY}) names no image that ran before the "
            f"running one (image tag {HOSTILE_SHOWN}) and was not rolled back from since, or cannot tell which: it misses a release "
            "or rollback (a run stopped in its wait), its oldest entries were trimmed, or the image was reached by rollbacks alone; "
            "name one with TAG=<image tag>\n",
        ),
    ],
    ids=["no release names it", "no release at all"],
)
def test_a_rollback_that_cannot_tell_what_ran_before_shows_the_running_image_escaped(aws, releases, error):
    # The stack's ImageTag is whatever anyone who may update the stack wrote: a screen clear, a bidi override.
    aws.deployed("service", parameters=service_parameters(HOSTILE_IMAGE))
    history(aws, releases)
    assert aws.run("rollback", "--stack", "service") == 1
    assert aws.err == error, ascii(aws.err)


def test_a_rollback_that_meets_a_release_cloudformation_undoes_shows_the_image_it_restored_escaped(aws):
    rollback_met_an_update_under_way(aws, "UPDATE_ROLLBACK_IN_PROGRESS", HOSTILE_IMAGE, HOSTILE_IMAGE)
    assert aws.run("rollback", "--stack", "service", "--yes") == 0, aws.err
    assert (
        f"{stack('service')}: the update under way when this rollback started ended UPDATE_ROLLBACK_COMPLETE: CloudFormation rolled it "
        f"back, and {HOSTILE_SHOWN} runs now; nothing more rolled back. If {HOSTILE_SHOWN} is the image to leave too: make rollback "
        f"ENV={ENV} again"
    ) in aws.out.splitlines(), ascii(aws.out)
    assert "\x1b" not in aws.out and "\u202e" not in aws.out, ascii(aws.out)


def test_deploy_without_tag_keeps_the_running_image(aws):
    aws.deployed("alb")
    aws.deployed("release-alarms")
    aws.deployed("service", parameters=service_parameters("v7"))
    aws.empty_change_set("service", ImageTag="v7")
    assert aws.run("deploy", "--stack", "service") == 0, aws.err
    assert f"{stack('service')}: no changes" in aws.out


def test_a_declined_first_create_leaves_no_stack_behind(aws):
    aws.not_deployed("cert-dns")
    aws.change_set("cert-dns", "CREATE", CERT_CHANGES, left=True)  # declined (no terminal): it never runs
    aws.cf.add_response("delete_change_set", {}, {"StackName": stack("cert-dns"), "ChangeSetName": cs_name("cert-dns")})
    aws.cf.add_response("list_change_sets", {"Summaries": []}, {"StackName": stack_id("cert-dns")})  # none left but ours
    aws.cf.add_response("delete_stack", {}, {"StackName": stack_id("cert-dns")})
    assert aws.run("deploy", "--stack", "cert-dns") == 1
    assert "no terminal to ask on and no YES=1 (--yes): nothing changed" in aws.err
    assert f"{stack('cert-dns')}: change set {cs_name('cert-dns')} deleted" in aws.out
    assert f"{stack('cert-dns')}: stack {stack('cert-dns')}, empty (REVIEW_IN_PROGRESS) deleted" in aws.out


def test_an_empty_first_stack_that_cannot_be_deleted_is_named_not_the_change_set(aws):
    aws.not_deployed("cert-dns")
    aws.change_set("cert-dns", "CREATE", CERT_CHANGES, left=True)  # declined (no terminal): it never runs
    aws.cf.add_response("delete_change_set", {}, {"StackName": stack("cert-dns"), "ChangeSetName": cs_name("cert-dns")})
    aws.cf.add_response("list_change_sets", {"Summaries": []}, {"StackName": stack_id("cert-dns")})  # none left but ours
    aws.cf.add_client_error("delete_stack", "AccessDenied", "not authorized to perform: cloudformation:DeleteStack", 403)
    assert aws.run("deploy", "--stack", "cert-dns") == 1
    assert f"change set {cs_name('cert-dns')} deleted" in aws.out
    delete = f"{CLI} cloudformation delete-stack --stack-name {stack('cert-dns')}"
    # why, where the run's role may not delete stacks (CI's deploy role: tests/test_ci_layer.py OPERATOR_ONLY_CALLS)
    said = f"{stack('cert-dns')}: AccessDenied, so stack {stack('cert-dns')}, empty (REVIEW_IN_PROGRESS) may be left; delete it: {delete}"
    assert said in aws.out.splitlines(), aws.out


def requests_of(aws, operation, *, raising=None, service="cloudformation"):
    """The parameters of each `operation` request (CloudFormation's, or service's) the run makes, recorded
    before the Stubber answers it; with raising, each such request raises it instead of being answered."""
    made = []

    def record(params, **_):
        made.append(params)
        if raising is not None:
            raise raising

    # provide-client-params comes before the Stubber's check of the request, which fails one it has no answer for.
    aws.clients[service].meta.events.register(f"provide-client-params.{service}.{operation}", record)
    return made


def interrupted_after(aws, operation):
    """Ctrl-C as the answer to each CloudFormation `operation` request arrives (the request landed);
    returns what takes it back."""

    def interrupt(**_):
        raise KeyboardInterrupt

    event = f"after-call.cloudformation.{operation}"
    aws.clients["cloudformation"].meta.events.register(event, interrupt)
    return lambda: aws.clients["cloudformation"].meta.events.unregister(event, interrupt)


def test_ctrl_c_during_the_clean_up_names_what_may_be_left_and_tries_nothing_more(aws):
    aws.not_deployed("cert-dns")
    aws.change_set("cert-dns", "CREATE", CERT_CHANGES, left=True)  # declined (no terminal): the clean-up starts
    requests_of(aws, "DeleteChangeSet", raising=KeyboardInterrupt)
    stack_deletions = requests_of(aws, "DeleteStack")
    assert aws.run("deploy", "--stack", "cert-dns") == 1
    assert stack_deletions == []
    assert f"change set {cs_name('cert-dns')} may be left; delete it: {CLI} cloudformation delete-change-set" in aws.out
    assert f"stack {stack('cert-dns')}, empty (REVIEW_IN_PROGRESS) may be left; delete it: {CLI} cloudformation delete-stack" in aws.out
    assert "no terminal to ask on" in aws.err and "Traceback" not in aws.err


@pytest.mark.parametrize("landed", [True, False], ids=["change set found", "change set not there"])
def test_ctrl_c_while_create_change_set_is_answered_cleans_up_what_it_can_tell_was_made(aws, landed):
    """The request may have made the change set and, on a first create, its empty stack; with no
    answer the stack's id is not known. Once the change set is found and deleted, the request had
    landed: the stack it made is looked up by name and deleted too (not said to be deleted and then
    to be left). No change set to delete: the request has not landed (it may yet), so neither has
    the stack; both are named, and nothing is looked up or deleted."""
    aws.not_deployed("cert-dns")
    aws.zone_checked("cert-dns")
    aws.cf.add_response(
        "create_change_set",
        {"Id": change_set("cert-dns")["ChangeSetId"], "StackId": stack_id("cert-dns")},
        create_params("cert-dns", "CREATE"),
    )
    interrupted_after(aws, "CreateChangeSet")
    if landed:
        aws.cf.add_response("delete_change_set", {}, {"StackName": stack("cert-dns"), "ChangeSetName": cs_name("cert-dns")})
        aws.cf.add_response("describe_stacks", described("cert-dns", "REVIEW_IN_PROGRESS"), {"StackName": stack("cert-dns")})
        aws.cf.add_response("list_change_sets", {"Summaries": []}, {"StackName": stack_id("cert-dns")})  # none left but ours
        aws.cf.add_response("delete_stack", {}, {"StackName": stack_id("cert-dns")})
    else:
        aws.cf.add_client_error("delete_change_set", "ChangeSetNotFound", f"ChangeSet [{cs_name('cert-dns')}] does not exist", 404)
    assert aws.run("deploy", "--stack", "cert-dns") == 130
    assert "interrupted" in aws.err and "Traceback" not in aws.err
    if landed:
        assert f"change set {cs_name('cert-dns')} deleted" in aws.out
        assert f"stack {stack('cert-dns')}, empty (REVIEW_IN_PROGRESS) deleted" in aws.out and "may be left" not in aws.out
    else:  # the Stubber fails any DescribeStacks or DeleteStack beyond the run's first describe
        assert f"change set {cs_name('cert-dns')} may be left" in aws.out
        assert f"stack {stack('cert-dns')}, empty (REVIEW_IN_PROGRESS) may be left; delete it: {CLI} cloudformation delete-stack" in aws.out
        # left as it may yet be made, not because it was not found: the not-found answer is no reason given
        assert "ChangeSetNotFound, so" not in aws.out, aws.out


def retried_throttling(operation):
    """The error botocore raises when the last of its attempts is throttled: an earlier one may have
    landed before its answer was lost (aws.may_have_landed)."""
    return ClientError({"Error": {"Code": "Throttling", "Message": "Rate exceeded"}, "ResponseMetadata": {"RetryAttempts": 4}}, operation)


def test_an_error_answer_to_a_retried_create_change_set_is_cleaned_up_as_if_it_had_landed(aws):
    aws.not_deployed("cert-dns")
    aws.zone_checked("cert-dns")
    requests_of(aws, "CreateChangeSet", raising=retried_throttling("CreateChangeSet"))
    aws.cf.add_response("delete_change_set", {}, {"StackName": stack("cert-dns"), "ChangeSetName": cs_name("cert-dns")})
    aws.cf.add_response("describe_stacks", described("cert-dns", "REVIEW_IN_PROGRESS"), {"StackName": stack("cert-dns")})
    aws.cf.add_response("list_change_sets", {"Summaries": []}, {"StackName": stack_id("cert-dns")})  # none left but ours
    aws.cf.add_response("delete_stack", {}, {"StackName": stack_id("cert-dns")})
    assert aws.run("deploy", "--stack", "cert-dns") == 1
    assert "Throttling" in aws.err
    assert f"change set {cs_name('cert-dns')} deleted" in aws.out
    assert f"stack {stack('cert-dns')}, empty (REVIEW_IN_PROGRESS) deleted" in aws.out


ALARM_PREFIX = stubbed_aws.ALARM_PREFIX
OWN_ALARMS = sorted(stubbed_aws.OUTPUT_VALUES["RollbackAlarmArns"].split(","))  # the release-alarms stack's, as it makes them


@pytest.mark.parametrize(
    "arns, minutes",
    [
        (",", "10"),  # none: it read as a repair's empty list, "the next deploy watches them again"
        (OWN_ALARMS[0].rsplit(":", 1)[0] + ":attacker-never", "10"),  # another's alarm
        (",".join([OWN_ALARMS[0], OWN_ALARMS[0]]), "10"),  # one of its two, twice
        (",".join([*OWN_ALARMS, OWN_ALARMS[0]]), "10"),  # each of its own, one of them twice
        (",".join(arn.replace(f":alarm:{ALARM_PREFIX}-", f":alarm:{ALARM_PREFIX}-eu-") for arn in OWN_ALARMS), "10"),  # a longer prefix's
        (",".join(OWN_ALARMS), "ten"),  # a traceback (int())
        (",".join(OWN_ALARMS), "181"),  # past what CloudFormation takes
    ],
    ids=["no alarm", "another alarm", "one twice", "all and one twice", "a longer prefix's", "minutes not a number", "minutes past 180"],
)
def test_rollback_alarms_the_release_alarms_stack_did_not_make_stop_the_run_before_a_change_set(aws, arns, minutes):
    # The outputs are that stack's to say, anyone's to change who may update it: a release watched by no alarm,
    # or by another's, looked like any other.
    aws.deployed("alb")
    alarms = described("release-alarms")
    changed = {"RollbackAlarmArns": arns, "RollbackMonitoringMinutes": minutes}
    for output in alarms["Stacks"][0]["Outputs"]:
        output["OutputValue"] = changed.get(output["OutputKey"], output["OutputValue"])
    aws.cf.add_response("describe_stacks", alarms, {"StackName": stack("release-alarms")})
    aws.not_deployed("service")
    created = requests_of(aws, "CreateChangeSet")
    assert aws.run("changeset", "--stack", "service") == 1
    assert aws.err == (
        f"error: {stack('release-alarms')}'s outputs RollbackAlarmArns ({arns}) and RollbackMonitoringMinutes ({minutes}) are not what "
        f"its template makes: its alarms ({', '.join(OWN_ALARMS)}), each once, and 0 to 180 minutes; a release would be watched by "
        f"other alarms than its own, or by fewer. make deploy STACK=release-alarms ENV={ENV} puts them back; nothing changed\n"
    ), aws.err
    assert created == [] and "Traceback" not in aws.err


def test_missing_rollback_alarms_stop_the_run_before_a_change_set_is_asked_for(aws):
    aws.deployed("alb")
    alarms = described("release-alarms")
    alarms["Stacks"][0]["Outputs"] = [o for o in alarms["Stacks"][0]["Outputs"] if o["OutputKey"] != "RollbackAlarmArns"]
    aws.cf.add_response("describe_stacks", alarms, {"StackName": stack("release-alarms")})
    aws.not_deployed("service")
    deletions = requests_of(aws, "DeleteChangeSet")
    assert aws.run("changeset", "--stack", "service") == 1
    assert f"{stack('service')} needs the rollback alarms of release-alarms" in aws.err
    assert deletions == [] and "may be left" not in aws.out


@pytest.mark.parametrize(
    "error, code, words",
    [
        (EndpointConnectionError(endpoint_url="https://cloudformation.us-east-1.amazonaws.com"), 1, "error: no answer"),
        (KeyboardInterrupt(), 130, "interrupted"),
        (retried_throttling("ExecuteChangeSet"), 1, "error: an error answer to a retry"),
    ],
    ids=["no answer", "ctrl-c", "error after a retry"],
)
def test_an_execute_that_may_have_started_keeps_the_change_set_and_says_how_to_go_on(aws, error, code, words):
    aws.deployed("cert-dns")
    aws.change_set("cert-dns", "UPDATE", CERT_CHANGES)
    requests_of(aws, "ExecuteChangeSet", raising=error)
    if isinstance(error, ClientError):  # an endpoint that answers is asked whether the change set started: not yet
        execution_status_read(aws, "cert-dns", "AVAILABLE")
    deletions = requests_of(aws, "DeleteChangeSet")
    assert aws.run("deploy", "--stack", "cert-dns", "--yes") == code
    assert deletions == []
    assert f"{words} while asking CloudFormation to execute {cs_name('cert-dns')}" in aws.err and "; it may have started" in aws.err
    assert (
        f"make execute STACK=cert-dns ENV={ENV} CHANGESET={cs_name('cert-dns')} executes it if it did not start, and says so if it did"
        in aws.err
    )


def execution_status_read(aws, layer, execution, token="same"):
    """DescribeChangeSet of the layer's change set, by its ARN, answering that ExecutionStatus; once it says
    the change set started, the stack's latest events, of the execution whose request carried token."""
    arn = change_set(layer)["ChangeSetId"]
    aws.cf.add_response("describe_change_set", change_set(layer) | {"ExecutionStatus": execution}, {"ChangeSetName": arn})
    if execution in deploy_status.ALREADY_EXECUTED:
        started = event(layer, stack(layer), "UPDATE_IN_PROGRESS", 1, reason="User Initiated", token=token)
        aws.cf.add_response("describe_stack_events", events(started), {"StackName": stack_id(layer)})


def invalid_status_after_a_retry():
    """The answer to a retried ExecuteChangeSet whose first attempt started the change set (API_ExecuteChangeSet.html)."""
    answer = {"Error": {"Code": "InvalidChangeSetStatus", "Message": "ChangeSet is in EXECUTE_IN_PROGRESS state"}}
    return ClientError(answer | {"ResponseMetadata": {"RetryAttempts": 1}}, "ExecuteChangeSet")


@pytest.mark.parametrize("execution", ["EXECUTE_IN_PROGRESS", "EXECUTE_COMPLETE"])
def test_an_execute_whose_retry_finds_the_change_set_started_follows_the_stack(aws, execution):
    # The first attempt landed and its answer was lost; botocore's retry was refused, as the change set was
    # executing: the run exited 1 saying it may have started, though its own first attempt had started it.
    aws.reviewed_change_set("cert-dns")
    requests_of(aws, "ExecuteChangeSet", raising=invalid_status_after_a_retry())
    execution_status_read(aws, "cert-dns", execution)
    aws.poll("cert-dns", stack_id("cert-dns"), described("cert-dns"), event("cert-dns", stack("cert-dns"), "UPDATE_COMPLETE", 30))
    policy = json.dumps(configuration(ENV, "cert-dns")["StackPolicy"])
    aws.cf.add_response("set_stack_policy", {}, {"StackName": stack("cert-dns"), "StackPolicyBody": policy})
    assert aws.run("execute", "--stack", "cert-dns", "--changeset", cs_name("cert-dns"), "--yes") == 0, aws.err
    assert (
        f"{stack('cert-dns')}: a retry of the request to execute {cs_name('cert-dns')} was answered InvalidChangeSetStatus, and the "
        f"change set is {execution}, its events this run's: the first attempt, whose answer was lost, started it; following it"
    ) in aws.out.splitlines(), aws.out
    assert f"{stack('cert-dns')}: UPDATE_COMPLETE" in aws.out and "may have started" not in aws.err, aws.err


def test_an_execute_whose_retry_finds_the_change_set_failed_follows_it_to_its_rollback(aws):
    aws.reviewed_change_set("cert-dns")
    requests_of(aws, "ExecuteChangeSet", raising=invalid_status_after_a_retry())
    execution_status_read(aws, "cert-dns", "EXECUTE_FAILED")
    rolled_back = event("cert-dns", stack("cert-dns"), "UPDATE_ROLLBACK_COMPLETE", 30)
    aws.poll("cert-dns", stack_id("cert-dns"), described("cert-dns", "UPDATE_ROLLBACK_COMPLETE"), rolled_back)
    policy = json.dumps(configuration(ENV, "cert-dns")["StackPolicy"])
    aws.cf.add_response("set_stack_policy", {}, {"StackName": stack("cert-dns"), "StackPolicyBody": policy})
    assert aws.run("execute", "--stack", "cert-dns", "--changeset", cs_name("cert-dns"), "--yes") == 1
    assert "and the change set is EXECUTE_FAILED, its events this run's: the first attempt, whose answer was lost" in aws.out, aws.out
    assert aws.err.startswith(f"error: {stack('cert-dns')} ended UPDATE_ROLLBACK_COMPLETE"), aws.err


@pytest.mark.parametrize("looked_up", ["another's execution", "a lookup refused"])
def test_an_execute_whose_retry_cannot_tell_the_change_set_started_by_this_run_says_it_may_have(aws, looked_up):
    # Executed by another request (its events carry the console's token), following it waited for events of
    # this run's to its bound (45 minutes for cert-dns) while every poll read UPDATE_COMPLETE.
    aws.reviewed_change_set("cert-dns")
    requests_of(aws, "ExecuteChangeSet", raising=invalid_status_after_a_retry())
    if looked_up == "another's execution":
        execution_status_read(aws, "cert-dns", "EXECUTE_COMPLETE", token="Console-ExecuteChangeSet-abc")
    else:
        aws.cf.add_client_error("describe_change_set", "Throttling", "Rate exceeded", 400)
    assert aws.run("execute", "--stack", "cert-dns", "--changeset", cs_name("cert-dns"), "--yes") == 1
    assert aws.err.startswith(f"error: an error answer to a retry while asking CloudFormation to execute {cs_name('cert-dns')}"), aws.err
    assert "; it may have started" in aws.err and "following it" not in aws.out, aws.out + aws.err


def test_ctrl_c_while_asking_whether_a_retried_execute_started_says_it_may_have(aws):
    aws.reviewed_change_set("cert-dns")
    requests_of(aws, "ExecuteChangeSet", raising=invalid_status_after_a_retry())

    def interrupt(params, **_):
        if "StackName" not in params:  # the lookup by ARN, not make execute's read of the change set by its name
            raise KeyboardInterrupt

    aws.clients["cloudformation"].meta.events.register("provide-client-params.cloudformation.DescribeChangeSet", interrupt)
    assert aws.run("execute", "--stack", "cert-dns", "--changeset", cs_name("cert-dns"), "--yes") == 130
    assert aws.err.startswith(f"interrupted while asking CloudFormation to execute {cs_name('cert-dns')}; it may have started"), aws.err


def tags_only_service_update(aws, repair=False):
    """A service stack running v1 whose stack tags alone differ (a tag key no params file gives): its change set
    finds nothing to change, none other is waiting, and the tags go through UpdateStack (left to the test)."""
    aws.deployed("alb")
    aws.deployed("release-alarms")
    tags = configuration(ENV, "service")["Tags"] | {"Retired": "old"}
    aws.cf.add_response(
        "describe_stacks", described("service", tags=tags, parameters=service_parameters("v1")), {"StackName": stack("service")}
    )
    aws.empty_change_set("service", repair=repair, ImageTag="v1")
    aws.cf.add_response("list_change_sets", {"Summaries": []}, {"StackName": stack("service")})


def test_a_tags_only_update_of_a_layer_with_rollback_triggers_says_them_and_sends_a_repairs_empty_list(aws):
    # UpdateStack without RollbackConfiguration keeps the stack's last triggers: REPAIR=1 did not apply, unsaid.
    tags_only_service_update(aws, repair=True)
    updates = requests_of(aws, "UpdateStack", raising=KeyboardInterrupt())
    assert aws.run("deploy", "--stack", "service", "--repair", "--yes") == 130
    assert "rollback triggers: none for this update of its tags" in aws.out, aws.out
    assert updates[0]["RollbackConfiguration"] == {"RollbackTriggers": [], "MonitoringTimeInMinutes": 0}, updates


@pytest.mark.parametrize(
    "error, code, words",
    [
        (EndpointConnectionError(endpoint_url="https://cloudformation.us-east-1.amazonaws.com"), 1, "error: no answer"),
        (KeyboardInterrupt(), 130, "interrupted"),
        (retried_throttling("UpdateStack"), 1, "error: an error answer to a retry"),
        (ClientError({"Error": {"Code": "ValidationError", "Message": "refused"}}, "UpdateStack"), 1, None),
    ],
    ids=["no answer", "ctrl-c", "error after a retry", "refused"],
)
def test_a_tags_only_update_that_may_have_started_says_so(aws, error, code, words):
    # Ctrl-C in its UpdateStack said "interrupted; to go on: the same command again", and the update ran (a trial).
    tags_only_service_update(aws)
    requests_of(aws, "UpdateStack", raising=error)
    assert aws.run("deploy", "--stack", "service", "--yes") == code, aws.err
    said = f"while asking CloudFormation to update the tags of {stack('service')}"
    if words is None:  # refused at its first attempt: it did not start
        assert said not in aws.err and "refused" in aws.err, aws.err
        return
    assert aws.err.startswith(f"{words} {said}"), aws.err
    assert (
        f"; it may have started (and, if short, ended): make status ENV={ENV} says; the same command again updates them if it did not"
        in aws.err
    ), aws.err
    assert "to go on: the same command again" not in aws.err, aws.err


def test_a_tags_only_update_that_rolled_back_records_no_release(aws):
    # A redeploy is recorded only once the update stands: one rolled back ran nothing new.
    tags_only_service_update(aws)
    aws.cf.add_response("update_stack", {"StackId": stack_id("service")})
    token = f"tags-{stack('service')}-{NOW:%Y%m%d%H%M%S}"
    rolled_back = event("service", stack("service"), "UPDATE_ROLLBACK_COMPLETE", 20, token=token)
    failed = event("service", "LogGroup", "UPDATE_FAILED", 10, kind="AWS::Logs::LogGroup", reason="tags refused", token=token)
    aws.poll("service", stack_id("service"), described("service", "UPDATE_ROLLBACK_COMPLETE"), failed, rolled_back)
    # no GetParameter nor PutParameter of the history queued: a release recorded fails the test
    assert aws.run("deploy", "--stack", "service", "--yes") == 1, aws.err
    assert "UPDATE_ROLLBACK_COMPLETE" in aws.out + aws.err, aws.out + aws.err


def test_a_tags_only_update_waits_for_the_monitoring_minutes_of_the_triggers_it_sends(aws, monkeypatch):
    # Its wait left them out: past its bound while CloudFormation still watched the alarms. And a run of
    # every layer stopped in that wait summed the layer up as "no changes", its change set's outcome.
    tags_only_service_update(aws)
    aws.cf.add_response("update_stack", {"StackId": stack_id("service")})
    waits = []

    def waited(self, *args, **kwargs):
        waits.append(kwargs | {"outcome": self.outcomes.get("service")})
        raise KeyboardInterrupt

    monkeypatch.setattr(deploy.deployer.Deployer, "wait_for_stack", waited)
    assert aws.run("deploy", "--stack", "service", "--yes") == 130
    assert waits[0]["monitoring"] == int(OUTPUT_VALUES["RollbackMonitoringMinutes"]), waits
    assert waits[0]["outcome"] is None, waits  # the summary: stopped at service, not "service (no changes)"


def executed_up_to_the_question(aws, made):
    """make execute of the service's change set `made` (a DescribeChangeSet answer) on a stack running v1, with no terminal:
    it goes as far as its question, and no further."""
    aws.reviewed_change_set("service", made=made, running=service_parameters("v1"))
    assert aws.run("execute", "--stack", "service", "--changeset", cs_name("service")) == 1 and "no terminal to ask on" in aws.err


def test_a_change_set_made_without_rollback_triggers_is_said_to_keep_the_stacks_not_taken_for_a_repair(aws):
    # Made by hand without a RollbackConfiguration: CloudFormation keeps the stack's last triggers; it read as a repair.
    made = change_set("service", parameters=service_parameters("v2"))
    del made["RollbackConfiguration"]
    executed_up_to_the_question(aws, made)
    assert "rollback triggers: none given with this change set: CloudFormation keeps those the stack last had" in aws.out, aws.out


def test_a_repairs_change_set_says_so_in_its_description_and_is_executed_as_one_whatever_aws_echoes(aws):
    # Whether DescribeChangeSet echoes a repair's empty list of triggers is not documented: with {} it read as "none given",
    # and what follows its execution (the settling of a new service) sent the release alarms again.
    service_update(aws, "v2", None, running="v1", repair=True)
    made = requests_of(aws, "CreateChangeSet")
    assert aws.run("deploy", "--stack", "service", "--image-tag", "v2", "--repair", "--yes") == 0, aws.err
    repair = f"service layer of {ENV}, by scripts/deploy; a repair, without rollback triggers"
    assert made[0]["Description"] == repair + "; a release replacing image v1"


@pytest.mark.parametrize("tag", ["v2", "v1"])
def test_a_release_change_set_names_the_image_it_replaces_in_its_description(aws, tag):
    # The way back from it, should it run unrecorded: make execute of it then reads it there. (A rollback's
    # names the image it leaves, the one it replaces: test_rollback_deploys_the_previous_image_through_a_change_set)
    service_update(aws, tag, None, running="v1")
    made = requests_of(aws, "CreateChangeSet")
    assert aws.run("deploy", "--stack", "service", "--image-tag", tag, "--yes") == 0, aws.err
    says = "; a release replacing image v1" if tag != "v1" else ""  # a redeploy of the running image replaces none
    assert made[0]["Description"] == f"service layer of {ENV}, by scripts/deploy{says}"


def test_make_execute_of_a_change_set_marked_a_repair_goes_without_triggers_even_if_aws_drops_its_empty_list(aws):
    layer = deploy.layer.load_layer(ENV, "service", OUTPUT)
    marked = change_set("service", parameters=service_parameters("v2")) | {
        "Description": deploy_text.change_set_description(layer, repair=True),
        "RollbackConfiguration": {},
    }
    executed_up_to_the_question(aws, marked)
    assert "rollback triggers: none for this change set (a repair" in aws.out, aws.out


def test_a_change_set_given_no_triggers_is_waited_for_with_the_stacks_monitoring_minutes_and_settled_without_any(aws, monkeypatch):
    # "CloudFormation keeps those the stack last had": its wait left their monitoring minutes out, and the settling
    # change set after it sent the release alarms again where the stack last had none (a repair's).
    made = change_set("service", parameters=service_parameters("v2"))
    del made["RollbackConfiguration"]
    aws.cf.add_response("describe_change_set", made, {"StackName": stack("service"), "ChangeSetName": cs_name("service")})
    last = described("service", parameters=service_parameters("v1"))
    last["Stacks"][0]["RollbackConfiguration"] = {"RollbackTriggers": [], "MonitoringTimeInMinutes": 7}
    aws.cf.add_response("describe_stacks", last, {"StackName": stack("service")})
    waits, settling = executed_until_its_wait(aws, monkeypatch)
    assert waits[0]["monitoring"] == 7, waits
    assert settling == [{}]  # what follows it (the settling change set) gives none either: the stack keeps its last


def executed_until_its_wait(aws, monkeypatch):
    """make execute of the service's change set (described, and the stack, queued already), stopped at its wait:
    the wait's arguments, and the rollback configuration the settling change set after it would take."""
    aws.change_set_template("service")
    aws.listed_change_sets("service")
    aws.upstream_deployed("service")  # what it reads, compared with what the change set takes
    aws.execute("service")
    waits, settling = [], []

    def waited(self, *args, **kwargs):
        waits.append(kwargs)
        settling.append(self.rollback_configuration(deploy.layer.load_layer(ENV, "service", OUTPUT)))
        raise KeyboardInterrupt

    monkeypatch.setattr(deploy.deployer.Deployer, "wait_for_stack", waited)
    assert aws.run("execute", "--stack", "service", "--changeset", cs_name("service"), "--yes") == 130
    return waits, settling


def test_the_execute_command_after_an_unanswered_execution_carries_the_switches_the_run_needed(aws):
    # Run as printed, without ALLOW_REPLACE=1, make execute refused the change set the run had allowed.
    aws.deployed("cert-dns")
    aws.change_set("cert-dns", "UPDATE", CERT_CHANGES)
    requests_of(aws, "ExecuteChangeSet", raising=EndpointConnectionError(endpoint_url="https://cloudformation.us-east-1.amazonaws.com"))
    assert aws.run("deploy", "--stack", "cert-dns", "--yes", "--allow-replace") == 1
    assert (
        f"make execute STACK=cert-dns ENV={ENV} CHANGESET={cs_name('cert-dns')} ALLOW_REPLACE=1 executes it if it did not start" in aws.err
    )


@pytest.mark.parametrize("execution", ["EXECUTE_IN_PROGRESS", "EXECUTE_COMPLETE", "EXECUTE_FAILED"])
def test_make_execute_of_a_change_set_executed_already_says_so_and_calls_nothing_more(aws, execution):
    # What a run stopped while asking to execute leaves when the execution had started: the change
    # set's ExecutionStatus says it (API_ChangeSetSummary), and make execute goes no further.
    executed = change_set("cert-dns") | {"ExecutionStatus": execution}
    aws.cf.add_response("describe_change_set", executed, {"StackName": stack("cert-dns"), "ChangeSetName": cs_name("cert-dns")})
    if execution != "EXECUTE_IN_PROGRESS":  # ran: the stack read, to finish what its run left (nothing: it is protected)
        aws.deployed("cert-dns", **({"status": "UPDATE_ROLLBACK_COMPLETE"} if execution == "EXECUTE_FAILED" else {}))
    assert aws.run("execute", "--stack", "cert-dns", "--changeset", cs_name("cert-dns"), "--yes") == 1
    assert aws.err == (
        f"error: change set {cs_name('cert-dns')} {deploy_status.ALREADY_EXECUTED[execution]}: nothing to execute; "
        f"where {stack('cert-dns')} stands: make status ENV={ENV} STACK=cert-dns\n"
    )
    assert aws.out == "", aws.out


def test_make_execute_of_a_change_set_that_ran_protects_the_stack_its_stopped_run_left_unprotected(aws):
    # A make execute of a first create stopped after the create (in its wait, or before the stack policy and termination
    # protection) left the stack without both; the same command again said "executed already" and changed nothing.
    layer = "cert-dns"
    policy = configuration(ENV, layer).get("StackPolicy")
    executed = change_set(layer) | {"ExecutionStatus": "EXECUTE_COMPLETE"}
    aws.cf.add_response("describe_change_set", executed, {"StackName": stack(layer), "ChangeSetName": cs_name(layer)})
    aws.deployed(layer, protected=False)
    assert policy  # the stack policy first, then termination protection, as after a deploy's operation
    aws.cf.add_response("set_stack_policy", {}, {"StackName": stack(layer), "StackPolicyBody": json.dumps(policy)})
    termination = {"StackName": stack(layer), "EnableTerminationProtection": True}
    aws.cf.add_response("update_termination_protection", {"StackId": stack_id(layer)}, termination)
    assert aws.run("execute", "--stack", layer, "--changeset", cs_name(layer), "--yes") == 1
    assert aws.out.splitlines() == [
        f"{stack(layer)}: termination protection was off (a run stopped before it set it, or a change by hand): turned back on"
    ], aws.out
    assert aws.err.startswith(f"error: change set {cs_name(layer)} {deploy_status.ALREADY_EXECUTED['EXECUTE_COMPLETE']}"), aws.err


@pytest.mark.parametrize("execution", ["EXECUTE_IN_PROGRESS", "EXECUTE_FAILED"])
def test_make_execute_of_a_release_executing_or_failed_reads_no_stack_nor_history(aws, execution):
    # Whether the release is recorded is asked only of one that ran to the end: under way, its run may still record it;
    # failed, the stack rolled back to the image before it.
    executed = change_set("service") | {"ExecutionStatus": execution}
    assert "ImageTag" in {p["ParameterKey"] for p in executed["Parameters"]}  # a release's change set
    aws.cf.add_response("describe_change_set", executed, {"StackName": stack("service"), "ChangeSetName": cs_name("service")})
    if execution == "EXECUTE_FAILED":  # the stack, not the history: what the stopped run left to put back is looked for
        aws.deployed("service", status="UPDATE_ROLLBACK_COMPLETE")
    assert aws.run("execute", "--stack", "service", "--changeset", cs_name("service"), "--yes") == 1
    assert aws.err == (
        f"error: change set {cs_name('service')} {deploy_status.ALREADY_EXECUTED[execution]}: nothing to execute; "
        f"where {stack('service')} stands: make status ENV={ENV} STACK=service\n"
    )


def test_make_execute_of_an_executed_release_whose_stack_cannot_be_read_still_says_it_was_executed(aws):
    # Whether the release is recorded is a second look (DescribeStacks, the history): refused, it adds nothing.
    executed = change_set("service") | {"ExecutionStatus": "EXECUTE_COMPLETE"}
    assert "ImageTag" in {p["ParameterKey"] for p in executed["Parameters"]}  # a release's change set
    aws.cf.add_response("describe_change_set", executed, {"StackName": stack("service"), "ChangeSetName": cs_name("service")})
    for _ in range(2):  # and the look at what its run may have left to finish: refused, it adds nothing either
        aws.cf.add_client_error("describe_stacks", "AccessDenied", "not allowed", 403)
    assert aws.run("execute", "--stack", "service", "--changeset", cs_name("service"), "--yes") == 1
    assert aws.err == (
        f"error: change set {cs_name('service')} {deploy_status.ALREADY_EXECUTED['EXECUTE_COMPLETE']}: nothing to execute; "
        f"where {stack('service')} stands: make status ENV={ENV} STACK=service\n"
    )


@pytest.mark.parametrize(
    "case", ["another image runs", "recorded", "recorded for an earlier stack", "not recorded", "not recorded, nor the release before it"]
)
def test_make_execute_of_an_executed_release_says_it_is_unrecorded_only_when_its_image_runs_unrecorded(aws, case):
    # A run stopped as it asked to execute a release: its change set ran, and the history lacks it. Said only
    # when its image runs and the history's last release of this service stack (not an earlier one's) is
    # another image: a rollback from it must then name the image to go back to.
    executed = change_set("service") | {"ExecutionStatus": "EXECUTE_COMPLETE"}
    image = deploy.text.parameter_values(executed)["ImageTag"]
    before = "v0"  # the history's last release
    if case == "not recorded, nor the release before it":  # which the change set's description names
        before = "v0.5"
        executed["Description"] = f"service layer of {ENV}, by scripts/deploy; a release replacing image {before}"
    aws.cf.add_response("describe_change_set", executed, {"StackName": stack("service"), "ChangeSetName": cs_name("service")})
    running = described("service")["Stacks"][0]
    runs = {p["ParameterKey"]: p["ParameterValue"] for p in running["Parameters"]} | {
        "ImageTag": f"{image}-other" if case == "another image runs" else image
    }
    aws.deployed("service", parameters=runs)
    earlier_stack = f"{running['CreationTime'] - timedelta(days=30):%Y-%m-%dT%H:%M:%SZ}"
    entries = {
        "recorded": [release("v0"), release(image)],
        "recorded for an earlier stack": [release("v0"), release(image, stack_created=earlier_stack)],
        "not recorded": [release("v0")],
        "not recorded, nor the release before it": [release("v0")],
    }
    if case != "another image runs":  # no release of a running image: the history is not read
        history(aws, entries[case])
    assert aws.run("execute", "--stack", "service", "--changeset", cs_name("service"), "--yes") == 1
    unrecorded = f"the release of {image} is live but not recorded in the release history (SSM parameter {HISTORY})"
    assert (unrecorded in aws.err) == case.startswith(("recorded for an earlier stack", "not recorded")), aws.err
    if unrecorded in aws.err:
        assert f"make rollback ENV={ENV} TAG={before}" in aws.err, aws.err  # back to what ran before it


def test_a_refused_execute_deletes_the_change_set_and_puts_the_relaxed_policy_back(aws):
    aws.deployed("cert-dns")
    aws.deployed("alb")
    aws.change_set("alb", "UPDATE", ALB_CHANGES)
    aws.readers_not_deployed("alb")  # the target group replaced: what reads its ARN, deployed?
    aws.policy_relaxed("alb")
    aws.cf.add_client_error("execute_change_set", "InvalidChangeSetStatus", "the stack status is UPDATE_IN_PROGRESS", 400)
    aws.cf.add_response("delete_change_set", {}, {"StackName": stack("alb"), "ChangeSetName": cs_name("alb")})
    aws.policy_restored("alb")
    assert aws.run("deploy", "--stack", "alb", "--yes", "--allow-replace") == 1
    assert "InvalidChangeSetStatus" in aws.err
    assert f"{stack('alb')}: change set {cs_name('alb')} deleted" in aws.out and f"{stack('alb')}: stack policy put back" in aws.out


def test_a_relaxed_policy_that_cannot_be_put_back_is_named_with_the_command(aws):
    aws.deployed("cert-dns")
    aws.deployed("alb")
    aws.change_set("alb", "UPDATE", ALB_CHANGES)
    aws.readers_not_deployed("alb")  # the target group replaced: what reads its ARN, deployed?
    aws.policy_relaxed("alb")
    aws.cf.add_client_error("execute_change_set", "InvalidChangeSetStatus", "the stack status is UPDATE_IN_PROGRESS", 400)
    aws.cf.add_response("delete_change_set", {}, {"StackName": stack("alb"), "ChangeSetName": cs_name("alb")})
    aws.cf.add_client_error("set_stack_policy", "AccessDenied", "not authorized to perform cloudformation:SetStackPolicy", 403)
    assert aws.run("deploy", "--stack", "alb", "--yes", "--allow-replace") == 1
    assert f"change set {cs_name('alb')} deleted" in aws.out
    assert f"{stack('alb')}: AccessDenied, so the stack policy is still relaxed (--allow-replace); restore it" in aws.out
    assert f"{CLI} cloudformation set-stack-policy --stack-name {stack('alb')}" in aws.out
    # the layer's policy itself, not read from a file that may be another checkout's (or another --output-dir's)
    assert f"--stack-policy-body {shlex.quote(json.dumps(configuration(ENV, 'alb')['StackPolicy']))}" in aws.out, aws.out


def test_a_refused_relaxing_of_the_policy_leaves_nothing_to_put_back(aws):
    aws.deployed("cert-dns")
    aws.deployed("alb")
    aws.change_set("alb", "UPDATE", ALB_CHANGES)
    aws.readers_not_deployed("alb")  # the target group replaced: what reads its ARN, deployed?
    aws.policy_marked("alb")
    aws.cf.add_client_error("set_stack_policy", "AccessDenied", "not authorized to perform cloudformation:SetStackPolicy", 403)
    aws.ssm.add_response("delete_parameter", {}, {"Name": f"{RELAXED}/alb"})  # refused: the mark goes too
    aws.cf.add_response("delete_change_set", {}, {"StackName": stack("alb"), "ChangeSetName": cs_name("alb")})
    policy_writes = requests_of(aws, "SetStackPolicy")
    assert aws.run("deploy", "--stack", "alb", "--yes", "--allow-replace") == 1
    assert "AccessDenied" in aws.err and f"change set {cs_name('alb')} deleted" in aws.out
    assert len(policy_writes) == 1  # the policy is as it was: nothing to put back
    assert "put back" not in aws.out and "still relaxed" not in aws.out


def test_a_failed_change_set_is_deleted_with_the_empty_first_stack_and_its_reason_kept(aws):
    aws.not_deployed("cert-dns")
    aws.zone_checked("cert-dns")
    aws.cf.add_response(
        "create_change_set",
        {"Id": change_set("cert-dns")["ChangeSetId"], "StackId": stack_id("cert-dns")},
        create_params("cert-dns", "CREATE"),
    )
    failed = change_set("cert-dns", "FAILED", reason="Template error: unresolvable reference")
    aws.cf.add_response("describe_change_set", failed, {"StackName": stack("cert-dns"), "ChangeSetName": cs_name("cert-dns")})
    aws.cf.add_client_error("delete_change_set", "ValidationError", "Rate exceeded", 400)
    aws.cf.add_response("list_change_sets", {"Summaries": []}, {"StackName": stack_id("cert-dns")})  # none left but ours
    aws.cf.add_response("delete_stack", {}, {"StackName": stack_id("cert-dns")})
    assert aws.run("deploy", "--stack", "cert-dns") == 1
    assert f"error: change set {cs_name('cert-dns')} failed: Template error: unresolvable reference" in aws.err
    assert (
        f"change set {cs_name('cert-dns')} may be left" in aws.out
        and f"stack {stack('cert-dns')}, empty (REVIEW_IN_PROGRESS) deleted" in aws.out
    )


def test_ctrl_c_while_the_change_set_is_computed_tries_to_delete_it_and_names_it_when_refused(aws):
    aws.deployed("cert-dns")
    aws.cf.add_response(
        "create_change_set",
        {"Id": change_set("cert-dns")["ChangeSetId"], "StackId": stack_id("cert-dns")},
        create_params("cert-dns", "UPDATE"),
    )
    aws.cf.add_response(
        "describe_change_set",
        change_set("cert-dns", "CREATE_IN_PROGRESS"),
        {"StackName": stack("cert-dns"), "ChangeSetName": cs_name("cert-dns")},
    )
    # DeleteChangeSet's one documented error: the change set may be CREATE_IN_PROGRESS.
    # https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_DeleteChangeSet.html
    aws.cf.add_client_error("delete_change_set", "InvalidChangeSetStatus", "the change set status is CREATE_IN_PROGRESS", 400)

    def interrupted(seconds):
        raise KeyboardInterrupt

    assert aws.run("deploy", "--stack", "cert-dns", sleep=interrupted) == 130
    assert f"change set {cs_name('cert-dns')} may be left; delete it: {CLI} cloudformation delete-change-set" in aws.out
    assert "interrupted" in aws.err and "Traceback" not in aws.err


def test_an_unreadable_answer_to_the_deletion_still_names_what_is_left_and_keeps_the_refusal(aws):
    aws.deployed("cert-dns")
    aws.change_set("cert-dns", "UPDATE", CERT_CHANGES)
    aws.cf.add_response("delete_change_set", {}, {"StackName": stack("cert-dns"), "ChangeSetName": cs_name("cert-dns")})

    def unreadable(**_):  # what botocore raises for an answer it cannot parse; it derives from neither of its error bases
        raise ResponseParserError("Unable to parse response (not well-formed), invalid XML received")

    aws.clients["cloudformation"].meta.events.register("after-call.cloudformation.DeleteChangeSet", unreadable)
    assert aws.run("deploy", "--stack", "cert-dns") == 1
    assert f"change set {cs_name('cert-dns')} may be left" in aws.out
    assert "no terminal to ask on and no YES=1 (--yes): nothing changed" in aws.err and "Traceback" not in aws.err


def test_a_multi_layer_deploy_says_which_layers_were_deployed_and_which_were_not(aws):
    first, declined, *rest = PROD_LAYERS
    aws.deployed(first)
    aws.empty_change_set(first)
    aws.deployed(declined)
    aws.change_set(declined, "UPDATE", [change("Modify", "Certificate", "AWS::CertificateManager::Certificate")])
    aws.cf.add_response("delete_change_set", {}, {"StackName": stack(declined), "ChangeSetName": cs_name(declined)})
    terminal = io.StringIO()  # what a terminal shows: stdout and stderr in the order written
    assert aws.run("deploy", tty=True, answer="n", out=terminal, err=terminal) == 1
    lines = aws.err.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("summary, "))
    summary, stopped, reason = lines[at : at + 3]
    assert summary.endswith(f": {first} (no changes)")
    assert stopped == f"  the run stopped at {declined} (the reason is below); not reached: {', '.join(rest)}"
    assert reason.startswith("error: ") and "not confirmed" in reason


def test_a_reviewed_change_set_not_confirmed_is_left_for_review(aws):
    aws.reviewed_change_set("cert-dns")
    assert aws.run("execute", "--stack", "cert-dns", "--changeset", cs_name("cert-dns")) == 1
    assert "change set left for review; to execute without asking, rerun with YES=1 (--yes)" in aws.err


# --- the hosted zone, its delegation and the bounded wait (issue: real-AWS correctness) ---------
REGISTRAR_SERVERS = {"ns1.registrar.example", "ns2.registrar.example"}


def answers(*sequence):
    """A resolver that answers the domain's NS look-ups with these sets in turn (the last one repeats)."""
    asked = []

    def resolve(domain):
        asked.append(domain)
        return sequence[min(len(asked), len(sequence)) - 1]

    resolve.asked = asked
    return resolve


def delegated_servers():
    return {f"{name.upper()}." for name in ZONE_SERVERS}  # DNS answers in any case, with the final dot


def params_without_zone(tmp_path):
    """A copy of params/ and output/ where prod has no ExistingHostedZoneId yet."""
    params, output = tmp_path / "params", tmp_path / "output"
    params.mkdir()
    for path in (PARAMS).glob("*.yaml"):
        text = path.read_text()
        if path.stem == ENV:
            text = "\n".join(line for line in text.splitlines() if not line.strip().startswith("ExistingHostedZoneId:"))
        (params / path.name).write_text(text)
    (output / ENV).mkdir(parents=True)
    (output / "cert-dns.json").write_text(template("cert-dns"))
    emptied = configuration(ENV, "cert-dns")
    emptied["Parameters"]["ExistingHostedZoneId"] = ""
    (output / ENV / "cert-dns.json").write_text(json.dumps(emptied))
    return ["--params-dir", str(params), "--output-dir", str(output)]


@pytest.mark.parametrize("command", ["deploy", "changeset"])
def test_cert_dns_without_a_hosted_zone_is_refused_before_any_aws_call(aws, tmp_path, command):
    assert aws.run(command, "--stack", "cert-dns", *params_without_zone(tmp_path)) == 2
    assert "parameters.ExistingHostedZoneId is empty" in aws.err
    assert f"make zone ENV={ENV}" in aws.err and "delegates" in aws.err
    assert aws.api_calls.strip() == ""


def test_diff_says_the_empty_zone_the_deploy_refuses_before_any_call(aws, tmp_path):
    # make diff said "make deploy ... applies it", and the deploy refused the emptied ExistingHostedZoneId (above)
    dirs = params_without_zone(tmp_path)
    aws.diff_reads("cert-dns")  # deployed with the zone
    assert aws.run("diff", "--stack", "cert-dns", *dirs) == 1, aws.err
    (note,) = [line for line in aws.out.splitlines() if line.startswith("note: make deploy would be refused: ")]
    assert note.startswith(
        f"note: make deploy would be refused: {tmp_path}/params/{ENV}.yaml: parameters.ExistingHostedZoneId is empty; cert-dns "
    ), note
    assert f"Run make zone ENV={ENV}" in note, note
    assert "applies it, once what the note above names is fixed" in aws.out.splitlines()[-1], aws.out


def test_cert_dns_create_is_refused_until_public_dns_delegates_the_domain(aws):
    aws.not_deployed("cert-dns")
    aws.route53.add_response("get_hosted_zone", hosted_zone(), {"Id": ZONE})
    resolver = answers(REGISTRAR_SERVERS)
    assert aws.run("deploy", "--stack", "cert-dns", "--yes", resolver=resolver) == 1
    assert resolver.asked == [DOMAIN]
    assert f"{DOMAIN} is not delegated to hosted zone {ZONE}" in aws.err
    assert all(server in aws.err for server in ZONE_SERVERS + sorted(REGISTRAR_SERVERS))


def private_zone():
    """GetHostedZone of a private zone: VPCs, no DelegationSet (it is optional in the API)."""
    found = hosted_zone()
    found["HostedZone"]["Config"]["PrivateZone"] = True
    del found["DelegationSet"]
    return found | {"VPCs": [{"VPCRegion": "us-east-1", "VPCId": "vpc-0a1b2c3d4e5f60718"}]}


def test_a_private_zone_is_refused_by_the_cert_dns_create_and_by_make_zone(aws):
    # ACM "cannot validate resources in an Amazon VPC private hosted zone":
    # https://docs.aws.amazon.com/acm/latest/userguide/domain-ownership-validation.html
    aws.not_deployed("cert-dns")
    aws.route53.add_response("get_hosted_zone", private_zone(), {"Id": ZONE})
    assert aws.run("deploy", "--stack", "cert-dns", "--yes", resolver=answers(delegated_servers())) == 1
    said = f"error: {PARAMS_FILE}: parameters.ExistingHostedZoneId: {ZONE} is a private hosted zone, in which ACM cannot validate"
    assert aws.err.startswith(said) and "Traceback" not in aws.err, aws.err
    aws.route53.add_response("get_hosted_zone", private_zone(), {"Id": ZONE})
    assert aws.run("zone", resolver=answers(delegated_servers())) == 1
    assert aws.err.startswith(said), aws.err


def test_a_zone_answered_without_name_servers_is_refused_as_private_whatever_its_config_says(aws):
    # DelegationSet and Config are both optional in GetHostedZone's answer: a zone without name servers
    # is one ACM cannot validate in, said as such, not a KeyError
    found = private_zone()
    del found["HostedZone"]["Config"]
    aws.route53.add_response("get_hosted_zone", found, {"Id": ZONE})
    assert aws.run("zone", resolver=answers(delegated_servers())) == 1
    said = f"error: {PARAMS_FILE}: parameters.ExistingHostedZoneId: {ZONE} is a private hosted zone, in which ACM cannot validate"
    assert aws.err.startswith(said) and "Traceback" not in aws.err, aws.err


def test_a_zone_that_says_it_is_private_is_refused_even_answered_with_name_servers(aws):
    # A private zone "may say PrivateZone" (zone.is_public): said so, its answer is not taken as a public zone's for a
    # DelegationSet it also holds, as ACM cannot validate in it.
    found = hosted_zone()
    found["HostedZone"]["Config"]["PrivateZone"] = True
    aws.route53.add_response("get_hosted_zone", found, {"Id": ZONE})
    assert aws.run("zone", resolver=answers(delegated_servers())) == 1
    said = f"error: {PARAMS_FILE}: parameters.ExistingHostedZoneId: {ZONE} is a private hosted zone, in which ACM cannot validate"
    assert aws.err.startswith(said) and "Traceback" not in aws.err, aws.err


@pytest.mark.parametrize("found", ["none", "another domain's"])
def test_a_zone_id_of_no_zone_or_of_another_domain_is_refused_by_the_cert_dns_create_and_by_make_zone(aws, found):
    """Same words from both, naming the params file; not GetHostedZone's own error (a wrong id, or
    credentials of another account)."""
    said = {
        "none": f"parameters.ExistingHostedZoneId: {ZONE} is not a hosted zone of this account (are the credentials those of the right "
        f'account?); allowed: the id of {DOMAIN}\'s public zone; to have make zone find or create it, set ExistingHostedZoneId: "" first',
        "another domain's": f"parameters.ExistingHostedZoneId: {ZONE} is the zone of example.org, not of {DOMAIN}; "
        f'allowed: the id of {DOMAIN}\'s public zone; to have make zone find or create it, set ExistingHostedZoneId: "" first',
    }[found]

    def answer():
        if found == "none":
            aws.route53.add_client_error("get_hosted_zone", "NoSuchHostedZone", f"No hosted zone found with ID: {ZONE}", 404)
        else:
            aws.route53.add_response("get_hosted_zone", hosted_zone(domain="example.org"), {"Id": ZONE})

    aws.not_deployed("cert-dns")
    answer()
    assert aws.run("deploy", "--stack", "cert-dns", "--yes", resolver=answers(delegated_servers())) == 1
    assert aws.err == f"error: {PARAMS_FILE}: {said}\n", aws.err
    answer()
    assert aws.run("zone", resolver=answers(delegated_servers())) == 1
    assert aws.err.endswith(f"{said}\n"), aws.err


@pytest.mark.parametrize("changed", ["DomainName", "ExistingHostedZoneId"])
def test_an_update_to_another_domain_or_zone_is_checked_as_a_create_is_on_an_emulator_too(aws, changed):
    # It was checked at a create alone, and with public DNS alone: an update to a domain the zone is not
    # of replaced the certificate, whose validation records the zone cannot hold.
    running = configuration(ENV, "cert-dns")["Parameters"] | {
        changed: {"DomainName": "other.example", "ExistingHostedZoneId": "Z0OTHER"}[changed]
    }
    aws.deployed("cert-dns", parameters=running)
    aws.route53.add_response("get_hosted_zone", hosted_zone(domain="example.org"), {"Id": ZONE})
    assert aws.run("deploy", "--stack", "cert-dns", "--yes") == 1  # no resolver: the emulator's way
    assert aws.err == (
        f"error: {PARAMS_FILE}: parameters.ExistingHostedZoneId: {ZONE} is the zone of example.org, not of {DOMAIN}; allowed: the id "
        f'of {DOMAIN}\'s public zone; to have make zone find or create it, set ExistingHostedZoneId: "" first\n'
    )
    aws.deployed("cert-dns", parameters=running)
    aws.route53.add_response("get_hosted_zone", hosted_zone(), {"Id": ZONE})
    resolver = answers(REGISTRAR_SERVERS)
    assert aws.run("deploy", "--stack", "cert-dns", "--yes", resolver=resolver) == 1
    assert resolver.asked == [DOMAIN] and f"{DOMAIN} is not delegated to hosted zone {ZONE}" in aws.err, aws.err


def test_an_update_that_keeps_the_domain_and_zone_asks_neither_route_53_nor_dns(aws):
    resolver = answers(REGISTRAR_SERVERS)
    aws.deployed("cert-dns")
    aws.empty_change_set("cert-dns")
    assert aws.run("deploy", "--stack", "cert-dns", "--yes", resolver=resolver) == 0, aws.err
    assert resolver.asked == [] and aws.calls("cert-dns") == 4, aws.api_calls  # and no GetHostedZone: none is stubbed


def cert_dns_create_until(aws, polls):
    """A cert-dns create on a delegated domain whose certificate stays CREATE_IN_PROGRESS for `polls` polls."""
    layer = "cert-dns"
    aws.not_deployed(layer)
    aws.change_set(layer, "CREATE", CERT_CHANGES)  # the zone asked for first
    aws.execute(layer)
    started = [
        event(layer, stack(layer), "CREATE_IN_PROGRESS", 1, reason="User Initiated"),
        event(layer, "Certificate", "CREATE_IN_PROGRESS", 2, "AWS::CertificateManager::Certificate"),
    ]
    for _ in range(polls):
        aws.poll(layer, stack_id(layer), described(layer, "CREATE_IN_PROGRESS", protected=False, with_outputs=False), *started)


@pytest.mark.parametrize(("max_wait", "polls"), [(None, 4), (1, 2)])
def test_the_wait_for_a_stack_is_bounded_and_says_what_is_still_in_progress(aws, max_wait, polls):
    aws.caller()  # the account a YES=1 run prints with its question, before it read any stack
    # Each poll's sleep advances this clock by 1,000 s: the limit (45 min = 2,700 s for cert-dns,
    # or 60 s with --max-wait 1) passes after the 4th, or the 2nd, poll.
    minutes = max_wait or templates.WAIT_MINUTES["cert-dns"]
    assert (polls - 2) * 1000 < minutes * 60 <= (polls - 1) * 1000
    cert_dns_create_until(aws, polls)
    extra = ["--max-wait", str(max_wait)] if max_wait else []
    code = aws.run(
        "deploy", "--stack", "cert-dns", "--yes", *extra, resolver=answers(delegated_servers()), clock=lambda: 1000 * len(aws.sleeps)
    )
    assert code == 1, aws.err
    assert f"error: stopped waiting for {stack('cert-dns')} after {minutes} minutes; it is still CREATE_IN_PROGRESS." in aws.err
    assert "still CREATE_IN_PROGRESS since 12:00:02: Certificate (AWS::CertificateManager::Certificate)" in aws.err
    assert f"is the hosted zone delegated? make zone ENV={ENV}" in aws.err
    assert "CloudFormation carries on; nothing was cancelled." in aws.err
    assert f"{CLI} cloudformation delete-stack --stack-name {stack('cert-dns')}" in aws.err


def test_a_release_that_shifts_traffic_is_waited_for_its_shifting_and_bake_time_too():
    from scripts.deploy.deployer import Deployer
    from scripts.deploy.waiting import stated_release_wait_minutes

    values = configuration(ENV, "service")["Parameters"] | {"DeploymentStrategy": "BLUE_GREEN", "TestPauseMinutes": "0"}  # prod's waits
    bake = int(values["BakeTimeMinutes"])
    assert stated_release_wait_minutes(values) == bake
    assert stated_release_wait_minutes(values | {"DeploymentStrategy": "ROLLING"}) == 0
    assert stated_release_wait_minutes(values | {"TestPauseMinutes": "20"}) == bake + 20  # the release waits at most that for make continue
    assert stated_release_wait_minutes(values | {"DeploymentStrategy": "CANARY", "CanaryBakeTimeMinutes": "30"}) == 30 + bake
    linear = values | {"DeploymentStrategy": "LINEAR", "LinearStepPercent": "20", "LinearStepBakeTimeMinutes": "7"}
    assert stated_release_wait_minutes(linear) == 4 * 7 + bake  # 5 shifts of 20 %, the last without a step bake
    assert stated_release_wait_minutes(configuration(ENV, "alb")["Parameters"] | {"DeploymentStrategy": "BLUE_GREEN"}) == 0  # no release
    # What a stack states is anyone's to set who may update it: a Number CloudFormation takes (10.0, 1e1), rounded up;
    # one no release of this tool's states bounds the wait by the longest a release may wait, where int() was a traceback
    # (make rollback and make destroy stopped by it after they had changed the stack)
    from templates.common import MOST_RELEASE_WAIT_MINUTES

    assert stated_release_wait_minutes(values | {"BakeTimeMinutes": "4.0", "TestPauseMinutes": "1e1"}) == 4 + 10
    assert stated_release_wait_minutes(values | {"BakeTimeMinutes": "4.5"}) == 5
    assert (
        stated_release_wait_minutes(values | {"BakeTimeMinutes": "4", "TestPauseMinutes": "1440"}) == 4 + 1440
    )  # past a release's own bound
    thirds = values | {
        "DeploymentStrategy": "LINEAR",
        "LinearStepPercent": "33.3",
        "LinearStepBakeTimeMinutes": "10",
        "BakeTimeMinutes": "4",
    }
    assert stated_release_wait_minutes(thirds) == 3 * 10 + 4  # shifts of 33.3, 66.6, 99.9 %, each baked, then 100 %
    for odd in ({"BakeTimeMinutes": "ten"}, {"TestPauseMinutes": "nan"}, {"BakeTimeMinutes": "-5"}, {"LinearStepPercent": "0"}):
        assert stated_release_wait_minutes(values | odd) == MOST_RELEASE_WAIT_MINUTES, odd
    deployer = Deployer(None, ENV, out=io.StringIO(), err=io.StringIO())
    assert deployer.wait_minutes(stack("service"), bake) == templates.WAIT_MINUTES["service"] + bake
    assert Deployer(None, ENV, out=io.StringIO(), err=io.StringIO(), max_wait=5).wait_minutes(stack("service"), bake) == 5


def test_a_change_set_that_is_never_computed_is_waited_for_ten_minutes_then_left_saying_how_to_go_on(aws):
    aws.deployed("cert-dns")
    aws.deployed("alb")
    aws.cf.add_response(
        "create_change_set", {"Id": change_set("alb")["ChangeSetId"], "StackId": stack_id("alb")}, create_params("alb", "UPDATE")
    )
    # Each sleep advances the clock by 100 s: the 10 minutes pass after the 7th poll.
    for _ in range(7):
        aws.cf.add_response(
            "describe_change_set",
            change_set("alb", status="CREATE_IN_PROGRESS"),
            {"StackName": stack("alb"), "ChangeSetName": cs_name("alb")},
        )
    deletions = requests_of(aws, "DeleteChangeSet")
    code = aws.run("deploy", "--stack", "alb", "--yes", clock=lambda: 100 * len(aws.sleeps))
    assert code == 1, aws.err
    assert deletions == []  # kept, for make execute
    assert f"stopped waiting for change set {cs_name('alb')} of {stack('alb')} after 10 minutes; it is still CREATE_IN_PROGRESS" in aws.err
    assert f"make execute STACK=alb ENV={ENV} CHANGESET={cs_name('alb')}" in aws.err
    assert "nothing was executed" in aws.err


@pytest.mark.parametrize("waiting", [False, True])
def test_a_first_create_still_computing_names_its_empty_stack_too_unless_it_was_there_before(aws, waiting):
    # Before: an empty stack make changeset made (REVIEW_IN_PROGRESS), maybe with a change set for review: not to delete.
    if waiting:
        aws.cf.add_response("describe_stacks", described("cert-dns", "REVIEW_IN_PROGRESS"), {"StackName": stack("cert-dns")})
    else:
        aws.not_deployed("cert-dns")
    aws.zone_checked("cert-dns")
    aws.cf.add_response(
        "create_change_set",
        {"Id": change_set("cert-dns")["ChangeSetId"], "StackId": stack_id("cert-dns")},
        create_params("cert-dns", "CREATE"),
    )
    for _ in range(7):
        aws.cf.add_response(
            "describe_change_set",
            change_set("cert-dns", status="CREATE_IN_PROGRESS"),
            {"StackName": stack("cert-dns"), "ChangeSetName": cs_name("cert-dns")},
        )
    deletions = requests_of(aws, "DeleteChangeSet"), requests_of(aws, "DeleteStack")
    assert aws.run("deploy", "--stack", "cert-dns", "--yes", clock=lambda: 100 * len(aws.sleeps)) == 1
    assert (f"empty (REVIEW_IN_PROGRESS): {CLI} cloudformation delete-stack --stack-name {stack('cert-dns')}" in aws.err) is not waiting
    assert deletions == ([], [])  # both kept, for make execute


def test_max_wait_out_of_range_is_bad_input(aws):
    assert aws.run("deploy", "--stack", "alb", "--max-wait", "0") == 2
    assert "MAX_WAIT=0: allowed: 1 to 720 minutes" in aws.err


@pytest.mark.parametrize("certificate", ["not deployed", "deployed", "on another zone", "not ours", "unreadable"])
def test_zone_names_the_zone_of_the_params_file_and_confirms_the_delegation(aws, certificate):
    aws.route53.add_response("get_hosted_zone", hosted_zone(), {"Id": ZONE})
    if certificate == "not deployed":
        aws.not_deployed("cert-dns")
    elif certificate == "unreadable":  # it said "deploy the certificate" as if it knew
        aws.cf.add_client_error("describe_stacks", "Throttling", "Rate exceeded", 400)
    else:
        parameters = configuration(ENV, "cert-dns")["Parameters"]
        found = described(
            "cert-dns",
            parameters=parameters | ({"ExistingHostedZoneId": "Z0OTHER"} if certificate == "on another zone" else {}),
            # a stack of our name without our tags: deploy refuses it, and zone's advice stands
            tags={"Project": "someone-else"} if certificate == "not ours" else None,
        )
        aws.cf.add_response("describe_stacks", found, {"StackName": stack("cert-dns")})
    resolver = answers(REGISTRAR_SERVERS, delegated_servers())
    assert aws.run("zone", resolver=resolver, clock=lambda: sum(aws.sleeps)) == 0, aws.err
    assert f"set exactly these name servers at the registrar of {DOMAIN} (hosted zone {ZONE}):" in aws.out
    assert all(f"  {server}\n" in aws.out for server in ZONE_SERVERS)
    assert "not delegated yet" in aws.out and aws.sleeps == [zone.CHECK_EVERY_SECONDS]
    assert f"{DOMAIN} is delegated" in aws.out
    done = f"{PARAMS_FILE} names this zone, and the cert-dns stack is deployed with it: nothing more to do here"
    advice = f"{PARAMS_FILE} names this zone; deploy the certificate: make deploy STACK=cert-dns ENV={ENV}"
    unknown = f"{PARAMS_FILE} names this zone; make diff STACK=cert-dns ENV={ENV} says whether the certificate needs a deploy"
    said = {"deployed": done, "unreadable": unknown}.get(certificate, advice)
    assert aws.out.splitlines()[-1] == said, aws.out
    assert ("note: the cert-dns stack could not be read (Throttling)" in aws.out) == (certificate == "unreadable"), aws.out


def test_zone_refuses_a_params_zone_of_another_domain(aws):
    aws.route53.add_response("get_hosted_zone", hosted_zone(domain="example.org"), {"Id": ZONE})
    assert aws.run("zone", resolver=answers(delegated_servers())) == 1
    assert f"{ZONE} is the zone of example.org, not of {DOMAIN}" in aws.err


def no_zone_yet(aws):
    aws.route53.add_response(
        "list_hosted_zones_by_name",
        {"HostedZones": [], "IsTruncated": False, "MaxItems": "100"},
        {
            "DNSName": DOMAIN,
            "MaxItems": "100",
        },
    )


@pytest.mark.parametrize("tty", [False, True])
def test_zone_creates_no_zone_without_a_confirmation(aws, monkeypatch, tmp_path, tty):
    monkeypatch.delenv("AWS_ENDPOINT_URL")  # on AWS: the question names the account alone, no emulator
    no_zone_yet(aws)
    if tty:  # the question names the account the zone would be made in (no stack read: the caller's) and the region
        aws.caller()
    assert aws.run("zone", *params_without_zone(tmp_path), resolver=answers(set()), tty=tty, answer="n") == 1
    if tty:  # answered no: not told how to do it without asking
        assert aws.questions == [f"account {ACCOUNT}, {REGION}: create a public hosted zone for {DOMAIN} (about $0.50 a month)? [y/N] "]
        assert aws.err == f"error: not confirmed: {DOMAIN} has no public hosted zone and none was created\n", aws.err
    else:  # not a params problem: the params file is not named
        assert aws.err == (
            f"error: no terminal to ask on and no YES=1 (--yes): {DOMAIN} has no public hosted zone and none was created; "
            "to create it without asking, rerun with YES=1 (--yes)\n"
        ), aws.err


@pytest.mark.parametrize(
    "cert_dns", ["not deployed", "deployed", "deployed with it", "with a zone it made", "ROLLBACK_COMPLETE", "unreadable"]
)
def test_zone_creates_the_zone_tags_it_and_tells_the_id_to_put_in_params(aws, tmp_path, cert_dns):
    aws.caller()  # the account a YES=1 run prints with its question, before it read any stack
    new_zone = next(zone for zone in ("Z9876543210ZYXWVUTSRQ", "Z9876543210ZYXWVUTSRP") if zone != ZONE)  # not params' own
    no_zone_yet(aws)
    no_zone_yet(aws)  # looked for again right before it is made
    created = hosted_zone(new_zone) | {"ChangeInfo": {"Id": "/change/C1", "Status": "PENDING", "SubmittedAt": NOW}, "Location": "x"}
    expected = {"Name": DOMAIN, "CallerReference": ANY, "HostedZoneConfig": ANY}
    aws.route53.add_response("create_hosted_zone", created, expected)
    sent = requests_of(aws, "CreateHostedZone", service="route53")
    tags = {"ResourceType": "hostedzone", "ResourceId": new_zone, "AddTags": [{"Key": "Project", "Value": templates.PROJECT}]}
    aws.route53.add_response("change_tags_for_resource", {}, tags)
    if cert_dns == "deployed":  # its certificate validated in another zone: the new zone replaces it
        aws.deployed("cert-dns")
    elif cert_dns == "deployed with it":  # params lost the id, the stack has it: nothing is replaced
        aws.deployed("cert-dns", parameters=configuration(ENV, "cert-dns")["Parameters"] | {"ExistingHostedZoneId": new_zone})
    elif cert_dns == "with a zone it made":  # ExistingHostedZoneId "": validated in the stack's own zone, which the new one replaces
        aws.deployed("cert-dns", parameters=configuration(ENV, "cert-dns")["Parameters"] | {"ExistingHostedZoneId": ""})
    elif cert_dns == "ROLLBACK_COMPLETE":  # a failed first create holds no certificate
        aws.deployed("cert-dns", status="ROLLBACK_COMPLETE")
    elif cert_dns == "unreadable":  # not known: the plain advice, which the deploy's refusal completes if need be
        aws.cf.add_client_error("describe_stacks", "Throttling", "Rate exceeded", 400)
    else:
        aws.not_deployed("cert-dns")
    assert aws.run("zone", "--yes", *params_without_zone(tmp_path), resolver=answers(delegated_servers())) == 0, aws.err
    assert f"{DOMAIN}: created the public hosted zone {new_zone}" in aws.out
    deploy_it = f"then: make templates && make deploy STACK=cert-dns ENV={ENV}"
    if cert_dns in ("deployed", "with a zone it made"):  # refused without it, which the advice left out
        deploy_it += " ALLOW_REPLACE=1 (the certificate is validated in the zone: a new zone replaces it, which the deploy shows first)"
    next_step = f"next: set `ExistingHostedZoneId: {new_zone}` under parameters in {tmp_path / 'params' / ENV}.yaml, {deploy_it}"
    assert next_step in aws.out.splitlines(), aws.out
    # the run's own reference: its time and a random part, so that another make zone in the same second has its own
    assert re.fullmatch(rf"{templates.PROJECT}-{ENV}-{NOW:%Y%m%d%H%M%S}-[0-9a-f]{{12}}", sent[0]["CallerReference"]), sent


@pytest.mark.parametrize("its_own", [True, False])
def test_a_zone_create_whose_retry_finds_it_made_by_its_own_first_attempt_uses_and_tags_it(aws, tmp_path, monkeypatch, its_own):
    # botocore retried a CreateHostedZone whose answer was lost: the retry, of the same CallerReference, is
    # refused (API_CreateHostedZone.html). The zone of that reference is this run's; another run's zone of the
    # domain, made meanwhile under its own reference, is not taken for it.
    monkeypatch.setattr(deploy.commands.uuid, "uuid4", lambda: uuid.UUID(int=7))
    reference = f"{templates.PROJECT}-{ENV}-{NOW:%Y%m%d%H%M%S}-{uuid.UUID(int=7).hex[:12]}"
    aws.caller()
    no_zone_yet(aws)
    no_zone_yet(aws)
    created = {"Name": DOMAIN, "CallerReference": reference, "HostedZoneConfig": ANY}
    aws.route53.add_client_error(
        "create_hosted_zone", "HostedZoneAlreadyExists", "A hosted zone has already been created", 409, expected_params=created
    )
    found = hosted_zone()["HostedZone"] | {"CallerReference": reference if its_own else "another-runs"}
    listed = {"HostedZones": [found], "IsTruncated": False, "MaxItems": "100"}
    aws.route53.add_response("list_hosted_zones_by_name", listed, {"DNSName": DOMAIN, "MaxItems": "100"})
    if not its_own:
        assert aws.run("zone", "--yes", *params_without_zone(tmp_path), resolver=answers(delegated_servers())) == 1
        assert "HostedZoneAlreadyExists" in aws.err and "created the public hosted zone" not in aws.out, aws.out + aws.err
        return
    aws.route53.add_response("get_hosted_zone", hosted_zone(), {"Id": ZONE})
    tags = {"ResourceType": "hostedzone", "ResourceId": ZONE, "AddTags": [{"Key": "Project", "Value": templates.PROJECT}]}
    aws.route53.add_response("change_tags_for_resource", {}, tags)
    aws.not_deployed("cert-dns")
    assert aws.run("zone", "--yes", *params_without_zone(tmp_path), resolver=answers(delegated_servers())) == 0, aws.err
    assert f"{DOMAIN}: the public hosted zone {ZONE} was made by this run's request, whose answer was lost" in aws.out, aws.out
    assert f"{DOMAIN}: created the public hosted zone {ZONE}" in aws.out, aws.out
    assert f"next: set `ExistingHostedZoneId: {ZONE}` under parameters in {tmp_path / 'params' / ENV}.yaml" in aws.out, aws.out


def test_a_zone_create_refused_otherwise_is_said_and_not_looked_for_as_a_retry(aws, tmp_path):
    aws.caller()
    no_zone_yet(aws)
    no_zone_yet(aws)
    expected = {"Name": DOMAIN, "CallerReference": ANY, "HostedZoneConfig": ANY}
    aws.route53.add_client_error("create_hosted_zone", "InvalidDomainName", "not a valid domain", 400, expected_params=expected)
    # no ListHostedZonesByName queued after it: the fixture fails one made
    assert aws.run("zone", "--yes", *params_without_zone(tmp_path), resolver=answers(delegated_servers())) == 1
    assert "InvalidDomainName" in aws.err and "created the public hosted zone" not in aws.out, aws.out + aws.err


def test_zone_made_by_another_run_while_the_question_was_open_is_used_not_made_twice(aws, tmp_path):
    # Two make zone of one domain (two environments, or two terminals) both asked; one said yes first.
    no_zone_yet(aws)
    listed = {"HostedZones": [hosted_zone()["HostedZone"]], "IsTruncated": False, "MaxItems": "100"}
    aws.route53.add_response("list_hosted_zones_by_name", listed, {"DNSName": DOMAIN, "MaxItems": "100"})
    aws.route53.add_response("get_hosted_zone", hosted_zone(), {"Id": ZONE})
    aws.caller()
    # no create_hosted_zone queued: one made fails the test
    aws.not_deployed("cert-dns")
    assert aws.run("zone", *params_without_zone(tmp_path), resolver=answers(delegated_servers()), tty=True, answer="y") == 0, aws.err
    assert f"{DOMAIN}: a public hosted zone, {ZONE}, was made while you answered: using it, not making a second" in aws.out, aws.out
    assert f"next: set `ExistingHostedZoneId: {ZONE}` under parameters in {tmp_path / 'params' / ENV}.yaml" in aws.out, aws.out


def test_zone_finds_the_domains_public_zone_and_asks_nothing_when_params_name_none(aws, tmp_path):
    # params without ExistingHostedZoneId and a public zone of the domain in the account: it is used, with no
    # question about making one (no terminal, no YES=1: a question would stop the run)
    listed = {"HostedZones": [hosted_zone()["HostedZone"]], "IsTruncated": False, "MaxItems": "100"}
    aws.route53.add_response("list_hosted_zones_by_name", listed, {"DNSName": DOMAIN, "MaxItems": "100"})
    aws.route53.add_response("get_hosted_zone", hosted_zone(), {"Id": ZONE})
    aws.not_deployed("cert-dns")
    assert aws.run("zone", *params_without_zone(tmp_path), resolver=answers(delegated_servers())) == 0, aws.err
    assert f"{DOMAIN}: found its public hosted zone {ZONE}" in aws.out, aws.out
    assert aws.questions == [] and "create" not in aws.out, aws.out


def test_zone_creates_a_public_zone_never_a_private_one(aws, tmp_path):
    # ACM cannot validate in a private zone, and public DNS never delegates to one
    aws.caller()
    no_zone_yet(aws)
    no_zone_yet(aws)
    created = hosted_zone() | {"ChangeInfo": {"Id": "/change/C1", "Status": "PENDING", "SubmittedAt": NOW}, "Location": "x"}
    aws.route53.add_response("create_hosted_zone", created, {"Name": DOMAIN, "CallerReference": ANY, "HostedZoneConfig": ANY})
    sent = requests_of(aws, "CreateHostedZone", service="route53")
    tags = {"ResourceType": "hostedzone", "ResourceId": ZONE, "AddTags": [{"Key": "Project", "Value": templates.PROJECT}]}
    aws.route53.add_response("change_tags_for_resource", {}, tags)
    aws.not_deployed("cert-dns")
    assert aws.run("zone", "--yes", *params_without_zone(tmp_path), resolver=answers(delegated_servers())) == 0, aws.err
    assert sent[0]["HostedZoneConfig"]["PrivateZone"] is False, sent
    assert "VPC" not in sent[0], sent


def test_zone_stops_waiting_for_the_registrar_at_the_timeout_and_says_how_to_go_on(aws):
    aws.route53.add_response("get_hosted_zone", hosted_zone(), {"Id": ZONE})
    timeout = 2 * zone.CHECK_EVERY_SECONDS
    code = aws.run("zone", "--timeout", str(timeout), resolver=answers(REGISTRAR_SERVERS), clock=lambda: sum(aws.sleeps))
    assert code == 1
    assert aws.sleeps == [zone.CHECK_EVERY_SECONDS, zone.CHECK_EVERY_SECONDS]
    assert f"{DOMAIN} is not delegated to {ZONE} yet after {timeout} s" in aws.err
    assert f"run make zone ENV={ENV} again to keep waiting" in aws.err


def test_zone_that_stops_waiting_says_what_dns_answered_last(aws):
    # the error says the name servers to set; what the registrar still lists is the other half of the fix
    aws.route53.add_response("get_hosted_zone", hosted_zone(), {"Id": ZONE})
    code = aws.run("zone", "--timeout", str(zone.CHECK_EVERY_SECONDS), resolver=answers(REGISTRAR_SERVERS), clock=lambda: sum(aws.sleeps))
    assert code == 1
    assert aws.out.splitlines()[-1] == f"  DNS still answers for {DOMAIN}: {', '.join(sorted(REGISTRAR_SERVERS))}", aws.out


def test_zone_waits_for_the_registrar_up_to_the_timeout_exactly_from_whenever_it_starts(aws):
    # a timeout that is not a multiple of the interval: the last wait is what is left of it, not a whole interval more
    aws.route53.add_response("get_hosted_zone", hosted_zone(), {"Id": ZONE})
    timeout = zone.CHECK_EVERY_SECONDS + zone.CHECK_EVERY_SECONDS // 2
    code = aws.run("zone", "--timeout", str(timeout), resolver=answers(REGISTRAR_SERVERS), clock=lambda: 1000 + sum(aws.sleeps))
    assert code == 1
    assert aws.sleeps == [zone.CHECK_EVERY_SECONDS, timeout - zone.CHECK_EVERY_SECONDS]
    waits = [line for line in aws.out.splitlines() if line.startswith("  not delegated yet: ")]
    assert [line.rsplit("(", 1)[1] for line in waits] == [f"{timeout} s left)", f"{timeout - zone.CHECK_EVERY_SECONDS} s left)"], waits


HELD = {"holder": "ci@runner-7 (pid 4242)", "command": "deploy", "since": "2025-11-25T11:58:00Z"}


@pytest.mark.parametrize("error", [KeyError("getpwuid(): uid not found: 1234"), OSError("No username set in the environment")])
def test_a_user_without_a_name_takes_the_lock_as_its_uid(monkeypatch, aws, error):
    """A container run as a uid with no passwd entry and no USER or LOGNAME (docker run --user 1234):
    getpass raises KeyError (OSError from Python 3.13); the deploy takes the lock all the same."""

    def nameless():
        raise error

    monkeypatch.setattr(getpass, "getuser", nameless)
    assert lock.user() == f"uid {os.getuid()}"
    assert json.loads(our_lock())["holder"].startswith(f"uid {os.getuid()}@")
    lock_taken(aws, stack="cert-dns")  # the PutParameter with our_lock() as its value
    aws.deployed("cert-dns")
    aws.empty_change_set("cert-dns")
    lock_freed(aws, stack="cert-dns")
    assert aws.run("deploy", "--stack", "cert-dns", locking=True) == 0, aws.err


def status_reads(aws, *relaxed, lock=None):
    """What make status reads besides the stacks: the relaxed-policy marks (relaxed: their layers),
    then the lock (lock: its value; None: free)."""
    relaxed_mark_read(aws, *relaxed)
    if lock is None:
        aws.ssm.add_client_error("get_parameter", "ParameterNotFound", f"Parameter {LOCK} not found.", 400, expected_params={"Name": LOCK})
    else:
        aws.ssm.add_response("get_parameter", {"Parameter": {"Name": LOCK, "Type": "String", "Value": lock, "Version": 1}}, {"Name": LOCK})


def test_a_deploy_holds_the_environments_lock_and_frees_it(aws):
    lock_taken(aws, stack="cert-dns")
    aws.deployed("cert-dns")
    aws.empty_change_set("cert-dns")
    lock_freed(aws, stack="cert-dns")
    assert aws.run("deploy", "--stack", "cert-dns", locking=True) == 0, aws.err


def test_a_change_set_name_goes_to_the_layer_whose_stack_name_is_the_longest_that_begins_it(monkeypatch):
    # No stack name of today's layers begins another's; a layer named "release" would begin release-alarms's.
    from scripts.deploy.layer import layer_named_in

    monkeypatch.setattr(templates, "LAYERS", {"release": None, **templates.LAYERS})  # first: a first match would take it
    name = f"{templates.stack_name(ENV, 'release-alarms')}-20260101000000000-abc1234"
    assert layer_named_in(name, ENV) == "release-alarms"
    assert layer_named_in(name.replace("release-alarms", "release"), ENV) == "release"
    assert layer_named_in(f"{templates.stack_name('other', 'alb')}-20260101000000000-abc1234", ENV) is None


def test_the_revision_a_change_set_was_made_at_is_the_one_its_name_gives_and_unknown_for_one_named_by_hand():
    from scripts.deploy.layer import revision_named_in

    stack = templates.stack_name(ENV, "service")
    for revision in ("abc1234", "abcd", "abc1234-dirty", "nogit", "0123456789abcdef0123456789abcdef01234567-dirty"):
        assert revision_named_in(f"{stack}-20260101000000000-{revision}", stack) == revision
    assert revision_named_in(f"{stack}-20260101000000000-abc1234-settle", stack) == "abc1234"
    ours = f"{stack}-20260101000000000-abc1234"  # (mutation audit) one of ours within a name given by hand: not ours
    for by_hand in (
        f"{stack}-mine",
        f"{stack}-20260101000000000-HEAD",
        f"{stack}-2026-abc1234",
        "release-abc1234",
        f"x-{ours}",
        f"{ours}-mine",
    ):
        assert revision_named_in(by_hand, stack) == "unknown", by_hand


def test_the_revision_of_a_change_set_named_by_a_deployer_before_millisecond_names_is_the_one_its_name_gives():
    # Before 27e008b (2026-12-04) change sets were named <stack>-<UTC time to the second>-<revision>, 14 digits: one
    # such a deployer left (a rollback stopped at its question) and make execute ran after the upgrade was recorded
    # in the release history as "git unknown", as one named by hand.
    from scripts.deploy.layer import revision_named_in

    stack = templates.stack_name(ENV, "service")
    for revision in ("18d684f", "18d684f-dirty", "nogit"):
        assert revision_named_in(f"{stack}-20261204120000-{revision}", stack) == revision
    assert revision_named_in(f"{stack}-20261204120000-18d684f-settle", stack) == "18d684f"


def test_a_failed_runs_way_on_is_followed_by_make_unlock_when_its_lock_may_still_be_held(aws):
    # "interrupted; to go on: the same command again" came after the lock's warning, and the command it named was refused
    lock_taken(aws, stack="cert-dns")
    aws.deployed("cert-dns")
    aws.change_set("cert-dns", "UPDATE", CERT_CHANGES)
    requests_of(aws, "ExecuteChangeSet", raising=KeyboardInterrupt())
    lock_freed(aws, deletion_refused=("InternalServerError", "try later", 500), stack="cert-dns")
    assert aws.run("deploy", "--stack", "cert-dns", "--yes", locking=True) == 130, aws.err
    lines = aws.err.splitlines()
    assert lines[-2].startswith(f"interrupted while asking CloudFormation to execute {cs_name('cert-dns')}"), aws.err
    assert lines[-1] == f"  first: {LOCK} may still be held by this run (the warning above); make unlock ENV={ENV}", aws.err
    assert sum(line.startswith(f"warning: {LOCK} may still be held") for line in lines) == 1, aws.err


def test_a_lock_that_cannot_be_freed_is_named_with_make_unlock_not_with_the_command_again(aws):
    # The warning quoted the error's explanation, whose next step ("the same command continues") the lock then refused.
    lock_taken(aws, stack="cert-dns")
    aws.deployed("cert-dns")
    aws.empty_change_set("cert-dns")
    lock_freed(aws, deletion_refused=("InternalServerError", "try later", 500), stack="cert-dns")
    # exit 1: it exited 0, and in CI the next run, refused by the lock, was the first to fail
    assert aws.run("deploy", "--stack", "cert-dns", locking=True) == 1, aws.err
    assert aws.err.splitlines()[-2:] == [
        f"warning: {LOCK} may still be held (freeing it failed: An error occurred (InternalServerError) when calling the "
        f"DeleteParameter operation: try later); free it with: make unlock ENV={ENV}",
        f"error: make deploy finished, but {LOCK} may still be held (above): runs of {ENV} that take it are refused until it is "
        f"freed: make unlock ENV={ENV}",
    ], aws.err


@pytest.mark.parametrize("answer", ["no Value", "GetParameter refused"])
def test_a_lock_that_cannot_be_read_to_be_freed_is_said_and_fails_the_run(aws, answer):
    lock_taken(aws, command="deploy", stack="cert-dns")
    aws.deployed("cert-dns")
    aws.empty_change_set("cert-dns")
    if answer == "no Value":  # an answer without what release() reads: said like a refusal, not a traceback
        aws.ssm.add_response("get_parameter", {"Parameter": {"Name": LOCK, "Type": "String", "Version": 1}}, {"Name": LOCK})
    else:
        aws.ssm.add_client_error("get_parameter", "AccessDeniedException", "no", 400, expected_params={"Name": LOCK})
    assert aws.run("deploy", "--stack", "cert-dns", locking=True) == 1, aws.err
    assert f"warning: {LOCK} may still be held (freeing it failed: " in aws.err, aws.err
    if answer == "no Value":  # said as an answer it could not read, not a bare 'Value' (helper G2)
        assert "(freeing it failed: an answer it could not read: KeyError 'Value'); " in aws.err, aws.err
    assert aws.err.endswith(f"freed: make unlock ENV={ENV}\n"), aws.err


def test_a_lock_whose_sandbox_is_gone_at_its_release_is_not_said_held():
    # The emulator kept the lock in memory: gone with its server, it holds nothing, and a command that succeeded
    # must not exit 1 for a lock said "may still be held".
    from botocore.exceptions import EndpointConnectionError

    class Gone:
        def get_parameter(self, **_):
            raise EndpointConnectionError(endpoint_url="http://127.0.0.1:9")

    lock = deploy.lock.EnvironmentLock(Gone(), "sandbox", lambda: NOW, io.StringIO())
    lock.value = "this run's"
    lock.release()
    assert lock.value is None and lock.err.getvalue() == ""


def test_a_failed_deploy_frees_the_lock_too(aws):
    lock_taken(aws, stack="cert-dns")
    aws.cf.add_client_error("describe_stacks", "ValidationError", "boom", 400)
    lock_freed(aws, stack="cert-dns")
    assert aws.run("deploy", "--stack", "cert-dns", locking=True) == 1


def test_a_take_refused_at_once_leaves_no_lock_to_free_nor_a_warning_about_it(aws):
    # AccessDenied at the first attempt wrote nothing: the run ends with the one error, and no
    # "may still be held" (nor a GetParameter to check: no response is queued for one).
    aws.ssm.add_client_error("put_parameter", "AccessDeniedException", "not authorized to perform ssm:PutParameter", 400)
    assert aws.run("deploy", "--stack", "cert-dns", locking=True) == 1
    assert "not authorized to perform ssm:PutParameter" in aws.err and "may still be held" not in aws.err, aws.err


def test_a_take_without_credentials_sent_nothing_and_leaves_nothing_to_free():
    from botocore.exceptions import EndpointConnectionError, UnauthorizedSSOTokenError

    class Ssm:  # an expired SSO session: botocore raises before a request leaves
        def put_parameter(self, **_):
            raise UnauthorizedSSOTokenError(error_msg="The SSO session has expired")

        def get_parameter(self, **_):
            raise AssertionError("nothing was sent, so there is nothing to read back")

    err = io.StringIO()
    lock = deploy.lock.EnvironmentLock(Ssm(), ENV, lambda: NOW, err)
    with pytest.raises(UnauthorizedSSOTokenError):
        lock.take("deploy")
    lock.release()
    assert err.getvalue() == ""
    assert deploy.aws.may_have_landed(EndpointConnectionError(endpoint_url="https://ssm")), "no answer: it may have landed"


@pytest.mark.parametrize(
    "unsent",
    [
        botocore.exceptions.NoCredentialsError(),
        botocore.exceptions.PartialCredentialsError(provider="env", cred_var="AWS_SECRET_ACCESS_KEY"),
        botocore.exceptions.CredentialRetrievalError(provider="custom-process", error_msg="the process failed"),
        botocore.exceptions.TokenRetrievalError(provider="sso", error_msg="the SSO session has expired"),
        botocore.exceptions.ParamValidationError(report="Invalid length for parameter Name"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_a_take_refused_before_it_was_sent_leaves_nothing_to_free(unsent):
    # botocore raises these before a request leaves: taken for one that may have landed, the release read the
    # lock back after a take that wrote nothing.
    class Ssm:
        def put_parameter(self, **_):
            raise unsent

        def get_parameter(self, **_):
            raise AssertionError("nothing was sent, so there is nothing to read back")

    err = io.StringIO()
    lock = deploy.lock.EnvironmentLock(Ssm(), ENV, lambda: NOW, err)
    with pytest.raises(type(unsent)):
        lock.take("deploy")
    lock.release()
    assert err.getvalue() == ""
    assert not deploy.aws.may_have_landed(unsent)


def test_ctrl_c_while_the_lock_is_taken_says_the_request_may_land_late_and_how_to_free_it():
    class Ssm:  # Ctrl-C while PutParameter waits for its answer; the read-back then finds no lock (yet)
        def put_parameter(self, **_):
            raise KeyboardInterrupt

        def get_parameter(self, Name):
            raise ClientError({"Error": {"Code": "ParameterNotFound", "Message": Name}}, "GetParameter")

    err = io.StringIO()
    lock = deploy.lock.EnvironmentLock(Ssm(), ENV, lambda: NOW, err)
    with pytest.raises(KeyboardInterrupt):
        lock.take("deploy")
    lock.release()
    assert err.getvalue() == (
        f"stopping: freeing the lock this run was taking (/{templates.PROJECT}/{ENV}/deploy-lock); Ctrl-C again (or a SIGTERM) stops at once\n"
        f"note: the lock was being taken when the run stopped; if the next run finds {ENV} held by this one (pid {os.getpid()}), "
        f"its request landed late: free it with make unlock ENV={ENV}\n"
    )


def test_after_a_take_that_was_stopped_a_second_stop_ends_the_release_saying_the_lock_may_be_held():
    """An attacker's pass: SIGTERM while PutParameter waited on a paused endpoint, and the release then
    spent two minutes in unanswered GetParameter retries with stop signals held."""

    class Ssm:
        def put_parameter(self, **_):
            raise KeyboardInterrupt  # the first stop, while the take waits for its answer

        def get_parameter(self, Name):
            os.kill(os.getpid(), signal.SIGINT)  # the second, while the release waits for its own
            raise AssertionError("not reached: the second stop ends the release")

    err = io.StringIO()
    lock = deploy.lock.EnvironmentLock(Ssm(), ENV, lambda: NOW, err)
    with pytest.raises(KeyboardInterrupt):
        lock.take("deploy")
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            lock.release()
    finally:
        signal.signal(signal.SIGINT, previous)
    assert err.getvalue() == (
        f"stopping: freeing the lock this run was taking (/{templates.PROJECT}/{ENV}/deploy-lock); Ctrl-C again (or a SIGTERM) stops at once\n"
        f"warning: /{templates.PROJECT}/{ENV}/deploy-lock may be held by this run (stopped while it was taken, and again while it "
        f"was freed); once AWS answers, see and free it with: make unlock ENV={ENV}\n"
    )


def release_stopped(ssm, signum=signal.SIGINT):
    """EnvironmentLock.release() of this run's lock (value "this run's") over ssm, with signum handled as the tools
    handle it, expecting the KeyboardInterrupt a stop signal ends it with: (the lock, what the release printed)."""
    err = io.StringIO()
    lock = deploy.lock.EnvironmentLock(ssm, ENV, lambda: NOW, err)
    lock.value = "this run's"
    previous = signal.signal(signum, terminated if signum != signal.SIGINT else signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            lock.release()
    finally:
        signal.signal(signum, previous)
    return lock, err.getvalue()


@pytest.mark.parametrize("signum", sorted(STOPPING_SIGNALS))
def test_a_stop_signal_while_the_lock_is_freed_waits_until_it_is_freed(signum):
    """Ctrl-C (or SIGTERM, SIGHUP) arriving while the run frees its lock would leave it taken."""
    calls = []

    class Ssm:
        def get_parameter(self, Name):
            calls.append("get")
            os.kill(os.getpid(), signum)  # arrives while the lock is read back
            return {"Parameter": {"Value": "this run's"}}

        def delete_parameter(self, Name):
            calls.append("delete")

    lock, said = release_stopped(Ssm(), signum)  # delivered once the lock is freed
    assert calls == ["get", "delete"] and lock.value is None
    assert said == f"stopping once the lock ({LOCK}) is freed; Ctrl-C again (or a SIGTERM) stops at once, and may leave it held\n"


def test_a_second_stop_signal_while_the_lock_is_freed_stops_at_once_saying_it_may_be_held():
    # AWS not answering makes the release minutes of retries, which the first Ctrl-C waited out with no way to stop.
    calls = []

    class Ssm:
        def get_parameter(self, Name):
            calls.append("get")
            os.kill(os.getpid(), signal.SIGINT)  # held
            os.kill(os.getpid(), signal.SIGINT)  # acts at once
            return {"Parameter": {"Value": "this run's"}}

        def delete_parameter(self, Name):
            calls.append("delete")

    lock, said = release_stopped(Ssm())
    assert calls == ["get"] and lock.value == "this run's"
    assert said.splitlines() == [
        f"stopping once the lock ({LOCK}) is freed; Ctrl-C again (or a SIGTERM) stops at once, and may leave it held",
        f"warning: {LOCK} may be held by this run (stopped twice while it was freed); once AWS answers, see and free it "
        f"with: make unlock ENV={ENV}",
    ]


@pytest.mark.parametrize("failure", ["no answer", "an error answer"])
def test_one_stop_while_a_release_that_then_fails_is_not_said_to_be_two(failure):
    # A single Ctrl-C while the lock's release failed (AWS paused) warned that the run was "stopped twice".
    from botocore.exceptions import ReadTimeoutError

    class Ssm:
        def get_parameter(self, Name):
            os.kill(os.getpid(), signal.SIGINT)  # one, held
            if failure == "no answer":
                raise ReadTimeoutError(endpoint_url="http://127.0.0.1:9")
            raise ClientError({"Error": {"Code": "InternalServerError", "Message": "try later"}}, "GetParameter")

    _, said = release_stopped(Ssm())  # once the release ended
    lines = said.splitlines()
    assert lines[0] == f"stopping once the lock ({LOCK}) is freed; Ctrl-C again (or a SIGTERM) stops at once, and may leave it held", lines
    assert lines[1].startswith(f"warning: {LOCK} may still be held (freeing it failed: ") and len(lines) == 2, lines


def test_a_stop_signal_while_the_runs_connections_are_closed_is_one_line_not_a_traceback(aws, monkeypatch):
    # A third Ctrl-C in urllib3's pool clean-up, a weakref finalizer, printed "Exception ignored in: <finalize object
    # ...>" and a traceback: Python cannot raise from a finalizer, and reports what it could not raise.
    aws.deployed("cert-dns")
    aws.empty_change_set("cert-dns")
    unraisable = []

    stop_while_closing(monkeypatch)
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        assert aws.run("deploy", "--stack", "cert-dns") == 130
    finally:
        signal.signal(signal.SIGINT, previous)
    # the deploy had finished (a bare "interrupted" was taken for a run to make again: helper P4)
    assert aws.err == "interrupted once make deploy had finished (above)\n" and unraisable == [], (aws.err, unraisable)


@pytest.mark.parametrize("run_was", ["finished", "stopped"])
def test_a_run_stopped_twice_while_its_lock_is_freed_still_says_what_stopped_it(aws, run_was):
    # Ctrl-C as ExecuteChangeSet was answered, then twice more during the lock's release (AWS paused): the run said a
    # bare "interrupted; to go on: the same command again", which found no changes and left the release unrecorded.
    # A run that had finished says it had (helper P2: "interrupted" alone was taken for a run to make again).
    lock_taken(aws, stack="cert-dns")
    aws.deployed("cert-dns")
    if run_was == "finished":
        aws.empty_change_set("cert-dns")
    else:
        aws.change_set("cert-dns", "UPDATE", CERT_CHANGES)
        requests_of(aws, "ExecuteChangeSet", raising=KeyboardInterrupt())

    def stopped_twice(**_):
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGINT)

    aws.clients["ssm"].meta.events.register("provide-client-params.ssm.GetParameter", stopped_twice)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        assert aws.run("deploy", "--stack", "cert-dns", "--yes", locking=True) == 130
    finally:
        signal.signal(signal.SIGINT, previous)
    assert f"warning: {LOCK} may be held by this run (stopped twice while it was freed)" in aws.err, aws.err
    said = f"interrupted while asking CloudFormation to execute {cs_name('cert-dns')}; it may have started"
    lines = aws.err.splitlines()
    if run_was == "stopped":  # the way on, then the lock it needs freed first (the warning above)
        assert lines[-2].startswith(said), aws.err
        assert lines[-1] == f"  first: {LOCK} may still be held by this run (the warning above); make unlock ENV={ENV}", aws.err
    else:  # nothing to go on with: the warning above says it all
        assert lines[-2:] == [
            "interrupted once make deploy had finished (above)",
            f"  first: {LOCK} may still be held by this run (the warning above); make unlock ENV={ENV}",
        ], aws.err


def test_stop_signals_held_leave_a_handler_set_outside_python_and_an_ignored_one_alone(monkeypatch):
    """getsignal says None for a handler C code set: signal.signal could not put it back."""
    import templates.errors

    real = signal.getsignal
    monkeypatch.setattr(templates.errors.signal, "getsignal", lambda number: None if number == signal.SIGHUP else real(number))
    before = {number: real(number) for number in STOPPING_SIGNALS}
    with templates.errors.stops_held():
        assert real(signal.SIGHUP) is before[signal.SIGHUP]  # not replaced
        assert real(signal.SIGTERM) is not before[signal.SIGTERM]  # held
    assert {number: real(number) for number in STOPPING_SIGNALS} == before


def test_an_error_is_known_unsent_only_when_no_attempt_of_its_call_connected():
    from botocore.exceptions import EndpointConnectionError, ReadTimeoutError

    def last_of(*attempts):
        calls = deploy.aws.AwsCalls(io.StringIO())
        calls.count({})  # a new call
        for error in attempts:
            calls.remember_problem(caught_exception=error)
        return attempts[-1]

    refused = [EndpointConnectionError(endpoint_url="https://ssm") for _ in range(3)]
    assert not deploy.aws.may_have_landed(last_of(*refused))
    # An earlier attempt that timed out reading its answer may have landed, whatever the last one got.
    timed_out = ReadTimeoutError(endpoint_url="https://ssm")
    assert deploy.aws.may_have_landed(last_of(timed_out, EndpointConnectionError(endpoint_url="https://ssm")))
    again = EndpointConnectionError(endpoint_url="https://ssm")  # one object raised twice keeps no old mark
    assert deploy.aws.may_have_landed(last_of(again, timed_out, again))


def test_a_call_whose_every_attempt_found_no_connection_sent_nothing_whatever_the_call_before_got():
    from botocore.exceptions import ConnectTimeoutError, ReadTimeoutError

    calls = deploy.aws.AwsCalls(io.StringIO())
    calls.count({})
    calls.remember_problem(caught_exception=ReadTimeoutError(endpoint_url="https://ssm"))  # that call may have landed
    calls.count({})  # the next call: what the one before got is none of its own
    # No connection within the connect timeout, then none at all: no attempt left this machine.
    unsent = [ConnectTimeoutError(endpoint_url="https://ssm"), EndpointConnectionError(endpoint_url="https://ssm")]
    for error in unsent:
        calls.remember_problem(caught_exception=error)
    assert not deploy.aws.may_have_landed(unsent[-1])


def test_an_unreachable_sandbox_says_one_started_again_is_empty():
    from botocore.exceptions import EndpointConnectionError

    refused = EndpointConnectionError(endpoint_url="http://127.0.0.1:9")
    sandbox = deploy.aws.explain(refused, "sandbox")
    assert sandbox.startswith("error: cannot reach http://127.0.0.1:9") and "make sandbox-status" in sandbox
    assert "one started again (make sandbox) is empty" in sandbox
    assert deploy.aws.explain(refused, ENV).endswith("check the network, or AWS_ENDPOINT_URL")


def test_a_sandbox_that_took_the_connection_but_did_not_answer_is_said_paused_or_busy_not_gone():
    # A timeout: the server runs (its stacks with it); the advice to start one again, empty, and deploy every layer
    # again was wrong there (a purge's or destroy's run, continued by deploying what it removes).
    from botocore.exceptions import ReadTimeoutError

    slow = ReadTimeoutError(endpoint_url="http://127.0.0.1:9")
    assert deploy.aws.explain(slow, "sandbox") == (
        f"error: http://127.0.0.1:9 did not answer in time, {deploy.MAX_ATTEMPTS} tries: is the sandbox paused or busy? "
        "make sandbox-status says whether it answers; once it does, the same command continues"
    )
    assert deploy.aws.explain(slow, ENV).endswith("check the network, or AWS_ENDPOINT_URL")


def test_no_connection_within_the_connect_timeout_is_said_as_no_answer_in_time():
    from botocore.exceptions import ConnectTimeoutError

    slow = ConnectTimeoutError(endpoint_url="http://127.0.0.1:9")
    assert deploy.aws.explain(slow, ENV) == (
        f"error: http://127.0.0.1:9 did not answer in time, {deploy.MAX_ATTEMPTS} tries: check the network, or AWS_ENDPOINT_URL"
    )
    assert deploy.aws.explain(slow, "sandbox").endswith(
        "is the sandbox paused or busy? make sandbox-status says whether it answers; once it does, the same command continues"
    )


def test_a_create_change_set_that_never_connected_made_nothing_to_clean_up(aws, monkeypatch):
    from botocore.exceptions import EndpointConnectionError

    deployer = deploy.Deployer(aws.clients.__getitem__, ENV, out=io.StringIO(), err=io.StringIO())
    layer = deploy.load_layer(ENV, "cert-dns", OUTPUT)
    undone = []
    monkeypatch.setattr(deployer, "undo", lambda layer, made: undone.append([what for what, _, _ in made]))
    refused = EndpointConnectionError(endpoint_url="https://cloudformation")
    refused.never_sent = True  # as AwsCalls marks it when no attempt connected
    for stop in (refused, KeyboardInterrupt()):  # Ctrl-C during the request: it may have landed
        with pytest.raises(type(stop)), deployer.discarded_if_stopped(layer, {"ChangeSetName": "cs"}, exists=False):
            raise stop
    assert undone == [[], ["change set cs deleted", f"stack {stack('cert-dns')}, empty (REVIEW_IN_PROGRESS) deleted"]]


def test_a_lock_that_is_not_this_runs_any_more_is_left_alone(aws):
    lock_taken(aws, stack="cert-dns")
    aws.deployed("cert-dns")
    aws.empty_change_set("cert-dns")
    lock_freed(aws, value=json.dumps(HELD))  # `make unlock` freed ours meanwhile and another run took it
    assert aws.run("deploy", "--stack", "cert-dns", locking=True) == 0, aws.err


def test_a_retried_take_that_had_landed_is_this_runs_lock_not_another_runs(aws):
    # The first PutParameter took the lock but its answer was lost; botocore's retry then finds it.
    aws.ssm.add_client_error(
        "put_parameter", "ParameterAlreadyExists", "The parameter already exists.", 400, response_meta={"RetryAttempts": 1}
    )
    aws.ssm.add_response(
        "get_parameter", {"Parameter": {"Name": LOCK, "Type": "String", "Value": our_lock(stack="cert-dns"), "Version": 1}}, {"Name": LOCK}
    )
    relaxed_mark_read(aws)
    aws.deployed("cert-dns")
    aws.empty_change_set("cert-dns")
    lock_freed(aws, stack="cert-dns")  # and it is freed at the end, as this run's
    assert aws.run("deploy", "--stack", "cert-dns", locking=True) == 0, aws.err
    assert "another run" not in aws.err


@pytest.mark.parametrize(
    "refusal",
    [
        ("ParameterAlreadyExists", "The parameter already exists."),
        # two runs' PutParameter of the lock at the same moment: SSM may answer the later one so
        ("TooManyUpdates", "There are concurrent updates for a resource that supports one update at a time."),
    ],
)
def test_a_second_run_is_refused_naming_who_holds_the_lock_and_since_when(aws, refusal):
    aws.ssm.add_client_error("put_parameter", *refusal, 400)  # at the first attempt: not our own retried take
    held = {"Parameter": {"Name": LOCK, "Type": "String", "Value": json.dumps(HELD), "Version": 1}}
    aws.ssm.add_response("get_parameter", held, {"Name": LOCK})  # whose, then
    assert aws.run("deploy", "--stack", "cert-dns", locking=True) == 1
    assert f"error: {ENV} is being changed by another run: deploy by ci@runner-7 (pid 4242) since 2025-11-25T11:58:00Z" in aws.err
    assert aws.err.rstrip().endswith(f"; wait for it to finish; if that run died, free the lock: make unlock ENV={ENV}"), aws.err


@pytest.mark.parametrize("stack", [None, "alb"])
def test_the_lock_names_the_layer_its_run_acts_on_where_it_is_one(aws, stack):
    # a deploy waiting on another learns which layer that run changes: STACK=alb, or (none named) every layer
    aws.ssm.add_client_error("put_parameter", "ParameterAlreadyExists", "The parameter already exists.", 400)
    value = HELD | ({"stack": stack} if stack else {})
    aws.ssm.add_response("get_parameter", {"Parameter": {"Name": LOCK, "Type": "String", "Value": json.dumps(value), "Version": 1}})
    assert aws.run("deploy", "--stack", "cert-dns", locking=True) == 1
    command = f"deploy STACK={stack}" if stack else "deploy"
    assert f"is being changed by another run: {command} by ci@runner-7 (pid 4242) since" in aws.err, aws.err


def test_a_run_refused_by_the_lock_of_a_run_known_gone_is_told_to_free_it_not_to_wait(aws):
    # "(its process ... no longer runs on this machine: that run is gone); wait for it to finish" said both.
    ended = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout)
    gone = HELD | {"holder": f"{lock.user()}@{socket.gethostname()} (pid {ended})", "machine": lock.this_machine()}
    aws.ssm.add_client_error("put_parameter", "ParameterAlreadyExists", "The parameter already exists.", 400)
    aws.ssm.add_response("get_parameter", {"Parameter": {"Name": LOCK, "Type": "String", "Value": json.dumps(gone), "Version": 1}})
    assert aws.run("deploy", "--stack", "cert-dns", locking=True) == 1
    assert aws.err.rstrip().endswith(f"no longer runs on this machine: that run is gone); free the lock: make unlock ENV={ENV}"), aws.err
    assert "wait for it" not in aws.err


@pytest.mark.parametrize(
    "value, shown",
    [
        ("[" * 100_000, repr("[" * 100)),  # nested deeper than json parses (RecursionError): shown as it is
        # Anyone who may write the parameter writes what the refusal prints: one line, escaped.
        (json.dumps(HELD | {"holder": "bob\x1b]0;x\x07\r\nforged: all good"}), "deploy by bob\\x1b]0;x\\x07\\r\\nforged: all good since"),
        # JSON's \\u escapes give lone surrogates, which stdout wrote as raw bytes (a C1 control, a bidi override) or failed on
        (json.dumps(HELD | {"holder": "bob\udce2\udc80\udcae\udcc2\udc9b2J"}), "deploy by bob\\udce2\\udc80\\udcae\\udcc2\\udc9b2J since"),
        (
            "prod-deploy\u3164 by admin",
            "'prod-deploy\\u3164 by admin'",
        ),  # no JSON: shown as repr() would, a letter that shows as nothing escaped
    ],
    ids=["nested too deep", "control characters", "surrogates", "no JSON, an invisible letter"],
)
def test_a_lock_value_of_anyones_making_is_shown_on_one_line_escaped_not_a_traceback(aws, value, shown):
    aws.ssm.add_client_error("put_parameter", "ParameterAlreadyExists", "The parameter already exists.", 400)
    held = {"Parameter": {"Name": LOCK, "Type": "String", "Value": value, "Version": 1}}
    aws.ssm.add_response("get_parameter", held, {"Name": LOCK})
    assert aws.run("deploy", "--stack", "cert-dns", locking=True) == 1
    assert f"error: {ENV} is being changed by another run: {shown}" in aws.err, aws.err
    assert "Traceback" not in aws.err and "\x1b" not in aws.err and "\rforged" not in aws.err


def test_a_take_refused_at_its_first_attempt_never_calls_the_lock_this_runs_when_it_cannot_read_it(aws):
    # Refused at once, nothing of this run's was written: when reading whose lock it is fails too,
    # the run must not warn that the lock "may still be held" and point at make unlock (freeing
    # another run's lock); the AWS error is the message.
    aws.ssm.add_client_error("put_parameter", "ParameterAlreadyExists", "The parameter already exists.", 400)
    aws.ssm.add_client_error("get_parameter", "AccessDeniedException", "not allowed to read it", 400, expected_params={"Name": LOCK})
    assert aws.run("deploy", "--stack", "cert-dns", locking=True) == 1
    assert "AccessDeniedException" in aws.err
    assert "may still be held" not in aws.err and "make unlock" not in aws.err


def test_a_lock_freed_between_the_take_and_the_read_says_run_again_not_wait(aws):
    # The holder finished between our PutParameter (refused) and our read of whose it was.
    aws.ssm.add_client_error(
        "put_parameter", "ParameterAlreadyExists", "The parameter already exists.", 400, response_meta={"RetryAttempts": 1}
    )
    held = {"Parameter": {"Name": LOCK, "Type": "String", "Value": json.dumps(HELD), "Version": 1}}
    aws.ssm.add_response("get_parameter", held, {"Name": LOCK})  # is it our own retried take? another run's
    aws.ssm.add_client_error("get_parameter", "ParameterNotFound", f"Parameter {LOCK} not found.", 400, expected_params={"Name": LOCK})
    assert aws.run("deploy", "--stack", "cert-dns", locking=True) == 1
    assert aws.err.splitlines()[0] == (
        f"error: {ENV} was being changed by another run, which finished just now; nothing was done: run this again"
    )
    assert "make unlock" not in aws.err  # nothing to free


def test_a_lock_another_run_is_taking_at_this_moment_says_so_and_run_again(aws):
    # TooManyUpdates: the other run's PutParameter is under way and has not landed; no holder to name yet.
    aws.ssm.add_client_error(
        "put_parameter", "TooManyUpdates", "There are concurrent updates for a resource.", 400, response_meta={"RetryAttempts": 1}
    )
    for _ in range(2):  # is it our own retried take? whose, then: nobody's yet
        aws.ssm.add_client_error("get_parameter", "ParameterNotFound", f"Parameter {LOCK} not found.", 400, expected_params={"Name": LOCK})
    assert aws.run("deploy", "--stack", "cert-dns", locking=True) == 1
    first = aws.err.splitlines()[0]
    assert first.startswith(f"error: {ENV}'s lock is being written at this moment (by another run, or by this run's own retried request)")
    assert f"if it then names this run ({getpass.getuser()}" in first and f"make unlock ENV={ENV}" in first


def test_a_lock_another_run_is_taking_refusing_the_first_attempt_names_no_retry_of_this_run(aws):
    # TooManyUpdates at the first attempt: nothing of this run's can be under way, so the message does
    # not suggest the lock may turn out to be this run's and need make unlock.
    aws.ssm.add_client_error("put_parameter", "TooManyUpdates", "There are concurrent updates for a resource.", 400)
    aws.ssm.add_client_error("get_parameter", "ParameterNotFound", f"Parameter {LOCK} not found.", 400, expected_params={"Name": LOCK})
    assert aws.run("deploy", "--stack", "cert-dns", locking=True) == 1
    assert (
        aws.err.splitlines()[0] == f"error: {ENV}'s lock is being written at this moment by another run; nothing was done: run this again"
    )
    assert "make unlock" not in aws.err


def test_reading_commands_take_no_lock(aws):
    status_reads(aws)
    aws.deployed("cert-dns")
    aws.no_change_sets("cert-dns")
    assert aws.run("status", "--stack", "cert-dns", locking=True) == 0, aws.err


def test_status_names_the_lock_and_says_when_the_run_holding_it_died_on_this_machine(aws):
    """A deploy killed (SIGKILL, a closed terminal) leaves the lock, which refuses the next deploy:
    make status says so first, and whether that run is gone where it can tell: a lock taken in this
    kernel boot and process-id namespace (a host name alone is no proof: machines share names, and a
    container on the host's network has the host's name but process ids of its own)."""
    ended = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout)
    here = f"{lock.user()}@{socket.gethostname()}"
    machine = lock.this_machine()
    assert machine, "this test needs Linux's /proc"
    for held, note in (
        (
            {"holder": f"{here} (pid {ended})", "machine": machine},
            f" (its process {ended} no longer runs on this machine: that run is gone)",
        ),
        (  # no start time (an older tool's lock): told by its command line, which is pytest's, no deployer's
            {"holder": f"{here} (pid {os.getpid()})", "machine": machine},
            f" (its process {os.getpid()} no longer runs on this machine: that run is gone)",
        ),
        ({"holder": f"{here} (pid {os.getpid()})", "machine": machine, "started": lock.start_time(os.getpid())}, ""),  # the very one
        (
            {"holder": f"{here} (pid {os.getpid()})", "machine": machine, "started": "1"},  # its id, now a later process's
            f" (its process {os.getpid()} no longer runs on this machine: that run is gone)",
        ),
        ({"holder": f"{here} (pid {ended})", "machine": "another-boot/pid:[1]"}, ""),  # this host name, another machine
        ({"holder": f"{here} (pid {ended})"}, ""),  # a lock that names no machine
        ({"holder": HELD["holder"]}, ""),
    ):
        status_reads(aws, lock=json.dumps(HELD | held))
        aws.deployed("cert-dns")
        aws.no_change_sets("cert-dns")
        assert aws.run("status", "--stack", "cert-dns") == 0, aws.err
        assert aws.out.splitlines()[-1] == (
            f"locked: deploy by {held['holder']} since {HELD['since']}{note}; {', '.join(deploy.LOCKING_COMMANDS)} are refused until that run ends; if it died, "
            f"make unlock ENV={ENV} frees the lock"
        )


def test_a_lock_is_said_gone_only_when_this_machine_can_tell(monkeypatch):
    ended = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout)
    held = {"holder": f"someone@host (pid {ended})", "machine": lock.this_machine()}
    assert lock.gone(held, ENV).endswith("that run is gone)")
    # The same kernel boot, another process-id namespace (a container on the host's network).
    monkeypatch.setattr(lock.os, "readlink", lambda path: "pid:[1]")
    assert lock.this_machine() != held["machine"] and lock.gone(held, ENV) == ""
    monkeypatch.undo()
    # Where the machine cannot be read, nothing is claimed, whatever the lock says.
    monkeypatch.setattr(lock, "this_machine", lambda: None)
    assert lock.gone({"holder": held["holder"]}, ENV) == "" and lock.gone({"holder": held["holder"], "machine": None}, ENV) == ""
    monkeypatch.undo()

    def another_users(pid, signal):
        raise PermissionError  # it runs, as another user

    monkeypatch.setattr(lock.os, "kill", another_users)
    assert lock.gone(held, ENV) == ""
    monkeypatch.undo()
    # A lock an older tool took (no start time): its process id now names a process that is no deployer
    # of this environment (this test's), so the run is gone, as make unlock also judges it.
    reused = {"holder": f"someone@host (pid {os.getpid()})", "machine": lock.this_machine()}
    assert lock.gone(reused, ENV).endswith("that run is gone)") and lock.still_running(json.dumps(reused), ENV) is None


def test_a_git_status_that_does_not_answer_in_time_makes_the_revision_dirty(monkeypatch):
    real = subprocess.run

    def slow_status(argv, **kwargs):
        if "status" in argv:
            raise subprocess.TimeoutExpired(argv, kwargs.get("timeout"))
        return real(argv, **kwargs)

    monkeypatch.setattr(deploy.layer.subprocess, "run", slow_status)
    head = real(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    assert deploy.layer.git_revision(ROOT / "output") == f"{head}-dirty"


def test_a_question_on_the_sandbox_says_it_is_the_sandboxs_not_an_accounts(aws, monkeypatch):
    # "account 123456789012, us-east-1: destroy ...?" read as a question about a real account: the
    # sandbox's is the example account of the params files.
    monkeypatch.setenv("AWS_ENDPOINT_URL", NOWHERE)  # as make points ENV=sandbox at the running sandbox
    lock = LOCK.replace(f"/{ENV}/", f"/{SANDBOX_ENV}/")
    aws.ssm.add_response("get_parameter", {"Parameter": {"Name": lock, "Type": "String", "Value": json.dumps(HELD), "Version": 1}})
    aws.caller()
    assert aws.run("unlock", "--env", SANDBOX_ENV, tty=True, answer="n") == 1, aws.err
    where = f"the local sandbox at {aws.clients['cloudformation'].meta.endpoint_url} (account {ACCOUNT}, {REGION}): "
    assert len(aws.questions) == 1 and aws.questions[0].startswith(where + f"free the lock of {SANDBOX_ENV} held by "), aws.questions


def test_a_question_on_an_emulator_of_another_environment_says_it_is_the_emulators(aws, monkeypatch):
    # A new environment rehearsed on an emulator (README, Credentials) was asked about "account 123456789012", as if
    # the change went to a real account
    monkeypatch.setenv("AWS_ENDPOINT_URL", NOWHERE)
    aws.ssm.add_response("get_parameter", {"Parameter": {"Name": LOCK, "Type": "String", "Value": json.dumps(HELD), "Version": 1}})
    aws.caller()
    assert aws.run("unlock", tty=True, answer="n") == 1, aws.err
    where = f"the emulator at {aws.clients['cloudformation'].meta.endpoint_url} (account {ACCOUNT}, {REGION}): "
    assert len(aws.questions) == 1 and aws.questions[0].startswith(where + f"free the lock of {ENV} held by "), aws.questions


def test_unlock_frees_a_dead_runs_lock_after_saying_whose_it_was(aws, monkeypatch):
    monkeypatch.delenv("AWS_ENDPOINT_URL")  # on AWS: the question names the account alone, no emulator
    held = {"Parameter": {"Name": LOCK, "Type": "String", "Value": json.dumps(HELD), "Version": 1}}
    for _ in range(2):  # whose; after the answer, still the same?
        aws.ssm.add_response("get_parameter", held, {"Name": LOCK})
    aws.ssm.add_response("delete_parameter", {}, {"Name": LOCK})
    aws.caller()
    assert aws.run("unlock", tty=True, answer="y") == 0, aws.err
    holder = "deploy by ci@runner-7 (pid 4242) since 2025-11-25T11:58:00Z"
    assert aws.questions == [f"account {ACCOUNT}, {REGION}: free the lock of {ENV} held by {holder}? Only if that run is gone. [y/N] "]
    assert f"{ENV}: lock freed (was {holder})" in aws.out


def test_unlock_whose_deletion_finds_the_lock_gone_says_it_is_freed(aws):
    # ParameterNotFound on DeleteParameter: its first attempt deleted it and the answer was lost (botocore
    # retried), or the holder freed it meanwhile; it was an error, exit 1, naming make status.
    held = {"Parameter": {"Name": LOCK, "Type": "String", "Value": json.dumps(HELD), "Version": 1}}
    for _ in range(2):
        aws.ssm.add_response("get_parameter", held, {"Name": LOCK})
    aws.ssm.add_client_error("delete_parameter", "ParameterNotFound", f"Parameter {LOCK} not found.", 400, expected_params={"Name": LOCK})
    aws.caller()
    assert aws.run("unlock", "--yes") == 0, aws.err
    assert f"{ENV}: lock freed (was deploy by ci@runner-7 (pid 4242) since 2025-11-25T11:58:00Z)" in aws.out, aws.out


def test_with_yes_the_question_is_printed_with_its_answer_naming_the_account(aws, monkeypatch):
    monkeypatch.delenv("AWS_ENDPOINT_URL")  # on AWS: the question names the account alone, no emulator
    # A CI log of make deploy YES=1 said nowhere which account and region the run changed.
    held = {"Parameter": {"Name": LOCK, "Type": "String", "Value": json.dumps(HELD), "Version": 1}}
    for _ in range(2):
        aws.ssm.add_response("get_parameter", held, {"Name": LOCK})
    aws.ssm.add_response("delete_parameter", {}, {"Name": LOCK})
    aws.caller()
    assert aws.run("unlock", "--yes") == 0, aws.err
    holder = "deploy by ci@runner-7 (pid 4242) since 2025-11-25T11:58:00Z"
    assert f"account {ACCOUNT}, {REGION}: free the lock of {ENV} held by {holder}? Only if that run is gone. yes (YES=1)\n" in aws.out
    assert aws.questions == []


def test_the_account_an_endpoint_answers_is_printed_escaped_with_the_question(aws):
    # GetCallerIdentity's answer is the endpoint's to write: on one that is not AWS, anything.
    held = {"Parameter": {"Name": LOCK, "Type": "String", "Value": json.dumps(HELD), "Version": 1}}
    for _ in range(2):
        aws.ssm.add_response("get_parameter", held, {"Name": LOCK})
    aws.ssm.add_response("delete_parameter", {}, {"Name": LOCK})
    hostile = "111111111111 \u202e(dorp) \u2028fake"
    aws.sts.add_response("get_caller_identity", {"UserId": "x", "Account": hostile, "Arn": "arn:aws:iam::1:user/x"}, {})
    assert aws.run("unlock", "--yes") == 0, aws.err
    said = f"the emulator at {NOWHERE} (account 111111111111 \\u202e(dorp) \\u2028fake, {REGION}): free the lock"
    assert said in aws.out, aws.out


def test_ctrl_c_at_a_question_asked_before_anything_says_what_a_no_leaves(aws):
    # (helper T2) Ctrl-C at make unlock's, destroy's or purge's question printed "interrupted" alone, where a "no" or an
    # end of input says what stays ("nothing purged"); a deploy's per layer, after what it did, keeps its own (above).
    held = {"Parameter": {"Name": LOCK, "Type": "String", "Value": json.dumps(HELD), "Version": 1}}
    aws.ssm.add_response("get_parameter", held, {"Name": LOCK})
    aws.sts.add_client_error("get_caller_identity", "Throttling", "Rate exceeded", 400)  # the question's account: asked all the same
    assert aws.run("unlock", tty=True, answer=KeyboardInterrupt()) == 130
    holder = f"{HELD['command']} by {HELD['holder']} since {HELD['since']}"
    assert aws.err.endswith(f"interrupted; the lock of {ENV} ({holder}) is kept\n"), aws.err


def test_ctrl_c_at_destroys_question_says_nothing_was_destroyed(aws):
    aws.deployed("alarms")
    aws.cf.add_response("get_template", {"TemplateBody": template("alarms"), "StagesAvailable": ["Original", "Processed"]})
    assert aws.run("destroy", "--stack", "alarms", tty=True, answer=KeyboardInterrupt()) == 130
    assert aws.err.endswith("interrupted; nothing destroyed\n"), aws.err


def test_a_question_whose_account_cannot_be_read_is_asked_all_the_same_saying_so(aws, monkeypatch):
    monkeypatch.delenv("AWS_ENDPOINT_URL")  # on AWS: the question names the account alone, no emulator
    held = {"Parameter": {"Name": LOCK, "Type": "String", "Value": json.dumps(HELD), "Version": 1}}
    aws.ssm.add_response("get_parameter", held, {"Name": LOCK})
    aws.sts.add_client_error("get_caller_identity", "Throttling", "Rate exceeded", 400)
    assert aws.run("unlock", tty=True, answer="n") == 1
    assert aws.questions[0].startswith(f"account not known (Throttling), {REGION}: free the lock of {ENV} held by "), aws.questions
    assert "not confirmed" in aws.err, aws.err


class TerminalOutput(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    "out, terminal_opens, asked",
    [
        (TerminalOutput, False, True),
        (io.StringIO, True, True),  # `> deploy.log`: asked on the terminal itself (tests/test_faults.py asks so on one)
        (io.StringIO, False, False),  # output redirected, no controlling terminal: no one would see the question
    ],
)
def test_a_question_is_asked_when_stdin_and_an_output_are_terminals_and_the_caller_does_not_say(
    aws, monkeypatch, out, terminal_opens, asked
):
    # python -m scripts.deploy gives main() no `interactive`: whether to ask is whether stdin is a terminal, and
    # stdout or the terminal itself (/dev/tty) one to show the question on
    held = {"Parameter": {"Name": LOCK, "Type": "String", "Value": json.dumps(HELD), "Version": 1}}
    aws.ssm.add_response("get_parameter", held, {"Name": LOCK})
    if asked:
        aws.sts.add_client_error("get_caller_identity", "Throttling", "Rate exceeded", 400)
    monkeypatch.setattr(sys, "stdin", types.SimpleNamespace(isatty=lambda: True))
    monkeypatch.setattr(deploy, "terminal_opens", lambda: terminal_opens)
    questions, err = [], io.StringIO()
    argv = ["unlock", "--env", ENV, "--output-dir", str(OUTPUT), "--params-dir", str(PARAMS)]
    assert deploy.main(argv, clients=aws.clients, ask=aws.answering("n", questions), out=out(), err=err) == 1
    said = "not confirmed" if asked else "no terminal to ask on"
    assert len(questions) == asked and said in err.getvalue(), (questions, err.getvalue())


def test_a_closed_stdin_is_no_terminal_to_ask_on(aws, monkeypatch):
    # `<&-`: Python's sys.stdin is None, whose isatty() ended every command in an AttributeError
    held = {"Parameter": {"Name": LOCK, "Type": "String", "Value": json.dumps(HELD), "Version": 1}}
    aws.ssm.add_response("get_parameter", held, {"Name": LOCK})
    monkeypatch.setattr(sys, "stdin", None)
    questions, err = [], TerminalOutput()
    argv = ["unlock", "--env", ENV, "--output-dir", str(OUTPUT), "--params-dir", str(PARAMS)]
    assert deploy.main(argv, clients=aws.clients, ask=aws.answering("n", questions), out=TerminalOutput(), err=err) == 1
    assert not questions and "no terminal to ask on" in err.getvalue(), err.getvalue()


def test_unlock_of_an_environment_not_locked_says_so_and_asks_nothing(aws):
    aws.ssm.add_client_error("get_parameter", "ParameterNotFound", f"Parameter {LOCK} not found.", 400, expected_params={"Name": LOCK})
    assert aws.run("unlock", tty=True, answer="y") == 0, aws.err
    assert aws.out == f"{ENV} is not locked\n"


def test_unlock_frees_nothing_when_another_run_took_the_lock_while_the_operator_answered(aws):
    # The run shown ended at the prompt and another took the lock: deleting it would free a live run's.
    held = {"Parameter": {"Name": LOCK, "Type": "String", "Value": json.dumps(HELD), "Version": 1}}
    other = dict(HELD, holder="someone@laptop (pid 7)", since="2025-11-25T12:05:00Z")
    taken = {"Parameter": {"Name": LOCK, "Type": "String", "Value": json.dumps(other), "Version": 2}}
    for answer in (held, taken):
        aws.ssm.add_response("get_parameter", answer, {"Name": LOCK})
    deletions = []
    aws.clients["ssm"].meta.events.register("provide-client-params.ssm.DeleteParameter", lambda params, **_: deletions.append(params))
    aws.caller()
    assert aws.run("unlock", tty=True, answer="y") == 1
    assert deletions == []
    assert aws.err.startswith(f"error: the lock of {ENV} changed while you answered: it is now deploy by someone@laptop (pid 7)"), aws.err


@pytest.mark.parametrize(("tty", "why"), [(False, "no terminal to ask on and no YES=1 (--yes)"), (True, "not confirmed")])
def test_unlock_not_confirmed_keeps_the_lock_and_says_why(aws, tty, why):
    held = {"Parameter": {"Name": LOCK, "Type": "String", "Value": json.dumps(HELD), "Version": 1}}
    aws.ssm.add_response("get_parameter", held, {"Name": LOCK})
    if tty:
        aws.caller()
    assert aws.run("unlock", tty=tty, answer="n") == 1
    holder = "deploy by ci@runner-7 (pid 4242) since 2025-11-25T11:58:00Z"
    # After a "no" on the terminal, how to free it without asking is not said: the operator just declined.
    hint = "" if tty else "; to free it without asking, rerun with YES=1 (--yes)"
    assert aws.err == f"error: {why}: the lock of {ENV} ({holder}) is kept{hint}\n"


SLEEPING = [sys.executable, "-c", "import time; time.sleep(60)"]


@pytest.mark.parametrize(
    "argv, started, refused",  # the holder's command line, what the lock records beyond its pid, whether unlock refuses
    [
        ([*SLEEPING, "scripts.deploy", f"--env={ENV}"], "its start time", True),  # the process that took it
        (SLEEPING, "its start time", True),  # or named by a forged lock (with its start time): refused, no kill advised
        (SLEEPING, "another start time", False),  # its id, given again to a later process
        ([*SLEEPING, "scripts.deploy", f"--env={ENV}"], None, True),  # a lock that records no start time: a deployer of ENV
        ([*SLEEPING, "scripts.deploy", "--env", ENV], None, True),  # the same, --env and the environment two words
        ([*SLEEPING, "scripts.deploy", "--env=elsewhere"], None, False),  # another environment's deployer
        (["sleep", "60"], None, False),  # not a deployer
    ],
    ids=[
        "the holder",
        "a process named falsely",
        "a later process of its id",
        "a deployer of the environment",
        "a deployer of the environment, --env apart",
        "another environment's",
        "no deployer",
    ],
)
def test_unlock_refuses_while_the_run_holding_the_lock_still_runs_on_this_machine(aws, argv, started, refused):
    """Freed under a deploy that still runs, a second release ran beside it, and the older image landed last."""
    machine = lock.this_machine()
    assert machine, "this test needs Linux's /proc"
    here = f"{lock.user()}@{socket.gethostname()}"
    process = subprocess.Popen(argv)
    try:
        deadline = time.monotonic() + 30  # until exec'd: its command line is the one given
        while Path(f"/proc/{process.pid}/cmdline").read_bytes().split(b"\0")[-2:-1] != [argv[-1].encode()]:
            assert time.monotonic() < deadline, f"{argv} not started within 30 s"
            time.sleep(0.01)
        recorded = {"its start time": lock.start_time(process.pid), "another start time": "1", None: None}[started]
        value = json.dumps(
            HELD | {"holder": f"{here} (pid {process.pid})", "machine": machine} | ({"started": recorded} if recorded else {})
        )
        held = {"Parameter": {"Name": LOCK, "Type": "String", "Value": value, "Version": 1}}
        aws.ssm.add_response("get_parameter", held, {"Name": LOCK})
        if not refused:
            aws.caller()  # the account a YES=1 run prints with its question
            aws.ssm.add_response("get_parameter", held, {"Name": LOCK})
            aws.ssm.add_response("delete_parameter", {}, {"Name": LOCK})
        code = aws.run("unlock", "--yes")
    finally:
        process.kill()
        process.wait()
    holder = f"deploy by {here} (pid {process.pid}) since {HELD['since']}"
    if refused and "scripts.deploy" in argv:  # a deployer of the environment: Ctrl-C or a kill of it frees the lock
        assert code == 1 and aws.err == (
            f"error: the lock of {ENV} is held by {holder}, and its process {process.pid} still runs on this machine: nothing freed. "
            f"Let it end, or stop it with Ctrl-C in its terminal (or kill -TERM {process.pid}), which frees the lock. If that process "
            f"is not the run, delete the lock yourself: {CLI} ssm delete-parameter --name {LOCK}\n"
        ), aws.err
    elif refused:  # a process that runs no deployer: what it runs is shown, and no kill of it advised
        assert code == 1 and aws.err == (
            f"error: the lock of {ENV} is held by {holder}, and its process {process.pid} still runs on this machine: nothing freed. "
            f"It runs no deployer of {ENV} ({' '.join(argv)}): if it is not the run (the lock may name it falsely), delete the lock yourself: "
            f"{CLI} ssm delete-parameter --name {LOCK}\n"
        ), aws.err
    else:
        assert code == 0 and f"{ENV}: lock freed (was {holder}" in aws.out, aws.err


def test_unlock_refusing_for_a_stopped_holder_says_it_is_stopped_not_that_a_kill_term_frees_the_lock(aws):
    # A deploy stopped at its question (Ctrl-Z, kill -STOP): a SIGTERM stays pending until the process is continued, so
    # "kill -TERM <pid>, which frees the lock", followed as said, freed nothing (the process stayed in state T, the lock
    # held). /proc/<pid>/stat, which unlock reads already, says T.
    machine = lock.this_machine()
    assert machine, "this test needs Linux's /proc"
    argv = [*SLEEPING, "scripts.deploy", f"--env={ENV}"]
    process = subprocess.Popen(argv)
    try:
        deadline = time.monotonic() + 30
        while Path(f"/proc/{process.pid}/cmdline").read_bytes().split(b"\0")[-2:-1] != [argv[-1].encode()]:
            assert time.monotonic() < deadline, f"{argv} not started within 30 s"
            time.sleep(0.01)
        os.kill(process.pid, signal.SIGSTOP)
        while lock.stat_fields(process.pid)[0] != "T":
            assert time.monotonic() < deadline, "not stopped within 30 s"
            time.sleep(0.01)
        here = f"{lock.user()}@{socket.gethostname()}"
        value = json.dumps(HELD | {"holder": f"{here} (pid {process.pid})", "machine": machine, "started": lock.start_time(process.pid)})
        aws.ssm.add_response("get_parameter", {"Parameter": {"Name": LOCK, "Type": "String", "Value": value, "Version": 1}}, {"Name": LOCK})
        code = aws.run("unlock", "--yes")
    finally:
        process.kill()
        process.wait()
    pid = process.pid
    assert (
        code == 1 and "It is stopped (Ctrl-Z, or a background job waiting for its terminal): fg in its terminal lets it go on" in aws.err
    ), aws.err
    assert f"kill -TERM {pid} then kill -CONT {pid} ends it, which frees the lock" in aws.err, aws.err
    assert "Let it end" not in aws.err, aws.err


def test_a_lock_naming_this_very_process_is_never_its_own_holder():
    # a container's pid 1 in a reused namespace
    assert lock.this_machine(), "this test needs Linux's /proc"
    itself = {"holder": f"{lock.user()}@{socket.gethostname()} (pid {os.getpid()})", "machine": lock.this_machine()}
    assert lock.still_running(json.dumps(itself | {"started": lock.start_time(os.getpid())}), ENV) is None


def test_a_lock_whose_process_id_now_names_a_process_with_a_command_name_not_utf8_is_read_without_a_traceback(aws, tmp_path):
    """/proc/<pid>/stat holds the command name as the kernel keeps it: bytes, whatever a process named itself (an
    executable's file name, prctl PR_SET_NAME), which need not be UTF-8. A lock whose holder's process id was given
    since to such a process (or whose holder so named itself): holder_runs read /proc/<pid>/stat as UTF-8 text and
    raised UnicodeDecodeError (a ValueError, not the OSError stat_fields catches), so make unlock stopped with it."""
    machine = lock.this_machine()
    assert machine, "this test needs Linux's /proc"
    here = f"{lock.user()}@{socket.gethostname()}"
    with sleeping_as(tmp_path, b"\xff\xfesleep") as process:
        held = {"holder": f"{here} (pid {process.pid})", "machine": machine, "started": "1"}  # another process's start
        assert lock.holder_runs(held, ENV) is False
        value = json.dumps(HELD | held)
        found = {"Parameter": {"Name": LOCK, "Type": "String", "Value": value, "Version": 1}}
        aws.ssm.add_response("get_parameter", found, {"Name": LOCK})
        aws.caller()
        aws.ssm.add_response("get_parameter", found, {"Name": LOCK})
        aws.ssm.add_response("delete_parameter", {}, {"Name": LOCK})
        code = aws.run("unlock", "--yes")
        assert code == 0 and "UnicodeDecodeError" not in aws.err, aws.err


def test_a_lock_records_its_process_start_time_field_of_proc_stat():
    """start_time is /proc/<pid>/stat's starttime (field 22, clock ticks since boot), not a neighbouring field
    (itrealvalue, always 0, or vsize): a process just started began about now, by the machine's uptime."""
    assert lock.this_machine(), "this test needs Linux's /proc"
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        started = lock.start_time(process.pid)
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        assert started is not None and abs(int(started) / os.sysconf("SC_CLK_TCK") - uptime) < 30, (started, uptime)
    finally:
        process.kill()
        process.wait()


def test_a_lock_held_by_a_killed_deployer_not_yet_reaped_is_said_gone_and_unlock_frees_it(aws):
    """kill -9 of a deploy (make and the deployer with it) leaves the deployer a zombie until something
    reaps it: /proc/<pid> stays, with its start time, so os.kill(pid, 0) succeeds. On this machine the
    next `make unlock ENV=sandbox YES=1` said "its process ... still runs on this machine: nothing freed"
    (until init reaped it), and would for as long as a parent that never waits keeps it. A zombie runs
    nothing and will never free the lock: proc(5) state Z."""
    machine = lock.this_machine()
    assert machine, "this test needs Linux's /proc"
    here = f"{lock.user()}@{socket.gethostname()}"
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        started = lock.start_time(process.pid)
        os.kill(process.pid, signal.SIGKILL)
        deadline = time.monotonic() + 30  # until the kernel has made it a zombie (not reaped: no wait())
        while Path(f"/proc/{process.pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z":
            assert time.monotonic() < deadline, "the killed process did not become a zombie within 30 s"
            time.sleep(0.01)
        held = {"holder": f"{here} (pid {process.pid})", "machine": machine, "started": started}
        assert lock.holder_runs(held, ENV) is False
        assert lock.gone(held, ENV).endswith("that run is gone)")
        assert lock.still_running(json.dumps(HELD | held), ENV) is None
        value = json.dumps(HELD | held)
        found = {"Parameter": {"Name": LOCK, "Type": "String", "Value": value, "Version": 1}}
        aws.ssm.add_response("get_parameter", found, {"Name": LOCK})
        aws.caller()  # the account a YES=1 run prints with its question
        aws.ssm.add_response("get_parameter", found, {"Name": LOCK})
        aws.ssm.add_response("delete_parameter", {}, {"Name": LOCK})
        code = aws.run("unlock", "--yes")
        assert code == 0 and f"{ENV}: lock freed (was deploy by {here} (pid {process.pid})" in aws.out, aws.err
    finally:
        process.kill()
        process.wait()


def test_a_change_of_tags_alone_is_applied_not_reported_as_no_changes(aws):
    # A change set finds nothing to change when only tags differ; UpdateStack with the previous
    # template and values applies them (make diff showed the difference).
    layer = "cert-dns"
    old = described(layer, tags=configuration(ENV, layer)["Tags"] | {"Retired": "old-centre"})  # a key no params file gives
    aws.cf.add_response("describe_stacks", old, {"StackName": stack(layer)})
    aws.empty_change_set(layer)
    # an UpdateStack ends the change sets left for review: named before the question (the run's own empty one is gone)
    waiting = {"StackName": stack(layer), "ChangeSetName": "reviewed-earlier", "ExecutionStatus": "AVAILABLE", "CreationTime": NOW}
    aws.cf.add_response("list_change_sets", {"Summaries": [waiting]}, {"StackName": stack(layer)})
    token = f"tags-{stack(layer)}-20251125120000"
    aws.cf.add_response(
        "update_stack",
        {"StackId": stack_id(layer)},
        {
            "StackName": stack(layer),
            "UsePreviousTemplate": True,
            "Parameters": [{"ParameterKey": k, "UsePreviousValue": True} for k in configuration(ENV, layer)["Parameters"]],
            "Capabilities": CAPABILITIES,
            "Tags": [{"Key": k, "Value": v} for k, v in sorted(configuration(ENV, layer)["Tags"].items())],
            "ClientRequestToken": token,
        },
    )
    aws.poll(layer, stack_id(layer), described(layer), event(layer, stack(layer), "UPDATE_COMPLETE", 5, token=token))
    assert aws.run("deploy", "--stack", layer, "--yes") == 0, aws.err
    # not "no changes" above the tags it then updates: read as a contradiction
    assert f"{stack(layer)}: no changes to its template or values" in aws.out.splitlines(), aws.out
    assert f"{stack(layer)}: no changes" not in aws.out.splitlines(), aws.out
    assert "  tag Retired: old-centre -> (none)" in aws.out.splitlines(), aws.out
    assert (
        f"  note: updating its tags ends the other change sets of {stack(layer)}, left for review or by a stopped run: "
        "reviewed-earlier (made 2025-11-25 12:00 UTC)"
    ) in aws.out.splitlines(), aws.out
    assert f"{stack(layer)}: UPDATE_COMPLETE" in aws.out
    shown = deploy_text.outputs(described(layer)["Stacks"][0])
    assert shown and not set(shown) & set(aws.out.splitlines()), aws.out  # its outputs: what it had


# --- API calls, counted under the stack each request names (--api-calls) ---------------------------
def test_a_requests_stack_is_its_stack_name_or_the_name_inside_its_stack_id():
    assert deploy.aws.stack_of({"StackName": stack("alb"), "ChangeSetName": cs_name("alb")}) == stack("alb")
    assert deploy.aws.stack_of({"StackName": stack_id("alb")}) == stack("alb")
    assert deploy.aws.stack_of({"StackStatusFilter": ["DELETE_COMPLETE"]}) == "(no stack)"
    assert deploy.aws.stack_of({"Name": LOCK}) == "(no stack)"


def test_calls_are_counted_per_stack_named_and_the_others_under_one_key(aws):
    calls = deploy.aws.AwsCalls(io.StringIO())
    cf, ssm = calls.watch(aws.clients["cloudformation"]), calls.watch(aws.clients["ssm"])
    aws.deployed("alb")
    aws.cf.add_response("describe_stack_events", events(), {"StackName": stack_id("alb")})
    aws.cf.add_response("describe_stacks", described("cert-dns"), {"StackName": stack("cert-dns")})
    aws.cf.add_response("list_stacks", {"StackSummaries": []}, {})
    aws.ssm.add_response("get_parameter", {"Parameter": {"Name": LOCK, "Type": "String", "Value": "x", "Version": 1}}, {"Name": LOCK})
    cf.describe_stacks(StackName=stack("alb"))
    cf.describe_stack_events(StackName=stack_id("alb"))
    cf.describe_stacks(StackName=stack("cert-dns"))
    cf.list_stacks()
    ssm.get_parameter(Name=LOCK)
    assert calls.per_stack == {stack("alb"): 2, stack("cert-dns"): 1, NO_STACK: 2}
    assert calls.line() == f"API calls per stack: {stack('alb')} 2, {stack('cert-dns')} 1, (no stack) 2"


def test_a_change_sets_calls_by_its_arn_alone_count_under_the_stack_its_answers_named(aws):
    # ExecuteChangeSet and DeleteChangeSet by the ARN send no StackName: every execution was counted under "(no stack)".
    calls = deploy.aws.AwsCalls(io.StringIO())
    cf = calls.watch(aws.clients["cloudformation"])
    made, other = change_set("alb"), change_set("cert-dns")
    aws.cf.add_response("create_change_set", {"Id": made["ChangeSetId"], "StackId": stack_id("alb")})
    aws.cf.add_response("describe_change_set", other, {"StackName": stack("cert-dns"), "ChangeSetName": cs_name("cert-dns")})
    aws.cf.add_response("execute_change_set", {}, {"ChangeSetName": made["ChangeSetId"]})
    aws.cf.add_response("delete_change_set", {}, {"ChangeSetName": other["ChangeSetId"]})
    aws.cf.add_response("delete_change_set", {}, {"ChangeSetName": "arn:aws:cloudformation:us-east-1:1:changeSet/unknown/1"})
    cf.create_change_set(StackName=stack("alb"), ChangeSetName=cs_name("alb"), TemplateBody="{}")
    cf.describe_change_set(StackName=stack("cert-dns"), ChangeSetName=cs_name("cert-dns"))
    cf.execute_change_set(ChangeSetName=made["ChangeSetId"])
    cf.delete_change_set(ChangeSetName=other["ChangeSetId"])
    cf.delete_change_set(ChangeSetName="arn:aws:cloudformation:us-east-1:1:changeSet/unknown/1")  # no answer named its stack
    assert calls.per_stack == {stack("alb"): 2, stack("cert-dns"): 2, NO_STACK: 1}


def test_reading_an_upstream_stack_counts_under_that_stack(aws):
    aws.deployed("cert-dns")  # the alb layer's wired parameters come from its outputs
    aws.deployed("alb")
    aws.empty_change_set("alb")
    assert aws.run("deploy", "--stack", "alb") == 0, aws.err
    assert aws.api_calls.strip() == f"{stack('cert-dns')} 1, {stack('alb')} 4"


def test_the_lock_calls_count_under_the_key_of_calls_that_name_no_stack(aws):
    lock_taken(aws, stack="cert-dns")
    aws.deployed("cert-dns")
    aws.empty_change_set("cert-dns")
    lock_freed(aws, stack="cert-dns")
    assert aws.run("deploy", "--stack", "cert-dns", locking=True) == 0, aws.err
    # the lock taken, the relaxed-policy mark read, the lock read and deleted
    assert deploy.parse_api_calls(deploy.API_CALLS + aws.api_calls) == {"(no stack)": 4, stack("cert-dns"): 4}


def test_a_relaxed_stack_policy_that_cannot_be_put_back_is_not_said_to_be(aws):
    # The line came before SetStackPolicy: refused, the run said "put back", then the error.
    lock_taken(aws, "alb", stack="alb")
    aws.deployed("cert-dns")
    aws.deployed("alb")
    aws.cf.add_client_error("set_stack_policy", "AccessDenied", "not allowed", 403)
    lock_freed(aws, stack="alb")
    assert aws.run("deploy", "--stack", "alb", locking=True) == 1
    assert "put back" not in aws.out and "SetStackPolicy: AccessDenied" in aws.err, aws.out + aws.err


def test_a_stack_policy_a_stopped_run_left_relaxed_is_put_back_by_the_next_deploy_of_its_layer_first(aws):
    # Ctrl-C while --allow-replace updates of alb and service ran: CloudFormation finished them, both
    # policies stayed open. A deploy of alb puts alb's back before anything else, and only alb's.
    lock_taken(aws, "alb", "service", stack="alb")
    aws.deployed("cert-dns")
    aws.deployed("alb")
    aws.policy_restored("alb")
    aws.empty_change_set("alb")
    lock_freed(aws, stack="alb")
    assert aws.run("deploy", "--stack", "alb", locking=True) == 0, aws.err
    assert f"{stack('alb')}: its stack policy, relaxed by a run stopped during an --allow-replace update, put back" in aws.out
    # ... also when the deploy then goes no further (declined: no terminal, no YES=1).
    lock_taken(aws, "alb", stack="alb")
    aws.deployed("cert-dns")
    aws.deployed("alb")
    aws.policy_restored("alb")
    aws.change_set("alb", "UPDATE", [change("Modify", "ApiAliasRecord", "AWS::Route53::RecordSet", details=[detail("AliasTarget")])])
    aws.cf.add_response("delete_change_set", {}, {"StackName": stack("alb"), "ChangeSetName": cs_name("alb")})
    lock_freed(aws, stack="alb")
    assert aws.run("deploy", "--stack", "alb", locking=True) == 1
    assert "put back" in aws.out and "no terminal to ask on" in aws.err
    # Another layer's mark is left for that layer's deploy; a mark of no layer is named.
    lock_taken(aws, "alb", "no-such-layer", stack="cert-dns")
    aws.deployed("cert-dns")
    aws.empty_change_set("cert-dns")
    lock_freed(aws, stack="cert-dns")
    assert aws.run("deploy", "--stack", "cert-dns", locking=True) == 0, aws.err
    assert "put back" not in aws.out
    assert (
        f"note: {RELAXED}/no-such-layer marks no layer of this project; delete it: {CLI} ssm delete-parameter --name {RELAXED}/no-such-layer"
        in aws.out
    )


def test_a_mark_that_cannot_be_deleted_and_resources_that_cannot_be_read_after_an_update_are_notes_not_failures(aws):
    # The update stood: its protection, outputs and the rest still follow.
    bucket = [change("Modify", "AccessLogBucket", "AWS::S3::Bucket", "True", [detail("BucketName", recreation="Always")])]
    alb_updated_with_allow_replace(aws, bucket)
    aws.cf.add_client_error("describe_stack_resources", "Throttling", "Rate exceeded", 400, expected_params={"StackName": stack("alb")})
    policy = json.dumps(configuration(ENV, "alb")["StackPolicy"])
    aws.cf.add_response("set_stack_policy", {}, {"StackName": stack("alb"), "StackPolicyBody": policy})
    aws.ssm.add_client_error("delete_parameter", "AccessDeniedException", "not allowed", 400, expected_params={"Name": f"{RELAXED}/alb"})
    assert aws.run("deploy", "--stack", "alb", "--yes", "--allow-replace") == 0, aws.err
    assert "note: the stack's resources could not be read (ClientError): each below may not have been replaced" in aws.out
    assert "AccessLogBucket (AWS::S3::Bucket) was replaced; the old one stays in the account" in aws.out
    assert f"note: {RELAXED}/alb could not be deleted (AccessDeniedException): {CLI} ssm delete-parameter --name {RELAXED}/alb" in aws.out


@pytest.mark.parametrize("status", ["UPDATE_COMPLETE", "UPDATE_IN_PROGRESS"])
def test_make_execute_puts_back_a_policy_a_stopped_run_left_relaxed_once_the_stack_has_settled(aws, status):
    # make execute does not wait for the stack: while the stopped run's update still runs, the policy waits too.
    lock_taken(aws, "cert-dns", command="execute", stack="cert-dns")
    aws.cf.add_response(
        "describe_change_set", change_set("cert-dns"), {"StackName": stack("cert-dns"), "ChangeSetName": cs_name("cert-dns")}
    )
    aws.cf.add_response("describe_stacks", described("cert-dns", status), {"StackName": stack("cert-dns")})
    settled = status == "UPDATE_COMPLETE"
    if settled:
        aws.policy_restored("cert-dns")  # before the change set is shown
    aws.change_set_template("cert-dns")
    aws.listed_change_sets("cert-dns")
    lock_freed(aws, command="execute", stack="cert-dns")
    assert aws.run("execute", "--stack", "cert-dns", "--changeset", cs_name("cert-dns"), locking=True) == 1  # then declined
    said = f"{stack('cert-dns')}: its stack policy, relaxed by a run stopped during an --allow-replace update, put back"
    assert (said in aws.out) is settled


def test_a_relaxing_call_that_got_no_answer_keeps_its_mark_after_the_policy_is_put_back(aws):
    # It may land after the restore: the mark stays, for the next deploy to put the policy back again.
    aws.deployed("cert-dns")
    aws.deployed("alb")
    aws.change_set("alb", "UPDATE", ALB_CHANGES)
    aws.readers_not_deployed("alb")  # the target group replaced: what reads its ARN, deployed?
    aws.policy_marked("alb")
    relaxing = []

    def unanswered_first(params, **_):  # the relaxing call: its retries' answer is an error, it may have landed
        relaxing.append(params)
        if len(relaxing) == 1:
            raise retried_throttling("SetStackPolicy")

    aws.clients["cloudformation"].meta.events.register("provide-client-params.cloudformation.SetStackPolicy", unanswered_first)
    aws.cf.add_response("delete_change_set", {}, {"StackName": stack("alb"), "ChangeSetName": cs_name("alb")})
    policy = json.dumps(configuration(ENV, "alb")["StackPolicy"])
    aws.cf.add_response("set_stack_policy", {}, {"StackName": stack("alb"), "StackPolicyBody": policy})  # and no DeleteParameter
    assert aws.run("deploy", "--stack", "alb", "--yes", "--allow-replace") == 1
    assert f"{stack('alb')}: stack policy put back (the call that relaxed it got no answer and may still land: its mark stays" in aws.out


# --- what the deployer prints: pure functions of AWS's answers (scripts/deploy/text.py) -------------
# An alb change set as DescribeChangeSet answers a new ContainerPort: the target group is replaced
# (the parameter, then CloudFormation's own Dynamic re-evaluation), the listener that refers to it
# may be, and a few other kinds of change around them.
TEXT_CHANGES = [
    change(
        "Modify",
        "TargetGroup",
        "AWS::ElasticLoadBalancingV2::TargetGroup",
        "True",
        [detail("Port", "ParameterReference", "ContainerPort", "Always"), detail("Port", recreation="Always", evaluation="Dynamic")],
    ),
    change(
        "Modify",
        "HttpsListener",
        "AWS::ElasticLoadBalancingV2::Listener",
        "Conditional",
        [detail("DefaultActions", "ResourceReference", "TargetGroup", evaluation="Dynamic")],
    ),
    change("Modify", "AlbSecurityGroup", "AWS::EC2::SecurityGroup", details=[detail("SecurityGroupIngress")]),
    change(
        "Modify",
        "LoadBalancer",
        "AWS::ElasticLoadBalancingV2::LoadBalancer",
        details=[detail("SecurityGroups", "ResourceAttribute", "AlbSecurityGroup.GroupId", evaluation="Dynamic")],
    ),
    change("Add", "AccessLogsRole", "AWS::IAM::Role"),
    change("Remove", "AccessLogBucket", "AWS::S3::Bucket"),
]
DEPLOYED_PORT = configuration(ENV, "alb")["Parameters"]["ContainerPort"]
NEW_PORT = "8080" if DEPLOYED_PORT != "8080" else "8081"
ALB_CHANGE_SET = change_set(
    "alb", changes=TEXT_CHANGES, parameters=configuration(ENV, "alb")["Parameters"] | wired("alb") | {"ContainerPort": NEW_PORT}
)


def test_a_change_set_is_a_table_marking_replacements_stateful_resources_iam_and_security_groups():
    assert deploy.text.change_set_table(ALB_CHANGE_SET, described("alb")["Stacks"][0]) == [
        f"change set {cs_name('alb')} for {stack('alb')}:",
        "                     action  logical id        type                                       replacement  cause",
        "  !REPLACE,STATEFUL  Modify  TargetGroup       AWS::ElasticLoadBalancingV2::TargetGroup   True         "
        "Port <- parameter ContainerPort recreates; Port (DirectModification) recreates",
        "  !REPLACE?          Modify  HttpsListener     AWS::ElasticLoadBalancingV2::Listener      Conditional  DefaultActions <- ref TargetGroup",
        "  !SG                Modify  AlbSecurityGroup  AWS::EC2::SecurityGroup                    False        SecurityGroupIngress (DirectModification)",
        "                     Modify  LoadBalancer      AWS::ElasticLoadBalancingV2::LoadBalancer  False        "
        "SecurityGroups <- attribute AlbSecurityGroup.GroupId",
        "  !IAM               Add     AccessLogsRole    AWS::IAM::Role                                          new in the template",
        "  !REMOVE,STATEFUL   Remove  AccessLogBucket   AWS::S3::Bucket                                         gone from the template",
        f"  parameter ContainerPort: {DEPLOYED_PORT} -> {NEW_PORT}",
    ]


def test_on_a_terminal_replacements_and_removals_are_red_and_other_marks_yellow():
    red, yellow, plain = "\033[31m", "\033[33m", "  "
    lines = deploy.text.change_set_table(ALB_CHANGE_SET, described("alb")["Stacks"][0], colour=True)
    assert [line[2:7] if line.startswith("  \033[") else line[:2] for line in lines[2:8]] == [red, red, yellow, plain, yellow, red]
    assert all(line.endswith("\033[0m") for line in lines[2:8] if line.startswith("  \033["))
    assert lines[:2] + lines[8:] == deploy.text.change_set_table(ALB_CHANGE_SET, described("alb")["Stacks"][0])[:2] + [
        f"  parameter ContainerPort: {DEPLOYED_PORT} -> {NEW_PORT}"
    ]


def test_every_iam_type_is_marked_iam_and_every_security_group_type_sg():
    # A policy or a rule changed alone widens access as much as a role or a group does
    kinds = {
        "TaskPolicy": ("AWS::IAM::Policy", "!IAM"),
        "DeployPolicy": ("AWS::IAM::ManagedPolicy", "!IAM"),
        "IngressRule": ("AWS::EC2::SecurityGroupIngress", "!SG"),
        "EgressRule": ("AWS::EC2::SecurityGroupEgress", "!SG"),
        "Topic": ("AWS::SNS::Topic", ""),
    }
    changes = [change("Modify", name, kind, details=[detail("PolicyDocument")]) for name, (kind, _) in kinds.items()]
    rows = [line.split() for line in deploy.text.change_set_table(change_set("alb", changes=changes))[2:]]
    marked = {row[row.index("Modify") + 1]: row[0] if row[0].startswith("!") else "" for row in rows}
    assert marked == {name: mark for name, (_, mark) in kinds.items()}, rows


def test_a_change_whose_action_cloudformation_cannot_tell_yet_is_marked_and_red():
    # Action "Dynamic" (API_ResourceChange: "exact action for the resource can't be determined") may replace or remove
    kinds = {"Bucket": ("AWS::S3::Bucket", "!DYNAMIC,STATEFUL"), "Topic": ("AWS::SNS::Topic", "!DYNAMIC")}
    changes = [change("Dynamic", name, kind) for name, (kind, _) in kinds.items()]
    plain = deploy.text.change_set_table(change_set("alb", changes=changes))[2:]
    assert {row.split()[2]: row.split()[0] for row in plain} == {name: mark for name, (_, mark) in kinds.items()}, plain
    painted = deploy.text.change_set_table(change_set("alb", changes=changes), colour=True)[2:]
    assert all(line.startswith(f"  \x1b[{deploy.text.RED}m") for line in painted), painted


def test_the_cause_says_recreates_only_where_a_property_always_recreates_and_each_cause_once():
    # RequiresRecreation "Conditional" is decided as the update runs (API_ResourceTargetDefinition), and
    # CloudFormation's Static and Dynamic evaluations of one property are one cause
    details = [
        detail("Port", recreation="Conditional"),
        detail("Port", recreation="Conditional", evaluation="Dynamic"),
        detail("HealthCheckPath", "ParameterReference", "HealthCheckPath"),
    ]
    modified = change("Modify", "TargetGroup", "AWS::ElasticLoadBalancingV2::TargetGroup", "Conditional", details)
    row = deploy.text.change_set_table(change_set("alb", changes=[modified]))[2]
    assert row.endswith("Conditional  Port (DirectModification); HealthCheckPath <- parameter HealthCheckPath"), row


@pytest.mark.parametrize("changed", SERVICE_REPLACED_BY)
def test_an_update_that_replaces_the_service_sets_its_desired_count(aws, changed):
    # A new NamePrefix or cluster makes a new service, which without DesiredCount started 1 task, not DesiredCount.
    running = service_parameters("v1")
    aws.deployed("alb")
    aws.deployed("release-alarms")
    aws.deployed("service", parameters=running | {changed: f"{running[changed]}-old"})
    expected = create_params("service", "UPDATE", ImageTag="v1", KeepRunningCount="false")
    aws.change_set("service", "UPDATE", IMAGE_TAG_CHANGES, expected, left=True)
    assert aws.run("changeset", "--stack", "service") == 0, aws.err


@pytest.mark.parametrize("keep_running", ["true", "false", None])
def test_a_new_desired_count_on_a_running_service_says_it_counts_only_at_its_create(keep_running):
    """Updates omit the count (KeepRunningCount=true, README "Desired count vs auto-scaling"): the
    change set lists the parameter, and the note says what to change instead."""
    running = service_parameters("v1") | {"KeepRunningCount": "true"}
    given = running | {"DesiredCount": str(int(running["DesiredCount"]) + 1), "KeepRunningCount": keep_running}
    given = {k: v for k, v in given.items() if v is not None}  # None: a change set made without it (by hand)
    table = deploy.text.change_set_table(change_set("service", parameters=given), described("service", parameters=running)["Stacks"][0])
    noted = [line for line in table if "DesiredCount, which counts only when the service is created" in line]
    assert len(noted) == (1 if keep_running == "true" else 0), table  # a create (and its settling) states the count
    if noted:
        assert noted[0] == (
            "  note: the Service row above is CloudFormation's reading of the new DesiredCount, which counts only when the "
            "service is created (README, Decisions: Desired count vs auto-scaling): the running count does not change, "
            "auto-scaling keeps it; to run more tasks, raise MinCapacity (the scaling layer)"
        )


def test_an_update_that_leaves_the_desired_count_as_it_was_gets_no_desired_count_note():
    # The note speaks of a new DesiredCount: a release (a new image) whose change set lists the running service's
    # DesiredCount unchanged, as every service change set does, is not told its count does not change (a mutation audit)
    running = service_parameters("v1") | {"KeepRunningCount": "true"}
    table = deploy.text.change_set_table(
        change_set("service", parameters=running | {"ImageTag": "v2"}), described("service", parameters=running)["Stacks"][0]
    )
    assert "  parameter ImageTag: v1 -> v2" in table, table
    assert not [line for line in table if "DesiredCount" in line], table


def test_tags_the_change_set_changes_are_shown_with_its_other_changes():
    # With a resource or parameter change beside them, changed stack tags went on every resource of the
    # stack unshown (only a change of tags alone was said).
    ours = configuration(ENV, "alb")["Tags"]  # the tool's own tags (Project, Layer) among them, whatever params adds
    extra = f"{templates.PROJECT}-by-hand"  # a key no params file of the project gives
    before = {k: v for k, v in ours.items() if k != "Project"} | {"Layer": "old\nlayer", extra: "web"}
    deployed = described("alb", tags=before)["Stacks"][0]
    table = deploy.text.change_set_table(change_set("alb", changes=CERT_CHANGES), deployed)
    tag_lines = [line for line in table if line.startswith("  tag ")]
    assert tag_lines == [
        "  tag Layer: old\\nlayer -> alb",
        "  tag Project: (none) -> startupwebapp",
        "  tag startupwebapp-by-hand: web -> (none)",
    ], table
    # a key that differs by an invisible character is shown as differing
    hand_tagged = described("alb", tags=ours | {"Layer\u200b": "web"})["Stacks"][0]
    lines = [
        line for line in deploy.text.change_set_table(change_set("alb", changes=CERT_CHANGES), hand_tagged) if line.startswith("  tag ")
    ]
    assert lines == ["  tag Layer\\u200b: web -> (none)"], lines
    for untagged in ({}, {"Tags": []}):  # a change set made by hand, without tags, is not taken to remove them
        made = {k: v for k, v in change_set("alb", changes=CERT_CHANGES).items() if k != "Tags"} | untagged
        assert not [line for line in deploy.text.change_set_table(made, deployed) if line.startswith("  tag ")]


def test_a_change_set_of_parameters_only_says_so_and_a_new_stack_shows_no_parameter_changes():
    deployed = described(
        "cert-dns", parameters=configuration(ENV, "cert-dns")["Parameters"] | {"ExistingHostedZoneId": "Z0000000000OLDZONE"}
    )
    table = deploy.text.change_set_table(change_set("cert-dns"), deployed["Stacks"][0])
    assert table == [
        f"change set {cs_name('cert-dns')} for {stack('cert-dns')}:",
        "    action  logical id  type  replacement  cause",
        f"  parameter ExistingHostedZoneId: Z0000000000OLDZONE -> {ZONE}",
        "  (no resource changes: parameter values or tags only)",
    ]
    assert deploy.text.change_set_table(change_set("cert-dns", changes=CERT_CHANGES)) == [
        f"change set {cs_name('cert-dns')} for {stack('cert-dns')}:",
        "    action  logical id   type                                  replacement  cause",
        "    Add     Certificate  AWS::CertificateManager::Certificate               new in the template",
    ]


def test_a_resource_added_or_removed_by_its_condition_is_named_with_the_condition():
    # Switching the release strategy adds or removes the test listener with the template unchanged:
    # "new in the template" would be wrong. The conditions come from the layer's template.
    layer = deploy.layer.load_layer(ENV, "alb", OUTPUT)
    template = json.loads((OUTPUT / "alb.json").read_text())
    assert layer.conditions == {n: r["Condition"] for n, r in template["Resources"].items() if "Condition" in r} != {}
    assert layer.conditions["TestListenerIngress"] == "ShiftsTraffic"  # the test listener's, as templates/alb.py gives it
    name, condition = "TestListenerIngress", "ShiftsTraffic"
    kind = template["Resources"][name]["Type"]
    for action, cause in (("Add", f"Condition {condition} holds"), ("Remove", f"Condition {condition} no longer holds")):
        table = deploy.text.change_set_table(change_set("alb", changes=[change(action, name, kind)]), conditions=layer.conditions)
        assert table[-1].split()[-len(cause.split()) :] == cause.split(), table
        assert deploy.text.change_set_table(change_set("alb", changes=[change(action, name, kind)]))[-1].endswith(
            "new in the template" if action == "Add" else "gone from the template"
        )


def test_an_empty_or_new_parameter_value_is_said_not_left_blank():
    deployed = described("cert-dns", parameters={"ExistingHostedZoneId": "", "Retired": "x"})["Stacks"][0]
    given = change_set("cert-dns", parameters={"ExistingHostedZoneId": ZONE, "Added": "y", "Retired": ""})
    assert deploy.text.change_set_table(given, deployed)[2:5] == [
        f"  parameter ExistingHostedZoneId: (empty) -> {ZONE}",
        "  parameter Added: (none) -> y",
        "  parameter Retired: x -> (empty)",
    ]


def test_the_stateful_changes_are_what_needs_allow_replace_and_changeset_says_so():
    assert deploy.text.stateful_changes(ALB_CHANGE_SET) == [
        "TargetGroup (AWS::ElasticLoadBalancingV2::TargetGroup, replaced)",
        "AccessLogBucket (AWS::S3::Bucket, removed)",
    ]
    layer = deploy.layer.load_layer(ENV, "alb", OUTPUT)
    assert deploy.text.left_for_review(ALB_CHANGE_SET, layer) == [
        # (helper Q3) typed as printed, make execute was refused for want of ALLOW_REPLACE=1, which the next lines say it needs
        f"change set {cs_name('alb')} left for review; execute it with: make execute STACK=alb ENV={ENV} CHANGESET={cs_name('alb')} ALLOW_REPLACE=1",
        "  executing needs ALLOW_REPLACE=1 (--allow-replace): TargetGroup (AWS::ElasticLoadBalancingV2::TargetGroup, replaced)",
        "  executing needs ALLOW_REPLACE=1 (--allow-replace): AccessLogBucket (AWS::S3::Bucket, removed)",
        # its Port changes and its Name, which output/alb.json sets, does not
        "  CloudFormation cannot execute it: TargetGroup (AWS::ElasticLoadBalancingV2::TargetGroup, its Name unchanged) would be replaced under the same name",
    ]
    assert deploy.text.stateful_changes(change_set("cert-dns", changes=CERT_CHANGES)) == []
    cert_dns = deploy.layer.load_layer(ENV, "cert-dns", OUTPUT)
    assert deploy.text.left_for_review(change_set("cert-dns", changes=CERT_CHANGES), cert_dns)[0].endswith(
        f"CHANGESET={cs_name('cert-dns')}"
    )


def test_e_mail_subscriptions_made_anew_are_said_to_wait_for_confirmation():
    template = json.loads((OUTPUT / "release-alarms.json").read_text())
    subscription = "AWS::SNS::Subscription"
    renamed = [  # a new NamePrefix replaces the topic, and with it the subscriptions naming its ARN
        change(
            "Modify", "AlertEmailSubscription1", subscription, "True", [detail("TopicArn", "ResourceReference", "AlertTopic", "Always")]
        ),
        change("Add", "AlertEmailSubscription2", subscription),
        change("Modify", "AlertEmailSubscription3", subscription, "False", [detail("FilterPolicy")]),  # kept: nothing to confirm
    ]
    assert deploy.text.subscriptions_to_confirm(change_set("release-alarms", changes=renamed), template) == [
        "  note: e-mail subscriptions made anew (AlertEmailSubscription1, AlertEmailSubscription2): each address is sent a "
        "confirmation message from AWS Notifications and gets no alarm until it confirms (the link is valid for three days)"
    ]
    assert deploy.text.subscriptions_to_confirm(change_set("release-alarms", changes=renamed[2:]), template) == []


def test_an_address_added_to_alert_emails_leaves_the_first_subscription_unconfirmed_only_where_its_address_changed():
    # A second address added: the first subscription, whose Endpoint (Select 0 of AlertEmails) stays, was said made
    # anew, its address to confirm again; the change set calls it a (conditional) replacement for the parameter's change
    template = json.loads((OUTPUT / "release-alarms.json").read_text())
    subscription = "AWS::SNS::Subscription"
    endpoint = detail("Endpoint", "ParameterReference", "AlertEmails", "Always", "Dynamic")
    changes = [
        change("Modify", "AlertEmailSubscription1", subscription, "Conditional", [endpoint]),
        change("Add", "AlertEmailSubscription2", subscription),
    ]
    added = ({"AlertEmails": "ops@example.com"}, {"AlertEmails": "ops@example.com,oncall@example.com"})
    said = deploy.text.subscriptions_to_confirm(change_set("release-alarms", changes=changes), template, values=added, region=REGION)
    assert said and "made anew (AlertEmailSubscription2):" in said[0], said
    replaced = ({"AlertEmails": "ops@example.com"}, {"AlertEmails": "new@example.com,oncall@example.com"})
    said = deploy.text.subscriptions_to_confirm(change_set("release-alarms", changes=changes), template, values=replaced, region=REGION)
    assert said and "made anew (AlertEmailSubscription1, AlertEmailSubscription2):" in said[0], said
    unknown = ({"AlertEmails": None}, added[1])  # a value DescribeStacks left out (a traceback): not known to stay
    said = deploy.text.subscriptions_to_confirm(change_set("release-alarms", changes=changes), template, values=unknown, region=REGION)
    assert said and "made anew (AlertEmailSubscription1, AlertEmailSubscription2):" in said[0], said
    # a template change beside the parameter's replaces it whatever the values: only a parameter's change can leave it
    rewritten = [change("Modify", "AlertEmailSubscription1", subscription, "True", [endpoint, detail("Protocol", recreation="Always")])]
    said = deploy.text.subscriptions_to_confirm(change_set("release-alarms", changes=rewritten), template, values=added, region=REGION)
    assert said and "made anew (AlertEmailSubscription1):" in said[0], said


def test_the_rollback_triggers_of_a_change_set_and_of_a_repair():
    assert deploy.text.rollback_triggers(change_set("service")) == [
        "rollback triggers: 2 release alarms, watched during the update and 10 minutes after; "
        "CloudFormation rolls the update back if one goes to ALARM"
    ]
    assert deploy.text.rollback_triggers(change_set("service"), "create") == [
        "rollback triggers: 2 release alarms, watched during the create and 10 minutes after; "
        "CloudFormation rolls the create back if one goes to ALARM"
    ]
    assert deploy.text.rollback_triggers(change_set("service", repair=True)) == [
        "rollback triggers: none for this change set (a repair: make rollback or REPAIR=1); the release alarms may still be in "
        "ALARM from the release being repaired; the next deploy without REPAIR=1 watches them again"
    ]


FAILED_CREATE = [
    event("cert-dns", stack("cert-dns"), "CREATE_IN_PROGRESS", 1, reason="User Initiated"),
    event("cert-dns", "Certificate", "CREATE_IN_PROGRESS", 2, "AWS::CertificateManager::Certificate"),
    event("cert-dns", "Certificate", "CREATE_FAILED", 5, "AWS::CertificateManager::Certificate", "Invalid domain name"),
    event("cert-dns", stack("cert-dns"), "ROLLBACK_COMPLETE", 30),
]


def test_events_are_one_line_each_failures_and_rollbacks_red_on_a_terminal():
    lines = [
        f"  12:00:01  CREATE_IN_PROGRESS               {stack('cert-dns')}  AWS::CloudFormation::Stack  User Initiated",
        "  12:00:02  CREATE_IN_PROGRESS               Certificate                  AWS::CertificateManager::Certificate",
        "  12:00:05  CREATE_FAILED                    Certificate                  AWS::CertificateManager::Certificate  Invalid domain name",
        f"  12:00:30  ROLLBACK_COMPLETE                {stack('cert-dns')}  AWS::CloudFormation::Stack",
    ]
    assert deploy.text.event_lines(FAILED_CREATE) == lines
    assert deploy.text.event_lines(FAILED_CREATE, colour=True) == [*lines[:2], *(f"\033[31m{line}\033[0m" for line in lines[2:])]
    assert deploy.text.failed_resources(FAILED_CREATE[2:3]) == [
        "  failed: Certificate (AWS::CertificateManager::Certificate): Invalid domain name"
    ]


def test_make_events_prints_describe_stack_events_oldest_first_with_the_date():
    newest_first = events(*FAILED_CREATE)["StackEvents"]
    assert deploy.text.recent_events(stack("cert-dns"), newest_first) == [
        f"{stack('cert-dns')}: the last 4 events, oldest first",
        f"  2025-11-25 12:00:01  CREATE_IN_PROGRESS               {stack('cert-dns')}  AWS::CloudFormation::Stack  User Initiated",
        "  2025-11-25 12:00:02  CREATE_IN_PROGRESS               Certificate                  AWS::CertificateManager::Certificate",
        "  2025-11-25 12:00:05  CREATE_FAILED                    Certificate                  AWS::CertificateManager::Certificate"
        "  Invalid domain name",
        f"  2025-11-25 12:00:30  ROLLBACK_COMPLETE                {stack('cert-dns')}  AWS::CloudFormation::Stack",
    ]


def test_outputs_are_listed_by_key():
    assert deploy.text.outputs(described("cert-dns")["Stacks"][0]) == [
        f"  CertificateArn = {OUTPUT_VALUES['CertificateArn']}",
        "  DomainName = DomainName-value",
        f"  HostedZoneId = {OUTPUT_VALUES['HostedZoneId']}",
    ]
    assert deploy.text.outputs(described("cert-dns", with_outputs=False)["Stacks"][0]) == []
    # OutputValue is optional in DescribeStacks' model: one without it is said so, not a KeyError after a deploy that worked
    assert deploy.text.outputs({"Outputs": [{"OutputKey": "Bare"}]}) == ["  Bare = (no value)"]


@pytest.mark.parametrize(
    ("status", "stop"),
    [
        ("CREATE_IN_PROGRESS", f"{CLI} cloudformation delete-stack --stack-name {stack('cert-dns')}   (a create cannot be cancelled)"),
        ("UPDATE_IN_PROGRESS", f"{CLI} cloudformation cancel-update-stack --stack-name {stack('cert-dns')}"),
        # CancelUpdateStack takes UPDATE_IN_PROGRESS only:
        # https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_CancelUpdateStack.html
        *[
            (status, f"nothing: {status} (a rollback or a clean-up) cannot be stopped; it ends by itself")
            for status in (
                "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS",
                "UPDATE_ROLLBACK_IN_PROGRESS",
                "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS",
                "ROLLBACK_IN_PROGRESS",
            )
        ],
        ("UPDATE_COMPLETE", "nothing: it is UPDATE_COMPLETE, no operation runs"),
        ("REVIEW_IN_PROGRESS", f"{CLI} cloudformation delete-stack --stack-name {stack('cert-dns')}   (a create cannot be cancelled)"),
    ],
)
def test_a_wait_that_stops_names_what_is_still_in_progress_and_how_to_follow_or_stop_it(status, stop):
    assert deploy.text.still_in_progress(stack("cert-dns"), ENV, status, 45, FAILED_CREATE[:2], CLI) == [
        f"error: stopped waiting for {stack('cert-dns')} after 45 minutes; it is still {status}.",
        "  still CREATE_IN_PROGRESS since 12:00:02: Certificate (AWS::CertificateManager::Certificate)",
        "    a certificate waits for its DNS validation record to resolve: is the hosted zone delegated? make zone ENV=prod checks and waits",
        "  CloudFormation carries on; nothing was cancelled.",
        "  follow it:   make status ENV=prod   (or: make events STACK=cert-dns ENV=prod)",
        f"  stop it:     {stop}",
        "  wait longer: rerun with MAX_WAIT=<minutes> (--max-wait); a rerun first waits for the stack to settle",
    ]


def test_the_summary_of_a_multi_layer_deploy():
    outcomes = {"ci": "no changes", "cert-dns": "updated, 1 change"}
    assert deploy.text.summary(["ci", "cert-dns", "alb", "service"], outcomes, 12.345) == [
        "summary, 12.3 s: ci (no changes), cert-dns (updated, 1 change)",
        "  the run stopped at alb (the reason is below); not reached: service",
    ]
    assert deploy.text.summary(["ci"], {"ci": "created, 3 changes"}, 61) == ["summary, 61.0 s: ci (created, 3 changes)"]
    # Stopped in a layer after its stack operation (the service's settling change set): that layer is named.
    assert deploy.text.summary(["alb", "service", "scaling"], {"alb": "no changes", "service": "created, 7 changes"}, 3, "service") == [
        "summary, 3.0 s: alb (no changes), service (created, 7 changes)",
        "  the run stopped in service, after its stack operation: created, 7 changes (the reason is below); not reached: scaling",
    ]
    assert deploy.text.summary(["ci"], {}, 0.04) == [
        "summary, 0.0 s: no layer deployed",
        "  the run stopped at ci (the reason is below)",
    ]


SMALL_TEMPLATE = {"Parameters": {"DomainName": {"Type": "String"}}, "Resources": {"Zone": {"Type": "AWS::Route53::HostedZone"}}}


@pytest.mark.parametrize(("replacement", "is_"), [("True", "is"), ("Conditional", "may be")])
def test_the_warning_for_a_replaced_log_group_offers_make_logs_only_for_the_service_group_it_reads(replacement, is_):
    change = {"Action": "Modify", "LogicalResourceId": "LogGroup", "ResourceType": "AWS::Logs::LogGroup", "Replacement": replacement}
    replaced_group = {"ResourceChange": change | {"PhysicalResourceId": "old-group"}}
    for name in ("service", "waf"):
        env = next((e.name for e in load_all(PARAMS) if e.deploys(name)), None)  # one that deploys the layer
        if env is None:  # waf enabled nowhere (params/): no output/<env>/waf.json to read
            continue
        layer = deploy.layer.load_layer(env, name, OUTPUT)
        (line,) = deploy.text.kept_logs_unreadable(layer, {"Changes": [replaced_group]}, "aws --region r", NOW)
        assert line.startswith(
            f"warning: LogGroup {is_} replaced: old-group would stay in the account, in no stack, but its events stay encrypted with LogKey"
        ), line
        # every event the group can hold: the longest retention CloudWatch Logs takes, the most SINCE= takes
        reads = f"make logs ENV={env} SINCE={max(LOG_RETENTION_DAYS)}d, or " if name == "service" else ""
        export = f"aws --region r logs create-export-task --log-group-name old-group --from 0 --to {int(NOW.timestamp() * 1000)}"
        assert line.endswith(
            f"read or export what is needed first ({reads}{export} --destination <an S3 bucket CloudWatch Logs may write to>, "
            "which runs on after it returns: aws --region r logs describe-export-tasks says when it is COMPLETED)"
        ), line
        assert deploy.logs.parse_since(f"{max(LOG_RETENTION_DAYS)}d") == max(LOG_RETENTION_DAYS) * 86400  # make logs takes it


# make changeset, then params/ changed back and make templates: execute deploys the change set's values. A change set is
# anyone's to make who may make one under the stack: its values may hold a terminal's escape sequences, shown escaped.
@pytest.mark.parametrize(("made_with", "shown"), [("-then", "-then"), ("\x1b]0;x\x07", "\\x1b]0;x\\x07")], ids=["changed", "escaped"])
def test_execute_warns_when_output_holds_other_values_than_the_change_set_was_made_with(aws, made_with, shown):
    layer = "cert-dns"
    given = configuration(ENV, layer)["Parameters"]
    name, value = sorted(given.items())[0]
    aws.reviewed_change_set(layer, parameters=given | {name: f"{value}{made_with}"})
    assert aws.run("execute", "--stack", layer, "--changeset", cs_name(layer)) == 1  # no terminal: left, after the warning
    assert (
        f"warning: {cs_name(layer)} was made with other values than {templates.relative(OUTPUT / ENV / f'{layer}.json')} holds now: "
        f"{name} {value}{shown} (now {value}); executing it deploys its values, not these: make changeset STACK={layer} "
        f"ENV={ENV} makes one with them"
    ) in aws.out.splitlines(), ascii(aws.out)
    assert "\x1b" not in aws.out and "\x07" not in aws.out, ascii(aws.out)


def test_execute_warns_when_the_change_set_takes_other_values_than_the_layers_it_reads_give_now(aws):
    # Anyone who may make a change set under the stack can make one of the reviewed name with another of these
    # (an alarm topic of theirs): the table shows no parameter, and it ran without a word.
    layer = next(name for name in PROD_LAYERS if stubbed_aws.wired(name) and name != "service")
    wired = stubbed_aws.wired(layer)
    name = sorted(wired)[0]
    taken = configuration(ENV, layer)["Parameters"] | wired | stubbed_aws.deploy_time(layer) | {name: "theirs\x1b[2J"}
    aws.reviewed_change_set(layer, parameters=taken)
    assert aws.run("execute", "--stack", layer, "--changeset", cs_name(layer)) == 1  # no terminal: left, after the warning
    assert (
        f"warning: {cs_name(layer)} takes other values than the layers it reads give now: {name} theirs\\x1b[2J (now {wired[name]}); "
        "executing it deploys its values, not these (a change set made before those layers changed, or by hand): "
        f"make changeset STACK={layer} ENV={ENV} makes one with them"
    ) in aws.out.splitlines(), ascii(aws.out)


@pytest.mark.parametrize("upstream", ["destroyed", "UPDATE_IN_PROGRESS"])
def test_execute_of_a_change_set_whose_upstream_layer_is_destroyed_since_is_refused_as_a_deploy_is(aws, upstream):
    # Destroyed: executed, it made the layer on what no longer exists (alarms of a destroyed service, a web ACL on a
    # deleted load balancer), where a deploy refuses. In no settled state: a warning, and the change set runs as made.
    layer = next(name for name in PROD_LAYERS if stubbed_aws.wired(name) and name != "service")
    aws.reviewed_change_set(layer, upstream_gone=upstream)
    assert aws.run("execute", "--stack", layer, "--changeset", cs_name(layer)) == 1
    if upstream == "destroyed":
        assert aws.err.startswith(f"error: {stack(layer)} needs "), aws.err
        anew = f"once they are deployed, make changeset STACK={layer} ENV={ENV} makes one"  # not this one: it holds the old values
        assert aws.err.endswith(f"change set {cs_name(layer)} not executed: it holds what the destroyed layers gave; {anew}\n"), aws.err
    else:
        assert "no terminal to ask on" in aws.err and "deployed first" not in aws.err, aws.err


def test_a_message_names_the_configuration_file_of_the_output_dir_the_run_read(aws, tmp_path):
    # It named output/<env>/<layer>.json whatever --output-dir the run read.
    other = shutil.copytree(OUTPUT, tmp_path / "elsewhere")
    layer = "cert-dns"
    given = configuration(ENV, layer)["Parameters"]
    name, value = sorted(given.items())[0]
    aws.reviewed_change_set(layer, parameters=given | {name: f"{value}-then"})
    assert aws.run("execute", "--stack", layer, "--changeset", cs_name(layer), "--output-dir", str(other)) == 1
    assert f"was made with other values than {other / ENV / f'{layer}.json'} holds now: " in aws.out, aws.out


def test_execute_does_not_warn_of_the_running_image_a_change_set_for_an_update_keeps(aws):
    # params' ImageTag counts only for a first create: a change set made without TAG= keeps the running image,
    # and one with TAG= deploys that one; "made with other values ... make changeset makes one with them" was false.
    layer = "service"
    given = configuration(ENV, layer)["Parameters"]
    aws.reviewed_change_set(layer, parameters=given | {"ImageTag": given["ImageTag"] + "-running"})
    assert aws.run("execute", "--stack", layer, "--changeset", cs_name(layer)) == 1 and "no terminal to ask on" in aws.err, aws.err
    assert "was made with other values" not in aws.out, aws.out


def test_execute_of_a_first_creates_change_set_warns_of_an_image_tag_params_changed_since():
    # params' ImageTag is what a first create deploys: one made before it changed deploys the image it was made with
    layer = deploy.layer.load_layer(ENV, "service", OUTPUT)
    now = layer.parameters["ImageTag"]
    made = change_set("service", parameters=layer.parameters | {"ImageTag": f"{now}-then"})
    (warning,) = deploy.text.values_since_the_change_set(made, layer, False, {}, "again")
    assert f": ImageTag {now}-then (now {now}); executing it deploys its values" in warning, warning
    assert deploy.text.values_since_the_change_set(made, layer, True, {}, "again") == []  # an update's keeps the running one


def test_a_value_the_change_set_does_not_give_is_not_said_to_differ():
    # ParameterValue is optional in DescribeChangeSet's answer: one left out is unknown, not an empty value made with
    layer = deploy.layer.load_layer(ENV, "service", OUTPUT)
    made = change_set("service", parameters=layer.parameters)
    made["Parameters"] = [{"ParameterKey": p["ParameterKey"]} for p in made["Parameters"]]
    assert deploy.text.parameter_values(made) == dict.fromkeys(layer.parameters)
    assert deploy.text.values_since_the_change_set(made, layer, False, {}, "again") == []


def test_the_command_that_makes_a_releases_change_set_anew_carries_its_image(aws):
    # "make changeset STACK=service ENV=..." alone keeps the running image: run as printed, it said "no changes"
    layer = "service"
    given = configuration(ENV, layer)["Parameters"]
    wired = stubbed_aws.wired(layer) | stubbed_aws.deploy_time(layer)
    name, value = next((k, v) for k, v in sorted(given.items()) if k != "ImageTag")
    running = given | wired | {"ImageTag": "v1"}
    aws.reviewed_change_set(layer, parameters=running | {"ImageTag": "v2", name: f"{value}-then"}, running=running)
    assert aws.run("execute", "--stack", layer, "--changeset", cs_name(layer)) == 1
    (warning,) = [line for line in aws.out.splitlines() if "was made with other values" in line]
    assert warning.endswith(f"make changeset STACK=service ENV={ENV} TAG=v2 makes one with them"), warning


def test_a_value_a_change_set_was_made_empty_with_is_said_as_the_table_says_it(aws):
    # "ProductionListenerRuleArn  (now arn:...)": two spaces where the change-set table says (empty)
    layer = "cert-dns"
    given = configuration(ENV, layer)["Parameters"]
    name, value = sorted(given.items())[0]
    aws.reviewed_change_set(layer, parameters=given | {name: ""})
    assert aws.run("execute", "--stack", layer, "--changeset", cs_name(layer)) == 1
    assert f": {name} (empty) (now {value}); executing it deploys its values" in aws.out, aws.out


def test_the_command_that_makes_a_change_set_anew_fits_what_it_was_made_for():
    layer = deploy.load_layer(ENV, "service", OUTPUT)
    describe, remake = deploy.text.change_set_description, deploy.text.remake_command

    def made(tag, description):
        return {"Parameters": [{"ParameterKey": "ImageTag", "ParameterValue": tag}], "Description": description}

    again = f"make changeset STACK=service ENV={ENV}"
    assert remake(layer, made("v2", describe(layer, replacing="v1")), "v1") == f"{again} TAG=v2"  # a release of v2 over v1
    assert remake(layer, made("v1", describe(layer)), "v1") == again  # the running image kept
    # a rollback's: made from output/'s template and recorded as a release, the next rollback went back to v2
    assert remake(layer, made("v1", describe(layer, rolling_back_from="v2")), "v2") == f"make rollback STACK=service ENV={ENV} TAG=v1"
    # v3 released since that rollback from v2 was made: TAG=v1 would roll v3 back to v1
    assert remake(layer, made("v1", describe(layer, rolling_back_from="v2")), "v3") == f"make rollback STACK=service ENV={ENV}"
    # v3 released since the release of v2 over v1 was made: TAG=v2 would undo it
    assert remake(layer, made("v2", describe(layer, replacing="v1")), "v3") == again
    alb = deploy.load_layer(ENV, "alb", OUTPUT)
    assert remake(alb, made("v2", describe(alb, replacing="v1")), None) == f"make changeset STACK=alb ENV={ENV}"


def test_an_obsolete_change_set_says_the_stack_was_updated_since_and_how_to_make_a_new_one(aws):
    obsolete = change_set("cert-dns") | {"ExecutionStatus": "OBSOLETE"}
    aws.cf.add_response("describe_change_set", obsolete, {"StackName": stack("cert-dns"), "ChangeSetName": cs_name("cert-dns")})
    assert aws.run("execute", "--stack", "cert-dns", "--changeset", cs_name("cert-dns"), "--yes") == 1
    assert aws.err.rstrip().endswith(f"the stack was updated since it was made: make changeset STACK=cert-dns ENV={ENV} makes a new one"), (
        aws.err
    )


def test_an_obsolete_release_change_set_says_to_make_it_again_with_its_image(aws):
    # the command printed without TAG= made a change set that kept the running image: "no changes"
    layer = deploy.load_layer(ENV, "service", OUTPUT)
    description = deploy.text.change_set_description(layer, replacing="v1")
    made = change_set("service", parameters=service_parameters("v2")) | {"ExecutionStatus": "OBSOLETE", "Description": description}
    aws.cf.add_response("describe_change_set", made, {"StackName": stack("service"), "ChangeSetName": cs_name("service")})
    aws.deployed("service", parameters=service_parameters("v1"))
    assert aws.run("execute", "--stack", "service", "--changeset", cs_name("service"), "--yes") == 1
    assert aws.err.rstrip().endswith(f"make changeset STACK=service ENV={ENV} TAG=v2 makes a new one"), aws.err


def test_a_change_set_parameter_without_a_value_is_no_traceback(aws):
    # The API's model allows UsePreviousValue without ParameterValue in what DescribeChangeSet answers.
    layer = "cert-dns"
    given = configuration(ENV, layer)["Parameters"]
    made = change_set(layer, parameters=given)
    made["Parameters"][0] = {"ParameterKey": made["Parameters"][0]["ParameterKey"], "UsePreviousValue": True}
    aws.reviewed_change_set(layer, made=made)
    assert aws.run("execute", "--stack", layer, "--changeset", cs_name(layer)) == 1  # no terminal: left, not a traceback
    assert "Traceback" not in aws.err and "no terminal to ask on" in aws.err, aws.err


@pytest.mark.parametrize("layer", ["cert-dns", "alb"])
def test_the_warning_before_replacing_what_deployed_layers_read_says_whether_the_old_resource_is_deleted_or_kept(layer, monkeypatch):
    # It said "whose resources the update deletes at its end" of a certificate kept on replace (UpdateReplacePolicy Retain).
    loaded = deploy.layer.load_layer(ENV, layer, OUTPUT)
    template = json.loads(loaded.template)
    read = {name for output in template["Outputs"].values() for name in templates.template_reads.references(output["Value"])}
    replaced = sorted(name for name in read if name in template["Resources"])
    made = {"Changes": [change("Modify", name, template["Resources"][name]["Type"], replacement="True") for name in replaced]}
    said = []
    monkeypatch.setattr(advice, "deployed_readers", lambda deployer, layer, outputs: {"reader": outputs})
    advice.readers_of_replaced(types.SimpleNamespace(env=ENV, say=said.append), loaded, made)
    if layer == "cert-dns":
        assert "keep the old values until deployed (the old Certificate is kept on replace, in no stack): " in said[0], said
    else:
        assert (
            "keep the old values until deployed (the update deletes the old AlbSecurityGroup, AlternateTargetGroup, HttpsListener, "
            "LoadBalancer, ProductionListenerRule, TargetGroup, TestListenerRule at its end; the old AccessLogBucket is kept on "
            "replace, in no stack): "
        ) in said[0], said


def test_the_warning_before_replacing_names_the_fate_of_what_the_deployed_layers_read_alone(monkeypatch):
    # Every resource the change set replaces is named, but what is deleted or kept only of what the readers read.
    loaded = deploy.layer.load_layer(ENV, "alb", OUTPUT)
    template = json.loads(loaded.template)
    made = {
        "Changes": [
            change("Modify", name, template["Resources"][name]["Type"], replacement="True") for name in ("AccessLogBucket", "TargetGroup")
        ]
    }
    said = []
    monkeypatch.setattr(advice, "deployed_readers", lambda deployer, layer, outputs: {"service": outputs & {"TargetGroupArn"}})
    advice.readers_of_replaced(types.SimpleNamespace(env=ENV, say=said.append), loaded, made)
    assert said[0].startswith(
        "warning: this update replaces AccessLogBucket, TargetGroup; service (reads TargetGroupArn) keep the old values until deployed "
        "(the update deletes the old TargetGroup at its end): "
    ), said


def small_layer(template, tags=None):
    body = json.dumps(template, separators=(",", ":"), sort_keys=True)
    tags = tags or {"Project": "startupwebapp"}
    return deploy.layer.Layer(
        ENV,
        "cert-dns",
        stack("cert-dns"),
        body,
        frozenset(),
        {},
        tags,
        None,
        {},
        source="output/cert-dns.json",
        configuration=f"output/{ENV}/cert-dns.json",
    )


def test_a_layer_names_its_template_file_as_given_inside_the_project_or_out(tmp_path):
    # make diff's label and its "not deployed" line name the file the run read: --output-dir's too.
    other = tmp_path / "o"
    (other / ENV).mkdir(parents=True)
    for name in ("cert-dns.json", f"{ENV}/cert-dns.json"):
        (other / name).write_text((OUTPUT / name).read_text())
    assert deploy.layer.load_layer(ENV, "cert-dns", ROOT / "output").source == "output/cert-dns.json"
    assert deploy.layer.load_layer(ENV, "cert-dns", other).source == str(other / "cert-dns.json")


def test_a_layer_names_its_files_inside_the_project_as_typed_there_whatever_directory_the_run_starts_in(monkeypatch):
    # templates.relative: "paths under the project print short, as people type them, wherever the tool runs from"
    monkeypatch.chdir(ROOT / "scripts")
    layer = deploy.layer.load_layer(ENV, "cert-dns", Path("..") / "output")
    assert (layer.source, layer.configuration) == ("output/cert-dns.json", f"output/{ENV}/cert-dns.json")


def test_a_resource_is_custom_named_where_its_template_gives_it_the_name_not_wherever_its_type_could_have_one():
    # a type of templates.CUSTOM_NAMES without its name property: CloudFormation generates a name, and replaces it under a new one
    from scripts.deploy.layer import layer_of

    kind, name = next(iter(templates.CUSTOM_NAMES.items()))
    template = {"Resources": {"Named": {"Type": kind, "Properties": {name: "mine"}}, "Generated": {"Type": kind, "Properties": {}}}}
    assert layer_of(ENV, "alb", template, {}, {}, None, "alb.json", f"{ENV}/alb.json").custom_named == {"Named"}


def test_a_generated_file_the_system_refuses_to_read_is_one_line_with_the_systems_words(tmp_path, monkeypatch):
    output = shutil.copytree(OUTPUT, tmp_path / "output")
    refused = output / "alb.json"
    refuse_to_open(monkeypatch, refused)
    with pytest.raises(deploy.Failure) as failed:
        deploy.layer.load_layer(ENV, "alb", output)
    assert str(failed.value) == f"error: {refused}: unreadable (Permission denied); run `make templates`"
    assert failed.value.code == 2


def test_a_change_set_name_goes_to_no_layer_whose_stack_name_begins_it_but_not_up_to_a_dash():
    from scripts.deploy.layer import layer_named_in

    for layer in templates.LAYERS:
        assert layer_named_in(f"{templates.stack_name(ENV, layer)}-20260101000000000-abc1234", ENV) == layer
        assert layer_named_in(f"{templates.stack_name(ENV, layer)}x-20260101000000000-abc1234", ENV) is None


def test_a_layer_whose_template_and_configuration_are_both_missing_is_said_missing_of_its_template(tmp_path):
    output = shutil.copytree(OUTPUT, tmp_path / "output")
    for path in (output / "alb.json", output / ENV / "alb.json"):
        path.unlink()
    with pytest.raises(deploy.Failure) as failed:
        deploy.layer.load_layer(ENV, "alb", output)
    assert str(failed.value).startswith(f"error: {output / 'alb.json'}: missing; run `make templates`"), failed.value


def test_each_template_is_sent_as_its_files_text_where_it_fits_so_the_console_shows_what_ops_read():
    # It sent every template compact, one line of up to 32 KB in the console's Template tab (an ops review).
    from scripts.deploy.layer import MAX_TEMPLATE_BODY, layer_of

    over = []
    for name in templates.LAYERS:
        text = (OUTPUT / f"{name}.json").read_text()
        sent = layer_of(ENV, name, json.loads(text), {}, {}, None, f"{name}.json", f"{ENV}/{name}.json").template
        if len(text.encode()) <= MAX_TEMPLATE_BODY:
            assert sent == text, name
        else:  # one element a line, unindented: the same content, under the limit
            over.append(name)
            assert json.loads(sent) == json.loads(text) and len(sent.encode()) <= MAX_TEMPLATE_BODY, name
            assert sent.count("\n") > 1000 and not re.search(r"\n ", sent), sent[:200]
    assert over, "no template over the limit indented: this test no longer sees the one-element-a-line body"


def test_a_template_of_as_many_bytes_as_cloudformation_takes_inline_is_taken_and_one_more_is_refused():
    from scripts.deploy.layer import MAX_TEMPLATE_BODY, layer_of

    # TemplateBody: "a minimum length of 1 byte and a maximum length of 51,200 bytes" (botocore's model gives no maximum)
    # https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_CreateChangeSet.html
    assert MAX_TEMPLATE_BODY == 51_200

    def compact(template):  # no space after a comma or a colon: the smallest JSON of the template
        return json.dumps(template, separators=(",", ":"), sort_keys=True)

    def of_size(size):
        template = {"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}, "Description": ""}
        template["Description"] = "x" * (size - len(compact(template)))
        assert len(compact(template)) == size
        return template

    taken = layer_of(ENV, "alb", of_size(MAX_TEMPLATE_BODY), {}, {}, None, "alb.json", f"{ENV}/alb.json")
    assert taken.template == compact(of_size(MAX_TEMPLATE_BODY))
    # the body a template of the same content in another key order makes is the same (commands.py compares bodies)
    reordered = dict(reversed(of_size(MAX_TEMPLATE_BODY).items()))
    assert layer_of(ENV, "alb", reordered, {}, {}, None, "alb.json", f"{ENV}/alb.json").template == taken.template
    with pytest.raises(deploy.Failure) as refused:
        layer_of(ENV, "alb", of_size(MAX_TEMPLATE_BODY + 1), {}, {}, None, "alb.json", f"{ENV}/alb.json")
    assert (
        str(refused.value)
        == f"error: alb.json: {MAX_TEMPLATE_BODY + 1} bytes even compact, over the {MAX_TEMPLATE_BODY} CloudFormation takes inline"
    )
    assert refused.value.code == 2


def test_a_template_whose_indented_text_is_as_many_bytes_as_cloudformation_takes_inline_is_sent_as_output_holds_it():
    # (helper R1) `<` for `<=` in body's choice passed: the file's own text, ops' reading, up to the last byte allowed
    from scripts.deploy.layer import MAX_TEMPLATE_BODY, body, render

    template = {"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}, "Description": ""}
    template["Description"] = "x" * (MAX_TEMPLATE_BODY - len(render(template).encode()))
    assert len(render(template).encode()) == MAX_TEMPLATE_BODY
    assert body(template) == render(template)
    template["Description"] += "x"  # one byte more: one element a line, unindented
    assert body(template) == json.dumps(template, indent=0, sort_keys=True)


def test_the_diff_shows_template_parameters_and_tags_and_nothing_when_they_are_the_same():
    deployed = {
        "Parameters": [{"ParameterKey": "DomainName", "ParameterValue": "example.org"}],
        "Tags": [{"Key": "Project", "Value": "old"}],
    }
    wanted = {"DomainName": "example.com"}
    changed = SMALL_TEMPLATE | {"Resources": {"Zone": {"Type": "AWS::Route53::HostedZone", "DeletionPolicy": "Retain"}}}
    assert deploy.text.template_diff(small_layer(changed), deployed, SMALL_TEMPLATE, wanted) == [
        f"--- deployed {stack('cert-dns')}",
        f"+++ local output/cert-dns.json + parameters of output/{ENV}/cert-dns.json and the outputs it reads",
        "@@ -6,9 +6,10 @@",
        "   },",
        '   "Resources": {',
        '     "Zone": {',
        '+      "DeletionPolicy": "Retain",',
        '       "Type": "AWS::Route53::HostedZone"',
        "     }",
        "   }",
        " }",
        "-parameter DomainName=example.org",
        "-tag Project=old",
        "+parameter DomainName=example.com",
        "+tag Project=startupwebapp",
    ]
    same = {
        "Parameters": [{"ParameterKey": "DomainName", "ParameterValue": "example.com"}],
        "Tags": [{"Key": "Project", "Value": "startupwebapp"}],
    }
    assert deploy.text.template_diff(small_layer(SMALL_TEMPLATE), same, SMALL_TEMPLATE, wanted) == []
    coloured = deploy.text.template_diff(small_layer(SMALL_TEMPLATE), deployed, SMALL_TEMPLATE, wanted, colour=True)
    assert coloured[-4:] == [
        "\033[31m-parameter DomainName=example.org\033[0m",
        "\033[31m-tag Project=old\033[0m",
        "\033[32m+parameter DomainName=example.com\033[0m",
        "\033[32m+tag Project=startupwebapp\033[0m",
    ]


def test_tag_changes_list_each_tag_that_differs():
    # A deployed tag is anyone's who may tag the stack: a newline in one forged a line of the deploy's output.
    forged = "ops\nstartupwebapp-prod-alb: UPDATE_COMPLETE"
    before = {"Project": "startupwebapp", "CostCenter": "old-centre", "Owner": forged, "Owner\x1b[2J": "x"}
    layer = small_layer(SMALL_TEMPLATE, tags={"Project": "startupwebapp", "CostCenter": "web", "Team": "a"})
    assert deploy.text.tag_changes(layer, before) == [
        f"{stack('cert-dns')}: but its stack tags differ from output/{ENV}/cert-dns.json:",
        "  tag CostCenter: old-centre -> web",
        "  tag Owner: ops\\nstartupwebapp-prod-alb: UPDATE_COMPLETE -> (none)",
        "  tag Owner\\x1b[2J: x -> (none)",
        "  tag Team: (none) -> a",
    ]


def test_an_interrupted_wait_says_cloudformation_carries_on_and_how_to_follow_or_stop_it():
    assert deploy.text.interrupted(stack("alb"), ENV, "UPDATE_IN_PROGRESS", CLI) == [
        f"interrupted: CloudFormation carries on with {stack('alb')} (UPDATE_IN_PROGRESS); nothing was cancelled.",
        f"  follow it:         make status ENV={ENV}   (or: {CLI} cloudformation describe-stack-events --stack-name {stack('alb')})",
        f"  stop it:           {CLI} cloudformation cancel-update-stack --stack-name {stack('alb')}",
    ]
    assert deploy.text.interrupted(stack("alb"), ENV, "CREATE_IN_PROGRESS", CLI)[2] == (
        f"  stop it:           {CLI} cloudformation delete-stack --stack-name {stack('alb')}   (a create cannot be cancelled)"
    )
    # "in progress": an operation under way that its events have not named yet, not a final status unconfirmed
    assert deploy.text.interrupted(stack("alb"), ENV, "in progress", CLI)[0] == (
        f"interrupted: CloudFormation carries on with {stack('alb')} (in progress); nothing was cancelled."
    )


def test_a_stopped_wait_on_a_stack_not_yet_read_says_to_delete_it_as_a_create():
    # "in progress" (no DescribeStacks answer yet: a create not yet read as one) is stopped as a create is, never
    # "no operation runs" (a mutation audit: nothing pinned it)
    delete = f"{CLI} cloudformation delete-stack --stack-name {stack('alb')}   (a create cannot be cancelled)"
    assert deploy.text.interrupted(stack("alb"), ENV, "in progress", CLI)[2] == f"  stop it:           {delete}"
    stopped = deploy.text.still_in_progress(stack("alb"), ENV, "in progress", 5, [], CLI)
    assert f"  stop it:     {delete}" in stopped, stopped


@pytest.mark.parametrize("stopped_by", ["Ctrl-C", "the wait's bound", "an AWS error"])
def test_a_wait_stopped_on_the_sandbox_names_no_cancel_update_stack_which_moto_does_not_implement(aws, monkeypatch, stopped_by):
    """Pasted on the sandbox, the command was an Internal Server Error (NotImplementedError in its log)."""
    found = described("alb", "UPDATE_IN_PROGRESS")["Stacks"][0]
    run = deploy.Deployer(aws.clients.__getitem__, SANDBOX_ENV, out=io.StringIO(), err=io.StringIO(), on_aws=False)
    monkeypatch.setattr(run, "describe", lambda stack, **_: found)

    def polls(seconds):
        if stopped_by == "Ctrl-C":
            raise KeyboardInterrupt
        return iter([] if stopped_by == "the wait's bound" else [0])

    monkeypatch.setattr(run, "polls", polls)
    if stopped_by == "an AWS error":
        aws.cf.add_client_error("describe_stacks", "Throttling", "Rate exceeded", 400)
    with pytest.raises(deploy.Failure) as stopped:
        run.wait_for_stack(stack("alb"), None, operation="UPDATE")
    (said,) = [line for line in str(stopped.value).splitlines() if "stop it:" in line]
    assert said.split("stop it:")[1].strip() == (
        "nothing on the sandbox, which cannot cancel an update (moto has no CancelUpdateStack); it ends by itself"
    ), said
    # a create is deleted there as on AWS (moto's DeleteStack)
    create = deploy.text.still_in_progress(stack("alb"), ENV, "CREATE_IN_PROGRESS", 5, [], CLI, sandbox=True)
    assert f"  stop it:     {CLI} cloudformation delete-stack --stack-name {stack('alb')}   (a create cannot be cancelled)" in create


def test_names_are_said_in_words():
    # "error: ... needs a and b deployed first"
    assert [deploy.text.in_words(names) for names in (["a"], ["a", "b"], ["a", "b", "c"])] == ["a", "a and b", "a, b and c"]


def test_every_name_a_template_gives_a_resource_is_known_as_a_custom_name_or_not():
    """A create-only *Name property the layers set is a custom name (templates.CUSTOM_NAMES: CloudFormation
    cannot replace the resource under it) unless listed here with why not; a new type needs the decision."""
    from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

    not_names = {
        ("AWS::CertificateManager::Certificate", "DomainName"): "the domain certified; a new certificate may have it too",
        ("AWS::Route53::RecordSet", "Name"): "the record's DNS name, not a name of the resource's own",
    }
    found = set()
    for path in sorted((OUTPUT).glob("*.json")):
        for resource in json.loads(path.read_text())["Resources"].values():
            schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema("us-east-1", resource["Type"]).schema
            create_only = {p.rsplit("/", 1)[-1] for p in schema.get("createOnlyProperties", [])}
            found |= {(resource["Type"], name) for name in create_only & set(resource.get("Properties", {})) if name.endswith("Name")}
    assert found and found - set(not_names) <= set(templates.CUSTOM_NAMES.items()), (
        found - set(not_names) - set(templates.CUSTOM_NAMES.items())
    )


def test_a_replacement_under_the_same_custom_name_is_found_and_one_that_renames_is_not():
    def change(logical_id, replacement, *changed):
        details = [{"Target": {"Attribute": "Properties", "Name": name, "RequiresRecreation": "Always"}} for name in changed]
        return {
            "ResourceChange": {
                "Action": "Modify",
                "LogicalResourceId": logical_id,
                "ResourceType": "AWS::ElasticLoadBalancingV2::TargetGroup",
                "Replacement": replacement,
                "Details": details,
            }
        }

    named = frozenset({"TargetGroup"})
    same = {"Changes": [change("TargetGroup", "True", "Port")]}
    assert deploy.text.custom_named_replacements(same, named) == [
        "TargetGroup (AWS::ElasticLoadBalancingV2::TargetGroup, its Name unchanged)"
    ]
    assert deploy.text.custom_named_replacements({"Changes": [change("TargetGroup", "True", "Port", "Name")]}, named) == []
    assert (
        deploy.text.custom_named_replacements({"Changes": [change("TargetGroup", "Conditional", "Port")]}, named) == []
    )  # decided as it runs
    assert deploy.text.custom_named_replacements(same, frozenset()) == []  # a name CloudFormation generates
    # what may replace it is warned of, not refused; a replacement that is certain is refused, not warned of
    conditional = {"Changes": [change("TargetGroup", "Conditional", "Port")]}
    assert deploy.text.custom_named_maybe_replaced(same, named) == []
    assert deploy.text.custom_named_maybe_replaced({"Changes": [change("TargetGroup", "Conditional", "Port", "Name")]}, named) == []
    assert deploy.text.custom_named_maybe_replaced(conditional, frozenset()) == []
    warning = (
        "warning: TargetGroup (AWS::ElasticLoadBalancingV2::TargetGroup, its Name unchanged) may be replaced (Replacement Conditional, "
        "decided as the update runs); should it be, CloudFormation cannot replace it under the same name, and the update fails and rolls back"
    )
    assert deploy.text.custom_named_maybe_replaced(conditional, named) == [warning]
    layer = types.SimpleNamespace(name="alb", env=ENV, custom_named=named)  # make changeset's words on the change set it leaves
    assert deploy.text.left_for_review(conditional | {"ChangeSetName": "cs"}, layer)[-1] == f"  {warning}"


@pytest.mark.parametrize(
    "answer, said",
    [
        (
            {"clusters": [{"clusterName": "c", "settings": [{"name": "containerInsights", "value": "disabled"}]}]},
            "has Container Insights off",
        ),
        ({"clusters": [{"clusterName": "c", "settings": [{"name": "containerInsights", "value": "enhanced"}]}]}, None),
        ({"clusters": [{"clusterName": "c"}]}, None),  # no settings listed: nothing known, nothing said
        ("AccessDeniedException", "note: could not read whether cluster c has Container Insights on (AccessDeniedException); going on"),
    ],
)
def test_the_container_insights_note_before_a_change_of_the_alarms_layer(aws, answer, said):
    """Only an explicit "disabled" is said; a cluster the role may not read is a note, never a failure."""
    expected = {"clusters": ["c"], "include": ["SETTINGS"]}
    if isinstance(answer, str):
        aws.ecs.add_client_error("describe_clusters", answer, "no", 400, expected_params=expected)
    else:
        aws.ecs.add_response("describe_clusters", answer, expected)
    said_lines = []
    deployer = types.SimpleNamespace(client=aws.clients.__getitem__, say=lambda *lines: said_lines.extend(lines), cli="aws")
    layer = types.SimpleNamespace(template=(OUTPUT / "alarms.json").read_text())
    guards.say_when_container_insights_is_off(deployer, layer, {"ServiceClusterName": "c"})
    if said == "has Container Insights off":  # the note, then the command that turns it on, on a line of its own
        turn_on = "  turn it on: aws ecs update-cluster --cluster c --settings name=containerInsights,value=enabled"
        assert len(said_lines) == 2 and said in said_lines[0] and said_lines[1] == turn_on, said_lines
    elif said:
        assert len(said_lines) == 1 and said in said_lines[0], said_lines
    else:
        assert said_lines == [], said_lines


def test_a_layer_without_container_insights_alarms_asks_nothing_about_the_cluster(aws):
    deployer = types.SimpleNamespace(client=aws.clients.__getitem__, say=pytest.fail, cli="aws")
    layer = types.SimpleNamespace(template=(OUTPUT / "release-alarms.json").read_text())
    guards.say_when_container_insights_is_off(deployer, layer, {"ServiceClusterName": "c"})  # no call queued: none made


def test_an_alarms_layer_given_no_cluster_asks_nothing_about_one(aws):
    # (mutation audit) No ServiceClusterName wired (nothing read from the service layer): no cluster to ask of, nothing said.
    deployer = types.SimpleNamespace(client=aws.clients.__getitem__, say=pytest.fail, cli="aws")
    layer = types.SimpleNamespace(template=(OUTPUT / "alarms.json").read_text())
    guards.say_when_container_insights_is_off(deployer, layer, {})  # no call queued: none made


@pytest.mark.parametrize(
    "answer, said",
    [
        (
            "UPDATE_COMPLETE",
            "note: this update changed values other layers take too, whose stacks keep the old ones until deployed: alarms (MaxCapacity)",
        ),
        ("UPDATE_IN_PROGRESS", None),  # still changing: its own deploy says so
        ("UPDATE_ROLLBACK_FAILED", None),
        ("AccessDenied", "  note: whether alarms's stack still has the old MaxCapacity could not be read (AccessDenied)"),
    ],
)
@pytest.mark.parametrize("in_output", [True, False], ids=["deploy", "execute of a change set made with other values"])
def test_a_one_layer_update_of_a_shared_value_names_the_settled_layers_that_keep_the_old_one(answer, said, in_output, tmp_path):
    """advice.shared_values_to_deploy after `make deploy STACK=scaling` changed MaxCapacity, which
    the alarms layer takes too (tests/test_recreate.py runs it on the sandbox): output/ holds the new
    value for both. After `make execute` of a change set made with another value than output/ holds, a
    deploy of alarms would not give it that value, and would put scaling back: said so."""
    scaling = deploy.layer.load_layer(ENV, "scaling", OUTPUT)
    old = scaling.parameters["MaxCapacity"]
    new = str(int(old) + 1)
    output = tmp_path / "output"
    (output / ENV).mkdir(parents=True)
    for path in (OUTPUT / "alarms.json", OUTPUT / ENV / "alarms.json"):
        document = json.loads(path.read_text())
        if in_output and path.parent.name == ENV:
            document["Parameters"]["MaxCapacity"] = new  # as make templates writes it after params changed
        (output / path.relative_to(OUTPUT)).write_text(json.dumps(document))
    lines, asked = [], []

    def describe(stack, refuse_foreign=True):
        asked.append((stack, refuse_foreign))
        if answer == "AccessDenied":
            raise ClientError({"Error": {"Code": answer, "Message": "no"}}, "DescribeStacks")
        return described("alarms", answer)["Stacks"][0]  # with params' MaxCapacity, the old one

    deployer = types.SimpleNamespace(
        env=ENV,
        params_file=f"params/{ENV}.yaml",
        output_dir=output,
        run_layers=[],
        enabled_layers=list(PROD_LAYERS),
        say=lambda *said: lines.extend(said),
        describe=describe,
        foreign=lambda found: False,
    )
    deployer.settled_values = functools.partial(deploy.deployer.Deployer.settled_values, deployer)  # the real rule
    given = scaling.parameters | {"MaxCapacity": new}
    advice.shared_values_to_deploy(deployer, scaling, scaling.parameters, given)
    assert asked == [(stack("alarms"), False)]  # only the layer that takes the value, never refused as foreign
    # a new NamePrefix, shared by every layer, replaces their stateful resources too: their deploy needs ALLOW_REPLACE=1
    tail = (
        f". make deploy ENV={ENV} deploys them (the layers with nothing to change say no changes; with ALLOW_REPLACE=1 where their "
        "own change sets replace stateful resources, as a new NamePrefix does)"
    )
    if said and said.startswith("note: this update") and not in_output:
        said, tail = (
            f"note: scaling now has MaxCapacity {new}, from the change set, where {templates.relative(OUTPUT / ENV / 'scaling.json')} holds MaxCapacity {old}; "
            "other layers take the same values and keep their own until deployed: alarms (MaxCapacity)",
            f". To have the change set's everywhere, set them in params/{ENV}.yaml, make templates, then make deploy ENV={ENV}; "
            f"make deploy ENV={ENV} as things are puts scaling back to MaxCapacity {old}",
        )
    assert lines == ([said + tail] if said and said.startswith("note: ") else [said] if said else []), lines


@pytest.mark.parametrize("review", [False, True])
def test_status_of_a_layer_not_enabled_names_no_command_that_refuses_it(aws, disabled, review):
    # It said make execute ... runs one, or make deploy ... creates it: both refused for a layer not in enabled_layers.
    layer, _ = disabled
    status_reads(aws)
    ours = templates.own_tags(ENV, layer)  # no output/<env>/ file of the layer to take its values and tags from
    aws.deployed(layer, status="REVIEW_IN_PROGRESS" if review else "UPDATE_COMPLETE", parameters={"Some": "value"}, tags=ours)
    summary = {"StackId": stack_id(layer), "StackName": stack(layer), "CreationTime": NOW, "Status": "CREATE_COMPLETE"}
    listed = {"Summaries": [summary | {"ChangeSetName": cs_name(layer), "ExecutionStatus": "AVAILABLE"}]}
    aws.cf.add_response("list_change_sets", listed, {"StackName": stack(layer)})
    assert aws.run("status", "--stack", layer) == 0, aws.err
    assert "make execute" not in aws.out and "make deploy" not in aws.out, aws.out
    (last,) = [line for line in aws.out.splitlines() if line.startswith(stack(layer))]
    assert f"make destroy STACK={layer} ENV={ENV} removes it" in last, last
    assert f"change sets that could still run: {cs_name(layer)}" in last, last
    assert ("waits in a change set left for review" in last) == review, last


@pytest.mark.parametrize("listed", ["AVAILABLE", "AccessDenied"])
def test_status_names_the_change_sets_that_could_still_run(aws, listed):
    """make changeset leaves one for review (or a stopped run does): status names it, with how to run
    it; one executed or made obsolete is not named. Not allowed to list them: a note, the status stands."""
    status_reads(aws)
    aws.deployed("cert-dns")
    if listed == "AccessDenied":
        aws.cf.add_client_error("list_change_sets", "AccessDenied", "no", 403, expected_params={"StackName": stack("cert-dns")})
    else:
        summary = {"StackId": stack_id("cert-dns"), "StackName": stack("cert-dns"), "CreationTime": NOW, "Status": "CREATE_COMPLETE"}
        aws.cf.add_response(
            "list_change_sets",
            {
                "Summaries": [
                    summary | {"ChangeSetName": cs_name("cert-dns"), "ExecutionStatus": "AVAILABLE"},
                    summary | {"ChangeSetName": "older", "ExecutionStatus": "OBSOLETE"},
                ]
            },
            {"StackName": stack("cert-dns")},
        )
    assert aws.run("status", "--stack", "cert-dns") == 0, aws.err
    lines = aws.out.splitlines()
    (at,) = [n for n, line in enumerate(lines) if line.startswith(f"{stack('cert-dns'):<36} UPDATE_COMPLETE")]
    last = lines[at]
    if listed == "AVAILABLE":
        # the commands on lines of their own under the row (a new user's walkthrough: run together, the row ran to 600 characters)
        assert last.endswith(f"(change sets that could still run: {cs_name('cert-dns')} (made 2025-11-25 12:00 UTC))"), last
        assert lines[at + 1 :] == [
            f"  run one:     make execute STACK=cert-dns CHANGESET=<name> ENV={ENV}",
            f"  discard one: {CLI} cloudformation delete-change-set --stack-name {stack('cert-dns')} --change-set-name <name>",
        ], aws.out
    else:
        assert f"  note: the change sets of {stack('cert-dns')} could not be listed (AccessDenied); its line below shows none" in aws.out
        assert "could still run" not in last


# --- the release history's writes and the rollback's choice, from reviews of them ----------------------------
def landed_unanswered(ssm, value):
    ssm.versions.append(value)
    throttled_after_retries(ssm, value)


def written(ssm, value):
    ssm.versions.append(value)
    return {"Version": len(ssm.versions)}


def stop_while_closing(monkeypatch):
    """A Ctrl-C as the run's clients close: a finalizer sends it, as urllib3's pool clean-up would meet it."""
    import weakref

    close = deploy.Deployer.close

    class Pool:
        pass

    def stopped_while_closing(self):
        pool = Pool()
        weakref.finalize(pool, os.kill, os.getpid(), signal.SIGINT)
        del pool  # its finalizer runs here, as urllib3's do in close()
        close(self)

    monkeypatch.setattr(deploy.Deployer, "close", stopped_while_closing)


def too_many_updates(ssm, value):
    raise ClientError({"Error": {"Code": "TooManyUpdates"}}, "PutParameter")


# --- history.record ------------------------------------------------------------------------------


def test_a_landed_write_whose_own_trim_dropped_another_runs_entry_is_taken_for_recorded():
    # 20 releases, no redeploy; B recorded a redeploy meanwhile. This run's write merges it, then its own trim drops
    # it (the oldest redeploy goes first). The write landed (answer lost): holds([entry, *theirs]) asks for B's
    # redeploy, which this run's own write left out: "not recorded" for a release that is.
    old = [
        ENTRY_A | {"time": f"2026-01-01T00:00:{n:02d}Z", "image_tag": f"v{n}", "replaced": f"v{n - 1}"} for n in range(1, RELEASES_KEPT + 1)
    ]
    redeploy_b = ENTRY_A | {"time": "2026-01-02T00:00:00Z", "image_tag": "v20", "replaced": "v20", "by": "b"}

    def b_wrote_first(ssm, value):
        ssm.versions.append(stored(trimmed([*old, redeploy_b])))
        return written(ssm, value)

    ssm = ScriptedSsm(stored(old), b_wrote_first, landed_unanswered)
    # record() returns (it raised ThrottlingException, taken for not recorded), having written and read back what it holds
    ReleaseHistory(ssm, ENV, lambda line: None, lambda seconds: None).record(ENTRY_E)
    assert ssm.puts == [] and ENTRY_E in json.loads(ssm.versions[-1])


def test_a_history_busy_at_every_try_raises_rather_than_return_as_if_recorded():
    # RELEASE_WRITE_TRIES exhausted by TooManyUpdates: nothing of this run's was written, yet record() returned as if it
    # were (Deployer.record_release then set release_recorded: the summary said "done and recorded"). Its caller says
    # it unrecorded: test_a_release_whose_history_writes_were_all_refused_as_busy_is_not_taken_for_recorded.
    ssm = ScriptedSsm(stored([ENTRY_A]), too_many_updates, too_many_updates, too_many_updates)
    with pytest.raises(ClientError):
        ReleaseHistory(ssm, ENV, lambda line: None, lambda seconds: None).record(ENTRY_E)


def test_a_history_busy_twice_then_free_records_the_release():
    # two TooManyUpdates in a row (other runs' writes under way) used up the tries: the release was not recorded
    ssm = ScriptedSsm(stored([ENTRY_A]), too_many_updates, too_many_updates, written)
    ReleaseHistory(ssm, ENV, lambda line: None, lambda seconds: None).record(ENTRY_E)
    assert json.loads(ssm.versions[-1]) == [ENTRY_A, ENTRY_E]


def test_tries_that_kept_meeting_other_runs_writes_say_another_runs_release_may_be_missing_not_this_ones():
    other = [ENTRY_A | {"time": f"2026-01-02T00:00:0{n}Z", "image_tag": f"b{n}", "replaced": "a"} for n in range(3)]

    def another_then_ours(n):
        def put(ssm, value):
            ssm.versions.append(stored([ENTRY_A, other[n]]))
            return written(ssm, value)

        return put

    ssm, said = ScriptedSsm(stored([ENTRY_A]), *(another_then_ours(n) for n in range(3))), []
    ReleaseHistory(ssm, ENV, said.append, lambda seconds: None).record(ENTRY_E)
    assert ENTRY_E in json.loads(ssm.versions[-1])  # ours is there: b2 is what may be missing
    assert said[-1] == f"warning: the release history (SSM parameter {HISTORY}) kept changing; another run's release may be missing from it"


def test_the_versions_between_are_read_from_every_page_in_any_order():
    class Paged(ScriptedSsm):
        def get_parameter_history(self, Name, NextToken=None, **_):
            every = [{"Version": n + 1, "Value": value} for n, value in enumerate(self.versions)][::-1]
            start = int(NextToken or 0)
            page = {"Parameters": every[start : start + 2]}
            if start + 2 < len(every):
                page["NextToken"] = str(start + 2)
            return page

    values = [stored([ENTRY_A | {"image_tag": f"v{n}"}]) for n in range(1, 7)]
    ssm = Paged(values[0])
    ssm.versions = list(values)
    found = ReleaseHistory(ssm, ENV, None, None).between(1, 6)
    assert [entries[0]["image_tag"] for entries in found] == ["v2", "v3", "v4", "v5"]


def test_a_hand_edit_between_the_read_and_the_write_is_merged_as_none_and_loses_nothing():
    def hand_edit_then_ours(ssm, value):
        ssm.versions.append('{"not": "a list"}')
        return written(ssm, value)

    ssm = ScriptedSsm(stored([ENTRY_A]), hand_edit_then_ours, written)
    ReleaseHistory(ssm, ENV, lambda line: None, lambda seconds: None).record(ENTRY_E)
    assert json.loads(ssm.versions[-1]) == [ENTRY_A, ENTRY_E]


def test_versions_between_are_merged_oldest_first_keeping_the_history_in_order():
    # Mutation killer: merging the versions between newest first puts B's release after C's.
    b = ENTRY_A | {"time": "2026-01-02T00:00:00Z", "image_tag": "b", "replaced": "a"}
    c = ENTRY_A | {"time": "2026-01-02T00:00:01Z", "image_tag": "c", "replaced": "b"}

    def b_c_then_ours(ssm, value):
        ssm.versions += [stored([ENTRY_A, b]), stored([ENTRY_A, b, c])]
        return written(ssm, value)

    ssm = ScriptedSsm(stored([ENTRY_A]), b_c_then_ours, written)
    ReleaseHistory(ssm, ENV, lambda line: None, lambda seconds: None).record(ENTRY_E)
    assert json.loads(ssm.versions[-1]) == [ENTRY_A, b, c, ENTRY_E]


# --- rollback: when TAG= is asked for -------------------------------------------------------------


def rel(tag, replaced="-", rolled_back_from=None):
    """A release entry of tag: replaced (None for a stack's first; "-": no such key, as the tool wrote before it
    recorded one), and rolled_back_from for a rollback."""
    entry = release(tag) | ({} if replaced == "-" else {"replaced": replaced})
    return entry | {"rolled_back_from": rolled_back_from} if rolled_back_from else entry


def test_a_settings_change_after_a_rollback_by_tag_does_not_make_rollback_ask_for_tag():
    # v1 never released: reached by make rollback TAG=v1 from v2. Without the redeploy, make rollback goes to v0;
    # one settings change later (a redeploy of v1), it asks for TAG= saying v1's release was not recorded.
    base = [rel("v0", None), rel("v2", "v0"), rel("v1", "v2", rolled_back_from="v2")]
    assert not deploy.history.unrecorded_release_of(base, "v1") and deploy.history.previous_release(base, "v1")["image_tag"] == "v0"
    assert not deploy.history.unrecorded_release_of([*base, rel("v1", "v1")], "v1")


def test_a_release_that_records_what_it_replaced_is_rolled_back_from_despite_an_older_redeploy():
    # ... and after v3, v1 released again by make deploy TAG=v1 (recorded, replaced v3): the way back is v3, known.
    entries = [rel("v0", None), rel("v2", "v0"), rel("v1", "v2", rolled_back_from="v2"), rel("v1", "v1"), rel("v3", "v1"), rel("v1", "v3")]
    assert deploy.history.previous_release(entries, "v1")["image_tag"] == "v3"
    assert not deploy.history.unrecorded_release_of(entries, "v1")


def test_a_redeploy_after_an_unrecorded_release_refuses_the_rollback():
    # v1, then v2, then v1 again by make deploy TAG=v1 whose wait stopped (unrecorded), then a settings change (a
    # redeploy of v1, recorded). v2 ran before v1: make rollback went to v0 without a word.
    entries = [rel("v0", None), rel("v1", "v0"), rel("v2", "v1"), rel("v1", "v1")]
    assert deploy.history.previous_release(entries, "v1") is None  # the redeploy's replaced (v1) is not the image before it (v2)


# --- lock release ---------------------------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_one_stop_signal_after_the_lock_was_freed_acts_once_the_release_ends_without_a_warning(signum):
    class Ssm:
        def get_parameter(self, Name):
            return {"Parameter": {"Value": "this run's"}}

        def delete_parameter(self, Name):
            os.kill(os.getpid(), signum)  # after the delete was answered, before delete_if_held returned

    lock, said = release_stopped(Ssm(), signum)
    assert lock.value is None and "may be held" not in said, said


def test_a_release_whose_history_writes_were_all_refused_as_busy_is_not_taken_for_recorded():
    out = io.StringIO()
    deployer = deploy.Deployer(None, ENV, out=Output(out, goes_on=True), err=io.StringIO(), revision="abc1234")
    ssm = ScriptedSsm(stored([ENTRY_A]), too_many_updates, too_many_updates, too_many_updates)
    deployer.__dict__["history"] = ReleaseHistory(ssm, ENV, deployer.say, lambda seconds: None)
    deployer.caller_arn = lambda: "arn:aws:iam::123456789012:user/x"
    deployer.record_release("e", replaced="a")
    assert "e" not in [entry["image_tag"] for entry in json.loads(ssm.versions[-1])]
    assert not deployer.release_recorded, out.getvalue()
    assert "warning: the release of e is live but not recorded in the release history" in out.getvalue(), out.getvalue()


def test_another_runs_version_holding_this_runs_release_is_merged_without_it_twice():
    # This run's attempt landed as 2 (answer lost), C read it and wrote 3 with its own, botocore's retry landed as 4.
    c = ENTRY_A | {"time": "2026-01-02T00:00:00Z", "image_tag": "c", "replaced": "e"}

    def landed_c_then_retry(ssm, value):
        ssm.versions += [value, stored([*json.loads(value), c]), value]
        return {"Version": len(ssm.versions)}

    ssm = ScriptedSsm(stored([ENTRY_A]), landed_c_then_retry, written)
    ReleaseHistory(ssm, ENV, lambda line: None, lambda seconds: None).record(ENTRY_E)
    final = json.loads(ssm.versions[-1])
    assert final.count(ENTRY_E) == 1 and c in final, final


def test_a_redeploy_after_the_images_own_release_asks_for_no_tag():
    entries = [rel("v0", None), rel("v1", "v0"), rel("v1", "v1")]
    assert not deploy.history.unrecorded_release_of(entries, "v1")
    assert deploy.history.previous_release(entries, "v1")["image_tag"] == "v0"


def test_a_stop_signal_while_a_failed_runs_connections_close_keeps_its_error(aws, monkeypatch):
    aws.deployed("service", parameters=service_parameters("v1"))
    history(aws, [V0, V2])  # no release names v1: the rollback fails, asking for TAG=
    stop_while_closing(monkeypatch)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        assert aws.run("rollback", "--stack", "service") == 1, aws.err
    finally:
        signal.signal(signal.SIGINT, previous)
    assert "What ran before v1 is not known" in aws.err and "interrupted" not in aws.err, aws.err


# --- the rollback's choice in histories of both kinds, trimmed, or missing runs: from a review of it --------
# --- defect 1: a history with entries of the tool before `replaced` (no key) and entries after: KeyError
def test_a_rollback_from_an_image_whose_own_release_predates_replaced_is_no_traceback(aws):
    # v1 and v2 recorded by the tool before `replaced` (dc8bdac..bf2f007 wrote rolled_back_from, not replaced); v3 after
    # the upgrade; recorded rollbacks from v3 to v1 and from v1 to v2: v1 was rolled back from, nothing earlier
    aws.deployed("service", parameters=service_parameters("v2"))
    history(aws, [rel("v1"), rel("v2"), rel("v3", "v2"), rel("v1", "v3", rolled_back_from="v3"), rel("v2", "v1", rolled_back_from="v1")])
    assert aws.run("rollback", "--stack", "service") == 1  # HEAD: KeyError('replaced') out of deploy.main
    assert "nothing earlier to roll back to" in aws.err


def test_previous_release_of_an_own_release_without_replaced_in_a_mixed_history():
    mixed = [rel("v1"), rel("v2"), rel("v3", "v2"), rel("v2", "v3", rolled_back_from="v3")]
    assert deploy.history.previous_release(mixed, "v2")["image_tag"] == "v1"  # KeyError at HEAD; v1 before 9bdaf48 (the older rule)


# --- defect 2: trimming drops a redeploy that is the only trace of unrecorded rollbacks: a swing back
def test_trimming_keeps_a_redeploy_that_is_the_trace_of_an_unrecorded_rollback():
    old = [rel(f"a{i}", f"a{i - 1}" if i else None) for i in range(17)]
    # B released (replacing a16); a rollback to a16 unrecorded, then a16 redeployed (recorded: the trace); a rollback
    # TAG=B unrecorded (it left a16), then B redeployed twice: the 21st entry trims the oldest redeploy, a16's
    entries = [*old, rel("B", "a16"), rel("a16", "a16"), rel("B", "B"), rel("B", "B")]
    assert deploy.history.previous_release(entries, "B") is None  # the trace: what ran since B's release is not known
    kept = deploy.history.trimmed(entries)
    assert len(kept) == deploy.history.RELEASES_KEPT
    assert deploy.history.previous_release(kept, "B") is None  # HEAD: a16, which the unrecorded TAG=B rollback left


def test_trimming_drops_a_redeploy_at_the_head_first():
    # the head's redeploy of x (what ran before it trimmed already) was kept, and a later redeploy, v10's, dropped instead
    head = ENTRY_A | {"image_tag": "x", "replaced": "x"}
    releases = [ENTRY_A | {"image_tag": f"v{i}", "replaced": f"v{i - 1}"} for i in range(1, RELEASES_KEPT)]
    middle = RELEASES_KEPT // 2
    again = releases[middle - 1] | {"replaced": releases[middle - 1]["image_tag"]}  # a redeploy of the image before it
    entries = [head, *releases[:middle], again, *releases[middle:]]
    assert len(entries) == RELEASES_KEPT + 1
    assert trimmed(entries) == entries[1:]


# --- defect 3: the message of unrecorded_release_of's named-before case says a redeploy where there is none
def test_the_unknown_message_for_an_image_named_as_replaced_before_its_first_entry_says_no_redeploy(aws):
    # v1's release went unrecorded; v2 replaced it (recorded), a rollback from v2 to v1 (recorded): no redeploy anywhere
    aws.deployed("service", parameters=service_parameters("v1"))
    history(aws, [rel("v0", None), rel("v2", "v1"), rel("v1", "v2", rolled_back_from="v2")])
    assert aws.run("rollback", "--stack", "service") == 1
    assert "What ran before v1 is not known" in aws.err
    assert "though it ran: an entry before its first names it as the image it replaced or left" in aws.err, aws.err


# --- defect 4 (message): a refusal for a history cut at its start (trimmed) blames a run stopped in its wait
def test_the_refusal_of_a_trimmed_history_does_not_blame_a_stopped_run(aws):
    # the history's start was trimmed (its first entry replaced v0); v3 reached by a recorded TAG= rollback from v2
    aws.deployed("service", parameters=service_parameters("v3"))
    history(aws, [rel("v1", "v0"), rel("v2", "v1"), rel("v3", "v2", rolled_back_from="v2")])
    assert aws.run("rollback", "--stack", "service") == 1
    assert "nothing earlier to roll back to" in aws.err and "its oldest entries were trimmed" in aws.err, aws.err


# --- message: a complete history, an image reached only by rollbacks whose last one left an image released over it
def test_the_refusal_for_an_image_reached_only_by_rollbacks_does_not_say_the_history_misses_a_run(aws):
    # every run recorded: v0, v1; make rollback TAG=v3 (never released) from v1; v4 released over v3; make rollback
    # (v4 to v3, what ran before v4). v0 ran before v3 and no rollback left it; the history misses nothing.
    aws.deployed("service", parameters=service_parameters("v3"))
    history(
        aws,
        [rel("v0", None), rel("v1", "v0"), rel("v3", "v1", rolled_back_from="v1"), rel("v4", "v3"), rel("v3", "v4", rolled_back_from="v4")],
    )
    assert aws.run("rollback", "--stack", "service") == 1
    assert "nothing earlier to roll back to" in aws.err
    assert "the image was reached by rollbacks alone" in aws.err, aws.err


# ===== killing tests for mutants that survive tests/test_deploy.py -k "rollback or release or previous" (pass at HEAD)


def test_an_image_named_as_replaced_before_its_first_entry_has_an_unrecorded_release(aws):
    # kills: unrecorded_release_of without named_before (M2), naming by rolled_back_from alone (M4)
    assert deploy.history.unrecorded_release_of([rel("v0", None), rel("v2", "v1"), rel("v1", "v2", rolled_back_from="v2")], "v1")
    aws.deployed("service", parameters=service_parameters("v1"))
    history(aws, [rel("v0", None), rel("v2", "v1"), rel("v1", "v2", rolled_back_from="v2")])
    assert aws.run("rollback", "--stack", "service") == 1
    assert "What ran before v1 is not known" in aws.err  # the mutants: "nothing earlier"


def test_an_image_an_older_entry_left_has_an_unrecorded_release():
    # kills: naming by replaced alone (M3). The tool before `replaced` wrote rolled_back_from alone: v2 was left then
    # (its release not in the history), v4 released by the tool of now, a rollback from v4 to v2 recorded
    mixed = [rel("v1"), rel("v3", rolled_back_from="v2"), rel("v4", "v3"), rel("v2", "v4", rolled_back_from="v4")]
    assert deploy.history.unrecorded_release_of(mixed, "v2")


def test_a_rollback_to_the_image_after_its_release_with_a_run_between_unrecorded():
    # kills: the chain checked from one entry later (M7 chain_broken's range, M16 own[-1] + 2). v6's release went
    # unrecorded; the rollback from v6 to v5 was recorded: what ran between v5's release and now is not known
    assert (
        deploy.history.previous_release([rel("v3", None), rel("v4", "v3"), rel("v5", "v4"), rel("v5", "v6", rolled_back_from="v6")], "v5")
        is None
    )


def test_an_image_reached_by_two_rollbacks_goes_back_by_the_latest():
    # kills: the recursion from the first rollback to it (M13). v3 by TAG= from v2, then v4 and v5 released over it,
    # then TAG=v3 from v5: what ran before v5, v4; not what ran before v2
    releases = [
        rel("v1", None),
        rel("v2", "v1"),
        rel("v3", "v2", rolled_back_from="v2"),
        rel("v4", "v3"),
        rel("v5", "v4"),
        rel("v3", "v5", rolled_back_from="v5"),
    ]
    assert deploy.history.previous_release(releases, "v3")["image_tag"] == "v4"


def test_an_unrecorded_release_before_the_image_to_go_back_to_does_not_matter():
    # kills: the chain checked from the target's own entry (M16d) or from the start (M16e). v2's release went
    # unrecorded, v3 replaced it; v4; make rollback TAG=v5 (never released) from v4: back to v3, what ran before v4
    assert (
        deploy.history.previous_release([rel("v1", None), rel("v3", "v2"), rel("v4", "v3"), rel("v5", "v4", rolled_back_from="v4")], "v5")[
            "image_tag"
        ]
        == "v3"
    )


def test_the_image_to_go_back_to_is_checked_since_its_latest_entry():
    # kills: the chain checked from the target's first entry (M22). v1 back by an unrecorded rollback, redeployed
    # (recorded), v3 over it, TAG=v4 from v3: back to v1
    releases = [rel("v1", None), rel("v2", "v1"), rel("v1", "v1"), rel("v3", "v1"), rel("v4", "v3", rolled_back_from="v3")]
    assert deploy.history.previous_release(releases, "v4")["image_tag"] == "v1"


def test_a_history_of_both_kinds_goes_by_replaced_where_the_release_records_it():
    # kills: the older rule for any history with an entry lacking replaced (M20): v3's release replaced v1
    assert deploy.history.previous_release([rel("v1"), rel("v2"), rel("v3", "v1")], "v3")["image_tag"] == "v1"


def test_a_history_busy_once_then_written_each_try_is_not_said_unrecorded():
    # kills: busy not reset at each try (M24): a TooManyUpdates at the first try, then two writes that each met another
    # run's: written, with the warning that another run's release may be missing; not raised as not recorded

    a, e = rel("a", None), rel("e", "a")
    others = iter([rel("b", "a"), rel("c", "b")])

    def another_run_wrote_between(ssm, value):
        ssm.versions += [stored([*deploy.history.untrusted_json(ssm.versions[-1]), next(others)]), value]
        return {"Version": len(ssm.versions)}

    ssm, said = ScriptedSsm(stored([a]), too_many_updates, another_run_wrote_between, another_run_wrote_between), []
    ReleaseHistory(ssm, ENV, said.append, lambda seconds: None).record(e)  # HEAD: no error
    assert said[-1] == f"warning: the release history (SSM parameter {HISTORY}) kept changing; another run's release may be missing from it"


def test_a_landed_write_counts_what_it_merged_only_where_its_trim_kept_it(monkeypatch):
    # kills: the read back asking for every merged entry (M26): another run's redeploy merged in, then trimmed by this
    # run's own write (a redeploy goes first), which landed though its retry was refused

    monkeypatch.setattr(deploy.history, "RELEASES_KEPT", 3)
    a, b, c, c_again, e = rel("a", None), rel("b", "a"), rel("c", "b"), rel("c", "c"), rel("e", "c")

    def another_run_wrote_between(ssm, value):
        ssm.versions += [stored([a, b, c, c_again]), value]
        return {"Version": len(ssm.versions)}

    ssm = ScriptedSsm(stored([a, b, c]), another_run_wrote_between, landed_unanswered)
    ReleaseHistory(ssm, ENV, lambda line: None, lambda seconds: None).record(e)  # HEAD: recorded, no error
    assert deploy.history.untrusted_json(ssm.versions[-1]) == [b, c, e]


def test_a_region_the_aws_configuration_says_is_overridden_by_the_environments_with_a_note(monkeypatch, tmp_path):
    """The README: the region is params' region:, an AWS configuration that says another overridden with a note."""
    no_real_aws(monkeypatch)

    monkeypatch.delenv("AWS_DEFAULT_REGION")  # no_real_aws's: none configured unless a case sets it

    def made(**environment):
        """(the client's region, what was said) with environment set for the one run."""
        err = io.StringIO()
        with monkeypatch.context() as patched:
            for name, value in environment.items():
                patched.setenv(name, value)
            client = deploy.aws.boto_clients(REGION, err, deploy.aws.CONFIG)("cloudformation")
        return client.meta.region_name, err.getvalue()

    other = next(name for name in sorted(REGIONS) if name != REGION)
    assert made() == (REGION, "")
    said = f"note: using the environment's region {REGION} (the AWS configuration says {other})\n"
    assert made(AWS_DEFAULT_REGION=other) == (REGION, said)
    config = tmp_path / "config"
    config.write_text(f"[default]\nregion = {other}\n")
    assert made(AWS_CONFIG_FILE=str(config)) == (REGION, said)
    assert made(AWS_DEFAULT_REGION=REGION) == (REGION, "")


def test_a_rollback_header_takes_the_latest_of_two_releases_of_the_image():
    # v1 released, then v2, then v1 released again over v2, then v3: the way back from v3 is v1, as last released
    entries = [rel("v1", None), release("v2", "2025-11-21T10:00:00Z") | {"replaced": "v1"}]
    entries += [release("v1", "2025-11-22T10:00:00Z") | {"replaced": "v2"}, release("v3", "2025-11-23T10:00:00Z") | {"replaced": "v1"}]
    assert deploy.history.previous_release(entries, "v3")["time"] == "2025-11-22T10:00:00Z"


def test_a_layer_reads_the_inputs_default_only_where_its_upstream_takes_the_output_away():
    # changed (a replaced rule: a new ARN, not known before deploy) is no removal: compared with the ARN now, said in a note
    layer = deploy.load_layer(ENV, "service", OUTPUT)
    removed = deploy.diff.Compared(
        True, outputs_changed=frozenset({"ProductionListenerRuleArn"}), outputs_removed=frozenset({"ProductionListenerRuleArn"})
    )
    changed = deploy.diff.Compared(True, outputs_changed=frozenset({"ProductionListenerRuleArn"}))
    parameter = next(p for p, (up, output) in templates.wired_into("service").items() if output == "ProductionListenerRuleArn")
    assert deploy.diff.read_after_removals(layer, {"alb": removed}) == {parameter: templates.inputs.WIRED[parameter].default}
    assert deploy.diff.read_after_removals(layer, {"alb": changed}) == {}
    assert deploy.diff.outputs_read_changing(layer, {"alb": changed}) == {"alb": ["ProductionListenerRuleArn"]}


def test_a_diff_whose_look_at_production_traffic_is_refused_says_so_under_the_layer(aws):
    running = service_parameters("v1") | {"DeploymentStrategy": "BLUE_GREEN"}
    aws.deployed("service", parameters=running)
    aws.deployed("alb")
    aws.elbv2.add_client_error("describe_rules", "AccessDenied", "not authorized", 403)
    deployer = deploy.Deployer(aws.clients.__getitem__, ENV, out=io.StringIO(), err=io.StringIO())
    layer, notes = deploy.load_layer(ENV, "service", OUTPUT), []
    assert guards.traffic_reset_ahead(deployer, layer, {"DeploymentStrategy": "ROLLING"}, notes.append) is None
    assert notes == ["note: where production traffic goes could not be looked at (AccessDenied); make deploy looks again"]


def test_a_shared_value_is_not_said_kept_by_a_layer_this_run_deploys_after(tmp_path):
    """make deploy of every layer: alarms, deployed after scaling in the same run, gets the new MaxCapacity there."""
    if not {"scaling", "alarms"} <= set(PROD_LAYERS):
        pytest.skip(f"params/{ENV}.yaml does not enable both scaling and alarms, which share MaxCapacity")
    scaling = deploy.layer.load_layer(ENV, "scaling", OUTPUT)
    new = str(int(scaling.parameters["MaxCapacity"]) + 1)
    lines = []
    deployer = types.SimpleNamespace(
        env=ENV,
        params_file=f"params/{ENV}.yaml",
        output_dir=OUTPUT,
        run_layers=[deploy.layer.load_layer(ENV, name, OUTPUT) for name in PROD_LAYERS],
        enabled_layers=list(PROD_LAYERS),
        say=lambda *said: lines.extend(said),
        describe=lambda stack, refuse_foreign=True: described("alarms")["Stacks"][0],  # with params' MaxCapacity, the old one
        foreign=lambda found: False,
    )
    deployer.settled_values = functools.partial(deploy.deployer.Deployer.settled_values, deployer)
    advice.shared_values_to_deploy(deployer, scaling, scaling.parameters, scaling.parameters | {"MaxCapacity": new})
    assert lines == [], lines
    deployer.run_layers = [scaling]  # a deploy of scaling alone: alarms keeps the old value, and is said to
    # a change set's parameter without a value (UsePreviousValue; the API model leaves ParameterValue out) is unknown,
    # not changed: no "scaling now has MaxCapacity None" with a value to put back that never changed
    advice.shared_values_to_deploy(deployer, scaling, scaling.parameters, scaling.parameters | {"MaxCapacity": None})
    assert lines == [], lines
    advice.shared_values_to_deploy(deployer, scaling, scaling.parameters, scaling.parameters | {"MaxCapacity": new})
    assert any("alarms" in line for line in lines), lines


@pytest.mark.parametrize(
    "status", ["CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE", "IMPORT_COMPLETE", "IMPORT_ROLLBACK_COMPLETE"]
)
def test_an_upstream_stack_settled_in_any_updatable_state_is_read_from(aws, status):
    # A rolled-back update or an import leaves a stack that works, with its outputs: a downstream deploy goes on.
    aws.deployed("cert-dns", status=status)
    aws.deployed("alb")
    aws.empty_change_set("alb")
    assert aws.run("deploy", "--stack", "alb", "--yes") == 0, aws.err
    assert f"{stack('alb')}: no changes" in aws.out, aws.out


# --- from a mutation audit of deployer.py (now deployer.py and its parts) -----------------------------------
def test_the_image_of_a_failed_first_create_is_not_the_one_its_create_again_deploys(aws):
    # RECREATE=1 deletes the failed stack and creates it with params' ImageTag; the ECR look before
    # anything (guards.refuse_a_missing_image) and make diff asked for the failed create's image.
    service = deploy.load_layer(ENV, "service", OUTPUT)
    made = deploy.Deployer(aws.clients.__getitem__, ENV, out=io.StringIO(), err=io.StringIO())
    failed = service_parameters(service.parameters["ImageTag"] + "-failed")
    made.stacks[service.stack] = described("service", "ROLLBACK_COMPLETE", parameters=failed)["Stacks"][0]
    assert made.image_to_deploy(service) == service.parameters["ImageTag"]
    assert made.image_to_deploy(service, "v9") == "v9"


def test_an_empty_stack_under_review_that_states_values_is_created_with_its_first_task_count(aws):
    # The empty stack of a CREATE change set is not a running service, whatever values DescribeStacks shows for it.
    service = deploy.load_layer(ENV, "service", OUTPUT)
    made = deploy.Deployer(aws.clients.__getitem__, ENV, out=io.StringIO(), err=io.StringIO())
    under_review = service_parameters(service.parameters["ImageTag"])
    made.stacks[service.stack] = described("service", "REVIEW_IN_PROGRESS", parameters=under_review)["Stacks"][0]
    assert made.parameters(service, wired("service"))[KEEP_RUNNING_COUNT] == "false"


def test_a_change_set_still_pending_is_waited_for_like_one_being_computed(aws):
    # CREATE_PENDING, DescribeChangeSet's first status, was taken for a computed change set: executed before it was ready.
    alb = deploy.load_layer(ENV, "alb", OUTPUT)
    sleeps = []
    made = deploy.Deployer(aws.clients.__getitem__, ENV, out=io.StringIO(), err=io.StringIO(), sleep=sleeps.append)
    asked = {"StackName": stack("alb"), "ChangeSetName": cs_name("alb")}
    aws.cf.add_response("describe_change_set", change_set("alb", "CREATE_PENDING"), asked)
    aws.cf.add_response("describe_change_set", change_set("alb"), asked)
    assert made.wait_for_change_set(alb, cs_name("alb"))["Status"] == "CREATE_COMPLETE"
    assert sleeps == [waiting.POLL_START]


def test_an_execution_token_of_the_longest_length_allowed_names_the_change_set():
    longest = "n" * (128 - len("execute-"))
    assert deployer.Deployer.execution_token(longest) == f"execute-{longest}"
    longer = deployer.Deployer.execution_token(longest + "n")
    assert longer.startswith("execute-") and len(longer) <= 128 and longest not in longer


def test_the_execute_command_after_an_unanswered_execution_carries_allow_traffic_reset_too(aws):
    made = deploy.Deployer(aws.clients.__getitem__, ENV, out=io.StringIO(), err=io.StringIO(), allow_traffic_reset=True)
    assert made.switches_given() == " ALLOW_TRAFFIC_RESET=1"
    made.allowed_replace = True
    assert made.switches_given() == " ALLOW_REPLACE=1 ALLOW_TRAFFIC_RESET=1"


def test_a_rollback_to_the_image_that_runs_says_how_to_roll_back_from_it_if_its_run_cannot_tell_it_ran(aws):
    # A rollback from v2 that finds v1 running (CloudFormation undid v2's release) is recorded as a rollback:
    # unrecorded, a later rollback would go back to v2.
    made = deploy.Deployer(aws.clients.__getitem__, ENV, out=io.StringIO(), err=io.StringIO())
    made.rolling_back_from = "v2"
    assert made.unrecorded_if_it_runs("v1", "v1") == deploy_text.release_not_recorded("v1", ENV, made.history.name, "v2", "v1")
    made.rolling_back_from = None
    assert made.unrecorded_if_it_runs("v1", "v1") == ""


def test_end_of_input_at_a_question_is_no(aws):
    # Ctrl-D (or a closed stdin) at "[y/N]" goes on as nothing was typed: the default, no.
    aws.caller()  # the account the question names
    made = deploy.Deployer(
        aws.clients.__getitem__, ENV, out=io.StringIO(), err=io.StringIO(), ask=aws.answering(EOFError()), interactive=True
    )
    with pytest.raises(deploy.Failure) as failure:
        made.confirm(f"execute {cs_name('alb')} on {stack('alb')}? [y/N] ", "nothing changed", "execute")
    assert str(failure.value) == f"error: {deploy_text.declined(deploy_text.NOT_CONFIRMED, 'nothing changed', 'execute')}"


def test_a_change_set_on_an_empty_stack_under_review_names_the_change_sets_it_ends(aws):
    # The stack a make changeset of a first create left holds that change set: running another one ends it.
    layer = deploy.load_layer(ENV, "cert-dns", OUTPUT)
    out = io.StringIO()
    made = deploy.Deployer(aws.clients.__getitem__, ENV, out=out, err=io.StringIO())
    aws.deployed("cert-dns", status="REVIEW_IN_PROGRESS")
    made.describe(layer.stack)
    aws.listed_change_sets("cert-dns", waiting=["reviewed-earlier"])
    made.say_waiting_change_sets(layer, change_set("cert-dns"))
    assert out.getvalue() == (
        f"  note: running this change set ends the other change sets of {stack('cert-dns')}, left for review or by a stopped run: "
        "reviewed-earlier (made 2025-11-25 11:00 UTC)\n"
    )


def test_a_destroy_whose_call_to_turn_protection_off_answered_a_retry_with_an_error_says_it_may_be_off(aws):
    # The error answered a retry: the first attempt, its answer lost, may have turned it off (aws.may_have_landed).
    service_destroy_requested(aws, deleted=False, protection="answered a retry with an error")
    aws.cf.add_client_error("update_termination_protection", "InternalFailure", "try again", 500, response_meta={"RetryAttempts": 1})
    assert aws.run("destroy", "--stack", "service", "--yes") == 1
    assert [line for line in aws.out.splitlines() if "termination protection off" in line] == [
        f"note: {stack('service')} may have its termination protection off, asked off by this run to delete it: "
        f"make deploy STACK=service ENV={ENV} turns it back on, if it is to stay"
    ], aws.out


def test_a_destroy_of_a_failed_first_create_stopped_while_it_is_deleted_names_no_purge(aws):
    # Its rollback deleted what it made (RetainExceptOnCreate): the stack may be gone, and nothing with it is left to free.
    service_destroy_requested(aws, resource_status="DELETE_COMPLETE")
    interrupted_after(aws, "DeleteStack")
    assert aws.run("destroy", "--stack", "service", "--yes") == 130
    assert "make purge" not in aws.out, aws.out


def test_an_execute_whose_retries_found_the_sandbox_gone_advises_no_make_execute(aws):
    # The first attempt unanswered, the retries refused: the server is gone, and the change set with it.
    layer = deploy.load_layer(ENV, "cert-dns", OUTPUT)
    made = deploy.Deployer(aws.clients.__getitem__, SANDBOX_ENV, out=io.StringIO(), err=io.StringIO())
    requests_of(aws, "ExecuteChangeSet", raising=EndpointConnectionError(endpoint_url="http://127.0.0.1:9"))
    with pytest.raises(EndpointConnectionError):
        made.start_execution(layer, change_set("cert-dns"), NOW)


def test_a_tags_update_whose_request_found_the_sandbox_gone_says_no_update_may_have_started(aws):
    # (mutation audit) As an execute's (above): the sandbox's server is gone, and its stacks with it; "it may have started
    # ... make status says; the same command again" would send the operator after an update that cannot be.
    layer = deploy.load_layer(ENV, "cert-dns", OUTPUT)
    made = deploy.Deployer(aws.clients.__getitem__, SANDBOX_ENV, out=io.StringIO(), err=io.StringIO(), yes=True)
    found = described("cert-dns", tags=configuration(ENV, "cert-dns")["Tags"] | {"Retired": "old"})["Stacks"][0]
    made.stacks[layer.stack] = found
    aws.cf.add_response("list_change_sets", {"Summaries": []}, {"StackName": stack("cert-dns")})
    requests_of(aws, "UpdateStack", raising=EndpointConnectionError(endpoint_url="http://127.0.0.1:9"))
    with pytest.raises(EndpointConnectionError):
        made.update_tags(layer, found)


def test_a_wait_for_an_operation_under_way_before_a_deploy_is_bounded_by_the_layers_values_too(aws, monkeypatch):
    # DescribeStacks may show a running update's old values: the wait takes the longer of theirs and output/'s (wait_for_stack).
    service = deploy.load_layer(ENV, "service", OUTPUT)
    made = deploy.Deployer(aws.clients.__getitem__, ENV, out=io.StringIO(), err=io.StringIO())
    made.stacks[service.stack] = described("service", "UPDATE_IN_PROGRESS")["Stacks"][0]
    waits = []

    def waited(stack, token, **kwargs):
        waits.append(kwargs)
        made.stacks[stack] = described("service")["Stacks"][0]
        return made.stacks[stack]

    monkeypatch.setattr(made, "wait_for_stack", waited)
    assert made.ready(service) is True
    assert waits == [{"started": None, "configured": service.parameters, "whole": False}]  # an update's: its events from now


def test_a_service_update_a_rollback_trigger_undid_says_why_its_tasks_stopped(aws, monkeypatch):
    # No resource failed (an alarm fired, or ECS's circuit breaker): the stopped tasks are what tells why.
    service = deploy.load_layer(ENV, "service", OUTPUT)
    out = io.StringIO()
    made = deploy.Deployer(aws.clients.__getitem__, ENV, out=out, err=io.StringIO())
    monkeypatch.setattr(logs, "stopped_tasks", lambda deployer, found: ["stopped tasks of the service: (listed)"])
    made.events = []  # none failed
    with pytest.raises(deploy.Failure):
        made.finish(service, described("service", "UPDATE_ROLLBACK_COMPLETE")["Stacks"][0])
    assert "stopped tasks of the service: (listed)" in out.getvalue().splitlines(), out.getvalue()


@pytest.mark.parametrize("code", ["AccessDenied", "Throttling"])
def test_status_does_not_call_an_untagged_stack_under_review_someone_elses_when_its_change_sets_cannot_be_listed(aws, code):
    # make status only reads: a stack whose change sets it could not list is not known to be someone else's. It said
    # "(not made by this tool: it lacks the tags its stacks carry ...)" and dropped the error and the review note.
    status_reads(aws)
    for layer in templates.layer_order():
        if layer == "cert-dns":
            aws.deployed(layer, status="REVIEW_IN_PROGRESS", protected=False, tags={})
        else:
            aws.not_deployed(layer)
    aws.cf.add_client_error("list_change_sets", code, "no", 400, expected_params={"StackName": stack_id("cert-dns")})
    aws.cf.add_client_error("list_change_sets", code, "no", 400, expected_params={"StackName": stack("cert-dns")})  # its own look
    assert aws.run("status") == 0, aws.err
    (line,) = [line for line in aws.out.splitlines() if line.startswith(stack("cert-dns"))]
    assert "(not made by this tool" not in line and "(not deployed: its first create waits in a change set" in line, line
    assert f"note: the change sets of {stack('cert-dns')} could not be listed ({code})" in aws.out, aws.out


@pytest.mark.parametrize(
    "value, deployed_values, new_values",
    [
        # an Fn::If whose condition flips between two reads of one resource: its ARN (Ref) becomes its name (GetAtt)
        (
            {"Fn::If": ["ShiftsTraffic", {"Fn::GetAtt": ["AlertTopic", "TopicName"]}, {"Ref": "AlertTopic"}]},
            {"DeploymentStrategy": "ROLLING"},
            {"DeploymentStrategy": "CANARY"},
        ),
        # an Fn::If in an Fn::Sub's variables whose condition flips: the other alarm's name
        (
            {"Fn::Sub": ["${Name}", {"Name": {"Fn::If": ["ShiftsTraffic", {"Ref": "Target5xxAlarm"}, {"Ref": "UnhealthyHostsAlarm"}]}}]},
            {"DeploymentStrategy": "ROLLING"},
            {"DeploymentStrategy": "CANARY"},
        ),
        # a resource's id joined with a parameter whose value changes (the resource kept)
        (
            {"Fn::Join": [":", [{"Ref": "AlertTopic"}, {"Ref": "RollbackMonitoringMinutes"}]]},
            {"RollbackMonitoringMinutes": "5"},
            {"RollbackMonitoringMinutes": "10"},
        ),
    ],
)
def test_diffs_look_ahead_counts_an_output_that_reads_a_kept_resource_changed_when_what_else_it_reads_changes(
    value, deployed_values, new_values
):
    # make diff said the readers of such an output "same as deployed", and the deploy updated them
    loaded = deploy.layer.load_layer(ENV, "release-alarms", OUTPUT)
    values = parameters(ENV, "release-alarms") | wired("release-alarms") | deploy_time("release-alarms")
    client = types.SimpleNamespace(cf=types.SimpleNamespace(meta=types.SimpleNamespace(region_name=REGION)))
    template = json.loads(loaded.template)
    template["Outputs"]["Made"] = {"Value": value}
    layer = dataclasses.replace(loaded, template=json.dumps(template))
    changed, removed = guards.outputs_changed_ahead(client, layer, template, values | deployed_values, values | new_values)
    assert "Made" in changed and not removed, changed


@pytest.mark.parametrize("code", ["Throttling", "ChangeSetNotFound"])
def test_a_change_set_that_could_not_be_read_is_not_said_to_be_someone_elses(aws, code):
    # A throttled DescribeChangeSet, or a change set deleted between ListChangeSets and DescribeChangeSet, refused the
    # deploy as "with change sets this tool did not make ... Remove them, or the stack, yourself once their owner agrees":
    # no change set was found to be anyone else's, and nobody owns a read error.
    ours = change_set("cert-dns")
    aws.deployed("cert-dns", status="REVIEW_IN_PROGRESS", protected=False, tags={})
    summary = {key: ours[key] for key in ("ChangeSetName", "ChangeSetId", "StackId", "StackName", "ExecutionStatus", "Status")}
    aws.cf.add_response("list_change_sets", {"Summaries": [summary | {"CreationTime": NOW}]}, {"StackName": stack_id("cert-dns")})
    aws.cf.add_client_error("describe_change_set", code, "no", 400, expected_params={"ChangeSetName": ours["ChangeSetId"]})
    if code == "ChangeSetNotFound":  # deleted since it was listed: no one's, and the stack is taken as ours
        aws.change_set("cert-dns", "CREATE", CERT_CHANGES, left=True)
    code_run = aws.run("changeset", "--stack", "cert-dns")
    assert "with change sets this tool did not make" not in aws.err and "once their owner agrees" not in aws.err, aws.err
    if code == "ChangeSetNotFound":
        assert code_run == 0 and f"CHANGESET={cs_name('cert-dns')}" in aws.out, aws.err
    else:  # not known whose it is: a command that would change it stops, and says to run it again
        assert code_run == 1 and f"they could not be read ({code}); nothing changed. Run this again" in aws.err, aws.err


def test_a_merge_keeps_what_this_run_read_before_another_runs_entries():
    # Another run's version in between lacked the oldest entry this run read (a hand edit, or its own trim): merged
    # after theirs, that entry was written as the newest, and make rollback read what ran in the wrong order.
    other = {"time": "2026-01-02T00:00:00Z", "image_tag": "b", "revision": "r", "by": "y", "replaced": "a"}

    def another_run_wrote_between(ssm, value):  # version 2 the other run's, version 3 this one's: a merge follows
        ssm.versions += [stored([other]), value]
        return {"Version": 3}

    ssm, said = ScriptedSsm(stored([ENTRY_A]), another_run_wrote_between, written), []
    ReleaseHistory(ssm, ENV, said.append, lambda seconds: None).record(ENTRY_E)
    assert json.loads(ssm.versions[-1]) == [ENTRY_A, other, ENTRY_E], said


def test_a_first_create_whose_change_sets_cannot_be_listed_goes_on_with_a_note_as_an_update_does(aws):
    # The look for another CREATE change set on the stack a create's made (say_waiting_change_sets) ended the run when
    # ListChangeSets was refused; and the clean-up, unable to list them either, said to delete the stack all the same.
    aws.not_deployed("cert-dns")
    aws.change_set("cert-dns", "CREATE", CERT_CHANGES, left=True)  # made and described; its listing is below
    aws.caller()  # the account YES=1's question names
    aws.cf.add_client_error("list_change_sets", "AccessDenied", "not allowed", 403, expected_params={"StackName": stack_id("cert-dns")})
    aws.cf.add_client_error("execute_change_set", "InvalidChangeSetStatus", "not now", 400)  # went on to run it
    aws.cf.add_response("delete_change_set", {}, {"StackName": stack("cert-dns"), "ChangeSetName": cs_name("cert-dns")})
    aws.cf.add_client_error("list_change_sets", "AccessDenied", "not allowed", 403, expected_params={"StackName": stack_id("cert-dns")})
    assert aws.run("deploy", "--stack", "cert-dns", "--yes") == 1
    assert "InvalidChangeSetStatus" in aws.err, aws.err
    assert f"note: the change sets of {stack('cert-dns')} could not be listed (AccessDenied); any other ends" in aws.out, aws.out
    assert f"stack {stack('cert-dns')} left as it is: its change sets could not be listed (AccessDenied) to tell" in aws.out, aws.out


def test_a_change_set_listed_without_a_name_is_another_not_a_traceback_in_the_clean_up(aws):
    # ChangeSetSummary.ChangeSetName is optional in the API model: a KeyError took the decline's message's place
    aws.not_deployed("cert-dns")
    aws.change_set("cert-dns", "CREATE", CERT_CHANGES, left=True)  # declined (no terminal): it never runs
    aws.cf.add_response("delete_change_set", {}, {"StackName": stack("cert-dns"), "ChangeSetName": cs_name("cert-dns")})
    aws.cf.add_response(
        "list_change_sets",
        {"Summaries": [{"StackName": stack("cert-dns"), "ExecutionStatus": "AVAILABLE"}]},
        {"StackName": stack_id("cert-dns")},
    )
    assert aws.run("deploy", "--stack", "cert-dns") == 1
    assert "no terminal to ask on and no YES=1 (--yes): nothing changed" in aws.err and "KeyError" not in aws.err, aws.err
    assert f"stack {stack('cert-dns')} left as it is: it holds change sets this run did not make ((unnamed))" in aws.out, aws.out


def test_a_change_set_listed_without_a_name_is_named_also_when_no_change_set_is_left_out():
    """status and destroy call change_sets_for_review without but=: an unnamed AVAILABLE one must still be said."""
    client = SESSION.client("cloudformation", config=deploy.CONFIG)
    stubber = Stubber(client)
    summaries = [{"ExecutionStatus": "AVAILABLE"}, {"ChangeSetName": "timeless", "ExecutionStatus": "AVAILABLE"}]
    stubber.add_response("list_change_sets", {"Summaries": summaries}, {"StackName": stack("alb")})
    stubber.activate()
    run = types.SimpleNamespace(cf=client, say=print)
    assert deployer.Deployer.change_sets_for_review(run, stack("alb"), "its line shows none") == "(unnamed), timeless"


def test_a_list_change_sets_page_without_summaries_is_no_key_error():
    """Summaries is optional in ListChangeSets' model, as ChangeSetSummary's fields are."""
    client = SESSION.client("cloudformation", config=deploy.CONFIG)
    stubber = Stubber(client)
    stubber.add_response("list_change_sets", {}, {"StackName": stack("alb")})
    stubber.activate()
    run = types.SimpleNamespace(cf=client, say=print)
    assert deployer.Deployer.change_sets_for_review(run, stack("alb"), "its line shows none") == ""


def test_change_sets_being_made_are_listed_but_the_one_left_out():
    # (whole-change reread) `but` left out the run's own change set from those made only, not from those being made
    client = SESSION.client("cloudformation", config=deploy.CONFIG)
    stubber = Stubber(client)
    summaries = [
        {"ChangeSetName": name, "ExecutionStatus": "UNAVAILABLE", "Status": "CREATE_IN_PROGRESS", "CreationTime": NOW}
        for name in ("this-runs", "anothers")
    ]
    stubber.add_response("list_change_sets", {"Summaries": summaries}, {"StackName": stack("alb")})
    run = types.SimpleNamespace(cf=client, say=print)
    with stubber:
        listed = deployer.Deployer.change_sets_for_review(run, stack("alb"), "", but="this-runs", being_made=True)
    stubber.assert_no_pending_responses()
    assert listed == f"anothers (being made, since {NOW:%Y-%m-%d %H:%M %Z})", listed


def test_an_output_without_output_key_is_shown_as_such_and_read_by_no_one():
    """OutputKey is as optional as OutputValue in DescribeStacks' model (Output has no required member)."""
    found = {"Outputs": [{"OutputValue": "v"}, {"OutputKey": "A", "OutputValue": "a"}]}
    assert deploy.text.outputs(found) == ["  (no key) = v", "  A = a"]
    assert deploy.text.output_values(found) == {"A": "a"}


# --- a half-deleted layer's way on: the image the service runs, as TAG= (Deployer.running_image_tag) -------------------
def service_running(image):
    """The service stack's parameters as deployed, its ImageTag image (set by hand, it may be anything)."""
    return (
        configuration(ENV, "service")["Parameters"]
        | stubbed_aws.wired("service")
        | stubbed_aws.deploy_time("service")
        | {"ImageTag": image}
    )


UNREAD_IMAGE = " TAG=<the image the service runs>"


@pytest.mark.parametrize("image", ["v1 v2", "v1;touch /tmp/x", "$(id)", "-x", ".hidden", "v1\x1b]0;owned\x07\nerror: forged"])
def test_a_running_image_that_is_no_image_tag_is_not_printed_into_the_command(aws, image):
    # a stack's values may hold anything set by hand (the sandbox checks no AllowedPattern): pasted, it ran in the shell
    aws.deployed("cert-dns", status="DELETE_FAILED")
    aws.deployed("service", parameters=service_running(image))
    assert aws.run("deploy", "--stack", "alb", "--yes") == 1
    assert aws.err.endswith(UNREAD_IMAGE + "\n") and "\x1b" not in aws.err and "\nerror: forged" not in aws.err, aws.err


def test_a_half_deleted_service_names_the_image_it_runs_too(aws):
    # its own destroy order is the layers that read it, then it: deployed again, it would release params' ImageTag
    assert templates.destroy_order("service") != ["service"]
    aws.deployed("service", status="DELETE_FAILED", parameters=service_running("running-one"))
    assert aws.run("drift", "--stack", "service") == 2
    assert f"then make deploy ENV={ENV} TAG=running-one" in aws.out, aws.out + aws.err


def test_a_service_stack_that_cannot_be_read_leaves_the_tag_to_give(aws):
    aws.deployed("cert-dns", status="DELETE_FAILED")
    aws.cf.add_client_error("describe_stacks", "AccessDenied", "denied", 403)
    assert aws.run("deploy", "--stack", "alb", "--yes") == 1
    assert aws.err.endswith(UNREAD_IMAGE + "\n"), aws.err


@pytest.mark.parametrize("command, code", [("diff", 1), ("drift", 2)])
def test_diff_and_drift_of_a_half_deleted_layer_name_the_running_image(aws, command, code):
    aws.deployed("release-alarms", status="DELETE_FAILED", protected=False, with_outputs=False)
    aws.deployed("service", parameters=service_running("running-one"))
    if command == "diff":
        aws.upstream_deployed("release-alarms")
    assert aws.run(command, "--stack", "release-alarms") == code, aws.out + aws.err
    assert f"then make deploy ENV={ENV} TAG=running-one" in aws.out, aws.out + aws.err


@pytest.mark.parametrize("running", ["someone else's", "ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "ROLLBACK_IN_PROGRESS"])
def test_a_service_stack_that_runs_nothing_of_ours_gives_no_tag(aws, running):
    aws.deployed("cert-dns", status="DELETE_FAILED")
    if running == "someone else's":
        aws.deployed("service", tags={"Owner": "them"}, parameters=service_running("their-image"))
    else:  # a failed first create, rolled back or rolling back
        aws.deployed("service", status=running, with_outputs=False, parameters=service_running("never-ran"))
    assert aws.run("deploy", "--stack", "alb", "--yes") == 1
    assert aws.err.endswith(f"then make deploy ENV={ENV}\n"), aws.err


@pytest.mark.parametrize("layer", ["waf", "scaling", "alarms"])
def test_a_half_deleted_layer_no_other_reads_is_said_to_be_deployed_again_too(layer):
    # Its way on, like every other half-deleted layer's, ends with the deploy that creates it again: "make destroy
    # STACK=<layer> ENV=... again" alone left the deploy that was refused unsaid.
    assert templates.destroy_order(layer) == [layer]
    said = deploy.text.way_out(ENV, layer, "DELETE_FAILED")
    assert said.endswith(f"free them, then make destroy STACK={layer} ENV={ENV}, then make deploy STACK={layer} ENV={ENV}"), said


# --- boundaries and advice a mutation audit of scripts/deploy/deployer.py (now it and its parts) found untested


def test_an_event_stamped_the_instant_the_operation_started_is_of_it():
    # "one from started on": an event without a token at the very start is the operation's, not an earlier one's
    from scripts.deploy.waiting import of_the_operation

    assert of_the_operation({"Timestamp": NOW}, (), NOW)
    assert not of_the_operation({"Timestamp": NOW - timedelta(milliseconds=1)}, (), NOW)


def test_a_linear_release_of_one_whole_step_is_waited_for_as_its_values_say():
    # LinearStepPercent 100 is a value CloudFormation takes (1 to 100): its release is not one set by hand
    from scripts.deploy.waiting import stated_release_wait_minutes
    from templates.common import MOST_RELEASE_WAIT_MINUTES

    values = configuration(ENV, "service")["Parameters"] | {"DeploymentStrategy": "LINEAR", "LinearStepPercent": "100"}
    # one shift of all the traffic, the last, so no step bake: the release's bake and, at most, the pause for tests
    expected = int(values["BakeTimeMinutes"]) + int(values["TestPauseMinutes"])
    assert expected < MOST_RELEASE_WAIT_MINUTES
    assert stated_release_wait_minutes(values) == expected
    assert stated_release_wait_minutes(values | {"LinearStepPercent": "100.5"}) == MOST_RELEASE_WAIT_MINUTES


def reading_release_alarms(aws, **changed):
    """A Deployer whose DescribeStacks of the release-alarms stack answers with outputs changed: name=function of the value."""
    alarms = described("release-alarms")
    for output in alarms["Stacks"][0]["Outputs"]:
        if output["OutputKey"] in changed:
            output["OutputValue"] = changed[output["OutputKey"]](output["OutputValue"])
    aws.cf.add_response("describe_stacks", alarms, {"StackName": stack("release-alarms")})
    return deploy.Deployer(aws.clients, ENV, out=io.StringIO(), err=io.StringIO(), output_dir=OUTPUT)


def test_rollback_monitoring_minutes_the_alarms_stack_states_at_cloudformations_most_are_taken(aws):
    # (mutation audit) The most MonitoringTimeInMinutes takes (templates/common.py): a release is watched that long, not
    # refused as what the release-alarms stack's template never makes (one more is: tested above).
    from templates.common import MOST_MONITORING_MINUTES

    deployer = reading_release_alarms(aws, RollbackMonitoringMinutes=lambda _: str(MOST_MONITORING_MINUTES))
    configured = deployer.rollback_configuration(deploy.load_layer(ENV, "service", OUTPUT))["RollbackConfiguration"]
    assert configured["MonitoringTimeInMinutes"] == MOST_MONITORING_MINUTES, configured


def test_a_release_alarms_stack_that_states_no_monitoring_minutes_is_watched_none_after_the_release(aws):
    # (mutation audit) An alarms stack without the minutes output (made before it had one): its alarms are watched during
    # the release and 0 minutes after, CloudFormation's own default, not some other number the run made up.
    upstream, arns, minutes = templates.ROLLBACK_TRIGGERS["service"]
    alarms = described(upstream)
    alarms["Stacks"][0]["Outputs"] = [output for output in alarms["Stacks"][0]["Outputs"] if output["OutputKey"] != minutes]
    aws.cf.add_response("describe_stacks", alarms, {"StackName": stack(upstream)})
    deployer = deploy.Deployer(aws.clients, ENV, out=io.StringIO(), err=io.StringIO(), output_dir=OUTPUT)
    configured = deployer.rollback_configuration(deploy.load_layer(ENV, "service", OUTPUT))["RollbackConfiguration"]
    assert configured["MonitoringTimeInMinutes"] == 0, configured
    assert sorted(trigger["Arn"] for trigger in configured["RollbackTriggers"]) == sorted(outputs(upstream)[arns].split(","))


def test_rollback_monitoring_minutes_the_alarms_stack_states_as_a_fraction_are_rounded_up(aws):
    # A Number CloudFormation takes (9.5) is watched at least that long: rounded down, the alarms' watch ended early.
    deployer = reading_release_alarms(aws, RollbackMonitoringMinutes=lambda _: "9.5")
    configured = deployer.rollback_configuration(deploy.load_layer(ENV, "service", OUTPUT))["RollbackConfiguration"]
    assert configured["MonitoringTimeInMinutes"] == 10, configured
    assert sorted(trigger["Arn"] for trigger in configured["RollbackTriggers"]) == sorted(OUTPUT_VALUES["RollbackAlarmArns"].split(","))


@pytest.mark.parametrize("layer", [name for name in PROD_LAYERS if name != "service"])
def test_a_command_printed_for_another_layer_than_the_service_carries_no_tag(layer):
    # make deploy ENV=prod TAG=v9 of every layer: STACK=<not service> TAG=v9 is refused ("STACK=... has none")
    deployer = deploy.Deployer(None, ENV, out=io.StringIO(), err=io.StringIO(), image_tag="v9")
    assert deployer.service_tag(layer) == ""
    assert "TAG=" not in deployer.way_out(layer, "ROLLBACK_COMPLETE"), deployer.way_out(layer, "ROLLBACK_COMPLETE")
    assert deployer.service_tag("service") == " TAG=v9"


@pytest.mark.parametrize("status", ["ROLLBACK_COMPLETE", "UPDATE_ROLLBACK_FAILED", "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS"])
def test_a_way_on_that_destroys_nothing_reads_no_template_in_output(monkeypatch, status):
    # (mutation audit) Deployer.way_out reads output/ (purge.keep_names) only for the ways on that destroy the stack
    deployer = deploy.Deployer(None, ENV, out=io.StringIO(), err=io.StringIO())

    def unread(destroyed):
        raise AssertionError(f"output/ read for {status}: {destroyed}")

    monkeypatch.setattr(deployer, "purge_first", unread)
    assert deployer.way_out("cert-dns", status)


def test_make_execute_of_a_change_set_given_an_empty_trigger_list_is_followed_as_a_repair_whatever_its_description(aws, monkeypatch):
    # An empty list (made by hand, or a repair whose description was edited) is a repair's: what follows its
    # execution (the settling of a new service) must not send the release alarms again, which would undo it.
    made = change_set("service", parameters=service_parameters("v2")) | {
        "RollbackConfiguration": {"RollbackTriggers": [], "MonitoringTimeInMinutes": 0}
    }
    assert "repair" not in made["Description"]
    aws.cf.add_response("describe_change_set", made, {"StackName": stack("service"), "ChangeSetName": cs_name("service")})
    aws.deployed("service", parameters=service_parameters("v1"))
    waits, settling = executed_until_its_wait(aws, monkeypatch)
    assert waits[0]["monitoring"] == 0, waits
    assert settling == [{"RollbackConfiguration": {"RollbackTriggers": [], "MonitoringTimeInMinutes": 0}}], settling


def test_release_alarm_arns_stated_with_an_empty_item_are_read_without_it(aws):
    # "a,b," is the same two alarms (an empty item is no alarm): refusing it stopped every release over a comma.
    deployer = reading_release_alarms(aws, RollbackAlarmArns=lambda arns: arns + ",")
    assert deployer.rollback_configuration(deploy.load_layer(ENV, "service", OUTPUT)) == rollback_configuration("service")


def test_a_create_into_our_own_stack_under_review_is_not_taken_for_one_made_meanwhile(aws, monkeypatch):
    # The stack was REVIEW_IN_PROGRESS when the run began (a make changeset's, whose change set it may still hold):
    # the change set runs into it, as make deploy says (say_waiting_change_sets), not refused as another's.
    layer = deploy.load_layer(ENV, "cert-dns", OUTPUT)
    made = deploy.Deployer(aws.clients.__getitem__, ENV, out=io.StringIO(), err=io.StringIO())
    aws.deployed("cert-dns", status="REVIEW_IN_PROGRESS")
    made.describe(layer.stack)
    monkeypatch.setattr(made, "allow", lambda *args: None)
    started = []

    def start_execution(*args, **kwargs):
        started.append(args)
        raise deploy.change_sets.ChangeSetKept("stopped by the test")

    monkeypatch.setattr(made, "start_execution", start_execution)
    with pytest.raises(deploy.change_sets.ChangeSetKept):
        made.execute(layer, change_set("cert-dns"), exists=False)
    assert len(started) == 1  # and no ListChangeSets: the stubbed fixture fails on one


def test_a_service_update_whose_service_failed_with_other_resources_says_why_its_tasks_stopped(aws, monkeypatch):
    # The service among the failed resources (its circuit breaker, say): the stopped tasks tell why, as when it fails alone.
    service = deploy.load_layer(ENV, "service", OUTPUT)
    out = io.StringIO()
    made = deploy.Deployer(aws.clients.__getitem__, ENV, out=out, err=io.StringIO())
    monkeypatch.setattr(logs, "stopped_tasks", lambda deployer, found: ["stopped tasks of the service: (listed)"])
    made.events = [
        event("service", "Service", "UPDATE_FAILED", 5, kind="AWS::ECS::Service", reason="circuit breaker"),
        event("service", "TaskRole", "UPDATE_FAILED", 6, kind="AWS::IAM::Role", reason="Resource update cancelled"),
    ]
    with pytest.raises(deploy.Failure):
        made.finish(service, described("service", "UPDATE_ROLLBACK_COMPLETE")["Stacks"][0])
    assert "stopped tasks of the service: (listed)" in out.getvalue().splitlines(), out.getvalue()


def test_a_destroy_that_leaves_a_hosted_zone_says_how_to_deploy_with_it_again(aws, monkeypatch):
    # The retained zone holds the delegation: a deploy without its id makes another zone, with other name servers.
    made = deploy.Deployer(aws.clients.__getitem__, ENV, out=io.StringIO(), err=io.StringIO())
    aws.deployed("cert-dns")
    monkeypatch.setattr(made, "retained", lambda stack: {"HostedZone": "AWS::Route53::HostedZone"})
    resource = {"LogicalResourceId": "HostedZone", "PhysicalResourceId": ZONE, "ResourceType": "AWS::Route53::HostedZone"}
    resource |= {"ResourceStatus": "CREATE_COMPLETE", "Timestamp": NOW, "StackName": stack("cert-dns")}
    aws.cf.add_response("describe_stack_resources", {"StackResources": [resource]}, {"StackName": stack("cert-dns")})
    deleted = []
    monkeypatch.setattr(made, "delete", lambda stack, retains=False: deleted.append((stack, retains)))
    monkeypatch.setattr(purge, "say_retained", lambda deployer, keep, ids: True)
    made.destroy("cert-dns")
    assert deleted == [(stack("cert-dns"), True)]
    assert made.out.getvalue().splitlines()[-1] == (
        "  to keep using the retained hosted zone, set ExistingHostedZoneId to its id before deploying cert-dns again"
    ), made.out.getvalue()


def test_an_update_that_completed_without_deleting_an_old_resource_says_it_is_left_outside_the_stack():
    # CloudFormation skips an old resource it cannot delete after three tries, and the update completes: it runs on, billed.
    alb = deploy.load_layer(ENV, "alb", OUTPUT)
    out = io.StringIO()
    made = deploy.Deployer(None, ENV, out=out, err=io.StringIO())
    reason = "Resource handler returned message: the listener is in use"
    made.events = [event("alb", "Listener", "DELETE_FAILED", 9, kind="AWS::ElasticLoadBalancingV2::Listener", reason=reason)]
    made.finish(alb, described("alb", "UPDATE_COMPLETE")["Stacks"][0], outputs=False)
    assert out.getvalue().splitlines() == [
        f"{stack('alb')}: UPDATE_COMPLETE",
        f"warning: CloudFormation could not delete the old Listener (AWS::ElasticLoadBalancingV2::Listener Listener-physical) and left it "
        f"out of the stack: it still exists, outside every stack ({reason}); delete it yourself once nothing uses it",
    ], out.getvalue()


def test_trimming_drops_an_earlier_service_stacks_entries_before_the_running_stacks():
    # Destroyed and created again: the earlier stack's releases, which no rollback reads (of_the_stack), stayed while the
    # running stack's went, its redeploys first (its settings changed, same image) and then its releases.
    earlier = [rel(f"old{i}", f"old{i - 1}" if i else None) | {"stack_created": "2026-12-01T00:00:00Z"} for i in range(15)]
    mark = {"stack_created": "2026-12-05T00:00:00Z"}
    running = [rel("v1", None) | mark, rel("v1", "v1") | mark, *(rel(f"v{i}", f"v{i - 1}") | mark for i in range(2, 8))]
    kept = trimmed([*earlier, *running])
    assert kept == [*earlier[-(RELEASES_KEPT - len(running)) :], *running], kept
    full = [*running, *(rel(f"w{i}", f"w{i - 1}" if i else "v7") | mark for i in range(RELEASES_KEPT - len(running)))]
    assert trimmed([earlier[-1], *full]) == full  # the earlier stack's last entry before the running stack's redeploy


def test_the_way_on_of_a_half_deleted_layer_not_enabled_names_no_deploy_that_is_refused(aws, disabled):
    # A layer taken out of enabled_layers (prod's waf, staging's ci; on the sandbox, the ci layer it refuses, whose
    # destroy there fails half way) is one make destroy may delete and make drift checks, but no deploy creates again:
    # "then make deploy STACK=<layer>" sends the operator, who was deleting it, to a command that is refused.
    disabled, _ = disabled
    assert aws.run("deploy", "--stack", disabled) == 2  # deploying it needs it enabled
    left = described(PROD_LAYERS[0], status="DELETE_FAILED", protected=False, with_outputs=False)
    tags = [{"Key": k, "Value": v} for k, v in templates.own_tags(ENV, disabled).items()]
    left["Stacks"][0] |= {"StackName": stack(disabled), "StackId": stack_id(disabled), "Tags": tags}
    aws.cf.add_response("describe_stacks", left, {"StackName": stack(disabled)})
    assert aws.run("drift", "--stack", disabled) == 2, aws.out + aws.err
    said = next(line for line in aws.out.splitlines() if "DELETE_FAILED: not checked" in line)
    assert f"make destroy STACK={disabled} ENV={ENV}" in said, said
    assert f"make deploy STACK={disabled}" not in said and "then make deploy" not in said, said


def test_the_way_on_of_a_layer_not_enabled_ends_at_its_destroy():
    # a failed first create too: "make deploy STACK=waf RECREATE=1" is refused for a layer not enabled
    assert deploy.text.way_out(ENV, "waf", "ROLLBACK_COMPLETE", disabled_in="params/x.yaml") == (
        f"its first create failed and CloudFormation cannot update it; make destroy STACK=waf ENV={ENV} removes it "
        "(not in enabled_layers of params/x.yaml: no deploy creates it again)"
    )
    assert deploy.text.way_out(ENV, "waf", "DELETE_FAILED", disabled_in="params/x.yaml") == (
        f"its deletion stopped half way (make events STACK=waf ENV={ENV} names the resources that failed); free them, then "
        f"make destroy STACK=waf ENV={ENV} again (not in enabled_layers of params/x.yaml: no deploy creates it again)"
    )
    assert deploy.text.way_out(ENV, "waf", "ROLLBACK_FAILED", disabled_in="params/x.yaml", purge_first=["waf"]) == (
        f"its first create failed and its rollback could not delete everything (make events STACK=waf ENV={ENV} names what "
        f"failed); free that, then make destroy STACK=waf ENV={ENV} removes it (not in enabled_layers of params/x.yaml: no "
        "deploy creates it again)"
    )
    # the sandbox's ci stack: its deletion fails there by the emulator's gap, which no one can free
    (layer, reason), *_ = SANDBOX_CANNOT_REHEARSE.items()
    assert deploy.text.way_out("sandbox", layer, "DELETE_FAILED", disabled_in="params/sandbox.yaml").endswith(
        f"; the sandbox cannot delete it ({reason}): make sandbox-stop && make sandbox starts the sandbox empty"
    )


@pytest.mark.parametrize("status", ["ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "ROLLBACK_IN_PROGRESS", "REVIEW_IN_PROGRESS"])
def test_releases_of_a_service_stack_whose_first_create_failed_name_no_running_image(aws, status):
    # its rollback deleted (or deletes) what it made; under review, it made nothing yet: its ImageTag runs nowhere
    aws.deployed("service", status=status, parameters=service_parameters("v7"))
    history(aws, [release("v1", "2025-11-20T10:00:00Z", stack_created="2025-10-01T00:00:00Z")])
    assert aws.run("releases") == 0, aws.err
    assert aws.out.splitlines()[-1] == f"{stack('service')} is {status}: no image runs", aws.out


@pytest.mark.parametrize("status", ["ROLLBACK_COMPLETE", "ROLLBACK_IN_PROGRESS", "ROLLBACK_FAILED"])
def test_execute_of_a_service_change_set_gone_names_no_image_of_a_failed_first_create(aws, status):
    # status.runs_no_image's one rule: a failed first create (rolled back or rolling back) runs no image, yet make execute
    # of a change set gone said "it keeps the image that runs now, v5", as make status and make releases no longer do
    name = f"{stack('service')}-20990101000000-abc1234"
    aws.cf.add_client_error("describe_change_set", "ChangeSetNotFound", f"ChangeSet [{name}] does not exist", 404)
    aws.deployed("service", status=status, parameters=stubbed_aws.service_parameters("v5"), with_outputs=False)
    assert aws.run("execute", "--stack", "service", "--changeset", name, "--yes") == 2
    assert aws.err.startswith(f"error: no change set {name} on stack {stack('service')}, which is {status}: "), aws.err
    assert "runs now" not in aws.err and "v5" not in aws.err, aws.err
    if status == "ROLLBACK_COMPLETE":  # no make changeset: its way on
        assert aws.err.endswith(f"then make deploy STACK=service ENV={ENV} RECREATE=1, which deletes it and creates it again\n"), aws.err


def test_a_refusal_after_earlier_layers_of_the_run_changed_names_them_not_nothing_changed(aws):
    # The run's look-ahead refusals (here the release alarms' outputs tampered with) meet a later layer after earlier ones
    # changed; "nothing changed" there read as the run's whole outcome, above a summary that says otherwise.
    deployer = reading_release_alarms(aws, RollbackAlarmArns=lambda _: "arn:aws:cloudwatch:us-east-1:123456789012:alarm:someone-else")
    deployer.outcomes = {"cert-dns": "no changes", "alb": "updated, 2 changes", "waf": "tags updated"}
    with pytest.raises(deploy.Failure) as refused:
        deployer.rollback_configuration(deploy.load_layer(ENV, "service", OUTPUT))
    assert str(refused.value).endswith(
        f"make deploy STACK=release-alarms ENV={ENV} puts them back; nothing changed in service; this run changed alb and waf "
        "before it (the summary above)"
    ), refused.value


def test_execute_of_a_change_set_gone_from_a_stack_under_review_says_make_changeset_not_wait(aws):
    # A stack under review (REVIEW_IN_PROGRESS: the empty stack a CREATE change set made, its change set deleted since, by
    # a stopped run or by hand) never settles by itself: "wait for it to settle" waits forever. make changeset creates into it.
    name = f"{stack('service')}-20990101000000-abc1234"
    aws.cf.add_client_error("describe_change_set", "ChangeSetNotFound", f"ChangeSet [{name}] does not exist", 404)
    aws.deployed("service", status="REVIEW_IN_PROGRESS", parameters=stubbed_aws.service_parameters("v5"), with_outputs=False)
    assert aws.run("execute", "--stack", "service", "--changeset", name, "--yes") == 2
    assert "wait for it to settle" not in aws.err, aws.err
    assert f"make changeset STACK=service ENV={ENV} makes a new one" in aws.err, aws.err


def test_execute_of_a_change_set_gone_from_a_stack_an_operation_runs_on_says_wait_then_make_changeset(aws):
    name = f"{stack('service')}-20990101000000-abc1234"
    aws.cf.add_client_error("describe_change_set", "ChangeSetNotFound", f"ChangeSet [{name}] does not exist", 404)
    aws.deployed("service", status="UPDATE_IN_PROGRESS", parameters=stubbed_aws.service_parameters("v5"))
    assert aws.run("execute", "--stack", "service", "--changeset", name, "--yes") == 2
    assert aws.err.endswith(
        f"which is UPDATE_IN_PROGRESS: wait for it to settle (make status ENV={ENV}), then make changeset STACK=service ENV={ENV} "
        "makes a new one\n"
    ), aws.err


def test_a_declined_recreate_does_not_say_nothing_changed_once_it_deleted_the_failed_stack(aws):
    # RECREATE=1 deletes the ROLLBACK_COMPLETE stack (its events, the record of why the first create failed, with it)
    # before the change set is made; declined there, "nothing changed" read as if that stack were still there.
    aws.deployed("cert-dns", status="ROLLBACK_COMPLETE", protected=False)
    aws.stack_deleted("cert-dns")
    aws.change_set("cert-dns", "CREATE", CERT_CHANGES, left=True)  # declined (no terminal): it never runs
    aws.cf.add_response("delete_change_set", {}, {"StackName": stack("cert-dns"), "ChangeSetName": cs_name("cert-dns")})
    aws.cf.add_response("list_change_sets", {"Summaries": []}, {"StackName": stack_id("cert-dns")})  # none left but ours
    aws.cf.add_response("delete_stack", {}, {"StackName": stack_id("cert-dns")})
    assert aws.run("deploy", "--stack", "cert-dns", "--recreate") == 1
    assert (
        f"no terminal to ask on and no YES=1 (--yes): nothing changed but the deletion of {stack('cert-dns')}'s failed first "
        "create (RECREATE=1); " in aws.err
    ), aws.err  # the failed stack is gone: a rerun needs no RECREATE=1


@pytest.mark.parametrize("read_by_make_logs", [True, False], ids=["deleted last", "an earlier stack's"])
def test_purge_offers_make_logs_only_for_the_log_group_make_logs_reads(read_by_make_logs):
    # make logs reads the group of the service stack deleted last (purge.kept_log_group): offered for an earlier stack's
    # (an earlier NamePrefix), it read another group
    client = SESSION.client("logs", config=deploy.CONFIG)
    stubber = Stubber(client)
    item = purge.Retained(stack("service"), DELETED_SERVICE_ID, "LogGroup", "AWS::Logs::LogGroup", RETAINED_LOG_GROUP)
    arn = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{RETAINED_LOG_GROUP}"
    group = {"logGroupName": RETAINED_LOG_GROUP, "logGroupArn": arn, "arn": f"{arn}:*", "storedBytes": 5, "retentionInDays": 14}
    stubber.add_response("describe_log_groups", {"logGroups": [group]}, {"logGroupNamePrefix": RETAINED_LOG_GROUP})
    tags = {purge.STACK_ID_TAG: DELETED_SERVICE_ID, purge.LOGICAL_ID_TAG: "LogGroup"}
    stubber.add_response("list_tags_for_resource", {"tags": tags}, {"resourceArn": arn})
    deployer = types.SimpleNamespace(client=lambda service: client, cli=CLI, env=ENV, now=lambda: NOW)
    with stubber:
        purge.inspect(
            deployer,
            item,
            {DELETED_SERVICE_ID: {RETAINED_LOG_GROUP}},
            DELETED_SERVICE_ID if read_by_make_logs else SECOND_DELETED_SERVICE_ID,
        )
    assert item.action == "delete", item.note
    said = "it holds 5 bytes of logs, kept 14 days; they go with it: read or export what is needed first ("
    assert item.note.startswith(
        said + (f"make logs ENV={ENV} SINCE=14d, or " if read_by_make_logs else f"{CLI} logs create-export-task ")
    ), item.note


def two_deleted_service_stacks(aws, newest, purging, live=None):
    """The service destroyed twice: the stack deleted last (SECOND_DELETED_SERVICE_ID, an hour after the other) retained no
    log group (newest="kept none": a first create that failed before its log group, destroyed) or was not ours
    (newest="not ours": a stack of its name someone else made, and deleted); the earlier one, ours, retained its log group.
    purging: the exchanges of make purge STACK=service, else of make logs. live: the stack of the service's name there is
    now (DescribeStacks' entry), else none."""
    if live:
        aws.cf.add_response("describe_stacks", {"Stacks": [live]}, {"StackName": stack("service")})
    else:
        aws.not_deployed("service")
    summaries = [
        {"StackId": i, "StackName": stack("service"), "CreationTime": NOW - timedelta(days=1), "StackStatus": "DELETE_COMPLETE"}
        | {"DeletionTime": when}
        for i, when in ((DELETED_SERVICE_ID, NOW - timedelta(hours=2)), (SECOND_DELETED_SERVICE_ID, NOW - timedelta(hours=1)))
    ]
    aws.cf.add_response("list_stacks", {"StackSummaries": summaries}, {"StackStatusFilter": ["DELETE_COMPLETE"]})
    log_group = {"LogicalResourceId": "LogGroup", "PhysicalResourceId": RETAINED_LOG_GROUP, "ResourceType": "AWS::Logs::LogGroup"}
    log_group |= {"LastUpdatedTimestamp": NOW, "ResourceStatus": "DELETE_SKIPPED"}
    role = {"LogicalResourceId": "TaskRole", "PhysicalResourceId": "r", "ResourceType": "AWS::IAM::Role"}
    role |= {"LastUpdatedTimestamp": NOW, "ResourceStatus": "DELETE_COMPLETE"}
    ours = described("service", "DELETE_COMPLETE")["Stacks"][0]
    last = (ours if newest == "kept none" else described("service", "DELETE_COMPLETE", tags={"Owner": "mallory"})["Stacks"][0]) | {
        "StackId": SECOND_DELETED_SERVICE_ID
    }
    last_kept = [role]  # no log group: a create that failed before it (or someone else's stack)
    arn = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{RETAINED_LOG_GROUP}"
    group = {"logGroupName": RETAINED_LOG_GROUP, "logGroupArn": arn, "arn": f"{arn}:*", "storedBytes": 5, "retentionInDays": 14}
    tags = {purge.STACK_ID_TAG: DELETED_SERVICE_ID, purge.LOGICAL_ID_TAG: "LogGroup"}
    if purging:  # newest first: which are ours, then what those retained, each looked at
        aws.cf.add_response("describe_stacks", {"Stacks": [last]}, {"StackName": SECOND_DELETED_SERVICE_ID})
        aws.cf.add_response("describe_stacks", {"Stacks": [ours | {"StackId": DELETED_SERVICE_ID}]}, {"StackName": DELETED_SERVICE_ID})
        if newest == "kept none":
            aws.cf.add_response("list_stack_resources", {"StackResourceSummaries": last_kept}, {"StackName": SECOND_DELETED_SERVICE_ID})
        aws.cf.add_response("list_stack_resources", {"StackResourceSummaries": [role, log_group]}, {"StackName": DELETED_SERVICE_ID})
    else:  # newest first, the first of ours that retained a log group (kept_log_group)
        aws.cf.add_response("list_stack_resources", {"StackResourceSummaries": last_kept}, {"StackName": SECOND_DELETED_SERVICE_ID})
        aws.cf.add_response("list_stack_resources", {"StackResourceSummaries": [role, log_group]}, {"StackName": DELETED_SERVICE_ID})
        aws.cf.add_response("describe_stacks", {"Stacks": [ours | {"StackId": DELETED_SERVICE_ID}]}, {"StackName": DELETED_SERVICE_ID})
    aws.logs.add_response("describe_log_groups", {"logGroups": [group]}, {"logGroupNamePrefix": RETAINED_LOG_GROUP})
    aws.logs.add_response("list_tags_for_resource", {"tags": tags}, {"resourceArn": arn})


@pytest.mark.parametrize("newest", ["kept none", "not ours"])
def test_purge_offers_make_logs_for_a_log_group_only_where_make_logs_reads_that_group(aws, monkeypatch, newest):
    # purge's logs_read is the first retained log group of the service stacks of ours, newest first; make logs
    # (purge.kept_log_group) looks at the stack deleted last alone, whatever it is: where that one is not ours, or kept no
    # log group, purge offered "make logs ENV=... SINCE=14d" for the earlier stack's group, and make logs then answered
    # that the service is not deployed. Either reads it, or neither offers it.
    read = []

    def recorded(deployer):  # what make logs reads, without reading it
        try:
            read.append(real(deployer))
        except deploy.Failure as refused:
            read.append(str(refused))
        raise deploy.Failure("stopped by the test", 3)

    real = logs.log_group_to_read
    monkeypatch.setattr(logs, "log_group_to_read", recorded)
    two_deleted_service_stacks(aws, newest, purging=False)
    assert aws.run("logs") == 3, aws.err
    reads = read == [RETAINED_LOG_GROUP]
    # its key (purge.other_key: the group under the key the same stack retained) is not what this test is about
    monkeypatch.setattr(purge, "other_key", lambda *args: None)
    two_deleted_service_stacks(aws, newest, purging=True)
    assert aws.run("purge", "--stack", "service") == 1, aws.err
    offered = f"make logs ENV={ENV}" in aws.out
    assert offered == reads, (read, aws.out)
    assert reads, read  # the earlier stack's: the last logs of the service there are


def test_execute_of_a_change_set_gone_from_a_stack_under_review_does_not_say_it_keeps_an_image_that_runs(aws):
    # A stack under review runs nothing (runs_no_image); make changeset into it is a create, which sends TAG= or params'
    # ImageTag, not the ImageTag the stack's values state: "it keeps the image that runs now, v5" named an image neither runs
    # nor would be kept.
    name = f"{stack('service')}-20990101000000-abc1234"
    aws.cf.add_client_error("describe_change_set", "ChangeSetNotFound", f"ChangeSet [{name}] does not exist", 404)
    aws.deployed("service", status="REVIEW_IN_PROGRESS", parameters=stubbed_aws.service_parameters("v5"), with_outputs=False)
    assert aws.run("execute", "--stack", "service", "--changeset", name, "--yes") == 2
    assert f"(the create's change set was deleted since: make changeset STACK=service ENV={ENV} makes a new one)" in aws.err, aws.err
    assert "runs now" not in aws.err and "v5" not in aws.err, aws.err


def test_execute_of_a_change_set_gone_from_a_failed_first_create_rolling_back_says_recreate(aws):
    # ROLLBACK_IN_PROGRESS ends ROLLBACK_COMPLETE (or ROLLBACK_FAILED), from which make changeset without RECREATE=1 is
    # refused: "wait ..., then make changeset STACK=service ENV=... makes a new one" sent the reader into that refusal.
    name = f"{stack('service')}-20990101000000-abc1234"
    aws.cf.add_client_error("describe_change_set", "ChangeSetNotFound", f"ChangeSet [{name}] does not exist", 404)
    aws.deployed("service", status="ROLLBACK_IN_PROGRESS", parameters=stubbed_aws.service_parameters("v5"), protected=False)
    assert aws.run("execute", "--stack", "service", "--changeset", name, "--yes") == 2
    assert aws.err.endswith(
        "which is ROLLBACK_IN_PROGRESS: wait for its rollback to end, then its first create failed and CloudFormation cannot "
        f"update it; fix the cause, then make deploy STACK=service ENV={ENV} RECREATE=1, which deletes it and creates it again\n"
    ), aws.err


def test_execute_of_a_change_set_gone_from_a_first_create_whose_rollback_failed_does_not_send_to_a_refused_recreate(aws):
    # ROLLBACK_FAILED is in FIRST_CREATE_FAILED, and make execute's advice for it was ROLLBACK_COMPLETE's: "make deploy
    # STACK=<layer> ENV=... RECREATE=1, which deletes it and creates it again". ready() deletes only a ROLLBACK_COMPLETE
    # stack with RECREATE=1: that deploy is refused ("is ROLLBACK_FAILED: resolve it in the CloudFormation console"). The
    # advice given is followed here; it must not be refused for the very status it was given for.
    name = f"{stack('cert-dns')}-20990101000000-abc1234"
    aws.cf.add_client_error("describe_change_set", "ChangeSetNotFound", f"ChangeSet [{name}] does not exist", 404)
    aws.deployed("cert-dns", status="ROLLBACK_FAILED", protected=False)
    assert aws.run("execute", "--stack", "cert-dns", "--changeset", name, "--yes") == 2
    assert aws.err.endswith(f"which is ROLLBACK_FAILED: {deploy.text.way_out(ENV, 'cert-dns', 'ROLLBACK_FAILED')}\n"), aws.err
    assert "RECREATE=1" not in aws.err, aws.err  # as make deploy says of it


def test_make_logs_after_a_destroy_does_not_call_an_earlier_stack_the_one_deleted_last(aws):
    # kept_log_group walks past the service stack deleted last where it kept no log group (a first create that failed
    # and was deleted by RECREATE=1, whose rollback took its own group and its logs): the group read is the earlier
    # stack's, deleted an hour before. "which the one deleted last at <its time> retained" said the logs were those of the
    # last deployment; they are an earlier one's.
    two_deleted_service_stacks(aws, "kept none", purging=False)
    deployer = deploy.Deployer(aws.clients.__getitem__, ENV, out=io.StringIO(), err=io.StringIO(), sleep=lambda s: None, now=lambda: NOW)
    assert logs.log_group_to_read(deployer) == RETAINED_LOG_GROUP
    note = deployer.out.getvalue()
    assert "the one deleted last" not in note, note
    assert note.startswith(
        f"note: {stack('service')} is not deployed; {RETAINED_LOG_GROUP}, retained by the last of its deleted stacks to keep one (deleted at "
    ), note


# --- from an attacker review of 14e267e..bdbe87f (SD) -------------------------------------------------------------------
def test_a_foreign_stack_met_after_earlier_layers_changed_does_not_say_nothing_changed(aws):
    # 166ead2 made every refusal of a later layer say what earlier layers of the run changed (Deployer.nothing_changed),
    # but describe's refusal of a stack of the layer's name that this tool did not make still says "nothing changed". On
    # the sandbox: a stack startupwebapp-sandbox-scaling made by hand, then make deploy YES=1 TAG=v2 created waf and
    # released v2 (service: updated, 2 changes), then stopped at scaling with "...which every stack it makes carries;
    # nothing changed. If it is ours ...".
    aws.deployed("scaling", tags={"Owner": "mallory"})
    made = deploy.Deployer(
        aws.clients.__getitem__, ENV, out=io.StringIO(), err=io.StringIO(), sleep=lambda s: None, now=lambda: NOW, changes=True
    )
    made.outcomes.update({"alb": "no changes", "service": "updated, 2 changes"})
    with pytest.raises(deploy.Failure) as refused:
        made.describe(stack("scaling"))
    assert "exists but was not made by this tool" in str(refused.value), refused.value
    said = "; nothing changed in scaling; this run changed service before it (the summary above). If it is ours"
    assert said in str(refused.value), refused.value


def test_releases_names_no_image_of_a_service_stack_this_tool_did_not_make(aws):
    # d75cbf8's one rule for an ImageTag that is not ours to print (Deployer.running_image_tag: "someone else's stack's
    # values are not ours to print or release"; make status: "not made by this tool") is not make releases': for a stack
    # of the service's name without our tags it says "startupwebapp-prod-service runs image v7", its values taken for a
    # release of ours, while make status of the same stack says it is not made by this tool.
    aws.deployed("service", parameters=service_parameters("v7"), tags={"Owner": "mallory"})
    history(aws, [release("v1", "2025-11-20T10:00:00Z")])
    assert aws.run("releases") == 0, aws.err
    assert "runs image v7" not in aws.out, aws.out
    lines = aws.out.splitlines()
    assert lines[-1].startswith(f"{stack('service')}: not made by this tool (") and lines[-1].endswith(": no release of ours runs"), lines
    assert lines[0].endswith("(of an earlier service stack: make rollback passes it over)"), lines  # none is that stack's


@pytest.mark.parametrize("env", [ENV, "sandbox"])
@pytest.mark.parametrize("layer", ["cert-dns", "waf"])
def test_the_way_on_for_a_first_create_whose_rollback_failed_is_a_command(env, layer):
    # It was "resolve it in the CloudFormation console", no command (the sandbox has no console). make destroy deletes a
    # ROLLBACK_FAILED stack (README, make destroy), whose downstream layers were never made, and a deploy creates it again;
    # what the deletion keeps under a name the create needs (waf's log group, DeletionPolicy RetainExceptOnCreate: kept
    # by a deletion) is purged between them, or the deploy is refused (found by an attacker review).
    deployer = deploy.Deployer(lambda service: None, env, out=io.StringIO(), err=io.StringIO(), sleep=lambda s: None, now=lambda: NOW)
    way = deployer.way_out(layer, "ROLLBACK_FAILED")
    purge_it = f"make purge ENV={env} STACK=waf {PURGE_STEP}" if layer == "waf" else ""
    assert way == (
        f"its first create failed and its rollback could not delete everything (make events STACK={layer} ENV={env} names what "
        f"failed); free that, then make destroy STACK={layer} ENV={env}, then {purge_it}make deploy STACK={layer} ENV={env}"
    ), way


@pytest.mark.parametrize(
    "layer, purged",
    [("waf", "STACK=waf"), ("service", "STACK=service"), ("alb", "STACK=<layer> for service, waf"), ("scaling", None)],
)
def test_the_way_on_for_a_half_deleted_layer_names_the_purge_its_deploy_needs(aws, layer, purged):
    # "free them, then make destroy STACK=waf ENV=..., then make deploy STACK=waf ENV=...": the destroy keeps the layer's log
    # group under its name (DeletionPolicy RetainExceptOnCreate), and the deploy that followed was refused before creating
    # anything ("what destroyed stacks retained still holds names their creates need ... make purge ENV=... STACK=waf
    # frees ..."), found by an attacker review on the sandbox. The purge is a step of the way on, for the layers it destroys
    # that keep such a name; a layer that keeps none has no purge in its way on.
    if "service" in templates.destroy_order(layer):  # the deploy again keeps the image the service runs (redeploy_tag)
        aws.deployed("service", parameters=service_parameters("v7"))
    deployer = deploy.Deployer(aws.clients.__getitem__, ENV, out=io.StringIO(), err=io.StringIO(), sleep=lambda s: None, now=lambda: NOW)
    way = deployer.way_out(layer, "DELETE_FAILED")
    deploy_again = f"make deploy STACK={layer} ENV={ENV}" if templates.destroy_order(layer) == [layer] else f"make deploy ENV={ENV} TAG=v7"
    assert way.endswith(", then " + (f"make purge ENV={ENV} {purged} {PURGE_STEP}" if purged else "") + deploy_again), way
    assert ("make purge" in way) == bool(purged), way


@pytest.mark.parametrize("kept", [True, False])
def test_make_logs_where_a_stack_of_the_service_name_is_not_ours_reads_what_ours_kept_or_says_so(aws, kept):
    # After make destroy STACK=service, someone made a stack of its name (no tags of ours, none of our parameters): make
    # logs read that stack's values as ours, and on the sandbox said "error: KeyError: 'ClusterName', at
    # scripts/deploy/logs.py:65: ... or a bug of the tool's", where destroy's line had said make logs reads the service's
    # kept logs (found by an attacker review). Theirs names nothing of ours: the group ours kept is read, or none is.
    theirs = described("service", tags={"Owner": "mallory"}, parameters={"ImageTag": "theirs-1"}, with_outputs=False)["Stacks"][0]
    not_ours = deploy.text.not_ours(stack("service"), templates.own_tags(ENV, "service"))
    if kept:
        two_deleted_service_stacks(aws, "kept none", purging=False, live=theirs)
    else:
        aws.cf.add_response("describe_stacks", {"Stacks": [theirs]}, {"StackName": stack("service")})
        aws.cf.add_response("list_stacks", {"StackSummaries": []}, {"StackStatusFilter": ["DELETE_COMPLETE"]})
    deployer = deploy.Deployer(aws.clients.__getitem__, ENV, out=io.StringIO(), err=io.StringIO(), sleep=lambda s: None, now=lambda: NOW)
    if kept:
        assert logs.log_group_to_read(deployer) == RETAINED_LOG_GROUP
        note = deployer.out.getvalue()
        assert note.startswith(f"note: {not_ours}; {RETAINED_LOG_GROUP}, retained by "), note
        # purge refuses while that stack holds the service's name
        assert note.endswith(f"holds what it logged (until make purge ENV={ENV} deletes it, once that stack is gone)\n"), note
        return
    with pytest.raises(deploy.Failure) as refused:
        logs.log_group_to_read(deployer)
    assert str(refused.value) == f"error: {not_ours}; no log group a service stack of ours kept is left to read"


def test_the_deploy_whose_first_create_ends_rollback_failed_gives_the_way_on_a_later_run_gives(aws):
    # 79a356f gave ROLLBACK_FAILED a way on ("make destroy STACK=<layer>, then ... make deploy", not "resolve it in the
    # CloudFormation console"), which make deploy, make diff and make execute print when they meet such a stack; but the
    # deploy whose own first create ends ROLLBACK_FAILED (finish) still says "see the failed resources above" and no
    # command: the operator learns the way on only from a second run, which the README's "ROLLBACK_FAILED ... points to ...
    # make destroy of the layer ... and make deploy" does not say.
    layer = deploy.load_layer(ENV, "alb", ROOT / "output")
    made = deploy.Deployer(aws.clients.__getitem__, ENV, out=io.StringIO(), err=io.StringIO(), sleep=lambda s: None, now=lambda: NOW)
    why = "Load balancer cannot be deleted because deletion protection is enabled"  # the rollback's failure: made's last wait's
    made.events = [event("alb", "LoadBalancer", "DELETE_FAILED", 300, "AWS::ElasticLoadBalancingV2::LoadBalancer", why)]
    found = described("alb", status="ROLLBACK_FAILED", with_outputs=False)["Stacks"][0]
    with pytest.raises(deploy.Failure) as ended:
        made.finish(layer, found)
    assert f"error: {stack('alb')} ended ROLLBACK_FAILED: " in str(ended.value), ended.value
    assert str(ended.value).endswith(made.way_out("alb", "ROLLBACK_FAILED")), ended.value


@pytest.mark.parametrize("status", ["CREATE_FAILED", "UPDATE_FAILED"])
def test_a_stack_an_operation_without_rollback_left_failed_gets_the_rollback_command_not_the_console(aws, monkeypatch, status):
    # Only an operation run with its rollback turned off (--disable-rollback, outside this tool) ends so; the way on was
    # "resolve it in the CloudFormation console". RollbackStack takes a stack from either status (API_RollbackStack).
    monkeypatch.delenv("AWS_ENDPOINT_URL")  # the clients are stubbed: nothing is sent
    aws.deployed("cert-dns", status=status)
    assert aws.run("deploy", "--stack", "cert-dns", "--yes") == 1
    assert aws.err == (
        f"error: {stack('cert-dns')} is {status}: an operation run outside this tool with its rollback turned off failed (make events "
        f"STACK=cert-dns ENV={ENV} names what failed); roll it back: {stubbed_aws.REGION_CLI} cloudformation rollback-stack --stack-name "
        f"{stack('cert-dns')}, then make deploy STACK=cert-dns ENV={ENV}, which says what the rollback left\n"
    ), aws.err
    assert "console" not in aws.err


@pytest.mark.parametrize("status", ["CREATE_FAILED", "UPDATE_FAILED"])
def test_the_rollback_way_on_of_the_service_carries_the_runs_tag(status):
    # (mutation audit) the deploy after rollback-stack releases params' ImageTag without the run's TAG=
    said = deploy_text.way_out(ENV, "service", status, " TAG=v9", cli="aws --region us-east-1")
    assert said.endswith(f"then make deploy STACK=service ENV={ENV} TAG=v9, which says what the rollback left"), said
    assert f"aws --region us-east-1 cloudformation rollback-stack --stack-name {stack('service')}, " in said, said


@pytest.mark.parametrize("body", ['{"Resources": []}', '{"Resources": {"LogGroup": {"Type": "AWS::Logs::LogGroup", "Properties": null}}}'])
def test_purge_reads_a_template_in_output_of_another_shape_as_an_error_naming_it_and_a_way_on_leaves_it_out(tmp_path, body):
    # JSON without a template's shape (one edited by hand) raised AttributeError or TypeError out of purge ("a bug of the
    # tool's"); make purge reads what a layer retains from it before it deletes anything.
    (tmp_path / "service.json").write_text(body)
    reader = types.SimpleNamespace(output_dir=tmp_path)
    with pytest.raises(deploy.Failure) as refused:
        purge.layer_retains(reader, "service")
    assert str(refused.value).startswith(
        f"error: {templates.relative(tmp_path / 'service.json')}: not a layer template `make templates` writes ("
    )
    assert str(refused.value).endswith("); run `make templates`") and refused.value.code == 2
    assert purge.keep_names(reader, ["service"]) == []  # a way on is given without its purge step
    # (mutation audit) and the layers after it are still read: waf's template keeps its log group's name
    shutil.copy(ROOT / "output" / "waf.json", tmp_path / "waf.json")
    assert purge.keep_names(reader, ["service", "waf"]) == ["waf"]


def test_a_purge_of_every_layer_with_every_enabled_one_deployed_offers_no_purge_one_by_one(aws):
    # (mutation audit) a layer not enabled and never made (waf in prod) counted as destroyed: "or purge the destroyed
    # layers one by one" was offered with none destroyed
    for layer in reversed(templates.layer_order()):
        aws.deployed(layer, status="DELETE_FAILED") if layer in PROD_LAYERS else aws.not_deployed(layer)
    if set(templates.layer_order()) - set(PROD_LAYERS):  # purge reads the deleted stacks only when a layer has none now
        deleted_before(aws)
    assert aws.run("purge", "--yes") == 1
    assert aws.err.endswith(f"finish the destroy first (make destroy ENV={ENV}); nothing purged\n"), aws.err


# --- mutation audit of the release history and the rollback's choice (S7): tests that kill mutants which survived
# tests/test_deploy.py -k "release or rollback or history or revision" and tests/test_e2e_sandbox.py -k "rollback or release"


def test_a_busy_retry_after_a_merged_write_keeps_this_runs_release_once():
    # This run's first write landed but met another run's (a merge follows), its second try met TooManyUpdates: read back,
    # the history holds this run's release already, which merged again with the entries it writes was written twice.
    b = ENTRY_A | {"time": "2026-01-02T00:00:00Z", "image_tag": "b", "replaced": "a"}

    def another_run_wrote_between(ssm, value):
        ssm.versions += [stored([ENTRY_A, b]), value]
        return {"Version": len(ssm.versions)}

    ssm = ScriptedSsm(stored([ENTRY_A]), another_run_wrote_between, too_many_updates, written)
    ReleaseHistory(ssm, ENV, lambda line: None, lambda seconds: None).record(ENTRY_E)
    final = json.loads(ssm.versions[-1])
    assert final == [ENTRY_A, b, ENTRY_E], final  # b after the release it replaced (an attacker's audit found [b, a, e])


def test_a_merge_keeps_each_histories_order():
    x, a, b, c = ({"time": f"2026-01-0{n}T00:00:00Z", "image_tag": tag} for n, tag in enumerate("xabc", start=1))
    merged = deploy.history.merged
    assert merged([a], [a, b]) == [a, b]  # another run's release after what this run read
    assert merged([a, b], [a]) == [a, b]  # theirs an older version (a retry's read-back)
    assert merged([a, b], [a, c]) == [a, b, c]  # two runs' writes, neither holding the other's
    assert merged([x, a], [a, b]) == [x, a, b]  # what theirs trimmed stays where it was
    assert merged([a, b], []) == [a, b] and merged([], [a]) == [a]


def test_every_version_between_is_merged_not_only_the_newest():
    # Two other runs read the same version and wrote one after the other, neither holding the other's release: merging
    # the newest version between alone lost the older one's release.
    b = ENTRY_A | {"time": "2026-01-02T00:00:00Z", "image_tag": "b", "replaced": "a"}
    c = ENTRY_A | {"time": "2026-01-02T00:00:01Z", "image_tag": "c", "replaced": "a"}

    def b_and_c_then_ours(ssm, value):
        ssm.versions += [stored([ENTRY_A, b]), stored([ENTRY_A, c]), value]
        return {"Version": len(ssm.versions)}

    ssm = ScriptedSsm(stored([ENTRY_A]), b_and_c_then_ours, written)
    ReleaseHistory(ssm, ENV, lambda line: None, lambda seconds: None).record(ENTRY_E)
    final = json.loads(ssm.versions[-1])
    assert final == [ENTRY_A, b, c, ENTRY_E], final  # each after the release it replaced (was [b, a, c, e])


def test_an_image_a_rollback_left_whose_own_entries_were_trimmed_is_not_gone_back_to():
    # v2's release trimmed; the rollback from v2 to v1 recorded; v3's release names v2 as the image it replaced. A rollback
    # left v2 and the history holds no later start of it: never gone back to (abandoned), whichever entry says so.
    entries = [rel("v1", "v2", rolled_back_from="v2"), rel("v3", "v2")]
    assert deploy.history.previous_release(entries, "v3") is None
    assert deploy.history.why_nothing_earlier(entries, "v3", "v3").startswith("what ran before v3's release, v2, was rolled back from")


def test_a_history_written_before_replaced_does_not_say_the_running_image_was_the_stacks_first():
    # one entry of v1 by the tool before `replaced`: whether anything ran before it is not known (trimmed, or not recorded)
    assert deploy.history.why_nothing_earlier([rel("v1")], "v1", "v1") is None


def test_why_nothing_earlier_goes_by_the_running_images_latest_own_release():
    # v1 the stack's first; v2 released, its wait stopped (unrecorded); make deploy TAG=v1 (recorded: it replaced v2); v2
    # again; make rollback from v2 to v1. What ran before v1's latest release, v2, was rolled back from since: said so,
    # not that v1's release was the stack's first (its first release's), nor nothing (its first release's replaced)
    entries = [rel("v1", None), rel("v1", "v2"), rel("v2", "v1"), rel("v1", "v2", rolled_back_from="v2")]
    assert deploy.history.previous_release(entries, "v1") is None
    assert deploy.history.why_nothing_earlier(entries, "v1", "v1").startswith("what ran before v1's release, v2, was rolled back from")


def test_a_history_of_both_kinds_goes_by_the_running_images_latest_own_release():
    # v1 and v2 by the tool before `replaced`; v3 released over v2, then make deploy TAG=v2 (recorded: it replaced v3).
    # Going by v2's first release (no replaced: the older rule) rolled back to v1, not to v3, which ran before it.
    entries = [rel("v1"), rel("v2"), rel("v3", "v2"), rel("v2", "v3")]
    assert deploy.history.previous_release(entries, "v2")["image_tag"] == "v3"


def test_a_run_unrecorded_right_after_an_own_release_without_replaced_is_not_passed_over():
    # v1 and v2 by the tool before `replaced`; v3 released, its wait stopped (unrecorded); the rollback from v3 to v2
    # recorded: what ran since v2's release is not known from the history (the entry right after it breaks the chain)
    assert deploy.history.previous_release([rel("v1"), rel("v2"), rel("v2", "v3", rolled_back_from="v3")], "v2") is None


def test_a_rollback_to_an_image_the_history_holds_only_redeploys_of_says_its_latest():
    # v1's release trimmed, two settings changes that kept it, then v2: the rollback's header gives the latest of them
    times = ["2025-11-20T10:00:00Z", "2025-11-21T10:00:00Z", "2025-11-22T10:00:00Z"]
    entries = [release("v1", times[0]) | {"replaced": "v1"}, release("v1", times[1]) | {"replaced": "v1"}]
    entries.append(release("v2", times[2]) | {"replaced": "v1"})
    assert deploy.history.previous_release(entries, "v2")["time"] == times[1]


def test_releases_says_nothing_of_a_release_below_the_oldest_entry_whatever_the_newest_is(aws):
    # the oldest entry, a settings change (its release trimmed): nothing is listed below it, whichever image the newest runs
    entries = [release("v2", "2025-11-22T10:00:00Z") | {"replaced": "v2"}, release("v3", "2025-11-23T10:00:00Z") | {"replaced": "v2"}]
    aws.deployed("service", parameters=service_parameters("v3"))
    history(aws, entries)
    assert aws.run("releases") == 0, aws.err
    assert aws.out.splitlines()[1] == f"2025-11-22T10:00:00Z  v2  git 1111111  by {CALLER}  (settings changed, same image)", aws.out


def test_an_earlier_service_stacks_entries_do_not_make_rollback_ask_for_tag(aws):
    # The stack before ran v0, then v1 (unrecorded), then v2 (recorded: it replaced v1); destroyed, created again with v3,
    # then v1 released. Its release is this stack's record: the earlier stack's entry naming v1 says nothing of it.
    old = {"stack_created": "2025-10-01T00:00:00Z"}
    earlier = [
        release("v0", "2025-10-02T10:00:00Z") | old | {"replaced": None},
        release("v2", "2025-10-03T10:00:00Z") | old | {"replaced": "v1"},
    ]
    earlier += [release("v3", "2025-11-20T10:00:00Z") | {"replaced": None}, release("v1", "2025-11-22T10:00:00Z") | {"replaced": "v3"}]
    rolled_back(aws, earlier, "v1", "v3")
    assert f"rolling back {stack('service')} from v1 to v3 (released 2025-11-20T10:00:00Z" in aws.out, aws.out


def test_a_tags_only_update_that_stands_records_a_redeploy_of_its_image_on_its_stack(aws, monkeypatch):
    # (mutation audit) recorded with replaced None, it read as the stack's first release (make rollback: "nothing ran
    # before it"); without stack_created, as a release of whichever service stack runs later
    tags_only_service_update(aws)
    aws.cf.add_response("update_stack", {"StackId": stack_id("service")})
    token = f"tags-{stack('service')}-{NOW:%Y%m%d%H%M%S}"
    done = event("service", stack("service"), "UPDATE_COMPLETE", 20, token=token)
    aws.poll("service", stack_id("service"), described("service", parameters=service_parameters("v1")), done)
    recorded = []
    monkeypatch.setattr(deploy.history.ReleaseHistory, "record", lambda self, entry: recorded.append(entry) or [])
    monkeypatch.setattr(deploy.Deployer, "caller_arn", lambda self: CALLER)
    assert aws.run("deploy", "--stack", "service", "--yes") == 0, aws.err
    assert [(entry["image_tag"], entry["replaced"], entry["stack_created"]) for entry in recorded] == [("v1", "v1", SERVICE_CREATED)]


def test_a_rollback_of_a_stack_whose_last_update_cloudformation_rolled_back_goes_back_as_usual(aws):
    # (mutation audit) UPDATE_ROLLBACK_COMPLETE from an earlier failed update, settled before make rollback began: no
    # update was under way, so none was undone meanwhile; taken for one, nothing was rolled back
    earlier = [release("v1", "2025-11-20T10:00:00Z") | {"replaced": None}, release("v2", "2025-11-22T10:00:00Z") | {"replaced": "v1"}]
    aws.deployed("service", status="UPDATE_ROLLBACK_COMPLETE", parameters=service_parameters("v2"))
    history(aws, earlier)
    service_update(aws, "v1", earlier, running="v2", service_read=True, rolled_back_from="v2", repair=True)
    assert aws.run("rollback", "--stack", "service", "--yes") == 0, aws.err
    assert f"rolling back {stack('service')} from v2 to v1 (released 2025-11-20T10:00:00Z" in aws.out, aws.out


def test_a_service_stacks_first_release_is_recorded_as_its_first_and_taken_for_recorded():
    # (mutation audit) replaced None says the stack's first release (why_nothing_earlier); a
    # release recorded is said so (release_recorded: the summary of a rollback stopped after it)
    out = io.StringIO()
    deployer = deploy.Deployer(None, ENV, out=Output(out, goes_on=True), err=io.StringIO(), revision="abc1234")
    ssm = ScriptedSsm(stored([]), written)
    deployer.__dict__["history"] = ReleaseHistory(ssm, ENV, deployer.say, lambda seconds: None)
    deployer.caller_arn, deployer.now = (lambda: CALLER), (lambda: NOW)
    deployer.record_release("v1", stack_created=described("service")["Stacks"][0]["CreationTime"], replaced=None)
    assert json.loads(ssm.versions[-1]) == [release("v1", f"{NOW:%Y-%m-%dT%H:%M:%SZ}", "abc1234") | {"replaced": None}], ssm.versions
    assert deployer.release_recorded, out.getvalue()


# A rollback entry recorded before rollbacks recorded the revision of the template they keep (ce0ad15) holds the
# checkout's of that run (9999999), whose files it did not deploy: the stack runs v2's template (2222222), which that
# rollback kept, and which a rollback from it keeps again.
LEGACY_ROLLBACK = [
    release("v0", "2025-11-18T10:00:00Z", "0000000") | {"replaced": None},
    release("v1", "2025-11-20T10:00:00Z", "1111111") | {"replaced": "v0"},
    release("v2", "2025-11-22T10:00:00Z", "2222222") | {"replaced": "v1"},
    release("v1", "2025-11-23T10:00:00Z", "9999999") | {"replaced": "v2", "rolled_back_from": "v2"},
]


@pytest.mark.parametrize("named", [False, True], ids=["previous", "TAG="])
def test_a_rollback_from_a_rollback_is_named_at_the_template_the_first_kept_not_at_the_checkout_it_recorded(aws, named):
    aws.deployed("service", parameters=service_parameters("v1"))
    history(aws, LEGACY_ROLLBACK)
    service_update(aws, "v0", LEGACY_ROLLBACK, running="v1", service_read=True, rolled_back_from="v1", repair=True, kept_revision="2222222")
    tag = ["--image-tag", "v0"] if named else []
    assert aws.run("rollback", "--stack", "service", *tag, "--yes") == 0, aws.err
    assert f"change set {cs_name('service', '2222222')}" in aws.out, aws.out


def test_the_revision_of_the_running_template_is_the_release_a_chain_of_rollbacks_kept():
    from scripts.deploy.history import revision_running

    chain = [*LEGACY_ROLLBACK, release("v0", "2025-11-24T10:00:00Z", "8888888") | {"replaced": "v1", "rolled_back_from": "v1"}]
    assert revision_running(chain, "v0") == "2222222"  # two rollbacks, each keeping v2's template
    # the entry before is not the release it left (one not recorded between): the rollback's own, as it recorded it
    gap = [*LEGACY_ROLLBACK[:2], LEGACY_ROLLBACK[3]]
    assert revision_running(gap, "v1") == "9999999"
    assert revision_running(LEGACY_ROLLBACK[:3], "v2") == "2222222"
    assert revision_running(LEGACY_ROLLBACK[:3], "v1") == "unknown"  # v1 is not what the last release left running
    assert revision_running([], "v1") == "unknown"
    # a trimmed history whose oldest entry is a rollback: its own revision, nothing before it
    trimmed = [
        release("v1", revision="7777777") | {"rolled_back_from": "v2"},
        release("v2", revision="6666666") | {"rolled_back_from": "v1"},
    ]
    assert revision_running(trimmed, "v2") == "7777777"


# --- mutation audit of scripts/deploy/guards.py (S5) ---------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(templates.STATEFUL_TYPES))
@pytest.mark.parametrize(
    ("action", "replacement", "said"),
    [
        ("Modify", "True", "replaced"),
        ("Modify", "Conditional", "replaced"),
        ("Remove", None, "removed"),
        ("Dynamic", None, "may be replaced or removed: its action is Dynamic, decided as the update runs"),  # it was let through
    ],
)
def test_every_stateful_type_replaced_or_removed_is_refused_at_execute_without_allow_replace(aws, kind, action, replacement, said):
    """guards.refuse_before_execute: the product asks before replacing anything stateful; each type of
    templates.STATEFUL_TYPES, replaced (or maybe replaced) or removed, is refused without ALLOW_REPLACE=1,
    and with it nothing else of this change set is refused (and nothing is called)."""
    layer = deploy.load_layer(ENV, "alb", OUTPUT)
    made = deploy.Deployer(aws.clients.__getitem__, ENV, out=io.StringIO(), err=io.StringIO())
    logical = "StatefulThing"
    assert logical not in layer.custom_named  # not the same-name refusal
    risky = change(action, logical, kind, *([replacement] if replacement else []))
    with pytest.raises(deploy.Failure) as refused:
        guards.refuse_before_execute(made, layer, change_set("alb", changes=[risky]), False, False, "nothing changed")
    assert str(refused.value) == (
        f"error: refused: the change set replaces or removes stateful resources: {logical} ({kind}, {said}); nothing changed; "
        "if that is intended, rerun with ALLOW_REPLACE=1 (--allow-replace)"
    )
    assert guards.refuse_before_execute(made, layer, change_set("alb", changes=[risky]), False, True, "nothing changed") is None


def test_removing_the_rules_while_the_service_stack_names_no_strategy_is_not_refused(aws):
    """guards.rules_in_use: a service stack deployed without DeploymentStrategy (a template from before it) shifts no traffic."""
    aws.deployed("service", parameters={k: v for k, v in service_parameters("v1").items() if k != "DeploymentStrategy"})
    made = deploy.Deployer(aws.clients.__getitem__, ENV, out=io.StringIO(), err=io.StringIO())
    layer = deploy.load_layer(ENV, "alb", OUTPUT)
    removed = change_set("alb", changes=[change("Remove", "ProductionListenerRule", "AWS::ElasticLoadBalancingV2::ListenerRule")])
    assert guards.refuse_removing_rules_in_use(made, layer, removed, "nothing changed") is None


def test_a_name_a_destroyed_stack_retained_is_not_looked_for_again_among_log_groups_in_no_stack():
    """guards.loose_log_groups: a name refuse_blocked_creates found retained (named) is said once, as retained, not
    looked for again as a log group in no stack (which would name it twice, with two ways to free it)."""
    assert loose_log_groups_looked_for(None, {RETAINED_LOG_GROUP}) == ([], [])


@pytest.mark.parametrize("first", ["alb", "service"])
def test_a_cluster_refusal_is_the_service_layers_and_a_look_ahead_at_another(aws, first):
    """guards.refuse_a_cluster_the_service_cannot_use: refused at the service layer it is that layer's refusal (Failure);
    at an earlier layer of the run, a look ahead (RefusedAhead)."""
    service = deploy.load_layer(ENV, "service", OUTPUT)
    cluster = service.parameters["ClusterName"]
    made = deploy.Deployer(aws.clients.__getitem__, ENV, out=io.StringIO(), err=io.StringIO(), on_aws=True)
    made.run_layers = [deploy.load_layer(ENV, "alb", OUTPUT), service]
    made.stacks[service.stack] = None
    aws.stubber("ecs").add_response(
        "describe_clusters", {"clusters": [{"clusterName": cluster, "status": "INACTIVE"}]}, {"clusters": [cluster]}
    )
    layer = next(each for each in made.run_layers if each.name == first)
    with pytest.raises(deploy.Failure) as refused:
        guards.refuse_a_cluster_the_service_cannot_use(made, layer)
    assert type(refused.value) is (guards.Failure if first == "service" else guards.RefusedAhead)


@pytest.mark.parametrize("held", ["the same", "another"])
def test_the_look_ahead_for_taken_log_group_names_asks_only_of_names_the_update_changes(aws, monkeypatch, held):
    """guards.refuse_taken_names_ahead: a log group that keeps the name its stack holds (its own) is not looked up as
    taken (it would be found "kept by an earlier replacement in this stack" and refuse every --allow-replace run); one
    whose name the update changes is."""
    alb, service = (deploy.load_layer(ENV, name, OUTPUT) for name in ("alb", "service"))
    made = deploy.Deployer(aws.clients.__getitem__, ENV, out=io.StringIO(), err=io.StringIO())
    made.run_layers = [alb, service]
    for layer in made.run_layers:
        made.stacks[layer.stack] = described(layer.name)["Stacks"][0]
    looked = []
    monkeypatch.setattr(
        guards, "taken_log_group", lambda deployer, stack, stack_id, logical_id, name, say=None: looked.append((stack, logical_id, name))
    )
    assert guards.log_group_names(made, alb) == {}  # no call for alb
    named = guards.log_group_names(made, service)
    now = {logical_id: name if held == "the same" else f"{name}-old" for logical_id, name in named.items()}
    resources = [
        {"LogicalResourceId": logical_id, "PhysicalResourceId": name, "ResourceType": "AWS::Logs::LogGroup"}
        | {"Timestamp": NOW, "ResourceStatus": "UPDATE_COMPLETE", "StackName": service.stack}
        for logical_id, name in now.items()
    ]
    aws.cf.add_response("describe_stack_resources", {"StackResources": resources}, {"StackName": service.stack})
    assert guards.refuse_taken_names_ahead(made, alb) is None
    assert looked == ([] if held == "the same" else [(service.stack, logical_id, name) for logical_id, name in named.items()])


@pytest.mark.parametrize("recreated", [False, True])
def test_the_look_ahead_for_taken_log_group_names_says_a_recreate_changed_something_before_it(aws, monkeypatch, recreated):
    # (mutation audit) RECREATE=1 deletes the layer's failed first create before this look: "before changing anything
    # more", and what that deletion left (Deployer.nothing_changed), not "before changing anything".
    alb, service = (deploy.load_layer(ENV, name, OUTPUT) for name in ("alb", "service"))
    made = deploy.Deployer(aws.clients.__getitem__, ENV, out=io.StringIO(), err=io.StringIO())
    made.run_layers = [alb, service]
    for layer in made.run_layers:
        made.stacks[layer.stack] = described(layer.name)["Stacks"][0]
    if recreated:
        made.recreated.add(alb.name)
    monkeypatch.setattr(guards, "taken_log_group", lambda deployer, stack, stack_id, logical_id, name, say=None: f"{logical_id} held")
    resources = [
        {"LogicalResourceId": logical_id, "PhysicalResourceId": f"{name}-old", "ResourceType": "AWS::Logs::LogGroup"}
        | {"Timestamp": NOW, "ResourceStatus": "UPDATE_COMPLETE", "StackName": service.stack}
        for logical_id, name in guards.log_group_names(made, service).items()
    ]
    aws.cf.add_response("describe_stack_resources", {"StackResources": resources}, {"StackName": service.stack})
    with pytest.raises(deploy.Failure) as refused:
        guards.refuse_taken_names_ahead(made, alb)
    assert str(refused.value).startswith(
        f"error: refused before changing anything{' more' if recreated else ''}: a layer's update would make a log group under a "
        f"name another one holds, and fail there and roll back; {made.nothing_changed(alb.name)}:\n  service: "
    ), refused.value


def test_a_custom_name_not_known_before_deploy_is_left_out(aws):
    """guards.custom_names: a name another resource's attribute gives is not known before deploy, and is left out (not
    looked for as a name a create or a replacement needs)."""
    made = deploy.Deployer(aws.clients.__getitem__, ENV, out=io.StringIO(), err=io.StringIO())
    group = {"Type": "AWS::Logs::LogGroup", "Properties": {"LogGroupName": {"Fn::GetAtt": ["Topic", "TopicName"]}}}
    known = {"Type": "AWS::Logs::LogGroup", "Properties": {"LogGroupName": {"Fn::Sub": "/known/${NamePrefix}"}}}
    document = {
        "Parameters": {"NamePrefix": {"Type": "String"}},
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}, "Unknown": group, "Known": known},
    }
    prefix = deploy.load_layer(ENV, "service", OUTPUT).parameters["NamePrefix"]
    layer = types.SimpleNamespace(template=json.dumps(document), parameters={"NamePrefix": prefix})
    assert guards.custom_names(made, layer) == {"Known": f"/known/{prefix}"}


# --- attacker review (S8) of 3433b28 --------------------------------------------------------------------------------


def test_a_change_set_whose_action_on_a_protected_load_balancer_is_dynamic_is_refused(aws):
    # 3433b28: a Dynamic action "may be replaced or removed", and needs ALLOW_REPLACE=1; with it, the load balancer whose
    # deletion protection is on went through, where a Remove is refused even with ALLOW_REPLACE=1 (README: "refused with
    # ALLOW_REPLACE=1 too"): a removal or replacement decided as the update runs left it running outside the stack.
    alb = deploy.load_layer(ENV, "alb", OUTPUT)
    made = deploy.Deployer(aws.clients.__getitem__, ENV, out=io.StringIO(), err=io.StringIO())
    running = configuration(ENV, "alb")["Parameters"] | stubbed_aws.wired("alb") | stubbed_aws.deploy_time("alb")
    made.stacks[alb.stack] = described("alb", parameters=running | {"DeletionProtection": "true"})["Stacks"][0]
    dynamic = change_set("alb", changes=[change("Dynamic", "LoadBalancer", "AWS::ElasticLoadBalancingV2::LoadBalancer")])
    with pytest.raises(deploy.Failure) as failure:
        guards.refuse_deleting_a_protected_load_balancer(made, alb, dynamic, "nothing changed")
    assert "LoadBalancer, a load balancer that has deletion protection on" in str(failure.value), failure.value


def test_an_aws_error_with_no_code_in_the_clean_up_does_not_leave_an_empty_why(aws):
    """an error answer without a Code (botocore's QueryParser reads <ErrorResponse><Error><Message>x</Message></Error>
    </ErrorResponse> as an Error with no Code; error_code() then gives "")."""
    aws.deployed("cert-dns")
    aws.change_set("cert-dns", "UPDATE", CERT_CHANGES)
    aws.cf.add_client_error("delete_change_set", "", "no code", 400)
    assert aws.run("deploy", "--stack", "cert-dns") == 1
    assert f"change set {cs_name('cert-dns')} may be left" in aws.out, aws.out
    assert f"{stack('cert-dns')}: , so" not in aws.out, aws.out


def test_an_aws_error_answer_without_an_error_element_in_the_clean_up_still_names_what_is_left(aws):
    """a ClientError whose parsed answer has no Error element (botocore's QueryParser gives one for a 403 whose
    body is <html><body>Forbidden</body></html>, a proxy's): error_code() reads response["Error"] and raises KeyError
    inside undo's except, which stops the clean-up and replaces the run's own error."""
    aws.deployed("cert-dns")
    aws.change_set("cert-dns", "UPDATE", CERT_CHANGES)
    aws.cf.add_response("delete_change_set", {}, {"StackName": stack("cert-dns"), "ChangeSetName": cs_name("cert-dns")})

    def no_error_element(**_):
        raise ClientError({"ResponseMetadata": {"HTTPStatusCode": 500}}, "DeleteChangeSet")

    aws.clients["cloudformation"].meta.events.register("after-call.cloudformation.DeleteChangeSet", no_error_element)
    assert aws.run("deploy", "--stack", "cert-dns") == 1
    assert f"change set {cs_name('cert-dns')} may be left" in aws.out, aws.out + aws.err
    assert "no terminal to ask on and no YES=1 (--yes): nothing changed" in aws.err, aws.err


def test_a_lock_reads_proc_stat_of_a_process_whose_command_name_holds_a_closing_parenthesis(tmp_path):
    """/proc/<pid>/stat's command name may hold ") " (an executable named so): the fields after it start after the
    last ')' (proc(5)), or every field shifts: the state read as a word of the name (a zombie not seen as one) and the
    start time as another field."""
    assert lock.this_machine(), "this test needs Linux's /proc"
    with sleeping_as(tmp_path, b"a) S 1 b") as process:
        fields = lock.stat_fields(process.pid)
        # state (D too: waiting on the disk as it starts, seen in a CI run), then the parent: this process
        assert fields[0] in ("R", "S", "D") and fields[1] == str(os.getpid()), fields
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        started = lock.start_time(process.pid)
        assert abs(int(started) / os.sysconf("SC_CLK_TCK") - uptime) < 30, (started, uptime)


@contextlib.contextmanager
def sleeping_as(directory: Path, name: bytes):
    """A sleep whose command name (/proc/<pid>/stat's) is name: an executable of that name, linked to sleep."""
    named = directory / os.fsdecode(name)
    named.symlink_to(shutil.which("sleep"))
    process = subprocess.Popen([named, "60"])
    try:
        deadline = time.monotonic() + 30  # until it runs sleep, under its name
        while name not in Path(f"/proc/{process.pid}/stat").read_bytes():
            assert time.monotonic() < deadline, "the process did not take its name within 30 s"
            time.sleep(0.01)
        yield process
    finally:
        process.kill()
        process.wait()


@pytest.mark.parametrize("upstreams", [True, False])
def test_a_rollback_of_a_service_not_deployed_says_how_to_deploy_it(aws, upstreams):
    # "nothing to roll back" ended there (helper S1): the way on is a deploy, with the image to run; of every layer first
    # where those the service reads are not deployed either, whose absence refuses a deploy of the service alone (review R1)
    aws.not_deployed("service")
    if upstreams:
        aws.upstream_deployed("service")
    else:  # none deployed: those the service reads, and those they read, each looked for once (in any order)
        reading, read = ["service"], set()
        while reading:
            new = {upstream for upstream, _ in templates.wired_into(reading.pop()).values()} - read
            read |= new
            reading += sorted(new)
        for _ in read:
            aws.cf.add_client_error("describe_stacks", service_message="Stack does not exist", **NOT_FOUND)
    assert aws.run("rollback", "--yes") == 1
    way = (
        f"make deploy STACK=service ENV={ENV} TAG=<image> deploys it"
        if upstreams
        else f"make deploy ENV={ENV} TAG=<image> deploys every layer, the service"
    )
    assert aws.err.startswith(f"error: {stack('service')} is not deployed: nothing to roll back; {way} with that image"), aws.err


def test_a_verify_of_an_environment_not_deployed_says_how_to_deploy_it(aws):
    aws.not_deployed("alb")
    assert aws.run("verify") == 1
    assert aws.err.startswith(
        f"error: {stack('alb')} is not deployed: nothing to verify; make deploy ENV={ENV} deploys every layer first"
    ), aws.err


# --- boundaries of REPAIR= and of the earlier image's note, which mutants crossed unseen (review R1) ----------------


def test_repair_without_stack_is_not_refused_as_for_a_layer_without_rollback_triggers(aws):
    # The deploy of every layer (the service's among them) goes on to its first layer's stack: stopped there.
    asked = requests_of(aws, "DescribeStacks", raising=KeyboardInterrupt)
    assert aws.run("deploy", "--repair") == 130, aws.err
    assert asked == [{"StackName": stack(PROD_LAYERS[0])}], asked  # the first layer params/{ENV}.yaml deploys
    assert "makes a change set without rollback triggers" not in aws.err, aws.err


def test_a_new_service_stack_on_the_image_the_one_before_it_last_ran_says_nothing_of_it():
    releases = [{"image_tag": "v1", "time": "2026-01-01T00:00:00Z"}, {"image_tag": "v2", "time": "2026-01-02T00:00:00Z"}]
    assert deploy_text.earlier_stack_image(releases, "v2", ENV) == []
    (note,) = deploy_text.earlier_stack_image(releases, "v1", ENV)
    assert "the one before it last ran v2" in note and f"TAG=v2 ENV={ENV}" in note, note


def test_ctrl_c_at_a_new_service_stacks_history_read_in_make_changeset_still_says_how_to_execute_the_kept_change_set(aws):
    """make changeset keeps a change set once shown (outside discarded_if_stopped): a Ctrl-C at the release-history read
    after it must not lose the one line that names it and the make execute command (text.left_for_review)."""
    aws.deployed("alb")
    aws.deployed("release-alarms")
    aws.not_deployed("service")
    aws.change_set("service", "CREATE", [change("Add", "Service", "AWS::ECS::Service")], create_params("service", "CREATE"), left=True)
    requests_of(aws, "GetParameter", raising=KeyboardInterrupt, service="ssm")
    code = aws.run("changeset", "--stack", "service")
    assert code == 130, (code, aws.out, aws.err)
    assert "make execute STACK=service" in aws.out + aws.err, aws.out + aws.err


def test_ctrl_c_in_make_changeset_once_its_change_set_is_shown_says_it_is_kept_not_to_run_the_command_again(aws):
    # (mutation audit) Deployer.deploy sets left_for_review once the change set is said to be kept: the Ctrl-C's way on
    # (commands.going_on_after_ctrl_c) names it; without, it said "the same command again", which makes a second one.
    aws.deployed("alb")
    aws.deployed("release-alarms")
    aws.not_deployed("service")
    aws.change_set("service", "CREATE", [change("Add", "Service", "AWS::ECS::Service")], create_params("service", "CREATE"), left=True)
    requests_of(aws, "GetParameter", raising=KeyboardInterrupt, service="ssm")
    assert aws.run("changeset", "--stack", "service") == 130, (aws.out, aws.err)
    said = f"change set {cs_name('service')} is left for review, as said above: the same command again would make another"
    assert said in aws.err and "it makes a new change set" not in aws.out + aws.err, aws.out + aws.err


def test_a_stale_change_set_left_unconfirmed_is_not_said_to_need_a_new_one_as_a_refused_one_is(aws):
    """Only a guard's refusal (Refused) of a stale change set says "made with other values than today's ...: make
    changeset ... makes one with them"; one left unasked (no terminal) is left for review as it is. A mutant that dropped
    `type(refused) is Refused` (commands.py, Commands.execute) left every test green."""
    layer = "cert-dns"
    given = configuration(ENV, layer)["Parameters"]
    name, value = sorted(given.items())[0]
    aws.reviewed_change_set(layer, parameters=given | {name: f"{value}-then"})
    assert aws.run("execute", "--stack", layer, "--changeset", cs_name(layer)) == 1
    # left unasked: the run got to the question (exit 1 alone is any Failure, one before it too)
    assert "no terminal to ask on and no YES=1 (--yes): change set left for review" in aws.err, aws.err
    assert "was made with other values than today's" not in aws.err, aws.err


def test_a_create_change_set_made_by_hand_with_notification_topics_is_not_executed_whatever_the_stack_under_review_shows(aws):
    # Put back (review RB): the change's merge of the hand-made change set tests dropped this case, and a mutant that
    # took the REVIEW_IN_PROGRESS stack's topics for its own (commands.py, refuse_what_the_tools_change_sets_never_ask:
    # `if is_deployed(found)` removed) left every test green. The empty stack CreateChangeSet makes may name the change
    # set's topics (moto's does): under review, the stack has none of its own.
    hand = change_set("cert-dns") | {"NotificationARNs": [MALLORY_TOPIC]}
    aws.cf.add_response("describe_change_set", hand, {"StackName": stack("cert-dns"), "ChangeSetName": cs_name("cert-dns")})
    under_review = described("cert-dns", status="REVIEW_IN_PROGRESS", protected=False)
    under_review["Stacks"][0]["NotificationARNs"] = [MALLORY_TOPIC]
    aws.cf.add_response("describe_stacks", under_review, {"StackName": stack("cert-dns")})
    executions = requests_of(aws, "ExecuteChangeSet")
    code = aws.run("execute", "--stack", "cert-dns", "--changeset", cs_name("cert-dns"), "--yes")
    assert executions == []
    assert code == 2 and f"asks for notification topics the stack has not ({MALLORY_TOPIC})" in aws.err, (code, aws.out, aws.err)


def test_a_change_set_name_whose_time_has_neither_14_nor_17_digits_is_named_by_hand():
    # (RV: mutation audit of e7410b1) \d{14}(?:\d{3})? as \d{14,17} or \d{14}\d*: every test passed
    from scripts.deploy.layer import revision_named_in

    stack = templates.stack_name(ENV, "service")
    for digits in (13, 15, 16, 18):
        assert revision_named_in(f"{stack}-{'2' * digits}-abc1234", stack) == "unknown", digits


def deployer_on_a_terminal():
    """A Deployer whose output is a terminal (colour on), that makes no AWS call."""

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    made = deploy.Deployer(lambda *_: pytest.fail("no AWS call"), ENV, out=Terminal(), err=io.StringIO())
    assert made.colour
    return made


def test_the_deployers_lines_are_painted_on_a_terminal_not_shown_as_escapes():
    # (review of bcfd61b) Deployer.say escapes every control character of every line: on a terminal (colour on), the
    # event lines and change-set rows the tool paints itself (text.paint) printed "\x1b[31m...\x1b[0m" as text
    made = deployer_on_a_terminal()
    made.say(*deploy.text.event_lines(FAILED_CREATE, made.colour))
    printed = made.out.getvalue()
    assert "\033[31m" in printed and "\\x1b[" not in printed, repr(printed)


def test_a_retry_line_shows_an_endpoints_error_code_escaped(aws, monkeypatch):
    # (review of bcfd61b) "every line the deployer prints has its control characters escaped": the retry line printed the
    # endpoint's error Code raw (U+202E, an 8-bit CSI), where the final error line escapes it
    client = SESSION.client("cloudformation", config=deploy.CONFIG)
    ns = 'xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/"'
    failed = (
        f"<ErrorResponse {ns}><Error><Type>Receiver</Type><Code>InternalFailure\u202eevil\u009b2J</Code><Message>boom</Message>"
        "</Error><RequestId>1</RequestId></ErrorResponse>"
    )

    class Body:
        def __init__(self, data):
            self.data = data.encode()

        def stream(self, **_):
            yield self.data

    client.meta.events.register("before-send", lambda request, **_: AWSResponse(request.url, 500, {}, Body(failed)))
    monkeypatch.setattr(time, "sleep", lambda seconds: None)  # botocore's backoff between attempts
    aws.clients["cloudformation"] = client
    aws.run("status", "--stack", "cert-dns")
    retries = [line for line in aws.err.splitlines() if "retry 1 of" in line]
    assert retries and "InternalFailure\\u202eevil\\x9b2J" in retries[0], aws.err
    assert not any(c in aws.err for c in "\u202e\x9b"), repr(aws.err)


def test_the_change_set_rows_are_painted_on_a_terminal_not_shown_as_escapes():
    # (review of ada5049) text.as_printed keeps a colour only where it wraps the whole line: change_set_table indents its
    # painted rows ("  " + paint(...)), so on a terminal the red REMOVE/REPLACE rows printed "\x1b[31m...\x1b[0m" as text
    made = deployer_on_a_terminal()
    removed = {"Action": "Remove", "LogicalResourceId": "Bucket", "ResourceType": "AWS::S3::Bucket"}
    change_set = {"ChangeSetName": "cs1", "StackName": "s", "Changes": [{"Type": "Resource", "ResourceChange": removed}]}
    made.say(*deploy.text.change_set_table(change_set, None, made.colour, {}))
    printed = made.out.getvalue()
    assert "\033[31m" in printed and "\\x1b[" not in printed, repr(printed)


def test_only_the_colours_the_deployer_paints_are_kept_in_a_printed_line():
    # (helper Q7) a line wholly of outside text with an SGR code that hides it (8) or blinks passed as paint's
    assert deploy.text.as_printed("\033[8mhidden\033[0m") == "\\x1b[8mhidden\\x1b[0m"
    assert deploy.text.as_printed("  \033[31mrow\033[0m") == "  \033[31mrow\033[0m"


def test_releases_with_a_lock_left_by_a_dead_run_still_says_make_rollback_asks_for_tag(aws):
    # A make deploy STACK=service TAG=... killed in its wait (kill -9, a closed terminal) leaves the lock and its release
    # unrecorded: make releases took the lock for a release under way, "recorded once it ends; see again then", for a
    # run that will never end (the lock says so: "that run is gone"), where make rollback without TAG= refuses.
    ended = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout)
    held = HELD | {"holder": f"{lock.user()}@{socket.gethostname()} (pid {ended})", "machine": lock.this_machine()}
    entries = [release("v2", "2025-11-21T10:00:00Z") | {"replaced": "v1"}]
    aws.deployed("service", parameters=service_parameters("v3"))
    history(aws, entries)
    aws.ssm.add_response(
        "get_parameter", {"Parameter": {"Name": LOCK, "Type": "String", "Value": json.dumps(held), "Version": 1}}, {"Name": LOCK}
    )
    assert aws.run("releases") == 0, aws.err
    last = aws.out.splitlines()[-1]
    assert "that run is gone" not in last or "recorded once it ends" not in last, last
    assert last.endswith("make rollback asks for TAG=<image tag>"), last


@pytest.mark.parametrize(
    "command, stack, under_way",
    [("task", "service", False), ("rollback", "service", True), ("deploy", "alb", False), ("deploy", None, True), ("execute", None, True)],
)
def test_releases_takes_the_lock_held_by_a_live_run_for_a_release_under_way_only_if_it_may_release(aws, command, stack, under_way):
    # make task holds the lock for a migration, make deploy STACK=alb for another layer: they record no release, and the
    # note that make rollback asks for TAG= stays; a deploy of every layer, or an execute of a change set not named
    # after a layer (its layer unknown), may release
    aws.deployed("service", parameters=service_parameters("v3"))
    history(aws, [release("v2", "2025-11-21T10:00:00Z") | {"replaced": "v1"}])
    held = {"Parameter": {"Name": LOCK, "Type": "String", "Value": our_lock(command, stack), "Version": 1}}
    aws.ssm.add_response("get_parameter", held, {"Name": LOCK})
    assert aws.run("releases") == 0, aws.err
    last = aws.out.splitlines()[-1]
    assert ("a release under way is recorded once it ends" in last) is under_way, last
    assert last.endswith("make rollback asks for TAG=<image tag>") is not under_way, last


def test_ctrl_c_at_the_question_says_at_once_that_it_frees_the_lock_first(aws):
    # a stop outside a wait reaches main as KeyboardInterrupt itself (not a Failure 130): freeing the lock is said at once too
    lock_taken(aws, stack="cert-dns")
    aws.deployed("cert-dns")
    aws.change_set("cert-dns", "UPDATE", CERT_CHANGES)
    aws.cf.add_response("delete_change_set", {}, {"StackName": stack("cert-dns"), "ChangeSetName": cs_name("cert-dns")})
    lock_freed(aws, stack="cert-dns")
    assert aws.run("deploy", "--stack", "cert-dns", tty=True, answer=KeyboardInterrupt(), locking=True) == 130, aws.err
    assert f"stopping: freeing the lock this run holds ({LOCK}) first" in aws.err, aws.err


def test_ctrl_c_in_a_stack_wait_says_at_once_that_it_frees_the_lock_first(aws):
    # (mutation audit) a stop inside a wait reaches main as a Failure 130 (the wait says what goes on), not as
    # KeyboardInterrupt: it is a stop all the same, and freeing the lock is said at once, before AWS's retries
    aws.caller()  # the account a YES=1 run prints with its question, before it read any stack
    lock_taken(aws, stack="cert-dns")
    cert_dns_created(aws, "CREATE_IN_PROGRESS", event("cert-dns", stack("cert-dns"), "CREATE_IN_PROGRESS", 1))
    lock_freed(aws, stack="cert-dns")

    def interrupt(seconds):
        raise KeyboardInterrupt

    assert aws.run("deploy", "--stack", "cert-dns", "--yes", sleep=interrupt, locking=True) == 130, aws.err
    assert "nothing was cancelled" in aws.err, aws.err  # the wait's Failure 130, not main's KeyboardInterrupt
    assert f"stopping: freeing the lock this run holds ({LOCK}) first" in aws.err, aws.err
    aws.ssm.assert_no_pending_responses()  # the lock was read and deleted


def test_releases_while_the_service_stack_updates_says_its_release_is_under_way_without_reading_the_lock(aws):
    # the stack changing (a release in its wait, its record written when it ends): no "make rollback asks for TAG=" alarm,
    # and no lock read (the stubbed SSM has no GetParameter answer: a read would fail the run)
    aws.deployed("service", status="UPDATE_IN_PROGRESS", parameters=service_parameters("v3"))
    history(aws, [release("v2", "2025-11-21T10:00:00Z") | {"replaced": "v1"}])
    assert aws.run("releases") == 0, aws.err
    assert aws.out.splitlines()[-1] == (
        f"{stack('service')} runs image v3 (UPDATE_IN_PROGRESS: a release under way is recorded once it ends; see again then)"
    ), aws.out


@pytest.mark.parametrize("status", ["UPDATE_ROLLBACK_FAILED", "DELETE_FAILED"])
def test_releases_says_make_rollback_is_refused_for_a_stuck_service_stack_and_the_way_on(aws, status):
    # make rollback refuses such a stack before it reads the history (Deployer.ready): the list says so, with the way on
    # the refusal gives, not that make rollback goes back to the release below
    aws.deployed("service", status=status, parameters=service_parameters("v3"))
    history(aws, [release("v2", "2025-11-21T10:00:00Z") | {"replaced": "v1"}, release("v3", "2025-11-22T10:00:00Z") | {"replaced": "v2"}])
    assert aws.run("releases") == 0, aws.err
    last = aws.out.splitlines()[-1]
    assert last.startswith(f"{stack('service')} runs image v3 (make rollback is refused while the stack is {status}: "), last
    aws.out, aws.err = "", ""
    aws.deployed("service", status=status, parameters=service_parameters("v3"))
    assert aws.run("rollback") == 1
    way_on = last.partition(f"{status}: ")[2].removesuffix(")")
    assert aws.err.rstrip().endswith(way_on), (aws.err, way_on)


def test_releases_says_make_rollback_asks_for_tag_where_it_finds_nothing_earlier_too(aws):
    # The history's start trimmed, then a rollback by TAG= to v9: make rollback without TAG= refuses ("nothing earlier to
    # roll back to: ... names no image that ran before the running one ... or cannot tell which"), yet make releases,
    # said (README) to note where make rollback without TAG= would refuse for want of knowing what ran before, says nothing.
    from scripts.deploy.history import previous_release

    entries = [
        release("v2", "2025-11-20T10:00:00Z") | {"replaced": "v1"},
        release("v3", "2025-11-21T10:00:00Z") | {"replaced": "v2"},
        release("v9", "2025-11-22T10:00:00Z") | {"replaced": "v3", "rolled_back_from": "v3"},
    ]
    assert previous_release(entries, "v9") is None  # make rollback without TAG= refuses
    aws.deployed("service", parameters=service_parameters("v9"))
    history(aws, entries)
    lock_free(aws)
    assert aws.run("releases") == 0, aws.err
    assert "TAG=" in aws.out.splitlines()[-1], aws.out


def test_releases_whose_lock_answer_cannot_be_read_still_lists_the_releases(aws):
    # Commands.release_under_way: "a hint for a note, not worth an error"; an answer without the lock's Value (an emulator's) made
    # make releases fail, exit 1, "error: KeyError: 'Value', at scripts/deploy/lock.py:..."
    aws.deployed("service", parameters=service_parameters("v3"))
    history(aws, [release("v2", "2025-11-21T10:00:00Z") | {"replaced": "v1"}])
    aws.ssm.add_response("get_parameter", {"Parameter": {"Name": LOCK, "Type": "String", "Version": 1}}, {"Name": LOCK})
    assert aws.run("releases") == 0, aws.err
    assert aws.out.splitlines()[-1].endswith("make rollback asks for TAG=<image tag>"), aws.out


def test_releases_reads_a_lock_whose_layer_it_shows_as_every_layer_as_one_of_every_layer(aws):
    # (R4) holder() shows a lock whose "stack" is empty (falsy) as of every layer ("deploy by ..."), while
    # release_under_way took it for a run of another layer: one value, two readings
    aws.deployed("service", parameters=service_parameters("v3"))
    history(aws, [release("v2", "2025-11-21T10:00:00Z") | {"replaced": "v1"}])
    value = json.dumps(json.loads(our_lock("deploy")) | {"stack": ""})
    aws.ssm.add_response("get_parameter", {"Parameter": {"Name": LOCK, "Type": "String", "Value": value, "Version": 1}}, {"Name": LOCK})
    assert aws.run("releases") == 0, aws.err
    last = aws.out.splitlines()[-1]
    assert "the lock is held: deploy by " in last and "a release under way is recorded once it ends" in last, last


def test_a_second_ctrl_c_as_the_stopping_run_says_it_frees_the_lock_is_held_until_it_is_freed(aws):
    # R5: release(stopping) says "stopping: freeing the lock this run holds ... first" before the stop signals are held
    # (stops_held): a frantic double Ctrl-C whose second lands as that line is written (a slow or paused stderr) left
    # the lock held, with no warning and no make unlock, where the docstring promises the next stop is held all the same
    class SecondCtrlCAsTheLineIsWritten(io.StringIO):
        sent = False

        def write(self, text):
            if text.startswith("stopping: freeing the lock this run holds"):
                type(self).sent = True
                os.kill(os.getpid(), signal.SIGINT)  # the second Ctrl-C, as the line is written
            return super().write(text)

    lock_taken(aws, stack="cert-dns")
    aws.deployed("cert-dns")
    aws.change_set("cert-dns", "UPDATE", CERT_CHANGES)
    aws.cf.add_response("delete_change_set", {}, {"StackName": stack("cert-dns"), "ChangeSetName": cs_name("cert-dns")})
    lock_freed(aws, stack="cert-dns")
    code = aws.run("deploy", "--stack", "cert-dns", tty=True, answer=KeyboardInterrupt(), locking=True, err=SecondCtrlCAsTheLineIsWritten())
    assert code == 130 and SecondCtrlCAsTheLineIsWritten.sent, aws.err
    aws.ssm.assert_no_pending_responses()  # the lock was read and deleted


def test_a_take_whose_every_attempt_went_unanswered_says_at_its_release_it_may_be_held_without_asking_aws_again():
    # Every attempt of the take timed out (it may have landed): a release that read the lock back would wait a
    # second round of retries with the stop signals held; it says at once that the lock may be held, and how to free it.
    from botocore.exceptions import ReadTimeoutError

    class Ssm:
        def put_parameter(self, **_):
            raise ReadTimeoutError(endpoint_url="https://ssm")

        def get_parameter(self, **_):
            raise AssertionError("a second round of unanswered attempts")

        delete_parameter = get_parameter

    err = io.StringIO()
    lock = deploy.lock.EnvironmentLock(Ssm(), ENV, lambda: NOW, err)
    with pytest.raises(ReadTimeoutError):
        lock.take("deploy")
    lock.release()
    assert err.getvalue() == (
        f"warning: {LOCK} may be held by this run (the take's request went unanswered, and may have landed); "
        f"once AWS answers, see and free it with: make unlock ENV={ENV}\n"
    )
    assert lock.said_held  # the run's error then names make unlock first


def test_a_lock_of_another_users_run_still_running_on_this_machine_is_not_freed_by_unlock(monkeypatch):
    # A shared host: the lock's holder runs as another user, so signal 0 is refused (EPERM), yet it runs and
    # /proc/<pid>/stat tells its start time: unlock refuses, as for one of this user's runs.
    machine = lock.this_machine()
    assert machine, "this test needs Linux's /proc"
    process = subprocess.Popen(["sleep", "60"])
    try:
        held = {"holder": f"alice@{socket.gethostname()} (pid {process.pid})", "machine": machine, "started": lock.start_time(process.pid)}

        def refused(pid, signum):
            raise PermissionError(1, "Operation not permitted")

        with monkeypatch.context() as patched:
            patched.setattr(lock.os, "kill", refused)
            assert lock.holder_runs(held, ENV) is True
            assert lock.still_running(json.dumps(HELD | held), ENV) == process.pid
            assert lock.gone(held, ENV) == ""
    finally:
        process.kill()
        process.wait()


def test_a_lock_whose_live_holder_this_machine_cannot_look_at_is_neither_said_gone_nor_said_running(monkeypatch):
    # /proc mounted hidepid=2: another user's process is there (signal 0 refused: EPERM) but its /proc/<pid>/stat
    # cannot be read. Whether it is the run that took the lock cannot be told: not "that run is gone; free the lock",
    # and not "still runs on this machine" either (make unlock asks the operator).
    machine = lock.this_machine()
    assert machine, "this test needs Linux's /proc"
    held = {"holder": f"alice@{socket.gethostname()} (pid 4242)", "machine": machine, "started": "123456"}

    def refused(pid, signum):
        raise PermissionError(1, "Operation not permitted")

    with monkeypatch.context() as patched:
        patched.setattr(lock.os, "kill", refused)
        patched.setattr(lock, "stat_fields", lambda pid: None)
        assert lock.holder_runs(held, ENV) is None
        assert lock.gone(held, ENV) == ""
        assert lock.still_running(json.dumps(HELD | held), ENV) is None


def test_a_lock_taken_in_a_github_actions_run_names_that_run_as_its_holder(monkeypatch):
    # A runner's user@host (runner@fv-az123-456) tells an operator nothing: the lock names the workflow run to look at.
    written = {}

    class Ssm:
        def put_parameter(self, **request):
            written.update(request)

    monkeypatch.setenv("GITHUB_RUN_ID", "9876543210")
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/startupwebapp")
    err = io.StringIO()
    lock = deploy.lock.EnvironmentLock(Ssm(), ENV, lambda: NOW, err)
    lock.take("deploy", "alb")
    held = json.loads(written["Value"])
    assert held["holder"] == f"GitHub run acme/startupwebapp#9876543210 (pid {os.getpid()})", held
    assert lock.holder(written["Value"]).startswith(
        f"deploy STACK=alb by GitHub run acme/startupwebapp#9876543210 (pid {os.getpid()}) since "
    )
    assert written["Overwrite"] is False and written["Name"] == LOCK and lock.value == written["Value"]


@pytest.mark.parametrize("value", ["locked by alice", "[4242]", "null"], ids=["no JSON", "a JSON list", "JSON null"])
def test_unlock_frees_a_lock_written_by_hand_saying_it_as_it_reads(aws, value):
    # Anyone who may write the parameter (aws ssm put-parameter by hand): no holder's process to look for, and
    # no traceback; unlock shows the value as it reads and frees it once asked.
    held = {"Parameter": {"Name": LOCK, "Type": "String", "Value": value, "Version": 1}}
    for _ in range(2):
        aws.ssm.add_response("get_parameter", held, {"Name": LOCK})
    aws.ssm.add_response("delete_parameter", {}, {"Name": LOCK})
    aws.caller()
    assert aws.run("unlock", "--yes") == 0, aws.err
    assert f"{ENV}: lock freed (was {value!r})" in aws.out, aws.out
    assert "Traceback" not in aws.err, aws.err


def test_an_older_lock_whose_process_id_now_runs_a_command_line_not_utf8_is_said_gone():
    # A lock with no start time (an older tool's) is told by its process's command line; one whose words are not
    # UTF-8 (the kernel keeps bytes) is read with replacement characters: no deployer, so that run is gone.
    machine = lock.this_machine()
    assert machine, "this test needs Linux's /proc"
    process = subprocess.Popen([b"sh", b"-c", b"sleep 60; :", b"arg\xff"])  # sh waits for its sleep: its words stay
    try:
        deadline = time.monotonic() + 30  # until exec'd: its command line is the one given
        while b"arg\xff" not in Path(f"/proc/{process.pid}/cmdline").read_bytes():
            assert time.monotonic() < deadline, "the process did not start within 30 s"
            time.sleep(0.01)
        assert lock.command_line(process.pid) == ["sh", "-c", "sleep 60; :", "arg\ufffd"]
        held = {"holder": f"{lock.user()}@{socket.gethostname()} (pid {process.pid})", "machine": machine}
        assert lock.holder_runs(held, ENV) is False
    finally:
        process.kill()
        process.wait()


def test_purge_leaves_a_retained_bucket_whose_tags_cannot_be_read_as_unreadable():
    # Helper T7 (mutation audit of _inspect_bucket): a refusal of GetBucketTagging other than NoSuchTagSet is not "no tags"
    # (another's bucket, said as made by hand): it is a bucket purge cannot read, which purge_each counts as a failure
    # (the next purge tries again). With every refusal taken as no tag set, every test passed.
    client = SESSION.client("s3", config=deploy.CONFIG)
    stubber = Stubber(client)
    item = purge.Retained(stack("alb"), stack_id("alb"), "AccessLogBucket", "AWS::S3::Bucket", "access-logs")
    stubber.add_client_error("get_bucket_tagging", "AccessDenied", "Access Denied", 403, expected_params={"Bucket": item.physical_id})
    with stubber:
        purge.inspect(types.SimpleNamespace(client=lambda service: client, cli=CLI), item, {})
    stubber.assert_no_pending_responses()
    assert (item.action, item.unreadable, item.foreign) == (None, True, False)
    assert item.note == "left: cannot read it (AccessDenied: Access Denied)", item.note


def test_a_change_set_read_over_two_pages_keeps_the_changes_of_both():
    # Kills mutant "change_set['Changes'] = more['Changes']" (wait_for_change_set): the first page's changes (here a
    # target group replaced) dropped, the table, the replacement guard and the question would miss them.
    client = SESSION.client("cloudformation", config=deploy.CONFIG)
    stubber = Stubber(client)
    asked = {"StackName": stack("alb"), "ChangeSetName": cs_name("alb")}
    done = {"Status": "CREATE_COMPLETE", "ExecutionStatus": "AVAILABLE"}
    stubber.add_response("describe_change_set", done | {"Changes": ALB_CHANGES[:1], "NextToken": "A"}, asked)
    stubber.add_response("describe_change_set", done | {"Changes": ALB_CHANGES[1:]}, asked | {"NextToken": "A"})
    run = types.SimpleNamespace(cf=client, polls=lambda seconds: iter([0]))
    with stubber:
        read = deployer.Deployer.wait_for_change_set(run, types.SimpleNamespace(stack=stack("alb"), name="alb"), cs_name("alb"))
    stubber.assert_no_pending_responses()
    assert len(ALB_CHANGES) > 1 and read["Changes"] == ALB_CHANGES, read


def test_a_create_into_a_stack_under_review_names_no_image_it_replaces(aws):
    # Kills mutant "replaced_by reads the stack's ImageTag when it does not exist": the values an empty stack under
    # review shows are its change set's, not a running image; a CREATE's Description naming one gives make execute a
    # way back to an image that never ran.
    service = deploy.load_layer(ENV, "service", OUTPUT)
    made = deploy.Deployer(aws.clients.__getitem__, ENV, out=io.StringIO(), err=io.StringIO())
    made.stacks[service.stack] = described("service", "REVIEW_IN_PROGRESS", parameters=service_parameters("v1"))["Stacks"][0]
    assert made.replaced_by(service, {"ImageTag": "v2"}, exists=False) is None
    made.stacks[service.stack] = described("service", "UPDATE_COMPLETE", parameters=service_parameters("v1"))["Stacks"][0]
    assert made.replaced_by(service, {"ImageTag": "v2"}, exists=True) == "v1"  # an update's does


def test_a_declined_create_into_a_stack_under_review_left_before_the_run_deletes_only_its_change_set(aws):
    # Kills mutant "what_it_made drops `layer.stack not in self.waiting`": the empty stack was there before the run
    # (a make changeset's): not the run's to delete, only its own change set is.
    aws.deployed("cert-dns", status="REVIEW_IN_PROGRESS", protected=False)
    aws.change_set("cert-dns", "CREATE", CERT_CHANGES, left=True)  # declined (no terminal): it never runs
    aws.cf.add_response("list_change_sets", {"Summaries": []}, {"StackName": stack("cert-dns")})  # others it would end: none
    aws.cf.add_response("delete_change_set", {}, {"StackName": stack("cert-dns"), "ChangeSetName": cs_name("cert-dns")})
    deletions = requests_of(aws, "DeleteStack")
    assert aws.run("deploy", "--stack", "cert-dns") == 1
    assert f"{stack('cert-dns')}: change set {cs_name('cert-dns')} deleted" in aws.out
    assert deletions == [] and "empty (REVIEW_IN_PROGRESS)" not in aws.out and "left as it is" not in aws.out, aws.out + aws.err


def test_make_changeset_of_a_replacement_under_the_same_name_leaves_it_to_left_for_review_alone(aws):
    # Kills mutant "say_refused_at_execute drops its custom_named_replacements return": left_for_review names the
    # replacement and its way out; the look again would say the same refusal twice (and read AWS for nothing).
    service = deploy.load_layer(ENV, "service", OUTPUT)
    out = io.StringIO()
    made = deploy.Deployer(aws.clients.__getitem__, ENV, out=out, err=io.StringIO())
    changes = [change("Modify", "Service", "AWS::ECS::Service", "True", [detail("Cluster", recreation="Always")])]
    assert deploy_text.custom_named_replacements(change_set("service", changes=changes), service.custom_named)  # the premise
    made.say_refused_at_execute(service, change_set("service", changes=changes), exists=True)
    assert out.getvalue() == ""


def test_an_executed_change_set_of_no_resource_changes_says_0_changes(aws, monkeypatch):
    # Kills mutant "change{'s' * (changes > 1)}" (execute's outcome): an update of outputs alone runs a change set with
    # no resource changes, whose summary read "updated, 0 change".
    layer = "cert-dns"
    aws.deployed(layer)
    aws.change_set(layer, "UPDATE", [])
    aws.execute(layer)
    done = [event(layer, stack(layer), "UPDATE_IN_PROGRESS", 1, reason="User Initiated"), event(layer, stack(layer), "UPDATE_COMPLETE", 9)]
    aws.poll(layer, stack_id(layer), described(layer, "UPDATE_COMPLETE"), *done)
    policy = configuration(ENV, layer).get("StackPolicy")
    if policy:  # put back after the update (protect)
        aws.cf.add_response("set_stack_policy", {}, {"StackName": stack(layer), "StackPolicyBody": json.dumps(policy)})
    outcomes = []
    monkeypatch.setattr(deployer.Deployer, "settle", lambda self, *args: outcomes.append(dict(self.outcomes)))
    assert aws.run("deploy", "--stack", layer, "--yes") == 0, aws.err
    assert outcomes == [{layer: "updated, 0 changes"}], outcomes


def test_the_readme_states_the_waits_the_deployer_makes():
    # README's "Bounded waits" is what an operator plans a deploy by: the bound of one stack operation of each layer and of
    # a change set's computing (mutation audit Z6, mutants: DEFAULT_WAIT_MINUTES, WAIT_MINUTES or CHANGE_SET_WAIT_MINUTES
    # TASK_WAIT_MINUTES or CI_JOB_STEPS_MINUTES changed, which every other test reads rather than states)
    text = " ".join((ROOT / "README.md").read_text().split())
    said = re.search(r"at most (\d+) minutes for cert-dns \(.*?\), (\d+) for service \(.*?\) and (\d+) for every other layer", text)
    assert said, "README no longer states the stack operations' bounds"
    assert tuple(int(n) for n in said.groups()) == (
        templates.WAIT_MINUTES["cert-dns"],
        templates.WAIT_MINUTES["service"],
        templates.DEFAULT_WAIT_MINUTES,
    )
    assert set(templates.WAIT_MINUTES) == {"cert-dns", "service"}  # the layers README names; any other waits the default
    assert f"A change set CloudFormation has not computed after {templates.CHANGE_SET_WAIT_MINUTES} minutes" in text
    assert f"It waits at most {templates.TASK_WAIT_MINUTES} minutes (`MAX_WAIT=<minutes>`)" in text  # make task's
    # and the release waits make templates lets through, what the deploy job's time leaves (CI_JOB_STEPS_MINUTES among it)
    from templates.common import MOST_RELEASE_WAIT_MINUTES

    assert f"that add up to more than {MOST_RELEASE_WAIT_MINUTES} minutes" in text
    assert f"the GitHub Actions deploy job runs {templates.CI_DEPLOY_JOB_MINUTES} minutes at most" in text


class _ClosedPipe(io.StringIO):
    """A stdout whose reader is gone (`| true` exited before anything was written): every write fails."""

    def write(self, text):
        raise BrokenPipeError(32, "Broken pipe")

    def flush(self):
        raise BrokenPipeError(32, "Broken pipe")


def test_a_question_asked_on_the_terminal_is_refused_when_the_output_s_reader_is_gone(monkeypatch, tmp_path):
    # `make destroy STACK=x | true`: destroy writes nothing before its question, so no failed write has said the
    # reader is gone. input(question) wrote the question to stdout, whose EPIPE refused the question (README, Faults:
    # "a question it would ask is refused, as without a terminal"); asked on /dev/tty, it was answered and the destroy
    # ran with its whole output dropped, exit 0 (seen on the sandbox under a pty).
    from templates.errors import Output

    terminal = tmp_path / "tty"
    monkeypatch.setattr(deploy, "TERMINAL", str(terminal))
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\n"))
    out = Output(_ClosedPipe(), goes_on=True)
    asker = deployer.Deployer(lambda *a, **k: None, ENV, out=out, err=io.StringIO(), ask=deploy.asking_on_a_terminal(out), interactive=True)
    monkeypatch.setattr(asker, "where", lambda: "account 123456789012, us-east-1")
    assert asker.why_not("destroy startupwebapp-prod-alarms? [y/N] ") is not None, "answered yes with no reader of the output"


def test_ctrl_c_at_a_question_asked_on_the_terminal_ends_the_terminal_s_line(monkeypatch, tmp_path):
    # `make destroy > destroy.log`, Ctrl-C at the question: the newline that should end the question's line went into
    # destroy.log (a stray empty line), and the terminal showed "[y/N] ^Cstopping: freeing the lock ..." on one line.
    terminal = tmp_path / "tty"
    monkeypatch.setattr(deploy, "TERMINAL", str(terminal))

    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr("builtins.input", interrupted)
    log = io.StringIO()
    asker = deployer.Deployer(lambda *a, **k: None, ENV, out=log, err=io.StringIO(), ask=deploy.asking_on_a_terminal(log), interactive=True)
    monkeypatch.setattr(asker, "where", lambda: "account 123456789012, us-east-1")
    with pytest.raises(KeyboardInterrupt):
        asker.why_not("destroy startupwebapp-prod-alarms? [y/N] ")
    assert terminal.read_text().endswith("\n") and log.getvalue() == "", (terminal.read_text(), log.getvalue())


def test_a_pipe_whose_reader_is_gone_is_known_before_anything_is_written_to_it():
    # `make destroy | true`: the question is not asked on the terminal when the output's pipe has no reader left
    from templates.errors import Output

    reader, writer = os.pipe()
    try:
        with os.fdopen(os.dup(writer), "w") as stream:
            out = Output(stream, goes_on=True)
            assert not out.reader_gone
            os.close(reader)
            reader = None
            assert out.reader_gone and not out.gone  # known by asking the pipe, before any write failed
    finally:
        os.close(writer)
        if reader is not None:
            os.close(reader)
    assert not Output(io.StringIO(), goes_on=True).reader_gone  # no descriptor: not known, asked (a failed write says it)


def test_a_question_whose_pipe_lost_its_reader_is_refused_before_it_is_asked(aws, monkeypatch):
    # make destroy STACK=... | true at a terminal: Deployer.why_not refuses it before the question goes to the terminal
    from templates.errors import Output

    reader, writer = os.pipe()
    os.close(reader)
    questions = []
    try:
        with os.fdopen(writer, "w") as stream:
            asker = deployer.Deployer(
                lambda *a, **k: None, ENV, out=Output(stream, goes_on=True), err=io.StringIO(), ask=questions.append, interactive=True
            )
            why = asker.why_not("destroy startupwebapp-prod-alarms? [y/N] ")
    except BrokenPipeError:  # the close of the stream flushes nothing: nothing was written
        pass
    assert not questions and why.startswith("the output's reader is gone"), why


def test_make_execute_again_of_an_allow_replace_update_that_failed_in_its_stopped_wait_puts_the_policy_back(aws):
    # `make execute ALLOW_REPLACE=1` stopped in its wait said "the same command again once the stack has settled ... puts
    # on what this run may have left off (the stack policy ...)"; the update then failed and rolled back
    # (ExecutionStatus EXECUTE_FAILED, the stack UPDATE_ROLLBACK_COMPLETE), its policy still relaxed and marked. An
    # unstopped run puts it back there (Deployer.execute protects any UPDATABLE stack); the same command again did not.
    lock_taken(aws, "alb", command="execute", stack="alb")
    executed = change_set("alb") | {"ExecutionStatus": "EXECUTE_FAILED"}
    aws.cf.add_response("describe_change_set", executed, {"StackName": stack("alb"), "ChangeSetName": cs_name("alb")})
    aws.deployed("alb", status="UPDATE_ROLLBACK_COMPLETE")
    aws.policy_restored("alb")
    lock_freed(aws, command="execute", stack="alb")
    assert aws.run("execute", "--stack", "alb", "--changeset", cs_name("alb"), "--yes", locking=True) == 1
    assert "was executed already, and failed" in aws.err, aws.err
    assert f"{stack('alb')}: its stack policy, relaxed by a run stopped during an --allow-replace update, put back" in aws.out, aws.out
