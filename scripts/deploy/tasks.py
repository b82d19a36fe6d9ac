"""One-off tasks (`make task CMD="python manage.py migrate"`): the service's task definition run once
with the service's network settings and the web container's command replaced, its log streamed, and
the web container's exit code returned."""

import shlex

import templates
from scripts.deploy import logs
from scripts.deploy.failure import Failure
from templates.service import CONTAINER_NAME, web_log_stream

STARTED_BY = f"{templates.PROJECT}-deploy-task"  # RunTask's startedBy (at most 128 characters): the task's origin in the console
POLL_SECONDS = 2.0
DEFAULT_WAIT_MINUTES = 30


def parse_command(text) -> list[str]:
    """CMD= split as a POSIX shell would (no shell runs it: the words are the container's command)."""
    try:
        words = shlex.split(text or "")
    except ValueError as error:
        raise Failure(f"error: CMD={text}: cannot split it into words ({error}); quote it as a shell would", 2) from None
    if not words:
        raise Failure('error: task needs a command: CMD="python manage.py migrate" (--cmd)', 2)
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
        "overrides": {"containerOverrides": [{"name": CONTAINER_NAME, "command": command}]},
        "startedBy": STARTED_BY,
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


def describe_service(ecs, cluster: str, name: str) -> dict:
    found = ecs.describe_services(cluster=cluster, services=[name])
    services = [s for s in found.get("services", []) if s.get("status") == "ACTIVE"]
    if not services:
        why = "; ".join(f"{f.get('reason')}" for f in found.get("failures", [])) or "not ACTIVE"
        raise Failure(f"error: service {name} in cluster {cluster}: {why}; make status shows the stacks")
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
    deadline = clock() + max_minutes * 60
    while True:
        task = ecs.describe_tasks(cluster=cluster, tasks=[task_arn])["tasks"][0]
        if task["lastStatus"] != status:
            status = task["lastStatus"]
            say(f"task {logs.task_id(task_arn)}: {status}")
        events, token = logs.new_stream_events(logs_client, log_group, stream, token)
        say(*(logs.stream_line(event) for event in events))
        if status == "STOPPED":
            return task
        if clock() >= deadline:
            lines = [
                f"error: stopped waiting after {max_minutes} minutes (MAX_WAIT=); the task is {status}.",
                *still_running(cluster, task_arn, env),
            ]
            raise Failure("\n".join(lines))
        sleep(POLL_SECONDS)


def still_running(cluster, task_arn, env) -> list[str]:
    """How to follow or stop a task this run no longer waits for."""
    follow = f"make logs ENV={env} FOLLOW=1"
    return [
        "  ECS carries on with the task; nothing was stopped.",
        f"  follow it: {follow}   (or: aws ecs describe-tasks --cluster {cluster} --tasks {task_arn})",
        f"  stop it:   aws ecs stop-task --cluster {cluster} --task {task_arn}",
    ]


def outcome(task: dict) -> tuple[int, list[str]]:
    """(exit status, lines) of a STOPPED task: the web container's exit code; 1, with the stop reasons,
    when it has none (it never ran: image pull, secrets, the tmp-permissions container, ...)."""
    web = next((c for c in task.get("containers", []) if c.get("name") == CONTAINER_NAME), {})
    code = web.get("exitCode")
    if code is not None:
        return code, [f"task {logs.task_id(task['taskArn'])}: the {CONTAINER_NAME} container exited {code}"]
    return 1, [
        f"error: the {CONTAINER_NAME} container of task {logs.task_id(task['taskArn'])} has no exit code:",
        *logs.stopped_task_lines(task),
    ]
