"""`make logs`: FilterLogEvents over the service's log group (scripts/deploy/logs.py), against
botocore Stubber with the response shapes CloudWatch Logs sends."""

import io

import pytest
from stubbed_aws import ENV, LOG_GROUP, NOW, OUTPUT, log_event, stack, stubbed_tasks
from stubbed_aws import event as a_stack_event

from scripts import deploy
from scripts.deploy import logs
from templates.inputs import LOG_RETENTION_DAYS


@pytest.fixture
def aws(monkeypatch):
    yield from stubbed_tasks(monkeypatch)


TEN_MINUTES_AGO = int(NOW.timestamp() * 1000) - 600_000


def filtered(task_id, seconds, message, event_id):
    return log_event(seconds, message) | {"logStreamName": f"service/web/{task_id}", "eventId": event_id}


def page(aws, start, events, token=None, following=None):
    expected = {"logGroupName": LOG_GROUP, "startTime": start} | ({"nextToken": token} if token else {})
    answer = {"events": events, "searchedLogStreams": []} | ({"nextToken": following} if following else {})
    aws.logs.add_response("filter_log_events", answer, expected)


def test_logs_pages_through_the_group_and_prints_time_task_id_and_message(aws):
    aws.service_stack()
    page(aws, TEN_MINUTES_AGO, [filtered("aaaa", -300, "GET /health 200\n", "1")], following="n/1")
    page(aws, TEN_MINUTES_AGO, [], token="n/1", following="n/2")  # an empty page with a token: go on
    page(aws, TEN_MINUTES_AGO, [filtered("bbbb", -60, "POST /api/user/login 405", "2")], token="n/2")
    assert aws.run("logs") == 0, aws.err
    assert aws.out.splitlines() == [
        "2025-11-25 11:55:00  aaaa  GET /health 200",
        "2025-11-25 11:59:00  bbbb  POST /api/user/login 405",
    ]


@pytest.mark.parametrize("status", ["UPDATE_COMPLETE", "ROLLBACK_COMPLETE", "CREATE_IN_PROGRESS"])
def test_logs_of_a_log_group_deleted_outside_the_stack_point_to_drift(aws, status):
    # It said the raw ResourceNotFoundException and "see where things stand: make status", which shows the stack as it was.
    # Not of a stack whose rollback deleted it, or whose create has not made it yet: said as it is.
    aws.service_stack(status=status)
    expected = {"logGroupName": LOG_GROUP, "startTime": TEN_MINUTES_AGO}
    aws.logs.add_client_error(
        "filter_log_events", "ResourceNotFoundException", "The specified log group does not exist.", 400, expected_params=expected
    )
    assert aws.run("logs") == 1
    drift = (
        f"error: log group {LOG_GROUP} does not exist, though the stack that made it names it: deleted outside CloudFormation? "
        f"make drift ENV={ENV} STACK=service says so (DELETED)\n"
    )
    assert (aws.err == drift) == (status == "UPDATE_COMPLETE"), aws.err
    # a failed first create (helper R2: it said the raw error too): its rollback deleted the group; the way on as a deploy says
    rolled_back = f"error: log group {LOG_GROUP} does not exist: {stack('service')} is ROLLBACK_COMPLETE, whose rollback deletes it"
    assert aws.err.startswith(rolled_back) == (status == "ROLLBACK_COMPLETE"), aws.err
    assert status != "ROLLBACK_COMPLETE" or aws.err.rstrip().endswith(
        f"make deploy STACK=service ENV={ENV} RECREATE=1, which deletes it and creates it again"
    )
    assert status != "CREATE_IN_PROGRESS" or "ResourceNotFoundException" in aws.err, aws.err


def test_logs_of_an_environment_without_the_service_point_to_deploying_every_layer(aws):
    aws.not_deployed("service")  # make deploy STACK=service would be refused while alb is not deployed either
    aws.cf.add_response("list_stacks", {"StackSummaries": []}, {"StackStatusFilter": ["DELETE_COMPLETE"]})  # none destroyed either
    assert aws.run("logs") == 1
    assert aws.err == f"error: {stack('service')} is not deployed: make deploy ENV={ENV} deploys every layer in order\n"


