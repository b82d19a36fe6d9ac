"""ci: what GitHub Actions needs to deploy this project without stored keys.

- The account's GitHub OpenID Connect provider (created here, or an existing one from params).
- A deploy role that only this repository's chosen environments or branches can assume through
  that provider. It drives CloudFormation on this project's stacks and nothing else: change sets,
  their execution, stack policy and termination protection, the read-only calls the deployer and
  `make verify` make, and the deploy history in SSM. It creates no resource itself.
- A separate CloudFormation execution role, the only role the deploy role may pass (and only to
  CloudFormation). It holds the resource permissions of the project's layers, scoped to the
  project's name prefix wherever AWS has resource-level permissions.

Both roles live under the IAM path /ci/, outside the role/<PROJECT>-* names the execution role
may manage, so no stack deployed through them can change their permissions; the deploy role is
also denied every CloudFormation action on this stack.
"""

import troposphere
from awacs.aws import (
    Action,
    Allow,
    ArnEquals,
    Condition,
    Deny,
    ForAllValuesStringLike,
    PolicyDocument,
    Principal,
    Statement,
    StringEquals,
    StringLike,
)
from awacs.sts import AssumeRole, AssumeRoleWithWebIdentity
from troposphere import AWS_NO_VALUE, And, Equals, If, Join, Not, Ref, Select, Split, Sub, Template
from troposphere.iam import ManagedPolicy, OIDCProvider, Policy, Role

from templates import inputs
from templates.common import PROJECT, add_outputs, new_template

GITHUB_OIDC_HOST = "token.actions.githubusercontent.com"
STS_AUDIENCE = "sts.amazonaws.com"
ROLE_PATH = "/ci/"  # outside role/<PROJECT>-*, which the execution role manages
MAX_SUBJECTS = inputs.GITHUB_MAX_SUBJECTS  # trust-policy slots for GitHubSubjects; see github_subjects()


def build() -> Template:
    t = new_template("StartupWebApp ci: GitHub OIDC provider, the GitHub Actions deploy role and the CloudFormation execution role.")
    p = {
        name: inputs.add(t, name)
        for name in [
            "ClusterName",
            "DomainName",
            "VpcId",
            "GitHubRepository",
            "GitHubCallerRepository",
            "GitHubSubjects",
            "ExistingOidcProviderArn",
        ]
    }
    t.add_condition("CreateOidcProvider", Equals(p["ExistingOidcProviderArn"].ref(), ""))

    provider = t.add_resource(
        OIDCProvider(
            "GitHubOidcProvider",
            Condition="CreateOidcProvider",
            Url=f"https://{GITHUB_OIDC_HOST}",
            ClientIdList=[STS_AUDIENCE],
        )
    )
    provider_arn = If("CreateOidcProvider", provider.ref(), p["ExistingOidcProviderArn"].ref())
    execution_role = create_execution_role(t)
    deploy_role = create_deploy_role(t, p, provider_arn, execution_role)
    add_outputs(
        t,
        {
            "DeployRoleArn": (deploy_role.get_att("Arn"), "Role GitHub Actions assumes (vars.AWS_DEPLOY_ROLE_ARN)."),
            "CloudFormationExecutionRoleArn": (
                execution_role.get_att("Arn"),
                "Role CloudFormation assumes for the project's stacks; the deployer passes it as RoleARN.",
            ),
            "OidcProviderArn": (provider_arn, "The account's GitHub OIDC provider."),
        },
    )
    return t


def arn(service: str, resource: str, region: bool = True, account: bool = True) -> Sub:
    """arn:<partition>:<service>:<this region>:<this account>:<resource>, resource may use ${Parameter}."""
    return Sub(
        f"arn:${{AWS::Partition}}:{service}:{'${AWS::Region}' if region else ''}:{'${AWS::AccountId}' if account else ''}:{resource}"
    )


def actions(prefix: str, *names: str) -> list[Action]:
    return [Action(prefix, name) for name in names]


def padded_subjects(p):
    """GitHubSubjects followed by MAX_SUBJECTS empty items, so every slot can be selected."""
    return Split(",", Join("", [Join(",", p["GitHubSubjects"].ref()), "," * MAX_SUBJECTS]))


