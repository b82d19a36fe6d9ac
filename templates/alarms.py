"""alarms: what ops should hear about once the service runs: the load balancer failing requests
itself, no healthy task at all, slow answers, CPU or memory high while the service already runs
its maximum task count, and fewer running tasks than desired. They notify the alert topic."""

import json

from troposphere import Sub, Template
from troposphere.cloudwatch import Alarm, MetricDataQuery, MetricDimension

from templates import inputs
from templates.common import add_outputs, add_shifts_traffic, metric_query, new_template, target_groups

INSIGHTS = "ECS/ContainerInsights"  # task counts need Container Insights on the cluster (README)


# An alarm's state while its metric has no data points, by TreatMissingData.
# https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/AlarmThatSendsEmail.html#alarms-and-missing-data
WITHOUT_DATA = {
    "notBreaching": "no alarm is raised",
    "breaching": "the alarm is raised",
    "ignore": "the state stays what it was",
    "missing": "the state goes to INSUFFICIENT_DATA",
}


def without_data(alarm: dict) -> str:
    missing = alarm["Properties"].get("TreatMissingData", "missing")  # CloudWatch's default
    if isinstance(missing, str) and missing in WITHOUT_DATA:
        return f"without them, as TreatMissingData is {missing}, {WITHOUT_DATA[missing]}"
    return "without them, its TreatMissingData decides its state"


def reads_container_insights(resource: dict) -> bool:
    """Whether a template resource (its JSON) is an alarm reading INSIGHTS metrics, which a cluster
    without Container Insights never publishes (the review and the deploy's note say so)."""
    return resource.get("Type") == "AWS::CloudWatch::Alarm" and INSIGHTS in json.dumps(resource.get("Properties", {}))


