"""service: the log group (KMS-encrypted), the execution and task roles, the Fargate task
definition running gunicorn, and the ECS service registered in the ALB's target group. A release
replaces the tasks as DeploymentStrategy says: in place (ROLLING), or beside them in the other of
the ALB's two target groups with the load balancer moving traffic (BLUE_GREEN, CANARY, LINEAR),
after which the service serves from that one; for these ECS assumes the infrastructure role this
layer creates."""

from awacs import ecr, logs, secretsmanager
from awacs.aws import Allow, Condition, Principal, Statement, StringEquals
from awacs.sts import AssumeRole
from troposphere import AWS_REGION, And, Equals, If, Not, NoValue, Ref, Sub, Template
from troposphere.ecs import (
    AdvancedConfiguration,
    AwsvpcConfiguration,
    CanaryConfiguration,
    ContainerDefinition,
    ContainerDependency,
    DeploymentAlarms,
    DeploymentCircuitBreaker,
    DeploymentConfiguration,
    DeploymentLifecycleHook,
    Environment,
    HookTimeoutConfig,
    LinearConfiguration,
    LoadBalancer,
    LogConfiguration,
    MountPoint,
    NetworkConfiguration,
    PortMapping,
    RuntimePlatform,
    Secret,
    Service,
    TaskDefinition,
    Volume,
)
from troposphere.iam import Policy, Role

from templates import inputs
from templates.common import (
    READ_LOAD_BALANCING,
    SHIFTS_TRAFFIC,
    TARGET_GROUP_NAMES,
    TASK_REGISTRATION,
    TRAFFIC_MOVES,
    actions,
    add_encrypted_log_group,
    add_outputs,
    add_shifting_rule,
    add_shifts_traffic,
    arn,
    new_template,
    policy,
    role_boundary_arn,
    shifts_traffic,
)

CONTAINER_NAME = "web"
# The names the deployer reads back (scripts/deploy/tasks.py and logs.py), in CloudFormation's Sub
# syntax, which string.Template also reads: one spelling for the template and the deployer.
SERVICE_NAME = "${NamePrefix}-service"
LOG_GROUP_NAME = "/ecs/${NamePrefix}-service"
# awslogs names a container's stream <awslogs-stream-prefix>/<container name>/<ECS task id>:
# https://docs.aws.amazon.com/prescriptive-guidance/latest/implementing-logging-monitoring-cloudwatch/ec2-fargate-logs.html
WEB_LOG_STREAM_PREFIX = "service"


def web_log_stream(task_id: str) -> str:
    """The web container's log stream of one task."""
    return f"{WEB_LOG_STREAM_PREFIX}/{CONTAINER_NAME}/{task_id}"


# ECS creates a task's bind-mount volume owned by root with mode 0755, so the non-root web
# container could not write to /tmp (gunicorn's worker heartbeat files, Django's upload spool):
# every task would crash and the circuit breaker would roll the first create back. This container
# runs first, as root, from the same image, makes /tmp world-writable with the sticky bit like any
# /tmp, and exits; the web container starts only once it exited 0 (condition SUCCESS, which ECS
# allows only on a non-essential container).
# https://docs.aws.amazon.com/AmazonECS/latest/developerguide/bind-mounts.html
# https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ContainerDependency.html
TMP_INIT_CONTAINER = "tmp-permissions"
TMP_VOLUME, TMP_PATH = "tmp", "/tmp"
# Container variable -> key of the database secret's JSON. Credentials reach the container
# only through ECS secrets, never as plain environment values.
DATABASE_SECRET_KEYS = {
    "DATABASE_USER": "username",
    "DATABASE_PASSWORD": "password",
    "DATABASE_HOST": "host",
    "DATABASE_PORT": "port",
}