def github_subjects(p):
    """repo:<GitHubRepository>:<suffix> for each GitHubSubjects item, and the same for
    GitHubCallerRepository when one is given (a reusable workflow's token carries its caller's name).

    CloudFormation cannot prefix every item of a list (Fn::Join takes no function as its delimiter),
    so the list is padded with empty items and read into MAX_SUBJECTS slots; a slot left empty is
    dropped. Items past the last slot are ignored, which only narrows who may assume the role."""
    padded = padded_subjects(p)
    subjects = []
    for repository, condition in (("GitHubRepository", "HasGitHubSubject"), ("GitHubCallerRepository", "CallerSubject")):
        for slot in range(MAX_SUBJECTS):
            subject = Sub(f"repo:${{{repository}}}:${{Subject}}", Subject=Select(slot, padded))
            # The first item of a CommaDelimitedList always exists.
            always = slot == 0 and repository == "GitHubRepository"
            subjects.append(subject if always else If(f"{condition}{slot}", subject, Ref(AWS_NO_VALUE)))
    return subjects


def add_subject_conditions(t: Template, p) -> None:
    padded = padded_subjects(p)
    t.add_condition("CallerSubject0", Not(Equals(p["GitHubCallerRepository"].ref(), "")))
    for slot in range(1, MAX_SUBJECTS):
        t.add_condition(f"HasGitHubSubject{slot}", Not(Equals(Select(slot, padded), "")))
        t.add_condition(
            f"CallerSubject{slot}", And(troposphere.Condition("CallerSubject0"), troposphere.Condition(f"HasGitHubSubject{slot}"))
        )


def create_deploy_role(t: Template, p, provider_arn, execution_role: Role) -> Role:
    add_subject_conditions(t, p)
    project_stacks = [
        arn("cloudformation", f"stack/{PROJECT}-*/*"),
        arn("cloudformation", f"changeSet/{PROJECT}-*/*"),
    ]
    trust = PolicyDocument(
        Version="2012-10-17",
        Statement=[
            Statement(
                Sid="GitHubActionsOfThisRepository",
                Effect=Allow,
                Principal=Principal("Federated", provider_arn),
                Action=[AssumeRoleWithWebIdentity],
                Condition=Condition(
                    [
                        StringEquals(f"{GITHUB_OIDC_HOST}:aud", STS_AUDIENCE),
                        StringLike(f"{GITHUB_OIDC_HOST}:sub", github_subjects(p)),
                    ]
                ),
            )
        ],
    )
    permissions = PolicyDocument(
        Version="2012-10-17",
        Statement=[
            Statement(
                # cloudformation:RoleArn makes every stack operation run as the execution role: never
                # as this role, and never as a more powerful role an operator once gave a stack.
                Sid="ChangeProjectStacksAsTheExecutionRole",
                Effect=Allow,
                Action=actions("cloudformation", "CreateChangeSet", "ContinueUpdateRollback"),
                Resource=project_stacks,
                Condition=Condition(StringEquals("cloudformation:RoleArn", execution_role.get_att("Arn"))),
            ),
            Statement(
                Sid="RunAndGuardProjectStacks",
                Effect=Allow,
                Action=actions(
                    "cloudformation",
                    "ExecuteChangeSet",
                    "DeleteChangeSet",
                    "SetStackPolicy",
                    "UpdateTerminationProtection",
                    "TagResource",
                ),
                Resource=project_stacks,
            ),
            Statement(
                Sid="ReadProjectStacks",
                Effect=Allow,
                Action=actions(
                    "cloudformation",
                    "DescribeStacks",
                    "DescribeStackEvents",
                    "DescribeStackResource",
                    "DescribeStackResources",
                    "DescribeChangeSet",
                    "ListChangeSets",
                    "ListStackResources",
                    "GetTemplate",
                    "GetTemplateSummary",
                    "GetStackPolicy",
                ),
                Resource=project_stacks,
            ),
            # ListStacks and ValidateTemplate have no resource-level permissions.
            Statement(Sid="ListStacks", Effect=Allow, Action=actions("cloudformation", "ListStacks", "ValidateTemplate"), Resource=["*"]),
            # It may read this stack (make status lists every layer) but never change it.
            Statement(
                Sid="NeverChangeThisStack",
                Effect=Deny,
                Action=actions(
                    "cloudformation",
                    "CreateChangeSet",
                    "ExecuteChangeSet",
                    "DeleteChangeSet",
                    "CreateStack",
                    "UpdateStack",
                    "DeleteStack",
                    "CancelUpdateStack",
                    "ContinueUpdateRollback",
                    "SetStackPolicy",
                    "UpdateTerminationProtection",
                ),
                Resource=[arn("cloudformation", "stack/${AWS::StackName}/*")],
            ),
            Statement(
                Sid="PassOnlyTheExecutionRoleToCloudFormation",
                Effect=Allow,
                Action=[Action("iam", "PassRole")],
                Resource=[execution_role.get_att("Arn")],
                Condition=Condition(StringEquals("iam:PassedToService", "cloudformation.amazonaws.com")),
            ),
            Statement(
                Sid="ReadTheService",
                Effect=Allow,
                Action=[Action("ecs", "DescribeServices")],
                Resource=[arn("ecs", f"service/${{ClusterName}}/{PROJECT}-*")],
            ),
            # DescribeTargetHealth has no resource-level permissions.
            Statement(
                Sid="ReadTargetHealth", Effect=Allow, Action=[Action("elasticloadbalancing", "DescribeTargetHealth")], Resource=["*"]
            ),
            Statement(
                Sid="DeployHistory",
                Effect=Allow,
                Action=actions("ssm", "GetParameter", "GetParameters", "GetParametersByPath", "GetParameterHistory", "PutParameter"),
                Resource=[arn("ssm", f"parameter/{PROJECT}/*")],
            ),
        ],
    )
    return t.add_resource(
        Role(
            "DeployRole",
            Description="GitHub Actions: drive CloudFormation on the project's stacks through the execution role",
            Path=ROLE_PATH,
            MaxSessionDuration=7200,  # the deploy job asks for 2 hours: a slow ECS rollout outlasts 1
            AssumeRolePolicyDocument=trust,
            Policies=[Policy(PolicyName="drive-project-stacks", PolicyDocument=permissions)],
        )
    )


