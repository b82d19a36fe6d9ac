"""`make purge ENV=<env> [STACK=<layer>] [YES=1]`: delete what the environment's destroyed stacks
retained on purpose, and nothing else.

The layers retain what holds data (log groups, their KMS keys, the access-log bucket) and the
certificate when their stack is deleted (DeletionPolicy RetainExceptOnCreate, templates/common.py);
the log groups keep their fixed names, which blocks creating the layer again. purge frees them:

- The list is CloudFormation's own: it lists a deleted stack's resources for 90 days after, by stack
  id, with ResourceStatus DELETE_SKIPPED for those it retained and their exact physical ids. purge
  takes nothing else: no name patterns, no guessing.
  https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_ListStackResources.html
- Before touching one, purge checks that it is still the resource that stack created: CloudFormation
  tags what it creates with aws:cloudformation:stack-id and logical-id, and only AWS can set aws:
  tags, so a resource made by hand under the same name does not carry them and is left alone.
  A KMS key carries no such tags (its resource schema says cloudFormationSystemTags: false); its id,
  which AWS gives no other key, is the proof.
  https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-properties-resource-tags.html
- It refuses while a stack of the layer is being deleted (its destroy is not over). A stack of the layer there now
  (deployed again) is left, with everything it holds, whatever tags that carries; what its deleted stacks retained
  is purged all the same. It shows the list, and asks (YES=1 without a terminal).

What it does with each kind:
- log group: deleted, with its logs (the list shows how many bytes, and how to read or export them first);
- KMS key: deletion scheduled with the longest waiting period, 30 days, never at once, and only once
  no log group it encrypts stays (one the stacks retained, or any other of the account and region);
  `aws kms cancel-key-deletion`, then `aws kms enable-key` (a cancelled deletion leaves the key disabled),
  undo it within the 30 days, and a later purge leaves a key so taken back (PURGE_MARK). The account administers the key, so
  anyone of the account may have encrypted other data with it since the stack went; nothing tells
  (but CloudTrail), and a key pending deletion "can't be used in any cryptographic operations": such
  a use fails from the scheduling on, which is the sign to cancel, for a month rather than a week;
  https://docs.aws.amazon.com/kms/latest/APIReference/API_ScheduleKeyDeletion.html
- S3 bucket: deleted only when empty (no object, version or delete marker); one holding access logs
  is left, saying so;
- certificate: deleted (it holds no data; a new cert-dns stack requests a new one) unless in use;
- load balancer, target group (retained by stacks of earlier templates): deleted, unless deletion
  protection is on or a load balancer still uses the group;
- any other type: left, with the command to delete it by hand.
"""

import contextlib
import functools
import json
import shlex
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from botocore.exceptions import ClientError

import templates
from scripts.deploy import aws, text
from scripts.deploy.failure import Failure
from scripts.deploy.layer import load_layer, read_template
from scripts.deploy.status import EMPTY_STATUSES, UPDATABLE
from templates.errors import Terminated, printable, stops_held

KEY_WINDOW_DAYS = 30  # the longest ScheduleKeyDeletion accepts (7 to 30; see the docstring)
STACK_ID_TAG, LOGICAL_ID_TAG = "aws:cloudformation:stack-id", "aws:cloudformation:logical-id"
# The tag purge puts on a key right before it schedules the key's deletion. A later purge that finds a key so marked and
# not pending deletion leaves it: its deletion was cancelled since (how whoever still needs the key keeps it), or that
# purge was stopped (a second Ctrl-C: the first is held, purge_each) as it scheduled it, or could not take the tag off
# again (_schedule_key_deletion). A tag,
# as a key has no other field the tool may write; none of aws: (reserved to AWS), and one that names no permission
# ("Tagging or untagging a KMS key can allow or deny permission to the KMS key":
# https://docs.aws.amazon.com/kms/latest/APIReference/API_TagResource.html).
PURGE_MARK = f"{templates.PROJECT}:purge-scheduled"
# Resources whose fixed names make a new stack's create fail while they exist.
NAMED = {"AWS::Logs::LogGroup", "AWS::ElasticLoadBalancingV2::LoadBalancer", "AWS::ElasticLoadBalancingV2::TargetGroup"}
# Purge order: what uses another goes first (a key after the log groups it encrypts).
ORDER = (
    "AWS::ElasticLoadBalancingV2::LoadBalancer",
    "AWS::ElasticLoadBalancingV2::TargetGroup",
    "AWS::Logs::LogGroup",
    "AWS::S3::Bucket",
    "AWS::CertificateManager::Certificate",
    "AWS::KMS::Key",
)


class Gone(Exception):
    """The resource no longer exists."""


@dataclass
class Retained:
    stack: str
    stack_id: str
    logical_id: str
    kind: str
    physical_id: str
    action: str | None = None  # "delete" or "schedule"; None: left as it is
    note: str = ""
    gone: bool = False
    scheduled: bool = False  # a key whose deletion is scheduled already: nothing left to do, one line for all
    foreign: bool = False  # a resource of that name exists, but that stack did not make it
    kept_on_replace: bool = False  # foreign: a later stack of that name made it, and kept it when an update replaced it
    failed: bool = False  # its deletion was refused, or it could not be read again before it (said as it happened)
    unreadable: bool = False  # it, or for a key the log groups that may use it, could not be read (no permission, no answer): left
    facts: dict | None = None

    @property
    def label(self) -> str:
        return f"{self.logical_id} ({self.kind}) {self.physical_id}"


# --- what destroy prints ------------------------------------------------------------------------
def free_command(kind, physical_id, cli) -> str | None:
    """The AWS CLI command that frees one retained resource, or None for a type purge leaves (cli:
    how the command starts, the deployer's cli: its region and endpoint)."""
    q = shlex.quote(physical_id)
    return {
        "AWS::Logs::LogGroup": f"{cli} logs delete-log-group --log-group-name {q}",
        "AWS::KMS::Key": f"{cli} kms schedule-key-deletion --key-id {q} --pending-window-in-days {KEY_WINDOW_DAYS}",
        "AWS::S3::Bucket": f"{cli} s3api delete-bucket --bucket {q}",
        "AWS::CertificateManager::Certificate": f"{cli} acm delete-certificate --certificate-arn {q}",
        "AWS::ElasticLoadBalancingV2::LoadBalancer": f"{cli} elbv2 delete-load-balancer --load-balancer-arn {q}",
        "AWS::ElasticLoadBalancingV2::TargetGroup": f"{cli} elbv2 delete-target-group --target-group-arn {q}",
    }.get(kind)