def test_logs_where_deleted_stacks_cannot_be_listed_say_the_service_is_not_deployed(aws):
    # the look for a destroyed stack's log group is only a look: a role without ListStacks gets the plain answer, no AWS error
    aws.not_deployed("service")
    aws.cf.add_client_error("list_stacks", "AccessDenied", "not authorized", 403)
    assert aws.run("logs") == 1
    assert aws.err == f"error: {stack('service')} is not deployed: make deploy ENV={ENV} deploys every layer in order\n", aws.err


@pytest.mark.parametrize("since, milliseconds", [("30s", 30_000), ("2h", 7_200_000), ("1d", 86_400_000)])
def test_since_sets_the_start(aws, since, milliseconds):
    aws.service_stack()
    page(aws, int(NOW.timestamp() * 1000) - milliseconds, [])
    assert aws.run("logs", "--since", since) == 0, aws.err
    assert aws.out == f"{LOG_GROUP}: no log events since {since} ago\n"  # said, not silence


def ctrl_c_at_sleep(number):
    """(the sleeps asked for, a sleep that records each and is a Ctrl-C at the number-th): FOLLOW=1's polls."""
    sleeps = []

    def sleep(seconds):
        sleeps.append(seconds)
        if len(sleeps) == number:
            raise KeyboardInterrupt

    return sleeps, sleep


def test_follow_polls_every_2_s_prints_each_event_once_and_ctrl_c_exits_0(aws):
    aws.service_stack()
    first = filtered("aaaa", -5, "one", "1")
    page(aws, TEN_MINUTES_AGO, [first])
    # The next poll reads again from 10 s before the newest event: the same event comes back, with a
    # late one stamped before it and a new one.
    since = first["timestamp"] - logs.LATE_MS
    page(aws, since, [filtered("bbbb", -6, "late", "0"), first, filtered("aaaa", 1, "two", "2")])
    sleeps, sleep = ctrl_c_at_sleep(2)

    assert aws.run("logs", "--follow", sleep=sleep) == 0, aws.err
    assert aws.out.splitlines()[1:] == [
        "2025-11-25 11:59:55  aaaa  one",
        "2025-11-25 11:59:54  bbbb  late",
        "2025-11-25 12:00:01  aaaa  two",
    ]
    assert sleeps == [2.0, 2.0] and "Traceback" not in aws.err


def test_each_page_is_printed_as_it_comes_and_what_came_stays_printed_after_ctrl_c(aws):
    # It printed nothing until every page was read: a long SINCE= waited in silence, held all in memory, and Ctrl-C lost it.
    aws.service_stack()
    page(aws, TEN_MINUTES_AGO, [filtered("aaaa", -300, "first page", "1")], following="n/1")

    def ctrl_c(params, **_):
        if params.get("nextToken") == "n/1":
            raise KeyboardInterrupt

    aws.clients["logs"].meta.events.register("provide-client-params.logs.FilterLogEvents", ctrl_c)
    assert aws.run("logs") == 130
    assert aws.out.splitlines() == ["2025-11-25 11:55:00  aaaa  first page"], aws.out


def test_follow_does_not_skip_ahead_past_an_event_stamped_in_the_future():
    # PutLogEvents takes events up to 2 hours ahead: the next poll started 10 s before it, and skipped an hour of events.
    now = int(NOW.timestamp() * 1000)
    ahead = filtered("aaaa", 3600, "stamped an hour ahead", "1")
    asked = []

    class Logs:
        def filter_log_events(self, **request):
            asked.append(request["startTime"])
            if len(asked) == 2:
                raise KeyboardInterrupt
            return {"events": [ahead] if len(asked) == 1 else []}

    with pytest.raises(KeyboardInterrupt):
        logs.tail(Logs(), LOG_GROUP, TEN_MINUTES_AGO, follow=True, sleep=lambda seconds: None, say=lambda *lines: None, now_ms=lambda: now)
    assert asked == [TEN_MINUTES_AGO, now - 10_000]  # 10 s before now, not before the event an hour ahead


