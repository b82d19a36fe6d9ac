"""The Stubber harness of the deployer's tests (test_deploy.py, test_task.py, test_logs.py,
test_drift.py): clients whose every call is answered by a botocore Stubber with the response shapes
real CloudFormation, SSM and ECS send, and the builders of those responses."""

import atexit
import io
import json
import os
import shutil
import socket
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from string import Template

import conftest
import yaml
from botocore.exceptions import StubResponseError
from botocore.stub import ANY, Stubber
from conftest import ROOT, generate_main, no_real_aws

import templates
from scripts import deploy
from scripts.botocore_models import make_session
from scripts.deploy import guards, lock, purge
from templates import service as service_layer
from templates.inputs import EXAMPLE_HOSTED_ZONE_ID, KEEP_RUNNING_COUNT
from templates.params import load as load_params

ENV = conftest.STUBBED_ENV


def deployer_files():
    """(output dir, params dir) the deployer's tests run: the project's own; or, while params/prod.yaml
    has no ExistingHostedZoneId (emptied for make zone to find or create the zone, as make zone says to),
    generation's output of a copy of params/ that has the example zone id: these tests deploy prod's
    layers, cert-dns among them, which a deploy refuses without a zone."""
    params_file = ROOT / "params" / f"{ENV}.yaml"
    if load_params(params_file).values["ExistingHostedZoneId"]:
        return ROOT / "output", ROOT / "params"
    copy = Path(tempfile.mkdtemp(prefix="deployer-tests-"))
    atexit.register(shutil.rmtree, copy, ignore_errors=True)
    params_dir = shutil.copytree(ROOT / "params", copy / "params")
    document = yaml.safe_load(params_file.read_text())
    document.setdefault("parameters", {})["ExistingHostedZoneId"] = EXAMPLE_HOSTED_ZONE_ID
    (params_dir / params_file.name).write_text(yaml.safe_dump(document, sort_keys=False))  # its keys in the file's order
    ran = generate_main("--no-lint", "--params-dir", params_dir, "--output-dir", copy / "output")
    assert ran.returncode == 0, ran.stderr
    return copy / "output", params_dir


OUTPUT, PARAMS = deployer_files()
# The params file as the deployer names it in what it says: params/prod.yaml, or deployer_files' copy (prod's zone empty).
PARAMS_FILE = str(templates.relative(PARAMS / f"{ENV}.yaml"))


def configuration(env: str, layer: str) -> dict:
    """output/<env>/<layer>.json as these tests deploy it (deployer_files)."""
    return conftest.configuration(env, layer, OUTPUT)


def parameters(env: str, layer: str, **overrides) -> dict:
    return conftest.parameters(env, layer, OUTPUT, PARAMS, **overrides)


# What a command printed for people to copy starts with (scripts/deploy/aws.py cli): the
# region of params/prod.yaml and the loopback endpoint these runs are pointed at (no_real_aws).
REGION = conftest.STUBBED_REGION  # ENV's


REGION_CLI = f"aws --region {REGION}"  # a run on AWS itself (test_task.py)


# One session for every test: its clients share the service models it loaded once (a session per
# test would read them from disk again, a quarter of a second each time).
SESSION = make_session(region_name=REGION)  # with the ECS calls the pinned botocore lacks (scripts/botocore_models.py)


# The account the stacks go to: the one params/prod.yaml's secret is in (deploy refuses an ARN of another).
ACCOUNT = load_params(ROOT / "params" / f"{ENV}.yaml").values["DatabaseSecretArn"].split(":")[4]


NOW = datetime(2025, 11, 25, 12, 0, 0, tzinfo=UTC)


CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"]


ALARM_PREFIX = configuration(ENV, "release-alarms")["Parameters"]["NamePrefix"]  # the release alarms' names start with it
ZONE = configuration(ENV, "cert-dns")["Parameters"]["ExistingHostedZoneId"]
DOMAIN = configuration(ENV, "cert-dns")["Parameters"]["DomainName"]
ZONE_SERVERS = ["ns-1.awsdns-01.org", "ns-2.awsdns-02.co.uk", "ns-3.awsdns-03.com", "ns-4.awsdns-04.net"]


def hosted_zone(zone_id=ZONE, domain=DOMAIN):
    """GetHostedZone of a public zone."""
    return {
        "HostedZone": {"Id": f"/hostedzone/{zone_id}", "Name": f"{domain}.", "CallerReference": "ref", "Config": {"PrivateZone": False}},
        "DelegationSet": {"NameServers": ZONE_SERVERS},
    }


