"""Every input a layer takes, declared once: CloudFormation type, production default,
description and what is allowed. Layers add them to their templates with `add()`; the
params-file checks in `templates/params.py` read the same declarations, so the console,
CloudFormation and `make templates` all enforce one rule for each value (Input.declared_type).
What relates two values or a list's items only `make templates` checks: StopTimeoutSeconds above
GunicornTimeoutSeconds (the functions of CloudFormation's template rules test equality and membership,
not order: https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/intrinsic-function-reference-rules.html),
TaskMemory for TaskCpu (one rule per CPU size could; none is written yet), items all different."""

from dataclasses import dataclass

from troposphere import Parameter, Template

from templates.common import MOST_MONITORING_MINUTES, MOST_RELEASE_WAIT_MINUTES, PROJECT

# EC2 ids: 8 hexadecimal characters after the hyphen (before 2016) or 17, never another length.
# https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/resource-ids.html
EC2_ID_HEX = r"([0-9a-f]{8}|[0-9a-f]{17})"
SUBNET_ID = rf"subnet-{EC2_ID_HEX}"
SECURITY_GROUP_ID = rf"sg-{EC2_ID_HEX}"
VPC_ID = rf"vpc-{EC2_ID_HEX}"
DOMAIN_NAME = r"([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}"
HOST_LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
# At most 8 after the project's name: the alternate target group's name, NamePrefix-tg-alt, is then 29 characters of
# ELBv2's 32 (tests/test_layers.py checks every name built from the longest NamePrefix against AWS's limit).
NAME_PREFIX = rf"{PROJECT}(-[a-z0-9]{{1,8}})?"
HOSTED_ZONE_ID = r"Z[0-9A-Z]{1,31}"
# Example values, in hints and defaults; the review flags any an environment keeps (scripts/review/render.py).
EXAMPLE_HOSTED_ZONE_ID = "Z0123456789ABCDEFGHIJ"
# AWS's documentation example account: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_identifiers.html
EXAMPLE_ACCOUNT = "123456789012"
# The example VPC, subnet and security-group ids: these hex digits, then four more.
EXAMPLE_ID_HEX = "0a1b2c3d4e5f6"
EXAMPLE_RESOURCE_ID = rf"(vpc|subnet|sg)-{EXAMPLE_ID_HEX}[0-9a-f]{{4}}"
DOCUMENTATION_NETWORKS = ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")  # reserved for documentation: RFC 5737
# The service's roles carry the permissions boundary (templates/ci.py boundary_statements), which lets
# them pull only repository/<project>* and read only secret:<project>*: a repository or secret of
# another name would pass every check here and fail each task's start on AWS. "An entity's permissions
# boundary allows it to perform only the actions that are allowed by both its identity-based policies
# and its permissions boundaries." https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies_boundaries.html
# The partition is aws: every region params/ may name is in it (templates/alb.py REGIONS).
# A secret's name is at most 512 characters (botocore's secretsmanager model, CreateSecret Name: NameType, max
# 512); its ARN ends in the name, a hyphen and six random characters.
# https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_CreateSecret.html
MOST_SECRET_NAME = 512
SECRET_ARN = rf"arn:aws:secretsmanager:[a-z0-9-]+:[0-9]{{12}}:secret:{PROJECT}[A-Za-z0-9/_+=.@-]{{0,{MOST_SECRET_NAME - len(PROJECT)}}}-[A-Za-z0-9]{{6}}"
ECR_REPOSITORY_NAME = rf"{PROJECT}[a-z0-9]*([._/-][a-z0-9]+)*"  # an ECR name, [a-z0-9]+([._/-][a-z0-9]+)*, of the project
MOST_IMAGE_TAG = 128  # a Docker tag's most: https://docs.docker.com/engine/reference/commandline/image_tag/
IMAGE_TAG = rf"[A-Za-z0-9_][A-Za-z0-9_.-]{{0,{MOST_IMAGE_TAG - 1}}}"
# The service runs <account>.dkr.ecr.<region>.amazonaws.com/<EcrRepositoryName>:<tag> (templates/service.py),
# and ECS takes an image by tag of "up to 255 characters total" (ContainerDefinition's image):
# https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ContainerDefinition.html
# ECR's own 256 would let make templates pass a name whose service then fails at its task definition. The
# name's most leaves room for a tag as long as IMAGE_TAG takes (ImageTag, and TAG= at each deploy) in the
# region of longest name params/ may name (templates/alb.py REGIONS; tests/test_params.py checks it is).
MOST_IMAGE = 255
LONGEST_REGION_NAME = len("ap-southeast-5")
MOST_ECR_REPOSITORY_NAME = MOST_IMAGE - len(f"{EXAMPLE_ACCOUNT}.dkr.ecr.{'r' * LONGEST_REGION_NAME}.amazonaws.com/:") - MOST_IMAGE_TAG
# Linux ids are 32 bits, and 4294967295 is (uid_t)-1, "no id": https://man7.org/linux/man-pages/man2/setresuid.2.html
MAX_LINUX_ID = 4_294_967_294


