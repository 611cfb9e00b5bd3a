"""Decisions that arrive after their run ended: the engine keeps what its recently ended runs'
holds were decided, and answers them from it, for a bounded time and number of runs.

Sixteen operators deciding one held task at once: the first decision ends the run, and the
other fifteen are still on their way to the engine. Each gets an answer (``already_decided``
with the decision that ended the hold, or ``not_held``) instead of none.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Protocol

from cascade.interfaces.commands import Decided, DecisionReply, DecisionRequest

__all__ = ["ENDED_RUN_SECONDS", "MAX_ENDED_RUNS", "EndedDecisions", "EndedRuns"]

ENDED_RUN_SECONDS = 60.0
"""How long after a run ends its engine still answers decisions on it: longer than a decision
stays in flight (a requester waits 10 s by default)."""
MAX_ENDED_RUNS = 64
"""The most ended runs an engine answers decisions for at once (the latest ended)."""

_LEAST_DELAY = 0.01
"""Seconds at least between two timers (a clock held still must not spin the loop)."""

Close = Callable[[float], Awaitable[None]]


class RefusedCounts(Protocol):
    """Where a late decision is counted (:class:`~cascade.runtime.EngineStats`)."""

    decisions_refused: int


class EndedDecisions:
    """What an ended run's holds were decided (``decided`` per task and attempt, ``last`` per
    task, ``names`` of those tasks), and the answers given (``replies``, by request id): enough
    to answer a decision that arrives after the run ended, which it never applies."""

    def __init__(
        self,
        run_id: str,
        source: str,
        *,
        decided: dict[tuple[str, int], Decided],
        last: dict[str, Decided],
        names: dict[str, str],
        replies: MutableMapping[str, DecisionReply],
        max_replies: int,
        stats: RefusedCounts | None,
    ) -> None:
        self.run_id = run_id
        self.source = source
        self._decided = decided
        self._last = last
        self._names = names
        self._replies = replies
        self._max_replies = max_replies
        self._stats = stats

    def answer_late(self, request: DecisionRequest) -> DecisionReply:
        """Answer ``request`` (counted refused): ``already_decided`` with the decision that
        ended the hold of the task it names, else ``not_held``; a copy of a request answered
        before gets that answer again."""
        earlier = self._replies.get(request.id)
        if earlier is not None:
            return earlier
        task_id = self._task_id(request.task)
        decided: Decided | None = None
        if task_id is not None:
            if request.attempt is not None:
                decided = self._decided.get((task_id, request.attempt))
            decided = decided or self._last[task_id]
        reply = DecisionReply(
            id=request.id,
            run_id=self.run_id,
            source=self.source,
            decision=request.decision,
            outcome="not_held" if decided is None else "already_decided",
            task_id=task_id,
            task_name=None if task_id is None else self._names.get(task_id),
            decided=decided,
            issued_by=request.issued_by,
            reason=request.reason,
            issued_at=request.issued_at,
        )
        if self._stats is not None:
            self._stats.decisions_refused += 1
        self._replies[request.id] = reply
        while len(self._replies) > self._max_replies:
            self._replies.pop(next(iter(self._replies)))
        return reply

    def _task_id(self, task: str) -> str | None:
        """The decided task ``task`` names (its id, or its name: the one decided last)."""
        if task in self._last:
            return task
        named = [task_id for task_id, name in self._names.items() if name == task]
        if not named:
            return None
        return max(named, key=lambda task_id: self._last[task_id].at or 0.0)


class EndedRuns:
    """An engine's recently ended runs (at most ``max_runs``, :data:`MAX_ENDED_RUNS`, for
    ``window`` seconds each, :data:`ENDED_RUN_SECONDS`), whose decisions it still answers; and
    the command subscriptions it keeps for them on a connection that outlives the run, each
    closed once its run is forgotten: by a timer on the event loop when its window has passed
    (an engine that idles after its run, a served one, keeps neither the subscription nor what
    answers it), at once when later runs push it out."""

    def __init__(
        self,
        monotonic: Callable[[], float] = time.monotonic,
        *,
        window: float | None = None,
        max_runs: int | None = None,
    ) -> None:
        self._monotonic = monotonic
        self.window = ENDED_RUN_SECONDS if window is None else window
        self.max_runs = MAX_ENDED_RUNS if max_runs is None else max_runs
        self._runs: OrderedDict[str, tuple[float, EndedDecisions]] = OrderedDict()
        self._listening: OrderedDict[str, tuple[Close, float]] = OrderedDict()
        self._timer: asyncio.TimerHandle | None = None
        self._closing: set[asyncio.Task[None]] = set()  # subscriptions the timer closes

    @property
    def listening(self) -> int:
        """How many ended runs' command subscriptions are kept now."""
        return len(self._listening)

    def ended(self, decisions: EndedDecisions) -> None:
        """A run ended: answer its decisions from ``decisions`` from now on (called on the
        engine's event loop)."""
        self._runs[decisions.run_id] = (self._monotonic(), decisions)
        self._runs.move_to_end(decisions.run_id)
        self._forget()
        self._arm()

    def get(self, run_id: str) -> EndedDecisions | None:
        """What answers decisions on the ended run ``run_id``; ``None`` once it is forgotten."""
        self._forget()
        kept = self._runs.get(run_id)
        return None if kept is None else kept[1]

    async def listen(self, run_id: str, close: Close, timeout: float) -> None:
        """Keep the ended run ``run_id``'s command subscription (``close(timeout)`` ends it)
        while its decisions are answered; close those of the runs forgotten."""
        self._listening[run_id] = (close, timeout)
        self._forget()
        for close_one, bound in self._let_go():
            await close_one(bound)
        self._arm()

    async def close_all(self) -> None:
        """Close every kept subscription now, and wait for those the timer is closing: their
        connection is about to close (a serving engine stops). Decisions on the ended runs are
        still answered while a subscription of theirs is left."""
        kept, self._listening = list(self._listening.values()), OrderedDict()
        for close, timeout in kept:
            await close(timeout)
        await asyncio.gather(*self._closing, return_exceptions=True)

    def _let_go(self) -> list[tuple[Close, float]]:
        """The subscriptions of the runs forgotten, no longer kept."""
        gone = [run for run in self._listening if run not in self._runs]
        return [self._listening.pop(run) for run in gone]

    def _arm(self) -> None:
        """One timer, at the end of the oldest kept run's window."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._runs:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop: forgotten when next asked
            return
        oldest = next(iter(self._runs.values()))[0]
        due = oldest + self.window - self._monotonic()  # > 0: it would be forgotten else
        self._timer = loop.call_later(max(due, _LEAST_DELAY), self._expired)

    def _expired(self) -> None:
        self._timer = None
        self._forget()
        for close, timeout in self._let_go():
            closing = asyncio.ensure_future(close(timeout))
            self._closing.add(closing)
            closing.add_done_callback(self._closing.discard)
        self._arm()

    def _forget(self) -> None:
        runs, now = self._runs, self._monotonic()
        while runs and (
            len(runs) > self.max_runs or next(iter(runs.values()))[0] + self.window - now <= 0
        ):
            runs.popitem(last=False)
