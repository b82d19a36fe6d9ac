"""The sandbox and scripts/moto_compat.py, against a sandbox server this module starts on a free
port and stops at the end: the seed is reproducible, every emulator gap the compatibility module
closes is shown (each test fails without its patch), and a full deploy of every layer the sandbox
environment deploys, through change sets with wired outputs, is checked through the services' own APIs."""

import itertools
import json
import os
from pathlib import Path

import pytest
import yaml
from botocore.exceptions import ClientError
from conftest import ROOT

import templates
from scripts.sandbox import PARAMS_FILE, Sandbox
from templates import params

LAYERS = params.load(PARAMS_FILE).layers
DOMAIN = "startupwebapp.com"
PREFIX = "startupwebapp-sandbox"
ACCOUNT_REGION = "us-east-1:123456789012"
# What the alb and release-alarms layers would give the layers downstream, for tests of one layer.
LOAD_BALANCER_ARN = f"arn:aws:elasticloadbalancing:{ACCOUNT_REGION}:loadbalancer/app/{PREFIX}-alb/0123456789abcdef"
TARGET_GROUP_ARN = f"arn:aws:elasticloadbalancing:{ACCOUNT_REGION}:targetgroup/{PREFIX}-tg/0123456789abcdef"
BALANCER_NAMES = {
    "LoadBalancerFullName": f"app/{PREFIX}-alb/0123456789abcdef",
    "TargetGroupFullName": f"targetgroup/{PREFIX}-tg/0123456789abcdef",
}
SERVICE_WIRED = {"TargetGroupArn": TARGET_GROUP_ARN, "DeploymentAlarmNames": f"{PREFIX}-target-5xx,{PREFIX}-unhealthy-hosts"}
WAF_RULES = [  # name, priority, action or override action when blocking (WafCountOnly false)
    ("RateLimitPerIp", 0, {"Block": {}}),
    ("AWSManagedRulesAmazonIpReputationList", 1, {"None": {}}),
    ("AWSManagedRulesCommonRuleSet", 2, {"None": {}}),
    ("AWSManagedRulesKnownBadInputsRuleSet", 3, {"None": {}}),
    ("AWSManagedRulesSQLiRuleSet", 4, {"None": {}}),
]
NO_CHANGES = "The submitted information didn't contain changes. Submit different information to create a change set."
_names = itertools.count(1)


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    box = Sandbox(tmp_path_factory.mktemp("sandbox")).start(exit_with_parent=True)
    try:
        yield box
    finally:
        box.stop()


class Aws:
    """boto3 clients on the sandbox: aws.cloudformation, aws.application_autoscaling, ..."""

    def __init__(self, sandbox):
        self._sandbox = sandbox

    def __getattr__(self, name):
        client = self._sandbox.client(name.replace("_", "-"))
        setattr(self, name, client)
        return client


@pytest.fixture
def aws(sandbox):
    """The sandbox emptied and seeded again: every test starts from the Phase 5.14 account."""
    sandbox.seed()
    return Aws(sandbox)


def config(layer: str, **overrides) -> dict:
    parameters = json.loads((ROOT / "output" / "sandbox" / f"{layer}.json").read_text())["Parameters"]
    return parameters | {name: str(value) for name, value in overrides.items()}


def body(layer: str) -> str:
    return (ROOT / "output" / f"{layer}.json").read_text()


def change_set(aws, stack: str, template: str, parameters: dict, **extra) -> dict:
    """Create a change set (CREATE or UPDATE as the stack requires) and describe it."""
    try:
        aws.cloudformation.describe_stacks(StackName=stack)
        kind = "UPDATE"
    except ClientError:
        kind = "CREATE"
    name = f"{stack}-cs-{next(_names)}"
    aws.cloudformation.create_change_set(
        StackName=stack,
        ChangeSetName=name,
        ChangeSetType=kind,
        TemplateBody=template,
        Parameters=[{"ParameterKey": key, "ParameterValue": value} for key, value in parameters.items()],
        Capabilities=["CAPABILITY_IAM"],
        **extra,
    )
    return aws.cloudformation.describe_change_set(StackName=stack, ChangeSetName=name)


def changes(description: dict) -> list:
    return [(c["ResourceChange"]["Action"], c["ResourceChange"]["LogicalResourceId"]) for c in description["Changes"]]


def execute(aws, description: dict) -> dict:
    """Execute a change set; return the stack's outputs."""
    assert description["Status"] == "CREATE_COMPLETE", description.get("StatusReason")
    aws.cloudformation.execute_change_set(ChangeSetName=description["ChangeSetId"])
    stack = aws.cloudformation.describe_stacks(StackName=description["StackName"])["Stacks"][0]
    assert stack["StackStatus"] in ("CREATE_COMPLETE", "UPDATE_COMPLETE")
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def deploy(aws, stack: str, template: str, parameters: dict, **extra) -> dict:
    return execute(aws, change_set(aws, stack, template, parameters, **extra))


def wired(layer: str, outputs: dict) -> dict:
    """The parameters of `layer` that upstream outputs give, as the deployer passes them."""
    return {parameter: outputs[up][output] for (down, parameter), (up, output) in templates.WIRING.items() if down == layer}


