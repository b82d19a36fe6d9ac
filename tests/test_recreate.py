"""Create, destroy, create again, on the session sandbox, through the deployer's own entry point:
retained resources never block a new create once `make purge` freed them, purge deletes only what
the environment's destroyed stacks created and retained, a failed first create rolls back to
ROLLBACK_COMPLETE (nothing left behind, RECREATE=1 creates it again), and a change set that
replaces a stateful resource is refused without ALLOW_REPLACE=1 and executed with it; a refused
execute of a new service's second change set deletes it.

Each test seeds the sandbox first (tests/test_e2e_sandbox.py uses the same session sandbox), or
starts from layers deployed on a seeded one (conftest.deployed), the same whichever test ran first."""

import io
import json
import re
import shlex
import shutil
import time
from datetime import UTC, datetime, timedelta

import pytest
import yaml
from botocore.exceptions import ClientError
from conftest import ROOT, create_bucket, deployed, deploying_into, generate_main, on_each_client, parameters, refused_answer, seeded

import templates
from emulator.sandbox import PARAMS_FILE
from scripts import deploy
from scripts.deploy import advice, deployer, guards
from scripts.deploy.commands import GOING_ON_AFTER_EXECUTION
from scripts.deploy.layer import load_layer
from templates import params
from templates.inputs import LOG_RETENTION_DAYS

ENV = "sandbox"
SANDBOX = params.load(PARAMS_FILE)
PREFIX = SANDBOX.values["NamePrefix"]  # from params/sandbox.yaml, never a copy of it
OTHER_PREFIX = next(other for other in (f"{templates.PROJECT}-sbx2", f"{templates.PROJECT}-sbx3") if other != PREFIX)  # never params'
LAYERS = SANDBOX.layers
SERVICE_LOGS = f"/ecs/{PREFIX}-service"
WAF_LOGS = f"aws-waf-logs-{PREFIX}"
# What the destroyed stacks retain: the service's log group, and the waf layer's where the sandbox deploys it.
RETAINED_LOGS = {SERVICE_LOGS} | ({WAF_LOGS} if SANDBOX.deploys("waf") else set())
# Every layer the sandbox deploys up to service, in order (waf only where params/sandbox.yaml enables it): what a
# test starts from whose run then creates scaling and alarms.
BEFORE_SCALING = tuple(layer for layer in LAYERS if layer not in ("scaling", "alarms"))


@pytest.fixture(scope="module")
def run(sandbox):
    with deploying_into(sandbox) as run:
        yield run


def stack(layer):
    return templates.stack_name(ENV, layer)


def physical_ids(sandbox, layer) -> dict:
    """Logical id -> physical id of the layer's deployed stack."""
    resources = sandbox.client("cloudformation").describe_stack_resources(StackName=stack(layer))["StackResources"]
    return {r["LogicalResourceId"]: r.get("PhysicalResourceId") for r in resources}


def log_group_names(sandbox) -> set:
    return {g["logGroupName"] for g in sandbox.client("logs").describe_log_groups()["logGroups"]}


def key_state(sandbox, key_id) -> dict:
    return sandbox.client("kms").describe_key(KeyId=key_id)["KeyMetadata"]


def exists(call, *missing_codes, **kwargs) -> bool:
    try:
        call(**kwargs)
    except ClientError as error:
        if error.response["Error"]["Code"] in missing_codes:
            return False
        raise
    return True


def sandbox_aws_cli(sandbox) -> str:
    """How a command the deployer prints for the sandbox starts (scripts/deploy/aws.py cli): without the
    shell's profile and session, with the sandbox's keys, straight to its endpoint."""
    dropped = "-u AWS_PROFILE -u AWS_DEFAULT_PROFILE -u AWS_SESSION_TOKEN -u AWS_SECURITY_TOKEN -u AWS_CREDENTIAL_EXPIRATION"
    keys = " ".join(f"{name}={value}" for name, value in params.SANDBOX_KEYS.items())
    return f"env {dropped} no_proxy=127.0.0.1 {keys} aws --region {SANDBOX.region} --endpoint-url {sandbox.endpoint}"


def deploy_and_destroy(sandbox, run) -> dict:
    """Every layer deployed on the seeded sandbox, then destroyed; the ids of what the stacks retained, by layer."""
    deployed(sandbox, run)
    kept = {layer: physical_ids(sandbox, layer) for layer in ("cert-dns", "alb", "waf", "service") if layer in LAYERS}
    code, out, err = run("destroy", "--yes")
    assert code == 0, out + err
    return kept | {"destroy output": out}


def test_create_destroy_purge_create_again(sandbox, run):
    kept = deploy_and_destroy(sandbox, run)
    out = kept["destroy output"]
    service, alb, cert = kept["service"], kept["alb"], kept["cert-dns"]
    log_keys = [kept[layer]["LogKey"] for layer in ("service", "waf") if layer in kept]  # each log group's KMS key
    # destroy names each retained resource, and purge, which frees them all once it finds each is still the stack's;
    # no command that deletes one by its name, which another may hold by then (a log group deleted and made again)
    assert f"retained, not deleted with the stack: LogGroup (AWS::Logs::LogGroup) {SERVICE_LOGS}" in out
    assert f"retained, not deleted with the stack: LogKey (AWS::KMS::Key) {service['LogKey']}" in out
    # not read by destroy (one deleted by hand since blocks nothing): said as a condition, not as a fact
    assert any(line.strip() == "LogGroup: the name blocks creating this layer again while it exists" for line in out.splitlines()), out
    assert f"retained, not deleted with the stack: Certificate (AWS::CertificateManager::Certificate) {cert['Certificate']}" in out
    assert "delete-log-group" not in out and "schedule-key-deletion" not in out and "delete-certificate" not in out, out
    # once, for every destroyed stack that retained something
    logs = f"; until then make logs ENV={ENV} reads the service's kept logs while its log group is there"
    assert out.count("make purge") == 1 and out.splitlines()[-1].endswith(f"make purge ENV={ENV} (lists it and asks first){logs}"), out
    # the load balancer, its security group and the target group hold no state: they went with the stack
    elbv2, ec2 = sandbox.client("elbv2"), sandbox.client("ec2")
    assert elbv2.describe_load_balancers()["LoadBalancers"] == []
    assert elbv2.describe_target_groups()["TargetGroups"] == []
    assert f"{PREFIX}-alb-sg" not in {g["GroupName"] for g in ec2.describe_security_groups()["SecurityGroups"]}
    assert log_group_names(sandbox) >= RETAINED_LOGS
    # make events after the destroy: the deleted stack's, with what it kept
    code, out, err = run("events", "--stack", "service")
    assert code == 0 and out.startswith(f"{stack('service')}: not deployed; the one deleted last, at "), out + err
    assert any("DELETE_SKIPPED" in line and "LogGroup" in line for line in out.splitlines()), out  # the log group it retained

    # Deployed again before the purge, each layer with a retained name would fail its create and roll
    # back, one after another: refused before anything is created, naming every one and the way out.
    code, out, err = run("deploy", "--yes")
    assert code == 1 and err.startswith("error: refused before creating anything: what destroyed stacks retained"), out + err
    assert "log groups no destroyed stack" not in err, err  # what they retained is named once, with make purge, not as loose too
    first, *rest = LAYERS  # the summary blamed the first layer, whose stack had nothing to do with it
    assert out.splitlines()[-1] == (
        f"  the run stopped at {first}, before its change set: a look at the layers it deploys next refused it "
        f"(the reason is below); not reached: {', '.join(rest)}"
    ), out
    assert all(f"(AWS::Logs::LogGroup) {name}" in err for name in RETAINED_LOGS), err
    blocked = [layer for layer in LAYERS if layer in kept and RETAINED_LOGS & set(kept[layer].values())]
    purge = (
        f"STACK={blocked[0]} frees what it retained"
        if len(blocked) == 1
        else f"STACK=<layer> for {', '.join(blocked)} frees what they retained"
    )
    assert f"make purge ENV={ENV} {purge}" in err, err
    named_at = [err.index(name) for layer in blocked for name in sorted(RETAINED_LOGS & set(kept[layer].values()))]
    assert named_at == sorted(named_at)  # in the order the layers deploy
    assert [s["StackName"] for s in sandbox.client("cloudformation").describe_stacks()["Stacks"]] == []

    code, out, err = run("purge")  # no terminal, no YES=1: shows the list, deletes nothing
    assert code == 1 and "no terminal to ask on and no YES=1" in err, out + err
    assert f"LogGroup (AWS::Logs::LogGroup) {SERVICE_LOGS}: delete" in out
    cli = sandbox_aws_cli(sandbox)
    listed = [line for line in out.splitlines() if "(AWS::Logs::LogGroup)" in line]
    assert len(listed) == len(RETAINED_LOGS), out
    for line in listed:  # make logs reads the service's alone, every event its retention keeps
        (group,) = [group for group in RETAINED_LOGS if f"(AWS::Logs::LogGroup) {group}: " in line]
        reads = f"make logs ENV={ENV} SINCE={SANDBOX.values['LogRetentionDays']}d, or " if group == SERVICE_LOGS else ""
        export = f"{cli} logs create-export-task --log-group-name {group} --from 0 --to "
        rest = (
            f" --destination <an S3 bucket CloudWatch Logs may write to>, which runs on after it returns: {cli} logs describe-export-tasks"
        )
        said = f"; they go with it: read or export what is needed first ({reads}{export}"
        assert re.search(re.escape(said) + r"\d{13}" + re.escape(rest + " says when it is COMPLETED)") + "$", line), line
    assert log_group_names(sandbox) >= RETAINED_LOGS

    disabled = log_keys[-1]  # by hand, before the purge: undoing its deletion leaves it so, enabling it would be more
    sandbox.client("kms").disable_key(KeyId=disabled)
    with pytest.MonkeyPatch.context() as patch:  # a machine east of UTC: KMS gives the key's date as epoch seconds
        patch.setenv("TZ", "XYZ-14")
        time.tzset()
        try:
            code, out, err = run("purge", "--yes")
        finally:
            patch.undo()
            time.tzset()
    assert code == 0, out + err
    assert not RETAINED_LOGS & log_group_names(sandbox)
    for key_id in log_keys:  # never deleted at once: the longest window, 30 days
        metadata = key_state(sandbox, key_id)
        assert metadata["KeyState"] == "PendingDeletion"
        assert timedelta(days=29) < metadata["DeletionDate"] - datetime.now(UTC) <= timedelta(days=30)
        # in UTC, as every time the tools print, whatever the machine's zone
        assert f"deletion scheduled for {metadata['DeletionDate'].astimezone(UTC):%Y-%m-%d %H:%M} UTC" in out, out
        cli = sandbox_aws_cli(sandbox)
        undo = f"this one line undoes it: {cli} kms cancel-key-deletion --key-id {key_id} && {cli} kms enable-key --key-id {key_id}\n"
        if key_id == disabled:
            undo = f"{cli} kms cancel-key-deletion --key-id {key_id} undoes it (it stays disabled)"
        assert undo in out, out
    s3, acm = sandbox.client("s3"), sandbox.client("acm")
    assert not exists(s3.head_bucket, "404", "NoSuchBucket", Bucket=alb["AccessLogBucket"])  # it was empty
    assert not exists(acm.describe_certificate, "ResourceNotFoundException", CertificateArn=cert["Certificate"])

    code, out, err = run("purge", "--yes")  # again: nothing left to do, said in two lines, not a list per stack
    assert code == 0, out + err
    lines = out.splitlines()
    assert len(lines) == 2 and lines[-1] == f"nothing to purge in {ENV}", out
    keys = r"(1 KMS key of these stacks is|([02-9]|[1-9][0-9]+) KMS keys of these stacks are)"
    assert re.fullmatch(keys + r" scheduled for deletion already: nothing to do for them \(.*\)", lines[0]), out
    for key_id in log_keys:  # named, with the day KMS deletes it: the id is what cancel-key-deletion takes
        when = key_state(sandbox, key_id)["DeletionDate"].astimezone(UTC)
        assert f"{key_id}: deletion already scheduled for {when:%Y-%m-%d %H:%M} UTC" in lines[0], out
    # the two commands purge printed to undo a key's deletion give a key that can be used again, the first alone does not
    kms = sandbox.client("kms")
    kms.cancel_key_deletion(KeyId=log_keys[0])
    assert key_state(sandbox, log_keys[0])["KeyState"] == "Disabled"
    kms.enable_key(KeyId=log_keys[0])
    assert key_state(sandbox, log_keys[0])["KeyState"] == "Enabled"

    code, out, err = run("deploy", "--yes")
    assert code == 0, out + err
    for layer in LAYERS:
        assert f"{stack(layer)}: CREATE_COMPLETE" in out

    # The stack exists again: purge leaves it, and all it holds; of what the deleted one retained, the key purge scheduled
    # was taken back above (cancelled and enabled: kept), and the log group's name is the new stack's now.
    groups = sandbox.client("logs").describe_log_groups(logGroupNamePrefix=SERVICE_LOGS)["logGroups"]
    code, out, err = run("purge", "--stack", "service", "--yes")
    assert code == 0 and out.startswith(f"note: {stack('service')} is there now and left as it is"), out + err
    assert SERVICE_LOGS not in out, out  # the stack there now made the log group of that name: the retained one is gone
    assert f"LogKey (AWS::KMS::Key) {service['LogKey']}: left: make purge scheduled its deletion" in out, out
    assert out.rstrip().endswith(f"nothing to purge for {stack('service')}: what is listed above stays"), out
    assert sandbox.client("logs").describe_log_groups(logGroupNamePrefix=SERVICE_LOGS)["logGroups"] == groups
    assert key_state(sandbox, service["LogKey"])["KeyState"] == "Enabled"


def test_logs_after_a_destroy_read_the_log_group_it_retained_while_it_is_the_stacks(sandbox, run):
    # destroy and purge advise reading the logs first (make logs SINCE=<time>), which refused: the service is not deployed
    deploy_and_destroy(sandbox, run)
    logs = sandbox.client("logs")
    logs.create_log_stream(logGroupName=SERVICE_LOGS, logStreamName="web/web/abcd")
    now = int(time.time() * 1000)
    logs.put_log_events(logGroupName=SERVICE_LOGS, logStreamName="web/web/abcd", logEvents=[{"timestamp": now, "message": "last words"}])
    code, out, err = run("logs", "--since", "1h")
    assert code == 0, out + err
    first, *events = out.splitlines()
    assert first.startswith(
        f"note: {stack('service')} is not deployed; {SERVICE_LOGS}, retained by the last of its deleted stacks to keep one (deleted at "
    ), out
    assert first.endswith(f" UTC), holds what it logged (until make purge ENV={ENV} deletes it)"), out
    assert [line.split("  ", 2)[1:] for line in events] == [["abcd", "last words"]], out
    # the CI deploy role may filter events but not describe log groups: read by name, saying it could not look
    denied = ClientError({"Error": {"Code": "AccessDeniedException", "Message": "not authorized"}}, "DescribeLogGroups")
    with pytest.MonkeyPatch.context() as patch:
        on_each_client(patch, "before-call.logs.DescribeLogGroups", lambda **_: (_ for _ in ()).throw(denied))
        code, out, err = run("logs", "--since", "1h")
    assert code == 0 and out.splitlines()[0].endswith(
        "; whether it is still that stack's could not be looked at (left: cannot read it (AccessDeniedException: not authorized))"
    ), out + err
    assert out.splitlines()[1:] == events, out
    # one of its name made by hand since: not read; then none at all
    replaced = f"was replaced by one it did not make, whose logs are not read; make diff ENV={ENV} says what a new deploy needs first"
    for made_again, what in ((True, replaced), (False, f"is gone: make deploy ENV={ENV} deploys every layer in order")):
        logs.delete_log_group(logGroupName=SERVICE_LOGS)
        if made_again:
            logs.create_log_group(logGroupName=SERVICE_LOGS)
        code, out, err = run("logs")
        said = f"error: {stack('service')} is not deployed, and {SERVICE_LOGS}, the log group retained by the last of its deleted stacks to keep one, {what}\n"
        assert code == 1 and err == said, out + err
    # Created and destroyed again: the second deleted stack's log group is read, the one deleted last, whose tags it carries.
    for argv in (("purge",), ("deploy",), ("destroy",)):
        code, out, err = run(*argv, "--yes")
        assert code == 0, (argv, out + err)
    code, out, err = run("logs")
    assert code == 0 and out.startswith(
        f"note: {stack('service')} is not deployed; {SERVICE_LOGS}, retained by the last of its deleted stacks to keep one (deleted at "
    ), out + err
    # both deleted stacks list a log group of that name; the one the second made is listed once, under it
    code, out, err = run("purge", "--stack", "service", "--yes")
    listed = out.partition("purging:")[0]
    assert code == 0 and listed.count(f") {SERVICE_LOGS}: ") == 1 and f"LogGroup (AWS::Logs::LogGroup) {SERVICE_LOGS}: delete;" in listed, (
        out + err
    )
    # then one made by hand under that name: neither deleted stack's, listed once (under the later), not once per stack
    logs.create_log_group(logGroupName=SERVICE_LOGS)
    code, out, err = run("purge", "--stack", "service", "--yes")
    assert code == 0 and out.count(f") {SERVICE_LOGS}: left alone: not the one {stack('service')} created") == 1, out + err


@pytest.mark.parametrize("answer", ["none in time", "ThrottlingException", "InternalFailure", "AccessDenied", "AccessDeniedException"])
def test_logs_after_a_destroy_whose_look_for_the_deleted_stack_fails_say_why_unless_it_was_refused(sandbox, run, monkeypatch, answer):
    # A ListStacks that got no answer was taken for a refusal: "not deployed: make deploy", hiding the log group to read.
    from botocore.exceptions import ReadTimeoutError

    deploy_and_destroy(sandbox, run)
    answered = ClientError({"Error": {"Code": answer, "Message": "no"}}, "ListStacks")
    failure = answered if answer != "none in time" else ReadTimeoutError(endpoint_url=sandbox.environment()["AWS_ENDPOINT_URL"])

    def fails(**_):
        raise failure

    on_each_client(monkeypatch, "before-call.cloudformation.ListStacks", fails)
    code, out, err = run("logs")
    monkeypatch.undo()
    not_deployed = f"error: {stack('service')} is not deployed: make deploy ENV={ENV} deploys every layer in order\n"
    if answer.startswith("AccessDenied"):  # may not list deleted stacks (a role that reads logs alone): nothing retained to look for
        assert (code, err) == (1, not_deployed), out + err
    else:
        said = "did not answer in time" if answer == "none in time" else answer
        assert code == 1 and said in err and "not deployed" not in err, out + err


def test_logs_read_no_log_group_a_stack_this_tool_did_not_make_retained(sandbox, run):
    # A stack of the service's name made by hand, deleted, kept a log group of the service's name: not the service's logs.
    seeded(sandbox)
    cloudformation = sandbox.client("cloudformation")
    kept = {"LogGroup": {"Type": "AWS::Logs::LogGroup", "DeletionPolicy": "Retain", "Properties": {"LogGroupName": SERVICE_LOGS}}}
    cloudformation.create_stack(StackName=stack("service"), TemplateBody=json.dumps({"Resources": kept}))
    cloudformation.delete_stack(StackName=stack("service"))
    assert SERVICE_LOGS in log_group_names(sandbox)
    code, out, err = run("logs")
    assert (code, out) == (
        1,
        "",
    ) and err == f"error: {stack('service')} is not deployed: make deploy ENV={ENV} deploys every layer in order\n", out + err


def test_purge_looks_again_right_before_each_deletion(sandbox, run, monkeypatch):
    # Checked before the question and deleted by name after it: a log group replaced by hand while the
    # question was open was deleted, and a key a new log group took was scheduled for deletion.
    kept = deploy_and_destroy(sandbox, run)
    logs, confirm = sandbox.client("logs"), deployer.Deployer.confirm
    key_arn = sandbox.client("kms").describe_key(KeyId=kept["service"]["LogKey"])["KeyMetadata"]["Arn"]

    def meanwhile(self, question, refusal):
        confirm(self, question, refusal)
        logs.delete_log_group(logGroupName=SERVICE_LOGS)
        logs.create_log_group(logGroupName=SERVICE_LOGS)  # someone's own, under the retained name
        logs.create_log_group(logGroupName="/team-b/audit", kmsKeyId=key_arn)  # and the retained key, taken

    monkeypatch.setattr(deployer.Deployer, "confirm", meanwhile)
    code, out, err = run("purge", "--yes")
    assert code == 0, out + err
    assert f"LogGroup (AWS::Logs::LogGroup) {SERVICE_LOGS}: left: it changed since it was listed (left alone: not the one" in out, out
    assert (
        f"  LogKey (AWS::KMS::Key) {kept['service']['LogKey']}: left: it changed since it was listed (the log group /team-b/audit, "
        "in no stack of these, uses it; its logs would become unreadable. If not needed, delete it by hand (the logs go too), and make "
        f"purge again schedules the key: {sandbox_aws_cli(sandbox)} logs delete-log-group --log-group-name /team-b/audit)"
    ) in out.splitlines(), out
    assert SERVICE_LOGS in log_group_names(sandbox)
    assert key_state(sandbox, kept["service"]["LogKey"])["KeyState"] == "Enabled"


def test_purge_takes_from_a_deleted_stack_only_what_the_layers_template_retains(sandbox, run):
    # A stack of a layer's name with the tool's three tags, made by hand, retained a log group the
    # layer's template never holds: purge deleted it.
    seeded(sandbox)
    cf, name = sandbox.client("cloudformation"), stack("alarms")
    body = {
        "Resources": {
            "TeamLogs": {"Type": "AWS::Logs::LogGroup", "DeletionPolicy": "Retain", "Properties": {"LogGroupName": "/team-b/app"}}
        }
    }
    tags = [{"Key": k, "Value": v} for k, v in templates.own_tags(ENV, "alarms").items()]
    cf.create_stack(StackName=name, TemplateBody=json.dumps(body), Tags=tags)
    cf.delete_stack(StackName=name)
    assert "/team-b/app" in log_group_names(sandbox)  # retained
    code, out, err = run("purge", "--stack", "alarms", "--yes")
    assert code == 0, out + err
    assert "TeamLogs (AWS::Logs::LogGroup) /team-b/app: left: output/alarms.json retains no AWS::Logs::LogGroup TeamLogs" in out, out
    assert out.splitlines()[-1] == f"nothing to purge for {name}: what is listed above stays", out  # the layer's, not the environment's
    assert "/team-b/app" in log_group_names(sandbox)


def test_purge_takes_from_a_deleted_stack_what_the_layers_template_retains_by_logical_id_and_type_both(sandbox, run):
    # A stack of the service's name with the tool's three tags, made by hand, retained a log group of the layer's name
    # under the logical id of the layer's key: the template retains LogKey as a KMS key, not as a log group.
    seeded(sandbox)
    cf, name = sandbox.client("cloudformation"), stack("service")
    group = {"Type": "AWS::Logs::LogGroup", "DeletionPolicy": "Retain", "Properties": {"LogGroupName": SERVICE_LOGS}}
    body = {"Resources": {"LogKey": group}}
    tags = [{"Key": k, "Value": v} for k, v in templates.own_tags(ENV, "service").items()]
    cf.create_stack(StackName=name, TemplateBody=json.dumps(body), Tags=tags)
    cf.delete_stack(StackName=name)
    assert SERVICE_LOGS in log_group_names(sandbox)  # retained
    code, out, err = run("purge", "--stack", "service", "--yes")
    assert code == 0, out + err
    assert f"LogKey (AWS::Logs::LogGroup) {SERVICE_LOGS}: left: output/service.json retains no AWS::Logs::LogGroup LogKey" in out, out
    assert out.splitlines()[-1] == f"nothing to purge for {name}: what is listed above stays", out
    assert SERVICE_LOGS in log_group_names(sandbox)