OUTPUT_VALUES = {
    "CertificateArn": f"arn:aws:acm:{REGION}:{ACCOUNT}:certificate/5f3c2a1e-1111-2222-3333-444455556666",
    "HostedZoneId": "Z0123456789ABCDEFGHIJ",
    "TargetGroupArn": f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:targetgroup/startupwebapp-tg/0123456789abcdef",
    "ClusterName": configuration(ENV, "service")["Parameters"]["ClusterName"],  # the service's Ref ClusterName: params', never a copy
    "ServiceName": Template(service_layer.SERVICE_NAME).substitute(configuration(ENV, "service")["Parameters"]),  # from params' NamePrefix
    "LoadBalancerArn": f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:loadbalancer/app/startupwebapp-alb/0123456789abcdef",
    "LoadBalancerFullName": "app/startupwebapp-alb/0123456789abcdef",
    "TargetGroupFullName": "targetgroup/startupwebapp-tg/0123456789abcdef",
    "AlternateTargetGroupArn": f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:targetgroup/startupwebapp-tg-alt/fedcba9876543210",
    "AlternateTargetGroupFullName": "targetgroup/startupwebapp-tg-alt/fedcba9876543210",
    "ProductionListenerRuleArn": f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:listener-rule/app/startupwebapp-alb/0123456789abcdef/1111111111111111/2222222222222222",
    "TestListenerRuleArn": f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:listener-rule/app/startupwebapp-alb/0123456789abcdef/3333333333333333/4444444444444444",
    "AlertTopicArn": f"arn:aws:sns:{REGION}:{ACCOUNT}:startupwebapp-alerts",
    "DeploymentAlarmNames": f"{ALARM_PREFIX}-target-5xx,{ALARM_PREFIX}-unhealthy-hosts",
    "RollbackAlarmArns": f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{ALARM_PREFIX}-target-5xx,"
    f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{ALARM_PREFIX}-unhealthy-hosts",
    "RollbackMonitoringMinutes": "10",
}


PROD_LAYERS = load_params(ROOT / "params" / f"{ENV}.yaml").layers


def stack(layer):
    return templates.stack_name(ENV, layer)


def stack_id(layer):
    return f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{stack(layer)}/0e4c8f70-c9f1-11f0-8de9-0a1b2c3d4e5f"


CHECKOUT = "abc1234"  # the revision git_revision gives the runs: what their change sets are named at, and releases record


def cs_name(layer, revision=CHECKOUT):
    return f"{stack(layer)}-20251125120000000-{revision}"


def template(layer):
    return (OUTPUT / f"{layer}.json").read_text()


def wired(layer):
    return {p: OUTPUT_VALUES[o] for (d, p), (_, o) in templates.WIRING.items() if d == layer}


def deploy_time(layer, kind="UPDATE"):
    """What the deployer sets itself: KeepRunningCount is true once the service exists."""
    declared = json.loads(template(layer)).get("Parameters", {})
    return {KEEP_RUNNING_COUNT: "true" if kind == "UPDATE" else "false"} if KEEP_RUNNING_COUNT in declared else {}


def outputs(layer):
    return {k: OUTPUT_VALUES.get(k, f"{k}-value") for k in json.loads(template(layer)).get("Outputs", {})}


def described(layer, status="UPDATE_COMPLETE", protected=True, parameters=None, reason=None, with_outputs=True, tags=None):
    """A DescribeStacks answer; tags (key -> value) for other tags than the layer's (someone else's stack, say)."""
    entry = {
        "StackId": stack_id(layer),
        "StackName": stack(layer),
        "Description": f"{layer} layer",
        "Parameters": [
            {"ParameterKey": k, "ParameterValue": v}
            for k, v in (parameters or configuration(ENV, layer)["Parameters"] | wired(layer) | deploy_time(layer)).items()
        ],
        "CreationTime": NOW - timedelta(days=5),
        "LastUpdatedTime": NOW - timedelta(days=1),
        "RollbackConfiguration": {},
        "StackStatus": status,
        "DisableRollback": False,
        "NotificationARNs": [],
        "Capabilities": CAPABILITIES,
        "Tags": [{"Key": k, "Value": v} for k, v in (configuration(ENV, layer)["Tags"] if tags is None else tags).items()],
        "EnableTerminationProtection": protected,
        "DriftInformation": {"StackDriftStatus": "NOT_CHECKED"},
    }
    if with_outputs and status != "REVIEW_IN_PROGRESS":
        entry["Outputs"] = [{"OutputKey": k, "OutputValue": v, "Description": k} for k, v in outputs(layer).items()]
    if reason:
        entry["StackStatusReason"] = reason
    return {"Stacks": [entry]}


def event(layer, logical, status, seconds, kind="AWS::CloudFormation::Stack", reason=None, token="same", revision=CHECKOUT):
    entry = {
        "StackId": stack_id(layer),
        "EventId": f"{logical}-{status}-{seconds}",
        "StackName": stack(layer),
        "LogicalResourceId": logical,
        "PhysicalResourceId": stack_id(layer) if kind == "AWS::CloudFormation::Stack" else f"{logical}-physical",
        "ResourceType": kind,
        "Timestamp": NOW + timedelta(seconds=seconds),
        "ResourceStatus": status,
    }
    if reason:
        entry["ResourceStatusReason"] = reason
    if token:
        entry["ClientRequestToken"] = deploy.deployer.Deployer.execution_token(cs_name(layer, revision)) if token == "same" else token
    return entry


def events(*entries):
    return {"StackEvents": sorted(entries, key=lambda e: e["Timestamp"], reverse=True)}


