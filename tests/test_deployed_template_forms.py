"""make diff reads the template a stack runs as CloudFormation gives it back (GetTemplate, TemplateStage Original: "the
user-submitted template", before any transform), which anyone who may update the stack may have changed (the console,
the AWS CLI). A template CloudFormation accepts must not stop make diff with "a bug of the tool's" or a traceback, nor
keep it running: what the evaluator (templates/resolver.py) cannot work out before deploy stays unknown.
https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_GetTemplate.html"""

import json

import pytest
from conftest import within
from stubbed_aws import stack, template

from templates.resolver import UNKNOWN, Resolver

BUG = "a bug of the tool's"


def deployed_cert_dns(change) -> dict:
    """output/'s cert-dns template as someone updated it by hand: changed, so that make diff also looks ahead."""
    deployed = json.loads(template("cert-dns"))
    deployed["Outputs"]["CertificateArn"]["Description"] = "changed by hand"
    change(deployed)
    return deployed


def diff(aws, deployed: dict) -> int:
    aws.deployed("cert-dns")
    aws.cf.add_response(
        "get_template", {"TemplateBody": json.dumps(deployed)}, {"StackName": stack("cert-dns"), "TemplateStage": "Original"}
    )
    aws.stack_policy("cert-dns")
    return aws.run("diff", "--stack", "cert-dns")


def test_diff_of_a_stack_updated_with_an_fn_foreach_loop_of_resources_compares_it(aws):
    # Fn::ForEach, with the AWS::LanguageExtensions transform, is used within the Resources section: its entry there is
    # "Fn::ForEach::LoopLogicalName": [identifier, collection, {logical id: resource}], a list, not a resource.
    # https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/intrinsic-function-reference-foreach.html
    # Now: exit 2, "error: AttributeError: 'list' object has no attribute 'get', at scripts/deploy/guards.py:818: ... a bug
    # of the tool's (worth reporting with this line)".
    def loop(deployed):
        deployed["Transform"] = "AWS::LanguageExtensions"
        deployed["Resources"]["Fn::ForEach::Topics"] = ["Name", ["A", "B"], {"Topic${Name}": {"Type": "AWS::SNS::Topic"}}]

    code = diff(aws, deployed_cert_dns(loop))
    assert BUG not in aws.err
    assert code == 1, aws.err  # differs
    assert "has a Transform or a shape this tool does not read (changed outside it): what make deploy would refuse" in aws.out


def test_diff_of_a_stack_updated_with_a_transform_still_looks_at_the_traffic_a_switch_to_rolling_would_reset(aws, monkeypatch):
    # (mutation audit) The look at where production traffic is (guards.traffic_reset_ahead) reads the listener rule, not
    # the deployed template: it is taken for a template the tool does not read too, after the note that the others are not.
    from scripts.deploy import guards

    monkeypatch.setattr(guards, "traffic_reset_ahead", lambda deployer, layer, wanted, say: "would reset the traffic (stubbed)")

    def transformed(deployed):
        deployed["Transform"] = "AWS::LanguageExtensions"

    assert diff(aws, deployed_cert_dns(transformed)) == 1, aws.err
    lines = aws.out.splitlines()
    note = next(i for i, line in enumerate(lines) if "has a Transform or a shape this tool does not read" in line)
    assert "  note: make deploy refuses this: it would reset the traffic (stubbed)" in lines[note + 1 :], aws.out


@pytest.mark.parametrize("where", ["an output", "a create-only property of a stateful resource"])
def test_diff_of_a_stack_updated_with_a_ref_of_an_intrinsic_function_compares_it(aws, where):
    # With the AWS::LanguageExtensions transform, Ref takes an intrinsic function: { "Ref" : IntrinsicFunction }, "when
    # you specify an intrinsic function, it returns the output of that function".
    # https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/intrinsic-function-reference-ref.html
    # Now: exit 2, "error: TypeError: unhashable type: 'dict', at templates/resolver.py:52: ... a bug of the tool's".
    ref = {"Ref": {"Fn::Join": ["", ["Domain", "Name"]]}}

    def edit(deployed):
        deployed["Transform"] = "AWS::LanguageExtensions"
        if where == "an output":
            deployed["Outputs"]["DomainName"]["Value"] = ref
        else:
            deployed["Resources"]["Certificate"]["Properties"]["DomainName"] = {"Fn::Sub": ["*.${Domain}", {"Domain": ref}]}

    code = diff(aws, deployed_cert_dns(edit))
    assert BUG not in aws.err
    assert code == 1, aws.err  # differs


