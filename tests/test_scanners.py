"""cfn-lint (informational checks included) and checkov on the committed output/."""

from conftest import ROOT

import templates
from templates import validation


def test_cfn_lint_finds_nothing():
    written = sorted(ROOT.joinpath("output").glob("*.json"))
    assert [t.stem for t in written] == sorted(templates.LAYERS)
    assert validation.cfn_lint(written, use_cache=False) == []


def test_cfn_lint_reports_a_real_problem(tmp_path):
    broken = tmp_path / "broken.json"
    text = (ROOT / "output" / "scaling.json").read_text().replace('"ecs:service:DesiredCount"', '"ecs:service:DesiredCont"')
    broken.write_text(text)
    problems = validation.cfn_lint([broken], use_cache=False)
    assert any("E3030" in p or "DesiredCont" in p for p in problems), problems


def test_checkov_fails_nothing_and_skips_only_the_explained_checks():
    checks = validation.checkov(ROOT / "output")
    assert [check for check in checks if check[1] == "failed"] == []
    skipped = {
        (file, resource, text.split()[0]): text.split("skipped: ", 1)[1].strip()
        for file, status, resource, text in checks
        if status == "skipped"
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
    passed = {file for file, status, _, _ in checks if status == "passed"}
    assert {"ci.json", "alb.json", "service.json", "waf.json"} <= passed