def change(action, logical, kind, replacement="False", details=()):
    rc = {"Action": action, "LogicalResourceId": logical, "ResourceType": kind, "Scope": [], "Details": list(details)}
    if action in ("Modify", "Remove"):  # a change set names the physical resource it changes or removes
        rc["PhysicalResourceId"] = f"{logical}-physical"
    if action == "Modify":
        rc |= {"Replacement": replacement, "Scope": ["Properties"]}
    return {"Type": "Resource", "ResourceChange": rc}


def detail(name, source="DirectModification", entity=None, recreation="Never", evaluation="Static"):
    found = {
        "Target": {"Attribute": "Properties", "Name": name, "RequiresRecreation": recreation},
        "Evaluation": evaluation,
        "ChangeSource": source,
    }
    return found | ({"CausingEntity": entity} if entity else {})


def change_set(layer, status="CREATE_COMPLETE", changes=(), reason=None, parameters=None, repair=False, revision=CHECKOUT):
    found = {
        "ChangeSetName": cs_name(layer, revision),
        "ChangeSetId": f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:changeSet/{cs_name(layer, revision)}/6b0f7c1a-aaaa-bbbb-cccc-ddddeeeeffff",
        "StackId": stack_id(layer),
        "StackName": stack(layer),
        "Description": f"{layer} layer of {ENV}, by scripts/deploy",
        "Parameters": [
            {"ParameterKey": k, "ParameterValue": v}
            for k, v in (parameters or configuration(ENV, layer)["Parameters"] | wired(layer)).items()
        ],
        "CreationTime": NOW,
        "ExecutionStatus": "AVAILABLE" if status == "CREATE_COMPLETE" else "UNAVAILABLE",
        "Status": status,
        "NotificationARNs": [],
        "RollbackConfiguration": rollback_configuration(layer, repair).get("RollbackConfiguration", {}),
        "Capabilities": CAPABILITIES,
        "Tags": [{"Key": k, "Value": v} for k, v in configuration(ENV, layer)["Tags"].items()],
        "Changes": list(changes),
        "IncludeNestedStacks": False,
    }
    return found | ({"StatusReason": reason} if reason else {})


def create_params(layer, kind, repair=False, revision=CHECKOUT, **overrides):
    values = configuration(ENV, layer)["Parameters"] | wired(layer) | deploy_time(layer, kind) | overrides
    return {
        "StackName": stack(layer),
        "ChangeSetName": cs_name(layer, revision),
        "ClientToken": cs_name(layer, revision),  # a retry of a request that landed is the same change set
        "ChangeSetType": kind,
        "TemplateBody": template(layer) if layer != "ci" else json.dumps(json.loads(template(layer)), indent=0, sort_keys=True),
        "Parameters": [{"ParameterKey": k, "ParameterValue": v} for k, v in sorted(values.items())],
        "Capabilities": CAPABILITIES,
        "Tags": [{"Key": k, "Value": v} for k, v in sorted(configuration(ENV, layer)["Tags"].items())],
        "Description": ANY,
    } | rollback_configuration(layer, repair)


def rollback_configuration(layer, repair=False):
    if layer not in templates.ROLLBACK_TRIGGERS:
        return {}
    if repair:  # an empty list, not none: CloudFormation would keep the stack's last triggers
        return {"RollbackConfiguration": {"RollbackTriggers": [], "MonitoringTimeInMinutes": 0}}
    arns = OUTPUT_VALUES["RollbackAlarmArns"].split(",")
    return {
        "RollbackConfiguration": {
            "RollbackTriggers": [{"Arn": arn, "Type": "AWS::CloudWatch::Alarm"} for arn in arns],
            "MonitoringTimeInMinutes": 10,
        }
    }


NOT_FOUND = {"service_error_code": "ValidationError", "http_status_code": 400}


class StubbedClients(dict):
    """service (or (service, region) for another region than the environment's) -> its client, made
    with an active Stubber when first asked for (by the test or by the deployer): a test pays only for
    the clients it uses (a client takes milliseconds to make), and a call no test queued fails as the
    Stubber's unexpected call. Called, it is the deployer's client factory (scripts/deploy/aws.py boto_clients')."""

    def __init__(self, stubbers):
        super().__init__()
        self.stubbers = stubbers

    def __call__(self, service, elsewhere=None):
        return self[(service, elsewhere) if elsewhere else service]

    def __missing__(self, key):
        service, region = key if isinstance(key, tuple) else (key, REGION)
        client = SESSION.client(service, region_name=region, config=deploy.CONFIG)
        self.stubbers[key] = Stubber(client)
        self.stubbers[key].activate()
        self[key] = client
        return client


