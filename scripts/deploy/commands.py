"""The commands of `python -m scripts.deploy`, one method each, and COMMANDS, the table main() runs
them from."""

import contextlib
import itertools
import json
import os
import re
import shlex
import sys
import uuid

from botocore.exceptions import ClientError

import templates
from scripts import verify
from scripts.deploy import diff, drift, guards, lock, logs, purge, tasks, text, zone
from scripts.deploy.aws import AWS_ERRORS, UNREADABLE, error_code, explain, may_have_landed, not_found, sandbox_gone
from scripts.deploy.change_sets import ExecutionUnknown
from scripts.deploy.failure import Failure, Refused, RefusedAhead, UpstreamsNotDeployed
from scripts.deploy.history import (
    abandoned,
    nothing_earlier,
    of_the_stack,
    previous_release,
    redeploy,
    revision_running,
    stack_mark,
    unknown_before,
)
from scripts.deploy.layer import compact, layer_named_in, revision_named_in
from scripts.deploy.lock import holder_runs
from scripts.deploy.status import (
    ALREADY_EXECUTED,
    FIRST_CREATE_FAILED,
    UNDER_REVIEW,
    UPDATABLE,
    UPDATE_ROLLING_BACK,
    busy,
    is_deployed,
    runs_no_image,
    stuck,
)
from scripts.deploy.text import output_values, parameter_values
from scripts.deploy.waiting import stated_whole_number
from templates.errors import RefusedFile, Terminated, printable, untrusted_json
from templates.inputs import HTTP_PATH, INPUTS, KEEP_RUNNING_COUNT, TRAFFIC_SHIFTING
from templates.params import SANDBOX_CANNOT_REHEARSE, SANDBOX_ENV

MOVING_TAG = "latest"  # the tag docker push gives an image when it names none: each push moves it


def made_oidc_provider(env, found) -> str | None:
    """The ARN of the GitHub OIDC provider a ci stack made (given no ExistingOidcProviderArn: templates/ci.py's
    CreateOidcProvider), which its deletion deletes: it has no DeletionPolicy ("If a resource has no DeletionPolicy
    attribute, AWS CloudFormation deletes the resource by default":
    https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-attribute-deletionpolicy.html); its ARN names
    the provider's URL, of which an account holds one (CreateOpenIDConnectProvider: EntityAlreadyExists,
    https://docs.aws.amazon.com/IAM/latest/APIReference/API_CreateOpenIDConnectProvider.html). None for another stack."""
    if not found or found["StackName"] != templates.stack_name(env, "ci"):
        return None
    made = parameter_values(found).get("ExistingOidcProviderArn") == ""
    return output_values(found).get("OidcProviderArn") if made else None


def not_enabled_note(env, layer, params_path) -> str:
    """make status's word on the stack of a layer the environment does not enable: how it goes."""
    destroy = f"make destroy STACK={layer} ENV={env} removes it"
    if env == SANDBOX_ENV and layer in SANDBOX_CANNOT_REHEARSE:  # deployed there before the sandbox refused it
        return (
            f"(the sandbox does not rehearse this layer: {destroy}; one made from the layer's template cannot go that way "
            f"({SANDBOX_CANNOT_REHEARSE[layer]}): make sandbox-stop && make sandbox starts the sandbox empty)"
        )
    return f"(not in enabled_layers of {templates.relative(params_path)}: {destroy})"


# The outputs make verify reads (templates.READ_BY_TOOLS), by stack: those it cannot go without, and
# those a stack has only with some values (the test listener, the alternate target group) or that
# it checks only when present (the task definition the service should run).
VERIFY_OPTIONAL = ("TestListenerPort", "AlternateTargetGroupArn", "TaskDefinitionArn")
VERIFY_NEEDS = {
    layer: [
        output
        for (stack, output), readers in templates.READ_BY_TOOLS.items()
        if stack == layer and "make verify" in readers and output not in VERIFY_OPTIONAL
    ]
    for layer in ("alb", "service")
}


# An ECR registry's host: <account>.dkr.ecr[-fips].<region>.amazonaws.com[.cn].
ECR_HOST = re.compile(r"(?P<account>[0-9]{12})\.dkr\.ecr(-fips)?\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(\.cn)?")


def verify_endpoint(connect_to, ca_bundle, loopback_only: bool) -> verify.Endpoint:
    """make verify's CONNECT_TO= and CA_BUNDLE=, checked with the command's other values (validate), before any call."""
    try:
        addresses = verify.parse_connect_to(connect_to, loopback_only=loopback_only)
    except ValueError as error:
        raise Failure(f"error: {error}", 2) from None
    try:
        return verify.Endpoint(addresses, ca_bundle=ca_bundle)
    except RefusedFile as refused:  # a FIFO, a device, no certificate: its own allowed text
        raise Failure(f"error: CA_BUNDLE={ca_bundle} (--ca-bundle): {refused}", 2) from None
    except OSError as error:  # missing, no permission
        reason = error.strerror or str(error)
        raise Failure(f"error: CA_BUNDLE={ca_bundle} (--ca-bundle): {reason}; allowed: a PEM file of CA certificates", 2) from None


