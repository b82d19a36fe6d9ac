"""`make drift` and the deploy's drift warning against botocore Stubber, with the response shapes of
the CloudFormation API reference (DetectStackDrift, DescribeStackDriftDetectionStatus,
DescribeStackResourceDrifts, StackResourceDrift, PropertyDifference)."""

import json
import shutil
from datetime import timedelta

import pytest
from stubbed_aws import (
    ENV,
    LOG_GROUP,
    NOW,
    OUTPUT,
    PARAMS,
    PARAMS_FILE,
    PROD_LAYERS,
    change,
    cs_name,
    described,
    service_parameters,
    stack,
    stack_id,
)

import templates
from scripts.deploy import text
from scripts.deploy.drift import MAX_WAIT_SECONDS

DETECTION = "1a229160-e4d9-xmpl-ab67-0a4f93df83d4"


def detection_status(layer, detection="DETECTION_COMPLETE", drift="DRIFTED", count=None, reason=None):
    entry = {
        "StackId": stack_id(layer),
        "StackDriftDetectionId": DETECTION,
        "StackDriftStatus": drift,
        "DetectionStatus": detection,
        "Timestamp": NOW,
    }
    if count is not None:
        entry["DriftedStackResourceCount"] = count
    return entry | ({"DetectionStatusReason": reason} if reason else {})


def modified_log_group(layer="service"):
    return {
        "StackId": stack_id(layer),
        "LogicalResourceId": "LogGroup",
        "PhysicalResourceId": LOG_GROUP,
        "ResourceType": "AWS::Logs::LogGroup",
        "ExpectedProperties": json.dumps({"LogGroupName": LOG_GROUP, "RetentionInDays": 90}),
        "ActualProperties": json.dumps({"LogGroupName": LOG_GROUP, "RetentionInDays": 7}),
        "PropertyDifferences": [
            {"PropertyPath": "/RetentionInDays", "ExpectedValue": "90", "ActualValue": "7", "DifferenceType": "NOT_EQUAL"}
        ],
        "StackResourceDriftStatus": "MODIFIED",
        "Timestamp": NOW,
    }


def deleted_role(layer="service"):
    # A DELETED resource has no ActualProperties and no PropertyDifferences (API_StackResourceDrift).
    return {
        "StackId": stack_id(layer),
        "LogicalResourceId": "TaskRole",
        "PhysicalResourceId": "startupwebapp-task-role",
        "ResourceType": "AWS::IAM::Role",
        "ExpectedProperties": json.dumps({"RoleName": "startupwebapp-task-role"}),
        "StackResourceDriftStatus": "DELETED",
        "Timestamp": NOW,
    }


def detect(aws, layer):
    aws.cf.add_response("detect_stack_drift", {"StackDriftDetectionId": DETECTION}, {"StackName": stack_id(layer)})


def poll(aws, *answers):
    for answer in answers:
        aws.cf.add_response("describe_stack_drift_detection_status", answer, {"StackDriftDetectionId": DETECTION})


def resource_drifts(aws, layer, drifts, token=None, next_token=None):
    expected = {"StackName": stack_id(layer), "StackResourceDriftStatusFilters": ["MODIFIED", "DELETED"]}
    answer = {"StackResourceDrifts": drifts} | ({"NextToken": next_token} if next_token else {})
    aws.cf.add_response("describe_stack_resource_drifts", answer, expected | ({"NextToken": token} if token else {}))


@pytest.mark.parametrize("on_aws", [True, False])
def test_a_drifted_stack_prints_each_resource_and_its_property_differences_and_exits_1(aws, monkeypatch, on_aws):
    if on_aws:
        monkeypatch.delenv("AWS_ENDPOINT_URL")  # the clients are stubbed: nothing is sent
    aws.deployed("service")
    detect(aws, "service")
    poll(aws, detection_status("service", "DETECTION_IN_PROGRESS", "NOT_CHECKED"), detection_status("service", count=2))
    resource_drifts(aws, "service", [modified_log_group()], next_token="page-2")
    resource_drifts(aws, "service", [deleted_role()], token="page-2")

    assert aws.run("drift", "--stack", "service") == 1, aws.err
    lines = aws.out.splitlines()
    assert lines[0] == f"{stack('service')}: DRIFTED"
    assert any(line.split() == ["MODIFIED", "LogGroup", "AWS::Logs::LogGroup"] for line in lines), aws.out
    assert "      /RetentionInDays: expected 90, actual 7 (NOT_EQUAL)" in lines
    assert any(line.split() == ["DELETED", "TaskRole", "AWS::IAM::Role"] for line in lines), aws.out
    assert "deleted outside CloudFormation (was startupwebapp-task-role)" in aws.out
    assert lines[-2].startswith(
        f"drifted: service: changed outside CloudFormation. Put the change into {PARAMS_FILE} (make templates && make review, "
        f"commit, then make deploy ENV={ENV}), or undo it by hand."
    ), aws.out
    # a deletion no params change undoes ("Put the change into params/..." spoke of it too)
    said, way = lines[-1].split(" and so does the layer destroyed and deployed again: ")
    assert said == (
        "deleted outside CloudFormation: service (TaskRole): an update that changes it fails, as CloudFormation updates only what "
        "exists; one that replaces it makes a new one (a property that replaces it changed, such as a new NamePrefix for what "
        "carries the name, with ALLOW_REPLACE=1),"
    ), aws.out
    # (helper Q3) the whole way on, as typed: the layers that read it destroyed first, the make purge that frees the
    # names the service's create needs (it said destroy, then deploy, which the kept log group refused), and the
    # image the service runs (the deploy after it released params' ImageTag)
    assert_the_whole_way_on(way, "service")
    if on_aws:  # no note of what an emulator checks
        assert text.OFF_AWS_DRIFT not in aws.out, aws.out
    else:
        assert lines[-3] == text.OFF_AWS_DRIFT, aws.out
    assert aws.sleeps == [1.0] and aws.err == ""


