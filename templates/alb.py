"""alb: the internet-facing Application Load Balancer, its security group, the HTTPS and
HTTP listeners, the two target groups, the backend-SG ingress rule, the access-log bucket and the
api.<domain> alias record; when the service's releases shift traffic (DeploymentStrategy other than
ROLLING), the production listener rule whose weights ECS moves and the test listener."""

from troposphere import AWS_REGION, Equals, FindInMap, If, Not, Ref, Sub, Template
from troposphere.ec2 import SecurityGroup, SecurityGroupIngress, SecurityGroupRule
from troposphere.elasticloadbalancingv2 import (
    Action,
    Certificate,
    Condition,
    ForwardConfig,
    Listener,
    ListenerRule,
    ListenerRuleAction,
    LoadBalancer,
    LoadBalancerAttributes,
    Matcher,
    RedirectConfig,
    TargetGroup,
    TargetGroupAttribute,
    TargetGroupTuple,
)
from troposphere.route53 import AliasTarget, RecordSetType
from troposphere.s3 import (
    AbortIncompleteMultipartUpload,
    Bucket,
    BucketEncryption,
    BucketPolicy,
    LifecycleConfiguration,
    LifecycleRule,
    OwnershipControls,
    OwnershipControlsRule,
    PublicAccessBlockConfiguration,
    ServerSideEncryptionByDefault,
    ServerSideEncryptionRule,
    VersioningConfiguration,
)

from templates import inputs
from templates.common import (
    RETAIN,
    SHIFTS_TRAFFIC,
    TARGET_GROUP_NAMES,
    add_outputs,
    add_shifting_rule,
    add_shifts_traffic,
    arn,
    ignore_cfn_lint,
    new_template,
    skip_checkov,
)

# Regions opened before August 2022 deliver ALB access logs from their own Elastic Load
# Balancing account; newer ones from the log-delivery service principal ("-" below).
# A region missing here is refused by params validation, not at deploy time.
ELB_LOG_ACCOUNT_BY_REGION = {
    "af-south-1": "098369216593",
    "ap-east-1": "754344448648",
    "ap-northeast-1": "582318560864",
    "ap-northeast-2": "600734575887",
    "ap-northeast-3": "383597477331",
    "ap-south-1": "718504428378",
    "ap-south-2": "-",
    "ap-southeast-1": "114774131450",
    "ap-southeast-2": "783225319266",
    "ap-southeast-3": "589379963580",
    "ap-southeast-4": "-",
    "ap-southeast-5": "-",
    "ca-central-1": "985666609251",
    "ca-west-1": "-",
    "eu-central-1": "054676820928",
    "eu-central-2": "-",
    "eu-north-1": "897822967062",
    "eu-south-1": "635631232127",
    "eu-south-2": "-",
    "eu-west-1": "156460612806",
    "eu-west-2": "652711504416",
    "eu-west-3": "009996457667",
    "il-central-1": "-",
    "me-central-1": "-",
    "me-south-1": "076674570225",
    "sa-east-1": "507241528517",
    "us-east-1": "127311923021",
    "us-east-2": "033677994240",
    "us-west-1": "027434742980",
    "us-west-2": "797873946194",
}
REGIONS = frozenset(ELB_LOG_ACCOUNT_BY_REGION)