def test_purge_leaves_what_a_hand_made_stack_of_the_layers_name_and_tags_retained(sandbox, run):
    # Stacks of the layers' names, with the tool's tags and logical ids, made by hand: another team's bucket was
    # deleted, and its key scheduled for deletion. Neither has a name of the layer's to tell it by.
    seeded(sandbox)  # the Phase 5.14 account alone: no deleted stack another test left
    cf, s3, kms = (sandbox.client(name) for name in ("cloudformation", "s3", "kms"))
    everyone = {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "kms:*", "Resource": "*"}
    # a copy of the layer's certificate, its domain another team's: compared as written, it was taken
    certificate = load_layer(ENV, "cert-dns", ROOT / "output").template
    certificate = json.loads(certificate)["Resources"]["Certificate"]["Properties"]["DomainName"]
    made = {
        "cert-dns": ("Certificate", {"Type": "AWS::CertificateManager::Certificate", "Properties": {"DomainName": certificate}}),
        "alb": ("AccessLogBucket", {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": "another-teams-bucket"}}),
        "service": (
            "LogKey",
            {"Type": "AWS::KMS::Key", "Properties": {"Description": "another team's key", "KeyPolicy": {"Statement": [everyone]}}},
        ),
    }
    ids = {}
    for layer, (logical_id, resource) in made.items():
        body = {"Resources": {logical_id: resource | {"DeletionPolicy": "Retain"}}}
        body["Parameters"] = {"DomainName": {"Type": "String", "Default": "another-team.example"}}
        tags = [{"Key": key, "Value": value} for key, value in templates.own_tags(ENV, layer).items()]
        cf.create_stack(StackName=stack(layer), TemplateBody=json.dumps(body), Tags=tags)
        ids[layer] = cf.describe_stack_resource(StackName=stack(layer), LogicalResourceId=logical_id)["StackResourceDetail"][
            "PhysicalResourceId"
        ]
        cf.delete_stack(StackName=stack(layer))
    code, out, err = run("purge", "--yes")
    assert code == 0 and "nothing to purge" in out, out + err
    assert (
        f"AccessLogBucket (AWS::S3::Bucket) another-teams-bucket: left: its BucketName is another-teams-bucket, where output/{ENV}/alb.json "
        "gives none: made with other values than this environment's (an earlier NamePrefix or DomainName), or by a stack of the layer's "
        "name this tool did not make; if it is no one's, by hand: "
    ) in out, out
    assert (
        f"LogKey (AWS::KMS::Key) {ids['service']}: left: its Description is another team's key, where output/{ENV}/service.json" in out
    ), out
    assert f"Certificate (AWS::CertificateManager::Certificate) {ids['cert-dns']}: left: its DomainName is *.another-team.example" in out, (
        out
    )
    assert (
        sandbox.client("acm").describe_certificate(CertificateArn=ids["cert-dns"])["Certificate"]["DomainName"] == "*.another-team.example"
    )
    assert exists(s3.head_bucket, "404", Bucket="another-teams-bucket")
    assert kms.describe_key(KeyId=ids["service"])["KeyMetadata"]["KeyState"] == "Enabled"


def test_purge_reads_a_retained_keys_own_description_not_only_the_one_its_template_gave(sandbox, run, monkeypatch):
    # A stack of ours can import another team's key with a template that gives it our description (CloudFormation does
    # not check an imported resource against the template), or take our description from a NamePrefix that was an SSM
    # parameter's name: the template's value said the key was ours, and purge scheduled its deletion.
    seeded(sandbox)
    cf, kms = sandbox.client("cloudformation"), sandbox.client("kms")
    layer = load_layer(ENV, "service", ROOT / "output")
    ours = json.loads(layer.template)["Resources"]["LogKey"]["Properties"]["Description"]["Fn::Sub"]
    ours = ours.replace("${NamePrefix}", layer.parameters["NamePrefix"])
    everyone = {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "kms:*", "Resource": "*"}
    key = {"Type": "AWS::KMS::Key", "DeletionPolicy": "Retain", "Properties": {"Description": ours, "KeyPolicy": {"Statement": [everyone]}}}
    tags = [{"Key": k, "Value": v} for k, v in templates.own_tags(ENV, "service").items()]
    cf.create_stack(StackName=stack("service"), TemplateBody=json.dumps({"Resources": {"LogKey": key}}), Tags=tags)
    key_id = cf.describe_stack_resource(StackName=stack("service"), LogicalResourceId="LogKey")["StackResourceDetail"]["PhysicalResourceId"]
    cf.delete_stack(StackName=stack("service"))
    kms.update_key_description(KeyId=key_id, Description="payments: encrypts card tokens")  # the key as it really is
    code, out, err = run("purge", "--stack", "service", "--yes")
    (line,) = [line for line in out.splitlines() if line.startswith(f"  LogKey (AWS::KMS::Key) {key_id}: ")]
    assert code == 0 and line.endswith(
        f"left: its Description is payments: encrypts card tokens, where output/{ENV}/service.json gives {ours}: made with other "
        "values than this environment's (an earlier NamePrefix or DomainName), or by a stack of the layer's name this tool did not "
        f"make; if it is no one's and no log group uses it, by hand: {line.split('by hand: ', 1)[1]}"
    ), out + err
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Enabled"
    # our description back, then another's once it is listed (while the question was open): read again right before
    kms.update_key_description(KeyId=key_id, Description=ours)
    looks = []

    def changed_once_listed(**_):
        looks.append(1)
        if len(looks) == 1:
            kms.update_key_description(KeyId=key_id, Description="payments: encrypts card tokens")

    on_each_client(monkeypatch, "after-call.kms.DescribeKey", changed_once_listed)
    code, out, err = run("purge", "--stack", "service", "--yes")
    assert (
        code == 0
        and (
            f"  LogKey (AWS::KMS::Key) {key_id}: left: it changed since it was listed (its Description is payments: encrypts card tokens, "
            f"where output/{ENV}/service.json gives {ours}: "
        )
        in out
    ), out + err
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Enabled" and len(looks) == 2
    # the same key with our description back: taken, as the template's value and its own agree with output/
    monkeypatch.undo()
    kms.update_key_description(KeyId=key_id, Description=ours)
    code, out, err = run("purge", "--stack", "service", "--yes")
    assert code == 0 and kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "PendingDeletion", out + err


def test_purge_reads_a_retained_certificates_own_domain_not_only_the_one_its_template_gave(sandbox, run, monkeypatch):
    # A stack of ours that imported another team's certificate under a template giving our domain: the template's value
    # said it was ours. The emulator makes a certificate with the template's domain, so ACM's answer is another's here.
    seeded(sandbox)
    cf, acm = sandbox.client("cloudformation"), sandbox.client("acm")
    layer = load_layer(ENV, "cert-dns", ROOT / "output")
    ours = json.loads(layer.template)["Resources"]["Certificate"]["Properties"]["DomainName"]
    certificate = {"Type": "AWS::CertificateManager::Certificate", "DeletionPolicy": "Retain", "Properties": {"DomainName": ours}}
    body = {"Parameters": {"DomainName": {"Type": "String"}}, "Resources": {"Certificate": certificate}}
    tags = [{"Key": k, "Value": v} for k, v in templates.own_tags(ENV, "cert-dns").items()]
    domain = [{"ParameterKey": "DomainName", "ParameterValue": layer.parameters["DomainName"]}]
    cf.create_stack(StackName=stack("cert-dns"), TemplateBody=json.dumps(body), Parameters=domain, Tags=tags)
    arn = cf.describe_stack_resource(StackName=stack("cert-dns"), LogicalResourceId="Certificate")["StackResourceDetail"][
        "PhysicalResourceId"
    ]
    cf.delete_stack(StackName=stack("cert-dns"))

    def anothers(parsed, **_):
        parsed["Certificate"]["DomainName"] = "*.another-team.example"

    on_each_client(monkeypatch, "after-call.acm.DescribeCertificate", anothers)
    code, out, err = run("purge", "--stack", "cert-dns", "--yes")
    assert (
        code == 0
        and (
            f"Certificate (AWS::CertificateManager::Certificate) {arn}: left: its DomainName is *.another-team.example, where "
            f"output/{ENV}/cert-dns.json gives *.{layer.parameters['DomainName']}: "
        )
        in out
    ), out + err
    assert exists(acm.describe_certificate, "ResourceNotFoundException", CertificateArn=arn)
    monkeypatch.undo()  # ACM's answer as the emulator gives it: the certificate is the layer's, deleted
    code, out, err = run("purge", "--stack", "cert-dns", "--yes")
    assert code == 0 and not exists(acm.describe_certificate, "ResourceNotFoundException", CertificateArn=arn), out + err


def test_purge_of_a_layer_taken_out_of_enabled_layers_compares_a_retained_keys_description_as_written(sandbox, run, tmp_path):
    # no output/<env>/waf.json to resolve the layer's values with: the expressions are compared, not skipped
    seeded(sandbox)
    options = without_layer(tmp_path, "waf")
    cf = sandbox.client("cloudformation")
    everyone = {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "kms:*", "Resource": "*"}
    key = {
        "Type": "AWS::KMS::Key",
        "DeletionPolicy": "Retain",
        "Properties": {"Description": "another team's key", "KeyPolicy": {"Statement": [everyone]}},
    }
    tags = [{"Key": k, "Value": v} for k, v in templates.own_tags(ENV, "waf").items()]
    cf.create_stack(StackName=stack("waf"), TemplateBody=json.dumps({"Resources": {"LogKey": key}}), Tags=tags)
    key_id = cf.describe_stack_resource(StackName=stack("waf"), LogicalResourceId="LogKey")["StackResourceDetail"]["PhysicalResourceId"]
    cf.delete_stack(StackName=stack("waf"))
    code, out, err = run("purge", "--stack", "waf", "--yes", *options)
    assert code == 0 and 'left: the template it was made with gives it Description "another team\'s key", not what ' in out, out + err
    assert sandbox.client("kms").describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Enabled"


def test_purge_of_a_layer_taken_out_of_enabled_layers_reads_a_retained_keys_own_description(sandbox, run, tmp_path):
    # The template's expression is the layer's, and the key's own description another team's (imported, or changed
    # since): with no output/<env>/waf.json, only the expressions were compared, and purge scheduled its deletion.
    seeded(sandbox)
    options = without_layer(tmp_path, "waf")
    cf, kms = sandbox.client("cloudformation"), sandbox.client("kms")
    ours = json.loads((ROOT / "output" / "waf.json").read_text())["Resources"]["LogKey"]["Properties"]["Description"]
    everyone = {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "kms:*", "Resource": "*"}
    key = {"Type": "AWS::KMS::Key", "DeletionPolicy": "Retain", "Properties": {"Description": ours, "KeyPolicy": {"Statement": [everyone]}}}
    body = {"Parameters": {"NamePrefix": {"Type": "String"}}, "Resources": {"LogKey": key}}
    tags = [{"Key": k, "Value": v} for k, v in templates.own_tags(ENV, "waf").items()]
    prefix = [{"ParameterKey": "NamePrefix", "ParameterValue": OTHER_PREFIX}]
    cf.create_stack(StackName=stack("waf"), TemplateBody=json.dumps(body), Parameters=prefix, Tags=tags)
    key_id = cf.describe_stack_resource(StackName=stack("waf"), LogicalResourceId="LogKey")["StackResourceDetail"]["PhysicalResourceId"]
    cf.delete_stack(StackName=stack("waf"))
    made_with = ours["Fn::Sub"].replace("${NamePrefix}", OTHER_PREFIX)
    kms.update_key_description(KeyId=key_id, Description="payments: encrypts card tokens")
    code, out, err = run("purge", "--stack", "waf", "--yes", *options)
    assert (
        code == 0
        and (
            f"left: its Description is payments: encrypts card tokens, where the template its stack was deleted with gives {made_with}: "
            "changed since, or not the one the stack made (imported by a stack of the layer's name); if it is no one's and no log group "
            "uses it, by hand: "
        )
        in out
    ), out + err
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Enabled"
    kms.update_key_description(KeyId=key_id, Description=made_with)  # as its stack made it: the layer's, taken
    code, out, err = run("purge", "--stack", "waf", "--yes", *options)
    assert code == 0 and kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "PendingDeletion", out + err


def test_purge_leaves_the_key_of_a_log_group_of_an_earlier_name_prefix_for_that_log_group(sandbox, run):
    # Its description names the earlier prefix too: said as another team's key, with a command that would have made the
    # kept log group's events unreadable
    seeded(sandbox)
    cf = sandbox.client("cloudformation")
    group = "/ecs/startupwebapp-old-service"
    everyone = {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "kms:*", "Resource": "*"}
    key = {"Description": f"Encrypts the {group} log group", "KeyPolicy": {"Statement": [everyone]}}
    body = {
        "Resources": {
            "LogKey": {"Type": "AWS::KMS::Key", "DeletionPolicy": "Retain", "Properties": key},
            "LogGroup": {
                "Type": "AWS::Logs::LogGroup",
                "DeletionPolicy": "Retain",
                "Properties": {"LogGroupName": group, "KmsKeyId": {"Fn::GetAtt": ["LogKey", "Arn"]}},
            },
        }
    }
    tags = [{"Key": k, "Value": v} for k, v in templates.own_tags(ENV, "service").items()]
    cf.create_stack(StackName=stack("service"), TemplateBody=json.dumps(body), Tags=tags)
    key_id = cf.describe_stack_resource(StackName=stack("service"), LogicalResourceId="LogKey")["StackResourceDetail"]["PhysicalResourceId"]
    cf.delete_stack(StackName=stack("service"))
    code, out, err = run("purge", "--yes")
    assert code == 0 and f"left: the log group {group} it encrypts stays" in out, out + err
    assert "kms schedule-key-deletion" not in out, out
    # its group gone by hand, and another in no stack using the key: left as one made with other values, its by-hand
    # command only for when no log group uses it (a bare one would make that group's logs unreadable), and no promise
    # that a purge after that group's deletion schedules it (it leaves it, for its description)
    logs = sandbox.client("logs")
    arn = sandbox.client("kms").describe_key(KeyId=key_id)["KeyMetadata"]["Arn"]
    logs.delete_log_group(logGroupName=group)
    logs.create_log_group(logGroupName=f"{group}-kept", kmsKeyId=arn)
    code, out, err = run("purge", "--yes")
    (line,) = [line for line in out.splitlines() if line.startswith(f"  LogKey (AWS::KMS::Key) {key_id}: ")]
    assert code == 0 and "left: its Description is Encrypts the /ecs/startupwebapp-old-service log group" in line, out + err
    assert "; if it is no one's and no log group uses it, by hand: " in line and "make purge again schedules" not in out, out


def test_a_stack_whose_resource_was_deleted_by_hand_is_destroyed_and_what_it_retained_is_purges(sandbox, run, tmp_path):
    # make drift's advice for a resource deleted by hand (destroy, then deploy): the deletion took the stack out of the
    # sandbox's list, with no DELETE_COMPLETE, and left its retained bucket where make purge could not find it.
    # The alb layer ROLLING, whatever params/sandbox.yaml says: its alternate target group is then in no listener rule,
    # free to delete by hand (a traffic-shifting strategy's rules use it, and ELB refuses its deletion).
    rolling = output_with_parameters(tmp_path / "rolling", {"alb": {"DeploymentStrategy": "ROLLING"}})
    seeded(sandbox)
    for layer in LAYERS[: LAYERS.index("alb") + 1]:
        code, out, err = run("deploy", "--stack", layer, "--yes", *rolling)
        assert code == 0, out + err
    ids = physical_ids(sandbox, "alb")
    stack_id = sandbox.client("cloudformation").describe_stacks(StackName=stack("alb"))["Stacks"][0]["StackId"]
    sandbox.client("elbv2").delete_target_group(TargetGroupArn=ids["AlternateTargetGroup"])
    code, out, err = run("destroy", "--stack", "alb", "--yes")
    assert code == 0, out + err
    assert f"retained, not deleted with the stack: AccessLogBucket (AWS::S3::Bucket) {ids['AccessLogBucket']}" in out, out
    deleted = sandbox.client("cloudformation").list_stacks(StackStatusFilter=["DELETE_COMPLETE"])["StackSummaries"]
    assert stack_id in [summary["StackId"] for summary in deleted], deleted
    code, out, err = run("purge", "--stack", "alb")  # no terminal, no YES=1: the list alone
    assert code == 1 and f"AccessLogBucket (AWS::S3::Bucket) {ids['AccessLogBucket']}: delete" in out, out + err


def test_purge_never_touches_what_the_stacks_did_not_create(sandbox, run):
    kept = deploy_and_destroy(sandbox, run)
    logs, kms, s3, elbv2 = (sandbox.client(name) for name in ("logs", "kms", "s3", "elbv2"))
    # Someone deleted the retained service log group and made one of the same name by hand, with logs.
    logs.delete_log_group(logGroupName=SERVICE_LOGS)
    logs.create_log_group(logGroupName=SERVICE_LOGS, tags={"Project": templates.PROJECT, "Layer": "service"})
    logs.create_log_stream(logGroupName=SERVICE_LOGS, logStreamName="by-hand")
    now = int(datetime.now(UTC).timestamp() * 1000)
    logs.put_log_events(logGroupName=SERVICE_LOGS, logStreamName="by-hand", logEvents=[{"timestamp": now, "message": "keep me"}])
    # ... and lookalikes: names and tags like the stacks', never created by them.
    tags = {"Project": templates.PROJECT, "Environment": ENV, "Layer": "service"}
    logs.create_log_group(logGroupName=f"{SERVICE_LOGS}-old", tags=tags)
    key_id = kms.create_key(
        Description=f"Encrypts the {SERVICE_LOGS} log group", Tags=[{"TagKey": k, "TagValue": v} for k, v in tags.items()]
    )["KeyMetadata"]["KeyId"]
    bucket = f"{stack('alb')}-accesslogbucket-byhand"
    create_bucket(s3, bucket)
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": "Layer", "Value": "alb"}]})
    s3.put_object(Bucket=kept["alb"]["AccessLogBucket"], Key="AWSLogs/123456789012/access.log.gz", Body=b"a request")
    vpc = params.load(PARAMS_FILE).values["VpcId"]
    group_arn = elbv2.create_target_group(
        Name=f"{PREFIX}-tg", Protocol="HTTP", Port=int(SANDBOX.values["ContainerPort"]), VpcId=vpc, TargetType="ip"
    )["TargetGroups"][0]["TargetGroupArn"]

    code, out, err = run("purge", "--yes")
    assert code == 0, out + err
    assert f"LogGroup (AWS::Logs::LogGroup) {SERVICE_LOGS}: left alone: not the one {stack('service')} created" in out
    assert "blocks creating the layer again" in out
    events = logs.get_log_events(logGroupName=SERVICE_LOGS, logStreamName="by-hand")["events"]
    assert [e["message"] for e in events] == ["keep me"]
    assert f"{SERVICE_LOGS}-old" in log_group_names(sandbox)
    assert key_state(sandbox, key_id)["KeyState"] == "Enabled"
    assert exists(s3.head_bucket, "404", Bucket=bucket)
    assert elbv2.describe_target_groups(TargetGroupArns=[group_arn])["TargetGroups"]
    # The stack's own bucket holds access logs now: left, saying so.
    assert f"AccessLogBucket (AWS::S3::Bucket) {kept['alb']['AccessLogBucket']}: left: it holds objects" in out
    assert exists(s3.head_bucket, "404", Bucket=kept["alb"]["AccessLogBucket"])
    # What the stacks did create and retain went: the waf log group, the log groups' keys (scheduled), the certificate.
    assert not (RETAINED_LOGS - {SERVICE_LOGS}) & log_group_names(sandbox)
    for layer in ("service", "waf"):
        if layer in kept:
            assert key_state(sandbox, kept[layer]["LogKey"])["KeyState"] == "PendingDeletion", layer
    assert not exists(
        sandbox.client("acm").describe_certificate, "ResourceNotFoundException", CertificateArn=kept["cert-dns"]["Certificate"]
    )


def test_purge_leaves_what_a_stack_of_a_layers_name_made_by_hand_retained_under_another_name(sandbox, run):
    """A stack made by hand under the service layer's name, with this tool's three tags and the layer's logical ids
    and types, retaining another team's log group and its key: purge deleted both (it checked tags, logical id and
    type, not the name the layer gives its log group)."""
    deploy_and_destroy(sandbox, run)
    code, out, err = run("purge", "--yes")
    assert code == 0, out + err
    service = json.loads((ROOT / "output" / "service.json").read_text())
    other = "/other-team/audit-trail"
    resources = {name: json.loads(json.dumps(service["Resources"][name])) for name in ("LogKey", "LogGroup")}
    resources["LogGroup"]["Properties"]["LogGroupName"] = other
    used = {name for name in service["Parameters"] if f'"{name}"' in json.dumps(resources) or "${" + name + "}" in json.dumps(resources)}
    cf = sandbox.client("cloudformation")
    values = parameters(ENV, "service")
    cf.create_stack(
        StackName=stack("service"),
        TemplateBody=json.dumps({"Parameters": {name: service["Parameters"][name] for name in used}, "Resources": resources}),
        Parameters=[{"ParameterKey": name, "ParameterValue": values[name]} for name in sorted(used)],
        Tags=[{"Key": k, "Value": v} for k, v in templates.own_tags(ENV, "service").items()],
    )
    key = {
        r["LogicalResourceId"]: r["PhysicalResourceId"] for r in cf.describe_stack_resources(StackName=stack("service"))["StackResources"]
    }["LogKey"]
    cf.delete_stack(StackName=stack("service"))
    code, out, err = run("purge", "--stack", "service", "--yes")
    assert code == 0, out + err
    assert (
        f"  LogGroup (AWS::Logs::LogGroup) {other}: left: output/{ENV}/service.json gives the layer's AWS::Logs::LogGroup {SERVICE_LOGS}: "
        "a stack of its name this tool did not make (or one of an earlier NamePrefix) left this one"
    ) in out, out
    assert f"LogKey (AWS::KMS::Key) {key}: left: the log group {other} it encrypts stays" in out, out
    assert other in log_group_names(sandbox) and key_state(sandbox, key)["KeyState"] == "Enabled"


@pytest.mark.parametrize("retried", [True, False], ids=["its answer lost", "gone meanwhile"])
def test_a_deletion_that_finds_its_resource_gone_is_no_failure(sandbox, run, monkeypatch, retried):
    """A retried DeleteBucket whose first attempt landed answers NoSuchBucket: purge said it failed (exit 1), though
    the bucket was gone. A bucket gone on a first attempt went since purge looked at it: left, not failed."""
    from botocore.exceptions import ClientError

    from scripts.deploy import purge

    kept = deploy_and_destroy(sandbox, run)
    bucket = kept["alb"]["AccessLogBucket"]
    delete = purge.ACT["AWS::S3::Bucket"]

    def answer_lost(clients, item):
        delete(clients, item)  # landed
        answer = {"Error": {"Code": "NoSuchBucket", "Message": "The specified bucket does not exist"}}
        raise ClientError(answer | {"ResponseMetadata": {"RetryAttempts": 1 if retried else 0}}, "DeleteBucket")

    monkeypatch.setitem(purge.ACT, "AWS::S3::Bucket", answer_lost)
    code, out, err = run("purge", "--stack", "alb", "--yes")
    assert code == 0, out + err
    said = "deleted (a retry found it gone: the first attempt's answer was lost)" if retried else "left: gone since it was looked at"
    assert f"  AccessLogBucket (AWS::S3::Bucket) {bucket}: {said}" in out.splitlines(), out
    assert "failed" not in out


def test_a_resource_purge_cannot_read_again_before_its_deletion_is_a_failure_and_its_key_stays(sandbox, run, monkeypatch):
    """The look right before a deletion refused (throttled past retries): purge said the log group "changed since it
    was listed", exited 0, and said its key was left for a log group "in no stack of these", with a command to
    delete that group by hand, though it was the stack's own."""
    from scripts.deploy import purge

    kept = deploy_and_destroy(sandbox, run)
    look, looked = purge.INSPECT["AWS::Logs::LogGroup"], []

    def throttled_the_second_time(clients, item):
        if item.physical_id == SERVICE_LOGS:
            looked.append(item.physical_id)
            if len(looked) == 2:  # the listing's look went through; the one right before the deletion is refused
                answer = {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}, "ResponseMetadata": {"RetryAttempts": 4}}
                raise ClientError(answer, "DescribeLogGroups")
        return look(clients, item)

    monkeypatch.setitem(purge.INSPECT, "AWS::Logs::LogGroup", throttled_the_second_time)
    code, out, err = run("purge", "--yes")
    monkeypatch.undo()
    assert code == 1 and re.fullmatch(r"error: 1 of \d+ could not be purged \(see above\); nothing else was touched\n", err), out + err
    assert (
        f"  failed: LogGroup (AWS::Logs::LogGroup) {SERVICE_LOGS}: could not be read again right before its deletion "
        "(cannot read it (ThrottlingException: Rate exceeded))"
    ) in out.splitlines(), out
    assert f"  LogKey (AWS::KMS::Key) {kept['service']['LogKey']}: left: its stack's log group was not deleted" in out.splitlines(), out
    assert SERVICE_LOGS in log_group_names(sandbox) and key_state(sandbox, kept["service"]["LogKey"])["KeyState"] == "Enabled"
    code, out, err = run("purge", "--yes")  # and the next purge does what was left
    assert code == 0 and SERVICE_LOGS not in log_group_names(sandbox), out + err


def throttle_looks_at_the_service_log_group(monkeypatch) -> None:
    """purge's every look at the service's retained log group answered by a throttle its retries did not get past."""
    from scripts.deploy import purge

    look = purge.INSPECT["AWS::Logs::LogGroup"]

    def throttled(clients, item):
        if item.physical_id == SERVICE_LOGS:
            answer = {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}, "ResponseMetadata": {"RetryAttempts": 4}}
            raise ClientError(answer, "DescribeLogGroups")
        return look(clients, item)

    monkeypatch.setitem(purge.INSPECT, "AWS::Logs::LogGroup", throttled)


def test_a_retained_resource_purge_cannot_read_is_left_and_the_purge_fails_after_doing_the_rest(sandbox, run, monkeypatch):
    # helper G2's fault sweep: a throttle on the listing's look at a resource left it ("left: cannot read it") and the
    # purge ended exit 0 with no error, where the same look unanswered, or refused right before the deletion, failed.
    kept = deploy_and_destroy(sandbox, run)
    throttle_looks_at_the_service_log_group(monkeypatch)
    code, out, err = run("purge", "--yes")
    monkeypatch.undo()
    assert code == 1 and err.endswith(
        f"error: 1 retained resource could not be read and was left (listed above): make purge ENV={ENV} looks again\n"
    ), out + err
    assert f"  LogGroup (AWS::Logs::LogGroup) {SERVICE_LOGS}: left: cannot read it (ThrottlingException: Rate exceeded)" in out, out
    assert SERVICE_LOGS in log_group_names(sandbox) and key_state(sandbox, kept["service"]["LogKey"])["KeyState"] == "Enabled"
    assert not exists(
        sandbox.client("acm").describe_certificate, "ResourceNotFoundException", CertificateArn=kept["cert-dns"]["Certificate"]
    )
    code, out, err = run("purge", "--yes")  # the next purge does what was left
    assert code == 0 and SERVICE_LOGS not in log_group_names(sandbox), out + err
    code, out, err = run("purge", "--yes")
    assert code == 0, out + err


def test_a_purge_of_one_layer_whose_only_retained_resource_it_cannot_read_fails_with_nothing_to_do(sandbox, run, monkeypatch):
    # The branch with nothing left to purge: the log group unread, its key left with it (no deletion to ask about),
    # the run must still fail and name the one-layer command that looks again.
    kept = deploy_and_destroy(sandbox, run)
    throttle_looks_at_the_service_log_group(monkeypatch)
    code, out, err = run("purge", "--stack", "service", "--yes")
    monkeypatch.undo()
    assert code == 1 and err.endswith(
        f"error: 1 retained resource could not be read and was left (listed above): make purge ENV={ENV} STACK=service "
        "looks again; nothing was touched\n"
    ), out + err
    assert SERVICE_LOGS in log_group_names(sandbox) and key_state(sandbox, kept["service"]["LogKey"])["KeyState"] == "Enabled"


def test_a_key_whose_users_purge_cannot_list_again_before_its_deletion_is_a_failure(sandbox, run, monkeypatch):
    # The account's log groups unlisted right before a key's deletion (no answer): "changed since it was listed", exit 0.
    from botocore.exceptions import ReadTimeoutError

    kept = deploy_and_destroy(sandbox, run)
    confirm, confirmed = deployer.Deployer.confirm, []

    def then_unanswered(self, question, refusal):
        confirm(self, question, refusal)
        confirmed.append(True)

    def every_group_listed(params, **_):  # the look for a key's users lists every log group, by no name prefix
        if confirmed and "logGroupNamePrefix" not in params:
            raise ReadTimeoutError(endpoint_url=sandbox.environment()["AWS_ENDPOINT_URL"])

    monkeypatch.setattr(deployer.Deployer, "confirm", then_unanswered)
    on_each_client(monkeypatch, "provide-client-params.logs.DescribeLogGroups", every_group_listed)
    code, out, err = run("purge", "--yes")
    monkeypatch.undo()
    key = kept["service"]["LogKey"]
    assert code == 1 and re.fullmatch(r"error: \d+ of \d+ could not be purged \(see above\); nothing else was touched\n", err), out + err
    assert (
        f"  failed: LogKey (AWS::KMS::Key) {key}: could not be read again right before its deletion "
        "(the log groups that may use it could not be listed (ReadTimeoutError))"
    ) in out.splitlines(), out
    assert key_state(sandbox, key)["KeyState"] == "Enabled"


def test_purge_leaves_a_key_that_a_log_group_in_no_stack_still_uses(sandbox, run):
    # An update that renamed the service's log group (a new NamePrefix, ALLOW_REPLACE=1) kept the old one,
    # in no stack, encrypted with the same LogKey: scheduling that key's deletion would make its logs unreadable.
    kept = deploy_and_destroy(sandbox, run)
    key_arn = key_state(sandbox, kept["service"]["LogKey"])["Arn"]
    old_logs, older_logs = f"/ecs/{PREFIX}-before-service", f"/ecs/{PREFIX}-long-before-service"
    for name in (old_logs, older_logs):
        sandbox.client("logs").create_log_group(logGroupName=name, kmsKeyId=key_arn)

    code, out, err = run("purge", "--yes")
    assert code == 0, out + err
    cli = sandbox_aws_cli(sandbox)
    assert (
        f"  LogKey (AWS::KMS::Key) {kept['service']['LogKey']}: left: the log group {old_logs} and 1 more, in no stack of these, uses it; "
        "its logs would become unreadable. If not needed, delete them by hand (the logs go too), and make purge again schedules the "
        f"key: {cli} logs delete-log-group --log-group-name {old_logs}; {cli} logs delete-log-group --log-group-name {older_logs}"
    ) in out.splitlines(), out
    assert key_state(sandbox, kept["service"]["LogKey"])["KeyState"] == "Enabled"
    assert SERVICE_LOGS not in log_group_names(sandbox) and {old_logs, older_logs} <= log_group_names(sandbox)  # the stack's own went
    if "waf" in kept:  # a key no other log group uses is scheduled as before
        assert key_state(sandbox, kept["waf"]["LogKey"])["KeyState"] == "PendingDeletion"


def test_a_run_of_every_layer_whose_create_needs_a_log_group_name_in_no_stack_is_refused_before_its_first_create(sandbox, run):
    # The old log group an update to a new NamePrefix kept, or one made by hand: the run created the
    # layers before the service's, then failed there (found by an attacker pass).
    seeded(sandbox)
    sandbox.client("logs").create_log_group(logGroupName=SERVICE_LOGS)
    code, out, err = run("deploy", "--yes")
    command = f"{sandbox_aws_cli(sandbox)} logs delete-log-group --log-group-name {SERVICE_LOGS}"
    assert code == 1 and err.splitlines()[0] == (
        f"error: refused before creating anything: log groups no destroyed stack of theirs retained hold names their creates need: "
        f"{stack('service')}: {SERVICE_LOGS}. {SERVICE_LOGS}, if no stack uses it (one an update that renamed its group kept, or one "
        "made by hand), you delete yourself once its logs are not needed: "
        f"{command}, then deploy again"
    ), out + err
    assert not sandbox.client("cloudformation").list_stacks()["StackSummaries"]  # nothing created


def test_a_failed_first_create_rolls_back_and_is_created_again_with_recreate(sandbox, run, monkeypatch):
    deployed(sandbox, run, "cert-dns", "alb", "release-alarms")
    logs = sandbox.client("logs")
    logs.create_log_group(logGroupName=SERVICE_LOGS)  # takes the name the service layer's log group needs
    # Seen before the change set runs: refused, and the empty stack made for the change set deleted.
    code, out, err = run("deploy", "--stack", "service", "--yes")
    assert code == 1 and f"LogGroup needs {SERVICE_LOGS}, which is taken (not made by this stack)\n    free it: " in err, out + err
    assert f"{stack('service')} ROLLBACK_COMPLETE" not in run("status")[1]
    assert not exists(sandbox.client("cloudformation").describe_stacks, "ValidationError", StackName=stack("service"))

    # Taken between that look and the execution, the name fails the create, which rolls back.
    logs.delete_log_group(logGroupName=SERVICE_LOGS)
    look = guards.refuse_taken_log_group_names

    def then_taken(deployer, *args):
        look(deployer, *args)
        logs.create_log_group(logGroupName=SERVICE_LOGS)

    monkeypatch.setattr(guards, "refuse_taken_log_group_names", then_taken)
    code, out, err = run("deploy", "--stack", "service", "--yes")
    monkeypatch.undo()
    assert code == 1
    assert f"{stack('service')} ended ROLLBACK_COMPLETE" in err and "RECREATE=1" in err, out + err
    assert "failed: LogGroup (AWS::Logs::LogGroup)" in out
    code, out, err = run("status")
    assert f"{stack('service'):<36} ROLLBACK_COMPLETE" in out, out
    # The rollback removed what the create had made, the retained types included (RetainExceptOnCreate).
    assert sandbox.client("ecs").list_services(cluster=params.load(PARAMS_FILE).values["ClusterName"])["serviceArns"] == []
    roles = [r["RoleName"] for r in sandbox.client("iam").list_roles()["Roles"] if r["RoleName"].startswith(stack("service"))]
    assert roles == []
    keys = [sandbox.client("kms").describe_key(KeyId=k["KeyId"])["KeyMetadata"] for k in sandbox.client("kms").list_keys()["Keys"]]
    assert all(k["KeyState"] != "Enabled" for k in keys if k["Description"].startswith(f"Encrypts the {SERVICE_LOGS}")), keys

    logs.delete_log_group(logGroupName=SERVICE_LOGS)
    code, out, err = run("deploy", "--stack", "service", "--recreate", "--yes")
    assert code == 0, out + err
    assert f"{stack('service')}: CREATE_COMPLETE" in out


def test_executing_a_repairs_change_set_settles_the_new_service_without_rollback_triggers_too(sandbox, run):
    # make changeset REPAIR=1, then make execute: the settling update that follows a new service set the triggers again.
    deployed(sandbox, run, "cert-dns", "alb", "release-alarms")
    code, out, err = run("changeset", "--stack", "service", "--repair")
    assert code == 0, out + err
    cloudformation = sandbox.client("cloudformation")
    (made,) = cloudformation.list_change_sets(StackName=stack("service"))["Summaries"]
    code, out, err = run("execute", "--stack", "service", "--changeset", made["ChangeSetName"], "--yes")
    assert code == 0 and "from now on, updates leave the running task count to auto-scaling" in out, out + err
    settling = [
        s for s in cloudformation.list_change_sets(StackName=stack("service"))["Summaries"] if s["ChangeSetName"].endswith("-settle")
    ]
    assert settling, out
    described_settle = cloudformation.describe_change_set(StackName=stack("service"), ChangeSetName=settling[0]["ChangeSetName"])
    assert described_settle["RollbackConfiguration"] == {"RollbackTriggers": [], "MonitoringTimeInMinutes": 0}, described_settle


def test_a_refused_execute_of_the_settling_change_set_deletes_it(sandbox, run, monkeypatch):
    """A new service's second change set (the task count left to auto-scaling, Deployer.settle) is
    this run's too: refused, it is deleted like the first one, not left behind."""
    from scripts import botocore_models

    deployed(sandbox, run, "cert-dns", "alb", "release-alarms")

    def refuse_settling(params, **_):
        if params["ClientRequestToken"].endswith("-settle"):  # the change set goes by its ARN, its name is in the token
            raise ClientError({"Error": {"Code": "InvalidChangeSetStatus", "Message": "refused by the test"}}, "ExecuteChangeSet")

    session = botocore_models.botocore_session

    def refusing_session(session_vars=None):
        core = session(session_vars)
        core.register("provide-client-params.cloudformation.ExecuteChangeSet", refuse_settling)
        return core

    monkeypatch.setattr(botocore_models, "botocore_session", refusing_session)
    code, out, err = run("deploy", "--stack", "service", "--yes")
    assert code == 1 and "refused by the test" in err, out + err
    settling = [line for line in out.splitlines() if "-settle deleted" in line]
    assert len(settling) == 1 and settling[0].startswith(f"{stack('service')}: change set {stack('service')}-"), out
    # Only the executed CREATE change set stays listed (as AWS keeps it, EXECUTE_COMPLETE): the settling one is gone.
    listed = sandbox.client("cloudformation").list_change_sets(StackName=stack("service"))["Summaries"]
    assert [(c["ChangeSetName"].endswith("-settle"), c["ExecutionStatus"]) for c in listed] == [(False, "EXECUTE_COMPLETE")], listed