def assert_the_whole_way_on(way, *deleted):
    """way destroys the deleted layers and those that read them, once each and readers first, purges the service's kept
    names, and deploys them again with the image the service runs (described's)."""
    them = "it and the layers that read its outputs" if len(deleted) == 1 else "them and the layers that read their outputs"
    order = ", ".join(templates.destroy_order(*deleted))
    assert way.startswith(f"destroy {them}: make destroy ENV={ENV} STACK=<layer> for {order}, in that order"), way
    assert f"then make purge ENV={ENV} STACK=service (it frees the names" in way, way
    image = next(p["ParameterValue"] for p in described("service")["Stacks"][0]["Parameters"] if p["ParameterKey"] == "ImageTag")
    assert way.endswith(f"then make deploy ENV={ENV} TAG={image}"), way


def test_the_way_on_from_deletions_destroys_each_layer_once_the_layers_that_read_it_first():
    # (review of 72e8752) per layer, alb's way and the service's, the service was destroyed, purged and deployed twice
    for found in (["alb"], ["alb", "service"], ["service", "alb"]):
        way = text.destroy_and_deploy_again(ENV, found)
        assert f"make destroy ENV={ENV} STACK=<layer> for {', '.join(templates.destroy_order(*found))}, in that order" in way, way
        assert way.count("make destroy") == 1 and way.count(f"make deploy ENV={ENV}") == 1, way


def test_with_no_layer_deployed_but_one_not_read_drift_says_it_was_not_fully_checked():
    # "nothing was checked: not deployed" hid the layer it could not read, the cause of exit 2
    assert text.drift_summary([], ["alb"], ENV, [], [], ["cert-dns", "alb"]) == ["not fully checked: alb (see above; exit 2)"]


def test_a_complete_detection_says_no_reason_and_a_drifted_value_is_cut_only_beyond_200_characters():
    status = detection_status("service", drift="IN_SYNC", reason="Drift detection complete")
    assert text.drift_report(stack("service"), status, []) == [f"{stack('service')}: IN_SYNC"]
    assert text.short("x" * 200) == "x" * 200
    assert text.short("x" * 201) == "x" * 197 + "..."


def test_a_stack_said_drifted_without_a_resource_listed_is_drifted_still(aws):
    # DescribeStackResourceDrifts may list nothing of a DRIFTED stack (a resource type it does not list): not in sync.
    aws.deployed("service")
    detect(aws, "service")
    poll(aws, detection_status("service", count=1))
    resource_drifts(aws, "service", [])
    assert aws.run("drift", "--stack", "service") == 1, aws.err
    assert aws.out.splitlines()[-1].startswith("drifted: service: changed outside CloudFormation"), aws.out


def test_a_stack_whose_only_drift_is_a_deletion_is_not_told_to_put_it_into_params(aws):
    aws.deployed("service")
    detect(aws, "service")
    poll(aws, detection_status("service", count=1))
    resource_drifts(aws, "service", [deleted_role()])
    assert aws.run("drift", "--stack", "service") == 1, aws.err
    assert "drifted:" not in aws.out and aws.out.splitlines()[-1].startswith("deleted outside CloudFormation: service (TaskRole): "), (
        aws.out
    )