class Aws:
    """Stubbed clients plus a runner of scripts.deploy.main that records output and sleeps."""

    def __init__(self):
        self.stubbers = {}  # service (or (service, region)) -> the active Stubber of its client, for the clients made so far
        self.clients = StubbedClients(self.stubbers)
        self.sleeps = []
        self.questions = []  # what the runs asked on the terminal, in order
        self.out = self.err = ""
        self.dirs = OUTPUT, PARAMS  # what a run reads: output/ and params/ (deployer_files) unless a test says otherwise
        self.named_at = CHECKOUT  # the revision the change sets are named at: a rollback's, the template's it keeps

    def read_a_misspelt_key(self, tmp_path) -> Path:
        """The runs read a copy of params/ whose environment's file has a half-done edit (parameters.DesiredCout); its path."""
        params_dir = shutil.copytree(PARAMS, tmp_path / "params")
        path = params_dir / f"{ENV}.yaml"
        data = yaml.safe_load(path.read_text())
        data["parameters"]["DesiredCout"] = 1
        path.write_text(yaml.safe_dump(data))
        self.dirs = OUTPUT, params_dir
        return path

    def stubber(self, service, region=None):
        """The Stubber of service's client, of region's where it is another than the environment's."""
        key = (service, region) if region and region != REGION else service
        self.clients[key]  # made and stubbed on first use
        return self.stubbers[key]

    cf = property(lambda self: self.stubber("cloudformation"))
    elbv2 = property(lambda self: self.stubber("elbv2"))
    route53 = property(lambda self: self.stubber("route53"))
    ecs = property(lambda self: self.stubber("ecs"))
    ssm = property(lambda self: self.stubber("ssm"))
    sts = property(lambda self: self.stubber("sts"))
    logs = property(lambda self: self.stubber("logs"))

    def run(self, *argv, tty=False, answer="n", sleep=None, clock=time.monotonic, resolver=None, locking=False, out=None, err=None):
        argv = [*argv, *([] if "--env" in argv else ["--env", ENV])]
        argv += [] if "--output-dir" in argv else ["--output-dir", str(self.dirs[0]), "--params-dir", str(self.dirs[1])]
        out, err = out or io.StringIO(), err or io.StringIO()
        code = deploy.main(
            [*argv, "--api-calls"],
            clients=self.clients,
            sleep=sleep or self.sleeps.append,
            ask=self.answering(answer, self.questions),
            interactive=tty,
            now=lambda: NOW,
            revision=CHECKOUT,
            out=out,
            err=err,
            clock=clock,
            resolver=resolver,
            locking=locking,  # off unless a test is about the lock: every other exchange stays as it was
        )
        self.out, self.err = out.getvalue(), err.getvalue()
        self.err, _, self.api_calls = self.err.partition("API calls per stack: ")
        return code

    @staticmethod
    def answering(answer, questions=None):
        """The prompt's answer: a string, or an exception the prompt raises (KeyboardInterrupt: Ctrl-C);
        each question asked is added to questions."""

        def ask(question):
            if questions is not None:
                questions.append(question)
            if isinstance(answer, BaseException):
                raise answer
            return answer

        return ask

    def calls(self, layer):
        counts = dict(item.rsplit(" ", 1) for item in self.api_calls.strip().split(", "))
        return int(counts[stack(layer)])

    # common exchanges
    def caller(self):
        """GetCallerIdentity: the account a question names before the run read any stack."""
        arn = f"arn:aws:sts::{ACCOUNT}:assumed-role/admin/someone"
        self.sts.add_response("get_caller_identity", {"UserId": "AROAFAKE:someone", "Account": ACCOUNT, "Arn": arn}, {})

    def not_deployed(self, layer):
        self.cf.add_client_error(
            "describe_stacks",
            service_message=f"Stack with id {stack(layer)} does not exist",
            expected_params={"StackName": stack(layer)},
            **NOT_FOUND,
        )

    def upstream_deployed(self, layer):
        """DescribeStacks of each layer the layer's parameters are wired from, deployed, in wiring order."""
        for upstream in dict.fromkeys(upstream for upstream, _ in templates.wired_into(layer).values()):
            self.deployed(upstream)

    def no_change_sets(self, *layers):
        """ListChangeSets of each layer's stack answers none (make status asks, of each stack of ours)."""
        for layer in layers:
            self.cf.add_response("list_change_sets", {"Summaries": []}, {"StackName": stack(layer)})

    def deployed(self, layer, **kwargs):
        self.cf.add_response("describe_stacks", described(layer, **kwargs), {"StackName": stack(layer)})

    def diff_reads(self, layer, policy="as in output/", **deployed):
        """What make diff of a deployed layer reads: its stack (described with deployed), its template as deployed, the
        layers it reads and its stack policy (stack_policy's policy)."""
        self.deployed(layer, **deployed)
        self.cf.add_response("get_template", {"TemplateBody": template(layer)}, {"StackName": stack(layer), "TemplateStage": "Original"})
        self.upstream_deployed(layer)
        self.stack_policy(layer, policy)

    def stack_policy(self, layer, policy="as in output/"):
        """GetStackPolicy's answer: the layer's policy in output/, another one, or None (none set)."""
        policy = configuration(ENV, layer).get("StackPolicy") if policy == "as in output/" else policy
        self.cf.add_response("get_stack_policy", {"StackPolicyBody": json.dumps(policy)} if policy else {}, {"StackName": stack(layer)})

    def empty_change_set(
        self,
        layer,
        kind="UPDATE",
        reason="The submitted information didn't contain changes. Submit different information to create a change set.",
        repair=False,
        **overrides,
    ):
        """A change set made with output/'s values (but overrides), found to change nothing, and deleted."""
        self.cf.add_response(
            "create_change_set",
            {"Id": change_set(layer, revision=self.named_at)["ChangeSetId"], "StackId": stack_id(layer)},
            create_params(layer, kind, repair, self.named_at, **overrides),
        )
        self.cf.add_response(
            "describe_change_set",
            change_set(layer, "FAILED", reason=reason, revision=self.named_at),
            {"StackName": stack(layer), "ChangeSetName": cs_name(layer, self.named_at)},
        )
        self.cf.add_response("delete_change_set", {}, {"StackName": stack(layer), "ChangeSetName": cs_name(layer, self.named_at)})

    def image(self, tag, code=None, repository=None, registry_id=None):
        """An ECR repository (the service's, unless named) asked for tag, in registry_id's account if
        given: found, or the error code ECR answers."""
        repository = repository or configuration(ENV, "service")["Parameters"]["EcrRepositoryName"]
        expected = {"repositoryName": repository, "imageIds": [{"imageTag": tag}]} | ({"registryId": registry_id} if registry_id else {})
        if code:
            self.stubber("ecr").add_client_error("describe_images", code, "no", 400, expected_params=expected)
        else:
            self.stubber("ecr").add_response("describe_images", {"imageDetails": [{"imageTags": [tag]}]}, expected)

    def readers_not_deployed(self, layer):
        """The layers reading layer's outputs, read (none deployed) when its change set replaces what they read."""
        for reader in sorted(templates.downstream_of(layer)):
            self.not_deployed(reader)

    def change_set(self, layer, kind, changes, expected=None, waiting=(), left=False, **described_kwargs):
        """A change set made and described; unless it does not run (left: left for review, declined, stopped before),
        the stack's change sets listed too: on a deployed stack `waiting` those made for review before, ending when this
        one runs; on the stack a create made, this one alone."""
        if kind == "CREATE":
            self.zone_checked(layer)
        self.cf.add_response(
            "create_change_set",
            {"Id": change_set(layer, revision=self.named_at)["ChangeSetId"], "StackId": stack_id(layer)},
            expected or create_params(layer, kind, revision=self.named_at),
        )
        self.cf.add_response(
            "describe_change_set",
            change_set(layer, changes=changes, revision=self.named_at, **described_kwargs),
            {"StackName": stack(layer), "ChangeSetName": cs_name(layer, self.named_at)},
        )
        if kind == "UPDATE" and not left:
            self.listed_change_sets(layer, waiting)
        elif not left:  # the stack the CREATE change set made holds it alone
            mine = {
                "StackName": stack(layer),
                "ChangeSetName": cs_name(layer, self.named_at),
                "ExecutionStatus": "AVAILABLE",
                "CreationTime": NOW,
            }
            self.cf.add_response("list_change_sets", {"Summaries": [mine]}, {"StackName": stack_id(layer)})

    def zone_checked(self, layer):
        """GetHostedZone of the zone a layer's certificate is validated in, which a create of it reads first."""
        if "ExistingHostedZoneId" in configuration(ENV, layer)["Parameters"]:
            self.route53.add_response("get_hosted_zone", hosted_zone(), {"Id": ZONE})

    def reviewed_change_set(self, layer, waiting=(), parameters=None, upstream_gone=False, made=None, running=None):
        """A change set left by `make changeset`, read again by `make execute`, on a deployed stack (running: the
        values it runs with, output/'s by default); the stack's change sets listed: `waiting` those made for review
        besides it; the layers it reads. parameters: the values the change set was made with (output/'s by default);
        made: DescribeChangeSet's whole answer instead."""
        if made is None:
            changes = [change("Modify", "HostedZone", "AWS::Route53::HostedZone", details=[detail("HostedZoneConfig")])]
            made = change_set(layer, changes=changes, parameters=parameters, revision=self.named_at)
        self.cf.add_response("describe_change_set", made, {"StackName": stack(layer), "ChangeSetName": cs_name(layer, self.named_at)})
        self.deployed(layer, parameters=running)
        self.change_set_template(layer)
        self.listed_change_sets(layer, waiting)
        first = next(iter(dict.fromkeys(upstream for upstream, _ in templates.wired_into(layer).values())), None)
        if upstream_gone == "destroyed":  # the first layer it reads destroyed since
            self.not_deployed(first)
        elif upstream_gone:  # the first layer it reads in no settled state: upstream_gone its status
            self.deployed(first, status=upstream_gone)
        else:
            self.upstream_deployed(layer)  # what it reads of other layers, compared with what the change set takes

    def change_set_template(self, layer, body=None):
        """GetTemplate of the change set (by its ARN): output/'s template unless body says otherwise."""
        expected = {
            "StackName": stack(layer),
            "TemplateStage": "Original",
            "ChangeSetName": change_set(layer, revision=self.named_at)["ChangeSetId"],
        }
        self.cf.add_response("get_template", {"TemplateBody": body or template(layer)}, expected)

    def listed_change_sets(self, layer, waiting=()):
        mine = {
            "StackName": stack(layer),
            "ChangeSetName": cs_name(layer, self.named_at),
            "ExecutionStatus": "AVAILABLE",
            "CreationTime": NOW,
        }
        summaries = [mine] + [
            {"StackName": stack(layer), "ChangeSetName": name, "ExecutionStatus": "AVAILABLE", "CreationTime": NOW - timedelta(hours=1)}
            for name in waiting
        ]
        self.cf.add_response("list_change_sets", {"Summaries": summaries}, {"StackName": stack(layer)})

    def policy_marked(self, layer):
        """The SSM mark that the layer's stack policy is about to be relaxed."""
        marked = {"Name": f"{RELAXED}/{layer}", "Value": ANY, "Type": "String", "Overwrite": True, "Description": ANY}
        self.ssm.add_response("put_parameter", {"Version": 1}, marked)

    def policy_relaxed(self, layer):
        """--allow-replace: the layer named in the SSM mark, then its stack policy relaxed."""
        self.policy_marked(layer)
        self.cf.add_response("set_stack_policy", {}, {"StackName": stack(layer), "StackPolicyBody": json.dumps(deploy.ALLOW_ALL_POLICY)})

    def policy_restored(self, layer):
        """Its stack policy put back, then the SSM mark deleted."""
        policy = json.dumps(configuration(ENV, layer)["StackPolicy"])
        self.cf.add_response("set_stack_policy", {}, {"StackName": stack(layer), "StackPolicyBody": policy})
        self.ssm.add_response("delete_parameter", {}, {"Name": f"{RELAXED}/{layer}"})

    def execute(self, layer):
        self.cf.add_response(
            # by the ARN of the change set described (not one made under its name since), which names its stack
            "execute_change_set",
            {},
            {
                "ChangeSetName": change_set(layer, revision=self.named_at)["ChangeSetId"],
                "ClientRequestToken": deploy.deployer.Deployer.execution_token(cs_name(layer, self.named_at)),
            },
        )

    def poll(self, layer, by, description, *stack_events):
        self.cf.add_response("describe_stacks", description, {"StackName": by})
        self.cf.add_response("describe_stack_events", events(*stack_events), {"StackName": stack_id(layer)})

    def stack_deleted(self, layer):
        """DeleteStack of the layer's stack (by its id, with the run's token), then a poll that finds it DELETE_COMPLETE."""
        token = f"delete-{stack(layer)}-{NOW:%Y%m%d%H%M%S}"
        self.cf.add_response("delete_stack", {}, {"StackName": stack_id(layer), "ClientRequestToken": token})
        deleted = event(layer, stack(layer), "DELETE_COMPLETE", 5, token=None)
        self.poll(layer, stack_id(layer), described(layer, "DELETE_COMPLETE"), deleted)