def test_replacing_a_stateful_resource_is_refused_without_allow_replace(sandbox, run, tmp_path):
    if not SANDBOX.deploys("waf"):
        pytest.skip(f"{PARAMS_FILE} does not enable waf, whose log group this replaces")
    deployed(sandbox, run, "cert-dns", "alb", "waf")
    # A new NamePrefix renames the waf layer's log group: LogGroupName is create-only, so replaced.
    given = ("--stack", "waf", *output_with_parameter(tmp_path, "waf", "NamePrefix", OTHER_PREFIX), "--yes")

    code, out, err = run("deploy", *given)
    assert code == 1, out + err
    assert "refused: the change set replaces or removes stateful resources: LogGroup (AWS::Logs::LogGroup, replaced)" in err
    row = next(line for line in out.splitlines() if " LogGroup " in line)
    assert row.split()[:4] == ["!REPLACE,STATEFUL", "Modify", "LogGroup", "AWS::Logs::LogGroup"], row
    assert "LogGroupName <- parameter NamePrefix recreates" in row
    assert WAF_LOGS in log_group_names(sandbox) and f"aws-waf-logs-{OTHER_PREFIX}" not in log_group_names(sandbox)
    summaries = sandbox.client("cloudformation").list_change_sets(StackName=stack("waf"))["Summaries"]
    assert [s for s in summaries if s["StackName"] == stack("waf") and s["ExecutionStatus"] == "AVAILABLE"] == []  # deleted

    code, out, err = run("deploy", *given, "--allow-replace")
    assert code == 0, out + err
    assert f"{stack('waf')}: UPDATE_COMPLETE" in out
    # The new log group exists; the old one is kept (UpdateReplacePolicy Retain), with its logs.
    assert {f"aws-waf-logs-{OTHER_PREFIX}", WAF_LOGS} <= log_group_names(sandbox)
    assert physical_ids(sandbox, "waf")["LogGroup"] == f"aws-waf-logs-{OTHER_PREFIX}"
    # ... and said so, with the command that frees it: no stack holds it, so destroy and purge never will.
    kept = next((line for line in out.splitlines() if "the old one stays in the account" in line), out)
    assert kept.startswith("  LogGroup (AWS::Logs::LogGroup) was replaced;") and kept.endswith(
        f"logs delete-log-group --log-group-name {WAF_LOGS}"
    )

    # Back to the old NamePrefix, the update would make the log group under the name the kept one
    # holds, and fail and roll back there: refused before anything runs, with what frees the name.
    code, out, err = run("deploy", "--stack", "waf", "--yes", "--allow-replace")
    assert code == 1, out + err
    free = f"logs delete-log-group --log-group-name {WAF_LOGS}"
    assert f"LogGroup needs {WAF_LOGS}, which is taken (kept by an earlier replacement in this stack; it holds " in err, err
    assert "would fail there and roll back; nothing changed:\n" in err and f"{free}\n" in err, err  # the command ends its line
    assert guards.FREE_THE_NAMES in err.splitlines(), err  # (mutation audit) what to do with the names, on a line of its own
    (waf,) = sandbox.client("cloudformation").describe_stacks(StackName=stack("waf"))["Stacks"]
    assert (waf["StackStatus"], physical_ids(sandbox, "waf")["LogGroup"]) == ("UPDATE_COMPLETE", f"aws-waf-logs-{OTHER_PREFIX}")
    # A log group of that name not made by this stack is named as such.
    sandbox.client("logs").delete_log_group(logGroupName=WAF_LOGS)
    sandbox.client("logs").create_log_group(logGroupName=WAF_LOGS)
    code, out, err = run("deploy", "--stack", "waf", "--yes", "--allow-replace")
    assert code == 1 and f"LogGroup needs {WAF_LOGS}, which is taken (not made by this stack)\n    free it: " in err, out + err
    sandbox.client("logs").delete_log_group(logGroupName=WAF_LOGS)  # freed, as the command says
    code, out, err = run("deploy", "--stack", "waf", "--yes", "--allow-replace")
    assert code == 0, out + err
    assert physical_ids(sandbox, "waf")["LogGroup"] == WAF_LOGS


def test_a_key_whose_description_an_update_changed_is_purged_as_the_layers(sandbox, run, tmp_path):
    # The emulator kept a key's description through a NamePrefix update: purge, which reads the key's own description,
    # left the layer's key as "made with other values" (AWS updates it in place).
    if not SANDBOX.deploys("waf"):
        pytest.skip(f"{PARAMS_FILE} does not enable waf, whose log group's key this renames")
    deployed(sandbox, run, "cert-dns", "alb", "waf")
    renamed = output_with_parameter(tmp_path, "waf", "NamePrefix", OTHER_PREFIX)
    code, out, err = run("deploy", "--stack", "waf", *renamed, "--allow-replace", "--yes")
    assert code == 0, out + err
    key_id = physical_ids(sandbox, "waf")["LogKey"]
    described = json.loads((tmp_path / "output" / "waf.json").read_text())["Resources"]["LogKey"]["Properties"]["Description"]
    assert key_state(sandbox, key_id)["Description"] == described["Fn::Sub"].replace("${NamePrefix}", OTHER_PREFIX)
    sandbox.client("logs").delete_log_group(logGroupName=WAF_LOGS)  # the old one the update kept, as it advised
    for argv in (("destroy",), ("purge",)):
        code, out, err = run(*argv, "--stack", "waf", *renamed, "--yes")
        assert code == 0, out + err
    assert key_state(sandbox, key_id)["KeyState"] == "PendingDeletion", out


def test_a_log_group_a_later_stack_kept_when_an_update_replaced_it_is_named_as_that_stacks(sandbox, run, tmp_path):
    # The first waf stack retained WAF_LOGS (purged); the second made it again, then a NamePrefix update replaced it and
    # kept it; destroyed, the second lists only the new one. Its aws: tags name the second stack, which the first's list
    # names: said "not made by that stack", as if by hand, and purge passed it over without a word.
    if not SANDBOX.deploys("waf"):
        pytest.skip(f"{PARAMS_FILE} does not enable waf, whose log group this replaces")
    deployed(sandbox, run, "cert-dns", "alb", "waf")
    for argv in (("destroy", "--stack", "waf"), ("purge", "--stack", "waf"), ("deploy", "--stack", "waf")):
        code, out, err = run(*argv, "--yes")
        assert code == 0, out + err
    renamed = output_with_parameter(tmp_path, "waf", "NamePrefix", OTHER_PREFIX)
    for argv in (("deploy", "--allow-replace"), ("destroy",), ("purge",)):
        code, out, err = run(*argv, "--stack", "waf", *renamed, "--yes")
        assert code == 0, out + err
    assert f"aws-waf-logs-{OTHER_PREFIX}" not in log_group_names(sandbox)  # what the second stack lists: purged
    summaries = sandbox.client("cloudformation").list_stacks()["StackSummaries"]
    second = max((s for s in summaries if s["StackName"] == stack("waf")), key=lambda s: s["CreationTime"])["StackId"]
    line = next(line for line in out.splitlines() if f") {WAF_LOGS}: " in line)
    assert line.startswith(
        f"  LogGroup (AWS::Logs::LogGroup) {WAF_LOGS}: left alone: made by a later {stack('waf')} ({second}), which kept it "
    ), out
    assert line.endswith(
        f"delete it yourself if it is not needed: {sandbox_aws_cli(sandbox)} logs delete-log-group --log-group-name {WAF_LOGS}"
    )
    assert WAF_LOGS in log_group_names(sandbox)  # left: no stack lists it as retained
    code, out, err = run("deploy", "--stack", "waf", "--yes")
    assert code == 1, out + err
    assert (
        f"{stack('waf')}: LogGroup (AWS::Logs::LogGroup) {WAF_LOGS} (made by a later stack of that name, which kept it when an update "
        "replaced it)" in err
    ), err
    assert f"make purge leaves {WAF_LOGS}, as no stack lists it as retained: delete it yourself if it is not needed: " in err, err


def test_a_run_of_every_layer_that_would_take_a_kept_log_groups_name_is_refused_before_its_first_layer_changes(sandbox, run, tmp_path):
    """NamePrefix changed and changed back: the first rename kept the old log groups (UpdateReplacePolicy
    Retain). Refused at the layer that makes one, the run would have replaced the load balancer
    already, with the layers after it still on the old one: every taken name is named first."""
    deployed(sandbox, run)
    renaming = {
        p.stem: {"NamePrefix": OTHER_PREFIX}
        for p in (ROOT / "output" / ENV).glob("*.json")
        if "NamePrefix" in json.loads(p.read_text())["Parameters"]
    }
    code, out, err = run("deploy", *output_with_parameters(tmp_path / "renamed", renaming), "--yes", "--allow-replace")
    assert code == 0, out + err
    before = {layer: physical_ids(sandbox, layer) for layer in SANDBOX.layers}
    kept = sorted(log_group_names(sandbox) & {SERVICE_LOGS, WAF_LOGS})
    assert kept, log_group_names(sandbox)  # what the rename kept, under the names params/sandbox.yaml gives

    # make diff said the layers differ and "make deploy ... ALLOW_REPLACE=1 applies it": it names the refusal ahead
    code, out, err = run("diff")
    assert code == 1 and all(
        f"LogGroup needs {name}, which is taken (kept by an earlier replacement in this stack;" in out for name in kept
    )
    # (mutation audit) make diff's note lays the names out as make deploy's refusal does: one a line, under the note,
    # each followed by the command that frees it on a line of its own, then what to do with them
    assert "  note: make deploy refuses this: it makes a log group under a name another one holds:" in out.splitlines(), out
    lines = out.splitlines()
    for name in kept:
        (at,) = [n for n, line in enumerate(lines) if line.startswith("    ") and f"LogGroup needs {name}, which is taken" in line]
        assert "delete-log-group" not in lines[at], lines[at]
        freeing = lines[at + 1]
        assert freeing.startswith("      free it: ") and freeing.endswith(f"logs delete-log-group --log-group-name {name}"), freeing
    assert f"  {guards.FREE_THE_NAMES}" in out.splitlines(), out
    (refused,) = [line for line in out.splitlines() if line.startswith("a deploy would be refused: ")]
    takers = {SERVICE_LOGS: "service", WAF_LOGS: "waf"}
    assert all(takers[name] in refused.partition(" (")[0] for name in kept), out
    # and once they can be deployed, the command it gives carries what their replacements need
    assert all("ALLOW_REPLACE=1" in line for line in out.splitlines() if line.startswith("differs from what ")), out
    waiting = " and ".join(sorted({takers[name] for name in kept}, key=LAYERS.index))  # "waf and service": two, in words
    assert f"once {waiting} can be deployed (as said above)" in next(
        line for line in out.splitlines() if line.startswith("differs from what ")
    ), out

    code, out, err = run("deploy", "--yes", "--allow-replace")
    assert code == 1, out + err
    assert "error: refused before changing anything: a layer's update would make a log group under a name another one holds" in err
    assert all(f"LogGroup needs {name}, which is taken (kept by an earlier replacement in this stack;" in err for name in kept), err
    # each name on a line of its own, the command that frees it on the next: run together, one line held six commands;
    # at the end of the line with the export's, the deletion was the easy one to paste first (a new user's walkthrough)
    lines = err.splitlines()
    for name in kept:
        (at,) = [n for n, line in enumerate(lines) if line.startswith(f"  {takers[name]}: LogGroup needs {name}, which is taken")]
        assert "delete-log-group" not in lines[at], lines[at]
        freeing = lines[at + 1]
        assert freeing.startswith("    free it: ") and freeing.endswith(f"logs delete-log-group --log-group-name {name}"), freeing
    assert guards.FREE_THE_NAMES in err.splitlines(), err  # (mutation audit) what to do with the names, on a line of its own
    assert {layer: physical_ids(sandbox, layer) for layer in SANDBOX.layers} == before  # not one layer changed
    assert "UPDATE_COMPLETE" not in out


def test_an_update_that_changes_what_deployed_layers_read_names_them_and_how_to_deploy_them(sandbox, run, tmp_path):
    """make deploy STACK=alb with a new NamePrefix replaces the load balancer and target groups: the
    layers that read their ARNs keep the old ones until deployed, which that run does not do."""
    deployed(sandbox, run)
    code, out, err = run(
        "deploy", "--stack", "alb", *output_with_parameter(tmp_path, "alb", "NamePrefix", OTHER_PREFIX), "--yes", "--allow-replace"
    )
    assert code == 0, out + err
    lines = out.splitlines()
    (note,) = [line for line in lines if line.startswith("note: this update changed values that deployed layers read")]
    readers = sorted(layer for layer in templates.downstream_of("alb") if SANDBOX.deploys(layer))
    assert readers and all(f"{layer} (reads " in note for layer in readers), note
    # Said before the update runs too, from the change set's replacements, with how to avoid the gap.
    (ahead,) = [line for line in lines if line.startswith("warning: this update replaces ")]
    assert lines.index(ahead) < next(i for i, line in enumerate(lines) if "UPDATE_IN_PROGRESS" in line), out
    assert "LoadBalancer" in ahead and all(f"{layer} (reads " in ahead for layer in readers), ahead
    assert ahead.endswith(f"or every layer in one run (make deploy ENV={ENV} ALLOW_REPLACE=1)")
    assert ("LoadBalancerArn" in note) == SANDBOX.deploys("waf")  # the one layer that reads it, where deployed
    assert note.endswith(
        f"make deploy ENV={ENV} deploys them (the layers with nothing to change say no changes; {advice.NEEDS_ALLOW_REPLACE})"
    )
    # which is so here: the new NamePrefix replaces the service's log group, refused without it
    code, out, err = run(
        "deploy", *output_with_parameters(tmp_path / "renamed", {layer: {"NamePrefix": OTHER_PREFIX} for layer in LAYERS}), "--yes"
    )
    assert code == 1 and "rerun with ALLOW_REPLACE=1" in err, out + err
    # A run of every layer deploys them after alb: nothing to say then.
    code, out, err = run("deploy", "--yes", "--allow-replace")
    assert code == 0, out + err
    assert "note: this update changed values" not in out and "warning: this update replaces" not in out


def test_a_one_layer_update_of_a_value_other_deployed_layers_take_names_them(sandbox, run, tmp_path):
    """MaxCapacity is a parameter of the scaling and alarms layers: make deploy STACK=scaling after
    changing it leaves the alarms stack on the old value, which the run says."""
    takers = [layer for layer in LAYERS if "MaxCapacity" in json.loads((ROOT / "output" / ENV / f"{layer}.json").read_text())["Parameters"]]
    assert "scaling" in takers and len(takers) > 1, takers
    others = sorted(set(takers) - {"scaling"})
    deployed(sandbox, run)
    changed = output_with_parameters(
        tmp_path / "output", {layer: {"MaxCapacity": str(int(SANDBOX.values["MaxCapacity"]) + 1)} for layer in takers}
    )
    # and a tag of the scaling stack: with a parameter change beside it, it went on the stack unshown
    scaling = tmp_path / "output" / ENV / "scaling.json"
    document = json.loads(scaling.read_text())
    added = f"{templates.PROJECT}-by-hand"  # a key no params file of the project gives
    document["Tags"][added] = "platform"
    scaling.write_text(json.dumps(document))
    code, out, err = run("deploy", "--stack", "scaling", *changed, "--yes")
    assert code == 0, out + err
    assert f"  tag {added}: (none) -> platform" in out.splitlines(), out
    (note,) = [line for line in out.splitlines() if line.startswith("note: this update changed values other layers take too")]
    assert note.endswith(
        f": {'; '.join(f'{layer} (MaxCapacity)' for layer in others)}. make deploy ENV={ENV} deploys them "
        "(the layers with nothing to change say no changes; with ALLOW_REPLACE=1 where their own change sets replace stateful "
        "resources, as a new NamePrefix does)"
    ), note
    for layer in others:
        code, out, err = run("deploy", "--stack", layer, *changed, "--yes")
        assert code == 0 and "note: this update changed values other layers take too" not in out, out + err
    code, out, err = run("deploy", *changed, "--yes")  # every layer now has the new value: nothing to say
    assert code == 0 and "no changes" in out and "note: this update changed values" not in out, out + err


def test_replacing_a_resource_under_the_name_it_has_is_refused_even_with_allow_replace(sandbox, run, tmp_path):
    """A new container port replaces the target groups (Port is create-only), whose Name stays: AWS
    refuses that update (aws-properties-name.html), which the sandbox would have run."""
    deployed(sandbox, run, "cert-dns", "alb")
    port = str(int(SANDBOX.values["ContainerPort"]) + 1)
    before = physical_ids(sandbox, "alb")
    code, out, err = run(
        "deploy", "--stack", "alb", *output_with_parameter(tmp_path, "alb", "ContainerPort", port), "--yes", "--allow-replace"
    )
    assert code == 1, out + err
    assert "error: refused: CloudFormation cannot replace a resource under the name it has" in err, err
    assert "TargetGroup (AWS::ElasticLoadBalancingV2::TargetGroup, its Name unchanged)" in err
    # The way out it names runs: every layer reading alb's outputs is destroyed before alb.
    order = re.search(r"make destroy ENV=sandbox STACK=<layer> for ([a-z, -]+), in that order", err).group(1).split(", ")
    assert order[-1] == "alb" and templates.downstream_of("alb") <= set(order)
    assert all(order.index(downstream) < order.index(layer) for layer in order for downstream in templates.downstream_of(layer))
    assert physical_ids(sandbox, "alb") == before  # nothing replaced
    summaries = sandbox.client("cloudformation").list_change_sets(StackName=stack("alb"))["Summaries"]
    assert [s for s in summaries if s["ExecutionStatus"] == "AVAILABLE"] == []  # the change set is deleted


def test_an_update_that_fails_rolls_back_to_the_previous_template_and_values(sandbox, run, tmp_path):
    """As CloudFormation does: the execution is accepted, the failed resource named, every resource put
    back; the stack then holds its previous values, so diff is clean and a deploy has nothing to do."""
    deployed(sandbox, run, "cert-dns", "alb")
    backend = SANDBOX.values["BackendSecurityGroupId"]
    missing = "sg-0123456789abcdef0"  # no such group in the sandbox
    code, out, err = run("deploy", "--stack", "alb", *output_with_parameter(tmp_path, "alb", "BackendSecurityGroupId", missing), "--yes")
    assert code == 1, out + err
    assert f"{stack('alb')} ended UPDATE_ROLLBACK_COMPLETE" in err, out + err
    assert "failed: BackendIngressFromAlb (AWS::EC2::SecurityGroupIngress)" in out and missing in out, out
    (alb,) = sandbox.client("cloudformation").describe_stacks(StackName=stack("alb"))["Stacks"]
    values = {p["ParameterKey"]: p["ParameterValue"] for p in alb["Parameters"]}
    assert (alb["StackStatus"], values["BackendSecurityGroupId"]) == ("UPDATE_ROLLBACK_COMPLETE", backend)
    alb_group = physical_ids(sandbox, "alb")["AlbSecurityGroup"]
    (group,) = sandbox.client("ec2").describe_security_groups(GroupIds=[backend])["SecurityGroups"]
    assert any(pair["GroupId"] == alb_group for rule in group["IpPermissions"] for pair in rule["UserIdGroupPairs"])
    code, out, err = run("diff", "--stack", "alb")
    assert code == 0, out + err
    code, out, err = run("deploy", "--stack", "alb", "--yes")
    assert code == 0 and f"{stack('alb')}: no changes" in out, out + err


def output_with_parameter(tmp_path, layer, name, value):
    """A copy of output/ whose sandbox configuration of the layer sets one parameter; the deploy options to use it."""
    return output_with_parameters(tmp_path / "output", {layer: {name: value}})


def output_with_parameters(output, values: dict):
    """A copy of output/ in `output` whose sandbox configuration sets values (layer -> parameter ->
    value) in every layer that declares the parameter; the deploy options to use it."""
    shutil.copytree(ROOT / "output", output)
    for layer, given in values.items():
        config = output / ENV / f"{layer}.json"
        document = json.loads(config.read_text())
        declared = json.loads((output / f"{layer}.json").read_text())["Parameters"]
        document["Parameters"] |= {name: value for name, value in given.items() if name in declared}
        config.write_text(json.dumps(document))
    return ("--output-dir", str(output), "--params-dir", str(ROOT / "params"))


def test_a_stale_change_set_a_guard_refuses_says_to_make_one_with_todays_values(sandbox, run, tmp_path):
    # An alb change set made while the service ran ROLLING removes the listener rules; the service went back to CANARY
    # since: its refusal said to deploy the service "first, so that ECS stops using them", which, run as printed, changed
    # nothing (the service is CANARY by today's values), and the change set stayed refused.
    canary = {"DeploymentStrategy": "CANARY", "TestListenerCidr": "203.0.113.0/24"}
    shifting = output_with_parameters(tmp_path / "canary", {"alb": canary, "service": canary})
    rolling = output_with_parameters(
        tmp_path / "rolling", {"alb": {"DeploymentStrategy": "ROLLING"}, "service": {"DeploymentStrategy": "ROLLING"}}
    )
    seeded(sandbox)
    for argv in (("deploy", *shifting), ("deploy", "--stack", "service", *rolling)):
        code, out, err = run(*argv, "--yes")
        assert code == 0, out + err
    code, out, err = run("changeset", "--stack", "alb", *rolling)
    assert code == 0, out + err
    name = next(word for word in out.split() if word.startswith(f"{stack('alb')}-"))
    code, out, err = run("deploy", "--stack", "service", *shifting, "--yes")
    assert code == 0, out + err
    code, out, err = run("execute", "--stack", "alb", "--changeset", name, *shifting, "--yes")
    assert code == 1 and "error: refused: the change set removes the listener rules" in err, out + err
    assert err.endswith(
        f"\nchange set {name} was made with other values than today's (above): make changeset STACK=alb ENV={ENV} makes one with them\n"
    ), err


def test_a_first_create_made_with_a_tag_a_guard_refuses_is_not_called_stale(sandbox, run):
    # TAG= is the release's own choice, not a value that changed since: "made with other values than today's ... makes one
    # with them" sent the operator to make the same change set again, refused the same way
    deployed(sandbox, run, "cert-dns", "alb", "release-alarms")
    code, out, err = run("changeset", "--stack", "service", "--image-tag", "v2")
    assert code == 0, out + err
    name = next(word for word in out.split() if word.startswith(f"{stack('service')}-"))
    sandbox.client("logs").create_log_group(logGroupName=SERVICE_LOGS)  # by hand: the create would fail on it
    code, out, err = run("execute", "--stack", "service", "--changeset", name, "--yes")
    assert code == 1 and SERVICE_LOGS in err and "was made with other values than today's" not in err, out + err


def test_back_to_rolling_the_alb_layer_waits_until_the_service_no_longer_uses_its_listener_rules(sandbox, run, tmp_path):
    # Under a traffic-shifting strategy the service names the alb layer's listener rules; back to
    # ROLLING, a plain make deploy would remove them (alb comes first) while the service still does.
    def strategy(name, value, service=None, **alb):
        service = {"DeploymentStrategy": value, **(service or {})}
        return output_with_parameters(tmp_path / name, {"alb": {"DeploymentStrategy": value, **alb}, "service": service})

    shifting = strategy("shifting", "BLUE_GREEN", {"TestPauseMinutes": "5"}, TestListenerCidr="203.0.113.0/24")
    rolling = strategy("rolling", "ROLLING")
    seeded(sandbox)
    code, out, err = run("deploy", *shifting, "--yes")
    assert code == 0, out + err
    # a release that would wait for tests on AWS: the emulator runs none, so no make verify or make continue to advise
    assert f"note: on AWS this release would wait up to 5 minutes for make verify ENV={ENV} TEST_LISTENER=1 and make continue" in out, out
    assert "TEST_LISTENER=1     then" not in out, out
    rules = {name: arn for name, arn in physical_ids(sandbox, "alb").items() if name.endswith("ListenerRule")}
    alb_outputs = sandbox.client("cloudformation").describe_stacks(StackName=stack("alb"))["Stacks"][0]["Outputs"]
    rule_outputs = {output["OutputKey"]: output["OutputValue"] for output in alb_outputs}
    assert rules, "a traffic-shifting alb layer has listener rules"

    # make diff said "make deploy applies it" of every layer, and the deploy refused at alb: it says so, and the order
    code, out, err = run("diff", *rolling)
    assert code == 1, out + err
    assert (
        f"  note: make deploy refuses this: it removes the listener rules {', '.join(sorted(rules))}, which {stack('service')} still "
        f"uses (it is deployed with DeploymentStrategy BLUE_GREEN). Deploy the service layer first (make deploy STACK=service ENV={ENV})"
    ) in out, out
    assert "once alb can be deployed (as said above)" in out.splitlines()[-2] and out.splitlines()[-1].startswith(
        "a deploy would be refused: alb"
    ), out
    code, out, err = run("diff", "--image-tag", "v9", *rolling)  # a release with it: the commands of the way there carry TAG=
    assert f"(make deploy STACK=service ENV={ENV} TAG=v9), so that ECS stops using them, then make deploy ENV={ENV} TAG=v9" in out, out
    code, out, err = run("deploy", *rolling, "--yes")
    assert code == 1, out + err
    assert f"refused: the change set removes the listener rules {', '.join(sorted(rules))}, which {stack('service')} still uses" in err
    assert f"make deploy STACK=service ENV={ENV}" in err
    assert physical_ids(sandbox, "alb").items() >= rules.items(), "nothing changed"

    # a release left production traffic on the alternate target group: the service's switch to ROLLING is refused,
    # which make diff STACK=service said "applies it"
    def weights(primary, alternate):
        groups = [(rule_outputs["TargetGroupArn"], primary), (rule_outputs["AlternateTargetGroupArn"], alternate)]
        forward = {"TargetGroups": [{"TargetGroupArn": arn, "Weight": weight} for arn, weight in groups]}
        sandbox.client("elbv2").modify_rule(
            RuleArn=rule_outputs["ProductionListenerRuleArn"], Actions=[{"Type": "forward", "ForwardConfig": forward}]
        )

    weights(0, 100)
    code, out, err = run("diff", "--stack", "service", *rolling)
    assert (
        code == 1
        and (
            "  note: make deploy refuses this: it switches the service to ROLLING while production traffic is on the alternate target group"
        )
        in out
    ), out + err
    assert out.splitlines()[-1] == "a deploy would be refused: service (see the note above)", out
    assert f"if no task serves from the alternate one, make deploy STACK=service ENV={ENV} ALLOW_TRAFFIC_RESET=1" in out, out
    code, out, err = run("diff", "--stack", "service", "--image-tag", "v9", *rolling)  # run as printed, it releases v9 too
    assert f"make deploy STACK=service ENV={ENV} TAG=v9 ALLOW_TRAFFIC_RESET=1" in out, out
    code, out, err = run("deploy", "--stack", "service", *rolling, "--yes")
    assert code == 1 and "switches the service to ROLLING while production traffic is on the alternate target group" in err, out + err
    weights(100, 0)  # a release moved it back

    code, out, err = run("deploy", "--stack", "service", *rolling, "--yes")  # the order the refusal gives
    assert code == 0, out + err
    # the service, ROLLING now, still reads the rules' ARNs, which alb's deploy takes away: make diff said it was the
    # same as deployed, and the deploy of every layer updated it. It shows them going to what the service reads once
    # they are gone (the inputs' default), not compared with alb's outputs now (which showed them going to the ARNs
    # where the service was deployed without them, and the deploy then changed nothing)
    code, out, err = run("diff", *rolling)
    lines = out.splitlines()
    for name in ("ProductionListenerRuleArn", "TestListenerRuleArn"):
        assert f"-parameter {name}={rule_outputs[name]}" in lines and f"+parameter {name}=" in lines, out
    assert not any(line.startswith(f"  note: {stack('service')} reads ") for line in lines), out
    assert "service" in next(line for line in out.splitlines() if line.startswith("differs from what")).partition(" (")[0], out
    code, out, err = run("deploy", *rolling, "--yes")
    assert code == 0 and f"{stack('service')}: no changes" not in out, out + err
    assert not any(name.endswith("ListenerRule") for name in physical_ids(sandbox, "alb"))


def test_a_diff_with_tag_keeps_it_in_the_command_that_waits_for_the_service(sandbox, run, tmp_path):
    # The service's first create failed: the command for once it can be deployed left TAG= out, and run as printed
    # released the image params name, not the one diffed.
    deployed(sandbox, run, *LAYERS[: LAYERS.index("service")])
    failing = output_with_parameters(tmp_path / "failing", {"service": {"BackendSecurityGroupId": "sg-0123456789abcdef0"}})
    code, out, err = run("deploy", "--stack", "service", *failing, "--yes")
    assert code == 1, out + err
    code, out, err = run("diff", "--image-tag", "v9")
    (summary,) = [line for line in out.splitlines() if line.startswith("differs from what")]
    assert code == 1 and f"(make deploy ENV={ENV} TAG=v9 applies it, once service can be deployed (as said above);" in summary, out + err
    # and so does the way past the failed create that make diff and the deploy give
    assert f"make deploy STACK=service ENV={ENV} RECREATE=1 TAG=v9, which deletes it" in out, out
    code, out, err = run("deploy", "--image-tag", "v9", "--yes")
    assert code == 1 and f"make deploy STACK=service ENV={ENV} RECREATE=1 TAG=v9, which deletes it" in err, out + err


