"""The deployer's side of botocore: the clients' settings, the hooks that count each run's calls and
print botocore's retries, and one line with what to do for each error."""

import ipaddress
import os
import re
import shlex
import traceback
import urllib.parse
from collections import Counter
from pathlib import Path

from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    CredentialRetrievalError,
    EndpointConnectionError,
    NoCredentialsError,
    PaginationError,
    ParamValidationError,
    PartialCredentialsError,
    ReadTimeoutError,
    SSOError,
    TokenRetrievalError,
)
from botocore.parsers import ResponseParserError

from scripts.botocore_models import make_session
from templates import ROOT
from templates.errors import printable
from templates.params import SANDBOX_ENV, SANDBOX_KEYS, SANDBOX_SESSION_VARS

# What a call to AWS may raise, besides Ctrl-C: no answer (botocore's own errors) or one botocore
# cannot read (ResponseParserError derives from neither), or an answer with an error (ClientError).
NO_ANSWER = (BotoCoreError, ResponseParserError)
AWS_ERRORS = (*NO_ANSWER, ClientError)
# An attempt that could not connect (refused, or no connection within the connect timeout) sent
# nothing; botocore's other connection errors come after the request may have left.
NEVER_CONNECTED = (EndpointConnectionError, ConnectTimeoutError)
# What botocore raises before a request leaves: no credentials (none found, half of them, an expired
# SSO session) or parameters its model refuses.
NOT_SENT = (NoCredentialsError, PartialCredentialsError, CredentialRetrievalError, SSOError, TokenRetrievalError, ParamValidationError)


def may_have_landed(error: BaseException) -> bool:
    """Whether the request that raised error may have been carried out all the same: it got no
    answer, or an unreadable one, or its error answered a retry, whose earlier attempt may have
    landed before its answer was lost. botocore counts the retries in ResponseMetadata's
    RetryAttempts, on an error answer too: https://docs.aws.amazon.com/boto3/latest/guide/retries.html"""
    if isinstance(error, ClientError):
        return error.response.get("ResponseMetadata", {}).get("RetryAttempts", 0) > 0
    if getattr(error, "never_sent", False):  # AwsCalls saw every attempt fail to connect
        return False
    return isinstance(error, NO_ANSWER) and not isinstance(error, NOT_SENT)


# Every call: 5 s to connect, 20 s to read an answer, 5 attempts with botocore's standard retry
# mode (throttling, 5xx, connection errors; backoff up to 1, 2, 4 and 8 s): an endpoint that refuses
# connections fails within 20 s, one that stops answering within 2 minutes, and each retry is printed.
# https://docs.aws.amazon.com/sdkref/latest/guide/feature-retry-behavior.html
MAX_ATTEMPTS = 5
CONFIG = Config(
    connect_timeout=5,
    read_timeout=20,
    retries={"mode": "standard", "total_max_attempts": MAX_ATTEMPTS},
    user_agent_extra="startupwebapp-deployer",
)


def boto_clients(region, err, config, endpoint=None, sandbox=False, reuse=None):
    """The run's clients, made on first use. endpoint given (AWS_ENDPOINT_URL: the sandbox's, or
    another emulator's, which the commands then treat as one), every client is made with it, which
    nothing in the AWS configuration overrides, while a service-specific endpoint
    (AWS_ENDPOINT_URL_<SERVICE>, a `services` section of the config file) overrides AWS_ENDPOINT_URL,
    and AWS_IGNORE_CONFIGURED_ENDPOINT_URLS drops it: a run taken for an emulator's could have
    reached AWS. One on this machine is reached directly, not through the shell's HTTP(S)_PROXY
    (botocore reads it only when Config gives no proxies). The sandbox's (sandbox) are made with
    its keys alone, reading no profile nor AWS configuration file.
    https://docs.aws.amazon.com/sdkref/latest/guide/feature-ss-endpoints.html

    reuse: a dict kept by a caller that runs the deployer more than once in one process (the tests):
    the clients an earlier run made with the same settings and environment are taken again, as
    making one costs botocore several milliseconds of CPU. AwsCalls.watch moves them to the new run.
    A client keeps what botocore keeps per client, such as its retry quota: the caller decides how
    long to keep them."""
    made = {} if reuse is None else reuse.setdefault((region, config, endpoint, sandbox, frozenset(os.environ.items())), {})
    extra = {"endpoint_url": endpoint} if endpoint else {}
    if sandbox:  # its own keys, no session token: the shell's credentials reach no endpoint
        extra |= {"aws_access_key_id": SANDBOX_KEYS["AWS_ACCESS_KEY_ID"], "aws_secret_access_key": SANDBOX_KEYS["AWS_SECRET_ACCESS_KEY"]}
    if endpoint and on_this_machine(endpoint):
        config = config.merge(Config(proxies={}))
    session = make_session(SANDBOX_SESSION_VARS if sandbox else None)
    if session.region_name and session.region_name != region:
        print(f"note: using the environment's region {region} (the AWS configuration says {session.region_name})", file=err)

    def client(service, elsewhere=None):
        """service's client for the environment's region, or for the region elsewhere names (a resource params names there)."""
        key = (service, elsewhere) if elsewhere else service
        if key not in made:
            made[key] = session.client(service, region_name=elsewhere or region, config=config, **extra)
        return made[key]

    return client