def rollback_configuration(layer: str, outputs: dict) -> dict:
    """The RollbackConfiguration the deployer passes for `layer` ({} when it has no triggers)."""
    if layer not in templates.ROLLBACK_TRIGGERS:
        return {}
    upstream, arns, minutes = templates.ROLLBACK_TRIGGERS[layer]
    triggers = [{"Arn": arn, "Type": "AWS::CloudWatch::Alarm"} for arn in outputs[upstream][arns].split(",")]
    return {"RollbackConfiguration": {"RollbackTriggers": triggers, "MonitoringTimeInMinutes": int(outputs[upstream][minutes])}}


def alarms(aws) -> dict:
    """Our CloudWatch alarms by name (not the ones Application Auto Scaling makes for its policies)."""
    return {a["AlarmName"]: a for a in aws.cloudwatch.describe_alarms(AlarmNamePrefix=PREFIX)["MetricAlarms"]}


def subscriptions(aws, topic_arn: str) -> list:
    return sorted((s["Protocol"], s["Endpoint"]) for s in aws.sns.list_subscriptions_by_topic(TopicArn=topic_arn)["Subscriptions"])


def physical_id(aws, stack: str, logical_id: str) -> str:
    return aws.cloudformation.describe_stack_resource(StackName=stack, LogicalResourceId=logical_id)["StackResourceDetail"][
        "PhysicalResourceId"
    ]


def certificate_and_zone(aws) -> dict:
    """What cert-dns would give the alb layer, made through the ACM and Route 53 APIs."""
    arn = aws.acm.request_certificate(DomainName=f"*.{DOMAIN}", SubjectAlternativeNames=[DOMAIN], ValidationMethod="DNS")["CertificateArn"]
    zone = aws.route53.create_hosted_zone(Name=DOMAIN, CallerReference="test")["HostedZone"]["Id"].split("/")[-1]
    return {"CertificateArn": arn, "HostedZoneId": zone}


def ssm_template(value) -> str:
    """A small template: one SSM parameter whose value is `value`, and an output of it."""
    return json.dumps(
        {
            "Parameters": {
                "Tag": {"Type": "String"},
                "Items": {"Type": "CommaDelimitedList", "Default": "a,b"},
                "Count": {"Type": "Number", "Default": "1"},
            },
            "Resources": {
                "Note": {"Type": "AWS::SSM::Parameter", "Properties": {"Name": "/sandbox/note", "Type": "String", "Value": value}}
            },
            "Outputs": {"Note": {"Value": value}},
        }
    )


# The sandbox itself.


def test_seed_creates_the_ids_that_params_sandbox_yaml_holds(aws, sandbox):
    created = sandbox.seed(check=False)
    assert created == {name: value for name, value in yaml.safe_load(PARAMS_FILE.read_text())["parameters"].items() if name in created}, (
        "the seed is not reproducible"
    )
    subnets = {s["SubnetId"]: s for s in aws.ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [created["VpcId"]]}])["Subnets"]}
    for pair in (created["PublicSubnetIds"], created["PrivateSubnetIds"]):
        assert [subnets[s]["AvailabilityZone"] for s in pair] == ["us-east-1a", "us-east-1b"]
    group = aws.ec2.describe_security_groups(GroupIds=[created["BackendSecurityGroupId"]])["SecurityGroups"][0]
    assert group["VpcId"] == created["VpcId"]
    assert aws.ecs.describe_clusters(clusters=["startupwebapp-cluster"])["clusters"][0]["status"] == "ACTIVE"
    assert aws.ecr.describe_repositories(repositoryNames=["startupwebapp-backend"])["repositories"]
    secret = json.loads(aws.secretsmanager.get_secret_value(SecretId=created["DatabaseSecretArn"])["SecretString"])
    assert set(secret) == {"username", "password", "host", "port"}
    assert config("service")["DatabaseSecretArn"] == created["DatabaseSecretArn"]


def test_sandbox_listens_on_loopback_only_and_stops_its_own_process(tmp_path):
    box = Sandbox(tmp_path).start(exit_with_parent=True)
    try:
        pid, port = box.pid, int(box.endpoint.rsplit(":", 1)[1])
        assert box.endpoint.startswith("http://127.0.0.1:") and box.running()
        listening = [line.split()[1] for line in Path("/proc/net/tcp").read_text().splitlines()[1:] if line.split()[3] == "0A"]
        assert f"0100007F:{port:04X}" in listening and f"00000000:{port:04X}" not in listening
    finally:
        assert box.stop()
    assert not box.running() and not Path(f"/proc/{pid}").exists()
    assert not box.stop(), "a second stop finds nothing to stop"


# One test per gap closed in scripts/moto_compat.py.


def test_outputs_and_parameters_after_create_and_update_change_sets(aws):
    assert deploy(aws, "outputs", ssm_template({"Ref": "Tag"}), {"Tag": "v1"}) == {"Note": "v1"}
    assert deploy(aws, "outputs", ssm_template({"Ref": "Tag"}), {"Tag": "v2"}) == {"Note": "v2"}
    stack = aws.cloudformation.describe_stacks(StackName="outputs")["Stacks"][0]
    assert {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}["Tag"] == "v2"


