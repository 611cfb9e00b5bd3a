"""A run's held tasks: a task whose failed attempt holds it (``on_failure="hold"``) or a gate,
held until a person's decision (retry, skip, complete, fail) or its deadline's default; the
decisions taken on them, once per hold, and the answers given to every request. A decided
task moves on through its run's own transitions (:class:`HeldRun`)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Protocol

from cascade.interfaces import Hold
from cascade.interfaces.commands import Decided, DecisionReply, DecisionRequest
from cascade.interfaces.wire import APPROVAL, MAX_LISTED_TASKS, DecisionOutcome

from ._ended_runs import EndedDecisions
from ._loops import Loops
from ._steps import describe
from ._task_states import TaskStates
from .results._memory import MAX_NOTED_ERROR, JournalNote
from .workflow._gate import GateRejected, prompt_text
from .workflow._graph import Graph, Node
from .workflow._run_state import resolve
from .workflow._task import DEFAULT_HOLD_TIMEOUT, OnFailure, Task

__all__ = ["MAX_REQUEST_IDS", "Held", "HeldRun", "HeldTasks", "HoldCounts", "HoldDefaults"]

_log = logging.getLogger("cascade.runtime.engine")

MAX_REQUEST_IDS = 4096
"""Decision request ids a run remembers (with its answer to each), so that a copy of a
request the broker delivers again is answered the same and never applied twice."""


@dataclass(frozen=True, slots=True)
class HoldDefaults:
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
    """One held task: its failed attempt, what it raised, and what a retry needs; a gate's
    (``failure`` ``None``): its hold, no attempt having run."""

    __slots__ = ("args", "attempt", "failure", "hold", "kwargs", "node", "started", "timer")

    def __init__(
        self,
        node: Node,
        attempt: int,
        failure: BaseException | None,
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


class HeldRun(TaskStates, Protocol):
    """What a run's held tasks ask of their run (:class:`~cascade.runtime._run.Run`): its
    tasks' transitions, and the rest below."""

    graph: Graph
    loop: asyncio.AbstractEventLoop
    loops: Loops | None
    wake: asyncio.Event

    def requeue(
        self,
        node: Node,
        attempt: int,
        started: float,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        decided: Decided,
    ) -> None: ...