def test_follow_rides_out_transient_errors_and_stops_after_too_many_in_a_row(aws):
    aws.service_stack()
    first = filtered("aaaa", -5, "one", "1")
    page(aws, TEN_MINUTES_AGO, [first])
    since = first["timestamp"] - logs.LATE_MS
    aws.logs.add_client_error("filter_log_events", "ServiceUnavailableException", "try later", 503)
    page(aws, since, [first, filtered("aaaa", 1, "two", "2")])
    for _ in range(logs.FOLLOW_FAILURES + 1):
        aws.logs.add_client_error("filter_log_events", "ServiceUnavailableException", "try later", 503)
    assert aws.run("logs", "--follow", sleep=lambda seconds: None) == 1
    lines = aws.out.splitlines()
    assert lines[1] == "2025-11-25 11:59:55  aaaa  one"
    assert lines[2].startswith(f"{LOG_GROUP}: not read (") and lines[2].endswith(f"); asking again in 2 s (1 of {logs.FOLLOW_FAILURES})")
    assert "2025-11-25 12:00:01  aaaa  two" in lines  # read again after the first error, each event once
    assert lines.count("2025-11-25 11:59:55  aaaa  one") == 1
    assert sum("not read" in line for line in lines) == 1 + logs.FOLLOW_FAILURES
    assert f"({logs.FOLLOW_FAILURES} of {logs.FOLLOW_FAILURES})" in aws.out
    assert "ServiceUnavailableException" in aws.err and "Traceback" not in aws.err


@pytest.mark.parametrize(
    "code, message, status",
    [
        ("InternalFailure", "internal error", 500),  # a plain HTTP 500 ended FOLLOW=1: only the listed codes were asked again
        ("ThrottlingException", "Rate exceeded", 400),  # CloudWatch Logs answers throttling with a 400
    ],
)
def test_follow_rides_out_a_server_error_or_throttling_whatever_its_status(aws, code, message, status):
    aws.service_stack()
    first = filtered("aaaa", -5, "one", "1")
    page(aws, TEN_MINUTES_AGO, [first])
    aws.logs.add_client_error("filter_log_events", code, message, status)
    page(aws, first["timestamp"] - logs.LATE_MS, [first, filtered("aaaa", 1, "two", "2")])
    _, sleep = ctrl_c_at_sleep(3)  # after the poll that followed the error

    assert aws.run("logs", "--follow", sleep=sleep) == 0, aws.err
    assert f"; asking again in 2 s (1 of {logs.FOLLOW_FAILURES})" in aws.out, aws.out
    assert aws.out.splitlines()[-1] == "2025-11-25 12:00:01  aaaa  two", aws.out


def test_without_follow_a_transient_error_ends_logs_at_once(aws):
    # riding out errors is for FOLLOW=1, which runs for hours; a plain read says the error (botocore has retried it already)
    aws.service_stack()
    aws.logs.add_client_error("filter_log_events", "ServiceUnavailableException", "try later", 503)
    sleeps, sleep = ctrl_c_at_sleep(1)
    assert aws.run("logs", sleep=sleep) == 1
    assert sleeps == [] and "not read" not in aws.out and "ServiceUnavailableException" in aws.err, aws.out + aws.err


