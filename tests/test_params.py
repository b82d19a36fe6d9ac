"""Bad params stop generation with one line per problem naming file, key, value and what is allowed;
nothing is written then."""

import io
import itertools
import json
import os
import re
import shutil
import socket
import subprocess
import sys

import pytest
import yaml
from conftest import ROOT, generate_main, without_ci

import templates
from templates import alb
from templates.common import MOST_MONITORING_MINUTES, MOST_RELEASE_WAIT_MINUTES, PROJECT
from templates.inputs import IMAGE_TAG, INPUTS
from templates.params import MOST_PARAMS_FILE_BYTES, ParamsError, check_value, load, load_all, shown

GOOD = yaml.safe_load((ROOT / "params" / "prod.yaml").read_text())
# Written alone or beside files of other names, it names no environment:<name> of a file the directory lacks
# (where prod does not deploy the ci layer, it has no effect, and make templates warns of it).
GOOD.setdefault("parameters", {})["GitHubSubjects"] = ["ref:refs/heads/main"]
# Another region and another domain than prod's, whatever params/prod.yaml says.
OTHER_REGION = next(region for region in ("eu-west-1", "us-west-2") if region != GOOD["region"])
OTHER_DOMAIN = next(domain for domain in ("example.org", "example.net") if domain != GOOD["parameters"].get("DomainName"))
# A hosted zone id other than prod's: another domain is in a zone of its own (a zone has one name).
OTHER_ZONE = next(zone for zone in ("Z0OTHERZONE1", "Z0OTHERZONE2") if zone != GOOD["parameters"].get("ExistingHostedZoneId"))
# What two environments may share only when a params file says why.
ISOLATING = ["BackendSecurityGroupId", "DatabaseSecretArn", "DatabaseName"]


def run_generate(tmp_path, document, name="prod.yaml"):
    params = tmp_path / "params"
    params.mkdir(exist_ok=True)
    (params / name).write_text(document if isinstance(document, str) else yaml.safe_dump(document))
    out = tmp_path / "out"
    return generate_main("--no-lint", "--params-dir", params, "--output-dir", out), out


def with_parameters(**changes):
    document = {**GOOD, "parameters": {**GOOD["parameters"], **changes}}
    return document


def typed(line):
    """GOOD's text with one parameter line as typed (key: value), in place of GOOD's own value."""
    key = line.split(":")[0]
    return yaml.safe_dump(with_parameters(**{key: "TYPED"})).replace(f"{key}: TYPED", f"{key}: {line.split(': ', 1)[1]}")


BAD = [
    # (what, document, the key named, words of what is allowed)
    # A number is named as typed, not as Python reads it: quoting 1.1 would deploy another tag than 1.10
    ("an image tag YAML reads as a number", typed("ImageTag: 1.10"), "parameters.ImageTag: 1.10 is not allowed", "in quotes (unquoted"),
    ("a host label YAML reads as a number", typed("ApiHostLabel: 0123"), "parameters.ApiHostLabel: 0123 is not allowed", "in quotes"),
    ("a host label in an exponent's form", typed("ApiHostLabel: 1e3"), "parameters.ApiHostLabel: 1e3 is not allowed", "in quotes"),
    ("a fraction for a whole number", typed("DesiredCount: 1.5"), "parameters.DesiredCount: 1.5 is not allowed", "a whole number"),
    ("a whole number written as a fraction", typed("DesiredCount: 2.0"), "parameters.DesiredCount: 2.0 is not allowed", "a whole number"),
    # quoted as "2 is not allowed; allowed: a whole number", the tag that made it a fraction went unsaid
    (
        "a whole number tagged as a fraction",
        typed("DesiredCount: !!float 2"),
        "parameters.DesiredCount: !!float 2 is not allowed",
        "a whole number",
    ),
    # in a list too, untagged, and a quoted one quoted ([!!float '1e3', !!int '09'] named no number the file holds)
    (
        "numbers in a list",
        typed("PublicSubnetIds: [1e3, 09, '10']"),
        "parameters.PublicSubnetIds: [1e3, 09, '10'] is not allowed",
        "allowed",
    ),
    (
        "unknown key",
        with_parameters(DesiredCout=2),
        "parameters.DesiredCout",
        "unknown key (did you mean DesiredCount?); allowed: AccessLogRetentionDays",
    ),
    (
        "a key with a space at its end, which a message quotes to show it",
        with_parameters(**{"DesiredCount ": 2}),
        "parameters.'DesiredCount '",
        "unknown key (did you mean DesiredCount?)",
    ),
    (
        "unknown top-level key",
        {**GOOD, "parameter": {}},
        "parameter",
        "allowed: region, tags, enabled_layers, smoke_checks, shared_inputs, parameters",
    ),
    (
        # indented one level too little
        "an input at the top level",
        {**GOOD, "DeletionProtection": "true"},
        "DeletionProtection: unknown key (an input: it goes under parameters:, as parameters.DeletionProtection)",
        "allowed: region, tags, enabled_layers, smoke_checks, shared_inputs, parameters",
    ),
    (
        # indented under tags: it was a tag on every stack, and the input kept its value
        "an input among the tags",
        {**GOOD, "tags": {**(GOOD.get("tags") or {}), "WafCountOnly": "false"}},
        "tags.WafCountOnly: 'false': named as the input WafCountOnly, which goes under parameters: (as a tag it sets nothing)",
        "allowed: the input under parameters:, or a tag of another name",
    ),
    (
        "an input among the tags, in another case",
        {**GOOD, "tags": {**(GOOD.get("tags") or {}), "deletionprotection": "true"}},
        "tags.deletionprotection: 'true': named as the input DeletionProtection, which goes under parameters:",
        "allowed: the input under parameters:, or a tag of another name",
    ),
    (
        "unknown optional layer",
        {**GOOD, "enabled_layers": ["cii"]},
        "enabled_layers: 'cii' is not an optional layer (did you mean ci?)",
        "optional layers (waf, ci), each once",
    ),
    (
        "optional layer in capitals",
        {**GOOD, "enabled_layers": ["WAF"]},
        "enabled_layers: 'WAF' is not an optional layer (did you mean waf?)",
        "each once",
    ),
    ("optional layer twice", {**GOOD, "enabled_layers": ["waf", "waf"]}, "enabled_layers: 'waf'", "each once"),
    (
        "a region mistyped",
        {**GOOD, "region": "us-east1"},
        "region: 'us-east1' is not supported (did you mean us-east-1?)",
        "allowed: ",
    ),
    (
        # as close to us-east-1 as to us-east-2: us-east-2 alone was said, the last of the two in text order
        "a region with the letter l for the digit 1",
        {**GOOD, "region": "us-east-l"},
        "region: 'us-east-l' is not supported (did you mean us-east-1 or us-east-2?)",
        "allowed: ",
    ),
    (
        # it looks like us-east-1: difflib scored it as close to us-west-1 and suggested that
        "a region with a Cyrillic letter",
        {**GOOD, "region": "us-e\u0430st-1"},
        "(it holds U+0430 CYRILLIC SMALL LETTER A: not ASCII, as every allowed value is)",
        "allowed: ",
    ),
    (
        "a named value mistyped",
        with_parameters(DeploymentStrategy="BLUE-GREEN"),
        "parameters.DeploymentStrategy: 'BLUE-GREEN' is not allowed (did you mean BLUE_GREEN?)",
        "allowed: ",
    ),
    (
        "smoke check",
        {**GOOD, "smoke_checks": [{"path": "/health", "status": 200}, {"path": "health", "status": 200}]},
        "smoke_checks, item 2: {path: health, status: 200}",  # the item, not the whole list, as YAML writes it
        "a path starting with /, of at most 1,024 characters; an HTTP status",
    ),
    (
        # make verify runs each in every round: 3,000 of them made one round of a frozen server hours long
        "too many smoke checks",
        {**GOOD, "smoke_checks": [{"path": f"/p{n}", "status": 200} for n in range(21)]},
        "smoke_checks: 21 checks",
        "allowed: a list of up to 20",
    ),
    (
        "a smoke check's path too long",
        {**GOOD, "smoke_checks": [{"path": "/" + "a" * 1024, "status": 200}]},
        "smoke_checks, item 1: ",
        "of at most 1,024 characters",
    ),
    (
        "a number for a text",
        with_parameters(ImageTag=20250131),
        "parameters.ImageTag: 20250131",
        "in quotes (unquoted, YAML reads it as a number)",
    ),
    (
        "an empty value",
        with_parameters(DesiredCount=None),
        "parameters.DesiredCount: no value (null to YAML) is not allowed",
        "a whole number",
    ),
    (
        "shared without a reason",
        {**GOOD, "shared_inputs": {"DatabaseSecretArn": ""}},
        "shared_inputs.DatabaseSecretArn: '' gives no reason",
        "BackendSecurityGroupId, DatabaseSecretArn or DatabaseName to why",
    ),
    ("wrong type", with_parameters(MaxCapacity="4"), "parameters.MaxCapacity: '4'", "a whole number from 1 to 100"),
    (
        "yes for true",  # text to YAML 1.2: "without quotes" sent the reader looking for quotes there were none of
        with_parameters(DeletionProtection="yes"),
        "parameters.DeletionProtection: 'yes'",
        "allowed: true or false (yes, no, on and off are text to YAML 1.2)\n",
    ),
    (
        "bool in quotes",
        with_parameters(DeletionProtection="true"),
        "parameters.DeletionProtection: 'true'",
        "true or false, without quotes\n",
    ),
    ("bool as a number", with_parameters(DeletionProtection=1), "parameters.DeletionProtection: 1", "allowed: true or false\n"),
    (
        "an e-mail address with an empty domain part",  # a@..com and .@-.com were taken
        with_parameters(AlertEmails=["ops@example.com", "a@..com"]),
        "parameters.AlertEmails: [ops@example.com, a@..com]",
        "each an e-mail address, all different",
    ),
    ("an e-mail domain label starting with -", with_parameters(AlertEmails=["ops@-x.com"]), "parameters.AlertEmails: ", "all different"),
    ("an e-mail address starting with a dot", with_parameters(AlertEmails=[".ops@x.com"]), "parameters.AlertEmails: ", "all different"),
    (
        "GitHub environments that differ only in case",  # GitHub's environment names are not case-sensitive
        with_parameters(GitHubSubjects=["environment:prod", "environment:Prod"]),
        "parameters.GitHubSubjects: ",
        "all different",
    ),
    (
        "e-mail addresses that differ only in case",
        with_parameters(AlertEmails=["Ops@Example.com", "ops@example.com"]),
        "parameters.AlertEmails: ",
        "all different",
    ),
    (
        "min above max",
        with_parameters(MinCapacity=3, MaxCapacity=2, DesiredCount=2),
        "parameters.MinCapacity: 3",
        "MinCapacity <= MaxCapacity",
    ),
    (
        "desired outside range",
        with_parameters(MinCapacity=1, MaxCapacity=4, DesiredCount=5),
        "parameters.DesiredCount: 5 is outside MinCapacity 1..MaxCapacity 4",
        "allowed: 1 to 4, or MinCapacity and MaxCapacity that hold it",
    ),
    (
        "fargate pair",
        with_parameters(TaskCpu=256, TaskMemory=4096),
        "parameters.TaskMemory: 4096 is not offered",
        "allowed: 512, 1024, 2048",
    ),
    (
        "fargate pair, the memory left to its default",  # the error is about a key the file does not hold: said
        {**GOOD, "parameters": {k: v for k, v in GOOD["parameters"].items() if k != "TaskMemory"} | {"TaskCpu": 4096}},
        f"parameters.TaskMemory: {INPUTS['TaskMemory'].default} (the default: the file does not set it) is not offered",
        "allowed:",
    ),
    ("cpu not offered", with_parameters(TaskCpu=300), "parameters.TaskCpu: 300", "one of 256, 512, 1024, 2048, 4096, 8192, 16384"),
    (
        "name prefix",
        with_parameters(NamePrefix="shop-prod"),
        "parameters.NamePrefix: 'shop-prod'",
        "startupwebapp, or startupwebapp-<1 to 8",
    ),
    ("domain", with_parameters(DomainName="Startup WebApp"), "parameters.DomainName: 'Startup WebApp'", "a lower-case domain name"),
    ("subnet", with_parameters(PublicSubnetIds=["subnet-0a1b2c3d", "net-12"]), "parameters.PublicSubnetIds", "each a subnet id"),
    ("one subnet", with_parameters(PrivateSubnetIds=["subnet-0a1b2c3d"]), "parameters.PrivateSubnetIds", "exactly 2 items"),
    # 8 or 17 hexadecimal digits: one dropped from a 17-digit id (a copy-paste slip) is refused here,
    # not by the deploy that would replace every resource built on the VPC.
    (
        "vpc id one digit short",
        with_parameters(VpcId="vpc-0a1b2c3d4e5f6071"),
        "parameters.VpcId: 'vpc-0a1b2c3d4e5f6071'",
        "8 or 17 hexadecimal",
    ),
    (
        "security group id too long",
        with_parameters(BackendSecurityGroupId="sg-0a1b2c3d4"),
        "parameters.BackendSecurityGroupId",
        "8 or 17 hexadecimal",
    ),
    (
        "same subnet twice",
        with_parameters(PrivateSubnetIds=["subnet-0a1b2c3d", "subnet-0a1b2c3d"]),
        "parameters.PrivateSubnetIds",
        "all different",
    ),
    (
        "security group",
        with_parameters(BackendSecurityGroupId="sg-xyz"),
        "parameters.BackendSecurityGroupId: 'sg-xyz'",
        "a security group id",
    ),
    (
        "secret arn",
        with_parameters(DatabaseSecretArn="arn:aws:s3:::bucket"),
        "parameters.DatabaseSecretArn",
        "a Secrets Manager secret ARN",
    ),
    # the roles' permissions boundary (templates/ci.py) reaches only the project's repositories and secrets
    (
        "secret outside the project's names",
        with_parameters(DatabaseSecretArn=GOOD["parameters"]["DatabaseSecretArn"].replace(f":secret:{PROJECT}", ":secret:other")),
        "parameters.DatabaseSecretArn",
        f"whose name starts with {PROJECT} (the roles' permissions boundary allows no other)",
    ),
    (
        "repository outside the project's names",
        with_parameters(EcrRepositoryName="other-backend"),
        "parameters.EcrRepositoryName: 'other-backend'",
        f"starting with {PROJECT} (the roles' permissions boundary allows no other)",
    ),
    ("health path", with_parameters(HealthCheckPath="health"), "parameters.HealthCheckPath: 'health'", "a URL path starting with /"),
    (
        "tls policy",
        with_parameters(TlsPolicy="ELBSecurityPolicy-2016-08"),
        "parameters.TlsPolicy",
        "one of ELBSecurityPolicy-TLS13-1-2-Res-2021-06",
    ),
    # (the bound follows gunicorn's timeout: set here, whatever prod sets)
    (
        "stop timeout",
        with_parameters(GunicornTimeoutSeconds=30, StopTimeoutSeconds=30, IdleTimeoutSeconds=60),  # the idle timeout not at issue
        "parameters.StopTimeoutSeconds: 30",
        "allowed: 31 to 120",
    ),
    (
        "idle timeout within gunicorn's",
        with_parameters(GunicornTimeoutSeconds=20, IdleTimeoutSeconds=20, StopTimeoutSeconds=60),  # the stop timeout not at issue
        "parameters.IdleTimeoutSeconds: 20 would have the load balancer answer 504",
        "allowed: 21 to 4000",
    ),
    ("log retention", with_parameters(LogRetentionDays=100), "parameters.LogRetentionDays: 100", "one of 1, 3, 5"),
    (
        "unknown strategy",
        with_parameters(DeploymentStrategy="BLUEGREEN"),
        "parameters.DeploymentStrategy: 'BLUEGREEN'",
        "one of ROLLING, BLUE_GREEN, CANARY, LINEAR",
    ),
    (
        "test listener without testers",
        with_parameters(DeploymentStrategy="CANARY", TestListenerCidr=""),
        "parameters.TestListenerCidr: empty, but DeploymentStrategy CANARY opens a test listener",
        "allowed: the IPv4 CIDR",
    ),
    (
        "test listener without testers, the strategy left to its default",  # the way out without one named too
        {**GOOD, "parameters": {k: v for k, v in GOOD["parameters"].items() if k != "DeploymentStrategy"} | {"TestListenerCidr": ""}},
        f"parameters.TestListenerCidr: empty, but DeploymentStrategy {INPUTS['DeploymentStrategy'].default} (the default: the file "
        "does not set it) opens a test listener",
        "or DeploymentStrategy: ROLLING, which opens none",
    ),
    (
        "test listener open to all",
        with_parameters(TestListenerCidr="0.0.0.0/0"),
        "parameters.TestListenerCidr: '0.0.0.0/0'",
        "a prefix of /8 to /32",
    ),
    (
        "test listener host bits",
        with_parameters(DeploymentStrategy="BLUE_GREEN", TestListenerCidr="203.0.113.7/24"),
        "203.0.113.7/24 has host bits set",
        "allowed: 203.0.113.0/24",
    ),
    # under ROLLING too: the review showed it, and a later switch to a shifting strategy was refused for it then
    (
        "test listener host bits, rolling",
        with_parameters(DeploymentStrategy="ROLLING", TestPauseMinutes=0, TestListenerCidr="203.0.113.7/24"),
        "203.0.113.7/24 has host bits set",
        "allowed: 203.0.113.0/24",
    ),
    (
        "test listener with a leading zero",
        with_parameters(TestListenerCidr="203.0.113.07/32"),
        "parameters.TestListenerCidr: '203.0.113.07/32'",
        "a prefix of /8 to /32",
    ),
    ("test listener on https", with_parameters(TestListenerPort=443), "parameters.TestListenerPort: 443", "from 1024 to 65535"),
    (
        "pause without a test listener",
        with_parameters(DeploymentStrategy="ROLLING", TestPauseMinutes=30),
        "parameters.TestPauseMinutes: 30, but DeploymentStrategy ROLLING has no test listener to pause at",
        "allowed: 0, or DeploymentStrategy BLUE_GREEN, CANARY or LINEAR",
    ),
    (
        "pause past the CI deploy job",
        with_parameters(
            DeploymentStrategy="BLUE_GREEN",
            TestListenerCidr="203.0.113.0/24",
            BakeTimeMinutes=45,
            TestPauseMinutes=MOST_RELEASE_WAIT_MINUTES - 44,
            RollbackMonitoringMinutes=0,
        ),
        f"parameters.TestPauseMinutes: with BLUE_GREEN a release waits up to {MOST_RELEASE_WAIT_MINUTES + 1} minutes "
        f"(45 BakeTimeMinutes, {MOST_RELEASE_WAIT_MINUTES - 44} TestPauseMinutes, 0 RollbackMonitoringMinutes)",
        f"allowed: waits that add up to at most {MOST_RELEASE_WAIT_MINUTES} minutes (what the GitHub Actions deploy job's",
    ),
    (
        "linear too long",
        with_parameters(
            DeploymentStrategy="LINEAR",
            TestListenerCidr="203.0.113.0/24",
            LinearStepPercent=3,
            LinearStepBakeTimeMinutes=60,
            BakeTimeMinutes=60,
            TestPauseMinutes=0,
            RollbackMonitoringMinutes=0,
        ),
        "parameters.LinearStepBakeTimeMinutes: with LINEAR a release waits up to 2040 minutes (1980 LinearStepBakeTimeMinutes "
        "(60 x 33 steps of LinearStepPercent 3), 60 BakeTimeMinutes, 0 TestPauseMinutes, 0 RollbackMonitoringMinutes)",
        f"at most {MOST_RELEASE_WAIT_MINUTES} minutes",
    ),
    (
        "canary too long, the bake time at its default",
        with_parameters(
            DeploymentStrategy="CANARY",
            TestListenerCidr="203.0.113.0/24",
            CanaryBakeTimeMinutes=MOST_RELEASE_WAIT_MINUTES,
            BakeTimeMinutes=10,
            TestPauseMinutes=1,
            RollbackMonitoringMinutes=0,
        ),
        f"parameters.CanaryBakeTimeMinutes: with CANARY a release waits up to {MOST_RELEASE_WAIT_MINUTES + 11} minutes "
        f"({MOST_RELEASE_WAIT_MINUTES} CanaryBakeTimeMinutes, 10 BakeTimeMinutes, 1 TestPauseMinutes, 0 RollbackMonitoringMinutes)",
        f"at most {MOST_RELEASE_WAIT_MINUTES} minutes",
    ),
    (
        "rollback monitoring past the CI deploy job",
        with_parameters(
            DeploymentStrategy="BLUE_GREEN",
            TestListenerCidr="203.0.113.0/24",
            BakeTimeMinutes=100,
            TestPauseMinutes=0,
            RollbackMonitoringMinutes=MOST_RELEASE_WAIT_MINUTES - 99,
        ),
        f"parameters.RollbackMonitoringMinutes: with BLUE_GREEN a release waits up to {MOST_RELEASE_WAIT_MINUTES + 1} minutes "
        f"(100 BakeTimeMinutes, 0 TestPauseMinutes, {MOST_RELEASE_WAIT_MINUTES - 99} RollbackMonitoringMinutes)",
        f"allowed: waits that add up to at most {MOST_RELEASE_WAIT_MINUTES} minutes",
    ),
    # the release alarms' 300 s periods, 3 of them: 15 minutes before one fires, the watch after the update 10
    (
        "rollback watch shorter than the release alarms",
        with_parameters(AlarmPeriodSeconds=300, BadPeriodsToAlarm=3, RollbackMonitoringMinutes=10),
        "parameters.RollbackMonitoringMinutes: 10 ends before a release alarm can fire: it needs BadPeriodsToAlarm 3 periods of "
        "AlarmPeriodSeconds 300 s in a row (15 minutes)",
        f"allowed: 15 to {MOST_MONITORING_MINUTES}, 0 (watched during the update only), or fewer or shorter alarm periods",
    ),
    # longer than any watch CloudFormation takes: no longer watch to suggest
    (
        "release alarms longer than any rollback watch",
        with_parameters(AlarmPeriodSeconds=300, BadPeriodsToAlarm=37, RollbackMonitoringMinutes=60),
        "parameters.RollbackMonitoringMinutes: 60 ends before a release alarm can fire: it needs BadPeriodsToAlarm 37 periods of "
        "AlarmPeriodSeconds 300 s in a row (185 minutes)",
        "allowed: 0 (watched during the update only), or fewer or shorter alarm periods",
    ),
    (
        "trust policy past IAM's quota",
        {
            **with_parameters(
                GitHubCallerRepository="startupwebapp/startupwebapp", GitHubSubjects=[f"environment:{n}{'e' * 200}" for n in range(5)]
            ),
            "enabled_layers": ["ci"],
        },
        "parameters.GitHubSubjects: the deploy role's trust policy would take about",
        "allowed: at most 2048, IAM's quota for a role trust policy",
    ),
    ("region", {**GOOD, "region": "xx-north-9"}, "region: 'xx-north-9'", "allowed: af-south-1"),
    ("no region", {key: value for key, value in GOOD.items() if key != "region"}, "region: missing;", "allowed: af-south-1"),
    ("root user", with_parameters(ContainerUser="0"), "parameters.ContainerUser: '0'", "a non-zero uid"),
    ("root group", with_parameters(ContainerUser="1000:0"), "parameters.ContainerUser: '1000:0'", "a non-zero uid"),
    ("root as 00", with_parameters(ContainerUser="00:1000"), "parameters.ContainerUser: '00:1000'", "a non-zero uid"),
    (
        "hosted zone id",
        with_parameters(ExistingHostedZoneId="zone1"),
        "parameters.ExistingHostedZoneId: 'zone1'",
        "a Route 53 zone id such as",
    ),
    (
        "duplicate key",
        "region: us-east-1\nparameters:\n  DesiredCount: 1\n  DesiredCount: 2\n",
        "line 4: cannot be read as YAML",
        "given twice",
    ),
    ("not yaml", "region: [us-east-1\n", "cannot be read as YAML", "expected"),
    (
        # a key indented one space less than the others: the line of that key, not of the mapping it breaks
        "a key out of line",
        "region: us-east-1\nparameters:\n  MaxCapacity: 2\n DesiredCount: 1\n",
        "line 4: cannot be read as YAML",
        "expected",
    ),
    (
        # PyYAML finds the colon missing on the line after: the line that lacks it is named first
        "a key without its colon",
        "region: us-east-1\nparameters:\n  MaxCapacity: 2\n  DesiredCount 1\n  MinCapacity: 1\n",
        "line 4: cannot be read as YAML: while scanning a simple key, up to line 5:",
        "could not find expected ':'",
    ),
    # PyYAML's own words were its position in a '<unicode string>'
    (
        "a control character",
        "region: us-east-1\nparameters:\n  DesiredCount: 1\x00\n",
        "line 3: the character '\\x00' cannot be read",
        "allowed: printable",
    ),
    # YAML ends lines at a carriage return too; git diff and grep do not: one without a newline after it is refused
    # where it stands, and \r\n counts as one line end
    (
        "after CR line ends",
        "region: us-east-1\rparameters:\r  DesiredCount: 1\x01\r",
        "line 1: the character '\\r' ends a line for the YAML reader, but not for git diff or grep, which show what follows it",
        "allowed: newlines (\\n, or \\r\\n) to end a line",
    ),
    (
        "after CR LF line ends",
        "region: us-east-1\r\nparameters:\r\n  DesiredCount: 1\x01\r\n",
        "line 3: the character '\\x01' cannot be read",
        "allowed:",
    ),
    (
        "domain past the certificate's 64 with its *.",
        with_parameters(DomainName="a" * 59 + ".com"),
        "parameters.DomainName: 'aaa",
        f"allowed: {INPUTS['DomainName'].allowed_text()}",
    ),
    ("uid past Linux's", with_parameters(ContainerUser="4294967295"), "parameters.ContainerUser: '4294967295'", "at most 4294967294"),
    ("gid past Linux's", with_parameters(ContainerUser="1000:9999999999"), "parameters.ContainerUser: '1000:9999999999'", "at most"),
    (
        "secret in another partition",
        with_parameters(DatabaseSecretArn=GOOD["parameters"]["DatabaseSecretArn"].replace("arn:aws:", "arn:aws-cn:")),
        "parameters.DatabaseSecretArn: 'arn:aws-cn:",
        "allowed:",
    ),
    (
        "a key alone, for an input that may be empty",
        "region: us-east-1\nparameters:\n  TestListenerCidr:\n",
        "parameters.TestListenerCidr: no value (null to YAML) is not allowed",
        'write the empty value as "" (TestListenerCidr: "")',
    ),
    # AWS's limits, past which the pattern alone would let a value through to CreateChangeSet:
    (
        "health check path past ELB's 1,024",
        with_parameters(HealthCheckPath="/" + "a" * 1024),
        "parameters.HealthCheckPath: '/aaa",
        "allowed: a URL path starting with /, at most 1024 characters",
    ),
    (
        # ECR takes 256, but ECS runs the image (registry host and tag added) in at most 255: templates/inputs.py
        "repository name past what ECS's image leaves",
        with_parameters(EcrRepositoryName=PROJECT + "a" * (INPUTS["EcrRepositoryName"].max_length + 1 - len(PROJECT))),
        "parameters.EcrRepositoryName: 'startupwebappaaa",
        f"in at most 255 characters), at most {INPUTS['EcrRepositoryName'].max_length} characters",
    ),
    (
        "a value past CloudFormation's 4,096 bytes",
        with_parameters(DjangoSettingsModule="a" * 4097),
        "parameters.DjangoSettingsModule: 'aaa",
        "allowed: a dotted Python module path such as StartupWebApp.settings_production: names of letters, digits and underscores, "
        "none starting with a digit, at most 4096 bytes (CloudFormation's limit for a parameter value)",
    ),
    (
        "a list past CloudFormation's 4,096 bytes, as joined",
        with_parameters(AlertEmails=[f"{n}{'o' * 700}@{'.'.join(['e' * 60] * 11)}.com" for n in range(3)]),
        "parameters.AlertEmails:",
        "at most 4096 bytes",
    ),
    # a YAML boolean is no number, though Python's True is 1
    ("a boolean for a number", with_parameters(DesiredCount=True), "parameters.DesiredCount: true is not allowed", "a whole number"),
    ("a number past its largest", with_parameters(MaxCapacity=101), "parameters.MaxCapacity: 101 is not allowed", "from 1 to 100"),
    (
        "three public subnets",
        with_parameters(PublicSubnetIds=["subnet-0a1b2c3d", "subnet-0a1b2c3e", "subnet-0a1b2c3f"]),
        "parameters.PublicSubnetIds",
        "a list of exactly 2 items",
    ),
    # an environment subject names an environment: "environment:" alone is none
    (
        "an environment subject without a name",
        with_parameters(GitHubSubjects=["environment:"]),
        "parameters.GitHubSubjects: ['environment:'] is not allowed",
        "a list of 1 to",
    ),
    (
        "a pull request's subject",
        with_parameters(GitHubSubjects=["ref:refs/pull/1/merge"]),
        "parameters.GitHubSubjects: ['ref:refs/pull/1/merge'] is not allowed",
        "environment:<name>, ref:refs/heads/<branch> or ref:refs/tags/<tag>",
    ),
    (
        "a one-minute pause without a test listener",
        with_parameters(DeploymentStrategy="ROLLING", TestPauseMinutes=1),
        "parameters.TestPauseMinutes: 1, but DeploymentStrategy ROLLING has no test listener to pause at",
        "allowed: 0, or DeploymentStrategy",
    ),
    (
        "shared with a blank reason",
        {**GOOD, "shared_inputs": {"DatabaseSecretArn": "  "}},
        "shared_inputs.DatabaseSecretArn: '  ' gives no reason",
        "BackendSecurityGroupId, DatabaseSecretArn or DatabaseName to why",
    ),
    # GitHub drops .git from a new repository's name and refuses .wiki: a token never names either
    (
        "a repository named with its .git",
        with_parameters(GitHubRepository="octo-org/app.git"),
        "parameters.GitHubRepository: 'octo-org/app.git' names no GitHub repository",
        "such as octo-org/app",
    ),
    # in the immutable form too: the suggestion keeps its ids
    (
        "a repository named by its ids with its .git",
        with_parameters(GitHubRepository="octo-org@42/app.git@7"),
        "parameters.GitHubRepository: 'octo-org@42/app.git@7' names no GitHub repository",
        "such as octo-org@42/app@7\n",
    ),
    (
        "a caller repository ending in .wiki",
        with_parameters(GitHubCallerRepository="octo-org/app.wiki"),
        "parameters.GitHubCallerRepository: 'octo-org/app.wiki' names no GitHub repository",
        "as the repository's page shows it\n",
    ),
    (
        "a repository named ..",
        with_parameters(GitHubRepository="octo-org/.."),
        "parameters.GitHubRepository: 'octo-org/..' names no GitHub repository",
        "as the repository's page shows it\n",
    ),
    # Fargate offers 0.5 vCPU with 1 to 4 GB: https://docs.aws.amazon.com/AmazonECS/latest/developerguide/fargate-tasks-services.html
    (
        "fargate memory below what 0.5 vCPU takes",
        with_parameters(TaskCpu=512, TaskMemory=512),
        "parameters.TaskMemory: 512 is not offered by Fargate with TaskCpu 512",
        "allowed: 1024, 2048, 3072, 4096",
    ),
]


