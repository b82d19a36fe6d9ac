"""The GitHub Actions workflows: actionlint; the properties that matter for a safe deploy (pinned
actions, permissions, OIDC, concurrency, environments, inputs); and that what the steps run can
work: the make targets and variables exist, the deployer gets its execution role, the input check
is the templates' pattern, the failure summary names the cause. Step scripts run under bash as
GitHub runs them, with `make` replaced by a stub that records its calls."""

import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from conftest import ROOT
from packaging.specifiers import SpecifierSet

import templates
from scripts import deploy as deployer
from scripts.deploy import tasks
from templates import inputs

WORKFLOWS = ROOT / ".github" / "workflows"
DEPLOY = WORKFLOWS / "deploy-service.yml"
TEMPLATES = WORKFLOWS / "templates.yml"
PINNED = re.compile(r"^\s*(?:-\s+)?uses:\s+(?P<action>[\w.-]+/[\w./-]+)@(?P<sha>[0-9a-f]{40})\s+#\s+v\d+(\.\d+)*\s*$")
INPUTS = ("environment", "image_tag", "action", "run_migrations")
ROLE = "arn:aws:iam::123456789012:role/ci/startupwebapp-cloudformation"
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
# A make command in a script: at a line's start or after ; & | (not inside an echo), then its
# options, VAR=value assignments and targets up to the first other word (2>&1, |, ...).
MAKE = re.compile(r"(?:^|[;&|])[ \t]*make((?:[ \t]+(?:-[\w-]+|[A-Z_]+=(?:\"[^\"]*\"|[^\s\"|;&]+)|[a-z][\w-]*))*)", re.M)


def actionlint() -> str:
    """The actionlint command of the virtualenv running the tests (pinned in requirements.txt)."""
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    found = shutil.which("actionlint", path=path)
    if found is None:
        pytest.fail("actionlint is not installed: `make venv` installs the pinned package that ships it (requirements.txt)")
    return found


def load(text):
    workflow = yaml.safe_load(text)
    # YAML 1.1 reads the key `on` as True.
    workflow["on"] = workflow.pop(True, workflow.get("on"))
    return workflow


# The workflow runs below deploy its first environment choice (staging today): whichever it is.
CHOICES = load(DEPLOY.read_text())["on"]["workflow_dispatch"]["inputs"]["environment"]["options"]
ENVIRONMENT = CHOICES[0]


@pytest.fixture(scope="module")
def deploy():
    return load(DEPLOY.read_text())


@pytest.fixture(scope="module")
def checks():
    return load(TEMPLATES.read_text())


def steps(workflow):
    return [(job_name, step) for job_name, job in workflow["jobs"].items() for step in job.get("steps", [])]


def uses(workflow, action):
    return [step for _, step in steps(workflow) if step.get("uses", "").startswith(action + "@")]


def step_running(workflow, job, text):
    (step,) = [step for step in workflow["jobs"][job]["steps"] if text in step.get("run", "")]
    return step


def makefile() -> dict[str, set[str]]:
    """Makefile target -> the variables its recipe reads, directly or through the variables it expands."""
    text = (ROOT / "Makefile").read_text().replace("\\\n", " ")

    def read(value):
        return set(re.findall(r"\$[({](?:value )?(\w+)", value))  # $(NAME), and $(value NAME): NAME as given

    variables = {m[1]: read(m[2]) for m in re.finditer(r"^(\w+)[ \t]*[:?+]?=(.*)$", text, re.M)}
    targets = {}
    for rule in re.finditer(r"^([a-z][\w-]*):(?!=).*\n((?:\t.*\n?)*)", text, re.M):
        found, pending = set(), read(rule[2])
        while pending:
            name = pending.pop()
            if name not in found:
                found.add(name)
                pending |= variables.get(name, set())
        targets[rule[1]] = found
    return targets


def make_commands(workflow) -> list[list[str]]:
    """The arguments of every make command in the workflow's scripts, options left out."""
    return [
        [word for word in shlex.split(match[1]) if not word.startswith("-")]
        for _, step in steps(workflow)
        for match in MAKE.finditer(step.get("run", ""))
    ]


def make_problems(workflow) -> list[str]:
    targets = makefile()
    problems = []
    for words in make_commands(workflow):
        names = [word for word in words if "=" not in word]
        passed = {word.split("=", 1)[0] for word in words if "=" in word}
        if not names:
            problems.append(f"make {' '.join(words)}: no target (make would print its help)")
        for name in names:
            if name not in targets:
                problems.append(f"make {name}: the Makefile has no such target")
            else:
                problems += [f"make {name}: the Makefile does not read {variable} for it" for variable in sorted(passed - targets[name])]
    return problems


def context(**changes):
    """Values of the ${{ }} expressions the step environments use: a deploy to ENVIRONMENT by default."""
    values = {
        "inputs.environment": ENVIRONMENT,
        "inputs.image_tag": "v1.2.3",
        "inputs.action": "deploy",
        "inputs.run_migrations": "false",
        "vars.CFN_EXECUTION_ROLE_ARN": ROLE,
        "steps.credentials.outcome": "success",
    }
    return values | {name.replace("__", "."): value for name, value in changes.items()}


def run_step(workflow, job, step, tmp_path, values, make_exit=0, earlier_steps_set=None):
    """Run a step's script as GitHub does under `shell: bash` (bash -eo pipefail), in tmp_path, with
    the workflow's, job's and step's env (expressions looked up in values), what earlier steps wrote
    to $GITHUB_ENV (earlier_steps_set) and nothing else from this process's environment.
    (result, make calls as {"args", "env"}, the step summary)."""
    env = {**(workflow.get("env") or {}), **(workflow["jobs"][job].get("env") or {}), **(step.get("env") or {})}
    env = {name: EXPRESSION.sub(lambda m: values[m[1]], str(value)) for name, value in env.items()}
    env |= (earlier_steps_set or {}) | {"GITHUB_ENV": str(tmp_path / "github-env")}
    stub = tmp_path / "bin" / "make"
    stub.parent.mkdir(exist_ok=True)
    (tmp_path / "bin" / "make.py").write_text(
        "import json, os, sys\n"
        "print('stub make', *sys.argv[1:])\n"
        "with open(os.environ['MAKE_CALLS'], 'a') as calls:\n"
        "    calls.write(json.dumps({'args': sys.argv[1:], 'env': dict(os.environ)}) + '\\n')\n"
        f"sys.exit({make_exit})\n"
    )
    # Through sh: a #! line cannot name an interpreter whose path holds a space.
    stub.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} "$0.py" "$@"\n')
    stub.chmod(0o755)
    calls, summary, script = tmp_path / "make-calls", tmp_path / "summary.md", tmp_path / "step.sh"
    script.write_text(step["run"])
    (tmp_path / ".github").mkdir(exist_ok=True)  # the checkout's files the steps source
    shutil.copy(ROOT / ".github" / "stop-workflow-commands.sh", tmp_path / ".github")
    env |= {"PATH": f"{stub.parent}{os.pathsep}/usr/bin:/bin", "MAKE_CALLS": str(calls), "GITHUB_STEP_SUMMARY": str(summary)}
    command = ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)]
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    made = [json.loads(line) for line in calls.read_text().splitlines()] if calls.exists() else []
    return result, made, summary.read_text() if summary.exists() else ""


