"""The Deployer: applies one layer at a time through change sets, waits for CloudFormation, and
reads and deletes stacks.

Shaped like aws-cli's customizations/cloudformation/deployer.py: one small method per step and "no
changes" decided in one place. Wired parameters come from the upstream stacks' outputs
(templates.WIRING), read with DescribeStacks once per run.

This module holds the run's state and plumbing, what a deploy sends, the settling of a stack before a
change set (ready), a layer's deploy and destroy, and the release history. Its parts, each a class the
Deployer is made of and sharing its state, are apart: reading.py reads the stacks (has_stack, and
describe, which refuses a stack of our name this tool did not make), change_sets.py makes and executes
a change set (create_change_set, wait_for_change_set, execute, and no_changes, the one place an empty
one is recognised), waiting.py waits for CloudFormation (wait_for_stack, its bound in wait_minutes) and
says what its events tell."""

import contextlib
import functools
import json
import os
import re
import time
from datetime import UTC, datetime

from botocore.exceptions import ClientError

import templates
from scripts.deploy import guards, purge, text
from scripts.deploy.aws import AWS_ERRORS, UNREADABLE, AwsCalls, cli, error_code, may_have_landed, sandbox_gone, unread_answer
from scripts.deploy.change_sets import CAPABILITIES, ChangeSets, unanswered
from scripts.deploy.failure import Failure
from scripts.deploy.history import ReleaseHistory, stack_mark
from scripts.deploy.layer import git_revision, load_layer
from scripts.deploy.lock import EnvironmentLock
from scripts.deploy.policies import RelaxedPolicyMarks, StackPolicies
from scripts.deploy.reading import StackReading, reason_of
from scripts.deploy.status import FIRST_CREATE_FAILED, SUCCEEDED, UPDATABLE, busy, runs_no_image
from scripts.deploy.text import NOT_CONFIRMED, parameter_values
from scripts.deploy.waiting import StackWaiting, monitoring_minutes, stated_whole_number
from templates import params
from templates.errors import printable, stops_held
from templates.generation import OUTPUT_DIR, PARAMS_DIR
from templates.inputs import IMAGE_TAG, KEEP_RUNNING_COUNT, SERVICE_REPLACED_BY
from templates.resolver import Resolver