def test_a_value_changed_out_of_band_is_printed_escaped_on_one_line_and_forges_no_line(aws):
    # An alarm description, a key's or role's description: anyone allowed to edit it out of band may put anything in it.
    forged = "in sync: no property the templates set changed outside CloudFormation, on the resource types drift detection supports"
    drifted = modified_log_group()
    drifted["PropertyDifferences"] = [
        {
            "PropertyPath": "/Description\x1b]0;x\x07",
            "ExpectedValue": "logs",
            "ActualValue": f"x\n{forged}\t",
            "DifferenceType": "NOT_EQUAL",
        }
    ]
    drifted["LogicalResourceId"] = "LogGroup\nIN_SYNC"
    aws.deployed("service")
    detect(aws, "service")
    poll(aws, detection_status("service", count=1))
    resource_drifts(aws, "service", [drifted])
    assert aws.run("drift", "--stack", "service") == 1, aws.err
    assert f"      /Description\\x1b]0;x\\x07: expected logs, actual x\\n{forged}\\t (NOT_EQUAL)" in aws.out.splitlines(), aws.out
    assert forged not in aws.out.replace(f"\\n{forged}", ""), aws.out
    assert "\x1b" not in aws.out and "\nIN_SYNC" not in aws.out and "LogGroup\\nIN_SYNC" in aws.out, aws.out


@pytest.mark.parametrize("on_aws", [True, False])
def test_a_stack_in_sync_exits_0_without_listing_resources(aws, monkeypatch, on_aws):
    """Off AWS (AWS_ENDPOINT_URL: the sandbox, which checks two resource types), "in sync" does not speak
    for every resource: a security group opened to the world by hand went unseen there, said in sync."""
    if on_aws:
        monkeypatch.delenv("AWS_ENDPOINT_URL")  # the clients are stubbed: nothing is sent
    aws.deployed("service")
    detect(aws, "service")
    poll(aws, detection_status("service", drift="IN_SYNC", count=0))
    assert aws.run("drift", "--stack", "service") == 0, aws.err
    summary = (
        ["in sync: no property the templates set changed outside CloudFormation, on the resource types drift detection supports"]
        if on_aws
        else ["in sync: nothing it checked changed", text.OFF_AWS_DRIFT]
    )
    assert aws.out.splitlines() == [f"{stack('service')}: IN_SYNC", *summary]
    assert aws.calls("service") == 2  # DescribeStacks, DetectStackDrift (the status poll names a detection, not the stack)


def not_enabled_not_deployed(aws):
    """make drift of every layer looks, after the enabled layers, for a stack of each layer not enabled."""
    for layer in templates.layer_order():
        if layer not in PROD_LAYERS:
            aws.not_deployed(layer)


def test_every_layer_by_default_and_a_layer_not_deployed_is_no_error(aws):
    for layer in PROD_LAYERS:
        if layer == "service":
            aws.not_deployed(layer)
            continue
        aws.deployed(layer)
        detect(aws, layer)
        poll(aws, detection_status(layer, drift="IN_SYNC", count=0))
    not_enabled_not_deployed(aws)
    assert aws.run("drift") == 0, aws.err
    assert f"{stack('service')}: not deployed, nothing to check" in aws.out
    assert all(f"{stack(layer)}: IN_SYNC" in aws.out for layer in PROD_LAYERS if layer != "service")


def test_with_no_layer_deployed_drift_says_nothing_was_checked_not_in_sync(aws):
    for layer in PROD_LAYERS:
        aws.not_deployed(layer)
    not_enabled_not_deployed(aws)
    assert aws.run("drift") == 0, aws.err
    assert aws.out.splitlines()[-1] == f"nothing was checked: not deployed in {ENV}: {', '.join(PROD_LAYERS)}"
    assert "in sync" not in aws.out


def test_a_layer_not_enabled_whose_stack_cannot_be_read_is_said_not_checked(aws):
    # A layer taken out of enabled_layers may still be deployed: one whose stack cannot be read may be, and is not said in sync
    others = [layer for layer in templates.layer_order() if layer not in PROD_LAYERS]
    if not others:
        pytest.skip(f"{ENV} enables every layer")
    for layer in PROD_LAYERS:
        aws.not_deployed(layer)
    for layer in others:  # one DescribeStacks each
        aws.cf.add_client_error("describe_stacks", "AccessDenied", "not authorized", 403, expected_params={"StackName": stack(layer)})
    assert aws.run("drift") == 2, aws.err
    assert all(f"{stack(layer)}: not checked: DescribeStacks: AccessDenied" in aws.out for layer in others), aws.out
    assert aws.out.splitlines()[-1] == f"not fully checked: {', '.join(others)} (see above; exit 2)", aws.out