def say_retained(deployer, keep, ids) -> bool:
    """destroy's lines for what the deleted stack retained; whether it retained anything (destroy then names make
    purge once, for every layer). No command that deletes one: what holds the name now may not be what the stack
    made (a log group deleted by hand and made again by another team under that name), which make purge checks."""
    for logical_id, kind in keep.items():
        physical_id = ids.get(logical_id)
        if not physical_id:
            continue  # never created (the create that failed, or its Condition false): nothing is retained
        # What CloudFormation skipped, not looked up: one deleted by hand before is gone (make purge looks, and lists only what is there).
        deployer.say(f"  retained, not deleted with the stack: {logical_id} ({kind}) {physical_id}")
    if not any(ids.get(logical_id) for logical_id in keep):
        return False
    named = sorted(logical_id for logical_id, kind in keep.items() if kind in NAMED and ids.get(logical_id))
    if named:
        # while it exists: one deleted by hand since (unread here) blocks nothing
        deployer.say(f"  {', '.join(named)}: the name blocks creating this layer again while it exists")
    return True


def say_purge(deployer, layers, each):
    """After destroy: one line for what make purge frees, the layers' retained resources and only them;
    with `each` (STACK= given, or a destroy that stopped half way, whose other stacks make a purge of
    the whole environment refuse) a command per layer."""
    if not layers:
        return
    commands = [f"make purge ENV={deployer.env} STACK={layer}" for layer in layers] if each else [f"make purge ENV={deployer.env}"]
    logs = (
        f"; until then make logs ENV={deployer.env} reads the service's kept logs while its log group is there"
        if "service" in layers
        else ""
    )
    deployer.say(
        f"free all that {'the destroyed stack' if len(layers) == 1 else 'the destroyed stacks'} retained, and only that, once the "
        f"data may go: {'; '.join(commands)} (lists it and asks first){logs}"
    )


@dataclass(frozen=True)
class Protection:
    """Why a stack's load balancer counts as deletion-protected (deletion_protected)."""

    arn: str | None = None  # None: its DeletionProtection parameter is true; else ELB's attribute says so (or may)
    unread: str | None = None  # the error code where ELB's attribute could not be read: taken as on, not as off
    stuck: str | None = None  # the stack's status where no deploy can update it (ROLLBACK_FAILED, DELETE_FAILED)

    @property
    def said(self) -> str:
        if self.unread:
            return f"may have deletion protection on (whether it does could not be read: {self.unread})"
        return "has deletion protection on" + (" (DeletionProtection=true)" if self.arn is None else "")


def deletion_protected(deployer, stacks) -> dict:
    """The stacks whose load balancer has deletion protection on: CloudFormation cannot delete it, so deleting
    the stack would end DELETE_FAILED half way. stack -> Protection: its DeletionProtection parameter true, or ELB's
    attribute on with the parameter false (turned on outside this tool: a destroy read the parameter alone, deleted
    every other layer, and ended DELETE_FAILED at alb), or that attribute unreadable (taken as on: refused, not risked).
    https://docs.aws.amazon.com/elasticloadbalancing/latest/application/application-load-balancers.html#deletion-protection"""
    found = {}
    for stack in stacks:
        # A first create that rolled back deleted what it made (a protected load balancer would have left it
        # ROLLBACK_FAILED), and an empty stack under review holds none: nothing stops their deletion.
        if deployer.is_create(stack):
            continue
        described = deployer.describe(stack)
        arn, status = text.output_values(described).get("LoadBalancerArn"), described["StackStatus"]
        if status not in UPDATABLE and status != "UPDATE_ROLLBACK_FAILED" and not status.endswith("_IN_PROGRESS"):
            # No deploy turns the parameter's protection off: ELB's attribute of the load balancer the stack holds
            # (a failed create has no outputs) says whether it is on. "You can't work with or update the stack" (DELETE_FAILED):
            # https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/view-stack-events.html#cfn-console-view-stack-data-resources-status-codes
            arn = arn or next(
                (
                    resource.get("PhysicalResourceId")
                    for resource in deployer.cf.describe_stack_resources(StackName=stack)["StackResources"]
                    if resource["ResourceType"] == "AWS::ElasticLoadBalancingV2::LoadBalancer"
                ),
                None,
            )
            if arn and (protection := _protection_of(deployer, arn)):
                found[stack] = replace(protection, stuck=status)
        elif text.parameter_values(described).get("DeletionProtection") == "true":
            found[stack] = Protection()
        elif arn and (protection := _protection_of(deployer, arn)):
            found[stack] = protection
    return found


def _protection_of(deployer, arn) -> Protection | None:
    """The load balancer's deletion protection as ELB holds it: a Protection when on or unreadable, None when off or gone."""
    try:
        attributes = deployer.client("elbv2").describe_load_balancer_attributes(LoadBalancerArn=arn)["Attributes"]
    except aws.AWS_ERRORS as error:
        # "LoadBalancerNotFound: The specified load balancer does not exist":
        # https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_DescribeLoadBalancerAttributes.html
        if isinstance(error, ClientError) and aws.error_code(error) == "LoadBalancerNotFound":
            return None
        return Protection(arn, unread=aws.error_code(error))
    return Protection(arn) if _pairs(attributes).get("deletion_protection.enabled") == "true" else None


def protection_off(deployer, layer_name, protection: Protection) -> str:
    """The way to turn a load balancer's deletion protection off: by params, or, turned on outside this tool (or
    not readable), as it was turned on."""
    if protection.arn is None:
        return (
            f"first deploy DeletionProtection: false alone (in {deployer.params_file}, make templates && make deploy ENV={deployer.env} "
            f"STACK={layer_name}: it turns it off in place)"
        )
    command = (
        f"{deployer.cli} elbv2 modify-load-balancer-attributes --load-balancer-arn {shlex.quote(protection.arn)} "
        "--attributes Key=deletion_protection.enabled,Value=false"
    )
    if protection.unread:
        return f"allow elasticloadbalancing:DescribeLoadBalancerAttributes and run again, or, if it may go, turn it off: {command}"
    if protection.stuck:
        return f"its stack is {protection.stuck}, which no deploy updates: turn it off by hand, {command}"
    return f"it was turned on outside this tool (the stack's DeletionProtection parameter is false): turn it off as it was turned on, {command}"


# --- reading what a resource is now -------------------------------------------------------------
def _pairs(pairs) -> dict:
    """Key -> Value of a list of Key/Value pairs (tags, a load balancer's attributes)."""
    return {pair["Key"]: pair.get("Value") for pair in pairs or []}


def _ours(item, tags) -> bool:
    return tags.get(STACK_ID_TAG) == item.stack_id and tags.get(LOGICAL_ID_TAG) == item.logical_id


def _inspect_log_group(clients, item):
    logs = clients("logs")
    groups = logs.describe_log_groups(logGroupNamePrefix=item.physical_id)["logGroups"]
    group = next((g for g in groups if g["logGroupName"] == item.physical_id), None)
    if group is None:
        raise Gone
    arn = group.get("logGroupArn") or group["arn"].removesuffix(":*")
    stored, days = group.get("storedBytes", 0), group.get("retentionInDays")
    item.facts = {"kms": group.get("kmsKeyId"), "tags": logs.list_tags_for_resource(resourceArn=arn).get("tags", {}), "days": days}
    kept = f", kept {days} day{'' if days == 1 else 's'}" if days else ""
    return "delete", f"it holds {stored} bytes of logs{kept}; they go with it"