def build() -> Template:
    t = new_template(
        "StartupWebApp service: Fargate task definition running gunicorn and the ECS service behind the ALB, its "
        "execution, infrastructure and task roles, and its containers' log group with the KMS key that encrypts it."
    )
    p = {
        name: inputs.add(t, name)
        for name in [
            "NamePrefix",
            "ClusterName",
            "PrivateSubnetIds",
            "BackendSecurityGroupId",
            "ContainerPort",
            "EcrRepositoryName",
            "ImageTag",
            "DatabaseSecretArn",
            "DatabaseName",
            "DjangoSettingsModule",
            "TaskCpu",
            "TaskMemory",
            "DesiredCount",
            "GunicornWorkers",
            "GunicornTimeoutSeconds",
            "StopTimeoutSeconds",
            "ContainerUser",
            "HealthCheckGracePeriodSeconds",
            "LogRetentionDays",
            "TargetGroupArn",
            "DeploymentAlarmNames",
            "DeploymentStrategy",
            "BakeTimeMinutes",
            "CanaryPercent",
            "CanaryBakeTimeMinutes",
            "LinearStepPercent",
            "LinearStepBakeTimeMinutes",
            "TestPauseMinutes",
            "AlternateTargetGroupArn",
            "ProductionListenerRuleArn",
            "TestListenerRuleArn",
            inputs.KEEP_RUNNING_COUNT,
        ]
    }
    t.add_condition("SetDesiredCount", Equals(p[inputs.KEEP_RUNNING_COUNT].ref(), "false"))
    strategy = p["DeploymentStrategy"].ref()
    add_shifts_traffic(t, p["DeploymentStrategy"])
    t.add_condition(PAUSES_FOR_TESTS, And(shifts_traffic(p["DeploymentStrategy"]), Not(Equals(p["TestPauseMinutes"].ref(), 0))))
    t.add_condition("Canary", Equals(strategy, "CANARY"))
    t.add_condition("Linear", Equals(strategy, "LINEAR"))
    # The listener rules are outputs of the alb layer only when it was deployed with a strategy that
    # shifts traffic.
    add_shifting_rule(
        t,
        p["DeploymentStrategy"],
        "ListenerRulesGiven",
        And(Not(Equals(p["ProductionListenerRuleArn"].ref(), "")), Not(Equals(p["TestListenerRuleArn"].ref(), ""))),
        "DeploymentStrategy shifts traffic, but the alb layer has no listener rules for it: deploy the alb layer with the same DeploymentStrategy first",
    )
    log_group = add_encrypted_log_group(t, LOG_GROUP_NAME, p["LogRetentionDays"])
    execution_role = create_execution_role(t, p, log_group)
    task_role = create_task_role(t)
    task_definition = create_task_definition(t, p, execution_role, task_role, log_group)
    infrastructure_role = create_infrastructure_role(t)
    service = create_service(t, p, task_definition, infrastructure_role)
    add_outputs(
        t,
        {
            "ClusterName": (p["ClusterName"].ref(), "ECS cluster of the service."),
            "ServiceName": (service.get_att("Name"), "Name of the ECS service."),
            "ServiceArn": (service.ref(), "ARN of the ECS service."),
            "TaskDefinitionArn": (task_definition.ref(), "Task definition revision the service runs."),
            "LogGroupName": (log_group.ref(), "Log group of the containers."),
            "ContainerName": (CONTAINER_NAME, "Name of the application container."),
        },
    )
    return t


def assume_role_by_ecs_tasks():
    return policy(
        Statement(
            Effect=Allow,
            Principal=Principal("Service", "ecs-tasks.amazonaws.com"),
            Action=[AssumeRole],
            Condition=Condition(StringEquals("aws:SourceAccount", Ref("AWS::AccountId"))),
        )
    )


def create_execution_role(t, p, log_group):
    repository_arn = arn("ecr", "repository/${EcrRepositoryName}")
    return t.add_resource(
        Role(
            "ExecutionRole",
            Description="ECS agent: pull the image, write the service's logs, read the database secret",
            AssumeRolePolicyDocument=assume_role_by_ecs_tasks(),
            PermissionsBoundary=role_boundary_arn(),  # created by the ci layer (templates/ci.py)
            Policies=[
                Policy(
                    PolicyName="pull-log-secret",
                    PolicyDocument=policy(
                        # GetAuthorizationToken has no resource-level permissions.
                        Statement(Sid="EcrLogin", Effect=Allow, Action=[ecr.GetAuthorizationToken], Resource=["*"]),
                        Statement(
                            Sid="PullImage",
                            Effect=Allow,
                            Action=[ecr.BatchCheckLayerAvailability, ecr.BatchGetImage, ecr.GetDownloadUrlForLayer],
                            Resource=[repository_arn],
                        ),
                        Statement(
                            Sid="WriteLogs",
                            Effect=Allow,
                            Action=[logs.CreateLogStream, logs.PutLogEvents],
                            Resource=[Sub(f"${{{log_group.title}.Arn}}")],
                        ),
                        Statement(
                            Sid="ReadDatabaseSecret",
                            Effect=Allow,
                            Action=[secretsmanager.GetSecretValue],
                            Resource=[p["DatabaseSecretArn"].ref()],
                        ),
                    ),
                )
            ],
        )
    )