def test_describe_stacks_shows_parameter_values_as_given(aws):
    deploy(aws, "parameters", ssm_template({"Ref": "Tag"}), {"Tag": "v1", "Items": "subnet-a,subnet-b", "Count": "3"})
    stack = aws.cloudformation.describe_stacks(StackName="parameters")["Stacks"][0]
    assert {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]} == {
        "Tag": "v1",
        "Items": "subnet-a,subnet-b",
        "Count": "3",
    }


def test_stack_resources_are_the_created_ones(aws):
    zone = aws.route53.create_hosted_zone(Name=DOMAIN, CallerReference="existing")["HostedZone"]["Id"].split("/")[-1]
    deploy(aws, "existing-zone", body("cert-dns"), config("cert-dns", ExistingHostedZoneId=zone))  # no HostedZone resource
    resources = aws.cloudformation.describe_stack_resources(StackName="existing-zone")["StackResources"]
    assert [(r.get("LogicalResourceId"), r["ResourceType"]) for r in resources] == [("Certificate", "AWS::CertificateManager::Certificate")]
    summaries = aws.cloudformation.list_stack_resources(StackName="existing-zone")["StackResourceSummaries"]
    assert [r["LogicalResourceId"] for r in summaries] == ["Certificate"]


def test_unchanged_redeploy_is_a_failed_change_set_not_an_error(aws):
    deploy(aws, "unchanged", body("cert-dns"), config("cert-dns"))
    again = change_set(aws, "unchanged", body("cert-dns"), config("cert-dns"))  # moto alone: 400 "No updates are to be performed."
    assert (again["Status"], again["StatusReason"], again["ExecutionStatus"]) == ("FAILED", NO_CHANGES, "UNAVAILABLE")
    assert again["Changes"] == []


def test_parameter_only_change_shows_the_resources_it_modifies(aws):
    deploy(aws, "params", ssm_template({"Ref": "Tag"}), {"Tag": "v1"})
    assert changes(change_set(aws, "params", ssm_template({"Ref": "Tag"}), {"Tag": "v2"})) == [("Modify", "Note")]


def test_parameter_used_only_inside_sub_is_applied(aws):
    template = ssm_template({"Fn::Sub": "image:${Tag}"})
    deploy(aws, "sub", template, {"Tag": "v1"})
    update = change_set(aws, "sub", template, {"Tag": "v2"})
    assert changes(update) == [("Modify", "Note")]
    assert execute(aws, update) == {"Note": "image:v2"}
    assert aws.ssm.get_parameter(Name="/sandbox/note")["Parameter"]["Value"] == "image:v2"


def test_new_task_definition_revision_reaches_the_service(aws):
    first = deploy(aws, "service", body("service"), config("service") | SERVICE_WIRED)
    update = change_set(aws, "service", body("service"), config("service", ImageTag="v2") | SERVICE_WIRED)
    assert changes(update) == [("Modify", "TaskDefinition"), ("Modify", "Service")]  # in dependency order
    outputs = execute(aws, update)
    assert outputs["TaskDefinitionArn"] != first["TaskDefinitionArn"]
    service = aws.ecs.describe_services(cluster=outputs["ClusterName"], services=[outputs["ServiceName"]])["services"][0]
    assert service["taskDefinition"] == outputs["TaskDefinitionArn"]
    image = aws.ecs.describe_task_definition(taskDefinition=service["taskDefinition"])["taskDefinition"]["containerDefinitions"][0]["image"]
    assert image.endswith("/startupwebapp-backend:v2")


def test_dependents_whose_properties_did_not_change_are_left_alone(aws):
    aws.ecs.create_service(cluster="startupwebapp-cluster", serviceName="startupwebapp-sandbox-service", desiredCount=1)
    wired = {"ServiceClusterName": "startupwebapp-cluster", "ServiceName": "startupwebapp-sandbox-service"}
    first = deploy(aws, "scaling", body("scaling"), config("scaling") | wired)
    outputs = deploy(aws, "scaling", body("scaling"), config("scaling", MaxCapacity=3) | wired)
    assert aws.application_autoscaling.describe_scalable_targets(ServiceNamespace="ecs")["ScalableTargets"][0]["MaxCapacity"] == 3
    assert outputs == first, "the policies were recreated although only the target changed"


def test_resource_moto_cannot_update_is_kept(aws):
    # moto has no update for a target group: without the patch the stack loses it (and its outputs).
    wired = certificate_and_zone(aws)
    first = deploy(aws, "alb", body("alb"), config("alb") | wired)
    outputs = deploy(aws, "alb", body("alb"), config("alb", HealthCheckIntervalSeconds=60) | wired)
    assert outputs["TargetGroupArn"] == first["TargetGroupArn"]
    assert [g["TargetGroupArn"] for g in aws.elbv2.describe_target_groups()["TargetGroups"]] == [first["TargetGroupArn"]]