def stubbed(monkeypatch, kind):
    """A kind (Aws or a subclass) whose clients are stubbed, with no credentials or endpoint but
    127.0.0.1:9; at the end, every response a test queued must have been used."""
    no_real_aws(monkeypatch)
    # Stubber answers each client's calls in the order queued; the look for what destroyed stacks
    # retained before a create (ListStacks, ListStackResources, ...) and for log groups in no stack
    # runs on the sandbox instead (tests/test_recreate.py), and here finds nothing unless a test puts
    # LOOK_FOR_BLOCKED_CREATES back.
    monkeypatch.setattr(purge, "blocking", lambda deployer, stacks: [])
    monkeypatch.setattr(guards, "loose_log_groups", lambda deployer, creates, named, even_one=False: [])  # nor log groups in no stack

    def real_clients(*_, **__):
        # A run given the stubbed clients went on with clients of its own when none had been asked for yet (an empty
        # StubbedClients is false): its calls went to 127.0.0.1:9 and their retries, and a test passed on that failure.
        raise AssertionError("a run given the stubbed clients made clients of its own")

    monkeypatch.setattr(deploy, "boto_clients", real_clients)
    # A call no response was queued for (or with other parameters) raises a StubResponseError, which
    # is a BotoCoreError: the deployer's best-effort paths would take it for an AWS error and go on,
    # and a test could pass on a call it never meant. Each is recorded and fails the test at its end.
    unexpected = []

    def recording(method):
        def recorded(self, *args, **kwargs):
            try:
                return method(self, *args, **kwargs)
            except StubResponseError as error:  # UnStubbedResponseError and StubAssertionError
                unexpected.append(error)
                raise

        return recorded

    for name in ("_get_response_handler", "_assert_expected_params"):
        monkeypatch.setattr(Stubber, name, recording(getattr(Stubber, name)))
    aws = kind()
    try:
        yield aws
        assert not unexpected, f"calls the test queued no response for: {unexpected}"
        for stubber in aws.stubbers.values():
            stubber.assert_no_pending_responses()
    finally:
        for stubber in aws.stubbers.values():
            stubber.deactivate()


