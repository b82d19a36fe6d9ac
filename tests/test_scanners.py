"""cfn-lint (informational checks included) and checkov on the committed output/."""

from conftest import ROOT

import generate
from templates import validation


def test_cfn_lint_finds_nothing(monkeypatch):
    monkeypatch.chdir(ROOT)  # .cfnlintrc is read from here
    templates = sorted(ROOT.joinpath("output").glob("*.json"))
    assert [t.stem for t in templates] == sorted(generate.templates.LAYERS)
    assert validation.cfn_lint([t.relative_to(ROOT) for t in templates], use_cache=False) == []


def test_cfn_lint_reports_a_real_problem(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    broken = tmp_path / "broken.json"
    text = (ROOT / "output" / "scaling.json").read_text().replace('"ecs:service:DesiredCount"', '"ecs:service:DesiredCont"')
    broken.write_text(text)
    problems = validation.cfn_lint([broken], use_cache=False)
    assert any("E3030" in p or "DesiredCont" in p for p in problems), problems


def test_checkov_fails_nothing_and_every_skip_has_a_reason():
    failed, skipped, passed = validation.checkov_summary(ROOT / "output")
    assert failed == []
    assert passed >= 40
    assert all(line.split("skipped: ", 1)[1].strip() for line in skipped)
    assert sorted(line.split(": ")[2].split()[0] for line in skipped) == ["CKV2_AWS_71", "CKV_AWS_18", "CKV_AWS_260"]