@pytest.mark.parametrize("what, document, key, allowed", BAD, ids=[b[0] for b in BAD])
def test_bad_params_stop_generation_with_one_clear_line(tmp_path, what, document, key, allowed):
    result, out = run_generate(tmp_path, document)
    assert result.returncode == 2
    problems = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(problems) == 1, result.stderr
    line = problems[0]
    assert str(tmp_path / "params" / "prod.yaml") in line
    # an `allowed` ending in a line break: what the line ends with
    assert key in line and (line.endswith(allowed[:-1]) if allowed.endswith("\n") else allowed in line), line
    assert "Traceback" not in result.stderr
    assert not out.exists(), "nothing may be written when params are bad"


def test_bad_params_say_nothing_was_written_only_where_something_would_have_been(tmp_path):
    # make deploy, diff and rollback run `generate.py --check` first, which never writes: its error
    # does not end with "nothing was written" (odd after make diff); a generating run's does.
    result, _ = run_generate(tmp_path, with_parameters(DesiredCuont=1))
    assert result.returncode == 2 and result.stderr.splitlines()[-1] == "nothing was written", result.stderr
    params = tmp_path / "params"
    checked = generate_main("--check", "--no-lint", "--params-dir", params, "--output-dir", tmp_path / "out")
    assert checked.returncode == 2 and "parameters.DesiredCuont: unknown key" in checked.stderr
    assert "nothing was written" not in checked.stderr, checked.stderr
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "stray.txt").write_text("not generation's")  # the other error a check can stop on
    (tmp_path / "out" / "z\nerror: forged").write_text("a name with a newline: shown escaped, not as a line of its own")
    good = tmp_path / "good"
    good.mkdir()
    (good / "prod.yaml").write_text(yaml.safe_dump(GOOD))
    checked = generate_main("--check", "--no-lint", "--params-dir", good, "--output-dir", tmp_path / "out")
    assert checked.returncode == 2 and "holds files generation did not write: stray.txt, z\\nerror: forged;" in checked.stderr, (
        checked.stderr
    )
    assert "nothing was written" not in checked.stderr, checked.stderr


def test_a_value_only_a_layer_the_environment_does_not_deploy_takes_is_a_warning_naming_it(tmp_path):
    # It went nowhere without a word: GitHubSubjects where ci is not enabled reads as if the environment limited who may deploy it.
    document = with_parameters(WafRateLimit=INPUTS["WafRateLimit"].default) | {
        "enabled_layers": [layer for layer in GOOD.get("enabled_layers", []) if layer != "waf"]
    }
    result, out = run_generate(tmp_path, document)
    said = (
        f"warning: {tmp_path / 'params' / 'prod.yaml'}: parameters.WafRateLimit: only the waf layer takes it, which prod does not "
        "deploy: it has no effect (add waf to enabled_layers, or leave the value out)"
    )
    # (params/prod.yaml's own values for a layer it does not deploy, if any, are warned of too)
    assert result.returncode == 0 and said in result.stderr.splitlines(), result.stderr
    # and a check of the environment, which make deploy runs first
    checked = generate_main("--check", "--no-lint", "--env", "prod", "--params-dir", tmp_path / "params", "--output-dir", out)
    assert checked.returncode == 0 and said in checked.stderr.splitlines(), checked.stderr
    enabled = {**document, "enabled_layers": [*document["enabled_layers"], "waf"]}
    result, _ = run_generate(tmp_path, enabled)
    assert "WafRateLimit" not in result.stderr, result.stderr


def test_the_sandboxs_warning_of_a_value_only_a_layer_it_cannot_rehearse_takes_says_to_leave_it_out(tmp_path):
    # "add ci to enabled_layers", followed, was refused: the sandbox cannot rehearse ci.
    sandbox = yaml.safe_load((ROOT / "params" / "sandbox.yaml").read_text())
    sandbox.setdefault("parameters", {})["GitHubSubjects"] = ["ref:refs/heads/main"]
    result, _ = run_generate(tmp_path, sandbox, name="sandbox.yaml")
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        f"warning: {tmp_path / 'params' / 'sandbox.yaml'}: parameters.GitHubSubjects: only the ci layer takes it, which sandbox does not "
        "deploy: it has no effect (leave the value out: the sandbox cannot rehearse it)"
    ], result.stderr