def _inspect_key(clients, item):
    try:
        metadata = clients("kms").describe_key(KeyId=item.physical_id)["KeyMetadata"]
    except ClientError as error:
        # DescribeKey's NotFoundException: https://docs.aws.amazon.com/kms/latest/APIReference/API_DescribeKey.html
        if aws.error_code(error) == "NotFoundException":
            raise Gone from None
        raise
    # no aws:cloudformation tags on keys: the id is the proof, and its description (other_identity) whose it is
    item.facts = {"arn": metadata["Arn"], "tags": None, "Description": metadata.get("Description", "")}
    if metadata.get("KeyManager") != "CUSTOMER":
        item.foreign = True
        return None, "an AWS managed key: never deleted"
    if metadata["KeyState"] == "PendingDeletion":
        item.scheduled = True
        return None, f"deletion already scheduled for {metadata['DeletionDate']:%Y-%m-%d %H:%M %Z}"
    # A cancelled deletion leaves the key Disabled, "To enable the KMS key, use EnableKey":
    # https://docs.aws.amazon.com/kms/latest/APIReference/API_CancelKeyDeletion.html
    cli = aws.cli(clients("kms").meta.region_name)
    # ListResourceTags, paged by NextMarker: https://docs.aws.amazon.com/kms/latest/APIReference/API_ListResourceTags.html
    pages = aws.checked_pages(
        clients("kms").get_paginator("list_resource_tags").paginate(KeyId=item.physical_id), "ListResourceTags", "NextMarker"
    )
    marked = next((tag.get("TagValue", "") for page in pages for tag in page.get("Tags") or () if tag.get("TagKey") == PURGE_MARK), None)
    if marked is not None:
        return None, (
            f"left: make purge scheduled its deletion ({PURGE_MARK} {printable(marked, one_line=True)}) and it is not pending deletion: "
            "cancelled since by someone who needs it (or that purge was stopped as it scheduled it, or could not take its tag off); "
            f"if it may go after all: {cli} kms untag-resource --key-id {item.physical_id} --tag-keys {PURGE_MARK}, then make purge "
            "again (which checks that no log group uses it)"
        )
    cancel = f"{cli} kms cancel-key-deletion --key-id {item.physical_id}"
    if metadata["KeyState"] == "Disabled":  # cancelled, it is as it is now: enabling it would be more than undoing
        return "schedule", f"KMS deletes it {KEY_WINDOW_DAYS} days later, never at once; until then {cancel} undoes it (it stays disabled)"
    return "schedule", (
        f"KMS deletes it {KEY_WINDOW_DAYS} days later, never at once, and any use of it fails from now on; until then "
        f"this one line undoes it: {cancel} && {cli} kms enable-key --key-id {item.physical_id}"
    )


def _inspect_bucket(clients, item):
    s3 = clients("s3")
    try:
        tags = _pairs(s3.get_bucket_tagging(Bucket=item.physical_id)["TagSet"])
    except ClientError as error:
        # NoSuchBucket as GONE_CODES cites it ("404" is botocore's code for an error answer without a body, which S3
        # does not document); NoSuchTagSet: "There is no tag set associated with the bucket":
        # https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetBucketTagging.html
        if aws.error_code(error) in ("NoSuchBucket", "404"):
            raise Gone from None
        if aws.error_code(error) != "NoSuchTagSet":
            raise
        tags = {}
    item.facts = {"tags": tags}
    if not _ours(item, tags):
        return None, ""
    listed = s3.list_object_versions(Bucket=item.physical_id, MaxKeys=1)
    if listed.get("Versions") or listed.get("DeleteMarkers"):
        return None, (
            "left: it holds objects (the access logs); purge deletes only an empty bucket. If they may go, empty it, "
            "every version and delete marker, then purge again"
        )
    return "delete", "it is empty"


def _inspect_certificate(clients, item):
    acm = clients("acm")
    try:
        certificate = acm.describe_certificate(CertificateArn=item.physical_id)["Certificate"]
    except ClientError as error:
        # DescribeCertificate's ResourceNotFoundException: https://docs.aws.amazon.com/acm/latest/APIReference/API_DescribeCertificate.html
        if aws.error_code(error) == "ResourceNotFoundException":
            raise Gone from None
        raise
    tags = _pairs(acm.list_tags_for_certificate(CertificateArn=item.physical_id).get("Tags"))
    item.facts = {"tags": tags, "DomainName": certificate.get("DomainName")}  # whose it is (other_identity)
    if certificate.get("InUseBy"):
        return None, f"left: in use by {', '.join(certificate['InUseBy'])}"
    return "delete", "holds no data; a new cert-dns stack requests a new one"


def _inspect_load_balancer(clients, item):
    elbv2 = clients("elbv2")
    try:
        elbv2.describe_load_balancers(LoadBalancerArns=[item.physical_id])
    except ClientError as error:
        # "LoadBalancerNotFound: The specified load balancer does not exist":
        # https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_DescribeLoadBalancers.html
        if aws.error_code(error) == "LoadBalancerNotFound":
            raise Gone from None
        raise
    item.facts = {"tags": _pairs(elbv2.describe_tags(ResourceArns=[item.physical_id])["TagDescriptions"][0]["Tags"])}
    attributes = _pairs(elbv2.describe_load_balancer_attributes(LoadBalancerArn=item.physical_id)["Attributes"])
    if attributes.get("deletion_protection.enabled") == "true":
        return None, "left: deletion protection is on; turn it off first if it is really to go"
    return "delete", "holds no data; its name blocks creating the layer again"


def _inspect_target_group(clients, item):
    elbv2 = clients("elbv2")
    try:
        (group,) = elbv2.describe_target_groups(TargetGroupArns=[item.physical_id])["TargetGroups"]
    except ClientError as error:
        # "TargetGroupNotFound: The specified target group does not exist":
        # https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_DescribeTargetGroups.html
        if aws.error_code(error) == "TargetGroupNotFound":
            raise Gone from None
        raise
    item.facts = {"tags": _pairs(elbv2.describe_tags(ResourceArns=[item.physical_id])["TagDescriptions"][0]["Tags"])}
    if group.get("LoadBalancerArns"):
        return None, f"left: in use by {', '.join(group['LoadBalancerArns'])}"
    return "delete", "holds no data; its name blocks creating the layer again"


def _schedule_key_deletion(kms, key_id) -> dict:
    """The key marked (PURGE_MARK), then its deletion scheduled: marked first, as a key pending deletion may not be
    tagged (TagResource needs "a compatible key state": https://docs.aws.amazon.com/kms/latest/developerguide/key-state.html)."""
    kms.tag_resource(KeyId=key_id, Tags=[{"TagKey": PURGE_MARK, "TagValue": f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ}"}])
    try:
        return kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=KEY_WINDOW_DAYS)
    except aws.AWS_ERRORS:  # refused or unanswered: the mark off again, so that the next purge takes the key. Not after
        # a second Ctrl-C, which stops at once (often because AWS does not answer): the next purge's note says how to take it off
        with contextlib.suppress(*aws.AWS_ERRORS):  # where this fails too, the same
            if kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] != "PendingDeletion":
                kms.untag_resource(KeyId=key_id, TagKeys=[PURGE_MARK])
        raise


