"""Small helpers every layer uses, and the constants the tools share with the layers: the deployer's
wait bounds (WAIT_MINUTES, CHANGE_SET_WAIT_MINUTES, ...) and the names of its SSM parameters."""

from awacs import kms
from awacs.aws import Action, Allow, Condition, PolicyDocument, Principal, Statement, StringEquals
from troposphere import Equals, If, Not, Output, Parameter, Sub, Template
from troposphere.cloudwatch import Metric, MetricDataQuery, MetricDimension, MetricStat
from troposphere.kms import Key
from troposphere.logs import LogGroup

# Stacks are <PROJECT>-<env>-<layer>, and every resource name starts with it (NamePrefix), so that
# the ci layer's roles can be scoped to the project by that one prefix.
PROJECT = "startupwebapp"
# The SSM parameters the deployer keeps for an environment (scripts/deploy: the release history, the deploy lock, the
# marks of stack policies a run relaxed, one per layer under the last), which the ci layer's deploy role may use.
RELEASE_HISTORY, DEPLOY_LOCK, RELAXED_POLICY_MARKS = "service/releases", "deploy-lock", "relaxed-stack-policy"


def deploy_parameter(env: str, name: str) -> str:
    """The name of the deployer's SSM parameter `name` for env ("*": every environment's, as an IAM resource)."""
    return f"/{PROJECT}/{env}/{name}"


# The permissions boundary every role the layers other than ci create carries (the ci layer creates it, with this
# fixed account-wide name): it caps a role at what the project's tasks need, whatever its policies say.
ROLE_BOUNDARY = f"{PROJECT}-role-boundary"
# What holds data (log groups, their keys, the access-log bucket) and the certificate stay in the
# account when their stack is deleted or they are replaced; `make purge` deletes them once the stack
# is gone. RetainExceptOnCreate: a first create that rolls back deletes them too, so that a failed
# create leaves nothing behind to block the next one (UpdateReplacePolicy has no such value).
# https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-attribute-deletionpolicy.html
RETAIN = {"DeletionPolicy": "RetainExceptOnCreate", "UpdateReplacePolicy": "Retain"}


# The GitHub Actions deploy job's time (timeout-minutes of the deploy job in
# .github/workflows/deploy-service.yml; tests/test_workflows.py checks they agree), and how long the
# deploy role's credentials last. The job runs the migrations and then the service release; both
# waits must end inside it, so that the deployer gives up cleanly (and frees the lock) rather than
# being killed: templates/params.py refuses a release that could last longer. GitHub's hosted
# runners stop a job after 6 hours.
# https://docs.github.com/en/actions/reference/workflows-and-actions/workflow-syntax#jobsjob_idtimeout-minutes
CI_DEPLOY_JOB_MINUTES = 360
# What the deploy job spends outside the deployer's bounded waits: checkout, Python and the pinned
# dependencies, credentials, generate.py --check, registering the migrations' task definition, the
# summary. A generous allowance (a few minutes is usual), not a bound anything enforces.
CI_JOB_STEPS_MINUTES = 15

# Minutes the deployer waits for one stack operation of a layer; past them it stops waiting, says
# what is still in progress and how to follow it (CloudFormation carries on). The certificate waits
# for its DNS validation; the service for healthy tasks, to which the deployer adds the rollback
# triggers' watch and the minutes a release that shifts traffic waits on purpose (wait_minutes).
WAIT_MINUTES = {"cert-dns": 45, "service": 60}
DEFAULT_WAIT_MINUTES = 30
TASK_WAIT_MINUTES = 30  # make task's wait for a one-off task (migrations) to stop, unless MAX_WAIT= says otherwise
# A change set usually takes seconds to compute (our experience, not a documented bound); past this
# something is wrong, and waiting on is the user's call.
CHANGE_SET_WAIT_MINUTES = 10

# How long a release that shifts traffic may wait on purpose (shifting, bake and pause for tests), and
# CloudFormation watch the rollback alarms after it: what the deploy job's time leaves after its own
# steps, the migrations (at most TASK_WAIT_MINUTES), the service's change set (at most
# CHANGE_SET_WAIT_MINUTES) and the service update's own bound, so that the deployer gives up cleanly
# rather than being killed. With the job inside GitHub's 6 hours (tests/test_workflows.py), that is far
# inside CloudFormation's own bounds: a canary or linear update's configured waits at most 33 hours, an
# update at most 36.
# https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-properties-ecs-service-canaryconfiguration.html
# https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-properties-ecs-service-linearconfiguration.html
MOST_RELEASE_WAIT_MINUTES = (
    CI_DEPLOY_JOB_MINUTES - CI_JOB_STEPS_MINUTES - TASK_WAIT_MINUTES - CHANGE_SET_WAIT_MINUTES - WAIT_MINUTES["service"]
)

