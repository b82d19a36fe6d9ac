from templates.errors import ToolError


class Failure(ToolError):
    """Stops the run: main() prints the message as it is (it says "error:" where it is one), the
    code is the exit status."""

    prefix = ""


class StoppedWaiting(Failure):
    """Ctrl-C stopped a wait on a stack operation, which CloudFormation carries on (text.interrupted's lines): main adds
    what the command leaves to do, where the same command goes on."""


class UpstreamsNotDeployed(Failure):
    """A layer reads the outputs of layers that are not deployed (Deployer.wired_parameters)."""


class Refused(Failure):
    """A guard (scripts/deploy/guards.py) refused a change set or a create before it ran, for what the values it was made
    with change."""


class RefusedAhead(Failure):
    """A look at the layers a run deploys next (names that destroyed stacks retained, names a rename
    takes) refused the run at a layer, before its change set was made."""
