"""End to end: the deployer's own entry point, through AWS_ENDPOINT_URL, against the sandbox this
module starts on a free port (and stops): deploy every layer the sandbox environment deploys, in
order, check the resources through the services' APIs, redeploy with nothing changed, update a
parameter, destroy."""

import json
import re
import socket
import time

import pytest
from conftest import deploying_into, parameters, seeded

import templates
from emulator.sandbox import PARAMS_FILE
from scripts import deploy
from scripts.deploy.aws import NO_STACK
from templates import params
from templates.params import SANDBOX_CANNOT_REHEARSE

ENV = "sandbox"
ENVIRONMENT = params.load(PARAMS_FILE)
HEALTH = f"https {ENVIRONMENT.values['HealthCheckPath']}"  # verify's check of the path the target group probes
VALUES = ENVIRONMENT.values  # what the tests expect comes from params/sandbox.yaml, never a copy of it
DOMAIN = VALUES["DomainName"]
HOST = f"{VALUES['ApiHostLabel']}.{DOMAIN}"
PREFIX = VALUES["NamePrefix"]
PORT = int(VALUES["ContainerPort"])
# Every layer but the optional ones the sandbox does not enable (it enables waf, not ci).
LAYERS = ENVIRONMENT.layers
pytestmark = pytest.mark.xdist_group("e2e")  # one worker, so that every layer is deployed once for the module


@pytest.fixture(scope="module")
def run(sandbox):
    with deploying_into(sandbox, "--api-calls") as run:
        yield run


@pytest.fixture(scope="module")
def first_deploy(sandbox, run):
    """(exit code, stdout, stderr) of deploying every layer into the empty Phase 5.14 account."""
    seeded(sandbox)
    return run("deploy", "--yes")


@pytest.fixture
def every_layer_deployed(sandbox, run, first_deploy):
    """Every layer deployed, whichever test ran before: after one that destroyed them (leaving
    what they retain), the account is seeded again and everything deployed again."""
    code, out, err = first_deploy
    assert code == 0, out + err
    stacks = {s["StackName"] for s in sandbox.client("cloudformation").describe_stacks()["Stacks"]}
    if not {templates.stack_name(ENV, layer) for layer in LAYERS} <= stacks:
        seeded(sandbox)
        code, out, err = run("deploy", "--yes")
        assert code == 0, out + err


