"""Saved states of the sandbox server, for the tests: POST <path>save/<name> keeps a deep copy of
every moto backend (what every service holds) and of moto's random numbers, in the server's memory;
POST <path>restore/<name> puts a copy of it back (404 when none was saved under the name).

A test that starts from every layer deployed restores that state rather than seed and deploy again
(tests/conftest.py deployed): about 15 ms of the server's CPU against 0.4 s of the two processes'.
With the random numbers put back as they were, what the test creates next gets the ids it would
have got after a deploy of its own. Between requests only: one in flight may see either state."""

import copy
import copyreg
import threading
from collections import defaultdict

from moto.core.base_backend import BackendDict, backend_lock
from moto.core.common_models import BaseModel
from moto.moto_api._internal import mock_random
from moto.ssm.models import ParameterDict

# What deepcopy cannot copy by itself: ECR's registry holds a reentrant lock, copied as a new, free one
# (S3's objects drop theirs when copied); SSM's parameters, a defaultdict whose class takes arguments its
# reduction does not give. Anything else that cannot be copied fails the save, in the server's log.
copyreg.pickle(type(threading.RLock()), lambda lock: (threading.RLock, ()))


def _parameters(state: dict) -> ParameterDict:
    made = ParameterDict.__new__(ParameterDict)
    defaultdict.__init__(made, list)
    made.__dict__.update(state)
    return made


copyreg.pickle(ParameterDict, lambda parameters: (_parameters, (dict(parameters.__dict__),), None, None, iter(parameters.items())))


def _models(model: type) -> set:
    """Every subclass of moto's BaseModel (model_data names only the first of a service's classes of one name)."""
    found = set()
    for subclass in model.__subclasses__():
        found |= {subclass} | _models(subclass)
    return found


def _copy(held: dict) -> dict:
    """BackendDict -> (its accounts' backends, its attributes: S3's keeps every bucket name's account),
    copied in one pass (a stack's resources are the same objects as the services' own, and stay so);
    the BackendDicts themselves, moto's module-level registries, are not copied. The copies are kept out
    of the lists moto keeps of every model it made: a reset closes each S3 object's buffer it finds there,
    the saved copies' too (they came back empty), and the lists grew with every restore."""
    tracked = [(model, len(model.instances_tracked)) for model in _models(BaseModel)]
    try:
        return copy.deepcopy(held, {id(registry): registry for registry in held})
    finally:
        for model, length in tracked:
            del model.instances_tracked[length:]


def _save() -> tuple:
    with backend_lock:
        held = {registry: (dict(registry), vars(registry)) for registry in BackendDict._instances}
        return _copy(held), mock_random.getstate()


def _restore(saved: tuple) -> None:
    held, random_state = saved
    held = _copy(held)
    with backend_lock:
        for registry in BackendDict._instances:
            if registry not in held:  # first used since the save: emptied as moto's reset does (S3's names freed)
                for backends in registry.values():
                    backends.reset()
            registry.clear()
        BackendDict._instances[:] = list(held)
        for registry, (accounts, attributes) in held.items():
            registry.update(accounts)
            vars(registry).update(attributes)
        mock_random.setstate(random_state)


def serving(app, path_prefix: str):
    """moto's WSGI application, with the two paths above in front of it (the sandbox's SAVED_STATES_PATH)."""
    saved = {}

    def application(environ, start_response):
        path = environ.get("PATH_INFO", "")
        action, _, name = path.removeprefix(path_prefix).partition("/")
        if not (path.startswith(path_prefix) and environ["REQUEST_METHOD"] == "POST" and action in ("save", "restore")):
            return app(environ, start_response)
        if action == "save":
            saved[name] = _save()
        elif name in saved:
            _restore(saved[name])
        else:
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [f"no state saved as {name!r}".encode()]
        start_response("204 No Content", [])
        return []

    return application
