"""`make task`: the service's task definition run once (scripts/deploy/tasks.py), against botocore
Stubber with the response shapes ECS and CloudWatch Logs send; and what a failed service deploy adds
to its failure: the stopped tasks, their stop reasons and last log lines (scripts/deploy/logs.py)."""

import io
import json
from datetime import timedelta

import pytest
import stubbed_aws
from botocore.stub import ANY
from conftest import NOWHERE, ROOT
from stubbed_aws import (
    ACCOUNT,
    CLUSTER,
    ENV,
    LOG_GROUP,
    NOW,
    PARAMETERS,
    PARAMS_FILE,
    REGION,
    REGION_CLI,
    SERVICE,
    TASK_ARN,
    TASK_DEFINITION,
    TASK_ID,
    configuration,
    create_params,
    cs_name,
    described,
    ecs_service,
    ecs_task,
    event,
    log_event,
    stack,
    stack_id,
    stubbed_tasks,
)

from scripts import deploy
from scripts.deploy import tasks


@pytest.fixture
def aws(monkeypatch):
    """Stubbed clients answering as AWS does, without the AWS_ENDPOINT_URL that tells task and
    continue they talk to an emulator (the stubbed clients still answer every call; no request leaves)."""
    for clients in stubbed_tasks(monkeypatch):
        monkeypatch.delenv("AWS_ENDPOINT_URL")
        yield clients


MIGRATE = ["python", "manage.py", "migrate", "--noinput"]


def started(aws, command=MIGRATE):
    aws.service_stack()
    aws.service()
    aws.run_task(command)


@pytest.mark.parametrize("code", [0, 3])
def test_the_task_streams_its_log_once_in_order_and_exits_with_the_web_containers_code(aws, code):
    started(aws)
    aws.poll(ecs_task("PROVISIONING"), None)
    first = [log_event(10, "Operations to perform:\n"), log_event(11, "  Apply all migrations: admin, auth, user")]
    aws.poll(ecs_task("RUNNING"), (None, first, "f/001"), ("f/001", [], "f/001"))
    last = [log_event(20, "Running migrations:"), log_event(21, "  Applying user.0042_email_unique... OK")]
    aws.poll(ecs_task("STOPPED", code), ("f/001", last, "f/002"), ("f/002", [], "f/002"))

    assert aws.run("task", "--cmd", "python manage.py migrate --noinput", "--yes") == code, aws.err
    lines = aws.out.splitlines()
    logged = [line for line in lines if line.startswith("2025-11-25 12:00:")]
    assert logged == [
        "2025-11-25 12:00:10  Operations to perform:",
        "2025-11-25 12:00:11    Apply all migrations: admin, auth, user",
        "2025-11-25 12:00:20  Running migrations:",
        "2025-11-25 12:00:21    Applying user.0042_email_unique... OK",
    ]
    assert [line for line in lines if line.startswith(f"task {TASK_ID}: ")] == [
        f"task {TASK_ID}: PROVISIONING",
        f"task {TASK_ID}: RUNNING",
        f"task {TASK_ID}: STOPPED",
        f"task {TASK_ID}: the web container exited {code}",
    ]
    assert "one-off task in prod: python manage.py migrate --noinput" in aws.out
    assert f"startupwebapp-service-task:7 of {SERVICE}" in aws.out  # the stub's task definition, params' service name
    assert aws.sleeps == [2.0, 2.0]


@pytest.mark.parametrize("code", [0, 3])
def test_a_task_whose_lock_may_still_be_held_fails_with_its_own_code_or_1(aws, code):
    # The container's non-zero code is the run's exit status; a task that succeeded exits 1, as the next run is refused.
    stubbed_aws.lock_taken(aws, command="task", stack="service")
    started(aws)
    aws.poll(ecs_task("STOPPED", code), (None, [], "f/001"), ("f/001", [], "f/001"))
    aws.ssm.add_client_error("get_parameter", "InternalServerError", "try later", 500, expected_params={"Name": stubbed_aws.LOCK})
    assert aws.run("task", "--cmd", "python manage.py migrate --noinput", "--yes", locking=True) == (code or 1), aws.err
    assert (
        aws.err.splitlines()[-1] == f"error: make task finished, but {stubbed_aws.LOCK} may still be held (above): runs of prod "
        "that take it are refused until it is freed: make unlock ENV=prod"
    ) == (code == 0), aws.err


def test_a_task_answer_without_its_status_ends_the_wait_saying_the_task_may_still_run(aws):
    # lastStatus is optional in the API's model: its KeyError was a traceback, and nothing said the task ran on.
    started(aws)
    answer = ecs_task("RUNNING")
    del answer["lastStatus"]
    aws.poll(answer)
    assert aws.run("task", "--cmd", "python manage.py migrate --noinput", "--yes") == 1
    assert aws.err.startswith("error: KeyError: 'lastStatus', at scripts/deploy/tasks.py:"), aws.err
    line = int(aws.err.split("tasks.py:", 1)[1].split(":", 1)[0])  # the line that read it
    assert "lastStatus" in (ROOT / "scripts" / "deploy" / "tasks.py").read_text().splitlines()[line - 1], line
    # said as an AWS error there is (explain): with where things stand, then the task's own advice
    said = ": an AWS answer without what this tool reads, or a bug of the tool's (worth reporting with this line); see where things stand"
    assert said in aws.err, aws.err
    assert f"  task {TASK_ID} may still be running." in aws.err, aws.err


def test_a_log_that_cannot_be_read_leaves_the_wait_for_the_exit_code_and_the_lock_held(aws):
    # One throttled GetLogEvents ended the wait with an error and freed the lock while the migration ran on.
    stubbed_aws.lock_taken(aws, command="task", stack="service")
    started(aws)
    aws.poll(ecs_task("RUNNING"))
    aws.logs.add_client_error("get_log_events", "ThrottlingException", "Rate exceeded", 400)
    aws.poll(ecs_task("RUNNING"))
    aws.logs.add_client_error("get_log_events", "ThrottlingException", "Rate exceeded", 400)  # said once
    last = [log_event(20, "  Applying user.0042_email_unique... OK")]
    aws.poll(ecs_task("STOPPED", 0), (None, last, "f/001"), ("f/001", [], "f/001"))  # read again from the start: nothing lost
    stubbed_aws.lock_freed(aws, command="task", stack="service")
    assert aws.run("task", "--cmd", "python manage.py migrate --noinput", "--yes", locking=True) == 0, aws.err
    said = [line for line in aws.out.splitlines() if "log" in line and line.startswith(f"task {TASK_ID}: its")]
    assert said == [
        f"task {TASK_ID}: its log not read (ThrottlingException); waiting for its exit code all the same",
        f"task {TASK_ID}: its log read again",
    ], aws.out
    assert "2025-11-25 12:00:20    Applying user.0042_email_unique... OK" in aws.out, aws.out
    assert aws.out.splitlines()[-1] == f"task {TASK_ID}: the web container exited 0", aws.out


def test_a_log_still_unread_when_the_task_stops_says_where_its_last_lines_are(aws):
    started(aws)
    aws.poll(ecs_task("STOPPED", 0))
    aws.logs.add_client_error("get_log_events", "AccessDeniedException", "not authorized to perform: logs:GetLogEvents", 400)
    assert aws.run("task", "--cmd", "python manage.py migrate --noinput", "--yes") == 0, aws.err
    assert f"  its last lines may be missing above: make logs ENV={ENV} SINCE=10m prints them" in aws.out, aws.out


@pytest.mark.parametrize(
    ("stop_code", "reason", "stopped_reason", "said"),
    [
        # killed out of memory: 137, with the container's reason
        (
            None,
            "OutOfMemoryError: Container killed due to memory usage",
            "Essential container in task exited",
            "OutOfMemoryError: Container killed due to memory usage",
        ),
        (
            "UserInitiated",
            None,
            "stopped by someone\nforged: exited 0",
            "UserInitiated: stopped by someone\\nforged: exited 0",
        ),  # StopTask: 143
    ],
)
def test_an_exit_code_the_task_did_not_give_itself_comes_with_why_it_stopped(aws, stop_code, reason, stopped_reason, said):
    started(aws)
    task = ecs_task("STOPPED", 137 if reason else 143, reason, stopped_reason)
    task |= {"stopCode": stop_code} if stop_code else {}
    aws.poll(task, None)
    assert aws.run("task", "--cmd", "python manage.py migrate --noinput", "--yes") == (137 if reason else 143), aws.err
    assert f"task {TASK_ID}: the web container exited {137 if reason else 143}" in aws.out
    assert said in aws.out and "\nforged" not in aws.out, aws.out


def test_a_task_first_seen_deleted_has_ended_with_its_exit_code(aws):
    """DELETED: "a transition state when a task stops ... displayed in describe-tasks" (ECS's task
    lifecycle): a poll that sees it waited out MAX_WAIT and lost the migration's exit code."""
    started(aws)
    aws.poll(ecs_task("RUNNING"), None)
    aws.poll(ecs_task("DELETED", 0), None)
    assert aws.run("task", "--cmd", "python manage.py migrate --noinput", "--yes") == 0, aws.err
    assert f"task {TASK_ID}: the web container exited 0" in aws.out


def test_a_task_without_an_exit_code_prints_why_it_stopped_and_exits_1(aws):
    started(aws)
    pull = "CannotPullContainerError: pull image manifest has been retried 1 time(s): failed to resolve ref .../startupwebapp:v9: not found"
    aws.poll(ecs_task("STOPPED", None, pull, "Task failed to start"), None)
    assert aws.run("task", "--cmd", "python manage.py migrate --noinput", "--yes") == 1
    assert "error: the web container of task 0f6a1c2b3d4e4f5a9b8c7d6e5f4a3b2c has no exit code:" in aws.out
    assert f"  task {TASK_ID} at 2025-11-25 12:00:40 UTC: TaskFailedToStart: Task failed to start" in aws.out
    assert f"    container web: STOPPED, no exit code: {pull}" in aws.out
    assert "    container tmp-permissions: STOPPED, exit 0" in aws.out


def test_the_wait_is_bounded_and_says_how_to_follow_or_stop_the_task(aws):
    started(aws)
    aws.poll(ecs_task("RUNNING"), None)
    aws.poll(ecs_task("RUNNING"), None)
    ticks = iter([0, 30, 61])  # the deadline, then one clock read per poll
    assert aws.run("task", "--cmd", "python manage.py migrate --noinput", "--yes", "--max-wait", "1", clock=lambda: next(ticks)) == 1
    assert "waiting up to 1 minutes for it to stop" in aws.out
    assert "error: stopped waiting after 1 minutes (MAX_WAIT=); the task is RUNNING." in aws.err
    assert f"stop it:   {REGION_CLI} ecs stop-task --cluster {CLUSTER} --task {TASK_ARN}" in aws.err
    assert aws.sleeps == [2.0]


def test_the_wait_ends_at_its_deadline_not_one_poll_past_it(aws):
    started(aws)
    aws.poll(ecs_task("RUNNING"), None)  # one poll only: another fails the test (no response queued for it)
    ticks = iter([0, 60])  # the deadline, then the clock read at the first poll: exactly MAX_WAIT later
    assert aws.run("task", "--cmd", "python manage.py migrate --noinput", "--yes", "--max-wait", "1", clock=lambda: next(ticks)) == 1
    assert "error: stopped waiting after 1 minutes (MAX_WAIT=); the task is RUNNING." in aws.err, aws.err
    assert aws.sleeps == []


def missing(aws):
    """A DescribeTasks that does not describe the task: how ECS answers for one it does not know (yet)."""
    answer = {"tasks": [], "failures": [{"arn": TASK_ARN, "reason": "MISSING"}]}
    aws.ecs.add_response("describe_tasks", answer, {"cluster": CLUSTER, "tasks": [TASK_ARN]})


class Clock:
    """A clock that moves only when the run sleeps."""

    def __init__(self):
        self.now, self.sleeps = 0.0, []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


def test_a_task_ecs_does_not_describe_yet_is_asked_for_again(aws):
    """The ECS API is eventually consistent: right after RunTask, DescribeTasks may answer MISSING
    for the task it started (AWS: retry for up to five minutes; tasks.NOT_YET_DESCRIBED_SECONDS)."""
    started(aws)
    missing(aws)
    missing(aws)
    aws.poll(ecs_task("RUNNING"), None)
    aws.poll(ecs_task("STOPPED", 0), None)
    clock = Clock()
    assert aws.run("task", "--cmd", "python manage.py migrate --noinput", "--yes", sleep=clock.sleep, clock=clock) == 0, aws.err
    assert aws.out.count("not described by ECS yet (MISSING); asking again") == 1
    assert [line for line in aws.out.splitlines() if line.startswith(f"task {TASK_ID}: ") and "yet" not in line] == [
        f"task {TASK_ID}: RUNNING",
        f"task {TASK_ID}: STOPPED",
        f"task {TASK_ID}: the web container exited 0",
    ]
    assert clock.sleeps == [tasks.POLL_SECONDS] * 3


def test_a_task_ecs_describes_only_minutes_after_it_started_is_still_waited_for(aws):
    # AWS's advice is to retry DescribeTasks "for up to five minutes" (API_RunTask.html): a task first described
    # just before then is the run's, and its exit code the run's exit status
    polls = int(5 * 60 / tasks.POLL_SECONDS) - 1  # MISSING until the poll before the five minutes are up
    started(aws)
    for _ in range(polls):
        missing(aws)
    aws.poll(ecs_task("STOPPED", 3), None)
    clock = Clock()
    assert aws.run("task", "--cmd", "python manage.py migrate --noinput", "--yes", sleep=clock.sleep, clock=clock) == 3, aws.err
    assert f"task {TASK_ID}: the web container exited 3" in aws.out
    assert len(clock.sleeps) == polls


def test_a_status_is_said_once_however_many_polls_see_it(aws):
    # a migration that runs for minutes is polled every POLL_SECONDS: its status is said when it changes, not at each poll
    started(aws)
    for _ in range(3):
        aws.poll(ecs_task("RUNNING"), None)
    aws.poll(ecs_task("STOPPED", 0), None)
    assert aws.run("task", "--cmd", "python manage.py migrate --noinput", "--yes") == 0, aws.err
    assert [line for line in aws.out.splitlines() if line.startswith(f"task {TASK_ID}: ")] == [
        f"task {TASK_ID}: RUNNING",
        f"task {TASK_ID}: STOPPED",
        f"task {TASK_ID}: the web container exited 0",
    ], aws.out
    assert aws.sleeps == [tasks.POLL_SECONDS] * 3


def test_a_task_ecs_never_describes_is_an_error_once_the_bound_is_past(aws):
    polls = int(tasks.NOT_YET_DESCRIBED_SECONDS / tasks.POLL_SECONDS) + 1
    started(aws)
    for _ in range(polls):
        missing(aws)
    clock = Clock()
    assert aws.run("task", "--cmd", "python manage.py migrate --noinput", "--yes", sleep=clock.sleep, clock=clock) == 1
    assert f"error: ECS does not describe task {TASK_ID} {tasks.NOT_YET_DESCRIBED_SECONDS} s after it started: MISSING" in aws.err
    assert "ECS carries on with the task; nothing was stopped." in aws.err
    assert f"  the lock of {ENV} goes with this run: deploy nothing to {ENV} before the task has stopped" in aws.err, aws.err
    assert len(clock.sleeps) == polls - 1
    aws.ecs.assert_no_pending_responses()