def test_a_diff_of_every_layer_whose_deploy_stops_at_someone_elses_stack_says_what_it_applies_first(sandbox, run):
    last = LAYERS[-1]
    deployed(sandbox, run)
    assert run("destroy", "--stack", last, "--yes")[0] == 0
    cf = sandbox.client("cloudformation")
    body = {"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}}
    cf.create_stack(StackName=stack(last), TemplateBody=json.dumps(body))  # none of the tool's tags: someone else's
    cf.update_termination_protection(StackName=stack("cert-dns"), EnableTerminationProtection=False)  # a deploy turns it on
    code, out, err = run("diff")
    assert code == 1 and out.splitlines()[-1] == (
        f"differs from what {ENV} runs: cert-dns (make deploy ENV={ENV} applies it, once {last} can be deployed (as said above); "
        "run before then, it applies at most the layers before the first one refused above, and stops)"
    ), out + err
    code, out, err = run("deploy", "--yes")
    assert code == 1 and cf.describe_stacks(StackName=stack("cert-dns"))["Stacks"][0]["EnableTerminationProtection"], out + err
    assert f"error: {stack(last)} exists but was not made by this tool" in err and f"the run stopped at {last}" in out, out + err


def test_diff_of_a_new_name_prefix_names_the_layers_whose_inputs_the_renamed_ones_change(sandbox, run, tmp_path):
    # make diff said "scaling: same as deployed", and the deploy replaced its scalable target: the service's new
    # name, from the new NamePrefix (its ServiceName is create-only), is what scaling reads. alarms reads it too, but
    # is not deployed: made with what it reads then, no note.
    deployed(sandbox, run)
    assert run("destroy", "--stack", "alarms", "--yes")[0] == 0
    renaming = {
        p.stem: {"NamePrefix": OTHER_PREFIX}
        for p in (ROOT / "output" / ENV).glob("*.json")
        if "NamePrefix" in json.loads(p.read_text())["Parameters"]
    }
    options = output_with_parameters(tmp_path / "renamed", renaming)
    code, out, err = run("diff", *options)  # not "same as deployed" above the note: a reader took it for a contradiction
    lines = out.splitlines()
    at = lines.index(f"{stack('scaling')}: template and values as deployed, but what it reads changes (note below)")
    assert lines[at + 1].startswith(f"  note: {stack('scaling')} reads ServiceName from service, which service's deploy"), out
    # and a stack policy set on it by hand, which a deploy sets back only with a change to the stack: it has one now
    by_hand = {"Statement": [{"Effect": "Allow", "Action": "Update:*", "Principal": "*", "Resource": "*"}]}
    by_hand["Statement"].append({"Effect": "Deny", "Action": "Update:Delete", "Principal": "*", "Resource": "LogicalResourceId/None"})
    sandbox.client("cloudformation").set_stack_policy(StackName=stack("scaling"), StackPolicyBody=json.dumps(by_hand))
    code, out, err = run("diff", *options)
    assert code == 1 and "only the stack policy differs" not in out, out + err
    assert (
        f"  note: {stack('scaling')} reads ServiceName from service, which service's deploy before it changes: a deploy of these " in out
    ), out
    assert f"  note: {stack('alarms')} reads " not in out and f"{stack('alarms')}: not deployed; deploying creates everything" in out, out
    (summary,) = [line for line in out.splitlines() if line.startswith("differs from what")]
    assert "scaling" in summary.partition(" (")[0].split(": ")[1].split(", "), summary
    code, out, err = run("deploy", *options, "--yes", "--allow-replace")
    assert code == 0 and "scaling (updated" in out, out + err  # the run's summary


def test_diff_names_a_reader_of_outputs_that_join_the_ids_of_resources_the_update_replaces(sandbox, run, tmp_path):
    # release-alarms gives the service its alarms' names and ARNs joined in one output each (Fn::Join): a new name
    # replaces them (AlarmName is create-only), and make diff said the service "same as deployed"; only an output
    # that was a resource's id or attribute alone was looked at.
    deployed(sandbox, run)
    wiring = {output for upstream, output in templates.wired_into("service").values() if upstream == "release-alarms"}
    joined = {
        name
        for name, output in json.loads((ROOT / "output" / "release-alarms.json").read_text())["Outputs"].items()
        if "Fn::Join" in output["Value"]
    }
    assert wiring & joined, "the service reads no joined output of release-alarms: this test looks at nothing"
    options = output_with_parameters(tmp_path / "renamed", {"release-alarms": {"NamePrefix": OTHER_PREFIX}})
    code, out, err = run("diff", *options)
    assert code == 1, out + err
    lines = out.splitlines()
    at = lines.index(f"{stack('service')}: template and values as deployed, but what it reads changes (note below)")
    assert lines[at + 1].startswith(f"  note: {stack('service')} reads {', '.join(sorted(wiring & joined))} from release-alarms"), out
    code, out, err = run("deploy", *options, "--yes", "--allow-replace")
    assert code == 0 and "service (updated" in out, out + err  # what the diff said: the service's deploy changes it


def test_diff_of_the_service_alone_to_a_traffic_shifting_strategy_says_the_change_set_cloudformation_refuses(sandbox, run, tmp_path):
    # make diff STACK=service said "applies it", and CloudFormation refused the change set by the service template's
    # rule: the alb layer, still ROLLING, gives no listener rules. A diff of every layer deploys alb first: no refusal.
    shifting = {"DeploymentStrategy": "CANARY", "TestListenerCidr": "203.0.113.0/24"}
    changed = output_with_parameters(tmp_path / "canary", {"alb": shifting, "service": shifting})
    # deployed ROLLING, whatever params/sandbox.yaml says (a sandbox already shifting traffic has nothing to switch)
    rolling = {"DeploymentStrategy": "ROLLING", "TestPauseMinutes": "0"}
    seeded(sandbox)
    code, out, err = run("deploy", "--yes", *output_with_parameters(tmp_path / "rolling", {"alb": rolling, "service": rolling}))
    assert code == 0, out + err
    code, out, err = run("diff", "--stack", "service", *changed)
    assert code == 1, out + err
    rule = json.loads((tmp_path / "canary" / "service.json").read_text())["Rules"]["ListenerRulesGiven"]
    said = rule["Assertions"][0]["AssertDescription"]
    # the diff's note ends with the rule's words: make diff changes nothing, so it says nothing of what changed (review RB)
    assert f"note: make deploy would be refused: CloudFormation would refuse {stack('service')}'s change set: {said}\n" in out, out
    assert out.splitlines()[-1].endswith("applies it, once what the note above names is fixed)"), out
    change_sets = sandbox.client("cloudformation").list_change_sets(StackName=stack("service"))["Summaries"]
    code, out, err = run("deploy", "--stack", "service", "--yes", *changed)
    # the deploy's own look, as make diff said it, before CreateChangeSet: which CloudFormation would answer with the
    # assertion alone ("see where things stand: make status" added to it)
    assert code == 1 and err.startswith(f"error: CloudFormation would refuse {stack('service')}'s change set: {said}; nothing changed\n"), (
        out + err
    )
    assert sandbox.client("cloudformation").list_change_sets(StackName=stack("service"))["Summaries"] == change_sets
    code, out, err = run("diff", *changed)
    assert code == 1 and "note: make deploy would be refused" not in out, out + err
    assert out.splitlines()[-1] == f"differs from what {ENV} runs: alb, service (make deploy ENV={ENV} applies it)", out


def test_destroy_is_refused_before_anything_while_the_load_balancer_has_deletion_protection(sandbox, run, tmp_path):
    seeded(sandbox)
    protected = output_with_parameter(tmp_path, "alb", "DeletionProtection", "true")
    for layer in ("cert-dns", "alb"):
        code, out, err = run("deploy", "--stack", layer, "--yes", *protected)
        assert code == 0, out + err
    code, out, err = run("destroy", "--yes")
    assert code == 1, out + err
    assert f"refusing to destroy {stack('alb')}: its load balancer has deletion protection on" in err
    assert f"first deploy DeletionProtection: false alone (in params/{ENV}.yaml, make templates && make deploy ENV={ENV} STACK=alb" in err
    assert "nothing destroyed" in err, err
    cf = sandbox.client("cloudformation")
    assert [cf.describe_stacks(StackName=stack(layer))["Stacks"][0]["StackStatus"] for layer in ("cert-dns", "alb")] == [
        "CREATE_COMPLETE",
        "CREATE_COMPLETE",
    ]


def test_destroy_is_refused_while_deletion_protection_turned_on_by_hand_is_on(sandbox, run):
    # The DeletionProtection parameter false, protection turned on in the console: destroy read the parameter alone,
    # deleted every other layer, and (on AWS) ended DELETE_FAILED at alb.
    deployed(sandbox, run, "cert-dns", "alb")
    elbv2 = sandbox.client("elbv2")
    arn = sandbox.client("cloudformation").describe_stacks(StackName=stack("alb"))["Stacks"][0]["Outputs"]
    (arn,) = [output["OutputValue"] for output in arn if output["OutputKey"] == "LoadBalancerArn"]
    elbv2.modify_load_balancer_attributes(LoadBalancerArn=arn, Attributes=[{"Key": "deletion_protection.enabled", "Value": "true"}])
    code, out, err = run("destroy", "--yes")
    assert code == 1 and f"refusing to destroy {stack('alb')}: its load balancer has deletion protection on, which" in err, out + err
    assert f"elbv2 modify-load-balancer-attributes --load-balancer-arn {arn} --attributes" in err and "nothing destroyed" in err, err
    assert sandbox.client("cloudformation").describe_stacks(StackName=stack("cert-dns"))["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"
    elbv2.modify_load_balancer_attributes(LoadBalancerArn=arn, Attributes=[{"Key": "deletion_protection.enabled", "Value": "false"}])
    code, out, err = run("destroy", "--yes")  # turned off as the refusal says: it goes
    assert code == 0, out + err


def test_events_and_logs_after_a_destroy_pass_over_the_empty_stack_of_a_create_declined_since(sandbox, run):
    # A destroy, then a deploy of the layer declined at its question (its empty stack deleted): make events showed
    # that stack's three events, not what the destroy deleted and kept, and make logs found no kept log group.
    deployed(sandbox, run)
    for layer in ("alarms", "scaling", "service"):
        code, out, err = run("destroy", "--stack", layer, "--yes")
        assert code == 0, out + err
    logs = sandbox.client("logs")
    for group in logs.describe_log_groups(logGroupNamePrefix=SERVICE_LOGS)["logGroups"]:  # its create is not refused for it
        logs.delete_log_group(logGroupName=group["logGroupName"])
    cf = sandbox.client("cloudformation")

    def deleted():
        return [s for s in cf.list_stacks(StackStatusFilter=["DELETE_COMPLETE"])["StackSummaries"] if s["StackName"] == stack("service")]

    before = len(deleted())
    code, out, err = run("deploy", "--stack", "service")  # no YES=1, no terminal: not confirmed, its change set and stack deleted
    assert code == 1 and len(deleted()) == before + 1, out + err
    code, out, err = run("events", "--stack", "service")
    assert code == 0 and out.startswith(f"{stack('service')}: not deployed; the one deleted last, at "), out + err
    assert any("DELETE_SKIPPED" in line and "LogGroup" in line for line in out.splitlines()), out  # the destroy's
    logs.create_log_group(logGroupName=SERVICE_LOGS)  # one by hand
    code, out, err = run("logs")
    assert code == 1 and err == (
        f"error: {stack('service')} is not deployed, and {SERVICE_LOGS}, the log group retained by the last of its deleted stacks to keep one, was replaced by "
        f"one it did not make, whose logs are not read; make diff ENV={ENV} says what a new deploy needs first\n"
    ), out + err


def test_a_service_create_in_a_deleted_cluster_is_refused_before_anything(sandbox, run):
    # The emulator made the service in a deleted (INACTIVE) cluster, which ECS refuses on AWS minutes into the create.
    deployed(sandbox, run, "cert-dns", "alb", "release-alarms")
    cluster = load_layer(ENV, "service", ROOT / "output").parameters["ClusterName"]
    code, out, err = run("changeset", "--stack", "service")  # made while the cluster is there: make execute looks again
    assert code == 0, out + err
    name = re.search(r"CHANGESET=(\S+)", out).group(1)
    sandbox.client("ecs").delete_cluster(cluster=cluster)
    code, out, err = run("execute", "--stack", "service", "--changeset", name, "--yes")
    region = sandbox.client("ecs").meta.region_name
    assert code == 1 and err.startswith(
        f"error: change set {name}: ClusterName: cluster {cluster} is INACTIVE in the stacks' account and region ({region}), "
    ), out + err
    assert err.endswith("; change set left for review\n"), err
    assert [s["ChangeSetName"] for s in sandbox.client("cloudformation").list_change_sets(StackName=stack("service"))["Summaries"]] == [
        name
    ]
    code, out, err = run("diff", "--stack", "service")
    assert code == 1 and f"note: make deploy would be refused: params/{ENV}.yaml: parameters.ClusterName: cluster {cluster} is " in out, out
    code, out, err = run("deploy", "--stack", "service", "--yes")
    assert code == 1 and err == (
        f"error: params/{ENV}.yaml: parameters.ClusterName: cluster {cluster} is INACTIVE in the stacks' account and region "
        f"({region}), and ECS creates no service in it: the sandbox's seed makes the "
        f"cluster params/{ENV}.yaml names as it starts: make sandbox-stop && make sandbox starts the sandbox afresh with it; nothing changed\n"
    ), out + err
    assert sandbox.client("cloudformation").describe_stacks(StackName=stack("service"))["Stacks"][0]["StackStatus"] == "REVIEW_IN_PROGRESS"
    # a run of every layer: refused at its first, which is not the one refused ("the run stopped at cert-dns" said it was)
    code, out, err = run("deploy", "--yes")
    assert code == 1 and f"error: params/{ENV}.yaml: parameters.ClusterName: cluster {cluster} is INACTIVE" in err, out + err
    assert f"  the run stopped at {LAYERS[0]}, before its change set: a look at the layers it deploys next refused it" in out, out


def test_a_create_refused_for_a_name_its_own_deleted_stack_retained_is_said_to_stop_there(sandbox, run):
    # "the run stopped at service, before its change set: a look at the layers it deploys next refused it": the layers
    # it looked at were service itself (an attacker review)
    deployed(sandbox, run)
    cf = sandbox.client("cloudformation")
    cf.update_termination_protection(StackName=stack("service"), EnableTerminationProtection=False)
    cf.delete_stack(StackName=stack("service"))  # by hand: its log group retained, under the name a create needs
    code, out, err = run("deploy", "--yes")
    assert code == 1 and err.startswith("error: refused before creating anything: what destroyed stacks retained"), out + err
    rest = LAYERS[LAYERS.index("service") + 1 :]
    assert out.splitlines()[-1] == "  the run stopped at service (the reason is below)" + (
        f"; not reached: {', '.join(rest)}" if rest else ""
    ), out


def test_a_new_service_stack_says_which_image_the_one_before_it_last_ran_before_it_is_made(sandbox, run):
    # The service stack deleted by hand and created again ran the params file's ImageTag in place of the release, unsaid;
    # then said once the create had run, where the question that ran it and make changeset's change set said nothing of
    # it (helper S1, a newcomer's walk of the README)
    deployed(sandbox, run)
    released = f"{SANDBOX.values['ImageTag']}-released"
    code, out, err = run("deploy", "--stack", "service", "--image-tag", released, "--yes")
    assert code == 0, out + err
    cf = sandbox.client("cloudformation")
    created = cf.describe_stacks(StackName=stack("service"))["Stacks"][0]["CreationTime"]
    cf.update_termination_protection(StackName=stack("service"), EnableTerminationProtection=False)
    cf.delete_stack(StackName=stack("service"))
    # A stack is told by its creation time to the second (history.stack_mark): on the sandbox, one created again within
    # the second of its deleted one's creation took that one's releases as its own
    while datetime.now(UTC).replace(microsecond=0) <= created.replace(microsecond=0):
        time.sleep(0.05)
    code, out, err = run("purge", "--stack", "service", "--yes")  # its log group's name blocks the create
    assert code == 0, out + err
    image = SANDBOX.values["ImageTag"]
    note = (
        f"note: this new service stack runs {image}; the one before it last ran {released} (make releases ENV={ENV}): "
        f"make deploy STACK=service TAG={released} ENV={ENV} runs that instead, if it is the one to run"
    )
    code, out, err = run("changeset", "--stack", "service")
    assert code == 0 and note in out, out + err
    name = next(word for word in out.split() if word.startswith(f"{stack('service')}-"))
    code, out, err = run("execute", "--stack", "service", "--changeset", name)  # no terminal, no YES=1: not run
    assert code == 1 and note in out, out + err
    code, out, err = run("deploy", "--stack", "service", "--yes")
    lines = out.splitlines()
    question = next(i for i, line in enumerate(lines) if f"on {stack('service')}? yes (YES=1)" in line)
    assert code == 0 and note in lines[:question], out + err
    assert out.count("the one before it last ran") == 1, out  # once: before the question, not again once made
    code, out, err = run("deploy", "--stack", "service", "--image-tag", released, "--yes")  # an update: no such note
    assert code == 0 and "the one before it last ran" not in out, out + err


def test_a_rollback_of_a_release_that_waits_for_tests_says_it_waits_too(sandbox, run, tmp_path):
    # make rollback under TestPauseMinutes said nothing of the wait, which on AWS, left alone, puts the bad image back
    shifting = {"DeploymentStrategy": "CANARY", "TestListenerCidr": "203.0.113.0/24", "TestPauseMinutes": "20"}
    changed = output_with_parameters(tmp_path / "paused", {"alb": shifting, "service": shifting})
    deployed(sandbox, run)
    for argv in (("deploy",), ("deploy", "--stack", "service", "--image-tag", "v2")):
        code, out, err = run(*argv, "--yes", *changed)
        assert code == 0, out + err
    code, out, err = run("rollback", "--yes", *changed)
    assert code == 0 and f"note: on AWS this rollback would wait up to 20 minutes for make verify ENV={ENV} TEST_LISTENER=1" in out, (
        out + err
    )


def test_an_alert_address_added_asks_only_the_new_one_to_confirm(sandbox, run, tmp_path):
    # The first address's subscription, kept as it was, was said made anew: its on-call address told to confirm again.
    # Two addresses params/sandbox.yaml does not give: each deploy below changes what the stack has.
    given = set(parameters(ENV, "release-alarms")["AlertEmails"].split(","))
    first, second = [
        address for address in (f"{name}@example.com" for name in ("ops", "oncall", "ops2", "oncall2")) if address not in given
    ][:2]
    one = output_with_parameters(tmp_path / "one", {"release-alarms": {"AlertEmails": first}})
    two = output_with_parameters(tmp_path / "two", {"release-alarms": {"AlertEmails": f"{first},{second}"}})
    deployed(sandbox, run, "cert-dns", "alb", "release-alarms")
    code, out, err = run("deploy", "--stack", "release-alarms", *one, "--yes")
    assert code == 0 and "e-mail subscriptions made anew (AlertEmailSubscription1):" in out, out + err
    code, out, err = run("deploy", "--stack", "release-alarms", *two, "--yes")
    assert code == 0 and "e-mail subscriptions made anew (AlertEmailSubscription2):" in out, out + err


def test_a_change_of_tags_alone_declined_says_the_run_stopped_at_the_first_layer(sandbox, run, tmp_path):
    # "the run stopped in cert-dns, after its stack operation: no changes", though no stack operation ran
    deployed(sandbox, run)
    params_dir = shutil.copytree(ROOT / "params", tmp_path / "params")
    data = yaml.safe_load((params_dir / f"{ENV}.yaml").read_text())
    data["tags"] = (data.get("tags") or {}) | {"Owner": "platform"}
    (params_dir / f"{ENV}.yaml").write_text(yaml.safe_dump(data))
    assert generate_main("--params-dir", params_dir, "--output-dir", tmp_path / "output", "--no-lint").returncode == 0
    code, out, err = run("deploy", "--params-dir", str(params_dir), "--output-dir", str(tmp_path / "output"))  # no YES=1
    assert code == 1 and f"  the run stopped at {LAYERS[0]} (the reason is below); not reached: " in out, out + err
    assert "after its stack operation" not in out, out


def without_layer(tmp_path, taken_out) -> tuple:
    """A copy of params/ whose sandbox environment no longer enables the optional layer, generated: the deploy options to use it."""
    params_dir = shutil.copytree(ROOT / "params", tmp_path / "params")
    data = yaml.safe_load((params_dir / f"{ENV}.yaml").read_text())
    data["enabled_layers"] = [name for name in data["enabled_layers"] if name != taken_out]
    (params_dir / f"{ENV}.yaml").write_text(yaml.safe_dump(data))
    assert generate_main("--params-dir", params_dir, "--output-dir", tmp_path / "output", "--no-lint").returncode == 0
    return ("--params-dir", str(params_dir), "--output-dir", str(tmp_path / "output"))


def test_diff_of_every_layer_names_a_deployed_layer_taken_out_of_enabled_layers(sandbox, run, tmp_path):
    # It still runs (a WAF still blocks), and no deploy changes it: diff said only "same as deployed" for the others.
    optional = [name for name in templates.OPTIONAL_LAYERS if name in LAYERS]
    if not optional:
        pytest.skip(f"{PARAMS_FILE} enables no optional layer to take out")
    deployed(sandbox, run)
    taken_out = optional[0]
    options = without_layer(tmp_path, taken_out)
    code, out, err = run("diff", *options)
    assert code == 0, out + err
    assert out.splitlines()[-1].startswith(f"note: {stack(taken_out)} is deployed and left as it is (not in enabled_layers of "), out
    # drift-checked by name, as it can be looked at and destroyed (it was refused: "not enabled"), and with every layer
    for argv in (("--stack", taken_out), ()):
        code, out, err = run("drift", *argv, *options)
        assert code == 0 and f"{stack(taken_out)}: " in out and "not enabled" not in err, out + err
        assert out.splitlines()[-1].startswith(f"note: {stack(taken_out)} (not in enabled_layers of "), out
        assert out.splitlines()[-1].endswith("; a deploy changes it only once it is in enabled_layers again"), out
    assert all(f"{stack(name)}: " in out for name in LAYERS), out
    # and a new NamePrefix replaces what it reads (the load balancer): it keeps the old values, as the deploy then warns
    params_file = tmp_path / "params" / f"{ENV}.yaml"
    data = yaml.safe_load(params_file.read_text())
    data["parameters"]["NamePrefix"] = OTHER_PREFIX
    params_file.write_text(yaml.safe_dump(data))
    assert generate_main("--params-dir", tmp_path / "params", "--output-dir", tmp_path / "output", "--no-lint").returncode == 0
    code, out, err = run("diff", *options)
    assert code == 1 and out.splitlines()[-2].startswith(f"note: {stack(taken_out)} is deployed and left as it is"), out + err
    assert re.fullmatch(r"  it reads \w+(, \w+)*, which the deploy changes, and keeps the old values", out.splitlines()[-1]), out
    code, out, err = run("deploy", *options, "--yes", "--allow-replace")
    assert code == 0 and f"note: {stack(taken_out)} reads " in out and "which this update changed, and keeps the old values" in out, out


def test_purge_frees_what_a_layer_taken_out_of_enabled_layers_retained(sandbox, run, tmp_path):
    # output/ has no configuration of a layer the environment does not enable, whose names purge then checked: it refused.
    optional = [name for name in templates.OPTIONAL_LAYERS if name in LAYERS and name != "ci"]
    if not optional:
        pytest.skip(f"{PARAMS_FILE} enables no optional layer that retains something")
    deploy_and_destroy(sandbox, run)
    code, out, err = run("purge", "--yes", *without_layer(tmp_path, optional[0]))
    assert code == 0, out + err
    assert RETAINED_LOGS.isdisjoint(log_group_names(sandbox)), out


def test_diff_of_layers_whose_creates_retained_names_block_says_the_deploy_would_be_refused(sandbox, run, monkeypatch):
    """make diff said "not deployed; deploying creates everything", and make deploy then refused: the
    destroyed stacks' retained log groups hold the names. diff says it first, from the deploy's own look,
    over every layer the deploy would run from its first create on; a diff of deployed layers makes no look."""
    looks = []
    on_each_client(monkeypatch, "before-call.cloudformation.ListStacks", lambda **_: looks.append(1))
    deployed(sandbox, run)  # whose deploy, where it runs, looks before its first create
    looks.clear()
    assert run("diff")[0] == 0 and looks == []  # every layer deployed: no look
    assert run("destroy", "--yes")[0] == 0
    code, out, err = run("diff")
    assert code == 1 and looks, out + err  # the look, made now: the hook that saw none before does fire
    note = next(line for line in out.splitlines() if line.startswith("note: make deploy would be refused: "))
    assert note.startswith("note: make deploy would be refused: what destroyed stacks retained still holds names their creates need: "), (
        note
    )
    assert all(name in note for name in RETAINED_LOGS), note  # the service layer's too, past the first layer created (cert-dns)
    # its last line advises the deploy once the names are freed, not as if it could run now
    assert out.splitlines()[-1] == (
        f"differs from what {ENV} runs: {', '.join(LAYERS)} (make deploy ENV={ENV} applies it, once what the note above names is freed; "
        "run before then, it applies at most the layers before the first one refused above, and stops)"
    ), out
    code, out, err = run("deploy", "--yes")
    assert code == 1 and err.startswith("error: refused before creating anything: what destroyed stacks retained"), out + err


def test_diff_of_one_layer_whose_create_needs_a_log_group_name_another_holds_says_the_deploy_would_be_refused(sandbox, run):
    """make diff STACK=service of a layer not deployed said "make deploy STACK=service applies it", and the deploy
    refused its change set: a log group made by hand holds the name its create needs. A deploy of one layer finds
    it in its change set; make diff, which makes none, looks for it."""
    deployed(sandbox, run, *LAYERS[: LAYERS.index("service")])
    sandbox.client("logs").create_log_group(logGroupName=SERVICE_LOGS)
    code, out, err = run("diff", "--stack", "service")
    assert code == 1, out + err
    assert (
        "note: make deploy would be refused: log groups no destroyed stack of theirs retained hold names their creates need: "
        f"{stack('service')}: {SERVICE_LOGS}"
    ) in out, out
    assert out.splitlines()[-1].endswith("applies it, once what the note above names is freed)"), out
    code, out, err = run("deploy", "--stack", "service", "--yes")
    assert code == 1 and SERVICE_LOGS in err and "taken" in err, out + err


def test_a_diff_of_every_layer_whose_deploy_stops_at_a_refused_layer_says_so_and_the_deploy_does(sandbox, run, tmp_path):
    """A new ContainerPort: the alb layer's target groups would be replaced under their names, which a deploy refuses,
    and the service layer takes the port too. make diff said "make deploy applies it" of the service; the deploy of
    every layer stopped at alb and never reached it."""
    deployed(sandbox, run)
    port = str(int(parameters(ENV, "service")["ContainerPort"]) + 1)
    options = output_with_parameters(tmp_path / "output", {"alb": {"ContainerPort": port}, "service": {"ContainerPort": port}})
    code, out, err = run("diff", *options)
    assert code == 1, out + err
    # (its way on, a new name for the target groups, replaces them: the command then carries ALLOW_REPLACE=1); the layers
    # that read the groups' names and ARNs take the new ones then
    assert out.splitlines()[-2:] == [
        f"differs from what {ENV} runs: release-alarms, service, alarms (make deploy ENV={ENV} ALLOW_REPLACE=1 applies it, once alb can be deployed (as said above); "
        "run before then, it applies at most the layers before the first one refused above, and stops; alb replacing or removing what its "
        "note above names)",
        "a deploy would be refused: alb (see the note above); alb then needs ALLOW_REPLACE=1 too",
    ], out
    code, out, err = run("deploy", "--yes", *options)
    assert code == 1 and "error: refused: CloudFormation cannot replace a resource under the name it has" in err, out + err
    assert f"{stack('service')}: " not in out, out  # not reached


def test_a_failed_first_create_of_a_protected_load_balancer_is_destroyed_not_refused(sandbox, run, tmp_path):
    # Its create rolled back, deleting the load balancer: the parameter says protected, but nothing is, and the
    # refusal's advice (deploy DeletionProtection false first) cannot run on a ROLLBACK_COMPLETE stack.
    deployed(sandbox, run, "cert-dns")
    failing = output_with_parameters(
        tmp_path / "failing", {"alb": {"DeletionProtection": "true", "BackendSecurityGroupId": "sg-0123456789abcdef0"}}
    )
    code, out, err = run("deploy", "--stack", "alb", *failing, "--yes")
    cf = sandbox.client("cloudformation")
    assert code == 1 and cf.describe_stacks(StackName=stack("alb"))["Stacks"][0]["StackStatus"] == "ROLLBACK_COMPLETE", out + err
    code, out, err = run("destroy", "--stack", "alb", "--yes", *failing)
    assert code == 0 and f"{stack('alb')}: deleted" in out, out + err
    assert not exists(cf.describe_stacks, "ValidationError", StackName=stack("alb"))


def test_a_diff_of_every_layer_whose_deploy_stops_at_a_failed_first_create_says_so(sandbox, run, tmp_path):
    """alb's first create failed (ROLLBACK_COMPLETE, which needs RECREATE=1): make diff said of the layers after it
    "make deploy applies it", and the deploy of every layer stopped at alb."""
    deployed(sandbox, run, "cert-dns")
    failing = output_with_parameters(tmp_path / "failing", {"alb": {"BackendSecurityGroupId": "sg-0123456789abcdef0"}})
    code, out, err = run("deploy", "--stack", "alb", *failing, "--yes")
    cf = sandbox.client("cloudformation")
    assert code == 1 and cf.describe_stacks(StackName=stack("alb"))["Stacks"][0]["StackStatus"] == "ROLLBACK_COMPLETE", out + err
    # and cert-dns, before it, differs: its termination protection off (a change by hand), which a deploy turns back on
    cf.update_termination_protection(StackName=stack("cert-dns"), EnableTerminationProtection=False)
    code, out, err = run("diff")
    after = [layer for layer in LAYERS if layer not in ("cert-dns", "alb")]
    assert code == 1 and out.splitlines()[-2:] == [
        f"differs from what {ENV} runs: cert-dns, {', '.join(after)} (make deploy ENV={ENV} applies it, once alb can be deployed (as said above); "
        "run before then, it applies at most the layers before the first one refused above, and stops)",
        "not compared, in no settled state: alb (see above)",
    ], out + err
    assert f"make deploy STACK=alb ENV={ENV} RECREATE=1" in out, out  # what its line above says to do
    code, out, err = run("deploy", "--yes")
    assert code == 1 and f"make deploy STACK=alb ENV={ENV} RECREATE=1" in out + err and f"{stack(after[0])}: " not in out, out + err
    assert cf.describe_stacks(StackName=stack("cert-dns"))["Stacks"][0]["EnableTerminationProtection"], out  # applied, as said


def test_replacing_a_load_balancer_with_deletion_protection_is_refused_until_it_is_turned_off_alone(sandbox, run, tmp_path):
    """CloudFormation cannot delete the old load balancer and would drop it from the stack, running
    (guards.refuse_deleting_a_protected_load_balancer); turning protection off in the same change is
    the new one's setting, so that is refused too; off alone first, then the replacement goes through."""
    seeded(sandbox)
    protected = output_with_parameter(tmp_path / "on", "alb", "DeletionProtection", "true")
    for layer in ("cert-dns", "alb"):
        code, out, err = run("deploy", "--stack", layer, "--yes", *protected)
        assert code == 0, out + err
    deployed = physical_ids(sandbox, "alb")["LoadBalancer"]
    for protection in ("true", "false"):
        renamed = output_with_parameters(
            tmp_path / f"renamed-{protection}", {"alb": {"NamePrefix": OTHER_PREFIX, "DeletionProtection": protection}}
        )
        code, out, err = run("deploy", "--stack", "alb", *renamed, "--yes", "--allow-replace")
        assert code == 1, out + err
        assert "error: refused: the change set replaces or removes LoadBalancer, a load balancer that has deletion protection on" in err, (
            err
        )
        assert (
            "first deploy DeletionProtection: false alone (in params/sandbox.yaml, make templates && make deploy ENV=sandbox STACK=alb"
            in err
        )
        assert physical_ids(sandbox, "alb")["LoadBalancer"] == deployed
    code, out, err = run(
        "deploy", "--stack", "alb", "--yes", *output_with_parameter(tmp_path / "off", "alb", "DeletionProtection", "false")
    )
    assert code == 0, out + err
    assert physical_ids(sandbox, "alb")["LoadBalancer"] == deployed  # turned off in place
    code, out, err = run("deploy", "--stack", "alb", *renamed, "--yes", "--allow-replace")
    assert code == 0, out + err
    assert physical_ids(sandbox, "alb")["LoadBalancer"] != deployed


def test_a_change_of_the_service_stacks_tags_alone_is_recorded_as_a_redeploy_of_its_image(sandbox, run, tmp_path):
    # As AWS's change set of the tags is, once executed: the sandbox's UpdateStack path updated the stack unrecorded.
    deployed(sandbox, run)
    history = f"/{templates.PROJECT}/{ENV}/service/releases"
    before = json.loads(sandbox.client("ssm").get_parameter(Name=history)["Parameter"]["Value"])
    output = tmp_path / "output"
    shutil.copytree(ROOT / "output", output)
    config = output / ENV / "service.json"
    document = json.loads(config.read_text())
    document["Tags"] |= {"Retagged": "yes"}
    config.write_text(json.dumps(document))
    code, out, err = run("deploy", "--stack", "service", "--output-dir", str(output), "--params-dir", str(ROOT / "params"), "--yes")
    assert code == 0 and "  tag Retagged: (none) -> yes" in out, out + err
    after = json.loads(sandbox.client("ssm").get_parameter(Name=history)["Parameter"]["Value"])
    image = SANDBOX.values["ImageTag"]
    assert after[:-1] == before and (after[-1]["image_tag"], after[-1]["replaced"]) == (image, image), after


def test_a_change_of_the_stack_tags_alone_is_applied_and_then_there_is_nothing_left_to_do(sandbox, run, tmp_path):
    # The sandbox's change set sees no change for new stack tags: the deployer applies them through UpdateStack.
    deployed(sandbox, run, "cert-dns")
    before = {
        t["Key"]: t["Value"] for t in sandbox.client("cloudformation").describe_stacks(StackName=stack("cert-dns"))["Stacks"][0]["Tags"]
    }
    output = tmp_path / "output"
    shutil.copytree(ROOT / "output", output)
    config = output / ENV / "cert-dns.json"
    document = json.loads(config.read_text())
    own = templates.own_tags(ENV, "cert-dns")  # what marks the stack as this tool's stays
    document["Tags"] = {key: value if key in own else f"{value}-retagged" for key, value in document["Tags"].items()} | {"Retagged": "yes"}
    config.write_text(json.dumps(document))
    retagged = ("--output-dir", str(output), "--params-dir", str(ROOT / "params"))
    # make changeset said only "no changes": the tags are a deploy's to set, and it says so
    code, out, err = run("changeset", "--stack", "cert-dns", *retagged)
    differing = ", ".join(sorted((document["Tags"].keys() - own.keys()) | {"Retagged"}))
    assert (
        code == 0
        and f"{stack('cert-dns')}: its tags differ from params/{ENV}.yaml's ({differing}), which the empty change set does not carry: "
        in out
    )
    code, out, err = run("deploy", "--stack", "cert-dns", *retagged, "--yes")
    assert code == 0, out + err
    assert "  tag Retagged: (none) -> yes" in out, out + err
    for key in document["Tags"].keys() - own.keys() - {"Retagged"}:
        assert f"  tag {key}: {before[key]} -> {document['Tags'][key]}" in out, out + err
    (cert_dns,) = sandbox.client("cloudformation").describe_stacks(StackName=stack("cert-dns"))["Stacks"]
    assert {t["Key"]: t["Value"] for t in cert_dns["Tags"]} == document["Tags"] and cert_dns["StackStatus"] == "UPDATE_COMPLETE"
    assert cert_dns["LastUpdatedTime"] > cert_dns["CreationTime"]  # make status shows it as the last change
    code, out, err = run("deploy", "--stack", "cert-dns", *retagged, "--yes")
    assert code == 0 and out.strip() == f"{stack('cert-dns')}: no changes", out + err


def test_stacks_of_our_names_that_this_tool_did_not_make_are_neither_destroyed_nor_purged(sandbox, run):
    # Made by hand under the name a layer's stack would have (one the sandbox does not enable), without our tags.
    layer = next((name for name in templates.layer_order() if name not in LAYERS), None)
    if layer is None:
        pytest.skip(f"{PARAMS_FILE} enables every layer: no stack name of ours is free for one made by hand")
    cloudformation = sandbox.client("cloudformation")
    seeded(sandbox)
    audit = "/important/audit-trail"
    kept = {"Audit": {"Type": "AWS::Logs::LogGroup", "DeletionPolicy": "Retain", "Properties": {"LogGroupName": audit}}}
    cloudformation.create_stack(StackName=stack(layer), TemplateBody=json.dumps({"Resources": kept}))
    cloudformation.delete_stack(StackName=stack(layer))
    assert audit in log_group_names(sandbox)  # retained by the deleted stack
    code, out, err = run("purge", "--stack", layer, "--yes")
    assert code == 0, out + err
    assert f"{stack(layer)} (" in out and "was not made by this tool" in out and audit in log_group_names(sandbox), out

    topic = {"Topic": {"Type": "AWS::SNS::Topic"}}
    cloudformation.create_stack(StackName=stack(layer), TemplateBody=json.dumps({"Resources": topic}), EnableTerminationProtection=True)
    enabled = LAYERS[0]  # and one where an enabled layer's stack would be, which a deploy would change
    cloudformation.create_stack(StackName=stack(enabled), TemplateBody=json.dumps({"Resources": topic}), EnableTerminationProtection=True)
    for argv in (("destroy", "--stack", layer, "--yes"), ("destroy", "--yes"), ("deploy", "--stack", enabled, "--yes")):
        code, out, err = run(*argv)
        named = stack(enabled) if "deploy" in argv or "--stack" not in argv else stack(layer)
        assert code == 1 and f"error: {named} exists but was not made by this tool: its tags are not " in err, (argv, out + err)
    for name in (layer, enabled):
        (found,) = cloudformation.describe_stacks(StackName=stack(name))["Stacks"]
        assert (found["StackStatus"], found["EnableTerminationProtection"], found.get("Tags", [])) == ("CREATE_COMPLETE", True, [])
    assert not cloudformation.list_change_sets(StackName=stack(enabled))["Summaries"]
    code, out, err = run("status")  # only read: shown as it is
    assert code == 0 and out.splitlines()[[line.split()[0] for line in out.splitlines()].index(stack(layer))].endswith(
        f"(not made by this tool: it lacks the tags its stacks carry; a deploy or destroy of STACK={layer} is refused while it is "
        "there, and one of every layer leaves it alone)"
    ), out + err
    # Someone else's stack in a layer the environment does not use does not block destroying or purging the others.
    cloudformation.update_termination_protection(StackName=stack(enabled), EnableTerminationProtection=False)
    cloudformation.delete_stack(StackName=stack(enabled))
    left_alone = f"{stack(layer)} was not made by this tool, and {layer} is not in enabled_layers of params/{ENV}.yaml: left alone"
    code, out, err = run("deploy", "--stack", enabled, "--yes")
    assert code == 0, out + err
    keeps = {
        n
        for n, r in json.loads((ROOT / "output" / f"{enabled}.json").read_text())["Resources"].items()
        if "Retain" in r.get("DeletionPolicy", "")
    }
    resources = cloudformation.describe_stack_resources(StackName=stack(enabled))["StackResources"]
    retained = {r["PhysicalResourceId"] for r in resources if r["LogicalResourceId"] in keeps}
    assert retained, f"{enabled} retains nothing: this test needs a layer that does"
    code, out, err = run("destroy", "--yes")
    assert code == 0 and left_alone in out.splitlines() and f"{stack(enabled)}: deleted" in out, out + err
    assert not exists(cloudformation.describe_stacks, "ValidationError", StackName=stack(enabled))
    code, out, err = run("purge", "--yes")
    assert code == 0 and left_alone in out.splitlines(), out + err
    purging = out.split("purging:\n", 1)[-1].splitlines()
    assert all(
        any(physical in line and ("deleted" in line or "deletion scheduled" in line) for line in purging) for physical in retained
    ), out
    assert audit in log_group_names(sandbox)  # what someone else's deleted stack retained stays
    cloudformation.update_termination_protection(StackName=stack(layer), EnableTerminationProtection=False)
    cloudformation.delete_stack(StackName=stack(layer))
    # Someone else's change set waiting for review on a stack of our name: its tags say whose.
    cloudformation.create_change_set(
        StackName=stack(layer),
        ChangeSetName="theirs",
        ChangeSetType="CREATE",
        TemplateBody=json.dumps({"Resources": topic}),
        Tags=[{"Key": "Owner", "Value": "another team"}],
    )
    code, out, err = run("destroy", "--stack", layer, "--yes")
    assert code == 1 and f"error: {stack(layer)} exists but was not made by this tool" in err, out + err
    assert [s["ChangeSetName"] for s in cloudformation.list_change_sets(StackName=stack(layer))["Summaries"]] == ["theirs"]
    # Without tags at all, the empty stack too: every change set this tool makes carries its tags (a stopped run's
    # too), so one without them is someone else's; a destroy deleted the stack and their change set with it.
    cloudformation.delete_stack(StackName=stack(layer))
    body = json.dumps({"Resources": topic})
    cloudformation.create_change_set(StackName=stack(layer), ChangeSetName="untagged", ChangeSetType="CREATE", TemplateBody=body)
    assert not cloudformation.describe_stacks(StackName=stack(layer))["Stacks"][0].get("Tags")
    code, out, err = run("destroy", "--stack", layer, "--yes")
    assert code == 1 and err.startswith(
        f"error: {stack(layer)} exists, empty and under review, with change sets this tool did not make (their tags are not "
    ), out + err
    assert "): untagged; nothing changed." in err, err
    assert [s["ChangeSetName"] for s in cloudformation.list_change_sets(StackName=stack(layer))["Summaries"]] == ["untagged"]
    code, out, err = run("destroy", "--yes")  # a layer the environment does not enable: left alone by a run of every layer
    assert code == 0 and f"{stack(layer)} was not made by this tool" in out, out + err
    assert [s["ChangeSetName"] for s in cloudformation.list_change_sets(StackName=stack(layer))["Summaries"]] == ["untagged"]


def test_a_refused_deploy_of_a_new_stack_leaves_the_change_set_left_for_review_and_its_stack(sandbox, run, monkeypatch):
    # make changeset on a stack not yet created makes it, empty (REVIEW_IN_PROGRESS), with the change
    # set; a deploy's own CREATE change set goes to that stack: refused, it must not delete the stack.
    seeded(sandbox)
    code, out, err = run("changeset", "--stack", "cert-dns")
    assert code == 0, out + err
    cloudformation = sandbox.client("cloudformation")
    (reviewed,) = cloudformation.list_change_sets(StackName=stack("cert-dns"))["Summaries"]
    code, out, err = run("deploy", "--stack", "cert-dns")  # no terminal, no --yes: refused
    assert code == 1 and "no terminal to ask on" in err, out + err
    assert f"left for review or by a stopped run: {reviewed['ChangeSetName']} (made " in out, out
    assert "empty (REVIEW_IN_PROGRESS) deleted" not in out, out
    left = cloudformation.list_change_sets(StackName=stack("cert-dns"))["Summaries"]
    assert [s["ChangeSetName"] for s in left] == [reviewed["ChangeSetName"]]
    code, out, err = run("execute", "--stack", "cert-dns", "--changeset", reviewed["ChangeSetName"], "--yes")
    assert code == 0 and f"{stack('cert-dns')}: CREATE_COMPLETE" in out, out + err


def test_two_change_sets_made_in_the_same_second_have_names_of_their_own(sandbox, run, monkeypatch):
    # The name is also the request's ClientToken: the second of two equal ones is taken for a retry of the first.
    seeded(sandbox)
    for millisecond in (100, 900):

        class Fixed(datetime):
            @classmethod
            def now(cls, tz=None, millisecond=millisecond):
                return datetime(2026, 1, 1, 12, 0, 0, millisecond * 1000, tzinfo=tz)

        monkeypatch.setattr(deployer, "datetime", Fixed)
        code, out, err = run("changeset", "--stack", "cert-dns")
        assert code == 0, out + err
    names = [s["ChangeSetName"] for s in sandbox.client("cloudformation").list_change_sets(StackName=stack("cert-dns"))["Summaries"]]
    assert len(set(names)) == 2, names


def test_an_update_that_replaces_the_service_states_its_count_then_leaves_it_to_auto_scaling(sandbox, run, tmp_path):
    """A new NamePrefix makes a new service: its update states DesiredCount (a new service without one
    starts 1 task), then, as after a create, the stack is settled to leave the count to auto-scaling,
    so that the next deploy of the same files changes nothing and a rollback restores no count."""
    deployed(sandbox, run)
    renamed = output_with_parameters(tmp_path / "output", {layer: {"NamePrefix": OTHER_PREFIX} for layer in LAYERS})
    code, out, err = run("deploy", *renamed, "--yes", "--allow-replace")
    assert code == 0, out + err
    assert f"{stack('service')}: from now on, updates leave the running task count to auto-scaling (KeepRunningCount=true)" in out
    # Said before the question: the old log group's events, kept, are encrypted with a key whose policy names the new group only.
    assert (
        f"warning: LogGroup is replaced: {SERVICE_LOGS} would stay in the account, in no stack, but its events stay encrypted with LogKey, "
        "whose policy this update makes name only the new log group, so CloudWatch Logs can no longer read them; read or export "
        f"what is needed first (make logs ENV={ENV} SINCE={max(LOG_RETENTION_DAYS)}d, or {sandbox_aws_cli(sandbox)} logs create-export-task "
        f"--log-group-name {SERVICE_LOGS} --from 0 --to " in out
    ), out
    (service,) = sandbox.client("ecs").describe_services(cluster=SANDBOX.values["ClusterName"], services=[f"{OTHER_PREFIX}-service"])[
        "services"
    ]
    assert service["desiredCount"] == int(SANDBOX.values["DesiredCount"])
    found = sandbox.client("cloudformation").describe_stacks(StackName=stack("service"))["Stacks"][0]
    assert {p["ParameterKey"]: p["ParameterValue"] for p in found["Parameters"]}["KeepRunningCount"] == "true"
    # its outputs said once, after the settling update (the update before it states them too: not said twice)
    (served,) = [line for line in deployer.text.outputs(found) if line.startswith("  ServiceArn = ")]
    assert out.splitlines().count(served) == 1, out
    code, out, err = run("deploy", *renamed, "--yes", "--allow-replace")
    assert code == 0, out + err
    assert "service (no changes)" in out, out
    # make diff says of a new DesiredCount what the change set says: it changes no running count
    more = str(int(SANDBOX.values["DesiredCount"]) + 1)
    counted = output_with_parameters(tmp_path / "counted", {layer: {"NamePrefix": OTHER_PREFIX, "DesiredCount": more} for layer in LAYERS})
    code, out, err = run("diff", "--stack", "service", *counted)
    assert code == 1 and f"+parameter DesiredCount={more}" in out, out + err
    assert "  note: the new DesiredCount above, which counts only when the service is created" in out, out


def test_a_change_of_alarms_that_read_container_insights_says_when_the_cluster_has_it_off(sandbox, run):
    """moto lists a new cluster's containerInsights setting as "disabled" (on AWS a cluster that sets
    none follows the account's setting, which the note does not read: API_ClusterSetting): a change
    set of the alarms layer notes it, naming the alarms that would never alarm; with it on, nothing is
    said, and a deploy with nothing to change says nothing either."""
    seeded(sandbox)
    alarms = json.loads((ROOT / "output" / "alarms.json").read_text())["Resources"]
    readers = sorted(name for name, r in alarms.items() if "ECS/ContainerInsights" in json.dumps(r["Properties"]))
    cluster = SANDBOX.values["ClusterName"]
    # the readers with what their TreatMissingData makes of no data (literal: the alarms layer's choice)
    note = f"note: cluster {cluster} has Container Insights off, and its metrics are read by {', '.join(readers)}: without them, as TreatMissingData is notBreaching, no alarm is raised"
    code, out, err = run("deploy", "--yes")
    lines = out.splitlines()
    assert code == 0 and lines.count(note) == 1, out + err
    # under the alarms layer's change set, not under the layer before it (scaling's outputs)
    first_of_alarms = next(i for i, line in enumerate(lines) if stack("alarms") in line)
    assert lines.index(note) > first_of_alarms, out
    fix = lines[lines.index(note) + 1]
    assert fix.startswith("  turn it on: "), fix
    command = fix.split("turn it on: ", 1)[1]
    assert command.endswith(f"ecs update-cluster --cluster {cluster} --settings name=containerInsights,value=enabled"), fix
    # What it asks for works where it was printed, the sandbox too (moto answers UpdateCluster, not UpdateClusterSettings).
    words = shlex.split(command)
    at = words.index("update-cluster")
    assert words[at - 1] == "ecs" and words[at + 1 :] == ["--cluster", cluster, "--settings", "name=containerInsights,value=enabled"]
    code, out, err = run("deploy", "--yes")
    assert code == 0 and "Container Insights" not in out, out + err  # nothing to change: nothing said, though it is off
    # Stopped during the check (Ctrl-C while DescribeClusters retries): the run's change set and the
    # empty stack of its create are deleted, as anywhere between the change set and its execution.
    assert run("destroy", "--stack", "alarms", "--yes")[0] == 0

    def interrupted(*args):
        raise KeyboardInterrupt

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(guards, "say_when_container_insights_is_off", interrupted)
        code, out, err = run("deploy", "--stack", "alarms", "--yes")
    assert code == 130 and "deleted" in out + err, out + err
    stacks = sandbox.client("cloudformation").list_stacks()["StackSummaries"]
    assert all(s["StackStatus"] == "DELETE_COMPLETE" for s in stacks if s["StackName"] == stack("alarms")), stacks
    sandbox.client("ecs").update_cluster(cluster=cluster, settings=[{"name": "containerInsights", "value": "enabled"}])
    code, out, err = run("deploy", "--stack", "alarms", "--yes")
    assert code == 0 and "CREATE_COMPLETE" in out and "Container Insights" not in out, out + err


def test_executing_the_change_set_a_stopped_rollback_left_records_a_rollback(sandbox, run):
    """A rollback whose run stopped at its question (killed, say) leaves its change set: `make
    execute` of it recorded a new release, and the next rollback went back to the image it left."""
    from scripts.deploy import text

    deployed(sandbox, run)
    first = SANDBOX.values["ImageTag"]
    bad = f"{first}-next"
    assert run("deploy", "--stack", "service", "--image-tag", bad, "--yes")[0] == 0
    cloudformation = sandbox.client("cloudformation")
    layer = load_layer(ENV, "service", ROOT / "output")

    def left_by_a_rollback(name, image, rolling_back_from, **others):
        service = cloudformation.describe_stacks(StackName=stack("service"))["Stacks"][0]
        values = {p["ParameterKey"]: p["ParameterValue"] for p in service["Parameters"]} | {"ImageTag": image} | others
        cloudformation.create_change_set(
            StackName=stack("service"),
            ChangeSetName=name,
            ChangeSetType="UPDATE",
            TemplateBody=json.dumps(cloudformation.get_template(StackName=stack("service"))["TemplateBody"]),
            # the deployed values but these (moto cannot read UsePreviousValue in a change set)
            Parameters=[{"ParameterKey": key, "ParameterValue": value} for key, value in values.items()],
            Capabilities=["CAPABILITY_NAMED_IAM"],
            Description=text.change_set_description(layer, rolling_back_from=rolling_back_from),
        )
        code, out, err = run("execute", "--stack", "service", "--changeset", name, "--yes")
        assert code == 0, err
        history = json.loads(sandbox.client("ssm").get_parameter(Name=f"/{templates.PROJECT}/{ENV}/service/releases")["Parameter"]["Value"])
        return out, history[-1]

    out, recorded = left_by_a_rollback("left-by-a-rollback", first, bad)
    assert f"{stack('service')}: change set left-by-a-rollback is a rollback from {bad} (its description says so): recorded as one" in out
    assert (recorded["image_tag"], recorded.get("rolled_back_from")) == (first, bad)
    code, out, err = run("rollback", "--stack", "service", "--yes")  # never back to the image rolled back from
    assert code == 1 and "nothing earlier to roll back to" in err, (out, err)
    # A mark of an image that no longer runs (a change set made before a release since) is said, not followed.
    out, recorded = left_by_a_rollback("made-before", f"{first}-again", bad)
    assert f"note: change set made-before says it is a rollback from {bad}, but {first} runs: recorded as a release" in out
    assert (recorded["image_tag"], recorded.get("rolled_back_from"), recorded["replaced"]) == (f"{first}-again", None, first)
    # nor one that deploys the image it says it leaves
    # with another change, so that it is no empty change set: a retention CloudWatch takes other than params'
    retention = str(next(days for days in LOG_RETENTION_DAYS if str(days) != SANDBOX.values["LogRetentionDays"]))
    out, recorded = left_by_a_rollback("to-itself", f"{first}-again", f"{first}-again", LogRetentionDays=retention)
    assert (
        f"note: change set to-itself says it is a rollback from {first}-again, but it deploys {first}-again itself: recorded as a release"
        in out
    )
    assert (recorded["image_tag"], recorded.get("rolled_back_from")) == (f"{first}-again", None)


def test_a_layer_whose_upstream_layers_are_not_deployed_names_every_one_in_an_order_that_works(sandbox, run):
    # The service layer on an empty account named the load balancer's stack alone; deployed, the next
    # try named the release alarms', and the load balancer's own needed the certificate's first.
    seeded(sandbox)
    code, out, err = run("deploy", "--stack", "scaling", "--yes")
    assert code == 1, out + err
    advice = re.search(
        r": make deploy STACK=(\S+) ENV=sandbox((?:, then STACK=[^,\s]+)*), or make deploy ENV=sandbox for every layer in order$", err
    )
    assert err.startswith(f"error: {stack('scaling')} needs ") and advice, err
    order = [advice.group(1), *re.findall(r"then STACK=([^,\s]+)", advice.group(2))]
    assert len(order) > 2 and all(stack(layer) in err.partition(" deployed first")[0] for layer in order), err  # the whole way
    for layer in order:  # as it says
        code, out, err = run("deploy", "--stack", layer, "--yes")
        assert code == 0, f"{layer}: {out}{err}"
    code, out, err = run("deploy", "--stack", "scaling", "--yes")
    assert code == 0, out + err


def test_a_release_whose_run_stopped_as_it_asked_to_execute_it_says_how_to_roll_back_from_it(sandbox, run, monkeypatch):
    """A Ctrl-C as ExecuteChangeSet answered: the release ran, and its run could not record it. The run,
    and then make execute of its change set as the run advises, say so, naming the image a rollback from
    it goes back to (make rollback, without it, found no release of the running image). Two such releases
    in a row: the second's way back is the first's image, which the history lacks too (make execute named
    the history's last release)."""
    deployed(sandbox, run)
    first = SANDBOX.values["ImageTag"]

    def ctrl_c(**_):
        raise KeyboardInterrupt

    for before, new in ((first, f"{first}-next"), (f"{first}-next", f"{first}-then")):
        on_each_client(monkeypatch, "after-call.cloudformation.ExecuteChangeSet", ctrl_c)
        code, out, err = run("deploy", "--stack", "service", "--image-tag", new, "--yes")
        monkeypatch.undo()
        rollback = f"make rollback ENV={ENV} TAG={before}\n"  # its last words
        unrecorded = f"the release of {new} is live but not recorded in the release history"
        assert code == 130 and f"\n  if it started and completes, {unrecorded}" in err and rollback in err, out + err
        name = re.search(r"CHANGESET=(\S+)", err).group(1)
        code, out, err = run("execute", "--stack", "service", "--changeset", name, "--yes")  # as the run advises
        assert code == 1 and "was executed already, and the stack has it: nothing to execute" in err, out + err
        assert f"\n{unrecorded}" in err and rollback in err, err
    code, out, err = run("rollback", "--stack", "service", "--image-tag", before, "--yes")  # the advice, followed
    assert code == 0, out + err


def test_a_release_whose_execute_was_retried_after_it_landed_is_followed_and_recorded(sandbox, run, monkeypatch):
    """ExecuteChangeSet landed and its answer was lost (botocore retried it, as it does a 5xx): the retry was
    answered InvalidChangeSetStatus, the change set being executed already. The run said it may have started
    and exited 1, leaving the release live but out of the history; it now sees it started and follows it."""
    deployed(sandbox, run)
    new = f"{SANDBOX.values['ImageTag']}-retried"
    made = []

    def answer_lost(attempts, **_):  # needs-retry: what a handler returns is the delay before a retry
        made.append(attempts)
        return 0 if attempts == 1 else None

    on_each_client(monkeypatch, "needs-retry.cloudformation.ExecuteChangeSet", answer_lost)
    code, out, err = run("deploy", "--stack", "service", "--image-tag", new, "--yes")
    monkeypatch.undo()
    assert made == [1, 2], made  # the first attempt landed, the second was refused
    assert code == 0, out + err
    assert "was answered InvalidChangeSetStatus, and the change set is EXECUTE_COMPLETE, its events this run's: the first attempt" in out
    releases = sandbox.client("ssm").get_parameter(Name=f"/{templates.PROJECT}/{ENV}/service/releases")["Parameter"]["Value"]
    assert json.loads(releases)[-1]["image_tag"] == new, releases


@pytest.mark.parametrize(
    "command, going_on",
    [
        ("deploy", "; to go on: the same command again (what is done already is not done again)"),
        ("changeset", "; to go on: the same command again (it makes a new change set)"),
        ("rollback", ""),  # done, the same command would roll back one release further
    ],
)
def test_ctrl_c_outside_a_stack_operation_says_how_to_go_on_where_the_same_command_does(sandbox, run, monkeypatch, command, going_on):
    # A one-layer deploy stopped by Ctrl-C as its change set was made said `interrupted` alone.
    deployed(sandbox, run)

    def ctrl_c(**_):
        raise KeyboardInterrupt

    argv = [command, "--stack", "service"]
    argv += ["--image-tag", f"{SANDBOX.values['ImageTag']}-stopped"] if command != "rollback" else []
    argv += ["--yes"] if command != "changeset" else []  # changeset asks nothing
    on_each_client(monkeypatch, "after-call.cloudformation.DescribeStacks", ctrl_c)
    code, out, err = run(*argv)
    monkeypatch.undo()
    assert code == 130 and err.splitlines()[-1] == f"interrupted{going_on}", out + err
    if going_on:  # and it does
        code, out, err = run(*argv)
        assert code == 0, out + err


def test_ctrl_c_in_the_wait_of_the_services_first_create_names_a_create_and_says_how_to_go_on(sandbox, run, monkeypatch):
    # (a new user's walkthrough) Ctrl-C in a stack operation's wait said how to follow and stop the operation, and of
    # the service's first create "if the update completes, ... TAG=<image tag> (an image that ran before it)": no
    # image ran in it before, and nothing said that the same command goes on.
    deployed(sandbox, run, *LAYERS[: LAYERS.index("service")])
    executed = []

    def ctrl_c_once_executed(**_):
        if executed:
            raise KeyboardInterrupt

    on_each_client(monkeypatch, "after-call.cloudformation.ExecuteChangeSet", lambda **_: executed.append(True))
    on_each_client(monkeypatch, "after-call.cloudformation.DescribeStacks", ctrl_c_once_executed)
    code, out, err = run("deploy", "--stack", "service", "--yes")
    monkeypatch.undo()
    assert code == 130 and executed, out + err
    image = SANDBOX.values["ImageTag"]
    assert f"\nif the create completes, the release of {image} is live but not recorded" in err and "the update" not in err, err
    assert f"make rollback ENV={ENV} TAG=<image tag> (the image to run instead)\n" in err, err
    assert err.splitlines()[-1] == f"  {deploy.commands.GOING_ON_AFTER_CTRL_C['deploy']}; it does not record the release said above", err
    code, out, err = run("deploy", "--stack", "service", "--yes")  # as it says: what the stopped run left (its settling update)
    assert code == 0, out + err
    code, out, err = run("deploy", "--stack", "service", "--yes")
    assert code == 0 and f"{stack('service')}: no changes" in out, out + err


def test_execute_takes_the_layer_from_the_change_sets_name_when_stack_is_left_out(sandbox, run):
    # make execute CHANGESET=<the name make changeset printed> said "execute needs STACK=<layer>", though the name says it.
    deployed(sandbox, run)
    code, out, err = run("changeset", "--stack", "service", "--image-tag", f"{SANDBOX.values['ImageTag']}-named")
    assert code == 0, out + err
    name = re.search(r"CHANGESET=(\S+)", out).group(1)
    code, out, err = run("execute", "--changeset", "someone-elses-1", "--yes")  # a name of no stack of ours
    assert code == 2 and err.startswith(
        f"error: execute needs STACK=<layer> (--stack) for change set 'someone-elses-1', whose name names no layer of {ENV} "
        f"(make changeset's start with the layer's stack, {stack(LAYERS[0])}-...); layers: {', '.join(LAYERS)}"
    ), err
    code, out, err = run("execute", "--changeset", name, "--yes")
    assert code == 0 and f"{stack('service')}: UPDATE_COMPLETE" in out, out + err


@pytest.mark.parametrize(
    "stopped_at, going_on",
    [
        ("DescribeStacks", "; to go on: the same command again (the change set is kept, not executed)"),
        # once the change set ran, stopped as its policy is put back after the update: the same command finishes that
        ("SetStackPolicy", f"; {GOING_ON_AFTER_EXECUTION}"),
    ],
)
def test_ctrl_c_in_make_execute_says_the_same_command_goes_on_until_the_change_set_runs(sandbox, run, monkeypatch, stopped_at, going_on):
    deployed(sandbox, run)
    code, out, err = run("changeset", "--stack", "service", "--image-tag", f"{SANDBOX.values['ImageTag']}-reviewed")
    assert code == 0, out + err
    argv = ["execute", "--stack", "service", "--changeset", re.search(r"CHANGESET=(\S+)", out).group(1), "--yes"]

    def ctrl_c(**_):
        raise KeyboardInterrupt

    on_each_client(monkeypatch, f"after-call.cloudformation.{stopped_at}", ctrl_c)
    code, out, err = run(*argv)
    monkeypatch.undo()
    assert code == 130 and err.splitlines()[-1] == f"interrupted{going_on}", out + err
    code, out, err = run(*argv)
    if stopped_at == "DescribeStacks":  # before the change set ran: the same command runs it
        assert code == 0 and "UPDATE_COMPLETE" in out, out + err
    else:  # it ran: the same command finds it so, with nothing left to put on (the service's stack was protected)
        assert code == 1 and "was executed already, and the stack has it" in err and out == "", out + err


def test_ctrl_c_once_the_command_finished_or_its_change_set_was_followed_adds_no_way_to_go_on(sandbox, run, monkeypatch):
    """A Ctrl-C held while the lock is freed, once make changeset left its change set, went off after it: the run
    said the same command again goes on, which would make a second change set. And make execute that followed
    its change set (a retry found it started) and was stopped after it said the change set was kept, not executed."""
    import os
    import signal

    deployed(sandbox, run)
    sent = []

    def sigint(**_):  # a real SIGINT: the lock's release holds it until the lock is freed
        if not sent:
            sent.append(True)
            os.kill(os.getpid(), signal.SIGINT)

    on_each_client(monkeypatch, "after-call.ssm.DeleteParameter", sigint)
    code, out, err = run("changeset", "--stack", "service", "--image-tag", f"{SANDBOX.values['ImageTag']}-left")
    monkeypatch.undo()
    assert sent and code == 130 and err.splitlines()[-1] == "interrupted once make changeset had finished (above)", out + err
    name = re.search(r"CHANGESET=(\S+)", out).group(1)

    def answer_lost(attempts, **_):
        return 0 if attempts == 1 else None

    def ctrl_c(**_):
        raise KeyboardInterrupt

    on_each_client(monkeypatch, "needs-retry.cloudformation.ExecuteChangeSet", answer_lost)
    on_each_client(monkeypatch, "after-call.cloudformation.SetStackPolicy", ctrl_c)
    code, out, err = run("execute", "--stack", "service", "--changeset", name, "--yes")
    monkeypatch.undo()
    assert "whose answer was lost, started it; following it" in out, out + err
    assert code == 130 and err.splitlines()[-1] == f"interrupted; {GOING_ON_AFTER_EXECUTION}", out + err


def test_ctrl_c_before_the_run_reads_anything_says_how_to_go_on(run, monkeypatch):
    from scripts import deploy

    def ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(deploy, "validate", ctrl_c)
    code, out, err = run("execute", "--stack", "service", "--changeset", "any-1", "--yes")
    monkeypatch.undo()
    assert code == 130 and err.splitlines() == ["interrupted; to go on: the same command again (the change set is kept, not executed)"], err


def released_twice(sandbox, run) -> str:
    """Every layer deployed, then the service released twice, <first>-one and <first>-two (first: params' ImageTag,
    which it returns): a rollback then goes back to <first>-one."""
    deployed(sandbox, run)
    first = SANDBOX.values["ImageTag"]
    for tag in (f"{first}-one", f"{first}-two"):
        assert run("deploy", "--stack", "service", "--image-tag", tag, "--yes")[0] == 0
    return first


@pytest.mark.parametrize("stop", ["AccessDenied", "Ctrl-C"])
def test_a_rollback_stopped_after_its_update_says_it_is_done_and_that_another_goes_one_release_further(sandbox, run, monkeypatch, stop):
    """A rollback whose stack policy could not be put back after its update said only the error: the natural retry,
    make rollback again, then rolled back one release further."""
    first = released_twice(sandbox, run)

    def refused(**_):  # before-call: what a handler returns is the answer
        if stop == "Ctrl-C":
            raise KeyboardInterrupt
        return refused_answer()

    on_each_client(monkeypatch, "before-call.cloudformation.SetStackPolicy", refused)
    code, out, err = run("rollback", "--stack", "service", "--yes")
    monkeypatch.undo()
    assert code == (130 if stop == "Ctrl-C" else 1), out + err
    assert out.splitlines()[-2:] == [
        "  the run stopped in service, after its stack operation: updated, 2 changes (the reason is below)",
        f"  the rollback to {first}-one is done and recorded: make rollback ENV={ENV} again would roll back from {first}-one too",
    ], out


@pytest.mark.parametrize(
    "fault", ["a history write that landed, its answer lost", "who the run is, unreadable", "who the run is, an answer without it"]
)
def test_a_release_is_recorded_when_its_write_landed_unanswered_or_the_caller_cannot_be_read(sandbox, run, monkeypatch, fault):
    """A history write whose retried attempt was refused after an earlier one landed was said not recorded, though it
    was; a GetCallerIdentity refused, only for the entry's "by", left the release out of the history."""
    deployed(sandbox, run)
    history = f"/{templates.PROJECT}/{ENV}/service/releases"
    new = f"{SANDBOX.values['ImageTag']}-recorded"
    executed = []
    on_each_client(monkeypatch, "after-call.cloudformation.ExecuteChangeSet", lambda **_: executed.append(True))

    def landed_then_throttled(params, **_):  # the write done, then the error a last retry gets
        if params.get("Name") == history:
            sandbox.client("ssm").put_parameter(**params)
            answer = {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}, "ResponseMetadata": {"RetryAttempts": 4}}
            raise ClientError(answer, "PutParameter")

    def refused(**_):  # before-call: what a handler returns is the answer
        if executed:
            return refused_answer()

    def without_arn(parsed, **_):  # after-call: the answer as read, one field taken out
        parsed.pop("Arn", None)

    if fault.startswith("a history write"):
        on_each_client(monkeypatch, "provide-client-params.ssm.PutParameter", landed_then_throttled)
    elif fault.endswith("unreadable"):
        on_each_client(monkeypatch, "before-call.sts.GetCallerIdentity", refused)
    else:
        on_each_client(monkeypatch, "after-call.sts.GetCallerIdentity", without_arn)
    code, out, err = run("deploy", "--stack", "service", "--image-tag", new, "--yes")
    monkeypatch.undo()
    assert code == 0 and executed and "not recorded" not in out + err, out + err
    last = json.loads(sandbox.client("ssm").get_parameter(Name=history)["Parameter"]["Value"])[-1]
    assert last["image_tag"] == new, last
    if fault.endswith("unreadable"):
        assert last["by"] == "unknown (GetCallerIdentity: AccessDenied)", last
    elif not fault.startswith("a history write"):
        assert last["by"] == "unknown (GetCallerIdentity's answer named no Arn)", last


@pytest.mark.parametrize("landed", [True, False], ids=["the write landed", "nothing written"])
def test_a_history_write_answered_without_its_version_is_recorded_where_it_landed_and_else_a_warning(sandbox, run, monkeypatch, landed):
    # helper G2's fault sweep: PutParameter's answer without its Version (the write landed) ended a deploy of every layer
    # in "error: KeyError: 'Version' ... a bug of the tool's" after the service's update, its later layers not reached;
    # then (helper H1) said "not recorded" of a release the history held. What the history holds now says which.
    from botocore.awsrequest import AWSResponse

    deployed(sandbox, run)
    history = f"/{templates.PROJECT}/{ENV}/service/releases"
    new = f"{SANDBOX.values['ImageTag']}-unread-{landed}"
    executed = []
    on_each_client(monkeypatch, "after-call.cloudformation.ExecuteChangeSet", lambda **_: executed.append(True))

    def without_version(parsed, **_):  # after-call: the write done, its answer without the field; the lock's came before
        if executed:
            parsed.pop("Version", None)

    def answered_empty(**_):  # before-call: what a handler returns is the answer, the request never sent
        if executed:
            return AWSResponse("", 200, {}, None), {}

    if landed:
        on_each_client(monkeypatch, "after-call.ssm.PutParameter", without_version)
    else:
        on_each_client(monkeypatch, "before-call.ssm.PutParameter", answered_empty)
    code, out, err = run("deploy", "--image-tag", new, "--yes")
    monkeypatch.undo()
    assert code == 0 and "not reached" not in out and "bug of the tool" not in out + err, out + err
    last = json.loads(sandbox.client("ssm").get_parameter(Name=history)["Parameter"]["Value"])[-1]
    if landed:
        assert last["image_tag"] == new and "not recorded" not in out + err, out + err
    else:
        assert last["image_tag"] != new, last
        assert f"warning: the release of {new} is live but not recorded in the release history" in out + err, out + err
        assert "(an answer it could not read: KeyError 'Version')" in out + err, out + err


def test_a_rollback_from_an_image_a_rollback_went_to_by_tag_goes_back_past_the_image_it_left(sandbox, run):
    # Every step recorded: a rollback by TAG= to an image never released, then make rollback, asked for TAG= as if a
    # release had gone unrecorded. What ran before the hotfix is the image it left, which a rollback does not go back to.
    first = released_twice(sandbox, run)
    assert run("rollback", "--stack", "service", "--image-tag", f"{first}-hotfix", "--yes")[0] == 0
    code, out, err = run("rollback", "--stack", "service", "--yes")
    assert code == 0 and f"rolling back {stack('service')} from {first}-hotfix to {first}-one " in out, out + err


def test_a_rollback_whose_release_was_not_recorded_says_no_more_than_its_warning(sandbox, run, monkeypatch):
    # The history write refused (a warning: a rollback from it must name the image), then SetStackPolicy: the summary
    # added that make rollback again would roll back one release further, which then refused, asking for TAG=.
    first = released_twice(sandbox, run)
    history = f"/{templates.PROJECT}/{ENV}/service/releases"

    def history_refused(params, **_):
        if params.get("Name") == history:
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "not allowed"}}, "PutParameter")

    def refused(**_):  # before-call: what a handler returns is the answer
        return refused_answer()

    on_each_client(monkeypatch, "provide-client-params.ssm.PutParameter", history_refused)
    on_each_client(monkeypatch, "before-call.cloudformation.SetStackPolicy", refused)
    code, out, err = run("rollback", "--stack", "service", "--yes")
    monkeypatch.undo()
    assert code == 1 and f"the rollback to {first}-one is live but not recorded" in out, out + err
    assert out.splitlines()[-1] == "  the run stopped in service, after its stack operation: updated, 2 changes (the reason is below)", out


