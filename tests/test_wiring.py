"""The layer order comes from the wiring; broken wiring names both ends."""

import re

import pytest

import templates
from templates import WiringError, check_wiring, layer_order


def test_order_is_derived_from_wiring():
    assert layer_order() == ["ci", "cert-dns", "alb", "waf", "release-alarms", "service", "scaling", "alarms"]


def test_order_follows_a_changed_wiring():
    wiring = {("cert-dns", "X"): ("scaling", "Y")}
    assert layer_order(wiring, ["cert-dns", "scaling"]) == ["scaling", "cert-dns"]


def test_cycle_names_both_ends():
    wiring = {**templates.WIRING, ("cert-dns", "ServiceUrl"): ("alb", "ServiceUrl")}
    with pytest.raises(WiringError, match="cycle: .*alb.*cert-dns|cycle: .*cert-dns.*alb"):
        layer_order(wiring)


def test_a_cycle_is_named_in_the_direction_values_flow():
    # as the other wiring messages name an edge (upstream.output -> downstream.parameter): a feeds b, b feeds c, c feeds a
    wiring = {("b", "FromA"): ("a", "ToB"), ("c", "FromB"): ("b", "ToC"), ("a", "FromC"): ("c", "ToA")}
    with pytest.raises(WiringError) as raised:
        layer_order(wiring, ["a", "b", "c"])
    assert str(raised.value).partition(": ")[2] in ("a -> b -> c -> a", "b -> c -> a -> b", "c -> a -> b -> c"), raised.value


def test_missing_layer_named():
    with pytest.raises(WiringError, match=r"cdn.DistributionId -> alb.DistributionId: no layer named 'cdn'"):
        layer_order({("alb", "DistributionId"): ("cdn", "DistributionId")})


def built():
    return {name: module.build() for name, module in templates.LAYERS.items()}


def test_missing_output_named():
    with pytest.raises(WiringError, match=r"cert-dns.CertArn -> alb.CertificateArn: layer 'cert-dns' has no output 'CertArn'"):
        check_wiring(built(), {("alb", "CertificateArn"): ("cert-dns", "CertArn")})


def test_missing_parameter_named():
    wiring = {**templates.WIRING, ("service", "Nope"): ("alb", "TargetGroupArn")}
    with pytest.raises(WiringError, match=r"alb.TargetGroupArn -> service.Nope: layer 'service' has no parameter 'Nope'"):
        check_wiring(built(), wiring)


def test_unwired_parameter_without_default_is_refused():
    wiring = {k: v for k, v in templates.WIRING.items() if k != ("alb", "CertificateArn")}
    with pytest.raises(WiringError, match="'alb' parameter 'CertificateArn' has no default and nothing wires it"):
        check_wiring(built(), wiring)


def test_stack_names():
    assert templates.stack_name("prod", "cert-dns") == "startupwebapp-prod-cert-dns"


def test_what_feeds_a_layer_and_what_it_feeds():
    assert templates.wired_into("service") == {
        "TargetGroupArn": ("alb", "TargetGroupArn"),
        "AlternateTargetGroupArn": ("alb", "AlternateTargetGroupArn"),
        "ProductionListenerRuleArn": ("alb", "ProductionListenerRuleArn"),
        "TestListenerRuleArn": ("alb", "TestListenerRuleArn"),
        "DeploymentAlarmNames": ("release-alarms", "DeploymentAlarmNames"),
    }
    assert templates.downstream_of("alb") == {"waf", "release-alarms", "service", "alarms"}
    assert templates.downstream_of("alarms") == set()


def test_each_input_is_wired_from_the_output_of_its_own_name():
    # A swap (the alternate target group's name into the primary's input) passes every check of
    # shape: the names say what each value is, so they must agree, the service's prefixed as read
    # from the service layer.
    mismatched = {
        (downstream, parameter): (upstream, output)
        for (downstream, parameter), (upstream, output) in templates.WIRING.items()
        if parameter not in (output, f"{upstream.title()}{output}")
    }
    assert mismatched == {}


# Output names the tools' code names as something else: DomainName is the cert-dns parameter's value
# there (scripts/deploy/guards.py and commands.py read params), never the cert-dns stack's output.
NOT_OUTPUT_READS = {"DomainName"}