def outputs(sandbox, layer):
    stack = sandbox.client("cloudformation").describe_stacks(StackName=templates.stack_name(ENV, layer))["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


# Each test starts from every layer deployed (the `every_layer_deployed` fixture), in any order; a test that
# changes the image deploys its own tags first.


def test_deploy_every_layer_in_order(first_deploy):
    code, out, err = first_deploy
    assert code == 0, out + err
    assert out.splitlines()[0] == "order: " + " -> ".join(LAYERS)
    for layer in LAYERS:
        assert f"{templates.stack_name(ENV, layer)}: CREATE_COMPLETE" in out
    summary = out.splitlines()[-1]
    assert summary.startswith("summary, ") and all(f"{layer} (created, " in summary for layer in LAYERS), summary
    # The service's first create is watched by the release alarms as an update would be.
    assert "release alarms, watched during the create and" in out and "watched during the update" not in out
    # which the emulator does not do: said, as a deploy there ends at once (from a newcomer's trial)
    (triggers,) = [line for line in out.splitlines() if line.startswith("rollback triggers: ")]
    assert triggers.endswith("goes to ALARM (on AWS; the emulator watches no alarm)"), triggers
    # Each address of params/sandbox.yaml would get a confirmation message on AWS, and is told so; the sandbox sends none.
    addresses = [address for address in VALUES["AlertEmails"].split(",") if address]
    made = ", ".join(f"AlertEmailSubscription{slot}" for slot in range(1, len(addresses) + 1))
    note = f"note: e-mail subscriptions made anew ({made}): on AWS, each address is sent a confirmation message"
    assert (note in out) == bool(addresses) and ("(the link is valid for three days); the sandbox sends none" in out) == bool(addresses)


def test_outputs_are_wired_into_the_next_layers(sandbox, every_layer_deployed):
    cf = sandbox.client("cloudformation")
    for (downstream, parameter), (upstream, output) in templates.WIRING.items():
        if downstream not in LAYERS:
            continue
        stack = cf.describe_stacks(StackName=templates.stack_name(ENV, downstream))["Stacks"][0]
        given = {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}
        if VALUES["DeploymentStrategy"] == "ROLLING" and output in ("ProductionListenerRuleArn", "TestListenerRuleArn"):
            # The alb layer has no listener rules to give a rolling service: the parameter's default.
            assert output not in outputs(sandbox, upstream)
            assert given[parameter] == "", (downstream, parameter)
            continue
        assert given[parameter] == outputs(sandbox, upstream)[output], (downstream, parameter)


def test_resources_have_the_plans_values(sandbox, every_layer_deployed):
    elbv2, alb = sandbox.client("elbv2"), outputs(sandbox, "alb")
    listeners = {listener["Port"]: listener for listener in elbv2.describe_listeners(LoadBalancerArn=alb["LoadBalancerArn"])["Listeners"]}
    assert listeners[443]["Protocol"] == "HTTPS" and listeners[443]["SslPolicy"] == VALUES["TlsPolicy"]
    certificate_arn = outputs(sandbox, "cert-dns")["CertificateArn"]
    assert listeners[443]["Certificates"][0]["CertificateArn"] == certificate_arn
    redirect = listeners[80]["DefaultActions"][0]
    assert redirect["RedirectConfig"]["StatusCode"] == "HTTP_301" and redirect["RedirectConfig"]["Protocol"] == "HTTPS"

    (tg,) = elbv2.describe_target_groups(TargetGroupArns=[alb["TargetGroupArn"]])["TargetGroups"]
    assert (tg["TargetGroupName"], tg["Port"], tg["TargetType"]) == (f"{PREFIX}-tg", PORT, "ip")
    health = (VALUES["HealthCheckPath"], int(VALUES["HealthCheckIntervalSeconds"]), "200")
    assert (tg["HealthCheckPath"], tg["HealthCheckIntervalSeconds"], tg["Matcher"]["HttpCode"]) == health

    certificate = sandbox.client("acm").describe_certificate(CertificateArn=certificate_arn)["Certificate"]
    assert certificate["DomainName"] == f"*.{DOMAIN}"
    assert DOMAIN in certificate["SubjectAlternativeNames"]

    zone = outputs(sandbox, "cert-dns")["HostedZoneId"]
    records = sandbox.client("route53").list_resource_record_sets(HostedZoneId=zone)["ResourceRecordSets"]
    alias = next(r for r in records if r["Name"] == HOST + "." and r["Type"] == "A")
    assert alias["AliasTarget"]["DNSName"].rstrip(".") == alb["LoadBalancerDnsName"]

    svc = outputs(sandbox, "service")
    (service,) = sandbox.client("ecs").describe_services(cluster=svc["ClusterName"], services=[svc["ServiceName"]])["services"]
    assert (service["serviceName"], service["desiredCount"], service["launchType"]) == (
        f"{PREFIX}-service",
        int(VALUES["DesiredCount"]),
        "FARGATE",
    )
    assert service["loadBalancers"][0]["containerPort"] == PORT
    assert service["loadBalancers"][0]["targetGroupArn"] == alb["TargetGroupArn"]
    assert service["deploymentConfiguration"]["deploymentCircuitBreaker"] == {"enable": True, "rollback": True}
    assert service["networkConfiguration"]["awsvpcConfiguration"]["assignPublicIp"] == "DISABLED"

    scaling = sandbox.client("application-autoscaling")
    (target,) = scaling.describe_scalable_targets(ServiceNamespace="ecs")["ScalableTargets"]
    assert target["ResourceId"] == f"service/{svc['ClusterName']}/{svc['ServiceName']}"
    assert (target["MinCapacity"], target["MaxCapacity"]) == (int(VALUES["MinCapacity"]), int(VALUES["MaxCapacity"]))
    policies = scaling.describe_scaling_policies(ServiceNamespace="ecs")["ScalingPolicies"]
    targets = {
        p["TargetTrackingScalingPolicyConfiguration"]["PredefinedMetricSpecification"]["PredefinedMetricType"]: p[
            "TargetTrackingScalingPolicyConfiguration"
        ]["TargetValue"]
        for p in policies
    }
    assert targets == {
        "ECSServiceAverageCPUUtilization": float(VALUES["CpuTargetPercent"]),
        "ECSServiceAverageMemoryUtilization": float(VALUES["MemoryTargetPercent"]),
    }


def test_alarms_notify_the_topic_and_guard_the_service_deployment(sandbox, every_layer_deployed):
    release, service, alb = outputs(sandbox, "release-alarms"), outputs(sandbox, "service"), outputs(sandbox, "alb")
    found = {a["AlarmName"]: a for a in sandbox.client("cloudwatch").describe_alarms(AlarmNamePrefix=PREFIX)["MetricAlarms"]}
    on_balancer = [{"Name": "LoadBalancer", "Value": alb["LoadBalancerFullName"]}]
    on_group = [*on_balancer, {"Name": "TargetGroup", "Value": alb["TargetGroupFullName"]}]
    on_alternate = [*on_balancer, {"Name": "TargetGroup", "Value": alb["AlternateTargetGroupFullName"]}]
    # Dimensions of the load balancer alone cover both target groups: after a blue/green release the
    # tasks serve from either.
    expected = {  # the plan's alarms: metric, statistic, comparison, threshold, dimensions
        "target-5xx": (
            "HTTPCode_Target_5XX_Count",
            "Sum",
            "GreaterThanOrEqualToThreshold",
            float(VALUES["Target5xxThreshold"]),
            on_balancer,
        ),
        "alb-5xx": ("HTTPCode_ELB_5XX_Count", "Sum", "GreaterThanOrEqualToThreshold", float(VALUES["Elb5xxThreshold"]), on_balancer),
        "slow-responses": ("TargetResponseTime", "p99", "GreaterThanThreshold", float(VALUES["ResponseTimeP99Seconds"]), on_balancer),
    }
    per_target_group = {  # metric-math sums over both target groups: metric, statistic, comparison
        "unhealthy-hosts": ("UnHealthyHostCount", "Maximum", "GreaterThanOrEqualToThreshold"),
        "no-healthy-host": ("HealthyHostCount", "Minimum", "LessThanThreshold"),
    }
    math = {  # metric-math alarms over the service: the metrics they read
        "cpu-saturated": ["CPUUtilization", "RunningTaskCount"],
        "memory-saturated": ["MemoryUtilization", "RunningTaskCount"],
        "tasks-below-desired": ["DesiredTaskCount", "RunningTaskCount"],
    }
    assert sorted(found) == sorted(f"{PREFIX}-{name}" for name in [*expected, *per_target_group, *math])
    for name, (metric, statistic, comparison) in per_target_group.items():
        alarm = found[f"{PREFIX}-{name}"]
        queries = [q for q in alarm["Metrics"] if "MetricStat" in q]
        read = [
            (q["MetricStat"]["Metric"]["MetricName"], q["MetricStat"]["Stat"], q["MetricStat"]["Metric"]["Dimensions"]) for q in queries
        ]
        # Both target groups when releases shift traffic; the primary alone where they roll (the sandbox).
        watched = [on_group, on_alternate] if VALUES["DeploymentStrategy"] != "ROLLING" else [on_group]
        assert read == [(metric, statistic, dimensions) for dimensions in watched], name
        assert (alarm["ComparisonOperator"], alarm["Threshold"]) == (comparison, 1.0), name
    for name, (metric, statistic, comparison, threshold, dimensions) in expected.items():
        alarm = found[f"{PREFIX}-{name}"]
        assert (alarm["MetricName"], alarm.get("Statistic") or alarm["ExtendedStatistic"]) == (metric, statistic), name
        assert (alarm["ComparisonOperator"], alarm["Threshold"], alarm["Dimensions"]) == (comparison, threshold, dimensions), name
        periods = (int(VALUES["AlarmPeriodSeconds"]), int(VALUES["BadPeriodsToAlarm"]), int(VALUES["BadPeriodsToAlarm"]))
        assert (alarm["Period"], alarm["EvaluationPeriods"], alarm["DatapointsToAlarm"]) == periods, name
    on_service = [{"Name": "ClusterName", "Value": service["ClusterName"]}, {"Name": "ServiceName", "Value": service["ServiceName"]}]
    for name, metrics in math.items():
        queries = found[f"{PREFIX}-{name}"]["Metrics"]
        assert [q["MetricStat"]["Metric"]["MetricName"] for q in queries if "MetricStat" in q] == metrics, name
        assert all(q["MetricStat"]["Metric"]["Dimensions"] == on_service for q in queries if "MetricStat" in q), name
    assert f"IF(usage > {VALUES['SaturationPercent']} AND tasks >= {VALUES['MaxCapacity']}, 1, 0)" in [
        q.get("Expression") for q in found[f"{PREFIX}-cpu-saturated"]["Metrics"]
    ]

    topic = release["AlertTopicArn"]
    assert all(a["AlarmActions"] == a["OKActions"] == [topic] for a in found.values())
    sns = sandbox.client("sns")
    key = sns.get_topic_attributes(TopicArn=topic)["Attributes"]["KmsMasterKeyId"]
    assert sandbox.client("kms").describe_key(KeyId=key)["KeyMetadata"]["KeyState"] == "Enabled"
    endpoints = [(s["Protocol"], s["Endpoint"]) for s in sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]]
    assert endpoints == [("email", address) for address in VALUES["AlertEmails"].split(",") if address]

    names = [f"{PREFIX}-target-5xx", f"{PREFIX}-unhealthy-hosts"]
    (ecs,) = sandbox.client("ecs").describe_services(cluster=service["ClusterName"], services=[service["ServiceName"]])["services"]
    assert ecs["deploymentConfiguration"]["alarms"] == {"alarmNames": names, "enable": True, "rollback": True}
    stack = sandbox.client("cloudformation").describe_stacks(StackName=templates.stack_name(ENV, "service"))["Stacks"][0]
    assert stack["RollbackConfiguration"] == {
        "RollbackTriggers": [{"Arn": found[name]["AlarmArn"], "Type": "AWS::CloudWatch::Alarm"} for name in names],
        "MonitoringTimeInMinutes": int(VALUES["RollbackMonitoringMinutes"]),
    }