def test_a_task_ecs_does_not_describe_is_waited_for_no_longer_than_max_wait(aws):
    minutes = 1  # MAX_WAIT, shorter than tasks.NOT_YET_DESCRIBED_SECONDS
    polls = int(minutes * 60 / tasks.POLL_SECONDS) + 1
    started(aws)
    for _ in range(polls):
        missing(aws)
    clock = Clock()
    assert (
        aws.run("task", "--cmd", "python manage.py migrate --noinput", "--yes", "--max-wait", str(minutes), sleep=clock.sleep, clock=clock)
        == 1
    )
    assert f"error: ECS does not describe task {TASK_ID} {minutes * 60} s after it started: MISSING" in aws.err
    aws.ecs.assert_no_pending_responses()


def test_a_task_ecs_describes_as_failed_for_another_reason_is_an_error_at_once(aws):
    started(aws)
    answer = {"tasks": [], "failures": [{"arn": TASK_ARN, "reason": "ACCESS_DENIED\x1b]0;x\x07"}]}
    aws.ecs.add_response("describe_tasks", answer, {"cluster": CLUSTER, "tasks": [TASK_ARN]})
    clock = Clock()
    assert aws.run("task", "--cmd", "python manage.py migrate --noinput", "--yes", sleep=clock.sleep, clock=clock) == 1
    assert f"error: ECS does not describe task {TASK_ID} 0 s after it started: ACCESS_DENIED\\x1b]0;x\\x07" in aws.err
    assert clock.sleeps == []


def test_a_task_ecs_stops_describing_once_seen_is_an_error_at_once(aws):
    started(aws)
    aws.poll(ecs_task("RUNNING"), None)
    missing(aws)
    clock = Clock()
    assert aws.run("task", "--cmd", "python manage.py migrate --noinput", "--yes", sleep=clock.sleep, clock=clock) == 1
    assert f"error: ECS no longer describes task {TASK_ID}: MISSING" in aws.err
    assert clock.sleeps == [tasks.POLL_SECONDS]


def test_ctrl_c_while_waiting_leaves_the_task_running_and_says_how_to_stop_it(aws):
    started(aws)
    aws.poll(ecs_task("RUNNING"), None)

    def interrupt(seconds):
        raise KeyboardInterrupt

    assert aws.run("task", "--cmd", "python manage.py migrate --noinput", "--yes", sleep=interrupt) == 130
    assert f"interrupted: task {TASK_ID} keeps running." in aws.err
    assert f"{REGION_CLI} ecs stop-task --cluster {CLUSTER} --task {TASK_ARN}" in aws.err
    assert f"make logs ENV={ENV} FOLLOW=1" in aws.err
    assert "Traceback" not in aws.err


def test_the_command_is_split_like_a_shell_and_quoted_when_shown(aws):
    command = ["python", "manage.py", "shell", "-c", "print('a b')"]
    started(aws, command)
    aws.poll(ecs_task("STOPPED", 0), None)
    assert aws.run("task", "--cmd", "python manage.py shell -c \"print('a b')\"", "--yes") == 0, aws.err
    assert "one-off task in prod: python manage.py shell -c 'print('\"'\"'a b'\"'\"')'" in aws.out


def test_without_yes_off_a_terminal_nothing_runs(aws):
    aws.service_stack()
    aws.service()
    assert aws.run("task", "--cmd", "python manage.py check --deploy") == 1
    assert aws.err.endswith(
        "error: no terminal to ask on and no YES=1 (--yes): nothing run; to run without asking, rerun with YES=1 (--yes)\n"
    )


@pytest.mark.parametrize("raised", ["no answer", "ctrl-c"])
def test_a_runtask_that_got_no_answer_says_the_task_may_run_and_how_to_find_it(aws, raised):
    # The task may have started all the same; a rerun has a new clientToken, so it would run the
    # command a second time (a migration twice).
    from botocore.exceptions import ReadTimeoutError

    aws.service_stack()
    aws.service()
    error = ReadTimeoutError(endpoint_url="https://ecs.us-east-1.amazonaws.com") if raised == "no answer" else KeyboardInterrupt()

    def no_answer(**_):
        raise error

    aws.clients["ecs"].meta.events.register("provide-client-params.ecs.RunTask", no_answer)
    assert aws.run("task", "--cmd", "python manage.py migrate", "--yes") == (1 if raised == "no answer" else 130)
    assert "it may have started all the same: do not run it again before you know." in aws.err
    assert f"{REGION_CLI} ecs list-tasks --cluster {CLUSTER} --started-by {tasks.STARTED_BY}   (the running ones)" in aws.err
    # list-tasks lists running tasks only: one that ran and ended already is found in the log
    assert f"  its log, also of one that has ended: make logs ENV={ENV} SINCE=10m" in aws.err, aws.err
    assert "Traceback" not in aws.err


@pytest.mark.parametrize("status", ["INACTIVE", "DRAINING"])
def test_a_service_that_is_not_active_runs_no_task(aws, status):
    # DescribeServices answers a deleted service as INACTIVE, not as a failure: its task definition and network were run;
    # DRAINING: the service is being deleted (API_Service.html, status: ACTIVE, DRAINING or INACTIVE); only ACTIVE is run
    aws.service_stack()
    service = ecs_service() | {"status": status}
    aws.ecs.add_response("describe_services", {"services": [service], "failures": []}, {"cluster": CLUSTER, "services": [SERVICE]})
    assert aws.run("task", "--cmd", "python manage.py migrate", "--yes") == 1  # no RunTask queued: one made fails otherwise
    assert aws.err.startswith(f"error: service {SERVICE} in cluster {CLUSTER}: not ACTIVE; no task was run"), aws.err
    assert aws.err.rstrip().endswith(f"make drift ENV={ENV} STACK=service; make status ENV={ENV} STACK=service shows its stack"), aws.err


def test_a_service_ecs_does_not_find_says_the_reason_ecs_gives(aws):
    # DescribeServices answers a service it does not know with a failure (MISSING): its reason is said, not "not ACTIVE"
    aws.service_stack()
    failure = {"arn": f"arn:aws:ecs:{REGION}:{ACCOUNT}:service/{CLUSTER}/{SERVICE}", "reason": "MISSING"}
    aws.ecs.add_response("describe_services", {"services": [], "failures": [failure]}, {"cluster": CLUSTER, "services": [SERVICE]})
    assert aws.run("task", "--cmd", "python manage.py migrate", "--yes") == 1
    assert aws.err.startswith(f"error: service {SERVICE} in cluster {CLUSTER}: MISSING; no task was run"), aws.err


def test_a_runtask_answer_with_neither_a_task_nor_a_failure_says_no_task_started(aws):
    aws.service_stack()
    aws.service()
    aws.ecs.add_response("run_task", {"tasks": [], "failures": []})
    assert aws.run("task", "--cmd", "python manage.py migrate", "--yes") == 1
    assert aws.err.strip() == "error: RunTask started no task: no task started", aws.err