@pytest.mark.parametrize(
    "status, tags",
    [("ROLLBACK_COMPLETE", None), ("REVIEW_IN_PROGRESS", None), ("UPDATE_COMPLETE", {"Owner": "another team"})],
    ids=["a failed first create", "an empty stack under review", "someone else's"],
)
def test_a_layer_not_enabled_whose_stack_holds_nothing_of_ours_is_passed_over(aws, status, tags):
    # A failed first create of a layer taken out of enabled_layers since: exit 2 on every scheduled drift run, with the
    # advice of a deploy that is refused for a layer not enabled
    others = [layer for layer in templates.layer_order() if layer not in PROD_LAYERS]
    if not others:
        pytest.skip(f"{ENV} enables every layer")
    for layer in PROD_LAYERS:
        aws.not_deployed(layer)
    for layer in others:
        own = templates.own_tags(ENV, layer) if tags is None else tags
        aws.cf.add_response(
            "describe_stacks",
            described(layer, status, parameters={"NamePrefix": "startupwebapp"}, with_outputs=False, tags=own),
            {"StackName": stack(layer)},
        )
    assert aws.run("drift") == 0, aws.out + aws.err
    assert not any(stack(layer) in aws.out for layer in others), aws.out
    assert aws.out.splitlines()[-1] == f"nothing was checked: not deployed in {ENV}: {', '.join(PROD_LAYERS)}", aws.out


def test_a_failed_detection_prints_its_reason_and_the_partial_results_and_exits_2(aws):
    reason = "Failed to detect drift on resource [TaskRole]: User is not authorized to perform: iam:GetRole"
    aws.deployed("service")
    detect(aws, "service")
    poll(aws, detection_status("service", "DETECTION_FAILED", "DRIFTED", reason=reason))
    resource_drifts(aws, "service", [modified_log_group()])
    assert aws.run("drift", "--stack", "service") == 2
    assert aws.out.splitlines()[0] == f"{stack('service')}: DRIFTED (DETECTION_FAILED)"
    assert f"  detection did not check everything: {reason}" in aws.out
    assert "/RetentionInDays: expected 90, actual 7" in aws.out
    assert "drifted: service" in aws.out and "not fully checked: service" in aws.out


def test_a_detection_that_does_not_finish_in_time_stops_waiting_and_says_how_to_follow_it(aws):
    elapsed = [0.0]

    def sleep(seconds):  # each wait between polls counts as 200 s
        aws.sleeps.append(seconds)
        elapsed[0] += 200

    aws.deployed("service")
    detect(aws, "service")
    polls = MAX_WAIT_SECONDS // 200 + 1  # at 0, 200, 400 and 600 s; none after the bound
    poll(aws, *[detection_status("service", "DETECTION_IN_PROGRESS", "NOT_CHECKED")] * polls)
    assert aws.run("drift", "--stack", "service", sleep=sleep, clock=lambda: elapsed[0]) == 2
    assert f"error: stopped waiting for the drift detection of {stack('service')} after 10 minutes" in aws.out
    assert f"--stack-drift-detection-id {DETECTION}" in aws.out
    assert f"make drift STACK=service ENV={ENV}" in aws.out
    assert len(aws.sleeps) == polls - 1


def test_a_stack_in_the_middle_of_an_update_is_not_checked(aws):
    aws.deployed("service", status="UPDATE_IN_PROGRESS")
    assert aws.run("drift", "--stack", "service") == 2
    assert f"error: {stack('service')} is UPDATE_IN_PROGRESS: drift is detected only on a settled stack" in aws.out
    assert aws.calls("service") == 1


def test_a_failed_first_create_is_not_said_in_sync_but_what_to_do(aws):
    # ROLLBACK_COMPLETE holds nothing: "in sync: nothing it checked changed" and exit 0 spoke for a layer not there
    aws.deployed("alarms", status="ROLLBACK_COMPLETE")
    assert aws.run("drift", "--stack", "alarms") == 2
    assert f"{stack('alarms')}: ROLLBACK_COMPLETE: holds nothing to check; its first create failed" in aws.out, aws.out
    assert f"make deploy STACK=alarms ENV={ENV} RECREATE=1" in aws.out and "in sync" not in aws.out, aws.out
    assert aws.calls("alarms") == 1  # DescribeStacks alone: no detection sent


@pytest.mark.parametrize(
    "message, said",
    [
        (f"Drift detection is already in progress for stack [{stack_id('service')}]", None),
        ("refused\nerror: forged\u202eevil", "refused\\nerror: forged\\u202eevil"),  # AWS's text, escaped onto its line
    ],
    ids=["in progress", "hostile"],
)
def test_a_detection_refused_by_cloudformation_is_one_line_and_exit_2(aws, message, said):
    aws.deployed("service")
    aws.cf.add_client_error("detect_stack_drift", "ValidationError", message, 400)
    assert aws.run("drift", "--stack", "service") == 2
    assert f"error: {stack('service')}: drift detection refused: {said or message}\n" in aws.out, aws.out


def test_an_aws_error_while_waiting_is_one_line_and_exit_2(aws):
    aws.deployed("service")
    detect(aws, "service")
    aws.cf.add_client_error("describe_stack_drift_detection_status", "AccessDenied", "not authorized", 403)
    assert aws.run("drift", "--stack", "service") == 2
    assert f"{stack('service')}: not checked: DescribeStackDriftDetectionStatus: AccessDenied" in aws.out and "Traceback" not in aws.err


