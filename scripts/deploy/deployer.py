"""The Deployer: applies one layer at a time through change sets, waits for CloudFormation, and
reads and deletes stacks.

Shaped like aws-cli's customizations/cloudformation/deployer.py: one small method per step
(has_stack, create_change_set, wait_for_change_set, execute, wait_for_stack, ...) and "no changes"
decided in one place. Wired parameters come from the upstream stacks' outputs (templates.WIRING),
read with DescribeStacks once per run."""

import contextlib
import functools
import hashlib
import json
import math
import re
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

from botocore.exceptions import ClientError

import templates
from scripts.deploy import advice, guards, logs, purge, text
from scripts.deploy.aws import (
    AWS_ERRORS,
    NO_ANSWER,
    UNREADABLE,
    AwsCalls,
    SandboxGone,
    checked_pages,
    cli,
    error_code,
    error_message,
    explain,
    may_have_landed,
    next_page_token,
    not_found,
    sandbox_gone,
)
from scripts.deploy.failure import Failure, Refused, UpstreamsNotDeployed
from scripts.deploy.history import ReleaseHistory, stack_mark
from scripts.deploy.layer import Layer, layer_of, load_layer, revision_named_in, template_problem
from scripts.deploy.lock import EnvironmentLock
from scripts.deploy.policies import RelaxedPolicyMarks, StackPolicies
from scripts.deploy.status import (
    ALREADY_EXECUTED,
    EMPTY_STATUSES,
    FIRST_CREATE_FAILED,
    SUCCEEDED,
    UPDATABLE,
    busy,
    is_deployed,
    runs_no_image,
)
from scripts.deploy.text import NOT_CONFIRMED, output_values, parameter_values
from templates import CHANGE_SET_WAIT_MINUTES, ROOT, params
from templates.common import MOST_RELEASE_WAIT_MINUTES
from templates.errors import printable, stops_held
from templates.generation import OUTPUT_DIR, PARAMS_DIR, stack_policy
from templates.inputs import IMAGE_TAG, KEEP_RUNNING_COUNT, SERVICE_REPLACED_BY, WIRED
from templates.resolver import Resolver

CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"]


def change_set_summaries(cf, stack) -> list[dict]:
    """ListChangeSets of the stack, every page; a summary's fields are all optional in the API's model, read so."""
    pages = checked_pages(cf.get_paginator("list_change_sets").paginate(StackName=stack), "ListChangeSets")
    return [summary for page in pages for summary in page.get("Summaries", [])]


# A change set's StatusReason when it changes nothing: AWS documents no wording; these are the ones the
# AWS CLI's own `cloudformation deploy` matches (https://github.com/aws/aws-cli/blob/v2/awscli/customizations/cloudformation/deployer.py).
NO_CHANGES = ("The submitted information didn't contain changes", "No updates are to be performed")
# Polls start right away, then every second growing to 2 s: a final state is noticed within 2 s.
POLL_START, POLL_GROWTH, POLL_MAX = 1.0, 1.5, 2.0


class ChangeSetKept(Failure):
    """Stops the run leaving the change set, and says what to do with it."""


class StillComputing(ChangeSetKept):
    """A change set still computed past CHANGE_SET_WAIT_MINUTES."""


def unanswered(error) -> str:
    """How a request that may have landed ended (aws.may_have_landed)."""
    return "error: no answer" if isinstance(error, NO_ANSWER) else "error: an error answer to a retry"


class ExecutionUnknown(ChangeSetKept):
    """ExecuteChangeSet got no answer (no connection, an unreadable one, Ctrl-C): it may have started."""


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


def reason_of(found) -> str:
    """A stack's status reason, in parentheses, when it has one."""
    reason = found.get("StackStatusReason")
    return f" ({printable(reason, one_line=True)})" if reason else ""


def git_revision(output_dir: Path, root: Path = ROOT) -> str:
    """What change-set names and the release history call the deployed files: HEAD's short hash,
    with "-dirty" unless output_dir (what the deploy reads) is what HEAD holds: a file edited, new
    or git-ignored there, a directory outside the repository, or a status git did not give in time;
    "nogit" without git or a repository."""

    def git(*argv):
        return subprocess.run(["git", *argv], cwd=root, capture_output=True, text=True, timeout=10)

    try:
        # at most 40 hex digits (layer.REVISION): --short honours core.abbrev, and a SHA-256 repository's full hash,
        # 64, would make a change set name past CreateChangeSet's 128 characters
        head = git("rev-parse", "--short", "HEAD").stdout.strip()[:40]
    except (OSError, subprocess.SubprocessError):
        return "nogit"
    if not head:
        return "nogit"
    try:
        status = git("status", "--porcelain", "--ignored=matching", "--untracked-files=all", "--", str(Path(output_dir).resolve()))
        clean = status.returncode == 0 and not status.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        clean = False
    return head if clean else f"{head}-dirty"


# The operation a wait is for (wait_for_stack's `operation`) -> the status it puts the stack in.
OPERATION_STATUS = {
    "create": "CREATE_IN_PROGRESS",
    "update": "UPDATE_IN_PROGRESS",
    "delete": "DELETE_IN_PROGRESS",
    "rollback": "UPDATE_ROLLBACK_IN_PROGRESS",  # a continued one (make recover)
}


def delays():
    """Seconds to sleep before each poll: none before the first."""
    yield 0.0
    delay = POLL_START
    while True:
        yield delay
        delay = min(delay * POLL_GROWTH, POLL_MAX)