@pytest.mark.skipif(not ENVIRONMENT.deploys("waf"), reason="params/sandbox.yaml does not enable the waf layer")
def test_web_acl_guards_the_load_balancer_and_logs_to_waf_log_group(sandbox, every_layer_deployed):
    wafv2, waf = sandbox.client("wafv2"), outputs(sandbox, "waf")
    acl = wafv2.get_web_acl_for_resource(ResourceArn=outputs(sandbox, "alb")["LoadBalancerArn"])["WebACL"]
    assert (acl["Name"], acl["ARN"], acl["DefaultAction"]) == (f"{PREFIX}-web-acl", waf["WebAclArn"], {"Allow": {}})
    counting = VALUES["WafCountOnly"] == "true"  # the rules count what they would block, or block it
    rule, group = ({"Count": {}}, {"Count": {}}) if counting else ({"Block": {}}, {"None": {}})
    assert [(r["Name"], r["Priority"], r.get("Action") or r.get("OverrideAction")) for r in acl["Rules"]] == [
        ("RateLimitPerIp", 0, rule),
        ("AWSManagedRulesAmazonIpReputationList", 1, group),
        ("AWSManagedRulesCommonRuleSet", 2, group),
        ("AWSManagedRulesKnownBadInputsRuleSet", 3, {"None": {}}),  # blocks in either mode
        ("AWSManagedRulesSQLiRuleSet", 4, group),
    ]
    assert acl["Rules"][0]["Statement"] == {"RateBasedStatement": {"Limit": int(VALUES["WafRateLimit"]), "AggregateKeyType": "IP"}}
    assert all(r["VisibilityConfig"]["CloudWatchMetricsEnabled"] for r in acl["Rules"])
    logging = wafv2.get_logging_configuration(ResourceArn=acl["ARN"])["LoggingConfiguration"]
    log_group = f"aws-waf-logs-{PREFIX}"
    assert waf["WafLogGroupName"] == log_group
    account = sandbox.client("sts").get_caller_identity()["Account"]
    assert logging["LogDestinationConfigs"] == [f"arn:aws:logs:{ENVIRONMENT.region}:{account}:log-group:{log_group}"]
    groups = sandbox.client("logs").describe_log_groups(logGroupNamePrefix=log_group)["logGroups"]
    assert [(g["logGroupName"], g["retentionInDays"]) for g in groups] == [(log_group, int(parameters(ENV, "waf")["LogRetentionDays"]))]