def test_one_layers_aws_error_does_not_stop_the_others_from_being_checked(aws):
    for layer in PROD_LAYERS:
        aws.deployed(layer)
        if layer == "release-alarms":
            aws.cf.add_client_error(
                "detect_stack_drift", "AccessDenied", "not authorized", 403, expected_params={"StackName": stack_id(layer)}
            )
            continue
        detect(aws, layer)
        poll(aws, detection_status(layer, drift="IN_SYNC", count=0))
    not_enabled_not_deployed(aws)
    assert aws.run("drift") == 2, aws.err
    assert f"{stack('release-alarms')}: not checked: DetectStackDrift: AccessDenied" in aws.out
    assert all(f"{stack(layer)}: IN_SYNC" in aws.out for layer in PROD_LAYERS if layer != "release-alarms")
    assert aws.out.splitlines()[-1] == "not fully checked: release-alarms (see above; exit 2)"


def test_an_unknown_layer_is_bad_input(aws):
    assert aws.run("drift", "--stack", "nope") == 2
    assert "unknown layer 'nope'" in aws.err


# --- the deploy's warning ---------------------------------------------------------------------
def drifted_stack(layer):
    found = described(layer)
    found["Stacks"][0]["DriftInformation"] = {"StackDriftStatus": "DRIFTED", "LastCheckTimestamp": NOW}
    return found


def test_a_change_set_on_a_drifted_stack_is_preceded_by_a_warning(aws):
    layer = "cert-dns"
    aws.cf.add_response("describe_stacks", drifted_stack(layer), {"StackName": stack(layer)})
    aws.change_set(layer, "UPDATE", [change("Modify", "HostedZone", "AWS::Route53::HostedZone")])
    aws.cf.add_response("delete_change_set", {}, {"StackName": stack(layer), "ChangeSetName": cs_name(layer)})
    assert aws.run("deploy", "--stack", layer) == 1  # no terminal, no --yes: refused after the warning
    warning = f"warning: {stack(layer)} drifted: its last drift check (of the stack or one of its resources) at 2025-11-25 12:00:00 UTC found resources changed outside"
    assert warning in aws.out
    assert f"See what: make drift STACK={layer} ENV={ENV}" in aws.out
    # DescribeStacks, CreateChangeSet, DescribeChangeSet, ListChangeSets (any left for review), DeleteChangeSet: no drift call
    assert aws.calls(layer) == 5


def test_a_drift_check_older_than_the_stacks_last_update_says_so_and_to_check_again(aws):
    """The status is the last check's: after an update since, still a warning, saying the check is older."""
    layer = "cert-dns"
    found = drifted_stack(layer)
    found["Stacks"][0]["LastUpdatedTime"] = NOW + timedelta(hours=1)
    aws.cf.add_response("describe_stacks", found, {"StackName": stack(layer)})
    aws.change_set(layer, "UPDATE", [change("Modify", "HostedZone", "AWS::Route53::HostedZone")])
    aws.cf.add_response("delete_change_set", {}, {"StackName": stack(layer), "ChangeSetName": cs_name(layer)})
    assert aws.run("deploy", "--stack", layer) == 1
    assert (
        f"note: {stack(layer)} drifted: its last drift check (of the stack or one of its resources) at 2025-11-25 12:00:00 UTC found resources changed outside CloudFormation; "
        f"the stack was updated since (2025-11-25 13:00:00 UTC), after that check, which may no longer hold. Check again: "
        f"make drift STACK={layer} ENV={ENV}"
    ) in aws.out


def test_no_warning_when_the_last_check_found_no_drift(aws):
    layer = "cert-dns"
    aws.deployed(layer)  # DriftInformation NOT_CHECKED
    aws.change_set(layer, "UPDATE", [change("Modify", "HostedZone", "AWS::Route53::HostedZone")])
    aws.cf.add_response("delete_change_set", {}, {"StackName": stack(layer), "ChangeSetName": cs_name(layer)})
    assert aws.run("deploy", "--stack", layer) == 1
    assert "drift" not in aws.out


def test_a_no_op_redeploy_of_a_drifted_stack_stays_four_calls_and_says_the_drift_stays(aws):
    # A redeploy to "fix drift" said only "no changes": CloudFormation compares templates, not resources.
    layer = "cert-dns"
    aws.cf.add_response("describe_stacks", drifted_stack(layer), {"StackName": stack(layer)})
    aws.empty_change_set(layer)
    assert aws.run("deploy", "--stack", layer) == 0, aws.err
    assert aws.calls(layer) == 4
    assert (
        f"{stack(layer)}: no changes\nnote: {stack(layer)} drifted at its last drift check, and a deploy with nothing to change" in aws.out
    )
    assert f"make drift STACK={layer} ENV={ENV} says what" in aws.out