def test_each_value_no_deployed_layer_takes_is_warned_of_and_only_the_sandbox_is_told_it_cannot_rehearse_a_layer(tmp_path):
    # Every such value is a warning of its own, not the first alone; "add <layer> to enabled_layers" is the fix in every
    # environment but the sandbox, for a layer the sandbox cannot rehearse (ci) too: only the sandbox refuses it.
    import templates
    from templates.params import SANDBOX_CANNOT_REHEARSE

    declared = {layer: json.loads((ROOT / "output" / f"{layer}.json").read_text())["Parameters"] for layer in templates.LAYERS}
    only_by = {
        key: layer
        for layer in templates.OPTIONAL_LAYERS
        for key in declared[layer]
        if key in INPUTS and sum(key in names for names in declared.values()) == 1
    }
    rehearsed = next(key for key, layer in sorted(only_by.items()) if layer not in SANDBOX_CANNOT_REHEARSE)
    not_rehearsed = next(key for key, layer in sorted(only_by.items()) if layer in SANDBOX_CANNOT_REHEARSE)
    # a default as a params file writes it: true, 2000 unquoted (templates/inputs.py holds CloudFormation's strings)
    typed = {key: yaml.safe_load(INPUTS[key].default) if isinstance(INPUTS[key].default, str) else INPUTS[key].default for key in only_by}
    given = {
        key: GOOD["parameters"].get(key, typed[key] if isinstance(typed[key], bool | int | float) else INPUTS[key].default)
        for key in (rehearsed, not_rehearsed)
    }
    document = with_parameters(**given) | {
        "enabled_layers": [layer for layer in GOOD.get("enabled_layers", []) if layer not in only_by.values()]
    }
    result, _ = run_generate(tmp_path, document)
    assert result.returncode == 0, result.stderr
    for key in (rehearsed, not_rehearsed):
        said = (
            f"warning: {tmp_path / 'params' / 'prod.yaml'}: parameters.{key}: only the {only_by[key]} layer takes it, which prod does "
            f"not deploy: it has no effect (add {only_by[key]} to enabled_layers, or leave the value out)"
        )
        assert said in result.stderr.splitlines(), result.stderr


def test_a_check_of_one_environment_warns_of_its_own_unused_values_not_anothers(tmp_path):
    # make deploy's check of one environment must not print another's warnings (nor miss its own).
    import templates

    params = shutil.copytree(ROOT / "params", tmp_path / "params")
    declared = {layer: json.loads((ROOT / "output" / f"{layer}.json").read_text())["Parameters"] for layer in templates.LAYERS}
    only_by = {key: layer for layer in templates.OPTIONAL_LAYERS for key in declared[layer] if key in INPUTS}
    only_by = {key: layer for key, layer in only_by.items() if sum(key in names for names in declared.values()) == 1}
    documents = {path.stem: yaml.safe_load(path.read_text()) for path in sorted(params.glob("*.yaml"))}
    env, key = next(
        (
            (env, key)
            for env, document in documents.items()
            for key, layer in only_by.items()
            if layer not in document.get("enabled_layers", [])
        ),
        (None, None),
    )
    if env is None or len(documents) < 2:
        pytest.skip("every environment of params/ deploys every optional layer, or there is one environment")
    # the default as a params file writes it: true, 2000 unquoted (templates/inputs.py holds CloudFormation's strings)
    typed = yaml.safe_load(INPUTS[key].default) if isinstance(INPUTS[key].default, str) else INPUTS[key].default
    documents[env].setdefault("parameters", {})[key] = typed if isinstance(typed, bool | int | float) else INPUTS[key].default
    (params / f"{env}.yaml").write_text(yaml.safe_dump(documents[env]))
    out = tmp_path / "out"
    assert generate_main("--no-lint", "--params-dir", params, "--output-dir", out).returncode == 0
    warning = f"warning: {params / env}.yaml: parameters.{key}: only the {only_by[key]} layer takes it, which {env} does not deploy"
    for each in documents:
        checked = generate_main("--check", "--no-lint", "--env", each, "--params-dir", params, "--output-dir", out)
        assert checked.returncode == 0 and (warning in checked.stderr) == (each == env), (each, checked.stderr)


def test_the_hint_to_write_an_empty_value_comes_only_where_empty_is_allowed():
    for name in ("TestListenerCidr", "AlertEmails", "ExistingOidcProviderArn"):
        assert check_value(INPUTS[name], None).endswith(f'; write the empty value as "" ({name}: "")'), name
    for name in ("DomainName", "PublicSubnetIds", "HealthCheckPath"):  # empty is no value of theirs: "" would not do either
        assert 'write the empty value as ""' not in check_value(INPUTS[name], None), name


def test_values_at_awss_limits_are_taken(tmp_path):
    at_limits = with_parameters(
        HealthCheckPath="/" + "a" * 1023,
        EcrRepositoryName=PROJECT + "a" * (INPUTS["EcrRepositoryName"].max_length - len(PROJECT)),
        DjangoSettingsModule="a" * 4096,
    )
    assert run_generate(tmp_path, at_limits)[0].returncode == 0


@pytest.mark.parametrize("cpu, memory", [(8192, 16384), (8192, 61440), (16384, 32768), (16384, 122880)])
def test_the_largest_fargate_sizes_are_taken(tmp_path, cpu, memory):
    # 8 vCPU with 16 to 60 GB in 4 GB steps, 16 vCPU with 32 to 120 GB in 8 GB steps (templates/inputs.py cites the table)
    result, out = run_generate(tmp_path, with_parameters(TaskCpu=cpu, TaskMemory=memory))
    assert result.returncode == 0, result.stderr
    given = json.loads((out / "prod" / "service.json").read_text())["Parameters"]
    assert (given["TaskCpu"], given["TaskMemory"]) == (str(cpu), str(memory))
    assert run_generate(tmp_path, with_parameters(TaskCpu=cpu, TaskMemory=memory + 1024))[0].returncode == 2  # between the steps


# Each CPU's smallest and largest memory in AWS's table (templates/inputs.py FARGATE_MEMORY_BY_CPU cites it).
@pytest.mark.parametrize(
    "cpu, memory",
    [
        (256, 512),
        (256, 2048),
        (512, 1024),
        (512, 4096),
        (1024, 2048),
        (1024, 8192),
        (2048, 4096),
        (2048, 16384),
        (4096, 8192),
        (4096, 30720),
    ],
)
def test_each_fargate_cpus_smallest_and_largest_memory_are_taken(tmp_path, cpu, memory):
    result, out = run_generate(tmp_path, with_parameters(TaskCpu=cpu, TaskMemory=memory))
    assert result.returncode == 0, result.stderr
    given = json.loads((out / "prod" / "service.json").read_text())["Parameters"]
    assert (given["TaskCpu"], given["TaskMemory"]) == (str(cpu), str(memory))


def test_every_default_passes_its_own_rules():
    for spec in INPUTS.values():
        boolean = spec.allowed == ("true", "false")  # params files write these as YAML booleans
        assert check_value(spec, spec.default == "true" if boolean else spec.default) is None, spec.name


def test_every_problem_is_reported_at_once(tmp_path):
    result, out = run_generate(tmp_path, with_parameters(DesiredCout=1, HealthCheckPath="x", VpcId="vpc"))
    assert result.returncode == 2
    assert len([line for line in result.stderr.splitlines() if line.startswith("error: ")]) == 3
    assert not out.exists()


def test_bad_environment_file_name(tmp_path):
    result, out = run_generate(tmp_path, GOOD, name="Prod_1.yaml")
    assert result.returncode == 2 and "is not an environment name" in result.stderr
    assert not out.exists()


def test_a_file_name_with_control_characters_is_one_line_and_reaches_the_terminal_escaped(tmp_path):
    result, _ = run_generate(tmp_path, GOOD, name="q\x1b[2J\na.yaml")
    (line,) = [line for line in result.stderr.splitlines() if "is not an environment name" in line]
    assert "\x1b" not in result.stderr and "q\\x1b[2J\\na.yaml" in line, result.stderr


def test_a_new_environment_is_one_params_file(tmp_path):
    document = with_parameters(NamePrefix="startupwebapp-qa", ApiHostLabel="api-qa", MinCapacity=1, DesiredCount=1)
    result, out = run_generate(tmp_path, document, name="qa.yaml")
    assert result.returncode == 0, result.stderr
    # Every layer, but waf and ci only when the file enables them.
    deployed = ["alarms", "alb", "cert-dns", "release-alarms", "scaling", "service"]
    deployed += [layer for layer in ("waf", "ci") if layer in (GOOD.get("enabled_layers") or [])]  # optional: none when left out
    assert sorted(p.name for p in (out / "qa").iterdir()) == sorted(f"{layer}.json" for layer in deployed)
    assert '"DesiredCount": "1"' in (out / "qa" / "service.json").read_text()


def test_failed_run_leaves_earlier_output_untouched(tmp_path):
    result, out = run_generate(tmp_path, GOOD)
    assert result.returncode == 0
    before = {p: p.read_bytes() for p in out.rglob("*.json")}
    result, out = run_generate(tmp_path, with_parameters(DesiredCount=1000))  # above what any file may allow
    assert result.returncode == 2
    assert before == {p: p.read_bytes() for p in out.rglob("*.json")}


def test_two_environments_may_not_share_a_name_prefix(tmp_path):
    run_generate(tmp_path, GOOD)
    result, out = run_generate(tmp_path, GOOD, name="qa.yaml")
    assert result.returncode == 2
    prefix = GOOD["parameters"].get("NamePrefix", INPUTS["NamePrefix"].default)  # prod's, from its file or the default
    # Which of the two is to change, only the person who added one knows: both files are named.
    assert f"params/prod.yaml and {tmp_path}/params/qa.yaml: parameters.NamePrefix: both {prefix!r}" in result.stderr
    assert "allowed: a prefix of each environment's own" in result.stderr
    assert not (out / "qa").exists()


@pytest.mark.parametrize("name", ["qa.YAML", "qa.Yaml", "qa.YML"])
def test_a_params_file_of_another_spelling_of_yaml_is_named_not_ignored(tmp_path, name):
    run_generate(tmp_path, GOOD)
    result, out = run_generate(tmp_path, GOOD, name=name)
    assert result.returncode == 2 and f"{name}: params files end in .yaml; rename it to qa.yaml" in result.stderr, result.stderr
    assert not (out / "qa").exists()


def test_a_yml_params_file_is_named_not_ignored(tmp_path):
    run_generate(tmp_path, GOOD)
    result, out = run_generate(tmp_path, GOOD, name="qa.yml")
    assert result.returncode == 2 and "qa.yml: params files end in .yaml; rename it to qa.yaml" in result.stderr
    # A file's name may hold control characters: shown escaped, on the error's own line.
    (tmp_path / "params" / "qa.yml").rename(tmp_path / "params" / "q\x1b]0;x\x07\rforged.yml")
    result, _ = run_generate(tmp_path, GOOD)
    assert result.returncode == 2 and "q\\x1b]0;x\\x07\\rforged.yml: params files end in .yaml" in result.stderr, result.stderr
    assert "\x1b" not in result.stderr and "\r" not in result.stderr


@pytest.mark.parametrize("enabled", [[], ["waf"], ["ci"], ["ci", "waf"]])
def test_an_environment_deploys_every_layer_but_the_optional_ones_it_does_not_enable(tmp_path, enabled):
    path = tmp_path / "prod.yaml"
    path.write_text(yaml.safe_dump(GOOD | {"enabled_layers": enabled}))
    environment = load(path)
    every = ["ci", "cert-dns", "alb", "waf", "release-alarms", "service", "scaling", "alarms"]  # the order, all enabled
    assert environment.layers == [layer for layer in every if layer not in ("ci", "waf") or layer in enabled]
    assert (
        environment.deploys("alb") and environment.deploys("waf") == ("waf" in enabled) and environment.deploys("ci") == ("ci" in enabled)
    )