class Deployer:
    """One environment's stacks: reads them (once a run), deploys a layer through a change set,
    waits for CloudFormation, deletes; says what happens on `out`."""

    def __init__(
        self,
        client,
        env,
        *,
        out,
        err,
        sleep=time.sleep,
        now=None,
        revision=None,
        output_dir=OUTPUT_DIR,
        ask=input,
        interactive=False,
        yes=False,
        role_arn=None,
        clock=time.monotonic,
        repair=False,
        allow_traffic_reset=False,
        max_wait=None,
        resolver=None,
        changes=False,
        enabled_layers=(),
        on_aws=True,
        params_file=None,
        image_tag=None,
    ):
        self.params_file = params_file or str(
            templates.relative(PARAMS_DIR / f"{env}.yaml")
        )  # as messages name it: make's, or --params-dir's
        self.image_tag = image_tag  # the run's TAG=, which a command it prints for the service layer carries (service_tag)
        self._client_factory, self._clients = client, {}
        self.on_sandbox = env == params.SANDBOX_ENV  # moto's server, not another emulator
        self.calls = AwsCalls(err, sandbox=self.on_sandbox)
        self.retained_by = {}  # stack -> what its deletion leaves behind (Deployer.retained)
        self.retained_layers = []  # the layers this run destroyed that left something in the account (make purge frees it)
        self.deleting = None  # (layer, whether it retains something) while its stack's DeleteStack may have landed (delete)
        self.run_layers = []  # the layers this run deploys, in order (make deploy of every layer)
        self.enabled_layers = enabled_layers  # the params file's layers (a run of every layer deploys them)
        # make destroy: (layer, whether it is known to be off) whose stack's termination protection it turned off, not yet deleting
        self.unprotected = None
        self.checked = set()  # the guards.py checks of the whole run that have looked (guards.CREATES, ...)
        self.outcomes = {}  # layer -> what its deploy did ("no changes", "updated, 3 changes"), for the summary
        self.recreated = set()  # layers whose failed first create (ROLLBACK_COMPLETE) this run deleted (RECREATE=1)
        self.execution_asked = set()  # the layers whose ExecuteChangeSet this run sent (or began to)
        self.left_for_review = None  # the change set make changeset left and named, once it has
        self.release_recorded = False  # this run's release is in the release history (record_release)
        # CloudFormation's service role for every stack operation (CI passes the ci layer's one).
        self.role = {"RoleARN": role_arn} if role_arn else {}
        self.env, self.out, self.err, self.sleep, self.ask = env, out, err, sleep, ask
        self.now = now or (lambda: datetime.now(UTC))
        self.revision, self.output_dir = revision, output_dir
        self.interactive, self.yes = interactive, yes
        self.changes = changes  # the command changes stacks: a foreign one is refused (describe)
        self.colour = getattr(out, "isatty", lambda: False)()
        self.stacks = {}  # stack name -> DescribeStacks entry, or None when not deployed (one read per run)
        # Stacks REVIEW_IN_PROGRESS at their first read: the empty stack of an earlier CREATE change set
        # (make changeset's, left for review, or a stopped run's), which a new one is made on, not ours to delete.
        self.waiting = set()
        self.others_under_review = {}  # StackId -> others_change_sets of an untagged stack under review (one look a run)
        self.events = []  # events of the last wait, oldest first
        # the last wait read the service's stopped tasks early (tried), and said them (said: the read did not fail)
        self.tasks_tried = self.tasks_said = False
        self.rolling_back_from = None  # the image tag a rollback leaves, recorded with the release
        self.clock = clock
        # A repair (make rollback, REPAIR=1) runs without rollback triggers: see rollback_configuration.
        self.repair = repair
        self.allow_traffic_reset = allow_traffic_reset  # see guards.refuse_moving_shifted_traffic
        self.allowed_replace = False  # the ALLOW_REPLACE=1 of the change set being executed, for the advice if it gets no answer
        self.keep_triggers = False  # make execute of a change set given no rollback configuration: what follows it gives none either
        self.max_wait = max_wait  # minutes per stack operation; None: templates.WAIT_MINUTES
        # domain -> the name servers public DNS answers with (scripts/deploy/zone.py); None: no DNS to ask
        self.resolver = resolver
        # AWS itself, not an emulator: ECR holds the images the service runs, KMS the keys of its secret.
        self.on_aws = on_aws

    # --- plumbing -------------------------------------------------------------------------
    def service_tag(self, layer_name) -> str:
        """TAG=<the run's> for a command printed for the service layer: run without it, it releases another image."""
        return f" TAG={self.image_tag}" if self.image_tag and layer_name == "service" else ""

    def way_out(self, layer_name, status) -> str:
        """text.way_out for this environment, its command with the run's TAG= for the service layer; for a half-deleted
        layer, which goes with the layers that read it, the TAG= of their deploy again (redeploy_tag)."""
        tag = self.redeploy_tag(layer_name) if status == "DELETE_FAILED" else self.service_tag(layer_name)
        disabled = self.enabled_layers and layer_name not in self.enabled_layers
        destroyed = templates.destroy_order(layer_name) if status == "DELETE_FAILED" else [layer_name]
        return text.way_out(
            self.env,
            layer_name,
            status,
            tag,
            disabled_in=self.params_file if disabled else None,
            # read only for the ways on that destroy (they read output/), and that print an AWS CLI command
            purge_first=self.purge_first(destroyed) if status in text.DESTROYED_ON_THE_WAY else (),
            cli=self.cli if status in text.ROLLED_BACK_BY_HAND else "aws",
        )

    def destroy_and_deploy_again(self, *layer_names) -> str:
        """text.destroy_and_deploy_again, its deploy with the TAG= that keeps the service's image (redeploy_tag), and the
        make purge between them where a destroyed layer keeps a name its create needs."""
        purge_first = self.purge_first(templates.destroy_order(*layer_names))
        return text.destroy_and_deploy_again(self.env, layer_names, self.redeploy_tag(*layer_names), purge_first)

    def purge_first(self, destroyed) -> list[str]:
        """The layers among those a way on destroys that the deploy after it creates again (enabled) and whose destroy keeps
        a name their create needs (purge.keep_names): make purge frees it between the two."""
        return purge.keep_names(self, [name for name in destroyed if not self.enabled_layers or name in self.enabled_layers])

    def redeploy_tag(self, *layer_names) -> str:
        """TAG= for a deploy that creates again the layers and those that read them, once destroyed: the run's, or else the
        image the service stack runs, where the service is among them; a deploy without it would release params' ImageTag."""
        if "service" not in templates.destroy_order(*layer_names):
            return ""
        return self.service_tag("service") or self.running_image_tag()

    def running_image_tag(self) -> str:
        """TAG=<the image the service stack runs>; a placeholder where it cannot be read or is no image tag; "" where no
        service of ours runs (one DescribeStacks, once a run)."""
        unknown = " TAG=<the image the service runs>"  # a deploy without TAG= would release params' ImageTag: the reader gives it
        try:
            found = self.describe(templates.stack_name(self.env, "service"), refuse_foreign=False)
        except AWS_ERRORS:
            return unknown
        if runs_no_image(found) or self.foreign(found):
            return ""  # none of ours runs: someone else's stack's values are not ours to print or release
        image = parameter_values(found).get("ImageTag")
        # one set by hand that is no image tag (a stack's values may hold anything) is not printed into a command
        return f" TAG={image}" if isinstance(image, str) and re.fullmatch(IMAGE_TAG, image) else unknown

    def client(self, service, region=None):
        """service's client; with region, one for that region where it is not the run's (a resource params names there)."""
        elsewhere = region if region and region != self.cf.meta.region_name else None
        key = (service, elsewhere) if elsewhere else service
        if key not in self._clients:
            self._clients[key] = self.calls.watch(self._client_factory(service, elsewhere) if elsewhere else self._client_factory(service))
        return self._clients[key]

    def close(self) -> None:
        """Close the connections of the clients this run made (botocore's client.close): a process that
        runs the deployer again (the tests do, hundreds of times) would otherwise keep each run's open until
        a garbage collection, against the sandbox server's limit of connections."""
        for client in self._clients.values():
            client.close()

    @property
    def cli(self) -> str:
        """How a command printed for people to copy starts (aws.cli: the run's region and endpoint)."""
        return cli(self.cf.meta.region_name)

    @property
    def cf(self):
        return self.client("cloudformation")

    def say(self, *lines):
        # Escaped here too (text.as_printed), whatever the caller did: a line quotes names and values from outside the tools,
        # whose CR, bidi override or C1 control would otherwise redraw the terminal.
        for line in lines:
            print(text.as_printed(line), file=self.out, flush=True)

    def why_not(self, question) -> str | None:
        """None once the run may go on: --yes, or "y" on the terminal; else why it may not. With --yes the
        question is printed with its answer: a CI log, too, says which account and region each was."""
        if self.yes:
            self.say(f"{self.where()}: {question.removesuffix('[y/N] ').rstrip()} yes (YES=1)")
            return None
        if not self.interactive:
            return "no terminal to ask on and no YES=1 (--yes)"
        reader_gone = "the output's reader is gone (a closed pipe: nobody reads the question) and no YES=1 (--yes)"
        if getattr(self.out, "reader_gone", False):  # templates.errors.Output
            return reader_gone
        try:
            answer = self.ask(f"{self.where()}: {question}")
        except EOFError:
            answer = ""
        except BrokenPipeError:  # input() writes its prompt to stdout, past Output
            self.out.reader_left()
            return reader_gone
        except KeyboardInterrupt:  # what follows starts a line of its own, not after the prompt's ^C
            with contextlib.suppress(Exception):
                self.say("")
            raise
        return None if answer.strip().lower() in ("y", "yes") else NOT_CONFIRMED

    def where(self) -> str:
        """The account and region a question's answer acts in: the same stack names and commands
        work in any account the shell's credentials reach, and only these tell prod's from another's.
        An account that cannot be read is said so, and the question asked all the same. The sandbox's
        is said to be the sandbox's: its account is the one the example params files name."""
        try:
            account = self.account()
        except AWS_ERRORS as error:
            account = f"not known ({error_code(error)})"
        place = f"account {printable(account, one_line=True)}, {self.cf.meta.region_name}"  # STS's answer: anyone's on a hostile endpoint
        return f"the local sandbox at {self.cf.meta.endpoint_url} ({place})" if self.env == params.SANDBOX_ENV else place

    def account(self) -> str:
        """The account of the stacks this run read (a StackId names it); before any, the caller's:
        GetCallerIdentity, which no policy can deny ("No permissions are required to perform this
        operation"): https://docs.aws.amazon.com/STS/latest/APIReference/API_GetCallerIdentity.html"""
        read = next((found["StackId"].split(":")[4] for found in self.stacks.values() if found), None)
        return read or self.client("sts").get_caller_identity()["Account"]

    def confirm(self, question, refusal, without_asking=None):
        """Go on once confirmed (why_not); else stop: "error: <why not>: <refusal>", and how to go on without
        asking (without_asking: what YES=1 does, "execute"), but after a "no" on the terminal (text.declined)."""
        why = self.why_not(question)
        if why:
            raise Failure(f"error: {text.declined(why, refusal, without_asking)}")

    # --- reading stacks -------------------------------------------------------------------
    def describe(self, stack, refuse_foreign=True):
        """The stack's DescribeStacks entry, or None when there is none. In a run that changes stacks,
        one of our name that is not ours (foreign) is refused before anything is done to it."""
        if stack not in self.stacks:
            try:
                self.stacks[stack] = self.cf.describe_stacks(StackName=stack)["Stacks"][0]
            except ClientError as error:
                if not not_found(error):
                    raise
                self.stacks[stack] = None
            if self.stacks[stack] and self.stacks[stack]["StackStatus"] == "REVIEW_IN_PROGRESS":
                self.waiting.add(stack)
        found = self.stacks[stack]
        if found and self.changes and refuse_foreign and self.untagged_under_review(found):
            self.refuse_others_under_review(found)
        if found and self.changes and refuse_foreign and self.foreign(found):
            raise Failure(
                f"error: {stack} exists but was not made by this tool: its tags are not "
                f"{text.tag_list(self.own_tags(found))}, which every stack it makes carries; "
                f"{self.nothing_changed(templates.layer_of(self.env, stack))}. If it is ours (its tags changed by hand), set those tags on it (console: Update stack, "
                "Use current template, Tags) and run this again; otherwise remove or rename it yourself"
            )
        return found

    def refuse_others_under_review(self, found) -> None:
        """Refuse an untagged stack under review holding a change set that is not ours, or whose change sets cannot
        be read (others_change_sets)."""
        stack = found["StackName"]
        theirs, unread = self.others_change_sets(found)
        if theirs:
            raise Failure(
                f"error: {stack} exists, empty and under review, with change sets this tool did not make (their tags are "
                f"not {text.tag_list(self.own_tags(found))}, which every change set it makes carries): {', '.join(theirs)}; "
                f"{self.nothing_changed(templates.layer_of(self.env, stack))}. Remove them, or the stack, yourself once their owner agrees"
            )
        if unread:  # a change or a deletion of it would end change sets that may be someone else's
            raise Failure(
                f"error: {stack} exists, empty and under review, without tags: whose it is, its change sets' tags say, and "
                f"they could not be read ({unread}); {self.nothing_changed(templates.layer_of(self.env, stack))}. Run this again; if it goes on, see that the "
                "credentials may call cloudformation:ListChangeSets and DescribeChangeSet"
            )

    def read_again_if_not_ours_yet(self, stack) -> None:
        """Forget a read of the stack that found none, or an empty one under review without tags, for it to be read
        again: someone may have made a change set of theirs under its name since (REVIEW_IN_PROGRESS, refused
        then), which a change set of ours executed would end, and an undo of ours delete. One of ours is read
        once a run."""
        found = self.stacks.get(stack, ())
        if found is None or (found and self.untagged_under_review(found)):
            del self.stacks[stack]
            self.others_under_review.pop((found or {}).get("StackId"), None)
            self.waiting.discard(stack)  # read again: waiting again if it still is

    def own_tags(self, found) -> dict:
        """The tags the stack would carry if this tool made it (templates.own_tags)."""
        return templates.own_tags(self.env, templates.layer_of(self.env, found["StackName"]))

    def foreign(self, found) -> bool:
        """A stack of our name without the tags every stack of ours carries: someone else's, not to
        be changed or deleted. A REVIEW_IN_PROGRESS one without tags is the empty stack a CREATE change
        set makes (ours too, if it shows no tags yet), which make deploy creates into: someone else's
        only while it holds a change set this tool did not make (others_change_sets)."""
        if self.untagged_under_review(found):
            return bool(self.others_change_sets(found)[0])
        return not self.own_tags(found).items() <= self.stack_tags(found).items()

    def untagged_under_review(self, found) -> bool:
        return found["StackStatus"] == "REVIEW_IN_PROGRESS" and not self.stack_tags(found)

    def others_change_sets(self, found) -> tuple[list[str], str | None]:
        """The change sets on an untagged stack under review that do not carry this tool's tags, which
        every one it makes does (CreateChangeSet's Tags, which DescribeChangeSet gives back:
        https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_DescribeChangeSet.html):
        executing ours or deleting the stack would end someone else's. And the error code when they could
        not all be read (None when they were): a command that changes the stack refuses it then (describe),
        one that reads it shows it as before. One deleted since it was listed is no one's."""
        if found["StackId"] not in self.others_under_review:
            wanted, others, unread = self.own_tags(found), [], None
            try:
                for summary in change_set_summaries(self.cf, found["StackId"]):
                    if "ChangeSetId" not in summary:  # optional in the API's model: one that cannot be read is not taken for ours
                        others.append(summary.get("ChangeSetName", "(unnamed)"))
                        continue
                    try:
                        tags = self.stack_tags(self.cf.describe_change_set(ChangeSetName=summary["ChangeSetId"]))
                    except ClientError as error:
                        if not not_found(error):
                            raise
                        continue
                    if not wanted.items() <= tags.items():
                        others.append(summary.get("ChangeSetName", "(unnamed)"))
            except AWS_ERRORS as error:
                # a stack deleted since it was read has no change sets: what follows finds it gone
                unread = None if isinstance(error, ClientError) and not_found(error) else error_code(error)
            self.others_under_review[found["StackId"]] = (others, unread)
        return self.others_under_review[found["StackId"]]

    def settled_values(self, stack) -> dict:
        """The parameter values a stack of ours stands with: those of one that has settled and works
        (UPDATABLE); none for one not deployed, an abandoned or failed create (which RECREATE=1 deletes),
        one still changing (its values may be the old or the new ones: AWS does not say), or a stack of
        our name that is not ours (foreign: a command that changes it refuses it where it reads it)."""
        found = self.describe(stack, refuse_foreign=False)
        return parameter_values(found) if found and found["StackStatus"] in UPDATABLE and not self.foreign(found) else {}

    def is_create(self, stack) -> bool:
        """A deploy of the stack creates it, and it holds no resource: there is none, an empty one under
        review (REVIEW_IN_PROGRESS), or a failed first create (ROLLBACK_COMPLETE: its rollback deleted
        what it made, and RECREATE=1 deletes it and creates it again)."""
        found = self.describe(stack, refuse_foreign=False)
        return found is None or found["StackStatus"] in EMPTY_STATUSES

    def left_alone(self, layer_name, named) -> bool:
        """Someone else's stack in a layer this environment does not use, which a destroy or purge of
        every layer leaves alone, saying so. named (in enabled_layers, or by STACK=): refused instead."""
        stack = templates.stack_name(self.env, layer_name)
        found = self.describe(stack, refuse_foreign=named)
        if found is None or named or not self.foreign(found):
            return False
        self.say(f"{stack} was not made by this tool, and {layer_name} is not in enabled_layers of {self.params_file}: left alone")
        return True

    def has_stack(self, stack) -> bool:
        """Deployed: exists and is not an abandoned create (REVIEW_IN_PROGRESS)."""
        return is_deployed(self.describe(stack))

    def deployed_template(self, stack, change_set=None) -> dict:
        """The stack's template as submitted (or a change set's: its ARN). boto3 parses a JSON body
        itself; a YAML one (someone updated the stack from the console or the CLI with YAML) comes as
        text, read with cfn-flip, which turns the short forms (!Ref) into the long ones.
        https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_GetTemplate.html"""
        which = {"ChangeSetName": change_set} if change_set else {}
        body = self.cf.get_template(StackName=stack, TemplateStage="Original", **which)["TemplateBody"]
        if not isinstance(body, str):
            return body
        import cfn_flip
        import yaml

        try:
            # cfn-flip reads YAML 1.1: an unquoted AWSTemplateFormatVersion is a date. As JSON text, as
            # a JSON template has it, it compares and prints like one.
            template = json.loads(json.dumps(cfn_flip.load(body)[0], default=str))
        except (ValueError, TypeError, yaml.YAMLError):  # TypeError: a key JSON has no form for (a date)
            template = None
        if not isinstance(template, dict):
            raise Failure(
                f"error: {stack}'s template, as CloudFormation gives it, is no JSON or YAML mapping this tool reads: {body[:60]!r}; "
                f"see it in the console, or: aws cloudformation get-template --stack-name {stack}"
            )
        return template

    def as_deployed(self, layer) -> Layer:
        """The layer as its stack runs it: the template it was last given, its parameter values and its
        tags, for a change of the image alone (a rollback). output/ may hold other changes (a newer
        checkout's), which a rollback, made without rollback alarms, must not carry in unasked."""
        found = self.describe(layer.stack)
        template = self.deployed_template(layer.stack)
        problem = template_problem(template)
        if problem:
            raise Failure(
                f"error: {layer.stack}'s template, as CloudFormation gives it, is not one this tool reads ({problem}); "
                f"roll back by deploying the image instead: make deploy STACK={layer.name} ENV={self.env} TAG=<image tag>"
            )
        policy = stack_policy(template)
        return layer_of(
            self.env,
            layer.name,
            template,
            parameter_values(found),
            self.stack_tags(found),
            policy,
            f"{layer.stack}'s template",
            f"{layer.stack}'s parameters and tags",
        )

    def retained(self, stack) -> dict:
        """Logical id -> type of what deleting the stack leaves in the account (read once a run)."""
        if stack not in self.retained_by:
            self.retained_by[stack] = templates.retained_resources(self.deployed_template(stack))
        return self.retained_by[stack]

    def outputs(self, stack) -> dict:
        return output_values(self.describe(stack))

    @staticmethod
    def wired(layer) -> dict:
        """parameter -> (upstream layer, output) the layer's template takes (one of an earlier checkout, a rollback's, takes fewer)."""
        return {parameter: read for parameter, read in templates.wired_into(layer.name).items() if parameter in layer.declared}

    def wired_parameters(self, layer) -> dict:
        wired = self.wired(layer)
        missing = self.undeployed_upstreams(wired)
        if missing:
            first, *then = missing
            stacks = [templates.stack_name(self.env, name) for name in missing]
            raise UpstreamsNotDeployed(
                f"error: {layer.stack} needs {text.in_words(stacks)} deployed first"
                f"{', in that order' if then else ''}: make deploy STACK={first} ENV={self.env}"
                + "".join(f", then STACK={name}" for name in then)
                + f", or make deploy ENV={self.env} for every layer in order"
            )
        values = {}
        for parameter, (upstream, output) in wired.items():
            source = templates.stack_name(self.env, upstream)
            found = self.describe(source)
            if self.foreign(found):  # a deploy refuses it when it reads it; make diff would show its outputs as ours
                raise Failure(f"error: {layer.stack} reads {text.not_ours(source, self.own_tags(found))}")
            if found["StackStatus"] not in UPDATABLE:
                # a half-deleted upstream goes with the layers that read it, this one too, and its way out deploys them again
                again = "" if found["StackStatus"] == "DELETE_FAILED" else f", then deploy {layer.name} again"
                raise Failure(
                    f"error: {layer.stack} reads {source}, which is {found['StackStatus']}{reason_of(found)}; "
                    f"{self.way_out(upstream, found['StackStatus'])}{again}"
                )
            if output in self.outputs(source):
                values[parameter] = self.outputs(source)[output]
            elif WIRED[parameter].default is not None:
                # An output that exists only under a condition of its layer (templates/inputs.py says
                # which); the downstream template's rules refuse the default where it is needed.
                values[parameter] = WIRED[parameter].default
            else:
                raise Failure(f"error: {source} has no output {output}; redeploy it: make deploy STACK={upstream} ENV={self.env}")
        return values

    def undeployed_upstreams(self, wired) -> list:
        """The layers wired (parameter -> (layer, output)) reads that are not deployed, and those these read
        that are not, in deploy order: the whole way there, where naming the first alone cost a run for each."""
        missing, reading = set(), [wired]
        while reading:
            for upstream, _ in reading.pop().values():
                if upstream not in missing and not self.has_stack(templates.stack_name(self.env, upstream)):
                    missing.add(upstream)
                    reading.append(templates.wired_into(upstream))
        return sorted(missing, key=templates.layer_order().index)

    def take_triggers_of(self, layer, change_set):
        """make execute of a reviewed change set: what follows it (the settling of a new service) goes
        with the triggers it was made with. One made as a repair (REPAIR=1, or a rollback: its description
        says so, or an empty list given) goes without; one given no configuration at all (by hand) leaves
        the stack's last ones, and so does what follows it."""
        if layer.name not in templates.ROLLBACK_TRIGGERS:
            return
        configuration = change_set.get("RollbackConfiguration") or {}
        if text.made_as_repair(change_set.get("Description"), layer) or (configuration and not configuration.get("RollbackTriggers")):
            self.repair = True
        elif not configuration:
            self.keep_triggers = True

    def rollback_configuration(self, layer) -> dict:
        """CloudFormation rolls the layer back if these alarms fire while it deploys or soon after.

        A repair goes without them: it is usually made because those alarms fire, and with them
        CloudFormation would undo the repair. CloudFormation keeps a stack's last triggers for later
        updates unless given a list, so a repair sends an empty one and the next deploy sets them again.
        https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_RollbackConfiguration.html"""
        if layer.name not in templates.ROLLBACK_TRIGGERS or self.keep_triggers:
            return {}  # none given: CloudFormation keeps the stack's last triggers
        if self.repair:
            return {"RollbackConfiguration": {"RollbackTriggers": [], "MonitoringTimeInMinutes": 0}}
        upstream, arns, minutes = templates.ROLLBACK_TRIGGERS[layer.name]
        found = self.outputs(templates.stack_name(self.env, upstream))
        if arns not in found:
            raise Failure(f"error: {layer.stack} needs the rollback alarms of {upstream}: make deploy STACK={upstream} ENV={self.env}")
        # The outputs are what that stack says, anyone's to change who may update it: a release watched by
        # other alarms than its own, or by none (an empty list reads as a repair's), or a traceback, were theirs to make.
        watched, given = [arn for arn in found[arns].split(",") if arn], found.get(minutes, "0")
        own = self.own_alarm_arns(upstream)
        # MonitoringTimeInMinutes: "Minimum value of 0. Maximum value of 180."
        # https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_RollbackConfiguration.html
        monitoring = stated_whole_number(given, 180)
        if sorted(watched) != own or monitoring is None:
            raise Failure(
                f"error: {templates.stack_name(self.env, upstream)}'s outputs {arns} ({printable(found[arns], one_line=True)[:300]}) and "
                f"{minutes} ({printable(given, one_line=True)[:40]}) are not what its template makes: its alarms ({', '.join(own)}), "
                f"each once, and 0 to 180 minutes; a release would be watched by other alarms than its own, or by fewer. "
                f"make deploy STACK={upstream} ENV={self.env} puts them back; {self.nothing_changed(layer.name)}"
            )
        triggers = [{"Arn": arn, "Type": "AWS::CloudWatch::Alarm"} for arn in watched]
        return {"RollbackConfiguration": {"RollbackTriggers": triggers, "MonitoringTimeInMinutes": monitoring}}

    def own_alarm_arns(self, layer_name) -> list[str]:
        """The ARNs of the alarms the layer's stack makes, by output/'s template and the values the stack states (its
        NamePrefix: one changed in params/ and not deployed yet names the old alarms), in the stack's partition, region
        and account (its StackId's): a DescribeStacks this run has made, no other call."""
        found = self.describe(templates.stack_name(self.env, layer_name))
        partition, _, region, account = found["StackId"].split(":")[1:5]
        template = json.loads(load_layer(self.env, layer_name, self.output_dir).template)
        resolver = Resolver(template, parameter_values(found), {}, region)
        names = [
            resolver.value(r["Properties"].get("AlarmName"))
            for r in template["Resources"].values()
            if r["Type"] == "AWS::CloudWatch::Alarm"
        ]
        return sorted(f"arn:{partition}:cloudwatch:{region}:{account}:alarm:{name}" for name in names)

    def image_to_deploy(self, layer, image_tag=None) -> str | None:
        """The image tag a deploy of the layer sends: TAG='s, else the running one (a deploy without TAG=
        keeps it: changing a threshold must not swap the release), else on a create, which runs none (a
        failed first create's is gone with it), the params file's ImageTag."""
        running = None if self.is_create(layer.stack) else parameter_values(self.describe(layer.stack)).get("ImageTag")
        return image_tag or running or layer.parameters.get("ImageTag")

    def parameters(self, layer, wired, image_tag=None) -> dict:
        values = dict(layer.parameters) | wired
        if "ImageTag" in values:
            values["ImageTag"] = self.image_to_deploy(layer, image_tag)
        if KEEP_RUNNING_COUNT in layer.declared:
            # Once the service exists its template omits DesiredCount, so an update never undoes
            # what auto-scaling chose; unless the update replaces the service (SERVICE_REPLACED_BY).
            running = parameter_values(self.describe(layer.stack)) if self.has_stack(layer.stack) else None
            kept = running is not None and all(running.get(name) == values.get(name) for name in SERVICE_REPLACED_BY)
            values[KEEP_RUNNING_COUNT] = "true" if kept else "false"
        return values

    # --- stack states -----------------------------------------------------------------------
    def ready(self, layer, recreate=False) -> bool:
        """Settle the stack into a state a change set can start from; True if it is deployed."""
        # The StackStatus values below are those of the stack status page status.py cites.
        while True:
            found = self.describe(layer.stack)
            status = found and found["StackStatus"]
            if status in (None, "REVIEW_IN_PROGRESS"):
                return False
            if status in UPDATABLE:
                return True
            if status.endswith("_IN_PROGRESS"):
                self.say(f"{layer.stack} is {status}: waiting for it to settle")
                # A first create another run left (stopped): its events from the start, the failure that rolls it back
                # among them, so that the wait says it and the stopped tasks before the rollback deletes their log group.
                whole = status in ("CREATE_IN_PROGRESS", "ROLLBACK_IN_PROGRESS")
                started = found["CreationTime"] if whole else None
                settled = self.wait_for_stack(layer.stack, token=None, started=started, configured=layer.parameters, whole=whole)
                # As finish() after a run's own create: the early read failed, or no poll saw the rollback under way (the
                # status this run read first may be minutes old): the stop reasons and exit codes outlast the logs.
                if whole and settled["StackStatus"] in FIRST_CREATE_FAILED:  # settled: not ROLLBACK_IN_PROGRESS
                    self.say_stopped_tasks_unsaid(layer, settled)
            elif status == "ROLLBACK_COMPLETE" and recreate:
                self.say(f"{layer.stack} is ROLLBACK_COMPLETE: deleting it to create it again (--recreate)")
                self.delete(layer.stack)
                self.recreated.add(layer.name)
            else:
                raise Failure(f"error: {layer.stack} is {status}{reason_of(found)}: {self.way_out(layer.name, status)}")

    # --- change sets ------------------------------------------------------------------------
    def create_change_set(self, layer, parameters, exists, suffix=""):
        """The change set's description, or None when there is nothing to change (then it is deleted)."""
        if self.revision is None:
            self.revision = git_revision(self.output_dir)
        # To the millisecond: two runs of one environment take the lock in turn, so the second's time is
        # later, but on the sandbox within the same second; the name is also the request's ClientToken, which
        # tells CloudFormation "you're not attempting to create another change set with the same name", so the
        # second of two equal ones would pass for a retry of the first (what AWS then answers is not documented).
        # https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_CreateChangeSet.html
        stamp = self.now()
        name = f"{layer.stack}-{stamp:%Y%m%d%H%M%S}{stamp.microsecond // 1000:03}-{self.revision}{suffix}"
        made = {"ChangeSetName": name}  # and its StackId, once CreateChangeSet answers
        rollback = self.rollback_configuration(layer)  # before the request: what stops it made nothing
        with self.discarded_if_stopped(layer, made, exists):
            self.request_change_set(layer, name, parameters, exists, made, rollback)
            if "StackId" not in made:
                return None  # nothing to change: no_changes() said so
            change_set = self.wait_for_change_set(layer, name, exists)
            # FAILED: "if your attempt to create a change set failed, CloudFormation shows the error message" (StatusReason):
            # https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_DescribeChangeSet.html
            failed = change_set["Status"] == "FAILED"
            if failed and not self.no_changes(layer, name, change_set.get("StatusReason")):
                raise Failure(f"error: change set {name} failed: {printable(change_set.get('StatusReason') or '')}")
        return None if failed else change_set

    def request_change_set(self, layer, name, parameters, exists, made, rollback):
        """CreateChangeSet, its StackId into made. The change-set name is the request's ClientToken,
        so that a retry (after a read timeout, say) of a request that did land is not refused as a
        second change set of that name.
        https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_CreateChangeSet.html"""
        try:
            answer = self.cf.create_change_set(
                StackName=layer.stack,
                ChangeSetName=name,
                ClientToken=name,
                ChangeSetType="UPDATE" if exists else "CREATE",
                TemplateBody=layer.template,
                Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in sorted(parameters.items())],
                Capabilities=CAPABILITIES,
                Tags=[{"Key": k, "Value": v} for k, v in sorted(layer.tags.items())],
                Description=text.change_set_description(
                    layer, self.rolling_back_from, self.repair, self.replaced_by(layer, parameters, exists)
                ),
                **rollback,
                **self.role,
            )
        except ClientError as error:
            if not self.no_changes(layer, None, error_message(error)):
                raise
        else:
            made["StackId"] = answer["StackId"]

    def replaced_by(self, layer, parameters, exists) -> str | None:
        """The image the stack runs, where these parameters release another: the image the release
        replaces, for its change set runs only on the stack it was made from (an executed change set
        deletes the stack's others, "because they aren't valid for the updated stack").
        https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/using-cfn-updating-stacks-changesets-execute.html"""
        running = parameter_values(self.describe(layer.stack)).get("ImageTag") if exists else None
        return running if running and parameters.get("ImageTag", running) != running else None

    def no_changes(self, layer, name, reason) -> bool:
        """The one place an empty change set is recognised, deleted and reported."""
        if not any(phrase in (reason or "") for phrase in NO_CHANGES):
            return False
        if name:
            try:
                self.delete_change_set(layer.stack, name)
            except ClientError as error:
                # described a moment ago: gone, its deletion's first attempt landed (the answer lost, botocore retried);
                # the sandbox answers a second deletion ChangeSetNotFound
                if not not_found(error):
                    raise
        found = self.stacks.get(layer.stack)  # this run's DescribeStacks: no call added
        # new tags alone: "no changes", then an update of them, read as a contradiction (update_tags says them next)
        retag = bool(found) and self.stack_tags(found) != layer.tags
        self.say(f"{layer.stack}: no changes" + " to its template or values" * retag)
        self.say(*text.drift_left(found or {}, layer))
        self.outcomes[layer.name] = "no changes"
        return True

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

    def wait_for_change_set(self, layer, name, exists=True):
        """The change set once CloudFormation has computed it; at most CHANGE_SET_WAIT_MINUTES."""
        stack = layer.stack
        for _ in self.polls(CHANGE_SET_WAIT_MINUTES * 60):
            change_set = self.cf.describe_change_set(StackName=stack, ChangeSetName=name)
            # Status, of CREATE_PENDING | CREATE_IN_PROGRESS | CREATE_COMPLETE | DELETE_PENDING | DELETE_IN_PROGRESS |
            # DELETE_COMPLETE | DELETE_FAILED | FAILED: the first two while CloudFormation is still computing it.
            # https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_DescribeChangeSet.html
            if change_set["Status"] not in ("CREATE_PENDING", "CREATE_IN_PROGRESS"):
                break
        else:
            raise StillComputing(
                f"error: stopped waiting for change set {name} of {stack} after {CHANGE_SET_WAIT_MINUTES} minutes; it is still "
                f"{change_set['Status']}. CloudFormation carries on; nothing was executed. Look at it: {self.cli} cloudformation "
                f"describe-change-set --stack-name {stack} --change-set-name {name}; execute it once it is ready: make execute "
                f"STACK={layer.name} ENV={self.env} CHANGESET={name}; or delete it: "
                f"{self.cli} cloudformation delete-change-set --stack-name {stack} --change-set-name {name}"
                + (
                    ""
                    if exists or stack in self.waiting  # a waiting stack was not this run's: it may hold a change set for review
                    else f", then the stack it made, empty (REVIEW_IN_PROGRESS): {self.cli} cloudformation delete-stack --stack-name {stack}"
                )
            )
        seen = set()
        token = next_page_token(change_set, seen, "DescribeChangeSet")
        change_set.pop("NextToken", None)
        while token:
            more = self.cf.describe_change_set(StackName=stack, ChangeSetName=name, NextToken=token)
            change_set["Changes"] = change_set.get("Changes", []) + more.get("Changes", [])  # optional in the model, as more's
            token = next_page_token(more, seen, "DescribeChangeSet")
        return change_set

    def nothing_changed(self, layer_name) -> str:
        """What a refusal of the layer's change set, or of its stack, leaves: in a run that changed earlier layers, not nothing."""
        changed = [name for name, outcome in self.outcomes.items() if outcome != "no changes" and name != layer_name]
        said = "nothing changed" if not changed else f"nothing changed in {layer_name}"
        if layer_name in self.recreated:  # gone: a deploy again creates it without RECREATE=1
            said = f"{said} but the deletion of {templates.stack_name(self.env, layer_name)}'s failed first create (RECREATE=1)"
        if changed:
            said += f"; this run changed {text.in_words(changed)} before it (the summary above)"
        return said

    def delete_change_set(self, stack, name):
        self.cf.delete_change_set(StackName=stack, ChangeSetName=name)

    def execute(self, layer, change_set, exists, allow_replace=False, reviewed=False):
        """Run the change set once it is allowed and confirmed. One that is not: a reviewed one
        (make execute) is left for another try; one this run made is deleted (discarded_if_stopped)."""
        name = change_set["ChangeSetName"]
        risky = text.stateful_changes(change_set)
        given = parameter_values(change_set)
        before = parameter_values(self.describe(layer.stack)) if exists else {}
        replaced = before.get("ImageTag")  # the image before the update
        outputs_before = self.outputs(layer.stack) if exists else {}
        left = "change set left for review" if reviewed else self.nothing_changed(layer.name)
        with self.discarded_if_stopped(layer, change_set, exists, keep=reviewed):
            again = text.execute_command(layer.name, self.env, name) if reviewed else None
            self.allow(layer, change_set, exists, allow_replace, left, given, again)
            if not exists and layer.stack not in self.waiting:
                self.refuse_a_stack_made_meanwhile(layer, change_set)
            if risky and exists and layer.policy:
                self.policies.relax(layer)
            # a change set given no rollback configuration (by hand) keeps the stack's triggers, and their minutes
            watched = change_set if change_set.get("RollbackConfiguration") or self.repair or not exists else self.describe(layer.stack)
            started = self.now()
            release = self.unrecorded_if_it_runs(given.get("ImageTag"), replaced)
            self.start_execution(layer, change_set, started, release and f"\n  if it started and completes, {release}")
        try:
            found = self.wait_for_stack(
                layer.stack,
                self.execution_tokens(name),
                started,
                change_set.get("StackId"),
                given,
                monitoring=monitoring_minutes(watched),
                operation="update" if exists else "create",
            )
        except Failure as stopped:  # the wait stopped (Ctrl-C, MAX_WAIT, AWS out of reach): the update goes on
            if not release:
                raise  # no release, or the same image: its release in the history stays the way back
            raise Failure(f"{stopped}\nif the update completes, {release}", stopped.code) from None
        if found["StackStatus"] in SUCCEEDED:  # the summary says so even if Ctrl-C comes in what follows
            changes = len(change_set.get("Changes", []))
            self.outcomes[layer.name] = f"{'updated' if exists else 'created'}, {changes} change{'s' * (changes != 1)}"
            if "ImageTag" in given:  # first: a Ctrl-C or an AWS error in what follows must not leave the live release unrecorded
                with self.recording(layer, given["ImageTag"], replaced) as recorded:
                    self.record_release(
                        given["ImageTag"], self.rolling_back_from, found["CreationTime"], replaced, revision_named_in(name, layer.stack)
                    )
                    recorded()
            advice.kept_replacements(self, layer, change_set)
            self.say(
                *text.subscriptions_to_confirm(
                    change_set, json.loads(layer.template), self.env == params.SANDBOX_ENV, (before, given), self.cf.meta.region_name
                )
            )
        if found["StackStatus"] in UPDATABLE:
            self.protect(layer, found)
        self.finish(layer, found, outputs=given.get(KEEP_RUNNING_COUNT) != "false")  # settle() prints them
        if exists:  # (finish raised unless it succeeded)
            advice.downstream_to_deploy(self, layer, outputs_before, found)
            advice.shared_values_to_deploy(self, layer, before, given)
        self.settle(layer, change_set)  # a service just created, or replaced (SERVICE_REPLACED_BY), stated its count

    @contextlib.contextmanager
    def recording(self, layer, image, replaced):
        """While a service release is recorded in the history (recorded(), yielded, says it is), stop
        signals are held: a Ctrl-C there left the live release out of the history, and a rollback then
        went too far back. The first says what the run finishes first; a second stops it at once,
        saying a rollback from the release must name the image."""
        done = []
        try:
            with stops_held(
                held=lambda: self.say(
                    f"{layer.stack}: stopping once the release of {image} is recorded (Ctrl-C again, or a SIGTERM, stops now)"
                )
            ):
                yield lambda: done.append(True)
        except BaseException:  # a second Ctrl-C, or an error before the record: the release is live all the same
            if not done:
                self.say("warning: " + text.release_not_recorded(image, self.env, self.history.name, self.rolling_back_from, replaced))
            raise

    @staticmethod
    def execution_token(name) -> str:
        """ExecuteChangeSet's ClientRequestToken for the change set of that name, which its stack events
        carry: not the name itself, CreateChangeSet's ClientToken, as AWS does not say whether the two
        requests' tokens are apart (CDK keeps them apart too). Letters, digits and -, at most 128: a name
        too long for the prefix (one made by hand: ours are at most 117, a 40-digit revision -dirty -settle) goes by its digest.
        https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_ExecuteChangeSet.html (the token's
        limits) and https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_StackEvent.html (events carry it)"""
        token = f"execute-{name}"
        return token if len(token) <= 128 else f"execute-{hashlib.sha256(name.encode()).hexdigest()}"

    @classmethod
    def execution_tokens(cls, name) -> tuple:
        """The tokens the events of the change set's execution may carry: ExecuteChangeSet's (execution_token), as
        API_StackEvent has it ("the token passed to the operation that generated this event"; the console's tokens
        are named after the operation, Console-CreateStack-...), or CreateChangeSet's, the name: its only example is
        CreateStack, which makes and runs a stack in one request. A wait that took neither for this run's would go on
        to its bound, taking no event as this operation's.
        https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_StackEvent.html"""
        return (cls.execution_token(name), name)

    def start_execution(self, layer, change_set, started, release_hint=""):
        """ExecuteChangeSet of the change set this run described (by its ARN, ChangeSetId: one made
        under its name since, while the question was open, is not the one shown). Refused (an error
        answer to the first attempt), the change set did not run; otherwise it may have
        (aws.may_have_landed), so it is kept and named. Its ClientRequestToken (execution_token): botocore's
        retries of a request that did land are not a second execution.
        No StackName: the API asks for one only with a change set's name (--api-calls counts the call under
        the stack the change set's answers named: AwsCalls.remember_change_set).
        release_hint: for a release, what to know of it if it started (unrecorded_if_it_runs).
        https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_ExecuteChangeSet.html"""
        name = change_set["ChangeSetName"]
        self.execution_asked.add(layer.name)
        try:
            self.cf.execute_change_set(ChangeSetName=change_set["ChangeSetId"], ClientRequestToken=self.execution_token(name))
        except (*AWS_ERRORS, KeyboardInterrupt) as error:
            interrupted = isinstance(error, KeyboardInterrupt)
            # A sandbox whose server is gone took the change set with it: no make execute of it to advise (discarded_if_stopped says so)
            if not interrupted and (not may_have_landed(error) or sandbox_gone(error, self.env)):
                raise
            if isinstance(error, ClientError):
                try:
                    if self.started_by_an_earlier_attempt(layer, change_set, error, started):
                        return
                except KeyboardInterrupt:
                    interrupted = True
            raise ExecutionUnknown(
                f"{'interrupted' if interrupted else unanswered(error)} while asking CloudFormation to execute {name}{'' if interrupted else f' ({error})'}; it may have started "
                f"(and, if short, ended). {text.execute_command(layer.name, self.env, name, self.switches_given())} executes "
                f"it if it did not start, and says so if it did{release_hint}{self.policies.still_relaxed()}",
                130 if interrupted else 1,
            ) from None

    def started_by_an_earlier_attempt(self, layer, change_set, error, started) -> bool:
        """After an error answer to a retried ExecuteChangeSet (such as InvalidChangeSetStatus: what a retry with
        the same token gets once the first attempt ran is not documented), whether this run's first attempt,
        whose answer was lost, started the change set: its ExecutionStatus says it started, and the stack's
        latest events are this run's operation's as the wait takes them (of_the_operation: "all events triggered
        by a given stack operation are assigned the same client request token"), which it then follows. Said when
        so. Started by another request (the console's token), or a lookup that fails: unknown (False), as it was.
        https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_ExecuteChangeSet.html,
        https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_DescribeChangeSet.html (ExecutionStatus)
        and https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_StackEvent.html (ClientRequestToken)"""
        try:
            execution = self.cf.describe_change_set(ChangeSetName=change_set["ChangeSetId"]).get("ExecutionStatus")
            if execution not in ALREADY_EXECUTED:
                return False
            latest = self.cf.describe_stack_events(StackName=change_set["StackId"]).get("StackEvents", [])
        except AWS_ERRORS:
            return False
        tokens = self.execution_tokens(change_set["ChangeSetName"])
        if not any(of_the_operation(event, tokens, started) for event in latest):
            return False
        self.say(
            f"{layer.stack}: a retry of the request to execute {change_set['ChangeSetName']} was answered {error_code(error)}, "
            f"and the change set is {execution}, its events this run's: the first attempt, whose answer was lost, started it; following it"
        )
        return True

    def unrecorded_if_it_runs(self, image, replaced) -> str:
        """For a change set that releases image (a new one, or a rollback; replaced: the image that runs),
        what to know when this run cannot tell whether it ran (a stopped ExecuteChangeSet or wait): its
        release is then not in the history, and a rollback from it names the image. "" for no release
        (image None), or a redeploy of the running image, whose release in the history stays the way back."""
        if image is None or (image == replaced and not self.rolling_back_from):
            return ""
        return text.release_not_recorded(image, self.env, self.history.name, self.rolling_back_from, replaced)

    def say_earlier_stack_image(self, given) -> None:
        """For a service stack's create: the image the stack before it last ran, where it is another (text.earlier_stack_image).
        A history that cannot be read is said, and the run goes on: the create does not depend on it."""
        if "ImageTag" not in given:
            return
        try:
            releases = self.history.releases()
        except AWS_ERRORS as error:
            self.say(
                f"note: the release history could not be read ({error_code(error)}): make releases ENV={self.env} says which "
                "image the service stack before this one last ran"
            )
            return
        self.say(*text.earlier_stack_image(releases, given["ImageTag"], self.env))

    def switches_given(self) -> str:
        """The switches this run's change set needed, for a make execute of it to be allowed as this run was."""
        return "".join(
            f" {name}=1" for name, on in (("ALLOW_REPLACE", self.allowed_replace), ("ALLOW_TRAFFIC_RESET", self.allow_traffic_reset)) if on
        )

    def allow(self, layer, change_set, exists, allow_replace, left, given, again=None):
        """Raise Failure unless the change set may run: nothing guards.py refuses, and a yes (or --yes). again: the
        command that runs a reviewed change set (guards.refuse_before_execute)."""
        self.allowed_replace = allow_replace
        again = again and again + self.switches_given()  # the switches this run was given, which it needs again
        guards.refuse_before_execute(self, layer, change_set, exists, allow_replace, left, again)
        if exists:  # what the DescribeStacks of this run says: no detection started, no call added
            self.say(*text.drift_warning(self.describe(layer.stack) or {}, layer))
            advice.readers_of_replaced(self, layer, change_set)  # once allowed: a refused update leaves them alone
            self.say(*text.kept_logs_unreadable(layer, change_set, self.cli, self.now()))
            self.say(*text.custom_named_maybe_replaced(change_set, layer.custom_named))
        else:
            self.say_earlier_stack_image(given)
        self.say(*text.test_pause(given, self.env, self.on_aws, self.rolling_back_from))  # before the question: it asks for someone at hand
        if layer.name in templates.ROLLBACK_TRIGGERS:  # before the question too: a repair made with them would be undone
            self.say(*text.rollback_triggers(change_set, "update" if exists else "create", repair=self.repair, on_aws=self.on_aws))
        self.confirm(
            f"execute {change_set['ChangeSetName']} on {layer.stack}? [y/N] ",
            left,
            "execute",
        )

    @contextlib.contextmanager
    def discarded_if_stopped(self, layer, change_set, exists, keep=False):
        """Whatever stops the run inside (a refusal, an AWS error, a dead endpoint or Ctrl-C), from
        CreateChangeSet to ExecuteChangeSet, deletes the change set this run made and the empty stack
        a first create made for it, and puts back a stack policy this run relaxed, saying so, or says
        what may be left and how to undo it. Kept: a reviewed change set (make execute), and one the
        error message tells what to do with (ChangeSetKept). A refused CreateChangeSet made nothing."""
        try:
            yield
        except ChangeSetKept:
            raise
        except BaseException as error:
            if sandbox_gone(error, self.env):  # what the run made there went with the server: nothing to undo or name
                raise error if isinstance(error, SandboxGone) else SandboxGone(error) from None
            # Before CreateChangeSet answered (no StackId yet), an AWS error that cannot have landed made nothing.
            refused = isinstance(error, AWS_ERRORS) and "StackId" not in change_set and not may_have_landed(error)
            self.undo(layer, [] if keep or refused else self.what_it_made(layer, change_set, exists))
            raise

    def what_it_made(self, layer, change_set, exists):
        """(what deleting it says, how to delete it, what to say if it may be left) for the change set
        and the empty first stack. An action that returns False did not know what to delete: what
        may be left is said. Without a StackId, CreateChangeSet got no answer: once its change set is
        found and deleted, it had landed and made the stack, which is then looked up and deleted;
        else whether it made the stack is not known, so the stack is named, not deleted."""
        name = change_set["ChangeSetName"]
        change_set_deleted = []

        def delete_change_set():
            self.delete_change_set(layer.stack, name)
            change_set_deleted.append(name)

        made = [
            (
                f"change set {name} deleted",
                delete_change_set,
                f"change set {name} may be left; delete it: {self.cli} cloudformation delete-change-set --stack-name {layer.stack} --change-set-name {name}",
            )
        ]
        if not exists and layer.stack not in self.waiting:

            def delete_empty_stack():
                stack_id = change_set.get("StackId")
                if stack_id is None:
                    if not change_set_deleted:
                        return False
                    # The stack this run's CreateChangeSet made: none of the name was there when the run
                    # began (neither exists nor waiting), and the environment's lock keeps other runs out.
                    stack_id = self.cf.describe_stacks(StackName=layer.stack)["Stacks"][0]["StackId"]
                # Not the run's if another CREATE change set made it between the run's read and its own, which
                # CloudFormation then added to it: one with a change set but this run's (deleted above) stays.
                try:
                    others = self.change_sets_besides(stack_id, name)
                except AWS_ERRORS as error:
                    return (
                        f"stack {layer.stack} left as it is: its change sets could not be listed ({error_code(error)}) to tell "
                        f"that it holds none but this run's; once it holds none: {self.cli} cloudformation delete-stack --stack-name {layer.stack}"
                    )
                if others:
                    return f"stack {layer.stack} left as it is: it holds change sets this run did not make ({', '.join(others)})"
                self.cf.delete_stack(StackName=stack_id, **self.role)

            made.append(
                (
                    f"stack {layer.stack}, empty (REVIEW_IN_PROGRESS) deleted",
                    delete_empty_stack,
                    f"stack {layer.stack}, empty (REVIEW_IN_PROGRESS) may be left; delete it: {self.cli} cloudformation delete-stack --stack-name {layer.stack}",
                )
            )
        return made

    def undo(self, layer, made):
        """Delete what made lists and put back a stack policy this run relaxed, saying each done or
        naming it as possibly left with the command that undoes it. Ctrl-C (again) stops the clean-up:
        what is not undone yet is named, not tried."""
        put_back = self.policies.undo_step(layer)
        if put_back:
            made = [*made, put_back]
        for index, (done, action, left) in enumerate(made):
            try:
                outcome = action()  # False: not known what to delete; a text: what was found instead
                if outcome is False:
                    self.say(f"{layer.stack}: {left}")
                    continue
            except KeyboardInterrupt:
                for _, _, left in made[index:]:
                    self.say(f"{layer.stack}: {left}")
                return
            except AWS_ERRORS as error:  # why it may be left: an AccessDenied (CI's deploy role deletes no stack) or a timeout
                gone = isinstance(error, ClientError) and not_found(error)  # not there yet, as a change set still being made
                self.say(f"{layer.stack}: {left}" if gone else f"{layer.stack}: {error_code(error) or type(error).__name__}, so {left}")
            else:
                self.say(f"{layer.stack}: {outcome if isinstance(outcome, str) else done}")

    def settle(self, layer, created):
        """A service stack just created, or updated with a new service (Deployer.parameters), stated its
        first task count; switch it at once to leaving the count to auto-scaling, so that the next
        deploy of unchanged files is a quiet no-op and a later rollback does not restore the count."""
        given = parameter_values(created)
        if given.get(KEEP_RUNNING_COUNT) != "false":
            return
        self.say(f"{layer.stack}: from now on, updates leave the running task count to auto-scaling ({KEEP_RUNNING_COUNT}=true)")
        change_set = self.create_change_set(layer, given | {KEEP_RUNNING_COUNT: "true"}, exists=True, suffix="-settle")
        if change_set:
            name, started = change_set["ChangeSetName"], self.now()
            with self.discarded_if_stopped(layer, change_set, exists=True):
                self.start_execution(layer, change_set, started)
            self.finish(layer, self.wait_for_stack(layer.stack, self.execution_tokens(name), started, operation="update"))

    def protect(self, layer, found):
        # The stack policy before termination protection: a run stopped between the two leaves the
        # protection off, which the next run sees (deploy, with no changes) and finishes.
        if layer.policy:
            self.policies.restore(layer)
        if not found.get("EnableTerminationProtection"):
            self.cf.update_termination_protection(StackName=layer.stack, EnableTerminationProtection=True)
            found["EnableTerminationProtection"] = True

    def finish(self, layer, found, outputs=True):
        status = found["StackStatus"]
        if status not in SUCCEEDED:
            self.say(f"{layer.stack}: {status}: {printable(found.get('StackStatusReason', ''), one_line=True)}".rstrip(": "))
            self.print_failures()
            self.say_stopped_tasks_unsaid(layer, found)
            # What each stack status means: the page status.py cites.
            hint = {
                "ROLLBACK_COMPLETE": self.taken_name_hint(layer) or self.way_out(layer.name, status),
                "ROLLBACK_FAILED": self.way_out(layer.name, status),
                "UPDATE_ROLLBACK_COMPLETE": "the update rolled back to the previous template; fix the cause above and deploy again",
                "UPDATE_ROLLBACK_FAILED": text.recover_hint(self.env, layer.name),
            }.get(status, "see the failed resources above")
            raise Failure(f"error: {layer.stack} ended {status}: {hint}{self.policies.still_relaxed()}")
        self.say(f"{layer.stack}: {status}")
        if status == "UPDATE_COMPLETE":
            self.say(*text.left_outside_the_stack(self.events, layer.stack))
        if outputs:
            self.say(*text.outputs(found))

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

    def print_failures(self) -> list[dict]:
        """Say which resources failed in the last wait; their events. The stack's own failed events
        stay: where no resource is named (the sandbox's, at times), theirs is the only reason."""
        failed = [e for e in self.events if e["ResourceStatus"].endswith("_FAILED")]
        self.say(*text.failed_resources(failed))
        return failed

    # --- waiting ----------------------------------------------------------------------------
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
            raise Failure("\n".join(lines) + self.policies.still_relaxed(), 130) from None
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

    # --- one run at a time per environment, and the release history ---------------------------

    @functools.cached_property
    def lock(self):
        return EnvironmentLock(self.client("ssm"), self.env, self.now, self.err)

    @functools.cached_property
    def relaxed_marks(self):
        return RelaxedPolicyMarks(self.client("ssm"), self.env, self.now, self.say, lambda: self.cli)

    @functools.cached_property
    def policies(self):
        return StackPolicies(self.client, lambda: self.relaxed_marks, self.describe, self.say, lambda: self.cli)

    @functools.cached_property
    def history(self):
        return ReleaseHistory(self.client("ssm"), self.env, self.say, self.sleep)

    def record_release(self, image_tag, rolled_back_from=None, stack_created=None, replaced=None, revision=None):
        """replaced: the image the stack ran before (what a rollback from this release goes back to); revision: the one
        its change set was made at (make execute runs one made earlier), else output/'s now.
        The release is live whatever happens here: a history that cannot be read or written (expired
        credentials after a long wait, a role without the permission) is a warning, and the run goes on."""
        try:
            entry = {
                "time": f"{self.now():%Y-%m-%dT%H:%M:%SZ}",
                "image_tag": image_tag,
                "revision": revision or self.revision or git_revision(self.output_dir),
                "by": self.caller_arn(),
            }
            if stack_created:  # which service stack: one destroyed and created again starts a new history
                entry["stack_created"] = stack_mark(stack_created)
            if rolled_back_from:
                entry["rolled_back_from"] = rolled_back_from
            entry["replaced"] = replaced  # None: the stack's first release
            self.history.record(entry)
            self.release_recorded = True
        except AWS_ERRORS as error:
            self.say(
                "warning: "
                + text.release_not_recorded(image_tag, self.env, self.history.name, rolled_back_from, replaced, error_code(error))
            )

    def caller_arn(self) -> str:
        """Who this run runs as, for the release history: a release is recorded all the same when that is refused.
        No answer ends the record (a warning): the history's own write would wait out the same retries."""
        try:
            return self.client("sts").get_caller_identity()["Arn"]
        except ClientError as error:
            return f"unknown (GetCallerIdentity: {error_code(error)})"

    # --- one layer --------------------------------------------------------------------------
    def deploy(self, layer, image_tag=None, allow_replace=False, recreate=False, leave=False):
        wired = self.wired_parameters(layer)  # reads only
        guards.refuse_a_missing_image(self, layer, image_tag)
        self.describe(layer.stack)  # read now: the account check finds the account in it, before anything changes
        guards.refuse_a_secret_of_another_account(self, layer)
        guards.refuse_a_secret_the_tasks_cannot_read(self, layer)
        guards.refuse_subnets_the_layers_cannot_use(self, layer)
        guards.refuse_a_cluster_the_service_cannot_use(self, layer)
        exists = self.ready(layer, recreate)  # RECREATE=1 deletes a failed first create: after the refusals
        if allow_replace and not leave:  # make changeset changes nothing: its change set is checked when executed
            guards.refuse_taken_names_ahead(self, layer)
        if not exists:
            guards.refuse_blocked_creates(self, layer)
        self.policies.put_back_if_marked(layer)
        guards.refuse_undelegated_domain(self, layer, exists)
        values = self.parameters(layer, wired, image_tag)
        guards.refuse_failing_rules(self, layer, values, self.nothing_changed(layer.name))
        change_set = self.create_change_set(layer, values, exists)
        if change_set is None:
            found = self.describe(layer.stack)
            if found and not found.get("EnableTerminationProtection"):
                self.protect(layer, found)  # finish a run interrupted before it protected the stack
                self.say(
                    f"{layer.stack}: termination protection was off (a run stopped before it set it, or a change by hand): turned back on"
                )
            if found and self.stack_tags(found) != layer.tags:
                if not leave:
                    self.update_tags(layer, found)
                else:  # make changeset: the tags, which this empty change set (the sandbox's, see update_tags) does not carry, are a deploy's to set
                    differing = sorted({key for key, _ in set(self.stack_tags(found).items()) ^ set(layer.tags.items())})
                    self.say(
                        f"{layer.stack}: its tags differ from {self.params_file}'s ({', '.join(differing)}), "
                        f"which the empty change set does not carry: make deploy STACK={layer.name} ENV={self.env} sets them"
                    )
            return
        with self.discarded_if_stopped(layer, change_set, exists):  # make changeset keeps it once shown
            self.say(*text.change_set_table(change_set, self.describe(layer.stack) if exists else None, self.colour, layer.conditions))
            guards.say_when_container_insights_is_off(self, layer, wired)  # under the layer's table, not the layer's before
            if not leave:
                self.say_waiting_change_sets(layer, change_set)
        if leave:
            self.say(*text.left_for_review(change_set, layer))  # first: kept, it is named whatever stops what follows
            self.left_for_review = change_set["ChangeSetName"]  # a Ctrl-C from here on leaves it (going_on_after_ctrl_c)
            self.say_refused_at_execute(layer, change_set, exists)
            if not exists:
                self.say_earlier_stack_image(parameter_values(change_set))
            return
        self.execute(layer, change_set, exists, allow_replace)

    def say_refused_at_execute(self, layer, change_set, exists):
        """make changeset: what make execute's guards would refuse in the change set as things stand (the rules a deployed
        service still uses, a protected load balancer, a taken log group name, ...), which the reviewer then reads before
        the command that runs it fails. ALLOW_REPLACE=1's need, and a replacement under the same name (which nothing
        gets past), are left_for_review's lines. A look, like make diff's: one that cannot be made is a note."""
        if text.custom_named_replacements(change_set, layer.custom_named):
            return
        again = text.execute_command(layer.name, self.env, change_set["ChangeSetName"], text.execute_switches(change_set))
        try:
            guards.refuse_before_execute(self, layer, change_set, exists, True, "it stays for review", again)
        except Refused as refused:
            self.say(f"  as things stand, make execute refuses it: {str(refused).removeprefix('error: refused: ')}")
        except AWS_ERRORS as error:
            self.say(f"  note: what make execute would refuse in it could not be looked at ({error_code(error)}); make execute looks again")

    def say_waiting_change_sets(self, layer, change_set, what="running this change set"):
        """Before asking: running this change set (or what) ends every other one of the stack ("CloudFormation
        deletes all other change sets associated with the stack"), a change set left for review too.
        https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_ExecuteChangeSet.html"""
        if not (self.has_stack(layer.stack) or layer.stack in self.waiting):
            return  # a stack this run's change set made: it has no other (refuse_a_stack_made_meanwhile looks again)
        otherwise = "any ends when this one runs" if what == "running this change set" else f"any ends by {what}"
        waiting = self.change_sets_for_review(layer.stack, otherwise, but=change_set["ChangeSetName"])
        if waiting:
            self.say(f"  note: {what} ends the other change sets of {layer.stack}, left for review or by a stopped run: {waiting}")

    def refuse_a_stack_made_meanwhile(self, layer, change_set) -> None:
        """Right before a create's change set runs: the stack it made has no other change set, unless another CREATE
        change set made it first, between the run's read and its own, or one came while the question was open: a stack
        under review holds no template or resources, and CloudFormation takes a CREATE change set for it as for a stack
        that does not exist ("To create a change set for a stack that doesn't exist ... specify CREATE",
        https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_CreateChangeSet.html; this tool's deploy
        of its own stack under review relies on the same, as CDK's does: github.com/aws/aws-cdk/pull/7731). Running ours
        would end theirs (API_ExecuteChangeSet.html): someone else's, not to be run over."""
        try:
            others = self.change_sets_besides(change_set["StackId"], change_set["ChangeSetName"])
        except AWS_ERRORS as error:  # as for an update's (say_waiting_change_sets): a note, the run goes on
            self.say(
                f"  note: the change sets of {layer.stack} could not be listed ({error_code(error)}); any other ends when this one runs"
            )
            return
        if others:
            raise Failure(
                f"error: {layer.stack} was made meanwhile by another CREATE change set, not this run's ({', '.join(others)}): "
                f"its change set was added to that stack, and running it would end theirs; {self.nothing_changed(layer.name)}. "
                "Ask its owner, then deploy again"
            )

    def change_sets_besides(self, stack_id, name) -> list[str]:
        """The names of the stack's change sets but that one (the stack by its id: not one made under its name since)."""
        return [s.get("ChangeSetName", "(unnamed)") for s in change_set_summaries(self.cf, stack_id) if s.get("ChangeSetName") != name]

    def change_sets_for_review(self, stack, otherwise, but=None) -> str:
        """The stack's change sets that could still run (but that one), named with their age; when
        they cannot be listed, only a note (saying `otherwise`): the run goes on."""
        try:
            summaries = change_set_summaries(self.cf, stack)
        except AWS_ERRORS as error:
            said = error_code(error)
            self.say(f"  note: the {'other ' * bool(but)}change sets of {stack} could not be listed ({said}); {otherwise}")
            return ""
        waiting = [s for s in summaries if (but is None or s.get("ChangeSetName") != but) and s.get("ExecutionStatus") == "AVAILABLE"]
        return ", ".join(
            s.get("ChangeSetName", "(unnamed)") + (f" (made {s['CreationTime']:%Y-%m-%d %H:%M %Z})" if "CreationTime" in s else "")
            for s in waiting
        )

    @staticmethod
    def stack_tags(found) -> dict:
        return {tag["Key"]: tag["Value"] for tag in found.get("Tags", [])}

    def update_tags(self, layer, found):
        """When a change set sees no change although the stack's tags differ (it ends FAILED, "didn't
        contain changes"), new tags go through UpdateStack with the previous template and parameter
        values; CloudFormation passes stack tags on to the resources that take tags. The sandbox's
        change sets do that. AWS's have a Scope Tags for a Modify (the first page below), and report
        a change of stack tags alone that way in the field (not a documented promise; either path
        applies the tags).
        https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_ResourceChange.html
        https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_UpdateStack.html"""
        self.say(*text.tag_changes(layer, self.stack_tags(found)))
        self.say_waiting_change_sets(layer, {"ChangeSetName": None}, what="updating its tags")  # an UpdateStack ends them too
        # UpdateStack given no RollbackConfiguration keeps the stack's last triggers: a repair's empty list goes too
        rollback = self.rollback_configuration(layer)
        if rollback:
            self.say(*text.rollback_triggers(rollback, "update", what="this update of its tags", on_aws=self.on_aws))
        # its change set's "no changes" is not this update's: the summary waits for its end, or, declined, says the run
        # stopped at the layer (not "after its stack operation: no changes", when none ran)
        self.outcomes.pop(layer.name, None)
        self.confirm(
            f"update the tags of {layer.stack}? [y/N] ",
            f"tags of {layer.stack} left as they are",
            "update",
        )
        started = self.now()
        token = f"tags-{layer.stack}-{started:%Y%m%d%H%M%S}"
        try:
            self.cf.update_stack(
                StackName=layer.stack,
                UsePreviousTemplate=True,
                Parameters=[{"ParameterKey": p["ParameterKey"], "UsePreviousValue": True} for p in found.get("Parameters", [])],
                Capabilities=CAPABILITIES,
                Tags=[{"Key": k, "Value": v} for k, v in sorted(layer.tags.items())],
                ClientRequestToken=token,
                **rollback,
                **self.role,
            )
        except (*AWS_ERRORS, KeyboardInterrupt) as error:  # as ExecuteChangeSet's (start_execution): it may have started
            interrupted = isinstance(error, KeyboardInterrupt)
            if not interrupted and (not may_have_landed(error) or sandbox_gone(error, self.env)):
                raise
            raise Failure(
                f"{'interrupted' if interrupted else unanswered(error)} while asking CloudFormation to update the tags of {layer.stack}"
                f"{'' if interrupted else f' ({error})'}; it may have started (and, if short, ended): make status ENV={self.env} "
                f"says; the same command again updates them if it did not{self.policies.still_relaxed()}",
                130 if interrupted else 1,
            ) from None
        found = self.wait_for_stack(layer.stack, token, started, monitoring=monitoring_minutes(rollback), operation="update")
        image = parameter_values(found).get("ImageTag")
        if found["StackStatus"] in SUCCEEDED and image:  # a redeploy of the running image, as AWS's change set of the tags is
            with self.recording(layer, image, image) as recorded:
                self.record_release(image, None, found["CreationTime"], image)
                recorded()
        self.finish(layer, found, outputs=False)
        self.outcomes[layer.name] = "tags updated"

    def delete(self, stack, retains=False):
        """Delete the stack this run read (and checked was ours), by its id: one made under its name
        since (while the question was open, or while other layers were deleted) is not touched.
        StackName takes "the name or the unique stack ID":
        https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_DeleteStack.html
        A run stopped once DeleteStack may have landed (Ctrl-C, no answer, a stopped wait) leaves the stack's
        layer in self.deleting, with whether it retains something: the stack may be gone, and destroy names it
        as such, and make purge for it too (commands.py). Refused or ended otherwise, it is not."""
        found = self.describe(stack)
        if self.untagged_under_review(found):  # its change sets, read when the run began: one may have come since
            self.others_under_review.pop(found["StackId"], None)
            self.refuse_others_under_review(found)
        layer_name = templates.layer_of(self.env, stack)
        if found.get("EnableTerminationProtection"):
            self.unprotected = (layer_name, False)  # from the request on, until known: its answer may be lost
            try:
                self.cf.update_termination_protection(StackName=found["StackId"], EnableTerminationProtection=False)
            except AWS_ERRORS as error:
                if not may_have_landed(error):
                    self.unprotected = None  # refused, or never sent: still protected
                raise
            self.unprotected = (layer_name, True)
            self.say(f"{stack}: termination protection turned off, to delete it")
        started = self.now()
        token = f"delete-{stack}-{started:%Y%m%d%H%M%S}"
        self.deleting = (layer_name, retains)
        try:
            self.cf.delete_stack(StackName=found["StackId"], ClientRequestToken=token, **self.role)
        except AWS_ERRORS as error:
            if not may_have_landed(error):
                self.deleting = None  # refused, or never sent: the stack is there
            raise
        self.unprotected = None  # it is being deleted
        found = self.wait_for_stack(stack, token, started, operation="delete")
        self.deleting = None
        if found["StackStatus"] != "DELETE_COMPLETE":
            self.print_failures()
            raise Failure(
                f"error: {stack} ended {found['StackStatus']}; fix the failed resources above, then destroy it again: "
                f"make destroy STACK={layer_name} ENV={self.env}"
            )

    def consumers(self, layer_name):
        downstream = sorted(templates.downstream_of(layer_name))  # enabled or not: a deployed one reads the outputs
        stacks = [self.describe(templates.stack_name(self.env, d), refuse_foreign=False) for d in downstream]
        return [s["StackName"] for s in stacks if is_deployed(s) and not self.foreign(s)]

    def destroy(self, layer_name):
        stack = templates.stack_name(self.env, layer_name)
        found = self.describe(stack)
        if found is None:
            self.say(f"{stack}: not deployed")
            return
        if busy(found["StackStatus"]):
            self.say(f"{stack} is {found['StackStatus']}: waiting for it to settle")
            found = self.wait_for_stack(stack, token=None)
            if found["StackStatus"] == "DELETE_COMPLETE":
                return
        keep = self.retained(stack) if found["StackStatus"] != "REVIEW_IN_PROGRESS" else {}
        ids = {}
        if keep:
            ids = {  # not one a rollback deleted already (a failed first create's)
                r.get("LogicalResourceId"): r.get("PhysicalResourceId", "")
                for r in self.cf.describe_stack_resources(StackName=stack)["StackResources"]
                if r.get("ResourceStatus") != "DELETE_COMPLETE"
            }
        self.delete(stack, retains=any(ids.get(logical_id) for logical_id in keep))
        self.say(f"{stack}: deleted")
        if purge.say_retained(self, keep, ids):  # make purge frees them all, once it finds each is still the stack's
            self.retained_layers.append(layer_name)
        if "AWS::Route53::HostedZone" in keep.values():
            self.say("  to keep using the retained hosted zone, set ExistingHostedZoneId to its id before deploying cert-dns again")