def test_a_no_op_redeploy_after_an_update_since_the_drift_check_says_the_check_may_no_longer_hold(aws):
    layer = "cert-dns"
    found = drifted_stack(layer)
    found["Stacks"][0]["LastUpdatedTime"] = NOW + timedelta(hours=1)
    aws.cf.add_response("describe_stacks", found, {"StackName": stack(layer)})
    aws.empty_change_set(layer)
    assert aws.run("deploy", "--stack", layer) == 0, aws.err
    assert (
        f"note: {stack(layer)} drifted at its last drift check, before its last update, which may have undone it: "
        f"make drift STACK={layer} ENV={ENV} says whether it still drifts"
    ) in aws.out
    assert "leaves what was changed" not in aws.out


def test_a_no_op_redeploy_of_a_stack_without_drift_is_quiet(aws):
    layer = "cert-dns"
    aws.deployed(layer)  # DriftInformation NOT_CHECKED
    aws.empty_change_set(layer)
    assert aws.run("deploy", "--stack", layer) == 0, aws.err
    assert "drift" not in aws.out


@pytest.mark.parametrize("on_aws", [True, False])
def test_a_listener_rule_that_a_release_moved_is_reported_with_why(aws, monkeypatch, on_aws):
    """ECS moves the production rule's weights in a blue/green release: CloudFormation calls it
    drift, the report says why it is expected, and `make drift` exits 0 for it (nothing to undo)."""
    if on_aws:
        monkeypatch.delenv("AWS_ENDPOINT_URL")  # the clients are stubbed: nothing is sent
    arn = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener-rule/app/startupwebapp-alb/0123456789abcdef/1111111111111111/2222222222222222"
    moved = {
        "StackId": stack_id("alb"),
        "LogicalResourceId": "ProductionListenerRule",
        "PhysicalResourceId": arn,
        "ResourceType": "AWS::ElasticLoadBalancingV2::ListenerRule",
        "ExpectedProperties": json.dumps({"Priority": 1}),
        "ActualProperties": json.dumps({"Priority": 1}),
        "PropertyDifferences": [
            {
                "PropertyPath": "/Actions/0/ForwardConfig/TargetGroups/0/Weight",
                "ExpectedValue": "100",
                "ActualValue": "0",
                "DifferenceType": "NOT_EQUAL",
            }
        ],
        "StackResourceDriftStatus": "MODIFIED",
        "Timestamp": NOW,
    }
    aws.deployed("alb")
    detect(aws, "alb")
    poll(aws, detection_status("alb", count=1))
    resource_drifts(aws, "alb", [moved])
    assert aws.run("drift", "--stack", "alb") == 0, aws.err
    moved_line = "in sync but for the listener-rule weights a release moved (alb): nothing to undo"
    if on_aws:  # the line alone, and no note of what an emulator checks
        assert aws.out.splitlines()[-1] == moved_line and text.OFF_AWS_DRIFT not in aws.out, aws.out
    else:
        assert aws.out.splitlines()[-2:] == [moved_line, text.OFF_AWS_DRIFT], aws.out
    assert "      /Actions/0/ForwardConfig/TargetGroups/0/Weight: expected 100, actual 0 (NOT_EQUAL)" in aws.out.splitlines()
    assert "moves this rule's weights (ECS): expected after one" in aws.out


def test_a_listener_rule_changed_beyond_its_weights_gets_no_such_excuse():
    moved = {
        "StackResourceDriftStatus": "MODIFIED",
        "LogicalResourceId": "ProductionListenerRule",
        "ResourceType": "AWS::ElasticLoadBalancingV2::ListenerRule",
    }
    weight = {
        "PropertyPath": "/Actions/0/ForwardConfig/TargetGroups/1/Weight",
        "ExpectedValue": "0",
        "ActualValue": "100",
        "DifferenceType": "NOT_EQUAL",
    }
    redirect = {"PropertyPath": "/Actions/0/Type", "ExpectedValue": "forward", "ActualValue": "redirect", "DifferenceType": "NOT_EQUAL"}
    status = {"StackDriftStatus": "DRIFTED", "DetectionStatus": "DETECTION_COMPLETE"}
    excuse = "moves this rule's weights (ECS)"
    assert any(excuse in line for line in text.drift_report("s", status, [moved | {"PropertyDifferences": [weight]}]))
    assert not any(excuse in line for line in text.drift_report("s", status, [moved | {"PropertyDifferences": [weight, redirect]}]))
    assert not any(excuse in line for line in text.drift_report("s", status, [moved | {"PropertyDifferences": []}]))


