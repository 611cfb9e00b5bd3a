"""``@task``: functions turned into factories of lazy results, the nodes of a run's graph."""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import itertools
import math
import random
from collections.abc import Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Generic, Literal, TypeAlias, TypeVar, cast, overload

from typing_extensions import ParamSpec

from cascade.interfaces import CascadeError

from .._errors import ExecutorError
from ._amounts import Amounts, amount_of
from ._cache_policy import Cache, CachePolicy, cache_of
from ._param import Param
from ._resource import inject_defaults
from ._router import Router

__all__ = [
    "ALWAYS",
    "DEFAULT_HOLD_TIMEOUT",
    "ChainError",
    "LazyResult",
    "MapError",
    "MappedLazyResult",
    "Mode",
    "OnFailure",
    "RetryPolicy",
    "Task",
    "TaskOptions",
    "Unmapped",
    "check_hold_options",
    "pipeline",
    "sequence",
    "task",
    "task_ids_unspent",
    "unmapped",
]

Mode: TypeAlias = Literal["blocking", "compute"]
"""What a plain-function task's work is: ``blocking`` (I/O, the default: the engine's default
executor) or ``compute`` (CPU work: the engine's compute executor, see :func:`task`)."""

OnFailure: TypeAlias = Literal["fail", "hold"]
"""What a task's last failed attempt leads to: ``fail`` (its dependents skipped) or ``hold``
(held for a decision: retry, skip, complete or fail)."""

DEFAULT_HOLD_TIMEOUT = 86_400.0
"""Seconds a held task waits for a decision before its hold's default is taken (24 h)."""
DEFAULT_DECISIONS: tuple[str, ...] = ("fail", "skip", "retry")
"""What a failed task's hold may take at its deadline (``complete`` needs a result nobody gave;
a gate's may take ``complete``: its approval, ``true``)."""

P = ParamSpec("P")
R = TypeVar("R")

_ids = itertools.count(1)
ALWAYS: Any = True  # a lazy result's condition when run_if was not called


