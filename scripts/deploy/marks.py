"""The layers whose stack policy a stopped --allow-replace run left relaxed.

A run stopped while an --allow-replace update runs (Ctrl-C, a closed terminal, the network) leaves
the stack policy relaxed once CloudFormation finishes, and DescribeStacks does not show a policy:
an SSM parameter per layer marks it from before the policy is relaxed until it is put back, so
that the next deploy of that layer puts it back first, whatever it then does."""

from botocore.exceptions import ClientError

import templates
from scripts.deploy.aws import AWS_ERRORS, checked_pages, error_code


class RelaxedPolicyMarks:
    """The marks of one environment, /<project>/<env>/relaxed-stack-policy/<layer>, as this run read
    and wrote them (`layer in marks`)."""

    def __init__(self, ssm, env, now, say, cli):
        self.ssm, self.now, self.say, self.cli = ssm, now, say, cli
        self.prefix = f"/{templates.PROJECT}/{env}/relaxed-stack-policy/"
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
            if code != "ParameterNotFound":
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