def test_stacks_are_protected_and_the_service_leaves_its_count_to_auto_scaling(sandbox, every_layer_deployed):
    for layer in LAYERS:
        stack = sandbox.client("cloudformation").describe_stacks(StackName=templates.stack_name(ENV, layer))["Stacks"][0]
        assert stack["EnableTerminationProtection"] is True
        if layer == "service":
            assert {"ParameterKey": "KeepRunningCount", "ParameterValue": "true"} in stack["Parameters"]


def test_second_deploy_executes_nothing(sandbox, run, every_layer_deployed):
    code, out, err = run("deploy", "--yes")
    assert code == 0, out + err
    assert "change set" not in out and "UPDATE_COMPLETE" not in out
    assert [line for line in out.splitlines() if line.endswith(": no changes")] == [
        f"{templates.stack_name(ENV, layer)}: no changes" for layer in LAYERS
    ]
    calls = deploy.parse_api_calls(err)
    # take the environment's lock, read the relaxed-policy mark, read the lock back and free it: once a run
    assert calls.pop(NO_STACK) == 4, err
    # ... and each optional layer params/sandbox.yaml does not enable is looked for once (left deployed, it is said)
    looked_for = {templates.stack_name(ENV, layer) for layer in templates.OPTIONAL_LAYERS if layer not in LAYERS}
    assert {stack: n for stack, n in calls.items() if stack in looked_for} == dict.fromkeys(looked_for, 1), err
    assert {n for stack, n in calls.items() if stack not in looked_for} == {4}, err
    assert out.splitlines()[-1].endswith(": " + ", ".join(f"{layer} (no changes)" for layer in LAYERS))