def test_the_sandbox_refuses_the_layers_it_cannot_rehearse_and_the_deployer_says_why(tmp_path, monkeypatch):
    """moto deletes the ci layer's roles before detaching their managed policies (DeleteConflict):
    deployed there, it could not be destroyed. Refused where it is enabled and where it is named."""
    from scripts import deploy

    sandbox = yaml.safe_load((ROOT / "params" / "sandbox.yaml").read_text())
    path = tmp_path / "sandbox.yaml"
    path.write_text(yaml.safe_dump(sandbox | {"enabled_layers": [*sandbox.get("enabled_layers", []), "ci"]}))
    with pytest.raises(ParamsError) as error:
        load(path)
    assert "enabled_layers: 'ci': the sandbox cannot rehearse it (the emulator deletes its roles before detaching" in str(error.value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # a closed port: the refusal comes before any call
    err = io.StringIO()
    assert (
        deploy.main(["deploy", "--env", "sandbox", "--stack", "ci", "--params-dir", str(ROOT / "params")], out=io.StringIO(), err=err) == 2
    )
    assert err.getvalue().startswith("error: the sandbox cannot rehearse the ci layer: the emulator deletes its roles"), err.getvalue()
    # One left there from before: make status names the way out that works if the destroy cannot.
    from scripts.deploy.commands import not_enabled_note

    note = not_enabled_note("sandbox", "ci", ROOT / "params" / "sandbox.yaml")
    assert "make destroy STACK=ci ENV=sandbox removes it" in note and note.endswith(
        "make sandbox-stop && make sandbox starts the sandbox empty)"
    )
    assert "the emulator deletes its roles before detaching their policies" in note, note
    assert not_enabled_note("sandbox", "waf", ROOT / "params" / "sandbox.yaml") == (
        "(not in enabled_layers of params/sandbox.yaml: make destroy STACK=waf ENV=sandbox removes it)"
    )
    assert not_enabled_note("prod", "ci", ROOT / "params" / "prod.yaml") == (
        "(not in enabled_layers of params/prod.yaml: make destroy STACK=ci ENV=prod removes it)"
    )


@pytest.mark.parametrize(
    "command, takes_them", [("deploy", False), ("changeset", False), ("diff", False), ("status", True), ("destroy", True), ("drift", True)]
)
def test_a_refused_stack_on_the_sandbox_names_the_layers_leading_to_no_second_refusal(monkeypatch, command, takes_them):
    """`make deploy STACK= ENV=sandbox` listed ci among the layers to name; named, it was refused as a layer the
    sandbox cannot rehearse. The commands that look at or remove any layer's stack still take it."""
    from scripts import deploy
    from templates.params import SANDBOX_CANNOT_REHEARSE

    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # a closed port: the refusal comes before any call
    assert SANDBOX_CANNOT_REHEARSE, "no layer the sandbox cannot rehearse: nothing to test"
    expected = [layer for layer in templates.LAYERS if takes_them or layer not in SANDBOX_CANNOT_REHEARSE]
    for given, said in [
        ("", f"error: STACK= is empty: name a layer ({', '.join(expected)})"),
        *((f"{layer}x", f"error: unknown layer '{layer}x'") for layer in SANDBOX_CANNOT_REHEARSE),
    ]:
        err = io.StringIO()
        argv = [command, "--env", "sandbox", f"--stack={given}", "--params-dir", str(ROOT / "params")]
        assert deploy.main(argv, out=io.StringIO(), err=err) == 2, err.getvalue()
        assert err.getvalue().startswith(said), err.getvalue()
        if given:  # a misspelt layer: offered only where the command takes it
            hint = f" (did you mean {given[:-1]}?)" if takes_them else ""
            assert err.getvalue() == f"{said}{hint}; layers: {', '.join(expected)}\n", err.getvalue()


def isolated_qa(**changes):
    """A second environment of the account with its own names, security group and secret, and not the ci
    layer, which an account has once (prod's, where prod enables it)."""
    own = {
        "NamePrefix": "startupwebapp-qa",
        "ApiHostLabel": "api-qa",
        "BackendSecurityGroupId": "sg-0fedcba987654321f",
        "DatabaseSecretArn": GOOD["parameters"]["DatabaseSecretArn"].replace("/db-", "/qa/db-"),
        "DatabaseName": "startupwebapp_qa",
    }
    values = own | changes
    # An OIDC provider prod's file names is one of prod's account: in another account, qa's would be that account's.
    provider, account = GOOD["parameters"].get("ExistingOidcProviderArn"), values["DatabaseSecretArn"].split(":")[4]
    if provider and "ExistingOidcProviderArn" not in changes:
        values["ExistingOidcProviderArn"] = provider.replace(f"::{provider.split(':')[4]}:", f"::{account}:")
    return with_parameters(**values) | {"enabled_layers": without_ci(GOOD)}


ACCOUNT = GOOD["parameters"]["DatabaseSecretArn"].split(":")[4]  # prod's, as its secret names it
OTHER_ACCOUNT = "210987654321" if ACCOUNT != "210987654321" else "123456789012"


@pytest.mark.parametrize("key", ISOLATING)
def test_two_environments_may_not_share_a_backend_security_group_or_database_secret(tmp_path, key):
    # The same backend security group lets one environment's load balancer reach the other's tasks;
    # the same secret gives one environment's tasks the other's database credentials.
    run_generate(tmp_path, GOOD)
    assert run_generate(tmp_path, isolated_qa(), name="qa.yaml")[0].returncode == 0
    result, out = run_generate(tmp_path, isolated_qa(**{key: GOOD["parameters"][key]}), name="qa.yaml")
    assert result.returncode == 2
    assert f"params/prod.yaml and {tmp_path}/params/qa.yaml: parameters.{key}: both {GOOD['parameters'][key]!r}; allowed" in result.stderr
    assert f"shared_inputs: {{{key}: <why>}}" in result.stderr


def test_two_environments_of_one_account_may_not_both_deploy_the_ci_layer(tmp_path):
    # It makes what an account has one of (a boundary policy of a fixed name, GitHub's OIDC provider): the second create failed.
    from templates.common import ROLE_BOUNDARY

    account = ACCOUNT
    run_generate(tmp_path, GOOD | {"enabled_layers": ["ci"]})
    assert run_generate(tmp_path, isolated_qa(), name="qa.yaml")[0].returncode == 0  # ci in one of them
    result, out = run_generate(tmp_path, isolated_qa() | {"enabled_layers": ["ci"]}, name="qa.yaml")
    assert result.returncode == 2 and result.stderr.count("error: ") == 1, result.stderr
    assert (
        f"params/prod.yaml and {tmp_path}/params/qa.yaml: enabled_layers: both deploy the ci layer in account {account} (their "
        f"parameters.DatabaseSecretArn), whose roles' boundary, the managed policy {ROLE_BOUNDARY}, an account has once: the second "
        "create would fail; allowed: the ci layer in one of them, whose GitHubSubjects names the other (environment:prod or "
        "environment:qa), as the other's runs assume its roles"
    ) in result.stderr, result.stderr
    elsewhere = isolated_qa(DatabaseSecretArn=GOOD["parameters"]["DatabaseSecretArn"].replace(f":{account}:", f":{OTHER_ACCOUNT}:"))
    result, out = run_generate(tmp_path, elsewhere | {"enabled_layers": ["ci"]}, name="qa.yaml")
    assert result.returncode == 0, result.stderr  # an account of its own


@pytest.mark.parametrize("key", ISOLATING)
def test_a_shared_value_that_neither_file_sets_is_named_as_the_default(tmp_path, key):
    # Both environments leave the input out: the value is templates/inputs.py's, not prod's choice.
    both_unset = {name: value for name, value in GOOD["parameters"].items() if name != key}
    run_generate(tmp_path, {**GOOD, "parameters": both_unset})
    qa = isolated_qa()
    del qa["parameters"][key]
    result, _ = run_generate(tmp_path, qa, name="qa.yaml")
    assert result.returncode == 2
    default = INPUTS[key].default
    assert f"qa.yaml: parameters.{key}: both {default!r} (prod and qa take the default from templates/inputs.py); allowed" in result.stderr


@pytest.mark.parametrize("key", ISOLATING)
def test_sharing_is_allowed_when_a_file_says_why(tmp_path, key):
    run_generate(tmp_path, GOOD)
    document = isolated_qa(**{key: GOOD["parameters"][key]}) | {"shared_inputs": {key: "qa replays prod traffic on prod's tasks"}}
    result, out = run_generate(tmp_path, document, name="qa.yaml")
    assert result.returncode == 0, result.stderr
    assert load(tmp_path / "params" / "qa.yaml").shared_inputs == {key: "qa replays prod traffic on prod's tasks"}


@pytest.mark.parametrize("key", ISOLATING)
def test_a_shared_input_no_other_environment_shares_is_refused(tmp_path, key):
    # left from a share that ended, it would let a later, accidental one through
    run_generate(tmp_path, GOOD)
    document = isolated_qa() | {"shared_inputs": {key: "qa replays prod traffic on prod's tasks"}}
    result, out = run_generate(tmp_path, document, name="qa.yaml")
    assert result.returncode == 2 and result.stderr.count("error: ") == 1, result.stderr
    assert (
        f"error: {tmp_path}/params/qa.yaml: shared_inputs.{key}: no other environment of {tmp_path}/params/ has its {key}; allowed: "
        "take it out (it would let a later, accidental share of it through), or share the value as it says"
    ) in result.stderr.splitlines(), result.stderr


def test_a_share_with_a_file_that_has_problems_of_its_own_is_not_called_none(tmp_path):
    # (helper T1) prod.yaml with a problem of its own is left out of what environments share: qa's share of prod's value,
    # meant, was refused as one no other environment has ("take it out"), where only prod's own problem is to fix
    key = ISOLATING[0]
    run_generate(tmp_path, GOOD | {"region": "mars"})
    document = isolated_qa(**{key: GOOD["parameters"][key]}) | {"shared_inputs": {key: "qa replays prod traffic on prod's tasks"}}
    result, out = run_generate(tmp_path, document, name="qa.yaml")
    assert result.returncode == 2 and result.stderr.count("error: ") == 1, result.stderr
    assert f"error: {tmp_path}/params/prod.yaml: region: " in result.stderr, result.stderr


def test_a_share_no_other_environment_has_is_said_beside_another_problem_two_files_have_together(tmp_path):
    # each file sound on its own: a NamePrefix both take is no reason to leave out what they share
    key = ISOLATING[0]
    run_generate(tmp_path, GOOD)
    prefix = GOOD["parameters"].get("NamePrefix", INPUTS["NamePrefix"].default)
    document = isolated_qa(NamePrefix=prefix) | {"shared_inputs": {key: "qa replays prod traffic on prod's tasks"}}
    result, out = run_generate(tmp_path, document, name="qa.yaml")
    assert result.returncode == 2 and result.stderr.count("error: ") == 2, result.stderr
    assert "parameters.NamePrefix: both" in result.stderr and f"qa.yaml: shared_inputs.{key}: no other environment" in result.stderr


@pytest.mark.parametrize(
    "shared",
    [["BackendSecurityGroupId"], {"BackendSecurityGroupIds": "why"}, {"DatabaseSecretArn": ""}, {"VpcId": "the VPC is shared anyway"}],
)
def test_shared_inputs_name_an_isolating_input_and_why(tmp_path, shared):
    result, out = run_generate(tmp_path, GOOD | {"shared_inputs": shared})
    assert result.returncode == 2
    assert "prod.yaml: shared_inputs" in result.stderr and "BackendSecurityGroupId, DatabaseSecretArn or DatabaseName" in result.stderr
    assert not out.exists()


# prod (params/prod.yaml's values) deploying the ci layer, whose roles the runs of environment qa assume
PROD_CI = {**GOOD, "enabled_layers": ["ci"], "parameters": {**GOOD["parameters"], "GitHubSubjects": ["environment:prod", "environment:qa"]}}


def staging_of_prods_ci(**changes):
    """An environment whose GitHub runs assume prod's ci roles (PROD_CI names it), deploying no ci layer of its own."""
    document = isolated_qa(**changes) | {"enabled_layers": []}
    return document, "qa.yaml", "environment:qa"


@pytest.mark.parametrize(
    "key, value",
    [("region", OTHER_REGION), ("VpcId", "vpc-0fedcba9876543210"), ("ClusterName", "other-cluster"), ("DomainName", OTHER_DOMAIN)],
)
def test_an_environment_outside_the_ci_roles_its_github_runs_assume_is_refused(tmp_path, key, value):
    # prod's ci roles reach prod's region, VPC, cluster and domain alone: staging's CI deploy of
    # another would be denied half way through its stacks.
    run_generate(tmp_path, PROD_CI)
    own_zone = {"ExistingHostedZoneId": OTHER_ZONE} if key == "DomainName" else {}  # another domain is in a zone of its own
    document, name, subject = staging_of_prods_ci() if key == "region" else staging_of_prods_ci(**{key: value}, **own_zone)
    if key == "region":
        document["region"] = value
    result, _ = run_generate(tmp_path, document, name=name)
    named = "region" if key == "region" else f"parameters.{key}"
    assert result.returncode == 2, result
    assert (
        f"{tmp_path}/params/{name}: {named}: {value!r}, while the ci roles its GitHub runs assume ({subject} in "
        f"{tmp_path}/params/prod.yaml's GitHubSubjects) reach"
    ) in result.stderr, result.stderr
    # Not named by prod's subjects, it is refused nothing: no run of it assumes those roles.
    prod = {**PROD_CI, "parameters": {**PROD_CI["parameters"], "GitHubSubjects": ["environment:prod"]}}
    run_generate(tmp_path, prod)
    assert run_generate(tmp_path, document, name=name)[0].returncode == 0


def test_an_environment_in_another_account_than_the_ci_roles_its_github_runs_assume_is_refused(tmp_path):
    # IAM roles act in their own account: qa's stacks in another would be out of reach of every run
    run_generate(tmp_path, PROD_CI)
    secret = GOOD["parameters"]["DatabaseSecretArn"].replace(f":{ACCOUNT}:", f":{OTHER_ACCOUNT}:")
    document, name, subject = staging_of_prods_ci(DatabaseSecretArn=secret)
    result, _ = run_generate(tmp_path, document, name=name)
    assert result.returncode == 2, result
    assert (
        f"{tmp_path}/params/{name}: parameters.DatabaseSecretArn's account: {OTHER_ACCOUNT!r}, while the ci roles its GitHub runs "
        f"assume ({subject} in {tmp_path}/params/prod.yaml's GitHubSubjects) reach {ACCOUNT!r} alone; allowed: the same (the "
        "stacks' account)"
    ) in result.stderr, result.stderr


def test_the_ci_roles_by_default_subjects_are_named_as_the_default_and_one_with_its_own_ci_is_not_held_to_them(tmp_path):
    # eu deploys the ci layer and leaves GitHubSubjects to its default, which names prod.
    default_subject = INPUTS["GitHubSubjects"].default
    name = (default_subject if isinstance(default_subject, str) else default_subject[0]).removeprefix("environment:")
    secret = GOOD["parameters"]["DatabaseSecretArn"].replace(f":{ACCOUNT}:", f":{OTHER_ACCOUNT}:")  # ci once an account
    eu = isolated_qa(VpcId="vpc-0fedcba9876543210", DatabaseSecretArn=secret) | {"region": OTHER_REGION, "enabled_layers": ["ci"]}
    del eu["parameters"]["GitHubSubjects"]
    run_generate(tmp_path, eu, name="eu.yaml")
    own = {**PROD_CI, "parameters": {**PROD_CI["parameters"], "GitHubSubjects": [f"environment:{name}"]}}  # no qa here
    result, _ = run_generate(tmp_path, own, name=f"{name}.yaml")  # it deploys its own ci layer: its runs assume its roles
    assert result.returncode == 0, result.stderr
    without_ci = {**own, "enabled_layers": []}
    result, _ = run_generate(tmp_path, without_ci, name=f"{name}.yaml")
    assert result.returncode == 2
    assert (
        f"(environment:{name} in the GitHubSubjects {tmp_path}/params/eu.yaml takes by default) reach {OTHER_REGION!r} alone"
        in result.stderr
    )


def test_a_subject_naming_an_environment_params_does_not_have_is_refused(tmp_path):
    """An environment removed (its params file deleted) but left in GitHubSubjects, or one misspelt:
    generation and make check went on, and that environment's GitHub runs could still assume the deploy
    role that changes production's stacks."""
    result, _ = run_generate(tmp_path, PROD_CI)  # names environment:qa, and params/ has no qa.yaml
    assert result.returncode == 2, result.stderr
    where = f"{tmp_path}/params"
    assert result.stderr.splitlines()[0] == (
        f"error: {where}/prod.yaml: parameters.GitHubSubjects: 'environment:qa' names no environment of {where}/, yet its "
        f"GitHub runs could assume the deploy role: take it out, or restore {where}/qa.yaml if it went by mistake; "
        "allowed: environment:<name> of prod, or a ref: subject"
    ), result.stderr
    document, name, _ = staging_of_prods_ci()  # qa.yaml
    run_generate(tmp_path, document, name=name)
    misspelt = {**PROD_CI, "parameters": {**PROD_CI["parameters"], "GitHubSubjects": ["environment:prod", "environment:qaa"]}}
    result, _ = run_generate(tmp_path, misspelt)
    assert result.returncode == 2 and "'environment:qaa' names no environment of " in result.stderr, result.stderr
    assert f"{where}/ (did you mean qa?), yet" in result.stderr, result.stderr
    result, _ = run_generate(tmp_path, PROD_CI)  # qa.yaml there now
    assert result.returncode == 0, result.stderr


def test_an_environment_under_the_ci_roles_domain_is_within_them(tmp_path):
    # The roles allow records and certificates for the domain and *.<domain>: a subdomain is inside.
    run_generate(tmp_path, PROD_CI)
    domain = INPUTS["DomainName"].default if "DomainName" not in GOOD["parameters"] else GOOD["parameters"]["DomainName"]
    # a label as short as one gets: a domain of up to 62 characters is allowed, and with "staging." it was past them
    if len(f"s.{domain}") > INPUTS["DomainName"].max_length:
        pytest.skip(f"{domain} leaves no room for a subdomain under the {INPUTS['DomainName'].max_length} characters a domain may have")
    document, name, _ = staging_of_prods_ci(DomainName=f"s.{domain}", ExistingHostedZoneId=OTHER_ZONE)
    result, _ = run_generate(tmp_path, document, name=name)
    assert result.returncode == 0, result.stderr


def test_a_rolling_environment_needs_no_test_listener(tmp_path):
    ran, out = run_generate(tmp_path, with_parameters(DeploymentStrategy="ROLLING", TestListenerCidr="", TestPauseMinutes=0))
    assert ran.returncode == 0, ran.stderr
    assert json.loads((out / "prod" / "alb.json").read_text())["Parameters"]["DeploymentStrategy"] == "ROLLING"


def test_release_waits_that_add_up_to_the_bound_itself_are_allowed(tmp_path):
    # The bound is inclusive ("at most"): one minute less rollback monitoring than the refused case.
    path = tmp_path / "prod.yaml"
    exact = with_parameters(
        DeploymentStrategy="BLUE_GREEN",
        TestListenerCidr="203.0.113.0/24",
        BakeTimeMinutes=MOST_RELEASE_WAIT_MINUTES - 100,
        TestPauseMinutes=0,
        RollbackMonitoringMinutes=100,
    )
    path.write_text(yaml.safe_dump(exact))
    assert int(load(path).values["RollbackMonitoringMinutes"]) == 100


@pytest.mark.parametrize("watch", [15, 0])
def test_a_rollback_watch_as_long_as_the_release_alarms_take_or_none_after_the_update_is_allowed(tmp_path, watch):
    path = tmp_path / "prod.yaml"
    path.write_text(yaml.safe_dump(with_parameters(AlarmPeriodSeconds=300, BadPeriodsToAlarm=3, RollbackMonitoringMinutes=watch)))
    assert int(load(path).values["RollbackMonitoringMinutes"]) == watch


def test_a_rollback_watch_left_at_its_default_is_named_so_when_the_release_alarms_outlast_it(tmp_path):
    document = with_parameters(AlarmPeriodSeconds=300, BadPeriodsToAlarm=3)
    document["parameters"].pop("RollbackMonitoringMinutes", None)
    path = tmp_path / "prod.yaml"
    path.write_text(yaml.safe_dump(document))
    default = INPUTS["RollbackMonitoringMinutes"].default
    assert default < 15, "the default watch outlasts 15 minutes of alarm periods: pick longer ones here"
    with pytest.raises(
        ParamsError, match=rf"parameters\.RollbackMonitoringMinutes: {default} \(the default: the file does not set it\) ends"
    ):
        load(path)


def test_each_load_owns_what_it_returns_and_a_changed_file_is_read_again(tmp_path):
    """The parse of a file's text is kept for the process (templates/params.py parse_yaml): a caller
    that changes what load() gave it must not change what the next load gives."""
    data = yaml.safe_load((ROOT / "params" / "prod.yaml").read_text())
    data["smoke_checks"] = [{"path": "/health", "status": 200}]
    path = tmp_path / "prod.yaml"
    path.write_text(yaml.safe_dump(data))
    first = load(path)
    first.smoke_checks[0]["path"] = "/changed-by-the-caller"
    assert load(path).smoke_checks[0]["path"] == "/health"
    data["smoke_checks"][0]["path"] = "/ready"
    path.write_text(yaml.safe_dump(data))
    assert load(path).smoke_checks[0]["path"] == "/ready"


def test_review_is_not_an_environment_name_as_output_review_holds_the_documents(tmp_path):
    # Generated once, output/review/<layer>.json would then be foreign to every later run.
    result, out = run_generate(tmp_path, GOOD, name="review.yaml")
    assert result.returncode == 2 and "the file name 'review' is not an environment name" in result.stderr, result.stderr
    assert "other than review" in result.stderr and not out.exists()


def test_hidden_files_in_params_are_no_environment(tmp_path):
    # An editor's lock file (.#prod.yaml, a dangling symlink) or backup beside the params files.
    params = tmp_path / "params"
    params.mkdir()
    (params / "prod.yaml").write_text(yaml.safe_dump(GOOD))
    (params / ".#prod.yaml").symlink_to("user@host.1234:1700000000")
    (params / ".prod.yml").write_text("not: params")
    result = generate_main("--no-lint", "--params-dir", params, "--output-dir", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir() if p.is_dir()) == ["prod"]


def test_a_params_file_that_is_no_regular_file_or_too_large_is_refused_without_reading_it(tmp_path):
    """A symlink to /dev/zero would be read until memory runs out, a FIFO would block, and a symlink
    to a file outside the project would have its lines printed as errors (in CI's log)."""
    params = tmp_path / "params"
    params.mkdir()
    (params / "prod.yaml").write_text(yaml.safe_dump(GOOD))
    (params / "zero.yaml").symlink_to("/dev/zero")
    (params / "passwd.yaml").symlink_to("/etc/passwd")
    os.mkfifo(params / "pipe.yaml")
    (params / "folder.yaml").mkdir()
    (params / "big.yaml").write_text("a" * (MOST_PARAMS_FILE_BYTES + 1))
    bound = socket.socket(socket.AF_UNIX)  # open(2) answers ENXIO: it was "cannot be read: No such device or address"
    bound.bind(str(params / "socket.yaml"))
    result = subprocess.run(  # a process of its own, with a time limit: a blocking read must fail the test, not hang it
        [sys.executable, "generate.py", "--check", "--no-lint", "--params-dir", params, "--output-dir", tmp_path / "out"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert f"{params / 'zero.yaml'}: a symlink; allowed: a regular file" in result.stderr
    assert f"{params / 'passwd.yaml'}: a symlink; allowed: a regular file" in result.stderr and "root:" not in result.stderr
    assert f"{params / 'pipe.yaml'}: not a regular file; allowed: a regular file" in result.stderr
    assert f"{params / 'folder.yaml'}: not a regular file; allowed: a regular file" in result.stderr
    assert f"{params / 'socket.yaml'}: not a regular file; allowed: a regular file" in result.stderr
    bound.close()
    assert f"{params / 'big.yaml'}: larger than {MOST_PARAMS_FILE_BYTES // 1024} KiB" in result.stderr


def test_a_file_of_many_problems_shows_the_first_ones_and_counts_the_rest(tmp_path):
    """A file of thousands of unknown keys is one mistake: the error stays readable."""
    from templates.params import MAX_PROBLEMS

    extra = 10
    result, out = run_generate(tmp_path, with_parameters(**{f"Unknown{i:03d}": 1 for i in range(MAX_PROBLEMS + extra)}))
    lines = result.stderr.splitlines()
    assert result.returncode == 2 and len([line for line in lines if "unknown key" in line]) == MAX_PROBLEMS, result.stderr
    assert f"error: and {extra} more problems: fix those above, then run again" in lines, result.stderr
    assert not out.exists()


def test_exactly_as_many_problems_as_are_shown_are_all_shown_with_no_count(tmp_path):
    from templates.params import MAX_PROBLEMS

    result, _ = run_generate(tmp_path, with_parameters(**{f"Unknown{i:03d}": 1 for i in range(MAX_PROBLEMS)}))
    assert result.returncode == 2 and len([line for line in result.stderr.splitlines() if "unknown key" in line]) == MAX_PROBLEMS
    assert "more problems" not in result.stderr


def test_a_list_written_as_one_string_reaches_cloudformation_as_the_checks_read_it(tmp_path):
    # The checks read each item without the spaces around commas: CloudFormation gets the same items
    # (and its 4,096 bytes are measured on them, not on the spaces).
    public = GOOD["parameters"].get("PublicSubnetIds", INPUTS["PublicSubnetIds"].default)
    items = public if isinstance(public, list) else public.split(",")
    result, out = run_generate(tmp_path, with_parameters(PublicSubnetIds=" ,  ".join(item.strip() for item in items)))
    assert result.returncode == 0, result.stderr
    parameters = json.loads((out / "prod" / "alb.json").read_text())["Parameters"]
    assert parameters["PublicSubnetIds"] == ",".join(item.strip() for item in items)


@pytest.mark.parametrize(
    "enabled, read",
    # left out or empty: none, as load() reads them; a list of layers: those; anything else: every optional one
    [(None, ()), ([], ()), (["waf"], ("waf",)), ("waf", "every")],
)
def test_a_file_read_despite_its_problems_enables_the_layers_load_would(tmp_path, enabled, read):
    from templates.params import OPTIONAL_LAYERS, load_for_reading

    document = with_parameters(DesiredCout=1) | {"enabled_layers": enabled}
    path = tmp_path / "qa.yaml"
    path.write_text(yaml.safe_dump(document))
    found = load_for_reading(path)
    assert found.region == document["region"] and found.problems and found.values == {}
    assert found.enabled_layers == (tuple(OPTIONAL_LAYERS) if read == "every" else read)


@pytest.mark.parametrize(
    "edit",
    [
        # the half-done edits an editor leaves most often, each well below the region line, which reads as it is
        pytest.param(lambda text: text.replace("\n  DesiredCount:", "\n\tDesiredCount:", 1), id="a tab"),
        pytest.param(lambda text: text + "  MaxCapacity: 3\n  MaxCapacity: 4\n", id="a key given twice"),
        pytest.param(lambda text: text + "  AlertEmails: [ops@example.com\n", id="an unclosed list"),
    ],
)
def test_a_half_done_edit_that_yaml_cannot_read_still_lets_status_read_the_region(tmp_path, edit):
    # README (Faults): "a params file with a problem while an edit is half done: make status, outputs, events
    # and unlock still read what is deployed ..., as long as its region reads". With a YAML error below the
    # region line, the region line reads, yet load_for_reading refuses: make status and make unlock ENV=<env>
    # are refused as every other command is (seen on the sandbox: a tab in parameters stops make status).
    from templates.params import load_for_reading

    document = with_parameters(DesiredCount=1)
    text = edit(yaml.safe_dump(document, sort_keys=False, default_flow_style=False))
    path = tmp_path / "qa.yaml"
    path.write_text(text)
    with pytest.raises(ParamsError):
        load(path)
    found = load_for_reading(path)
    assert found.region == document["region"] and found.problems


def test_a_file_yaml_cannot_read_is_read_with_its_region_and_every_optional_layer(tmp_path):
    from templates import OPTIONAL_LAYERS
    from templates.params import load_for_reading

    path = tmp_path / "qa.yaml"
    path.write_text(f"region: {GOOD['region']}\nenabled_layers: []\nparameters:\n  AlertEmails: [ops@example.com\n")
    found = load_for_reading(path)
    assert (found.region, found.enabled_layers) == (GOOD["region"], tuple(OPTIONAL_LAYERS))  # what it enables is not known
    (problem,) = found.problems
    assert problem.startswith(f"{path}:") and "YAML" in problem, problem


def longest_image_tag() -> str:
    """The longest tag the ImageTag input's pattern takes (ImageTag, and TAG= at each deploy)."""
    return "t" * max(n for n in range(1, 300) if re.fullmatch(IMAGE_TAG, "t" * n))


def test_the_longest_repository_name_with_the_longest_tag_is_an_image_ecs_takes_in_every_region(tmp_path):
    # The service layer runs <account>.dkr.ecr.<region>.<URLSuffix>/<EcrRepositoryName>:<ImageTag> (templates/service.py),
    # and ECS takes "For images using tags (repository-url/image:tag), up to 255 characters total":
    # https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ContainerDefinition.html (image)
    most = INPUTS["EcrRepositoryName"].max_length
    repository, tag = PROJECT + "a" * (most - len(PROJECT)), longest_image_tag()
    images = {region: f"123456789012.dkr.ecr.{region}.amazonaws.com/{repository}:{tag}" for region in alb.REGIONS}
    assert max(map(len, images.values())) == 255, images  # the bound is ECS's, not tighter
    path = tmp_path / "prod.yaml"
    path.write_text(yaml.safe_dump(with_parameters(EcrRepositoryName=repository, ImageTag=tag)))
    assert load(path).values["EcrRepositoryName"] == repository


def test_the_templates_pattern_holds_the_id_bound_itself(tmp_path):
    # A stack made in the console checks only the template's AllowedPattern: ten digits let 9999999999
    # through, a uid Linux has not, and the tasks failed to start.
    import re

    from templates.inputs import MAX_LINUX_ID

    pattern = json.loads((ROOT / "output" / "service.json").read_text())["Parameters"]["ContainerUser"]["AllowedPattern"]
    taken = ["1", "1000:1000", f"{MAX_LINUX_ID}:{MAX_LINUX_ID}", f"{MAX_LINUX_ID - 1}", "999999999", "1000000000:7"]
    refused = ["0", "01", "1000:0", f"{MAX_LINUX_ID + 1}", f"1:{MAX_LINUX_ID + 1}", "9999999999:1", "42949672950", "1:2:3"]
    assert [value for value in taken + refused if re.fullmatch(pattern, value)] == taken


@pytest.mark.parametrize(
    "layer, name, refused",
    [
        # "*" made the deploy role trust every branch, pull request, tag and environment of the repository
        ("ci", "GitHubSubjects", ["*", "pull_request", "environment:", "ref:refs/pull/1/merge", "environment:prod,"]),
        ("release-alarms", "AlertEmails", ["ops", "ops@", "@example.com", "ops@example"]),
    ],
)
def test_a_list_the_console_takes_is_checked_item_by_item_as_params_checks_it(layer, name, refused):
    # A stack made or updated in the console checks only the template: a CommaDelimitedList had no AllowedPattern, and
    # took any item. CloudFormation matches the pattern against each item (parameters-section-structure.html).
    parameter = json.loads((ROOT / "output" / f"{layer}.json").read_text())["Parameters"][name]
    pattern = re.compile(parameter["AllowedPattern"])
    assert parameter["ConstraintDescription"].startswith("a list of "), parameter
    taken = sorted({item for environment in load_all(ROOT / "params") for item in environment.values.get(name, "").split(",") if item})
    assert taken, name  # some environment gives it
    assert [item for item in taken + refused if pattern.fullmatch(item)] == taken
    # one that may be left empty: an empty item, whatever CloudFormation takes "" as
    assert bool(pattern.fullmatch("")) == (INPUTS[name].items[0] == 0)


@pytest.mark.parametrize(
    "smallest, largest",
    [(1, 1), (1, 7), (1, 10), (1, 19), (1, 20), (1, 99), (1, 100), (1, 109), (1, 2024), (0, 0), (0, 9), (0, 3600), (5, 110)]
    + [(9, 10), (19, 21), (99, 1000), (100, 100), (123, 4567), (1024, 65535)],
)
def test_a_whole_numbers_pattern_takes_each_number_between_its_bounds_and_no_other(smallest, largest):
    # whole_numbers_from spells the bounds digit by digit for an AllowedPattern: bounds of other lengths and digits than the inputs'
    from templates.inputs import whole_numbers_from

    pattern = re.compile(whole_numbers_from(smallest, largest))
    written = [str(n) for n in range(10 * largest + 10)] + [f"0{n}" for n in range(largest + 1)] + ["", "00", "-1", "1.0", " 1"]
    assert [text for text in written if pattern.fullmatch(text)] == [str(n) for n in range(smallest, largest + 1)]


def test_an_unquoted_id_past_the_largest_is_told_the_bound_with_the_quotes(tmp_path):
    # Told only to quote it, the operator met the bound at the next run.
    from templates.inputs import MAX_LINUX_ID

    result, _ = run_generate(tmp_path, with_parameters(ContainerUser=MAX_LINUX_ID + 1))
    assert result.returncode == 2  # quoted, it is refused all the same: the bound, and no word of quotes
    assert result.stderr.splitlines()[0].endswith(
        f"is not allowed; allowed: a non-zero uid or uid:gid such as 1000:1000, each at most {MAX_LINUX_ID}"
    )
    result, _ = run_generate(tmp_path, with_parameters(ContainerUser=MAX_LINUX_ID))
    assert result.stderr.splitlines()[0].endswith(f"each at most {MAX_LINUX_ID}, in quotes (unquoted, YAML reads it as a number)")


def test_the_largest_linux_ids_are_allowed(tmp_path):
    from templates.inputs import MAX_LINUX_ID

    result, out = run_generate(tmp_path, with_parameters(ContainerUser=f"{MAX_LINUX_ID}:{MAX_LINUX_ID}"))
    assert result.returncode == 0, result.stderr
    assert json.loads((out / "prod" / "service.json").read_text())["Parameters"]["ContainerUser"] == f"{MAX_LINUX_ID}:{MAX_LINUX_ID}"


def test_a_params_dir_that_is_missing_a_file_or_empty_is_named_as_such_and_nothing_is_written(tmp_path):
    from scripts import deploy

    (tmp_path / "empty").mkdir()
    (tmp_path / "a-file.yaml").write_text("parameters: {}\n")
    for given, said in [
        (tmp_path / "missing", "no such directory"),
        (tmp_path / "a-file.yaml", "not a directory"),
        (tmp_path / "empty", "no params files (<env>.yaml) found"),
    ]:
        result = generate_main("--no-lint", "--params-dir", given, "--output-dir", tmp_path / "out")
        assert result.returncode == 2 and result.stderr.startswith(f"error: {given}: {said}"), result.stderr
        assert not (tmp_path / "out").exists()
        if said != "no params files (<env>.yaml) found":  # deploy reads one environment's file: an empty directory has none
            err = io.StringIO()
            assert deploy.main(["diff", "--env", "sandbox", "--params-dir", str(given)], out=io.StringIO(), err=err) == 2
            assert err.getvalue().startswith(f"error: {given}: {said}"), err.getvalue()


def test_a_params_dir_that_may_not_be_listed_says_so_not_that_it_holds_no_params_file(tmp_path, monkeypatch):
    # chmod 000 params/ (the tests run as root, whom it does not stop): glob() found nothing, said as "no params files"
    from templates import params

    listdir = os.listdir
    given = shutil.copytree(ROOT / "params", tmp_path / "params")

    def refused(path):
        if str(path) == str(given):
            raise PermissionError(13, "Permission denied", str(path))
        return listdir(path)

    monkeypatch.setattr(params.os, "listdir", refused)
    result = generate_main("--no-lint", "--params-dir", given, "--output-dir", tmp_path / "out")
    assert result.returncode == 2 and result.stderr.startswith(
        f"error: {given}: cannot be read (Permission denied); the params directory holds one <env>.yaml per environment\n"
    ), result.stderr
    assert not (tmp_path / "out").exists()


def test_a_list_or_mapping_where_a_value_belongs_is_shown_as_yaml_writes_it(tmp_path):
    """Not as Python writes it (['a', {'b': True}]): the reader wrote YAML."""
    document = {**GOOD, "parameters": GOOD["parameters"] | {"DatabaseName": ["a", {"b": True, "c": None}]}}
    result, _ = run_generate(tmp_path, document)
    assert result.returncode == 2 and "parameters.DatabaseName: [a, {b: true, c: null}] is not allowed" in result.stderr, result.stderr
    # A long one: its start, its end and its length, on one line.
    said = shown([f"item-{n}" for n in range(100)])
    assert said.startswith("[item-0, item-1, item-2, ") and said.endswith(", item-98, item-99] (890 characters)"), said


def test_a_check_of_one_environment_stopped_by_another_environments_file_says_why_it_reads_that_file(tmp_path):
    """A draft params/qa.yaml, copied from another environment's, stopped `make deploy ENV=<env>` of every
    environment with errors naming qa's and that other environment's files alone."""
    params = shutil.copytree(ROOT / "params", tmp_path / "params")
    environments = sorted(path.stem for path in params.glob("*.yaml"))
    source, bystander = environments[:2]
    draft = next(name for name in (f"qa{n or ''}" for n in itertools.count()) if name not in environments)  # params/ may have a qa
    shutil.copy(params / f"{source}.yaml", params / f"{draft}.yaml")  # NamePrefix and more: both environments' now
    where = ["--no-lint", "--params-dir", params, "--output-dir", tmp_path / "out"]

    def checked(*env):
        result = generate_main("--check", *(["--env", *env] if env else []), *where)
        named = [line for line in result.stderr.splitlines() if "parameters.NamePrefix: both" in line]
        assert result.returncode == 2 and len(named) == 1 and f"{params}/{draft}.yaml" in named[0] and f"{params}/{source}.yaml" in named[0]
        return result.stderr

    for env in (bystander, source, draft):  # each file sound on its own: the problems come from reading them together
        said = f"note: {params}/{env}.yaml is sound on its own; a check of {env} reads every params file, as make templates does"
        assert said in checked(env), checked(env)
    assert "note: " not in checked()  # make check: every environment's, as it says
    text = (params / f"{bystander}.yaml").read_text()
    (params / f"{bystander}.yaml").write_text(text + "nonsense: 1\n")  # a problem of its own: no note
    assert "note: " not in checked(bystander) and f"{params}/{bystander}.yaml: nonsense: unknown key" in checked(bystander)


@pytest.mark.parametrize(
    "check, said",
    [
        ({"path": "/api/user", "staus": 200}, "{path: /api/user, staus: 200}: staus: unknown key (did you mean status?)"),
        ({"path": "/api/user", None: 200}, "{path: /api/user, null: 200}: a key that is no name"),
        ({"path": "/api/user"}, "{path: /api/user}: no status"),
        ({"status": 200}, "{status: 200}: no path"),
        ({"path": 5, "status": 200}, "{path: 5, status: 200}: its path is not text"),
        ({"path": "api/user", "status": 200}, "{path: api/user, status: 200}: its path does not start with / or holds characters other"),
        (
            {"path": "/caf\u00e9", "status": 200},
            '{path: "/caf\\xE9", status: 200}: its path does not start with / or holds characters other',
        ),
        ({"path": "/" + "a" * 1024, "status": 200}, "{path: /aaaa"),
        ({"path": "/api/user", "status": 999}, "{path: /api/user, status: 999}: its status is not an HTTP status (100 to 599)"),
        ({"path": "/api/user", "status": 600}, "{path: /api/user, status: 600}: its status is not an HTTP status (100 to 599)"),
        ({"path": "/api/user", "status": True}, "{path: /api/user, status: true}: its status is not an HTTP status (100 to 599)"),
        (
            {"path": "/api/user", "status": "200"},
            "{path: /api/user, status: '200'}: its status is text (in quotes): an HTTP status is a whole number from 100 to 599, "
            "without quotes",
        ),
        (["/api/user", 200], "[/api/user, 200]: not a mapping"),
    ],
    ids=[
        "misspelt key",
        "null key",
        "no status",
        "no path",
        "path not text",
        "relative path",
        "non-ASCII path",
        "long path",
        "status out of range",
        "status just past 599",
        "boolean status",
        "quoted status",
        "a list",
    ],
)
def test_a_smoke_check_that_is_wrong_says_which_part_is(tmp_path, check, said):
    result, _ = run_generate(tmp_path, {**GOOD, "smoke_checks": [{"path": "/health", "status": 200}, check]})
    problems = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert result.returncode == 2 and len(problems) == 1, result.stderr
    assert f"smoke_checks, item 2: {said}" in problems[0], problems[0]
    if check == {"path": "/" + "a" * 1024, "status": 200}:  # the item cut, as every long value is; the part said whole
        assert problems[0].count("a") < 200 and "(1046 characters): its path is 1,025 characters;" in problems[0], problems[0]


def test_a_newline_in_a_list_value_stays_on_its_error_line(tmp_path):
    # PyYAML folds a quoted string with a newline over lines, even in flow style: the rest of the
    # value started error lines of its own, and could forge one.
    document = {**GOOD, "parameters": GOOD["parameters"] | {"DatabaseName": ["a\nerror: forged line", "b"]}}
    result, _ = run_generate(tmp_path, document)
    lines = result.stderr.splitlines()
    assert result.returncode == 2 and lines[-1] == "nothing was written", result.stderr
    assert len(lines) == 2 and 'parameters.DatabaseName: ["a\\nerror: forged line", b] is not allowed' in lines[0], result.stderr


def test_a_params_dir_that_cannot_be_read_is_one_line_not_a_traceback(tmp_path, monkeypatch):
    # Python 3.11's Path.is_dir() raises PermissionError (EACCES) where a parent may not be searched.
    from pathlib import Path

    locked = tmp_path / "locked" / "params"
    is_dir = Path.is_dir

    def refused(path):
        if path == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return is_dir(path)

    monkeypatch.setattr(Path, "is_dir", refused)
    result = generate_main("--no-lint", "--params-dir", locked, "--output-dir", tmp_path / "out")
    assert result.returncode == 2 and result.stderr.startswith(f"error: {locked}: cannot be read (Permission denied); "), result.stderr


def test_a_database_secret_name_is_at_most_what_secrets_manager_takes():
    # the bound read from botocore's secretsmanager model (CreateSecret's Name), not from the code under test; the ARN adds
    # a hyphen and six characters
    import botocore.session

    model = botocore.session.get_session().get_service_model("secretsmanager")
    most = model.operation_model("CreateSecret").input_shape.members["Name"].metadata["max"]

    def arn(length):
        return f"arn:aws:secretsmanager:us-east-1:123456789012:secret:{PROJECT}{'a' * (length - len(PROJECT))}-AbCdEf"

    spec = INPUTS["DatabaseSecretArn"]
    assert check_value(spec, arn(most)) is None
    assert f"of at most {most} characters" in check_value(spec, arn(most + 1))


def test_two_environments_may_not_name_one_hosted_zone_for_two_domains(tmp_path):
    # A zone has one name, the domain: make deploy of cert-dns refuses a zone of another name, so the
    # second environment's first deploy would fail; refused before anything is written.
    run_generate(tmp_path, GOOD)
    zone = GOOD["parameters"]["ExistingHostedZoneId"] or OTHER_ZONE
    own_zone = with_parameters(ExistingHostedZoneId=zone)
    run_generate(tmp_path, own_zone)
    written = sorted((tmp_path / "out").rglob("*"))
    result, out = run_generate(tmp_path, isolated_qa(DomainName=OTHER_DOMAIN, ExistingHostedZoneId=zone), name="qa.yaml")
    assert result.returncode == 2 and result.stderr.count("error: ") == 1, result.stderr
    domain = own_zone["parameters"].get("DomainName", INPUTS["DomainName"].default)
    assert (
        f"params/prod.yaml and {tmp_path}/params/qa.yaml: parameters.ExistingHostedZoneId: both {zone}, a zone of one domain, "
        f"for {domain!r} and {OTHER_DOMAIN!r}"
    ) in result.stderr, result.stderr
    assert (
        "allowed: the same DomainName, or each domain's own zone (make zone ENV=<env> finds or creates it once "
        'ExistingHostedZoneId is ""): set it in the file of the one to change'
    ) in result.stderr
    assert sorted(out.rglob("*")) == written and "nothing was written" in result.stderr
    # Each domain in its own zone, or one domain (a second host label in it), is allowed; so are two empty ids.
    other_zone = next(other for other in ("Z0OTHERZONE1", "Z0OTHERZONE2") if other != zone)  # zone is OTHER_ZONE where prod's is ""
    for changes in ({"DomainName": OTHER_DOMAIN, "ExistingHostedZoneId": other_zone}, {"ExistingHostedZoneId": zone}):
        assert run_generate(tmp_path, isolated_qa(**changes), name="qa.yaml")[0].returncode == 0
    run_generate(tmp_path, with_parameters(ExistingHostedZoneId=""))
    assert run_generate(tmp_path, isolated_qa(DomainName=OTHER_DOMAIN, ExistingHostedZoneId=""), name="qa.yaml")[0].returncode == 0


def test_one_zone_for_two_domains_names_the_environment_that_takes_its_domain_by_default(tmp_path):
    # as each collision between two files does (README): which of the two takes the value from templates/inputs.py
    zone = GOOD["parameters"]["ExistingHostedZoneId"] or OTHER_ZONE
    by_default = {key: value for key, value in GOOD["parameters"].items() if key != "DomainName"} | {"ExistingHostedZoneId": zone}
    run_generate(tmp_path, {**GOOD, "parameters": by_default})
    default = INPUTS["DomainName"].default
    other = next(domain for domain in ("example.org", "example.net") if domain != default)
    result, _ = run_generate(tmp_path, isolated_qa(DomainName=other, ExistingHostedZoneId=zone), name="qa.yaml")
    assert result.returncode == 2 and result.stderr.count("error: ") == 1, result.stderr
    said = f"for {default!r} and {other!r} (prod takes the default from templates/inputs.py); allowed: the same DomainName"
    assert said in result.stderr, result.stderr


@pytest.mark.parametrize(("key", "read_as"), [("tags", {}), ("smoke_checks", ()), ("shared_inputs", {})])
def test_an_optional_key_with_nothing_under_it_reads_as_none(tmp_path, key, read_as):
    # `tags:` once its last tag is deleted or commented out: none, as the key left out (a deploy then takes the
    # tags off, which make diff shows). Refused, a staging edit so blocked every environment's deploy and rollback.
    # (enabled_layers: alone is refused: read as none, it took every optional layer's files away.)
    path = tmp_path / "prod.yaml"
    path.write_text(yaml.safe_dump(GOOD | {key: None}))
    assert getattr(load(path), key) == read_as


def test_a_float_by_its_tag_alone_is_quoted_with_the_tag_once_alone_or_in_a_list():
    from templates.params import parse_yaml

    read = parse_yaml("alone: !!float 2\nlisted: [x, !!float 2]\nwritten: 2.0\n")
    assert [shown(read[key]) for key in ("alone", "listed", "written")] == ["!!float 2", "[x, !!float '2']", "2.0"]


def test_an_oidc_provider_of_another_account_than_the_stacks_is_refused(tmp_path):
    # generation knew the environment's account (its DatabaseSecretArn's) and let the ci roles trust another's provider
    account = GOOD["parameters"]["DatabaseSecretArn"].split(":")[4]
    other = next(number for number in ("999999999999", "111111111111") if number != account)
    provider = "arn:aws:iam::{}:oidc-provider/token.actions.githubusercontent.com"
    document = {**with_parameters(ExistingOidcProviderArn=provider.format(other)), "enabled_layers": ["ci"]}
    result, out = run_generate(tmp_path, document)
    assert result.returncode == 2 and not out.exists(), result.stderr
    assert f"is a provider of account {other}, while the environment's stacks go to account {account}" in result.stderr
    assert f"allowed: {provider.format(account)}, or empty" in result.stderr
    document = {**with_parameters(ExistingOidcProviderArn=provider.format(account)), "enabled_layers": ["ci"]}
    result, out = run_generate(tmp_path, document)
    assert result.returncode == 0, result.stderr


def test_branches_that_differ_only_in_case_are_two_subjects(tmp_path):
    # git refs are case-sensitive, as the trust policy's StringLike is: Release and release are two branches
    subjects = ["ref:refs/heads/Release", "ref:refs/heads/release", "ref:refs/tags/V1", "ref:refs/tags/v1"]
    result, out = run_generate(tmp_path, with_parameters(GitHubSubjects=subjects) | {"enabled_layers": ["ci"]})
    assert result.returncode == 0, result.stderr
    assert json.loads((out / "prod" / "ci.json").read_text())["Parameters"]["GitHubSubjects"] == ",".join(subjects)


def test_an_environment_name_is_at_most_16_characters(tmp_path):
    (tmp_path / "16").mkdir(), (tmp_path / "17").mkdir()
    assert run_generate(tmp_path / "16", GOOD, name=f"{'a' * 16}.yaml")[0].returncode == 0
    result, out = run_generate(tmp_path / "17", GOOD, name=f"{'a' * 17}.yaml")
    assert result.returncode == 2 and f"the file name '{'a' * 17}' is not an environment name" in result.stderr, result.stderr
    assert not out.exists()


def test_values_at_their_bounds_are_taken(tmp_path):
    # the bounds are inclusive: as many smoke checks as allowed, and one fixed task count (MinCapacity = MaxCapacity)
    document = with_parameters(MinCapacity=3, MaxCapacity=3, DesiredCount=3) | {
        "smoke_checks": [{"path": f"/p{n}", "status": 200} for n in range(20)]
    }
    result, out = run_generate(tmp_path, document)
    assert result.returncode == 0, result.stderr
    assert len(load(tmp_path / "params" / "prod.yaml").smoke_checks) == 20


def test_each_unknown_key_gets_its_own_hint(tmp_path):
    result, _ = run_generate(tmp_path, with_parameters(DesiredCout=1, MaxCapacty=2))
    assert result.returncode == 2
    assert "parameters.DesiredCout: unknown key (did you mean DesiredCount?)" in result.stderr, result.stderr
    assert "parameters.MaxCapacty: unknown key (did you mean MaxCapacity?)" in result.stderr, result.stderr
    # the inputs listed once, on the first: each line listed all of them (a new user's walkthrough: two 1,300-character lines)
    unknown = [line for line in result.stderr.splitlines() if ": unknown key (did you mean " in line]
    assert [line.endswith(f"; allowed: {', '.join(sorted(INPUTS))}") for line in unknown] == [True, False], unknown
    assert unknown[1].endswith("; allowed: the inputs listed above"), unknown


def test_the_trust_policy_may_take_iams_quota_itself_and_no_more(tmp_path):
    from templates.inputs import GITHUB_SUB, TRUST_POLICY_MAX_CHARACTERS, TRUST_POLICY_OTHER_CHARACTERS

    repositories = ["startupwebapp/startupwebapp-deploy", "startupwebapp/startupwebapp"]

    def size(subjects):  # the policy's other characters and its sub claims as compact JSON (templates/inputs.py)
        claims = [GITHUB_SUB.format(repository=repository, subject=subject) for repository in repositories for subject in subjects]
        return TRUST_POLICY_OTHER_CHARACTERS + len(json.dumps(claims, separators=(",", ":")))

    subjects = [f"ref:refs/heads/b{n}" for n in range(5)]
    for n in itertools.count():  # each branch name grows in turn, well within 255 characters
        if size(subjects) >= TRUST_POLICY_MAX_CHARACTERS:
            break
        subjects[n % len(subjects)] += "x"
    assert size(subjects) == TRUST_POLICY_MAX_CHARACTERS
    document = with_parameters(GitHubRepository=repositories[0], GitHubCallerRepository=repositories[1], GitHubSubjects=subjects)
    result, _ = run_generate(tmp_path, document | {"enabled_layers": ["ci"]})
    assert result.returncode == 0, result.stderr
    subjects[0] += "x"  # a character in each repository's claim: the first size past the quota
    document = with_parameters(GitHubRepository=repositories[0], GitHubCallerRepository=repositories[1], GitHubSubjects=subjects)
    result, _ = run_generate(tmp_path, document | {"enabled_layers": ["ci"]})
    assert size(subjects) == TRUST_POLICY_MAX_CHARACTERS + len(repositories)
    assert result.returncode == 2 and f"would take about {size(subjects)} characters" in result.stderr, result.stderr
    # checked where the ci layer is enabled alone (README): elsewhere the subjects are a value no layer takes, warned of
    result, _ = run_generate(tmp_path, document | {"enabled_layers": without_ci(GOOD)})
    assert result.returncode == 0 and "parameters.GitHubSubjects: only the ci layer takes it" in result.stderr, result.stderr


@pytest.mark.parametrize("key", ISOLATING)
def test_sharing_is_allowed_when_either_file_says_why(tmp_path, key):
    # the reason in prod's file (read first), the other one sharing without a word of its own
    run_generate(tmp_path, GOOD | {"shared_inputs": {key: "qa replays prod traffic on prod's tasks"}})
    result, _ = run_generate(tmp_path, isolated_qa(**{key: GOOD["parameters"][key]}), name="qa.yaml")
    assert result.returncode == 0, result.stderr


def test_a_domain_that_only_ends_as_the_ci_roles_domain_is_outside_them(tmp_path):
    # x<domain> is no name under <domain>: the roles' records and certificates do not reach it
    run_generate(tmp_path, PROD_CI)
    domain = GOOD["parameters"].get("DomainName", INPUTS["DomainName"].default)
    if len(f"x{domain}") > INPUTS["DomainName"].max_length:
        pytest.skip(f"{domain} leaves no room for one more character")
    document, name, _ = staging_of_prods_ci(DomainName=f"x{domain}", ExistingHostedZoneId=OTHER_ZONE)
    result, _ = run_generate(tmp_path, document, name=name)
    assert result.returncode == 2 and f"parameters.DomainName: 'x{domain}', while the ci roles" in result.stderr, result.stderr


def test_two_environments_of_two_regions_may_not_name_one_hosted_zone_for_two_domains(tmp_path):
    # a hosted zone is global: another region changes nothing
    zone = GOOD["parameters"].get("ExistingHostedZoneId") or OTHER_ZONE
    run_generate(tmp_path, with_parameters(ExistingHostedZoneId=zone))
    document = isolated_qa(DomainName=OTHER_DOMAIN, ExistingHostedZoneId=zone) | {"region": OTHER_REGION}
    result, _ = run_generate(tmp_path, document, name="qa.yaml")
    assert result.returncode == 2 and f"parameters.ExistingHostedZoneId: both {zone}, a zone of one domain" in result.stderr, result.stderr


def test_an_oidc_provider_of_another_account_is_no_problem_where_the_ci_layer_is_not_deployed(tmp_path):
    # the value has no effect there (make templates warns of that), and no role would trust it
    account = GOOD["parameters"]["DatabaseSecretArn"].split(":")[4]
    other = next(number for number in ("999999999999", "111111111111") if number != account)
    provider = f"arn:aws:iam::{other}:oidc-provider/token.actions.githubusercontent.com"
    result, _ = run_generate(tmp_path, {**with_parameters(ExistingOidcProviderArn=provider), "enabled_layers": without_ci(GOOD)})
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    "given, suggested",
    [
        ("octo-org/app.git", "octo-org/app"),
        # "such as octo-org/app.git" (or .wiki) named a name the same check refuses on the next run: none is named
        ("octo-org/app.git.git", None),
        ("octo-org/.wiki.git", None),
        ("octo-org/app.wiki.git", None),
    ],
)
def test_the_repository_name_a_refusal_suggests_is_one_the_check_takes(tmp_path, given, suggested):
    path = tmp_path / "prod.yaml"
    path.write_text(yaml.safe_dump(with_parameters(GitHubRepository=given)))
    with pytest.raises(ParamsError) as error:
        load(path)
    said = re.search(r"such as (\S+?)(?:;|$|\n)", str(error.value))
    assert (said and said.group(1)) == suggested, str(error.value)
    if suggested:
        path.write_text(yaml.safe_dump(with_parameters(GitHubRepository=suggested)))
        load(path)  # the name suggested passes


# Mutation audit (templates/params.py): each check's exact line and its bounds, the values read from
# params/prod.yaml (GOOD) and from the module's own constants, not copied here.


def error_lines(tmp_path, document):
    """generate's error lines for one params file, without their "error: <file>: " prefix, which each
    must have; and whether it wrote nothing, as it must not when it refuses."""
    result, out = run_generate(tmp_path, document)
    prefix = f"error: {tmp_path / 'params' / 'prod.yaml'}: "
    lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert result.returncode == 2 and lines and all(line.startswith(prefix) for line in lines), result.stderr
    assert not out.exists() and "Traceback" not in result.stderr
    return [line.removeprefix(prefix) for line in lines]


def test_as_many_tags_as_the_deployer_leaves_room_for_are_taken_and_one_more_is_refused(tmp_path):
    from templates.params import RESERVED_TAGS, STACK_MAX_TAGS

    room = STACK_MAX_TAGS - len(RESERVED_TAGS)
    own = dict(GOOD.get("tags") or {})
    fill = {f"Extra{n:02d}": "x" for n in range(room - len(own))}
    (tmp_path / "full").mkdir(), (tmp_path / "over").mkdir()
    assert run_generate(tmp_path / "full", {**GOOD, "tags": own | fill})[0].returncode == 0
    over = own | fill | {"ExtraOneMore": "x"}
    assert error_lines(tmp_path / "over", {**GOOD, "tags": over}) == [
        f"tags: {room + 1} tags and the {len(RESERVED_TAGS)} the deployer sets make {STACK_MAX_TAGS + 1}; "
        f"allowed: at most {room} (CloudFormation takes {STACK_MAX_TAGS} per stack)"
    ]


def test_a_smoke_checks_path_and_status_at_their_bounds_are_taken_and_past_them_refused(tmp_path):
    from templates.params import MAX_SMOKE_PATH

    at_bounds = [{"path": "/" + "a" * (MAX_SMOKE_PATH - 1), "status": 100}, {"path": "/", "status": 599}]
    (tmp_path / "taken").mkdir(), (tmp_path / "refused").mkdir()
    assert run_generate(tmp_path / "taken", {**GOOD, "smoke_checks": at_bounds})[0].returncode == 0
    assert [check["status"] for check in load(tmp_path / "taken" / "params" / "prod.yaml").smoke_checks] == [100, 599]
    (line,) = error_lines(tmp_path / "refused", {**GOOD, "smoke_checks": [{"path": "/", "status": 99}]})
    assert line.startswith("smoke_checks, item 1: {path: /, status: 99}: its status is not an HTTP status (100 to 599); allowed: "), line


def test_a_desired_count_below_min_capacity_is_refused_naming_both_bounds(tmp_path):
    low, high = INPUTS["MinCapacity"].min_value + 1, INPUTS["MinCapacity"].min_value + 3
    assert error_lines(tmp_path, with_parameters(MinCapacity=low, MaxCapacity=high, DesiredCount=low - 1)) == [
        f"parameters.DesiredCount: {low - 1} is outside MinCapacity {low}..MaxCapacity {high}; "
        f"allowed: {low} to {high}, or MinCapacity and MaxCapacity that hold it"
    ]


def test_a_rule_between_two_values_says_which_one_the_file_leaves_at_its_default(tmp_path):
    # GunicornTimeoutSeconds raised alone named StopTimeoutSeconds and IdleTimeoutSeconds, which the file does not set,
    # as if they were its values (a MaxCapacity lowered alone, DesiredCount so); TaskMemory's said it already
    stop, idle, desired = (INPUTS[key].default for key in ("StopTimeoutSeconds", "IdleTimeoutSeconds", "DesiredCount"))
    document = with_parameters(GunicornTimeoutSeconds=max(stop, idle), MinCapacity=1, MaxCapacity=desired - 1)
    for key in ("StopTimeoutSeconds", "IdleTimeoutSeconds", "DesiredCount"):
        document["parameters"].pop(key, None)
    default = "(the default: the file does not set it)"
    lines = error_lines(tmp_path, document)
    assert [line.split(" ", 3)[:3] for line in lines] == [
        [f"parameters.{key}:", str(value), default.split(" ")[0]]
        for key, value in (("DesiredCount", desired), ("StopTimeoutSeconds", stop), ("IdleTimeoutSeconds", idle))
    ], lines
    assert all(default in line for line in lines), lines
    assert lines[1].endswith(
        f"allowed: {max(stop, idle) + 1} to {INPUTS['StopTimeoutSeconds'].max_value}, or a GunicornTimeoutSeconds below it"
    )
    document["parameters"] |= {"StopTimeoutSeconds": stop, "DesiredCount": desired}  # set, though at the default's value
    (tmp_path / "given").mkdir()
    assert not any(default in line for line in error_lines(tmp_path / "given", document)[:2])


def test_a_params_file_that_is_a_list_is_one_line_not_a_traceback(tmp_path):
    from templates.params import TOP_LEVEL_KEYS

    (line,) = error_lines(tmp_path, [GOOD])
    assert line.startswith("[{") and line.endswith(f" is not a mapping; allowed: a mapping with keys {', '.join(TOP_LEVEL_KEYS)}"), line


@pytest.mark.parametrize("text", ["", "# nothing yet\n", "null\n"])
def test_an_empty_params_file_says_so_and_what_it_holds(tmp_path, text):
    from templates.params import TOP_LEVEL_KEYS

    assert error_lines(tmp_path, text) == [f"empty (or null); allowed: a mapping with keys {', '.join(TOP_LEVEL_KEYS)}"]


def test_parameters_given_as_a_list_is_one_line_not_a_traceback(tmp_path):
    listed = [{key: value} for key, value in GOOD["parameters"].items()]
    (line,) = error_lines(tmp_path, {**GOOD, "parameters": listed})
    assert line.startswith("parameters: [{") and line.endswith(
        " is not a mapping; allowed: input names with their values (DesiredCount: 2)"
    )


def test_enabled_layers_written_as_one_name_is_refused_as_not_a_list_not_letter_by_letter(tmp_path):
    from templates.params import OPTIONAL_LAYERS

    layer = OPTIONAL_LAYERS[0]
    assert error_lines(tmp_path, {**GOOD, "enabled_layers": layer}) == [
        f"enabled_layers: {layer!r} is not a list; allowed: a list of optional layers ({', '.join(OPTIONAL_LAYERS)}), each once"
    ]


# prod's region with its last hyphen left out (us-east-1 -> us-east1), whatever params/prod.yaml says
MISTYPED_REGION = "".join(GOOD["region"].rsplit("-", 1))


@pytest.mark.parametrize("region", [None, MISTYPED_REGION], ids=["missing", "mistyped"])
def test_a_region_refused_names_every_supported_region(tmp_path, region):
    from templates import alb

    document = {key: value for key, value in GOOD.items() if key != "region"} | ({"region": region} if region else {})
    (line,) = error_lines(tmp_path, document)
    said = "missing" if region is None else f"{region!r} is not supported (did you mean {GOOD['region']}?)"
    assert line == f"region: {said}; allowed: {', '.join(sorted(alb.REGIONS))}", line


@pytest.mark.parametrize("word", ["yes", "no", "on", "off"])
def test_each_yaml_1_1_boolean_word_is_said_to_be_text(tmp_path, word):
    assert error_lines(tmp_path, with_parameters(DeletionProtection=word)) == [
        f"parameters.DeletionProtection: {word!r} is not allowed; allowed: true or false (yes, no, on and off are text to YAML 1.2)"
    ]


def test_a_number_of_as_many_digits_as_allowed_is_read_and_one_more_is_refused():
    from templates.params import MAX_NUMBER_DIGITS, parse_yaml

    assert parse_yaml(f"a: {'9' * MAX_NUMBER_DIGITS}") == {"a": int("9" * MAX_NUMBER_DIGITS)}
    with pytest.raises(yaml.YAMLError, match=f"a number of {MAX_NUMBER_DIGITS + 1} characters; allowed: up to {MAX_NUMBER_DIGITS}"):
        parse_yaml(f"a: {'9' * (MAX_NUMBER_DIGITS + 1)}")


def test_a_number_written_in_octal_or_hex_as_yaml_1_2_writes_it_is_that_number(tmp_path):
    # YAML 1.2's core schema (ParamsLoader) takes 0o<octal digits> and 0x<hex digits> for a whole number: 0o2 is 2
    desired = int(GOOD["parameters"].get("DesiredCount", INPUTS["DesiredCount"].default))
    path = tmp_path / "prod.yaml"
    for written in (oct(desired), hex(desired)):
        path.write_text(typed(f"DesiredCount: {written}"))
        assert load(path).values["DesiredCount"] == str(desired), written


def test_a_linear_release_whose_step_divides_100_bakes_after_every_step_but_the_last(tmp_path):
    # LinearStepPercent 10: ten shifts, the last (to 100 %) without a step bake, so 9 step bakes. Waits that
    # add up to the bound are taken; a minute more is refused, the steps counted as 9 in its words.
    from templates.common import CI_DEPLOY_JOB_MINUTES

    step_bake = MOST_RELEASE_WAIT_MINUTES // 9
    waits = dict(
        DeploymentStrategy="LINEAR",
        TestListenerCidr="203.0.113.0/24",
        LinearStepPercent=10,
        LinearStepBakeTimeMinutes=step_bake,
        TestPauseMinutes=0,
        RollbackMonitoringMinutes=0,
    )
    bake = MOST_RELEASE_WAIT_MINUTES - 9 * step_bake
    (tmp_path / "bound").mkdir(), (tmp_path / "past").mkdir()
    assert run_generate(tmp_path / "bound", with_parameters(**waits, BakeTimeMinutes=bake))[0].returncode == 0
    assert error_lines(tmp_path / "past", with_parameters(**waits, BakeTimeMinutes=bake + 1)) == [
        f"parameters.LinearStepBakeTimeMinutes: with LINEAR a release waits up to {MOST_RELEASE_WAIT_MINUTES + 1} minutes "
        f"({9 * step_bake} LinearStepBakeTimeMinutes ({step_bake} x 9 steps of LinearStepPercent 10), {bake + 1} BakeTimeMinutes, "
        f"0 TestPauseMinutes, 0 RollbackMonitoringMinutes); allowed: waits that add up to at most {MOST_RELEASE_WAIT_MINUTES} minutes "
        f"(what the GitHub Actions deploy job's {CI_DEPLOY_JOB_MINUTES} minutes leave after its steps, the migrations and the "
        "deployer's own bounds)"
    ]


# make status and the other commands that read what is deployed, with a params file YAML cannot read: its region as a
# person reads it (templates/params.py region_as_written; README, Faults: a params file with a problem while an edit is
# half done). The cases are those the reviews of its earlier versions found, each a file load() refuses.
REST_OF_A_FILE = "".join(f"  Key{i}: {i}\n" for i in range(10))
LINES_AFTER = "parameters:\n\tDesiredCount: 1\n"  # a tab: the line YAML cannot read


def other_region():
    from templates import alb

    return sorted(alb.REGIONS - {GOOD["region"]})[0]


def written(tmp_path, text):
    """A params file of text ({region}: params/prod.yaml's, {other}: another), which load() refuses."""
    path = tmp_path / "qa.yaml"
    path.write_text(text.format(region=GOOD["region"], other=other_region()), newline="")
    with pytest.raises(ParamsError):
        load(path)
    return path


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("region: '{region}'  # quoted, and a comment\n" + LINES_AFTER, id="quoted, a comment after it"),
        pytest.param("\ufeffregion: {region}\n" + LINES_AFTER, id="after a byte order mark"),
        pytest.param("region: {region}\n\tenabled_layers: [waf]\n", id="a line after it indented with a tab"),
        pytest.param("region: {region}\n\t\nparameters:\n  DesiredCount: 1\n", id="a stray tab on the next line"),
        pytest.param('# a "quote, [ and {{ in a comment\nregion: {region}\n' + LINES_AFTER, id="quotes and brackets in a comment"),
        pytest.param("---\n\n  # note\nregion: {region}\n" + LINES_AFTER, id="below a document's start, a blank line and a comment"),
        pytest.param("region: {region}\nparameters:\n  AlertEmails: [\n", id="an unclosed list on the last line"),
        pytest.param("region: {region}\nparameters:\n  AlertEmails: [ops@example.com,\n", id="an unclosed list ending in a comma"),
        pytest.param("region: {region}\nparameters:\n  DesiredCount: 1\n MaxCapacity: 3\n", id="a key indented one space too little"),
        pytest.param('region: {region}\nparameters:\n  Note: "unclosed\n' + REST_OF_A_FILE, id="an unclosed double quote"),
        pytest.param("region: {region}\nparameters:\n  Note: 'unclosed\n" + REST_OF_A_FILE, id="an unclosed single quote"),
        pytest.param(
            "region: {region}\nparameters:\n  AlertEmails: [a@example.com,\n" + "".join(f"    b{i}@example.com,\n" for i in range(12)),
            id="an unclosed list, one item a line",
        ),
    ],
)
def test_a_params_file_yaml_cannot_read_is_read_for_its_region_as_written(tmp_path, text):
    from templates.params import load_for_reading

    assert load_for_reading(written(tmp_path, text)).region == GOOD["region"]


