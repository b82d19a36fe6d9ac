"""The service's logs: `make logs` (FilterLogEvents over the log group, FOLLOW=1 polling), one task's
web stream (GetLogEvents, for `make task`), and what a failed service deploy adds to its failure: the
stopped tasks with their stop reasons and the last lines of their logs.

The service's names (cluster, service, log group) come from the service stack: its outputs, or for a
stack whose create rolled back (no outputs), its parameters read through templates/service.py's names."""

import math
import re
import time
from datetime import UTC, datetime
from string import Template

from botocore.exceptions import ClientError, ConnectTimeoutError, EndpointConnectionError, ReadTimeoutError

import templates
from scripts.deploy import purge, text
from scripts.deploy.aws import AWS_ERRORS, checked_pages, error_code, error_message, next_page_token
from scripts.deploy.failure import Failure
from scripts.deploy.status import FIRST_CREATE_FAILED, is_deployed
from scripts.deploy.text import output_values, parameter_values
from templates import service as service_layer
from templates.errors import printable
from templates.inputs import LOG_RETENTION_DAYS
from templates.params import SANDBOX_ENV
from templates.service import web_log_stream

SINCE = re.compile(r"([1-9][0-9]{0,8})([smhd])")  # nine digits: 3653d in seconds (315,619,200 s) fits
SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# The longest retention a log group takes (about 10 years): older events are gone, and a start time
# before 1970 is refused by FilterLogEvents.
MAX_SINCE_SECONDS = max(LOG_RETENTION_DAYS) * 86400  # as SINCE=: text.EVERY_EVENT_SINCE
FOLLOW_SECONDS = 2.0  # FOLLOW=1 asks again every 2 s
FOLLOW_FAILURES = 5  # transient errors in a row FOLLOW=1 rides out before it stops
# CloudWatch Logs may take a few seconds to make an event searchable, and it keeps the event's own
# timestamp: each FOLLOW poll reads again from this much before the newest event it printed, and
# leaves out the event ids it already printed. An event later than that (PutLogEvents takes events stamped up
# to 14 days back, and AWS bounds no delay before one is searchable:
# https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_PutLogEvents.html) is missed, as README
# says; a wider window only narrows the gap, at the cost of reading it again every poll.
LATE_MS = 10_000
STOPPED_TASKS, LAST_LINES = 3, 20  # what a failed deploy prints: the latest stopped tasks, each with its last log lines


UNREAD = "could not read the stopped tasks"  # stopped_tasks' one line where they could not be listed or described
MOST_TASKS = 500  # stopped tasks listed for a failed release's report (ListTasks answers 100 at a time)


def parse_since(text: str) -> int:
    """SINCE= as seconds: 30s, 10m, 2h, 1d; Failure(2) otherwise."""
    match = SINCE.fullmatch(text or "")
    seconds = int(match[1]) * SECONDS[match[2]] if match else None
    if seconds is None or seconds > MAX_SINCE_SECONDS:
        raise Failure(
            f"error: SINCE={text}: allowed: a whole number from 1 and a unit: s, m, h or d (30s, 10m, 2h, 1d), "
            f"at most {MAX_SINCE_SECONDS // 86400}d (the longest CloudWatch Logs keeps events)",
            2,
        )
    return seconds


def service_names(found: dict) -> dict:
    """cluster, service and log group of a service stack (a DescribeStacks entry): from its outputs,
    else (a create that rolled back keeps no outputs) from its parameters and the template's names."""
    values = output_values(found)
    if {"ClusterName", "ServiceName", "LogGroupName"} <= values.keys():
        return {"cluster": values["ClusterName"], "service": values["ServiceName"], "log_group": values["LogGroupName"]}
    given = parameter_values(found)
    return {
        "cluster": given["ClusterName"],
        "service": Template(service_layer.SERVICE_NAME).substitute(given),
        "log_group": Template(service_layer.LOG_GROUP_NAME).substitute(given),
    }


def service_stack(deployer) -> dict:
    """The service stack's names, or Failure when it is not deployed."""
    stack = templates.stack_name(deployer.env, "service")
    if not deployer.has_stack(stack):
        raise Failure(f"error: {stack} is not deployed: make deploy ENV={deployer.env} deploys every layer in order")
    return service_names(deployer.describe(stack))