def whole_numbers_from(smallest: int, largest: int) -> str:
    """A regex of the whole numbers from smallest to largest, written without a leading zero. An AllowedPattern
    has no numeric bound, so the bounds are spelled digit by digit: the numbers of smallest's length from it, any of
    the lengths between, and those of largest's length up to it."""

    def digit(low, high):
        return str(low) if low == high else f"[{low}-{high}]"

    def any_digits(count):
        return "" if count == 0 else "[0-9]" if count == 1 else f"[0-9]{{{count}}}"

    def same_length(low: str, high: str) -> list[str]:
        if low == high:
            return [low]
        if low[0] == high[0]:
            return [low[0] + rest for rest in same_length(low[1:], high[1:])]
        rest = len(low) - 1
        first, last, head, tail = int(low[0]), int(high[0]), [], []
        if low[1:] != "0" * rest:  # from low to the end of its first digit's block
            head, first = [low[0] + part for part in same_length(low[1:], "9" * rest)], first + 1
        if high[1:] != "9" * rest:  # from the start of high's first digit's block to high
            tail, last = [high[0] + part for part in same_length("0" * rest, high[1:])], last - 1
        return head + ([digit(first, last) + any_digits(rest)] if first <= last else []) + tail

    low, high = str(smallest), str(largest)
    if len(low) == len(high):
        parts = same_length(low, high)
    else:
        fewer, more = len(low), len(high) - 2  # digits after the first of the lengths between
        middle = [f"[1-9]{any_digits(fewer) if fewer == more else f'[0-9]{{{fewer},{more}}}'}"] if fewer <= more else []
        parts = same_length(low, "9" * len(low)) + middle + same_length("1" + "0" * (len(high) - 1), high)
    return "(?:" + "|".join(parts) + ")"


LINUX_ID = whole_numbers_from(1, MAX_LINUX_ID)
HTTP_PATH = r"/[A-Za-z0-9/._~-]*"
# owner/name, or owner@<owner id>/name@<repository id>: the immutable form GitHub's OIDC tokens name a repository by
# (in the sub claim the deploy role trusts) once it was created, renamed or transferred after GitHub's cut-over in
# 2026, or opted in: "repo:<owner>@<owner_id>/<repo>@<repo_id>:ref:refs/heads/main", ids never reused.
# https://learn.microsoft.com/entra/workload-id/workload-identities-github-immutable-subjects (and github/docs#45221;
# GitHub's first changelog, of 23 April 2026, showed octocat-123456/my-repo-456789, which owner/name takes as it is)
GITHUB_OWNER, GITHUB_NAME, GITHUB_ID = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})", r"[A-Za-z0-9._-]{1,100}", r"[1-9][0-9]{0,19}"
GITHUB_REPOSITORY = rf"(?:{GITHUB_OWNER}/{GITHUB_NAME}|{GITHUB_OWNER}@{GITHUB_ID}/{GITHUB_NAME}@{GITHUB_ID})"
# Environments and branches or tags only, never pull_request. An environment subject is in the token
# of any job that names the environment, a pull request's too: the environments' deployment-branch
# rules decide (README.md, "CI: GitHub Actions"). https://docs.github.com/en/actions/reference/security/oidc
GITHUB_SUBJECT = r"(environment:[A-Za-z0-9_.-]{1,255}|ref:refs/(heads|tags)/[A-Za-z0-9_./*-]{1,255})"
# An IPv4 CIDR whose prefix is /8 to /32: never the whole internet. Octets without leading zeros,
# which Python's ipaddress (and so the params checks) refuses as ambiguous.
IPV4_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
IPV4_CIDR = rf"({IPV4_OCTET}\.){{3}}{IPV4_OCTET}/([89]|[12][0-9]|3[0-2])"
OIDC_PROVIDER_ARN = r"arn:aws:iam::[0-9]{12}:oidc-provider/token\.actions\.githubusercontent\.com"

