"""templates/template_reads.py: what a template node reads (the deployer's replaced outputs, the
sandbox's change sets)."""

import json

from conftest import ROOT

from templates.resolver import Resolver
from templates.template_reads import attributes_read, conditions_used, references


def test_the_logical_ids_a_template_value_reads():
    assert references({"Ref": "LoadBalancer"}) == {"LoadBalancer"}
    assert references({"Fn::GetAtt": ["TargetGroup", "TargetGroupArn"]}) == {"TargetGroup"}
    assert references({"Fn::GetAtt": "Zone.NameServers"}) == {"Zone"}
    sub = {"Fn::Sub": "https://${Alias}/${AWS::Region}/${Listener.Arn}/${!Literal}"}
    assert references(sub) == {"Alias", "AWS::Region", "Listener"}
    assert references({"Fn::Sub": ["${Name}-${Topic}", {"Name": {"Ref": "Bucket"}}]}) == {"Topic", "Bucket"}
    assert references({"Fn::Join": [",", [{"Ref": "A"}, {"Fn::GetAtt": ["B", "Arn"]}]]}) == {"A", "B"}
    assert references({"Fn::Sub": ["${Local.Part}-${Queue.Arn}", {"Local.Part": {"Ref": "Prefix"}}]}) == {"Prefix", "Queue"}
    assert references({"Fn::Sub": ["${Alone}"]}) == {"Alone"}  # a list without variables
    assert references("literal") == set()


def test_the_attributes_a_resource_reads_are_found_wherever_it_reads_them():
    node = {
        "Policies": [{"Resource": [{"Fn::GetAtt": ["Group", "Arn"]}, {"Fn::Join": ["", [{"Fn::GetAtt": "Key.Arn"}, "/x"]]}]}],
        "Name": {"Fn::Sub": "${Topic.TopicName}-${AWS::Region}-${Prefix}"},
        "Other": {"Fn::Sub": ["${Local.Part}-${Queue.Arn}", {"Local.Part": {"Ref": "Prefix"}}]},
        "Ref": "Group",
    }
    assert attributes_read(node) == {"Group.Arn", "Key.Arn", "Topic.TopicName", "Queue.Arn"}


def test_the_conditions_a_node_reads():
    node = {"Condition": "IsProd", "Properties": {"X": {"Fn::If": ["HasWaf", {"Fn::If": ["Canary", 1, 2]}, 3]}}}
    assert conditions_used(node) == {"IsProd", "HasWaf", "Canary"}


def test_an_attribute_named_by_a_ref_reads_the_resource_and_that_ref():
    assert references({"Fn::GetAtt": ["Stack", {"Ref": "OutputName"}]}) == {"Stack", "OutputName"}


def test_the_resources_a_value_reads_in_an_environment_follow_the_branch_its_condition_takes():
    # make diff's look at the outputs an update changes (scripts/deploy/guards.py): the ci layer's provider output is
    # the provider it makes or the one a parameter names, by a condition on that parameter
    template = json.loads((ROOT / "output" / "ci.json").read_text())
    (condition, made, given) = template["Outputs"]["OidcProviderArn"]["Value"]["Fn::If"]
    (provider,) = references(made)
    assert provider in template["Resources"] and references(given) <= set(template["Parameters"]), "no longer a resource or a parameter"
    value = {"Fn::Join": [",", [template["Outputs"]["OidcProviderArn"]["Value"], {"Ref": "AWS::Region"}]]}
    existing = "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"
    for arn, read in (("", {provider}), (existing, set())):
        resolver = Resolver(template, {"ExistingOidcProviderArn": arn}, {}, "us-east-1")
        assert resolver.condition(condition) is (not arn)
        assert resolver.resources_read(value) == read, arn
    undecided = Resolver(template, {}, {}, "us-east-1")  # a template's parameter it has no value of (one edited by hand)
    assert undecided.condition(condition) is None and undecided.resources_read(value) == {provider}


def test_the_resources_an_fn_sub_reads_do_not_raise_on_variables_that_are_not_a_map():
    # make diff's look at outputs (guards.outputs_changed_ahead -> value_changes) raised AttributeError on a list-form
    # Fn::Sub whose second item is not a map (resources_read's branch for the list form, added in bf54a84);
    # naming_resources on an Fn::Sub of a number raised TypeError. Before, both were read as any other node.
    resolver = Resolver({"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}}, {}, {}, "us-east-1")
    for value in ({"Fn::Sub": ["${Topic}", "not a map"]}, {"Fn::Sub": ["${Topic}", ["a"]]}, {"Fn::Sub": 5}):
        resolver.resources_read(value)
        resolver.value(resolver.naming_resources(value))