def create_execution_role(t: Template) -> Role:
    role = t.add_resource(
        Role(
            "CloudFormationExecutionRole",
            Description="CloudFormation: create, update and delete the resources of the project's layers",
            Path=ROLE_PATH,
            AssumeRolePolicyDocument=PolicyDocument(
                Version="2012-10-17",
                Statement=[
                    Statement(
                        Effect=Allow,
                        Principal=Principal("Service", "cloudformation.amazonaws.com"),
                        Action=[AssumeRole],
                    )
                ],
            ),
        )
    )
    # One managed policy per group of layers: an inline policy of this size would pass the role's
    # 10,240-character inline limit.
    for name, description, statements in [
        ("ComputePolicy", "ECS service, task definition, task roles and auto-scaling", compute_statements()),
        ("NetworkPolicy", "load balancer, security groups and WAF", network_statements()),
        ("DnsCertificatePolicy", "Route 53 zone and records, ACM certificate", dns_certificate_statements()),
        ("ObservabilityPolicy", "log groups, KMS keys, alarms, SNS topics, SSM parameters", observability_statements()),
        ("StoragePolicy", "the access-log bucket", storage_statements()),
    ]:
        t.add_resource(
            ManagedPolicy(
                name,
                Description=f"{PROJECT} CloudFormation execution role: {description}",
                Roles=[role.ref()],
                PolicyDocument=PolicyDocument(Version="2012-10-17", Statement=statements),
            )
        )
    return role


