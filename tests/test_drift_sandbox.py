"""`make drift` end to end on the session's sandbox, seeded again: deploy, change resources out of band
through the services' APIs, detect the drift (exit 1, naming the property), put them back (exit 0).
The sandbox checks a log group's retention and a target group's health check (emulator/moto_compat.py
DRIFT_READERS); other types are not checked there."""

from conftest import deploying_into, parameters

import templates
from emulator.sandbox import PARAMS_FILE
from scripts.deploy import text
from templates import params
from templates.inputs import LOG_RETENTION_DAYS

ENV = "sandbox"
SANDBOX = params.load(PARAMS_FILE)
# The layer whose log group drifts: the waf layer's, the fewest layers in, where params/sandbox.yaml enables it.
LOGS = "waf" if SANDBOX.deploys("waf") else "service"


def test_drift_is_detected_after_an_out_of_band_change_and_clears_once_undone(seeded_sandbox):
    box = seeded_sandbox[0]
    with deploying_into(box) as run:
        for layer in SANDBOX.layers[: SANDBOX.layers.index(LOGS) + 1]:  # alb's and LOGS's, and the layers before them
            code, out, err = run("deploy", "--stack", layer, "--yes")
            assert code == 0, out + err

        code, out, err = run("drift")
        assert code == 0, out + err
        assert f"{templates.stack_name(ENV, 'alb')}: IN_SYNC" in out
        assert out.splitlines()[-2:] == ["in sync: nothing it checked changed", text.OFF_AWS_DRIFT], out  # not "no resource changed"
        for layer in SANDBOX.layers[SANDBOX.layers.index(LOGS) + 1 :]:  # the layers after them
            assert f"{templates.stack_name(ENV, layer)}: not deployed, nothing to check" in out

        cf = box.client("cloudformation")
        resources = {
            r["LogicalResourceId"]: r.get("PhysicalResourceId")
            for r in cf.describe_stack_resources(StackName=templates.stack_name(ENV, "alb"))["StackResources"]
        }
        logged = {
            r["LogicalResourceId"]: r.get("PhysicalResourceId")
            for r in cf.describe_stack_resources(StackName=templates.stack_name(ENV, LOGS))["StackResources"]
        }
        expected_path = parameters(ENV, "alb")["HealthCheckPath"]
        retention = parameters(ENV, LOGS)["LogRetentionDays"]
        by_hand = next(days for days in LOG_RETENTION_DAYS if str(days) != retention)  # any other value CloudWatch takes
        box.client("elbv2").modify_target_group(TargetGroupArn=resources["TargetGroup"], HealthCheckPath="/by-hand")
        box.client("logs").put_retention_policy(logGroupName=logged["LogGroup"], retentionInDays=by_hand)

        code, out, err = run("drift")
        assert code == 1, out + err
        assert f"{templates.stack_name(ENV, 'alb')}: DRIFTED" in out
        assert f"/HealthCheckPath: expected {expected_path}, actual /by-hand (NOT_EQUAL)" in out
        assert f"/RetentionInDays: expected {retention}, actual {by_hand} (NOT_EQUAL)" in out
        assert f"drifted: alb, {LOGS}" in out
        assert not any(line.split()[:1] == ["IN_SYNC"] for line in out.splitlines()), out  # only MODIFIED and DELETED are listed
        stack = cf.describe_stacks(StackName=templates.stack_name(ENV, "alb"))["Stacks"][0]
        assert stack["DriftInformation"]["StackDriftStatus"] == "DRIFTED"
        code, out, err = run("diff", "--stack", "alb")  # the same template and values: said with what the drift check found
        assert code == 0 and f"  note: {templates.stack_name(ENV, 'alb')} drifted at its last drift check" in out, out + err
        code, out, err = run("deploy", "--stack", "alb", "--yes")  # to "fix" it: nothing to change, and the drift stays
        assert code == 0 and f"{templates.stack_name(ENV, 'alb')}: no changes" in out, out + err
        assert f"note: {templates.stack_name(ENV, 'alb')} drifted at its last drift check" in out, out

        box.client("elbv2").modify_target_group(TargetGroupArn=resources["TargetGroup"], HealthCheckPath=expected_path)
        box.client("logs").put_retention_policy(logGroupName=logged["LogGroup"], retentionInDays=int(retention))
        code, out, err = run("drift", "--stack", "alb")
        assert code == 0, out + err
        code, out, err = run("drift", "--stack", LOGS)
        assert code == 0, out + err

        box.client("logs").delete_log_group(logGroupName=logged["LogGroup"])
        code, out, err = run("drift", "--stack", LOGS)
        assert code == 1, out + err
        assert any(line.split()[:2] == ["DELETED", "LogGroup"] for line in out.splitlines()), out