@pytest.mark.parametrize("command", ["execute", "rollback"])
def test_a_run_of_one_layer_stopped_before_or_after_its_stack_operation_says_the_summary_only_after(sandbox, run, monkeypatch, command):
    deployed(sandbox, run)
    first = SANDBOX.values["ImageTag"]
    if command == "execute":
        code, out, err = run("changeset", "--stack", "service", "--image-tag", f"{first}-reviewed")
        assert code == 0, out + err
        argv = ["execute", "--stack", "service", "--changeset", re.search(r"CHANGESET=(\S+)", out).group(1), "--yes"]
    else:  # two releases: a rollback for each case
        for tag in (f"{first}-one", f"{first}-two"):
            assert run("deploy", "--stack", "service", "--image-tag", tag, "--yes")[0] == 0
        argv = ["rollback", "--stack", "service", "--yes"]

    def refused(**_):
        return refused_answer()

    # after its stack operation (the policy put back), then before it (its change set refused)
    for operation, summed_up in (("SetStackPolicy", True), ("CreateChangeSet", False)):
        if operation == "CreateChangeSet" and command == "execute":
            continue  # make execute makes no change set
        on_each_client(monkeypatch, f"before-call.cloudformation.{operation}", refused)
        code, out, err = run(*argv)
        monkeypatch.undo()
        assert code == 1 and "AccessDenied" in err, out + err
        stopped = "  the run stopped in service, after its stack operation: updated, 2 changes (the reason is below)"
        assert (stopped in out.splitlines()) == summed_up and ("summary" in out) == summed_up, out


