"""A layer's change set for the Deployer, from CreateChangeSet to ExecuteChangeSet: made (or found empty), shown,
allowed and confirmed, executed and followed; whatever stops the run between the two undoes what it made."""

import contextlib
import hashlib
import json

from botocore.exceptions import ClientError

import templates
from scripts.deploy import advice, guards, text
from scripts.deploy.aws import (
    AWS_ERRORS,
    NO_ANSWER,
    SandboxGone,
    error_code,
    error_message,
    may_have_landed,
    next_page_token,
    not_found,
    sandbox_gone,
)
from scripts.deploy.failure import Failure, Refused
from scripts.deploy.layer import revision_named_in
from scripts.deploy.reading import change_set_summaries
from scripts.deploy.status import ALREADY_EXECUTED, SUCCEEDED, UPDATABLE
from scripts.deploy.text import parameter_values
from scripts.deploy.waiting import monitoring_minutes, of_the_operation
from templates import CHANGE_SET_WAIT_MINUTES, params
from templates.errors import printable
from templates.inputs import KEEP_RUNNING_COUNT

CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"]


# A change set's StatusReason when it changes nothing: AWS documents no wording; these are the ones the
# AWS CLI's own `cloudformation deploy` matches (https://github.com/aws/aws-cli/blob/v2/awscli/customizations/cloudformation/deployer.py).
NO_CHANGES = ("The submitted information didn't contain changes", "No updates are to be performed")


class ChangeSetKept(Failure):
    """Stops the run leaving the change set, and says what to do with it."""


class StillComputing(ChangeSetKept):
    """A change set still computed past CHANGE_SET_WAIT_MINUTES."""


def unanswered(error) -> str:
    """How a request that may have landed ended (aws.may_have_landed)."""
    return "error: no answer" if isinstance(error, NO_ANSWER) else "error: an error answer to a retry"


class ExecutionUnknown(ChangeSetKept):
    """ExecuteChangeSet got no answer (no connection, an unreadable one, Ctrl-C): it may have started."""


class ChangeSets:
    """Part of the Deployer (deployer.py, whose __init__ sets the state every part shares): a layer's change set made,
    allowed and confirmed, executed and followed, or undone."""

    def create_change_set(self, layer, parameters, exists, suffix=""):
        """The change set's description, or None when there is nothing to change (then it is deleted)."""
        # To the millisecond: two runs of one environment take the lock in turn, so the second's time is
        # later, but on the sandbox within the same second; the name is also the request's ClientToken, which
        # tells CloudFormation "you're not attempting to create another change set with the same name", so the
        # second of two equal ones would pass for a retry of the first (what AWS then answers is not documented).
        # https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_CreateChangeSet.html
        stamp = self.now()
        name = f"{layer.stack}-{stamp:%Y%m%d%H%M%S}{stamp.microsecond // 1000:03}-{self.output_revision()}{suffix}"
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
            reason = change_set.get("StatusReason") or ""
            if failed and not self.no_changes(layer, name, reason):
                # the way on reads the stacks (the image the service runs): only for this reason
                way = (
                    f" ({guards.TYPE_CHANGE_WAY}: {self.destroy_and_deploy_again(layer.name)})"
                    if guards.TYPE_CHANGE_REFUSED in reason
                    else ""
                )
                raise Failure(f"error: change set {name} failed: {printable(reason)}{way}")
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
            self.release_unrecorded = True
            # the same class: a Ctrl-C's (StoppedWaiting) is followed by the run's way on (main)
            operation = "update" if exists else "create"
            raise type(stopped)(f"{stopped}\nif the {operation} completes, {release}", stopped.code) from None
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

    def change_sets_for_review(self, stack, otherwise, but=None, being_made=False) -> str | None:
        """The stack's change sets that could still run (but that one), named with their age ("" for none), and with
        being_made those CloudFormation still makes, which can once made (ExecutionStatus UNAVAILABLE, "still creating
        it", Status CREATE_PENDING or CREATE_IN_PROGRESS:
        https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_ChangeSetSummary.html); when they cannot
        be listed, only a note (saying `otherwise`), and None: the run goes on."""
        try:
            summaries = change_set_summaries(self.cf, stack)
        except AWS_ERRORS as error:
            said = error_code(error)
            self.say(f"  note: the {'other ' * bool(but)}change sets of {stack} could not be listed ({said}); {otherwise}")
            return None
        others = [s for s in summaries if but is None or s.get("ChangeSetName") != but]
        made = [s for s in others if s.get("ExecutionStatus") == "AVAILABLE"]
        making = [s for s in others if being_made and s.get("Status") in ("CREATE_PENDING", "CREATE_IN_PROGRESS")]

        def named(summary, making):
            when = f"{summary['CreationTime']:%Y-%m-%d %H:%M %Z}" if "CreationTime" in summary else ""
            said = ["being made"] if making else []
            said += [f"{'since' if making else 'made'} {when}"] if when else []
            return summary.get("ChangeSetName", "(unnamed)") + (f" ({', '.join(said)})" if said else "")

        return ", ".join([named(s, making=False) for s in made] + [named(s, making=True) for s in making])

    # --- once the execution has ended: the stack protected, its outcome said, a new service settled ---------
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