INSPECT = {
    "AWS::Logs::LogGroup": _inspect_log_group,
    "AWS::KMS::Key": _inspect_key,
    "AWS::S3::Bucket": _inspect_bucket,
    "AWS::CertificateManager::Certificate": _inspect_certificate,
    "AWS::ElasticLoadBalancingV2::LoadBalancer": _inspect_load_balancer,
    "AWS::ElasticLoadBalancingV2::TargetGroup": _inspect_target_group,
}

ACT = {
    "AWS::Logs::LogGroup": lambda clients, item: clients("logs").delete_log_group(logGroupName=item.physical_id),
    "AWS::KMS::Key": lambda clients, item: _schedule_key_deletion(clients("kms"), item.physical_id),
    "AWS::S3::Bucket": lambda clients, item: clients("s3").delete_bucket(Bucket=item.physical_id),
    "AWS::CertificateManager::Certificate": lambda clients, item: clients("acm").delete_certificate(CertificateArn=item.physical_id),
    "AWS::ElasticLoadBalancingV2::LoadBalancer": lambda clients, item: clients("elbv2").delete_load_balancer(
        LoadBalancerArn=item.physical_id
    ),
    "AWS::ElasticLoadBalancingV2::TargetGroup": lambda clients, item: clients("elbv2").delete_target_group(TargetGroupArn=item.physical_id),
}


# The error code of each kind's deletion when the resource is not there: after a retry, the first attempt's
# deletion landed and its answer was lost (aws.may_have_landed); on a first attempt, it went since it was looked at.
# Each is one its operation's model lists (tests/test_deploy.py checks botocore's); S3 lists its codes apart:
# "NoSuchBucket: The specified bucket does not exist" (https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html).
# DeleteTargetGroup lists no not-found error: a failure of it stays a failure.
GONE_CODES = {
    "AWS::Logs::LogGroup": "ResourceNotFoundException",
    "AWS::KMS::Key": "NotFoundException",
    "AWS::S3::Bucket": "NoSuchBucket",
    "AWS::CertificateManager::Certificate": "ResourceNotFoundException",
    "AWS::ElasticLoadBalancingV2::LoadBalancer": "LoadBalancerNotFound",
}


def listing(summaries, items) -> dict:
    """Deleted stack id -> the physical ids of what it retained (its every item)."""
    listed = {summary["StackId"]: set() for summary in summaries}
    for item in items:
        listed[item.stack_id].add(item.physical_id)
    return listed


def inspect(deployer, item, listed, logs_read=None) -> None:
    """Decide what purge does with one retained resource: item.action, item.note, item.gone, item.foreign.
    listed: deleted stack id -> what it retained (listing), of the deleted stacks of the names looked at; logs_read: the id
    of the deleted service stack whose log group make logs reads (first_log_group), to offer make logs for."""
    if item.kind not in INSPECT:
        command = free_command(item.kind, item.physical_id, deployer.cli)
        item.note = f"left: purge does not delete a {item.kind}" + (f"; by hand: {command}" if command else "")
        return
    try:
        item.action, item.note = INSPECT[item.kind](deployer.client, item)
    except Gone:
        item.gone = True
        return
    except ClientError as error:  # not readable (another account's bucket, no permission): never touched
        item.action, item.note = None, f"left: cannot read it ({aws.error_code(error)}: {aws.error_message(error)})"
        item.unreadable = True
        return
    tags = (item.facts or {}).get("tags")
    if tags is not None and not _ours(item, tags):
        item.action = None
        maker = tags.get(STACK_ID_TAG)
        if maker != item.stack_id and item.physical_id in listed.get(maker, ()):  # a later stack of that name made it: listed under it
            item.gone = True
            return
        item.foreign = True
        # A later stack of that name made it, then an update replaced it (a NamePrefix change renames a log group) and kept it
        # (UpdateReplacePolicy): that stack's list of what it retained names the new one, not this.
        item.kept_on_replace = maker != item.stack_id and maker in listed and tags.get(LOGICAL_ID_TAG) == item.logical_id
        item.note = (
            f"left alone: made by a later {item.stack} ({maker}), which kept it when an update replaced it: no stack lists it as retained"
            if item.kept_on_replace
            else f"left alone: not the one {item.stack} created (it carries no aws:cloudformation tags of that stack: made by hand "
            "or by another tool)"
        )
        if item.kind in NAMED:
            item.note += f"; its name blocks creating the layer again: delete it yourself if it is not needed: {free_command(item.kind, item.physical_id, deployer.cli)}"
    if item.action == "delete" and item.kind == "AWS::Logs::LogGroup":  # make logs reads the service's until it goes
        days = item.facts.get("days")
        since = (f"{days}d" if days else text.EVERY_EVENT_SINCE) if logs_read and item.stack_id == logs_read else None
        item.note += ": " + text.read_or_export_first(deployer.env, deployer.cli, item.physical_id, deployer.now(), since)


def keep_keys_of_kept_log_groups(items) -> None:
    """A key is scheduled for deletion only when no log group it encrypts stays."""
    staying = [i for i in items if i.kind == "AWS::Logs::LogGroup" and not i.gone and i.action != "delete"]
    for key in (i for i in items if i.kind == "AWS::KMS::Key" and i.action == "schedule"):
        for group in staying:
            kms = (group.facts or {}).get("kms") or ""
            encrypts = key.physical_id in kms or (not kms and not group.foreign and group.stack_id == key.stack_id)
            if encrypts:
                key.action = None
                key.note = f"left: the log group {group.physical_id} it encrypts stays; its logs would become unreadable"


def keep_keys_other_log_groups_use(logs, items, cli) -> None:
    """A log group in no stack may use a key too: the old one an update that renamed its group kept
    (UpdateReplacePolicy Retain) shares the layer's key with the new one. Every log group of the
    account and region that names the key, and that this purge does not delete, keeps it: a key
    scheduled for deletion leaves its logs unreadable. DescribeLogGroups gives each group's key ARN.
    Each is named with the command that deletes it (cli: how it starts), for one that is not needed: purge
    deletes only what a deleted stack lists as retained, and such a group's name may block a create.
    https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_DescribeLogGroups.html"""
    keys = [i for i in items if i.kind == "AWS::KMS::Key" and i.action == "schedule"]
    if not keys:
        return
    deleted = {i.physical_id for i in items if i.kind == "AWS::Logs::LogGroup" and i.action == "delete"}
    users = {}  # key ARN -> names of the log groups that use it and stay
    try:
        for page in aws.checked_pages(logs.get_paginator("describe_log_groups").paginate(), "DescribeLogGroups", "nextToken"):
            for group in page["logGroups"]:
                if group.get("kmsKeyId") and group["logGroupName"] not in deleted:
                    users.setdefault(group["kmsKeyId"], []).append(group["logGroupName"])
    except aws.AWS_ERRORS as error:  # unread, no key can be shown unused: each stays, and the rest is purged
        for key in keys:
            key.action, key.unreadable = None, True
            key.note = f"left: the log groups that may use it could not be listed ({aws.error_code(error)})"
        return
    for key in keys:
        using = users.get((key.facts or {}).get("arn"), [])
        if using:
            key.action = None
            more = f" and {len(using) - 1} more" if len(using) > 1 else ""
            commands = "; ".join(free_command("AWS::Logs::LogGroup", name, cli) for name in using)
            key.note = (
                f"left: the log group {using[0]}{more}, in no stack of these, uses it; its logs would become unreadable. If not needed, "
                f"delete {'it' if len(using) == 1 else 'them'} by hand (the logs go too), and make purge again schedules the key: {commands}"
            )