def test_a_stack_of_our_name_someone_else_made_is_said_and_not_checked(aws):
    # It was reported IN_SYNC, "no resource changed outside CloudFormation", as if it were ours.
    theirs = described("alarms", tags={"Owner": "mallory"})
    aws.cf.add_response("describe_stacks", theirs, {"StackName": stack("alarms")})
    assert aws.run("drift", "--stack", "alarms") == 0, aws.err
    assert aws.out.splitlines() == [
        f"{stack('alarms')}: not made by this tool (it lacks the tags its stacks carry: Project={templates.PROJECT}, Environment={ENV}, "
        "Layer=alarms): deploy and destroy refuse it while it is there; not checked",
        # it ended "nothing was checked: not deployed in <env>: alarms", of a stack just named
        "not checked: alarms: not made by this tool (see above)",
    ]
    assert "IN_SYNC" not in aws.out and "in sync" not in aws.out, aws.out


def test_in_sync_speaks_only_of_the_layers_checked_not_of_one_someone_else_made(aws, monkeypatch):
    monkeypatch.delenv("AWS_ENDPOINT_URL")  # the clients are stubbed: nothing is sent
    aws.deployed("service")
    detect(aws, "service")
    poll(aws, detection_status("service", drift="IN_SYNC", count=0))
    assert aws.run("drift", "--stack", "service") == 0, aws.err
    assert aws.out.splitlines()[-1] == text.IN_SYNC_ON_AWS, aws.out  # none not ours: no line for them
    # both in one summary (make drift of every layer): in sync is said with the layer left out named after it
    summary = text.drift_summary([], [], ENV, [], ["service"], ["service", "alarms"], True, None, {}, ["alarms"])
    assert summary == [text.IN_SYNC_ON_AWS, "not checked: alarms: not made by this tool (see above)"]
    moved = text.drift_summary([], [], ENV, ["alb"], ["alb"], ["alb", "alarms"], True, None, {}, ["alarms"])
    assert moved[1:] == ["not checked: alarms: not made by this tool (see above)"], moved
    drifted = text.drift_summary(["service"], [], ENV, [], ["service"], ["service", "alarms"], True, None, {}, ["alarms"])
    assert "not checked: alarms: not made by this tool (see above)" in drifted and len(drifted) == 2, drifted
    # (mutation audit) off AWS (the sandbox), the emulator's caveat and the line for a stack not ours keep their places:
    # in sync first, then who was not checked, then the caveat; a finding after both
    theirs = "not checked: alarms: not made by this tool (see above)"
    off = text.drift_summary([], [], ENV, [], ["service"], ["service", "alarms"], False, None, {}, ["alarms"])
    assert off == ["in sync: nothing it checked changed", theirs, text.OFF_AWS_DRIFT], off
    off = text.drift_summary(["service"], [], ENV, [], ["service"], ["service", "alarms"], False, None, {}, ["alarms"])
    assert off[:2] == [text.OFF_AWS_DRIFT, theirs] and off[2].startswith("drifted: service: "), off


def test_an_empty_stack_under_review_of_an_enabled_layer_is_not_deployed_not_busy(aws):
    # make changeset's empty stack (REVIEW_IN_PROGRESS) holds nothing: not a stack "in the middle of" an operation to wait for
    aws.deployed("service", status="REVIEW_IN_PROGRESS")
    assert aws.run("drift", "--stack", "service") == 0, aws.out + aws.err
    assert aws.out.splitlines() == [
        f"{stack('service')}: not deployed, nothing to check",
        f"nothing was checked: not deployed in {ENV}: service",
    ]
    assert aws.calls("service") == 1  # DescribeStacks alone: no detection sent


@pytest.mark.parametrize("status", ["CREATE_IN_PROGRESS", "UPDATE_ROLLBACK_IN_PROGRESS", "DELETE_IN_PROGRESS", "IMPORT_IN_PROGRESS"])
def test_a_stack_in_any_operation_is_not_sent_a_detection(aws, status):
    aws.deployed("service", status=status)
    assert aws.run("drift", "--stack", "service") == 2
    assert f"error: {stack('service')} is {status}: drift is detected only on a settled stack" in aws.out, aws.out
    assert aws.calls("service") == 1


def test_an_aws_error_other_than_a_refusal_at_detect_is_not_said_refused(aws):
    # ValidationError alone is CloudFormation refusing the detection; any other error is said as every command's errors are
    aws.deployed("service")
    aws.cf.add_client_error("detect_stack_drift", "InternalFailure", "internal failure", 500)
    assert aws.run("drift", "--stack", "service") == 2
    assert f"{stack('service')}: not checked: DetectStackDrift: InternalFailure" in aws.out, aws.out
    assert "drift detection refused" not in aws.out, aws.out