def test_the_outputs_the_tools_read_are_declared_for_the_review(layer):
    """templates.READ_BY_TOOLS names outputs that exist and that the tools' code names (or the rollback
    triggers), and every output name the tools' code names is declared there (but NOT_OUTPUT_READS),
    so that the review shows no output a tool reads as used by nothing."""
    outputs = {(name, output) for name, template in layer.items() for output in template.get("Outputs", {})}
    declared = set(templates.READ_BY_TOOLS)
    assert declared <= outputs, declared - outputs
    tools = [path for path in (templates.ROOT / "scripts").rglob("*.py") if "review" not in path.parts]
    code = "\n".join(path.read_text() for path in tools)
    named = {output for _, output in outputs if f'"{output}"' in code or f"'{output}'" in code} - NOT_OUTPUT_READS
    triggers = {(upstream, output) for upstream, *names in templates.ROLLBACK_TRIGGERS.values() for output in names}
    assert triggers <= declared, triggers - declared
    assert named == {output for _, output in declared - triggers}, (
        f"named in the tools' code, not in templates.READ_BY_TOOLS: {sorted(named - {o for _, o in declared})}; "
        f"declared, named nowhere: {sorted({o for _, o in declared - triggers} - named)}"
    )


def reviews():
    """What each committed review document says, computed from output/ and params/ (the scan left out)."""
    from scripts.review import collect, scan

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(scan, "scan_templates", lambda files, **_: {label: scan.LayerScan() for label in files})
        return collect.collect_all(templates.ROOT / "output", templates.ROOT / "params")


def output_left_out(review, layer_name, output) -> bool:
    """Whether the environment leaves the layer's output out: the layer not deployed, or its Condition false."""
    layer = next(each for each in review.layers if each.name == layer_name)
    condition = layer.template["Outputs"][output].get("Condition")
    return not layer.deployed or (condition is not None and layer.resolver.condition(condition) is False)


def test_the_review_lists_the_tools_that_read_an_output():
    """Each output of READ_BY_TOOLS, in the Outputs table of its layer's section of some committed
    review document (an environment may leave it out: a false Condition), names its tools."""
    shown = {}  # (layer, output) -> its "Used by" cells
    for document in (templates.ROOT / "output" / "review").glob("*.md"):
        for section in document.read_text().split("\n### ")[1:]:
            name = section.split("\n", 1)[0].split(". ", 1)[-1]
            if "#### Outputs" not in section:  # a layer the environment does not deploy, or no layer
                continue
            table = section.partition("#### Outputs")[2].split("\n\n", 2)[1]
            for row in table.splitlines()[2:]:
                cells = row.split(" | ")
                shown.setdefault((name, cells[0].removeprefix("| ")), []).append(cells[2])
    for pair, tools in templates.READ_BY_TOOLS.items():
        if pair not in shown:  # params/ may have no environment where its Condition holds (no BLUE_GREEN: no test listener)
            assert all(output_left_out(review, *pair) for review in reviews()), f"{pair} is in no review document's outputs"
            continue
        assert all(tool in used.split(", ") for used in shown[pair] for tool in tools), (pair, shown[pair])


def test_the_outputs_the_workflow_reads_exist_and_the_workflow_reads_them_by_those_variables(layer):
    # the review showed "Used by: —" for the deploy role's ARN, which every GitHub run assumes
    workflow = (templates.ROOT / ".github" / "workflows" / "deploy-service.yml").read_text()
    declared = {}
    for (name, output), (reader,) in templates.READ_BY_WORKFLOW.items():
        assert output in layer[name].get("Outputs", {}), (name, output)
        declared[output] = reader.partition("(")[2].rstrip(")")
        assert "${{ " + declared[output] + " }}" in workflow, declared[output]
    # and the other way: each variable the workflow's header says an operator sets from an output is declared
    said = {output: f"vars.{variable}" for variable, output in re.findall(r"(\w+) \(output\s+(\w+)\)", workflow.replace("#", ""))}
    assert said and said == declared, (said, declared)


