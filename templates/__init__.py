"""The layers, what feeds what between them, and the order that follows from it.

Each layer module has a pure `build() -> Template`. WIRING is the only place that says which
upstream output becomes which downstream parameter; the deployer reads it at deploy time and
the layer order is derived from it."""

import sys
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

from templates.errors import ToolError, quiet_interrupts, started_as_a_tool, stop_signals_as_ctrl_c

ROOT = Path(__file__).resolve().parent.parent  # the project: params/, output/, .cfnlintrc, .cache/
CACHE_DIR = ROOT / ".cache"  # what the tools keep between runs (the lint and scan results); make clean removes it

# Every tool imports this package before its heavy imports (troposphere, boto3, cfn-lint): a Ctrl-C
# during them is one line too, and in a tool a kill (SIGTERM) or a closed terminal (SIGHUP), which end it
# as Ctrl-C does, too (they ended it without a word there: half a second of each process make starts).
sys.excepthook = quiet_interrupts(sys.excepthook)
if started_as_a_tool(ROOT):
    stop_signals_as_ctrl_c()

from templates import alarms, alb, cert_dns, ci, release_alarms, scaling, service, waf  # noqa: E402
from templates.common import (  # noqa: E402, F401  (re-exported: templates.PROJECT, templates.WAIT_MINUTES, ...)
    CHANGE_SET_WAIT_MINUTES,
    CI_DEPLOY_JOB_MINUTES,
    DEFAULT_WAIT_MINUTES,
    DEPLOY_LOCK,
    PROJECT,
    RELAXED_POLICY_MARKS,
    RELEASE_HISTORY,
    TASK_WAIT_MINUTES,
    WAIT_MINUTES,
    deploy_parameter,
)


def relative(path: Path) -> Path:
    """Paths under the project print short, as people type them, wherever the tool runs from."""
    return path.relative_to(ROOT) if path.is_relative_to(ROOT) else path


# Ties in the derived order keep this order: ci first, so that the permissions boundary it creates
# exists before the service layer creates roles that name it (templates/ci.py).
LAYERS = {
    "ci": ci,
    "cert-dns": cert_dns,
    "alb": alb,
    "waf": waf,
    "release-alarms": release_alarms,
    "service": service,
    "scaling": scaling,
    "alarms": alarms,
}

# Layers an environment deploys only when its params file lists them in `enabled_layers`.
OPTIONAL_LAYERS = ("waf", "ci")

# (downstream layer, its parameter) <- (upstream layer, its output)
WIRING = {
    ("alb", "CertificateArn"): ("cert-dns", "CertificateArn"),
    ("alb", "HostedZoneId"): ("cert-dns", "HostedZoneId"),
    ("waf", "LoadBalancerArn"): ("alb", "LoadBalancerArn"),
    ("release-alarms", "LoadBalancerFullName"): ("alb", "LoadBalancerFullName"),
    ("release-alarms", "TargetGroupFullName"): ("alb", "TargetGroupFullName"),
    ("release-alarms", "AlternateTargetGroupFullName"): ("alb", "AlternateTargetGroupFullName"),
    ("service", "TargetGroupArn"): ("alb", "TargetGroupArn"),
    ("service", "AlternateTargetGroupArn"): ("alb", "AlternateTargetGroupArn"),
    ("service", "ProductionListenerRuleArn"): ("alb", "ProductionListenerRuleArn"),
    ("service", "TestListenerRuleArn"): ("alb", "TestListenerRuleArn"),
    ("service", "DeploymentAlarmNames"): ("release-alarms", "DeploymentAlarmNames"),
    ("scaling", "ServiceClusterName"): ("service", "ClusterName"),
    ("scaling", "ServiceName"): ("service", "ServiceName"),
    ("alarms", "LoadBalancerFullName"): ("alb", "LoadBalancerFullName"),
    ("alarms", "TargetGroupFullName"): ("alb", "TargetGroupFullName"),
    ("alarms", "AlternateTargetGroupFullName"): ("alb", "AlternateTargetGroupFullName"),
    ("alarms", "ServiceClusterName"): ("service", "ClusterName"),
    ("alarms", "ServiceName"): ("service", "ServiceName"),
    ("alarms", "AlertTopicArn"): ("release-alarms", "AlertTopicArn"),
}

