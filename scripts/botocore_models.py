"""The botocore sessions of every tool and of the sandbox's server: botocore's data plus the models in
scripts/models/, one data loader per process, timestamps in UTC."""

import copy
import functools
from datetime import UTC, datetime
from pathlib import Path

import boto3
import botocore.handlers
import botocore.hooks
import botocore.loaders
import botocore.session
import botocore.utils

# botocore merges a service-2.sdk-extras.json found on its data path into the service's model: this
# adds the ECS API the pinned botocore predates (ContinueServiceDeployment, make continue) and the
# field that names a paused release's hook, so that calls and Stubber tests are checked against them.
MODELS = Path(__file__).resolve().parent / "models"


@functools.cache
def _data_loader(data_path: str | None) -> botocore.loaders.Loader:
    loader = botocore.loaders.create_loader(data_path)
    loader.search_paths.append(str(MODELS))
    return loader


@functools.cache
def _builtin_handlers(listed: tuple) -> botocore.hooks.HierarchicalEmitter:
    """botocore's built-in event handlers (listed: botocore.handlers.BUILTIN_HANDLERS), registered
    once per process; again if the list changes (moto adds one when it is imported)."""
    handlers = botocore.hooks.HierarchicalEmitter()
    botocore.session.Session(event_hooks=handlers)  # registers them on handlers
    return handlers


def botocore_session(session_vars=None) -> botocore.session.Session:
    """A botocore session that reads the models in MODELS too. Every session of the process shares
    one data loader, which caches the service models it has read: a new session would read and
    parse them again (a tenth of a second each; EC2's takes 0.3 s). Each starts from a copy of
    botocore's built-in handlers, as each client does, instead of registering the 200 of them again
    (4 ms a session: the tests make hundreds). session_vars: botocore's, such as SANDBOX_SESSION_VARS."""
    handlers = copy.copy(_builtin_handlers(tuple(botocore.handlers.BUILTIN_HANDLERS)))
    core = botocore.session.Session(session_vars, event_hooks=handlers, include_builtin_handlers=False)
    core.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=utc_timestamp)
    core.register_component("data_loader", _data_loader(core.get_config_variable("data_path")))
    return core


def utc_timestamp(value) -> datetime:
    """A time botocore reads, in UTC. botocore reads a JSON API's (ECS, KMS, Logs: epoch seconds) into
    the machine's zone, and CloudFormation's (ISO 8601, Z) in UTC: the tools print every one in UTC."""
    return botocore.utils.parse_timestamp(value).astimezone(UTC)


def make_session(session_vars=None, **kwargs) -> boto3.session.Session:
    """A boto3 session on botocore_session()."""
    core = botocore_session(session_vars)
    session = boto3.session.Session(botocore_session=core, **kwargs)
    paths = core.get_component("data_loader").search_paths
    paths[:] = dict.fromkeys(paths)  # each boto3 Session appends boto3's data directory again
    return session