def build() -> Template:
    t = new_template(
        "StartupWebApp alb: internet-facing ALB with HTTPS, HTTP->HTTPS redirect, primary and alternate target groups, "
        "a test listener for traffic-shifting releases, the access-log bucket, the api alias record, and an ingress rule "
        "on the backend tasks' security group (Phase 5.14's, not this stack's) from the ALB's."
    )
    p = {
        name: inputs.add(t, name)
        for name in [
            "NamePrefix",
            "VpcId",
            "PublicSubnetIds",
            "BackendSecurityGroupId",
            "ContainerPort",
            "DomainName",
            "ApiHostLabel",
            "TlsPolicy",
            "HealthCheckPath",
            "HealthCheckIntervalSeconds",
            "HealthyThresholdCount",
            "IdleTimeoutSeconds",
            "DeregistrationDelaySeconds",
            "DeletionProtection",
            "AccessLogsEnabled",
            "AccessLogRetentionDays",
            "DeploymentStrategy",
            "TestListenerPort",
            "TestListenerCidr",
            "CertificateArn",
            "HostedZoneId",
        ]
    }
    add_shifts_traffic(t, p["DeploymentStrategy"])
    add_shifting_rule(
        t,
        p["DeploymentStrategy"],
        "TestListenerCidrGiven",
        Not(Equals(p["TestListenerCidr"].ref(), "")),
        "TestListenerCidr must name the addresses that may reach the test listener unless DeploymentStrategy is ROLLING",
    )
    t.add_mapping("ElbLogAccount", {region: {"AccountId": account} for region, account in ELB_LOG_ACCOUNT_BY_REGION.items()})
    t.add_condition("LogsFromServicePrincipal", Equals(FindInMap("ElbLogAccount", Ref(AWS_REGION), "AccountId"), "-"))

    alb_sg = create_alb_security_group(t, p)
    create_backend_ingress(t, p, alb_sg)
    bucket, bucket_policy = create_access_log_bucket(t, p)
    alb = create_load_balancer(t, p, alb_sg, bucket, bucket_policy)
    target_group = create_target_group(t, p, "TargetGroup", TARGET_GROUP_NAMES[0])
    alternate = create_target_group(t, p, "AlternateTargetGroup", TARGET_GROUP_NAMES[1])
    https = create_listeners(t, p, alb, target_group)
    production_rule, test_rule = create_traffic_shifting(t, p, alb, alb_sg, https, target_group, alternate)
    host = Sub("${ApiHostLabel}.${DomainName}")
    t.add_resource(
        RecordSetType(
            "ApiAliasRecord",
            HostedZoneId=p["HostedZoneId"].ref(),
            Name=Sub("${ApiHostLabel}.${DomainName}."),
            Type="A",
            AliasTarget=AliasTarget(
                DNSName=alb.get_att("DNSName"),
                HostedZoneId=alb.get_att("CanonicalHostedZoneID"),
                EvaluateTargetHealth=True,
            ),
        )
    )
    add_outputs(
        t,
        {
            "LoadBalancerArn": (alb.ref(), "ARN of the load balancer."),
            "LoadBalancerDnsName": (alb.get_att("DNSName"), "DNS name of the load balancer."),
            "LoadBalancerFullName": (alb.get_att("LoadBalancerFullName"), "LoadBalancer dimension of ALB CloudWatch metrics."),
            "TargetGroupArn": (
                target_group.ref(),
                "ARN of the primary target group: a rolling service's; under a traffic-shifting strategy each release moves the service to whichever of the two does not serve.",
            ),
            "TargetGroupFullName": (target_group.get_att("TargetGroupFullName"), "TargetGroup dimension of CloudWatch metrics."),
            "AlternateTargetGroupArn": (
                alternate.ref(),
                "ARN of the alternate target group: under a traffic-shifting strategy, where a release's new tasks register when the primary serves (and the other way round).",
            ),
            "AlternateTargetGroupFullName": (
                alternate.get_att("TargetGroupFullName"),
                "TargetGroup dimension of the alternate target group.",
            ),
            "HttpsListenerArn": (https.ref(), "ARN of the HTTPS:443 listener."),
            "AlbSecurityGroupId": (alb_sg.ref(), "Security group of the load balancer."),
            "AccessLogBucketName": (bucket.ref(), "S3 bucket receiving the access logs."),
            "ServiceHost": (host, "Public host name of the service."),
            "ServiceUrl": (Sub("https://${ApiHostLabel}.${DomainName}"), "Public URL of the service."),
        },
    )
    add_outputs(
        t,
        {
            "ProductionListenerRuleArn": (production_rule.ref(), "Listener rule whose weights ECS moves to shift production traffic."),
            "TestListenerRuleArn": (test_rule.ref(), "Listener rule of the test listener, which ECS points at the new tasks first."),
            "TestListenerPort": (Sub("${TestListenerPort}"), "HTTPS port of the test listener."),
        },
        condition=SHIFTS_TRAFFIC,
    )
    return t


