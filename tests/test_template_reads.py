"""templates/template_reads.py: what a template node reads (the deployer's replaced outputs, the
sandbox's change sets)."""

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