def build() -> Template:
    t = new_template("StartupWebApp alarms: load balancer, latency, saturation and task-count alarms.")
    p = {
        name: inputs.add(t, name)
        for name in [
            "NamePrefix",
            "AlarmPeriodSeconds",
            "BadPeriodsToAlarm",
            "Elb5xxThreshold",
            "ResponseTimeP99Seconds",
            "SaturationPercent",
            "SaturationPeriods",
            "MaxCapacity",
            "TasksBelowDesiredMinutes",
            "LoadBalancerFullName",
            "TargetGroupFullName",
            "AlternateTargetGroupFullName",
            "DeploymentStrategy",
            "ServiceClusterName",
            "ServiceName",
            "AlertTopicArn",
        ]
    }
    add_shifts_traffic(t, p["DeploymentStrategy"])
    notify = {"AlarmActions": [p["AlertTopicArn"].ref()], "OKActions": [p["AlertTopicArn"].ref()]}
    load_balancer = [MetricDimension(Name="LoadBalancer", Value=p["LoadBalancerFullName"].ref())]
    service = [
        MetricDimension(Name="ClusterName", Value=p["ServiceClusterName"].ref()),
        MetricDimension(Name="ServiceName", Value=p["ServiceName"].ref()),
    ]
    balancer_periods = {
        "Namespace": "AWS/ApplicationELB",
        "Period": p["AlarmPeriodSeconds"].ref(),
        "EvaluationPeriods": p["BadPeriodsToAlarm"].ref(),
        "DatapointsToAlarm": p["BadPeriodsToAlarm"].ref(),
    }
    alarms = [
        # HTTPCode_ELB_5XX_Count counts every 5xx the load balancer generates (500 too), none of the targets'.
        # https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-cloudwatch-metrics.html
        Alarm(
            "Elb5xxAlarm",
            AlarmName=Sub("${NamePrefix}-alb-5xx"),
            AlarmDescription=(
                "The load balancer itself answers 5xx, not the tasks: mostly 502, 503 or 504, when no task takes the request or tasks time out. "
                "Look first at the target group's healthy count and the tasks' gunicorn timeouts."
            ),
            MetricName="HTTPCode_ELB_5XX_Count",
            Dimensions=load_balancer,
            Statistic="Sum",
            ComparisonOperator="GreaterThanOrEqualToThreshold",
            Threshold=p["Elb5xxThreshold"].ref(),
            TreatMissingData="notBreaching",
            **balancer_periods,
            **notify,
        ),
        Alarm(
            "NoHealthyHostAlarm",
            AlarmName=Sub("${NamePrefix}-no-healthy-host"),
            AlarmDescription=(
                "No task passes the health check: the load balancer fails open, sending requests to the unhealthy tasks, or "
                "answers 503 when none is registered. Look first at the ECS service's events "
                "(tasks failing to start, image pull or secret errors) and at the database."
            ),
            # Healthy tasks in the target groups that serve: after a BLUE_GREEN, CANARY or LINEAR
            # release, whichever one ECS moved traffic to (templates/release_alarms.py).
            Metrics=target_groups(p, "HealthyHostCount", "Minimum", "healthy tasks"),
            EvaluationPeriods=p["BadPeriodsToAlarm"].ref(),
            DatapointsToAlarm=p["BadPeriodsToAlarm"].ref(),
            ComparisonOperator="LessThanThreshold",
            Threshold=1,
            TreatMissingData="breaching",
            **notify,
        ),
        Alarm(
            "SlowResponsesAlarm",
            AlarmName=Sub("${NamePrefix}-slow-responses"),
            AlarmDescription=(
                "The p99 response time is over its threshold (ResponseTimeP99Seconds): more than 1 % of requests take "
                "longer. Look first at the database (slow queries, connections) and at CPU: if the service is at its "
                "maximum task count, it needs more room."
            ),
            # The load balancer dimension alone covers both target groups.
            # https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-cloudwatch-metrics.html
            MetricName="TargetResponseTime",
            Dimensions=load_balancer,
            ExtendedStatistic="p99",
            ComparisonOperator="GreaterThanThreshold",
            Threshold=p["ResponseTimeP99Seconds"].ref(),
            TreatMissingData="notBreaching",
            **balancer_periods,
            **notify,
        ),
    ]
    for resource, use in (("CPU", "CPU use"), ("Memory", "memory use")):
        alarms.append(
            Alarm(
                f"{resource.title()}SaturatedAlarm",
                AlarmName=Sub("${NamePrefix}-" + resource.lower() + "-saturated"),
                AlarmDescription=(
                    f"Average {use} stays high while the service already runs its maximum task count: auto-scaling "
                    "cannot add more. Look first at what drives the load (traffic, a slow endpoint), then raise "
                    "MaxCapacity or the task size."
                ),
                Metrics=[
                    metric_query("usage", "AWS/ECS", f"{resource}Utilization", service, 300),
                    metric_query("tasks", INSIGHTS, "RunningTaskCount", service, 300),
                    MetricDataQuery(
                        Id="saturated",
                        Label=f"{resource} high at the maximum task count",
                        Expression=Sub("IF(usage > ${SaturationPercent} AND tasks >= ${MaxCapacity}, 1, 0)"),
                        ReturnData=True,
                    ),
                ],
                EvaluationPeriods=p["SaturationPeriods"].ref(),
                DatapointsToAlarm=p["SaturationPeriods"].ref(),
                ComparisonOperator="GreaterThanOrEqualToThreshold",
                Threshold=1,
                TreatMissingData="notBreaching",
                **notify,
            )
        )
    alarms.append(
        Alarm(
            "TasksBelowDesiredAlarm",
            AlarmName=Sub("${NamePrefix}-tasks-below-desired"),
            AlarmDescription=(
                "Fewer tasks run than the service wants: tasks crash or cannot be placed. Look first at the ECS "
                "service's events and the stopped tasks' stop reasons."
            ),
            Metrics=[
                metric_query("desired", INSIGHTS, "DesiredTaskCount", service, 60),
                metric_query("running", INSIGHTS, "RunningTaskCount", service, 60),
                MetricDataQuery(Id="missing", Label="tasks below desired", Expression="desired - running", ReturnData=True),
            ],
            EvaluationPeriods=p["TasksBelowDesiredMinutes"].ref(),
            DatapointsToAlarm=p["TasksBelowDesiredMinutes"].ref(),
            ComparisonOperator="GreaterThanThreshold",
            Threshold=0,
            TreatMissingData="notBreaching",
            **notify,
        )
    )
    for alarm in alarms:
        t.add_resource(alarm)
    for alarm in alarms:
        when = alarm.AlarmDescription.split(":")[0]  # the description's first clause
        add_outputs(t, {f"{alarm.title}Name": (alarm.ref(), f"Name of the alarm raised when {when[0].lower()}{when[1:]}.")})
    return t