def on_this_machine(endpoint: str) -> bool:
    host = urllib.parse.urlsplit(endpoint).hostname or ""
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# Error codes that mean the credentials (not a token of CloudFormation's, TokenAlreadyExistsException,
# nor SSM's InvalidNextToken): https://docs.aws.amazon.com/STS/latest/APIReference/CommonErrors.html
CREDENTIAL_ERRORS = (
    "ExpiredToken",
    "InvalidClientTokenId",
    "UnrecognizedClient",
    "SignatureDoesNotMatch",
    "IncompleteSignature",
    "Unauthorized",
    "MissingAuthenticationToken",
    "InvalidAccessKeyId",
    "InvalidSignature",  # SSM, ECS and Logs (JSON protocol) name a wrong secret key or a skewed clock so
    "RequestExpired",
    "AuthFailure",  # EC2's
)


# Error codes that mean the caller may not do it (valid credentials, a permission its IAM policy lacks):
# "You don't have permission to perform this action. Verify that your IAM policy includes the required
# permissions." https://docs.aws.amazon.com/STS/latest/APIReference/CommonErrors.html; EC2's
# UnauthorizedOperation, https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html; SNS's
# AuthorizationError, "the user has been denied access to the requested resource",
# https://docs.aws.amazon.com/botocore/latest/reference/services/sns/client/exceptions/AuthorizationErrorException.html
PERMISSION_ERRORS = ("AccessDenied", "NotAuthorized", "UnauthorizedOperation", "AuthorizationError")


def cli(region: str) -> str:
    """How an AWS CLI command printed for people to copy starts: with the run's region, and with its
    endpoint when AWS_ENDPOINT_URL points the run elsewhere (the sandbox). Copied into a shell, the
    command then reaches what the run reached, not the shell's default region nor, from a rehearsal
    on the sandbox, whatever account the shell's credentials name.
    https://docs.aws.amazon.com/cli/latest/userguide/cli-configure-options.html and
    https://docs.aws.amazon.com/cli/latest/userguide/cli-configure-endpoints.html"""
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    if not endpoint:
        return f"aws --region {region}"
    # The sandbox's keys live in make's shell only: named, the command works pasted anywhere. They
    # are the fixed fake ones (any others, real keys above all, are never printed).
    if not all(os.environ.get(name) == value for name, value in SANDBOX_KEYS.items()):
        return f"aws --region {region} --endpoint-url {shlex.quote(endpoint)}"
    # Pasted into a shell whose AWS_PROFILE names a profile it lacks, the CLI stops (ProfileNotFound)
    # whatever keys are given; a shell's session token would go along with the fake keys, and its
    # expiry time (aws-vault's) stop the command once past; its proxy would get the request.
    keys = " ".join(f"{name}={value}" for name, value in SANDBOX_KEYS.items())
    host = urllib.parse.urlsplit(endpoint).hostname or ""
    direct = "no_proxy=" + shlex.quote(f"[{host}]" if ":" in host else host)  # the lower-case one wins over NO_PROXY
    return f"env {SHELL_AWS_SETTINGS_DROPPED} {direct} {keys} aws --region {region} --endpoint-url {shlex.quote(endpoint)}"


# What botocore's credential and profile lookups read that a shell may hold for another account.
SHELL_AWS_SETTINGS_DROPPED = " ".join(
    f"-u {name}" for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_CREDENTIAL_EXPIRATION")
)


API_CALLS = "API calls per stack: "
NO_STACK = "(no stack)"  # where --api-calls counts the calls that name no stack: the lock, the release history, verify's


def parse_api_calls(stderr: str) -> dict:
    """The --api-calls line back as stack -> calls (for the benchmark and the tests)."""
    line = next(line for line in stderr.splitlines() if line.startswith(API_CALLS))
    return {stack: int(n) for stack, n in (part.rsplit(" ", 1) for part in line.removeprefix(API_CALLS).split(", "))}