def create_task_role(t):
    # The application itself calls no AWS API yet; its role grants nothing.
    return t.add_resource(
        Role(
            "TaskRole",
            Description="StartupWebApp application containers (no AWS permissions yet)",
            AssumeRolePolicyDocument=assume_role_by_ecs_tasks(),
            PermissionsBoundary=role_boundary_arn(),  # created by the ci layer (templates/ci.py)
        )
    )


def create_task_definition(t, p, execution_role, task_role, log_group):
    command = [
        "gunicorn",
        "StartupWebApp.wsgi:application",
        "--bind",
        Sub("0.0.0.0:${ContainerPort}"),
        "--workers",
        Sub("${GunicornWorkers}"),
        "--timeout",
        Sub("${GunicornTimeoutSeconds}"),
        "--graceful-timeout",
        Sub("${GunicornTimeoutSeconds}"),
    ]
    image = Sub("${AWS::AccountId}.dkr.ecr.${AWS::Region}.${AWS::URLSuffix}/${EcrRepositoryName}:${ImageTag}")
    tmp_mount = MountPoint(SourceVolume=TMP_VOLUME, ContainerPath=TMP_PATH, ReadOnly=False)

    def logs_to(stream_prefix):
        options = {"awslogs-group": log_group.ref(), "awslogs-region": Ref(AWS_REGION), "awslogs-stream-prefix": stream_prefix}
        return LogConfiguration(LogDriver="awslogs", Options=options)

    tmp_init = ContainerDefinition(
        Name=TMP_INIT_CONTAINER,
        Image=image,
        Essential=False,
        User="0",
        EntryPoint=["chmod"],
        Command=["1777", TMP_PATH],
        LogConfiguration=logs_to("init"),
        ReadonlyRootFilesystem=True,
        MountPoints=[tmp_mount],
    )
    container = ContainerDefinition(
        Name=CONTAINER_NAME,
        Image=image,
        Essential=True,
        Command=command,
        PortMappings=[PortMapping(ContainerPort=p["ContainerPort"].ref(), Protocol="tcp")],
        Environment=[
            Environment(Name="DJANGO_SETTINGS_MODULE", Value=p["DjangoSettingsModule"].ref()),
            Environment(Name="DATABASE_NAME", Value=p["DatabaseName"].ref()),
        ],
        Secrets=[Secret(Name=variable, ValueFrom=Sub(f"${{DatabaseSecretArn}}:{key}::")) for variable, key in DATABASE_SECRET_KEYS.items()],
        LogConfiguration=logs_to(WEB_LOG_STREAM_PREFIX),
        ReadonlyRootFilesystem=True,
        MountPoints=[tmp_mount],
        DependsOn=[ContainerDependency(ContainerName=TMP_INIT_CONTAINER, Condition="SUCCESS")],
        User=p["ContainerUser"].ref(),
        StopTimeout=p["StopTimeoutSeconds"].ref(),
    )
    return t.add_resource(
        TaskDefinition(
            "TaskDefinition",
            Family=Sub("${NamePrefix}-service-task"),
            RequiresCompatibilities=["FARGATE"],
            NetworkMode="awsvpc",
            Cpu=Sub("${TaskCpu}"),
            Memory=Sub("${TaskMemory}"),
            RuntimePlatform=RuntimePlatform(CpuArchitecture="X86_64", OperatingSystemFamily="LINUX"),
            ExecutionRoleArn=execution_role.get_att("Arn"),
            TaskRoleArn=task_role.get_att("Arn"),
            ContainerDefinitions=[tmp_init, container],
            Volumes=[Volume(Name=TMP_VOLUME)],
        )
    )