def create_alb_security_group(t, p):
    sg = t.add_resource(
        SecurityGroup(
            "AlbSecurityGroup",
            GroupName=Sub("${NamePrefix}-alb-sg"),
            GroupDescription="StartupWebApp ALB: HTTPS and HTTP (redirect) from the internet",
            VpcId=p["VpcId"].ref(),
            SecurityGroupIngress=[
                SecurityGroupRule(IpProtocol="tcp", FromPort=443, ToPort=443, CidrIp="0.0.0.0/0", Description="HTTPS from the internet"),
                SecurityGroupRule(
                    IpProtocol="tcp", FromPort=80, ToPort=80, CidrIp="0.0.0.0/0", Description="HTTP from the internet, redirected to HTTPS"
                ),
            ],
            # Stating the egress inline replaces the default allow-all rule.
            SecurityGroupEgress=[
                SecurityGroupRule(
                    IpProtocol="tcp",
                    FromPort=p["ContainerPort"].ref(),
                    ToPort=p["ContainerPort"].ref(),
                    DestinationSecurityGroupId=p["BackendSecurityGroupId"].ref(),
                    Description="To the backend tasks on the container port",
                )
            ],
            Metadata=skip_checkov(("CKV_AWS_260", "Port 80 is open only so the listener can answer 301 to HTTPS (plan step 1).")),
        )
    )
    return sg


def create_backend_ingress(t, p, alb_sg):
    t.add_resource(
        SecurityGroupIngress(
            "BackendIngressFromAlb",
            GroupId=p["BackendSecurityGroupId"].ref(),
            IpProtocol="tcp",
            FromPort=p["ContainerPort"].ref(),
            ToPort=p["ContainerPort"].ref(),
            SourceSecurityGroupId=alb_sg.get_att("GroupId"),
            Description="From the StartupWebApp ALB only",
        )
    )


def create_access_log_bucket(t, p):
    bucket = t.add_resource(
        Bucket(
            "AccessLogBucket",
            # "The only server-side encryption option that's supported is Amazon S3-managed keys (SSE-S3)":
            # https://docs.aws.amazon.com/elasticloadbalancing/latest/application/enable-access-logging.html
            BucketEncryption=BucketEncryption(
                ServerSideEncryptionConfiguration=[
                    ServerSideEncryptionRule(ServerSideEncryptionByDefault=ServerSideEncryptionByDefault(SSEAlgorithm="AES256"))
                ]
            ),
            PublicAccessBlockConfiguration=PublicAccessBlockConfiguration(
                BlockPublicAcls=True, BlockPublicPolicy=True, IgnorePublicAcls=True, RestrictPublicBuckets=True
            ),
            OwnershipControls=OwnershipControls(Rules=[OwnershipControlsRule(ObjectOwnership="BucketOwnerEnforced")]),
            VersioningConfiguration=VersioningConfiguration(Status="Enabled"),
            LifecycleConfiguration=LifecycleConfiguration(
                Rules=[
                    LifecycleRule(
                        Id="ExpireAccessLogs",
                        Status="Enabled",
                        ExpirationInDays=p["AccessLogRetentionDays"].ref(),
                        NoncurrentVersionExpirationInDays=1,
                        AbortIncompleteMultipartUpload=AbortIncompleteMultipartUpload(DaysAfterInitiation=1),
                    )
                ]
            ),
            Metadata=skip_checkov(
                (
                    "CKV_AWS_18",
                    "This is the access-log bucket (the load balancer's logs, when AccessLogsEnabled); logging it to itself would loop.",
                ),
            ),
            **RETAIN,
        )
    )
    log_objects = arn("s3", "${AccessLogBucket}/AWSLogs/${AWS::AccountId}/*", region=False, account=False)
    principal = If(
        "LogsFromServicePrincipal",
        {"Service": "logdelivery.elasticloadbalancing.amazonaws.com"},
        {"AWS": Sub("arn:${AWS::Partition}:iam::${ElbAccount}:root", ElbAccount=FindInMap("ElbLogAccount", Ref(AWS_REGION), "AccountId"))},
    )
    policy = t.add_resource(
        BucketPolicy(
            "AccessLogBucketPolicy",
            Bucket=bucket.ref(),
            PolicyDocument={
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "ElbLogDelivery",
                        "Effect": "Allow",
                        "Principal": principal,
                        "Action": "s3:PutObject",
                        "Resource": log_objects,
                    },
                    {
                        "Sid": "DenyInsecureTransport",
                        "Effect": "Deny",
                        "Principal": "*",
                        "Action": "s3:*",
                        "Resource": [bucket.get_att("Arn"), Sub("${AccessLogBucket.Arn}/*")],
                        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                    },
                ],
            },
        )
    )
    return bucket, policy