def test_actionlint_finds_nothing():
    result = subprocess.run(
        [actionlint(), "-no-color", "-oneline", str(DEPLOY), str(TEMPLATES)], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_reports_a_real_problem(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text(DEPLOY.read_text().replace("${{ inputs.environment }}", "${{ inputs.enviroment }}", 1))
    result = subprocess.run([actionlint(), "-no-color", "-oneline", str(broken)], capture_output=True, text=True, timeout=60)
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
    # queue: max: a rollback pending behind a deploy is not cancelled by the next run queued (GitHub keeps one pending otherwise)
    assert deploy["concurrency"] == {"group": "deploy-${{ inputs.environment }}", "cancel-in-progress": False, "queue": "max"}
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
    choices = dispatch["environment"]["options"]  # the environments in params/ that GitHub deploys (README: Environments)
    assert dispatch["environment"]["type"] == "choice" and choices and "sandbox" not in choices and len(set(choices)) == len(choices)
    assert dispatch["action"]["type"] == "choice" and dispatch["action"]["options"] == ["deploy", "rollback"]
    assert dispatch["image_tag"]["type"] == "string"
    # workflow_call has no choice type: the same inputs as strings, checked by the first step.
    assert all(call[name]["type"] == "string" for name in INPUTS if name != "run_migrations")
    assert dispatch["run_migrations"]["type"] == call["run_migrations"]["type"] == "boolean"
    assert dispatch["run_migrations"]["default"] is False
    for name in INPUTS:
        assert dispatch[name].get("default") == call[name].get("default"), name
        assert dispatch[name]["required"] == call[name]["required"], name
    assert dispatch["environment"]["required"] and "default" not in dispatch["environment"]
    assert dispatch["image_tag"]["required"] and "default" not in dispatch["image_tag"]
    assert dispatch["action"]["default"] == "deploy"


def test_inputs_reach_scripts_only_through_the_environment(deploy):
    for job_name, step in steps(deploy):
        assert "${{" not in step.get("run", ""), f"{job_name}: {step.get('name')}: an expression inside a script"
    assert deploy["env"]["DEPLOY_ENV"] == "${{ inputs.environment }}"
    assert deploy["env"]["IMAGE_TAG"] == "${{ inputs.image_tag }}"
    assert deploy["env"]["DEPLOY_ACTION"] == "${{ inputs.action }}"
    assert deploy["env"]["RUN_MIGRATIONS"] == "${{ inputs.run_migrations }}"


def test_every_make_command_is_a_makefile_target_with_variables_it_reads(deploy, checks):
    found = {word for workflow in (deploy, checks) for words in make_commands(workflow) for word in words if "=" not in word}
    assert found == {"test", "check", "venv", "deploy", "rollback", "verify", "status", "events", "task"}
    assert make_problems(deploy) == [] and make_problems(checks) == []


@pytest.mark.parametrize(
    "old, new, problem",
    [
        ("make deploy STACK", "make deploy-service STACK", "make deploy-service: the Makefile has no such target"),
        (
            'make verify STACK=service ENV="$DEPLOY_ENV"',
            'make verify SERVICE=service ENV="$DEPLOY_ENV"',
            "make verify: the Makefile does not read SERVICE",
        ),
        ("events STACK=service", "events STACK=service TIMEOUT=5", "make events: the Makefile does not read TIMEOUT"),
    ],
)
def test_the_make_check_notices_a_wrong_target_or_variable(old, new, problem):
    text = DEPLOY.read_text()
    assert old in text
    problems = make_problems(load(text.replace(old, new)))
    assert any(p.startswith(problem) for p in problems), problems


def test_a_shell_pipe_fails_the_step_when_make_fails(deploy, checks, tmp_path):
    # shell: bash is bash -eo pipefail; GitHub's default shell has no pipefail and `make | tee` would pass.
    for workflow in (deploy, checks):
        assert workflow["defaults"]["run"]["shell"] == "bash"
    step = step_running(deploy, "deploy", "make deploy")
    result, made, _ = run_step(deploy, "deploy", step, tmp_path, context(), make_exit=2)
    assert len(made) == 1 and result.returncode != 0


@pytest.mark.parametrize("action", ["deploy", "rollback"])
def test_the_deployer_runs_non_interactively_with_the_execution_role(deploy, tmp_path, monkeypatch, action):
    step = step_running(deploy, "deploy", "make deploy")
    result, made, _ = run_step(deploy, "deploy", step, tmp_path, context(inputs__action=action))
    assert result.returncode == 0, result.stdout + result.stderr
    (call,) = made
    assert call["args"] == [action, "STACK=service", f"ENV={ENVIRONMENT}", "TAG=v1.2.3", "YES=1"]
    assert (tmp_path / "deploy.log").read_text() == f"stub make {' '.join(call['args'])}\n"
    # The deployer reads the role from its environment; the ci layer's deploy role may create
    # change sets only with it.
    monkeypatch.setenv("CFN_EXECUTION_ROLE_ARN", call["env"]["CFN_EXECUTION_ROLE_ARN"])
    assert deployer.parse([action, "--env", ENVIRONMENT]).role_arn == ROLE


def test_migrations_run_as_a_one_off_task_before_the_service_update_only_when_asked(deploy, tmp_path):
    steps_of_deploy = deploy["jobs"]["deploy"]["steps"]
    migrate = step_running(deploy, "deploy", "make task ENV=")
    assert steps_of_deploy.index(migrate) == steps_of_deploy.index(step_running(deploy, "deploy", "make deploy")) - 1
    assert "if" not in migrate  # the default success(): the deploy step runs only after migrations that passed (or were not asked for)
    result, made, _ = run_step(deploy, "deploy", migrate, tmp_path, context(inputs__run_migrations="true"))
    assert result.returncode == 0, result.stdout + result.stderr
    # TAG=: the migrations of the image about to be deployed, not of the one the service runs
    assert [call["args"] for call in made] == [
        ["task", f"ENV={ENVIRONMENT}", "TAG=v1.2.3", "CMD=python manage.py migrate --noinput", "YES=1"]
    ]
    assert (tmp_path / "migrate.log").read_text().startswith(f"stub make task ENV={ENVIRONMENT} TAG=v1.2.3")
    # The container runs exactly these words (split as a shell does: tests/test_task.py); TAG= is --image-tag.
    parsed = deployer.parse(["task", "--env", ENVIRONMENT, "--cmd", made[0]["args"][3].removeprefix("CMD="), "--image-tag", "v1.2.3"])
    assert (tasks.parse_command(parsed.cmd), parsed.image_tag) == (["python", "manage.py", "migrate", "--noinput"], "v1.2.3")


@pytest.mark.parametrize("changes", [{}, {"inputs__run_migrations": "true", "inputs__action": "rollback"}])
def test_no_migrations_unless_asked_for_and_never_on_a_rollback(deploy, tmp_path, changes):
    result, made, _ = run_step(deploy, "deploy", step_running(deploy, "deploy", "make task ENV="), tmp_path, context(**changes))
    assert result.returncode == 0 and made == [] and result.stdout.startswith("migrations: not run")


def test_a_failing_migration_fails_the_step_and_the_summary_shows_it(deploy, tmp_path):
    migrate = step_running(deploy, "deploy", "make task ENV=")
    result, made, _ = run_step(deploy, "deploy", migrate, tmp_path, context(inputs__run_migrations="true"), make_exit=1)
    assert len(made) == 1 and result.returncode == 1
    result, _, summary = run_step(deploy, "deploy", deploy["jobs"]["deploy"]["steps"][-1], tmp_path, context())
    assert result.returncode == 0 and "### Migrations, make task (last 60 lines)" in summary and "stub make task" in summary


def test_the_deploy_stops_before_the_migrations_without_the_execution_role(deploy, tmp_path):
    # Checked after the deploy step's make task had run the new release's migrations on the database: the deploy then
    # failed, and the summary said "Nothing was deployed" without the migrations' output.
    steps = deploy["jobs"]["deploy"]["steps"]
    (check,) = [step for step in steps if step.get("name") == "vars.CFN_EXECUTION_ROLE_ARN"]
    assert steps.index(check) < steps.index(step_running(deploy, "deploy", "make task ENV=")), [s.get("name") for s in steps]
    assert "if" not in check, check  # a rollback's change sets take the role too (make rollback passes RoleARN)
    # An unset variable reads as "" in an expression.
    result, made, _ = run_step(deploy, "deploy", check, tmp_path, context(vars__CFN_EXECUTION_ROLE_ARN=""))
    assert result.returncode == 1 and made == []
    assert "::error title=vars.CFN_EXECUTION_ROLE_ARN is not set::" in result.stdout
    assert "CloudFormationExecutionRoleArn" in result.stdout
    result, made, _ = run_step(deploy, "deploy", check, tmp_path, context())
    assert result.returncode == 0 and made == [], result.stdout + result.stderr


def test_the_image_tag_check_is_the_templates_pattern(deploy):
    script = deploy["jobs"]["test"]["steps"][0]["run"]
    (pattern,) = re.findall(r'\[\[ "\$IMAGE_TAG" =~ \^(\S+)\$ \]\]', script)
    assert pattern == inputs.IMAGE_TAG


def test_every_choice_passes_the_input_check_and_has_a_params_file(deploy, tmp_path):
    check = deploy["jobs"]["test"]["steps"][0]
    options = deploy["on"]["workflow_dispatch"]["inputs"]
    for environment in options["environment"]["options"]:
        assert (ROOT / "params" / f"{environment}.yaml").is_file(), (
            f"{environment}: a choice of .github/workflows/deploy-service.yml without params/{environment}.yaml; "
            "take a removed environment out of the workflow too (README: Remove an environment)"
        )
        for action in options["action"]["options"]:
            result, _, _ = run_step(deploy, "test", check, tmp_path, context(inputs__environment=environment, inputs__action=action))
            assert result.returncode == 0, result.stdout


def test_every_place_that_names_the_environments_names_the_choices(deploy):
    """An environment added to the choices alone would be refused by the input check, and described
    as not deployable: the README says to add it here, and this names each place it is missing from."""
    choices = deploy["on"]["workflow_dispatch"]["inputs"]["environment"]["options"]
    text = (ROOT / ".github" / "workflows" / "deploy-service.yml").read_text()
    said = " or ".join(choices)  # how the three lines in words name them: "staging or prod or qa"
    (pattern,) = re.findall(r'case "\$DEPLOY_ENV" in (\S+)\)', text)
    (example,) = re.findall(r"^#\s+environment: (\S+)$", text, re.MULTILINE)  # the header's example of a call
    places = {  # every place at once, not the first one missing
        "the case of the 'Check the inputs' step": pattern.split("|") == choices,
        f"the input check's error (::error::environment must be {said})": f"::error::environment must be {said}" in text,
        f"workflow_call's description (ending ({said}))": deploy["on"]["workflow_call"]["inputs"]["environment"]["description"].endswith(
            f"({said})"
        ),
        f"the file's first line (# Deploy (or roll back) the service layer to {said}.)": text.startswith(
            f"# Deploy (or roll back) the service layer to {said}."
        ),
        f"the header's example call (its environment: {example} is none of them)": example in choices,
    }
    missing = [place for place, names_them in places.items() if not names_them]
    assert not missing, f"the environment choices {choices} are missing from: " + "; ".join(missing)


def test_every_environment_the_workflow_deploys_is_a_subject_the_ci_roles_of_its_account_trust(deploy):
    # (helper Q4) The deploy and verify jobs name the chosen environment, so their token's subject is environment:<name>:
    # a choice no ci layer of its account trusts passed every check, and its runs would fail at the credentials step
    from templates.params import account_of, as_list, load_all

    environments = load_all(ROOT / "params")
    trusted = {
        (account_of(ci), subject.removeprefix("environment:"))
        for ci in environments
        if ci.deploys("ci")
        for subject in as_list(ci.values["GitHubSubjects"])
        if subject.startswith("environment:")
    }
    by_name = {environment.name: environment for environment in environments}
    choices = deploy["on"]["workflow_dispatch"]["inputs"]["environment"]["options"]
    untrusted = [name for name in choices if (account_of(by_name[name]), name) not in trusted]
    assert not untrusted, (
        f"the workflow deploys {untrusted}, whose environment:<name> subject no ci layer of its account lists in GitHubSubjects "
        "(README: Add an environment)"
    )


@pytest.mark.parametrize(
    "changes, refused",
    [
        ({"inputs__environment": "sandbox"}, f"environment must be {' or '.join(CHOICES)}"),
        ({"inputs__action": "destroy"}, "action must be deploy or rollback"),
        ({"inputs__image_tag": "-v1"}, "is not a Docker image tag"),
        ({"inputs__image_tag": "v1; make destroy"}, "is not a Docker image tag"),
        ({"inputs__image_tag": "v" * 129}, "is not a Docker image tag"),
        ({"inputs__image_tag": ""}, "is not a Docker image tag"),
    ],
)
def test_a_called_run_with_a_bad_input_stops_at_the_first_step(deploy, tmp_path, changes, refused):
    # workflow_call has no choice type: this step is what refuses.
    result, _, _ = run_step(deploy, "test", deploy["jobs"]["test"]["steps"][0], tmp_path, context(**changes))
    assert result.returncode == 1 and result.stdout.startswith("::error::") and refused in result.stdout
    assert not (tmp_path / "github-env").exists()  # not marked as checked, for the summary


def test_a_refused_input_is_never_echoed_where_the_runner_or_the_summary_would_interpret_it(deploy, tmp_path):
    """A value holding a newline and a workflow command (or Markdown) is refused without being
    repeated, in the log (::warning would run) or in the job summary (a fake heading, a link)."""
    hostile = "v1\n::warning title=Approved::all clear\n# Deployed OK\n[Approve](https://evil.example)"
    test = deploy["jobs"]["test"]["steps"]
    result, _, _ = run_step(deploy, "test", test[0], tmp_path, context(inputs__image_tag=hostile))
    assert result.returncode == 1 and result.stdout == (
        f"::error::image_tag is not a Docker image tag (letters, digits, _ . -, not starting with . or -, at most 128; {len(hostile)} characters given)\n"
    )
    result, _, summary = run_step(deploy, "test", test[-1], tmp_path, context(inputs__image_tag=hostile))
    assert (
        result.returncode == 0 and "evil" not in summary and "Approved" not in summary and summary.startswith("## The inputs were refused")
    )
    checked = run_step(deploy, "test", test[-1], tmp_path, context(), earlier_steps_set={"INPUTS_CHECKED": "true"})[2]
    assert f"## deploy of service to {ENVIRONMENT} (v1.2.3): tests failed" in checked  # checked values are named


def test_no_dependency_is_installed_while_the_aws_credentials_exist(deploy):
    for job in ("deploy", "verify"):
        names = [step.get("name") or step.get("uses", "") for step in deploy["jobs"][job]["steps"]]
        assert names.index("make venv") < names.index("AWS credentials (OIDC)"), (job, names)


def test_what_the_deployer_prints_runs_no_workflow_command(deploy, tmp_path):
    """Its output quotes a migration's log, stack events and the service's answers: a line holding
    ::error or ##[ would be run by the runner, unless commands are stopped around it."""
    for job, name in (("deploy", "make task (migrations)"), ("deploy", "make ${{ inputs.action }}"), ("verify", "make verify")):
        step = next(step for step in deploy["jobs"][job]["steps"] if step.get("name") == name)
        script = step["run"]
        assert script.index(". .github/stop-workflow-commands.sh") < script.index("make "), name
    step = next(step for step in deploy["jobs"]["deploy"]["steps"] if step.get("name") == "make ${{ inputs.action }}")
    result, made, _ = run_step(deploy, "deploy", step, tmp_path, context())
    lines = result.stdout.splitlines()
    token = lines[0].removeprefix("::stop-commands::")
    assert len(token) >= 32 and lines[-1] == f"::{token}::" and made, lines  # stopped before make, started again at the end


@pytest.mark.parametrize(
    "job, changes, says, runs_make",
    [
        (
            "deploy",
            {"steps__credentials__outcome": "failure"},
            "No AWS credentials: check vars.AWS_DEPLOY_ROLE_ARN and vars.AWS_REGION",
            False,
        ),
        (
            "verify",
            {"steps__credentials__outcome": "failure"},
            "No AWS credentials: check vars.AWS_DEPLOY_ROLE_ARN and vars.AWS_REGION",
            False,
        ),
        # Skipped because checkout or setup-python failed: the outcome is empty.
        ("deploy", {"steps__credentials__outcome": ""}, "A step before the AWS credentials failed", False),
        ("verify", {"steps__credentials__outcome": ""}, "A step before the AWS credentials failed", False),
        ("deploy", {"vars__CFN_EXECUTION_ROLE_ARN": ""}, f"vars.CFN_EXECUTION_ROLE_ARN of the {ENVIRONMENT} environment is not set", False),
        ("deploy", {}, "### Latest events of the service stack (make events)", True),
        ("verify", {}, "### Latest events of the service stack (make events)", True),
    ],
)
def test_a_failure_summary_names_its_cause(deploy, tmp_path, job, changes, says, runs_make):
    last = deploy["jobs"][job]["steps"][-1]
    assert last["if"] == "failure()"
    result, made, summary = run_step(deploy, job, last, tmp_path, context(**changes))
    assert result.returncode == 0, result.stderr
    assert says in summary
    if runs_make:
        assert [call["args"] for call in made] == [
            ["--no-print-directory", "status", f"ENV={ENVIRONMENT}"],
            ["--no-print-directory", "events", "STACK=service", f"ENV={ENVIRONMENT}"],
        ]
        assert f"stub make --no-print-directory events STACK=service ENV={ENVIRONMENT}" in summary
    else:
        assert made == [] and "No AWS credentials" not in summary.replace(says, "")


def test_the_test_job_summary_says_nothing_was_deployed(deploy, tmp_path):
    (tmp_path / "test.log").write_text("FAILED tests/test_output.py\n")
    result, _, summary = run_step(deploy, "test", deploy["jobs"]["test"]["steps"][-1], tmp_path, context())
    assert result.returncode == 0 and "Nothing was deployed." in summary and "FAILED tests/test_output.py" in summary


def test_checkouts_hold_no_credentials_and_deploys_run_this_repository(deploy, checks):
    for workflow in (deploy, checks):
        for step in uses(workflow, "actions/checkout"):
            assert step["with"]["persist-credentials"] is False
    for step in uses(deploy, "actions/checkout"):
        # Called from the application repository, github.repository is the caller's.
        assert step["with"]["repository"] == "${{ job.workflow_repository }}"
        assert step["with"]["ref"] == "${{ job.workflow_sha }}"


def test_python_is_the_projects_and_the_pip_cache_key_exists(deploy, checks):
    required = SpecifierSet(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"])
    for workflow in (deploy, checks):
        for step in uses(workflow, "actions/setup-python"):
            assert step["with"]["python-version"] in required
            assert (ROOT / step["with"]["cache-dependency-path"]).is_file()


def test_every_pull_request_checks_output_and_runs_the_tests(checks):
    assert "pull_request" in checks["on"] and checks["on"]["push"] == {"branches": ["main"]}
    # make check (generate.py --check) also reports files no layer produces; make test the rest.
    assert make_commands(checks) == [["check"], ["test"]]


def test_the_deploy_job_its_credentials_and_the_deploy_role_last_as_long_as_the_params_checks_assume(deploy, layer):
    """templates.CI_DEPLOY_JOB_MINUTES is what templates/params.py keeps a release's waits inside."""
    import templates

    job = deploy["jobs"]["deploy"]
    assert job["timeout-minutes"] == templates.CI_DEPLOY_JOB_MINUTES
    (credentials,) = [step for step in job["steps"] if step.get("uses", "").startswith("aws-actions/configure-aws-credentials@")]
    assert credentials["with"]["role-duration-seconds"] == templates.CI_DEPLOY_JOB_MINUTES * 60
    assert layer["ci"]["Resources"]["DeployRole"]["Properties"]["MaxSessionDuration"] == templates.CI_DEPLOY_JOB_MINUTES * 60
    assert templates.CI_DEPLOY_JOB_MINUTES <= 360  # GitHub's hosted runners stop a job after 6 hours


def test_the_longest_release_the_params_accept_ends_inside_the_deploy_job(deploy):
    """Added up from each wait the job's steps make, not from templates/common.py's bound (MOST_RELEASE_WAIT_MINUTES): the job's
    time from the workflow, each wait's bound as the module that waits uses it, and the longest
    release the params check lets through, found by asking the check."""
    import templates
    from scripts.deploy import change_sets
    from templates.common import CI_JOB_STEPS_MINUTES
    from templates.params import traffic_shifting_problems

    for text in ("make task ENV=", "make deploy STACK=service"):
        assert "MAX_WAIT" not in step_running(deploy, "deploy", text)["run"]  # each waits its default bound

    values = {name: spec.default for name, spec in inputs.INPUTS.items()} | {"TestListenerCidr": "203.0.113.0/24"}

    def accepted(pause):
        given = values | {"DeploymentStrategy": "BLUE_GREEN", "BakeTimeMinutes": 0, "TestPauseMinutes": pause}
        return not traffic_shifting_problems(given, set(given))

    low, high = 0, inputs.INPUTS["TestPauseMinutes"].max_value
    assert accepted(low) and not accepted(high)
    while high - low > 1:  # the longest accepted pause, with nothing else to wait for
        middle = (low + high) // 2
        low, high = (middle, high) if accepted(middle) else (low, middle)
    # the service update's wait: its bound, the release's pause and the rollback alarms' watch after it
    update = templates.WAIT_MINUTES["service"] + low + values["RollbackMonitoringMinutes"]
    job = CI_JOB_STEPS_MINUTES + templates.TASK_WAIT_MINUTES + change_sets.CHANGE_SET_WAIT_MINUTES + update
    assert job <= deploy["jobs"]["deploy"]["timeout-minutes"]


def test_make_hands_each_value_to_the_deployer_as_one_word_whatever_it_holds(tmp_path):
    # A value with a space, a quote or a ; must reach the deployer whole, where it gets its one-line
    # error, and never split into other options or run as shell; one starting with "-" must stay a
    # value (argparse took `--image-tag -x` for a missing value and printed its own message). A `$`
    # is not make's either: TAG='v1$x' reached the deployer as v1, and $(shell ...) ran.
    ran = tmp_path / "ran"
    values = {"ENV": "./sand box", "STACK": "alb; echo hi", "TAG": "-bad$x!", "CHANGESET": f"it's $(shell touch {ran})", "MAX_WAIT": "-1 2"}
    made = subprocess.run(
        ["make", "-n", "--no-print-directory", "execute", *(f"{name}={value}" for name, value in values.items())],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    words = shlex.split(made.stdout.strip().splitlines()[-1].split("&&")[-1])
    options = {"ENV": "--env", "STACK": "--stack", "TAG": "--image-tag", "CHANGESET": "--changeset", "MAX_WAIT": "--max-wait"}
    given = dict(word.split("=", 1) for word in words if word.startswith("--") and "=" in word)
    assert {name: given[option] for name, option in options.items()} == values
    assert deployer.parse(words[3:]).image_tag == values["TAG"]  # read as the value, not as an option
    assert words[:4] == [".venv/bin/python", "-m", "scripts.deploy", "execute"]
    assert not ran.exists()


# A value each deployer target takes, given empty (STACK=$LAYER with LAYER unset), with a target that takes it
# and the option it becomes. CMD is always passed; UPGRADE is make lock's (an empty one upgrades nothing).
EMPTY_VALUES = {
    "STACK": ("destroy", "--stack"),  # left out, every layer
    "TAG": ("rollback", "--image-tag"),  # left out, the history's previous release
    "CHANGESET": ("status", "--changeset"),  # not execute's: there left out is refused with the same line
    "MAX_WAIT": ("deploy", "--max-wait"),
    "TIMEOUT": ("verify", "--timeout"),
    "CONNECT_TO": ("verify", "--connect-to"),  # left out, the checks go to the public host
    "CA_BUNDLE": ("verify", "--ca-bundle"),
    "ACTION": ("continue", "--action"),  # left out, CONTINUE
    "SINCE": ("logs", "--since"),
}


@pytest.mark.parametrize("name", EMPTY_VALUES)
def test_a_value_given_empty_reaches_the_deployer_which_refuses_it_and_one_left_out_does_not(name):
    makefile = (ROOT / "Makefile").read_text()
    valued = set(re.search(r"COMMAND_LINE_ONLY := ((?:\\\n|[^\n])+)", makefile).group(1).replace("\\", " ").split())
    switches = set(re.search(r"SWITCHES := ([^\n]+)", makefile).group(1).split())
    assert set(EMPTY_VALUES) == valued - switches - {"ENV", "CMD", "UPGRADE"}  # every other value is in the list
    target, option = EMPTY_VALUES[name]

    def words(*values):
        made = make_n(target, "ENV=prod", "STACK=service", *values) if name != "STACK" else make_n(target, "ENV=prod", *values)
        assert made.returncode == 0, made.stderr
        line = made.stdout.replace("\\\n", " ").strip().splitlines()[-1].split("&&")[-1]
        return [w for w in shlex.split(line) if w.startswith(option)]

    assert words(f"{name}=") == [f"{option}="]
    assert words() == []
    out, err = io.StringIO(), io.StringIO()  # refused before any client is made: one asked for fails the test, never reaches AWS
    argv = [target, "--env", "prod", *(["--stack", "service"] if name != "STACK" else []), f"{option}="]
    code = deployer.main(argv, out=out, err=err, clients=pytest.fail)
    assert (code, err.getvalue(), out.getvalue()) == (2, f"error: {EMPTY_REFUSED[name]}\n", "")  # for the empty value, not something else


EMPTY_REFUSED = {
    "STACK": "STACK= is empty: name a layer (ci, cert-dns, alb, waf, release-alarms, service, scaling, alarms), or leave STACK= out for every layer",
    "TAG": "TAG=: not a Docker image tag (letters, digits, _ . -, not starting with . or -, at most 128); to leave it out, give no TAG=",
    "CHANGESET": "CHANGESET= (--changeset) is for make execute; status takes none: leave it out",
    "MAX_WAIT": "MAX_WAIT=: allowed: 1 to 720 minutes",
    "TIMEOUT": "TIMEOUT=: allowed: 0 to 172800 seconds (48 hours)",
    "CONNECT_TO": "CONNECT_TO (--connect-to) '': expected HOST:PORT:ADDRESS:PORT (HOST a host name, ADDRESS an IPv4 address or host name), ports 1 to 65535",
    "CA_BUNDLE": "CA_BUNDLE= (--ca-bundle): No such file or directory; allowed: a PEM file of CA certificates",
    "ACTION": "ACTION=: allowed: CONTINUE or ROLLBACK",
    "SINCE": "SINCE=: allowed: a whole number from 1 and a unit: s, m, h or d (30s, 10m, 2h, 1d), at most 3653d (the longest CloudWatch Logs keeps events)",
}


def test_every_target_that_reads_output_to_change_or_compare_stacks_checks_it_is_current_first():
    # execute takes the stack policy and the refusals (custom names, conditions) from output/: a hand-edited
    # allow-all policy there was set on the stack while make check called the file stale.
    # rollback reads the service layer's files alone (Deployer.as_deployed takes the rest from the stack)
    for target, layer in (("deploy", ""), ("changeset", ""), ("execute", ""), ("diff", ""), ("rollback", " --layer=service")):
        made = subprocess.run(
            ["make", "-n", "--no-print-directory", target, "ENV=prod"], cwd=ROOT, capture_output=True, text=True, timeout=60
        )
        assert made.returncode == 0, made.stderr
        assert made.stdout.startswith(f".venv/bin/python generate.py --check --env='prod'{layer} && "), (target, made.stdout)
        assert f"-m scripts.deploy {target} " in made.stdout, (target, made.stdout)


# As typed at a shell: under make (make test), MAKELEVEL and MAKEFLAGS carry the parent's values.
SHELL_ENV = {
    name: value for name, value in os.environ.items() if name not in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS", "MAKEOVERRIDES", "GNUMAKEFLAGS")
}


def make_n(*argv, env=None):
    """`make -n ARGV`, what would run, as typed at a shell (env: SHELL_ENV unless given)."""
    return make_s("-n", *argv, env=env, text=True)


def make_s(*argv, env=None, text=False):
    """`make -s ARGV` run, recipes and all, as typed at a shell (env: SHELL_ENV unless given)."""
    return subprocess.run(
        ["make", "-s", "--no-print-directory", *argv],
        cwd=ROOT,
        env=SHELL_ENV if env is None else env,
        capture_output=True,
        text=text,
        timeout=120,
    )


def test_a_stack_exported_in_the_shell_is_refused_by_deploy_destroy_and_purge_which_would_take_every_layer_without_it():
    # Ignored like the other shell leftovers, STACK=alarms would make `make destroy YES=1` destroy every layer.
    exported = {name: value for name, value in SHELL_ENV.items() if name != "STACK"} | {"STACK": "alarms"}

    def make(*argv):
        return make_n(*argv, env=exported)

    for target in ("deploy", "destroy", "purge"):
        made = make(target, "YES=1")
        assert made.returncode == 2 and made.stdout == "", made
        assert (
            f"*** STACK is set in the shell's environment, which make does not take, and without STACK {target} means every "
            f"layer: give it on the command line (make {target} STACK=<layer>), or unset STACK for every layer.  Stop." in made.stderr
        ), made.stderr
        given = make(target, "STACK=alb")
        assert given.returncode == 0 and "--stack='alb'" in given.stdout, given
    status = make("status")
    assert status.returncode == 0 and "--stack" not in status.stdout, status  # a target that reads: the note, as for the other values


def refused_when_exported(target) -> set:
    """The values a target refuses when the shell exports them: those whose absence it would take for another action."""
    from scripts import deploy

    refused = {"STACK": ("deploy", "destroy", "purge"), "TAG": deploy.TAKES_TAG, "ACTION": ("continue",)}
    return {name for name, targets in refused.items() if target in targets}


@pytest.mark.parametrize(
    "target, name, value, without",
    [
        *((target, "TAG", "v1", "takes the service's running image") for target in ("deploy", "changeset", "diff", "task")),
        ("rollback", "TAG", "v1", "goes back to the release before the running one"),
        ("continue", "ACTION", "ROLLBACK", "sends CONTINUE, which moves production traffic to the release"),
    ],
)
def test_a_tag_or_action_exported_in_the_shell_is_refused_where_the_target_would_do_otherwise_without_it(target, name, value, without):
    # Ignored with a note, ACTION=ROLLBACK made `make continue YES=1` send CONTINUE (production traffic moved where a
    # rollback was meant), and TAG=v1 made `make rollback YES=1` go back by the release history, `make task` run the
    # running image.
    exported = {n: v for n, v in SHELL_ENV.items() if n != name} | {name: value}
    made = make_n(target, "YES=1", *(["CMD=true"] if target == "task" else []), env=exported)
    assert made.returncode == 2 and made.stdout == "", made
    example = "ACTION=ROLLBACK" if name == "ACTION" else "TAG=<tag>"
    assert (
        f"*** {name} is set in the shell's environment, which make does not take, and without {name} make {target} {without}: "
        f"give it on the command line (make {target} {example}), or unset {name}.  Stop." in made.stderr
    ), made.stderr
    given = make_n(target, f"{name}={value}", *(["CMD=true"] if target == "task" else []), env=exported)  # the command line's counts
    assert given.returncode == 0 and f"='{value}'" in given.stdout, given
    status = make_n("status", env=exported)
    assert status.returncode == 0 and value not in status.stdout, status  # a target that does not take it: the note


@pytest.mark.parametrize("target", ["deploy", "changeset", "diff"])
def test_a_tag_exported_in_the_shell_is_refused_for_the_service_given_on_the_command_line_and_not_for_a_stack_exported(target):
    exported = {n: v for n, v in SHELL_ENV.items() if n not in ("TAG", "STACK")} | {"TAG": "v1"}
    made = make_n(target, "STACK=service", env=exported)
    assert made.returncode == 2 and f"without TAG make {target} takes the service's running image" in made.stderr, made
    # STACK=alb exported is no STACK given (make ignores it): TAG is still refused (deploy refuses the STACK itself, above)
    made = make_n(target, env=exported | {"STACK": "alb"})
    refused = "STACK" if target == "deploy" else "TAG"
    assert made.returncode == 2 and f"*** {refused} is set in the shell's environment" in made.stderr, made


@pytest.mark.parametrize("target", ["deploy", "changeset", "diff"])
def test_a_tag_exported_in_the_shell_does_not_refuse_a_layer_that_has_no_image(target):
    # Without TAG, make deploy STACK=alb takes no image at all: the alb layer has none, and the deployer refuses
    # TAG= for it ("TAG= (--image-tag) sets the service layer's image; STACK=alb has none"). An exported TAG
    # refused it all the same, saying it "takes the service's running image" and to give TAG= on the command
    # line, which the deployer then refuses: only unsetting TAG let another layer be deployed.
    exported = {n: v for n, v in SHELL_ENV.items() if n != "TAG"} | {"TAG": "v1"}
    made = make_n(target, "STACK=alb", *(["YES=1"] if target == "deploy" else []), env=exported)
    assert made.returncode == 0, made.stderr
    assert "--stack='alb'" in made.stdout and "--image-tag" not in made.stdout, made.stdout
    assert made.stderr.startswith("note: ignored, as the shell's environment sets them: "), made.stderr
    # nor does the note suggest the TAG= the deployer then refuses for STACK=alb (helper S1); nor REPAIR=, which is the
    # service layer's too; for the service it does
    assert "TAG=..." not in made.stderr, made.stderr
    if target != "diff":  # which takes no REPAIR=
        repair = {n: v for n, v in SHELL_ENV.items() if n not in ("TAG", "REPAIR")} | {"REPAIR": "1"}
        assert "REPAIR=..." not in make_n(target, "STACK=alb", env=repair).stderr
        assert f"make {target} REPAIR=..." in make_n(target, "STACK=service", env=repair).stderr


def test_the_values_the_makefile_takes_for_the_service_alone_are_the_service_layers_alone():
    # NOT_FOR_THE_STACK in the Makefile names service for TAG= and REPAIR=: the one layer with an image, and the one with
    # rollback triggers; a second such layer would need it named there too (review RB)
    assert "$(filter-out service,$(value STACK)),TAG REPAIR" in (ROOT / "Makefile").read_text()
    images = [
        layer for layer in templates.LAYERS if "ImageTag" in json.loads((ROOT / "output" / f"{layer}.json").read_text())["Parameters"]
    ]
    assert images == ["service"] and set(templates.ROLLBACK_TRIGGERS) == {"service"}


def test_a_value_another_target_takes_is_refused_naming_those_that_take_it_and_unlock_and_zone_list_no_stack():
    # helper I1: make purge MAX_WAIT=5 was refused as if MAX_WAIT were any unknown name, where make status MAX_WAIT=5 (the
    # deployer's refusal) says which targets take it; make unlock STAK=x listed STACK as allowed, which unlock refuses
    from scripts import deploy

    made = make_n("purge", "MAX_WAIT=5", "YES=1")
    takers = ", ".join(deploy.TAKES_MAX_WAIT)
    assert made.returncode == 2 and "*** MAX_WAIT: not a value make purge takes, and without STACK it takes every layer; " in made.stderr
    assert f"; MAX_WAIT= is for make {takers}; allowed: ENV STACK YES PYTHON (" in made.stderr, made.stderr
    for target in deploy.TAKES_NO_STACK:
        made = make_n(target, "STAK=x")
        allowed = re.search(r"; allowed: ([A-Z_ ]+) \(", made.stderr)
        assert made.returncode == 2 and allowed and "STACK" not in allowed[1].split() and "did you mean" not in made.stderr, made


def test_the_makefiles_targets_list_is_its_targets():
    # TARGETS is .PHONY and what deploy, destroy and purge take for a target, not a misspelt STACK
    text = (ROOT / "Makefile").read_text()
    listed = set(re.search(r"^TARGETS := ((?:\\\n|[^\n])+)", text, re.M).group(1).replace("\\", " ").split())
    assert listed == set(re.findall(r"^([a-z][a-z-]*):", text, re.M))


def test_a_name_or_word_deploy_destroy_and_purge_do_not_take_is_refused_since_a_misspelt_stack_would_take_every_layer():
    # make ignores a NAME=value it does not use, and runs the targets before a word it has no target
    # for: `make destroy STAK=alarms YES=1` destroyed every layer, and so did `make destroy alarms YES=1`.
    shell, make = SHELL_ENV, make_n

    taken = {"deploy": "ENV STACK TAG YES ALLOW_REPLACE ALLOW_TRAFFIC_RESET RECREATE REPAIR MAX_WAIT PYTHON"}
    taken |= {"destroy": "ENV STACK YES MAX_WAIT PYTHON", "purge": "ENV STACK YES PYTHON"}
    advice = "(AWS settings such as AWS_PROFILE go in the shell's environment).  Stop."
    for target, allowed in taken.items():
        for misspelt in ("STAK", "stack", "AWS_PROFILE"):
            made = make(target, f"{misspelt}=alarms", "YES=1")
            assert made.returncode == 2 and made.stdout == "", made
            like = "" if misspelt == "AWS_PROFILE" else " (did you mean STACK?)"
            assert (
                f"*** {misspelt}: not a value make {target} takes, and without STACK it takes every layer{like}; "
                f"allowed: {allowed} {advice}" in made.stderr
            ), made.stderr
        given = make(target, "STACK=alb", "CMD=x")  # STACK given: no word of every layer
        assert f"*** CMD: not a value make {target} takes; allowed: {allowed} {advice}" in given.stderr, given.stderr
        word = make(target, "alarms", "YES=1")
        assert word.returncode == 2 and word.stdout == "", word
        assert (
            f"*** alarms: not a make target, and {target} would run before make stops at it, on every layer without STACK; "
            "name a layer with STACK=<layer>.  Stop." in word.stderr
        ), word.stderr
        every = make(target, *[f"{name}=1" for name in allowed.split() if name not in ("ENV", "STACK")], "STACK=alb")
        assert every.returncode == 0 and "--stack='alb'" in every.stdout, every
        # under another make: the names on its command line are its own, not typed here
        assert make(target, "STACK=alb", "VERSION=1", env=shell | {"MAKELEVEL": "1"}).returncode == 0
    status = make("status", "STAK=alarms")  # a target that reads refuses it too (the test below)
    assert status.returncode == 2 and "*** STAK: not a value make status takes" in status.stderr, status
    # TAG= given empty is passed on, and refused there, as STACK= is: left out, a rollback goes back by the history.
    assert "--image-tag='' " in make("rollback", "STACK=service", "TAG=").stdout
    assert "--image-tag" not in make("rollback", "STACK=service").stdout
    # So are SINCE= and TIMEOUT=: left out for an empty value, make logs read 10 minutes as if none were given.
    for target, name, flag in (("logs", "SINCE", "--since"), ("zone", "TIMEOUT", "--timeout"), ("verify", "TIMEOUT", "--timeout")):
        assert f"{flag}=''" in make(target, f"{name}=").stdout.split(), target
        assert flag not in make(target).stdout, target


COMMON = "ENV STACK PYTHON"  # what every deployer target takes


@pytest.mark.parametrize(
    ("target", "misspelt", "meant", "passed", "allowed"),
    [
        (
            "continue",
            "action=ROLLBACK",
            "ACTION=ROLLBACK",
            "--action='ROLLBACK'",
            "ENV STACK YES PYTHON ACTION",
        ),  # ignored, it sent CONTINUE
        # ignored, it went back by the history
        (
            "rollback",
            "IMAGE_TAG=v1",
            "TAG=v1",
            "--image-tag='v1'",
            "ENV STACK TAG YES ALLOW_REPLACE ALLOW_TRAFFIC_RESET REPAIR MAX_WAIT PYTHON",
        ),
        # ignored, the running image ran the migration
        (
            "task",
            "tag=v2",
            "TAG=v2",
            "--image-tag='v2'",
            "ENV STACK TAG YES MAX_WAIT PYTHON CMD",
        ),
        ("logs", "since=2h", "SINCE=2h", "--since='2h'", f"{COMMON} SINCE FOLLOW"),
        ("zone", "TIME_OUT=60", "TIMEOUT=60", "--timeout='60'", "ENV YES PYTHON TIMEOUT"),  # its domain's, no layer's: no STACK
        # TAG=, CHANGESET=, REPAIR=, ALLOW_REPLACE=, ALLOW_TRAFFIC_RESET=, RECREATE=, YES= and MAX_WAIT=, which status refuses, were listed
        ("status", "STAK=alarms", "STACK=alarms", "--stack='alarms'", COMMON),
        ("releases", "STAK=service", "STACK=service", "--stack='service'", COMMON),
        (
            "execute",
            "CHANGE_SET=x",
            "CHANGESET=x",
            "--changeset='x'",
            "ENV STACK CHANGESET YES ALLOW_REPLACE ALLOW_TRAFFIC_RESET MAX_WAIT PYTHON",
        ),
    ],
)
def test_a_name_the_other_deployer_targets_do_not_take_is_refused_naming_what_they_take(target, misspelt, meant, passed, allowed):
    # make ignores a NAME=value it does not use: a misspelt one left the run doing what its default does.
    shell, make = SHELL_ENV, make_n

    given = ["ENV=prod", *(["STACK=service"] if target in ("rollback", "logs") else []), *(["CMD=true"] if target == "task" else [])]
    refused = make(target, *given, misspelt, "YES=1")
    name = misspelt.split("=")[0]
    assert refused.returncode == 2 and refused.stdout == "", refused
    advice = "(AWS settings such as AWS_PROFILE go in the shell's environment).  Stop."
    # the name meant suggested, where it is like the one given (IMAGE_TAG is too far from TAG)
    like = "" if name == "IMAGE_TAG" else f" (did you mean {meant.split('=')[0]}?)"
    assert f"*** {name}: not a value make {target} takes{like}; allowed: {allowed} {advice}" in refused.stderr, refused.stderr
    spelt = make(target, *given, meant, "YES=1")
    assert spelt.returncode == 0 and passed in spelt.stdout, spelt
    # NAME= value with a space: make takes the value for a target, run after this one (ACTION= ROLLBACK sent CONTINUE)
    name, value = meant.split("=")
    spaced = make(target, *given, f"{name}=", value, "YES=1")
    assert spaced.returncode == 2 and spaced.stdout == "", spaced
    assert f"*** {value}: not a make target, and make {target} would run before make stops at it" in spaced.stderr, spaced.stderr
    assert make(target, *given, misspelt, env=shell | {"MAKELEVEL": "1"}).returncode == 0  # under another make: its own names


def test_the_targets_the_makefile_names_for_tag_and_repair_are_those_the_deployer_takes_them_for():
    from scripts import deploy

    makefile = (ROOT / "Makefile").read_text()
    listed = {
        name: re.search(rf"^override {name}_TARGETS := (.*)$", makefile, re.MULTILINE).group(1).split()
        for name in ("TAG", "REPAIR", "CHANGESET", "ALLOW_REPLACE", "ALLOW_TRAFFIC_RESET", "RECREATE", "YES", "MAX_WAIT")
    }
    assert listed == {
        "TAG": list(deploy.TAKES_TAG),
        "REPAIR": list(deploy.TAKES_REPAIR),
        "CHANGESET": ["execute"],
        "ALLOW_REPLACE": list(deploy.TAKES_ALLOW),
        "ALLOW_TRAFFIC_RESET": ["$(ALLOW_REPLACE_TARGETS)"],  # the deployer takes both where it executes change sets
        "RECREATE": list(deploy.TAKES_RECREATE),
        "YES": list(deploy.TAKES_YES),
        "MAX_WAIT": list(deploy.TAKES_MAX_WAIT),
    }
    no_stack = re.search(r"^override NO_STACK_TARGETS := (.*)$", makefile, re.MULTILINE).group(1).split()
    assert no_stack == list(deploy.TAKES_NO_STACK)


def test_values_exported_in_the_shell_change_no_target_only_the_command_line_does():
    # An exported YES=1 or ENV=prod left in a shell must not confirm or retarget a deploy (and POSIX
    # shells use ENV for their startup file): every value a recipe reads counts from the command line only.
    makefile = (ROOT / "Makefile").read_text()
    # but PYTHON and BENCH_RUNS, which the shell may set (the interpreter, the bench's runs): read as text all the same
    read = set(re.findall(r"\$\(value ([A-Z_]+)\)", makefile)) - {"PYTHON", "BENCH_RUNS"}
    listed = set(re.search(r"COMMAND_LINE_ONLY := ((?:\\\n|[^\n])+)", makefile).group(1).replace("\\", " ").split())
    assert read and read == listed, read ^ listed
    exported = {name: "x" for name in listed} | {"ENV": "prod", "YES": "1"}
    # make -e (environment over the Makefile) changes nothing here: the note says ignored, and they are.
    for target, flags in [(t, []) for t in ("deploy", "verify", "task", "logs", "continue", "zone")] + [("deploy", ["-e"])]:
        # an exported STACK a deploy refuses instead, TAG a target that takes it, ACTION continue (the tests above): here
        # every other value
        refused = refused_when_exported(target)
        shell = {name: value for name, value in (os.environ | exported).items() if name not in refused}
        made = subprocess.run(
            ["make", "-n", *flags, "--no-print-directory", target],
            cwd=ROOT,
            env=shell,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        words = shlex.split(made.stdout.replace("\\\n", " ").strip().splitlines()[-1].split("&&")[-1])
        assert "--env=sandbox" in words and not [w for w in words if w.startswith("--") and w not in ("--env=sandbox", "--cmd=")], words
        assert made.stderr.startswith("note: ignored, as the shell's environment sets them: "), made.stderr
        assert set(made.stderr.split(": ", 2)[2].split(" (")[0].split()) == listed - refused
        ignored = made.stderr.split(": ", 2)[2].split(" (")[0].split()
        # the target run, with the values it ignored that it takes (make status TAG=... would be refused): what the
        # Makefile's own refusal of a name the target does not take lists as allowed
        refusal = make_n(target, "NOT_A_NAME=1").stderr
        taken = refusal.split("allowed: ", 1)[1].split(" (")[0].split()
        suggested = [name for name in ignored if name in taken]
        assert (
            suggested
            and f"(make takes values from its command line only: make {target} {' '.join(f'{name}=...' for name in suggested)})"
            in (made.stderr)
        ), made.stderr
    # a target that takes none of them says so, rather than naming a command that would be refused
    shell = {**os.environ, "TAG": "v1"}
    made = subprocess.run(["make", "-n", "--no-print-directory", "status"], cwd=ROOT, env=shell, capture_output=True, text=True, timeout=60)
    assert made.stderr.startswith(
        "note: ignored, as the shell's environment sets them: TAG (make status takes none of them; make help lists what each target takes)"
    ), made.stderr
    # make deploy takes TAG=, of the service layer alone: "make deploy takes none of them" was false (helper SZ)
    other = next(layer for layer in templates.layer_order() if layer != "service")
    made = subprocess.run(
        ["make", "-n", "--no-print-directory", "deploy", f"STACK={other}"], cwd=ROOT, env=shell, capture_output=True, text=True, timeout=60
    )
    assert made.stderr.startswith(
        "note: ignored, as the shell's environment sets them: TAG (make deploy of that layer takes none of them: TAG= and REPAIR= "
        "are the service layer's)"
    ), made.stderr
    for target, name in (("review", "ENV"), ("lock", "UPGRADE")):  # targets that run no deployer and take one
        made = subprocess.run(
            ["make", "-n", "--no-print-directory", target],
            cwd=ROOT,
            env={**os.environ, name: "x"},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert f"(make takes values from its command line only: make {target} {name}=...)" in made.stderr, made.stderr
    clean = {name: value for name, value in os.environ.items() if name not in listed}
    given = subprocess.run(
        ["make", "-n", "--no-print-directory", "deploy", "ENV=prod", "YES=1"],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert given.stderr == "" and {"--env=prod", "--yes"} <= set(shlex.split(given.stdout.split("&&")[-1])), given


def test_a_switch_is_on_only_with_1_and_any_other_value_is_refused_naming_it():
    """YES=0, ALLOW_REPLACE=false or RECREATE=no must not mean yes."""
    makefile = (ROOT / "Makefile").read_text()
    switches = re.search(r"SWITCHES := ([^\n]+)", makefile).group(1).split()
    # every variable a recipe passes as a bare option, with no value (--yes, --follow, ...)
    bare = set(re.findall(r"\$\(if \$\(value ([A-Z_]+)\),--[a-z-]+\)", makefile))
    assert bare and set(switches) == bare, set(switches) ^ bare
    clean = {name: value for name, value in os.environ.items() if name not in switches}
    # each with a target that takes it (another refuses it as not its value)
    taking = {"TEST_LISTENER": ["verify", "STACK=service"], "FOLLOW": ["logs", "STACK=service"]}
    for switch in switches:
        target = taking.get(switch, ["deploy", "STACK=alb"])
        for value in ("0", "false", "no", "1 1"):
            made = subprocess.run(
                ["make", "-n", *target, f"{switch}={value}"], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=60
            )
            assert made.returncode == 2 and f"*** {switch}={value}: allowed: 1, or leave it out." in made.stderr, made
        made = subprocess.run(
            ["make", "-n", "--no-print-directory", *target, f"{switch}=1"], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=60
        )
        assert made.returncode == 0 and f"--{switch.lower().replace('_', '-')}" in made.stdout, made.stderr


def test_a_value_make_is_given_is_never_run_and_one_on_two_lines_is_refused(tmp_path):
    # make exports command-line variables to each recipe's environment, expanding them as it does.
    ran = tmp_path / "ran"
    made = subprocess.run(["make", "help", f"TAG=$(shell touch {ran})"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert made.returncode == 0 and not ran.exists(), made.stderr
    made = subprocess.run(["make", "-n", "status", f"STACK=alb\ntouch {ran}"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert made.returncode == 2 and "*** STACK: a value on more than one line; allowed: one line." in made.stderr, made
    assert not ran.exists()


def test_a_misspelt_target_is_refused_naming_make_help():
    # make's own "No rule to make target 'delpoy'. Stop." named no way on; the closest target is named as the tools name
    # a mistyped layer (a new user's walkthrough: make stauts said only "make help lists them")
    for typed, meant in ((["delpoy"], "deploy"), (["templates", "tempaltes"], "templates"), (["stauts"], "status")):
        made = make_n(*typed)
        assert made.returncode == 2 and made.stdout == "", made
        assert f"*** {typed[-1]}: not a make target (did you mean {meant}?); make help lists them.  Stop." in made.stderr, made.stderr
    # without the interpreter that finds it, the refusal still comes, with no guess
    made = make_n("stauts", "PYTHON=/nonexistent/python3")
    assert made.returncode == 2 and "*** stauts: not a make target; make help lists them.  Stop." in made.stderr, made.stderr
    # a first word that is a target's names the targets that start with it
    made = make_n("sandbox-start")
    assert made.returncode == 2 and made.stdout == "", made
    assert "*** sandbox-start: not a make target, like sandbox sandbox-stop sandbox-status; make help lists them.  Stop." in made.stderr
    made = make_n("t")  # no target's first word: no guesses (templates, test, task)
    assert "*** t: not a make target; make help lists them.  Stop." in made.stderr, made.stderr


@pytest.mark.parametrize("given", ["abc", "0", "1e3", " 5", "10000", ""])  # "": BENCH_RUNS= given empty
def test_a_bench_runs_value_that_is_no_number_of_runs_is_one_line_before_any_run(given, monkeypatch, capsys):
    import bench

    monkeypatch.setenv("BENCH_RUNS", given)
    monkeypatch.setattr(bench, "timed", pytest.fail)  # a value wrongly taken fails here, rather than start a bench of it
    assert bench.main() == 2
    err = capsys.readouterr().err
    assert err == f"error: BENCH_RUNS={given!r}: allowed: a whole number of runs from 1 to 999 (default {bench.DEFAULT_RUNS})\n", err


def test_bench_runs_from_1_to_999_are_taken():
    # checked on the pattern: a value it wrongly took would start a real bench of that many runs
    import bench

    assert [n for n in ("1", "999", "1000", "01") if re.fullmatch(bench.RUNS_GIVEN, n)] == ["1", "999"]


@pytest.mark.parametrize("given", [None, "1", "2"])
def test_bench_measures_each_figure_as_many_times_as_bench_runs_says(given, monkeypatch, tmp_path, capsys):
    import bench

    if given is None:
        monkeypatch.delenv("BENCH_RUNS", raising=False)
    else:
        monkeypatch.setenv("BENCH_RUNS", given)
    runs = 5 if given is None else int(given)
    measured, copies, deploys = [], [], []

    def project_copy():
        copies.append(tmp_path / f"copy{len(copies)}")
        (copies[-1] / "params").mkdir(parents=True)
        return copies[-1]

    def deploy_figures(python, count):
        deploys.append(count)
        per_stack = {"full": {"startupwebapp-sandbox-alb": 8}, "unchanged": {"startupwebapp-sandbox-alb": 4}}
        return [(1.0, 1.0, 1.0)] * count, [(1.0, 1.0, 1.0)] * count, per_stack, {}

    monkeypatch.setattr(bench, "project_copy", project_copy)
    monkeypatch.setattr(bench, "add_environments", lambda *args: None)
    monkeypatch.setattr(bench, "deploy_figures", deploy_figures)
    monkeypatch.setattr(bench, "timed", lambda command, *args, **kwargs: measured.append(command) or (1.0, 1.0, 1.0))
    assert bench.main() in (0, None), capsys.readouterr().err
    # generation, make templates cold and unchanged, the review's copy made (make templates), make review cold and
    # cached, the suite: each `runs` times
    assert len(measured) == 7 * runs and deploys == [runs], (len(measured), deploys)
    assert len(copies) == 2 * runs  # one copy of the project per cold make templates and per review
    assert not any(copy.exists() for copy in copies)  # each removed after its figures
    assert capsys.readouterr().out.startswith(f"{runs} runs each on ")


def test_make_help_says_what_env_and_stack_take():
    said = subprocess.run(["make", "help"], cwd=ROOT, capture_output=True, text=True, check=True, timeout=60).stdout.splitlines()
    assert "  ENV=<env>      an environment of params/ (default: sandbox, the local sandbox; every other one must be named)" in said
    assert f"  STACK=<layer>  one layer: {' -> '.join(templates.layer_order())}" in said, said
    # the two other values the README names: the venv's interpreter and the bench's runs, with bench.py's default
    import bench

    runs = [line for line in said if line.startswith("  PYTHON=")]
    assert runs and "the interpreter .venv is made with" in runs[0] and f"BENCH_RUNS={bench.DEFAULT_RUNS} " in runs[0], said
    # before `make venv` has made .venv: no layer list, and no venv made for it
    bare = subprocess.run(["make", "help", "BIN=/nonexistent"], cwd=ROOT, capture_output=True, text=True, check=True, timeout=60).stdout
    assert "  STACK=<layer>  one layer (README: Layers and their order)" in bare.splitlines(), bare


def test_make_help_names_tag_and_repair_on_the_targets_that_take_them():
    """make help's changeset and diff lines named neither TAG= nor REPAIR=1, which they take."""
    said = subprocess.run(["make", "help"], cwd=ROOT, capture_output=True, text=True, check=True, timeout=60).stdout.splitlines()
    line = {words[1]: text for text in said if (words := text.split()) and words[0] == "make" and len(words) > 1}
    for target in deployer.TAKES_TAG:
        assert "TAG=" in line[target], line[target]
    for target in set(deployer.TAKES_REPAIR) - {"rollback"}:  # a rollback repairs whether REPAIR=1 is given or not
        assert "REPAIR=1" in line[target], line[target]
    assert "REPAIR" not in line["rollback"] and "without rollback triggers" in line["rollback"], line["rollback"]
    for target in deployer.TAKES_YES:  # the ones that ask: required without a terminal
        assert "YES=1" in line[target], line[target]
    for target in deployer.TAKES_MAX_WAIT:
        assert "MAX_WAIT=min" in line[target], line[target]
    for target in set(line) - set(deployer.TAKES_YES) - set(deployer.TAKES_MAX_WAIT):  # nor where the deployer refuses them
        assert "YES=1" not in line[target] and "MAX_WAIT" not in line[target], line[target]
    # every command of more than one layer names STACK (make status's line did not, which takes it)
    for target in set(line) & set(deployer.COMMANDS) - set(deployer.TAKES_NO_STACK) - set(deployer.SERVICE_COMMANDS):
        assert "STACK" in line[target], line[target]
    for flag, takers in (
        ("ALLOW_REPLACE=1", deployer.TAKES_ALLOW),
        ("ALLOW_TRAFFIC_RESET=1", deployer.TAKES_ALLOW),
        ("RECREATE=1", deployer.TAKES_RECREATE),
    ):
        assert {target for target in line if flag in line[target]} == set(takers), flag


@pytest.mark.parametrize(
    "target, unused",
    [
        ("templates", ["ENV", "STACK", "TAG", "ACTION", "UPGRADE"]),  # make templates TAG=v1 said nothing
        ("check", ["ENV", "STACK", "CONNECT_TO"]),
        ("review", ["STACK", "MAX_WAIT"]),
        ("sandbox", ["ENV", "STACK", "SINCE"]),
        ("sandbox-stop", ["ENV", "STACK", "CHANGESET"]),
        ("sandbox-status", ["ENV", "STACK", "CMD"]),
    ],
)
def test_a_target_says_that_a_value_it_does_not_take_changes_nothing(target, unused):
    # templates and check work on every environment and layer, the sandbox targets on the one sandbox: ENV= or
    # STACK= given to them is said to be unused, not silently ignored (make sandbox-stop ENV=prod said nothing).
    def recipe(*argv):
        return subprocess.run(
            ["make", "-n", "--no-print-directory", target, *argv], cwd=ROOT, capture_output=True, text=True, check=True, timeout=60
        ).stdout

    for name in unused:
        given = recipe(f"{name}=prod")
        assert f'"note: make {target} takes no {name}= (it ' in given and "'prod' \"left unused\"" in given, given
    assert "note:" not in recipe()
    # the sandbox targets' own ENV= is no value left unused (make sandbox-stop ENV=sandbox said it was); another is
    assert ("note:" in recipe("ENV=sandbox")) is ("ENV" in unused and not target.startswith("sandbox")), target
    assert all(("note:" in recipe(given)) is ("ENV" in unused) for given in ("ENV=sandbox x", "ENV=")), target


# --- values on make's command line are text: never run by make, never sent to the terminal as control ---------------
# (README, Values on make's command line: "A value is passed as it is, never run by make")


@pytest.mark.parametrize(
    "target, name",
    [
        ("help", "PYTHON"),  # a value every target takes (the venv's interpreter)
        ("help", "BENCH_RUNS"),  # a value make bench takes
        ("help", "FOO"),  # a name make passes over (README: "pass over any other name (FOO=1)")
        ("sandbox-status", "FOO"),
    ],
)
def test_a_value_make_takes_or_passes_over_is_not_run_when_a_recipe_runs(tmp_path, target, name):
    # make exports a command-line variable that is not unexported to every recipe's environment,
    # expanding it as it does: FOO='$(shell touch x)' ran the command (without -n: -n runs no recipe).
    assert_runs_nothing(tmp_path, target, name, "$(shell touch {ran})")


def assert_runs_nothing(tmp_path, target, name, command, *flags):
    """make <target> <name>=<command> (its {ran} a file the command makes) leaves that file unmade, and make got as far
    as the value: it went to its end (with -n, every recipe printed) or refused the value by name. Not checked, a make
    stopped before for any other reason (an error at the Makefile's top, a wrong flag) ran nothing either, and passed."""
    ran = tmp_path / "ran"
    made = make_s(*flags, target, f"{name}={command.format(ran=ran)}", text=True)
    assert not ran.exists(), f"make {target} {name}='{command}' ran the command"
    assert made.returncode == 0 or (made.returncode == 2 and f"*** {name}" in made.stderr), (made.returncode, made.stderr)


@pytest.mark.parametrize("value", ["v1\\nerror: params/prod.yaml is corrupt", "v1\x1b[2K\rerror: forged", "v1\\c"])
def test_the_note_of_an_unused_value_shows_it_as_text(value):
    # The note echoed the value with sh's echo: dash reads \n and \c in it, and ESC and CR went to the
    # terminal as they were: a value could forge a line of the output (an "error:" that is not one).
    made = make_s("sandbox-status", f"TAG={value}")
    err = made.stderr.decode(errors="replace")
    notes = [line for line in err.splitlines() if "takes no TAG=" in line]
    assert len(notes) == 1, err
    assert not any(line.startswith("error: forged") or line.startswith("error: params/prod.yaml") for line in err.splitlines()), err
    assert "\x1b" not in err and "\r" not in err, repr(err)
    if value.isprintable():  # backslashes and all: shown as typed
        assert value in notes[0], notes[0]


def test_a_switch_refused_by_make_shows_its_value_as_text():
    made = make_s("help", "YES=\x1b[2K\rerror: forged")
    assert made.returncode == 2 and b"YES=?[2K?error: forged: allowed: 1, or leave it out" in made.stderr, made.stderr


# --- make's messages and values as text: boundaries mutants crossed unseen (review R2) --------------------------------


def test_makes_messages_show_every_control_character_as_a_question_mark_but_tab():
    # shown/printed map C0 and DEL, tab kept: mapping ESC and CR alone (or leaving DEL, or taking tab too) left the tests green
    made = make_s("help", "YES=a\bb\ac\x7fd\x0be\x0cf\tg")
    assert made.returncode == 2 and b"YES=a?b?c?d?e?f\tg: allowed: 1, or leave it out" in made.stderr, made.stderr


@pytest.mark.parametrize(
    ("target", "name", "option"),
    [
        ("task", "CMD", "--cmd="),
        ("logs", "SINCE", "--since="),
        ("continue", "ACTION", "--action="),
        ("verify", "CONNECT_TO", "--connect-to="),
        ("verify", "CA_BUNDLE", "--ca-bundle="),
        ("verify", "TIMEOUT", "--timeout="),
        ("deploy", "MAX_WAIT", "--max-wait="),
        ("lock", "UPGRADE", "--upgrade-package="),
    ],
)
def test_a_value_holding_a_dollar_the_recipes_read_as_text_is_passed_not_refused(target, name, option):
    # 96b151d refuses a $ for every name but COMMAND_LINE_ONLY's: refusing CMD='sh -c "echo $HOME"' (or any of these)
    # too left every test green
    made = make_n(target, f"{name}=a$b")
    assert made.returncode == 0 and f"{option}'a$b'" in made.stdout, made.stdout + made.stderr


def test_the_values_the_recipes_read_are_passed_as_text():
    # PYTHON= (the interpreter make venv runs) and BENCH_RUNS= (which make bench passes on) are read as they were given,
    # the shell's PYTHON too, which make would expand where a recipe named it $(PYTHON)
    def recipe(*argv, **shell):
        return make_n(*argv, env=SHELL_ENV | shell)

    assert "BENCH_RUNS='3 x' .venv/bin/python bench.py" in recipe("bench", "BENCH_RUNS=3 x").stdout
    assert "BENCH_RUNS=" not in recipe("bench").stdout
    venv = recipe("-B", "venv", PYTHON="$(shell x) y").stdout  # -n -B: every step of make venv printed, none run
    assert "|| '$(shell x) y' -m venv .venv" in venv, venv


def test_the_bench_measures_a_cold_make_templates_on_a_copy_with_no_output_cache_or_compiled_bytecode(tmp_path, monkeypatch):
    import bench

    # a project with all of them, whether or not this run wrote bytecode (PYTHONDONTWRITEBYTECODE)
    project = tmp_path / "project"
    project.mkdir()
    for name in bench.SOURCES:
        source = ROOT / name
        (shutil.copytree if source.is_dir() else shutil.copy2)(source, project / name)
    for made in ("templates/__pycache__/inputs.cpython-311.pyc", "scripts/review/__pycache__/scan.cpython-311.pyc", "output/alb.json"):
        (project / made).parent.mkdir(parents=True, exist_ok=True)
        (project / made).write_text("")
    (project / ".venv").symlink_to(ROOT / ".venv")
    monkeypatch.setattr(bench, "ROOT", project)
    copy = bench.project_copy()
    try:
        assert (copy / "templates" / "__init__.py").is_file() and (copy / "scripts" / "review").is_dir()
        left = [p for p in copy.rglob("*") if p.name in ("__pycache__", "output", ".cache") and ".venv" not in p.parts]
        assert not left, left
        assert (copy / ".venv").resolve() == (ROOT / ".venv").resolve()  # make templates runs the project's venv
    finally:
        shutil.rmtree(copy)


# The launcher's child (bench.timed): resident memory, system time (the kernel zeroes what it reads from /dev/zero),
# a line on stderr, and what it found of its directory, environment, stdout and own CPU.
BENCH_CHILD = """
import json, os, stat, sys
held = bytearray(120 * 2**20)
for at in range(0, len(held), 4096):
    held[at] = 1
buffer = bytearray(2**20)
with open("/dev/zero", "rb", buffering=0) as zero:
    for _ in range(3000):
        zero.readinto(buffer)
sys.stderr.write("said on stderr\\n")
found = {"cwd": os.getcwd(), "marker": os.environ.get("BENCH_MARKER"), "cpu": sum(os.times()[:2])}
found["stdout is a pipe"] = stat.S_ISFIFO(os.fstat(1).st_mode)
with open(sys.argv[1], "w") as file:
    json.dump(found, file)
"""


def test_the_bench_times_a_command_in_its_directory_and_environment_with_its_own_peak_memory_and_cpu(tmp_path):
    import bench

    script, found, errors = tmp_path / "child.py", tmp_path / "found.json", []
    script.write_text(BENCH_CHILD)
    seconds, mib, cpu = bench.timed([sys.executable, str(script), str(found)], tmp_path, os.environ | {"BENCH_MARKER": "given"}, errors)
    child = json.loads(found.read_text())
    assert child["cwd"] == str(tmp_path) and child["marker"] == "given", child
    # its output goes to a file: a pipe would hang the bench on a process the command leaves behind holding it, or
    # on output larger than the pipe holds
    assert child["stdout is a pipe"] is False, child
    assert errors == ["said on stderr\n"], errors
    # the child's own 120 MiB and more, in MiB: not the launcher's own peak (some 12 MiB), not KiB
    assert 120 <= mib < 1000, (seconds, mib, cpu)
    # user and system time, as wait4 has them: at least what the child counted of its own (mostly system time)
    assert child["cpu"] > 0.05 and cpu >= child["cpu"] - 0.02, (cpu, child)
    assert seconds >= 0.9 * cpu, (seconds, cpu)  # the wall time of the whole run (one thread: no less than its CPU)


def test_the_bench_stops_at_a_command_that_failed_with_what_it_printed(tmp_path):
    import bench
    from templates.errors import ToolError

    # its output's end, where pytest's summary is, and not all of a long output
    command = [sys.executable, "-c", "print('x' * 9000); print('what pytest prints', 'of its failures'); raise SystemExit(3)"]
    with pytest.raises(ToolError) as raised:
        bench.timed(command, tmp_path)
    said = f"bench: {' '.join(command)} failed: "
    assert str(raised.value).startswith(said) and "what pytest prints of its failures" in str(raised.value)[len(said) :], raised.value
    assert len(str(raised.value)) <= len(said) + 4000, len(str(raised.value))


def test_the_bench_reports_median_times_the_largest_peak_and_a_target_met_at_its_value(capsys):
    import bench

    samples = [(0.1, 50.0, 0.3), (0.9, 200.0, 3.0), (0.2, 60.0, 0.5)]  # means 0.4 s and 1.27 s; median peak 60 MiB
    assert bench.report("figure", samples, 0.2, 200) == 0.2
    assert bench.report("figure", samples, 0.19, 199) == 0.2
    assert bench.report("figure", samples) == 0.2
    line = f"{'figure':<44} median  0.200 s   cpu    0.50 s   peak  200.0 MiB   n=3"
    assert capsys.readouterr().out.splitlines() == [
        f"{line}  (target <= 0.2 s: ok; <= 200 MiB: ok)",
        f"{line}  (target <= 0.19 s: MISSED; <= 199 MiB: MISSED)",
        line,
    ]


def test_the_bench_reviews_its_number_of_environments_each_a_copy_of_staging_with_names_of_its_own(tmp_path):
    import bench
    from templates import params

    shutil.copytree(ROOT / "params", tmp_path / "params")
    bench.add_environments(tmp_path / "params", bench.REVIEWED_ENVIRONMENTS)
    loaded = params.load_all(tmp_path / "params")  # raises on what two environments share unsaid
    assert len(loaded) == bench.REVIEWED_ENVIRONMENTS
    given = [yaml.safe_load(path.read_text())["parameters"] for path in (tmp_path / "params").glob("*.yaml")]
    for name in ("NamePrefix", "ApiHostLabel"):  # each copy's own, none another environment's
        names = [parameters[name] for parameters in given if name in parameters]
        assert len(names) >= bench.REVIEWED_ENVIRONMENTS - 3 and len(set(names)) == len(names), names


def test_the_bench_reviews_each_copy_with_the_scan_cache_cold_then_warm_and_removes_the_copy(tmp_path, monkeypatch):
    import bench

    copies, reviews = [], []

    def project_copy():
        copies.append(tmp_path / f"copy{len(copies)}")
        shutil.copytree(ROOT / "params", copies[-1] / "params")
        return copies[-1]

    def timed(command, cwd, *args):
        scan = cwd / ".cache" / "review-scan"
        if command[0] != "make":  # the review: is its scan cache there, how many environments does it review
            reviews.append((cwd, scan.exists(), len(list((cwd / "params").glob("*.yaml")))))
        scan.mkdir(parents=True, exist_ok=True)  # make templates as well as the review may leave one
        return (1.0, 1.0, 1.0)

    monkeypatch.setattr(bench, "project_copy", project_copy)
    monkeypatch.setattr(bench, "timed", timed)
    cold, warm = bench.review_figures("python", 2)
    assert len(cold) == len(warm) == 2
    n = bench.REVIEWED_ENVIRONMENTS
    assert reviews == [(copies[0], False, n), (copies[0], True, n), (copies[1], False, n), (copies[1], True, n)], reviews
    assert not any(copy.exists() for copy in copies)


def test_the_bench_deploys_on_a_sandbox_seeded_each_run_and_stops_it_even_when_a_deploy_fails(tmp_path, monkeypatch):
    import tempfile

    import bench
    from emulator import sandbox
    from scripts.deploy.aws import API_CALLS
    from templates.errors import ToolError

    events, deploys = [], []

    class Box:
        def __init__(self, state):
            pass

        def start(self, exit_with_parent=False):
            assert exit_with_parent  # a bench ended by kill -9 leaves no server behind
            events.append("start")
            return self

        def environment(self):
            return {"AWS_ENDPOINT_URL": "http://127.0.0.1:9"}

        def seed(self):
            events.append("seed")

        def stop(self):
            events.append("stop")

    def timed(command, cwd, env, errors):
        deploys.append((command, env))
        errors.append(f"a line before\n{API_CALLS}startupwebapp-sandbox-alb {10 * len(deploys)}\n")
        return (len(deploys), 1.0, 1.0)

    monkeypatch.setattr(sandbox, "Sandbox", Box)
    states = []

    def mkdtemp(prefix):
        states.append(tmp_path / f"{prefix}{len(states)}")
        states[-1].mkdir()
        return str(states[-1])

    monkeypatch.setattr(tempfile, "mkdtemp", mkdtemp)
    monkeypatch.setattr(bench, "timed", timed)
    monkeypatch.setattr(bench, "request_costs", lambda box: {"a request": (1.0, 2.0)})
    monkeypatch.setenv("AWS_PROFILE", "a real account's")
    full, again, calls, costs = bench.deploy_figures("python", 2)
    assert events == ["start", "seed", "seed", "stop"], events
    assert not states[0].exists()  # the sandbox's state directory removed once its figures are made
    # each run a deploy from empty, then one with nothing changed; the calls counted are each kind's own
    assert [s for s, _, _ in full] == [1, 3] and [s for s, _, _ in again] == [2, 4]
    assert calls == {"full": {"startupwebapp-sandbox-alb": 30}, "unchanged": {"startupwebapp-sandbox-alb": 40}}, calls
    assert costs == {"a request": (1.0, 2.0)}
    for command, env in deploys:
        assert command[-1] == "--api-calls" and "--yes" in command and command[command.index("--env") + 1] == "sandbox"
        assert "AWS_PROFILE" not in env and env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:9", env
    events.clear()
    monkeypatch.setattr(bench, "timed", lambda *args: (_ for _ in ()).throw(ToolError("bench: a deploy failed")))
    with pytest.raises(ToolError):
        bench.deploy_figures("python", 2)
    assert events == ["start", "seed", "stop"], events
    assert states[1].is_dir()  # kept where a run failed: its server.log


def test_the_bench_counts_a_requests_server_cpu_as_its_user_and_system_time(monkeypatch):
    import bench

    calls, buffer = [], bytearray(2**20)

    def request(**kwargs):  # mostly system time: the kernel zeroes what is read from /dev/zero
        calls.append(kwargs)
        with open("/dev/zero", "rb", buffering=0) as zero:
            for _ in range(1500):  # some 30 ms: many of /proc's 10 ms ticks
                zero.readinto(buffer)
        return {"Stacks": [{"StackName": "startupwebapp-sandbox-alb"}, {"StackName": "startupwebapp-sandbox-service"}]}

    class Client:
        describe_stacks = get_caller_identity = staticmethod(request)

    class Box:  # the "server" is this process: its CPU read from /proc is the client's own
        pid = os.getpid()

        def client(self, service):
            return Client()

    monkeypatch.setattr(bench, "REQUESTS", 5)
    costs = bench.request_costs(Box())
    assert list(costs) == [
        "GetCallerIdentity (next to no work)",
        "DescribeStacks of one stack (startupwebapp-sandbox-alb)",
        "DescribeStacks of all 2 stacks",
    ]
    for server, client in costs.values():  # each the mean of one call's: the same figure of the same work
        assert 0.6 * client <= server <= 1.6 * client + 10 and client > 0, costs
    # each request once before it is measured (a first call's connection and caches are no request's cost)
    assert len(calls) == 1 + 3 * (1 + bench.REQUESTS) and {"StackName": "startupwebapp-sandbox-alb"} in calls, len(calls)


@pytest.mark.parametrize(("worst", "verdict"), [(4, "ok"), (5, "MISSED")])
def test_the_bench_prints_ratios_targets_and_the_calls_per_stack_of_each_deploy(worst, verdict, monkeypatch, tmp_path, capsys):
    import bench
    from scripts.deploy.aws import NO_STACK

    monkeypatch.setenv("BENCH_RUNS", "1")
    suite_env, places = [], set()

    def project_copy():
        (tmp_path / "copy" / "params").mkdir(parents=True, exist_ok=True)
        return tmp_path / "copy"

    def deploy_figures(python, count):
        per_stack = {
            "full": {NO_STACK: 5, "startupwebapp-sandbox-alb": 8, "startupwebapp-sandbox-service": 6},
            "unchanged": {NO_STACK: 2, "startupwebapp-sandbox-alb": worst, "startupwebapp-sandbox-service": 3},
        }
        return [(1.0, 1.0, 1.0)], [(1.0, 1.0, 1.0)], per_stack, {}

    def timed(command, cwd, env=None, errors=None):
        if "pytest" in command:
            suite_env.append(env)
        if "-c" in command or "pytest" in command:  # the generation and the suite run in the project itself
            places.add(cwd)
        return (0.5 if "-c" in command else 1.0, 1.0, 1.0)  # generation alone: half a make templates

    monkeypatch.setattr(bench, "project_copy", project_copy)
    monkeypatch.setattr(bench, "add_environments", lambda *args: None)
    monkeypatch.setattr(bench, "deploy_figures", deploy_figures)
    monkeypatch.setattr(bench, "timed", timed)
    assert bench.main() in (0, None), capsys.readouterr().err
    out = capsys.readouterr().out.splitlines()
    assert "ratios: cold/generation 2.0x, cold/unchanged 1.0x" in out, out
    unnamed = "that name no stack (the environment's lock, the relaxed-policy marks, the release history)"
    assert f"API calls per stack, full: alb 8, service 6; and 5 {unnamed}" in out, out
    assert f"API calls per stack, unchanged: alb {worst}, service 3  (target <= 4: {verdict}); and 2 {unnamed}" in out, out
    # the suite as make test runs it: pytest keeps its bytecode
    assert [env["PYTHONDONTWRITEBYTECODE"] for env in suite_env] == [""], suite_env
    assert places == {bench.ROOT}, places
    # the targets printed are the README's (Performance), in its order
    readme = (ROOT / "README.md").read_text().split("## Performance", 1)[1]
    table = readme.split("\n| figure |", 1)[1].split("\n\n", 1)[0].splitlines()[2:]  # the rows, after header and rule
    rows = [row.split("|")[-2].strip() for row in table]
    given = [float(m.group(1)) for row in rows if (m := re.match(r"([\d.]+) s", row))]
    printed = [float(n) for line in out for n in re.findall(r"target <= ([\d.]+) s", line)]
    assert printed == given, (printed, given)
    assert "one of 200 MiB" in readme and all("<= 200 MiB: ok" in line for line in out if "MiB: " in line)


@pytest.mark.parametrize("name", ["STACK", "TAG", "ENV", "CHANGESET", "ACTION", "CMD", "SINCE", "MAX_WAIT"])
@pytest.mark.parametrize("target", ["status", "deploy", "templates"])
def test_no_command_line_value_is_expanded_by_make_whatever_the_target(tmp_path, name, target):
    # README (Values on make's command line): "A value is passed as it is, never run by make
    # (TAG='$(shell ...)' stays text)". The Makefile's STACK_GIVEN := ...$(STACK) expanded STACK
    # itself, so STACK='$(shell touch x)' ran the command at parse time, for every target.
    assert_runs_nothing(tmp_path, target, name, "$(shell touch {ran})", "-n")


def test_a_switch_refused_by_make_with_a_quote_in_its_value_runs_nothing(tmp_path):
    # shown = $(shell printf '%s' '...'): without the quote's escaping, YES="'; touch x; '" ran the command
    ran = tmp_path / "ran"
    made = make_s("help", f"YES='; touch {ran}; '")
    assert made.returncode == 2 and not ran.exists(), made.stderr
    assert f"YES='; touch {ran}; ': allowed: 1, or leave it out".encode() in made.stderr, made.stderr


@pytest.mark.parametrize("dollar", [False, True])
def test_a_command_line_value_reaches_the_recipes_unless_it_holds_a_dollar_which_is_refused(tmp_path, dollar):
    # PYTEST_ADDOPTS=, RUFF_CACHE_DIR= and the like reach the tools. One holding a $ (make's own escape for a literal $ is
    # $$: a password in PIP_INDEX_URL= for make lock, a path), which make would expand, was unexported and reached no
    # recipe, unsaid (review R1): it is refused, with the way that works
    env = {k: v for k, v in SHELL_ENV.items() if k != "PYTHONDONTWRITEBYTECODE"}
    made = make_s("help", f"PYTHONPYCACHEPREFIX={tmp_path}/pyc{'$$x' if dollar else ''}", env=env, text=True)
    if not dollar:
        assert made.returncode == 0 and (tmp_path / "pyc").is_dir(), made.stderr
        return
    assert made.returncode == 2 and not list(tmp_path.iterdir()), made.stderr
    assert (
        "*** PYTHONPYCACHEPREFIX: a value holding $, which make would expand (run what $(...) holds) before a recipe gets it; "
        "set it in the shell's environment instead: PYTHONPYCACHEPREFIX='...' make ..." in made.stderr
    ), made.stderr


@pytest.mark.parametrize(("target", "name"), [("status", "VENV"), ("help", "VENV"), ("help", "BIN"), ("templates", "BIN")])
def test_a_name_the_makefile_reads_itself_is_not_run_when_given_on_the_command_line(tmp_path, target, name):
    # VENV= overrides `VENV := .venv`, which INSTALLED := $(VENV)/... expands as the Makefile is read (before make
    # status refuses a name it does not take); BIN= is expanded in the recipes
    ran = tmp_path / "ran"
    made = make_n(target, "ENV=sandbox", f"{name}=$(shell touch {ran})")
    assert not ran.exists(), f"make {target} {name}='$(shell touch ...)' ran the command"
    # refused as the Makefile is read, before the value is expanded: not a make that stopped earlier for another reason
    assert made.returncode == 2 and f"*** {name}=$(shell touch {ran}): allowed: a path of letters" in made.stderr, made.stderr


def test_the_note_of_an_unused_value_shows_text_that_is_not_ascii_as_typed():
    # cat -v shows every byte above 127 as M-...: TAG=café was shown as cafM-CM-)
    made = make_s("sandbox-status", "TAG=café")
    err = made.stderr.decode()
    (note,) = [line for line in err.splitlines() if "takes no TAG=" in line]
    assert "café" in note, note


# --- make's messages and values as text: what the refusal of a $ left open (review R2) --------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["help", "F\x1b[2JO=$x"],  # the new refusal of a value holding a $ names the variable as typed
        ["status", "F\x1b[2JO=1"],  # not a value make status takes
        ["deploy", "F\x1b[2JO=1"],  # not a value make deploy takes
        ["status", "deplo\x1b[2Jy"],  # a word that is no target, after a deployer target
        ["deplo\x1b[2Jy"],  # a misspelt target
    ],
)
def test_makes_messages_show_a_names_control_characters_as_text(argv):
    # README: make's own messages show control characters as ?, not sent to the terminal; a name (or a word taken for a
    # target) is shown by them as well, and went to the terminal as typed: ESC [2J clears the screen
    made = make_s(*argv)
    assert made.returncode == 2 and b"\x1b" not in made.stderr, made.stderr
    assert b"?[2J" in made.stderr, made.stderr  # the name is shown, its ESC as ?: not a make stopped before for another reason


@pytest.mark.parametrize("name", ["VENV", "BIN"])
def test_a_venv_or_bin_given_on_the_command_line_runs_nothing(tmp_path, name):
    # README: a value is never run; VENV= and BIN= holding no $ pass the refusal of 96b151d, and the recipes name them
    # unquoted ($(BIN)/python): a backquote in them ran in make help, make test, make sandbox-stop...
    assert_runs_nothing(tmp_path, "help", name, "`touch {ran}`")
    # a path on each of two lines passed the check line by line, and the shell then failed on it (review RB)
    made = make_s("help", f"{name}=x\n/tmp/y", text=True)
    assert made.returncode == 2 and f"*** {name}=x/tmp/y: allowed: a path of letters, digits and _ . / -, on one line" in made.stderr


@pytest.mark.parametrize("name", ["VENV", "BIN"])
def test_the_refusal_of_a_dollar_does_not_send_a_name_the_makefile_sets_to_the_environment(tmp_path, name):
    # "set it in the shell's environment instead": VENV := .venv and BIN := ... ignore the environment, so the value
    # the refusal sent there was dropped, unsaid
    made = make_n("lint", f"{name}={tmp_path}/v$x")
    # refused as a path make's own name takes (exit 2 alone is any error of make's, a stop before this value too)
    assert made.returncode == 2 and f"*** {name}={tmp_path}/v$x: allowed: a path of letters" in made.stderr, made.stderr
    assert f"set it in the shell's environment instead: {name}=" not in made.stderr, made.stderr


@pytest.mark.parametrize("target", ["deploy", "status"])
def test_a_misspelt_name_holding_a_dollar_is_refused_as_a_name_the_target_does_not_take(target):
    # make deploy STACK=service TGA='v$1' said "set it in the shell's environment instead: TGA='...' make ...": run so,
    # make deploy ran without TAG, the misspelt name ignored and unsaid (helper SZ); TGA=v1 is refused as a name deploy
    # does not take, and so is TGA='v$1' now
    for value in ("v1", "v$1"):
        made = make_n(target, "STACK=service", f"TGA={value}")
        assert made.returncode == 2 and f"*** TGA: not a value make {target} takes" in made.stderr, made.stderr
        assert "set it in the shell's environment instead" not in made.stderr, made.stderr


# Every name the Makefile sets (and make's own it reads before the refusal of a `$`) given on the command line with a
# `$(shell ...)` (RV): a command-line value replaces the Makefile's assignment, and make expanded it where the Makefile
# reads it before or while refusing it (WITH_DOLLAR, COMMAND_LINE_ONLY, quote, shown, printed; since 41df1bb
# DEPLOYER_TARGETS, RUNS_THE_DEPLOYER, NOT_FOR_THE_DEPLOYER and MAKECMDGOALS): "A value is passed as it is, never run
# by make" (README).
MAKEFILE_NAMES = sorted(
    set(re.findall(r"^(?:override +)?(?:define +)?([A-Za-z_.][A-Za-z0-9_.]*)\s*(?::=|\?=|\+=|=|$)", (ROOT / "Makefile").read_text(), re.M))
    - {"endef", "endif", "else", "ifeq", "ifneq", "unexport", "export", "override", "define", "help"}
    | {"MAKECMDGOALS"}
)


@pytest.mark.parametrize("name", MAKEFILE_NAMES)
def test_a_name_the_makefile_sets_given_a_command_on_the_command_line_runs_nothing(tmp_path, name):
    for target in ("deploy", "status", "help"):
        ran = tmp_path / f"ran-{target}"
        make_n(target, "ENV=sandbox", f"{name}=$(shell touch {ran})")
        assert not ran.exists(), f"make {target} {name}='$(shell touch ...)' ran the command"


@pytest.mark.parametrize("target", ["deploy", "destroy", "purge", *sorted(set(deployer.COMMANDS) - {"deploy", "destroy", "purge"})])
def test_every_target_that_runs_the_deployer_refuses_a_misspelt_name_holding_a_dollar_as_one_it_does_not_take(target):
    # (RV: mutation audit of 41df1bb) the refusal's list of targets lost destroy and purge, or all but deploy and
    # status, and every test passed: make destroy TGA='v$1' said to set it in the shell's environment
    made = make_n(target, "STACK=alb", "TGA=v$1")
    assert made.returncode == 2 and f"*** TGA: not a value make {target} takes" in made.stderr, made.stderr
    # and names what the target takes, as the refusal of the name without a `$` does (it said "make help lists it"), with
    # STACK= and without (helper Q8: without it, deploy's said that it takes every layer, the `$` one did not)
    for stack in (["STACK=alb"], []):
        refusals = [make_n(target, *stack, f"TGA={value}").stderr for value in ("v$1", "v1")]
        said = [re.search(r"\*\*\* (TGA: not a value make .*; allowed: [A-Z_ ]+) \(", refused) for refused in refusals]
        assert all(said) and said[0][1] == said[1][1], refusals


def test_python_holding_a_dollar_given_to_deploy_is_not_refused_as_a_name_deploy_does_not_take():
    # (RV: mutation audit of 41df1bb) PYTHON= is taken by every target (make deploy's .venv is made with it): left
    # among the names deploy does not take, every test passed
    made = make_n("deploy", "STACK=alb", "PYTHON=python3$x")
    assert made.returncode == 2 and "set it in the shell's environment instead: PYTHON='...' make" in made.stderr, made.stderr
    assert "not a value make deploy takes" not in made.stderr, made.stderr


def test_the_note_of_a_value_in_the_shells_environment_names_the_service_layer_only_for_tag_and_repair():
    # (RV: mutation audit of 41df1bb) an exported YES=1 with make status STACK=alb is no TAG= or REPAIR=: "make status
    # takes none of them", not "of that layer ... TAG= and REPAIR= are the service layer's"
    made = make_n("status", "STACK=alb", env=SHELL_ENV | {"YES": "1"})
    assert made.stderr.startswith(
        "note: ignored, as the shell's environment sets them: YES (make status takes none of them; make help lists what each target takes)"
    ), made.stderr


# Helper RX: make takes MAKECMDGOALS from the shell's environment over the targets typed (GNU make 4.3: origin
# environment, even with a target given), and 70ec6ab refuses it on the command line only. An exported MAKECMDGOALS
# left in a shell turned make destroy into "status" for the Makefile: STACK=alarms exported, the refusal that
# "without STACK destroy means every layer" was skipped and the destroy of every layer ran; and a $(shell ...) there ran.
def test_makecmdgoals_in_the_shells_environment_does_not_stand_for_the_targets_typed(tmp_path):
    made = make_n("destroy", "ENV=sandbox", env=SHELL_ENV | {"STACK": "alarms", "MAKECMDGOALS": "status"})
    assert made.returncode == 2 and "--env='sandbox'" not in made.stdout, made.stdout + made.stderr
    ran = tmp_path / "ran"
    make_n("help", env=SHELL_ENV | {"MAKECMDGOALS": f"$(shell touch {ran})"})
    assert not ran.exists(), "MAKECMDGOALS='$(shell touch ...)' in the environment ran the command"


# Helper RY (review of ebd05a6): MAKECMDGOALS is undefined under a bare `make`; refusing origin "undefined" too (a
# mutant of the refusal) broke `make` with no target, and every test passed.
def test_make_with_no_target_and_make_e_list_the_targets():
    for argv in ([], ["-e"], ["-C", str(ROOT)]):
        made = make_s(*argv, text=True)
        assert made.returncode == 0 and "make help" in made.stdout, (argv, made.stdout + made.stderr)