# What a new image tag changes in the service stack: its task definition, replaced.
IMAGE_TAG_CHANGES = [
    change(
        "Modify", "TaskDefinition", "AWS::ECS::TaskDefinition", "True", [detail("ContainerDefinitions", "ParameterReference", "ImageTag")]
    )
]


def service_parameters(tag):
    return configuration(ENV, "service")["Parameters"] | wired("service") | deploy_time("service") | {"ImageTag": tag}


# --- one run at a time per environment ------------------------------------------------------------
LOCK = f"/startupwebapp/{ENV}/deploy-lock"


RELAXED = f"/startupwebapp/{ENV}/relaxed-stack-policy"  # one parameter under it per layer


def our_lock(command="deploy", stack=None):
    """What the lock says while this run (the test's process: the deployer runs in it) holds it for command, of one
    layer (stack) or of every layer."""
    holder = f"{lock.user()}@{socket.gethostname()} (pid {os.getpid()})"
    layer = {"stack": stack} if stack else {}
    machine = {"machine": lock.this_machine(), "started": lock.start_time(os.getpid())} if lock.this_machine() else {}
    return json.dumps({"holder": holder, "command": command, "since": f"{NOW:%Y-%m-%dT%H:%M:%SZ}"} | layer | machine)


def lock_taken(aws, *relaxed, command="deploy", stack=None):
    """The lock taken for command (of one layer, stack), then the marks of stack policies stopped runs left relaxed read
    (relaxed: their layers)."""
    expected = {"Name": LOCK, "Value": our_lock(command, stack), "Type": "String", "Overwrite": False, "Description": ANY}
    aws.ssm.add_response("put_parameter", {"Version": 1}, expected)
    relaxed_mark_read(aws, *relaxed)