def test_runtask_failures_are_one_line(aws):
    aws.service_stack()
    aws.service()
    failure = {"arn": f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/{CLUSTER}", "reason": "MISSING", "detail": "no Fargate capacity"}
    aws.ecs.add_response("run_task", {"tasks": [], "failures": [failure]})
    assert aws.run("task", "--cmd", "python manage.py migrate", "--yes") == 1
    assert aws.err.strip() == "error: RunTask started no task: MISSING no Fargate capacity"


@pytest.mark.parametrize(
    "cmd, says",
    [
        ("", 'error: task needs a command: CMD="python manage.py migrate" (--cmd)'),
        ("   ", 'error: task needs a command: CMD="python manage.py migrate" (--cmd)'),
        (
            'python -c "print(1)',
            'error: CMD=python -c "print(1): cannot split it into words (No closing quotation); quote it as a shell would',
        ),
    ],
)
def test_a_bad_command_is_one_line_exit_2_before_any_aws_call(cmd, says):
    def no_clients(service):
        raise AssertionError(f"an AWS client was made: {service}")

    import io

    out, err = io.StringIO(), io.StringIO()
    assert deploy.main(["task", "--env", ENV, "--cmd", cmd], clients=no_clients, out=out, err=err, interactive=False) == 2
    assert err.getvalue() == says + "\n"


def test_a_command_may_hold_tabs_and_be_longer_than_other_values_up_to_what_runtasks_overrides_take(aws):
    # a command line may be longer than any other value (MOST_VALUE_CHARACTERS), and its words may be split by tabs, up
    # to the longest RunTask's overrides take (tasks.MOST_OVERRIDES_CHARACTERS, with the JSON around the command)
    from scripts.deploy import MOST_CMD_CHARACTERS, MOST_VALUE_CHARACTERS, parse, validate

    assert MOST_CMD_CHARACTERS > MOST_VALUE_CHARACTERS
    around = len(json.dumps(tasks.overrides(["python", "manage.py", ""]), separators=(",", ":")))
    words = ["python", "manage.py", "x" * (tasks.MOST_OVERRIDES_CHARACTERS - around)]
    args = parse(["task", "--env", ENV, "--cmd", "\t".join(words)])
    validate(args)
    assert args.task_command == words
    assert len(json.dumps(tasks.run_request("c", {"taskDefinition": "t", "networkConfiguration": {}}, words)["overrides"])) > 8000
    longer = parse(["task", "--env", ENV, "--cmd", "\t".join(words) + "x"])
    with pytest.raises(deploy.Failure) as refused:
        validate(longer)
    assert str(refused.value) == (
        f"error: CMD: 3 words whose RunTask overrides (the container's command as JSON) are {tasks.MOST_OVERRIDES_CHARACTERS + 1} "
        f"characters; allowed: at most {tasks.MOST_OVERRIDES_CHARACTERS}, which ECS takes (a shorter command, or fewer words)"
    )
    with pytest.raises(deploy.Failure) as refused:  # a value longer than that is refused as it is read
        parse(["task", "--env", ENV, "--cmd", "x" * (MOST_CMD_CHARACTERS + 1)])
    assert refused.value.code == 2
    assert str(refused.value) == f"error: CMD: a value of {MOST_CMD_CHARACTERS + 1} characters; allowed: at most {MOST_CMD_CHARACTERS}"


def test_a_task_holds_the_environments_lock_and_logs_does_not(aws):
    # make task takes the lock before its first call and frees it, failed run or not
    stubbed_aws.lock_taken(aws, command="task", stack="service")
    aws.cf.add_client_error("describe_stacks", "ValidationError", "boom", 400)
    stubbed_aws.lock_freed(aws, command="task", stack="service")
    assert aws.run("task", "--cmd", "true", locking=True) == 1, aws.err
    # make logs only reads: no lock (a PutParameter would be a call nobody queued, failing the test)
    aws.service_stack()
    aws.logs.add_response("filter_log_events", {"events": [], "searchedLogStreams": []}, {"logGroupName": LOG_GROUP, "startTime": ANY})
    assert aws.run("logs", locking=True) == 0, aws.err


def test_the_request_takes_capacity_providers_instead_of_the_launch_type():
    service = ecs_service() | {"capacityProviderStrategy": [{"capacityProvider": "FARGATE_SPOT", "weight": 1}]}
    del service["launchType"]
    request = tasks.run_request(CLUSTER, service, ["true"])
    assert request["capacityProviderStrategy"] == service["capacityProviderStrategy"] and "launchType" not in request
    assert request["platformVersion"] == "LATEST"


def test_the_request_keeps_a_service_launch_type_other_than_fargate_and_then_no_platform_version():
    # "A platform version is only specified for tasks hosted on Fargate" (API_RunTask.html, platformVersion): a
    # service moved to EC2 runs its one-off task there too, without the Fargate-only argument.
    service = ecs_service() | {"launchType": "EC2", "platformVersion": "LATEST"}
    request = tasks.run_request(CLUSTER, service, ["true"])
    assert request["launchType"] == "EC2" and "platformVersion" not in request, request


# --- TAG=: a copy of the task definition with the new image ------------------------------------
REPOSITORY = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/startupwebapp"
COPY = f"arn:aws:ecs:us-east-1:{ACCOUNT}:task-definition/startupwebapp-service-task:8"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/startupwebapp-service"
STACK_TAGS = [{"key": "Project", "value": "startupwebapp"}, {"key": "Environment", "value": ENV}, {"key": "Layer", "value": "service"}]


def task_definition(arn=TASK_DEFINITION, revision=7, tag="v1"):
    """DescribeTaskDefinition's taskDefinition for the revision CloudFormation registered (the shape
    ECS returns: empty lists included, the read-only fields, a volume with an empty host)."""
    logging = {"logDriver": "awslogs", "options": {"awslogs-group": LOG_GROUP, "awslogs-region": REGION}, "secretOptions": []}
    mount = [{"sourceVolume": "tmp", "containerPath": "/tmp", "readOnly": False}]
    init = {
        "name": "tmp-permissions",
        "image": f"{REPOSITORY}:{tag}",
        "cpu": 0,
        "portMappings": [],
        "essential": False,
        "entryPoint": ["chmod"],
        "command": ["1777", "/tmp"],
        "environment": [],
        "mountPoints": mount,
        "volumesFrom": [],
        "user": "0",
        "readonlyRootFilesystem": True,
        "logConfiguration": logging | {"options": logging["options"] | {"awslogs-stream-prefix": "init"}},
        "systemControls": [],
    }
    web = {
        "name": "web",
        "image": f"{REPOSITORY}:{tag}",
        "cpu": 0,
        "portMappings": [{"containerPort": 8000, "hostPort": 8000, "protocol": "tcp"}],
        "essential": True,
        "command": ["gunicorn", "StartupWebApp.wsgi:application", "--bind", "0.0.0.0:8000"],
        "environment": [{"name": "DJANGO_SETTINGS_MODULE", "value": "StartupWebApp.settings_production"}],
        "mountPoints": mount,
        "volumesFrom": [],
        "secrets": [{"name": "DATABASE_PASSWORD", "valueFrom": f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:db-AbCdEf:password::"}],
        "dependsOn": [{"containerName": "tmp-permissions", "condition": "SUCCESS"}],
        "stopTimeout": 30,
        "user": "1000",
        "readonlyRootFilesystem": True,
        "logConfiguration": logging | {"options": logging["options"] | {"awslogs-stream-prefix": "service"}},
        "systemControls": [],
    }
    return {
        "taskDefinitionArn": arn,
        "containerDefinitions": [init, web],
        "family": "startupwebapp-service-task",
        "taskRoleArn": ROLE + "-task",
        "executionRoleArn": ROLE + "-execution",
        "networkMode": "awsvpc",
        "revision": revision,
        "volumes": [{"name": "tmp", "host": {}}],
        "status": "ACTIVE",
        "requiresAttributes": [{"name": "com.amazonaws.ecs.capability.logging-driver.awslogs"}, {"name": "ecs.capability.task-eni"}],
        "placementConstraints": [],
        "compatibilities": ["EC2", "FARGATE"],
        "runtimePlatform": {"cpuArchitecture": "X86_64", "operatingSystemFamily": "LINUX"},
        "requiresCompatibilities": ["FARGATE"],
        "cpu": "512",
        "memory": "1024",
        "registeredAt": NOW,
        "registeredBy": f"arn:aws:sts::{ACCOUNT}:assumed-role/startupwebapp-cloudformation/AWSCloudFormation",
    }


def described_task_definition():
    tags = STACK_TAGS + [{"key": "aws:cloudformation:stack-name", "value": stack("service")}]
    return {"taskDefinition": task_definition(), "tags": tags}


RUN = "run-token"  # the run's RunTask clientToken, which tags its copy


def expected_registration(run=ANY):
    """What make task TAG=v2 registers: every registrable field as described, both images on v2, the
    stack's tags and the run's."""
    found = task_definition()
    for name in ("taskDefinitionArn", "revision", "status", "requiresAttributes", "compatibilities", "registeredAt", "registeredBy"):
        del found[name]
    for container in found["containerDefinitions"]:
        container["image"] = f"{REPOSITORY}:v2"
    return found | {"tags": [*STACK_TAGS, {"key": tasks.RUN_TAG, "value": run}]}


def registered(aws, command=MIGRATE, image_code=None):
    """DescribeServices, DescribeTaskDefinition, DescribeImages (answered with image_code, an error,
    if given), RegisterTaskDefinition, then RunTask of the copy."""
    aws.service_stack()
    aws.service()
    aws.ecs.add_response("describe_task_definition", described_task_definition(), {"taskDefinition": TASK_DEFINITION, "include": ["TAGS"]})
    image_in_ecr(aws, code=image_code)
    copy = task_definition(COPY, 8, "v2") | {"registeredAt": NOW + timedelta(seconds=1)}
    aws.ecs.add_response("register_task_definition", {"taskDefinition": copy, "tags": STACK_TAGS}, expected_registration())
    expected = tasks.run_request(CLUSTER, ecs_service(), command) | {"taskDefinition": COPY, "clientToken": ANY}
    aws.ecs.add_response("run_task", {"tasks": [ecs_task("PROVISIONING") | {"taskDefinitionArn": COPY}], "failures": []}, expected)


def image_in_ecr(aws, tag="v2", code=None):
    """TAG='s image looked for in the service image's ECR repository, in its registry's account."""
    aws.image(tag, code, repository=REPOSITORY.split("/", 1)[1], registry_id=ACCOUNT)


def deregistered(aws):
    inactive = task_definition(COPY, 8, "v2") | {"status": "INACTIVE", "deregisteredAt": NOW + timedelta(seconds=60)}
    aws.ecs.add_response("deregister_task_definition", {"taskDefinition": inactive}, {"taskDefinition": COPY})


def test_tag_runs_a_copy_with_the_new_image_in_both_containers_and_deregisters_it_after_the_task_stops(aws):
    registered(aws)
    aws.poll(ecs_task("RUNNING"), None)
    aws.poll(ecs_task("STOPPED", 0), None)
    deregistered(aws)
    assert aws.run("task", "--cmd", "python manage.py migrate --noinput", "--image-tag", "v2", "--yes") == 0, aws.err
    assert f"a copy of task definition startupwebapp-service-task:7 of {SERVICE} with the image {REPOSITORY}:v2" in aws.out
    assert "registered startupwebapp-service-task:8" in aws.out
    lines = aws.out.splitlines()
    exited = lines.index(f"task {TASK_ID}: the web container exited 0")
    assert lines[exited + 1].startswith("deregistered startupwebapp-service-task:8: make task registered it for TAG= and removed it")


@pytest.mark.parametrize("revision_8", ["this run's", "this run's, deregistered already", "another run's", "unreadable"])
def test_a_registration_botocore_retried_deregisters_the_copy_an_earlier_attempt_registered(aws, monkeypatch, revision_8):
    # RegisterTaskDefinition takes no idempotency token: an attempt whose answer was lost registered revision 8,
    # the retry 9; 8 stayed ACTIVE, the family's newest but one, and nothing named it. Only this run's is deregistered.
    monkeypatch.setattr(tasks.uuid, "uuid4", lambda: RUN)
    aws.service_stack()
    aws.service()
    aws.ecs.add_response("describe_task_definition", described_task_definition(), {"taskDefinition": TASK_DEFINITION, "include": ["TAGS"]})
    image_in_ecr(aws)
    answered = task_definition(COPY.replace(":8", ":9"), 9, "v2")
    aws.ecs.add_response(
        "register_task_definition", {"taskDefinition": answered, "ResponseMetadata": {"RetryAttempts": 1}}, expected_registration(RUN)
    )
    run = {"this run's": RUN, "this run's, deregistered already": RUN, "another run's": "another-token"}.get(revision_8)
    status = "INACTIVE" if revision_8.endswith("already") else "ACTIVE"
    if run:
        copy = {
            "taskDefinition": task_definition(COPY, 8, "v2") | {"status": status},
            "tags": [*STACK_TAGS, {"key": tasks.RUN_TAG, "value": run}],
        }
        aws.ecs.add_response("describe_task_definition", copy, {"taskDefinition": COPY, "include": ["TAGS"]})
    else:
        aws.ecs.add_client_error(
            "describe_task_definition", "ClientException", "no", 400, expected_params={"taskDefinition": COPY, "include": ["TAGS"]}
        )
    if run == RUN and status == "ACTIVE":
        deregistered(aws)  # revision 8
    expected = tasks.run_request(CLUSTER, ecs_service(), MIGRATE) | {"taskDefinition": answered["taskDefinitionArn"], "clientToken": RUN}
    aws.ecs.add_response("run_task", {"tasks": [ecs_task("STOPPED", 0)], "failures": []}, expected)
    aws.poll(ecs_task("STOPPED", 0), None)
    inactive = answered | {"status": "INACTIVE"}
    aws.ecs.add_response("deregister_task_definition", {"taskDefinition": inactive}, {"taskDefinition": answered["taskDefinitionArn"]})
    assert aws.run("task", "--cmd", "python manage.py migrate --noinput", "--image-tag", "v2", "--yes") == 0, aws.err
    lost = "startupwebapp-service-task:8: registered too, by an attempt whose answer was lost (botocore retried it)"
    assert (lost in aws.out) == (revision_8 == "this run's"), aws.out


def test_the_copies_an_earlier_attempt_registered_are_looked_for_just_below_the_answered_revision_and_above_the_services():
    # retries 1: one attempt may have landed before the answered one, so revision 8 alone of 9's family; 6 and 7 are not
    # this run's to look at (nor 5, which the service runs).
    described = []

    class Ecs:
        def describe_task_definition(self, taskDefinition, include):
            described.append(taskDefinition.rsplit(":", 1)[1])
            definition = task_definition(taskDefinition, int(taskDefinition.rsplit(":", 1)[1]), "v2")
            return {"taskDefinition": definition, "tags": [{"key": tasks.RUN_TAG, "value": RUN}]}

    family = COPY.rsplit(":", 1)[0]
    found = tasks.lost_copies(Ecs(), {"taskDefinitionArn": f"{family}:9"}, RUN, 1, f"{family}:5")
    assert described == ["8"] and found == [f"{family}:8"], (described, found)
    described.clear()  # retries 4: as far down as the service's revision, not to it
    assert tasks.lost_copies(Ecs(), {"taskDefinitionArn": f"{family}:9"}, RUN, 4, f"{family}:6") == [f"{family}:{n}" for n in (8, 7)]
    assert described == ["8", "7"], described


def test_the_registration_copies_every_registrable_field_and_changes_only_the_images():
    request = tasks.register_request(described_task_definition(), "v2", RUN)
    assert request == expected_registration(RUN)
    original = task_definition()
    changed = [k for k in request if k != "tags" and request[k] != original[k]]
    assert changed == ["containerDefinitions"]
    for mine, theirs in zip(request["containerDefinitions"], original["containerDefinitions"], strict=True):
        assert {k: v for k, v in mine.items() if k != "image"} == {k: v for k, v in theirs.items() if k != "image"}
    # the read-only fields of the description are not RegisterTaskDefinition's
    assert not {
        "taskDefinitionArn",
        "revision",
        "status",
        "requiresAttributes",
        "compatibilities",
        "registeredAt",
        "registeredBy",
        "deregisteredAt",
    } & set(request)


@pytest.mark.parametrize(
    "image, expected",
    [
        ("123456789012.dkr.ecr.us-east-1.amazonaws.com/startupwebapp:v1", "123456789012.dkr.ecr.us-east-1.amazonaws.com/startupwebapp"),
        ("registry.example:5000/team/app:1.2", "registry.example:5000/team/app"),
        ("registry.example:5000/team/app", "registry.example:5000/team/app"),
        ("public.ecr.aws/x/app@sha256:" + "a" * 64, "public.ecr.aws/x/app"),
        # neither a registry nor a tag: Docker Hub's short names, the whole name
        ("nginx", "nginx"),
        ("nginx:1.27", "nginx"),
    ],
)
def test_the_repository_is_the_image_without_its_tag(image, expected):
    assert tasks.repository(image) == expected


def test_the_registration_carries_this_runs_tag_alone_and_only_where_ecs_takes_one_more_tag():
    # A revision registered by an earlier run carries that run's tag: copied, the copy had two TaskRun tags.
    described = described_task_definition()
    described["tags"] = [*described["tags"], {"key": tasks.RUN_TAG, "value": "an-earlier-run"}]
    assert [tag for tag in tasks.register_request(described, "v2", RUN)["tags"] if tag["key"] == tasks.RUN_TAG] == [
        {"key": tasks.RUN_TAG, "value": RUN}
    ]
    # ECS takes 50 tags a task definition ("Maximum number of tags per resource - 50", API_RegisterTaskDefinition),
    # as many as params allow the stacks: a 51st was refused
    described["tags"] = [{"key": f"Key{n}", "value": "v"} for n in range(49)] + [{"key": "Project", "value": "p"}]
    assert tasks.register_request(described, "v2", RUN)["tags"] == described["tags"]  # all 50 kept, no run tag
    described["tags"] = described["tags"][1:]
    assert tasks.register_request(described, "v2", RUN)["tags"][-1] == {"key": tasks.RUN_TAG, "value": RUN}


def test_the_registration_leaves_out_every_tag_aws_reserves_not_cloudformations_alone():
    # "aws:" (in any case) is AWS's own prefix: RegisterTaskDefinition refuses a tag that carries it
    described = described_task_definition()
    reserved = [{"key": "aws:servicecatalog:productArn", "value": "arn:p"}, {"key": "AWS:Other", "value": "x"}]
    described["tags"] = [*described["tags"], *reserved]
    keys = [tag["key"] for tag in tasks.register_request(described, "v2", RUN)["tags"]]
    assert keys == [tag["key"] for tag in STACK_TAGS] + [tasks.RUN_TAG], keys


def test_the_registration_carries_the_project_tag_the_deploy_role_requires():
    described = described_task_definition() | {"tags": []}
    tags = [{"key": "Project", "value": "startupwebapp"}, {"key": tasks.RUN_TAG, "value": RUN}]
    assert tasks.register_request(described, "v2", RUN)["tags"] == tags


def test_a_container_of_another_repository_keeps_its_image():
    described = described_task_definition()
    sidecar = {"name": "proxy", "image": "public.ecr.aws/nginx/nginx:1.27", "essential": False}
    described["taskDefinition"]["containerDefinitions"].append(sidecar)
    images = [c["image"] for c in tasks.register_request(described, "v2", RUN)["containerDefinitions"]]
    assert images == [f"{REPOSITORY}:v2", f"{REPOSITORY}:v2", "public.ecr.aws/nginx/nginx:1.27"]


def test_tag_deregisters_the_copy_after_ctrl_c_and_the_task_keeps_running(aws):
    registered(aws)
    aws.poll(ecs_task("RUNNING"), None)
    deregistered(aws)

    def interrupt(seconds):
        raise KeyboardInterrupt

    assert aws.run("task", "--cmd", "python manage.py migrate --noinput", "--image-tag", "v2", "--yes", sleep=interrupt) == 130
    assert f"interrupted: task {TASK_ID} keeps running." in aws.err
    assert "deregistered startupwebapp-service-task:8" in aws.out and "a task still running it keeps running" in aws.out


@pytest.mark.parametrize("stop", ["ctrl-c", "no answer"])
def test_a_registration_stopped_or_unanswered_says_the_copy_may_exist_and_how_to_deregister_it(aws, stop):
    # As the answer came back (or was lost), the copy was registered: the family's newest ACTIVE revision, unnamed before.
    from botocore.exceptions import ReadTimeoutError

    aws.service_stack()
    aws.service()
    aws.ecs.add_response("describe_task_definition", described_task_definition(), {"taskDefinition": TASK_DEFINITION, "include": ["TAGS"]})
    image_in_ecr(aws)

    def stopped(**_):
        raise KeyboardInterrupt if stop == "ctrl-c" else ReadTimeoutError(endpoint_url="https://ecs.us-east-1.amazonaws.com")

    aws.clients["ecs"].meta.events.register("provide-client-params.ecs.RegisterTaskDefinition", stopped)
    run = ("task", "--cmd", "python manage.py migrate --noinput", "--image-tag", "v2", "--yes")
    assert aws.run(*run) == (130 if stop == "ctrl-c" else 1)
    family = expected_registration()["family"]
    assert f"may have been registered all the same; find it: {REGION_CLI} ecs list-task-definitions --family-prefix {family}" in aws.err
    # if it was not registered, that newest revision is CloudFormation's, which the service runs: told apart before it goes
    assert (
        f"it is the copy only if it is newer than startupwebapp-service-task:7, the revision the service runs, and names image {REPOSITORY}:v2"
        in aws.err
    ), aws.err
    assert f"then deregister it: {REGION_CLI} ecs deregister-task-definition --task-definition <its ARN>" in aws.err


def test_tag_deregisters_the_copy_after_max_wait(aws):
    registered(aws)
    aws.poll(ecs_task("RUNNING"), None)
    aws.poll(ecs_task("RUNNING"), None)
    deregistered(aws)
    ticks = iter([0, 30, 61])
    run = ("task", "--cmd", "python manage.py migrate --noinput", "--image-tag", "v2", "--yes", "--max-wait", "1")
    assert aws.run(*run, clock=lambda: next(ticks)) == 1
    assert "error: stopped waiting after 1 minutes (MAX_WAIT=); the task is RUNNING." in aws.err
    assert "deregistered startupwebapp-service-task:8" in aws.out


def test_tag_deregisters_the_copy_when_runtask_starts_nothing(aws):
    aws.service_stack()
    aws.service()
    aws.ecs.add_response("describe_task_definition", described_task_definition())
    image_in_ecr(aws)
    aws.ecs.add_response("register_task_definition", {"taskDefinition": task_definition(COPY, 8, "v2"), "tags": STACK_TAGS})
    failure = {"arn": f"arn:aws:ecs:us-east-1:{ACCOUNT}:cluster/{CLUSTER}", "reason": "MISSING", "detail": "no Fargate capacity"}
    aws.ecs.add_response("run_task", {"tasks": [], "failures": [failure]})
    deregistered(aws)
    assert aws.run("task", "--cmd", "python manage.py migrate", "--image-tag", "v2", "--yes") == 1
    assert "error: RunTask started no task: MISSING no Fargate capacity" in aws.err
    assert "deregistered startupwebapp-service-task:8" in aws.out


@pytest.mark.parametrize("stops", [1, 2])
def test_ctrl_c_while_the_copy_is_deregistered_waits_for_it_or_says_how_to_remove_it(aws, stops):
    # A Ctrl-C there (one: once it is done; a second: at once) left the copy registered and unnamed.
    import signal

    registered(aws)
    aws.poll(ecs_task("STOPPED", 0), None)
    deregistered(aws)

    def ctrl_c(**_):  # as the request goes out: the signal itself, as a terminal sends it
        for _ in range(stops):
            signal.raise_signal(signal.SIGINT)

    aws.clients["ecs"].meta.events.register("provide-client-params.ecs.DeregisterTaskDefinition", ctrl_c)
    assert aws.run("task", "--cmd", "python manage.py migrate --noinput", "--image-tag", "v2", "--yes") == 130
    assert "stopping once startupwebapp-service-task:8 is deregistered (Ctrl-C again, or a SIGTERM, stops now)" in aws.out, aws.out
    assert f"task {TASK_ID}: the web container exited 0" in aws.out, aws.out  # said before the stop
    command = f"{REGION_CLI} ecs deregister-task-definition --task-definition {COPY}"
    if stops == 1:
        assert "deregistered startupwebapp-service-task:8" in aws.out and command not in aws.out, aws.out
    else:
        # the second stop came before the answer was read: that one answer alone stays queued
        assert [queued["operation_name"] for queued in aws.ecs._queue] == ["DeregisterTaskDefinition"]
        aws.ecs._queue.clear()
        assert f"warning: could not deregister startupwebapp-service-task:8 (interrupted); remove it with: {command}" in aws.out, aws.out


def test_a_second_ctrl_c_while_the_copy_is_deregistered_keeps_the_firsts_advice(aws):
    # The first Ctrl-C stopped the wait; the second, as the copy was deregistered, replaced its advice with "interrupted".
    registered(aws)
    aws.poll(ecs_task("RUNNING"), None)

    def interrupt(seconds):
        raise KeyboardInterrupt

    def ctrl_c(**_):
        raise KeyboardInterrupt

    aws.clients["ecs"].meta.events.register("provide-client-params.ecs.DeregisterTaskDefinition", ctrl_c)
    assert aws.run("task", "--cmd", "python manage.py migrate --noinput", "--image-tag", "v2", "--yes", sleep=interrupt) == 130
    assert f"interrupted: task {TASK_ID} keeps running." in aws.err and f"ecs stop-task --cluster {CLUSTER} --task {TASK_ARN}" in aws.err
    assert f"remove it with: {REGION_CLI} ecs deregister-task-definition --task-definition {COPY}" in aws.out, aws.out


def test_a_failed_deregistration_is_a_warning_with_the_command_and_keeps_the_tasks_exit_code(aws):
    registered(aws)
    aws.poll(ecs_task("STOPPED", 3), None)
    aws.ecs.add_client_error("deregister_task_definition", "AccessDeniedException", "not authorized", 400)
    assert aws.run("task", "--cmd", "python manage.py migrate --noinput", "--image-tag", "v2", "--yes") == 3
    assert f"remove it with: {REGION_CLI} ecs deregister-task-definition --task-definition {COPY}" in aws.out


def test_without_yes_nothing_is_registered(aws):
    aws.service_stack()
    aws.service()
    aws.ecs.add_response("describe_task_definition", described_task_definition())
    image_in_ecr(aws)
    assert aws.run("task", "--cmd", "python manage.py migrate", "--image-tag", "v2") == 1
    assert "nothing run" in aws.err


@pytest.mark.parametrize("tag", ["-v2", "v2:latest", "a" * 129, "v 2", ""])
def test_a_bad_tag_is_one_line_exit_2_before_any_aws_call(tag):
    import io

    def no_clients(service):
        raise AssertionError(f"an AWS client was made: {service}")

    out, err = io.StringIO(), io.StringIO()
    argv = ["task", "--env", ENV, "--cmd", "python manage.py migrate", f"--image-tag={tag}", "--yes"]
    assert deploy.main(argv, clients=no_clients, out=out, err=err, interactive=False) == 2
    left_out = "" if tag else "; to leave it out, give no TAG="  # given empty: not the running image
    assert (
        err.getvalue()
        == f"error: TAG={tag}: not a Docker image tag (letters, digits, _ . -, not starting with . or -, at most 128){left_out}\n"
    )


def test_task_on_an_emulator_is_one_line_exit_2_before_any_aws_call(monkeypatch):
    import io

    def no_clients(service):
        raise AssertionError(f"an AWS client was made: {service}")

    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # what make sets for the sandbox
    out, err = io.StringIO(), io.StringIO()
    argv = ["task", "--env", ENV, "--cmd", "python manage.py migrate", "--yes"]
    assert deploy.main(argv, clients=no_clients, out=out, err=err, interactive=False) == 2
    assert err.getvalue() == (
        "error: AWS_ENDPOINT_URL=http://127.0.0.1:9: the emulator runs no containers, so a one-off task would never run nor "
        "stop; make task runs in AWS\n"
    )


# --- the waits of a service stack's first create, and its stopped tasks --------------------------------------
def one_stopped_task(aws, task=None) -> dict:
    """ListTasks of the service's stopped tasks answers TASK_ARN, DescribeTasks it (by default a task whose web container
    exited 1); the ListTasks request, for a test that queues another answer to it."""
    listed = {"cluster": CLUSTER, "serviceName": SERVICE, "desiredStatus": "STOPPED"}
    aws.ecs.add_response("list_tasks", {"taskArns": [TASK_ARN]}, listed)
    aws.ecs.add_response(
        "describe_tasks", {"tasks": [task or ecs_task("STOPPED", 1)], "failures": []}, {"cluster": CLUSTER, "tasks": [TASK_ARN]}
    )
    return listed


def reading_deployer(aws, now):
    """What logs.stopped_tasks reads of a Deployer: its clients, environment and clock."""
    return type("Deployer", (), {"client": staticmethod(aws.clients.__getitem__), "env": ENV, "now": staticmethod(lambda: now)})()


def waiting_deployer(aws):
    return deploy.Deployer(aws.clients.__getitem__, ENV, out=io.StringIO(), err=io.StringIO(), sleep=lambda s: None, now=lambda: NOW)


def service_poll(aws, found, *events):
    """One poll of a wait on the service stack: DescribeStacks answers found, DescribeStackEvents the events."""
    aws.cf.add_response("describe_stacks", found, {"StackName": stack_id("service")})
    aws.cf.add_response("describe_stack_events", stubbed_aws.events(*events), {"StackName": stack_id("service")})


def service_create_failed(started, failed, rolling_back, why) -> list:
    """The events of a service stack's first create whose ECS service failed (why), seconds after NOW, up to its rollback."""
    return [
        event("service", stack("service"), "CREATE_IN_PROGRESS", started),
        event("service", "Service", "CREATE_FAILED", failed, "AWS::ECS::Service", why),
        event("service", stack("service"), "ROLLBACK_IN_PROGRESS", rolling_back),
    ]


def last_words_logged(aws, *events):
    """GetLogEvents of TASK_ARN's web stream, its last lines, answers events."""
    from scripts.deploy import logs

    stream = logs.web_log_stream(logs.task_id(TASK_ARN))
    expected = {"logGroupName": LOG_GROUP, "logStreamName": stream, "startFromHead": False, "limit": logs.LAST_LINES}
    aws.logs.add_response("get_log_events", {"events": list(events), "nextForwardToken": "f/1", "nextBackwardToken": "b/1"}, expected)


# --- a failed service deploy ------------------------------------------------------------------
def failed_service_update(aws, failed=("Service", "AWS::ECS::Service")):
    """A service update the circuit breaker rolled back (UPDATE_ROLLBACK_COMPLETE); failed: the
    resource whose failure rolled it back."""
    parameters = stubbed_aws.service_parameters("v1")
    aws.deployed("alb")
    aws.deployed("release-alarms")
    aws.deployed("service", parameters=parameters)
    changes = stubbed_aws.IMAGE_TAG_CHANGES
    aws.image("v2")  # on AWS (no AWS_ENDPOINT_URL), the new image is looked for first
    expected = create_params("service", "UPDATE", ImageTag="v2")
    aws.change_set("service", "UPDATE", changes, expected, parameters=parameters | {"ImageTag": "v2"})
    aws.execute("service")
    why = (
        "Resource handler returned message: \"Error occurred during operation 'ECS Deployment Circuit Breaker was triggered'.\" "
        "(RequestToken: 1a2b, HandlerErrorCode: GeneralServiceException)"
    )
    trail = [
        event("service", stack("service"), "UPDATE_IN_PROGRESS", 1),
        event("service", failed[0], "UPDATE_FAILED", 300, failed[1], why),
        event("service", stack("service"), "UPDATE_ROLLBACK_IN_PROGRESS", 301),
        event("service", stack("service"), "UPDATE_ROLLBACK_COMPLETE", 400),
    ]
    rolled_back = described("service", "UPDATE_ROLLBACK_COMPLETE", parameters=parameters)
    for output in rolled_back["Stacks"][0]["Outputs"]:
        output["OutputValue"] = LOG_GROUP if output["OutputKey"] == "LogGroupName" else output["OutputValue"]
    service_poll(aws, rolled_back, *trail)
    policy = json.dumps(configuration(ENV, "service")["StackPolicy"])
    aws.cf.add_response("set_stack_policy", {}, {"StackName": stack("service"), "StackPolicyBody": policy})
    return why


STOPPED = [f"arn:aws:ecs:us-east-1:{ACCOUNT}:task/{CLUSTER}/{n}1c2b3d4e4f5a9b8c7d6e5f4a3b2c" for n in ("aaaa", "bbbb")]


def test_a_rolled_back_service_deploy_prints_the_stopped_tasks_reasons_and_last_lines(aws):
    why = failed_service_update(aws)
    aws.ecs.add_response("list_tasks", {"taskArns": STOPPED}, {"cluster": CLUSTER, "serviceName": SERVICE, "desiredStatus": "STOPPED"})
    older = ecs_task("STOPPED", 1, arn=STOPPED[0], stopped_at=NOW + timedelta(seconds=100))
    newer = ecs_task("STOPPED", 1, arn=STOPPED[1], stopped_at=NOW + timedelta(seconds=200))
    for found in (older, newer):
        found["stoppedReason"] = "Essential container in task exited"
    aws.ecs.add_response("describe_tasks", {"tasks": [older, newer], "failures": []}, {"cluster": CLUSTER, "tasks": STOPPED})
    lines = [log_event(199, "[ERROR] Worker failed to boot."), log_event(199, "django.core.exceptions.ImproperlyConfigured: SECRET_KEY")]
    for arn, answer in ((STOPPED[1], lines), (STOPPED[0], None)):
        stream = f"service/web/{arn.rsplit('/', 1)[-1]}"
        expected = {"logGroupName": LOG_GROUP, "logStreamName": stream, "startFromHead": False, "limit": 20}
        if answer is None:
            aws.logs.add_client_error(
                "get_log_events", "ResourceNotFoundException", "The specified log stream does not exist.", 400, expected_params=expected
            )
        else:
            aws.logs.add_response("get_log_events", {"events": answer, "nextForwardToken": "f/1", "nextBackwardToken": "b/1"}, expected)

    assert aws.run("deploy", "--stack", "service", "--image-tag", "v2", "--yes") == 1
    assert f"failed: Service (AWS::ECS::Service): {why}" in aws.out
    report = aws.out[aws.out.index("stopped tasks of") :].splitlines()
    assert report == [
        f"stopped tasks of {SERVICE}: the latest 2 of 2, newest first",
        "  task bbbb1c2b3d4e4f5a9b8c7d6e5f4a3b2c at 2025-11-25 12:03:20 UTC: EssentialContainerExited: Essential container in task exited",
        "    container tmp-permissions: STOPPED, exit 0",
        "    container web: STOPPED, exit 1",
        f"    last 2 lines of {LOG_GROUP} service/web/bbbb1c2b3d4e4f5a9b8c7d6e5f4a3b2c:",
        "      2025-11-25 12:03:19  [ERROR] Worker failed to boot.",
        "      2025-11-25 12:03:19  django.core.exceptions.ImproperlyConfigured: SECRET_KEY",
        "  task aaaa1c2b3d4e4f5a9b8c7d6e5f4a3b2c at 2025-11-25 12:01:40 UTC: EssentialContainerExited: Essential container in task exited",
        "    container tmp-permissions: STOPPED, exit 0",
        "    container web: STOPPED, exit 1",
        "    no log stream service/web/aaaa1c2b3d4e4f5a9b8c7d6e5f4a3b2c: the web container wrote nothing (it may never have started)",
    ]
    assert f"error: {stack('service')} ended UPDATE_ROLLBACK_COMPLETE: the update rolled back" in aws.err


def test_the_stopped_task_report_is_best_effort_and_keeps_the_deploys_failure(aws):
    failed_service_update(aws)
    aws.ecs.add_client_error("list_tasks", "AccessDeniedException", "User is not authorized to perform: ecs:ListTasks", 400)
    assert aws.run("deploy", "--stack", "service", "--image-tag", "v2", "--yes") == 1
    (line,) = [line for line in aws.out.splitlines() if "stopped tasks" in line]
    assert line.startswith(
        "could not read the stopped tasks (An error occurred (AccessDeniedException) when calling the ListTasks operation"
    )
    assert f"error: {stack('service')} ended UPDATE_ROLLBACK_COMPLETE" in aws.err and "ListTasks" not in aws.err
    assert line.endswith("; see the service's events in the ECS console")


def test_a_service_deploy_that_failed_on_another_resource_reads_no_stopped_tasks(aws):
    """The log group failed (its name taken, say): the tasks had nothing to do with it, and their
    report would only be noise ("none listed"). No ECS call is queued: one made fails the test."""
    failed_service_update(aws, failed=("LogGroup", "AWS::Logs::LogGroup"))
    assert aws.run("deploy", "--stack", "service", "--image-tag", "v2", "--yes") == 1
    assert "failed: LogGroup (AWS::Logs::LogGroup)" in aws.out and "stopped tasks" not in aws.out
    assert f"error: {stack('service')} ended UPDATE_ROLLBACK_COMPLETE" in aws.err


def test_where_to_look_instead_is_the_stacks_events_on_the_sandbox_which_has_no_console():
    from types import SimpleNamespace

    from scripts.deploy import logs

    def refused(name):
        raise KeyError(name)

    (line,) = logs.stopped_tasks(SimpleNamespace(env="sandbox", client=refused), {"Outputs": []})
    assert line.startswith("could not read the stopped tasks (") and line.endswith("; see make events ENV=sandbox STACK=service"), line


def test_run_task_has_one_token_per_run():
    # botocore retries a call with the same parameters, so a RunTask whose answer timed out is not
    # started twice; two runs of make task are two tasks.
    first, second = (tasks.run_request(CLUSTER, ecs_service(), MIGRATE) for _ in range(2))
    assert first["clientToken"] != second["clientToken"] and 0 < len(first["clientToken"]) <= 64


# --- make continue: a release paused for tests ---------------------------------------------------
DEPLOYMENT = f"arn:aws:ecs:us-east-1:{ACCOUNT}:service-deployment/{CLUSTER}/{SERVICE}/EZe5RNVLH6PPzHXINuP28"
REVISION = f"arn:aws:ecs:us-east-1:{ACCOUNT}:service-revision/{CLUSTER}/{SERVICE}/4418871437372946"
HOOK = "ecs-pause-e7tK9G_WRJqNF_EOMjztDXfKenlJuEUVjsNStf4WLKw"


def release_in_progress(aws, hook_status="AWAITING_ACTION", target_type="PAUSE", timeout_action="ROLLBACK"):
    """ListServiceDeployments and DescribeServiceDeployments of a release whose hook is in `hook_status`
    (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DeploymentLifecycleHookDetail.html)."""
    aws.service_stack(strategy="BLUE_GREEN")  # only a release that shifts traffic pauses for tests
    brief = {"serviceDeploymentArn": DEPLOYMENT, "status": "IN_PROGRESS", "targetServiceRevisionArn": REVISION}
    aws.ecs.add_response(
        "list_service_deployments", {"serviceDeployments": [brief]}, {"cluster": CLUSTER, "service": SERVICE, "status": ["IN_PROGRESS"]}
    )
    hook = {
        "hookId": HOOK,
        "targetType": target_type,
        "status": hook_status,
        "expiresAt": NOW + timedelta(minutes=30),
    } | ({"timeoutAction": timeout_action} if timeout_action else {})  # None: a hook that names none
    deployment = {
        "serviceDeploymentArn": DEPLOYMENT,
        "status": "IN_PROGRESS",
        "targetServiceRevision": {"arn": REVISION, "requestedTaskCount": 2, "runningTaskCount": 2, "pendingTaskCount": 0},
        "lifecycleHookDetails": [hook],
    }
    aws.ecs.add_response(
        "describe_service_deployments", {"serviceDeployments": [deployment], "failures": []}, {"serviceDeploymentArns": [DEPLOYMENT]}
    )


@pytest.mark.parametrize(
    ("action", "timeout_action", "then"),
    [
        ("CONTINUE", "ROLLBACK", "rolls it back"),
        ("ROLLBACK", "CONTINUE", "moves production traffic to it"),
        ("CONTINUE", None, "rolls it back"),  # ECS's default: ROLLBACK unless the hook says CONTINUE
    ],
)
def test_continue_sends_the_action_for_the_paused_hook_of_the_release(aws, action, timeout_action, then):
    release_in_progress(aws, timeout_action=timeout_action)
    expected = {"serviceDeploymentArn": DEPLOYMENT, "hookId": HOOK, "action": action}
    aws.ecs.add_response("continue_service_deployment", {"serviceDeploymentArn": DEPLOYMENT}, expected)
    assert aws.run("continue", "--action", action, "--yes") == 0, aws.err
    assert (
        f"{SERVICE}: release (service revision 4418871437372946) paused for tests, until 2025-11-25 12:30:00 UTC; then ECS {then}"
        in aws.out
    )
    assert f"{SERVICE}: {action} sent" in aws.out


@pytest.mark.parametrize(("status", "target"), [("SUCCEEDED", "PAUSE"), ("AWAITING_ACTION", "AWS_LAMBDA"), ("TIMED_OUT", "PAUSE")])
def test_continue_with_no_release_waiting_says_so_and_sends_nothing(aws, status, target):
    release_in_progress(aws, status, target)
    assert aws.run("continue", "--yes") == 1
    assert f"error: no release of {SERVICE} is waiting for make continue" in aws.err
    assert f"({PARAMS_FILE}: parameters.TestPauseMinutes " in aws.err, aws.err  # the file as the others name it
    assert "parameters.TestPauseMinutes" in aws.err


def test_continue_off_a_terminal_without_yes_sends_nothing(aws):
    release_in_progress(aws)
    assert aws.run("continue") == 1
    assert aws.err.endswith(
        "error: no terminal to ask on and no YES=1 (--yes): nothing was sent; the release stays paused; to send it without asking, "
        "rerun with YES=1 (--yes)\n"
    ), aws.err


def test_continue_sends_nothing_to_a_service_a_stack_of_our_name_that_is_not_ours_made(aws):
    found = described("service", parameters=PARAMETERS | {"DeploymentStrategy": "BLUE_GREEN"}, tags={})  # made by hand under our name
    aws.cf.add_response("describe_stacks", found, {"StackName": stack("service")})
    assert aws.run("continue", "--yes") == 1
    assert f"error: {stack('service')} exists but was not made by this tool" in aws.err


@pytest.mark.parametrize("action", ["PAUSE", "pause"])
def test_a_bad_action_is_one_line_before_any_aws_call(aws, action):
    assert aws.run("continue", "--action", action) == 2
    assert aws.err.strip() == f"error: ACTION={action}: allowed: CONTINUE or ROLLBACK"  # as typed


def test_the_action_may_be_lower_case(aws):
    release_in_progress(aws)
    expected = {"serviceDeploymentArn": DEPLOYMENT, "hookId": HOOK, "action": "ROLLBACK"}
    aws.ecs.add_response("continue_service_deployment", {"serviceDeploymentArn": DEPLOYMENT}, expected)
    assert aws.run("continue", "--action", "rollback", "--yes") == 0, aws.err


def test_continue_without_action_sends_continue(aws):
    # README (make continue [ACTION=ROLLBACK]): left out, ACTION is CONTINUE, production traffic moves to the release
    release_in_progress(aws)
    expected = {"serviceDeploymentArn": DEPLOYMENT, "hookId": HOOK, "action": "CONTINUE"}
    aws.ecs.add_response("continue_service_deployment", {"serviceDeploymentArn": DEPLOYMENT}, expected)
    assert aws.run("continue", "--yes") == 0, aws.err
    assert f"{SERVICE}: CONTINUE sent" in aws.out


def test_continue_where_releases_roll_or_on_an_emulator_is_one_line_without_asking_ecs(aws, monkeypatch):
    found = described("service", parameters=PARAMETERS | {"DeploymentStrategy": "ROLLING"})
    found["Stacks"][0]["Outputs"] = [
        {"OutputKey": k, "OutputValue": v} for k, v in (("ClusterName", CLUSTER), ("ServiceName", SERVICE), ("LogGroupName", LOG_GROUP))
    ]
    aws.cf.add_response("describe_stacks", found, {"StackName": stack("service")})
    assert aws.run("continue", "--yes") == 2
    assert f"error: {stack('service')} releases ROLLING: no release waits for make continue" in aws.err
    # where to change it: the file and its keys (helper SZ)
    assert aws.err.rstrip().endswith(f"TestPauseMinutes above 0 ({PARAMS_FILE}: parameters)"), aws.err
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # what make sets for the sandbox
    aws.service_stack(strategy="BLUE_GREEN")  # on the emulator that AWS_ENDPOINT_URL names
    assert aws.run("continue", "--yes") == 2
    assert "the emulator runs no release, so none waits for make continue" in aws.err


def test_a_release_that_waits_for_tests_says_how_to_go_on_before_it_runs():
    given = PARAMETERS | {"DeploymentStrategy": "BLUE_GREEN", "TestPauseMinutes": "45"}
    lines = deploy.text.test_pause(given, ENV)
    assert "for at most 45 minutes before production traffic moves" in lines[0]
    assert f"make verify ENV={ENV} TEST_LISTENER=1" in lines[1] and f"make continue ENV={ENV} ACTION=ROLLBACK" in lines[1]
    assert deploy.text.test_pause(given | {"TestPauseMinutes": "0"}, ENV) == []
    assert deploy.text.test_pause(given | {"DeploymentStrategy": "ROLLING"}, ENV) == []
    # a rollback waits too, and one left alone (or let go with ACTION=ROLLBACK) puts back the image it leaves
    lines = deploy.text.test_pause(given, ENV, rolling_back_from="v24")
    assert lines[0].startswith("this rollback waits, once the test listener reaches its new tasks, for at most 45 minutes"), lines
    assert lines[2] == (
        "  without make continue, ECS rolls this rollback back after 45 minutes, and so does ACTION=ROLLBACK: v24, the image it "
        "leaves, runs again"
    ), lines
    # On the emulator, which runs no release: neither command would find one (make continue refuses, above)
    assert deploy.text.test_pause(given, ENV, on_aws=False) == [
        f"note: on AWS this release would wait up to 45 minutes for make verify ENV={ENV} TEST_LISTENER=1 and make continue "
        "(see README: Releases); the emulator runs no release, so nothing waits here and neither command has one to act on"
    ]


def service_deployed(aws, tag="v1"):
    """The service layer and what it reads, deployed with image tag."""
    parameters = stubbed_aws.service_parameters(tag)
    aws.deployed("alb")
    aws.deployed("release-alarms")
    aws.deployed("service", parameters=parameters)
    return parameters


def test_a_release_of_an_image_ecr_does_not_hold_is_refused_before_its_change_set(aws):
    # A TAG= typo failed only minutes into the release, at each task's pull, until the circuit breaker rolled it back.
    service_deployed(aws)
    aws.image("v2-typo", "ImageNotFoundException")
    assert aws.run("deploy", "--stack", "service", "--image-tag", "v2-typo", "--yes") == 1  # no change set queued: none made
    repository = configuration(ENV, "service")["Parameters"]["EcrRepositoryName"]
    assert aws.err.splitlines()[-1] == (
        f"error: image {repository}:v2-typo is not in ECR: push it first, or name a tag the repository holds "
        f"({REGION_CLI} ecr describe-images --repository-name {repository}); no change set was made"
    )


def test_a_repository_ecr_does_not_know_names_the_params_key(aws):
    service_deployed(aws)
    aws.image("v2", "RepositoryNotFoundException")
    assert aws.run("changeset", "--stack", "service", "--image-tag", "v2") == 1
    assert aws.err.splitlines()[-1].startswith(f"error: {PARAMS_FILE}: parameters.EcrRepositoryName: no ECR repository ")


def test_the_running_image_is_not_looked_for_again(aws):
    assert service_deployed(aws)["ImageTag"] == "v1"
    # TAG= the running image: no DescribeImages queued, and none made (the stubs fail an unqueued call)
    aws.change_set("service", "UPDATE", stubbed_aws.IMAGE_TAG_CHANGES, create_params("service", "UPDATE", ImageTag="v1"), left=True)
    assert aws.run("changeset", "--stack", "service", "--image-tag", "v1") == 0, aws.err


def test_a_look_for_the_image_the_deploy_role_may_not_make_is_a_note(aws):
    # A deploy role from before the ci layer allowed ecr:DescribeImages: the release goes on, said.
    service_deployed(aws)
    aws.image("v2", "AccessDeniedException")
    aws.change_set("service", "UPDATE", stubbed_aws.IMAGE_TAG_CHANGES, create_params("service", "UPDATE", ImageTag="v2"), left=True)
    assert aws.run("changeset", "--stack", "service", "--image-tag", "v2") == 0, aws.err
    assert "note: could not check that image " in aws.out and ":v2 is in ECR (ecr:DescribeImages denied); going on" in aws.out


def test_on_an_emulator_no_image_is_looked_for(aws, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", NOWHERE)  # the sandbox holds no images: nothing to ask
    service_deployed(aws)
    aws.change_set("service", "UPDATE", stubbed_aws.IMAGE_TAG_CHANGES, create_params("service", "UPDATE", ImageTag="v2"), left=True)
    assert aws.run("changeset", "--stack", "service", "--image-tag", "v2") == 0, aws.err


def test_the_running_tag_from_another_repository_is_looked_for(aws):
    # EcrRepositoryName changed in the params file, the image tag kept: the new repository may not hold it.
    repository = configuration(ENV, "service")["Parameters"]["EcrRepositoryName"]
    parameters = stubbed_aws.service_parameters("v1") | {"EcrRepositoryName": f"{repository}-old"}
    aws.deployed("alb")
    aws.deployed("release-alarms")
    aws.deployed("service", parameters=parameters)
    aws.image("v1", "ImageNotFoundException")
    assert aws.run("changeset", "--stack", "service") == 1
    assert aws.err.splitlines()[-1].startswith(f"error: image {repository}:v1 is not in ECR: push it first")


def test_a_run_of_every_layer_looks_for_the_image_at_its_first_layer_before_anything_changes(aws):
    first, *rest = stubbed_aws.PROD_LAYERS
    assert "service" in rest
    aws.deployed("service", parameters=stubbed_aws.service_parameters("v1"))
    aws.image("v2-typo", "ImageNotFoundException")
    assert aws.run("deploy", "--image-tag", "v2-typo", "--yes") == 1  # nothing queued for the first layer: nothing made
    assert f"the run stopped at {first} (the reason is below)" in aws.out, aws.out
    assert aws.err.splitlines()[-1].startswith("error: image ") and "v2-typo is not in ECR" in aws.err


@pytest.mark.parametrize(
    "code, said",
    [
        (
            "ImageNotFoundException",
            f"error: image startupwebapp:v2-typo is not in ECR: push it first, or name a tag the repository holds "
            f"({REGION_CLI} ecr describe-images --repository-name startupwebapp); nothing was registered or run",
        ),
        (
            "RepositoryNotFoundException",
            f"error: no ECR repository startupwebapp in account {ACCOUNT} (the service's image {REPOSITORY}:v2-typo); "
            "nothing was registered or run",
        ),
    ],
)
def test_tag_of_an_image_ecr_lacks_is_refused_before_anything_is_registered_or_run(aws, code, said):
    # A TAG= typo registered a copy, started a task that failed at its image pull, and deregistered the copy.
    aws.service_stack()
    aws.service()
    aws.ecs.add_response("describe_task_definition", described_task_definition(), {"taskDefinition": TASK_DEFINITION, "include": ["TAGS"]})
    image_in_ecr(aws, "v2-typo", code)
    assert aws.run("task", "--cmd", "python manage.py migrate", "--image-tag", "v2-typo", "--yes") == 1  # nothing else queued: nothing made
    assert aws.err.splitlines()[-1] == said, aws.err


@pytest.mark.parametrize(
    "registry",
    [
        "registry.example:5000/team",  # not ECR
        f"{ACCOUNT}.dkr.ecr.{next(r for r in ('eu-west-1', 'us-west-2') if r != REGION)}.amazonaws.com",  # another region's ECR than the run's
    ],
)
def test_tag_of_an_image_of_another_registry_is_not_looked_for(aws, registry):
    described = described_task_definition()
    for container in described["taskDefinition"]["containerDefinitions"]:
        container["image"] = container["image"].replace(REPOSITORY.split("/", 1)[0], registry)
    aws.service_stack()
    aws.service()
    aws.ecs.add_response("describe_task_definition", described, {"taskDefinition": TASK_DEFINITION, "include": ["TAGS"]})
    # no DescribeImages queued: none asked (the stubs fail an unqueued call); declined at the prompt, nothing registered
    assert aws.run("task", "--cmd", "python manage.py migrate", "--image-tag", "v2") == 1
    assert f"with the image {registry}/startupwebapp:v2" in aws.out and "nothing run" in aws.err, aws.out + aws.err


def test_tag_goes_on_with_a_note_when_the_role_may_not_look_for_images(aws):
    registered(aws, image_code="AccessDeniedException")
    aws.poll(ecs_task("STOPPED", 0), None)
    deregistered(aws)
    assert aws.run("task", "--cmd", "python manage.py migrate --noinput", "--image-tag", "v2", "--yes") == 0, aws.err
    assert "note: could not check that image startupwebapp:v2 is in ECR (ecr:DescribeImages denied); going on" in aws.out


def test_the_stopped_tasks_of_a_crash_looping_release_are_read_past_listtasks_first_page(aws):
    """ListTasks answers 100 at a time, in no documented order: the report read one page and called its
    latest "the latest". https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ListTasks.html"""
    from scripts.deploy import logs

    arns = [f"arn:aws:ecs:us-east-1:{ACCOUNT}:task/{CLUSTER}/{n:032x}" for n in range(1, 5)]
    listed = {"cluster": CLUSTER, "serviceName": SERVICE, "desiredStatus": "STOPPED"}
    aws.ecs.add_response("list_tasks", {"taskArns": arns[:2], "nextToken": "page2"}, listed)
    aws.ecs.add_response("list_tasks", {"taskArns": arns[2:]}, listed | {"nextToken": "page2"})
    found = [ecs_task("STOPPED", 1, arn=arn, stopped_at=NOW + timedelta(seconds=n)) for n, arn in enumerate(arns)]
    aws.ecs.add_response("describe_tasks", {"tasks": found, "failures": []}, {"cluster": CLUSTER, "tasks": arns})
    for _ in range(logs.STOPPED_TASKS):  # the newest ones' logs, each asked for (the harness fails an unused response)
        aws.stubber("logs").add_client_error("get_log_events", "ResourceNotFoundException", "The specified log stream does not exist.", 400)
    deployer = type("Deployer", (), {"client": staticmethod(aws.clients.__getitem__)})()
    lines = logs.stopped_tasks(deployer, described("service")["Stacks"][0])
    assert lines[0] == f"stopped tasks of {SERVICE}: the latest {logs.STOPPED_TASKS} of 4, newest first", lines
    assert f"task {arns[3].rsplit('/', 1)[-1]}" in lines[1]  # the newest, from the second page


def test_a_release_whose_stopped_tasks_ecs_no_longer_lists_says_none_are_listed(aws):
    from scripts.deploy import logs

    listed = {"cluster": CLUSTER, "serviceName": SERVICE, "desiredStatus": "STOPPED"}
    aws.ecs.add_response("list_tasks", {"taskArns": []}, listed)  # no DescribeTasks or GetLogEvents queued: one made fails the test
    deployer = type("Deployer", (), {"client": staticmethod(aws.clients.__getitem__)})()
    lines = logs.stopped_tasks(deployer, described("service")["Stacks"][0])
    assert lines == [f"stopped tasks of {SERVICE}: none listed (ECS lists recently stopped tasks only)"], lines


def test_a_failed_first_create_of_the_service_is_no_running_image_and_its_tag_is_looked_for_again(aws):
    """RECREATE=1 after a create that failed (perhaps for that very image): the image is looked for
    before the failed stack is deleted, not taken as running (guards.refuse_a_missing_image)."""
    tag = configuration(ENV, "service")["Parameters"]["ImageTag"]  # params' tag, what the create ran
    aws.upstream_deployed("service")
    aws.deployed("service", status="ROLLBACK_COMPLETE", parameters=stubbed_aws.service_parameters(tag))
    aws.image(tag, "ImageNotFoundException")
    assert aws.run("deploy", "--stack", "service", "--recreate", "--yes") == 1  # no DeleteStack queued: none made
    assert f":{tag} is not in ECR" in aws.err, aws.err


def test_a_crash_loop_that_stopped_more_tasks_than_are_read_lists_the_first_ones_and_says_so(aws):
    """ListTasks answers 100 at a time (API_ListTasks.html, maxResults); the report reads logs.MOST_TASKS
    of them, describes them 100 at a time (DescribeTasks takes at most 100: API_DescribeTasks.html), and
    says they are the first listed, not all."""
    from scripts.deploy import logs

    page_size = 100
    arns = [f"arn:aws:ecs:us-east-1:{ACCOUNT}:task/{CLUSTER}/{n:032x}" for n in range(1, logs.MOST_TASKS + page_size + 1)]
    listed = {"cluster": CLUSTER, "serviceName": SERVICE, "desiredStatus": "STOPPED"}
    pages = [arns[i : i + page_size] for i in range(0, len(arns), page_size)]
    for number, page in enumerate(pages[: logs.MOST_TASKS // page_size]):  # the page past MOST_TASKS is not asked for
        asked = listed | ({"nextToken": f"page{number}"} if number else {})
        aws.ecs.add_response("list_tasks", {"taskArns": page, "nextToken": f"page{number + 1}"}, asked)
    read = arns[: logs.MOST_TASKS]
    for i in range(0, len(read), page_size):
        found = [
            ecs_task("STOPPED", 1, arn=arn, stopped_at=NOW + timedelta(seconds=i + n)) for n, arn in enumerate(read[i : i + page_size])
        ]
        aws.ecs.add_response("describe_tasks", {"tasks": found, "failures": []}, {"cluster": CLUSTER, "tasks": read[i : i + page_size]})
    for _ in range(logs.STOPPED_TASKS):
        aws.stubber("logs").add_client_error("get_log_events", "ResourceNotFoundException", "The specified log stream does not exist.", 400)
    deployer = type("Deployer", (), {"client": staticmethod(aws.clients.__getitem__)})()
    lines = logs.stopped_tasks(deployer, described("service")["Stacks"][0])
    assert lines[0] == f"stopped tasks of {SERVICE}: the latest {logs.STOPPED_TASKS} of the first {logs.MOST_TASKS} listed, newest first"
    assert f"task {read[-1].rsplit('/', 1)[-1]}" in lines[1], lines


def test_stopping_tasks_without_a_stop_time_are_ordered_by_when_they_were_created(aws):
    # ListTasks with desiredStatus STOPPED lists tasks still stopping too: no stoppedAt yet, their createdAt orders them
    from scripts.deploy import logs

    arns = [f"arn:aws:ecs:us-east-1:{ACCOUNT}:task/{CLUSTER}/{n:032x}" for n in range(1, 5)]
    listed = {"cluster": CLUSTER, "serviceName": SERVICE, "desiredStatus": "STOPPED"}
    aws.ecs.add_response("list_tasks", {"taskArns": arns}, listed)
    found = [ecs_task("DEACTIVATING", arn=arn) | {"createdAt": NOW + timedelta(seconds=n)} for n, arn in enumerate(arns)]
    aws.ecs.add_response("describe_tasks", {"tasks": found, "failures": []}, {"cluster": CLUSTER, "tasks": arns})
    for _ in range(logs.STOPPED_TASKS):
        aws.stubber("logs").add_client_error("get_log_events", "ResourceNotFoundException", "The specified log stream does not exist.", 400)
    deployer = type("Deployer", (), {"client": staticmethod(aws.clients.__getitem__)})()
    lines = logs.stopped_tasks(deployer, described("service")["Stacks"][0])
    shown = [line.split()[1].rstrip(":") for line in lines if line.startswith("  task ")]
    assert shown == [arn.rsplit("/", 1)[-1] for arn in reversed(arns)][: logs.STOPPED_TASKS], lines


def test_a_stopped_tasks_log_that_cannot_be_read_is_not_said_to_be_empty(aws):
    # only ResourceNotFoundException means the web container wrote nothing; a refused GetLogEvents says the refusal
    from scripts.deploy import logs

    one_stopped_task(aws)
    aws.stubber("logs").add_client_error("get_log_events", "AccessDeniedException", "not authorized to perform: logs:GetLogEvents", 400)
    made = ecs_task("STOPPED", 1)["createdAt"]
    now = made + timedelta(minutes=42, seconds=5)  # the task made 42 minutes and 5 s ago: SINCE=43m reads it all
    deployer = reading_deployer(aws, now)
    lines = logs.stopped_tasks(deployer, described("service")["Stacks"][0])
    assert not any("wrote nothing" in line for line in lines), lines
    # the stop reason and exit codes read before it stay: the report was one line of the refusal
    stream = logs.web_log_stream(logs.task_id(TASK_ARN))
    assert lines[1].startswith(f"  task {logs.task_id(TASK_ARN)}") and lines[2].startswith("    container "), lines
    assert lines[-1] == f"    {stream}: its lines could not be read (AccessDeniedException); make logs ENV={ENV} SINCE=43m reads them", (
        lines
    )


@pytest.mark.parametrize("code", ["AccessDeniedException", "ResourceNotFoundException"])
def test_a_failed_first_creates_stopped_task_log_is_said_gone_with_its_log_group(aws, code):
    # finish() reports the stopped tasks once the stack has settled: after a failed first create, ROLLBACK_COMPLETE, whose
    # rollback deleted the log group (DeletionPolicy RetainExceptOnCreate). The line said "make logs ENV=... SINCE=43m reads
    # them" (AccessDenied), which then reads a group that is gone, or "the web container wrote nothing" (the group not
    # found), which nobody knows (found by an attacker review).
    from scripts.deploy import logs

    one_stopped_task(aws)
    aws.stubber("logs").add_client_error("get_log_events", code, "no", 400)
    now = ecs_task("STOPPED", 1)["createdAt"] + timedelta(minutes=42, seconds=5)
    deployer = reading_deployer(aws, now)
    lines = logs.stopped_tasks(deployer, described("service", status="ROLLBACK_COMPLETE", with_outputs=False)["Stacks"][0])
    stream = logs.web_log_stream(logs.task_id(TASK_ARN))
    said = f"its lines could not be read ({code}): the rollback of the failed first create deleted the log group, and its logs with it"
    assert lines[-1] == f"    {stream}: {said}", lines


def test_a_failed_first_create_says_its_stopped_tasks_as_its_rollback_starts_before_their_log_group_goes(aws):
    # The rollback of a failed first create deletes the log group once the service is gone (DeletionPolicy
    # RetainExceptOnCreate): read when the stack had settled (finish), the stopped tasks' logs were gone with it, on the
    # first deploy of a release that fails, where they say most. They are read once, when the wait first sees the rollback.

    service = deploy.load_layer(ENV, "service", ROOT / "output")
    why = "Resource handler returned message: \"Error occurred during operation 'ECS Deployment Circuit Breaker was triggered'.\""
    rolling = described("service", status="ROLLBACK_IN_PROGRESS", with_outputs=False)
    trail = service_create_failed(1, 300, 301, why)
    service_poll(aws, rolling, *trail)
    one_stopped_task(aws)
    last_words_logged(aws, log_event(299, "django.core.exceptions.ImproperlyConfigured: SECRET_KEY"))
    gone = event("service", "LogGroup", "DELETE_COMPLETE", 320, "AWS::Logs::LogGroup")
    ended = described("service", status="ROLLBACK_COMPLETE", with_outputs=False)
    aws.cf.add_response("describe_stacks", ended, {"StackName": stack_id("service")})
    trail += [gone, event("service", stack("service"), "ROLLBACK_COMPLETE", 330)]
    aws.cf.add_response("describe_stack_events", stubbed_aws.events(*trail), {"StackName": stack_id("service")})

    made = waiting_deployer(aws)
    made.stacks[stack("service")] = rolling["Stacks"][0]
    found = made.wait_for_stack(stack("service"), deploy.deployer.Deployer.execution_token(cs_name("service")), NOW)
    with pytest.raises(deploy.Failure):
        made.finish(service, found)  # the strict stubs: a second read of the tasks would be a call no response is queued for
    out = made.out.getvalue().splitlines()
    assert [line for line in out if line.startswith("stopped tasks of")] == [f"stopped tasks of {SERVICE}: the latest 1 of 1, newest first"]
    said = out.index(f"      {NOW + timedelta(seconds=299):%Y-%m-%d %H:%M:%S}  django.core.exceptions.ImproperlyConfigured: SECRET_KEY")
    assert said < next(i for i, line in enumerate(out) if "LogGroup" in line and "DELETE_COMPLETE" in line), out  # before it went


def test_a_task_that_never_logged_is_not_said_to_have_lost_its_logs_to_the_rollback_that_has_not_deleted_them(aws):
    # f292311 reads the stopped tasks when the wait first sees ROLLBACK_IN_PROGRESS, before the rollback deletes the log
    # group; 79a356f's line for a failed first create ("the rollback ... deletes the log group, and its logs with it") was
    # written for the read at ROLLBACK_COMPLETE and now answers every failed read at ROLLBACK_IN_PROGRESS too. A task whose
    # web container never started (an image that cannot be pulled: TaskFailedToStart, no exit code) wrote no stream:
    # GetLogEvents says "The specified log stream does not exist." while the group is still there, and the line tells the
    # operator its logs went with the log group, i.e. that there were logs and they are lost, where there were none.
    from scripts.deploy import logs

    listed = {"cluster": CLUSTER, "serviceName": SERVICE, "desiredStatus": "STOPPED"}
    never_ran = ecs_task("STOPPED", None, stopped_reason="CannotPullContainerError: pull image manifest has been retried 5 time(s)")
    aws.ecs.add_response("list_tasks", {"taskArns": [TASK_ARN]}, listed)
    aws.ecs.add_response("describe_tasks", {"tasks": [never_ran], "failures": []}, {"cluster": CLUSTER, "tasks": [TASK_ARN]})
    aws.stubber("logs").add_client_error("get_log_events", "ResourceNotFoundException", "The specified log stream does not exist.", 400)
    deployer = reading_deployer(aws, NOW)
    rolling_back = described("service", status="ROLLBACK_IN_PROGRESS", with_outputs=False)["Stacks"][0]
    lines = logs.stopped_tasks(deployer, rolling_back)
    stream = logs.web_log_stream(logs.task_id(TASK_ARN))
    assert "deletes the log group, and its logs with it" not in lines[-1], lines
    assert lines[-1] == f"    no log stream {stream}: the web container wrote nothing (it may never have started)", lines


def test_a_stopped_tasks_log_unread_while_the_first_create_rolls_back_is_said_readable_until_the_rollback_deletes_it(aws):
    from scripts.deploy import logs

    one_stopped_task(aws)
    aws.stubber("logs").add_client_error("get_log_events", "AccessDeniedException", "not authorized to perform: logs:GetLogEvents", 400)
    now = ecs_task("STOPPED", 1)["createdAt"] + timedelta(minutes=42, seconds=5)
    deployer = reading_deployer(aws, now)
    lines = logs.stopped_tasks(deployer, described("service", status="ROLLBACK_IN_PROGRESS", with_outputs=False)["Stacks"][0])
    stream = logs.web_log_stream(logs.task_id(TASK_ARN))
    assert lines[-1] == (
        f"    {stream}: its lines could not be read (AccessDeniedException); make logs ENV={ENV} SINCE=43m reads them until the "
        "rollback deletes the log group"
    ), lines


def test_a_wait_on_a_first_create_rolling_back_reads_no_stopped_tasks_where_it_saw_no_failure_of_the_service(aws):
    # A wait this run did not start (a rollback another run left: no token) saw no failure, and a create whose log group
    # failed (its name taken) had no service: neither reads the tasks early (a service never made: "Service not found").
    rolling = described("service", status="ROLLBACK_IN_PROGRESS", with_outputs=False)
    taken = event("service", "LogGroup", "CREATE_FAILED", 5, "AWS::Logs::LogGroup", "Resource of type 'AWS::Logs::LogGroup' already exists")
    for trail, token in (([], None), ([taken], deploy.deployer.Deployer.execution_token(cs_name("service")))):
        service_poll(aws, rolling, *trail, event("service", stack("service"), "ROLLBACK_IN_PROGRESS", 6))
        ended = described("service", status="ROLLBACK_COMPLETE", with_outputs=False)
        aws.cf.add_response("describe_stacks", ended, {"StackName": stack_id("service")})
        aws.cf.add_response(
            "describe_stack_events",
            stubbed_aws.events(
                *trail,
                event("service", stack("service"), "ROLLBACK_IN_PROGRESS", 6),
                event("service", stack("service"), "ROLLBACK_COMPLETE", 9),
            ),
            {"StackName": stack_id("service")},
        )
        made = waiting_deployer(aws)
        made.stacks[stack("service")] = rolling["Stacks"][0]
        assert made.wait_for_stack(stack("service"), token, NOW)["StackStatus"] == "ROLLBACK_COMPLETE"
        assert "stopped tasks" not in made.out.getvalue() and not made.tasks_said, made.out.getvalue()  # no ECS call: none queued


def test_a_first_create_of_another_layer_rolled_back_with_no_resource_failed_reads_no_stopped_tasks(aws):
    # (mutation audit, A2's W52) Only the service layer has tasks: a first create of another layer that rolls back with no
    # resource's failure listed (the sandbox's stack events at times name none; the stack's own failed events stay) is
    # no rollback trigger's, and its wait reads no stopped tasks, of a service it does not hold. Without the layer check,
    # the alb's create rolling back read ECS for its "stopped tasks".
    token = deploy.deployer.Deployer.execution_token(cs_name("alb"))
    rolling = described("alb", status="ROLLBACK_IN_PROGRESS", with_outputs=False)
    trail = [event("alb", stack("alb"), "CREATE_IN_PROGRESS", 1), event("alb", stack("alb"), "ROLLBACK_IN_PROGRESS", 6)]
    aws.cf.add_response("describe_stacks", rolling, {"StackName": stack_id("alb")})
    aws.cf.add_response("describe_stack_events", stubbed_aws.events(*trail), {"StackName": stack_id("alb")})
    ended = described("alb", status="ROLLBACK_COMPLETE", with_outputs=False)
    aws.cf.add_response("describe_stacks", ended, {"StackName": stack_id("alb")})
    trail += [event("alb", stack("alb"), "ROLLBACK_COMPLETE", 9)]
    aws.cf.add_response("describe_stack_events", stubbed_aws.events(*trail), {"StackName": stack_id("alb")})
    made = waiting_deployer(aws)
    made.stacks[stack("alb")] = rolling["Stacks"][0]
    assert made.wait_for_stack(stack("alb"), token, NOW)["StackStatus"] == "ROLLBACK_COMPLETE"
    assert "stopped tasks" not in made.out.getvalue() and not made.tasks_tried, made.out.getvalue()  # no ECS call: none queued


def test_a_first_create_rolled_back_by_its_rollback_trigger_says_its_stopped_tasks_before_their_log_group_goes(aws):
    # (an attacker review of fab3006) The service's first create carries the release alarms as rollback triggers
    # (Deployer.rollback_configuration; CREATE change sets too). One that fires while CloudFormation watches the created
    # stack rolls the create back with no resource failed: before fab3006, tasks_tell_why ("a rollback trigger (no resource
    # did)") read the stopped tasks as the rollback started; fab3006 reads them early only where the ECS service's create
    # failed, so they are read by finish at ROLLBACK_COMPLETE, after the rollback deleted the log group (RetainExceptOnCreate),
    # and their last lines are lost. The wait of a create this run started (its token) is no wait on someone's rollback.
    # (The stack event's reason below is illustrative, not AWS's exact wording.)

    service = deploy.load_layer(ENV, "service", ROOT / "output")
    rolling = described("service", status="ROLLBACK_IN_PROGRESS", with_outputs=False)
    trail = [event("service", stack("service"), "CREATE_IN_PROGRESS", 1)]
    trail += [event("service", "Service", "CREATE_COMPLETE", 300, "AWS::ECS::Service")]
    trail += [event("service", stack("service"), "ROLLBACK_IN_PROGRESS", 400, reason="Rollback triggered by alarm: target 5XX")]
    service_poll(aws, rolling, *trail)
    one_stopped_task(aws)
    last_words_logged(aws, log_event(399, "ERROR 500 /api/orders: relation does not exist"))
    gone = event("service", "LogGroup", "DELETE_COMPLETE", 420, "AWS::Logs::LogGroup")
    ended = described("service", status="ROLLBACK_COMPLETE", with_outputs=False)
    aws.cf.add_response("describe_stacks", ended, {"StackName": stack_id("service")})
    trail += [gone, event("service", stack("service"), "ROLLBACK_COMPLETE", 430)]
    aws.cf.add_response("describe_stack_events", stubbed_aws.events(*trail), {"StackName": stack_id("service")})

    made = waiting_deployer(aws)
    made.stacks[stack("service")] = rolling["Stacks"][0]
    found = made.wait_for_stack(stack("service"), deploy.deployer.Deployer.execution_token(cs_name("service")), NOW)
    with pytest.raises(deploy.Failure):
        made.finish(service, found)
    out = made.out.getvalue().splitlines()
    said = out.index(f"      {NOW + timedelta(seconds=399):%Y-%m-%d %H:%M:%S}  ERROR 500 /api/orders: relation does not exist")
    assert said < next(i for i, line in enumerate(out) if "LogGroup" in line and "DELETE_COMPLETE" in line), out  # before it went


def test_a_stopped_tasks_log_unread_once_the_first_creates_rollback_failed_is_not_said_to_await_the_rollbacks_deletion(aws):
    # (an attacker review of fab3006) ROLLBACK_FAILED is in FIRST_CREATE_FAILED, so a log unread there is said readable "until the
    # rollback deletes the log group": the rollback has ended (failed) and deletes nothing more; the group stays, and the
    # way on's make destroy keeps it too (RetainExceptOnCreate) until make purge. finish reads the tasks at ROLLBACK_FAILED
    # where the wait did not read them early: a rollback trigger's rollback whose service deletion failed, say.
    from scripts.deploy import logs

    one_stopped_task(aws)
    aws.stubber("logs").add_client_error("get_log_events", "ThrottlingException", "Rate exceeded", 400)
    deployer = reading_deployer(aws, NOW)
    lines = logs.stopped_tasks(deployer, described("service", status="ROLLBACK_FAILED", with_outputs=False)["Stacks"][0])
    assert "until the rollback deletes the log group" not in lines[-1], lines
    assert f"make logs ENV={ENV}" in lines[-1], lines


@pytest.mark.parametrize("status", ["ROLLBACK_IN_PROGRESS", "ROLLBACK_FAILED"])
def test_a_log_group_not_found_is_not_said_to_be_a_container_that_wrote_nothing(aws, status):
    # (an attacker review of fab3006) ResourceNotFoundException is GetLogEvents' answer for a missing group as well as a missing
    # stream. Outside ROLLBACK_COMPLETE every such answer is said "no log stream ...: the web container wrote nothing", also
    # where the rollback (or a ROLLBACK_FAILED one, which got past the log group and failed on the key or a role) deleted the
    # group with what the container wrote. The message names which one is missing.
    from scripts.deploy import logs

    one_stopped_task(aws)
    aws.stubber("logs").add_client_error("get_log_events", "ResourceNotFoundException", "The specified log group does not exist.", 400)
    deployer = reading_deployer(aws, NOW)
    lines = logs.stopped_tasks(deployer, described("service", status=status, with_outputs=False)["Stacks"][0])
    assert "wrote nothing" not in lines[-1], lines
    said = "its lines could not be read (ResourceNotFoundException): the rollback of the failed first create deleted the log group"
    assert lines[-1] == f"    {logs.web_log_stream(logs.task_id(TASK_ARN))}: {said}, and its logs with it", lines


@pytest.mark.parametrize(
    "found, times",
    [
        # Ctrl-C in the wait of a service's first create left it CREATE_IN_PROGRESS; the next make deploy waits on it (ready():
        # "waiting for it to settle", no token) and sees the ECS service's CREATE_FAILED in that wait
        ("CREATE_IN_PROGRESS", (1, 300, 301)),
        # the ECS service's create failed and the rollback started before the next make deploy, whose ready() reads
        # ROLLBACK_IN_PROGRESS at once: the failure came before the run started, and print_events from now left it out
        ("ROLLBACK_IN_PROGRESS", (-900, -60, -59)),
    ],
)
def test_a_deploy_that_finds_a_first_create_another_run_left_says_its_stopped_tasks_before_the_rollback_deletes_them(aws, found, times):
    # (attacker reviews of 7746b01 and 39badea) ready() refuses the ROLLBACK_COMPLETE stack without finish(): where its wait
    # did not read the stopped tasks as the rollback started, they were said not at all, and the rollback deletes their log
    # group (RetainExceptOnCreate). It follows such a create from its CreationTime: every event of a first create that is
    # rolling back is of that one create.
    service = deploy.load_layer(ENV, "service", ROOT / "output")
    started, failed, rolling_back = times
    trail = service_create_failed(started, failed, rolling_back, "ECS Deployment Circuit Breaker was triggered")
    service_poll(aws, described("service", status="ROLLBACK_IN_PROGRESS", with_outputs=False), *trail)
    one_stopped_task(aws)
    last_words_logged(aws, log_event(failed - 1, "ERROR cannot connect to the database"))
    trail += [event("service", "LogGroup", "DELETE_COMPLETE", rolling_back + 119, "AWS::Logs::LogGroup")]
    trail += [event("service", stack("service"), "ROLLBACK_COMPLETE", rolling_back + 129)]
    service_poll(aws, described("service", status="ROLLBACK_COMPLETE", with_outputs=False), *trail)

    made = waiting_deployer(aws)
    made.stacks[stack("service")] = described("service", status=found, with_outputs=False)["Stacks"][0]
    with pytest.raises(deploy.Failure):
        made.ready(service)
    out = made.out.getvalue()
    # before the log group's deletion is said: read as the rollback started, not from what the failure's way on reads
    assert out.index("ERROR cannot connect to the database") < out.index("DELETE_COMPLETE"), out


def test_a_first_create_whose_rollback_status_is_read_before_its_events_list_the_failure_reads_no_service_never_made(aws):
    # (an attacker review of 7746b01) tasks_tell_why takes "no resource failed" for a rollback trigger. The wait reads
    # DescribeStacks first and then the events, and does not trust the two to agree (a final status counts only once the stack's
    # own event says it): a poll that reads ROLLBACK_IN_PROGRESS before the events list the log group's CREATE_FAILED (nor the
    # stack's own ROLLBACK_IN_PROGRESS) reads the stopped tasks of a service never made, once, and marks them said - the case
    # fab3006 kept from an early read. No ECS response is queued: a call is a failure of this test.
    rolling = described("service", status="ROLLBACK_IN_PROGRESS", with_outputs=False)
    taken = event("service", "LogGroup", "CREATE_FAILED", 5, "AWS::Logs::LogGroup", "Resource of type 'AWS::Logs::LogGroup' already exists")
    begun = event("service", stack("service"), "CREATE_IN_PROGRESS", 1)
    polls = [
        ("ROLLBACK_IN_PROGRESS", [begun]),  # the events not there yet
        ("ROLLBACK_IN_PROGRESS", [begun, taken, event("service", stack("service"), "ROLLBACK_IN_PROGRESS", 6)]),
        (
            "ROLLBACK_COMPLETE",
            [
                begun,
                taken,
                event("service", stack("service"), "ROLLBACK_IN_PROGRESS", 6),
                event("service", stack("service"), "ROLLBACK_COMPLETE", 9),
            ],
        ),
    ]
    for status, trail in polls:
        service_poll(aws, described("service", status=status, with_outputs=False), *trail)
    made = waiting_deployer(aws)
    made.stacks[stack("service")] = rolling["Stacks"][0]
    token = deploy.deployer.Deployer.execution_token(cs_name("service"))
    assert made.wait_for_stack(stack("service"), token, NOW)["StackStatus"] == "ROLLBACK_COMPLETE"
    assert "stopped tasks" not in made.out.getvalue() and not made.tasks_said, made.out.getvalue()


def test_a_first_create_whose_early_read_of_its_stopped_tasks_failed_says_their_stop_reasons_when_it_ends(aws):
    # (an attacker review of 39badea; a judgement call) the read as the rollback starts marks the tasks said whether it read
    # them or not: a throttled ListTasks there ("could not read the stopped tasks") leaves finish() saying nothing of them at
    # ROLLBACK_COMPLETE, when ECS still lists the stopped tasks (stop codes, stop reasons, exit codes) and only their log is
    # gone - what the README says is left where the early read fails.
    from scripts.deploy import logs

    service = deploy.load_layer(ENV, "service", ROOT / "output")
    breaker = "ECS Deployment Circuit Breaker was triggered"
    trail = service_create_failed(1, 300, 301, breaker)
    rolling = described("service", status="ROLLBACK_IN_PROGRESS", with_outputs=False)
    service_poll(aws, rolling, *trail)
    listed = {"cluster": CLUSTER, "serviceName": SERVICE, "desiredStatus": "STOPPED"}
    aws.ecs.add_client_error("list_tasks", "ThrottlingException", "Rate exceeded", 400, expected_params=listed)
    ended = described("service", status="ROLLBACK_COMPLETE", with_outputs=False)
    trail += [event("service", "LogGroup", "DELETE_COMPLETE", 420, "AWS::Logs::LogGroup")]
    trail += [event("service", stack("service"), "ROLLBACK_COMPLETE", 430)]
    service_poll(aws, ended, *trail)
    aws.ecs.add_response("list_tasks", {"taskArns": [TASK_ARN]}, listed)
    aws.ecs.add_response("describe_tasks", {"tasks": [ecs_task("STOPPED", 1)], "failures": []}, {"cluster": CLUSTER, "tasks": [TASK_ARN]})
    gone = "The specified log group does not exist."
    aws.logs.add_client_error("get_log_events", "ResourceNotFoundException", gone, 400)

    made = waiting_deployer(aws)
    made.stacks[stack("service")] = rolling["Stacks"][0]
    token = deploy.deployer.Deployer.execution_token(cs_name("service"))
    found = made.wait_for_stack(stack("service"), token, NOW)
    assert "could not read the stopped tasks" in made.out.getvalue(), made.out.getvalue()
    with pytest.raises(deploy.Failure):
        made.finish(service, found)
    out = made.out.getvalue()
    assert f"task {logs.task_id(TASK_ARN)}" in out, out


def test_a_persistently_unreadable_list_of_stopped_tasks_is_said_once_in_a_rollback_not_at_every_poll(aws):
    # (an attacker review of ec9e3b3) an early read that fails leaves tasks_said False "so that finish tries again"; but
    # say_stopped_tasks_before_their_logs_go runs at every poll, and every poll of the rollback (every 2 s, for the minutes
    # it takes to delete the service) reads again and says "could not read the stopped tasks" again: a role without
    # ecs:ListTasks (AccessDeniedException every time) floods the wait with the same line, then finish says it once more.
    service = deploy.load_layer(ENV, "service", ROOT / "output")
    breaker = "ECS Deployment Circuit Breaker was triggered"
    trail = service_create_failed(1, 300, 301, breaker)
    rolling = described("service", status="ROLLBACK_IN_PROGRESS", with_outputs=False)
    listed = {"cluster": CLUSTER, "serviceName": SERVICE, "desiredStatus": "STOPPED"}
    denied = "User is not authorized to perform: ecs:ListTasks"
    for seconds in (302, 303, 304, 305):  # four polls of the rollback, one resource deleted in each
        service_poll(aws, rolling, *trail)
        if seconds == 302:  # read once in the wait: strict stubs, a read at a later poll is a call none is queued for
            aws.ecs.add_client_error("list_tasks", "AccessDeniedException", denied, 400, expected_params=listed)
        trail += [event("service", f"Resource{seconds}", "DELETE_COMPLETE", seconds + 0.5, "AWS::EC2::SecurityGroup")]
    ended = described("service", status="ROLLBACK_COMPLETE", with_outputs=False)
    trail += [event("service", stack("service"), "ROLLBACK_COMPLETE", 430)]
    service_poll(aws, ended, *trail)
    aws.ecs.add_client_error("list_tasks", "AccessDeniedException", denied, 400, expected_params=listed)  # finish's try

    made = waiting_deployer(aws)
    made.stacks[stack("service")] = rolling["Stacks"][0]
    token = deploy.deployer.Deployer.execution_token(cs_name("service"))
    found = made.wait_for_stack(stack("service"), token, NOW)
    with pytest.raises(deploy.Failure):
        made.finish(service, found)
    out = made.out.getvalue()
    said = [line for line in out.splitlines() if line.startswith("could not read the stopped tasks")]
    assert len(said) == 2, out  # once as the rollback starts, once more at the end


def test_a_deploy_that_finds_a_first_create_rolling_back_and_cannot_read_its_stopped_tasks_early_says_their_stop_reasons(aws):
    # (an attacker review of ec9e3b3) ec9e3b3 leaves a failed early read unsaid "so the deploy's end says their stop reasons
    # at least" (finish); but a deploy that finds the first create ROLLBACK_IN_PROGRESS waits in ready(), which ends the
    # run at ROLLBACK_COMPLETE with its own Failure, never calling finish(): a throttled ListTasks at the one poll of the
    # rollback leaves "could not read the stopped tasks" as all that is said of them, while ECS still lists them.
    service = deploy.load_layer(ENV, "service", ROOT / "output")
    rolling = described("service", status="ROLLBACK_IN_PROGRESS", with_outputs=False)
    breaker = "ECS Deployment Circuit Breaker was triggered"
    trail = service_create_failed(-900, -60, -59, breaker)
    service_poll(aws, rolling, *trail)
    listed = {"cluster": CLUSTER, "serviceName": SERVICE, "desiredStatus": "STOPPED"}
    aws.ecs.add_client_error("list_tasks", "ThrottlingException", "Rate exceeded", 400, expected_params=listed)
    ended = described("service", status="ROLLBACK_COMPLETE", with_outputs=False)
    trail += [event("service", "LogGroup", "DELETE_COMPLETE", 120, "AWS::Logs::LogGroup")]
    trail += [event("service", stack("service"), "ROLLBACK_COMPLETE", 130)]
    service_poll(aws, ended, *trail)
    aws.ecs.add_response("list_tasks", {"taskArns": [TASK_ARN]}, listed)  # the read the end of the run may make again
    aws.ecs.add_response("describe_tasks", {"tasks": [ecs_task("STOPPED", 1)], "failures": []}, {"cluster": CLUSTER, "tasks": [TASK_ARN]})
    aws.logs.add_client_error("get_log_events", "ResourceNotFoundException", "The specified log group does not exist.", 400)

    made = waiting_deployer(aws)
    made.stacks[stack("service")] = rolling["Stacks"][0]
    with pytest.raises(deploy.Failure):
        made.ready(service)
    out = made.out.getvalue()
    assert "could not read the stopped tasks" in out, out
    assert f"task {TASK_ID}" in out, out  # its stop reason and exit code, at least


def test_a_deploy_that_finds_a_first_create_a_rollback_trigger_is_undoing_says_its_stopped_tasks(aws):
    # (an attacker review of ec9e3b3; a judgement call) ready() now follows a first create it finds from the stack's
    # creation, "so that the failure that rolls it back (and the stopped tasks, before their log group goes) are said"; a
    # first create a rollback trigger undid (no resource failed: a release alarm fired) is read early only where the wait
    # is ours (a token), and ready() ends at ROLLBACK_COMPLETE without finish(): its stopped tasks are never said, though
    # this wait saw every event of the create (the stack's ROLLBACK_IN_PROGRESS and no resource's failure).
    service = deploy.load_layer(ENV, "service", ROOT / "output")
    rolling = described("service", status="ROLLBACK_IN_PROGRESS", with_outputs=False)
    alarm = "The following rollback trigger(s) are in ALARM state: startupwebapp-prod-release-5xx"
    trail = [event("service", stack("service"), "CREATE_IN_PROGRESS", -900)]
    trail += [event("service", "Service", "CREATE_COMPLETE", -300, "AWS::ECS::Service")]
    trail += [event("service", stack("service"), "ROLLBACK_IN_PROGRESS", -59, reason=alarm)]
    service_poll(aws, rolling, *trail)
    one_stopped_task(aws)
    stream = logs_stream()
    expected = {"logGroupName": LOG_GROUP, "logStreamName": stream, "startFromHead": False, "limit": 20}
    aws.logs.add_response("get_log_events", {"events": [log_event(-120, "ERROR 500 on /health")], "nextForwardToken": "f/1"}, expected)
    ended = described("service", status="ROLLBACK_COMPLETE", with_outputs=False)
    trail += [event("service", "LogGroup", "DELETE_COMPLETE", 120, "AWS::Logs::LogGroup")]
    trail += [event("service", stack("service"), "ROLLBACK_COMPLETE", 130)]
    service_poll(aws, ended, *trail)

    made = waiting_deployer(aws)
    made.stacks[stack("service")] = rolling["Stacks"][0]
    with pytest.raises(deploy.Failure):
        made.ready(service)
    out = made.out.getvalue()
    assert "ERROR 500 on /health" in out, out


def logs_stream():
    from scripts.deploy import logs

    return logs.web_log_stream(logs.task_id(TASK_ARN))


@pytest.mark.parametrize("read_before", ["ROLLBACK_IN_PROGRESS", "CREATE_IN_PROGRESS"])
def test_a_deploy_whose_wait_finds_the_first_create_it_saw_rolling_back_already_rolled_back_says_its_stop_reasons(aws, read_before):
    # (an attacker review of f5c1866) ready() tries the read again after its wait only where the wait tried it early
    # (tasks_tried); a wait whose every poll found the rollback over (the status ready() judged was read before: a full
    # make deploy reads each stack of ours once a run, at its start, and the layers before the service take minutes)
    # never tries it, and ready() ends at ROLLBACK_COMPLETE with nothing of the stopped tasks said, though its wait
    # printed the service's failure from the create's start and ECS still lists them. finish() says them there.
    service = deploy.load_layer(ENV, "service", ROOT / "output")
    rolling = described("service", status=read_before, with_outputs=False)
    breaker = "ECS Deployment Circuit Breaker was triggered"
    trail = [event("service", stack("service"), "CREATE_IN_PROGRESS", -900)]
    trail += [event("service", "Service", "CREATE_FAILED", -400, "AWS::ECS::Service", breaker)]
    trail += [event("service", stack("service"), "ROLLBACK_IN_PROGRESS", -399)]
    trail += [event("service", "LogGroup", "DELETE_COMPLETE", -200, "AWS::Logs::LogGroup")]
    trail += [event("service", stack("service"), "ROLLBACK_COMPLETE", -190)]
    ended = described("service", status="ROLLBACK_COMPLETE", with_outputs=False)
    aws.cf.add_response("describe_stacks", ended, {"StackName": stack_id("service")})
    aws.cf.add_response("describe_stack_events", stubbed_aws.events(*trail), {"StackName": stack_id("service")})
    listed = {"cluster": CLUSTER, "serviceName": SERVICE, "desiredStatus": "STOPPED"}
    aws.ecs.add_response("list_tasks", {"taskArns": [TASK_ARN]}, listed)
    aws.ecs.add_response("describe_tasks", {"tasks": [ecs_task("STOPPED", 1)], "failures": []}, {"cluster": CLUSTER, "tasks": [TASK_ARN]})
    aws.logs.add_client_error("get_log_events", "ResourceNotFoundException", "The specified log group does not exist.", 400)

    made = deploy.Deployer(aws.clients.__getitem__, ENV, out=io.StringIO(), err=io.StringIO(), sleep=lambda s: None, now=lambda: NOW)
    made.stacks[stack("service")] = rolling["Stacks"][0]  # read at the run's start
    with pytest.raises(deploy.Failure):
        made.ready(service)
    out = made.out.getvalue()
    assert "ECS Deployment Circuit Breaker was triggered" in out, out  # the wait printed the service's failure
    assert f"task {TASK_ID}" in out, out  # its stop reason and exit code, as finish() would say them


@pytest.mark.parametrize("early", ["throttled", "none"])
def test_a_first_create_a_rollback_trigger_undid_whose_rollback_failed_on_another_resource_says_its_stop_reasons(aws, early):
    # (an attacker review of a42c361) ready() now asks tasks_tell_why after its wait, over every event from the stack's
    # creation; a resource whose delete failed in the rollback (a role someone attached a policy to: DELETE_FAILED, the stack
    # ROLLBACK_FAILED) counts there as "another resource's failure", though a rollback trigger, not it, undid the create.
    # throttled: the early read (the trigger judged at ROLLBACK_IN_PROGRESS) failed; before a42c361 ready() tried it again
    # (tasks_tried and not tasks_said), now it does not. none: the status this run read first is minutes old and no poll saw
    # the rollback under way, the case a42c361 is for. Either way nothing of the stopped tasks is said, while the README
    # says they are, once the wait has ended, and that only another resource's failure (the cause, a log group's) keeps them.
    service = deploy.load_layer(ENV, "service", ROOT / "output")
    read_before = "ROLLBACK_IN_PROGRESS" if early == "throttled" else "CREATE_IN_PROGRESS"
    first = described("service", status=read_before, with_outputs=False)
    alarm = "The following rollback trigger(s) are in ALARM state: startupwebapp-prod-release-5xx"
    trail = [event("service", stack("service"), "CREATE_IN_PROGRESS", -900)]
    trail += [event("service", "Service", "CREATE_COMPLETE", -300, "AWS::ECS::Service")]
    trail += [event("service", stack("service"), "ROLLBACK_IN_PROGRESS", -59, reason=alarm)]
    listed = {"cluster": CLUSTER, "serviceName": SERVICE, "desiredStatus": "STOPPED"}
    if early == "throttled":
        service_poll(aws, described("service", status="ROLLBACK_IN_PROGRESS", with_outputs=False), *trail)
        aws.ecs.add_client_error("list_tasks", "ThrottlingException", "Rate exceeded", 400, expected_params=listed)
    refused = "Cannot delete entity, must detach all policies first."
    trail += [event("service", "TaskRole", "DELETE_FAILED", 100, "AWS::IAM::Role", refused)]
    trail += [event("service", stack("service"), "ROLLBACK_FAILED", 130)]
    service_poll(aws, described("service", status="ROLLBACK_FAILED", with_outputs=False), *trail)
    one_stopped_task(aws)  # ECS still lists them
    aws.logs.add_client_error("get_log_events", "ResourceNotFoundException", "The specified log group does not exist.", 400)

    made = waiting_deployer(aws)
    made.stacks[stack("service")] = first["Stacks"][0]
    with pytest.raises(deploy.Failure):
        made.ready(service)
    out = made.out.getvalue()
    assert f"task {TASK_ID}" in out, out  # its stop reason and exit code


def test_a_failure_stamped_in_the_same_instant_as_the_rollback_it_caused_still_counts_as_its_cause(aws):
    # (an attacker review of 37fed47) tasks_tell_why takes as causes the failures listed before the stack's own
    # UPDATE_ROLLBACK_IN_PROGRESS: list order, not time. DescribeStackEvents is "in reverse chronological order"; of two
    # events of one Timestamp it says nothing, and a log group's UPDATE_FAILED listed above the rollback it caused (same
    # instant) is then taken for a failure of the rollback: no cause, "a rollback trigger", and the stopped tasks said.
    from scripts.deploy import text

    trail = [
        event("service", stack("service"), "UPDATE_IN_PROGRESS", 1),
        event("service", "LogGroup", "UPDATE_FAILED", 300, "AWS::Logs::LogGroup", "Resource handler returned message: ..."),
        event("service", stack("service"), "UPDATE_ROLLBACK_IN_PROGRESS", 300),
        event("service", stack("service"), "UPDATE_ROLLBACK_COMPLETE", 400),
    ]
    page = stubbed_aws.events(*trail)["StackEvents"]  # newest first; the tie keeps the failure above the rollback
    made = waiting_deployer(aws)
    made.events = [text.readable_event(e) for e in reversed(page)]  # oldest first, as print_events keeps them
    assert not made.tasks_tell_why(stack("service"))


def test_a_failure_of_an_update_rollback_itself_is_not_taken_for_its_cause(aws):
    # (mutation audit, A2's W49) An update a rollback trigger undid (no resource failed before its
    # UPDATE_ROLLBACK_IN_PROGRESS) whose rollback then fails a resource (a role it cannot put back): "A stack enters
    # the UPDATE_ROLLBACK_FAILED state when CloudFormation can't roll back all changes after a failed stack update"
    # (https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_ContinueUpdateRollback.html). That failure
    # came after the rollback and did not cause it: the stopped tasks still tell why. With the update's rollback not
    # taken for the rollback's start, every failure counted as a cause and the tasks were not said.
    from scripts.deploy import text

    trail = [
        event("service", stack("service"), "UPDATE_IN_PROGRESS", 1),
        event("service", stack("service"), "UPDATE_ROLLBACK_IN_PROGRESS", 300),
        event("service", "TaskRole", "UPDATE_FAILED", 350, "AWS::IAM::Role", "Resource handler returned message: ..."),
        event("service", stack("service"), "UPDATE_ROLLBACK_FAILED", 400),
    ]
    made = waiting_deployer(aws)
    made.events = [text.readable_event(e) for e in reversed(stubbed_aws.events(*trail)["StackEvents"])]  # oldest first
    assert made.tasks_tell_why(stack("service"))


@pytest.mark.parametrize("cmd", ["python manage.py " + "x" * 8175, "a " * 4095 + "a"], ids=["one-long-word", "4096-short-words"])
def test_a_command_whose_overrides_exceed_runtasks_8192_characters_is_refused_before_any_aws_call(cmd):
    """RunTask: "A total of 8192 characters are allowed for overrides. This limit includes the JSON
    formatting characters of the override structure" (API_RunTask.html, overrides; ECS answers
    InvalidParameterException, "container overrides length must be at most 8192"). CMD is taken up to
    8,192 characters of its own, so a command ECS can never run passed every check before any AWS
    call, and failed only at RunTask: after asking, after reading the service (and, with TAG=,
    registering a task definition copy to deregister again). 4,096 one-letter words are 8,191
    characters, and 16 KB of overrides."""
    from scripts.deploy import MOST_CMD_CHARACTERS

    assert len(cmd) <= MOST_CMD_CHARACTERS  # within the bound CMD= is checked against today
    override = {"containerOverrides": [{"name": tasks.CONTAINER_NAME, "command": cmd.split()}]}
    assert len(json.dumps(override, separators=(",", ":"))) > 8192  # what ECS refuses

    def no_clients(service):
        raise AssertionError(f"an AWS client was made: {service}")

    out, err = io.StringIO(), io.StringIO()
    assert deploy.main(["task", "--env", ENV, "--cmd", cmd, "--yes"], clients=no_clients, out=out, err=err, interactive=False) == 2
    assert err.getvalue().count("\n") == 1 and err.getvalue().startswith("error: CMD")


def test_continue_where_releases_roll_names_the_strategies_a_release_waits_with(aws):
    # (RV: mutation audit of 41df1bb) the strategies joined as "BLUE_GREEN, CANARY, LINEAR": every test passed
    found = described("service", parameters=PARAMETERS | {"DeploymentStrategy": "ROLLING"})
    found["Stacks"][0]["Outputs"] = [
        {"OutputKey": k, "OutputValue": v} for k, v in (("ClusterName", CLUSTER), ("ServiceName", SERVICE), ("LogGroupName", LOG_GROUP))
    ]
    aws.cf.add_response("describe_stacks", found, {"StackName": stack("service")})
    assert aws.run("continue", "--yes") == 2
    assert "with DeploymentStrategy BLUE_GREEN, CANARY or LINEAR and TestPauseMinutes above 0" in aws.err, aws.err
