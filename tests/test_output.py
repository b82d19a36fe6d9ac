"""output/ is exactly what generation produces: the committed files are the golden files."""

import contextlib
import errno
import fcntl
import json
import os
import select
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, generate_main, refuse_to_open, without_unused_value_warnings

import templates
from templates import generation
from templates.inputs import INPUTS
from templates.params import load, load_all

# Every layer's template, and the layers an environment deploys whatever its enabled_layers say.
LAYERS = ["alarms", "alb", "cert-dns", "ci", "release-alarms", "scaling", "service", "waf"]
ALWAYS_DEPLOYED = ["alarms", "alb", "cert-dns", "release-alarms", "scaling", "service"]
# The parameters a layer's template configuration holds: every input of its template but those an
# upstream output wires (certificate, target group, alarm names, ...) and KeepRunningCount, which the
# deployer sets on every deploy.
CONFIGURED_PARAMETERS = {
    "ci": {"ClusterName", "DomainName", "ExistingOidcProviderArn", "GitHubCallerRepository", "GitHubRepository", "GitHubSubjects", "VpcId"},
    "cert-dns": {"DomainName", "ExistingHostedZoneId"},
    "alb": {
        "AccessLogRetentionDays",
        "AccessLogsEnabled",
        "ApiHostLabel",
        "BackendSecurityGroupId",
        "ContainerPort",
        "DeletionProtection",
        "DeploymentStrategy",
        "DeregistrationDelaySeconds",
        "DomainName",
        "HealthCheckIntervalSeconds",
        "HealthCheckPath",
        "HealthyThresholdCount",
        "IdleTimeoutSeconds",
        "NamePrefix",
        "PublicSubnetIds",
        "TestListenerCidr",
        "TestListenerPort",
        "TlsPolicy",
        "VpcId",
    },
    "waf": {"LogRetentionDays", "NamePrefix", "WafCountOnly", "WafRateLimit"},
    "release-alarms": {
        "AlarmPeriodSeconds",
        "AlertEmails",
        "BadPeriodsToAlarm",
        "DeploymentStrategy",
        "NamePrefix",
        "RollbackMonitoringMinutes",
        "Target5xxThreshold",
    },
    "service": {
        "BakeTimeMinutes",
        "CanaryBakeTimeMinutes",
        "CanaryPercent",
        "DeploymentStrategy",
        "LinearStepBakeTimeMinutes",
        "LinearStepPercent",
        "TestPauseMinutes",
        "BackendSecurityGroupId",
        "ClusterName",
        "ContainerPort",
        "ContainerUser",
        "DatabaseName",
        "DatabaseSecretArn",
        "DesiredCount",
        "DjangoSettingsModule",
        "EcrRepositoryName",
        "GunicornTimeoutSeconds",
        "GunicornWorkers",
        "HealthCheckGracePeriodSeconds",
        "ImageTag",
        "LogRetentionDays",
        "NamePrefix",
        "PrivateSubnetIds",
        "StopTimeoutSeconds",
        "TaskCpu",
        "TaskMemory",
    },
    "scaling": {
        "CpuTargetPercent",
        "MaxCapacity",
        "MemoryTargetPercent",
        "MinCapacity",
        "ScaleInCooldownSeconds",
        "ScaleOutCooldownSeconds",
    },
    "alarms": {
        "AlarmPeriodSeconds",
        "BadPeriodsToAlarm",
        "DeploymentStrategy",
        "Elb5xxThreshold",
        "MaxCapacity",
        "NamePrefix",
        "ResponseTimeP99Seconds",
        "SaturationPercent",
        "SaturationPeriods",
        "TasksBelowDesiredMinutes",
    },
}


def test_every_layer_and_environment_is_generated(generated):
    names = sorted(str(p.relative_to(ROOT)) for p in generated)
    environments = load_all(ROOT / "params")
    assert "prod" in {env.name for env in environments}  # the defaults are prod's values
    expected = [f"output/{layer}.json" for layer in LAYERS]
    for env in environments:
        # waf and ci are optional: generated for an environment only when its params file enables them.
        deployed = ALWAYS_DEPLOYED + [layer for layer in ("waf", "ci") if layer in env.enabled_layers]
        expected += [f"output/{env.name}/{layer}.json" for layer in deployed]
    assert names == sorted(expected)


def test_committed_output_matches_generation_byte_for_byte(generated):
    for path, content in generated.items():
        committed = path.read_text()
        assert committed == content, f"{path.relative_to(ROOT)} is stale: run `make templates` and commit output/"


def test_template_configuration_format(configurations):
    for (env, name), document in configurations.items():
        assert set(document) <= {"Parameters", "Tags", "StackPolicy"}
        assert all(isinstance(v, str) for v in document["Parameters"].values()), (env, name)
        assert document["Tags"]["Environment"] == env
        # the three tags by which the deployer knows a stack as ours (README: Project, Environment and Layer, all three)
        assert {key: document["Tags"].get(key) for key in ("Project", "Environment", "Layer")} == {
            "Project": templates.PROJECT,
            "Environment": env,
            "Layer": name,
        }, (env, name)
        assert set(document["Parameters"]) == CONFIGURED_PARAMETERS[name], (env, name)


def test_stack_policy_protects_stateful_resources(configurations):
    prod = {name: document for (env, name), document in configurations.items() if env == "prod"}
    assert "StackPolicy" not in prod["scaling"]
    denied = {
        name: next(s for s in doc["StackPolicy"]["Statement"] if s["Effect"] == "Deny")["Resource"]
        for name, doc in prod.items()
        if "StackPolicy" in doc
    }
    assert denied["cert-dns"] == ["LogicalResourceId/Certificate"]
    assert set(denied["alb"]) == {
        "LogicalResourceId/AccessLogBucket",
        "LogicalResourceId/LoadBalancer",
        "LogicalResourceId/TargetGroup",
        "LogicalResourceId/AlternateTargetGroup",
    }
    assert set(denied["service"]) == {"LogicalResourceId/LogGroup", "LogicalResourceId/LogKey"}


def test_each_environment_has_its_own_names(configurations):
    # (Sizes are the team's choice: a staging bigger than prod is allowed.)
    alb = {env: document["Parameters"] for (env, name), document in configurations.items() if name == "alb"}
    zones = {environment.name: environment.values["ExistingHostedZoneId"] for environment in load_all(ROOT / "params")}
    assert set(alb) == set(zones)
    assert len({values["NamePrefix"] for values in alb.values()}) == len(alb)
    # the host's alias record, in its hosted zone (the sandbox's zone is its own)
    assert len({(zones[env], values["ApiHostLabel"], values["DomainName"]) for env, values in alb.items()}) == len(alb)