def create_load_balancer(t, p, alb_sg, bucket, bucket_policy):
    return t.add_resource(
        LoadBalancer(
            "LoadBalancer",
            # Without the policy in place the create fails with "Access Denied for bucket".
            DependsOn=[bucket_policy.title],
            Name=Sub("${NamePrefix}-alb"),
            Type="application",
            Scheme="internet-facing",
            IpAddressType="ipv4",
            Subnets=p["PublicSubnetIds"].ref(),
            SecurityGroups=[alb_sg.get_att("GroupId")],
            LoadBalancerAttributes=[
                LoadBalancerAttributes(Key="routing.http.drop_invalid_header_fields.enabled", Value="true"),
                LoadBalancerAttributes(Key="routing.http.desync_mitigation_mode", Value="defensive"),
                LoadBalancerAttributes(Key="deletion_protection.enabled", Value=p["DeletionProtection"].ref()),
                LoadBalancerAttributes(Key="idle_timeout.timeout_seconds", Value=p["IdleTimeoutSeconds"].ref()),
                LoadBalancerAttributes(Key="access_logs.s3.enabled", Value=p["AccessLogsEnabled"].ref()),
                LoadBalancerAttributes(Key="access_logs.s3.bucket", Value=bucket.ref()),
            ],
            # Not retained: it holds no data, and a retained one would keep its security group (in use
            # by its network interfaces, so the stack's deletion would fail) and its name, blocking a
            # new create. Deletion protection (DeletionProtection) guards it: CloudFormation cannot
            # delete it while that is on, and `make destroy` refuses before deleting anything.
            # https://docs.aws.amazon.com/elasticloadbalancing/latest/application/application-load-balancers.html#deletion-protection
            # https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DeleteSecurityGroup.html
        )
    )


def create_target_group(t, p, title, name):
    return t.add_resource(
        TargetGroup(
            title,
            Name=Sub(name),
            VpcId=p["VpcId"].ref(),
            TargetType="ip",
            Protocol="HTTP",
            ProtocolVersion="HTTP1",
            Port=p["ContainerPort"].ref(),
            HealthCheckEnabled=True,
            HealthCheckProtocol="HTTP",
            HealthCheckPath=p["HealthCheckPath"].ref(),
            HealthCheckIntervalSeconds=p["HealthCheckIntervalSeconds"].ref(),
            HealthCheckTimeoutSeconds=inputs.HEALTH_CHECK_TIMEOUT_SECONDS,
            HealthyThresholdCount=p["HealthyThresholdCount"].ref(),
            UnhealthyThresholdCount=inputs.UNHEALTHY_THRESHOLD_COUNT,
            Matcher=Matcher(HttpCode="200"),
            TargetGroupAttributes=[
                TargetGroupAttribute(Key="deregistration_delay.timeout_seconds", Value=Sub("${DeregistrationDelaySeconds}")),
            ],
            # Not retained: a target group holds no data (ECS registers the tasks again), and without
            # its listeners a retained one serves nothing but blocks the name for a new create. Its ARN
            # is wired into the service: replacing it stays refused (templates.STATEFUL_TYPES).
            # Both target groups always exist (they cost nothing): under ROLLING the alternate stays
            # empty, and the alarms and `make verify` read both whatever the strategy.
        )
    )