def stack_of(params) -> str:
    """The stack a request is about: its StackName, a name or a stack id (an ARN ending stack/<name>/<uuid>)."""
    name = params.get("StackName")
    if not name:
        return NO_STACK
    return name.split(":stack/", 1)[1].split("/", 1)[0] if name.startswith("arn:") else name


RETRY_LINE = (
    " not answering "  # in the line printed for each retry: "AWS not answering ...", on the sandbox "the sandbox not answering ..."
)


class SandboxGone(BaseException):  # noqa: N818 (not an Exception: no best-effort `except AWS_ERRORS` takes it for a note)
    """The sandbox's server refused every attempt of a call: it is gone, with every stack and lock, and the
    run's later calls end it at once (args: that call's EndpointConnectionError) rather than each retrying
    in vain, a note between them, to the same one line."""


class AwsCalls:
    """Hooks on each client of a run: count its calls per stack (--api-calls), print a line for each retry;
    on the sandbox, end the run at the first call after one whose every attempt was refused (SandboxGone)."""

    def __init__(self, err, sandbox=False):
        self.err = err
        self.sandbox = sandbox
        self.gone = None  # on the sandbox: the refused call's error, once every attempt of one was refused
        self.per_stack = Counter()  # stack name (or NO_STACK) -> calls
        self.change_sets = {}  # change set ARN -> its stack's name, from the answers that give both
        self.last_problem = "no answer"  # what the last failed attempt of a call got, for the retry line
        self.sent = False  # whether an attempt of the current call may have reached AWS

    def watch(self, client):
        """The client's calls counted and its retries printed by this run, in place of any run that
        watched it before (boto_clients' reuse)."""
        events = client.meta.events
        for event, hook in (
            ("before-parameter-build", self.count),  # once per call, before retries; Stubber answers later
            ("needs-retry", self.remember_problem),
            ("request-created", self.say_retry),
            ("before-send", self.refuse_once_gone),
            ("after-call.cloudformation.CreateChangeSet", self.remember_change_set),
            ("after-call.cloudformation.DescribeChangeSet", self.remember_change_set),
        ):
            events.unregister(event, unique_id=f"deployer-{event}")
            events.register(event, hook, unique_id=f"deployer-{event}")
        return client

    def count(self, params, **_):
        # ExecuteChangeSet and DeleteChangeSet by the change set's ARN alone: its stack is the one an answer gave
        stack = stack_of(params)
        self.per_stack[self.change_sets.get(params.get("ChangeSetName"), stack) if stack == NO_STACK else stack] += 1
        self.sent = False

    def remember_change_set(self, parsed, **_):
        """CreateChangeSet answers Id and StackId, DescribeChangeSet ChangeSetId and StackName."""
        change_set, stack = parsed.get("Id") or parsed.get("ChangeSetId"), parsed.get("StackId") or parsed.get("StackName")
        if change_set and stack:
            self.change_sets[change_set] = stack_of({"StackName": stack})

    def remember_problem(self, response=None, caught_exception=None, attempts=1, **_):
        """After each attempt of a call, the last one too: what it got, and whether any attempt so far
        may have been sent. An error no attempt sent is marked (never_sent) for may_have_landed."""
        if self.sandbox and isinstance(caught_exception, EndpointConnectionError) and attempts >= MAX_ATTEMPTS:
            self.gone = caught_exception  # the last attempt refused too: nothing listens on the sandbox's port
        self.sent = self.sent or not isinstance(caught_exception, NEVER_CONNECTED)
        if caught_exception is not None:
            caught_exception.never_sent = not self.sent  # the same object raised again must not keep an old mark
            self.last_problem = " ".join(str(caught_exception).split())[:160]
        elif response is not None:
            self.last_problem = (response[1] or {}).get("Error", {}).get("Code") or f"HTTP {response[0].status_code}"

    def say_retry(self, request, operation_name, **_):
        attempt = request.context.get("retries", {}).get("attempt", 1)
        if attempt > 1:
            print(
                f"{'the sandbox' if self.sandbox else 'AWS'}{RETRY_LINE}{operation_name} ({printable(self.last_problem, one_line=True)}): "
                f"retry {attempt - 1} of {MAX_ATTEMPTS - 1}",
                file=self.err,
                flush=True,
            )

    def refuse_once_gone(self, **_):
        if self.gone is not None:
            raise SandboxGone(self.gone)

    def line(self) -> str:
        return API_CALLS + ", ".join(f"{stack} {n}" for stack, n in self.per_stack.items())


