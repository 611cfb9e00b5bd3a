"""An engine's retained summary: its runs and tasks added up, for readers of a whole fleet."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import weakref
from collections import deque
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import datetime, timezone

from cascade.connector_kit import RateLimitedLogger, event_set
from cascade.interfaces import Connector, Message, SubscriptionHandle
from cascade.interfaces.summaries import (
    EngineSummary,
    RunTally,
    SummaryRun,
    TaskTally,
    summary_topic,
)
from cascade.interfaces.wire import MAX_SUMMARY_RUNS, placed_summaries

from ..constraints._tokenbucket import TokenBucket
from ._counters import RunCounters
from ._telemetry import TelemetrySubscriber

__all__ = ["SUMMARY_MIN_GAP", "EngineSummaries", "summaries_for"]

_log = logging.getLogger("cascade.runtime.summary")

SUMMARY_MIN_GAP = 1.0
"""Seconds between two summaries of one source at least (the last run's end and answers to roll
calls excepted)."""

ROLLCALL_ANSWERS = (4.0, 8.0)
"""Roll calls answered at once: 4 a second, 8 in a burst (a flood of roll calls costs a source
that many summaries at most; one over it is answered by the next summary of a live run, and
counted in :attr:`EngineSummaries.unanswered` when none is live)."""

_TALLIED = TaskTally.__struct_fields__


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


def _tally(counters: RunCounters) -> TaskTally:
    return TaskTally(
        running=max(0, counters.running),
        blocked=counters.blocked,
        held=counters.held,
        pending=counters.pending,
        completed=counters.completed,
        failed=counters.failed,
        skipped=counters.skipped,
        cancelled=counters.cancelled,
    )


@dataclass(slots=True)
class _Live:
    telemetry: TelemetrySubscriber
    org_id: str
    project_id: str
    started: str
    trace_id: str | None

    def listed(self) -> SummaryRun:
        counters = self.telemetry.counters
        origin = self.telemetry.origin
        return SummaryRun(
            run_id=self.telemetry.run_id,
            org_id=self.org_id,
            project_id=self.project_id,
            status="Running",
            started=self.started,
            tasks=_tally(counters),
            planned=counters.total,
            last_seq=self.telemetry.seq,
            trace_id=self.trace_id,
            name=self.telemetry.name,
            carried_on_from=None if origin is None else origin.carried_on_from,
        )


class EngineSummaries:
    """Publishes one source's summary, retained, on ``{prefix}/summary/{source}`` (QoS 0),
    and before it, per org and project of the runs it lists, the summary of those alone on
    ``{prefix}/summary/{org}/{project}/{source}`` (what an ACL binds to the login's orgs and
    projects, where readers take the listed runs from; a place none of them is of any more
    has its summary cleared).

    Every engine on one connector feeds the same instance (:func:`summaries_for`): the
    summary is the source's, whatever number of engines and runs it has. It counts the
    runs started since this process started, by status, and their tasks by state (live
    runs as they stand, ended ones as they ended), the telemetry events sent and dropped
    and their rate, and lists up to :data:`~cascade.interfaces.wire.MAX_SUMMARY_RUNS` runs.

    It is published when a run starts or ends, at most once every
    :data:`SUMMARY_MIN_GAP` seconds, and every ``interval`` seconds while a run is live
    (``None``: only at starts and ends); the last live run's end is published at once, so
    a source that stops leaves its final figures. Where the broker sends retained
    messages only to exact subscriptions, it answers readers' roll calls with it at once, as
    the connector does with its status (:data:`ROLLCALL_ANSWERS` bounds them), from its first
    run's start for as long as the connection lives: a serving process whose runs have all
    ended still lists them, so ``cascade rerun`` finds a run there without a history, as it
    does in the summary a broker retains. Nothing here makes a run wait: building one costs
    a walk of the live runs, and a failed publish is logged (at a limited rate) and counted
    in :attr:`failed`.
    """

    def __init__(self, connector: Connector, prefix: str, interval: float | None = 5.0) -> None:
        self.connector = connector
        self.topic = summary_topic(connector.source_id, prefix)
        self.prefix = prefix
        self._places: set[str] = set()  # the topics of the places last published
        self.interval = interval
        self.published = 0
        """Summaries published."""
        self.failed = 0
        """Summaries whose publish failed."""
        self.unanswered = 0
        """Roll calls over :data:`ROLLCALL_ANSWERS` while no run was live: not answered."""
        self._live: dict[str, _Live] = {}
        self._ended: deque[SummaryRun] = deque(maxlen=MAX_SUMMARY_RUNS)
        self._ended_tasks = dict.fromkeys(_TALLIED, 0)
        self._runs = RunTally()
        self._ended_events = 0
        self._ended_dropped = 0
        self._rate_events = 0  # events at the previous summary, and when (monotonic)
        self._rate_at = time.monotonic()
        self._published_at = -math.inf
        self._wake = asyncio.Event()
        self._loop: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()
        self._rollcall: SubscriptionHandle | None = None
        self._answers = TokenBucket(*ROLLCALL_ANSWERS)
        self._log = RateLimitedLogger(_log)

    def run_started(
        self,
        telemetry: TelemetrySubscriber,
        *,
        org_id: str,
        project_id: str,
        trace_id: str | None = None,
    ) -> None:
        """A run with this telemetry started: count it, and publish soon."""
        self._live[telemetry.run_id] = _Live(telemetry, org_id, project_id, _now(), trace_id)
        self._runs.running = len(self._live)
        if self._loop is None:  # its own event, as the engine may be run by one loop after another
            self._wake = asyncio.Event()
            self._subscribed = asyncio.Event()
            self._loop = asyncio.get_running_loop().create_task(
                self._publish_loop(), name="cascade-summary"
            )
        self._wake.set()

    async def run_ended(
        self, telemetry: TelemetrySubscriber, status: str, timeout: float = 2.0
    ) -> None:
        """The run of this telemetry ended with ``status`` (``Succeeded``, ``Failed`` or
        ``Cancelled``); with no other run live, publish the final summary now (waiting at
        most ``timeout`` seconds; never raises)."""
        live = self._live.pop(telemetry.run_id, None)
        if live is None:
            return
        run = live.listed()
        run.status = "Succeeded" if status == "Succeeded" else "Failed"
        run.cancelled = status == "Cancelled"
        run.ended = _now()
        self._ended.appendleft(run)
        for name in _TALLIED:
            self._ended_tasks[name] += getattr(run.tasks, name)
        runs = self._runs
        runs.running = len(self._live)
        if run.status == "Succeeded":
            runs.succeeded += 1
        else:
            runs.failed += 1
            runs.cancelled += run.cancelled
        self._ended_events += telemetry.seq
        self._ended_dropped += telemetry.dropped
        if self._live:
            self._wake.set()
            return
        await self._stop(timeout)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._publish(), timeout)

    def summary(self) -> EngineSummary:
        """The source's summary now."""
        live = [run.listed() for run in self._live.values()]
        tasks = dict(self._ended_tasks)
        for run in live:
            for name in _TALLIED:
                tasks[name] += getattr(run.tasks, name)
        events = self._ended_events + sum(run.telemetry.seq for run in self._live.values())
        dropped = self._ended_dropped + sum(run.telemetry.dropped for run in self._live.values())
        now = time.monotonic()
        elapsed = now - self._rate_at
        rate = (events - self._rate_events) / elapsed if elapsed > 0 else 0.0
        self._rate_events, self._rate_at = events, now
        listed = (live + list(self._ended))[:MAX_SUMMARY_RUNS]
        session = getattr(self.connector, "session", None)
        return EngineSummary(
            source=self.connector.source_id,
            session=session if isinstance(session, int) and session >= 0 else None,
            runs=RunTally(
                **{name: getattr(self._runs, name) for name in RunTally.__struct_fields__}
            ),
            tasks=TaskTally(**tasks),
            events=events,
            events_per_s=round(max(0.0, rate), 1),
            dropped=dropped + self.connector.stats.dropped,
            listed=listed,
            more_live=max(0, len(live) - MAX_SUMMARY_RUNS),
        )

    async def _publish_loop(self) -> None:
        """While a run is live: publish when woken (a start, an end, a roll call) or every
        ``interval`` seconds, never twice within :data:`SUMMARY_MIN_GAP`."""
        await self._answer_rollcalls()
        while self._live:
            if self.interval is None:
                await self._wake.wait()
            else:
                await event_set(self._wake, self.interval)
            gap = self._published_at + SUMMARY_MIN_GAP - time.monotonic()
            if gap > 0:
                await asyncio.sleep(gap)  # the rate bound, not a synchronisation
            self._wake.clear()
            if self._live:
                await self._publish()

    async def _answer_rollcalls(self) -> None:
        """Where ``{prefix}/summary/+`` brings no retained summary, a reader's roll call is
        answered with one (as the connector answers it with the source's status). Subscribed
        anew at each first live run (the one before dropped: the connector may have been
        closed and opened again since) and kept once the runs end, so that the ended runs
        are still listed."""
        handle, self._rollcall = self._rollcall, None
        if handle is not None:
            with contextlib.suppress(Exception):
                await handle.unsubscribe()
        try:
            self._rollcall = await self.connector.answer_rollcalls(self._on_rollcall)
        except Exception as exc:
            self._log.warning("rollcall", "could not subscribe to roll calls: %s", exc)
        finally:
            self._subscribed.set()

    def _on_rollcall(self, message: Message) -> Awaitable[None] | None:
        """Answered at once, within :data:`ROLLCALL_ANSWERS` (the subscription awaits the
        publish: nothing is left running after the connection); over it, by the live runs'
        next summary, or not at all when none is live (counted)."""
        if self._answers.wait_time() == 0.0:
            self._answers.take()
            return self._publish()
        if self._loop is not None:
            self._wake.set()
        else:
            self.unanswered += 1
            self._log.warning(
                "rollcalls", "roll calls over %s a second left unanswered", ROLLCALL_ANSWERS[0]
            )
        return None

    async def _stop(self, timeout: float) -> None:
        """The publish loop stopped (no run is live); roll calls are still answered: a
        subscription to them under way (a short run) is let end first, for ``timeout``
        seconds at most."""
        loop, self._loop = self._loop, None
        if loop is not None:
            await event_set(self._subscribed, timeout)
            loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await loop

    def placed(self, summary: EngineSummary) -> dict[str, EngineSummary]:
        """``summary`` per org and project of the runs it lists, by topic
        (:func:`~cascade.interfaces.wire.placed_summaries`), each counting all its
        place's live runs."""
        live: dict[tuple[str, str], int] = {}
        for each in self._live.values():
            place = (each.org_id, each.project_id)
            live[place] = live.get(place, 0) + 1
        return placed_summaries(summary, self.prefix, live)

    async def _publish(self) -> None:
        self._published_at = time.monotonic()
        summary = self.summary()
        placed = self.placed(summary)
        gone = self._places - placed.keys()
        self._places = self._places | placed.keys()  # until their clears went: retried
        sent: list[tuple[str, EngineSummary | bytes]] = [
            *((topic, b"") for topic in sorted(gone)),
            *placed.items(),
            (self.topic, summary),
        ]
        try:
            for topic, payload in sent:
                await self.connector.publish(topic, payload, qos=0, retain=True)
        except Exception as exc:
            self.failed += 1
            reason = str(exc) or "(without a message)"
            self._log.warning(
                "publish", "summary publish failed: %s: %s", type(exc).__name__, reason
            )
        else:
            self.published += 1
            self._places -= gone


_BY_CONNECTOR: weakref.WeakKeyDictionary[Connector, dict[str, EngineSummaries]] = (
    weakref.WeakKeyDictionary()
)


def summaries_for(
    connector: Connector, prefix: str, interval: float | None = 5.0
) -> EngineSummaries:
    """The one :class:`EngineSummaries` of ``connector``'s source under ``prefix``: engines
    that share a connector share its summary (the first one's ``interval`` holds)."""
    try:
        by_prefix = _BY_CONNECTOR.setdefault(connector, {})
    except TypeError:  # a connector that cannot be weakly referenced or hashed: its own
        return EngineSummaries(connector, prefix, interval)
    summaries = by_prefix.get(prefix)
    if summaries is None:
        summaries = by_prefix[prefix] = EngineSummaries(connector, prefix, interval)
    return summaries