def create_listeners(t, p, alb, target_group):
    https = t.add_resource(
        Listener(
            "HttpsListener",
            LoadBalancerArn=alb.ref(),
            Port=443,
            Protocol="HTTPS",
            SslPolicy=p["TlsPolicy"].ref(),
            Certificates=[Certificate(CertificateArn=p["CertificateArn"].ref())],
            DefaultActions=[Action(Type="forward", TargetGroupArn=target_group.ref())],
        )
    )
    t.add_resource(
        Listener(
            "HttpListener",
            LoadBalancerArn=alb.ref(),
            Port=80,
            Protocol="HTTP",
            DefaultActions=[Action(Type="redirect", RedirectConfig=RedirectConfig(Protocol="HTTPS", Port="443", StatusCode="HTTP_301"))],
        )
    )
    return https


def target_group_name(arn: str) -> str:
    """The name in a target group's ARN (...:targetgroup/<name>/<id>)."""
    return arn.rsplit(":", 1)[-1].split("/")[1] if "/" in arn else arn


def weighted_forward(primary, alternate):
    """All traffic to the primary target group; ECS moves the weights during a release."""
    targets = [TargetGroupTuple(TargetGroupArn=primary.ref(), Weight=100), TargetGroupTuple(TargetGroupArn=alternate.ref(), Weight=0)]
    return [ListenerRuleAction(Type="forward", ForwardConfig=ForwardConfig(TargetGroups=targets))]


def create_traffic_shifting(t, p, alb, alb_sg, https, primary, alternate):
    """The listener rules ECS moves during a BLUE_GREEN, CANARY or LINEAR release: the production rule
    on the HTTPS listener and the test rule on a test listener that only TestListenerCidr reaches.
    Each forwards to both target groups by weight, which is how ECS shifts traffic; ECS refuses
    rules that mix forward with redirect or fixed-response actions.
    https://docs.aws.amazon.com/AmazonECS/latest/developerguide/alb-resources-for-blue-green.html
    After a release ECS leaves the weights where traffic went: CloudFormation sees the rules as
    drifted (make drift) and must never rewrite them, so nothing here depends on other inputs."""

    def shifting_rule(title, listener):
        return t.add_resource(
            ListenerRule(
                title,
                Condition=SHIFTS_TRAFFIC,
                ListenerArn=listener.ref(),
                Priority=1,
                Conditions=[Condition(Field="path-pattern", Values=["/*"])],
                Actions=weighted_forward(primary, alternate),
            )
        )

    production_rule = shifting_rule("ProductionListenerRule", https)
    test_listener = t.add_resource(
        Listener(
            "TestListener",
            Condition=SHIFTS_TRAFFIC,
            LoadBalancerArn=alb.ref(),
            Port=p["TestListenerPort"].ref(),
            Protocol="HTTPS",
            SslPolicy=p["TlsPolicy"].ref(),
            Certificates=[Certificate(CertificateArn=p["CertificateArn"].ref())],
            DefaultActions=[Action(Type="forward", TargetGroupArn=primary.ref())],
        )
    )
    test_rule = shifting_rule("TestListenerRule", test_listener)
    t.add_resource(
        SecurityGroupIngress(
            "TestListenerIngress",
            Condition=SHIFTS_TRAFFIC,
            GroupId=alb_sg.get_att("GroupId"),
            IpProtocol="tcp",
            FromPort=p["TestListenerPort"].ref(),
            ToPort=p["TestListenerPort"].ref(),
            CidrIp=p["TestListenerCidr"].ref(),
            Description="Test listener, from the addresses of the testers only",
            Metadata=ignore_cfn_lint(
                (
                    "W1030",
                    "cfn-lint reads TestListenerCidr's default, empty (no CIDR), and this resource exists only where a"
                    " release shifts traffic; the rule TestListenerCidrGiven refuses an empty TestListenerCidr there.",
                )
            ),
        )
    )
    return production_rule, test_rule