class HeldTasks:
    """The held tasks of one run, the decisions taken on them, and the answers given.

    Everything here runs on the run's loop, so a hold's first decision is the one applied.
    Decisions are kept per (task, attempt): a later request naming a decided hold is
    refused ``already_decided`` with the first one. The last :data:`MAX_REQUEST_IDS`
    request ids are kept with their answers.
    """

    def __init__(
        self, run: HeldRun, policy: HoldDefaults, stats: HoldCounts | None, source: str
    ) -> None:
        self.run = run
        self.policy = policy
        self.stats = stats
        self.source = source
        self.held: dict[str, Held] = {}
        self._decided: dict[tuple[str, int], Decided] = {}
        self._last: dict[str, Decided] = {}
        self._names: dict[str, str] = {}  # the decided tasks' names, by id
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
        deadline: float | None = None,
    ) -> None:
        """Hold ``node``, whose ``attempt`` raised ``failure``, until a decision or its deadline
        (``deadline``, epoch seconds: the one set when the run it carries on held it; else its
        hold's timeout from now)."""
        lazy = node.lazy
        spec = lazy.task
        timeout = self.hold_timeout(spec)
        default = spec.hold_default or self.policy.hold_default
        if deadline is None:
            deadline = time.time() + timeout
        hold = Hold(type="decision", attempt=attempt, deadline=deadline, default=default)
        held = self._keep(node, attempt, failure, started, args, kwargs, hold)
        error = describe(failure)
        self._note(node, "held", attempt, deadline, error=error)
        _log.warning(
            "task %s (%s) held for a decision after attempt %d failed: %s (default %s in %g s)",
            lazy.name,
            lazy.task_id,
            attempt,
            error,
            default,
            max(0.0, deadline - time.time()),
        )
        self.run.awaiting_decision(
            node,
            hold,
            attempt=attempt,
            duration_ms=held.duration_ms(),
            error=error,
            failure=failure,
        )

    def gate(self, node: Node) -> None:
        """Hold ``node``, a gate whose dependencies are done, for a decision from its start:
        its hold has its prompt, and ``kind`` ``approval``."""
        lazy = node.lazy
        spec = lazy.task
        timeout = self.hold_timeout(spec)
        default = spec.hold_default or "fail"
        prompt = prompt_text(resolve(lazy.args[0], self.run.state))
        deadline = self._remembered(node, timeout)
        if deadline is None:
            deadline = time.time() + timeout
        hold = Hold(
            type="decision",
            kind=APPROVAL,
            prompt=prompt,
            attempt=1,
            deadline=deadline,
            default=default,
        )
        self._keep(node, 1, None, time.perf_counter(), (), {}, hold)
        self._note(node, "held", 1, deadline, gate=True)
        _log.info(
            "task %s (%s) awaits approval: %s (default %s in %g s)",
            lazy.name,
            lazy.task_id,
            prompt,
            default,
            max(0.0, deadline - time.time()),
        )
        self.run.awaiting_decision(node, hold)

    def _keep(
        self,
        node: Node,
        attempt: int,
        failure: BaseException | None,
        started: float,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        hold: Hold,
    ) -> Held:
        """``node`` is held now (:class:`Held` says what), its hold's default taken at its
        deadline unless it is decided first (at once, a deadline passed)."""
        task_id = node.lazy.task_id
        wait = max(0.0, (hold.deadline or 0.0) - time.time())
        timer = self.run.loop.call_later(wait, self._expire, task_id, attempt)
        held = self.held[task_id] = Held(node, attempt, failure, started, args, kwargs, hold, timer)
        if self.stats is not None:
            self.stats.held += 1
        return held

    def _remembered(self, node: Node, timeout: float) -> float | None:
        """The deadline of the hold of gate ``node`` in the run this run carries on (its
        journal's, believed: :meth:`RunMemory.take`), or ``None``."""
        results = self.run.results
        memory = results.memory if results is not None else None
        if not memory:
            return None
        assert results is not None
        found = memory.take(results.key(node), gate=True, timeout=timeout)
        return found.deadline if found is not None and found.event == "held" else None

    def _note(
        self,
        node: Node,
        event: str,
        attempt: int,
        deadline: float | None = None,
        *,
        gate: bool = False,
        error: str | None = None,
    ) -> None:
        """Journal what happened to ``node``'s hold (a carry-on goes on from it)."""
        results = self.run.results
        if results is not None:
            error = error[:MAX_NOTED_ERROR] if error is not None else None
            note = JournalNote(
                event=event, attempt=attempt, deadline=deadline, gate=gate, error=error
            )
            results.note(node, note)

    def hold_timeout(self, spec: Task[Any, Any]) -> float:
        """Seconds ``spec``'s hold waits for a decision: its own, else the engine's."""
        return self.policy.hold_timeout if spec.hold_timeout is None else spec.hold_timeout

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
        if held.failure is None and request.decision == "retry":
            return reply("not_retryable", node, now)  # a gate: no attempt ran, none to retry
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
            self.added(self.run.graph.nodes)
            self.added(self.run.state.items)
            if self.run.loops is not None:
                self.added(list(self.run.loops.going()))
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

    def added(self, nodes: list[Node]) -> None:
        """``nodes`` joined the run (a map's items): decisions may name them."""
        by_name = self._by_name
        if by_name is None:  # made at the first request, from every node there is then
            return
        for node in nodes:
            by_name.setdefault(node.lazy.name, []).append(node)

    def next_iteration(self, last: Node | None, iteration: Node) -> None:
        """A loop's ``iteration`` joined the run after ``last`` (``None``: the loop's own
        call), which has ended: decisions may name it, and no longer ``last`` (a loop of any
        length holds one iteration here)."""
        by_name = self._by_name
        if by_name is None:
            return
        if last is not None:
            named = by_name.get(last.lazy.name)
            if named:
                for at in range(len(named) - 1, -1, -1):  # it was added late: from the end
                    if named[at] is last:
                        del named[at]
                        break
        by_name.setdefault(iteration.lazy.name, []).append(iteration)

    def _apply(self, held: Held, decided: Decided, result: Any) -> None:
        node = held.node
        lazy = node.lazy
        run = self.run
        del self.held[lazy.task_id]
        held.timer.cancel()
        self._decided[(lazy.task_id, held.attempt)] = decided
        self._last[lazy.task_id] = decided
        self._names[lazy.task_id] = lazy.name
        self._note(node, "decided", held.attempt, gate=held.failure is None)
        decision = decided.decision
        if decision == "retry":
            run.requeue(node, held.attempt + 1, held.started, held.args, held.kwargs, decided)
        elif decision == "complete":
            if held.failure is None and result is None:
                result = True  # a gate approved without a value
            run.completed(
                node,
                result,
                duration_ms=held.duration_ms(),
                attempt=held.attempt,
                decided=decided,
                not_kept=None if run.results is None else run.results.given(node, decided.by),
            )
        elif decision == "skip":
            run.skipped(
                node,
                _skipped_error(decided),
                attempt=held.attempt,
                duration_ms=held.duration_ms(),
                decided=decided,
            )
        else:
            failure = held.failure
            if failure is None:  # a gate rejected: nothing was raised, so no traceback goes out
                failure = GateRejected(decided.by, decided.reason, bool(decided.deadline))
            run.failed(
                node,
                failure,
                attempt=held.attempt,
                duration_ms=held.duration_ms(),
                decided=decided,
                raised=held.failure is not None,
            )
        run.wake.set()

    def stop(self, node: Node, stopped_by: str) -> bool:
        """End ``node`` ``FAILED`` if it is held (the run stopped); whether it was."""
        held = self.held.pop(node.lazy.task_id, None)
        if held is None:
            return False
        held.timer.cancel()
        if held.failure is None:
            error = f"awaiting approval when the run stopped: {stopped_by}"
        else:
            error = (
                f"{describe(held.failure)} (held for a decision when the run stopped: {stopped_by})"
            )
        self.run.held_at_stop(
            node,
            attempt=held.attempt,
            duration_ms=held.duration_ms(),
            error=error,
            failure=held.failure,
        )
        return True

    def close(self) -> None:
        """Cancel the deadlines of the holds left (the run has ended)."""
        for held in self.held.values():
            held.timer.cancel()

    def ended(self) -> EndedDecisions:
        """What answers the decisions that arrive once the run has ended: what was decided, and
        the answers given (not the run itself, which it lets go)."""
        return EndedDecisions(
            self.run.run_id,
            self.source,
            decided=self._decided,
            last=self._last,
            names=self._names,
            replies=self._replies,
            max_replies=MAX_REQUEST_IDS,
            stats=self.stats,
        )