# ECS's deployment strategies: ROLLING replaces tasks in place; the others start the new tasks in the
# alternate target group and move traffic to them through the listener rules.
# https://docs.aws.amazon.com/AmazonECS/latest/developerguide/deployment-type-blue-green.html
DEPLOYMENT_STRATEGIES = ("ROLLING", "BLUE_GREEN", "CANARY", "LINEAR")
TRAFFIC_SHIFTING = DEPLOYMENT_STRATEGIES[1:]
HEALTH_CHECK_TIMEOUT_SECONDS = 5  # the target groups' (templates/alb.py)
# The console shows each wait's own bound (AWS's); make templates refuses a release whose waits add up to more.
WAITS_IN_ALL = (
    f" With the other release waits and RollbackMonitoringMinutes at most {MOST_RELEASE_WAIT_MINUTES} minutes in all "
    "(make templates refuses more)."
)
UNHEALTHY_THRESHOLD_COUNT = 3  # the target groups' failed checks before a target is unhealthy
GITHUB_MAX_SUBJECTS = 5  # trust-policy slots of the ci layer's deploy role
GITHUB_SUB = "repo:{repository}:{subject}"  # the token's sub claim the deploy role trusts (templates/ci.py github_subjects)
# The deploy role's trust policy must fit IAM's quota for a role trust policy, 2,048 characters unless
# AWS raised it (up to 4,096) on request. The page does not say how that length is counted; counted
# here as compact JSON, without the white space IAM leaves out of its other policy sizes.
# https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html
TRUST_POLICY_MAX_CHARACTERS = 2048
# Its characters besides the list of sub claims, with the longest provider ARN (tests/test_ci_layer.py
# measures them on the template).
TRUST_POLICY_OTHER_CHARACTERS = 400
# Load balancer TLS policies that AWS recommends (TLS 1.2 minimum, forward secrecy only); the console's
# default is now ELBSecurityPolicy-TLS13-1-2-Res-PQ-2025-09, with post-quantum key exchange.
# https://docs.aws.amazon.com/elasticloadbalancing/latest/application/describe-ssl-policies.html
RECOMMENDED_TLS_POLICIES = [
    "ELBSecurityPolicy-TLS13-1-2-Res-2021-06",
    "ELBSecurityPolicy-TLS13-1-2-2021-06",
    "ELBSecurityPolicy-TLS13-1-3-2021-06",
    "ELBSecurityPolicy-TLS13-1-2-Res-PQ-2025-09",
    "ELBSecurityPolicy-TLS13-1-2-PQ-2025-09",
    "ELBSecurityPolicy-TLS13-1-3-PQ-2025-09",
]
# CloudWatch Logs accepts only these retention periods (PutRetentionPolicy's retentionInDays):
# https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_PutRetentionPolicy.html
LOG_RETENTION_DAYS = [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653]
# Fargate task sizes: CPU units -> the memory sizes (MiB) offered with them; 8 and 16 vCPU need Linux
# platform 1.4.0 or later, which the service's PlatformVersion LATEST is. The table of TaskDefinition's memory:
# https://docs.aws.amazon.com/sdk-for-kotlin/api/latest/ecs/aws.sdk.kotlin.services.ecs.model/-task-definition/memory.html
FARGATE_MEMORY_BY_CPU = {
    256: [512, 1024, 2048],
    512: [1024, 2048, 3072, 4096],
    1024: list(range(2048, 8193, 1024)),
    2048: list(range(4096, 16385, 1024)),
    4096: list(range(8192, 30721, 1024)),
    8192: list(range(16384, 61441, 4096)),
    16384: list(range(32768, 122881, 8192)),
}


# "Maximum size of a parameter value: 4,096 bytes", for every value a params file gives (a list as
# CloudFormation takes it, joined by commas).
# https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/cloudformation-limits.html
PARAMETER_VALUE_BYTES = 4096


@dataclass(frozen=True)
class Input:
    name: str
    type: str  # a CloudFormation parameter type
    default: object
    description: str
    pattern: str | None = None  # the whole value (each item of a list) must match
    allowed: tuple | None = None
    min_value: int | None = None
    max_value: int | None = None
    items: tuple[int, int] | None = None  # fewest and most items in a list
    hint: str | None = None  # what is allowed, in words, where the pattern says it badly
    max_length: int | None = None  # characters, where the AWS API takes fewer than CloudFormation's PARAMETER_VALUE_BYTES
    # False: the template declares no Default (the console asks for a value). For a value that keeps
    # environments apart: a stack made in the console with production's would share production's.
    default_in_template: bool = True
    in_text: bool = False  # a Number the template writes into text (a command line): see declared_type

    @property
    def is_list(self):
        return self.type.startswith("List<") or self.type == "CommaDelimitedList"

    @property
    def declared_type(self) -> str:
        """The type the template declares. A list of a most number of items (read into that many slots) and a whole
        number written into text are Strings whose pattern is the whole value's: a CommaDelimitedList's pattern "must
        match each value in the list", never their number, and a Number is "an integer or float"
        (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/parameters-section-structure.html), so the
        console passed a 4th alert address the template has no subscription for, and GunicornWorkers 2.5, which
        gunicorn's command line refuses at every task's start."""
        return "String" if self.in_text or (self.type == "CommaDelimitedList" and self.items) else self.type

    def declared_pattern(self) -> str | None:
        """The pattern the template declares, where declared_type is String (whole numbers, each item of a list)."""
        if self.type == "Number":
            return whole_numbers_from(self.min_value, self.max_value) if self.in_text else None
        if self.type != "CommaDelimitedList" or not self.items:
            return self.pattern
        low, high = self.items
        item = f"(?:{self.pattern})"
        items = f"{item}(?:,{item}){{{max(low - 1, 0)},{high - 1}}}"
        return f"(?:{items})?" if low == 0 else items

    def allowed_text(self):
        if self.allowed is not None:
            return "one of " + ", ".join(str(a) for a in self.allowed)
        if self.type == "Number":
            return f"a whole number from {self.min_value} to {self.max_value}"
        what = self.hint or f"a string matching {self.pattern}"
        if self.is_list:
            low, high = self.items
            size = f"exactly {low}" if low == high else f"{low} to {high}"
            return f"a list of {size} items, each {what}"
        return what + (f", at most {self.max_length} characters" if self.max_length is not None else "")


def _bool(name, default, description):
    return Input(name, "String", "true" if default else "false", description, allowed=("true", "false"))