def relaxed_mark_read(aws, *relaxed):
    marks = [{"Name": f"{RELAXED}/{layer}", "Type": "String", "Value": "2025-11-25T11:00:00Z", "Version": 1} for layer in relaxed]
    aws.ssm.add_response("get_parameters_by_path", {"Parameters": marks}, {"Path": RELAXED})


def lock_free(aws):
    """The lock read, and free (make releases looks, where it would note a missing release, for a run under way)."""
    aws.ssm.add_client_error("get_parameter", "ParameterNotFound", f"Parameter {LOCK} not found.", 400, expected_params={"Name": LOCK})


def lock_freed(aws, value=None, command="deploy", deletion_refused=None, stack=None):
    """The lock read, then deleted if it is this run's; deletion_refused: (code, message, HTTP status) DeleteParameter answers."""
    held = {"Parameter": {"Name": LOCK, "Type": "String", "Value": value or our_lock(command, stack), "Version": 1}}
    aws.ssm.add_response("get_parameter", held, {"Name": LOCK})
    if value is None and deletion_refused:
        aws.ssm.add_client_error("delete_parameter", *deletion_refused, expected_params={"Name": LOCK})
    elif value is None:  # only this run's own lock is deleted
        aws.ssm.add_response("delete_parameter", {}, {"Name": LOCK})


# --- with ECS tasks and CloudWatch Logs (test_task.py, test_logs.py) ---
CLUSTER, SERVICE = OUTPUT_VALUES["ClusterName"], OUTPUT_VALUES["ServiceName"]


LOG_GROUP = Template(service_layer.LOG_GROUP_NAME).substitute(configuration(ENV, "service")["Parameters"])  # from params' NamePrefix


TASK_ID = "0f6a1c2b3d4e4f5a9b8c7d6e5f4a3b2c"


TASK_ARN = f"arn:aws:ecs:{REGION}:{ACCOUNT}:task/{CLUSTER}/{TASK_ID}"


TASK_DEFINITION = f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/startupwebapp-service-task:7"


STREAM = f"service/web/{TASK_ID}"


PARAMETERS = configuration(ENV, "service")["Parameters"]


NETWORK = {
    "awsvpcConfiguration": {
        "subnets": PARAMETERS["PrivateSubnetIds"].split(","),
        "securityGroups": [PARAMETERS["BackendSecurityGroupId"]],
        "assignPublicIp": "DISABLED",
    }
}