PAUSES_FOR_TESTS = "PausesForTests"


def create_infrastructure_role(t):
    """The role ECS assumes to move the listener rules' weights and register the new tasks during a
    BLUE_GREEN, CANARY or LINEAR release. The actions are those of AWS's managed policy
    AmazonECSInfrastructureRolePolicyForLoadBalancers, scoped to this project's load balancers and
    target groups (the managed policy allows every one in the account). Copied from the policy's version
    v2 (July 2025); its page now shows v6 (edited February 2026), whose added statements could not be read
    here: a release that fails with AccessDenied for the role's session (CloudTrail's roleSessionName
    ECSNetworkingWithELB or ecs-service-scheduler, the developer guide's page below says) names the action
    to add to this policy and to the boundary (templates/ci.py).
    https://docs.aws.amazon.com/AmazonECS/latest/developerguide/AmazonECSInfrastructureRolePolicyForLoadBalancers.html
    https://docs.aws.amazon.com/aws-managed-policy/latest/reference/AmazonECSInfrastructureRolePolicyForLoadBalancers.html"""

    return t.add_resource(
        Role(
            "InfrastructureRole",
            Condition=SHIFTS_TRAFFIC,
            Description="ECS: shift the load balancer's traffic between the service's target groups during a release",
            AssumeRolePolicyDocument=policy(
                # As AWS's own trust policy for this role states it: no aws:SourceAccount condition,
                # which ECS is not documented to send when it assumes the role.
                # https://docs.aws.amazon.com/AmazonECS/latest/developerguide/AmazonECSInfrastructureRolePolicyForLoadBalancers.html
                Statement(Effect=Allow, Principal=Principal("Service", "ecs.amazonaws.com"), Action=[AssumeRole])
            ),
            PermissionsBoundary=role_boundary_arn(),  # created by the ci layer (templates/ci.py)
            Policies=[
                Policy(
                    PolicyName="shift-traffic",
                    PolicyDocument=policy(
                        READ_LOAD_BALANCING,
                        Statement(
                            Sid="RegisterTasks",
                            Effect=Allow,
                            Action=actions("elasticloadbalancing", *TASK_REGISTRATION),
                            Resource=[arn("elasticloadbalancing", f"targetgroup/{name}/*") for name in TARGET_GROUP_NAMES],
                        ),
                        Statement(
                            Sid="MoveTraffic",
                            Effect=Allow,
                            Action=actions("elasticloadbalancing", *TRAFFIC_MOVES),
                            Resource=[
                                arn("elasticloadbalancing", "listener/app/${NamePrefix}-alb/*"),
                                arn("elasticloadbalancing", "listener-rule/app/${NamePrefix}-alb/*"),
                            ],
                        ),
                    ),
                )
            ],
        )
    )


