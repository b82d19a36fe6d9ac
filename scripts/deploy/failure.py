from templates.errors import ToolError


class Failure(ToolError):
    """Stops the run: main() prints the message as it is (it says "error:" where it is one), the
    code is the exit status."""

    prefix = ""
