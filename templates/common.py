"""Small helpers every layer uses."""

from troposphere import Output, Template

RETAIN = {"DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain"}


def new_template(description: str) -> Template:
    template = Template(Description=description)
    template.set_version("2010-09-09")
    return template


def add_outputs(template: Template, outputs: dict) -> None:
    """outputs: logical name -> (value, description)."""
    for name, (value, description) in outputs.items():
        template.add_output(Output(name, Value=value, Description=description))


def skip_checkov(*checks) -> dict:
    """Resource metadata that skips checkov checks; each entry is (check id, reason)."""
    return {"checkov": {"skip": [{"id": check, "comment": reason} for check, reason in checks]}}