class TaskAws(Aws):
    """Aws, with ECS tasks and CloudWatch Logs."""

    def service_stack(self, strategy=None, status="UPDATE_COMPLETE"):
        """The deployed service stack; with `strategy`, releasing that way whatever params/prod.yaml says."""
        found = described("service", status, parameters=PARAMETERS | {"DeploymentStrategy": strategy} if strategy else None)
        found["Stacks"][0]["Outputs"] = [
            {"OutputKey": "ClusterName", "OutputValue": CLUSTER},
            {"OutputKey": "ServiceName", "OutputValue": SERVICE},
            {"OutputKey": "LogGroupName", "OutputValue": LOG_GROUP},
            {"OutputKey": "TaskDefinitionArn", "OutputValue": TASK_DEFINITION},
        ]
        self.cf.add_response("describe_stacks", found, {"StackName": stack("service")})

    def service(self):
        self.ecs.add_response(
            "describe_services", {"services": [ecs_service()], "failures": []}, {"cluster": CLUSTER, "services": [SERVICE]}
        )

    def run_task(self, command):
        expected = {
            "cluster": CLUSTER,
            "taskDefinition": TASK_DEFINITION,
            "count": 1,
            "networkConfiguration": NETWORK,
            "overrides": {"containerOverrides": [{"name": "web", "command": command}]},
            "startedBy": "startupwebapp-deploy-task",
            "clientToken": ANY,  # a fresh one each run: RunTask's idempotency token (test_run_task_has_one_token_per_run)
            "propagateTags": "TASK_DEFINITION",
            "enableECSManagedTags": True,
            "launchType": "FARGATE",
            "platformVersion": "LATEST",
        }
        self.ecs.add_response("run_task", {"tasks": [ecs_task("PROVISIONING")], "failures": []}, expected)

    def poll(self, task, *pages):
        """One DescribeTasks, then GetLogEvents pages: (token asked with, events, next token), or
        None for a stream that does not exist yet."""
        self.ecs.add_response("describe_tasks", {"tasks": [task], "failures": []}, {"cluster": CLUSTER, "tasks": [TASK_ARN]})
        for page in pages:
            if page is None:
                self.logs.add_client_error("get_log_events", "ResourceNotFoundException", "The specified log stream does not exist.", 400)
                continue
            asked, events, following = page
            expected = {"logGroupName": LOG_GROUP, "logStreamName": STREAM, "startFromHead": True}
            expected |= {"nextToken": asked} if asked else {}
            answer = {
                "events": events,
                "nextForwardToken": following,
                "nextBackwardToken": "b/00000000000000000000000000000000000000000000000000000000",
            }
            self.logs.add_response("get_log_events", answer, expected)


def ecs_service():
    return {
        "serviceArn": f"arn:aws:ecs:{REGION}:{ACCOUNT}:service/{CLUSTER}/{SERVICE}",
        "serviceName": SERVICE,
        "clusterArn": f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/{CLUSTER}",
        "status": "ACTIVE",
        "desiredCount": 2,
        "runningCount": 2,
        "pendingCount": 0,
        "launchType": "FARGATE",
        "platformVersion": "LATEST",
        "platformFamily": "Linux",
        "taskDefinition": TASK_DEFINITION,
        "networkConfiguration": NETWORK,
        "propagateTags": "SERVICE",
        "enableECSManagedTags": True,
    }


def container(name, status, exit_code=None, reason=None, arn=TASK_ARN):
    found = {
        "containerArn": f"arn:aws:ecs:{REGION}:{ACCOUNT}:container/{CLUSTER}/{arn.rsplit('/', 1)[-1]}/{name}-0a1b",
        "taskArn": arn,
        "name": name,
        "image": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/startupwebapp:v1",
        "lastStatus": status,
        "networkInterfaces": [],
        "healthStatus": "UNKNOWN",
    }
    return found | ({"exitCode": exit_code} if exit_code is not None else {}) | ({"reason": reason} if reason else {})


def ecs_task(status, exit_code=None, reason=None, stopped_reason="Essential container in task exited", arn=TASK_ARN, stopped_at=None):
    """A DescribeTasks entry; the tmp-permissions container exited 0 once the task runs."""
    stopped = status in ("STOPPED", "DELETED")
    init = container(
        "tmp-permissions",
        "STOPPED" if status in ("RUNNING", "STOPPED", "DELETED") else "PENDING",
        0 if stopped or status == "RUNNING" else None,
        arn=arn,
    )
    found = {
        "taskArn": arn,
        "clusterArn": f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/{CLUSTER}",
        "taskDefinitionArn": TASK_DEFINITION,
        "lastStatus": status,
        "desiredStatus": "STOPPED" if stopped else "RUNNING",
        "launchType": "FARGATE",
        "platformVersion": "1.4.0",
        "cpu": "512",
        "memory": "1024",
        "group": "family:startupwebapp-service-task",
        "startedBy": "startupwebapp-deploy-task",
        "createdAt": NOW,
        "containers": [init, container("web", status, exit_code, reason, arn=arn)],
        "overrides": {"containerOverrides": [{"name": "web", "command": ["python", "manage.py", "migrate"]}]},
        "tags": [],
    }
    if stopped:
        found |= {"stopCode": "EssentialContainerExited" if exit_code is not None else "TaskFailedToStart", "stoppedReason": stopped_reason}
        found |= {"stoppedAt": stopped_at or NOW + timedelta(seconds=40), "stoppingAt": NOW + timedelta(seconds=39)}
    return found


def log_event(seconds, message):
    return {"timestamp": int((NOW + timedelta(seconds=seconds)).timestamp() * 1000), "message": message, "ingestionTime": 0}


def stubbed_tasks(monkeypatch):
    """stubbed(), with TaskAws."""
    yield from stubbed(monkeypatch, TaskAws)