def test_a_release_whose_caller_is_not_answered_is_said_not_recorded(sandbox, run, monkeypatch):
    # Only a refused GetCallerIdentity records "unknown": one not answered ends the record (the history's own write
    # would wait out the same retries, with Ctrl-C held), saying how to roll back from the release.
    from botocore.exceptions import ReadTimeoutError

    deployed(sandbox, run)
    new = f"{SANDBOX.values['ImageTag']}-unanswered"

    def unanswered(**_):
        raise ReadTimeoutError(endpoint_url=sandbox.environment()["AWS_ENDPOINT_URL"])

    on_each_client(monkeypatch, "before-call.sts.GetCallerIdentity", unanswered)
    code, out, err = run("deploy", "--stack", "service", "--image-tag", new, "--yes")
    monkeypatch.undo()
    assert code == 0 and f"the release of {new} is live but not recorded" in out, out + err
    history = json.loads(sandbox.client("ssm").get_parameter(Name=f"/{templates.PROJECT}/{ENV}/service/releases")["Parameter"]["Value"])
    assert history[-1]["image_tag"] != new, history[-1]


def test_a_destroy_stopped_while_a_stack_is_being_deleted_names_the_purge_of_its_layer_too(sandbox, run, monkeypatch):
    """A Ctrl-C after cert-dns's DeleteStack (the last layer destroyed): the stack went, and the certificate
    it retains stayed; the purge commands the stopped run printed named the layers it had seen deleted
    alone, and the certificate was left by them."""
    deployed(sandbox, run)
    certificate = physical_ids(sandbox, "cert-dns")["Certificate"]
    deleting = []

    def ctrl_c(**_):
        if f"/{stack('cert-dns')}/" in deleting[-1]:
            raise KeyboardInterrupt

    on_each_client(
        monkeypatch, "before-parameter-build.cloudformation.DeleteStack", lambda params, **_: deleting.append(params["StackName"])
    )
    on_each_client(monkeypatch, "after-call.cloudformation.DeleteStack", ctrl_c)
    code, out, err = run("destroy", "--yes")
    monkeypatch.undo()
    assert code == 130 and f"{stack('cert-dns')}: deleted" not in out, out + err
    purges = re.findall(r"make purge ENV=sandbox STACK=([\w-]+)", out)
    assert "cert-dns" in purges, out
    # and the next step: the run's last layer (of the enabled ones, in reverse order) may still be there
    assert (
        "not destroyed yet: cert-dns (the run stopped in cert-dns's deletion: its stack may be gone or going already); make destroy "
        "ENV=sandbox destroys what is left, in the same order"
    ) in out.splitlines(), out
    code, again, err = run("destroy", "--yes")
    assert code == 0 and again.splitlines()[-1] == f"nothing deployed in {ENV}", again + err
    for layer in purges:  # as printed
        code, out, err = run("purge", "--stack", layer, "--yes")
        assert code == 0, out + err
    assert certificate not in {c["CertificateArn"] for c in sandbox.client("acm").list_certificates()["CertificateSummaryList"]}


def test_a_destroy_and_a_purge_stopped_half_way_say_the_command_that_finishes_them_and_it_does(sandbox, run, monkeypatch):
    """Ctrl-C at alb's DeleteStack (the layers before it deleted), then in a purge of one layer, and AWS out of
    reach in one of every layer: each run said `interrupted` (or the error) and no next step. And a purge whose log group deletion is refused
    keeps that stack's key (its logs would become unreadable) and fails, counting it."""
    from botocore.exceptions import ReadTimeoutError

    deployed(sandbox, run)
    kept = physical_ids(sandbox, "service")
    order = list(reversed(LAYERS))

    def ctrl_c_at_alb(params, **_):
        if f"/{stack('alb')}/" in params["StackName"]:  # by its id
            raise KeyboardInterrupt

    on_each_client(monkeypatch, "before-parameter-build.cloudformation.DeleteStack", ctrl_c_at_alb)
    code, out, err = run("destroy", "--yes")
    monkeypatch.undo()
    left = order[order.index("alb") :]
    assert code == 130 and err.splitlines()[-1] == "interrupted", out + err
    assert out.splitlines()[-1] == (
        f"not destroyed yet: {', '.join(left)} (the run stopped in alb's deletion: its stack may be gone or going already); make destroy "
        "ENV=sandbox destroys what is left, in the same order"
    ), out
    code, out, err = run("destroy", "--yes")  # as said
    assert code == 0 and [f"{stack(layer)}: deleted" in out for layer in left] == [True] * len(left), out + err

    def refused(params, **_):
        if json.loads(params["body"]).get("logGroupName") == SERVICE_LOGS:  # a JSON API's body
            return refused_answer("AccessDeniedException", 400)
        return None

    on_each_client(monkeypatch, "before-call.logs.DeleteLogGroup", refused)
    code, out, err = run("purge", "--stack", "service", "--yes")
    monkeypatch.undo()
    assert code == 1 and err.splitlines()[-1].startswith("error: 1 of 2 could not be purged (see above)"), out + err
    assert f"  failed: LogGroup (AWS::Logs::LogGroup) {SERVICE_LOGS}: AccessDeniedException: not allowed" in out, out
    assert f"  LogKey (AWS::KMS::Key) {kept['LogKey']}: left: its stack's log group was not deleted" in out, out
    assert key_state(sandbox, kept["LogKey"])["KeyState"] == "Enabled" and SERVICE_LOGS in log_group_names(sandbox)

    def ctrl_c(**_):
        raise KeyboardInterrupt

    on_each_client(monkeypatch, "after-call.logs.DeleteLogGroup", ctrl_c)  # the service's log group deleted, its key not yet
    code, out, err = run("purge", "--stack", "service", "--yes")
    assert (
        code == 130 and out.splitlines()[-1] == "stopped: make purge ENV=sandbox STACK=service lists what is left of these and asks again"
    )
    monkeypatch.undo()

    def no_answer(**_):  # any error: AWS out of reach mid-purge (a sandbox whose server is gone says its own line alone)
        raise ReadTimeoutError(endpoint_url=sandbox.endpoint)

    # at the certificate, which every environment's cert-dns layer retains (the service's log group went above)
    on_each_client(monkeypatch, "after-call.acm.DeleteCertificate", no_answer)
    code, out, err = run("purge", "--yes")  # every layer's: stopped there
    monkeypatch.undo()
    assert code == 1 and out.splitlines()[-1] == "stopped: make purge ENV=sandbox lists what is left of these and asks again", out + err
    code, out, err = run("purge", "--yes")  # as said
    assert code == 0 and SERVICE_LOGS not in out, out + err
    assert RETAINED_LOGS.isdisjoint(log_group_names(sandbox)) and key_state(sandbox, kept["LogKey"])["KeyState"] == "PendingDeletion"


def test_a_destroy_whose_delete_stack_is_refused_names_no_purge_of_that_layer(sandbox, run, monkeypatch):
    """DeleteStack refused (AccessDenied): the stack is there, and make purge of its layer would refuse it."""
    deployed(sandbox, run)

    def refuse(params, **_):
        if stack("cert-dns") in params["body"].get("StackName", ""):
            return refused_answer()
        return None

    on_each_client(monkeypatch, "before-call.cloudformation.DeleteStack", refuse)
    code, out, err = run("destroy", "--yes")
    monkeypatch.undo()
    assert code != 0 and "AccessDenied" in err, out + err
    assert sandbox.client("cloudformation").describe_stacks(StackName=stack("cert-dns"))["Stacks"]  # still there
    purges = re.findall(r"make purge ENV=sandbox STACK=([\w-]+)", out)
    assert purges and "cert-dns" not in purges, out
    # nor is its stack said to be perhaps gone: make destroy deletes it, once allowed
    assert out.splitlines()[-1] == "not destroyed yet: cert-dns; make destroy ENV=sandbox destroys what is left, in the same order", out