# Layer -> (upstream layer, output listing alarm ARNs, output with the minutes to watch them):
# the deployer hands these to CloudFormation as rollback triggers when it updates the layer.
ROLLBACK_TRIGGERS = {"service": ("release-alarms", "RollbackAlarmArns", "RollbackMonitoringMinutes")}

# (layer, output) -> the commands that read it themselves, besides the wiring into other layers. The
# review lists them under "Used by", so that no reviewer takes them for outputs nothing reads.
# make verify reads the service's addresses and target groups (scripts/deploy/commands.py); make
# logs, task and continue find the service, and a failed release its stopped tasks
# (scripts/deploy/logs.py service_names); the commands that run a change set check the load
# balancer's rules before a release path goes (scripts/deploy/guards.py), and make destroy, diff and those
# its deletion protection; a change set of the
# service, but a repair's, carries the rollback triggers (above).
RUNS_A_CHANGE_SET = ("make deploy", "make execute", "make rollback")
FINDS_THE_SERVICE = ("make logs", "make task", "make continue", *RUNS_A_CHANGE_SET)
READ_BY_TOOLS = {
    ("alb", "ServiceHost"): ("make verify",),
    ("alb", "ServiceUrl"): ("make verify",),
    ("alb", "TestListenerPort"): ("make verify",),
    ("alb", "TargetGroupArn"): ("make verify", *RUNS_A_CHANGE_SET),
    ("alb", "AlternateTargetGroupArn"): ("make verify",),
    ("alb", "ProductionListenerRuleArn"): RUNS_A_CHANGE_SET,
    # whether ELB holds its deletion protection on, turned on outside this tool (scripts/deploy/purge.py deletion_protected)
    ("alb", "LoadBalancerArn"): ("make destroy", "make diff", *RUNS_A_CHANGE_SET),
    ("service", "ClusterName"): ("make verify", *FINDS_THE_SERVICE),
    ("service", "ServiceName"): ("make verify", *FINDS_THE_SERVICE),
    ("service", "LogGroupName"): ("make logs", "make task", *RUNS_A_CHANGE_SET),  # not make continue: it reads no log
    ("service", "TaskDefinitionArn"): ("make verify",),
    # the provider a ci stack made, which its deletion deletes (scripts/deploy/commands.py made_oidc_provider)
    ("ci", "OidcProviderArn"): ("make destroy",),
} | {(upstream, output): ("make deploy", "make changeset") for upstream, *outputs in ROLLBACK_TRIGGERS.values() for output in outputs}


# (layer, output) -> who reads it outside the tools' code: the GitHub workflow, through the environment variable an
# operator sets to it (.github/workflows/deploy-service.yml), shown under "Used by" in the review as the tools are.
READ_BY_WORKFLOW = {
    ("ci", "DeployRoleArn"): ("GitHub Actions (vars.AWS_DEPLOY_ROLE_ARN)",),
    ("ci", "CloudFormationExecutionRoleArn"): ("GitHub Actions (vars.CFN_EXECUTION_ROLE_ARN)",),
}


# Resources that hold state or a name other things point at: the stack policy forbids
# replacing or deleting them, and the deployer refuses change sets that would.
STATEFUL_TYPES = frozenset(
    {
        "AWS::Route53::HostedZone",
        "AWS::CertificateManager::Certificate",
        "AWS::ElasticLoadBalancingV2::LoadBalancer",
        "AWS::ElasticLoadBalancingV2::TargetGroup",
        "AWS::Logs::LogGroup",
        "AWS::S3::Bucket",
        "AWS::KMS::Key",
    }
)


def retained_resources(template: dict) -> dict:
    """Logical id -> type of what deleting a stack of the template leaves in the account (its
    DeletionPolicy Retain or RetainExceptOnCreate): what make destroy lists and the review states."""
    resources = template.get("Resources", {}) if isinstance(template, dict) else {}
    retain = ("Retain", "RetainExceptOnCreate")
    return {k: r.get("Type") for k, r in sorted(resources.items()) if isinstance(r, dict) and r.get("DeletionPolicy") in retain}