# --- the command ----------------------------------------------------------------------------
def deleted_stacks(deployer, stacks) -> list[dict]:
    """ListStacks summaries of the deleted stacks of these names, newest first (CloudFormation keeps 90 days)."""
    found = []
    # DELETE_COMPLETE: a stack status of the page status.py cites, and a StackStatusFilter of
    # https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_ListStacks.html
    for page in aws.checked_pages(deployer.cf.get_paginator("list_stacks").paginate(StackStatusFilter=["DELETE_COMPLETE"]), "ListStacks"):
        found += [summary for summary in page["StackSummaries"] if summary["StackName"] in stacks]
    return sorted(found, key=lambda s: s.get("DeletionTime") or s["CreationTime"], reverse=True)


def kept_log_group(deployer, stack) -> tuple[Retained, object] | None:
    """After a destroy: (the log group retained by the stack of ours deleted last that retained one, looked at as purge
    looks: gone, another's, or not readable, facts None; its deletion time), or None when no deleted stack of ours
    retained one. What make logs reads once the service is destroyed, and the group purge offers make logs for (the
    first of its items, newest first: purge.logs_read): destroy's and purge's advice to read the logs before they go."""
    for summary in deleted_stacks(deployer, {stack}):
        group = first_log_group(retained_by(deployer, summary), stack)
        if group and ours(deployer, summary):  # one that kept none (a first create that failed before it) is passed over
            inspect(deployer, group, {})
            return group, summary.get("DeletionTime")
    return None


def first_log_group(items, stack) -> Retained | None:
    """The first log group of stack's among items retained by deleted stacks of ours, newest first: the one make logs
    reads after a destroy (kept_log_group), and the one purge offers make logs for."""
    return next((item for item in items if item.stack == stack and item.kind == "AWS::Logs::LogGroup"), None)


def deleted_last(deployer, stack) -> tuple[dict | None, list[dict]]:
    """(the ListStacks summary, its resources) of the stack of this name deleted last that held resources: not the
    empty stack of a first create declined or stopped before its change set ran, which the run deleted after a
    destroy (make events showed its three events, and make logs found no log group kept). (None, []) for none."""
    for summary in deleted_stacks(deployer, {stack}):
        if resources := resources_of(deployer, summary):
            return summary, resources
    return None, []


def ours(deployer, summary) -> dict | None:
    """The deleted stack as DescribeStacks gives it (its parameter values too) where it carried the tags every stack of
    ours does, else None (ListStacks has no tags; DescribeStacks reads a deleted stack by its id).
    https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_DescribeStacks.html"""
    (found,) = deployer.cf.describe_stacks(StackName=summary["StackId"])["Stacks"]
    return None if deployer.foreign(found) else found


def resources_of(deployer, summary) -> list[dict]:
    """The resource summaries of a deleted stack (ListStackResources reads one by its id), deleted and retained."""
    pages = aws.checked_pages(
        deployer.cf.get_paginator("list_stack_resources").paginate(StackName=summary["StackId"]), "ListStackResources"
    )
    return [resource for page in pages for resource in page["StackResourceSummaries"]]


def retained_by(deployer, summary) -> list[Retained]:
    return retained_in(summary, resources_of(deployer, summary))


def retained_in(summary, resources) -> list[Retained]:
    """What a deleted stack kept (DELETE_SKIPPED), from its resource summaries.
    https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_StackResourceSummary.html"""
    return [
        Retained(
            summary["StackName"],
            summary["StackId"],
            resource["LogicalResourceId"],
            resource["ResourceType"],
            resource["PhysicalResourceId"],
        )
        for resource in resources
        if resource["ResourceStatus"] == "DELETE_SKIPPED" and resource.get("PhysicalResourceId")
    ]


def layer_retains(deployer, layer) -> set:
    """(logical id, type) of what the layer's template in output/ keeps when its stack is deleted:
    the only resources purge may take from a deleted stack of that layer's name."""
    return set(templates.retained_resources(read_template(deployer.output_dir / f"{layer}.json")).items())


def keep_names(deployer, layers) -> list[str]:
    """The layers among these whose template in output/ keeps, when its stack is deleted, a resource under the custom
    name its create gives it (the log groups): a deploy that creates the layer again is refused until make purge frees
    the name (or a new NamePrefix gives another). A template that cannot be read, or is none (layer.template_problem), is
    left out: its way on says nothing, and is given still."""
    found = []
    for layer in layers:
        try:
            template = read_template(deployer.output_dir / f"{layer}.json")
        except Failure:
            continue
        resources = template["Resources"]
        named = {k for k, r in resources.items() if templates.CUSTOM_NAMES.get(r.get("Type")) in r.get("Properties", {})}
        if named & templates.retained_resources(template).keys():
            found.append(layer)
    return found


def layer_names(deployer, layer) -> set | None:
    """The names the layer's template gives its resources of the NAMED types in this environment (guards.custom_names);
    None for a layer the environment does not enable (output/ has no configuration of it), whose stack may still
    have been destroyed: its names are then not known, and not checked."""
    from scripts.deploy.guards import custom_names  # here, not at the top: guards.py imports this module

    if not (deployer.output_dir / deployer.env / f"{layer}.json").exists():
        return None
    return set(custom_names(deployer, load_layer(deployer.env, layer, deployer.output_dir)).values())


# The property that tells a retained resource without a name of ours (NAMED's) as the layer's: a key is told by the
# description the template gives it, a bucket by having no BucketName (CloudFormation names it), a certificate by
# its domain. A stack of the layer's name made by hand with the tool's tags and logical ids retained another team's
# key or bucket, and purge took it.
IDENTIFIED_BY = {"AWS::KMS::Key": "Description", "AWS::S3::Bucket": "BucketName", "AWS::CertificateManager::Certificate": "DomainName"}


