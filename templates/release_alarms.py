"""release-alarms: the alert topic and the alarms that show a bad release (5xx answers from the
tasks, unhealthy targets). The ECS service rolls a deployment back when they fire, and the
deployer gives them to CloudFormation as rollback triggers of the service stack."""

from awacs import kms
from awacs.aws import Allow, Principal, Statement
from troposphere import Equals, Join, Not, Select, Split, Sub, Template
from troposphere.cloudwatch import Alarm, MetricDimension
from troposphere.sns import SubscriptionResource, Topic

from templates import inputs
from templates.common import add_key, add_outputs, add_shifts_traffic, new_template, target_groups

MOST_ALERT_EMAILS = inputs.INPUTS["AlertEmails"].items[1]


def build() -> Template:
    t = new_template(
        "StartupWebApp release-alarms: the alert topic, its KMS key and e-mail subscriptions, and the alarms that roll a bad release back."
    )
    p = {
        name: inputs.add(t, name)
        for name in [
            "NamePrefix",
            "AlertEmails",
            "AlarmPeriodSeconds",
            "BadPeriodsToAlarm",
            "Target5xxThreshold",
            "RollbackMonitoringMinutes",
            "LoadBalancerFullName",
            "TargetGroupFullName",
            "AlternateTargetGroupFullName",
            "DeploymentStrategy",
        ]
    }
    add_shifts_traffic(t, p["DeploymentStrategy"])
    topic = add_alert_topic(t, p)
    periods = {
        "EvaluationPeriods": p["BadPeriodsToAlarm"].ref(),
        "DatapointsToAlarm": p["BadPeriodsToAlarm"].ref(),
        "TreatMissingData": "notBreaching",
        "AlarmActions": [topic.ref()],
        "OKActions": [topic.ref()],
    }
    # Both alarms watch both target groups when releases shift traffic: after a BLUE_GREEN, CANARY or
    # LINEAR release the tasks serve from whichever one ECS moved traffic to. The 5xx count of the load balancer dimension alone
    # sums every target group behind it (the test listener's traffic included: a new release that
    # fails its testers is a bad release too).
    # https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-cloudwatch-metrics.html
    target_5xx = t.add_resource(
        Alarm(
            "Target5xxAlarm",
            AlarmName=Sub("${NamePrefix}-target-5xx"),
            AlarmDescription=(
                "The tasks answer 5xx: the application fails requests. Look first at the service's log group for "
                "tracebacks, then at what the last deploy changed; a deployment in progress is rolled back."
            ),
            Namespace="AWS/ApplicationELB",
            MetricName="HTTPCode_Target_5XX_Count",
            Dimensions=[MetricDimension(Name="LoadBalancer", Value=p["LoadBalancerFullName"].ref())],
            Period=p["AlarmPeriodSeconds"].ref(),
            Statistic="Sum",
            ComparisonOperator="GreaterThanOrEqualToThreshold",
            Threshold=p["Target5xxThreshold"].ref(),
            **periods,
        )
    )
    # UnHealthyHostCount exists per target group only. When releases shift traffic: the sum over both,
    # point by point, a target group without data counting 0; under ROLLING the alternate target
    # group belongs to no listener and has no metrics at all, so the primary one alone.
    # https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/using-metric-math.html
    unhealthy = t.add_resource(
        Alarm(
            "UnhealthyHostsAlarm",
            AlarmName=Sub("${NamePrefix}-unhealthy-hosts"),
            AlarmDescription=(
                "A registered task fails the target group's health check (HealthCheckPath of the alb layer): it cannot "
                "answer or its database is unreachable. Look first at "
                "the target groups' health reasons and the task's log stream; a deployment in progress is rolled back."
            ),
            Metrics=target_groups(p, "UnHealthyHostCount", "Maximum", "unhealthy tasks"),
            ComparisonOperator="GreaterThanOrEqualToThreshold",
            Threshold=1,
            **periods,
        )
    )
    alarms = [target_5xx, unhealthy]
    add_outputs(
        t,
        {
            "AlertTopicArn": (topic.ref(), "SNS topic every alarm notifies."),
            "DeploymentAlarmNames": (Join(",", [a.ref() for a in alarms]), "Alarms the ECS service watches during a deployment."),
            "RollbackAlarmArns": (Join(",", [a.get_att("Arn") for a in alarms]), "Rollback triggers of the service stack."),
            "RollbackMonitoringMinutes": (Sub("${RollbackMonitoringMinutes}"), "Minutes CloudFormation watches the triggers."),
        },
    )
    return t


def add_alert_topic(t, p):
    # CloudWatch cannot publish to a topic encrypted with the AWS-managed SNS key: it needs a
    # customer-managed key whose policy lets cloudwatch.amazonaws.com use it, with the two actions that page's
    # statement grants (kms:GenerateDataKey* and kms:Decrypt).
    # https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html#compatibility-with-aws-services
    # Without aws:SourceArn or aws:SourceAccount conditions: that page's statement has none and does not say
    # CloudWatch's requests to KMS carry them, and a condition they lack would drop every notification unseen.
    # The key encrypts this topic alone.
    publishes = Statement(
        Sid="CloudWatchPublishes",
        Effect=Allow,
        Principal=Principal("Service", "cloudwatch.amazonaws.com"),
        Action=[kms.Decrypt, kms.Action("GenerateDataKey*")],
        Resource=["*"],
    )
    # Nothing lasting is encrypted with it: notifications are delivered within days.
    key = add_key(
        t,
        "AlertTopicKey",
        Sub("Encrypts the ${NamePrefix}-alerts SNS topic"),
        publishes,
        DeletionPolicy="Delete",
        UpdateReplacePolicy="Delete",
    )
    topic = t.add_resource(Topic("AlertTopic", TopicName=Sub("${NamePrefix}-alerts"), KmsMasterKeyId=key.ref()))
    # CloudFormation cannot loop over a list: one optional subscription per slot. Padding the
    # joined list with commas makes every Select safe when fewer addresses are given.
    padded = Split(",", Sub("${AlertEmails}" + "," * MOST_ALERT_EMAILS))
    for slot in range(MOST_ALERT_EMAILS):
        condition = f"HasAlertEmail{slot + 1}"
        t.add_condition(condition, Not(Equals(Select(slot, padded), "")))
        t.add_resource(
            SubscriptionResource(
                f"AlertEmailSubscription{slot + 1}",
                Condition=condition,
                TopicArn=topic.ref(),
                Protocol="email",
                Endpoint=Select(slot, padded),
            )
        )
    return topic
