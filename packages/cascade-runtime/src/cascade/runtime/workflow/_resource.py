"""Resources a run sets up for its tasks: ``@resource`` generator functions, the ``inject(name)``
marker that asks for one, and the errors of both.

A resource is set up once per run, on the first task that needs it, and torn down at the run's
end (the per-run side lives in the runtime's ``_run_resources.py``). A task asks for one by an
``inject("name")`` default in its signature, or by an ``inject("name")`` passed where it is
called; a resource asks for another the same way, in its generator's signature.
"""

from __future__ import annotations

import importlib
import inspect
import threading
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from typing import Any, overload

from .._errors import CascadeRuntimeError

__all__ = [
    "Inject",
    "InjectDefault",
    "Resource",
    "ResourceError",
    "ResourceFailed",
    "ResourceMissing",
    "inject",
    "inject_defaults",
    "WorkerMade",
    "resource",
]


class ResourceError(CascadeRuntimeError, TypeError):
    """A resource defined or asked for wrongly: ``@resource`` on a function that does not
    yield, a resource parameter that no inject fills and has no default, ``inject`` of
    something that is no name, ``Engine.register`` of something that is no resource."""


class ResourceMissing(CascadeRuntimeError, LookupError):
    """A run needs a resource the engine cannot give: no resource of that name is registered,
    or resources inject each other in a cycle. Raised before any task runs, naming the task
    (or resource) that asks and the resource."""


class ResourceFailed(CascadeRuntimeError, RuntimeError):
    """A resource's setup raised, or its generator ended without yielding: every task that
    needs it fails with this error (``resource``: its name; ``__cause__``: what the setup
    raised), without automatic retries: the setup runs once per run."""

    def __init__(self, resource: str, detail: str) -> None:
        self.resource = resource
        self.detail = detail
        super().__init__(f"resource {resource!r} failed at its setup: {detail}")

    def __reduce__(self) -> tuple[Any, ...]:  # crosses from worker processes whole
        return (type(self), (self.resource, self.detail))


class Inject:
    """The marker :func:`inject` returns: this argument is the value of the resource ``name``."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Inject) and other.name == self.name

    def __hash__(self) -> int:
        return hash((Inject, self.name))

    def __repr__(self) -> str:
        return f"inject({self.name!r})"


def inject(name: str) -> Any:
    """The value of the resource registered as ``name``, in the task that gets it.

    As a default in a task's signature (``def get_user(user_id, db=inject("database"))``),
    or passed where the task is called (``get_user(123, db=inject("database"))``, also
    inside a list, tuple or dict argument); a resource's generator may take other resources
    the same way. The engine sets the resource up on first use in a run and passes its value;
    a value passed for that parameter instead is taken as it is. Typed ``Any``, so that
    ``db: Connection = inject("database")`` type-checks."""
    if not isinstance(name, str) or not name:
        raise ResourceError(f"inject takes a resource's name (a non-empty str), not {name!r}")
    return Inject(name)


class InjectDefault:
    """A parameter of a function whose default is an :class:`Inject`: its ``param`` name, its
    ``position`` among the positional parameters (``-1``: keyword-only), the ``resource``."""

    __slots__ = ("param", "position", "resource")

    def __init__(self, param: str, position: int, resource: str) -> None:
        self.param = param
        self.position = position
        self.resource = resource

    def given(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
        """Whether a call with ``args`` and ``kwargs`` gives this parameter a value."""
        return 0 <= self.position < len(args) or self.param in kwargs


_NONE: tuple[InjectDefault, ...] = ()


def inject_defaults(fn: Callable[..., Any], what: str) -> tuple[InjectDefault, ...]:
    """The parameters of ``fn`` whose defaults are injects (``what`` names it in an error).

    Looks at ``__defaults__`` and ``__kwdefaults__`` first: a function without an inject
    default (most) costs no signature. A positional-only parameter cannot take one (the
    engine passes resources by name): :class:`ResourceError`."""
    defaults = getattr(fn, "__defaults__", None)
    kwdefaults = getattr(fn, "__kwdefaults__", None)
    if not (defaults and Inject in map(type, defaults)) and not (
        kwdefaults and Inject in map(type, kwdefaults.values())
    ):
        return _NONE
    found = []
    for position, param in enumerate(inspect.signature(fn).parameters.values()):
        if type(param.default) is not Inject:
            continue
        if param.kind is param.POSITIONAL_ONLY:
            raise ResourceError(
                f"{what}: parameter {param.name} is positional-only; an inject default needs "
                "a parameter that can be given by name"
            )
        keyword_only = param.kind is param.KEYWORD_ONLY
        found.append(
            InjectDefault(param.name, -1 if keyword_only else position, param.default.name)
        )
    return tuple(found)


class Resource:
    """What :func:`resource` makes of a generator function: ``name`` (how tasks inject it),
    ``fn``, whether it is an async generator (``is_async``), the resources its generator
    injects (``injects``), and ``per_worker``: whether a worker process makes it for the tasks
    it runs (see :func:`resource`). Register it on an engine: :meth:`Engine.register
    <cascade.runtime.Engine.register>`."""

    __slots__ = ("fn", "injects", "is_async", "name", "per_worker")

    def __init__(
        self,
        fn: Callable[..., Iterator[Any]] | Callable[..., AsyncIterator[Any]],
        name: str,
        per_worker: bool = False,
    ) -> None:
        self.fn = fn
        self.name = name
        self.per_worker = bool(per_worker)
        self.is_async = inspect.isasyncgenfunction(fn)
        if not self.is_async and not inspect.isgeneratorfunction(fn):
            raise ResourceError(
                f"resource {name}: {getattr(fn, '__qualname__', fn)!r} must be a generator "
                "function (sync or async): its value is what it yields, its teardown what "
                "follows the yield"
            )
        self.injects = inject_defaults(fn, f"resource {name}")
        for param in inspect.signature(fn).parameters.values():
            if param.default is param.empty and param.kind not in (
                param.VAR_POSITIONAL,
                param.VAR_KEYWORD,
            ):
                raise ResourceError(
                    f"resource {name}: parameter {param.name} has no default; a resource "
                    "takes only other resources (inject defaults) and defaults"
                )
        if self.per_worker:
            _check_per_worker(self)

    def in_worker(self) -> WorkerMade:
        """What a task sent to a worker process gets in its place: made there (per_worker)."""
        return WorkerMade(self.fn.__module__, self.fn.__qualname__, self.name)

    def __repr__(self) -> str:
        return f"<Resource {self.name}>"


def _check_per_worker(made: Resource) -> None:
    """:class:`ResourceError` unless a worker process can make ``made`` by itself: a sync
    generator function it can import by name, that injects no other resource."""
    where = getattr(made.fn, "__qualname__", "")
    if made.is_async:
        raise ResourceError(
            f"resource {made.name}: per_worker=True takes a sync generator function (a worker "
            "process calls it outside any event loop)"
        )
    if made.injects:
        raise ResourceError(
            f"resource {made.name}: per_worker=True takes no other resource (a worker process "
            f"makes it by itself); it injects {', '.join(d.resource for d in made.injects)}"
        )
    if not where or "<locals>" in where or not getattr(made.fn, "__module__", None):
        raise ResourceError(
            f"resource {made.name}: per_worker=True needs a function a worker process can "
            "import: defined at the top level of a module (or of a script run as __main__)"
        )


class WorkerMade:
    """A per-worker resource as the engine sends it to a worker process: its function's name,
    which the worker loads as the resource's value, made there once per process."""

    __slots__ = ("module", "name", "qualname")

    def __init__(self, module: str, qualname: str, name: str) -> None:
        self.module = module
        self.qualname = qualname
        self.name = name

    def __reduce__(self) -> tuple[Any, ...]:
        return (made_here, (self.module, self.qualname, self.name))

    def __repr__(self) -> str:
        return f"<resource {self.name!r}, made in its worker>"


