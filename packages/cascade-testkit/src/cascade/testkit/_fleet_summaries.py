"""A simulated engine's summary (``{prefix}/summary/{source}``), as ``cascade.runtime`` keeps it.

:class:`SummaryBook` holds what an engine's summary counts beyond its live run: its ended
runs by outcome and their tasks as they ended, its latest ended runs, its events and drops,
and when it last published. :class:`SummaryPacer` says when a summary may go: at most one a
second per engine, a wanted one that may not go yet going a second after the previous.
:func:`final_tallies` is what an engine's last summary must say, from the events it sent.
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from collections.abc import Mapping
from typing import Generic, Protocol, TypeVar

from cascade.interfaces.summaries import EngineSummary, RunTally, SummaryRun, TaskTally
from cascade.interfaces.wire import MAX_SUMMARY_RUNS

__all__ = ["SUMMARY_GAP", "SummaryBook", "SummaryPacer", "final_tallies"]

SUMMARY_GAP = 1.0
"""Seconds between two summaries of one engine at least (its last one excepted)."""


class SummaryBook:
    """What one engine's summary counts besides its live run, and when it last went out.

    ``dropped`` is the events the engine could not send (its worker was not connected);
    ``at`` when (``time.monotonic()``) its last summary went, ``-inf`` before the first;
    ``pending`` whether a wanted summary waits for :data:`SUMMARY_GAP` to pass.
    """

    __slots__ = ("at", "dropped", "ended", "events_at", "events_ended", "pending", "runs", "tasks")

    def __init__(self) -> None:
        self.runs = RunTally()
        self.tasks = TaskTally()  # of the ended runs, as they ended
        self.ended: deque[SummaryRun] = deque(maxlen=MAX_SUMMARY_RUNS)  # newest first
        self.events_ended = 0  # the ended runs' last seq, summed
        self.dropped = 0
        self.at = float("-inf")
        self.events_at = 0  # events at the last summary
        self.pending = False

    def run_ended(self, run: SummaryRun) -> None:
        """Count ``run``, just ended (its status, ``ended`` and tasks as they ended)."""
        runs = self.runs
        if run.status == "Succeeded":
            runs.succeeded += 1
        else:
            runs.failed += 1
            runs.cancelled += run.cancelled
        self.tasks = self.tasks + run.tasks
        self.events_ended += run.last_seq
        self.ended.appendleft(run)

    def summary(
        self, source: str, session: int, now: float, ts: str, live: SummaryRun | None
    ) -> EngineSummary:
        """The engine's summary now, with ``live`` its live run if it has one; the next
        summary's rate counts from here."""
        events = self.events_ended + (live.last_seq if live is not None else 0)
        span = now - self.at
        rate = (events - self.events_at) / span if 0 < span < float("inf") else 0.0
        runs = self.runs
        summary = EngineSummary(
            source=source,
            ts=ts,
            session=session,
            runs=RunTally(
                running=int(live is not None),
                succeeded=runs.succeeded,
                failed=runs.failed,
                cancelled=runs.cancelled,
            ),
            tasks=self.tasks + live.tasks if live is not None else self.tasks,
            events=events,
            events_per_s=rate,
            dropped=self.dropped,
            listed=[live, *self.ended][:MAX_SUMMARY_RUNS] if live is not None else [*self.ended],
        )
        self.at, self.events_at, self.pending = now, events, False
        return summary


class _Booked(Protocol):
    book: SummaryBook


_E = TypeVar("_E", bound=_Booked)


class SummaryPacer(Generic[_E]):
    """When a worker's engines (each with its :class:`SummaryBook`) publish their summaries:
    at once if the engine's last one is :data:`SUMMARY_GAP` old, else once it is (one
    waiting summary per engine)."""

    def __init__(self, gap: float = SUMMARY_GAP) -> None:
        self.gap = gap
        self._waiting: list[tuple[float, int, _E]] = []
        self._order = itertools.count()  # ties go in the order they came

    def want(self, engine: _E, now: float) -> bool:
        """Whether ``engine``'s summary, wanted now, may go now; if not it waits."""
        book = engine.book
        if book.at + self.gap <= now:
            return True
        if not book.pending:
            book.pending = True
            heapq.heappush(self._waiting, (book.at + self.gap, next(self._order), engine))
        return False

    def due(self, now: float) -> list[_E]:
        """The engines whose waiting summary may go now."""
        waiting: list[tuple[float, int, _E]] = self._waiting
        out: list[_E] = []
        while waiting and waiting[0][0] <= now:
            engine = heapq.heappop(waiting)[2]
            book = engine.book
            # the summary may have gone since (wanted again a gap later): nothing waits then
            if book.pending and book.at + self.gap <= now:
                out.append(engine)
        return out


def final_tallies(kinds: Mapping[str, int]) -> tuple[RunTally, TaskTally]:
    """The runs and tasks an engine's summary must count once every run of it has ended,
    from the events it sent (a simulated engine's ``kinds``: task states as a reader shows
    them, ``ENGINE_STARTED``, and each run's end by outcome)."""
    cancelled_runs = kinds.get("Cancelled", 0)
    cancelled_tasks = kinds.get("CANCELLED", 0)
    runs = RunTally(
        running=kinds.get("ENGINE_STARTED", 0)
        - kinds.get("Succeeded", 0)
        - kinds.get("Failed", 0)
        - cancelled_runs,
        succeeded=kinds.get("Succeeded", 0),
        failed=kinds.get("Failed", 0) + cancelled_runs,
        cancelled=cancelled_runs,
    )
    tasks = TaskTally(
        completed=kinds.get("COMPLETED", 0),
        failed=kinds.get("FAILED", 0) + cancelled_tasks,
        cancelled=cancelled_tasks,
    )
    return runs, tasks