def test_follow_never_reads_from_further_back_than_the_poll_before(aws):
    # each poll starts LATE_MS before the newest event it printed, or where the one before started: an empty poll
    # that stepped back LATE_MS each time reached events long forgotten as printed, and printed them again
    aws.service_stack()
    older, newest = filtered("aaaa", -5 - logs.LATE_MS // 1000 - 5, "older", "1"), filtered("aaaa", -5, "newest", "2")
    page(aws, TEN_MINUTES_AGO, [older, newest])
    for _ in range(3):  # the same start each time (the stubbed answer checks it)
        page(aws, newest["timestamp"] - logs.LATE_MS, [newest])
    _, sleep = ctrl_c_at_sleep(4)

    assert aws.run("logs", "--follow", sleep=sleep) == 0, aws.err
    assert aws.out.splitlines()[1:] == ["2025-11-25 11:59:40  aaaa  older", "2025-11-25 11:59:55  aaaa  newest"], aws.out


def test_follow_prints_once_an_event_stamped_at_the_next_polls_start(aws):
    # an event stamped exactly LATE_MS before the newest was forgotten as printed, and the next poll, from its stamp, printed it again
    aws.service_stack()
    newest = filtered("aaaa", -5, "newest", "2")
    oldest = filtered("aaaa", -5, "oldest", "1") | {"timestamp": newest["timestamp"] - logs.LATE_MS}
    page(aws, TEN_MINUTES_AGO, [oldest, newest])
    page(aws, oldest["timestamp"], [oldest, newest, filtered("aaaa", 1, "new", "3")])
    _, sleep = ctrl_c_at_sleep(2)

    assert aws.run("logs", "--follow", sleep=sleep) == 0, aws.err
    assert aws.out.splitlines()[1:] == [
        "2025-11-25 11:59:45  aaaa  oldest",
        "2025-11-25 11:59:55  aaaa  newest",
        "2025-11-25 12:00:01  aaaa  new",
    ], aws.out


@pytest.mark.parametrize("lost", ["EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError"])
def test_follow_rides_out_a_lost_connection(aws, lost):
    # a laptop's Wi-Fi dropping for a moment (botocore has retried already) is no reason to end a FOLLOW=1 of hours
    from botocore import exceptions

    aws.service_stack()
    first = filtered("aaaa", -5, "one", "1")
    page(aws, TEN_MINUTES_AGO, [first])
    page(aws, first["timestamp"] - logs.LATE_MS, [first, filtered("aaaa", 1, "two", "2")])
    calls = []

    def connection_lost(**_):
        calls.append(1)
        if len(calls) == 2:  # the second poll: the stubbed answer stays queued for the next
            raise getattr(exceptions, lost)(endpoint_url="https://logs.us-east-1.amazonaws.com")

    aws.clients["logs"].meta.events.register("provide-client-params.logs.FilterLogEvents", connection_lost)
    _, sleep = ctrl_c_at_sleep(3)
    assert aws.run("logs", "--follow", sleep=sleep) == 0, aws.err
    assert f"; asking again in 2 s (1 of {logs.FOLLOW_FAILURES})" in aws.out, aws.out
    assert aws.out.splitlines()[-1] == "2025-11-25 12:00:01  aaaa  two", aws.out


@pytest.mark.parametrize("stopped", [True, False], ids=["sandbox stopped", "a connection lost"])
def test_follow_ends_at_once_where_nothing_will_answer_again(stopped):
    # A stopped sandbox: its server refused every attempt, and the run ends at its next call; FOLLOW=1 said
    # "asking again in 2 s (1 of 5)", then ended at once all the same (a newcomer's walk).
    from botocore.exceptions import EndpointConnectionError

    class Logs:
        def filter_log_events(self, **request):
            raise EndpointConnectionError(endpoint_url="http://127.0.0.1:9")

    said, slept = [], []

    def sleep(seconds):
        slept.append(seconds)
        raise KeyboardInterrupt  # a lost connection is asked again: the poll after the sleep is not this test's

    with pytest.raises(EndpointConnectionError if stopped else KeyboardInterrupt):
        logs.tail(Logs(), LOG_GROUP, TEN_MINUTES_AGO, follow=True, sleep=sleep, say=said.append, gone=lambda error: stopped)
    assert (said, slept) == (([], []) if stopped else ([said[0]], [logs.FOLLOW_SECONDS])), said
    assert stopped or said[0].endswith(f"asking again in 2 s (1 of {logs.FOLLOW_FAILURES})"), said


def test_an_error_that_asking_again_does_not_cure_ends_follow_at_once(aws):
    aws.service_stack()
    aws.logs.add_client_error("filter_log_events", "AccessDeniedException", "not authorized", 400)
    assert aws.run("logs", "--follow", sleep=lambda seconds: None) == 1
    assert "not read" not in aws.out and "AccessDeniedException" in aws.err


@pytest.mark.parametrize("since", ["10", "10x", "m", "0s", "1.5h", "10 m", "1w", "10min", "1h30m"])
def test_a_bad_since_is_one_line_exit_2_before_any_aws_call(since):
    def no_clients(service):
        raise AssertionError(f"an AWS client was made: {service}")

    out, err = io.StringIO(), io.StringIO()
    assert deploy.main(["logs", "--env", ENV, "--since", since], clients=no_clients, out=out, err=err, interactive=False) == 2
    assert err.getvalue() == (
        f"error: SINCE={since}: allowed: a whole number from 1 and a unit: s, m, h or d (30s, 10m, 2h, 1d), "
        f"at most {LONGEST_RETENTION_DAYS}d (the longest CloudWatch Logs keeps events)\n"
    )


# The longest retention a log group takes: PutRetentionPolicy's values, as the LogRetentionDays input lists them.
LONGEST_RETENTION_DAYS = max(LOG_RETENTION_DAYS)


def test_a_since_past_the_longest_retention_is_refused_and_the_longest_taken():
    # 30000d passed and reached FilterLogEvents as a start before 1970, refused with a botocore message.
    days = LONGEST_RETENTION_DAYS
    assert logs.parse_since(f"{days}d") == days * 86400
    with pytest.raises(deploy.Failure, match=f"SINCE={days + 1}d: allowed"):
        logs.parse_since(f"{days + 1}d")
    # the same span in any unit: seven digits of minutes were refused as past it
    assert logs.parse_since(f"{days * 1440}m") == logs.parse_since(f"{days * 86400}s") == days * 86400
    with pytest.raises(deploy.Failure, match=f"SINCE={days * 86400 + 1}s: allowed"):
        logs.parse_since(f"{days * 86400 + 1}s")


@pytest.mark.parametrize("follow", [False, True])
def test_a_stop_signal_or_ctrl_c_outside_follow_is_exit_130_not_success(aws, follow):
    # Ctrl-C is how FOLLOW=1 ends (exit 0); a kill (SIGTERM) of it, or Ctrl-C of a plain read, is a stop.
    from templates.errors import Terminated

    aws.service_stack()

    def stopped(**_):
        raise Terminated if follow else KeyboardInterrupt

    aws.clients["logs"].meta.events.register("provide-client-params.logs.FilterLogEvents", stopped)
    assert aws.run("logs", *(["--follow"] if follow else [])) == 130


def test_the_task_id_is_the_last_part_of_the_stream_name():
    assert logs.task_id("service/web/0f6a1c2b3d4e4f5a9b8c7d6e5f4a3b2c") == "0f6a1c2b3d4e4f5a9b8c7d6e5f4a3b2c"


def test_a_stack_without_outputs_names_the_service_from_its_parameters():
    found = {
        "Parameters": [
            {"ParameterKey": "ClusterName", "ParameterValue": "c"},
            {"ParameterKey": "NamePrefix", "ParameterValue": "startupwebapp-staging"},
        ]
    }
    assert logs.service_names(found) == {
        "cluster": "c",
        "service": "startupwebapp-staging-service",
        "log_group": "/ecs/startupwebapp-staging-service",
    }


def test_a_stack_whose_outputs_lack_one_of_the_names_names_the_service_from_its_parameters():
    # a stack whose outputs name the cluster and service but not the log group (LogGroupName) is named from its parameters
    parameters = {
        "Parameters": [
            {"ParameterKey": "ClusterName", "ParameterValue": "c"},
            {"ParameterKey": "NamePrefix", "ParameterValue": "p-env"},
        ]
    }
    outputs = [{"OutputKey": "ClusterName", "OutputValue": "other"}, {"OutputKey": "ServiceName", "OutputValue": "other-service"}]
    assert logs.service_names(parameters | {"Outputs": outputs}) == logs.service_names(parameters)
    assert logs.service_names(parameters)["cluster"] == "c"


def test_a_stopped_task_without_a_stop_reason_says_none_was_given():
    assert logs.stopped_task_lines({"taskArn": "arn:aws:ecs:us-east-1:1:task/c/0123"}) == ["  task 0123: (no reason given)"]


HOSTILE = "Not Found: /\x1b]0;PWNED\x07\x1b[2J\x1b[31m red\rforged line\x9b"


def test_text_from_outside_reaches_the_terminal_with_its_control_characters_escaped():
    """A log event, a task's stop reason, a stack event's reason or an HTTP answer could otherwise
    retitle or clear the terminal, or overwrite its own line with a forged one (\\r)."""

    from scripts import verify
    from scripts.deploy import text

    event = {"timestamp": 1_700_000_000_000, "logStreamName": "web/web/0123456789abcdef", "message": HOSTILE + "\n"}
    task = {"taskArn": "arn:aws:ecs:us-east-1:1:task/c/0123", "stoppedReason": HOSTILE, "containers": [{"name": "web", "reason": HOSTILE}]}
    stack_event = a_stack_event("service", "Service", "CREATE_FAILED", 0, reason=HOSTILE)
    lines = [
        logs.log_event_line(event),
        logs.stream_line(event),
        *logs.stopped_task_lines(task),
        text.event_line(stack_event),
        *text.failed_resources([stack_event]),
        verify.Result("http redirects to https", False, f"301 -> {HOSTILE}").line(),
        text.short(HOSTILE),  # a drifted property's value, changed out of band
        logs.log_event_line(
            event | {"logStreamName": "web/web/" + HOSTILE.replace("/", "") + "\nforged"}
        ),  # a stream's name: [^:*]* allows them
    ]
    for line in lines:
        assert not any(ord(c) < 32 and c != "\t" or 0x7F <= ord(c) <= 0x9F for c in line), repr(line)
        assert "Not Found: /\\x1b]0;PWNED\\x07\\x1b[2J\\x1b[31m red\\rforged line\\x9b" in line, line  # shown, escaped
    # tabs and the lines of a multi-line event stay, its further lines indented: none passes for another event's
    forged = f"{logs.when(event['timestamp'])}  0123456789abcdef  forged"
    for line in (logs.stream_line, logs.log_event_line):
        assert line(event | {"message": f"a\tb\n{forged}\n"}).endswith(f"a\tb\n    {forged}")
    # the bidirectional overrides and isolates, which reorder how the rest of the line is shown
    reordering = "".join(map(chr, [*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F, 0x061C]))
    assert logs.log_event_line(event | {"message": reordering}).endswith(
        "\\u202a\\u202b\\u202c\\u202d\\u202e\\u2066\\u2067\\u2068\\u2069\\u200e\\u200f\\u061c"
    )
    # and the letters that show as nothing, which repr() leaves as they are
    assert logs.log_event_line(event | {"message": "web\u3164\u115f\u1160\uffa0\u180e\u034f"}).endswith(
        "web\\u3164\\u115f\\u1160\\uffa0\\u180e\\u034f"
    )


def test_a_stack_status_reason_from_aws_is_printed_escaped_too():

    out = io.StringIO()
    deployer = deploy.Deployer(lambda service: None, ENV, out=out, err=io.StringIO())
    layer = deploy.load_layer(ENV, "cert-dns", OUTPUT)
    with pytest.raises(deploy.Failure):
        deployer.finish(layer, {"StackStatus": "UPDATE_ROLLBACK_COMPLETE", "StackStatusReason": HOSTILE})
    assert (
        out.getvalue()
        == f"{layer.stack}: UPDATE_ROLLBACK_COMPLETE: " + "Not Found: /\\x1b]0;PWNED\\x07\\x1b[2J\\x1b[31m red\\rforged line\\x9b\n"
    )


def test_an_update_that_completes_without_deleting_an_old_resource_says_it_is_left_outside_the_stack():
    """CloudFormation skips an old resource it failed to delete three times and completes the update
    (text.left_outside_the_stack): said, as neither destroy nor purge will see it. One a retry deleted is not."""
    out = io.StringIO()
    deployer = deploy.Deployer(lambda service: None, ENV, out=out, err=io.StringIO())
    layer = deploy.load_layer(ENV, "alb", OUTPUT)
    old_alb, old_group = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/old/1", "sg-0old"
    reason = "Deletion protection is enabled \x1b[2J"

    def event(logical_id, physical_id, status, kind="AWS::ElasticLoadBalancingV2::LoadBalancer", why=""):
        return {
            "LogicalResourceId": logical_id,
            "PhysicalResourceId": physical_id,
            "ResourceType": kind,
            "ResourceStatus": status,
            "ResourceStatusReason": why,
        }

    deployer.events = [
        event(layer.stack, "arn:stack", "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS", "AWS::CloudFormation::Stack"),
        *[event("LoadBalancer", old_alb, status, why=reason) for status in ("DELETE_IN_PROGRESS", "DELETE_FAILED") * 3],
        event("AlbSecurityGroup", old_group, "DELETE_FAILED", "AWS::EC2::SecurityGroup", "in use"),
        event("AlbSecurityGroup", old_group, "DELETE_COMPLETE", "AWS::EC2::SecurityGroup"),
        event(layer.stack, "arn:stack", "UPDATE_COMPLETE", "AWS::CloudFormation::Stack"),
    ]
    deployer.finish(layer, {"StackStatus": "UPDATE_COMPLETE"}, outputs=False)
    assert out.getvalue().splitlines() == [
        f"{layer.stack}: UPDATE_COMPLETE",
        f"warning: CloudFormation could not delete the old LoadBalancer (AWS::ElasticLoadBalancingV2::LoadBalancer {old_alb}) and "
        "left it out of the stack: it still exists, outside every stack (Deletion protection is enabled \\x1b[2J); "
        "delete it yourself once nothing uses it",
    ]


def test_what_aws_says_of_a_stack_is_one_line_each_escaped_in_every_read_command():
    """A change set, an output, a tag or a parameter made by hand reaches make changeset, execute,
    outputs, diff, drift and events: a newline in it printed a line that passed for the tool's own
    (`error: ...`), and U+202E reordered the rest of the line."""
    from types import SimpleNamespace

    from scripts.deploy import text

    hostile = HOSTILE + "\nerror: forged\u202eevil\u200f"
    change_set = {
        "ChangeSetName": "hand",
        "StackName": "s",
        "Changes": [
            {"ResourceChange": {"Action": "Modify", "LogicalResourceId": hostile, "ResourceType": "AWS::X::Y", "Replacement": "False"}}
        ],
        "Parameters": [{"ParameterKey": "AlertTopicArn", "ParameterValue": hostile}],
    }
    deployed = {
        "Parameters": [{"ParameterKey": "AlertTopicArn", "ParameterValue": "arn:old"}],
        "Tags": [{"Key": "CostCenter", "Value": hostile}],
    }
    layer = SimpleNamespace(stack="s", source="templates/x.py", configuration="output/x/x.json", template="{}", tags={"CostCenter": "ours"})
    drift = {
        "StackResourceDriftStatus": "DELETED",
        "LogicalResourceId": "Topic",
        "ResourceType": "AWS::SNS::Topic",
        "PhysicalResourceId": hostile,
    }
    status = {"StackStatus": "DRIFTED", "DetectionStatus": "DETECTION_FAILED", "DetectionStatusReason": hostile}
    by_command = {
        "changeset, execute": text.change_set_table(change_set, deployed),
        "outputs": text.outputs({"Outputs": [{"OutputKey": "Evil", "OutputValue": hostile}]}),
        "diff": text.template_diff(layer, deployed, {}, {"AlertTopicArn": "arn:new"}),
        "drift": text.drift_report("s", status, [drift]),
        "events": [text.event_line(a_stack_event("service", "Service", "CREATE_FAILED", 0, reason=hostile))],
    }
    for command, lines in by_command.items():
        assert any("\\nerror: forged\\u202eevil\\u200f" in line for line in lines), (command, lines)  # shown, escaped
        for line in lines:
            assert "\n" not in line and not line.lstrip().startswith("error:"), (command, line)
            assert not any(ord(c) < 32 or 0x7F <= ord(c) <= 0x9F or c in "\u202e\u200f" for c in line), (command, line)


def test_logs_are_read_while_the_params_file_has_a_problem_said_first(aws, tmp_path):
    # An incident while an edit of the params file is half done: its logs are what one reads first.
    path = aws.read_a_misspelt_key(tmp_path)
    aws.service_stack()
    page(aws, TEN_MINUTES_AGO, [filtered("aaaa", -300, "GET /health 200", "1")])
    assert aws.run("logs") == 0, aws.err
    assert aws.err.startswith(f"warning: {path}: parameters.DesiredCout: unknown key"), aws.err
    assert aws.out.splitlines() == ["2025-11-25 11:55:00  aaaa  GET /health 200"]


@pytest.mark.parametrize("found", ["follow", "missing", "empty"])
def test_a_log_group_name_from_the_stacks_outputs_is_printed_escaped(aws, found):
    """The service stack's LogGroupName output is text from outside the tools (an output of a stack changed by hand,
    or an endpoint's answer): make logs printed it raw, in FOLLOW=1's first line (before AWS refuses the name) and,
    from an endpoint that is not AWS, in "does not exist" and "no log events", where a CR, U+202E or an 8-bit CSI
    (U+009B) reached the terminal."""
    import requests_as_aws_takes
    from stubbed_aws import described

    hostile = "/ecs/x\r\u202eevil\x9b2J"
    answer = described("service")
    answer["Stacks"][0]["Outputs"] = [
        {"OutputKey": "ClusterName", "OutputValue": "c"},
        {"OutputKey": "ServiceName", "OutputValue": "s"},
        {"OutputKey": "LogGroupName", "OutputValue": hostile},
        {"OutputKey": "TaskDefinitionArn", "OutputValue": "arn:aws:ecs:us-east-1:123456789012:task-definition/t:1"},
    ]
    aws.cf.add_response("describe_stacks", answer, {"StackName": stack("service")})
    expected = {"logGroupName": hostile, "startTime": TEN_MINUTES_AGO}
    if found == "follow":  # AWS refuses the name (its pattern): the line naming it was printed first
        aws.logs.add_client_error("filter_log_events", "InvalidParameterException", "1 validation error", 400, expected_params=expected)
        aws.run("logs", "--follow", sleep=lambda s: None)
    else:
        if found == "missing":
            aws.logs.add_client_error("filter_log_events", "ResourceNotFoundException", "gone", 400, expected_params=expected)
        else:
            aws.logs.add_response("filter_log_events", {"events": [], "searchedLogStreams": []}, expected)
        aws.run("logs")
    requests_as_aws_takes.refused.clear()  # the stubbed answer stands for the endpoint's: the request is the stack's name
    printed = aws.out + aws.err
    assert "\\u202eevil\\x9b2J" in printed, printed  # shown, escaped
    assert not any(c in printed for c in "\r\u202e\x9b"), repr(printed)


def test_an_interrupted_waits_follow_it_command_shows_the_stack_id_escaped_and_as_one_shell_word():
    """The stack id comes from the endpoint's answer (CreateChangeSet, DescribeStacks): after Ctrl-C, the "follow it"
    command to copy printed it raw: a CR or U+202E reached the terminal, and a space or $(...) in it made the pasted
    command run another."""
    import shlex

    from scripts.deploy import text

    hostile = "arn:aws:cloudformation:us-east-1:123456789012:stack/x/1 $(touch /tmp/pwned)\r\u202eevil"
    lines = text.interrupted("startupwebapp-prod-alb", ENV, "UPDATE_IN_PROGRESS", "aws", stack_id=hostile)
    assert not any(c in line for line in lines for c in "\r\u202e"), lines
    follow = next(line for line in lines if "describe-stack-events" in line)
    words = shlex.split(follow.split("(or: ", 1)[1].removesuffix(")"))
    assert words[:4] == ["aws", "cloudformation", "describe-stack-events", "--stack-name"] and len(words) == 5, words


def test_logs_of_a_retained_group_gone_under_a_stack_of_the_services_name_not_ours_that_failed_its_create(aws, monkeypatch):
    # (R4) make logs reads the group an earlier stack of ours retained (logs.log_group_to_read, after a destroy) when the
    # stack of the service's name is someone else's: that stack's failed create (ROLLBACK_COMPLETE) did not delete our
    # group, and make deploy RECREATE=1 refuses a stack this tool did not make; it said both
    import types

    from scripts.deploy import purge

    group = types.SimpleNamespace(gone=False, foreign=False, physical_id=LOG_GROUP, facts={}, note="")
    monkeypatch.setattr(purge, "kept_log_group", lambda deployer, name: (group, NOW))  # found, then deleted before the read
    aws.deployed("service", status="ROLLBACK_COMPLETE", tags={})  # no tags of ours: someone else's
    aws.logs.add_client_error("filter_log_events", "ResourceNotFoundException", "The specified log group does not exist.", 400)
    assert aws.run("logs") == 1
    assert "whose rollback deletes it" not in aws.err and "RECREATE=1" not in aws.err, aws.err
    # what it says instead: the read of our group, refused as AWS answered it, after the note on whose group it reads
    assert aws.err.startswith("error: FilterLogEvents: ResourceNotFoundException: "), aws.err
    assert f"{LOG_GROUP}, retained by" in aws.out, aws.out


def test_logs_under_a_stack_of_the_services_name_not_ours_with_no_group_of_ours_kept_read_nothing(aws, monkeypatch):
    # the stack of the service's name is someone else's and no stack of ours retained a group: its log group is not ours
    # to read; make logs says so and asks nothing of CloudWatch Logs (the stubbed client would fail on any call)
    from scripts.deploy import purge

    monkeypatch.setattr(purge, "kept_log_group", lambda deployer, name: None)
    aws.deployed("service", status="CREATE_COMPLETE", tags={})  # no tags of ours: someone else's
    assert aws.run("logs") == 1
    assert "no log group a service stack of ours kept is left to read" in aws.err and aws.out == "", aws.out + aws.err