# The longest CloudFormation watches rollback triggers after an update: MonitoringTimeInMinutes "Minimum value of 0.
# Maximum value of 180." https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_RollbackConfiguration.html
MOST_MONITORING_MINUTES = 180

# The condition of every layer whose resources depend on whether a release shifts traffic between
# the two target groups (DeploymentStrategy BLUE_GREEN, CANARY or LINEAR) or replaces the tasks in
# place (ROLLING).
SHIFTS_TRAFFIC = "ShiftsTraffic"


def shifts_traffic(strategy: Parameter):
    """DeploymentStrategy is not ROLLING; also what the layers' Rules sections test."""
    return Not(Equals(strategy.ref(), "ROLLING"))


def add_shifts_traffic(t: Template, strategy: Parameter) -> None:
    t.add_condition(SHIFTS_TRAFFIC, shifts_traffic(strategy))


def add_shifting_rule(t: Template, strategy: Parameter, name: str, assertion, description: str) -> None:
    """A Rules entry that holds when DeploymentStrategy shifts traffic. CloudFormation checks rules
    before it changes anything, in the console too; a rule cannot name a template condition, so
    shifts_traffic is written out in it.
    https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/rules-section-structure.html"""
    t.add_rule(name, {"RuleCondition": shifts_traffic(strategy), "Assertions": [{"Assert": assertion, "AssertDescription": description}]})


def role_boundary_arn() -> Sub:
    """ARN of the ROLE_BOUNDARY managed policy in this account."""
    return arn("iam", f"policy/{ROLE_BOUNDARY}", region=False)


def new_template(description: str) -> Template:
    template = Template(Description=description)
    template.set_version("2010-09-09")
    return template


def add_outputs(template: Template, outputs: dict, condition=None) -> None:
    """outputs: logical name -> (value, description); with `condition`, they exist only when it holds
    (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/outputs-section-structure.html)."""
    extra = {"Condition": condition} if condition else {}
    for name, (value, description) in outputs.items():
        template.add_output(Output(name, Value=value, Description=description, **extra))


# The alb layer's two target groups; the service layer's infrastructure role registers tasks in them
# by name. Exact names, not ${NamePrefix}-tg*: that would reach the groups of an environment whose
# NamePrefix starts with this one's and -tg.
TARGET_GROUP_NAMES = ("${NamePrefix}-tg", "${NamePrefix}-tg-alt")


def arn(service: str, resource: str, region: bool = True, account: bool = True) -> Sub:
    """arn:<partition>:<service>:<this region>:<this account>:<resource>, resource may use ${Parameter}."""
    return Sub(
        f"arn:${{AWS::Partition}}:{service}:{'${AWS::Region}' if region else ''}:{'${AWS::AccountId}' if account else ''}:{resource}"
    )


def actions(prefix: str, *names: str) -> list[Action]:
    return [Action(prefix, name) for name in names]


def policy(*statements: Statement) -> PolicyDocument:
    """An IAM policy document of these statements, in the current policy language version."""
    return PolicyDocument(Version="2012-10-17", Statement=list(statements))


# What ECS's infrastructure role does in a BLUE_GREEN, CANARY or LINEAR release (Elastic Load
# Balancing actions): read the listeners, rules and target groups; register and deregister the new
# tasks; move the rules' weights. The service layer's infrastructure role (templates/service.py) does
# these and the ci layer's permissions boundary allows exactly these.
READ_LOAD_BALANCING = Statement(
    Sid="ReadLoadBalancing",
    Effect=Allow,
    Action=actions("elasticloadbalancing", "DescribeListeners", "DescribeRules", "DescribeTargetGroups", "DescribeTargetHealth"),
    # The Describe actions have no resource types, so only "*":
    # https://docs.aws.amazon.com/service-authorization/latest/reference/list_awselasticloadbalancingv2.html
    Resource=["*"],
)
TASK_REGISTRATION = ("RegisterTargets", "DeregisterTargets")
TRAFFIC_MOVES = ("ModifyListener", "ModifyRule")