# Not "the one deleted last": a later one may have kept none (a failed first create RECREATE=1 deleted).
KEPT_BY = "the last of its deleted stacks to keep one"


def log_group_to_read(deployer) -> str:
    """What make logs reads: the service stack's log group; after a destroy, the one the deleted stack retained, while
    it is still that stack's (destroy and purge advise reading the logs before they go), said in a note. Failure when
    there is none to read."""
    stack = templates.stack_name(deployer.env, "service")
    found = deployer.describe(stack)
    theirs = is_deployed(found) and deployer.foreign(found)
    if is_deployed(found) and not theirs:
        return service_names(found)["log_group"]
    # one of its name made by someone else: its values name nothing of ours to read; what ours kept, if any, is read
    absent = text.not_ours(stack, deployer.own_tags(found)) if theirs else f"{stack} is not deployed"
    try:
        kept = purge.kept_log_group(deployer, stack)
    except ClientError as error:  # only a look after a destroy: where deleted stacks may not be listed, the service is not deployed
        # AccessDenied (STS, IAM's query APIs) or AccessDeniedException (CloudFormation's and the JSON APIs' common errors:
        # https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/CommonErrors.html); anything else (throttled,
        # a server error) is said as it is
        if not error_code(error).startswith("AccessDenied"):
            raise
        kept = None
    if kept is None and theirs:
        raise Failure(f"error: {absent}; no log group a service stack of ours kept is left to read")
    if kept is None:
        return service_stack(deployer)["log_group"]  # its Failure: not deployed
    group, deleted = kept
    if group.gone or group.foreign:  # purged (or deleted by hand), or one of its name made since: nothing of the stack's to read
        what = (
            f"is gone: make deploy ENV={deployer.env} deploys every layer in order"
            if group.gone
            else f"was replaced by one it did not make, whose logs are not read; make diff ENV={deployer.env} says what a new deploy "
            "needs first"
        )
        raise Failure(f"error: {absent}, and {group.physical_id}, the log group retained by {KEPT_BY}, {what}")
    when = f" (deleted at {deleted:%Y-%m-%d %H:%M:%S %Z})" if deleted else ""
    # A role that may not read log groups (the CI deploy role may filter events, not describe groups): read by name.
    unchecked = "" if group.facts is not None else f"; whether it is still that stack's could not be looked at ({group.note})"
    deployer.say(
        f"note: {absent}; {group.physical_id}, retained by {KEPT_BY}{when}, holds what it logged "
        f"(until make purge ENV={deployer.env} deletes it{', once that stack is gone' if theirs else ''}){unchecked}"
    )
    return group.physical_id


# --- printing ---------------------------------------------------------------------------------
def task_id(arn_or_stream: str) -> str:
    """The ECS task id: the last part of a task ARN or of an awslogs stream name."""
    return arn_or_stream.rsplit("/", 1)[-1]


def when(milliseconds: int) -> str:
    return f"{datetime.fromtimestamp(milliseconds / 1000, UTC):%Y-%m-%d %H:%M:%S}"


def message(event: dict) -> str:
    """An event's message, escaped; the further lines of a multi-line one (a traceback) indented, so
    that none can pass for another event's `time  task-id` line."""
    return printable(event["message"].rstrip()).replace("\n", "\n" + CONTINUED)


CONTINUED = "    "


def log_event_line(event: dict) -> str:
    """A FilterLogEvents event: `time  task-id  message`."""
    return f"{when(event['timestamp'])}  {printable(task_id(event['logStreamName']), one_line=True)}  {message(event)}"


def stream_line(event: dict) -> str:
    """A GetLogEvents event of a known stream: `time  message`."""
    return f"{when(event['timestamp'])}  {message(event)}"


# --- make logs --------------------------------------------------------------------------------
def filtered(logs, group: str, start_ms: int):
    """Every event of the log group from start_ms on, page after page (nextToken).
    https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_FilterLogEvents.html
    (startTime: milliseconds after the epoch; a page may be empty while a nextToken follows)."""
    kwargs, seen = {"logGroupName": group, "startTime": start_ms}, set()
    while True:
        page = logs.filter_log_events(**kwargs)
        yield from page.get("events", [])
        token = next_page_token(page, seen, "FilterLogEvents", "nextToken")
        if not token:
            return
        kwargs["nextToken"] = token


