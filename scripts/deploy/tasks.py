"""One-off tasks (`make task CMD="python manage.py migrate"`): the service's task definition run once
with the service's network settings and the web container's command replaced, its log streamed, and
the web container's exit code returned."""

import copy
import functools
import json
import shlex
import uuid

import templates
from scripts.botocore_models import botocore_session
from scripts.deploy import logs
from scripts.deploy.aws import AWS_ERRORS, cli, error_code
from scripts.deploy.failure import Failure
from templates.errors import printable, stops_held
from templates.service import CONTAINER_NAME, web_log_stream

STARTED_BY = f"{templates.PROJECT}-deploy-task"  # RunTask's startedBy (at most 128 characters): the task's origin in the console
RUN_TAG = "TaskRun"  # make task TAG='s copy of the task definition: the run's RunTask clientToken, which registered it
# "Maximum number of tags per resource - 50" (a task definition's too):
# https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_RegisterTaskDefinition.html
ECS_MAX_TAGS = 50
POLL_SECONDS = 2.0
# The ECS API is eventually consistent: a task RunTask just started may not be described yet, and
# AWS's advice is to retry DescribeTasks for "up to five minutes".
# https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_RunTask.html
NOT_YET_DESCRIBED_SECONDS = 300


# A stopped task's last statuses: "DELETED — This is a transition state when a task stops. This state is
# not displayed in the console, but is displayed in describe-tasks." A poll may see either.
# https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-lifecycle-explanation.html
TASK_ENDED = ("STOPPED", "DELETED")


# RunTask: "A total of 8192 characters are allowed for overrides. This limit includes the JSON formatting
# characters of the override structure." https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_RunTask.html
MOST_OVERRIDES_CHARACTERS = 8192


def overrides(command: list[str]) -> dict:
    """RunTask's overrides: the web container's command."""
    return {"containerOverrides": [{"name": CONTAINER_NAME, "command": command}]}


def parse_command(text) -> list[str]:
    """CMD= split as a POSIX shell would (no shell runs it: the words are the container's command)."""
    try:
        words = shlex.split(text or "")
    except ValueError as error:
        raise Failure(f"error: CMD={text}: cannot split it into words ({error}); quote it as a shell would", 2) from None
    if not words:
        raise Failure('error: task needs a command: CMD="python manage.py migrate" (--cmd)', 2)
    length = len(json.dumps(overrides(words), ensure_ascii=False, separators=(",", ":")))
    if length > MOST_OVERRIDES_CHARACTERS:
        raise Failure(
            f"error: CMD: {len(words)} word{'s' * (len(words) != 1)} whose RunTask overrides (the container's command as JSON) are {length} characters; "
            f"allowed: at most {MOST_OVERRIDES_CHARACTERS}, which ECS takes (a shorter command, or fewer words)",
            2,
        )
    return words


def run_request(cluster: str, service: dict, command: list[str]) -> dict:
    """RunTask's arguments: the service's current task definition, launch type (or capacity providers),
    platform version and awsvpc network configuration (subnets, security groups, public IP), the web
    container's command overridden, the task definition's tags on the task.
    https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_RunTask.html"""
    request = {
        "cluster": cluster,
        "taskDefinition": service["taskDefinition"],
        "count": 1,
        "networkConfiguration": service["networkConfiguration"],
        "overrides": overrides(command),
        "startedBy": STARTED_BY,
        # The same token on botocore's retries: a RunTask whose answer timed out is not started twice
        # (a migration run twice). "An identifier that you provide to ensure the idempotency of the
        # request ... Up to 64 characters" (API_RunTask.html, clientToken).
        "clientToken": str(uuid.uuid4()),
        "propagateTags": "TASK_DEFINITION",  # the stack's Project/Environment/Layer tags, for the bill
        "enableECSManagedTags": True,
    }
    if service.get("capacityProviderStrategy"):
        request["capacityProviderStrategy"] = service["capacityProviderStrategy"]
    else:
        request["launchType"] = service.get("launchType", "FARGATE")
    if service.get("platformVersion") and request.get("launchType", "FARGATE") == "FARGATE":
        request["platformVersion"] = service["platformVersion"]
    return request


