"""scaling: Application Auto Scaling of the service's desired count between MinCapacity and
MaxCapacity, tracking average CPU and average memory. Target tracking also scales in below the
DesiredCount a deploy sets: at MinCapacity 1, a quiet spell leaves one task, in one Availability Zone,
serving alone until load brings a second (MinCapacity 2 keeps two)."""

# Target tracking "adds or removes service tasks as required to keep the metric at, or close to, the
# specified target value", and the desired count "will not go below" the minimum:
# https://docs.aws.amazon.com/AmazonECS/latest/developerguide/service-autoscaling-targettracking.html
# https://docs.aws.amazon.com/AmazonECS/latest/developerguide/target-tracking-create-policy.html

from troposphere import Sub, Template
from troposphere.applicationautoscaling import (
    PredefinedMetricSpecification,
    ScalableTarget,
    ScalingPolicy,
    TargetTrackingScalingPolicyConfiguration,
)

from templates import inputs
from templates.common import add_outputs, new_template

# policy logical id -> (predefined metric, input holding its target)
TARGETS = {
    "CpuScalingPolicy": ("ECSServiceAverageCPUUtilization", "CpuTargetPercent"),
    "MemoryScalingPolicy": ("ECSServiceAverageMemoryUtilization", "MemoryTargetPercent"),
}


def build() -> Template:
    t = new_template("StartupWebApp scaling: auto-scaling of the ECS service on CPU and memory.")
    p = {
        name: inputs.add(t, name)
        for name in [
            "ServiceClusterName",
            "ServiceName",
            "MinCapacity",
            "MaxCapacity",
            "CpuTargetPercent",
            "MemoryTargetPercent",
            "ScaleOutCooldownSeconds",
            "ScaleInCooldownSeconds",
        ]
    }
    target = t.add_resource(
        ScalableTarget(
            "ScalableTarget",
            ServiceNamespace="ecs",
            ScalableDimension="ecs:service:DesiredCount",
            ResourceId=Sub("service/${ServiceClusterName}/${ServiceName}"),
            MinCapacity=p["MinCapacity"].ref(),
            MaxCapacity=p["MaxCapacity"].ref(),
        )
    )
    outputs = {"ScalableTargetId": (target.ref(), "Id of the scalable target.")}
    for logical_id, (metric, target_input) in TARGETS.items():
        policy = t.add_resource(
            ScalingPolicy(
                logical_id,
                PolicyName=Sub("${ServiceName}-" + metric),
                PolicyType="TargetTrackingScaling",
                ScalingTargetId=target.ref(),
                TargetTrackingScalingPolicyConfiguration=TargetTrackingScalingPolicyConfiguration(
                    PredefinedMetricSpecification=PredefinedMetricSpecification(PredefinedMetricType=metric),
                    TargetValue=p[target_input].ref(),
                    ScaleOutCooldown=p["ScaleOutCooldownSeconds"].ref(),
                    ScaleInCooldown=p["ScaleInCooldownSeconds"].ref(),
                ),
            )
        )
        outputs[logical_id + "Arn"] = (policy.ref(), f"Target-tracking policy on {metric}.")
    add_outputs(t, outputs)
    return t