@contextlib.contextmanager
def task_ids_unspent() -> Iterator[None]:
    """The task ids the lazy results made inside take are taken again after it: a graph built
    only to be looked at (a served function's, for its Params, when serving starts) leaves
    the ids of the runs that follow as they would have been."""
    global _ids
    first = next(_ids)
    _ids = itertools.count(first)
    try:
        yield
    finally:
        _ids = itertools.count(first)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how fast a task is retried.

    ``max_attempts`` counts the first try (1 = no retry); attempt ``n`` (from
    2) starts ``delay * backoff ** (n - 2)`` seconds after the previous one
    failed, but never more than ``max_delay`` seconds (default 600, as Celery's).
    ``jitter`` (0 to 1) takes up to that fraction off each delay at random, so that
    tasks failing together do not retry together. ``retry_on``: the exceptions an
    attempt is retried on (every failure by default); another fails the task at
    once (or holds it, under ``on_failure="hold"``).
    """

    max_attempts: int = 1
    delay: float = 0.0
    backoff: float = 1.0
    max_delay: float = 600.0
    jitter: float = 0.0
    retry_on: tuple[type[BaseException], ...] = (BaseException,)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, not {self.max_attempts}")
        if not (0 <= self.delay < math.inf and 1 <= self.backoff < math.inf):
            raise ValueError("delay must be finite and >= 0, backoff finite and >= 1")
        if not 0 <= self.max_delay < math.inf:
            raise ValueError(f"max_delay must be finite and >= 0, not {self.max_delay}")
        if not 0 <= self.jitter <= 1:
            raise ValueError(f"jitter must be between 0 and 1, not {self.jitter}")
        retry_on: Any = self.retry_on  # as given: a tuple, the annotation says
        if (
            not isinstance(retry_on, tuple)
            or not retry_on
            or not all(
                isinstance(kind, type) and issubclass(kind, BaseException) for kind in retry_on
            )
        ):
            raise ValueError(f"retry_on must be exception classes, not {retry_on!r}")

    def delay_before(self, attempt: int) -> float:
        """Seconds to wait before ``attempt`` (2 for the first retry)."""
        if self.delay == 0:
            return 0.0
        try:
            delay = min(float(self.delay * self.backoff ** (attempt - 2)), self.max_delay)
        except OverflowError:
            delay = self.max_delay
        if self.jitter:
            delay -= delay * self.jitter * random.random()
        return delay

    def retries(self, failure: BaseException) -> bool:
        """Whether an attempt that raised ``failure`` is retried (attempts left)."""
        return isinstance(failure, self.retry_on)


def check_hold_options(
    on_failure: object, hold_timeout: object, hold_default: object, *, unset_ok: bool
) -> None:
    """Raise ``ValueError`` naming the parameter whose value is not one its options take
    (``None`` is allowed with ``unset_ok``: a task's, meaning "the engine's")."""
    if not (unset_ok and on_failure is None) and on_failure not in ("fail", "hold"):
        raise ValueError(f"on_failure must be 'fail' or 'hold', not {on_failure!r}")
    if not (unset_ok and hold_timeout is None) and not (
        isinstance(hold_timeout, (int, float))
        and not isinstance(hold_timeout, bool)
        and 0 < hold_timeout < math.inf
    ):
        raise ValueError(f"hold_timeout must be finite seconds above 0, not {hold_timeout!r}")
    if not (unset_ok and hold_default is None) and hold_default not in DEFAULT_DECISIONS:
        raise ValueError(
            f"hold_default must be one of {', '.join(DEFAULT_DECISIONS)}, not {hold_default!r}"
        )


def check_timeout(timeout: object) -> None:
    """``ValueError`` unless ``timeout`` is ``None`` or finite seconds above 0."""
    if timeout is not None and not (
        isinstance(timeout, (int, float))
        and not isinstance(timeout, bool)
        and 0 < timeout < math.inf
    ):
        raise ValueError(f"timeout must be finite seconds above 0, not {timeout!r}")


def check_executor(
    executor: object, fn: Callable[..., Any], name: str, mode: object = "blocking"
) -> None:
    """:class:`ExecutorError` unless ``executor`` is ``None`` or a name, given to a plain
    function (a coroutine function runs on the engine's loop), and ``mode`` is ``blocking``, or
    ``compute`` for a plain function."""
    if mode not in ("blocking", "compute"):
        raise ExecutorError(f"task {name}: mode must be 'blocking' or 'compute', not {mode!r}")
    if mode == "compute" and inspect.iscoroutinefunction(fn):
        raise ExecutorError(
            f"task {name}: mode='compute' is for plain functions; a coroutine task runs on the "
            "engine's event loop"
        )
    if executor is None:
        return
    if not isinstance(executor, str) or not executor:
        raise ExecutorError(f"task {name}: executor must be an executor's name, not {executor!r}")
    if inspect.iscoroutinefunction(fn):
        raise ExecutorError(
            f"task {name}: executor={executor!r} is for plain functions; a coroutine task runs "
            "on the engine's event loop"
        )


def _requested(amounts: dict[str, Any]) -> Amounts | None:
    """The pairs of ``with_constraints(**amounts)`` (``None``: none), each number checked now;
    a lazy result or a :class:`Param` when known (see :func:`amount_of`)."""
    for resource, value in amounts.items():
        if not isinstance(value, (LazyResult, Param)):
            amount_of(resource, value)
    return tuple(amounts.items()) or None


@dataclass(frozen=True, kw_only=True)
class TaskOptions:
    """A task's options, checked once when made: what :func:`task` takes (see it), plus the
    ``resources`` and ``cache`` only its ``with_constraints`` and ``with_cache`` give. ``None``:
    the engine's (``on_failure``, ``hold_*``), no limit (``timeout``), the default executor."""

    name: str | None = None
    retry: RetryPolicy | None = None
    on_failure: OnFailure | None = None
    hold_timeout: float | None = None
    hold_default: str | None = None
    timeout: float | None = None
    executor: str | None = None
    resources: Amounts | None = None
    cache: Cache | None = None
    mode: Mode = "blocking"
    pure: bool = False
    repeatable: bool = True

    def __post_init__(self) -> None:
        check_hold_options(self.on_failure, self.hold_timeout, self.hold_default, unset_ok=True)
        check_timeout(self.timeout)
        for seconds in ("hold_timeout", "timeout"):
            value = getattr(self, seconds)
            if value is not None:
                object.__setattr__(self, seconds, float(value))
        object.__setattr__(self, "pure", bool(self.pure))
        object.__setattr__(self, "repeatable", bool(self.repeatable))

    def replace(self, **changed: Any) -> TaskOptions:
        """These options with ``changed`` ones, checked again."""
        return dataclasses.replace(self, **changed)


_TASK_KEYWORDS = frozenset(field.name for field in dataclasses.fields(TaskOptions)) - {
    "resources",
    "cache",
}  # what task() takes: the with_ methods give the others


class Task(Generic[P, R]):
    """A function made into a task by :func:`task`.

    Calling it does not run the function: it returns a :class:`LazyResult`
    that an :class:`~cascade.runtime.Engine` runs once its arguments are ready.
    ``options``: its :class:`TaskOptions` (``on_failure``, ``hold_timeout``, ``hold_default``
    and ``executor``: see :func:`task`; ``None``: the engine's), each also an attribute (a
    ``retry`` of ``None`` the :class:`RetryPolicy` of one attempt). ``resources``: what each
    call asks of the engine's system resources (see :meth:`with_constraints`).
    """

    awaits_approval = False
    """Whether it is a gate (:func:`~cascade.runtime.gate`): held from its start for a decision,
    no attempt run."""

    def __init__(
        self,
        fn: Callable[P, Coroutine[Any, Any, R]] | Callable[P, R],
        options: TaskOptions | None = None,
    ) -> None:
        options = options or TaskOptions()
        self.options = options
        self.fn = fn
        self.name = options.name or getattr(fn, "__name__", None) or repr(fn)
        check_executor(options.executor, fn, self.name, options.mode)
        self.executor = options.executor
        self.mode = options.mode
        # where an attempt runs is not the default executor: one test a task in a run
        self.elsewhere = options.executor is not None or options.mode == "compute"
        self.pure = options.pure
        self.repeatable = options.repeatable
        self.retry = options.retry or RetryPolicy()
        self.on_failure = options.on_failure
        self.hold_timeout = options.hold_timeout
        self.hold_default = options.hold_default
        self.timeout = options.timeout
        self.resources = options.resources
        self.cache = options.cache  # with_cache's, else None: one attribute test a task in a run
        self.is_async = inspect.iscoroutinefunction(fn)
        # the parameters whose defaults are injects: found once, here, never per call
        self.injects = inject_defaults(fn, f"task {self.name}")
        # any of these: looked at when a graph is built (most tasks have none: one test)
        self.special = bool(
            self.injects
            or options.executor is not None
            or options.cache is not None
            or self.awaits_approval
        )
        self.__doc__ = fn.__doc__

    def with_retry(
        self,
        max_attempts: int = 3,
        delay: float = 0.0,
        backoff: float = 2.0,
        max_delay: float = 600.0,
        *,
        jitter: float = 0.0,
        retry_on: type[BaseException] | tuple[type[BaseException], ...] = BaseException,
    ) -> Task[P, R]:
        """A copy of this task, tried up to ``max_attempts`` times (see :class:`RetryPolicy`);
        its other options kept."""
        retry_on = retry_on if isinstance(retry_on, tuple) else (retry_on,)
        policy = RetryPolicy(max_attempts, delay, backoff, max_delay, jitter, retry_on)
        return self._copy(retry=policy)

    def with_timeout(self, seconds: float) -> Task[P, R]:
        """A copy of this task whose attempts may take at most ``seconds`` each: one past it is
        cancelled (a plain function's thread runs on, its result discarded) and fails with
        ``TimeoutError``, then is retried or held as the task's options say; its other options
        kept."""
        return self._copy(timeout=seconds)

    def with_cache(
        self, policy: CachePolicy | None = None, *, expire: float | timedelta | None = None
    ) -> Task[P, R]:
        """A copy of this task whose result is taken from a cache when it has one, instead of
        running it; its other options kept.

        ``policy`` ``None``: the engine's results store (``Engine(results=...)``; without one,
        a run of it raises :class:`~cascade.runtime.CacheError` at its start): the result kept
        by any earlier run for the same fingerprint (name, code, inputs), proven as a rerun
        proves it and not older than ``expire`` (seconds or a ``timedelta``; ``None``: any
        age). The task then ends ``COMPLETED`` at once, ``cached`` from that run; else it
        runs and its result is kept as usual. A :class:`~cascade.runtime.CachePolicy` (such
        as :class:`~cascade.runtime.FileExistenceCache`): its ``check`` says whether the task
        runs, its ``save`` is told each result. A bad value raises
        :class:`~cascade.runtime.CacheError` naming it."""
        return self._copy(cache=cache_of(policy, expire))

    def with_constraints(self, **amounts: Any) -> Task[P, R]:
        """A copy of this task whose calls each ask for ``amounts`` of the engine's system
        resources (``Engine(system_resources=...)``): ``gpu_slots=1, memory_gb=16``. Each
        amount is a number of at least 0, or a lazy result or a
        :class:`~cascade.runtime.Param` that gives one (the task waits for it). An attempt
        starts only when every amount fits in what the attempts running leave free, holds
        them while it runs and gives them back when it ends. A resource the engine has no
        capacity for, or an amount above its capacity, fails the task when it would start.
        These amounts replace the task's; none (``with_constraints()``) asks for nothing.
        Its other options kept. :class:`CapacityError` names an amount written here that is
        not a number of at least 0."""
        return self._copy(resources=_requested(amounts))

    def with_executor(self, name: str | None) -> Task[P, R]:
        """A copy of this task that runs on the engine's executor named ``name``
        (``Engine(executors={"io": ThreadExecutor()})``; ``None``: its default executor), as
        ``@task(executor=name)`` says; its other options kept. A plain function only: a
        coroutine task runs on the engine's loop (:class:`~cascade.runtime.ExecutorError`)."""
        return self._copy(executor=name)

    def _copy(self, **changed: Any) -> Task[P, R]:
        return Task(self.fn, self.options.replace(**changed))

    def __call__(self, *args: Any, **kwargs: Any) -> LazyResult[R]:
        """A lazy result of this task on these arguments (lazy results among them allowed)."""
        return LazyResult(self, args, kwargs)

    def map(self, **kwargs: Any) -> MappedLazyResult[R]:
        """This task once per item: a lazy list of its results, in the items' order.

        Each keyword is mapped: a list or tuple, or a lazy result (or
        :class:`~cascade.runtime.Param`) whose value is one, all of one length; item ``i``
        takes the ``i``-th value of each. A keyword wrapped in :func:`unmapped` is given whole
        to every item. The items are made when the mapped values are known (an upstream
        task's result: when it completes), each a task of its own named ``<map's id>[i]``
        (its own attempts, hold and decision, its name this task's). A failed item fails only
        itself and what needs the list. Raises ``MapError`` (a ``ValueError``) when no keyword
        is mapped or two lists known now differ in length; one known later fails the map's
        task so.
        """
        return MappedLazyResult(self, kwargs)

    def __repr__(self) -> str:
        return f"<Task {self.name}>"


class MapError(CascadeError, ValueError):
    """A map's keywords are not lists of one length: nothing to map, or a value that is no
    list (or tuple), or two lengths; the message names the keyword."""


class Unmapped:
    """A value every item of a map takes whole: :func:`unmapped`."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __repr__(self) -> str:
        return f"unmapped({self.value!r})"


def unmapped(value: Any) -> Any:
    """Pass ``value`` (a value, a lazy result, a :class:`~cascade.runtime.Param`) whole to
    every item of :meth:`Task.map`, not one of its items to each."""
    return Unmapped(value)


def _mapped_values(name: str, value: Any) -> Sequence[Any]:
    if isinstance(value, (list, tuple, range)):
        return value
    raise MapError(
        f"map's keyword {name} must be a list or tuple (one value per item), "
        f"not {type(value).__name__}"
    )


class ChainError(CascadeError, TypeError, ValueError):
    """:meth:`LazyResult.after`, :func:`sequence` or :func:`pipeline` given what it cannot
    chain: no task at all, or something that is no lazy result (a task not called, a value)
    where one is needed, or a pipeline step that is not a callable; the message says which."""


class LazyResult(Generic[R]):
    """One call of a task, not run yet: a node of the graph.

    Lazy results among its arguments (also inside lists, tuples, sets and
    dicts) are its dependencies; the engine passes their results in their
    place. ``task_id`` is stable for the life of the object and unique in
    the process (``<name>-<n>``); ``name`` is the task's name; ``resources`` what it asks of
    the engine's system resources (:meth:`with_constraints`; ``None``: nothing); ``order``
    the lazy results it runs after without taking their results (:meth:`after`).
    """

    __slots__ = (
        "args",
        "condition",
        "jumps",
        "kwargs",
        "name",
        "order",
        "resources",
        "task",
        "task_id",
    )

    def __init__(
        self,
        task: Task[Any, R],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        task_id: str | None = None,
    ) -> None:
        self.task = task
        self.args = args
        self.kwargs = kwargs
        self.name = task.name
        self.task_id = task_id or f"{task.name}-{next(_ids)}"
        self.condition: Any = ALWAYS
        self.resources = task.resources
        self.order: tuple[LazyResult[Any], ...] = ()
        self.jumps: Any = None  # the JumpSelector a Jump it returns goes by (bind)

    def with_retry(
        self,
        max_attempts: int = 3,
        delay: float = 0.0,
        backoff: float = 2.0,
        max_delay: float = 600.0,
        *,
        jitter: float = 0.0,
        retry_on: type[BaseException] | tuple[type[BaseException], ...] = BaseException,
    ) -> LazyResult[R]:
        """This call tried up to ``max_attempts`` times, as :meth:`Task.with_retry` says (the
        task's other calls keep theirs). Returns this lazy result."""
        self.task = self.task.with_retry(
            max_attempts, delay, backoff, max_delay, jitter=jitter, retry_on=retry_on
        )
        return self

    def with_timeout(self, seconds: float) -> LazyResult[R]:
        """This call's attempts bounded to ``seconds`` each, as :meth:`Task.with_timeout` says
        (the task's other calls keep theirs). Returns this lazy result."""
        self.task = self.task.with_timeout(seconds)
        return self

    def with_cache(
        self, policy: CachePolicy | None = None, *, expire: float | timedelta | None = None
    ) -> LazyResult[R]:
        """This call's result taken from a cache when it has one, as :meth:`Task.with_cache`
        says (the task's other calls keep theirs). Returns this lazy result."""
        self.task = self.task.with_cache(policy, expire=expire)
        return self

    def with_executor(self, name: str | None) -> LazyResult[R]:
        """This call runs on the engine's executor named ``name`` (``None``: its default
        executor), as :meth:`Task.with_executor` says: ``load(db).with_executor("io")`` keeps
        one call on threads beside a process default (the task's other calls keep theirs; a
        name the engine does not have fails the run before it starts). Returns this lazy
        result."""
        self.task = self.task.with_executor(name)
        return self

    def with_constraints(self, **amounts: Any) -> LazyResult[R]:
        """This call asks for ``amounts`` of the engine's system resources, as
        :meth:`Task.with_constraints` says: ``train(data).with_constraints(gpu_slots=1,
        memory_gb=16)``; an amount may be a lazy result (this call waits for it) or a
        :class:`~cascade.runtime.Param`. Replaces what it asked before (the task's, or an
        earlier call's). Returns this lazy result."""
        self.resources = _requested(amounts)
        return self

    def run_if(self, condition: Any) -> LazyResult[R]:
        """Run this task only if ``condition`` is true when it would start: a lazy result (it
        waits for it), a :class:`~cascade.runtime.Param`, or a value. When false, the task is
        skipped (``condition false``), and so is what needs its result. Returns this lazy
        result; a second call replaces the condition."""
        self.condition = condition
        return self

    def after(self, *predecessors: LazyResult[Any]) -> LazyResult[R]:
        """Run this task only after each of ``predecessors`` (lazy results) completed, without
        taking their results: an order-only dependency, ``upload(path).after(mkdir(dir))``.
        It is a dependency like an argument in all else: the run needs each predecessor, and
        where one fails or is skipped this task is skipped (and so is what needs it).
        Adds to those given before; returns this lazy result. :class:`ChainError` names a
        predecessor that is no lazy result (such as a task not called)."""
        for predecessor in predecessors:
            _chained("after", predecessor)
        self.order = (*self.order, *predecessors)
        return self

    def __repr__(self) -> str:
        return f"<LazyResult {self.task_id}>"


def _chained(where: str, value: object) -> None:
    """:class:`ChainError` unless ``value`` is a lazy result."""
    if isinstance(value, LazyResult):
        return
    hint = (
        f" (the task {value.name} not called: {value.name}(...))" if isinstance(value, Task) else ""
    )
    raise ChainError(
        f"{where} takes lazy results (calls of a @task), not {type(value).__name__}: "
        f"{value!r}{hint}"
    )


def sequence(tasks: Sequence[LazyResult[Any]]) -> LazyResult[Any]:
    """Run ``tasks`` (lazy results) one after the other, in their order; the last one, which
    the run's result is when it is the target.

    Each runs after the one before it (:meth:`LazyResult.after`): none starts before the one
    before it completed, and where one fails or is skipped those after it are skipped, so
    the sequence stops at the first that did not complete. No task takes another's result
    (see :func:`pipeline` for that). :class:`ChainError` for an empty sequence or an item that
    is no lazy result."""
    items: list[LazyResult[Any]] | None = list(tasks) if isinstance(tasks, (list, tuple)) else None
    if items is None:
        raise ChainError(
            f"sequence takes a list of lazy results, not {type(tasks).__name__}: {tasks!r}"
        )
    if not items:
        raise ChainError("sequence needs at least one task")
    for item in items:
        _chained("sequence", item)
    for before, item in itertools.pairwise(items):
        item.after(before)
    return items[-1]


def pipeline(value: Any, steps: Sequence[Callable[[Any], Any]]) -> Any:
    """``value`` passed through ``steps`` in their order: each step (a task, or any callable
    that makes a lazy result, such as ``lambda x: save(x, to="out")``) is called on what the
    step before it made, ``pipeline(url, [fetch, parse, save])`` being
    ``save(parse(fetch(url)))``. ``value``: a value or a lazy result. Returns the last step's
    lazy result (``value`` itself when there are no steps). A step whose call has a condition
    (``lambda x: double(x).run_if(enabled)``) that is false when it would start is skipped and
    the next step takes what it was given, as the Cascade engine's pipelines pass a value past
    a skipped step. :class:`ChainError` for a step that is a lazy result (a task called, not
    the task) or not callable."""
    if not isinstance(steps, (list, tuple)):
        raise ChainError(
            f"pipeline takes a list of steps (tasks or callables), not {type(steps).__name__}"
        )
    for step in steps:
        if isinstance(step, LazyResult):
            raise ChainError(
                f"a pipeline step is a task or a callable, not a lazy result ({step!r}): "
                f"give the task, {step.name}, not a call of it"
            )
        if not callable(step):
            raise ChainError(
                f"a pipeline step is a task or a callable, not {type(step).__name__}: {step!r}"
            )
    current = value
    for at, step in enumerate(steps, 1):
        made = step(current)
        if at < len(steps) and isinstance(made, LazyResult) and made.condition is not ALWAYS:
            # the next step takes this one's result where it ran, else what it was given
            ran = made.condition
            selector = _holds(ran) if isinstance(ran, (LazyResult, Param)) else bool(ran)
            made = Router(selector=selector, routes={True: made, False: current})
        current = made
    return current


class MappedLazyResult(LazyResult[list[R]]):
    """A task mapped over lists (:meth:`Task.map`): a lazy list of its items' results.

    A lazy result like any: pass it to a task, map over it again, make it the run's target.
    Its ``kwargs`` are the map's keywords as given (:class:`Unmapped` ones wrapped);
    :meth:`with_retry`, :meth:`with_timeout` and the task's options apply to every item,
    :meth:`run_if` to the map as a whole.
    """

    __slots__ = ()

    def __init__(self, task: Task[Any, R], kwargs: dict[str, Any]) -> None:
        if not any(not isinstance(value, Unmapped) for value in kwargs.values()):
            raise MapError(f"{task.name}.map() needs a keyword to map over (a list, or a lazy one)")
        known = {
            name: len(_mapped_values(name, value))
            for name, value in kwargs.items()
            if not isinstance(value, (Unmapped, LazyResult, Param, Router))
        }
        if len(set(known.values())) > 1:
            lengths = ", ".join(f"{name}: {count}" for name, count in known.items())
            raise MapError(f"{task.name}.map()'s lists differ in length ({lengths})")
        # its task gives an item's result; the map's own is their list
        super().__init__(cast("Task[Any, list[R]]", task), (), kwargs)

    def items(self, values: dict[str, Any]) -> list[dict[str, Any]]:
        """Each item's keywords, given the map's keywords' values (``kwargs`` resolved, an
        :class:`Unmapped` one still wrapped); :class:`MapError` when they are no lists of one
        length."""
        whole: dict[str, Any] = {}
        mapped: dict[str, Sequence[Any]] = {}
        for name, value in values.items():
            if isinstance(value, Unmapped):
                whole[name] = value.value
            else:
                mapped[name] = _mapped_values(name, value)
        lengths = {name: len(items) for name, items in mapped.items()}
        if len(set(lengths.values())) > 1:
            said = ", ".join(f"{name}: {count}" for name, count in lengths.items())
            raise MapError(f"the lists mapped differ in length ({said})")
        names = list(mapped)
        return [
            {**whole, **dict(zip(names, row, strict=True))}
            for row in zip(*mapped.values(), strict=True)
        ]

    def __repr__(self) -> str:
        return f"<MappedLazyResult {self.task_id}>"


@overload
def task(fn: Callable[P, Coroutine[Any, Any, R]], /) -> Task[P, R]: ...


@overload
def task(fn: Callable[P, R], /) -> Task[P, R]: ...


@overload
def task(
    *,
    name: str | None = None,
    retry: RetryPolicy | None = None,
    on_failure: OnFailure | None = None,
    hold_timeout: float | None = None,
    hold_default: str | None = None,
    timeout: float | None = None,
    executor: str | None = None,
    mode: Mode = "blocking",
    pure: bool = False,
    repeatable: bool = True,
) -> _Decorator: ...


def task(fn: Callable[..., Any] | None = None, /, **options: Any) -> Task[Any, Any] | _Decorator:
    """Make a sync or async function a task: ``@task`` or ``@task(name="x", retry=...)``.

    Calling the task returns a :class:`LazyResult`; for an async function its
    result is what the coroutine returns. Arguments are not type-checked
    against the function's signature, as lazy results stand in for values.

    ``on_failure``: what its last failed attempt (its retries used up) leads to:
    ``"fail"`` (it fails, its dependents are skipped) or ``"hold"`` (it is held for a
    decision, :meth:`Engine.decide <cascade.runtime.Engine.decide>`, its dependents
    waiting, the run live); ``hold_timeout``: seconds a hold waits before ``hold_default``
    (``"fail"``, ``"skip"`` or ``"retry"``) is taken. ``None``: the engine's. ``timeout``:
    seconds an attempt may take (see :meth:`Task.with_timeout`; ``None``: no limit). A bad
    value raises ``ValueError`` naming the parameter. A parameter whose default is
    ``inject("name")`` gets that resource's value when a call gives it none (see
    :func:`~cascade.runtime.resource`). ``executor``: the name of the engine's executor a
    plain function runs on (``Engine(executors={"cpu": ProcessExecutor(2)})``; ``None``: the
    engine's default executor); a name the engine does not have is an
    :class:`~cascade.runtime.ExecutorError` before its run starts.

    ``mode``: what a plain function's work is. ``"blocking"`` (the default; I/O): the engine's
    default executor. ``"compute"`` (CPU work): the engine's executor named ``"compute"``
    (``Engine(executors={"compute": ProcessExecutor(4)})``) where it has one, else the first
    :class:`~cascade.runtime.ProcessExecutor` among its named executors, else its default
    executor. ``executor=`` given too wins over ``mode``. ``mode="compute"`` on a coroutine
    function, or a mode that is neither, is an :class:`~cascade.runtime.ExecutorError`.

    ``pure``: the task's result depends on its arguments only (no clock, no I/O, no state), so
    two calls of it on equal arguments (and equal upstream calls, condition and order) are one
    node of the graph, run once: equal as their canonical encodings are (the encoding result
    fingerprints use), a call holding a value without one (an object of a class of yours) being
    its own node. Not pure (the default): every call is a node of its own. A map
    (:meth:`Task.map`) is its own node either way.

    ``repeatable=False``: running it twice may do harm (a payment, an email). Where a server
    carries on a run whose engine died (``Engine.serve(on_engine_lost=...)``) and it may have
    been in flight then, it waits behind a gate, ``may_repeat``, for a person to decide
    whether it runs again (docs/durability.md).
    """
    unknown = sorted(options.keys() - _TASK_KEYWORDS)
    if unknown:
        raise TypeError(f"task() got an unexpected keyword argument {unknown[0]!r}")
    made = TaskOptions(**options)
    return _Decorator(made) if fn is None else Task(fn, made)


class _Decorator:
    """What ``@task(...)`` returns: applies the options to the function it decorates."""

    def __init__(self, options: TaskOptions) -> None:
        self.options = options

    @overload
    def __call__(self, fn: Callable[P, Coroutine[Any, Any, R]], /) -> Task[P, R]: ...

    @overload
    def __call__(self, fn: Callable[P, R], /) -> Task[P, R]: ...

    def __call__(self, fn: Callable[..., Any], /) -> Task[Any, Any]:
        return Task(fn, self.options)


@task(name="run_if")
def _holds(condition: Any) -> bool:
    """Whether a pipeline step's condition is true (the route its result or input takes)."""
    return bool(condition)