INPUTS = {
    i.name: i
    for i in [
        Input(
            "NamePrefix",
            "String",
            "startupwebapp",
            "Prefix of every resource name (ALB, target group, service, task family, log group).",
            pattern=NAME_PREFIX,
            hint=f"{PROJECT}, or {PROJECT}-<1 to 8 lower-case letters or digits>",
        ),
        Input(
            "DomainName",
            "String",
            "startupwebapp.com",
            "Apex domain; the certificate covers it and *.<domain>.",
            pattern=DOMAIN_NAME,
            hint="a lower-case domain name such as example.com",
            # The certificate's first name, *.<domain>, "cannot exceed 64 octets (characters), including periods"
            # (RFC 5280's Common Name): https://docs.aws.amazon.com/acm/latest/APIReference/API_RequestCertificate.html
            max_length=62,
        ),
        Input(
            "ExistingHostedZoneId",
            "String",
            "",
            "Id of the domain's public Route 53 hosted zone, delegated from the registrar (make zone creates one); "
            "cert-dns validates the certificate in it and is not deployed while this is empty.",
            pattern=f"({HOSTED_ZONE_ID})?",
            hint=f"a Route 53 zone id such as {EXAMPLE_HOSTED_ZONE_ID} (empty until make zone has created and delegated one)",
        ),
        Input(
            "ApiHostLabel",
            "String",
            "api",
            "Host label of the service under the domain (api -> api.<domain>).",
            pattern=HOST_LABEL,
            hint="one DNS label: 1 to 63 lower-case letters, digits and inner hyphens",
        ),
        Input(
            "VpcId",
            "AWS::EC2::VPC::Id",
            f"vpc-{EXAMPLE_ID_HEX}0718",
            "VPC from Phase 5.14.",
            pattern=VPC_ID,
            hint=f"a VPC id: vpc- and 8 or 17 hexadecimal digits, such as vpc-{EXAMPLE_ID_HEX}0718",
            default_in_template=False,  # an example: no template offers it in the console as if it were the account's
        ),
        Input(
            "PublicSubnetIds",
            "List<AWS::EC2::Subnet::Id>",
            f"subnet-{EXAMPLE_ID_HEX}0001,subnet-{EXAMPLE_ID_HEX}0002",
            "The two public subnets (one per AZ) for the load balancer.",
            pattern=SUBNET_ID,
            items=(2, 2),
            hint=f"a subnet id: subnet- and 8 or 17 hexadecimal digits, such as subnet-{EXAMPLE_ID_HEX}0718",
            default_in_template=False,
        ),
        Input(
            "PrivateSubnetIds",
            "List<AWS::EC2::Subnet::Id>",
            f"subnet-{EXAMPLE_ID_HEX}0003,subnet-{EXAMPLE_ID_HEX}0004",
            "The two private subnets (one per AZ) for the service's tasks.",
            pattern=SUBNET_ID,
            items=(2, 2),
            hint=f"a subnet id: subnet- and 8 or 17 hexadecimal digits, such as subnet-{EXAMPLE_ID_HEX}0718",
            default_in_template=False,
        ),
        Input(
            "BackendSecurityGroupId",
            "AWS::EC2::SecurityGroup::Id",
            f"sg-{EXAMPLE_ID_HEX}0001",
            "Security group of the backend tasks (Phase 5.14); the ALB layer lets the ALB reach it. Each environment its own.",
            pattern=SECURITY_GROUP_ID,
            hint=f"a security group id: sg- and 8 or 17 hexadecimal digits, such as sg-{EXAMPLE_ID_HEX}0718",
            default_in_template=False,
        ),
        Input(
            "ContainerPort",
            "Number",
            8000,
            "Port gunicorn listens on inside the task.",
            min_value=1024,
            max_value=65535,
            in_text=True,  # gunicorn's --bind
        ),
        Input(
            "TlsPolicy",
            "String",
            RECOMMENDED_TLS_POLICIES[0],
            "TLS policy of the HTTPS listener, and of the test listener where a release shifts traffic.",
            allowed=tuple(RECOMMENDED_TLS_POLICIES),
        ),
        Input(
            "HealthCheckPath",
            "String",
            "/health",
            "Path the target group probes; it must answer 200.",
            pattern=HTTP_PATH,
            hint="a URL path starting with /",
            max_length=1024,  # CreateTargetGroup's HealthCheckPath (the elbv2 API model botocore ships: Path, max 1024)
        ),
        # Above the target group's health-check timeout: ELB answers "ValidationError: Health check interval
        # must be greater than the timeout." to an interval that is not, whatever its 5-300 range says (the
        # AWS CDK checks it since aws/aws-cdk#29075).
        # https://docs.aws.amazon.com/elasticloadbalancing/latest/application/target-group-health-checks.html
        Input(
            "HealthCheckIntervalSeconds",
            "Number",
            30,
            "Seconds between health checks.",
            min_value=HEALTH_CHECK_TIMEOUT_SECONDS + 1,
            max_value=300,
        ),
        # A response must start within it: "the target did not respond before the idle timeout period
        # elapsed" is an HTTP 504 from the load balancer (templates/params.py keeps GunicornTimeoutSeconds below it).
        # https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-troubleshooting.html
        Input(
            "IdleTimeoutSeconds",
            "Number",
            60,
            "Seconds the load balancer keeps a connection on which nothing is sent; a response must start within it.",
            min_value=1,
            max_value=4000,
        ),
        # "After your target is registered, it must pass one health check to be considered healthy": the
        # threshold counts for a target that failed, coming back.
        # https://docs.aws.amazon.com/elasticloadbalancing/latest/application/target-group-health-checks.html
        Input(
            "HealthyThresholdCount",
            "Number",
            2,
            "Consecutive passes before a target that failed is healthy again (a newly registered target needs one).",
            min_value=2,
            max_value=10,
        ),
        Input(
            "DeregistrationDelaySeconds",
            "Number",
            30,
            "Seconds a draining target keeps its connections.",
            min_value=0,
            max_value=3600,
        ),
        _bool("DeletionProtection", True, "Load balancer deletion protection."),
        _bool("AccessLogsEnabled", True, "Load balancer access logs to this layer's S3 bucket."),
        Input(
            "AccessLogRetentionDays",
            "Number",
            365,
            "Days the access-log bucket keeps log objects.",
            min_value=1,
            max_value=3650,
        ),
        Input(
            "ClusterName",
            "String",
            "startupwebapp-cluster",
            "Existing ECS cluster (Phase 5.14).",
            pattern=r"[A-Za-z0-9_-]{1,255}",
            hint="an ECS cluster name: 1 to 255 letters, digits, hyphens and underscores",
        ),
        Input(
            "EcrRepositoryName",
            "String",
            "startupwebapp-backend",
            "ECR repository holding the production image, in this account and region.",
            pattern=ECR_REPOSITORY_NAME,
            max_length=MOST_ECR_REPOSITORY_NAME,
            hint=f"an ECR repository name starting with {PROJECT} (the roles' permissions boundary allows no other), such as {PROJECT}-backend "
            f"(ECS runs the image as <registry host>/<name>:<tag>, a tag of up to {MOST_IMAGE_TAG}, in at most {MOST_IMAGE} characters)",
        ),
        Input(
            "ImageTag",
            "String",
            "latest",
            "Tag of the image to run; deploys set it to the released tag.",
            pattern=IMAGE_TAG,
            hint=f"a Docker image tag: letters, digits, _ . -, not starting with . or -, at most {MOST_IMAGE_TAG}",
        ),
        Input(
            "DatabaseSecretArn",
            "String",
            f"arn:aws:secretsmanager:us-east-1:{EXAMPLE_ACCOUNT}:secret:startupwebapp/db-AbCdEf",
            "Secrets Manager secret with the database credentials (keys username, password, host, port), in the stacks' account and "
            "encrypted with the AWS managed key aws/secretsmanager: the execution role may use no other KMS key. Each environment its own.",
            pattern=SECRET_ARN,
            hint=f"a Secrets Manager secret ARN whose name starts with {PROJECT} (the roles' permissions boundary allows no other), of at most {MOST_SECRET_NAME} characters, and ends in -XXXXXX",
            default_in_template=False,
        ),
        Input(
            "DatabaseName",
            "String",
            "startupwebapp_prod",
            "Database the service uses (DATABASE_NAME). Each environment its own.",
            pattern=r"[A-Za-z_][A-Za-z0-9_]{0,62}",
            hint="a PostgreSQL database name: a letter or underscore, then at most 62 letters, digits and underscores",
            default_in_template=False,
        ),
        Input(
            "DjangoSettingsModule",
            "String",
            "StartupWebApp.settings_production",
            "DJANGO_SETTINGS_MODULE of the container.",
            pattern=r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*",
            hint="a dotted Python module path such as StartupWebApp.settings_production: names of letters, digits and underscores, none starting with a digit",
        ),
        Input("TaskCpu", "Number", 512, "Task CPU units (512 = 0.5 vCPU).", allowed=tuple(FARGATE_MEMORY_BY_CPU)),
        Input(
            "TaskMemory",
            "Number",
            1024,
            "Task memory in MiB; must be a size Fargate offers with TaskCpu.",
            min_value=min(min(sizes) for sizes in FARGATE_MEMORY_BY_CPU.values()),
            max_value=max(max(sizes) for sizes in FARGATE_MEMORY_BY_CPU.values()),
        ),
        Input(
            "DesiredCount",
            "Number",
            2,
            "Tasks the service starts with; afterwards auto-scaling owns the count.",
            min_value=0,
            max_value=100,
        ),
        Input("GunicornWorkers", "Number", 3, "gunicorn worker processes per task.", min_value=1, max_value=33, in_text=True),
        Input(
            "GunicornTimeoutSeconds",
            "Number",
            30,
            "gunicorn worker timeout and graceful-shutdown timeout.",
            min_value=5,
            max_value=110,
            in_text=True,
        ),
        Input(
            "StopTimeoutSeconds",
            "Number",
            60,
            "Seconds ECS waits after SIGTERM before SIGKILL; above the gunicorn timeout, at most 120.",
            min_value=2,
            max_value=120,
        ),
        Input(
            "ContainerUser",
            "String",
            "1000:1000",
            "Non-root uid:gid the container runs as.",
            pattern=f"{LINUX_ID}(:{LINUX_ID})?",
            hint=f"a non-zero uid or uid:gid such as 1000:1000, each at most {MAX_LINUX_ID}",
        ),
        Input(
            "HealthCheckGracePeriodSeconds",
            "Number",
            120,
            "Seconds a new task may fail health checks while it starts.",
            min_value=0,
            max_value=2147483647,
        ),
        Input(
            "DeploymentStrategy",
            "String",
            "BLUE_GREEN",
            "How ECS replaces the tasks on a release: ROLLING (in place), or BLUE_GREEN, CANARY or LINEAR (a second set of "
            "tasks in the alternate target group, production traffic moved to it by the load balancer's listener rule).",
            allowed=DEPLOYMENT_STRATEGIES,
        ),
        Input(
            "BakeTimeMinutes",
            "Number",
            10,
            "Minutes the old tasks keep running after all traffic moved (BLUE_GREEN, CANARY, LINEAR), so that a rollback "
            "needs no new task." + WAITS_IN_ALL,
            min_value=0,
            max_value=1440,
        ),
        Input(
            "CanaryPercent",
            "Number",
            10,
            "CANARY: whole percent of production traffic the new tasks take first.",
            min_value=1,
            max_value=100,
        ),
        Input(
            "CanaryBakeTimeMinutes",
            "Number",
            5,
            "CANARY: minutes at that percent before the rest of the traffic moves." + WAITS_IN_ALL,
            min_value=0,
            max_value=1440,
        ),
        Input(
            "LinearStepPercent",
            "Number",
            25,
            "LINEAR: whole percent of production traffic moved at each step.",
            min_value=3,
            max_value=100,
        ),
        Input(
            "LinearStepBakeTimeMinutes",
            "Number",
            2,
            "LINEAR: minutes between two steps." + WAITS_IN_ALL,
            min_value=0,
            max_value=1440,
        ),
        Input(
            "TestPauseMinutes",
            "Number",
            0,
            "BLUE_GREEN, CANARY or LINEAR: minutes a release waits, once the test listener reaches the new tasks, for make "
            "continue (after make verify TEST_LISTENER=1) before production traffic moves; past them ECS rolls it back. 0: no pause."
            + WAITS_IN_ALL,
            min_value=0,
            # A lifecycle hook's timeoutInMinutes: "Minimum value of 1. Maximum value of 20160." (0 here: no hook).
            # https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DeploymentLifecycleHookTimeoutConfiguration.html
            max_value=20160,
        ),
        Input(
            "TestListenerPort",
            "Number",
            8443,
            "HTTPS port of the load balancer's test listener (not ROLLING): it reaches the new tasks before production traffic does.",
            min_value=1024,
            max_value=65535,
        ),
        Input(
            "TestListenerCidr",
            "String",
            "",
            "The only addresses that may reach the test listener (an office or VPN range); required unless DeploymentStrategy is ROLLING.",
            pattern=f"({IPV4_CIDR})?",
            hint=f"empty, or an IPv4 CIDR with a prefix of /8 to /32 such as {DOCUMENTATION_NETWORKS[-1]}",
        ),
        Input(
            "LogRetentionDays",
            "Number",
            365,
            "Days the log groups keep events: the service's, and the WAF's request log where the waf layer is deployed.",
            allowed=tuple(LOG_RETENTION_DAYS),
        ),
        Input("MinCapacity", "Number", 1, "Fewest tasks auto-scaling keeps.", min_value=1, max_value=100),
        Input("MaxCapacity", "Number", 4, "Most tasks auto-scaling starts; the saturation alarms fire at it.", min_value=1, max_value=100),
        Input("CpuTargetPercent", "Number", 70, "Average service CPU that auto-scaling aims for.", min_value=10, max_value=95),
        Input(
            "MemoryTargetPercent",
            "Number",
            80,
            "Average service memory that auto-scaling aims for.",
            min_value=10,
            max_value=95,
        ),
        Input("ScaleOutCooldownSeconds", "Number", 180, "Seconds after a scale-out before the next.", min_value=0, max_value=3600),
        Input("ScaleInCooldownSeconds", "Number", 300, "Seconds after a scale-in before the next.", min_value=0, max_value=3600),
        Input(
            "AlertEmails",
            "CommaDelimitedList",
            "",
            "Up to three e-mail addresses subscribed to the alert topic (each must confirm by e-mail).",
            # no empty dot-separated part and no label starting or ending with - (a@..com, .@-.com were taken)
            pattern=r"[A-Za-z0-9_%+-]+(?:\.[A-Za-z0-9_%+-]+)*@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}",
            items=(0, 3),
            hint="an e-mail address",
        ),
        # The load balancer sends its metrics once a minute. A 10 or 30 s period on such a metric leaves
        # most periods without data: an alarm that treats missing data as breaching goes off at once, one
        # that does not never sees its periods in a row, and both are billed as high-resolution alarms.
        # https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricAlarm.html
        # https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-cloudwatch-metrics.html
        Input("AlarmPeriodSeconds", "Number", 60, "Period of the load-balancer alarms.", allowed=(60, 300)),
        Input(
            "Target5xxThreshold",
            "Number",
            10,
            "5xx answers from the tasks per period that count as a bad period (also a deployment rollback alarm).",
            min_value=1,
            max_value=100000,
        ),
        Input("Elb5xxThreshold", "Number", 10, "5xx answers made by the load balancer itself per period.", min_value=1, max_value=100000),
        Input(
            "BadPeriodsToAlarm",
            "Number",
            3,
            "Consecutive bad periods before a load-balancer alarm fires.",
            min_value=1,
            max_value=60,
        ),
        Input(
            "ResponseTimeP99Seconds", "Number", 2, "p99 target response time above which the service is slow.", min_value=1, max_value=60
        ),
        # At most 99: the alarms ask for usage above it, and a Fargate task's CPU and memory are capped at its task
        # definition's ("you'll also be setting the maximum amount of CPU resources that your containers in a task are
        # allowed", https://repost.aws/knowledge-center/ecs-cpu-allocation), so the service's Average, "compared to the
        # CPU and memory that is specified in the service's task definition"
        # (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/service_utilization.html), never passes 100.
        Input(
            "SaturationPercent",
            "Number",
            85,
            "Average CPU or memory that, while the service runs its maximum task count, means it needs more room.",
            min_value=50,
            max_value=99,
        ),
        Input(
            "SaturationPeriods",
            "Number",
            3,
            "5-minute periods CPU or memory must stay high at the maximum task count before alarming.",
            min_value=1,
            max_value=24,
        ),
        Input(
            "TasksBelowDesiredMinutes",
            "Number",
            10,
            "Minutes running tasks may stay below desired before alarming.",
            min_value=1,
            max_value=60,
        ),
        Input(
            "RollbackMonitoringMinutes",
            "Number",
            10,
            "Minutes CloudFormation watches the release alarms after a service update before it calls the update good."
            f" With a traffic-shifting release's waits, at most {MOST_RELEASE_WAIT_MINUTES} minutes in all (make templates refuses more).",
            min_value=0,
            max_value=MOST_MONITORING_MINUTES,
        ),
        Input(
            "WafRateLimit",
            "Number",
            1000,
            "Requests one client IP may send in 5 minutes before the WAF blocks it (only counts them where WafCountOnly is true).",
            # AWS's minimum is 10 since August 2024, but not in every region (Hyderabad, Spain, Melbourne, Zurich,
            # Tel Aviv, GovCloud and China keep 100): 100 holds wherever the layers deploy.
            # https://aws.amazon.com/about-aws/whats-new/2024/08/aws-waf-rate-based-rules-lower-rate-limits/
            # https://docs.aws.amazon.com/waf/latest/developerguide/waf-rule-statement-type-rate-based-high-level-settings.html
            min_value=100,
            max_value=2000000000,
        ),
        _bool(
            "WafCountOnly",
            False,
            "WAF rules only count matches instead of blocking (for a first rollout); "
            "AWSManagedRulesKnownBadInputsRuleSet (exploit payloads such as Log4Shell) blocks all the same.",
        ),
        Input(
            "GitHubRepository",
            "String",
            "startupwebapp/startupwebapp-deploy",
            "GitHub repository whose workflows may assume the deploy role, as its OIDC tokens name it (case-sensitive): "
            "owner/name, or owner@<owner id>/name@<repository id> for one created, renamed or transferred since GitHub's 2026 "
            "cut-over, or opted in.",
            pattern=GITHUB_REPOSITORY,
            hint="owner/name of a GitHub repository as GitHub spells it, such as startupwebapp/startupwebapp-deploy, or "
            "owner@<owner id>/name@<repository id> as its OIDC tokens name it",
        ),
        Input(
            "GitHubCallerRepository",
            "String",
            "",
            "The application repository whose workflow calls deploy-service.yml (its token names the caller); empty: none.",
            pattern=f"({GITHUB_REPOSITORY})?",
            hint="empty, or owner/name (or owner@<owner id>/name@<repository id>) of a GitHub repository",
        ),
        Input(
            "GitHubSubjects",
            "CommaDelimitedList",
            "environment:prod",
            f"Where in that repository a workflow may assume the deploy role: OIDC subject suffixes "
            f"(environment:<name>, ref:refs/heads/<branch>, ref:refs/tags/<tag>; * allowed in refs), at most {GITHUB_MAX_SUBJECTS}. "
            "deploy-service.yml's jobs name an environment, whose token has the environment: subject, never a ref: one.",
            pattern=GITHUB_SUBJECT,
            items=(1, GITHUB_MAX_SUBJECTS),
            hint="environment:<name>, ref:refs/heads/<branch> or ref:refs/tags/<tag>",
        ),
        Input(
            "ExistingOidcProviderArn",
            "String",
            "",
            "ARN of the account's GitHub OIDC provider if it exists already (an account has one per URL); empty creates it.",
            pattern=f"({OIDC_PROVIDER_ARN})?",
            hint="empty, or arn:aws:iam::<account>:oidc-provider/token.actions.githubusercontent.com",
        ),
    ]
}

