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