_made: dict[tuple[str, str], Any] = {}  # this process's per-worker resources' values
_making = threading.Lock()  # a Dask worker runs tasks in threads: each made once


def made_here(module: str, qualname: str, name: str) -> Any:
    """The value of the per-worker resource ``module.qualname`` in this process: made by its
    first task here (what its generator yields), torn down when the process exits (what
    follows its yield). Called where a task's arguments are loaded in a worker process."""
    from multiprocessing.util import Finalize  # in workers only

    key = (module, qualname)
    with _making:
        if key in _made:
            return _made[key]
        found: Any = importlib.import_module(module)
        for part in qualname.split("."):
            found = getattr(found, part)
        fn: Any = found.fn if isinstance(found, Resource) else found  # a sync generator function
        try:
            generator: Generator[Any, None, None] = fn()
            value = next(generator)
        except StopIteration:
            raise ResourceFailed(name, "its generator ended without yielding a value") from None
        except Exception as exc:
            raise ResourceFailed(name, f"{type(exc).__name__}: {exc}") from exc
        _made[key] = value
        # at the process's exit: a worker of a pool ends by os._exit, which skips atexit
        Finalize(None, _tear_down, (generator,), exitpriority=10)
        return value


def _tear_down(generator: Generator[Any, None, None]) -> None:
    try:
        next(generator)
    except StopIteration:
        return
    generator.close()


@overload
def resource(
    fn: Callable[..., Iterator[Any]] | Callable[..., AsyncIterator[Any]], /
) -> Resource: ...


@overload
def resource(
    *, name: str | None = None, per_worker: bool = False
) -> Callable[[Callable[..., Any]], Resource]: ...


def resource(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    per_worker: bool = False,
) -> Resource | Callable[[Callable[..., Any]], Resource]:
    """Make a generator function a resource: ``@resource`` or ``@resource(name="db")``
    (default: the function's name).

    What it yields before its first ``yield`` is the setup, run once per run on the first
    task that needs it; the value it yields is what every task of the run that injects it
    gets; what follows the ``yield`` is the teardown, run at the run's end whatever its
    outcome. A sync generator runs in the run's threads, an async one on its loop. Not a
    generator function: :class:`ResourceError` (a ``TypeError``) naming it.

    ``per_worker=True``: a value that cannot be sent to a worker process (a database engine,
    a client, an open connection) is made there instead: a task that runs on a
    :class:`~cascade.runtime.ProcessExecutor` or a :class:`~cascade.runtime.DaskExecutor`
    gets the value its worker process made, by calling the generator once, at that worker's
    first such task (its teardown runs when the process exits); a task that runs in the
    engine's process (threads, the loop) gets the run's, as from any resource. It takes a
    sync generator function defined at the top level of a module, injecting no other
    resource (:class:`ResourceError` otherwise)."""
    if name is not None and (not isinstance(name, str) or not name):
        raise ResourceError(f"a resource's name is a non-empty str, not {name!r}")

    def make(f: Callable[..., Any]) -> Resource:
        return Resource(f, name or getattr(f, "__name__", None) or repr(f), per_worker)

    return make(fn) if fn is not None else make