def test_an_empty_stack_under_review_that_holds_another_teams_change_set_is_neither_deployed_into_nor_destroyed(sandbox, run):
    # A CREATE change set made by hand (without this tool's tags) under a layer's name: CloudFormation makes the empty
    # stack REVIEW_IN_PROGRESS, without tags. destroy deleted it with their change set, and a deploy made its own on
    # it and ran it, which ends every other one; every change set this tool makes carries its tags, which
    # DescribeChangeSet gives back, so one without them is someone else's.
    layer = LAYERS[-1]
    deployed(sandbox, run, *LAYERS[:-1])
    cloudformation = sandbox.client("cloudformation")
    theirs = json.dumps({"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}})
    cloudformation.create_change_set(StackName=stack(layer), ChangeSetName="other-team-review", ChangeSetType="CREATE", TemplateBody=theirs)
    assert cloudformation.describe_stacks(StackName=stack(layer))["Stacks"][0]["StackStatus"] == "REVIEW_IN_PROGRESS"
    for argv in (("destroy", "--stack", layer, "--yes"), ("deploy", "--stack", layer, "--yes"), ("destroy", "--yes")):
        code, out, err = run(*argv)
        assert code == 1 and err.startswith(
            f"error: {stack(layer)} exists, empty and under review, with change sets this tool did not make"
        ), (argv, out + err)
        assert "): other-team-review; nothing changed." in err, err
        (found,) = cloudformation.describe_stacks(StackName=stack(layer))["Stacks"]
        assert found["StackStatus"] == "REVIEW_IN_PROGRESS", argv
        assert [s["ChangeSetName"] for s in cloudformation.list_change_sets(StackName=stack(layer))["Summaries"]] == ["other-team-review"]
    assert cloudformation.describe_stacks(StackName=stack(LAYERS[0]))["Stacks"][0]["StackStatus"] != "DELETE_COMPLETE"


def their_review_at_alarms_turn(monkeypatch, cf, alarms) -> None:
    """Another team's CREATE change set, their-review, made under alarms' name as a run's deploy of alarms begins."""
    original = deployer.Deployer.deploy

    def deploy(self, layer, *args, **kwargs):
        if layer.name == "alarms":
            body = json.dumps({"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}})
            cf.create_change_set(StackName=alarms, ChangeSetName="their-review", ChangeSetType="CREATE", TemplateBody=body)
        return original(self, layer, *args, **kwargs)

    monkeypatch.setattr(deployer.Deployer, "deploy", deploy)


@pytest.mark.parametrize("answer", ["yes", "declined"])
def test_a_run_does_not_take_over_a_stack_someone_put_under_review_after_the_run_first_looked(sandbox, run, monkeypatch, answer):
    # A deploy of every layer reads the stacks of its creates at its first create (refuse_blocked_creates) and keeps
    # that read for the run (Deployer.stacks). Another team's CREATE change set made under alarms' name meanwhile
    # (REVIEW_IN_PROGRESS, untagged) was neither refused (describe's others_change_sets) nor named: its change set
    # ended when the run executed its own, and on a declined run the Ctrl-C/decline clean-up deleted their stack.
    deployed(sandbox, run, *BEFORE_SCALING)
    cf, alarms = sandbox.client("cloudformation"), templates.stack_name("sandbox", "alarms")
    asked = deployer.Deployer.why_not
    their_review_at_alarms_turn(monkeypatch, cf, alarms)
    if answer == "declined":
        monkeypatch.setattr(deployer.Deployer, "why_not", lambda self, q: "declined" if alarms in q else asked(self, q))
    code, out, err = run("deploy", "--yes")
    assert code == 1 and f"error: {alarms} exists, empty and under review, with change sets this tool did not make" in err, out + err
    # the layers before it were deployed by this run: not "nothing changed" (Deployer.nothing_changed)
    assert re.search(r"\): their-review; nothing changed in alarms; this run changed .+ before it \(the summary above\)\. Remove", err), err
    (found,) = cf.describe_stacks(StackName=alarms)["Stacks"]  # their stack is still there
    assert "their-review" in [s["ChangeSetName"] for s in cf.list_change_sets(StackName=found["StackId"])["Summaries"]]


def test_a_stack_first_read_under_review_with_our_change_set_alone_is_refused_at_its_turn_once_another_team_joins_it(
    sandbox, run, monkeypatch
):
    # The run's first look (at scaling's create) found alarms' stack empty, under review and untagged (as AWS may show
    # the stack a CREATE change set of ours made) with only our change set (make changeset's, left for review). Another
    # team's CREATE change set made under its name before its turn is refused at its turn: its change sets are read then,
    # not taken from the look before (a mutation audit asked whether they were: they were not read before it).
    deployed(sandbox, run, *BEFORE_SCALING)
    cf, alarms = sandbox.client("cloudformation"), templates.stack_name("sandbox", "alarms")
    code, out, err = run("changeset", "--stack", "alarms")
    assert code == 0 and cf.describe_stacks(StackName=alarms)["Stacks"][0]["StackStatus"] == "REVIEW_IN_PROGRESS", out + err

    def untagged_while_under_review(parsed, **_):  # the sandbox shows the tags of our change set's stack at once
        for found in parsed.get("Stacks") or ():
            if found["StackStatus"] == "REVIEW_IN_PROGRESS":
                found.pop("Tags", None)

    on_each_client(monkeypatch, "after-call.cloudformation.DescribeStacks", untagged_while_under_review)
    their_review_at_alarms_turn(monkeypatch, cf, alarms)
    code, out, err = run("deploy", "--yes")
    assert code == 1 and f"error: {alarms} exists, empty and under review, with change sets this tool did not make" in err, out + err
    assert "their-review" in [s["ChangeSetName"] for s in cf.list_change_sets(StackName=alarms)["Summaries"]]


def test_a_stack_first_read_under_review_and_gone_at_its_turn_is_not_left_behind_by_a_declined_create(sandbox, run, monkeypatch):
    # The run's first look found another team's empty stack under review under alarms' name (Deployer.waiting);
    # they withdrew it before alarms' turn; read again, it is a create of this run's own, but waiting still names it, so a
    # declined create's clean-up neither deletes the empty stack its CREATE change set made nor says it may be left.
    deployed(sandbox, run, *BEFORE_SCALING)
    cf, alarms = sandbox.client("cloudformation"), templates.stack_name("sandbox", "alarms")
    body = json.dumps({"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}})
    cf.create_change_set(StackName=alarms, ChangeSetName="their-review", ChangeSetType="CREATE", TemplateBody=body)
    original, asked = deployer.Deployer.read_again_if_not_ours_yet, deployer.Deployer.why_not

    def read_again(self, stack):
        if stack == alarms:  # the other team withdraws their review
            cf.delete_stack(StackName=stack)
        return original(self, stack)

    monkeypatch.setattr(deployer.Deployer, "read_again_if_not_ours_yet", read_again)
    monkeypatch.setattr(deployer.Deployer, "why_not", lambda self, q: "declined" if alarms in q else asked(self, q))
    code, out, err = run("deploy", "--yes")
    assert code == 1 and "nothing changed" in err, out + err
    left = [s for s in cf.describe_stacks()["Stacks"] if s["StackName"] == alarms and s["StackStatus"] != "DELETE_COMPLETE"]
    assert not left or f"{alarms}, empty (REVIEW_IN_PROGRESS) may be left" in out, (left, out + err)


def test_a_destroy_of_every_layer_does_not_delete_a_change_set_someone_put_on_an_empty_stack_after_the_run_looked(
    sandbox, run, monkeypatch
):
    # A destroy of every layer reads each stack once, before its question; scaling's, empty under review with
    # only this tool's change set (untagged, as AWS shows one), is not someone else's then. Another team's CREATE change
    # set made on it while alarms is deleted is deleted with it (delete by StackId: the same stack).
    deployed(sandbox, run, *BEFORE_SCALING)
    cf, scaling = sandbox.client("cloudformation"), templates.stack_name("sandbox", "scaling")
    body = json.dumps({"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}})
    tags = [{"Key": k, "Value": v} for k, v in templates.own_tags("sandbox", "scaling").items()]
    cf.create_change_set(StackName=scaling, ChangeSetName="untagged-first", ChangeSetType="CREATE", TemplateBody=body)
    cf.create_change_set(StackName=scaling, ChangeSetName="ours", ChangeSetType="CREATE", TemplateBody=body, Tags=tags)
    cf.delete_change_set(StackName=scaling, ChangeSetName="untagged-first")
    (found,) = cf.describe_stacks(StackName=scaling)["Stacks"]
    assert found["StackStatus"] == "REVIEW_IN_PROGRESS" and not found.get("Tags"), found
    original = deployer.Deployer.destroy

    def destroy(self, layer_name):
        if layer_name == "scaling":  # minutes after the run's look: another team's review on the empty stack
            cf.create_change_set(StackName=scaling, ChangeSetName="their-review", ChangeSetType="CREATE", TemplateBody=body)
        return original(self, layer_name)

    monkeypatch.setattr(deployer.Deployer, "destroy", destroy)
    code, out, err = run("destroy", "--yes")
    stacks = [s for s in cf.describe_stacks()["Stacks"] if s["StackName"] == scaling and s["StackStatus"] != "DELETE_COMPLETE"]
    assert stacks, "their change set's stack was deleted: " + out + err
    assert code == 1 and f"error: {scaling} exists, empty and under review, with change sets this tool did not make" in err, out + err
    assert "): their-review; nothing changed." in err, err


@pytest.mark.parametrize("made_while", ["before its change set", "asked, declined", "asked, confirmed"])
def test_a_create_neither_runs_over_nor_deletes_a_stack_someone_put_under_review_after_its_read(sandbox, run, monkeypatch, made_while):
    # The read at a layer's turn (read_again_if_not_ours_yet) found none; another team's CREATE change set made before
    # this run's CreateChangeSet (CloudFormation adds a CREATE change set to a stack under review, and answers its
    # StackId), or while the question was open, was run over once it was confirmed (or with YES=1), and deleted with their
    # stack by a declined run's clean-up (delete_empty_stack).
    deployed(sandbox, run, *BEFORE_SCALING)
    cf, scaling = sandbox.client("cloudformation"), templates.stack_name("sandbox", "scaling")
    body = json.dumps({"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}})
    made, asked = [], deployer.Deployer.why_not

    def theirs():
        made.append(cf.create_change_set(StackName=scaling, ChangeSetName="their-review", ChangeSetType="CREATE", TemplateBody=body))

    if made_while.startswith("asked"):
        answer = "declined" if made_while.endswith("declined") else None
        monkeypatch.setattr(deployer.Deployer, "why_not", lambda self, q: theirs() or answer if scaling in q else asked(self, q))
        code, out, err = run("deploy", "--stack", "scaling")
    else:
        on_each_client(
            monkeypatch,
            "before-parameter-build.cloudformation.CreateChangeSet",
            lambda params, **kwargs: None if made or params.get("StackName") != scaling else theirs(),
        )
        code, out, err = run("deploy", "--stack", "scaling", "--yes")
    if made_while != "asked, declined":  # looked at right before it runs
        assert f"error: {scaling} was made meanwhile by another CREATE change set, not this run's (their-review)" in err, out + err
    assert made and code != 0, (code, out + err)
    stacks = [s for s in cf.describe_stacks()["Stacks"] if s["StackName"] == scaling and s["StackStatus"] != "DELETE_COMPLETE"]
    assert stacks and [s["ChangeSetName"] for s in cf.list_change_sets(StackName=scaling)["Summaries"]] == ["their-review"], out + err
    assert f"{scaling}: stack {scaling} left as it is: it holds change sets this run did not make (their-review)" in out, out


def destroyed_to_delete_complete(sandbox, run, layer) -> tuple[int, str, bool]:
    """make destroy STACK=layer: its exit code, its output, and whether the stack's id is listed DELETE_COMPLETE."""
    stack_id = sandbox.client("cloudformation").describe_stacks(StackName=stack(layer))["Stacks"][0]["StackId"]
    code, out, err = run("destroy", "--stack", layer, "--yes")
    deleted = sandbox.client("cloudformation").list_stacks(StackStatusFilter=["DELETE_COMPLETE"])["StackSummaries"]
    return code, out + err, stack_id in [summary["StackId"] for summary in deleted]


def deployed_through(sandbox, run, layer):
    """layer and the layers before it deployed; the test skipped where params/sandbox.yaml does not enable layer."""
    if layer not in LAYERS:
        pytest.skip(f"params/sandbox.yaml does not enable {layer}")
    deployed(sandbox, run, *LAYERS[: LAYERS.index(layer) + 1])


def test_a_waf_stack_whose_web_acl_was_deleted_by_hand_is_destroyed_and_its_log_group_left_to_purge(sandbox, run):
    # WAFv2's "no such resource" is WAFNonexistentItemException: the stack vanished with its retained log group
    deployed_through(sandbox, run, "waf")
    ids = physical_ids(sandbox, "waf")
    waf = sandbox.client("wafv2")
    (acl,) = waf.list_web_acls(Scope="REGIONAL")["WebACLs"]
    waf.delete_web_acl(Name=acl["Name"], Scope="REGIONAL", Id=acl["Id"], LockToken=acl["LockToken"])
    code, out, complete = destroyed_to_delete_complete(sandbox, run, "waf")
    assert code == 0 and complete, out
    code, out, err = run("purge", "--stack", "waf")  # no terminal, no YES=1: the list alone
    assert code == 1 and f"LogGroup (AWS::Logs::LogGroup) {ids['LogGroup']}: delete" in out, out + err


@pytest.mark.parametrize("deleted", ["scalable target", "scaling policy"])
def test_a_scaling_stack_whose_target_or_policy_was_deleted_by_hand_is_destroyed(sandbox, run, deleted):
    # Application Auto Scaling's models answered a ValidationException, and a StopIteration (an HTTP 500), for one gone
    deployed_through(sandbox, run, "scaling")
    scaling = sandbox.client("application-autoscaling")
    policy = scaling.describe_scaling_policies(ServiceNamespace="ecs")["ScalingPolicies"][0]
    where = {key: policy[key] for key in ("ServiceNamespace", "ResourceId", "ScalableDimension")}
    if deleted == "scaling policy":
        scaling.delete_scaling_policy(PolicyName=policy["PolicyName"], **where)
    else:
        scaling.deregister_scalable_target(**where)
    code, out, complete = destroyed_to_delete_complete(sandbox, run, "scaling")
    assert code == 0 and complete, out


def test_a_stack_whose_deletion_fails_ends_delete_failed_naming_the_resource_and_is_destroyed_once_freed(sandbox, run):
    # A security group another group's rule names cannot be deleted (DependencyViolation): the sandbox's DeleteStack
    # answered that error and lost the stack; AWS's deletion ends DELETE_FAILED, the stack there, naming what failed.
    deployed_through(sandbox, run, "alb")
    ec2 = sandbox.client("ec2")
    alb_group = physical_ids(sandbox, "alb")["AlbSecurityGroup"]
    vpc = ec2.describe_security_groups(GroupIds=[alb_group])["SecurityGroups"][0]["VpcId"]
    theirs = ec2.create_security_group(GroupName="another-teams", Description="names the alb's group", VpcId=vpc)["GroupId"]
    rule = {"IpProtocol": "tcp", "FromPort": 8000, "ToPort": 8000, "UserIdGroupPairs": [{"GroupId": alb_group}]}
    ec2.authorize_security_group_ingress(GroupId=theirs, IpPermissions=[rule])
    code, out, complete = destroyed_to_delete_complete(sandbox, run, "alb")
    assert code == 1 and not complete, out
    found = sandbox.client("cloudformation").describe_stacks(StackName=stack("alb"))["Stacks"][0]
    assert found["StackStatus"] == "DELETE_FAILED", found
    assert "AlbSecurityGroup" in out and "DELETE_FAILED" in out, out
    assert f"then destroy it again: make destroy STACK=alb ENV={ENV}" in out, out  # the command, as printed, works (below)
    # half deleted: not "in sync" (its target groups, which the sandbox's drift checks, are gone), and the way on is the
    # destroy again, not a console (the sandbox has none, and AWS deletes such a stack or nothing)
    destroy = f"make destroy ENV={ENV} STACK=<layer> for {', '.join(templates.destroy_order('alb'))}, in that order"
    code, out, err = run("drift", "--stack", "alb")
    assert code == 2 and "in sync" not in out and destroy in out, out + err
    code, out, err = run("deploy", "--stack", "alb", "--yes")
    assert code == 1 and "console" not in err and destroy in err, out + err
    ec2.revoke_security_group_ingress(GroupId=theirs, IpPermissions=[rule])
    code, out, complete = destroyed_to_delete_complete(sandbox, run, "alb")
    assert code == 0 and complete, out


def test_a_key_its_stack_deleted_is_scheduled_for_deletion_and_can_be_got_back_as_the_review_says(sandbox, run):
    # the review: "KMS deletes AlertTopicKey only 30 days later ..., and `aws kms cancel-key-deletion`, then
    # `aws kms enable-key`, undo that until then"; the sandbox deleted it at once
    deployed_through(sandbox, run, "release-alarms")
    key_id = physical_ids(sandbox, "release-alarms")["AlertTopicKey"]
    code, out, err = run("destroy", "--stack", "release-alarms", "--yes")
    assert code == 0, out + err
    metadata = key_state(sandbox, key_id)
    assert metadata["KeyState"] == "PendingDeletion", metadata
    assert timedelta(days=29) < metadata["DeletionDate"] - datetime.now(UTC) <= timedelta(days=30)
    kms = sandbox.client("kms")
    kms.cancel_key_deletion(KeyId=key_id)
    kms.enable_key(KeyId=key_id)
    assert key_state(sandbox, key_id)["KeyState"] == "Enabled"


def test_a_half_deleted_layer_others_read_is_destroyed_with_them_in_the_order_said_and_deployed_again(sandbox, run):
    # alb's deletion, started outside the tool, stops DELETE_FAILED while service reads alb's outputs: "make destroy
    # STACK=alb again" was refused (service still reads it), and "then deploy service again" needed alb first.
    deployed_through(sandbox, run, "service")
    running = f"not-{SANDBOX.values['ImageTag']}"  # a release of its own, not params' ImageTag
    assert run("deploy", "--stack", "service", "--image-tag", running, "--yes")[0] == 0
    cf, ec2 = sandbox.client("cloudformation"), sandbox.client("ec2")
    alb_group = physical_ids(sandbox, "alb")["AlbSecurityGroup"]
    vpc = ec2.describe_security_groups(GroupIds=[alb_group])["SecurityGroups"][0]["VpcId"]
    theirs = ec2.create_security_group(GroupName="another-teams", Description="names the alb's group", VpcId=vpc)["GroupId"]
    rule = {"IpProtocol": "tcp", "FromPort": 8000, "ToPort": 8000, "UserIdGroupPairs": [{"GroupId": alb_group}]}
    ec2.authorize_security_group_ingress(GroupId=theirs, IpPermissions=[rule])
    cf.update_termination_protection(StackName=stack("alb"), EnableTerminationProtection=False)
    cf.delete_stack(StackName=stack("alb"))  # by hand (console, CLI)
    assert cf.describe_stacks(StackName=stack("alb"))["Stacks"][0]["StackStatus"] == "DELETE_FAILED"
    order = templates.destroy_order("alb")
    destroy = f"make destroy ENV={ENV} STACK=<layer> for {', '.join(order)}, in that order (one not deployed says so)"
    # what the destroy keeps under the names the creates need (the log groups of service and waf, where enabled) is purged
    kept = [layer for layer in order if layer in ("service", "waf") and layer in SANDBOX.layers]
    purge_first = (
        f"make purge ENV={ENV} STACK=<layer> for {', '.join(kept)} (" if len(kept) > 1 else f"make purge ENV={ENV} STACK={kept[0]} ("
    )
    again = f"then {purge_first}"  # then the deploy with the image the service runs, kept
    deploy_again = f"then make deploy ENV={ENV} TAG={running}\n"
    code, out, err = run("deploy", "--stack", "service", "--yes")
    assert code == 1 and f"free them, then destroy it and the layers that read its outputs: {destroy}, {again}" in err, out + err
    assert err.endswith(deploy_again), err
    code, out, err = run("drift", "--stack", "alb")
    assert code == 2 and f"free them, then destroy it and the layers that read its outputs: {destroy}" in out, out + err
    ec2.revoke_security_group_ingress(GroupId=theirs, IpPermissions=[rule])  # freed
    for layer in order:  # as said
        code, out, err = run("destroy", "--stack", layer, "--yes")
        assert code == 0, out + err
    for layer in kept:
        code, out, err = run("purge", "--stack", layer, "--yes")
        assert code == 0, out + err
    code, out, err = run("deploy", "--image-tag", running, "--yes")
    assert code == 0 and f"{stack('alb')}: CREATE_COMPLETE" in out, out + err
    service = cf.describe_stacks(StackName=stack("service"))["Stacks"][0]
    assert {p["ParameterKey"]: p["ParameterValue"] for p in service["Parameters"]}["ImageTag"] == running


def test_a_multi_layer_run_declined_after_an_earlier_layer_changed_does_not_say_nothing_changed(sandbox, run):
    # `make deploy` on a terminal, "y" to one layer's change set, "n" to a later one's: the summary said the earlier
    # layer was updated, and the run's last line, which a CI log reader sees, "error: not confirmed: nothing changed".
    deployed(sandbox, run)
    code, out, err = run("destroy", "--stack", "alarms", "--yes")
    assert code == 0, out + err
    answers = iter(["y", "n"])  # yes to the service's release, no to the alarms' create
    asked = []

    def ask(question):
        asked.append(question)
        return next(answers)

    out, err = io.StringIO(), io.StringIO()
    code = deploy.main(
        ["deploy", "--image-tag", "s5-declined", "--env", "sandbox"], ask=ask, interactive=True, sleep=lambda s: None, out=out, err=err
    )
    out, err = out.getvalue(), err.getvalue()
    assert code == 1 and len(asked) == 2, out + err
    assert "service (updated, " in out, out  # the summary
    last = "error: not confirmed: nothing changed in alarms; this run changed service before it (the summary above)"
    assert err.splitlines()[-1] == last, err


# From a review of f76673c: its templates read the values the deployed ones read, declared otherwise (a String for a
# Number, Fn::Sub for Fn::Join). AWS changes nothing for them (templates/resolver.py changes_nothing); the sandbox
# replaced both target groups (and make deploy refused it), and make diff would have said release-alarms differs for ever.


def output_copy(tmp_path, name, declared_before=False, tags=None):
    """A copy of output/ (its alb, service and release-alarms templates as f76673c~1 declared them, and the sandbox's
    release-alarms stack tags with tags added), and the deploy options to use it."""
    from conftest import declared_as_numbers_and_lists

    copy = tmp_path / name
    shutil.copytree(ROOT / "output", copy)
    for layer in ("alb", "service", "release-alarms") if declared_before else ():
        path = copy / f"{layer}.json"
        path.write_text(json.dumps(declared_as_numbers_and_lists(json.loads(path.read_text())), indent=2))
    if tags:
        config = copy / ENV / "release-alarms.json"
        document = json.loads(config.read_text())
        document["Tags"] |= tags
        config.write_text(json.dumps(document))
    return ("--output-dir", str(copy), "--params-dir", str(ROOT / "params"))


def test_templates_written_otherwise_to_the_same_values_are_same_as_deployed_and_deploy_quietly(sandbox, run, tmp_path):
    seeded(sandbox)
    code, out, err = run("deploy", *output_copy(tmp_path, "older", declared_before=True), "--yes")
    assert code == 0, out + err
    code, out, err = run("diff")
    assert code == 0, out + err
    for layer in ("alb", "service"):  # their resources are written as they were: parameters declared otherwise only
        assert f"{stack(layer)}: same as deployed, but for its Metadata, Description or parameter declarations" in out, out
    assert f"{stack('release-alarms')}: same as deployed, but for expressions written otherwise that give the same values" in out, out
    code, out, err = run("deploy", "--yes")
    assert code == 0, out + err
    assert all(f"{stack(layer)}: no changes" in out for layer in ("alb", "service", "release-alarms")), out


# From a review of 3b2801b (helper S5): make diff's "same as deployed, but for expressions written otherwise" replaced
# every line template_diff found, the stack tags' among them: changes_nothing compares templates and parameter values,
# not the tags a deploy sends (Deployer.update_tags applies them after the change set's "no changes"). Before 3b2801b
# make diff said "+tag Owner=platform" and exited 1.


@pytest.mark.parametrize("declared_before", [False, True], ids=["as committed", "written otherwise"])
def test_new_stack_tags_are_a_difference_make_diff_names_and_a_deploy_makes(sandbox, run, tmp_path, declared_before):
    seeded(sandbox)
    code, out, err = run("deploy", *output_copy(tmp_path, "deployed", declared_before), "--yes")
    assert code == 0, out + err
    tagged = output_copy(tmp_path, "tagged", tags={"Owner": "platform"})
    code, out, err = run("diff", *tagged)
    said = out + err
    assert code != 0 and "+tag Owner=platform" in said and "written otherwise" not in said, said
    code, out, err = run("deploy", *tagged, "--yes")  # what the deploy make diff called the same does
    assert code == 0 and "release-alarms (tags updated)" in out, out + err


# From a truth audit of today's messages (helper S9): make diff's "same as deployed, but for expressions written
# otherwise that give the same values (and its Metadata, Description or parameter declarations)" said the
# declarations differed where only an expression did (an Fn::Sub given a variable map for its ${AlertEmails}).


def test_expressions_written_otherwise_alone_are_not_said_to_change_the_declarations_too(sandbox, run, tmp_path):
    seeded(sandbox)
    options = output_copy(tmp_path, "mapped")
    path = tmp_path / "mapped" / "release-alarms.json"
    text = path.read_text()
    assert '"Fn::Sub": "${AlertEmails},,,"' in text
    path.write_text(text.replace('"Fn::Sub": "${AlertEmails},,,"', '"Fn::Sub": ["${Emails},,,", {"Emails": {"Ref": "AlertEmails"}}]'))
    code, out, err = run("deploy", *options, "--yes")
    assert code == 0, out + err
    code, out, err = run("diff", "--stack", "release-alarms")
    assert code == 0 and "expressions written otherwise" in out, out + err
    assert "Metadata, Description or parameter declarations" not in out, out


def test_a_change_set_of_the_running_service_says_nothing_of_a_new_stack(sandbox, run):
    # (review R1) the note is a create's: make changeset of an update of the service names no "new service stack"
    deployed(sandbox, run)
    code, out, err = run("changeset", "--stack", "service", "--image-tag", f"{SANDBOX.values['ImageTag']}-released")
    assert code == 0 and "left for review" in out and "the one before it last ran" not in out, out + err


# Helper RX's review of 475b899 and 3bab21f: make changeset's look at what make execute refuses; make diff's adds/removes
SHIFTING = {"DeploymentStrategy": "BLUE_GREEN", "TestListenerCidr": "10.20.0.0/16"}


def strategy_outputs(tmp_path):
    """The run options of output/ with alb and service ROLLING, and with them SHIFTING (BLUE_GREEN)."""
    alb_and_service = ("alb", "service")
    rolling = output_with_parameters(tmp_path / "rolling", dict.fromkeys(alb_and_service, {"DeploymentStrategy": "ROLLING"}))
    return rolling, output_with_parameters(tmp_path / "shifting", dict.fromkeys(alb_and_service, SHIFTING))


def test_diff_names_the_resources_a_strategy_switch_adds_and_removes(sandbox, run, tmp_path):
    # Helper RW's walk: make diff of ROLLING -> BLUE_GREEN showed two parameter lines alone, where the deploy adds a test
    # listener, its ingress rule and two listener rules (the alb template's conditions); and the way back removes them.
    rolling, shifting = strategy_outputs(tmp_path)
    seeded(sandbox)
    for layer in ("cert-dns", "alb"):  # the diff is the alb layer's: the layers it reads, not the others
        assert run("deploy", "--stack", layer, *rolling, "--yes")[0] == 0
    code, out, err = run("diff", "--stack", "alb", *shifting)
    assert code == 1, out + err
    (adds,) = [line for line in out.splitlines() if line.startswith("  a deploy adds: ")]
    for name in (
        "TestListener (AWS::ElasticLoadBalancingV2::Listener)",
        "ProductionListenerRule",
        "TestListenerRule",
        "TestListenerIngress",
    ):
        assert name in adds, adds
    assert "a deploy removes" not in out, out
    rolling = deployed_shifting(sandbox, run, tmp_path / "back")
    code, out, err = run("diff", "--stack", "alb", *rolling)
    (removes,) = [line for line in out.splitlines() if line.startswith("  a deploy removes: ")]
    assert "TestListener (AWS::ElasticLoadBalancingV2::Listener)" in removes and "a deploy adds" not in out, out


def deployed_shifting(sandbox, run, tmp_path, traffic_moved=False):
    """Every layer deployed BLUE_GREEN on a fresh seed, with production traffic left on the alternate target group
    where traffic_moved (as a release leaves it); the run options of output/ with alb and service back to ROLLING."""
    rolling, shifting = strategy_outputs(tmp_path)
    name = " ".join(["deployed every layer shifting", *run.extra])  # saved and put back as conftest.deployed's
    if not sandbox.restore(name):
        seeded(sandbox)
        assert run("deploy", *shifting, "--yes")[0] == 0
        sandbox.save(name)
    if traffic_moved:
        shift_weights(sandbox, 0, 100)
    return rolling


def shift_weights(sandbox, primary, alternate):
    outputs = {
        o["OutputKey"]: o["OutputValue"]
        for o in sandbox.client("cloudformation").describe_stacks(StackName=stack("alb"))["Stacks"][0].get("Outputs", [])
    }
    groups = [(outputs["TargetGroupArn"], primary), (outputs["AlternateTargetGroupArn"], alternate)]
    forward = {"TargetGroups": [{"TargetGroupArn": arn, "Weight": weight} for arn, weight in groups]}
    sandbox.client("elbv2").modify_rule(
        RuleArn=outputs["ProductionListenerRuleArn"], Actions=[{"Type": "forward", "ForwardConfig": forward}]
    )


def test_a_look_changeset_cannot_make_leaves_the_change_set_and_a_note_not_a_failure(sandbox, run, tmp_path, monkeypatch):
    # make changeset's look at what make execute would refuse is a look: an AccessDenied on DescribeRules (a reviewer's
    # role that makes change sets) failed a make changeset that had left its change set, where it used to succeed.
    rolling = deployed_shifting(sandbox, run, tmp_path)
    on_each_client(monkeypatch, "before-call.elastic-load-balancing-v2.DescribeRules", lambda **_: refused_answer())
    code, out, err = run("changeset", "--stack", "alb", *rolling)
    monkeypatch.undo()
    assert "left for review" in out, out + err
    assert code == 0, out + err


def test_the_traffic_reset_way_past_a_left_change_set_is_the_make_execute_that_takes_it(sandbox, run, tmp_path):
    # as things stand, make execute refuses the service's switch to ROLLING: "rerun with ALLOW_TRAFFIC_RESET=1" printed by
    # make changeset, which refuses ALLOW_TRAFFIC_RESET=1; the command that runs it is make execute ... ALLOW_TRAFFIC_RESET=1
    rolling = deployed_shifting(sandbox, run, tmp_path, traffic_moved=True)
    code, out, err = run("changeset", "--stack", "service", *rolling)
    assert code == 0, out + err
    name = re.search(r"change set (\S+) left for review", out).group(1)
    (line,) = [each for each in out.splitlines() if "as things stand, make execute refuses it" in each]
    assert "rerun with ALLOW_TRAFFIC_RESET=1" not in line, line
    # its first way on, a release of the service, deploys the stack and so ends the change set: said (helper RY)
    assert f"(the release ends this change set: make changeset STACK=service ENV={ENV} makes it anew)" in line, line
    assert f"make execute STACK=service ENV={ENV} CHANGESET={name} ALLOW_TRAFFIC_RESET=1" in line, line


def test_a_same_name_replacement_is_said_once_in_a_change_set_left_for_review(sandbox, run, tmp_path):
    # left_for_review says "CloudFormation cannot execute it: TargetGroup ... would be replaced under the same name";
    # the look at make execute's guards said it a second time, as a refusal with its own way on.
    deployed(sandbox, run, "cert-dns", "alb")
    port = str(int(SANDBOX.values["ContainerPort"]) + 1)
    code, out, err = run("changeset", "--stack", "alb", *output_with_parameter(tmp_path, "alb", "ContainerPort", port))
    assert code == 0, out + err
    said = [line for line in out.splitlines() if " TargetGroup (AWS::ElasticLoadBalancingV2::TargetGroup, its Name unchanged)" in line]
    assert said == [f"  CloudFormation cannot execute it: {said[0].split(': ', 1)[1]}"], "\n".join(said)  # left_for_review's alone


def test_the_way_past_rules_in_use_named_by_changeset_ends_with_the_change_set_it_left(sandbox, run, tmp_path):
    # Helper RW's walk of the everyday change workflow, the way back from BLUE_GREEN in the order the ops reviewer takes
    # (make changeset, review, make execute): make changeset STACK=alb made the change set that removes the listener
    # rules the deployed service still uses and printed "execute it with: make execute ..." with no word of what make
    # execute then refuses (make diff and make deploy say it).
    # "Deploy the service layer first (...), then make deploy ENV=sandbox": run as printed under make changeset, that
    # make deploy makes the alb layer's own change set and so ends the reviewed one; the way on is its make execute
    rolling = deployed_shifting(sandbox, run, tmp_path)
    code, out, err = run("changeset", "--stack", "alb", *rolling)
    assert code == 0, out + err
    name = re.search(r"change set (\S+) left for review", out).group(1)
    (line,) = [each for each in out.splitlines() if "as things stand, make execute refuses it" in each]
    assert "make execute refuses it: the change set removes the listener rules " in line, line  # not "error: refused: "
    assert f"which {stack('service')} still uses" in line, line
    assert f"make deploy STACK=service ENV={ENV}" in line, line
    assert line.rstrip().endswith(f"make execute STACK=alb ENV={ENV} CHANGESET={name}"), line


def test_a_change_set_left_for_review_that_needs_allow_replace_says_so_once(sandbox, run, tmp_path):
    # (RX: mutation audit of 475b899) say_refused_at_execute with allow_replace=False printed the stateful refusal
    # ("rerun with ALLOW_REPLACE=1") under left_for_review's own "executing needs ALLOW_REPLACE=1" lines: every test passed

    deployed(sandbox, run, "cert-dns", "alb")
    code, out, err = run("changeset", "--stack", "alb", *output_with_parameter(tmp_path, "alb", "NamePrefix", OTHER_PREFIX))
    assert code == 0 and "  executing needs ALLOW_REPLACE=1 (--allow-replace): " in out, out + err
    assert "rerun with ALLOW_REPLACE=1" not in out, out


def _added_and_removed(deployed_template, new_template, running, wanted):
    import json
    import types

    from scripts.deploy.diff import resources_added_and_removed

    deployer = types.SimpleNamespace(cf=types.SimpleNamespace(meta=types.SimpleNamespace(region_name="us-east-1")))
    layer = types.SimpleNamespace(template=json.dumps(new_template))
    return resources_added_and_removed(deployer, layer, deployed_template, running, wanted)


SHIFTS = {"ShiftsTraffic": {"Fn::Not": [{"Fn::Equals": [{"Ref": "DeploymentStrategy"}, "ROLLING"]}]}}
DECLARED = {"DeploymentStrategy": {"Type": "String"}}


def test_diff_names_no_addition_of_a_resource_whose_condition_is_false_before_and_after():
    # (RX: mutation audit of 3bab21f) "added" without its check of the new template's condition: every test passed
    template = {
        "Parameters": DECLARED,
        "Conditions": SHIFTS,
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}, "TestListener": {"Type": "AWS::SNS::Topic", "Condition": "ShiftsTraffic"}},
    }
    rolling = {"DeploymentStrategy": "ROLLING"}
    assert _added_and_removed(template, template, rolling, rolling) == []


def test_diff_names_no_removal_of_a_resource_the_deployed_stack_never_had():
    # (RX: mutation audit of 3bab21f) "removed" without its check of the deployed template's condition: a resource whose
    # condition was false (never made) and that the new template drops was said removed; every test passed
    new = {"Parameters": DECLARED, "Conditions": SHIFTS, "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}}
    old = {**new, "Resources": {**new["Resources"], "TestListener": {"Type": "AWS::SNS::Topic", "Condition": "ShiftsTraffic"}}}
    rolling = {"DeploymentStrategy": "ROLLING"}
    assert _added_and_removed(old, new, rolling, rolling) == []


# Helper RY's review of ebd05a6: the make execute a refusal names runs the change set only with the switches it needs
def test_the_make_execute_a_rules_in_use_refusal_names_keeps_the_allow_replace_the_change_set_needs(sandbox, run, tmp_path):
    deployed_shifting(sandbox, run, tmp_path)
    rolling = output_with_parameters(
        tmp_path / "renamed",
        {"alb": {"DeploymentStrategy": "ROLLING", "NamePrefix": OTHER_PREFIX}, "service": {"DeploymentStrategy": "ROLLING"}},
    )
    code, out, err = run("changeset", "--stack", "alb", *rolling)
    assert code == 0 and "  executing needs ALLOW_REPLACE=1" in out, out + err
    name = re.search(r"change set (\S+) left for review", out).group(1)
    (line,) = [each for each in out.splitlines() if "as things stand, make execute refuses it" in each]
    code, out, err = run("execute", "--stack", "alb", "--changeset", name, "--allow-replace", "--yes")
    assert code != 0 and "removes the listener rules" in out + err, out + err
    printed = re.search(r"then (make execute [^\n]*)", err).group(1)
    assert printed == f"make execute STACK=alb ENV={ENV} CHANGESET={name} ALLOW_REPLACE=1", printed


def test_a_deploy_refused_for_shifted_traffic_still_says_rerun_and_make_execute_names_its_change_set(sandbox, run, tmp_path):
    # (RY: mutants of ebd05a6) `again` dropped from make execute (deployer.execute), or given to every deploy ("None
    # ALLOW_TRAFFIC_RESET=1"): every test passed
    rolling = deployed_shifting(sandbox, run, tmp_path, traffic_moved=True)
    code, out, err = run("deploy", "--stack", "service", *rolling, "--yes")
    assert code == 1 and err.rstrip().endswith(
        "if no task serves from the alternate one, rerun with ALLOW_TRAFFIC_RESET=1 (--allow-traffic-reset)"
    ), err
    code, out, err = run("changeset", "--stack", "service", *rolling)
    name = re.search(r"change set (\S+) left for review", out).group(1)
    # executed with the values it was made with: with params/sandbox.yaml's (a traffic-shifting DeploymentStrategy there,
    # as the README allows) the refusal rightly ends saying that the change set was made with other values than today's
    code, out, err = run("execute", "--stack", "service", "--changeset", name, *rolling, "--yes")
    assert code == 1 and "; change set left for review. " in err, out + err
    assert err.rstrip().endswith(f"make execute STACK=service ENV={ENV} CHANGESET={name} ALLOW_TRAFFIC_RESET=1"), err


def test_ctrl_c_in_the_look_after_a_change_set_is_left_names_that_change_set_not_a_new_one(sandbox, run, tmp_path, monkeypatch):
    # (RZ1) Ctrl-C during say_refused_at_execute's reads (DescribeRules), once "left for review" was printed: the run said
    # "to go on: the same command again (it makes a new change set)", where the change set it left is there to execute.
    rolling = deployed_shifting(sandbox, run, tmp_path)

    def stop(**_):
        raise KeyboardInterrupt

    on_each_client(monkeypatch, "before-call.elastic-load-balancing-v2.DescribeRules", stop)
    code, out, err = run("changeset", "--stack", "alb", *rolling)
    monkeypatch.undo()
    name = re.search(r"change set (\S+) left for review", out).group(1)
    assert code == 130, out + err
    sandbox.client("cloudformation").describe_change_set(StackName=templates.stack_name(ENV, "alb"), ChangeSetName=name)  # still there
    assert "it makes a new change set" not in err, err
    assert name in err, err


def test_a_rollback_stopped_as_it_frees_the_lock_once_done_says_it_is_done_and_that_another_goes_one_release_further(
    sandbox, run, monkeypatch
):
    """Helper P2: Ctrl-C while a finished rollback freed its lock (held until the lock is freed, then acted on) ended
    with `interrupted` alone, exit 130: the rollback done and recorded, said nowhere as such; the natural retry, make
    rollback again, then rolled back one release further (as the stopped-after-its-update case says)."""
    import os
    import signal

    first = released_twice(sandbox, run)
    lock = f"/{templates.PROJECT}/{ENV}/deploy-lock"

    def ctrl_c_as_the_lock_is_freed(params, **_):
        if params.get("Name") == lock:
            os.kill(os.getpid(), signal.SIGINT)  # as a Ctrl-C: held until the lock is freed

    on_each_client(monkeypatch, "provide-client-params.ssm.DeleteParameter", ctrl_c_as_the_lock_is_freed)
    code, out, err = run("rollback", "--stack", "service", "--yes")
    monkeypatch.undo()
    (found,) = sandbox.client("cloudformation").describe_stacks(StackName=stack("service"))["Stacks"]
    assert {p["ParameterKey"]: p["ParameterValue"] for p in found["Parameters"]}["ImageTag"] == f"{first}-one"  # done
    assert f"make rollback ENV={ENV} again would roll back from {first}-one" in out + err, out + err


@pytest.mark.parametrize("command", ["rollback", "deploy"])
def test_a_service_command_refused_for_an_alb_stuck_in_a_failed_rollback_names_itself_as_the_way_on(sandbox, run, tmp_path, command):
    """Helper P2: make rollback (or a release, make deploy STACK=service TAG=...) refused while the alb stack is
    UPDATE_ROLLBACK_FAILED ended its way on with ", then deploy service again": no command to copy, and for a
    rollback the wrong one (make deploy STACK=service keeps the running image: the bad release stays). The way on
    is the command that was refused, run again (with its TAG=, which a deploy without it would drop)."""
    deployed(sandbox, run)
    first = SANDBOX.values["ImageTag"]
    assert run("deploy", "--stack", "service", "--image-tag", f"{first}-bad", "--yes")[0] == 0
    # The alb layer stuck: an update that fails (a security group that does not exist) while the group its rollback
    # puts the ingress rule back into was deleted by hand.
    sandbox.client("ec2").delete_security_group(GroupId=SANDBOX.values["BackendSecurityGroupId"])
    missing = "sg-0123456789abcdef0"
    code, out, err = run("deploy", "--stack", "alb", *output_with_parameter(tmp_path, "alb", "BackendSecurityGroupId", missing), "--yes")
    assert code == 1 and "UPDATE_ROLLBACK_FAILED" in err, out + err
    argv = ["rollback", "--stack", "service"] if command == "rollback" else ["deploy", "--stack", "service", "--image-tag", f"{first}-fix"]
    code, out, err = run(*argv, "--yes")
    assert code == 1 and f"reads {stack('alb')}, which is UPDATE_ROLLBACK_FAILED" in err, out + err
    assert "deploy service again" not in err, err
    assert err.rstrip().endswith(", then run this command again"), err


def test_a_release_stopped_in_its_wait_says_at_once_that_it_frees_the_lock_before_aws_answers(sandbox, run, monkeypatch):
    """Helper P2: Ctrl-C in a release's wait, AWS (the sandbox, paused) not answering: nothing was said until the lock's
    GetParameter had gone unanswered (20 s a try), then only `the sandbox not answering GetParameter ...: retry 1 of 4`
    lines, for up to about 2 minutes, before the run said it was interrupted, what CloudFormation does, and how to
    follow it. A run stopped while it takes the lock says at once that it is freeing it and that Ctrl-C again stops at
    once (README, Faults); one stopped in its wait should too, before the lock's first unanswered request."""
    from botocore.exceptions import ReadTimeoutError

    deployed(sandbox, run)
    executed, unanswered = [], []
    on_each_client(monkeypatch, "after-call.cloudformation.ExecuteChangeSet", lambda **_: executed.append(True))

    def ctrl_c_in_the_wait(**_):
        if executed:
            raise KeyboardInterrupt

    def the_lock_unanswered_once(request, **_):
        if executed and b"deploy-lock" in (request.body or b"") and not unanswered:
            unanswered.append(True)
            raise ReadTimeoutError(endpoint_url=sandbox.environment()["AWS_ENDPOINT_URL"])

    on_each_client(monkeypatch, "before-call.cloudformation.DescribeStacks", ctrl_c_in_the_wait)
    on_each_client(monkeypatch, "before-send.ssm.GetParameter", the_lock_unanswered_once)
    code, out, err = run("deploy", "--stack", "service", "--image-tag", f"{SANDBOX.values['ImageTag']}-stopped", "--yes")
    monkeypatch.undo()
    assert code == 130 and unanswered, out + err
    lines = err.splitlines()
    (retry,) = [index for index, line in enumerate(lines) if "not answering GetParameter" in line]
    assert any("lock" in line for line in lines[:retry]), err


def test_releases_says_when_the_running_image_is_in_no_release_as_make_rollback_then_asks_for_tag(sandbox, run, monkeypatch):
    """Helper P2: after a release left unrecorded (its run stopped in the wait, as its own message warns, or its
    history write refused), make releases listed the history with the previous release on top and `... runs image
    <new>` below, saying nothing; make rollback, which the list is said to show the history of, then refused: no release
    names the running image, name one with TAG=. The last line should say so, as the list's entries do for a release
    out of order."""
    deployed(sandbox, run)
    history = f"/{templates.PROJECT}/{ENV}/service/releases"
    new = f"{SANDBOX.values['ImageTag']}-unrecorded"

    def refused(params, **_):
        if params.get("Name") == history:
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "not allowed"}}, "PutParameter")

    on_each_client(monkeypatch, "provide-client-params.ssm.PutParameter", refused)
    run("deploy", "--stack", "service", "--image-tag", new, "--yes")
    monkeypatch.undo()
    code, out, err = run("rollback", "--stack", "service")
    assert code == 1 and "which no release in the history" in err, out + err
    code, out, err = run("releases")
    assert code == 0, out + err
    last = out.splitlines()[-1]
    assert last.startswith(f"{stack('service')} runs image {new}") and "TAG=" in last, out


@pytest.mark.parametrize("stop", ["SIGINT", "SIGTERM"])
def test_a_second_stop_right_after_the_first_while_aws_answers_still_frees_the_lock(sandbox, run, monkeypatch, stop):
    """Helper P4: the frantic double Ctrl-C (or a CI cancel's SIGTERM twice), the second ~50 ms after the first, lands in
    the lock's release, whose requests take a normal AWS round trip (50-100 ms). Since 77b8941 the release after a stop is
    not held, so that second stop ends it: the lock stays held (exit 130, make unlock needed) on an endpoint that answers.
    Measured (sandbox, 50-100 ms per request, second stop 50-200 ms after the first): 7 of 12 runs left the lock held;
    12 of 12 freed it before 77b8941. A stop that comes with the first, not after a wait for AWS, is no decision to
    leave the lock held."""
    import os
    import signal
    import threading

    from templates.errors import terminated

    deployed(sandbox, run)
    lock = f"/{templates.PROJECT}/{ENV}/deploy-lock"
    number = getattr(signal, stop)
    executed, taps = [], []
    on_each_client(monkeypatch, "after-call.cloudformation.ExecuteChangeSet", lambda **_: executed.append(True))

    def first_tap_in_the_wait(**_):
        if executed and not taps:
            taps.append(time.monotonic())
            os.kill(os.getpid(), number)

    def second_tap_as_the_release_asks(request, **_):
        if taps and len(taps) == 1 and b"deploy-lock" in (request.body or b""):
            taps.append(time.monotonic())
            threading.Timer(0.05, lambda: os.kill(os.getpid(), number)).start()  # the second tap, 50 ms on
            time.sleep(0.1)  # a normal AWS round trip: the answer comes after it

    on_each_client(monkeypatch, "before-call.cloudformation.DescribeStacks", first_tap_in_the_wait)
    on_each_client(monkeypatch, "before-send.ssm.GetParameter", second_tap_as_the_release_asks)
    previous = signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, terminated)  # as the entry point takes it (templates.errors.stop_signals_as_ctrl_c)
    try:
        code, out, err = run("deploy", "--stack", "service", "--image-tag", f"{SANDBOX.values['ImageTag']}-tapped", "--yes")
        time.sleep(0.2)  # the timer's signal, had it come after the run
    except KeyboardInterrupt:
        code, out, err = None, "", "the second stop came after the run"
    finally:
        signal.signal(signal.SIGTERM, previous)
        monkeypatch.undo()
    try:
        sandbox.client("ssm").get_parameter(Name=lock)
        held = True
        sandbox.client("ssm").delete_parameter(Name=lock)  # for the tests that follow
    except ClientError:
        held = False
    assert code == 130 and len(taps) == 2, out + err
    assert not held and "may be held" not in err and "make unlock" not in err, err


def test_releases_while_a_release_holding_the_lock_is_under_way_raises_no_false_alarm(sandbox, run, monkeypatch):
    """Helper P4: make releases run while a make deploy STACK=service TAG=... is in its wait (the lock held, its record
    not yet written: it is written when the wait ends) said of the image being released `which no release in the
    history names: it was released outside make deploy, or its release was not recorded: make rollback asks for
    TAG=<image tag>`. Neither is so: the release is recorded at its end, and make rollback then goes back without
    TAG=. (On AWS the window is the whole update, minutes; on the sandbox, the wait's first poll.)"""
    import os
    import subprocess
    import sys

    deployed(sandbox, run)
    new = f"{SANDBOX.values['ImageTag']}-under-way"
    executed, seen = [], []
    on_each_client(monkeypatch, "after-call.cloudformation.ExecuteChangeSet", lambda **_: executed.append(True))
    environ = {**os.environ, **sandbox.environment(), "AWS_EC2_METADATA_DISABLED": "true"}

    def releases_meanwhile(**_):
        if executed and not seen:
            argv = [sys.executable, "-m", "scripts.deploy", "releases", "--env", ENV]
            seen.append(subprocess.run(argv, cwd=ROOT, env=environ, capture_output=True, text=True, timeout=60))

    on_each_client(monkeypatch, "before-call.cloudformation.DescribeStacks", releases_meanwhile)
    code, out, err = run("deploy", "--stack", "service", "--image-tag", new, "--yes")
    monkeypatch.undo()
    assert code == 0 and seen, out + err
    (listed,) = seen
    assert listed.returncode == 0, listed.stdout + listed.stderr
    line = listed.stdout.splitlines()[-1]
    assert line.startswith(f"{stack('service')} runs image {new}"), listed.stdout
    assert "released outside make deploy" not in line, line
    assert run("releases")[1].splitlines()[-1] == f"{stack('service')} runs image {new}"  # recorded once the deploy ended


def test_a_rollback_stopped_as_its_connections_are_closed_once_done_says_it_is_done(sandbox, run, monkeypatch):
    """Helper P4: after 77b8941, a finished rollback stopped as it frees its lock says it had finished and that the
    rollback is done and recorded; one stopped a moment later, as main closes the run's connections (stops held there,
    acted on after), still ended with `interrupted` alone, exit 130, its lock freed and nothing saying the rollback was
    done: the bare word that led to a second rollback, one release further."""
    import os
    import signal

    from scripts.deploy import deployer as deployer_module

    first = released_twice(sandbox, run)
    close, stopped = deployer_module.Deployer.close, []

    def stopped_while_closing(self):
        if not stopped:
            stopped.append(True)
            os.kill(os.getpid(), signal.SIGINT)  # held until the connections are closed (main's stops_held)
        return close(self)

    monkeypatch.setattr(deployer_module.Deployer, "close", stopped_while_closing)
    code, out, err = run("rollback", "--stack", "service", "--yes")
    monkeypatch.undo()
    (found,) = sandbox.client("cloudformation").describe_stacks(StackName=stack("service"))["Stacks"]
    assert {p["ParameterKey"]: p["ParameterValue"] for p in found["Parameters"]}["ImageTag"] == f"{first}-one"  # done
    assert stopped and code == 130, out + err
    assert err.splitlines()[-1] != "interrupted", err
    assert f"make rollback ENV={ENV} again would roll back from {first}-one" in out + err, out + err


def test_a_finished_rollback_stopped_twice_as_it_frees_the_lock_ends_with_make_unlock(sandbox, run, monkeypatch):
    """Helper P4: a finished rollback stopped twice while it frees its lock (the second acting at once, the lock left
    held) ended with `interrupted as its lock was freed, once make rollback had finished (above): the rollback to ... is
    done and recorded: make rollback ENV=... again would roll back from ... too`: the lock was not freed, and the last
    line, which a run a stop ended follows with `first: ... make unlock ENV=...`, leaves that to the warning above."""
    import os
    import signal

    first = released_twice(sandbox, run)
    lock = f"/{templates.PROJECT}/{ENV}/deploy-lock"
    recorded, sent = [], []
    on_each_client(monkeypatch, "after-call.ssm.PutParameter", lambda **_: recorded.append(True))

    def stopped_twice_as_the_lock_is_freed(params, **_):
        if recorded and params.get("Name") == lock and not sent:
            sent.append(True)
            os.kill(os.getpid(), signal.SIGINT)  # held until the lock is freed
            os.kill(os.getpid(), signal.SIGINT)  # acts at once: the lock may be held

    on_each_client(monkeypatch, "provide-client-params.ssm.GetParameter", stopped_twice_as_the_lock_is_freed)
    code, out, err = run("rollback", "--stack", "service", "--yes")
    monkeypatch.undo()
    try:
        sandbox.client("ssm").get_parameter(Name=lock)
        sandbox.client("ssm").delete_parameter(Name=lock)  # for the tests that follow
    except ClientError:
        pass
    assert sent and code == 130 and f"warning: {lock} may be held by this run" in err, out + err
    assert f"make rollback ENV={ENV} again would roll back from {first}-one" in out + err, out + err
    assert err.splitlines()[-1] == f"  first: {lock} may still be held by this run (the warning above); make unlock ENV={ENV}", err


def test_purge_after_the_layer_was_deployed_again_frees_what_the_destroyed_stack_kept_and_leaves_what_the_new_one_holds(sandbox, run):
    """Helper T2: destroyed, its log group deleted by hand (so that the create goes on), the service deployed again:
    the key the destroyed stack retained is left in the account, and `make purge STACK=service` only said "destroy first
    (make destroy ... for alarms, scaling, service)": the live layer to go, to free a key it no longer uses, and the key
    itself unnamed (after 90 days CloudFormation forgets the deleted stack, and no purge ever finds it)."""
    kept = deploy_and_destroy(sandbox, run)
    key = kept["service"]["LogKey"]
    for name in RETAINED_LOGS:
        sandbox.client("logs").delete_log_group(logGroupName=name)  # freed by hand, not by purge
    code, out, err = run("deploy", "--yes")
    assert code == 0, out + err
    code, out, err = run("purge", "--stack", "service", "--yes")
    assert code == 0 and f"LogKey (AWS::KMS::Key) {key}: deletion scheduled for " in out, out + err
    assert key_state(sandbox, key)["KeyState"] == "PendingDeletion"
    assert "make destroy" not in out + err, out + err  # a layer deployed again is not destroyed to tidy up after its predecessor
    # the new stack's log group, of the name the old one had, is that stack's: not the retained one, not listed, left
    assert SERVICE_LOGS not in out and SERVICE_LOGS in log_group_names(sandbox), out
    assert sandbox.client("cloudformation").describe_stacks(StackName=stack("service"))["Stacks"][0]["StackStatus"].endswith("_COMPLETE")


@pytest.mark.parametrize("under", ["no key", "another team's key"])
def test_purge_leaves_a_log_group_of_the_layers_name_that_a_hand_made_stack_with_the_tools_tags_made(sandbox, run, under):
    """Helpers T2 and T4: README (Destroy and create again) says a stack of the layer's name made by hand, with the tool's
    tags and logical ids, retains nothing purge takes. One whose template is not the layer's (a bare log group under the
    layer's name, under no key or another team's) retained it, and purge deleted it with its logs: it checked the tags,
    the logical id, the type and the name, not that the log group is the one the layer's template makes (encrypted by
    the LogKey the same stack retained)."""
    deploy_and_destroy(sandbox, run)
    code, out, err = run("purge", "--yes")
    assert code == 0, out + err
    properties = {"LogGroupName": SERVICE_LOGS}
    if under != "no key":
        properties["KmsKeyId"] = sandbox.client("kms").create_key(Description=under)["KeyMetadata"]["Arn"]
    body = {"Resources": {"LogGroup": {"Type": "AWS::Logs::LogGroup", "DeletionPolicy": "Retain", "Properties": properties}}}
    tags = [{"Key": key, "Value": value} for key, value in templates.own_tags(ENV, "service").items()]
    cf = sandbox.client("cloudformation")
    cf.create_stack(StackName=stack("service"), TemplateBody=json.dumps(body), Tags=tags)
    cf.delete_stack(StackName=stack("service"))
    assert SERVICE_LOGS in log_group_names(sandbox)
    code, out, err = run("purge", "--stack", "service", "--yes")
    assert code == 0, out + err
    assert SERVICE_LOGS in log_group_names(sandbox), out + err
    said = f"under the key {properties['KmsKeyId']}" if under != "no key" else "under no KMS key"
    assert f"{SERVICE_LOGS}: left: it is {said}, where output/service.json encrypts it with the LogKey its stack retained" in out, out


def test_a_key_whose_deletion_was_cancelled_after_a_purge_is_not_scheduled_again_by_the_next(sandbox, run):
    """Helper T2: purge schedules a retained key's deletion and prints the line that undoes it (cancel-key-deletion &&
    enable-key), for whoever finds the key still needed (README: such failures are the sign to cancel). Undone so, and
    the key used again, the next `make purge` (a CI job's, YES=1) listed it as any other and scheduled its deletion again,
    with no word that someone had taken it back."""
    kept = deploy_and_destroy(sandbox, run)
    key = kept["service"]["LogKey"]
    code, out, err = run("purge", "--stack", "service", "--yes")
    assert code == 0 and key_state(sandbox, key)["KeyState"] == "PendingDeletion", out + err
    kms = sandbox.client("kms")
    kms.cancel_key_deletion(KeyId=key)
    kms.enable_key(KeyId=key)  # as purge's own line undoes it
    kms.encrypt(KeyId=key, Plaintext=b"data of whoever needed the key")
    code, out, err = run("purge", "--stack", "service", "--yes")
    assert code == 0, out + err
    assert key_state(sandbox, key)["KeyState"] == "Enabled", out + err
    # named as left: its deletion was cancelled since a purge scheduled it, with the command that schedules it again
    assert f"LogKey (AWS::KMS::Key) {key}: left: make purge scheduled its deletion ({deploy.purge.PURGE_MARK} " in out, out
    assert f"kms untag-resource --key-id {key} --tag-keys {deploy.purge.PURGE_MARK}, then make purge again" in out, out


@pytest.mark.parametrize("code", ["ThrottlingException", "KMSInternalException", "AccessDeniedException"])
def test_a_key_whose_scheduling_was_refused_is_scheduled_by_the_next_purge(sandbox, run, monkeypatch, code):
    """Helper T4: purge tags a key startupwebapp:purge-scheduled, then schedules its deletion. ScheduleKeyDeletion refused
    (throttled past retries, KMS's 500, a missing permission since granted): purge says `failed` and exit 1, as for any
    refusal the next purge tries again. But the tag stays, and the next purge left the key for good ("cancelled since by
    someone who needs it, or that purge stopped right before scheduling it"), never scheduling it: a key of a destroyed
    stack left in the account, billed, that no purge takes once CloudFormation forgets the stack."""
    kept = deploy_and_destroy(sandbox, run)
    key = kept["service"]["LogKey"]

    def refused(params, **_):
        return refused_answer(code, 400 if code != "KMSInternalException" else 500)

    on_each_client(monkeypatch, "before-call.kms.ScheduleKeyDeletion", refused)
    code_, out, err = run("purge", "--stack", "service", "--yes")
    monkeypatch.undo()
    assert code_ == 1 and f"  failed: LogKey (AWS::KMS::Key) {key}: {code}: not allowed" in out, out + err
    assert key_state(sandbox, key)["KeyState"] == "Enabled"
    code_, out, err = run("purge", "--stack", "service", "--yes")  # the refusal over: what was left is done
    assert code_ == 0 and key_state(sandbox, key)["KeyState"] == "PendingDeletion", out + err


def test_a_purge_stopped_at_a_keys_scheduling_asks_for_the_key_again_as_it_says(sandbox, run, monkeypatch):
    """Helper T4: AWS out of reach at ScheduleKeyDeletion (no answer: the call never landed): purge says "stopped: make purge
    ... lists what is left of these and asks again". The next purge listed the key as left ("that purge stopped right
    before scheduling it") and asked nothing for it: the tag purge put on it before the call outlived a call that never ran."""
    from botocore.exceptions import ReadTimeoutError

    kept = deploy_and_destroy(sandbox, run)
    key = kept["service"]["LogKey"]

    def unreachable(**_):  # raised before the request is sent: the deletion was never asked for
        raise ReadTimeoutError(endpoint_url=sandbox.endpoint)

    on_each_client(monkeypatch, "before-call.kms.ScheduleKeyDeletion", unreachable)
    code, out, err = run("purge", "--stack", "service", "--yes")
    monkeypatch.undo()
    assert code == 1 and out.splitlines()[-1] == f"stopped: make purge ENV={ENV} STACK=service lists what is left of these and asks again"
    assert key_state(sandbox, key)["KeyState"] == "Enabled"
    code, out, err = run("purge", "--stack", "service", "--yes")  # as said
    assert code == 0 and key_state(sandbox, key)["KeyState"] == "PendingDeletion", out + err


def test_a_purge_stopped_by_ctrl_c_at_a_keys_scheduling_makes_no_more_calls_and_the_next_says_how_to_hand_it_back(
    sandbox, run, monkeypatch
):
    # Ctrl-C stops at once (often because AWS does not answer): no DescribeKey or UntagResource in its way out. The mark
    # stays on the key, not pending deletion: the next purge leaves it with the untag that hands it back, which does.
    kept = deploy_and_destroy(sandbox, run)
    key, after = kept["service"]["LogKey"], []

    def stopped(**_):
        raise KeyboardInterrupt

    on_each_client(monkeypatch, "before-call.kms.ScheduleKeyDeletion", stopped)
    on_each_client(
        monkeypatch, "before-call.kms.*", lambda event_name, **_: after.append(event_name) if after or "Schedule" in event_name else None
    )
    code, out, err = run("purge", "--stack", "service", "--yes")
    monkeypatch.undo()
    assert code == 130 and after == ["before-call.kms.ScheduleKeyDeletion"], (after, out + err)
    assert key_state(sandbox, key)["KeyState"] == "Enabled"
    code, out, err = run("purge", "--stack", "service", "--yes")
    untag = f"kms untag-resource --key-id {key} --tag-keys {deploy.purge.PURGE_MARK}, then make purge again"
    assert code == 0 and untag in out and key_state(sandbox, key)["KeyState"] == "Enabled", out + err
    sandbox.client("kms").untag_resource(KeyId=key, TagKeys=[deploy.purge.PURGE_MARK])  # as said
    code, out, err = run("purge", "--stack", "service", "--yes")
    assert code == 0 and key_state(sandbox, key)["KeyState"] == "PendingDeletion", out + err


def test_purge_leaves_a_log_group_whose_key_changed_between_the_list_and_its_deletion(sandbox, run, monkeypatch):
    """Helper T4 (mutation audit of purge_each): the look right before a log group's deletion asks other_key again (a key
    associated with it while the question was open). With that second ask taken out, every test passed."""
    from scripts.deploy import purge

    kept = deploy_and_destroy(sandbox, run)
    look, looked = purge.INSPECT["AWS::Logs::LogGroup"], []

    def another_key_the_second_time(clients, item):
        answer = look(clients, item)
        if item.physical_id == SERVICE_LOGS:
            looked.append(True)
            if len(looked) == 2:  # AssociateKmsKey meanwhile (the sandbox lacks it): the group is under another key now
                item.facts["kms"] = "arn:aws:kms:us-east-1:123456789012:key/00000000-0000-0000-0000-000000000000"
        return answer

    monkeypatch.setitem(purge.INSPECT, "AWS::Logs::LogGroup", another_key_the_second_time)
    code, out, err = run("purge", "--stack", "service", "--yes")
    monkeypatch.undo()
    assert len(looked) == 2 and SERVICE_LOGS in log_group_names(sandbox), out + err
    assert f"  LogGroup (AWS::Logs::LogGroup) {SERVICE_LOGS}: left: it changed since it was listed (it is under the key " in out, out
    assert key_state(sandbox, kept["service"]["LogKey"])["KeyState"] == "Enabled", out  # its stack's log group stays: its key too


def deployed_again_after_destroy(sandbox, run) -> str:
    """Every layer deployed, destroyed, its retained log groups deleted by hand and every layer deployed again; the key
    the destroyed service stack retained."""
    kept = deploy_and_destroy(sandbox, run)
    for name in RETAINED_LOGS:
        sandbox.client("logs").delete_log_group(logGroupName=name)  # freed by hand, so that the create goes on
    code, out, err = run("deploy", "--yes")
    assert code == 0, out + err
    return kept["service"]["LogKey"]


def imports(key, when):
    """An after-call hook of ListStackResources: the sandbox imports nothing, so the live stack's list is made to name
    the key as IMPORT_COMPLETE, from when when() is true."""

    def imported(parsed, **_):
        rows = parsed.get("StackResourceSummaries") or []
        if when() and rows and not any(row["ResourceStatus"].startswith("DELETE_") for row in rows):
            rows.append(
                rows[0]
                | {"LogicalResourceId": "ImportedKey", "ResourceType": "AWS::KMS::Key"}
                | {"PhysicalResourceId": key, "ResourceStatus": "IMPORT_COMPLETE"}
            )

    return imported


def test_purge_leaves_a_retained_key_that_a_stack_there_now_imported(sandbox, run, monkeypatch):
    """Helper T7 (mutation audit of purge): a resource a deleted stack retained and that the layer's stack there now holds
    (imported into it) is that stack's, whatever else purge finds: left, never scheduled. With purge() keeping the action of
    such a resource (only its note changed), every test passed and the live stack's key was scheduled for deletion."""
    key = deployed_again_after_destroy(sandbox, run)
    on_each_client(monkeypatch, "after-call.cloudformation.ListStackResources", imports(key, when=lambda: True))
    code, out, err = run("purge", "--stack", "service", "--yes")
    monkeypatch.undo()
    assert code == 0 and f"LogKey (AWS::KMS::Key) {key}: left: {stack('service')}, there now, holds it (imported)" in out, out + err
    assert key_state(sandbox, key)["KeyState"] == "Enabled", out


def test_purge_leaves_a_retained_key_a_stack_there_now_imported_while_the_question_was_open(sandbox, run, monkeypatch):
    """The stacks there now are read again once the question is answered: a key imported into one of them meanwhile is
    that stack's, left and said so, never scheduled."""
    key = deployed_again_after_destroy(sandbox, run)
    sandbox.client("logs").delete_log_group(logGroupName=SERVICE_LOGS)  # the new stack's own: the old key is the one to schedule
    answered = []
    confirm = deployer.Deployer.confirm

    def answer(self, question, refusal):
        confirm(self, question, refusal)
        answered.append(question)

    monkeypatch.setattr(deployer.Deployer, "confirm", answer)
    on_each_client(monkeypatch, "after-call.cloudformation.ListStackResources", imports(key, when=lambda: bool(answered)))
    code, out, err = run("purge", "--stack", "service", "--yes")
    monkeypatch.undo()
    assert answered and f"LogKey (AWS::KMS::Key) {key}: schedule its deletion" in out, out + err
    assert (
        code == 0
        and f"  LogKey (AWS::KMS::Key) {key}: left: it changed since it was listed ({stack('service')}, there now, holds it (imported))"
        in out.splitlines()
    ), out + err
    assert key_state(sandbox, key)["KeyState"] == "Enabled", out


def test_purge_leaves_a_named_type_the_layers_configuration_gives_no_name(sandbox, run, monkeypatch):
    """Helper T7 (mutation audit of purge): where output/<env>/<layer>.json gives the layer no name of a retained log group's
    type (an empty set, not None: the layer is configured), the retained one is no name of the layer's: left, with its key.
    With that check skipped for an empty set, every test passed and both were purged."""
    from scripts.deploy import purge

    kept = deploy_and_destroy(sandbox, run)
    names = purge.layer_names
    monkeypatch.setattr(purge, "layer_names", lambda deployer, layer: set() if layer == "service" else names(deployer, layer))
    code, out, err = run("purge", "--stack", "service", "--yes")
    monkeypatch.undo()
    assert (
        code == 0
        and f"LogGroup (AWS::Logs::LogGroup) {SERVICE_LOGS}: left: output/{ENV}/service.json gives the layer's AWS::Logs::LogGroup no name"
        in out
    ), out + err
    assert SERVICE_LOGS in log_group_names(sandbox), out
    assert key_state(sandbox, kept["service"]["LogKey"])["KeyState"] == "Enabled", out  # its log group stays: its key too


def test_a_keys_scheduling_whose_answer_was_lost_keeps_its_mark_and_a_cancel_since_is_honoured(sandbox, run, monkeypatch):
    """Helper T7 (mutation audit of _schedule_key_deletion): ScheduleKeyDeletion landed and its answer was lost (no answer
    in time). The key is PendingDeletion: its purge-scheduled tag must stay, so that a cancel by whoever needs the key is
    honoured by the next purge. With the tag taken off whatever the key's state, every test passed, and the next purge
    scheduled the key that had been taken back."""
    from botocore.exceptions import ReadTimeoutError

    from scripts.deploy import purge

    kept = deploy_and_destroy(sandbox, run)
    key = kept["service"]["LogKey"]

    def lost(**_):  # raised once the call is answered: the deletion was scheduled, its answer never came
        raise ReadTimeoutError(endpoint_url=sandbox.endpoint)

    on_each_client(monkeypatch, "after-call.kms.ScheduleKeyDeletion", lost)
    code, out, err = run("purge", "--stack", "service", "--yes")
    monkeypatch.undo()
    kms = sandbox.client("kms")
    assert code == 1 and key_state(sandbox, key)["KeyState"] == "PendingDeletion", out + err
    assert purge.PURGE_MARK in {tag["TagKey"] for tag in kms.list_resource_tags(KeyId=key)["Tags"]}, out + err
    kms.cancel_key_deletion(KeyId=key)  # someone needs it
    kms.enable_key(KeyId=key)
    code, out, err = run("purge", "--stack", "service", "--yes")
    assert code == 0 and key_state(sandbox, key)["KeyState"] == "Enabled", out + err
    assert f"LogKey (AWS::KMS::Key) {key}: left: make purge scheduled its deletion ({purge.PURGE_MARK} " in out, out
