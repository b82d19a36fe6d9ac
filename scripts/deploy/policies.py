"""The stack policies an --allow-replace update relaxes, and putting them back.

A run stopped while an --allow-replace update runs (Ctrl-C, a closed terminal, the network) leaves
the stack policy relaxed once CloudFormation finishes, and DescribeStacks does not show a policy:
an SSM parameter per layer marks it from before the policy is relaxed until it is put back, so
that the next deploy of that layer puts it back first, whatever it then does."""

import json
import shlex

from botocore.exceptions import ClientError

import templates
from scripts.deploy.aws import AWS_ERRORS, PARAMETER_NOT_FOUND, checked_pages, error_code, may_have_landed
from scripts.deploy.status import UPDATABLE
from templates.generation import ALLOW_EVERY_UPDATE

# The policy an --allow-replace update runs under: "Update:*" on every resource, replacements too.
ALLOW_ALL_POLICY = {"Statement": [ALLOW_EVERY_UPDATE]}


class StackPolicies:
    """Relaxing a layer's stack policy for one update and putting it back, with its mark (RelaxedPolicyMarks)
    written before and deleted after, so that a run stopped in between leaves the next deploy to put it back."""

    def __init__(self, client, marks, describe, say, cli):
        # client(service) and marks(): the run's, made when first used (an error's hint makes none);
        # describe(stack): the run's DescribeStacks entry of a stack, None when it is not deployed
        self.client, self.marks_of_the_run, self.describe, self.say, self.cli = client, marks, describe, say, cli
        self.relaxed = None  # the layer whose stack policy this run relaxed, until put back
        self.unanswered = None  # the name of the layer whose relaxing SetStackPolicy got no answer

    @property
    def cf(self):
        return self.client("cloudformation")

    @property
    def marks(self) -> "RelaxedPolicyMarks":
        return self.marks_of_the_run()

    def relax(self, layer):
        self.say(f"{layer.stack}: stack policy relaxed for this update (--allow-replace)")
        self.marks.mark(layer.name)
        # Before the call: one that gets no answer may have relaxed it, even after a restore.
        self.relaxed, self.unanswered = layer, layer.name
        try:
            self.cf.set_stack_policy(StackName=layer.stack, StackPolicyBody=json.dumps(ALLOW_ALL_POLICY))
        except ClientError as error:
            if not may_have_landed(error):
                self.relaxed = self.unanswered = None  # refused: the policy is as it was
                self.marks.clear(layer.name)
            raise
        self.unanswered = None

    def restore(self, layer):
        self.cf.set_stack_policy(StackName=layer.stack, StackPolicyBody=json.dumps(layer.policy, sort_keys=True))
        self.relaxed = None
        # A relaxing call that got no answer may land after this: its mark stays for the next deploy.
        if self.unanswered != layer.name:
            self.marks.clear(layer.name)

    def put_back_if_marked(self, layer):
        """Put back the stack policy a stopped run left relaxed, once the stack has settled (make execute does
        not wait for that), before this run changes it."""
        found = self.describe(layer.stack)
        if not (found and found["StackStatus"] in UPDATABLE and layer.name in self.marks):
            return
        if not layer.policy:  # its template has none now: the stack's allow-all is what none is, and the mark said otherwise for good
            self.marks.clear(layer.name)
            return
        self.restore(layer)
        self.say(f"{layer.stack}: its stack policy, relaxed by a run stopped during an --allow-replace update, put back")

    def undo_step(self, layer) -> tuple | None:
        """For Deployer.undo: (what putting the policy back says, how, what to say if it may be left), if this
        run relaxed the layer's."""
        if self.relaxed is not layer:
            return None
        done = "stack policy put back"
        if self.unanswered == layer.name:
            done += " (the call that relaxed it got no answer and may still land: its mark stays, and the next deploy of the layer puts it back again)"
        return (done, lambda: self.restore(layer), self.still_relaxed().strip())

    def still_relaxed(self) -> str:
        """A line for an error that stops the run while the policy is relaxed: the command that puts it back."""
        layer = self.relaxed
        if not layer:
            return ""
        return (
            f"\n  the stack policy is still relaxed (--allow-replace); restore it once the stack settles: {self.cli()} cloudformation set-stack-policy "
            f"--stack-name {layer.stack} --stack-policy-body {shlex.quote(json.dumps(layer.policy or ALLOW_ALL_POLICY))}"
        )


class RelaxedPolicyMarks:
    """The marks of one environment, /<project>/<env>/relaxed-stack-policy/<layer>, as this run read
    and wrote them (`layer in marks`)."""

    def __init__(self, ssm, env, now, say, cli):
        self.ssm, self.now, self.say, self.cli = ssm, now, say, cli
        self.prefix = templates.deploy_parameter(env, templates.RELAXED_POLICY_MARKS) + "/"
        self.layers = set()
        self.was_read = False  # read once a run: make diff asks for every layer whose policy is relaxed

    def __contains__(self, layer_name) -> bool:
        return layer_name in self.layers

    def mark(self, layer_name):
        self.ssm.put_parameter(
            Name=self.prefix + layer_name,
            Value=f"{self.now():%Y-%m-%dT%H:%M:%SZ}",
            Type="String",
            Overwrite=True,
            Description="scripts/deploy relaxed this layer's stack policy for an --allow-replace update, and has not put it back yet",
        )
        self.layers.add(layer_name)

    def clear(self, layer_name):
        """The layer's mark, if this run wrote or read one, deleted. Best effort: a mark left only makes
        the next deploy of the layer put the policy back again."""
        if layer_name not in self.layers:
            return
        name = self.prefix + layer_name
        try:
            self.ssm.delete_parameter(Name=name)
        except AWS_ERRORS as error:
            code = error_code(error)
            if code != PARAMETER_NOT_FOUND:
                self.say(f"  note: {name} could not be deleted ({code}): {self.cli()} ssm delete-parameter --name {name}")
        self.layers.discard(layer_name)

    def read(self, no_answer_is_a_note=False):
        """Read once a run, with the lock taken (no other run relaxes one meanwhile), and by make
        status. Best effort against an answer refusing it (AccessDenied): unread, the run goes on and
        puts back no policy. No answer (none reached, none in time, no credentials) stops the run
        here: the next call would fail the same way, after a second round of retries; unless
        no_answer_is_a_note (make status, which reads them after CloudFormation answered)."""
        self.was_read = True
        # GetParametersByPath is authorised on the path asked for, without the last /: "it authorizes against
        # the path in the request rather than against the parameters it returns".
        # https://docs.aws.amazon.com/systems-manager/latest/userguide/ps-retrieval-authorization.html
        pages = checked_pages(
            self.ssm.get_paginator("get_parameters_by_path").paginate(Path=self.prefix.rstrip("/")), "GetParametersByPath"
        )
        noted = AWS_ERRORS if no_answer_is_a_note else ClientError
        try:
            names = [parameter["Name"] for page in pages for parameter in page.get("Parameters", [])]
        except noted as error:
            code = error_code(error)
            self.say(f"  note: the relaxed-policy marks ({self.prefix}) could not be read ({code})")
            return
        for name in names:
            layer = name.removeprefix(self.prefix)
            if layer in templates.LAYERS:
                self.layers.add(layer)
            else:
                self.say(f"note: {name} marks no layer of this project; delete it: {self.cli()} ssm delete-parameter --name {name}")