def create_service(t, p, task_definition, infrastructure_role):
    strategy = p["DeploymentStrategy"].ref()
    return t.add_resource(
        Service(
            "Service",
            ServiceName=Sub(SERVICE_NAME),
            Cluster=p["ClusterName"].ref(),
            TaskDefinition=task_definition.ref(),
            LaunchType="FARGATE",
            PlatformVersion="LATEST",
            # Stated only when the service is created. An update that states a count resets the
            # service to it, undoing auto-scaling; one that omits it leaves the count alone.
            DesiredCount=If("SetDesiredCount", p["DesiredCount"].ref(), NoValue),
            NetworkConfiguration=NetworkConfiguration(
                AwsvpcConfiguration=AwsvpcConfiguration(
                    AssignPublicIp="DISABLED",
                    Subnets=p["PrivateSubnetIds"].ref(),
                    SecurityGroups=[p["BackendSecurityGroupId"].ref()],
                )
            ),
            LoadBalancers=[
                LoadBalancer(
                    ContainerName=CONTAINER_NAME,
                    ContainerPort=p["ContainerPort"].ref(),
                    TargetGroupArn=p["TargetGroupArn"].ref(),
                    AdvancedConfiguration=If(
                        SHIFTS_TRAFFIC,
                        AdvancedConfiguration(
                            AlternateTargetGroupArn=p["AlternateTargetGroupArn"].ref(),
                            ProductionListenerRule=p["ProductionListenerRuleArn"].ref(),
                            TestListenerRule=p["TestListenerRuleArn"].ref(),
                            RoleArn=infrastructure_role.get_att("Arn"),
                        ),
                        NoValue,
                    ),
                )
            ],
            HealthCheckGracePeriodSeconds=p["HealthCheckGracePeriodSeconds"].ref(),
            DeploymentConfiguration=DeploymentConfiguration(
                # https://docs.aws.amazon.com/AmazonECS/latest/developerguide/deployment-type-blue-green.html
                Strategy=strategy,
                # Left out under ROLLING. The ECS guide: with deployment alarms, ECS "computes this time period based
                # on the alarm configuration ... You can't set this value"
                # (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/deployment-alarm-failure.html). The
                # CloudFormation reference page (aws-properties-ecs-service-deploymentconfiguration.html) still says an
                # unset one is "3 hours (180 minutes)" for rolling deployments; the resource schema cfn-lint ships now says
                # "For rolling deployments, there is no bake time set by default", and that one given raises the
                # handler's timeout to 36 hours. Should the page's hold, a rolling release stays in progress far past
                # its tasks' health (make status shows it).
                BakeTimeInMinutes=If(SHIFTS_TRAFFIC, p["BakeTimeMinutes"].ref(), NoValue),
                CanaryConfiguration=If(
                    "Canary",
                    CanaryConfiguration(CanaryPercent=p["CanaryPercent"].ref(), CanaryBakeTimeInMinutes=p["CanaryBakeTimeMinutes"].ref()),
                    NoValue,
                ),
                LinearConfiguration=If(
                    "Linear",
                    LinearConfiguration(
                        StepPercent=p["LinearStepPercent"].ref(), StepBakeTimeInMinutes=p["LinearStepBakeTimeMinutes"].ref()
                    ),
                    NoValue,
                ),
                # The release waits once the test listener reaches the new tasks, until `make continue`
                # (ContinueServiceDeployment), rolling back after TestPauseMinutes without it.
                # https://docs.aws.amazon.com/AmazonECS/latest/developerguide/deployment-lifecycle-hooks.html
                # https://docs.aws.amazon.com/AmazonECS/latest/developerguide/continue-service-deployment.html
                LifecycleHooks=If(
                    PAUSES_FOR_TESTS,
                    [
                        DeploymentLifecycleHook(
                            TargetType="PAUSE",
                            LifecycleStages=["POST_TEST_TRAFFIC_SHIFT"],
                            TimeoutConfiguration=HookTimeoutConfig(TimeoutInMinutes=p["TestPauseMinutes"].ref(), Action="ROLLBACK"),
                        )
                    ],
                    NoValue,
                ),
                MinimumHealthyPercent=100,
                MaximumPercent=200,
                DeploymentCircuitBreaker=DeploymentCircuitBreaker(Enable=True, Rollback=True),
                # A release that makes the tasks answer 5xx or fail health checks is rolled back. The
                # circuit breaker and the alarms both work for rolling and blue/green releases:
                # https://docs.aws.amazon.com/AmazonECS/latest/developerguide/deployment-failure-detection.html
                # That page says both methods "only support rolling update deployment and blue/green
                # deployment types"; the canary and linear pages (canary-deployment-implementation.html)
                # name the alarms only. The circuit breaker is kept for them: undocumented, unverified on AWS.
                # The API reference's "can only be used for services using the rolling update (ECS) deployment
                # type" (API_DeploymentCircuitBreaker.html) names the ECS deployment controller, which blue/green
                # uses too ("Set the service deployment controller to ECS"), against CODE_DEPLOY and EXTERNAL:
                # https://docs.aws.amazon.com/AmazonECS/latest/developerguide/blue-green-deployment-implementation.html
                Alarms=DeploymentAlarms(AlarmNames=p["DeploymentAlarmNames"].ref(), Enable=True, Rollback=True),
            ),
            PropagateTags="SERVICE",
            EnableECSManagedTags=True,
        )
    )
