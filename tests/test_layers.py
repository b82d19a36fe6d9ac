"""The plan's values in each layer, and the security properties neither cfn-lint nor checkov checks."""

import json
import operator
import re

import pytest
from conftest import default, only, resources_of_type

import templates
from templates import inputs
from templates.service import SERVICE_NAME

# The TLS policies AWS recommends (TLS 1.2 minimum, forward secrecy only): the only ones allowed.
RECOMMENDED_TLS_POLICIES = [
    "ELBSecurityPolicy-TLS13-1-2-Res-2021-06",
    "ELBSecurityPolicy-TLS13-1-2-2021-06",
    "ELBSecurityPolicy-TLS13-1-3-2021-06",
    "ELBSecurityPolicy-TLS13-1-2-Res-PQ-2025-09",
    "ELBSecurityPolicy-TLS13-1-2-PQ-2025-09",
    "ELBSecurityPolicy-TLS13-1-3-PQ-2025-09",
]


def test_cert_dns(layer):
    t = layer["cert-dns"]
    cert = t["Resources"]["Certificate"]
    assert (cert["DeletionPolicy"], cert["UpdateReplacePolicy"]) == ("RetainExceptOnCreate", "Retain")
    props = cert["Properties"]
    assert props["DomainName"] == {"Fn::Sub": "*.${DomainName}"}
    assert props["SubjectAlternativeNames"] == [{"Ref": "DomainName"}]
    assert props["ValidationMethod"] == "DNS"
    assert t["Parameters"]["DomainName"]["Default"] == "startupwebapp.com"
    assert set(t["Outputs"]) == {"CertificateArn", "HostedZoneId", "DomainName"}
    assert t["Outputs"]["HostedZoneId"]["Value"] == {"Ref": "ExistingHostedZoneId"}


def test_cert_dns_validates_in_an_existing_zone_never_one_of_its_own(layer):
    # A zone made in the same stack is not delegated from the registrar: ACM's DNS validation
    # would wait 72 hours. The zone comes from `make zone` (scripts/deploy/zone.py), by its id.
    t = layer["cert-dns"]
    assert [r["Type"] for r in t["Resources"].values()] == ["AWS::CertificateManager::Certificate"]
    (rule,) = t["Rules"].values()
    assert rule["Assertions"][0]["Assert"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "ExistingHostedZoneId"}, ""]}]}


def test_cert_dns_lists_the_validation_record_once_for_the_certificates_own_name(layer):
    # ACM validates *.<domain> and <domain> with one identical CNAME; an entry per name makes
    # CloudFormation write it twice and Route 53 reject the change batch.
    # https://docs.aws.amazon.com/acm/latest/userguide/dns-validation.html
    # CloudFormation writes the record only when the certificate's DomainName is identical to a
    # DomainName in DomainValidationOptions ("Failing to keep them like-for-like will result in
    # failure to create the domain validation records in Route53"):
    # https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-certificatemanager-certificate.html
    props = layer["cert-dns"]["Resources"]["Certificate"]["Properties"]
    names = [props["DomainName"], *props["SubjectAlternativeNames"]]
    assert names == [{"Fn::Sub": "*.${DomainName}"}, {"Ref": "DomainName"}]  # the wildcard and its apex: one record
    (option,) = props["DomainValidationOptions"]
    assert option == {"DomainName": props["DomainName"], "HostedZoneId": {"Ref": "ExistingHostedZoneId"}}


def test_alb_load_balancer(layer):
    t = layer["alb"]
    lb = t["Resources"]["LoadBalancer"]
    props = lb["Properties"]
    assert t["Parameters"]["NamePrefix"]["Default"] == "startupwebapp"
    assert props["Name"] == {"Fn::Sub": "${NamePrefix}-alb"}
    assert props["Scheme"] == "internet-facing" and props["Type"] == "application"
    assert props["Subnets"] == {"Ref": "PublicSubnetIds"}
    attributes = {a["Key"]: a["Value"] for a in props["LoadBalancerAttributes"]}
    assert attributes["routing.http.drop_invalid_header_fields.enabled"] == "true"
    assert attributes["routing.http.desync_mitigation_mode"] == "defensive"
    assert default(t, attributes["deletion_protection.enabled"]) == "true"
    assert default(t, attributes["access_logs.s3.enabled"]) == "true"
    assert attributes["access_logs.s3.bucket"] == {"Ref": "AccessLogBucket"}
    assert lb["DependsOn"] == ["AccessLogBucketPolicy"]


def test_alb_listeners_and_target_group(layer):
    t = layer["alb"]
    listeners = {
        r["Properties"]["Port"]: r["Properties"]
        for r in resources_of_type(t, "AWS::ElasticLoadBalancingV2::Listener").values()
        if "Condition" not in r
    }
    assert set(listeners) == {443, 80}
    https = listeners[443]
    assert https["Protocol"] == "HTTPS"
    assert https["Certificates"] == [{"CertificateArn": {"Ref": "CertificateArn"}}]
    assert default(t, https["SslPolicy"]) == "ELBSecurityPolicy-TLS13-1-2-Res-2021-06"
    assert https["DefaultActions"] == [{"Type": "forward", "TargetGroupArn": {"Ref": "TargetGroup"}}]
    redirect = listeners[80]["DefaultActions"][0]
    assert redirect["Type"] == "redirect"
    assert redirect["RedirectConfig"] == {"Protocol": "HTTPS", "Port": "443", "StatusCode": "HTTP_301"}

    groups = {name: r["Properties"] for name, r in resources_of_type(t, "AWS::ElasticLoadBalancingV2::TargetGroup").items()}
    assert {name: tg["Name"] for name, tg in groups.items()} == {
        "TargetGroup": {"Fn::Sub": "${NamePrefix}-tg"},
        "AlternateTargetGroup": {"Fn::Sub": "${NamePrefix}-tg-alt"},
    }
    # The alternate one takes a release's new tasks: it must judge them as the primary one does.
    tg = groups["TargetGroup"]
    assert groups["AlternateTargetGroup"] == tg | {"Name": {"Fn::Sub": "${NamePrefix}-tg-alt"}}
    assert tg["Protocol"] == "HTTP" and tg["TargetType"] == "ip"
    assert default(t, tg["Port"]) == "8000"  # a String: inputs.Input.declared_type
    assert default(t, tg["HealthCheckPath"]) == "/health"
    assert default(t, tg["HealthCheckIntervalSeconds"]) == 30
    assert default(t, tg["HealthyThresholdCount"]) == 2
    assert tg["Matcher"] == {"HttpCode": "200"}
    assert tg["TargetGroupAttributes"] == [
        {"Key": "deregistration_delay.timeout_seconds", "Value": {"Fn::Sub": "${DeregistrationDelaySeconds}"}}
    ]
    assert t["Parameters"]["DeregistrationDelaySeconds"]["Default"] == 30


def test_traffic_shifting_listener_rules_exist_only_when_a_release_shifts_traffic(layer):
    t = layer["alb"]
    assert t["Conditions"]["ShiftsTraffic"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "DeploymentStrategy"}, "ROLLING"]}]}
    conditional = {name: r for name, r in t["Resources"].items() if "Condition" in r}
    assert {name: r["Condition"] for name, r in conditional.items()} == dict.fromkeys(
        ["ProductionListenerRule", "TestListener", "TestListenerRule", "TestListenerIngress"], "ShiftsTraffic"
    )
    # Forward only, to both target groups by weight, all to the primary one: ECS moves the weights,
    # and refuses rules that mix forward with other actions.
    weighted = [
        {
            "Type": "forward",
            "ForwardConfig": {
                "TargetGroups": [
                    {"TargetGroupArn": {"Ref": "TargetGroup"}, "Weight": 100},
                    {"TargetGroupArn": {"Ref": "AlternateTargetGroup"}, "Weight": 0},
                ]
            },
        }
    ]
    production, test = (conditional[name]["Properties"] for name in ("ProductionListenerRule", "TestListenerRule"))
    assert production["ListenerArn"] == {"Ref": "HttpsListener"}
    assert test["ListenerArn"] == {"Ref": "TestListener"}
    for rule in (production, test):
        assert rule["Actions"] == weighted
        assert rule["Conditions"] == [{"Field": "path-pattern", "Values": ["/*"]}]
    listener = conditional["TestListener"]["Properties"]
    assert (listener["Port"], listener["Protocol"]) == ({"Ref": "TestListenerPort"}, "HTTPS")
    assert listener["SslPolicy"] == {"Ref": "TlsPolicy"}
    assert listener["Certificates"] == [{"CertificateArn": {"Ref": "CertificateArn"}}]
    # Reachable from the testers' CIDR only, which can never be the whole internet nor empty.
    ingress = conditional["TestListenerIngress"]["Properties"]
    assert ingress["GroupId"] == {"Fn::GetAtt": ["AlbSecurityGroup", "GroupId"]}
    assert ingress["CidrIp"] == {"Ref": "TestListenerCidr"}
    assert ingress["FromPort"] == ingress["ToPort"] == {"Ref": "TestListenerPort"}
    (rule,) = t["Rules"].values()
    assert rule["RuleCondition"] == t["Conditions"]["ShiftsTraffic"]
    assert rule["Assertions"][0]["Assert"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "TestListenerCidr"}, ""]}]}
    assert inputs.INPUTS["TestListenerPort"].min_value > 443
    assert {name for name, o in t["Outputs"].items() if o.get("Condition") == "ShiftsTraffic"} == {
        "ProductionListenerRuleArn",
        "TestListenerRuleArn",
        "TestListenerPort",
    }


def test_only_what_holds_data_and_the_certificate_outlive_their_stack(layer):
    # Kept on deletion (make purge frees them), except when their first create rolls back: a failed
    # create must leave nothing that blocks the next one. The load balancer, its security group and
    # the target group hold no data: they go with the stack, freeing their names.
    kept = {
        (name, r["Type"]): (r.get("DeletionPolicy"), r.get("UpdateReplacePolicy"))
        for t in layer.values()
        for name, r in t["Resources"].items()
        if "DeletionPolicy" in r or "UpdateReplacePolicy" in r
    }
    retained = ("RetainExceptOnCreate", "Retain")
    assert kept == {
        ("Certificate", "AWS::CertificateManager::Certificate"): retained,
        ("AccessLogBucket", "AWS::S3::Bucket"): retained,
        ("LogGroup", "AWS::Logs::LogGroup"): retained,  # service and waf
        ("LogKey", "AWS::KMS::Key"): retained,
        ("AlertTopicKey", "AWS::KMS::Key"): ("Delete", "Delete"),
    }


def test_alb_security_groups(layer):
    t = layer["alb"]
    sg = only(t, "AWS::EC2::SecurityGroup")
    assert sg["GroupName"] == {"Fn::Sub": "${NamePrefix}-alb-sg"}
    assert sorted((r["FromPort"], r["CidrIp"]) for r in sg["SecurityGroupIngress"]) == [(80, "0.0.0.0/0"), (443, "0.0.0.0/0")]
    assert all(r.get("Description") for r in sg["SecurityGroupIngress"])
    # Only one egress rule, stated inline so that it replaces the default allow-all rule.
    (egress,) = sg["SecurityGroupEgress"]
    assert egress["DestinationSecurityGroupId"] == {"Ref": "BackendSecurityGroupId"}
    assert egress["FromPort"] == egress["ToPort"] == {"Ref": "ContainerPort"}
    assert egress["Description"] and "CidrIp" not in egress
    assert not resources_of_type(t, "AWS::EC2::SecurityGroupEgress")


