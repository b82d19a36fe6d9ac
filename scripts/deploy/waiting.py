"""Waiting for CloudFormation for the Deployer: polls with growing delays and a bound, the stack's events of the
operation streamed as they come, and what they say once it ends (the failed resources, the stopped tasks)."""

import math

from botocore.exceptions import ClientError

import templates
from scripts.deploy import logs, text
from scripts.deploy.aws import AWS_ERRORS, UNREADABLE, SandboxGone, explain, next_page_token, not_found, sandbox_gone
from scripts.deploy.failure import Failure, StoppedWaiting
from scripts.deploy.status import busy
from scripts.deploy.text import parameter_values
from templates import params
from templates.common import MOST_RELEASE_WAIT_MINUTES

# Polls start right away, then every second growing to 2 s: a final state is noticed within 2 s.
POLL_START, POLL_GROWTH, POLL_MAX = 1.0, 1.5, 2.0


def delays():
    """Seconds to sleep before each poll: none before the first."""
    yield 0.0
    delay = POLL_START
    while True:
        yield delay
        delay = min(delay * POLL_GROWTH, POLL_MAX)


def of_the_operation(event, tokens, started) -> bool:
    """Whether a stack event is of the operation a wait follows: it carries one of tokens (those the operation's
    request may have given its events); with no token to tell by (none given, or an event without one, as an
    emulator's), one from started on."""
    token = event.get("ClientRequestToken")
    return token in tokens if tokens and token else event["Timestamp"] >= started


def stated_number(value, most: float) -> float | None:
    """A number a stack or a change set states (a string anyone who may update the stack wrote: a
    CloudFormation Number takes 10.0, 1e1 and 33.3 too); None for none from 0 to most."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if 0 <= number <= most else None  # nan and inf fall outside


def stated_whole_number(value, most: int) -> int | None:
    """stated_number rounded up."""
    number = stated_number(value, most)
    return None if number is None else math.ceil(number)


def stated_release_wait_minutes(given: dict) -> int:
    """params.release_wait_minutes from the parameters a change set or a stack states (strings):
    the service's stack operation lasts that much longer. 0 for a layer that runs no release (the
    alb layer states the strategy too, not the waits). Values no release of this tool's states (10.0,
    33.3 % steps: set by hand) count as CloudFormation's Numbers, rounded up at the end; text bounds the
    wait by the longest a release of this tool's may wait, not by a traceback."""
    if not {"DeploymentStrategy", *params.WAIT_INPUTS} <= given.keys():
        return 0
    numbers = {name: stated_number(given[name], STATED_WAITS_MOST) for name in params.WAIT_INPUTS}
    if None in numbers.values() or not 0 < numbers["LinearStepPercent"] <= 100:
        return MOST_RELEASE_WAIT_MINUTES
    return math.ceil(params.release_wait_minutes({"DeploymentStrategy": given["DeploymentStrategy"]} | numbers))


STATED_WAITS_MOST = 100_000  # minutes: past any wait a service's template takes (TestPauseMinutes, up to 14 days)


def monitoring_minutes(described: dict) -> int:
    """MonitoringTimeInMinutes of a change set's or a stack's RollbackConfiguration; 0 without one."""
    return int(described.get("RollbackConfiguration", {}).get("MonitoringTimeInMinutes", 0))


# The operation a wait is for (wait_for_stack's `operation`) -> the status it puts the stack in.
OPERATION_STATUS = {
    "create": "CREATE_IN_PROGRESS",
    "update": "UPDATE_IN_PROGRESS",
    "delete": "DELETE_IN_PROGRESS",
    "rollback": "UPDATE_ROLLBACK_IN_PROGRESS",  # a continued one (make recover)
}