def test_recreate_given_to_a_run_where_no_stack_failed_its_first_create_says_it_recreated_nothing(run, every_layer_deployed):
    code, out, err = run("deploy", "--yes", "--recreate")
    assert code == 0, out + err
    lines = out.splitlines()
    assert lines[-2] == "note: RECREATE=1 recreated nothing: no stack of the run was a failed first create (ROLLBACK_COMPLETE)", out
    assert lines[-1].endswith(": " + ", ".join(f"{layer} (no changes)" for layer in LAYERS)), out


def test_auto_scaled_count_survives_a_service_update(sandbox, run, every_layer_deployed):
    svc, ecs = outputs(sandbox, "service"), sandbox.client("ecs")
    ecs.update_service(cluster=svc["ClusterName"], service=svc["ServiceName"], desiredCount=2)  # as auto-scaling would
    try:
        code, out, err = run("deploy", "--stack", "service", "--image-tag", "v2", "--yes")
        assert code == 0, out + err
        assert "UPDATE_COMPLETE" in out and "TaskDefinition" in out
        (service,) = ecs.describe_services(cluster=svc["ClusterName"], services=[svc["ServiceName"]])["services"]
        assert service["desiredCount"] == 2
        definition = ecs.describe_task_definition(taskDefinition=service["taskDefinition"])["taskDefinition"]
        assert definition["containerDefinitions"][0]["image"].endswith(f"/{VALUES['EcrRepositoryName']}:v2")
    finally:  # the count the params file asks for, for the tests that follow
        ecs.update_service(cluster=svc["ClusterName"], service=svc["ServiceName"], desiredCount=int(VALUES["DesiredCount"]))


def running_image(sandbox):
    svc = outputs(sandbox, "service")
    ecs = sandbox.client("ecs")
    (service,) = ecs.describe_services(cluster=svc["ClusterName"], services=[svc["ServiceName"]])["services"]
    return ecs.describe_task_definition(taskDefinition=service["taskDefinition"])["taskDefinition"]["containerDefinitions"][0]["image"]


def release(run, tag):
    code, out, err = run("deploy", "--stack", "service", "--image-tag", tag, "--yes")
    assert code == 0, out + err


def test_rollback_puts_the_previous_image_back(sandbox, run, every_layer_deployed):
    ssm = sandbox.client("ssm")
    before = len(json.loads(ssm.get_parameter(Name=f"/{templates.PROJECT}/{ENV}/service/releases")["Parameter"]["Value"]))
    release(run, "blue")
    release(run, "green")
    code, out, err = run("rollback", "--stack", "service", "--yes")
    assert code == 0, out + err
    assert f"rolling back {templates.stack_name(ENV, 'service')} from green to blue" in out
    assert "UPDATE_COMPLETE" in out
    assert running_image(sandbox).endswith(":blue")
    releases = json.loads(ssm.get_parameter(Name=f"/{templates.PROJECT}/{ENV}/service/releases")["Parameter"]["Value"])
    assert [r["image_tag"] for r in releases[before:]] == ["blue", "green", "blue"]  # exactly these, in order
    assert [r["replaced"] for r in releases[before + 1 :]] == ["blue", "green"]  # each names the image that ran before it
    assert all(r["by"].startswith("arn:aws:") and r["revision"] and r["time"].endswith("Z") for r in releases)


def test_rollback_to_a_named_tag(sandbox, run, every_layer_deployed):
    release(run, "amber")
    release(run, "teal")
    code, out, err = run("rollback", "--stack", "service", "--image-tag", "amber", "--yes")
    assert code == 0, out + err
    assert running_image(sandbox).endswith(":amber")
    # make diff: nothing to deploy, as a deploy keeps the running image, which it names beside params' own
    code, out, err = run("diff", "--stack", "service")
    configured = ENVIRONMENT.values["ImageTag"]
    said = (
        f"  image amber runs: ImageTag {configured} of params/{ENV}.yaml counts only for a first create (a deploy keeps the "
        f"running image; make deploy STACK=service ENV={ENV} TAG=<tag> releases another)"
    )
    assert code == 0 and out.splitlines()[-1] == (
        said if configured != "amber" else f"{templates.stack_name(ENV, 'service')}: same as deployed"
    ), out + err