def other_identity(deployer, item: Retained, layer, deleted_stack: dict, deleted_templates: dict) -> str | None:
    """Why the retained resource is not the layer's, else None: its IDENTIFIED_BY property, as the resource has it (a
    key's description, a certificate's domain: DescribeKey's and DescribeCertificate's, in its facts) and as the
    template the stack was deleted with gives it with that stack's parameter values (deleted_stack: ours()'s
    DescribeStacks answer), is not what the layer's template in output/ gives it with this environment's values (a
    copy of the layer's template with another DomainName retained another team's certificate; a stack that imported
    another team's key, or whose NamePrefix was an SSM parameter's name, gives it our description). Where one is not
    known before deploy, or the environment has no configuration of the layer (taken out of enabled_layers), the
    expressions are compared as written, and the resource's own value with what the deleted stack's template gave it
    (one that cannot be worked out leaves it). One of an earlier
    NamePrefix (a key's description) is left, as a log group of one is. deleted_templates: stack id -> the template,
    read once a stack (GetTemplate reads a deleted stack by its id, for 90 days:
    https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_GetTemplate.html)."""
    from scripts.deploy.guards import properties  # here, not at the top: guards.py imports this module
    from templates.resolver import Resolver, holds_unknown

    if item.stack_id not in deleted_templates:
        deleted_templates[item.stack_id] = deployer.deployed_template(item.stack_id)
    deleted, values = deleted_templates[item.stack_id], text.parameter_values(deleted_stack)
    source = deployer.output_dir / f"{layer}.json"
    template, name, region = read_template(source), IDENTIFIED_BY[item.kind], deployer.cf.meta.region_name
    ours = properties(template["Resources"].get(item.logical_id)).get(name)
    given = properties((deleted.get("Resources") or {}).get(item.logical_id)).get(name)
    configured = deployer.output_dir / deployer.env / f"{layer}.json"
    own = [(item.facts or {})[name]] if name in (item.facts or {}) else []  # the resource's own, where it says it
    made_with = Resolver(deleted, values, {}, region).value(given)
    if configured.exists():
        wanted = Resolver(template, load_layer(deployer.env, layer, deployer.output_dir).parameters, {}, region).value(ours)
        if not holds_unknown(wanted) and not any(holds_unknown(value) for value in [*own, made_with]):
            for value in [*own, made_with]:
                if value != wanted:
                    said, shown = ("none" if each is None else printable(str(each), one_line=True) for each in (value, wanted))
                    return f"its {name} is {said}, where {templates.relative(configured)} gives {shown}: {OTHER_VALUES}"
            return None
    if given != ours:
        said = "none" if given is None else printable(json.dumps(given), one_line=True)
        return f"the template it was made with gives it {name} {said}, not what {templates.relative(source)} gives: {OTHER_VALUES}"
    if own and (holds_unknown(made_with) or own[0] != made_with):
        said = "none" if own[0] is None else printable(str(own[0]), one_line=True)
        shown = "a value not known before deploy" if holds_unknown(made_with) else printable(str(made_with), one_line=True)
        return (
            f"its {name} is {said}, where the template its stack was deleted with gives {shown}: changed since, or not the one "
            "the stack made (imported by a stack of the layer's name)"
        )
    return None


OTHER_VALUES = (
    "made with other values than this environment's (an earlier NamePrefix or DomainName), or by a stack of the layer's name "
    "this tool did not make"
)


def other_key(deployer, item: Retained, items, layer) -> str | None:
    """Why a retained log group is not the layer's, else None: the layer's template in output/ encrypts it with a key
    of the same stack (KmsKeyId: Fn::GetAtt <key> Arn), so the one that stack made is under the key it retained with it
    (items: every retained resource of the purge). One under no key, or another, was made from another template (a stack
    of the layer's name made by hand with the tool's tags kept a log group of the layer's name: its logs are not the
    tool's to delete), or had its key changed since (DescribeLogGroups's kmsKeyId, in its facts)."""
    source = deployer.output_dir / f"{layer}.json"
    resource = read_template(source)["Resources"].get(item.logical_id) or {}
    given = (resource.get("Properties") or {}).get("KmsKeyId")
    if not (isinstance(given, dict) and list(given) == ["Fn::GetAtt"]):
        return None
    key_id = given["Fn::GetAtt"][0]
    key = next((i for i in items if i.stack_id == item.stack_id and i.logical_id == key_id and i.kind == "AWS::KMS::Key"), None)
    used = (item.facts or {}).get("kms") or ""
    if key is not None and used.endswith(f":key/{key.physical_id}"):
        return None
    return (
        f"it is {f'under the key {printable(used, one_line=True)}' if used else 'under no KMS key'}, where {templates.relative(source)} "
        f"encrypts it with the {key_id} its stack retained{f' ({key.physical_id})' if key else ', which that stack did not'}: not the log "
        "group the layer's template made (a stack of the layer's name this tool did not make), or its key was changed since"
    )


def takes(item: Retained, names) -> bool:
    """The retained resource holds one of names: a log group by its name, a load balancer or target
    group by the name in its ARN (loadbalancer/app/<name>/<id>, targetgroup/<name>/<id>)."""
    return any(item.physical_id == name or f"/{name}/" in item.physical_id for name in names)


def blocking(deployer, creates: dict) -> list[Retained]:
    """What the deleted stacks of these names retained under a name their create needs, still there:
    each fails that create, which then rolls back (one layer after another in a whole deploy).
    creates: stack name -> the names its template gives resources of the NAMED types (a new
    NamePrefix needs none of the old ones). A name with a stack (not one under review, which a
    create still makes) is skipped. One ListStacks, which lists live and deleted stacks alike: "If no
    StackStatusFilter is specified, summary information for all stacks is returned (including existing
    stacks and stacks that have been deleted)", deleted ones for 90 days.
    https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_ListStacks.html"""
    live, summaries = set(), []
    for page in aws.checked_pages(deployer.cf.get_paginator("list_stacks").paginate(), "ListStacks"):
        for summary in page["StackSummaries"]:
            if summary["StackName"] in creates and summary["StackStatus"] == "DELETE_COMPLETE":
                summaries.append(summary)
            elif summary["StackName"] in creates and summary["StackStatus"] not in EMPTY_STATUSES:
                live.add(summary["StackName"])
    items, every = [], []
    summaries = [summary for summary in summaries if summary["StackName"] not in live]
    for summary in summaries:
        names = creates[summary["StackName"]]
        retained = retained_by(deployer, summary)
        every += retained
        named = [item for item in retained if item.kind in NAMED and takes(item, names)]
        if named and ours(deployer, summary):  # a stack not of ours: what it retained is never purged
            items += named
    listed = listing(summaries, every)
    for item in items:
        inspect(deployer, item, listed)
    # One it could not read (no permission: the CI deploy role reads no log group) is not named: its
    # create says what to do if the name is taken.
    return [item for item in items if not item.gone and item.facts is not None]


def destroyed_among(deployer, names, absent) -> bool:
    """Whether a run of several layers (one is one by one already) holds a layer to purge on its own: one whose stack is
    not there now and was deleted (ListStacks, which purge reads anyway; a layer never made has none). One that cannot
    be read offers nothing: the refusal stands without it."""
    if len(names) < 2 or not absent:
        return False
    # DELETE_COMPLETE as deleted_stacks() cites it
    pages = aws.checked_pages(deployer.cf.get_paginator("list_stacks").paginate(StackStatusFilter=["DELETE_COMPLETE"]), "ListStacks")
    try:  # the first one found settles it: the pages after it (every project's deletions of 90 days) are not read
        return any(summary.get("StackName") in absent for page in pages for summary in page.get("StackSummaries") or ())
    except aws.AWS_ERRORS:
        return False


