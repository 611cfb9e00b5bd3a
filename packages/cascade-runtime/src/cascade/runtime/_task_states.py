"""A task's life in a run, as named transitions: each one changes what the run's state says of
the task and sends the task's event, here and nowhere else.

::

    ready ──▶ BLOCKED ──▶ (QUEUED) ──▶ RUNNING ──▶ COMPLETED ──▶ its dependents may start
                                          ├──▶ RETRYING ──▶ ready again, after the delay
                                          ├──▶ HELD ──▶ decided: ready, COMPLETED, SKIPPED, FAILED
                                          └──▶ FAILED ──▶ its dependents SKIPPED
    ready ──▶ COMPLETED from a cache, or reused from the run a rerun reruns
    never started: SKIPPED (not needed, not routed, a condition false), FAILED (it could not)
    the run stopped: CANCELLED (a held task: FAILED)

:class:`TaskStates` is what :class:`~._run.Run` is made of for this: the run's steps (its
dispatch, an attempt, a hold's decision, a loop's jump, a map's items) say which transition a
task takes, and never make an event themselves. Each transition's cost is one method call on
the hot path (the benchmark's plain tasks: a few tens of nanoseconds against microseconds).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from cascade.interfaces import Hold
from cascade.interfaces.commands import Decided

from ._events import (
    Event,
    TaskBlocked,
    TaskCached,
    TaskCancelled,
    TaskCompleted,
    TaskFailed,
    TaskHeld,
    TaskMapped,
    TaskQueued,
    TaskRetrying,
    TaskRunning,
    TaskSkipped,
)
from ._steps import describe
from .results._memory import MAX_NOTED_ERROR, JournalNote
from .workflow._features import upstream_ended

if TYPE_CHECKING:
    from .executors._placement import RunPlacement
    from .results._run_results import RunResults
    from .workflow._graph import Node
    from .workflow._routing import Demand
    from .workflow._run_state import RunState
    from .workflow._task import LazyResult

__all__ = ["TaskStates", "since"]


def since(started: float) -> float:
    """Milliseconds since ``started`` (a ``perf_counter``)."""
    return (time.perf_counter() - started) * 1000


class TaskStates(Protocol):
    """The transitions of the tasks of one run (the run's own state, ``state``, and where its
    events go, ``emit``). :class:`~._run.Run` is one (it sets the attributes below and
    readies tasks); what asks a run for transitions (its holds, loops, maps, features) takes a
    protocol that extends this one."""

    run_id: str
    emit: Callable[[Event], None]
    state: RunState
    finished: int
    failures: list[tuple[Node, BaseException]]
    results: RunResults | None
    demand: Demand | None
    let_go: set[tuple[int, int]]
    skip_reasons: dict[int, str]
    stopped_by: str
    executors: RunPlacement

    def ready(self, node: Node) -> None:
        """``node`` may start (the run queues it)."""
        ...

    # -- before an attempt runs

    def blocked(self, lazy: LazyResult[Any], attempt: int, held_by: tuple[Hold, ...]) -> None:
        """``lazy``'s ``attempt`` would start now but ``held_by`` holds it back."""
        self.emit(
            TaskBlocked(
                run_id=self.run_id,
                task_id=lazy.task_id,
                task_name=lazy.name,
                attempt=attempt,
                held_by=held_by,
            )
        )

    def queued(self, lazy: LazyResult[Any], attempt: int, hold: Hold, since_ts: float) -> None:
        """``lazy``'s ``attempt``, handed to its executor at ``since_ts`` (epoch seconds), waits
        for a worker (``hold``: of type ``queued``)."""
        self.emit(
            TaskQueued(
                run_id=self.run_id,
                task_id=lazy.task_id,
                task_name=lazy.name,
                attempt=attempt,
                held_by=(hold,),
                ts=since_ts,
            )
        )

    def started(
        self,
        lazy: LazyResult[Any],
        attempt: int = 1,
        decided: Decided | None = None,
        at: float | None = None,
    ) -> None:
        """``lazy``'s ``attempt`` started (``at``, epoch seconds: when a worker started it, if
        not now); ``decided``: the decision on its hold it comes of."""
        if at is None:
            event = TaskRunning(
                run_id=self.run_id,
                task_id=lazy.task_id,
                task_name=lazy.name,
                attempt=attempt,
                decided=decided,
            )
        else:
            event = TaskRunning(
                run_id=self.run_id,
                task_id=lazy.task_id,
                task_name=lazy.name,
                attempt=attempt,
                decided=decided,
                ts=at,
            )
        self.emit(event)

    def mapped(self, node: Node, items: int) -> None:
        """Map ``node`` made its ``items``: it runs until they have ended."""
        lazy = node.lazy
        self.emit(
            TaskMapped(run_id=self.run_id, task_id=lazy.task_id, task_name=lazy.name, items=items)
        )

    # -- how a task ends with a result

    def completed(
        self,
        node: Node,
        value: Any,
        duration_ms: float = 0.0,
        attempt: int = 1,
        not_kept: str | None = None,
        *,
        decided: Decided | None = None,
        reused_from: str | None = None,
    ) -> None:
        """``node`` ended with ``value`` (``reused_from``: the run that kept it, a rerun's; it
        did not run): its dependents waiting on nothing else may start. (An attempt that
        returned passes its duration, attempt and ``not_kept`` by position: a keyword call
        costs a task's hot path more.)"""
        self.state.result[node.index] = value
        lazy = node.lazy
        self.emit(
            TaskCompleted(
                run_id=self.run_id,
                task_id=lazy.task_id,
                task_name=lazy.name,
                duration_ms=duration_ms,
                attempt=attempt,
                not_kept=not_kept,
                decided=decided,
                reused_from=reused_from,
            )
        )
        self._done(node)

    def cached(
        self,
        node: Node,
        value: Any,
        *,
        duration_ms: float,
        reused_from: str | None,
        not_kept: str | None,
    ) -> None:
        """``node``'s cache gave ``value`` (``reused_from``: the run that kept it in the results
        store), never running it."""
        self.state.result[node.index] = value
        lazy = node.lazy
        self.emit(
            TaskCached(
                run_id=self.run_id,
                task_id=lazy.task_id,
                task_name=lazy.name,
                duration_ms=duration_ms,
                reused_from=reused_from,
                not_kept=not_kept,
            )
        )
        self._done(node)

    def went_on(
        self,
        iteration: Node,
        *,
        duration_ms: float,
        attempt: int,
        not_kept: str | None,
        reused_from: str | None,
    ) -> None:
        """A loop's ``iteration`` ended by jumping on: it is done, its loop goes on (its
        value, a jump, is its loop's to read)."""
        self.state.done[iteration.index] = True
        self.finished += 1
        lazy = iteration.lazy
        self.emit(
            TaskCompleted(
                run_id=self.run_id,
                task_id=lazy.task_id,
                task_name=lazy.name,
                duration_ms=duration_ms,
                attempt=attempt,
                not_kept=not_kept,
                reused_from=reused_from,
            )
        )

    def reused_at_start(self, node: Node, value: Any, from_run: str) -> None:
        """A rerun takes ``node``'s ``value`` kept by ``from_run`` before anything starts."""
        self.state.result[node.index] = value
        self._ended_at_start(node)
        lazy = node.lazy
        self.emit(
            TaskCompleted(
                run_id=self.run_id, task_id=lazy.task_id, task_name=lazy.name, reused_from=from_run
            )
        )

    # -- how an attempt fails

    def retrying(
        self, node: Node, attempt: int, failure: BaseException, duration_ms: float
    ) -> None:
        """``node``'s ``attempt`` raised ``failure``: another follows (noted in its journal,
        where a carry-on's attempts go on from)."""
        lazy = node.lazy
        said = describe(failure)
        self.emit(
            TaskRetrying(
                run_id=self.run_id,
                task_id=lazy.task_id,
                task_name=lazy.name,
                duration_ms=duration_ms,
                error=said,
                attempt=attempt,
                exception=failure,
            )
        )
        if self.results is not None:
            note = JournalNote(event="retrying", attempt=attempt, error=said[:MAX_NOTED_ERROR])
            self.results.note(node, note)

    def awaiting_decision(
        self,
        node: Node,
        hold: Hold,
        *,
        attempt: int = 1,
        duration_ms: float = 0.0,
        error: str = "",
        failure: BaseException | None = None,
    ) -> None:
        """``node`` waits for a decision (``hold``): its ``attempt`` raised ``failure``, or it
        is a gate (``failure`` ``None``). The run's held tasks keep it until one comes."""
        lazy = node.lazy
        self.emit(
            TaskHeld(
                run_id=self.run_id,
                task_id=lazy.task_id,
                task_name=lazy.name,
                duration_ms=duration_ms,
                error=error,
                attempt=attempt,
                held_by=(hold,),
                exception=failure,
            )
        )

    def failed(
        self,
        node: Node,
        failure: BaseException,
        *,
        attempt: int = 1,
        duration_ms: float = 0.0,
        decided: Decided | None = None,
        raised: bool = True,
        journal: bool = False,
    ) -> None:
        """``node`` failed for good (``failure`` says why; ``raised``: its code raised it, whose
        traceback goes out; ``journal``: an attempt that ran, noted for a carry-on): the run
        will fail, its dependents are skipped."""
        lazy = node.lazy
        said = describe(failure)
        self.emit(
            TaskFailed(
                run_id=self.run_id,
                task_id=lazy.task_id,
                task_name=lazy.name,
                duration_ms=duration_ms,
                error=said,
                attempt=attempt,
                exception=failure if raised else None,
                decided=decided,
            )
        )
        if journal and self.results is not None:
            note = JournalNote(event="failed", attempt=attempt, error=said[:MAX_NOTED_ERROR])
            self.results.note(node, note)
        self.state.done[node.index] = self.state.failed[node.index] = True
        self.finished += 1
        self.failures.append((node, failure))
        if self.demand is not None:
            self.demand.ended(node)
        self.skip_dependents(node, "failed")

    def broke(self, node: Node, exc: Exception) -> None:
        """An attempt of ``node`` broke the engine (a bug of ours): it fails, unless it had
        ended already, so the run never waits for it."""
        if not self.state.done[node.index]:
            self.failed(node, exc)

    # -- how a task ends without a result

    def skipped(
        self,
        node: Node,
        why: str,
        *,
        attempt: int = 1,
        duration_ms: float = 0.0,
        decided: Decided | None = None,
    ) -> None:
        """``node`` ended without a result for ``why`` (a decision on its hold; a loop whose
        iteration ended without one): its dependents are skipped, the run goes on."""
        lazy = node.lazy
        self.emit(
            TaskSkipped(
                run_id=self.run_id,
                task_id=lazy.task_id,
                task_name=lazy.name,
                duration_ms=duration_ms,
                error=why,
                attempt=attempt,
                decided=decided,
            )
        )
        state = self.state
        state.done[node.index] = state.skipped[node.index] = True
        self.finished += 1
        if self.results is not None:
            self.results.skipped[id(node)] = why
        if self.demand is not None:
            self.demand.ended(node)
        self.skip_dependents(node, "was skipped")

    def end_skipped(self, node: Node, why: str) -> None:
        """``node`` ends ``SKIPPED``, ``why`` its error, without starting (what needs it is
        the caller's to say)."""
        state = self.state
        state.done[node.index] = state.skipped[node.index] = True
        self.finished += 1
        if self.results is not None:
            self.results.skipped[id(node)] = why
        lazy = node.lazy
        self.emit(
            TaskSkipped(run_id=self.run_id, task_id=lazy.task_id, task_name=lazy.name, error=why)
        )
        if self.demand is not None:
            self.demand.ended(node)

    def needless_at_start(self, node: Node, why: str) -> None:
        """A rerun need not run ``node`` (no task it runs needs it): it ends ``SKIPPED`` before
        anything starts, saying ``why``."""
        self.state.skipped[node.index] = True
        self._ended_at_start(node)
        if self.results is not None:
            self.results.skipped[id(node)] = why
        lazy = node.lazy
        self.emit(
            TaskSkipped(run_id=self.run_id, task_id=lazy.task_id, task_name=lazy.name, error=why)
        )

    def skip_dependents(self, node: Node, what: str = "", reason: str = "") -> None:
        """Skip what needs ``node`` (ended without a result: it ``what``), and what needs those,
        each for ``reason`` (by default, naming ``node``). A task that takes a router or is
        routed only stops waiting for it: it may not need it (its policy tells once it is
        ready, with the reason noted here)."""
        reason = reason or upstream_ended(node, what)
        stack = [(node, dependent) for dependent in node.dependents]
        demand = self.demand
        if demand is not None:
            self.skip_reasons[id(node)] = reason
        state = self.state
        skipped, done, waiting = state.skipped, state.done, state.waiting
        while stack:
            ended, dependent = stack.pop()
            at = dependent.index
            if skipped[at] or done[at]:  # done: a rerun reused it
                continue
            if demand is not None and demand.waits_out(dependent):
                if (id(dependent), id(ended)) in self.let_go:
                    continue  # it stopped waiting for it when its routers chose
                waiting[at] -= 1
                if waiting[at] == 0:
                    self.ready(dependent)
                continue
            skipped[at] = done[at] = True
            self.finished += 1
            if self.results is not None:
                self.results.skipped[id(dependent)] = reason
            lazy = dependent.lazy
            self.emit(
                TaskSkipped(
                    run_id=self.run_id, task_id=lazy.task_id, task_name=lazy.name, error=reason
                )
            )
            if demand is not None:
                self.skip_reasons[id(dependent)] = reason
                demand.ended(dependent)
            stack.extend((dependent, after) for after in dependent.dependents)

    # -- the run stopped

    def cancelled(self, node: Node, started: float | None, abandoned: bool = False) -> None:
        """``node``'s task was stopped with the run (``started``: its first attempt's start;
        ``abandoned``: a plain function that runs on where its executor runs it)."""
        self.state.done[node.index] = True
        lazy = node.lazy
        error = self.stopped_by
        if abandoned:
            error += f" ({self.executors.of(lazy.task).abandoned})"
        self.emit(
            TaskCancelled(
                run_id=self.run_id,
                task_id=lazy.task_id,
                task_name=lazy.name,
                duration_ms=0.0 if started is None else since(started),
                error=error,
            )
        )

    def held_at_stop(
        self,
        node: Node,
        *,
        attempt: int,
        duration_ms: float,
        error: str,
        failure: BaseException | None,
    ) -> None:
        """Held ``node`` ends ``FAILED`` as the run stops (``error`` says it was held then)."""
        self.state.done[node.index] = True
        lazy = node.lazy
        self.emit(
            TaskFailed(
                run_id=self.run_id,
                task_id=lazy.task_id,
                task_name=lazy.name,
                duration_ms=duration_ms,
                error=error,
                attempt=attempt,
                exception=failure,
            )
        )

    # -- what the transitions share

    def _done(self, node: Node) -> None:
        """``node`` has its result: its dependents waiting on nothing else may start."""
        self.state.done[node.index] = True
        self.finished += 1
        if self.demand is not None:
            self.demand.ended(node)
        if node.dependents:  # a fan-out's tasks have none: nothing more to do
            self._release(node)

    def _release(self, node: Node) -> None:
        """``node`` has ended: its dependents waiting on nothing else may start."""
        let_go = self.let_go
        state = self.state
        waiting = state.waiting
        for dependent in node.dependents:
            if let_go and (id(dependent), id(node)) in let_go:
                continue  # it stopped waiting for node when its routers chose
            at = dependent.index
            waiting[at] -= 1
            if waiting[at] == 0 and not state.skipped[at] and not state.done[at]:
                self.ready(dependent)

    def _ended_at_start(self, node: Node) -> None:
        """``node`` ended before the run readies its first tasks: what waits on it no longer
        does (the run readies them itself)."""
        self.state.done[node.index] = True
        self.finished += 1
        waiting = self.state.waiting
        for dependent in node.dependents:
            waiting[dependent.index] -= 1