def next_page_token(page: dict, seen: set, operation: str, key: str = "NextToken"):
    """The page's next-page token (None: the last page), added to seen, the tokens this paging has had
    so far. One had before (the token asked with, or any earlier one: A, B, A) would be paged without
    end: PaginationError. botocore's paginators catch only the token asked with (A, A), so every paging
    loop here reads its pages with this: by hand, or a paginator's through checked_pages."""
    token = page.get(key)
    if token is not None:
        if token in seen:
            raise PaginationError(
                message=f"{operation} answered a next-page token it had given before ({printable(token, one_line=True)[:60]})"
            )
        seen.add(token)
    return token


def checked_pages(pages, operation: str, key: str = "NextToken"):
    """A botocore paginator's pages (its PageIterator), each one's next-page token checked as
    next_page_token does before the next page is asked for."""
    seen = set()
    for page in pages:
        next_page_token(page, seen, operation, key)
        yield page


def error_code(error) -> str:
    """An AWS error answer's code, or the botocore error's class name (ReadTimeoutError, ...)."""
    return answer_of(error).get("Code", "") if isinstance(error, ClientError) else type(error).__name__


def error_message(error) -> str:
    """An AWS error answer's message; "" for none."""
    return (answer_of(error).get("Message") or "") if isinstance(error, ClientError) else ""


def answer_of(error: ClientError) -> dict:
    """The Error element of an AWS error answer: none in one that is no AWS error (a proxy's HTML 403, which botocore
    parses into a ClientError all the same)."""
    return error.response.get("Error") or {}


# SSM's answer to GetParameter and DeleteParameter of a parameter not there, "ParameterNotFound: The parameter couldn't
# be found": https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_GetParameter.html
# https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DeleteParameter.html
PARAMETER_NOT_FOUND = "ParameterNotFound"


def not_found(error: ClientError) -> bool:
    """A change set or stack not there. DescribeChangeSet's not-found error is ChangeSetNotFound (botocore's model: shape
    ChangeSetNotFoundException, code ChangeSetNotFound; startswith takes either):
    https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_DescribeChangeSet.html
    A stack not there: "If the stack doesn't exist, a ValidationError is returned"; its message's "does not exist" is
    a wording that page does not give:
    https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_DescribeStacks.html"""
    code, message = error_code(error), error_message(error)
    return code.startswith("ChangeSetNotFound") or (code == "ValidationError" and "does not exist" in message)


def sandbox_gone(error, env) -> bool:
    """On the sandbox, a refused connection: its server is gone, and every stack and lock with it (the
    emulator keeps them in memory), so there is nothing left to follow, stop or free. A paused server
    still takes connections (its read times out): its stacks are there."""
    return env == SANDBOX_ENV and isinstance(error, EndpointConnectionError | SandboxGone)


# What reading an answer that lacks a field the tool reads raises (one the API's model leaves optional and
# AWS sends in practice, such as a stack's StackId, or a malformed emulator's answer): said, never a traceback.
UNREADABLE = (KeyError, IndexError, TypeError, AttributeError, ValueError)  # ValueError: (found,) = an empty list


def unread_answer(error) -> str:
    """An answer the tool could not read (UNREADABLE), short, for a warning whose run goes on."""
    return f"an answer it could not read: {type(error).__name__} {printable(str(error), one_line=True)[:100]}"


def unreadable(error) -> str:
    """What stopped the run, with the last line of the project's own code it passed (not a library's in .venv):
    an answer the tool could not read, or a bug of the tool's, which the line tells apart."""
    ours = [
        frame
        for frame in traceback.extract_tb(error.__traceback__)
        if Path(frame.filename).is_relative_to(ROOT) and not Path(frame.filename).is_relative_to(ROOT / ".venv")
    ]
    where = f", at {Path(ours[-1].filename).relative_to(ROOT)}:{ours[-1].lineno}" if ours else ""
    what = printable(" ".join(f"{type(error).__name__}: {error}".split())[:200], one_line=True)
    return f"{what}{where}: an AWS answer without what this tool reads, or a bug of the tool's (worth reporting with this line)"


def where_things_stand(env, command) -> str | None:
    """The next step after most errors: make status, but not for make status itself, which met the error."""
    return None if command == "status" else f"see where things stand: make status ENV={env}"