def compute_statements() -> list[Statement]:
    project_roles = arn("iam", f"role/{PROJECT}-*", region=False)
    return [
        # Task definitions have no resource-level permissions for these actions.
        Statement(
            Sid="TaskDefinitions",
            Effect=Allow,
            Action=actions("ecs", "RegisterTaskDefinition", "DeregisterTaskDefinition", "DescribeTaskDefinition"),
            Resource=["*"],
        ),
        Statement(
            Sid="ProjectServices",
            Effect=Allow,
            Action=actions(
                "ecs",
                "CreateService",
                "UpdateService",
                "DeleteService",
                "DescribeServices",
                "TagResource",
                "UntagResource",
                "ListTagsForResource",
            ),
            Resource=[arn("ecs", f"service/${{ClusterName}}/{PROJECT}-*"), arn("ecs", f"task-definition/{PROJECT}-*:*")],
        ),
        Statement(
            Sid="TheCluster", Effect=Allow, Action=[Action("ecs", "DescribeClusters")], Resource=[arn("ecs", "cluster/${ClusterName}")]
        ),
        Statement(
            Sid="ProjectRoles",
            Effect=Allow,
            Action=actions(
                "iam",
                "CreateRole",
                "DeleteRole",
                "GetRole",
                "UpdateRole",
                "UpdateRoleDescription",
                "UpdateAssumeRolePolicy",
                "PutRolePolicy",
                "GetRolePolicy",
                "DeleteRolePolicy",
                "ListRolePolicies",
                "ListAttachedRolePolicies",
                "TagRole",
                "UntagRole",
                "ListRoleTags",
            ),
            Resource=[project_roles],
        ),
        Statement(
            Sid="PassProjectRolesToEcsTasksOnly",
            Effect=Allow,
            Action=[Action("iam", "PassRole")],
            Resource=[project_roles],
            Condition=Condition(StringEquals("iam:PassedToService", "ecs-tasks.amazonaws.com")),
        ),
        Statement(
            Sid="ServiceLinkedRoles",
            Effect=Allow,
            Action=[Action("iam", "CreateServiceLinkedRole")],
            Resource=[arn("iam", "role/aws-service-role/*", region=False)],
            Condition=Condition(
                StringEquals(
                    "iam:AWSServiceName",
                    [
                        "ecs.amazonaws.com",
                        "ecs.application-autoscaling.amazonaws.com",
                        "elasticloadbalancing.amazonaws.com",
                        "wafv2.amazonaws.com",
                    ],
                )
            ),
        ),
        Statement(
            Sid="ScalableTargets",
            Effect=Allow,
            Action=actions(
                "application-autoscaling",
                "RegisterScalableTarget",
                "DeregisterScalableTarget",
                "PutScalingPolicy",
                "DeleteScalingPolicy",
                "TagResource",
                "UntagResource",
                "ListTagsForResource",
            ),
            Resource=[arn("application-autoscaling", "scalable-target/*")],
        ),
        # Describe calls of Application Auto Scaling have no resource-level permissions.
        Statement(
            Sid="DescribeScaling",
            Effect=Allow,
            Action=actions("application-autoscaling", "DescribeScalableTargets", "DescribeScalingPolicies", "DescribeScalingActivities"),
            Resource=["*"],
        ),
        # Target tracking creates and deletes its alarms with the caller's permissions.
        Statement(
            Sid="TargetTrackingAlarms",
            Effect=Allow,
            Action=actions("cloudwatch", "PutMetricAlarm", "DeleteAlarms", "DescribeAlarms"),
            Resource=[arn("cloudwatch", f"alarm:TargetTracking-service/${{ClusterName}}/{PROJECT}-*")],
        ),
    ]