class StackWaiting:
    """Part of the Deployer (deployer.py, whose __init__ sets the state every part shares): its waits for CloudFormation.
    self.events holds the last wait's events, oldest first, which what follows the wait reads."""

    def polls(self, seconds):
        """Each poll's number: the first at once, the next ones delays() apart, until `seconds` have
        passed since the first (the caller's loop ends without a break then)."""
        deadline = self.clock() + seconds
        for count, delay in enumerate(delays()):
            if count and self.clock() >= deadline:
                return
            if delay:
                self.sleep(delay)
            yield count

    def wait_for_stack(
        self, stack, token, started=None, stack_id=None, given=None, configured=None, monitoring=None, operation=None, whole=False
    ):
        """Poll DescribeStacks and DescribeStackEvents until the stack leaves *_IN_PROGRESS, for at
        most the layer's bound plus the waits of a release that shifts traffic, by the operation's
        parameter values (`given`). For an operation this run did not start: the longer of the
        waits the stack states and those of `configured` (the layer's parameters in output/), as
        AWS does not document whether DescribeStacks shows a running update's new values. Plus the
        minutes CloudFormation watches the rollback triggers after the resources are updated, the
        operation's (`monitoring`) or else the stack's: "CloudFormation still waits the specified
        period of time before cleaning up old resources after update operations".
        https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_RollbackConfiguration.html

        A stale read must never end the wait: AWS does not say that DescribeStacks shows an operation
        at once, and the previous operation's final status would pass for this one's. For an operation
        this run started (token: its ClientRequestToken, or the tokens one of them, which every event of
        the operation carries:
        https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_StackEvent.html) a final
        status counts once the stack's own event of this operation says it; for one it did not start,
        once an event since the start was seen, or from the third poll on (it may have ended already).
        `operation` (OPERATION_STATUS) is what this run asked for: what a stop names while the stack
        still reads as before it."""
        started, seen, self.events, self.tasks_tried, self.tasks_said = started or self.now(), set(), [], False, False
        found = self.describe(stack)
        stack_id = stack_id or (found["StackId"] if found else stack)
        candidates = [given] if given is not None else [parameter_values(found or {}), configured or {}]
        monitoring = monitoring_minutes(found or {}) if monitoring is None else monitoring
        minutes = self.wait_minutes(stack, max(map(stated_release_wait_minutes, candidates)) + monitoring)
        try:
            for polls in self.polls(minutes * 60):
                try:
                    found = self.cf.describe_stacks(StackName=stack_id)["Stacks"][0]
                except ClientError as error:
                    if not not_found(error):
                        raise
                    found = {"StackName": stack, "StackId": stack_id, "StackStatus": "DELETE_COMPLETE"}
                stack_id = found["StackId"]
                self.print_events(stack_id, token, started, seen)
                self.say_stopped_tasks_before_their_logs_go(stack, found, ours=bool(token) or whole)
                status = found["StackStatus"]
                ended = self.ended_with(found) if token else self.events or polls >= 2
                if not status.endswith("_IN_PROGRESS") and ended:
                    self.stacks[stack] = None if found["StackStatus"] == "DELETE_COMPLETE" else found
                    return found
            lines = text.still_in_progress(stack, self.env, self.running(found, operation), minutes, self.events, self.cli, self.on_sandbox)
            raise Failure("\n".join(lines) + self.policies.still_relaxed())
        except KeyboardInterrupt:
            lines = text.interrupted(stack, self.env, self.running(found, operation), self.cli, sandbox=self.on_sandbox, stack_id=stack_id)
            raise StoppedWaiting("\n".join(lines) + self.policies.still_relaxed(), 130) from None
        except (*AWS_ERRORS, *UNREADABLE) as error:  # AWS out of reach, refusing to answer, or unreadable, mid-wait: the operation goes on
            if sandbox_gone(error, self.env):  # but not on a sandbox whose server is gone, with the stack (main says its one line)
                raise SandboxGone(error) from None
            lines = text.interrupted(
                stack,
                self.env,
                self.running(found, operation),
                self.cli,
                why=f"{explain(error, self.env)}\n  the wait stopped",
                sandbox=self.on_sandbox,
                stack_id=stack_id,
            )
            raise Failure("\n".join(lines) + self.policies.still_relaxed()) from None

    @staticmethod
    def running(found, operation) -> str:
        """The status a stopped wait speaks of: the stack's, unless it still reads as before the
        operation this run asked for (a stale read, or none yet), which says nothing of it."""
        status = found["StackStatus"] if found else "in progress"
        if operation and not busy(status):
            return OPERATION_STATUS[operation]
        return status

    def ended_with(self, found) -> bool:
        """Among this operation's events, the stack's own says the status DescribeStacks gave."""
        return any(
            event["ResourceType"] == "AWS::CloudFormation::Stack"
            and event.get("PhysicalResourceId") in (found["StackId"], None)  # None: the sandbox's stack events
            and event["ResourceStatus"] == found["StackStatus"]
            for event in self.events
        )

    def wait_minutes(self, stack, extra=0) -> int:
        """The layer's bound, plus `extra`: the minutes a release that shifts traffic waits on purpose."""
        if self.max_wait is not None:
            return self.max_wait
        layer = templates.layer_of(self.env, stack)
        return templates.WAIT_MINUTES.get(layer, templates.DEFAULT_WAIT_MINUTES) + extra

    def print_events(self, stack_id, token, started, seen):
        new, kwargs, tokens = [], {"StackName": stack_id}, set()
        ours = (token,) if isinstance(token, str) else token  # a token, or those one of which the operation's events carry
        while True:
            page = self.cf.describe_stack_events(**kwargs)
            done = False
            for event in page.get("StackEvents", []):  # newest first
                if event["EventId"] in seen or not of_the_operation(event, ours, started):
                    done = True
                    break
                seen.add(event["EventId"])
                new.append(text.readable_event(event))
            next_token = None if done else next_page_token(page, tokens, "DescribeStackEvents")
            if not next_token:
                break
            kwargs["NextToken"] = next_token
        new.reverse()  # oldest first
        self.events += new
        self.say(*text.event_lines(new, self.colour))

    def print_failures(self) -> list[dict]:
        """Say which resources failed in the last wait; their events. The stack's own failed events
        stay: where no resource is named (the sandbox's, at times), theirs is the only reason."""
        failed = [e for e in self.events if e["ResourceStatus"].endswith("_FAILED")]
        self.say(*text.failed_resources(failed))
        return failed

    def tasks_tell_why(self, stack) -> bool:
        """A circuit-breaker rollback (the service failed) or a rollback trigger (no resource did): the service's stopped
        tasks say why (best effort). Another resource's failure in the last wait is not theirs, where it came before the
        rollback: one of the rollback itself (a role it could not delete) did not cause it."""
        rollbacks = ("ROLLBACK_IN_PROGRESS", "UPDATE_ROLLBACK_IN_PROGRESS")
        started = next((e["Timestamp"] for e in self.events if e["LogicalResourceId"] == stack and e["ResourceStatus"] in rollbacks), None)
        causes = {  # by time: the order of two events of one instant is not documented
            e["ResourceType"]
            for e in self.events
            if e["ResourceStatus"].endswith("_FAILED")
            and e["LogicalResourceId"] != stack
            and (started is None or e["Timestamp"] <= started)
        }
        return not causes or "AWS::ECS::Service" in causes

    def say_stopped_tasks_unsaid(self, layer, found) -> None:
        """Once a wait has ended (finish, ready): the service's stopped tasks where they tell why (tasks_tell_why) and the
        wait did not say them already (say_stopped_tasks_before_their_logs_go)."""
        if layer.name == "service" and not self.tasks_said and self.tasks_tell_why(layer.stack):
            self.say(*logs.stopped_tasks(self, found))

    def say_stopped_tasks_before_their_logs_go(self, stack, found, ours) -> None:
        """A service's failed first create, rolling back: its rollback deletes the log group once the service is gone
        (DeletionPolicy RetainExceptOnCreate, templates/common.py), and the stopped tasks' logs with it. Where this wait
        saw the ECS service's create fail, or, in a create this run started (ours), a rollback no resource's failure
        caused (a rollback trigger), they are read and said as the rollback starts, once, not when it has ended (finish,
        which tries again where this read failed, as ready() does). The trigger is judged once the stack's own
        ROLLBACK_IN_PROGRESS event is seen: a status read before the events list the failure (a log group's taken name,
        and no service ever made) would pass for one. ours: the wait follows the create from its start (its token, or
        ready()'s wait from the stack's creation)."""
        rolling_back = found["StackStatus"] == "ROLLBACK_IN_PROGRESS" and templates.layer_of(self.env, stack) == "service"
        seen = {(e["ResourceType"], e["ResourceStatus"]) for e in self.events}
        service_failed = ("AWS::ECS::Service", "CREATE_FAILED") in seen
        triggered = ours and ("AWS::CloudFormation::Stack", "ROLLBACK_IN_PROGRESS") in seen and self.tasks_tell_why(stack)
        if rolling_back and not self.tasks_tried and (service_failed or triggered):
            self.tasks_tried = True  # once a wait: a read that fails again at every poll is said once
            lines = logs.stopped_tasks(self, found)
            self.tasks_said = not lines[0].startswith(logs.UNREAD)  # unread: tried again at the end, for the stop reasons at least
            self.say(*lines)

    def taken_name_hint(self, layer) -> str | None:
        """What to do when a create failed because a resource of that name already exists, most
        often what a destroyed stack retained (its log group): RECREATE=1 would fail the same way.
        A create handler that finds it fails with the AlreadyExists error code (the page below); that
        the event's reason names the code, or says "already exists", is what failed creates show, not
        a documented format: a hint, so a reason worded otherwise only loses the hint.
        https://docs.aws.amazon.com/cloudformation-cli/latest/userguide/resource-type-test-contract-errors.html"""
        reasons = [e.get("ResourceStatusReason") or "" for e in self.events if e["ResourceStatus"] == "CREATE_FAILED"]
        if not any("AlreadyExists" in reason or "already exists" in reason.lower() for reason in reasons):
            return None
        return (
            "the create rolled back: a resource of that name already exists (above). If a destroyed stack retained it: "
            f"make destroy STACK={layer.name} ENV={self.env} && make purge STACK={layer.name} ENV={self.env} (purge lists what "
            "it deletes and asks first), then deploy again; if it was made by hand, remove or rename it, then rerun with "
            "RECREATE=1 (--recreate)"
        )