def test_getatt_of_target_group_and_load_balancer(aws):
    outputs = deploy(aws, "alb", body("alb"), config("alb") | certificate_and_zone(aws))
    balancer = aws.elbv2.describe_load_balancers()["LoadBalancers"][0]
    group = aws.elbv2.describe_target_groups()["TargetGroups"][0]
    assert outputs["LoadBalancerFullName"] == balancer["LoadBalancerArn"].split(":loadbalancer/")[1]
    assert outputs["LoadBalancerFullName"].startswith("app/startupwebapp-sandbox-alb/")
    assert outputs["TargetGroupFullName"] == group["TargetGroupArn"].split(":")[-1]
    assert outputs["TargetGroupFullName"].startswith("targetgroup/startupwebapp-sandbox-tg/")
    zone = aws.route53.list_hosted_zones()["HostedZones"][0]["Id"]
    alias = next(r for r in aws.route53.list_resource_record_sets(HostedZoneId=zone)["ResourceRecordSets"] if r["Type"] == "A")
    assert alias["AliasTarget"]["HostedZoneId"] == balancer["CanonicalHostedZoneId"]


def test_ecs_service_and_task_definition_keep_their_properties(aws):
    outputs = deploy(aws, "service", body("service"), config("service") | SERVICE_WIRED)
    service = aws.ecs.describe_services(cluster="startupwebapp-cluster", services=[outputs["ServiceName"]])["services"][0]
    assert service["launchType"] == "FARGATE"
    assert service["loadBalancers"] == [{"targetGroupArn": TARGET_GROUP_ARN, "containerName": "web", "containerPort": 8000}]
    network = service["networkConfiguration"]["awsvpcConfiguration"]
    assert network["subnets"] == config("service")["PrivateSubnetIds"].split(",")
    assert (network["securityGroups"], network["assignPublicIp"]) == ([config("service")["BackendSecurityGroupId"]], "DISABLED")
    assert service["deploymentConfiguration"]["deploymentCircuitBreaker"] == {"enable": True, "rollback": True}
    assert service["deploymentConfiguration"]["alarms"] == {
        "alarmNames": SERVICE_WIRED["DeploymentAlarmNames"].split(","),
        "enable": True,
        "rollback": True,
    }
    assert service["healthCheckGracePeriodSeconds"] == 120
    task = aws.ecs.describe_task_definition(taskDefinition=outputs["TaskDefinitionArn"])["taskDefinition"]
    assert (task["cpu"], task["memory"], task["networkMode"], task["requiresCompatibilities"]) == ("512", "1024", "awsvpc", ["FARGATE"])
    assert ":role/" in task["executionRoleArn"] and ":role/" in task["taskRoleArn"]


def test_deleting_the_service_stack_deletes_the_service(aws):
    outputs = deploy(aws, "service", body("service"), config("service") | SERVICE_WIRED)
    aws.cloudformation.delete_stack(StackName="service")
    service = aws.ecs.describe_services(cluster="startupwebapp-cluster", services=[outputs["ServiceName"]])["services"][0]
    assert service["status"] == "INACTIVE"


def test_certificate_is_created_and_issued(aws):
    outputs = deploy(aws, "cert-dns", body("cert-dns"), config("cert-dns"))
    certificate = aws.acm.describe_certificate(CertificateArn=outputs["CertificateArn"])["Certificate"]
    assert (certificate["DomainName"], certificate["Status"]) == (f"*.{DOMAIN}", "ISSUED")
    assert DOMAIN in certificate["SubjectAlternativeNames"]


def test_scalable_target_and_scaling_policies_are_created_and_deleted(aws):
    aws.ecs.create_service(cluster="startupwebapp-cluster", serviceName="web-service", desiredCount=1)
    wired = {"ServiceClusterName": "startupwebapp-cluster", "ServiceName": "web-service"}
    outputs = deploy(aws, "scaling", body("scaling"), config("scaling") | wired)
    assert outputs["ScalableTargetId"] == "service/startupwebapp-cluster/web-service|ecs:service:DesiredCount|ecs"
    autoscaling = aws.application_autoscaling
    target = autoscaling.describe_scalable_targets(ServiceNamespace="ecs")["ScalableTargets"][0]
    assert (target["ResourceId"], target["MinCapacity"], target["MaxCapacity"]) == ("service/startupwebapp-cluster/web-service", 1, 2)
    policies = autoscaling.describe_scaling_policies(ServiceNamespace="ecs")["ScalingPolicies"]
    assert sorted(p["PolicyARN"] for p in policies) == sorted([outputs["CpuScalingPolicyArn"], outputs["MemoryScalingPolicyArn"]])
    aws.cloudformation.delete_stack(StackName="scaling")
    assert autoscaling.describe_scalable_targets(ServiceNamespace="ecs")["ScalableTargets"] == []
    assert autoscaling.describe_scaling_policies(ServiceNamespace="ecs")["ScalingPolicies"] == []