def network_statements() -> list[Statement]:
    load_balancers = arn("elasticloadbalancing", f"loadbalancer/app/{PROJECT}-*/*")
    vpc = arn("ec2", "vpc/${VpcId}")
    return [
        Statement(
            Sid="ProjectLoadBalancing",
            Effect=Allow,
            Action=actions(
                "elasticloadbalancing",
                "CreateLoadBalancer",
                "DeleteLoadBalancer",
                "ModifyLoadBalancerAttributes",
                "SetSecurityGroups",
                "SetSubnets",
                "SetIpAddressType",
                "CreateListener",
                "DeleteListener",
                "ModifyListener",
                "AddListenerCertificates",
                "RemoveListenerCertificates",
                "CreateTargetGroup",
                "DeleteTargetGroup",
                "ModifyTargetGroup",
                "ModifyTargetGroupAttributes",
                "AddTags",
                "RemoveTags",
            ),
            Resource=[
                load_balancers,
                arn("elasticloadbalancing", f"listener/app/{PROJECT}-*/*"),
                arn("elasticloadbalancing", f"listener-rule/app/{PROJECT}-*/*"),
                arn("elasticloadbalancing", f"targetgroup/{PROJECT}-*/*"),
            ],
        ),
        # Describe calls and SetWebAcl have no resource-level permissions.
        Statement(
            Sid="DescribeLoadBalancing",
            Effect=Allow,
            Action=[Action("elasticloadbalancing", "Describe*"), Action("elasticloadbalancing", "SetWebAcl")],
            Resource=["*"],
        ),
        Statement(
            Sid="SecurityGroupsInTheVpc",
            Effect=Allow,
            Action=[Action("ec2", "CreateSecurityGroup")],
            Resource=[vpc, arn("ec2", "security-group/*")],
        ),
        Statement(
            Sid="ManageSecurityGroupsOfTheVpc",
            Effect=Allow,
            Action=actions(
                "ec2",
                "DeleteSecurityGroup",
                "AuthorizeSecurityGroupIngress",
                "AuthorizeSecurityGroupEgress",
                "RevokeSecurityGroupIngress",
                "RevokeSecurityGroupEgress",
                "UpdateSecurityGroupRuleDescriptionsIngress",
                "UpdateSecurityGroupRuleDescriptionsEgress",
                "ModifySecurityGroupRules",
                "CreateTags",
                "DeleteTags",
            ),
            Resource=[arn("ec2", "security-group/*")],
            Condition=Condition(ArnEquals("ec2:Vpc", vpc)),
        ),
        # A rule's own resource carries no VPC; its group is checked by the statement above.
        Statement(
            Sid="SecurityGroupRules",
            Effect=Allow,
            Action=actions(
                "ec2",
                "AuthorizeSecurityGroupIngress",
                "AuthorizeSecurityGroupEgress",
                "ModifySecurityGroupRules",
                "CreateTags",
            ),
            Resource=[arn("ec2", "security-group-rule/*")],
        ),
        Statement(
            Sid="TagSecurityGroupsOnCreate",
            Effect=Allow,
            Action=[Action("ec2", "CreateTags")],
            Resource=[arn("ec2", "security-group/*")],
            Condition=Condition(StringEquals("ec2:CreateAction", "CreateSecurityGroup")),
        ),
        # EC2 Describe calls have no resource-level permissions.
        Statement(
            Sid="DescribeNetwork",
            Effect=Allow,
            Action=actions(
                "ec2",
                "DescribeSecurityGroups",
                "DescribeSecurityGroupRules",
                "DescribeVpcs",
                "DescribeSubnets",
                "DescribeNetworkInterfaces",
                "DescribeAccountAttributes",
            ),
            Resource=["*"],
        ),
        Statement(
            Sid="ProjectWebAcl",
            Effect=Allow,
            Action=actions(
                "wafv2",
                "CreateWebACL",
                "UpdateWebACL",
                "DeleteWebACL",
                "GetWebACL",
                "AssociateWebACL",
                "DisassociateWebACL",
                "GetWebACLForResource",
                "PutLoggingConfiguration",
                "DeleteLoggingConfiguration",
                "GetLoggingConfiguration",
                "TagResource",
                "UntagResource",
                "ListTagsForResource",
            ),
            Resource=[
                arn("wafv2", f"regional/webacl/{PROJECT}-*/*"),
                arn("wafv2", "regional/managedruleset/*/*", account=False),
                load_balancers,
            ],
        ),
        Statement(
            Sid="ListWebAcls",
            Effect=Allow,
            Action=actions("wafv2", "ListWebACLs", "ListAvailableManagedRuleGroups", "DescribeManagedRuleGroup"),
            Resource=["*"],
        ),
    ]


def dns_certificate_statements() -> list[Statement]:
    names_under_the_domain = ForAllValuesStringLike(
        "route53:ChangeResourceRecordSetsNormalizedRecordNames", [Sub("${DomainName}"), Sub("*.${DomainName}")]
    )
    return [
        # CreateHostedZone, the List calls and RequestCertificate have no resource-level permissions.
        Statement(
            Sid="CreateZoneAndListZones",
            Effect=Allow,
            Action=actions("route53", "CreateHostedZone", "ListHostedZones", "ListHostedZonesByName"),
            Resource=["*"],
        ),
        Statement(
            Sid="ReadAndTagZones",
            Effect=Allow,
            Action=actions(
                "route53", "GetHostedZone", "ListResourceRecordSets", "ChangeTagsForResource", "ListTagsForResource", "DeleteHostedZone"
            ),
            Resource=[arn("route53", "hostedzone/*", region=False, account=False)],
        ),
        Statement(
            Sid="RecordsUnderTheDomainOnly",
            Effect=Allow,
            Action=[Action("route53", "ChangeResourceRecordSets")],
            Resource=[arn("route53", "hostedzone/*", region=False, account=False)],
            Condition=Condition(names_under_the_domain),
        ),
        Statement(
            Sid="WaitForChanges",
            Effect=Allow,
            Action=[Action("route53", "GetChange")],
            Resource=[arn("route53", "change/*", region=False, account=False)],
        ),
        Statement(
            Sid="RequestCertificatesForTheDomain",
            Effect=Allow,
            Action=[Action("acm", "RequestCertificate")],
            Resource=["*"],
            Condition=Condition(ForAllValuesStringLike("acm:DomainNames", [Sub("${DomainName}"), Sub("*.${DomainName}")])),
        ),
        Statement(Sid="ListCertificates", Effect=Allow, Action=[Action("acm", "ListCertificates")], Resource=["*"]),
        Statement(
            Sid="ManageCertificates",
            Effect=Allow,
            Action=actions(
                "acm",
                "DescribeCertificate",
                "DeleteCertificate",
                "AddTagsToCertificate",
                "RemoveTagsFromCertificate",
                "ListTagsForCertificate",
            ),
            Resource=[arn("acm", "certificate/*")],
        ),
    ]