class Commands:
    """Each method runs its command with the Deployer on the layers validate() chose (Layers, or
    layer names for the commands that need no template) and returns the exit status."""

    def __init__(self, deployer, args, layers, environment):
        self.deployer, self.args, self.layers, self.environment = deployer, args, layers, environment
        self.env = args.env
        # What the command, once it has finished, says if a stop ends the run as it frees its lock (main): a rerun to go
        # on would not be a no-op (make rollback's would roll back a second time)
        self.done = None

    @contextlib.contextmanager
    def summed_up_if_stopped(self, layer, then=lambda: ()):
        """A Ctrl-C or a failure after the layer's stack operation ended, in what follows it: the summary a run of
        every layer says, that the operation was done, and the lines then() gives then."""
        deployer, started = self.deployer, self.deployer.clock()
        try:
            yield
        except BaseException:
            if layer.name in deployer.outcomes:
                deployer.say(*text.summary([layer.name], deployer.outcomes, deployer.clock() - started, layer.name), *then())
            raise

    def deploy(self) -> int:
        deployer, args = self.deployer, self.args
        if args.stack:
            with self.summed_up_if_stopped(self.layers[0]):
                deployer.deploy(self.layers[0], args.image_tag, args.allow_replace, args.recreate)
            self.say_nothing_recreated()
            return 0
        deployer.say(f"order: {' -> '.join(layer.name for layer in self.layers)}")
        deployer.run_layers = self.layers
        started, stopped, ahead = deployer.clock(), None, False
        try:
            for number, layer in enumerate(self.layers):
                stopped = layer.name  # until its deploy returns
                if number:  # read by a look the run's first layer made ahead: minutes may have passed
                    deployer.read_again_if_not_ours_yet(layer.stack)
                deployer.deploy(layer, args.image_tag, args.allow_replace, args.recreate)
            stopped = None
            self.say_deployed_but_not_enabled()
            self.say_nothing_recreated()
        except RefusedAhead:
            ahead = True
            raise
        except ExecutionUnknown as unknown:  # its make execute runs that one change set: the layers after it too
            rest = [later.name for later in self.layers[number + 1 :]]
            if not rest:
                raise
            going_on = GOING_ON_AFTER_CTRL_C["deploy"].removeprefix("to go on: ")
            raise ExecutionUnknown(f"{unknown}\n  then, for {', '.join(rest)}: {going_on}", unknown.code) from None
        finally:  # also when a layer fails or is declined: say what was deployed and what was not
            names = [layer.name for layer in self.layers]
            deployer.say(*text.summary(names, deployer.outcomes, deployer.clock() - started, stopped, ahead))
        return 0

    def say_deployed_but_not_enabled(self, compared=None):
        """A layer taken out of enabled_layers keeps its stack (a run of every layer leaves it alone):
        said, with how it goes, as make status says it, and (make diff: compared) the outputs it reads that
        the run's deploys change, whose old values it keeps. One DescribeStacks per optional layer not enabled."""
        changes = {upstream: each.outputs_changed for upstream, each in (compared or {}).items()}
        for name in (name for name in templates.OPTIONAL_LAYERS if name not in self.environment.layers):
            stack = templates.stack_name(self.env, name)
            try:
                found = self.deployer.describe(stack, refuse_foreign=False)
            except AWS_ERRORS as error:  # only a note: the run is done
                self.deployer.say(f"  note: whether {stack} is still deployed could not be read ({error_code(error)})")
                continue
            if is_deployed(found) and not self.deployer.foreign(found):
                self.deployer.say(f"note: {stack} is deployed and left as it is {not_enabled_note(self.env, name, self.environment.path)}")
                kept = sorted(
                    output
                    for parameter, (upstream, output) in templates.wired_into(name).items()
                    if parameter in parameter_values(found) and output in changes.get(upstream, ())
                )
                if kept:
                    self.deployer.say(f"  it reads {', '.join(kept)}, which the deploy changes, and keeps the old values")

    def say_nothing_recreated(self):
        """RECREATE=1 given where no stack of the run was a failed first create: said, not passed over in silence."""
        if self.args.recreate and not self.deployer.recreated:
            what = f"{self.layers[0].stack} was not" if len(self.layers) == 1 else "no stack of the run was"
            self.deployer.say(f"note: RECREATE=1 recreated nothing: {what} a failed first create (ROLLBACK_COMPLETE)")

    def changeset(self) -> int:
        self.deployer.deploy(self.layers[0], self.args.image_tag, recreate=self.args.recreate, leave=True)
        self.say_nothing_recreated()
        return 0

    def execute(self) -> int:
        """Execute the change set `make changeset` left, if it is still the one to execute."""
        deployer, layer, name = self.deployer, self.layers[0], self.args.changeset
        change_set = self.change_set_to_execute(layer, name)
        self.refuse_a_change_set_not_ours(layer, change_set, name)

        def again() -> str:  # the command that makes it anew: a release's carries its image (a deploy keeps the running one)
            found = deployer.describe(layer.stack) if layer.name == "service" else None
            running = None if runs_no_image(found) else parameter_values(found).get("ImageTag")
            return text.remake_command(layer, change_set, running)

        execution = change_set.get("ExecutionStatus")
        if execution in ALREADY_EXECUTED:  # e.g. a run stopped while asking to execute it: it had started
            unrecorded = self.unrecorded_release(layer, change_set) if execution == "EXECUTE_COMPLETE" else ""
            # EXECUTE_FAILED: the update rolled back, a stack a run protects too (ExecutionStatus:
            # https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_DescribeChangeSet.html)
            if execution in ("EXECUTE_COMPLETE", "EXECUTE_FAILED"):
                self.finish_what_its_run_left(layer)
            raise Failure(
                f"error: change set {name} {ALREADY_EXECUTED[execution]}: nothing to execute; where {layer.stack} stands: "
                f"make status ENV={self.env} STACK={layer.name}{unrecorded}"
            )
        if change_set["Status"] != "CREATE_COMPLETE" or execution != "AVAILABLE":
            # "If the change set execution status is AVAILABLE, you can execute the change set"; OBSOLETE: "the stack was
            # already updated" since it was made.
            # https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_DescribeChangeSet.html
            anew = f"; the stack was updated since it was made: {again()} makes a new one" if execution == "OBSOLETE" else ""
            raise Failure(
                f"error: change set {name} cannot be executed: {change_set['Status']}/{execution} "
                f"{printable(change_set.get('StatusReason', ''), one_line=True)}".rstrip()
                + anew
            )
        self.refuse_what_the_tools_change_sets_never_ask(layer, change_set, name)
        exists = deployer.has_stack(layer.stack)
        deployer.policies.put_back_if_marked(layer)
        updated = exists and deployer.describe(layer.stack).get("LastUpdatedTime")
        if updated and change_set.get("CreationTime") and change_set["CreationTime"] < updated:
            # It was computed against the stack as it was then: executing it would put back the
            # values of then over everything deployed since.
            raise Failure(
                f"error: change set {name} was created at {change_set['CreationTime']:%Y-%m-%d %H:%M:%S %Z}, before {layer.stack}'s "
                f"last update at {updated:%Y-%m-%d %H:%M:%S %Z}; it would undo that update. Make a new one: {again()}"
            )
        # A rollback's change set (its run stopped at the question) was made from the template the stack
        # runs, as make rollback makes them (Deployer.as_deployed); any other from output/'s.
        a_rollback = exists and text.rolled_back_from(change_set.get("Description"), layer)
        if a_rollback:
            layer = deployer.as_deployed(layer)
        # Made from another template (an earlier checkout's, or one made by hand under the name since it
        # was reviewed): executing it would deploy that one.
        if compact(deployer.deployed_template(layer.stack, change_set.get("ChangeSetId", name))) != compact(json.loads(layer.template)):
            raise Failure(
                f"error: change set {name} was made from another template than {layer.source} holds now (an earlier checkout's, "
                f"or one made by hand since): nothing executed. Make one from output/: make changeset STACK={layer.name} ENV={self.env}; "
                f"or check out the commit it was made from{made_at(revision_named_in(name, layer.stack))}, make templates, and execute it",
                2,
            )
        deployer.say(
            *text.change_set_table(change_set, deployer.describe(layer.stack) if exists else None, deployer.colour, layer.conditions)
        )
        deployer.say_waiting_change_sets(layer, change_set)
        stale = False  # what output/ (or the layers it reads) gives otherwise now, but the image: a TAG= is chosen, not stale
        if not a_rollback:  # a rollback's values are the stack's own but its image: output/'s are not its to compare with
            # and those read from other layers' outputs (the change set table shows no parameter), where they can be read.
            # An upstream layer destroyed since is refused, as a deploy refuses it: the change set would make the layer on
            # what no longer exists (alarms of a destroyed service, a web ACL on a deleted load balancer); one in no settled
            # state leaves the change set to run as it was made.
            try:
                wired = deployer.wired_parameters(layer)
            except UpstreamsNotDeployed as refused:  # deployed again, they give new values: this change set holds the old ones
                anew = again()
                raise Failure(
                    f"{refused}\nchange set {name} not executed: it holds what the destroyed layers gave; once they are deployed, {anew} makes one",
                    refused.code,
                ) from None
            except Failure:
                wired = {}
            deployer.say(*text.values_since_the_change_set(change_set, layer, exists, wired, again()))
            stale = bool(text.values_since_the_change_set(change_set, layer, True, wired, ""))  # True: ImageTag left out
        self.take_as_a_rollback_if_it_is_one(layer, change_set, exists, name)
        deployer.take_triggers_of(layer, change_set)
        with self.summed_up_if_stopped(layer):
            try:
                deployer.execute(layer, change_set, exists, self.args.allow_replace, reviewed=True)
            except Failure as refused:
                # Refused before it ran, as made with the values of then: the way on the refusal names is for those
                # values (a stale alb change set that removes the rules a service switched back to CANARY uses since).
                if not (stale and type(refused) is Refused):
                    raise
                raise Failure(
                    f"{refused}\nchange set {name} was made with other values than today's (above): {again()} makes one with them"
                ) from None
        return 0

    def change_set_to_execute(self, layer, name) -> dict:
        """The change set make execute names, once it is ready; where there is none, why and the way on (Failure)."""
        deployer = self.deployer
        try:
            return deployer.wait_for_change_set(layer, name)
        except ClientError as error:
            if not_found(error) and deployer.describe(layer.stack) is None:
                raise Failure(
                    f"error: {layer.stack} is not deployed, and so has no change set {name}: "
                    f"make changeset STACK={layer.name} ENV={self.env} makes one (a first create's too)",
                    2,
                ) from None
            if not_found(error):
                named_for = layer_named_in(name, self.env) or layer.name
                if named_for != layer.name:
                    raise Failure(
                        f"error: no change set {name} on stack {layer.stack}: its name is one of "
                        f"{templates.stack_name(self.env, named_for)}'s: {text.execute_command(named_for, self.env, name)}",
                        2,
                    ) from None
                found = deployer.describe(layer.stack)
                status = found["StackStatus"]
                # no change set starts from it (a failed first create, say), or not until what runs on it ends; one under
                # review, the empty stack of a CREATE change set, takes a new one (below)
                if status not in UPDATABLE and status != UNDER_REVIEW:
                    # a failed first create, rolled back or rolling back: created again with RECREATE=1 (ROLLBACK_FAILED has
                    # a way of its own: deploy's RECREATE=1 deletes a ROLLBACK_COMPLETE stack alone)
                    if status in ("ROLLBACK_IN_PROGRESS", "ROLLBACK_COMPLETE"):
                        wait = "wait for its rollback to end, then " if busy(status) else ""
                        way = wait + deployer.way_out(layer.name, "ROLLBACK_COMPLETE")
                    else:
                        then = f", then make changeset STACK={layer.name} ENV={self.env} makes a new one" if busy(status) else ""
                        way = deployer.way_out(layer.name, status) + then
                    raise Failure(f"error: no change set {name} on stack {layer.stack}, which is {status}: {way}", 2) from None
                # its values went with it: whether it released an image, and which, is not known; what runs since is
                running = None if layer.name != "service" or runs_no_image(found) else parameter_values(found).get("ImageTag")
                tag = (
                    f" (it keeps the image that runs now, {printable(running, one_line=True)}; TAG= releases another in its place)"
                    if running
                    else ""
                )
                why = (  # the empty stack of a CREATE change set, which was deleted (a stopped run's, or by hand)
                    "the create's change set was deleted since"
                    if status == UNDER_REVIEW
                    else "a deploy or execute of the stack since it was made ends its other change sets"
                )
                raise Failure(
                    f"error: no change set {name} on stack {layer.stack} ({why}: make changeset STACK={layer.name} ENV={self.env} "
                    f"makes a new one{tag}); make status ENV={self.env} names those that could still run",
                    2,
                ) from None
            raise

    def refuse_a_change_set_not_ours(self, layer, change_set, name) -> None:
        """A change set make execute does not run as this tool's: of another stack, or without the tool's tags."""
        deployer = self.deployer
        if change_set["StackName"] != layer.stack:
            raise Failure(f"error: change set {name} belongs to {change_set['StackName']}, not {layer.stack}", 2)
        # A change set's Tags are "key-value pairs to associate with this stack": without ours, executed, the stack
        # would read as someone else's. https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_CreateChangeSet.html
        tags, own = deployer.stack_tags(change_set), deployer.own_tags(change_set)
        if tags and not own.items() <= tags.items():
            raise Failure(
                f"error: change set {name} lacks the tags every stack of this tool carries ({text.tag_list(own)}): "
                f"made by hand, it would take {layer.stack} away from the tool, which would then refuse to deploy or destroy it; "
                f"make one: make changeset STACK={layer.name} ENV={self.env}",
                2,
            )

    def refuse_what_the_tools_change_sets_never_ask(self, layer, change_set, name) -> None:
        """A change set made by hand under the name, asking for what the tool's change sets never do: not run."""
        deployer = self.deployer
        # What the tool's own change sets never ask for (Deployer.request_change_set), and one made by hand under the name
        # could: NotificationARNs, "SNS topics that CloudFormation associates with the stack" (its events sent there), and
        # ImportExistingResources, which "auto-imports resources that already exist": someone else's, under the names the
        # template gives, which a destroy or purge would then delete.
        # https://docs.aws.amazon.com/sdk-for-kotlin/api/latest/cloudformation/aws.sdk.kotlin.services.cloudformation.model/-create-change-set-request
        # The empty stack a CREATE change set makes under review has no topics of its own: any it shows are the change set's
        # (moto's does show them; AWS documents nothing of it), so they count as added.
        found = deployer.describe(layer.stack)
        stack_topics = set(found.get("NotificationARNs", [])) if is_deployed(found) else set()
        added = [arn for arn in change_set.get("NotificationARNs", []) if arn not in stack_topics]
        asked = (
            [f"notification topics the stack has not ({', '.join(printable(arn, one_line=True) for arn in added)})"] if added else []
        ) + (["ImportExistingResources (taking in resources it did not make)"] if change_set.get("ImportExistingResources") else [])
        if asked:
            raise Failure(
                f"error: change set {name} asks for {' and '.join(asked)}, which this tool's change sets never do: made by hand, "
                f"it is not executed; make one: make changeset STACK={layer.name} ENV={self.env}",
                2,
            )

    def take_as_a_rollback_if_it_is_one(self, layer, change_set, exists, name) -> None:
        """A change set whose description says it is a rollback from an image: recorded as one while that image runs and it
        deploys another, else said to be recorded as a release."""
        deployer = self.deployer
        # A rollback's change set (one its run left when it stopped at the question) is recorded as
        # the rollback it is: as a new release, the next rollback would go back to the image it left.
        # Only while that image runs and the change set deploys another: one made when another image
        # ran is stale. (A rollback with TAG= goes to any image, one the history lacks too.)
        left = text.rolled_back_from(change_set.get("Description"), layer)
        running = parameter_values(deployer.describe(layer.stack)).get("ImageTag") if exists else None
        back_to = parameter_values(change_set).get("ImageTag")
        if left and left == running != back_to:
            deployer.rolling_back_from = left
            deployer.say(f"{layer.stack}: change set {name} is a rollback from {left} (its description says so): recorded as one")
        elif left:
            why = f"it deploys {left} itself" if left == running else f"{printable(running, one_line=True) if running else 'no image'} runs"
            deployer.say(f"note: change set {name} says it is a rollback from {left}, but {why}: recorded as a release")

    def finish_what_its_run_left(self, layer) -> None:
        """For a change set that ran: what the run that executed it does after the operation, where it stopped before
        (its stack policy put back, the stack protected), as a deploy of the layer would. Nothing while the stack has
        not settled, nor when it cannot be read."""
        deployer = self.deployer
        try:
            found = deployer.describe(layer.stack)
        except AWS_ERRORS:
            return
        if found and found["StackStatus"] in UPDATABLE:
            deployer.finishing_executed = True  # a Ctrl-C now: the change set ran (going_on_after_ctrl_c)
            deployer.policies.put_back_if_marked(layer)
            deployer.protect_if_off(layer, found)
            if parameter_values(found).get(KEEP_RUNNING_COUNT) == "false":  # a new service's settling update not made
                deployer.say(
                    f"note: {layer.stack} still states its first task count ({KEEP_RUNNING_COUNT}=false), which the update that "
                    f"follows a new service's create sets to auto-scaling: make deploy STACK={layer.name} ENV={self.env} makes it"
                )

    def unrecorded_release(self, layer, change_set) -> str:
        """For a release's change set that ran, and whose image runs, but is not the release history's
        latest (the run that asked to execute it was stopped before it could record it): what that means
        for a rollback from it, which must then name the image. Nothing when that cannot be read."""
        deployer = self.deployer
        image = parameter_values(change_set).get("ImageTag")
        if image is None:  # no release: no call
            return ""
        try:
            found = deployer.describe(layer.stack) or {}
            if image != parameter_values(found).get("ImageTag"):
                return ""
            releases = of_the_stack(deployer.history.releases(), found["CreationTime"])  # not an earlier stack's, as rollback reads them
        except AWS_ERRORS:
            return ""
        if releases and releases[-1]["image_tag"] == image:
            return ""
        # What ran before: the change set's description names it (it ran on the stack it was made from);
        # one made before descriptions said so goes by the history's last release, wrong when two in a row went unrecorded.
        replaced = text.replaced_by_release(change_set.get("Description"), layer) or (releases[-1]["image_tag"] if releases else None)
        left = text.rolled_back_from(change_set.get("Description"), layer) or None
        return "\n" + text.release_not_recorded(image, self.env, deployer.history.name, left, replaced)

    def named(self, name) -> bool:
        """Whether a layer not deployed is worth a line: it is enabled, or STACK= names it."""
        return name in self.environment.layers or self.args.stack == name

    def status(self) -> int:
        deployer, env = self.deployer, self.env
        stacks = {name: deployer.describe(templates.stack_name(env, name)) for name in self.layers}
        # The header once the stacks are read: not above an error a read meets (no credentials, no endpoint, a refusal)
        deployer.say(f"{'STACK':<36} {'STATUS':<28} LAST CHANGE")
        # For a note: a stack policy a stopped --allow-replace run left relaxed. Read once CloudFormation
        # answered: an endpoint out of reach fails on the first call alone, and SSM alone out of reach
        # (its own endpoint or proxy rule) is a note, not a status that shows nothing.
        deployer.relaxed_marks.read(no_answer_is_a_note=True)
        try:  # a lock a dead run left refuses the next deploy: seen here first
            holder = deployer.lock.holder()
        except AWS_ERRORS as error:
            holder = None
            deployer.say(f"  note: the lock ({deployer.lock.name}) could not be read ({error_code(error)})")
        for name, found in stacks.items():
            stack = templates.stack_name(env, name)
            enabled = name in self.environment.layers
            if found is None:
                if self.named(name):
                    deployer.say(f"{stack:<36} not deployed")
                continue
            when = found.get("LastUpdatedTime") or found.get("CreationTime")
            foreign = deployer.foreign(found)
            review = found["StackStatus"] == "REVIEW_IN_PROGRESS" and not foreign
            waiting = "" if foreign else deployer.change_sets_for_review(stack, "its line below shows none", being_made=True)
            # what to run is said only for an enabled layer: every command but status, destroy and purge refuses another
            create = f"; make deploy STACK={name} ENV={env} creates it" if enabled else ""
            if review and waiting == "":  # its change sets discarded, or failed: an empty stack, which nothing will run
                note = (
                    f"  (not deployed: an empty stack a first create's change set made, with none left that could run{create}, "
                    f"make destroy STACK={name} ENV={env} removes it)"
                )
            elif review:
                note = (
                    f"  (not deployed: its first create waits in a change set left for review (make changeset), or a run stopped "
                    f"before executing it{create})"
                )
            else:
                note = ""
            running = None if foreign or runs_no_image(found) else parameter_values(found).get("ImageTag")
            if running:  # the service's release: what make rollback steps back from
                note = f"  image {printable(running, one_line=True)}" + note
            if foreign:
                note += "  (not made by this tool: it lacks the tags its stacks carry; " + (
                    "deploy and destroy refuse to run while it is there)"
                    if enabled
                    else f"a deploy or destroy of STACK={name} is refused while it is there, and one of every layer leaves it alone)"
                )
            elif not enabled:
                note += "  " + not_enabled_note(env, name, self.environment.path)
            elif stuck(found):
                # settled where no change set starts (a failed first create, a half deletion): the way on the deploy it
                # refuses says, said where it is seen first
                note += f"  ({deployer.way_out(name, found['StackStatus'])})"
            if name in deployer.relaxed_marks:
                back = ": the next deploy of the layer puts it back" if enabled else ""
                note += f"  (its stack policy is still relaxed by a stopped --allow-replace run{back})"
            # A run stopped before it set it, or a change by hand; not a create under way, nor a stack a deploy refuses (ROLLBACK_COMPLETE)
            if enabled and not foreign and found["StackStatus"] in UPDATABLE and not found.get("EnableTerminationProtection"):
                note += f"  (termination protection off: make deploy STACK={name} ENV={env} turns it back on)"
            under = []  # the commands the row's notes name, each on a line of its own under it: run together, a row ran to 600 characters
            if waiting:  # make changeset's, or a stopped run's: ExecutionStatus AVAILABLE (API_ChangeSetSummary.html)
                note += f"  (change sets that could still run: {waiting})"
                under += [f"  run one:     make execute STACK={name} CHANGESET=<name> ENV={env}"] if enabled else []
                # one left by a stopped run, or a review no one will execute: CloudFormation ends them only when another runs
                under += [f"  discard one: {deployer.cli} cloudformation delete-change-set --stack-name {stack} --change-set-name <name>"]
            deployer.say(f"{stack:<36} {found['StackStatus']:<28} {when:%Y-%m-%d %H:%M:%S %Z}{note}", *under)
        if holder:
            deployer.say(
                f"locked: {holder}; {', '.join(LOCKING_COMMANDS)} are refused until that run ends; if it died, make unlock ENV={env} frees the lock"
            )
        return 0

    def outputs(self) -> int:
        deployer = self.deployer
        for name in self.layers:
            stack = templates.stack_name(self.env, name)
            if not deployer.has_stack(stack) and not self.named(name):
                continue
            deployer.say(f"{stack}:" if deployer.has_stack(stack) else f"{stack}: not deployed")
            if deployer.has_stack(stack) and deployer.foreign(deployer.describe(stack)):  # shown, but not as the layer's
                deployer.say(f"  note: {text.not_ours(stack, deployer.own_tags(deployer.describe(stack)))}")
            deployer.say(*text.outputs(deployer.describe(stack) or {}))
        return 0

    def events(self, count=25) -> int:
        deployer, stack = self.deployer, templates.stack_name(self.env, self.layers[0])
        found = deployer.describe(stack)
        if found is None:
            # After a destroy, its events (what it deleted, what it kept: DELETE_SKIPPED) are what one looks for.
            # "Deleted stacks: You must specify the unique stack ID", which ListStacks gives (purge.deleted_stacks):
            # https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_DescribeStackEvents.html
            deleted, _ = purge.deleted_last(deployer, stack)
            if deleted is None:
                deployer.say(f"{stack}: not deployed")
                return 0
            found = deployer.cf.describe_stacks(StackName=deleted["StackId"])["Stacks"][0]  # its tags: ours?
            when = deleted.get("DeletionTime")
            deployer.say(f"{stack}: not deployed; the one deleted last" + (f", at {when:%Y-%m-%d %H:%M:%S} UTC" if when else "") + ":")
        events = [
            text.readable_event(e) for e in deployer.cf.describe_stack_events(StackName=found["StackId"]).get("StackEvents", [])[:count]
        ]
        deployer.say(*text.recent_events(stack, events))
        if deployer.foreign(found):  # shown, but not as the layer's
            deployer.say(f"note: {text.not_ours(stack, deployer.own_tags(found))}")
        return 0

    def diff(self) -> int:
        compared = {}
        for layer in self.layers:
            changing, ahead = diff.outputs_read_changing(layer, compared), diff.read_after_removals(layer, compared)
            each = diff.compare(self.deployer, layer, self.args.image_tag, reads_changing=bool(changing), wired_ahead=ahead)
            compared[layer.name] = diff.reads_changed_outputs(self.deployer, layer, changing, each)
        looks_refused = self.say_looks_refused_ahead(compared)
        refused_ahead = self.say_creates_refused_ahead()

        def held_back(why):
            return [name for name, each in compared.items() if each.held_back == why]

        deployable = [name for name, each in compared.items() if each.differs and each.held_back is None]
        refused = held_back(diff.REFUSED)
        # those the deploy then needs ALLOW_REPLACE=1 for, refused ones too: once they can be deployed, the command must carry it
        replacing = [name for name, each in compared.items() if each.replaces and (name in deployable or name in refused)]
        # an outcome, not a failure: make's "Error 1" after it only carries the exit code
        if deployable:
            # the command as given (a copied one must not go to another environment or every layer); a deploy
            # without TAG= keeps the running image: the one compared needs TAG= too
            stack = f" STACK={self.args.stack}" if self.args.stack else ""
            # (the service among those it waits for too: the command is for once they can be deployed)
            tag = f" TAG={self.args.image_tag}" if self.args.image_tag and "service" in compared and compared["service"].differs else ""
            # a deploy of every layer stops at the first layer it refuses, or that is not ours or in no settled state
            # (a failed first create, which needs RECREATE=1: said above of it), having applied those before it
            stuck = [name for name, each in compared.items() if each.held_back in (diff.REFUSED, diff.NOT_OURS, diff.NOT_COMPARED)]
            first = (
                ["what the note above names is fixed"] * bool(looks_refused)
                + ["what the note above names is freed"] * refused_ahead
                # "(as said above)": the way there is there (the service deployed first, RECREATE=1), not in this line
                + [f"{text.in_words(stuck)} can be deployed (as said above)"] * bool(stuck)
            )
            once = f", once {' and '.join(first)}" if first else ""
            # Which layers a run before then applies depends on where the deploy meets the refusal (at the run's first
            # layer for a log-group name its replacements need, with ALLOW_REPLACE=1; at a create for a retained one;
            # at the layer otherwise): said as the most it may apply.
            once += "; run before then, it applies at most the layers before the first one refused above, and stops" * bool(
                first and not self.args.stack
            )
            allow = " ALLOW_REPLACE=1" * bool(replacing)
            replaces = (
                f"; {', '.join(replacing)} replacing or removing what {'its note above names' if len(replacing) == 1 else 'their notes above name'}"
                * bool(replacing)
            )
            self.deployer.say(
                f"differs from what {self.env} runs: {', '.join(deployable)} (make deploy{stack} ENV={self.env}{tag}{allow} applies it{once}{replaces})"
            )
        if held_back(diff.POLICY_ONLY):
            self.deployer.say(f"only the stack policy differs: {', '.join(held_back(diff.POLICY_ONLY))} (set it as said above)")
        if held_back(diff.NOT_COMPARED):
            self.deployer.say(f"not compared, in no settled state: {', '.join(held_back(diff.NOT_COMPARED))} (see above)")
        if refused:
            notes = "the note above" if len(refused) == 1 else "their notes above"
            later = [name for name in refused if name in replacing]  # what their way on then needs
            then = f"; {', '.join(later)} then {'needs' if len(later) == 1 else 'need'} ALLOW_REPLACE=1 too" if later else ""
            self.deployer.say(f"a deploy would be refused: {', '.join(refused)} (see {notes}){then}")
        if not self.args.stack:  # a layer taken out of enabled_layers still runs: no deploy changes it
            self.say_deployed_but_not_enabled(compared)
        return 1 if any(each.differs for each in compared.values()) else 0

    def say_looks_refused_ahead(self, compared) -> bool:
        """make diff said "make deploy applies it", and make deploy then refused before its first change set:
        the looks each layer's deploy takes first (Deployer.deploy: the layers it reads, the image TAG=
        names, the stack ours, the database secret's account and key, the subnets and backend security
        group, the cluster, the stack settled, the domain's zone and delegation), taken here as there, in its order,
        until the first refusal, where the deploy stops: said as a note. Whether one refused. At a stack
        not ours or in no settled state the deploy stops with what make diff said of it above: no note."""
        deployer = self.deployer
        deployer.run_layers = self.layers
        in_run = {layer.name for layer in self.layers}

        def reads(deployer, layer):  # upstreams this run creates before the layer are no refusal; others are read as the deploy reads them
            missing = set(deployer.undeployed_upstreams(deployer.wired(layer)))
            if not missing or not missing <= in_run:
                deployer.wired_parameters(layer)

        changing = {name for name, each in compared.items() if each.differs}  # the run's layers (compared holds those alone)

        def rules(deployer, layer):  # the template's Rules, which CloudFormation checks at CreateChangeSet
            wired = deployer.wired(layer)
            if deployer.undeployed_upstreams(wired):
                return  # what it reads is made in this run, first
            # an upstream this run deploys before the layer gives its new outputs then: not known now
            known = {name: value for name, value in deployer.wired_parameters(layer).items() if wired[name][0] not in changing}
            guards.refuse_failing_rules(deployer, layer, dict(layer.parameters) | known)

        try:
            guards.refuse_an_empty_zone(deployer.params_file, self.env, self.layers)  # before the deploy's first call
            for layer in self.layers:
                exists = deployer.has_stack(layer.stack)
                for what, look, *args in (
                    ("what the layer reads", reads),
                    ("the image in ECR", guards.refuse_a_missing_image, self.args.image_tag),
                    (None, diff.NOT_OURS),  # where the deploy stops at such a stack
                    ("the database secret's account", guards.refuse_a_secret_of_another_account),
                    ("the database secret's key", guards.refuse_a_secret_the_tasks_cannot_read),
                    ("the subnets", guards.refuse_subnets_the_layers_cannot_use),
                    ("the cluster", guards.refuse_a_cluster_the_service_cannot_use),
                    (None, diff.NOT_COMPARED),
                    ("the domain's zone", guards.refuse_undelegated_domain, exists),
                    ("the template's rules", rules),
                ):
                    if what is None:
                        if compared[layer.name].held_back == look:
                            return False
                        continue
                    try:
                        look(deployer, layer, *args)
                    except AWS_ERRORS as error:  # only a note, as the deploy's own looks say where they cannot read
                        deployer.say(f"note: {what} could not be looked at ({error_code(error)}); make deploy looks again")
                    except UNREADABLE as error:
                        deployer.say(
                            f"note: {what} could not be looked at (an answer without what it reads: {error!r}); make deploy looks again"
                        )
        except Failure as refused:
            deployer.say("note: make deploy would be refused: " + str(refused).removeprefix("error: "))
            return True
        return False

    def say_creates_refused_ahead(self) -> bool:
        """make diff of a layer not deployed said "deploying creates everything", and make deploy then
        refused: a name its create needs is held (what a destroyed stack retained, a log group in no
        stack). The deploy's own look (guards.refuse_blocked_creates), said as a note; its calls only
        where a layer is not deployed. Whether it would be refused."""
        deployer = self.deployer
        creates = [layer for layer in self.layers if not deployer.has_stack(layer.stack)]
        if not creates:
            return False
        deployer.run_layers = self.layers
        try:
            guards.refuse_blocked_creates(deployer, creates[0], then="make deploy looks again before its first create", even_one=True)
        except Failure as refused:  # RefusedAhead, or a Failure where the first create is the one refused
            deployer.say("note: make deploy would be refused: " + str(refused).removeprefix("error: refused before creating anything: "))
            return True
        return False

    def drift(self) -> int:
        """CloudFormation's drift detection on each layer: 0 in sync, 1 drifted, 2 some layer not fully
        checked (an error there, a stack busy, a detection failed or not finished in time)."""
        drifted, unchecked, moved, deployed, deleted, names, errors, theirs = [], [], [], [], {}, [], [], []
        # Every layer's: a layer taken out of enabled_layers whose stack is still there runs on as it is (make status names it)
        enabled = ((name, None) for name in self.layers)
        for name, unread in itertools.chain(enabled, () if self.args.stack else self.deployed_elsewhere()):
            names.append(name)
            stack = templates.stack_name(self.env, name)
            try:
                if unread:
                    raise unread
                checked = drift.check(self.deployer, stack, name)
            except ClientError as error:  # one layer's error leaves the others to be checked
                self.deployer.say(f"{stack}: not checked: {explain(error, self.env).removeprefix('error: ')}")
                checked, errors = drift.Checked(complete=False), errors + [name]
            drifted += [name] if checked.modified else []
            deleted |= {name: checked.deleted} if checked.deleted else {}
            unchecked += [] if checked.complete else [name]
            moved += [name] if checked.moved else []
            deployed += [name] if checked.deployed else []
            theirs += [] if checked.ours else [name]
        self.deployer.say(
            *text.drift_summary(
                drifted,
                unchecked,
                self.env,
                moved,
                deployed,
                names,
                self.deployer.on_aws,
                self.deployer.params_file,
                deleted,
                theirs,
                self.deployer.destroy_and_deploy_again(*deleted) if deleted else None,
            )
        )
        # one not enabled (and read: an error may have come before its stack was found): no deploy changes it
        for name in [name for name in deployed if name not in self.environment.layers and name not in errors]:
            self.deployer.say(
                f"note: {templates.stack_name(self.env, name)} {not_enabled_note(self.env, name, self.environment.path)}; a deploy "
                "changes it only once it is in enabled_layers again"
            )
        return 2 if unchecked else 1 if drifted or deleted else 0

    def deployed_elsewhere(self):
        """(layer, None) for each layer not in enabled_layers that has a stack of ours holding resources, in deploy order,
        each looked for (one DescribeStacks) once the one before it is checked; (layer, the error) for one whose stack
        could not be read. One holding nothing (a failed first create, one under review) or someone else's is passed
        over: it has nothing of ours to drift, and the deploy its advice names is refused for a layer not enabled."""
        for name in (name for name in templates.layer_order() if name not in self.layers):
            try:
                found = self.deployer.describe(templates.stack_name(self.env, name), refuse_foreign=False)
            except ClientError as error:
                yield name, error
                continue
            if is_deployed(found) and found["StackStatus"] != "ROLLBACK_COMPLETE" and not self.deployer.foreign(found):
                yield name, None

    def destroy(self) -> int:
        deployer, env, names = self.deployer, self.env, list(reversed(self.layers))
        in_use = deployer.consumers(self.args.stack) if self.args.stack else []
        if in_use:
            raise Failure(
                f"error: refusing to destroy {templates.stack_name(env, self.args.stack)}: {', '.join(in_use)} still {'uses' if len(in_use) == 1 else 'use'} its outputs; destroy {'that' if len(in_use) == 1 else 'those'} first: "
                f"make destroy ENV={env} STACK=<layer> for {', '.join(templates.destroy_order(self.args.stack)[:-1])}, in that order (one not deployed "
                f"says so), then STACK={self.args.stack}"
            )
        existing = [
            templates.stack_name(env, name)
            for name in names
            if not deployer.left_alone(name, self.named(name)) and deployer.describe(templates.stack_name(env, name))
        ]
        for name in names:  # a relaxed-policy mark its stack outlived (destroyed by hand, or a destroy stopped after DeleteStack)
            if templates.stack_name(env, name) not in existing:
                deployer.relaxed_marks.clear(name)
        if not existing:  # one layer's destroy names it: other layers may be deployed
            deployer.say(
                f"{templates.stack_name(env, self.args.stack)} is not deployed: nothing to destroy"
                if self.args.stack
                else f"nothing deployed in {env}"
            )
            return 0
        protected = purge.deletion_protected(deployer, existing)  # refused before anything is deleted, not half way
        if protected:
            stack, protection = next(iter(protected.items()))
            way = purge.protection_off(deployer, "alb", protection)
            ends = "its deletion would fail again" if protection.stuck == "DELETE_FAILED" else "the stack would end DELETE_FAILED"
            raise Failure(
                f"error: refusing to destroy {stack}: its load balancer {protection.said}, which CloudFormation cannot delete: {ends}. "
                f"If it is really to go, {way}, then destroy again; nothing destroyed"
            )
        for stack in existing:  # said before asking, so that the answer knows what stays and what goes
            if deployer.describe(stack)["StackStatus"] == "REVIEW_IN_PROGRESS":  # an empty stack, perhaps someone's review
                waiting = deployer.change_sets_for_review(stack, "any goes with the stack")
                if waiting:
                    deployer.say(f"{stack}: deleting it deletes the change sets left on it for review or by a stopped run: {waiting}")
            else:  # what is there to leave: not what a failed first create's rollback deleted
                keep, ids = deployer.retained_there(stack)
                kept = ", ".join(f"{logical_id} ({kind})" for logical_id, kind in keep.items() if ids.get(logical_id))
                if kept:
                    status = deployer.describe(stack)["StackStatus"]
                    # read mid-operation: a failed first create's rollback, which the destroy waits for, deletes them too
                    now = f" (as it is now: it is {status}, which may change that first)" if busy(status) else ""
                    deployer.say(f"{stack}: deleting it leaves in the account: {kept}{now}")
            provider = made_oidc_provider(env, deployer.describe(stack))
            if provider:
                deployer.say(
                    f"{stack}: deleting it deletes {provider}, the account's GitHub OIDC provider, which it made (one per account): "
                    "every role of the account that trusts it, another project's CI too, can then no longer be assumed from "
                    "GitHub Actions, until one is made again (a deploy of the ci layer makes one)"
                )
        deployer.confirm(f"destroy {', '.join(existing)}? [y/N] ", "nothing destroyed")
        # A layer outside enabled_layers is destroyed if deployed, and otherwise not mentioned (as in status).
        todo = [name for name in names if self.named(name) or templates.stack_name(env, name) in existing]
        destroyed, stopped = [], None
        try:
            for name in todo:
                deployer.destroy(name)
                deployer.relaxed_marks.clear(name)  # its stack, and so its policy, are gone
                destroyed.append(name)
        except BaseException as error:
            stopped = error
            raise
        finally:  # stopped half way too (a failure, Ctrl-C): what the deleted stacks left is still said, and the next step,
            # but not on a sandbox whose server is gone, with every stack: its one line says what to do
            if not sandbox_gone(stopped, env):
                self.say_how_to_finish(todo, destroyed)
        return 0

    def say_how_to_finish(self, todo, destroyed):
        """What the deleted stacks left (and the layer whose deletion was under way: its stack may be gone, and what
        it retains with it), and, for a destroy of every layer stopped half way, the command that finishes it."""
        deployer, env = self.deployer, self.env
        stopped_in, retains = deployer.deleting or (None, False)
        left = [name for name in todo if name not in destroyed]
        purge.say_purge(deployer, deployer.retained_layers + ([stopped_in] if retains else []), each=bool(self.args.stack) or bool(left))
        if deployer.unprotected:  # stopped between turning it off and the deletion: a stack that stays is unprotected
            name, known = deployer.unprotected
            how = "has its termination protection off, turned off" if known else "may have its termination protection off, asked off"
            deployer.say(
                f"note: {'if it is still there, ' if stopped_in == name else ''}{templates.stack_name(env, name)} {how} by this run "
                f"to delete it: make deploy STACK={name} ENV={env} turns it back on, if it is to stay"
            )
        if left and len(todo) > 1:  # STACK= names one layer: make destroy alone would take every one
            going = stopped_in == left[0]
            deployer.say(
                f"not destroyed yet: {', '.join(left)}"
                + (f" (the run stopped in {left[0]}'s deletion: its stack may be gone or going already)" if going else "")
                + f"; make destroy ENV={env} destroys what is left, in the same order"
            )

    def purge(self) -> int:
        return purge.purge(self.deployer, self.layers)

    def recover(self) -> int:
        """Continue an UPDATE_ROLLBACK_FAILED rollback; run again while it goes on, wait for it. Without STACK=, of the
        one layer whose rollback is stuck (or goes on)."""
        deployer = self.deployer
        stack = templates.stack_name(self.env, self.args.stack or self.layer_to_recover())
        found = deployer.describe(stack)
        status = found["StackStatus"] if found else "not deployed"
        if status in UPDATE_ROLLING_BACK:  # e.g. a recover whose wait stopped, run again
            deployer.say(f"{stack} is {status}: waiting for it to settle")
            found = deployer.wait_for_stack(stack, token=None)
        elif status == "UPDATE_ROLLBACK_FAILED" and self.env == SANDBOX_ENV:
            raise Failure(f"error: {stack} is {status}; {text.SANDBOX_CANNOT_RECOVER}")
        elif status == "UPDATE_ROLLBACK_FAILED":
            deployer.say(f"{stack} is UPDATE_ROLLBACK_FAILED: continuing its rollback puts it back on its previous template and values")
            deployer.confirm(
                f"continue the rollback of {stack}? [y/N] ",
                "nothing sent; the stack stays UPDATE_ROLLBACK_FAILED",
                "continue",
            )
            started = deployer.now()
            token = f"recover-{stack}-{started:%Y%m%d%H%M%S}"
            deployer.cf.continue_update_rollback(StackName=stack, ClientRequestToken=token, **deployer.role)
            found = deployer.wait_for_stack(stack, token, started, operation="rollback")
        else:
            raise Failure(f"error: {stack} is {status}; recover only continues an UPDATE_ROLLBACK_FAILED rollback")
        if found["StackStatus"] == "UPDATE_ROLLBACK_COMPLETE":
            deployer.say(f"{stack}: UPDATE_ROLLBACK_COMPLETE: back on its previous template; fix the cause and deploy again")
            return 0
        # "You can specify only resources that are in the UPDATE_FAILED state because a rollback failed."
        # https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_ContinueUpdateRollback.html
        failed = [e["LogicalResourceId"] for e in deployer.print_failures() if e["ResourceStatus"] == "UPDATE_FAILED"]
        failed = list(dict.fromkeys(name for name in failed if name != stack))  # the stack's own events are not resources
        raise Failure(
            f"error: {stack} ended {found['StackStatus']}; if a resource cannot be rolled back, skip it: {deployer.cli} cloudformation "
            f"continue-update-rollback --stack-name {stack} --resources-to-skip {' '.join(failed) or 'LOGICAL_ID'}"
        )

    def layer_to_recover(self) -> str:
        """make recover without STACK=: the one enabled layer whose stack of ours is UPDATE_ROLLBACK_FAILED, or rolls back
        an update (a recover whose wait stopped); Failure where none is, or several are (one recover a layer)."""
        deployer, env = self.deployer, self.env
        rolling_back = []
        for name in self.layers:
            found = deployer.describe(templates.stack_name(env, name), refuse_foreign=False)  # another's: not ours to recover
            if found and found["StackStatus"] in ("UPDATE_ROLLBACK_FAILED", *UPDATE_ROLLING_BACK) and not deployer.foreign(found):
                rolling_back.append(name)
        if not rolling_back:
            raise Failure(
                f"error: no layer of {env} is UPDATE_ROLLBACK_FAILED, nor rolling back an update: nothing to recover; "
                f"make status ENV={env} shows each layer's state"
            )
        if len(rolling_back) > 1:
            raise Failure(
                f"error: the update rollbacks of {text.in_words(rolling_back)} failed or go on: one recover a layer, make recover "
                f"STACK=<layer> ENV={env}",
                2,
            )
        deployer.say(
            f"{templates.stack_name(env, rolling_back[0])}: the one layer of {env} whose update's rollback failed or goes on (STACK={rolling_back[0]})"
        )
        return rolling_back[0]

    def rollback(self) -> int:
        """Deploy the image before the one running (or TAG=) through the usual change set."""
        deployer, layer, image_tag = self.deployer, self.layers[0], self.args.image_tag
        if not deployer.has_stack(layer.stack):
            # of it alone, or of every layer where those it reads are not deployed either (which refuse it alone: review R1)
            stack = "" if deployer.undeployed_upstreams(deployer.wired(layer)) else f"STACK={layer.name} "
            raise Failure(
                f"error: {layer.stack} is not deployed: nothing to roll back; make deploy {stack}ENV={deployer.env} TAG=<image> deploys "
                f"{'it' if stack else 'every layer, the service'} with that image"
            )
        before = deployer.describe(layer.stack)
        under_way = before["StackStatus"].endswith("_IN_PROGRESS")
        deployer.ready(layer)  # an update under way (a release whose wait stopped) ends first: then the image it left runs
        deployer.policies.put_back_if_marked(layer)  # also when it then finds nothing to roll back to
        running = parameter_values(deployer.describe(layer.stack)).get("ImageTag")
        said = printable(running, one_line=True) if running else running  # the stack's: anyone who may update it wrote it
        # The update under way was a release, and is gone: another image ran, or CloudFormation was already
        # undoing it (its rollback triggers are the release alarms; the stack may show the image restored by then).
        undone = parameter_values(before).get("ImageTag") != running or before["StackStatus"].startswith("UPDATE_ROLLBACK")
        if image_tag is None and under_way and undone and deployer.describe(layer.stack)["StackStatus"] == "UPDATE_ROLLBACK_COMPLETE":
            # The release this rollback was made for (its alarms fired) was undone by CloudFormation
            # meanwhile: rolling back from what runs now would undo the good release before it too.
            deployer.say(
                f"{layer.stack}: the update under way when this rollback started ended UPDATE_ROLLBACK_COMPLETE: CloudFormation "
                f"rolled it back, and {said} runs now; nothing more rolled back. If {said} is the image to leave too: "
                f"make rollback ENV={self.env} again"
            )
            return 0
        creation_time = deployer.describe(layer.stack)["CreationTime"]
        if image_tag is None:
            every = deployer.history.releases()
            releases = of_the_stack(every, creation_time)
            if len(every) > len(releases):
                earlier = len(every) - len(releases)
                deployer.say(
                    f"{earlier} {'release in the history belongs' if earlier == 1 else 'releases in the history belong'} to an "
                    f"earlier {layer.stack} (destroyed, then created "
                    f"again at {stack_mark(creation_time)}): not rolled back to"
                )
            unknown = unknown_before(releases, running, said, deployer.history.name)
            if unknown:
                raise Failure(
                    f"error: {layer.stack} runs image {said}, {unknown}. What ran before {said} is not known: name the image to "
                    f"roll back to with TAG=<image tag> (make rollback TAG=<image tag> ENV={self.env})"
                )
            release = previous_release(releases, running)
            if release is None:
                why = nothing_earlier(releases, running, said, deployer.history.name)
                # After a rollback, what it left is what an operator who meant to undo it asks for (the history lists it)
                latest = releases[-1] if releases else {}
                left = latest.get("rolled_back_from") if latest.get("image_tag") == running else None
                left = printable(left, one_line=True) if left else None
                undo = f" (to undo the rollback to {said}: make rollback TAG={left} ENV={self.env})" if left else ""
                raise Failure(f"error: nothing earlier to roll back to: {why}; name one with TAG=<image tag>{undo}")
            image_tag = release["image_tag"]
            how = "reached by a rollback" if release.get("rolled_back_from") else "released"
            released = (
                printable(f"{how} {release['time']} by {release.get('by', '?')}, git {release.get('revision', '?')}", one_line=True)
                if "time" in release
                else "its release is not in the history"
            )
            deployer.say(f"rolling back {layer.stack} from {said} to {image_tag} ({released})")
        elif image_tag == running:  # nothing to roll back; a change set would apply whatever else differs, unasked
            deployer.say(f"{layer.stack} runs image {said} already: nothing to roll back")
            return 0
        else:
            deployer.say(f"rolling back {layer.stack} from {said} to {image_tag}")
            try:  # for the revision alone: TAG= rolls back whatever the history holds, or if it cannot be read
                releases = of_the_stack(deployer.history.releases(), creation_time)
            except AWS_ERRORS:
                releases = []
        if image_tag == MOVING_TAG:
            deployer.say(
                f"warning: {MOVING_TAG} is the tag a push moves by default: this deploys the image it names now, which may not be the one "
                "that ran then (the history keeps tags); TAG=<version tag> names one image"
            )
        deployer.rolling_back_from = running
        deployer.repair = True
        # The change set's name and the release it records say the template's revision, not output/'s
        deployer.revision = revision_running(releases, running)
        # The image alone changes: the template, values and tags the stack runs, not output/'s, which may hold other changes.
        shown = printable(image_tag, one_line=True)
        # Recorded, the rollback is what a rollback goes back from (unrecorded, the warning said how to roll back from it).
        done = f"  the rollback to {shown} is done and recorded: make rollback ENV={self.env} again would roll back from {shown} too"
        with self.summed_up_if_stopped(layer, lambda: [done] if deployer.release_recorded else []):
            deployer.deploy(deployer.as_deployed(layer), image_tag, self.args.allow_replace)
        self.done = done.strip() if deployer.release_recorded else None
        return 0

    def verify(self) -> int:
        """The checks of scripts/verify.py on the service the stacks' outputs name."""
        deployer, environment, args, endpoint = self.deployer, self.environment, self.args, self.args.verify_endpoint
        connect_to = endpoint.connect_to
        outputs = {}
        for layer, needed in VERIFY_NEEDS.items():
            stack = templates.stack_name(environment.name, layer)
            if not deployer.has_stack(stack):
                raise Failure(
                    f"error: {stack} is not deployed: nothing to verify; make deploy ENV={environment.name} deploys every layer first"
                )
            outputs[layer] = deployer.outputs(stack)
            missing = [name for name in needed if name not in outputs[layer]]
            if missing:  # a failed first create (ROLLBACK_COMPLETE) has no outputs
                status = deployer.describe(stack)["StackStatus"]
                again = " RECREATE=1" if status == "ROLLBACK_COMPLETE" else ""  # deploy refuses to update one without it
                raise Failure(
                    f"error: {stack} is {status} and has no output {', '.join(missing)}: nothing to verify; "
                    f"make deploy STACK={layer} ENV={environment.name}{again} first"
                )
        alb, service = outputs["alb"], outputs["service"]
        test_listener_port = None
        if args.test_listener:
            if "TestListenerPort" not in alb:
                strategy = environment.values["DeploymentStrategy"]
                raise Failure(
                    f"error: {templates.stack_name(environment.name, 'alb')} has no test listener: {environment.name} releases "
                    f"{strategy} ({templates.relative(environment.path)}: parameters.DeploymentStrategy); the test listener exists with BLUE_GREEN, CANARY or LINEAR, "
                    "once the alb layer is deployed with it",
                    2,
                )
            test_listener_port = stated_whole_number(alb["TestListenerPort"], 65535)  # the stack's to say: anyone's
            if not test_listener_port:
                raise Failure(
                    f"error: {templates.stack_name(environment.name, 'alb')}'s output TestListenerPort is "
                    f"{printable(alb['TestListenerPort'], one_line=True)[:40]!r}, which is no port: not what its template makes; "
                    f"make deploy STACK=alb ENV={environment.name} puts it back"
                )
            verifying = (
                f"verifying the test listener https://{alb['ServiceHost']}:{test_listener_port} ({environment.name}): the new tasks of a "
                f"release before production traffic moves; reachable from TestListenerCidr {environment.values['TestListenerCidr']} only"
            )
        else:
            verifying = f"verifying {alb['ServiceUrl']} ({environment.name}), for up to {args.timeout} s"
        host, https = alb["ServiceHost"], test_listener_port or 443
        # the path the deployed target group probes, which the application answers (params' HealthCheckPath)
        health_path = parameter_values(deployer.describe(templates.stack_name(environment.name, "alb"))).get("HealthCheckPath")
        if health_path is not None and not re.fullmatch(HTTP_PATH, health_path):  # the template's AllowedPattern, unless it was swapped
            raise Failure(
                f"error: {templates.stack_name(environment.name, 'alb')}'s HealthCheckPath {printable(health_path, one_line=True)[:200]} "
                f"is no path this tool requests (its template changed outside this tool?); allowed: {INPUTS['HealthCheckPath'].hint}; "
                "nothing was requested",
                2,
            )
        if connect_to and not endpoint.maps(host, https):  # a typo: the certificate, health and smoke checks skipped, and passed
            raise Failure(
                f"error: CONNECT_TO (--connect-to) maps {', '.join(sorted(f'{h}:{p}' for h, p in connect_to))}, not {host}:{https}, "
                "the site verified: with it given, only the host:ports it maps are requested, so neither its certificate, its health check "
                "nor a smoke check would run",
                2,
            )
        deployer.say(verifying)  # once nothing the run was given is refused: a refusal is not said to be verifying
        # With AWS_ENDPOINT_URL the stacks live in an emulator: it runs no containers, and the public host
        # in their outputs is not theirs. verify.run_checks skips what cannot pass there, saying why, and
        # makes HTTP requests only to the --connect-to addresses (a local server), never the public host.
        if not deployer.on_aws:
            deployer.say(
                f"AWS_ENDPOINT_URL={os.environ['AWS_ENDPOINT_URL']}: an emulator; the checks it cannot pass are skipped, each with its reason"
            )

        def run_once():
            return verify.run_checks(
                endpoint,
                alb["ServiceHost"],
                ecs=deployer.client("ecs"),
                elbv2=deployer.client("elbv2"),
                cluster=service["ClusterName"],
                service=service["ServiceName"],
                # Both: a release that shifts traffic leaves the tasks in either (templates/alb.py).
                target_group_arns=[alb[name] for name in ("TargetGroupArn", "AlternateTargetGroupArn") if name in alb],
                smoke_checks=environment.smoke_checks,
                emulator=not deployer.on_aws,
                task_definition=service.get("TaskDefinitionArn"),
                test_listener_port=test_listener_port,
                health_path=health_path,
            )

        return (
            0
            if verify.verify(
                run_once, timeout=args.timeout, sleep=deployer.sleep, clock=deployer.clock, say=deployer.say, endpoint=endpoint
            )
            else 1
        )

    def zone(self) -> int:
        """Find or create the domain's public zone, print its name servers, wait for the delegation."""
        deployer, env, timeout = self.deployer, self.env, self.args.timeout
        domain, given = self.environment.values["DomainName"], self.environment.values["ExistingHostedZoneId"]
        # this run's own (botocore's retries resend it): a second make zone, which takes no lock, in the same second has another
        reference = f"{templates.PROJECT}-{env}-{deployer.now():%Y%m%d%H%M%S}-{uuid.uuid4().hex[:12]}"
        try:
            zone_id, servers = zone.find_or_create(
                deployer.client("route53"), domain, given, env, deployer.confirm, deployer.say, reference
            )
        except zone.ZoneError as error:
            raise Failure(f"error: {deployer.params_file}: {error}") from None
        listed = [f"  {zone.normal(server)}" for server in servers]
        if deployer.resolver is None:  # an emulator's zone: its name servers are made up, and the domain is a real one
            deployer.say(f"the emulator's hosted zone {zone_id} of {domain} lists these name servers, which are not AWS's:", *listed)
            deployer.say(
                "set none of them at the registrar; delegation not checked: AWS_ENDPOINT_URL is set, so public DNS knows nothing of this zone"
            )
        else:
            deployer.say(f"set exactly these name servers at the registrar of {domain} (hosted zone {zone_id}):", *listed)
            if not zone.wait_for_delegation(domain, servers, deployer.resolver, timeout, deployer.sleep, deployer.clock, deployer.say):
                raise Failure(
                    f"error: {domain} is not delegated to {zone_id} yet after {timeout} s; a registrar's change often shows within "
                    f"an hour and can take up to 48 hours (the old name servers' TTL); run make zone ENV={env} again to keep "
                    "waiting: it finds the same zone"
                )
            deployer.say(f"{domain} is delegated: public DNS answers with the zone's name servers")
        # The zone the deployed certificate is validated in ("" where its stack made one; None where not deployed, or
        # in no settled state, which holds no values to go by). Another one replaces the certificate: its
        # DomainValidationOptions are create-only in the resource schema cfn-lint ships (guards.create_only_changes),
        # which a deploy refuses without ALLOW_REPLACE=1.
        unread = None
        try:
            validated_in = deployer.settled_values(templates.stack_name(env, "cert-dns")).get("ExistingHostedZoneId")
        except AWS_ERRORS as error:
            validated_in, unread = None, error_code(error)
            deployer.say(f"note: the cert-dns stack could not be read ({unread}): whether it is deployed with this zone is not known")
        if given == zone_id and unread:
            deployer.say(
                f"{deployer.params_file} names this zone; make diff STACK=cert-dns ENV={env} says whether the certificate needs a deploy"
            )
        elif given == zone_id and validated_in == zone_id:
            deployer.say(f"{deployer.params_file} names this zone, and the cert-dns stack is deployed with it: nothing more to do here")
        elif given == zone_id:
            deployer.say(f"{deployer.params_file} names this zone; deploy the certificate: make deploy STACK=cert-dns ENV={env}")
        else:
            moved = validated_in not in (None, zone_id)
            replace = (
                " ALLOW_REPLACE=1 (the certificate is validated in the zone: a new zone replaces it, which the deploy shows first)"
                if moved
                else ""
            )
            deployer.say(
                f"next: set `ExistingHostedZoneId: {zone_id}` under parameters in {deployer.params_file}, "
                f"then: make templates && make deploy STACK=cert-dns ENV={env}{replace}"
            )
        return 0

    def unlock(self) -> int:
        """Free the lock a dead run left, after saying whose it is and asking."""
        deployer, env = self.deployer, self.env
        value = deployer.lock.held_value()
        if value is None:
            deployer.say(f"{env} is not locked")
            return 0
        holder = deployer.lock.holder(value)
        running = lock.still_running(value, env)
        if running is not None:  # freed, a second run would change the stacks beside it
            command = lock.command_line(running) or []
            # The lock is anyone's to write who may put the parameter: one forged to name another process (a shell, init)
            # with its start time must not get a kill of it advised. Ctrl-C or a kill only for a deployer's process.
            if not lock.runs_deployer_of(command, env):
                ending = (
                    f"It runs no deployer of {env} ({printable(' '.join(command), one_line=True)[:100] or 'its command line unreadable'}): "
                    "if it is not the run (the lock may name it falsely)"
                )
            elif lock.stopped(running):  # Ctrl-Z: a SIGTERM waits until it is continued, so kill -TERM alone freed nothing
                # (kill -CONT alone does not let it go on: a background job waiting for its terminal stops again)
                ending = (
                    f"It is stopped (Ctrl-Z, or a background job waiting for its terminal): fg in its terminal lets it go on, and "
                    f"kill -TERM {running} then kill -CONT {running} ends it, which frees the lock. If that process is not the run"
                )
            else:
                ending = (
                    f"Let it end, or stop it with Ctrl-C in its terminal (or kill -TERM {running}), which frees the lock. If that process is "
                    "not the run"
                )
            raise Failure(
                f"error: the lock of {env} is held by {holder}, and its process {running} still runs on this machine: nothing freed. "
                f"{ending}, delete the lock yourself: {deployer.cli} ssm delete-parameter --name {deployer.lock.name}"
            )
        deployer.confirm(
            f"free the lock of {env} held by {holder}? Only if that run is gone. [y/N] ",
            f"the lock of {env} ({holder}) is kept",
            "free it",
        )
        now = deployer.lock.free(value)
        if now is not None:
            raise Failure(
                f"error: the lock of {env} changed while you answered: it is now {deployer.lock.holder(now)}; nothing freed. "
                f"If that run is gone too: make unlock ENV={env}"
            )
        deployer.say(f"{env}: lock freed (was {holder})")
        return 0

    def task(self) -> int:
        """Run the service's task definition once with CMD as the web container's command; its exit code.
        With TAG=, a copy of it with that image, registered for the run and deregistered after it."""
        deployer, env, command, image_tag = self.deployer, self.env, self.args.task_command, self.args.image_tag
        names = logs.service_stack(deployer)
        ecs = deployer.client("ecs")
        service = tasks.describe_service(ecs, names["cluster"], names["service"], env)
        request = tasks.run_request(names["cluster"], service, command)
        shown = " ".join(map(shlex.quote, command))
        current = service["taskDefinition"].rsplit("/", 1)[-1]
        register = None
        if image_tag:
            described = ecs.describe_task_definition(taskDefinition=service["taskDefinition"], include=["TAGS"])
            register = tasks.register_request(described, image_tag, run=request["clientToken"])
            image = tasks.web_image(register)
            self.refuse_an_image_ecr_lacks(image, image_tag)
            deployer.say(
                f"one-off task in {env}: {shown}",
                f"  a copy of task definition {current} of {names['service']} with the image {image}, its network settings and roles;",
                "  make task registers that revision for this run and deregisters it once the task stops",
            )
        else:
            deployer.say(
                f"one-off task in {env}: {shown}",
                f"  task definition {current} of {names['service']}, its network settings and roles",
            )
        deployer.confirm("run it? [y/N] ", "nothing run", "run")
        registered = None
        try:
            if register is not None:
                answer = self.register_copy(ecs, register, current)
                registered = answer["taskDefinition"]["taskDefinitionArn"]
                deployer.say(f"registered {registered.rsplit('/', 1)[-1]}")
                # botocore retried it: an attempt whose answer was lost may have registered a copy too
                retries = answer.get("ResponseMetadata", {}).get("RetryAttempts", 0)
                for lost in tasks.lost_copies(ecs, answer["taskDefinition"], request["clientToken"], retries, current) if retries else []:
                    deployer.say(f"{lost.rsplit('/', 1)[-1]}: registered too, by an attempt whose answer was lost (botocore retried it)")
                    tasks.deregister(ecs, lost, deployer.say)
                request["taskDefinition"] = registered
            return self.run_and_wait(ecs, names, request)
        finally:
            if registered:
                stopping = sys.exc_info()[1]  # what already stops the run (a Ctrl-C in the wait, with its advice)
                try:
                    tasks.deregister(ecs, registered, deployer.say)
                except KeyboardInterrupt:
                    if stopping is None:
                        raise  # a second Ctrl-C during the deregistration: its own stop; else the first one's advice stands

    def refuse_an_image_ecr_lacks(self, image, image_tag) -> None:
        """TAG= names an image its ECR repository does not hold (a typo): refused before anything is
        registered or run, as a release of it is (guards.refuse_a_missing_image); the task would fail
        at its image pull. The repository is looked for in the account its host names; an image of
        another registry or of another region's ECR is not asked for. (make task runs on AWS only.)
        https://docs.aws.amazon.com/AmazonECR/latest/userguide/Registries.html"""
        host, _, path = tasks.repository(image).partition("/")
        ecr = ECR_HOST.fullmatch(host)
        if ecr is None or ecr["region"] != self.deployer.cf.meta.region_name:
            return
        missing = guards.missing_image(self.deployer, path, image_tag, registry_id=ecr["account"])
        if missing == "image":
            raise Failure(f"{guards.not_in_ecr(self.deployer, path, image_tag)}; nothing was registered or run")
        if missing == "repository":
            raise Failure(
                f"error: no ECR repository {path} in account {ecr['account']} (the service's image {image}); nothing was registered or run"
            )

    def register_copy(self, ecs, register, current) -> dict:
        """Register the copy with TAG='s image (RegisterTaskDefinition's answer); stopped or unanswered, it may be registered all the same
        (the family's newest ACTIVE revision then): said, with how to find and deregister it. current:
        the revision the service runs (family:n), which the newest is when the copy was not registered."""
        cli, family = self.deployer.cli, register["family"]
        left = [
            f"  the copy of {family} with the new image may have been registered all the same; find it: {cli} ecs "
            f"list-task-definitions --family-prefix {family} --sort DESC --max-items 1",
            # if it was not, that newest revision is CloudFormation's, which the service runs
            f"  it is the copy only if it is newer than {current}, the revision the service runs, and names image "
            f"{tasks.web_image(register)}; then deregister it: {cli} ecs deregister-task-definition --task-definition <its ARN>",
        ]
        try:
            return ecs.register_task_definition(**register)
        except KeyboardInterrupt as stop:
            raise Failure("\n".join(["interrupted while registering the task definition.", *left]), 130) from stop
        except AWS_ERRORS as error:
            if not may_have_landed(error):
                raise
            raise Failure("\n".join([explain(error, self.env), *left])) from None

    def run_and_wait(self, ecs, names, request) -> int:
        """RunTask, then its log and exit code until it stops (or MAX_WAIT, Ctrl-C: it keeps running)."""
        deployer, env = self.deployer, self.env
        try:
            started = tasks.start(ecs, request)
        except KeyboardInterrupt:
            lines = ["interrupted while asking ECS to start the task.", *tasks.may_have_started(names["cluster"], env, deployer.cli)]
            raise Failure("\n".join(lines), 130) from None
        except AWS_ERRORS as error:
            if not may_have_landed(error):
                raise
            lines = [explain(error, env), *tasks.may_have_started(names["cluster"], env, deployer.cli)]
            raise Failure("\n".join(lines)) from None
        arn = started["taskArn"]
        minutes = self.args.max_wait or templates.TASK_WAIT_MINUTES
        deployer.say(f"task {logs.task_id(arn)} started; waiting up to {minutes} minutes for it to stop, printing its log")
        try:
            task = tasks.wait(
                ecs,
                deployer.client("logs"),
                names["cluster"],
                arn,
                names["log_group"],
                sleep=deployer.sleep,
                clock=deployer.clock,
                max_minutes=minutes,
                say=deployer.say,
                env=env,
            )
        except KeyboardInterrupt:
            lines = [
                f"interrupted: task {logs.task_id(arn)} keeps running.",
                *tasks.still_running(names["cluster"], arn, env, deployer.cli),
            ]
            raise Failure("\n".join(lines), 130) from None
        except (*AWS_ERRORS, *UNREADABLE) as error:  # AWS stopped answering, or unreadable: the task does not stop with it
            lines = [
                explain(error, env),
                f"  task {logs.task_id(arn)} may still be running.",
                *tasks.still_running(names["cluster"], arn, env, deployer.cli),
            ]
            raise Failure("\n".join(lines)) from None
        code, lines = tasks.outcome(task)
        deployer.say(*lines)
        return code

    def releases(self) -> int:
        """make releases: the service's releases the history holds (what make rollback reads), newest
        first, each with its time, revision and caller, and the image the service runs."""
        deployer, stack = self.deployer, templates.stack_name(self.env, "service")
        found = deployer.describe(stack)
        theirs = bool(found) and deployer.foreign(found)  # its values are not ours to print, nor a release of ours
        running = None if runs_no_image(found) or theirs else parameter_values(found).get("ImageTag")
        every = deployer.history.releases()
        # with no stack of ours, every release is a destroyed one's
        ours = of_the_stack(every, found["CreationTime"]) if found and not theirs else []
        if not every:
            deployer.say(f"no release recorded in {deployer.history.name}")
        for index, entry in reversed(list(enumerate(every))):
            notes = [f"a rollback from {entry['rolled_back_from']}" if entry.get("rolled_back_from") else ""]
            # an update that kept the image (a settings change): no rollback goes back to it, and the history drops it first
            notes.append("settings changed, same image" if redeploy(entry) else "")
            # what a rollback from it goes back to (history.previous_release), when the list does not show it: the entry
            # is anyone's to write who may put the parameter, and make rollback follows it
            before = every[index - 1]["image_tag"] if index else None
            replaced = entry.get("replaced")
            if replaced is not None and replaced != before and not entry.get("rolled_back_from") and replaced != entry["image_tag"]:
                below = ", not the release listed below it" if index else ""
                back = "does not go back to it: it was rolled back from since" if abandoned(every, replaced) else f"goes back to {replaced}"
                notes.append(f"it replaced {replaced}{below}: make rollback from it {back}")
            elif redeploy(entry) and before is not None and before != replaced:  # an update outside this tool released it
                notes.append(
                    f"{replaced} ran before it, not the release listed below it: released outside make deploy, or its release "
                    "not recorded; make rollback from it asks for TAG="
                )
            notes.append("" if entry in ours else "of an earlier service stack: make rollback passes it over")
            said = "; ".join(note for note in notes if note)
            line = f"{entry.get('time', '?')}  {entry['image_tag']}  git {entry.get('revision', '?')}  by {entry.get('by', '?')}"
            deployer.say(printable(line + (f"  ({said})" if said else ""), one_line=True))
        if running:
            said = printable(running, one_line=True)
            # where make rollback without TAG= refuses, why (its two refusals), said where the list is read, before the
            # rollback is needed; but not of a run under way (the stack changing, or the lock held by a live run that
            # may release), which records its release once its wait ends
            history_name = deployer.history.name
            refusal = unknown_before(ours, running, said, history_name)
            if refusal:
                refusal = f", {refusal}"
            elif previous_release(ours, running) is None:  # the list above shows the history; make rollback says why at length
                refusal = "; no release before it to roll back to"
            status = found["StackStatus"]
            under_way = status if busy(status) else refusal and self.release_under_way()
            if under_way:
                note = f" ({under_way}: a release under way is recorded once it ends; see again then)"
            elif stuck(found):  # make rollback refuses for the stack first
                note = f" (make rollback is refused while the stack is {status}: {deployer.way_out('service', status)})"
            else:
                note = f"{refusal}: make rollback asks for TAG=<image tag>" if refusal else ""
            deployer.say(f"{stack} runs image {said}{note}")
        elif theirs:
            deployer.say(f"{text.not_ours(stack, deployer.own_tags(found))}: no release of ours runs")
        else:  # none, or one whose first create failed (rolled back or rolling back) or that waits under review
            deployer.say(f"{stack} is {found['StackStatus'] if found else 'not deployed'}: no image runs")
        return 0

    def release_under_way(self) -> str | None:
        """The lock's holder ("the lock is held: <whose>") where a run that may release the service holds it (a deploy,
        execute or rollback of the service layer, or of every layer) and may still run (a dead run's lock, which make
        status names, records nothing more); None otherwise, and where it cannot be read (a hint for a note, not worth an
        error)."""
        try:
            value = self.deployer.lock.held_value()
        except (*AWS_ERRORS, *UNREADABLE):
            return None
        held = untrusted_json(value) if value else None
        if not isinstance(held, dict) or held.get("command") not in RELEASING_COMMANDS or holder_runs(held, self.env) is False:
            return None
        if held.get("stack") and held["stack"] != "service":  # a run of another layer alone, which never touches the service stack
            return None
        return f"the lock is held: {self.deployer.lock.holder(value)}"

    def logs(self) -> int:
        """Print the service's log events since SINCE; with FOLLOW, keep printing until Ctrl-C, then exit 0."""
        deployer = self.deployer
        names = {"log_group": logs.log_group_to_read(deployer)}
        start_ms = int(deployer.now().timestamp() * 1000) - self.args.since_seconds * 1000
        if self.args.follow:
            deployer.say(f"{names['log_group']} since {self.args.since}, every {logs.FOLLOW_SECONDS:g} s until Ctrl-C")
        try:
            printed = logs.tail(
                deployer.client("logs"),
                names["log_group"],
                start_ms,
                follow=self.args.follow,
                sleep=deployer.sleep,
                say=deployer.say,
                explain=lambda error: explain(error, self.env).removeprefix("error: "),
                gone=lambda error: sandbox_gone(error, self.env),
            )
        except KeyboardInterrupt as stop:  # Ctrl-C is the way FOLLOW=1 ends: not a failure; anything else stopped is
            if self.args.follow and not isinstance(stop, Terminated):
                return 0
            raise
        except ClientError as error:  # the stack names it, and make status shows the stack as it was: drift says what happened
            # Only of a stack that has settled: after a destroy, log_group_to_read looked at the retained one (deleted since: said as
            # it is), a create may not have made it yet, and a failed create's rollback deleted it.
            if error_code(error) != "ResourceNotFoundException":
                raise
            stack = templates.stack_name(self.env, "service")
            found = deployer.describe(stack)
            status = found["StackStatus"] if found and not deployer.foreign(found) else None  # else: a group ours kept, read
            if status in FIRST_CREATE_FAILED:  # the log group is RETAIN, RetainExceptOnCreate (templates/common.py)
                raise Failure(
                    f"error: log group {names['log_group']} does not exist: {stack} is {status}, whose rollback deletes it with "
                    "its logs (the failed deploy printed the stopped tasks' last log lines among its events; make events "
                    f"STACK=service ENV={self.env} shows why it failed); {deployer.way_out('service', status)}"
                ) from None
            if not deployer.settled_values(stack):
                raise
            raise Failure(
                f"error: log group {names['log_group']} does not exist, though the stack that made it names it: deleted outside "
                f"CloudFormation? make drift ENV={self.env} STACK=service says so (DELETED)"
            ) from None
        if not printed:  # silence would leave the reader wondering whether it looked at all
            deployer.say(f"{names['log_group']}: no log events since {self.args.since} ago")
        return 0

    def resume(self) -> int:
        """make continue: let a release paused for tests (TestPauseMinutes) go on to production
        traffic, or roll it back (ACTION=ROLLBACK). Not locking: the deploy that started the release
        holds the environment's lock while it waits for it.
        https://docs.aws.amazon.com/AmazonECS/latest/developerguide/continue-service-deployment.html"""
        deployer, action = self.deployer, self.args.action
        names = logs.service_stack(deployer)
        stack = templates.stack_name(self.env, "service")
        strategy = parameter_values(deployer.describe(stack)).get("DeploymentStrategy")
        if strategy not in TRAFFIC_SHIFTING:
            raise Failure(
                f"error: {stack} releases {strategy}: no release waits for make continue; a release waits once the test listener "
                f"reaches its new tasks with DeploymentStrategy {', '.join(TRAFFIC_SHIFTING[:-1])} or {TRAFFIC_SHIFTING[-1]} and "
                f"TestPauseMinutes above 0 ({templates.relative(self.environment.path)}: parameters)",
                2,
            )
        if not self.deployer.on_aws:
            # moto answers ListServiceDeployments with HTTP 500 (not implemented), and runs no release to pause.
            raise Failure(
                f"error: AWS_ENDPOINT_URL={os.environ['AWS_ENDPOINT_URL']}: the emulator runs no release, so none waits for make continue",
                2,
            )
        ecs = deployer.client("ecs")
        listed = ecs.list_service_deployments(cluster=names["cluster"], service=names["service"], status=["IN_PROGRESS"])
        arns = [d["serviceDeploymentArn"] for d in listed.get("serviceDeployments", [])]
        described = ecs.describe_service_deployments(serviceDeploymentArns=arns).get("serviceDeployments", []) if arns else []
        paused = [
            (deployment, hook)
            for deployment in described
            for hook in deployment.get("lifecycleHookDetails", [])
            if hook.get("targetType") == "PAUSE" and hook.get("status") == "AWAITING_ACTION"
        ]
        if not paused:
            raise Failure(
                f"error: no release of {names['service']} is waiting for make continue: a release waits once the test listener "
                f"reaches its new tasks when TestPauseMinutes is above 0 ({templates.relative(self.environment.path)}: parameters.TestPauseMinutes "
                f"{self.environment.values['TestPauseMinutes']}); see its progress with make status ENV={self.env} STACK=service"
            )
        deployment, hook = paused[0]
        revision = deployment.get("targetServiceRevision", {}).get("arn", deployment["serviceDeploymentArn"]).rsplit("/", 1)[-1]
        expires = f"{hook['expiresAt']:%Y-%m-%d %H:%M:%S %Z}" if hook.get("expiresAt") else "its timeout"
        what = "move production traffic to it" if action == "CONTINUE" else "roll it back to the running tasks"
        # What ECS does when the pause times out: ROLLBACK unless the hook says CONTINUE.
        # https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DeploymentLifecycleHookTimeoutConfiguration.html
        then = "moves production traffic to it" if hook.get("timeoutAction") == "CONTINUE" else "rolls it back"
        deployer.say(f"{names['service']}: release (service revision {revision}) paused for tests, until {expires}; then ECS {then}")
        deployer.confirm(f"{action}: {what}? [y/N] ", "nothing was sent; the release stays paused", "send it")
        ecs.continue_service_deployment(serviceDeploymentArn=deployment["serviceDeploymentArn"], hookId=hook["hookId"], action=action)
        deployer.say(f"{names['service']}: {action} sent; the deploy that started the release follows it to the end")
        return 0