def test_termination_protection_is_kept_and_refuses_delete(aws):
    deploy(aws, "protected", ssm_template({"Ref": "Tag"}), {"Tag": "v1"})
    cloudformation = aws.cloudformation
    cloudformation.update_termination_protection(StackName="protected", EnableTerminationProtection=True)
    assert cloudformation.describe_stacks(StackName="protected")["Stacks"][0]["EnableTerminationProtection"] is True
    with pytest.raises(ClientError, match=r"Stack \[protected\] cannot be deleted while TerminationProtection is enabled"):
        cloudformation.delete_stack(StackName="protected")
    cloudformation.update_termination_protection(StackName="protected", EnableTerminationProtection=False)
    cloudformation.delete_stack(StackName="protected")
    assert [s["StackStatus"] for s in cloudformation.list_stacks()["StackSummaries"] if s["StackName"] == "protected"] == [
        "DELETE_COMPLETE"
    ]


def test_rollback_configuration_is_kept_on_the_change_set_and_the_stack(aws):
    # moto accepts RollbackConfiguration on CreateChangeSet and drops it; AWS shows it on both.
    triggers = {
        "RollbackTriggers": [{"Arn": f"arn:aws:cloudwatch:{ACCOUNT_REGION}:alarm:{PREFIX}-target-5xx", "Type": "AWS::CloudWatch::Alarm"}],
        "MonitoringTimeInMinutes": 10,
    }
    first = change_set(aws, "triggers", ssm_template({"Ref": "Tag"}), {"Tag": "v1"}, RollbackConfiguration=triggers)
    assert first["RollbackConfiguration"] == triggers
    execute(aws, first)
    assert aws.cloudformation.describe_stacks(StackName="triggers")["Stacks"][0]["RollbackConfiguration"] == triggers
    deploy(aws, "triggers", ssm_template({"Ref": "Tag"}), {"Tag": "v2"})  # none given: the stack keeps its triggers
    assert aws.cloudformation.describe_stacks(StackName="triggers")["Stacks"][0]["RollbackConfiguration"] == triggers


def test_alarms_plain_percentile_and_metric_math_are_created_updated_and_deleted(aws):
    topic = aws.sns.create_topic(Name=f"{PREFIX}-alerts")["TopicArn"]
    given = (
        config("alarms") | BALANCER_NAMES | {"ServiceClusterName": "startupwebapp-cluster", "ServiceName": "web", "AlertTopicArn": topic}
    )
    outputs = deploy(aws, "alarms", body("alarms"), given)
    found = alarms(aws)
    assert sorted(found) == sorted(outputs.values()) and len(found) == 6  # Ref of an alarm is its name
    elb = found[f"{PREFIX}-alb-5xx"]
    assert (elb["Namespace"], elb["MetricName"], elb["Statistic"]) == ("AWS/ApplicationELB", "HTTPCode_ELB_5XX_Count", "Sum")
    assert (elb["Threshold"], elb["Period"], elb["EvaluationPeriods"], elb["DatapointsToAlarm"]) == (
        float(given["Elb5xxThreshold"]),
        int(given["AlarmPeriodSeconds"]),
        int(given["BadPeriodsToAlarm"]),
        int(given["BadPeriodsToAlarm"]),
    )
    assert elb["Dimensions"] == [{"Name": "LoadBalancer", "Value": BALANCER_NAMES["LoadBalancerFullName"]}]
    assert elb["AlarmActions"] == elb["OKActions"] == [topic] and elb["TreatMissingData"] == "notBreaching"
    slow = found[f"{PREFIX}-slow-responses"]
    assert (slow["ExtendedStatistic"], slow["Threshold"], slow.get("Statistic")) == ("p99", float(given["ResponseTimeP99Seconds"]), None)
    cpu = found[f"{PREFIX}-cpu-saturated"]
    usage, tasks, saturated = cpu["Metrics"]
    assert usage["MetricStat"]["Metric"] == {
        "Namespace": "AWS/ECS",
        "MetricName": "CPUUtilization",
        "Dimensions": [{"Name": "ClusterName", "Value": "startupwebapp-cluster"}, {"Name": "ServiceName", "Value": "web"}],
    }
    assert (usage["MetricStat"]["Period"], usage["MetricStat"]["Stat"], usage["ReturnData"]) == (300, "Average", False)
    assert tasks["MetricStat"]["Metric"]["MetricName"] == "RunningTaskCount"
    assert saturated["Expression"] == f"IF(usage > {given['SaturationPercent']} AND tasks >= {given['MaxCapacity']}, 1, 0)"
    assert saturated["ReturnData"] is True and cpu["Threshold"] == 1.0

    deploy(aws, "alarms", body("alarms"), given | {"Elb5xxThreshold": "25", "SaturationPercent": "90"})
    found = alarms(aws)
    assert found[f"{PREFIX}-alb-5xx"]["Threshold"] == 25.0
    assert found[f"{PREFIX}-memory-saturated"]["Metrics"][2]["Expression"].startswith("IF(usage > 90 ")
    aws.cloudformation.delete_stack(StackName="alarms")
    assert alarms(aws) == {}


