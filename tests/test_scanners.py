"""cfn-lint (informational checks included) and checkov on the committed output/."""

import gc
import os

import pytest
from conftest import ROOT

import templates
from templates import validation

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
    broken, clean = tmp_path / "broken.json", tmp_path / "clean.json"
    text = (ROOT / "output" / "scaling.json").read_text()
    broken.write_text(text.replace('"ecs:service:DesiredCount"', '"ecs:service:DesiredCont"'))
    clean.write_text(text)
    frozen = gc.get_freeze_count()
    problems = validation.cfn_lint([broken, clean])
    assert gc.isenabled() and gc.get_freeze_count() > frozen
    assert any("E3030" in p and "DesiredCont" in p for p in problems), problems
    assert all(p.startswith(f"{broken}:") for p in problems), problems
    assert len(problems) == len(set(problems)), problems
    assert loads.read_text() == f"{os.getpid()} collector paused\n"  # once, here
    cached = {path.name for path in (tmp_path / "cache").iterdir()}
    assert cached == {validation.lint_key(clean)}  # the clean one is not linted again; the broken one is


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
    problems = validation.cfn_lint([bracketed / "scaling.json"])
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