def made_at(revision) -> str:
    """The commit a change set's name gives (layer.revision_named_in), as a refusal to execute it names it."""
    commit = revision.removesuffix("-dirty")
    if revision == "unknown" or commit == "nogit":
        return ""
    return f" ({commit}{', with changes not committed then' if commit != revision else ''})"


# In the order `--help` lists them.
COMMANDS = {
    "deploy": Commands.deploy,
    "changeset": Commands.changeset,
    "execute": Commands.execute,
    "status": Commands.status,
    "outputs": Commands.outputs,
    "events": Commands.events,
    "diff": Commands.diff,
    "drift": Commands.drift,
    "destroy": Commands.destroy,
    "recover": Commands.recover,
    "rollback": Commands.rollback,
    "verify": Commands.verify,
    "continue": Commands.resume,
    "zone": Commands.zone,
    "unlock": Commands.unlock,
    "purge": Commands.purge,
    "task": Commands.task,
    "logs": Commands.logs,
    "releases": Commands.releases,
}


# Commands that change an environment hold its lock (scripts/deploy/lock.py) while they run. A one-off
# task does too: a migration while a deploy replaces the tasks (or two migrations at once) is what the
# lock is for, and the workflow runs one right before its service update. It holds the lock until the
# task stops, or until Ctrl-C or MAX_WAIT ends the wait (the task then runs on without it).
# What Ctrl-C outside a stack operation (a wait says how to follow its own) leaves to do: nothing is half
# done, and the same command goes on, saying no changes for what is done. Not so for a rollback (done, it would
# go one release further back) or a task (it would run twice); the rest say their own or change nothing.
GOING_ON_AFTER_CTRL_C = {
    "deploy": "to go on: the same command again (what is done already is not done again)",
    "changeset": "to go on: the same command again (it makes a new change set)",
    "execute": "to go on: the same command again (the change set is kept, not executed)",  # until it is asked to run
}