# A live stack's resources with these statuses it does not hold: deleted (a rollback's), or never made (a create that
# failed, a name that was taken). ResourceStatus: https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_StackResourceSummary.html
GONE_FROM_A_STACK = ("DELETE_COMPLETE", "CREATE_FAILED")


def held_by(deployer, there) -> dict:
    """Physical id -> the stack (of these, those of the purge's layers there now) that holds it: a resource a deleted
    stack retained and a stack imported since is that stack's, whatever tags it still carries. ListStackResources:
    https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_ListStackResources.html"""
    held = {}
    for stack, found in there.items():
        paginator = deployer.cf.get_paginator("list_stack_resources")
        for page in aws.checked_pages(paginator.paginate(StackName=found.get("StackId") or stack), "ListStackResources"):
            held |= {
                r["PhysicalResourceId"]: stack
                for r in page["StackResourceSummaries"]
                if r.get("PhysicalResourceId") and r.get("ResourceStatus") not in GONE_FROM_A_STACK
            }
    return held


def one_of_each_foreign(items) -> None:
    """One made by hand under a name several deleted stacks retained (each one's own gone) is listed once, under the
    latest of them (items come newest stack first): for the others their own is gone too."""
    seen = set()
    for item in items:
        if item.foreign and not item.gone:
            item.gone = item.physical_id in seen
            seen.add(item.physical_id)


def held_now(item, held) -> None:
    """A retained item a stack there now holds (held_by) is that stack's: gone where the stack made one under its name
    (its tags say so), left where it was imported into it."""
    if not item.gone and item.physical_id in held:
        if item.foreign:
            item.gone = True
        else:
            item.action, item.note = None, f"left: {held[item.physical_id]}, there now, holds it (imported)"


def purge(deployer, names) -> int:
    env = deployer.env
    one = f" STACK={names[0]}" if len(names) == 1 else ""  # the command as given: a purge of one layer, or of every one
    stacks, deleting, absent, there = [], [], [], {}  # absent: the stacks of the run that do not exist now; there: those that do
    for name in reversed(names):
        stack = templates.stack_name(env, name)
        if deployer.left_alone(name, named=len(names) == 1 or name in deployer.enabled_layers):
            continue
        found = deployer.describe(stack)
        stacks.append(stack)
        if found is None:
            absent.append(stack)
        elif found["StackStatus"] in ("DELETE_IN_PROGRESS", "DELETE_FAILED"):  # what it retains is listed once it is deleted
            deleting.append(f"{stack} is {found['StackStatus']}")
        else:
            there[stack] = found
    if deleting:
        # A layer other deployed layers read is destroyed after them: its destroy alone is refused.
        first = (
            f" STACK=<layer> for {', '.join(templates.destroy_order(names[0]))}, in that order"
            if one and deployer.consumers(names[0])
            else ""
        )
        others = ", or purge the destroyed layers one by one with STACK=<layer>" if destroyed_among(deployer, names, absent) else ""
        raise Failure(
            f"error: refusing to purge: {'; '.join(deleting)}. purge deletes only what deleted stacks left behind: "
            f"finish the destroy first (make destroy ENV={env}{first or one}){others}; nothing purged"
        )
    if there:  # deployed again since a destroy (or never destroyed): only what its deleted stacks retained is purged
        deployer.say(
            f"note: {', '.join(there)} {'is' if len(there) == 1 else 'are'} there now and left as "
            f"{'it is' if len(there) == 1 else 'they are'}: purge takes what deleted stacks of "
            f"{'its name' if len(there) == 1 else 'their names'} retained, never what a stack holds"
        )
    held = held_by(deployer, there)
    summaries, deleted = [], {}  # deleted: stack id -> the deleted stack as DescribeStacks gives it
    for summary in deleted_stacks(deployer, stacks):
        if described := ours(deployer, summary):
            summaries.append(summary)
            deleted[summary["StackId"]] = described
        else:
            deployer.say(
                f"{summary['StackName']} ({summary['StackId']}) was not made by this tool (it lacks the tags its stacks carry): what it retained is left"
            )
    items = []
    for summary in summaries:
        items += retained_by(deployer, summary)
    listed = listing(summaries, items)

    def not_the_layers(item) -> str | None:
        """Why the retained item is not the layer's, by what it is (other_key, other_identity); None where it is, or
        where its kind has nothing of the kind to tell it by. Asked at the listing and again right before its deletion."""
        layer = templates.layer_of(env, item.stack)
        if item.kind == "AWS::Logs::LogGroup":
            return other_key(deployer, item, items, layer)
        if item.kind in IDENTIFIED_BY:
            return other_identity(deployer, item, layer, deleted[item.stack_id], deleted_templates)
        return None

    retains, named = {}, {}  # layer -> what its template retains, and the names it gives in this environment: read once
    deleted_templates = {}  # stack id -> the template it was deleted with: read once, where needed
    read_by_make_logs = first_log_group(items, templates.stack_name(env, "service"))  # summaries, and so items, newest first
    logs_read = read_by_make_logs and read_by_make_logs.stack_id
    for item in items:
        inspect(deployer, item, listed, logs_read)
        held_now(item, held)
        layer = templates.layer_of(env, item.stack)
        if layer not in retains:
            retains[layer], named[layer] = layer_retains(deployer, layer), layer_names(deployer, layer)
        command = free_command(item.kind, item.physical_id, deployer.cli)
        by_hand = f"; if it is no one's, by hand: {command}" if command else ""
        if not item.gone and item.action and (item.logical_id, item.kind) not in retains[layer]:
            # a stack with our tags made by hand (or by an older template) retaining what no layer template retains
            item.action = None
            item.note = (
                f"left: {templates.relative(deployer.output_dir / f'{layer}.json')} retains no {item.kind} {item.logical_id}{by_hand}"
            )
        elif not item.gone and item.action and item.kind in NAMED and named[layer] is not None and not takes(item, named[layer]):
            # the layer's type and logical id, another name: a stack of its name made by hand (another team's log group),
            # or one of an earlier NamePrefix; its key then stays with it (keep_keys_of_kept_log_groups)
            item.action = None
            item.note = (
                f"left: {templates.relative(deployer.output_dir / env / f'{layer}.json')} gives the layer's {item.kind} "
                f"{', '.join(sorted(named[layer])) or 'no name'}: a stack of its name this tool did not make (or one of an earlier "
                f"NamePrefix) left this one{by_hand}"
            )
        elif not item.gone and item.action and item.kind == "AWS::Logs::LogGroup" and (other := not_the_layers(item)):
            item.action, item.note = None, f"left: {other}{by_hand}"  # before the keys: its key then stays with it
    one_of_each_foreign(items)
    keep_keys_of_kept_log_groups(items)  # first: a key whose stack's log group stays is left for that, whatever its description
    for item in items:
        if not item.gone and item.action and item.kind in IDENTIFIED_BY:
            other = not_the_layers(item)
            if other:
                command = free_command(item.kind, item.physical_id, deployer.cli)
                # a key may encrypt a log group in no stack (not looked for: this key stays whatever uses it)
                unused = " and no log group uses it" if item.kind == "AWS::KMS::Key" else ""
                item.action = None
                item.note = f"left: {other}" + (f"; if it is no one's{unused}, by hand: {command}" if command else "")
    keep_keys_other_log_groups_use(deployer.client("logs"), items, deployer.cli)  # the keys still to schedule

    scheduled = [i for i in items if i.scheduled and not i.gone]
    shown = [i for i in items if not i.gone and not i.scheduled]
    for summary in summaries:
        mine = [i for i in shown if i.stack_id == summary["StackId"]]
        if mine:
            when = summary.get("DeletionTime")
            deployer.say(f"{summary['StackName']}, deleted {when:%Y-%m-%d %H:%M:%S %Z}, retained:" if when else f"{summary['StackName']}:")
            for item in mine:
                what = {"delete": "delete", "schedule": "schedule its deletion"}.get(item.action)
                deployer.say(f"  {item.label}: {f'{what}; {item.note}' if what else item.note}")
    if scheduled:  # a second purge would list every one again, stack by stack
        keys = "1 KMS key of these stacks is" if len(scheduled) == 1 else f"{len(scheduled)} KMS keys of these stacks are"
        deployer.say(
            f"{keys} scheduled for deletion already: nothing to do for them ({'; '.join(f'{i.physical_id}: {i.note}' for i in scheduled)})"
        )
    todo = sorted((i for i in shown if i.action), key=lambda i: ORDER.index(i.kind))
    # Left because they could not be read (a refusal, a throttle, no answer): the purge did not do its work there, as
    # when one cannot be read again right before its deletion (purge_each), whatever it does with the rest.
    unread = sum(1 for i in shown if i.unreadable and not i.action)
    unread_lines = (
        [
            f"error: {unread} retained resource{'s' if unread != 1 else ''} could not be read and {'were' if unread != 1 else 'was'} "
            f"left (listed above): make purge ENV={env}{one} looks again"
        ]
        if unread
        else []
    )
    if not todo:
        where = f"for {stacks[0]}" if one else f"in {env}"  # one layer's purge names it: other layers may have something
        deployer.say(f"nothing to purge {where}" + (": what is listed above stays" if shown else ""))
        if unread_lines:
            raise Failure(f"{unread_lines[0]}; nothing was touched")
        return 0
    deployer.confirm(f"purge {'this resource' if len(todo) == 1 else f'these {len(todo)} resources'}? [y/N] ", "nothing purged")
    deployer.say("purging:")
    try:
        purge_each(deployer, todo, listed, not_the_layers, lambda: held_by(deployer, there))
    # Ctrl-C, AWS out of reach: what was purged is said above; the next step, as a purge lists only what is left
    except BaseException as error:
        if not aws.sandbox_gone(error, env):  # a sandbox whose server is gone took everything with it: its one line says so
            deployer.say(f"stopped: make purge ENV={env}{one} lists what is left of these and asks again")
        raise
    failed = sum(1 for item in todo if item.failed)
    errors = (
        [f"error: {failed} of {len(todo)} could not be purged (see above); nothing else was touched"] if failed else []
    ) + unread_lines
    if errors:
        raise Failure("\n".join(errors))
    return 0