def test_alarm_ref_is_its_name_and_getatt_arn_its_arn(aws):
    # Without the alarm model, DescribeStacks of the release-alarms stack is an HTTP 500.
    outputs = deploy(aws, "release-alarms", body("release-alarms"), config("release-alarms", AlertEmails="") | BALANCER_NAMES)
    found = alarms(aws)
    names = outputs["DeploymentAlarmNames"].split(",")
    assert names == [f"{PREFIX}-target-5xx", f"{PREFIX}-unhealthy-hosts"]
    assert outputs["RollbackAlarmArns"].split(",") == [found[name]["AlarmArn"] for name in names]
    assert outputs["RollbackAlarmArns"].startswith(f"arn:aws:cloudwatch:{ACCOUNT_REGION}:alarm:{PREFIX}-target-5xx,")
    target = found[f"{PREFIX}-target-5xx"]
    assert (target["MetricName"], target["Threshold"]) == (
        "HTTPCode_Target_5XX_Count",
        float(config("release-alarms")["Target5xxThreshold"]),
    )
    assert target["Dimensions"] == [
        {"Name": "LoadBalancer", "Value": BALANCER_NAMES["LoadBalancerFullName"]},
        {"Name": "TargetGroup", "Value": BALANCER_NAMES["TargetGroupFullName"]},
    ]
    assert target["AlarmActions"] == [outputs["AlertTopicArn"]]


def test_alert_topic_has_its_kms_key_and_email_subscriptions(aws):
    outputs = deploy(
        aws, "alerts", body("release-alarms"), config("release-alarms", AlertEmails="a@example.com,b@example.com") | BALANCER_NAMES
    )
    topic = aws.sns.get_topic_attributes(TopicArn=outputs["AlertTopicArn"])["Attributes"]
    key_id = physical_id(aws, "alerts", "AlertTopicKey")
    assert topic["KmsMasterKeyId"] == key_id and aws.kms.describe_key(KeyId=key_id)["KeyMetadata"]["Enabled"]
    assert subscriptions(aws, outputs["AlertTopicArn"]) == [("email", "a@example.com"), ("email", "b@example.com")]
    arn = physical_id(aws, "alerts", "AlertEmailSubscription1")  # Ref of a subscription is its ARN
    assert arn.startswith(outputs["AlertTopicArn"] + ":")
    aws.cloudformation.delete_stack(StackName="alerts")
    assert aws.sns.list_topics()["Topics"] == [] and aws.sns.list_subscriptions()["Subscriptions"] == []


def test_conditional_resources_follow_their_condition_on_update(aws):
    # One subscription per AlertEmails slot, each with its Condition: removing an address
    # deletes its subscription (moto alone updates it to an empty endpoint), adding one creates it.
    given = config("release-alarms") | BALANCER_NAMES
    outputs = deploy(aws, "alerts", body("release-alarms"), given | {"AlertEmails": "a@example.com,b@example.com"})
    deploy(aws, "alerts", body("release-alarms"), given | {"AlertEmails": "a@example.com"})
    assert subscriptions(aws, outputs["AlertTopicArn"]) == [("email", "a@example.com")]
    deploy(aws, "alerts", body("release-alarms"), given | {"AlertEmails": "a@example.com,c@example.com"})
    assert subscriptions(aws, outputs["AlertTopicArn"]) == [("email", "a@example.com"), ("email", "c@example.com")]


def test_web_acl_with_its_association_and_logging_is_created_and_deleted(aws):
    given = config("waf") | {"LoadBalancerArn": LOAD_BALANCER_ARN}
    outputs = deploy(aws, "waf", body("waf"), given)
    (summary,) = aws.wafv2.list_web_acls(Scope="REGIONAL")["WebACLs"]
    assert (summary["Name"], summary["ARN"]) == (f"{PREFIX}-web-acl", outputs["WebAclArn"])
    acl = aws.wafv2.get_web_acl_for_resource(ResourceArn=LOAD_BALANCER_ARN)["WebACL"]
    assert acl["ARN"] == outputs["WebAclArn"] and acl["DefaultAction"] == {"Allow": {}}
    assert [(r["Name"], r["Priority"], r.get("Action") or r.get("OverrideAction")) for r in acl["Rules"]] == WAF_RULES
    assert acl["Rules"][0]["Statement"] == {"RateBasedStatement": {"Limit": int(given["WafRateLimit"]), "AggregateKeyType": "IP"}}
    assert all(r["VisibilityConfig"]["CloudWatchMetricsEnabled"] for r in acl["Rules"])
    logging = aws.wafv2.get_logging_configuration(ResourceArn=outputs["WebAclArn"])["LoggingConfiguration"]
    assert outputs["WafLogGroupName"] == f"aws-waf-logs-{PREFIX}"
    assert logging["LogDestinationConfigs"] == [f"arn:aws:logs:{ACCOUNT_REGION}:log-group:aws-waf-logs-{PREFIX}"]
    assert logging["RedactedFields"] == [{"SingleHeader": {"Name": "authorization"}}, {"SingleHeader": {"Name": "cookie"}}]
    aws.cloudformation.delete_stack(StackName="waf")
    assert aws.wafv2.list_web_acls(Scope="REGIONAL")["WebACLs"] == []
    assert aws.wafv2.get_web_acl_for_resource(ResourceArn=LOAD_BALANCER_ARN).get("WebACL") is None
    assert aws.wafv2.list_logging_configurations(Scope="REGIONAL")["LoggingConfigurations"] == []