# Inputs whose value another layer's output supplies at deploy time (see templates.WIRING).
WIRED = {
    i.name: i
    for i in [
        Input("CertificateArn", "String", None, "ACM certificate of the HTTPS listener (cert-dns output)."),
        Input("HostedZoneId", "AWS::Route53::HostedZone::Id", None, "Hosted zone of the domain (cert-dns output)."),
        Input(
            "TargetGroupArn",
            "String",
            None,
            "Primary target group: the service's first, and a rolling service's always; a traffic-shifting release alternates between the two (alb output).",
        ),
        Input(
            "ServiceClusterName", "String", None, "Cluster of the service: scaling's target, the alarms' metric dimension (service output)."
        ),
        Input("ServiceName", "String", None, "The ECS service (service output)."),
        Input("LoadBalancerArn", "String", None, "The load balancer (alb output)."),
        Input("LoadBalancerFullName", "String", None, "LoadBalancer dimension of the ALB metrics (alb output)."),
        Input("TargetGroupFullName", "String", None, "TargetGroup dimension of the ALB metrics (alb output)."),
        Input(
            "AlternateTargetGroupArn",
            "String",
            None,
            "Alternate target group: a traffic-shifting release's new tasks register in whichever of the two does not serve (alb output).",
        ),
        Input("AlternateTargetGroupFullName", "String", None, "TargetGroup dimension of the alternate target group (alb output)."),
        # Outputs of the alb layer only when traffic shifts: a missing one gives the default (empty),
        # and the service template's rules refuse an empty one where the strategy needs it.
        Input("ProductionListenerRuleArn", "String", "", "Listener rule whose weights move production traffic (alb output)."),
        Input("TestListenerRuleArn", "String", "", "Listener rule of the test listener (alb output)."),
        Input("AlertTopicArn", "String", None, "SNS topic the alarms notify (release-alarms output)."),
        Input("DeploymentAlarmNames", "CommaDelimitedList", None, "Alarms that roll a bad ECS deployment back (release-alarms output)."),
    ]
}