@pytest.mark.parametrize("made_at, executed_at", [("abc1234-dirty", "abc1234"), ("abc1234", "abc1234-dirty")])
def test_a_release_make_execute_runs_records_the_revision_its_change_set_was_made_at(
    sandbox, run, every_layer_deployed, monkeypatch, made_at, executed_at
):
    """README, Operating, make rollback: each release records its "git revision (with `-dirty` when the
    files in `output/` are not the commit's, as in the change-set names)". A change set made from an
    uncommitted output/ (its name ends -dirty) and executed once output/ is the commit's again deploys
    the uncommitted values all the same (make execute warns "executing it deploys its values"): its
    release must not be recorded as the clean commit, nor a clean change set's as -dirty."""
    monkeypatch.setattr(deploy.deployer, "git_revision", lambda *args, **kwargs: made_at)
    tag = f"made-at-{made_at}"  # another image for each case: a change set of the running one changes nothing
    code, out, err = run("changeset", "--stack", "service", "--image-tag", tag)
    assert code == 0, out + err
    name = re.search(r"CHANGESET=(\S+)", out + err).group(1)
    assert name.endswith(f"-{made_at}"), name
    monkeypatch.setattr(deploy.deployer, "git_revision", lambda *args, **kwargs: executed_at)
    code, out, err = run("execute", "--changeset", name, "--yes")
    assert code == 0, out + err
    ssm = sandbox.client("ssm")
    releases = json.loads(ssm.get_parameter(Name=f"/{templates.PROJECT}/{ENV}/service/releases")["Parameter"]["Value"])
    assert releases[-1]["image_tag"] == tag
    assert releases[-1]["revision"] == made_at, (name, releases[-1])


def test_make_execute_of_a_rollback_change_set_an_older_deployer_named_records_the_revision_its_name_gives(
    sandbox, run, every_layer_deployed
):
    """The upgrade path: a deployer before 27e008b named its change sets <stack>-<UTC time to the second>-<revision>
    (14 digits). Its make rollback, stopped at the question, left one for review; make execute of the current tree
    runs it (a rollback's change set is compared with the template the stack runs) and records the rollback, which
    must carry the revision the name gives, not "unknown" as for a change set named by hand."""
    cloudformation = sandbox.client("cloudformation")
    stack = templates.stack_name(ENV, "service")
    found = cloudformation.describe_stacks(StackName=stack)["Stacks"][0]
    running = next(p["ParameterValue"] for p in found["Parameters"] if p["ParameterKey"] == "ImageTag")
    given = [
        {"ParameterKey": p["ParameterKey"], "ParameterValue": "older-image" if p["ParameterKey"] == "ImageTag" else p["ParameterValue"]}
        for p in found["Parameters"]
    ]
    name = f"{stack}-20261204120000-18d684f"  # as 18d684f's make rollback named it
    cloudformation.create_change_set(
        StackName=stack,
        ChangeSetName=name,
        ChangeSetType="UPDATE",
        UsePreviousTemplate=True,
        Parameters=given,
        Tags=found["Tags"],
        Capabilities=["CAPABILITY_NAMED_IAM"],
        Description=f"service layer of {ENV}, by scripts/deploy; a rollback from image {running}",
    )
    code, out, err = run("execute", "--changeset", name, "--yes")
    assert code == 0, out + err
    assert "is a rollback from" in out + err, out + err
    ssm = sandbox.client("ssm")
    releases = json.loads(ssm.get_parameter(Name=f"/{templates.PROJECT}/{ENV}/service/releases")["Parameter"]["Value"])
    assert releases[-1]["image_tag"] == "older-image", releases[-1]
    assert releases[-1].get("rolled_back_from") == running, releases[-1]
    assert releases[-1]["revision"] == "18d684f", (name, releases[-1])


def set_image_tag(sandbox, value):
    """The service stack's ImageTag set by hand (the stack's own template: moto checks no AllowedPattern)."""
    cloudformation = sandbox.client("cloudformation")
    stack = templates.stack_name(ENV, "service")
    found = cloudformation.describe_stacks(StackName=stack)["Stacks"][0]
    given = [
        {"ParameterKey": p["ParameterKey"], "ParameterValue": value}
        if p["ParameterKey"] == "ImageTag"
        else {"ParameterKey": p["ParameterKey"], "UsePreviousValue": True}
        for p in found["Parameters"]
    ]
    cloudformation.update_stack(
        StackName=stack, UsePreviousTemplate=True, Parameters=given, Tags=found["Tags"], Capabilities=["CAPABILITY_NAMED_IAM"]
    )


