"""What an engine hands its plain-function tasks to: an :class:`Executor`, and its part in one
run (:class:`RunExecutor`).

The engine stays the driver: the graph, the constraints, retries, holds, cancels, results and
telemetry are the run's; an executor only runs one attempt's body and gives back what it
returned or raised. Coroutine tasks never go to one: they run on the engine's loop.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast, runtime_checkable

if TYPE_CHECKING:
    from cascade.interfaces import Hold

    from .._tracing import AttemptSpan
    from ..constraints._capacity import Grant
    from ..results._on_worker import WorkerKeep
    from ..results._run_results import RunResults
    from ..workflow._node import Node
    from ..workflow._task import Task

__all__ = [
    "Attempt",
    "Executor",
    "RunExecutor",
    "RunView",
    "Submits",
    "TakesAttempts",
    "taking",
]

_T = TypeVar("_T")


@runtime_checkable
class Executor(Protocol):
    """Where an engine runs its plain-function tasks (``Engine(executor=...)``, and by name,
    ``Engine(executors={...})`` with ``@task(executor="name")``): :class:`ThreadExecutor`
    (the default), :class:`ProcessExecutor`, or one of your own. One whose attempts run in
    other processes says so with a class attribute ``sends_calls = True``: a per-worker
    resource (``@resource(per_worker=True)``) its tasks inject is then made there.
    """

    def check(self, task: Task[Any, Any]) -> None:
        """Raise :class:`~cascade.runtime.ExecutorError` naming ``task`` if it cannot run
        here (its function cannot be sent to a worker, say). Called before a run starts, once
        for each plain-function task placed here; cheap, never running the task."""
        ...

    def start_run(self, max_concurrency: int) -> RunExecutor:
        """This executor's part in one run (whose ``max_concurrency`` it may size itself by),
        called on the run's event loop when the run first needs it."""
        ...


class RunExecutor(Protocol):
    """An executor's part in one run: it runs attempts, and is closed at the run's end."""

    abandoned: str
    """What becomes of an attempt the run stopped waiting for (a cancel, a timeout), as a
    cancelled task's error says it: ``"its thread runs on to its end; the result is
    discarded"``."""

    def submit(
        self,
        fn: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        span: AttemptSpan | None,
        ended: Callable[[], None] | None = None,
        amounts: Mapping[str, float] | None = None,
    ) -> Awaitable[Any]:
        """Start ``fn(*args, **kwargs)``, one attempt of the task the calling asyncio task
        runs (its ``current_task()`` and its log scope are in the caller's context; ``span``,
        the attempt's trace span, where traced). What it returns is awaited on the run's loop:
        it gives the function's result or raises what it raised; cancelling it stops an
        attempt that has not started and abandons one that has. ``ended``, if given, is
        called (from any thread, once) when the attempt has really ended where it ran, or
        will never run: what it holds of the engine's system resources is given back then,
        not when the run stopped waiting for it. ``amounts``: those system resources, each
        above 0 (``with_constraints``), where it asked for some: what an executor of many
        machines asks of the one that runs it."""
        ...

    def started(self, task_id: str) -> bool:
        """Whether the attempt of ``task_id`` running here has started (one still queued is
        cancelled when its run stops; one started may run on, abandoned)."""
        ...

    def close(self, *, wait: bool) -> None:
        """The run has ended: cancel what it queued and has not started; ``wait`` for what
        runs (never when the run was stopped early or abandoned an attempt)."""
        ...


class RunView:
    """What an executor whose workers keep results themselves may know of the run its attempts
    belong to, the same for each: its ``results`` (``None``: nothing is kept), its target's
    ``roots`` (the ``id`` of each lazy result the run gives back) and where each task runs
    (``runs_on``)."""

    __slots__ = ("results", "roots", "runs_on")

    def __init__(
        self,
        results: RunResults | None,
        roots: set[int],
        runs_on: Callable[[Task[Any, Any]], RunExecutor],
    ) -> None:
        self.results = results
        self.roots = roots
        self.runs_on = runs_on


class Attempt:
    """One attempt of a plain-function task, as a run hands it to the executor that runs it.

    The call (``fn``, ``args``, ``kwargs``), its trace ``span``, the system resources it holds
    (``grant``: given back once its body has ended where it ran), its task's ``node`` and its
    ``run`` (:class:`RunView`). An executor whose worker keeps the result itself sets ``kept``:
    how, the run checking its report once the attempt has ended.

    An executor that knows when a worker starts an attempt sets ``waiting`` when it takes one
    while its workers are all busy (the ``queued`` hold the run says it ``BLOCKED`` by), and
    ``began_at`` (``time.perf_counter()``, from any thread) once a worker starts it; one
    taken while a worker is free starts at once. An executor that does not know (Dask, a
    user's) leaves ``waiting`` unset: the attempt is taken as started when handed over.
    """

    __slots__ = (
        "args",
        "began_at",
        "fn",
        "grant",
        "kept",
        "kwargs",
        "node",
        "run",
        "span",
        "waiting",
    )

    def __init__(
        self,
        fn: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        span: AttemptSpan | None,
        grant: Grant | None,
        node: Node,
        run: RunView,
    ) -> None:
        self.fn = fn
        self.args = args
        self.kwargs = kwargs
        self.span = span
        self.grant = grant
        self.node = node
        self.run = run
        self.kept: WorkerKeep | None = None
        self.waiting: Hold | None = None
        self.began_at: float | None = None  # perf_counter() when a worker started it (waiting)

    def submitted(self, submit: Callable[..., _T]) -> _T:
        """``submit`` (a :class:`RunExecutor`'s) called with this attempt: its call and span
        and, where it holds a grant, what gives the grant back and its amounts."""
        grant = self.grant
        if grant is None:
            return submit(self.fn, self.args, self.kwargs, self.span)
        return submit(self.fn, self.args, self.kwargs, self.span, grant.release, grant.amounts)


class TakesAttempts(RunExecutor, Protocol):
    """A run's part of an executor as the run uses it: it takes each :class:`Attempt` whole
    (threads, processes and Dask do; :class:`Submits` adapts one of a user's)."""

    def take(self, attempt: Attempt) -> Awaitable[Any]:
        """``attempt`` started here, awaited on the run's loop as :meth:`RunExecutor.submit`
        says."""
        ...


class Submits:
    """A user's :class:`RunExecutor`, written to the public seam alone, taking attempts: each
    is handed to its ``submit`` as a call."""

    def __init__(self, runner: RunExecutor) -> None:
        self.runner = runner
        self.abandoned = runner.abandoned

    def take(self, attempt: Attempt) -> Awaitable[Any]:
        """``attempt``'s call submitted, with what gives its grant back and the grant's
        amounts where it holds one."""
        return attempt.submitted(self.runner.submit)

    def submit(
        self,
        fn: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        span: AttemptSpan | None,
        ended: Callable[[], None] | None = None,
        amounts: Mapping[str, float] | None = None,
    ) -> Awaitable[Any]:
        """The user's executor's own."""
        return self.runner.submit(fn, args, kwargs, span, ended, amounts)

    def started(self, task_id: str) -> bool:
        """The user's executor's own."""
        return self.runner.started(task_id)

    def close(self, *, wait: bool) -> None:
        """The user's executor's own."""
        self.runner.close(wait=wait)


def taking(runner: RunExecutor) -> TakesAttempts:
    """``runner`` as a run uses it: as it is where it takes attempts, else adapted."""
    if callable(getattr(runner, "take", None)):
        return cast(TakesAttempts, runner)
    return Submits(runner)
