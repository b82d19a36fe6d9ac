"""The ci layer: who can assume the deploy role, and what it and the execution role may do.
cfn-lint and checkov run on it with every template (test_scanners.py)."""

import re
from string import Template

import pytest

from templates import ci, inputs

REPO = "startupwebapp/startupwebapp-deploy"
NOVALUE = object()

# Allow statements on Resource "*" are accepted only for actions without resource-level
# permissions (Service Authorization Reference); anything new here needs that justification.
NO_RESOURCE_LEVEL = {
    "cloudformation:ListStacks",
    "cloudformation:ValidateTemplate",
    "elasticloadbalancing:DescribeTargetHealth",
    "elasticloadbalancing:Describe*",
    "elasticloadbalancing:SetWebAcl",
    "ecs:RegisterTaskDefinition",
    "ecs:DeregisterTaskDefinition",
    "ecs:DescribeTaskDefinition",
    "application-autoscaling:DescribeScalableTargets",
    "application-autoscaling:DescribeScalingPolicies",
    "application-autoscaling:DescribeScalingActivities",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeSecurityGroupRules",
    "ec2:DescribeVpcs",
    "ec2:DescribeSubnets",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeAccountAttributes",
    "wafv2:ListWebACLs",
    "wafv2:ListAvailableManagedRuleGroups",
    "wafv2:DescribeManagedRuleGroup",
    "route53:CreateHostedZone",
    "route53:ListHostedZones",
    "route53:ListHostedZonesByName",
    "acm:RequestCertificate",
    "acm:ListCertificates",
    "logs:DescribeLogGroups",
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "kms:CreateKey",
}


@pytest.fixture
def template(layer):
    return layer["ci"]


def as_list(value):
    return value if isinstance(value, list) else [value]


def statements(template, role):
    """Every statement of a role's policies: inline ones and the managed policies attached to it."""
    found = []
    props = template["Resources"][role]["Properties"]
    for policy in props.get("Policies", []):
        found += policy["PolicyDocument"]["Statement"]
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::IAM::ManagedPolicy" and {"Ref": role} in resource["Properties"]["Roles"]:
            found += resource["Properties"]["PolicyDocument"]["Statement"]
    return found


def all_statements(template):
    return statements(template, "DeployRole") + statements(template, "CloudFormationExecutionRole")


def resolve(node, params, conditions):
    """Evaluate the intrinsic functions of the trust policy's subjects, for given parameter values."""

    def r(item):
        return resolve(item, params, conditions)

    if isinstance(node, list):
        return [item for item in map(r, node) if item is not NOVALUE]
    if not isinstance(node, dict):
        return node
    ((function, args),) = node.items()
    evaluate = {
        "Ref": lambda: NOVALUE if args == "AWS::NoValue" else params[args],
        "Condition": lambda: r(conditions[args]),
        "Fn::If": lambda: r(args[1] if r(conditions[args[0]]) else args[2]),
        "Fn::Not": lambda: not r(args[0]),
        "Fn::And": lambda: all(map(r, args)),
        "Fn::Equals": lambda: r(args[0]) == r(args[1]),
        "Fn::Join": lambda: args[0].join(r(args[1])),
        "Fn::Split": lambda: r(args[1]).split(args[0]),
        "Fn::Select": lambda: r(args[1])[args[0]],
        "Fn::Sub": lambda: Template(args[0]).substitute(params, **{name: r(value) for name, value in args[1].items()}),
    }
    return evaluate[function]()