GOING_ON_AFTER_EXECUTION = (
    "to go on: the same command again once the stack has settled: it finds the change set run, and puts on what this "
    "run may have left off (the stack policy, termination protection)"
)


# Commands whose one question comes before they change anything: Ctrl-C at it leaves what its "no" leaves, said so.
# (deploy, execute and rollback ask per layer, after what the run did before: their Ctrl-C says its own.)
ASKING_FIRST = ("destroy", "purge", "task", "recover", "unlock", "continue")


def going_on_after_ctrl_c(command, deployer) -> str | None:
    """What a Ctrl-C that stopped the command leaves to do (GOING_ON_AFTER_CTRL_C), if anything is said."""
    if command == "execute" and deployer is not None and (deployer.execution_asked or deployer.finishing_executed):
        # ExecuteChangeSet answered (one unanswered is said by Deployer.start_execution): a stop after it may leave
        # the stack without what follows the operation, which the same command puts on (Commands.execute)
        return GOING_ON_AFTER_EXECUTION
    if command == "changeset" and deployer is not None and deployer.left_for_review:
        return f"change set {deployer.left_for_review} is left for review, as said above: the same command again would make another"
    if command in ASKING_FIRST and deployer is not None and deployer.stopped_at_question:
        return deployer.stopped_at_question  # "nothing purged": the question came before anything
    if command == "deploy" and deployer is not None and deployer.release_unrecorded:  # a rerun finds it deployed: no release
        return f"{GOING_ON_AFTER_CTRL_C[command]}; it does not record the release said above"
    return GOING_ON_AFTER_CTRL_C.get(command)


LOCKING_COMMANDS = ("deploy", "changeset", "execute", "destroy", "recover", "rollback", "purge", "task")
# Those of them that may release the service: their release is recorded once their wait ends (make releases)
RELEASING_COMMANDS = ("deploy", "execute", "rollback")
# Commands that act on what the stacks made: a stack of our name that is not ours is refused
# (Deployer.describe). `make continue` too, without the lock: it runs while a deploy holds it.
ACTING_COMMANDS = (*LOCKING_COMMANDS, "continue")
# Commands that change something: a closed output reader does not stop them half way (templates.errors.Output).
CHANGING_COMMANDS = (*ACTING_COMMANDS, "zone", "unlock")