def observability_statements() -> list[Statement]:
    return [
        Statement(
            Sid="ProjectLogGroups",
            Effect=Allow,
            Action=actions(
                "logs",
                "CreateLogGroup",
                "DeleteLogGroup",
                "PutRetentionPolicy",
                "DeleteRetentionPolicy",
                "AssociateKmsKey",
                "DisassociateKmsKey",
                "TagResource",
                "UntagResource",
                "TagLogGroup",
                "UntagLogGroup",
                "ListTagsForResource",
                "ListTagsLogGroup",
            ),
            Resource=[arn("logs", f"log-group:/ecs/{PROJECT}-*"), arn("logs", f"log-group:aws-waf-logs-{PROJECT}*")],
        ),
        # DescribeLogGroups and the log delivery calls WAF logging makes have no resource-level permissions.
        Statement(
            Sid="LogDeliveryForWaf",
            Effect=Allow,
            Action=actions(
                "logs",
                "DescribeLogGroups",
                "CreateLogDelivery",
                "GetLogDelivery",
                "UpdateLogDelivery",
                "DeleteLogDelivery",
                "ListLogDeliveries",
                "PutResourcePolicy",
                "DescribeResourcePolicies",
            ),
            Resource=["*"],
        ),
        # CreateKey has no resource-level permissions; keys have no names to scope the rest by.
        Statement(Sid="CreateKeys", Effect=Allow, Action=[Action("kms", "CreateKey")], Resource=["*"]),
        Statement(
            Sid="ManageKeysOfThisAccountAndRegion",
            Effect=Allow,
            Action=actions(
                "kms",
                "DescribeKey",
                "GetKeyPolicy",
                "PutKeyPolicy",
                "GetKeyRotationStatus",
                "EnableKeyRotation",
                "DisableKeyRotation",
                "EnableKey",
                "DisableKey",
                "UpdateKeyDescription",
                "ListResourceTags",
                "TagResource",
                "UntagResource",
                "ScheduleKeyDeletion",
            ),
            Resource=[arn("kms", "key/*")],
        ),
        Statement(
            Sid="ProjectAlarms",
            Effect=Allow,
            Action=actions(
                "cloudwatch",
                "PutMetricAlarm",
                "PutCompositeAlarm",
                "DeleteAlarms",
                "DescribeAlarms",
                "EnableAlarmActions",
                "DisableAlarmActions",
                "TagResource",
                "UntagResource",
                "ListTagsForResource",
            ),
            Resource=[arn("cloudwatch", f"alarm:{PROJECT}-*")],
        ),
        Statement(
            Sid="ProjectTopics",
            Effect=Allow,
            Action=actions(
                "sns",
                "CreateTopic",
                "DeleteTopic",
                "GetTopicAttributes",
                "SetTopicAttributes",
                "Subscribe",
                "Unsubscribe",
                "ListSubscriptionsByTopic",
                "TagResource",
                "UntagResource",
                "ListTagsForResource",
            ),
            Resource=[arn("sns", f"{PROJECT}-*")],
        ),
        Statement(
            Sid="ProjectParameters",
            Effect=Allow,
            Action=actions(
                "ssm",
                "PutParameter",
                "DeleteParameter",
                "GetParameter",
                "GetParameters",
                "AddTagsToResource",
                "RemoveTagsFromResource",
                "ListTagsForResource",
            ),
            Resource=[arn("ssm", f"parameter/{PROJECT}/*")],
        ),
    ]


def storage_statements() -> list[Statement]:
    buckets = arn("s3", f"{PROJECT}-*", region=False, account=False)
    return [
        Statement(
            Sid="ProjectBuckets",
            Effect=Allow,
            Action=actions(
                "s3",
                "CreateBucket",
                "DeleteBucket",
                "ListBucket",
                "GetBucket*",
                "Get*Configuration",
                "PutBucketPolicy",
                "DeleteBucketPolicy",
                "PutEncryptionConfiguration",
                "PutBucketPublicAccessBlock",
                "PutBucketOwnershipControls",
                "PutBucketVersioning",
                "PutLifecycleConfiguration",
                "PutBucketTagging",
            ),
            Resource=[buckets],
        ),
    ]