def purge_each(deployer, todo, listed, identity, holders) -> None:
    """Delete (or schedule the deletion of) each item, looked at again right before; a failure is said and marked on it.
    identity: why an item is not the layer's (other_key, other_identity), asked again of what the look found (a log
    group's key, a key's description, changed since); holders: held_by of the stacks there now, read again once the
    question is answered (an import into one of them while it was open)."""
    kept_groups = set()  # stack ids whose log group stays: their keys stay
    held = holders()
    for item in todo:
        if item.kind == "AWS::KMS::Key" and item.stack_id in kept_groups:
            deployer.say(f"  {item.label}: left: its stack's log group was not deleted")
            continue
        # Looked at again right before it: a resource replaced under its name, or a key a log group
        # took since (while the question was open, or the items before it went), is no longer the one listed.
        action = item.action
        inspect(deployer, item, listed)
        keep_keys_other_log_groups_use(deployer.client("logs"), [item], deployer.cli)
        held_now(item, held)
        other = identity(item) if not item.gone and item.action == action else None
        if other:
            item.action, item.note = None, other
        if item.gone or item.action != action:
            if item.kind == "AWS::Logs::LogGroup" and not (item.gone or item.foreign):
                kept_groups.add(item.stack_id)  # the stack's own log group stays (not one made under its name since): its key too
            if item.unreadable:  # nothing changed but the read: a failure, which the next purge tries again
                item.failed = True
                deployer.say(
                    f"  failed: {item.label}: could not be read again right before its deletion ({item.note.removeprefix('left: ')})"
                )
            else:
                deployer.say(
                    f"  {item.label}: left: it changed since it was listed ({'gone' if item.gone else item.note.removeprefix('left: ')})"
                )
            continue
        # A key's mark and its scheduling go together: stopped between them, the key was left marked, which the next
        # purge takes for a deletion cancelled by someone who needs the key, and leaves (_inspect_key)
        stopping = f"  {item.label}: stopping once its deletion is scheduled (Ctrl-C again, or a SIGTERM, stops now)"
        acted = False  # the key's scheduling answered (or refused, its mark then taken off): not left marked by a stop
        try:
            with stops_held(held=functools.partial(deployer.say, stopping)) if item.action == "schedule" else contextlib.nullcontext():
                try:
                    answer = ACT[item.kind](deployer.client, item)
                    acted = True
                except ClientError as error:
                    acted = True
                    if aws.error_code(error) == GONE_CODES.get(item.kind):
                        landed = aws.may_have_landed(error)
                        deployer.say(
                            f"  {item.label}: deleted (a retry found it gone: the first attempt's answer was lost)"
                            if landed
                            else f"  {item.label}: left: gone since it was looked at"
                        )
                        continue
                    item.failed = True
                    kept_groups |= {item.stack_id} if item.kind == "AWS::Logs::LogGroup" else set()
                    deployer.say(f"  failed: {item.label}: {aws.error_code(error)}: {aws.error_message(error)}")
                    continue
                if item.action == "schedule":
                    deployer.say(f"  {item.label}: deletion scheduled for {answer['DeletionDate']:%Y-%m-%d %H:%M %Z}")
                else:
                    deployer.say(f"  {item.label}: deleted")
        except (KeyboardInterrupt, Terminated):  # a second stop, at once: the mark may be on, the scheduling not answered
            if item.action == "schedule" and not acted:  # (a first stop, held, acts once its scheduling is answered)
                untag = f"{aws.cli(deployer.client('kms').meta.region_name)} kms untag-resource --key-id {item.physical_id} --tag-keys {PURGE_MARK}"
                deployer.say(
                    f"  {item.label}: stopped as its deletion was being scheduled: if the next purge lists it as left, marked "
                    f"({PURGE_MARK}) and not pending deletion, {untag} hands it back to purge"
                )
            raise