def test_generation_stops_at_a_wiring_that_does_not_fit_the_templates_and_writes_nothing(tmp_path, monkeypatch):
    # check_wiring runs on every generation, not in its own tests alone: a wired output renamed in a layer stops `make
    # templates` with both ends named, before the configurations of the downstream layer are written without its value.
    from conftest import generate_main

    (downstream, parameter), (upstream, output) = next(iter(templates.WIRING.items()))
    monkeypatch.setitem(templates.WIRING, (downstream, parameter), (upstream, f"{output}Renamed"))
    out = tmp_path / "out"
    ran = generate_main("--no-lint", "--output-dir", out)
    assert ran.returncode == WiringError.code, ran
    assert f"error: wiring {upstream}.{output}Renamed -> {downstream}.{parameter}: layer {upstream!r} has no output" in ran.stderr, ran
    assert not out.exists()
    # nor does a check say "stale" (its exit 1, which make deploy would take for output/ to regenerate): the tool's own problem, 2
    checked = generate_main("--check", "--no-lint", "--output-dir", out)
    assert checked.returncode == 2 and "has no output" in checked.stderr, checked


def readers(layer) -> set:
    """The layers whose parameters WIRING gives from an output of `layer`."""
    return {downstream for (downstream, _), (upstream, _) in templates.WIRING.items() if upstream == layer}


@pytest.mark.parametrize("layer", templates.LAYERS)
def test_destroy_order_takes_every_reader_of_a_layer_first_and_the_layer_last(layer):
    # make destroy STACK=<layer> refuses a layer while a reader of its outputs is deployed: the steps it prints (and a
    # DELETE_FAILED's way on) name the readers, and theirs, each before what it reads, the layer itself last.
    order = templates.destroy_order(layer)
    reached, todo = {layer}, [layer]
    while todo:
        new = readers(todo.pop()) - reached
        reached |= new
        todo.extend(new)
    assert sorted(order) == sorted(reached), order
    assert order[-1] == layer, order
    for (downstream, _), (upstream, _) in templates.WIRING.items():
        if downstream in order and upstream in order:
            assert order.index(downstream) < order.index(upstream), (downstream, upstream, order)


def test_destroy_order_of_several_layers_takes_each_once():
    alone = {name: templates.destroy_order(name) for name in templates.LAYERS}
    both = templates.destroy_order("cert-dns", "service")
    assert sorted(both) == sorted(set(alone["cert-dns"]) | set(alone["service"]))
    assert both == [name for name in alone["cert-dns"] if name in both]  # cert-dns's chain holds the service's


def test_retained_resources_are_what_a_retain_policy_keeps_by_logical_id():
    # what make destroy lists and the review states as left in the account after a stack's deletion
    template = {
        "Resources": {
            "Zebra": {"Type": "AWS::Logs::LogGroup", "DeletionPolicy": "RetainExceptOnCreate"},
            "Apple": {"Type": "AWS::S3::Bucket", "DeletionPolicy": "Retain"},
            "Gone": {"Type": "AWS::SNS::Topic", "DeletionPolicy": "Delete"},
            "Plain": {"Type": "AWS::SNS::Topic"},
            "Odd": "not a resource",
        }
    }
    retained = templates.retained_resources(template)
    assert retained == {"Apple": "AWS::S3::Bucket", "Zebra": "AWS::Logs::LogGroup"}
    assert list(retained) == ["Apple", "Zebra"]  # listed by logical id, whatever order the template has
    # a deployed template that is no mapping (GetTemplate's body parsed by boto3 as a JSON list) retains nothing, no traceback
    assert templates.retained_resources(["Resources"]) == {}
    assert templates.retained_resources({}) == {}


def test_an_input_that_declares_a_template_default_is_refused_where_its_parameter_has_none():
    # Only the inputs declared without a template Default (default_in_template=False) may come from the
    # configurations alone; another that reaches a template without its Default is refused, naming it.
    from templates.inputs import INPUTS

    templates_built = built()
    layer, name = next(
        (layer, name)
        for layer, template in templates_built.items()
        for name, parameter in template.parameters.items()
        if name in INPUTS and INPUTS[name].default_in_template and "Default" in parameter.properties
    )
    del templates_built[layer].parameters[name].properties["Default"]
    with pytest.raises(WiringError, match=f"'{layer}' parameter '{name}' has no default and nothing wires it"):
        check_wiring(templates_built)