def describe_service(ecs, cluster: str, name: str, env: str) -> dict:
    found = ecs.describe_services(cluster=cluster, services=[name])
    # "The valid values are ACTIVE, DRAINING, or INACTIVE": https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_Service.html
    services = [s for s in found.get("services", []) if s.get("status") == "ACTIVE"]
    if not services:
        why = "; ".join(f"{f.get('reason')}" for f in found.get("failures", [])) or "not ACTIVE"
        # Drift detection reports a resource deleted outside CloudFormation as DELETED ("it has been deleted"):
        # https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_StackResourceDriftInformation.html
        raise Failure(
            f"error: service {name} in cluster {cluster}: {why}; no task was run. One deleted outside CloudFormation shows as "
            f"DELETED in make drift ENV={env} STACK=service; make status ENV={env} STACK=service shows its stack"
        )
    return services[0]


def start(ecs, request: dict) -> dict:
    """The task RunTask started, or Failure with the reasons it gives."""
    answer = ecs.run_task(**request)
    if not answer.get("tasks"):
        why = "; ".join(f"{f.get('reason')} {f.get('detail', '')}".strip() for f in answer.get("failures", [])) or "no task started"
        raise Failure(f"error: RunTask started no task: {why}")
    return answer["tasks"][0]


def wait(ecs, logs_client, cluster, task_arn, log_group, *, sleep, clock, max_minutes, say, env) -> dict:
    """Poll DescribeTasks until the task is STOPPED, printing its lastStatus changes and its web log's
    new lines; Failure after max_minutes (the task keeps running)."""
    stream, token, status = web_log_stream(logs.task_id(task_arn)), None, None
    log_unread = False  # the last GetLogEvents failed (throttled, say): said once, asked again at the next poll
    started = clock()
    deadline = started + max_minutes * 60
    not_yet_said = False
    while True:
        answer = ecs.describe_tasks(cluster=cluster, tasks=[task_arn])
        if not answer.get("tasks"):  # ECS answers with failures (e.g. MISSING) instead
            reasons = [str(f.get("reason")) for f in answer.get("failures", [])]
            why = printable("; ".join(reasons) or "not found", one_line=True)
            now = clock()
            if (
                status is None and set(reasons) == {"MISSING"} and now < min(started + NOT_YET_DESCRIBED_SECONDS, deadline)
            ):  # not visible yet: MISSING, "The specified task wasn't found"
                # https://docs.aws.amazon.com/AmazonECS/latest/developerguide/api_failures_messages.html
                if not not_yet_said:
                    say(f"task {logs.task_id(task_arn)}: not described by ECS yet ({why}); asking again")
                    not_yet_said = True
                sleep(POLL_SECONDS)
                continue
            task_id = logs.task_id(task_arn)
            what = (
                f"does not describe task {task_id} {now - started:.0f} s after it started"
                if status is None
                else f"no longer describes task {task_id}"
            )
            raise Failure(
                "\n".join(
                    [
                        f"error: ECS {what}: {why}",
                        *still_running(cluster, task_arn, env, cli(ecs.meta.region_name)),
                    ]
                )
            )
        task = answer["tasks"][0]
        if task["lastStatus"] != status:
            status = task["lastStatus"]
            say(f"task {logs.task_id(task_arn)}: {status}")
        try:
            events, token = logs.new_stream_events(logs_client, log_group, stream, token)
        except AWS_ERRORS as error:  # the log is only shown: the wait is for the exit code, and its token stays to read it again
            events = []
            if not log_unread:
                say(f"task {logs.task_id(task_arn)}: its log not read ({error_code(error)}); waiting for its exit code all the same")
            log_unread = True
        else:
            if log_unread:
                say(f"task {logs.task_id(task_arn)}: its log read again")
            log_unread = False
        say(*(logs.stream_line(event) for event in events))
        if status in TASK_ENDED:
            if log_unread:
                say(f"  its last lines may be missing above: make logs ENV={env} SINCE=10m prints them")
            return task
        if clock() >= deadline:
            lines = [
                f"error: stopped waiting after {max_minutes} minutes (MAX_WAIT=); the task is {status}.",
                *still_running(cluster, task_arn, env, cli(ecs.meta.region_name)),
            ]
            raise Failure("\n".join(lines))
        sleep(POLL_SECONDS)