SECOND_REGION_KEYS = [
    "region: {other}\n",
    "? region\n: {other}\n",
    "!!str region: {other}\n",
    "&moved region: {other}\n",
    "? region # moved\n: {other}\n",
    "?\n  region\n: {other}\n",
    "? |-\n  region\n: {other}\n",
    '"regio\\u006e": {other}\n',
    '!!str "regio\\u006e": {other}\n',
    '? "regi\\\n  on"\n: {other}\n',
]


@pytest.mark.parametrize(
    "text",
    [
        # a second region: a move to another region half done
        *(pytest.param("region: {region}\nparameters: {{}}\n" + key, id=f"a second key: {key!r}") for key in SECOND_REGION_KEYS),
        pytest.param("region: {region}\nregion: {region}\nparameters: [\n", id="given twice"),
        pytest.param("region: {region}\n" + LINES_AFTER + "region: {other}\n", id="given again below the error"),
        pytest.param("\ufeffregion: {region}\nparameters: {{}}\nregion: {other}\n", id="given again, after a byte order mark"),
        pytest.param("region: {region}\nparameters: {{}}\nNote: a\u2028b\nregion: {other}\n", id="again below a hidden line break"),
        pytest.param("region: {region}\n---\nregion: {other}\nparameters: [\n", id="again in a second document"),
        pytest.param("r\u0435gion: {other}\nregion: {region}\n" + LINES_AFTER, id="again with a Cyrillic e"),
        pytest.param("re\u200bgion: {other}\nregion: {region}\n" + LINES_AFTER, id="again with a zero-width space"),
        pytest.param("regi\u00adon: {other}\nregion: {region}\n" + LINES_AFTER, id="again with a soft hyphen"),
        # the word written elsewhere: the file is left unread rather than guessed at
        pytest.param("region: {region}\ntags:\n  region: team\n" + LINES_AFTER, id="a tag named region"),
        pytest.param("# the region\nregion: {region}\n" + LINES_AFTER, id="a comment that says region"),
        pytest.param("# Region: {other} (moving)\nregion: {region}\n" + LINES_AFTER, id="a comment that says Region"),
        pytest.param("region: {region}\nRegion: {other}\n" + LINES_AFTER, id="a key Region"),
        pytest.param("parameters:\n  region: {region}\n  x: [\n", id="only below the top level"),
        pytest.param("owner: region\n{region}: x\nparameters: [\n", id="a value, not a key"),
        # not the line `region: <value>`
        pytest.param("- region: {region}\n- [\n", id="in a list"),
        pytest.param("  region: {region}\n  parameters: [\n", id="indented"),
        pytest.param("region: *anchor\nparameters: [\n", id="an alias"),
        pytest.param("region: !!str {region}\n" + LINES_AFTER, id="tagged"),
        pytest.param("region: {region}: x\nparameters: {{}}\n", id="more after the value"),
        pytest.param("region: '{region}' x\nparameters: {{}}\n", id="more after the quotes"),
        pytest.param("region: {region}#{other}\n" + LINES_AFTER, id="a # after no space, part of the value"),
        pytest.param("region: {region}#{other}\nparameters:\n  DesiredCount: 1\n", id="a # after no space, the file YAML reads"),
        # a hidden line break or a control character: a terminal, git diff and YAML see other lines
        pytest.param("region: {region}\rregion: {other}\nparameters: {{}}\n", id="a lone carriage return"),
        pytest.param("region: {region}\rtags: {{}}\n" + LINES_AFTER, id="a lone carriage return before a key"),
        pytest.param("region: {region}\u2028-x\nparameters: {{}}\n", id="a line separator after the value"),
        pytest.param("region: {region}  # c\u2028tags: {{}}\n" + LINES_AFTER, id="a line separator in the comment"),
        pytest.param("# a note\u2028region: {region}\nparameters: [\n", id="after a line separator"),
        pytest.param("region: {region}\nparameters:\n  Note: \x07\n", id="a control character elsewhere"),
        pytest.param('region: {region}\nparameters:\n  DesiredCount: 1\n"\\UFFFFFFFF": 1\n', id="an escape that is no character"),
        # YAML reads the next line as more of the value
        pytest.param("region: {region}\n  foo: bar\n", id="an indented line after it"),
        pytest.param("region: {region}\n  {other}: [\n", id="an indented line naming another region"),
        # a comment line between: the indented line is no less there (the rule looked at the comment as the next line)
        pytest.param("region: {region}\n# moving to\n  {other}: [\n", id="an indented line naming another region, below a comment"),
        pytest.param("region:\n  {region}\n  foo: bar\n", id="the value on a line of its own"),
        pytest.param("? region\n: {region}\n  foo: bar\n", id="an explicit key's value"),
        # below another key: the line may be part of its value (a quote or bracket YAML opened, as each of these does),
        # or the same key's again, and a line above needs YAML to tell which
        *(
            pytest.param(above + "region: {region}\n" + LINES_AFTER, id=f"below {above!r}")
            for above in ("parameters:\n\tDesiredCount: 1\n", 'tags:\n  Team: "web #2"\n', "parameters: {{}}\n---\n", "tags: &t {{}}\n")
        ),
        pytest.param('description: "moving to\nregion: {other}\n"\n' + LINES_AFTER, id="in a double-quoted value"),
        pytest.param("description: 'moving to\nregion: {other}\n'\n" + LINES_AFTER, id="in a single-quoted value"),
        pytest.param("tags: {{note: a,\nregion: {other}\n}}\n" + LINES_AFTER, id="in a flow mapping"),
        pytest.param('name: "qa #2"\ndescription: "moving to\nregion: {other}\n"\n' + LINES_AFTER, id="in quotes, a # quoted above"),
        pytest.param("separator: ']'\ntags: [a,\nregion: {other}\n]\n" + LINES_AFTER, id="in a flow list, a ] quoted above"),
        pytest.param('quote: \'"\'\ndescription: "moving to\nregion: {other}\n"\n' + LINES_AFTER, id="in quotes, a quote quoted above"),
        pytest.param('description: !!str "moving to\nregion: {other}\n"\n' + LINES_AFTER, id="in quotes after a tag"),
        pytest.param(
            "note: a - 'b\ndescription: 'moving to\nregion: {other}\n'\n" + LINES_AFTER, id="in quotes, a quote in a plain value above"
        ),
        pytest.param(
            "note: |\n  'tis\ndescription: 'moving to\nregion: {other}\n'\n" + LINES_AFTER, id="in quotes, a quote in a block above"
        ),
    ],
)
def test_a_params_file_yaml_cannot_read_is_not_read_for_a_region_it_does_not_show_once_as_written(tmp_path, text):
    from templates.params import load_for_reading, region_as_written

    path = written(tmp_path, text)
    assert region_as_written(path) is None
    with pytest.raises(ParamsError):
        load_for_reading(path)