def test_rerun_writes_nothing_and_check_passes(tmp_path):
    out = tmp_path / "out"
    command = [sys.executable, str(ROOT / "generate.py"), "--no-lint", "--output-dir", str(out)]
    first = subprocess.run(command, capture_output=True, text=True, check=True)
    assert "0 removed" in first.stdout
    mtimes = {p: p.stat().st_mtime_ns for p in out.rglob("*.json")}
    second = subprocess.run(command, capture_output=True, text=True, check=True)
    assert ", 0 written, 0 removed" in second.stdout
    assert mtimes == {p: p.stat().st_mtime_ns for p in out.rglob("*.json")}
    check = subprocess.run([*command[:2], "--check", "--output-dir", str(out)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr


def test_a_run_that_writes_says_the_review_documents_follow(tmp_path):
    """make templates after a params edit: output/review/ is then stale, which make check reports."""
    out = tmp_path / "out"
    (out / "review").mkdir(parents=True)
    note = f"note: {out}/review/ was made from the files before this change and may be stale: make check says whether it is, make review writes it again"
    assert note in generate_main("--no-lint", "--output-dir", out).stdout
    (out / "alb.json").write_text("{}")
    assert note in generate_main("--no-lint", "--output-dir", out).stdout
    assert note not in generate_main("--no-lint", "--output-dir", out).stdout  # nothing written: nothing to say


@pytest.mark.parametrize("inside", ["prod", "prod/deeper", "review"])
def test_an_output_dir_inside_output_is_refused_before_anything_is_written(inside):
    # --output-dir output/prod wrote the layer templates over prod's configuration files: their names match.
    before = {path: path.read_bytes() for path in (ROOT / "output").rglob("*") if path.is_file()}
    ran = generate_main("--no-lint", "--output-dir", ROOT / "output" / inside)
    assert ran.returncode == 2, ran
    assert ran.stderr.startswith("error: --output-dir ") and ran.stderr.endswith(
        f"output/{inside} is inside output/, whose files generation writes itself: use output/ or a directory outside it\nnothing was written\n"
    )
    assert {path: path.read_bytes() for path in (ROOT / "output").rglob("*") if path.is_file()} == before


def test_an_output_dir_inside_output_reached_through_a_symlink_is_refused_too(tmp_path, monkeypatch):
    # output/ a symlink to a directory elsewhere: the --output-dir given, resolved, was compared with
    # output/ unresolved, and generation wrote the layer templates over prod's configurations.
    elsewhere, output = tmp_path / "elsewhere", tmp_path / "output"
    (elsewhere / "prod").mkdir(parents=True)
    output.symlink_to(elsewhere)
    monkeypatch.setattr(generation, "OUTPUT_DIR", output)
    ran = generate_main("--no-lint", "--output-dir", output / "prod")
    assert ran.returncode == 2 and f"is inside {output}/, whose files generation writes itself" in ran.stderr, ran
    assert list(elsewhere.rglob("*")) == [elsewhere / "prod"]  # nothing written


def test_another_params_dir_is_refused_for_output_unless_an_output_dir_is_given_too(tmp_path, monkeypatch):
    # generate.py --params-dir <a folder with one environment's file> wrote into output/, and removed
    # every other environment's files there as stale. Here output/ and params/ are copies, so that a
    # regression costs the copies, not the project's.
    import generate

    output, params_copy, scratch = tmp_path / "output", tmp_path / "params", tmp_path / "scratch"
    shutil.copytree(ROOT / "output", output)
    shutil.copytree(ROOT / "params", params_copy)
    scratch.mkdir()
    first = next(
        path for path in sorted(params_copy.glob("*.yaml")) if not load(path).deploys("ci")
    )  # alone: no GitHubSubjects to name others
    shutil.copy(first, scratch / first.name)
    for module in (generate, generation):  # the defaults generate.py gives, and the directories generation compares with
        monkeypatch.setattr(module, "OUTPUT_DIR", output)
        monkeypatch.setattr(module, "PARAMS_DIR", params_copy)
    before = {path: path.read_bytes() for path in output.rglob("*") if path.is_file()}

    ran = generate_main("--no-lint", "--params-dir", scratch)
    assert ran.returncode == 2, ran
    assert ran.stderr == (
        f"error: --params-dir {scratch} writes into {output}/, which holds what {params_copy}/ generates: give --output-dir "
        f"too (a directory outside {output}/), or copy the files into {params_copy}/\nnothing was written\n"
    )
    assert {path: path.read_bytes() for path in output.rglob("*") if path.is_file()} == before
    # with --output-dir, or with the params/ directory itself named, it writes as ever
    assert generate_main("--no-lint", "--params-dir", scratch, "--output-dir", tmp_path / "elsewhere").returncode == 0
    assert {path.parent.name for path in (tmp_path / "elsewhere").glob("*/*.json")} == {first.stem}
    assert generate_main("--no-lint", "--params-dir", params_copy).returncode == 0
    assert {path: path.read_bytes() for path in output.rglob("*") if path.is_file()} == before


def test_a_stale_check_names_the_command_that_writes_the_directory_it_checked(tmp_path):
    # --check of another --output-dir said "run `make templates` and commit output/", which writes output/; and of
    # another --params-dir it named `generate.py --output-dir output --params-dir <it>`, which generate.py refuses.
    out = tmp_path / "out"
    assert generate_main("--no-lint", "--output-dir", out).returncode == 0
    configuration = sorted(out.glob("*/*.json"))[0]
    configuration.write_text(configuration.read_text() + " ")
    ran = generate_main("--check", "--no-lint", "--output-dir", out)
    assert (
        ran.returncode == 1 and ran.stderr.splitlines()[-1] == f"run `.venv/bin/python generate.py --output-dir {out} --params-dir params`"
    ), ran
    scratch = tmp_path / "params"
    scratch.mkdir()
    first = next(path for path in sorted((ROOT / "params").glob("*.yaml")) if not load(path).deploys("ci"))  # alone: see above
    shutil.copy(first, scratch / first.name)
    ran = generate_main("--check", "--no-lint", "--params-dir", scratch)
    assert ran.returncode == 1, ran
    assert (
        ran.stderr.splitlines()[-1]
        == f"run `.venv/bin/python generate.py --params-dir {scratch} --output-dir <a directory outside output/>`"
    )
    assert "which removes" not in ran.stderr and f"output/ holds what params/ generates, not {scratch}/" in ran.stderr, ran.stderr


def test_a_staging_directory_a_killed_run_left_is_said_by_generation_and_its_check(tmp_path):
    # SIGKILL while generation staged its files left output/.staging-*/ behind: make check said output/ was current,
    # and `git add output` took it in.
    out = tmp_path / "out"
    assert generate_main("--no-lint", "--output-dir", out).returncode == 0
    (out / ".staging-k1ll3d" / "qa").mkdir(parents=True)
    (out / ".staging-k1ll3d" / "qa" / "alb.json").write_text("{}")
    (out / ".staging-elsewhere").symlink_to(tmp_path)  # a symlink so named is no staging directory: not said
    said = (
        f"note: {out}/.staging-k1ll3d/ is a staging directory left by a run of generation that was killed (or used by one running "
        f"now), not output: do not commit it; once no make templates runs, remove it: rm -r {out}/.staging-k1ll3d\n"
    )
    for check in (["--check"], []):
        ran = generate_main(*check, "--no-lint", "--output-dir", out)
        assert ran.returncode == 0 and without_unused_value_warnings(ran.stderr) == said, ran
    assert (out / ".staging-k1ll3d" / "qa" / "alb.json").is_file()  # another run's may be in use: said, not removed


def test_an_output_dir_that_cannot_be_searched_is_one_line(tmp_path):
    # A path longer than the system takes (PATH_MAX, 4096) deep inside: made one level at a time.
    out = tmp_path / "out"
    out.mkdir()
    level = os.open(out, os.O_RDONLY)
    try:
        for _ in range(25):
            os.mkdir("d" * 200, dir_fd=level)
            deeper = os.open("d" * 200, os.O_RDONLY, dir_fd=level)
            os.close(level)
            level = deeper
    finally:
        os.close(level)
    ran = generate_main("--no-lint", "--output-dir", out)
    assert ran.returncode == 2 and "Traceback" not in ran.stderr, ran
    (first, second) = ran.stderr.splitlines()
    assert first.startswith(f"error: {out}/ cannot be searched at dddd") and first.endswith(": File name too long"), first
    assert len(first) < 300 and second == "nothing was written"


def test_a_check_of_stale_output_says_the_review_documents_come_next(tmp_path, monkeypatch):
    # A newcomer ran make templates as told, and make check then found output/review/ stale (helper S1): said at once
    out = tmp_path / "output"
    assert generate_main("--no-lint", "--output-dir", out).returncode == 0
    (out / "alb.json").write_text("{}")
    monkeypatch.setattr(generation, "regenerate_command", lambda output_dir, params_dir: "make templates")  # as for output/
    for review, advice in (
        (False, "run `make templates` and commit output/"),
        (True, "run `make templates`, then `make review`, and commit output/"),
    ):
        if review:
            (out / "review").mkdir()
        with pytest.raises(generation.StaleOutput) as stale:
            generation.check(ROOT / "params", out, run_lint=False)
        assert stale.value.advice == advice


def test_check_reports_stale_and_leftover_files(tmp_path):
    out = tmp_path / "out"
    # prod enabling no optional layer (a copy of params/): their configurations in out/prod/ are left over
    params_dir = shutil.copytree(ROOT / "params", tmp_path / "params")
    prod = yaml.safe_load((params_dir / "prod.yaml").read_text())
    (params_dir / "prod.yaml").write_text(yaml.safe_dump(prod | {"enabled_layers": []}))
    base = [sys.executable, str(ROOT / "generate.py"), "--output-dir", str(out), "--params-dir", str(params_dir)]
    # the generations before and after in this process (generate_main); the check between them, generate.py's own process
    assert generate_main(*base[2:], "--no-lint").returncode == 0
    (out / "alb.json").write_text(json.dumps({"edited": True}))
    (out / "prod" / "alb.json").write_text(
        (out / "prod" / "alb.json").read_text().replace('"Parameters": {', '"Parameters": {"Edited": "by hand", ', 1)
    )
    (out / "service.json").unlink()
    unused = [f"prod/{layer}.json" for layer in templates.OPTIONAL_LAYERS]
    for layer in templates.OPTIONAL_LAYERS:  # as generation wrote them while prod enabled them
        (out / "prod" / f"{layer}.json").write_text(json.dumps({"Parameters": {}, "Tags": templates.own_tags("prod", layer)}))
    (out / "gone").mkdir()  # an environment whose params file is missing (moved or deleted by mistake?)
    (out / "gone" / "alb.json").write_text(json.dumps({"Parameters": {}, "Tags": templates.own_tags("gone", "alb")}))
    check = subprocess.run([*base, "--check"], capture_output=True, text=True)
    assert check.returncode == 1
    # where a change belongs, for one made in the file by hand (make templates would undo it)
    undone = "make templates writes it anew from there, undoing any change made in the file itself"
    assert f"stale: {out}/alb.json differs from what generation produces (from templates/: {undone})\n" in check.stderr
    prod_params = templates.relative(params_dir / "prod.yaml")
    assert f"stale: {out}/prod/alb.json differs from what generation produces (from {prod_params}: {undone})\n" in check.stderr
    assert f"stale: {out}/service.json is missing; generation produces it" in check.stderr
    assert [name for name in unused if f"{name} is produced by no layer" in check.stderr] == unused
    for layer in templates.OPTIONAL_LAYERS:  # and why: the layer left the environment's enabled_layers
        assert (
            f"stale: {out}/prod/{layer}.json is produced by no layer or environment now: {layer} is not in enabled_layers of "
            f"{params_dir}/prod.yaml\n" in check.stderr
        ), check.stderr
    assert (
        f"{out}/gone/ is no environment's: there is no {params_dir}/gone.yaml; restore it to keep gone, or run "
        f"`.venv/bin/python generate.py --output-dir {out} --params-dir {params_dir}`, which removes {out}/gone/"  # not output/
        in check.stderr
    )
    assert "gone/alb.json" not in check.stderr
    written = generate_main(*base[2:], "--no-lint")
    assert written.returncode == 0, written
    # alb.json, prod/alb.json and service.json written; prod's unused configurations and gone/alb.json removed
    assert f", 3 written, {len(unused) + 1} removed\n" in written.stdout, written.stdout
    assert "Edited" not in (out / "prod" / "alb.json").read_text()
    assert not (out / "gone" / "alb.json").exists() and not any((out / name).exists() for name in unused)
    assert json.loads((out / "alb.json").read_text())["Resources"] and (out / "service.json").is_file()


def test_a_file_named_like_generations_but_made_by_someone_else_is_refused_not_removed(tmp_path):
    """An attacker's pass: `mystuff/alb.json` is named as an environment's configuration, and generation
    removed it as stale; `review/notes.md` as a review document."""
    out = tmp_path / "out"
    assert generate_main("--no-lint", "--output-dir", out).returncode == 0
    theirs = {
        out / "mystuff" / "alb.json": '{"mine": true}\n',
        out / "review" / "notes.md": "mine\n",
        # a copy of an environment's directory: its configurations carry that environment's tags, not this name's
        out / "prodold" / "alb.json": (out / "prod" / "alb.json").read_text(),
    }
    for path, text in theirs.items():
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
    before = {path: path.read_bytes() for path in out.rglob("*") if path.is_file()}
    ran = generate_main("--no-lint", "--output-dir", out)
    named = "mystuff/alb.json, prodold/alb.json, review/notes.md"
    assert ran.returncode == 2 and f"{out}/ holds files generation did not write: {named};" in ran.stderr, ran
    assert {path: path.read_bytes() for path in out.rglob("*") if path.is_file()} == before  # nothing removed, nothing written


def test_a_review_document_of_an_environment_is_expected_whatever_its_first_line(tmp_path):
    """review/<env>.md of an environment generation writes is make review's, edited since or not (written_here
    needs its title only for the review documents of environments gone): not refused, nor removed."""
    out = tmp_path / "out"
    assert generate_main("--no-lint", "--output-dir", out).returncode == 0
    env = next(path.name for path in sorted(out.iterdir()) if path.is_dir())
    document = out / "review" / f"{env}.md"
    document.parent.mkdir()
    document.write_text("my notes, above the review\n")
    for check in (["--check"], []):
        ran = generate_main(*check, "--no-lint", "--output-dir", out)
        assert ran.returncode == 0, ran
    assert document.read_text() == "my notes, above the review\n"


def test_an_output_dir_that_is_a_file_or_a_whole_tree_is_refused_at_once(tmp_path, monkeypatch):
    given = tmp_path / "README.md"
    given.write_text("mine\n")
    ran = generate_main("--no-lint", "--output-dir", given)
    assert (
        ran.returncode == 2
        and ran.stderr.splitlines()[0]
        == f"error: {given} is not a directory: generation writes into a directory there (made when missing); move it away, "
        "or name another with --output-dir"
    )
    # a tree larger than any output directory (--output-dir / took seconds to walk, then failed on a name): refused unwalked
    monkeypatch.setattr(generation, "MOST_OUTPUT_ENTRIES", 100)
    tree = tmp_path / "tree"
    for n in range(101):
        (tree / f"d{n % 10}").mkdir(parents=True, exist_ok=True)
        (tree / f"d{n % 10}" / f"f{n}").write_text("")
    ran = generate_main("--no-lint", "--output-dir", tree)
    assert (
        ran.returncode == 2
        and f"error: --output-dir {tree} holds more than 100 files and directories: not an output directory" in ran.stderr
    )
    assert sum(1 for _ in tree.rglob("*")) == 111  # nothing written
    # hidden entries (a checkout's .git) neither count nor are searched
    hidden = tmp_path / "checkout"
    (hidden / ".git").mkdir(parents=True)
    for n in range(150):
        (hidden / ".git" / f"object{n}").write_text("")
    assert generate_main("--no-lint", "--output-dir", hidden).returncode == 0


def test_a_rollbacks_check_holds_back_for_the_service_layers_files_only(tmp_path):
    """make rollback runs `generate.py --check --env=<env> --layer=service`: an edit of another layer's
    value not generated yet (an alarm threshold) held back a rollback in an incident, with `make templates`
    and a commit as the way on."""
    params = shutil.copytree(ROOT / "params", tmp_path / "params")
    out = tmp_path / "out"
    env = next(path.stem for path in sorted(params.glob("*.yaml")) if load(path).deploys("alarms"))
    where = ["--no-lint", "--params-dir", params, "--output-dir", out]
    assert generate_main(*where).returncode == 0
    data = yaml.safe_load((params / f"{env}.yaml").read_text())
    threshold = int(load(params / f"{env}.yaml").values["Elb5xxThreshold"])
    other = threshold + 1 if threshold < INPUTS["Elb5xxThreshold"].max_value else threshold - 1  # within what it allows
    data.setdefault("parameters", {})["Elb5xxThreshold"] = other  # the alarms layer's alone
    (params / f"{env}.yaml").write_text(yaml.safe_dump(data))
    (out / "alarms.json").write_text("{}")  # and the layer's template, which every environment deploys
    rollback = generate_main("--check", "--env", env, "--layer", "service", *where)
    assert rollback.returncode == 0, rollback
    assert without_unused_value_warnings(rollback.stderr) == (
        f"note: {out / 'alarms.json'}, {out / env / 'alarms.json'} are stale, of another environment or layer than {env}'s "
        f"service, which this does not read: `.venv/bin/python generate.py --output-dir {out} --params-dir {params}` writes them\n"
    ), rollback.stderr
    assert generate_main("--check", "--env", env, *where).returncode == 1  # make deploy: the whole environment
    (out / "service.json").write_text("{}")  # the service layer's own template
    assert generate_main("--check", "--env", env, "--layer", "service", *where).returncode == 1
    with pytest.raises(SystemExit) as refused:  # without --env it means nothing: argparse's usage error
        generate_main("--check", "--layer", "service", *where)
    assert refused.value.code == 2


def test_a_deploys_check_holds_back_for_its_own_environments_files_and_the_layer_templates_only(tmp_path):
    # make deploy ENV=<env> runs `generate.py --check --env=<env>`: a half-made edit of another
    # environment's params held back every environment's deploy and rollback.
    params = shutil.copytree(ROOT / "params", tmp_path / "params")
    out = tmp_path / "out"
    env, other = sorted(path.stem for path in params.glob("*.yaml"))[:2]
    where = ["--no-lint", "--params-dir", params, "--output-dir", out]
    assert generate_main(*where).returncode == 0
    data = yaml.safe_load((params / f"{other}.yaml").read_text())
    data["parameters"]["LogRetentionDays"] = next(d for d in (1, 3) if d != data["parameters"].get("LogRetentionDays"))
    (params / f"{other}.yaml").write_text(yaml.safe_dump(data))
    mine = generate_main("--check", "--env", env, *where)
    assert mine.returncode == 0, mine
    assert without_unused_value_warnings(mine.stderr).startswith(
        f"note: {out / other}/ is stale, of another environment than {env}, which this does not read:"
    )
    theirs = generate_main("--check", "--env", other, *where)
    assert theirs.returncode == 1 and f"stale: {out / other}/" in theirs.stderr, theirs
    assert generate_main("--check", *where).returncode == 1  # make check: every environment
    (out / "alb.json").write_text("{}")  # a layer template every environment deploys
    assert generate_main("--check", "--env", env, *where).returncode == 1
    with pytest.raises(SystemExit) as refused:  # without --check it means nothing: argparse's usage error
        generate_main("--env", env, *where)
    assert refused.value.code == 2
    # A mistyped name (make deploy ENV=<typo>) is said as such: it was checked as every environment,
    # which named another's stale files and not the typo.
    typo = env[:-1]
    unknown = generate_main("--check", "--env", typo, *where)
    assert unknown.returncode == 2, unknown
    assert unknown.stderr == (
        f"error: unknown environment {typo!r} (did you mean {env}?): no {params / typo}.yaml; "
        f"environments: {', '.join(sorted(path.stem for path in params.glob('*.yaml')))}\n"
    ), unknown.stderr
    # the same while another file has problems (a draft): the typo first, not the draft's problems
    (params / "qa.yaml").write_text((params / f"{other}.yaml").read_text())
    drafted = generate_main("--check", "--env", typo, *where)
    assert drafted.returncode == 2 and drafted.stderr.startswith(f"error: unknown environment {typo!r} (did you mean {env}?)"), drafted
    assert len(drafted.stderr.splitlines()) == 1 and ", qa, " in drafted.stderr, drafted.stderr
    # and a path is no name: ENV=../params/<env> is not read through
    path = f"../{params.name}/{env}"
    said = generate_main("--check", "--env", path, *where).stderr
    assert said.startswith(f"error: ENV={path!r} is not an environment name"), said


def test_order_is_printed():
    result = subprocess.run([sys.executable, str(ROOT / "generate.py"), "--order"], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "ci -> cert-dns -> alb -> waf -> release-alarms -> service -> scaling -> alarms"


def test_arguments_that_mean_nothing_together_or_name_no_layer_are_refused(tmp_path):
    # argparse's usage error (exit 2), before anything is read (--order with --check would print the order and check nothing)
    env = sorted(path.stem for path in (ROOT / "params").glob("*.yaml"))[0]
    for argv in (["--order", "--check"], ["--check", "--env", env, "--layer", "nosuch"], ["--env", ""]):
        with pytest.raises(SystemExit) as refused:
            generate_main("--no-lint", "--output-dir", tmp_path / "out", *argv)
        assert refused.value.code == 2, argv
    assert not (tmp_path / "out").exists()


def test_the_default_directories_are_the_projects_wherever_generate_py_runs_from(tmp_path):
    # params/ and output/ of the checkout generate.py is in, not of the working directory
    ran = subprocess.run(
        [sys.executable, str(ROOT / "generate.py"), "--check", "--no-lint"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert ran.returncode == 0, ran.stderr


def test_a_symlink_in_output_is_refused_and_nothing_outside_is_removed_or_written(tmp_path):
    # Stale-file removal followed output/old -> elsewhere and deleted elsewhere/alb.json; writes
    # through a symlinked <env>/ would land outside too.
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    assert generate_main("--no-lint", "--output-dir", out).returncode == 0
    elsewhere.mkdir()
    (elsewhere / "alb.json").write_text('{"mine": true}')
    (out / "old").symlink_to(elsewhere)
    ran = generate_main("--no-lint", "--output-dir", out)
    assert ran.returncode == 2 and "holds files generation did not write: old (a symlink)" in ran.stderr, ran.stderr
    assert (elsewhere / "alb.json").read_text() == '{"mine": true}'


def test_files_are_written_as_utf8_whatever_the_locale_and_readable_by_all(tmp_path):
    # The review documents hold →, × and —: under LC_ALL=C a text write without an encoding failed.
    target = tmp_path / "doc.md"
    probe = f"from pathlib import Path; from templates.generation import write_atomically; write_atomically(Path({str(target)!r}), '\\u2192 \\u00d7 \\u2014')"  # ASCII on the command line
    env = {k: v for k, v in os.environ.items() if not k.startswith("LC_")} | {"LC_ALL": "C", "PYTHONUTF8": "0", "PYTHONIOENCODING": ""}
    ran = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True)
    assert ran.returncode == 0, ran.stderr
    assert target.read_bytes() == "→ × —".encode()
    # Readable by all, as a checkout's files are (mkstemp makes them 0600): ops and CI read them as other users.
    assert target.stat().st_mode & 0o777 == 0o644


@pytest.mark.parametrize("stop_after_replace", [False, True])
def test_ctrl_c_during_an_atomic_write_leaves_the_old_file_or_the_new_one_and_no_temporary(tmp_path, monkeypatch, stop_after_replace):
    # Ctrl-C right after the replace turned into a FileNotFoundError from removing the temporary the replace had
    # moved: make review said "cannot write" of a document written whole.
    from templates import generation

    target = tmp_path / "doc.md"
    target.write_text("old")
    replace = os.replace

    def interrupted(source, destination):
        if stop_after_replace:
            replace(source, destination)
        raise KeyboardInterrupt

    monkeypatch.setattr(generation.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        generation.write_atomically(target, "new")
    assert target.read_text() == ("new" if stop_after_replace else "old")
    assert [p.name for p in tmp_path.iterdir()] == ["doc.md"]


def no_template_default_and_every_configuration_gives_it(names) -> None:
    """Each of these inputs a layer declares has no Default in its template, and every environment's configuration of
    the layer gives the environment's value."""
    declared = 0
    for layer in templates.LAYERS:
        template = json.loads((ROOT / "output" / f"{layer}.json").read_text())
        for name in set(names) & set(template.get("Parameters", {})):
            declared += 1
            assert "Default" not in template["Parameters"][name], (layer, name)
            for env in load_all(ROOT / "params"):
                if env.deploys(layer):
                    config = json.loads((ROOT / "output" / env.name / f"{layer}.json").read_text())
                    assert config["Parameters"][name] == env.values[name], (env.name, layer, name)
    assert declared


def test_inputs_that_keep_environments_apart_have_no_template_default_and_every_configuration_gives_them():
    # A stack made in the console from a template with production's backend security group or
    # database secret as defaults would share production's; the deployer's configurations name each.
    from templates.params import ISOLATING_INPUTS

    no_template_default_and_every_configuration_gives_it(ISOLATING_INPUTS)


def test_each_template_groups_every_parameter_once_by_who_gives_it():
    # The console shows AWS::CloudFormation::Interface's groups: a value a run sets, or one wired
    # from an upstream stack, must not read as one to type in.
    from templates.inputs import DEPLOY_TIME, WIRED

    for layer in templates.LAYERS:
        template = json.loads((ROOT / "output" / f"{layer}.json").read_text())
        groups = template["Metadata"]["AWS::CloudFormation::Interface"]["ParameterGroups"]
        grouped = [name for group in groups for name in group["Parameters"]]
        assert sorted(grouped) == sorted(template["Parameters"]), layer  # each once, none left out
        where = {name: group["Label"]["default"] for group in groups for name in group["Parameters"]}
        for name in template["Parameters"]:
            label = where[name]
            if name in WIRED:
                assert label.startswith("Set by the deployer from the upstream stacks"), (layer, name)
            elif name in DEPLOY_TIME or name == "ImageTag":
                assert label.startswith("Set by the deployer at each run"), (layer, name)
            else:
                assert label.startswith("This environment's values: params/<env>.yaml"), (layer, name)


def test_a_huge_file_in_place_of_a_template_is_stale_without_being_read(tmp_path, monkeypatch):
    """Compared by size first: a 4 GiB file (sparse here) left where a template belongs was read whole."""
    import pathlib

    out = shutil.copytree(ROOT / "output", tmp_path / "out")
    huge = out / "service.json"
    os.truncate(huge, 1 << 32)
    real_read_bytes = pathlib.Path.read_bytes

    def read_bytes(path):
        assert path != huge, "the huge file was read"
        return real_read_bytes(path)

    monkeypatch.setattr(pathlib.Path, "read_bytes", read_bytes)
    ran = generate_main("--check", "--no-lint", "--output-dir", out)
    assert ran.returncode == 1 and f"stale: {huge} differs from what generation produces" in ran.stderr, ran.stderr


def test_a_generated_file_that_cannot_be_read_is_said_so_not_said_to_differ(tmp_path, monkeypatch):
    # chmod 000 output/sandbox/alb.json (the tests run as root, whom it does not stop): "differs from what generation produces"
    out = shutil.copytree(ROOT / "output", tmp_path / "out")
    refused = out / "alb.json"
    refuse_to_open(monkeypatch, refused)
    ran = generate_main("--check", "--no-lint", "--output-dir", out)
    assert (
        ran.returncode == 1
        and (f"stale: {refused} cannot be read (Permission denied); `make templates` writes it anew, or give it read permission\n")
        in ran.stderr
    ), ran.stderr


def test_a_fifo_or_a_directory_in_place_of_a_generated_file_is_said_to_differ_not_to_be_unreadable(tmp_path):
    # how_changed: read permission is no fix for what is no regular file; the check neither blocks on the FIFO
    out = shutil.copytree(ROOT / "output", tmp_path / "out")
    fifo, directory = out / "alb.json", out / "service.json"
    fifo.unlink()
    os.mkfifo(fifo)
    directory.unlink()
    directory.mkdir()
    ran = generate_main("--check", "--no-lint", "--output-dir", out)
    assert ran.returncode == 1, ran
    said = "differs from what generation produces (from templates/: make templates writes it anew from there, undoing any change made in the file itself)"
    assert f"stale: {fifo} {said}\n" in ran.stderr, ran.stderr
    # not one make templates writes anew: it refuses to ("cannot write .../service.json: Is a directory")
    said = (
        "is a directory where generation produces a file, which make templates does not write over: move it away, then run make templates"
    )
    assert f"stale: {directory} {said}\n" in ran.stderr, ran.stderr
    assert "cannot be read" not in ran.stderr, ran.stderr
    written = generate_main("--no-lint", "--output-dir", out)
    assert written.returncode == 1 and f"cannot write {directory}: Is a directory" in written.stderr, written.stderr
    directory.rmdir()  # moved away, as said: make templates writes both, the FIFO's file too
    written = generate_main("--no-lint", "--output-dir", out)
    assert written.returncode == 0 and fifo.is_file() and directory.is_file(), written.stderr


def review_title(env: str) -> str:
    return generation.REVIEW_TITLE.format(env=env) + "\n"


@pytest.mark.parametrize(
    ("name", "content"),
    [
        # a review document's title, but no document's name: review/<env>.md alone is the review's
        ("review/nowhere.txt", lambda: review_title("nowhere")),
        # the same as a .json: no configuration either, since review/ is no environment's directory (the stale
        # configurations' glob reaches it)
        ("review/nowhere.json", lambda: review_title("nowhere")),
        # a configuration's own tags, in a directory no environment can be named (ENV_NAME: lower-case letters and digits)
        ("Nowhere/alb.json", lambda: json.dumps({"Parameters": {}, "Tags": templates.own_tags("Nowhere", "alb")})),
        # a configuration's own tags, in a file too large to be one generation wrote (read_regular_file refuses it)
        (
            "nowhere/alb.json",
            lambda: json.dumps({"Parameters": {}, "Tags": templates.own_tags("nowhere", "alb")}) + " " * generation.MOST_OWN_FILE_BYTES,
        ),
        # beside the layer templates, a name no layer has, with the tags written_here would look for
        ("nowhere.json", lambda: json.dumps({"Parameters": {}, "Tags": templates.own_tags("nowhere.json", "nowhere")})),
    ],
    ids=[
        "review title, other suffix",
        "review title, a configuration's suffix",
        "own tags, no environment's name",
        "own tags, too large",
        "no layer's name",
    ],
)
def test_a_file_generation_cannot_have_written_is_refused_whatever_it_holds_and_kept(tmp_path, name, content):
    out = tmp_path / "out"
    assert generate_main("--no-lint", "--output-dir", out).returncode == 0
    stray = out / name
    assert not stray.exists() and not (ROOT / "params" / f"{stray.parent.name}.yaml").exists()
    stray.parent.mkdir(exist_ok=True)
    stray.write_text(content())
    before = stray.read_bytes()
    for check in (["--check"], []):
        ran = generate_main(*check, "--no-lint", "--output-dir", out)
        assert ran.returncode == 2 and f"error: {out}/ holds files generation did not write: {name}; " in ran.stderr, ran
    assert stray.read_bytes() == before


def test_an_output_dir_of_as_many_entries_as_allowed_is_searched_and_one_more_is_refused(tmp_path, monkeypatch):
    # MOST_OUTPUT_ENTRIES files and directories are taken (as foreign files, here); one more is the refusal of a whole tree
    monkeypatch.setattr(generation, "MOST_OUTPUT_ENTRIES", 4)
    out = tmp_path / "out"
    (out / "sub").mkdir(parents=True)
    for name in ("a", "b", "sub/c"):
        (out / name).write_text("mine\n")
    assert generation.foreign_files(out) == [out / "a", out / "b", out / "sub" / "c"]
    (out / "sub" / "d").write_text("mine\n")
    with pytest.raises(generation.GenerationError, match=f"^--output-dir {out} holds more than 4 files and directories: "):
        generation.foreign_files(out)


def test_generated_files_are_readable_by_all_whatever_the_umask(tmp_path):
    # ops and CI read output/ as other users: a umask of 077 made the staged files 0600, moved into place as they were
    out = tmp_path / "out"
    previous = os.umask(0o077)
    try:
        assert generate_main("--no-lint", "--output-dir", out).returncode == 0
    finally:
        os.umask(previous)
    modes = {path.relative_to(out): path.stat().st_mode & 0o777 for path in out.rglob("*") if path.is_file()}
    assert modes and set(modes.values()) == {0o644}, modes


def test_the_refusal_of_foreign_files_names_five_and_counts_the_rest(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    for count, named in ((5, "a.txt, b.txt, c.txt, d.txt, e.txt;"), (6, "a.txt, b.txt, c.txt, d.txt, e.txt and 1 more;")):
        for name in "abcdef"[:count]:
            (out / f"{name}.txt").write_text("mine\n")
        ran = generate_main("--no-lint", "--output-dir", out)
        assert ran.returncode == 2 and f"error: {out}/ holds files generation did not write: {named} it writes only" in ran.stderr, ran


def test_a_long_path_that_cannot_be_searched_is_said_by_its_two_ends(tmp_path, monkeypatch):
    # past 120 characters, the place inside --output-dir is its first and last 60 (a path of PATH_MAX was 4096)
    out = tmp_path / "out"
    out.mkdir()
    walk = os.walk
    for deep, whole in (
        (Path(*["d" * 100] * 3, "e" * 100), False),
        (Path("d" * 59, "e" * 60), True),  # 120 characters: said whole
        (Path("d" * 60, "e" * 60), False),  # one more: by its two ends
    ):

        def refused(top, onerror=None, deep=deep, **kwargs):
            if Path(top) == out:
                onerror(PermissionError(13, "Permission denied", str(out / deep)))
            return walk(top, onerror=onerror, **kwargs)

        monkeypatch.setattr(generation.os, "walk", refused)
        ran = generate_main("--no-lint", "--output-dir", out)
        where = str(deep) if whole else f"{str(deep)[:60]}...{str(deep)[-60:]}"
        assert ran.returncode == 2 and ran.stderr.splitlines() == [
            f"error: {out}/ cannot be searched at {where}: Permission denied",
            "nothing was written",
        ], ran


def test_a_network_id_whose_default_is_an_example_is_no_template_default_and_every_configuration_gives_it():
    # The console offered vpc-0a1b2c3d4e5f60718 and the example subnets as each template's defaults, as if they were the
    # account's (their Descriptions say nothing of examples); a stack made there with them is refused by CloudFormation
    # only at the change set. The deployer's configurations name each environment's.
    from templates.inputs import EXAMPLE_ID_HEX, INPUTS

    examples = [name for name, spec in INPUTS.items() if isinstance(spec.default, str) and EXAMPLE_ID_HEX in spec.default]
    assert {"VpcId", "PublicSubnetIds", "PrivateSubnetIds"} <= set(examples), examples
    no_template_default_and_every_configuration_gives_it(examples)


@pytest.mark.parametrize("option", ["--output-dir", "--params-dir"])
@pytest.mark.parametrize("action", [[], ["--check"], ["--order"]])
def test_a_directory_option_naming_a_symlink_loop_is_one_line_not_a_traceback(tmp_path, option, action):
    # ln -s loop loop: as_typed's Path.resolve() raises RuntimeError("Symlink loop from ...") on Python 3.11,
    # which entry_point does not catch; run() prints a traceback.
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    ran = subprocess.run(
        [sys.executable, str(ROOT / "generate.py"), *action, "--no-lint", option, str(loop)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert "Traceback" not in ran.stderr and ran.returncode == 2, ran.stderr[-600:]
    assert len(ran.stderr.splitlines()) <= 2 and str(loop) in ran.stderr, ran.stderr


def test_the_summary_line_shows_an_output_dir_of_control_characters_escaped(tmp_path):
    # The errors escape a name's control characters (errors.printable: a newline would forge a second line, an ESC
    # drives the terminal); the summary line of a successful run prints --output-dir raw.
    out = tmp_path / "out\x1b[31m\nforged"
    ran = generate_main("--no-lint", "--output-dir", out)
    assert ran.returncode == 0, ran
    assert "\x1b" not in ran.stdout and len(ran.stdout.splitlines()) == 1, repr(ran.stdout)


@pytest.mark.parametrize("name", ["out\x1b[31m\nerror: forged", "my out"])
def test_the_leftover_staging_note_shows_its_path_escaped_and_its_rm_command_quoted(tmp_path, name):
    # The summary line escapes --output-dir's control characters (ae55a10); the note of a leftover staging directory
    # beside it printed the path raw (a newline forged an "error:" line), and its `rm -r <path>` unquoted: pasted, the
    # command for "my out/.staging-x" removes "my" and "out/.staging-x", which generation did not make.
    out = tmp_path / name
    (out / ".staging-x").mkdir(parents=True)
    ran = generate_main("--no-lint", "--output-dir", out)
    assert ran.returncode == 0, ran
    notes = [line for line in without_unused_value_warnings(ran.stderr).splitlines() if line]
    assert len(notes) == 1 and "\x1b" not in notes[0], repr(ran.stderr)
    if name.isprintable():  # an escaped name is shown, not pasted: its command is checked where it is printable
        command = notes[0].rpartition("remove it: ")[2]
        assert shlex.split(command) == ["rm", "-r", str(out / ".staging-x")], command


# --- one generation at a time (helper Q5): make templates moved its files in one at a time, while a deploy, a check or
# a second make templates read them


@contextlib.contextmanager
def output_taken(out, how):
    """out held as another run holds it (fcntl.LOCK_EX: a make templates moving its files in; LOCK_SH: a reader)."""
    held = os.open(out, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(held, how)
        yield
    finally:
        os.close(held)


def started_waiting(out, *argv):
    """generate.py with argv on out, started, once it says it waits for out: the process."""
    ran = subprocess.Popen(
        [sys.executable, "generate.py", "--no-lint", "--output-dir", str(out), *argv], cwd=ROOT, stderr=subprocess.PIPE, text=True
    )
    ready, _, _ = select.select([ran.stderr], [], [], 60)
    line = ran.stderr.readline() if ready else ""
    if not line.startswith("waiting for another run"):
        ran.kill()
        ran.wait()
        pytest.fail(f"generate.py {' '.join(argv)} did not wait for the run holding {out}: {line!r}")
    return ran


def test_a_second_make_templates_compares_with_what_the_first_moved_in(tmp_path):
    # Two make templates at once: the second, of the sources as committed, compared output/ before the first (of an edit)
    # moved its files in, wrote nothing, and output/ was left holding the edit
    out = tmp_path / "out"
    assert generate_main("--no-lint", "--output-dir", out).returncode == 0
    committed = (out / "alb.json").read_text()
    with output_taken(out, fcntl.LOCK_EX):
        second = started_waiting(out)
        (out / "alb.json").write_text(committed.replace('"Description": "', '"Description": "edited '))  # the first's file
    _, err = second.communicate(timeout=120)
    assert second.returncode == 0 and (out / "alb.json").read_text() == committed, err


def test_a_check_reads_the_files_of_one_generation(tmp_path):
    # make deploy's check, run while make templates moves its files in, read some old and some new ones
    out = tmp_path / "out"
    assert generate_main("--no-lint", "--output-dir", out).returncode == 0
    committed = (out / "alb.json").read_text()
    with output_taken(out, fcntl.LOCK_EX):
        (out / "alb.json").write_text("{}")  # half moved in
        check = started_waiting(out, "--check")
        (out / "alb.json").write_text(committed)  # all moved in
    _, err = check.communicate(timeout=120)
    assert check.returncode == 0, err


def test_make_templates_waits_for_a_run_reading_output_and_gives_up_after_its_bound(tmp_path, monkeypatch, capsys):
    # the bound the README gives the wait (its table of failures), shortened below
    assert f"given up after {generation.OUTPUT_WAIT_SECONDS} s;" in (ROOT / "README.md").read_text()
    out = tmp_path / "out"
    assert generate_main("--no-lint", "--output-dir", out).returncode == 0
    monkeypatch.setattr(generation, "OUTPUT_WAIT_SECONDS", 0.3)
    with output_taken(out, fcntl.LOCK_SH), pytest.raises(templates.errors.ToolError) as held:
        generation.generate(ROOT / "params", out, run_lint=False)
    assert str(held.value) == (
        f"{out}/ is still held, after 0.3 s, by another run reading or writing it (make templates, make review or a deploy): "
        "let it finish, or stop it, and run this again"
    )
    assert capsys.readouterr().err == f"waiting for another run using {out}/ to finish\n"


def test_the_deployer_and_the_review_read_output_while_they_hold_it(aws, monkeypatch):
    from scripts import deploy
    from scripts.review import collect

    read = []
    loaded, checked = deploy.load_layer, collect.check_fresh
    held = lambda output: os.path.realpath(output) in generation._held  # noqa: E731
    # the deployer's output/ is the copy stubbed_aws.deployer_files makes where prod's ExistingHostedZoneId is empty
    monkeypatch.setattr(deploy, "load_layer", lambda *args: read.append(("deployer", held(aws.dirs[0]))) or loaded(*args))
    monkeypatch.setattr(collect, "check_fresh", lambda *args: read.append(("review", held(ROOT / "output"))) or checked(*args))
    aws.diff_reads("alb")
    assert aws.run("diff", "--stack", "alb") == 0, aws.out + aws.err  # same as deployed
    collect.collect_all(ROOT / "output", ROOT / "params", "prod")
    assert read == [("deployer", True), ("review", True)], read


def test_a_process_forked_while_output_is_held_does_not_keep_it_held(tmp_path):
    # (review of b135c0e) "the lock goes with the process, however it ends": make templates forks its cfn-lint workers
    # while it holds output/, and they share the held descriptor: a make templates killed (kill -9, the OOM killer)
    # while linting left its workers blocked for good, holding output/, and every make templates, check, deploy and
    # review after it waited 300 s and failed, naming no process
    import signal
    import time

    out = tmp_path / "out"
    out.mkdir()
    with generation.output_held(out, writing=True):
        child = os.fork()
        if child == 0:  # a worker: outlives the run that forked it
            try:
                time.sleep(30)
            finally:
                os._exit(0)
    try:
        taken = os.open(out, os.O_RDONLY | os.O_DIRECTORY)
        try:
            deadline = time.monotonic() + 5  # the child's own start, as a worker's, comes in its time
            while True:
                try:
                    fcntl.flock(taken, fcntl.LOCK_EX | fcntl.LOCK_NB)  # the holder is done: output/ is free
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        pytest.fail(f"{out} is still held, by the process forked while it was held")
                    time.sleep(0.05)
        finally:
            os.close(taken)
    finally:
        os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)


def test_the_wait_for_output_shows_its_path_escaped(tmp_path, monkeypatch, capsys):
    # (review of b135c0e) the summary line and the leftover-staging note escape --output-dir's control characters;
    # the new "waiting for another run ..." line printed it raw (an ESC drives the terminal, a newline forges a line)
    out = tmp_path / "out\x1b[31m\nerror: forged"
    assert generate_main("--no-lint", "--output-dir", out).returncode == 0
    monkeypatch.setattr(generation, "OUTPUT_WAIT_SECONDS", 0.2)
    with output_taken(out, fcntl.LOCK_EX), pytest.raises(templates.errors.ToolError):
        generation.check(ROOT / "params", out, run_lint=False)
    err = capsys.readouterr().err
    assert "\x1b" not in err and len(err.splitlines()) == 1, repr(err)


def test_a_deployer_that_gives_up_waiting_for_output_says_so_without_a_traceback(aws, monkeypatch):
    # (review of b135c0e) the deployer's own hold of output/ (validate) raised the 300 s bound's ToolError past
    # deploy.main, which reports Failure alone: `python -m scripts.deploy diff ...` ended in a traceback, exit 1
    monkeypatch.setattr(generation, "OUTPUT_WAIT_SECONDS", 0.3)
    with output_taken(aws.dirs[0], fcntl.LOCK_EX):
        try:
            code = aws.run("diff", "--stack", "alb")
        except templates.errors.ToolError as error:
            pytest.fail(f"raised past deploy.main (a traceback from python -m scripts.deploy): {error}")
    # diff's 1 means "differs": an error is 2, as every other error of make diff
    assert code == 2, aws.err
    shown = templates.relative(aws.dirs[0])  # output, or stubbed_aws.deployer_files' copy
    assert f"error: {shown}/ is still held, after 0.3 s, by another run writing it (make templates)" in aws.err, aws.err


def test_runs_reading_output_do_not_wait_for_each_other_nor_a_run_for_itself(tmp_path, monkeypatch):
    # (review of b135c0e: mutants that left every test green) readers share output/ (a reader taking it alone made every
    # check wait for a deploy's reads); a run that holds it and reads it again goes on (make templates' own check would
    # wait for itself); where the file system has no locks, runs go on without
    out = tmp_path / "out"
    assert generate_main("--no-lint", "--output-dir", out).returncode == 0
    monkeypatch.setattr(generation, "OUTPUT_WAIT_SECONDS", 0.3)
    with output_taken(out, fcntl.LOCK_SH):
        generation.check(ROOT / "params", out, run_lint=False)
    with generation.output_held(out, writing=True):
        generation.check(ROOT / "params", out, run_lint=False)

    def no_locks(*_):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    generation.generate(ROOT / "params", out, run_lint=False)


def test_make_templates_moves_its_files_in_while_it_holds_output(tmp_path, monkeypatch):
    # (review of b135c0e) a publish moved out of the hold left every test green: readers would see it half done
    out = tmp_path / "out"
    assert generate_main("--no-lint", "--output-dir", out).returncode == 0
    (out / "alb.json").write_text("{}")
    published, held = [], generation.publish
    monkeypatch.setattr(
        generation, "publish", lambda *args, **kwargs: published.append(os.path.realpath(out) in generation._held) or held(*args, **kwargs)
    )
    generation.generate(ROOT / "params", out, run_lint=False)
    assert published == [True] and (out / "alb.json").read_text() != "{}"


def test_a_hold_that_ended_is_taken_again_not_passed_over(tmp_path, monkeypatch):
    # (review of ada5049) a run that held output/ and let it go holds it again at its next read: a hold that left its
    # directory in _held (no _held.pop) had every later read of the same process pass over the lock, and no test failed
    out = tmp_path / "out"
    out.mkdir()
    with generation.output_held(out):
        pass
    monkeypatch.setattr(generation, "OUTPUT_WAIT_SECONDS", 0.2)
    with output_taken(out, fcntl.LOCK_EX), pytest.raises(generation.OutputHeld), generation.output_held(out):
        pass


@pytest.mark.parametrize("command", [("status", "--stack", "alb"), ("events", "--stack", "alb")])
def test_a_deployer_command_that_reads_no_layer_file_does_not_wait_for_output(aws, monkeypatch, command):
    # (review of b135c0e) validate held output/ for every command, though only deploy, changeset, execute, diff and
    # rollback read its files: make status, events, logs or destroy during a make templates (or one stopped by Ctrl-Z)
    # waited for it, up to 300 s, then failed with exit 2
    from scripts import deploy

    monkeypatch.setattr(generation, "OUTPUT_WAIT_SECONDS", 0.3)
    validated, validate = [], deploy.validate

    def validate_alone(args):  # the command itself, past its validation, is not this test's
        validated.append(validate(args))
        raise deploy.Failure("validated", 9)

    monkeypatch.setattr(deploy, "validate", validate_alone)
    with output_taken(aws.dirs[0], fcntl.LOCK_EX):
        code = aws.run(*command)
    assert code == 9 and validated, aws.err


def test_every_readme_table_row_is_one_line():
    # A table row broken over lines renders each later line as a row of its own (GitHub's Markdown: a table ends
    # only at a blank line or another block), its text in the first column: README's Faults table did so.
    in_table = in_code = False
    broken = []
    for number, line in enumerate((ROOT / "README.md").read_text().splitlines(), 1):
        in_code ^= line.startswith("```")
        if in_code or line.startswith("```"):
            continue
        if line.startswith("|"):
            in_table = True
        elif not line.strip():
            in_table = False
        elif in_table:
            broken.append(f"README.md:{number}: {line[:60]}")
    assert not broken, broken