def test_a_ref_of_an_intrinsic_function_is_worked_out_or_left_unknown():
    # The same form read by the evaluator itself (make diff's look-aheads, purge's look at a deleted stack's template).
    deployed = {
        "Transform": "AWS::LanguageExtensions",
        "Parameters": {"NamePrefix": {"Type": "String"}},
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
    }
    resolver = Resolver(deployed, {"NamePrefix": "swa-x"}, {}, "us-east-1")
    node = {"Fn::Join": ["-", [{"Ref": {"Fn::Sub": "NamePrefix"}}, "topic"]]}
    assert resolver.value(node) in (UNKNOWN, "swa-x-topic")
    assert resolver.value(resolver.naming_resources(node)) in (UNKNOWN, "swa-x-topic")


def test_conditions_built_on_conditions_are_worked_out_in_bounded_time():
    # A condition may name other conditions (Fn::And and Fn::Or take 2 to 10), and CloudFormation's quotas name no
    # number of conditions. Each one named twice (here by the next two) is worked out again each time: 45 of them
    # took hours (26 took 2 s, 28 made make diff of the stack take 8 s, each one more about 1.6 times as long).
    # https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/intrinsic-function-reference-conditions.html
    conditions = {
        "C0": {"Fn::Equals": [{"Ref": "AWS::AccountId"}, "123456789012"]},  # decided at deploy time
        "C1": {"Fn::Equals": [{"Ref": "AWS::Region"}, "us-east-1"]},  # false here
    }
    for i in range(2, 46):
        conditions[f"C{i}"] = {"Fn::Or": [{"Condition": f"C{i - 1}"}, {"Condition": f"C{i - 2}"}]}
    resolver = Resolver({"Conditions": conditions, "Resources": {}}, {}, {}, "eu-west-1")
    with within(10):
        assert resolver.condition("C45") is None  # decided at deploy time, as C0 is


def test_a_cycle_of_conditions_reads_as_decided_at_deploy_time():
    # CloudFormation refuses one; a template edited by hand must still not stop make diff with a RecursionError.
    conditions = {"A": {"Fn::Not": [{"Condition": "B"}]}, "B": {"Fn::And": [{"Condition": "A"}, {"Condition": "A"}]}}
    resolver = Resolver({"Conditions": conditions, "Resources": {}}, {}, {}, "eu-west-1")
    assert resolver.condition("A") is None and resolver.condition("B") is None
    assert resolver.references({"Condition": "A"}) == set()


def test_diff_of_a_stack_updated_with_a_transform_alone_says_its_looks_ahead_are_left_out(aws):
    # A Transform whose template is otherwise of the shape the tool reads: GetTemplate's Original stage gives it
    # untransformed, so the looks ahead (which read it with the evaluator) are left out, with the README's note.
    def transform(deployed):
        deployed["Transform"] = "AWS::LanguageExtensions"

    code = diff(aws, deployed_cert_dns(transform))
    assert BUG not in aws.err
    assert code == 1, aws.err
    assert "has a Transform or a shape this tool does not read (changed outside it)" in aws.out, aws.out


def test_diff_of_a_stack_updated_with_an_fn_transform_in_a_resource_says_its_looks_ahead_are_left_out(aws):
    # Fn::Transform (AWS::Include) needs no Transform section: "specifies a macro to perform custom processing on part
    # of a stack template". GetTemplate's Original stage gives it untransformed, as it gives a Transform section's
    # template: the looks ahead read properties CloudFormation never deploys as written. changes_nothing takes both alike
    # (resolver.calls_a_macro), and so does diff.py's looks_ahead.
    # https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/intrinsic-function-reference-transform.html
    def include(deployed):
        deployed["Resources"]["Certificate"]["Properties"]["Tags"] = {
            "Fn::Transform": {"Name": "AWS::Include", "Parameters": {"Location": "s3://bucket/tags.json"}}
        }

    code = diff(aws, deployed_cert_dns(include))
    assert BUG not in aws.err
    assert code == 1, aws.err
    assert "has a Transform or a shape this tool does not read (changed outside it)" in aws.out, aws.out