# Inputs the deployer sets itself on every deploy; never in a params file.
KEEP_RUNNING_COUNT = "KeepRunningCount"
# The inputs behind the service's create-only properties (its name, from NamePrefix, and its cluster):
# a change of one replaces the service (of ClusterName alone, refused: the new service would keep its
# custom name, scripts/deploy/text.py custom_named_replacements), and a new service without DesiredCount starts 1 task ("For new
# services, if a desired count is not specified, a default value of 1 is used"), so the deployer sets
# DesiredCount then (tests/test_layers.py checks the list against the resource schema).
# https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-ecs-service.html
SERVICE_REPLACED_BY = ("ClusterName", "NamePrefix")
DEPLOY_TIME = {
    KEEP_RUNNING_COUNT: Input(
        KEEP_RUNNING_COUNT,
        "String",
        "false",
        "Set by the deployer: true once the service exists, so that an update leaves the running task count to auto-scaling.",
        allowed=("true", "false"),
    )
}


# The console's parameter groups (AWS::CloudFormation::Interface): who gives each value, so that a
# reviewer reading a template in the console knows which ones a run sets and must not be typed in.
# https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-cloudformation-interface.html
SET_EACH_RUN = ("ImageTag", *DEPLOY_TIME)
CONSOLE_GROUPS = (
    ("This environment's values: params/<env>.yaml, in the configuration file output/<env>/<layer>.json", None),
    ("Set by the deployer at each run (the image: TAG=, else the one running, else on a first deploy params' ImageTag)", SET_EACH_RUN),
    ("Set by the deployer from the upstream stacks' outputs", tuple(WIRED)),
)


