"""How long a release takes, step by step, from an environment's values: the model of the review's
deploy-time section (scripts/review/render.py)."""

from templates import inputs, params

# A target the service registers is healthy after ONE passing health check, not after
# HealthyThresholdCount of them; the threshold counts for a target coming back from unhealthy:
# https://docs.aws.amazon.com/elasticloadbalancing/latest/application/target-group-health-checks.html
# With MinimumHealthyPercent 100 and MaximumPercent 200 (templates/service.py) ECS starts the whole
# new set of tasks before it stops any old one:
# https://docs.aws.amazon.com/AmazonECS/latest/developerguide/deployment-type-ecs.html
# A deregistered target drains for at most the deregistration delay (at once if it has no
# connections) before ECS stops its task:
# https://docs.aws.amazon.com/elasticloadbalancing/latest/application/edit-target-group-attributes.html#deregistration-delay
# With deployment alarms ECS keeps a rolling deployment in progress for a bake time it computes from
# the alarms, after the old tasks are gone ("You can't set this value"):
# https://docs.aws.amazon.com/AmazonECS/latest/developerguide/deployment-alarm-failure.html
# ECS ignores failing load balancer health checks of a new task for the grace period:
# https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-ecs-service.html#cfn-ecs-service-healthcheckgraceperiodseconds
DEPLOY_TIME_INPUTS = (
    "HealthCheckIntervalSeconds",
    "HealthyThresholdCount",
    "DeregistrationDelaySeconds",
    "HealthCheckGracePeriodSeconds",
    "StopTimeoutSeconds",
    "RollbackMonitoringMinutes",
)


def deploy_times(values: dict) -> dict:
    """The deploy-time model's terms in seconds, from an environment's input values (strings):
    DEPLOY_TIME_INPUTS, and DeploymentStrategy and params.WAIT_INPUTS for a release that shifts traffic."""
    v = {name: int(values[name]) for name in DEPLOY_TIME_INPUTS}
    terms = {
        "first_check": v["HealthCheckIntervalSeconds"],
        "recovery": v["HealthCheckIntervalSeconds"] * v["HealthyThresholdCount"],
        "drain": v["DeregistrationDelaySeconds"],
        "stop": v["StopTimeoutSeconds"],
        "watch": v["RollbackMonitoringMinutes"] * 60,
        "grace": v["HealthCheckGracePeriodSeconds"],
        "unhealthy": v["HealthCheckIntervalSeconds"] * inputs.UNHEALTHY_THRESHOLD_COUNT,
    }
    terms["rolling_most"] = terms["first_check"] + terms["drain"] + terms["stop"]
    # a release that shifts traffic also waits on purpose: the shifting, the bake and, at most, the pause
    terms["shifting_most"] = terms["rolling_most"] + params.release_wait_minutes(params.release_waits(values)) * 60
    terms["failing_task"] = max(terms["grace"], terms["unhealthy"])
    return terms


def duration(seconds: int) -> str:
    minutes, rest = divmod(seconds, 60)
    if not minutes:
        return f"{rest} s"
    return f"{minutes} min" + (f" {rest} s" if rest else "") + f" ({seconds} s)"