def may_have_started(cluster, env, cli) -> list[str]:
    """How to find a task whose RunTask got no answer (or was interrupted): it may run all the same,
    and a rerun is a second run of its command (its clientToken is new). ListTasks: "When you
    specify startedBy as the filter, it must be the only filter that you use"; it lists running tasks.
    https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ListTasks.html"""
    return [
        "  it may have started all the same: do not run it again before you know.",
        f"  find it: {cli} ecs list-tasks --cluster {cluster} --started-by {STARTED_BY}   (the running ones)",
        f"  its log, also of one that has ended: make logs ENV={env} SINCE=10m",
    ]


def still_running(cluster, task_arn, env, cli) -> list[str]:
    """How to follow or stop a task this run no longer waits for (cli: aws.cli)."""
    follow = f"make logs ENV={env} FOLLOW=1"
    return [
        "  ECS carries on with the task; nothing was stopped.",
        f"  the lock of {env} goes with this run: deploy nothing to {env} before the task has stopped (it may be migrating the database)",
        f"  follow it: {follow}   (or: {cli} ecs describe-tasks --cluster {cluster} --tasks {task_arn})",
        f"  stop it:   {cli} ecs stop-task --cluster {cluster} --task {task_arn}",
    ]


def outcome(task: dict) -> tuple[int, list[str]]:
    """(exit status, lines) of a STOPPED task: the web container's exit code; 1, with the stop reasons,
    when it has none (it never ran: image pull, secrets, the tmp-permissions container, ...)."""
    web = next((c for c in task.get("containers", []) if c.get("name") == CONTAINER_NAME), {})
    code = web.get("exitCode")
    if code is not None:
        exited = [f"task {logs.task_id(task['taskArn'])}: the {CONTAINER_NAME} container exited {code}"]
        # Stopped by something else than its own exit (killed out of memory: 137; StopTask: 143): why, too.
        # https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_Task.html (stopCode)
        if web.get("reason") or task.get("stopCode") not in (None, "EssentialContainerExited"):
            exited += logs.stopped_task_lines(task)
        return code, exited
    return 1, [
        f"error: the {CONTAINER_NAME} container of task {logs.task_id(task['taskArn'])} has no exit code:",
        *logs.stopped_task_lines(task),
    ]


# --- TAG=: the service's task definition with another image --------------------------------------
# RunTask overrides a container's command, environment and resources, never its image
# (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ContainerOverride.html), so
# `make task TAG=` registers a copy of the service's current revision with the new image, runs that
# revision and deregisters it afterwards: the deployer made it, so it may remove it. Deregistering does
# not stop a task that still runs it (after Ctrl-C or MAX_WAIT): "Existing tasks and services that
# reference an INACTIVE task definition revision continue to run without disruption."
# https://docs.aws.amazon.com/AmazonECS/latest/developerguide/deregister-task-definition-v2.html
#
# Trade-off: the copy is a revision of the family CloudFormation manages (the family is the
# template's Family=...; a revision cannot go to another family without renaming it). CloudFormation
# keeps the ARN (family:revision) of the revision it registered as the TaskDefinition's physical id
# and the service names that ARN, so the extra revision is not the stack's resource, and drift
# detection, which compares the resource's actual properties with the template's
# (https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_StackResourceDrift.html,
# https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/using-cfn-stack-drift.html), should
# not see it. No AWS page we found says so for AWS::ECS::TaskDefinition in as many words: it is
# inferred from those pages, and not tested against AWS. While it exists, the copy is the family's
# latest ACTIVE revision: anything that runs the family without a revision (family name alone) would
# run it; nothing in this project does.


def repository(image: str) -> str:
    """The image without its tag or digest: the part before the last ':' after the last '/' (a
    registry's host may carry a port: host:5000/name)."""
    name = image.split("@", 1)[0]
    colon = name.rfind(":")
    return name[:colon] if colon > name.rfind("/") else name