def console_interface(parameter_names) -> dict:
    """The template's Metadata AWS::CloudFormation::Interface: its parameters in CONSOLE_GROUPS, in
    alphabetical order within each; a group with none of them left out."""
    named = sorted(parameter_names)
    claimed = {name for _, names in CONSOLE_GROUPS if names for name in names}
    groups = []
    for label, names in CONSOLE_GROUPS:
        members = [name for name in named if (name in names if names else name not in claimed)]
        if members:
            groups.append({"Label": {"default": label}, "Parameters": members})
    return {"ParameterGroups": groups}


def add(template: Template, name: str, description: str | None = None) -> Parameter:
    """Add the declared input `name` to a template and return the parameter; description: what it does in this
    template, where that is not what its declaration says (the ci layer's roles are scoped by inputs others use)."""
    spec = INPUTS.get(name) or WIRED.get(name) or DEPLOY_TIME[name]
    kwargs = {"Type": spec.declared_type, "Description": description or spec.description}
    if spec.default is not None and spec.default_in_template:
        kwargs["Default"] = str(spec.default) if spec.allowed is not None or spec.in_text else spec.default
    if spec.allowed is not None:
        kwargs["AllowedValues"] = [str(a) for a in spec.allowed]
    pattern = spec.declared_pattern()
    if pattern is not None and not spec.type.startswith(("AWS::", "List<")):  # AWS checks its own types' values
        kwargs["AllowedPattern"] = f"^{pattern}$"
        kwargs["ConstraintDescription"] = spec.allowed_text() + (", separated by commas without spaces" if spec.is_list else "")
    if spec.max_length is not None:  # CloudFormation refuses a longer value before any resource does
        kwargs["MaxLength"] = spec.max_length
    if spec.min_value is not None and spec.declared_type == "Number":
        kwargs["MinValue"] = spec.min_value
        kwargs["MaxValue"] = spec.max_value
    return template.add_parameter(Parameter(name, **kwargs))