def test_a_deeply_nested_file_yaml_cannot_read_is_answered_at_once(tmp_path):
    # load() refuses it at the 11th level (ParamsLoader.compose_node); an earlier region read parsed it without that
    # bound, and 16,000 brackets took some 35 s (a file of the 1 MiB allowed, hours): a read must not parse it again
    path = tmp_path / "qa.yaml"
    head = f"region: {GOOD['region']}\nparameters: "
    path.write_text(head + "[" * (MOST_PARAMS_FILE_BYTES - len(head) - 1) + "\n")
    read = "from templates.params import ParamsError, load_for_reading\ntry:\n    load_for_reading(__import__('pathlib').Path(__import__('sys').argv[1]))\nexcept ParamsError:\n    pass\n"
    try:  # in a process of its own, ended at the bound (load() alone answers in well under a second)
        done = subprocess.run([sys.executable, "-c", read, str(path)], cwd=ROOT, capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired:
        pytest.fail("load_for_reading of a 1 MiB file nested deep still ran after 20 s")
    assert done.returncode == 0, done.stderr[-2000:]


def test_a_file_of_comments_yaml_cannot_read_is_read_for_its_region(tmp_path):
    # comments above the region line, as many as the 1 MiB a params file may hold: an earlier rule looked for the end of
    # each in the whole rest of the text, and took 7 s (conftest's time limit ends a test that hangs)
    from templates.params import region_as_written

    last = f"region: {GOOD['region']}\n\tx\n"
    path = written(tmp_path, "#\n" * ((MOST_PARAMS_FILE_BYTES - len(last)) // 2) + last)
    assert region_as_written(path) == GOOD["region"]


def shown_on_a_terminal(line):
    """What `cat` shows of one line on a terminal: a backspace moves back one column, ESC [ n G to column n,
    ESC [ K clears to the line's end; anything else is written where the cursor is."""
    screen, column, i = [], 0, 0
    while i < len(line):
        csi = re.match(r"\x1b\[(\d*)([GK])", line[i:])
        if csi:
            if csi.group(2) == "G":
                column = int(csi.group(1) or 1) - 1
            else:
                del screen[column:]
            i += csi.end()
            continue
        if line[i] == "\b":
            column = max(column - 1, 0)
        else:
            screen[column : column + 1] = [line[i]] if column < len(screen) else [" "] * (column - len(screen)) + [line[i]]
            column += 1
        i += 1
    return "".join(screen).rstrip()


@pytest.mark.parametrize(
    "comment",
    [
        pytest.param(lambda width, other: "#" + "\b" * (width + 2) + other.ljust(width + 2), id="backspaces"),
        pytest.param(lambda width, other: f"#\x1b[9G{other}\x1b[K", id="an escape sequence moving the cursor back"),
    ],
)
def test_a_region_line_whose_comment_redraws_another_region_is_no_region_to_read_with(tmp_path, comment):
    # control characters, which YAML's reader refuses and a terminal obeys: `cat` shows `region: <other region>`
    from templates.params import load_for_reading, region_as_written

    other = other_region()
    line = f"region: {GOOD['region']} " + comment(len(GOOD["region"]), other)
    assert shown_on_a_terminal(line) == f"region: {other}", repr(shown_on_a_terminal(line))
    path = written(tmp_path, line + "\nparameters:\n  DesiredCount: 1\n")
    assert region_as_written(path) is None
    with pytest.raises(ParamsError):
        load_for_reading(path)


def console_takes(parameter: dict, value: str) -> bool:
    """Whether CloudFormation takes `value` for a template parameter, as it checks one in the console (the template's
    own constraints, nothing of templates/params.py): a Number is "an integer or float" within MinValue and MaxValue
    (https://aws.amazon.com/blogs/devops/using-the-new-cloudformation-parameter-types/, parameters-section-structure.html);
    a CommaDelimitedList's AllowedPattern is matched against each item; AllowedValues and MaxLength as written."""
    if "AllowedValues" in parameter and value not in parameter["AllowedValues"]:
        return False
    if parameter["Type"] == "Number":
        try:
            number = float(value)
        except ValueError:
            return False
        return float(parameter.get("MinValue", number)) <= number <= float(parameter.get("MaxValue", number))
    if len(value) > parameter.get("MaxLength", len(value)):
        return False
    items = value.split(",") if parameter["Type"] == "CommaDelimitedList" else [value]
    return all(re.fullmatch(parameter.get("AllowedPattern", ".*"), item) for item in items)


@pytest.mark.parametrize(
    "layer, name, item",
    [("release-alarms", "AlertEmails", "ops{}@example.com"), ("ci", "GitHubSubjects", "environment:env{}")],
)
def test_the_console_refuses_a_list_longer_than_the_template_has_slots_for(layer, name, item):
    # make templates refuses a 4th AlertEmails address and a 6th GitHubSubjects item; the console took them (each
    # item matches the AllowedPattern, and nothing counts the items), and the template reads the first items into
    # its slots only (templates/release_alarms.py add_alert_topic, templates/ci.py padded_subjects): the 4th address
    # got no subscription, no word said. ConstraintDescription promises "a list of 0 to 3 items".
    parameter = json.loads((ROOT / "output" / f"{layer}.json").read_text())["Parameters"][name]
    most = INPUTS[name].items[1]
    value = ",".join(item.format(n) for n in range(most + 1))
    assert check_value(INPUTS[name], value) is not None  # make templates refuses it
    assert console_takes(parameter, value.rsplit(",", 1)[0])  # as many as it has slots for: taken
    assert not console_takes(parameter, value), f"the console takes {most + 1} {name} items: {value}"


def single_values_only_make_templates_refuses() -> list[tuple[str, str, str]]:
    """(layer, input, a value of GOOD's changed so that make templates refuses it and the template's pattern takes it)."""
    secret = GOOD["parameters"].get("DatabaseSecretArn", INPUTS["DatabaseSecretArn"].default)
    repository = GOOD["parameters"].get("GitHubRepository", INPUTS["GitHubRepository"].default)
    return [
        ("alb", "TestListenerCidr", "203.0.113.7/24"),  # host bits set
        ("service", "DatabaseSecretArn", re.sub(r"^(arn:aws:secretsmanager:)[^:]+", r"\1us-esat-1", secret)),
        ("ci", "GitHubRepository", f"{repository}.git"),
    ]


@pytest.mark.parametrize("layer, name, value", single_values_only_make_templates_refuses())
def test_the_single_values_readme_says_only_make_templates_refuses(tmp_path, layer, name, value):
    # README (Parameters) says the console refuses what make templates refuses, but for the checks it lists: these
    # three single values are among them. A template pattern made to refuse one moves it off that list.
    result, _ = run_generate(tmp_path, with_parameters(**{name: value}))
    assert result.returncode == 2 and f"parameters.{name}: " in result.stderr, result.stderr
    parameter = json.loads((ROOT / "output" / f"{layer}.json").read_text())["Parameters"][name]
    assert console_takes(parameter, value), f"the console refuses {name} {value} now: README lists it as make templates' alone"
    listed = (ROOT / "README.md").read_text().split("So are three single values", 1)[1].split("\n\n", 1)[0]
    assert f"`{name}`" in listed, listed


def numbers_in_the_container_command() -> list[str]:
    """The Number inputs the service template writes into the web container's command with Fn::Sub: text to ECS,
    which checks nothing of it; gunicorn reads --workers and --timeout with int(value, 0)."""
    template = json.loads((ROOT / "output" / "service.json").read_text())
    (web,) = [c for c in template["Resources"]["TaskDefinition"]["Properties"]["ContainerDefinitions"] if c["Name"] == "web"]
    subs = [part["Fn::Sub"] for part in web["Command"] if isinstance(part, dict) and "Fn::Sub" in part]
    names = sorted({name for sub in subs for name in re.findall(r"\$\{(\w+)\}", sub)})
    return [name for name in names if INPUTS[name].type == "Number"]


@pytest.mark.parametrize("name", numbers_in_the_container_command())
def test_the_console_refuses_a_fraction_the_container_command_would_get(name):
    # GunicornWorkers: 2.5 is refused by make templates ("a whole number from 1 to 33"); in the console the Number
    # parameter took it (MinValue 1, MaxValue 33 hold), ECS took "--workers 2.5" as the text it is, and every task
    # would exit at gunicorn's int("2.5", 0): a release the circuit breaker rolls back, or a first create that fails.
    parameter = json.loads((ROOT / "output" / "service.json").read_text())["Parameters"][name]
    spec = INPUTS[name]
    fraction = f"{spec.min_value}.5"
    assert check_value(spec, float(fraction)) is not None  # make templates refuses it
    assert not console_takes(parameter, fraction), f"the console takes {name} {fraction}"
    # the bounds are make templates' own, in the console too
    for number in (spec.min_value - 1, spec.min_value, spec.default, spec.max_value, spec.max_value + 1):
        assert console_takes(parameter, str(number)) == (check_value(spec, number) is None), (name, number)


def test_a_file_that_cannot_be_opened_for_another_reason_keeps_its_own(tmp_path):
    # (review R1) only ENXIO (a socket) is "not a regular file": a symlink loop followed stays the OSError it is
    from templates.errors import RefusedFile, open_regular_file

    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    with pytest.raises(OSError) as raised:
        open_regular_file(loop)
    assert not isinstance(raised.value, RefusedFile), raised.value


def built_parameter(layer, name) -> dict:
    """The template parameter `name` as the layers declare it now (built, not output/'s committed copy)."""
    return next(t["Parameters"][name] for t in layer.values() if name in t.get("Parameters", {}))


# The limits outside this project that templates/inputs.py cites, as the last value each takes and the first it
# refuses: a bound moved there moves make templates' check and the template's constraint alike, which no test that
# reads the bound back from the declaration notices. (a release that then fails on AWS, or an alarm that never fires)
OUTSIDE_LIMITS = [
    ("WafRateLimit", 100, 99),  # the rate-based rule's minimum in the regions that kept 100
    ("StopTimeoutSeconds", 120, 121),  # ECS's stopTimeout on Fargate
    ("TestPauseMinutes", 20160, 20161),  # a lifecycle hook's timeoutInMinutes
    ("HealthCheckIntervalSeconds", 6, 5),  # above the target groups' 5 s health-check timeout
    ("HealthyThresholdCount", 2, 1),  # ELB's HealthyThresholdCount, 2 to 10
    ("HealthyThresholdCount", 10, 11),
    ("ContainerPort", 1024, 1023),  # the container runs as non-root: no privileged port
    ("SaturationPercent", 99, 100),  # a task's usage never passes 100: an alarm above 100 never fires
    ("AlarmPeriodSeconds", 60, 10),  # the load balancer's metrics come once a minute
    ("LogRetentionDays", 3653, 3650),  # PutRetentionPolicy's values
    ("LogRetentionDays", 1, 2),
    ("ApiHostLabel", "a" * 63, "a" * 64),  # a DNS label
    ("NamePrefix", f"{PROJECT}-abcdefgh", f"{PROJECT}-abcdefghi"),
    ("ImageTag", "a" * 128, "a" * 129),  # a Docker tag
    ("ImageTag", "_a", ".a"),
    ("TestListenerCidr", "203.0.113.0/24", "256.0.0.0/8"),
    ("ContainerUser", "1:1", "0:0"),  # non-root
    ("ContainerUser", "4294967294", "4294967295"),  # (uid_t)-1 is no id
    ("DatabaseName", "a" * 63, "a" * 64),  # PostgreSQL's identifiers
    ("DomainName", "example.io", "example.x"),
    ("DomainName", "a" * 58 + ".com", "a" * 59 + ".com"),  # *.<domain> within the certificate's 64 characters
    ("HealthCheckPath", "/" + "a" * 1023, "/" + "a" * 1024),  # CreateTargetGroup's HealthCheckPath
    ("HealthCheckPath", "/a-b", "/a b"),
    (
        "AlertEmails",
        ["a@example.com", "b@example.com", "c@example.com"],
        ["a@example.com", "b@example.com", "c@example.com", "d@example.com"],
    ),
    ("GitHubSubjects", ["ref:refs/heads/main"], []),  # no subject: the role trusts no one
    ("GitHubSubjects", ["ref:refs/tags/v1"], ["ref:refs/pull/1/merge"]),  # never a pull request's ref
    (
        "DatabaseSecretArn",
        f"arn:aws:secretsmanager:us-east-1:123456789012:secret:{PROJECT}/db-AbCdEf",
        f"arn:aws:secretsmanager:us-east-1:123456789012:secret:{PROJECT}/db-AbCdE",
    ),
    ("VpcId", "vpc-0123456789abcdef0", "vpc-0123456789abcdef"),
]


@pytest.mark.parametrize("name, taken, refused", OUTSIDE_LIMITS, ids=[f"{n} {t!r:.20} {r!r:.20}" for n, t, r in OUTSIDE_LIMITS])
def test_each_outside_limit_is_taken_and_one_past_it_refused_by_make_templates_and_the_console(layer, name, taken, refused):
    spec = INPUTS[name]
    assert check_value(spec, taken) is None, (name, taken)
    assert check_value(spec, refused) is not None, (name, refused)
    if spec.type.startswith(("AWS::", "List<")):  # AWS checks its own types' values in the console
        return
    parameter = built_parameter(layer, name)
    as_typed = ",".join if spec.is_list else str
    assert console_takes(parameter, as_typed(taken)), (name, taken)
    assert not console_takes(parameter, as_typed(refused)), (name, refused)


def one_error(tmp_path, text) -> str:
    """generate's one error line for a params file of text, which it refuses writing nothing."""
    result, out = run_generate(tmp_path, text)
    problems = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert result.returncode == 2 and len(problems) == 1 and not out.exists(), result.stderr
    return problems[0]


# helper G1 (params fuzzing): a list item indented less than the one before it (a smoke check added by hand) stopped
# generation with PyYAML's own words alone, "expected <block end>, but found '<block sequence start>'", saying neither
# what is wrong nor what is allowed, where the same slip among a mapping's keys gets its indentation hint.
@pytest.mark.parametrize(
    "lines",
    [
        ["smoke_checks:", "  - {path: /a, status: 200}", " - {path: /b, status: 200}"],
        ["enabled_layers:", "    - waf", "  - ci"],
    ],
    ids=["a smoke check", "a layer"],
)
def test_a_list_item_indented_less_than_the_one_before_says_what_is_allowed(tmp_path, lines):
    text = f"region: {GOOD['region']}\n" + "\n".join(lines) + "\n" + yaml.safe_dump({"parameters": GOOD["parameters"]})
    problem = one_error(tmp_path, text)
    assert "line 4:" in problem and "allowed" in problem, problem


# helper G1 (params fuzzing): !!map or !!set on a plain value was said without its line (and with a Python exception's
# name): ParamsLoader.construct_mapping read node.value as a mapping's pairs before anything checked that the node is
# a mapping, past construct_object's per-node check, where a !!seq or !!omap on a plain value is said at its line; and
# (helper H1) on a key, which is built and hashed before any mapping's pairs are.
@pytest.mark.parametrize("added", ["x: !!map abc", "x: !!set abc", "? !!map abc\n: 1", "? !!set abc\n: 1"])
def test_a_collection_tag_on_a_plain_value_or_key_is_said_at_its_line(tmp_path, added):
    text = yaml.safe_dump(GOOD, sort_keys=False)
    problem = one_error(tmp_path, text + added + "\n")
    assert f"line {len(text.splitlines()) + 1}:" in problem and "Error)" not in problem, problem


# helper G1 (params fuzzing): a double quote left open (DatabaseName: "startupwebapp_prod) was said at the file's last
# line, "found unexpected end of stream", with nothing of where the quote opened, though PyYAML's error holds that line
# ("while scanning a quoted scalar", its context mark): in a file of some 30 lines the one to fix went unnamed.
def test_a_quote_left_open_is_said_at_the_line_it_opens(tmp_path):
    lines = yaml.safe_dump(GOOD, sort_keys=False).splitlines()
    at = next(number for number, line in enumerate(lines) if line.strip().startswith("DatabaseName:"))
    lines[at] = lines[at].split(":")[0] + ': "startupwebapp_prod'
    assert at + 5 < len(lines)  # lines follow it: the end of the file is another line
    problem = one_error(tmp_path, "\n".join(lines) + "\n")
    assert re.search(rf"\bline {at + 1}\b", problem), problem


# helper H1: unaligned_item reads lines, not PyYAML's tokens: a "- " inside a block scalar above the slip was named as
# the list's item (block_keys exists for exactly this: "none inside a flow collection, a quoted ... scalar").
def test_a_list_item_indented_less_is_compared_with_the_lists_item_not_a_dash_inside_a_block_scalar(tmp_path):
    lines = [
        f"region: {GOOD['region']}",
        "smoke_checks:",
        "    - path: /a",
        "      status: 200",
        "      why: |",
        "          - a dash in text",
        "  - {path: /b, status: 200}",
    ]
    problem = one_error(tmp_path, "\n".join(lines) + "\n" + yaml.safe_dump({"parameters": GOOD["parameters"]}))
    assert "line 7:" in problem and "line 3's 4" in problem and "line 6" not in problem, problem


# helper H1: the longest watch a refused one was offered was CloudFormation's 180 minutes alone, though a
# traffic-shifting release's waits take from the same MOST_RELEASE_WAIT_MINUTES: the value offered was then refused.
@pytest.mark.parametrize("left", [55, -1], ids=["a shorter range", "none left"])
def test_a_refused_rollback_watch_is_offered_only_watches_the_release_waits_leave(tmp_path, left):
    period = INPUTS["AlarmPeriodSeconds"].allowed[-1]
    periods = 18  # 300 s periods: 90 minutes before a release alarm fires
    alarm_minutes = -(-int(period) * periods // 60)
    bake = MOST_RELEASE_WAIT_MINUTES - alarm_minutes - left  # what the release's own waits leave the watch: alarm + left
    document = with_parameters(
        DeploymentStrategy="BLUE_GREEN",
        TestListenerCidr="203.0.113.0/24",
        AlarmPeriodSeconds=period,
        BadPeriodsToAlarm=periods,
        RollbackMonitoringMinutes=1,
        BakeTimeMinutes=bake,
        TestPauseMinutes=0,
    )
    (line,) = error_lines(tmp_path, document)
    longest = alarm_minutes + left
    offered = f"{alarm_minutes} to {longest}, 0 (watched" if left > 0 else "allowed: 0 (watched"
    assert line.startswith("parameters.RollbackMonitoringMinutes: 1 ends before") and offered in line, line
    if left > 0:  # the longest offered is taken, one more refused by the release waits' bound
        for watch, taken in ((longest, True), (longest + 1, False)):
            path = tmp_path / f"w{watch}" / "prod.yaml"
            path.parent.mkdir()
            path.write_text(yaml.safe_dump({**document, "parameters": {**document["parameters"], "RollbackMonitoringMinutes": watch}}))
            if taken:
                assert int(load(path).values["RollbackMonitoringMinutes"]) == watch
            else:
                with pytest.raises(ParamsError, match="a release waits up to"):
                    load(path)


def test_a_lower_gunicorn_timeout_is_offered_only_where_the_input_takes_one(tmp_path):
    # helper H1: "or a GunicornTimeoutSeconds below it" for a StopTimeoutSeconds or IdleTimeoutSeconds at or below
    # GunicornTimeoutSeconds' own minimum, where no value below it is allowed
    lowest = INPUTS["GunicornTimeoutSeconds"].min_value
    lines = error_lines(
        tmp_path, with_parameters(GunicornTimeoutSeconds=lowest + 1, StopTimeoutSeconds=lowest, IdleTimeoutSeconds=lowest + 1)
    )
    assert [line.split(":")[0] for line in lines] == ["parameters.StopTimeoutSeconds", "parameters.IdleTimeoutSeconds"], lines
    assert not lines[0].endswith("below it") and lines[1].endswith(", or a GunicornTimeoutSeconds below it"), lines
