"""The GitHub Actions workflows: actionlint, and the properties that matter for a safe deploy."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import ROOT

WORKFLOWS = ROOT / ".github" / "workflows"
DEPLOY = WORKFLOWS / "deploy-service.yml"
TEMPLATES = WORKFLOWS / "templates.yml"
PINNED = re.compile(r"^\s*(?:-\s+)?uses:\s+(?P<action>[\w.-]+/[\w./-]+)@(?P<sha>[0-9a-f]{40})\s+#\s+v\d+(\.\d+)*\s*$")
INPUTS = ("environment", "image_tag", "action")


def actionlint() -> str:
    """The actionlint command of the virtualenv running the tests (pinned in requirements.txt)."""
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    found = shutil.which("actionlint", path=path)
    if found is None:
        pytest.fail("actionlint is not installed: `make venv` installs the pinned package that ships it (requirements.txt)")
    return found


def load(path):
    workflow = yaml.safe_load(path.read_text())
    # YAML 1.1 reads the key `on` as True.
    workflow["on"] = workflow.pop(True, workflow.get("on"))
    return workflow


@pytest.fixture(scope="module")
def deploy():
    return load(DEPLOY)


@pytest.fixture(scope="module")
def checks():
    return load(TEMPLATES)


def steps(workflow):
    return [(job_name, step) for job_name, job in workflow["jobs"].items() for step in job.get("steps", [])]


def uses(workflow, action):
    return [step for _, step in steps(workflow) if step.get("uses", "").startswith(action + "@")]


def test_actionlint_finds_nothing():
    result = subprocess.run([actionlint(), "-no-color", "-oneline", str(DEPLOY), str(TEMPLATES)], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_reports_a_real_problem(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text(DEPLOY.read_text().replace("${{ inputs.environment }}", "${{ inputs.enviroment }}", 1))
    result = subprocess.run([actionlint(), "-no-color", "-oneline", str(broken)], capture_output=True, text=True)
    assert result.returncode == 1 and "enviroment" in result.stdout, result.stdout + result.stderr


@pytest.mark.parametrize("path", [DEPLOY, TEMPLATES], ids=lambda p: p.name)
def test_every_action_is_pinned_by_commit_with_its_version(path):
    lines = [line for line in path.read_text().splitlines() if re.match(r"^\s*(-\s+)?uses:", line)]
    assert lines
    for line in lines:
        assert PINNED.match(line), f"{path.name}: not pinned by a full commit SHA with `# vX.Y.Z`: {line.strip()}"


def test_the_same_action_has_the_same_pin_everywhere():
    pins = {}
    for path in (DEPLOY, TEMPLATES):
        for line in path.read_text().splitlines():
            match = PINNED.match(line)
            if match:
                pins.setdefault(match["action"], set()).add(line.split("@", 1)[1].strip())
    assert set(pins) == {"actions/checkout", "actions/setup-python", "aws-actions/configure-aws-credentials"}
    assert all(len(pin) == 1 for pin in pins.values()), pins


def test_id_token_write_only_in_the_jobs_that_call_aws(deploy, checks):
    for workflow in (deploy, checks):
        assert workflow["permissions"] == {"contents": "read"}
    assert "permissions" not in deploy["jobs"]["test"]
    for name in ("deploy", "verify"):
        assert deploy["jobs"][name]["permissions"] == {"id-token": "write", "contents": "read"}
    for workflow in (deploy, checks):
        for name, job in workflow["jobs"].items():
            granted = job.get("permissions", {})
            writes = {scope for scope, level in granted.items() if level == "write"}
            assert writes <= ({"id-token"} if uses({"jobs": {name: job}}, "aws-actions/configure-aws-credentials") else set()), name


def test_aws_access_is_oidc_only(deploy):
    text = DEPLOY.read_text()
    assert "secrets." not in text and "aws-access-key-id" not in text and "aws-secret-access-key" not in text
    credentials = uses(deploy, "aws-actions/configure-aws-credentials")
    assert len(credentials) == 2
    for step in credentials:
        assert step["with"]["role-to-assume"] == "${{ vars.AWS_DEPLOY_ROLE_ARN }}"
        assert step["with"]["aws-region"] == "${{ vars.AWS_REGION }}"
    assert "secrets" not in deploy["on"]["workflow_call"]


def test_one_deploy_per_environment_never_cancelled(deploy):
    assert deploy["concurrency"] == {"group": "deploy-${{ inputs.environment }}", "cancel-in-progress": False}
    assert all("concurrency" not in job for job in deploy["jobs"].values())


def test_deploy_and_verify_run_in_the_github_environment(deploy):
    jobs = deploy["jobs"]
    assert jobs["deploy"]["needs"] == "test"
    assert jobs["verify"]["needs"] == "deploy"
    for name in ("deploy", "verify"):
        assert jobs[name]["environment"] == "${{ inputs.environment }}"
    assert "environment" not in jobs["test"]


def test_manual_and_called_runs_take_the_same_inputs(deploy):
    dispatch = deploy["on"]["workflow_dispatch"]["inputs"]
    call = deploy["on"]["workflow_call"]["inputs"]
    assert tuple(dispatch) == tuple(call) == INPUTS
    assert dispatch["environment"]["type"] == "choice" and dispatch["environment"]["options"] == ["staging", "prod"]
    assert dispatch["action"]["type"] == "choice" and dispatch["action"]["options"] == ["deploy", "rollback"]
    assert dispatch["image_tag"]["type"] == "string"
    # workflow_call has no choice type: the same inputs as strings, checked by the first step.
    assert all(call[name]["type"] == "string" for name in INPUTS)
    for name in INPUTS:
        assert dispatch[name].get("default") == call[name].get("default"), name
        assert dispatch[name]["required"] == call[name]["required"], name
    assert dispatch["environment"]["required"] and "default" not in dispatch["environment"]
    assert dispatch["image_tag"]["required"] and "default" not in dispatch["image_tag"]
    assert dispatch["action"]["default"] == "deploy"
    checks = deploy["jobs"]["test"]["steps"][0]["run"]
    assert "staging|prod)" in checks and "deploy|rollback)" in checks


def test_inputs_reach_scripts_only_through_the_environment(deploy):
    for job_name, step in steps(deploy):
        assert "${{" not in step.get("run", ""), f"{job_name}: {step.get('name')}: an expression inside a script"
    assert deploy["env"]["DEPLOY_ENV"] == "${{ inputs.environment }}"
    assert deploy["env"]["IMAGE_TAG"] == "${{ inputs.image_tag }}"
    assert deploy["env"]["DEPLOY_ACTION"] == "${{ inputs.action }}"


def test_jobs_run_make_non_interactively_and_keep_the_output(deploy):
    runs = {job: [s.get("run", "") for s in deploy["jobs"][job]["steps"]] for job in deploy["jobs"]}
    assert any(r.strip() == "make test 2>&1 | tee test.log" for r in runs["test"])
    deploy_script = next(r for r in runs["deploy"] if "make deploy" in r)
    assert 'make deploy STACK=service ENV="$DEPLOY_ENV" TAG="$IMAGE_TAG" YES=1 2>&1 | tee deploy.log' in deploy_script
    assert 'make rollback STACK=service ENV="$DEPLOY_ENV" TAG="$IMAGE_TAG" YES=1 2>&1 | tee deploy.log' in deploy_script
    assert any('make verify STACK=service ENV="$DEPLOY_ENV"' in r for r in runs["verify"])
    # bash -eo pipefail: `make ... | tee` fails when make fails.
    assert deploy["defaults"]["run"]["shell"] == "bash"


def test_a_failure_is_told_in_the_job_summary_with_the_failed_events(deploy):
    for name in ("test", "deploy", "verify"):
        last = deploy["jobs"][name]["steps"][-1]
        assert last["if"] == "failure()"
        assert '>> "$GITHUB_STEP_SUMMARY"' in last["run"]
    for name, log in (("deploy", "deploy.log"), ("verify", "verify.log")):
        summary = deploy["jobs"][name]["steps"][-1]["run"]
        assert f"tail -n 80 {log}" in summary or f"tail -n 60 {log}" in summary
        assert 'make --no-print-directory status ENV="$DEPLOY_ENV"' in summary
        assert 'make --no-print-directory events STACK=service ENV="$DEPLOY_ENV"' in summary


def test_checkouts_hold_no_credentials_and_deploys_run_this_repository(deploy, checks):
    for workflow in (deploy, checks):
        for step in uses(workflow, "actions/checkout"):
            assert step["with"]["persist-credentials"] is False
    for step in uses(deploy, "actions/checkout"):
        # Called from the application repository, github.repository is the caller's.
        assert step["with"]["repository"] == "${{ job.workflow_repository }}"
        assert step["with"]["ref"] == "${{ job.workflow_sha }}"


def test_python_311_with_pip_cache(deploy, checks):
    for workflow in (deploy, checks):
        for step in uses(workflow, "actions/setup-python"):
            assert step["with"] == {"python-version": "3.11", "cache": "pip", "cache-dependency-path": "requirements.txt"}


def test_templates_workflow_fails_on_stale_output(checks):
    assert set(checks["on"]) == {"pull_request", "push"}
    assert checks["on"]["push"] == {"branches": ["main"]}
    runs = [step.get("run", "").strip() for _, step in steps(checks)]
    scripts = [r for r in runs if r]
    assert scripts[0] == "make test" and scripts[1] == "make templates"
    assert "git diff --exit-code -- output/" in scripts[2]
    assert "::error title=output/ is stale::" in scripts[2] and "Run make templates and commit output/" in scripts[2]
