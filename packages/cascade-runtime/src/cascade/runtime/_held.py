"""A run's held tasks (failed under ``on_failure="hold"``) and the decisions taken on them."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from cascade.interfaces import (
    MAX_LISTED_TASKS,
    Decided,
    DecisionOutcome,
    DecisionReply,
    DecisionRequest,
    Hold,
)

from ._events import TaskCompleted, TaskFailed, TaskHeld, TaskSkipped
from ._graph import Node
from ._steps import describe
from ._task import DEFAULT_HOLD_TIMEOUT, OnFailure, Task

if TYPE_CHECKING:
    from ._scheduler import Run

__all__ = ["MAX_REQUEST_IDS", "HeldTasks", "HoldCounts", "HoldPolicy"]

_log = logging.getLogger("cascade.runtime.engine")

MAX_REQUEST_IDS = 4096
"""Decision request ids a run remembers (with its answer to each), so that a copy of a
request the broker delivers again is answered the same and never applied twice."""


@dataclass(frozen=True, slots=True)
class HoldPolicy:
    """An engine's ``on_failure``, ``hold_timeout`` and ``hold_default``: what a task's own
    (``None``) stand for."""

    on_failure: OnFailure = "fail"
    hold_timeout: float = DEFAULT_HOLD_TIMEOUT
    hold_default: str = "fail"


class HoldCounts(Protocol):
    """Where a run counts its holds and decisions (:class:`~cascade.runtime.EngineStats`)."""

    held: int
    decisions: int
    decisions_refused: int


class Held:
    """One held task: its failed attempt, what it raised, and what a retry needs."""

    __slots__ = ("args", "attempt", "failure", "hold", "kwargs", "node", "started", "timer")

    def __init__(
        self,
        node: Node,
        attempt: int,
        failure: BaseException,
        started: float,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        hold: Hold,
        timer: asyncio.TimerHandle,
    ) -> None:
        self.node = node
        self.attempt = attempt
        self.failure = failure
        self.started = started  # perf_counter of its first attempt, for duration_ms
        self.args = args
        self.kwargs = kwargs
        self.hold = hold
        self.timer = timer

    def duration_ms(self) -> float:
        return (time.perf_counter() - self.started) * 1000


def _skipped_error(decided: Decided) -> str:
    if decided.deadline:
        return "skipped at its hold's deadline"
    text = f"skipped by {decided.by}" if decided.by else "skipped"
    return f"{text}: {decided.reason}" if decided.reason else text


class HeldTasks:
    """The held tasks of one run, the decisions taken on them, and the answers given.

    Everything here runs on the run's loop, so a hold's first decision is the one applied.
    Decisions are kept per (task, attempt): a later request naming a decided hold is
    refused ``already_decided`` with the first one. The last :data:`MAX_REQUEST_IDS`
    request ids are kept with their answers.
    """

    def __init__(self, run: Run, policy: HoldPolicy, stats: HoldCounts | None, source: str) -> None:
        self.run = run
        self.policy = policy
        self.stats = stats
        self.source = source
        self.held: dict[str, Held] = {}
        self._decided: dict[tuple[str, int], Decided] = {}
        self._last: dict[str, Decided] = {}
        self._replies: OrderedDict[str, DecisionReply] = OrderedDict()
        self._by_name: dict[str, list[Node]] | None = None  # made at the first request

    def holds(self, task: Task[Any, Any]) -> bool:
        """Whether ``task``'s last failed attempt holds it (its own option, else the engine's)."""
        return (task.on_failure or self.policy.on_failure) == "hold"

    def hold(
        self,
        node: Node,
        attempt: int,
        failure: BaseException,
        started: float,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> None:
        """Hold ``node``, whose ``attempt`` raised ``failure``, until a decision or its deadline."""
        lazy = node.lazy
        spec = lazy.task
        policy = self.policy
        timeout = policy.hold_timeout if spec.hold_timeout is None else spec.hold_timeout
        default = spec.hold_default or policy.hold_default
        deadline = time.time() + timeout
        hold = Hold(type="decision", attempt=attempt, deadline=deadline, default=default)
        timer = self.run.loop.call_later(timeout, self._expire, lazy.task_id, attempt)
        held = Held(node, attempt, failure, started, args, kwargs, hold, timer)
        self.held[lazy.task_id] = held
        if self.stats is not None:
            self.stats.held += 1
        _log.warning(
            "task %s (%s) held for a decision after attempt %d failed: %s (default %s in %g s)",
            lazy.name,
            lazy.task_id,
            attempt,
            describe(failure),
            default,
            timeout,
        )
        self.run.emit(
            TaskHeld(
                run_id=self.run.run_id,
                task_id=lazy.task_id,
                task_name=lazy.name,
                duration_ms=held.duration_ms(),
                error=describe(failure),
                attempt=attempt,
                held_by=(hold,),
                exception=failure,
            )
        )

    def _expire(self, task_id: str, attempt: int) -> None:
        held = self.held.get(task_id)
        if held is None or held.attempt != attempt:
            return
        default: Any = held.hold.default
        decided = Decided(decision=default, attempt=attempt, at=time.time(), deadline=True)
        _log.warning(
            "task %s (%s): its hold's deadline passed, %s taken",
            held.node.lazy.name,
            task_id,
            default,
        )
        self._apply(held, decided, None)
        if self.stats is not None:
            self.stats.decisions += 1

    def decide(self, request: DecisionRequest) -> DecisionReply:
        """Apply ``request`` if it names a hold not yet decided; answer it either way."""
        earlier = self._replies.get(request.id)
        if earlier is not None:
            return earlier  # a copy of a request answered before: never applied twice
        reply = self._answer(request)
        if self.stats is not None:
            if reply.applied:
                self.stats.decisions += 1
            else:
                self.stats.decisions_refused += 1
        self._replies[request.id] = reply
        if len(self._replies) > MAX_REQUEST_IDS:
            self._replies.popitem(last=False)
        return reply

    def _answer(self, request: DecisionRequest) -> DecisionReply:
        def reply(
            outcome: DecisionOutcome,
            node: Node | None = None,
            attempt: int | None = None,
            decided: Decided | None = None,
            candidates: list[str] | None = None,
        ) -> DecisionReply:
            return DecisionReply(
                id=request.id,
                run_id=self.run.run_id,
                source=self.source,
                decision=request.decision,
                outcome=outcome,
                task_id=node.lazy.task_id if node is not None else None,
                task_name=node.lazy.name if node is not None else None,
                attempt=attempt,
                decided=decided,
                candidates=candidates,
                issued_by=request.issued_by,
                reason=request.reason,
                issued_at=request.issued_at,
            )

        node, candidates = self._find(request.task)
        if candidates:
            return reply("ambiguous", candidates=candidates)
        if node is None:
            return reply("unknown_task")
        task_id = node.lazy.task_id
        held = self.held.get(task_id)
        now = held.attempt if held is not None else None
        if request.attempt is not None:
            earlier = self._decided.get((task_id, request.attempt))
            if earlier is not None:
                return reply("already_decided", node, now, earlier)
        if held is None:
            return reply("not_held", node, decided=self._last.get(task_id))
        if request.attempt is not None and request.attempt != held.attempt:
            return reply("stale_attempt", node, now)
        decided = Decided(
            decision=request.decision,
            attempt=held.attempt,
            by=request.issued_by,
            reason=request.reason,
            at=time.time(),
            id=request.id,
        )
        _log.warning(
            "task %s (%s): %s decided on attempt %d%s%s",
            node.lazy.name,
            task_id,
            request.decision,
            held.attempt,
            f" by {request.issued_by}" if request.issued_by else "",
            f" ({request.reason})" if request.reason else "",
        )
        self._apply(held, decided, request.result)
        return reply("applied", node, now, decided)

    def _find(self, task: str) -> tuple[Node | None, list[str] | None]:
        """The node ``task`` names (an id, or a name with one held task or one task), or the
        ids of the held tasks of that name when several are."""
        if self._by_name is None:
            self._by_name = {}
            for node in self.run.graph.nodes:
                self._by_name.setdefault(node.lazy.name, []).append(node)
        for node in self._by_name.get(task.rsplit("-", 1)[0], ()):
            if node.lazy.task_id == task:
                return node, None
        named = self._by_name.get(task)
        if not named:
            return None, None
        held = [node for node in named if node.lazy.task_id in self.held]
        if len(held) > 1:
            return None, [node.lazy.task_id for node in held][:MAX_LISTED_TASKS]
        if held:
            return held[0], None
        decided = [node for node in named if node.lazy.task_id in self._last]
        # none held: the one decided on last says who decided, else any of them
        if decided:
            return max(decided, key=lambda node: self._last[node.lazy.task_id].at or 0.0), None
        return named[0], None

    def _apply(self, held: Held, decided: Decided, result: Any) -> None:
        node = held.node
        lazy = node.lazy
        run = self.run
        del self.held[lazy.task_id]
        held.timer.cancel()
        self._decided[(lazy.task_id, held.attempt)] = decided
        self._last[lazy.task_id] = decided
        decision = decided.decision
        if decision == "retry":
            run.requeue(node, held.attempt + 1, held.started, held.args, held.kwargs, decided)
        elif decision == "complete":
            node.result = result
            run.emit(
                TaskCompleted(
                    run_id=run.run_id,
                    task_id=lazy.task_id,
                    task_name=lazy.name,
                    duration_ms=held.duration_ms(),
                    attempt=held.attempt,
                    decided=decided,
                    not_kept=None if run.results is None else run.results.given(node, decided.by),
                )
            )
            run.completed(node)
        elif decision == "skip":
            run.emit(
                TaskSkipped(
                    run_id=run.run_id,
                    task_id=lazy.task_id,
                    task_name=lazy.name,
                    duration_ms=held.duration_ms(),
                    error=_skipped_error(decided),
                    attempt=held.attempt,
                    decided=decided,
                )
            )
            run.skipped(node)
        else:
            run.emit(
                TaskFailed(
                    run_id=run.run_id,
                    task_id=lazy.task_id,
                    task_name=lazy.name,
                    duration_ms=held.duration_ms(),
                    error=describe(held.failure),
                    attempt=held.attempt,
                    exception=held.failure,
                    decided=decided,
                )
            )
            run.failed(node, held.failure)
        run.wake.set()

    def stop(self, node: Node, stopped_by: str) -> bool:
        """End ``node`` ``FAILED`` if it is held (the run stopped); whether it was."""
        held = self.held.pop(node.lazy.task_id, None)
        if held is None:
            return False
        held.timer.cancel()
        node.done = True
        lazy = node.lazy
        self.run.emit(
            TaskFailed(
                run_id=self.run.run_id,
                task_id=lazy.task_id,
                task_name=lazy.name,
                duration_ms=held.duration_ms(),
                error=(
                    f"{describe(held.failure)} "
                    f"(held for a decision when the run stopped: {stopped_by})"
                ),
                attempt=held.attempt,
                exception=held.failure,
            )
        )
        return True

    def close(self) -> None:
        """Cancel the deadlines of the holds left (the run has ended)."""
        for held in self.held.values():
            held.timer.cancel()