class Deployer(StackReading, StackWaiting, ChangeSets):
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
        self.retained_ids_by = {}  # stack -> the physical ids it holds of those (Deployer.retained_there)
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
        self.finishing_executed = False  # make execute of a change set that ran, finishing what its run left
        self.left_for_review = None  # the change set make changeset left and named, once it has
        self.stopped_at_question = None  # a question's refusal, where Ctrl-C stopped the run at it (going_on_after_ctrl_c)
        self.release_recorded = False  # this run's release is in the release history (record_release)
        self.release_unrecorded = False  # a stop left this run's release live, or maybe live, without its entry (said)
        # CloudFormation's service role for every stack operation (CI passes the ci layer's one).
        self.role = {"RoleARN": role_arn} if role_arn else {}
        self.env, self.out, self.err, self.sleep, self.ask = env, out, err, sleep, ask
        self.now = now or (lambda: datetime.now(UTC))
        self.revision, self.output_dir = revision, output_dir
        self.interactive, self.yes = interactive, yes
        self.changes = changes  # the command changes stacks: a foreign one is refused (describe)
        # on a terminal, unless NO_COLOR is set and not empty, the convention https://no-color.org/ writes down
        self.colour = getattr(out, "isatty", lambda: False)() and not os.environ.get("NO_COLOR")
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
    def nothing_changed(self, layer_name) -> str:
        """What a refusal of the layer's change set, or of its stack, leaves: in a run that changed earlier layers, not nothing."""
        changed = [name for name, outcome in self.outcomes.items() if outcome != "no changes" and name != layer_name]
        said = "nothing changed" if not changed else f"nothing changed in {layer_name}"
        if layer_name in self.recreated:  # gone: a deploy again creates it without RECREATE=1
            said = f"{said} but the deletion of {templates.stack_name(self.env, layer_name)}'s failed first create (RECREATE=1)"
        if changed:
            said += f"; this run changed {text.in_words(changed)} before it (the summary above)"
        return said

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

    def output_revision(self) -> str:
        """What change-set names and the release history call the files this run deploys (git_revision of output/,
        or the one the run was given): read once a run."""
        if self.revision is None:
            self.revision = git_revision(self.output_dir)
        return self.revision

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
        except KeyboardInterrupt as interrupt:  # what follows starts a line of its own, not after the prompt's ^C
            if not getattr(interrupt, "line_ended", False):  # a question asked on the terminal ended its line there
                with contextlib.suppress(Exception):
                    self.say("")
            raise
        return None if answer.strip().lower() in ("y", "yes") else NOT_CONFIRMED

    def where(self) -> str:
        """The account and region a question's answer acts in: the same stack names and commands
        work in any account the shell's credentials reach, and only these tell prod's from another's.
        An account that cannot be read is said so, and the question asked all the same. The sandbox's
        is said to be the sandbox's: its account is the one the example params files name; another
        environment's on an emulator (AWS_ENDPOINT_URL) the emulator's, whatever account it answers."""
        try:
            account = self.account()
        except AWS_ERRORS as error:
            account = f"not known ({error_code(error)})"
        place = f"account {printable(account, one_line=True)}, {self.cf.meta.region_name}"  # STS's answer: anyone's on a hostile endpoint
        if self.env == params.SANDBOX_ENV:
            return f"the local sandbox at {self.cf.meta.endpoint_url} ({place})"
        return place if self.on_aws else f"the emulator at {self.cf.meta.endpoint_url} ({place})"

    def account(self) -> str:
        """The account of the stacks this run read (a StackId names it); before any, the caller's:
        GetCallerIdentity, which no policy can deny ("No permissions are required to perform this
        operation"): https://docs.aws.amazon.com/STS/latest/APIReference/API_GetCallerIdentity.html"""
        read = next((found["StackId"].split(":")[4] for found in self.stacks.values() if found), None)
        return read or self.client("sts").get_caller_identity()["Account"]

    def confirm(self, question, refusal, without_asking=None):
        """Go on once confirmed (why_not); else stop: "error: <why not>: <refusal>", and how to go on without
        asking (without_asking: what YES=1 does, "execute"), but after a "no" on the terminal (text.declined)."""
        try:
            why = self.why_not(question)
        except KeyboardInterrupt:
            self.stopped_at_question = refusal
            raise
        if why:
            raise Failure(f"error: {text.declined(why, refusal, without_asking)}")

    # --- what a deploy sends: its parameters and rollback triggers -------------------------

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
        monitoring = stated_whole_number(given, templates.common.MOST_MONITORING_MINUTES)
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
                self.release_unrecorded = True
                self.say("warning: " + text.release_not_recorded(image, self.env, self.history.name, self.rolling_back_from, replaced))
            raise

    def record_release(self, image_tag, rolled_back_from=None, stack_created=None, replaced=None, revision=None):
        """replaced: the image the stack ran before (what a rollback from this release goes back to); revision: the one
        its change set was made at (make execute runs one made earlier), else output/'s now.
        The release is live whatever happens here: a history that cannot be read or written (expired
        credentials after a long wait, a role without the permission) is a warning, and the run goes on."""
        try:
            entry = {
                "time": f"{self.now():%Y-%m-%dT%H:%M:%SZ}",
                "image_tag": image_tag,
                "revision": revision or self.output_revision(),
                "by": self.caller_arn(),
            }
            if stack_created:  # which service stack: one destroyed and created again starts a new history
                entry["stack_created"] = stack_mark(stack_created)
            if rolled_back_from:
                entry["rolled_back_from"] = rolled_back_from
            entry["replaced"] = replaced  # None: the stack's first release
            self.history.record(entry)
            self.release_recorded = True
        except (*AWS_ERRORS, *UNREADABLE) as error:  # UNREADABLE: an answer without what the history reads (a field gone)
            why = error_code(error) if isinstance(error, AWS_ERRORS) else unread_answer(error)
            self.say("warning: " + text.release_not_recorded(image_tag, self.env, self.history.name, rolled_back_from, replaced, why))

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

    def caller_arn(self) -> str:
        """Who this run runs as, for the release history: a release is recorded all the same when that is refused.
        No answer ends the record (a warning): the history's own write would wait out the same retries."""
        try:
            return self.client("sts").get_caller_identity()["Arn"]
        except ClientError as error:
            return f"unknown (GetCallerIdentity: {error_code(error)})"
        except KeyError:
            return "unknown (GetCallerIdentity's answer named no Arn)"

    def protect_if_off(self, layer, found):
        """Finish a run stopped before it protected the stack (its stack policy, then its termination protection:
        protect), or undo a change by hand, saying so."""
        if found and not found.get("EnableTerminationProtection"):
            self.protect(layer, found)
            self.say(f"{layer.stack}: termination protection was off (a run stopped before it set it, or a change by hand): turned back on")

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
            self.protect_if_off(layer, found)
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
            self.retained_ids_by.pop(stack, None)  # read again: the operation waited for may have deleted some
        keep, ids = self.retained_there(stack) if found["StackStatus"] != "REVIEW_IN_PROGRESS" else ({}, {})
        self.delete(stack, retains=any(ids.get(logical_id) for logical_id in keep))
        self.say(f"{stack}: deleted")
        if purge.say_retained(self, keep, ids):  # make purge frees them all, once it finds each is still the stack's
            self.retained_layers.append(layer_name)
        if "AWS::Route53::HostedZone" in keep.values():
            self.say("  to keep using the retained hosted zone, set ExistingHostedZoneId to its id before deploying cert-dns again")