def test_a_running_image_tag_of_anyones_writing_is_printed_escaped(sandbox, run, every_layer_deployed):
    # The stack's ImageTag is whoever may update the stack's to write: make diff split it over lines, raw.
    found = sandbox.client("cloudformation").describe_stacks(StackName=templates.stack_name(ENV, "service"))["Stacks"][0]
    running = next(p["ParameterValue"] for p in found["Parameters"] if p["ParameterKey"] == "ImageTag")
    set_image_tag(sandbox, "a\r\u202e\u3164\x9b2J\u2028x\ny")
    try:
        code, out, err = run("diff", "--stack", "service")
        assert code == 0, out + err  # the running image is kept: nothing else differs
        # (the sandbox's XML answers turn the \r into \n)
        assert "\\u202e\\u3164\\x9b2J\\u2028x\\ny runs: " in out, out + err
        assert not re.search("[\r\u202e\u3164\x9b\u2028]", out), ascii(out)
    finally:
        set_image_tag(sandbox, running)


def verify_lines(out):
    """check name -> (state: ok, FAIL or skip; detail), from verify's one line per check."""
    return {line[6:34].strip(): (line[:4].strip(), line[35:]) for line in out.splitlines() if line.startswith(("ok  ", "FAIL", "skip"))}


def test_verify_on_the_sandbox_runs_what_the_emulator_can_pass_and_names_what_it_skips(run, every_layer_deployed):
    """The emulator runs no containers: verify checks what it can show, says which checks it skips
    and why, and answers at once under the default timeout (600 s) instead of retrying until it."""
    started = time.monotonic()
    code, out, err = run("verify", "--stack", "service")
    elapsed = time.monotonic() - started
    assert code == 0, out + err
    assert out.splitlines()[0] == f"verifying https://{HOST} (sandbox), for up to 600 s"
    assert elapsed < 30, f"verify took {elapsed:.0f} s on the sandbox"
    assert "attempt" not in out, out
    checks = verify_lines(out)
    smoke = {f"smoke {s['path']}": "skip" for s in ENVIRONMENT.smoke_checks}
    assert {name: state for name, (state, _) in checks.items()} == {
        "ecs service": "ok",
        "ecs rollout": "skip",
        "targets healthy": "skip",
        "http redirects to https": "skip",
        "certificate valid for host": "skip",
        HEALTH: "skip",
        **smoke,
    }, out
    assert "runs no" in checks["ecs rollout"][1] and "runs no" in checks["targets healthy"][1]
    assert all("CONNECT_TO" in detail for state, detail in checks.values() if state == "skip" and "runs no" not in detail), out
    assert out.splitlines()[-1] == f"1 passed, 0 failed, {5 + len(smoke)} skipped"
    # A check the emulator can run still fails, at once: HTTPS mapped to a port where nothing listens
    # (port 80 is not mapped, so the redirect is skipped: the public host is never called).
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        code, out, err = run("verify", "--connect-to", f"{HOST}:443:127.0.0.1:{closed.getsockname()[1]}", "--timeout", "0")
    checks = verify_lines(out)
    assert code == 1, out + err
    assert [name for name, (state, _) in checks.items() if state == "FAIL"] == ["certificate valid for host", HEALTH, *smoke], out
    assert "ConnectionRefusedError" in checks[HEALTH][1]
    assert checks["http redirects to https"][0] == "skip" and f"{HOST}:80" in checks["http redirects to https"][1]
    assert out.splitlines()[-1] == f"1 passed, {2 + len(smoke)} failed, 3 skipped"
    # A typo in the host or the HTTPS port: the certificate, /health and smoke checks skipped as not mapped, and the run passed.
    for typo in (f"{HOST}x:443", f"{HOST}:433"):
        code, out, err = run("verify", "--connect-to", f"{HOST}:80:127.0.0.1:9", "--connect-to", f"{typo}:127.0.0.1:9", "--timeout", "0")
        assert code == 2 and err.startswith("error: CONNECT_TO (--connect-to) maps ") and typo in err, out + err
        assert f"not {HOST}:443, the site verified: with it given, only the host:ports it maps are requested" in err, out + err
        assert "verifying" not in out, out  # a refusal is not said to verify anything, "for up to 0 s" (README audit, C2)