def skip_checkov(*checks) -> dict:
    """Resource metadata that skips checkov checks; each entry is (check id, reason)."""
    return {"checkov": {"skip": [{"id": check, "comment": reason} for check, reason in checks]}}


IGNORED_RULE_REASONS = "cfn-lint-ignore-reasons"  # resource Metadata beside cfn-lint's own: rule id -> why


def ignore_cfn_lint(*rules) -> dict:
    """Resource metadata that turns cfn-lint rules off for the resource; each entry is (rule id,
    reason). cfn-lint reads only the ids; the review documents show the reasons."""
    return {
        "cfn-lint": {"config": {"ignore_checks": [rule for rule, _ in rules]}},
        IGNORED_RULE_REASONS: dict(rules),
    }


def add_key(t: Template, logical_id: str, description, user: Statement, **attributes) -> Key:
    """A rotating KMS key that the account administers and `user` (a service statement) may use."""
    administers = Statement(
        Sid="AccountAdministers",
        Effect=Allow,
        Principal=Principal("AWS", arn("iam", "root", region=False)),
        Action=[kms.Action("*")],
        Resource=["*"],
    )
    return t.add_resource(
        Key(logical_id, Description=description, EnableKeyRotation=True, KeyPolicy=policy(administers, user), **attributes)
    )


LOGS_KEY_ACTIONS = ("Encrypt*", "Decrypt*", "ReEncrypt*", "GenerateDataKey*", "Describe*")


def add_encrypted_log_group(t: Template, name: str, retention: Parameter) -> LogGroup:
    """Log group `name` (a Fn::Sub string) and the KMS key that encrypts only it; both retained."""
    log_group_arn = arn("logs", "log-group:" + name)
    # The actions of AWS's key policy for a log group's key, wildcards as written there: CloudWatch Logs may call any
    # (GenerateDataKeyWithoutPlaintext among them) when it encrypts and reads the group's events
    # (https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/encrypt-log-data-kms.html, step 2).
    logs_use = Statement(
        Sid="LogsUseForThisLogGroup",
        Effect=Allow,
        Principal=Principal("Service", Sub("logs.${AWS::Region}.amazonaws.com")),
        Action=[kms.Action(action) for action in LOGS_KEY_ACTIONS],
        Resource=["*"],
        Condition=Condition(StringEquals("kms:EncryptionContext:aws:logs:arn", log_group_arn)),
    )
    key = add_key(t, "LogKey", Sub(f"Encrypts the {name} log group"), logs_use, **RETAIN)
    return t.add_resource(
        LogGroup("LogGroup", LogGroupName=Sub(name), RetentionInDays=retention.ref(), KmsKeyId=key.get_att("Arn"), **RETAIN)
    )


# --- metric math of the alarms, shared by the release-alarms and alarms layers -------------------
def metric_query(query_id, namespace, metric, dimensions, period, stat="Average", returned=False, label=None) -> MetricDataQuery:
    """One metric of an alarm's metric math; returned=True for the one the alarm watches."""
    metric_stat = MetricStat(Metric=Metric(Namespace=namespace, MetricName=metric, Dimensions=dimensions), Period=period, Stat=stat)
    return MetricDataQuery(Id=query_id, MetricStat=metric_stat, ReturnData=returned, **({"Label": label} if label else {}))


BOTH_TARGET_GROUPS = "FILL(primary, 0) + FILL(alternate, 0)"


def target_groups(p, metric, statistic, what) -> If:
    """`metric` of the target groups that serve: both, summed, when releases shift traffic (the
    layer's SHIFTS_TRAFFIC condition); the primary one alone under ROLLING."""

    def query(query_id, full_name, returned):
        dimensions = [
            MetricDimension(Name="LoadBalancer", Value=p["LoadBalancerFullName"].ref()),
            MetricDimension(Name="TargetGroup", Value=p[full_name].ref()),
        ]
        label = f"{what} in the primary target group" if returned else None
        return metric_query(query_id, "AWS/ApplicationELB", metric, dimensions, p["AlarmPeriodSeconds"].ref(), statistic, returned, label)

    both = MetricDataQuery(Id="total", Label=f"{what} in both target groups", Expression=BOTH_TARGET_GROUPS, ReturnData=True)
    return If(
        SHIFTS_TRAFFIC,
        [query("primary", "TargetGroupFullName", False), query("alternate", "AlternateTargetGroupFullName", False), both],
        [query("primary", "TargetGroupFullName", True)],
    )