def explain(error, env, command=None) -> str:
    """One line for an AWS or botocore error, or an answer the tool could not read (UNREADABLE), with what to do
    next: where things stand (make status), but for make status itself, which met the error."""
    if isinstance(error, UNREADABLE):
        then = where_things_stand(env, command)
        return f"error: {unreadable(error)}" + (f"; {then}" if then else "")
    if isinstance(error, NoCredentialsError):
        # the emulator runs no containers and no release: make task and make continue refuse it (scripts/deploy/__init__.py, commands.py)
        rehearse = (
            ""
            if command in ("task", "continue")
            else ", or rehearse on the local sandbox: make sandbox, then the same command with ENV=sandbox"
        )
        # AWS_ENDPOINT_URL names an emulator (README, Credentials): one that takes any keys, as moto does
        emulator = os.environ.get("AWS_ENDPOINT_URL")
        keys = (
            f"; the emulator at AWS_ENDPOINT_URL={printable(emulator, one_line=True)} may take any: AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing"
            if emulator
            else ""
        )
        return f"error: no AWS credentials found for ENV={env}: set AWS_PROFILE (or run `aws sso login`){keys}{rehearse}"
    where = (
        "is the sandbox running? make sandbox-status; one started again (make sandbox) is empty, and make deploy YES=1 creates every layer again"
        if env == SANDBOX_ENV
        else "check the network, or AWS_ENDPOINT_URL"
    )
    if isinstance(error, (ReadTimeoutError, ConnectTimeoutError)):
        if env == SANDBOX_ENV:  # it took the connection: a server paused or busy, its stacks still there
            where = "is the sandbox paused or busy? make sandbox-status says whether it answers; once it does, the same command continues"
        return f"error: {error.kwargs.get('endpoint_url')} did not answer in time, {MAX_ATTEMPTS} tries: {where}"
    if isinstance(error, SandboxGone):
        error = error.args[0]
    if isinstance(error, EndpointConnectionError):
        return f"error: cannot reach {error.kwargs.get('endpoint_url')} ({MAX_ATTEMPTS} tries): {where}"
    if isinstance(error, ResponseParserError):
        # Whatever answered is no AWS API: a proxy's page, another server on the port, a JSON error.
        endpoint = os.environ.get("AWS_ENDPOINT_URL") or "the AWS endpoint"
        text = str(error)
        said = text[text.find("b'") :] if "b'" in text else text
        said = printable(" ".join(said.split())[:200], one_line=True)
        return f"error: {endpoint} answered with something that is not an AWS API response: {said}; is that the endpoint you meant?"
    if isinstance(error, PaginationError):  # AWS's side (or an emulator's): asking again may not meet it
        text = printable(" ".join(str(error).split())[:300], one_line=True).removeprefix("Error during pagination: ")
        then = where_things_stand(env, command)
        return f"error: {text}: paging on would never end, so the run stopped; run it again" + (f", and {then}" if then else "")
    if isinstance(error, ClientError):
        code, message = error_code(error), error_message(error)
        if message.lstrip().startswith("<"):  # an HTTP error page (a proxy's, an emulator's crash), not an AWS error
            title = re.search(r"<title>(.*?)</title>", message, re.IGNORECASE | re.DOTALL)
            message = f"{' '.join(title.group(1).split()) if title else 'an HTML page'} (an HTML error page, not an AWS error answer)"
        permission = code.startswith(PERMISSION_ERRORS)
        credentials = code.startswith(CREDENTIAL_ERRORS) and not permission
        hint = "check the credentials: aws sts get-caller-identity" if credentials else where_things_stand(env, None)
        if permission:
            hint = "the caller may not do it (its IAM policy, a permissions boundary or an organization's SCP): aws sts get-caller-identity names it"
        elif command == "status" and env == SANDBOX_ENV:  # no console shows the emulator's stacks
            hint = (
                "the sandbox's emulator failed it (its log: .sandbox/server.log); make sandbox-stop && make sandbox starts it "
                "afresh, empty (make deploy YES=1 then creates every layer again)"
            )
        elif command == "status" and not credentials:
            # botocore counts the retries an answer took (ResponseMetadata.RetryAttempts): one it retried (throttling,
            # a server error) may pass. https://docs.aws.amazon.com/boto3/latest/guide/retries.html
            retried = error.response.get("ResponseMetadata", {}).get("RetryAttempts", 0)
            again = f"answered so {retried + 1} times: run it again in a few minutes, or " if retried else ""
            hint = f"{again}see the stacks in the CloudFormation console"
        # AWS's message quotes what it was given and what others named (a resource, a policy): escaped, on one line
        return f"error: {error.operation_name}: {printable(code, one_line=True)}: {printable(message, one_line=True)}; {hint}"
    text = printable(" ".join(str(error).split())[:300], one_line=True)
    return f"error: {text}; check the AWS configuration (profile, region, AWS_ENDPOINT_URL)"