def test_verify_through_the_test_listener_is_refused_where_releases_roll(run, every_layer_deployed):
    code, out, err = run("verify", "--test-listener")
    if VALUES["DeploymentStrategy"] != "ROLLING":  # switched as the README says: the test listener is there,
        # and every check through it needs a server the emulator does not run
        assert out.startswith("verifying the test listener") and "has no test listener" not in err, out + err
        assert code == 1 and "nothing was checked" in out, out + err
        return
    # The sandbox rolls like staging; prod's test listener: tests/test_verify.py
    assert code == 2, out + err
    assert (
        f"{templates.stack_name(ENV, 'alb')} has no test listener: {ENV} releases ROLLING (params/{ENV}.yaml: parameters.DeploymentStrategy)"
        in err
    )
    assert "Traceback" not in err


def test_diff_is_clean_after_deploy(run, every_layer_deployed):
    code, out, err = run("diff", "--stack", "alb")
    assert code == 0, out + err


def test_status_names_the_image_the_service_runs(sandbox, run, every_layer_deployed):
    # "how do I see what runs": make status showed no image; only make diff named one.
    stack = templates.stack_name(ENV, "service")
    found = sandbox.client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]
    running = next(p["ParameterValue"] for p in found["Parameters"] if p["ParameterKey"] == "ImageTag")
    code, out, err = run("status")
    (line,) = [line for line in out.splitlines() if line.startswith(stack + " ")]
    assert code == 0 and f"  image {running}" in line, out + err
    assert not any("  image " in other for other in out.splitlines() if other != line), out


def test_a_diff_against_another_image_names_the_deploy_with_that_tag(run, every_layer_deployed):
    # "(make deploy applies it)": a deploy without TAG= keeps the running image, and would change nothing.
    running = parameters(ENV, "service")["ImageTag"]
    code, out, err = run("diff", "--stack", "service", "--image-tag", running + "-next")
    assert code == 1, out + err
    assert (
        out.splitlines()[-1] == f"differs from what {ENV} runs: service (make deploy STACK=service ENV={ENV} TAG={running}-next applies it)"
    ), out


def test_destroy_is_refused_while_consumed(run, every_layer_deployed):
    code, out, err = run("destroy", "--stack", "alb", "--yes")
    assert code == 1
    consumers = sorted(templates.stack_name(ENV, layer) for layer in templates.downstream_of("alb") if layer in LAYERS)
    # every layer that reads alb's outputs, directly or through another (scaling reads only service's), readers first
    assert (
        f"{', '.join(consumers)} still use its outputs; destroy those first: make destroy ENV={ENV} STACK=<layer> for "
        "alarms, scaling, service, release-alarms, waf, in that order (one not deployed says so), then STACK=alb\n" in err
    ), err


def test_destroy_everything_in_reverse_order(sandbox, run, every_layer_deployed):
    code, out, err = run("destroy", "--yes")
    assert code == 0, out + err
    deleted = [line.split(":")[0] for line in out.splitlines() if line.endswith(": deleted")]
    assert deleted == [templates.stack_name(ENV, layer) for layer in reversed(LAYERS)]
    not_enabled = [layer for layer in templates.layer_order() if layer not in LAYERS]  # nor deployed: not worth a line
    assert not any(templates.stack_name(ENV, layer) in out for layer in not_enabled), out
    assert "retained, not deleted with the stack: Certificate" in out
    code, out, _ = run("status")
    header, *lines = out.splitlines()
    assert header.startswith("STACK") and lines and all(line.endswith("not deployed") for line in lines)
    # A layer taken out of enabled_layers while it was deployed is destroyed with the others.
    for layer in not_enabled[:1]:
        body = {"Resources": {"Handle": {"Type": "AWS::CloudFormation::WaitConditionHandle"}}}
        tags = [{"Key": k, "Value": v} for k, v in templates.own_tags(ENV, layer).items()]  # as a deploy of it made it
        sandbox.client("cloudformation").create_stack(StackName=templates.stack_name(ENV, layer), TemplateBody=json.dumps(body), Tags=tags)
        code, out, err = run("status")
        (line,) = [line for line in out.splitlines() if line.startswith(templates.stack_name(ENV, layer))]
        assert code == 0 and f"make destroy STACK={layer} ENV={ENV} removes it" in line, out + err
        if layer in SANDBOX_CANNOT_REHEARSE:  # made before the sandbox refused the layer: it cannot go the usual way
            assert "make sandbox-stop && make sandbox starts the sandbox empty" in line, line
        else:
            assert f"(not in enabled_layers of params/{ENV}.yaml" in line, line
        code, out, err = run("destroy", "--yes")
        assert code == 0 and [line for line in out.splitlines() if line.endswith(": deleted")] == [
            f"{templates.stack_name(ENV, layer)}: deleted"
        ], out + err