def register_request(described: dict, image_tag: str, run: str) -> dict:
    """RegisterTaskDefinition's arguments from DescribeTaskDefinition's answer (include=TAGS): every
    field RegisterTaskDefinition takes, copied (the read-only taskDefinitionArn, revision, status,
    requiresAttributes, compatibilities, registeredAt/By and deregisteredAt are not among them), and
    the image of the web container, and of every container with the same repository (the
    tmp-permissions init container), set to <repository>:image_tag. The tags without the aws: prefix
    (CloudFormation's aws:cloudformation:* tags are AWS's own: a request may not set them), so that
    RunTask's propagateTags=TASK_DEFINITION still tags the task for the bill; Project=<project> among
    them, which the deploy role's RegisterTaskDefinition requires; and RUN_TAG=run, which tells this run's
    copies (lost_copies) from anyone else's revisions, where the tags leave room for it (params allow the
    stack 50, ECS's limit: without it, a copy an attempt with a lost answer registered is not found).
    https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_RegisterTaskDefinition.html"""
    definition = described["taskDefinition"]
    request = {key: copy.deepcopy(value) for key, value in definition.items() if key in registrable_fields()}
    containers = request.get("containerDefinitions", [])
    web = next((c for c in containers if c.get("name") == CONTAINER_NAME), None)
    if web is None or not web.get("image"):
        raise Failure(f"error: task definition {definition.get('taskDefinitionArn')} has no {CONTAINER_NAME} container with an image")
    same = repository(web["image"])
    for container in containers:
        if container.get("image") and repository(container["image"]) == same:
            container["image"] = f"{same}:{image_tag}"
    tags = [tag for tag in described.get("tags", []) if not tag["key"].lower().startswith("aws:") and tag["key"] != RUN_TAG]
    if not any(tag["key"] == "Project" for tag in tags):
        tags.append({"key": "Project", "value": templates.PROJECT})  # the deploy role registers only with it (templates/ci.py)
    request["tags"] = tags + [{"key": RUN_TAG, "value": run}] * (len(tags) < ECS_MAX_TAGS)
    return request


def lost_copies(ecs, registered: dict, run: str, retries: int, current: str) -> list[str]:
    """The copies earlier attempts of a RegisterTaskDefinition registered (botocore retried it `retries`
    times, the answers lost: it takes no idempotency token, so each attempt that landed registered a
    revision): among the revisions just below the answered one, at most `retries` of them and none the
    service runs (current, family:n) or older, those ACTIVE with this run's RUN_TAG. A revision that
    cannot be read is passed over (it is not known to be this run's).
    https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_RegisterTaskDefinition.html"""
    family_arn, revision = registered["taskDefinitionArn"].rsplit(":", 1)
    lowest = max(int(current.rsplit(":", 1)[1]) + 1, int(revision) - retries)
    found = []
    for number in range(int(revision) - 1, lowest - 1, -1):
        try:
            answer = ecs.describe_task_definition(taskDefinition=f"{family_arn}:{number}", include=["TAGS"])
        except AWS_ERRORS:
            continue
        if answer["taskDefinition"].get("status") == "ACTIVE" and {"key": RUN_TAG, "value": run} in answer.get("tags", []):
            found.append(answer["taskDefinition"]["taskDefinitionArn"])
    return found


def web_image(register: dict) -> str:
    """The web container's image in a RegisterTaskDefinition request."""
    return next(c["image"] for c in register["containerDefinitions"] if c["name"] == CONTAINER_NAME)


@functools.cache
def registrable_fields() -> frozenset[str]:
    """The members of RegisterTaskDefinition's request, from botocore's model of the ECS API (read
    when TAG= needs it, not at import: every deployer command imports this module)."""
    model = botocore_session().get_service_model("ecs")
    return frozenset(model.operation_model("RegisterTaskDefinition").input_shape.members) - {"tags"}


def deregister(ecs, arn: str, say) -> None:
    """DeregisterTaskDefinition of the revision make task registered; best effort: a failure is one
    line with the command, and the task's outcome stays the exit reason. A stop signal waits for it
    (a second one stops at once, saying how to remove the copy): a Ctrl-C there left the copy the
    family's newest ACTIVE revision, unnamed."""
    name, done = arn.rsplit("/", 1)[-1], []
    try:
        with stops_held(held=lambda: say(f"stopping once {name} is deregistered (Ctrl-C again, or a SIGTERM, stops now)")):
            ecs.deregister_task_definition(taskDefinition=arn)
            done.append(True)
            say(f"deregistered {name}: make task registered it for TAG= and removed it (a task still running it keeps running)")
    except BaseException as error:  # whatever it is, the task's outcome matters more
        if done:
            raise  # the stop held while it was deregistered
        command = f"{cli(ecs.meta.region_name)} ecs deregister-task-definition --task-definition {arn}"
        say(f"warning: could not deregister {name} ({error if isinstance(error, Exception) else 'interrupted'}); remove it with: {command}")
        if not isinstance(error, Exception):
            raise