def test_parameter_read_only_through_a_condition_updates_what_uses_it(aws):
    # WafCountOnly reaches the web ACL only through the CountOnly condition's Fn::If.
    given = config("waf") | {"LoadBalancerArn": LOAD_BALANCER_ARN}
    first = deploy(aws, "waf", body("waf"), given)
    update = change_set(aws, "waf", body("waf"), given | {"WafCountOnly": "true"})
    assert changes(update)[:1] == [("Modify", "WebAcl")]  # moto alone: no Changes at all
    assert execute(aws, update) == first, "the web ACL keeps its ARN: updated in place"
    acl = aws.wafv2.get_web_acl_for_resource(ResourceArn=LOAD_BALANCER_ARN)["WebACL"]
    counting = {"AWSManagedRulesKnownBadInputsRuleSet": {"None": {}}}  # blocks even in count-only mode
    assert [(r["Name"], r.get("Action") or r.get("OverrideAction")) for r in acl["Rules"]] == [
        (name, counting.get(name, {"Count": {}})) for name, _, _ in WAF_RULES
    ]


# End to end.


def test_full_deploy_of_every_layer_through_change_sets(aws):
    assert LAYERS == ["cert-dns", "alb", "waf", "release-alarms", "service", "scaling", "alarms"]  # all but ci
    outputs = {}
    for layer in LAYERS:  # with the rollback triggers the deployer gives the service stack
        stack = templates.stack_name("sandbox", layer)
        outputs[layer] = deploy(aws, stack, body(layer), config(layer) | wired(layer, outputs), **rollback_configuration(layer, outputs))
    alb, service = config("alb"), config("service")

    listeners = {
        item["Port"]: item for item in aws.elbv2.describe_listeners(LoadBalancerArn=outputs["alb"]["LoadBalancerArn"])["Listeners"]
    }
    https, http = listeners[443], listeners[80]
    assert (https["Protocol"], https["SslPolicy"]) == ("HTTPS", alb["TlsPolicy"])
    assert https["Certificates"] == [{"CertificateArn": outputs["cert-dns"]["CertificateArn"]}]
    assert https["DefaultActions"] == [{"Type": "forward", "TargetGroupArn": outputs["alb"]["TargetGroupArn"]}]
    assert http["Protocol"] == "HTTP"
    assert [(a["Type"], a["RedirectConfig"]) for a in http["DefaultActions"]] == [
        ("redirect", {"Protocol": "HTTPS", "Port": "443", "StatusCode": "HTTP_301"})
    ]

    group = aws.elbv2.describe_target_groups(TargetGroupArns=[outputs["alb"]["TargetGroupArn"]])["TargetGroups"][0]
    assert (group["HealthCheckPath"], group["HealthCheckIntervalSeconds"], group["Matcher"]) == ("/health", 30, {"HttpCode": "200"})
    assert (group["Port"], group["Protocol"], group["TargetType"]) == (8000, "HTTP", "ip")

    records = aws.route53.list_resource_record_sets(HostedZoneId=outputs["cert-dns"]["HostedZoneId"])["ResourceRecordSets"]
    alias = next(r for r in records if r["Name"] == f"api.{DOMAIN}." and r["Type"] == "A")
    assert alias["AliasTarget"]["DNSName"].rstrip(".") == outputs["alb"]["LoadBalancerDnsName"]

    certificate = aws.acm.describe_certificate(CertificateArn=outputs["cert-dns"]["CertificateArn"])["Certificate"]
    assert certificate["DomainName"] == f"*.{DOMAIN}" and DOMAIN in certificate["SubjectAlternativeNames"]

    ecs = aws.ecs.describe_services(cluster=outputs["service"]["ClusterName"], services=[outputs["service"]["ServiceName"]])["services"][0]
    assert (ecs["desiredCount"], ecs["launchType"]) == (int(service["DesiredCount"]), "FARGATE")
    assert ecs["loadBalancers"] == [{"targetGroupArn": outputs["alb"]["TargetGroupArn"], "containerName": "web", "containerPort": 8000}]
    assert ecs["deploymentConfiguration"]["deploymentCircuitBreaker"] == {"enable": True, "rollback": True}
    release = outputs["release-alarms"]
    deployment_alarms = release["DeploymentAlarmNames"].split(",")
    assert ecs["deploymentConfiguration"]["alarms"] == {"alarmNames": deployment_alarms, "enable": True, "rollback": True}
    stack = aws.cloudformation.describe_stacks(StackName=templates.stack_name("sandbox", "service"))["Stacks"][0]
    assert [t["Arn"] for t in stack["RollbackConfiguration"]["RollbackTriggers"]] == release["RollbackAlarmArns"].split(",")

    found, topic = alarms(aws), release["AlertTopicArn"]
    assert sorted(found) == sorted(deployment_alarms + list(outputs["alarms"].values()))
    assert [found[name]["AlarmArn"] for name in deployment_alarms] == release["RollbackAlarmArns"].split(",")
    on_balancer = [{"Name": "LoadBalancer", "Value": outputs["alb"]["LoadBalancerFullName"]}]
    on_group = [*on_balancer, {"Name": "TargetGroup", "Value": outputs["alb"]["TargetGroupFullName"]}]
    on_service = [
        {"Name": "ClusterName", "Value": outputs["service"]["ClusterName"]},
        {"Name": "ServiceName", "Value": outputs["service"]["ServiceName"]},
    ]
    expected = {  # alarm -> metric, statistic, threshold, dimensions
        f"{PREFIX}-target-5xx": ("HTTPCode_Target_5XX_Count", "Sum", float(config("release-alarms")["Target5xxThreshold"]), on_group),
        f"{PREFIX}-unhealthy-hosts": ("UnHealthyHostCount", "Maximum", 1.0, on_group),
        f"{PREFIX}-alb-5xx": ("HTTPCode_ELB_5XX_Count", "Sum", float(config("alarms")["Elb5xxThreshold"]), on_balancer),
        f"{PREFIX}-no-healthy-host": ("HealthyHostCount", "Minimum", 1.0, on_group),
        f"{PREFIX}-slow-responses": ("TargetResponseTime", "p99", float(config("alarms")["ResponseTimeP99Seconds"]), on_group),
    }
    math = {
        f"{PREFIX}-cpu-saturated": ["CPUUtilization", "RunningTaskCount"],
        f"{PREFIX}-memory-saturated": ["MemoryUtilization", "RunningTaskCount"],
        f"{PREFIX}-tasks-below-desired": ["DesiredTaskCount", "RunningTaskCount"],
    }
    assert sorted(found) == sorted([*expected, *math])
    for name, alarm in found.items():
        assert alarm["AlarmActions"] == alarm["OKActions"] == [topic], name
        if name in expected:
            assert (
                alarm["MetricName"],
                alarm.get("Statistic") or alarm["ExtendedStatistic"],
                alarm["Threshold"],
                alarm["Dimensions"],
            ) == expected[name]
        else:  # metric math over the service's metrics: the metrics it reads, and one expression it returns
            queried = [q["MetricStat"]["Metric"] for q in alarm["Metrics"] if "MetricStat" in q]
            assert [m["MetricName"] for m in queried] == math[name] and all(m["Dimensions"] == on_service for m in queried), name
            assert [bool(q.get("Expression")) for q in alarm["Metrics"] if q["ReturnData"]] == [True], name
    key_id = physical_id(aws, templates.stack_name("sandbox", "release-alarms"), "AlertTopicKey")
    assert aws.sns.get_topic_attributes(TopicArn=topic)["Attributes"]["KmsMasterKeyId"] == key_id
    assert subscriptions(aws, topic) == [("email", email) for email in config("release-alarms")["AlertEmails"].split(",")]

    acl = aws.wafv2.get_web_acl_for_resource(ResourceArn=outputs["alb"]["LoadBalancerArn"])["WebACL"]
    assert acl["ARN"] == outputs["waf"]["WebAclArn"]
    assert [(r["Name"], r["Priority"], r.get("Action") or r.get("OverrideAction")) for r in acl["Rules"]] == WAF_RULES
    assert acl["Rules"][0]["Statement"]["RateBasedStatement"]["Limit"] == int(config("waf")["WafRateLimit"])
    logging = aws.wafv2.get_logging_configuration(ResourceArn=acl["ARN"])["LoggingConfiguration"]
    assert logging["LogDestinationConfigs"] == [f"arn:aws:logs:{ACCOUNT_REGION}:log-group:aws-waf-logs-{PREFIX}"]
    assert aws.logs.describe_log_groups(logGroupNamePrefix="aws-waf-logs-")["logGroups"][0]["logGroupName"] == f"aws-waf-logs-{PREFIX}"

    autoscaling = aws.application_autoscaling
    target = autoscaling.describe_scalable_targets(ServiceNamespace="ecs")["ScalableTargets"][0]
    assert target["ResourceId"] == f"service/{outputs['service']['ClusterName']}/{outputs['service']['ServiceName']}"
    assert (target["MinCapacity"], target["MaxCapacity"]) == (1, int(config("scaling")["MaxCapacity"]))
    policies = autoscaling.describe_scaling_policies(ServiceNamespace="ecs")["ScalingPolicies"]
    tracked = {
        p["TargetTrackingScalingPolicyConfiguration"]["PredefinedMetricSpecification"]["PredefinedMetricType"]: p[
            "TargetTrackingScalingPolicyConfiguration"
        ]["TargetValue"]
        for p in policies
        if p["PolicyType"] == "TargetTrackingScaling"
    }
    assert tracked == {"ECSServiceAverageCPUUtilization": 70, "ECSServiceAverageMemoryUtilization": 80}

    for layer in LAYERS:  # a second deploy has nothing to execute
        again = change_set(aws, templates.stack_name("sandbox", layer), body(layer), config(layer) | wired(layer, outputs))
        assert (again["Status"], again["StatusReason"]) == ("FAILED", NO_CHANGES), layer


def test_the_test_server_exits_with_the_test_run(sandbox):
    # The module fixture stops the server; a server whose test run died stops by itself.
    assert sandbox.running() and "--exit-with-parent" in Path(f"/proc/{sandbox.pid}/cmdline").read_text().replace("\0", " ")
    assert os.getpgid(sandbox.pid) != os.getpgid(0)  # its own session: Ctrl-C in the terminal goes to pytest only