def trust_subjects(template, subjects, repository=REPO, caller=""):
    statement = template["Resources"]["DeployRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]
    params = {"GitHubRepository": repository, "GitHubCallerRepository": caller, "GitHubSubjects": subjects}
    return resolve(statement["Condition"]["StringLike"]["token.actions.githubusercontent.com:sub"], params, template["Conditions"])


def test_deploy_role_trusts_only_github_oidc_with_the_sts_audience(template):
    trust = template["Resources"]["DeployRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert len(trust) == 1
    statement = trust[0]
    assert statement["Effect"] == "Allow"
    assert statement["Action"] == ["sts:AssumeRoleWithWebIdentity"]
    assert statement["Principal"] == {
        "Federated": {"Fn::If": ["CreateOidcProvider", {"Ref": "GitHubOidcProvider"}, {"Ref": "ExistingOidcProviderArn"}]}
    }
    assert statement["Condition"]["StringEquals"] == {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com"}
    assert set(statement["Condition"]) == {"StringEquals", "StringLike"}
    assert set(statement["Condition"]["StringLike"]) == {"token.actions.githubusercontent.com:sub"}


@pytest.mark.parametrize(
    "subjects",
    [
        ["environment:prod"],
        ["environment:prod", "environment:staging", "ref:refs/heads/main"],
        [f"environment:e{i}" for i in range(ci.MAX_SUBJECTS)],
    ],
)
def test_sub_is_this_repository_and_exactly_the_chosen_subjects(template, subjects):
    assert trust_subjects(template, subjects) == [f"repo:{REPO}:{s}" for s in subjects]


def test_a_calling_repository_gets_the_same_subjects(template):
    subjects = ["environment:prod", "environment:staging"]
    expected = [f"repo:{repo}:{s}" for repo in (REPO, "startupwebapp/startupwebapp") for s in subjects]
    assert trust_subjects(template, subjects, caller="startupwebapp/startupwebapp") == expected


def test_sub_default_is_the_prod_environment_of_this_repository(template):
    defaults = {name: p["Default"] for name, p in template["Parameters"].items()}
    assert defaults["GitHubRepository"] == REPO
    assert trust_subjects(template, defaults["GitHubSubjects"].split(","), defaults["GitHubRepository"]) == [
        f"repo:{REPO}:environment:prod"
    ]


def test_subject_items_refuse_pull_requests_and_other_repositories():
    spec = inputs.INPUTS["GitHubSubjects"]
    assert spec.items == (1, ci.MAX_SUBJECTS)
    for good in ["environment:prod", "environment:staging", "ref:refs/heads/main", "ref:refs/tags/v1.2.3", "ref:refs/heads/release/*"]:
        assert re.fullmatch(spec.pattern, good), good
    for bad in ["pull_request", "*", "environment:*", "environment:prod:*", "repo:evil/x:environment:prod", "ref:refs/pull/1/merge", ""]:
        assert not re.fullmatch(spec.pattern, bad), bad


def test_existing_oidc_provider_must_be_githubs():
    pattern = inputs.INPUTS["ExistingOidcProviderArn"].pattern
    assert re.fullmatch(pattern, "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com")
    assert not re.fullmatch(pattern, "arn:aws:iam::123456789012:oidc-provider/example.com")


def test_oidc_provider_is_created_only_without_an_existing_one(template):
    provider = template["Resources"]["GitHubOidcProvider"]
    assert provider["Condition"] == "CreateOidcProvider"
    assert template["Conditions"]["CreateOidcProvider"] == {"Fn::Equals": [{"Ref": "ExistingOidcProviderArn"}, ""]}
    assert provider["Properties"]["Url"] == "https://token.actions.githubusercontent.com"
    assert provider["Properties"]["ClientIdList"] == ["sts.amazonaws.com"]
    assert set(template["Outputs"]) == {"DeployRoleArn", "CloudFormationExecutionRoleArn", "OidcProviderArn"}


def test_deploy_role_passes_only_the_execution_role_and_only_to_cloudformation(template):
    passing = [s for s in statements(template, "DeployRole") if "iam:PassRole" in as_list(s["Action"])]
    assert len(passing) == 1
    assert passing[0]["Resource"] == [{"Fn::GetAtt": ["CloudFormationExecutionRole", "Arn"]}]
    assert passing[0]["Condition"] == {"StringEquals": {"iam:PassedToService": "cloudformation.amazonaws.com"}}
    assert all(
        a.startswith(("cloudformation:", "iam:PassRole", "ecs:Describe", "elasticloadbalancing:Describe", "ssm:"))
        for s in statements(template, "DeployRole")
        for a in as_list(s["Action"])
    )


def test_every_stack_operation_runs_as_the_execution_role(template):
    allowed = [s for s in statements(template, "DeployRole") if s["Effect"] == "Allow"]
    changing = [s for s in allowed if "cloudformation:CreateChangeSet" in as_list(s["Action"])]
    assert len(changing) == 1
    assert changing[0]["Condition"] == {"StringEquals": {"cloudformation:RoleArn": {"Fn::GetAtt": ["CloudFormationExecutionRole", "Arn"]}}}
    # Deleting a stack stays an operator's action.
    assert not any("cloudformation:DeleteStack" in as_list(s["Action"]) for s in all_statements(template) if s["Effect"] == "Allow")


def test_deploy_role_may_read_but_never_change_the_ci_stack(template):
    (deny,) = [s for s in statements(template, "DeployRole") if s["Effect"] == "Deny"]
    assert {"cloudformation:CreateChangeSet", "cloudformation:ExecuteChangeSet", "cloudformation:DeleteStack"} <= set(deny["Action"])
    assert not any(a.startswith(("cloudformation:Describe", "cloudformation:Get", "cloudformation:List")) for a in deny["Action"])


def test_deploy_role_reaches_only_the_project_stacks_and_never_this_one(template):
    project = {
        "arn:${AWS::Partition}:cloudformation:${AWS::Region}:${AWS::AccountId}:stack/startupwebapp-*/*",
        "arn:${AWS::Partition}:cloudformation:${AWS::Region}:${AWS::AccountId}:changeSet/startupwebapp-*/*",
    }
    for statement in statements(template, "DeployRole"):
        if not any(a.startswith("cloudformation:") for a in as_list(statement["Action"])):
            continue
        resources = as_list(statement["Resource"])
        if statement["Effect"] == "Deny":
            assert resources == [
                {"Fn::Sub": "arn:${AWS::Partition}:cloudformation:${AWS::Region}:${AWS::AccountId}:stack/${AWS::StackName}/*"}
            ]
        elif resources == ["*"]:
            assert set(statement["Action"]) <= NO_RESOURCE_LEVEL
        else:
            assert {r["Fn::Sub"] for r in resources} == project, statement["Sid"]


def test_roles_live_outside_the_role_names_the_execution_role_manages(template):
    for name in ("DeployRole", "CloudFormationExecutionRole"):
        assert template["Resources"][name]["Properties"]["Path"] == "/ci/"
    iam_resources = {
        r["Fn::Sub"]
        for s in statements(template, "CloudFormationExecutionRole")
        if any(a.startswith("iam:") for a in as_list(s["Action"]))
        for r in as_list(s["Resource"])
    }
    assert iam_resources == {
        "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/startupwebapp-*",
        "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/aws-service-role/*",
    }
    assert not any("iam:AttachRolePolicy" in as_list(s["Action"]) for s in all_statements(template))


def test_execution_role_is_for_cloudformation_and_passes_roles_to_ecs_tasks_only(template):
    trust = template["Resources"]["CloudFormationExecutionRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert [(s["Effect"], s["Principal"], s["Action"]) for s in trust] == [
        ("Allow", {"Service": "cloudformation.amazonaws.com"}, ["sts:AssumeRole"])
    ]
    passing = [s for s in statements(template, "CloudFormationExecutionRole") if "iam:PassRole" in as_list(s["Action"])]
    assert len(passing) == 1
    assert passing[0]["Condition"] == {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}


def test_no_wildcard_action_and_star_resource_only_without_resource_level_permissions(template):
    for statement in all_statements(template):
        actions = as_list(statement["Action"])
        assert "*" not in actions
        if statement["Effect"] == "Deny":
            continue
        assert not any(a.endswith(":*") for a in actions), statement["Sid"]
        if "*" in as_list(statement["Resource"]):
            assert as_list(statement["Resource"]) == ["*"]
            assert set(actions) <= NO_RESOURCE_LEVEL, f"{statement['Sid']}: {sorted(set(actions) - NO_RESOURCE_LEVEL)} on Resource *"


def test_named_resources_are_scoped_to_the_name_prefix(template):
    for statement in statements(template, "CloudFormationExecutionRole"):
        services = {a.split(":")[0] for a in as_list(statement["Action"])}
        if services & {"elasticloadbalancing", "logs", "cloudwatch", "sns", "ssm", "s3", "iam"} and statement["Resource"] != ["*"]:
            for resource in as_list(statement["Resource"]):
                text = resource["Fn::Sub"]
                assert "startupwebapp" in text or text.endswith("role/aws-service-role/*") or "managedruleset" in text, (
                    statement["Sid"],
                    text,
                )