def transient(error) -> bool:
    """An error that asking again later may not meet: the network, or AWS's side. botocore has
    retried it already; FOLLOW=1 runs for hours, so it rides out a few more."""
    # ServiceUnavailableException, "The service cannot complete the request", is one GetLogEvents and FilterLogEvents
    # list: https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_GetLogEvents.html
    if isinstance(error, ClientError):
        return error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) >= 500 or error_code(error) in (
            "ThrottlingException",
            "ServiceUnavailableException",
        )
    return isinstance(error, (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError))


def tail(logs, group: str, start_ms: int, *, follow: bool, sleep, say, explain=str, now_ms=None, gone=lambda error: False) -> int:
    """Print the group's events from start_ms as each page comes (FilterLogEvents returns them sorted
    by timestamp) and return how many; with follow, ask again every FOLLOW_SECONDS until Ctrl-C
    (KeyboardInterrupt reaches the caller). While following, a transient error is said and asked
    again, up to FOLLOW_FAILURES times in a row, unless gone(error) says nothing will answer (a sandbox
    stopped: its server refused every attempt, and the run ends at the next call). now_ms: the clock (milliseconds) that bounds where
    the next poll starts, so that an event stamped in the future does not skip what comes before it."""
    now_ms = now_ms or (lambda: int(time.time() * 1000))
    printed = {}  # while following: eventId -> timestamp, of the events printed within LATE_MS of the newest
    since, failures, shown = start_ms, 0, 0
    while True:
        newest = since
        try:
            for event in filtered(logs, group, since):
                if event["eventId"] in printed:
                    continue
                if follow:
                    printed[event["eventId"]] = event["timestamp"]
                newest = max(newest, event["timestamp"])
                shown += 1
                say(log_event_line(event))
        except AWS_ERRORS as error:
            failures += 1
            if not follow or not transient(error) or gone(error) or failures > FOLLOW_FAILURES:
                raise
            say(f"{group}: not read ({explain(error)}); asking again in {FOLLOW_SECONDS:g} s ({failures} of {FOLLOW_FAILURES})")
            sleep(FOLLOW_SECONDS)
            continue
        failures = 0
        if not follow:
            return shown
        # PutLogEvents takes events stamped up to 2 hours ahead: one such is no reason to skip ahead
        since = max(start_ms, since, min(newest, now_ms()) - LATE_MS)
        printed = {key: stamp for key, stamp in printed.items() if stamp >= since}
        sleep(FOLLOW_SECONDS)


# --- one task's stream ------------------------------------------------------------------------
def new_stream_events(logs, group: str, stream: str, token):
    """(events after `token`, the token to ask with next) of one stream, oldest first; ([], token)
    while the stream does not exist yet (the container has not started).

    GetLogEvents from the head with nextForwardToken: at the end of the stream it answers with the
    token it was given, so every event is returned exactly once.
    https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_GetLogEvents.html"""
    found = []
    while True:
        kwargs = {"logGroupName": group, "logStreamName": stream, "startFromHead": True}  # needed with nextToken
        if token:
            kwargs["nextToken"] = token
        try:
            page = logs.get_log_events(**kwargs)
        except ClientError as error:
            # "ResourceNotFoundException: The specified resource does not exist": https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_GetLogEvents.html
            if error_code(error) == "ResourceNotFoundException":
                return found, token
            raise
        found += page.get("events", [])
        following = page.get("nextForwardToken")
        if not following or following == token:
            return found, token
        token = following


