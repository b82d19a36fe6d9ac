"""The check of every request against the limits botocore leaves to AWS (tests/requests_as_aws_takes.py)."""

import boto3
import pytest
import requests_as_aws_takes
from botocore.stub import Stubber

from templates import stack_name

STACK = stack_name("prod", "service")


@pytest.fixture
def cloudformation():
    client = boto3.client("cloudformation", region_name="us-east-1", aws_access_key_id="fake", aws_secret_access_key="fake")
    with Stubber(client) as stubber:
        yield client, stubber
    requests_as_aws_takes.refused.clear()  # what these tests sent on purpose: conftest's check would fail them for it


@pytest.mark.parametrize(
    "changes, said",
    [
        # https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_CreateChangeSet.html
        ({"ChangeSetName": "a" * 129}, "CreateChangeSet.ChangeSetName: 129 characters; the model takes at most 128"),
        ({"ChangeSetName": "-a"}, "CreateChangeSet.ChangeSetName: '-a'; the model's pattern is"),
        ({"ChangeSetType": "REPLACE"}, "CreateChangeSet.ChangeSetType: 'REPLACE'; the model takes one of CREATE, UPDATE, IMPORT"),
        ({"Tags": [{"Key": "k", "Value": "v"}] * 51}, "CreateChangeSet.Tags: 51 items; the model takes at most 50"),
        ({"Parameters": [{"ParameterKey": "k" * 300, "ParameterValue": "v"}]}, None),  # no maximum in the model: nothing said
    ],
)
def test_a_request_past_what_aws_takes_is_said_and_one_within_is_not(cloudformation, changes, said):
    client, stubber = cloudformation
    request = {"StackName": STACK, "ChangeSetName": "a", "TemplateBody": "{}"} | changes
    stubber.add_response("create_change_set", {"Id": "arn:aws:cloudformation:us-east-1:123456789012:changeSet/a/b"}, request)
    client.create_change_set(**request)
    if said is None:
        assert requests_as_aws_takes.refused == []
    else:
        assert len(requests_as_aws_takes.refused) == 1 and requests_as_aws_takes.refused[0].startswith(said), requests_as_aws_takes.refused


def test_a_request_within_every_limit_is_said_nothing_of(cloudformation):
    client, stubber = cloudformation
    request = {"StackName": STACK, "ChangeSetName": "a" * 128, "TemplateBody": "{}", "ChangeSetType": "UPDATE"}
    stubber.add_response("create_change_set", {"Id": "arn:aws:cloudformation:us-east-1:123456789012:changeSet/a/b"}, request)
    client.create_change_set(**request)
    assert requests_as_aws_takes.refused == []


def stubbed(service, operation, request, response):
    client = boto3.client(service, region_name="us-east-1", aws_access_key_id="fake", aws_secret_access_key="fake")
    with Stubber(client) as stubber:
        stubber.add_response(operation, response, request)
        getattr(client, operation)(**request)
    found = list(requests_as_aws_takes.refused)
    requests_as_aws_takes.refused.clear()  # sent on purpose: conftest's check would fail the test for it
    return found


def test_a_word_character_past_ascii_is_said_where_the_models_pattern_takes_ascii_ones():
    # The models' \w is Java's (and ECMAScript's): [a-zA-Z_0-9]. The regex package reads \w in a str pattern as
    # Unicode's, so a RoleName of "rolé" (or Arabic-Indic digits in a \d) matched [\w+=,.@-]+ and passed the check,
    # though IAM refuses it: "a string of characters consisting of upper and lowercase alphanumeric characters with
    # no spaces" (https://docs.aws.amazon.com/IAM/latest/APIReference/API_GetRole.html, RoleName). The same \w is in
    # sts' role session names, logs' LogGroupIdentifier and kms' PrincipalId.
    role = {
        "RoleName": "app",
        "Path": "/",
        "RoleId": "AROAEXAMPLEEXAMPLE1",
        "Arn": "arn:aws:iam::123456789012:role/app",
        "CreateDate": "2026-01-01",
    }
    found = stubbed("iam", "get_role", {"RoleName": "rolé"}, {"Role": role})
    assert len(found) == 1 and found[0].startswith("GetRole.RoleName: 'rolé'; the model's pattern is"), found
    assert stubbed("iam", "get_role", {"RoleName": "role_1+=,.@-"}, {"Role": role}) == []