@pytest.mark.parametrize("drift", ["UNKNOWN", "NOT_CHECKED"])
def test_a_complete_detection_that_says_neither_in_sync_nor_drifted_is_not_said_in_sync(aws, drift):
    aws.deployed("service")
    detect(aws, "service")
    poll(aws, detection_status("service", drift=drift))
    resource_drifts(aws, "service", [])
    assert aws.run("drift", "--stack", "service") == 2, aws.out + aws.err
    assert aws.out.splitlines()[0] == f"{stack('service')}: {drift}", aws.out
    assert aws.out.splitlines()[-1] == "not fully checked: service (see above; exit 2)", aws.out
    assert "in sync" not in aws.out, aws.out


def test_a_first_create_whose_rollback_failed_is_not_sent_to_detection_but_given_its_way_on(aws):
    # (an attacker review of fab3006) make drift handles ROLLBACK_COMPLETE and DELETE_FAILED with the way on (drift.check), but a
    # ROLLBACK_FAILED stack falls through to DetectStackDrift: what is left of a failed create holds part of the layer, so a
    # result ("in sync", or CloudFormation's refusal, said as "drift detection refused: ...") gives no way on, where make
    # deploy, make diff, make execute and now the deploy's own finish() name make destroy, make purge and make deploy.
    aws.deployed("alarms", status="ROLLBACK_FAILED")
    assert aws.run("drift", "--stack", "alarms") == 2, aws.out + aws.err
    assert f"{stack('alarms')}: ROLLBACK_FAILED" in aws.out, aws.out
    assert f"make destroy STACK=alarms ENV={ENV}" in aws.out and "in sync" not in aws.out, aws.out
    assert aws.calls("alarms") == 1  # DescribeStacks alone: no detection sent


GARBLED = [
    '{"Resources": []}',  # JSON, but no object of resources
    '{"Resources": {"LogGroup": {"Type": "AWS::Logs::LogGroup", "Properties": null, "DeletionPolicy": "Retain"}}}',
]


def garbled_output(aws, tmp_path, layer, body):
    """output/ as a run reads it, with the layer's template JSON of another shape (layer.template_problem's case)."""
    output = shutil.copytree(OUTPUT, tmp_path / "output")
    (output / f"{layer}.json").write_text(body)
    aws.dirs = output, PARAMS


@pytest.mark.parametrize("body", GARBLED)
def test_a_rollback_failed_way_on_is_given_though_its_template_in_output_is_garbled(aws, tmp_path, body):
    # purge.keep_names left out a template that could not be read, not one that was JSON without a template's shape: the
    # way on (which reads output/ for the purge step) ended "error: AttributeError: ... a bug of the tool's" instead.
    garbled_output(aws, tmp_path, "alarms", body)
    aws.deployed("alarms", status="ROLLBACK_FAILED")
    code = aws.run("drift", "--stack", "alarms")
    assert "a bug of the tool's" not in aws.err, aws.err
    assert code == 2, aws.out + aws.err
    assert f"{stack('alarms')}: ROLLBACK_FAILED: not checked; " in aws.out and f"make destroy STACK=alarms ENV={ENV}" in aws.out, aws.out


@pytest.mark.parametrize("body", GARBLED)
def test_a_deploy_refused_for_a_half_deleted_upstream_gives_its_way_on_though_a_downstream_template_is_garbled(aws, tmp_path, body):
    # The same through make deploy STACK=alb, which loads alb.json alone: cert-dns's DELETE_FAILED way on reads the
    # template of every layer of its destroy order (service.json among them).
    garbled_output(aws, tmp_path, "service", body)
    aws.deployed("cert-dns", status="DELETE_FAILED")
    aws.deployed("service", parameters=service_parameters("running-one"))
    assert aws.run("deploy", "--stack", "alb", "--yes") == 1
    assert "a bug of the tool's" not in aws.err, aws.err
    assert "make destroy ENV=" in aws.err and aws.err.endswith(f"make deploy ENV={ENV} TAG=running-one\n"), aws.err


def test_make_drift_gives_one_way_on_for_deletions_in_layers_that_do_not_read_each_other(aws):
    # (review of ada5049) make drift's way on is Deployer.destroy_and_deploy_again(*deleted): every deleted layer's
    # readers, the service's purge and its running image; one layer's way on alone (alarms', say) left the service's
    # deleted resource where it was, and every test stayed green (text.drift_summary's test has alb, which the service reads)
    assert "service" not in templates.destroy_order("alarms") and "alarms" in PROD_LAYERS, PROD_LAYERS
    for layer in PROD_LAYERS:
        aws.deployed(layer)
        detect(aws, layer)
        if layer in ("alarms", "service"):
            poll(aws, detection_status(layer, count=1))
            resource_drifts(aws, layer, [deleted_role(layer)])
        else:
            poll(aws, detection_status(layer, drift="IN_SYNC", count=0))
    not_enabled_not_deployed(aws)
    assert aws.run("drift") == 1, aws.out + aws.err
    way = aws.out.splitlines()[-1].split(" and so does the layer destroyed and deployed again: ")[1]
    assert_the_whole_way_on(way, "alarms", "service")