def test_every_allowed_health_check_interval_is_longer_than_the_timeout(layer):
    # ELB answers "ValidationError: Health check interval must be greater than the timeout."
    # (the error the AWS CDK checks for since aws/aws-cdk#29075); the 5-300 range alone allows 5.
    # https://docs.aws.amazon.com/elasticloadbalancing/latest/application/target-group-health-checks.html
    t = layer["alb"]
    for group in resources_of_type(t, "AWS::ElasticLoadBalancingV2::TargetGroup").values():
        props = group["Properties"]
        assert props["HealthCheckIntervalSeconds"] == {"Ref": "HealthCheckIntervalSeconds"}
        assert t["Parameters"]["HealthCheckIntervalSeconds"]["MinValue"] > props["HealthCheckTimeoutSeconds"]


def test_every_alarm_period_is_whole_minutes_whatever_the_params_say(layer):
    # The load balancer and ECS send one-minute metrics: a 10 or 30 s period gets no data for most
    # periods, and the alarm lapses or never fires (and is billed as high-resolution).
    # https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricAlarm.html
    def periods(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "Period":
                    yield value
                else:
                    yield from periods(value)
        elif isinstance(node, list):
            for item in node:
                yield from periods(item)

    seen = []
    for name, template in layer.items():
        for alarm in resources_of_type(template, "AWS::CloudWatch::Alarm").values():
            for period in periods(alarm["Properties"]):
                if isinstance(period, dict):
                    parameter = template["Parameters"][period["Ref"]]
                    values = [int(v) for v in parameter["AllowedValues"]]
                else:
                    values = [int(period)]
                assert values and all(v % 60 == 0 for v in values), f"{name}: a period of {values}"
                seen.append(period)
    assert {"Ref": "AlarmPeriodSeconds"} in seen and len(seen) > 3


def test_security_group_descriptions_use_only_the_characters_ec2_accepts(layer):
    # EC2 refuses anything else ("Invalid rule description"); cfn-lint, checkov and the sandbox do not.
    # Rules: "Allowed characters are a-z, A-Z, 0-9, spaces, and ._-:/()#,@[]+=;{}!$*"
    # https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_UserIdGroupPair.html and API_IpRange.html
    # Groups: "Valid characters: a-z, A-Z, 0-9, spaces, and ._-:/()#,@[]+=&;{}!$*"
    # https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateSecurityGroup.html
    rule_text = re.compile(r"[a-zA-Z0-9 ._\-:/()#,@\[\]+=;{}!$*]*")
    group_text = re.compile(r"[a-zA-Z0-9 ._\-:/()#,@\[\]+=&;{}!$*]*")
    checked = []
    for name, template in layer.items():
        for type_, key, pattern in (
            ("AWS::EC2::SecurityGroup", "GroupDescription", group_text),
            ("AWS::EC2::SecurityGroupIngress", "Description", rule_text),
            ("AWS::EC2::SecurityGroupEgress", "Description", rule_text),
        ):
            for resource in resources_of_type(template, type_).values():
                props = resource["Properties"]
                texts = [props.get(key)] + [
                    rule.get("Description") for k in ("SecurityGroupIngress", "SecurityGroupEgress") for rule in props.get(k, [])
                ]
                for text in filter(None, texts):
                    literal = text["Fn::Sub"] if isinstance(text, dict) else text
                    assert isinstance(literal, str) and pattern.fullmatch(literal), f"{name}: {text!r}"
                    checked.append(literal)
    assert len(checked) >= 5, checked  # the alb layer's group, its three rules and the two ingress resources


def test_backend_ingress_only_from_the_alb_group(layer):
    ingress = resources_of_type(layer["alb"], "AWS::EC2::SecurityGroupIngress")
    assert set(ingress) == {"BackendIngressFromAlb", "TestListenerIngress"}
    assert ingress["TestListenerIngress"]["Properties"]["GroupId"] != {"Ref": "BackendSecurityGroupId"}
    rule = ingress["BackendIngressFromAlb"]["Properties"]
    assert rule["GroupId"] == {"Ref": "BackendSecurityGroupId"}
    assert rule["SourceSecurityGroupId"] == {"Fn::GetAtt": ["AlbSecurityGroup", "GroupId"]}
    assert "CidrIp" not in rule and "CidrIpv6" not in rule
    assert rule["FromPort"] == rule["ToPort"] == {"Ref": "ContainerPort"}
    for other_layer in ("cert-dns", "service", "scaling"):
        assert not resources_of_type(layer[other_layer], "AWS::EC2::SecurityGroupIngress")


def test_access_log_bucket_policy_principal_depends_on_region(layer):
    t = layer["alb"]
    mapping = t["Mappings"]["ElbLogAccount"]
    assert mapping["us-east-1"]["AccountId"] == "127311923021"
    assert mapping["eu-central-2"]["AccountId"] == "-"
    statement = only(t, "AWS::S3::BucketPolicy")["PolicyDocument"]["Statement"][0]
    condition, service_principal, account_principal = statement["Principal"]["Fn::If"]
    assert condition == "LogsFromServicePrincipal"
    assert service_principal == {"Service": "logdelivery.elasticloadbalancing.amazonaws.com"}
    assert "ElbAccount" in json.dumps(account_principal)
    assert statement["Action"] == "s3:PutObject"
    # The load balancer writes only under AWSLogs/<this account>/, as the access-log page's policy says:
    # https://docs.aws.amazon.com/elasticloadbalancing/latest/application/enable-access-logging.html
    assert statement["Resource"] == {"Fn::Sub": "arn:${AWS::Partition}:s3:::${AccessLogBucket}/AWSLogs/${AWS::AccountId}/*"}


def test_access_log_bucket_is_private_and_refuses_plain_http(layer):
    t = layer["alb"]
    bucket = only(t, "AWS::S3::Bucket")
    assert set(bucket["PublicAccessBlockConfiguration"].values()) == {True} and len(bucket["PublicAccessBlockConfiguration"]) == 4
    assert bucket["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}  # no ACLs at all
    statements = only(t, "AWS::S3::BucketPolicy")["PolicyDocument"]["Statement"]
    (deny,) = [s for s in statements if s["Effect"] == "Deny"]
    assert (deny["Principal"], deny["Action"], deny["Condition"]) == ("*", "s3:*", {"Bool": {"aws:SecureTransport": "false"}})
    assert deny["Resource"] == [{"Fn::GetAtt": ["AccessLogBucket", "Arn"]}, {"Fn::Sub": "${AccessLogBucket.Arn}/*"}]


def test_alias_record_and_outputs(layer):
    t = layer["alb"]
    record = only(t, "AWS::Route53::RecordSet")
    assert record["Name"] == {"Fn::Sub": "${ApiHostLabel}.${DomainName}."}
    assert record["Type"] == "A"
    assert record["AliasTarget"]["DNSName"] == {"Fn::GetAtt": ["LoadBalancer", "DNSName"]}
    assert t["Parameters"]["ApiHostLabel"]["Default"] == "api"
    assert {"LoadBalancerArn", "LoadBalancerFullName", "TargetGroupArn", "TargetGroupFullName", "HttpsListenerArn"} <= set(t["Outputs"])
    assert {"AlbSecurityGroupId", "LoadBalancerDnsName", "ServiceUrl"} <= set(t["Outputs"])


def container(layer, name="web"):
    definitions = only(layer["service"], "AWS::ECS::TaskDefinition")["ContainerDefinitions"]
    (definition,) = [d for d in definitions if d["Name"] == name]
    return definition


def test_tmp_is_writable_for_the_non_root_container(layer):
    # ECS makes a bind-mount volume root-owned with mode 0755: the web container (not root, read-only
    # root file system) could not write /tmp, gunicorn's heartbeat files would fail and every task
    # crash. A non-essential container runs first as root, makes /tmp 1777 and exits; the web
    # container starts only after it exited 0.
    # https://docs.aws.amazon.com/AmazonECS/latest/developerguide/bind-mounts.html
    # https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ContainerDependency.html
    t = layer["service"]
    td = only(t, "AWS::ECS::TaskDefinition")
    web, init = container(layer), container(layer, "tmp-permissions")
    assert [d["Name"] for d in td["ContainerDefinitions"]] == ["tmp-permissions", "web"]
    assert default(t, web["User"]).split(":")[0] not in ("0", "root")
    assert web["DependsOn"] == [{"ContainerName": "tmp-permissions", "Condition": "SUCCESS"}]
    assert init["Essential"] is False  # SUCCESS may only be set on a non-essential container
    assert init["User"] == "0"
    assert init["EntryPoint"] + init["Command"] == ["chmod", "1777", "/tmp"]
    assert init["Image"] == web["Image"]  # no second image to pull or trust
    assert init["MountPoints"] == web["MountPoints"] == [{"ContainerPath": "/tmp", "ReadOnly": False, "SourceVolume": "tmp"}]
    assert init["ReadonlyRootFilesystem"] is True
    assert init["LogConfiguration"]["Options"]["awslogs-group"] == web["LogConfiguration"]["Options"]["awslogs-group"]


def test_task_definition(layer):
    t = layer["service"]
    td = only(t, "AWS::ECS::TaskDefinition")
    assert td["Family"] == {"Fn::Sub": "${NamePrefix}-service-task"}
    assert td["RequiresCompatibilities"] == ["FARGATE"] and td["NetworkMode"] == "awsvpc"
    assert t["Parameters"]["TaskCpu"]["Default"] == "512" and t["Parameters"]["TaskMemory"]["Default"] == 1024
    c = container(layer)
    assert c["Image"] == {"Fn::Sub": "${AWS::AccountId}.dkr.ecr.${AWS::Region}.${AWS::URLSuffix}/${EcrRepositoryName}:${ImageTag}"}
    assert c["Command"][:5] == [
        "gunicorn",
        "StartupWebApp.wsgi:application",
        "--bind",
        {"Fn::Sub": "0.0.0.0:${ContainerPort}"},
        "--workers",
    ]
    assert t["Parameters"]["GunicornWorkers"]["Default"] == "3"  # a String: inputs.Input.declared_type
    assert c["PortMappings"] == [{"ContainerPort": {"Ref": "ContainerPort"}, "Protocol": "tcp"}]
    environment = {e["Name"]: e["Value"] for e in c["Environment"]}
    # DatabaseName has no default in the template: each environment's configuration gives its own (params.ISOLATING_INPUTS)
    assert environment == {"DJANGO_SETTINGS_MODULE": {"Ref": "DjangoSettingsModule"}, "DATABASE_NAME": {"Ref": "DatabaseName"}}
    assert default(t, environment["DJANGO_SETTINGS_MODULE"]) == "StartupWebApp.settings_production"
    assert "Default" not in t["Parameters"]["DatabaseName"]
    assert c["LogConfiguration"]["LogDriver"] == "awslogs"
    assert c["ReadonlyRootFilesystem"] is True
    assert c["MountPoints"] == [{"ContainerPath": "/tmp", "ReadOnly": False, "SourceVolume": "tmp"}]
    assert td["Volumes"] == [{"Name": "tmp"}]
    assert default(t, c["User"]).split(":")[0] not in ("0", "root")


def test_secrets_come_from_secrets_manager_never_environment(layer):
    c = container(layer)
    for variable in c["Environment"]:
        name = variable["Name"]
        assert not any(word in name for word in ("PASSWORD", "SECRET", "KEY", "TOKEN", "USER")), name
        assert "secretsmanager" not in json.dumps(variable["Value"])
    # Each variable from its key of the secret's JSON (username, password, host, port).
    assert {s["Name"]: s["ValueFrom"] for s in c["Secrets"]} == {
        "DATABASE_USER": {"Fn::Sub": "${DatabaseSecretArn}:username::"},
        "DATABASE_PASSWORD": {"Fn::Sub": "${DatabaseSecretArn}:password::"},
        "DATABASE_HOST": {"Fn::Sub": "${DatabaseSecretArn}:host::"},
        "DATABASE_PORT": {"Fn::Sub": "${DatabaseSecretArn}:port::"},
    }


def test_execution_role_is_separate_and_scoped_to_the_one_secret(layer):
    t = layer["service"]
    td = only(t, "AWS::ECS::TaskDefinition")
    assert td["ExecutionRoleArn"] == {"Fn::GetAtt": ["ExecutionRole", "Arn"]}
    assert td["TaskRoleArn"] == {"Fn::GetAtt": ["TaskRole", "Arn"]}
    statements = t["Resources"]["ExecutionRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    secret_statements = [s for s in statements if any(a.startswith("secretsmanager:") for a in s["Action"])]
    assert secret_statements == [
        {
            "Sid": "ReadDatabaseSecret",
            "Effect": "Allow",
            "Action": ["secretsmanager:GetSecretValue"],
            "Resource": [{"Ref": "DatabaseSecretArn"}],
        }
    ]
    wildcard = [s for s in statements if s["Resource"] == ["*"]]
    assert [s["Action"] for s in wildcard] == [["ecr:GetAuthorizationToken"]]
    assert "Policies" not in t["Resources"]["TaskRole"]["Properties"]
    assert "ManagedPolicyArns" not in t["Resources"]["TaskRole"]["Properties"]


def test_log_group_kept_and_encrypted(layer):
    t = layer["service"]
    group = t["Resources"]["LogGroup"]
    assert group["Properties"]["LogGroupName"] == {"Fn::Sub": "/ecs/${NamePrefix}-service"}
    assert (group["DeletionPolicy"], group["UpdateReplacePolicy"]) == ("RetainExceptOnCreate", "Retain")
    assert group["Properties"]["KmsKeyId"] == {"Fn::GetAtt": ["LogKey", "Arn"]}
    assert t["Parameters"]["LogRetentionDays"]["Default"] == "365"


def test_every_log_group_keeps_its_events_the_days_its_layer_is_given(layer):
    # Without RetentionInDays a log group's events "are always retained and never expire"
    # (https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_PutRetentionPolicy.html): the
    # LogRetentionDays a params file sets would be ignored and the logs kept, and paid for, forever (mutation audit Z6,
    # mutant: common.add_encrypted_log_group without RetentionInDays)
    groups = {name: only(t, "AWS::Logs::LogGroup") for name, t in layer.items() if resources_of_type(t, "AWS::Logs::LogGroup")}
    assert set(groups) == {"service", "waf"}, groups.keys()
    for name, group in groups.items():
        assert group["RetentionInDays"] == {"Ref": "LogRetentionDays"}, name


def test_a_log_groups_key_serves_that_log_group_alone(layer):
    # Least privilege: CloudWatch Logs may use the key for the layer's log group under its NamePrefix, and
    # for no other (another environment's in the same account, or the group an older NamePrefix kept,
    # whose events a rename leaves unreadable: the deployer warns before such an update).
    keyed = {name: t for name, t in layer.items() if "LogKey" in t["Resources"]}
    assert set(keyed) == {"service", "waf"}, keyed.keys()  # the layers with a log group (common.add_encrypted_log_group)
    for name, t in keyed.items():
        group_name = t["Resources"]["LogGroup"]["Properties"]["LogGroupName"]["Fn::Sub"]
        (use,) = [s for s in t["Resources"]["LogKey"]["Properties"]["KeyPolicy"]["Statement"] if "Condition" in s]
        assert use["Principal"] == {"Service": {"Fn::Sub": "logs.${AWS::Region}.amazonaws.com"}}, name
        assert use["Condition"] == {
            "StringEquals": {
                "kms:EncryptionContext:aws:logs:arn": {
                    "Fn::Sub": f"arn:${{AWS::Partition}}:logs:${{AWS::Region}}:${{AWS::AccountId}}:log-group:{group_name}"
                }
            }
        }, name
        # AWS's key policy for a log group's key, its actions as written there (Logs may call any of them):
        # https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/encrypt-log-data-kms.html
        assert use["Action"] == ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"], name


def test_every_key_is_administered_by_the_account_and_rotates(layer):
    # CreateKey: "The key policy must allow the calling principal to make a subsequent PutKeyPolicy request on the KMS key"
    # (without BypassPolicyLockoutSafetyCheck, which no layer sets); the account's root principal, an IAM ARN with no
    # region, gives the account's IAM policies (CloudFormation's role among them) that right
    # (https://docs.aws.amazon.com/kms/latest/APIReference/API_CreateKey.html, and Default key policy in the KMS Developer
    # Guide). (mutation audit Z6, mutants: common.add_key without its AccountAdministers statement, its root ARN with a
    # region, EnableKeyRotation False)
    keys = {
        (name, logical_id): r["Properties"] for name, t in layer.items() for logical_id, r in resources_of_type(t, "AWS::KMS::Key").items()
    }
    assert keys
    for where, key in keys.items():
        assert key["EnableKeyRotation"] is True, where
        assert "BypassPolicyLockoutSafetyCheck" not in key, where
        administers = [
            s
            for s in key["KeyPolicy"]["Statement"]
            if s["Effect"] == "Allow" and s["Action"] in (["kms:*"], "kms:*") and s["Resource"] in (["*"], "*") and "Condition" not in s
        ]
        assert [s["Principal"] for s in administers] == [{"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}}], where


def test_every_policy_document_is_in_the_current_policy_language(layer):
    # "2012-10-17. This is the current version of the policy language, and you should always include a Version element
    # and set it to 2012-10-17. Otherwise, you cannot use features such as policy variables"; under 2008-10-17 a
    # ${aws:...} variable is a literal string (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_version.html)
    # (mutation audit Z6, mutant: common.policy's Version "2008-10-17")
    from templates.template_reads import items

    documents = [
        (name, value)
        for name, t in layer.items()
        for key, value in items(t["Resources"])
        if isinstance(value, dict) and "Statement" in value
    ]
    assert {name for name, _ in documents} >= {"ci", "service", "waf", "release-alarms"}
    for name, document in documents:
        assert document.get("Version") == "2012-10-17", (name, document)


def test_ecs_service(layer):
    t = layer["service"]
    s = only(t, "AWS::ECS::Service")
    assert s["ServiceName"] == {"Fn::Sub": "${NamePrefix}-service"}
    assert default(t, s["Cluster"]) == "startupwebapp-cluster"
    # The count is stated on create only: updates leave it to auto-scaling.
    assert s["DesiredCount"] == {"Fn::If": ["SetDesiredCount", {"Ref": "DesiredCount"}, {"Ref": "AWS::NoValue"}]}
    assert t["Conditions"]["SetDesiredCount"] == {"Fn::Equals": [{"Ref": "KeepRunningCount"}, "false"]}
    assert t["Parameters"]["DesiredCount"]["Default"] == 2
    assert s["LaunchType"] == "FARGATE"
    network = s["NetworkConfiguration"]["AwsvpcConfiguration"]
    assert network["AssignPublicIp"] == "DISABLED"
    assert network["Subnets"] == {"Ref": "PrivateSubnetIds"}
    assert network["SecurityGroups"] == [{"Ref": "BackendSecurityGroupId"}]
    (balancer,) = s["LoadBalancers"]
    assert {k: balancer[k] for k in ("ContainerName", "ContainerPort", "TargetGroupArn")} == {
        "ContainerName": "web",
        "ContainerPort": {"Ref": "ContainerPort"},
        "TargetGroupArn": {"Ref": "TargetGroupArn"},
    }
    assert default(t, s["HealthCheckGracePeriodSeconds"]) == 120
    deployment = s["DeploymentConfiguration"]
    assert (deployment["MinimumHealthyPercent"], deployment["MaximumPercent"]) == (100, 200)
    assert deployment["DeploymentCircuitBreaker"] == {"Enable": True, "Rollback": True}
    assert s["PropagateTags"] == "SERVICE"
    assert {"ClusterName", "ServiceName", "TaskDefinitionArn", "LogGroupName"} <= set(t["Outputs"])


def test_the_service_shifts_traffic_through_the_alb_layers_rules_unless_rolling(layer):
    t = layer["service"]
    s = only(t, "AWS::ECS::Service")
    deployment = s["DeploymentConfiguration"]
    assert deployment["Strategy"] == {"Ref": "DeploymentStrategy"}
    assert t["Parameters"]["DeploymentStrategy"]["AllowedValues"] == ["ROLLING", "BLUE_GREEN", "CANARY", "LINEAR"]
    assert t["Parameters"]["DeploymentStrategy"]["Default"] == "BLUE_GREEN"  # the production default: prod shifts traffic
    assert deployment["BakeTimeInMinutes"] == {"Fn::If": ["ShiftsTraffic", {"Ref": "BakeTimeMinutes"}, {"Ref": "AWS::NoValue"}]}
    assert deployment["CanaryConfiguration"]["Fn::If"][0] == "Canary"
    assert deployment["CanaryConfiguration"]["Fn::If"][1] == {
        "CanaryPercent": {"Ref": "CanaryPercent"},
        "CanaryBakeTimeInMinutes": {"Ref": "CanaryBakeTimeMinutes"},
    }
    assert deployment["LinearConfiguration"]["Fn::If"][1] == {
        "StepPercent": {"Ref": "LinearStepPercent"},
        "StepBakeTimeInMinutes": {"Ref": "LinearStepBakeTimeMinutes"},
    }
    # A release waits for make continue once the test listener reaches it, when TestPauseMinutes says so;
    # without it within those minutes, ECS rolls it back.
    assert t["Conditions"]["PausesForTests"] == {
        "Fn::And": [t["Conditions"]["ShiftsTraffic"], {"Fn::Not": [{"Fn::Equals": [{"Ref": "TestPauseMinutes"}, 0]}]}]
    }
    condition, hooks, none = deployment["LifecycleHooks"]["Fn::If"]
    assert (condition, none) == ("PausesForTests", {"Ref": "AWS::NoValue"})
    assert hooks == [
        {
            "TargetType": "PAUSE",
            "LifecycleStages": ["POST_TEST_TRAFFIC_SHIFT"],
            "TimeoutConfiguration": {"TimeoutInMinutes": {"Ref": "TestPauseMinutes"}, "Action": "ROLLBACK"},
        }
    ]
    assert t["Parameters"]["TestPauseMinutes"]["Default"] == 0
    (balancer,) = s["LoadBalancers"]
    condition, advanced, rolling = balancer["AdvancedConfiguration"]["Fn::If"]
    assert (condition, rolling) == ("ShiftsTraffic", {"Ref": "AWS::NoValue"})
    assert advanced == {
        "AlternateTargetGroupArn": {"Ref": "AlternateTargetGroupArn"},
        "ProductionListenerRule": {"Ref": "ProductionListenerRuleArn"},
        "TestListenerRule": {"Ref": "TestListenerRuleArn"},
        "RoleArn": {"Fn::GetAtt": ["InfrastructureRole", "Arn"]},
    }
    for parameter in ("AlternateTargetGroupArn", "ProductionListenerRuleArn", "TestListenerRuleArn"):
        assert templates.WIRING[("service", parameter)] == ("alb", parameter)
    # The alb layer has its rules only when it shifts traffic too: an empty one is refused up front.
    (rule,) = t["Rules"].values()
    assert rule["RuleCondition"] == t["Conditions"]["ShiftsTraffic"]
    assert "deploy the alb layer" in rule["Assertions"][0]["AssertDescription"]


def test_the_infrastructure_role_moves_only_the_projects_traffic(layer):
    role = layer["service"]["Resources"]["InfrastructureRole"]
    assert role["Condition"] == "ShiftsTraffic"
    props = role["Properties"]
    (trust,) = props["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "ecs.amazonaws.com"}
    assert props["PermissionsBoundary"] == layer["service"]["Resources"]["TaskRole"]["Properties"]["PermissionsBoundary"]
    (policy,) = props["Policies"]
    statements = {s["Sid"]: s for s in policy["PolicyDocument"]["Statement"]}
    assert statements["ReadLoadBalancing"]["Resource"] == ["*"]
    assert all(a.startswith("elasticloadbalancing:Describe") for a in statements["ReadLoadBalancing"]["Action"])
    scoped = [r["Fn::Sub"] for sid in ("RegisterTasks", "MoveTraffic") for r in statements[sid]["Resource"]]
    assert all(":elasticloadbalancing:${AWS::Region}:${AWS::AccountId}:" in r and "${NamePrefix}-" in r for r in scoped)
    assert not any("*:*" in r for r in scoped)


def test_the_infrastructure_role_registers_tasks_in_its_environments_target_groups_only(layer, configurations):
    """Each environment's NamePrefix in the ARNs, as the alb layer names its target groups; never a
    pattern that reaches another environment's (a NamePrefix may start with another one's)."""
    from fnmatch import fnmatchcase

    (policy,) = layer["service"]["Resources"]["InfrastructureRole"]["Properties"]["Policies"]
    (register,) = [s for s in policy["PolicyDocument"]["Statement"] if s["Sid"] == "RegisterTasks"]
    groups = [r["Properties"]["Name"]["Fn::Sub"] for r in layer["alb"]["Resources"].values() if r["Type"].endswith("TargetGroup")]
    prefixes = {c["Parameters"]["NamePrefix"] for (_, name), c in configurations.items() if name == "service"}
    for prefix in prefixes:
        neighbour = f"{prefix}-tg"  # an environment whose NamePrefix starts with this one's and -tg
        patterns = [r["Fn::Sub"].replace("${NamePrefix}", prefix).split(":${AWS::AccountId}:")[1] for r in register["Resource"]]
        ours = [f"targetgroup/{g.replace('${NamePrefix}', prefix)}/0123456789abcdef" for g in groups]
        theirs = [f"targetgroup/{g.replace('${NamePrefix}', neighbour)}/0123456789abcdef" for g in groups]
        assert all(any(fnmatchcase(arn, p) for p in patterns) for arn in ours), (patterns, ours)
        assert not any(fnmatchcase(arn, p) for p in patterns for arn in theirs), (patterns, theirs)


def test_no_public_ip_anywhere(layer):
    for template in layer.values():
        assert '"AssignPublicIp": "ENABLED"' not in json.dumps(template)
        assert "MapPublicIpOnLaunch" not in json.dumps(template)


def test_stop_timeout_leaves_gunicorn_its_graceful_timeout(configurations):
    for (env, name), document in configurations.items():
        if name == "service":
            values = document["Parameters"]
            assert int(values["GunicornTimeoutSeconds"]) < int(values["StopTimeoutSeconds"]) <= 120, env
    assert inputs.INPUTS["StopTimeoutSeconds"].max_value == 120


def test_the_load_balancer_idle_timeout_follows_the_parameter(layer):
    # Its relation to gunicorn's timeout is a params check (tests/test_params.py).
    # https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-troubleshooting.html
    (lb,) = resources_of_type(layer["alb"], "AWS::ElasticLoadBalancingV2::LoadBalancer").values()
    attributes = {a["Key"]: a["Value"] for a in lb["Properties"]["LoadBalancerAttributes"]}
    assert attributes["idle_timeout.timeout_seconds"] == {"Ref": "IdleTimeoutSeconds"}


def test_gunicorn_timeouts_follow_the_parameter(layer):
    command = container(layer)["Command"]
    assert command[command.index("--timeout") + 1] == {"Fn::Sub": "${GunicornTimeoutSeconds}"}
    assert command[command.index("--graceful-timeout") + 1] == {"Fn::Sub": "${GunicornTimeoutSeconds}"}
    assert container(layer)["StopTimeout"] == {"Ref": "StopTimeoutSeconds"}


def test_tls_policy_is_a_recommended_one(layer, configurations):
    allowed = layer["alb"]["Parameters"]["TlsPolicy"]["AllowedValues"]
    assert allowed == RECOMMENDED_TLS_POLICIES
    assert all("TLS13" in policy for policy in allowed)
    for (env, name), document in configurations.items():
        if name == "alb":
            assert document["Parameters"]["TlsPolicy"] in RECOMMENDED_TLS_POLICIES, env


def test_two_subnets_per_tier(layer, configurations):
    for name in ("PublicSubnetIds", "PrivateSubnetIds"):
        assert len(inputs.INPUTS[name].default.split(",")) == 2
    for (env, name), document in configurations.items():
        for key in ("PublicSubnetIds", "PrivateSubnetIds"):
            if key in document["Parameters"]:
                subnets = document["Parameters"][key].split(",")
                assert len(subnets) == len(set(subnets)) == 2, (env, name, key)


def test_scaling(layer):
    t = layer["scaling"]
    target = only(t, "AWS::ApplicationAutoScaling::ScalableTarget")
    assert target["ScalableDimension"] == "ecs:service:DesiredCount"
    assert target["ResourceId"] == {"Fn::Sub": "service/${ServiceClusterName}/${ServiceName}"}
    assert (default(t, target["MinCapacity"]), default(t, target["MaxCapacity"])) == (1, 4)
    policies = {
        p["Properties"]["TargetTrackingScalingPolicyConfiguration"]["PredefinedMetricSpecification"]["PredefinedMetricType"]: p[
            "Properties"
        ]["TargetTrackingScalingPolicyConfiguration"]
        for p in resources_of_type(t, "AWS::ApplicationAutoScaling::ScalingPolicy").values()
    }
    cpu, memory = policies["ECSServiceAverageCPUUtilization"], policies["ECSServiceAverageMemoryUtilization"]
    assert (default(t, cpu["TargetValue"]), default(t, memory["TargetValue"])) == (70, 80)
    for policy in (cpu, memory):
        assert (default(t, policy["ScaleOutCooldown"]), default(t, policy["ScaleInCooldown"])) == (180, 300)


def test_no_environment_specific_literal_in_templates(layer):
    """Ids, account numbers and names live in params; templates only carry them as defaults."""
    for name, template in layer.items():
        body = json.dumps({k: v for k, v in template.items() if k not in ("Parameters", "Mappings")})
        for needle in ("vpc-", "subnet-", "sg-", "123456789012", "startupwebapp.com", "startupwebapp-cluster", "arn:aws:"):
            assert needle not in body, (name, needle)


def alarms_of(template):
    return {
        r["Properties"]["AlarmName"]["Fn::Sub"]: r["Properties"] for r in resources_of_type(template, "AWS::CloudWatch::Alarm").values()
    }


def test_release_alarms_roll_a_bad_release_back(layer):
    t = layer["release-alarms"]
    alarms = alarms_of(t)
    assert set(alarms) == {"${NamePrefix}-target-5xx", "${NamePrefix}-unhealthy-hosts"}
    target_5xx = alarms["${NamePrefix}-target-5xx"]
    assert (target_5xx["MetricName"], target_5xx["Statistic"]) == ("HTTPCode_Target_5XX_Count", "Sum")
    assert default(t, target_5xx["Threshold"]) == 10 and default(t, target_5xx["EvaluationPeriods"]) == 3
    # Both target groups: after a blue/green release the tasks serve from either.
    assert target_5xx["Dimensions"] == [{"Name": "LoadBalancer", "Value": {"Ref": "LoadBalancerFullName"}}]
    unhealthy = alarms["${NamePrefix}-unhealthy-hosts"]
    assert unhealthy["Threshold"] == 1 and unhealthy["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert watched_target_groups(unhealthy) == {
        "shifting": {
            ("UnHealthyHostCount", "Maximum", "TargetGroupFullName"),
            ("UnHealthyHostCount", "Maximum", "AlternateTargetGroupFullName"),
        },
        "rolling": {("UnHealthyHostCount", "Maximum", "TargetGroupFullName")},
    }
    for alarm in alarms.values():
        assert alarm["AlarmActions"] == [{"Ref": "AlertTopic"}]
        assert "Look first at" in alarm["AlarmDescription"]
    assert t["Outputs"]["DeploymentAlarmNames"]["Value"] == {"Fn::Join": [",", [{"Ref": "Target5xxAlarm"}, {"Ref": "UnhealthyHostsAlarm"}]]}
    topic = only(t, "AWS::SNS::Topic")
    assert topic["KmsMasterKeyId"] == {"Ref": "AlertTopicKey"}
    key_statements = only(t, "AWS::KMS::Key")["KeyPolicy"]["Statement"]
    assert any(s["Principal"] == {"Service": "cloudwatch.amazonaws.com"} for s in key_statements)
    subscriptions = resources_of_type(t, "AWS::SNS::Subscription")
    assert len(subscriptions) == 3 and all(s["Condition"].startswith("HasAlertEmail") for s in subscriptions.values())


def watched_target_groups(alarm) -> dict:
    """{"shifting": ..., "rolling": ...}: (metric, statistic, target-group parameter) of each branch of an
    alarm on the target groups that serve: the sum over both when releases shift traffic, the primary alone
    under ROLLING."""
    condition, shifting, rolling = alarm["Metrics"]["Fn::If"]
    assert condition == "ShiftsTraffic"
    (expression,) = [q["Expression"] for q in shifting if q.get("ReturnData")]
    assert expression == " + ".join(f"FILL({q['Id']}, 0)" for q in shifting if "MetricStat" in q)
    (alone,) = rolling
    assert alone["ReturnData"] is True and alone["Id"] == "primary"

    def read(queries):
        found = set()
        for q in queries:
            if "MetricStat" not in q:
                continue
            dimensions = {d["Name"]: d["Value"] for d in q["MetricStat"]["Metric"]["Dimensions"]}
            assert dimensions["LoadBalancer"] == {"Ref": "LoadBalancerFullName"}
            found.add((q["MetricStat"]["Metric"]["MetricName"], q["MetricStat"]["Stat"], dimensions["TargetGroup"]["Ref"]))
        return found

    return {"shifting": read(shifting), "rolling": read(rolling)}


def test_service_deployment_rolls_back_on_the_release_alarms(layer):
    deployment = only(layer["service"], "AWS::ECS::Service")["DeploymentConfiguration"]
    assert deployment["Alarms"] == {"AlarmNames": {"Ref": "DeploymentAlarmNames"}, "Enable": True, "Rollback": True}
    assert templates.WIRING[("service", "DeploymentAlarmNames")] == ("release-alarms", "DeploymentAlarmNames")
    assert templates.ROLLBACK_TRIGGERS["service"][0] == "release-alarms"


def test_operating_alarms(layer):
    t = layer["alarms"]
    alarms = alarms_of(t)
    assert set(alarms) == {
        "${NamePrefix}-alb-5xx",
        "${NamePrefix}-no-healthy-host",
        "${NamePrefix}-slow-responses",
        "${NamePrefix}-cpu-saturated",
        "${NamePrefix}-memory-saturated",
        "${NamePrefix}-tasks-below-desired",
    }
    assert alarms["${NamePrefix}-slow-responses"]["ExtendedStatistic"] == "p99"
    assert default(t, alarms["${NamePrefix}-slow-responses"]["Threshold"]) == 2
    no_healthy = alarms["${NamePrefix}-no-healthy-host"]
    assert no_healthy["TreatMissingData"] == "breaching"
    assert (no_healthy["ComparisonOperator"], no_healthy["Threshold"]) == ("LessThanThreshold", 1)
    assert watched_target_groups(no_healthy) == {
        "shifting": {
            ("HealthyHostCount", "Minimum", "TargetGroupFullName"),
            ("HealthyHostCount", "Minimum", "AlternateTargetGroupFullName"),
        },
        "rolling": {("HealthyHostCount", "Minimum", "TargetGroupFullName")},
    }
    assert alarms["${NamePrefix}-slow-responses"]["Dimensions"] == [{"Name": "LoadBalancer", "Value": {"Ref": "LoadBalancerFullName"}}]
    saturated = {q["Id"]: q for q in alarms["${NamePrefix}-cpu-saturated"]["Metrics"]}
    assert saturated["saturated"]["Expression"] == {"Fn::Sub": "IF(usage > ${SaturationPercent} AND tasks >= ${MaxCapacity}, 1, 0)"}
    assert saturated["usage"]["MetricStat"]["Metric"]["MetricName"] == "CPUUtilization"
    assert default(t, {"Ref": "SaturationPercent"}) == 85
    below = {q["Id"]: q for q in alarms["${NamePrefix}-tasks-below-desired"]["Metrics"]}
    assert below["missing"]["Expression"] == "desired - running"
    for alarm in alarms.values():
        assert alarm["AlarmActions"] == [{"Ref": "AlertTopicArn"}] and alarm["AlarmDescription"]


def test_the_saturation_alarms_can_fire_at_every_saturation_percent_the_template_takes(layer):
    """The service's Average CPU or memory use never passes 100 on Fargate (a task's own size caps it; templates/inputs.py
    cites the pages): at the largest SaturationPercent the template takes, usage at 100 and the maximum task count alarm."""
    t = layer["alarms"]
    highest = t["Parameters"]["SaturationPercent"]["MaxValue"]
    comparisons = {">": operator.gt, ">=": operator.ge}
    for name in ("CpuSaturatedAlarm", "MemorySaturatedAlarm"):
        (expression,) = [q["Expression"]["Fn::Sub"] for q in t["Resources"][name]["Properties"]["Metrics"] if "Expression" in q]
        (usage,) = re.fullmatch(r"IF\(usage (>=?) \$\{SaturationPercent\} AND tasks >= \$\{MaxCapacity\}, 1, 0\)", expression).groups()
        assert comparisons[usage](100, highest), (name, expression, highest)


def test_waf(layer):
    t = layer["waf"]
    acl = only(t, "AWS::WAFv2::WebACL")
    assert acl["Scope"] == "REGIONAL" and acl["DefaultAction"] == {"Allow": {}}
    rules = {r["Name"]: r for r in acl["Rules"]}
    rate = rules.pop("RateLimitPerIp")
    assert rate["Statement"]["RateBasedStatement"] == {"Limit": {"Ref": "WafRateLimit"}, "AggregateKeyType": "IP"}
    assert rate["Action"] == {"Fn::If": ["CountOnly", {"Count": {}}, {"Block": {}}]}
    assert sorted(rules) == [
        "AWSManagedRulesAmazonIpReputationList",
        "AWSManagedRulesCommonRuleSet",
        "AWSManagedRulesKnownBadInputsRuleSet",
        "AWSManagedRulesSQLiRuleSet",
    ]
    assert rules["AWSManagedRulesKnownBadInputsRuleSet"]["OverrideAction"] == {"None": {}}
    # the console says which rule group blocks whatever WafCountOnly says: those whose action is fixed
    fixed = {name for name, rule in rules.items() if rule["OverrideAction"] == {"None": {}}}
    assert fixed and all(name in t["Parameters"]["WafCountOnly"]["Description"] for name in fixed)
    assert rules["AWSManagedRulesSQLiRuleSet"]["OverrideAction"] == {"Fn::If": ["CountOnly", {"Count": {}}, {"None": {}}]}
    assert all(r["VisibilityConfig"]["CloudWatchMetricsEnabled"] for r in acl["Rules"])
    assert only(t, "AWS::WAFv2::WebACLAssociation")["ResourceArn"] == {"Ref": "LoadBalancerArn"}
    assert only(t, "AWS::Logs::LogGroup")["LogGroupName"] == {"Fn::Sub": "aws-waf-logs-${NamePrefix}"}
    logging = only(t, "AWS::WAFv2::LoggingConfiguration")
    assert logging["LogDestinationConfigs"][0]["Fn::Sub"].endswith(":log-group:${LogGroup}")
    assert "waf" in templates.OPTIONAL_LAYERS


def test_the_inputs_that_replace_the_service_are_those_behind_its_create_only_properties(layer):
    """The deployer sets DesiredCount when one of them changes (a new service): the list is what the
    resource schema's createOnlyProperties of AWS::ECS::Service read from the template's parameters."""
    from templates.validation import resource_schemas

    schema = resource_schemas().get_resource_schema("us-east-1", "AWS::ECS::Service").schema
    create_only = {pointer.split("/")[2] for pointer in schema["createOnlyProperties"]}
    (service,) = resources_of_type(layer["service"], "AWS::ECS::Service").values()
    read = set()
    for name, value in service["Properties"].items():
        if name in create_only:
            text = json.dumps(value)
            read |= set(re.findall(r'"Ref": "(\w+)"', text)) | set(re.findall(r"\$\{(\w+)\}", text))
    assert read == set(inputs.SERVICE_REPLACED_BY), (create_only, read)


def test_every_layer_stays_within_what_describe_stack_resources_lists(layer):
    """The deployer reads a stack's resources with DescribeStackResources (the ids a replacement kept,
    what destroy retains, the log groups a rename would take), which lists "Only the first 100
    resources": a layer of more must move those reads to ListStackResources first.
    https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_DescribeStackResources.html"""
    assert {name: len(template["Resources"]) for name, template in layer.items() if len(template["Resources"]) >= 100} == {}


def test_each_release_wait_says_in_the_console_what_the_waits_may_add_up_to(layer):
    """Their MaxValues are AWS's; make templates refuses a release whose waits add up to more
    (templates/params.py): an ops reviewer in the console sees that bound too."""
    from templates.common import MOST_RELEASE_WAIT_MINUTES

    waits = [("service", name) for name in ("BakeTimeMinutes", "CanaryBakeTimeMinutes", "LinearStepBakeTimeMinutes", "TestPauseMinutes")]
    for each, name in [*waits, ("release-alarms", "RollbackMonitoringMinutes")]:  # the alarms' watch counts in the bound too
        description = layer[each]["Parameters"][name]["Description"]
        assert f"at most {MOST_RELEASE_WAIT_MINUTES} minutes in all (make templates refuses more)" in description, (each, name)


def test_the_alb_security_groups_rules_are_tcp_so_their_ports_hold(layer):
    # "specifying -1 or a protocol number other than tcp, udp, icmp, or icmpv6 allows traffic on all
    # ports, regardless of any port range you specify": with -1 the container-port bounds mean nothing.
    # https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-properties-ec2-securitygroup-ingress.html
    t = layer["alb"]
    sg = only(t, "AWS::EC2::SecurityGroup")
    rules = [*sg["SecurityGroupIngress"], *sg["SecurityGroupEgress"]]
    rules += [r["Properties"] for r in resources_of_type(t, "AWS::EC2::SecurityGroupIngress").values()]
    assert len(rules) == 5 and {r["IpProtocol"] for r in rules} == {"tcp"}, rules
    # The rules name IPv4 ranges only (CidrIp): the load balancer answers on IPv4 alone.
    assert not any("CidrIpv6" in r for r in rules)
    assert only(t, "AWS::ElasticLoadBalancingV2::LoadBalancer")["IpAddressType"] == "ipv4"


def test_the_access_log_bucket_takes_what_the_load_balancer_writes(layer):
    # "The only server-side encryption option that's supported is Amazon S3-managed keys (SSE-S3)"; regions
    # opened after August 2022 deliver from the log-delivery service principal, older ones from their ELB account.
    # https://docs.aws.amazon.com/elasticloadbalancing/latest/application/enable-access-logging.html
    t = layer["alb"]
    bucket = only(t, "AWS::S3::Bucket")
    (rule,) = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}
    mapped, marker = t["Conditions"]["LogsFromServicePrincipal"]["Fn::Equals"]
    assert mapped == {"Fn::FindInMap": ["ElbLogAccount", {"Ref": "AWS::Region"}, "AccountId"]}
    accounts = {region: row["AccountId"] for region, row in t["Mappings"]["ElbLogAccount"].items()}
    without_account = {region for region, account in accounts.items() if not re.fullmatch(r"\d{12}", account)}
    assert without_account and without_account == {region for region, account in accounts.items() if account == marker}


def test_access_logs_are_kept_as_long_as_the_parameter_says_and_no_longer(layer):
    # Versioned (a log overwritten or deleted stays a noncurrent version), and whatever expires is gone a
    # day later, so that the retention the environment sets is the retention it gets.
    t = layer["alb"]
    bucket = only(t, "AWS::S3::Bucket")
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    (rule,) = bucket["LifecycleConfiguration"]["Rules"]
    assert rule["Status"] == "Enabled" and "Prefix" not in rule and "Filter" not in rule  # every object
    assert rule["ExpirationInDays"] == {"Ref": "AccessLogRetentionDays"}
    assert rule["NoncurrentVersionExpirationInDays"] <= 1
    assert rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] <= 1


def test_both_target_groups_judge_health_as_the_review_computes_it(layer):
    # The review's timings (scripts/review/timing.py) read the unhealthy threshold and the timeout from inputs.
    t = layer["alb"]
    for group in resources_of_type(t, "AWS::ElasticLoadBalancingV2::TargetGroup").values():
        props = group["Properties"]
        assert props["HealthCheckEnabled"] is True and props["HealthCheckProtocol"] == "HTTP"
        assert props["UnhealthyThresholdCount"] == inputs.UNHEALTHY_THRESHOLD_COUNT
        assert props["HealthCheckTimeoutSeconds"] == inputs.HEALTH_CHECK_TIMEOUT_SECONDS
        assert props["HealthyThresholdCount"] == {"Ref": "HealthyThresholdCount"}


def test_the_alb_outputs_name_the_resources_the_next_layers_and_make_verify_read(layer):
    t = layer["alb"]
    outputs = {name: o["Value"] for name, o in t["Outputs"].items()}
    listeners = {
        r["Properties"]["Port"]: (name, r["Properties"])
        for name, r in resources_of_type(t, "AWS::ElasticLoadBalancingV2::Listener").items()
        if "Condition" not in r
    }
    https_name, https = listeners[443]
    # The service registers in TargetGroupArn: under ROLLING it must be the one the HTTPS listener serves.
    (forward,) = https["DefaultActions"]
    assert outputs["TargetGroupArn"] == forward["TargetGroupArn"]
    primary = forward["TargetGroupArn"]["Ref"]
    (alternate,) = set(resources_of_type(t, "AWS::ElasticLoadBalancingV2::TargetGroup")) - {primary}
    assert outputs["AlternateTargetGroupArn"] == {"Ref": alternate}
    assert outputs["HttpsListenerArn"] == {"Ref": https_name}
    # The CloudWatch dimensions are the attributes named for them ("app/<name>/<id>", "targetgroup/<name>/<id>"):
    # https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-cloudwatch-metrics.html
    (balancer,) = resources_of_type(t, "AWS::ElasticLoadBalancingV2::LoadBalancer")
    assert outputs["LoadBalancerFullName"] == {"Fn::GetAtt": [balancer, "LoadBalancerFullName"]}
    assert outputs["LoadBalancerArn"] == {"Ref": balancer}
    assert outputs["TargetGroupFullName"] == {"Fn::GetAtt": [primary, "TargetGroupFullName"]}
    assert outputs["AlternateTargetGroupFullName"] == {"Fn::GetAtt": [alternate, "TargetGroupFullName"]}
    # make verify reaches the service where the alias record points, over HTTPS, and the test listener on its port.
    record = only(t, "AWS::Route53::RecordSet")["Name"]["Fn::Sub"]
    assert outputs["ServiceHost"] == {"Fn::Sub": record.removesuffix(".")}
    assert outputs["ServiceUrl"] == {"Fn::Sub": "https://" + record.removesuffix(".")}
    (test_listener,) = [r["Properties"] for r in resources_of_type(t, "AWS::ElasticLoadBalancingV2::Listener").values() if "Condition" in r]
    assert outputs["TestListenerPort"] == {"Fn::Sub": f"${{{test_listener['Port']['Ref']}}}"}


def test_the_canary_and_linear_settings_go_with_their_strategies(layer):
    t = layer["service"]
    allowed = t["Parameters"]["DeploymentStrategy"]["AllowedValues"]
    deployment = only(t, "AWS::ECS::Service")["DeploymentConfiguration"]
    for key, strategy in (("CanaryConfiguration", "CANARY"), ("LinearConfiguration", "LINEAR")):
        assert strategy in allowed
        condition = deployment[key]["Fn::If"][0]
        assert t["Conditions"][condition] == {"Fn::Equals": [{"Ref": "DeploymentStrategy"}, strategy]}, key
    # Both listener rules are needed: a shifting service without either is refused before ECS sees it.
    (rule,) = t["Rules"].values()
    assert rule["RuleCondition"] == t["Conditions"]["ShiftsTraffic"]
    (balancer,) = only(t, "AWS::ECS::Service")["LoadBalancers"]
    given = balancer["AdvancedConfiguration"]["Fn::If"][1]
    needed = [given["ProductionListenerRule"], given["TestListenerRule"]]
    assert rule["Assertions"][0]["Assert"] == {"Fn::And": [{"Fn::Not": [{"Fn::Equals": [ref, ""]}]} for ref in needed]}


def test_the_task_roles_trust_this_accounts_ecs_tasks_only_and_every_role_has_the_boundary(layer):
    # aws:SourceAccount keeps another account's tasks from assuming them (the confused deputy):
    # https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-iam-roles.html
    from templates.common import role_boundary_arn

    t = layer["service"]
    roles = resources_of_type(t, "AWS::IAM::Role")
    assert set(roles) >= {"ExecutionRole", "TaskRole", "InfrastructureRole"}
    for name, role in roles.items():
        assert role["Properties"]["PermissionsBoundary"] == role_boundary_arn().to_dict(), name
    for name in ("ExecutionRole", "TaskRole"):
        (statement,) = roles[name]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        assert statement["Principal"] == {"Service": "ecs-tasks.amazonaws.com"}, name
        assert statement["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}, name


def test_the_web_container_is_essential_and_logs_in_the_stacks_region(layer):
    # A task stops when an essential container stops; the init container alone is not one, so the web
    # container must be, or a crashed web container leaves a task that serves nothing running.
    # https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task_definition_parameters.html
    definitions = only(layer["service"], "AWS::ECS::TaskDefinition")["ContainerDefinitions"]
    assert [d["Name"] for d in definitions if d["Essential"]] == ["web"]
    for d in definitions:
        assert d["LogConfiguration"]["Options"]["awslogs-region"] == {"Ref": "AWS::Region"}, d["Name"]


def test_the_service_outputs_name_what_make_verify_and_the_tools_read(layer):
    t = layer["service"]
    outputs = {name: o["Value"] for name, o in t["Outputs"].items()}
    (service,) = resources_of_type(t, "AWS::ECS::Service")
    (task_definition,) = resources_of_type(t, "AWS::ECS::TaskDefinition")
    assert t["Resources"][service]["Properties"]["TaskDefinition"] == {"Ref": task_definition}
    assert outputs["TaskDefinitionArn"] == {"Ref": task_definition}  # the revision make verify expects running
    assert outputs["ServiceName"] == {"Fn::GetAtt": [service, "Name"]} and outputs["ServiceArn"] == {"Ref": service}
    assert outputs["LogGroupName"] == container(layer)["LogConfiguration"]["Options"]["awslogs-group"]
    assert outputs["ContainerName"] == t["Resources"][service]["Properties"]["LoadBalancers"][0]["ContainerName"]


def test_the_cert_dns_outputs_the_alb_reads_are_its_certificate_and_its_zone(layer):
    # Ref of an AWS::CertificateManager::Certificate is its ARN, which the HTTPS listener takes:
    # https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-certificatemanager-certificate.html#aws-resource-certificatemanager-certificate-return-values
    t = layer["cert-dns"]
    outputs = {name: o["Value"] for name, o in t["Outputs"].items()}
    (certificate,) = resources_of_type(t, "AWS::CertificateManager::Certificate")
    props = t["Resources"][certificate]["Properties"]
    assert outputs["CertificateArn"] == {"Ref": certificate}
    (option,) = props["DomainValidationOptions"]
    assert outputs["HostedZoneId"] == option["HostedZoneId"]  # the zone the alias record goes in: the one that validates
    assert outputs["DomainName"] == {"Ref": "DomainName"} and {"Ref": "DomainName"} in props["SubjectAlternativeNames"]  # the apex
    read = {output for (_, _), (upstream, output) in templates.WIRING.items() if upstream == "cert-dns"}
    assert read and read <= set(outputs)


def test_waf_count_only_mode_is_the_parameter_saying_true_and_blocking_is_the_default(layer):
    t = layer["waf"]
    parameter = t["Parameters"]["WafCountOnly"]
    assert parameter["Default"] == "false" and set(parameter["AllowedValues"]) == {"true", "false"}
    assert t["Conditions"]["CountOnly"] == {"Fn::Equals": [{"Ref": "WafCountOnly"}, "true"]}


def test_waf_rules_have_distinct_priorities_the_rate_limit_first(layer):
    # WAF evaluates rules in ascending Priority and refuses a web ACL where two share one:
    # https://docs.aws.amazon.com/waf/latest/developerguide/web-acl-processing-order.html
    from templates import waf

    rules = only(layer["waf"], "AWS::WAFv2::WebACL")["Rules"]
    priorities = [r["Priority"] for r in rules]
    assert len(set(priorities)) == len(priorities)
    assert [r["Name"] for r in sorted(rules, key=lambda r: r["Priority"])] == ["RateLimitPerIp", *waf.MANAGED_RULE_GROUPS]


def test_waf_managed_rule_groups_are_amazons_and_its_logs_keep_no_credentials(layer):
    # AWS managed rule groups have the vendor name AWS:
    # https://docs.aws.amazon.com/waf/latest/developerguide/aws-managed-rule-groups-list.html
    t = layer["waf"]
    for rule in only(t, "AWS::WAFv2::WebACL")["Rules"]:
        if "ManagedRuleGroupStatement" in rule["Statement"]:
            assert rule["Statement"]["ManagedRuleGroupStatement"] == {"VendorName": "AWS", "Name": rule["Name"]}
    # Request logs hold the headers unless redacted: the session cookie and any credentials must not land in them.
    # https://docs.aws.amazon.com/waf/latest/developerguide/logging-management.html
    redacted = {f["SingleHeader"]["Name"].lower() for f in only(t, "AWS::WAFv2::LoggingConfiguration")["RedactedFields"]}
    assert {"authorization", "cookie"} <= redacted


def test_the_two_scaling_policies_are_distinct_target_tracking_policies_that_scale_in_too(layer):
    # PutScalingPolicy with a policy name the scalable target already has updates that policy:
    # two resources of one name would leave one policy, tracking whichever metric was written last.
    # https://docs.aws.amazon.com/autoscaling/application/APIReference/API_PutScalingPolicy.html
    t = layer["scaling"]
    (target,) = resources_of_type(t, "AWS::ApplicationAutoScaling::ScalableTarget")
    assert t["Resources"][target]["Properties"]["ServiceNamespace"] == "ecs"
    policies = [p["Properties"] for p in resources_of_type(t, "AWS::ApplicationAutoScaling::ScalingPolicy").values()]
    names = [json.dumps(p["PolicyName"]) for p in policies]
    assert len(policies) == 2 and len(set(names)) == len(names)
    for policy in policies:
        assert policy["PolicyType"] == "TargetTrackingScaling" and policy["ScalingTargetId"] == {"Ref": target}
        # Scale-in below DesiredCount, as the module says: DisableScaleIn left to its default, false.
        # https://docs.aws.amazon.com/autoscaling/application/APIReference/API_TargetTrackingScalingPolicyConfiguration.html
        assert policy["TargetTrackingScalingPolicyConfiguration"].get("DisableScaleIn", False) is False


def every_alarm(layer):
    """(layer, AlarmName's Fn::Sub) -> the alarm's properties, of both alarm layers."""
    return {(name, sub): props for name in ("alarms", "release-alarms") for sub, props in alarms_of(layer[name]).items()}


def test_every_alarm_tells_the_alert_topic_when_it_is_raised_and_when_it_clears(layer):
    topics = {"alarms": {"Ref": "AlertTopicArn"}, "release-alarms": {"Ref": "AlertTopic"}}
    assert templates.WIRING[("alarms", "AlertTopicArn")] == ("release-alarms", "AlertTopicArn")
    # Ref of an AWS::SNS::Topic is its ARN:
    # https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-sns-topic.html#aws-resource-sns-topic-return-values
    assert layer["release-alarms"]["Outputs"]["AlertTopicArn"]["Value"] == topics["release-alarms"]
    for (name, alarm), props in every_alarm(layer).items():
        assert props["AlarmActions"] == props["OKActions"] == [topics[name]], alarm


def test_every_alarm_is_raised_only_when_all_its_evaluation_periods_are_bad(layer):
    # "N out of N": one bad minute alone raises none (and rolls no release back).
    # https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/AlarmThatSendsEmail.html#alarm-evaluation
    periods = {}
    for (_, alarm), props in every_alarm(layer).items():
        assert props["DatapointsToAlarm"] == props["EvaluationPeriods"], alarm
        periods[alarm] = props["EvaluationPeriods"]["Ref"]
    assert periods.pop("${NamePrefix}-cpu-saturated") == periods.pop("${NamePrefix}-memory-saturated") == "SaturationPeriods"
    assert periods.pop("${NamePrefix}-tasks-below-desired") == "TasksBelowDesiredMinutes"
    assert set(periods.values()) == {"BadPeriodsToAlarm"}
    # Minutes: the task-count queries are one minute each.
    below = alarms_of(layer["alarms"])["${NamePrefix}-tasks-below-desired"]
    assert {q["MetricStat"]["Period"] for q in below["Metrics"] if "MetricStat" in q} == {60}
    # The load balancer's metrics of both layers are read per AlarmPeriodSeconds.
    for (_, alarm), props in every_alarm(layer).items():
        if props.get("Namespace") == "AWS/ApplicationELB":
            assert props["Period"] == {"Ref": "AlarmPeriodSeconds"}, alarm


def test_the_load_balancers_metrics_in_metric_math_are_read_per_alarm_period_seconds(layer):
    # The target groups' metrics (common.target_groups) are queries of metric math, each with its own period
    # (MetricStat.Period: https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_MetricStat.html): the
    # AlarmPeriodSeconds a params file sets must reach them too (mutation audit Z6, mutant: their period 60 whatever
    # AlarmPeriodSeconds says)
    from templates.template_reads import items

    queried = []
    for name, t in layer.items():
        for alarm in resources_of_type(t, "AWS::CloudWatch::Alarm").values():
            for key, value in items(alarm["Properties"].get("Metrics", [])):
                if key == "MetricStat" and value["Metric"]["Namespace"] == "AWS/ApplicationELB":
                    queried.append((name, value))
    assert {name for name, _ in queried} == {"alarms", "release-alarms"}
    for name, stat in queried:
        assert stat["Period"] == {"Ref": "AlarmPeriodSeconds"}, (name, stat)


def breaches(props, value, threshold) -> bool:
    """Whether a data point of value breaches the alarm, by its ComparisonOperator.
    https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricAlarm.html"""
    return {
        "GreaterThanOrEqualToThreshold": value >= threshold,
        "GreaterThanThreshold": value > threshold,
        "LessThanThreshold": value < threshold,
        "LessThanOrEqualToThreshold": value <= threshold,
    }[props["ComparisonOperator"]]


def test_every_alarm_is_raised_by_its_bad_value_and_not_by_a_good_one(layer):
    """(threshold input or literal, a bad value, a good one), from what each alarm's description says; the
    metric math ones return 1 for bad and 0 for good (IF(...), desired - running)."""
    said = {
        ("alarms", "${NamePrefix}-alb-5xx"): ("Elb5xxThreshold", lambda th: th, 0),
        ("alarms", "${NamePrefix}-slow-responses"): ("ResponseTimeP99Seconds", lambda th: th + 0.5, 0.1),
        ("alarms", "${NamePrefix}-no-healthy-host"): (1, lambda th: 0, 1),
        ("alarms", "${NamePrefix}-cpu-saturated"): (1, lambda th: 1, 0),
        ("alarms", "${NamePrefix}-memory-saturated"): (1, lambda th: 1, 0),
        ("alarms", "${NamePrefix}-tasks-below-desired"): (0, lambda th: 1, 0),
        ("release-alarms", "${NamePrefix}-target-5xx"): ("Target5xxThreshold", lambda th: th, 0),
        ("release-alarms", "${NamePrefix}-unhealthy-hosts"): (1, lambda th: 1, 0),
    }
    alarms = every_alarm(layer)
    assert set(alarms) == set(said)
    for key, (threshold, bad, good) in said.items():
        props = alarms[key]
        if isinstance(threshold, str):
            assert props["Threshold"] == {"Ref": threshold}, key
            parameter = layer[key[0]]["Parameters"][threshold]
            values = [int(parameter["Default"]), int(parameter.get("MinValue", parameter["Default"]))]
        else:
            assert props["Threshold"] == threshold, key
            values = [threshold]
        for value in values:
            assert breaches(props, bad(value), value) and not breaches(props, good, value), (key, value)


def test_alarms_whose_metrics_are_absent_when_all_is_well_stay_quiet_without_data(layer):
    # The load balancer reports 5xx counts and response times only for periods with such answers or any
    # requests, and a cluster without Container Insights no task counts; raised without data, these alarms
    # would ring (and the release alarms roll every release back) in any quiet hour. No healthy host alone
    # is raised without data: HealthyHostCount missing means nothing healthy is reported.
    # https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-cloudwatch-metrics.html
    # https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/AlarmThatSendsEmail.html#alarms-and-missing-data
    missing = {alarm: props.get("TreatMissingData", "missing") for (_, alarm), props in every_alarm(layer).items()}
    assert missing.pop("${NamePrefix}-no-healthy-host") == "breaching"
    assert set(missing.values()) == {"notBreaching"}


def test_each_alarm_reads_the_metrics_its_description_names(layer):
    # The two 5xx alarms split the blame: the load balancer's own answers, the tasks' answers (a release's).
    # https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-cloudwatch-metrics.html
    alarms = every_alarm(layer)
    counts = {
        ("alarms", "${NamePrefix}-alb-5xx"): "HTTPCode_ELB_5XX_Count",
        ("release-alarms", "${NamePrefix}-target-5xx"): "HTTPCode_Target_5XX_Count",
    }
    for key, metric in counts.items():
        assert (alarms[key]["MetricName"], alarms[key]["Statistic"]) == (metric, "Sum"), key  # a count per period
    service = [{"Name": "ClusterName", "Value": {"Ref": "ServiceClusterName"}}, {"Name": "ServiceName", "Value": {"Ref": "ServiceName"}}]
    for sub in ("${NamePrefix}-cpu-saturated", "${NamePrefix}-memory-saturated", "${NamePrefix}-tasks-below-desired"):
        queries = {q["Id"]: q for q in alarms[("alarms", sub)]["Metrics"]}
        for q in queries.values():
            if "MetricStat" in q:
                assert q["MetricStat"]["Metric"]["Dimensions"] == service, (sub, q["Id"])
        if "tasks" in queries:
            assert queries["tasks"]["MetricStat"]["Metric"]["MetricName"] == "RunningTaskCount"
    below = {
        q["Id"]: q["MetricStat"]["Metric"]["MetricName"]
        for q in alarms[("alarms", "${NamePrefix}-tasks-below-desired")]["Metrics"]
        if "MetricStat" in q
    }
    assert below == {"desired": "DesiredTaskCount", "running": "RunningTaskCount"}
    memory = {q["Id"]: q for q in alarms[("alarms", "${NamePrefix}-memory-saturated")]["Metrics"]}
    assert memory["usage"]["MetricStat"]["Metric"]["MetricName"] == "MemoryUtilization"


def test_the_rollback_triggers_are_the_arns_of_the_alarms_the_service_watches(layer):
    # A rollback trigger names its alarm by ARN; Fn::GetAtt Arn of an alarm is that, Ref its name:
    # https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_RollbackTrigger.html
    # https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-cloudwatch-alarm.html#aws-resource-cloudwatch-alarm-return-values
    t = layer["release-alarms"]
    outputs = {name: o["Value"] for name, o in t["Outputs"].items()}
    _, arns_output, minutes_output = templates.ROLLBACK_TRIGGERS["service"]
    separator, names = outputs["DeploymentAlarmNames"]["Fn::Join"]
    assert outputs[arns_output] == {"Fn::Join": [separator, [{"Fn::GetAtt": [ref["Ref"], "Arn"]} for ref in names]]}
    assert outputs[minutes_output] == {"Fn::Sub": "${RollbackMonitoringMinutes}"}


def test_cloudwatch_may_use_the_alert_topics_key_to_publish(layer):
    # CloudWatch needs kms:Decrypt and kms:GenerateDataKey* on an encrypted topic's key:
    # https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html#compatibility-with-aws-services
    statements = only(layer["release-alarms"], "AWS::KMS::Key")["KeyPolicy"]["Statement"]
    (publishes,) = [s for s in statements if s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}]
    assert publishes["Effect"] == "Allow" and sorted(publishes["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey*"]


def evaluate(node, parameters, conditions):
    """The few intrinsic functions the subscriptions use, as CloudFormation evaluates them."""
    if isinstance(node, list):
        return [evaluate(n, parameters, conditions) for n in node]
    if not isinstance(node, dict):
        return node
    ((function, argument),) = node.items()
    if function == "Ref":
        return parameters[argument]
    if function == "Condition":
        return conditions[argument]
    if function == "Fn::Sub" and isinstance(argument, str):
        return re.sub(r"\$\{(\w+)\}", lambda m: parameters[m.group(1)], argument)
    args = evaluate(argument, parameters, conditions)
    if function == "Fn::Join":
        return args[0].join(args[1])
    if function == "Fn::Split":
        return args[1].split(args[0])
    if function == "Fn::Select":
        assert 0 <= int(args[0]) < len(args[1]), "Fn::Select out of range: CloudFormation fails the stack"
        return args[1][int(args[0])]
    if function == "Fn::Equals":
        return args[0] == args[1]
    if function == "Fn::Not":
        return not args[0]
    raise AssertionError(f"not evaluated here: {function}")


def test_each_alert_email_given_is_subscribed_once_and_no_empty_one(layer):
    # CloudFormation evaluates every condition, with whichever number of addresses the parameter allows.
    t = layer["release-alarms"]
    most = inputs.INPUTS["AlertEmails"].items[1]
    for count in range(most + 1):
        emails = [f"ops{i}@example.org" for i in range(count)]
        parameters = {"AlertEmails": ",".join(emails)}  # as CloudFormation takes it (a String: inputs.Input.declared_type)
        conditions = {name: evaluate(c, parameters, {}) for name, c in t["Conditions"].items() if name.startswith("HasAlertEmail")}
        subscribed = [
            evaluate(r["Properties"]["Endpoint"], parameters, conditions)
            for r in resources_of_type(t, "AWS::SNS::Subscription").values()
            if conditions[r["Condition"]]
        ]
        assert sorted(subscribed) == emails, count
    for subscription in resources_of_type(t, "AWS::SNS::Subscription").values():
        assert subscription["Properties"]["Protocol"] == "email"
        assert subscription["Properties"]["TopicArn"] == {"Ref": "AlertTopic"}


# From an ops reviewer's walk of the console texts: what a stack's Description and Outputs say it makes.


def test_the_boundary_output_names_the_ci_layers_own_roles_as_not_carrying_it(layer):
    # The Outputs tab said "every role of the layers carries" the boundary, which a reviewer reads as capping the deploy
    # and execution roles of that same stack; they carry none (README, Layers). The policy's own Description says "the
    # layers create" still: create-only in its resource schema, and the policy has a custom name (templates/ci.py).
    t = layer["ci"]
    uncapped = sorted(k for k, r in resources_of_type(t, "AWS::IAM::Role").items() if "PermissionsBoundary" not in r["Properties"])
    assert uncapped, "the ci layer's roles: none without a boundary"
    description = t["Outputs"]["RoleBoundaryArn"]["Description"]
    assert "other layers" in description and all(role in description for role in uncapped), description


# What a reviewer approves on sight of a stack: roles (the IAM capability), KMS keys (billed monthly, kept on
# deletion), and rules added to a security group the stack does not own.
REVIEWED_KINDS = {"AWS::IAM::Role": "role", "AWS::KMS::Key": "key", "AWS::EC2::SecurityGroupIngress": "security group"}


@pytest.mark.parametrize("name", sorted(templates.LAYERS))
def test_the_template_description_names_the_roles_keys_and_other_stacks_security_groups_it_changes(layer, name):
    t = layer[name]
    description = t["Description"]
    # "The value for the description declaration must be a literal string that's between 0 and 1024 bytes in length"
    # https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/template-description-structure.html
    assert len(description.encode()) <= 1024
    owned_groups = set(resources_of_type(t, "AWS::EC2::SecurityGroup"))

    def reviewed(type_, resource):  # a rule on one of the stack's own groups is part of that group
        group = resource["Properties"].get("GroupId")
        return type_ != "AWS::EC2::SecurityGroupIngress" or not (
            isinstance(group, dict) and group.get("Fn::GetAtt", [None])[0] in owned_groups
        )

    made = {
        kind for type_, kind in REVIEWED_KINDS.items() for resource in resources_of_type(t, type_).values() if reviewed(type_, resource)
    }
    assert {kind for kind in made if kind not in description.lower()} == set(), description


def test_the_inputs_ci_shares_with_other_layers_say_what_they_bound_there(layer):
    # templates/inputs.py gives an input one description for every layer: in ci.json DomainName read "Apex domain; the
    # certificate covers it and *.<domain>." though ci makes no certificate; there such inputs only bound what its
    # roles may change.
    ci = layer["ci"]["Parameters"]
    shared = {name for other, t in layer.items() if other != "ci" for name in t.get("Parameters", {}) if name in ci}
    assert shared, "ci shares no input with another layer"
    for name in sorted(shared):
        description = ci[name]["Description"]
        assert "role" in description, f"ci.json {name}: {description!r}"
        assert all(
            t["Parameters"][name]["Description"] != description for other, t in layer.items() if other != "ci" and name in t["Parameters"]
        )


# Review of 6aafcf3 (S6): a list declared a String (inputs.Input.declared_type) refuses "a@x.org, b@y.org", which a
# CommaDelimitedList trimmed; the console's refusal text is all the ops reader has to learn why.
def test_a_list_declared_a_string_says_its_items_are_separated_without_spaces(layer):
    from templates import inputs

    checked = 0
    for name, t in layer.items():
        for parameter_name, parameter in t.get("Parameters", {}).items():
            spec = inputs.INPUTS.get(parameter_name)
            if spec is None or not spec.is_list or parameter["Type"] != "String":
                continue
            checked += 1
            assert parameter["ConstraintDescription"].endswith("separated by commas without spaces"), (name, parameter)
    assert checked, "no list is declared a String"


def declared_in(layer, name) -> list[dict]:
    return [t["Parameters"][name] for t in layer.values() if name in t.get("Parameters", {})]


@pytest.mark.parametrize(
    "name", ["VpcId", "PublicSubnetIds", "PrivateSubnetIds", "BackendSecurityGroupId", "DatabaseSecretArn", "DatabaseName"]
)
def test_the_example_ids_and_the_inputs_that_keep_environments_apart_have_no_default_in_the_console(layer, name):
    # README: a stack made in the console with the example's, or production's, value would share production's
    declared = declared_in(layer, name)
    assert declared and all("Default" not in parameter for parameter in declared), name


def test_keep_running_count_starts_false_and_the_values_a_run_sets_are_grouped_apart_in_the_console(layer):
    # a first create sets DesiredCount (false); the console (generation's Interface metadata) tells a reviewer which values
    # the deployer sets itself, in groups that each hold some
    (keep,) = declared_in(layer, "KeepRunningCount")
    assert (keep["Default"], keep["AllowedValues"]) == ("false", ["true", "false"])
    for name, template in layer.items():
        groups = inputs.console_interface(template.get("Parameters", {}))["ParameterGroups"]
        assert all(group["Parameters"] for group in groups), name  # a group with none is left out
        assert sorted(p for group in groups for p in group["Parameters"]) == sorted(template.get("Parameters", {})), name
    groups = inputs.console_interface(layer["service"]["Parameters"])["ParameterGroups"]
    (each_run,) = [g["Parameters"] for g in groups if g["Label"]["default"].startswith("Set by the deployer at each run")]
    assert each_run == ["ImageTag", "KeepRunningCount"]


def test_the_listener_rules_a_rolling_alb_does_not_output_default_to_empty(layer):
    # the alb layer outputs them only where traffic shifts: the service takes the empty default then (a parameter
    # without one, and without a value, fails the stack operation)
    for name in ("ProductionListenerRuleArn", "TestListenerRuleArn"):
        declared = declared_in(layer, name)
        assert declared and all(parameter.get("Default") == "" for parameter in declared), name


def test_aws_typed_inputs_carry_no_pattern_of_their_own(layer):
    # AWS checks the values of its own parameter types (a VPC id, a list of subnet ids); AllowedPattern is a String's
    for name, template in layer.items():
        for parameter_name, parameter in template.get("Parameters", {}).items():
            if parameter["Type"].startswith(("AWS::", "List<")):
                assert "AllowedPattern" not in parameter and "ConstraintDescription" not in parameter, (name, parameter_name)


def longest_name_prefix() -> str:
    """The longest NamePrefix the input's pattern takes: cfn-lint sees ${NamePrefix}, never its value."""
    candidates = [f"{templates.PROJECT}-{'a' * count}" for count in range(1, 65)]
    return max([templates.PROJECT, *(c for c in candidates if re.fullmatch(inputs.NAME_PREFIX, c))], key=len)


# Where AWS says each name's limit: its API reference's page of the call that creates the resource (the botocore
# models the project pins give the same lengths: kms CreateKey's Description 8192, wafv2 VisibilityConfig's MetricName 255).
API = "https://docs.aws.amazon.com/{}/latest/APIReference/API_{}.html"
ELB, ALARM, LOGS = "elasticloadbalancing", ("AmazonCloudWatch", "PutMetricAlarm"), ("AmazonCloudWatchLogs", "CreateLogGroup")
# (layer, logical id, property, AWS's most characters, where AWS says so): names built from NamePrefix
NAMED = [
    # "can have a maximum of 32 characters ... must not begin or end with a hyphen"
    ("alb", "LoadBalancer", "Name", 32, API.format(ELB, "CreateLoadBalancer")),
    ("alb", "TargetGroup", "Name", 32, API.format(ELB, "CreateTargetGroup")),
    ("alb", "AlternateTargetGroup", "Name", 32, API.format(ELB, "CreateTargetGroup")),
    ("alb", "AlbSecurityGroup", "GroupName", 255, API.format("AWSEC2", "CreateSecurityGroup")),
    ("service", "Service", "ServiceName", 255, API.format("AmazonECS", "CreateService")),
    ("service", "TaskDefinition", "Family", 255, API.format("AmazonECS", "RegisterTaskDefinition")),
    ("service", "LogGroup", "LogGroupName", 512, API.format(*LOGS)),
    ("waf", "WebAcl", "Name", 128, API.format("waf", "CreateWebACL")),
    ("waf", "LogGroup", "LogGroupName", 512, API.format(*LOGS)),
    ("release-alarms", "AlertTopic", "TopicName", 256, "https://docs.aws.amazon.com/sns/latest/api/API_CreateTopic.html"),
    ("release-alarms", "Target5xxAlarm", "AlarmName", 255, API.format(*ALARM)),
    ("release-alarms", "UnhealthyHostsAlarm", "AlarmName", 255, API.format(*ALARM)),
    ("alarms", "CpuSaturatedAlarm", "AlarmName", 255, API.format(*ALARM)),
    ("alarms", "TasksBelowDesiredAlarm", "AlarmName", 255, API.format(*ALARM)),
    ("alarms", "MemorySaturatedAlarm", "AlarmName", 255, API.format(*ALARM)),
    ("alarms", "Elb5xxAlarm", "AlarmName", 255, API.format(*ALARM)),
    ("alarms", "NoHealthyHostAlarm", "AlarmName", 255, API.format(*ALARM)),
    ("alarms", "SlowResponsesAlarm", "AlarmName", 255, API.format(*ALARM)),
    (
        "scaling",
        "CpuScalingPolicy",
        "PolicyName",
        256,
        "https://docs.aws.amazon.com/autoscaling/application/APIReference/API_PutScalingPolicy.html",
    ),
    ("waf", "WebAcl", "VisibilityConfig.MetricName", 255, API.format("waf", "VisibilityConfig")),
    ("service", "LogKey", "Description", 8192, API.format("kms", "CreateKey")),
    ("waf", "LogKey", "Description", 8192, API.format("kms", "CreateKey")),
    ("release-alarms", "AlertTopicKey", "Description", 8192, API.format("kms", "CreateKey")),
    (
        "scaling",
        "MemoryScalingPolicy",
        "PolicyName",
        256,
        "https://docs.aws.amazon.com/autoscaling/application/APIReference/API_PutScalingPolicy.html",
    ),
]


@pytest.mark.parametrize("layer_name, logical_id, prop, most, url", NAMED, ids=[f"{n[0]}-{n[1]}-{n[2]}" for n in NAMED])
def test_names_built_from_the_longest_name_prefix_fit_awss_limits(layer, layer_name, logical_id, prop, most, url):
    prefix = longest_name_prefix()
    value = layer[layer_name]["Resources"][logical_id]["Properties"]
    for step in prop.split("."):
        value = value[step]
    text = value["Fn::Sub"] if isinstance(value, dict) else value
    name = text.replace("${NamePrefix}", prefix).replace("${ServiceName}", SERVICE_NAME.replace("${NamePrefix}", prefix))
    assert "${" not in name, f"{layer_name} {logical_id}.{prop}: {text!r} names what this test does not fill in"
    assert len(name) <= most, f"{layer_name} {logical_id}.{prop} {name!r}: {len(name)} characters; AWS takes at most {most} ({url})"
    if most == 32:  # ELBv2's names: not beginning or ending with a hyphen, nor beginning with internal-
        assert not name.startswith(("-", "internal-")) and not name.endswith("-"), name


def test_every_name_built_from_name_prefix_is_in_the_name_limit_table(layer):
    # a name added (or renamed) with no row above would go unchecked against AWS's limit
    built = {
        (layer_name, logical_id, prop)
        for layer_name, template in layer.items()
        for logical_id, resource in template["Resources"].items()
        for prop, value in resource.get("Properties", {}).items()
        if isinstance(value, dict) and any(name in str(value.get("Fn::Sub")) for name in ("${NamePrefix}", "${ServiceName}"))
    }
    # the scalable target's id names the service (service/<cluster>/<service>): AWS takes 1,600 characters of it
    not_names = {("scaling", "ScalableTarget", "ResourceId")}
    assert built and built - not_names <= {named[:3] for named in NAMED}, sorted(built - not_names - {named[:3] for named in NAMED})