def test_an_integer_past_the_models_maximum_is_said():
    # botocore checks an integer's minimum (range_check), not its maximum: that is left to AWS too, and GetLogEvents'
    # limit (EventsLimit, at most 10,000: https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_GetLogEvents.html),
    # which scripts/deploy/logs.py sends, passed the check at 10,001.
    request = {"logGroupName": "g", "logStreamName": "s", "limit": 10_001}
    found = stubbed("logs", "get_log_events", request, {"events": []})
    assert len(found) == 1 and found[0].startswith("GetLogEvents.limit: 10001"), found
    assert stubbed("logs", "get_log_events", request | {"limit": 10_000}, {"events": []}) == []


# The services the tools' clients call (scripts/, and the sandbox's seed): a pattern of theirs the regex package could
# not read would be left unchecked without a word.
SERVICES = (
    "acm", "application-autoscaling", "cloudformation", "cloudwatch", "ec2", "ecr", "ecs", "elbv2", "iam", "kms", "logs",
    "route53", "s3", "secretsmanager", "sns", "ssm", "sts", "wafv2",
)  # fmt: skip


def test_every_pattern_of_the_services_the_tools_call_is_read():
    from scripts.botocore_models import botocore_session

    unread = []
    for service in SERVICES:
        model = botocore_session().get_service_model(service)
        for name in model.shape_names:
            pattern = model.shape_for(name).metadata.get("pattern")
            if pattern and requests_as_aws_takes.compiled(pattern) is None:
                unread.append(f"{service} {name}: {pattern}")
    assert unread == []


def test_a_character_past_what_a_pattern_of_utf16_pairs_takes_is_said():
    # Application Auto Scaling's ResourceId takes [\u0020-\uD7FF\uE000-\uFFFD\uD800\uDC00-\uDBFF\uDFFF\r\n\t]*, Java's way of
    # writing every character past U+FFFF as UTF-16 pairs, which the regex package cannot read as it is: a control
    # character is refused, an emoji taken.
    request = {"ServiceNamespace": "ecs", "ResourceId": "service/a\x01b", "ScalableDimension": "ecs:service:DesiredCount"}
    found = stubbed("application-autoscaling", "register_scalable_target", request, {})
    assert len(found) == 1 and found[0].startswith("RegisterScalableTarget.ResourceId: 'service/a\\x01b'"), found
    assert stubbed("application-autoscaling", "register_scalable_target", request | {"ResourceId": "service/a\U0001f600b"}, {}) == []


def test_each_item_of_a_list_and_each_key_and_value_of_a_map_is_checked():
    tags = [{"Key": "k" * 129, "Value": "v"}]  # a tag key takes at most 128 characters
    found = stubbed("cloudformation", "update_stack", {"StackName": STACK, "UsePreviousTemplate": True, "Tags": tags}, {})
    assert found == ["UpdateStack.Tags[0].Key: 129 characters; the model takes at most 128"], found
    # a map: CloudWatch Logs' TagResource takes its tags as one (keys of at most 128 characters, values 256, 50 entries)
    arn = "arn:aws:logs:us-east-1:123456789012:log-group:g"
    found = stubbed("logs", "tag_resource", {"resourceArn": arn, "tags": {"k" * 129: "v", "k": "v" * 257}}, {})
    assert sorted(found) == [
        "TagResource.tags key '" + "k" * 129 + "': 129 characters; the model takes at most 128",
        "TagResource.tags['k']: 257 characters; the model takes at most 256",
    ], found
    found = stubbed("logs", "tag_resource", {"resourceArn": arn, "tags": {f"k{i}": "v" for i in range(51)}}, {})
    assert found == ["TagResource.tags: 51 entries; the model takes at most 50"], found


@pytest.mark.parametrize(
    "pattern, value",
    [
        ("\\p{Print}+", "polé"),  # application-autoscaling PolicyName: Java's POSIX \p{Print} is US-ASCII only, [\x20-\x7E]
        (
            "^[\\w+=:#@/\\-,\\.][\\w+=:#@/\\-,\\.\\s]+[\\w+=:#@/\\-,\\.]$",
            "a\u00a0b",
        ),  # wafv2 EntityDescription: Java's \s is [ \t\n\x0B\f\r]
    ],
)
def test_javas_ascii_classes_besides_w_and_d_are_read_as_java_reads_them(pattern, value):
    assert not requests_as_aws_takes.compiled(pattern).fullmatch(value)