# --- a failed service deploy ------------------------------------------------------------------
def stopped_tasks(deployer, found: dict) -> list[str]:
    """Why the service's tasks stopped: the latest STOPPED_TASKS stopped tasks, each with its stop
    reason, its containers' exit codes and reasons, and the last LAST_LINES lines of its web log.
    Best effort: a failing call is one line, and the deploy's own failure stays the exit reason.
    ListTasks with desiredStatus STOPPED lists the tasks ECS stopped recently:
    https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ListTasks.html
    https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_Task.html (stoppedReason, stopCode)
    https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_Container.html (exitCode, reason)"""
    try:
        names = service_names(found)
        ecs = deployer.client("ecs")
        # ListTasks answers 100 at a time in no documented order: a crash-looping release stops more.
        listed = ecs.get_paginator("list_tasks").paginate(
            cluster=names["cluster"], serviceName=names["service"], desiredStatus="STOPPED", PaginationConfig={"MaxItems": MOST_TASKS}
        )
        pages = list(checked_pages(listed, "ListTasks", "nextToken"))
        arns, token = [arn for page in pages for arn in page.get("taskArns", [])], listed.resume_token
        if not arns:
            return [f"stopped tasks of {names['service']}: none listed (ECS lists recently stopped tasks only)"]
        tasks = [
            task
            for i in range(0, len(arns), 100)
            for task in ecs.describe_tasks(cluster=names["cluster"], tasks=arns[i : i + 100]).get("tasks", [])
        ]
        latest = sorted(tasks, key=lambda t: t.get("stoppedAt") or t.get("createdAt") or 0, reverse=True)[:STOPPED_TASKS]
        counted = f"{len(arns)}" if not token else f"the first {len(arns)} listed"
        lines = [f"stopped tasks of {names['service']}: the latest {len(latest)} of {counted}, newest first"]
        for task in latest:
            lines += stopped_task_lines(task)
            stream = web_log_stream(task_id(task["taskArn"]))
            try:
                page = deployer.client("logs").get_log_events(
                    logGroupName=names["log_group"], logStreamName=stream, startFromHead=False, limit=LAST_LINES
                )
            except AWS_ERRORS as error:  # the stop reasons and exit codes read already stay said
                not_found = isinstance(error, ClientError) and error_code(error) == "ResourceNotFoundException"
                # GetLogEvents says ResourceNotFoundException of a group and of a stream alike (https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_GetLogEvents.html);
                # its message names which ("The specified log group does not exist.", a wording that page does not give):
                # a hint, which a message worded otherwise only loses
                group_gone = not_found and "log group" in error_message(error).lower()
                if found["StackStatus"] == "ROLLBACK_COMPLETE" or group_gone:  # DeletionPolicy RetainExceptOnCreate
                    lines.append(
                        f"    {stream}: its lines could not be read ({error_code(error)}): "
                        + (
                            "the rollback of the failed first create deleted the log group, and its logs with it"
                            if found["StackStatus"] in FIRST_CREATE_FAILED
                            else f"the log group {names['log_group']} is gone"
                        )
                    )
                elif not_found:
                    lines.append(f"    no log stream {stream}: the web container wrote nothing (it may never have started)")
                else:  # make logs from when the task was made on: its default, the last 10 minutes, may miss them
                    made = task.get("createdAt")
                    minutes = min(max(1, math.ceil((deployer.now() - made).total_seconds() / 60)), MAX_SINCE_SECONDS // 60) if made else 0
                    since = f" SINCE={minutes}m" if minutes else ""
                    until = " until the rollback deletes the log group" if found["StackStatus"] == "ROLLBACK_IN_PROGRESS" else ""
                    lines.append(
                        f"    {stream}: its lines could not be read ({error_code(error)}); make logs ENV={deployer.env}{since} reads them{until}"
                    )
                continue
            events = page.get("events", [])
            lines.append(f"    last {len(events)} lines of {names['log_group']} {stream}:" if events else f"    {stream}: no lines")
            lines += [f"      {stream_line(event)}" for event in events]
        return lines
    except (*AWS_ERRORS, KeyError) as error:
        # The sandbox has no console: its stack's events are what there is.
        elsewhere = (
            f"make events ENV={deployer.env} STACK=service" if deployer.env == SANDBOX_ENV else "the service's events in the ECS console"
        )
        return [f"{UNREAD} ({' '.join(str(error).split())[:200]}); see {elsewhere}"]


def stopped_task_lines(task: dict) -> list[str]:
    stopped = task.get("stoppedAt")
    at = f" at {stopped:%Y-%m-%d %H:%M:%S %Z}" if stopped else ""
    code = f"{task['stopCode']}: " if task.get("stopCode") else ""
    # StopTask's reason is anyone's text (up to 255 characters): on one line, or it could print forged lines
    lines = [f"  task {task_id(task['taskArn'])}{at}: {code}{printable(task.get('stoppedReason', '(no reason given)'), one_line=True)}"]
    for container in task.get("containers", []):
        exit_code = container.get("exitCode")
        said = f"exit {exit_code}" if exit_code is not None else "no exit code"
        reason = f": {printable(container['reason'], one_line=True)}" if container.get("reason") else ""
        lines.append(
            f"    container {printable(str(container.get('name')), one_line=True)}: {container.get('lastStatus', '')}, {said}{reason}"
        )
    return lines