# The property that gives a resource of these types the custom name the layers set. "You can't perform
# an update that causes a custom-named resource to be replaced. If you must replace the resource,
# specify a new name." https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-properties-name.html
CUSTOM_NAMES = {
    "AWS::ApplicationAutoScaling::ScalingPolicy": "PolicyName",
    "AWS::CloudWatch::Alarm": "AlarmName",
    "AWS::EC2::SecurityGroup": "GroupName",
    "AWS::ECS::Service": "ServiceName",
    "AWS::ElasticLoadBalancingV2::LoadBalancer": "Name",
    "AWS::ElasticLoadBalancingV2::TargetGroup": "Name",
    "AWS::IAM::ManagedPolicy": "ManagedPolicyName",
    "AWS::IAM::Role": "RoleName",
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::SNS::Topic": "TopicName",
    "AWS::WAFv2::WebACL": "Name",
}


def wired_into(layer: str) -> dict:
    """The layer's parameters that upstream outputs give: parameter -> (upstream layer, output)."""
    return {parameter: source for (downstream, parameter), source in WIRING.items() if downstream == layer}


def downstream_of(layer: str) -> set:
    """The layers that read an output of `layer`."""
    return {downstream for (downstream, _), (upstream, _) in WIRING.items() if upstream == layer}


def destroy_order(*layer_names) -> list[str]:
    """The layers and every layer that reads their outputs, directly or through another, in the order
    destroy takes them (readers first: it refuses a layer while one is deployed)."""
    chain, todo = set(), list(layer_names)
    while todo:
        if (name := todo.pop()) not in chain:
            chain.add(name)
            todo.extend(downstream_of(name))
    return [name for name in reversed(layer_order()) if name in chain]


class WiringError(ToolError):
    """The layers' wiring does not fit their templates; generation stops."""

    code = 2


def layer_order(wiring=None, layers=None) -> list[str]:
    """Layers with every upstream before its consumers; ties keep LAYERS order."""
    wiring = WIRING if wiring is None else wiring
    layers = list(LAYERS if layers is None else layers)
    graph = {name: set() for name in layers}
    for (downstream, parameter), (upstream, output) in wiring.items():
        for end in (downstream, upstream):
            if end not in graph:
                raise WiringError(
                    f"wiring {upstream}.{output} -> {downstream}.{parameter}: no layer named {end!r}; layers: {', '.join(layers)}"
                )
        graph[downstream].add(upstream)
    sorter = TopologicalSorter(graph)
    try:
        sorter.prepare()
    except CycleError as error:
        cycle = error.args[1]
        raise WiringError(f"wiring has a cycle: {' -> '.join(cycle)}") from None
    order = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready(), key=layers.index)
        order.extend(ready)
        sorter.done(*ready)
    return order


def check_wiring(templates: dict, wiring=None) -> None:
    """Every wired parameter and output exists; every wired-only parameter is wired."""
    wiring = WIRING if wiring is None else wiring
    for (downstream, parameter), (upstream, output) in wiring.items():
        end = f"{upstream}.{output} -> {downstream}.{parameter}"
        if output not in templates[upstream].outputs:
            raise WiringError(
                f"wiring {end}: layer {upstream!r} has no output {output!r}; outputs: {', '.join(sorted(templates[upstream].outputs))}"
            )
        if parameter not in templates[downstream].parameters:
            raise WiringError(
                f"wiring {end}: layer {downstream!r} has no parameter {parameter!r}; parameters: {', '.join(sorted(templates[downstream].parameters))}"
            )
    from templates.inputs import INPUTS  # here: templates/inputs.py imports this package

    # An input declared without a template Default (default_in_template) comes from every template configuration.
    configured = {name for name, spec in INPUTS.items() if not spec.default_in_template}
    for layer, template in templates.items():
        for name, parameter in template.parameters.items():
            if "Default" not in parameter.properties and (layer, name) not in wiring and name not in configured:
                raise WiringError(f"layer {layer!r} parameter {name!r} has no default and nothing wires it")


def stack_name(env: str, layer: str) -> str:
    return f"{PROJECT}-{env}-{layer}"


def layer_of(env: str, stack: str) -> str:
    """The layer of the environment's stack of that name: stack_name's inverse."""
    return stack.removeprefix(stack_name(env, ""))


def own_tags(env: str, layer: str) -> dict:
    """The tags every stack of ours carries (params may not set them): the deployer changes or deletes
    only a stack that has them, never another one that happens to have our stack's name."""
    return {"Project": PROJECT, "Environment": env, "Layer": layer}
