"""Which telemetry the dashboard reads: every run's, or, for a fleet, only the opened runs';
and the opened runs' task logs, in either mode.

Below the threshold (live runs, as the engines' summaries count them) the hub subscribes to
every run's telemetry, as it always did. From it (or from the start with a threshold of 0)
it reads the fleet from the summaries alone: the whole-telemetry subscription goes, and a
run's telemetry is subscribed to while some page has the run open, and for
:data:`RELEASE_AFTER` seconds after the last one closed it (a page that reloads, or pages
through, keeps it). Back below ``LEAVE_BELOW`` (80 %) of the threshold, as `cascade watch`,
every run's telemetry is read again: the gap keeps a fleet near the threshold from flapping.

A run's task logs (``logs_filter(run_id=...)``) are read only while it is open, or lingers
as above, whatever the mode: every run's logs would be most of a busy broker's traffic. Once
they are subscribed to, its :attr:`FleetMode.backfill` (a history's, ``_log_backfill``) fills
in the lines logged before.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from cascade.interfaces import Connector, MessageCallback, SubscriptionHandle, telemetry_filter
from cascade.interfaces.logs import logs_filter
from cascade.reader import next_mode

from ._fleet_index import FLEET
from ._log_backfill import Recorded
from ._model import DashboardModel

if TYPE_CHECKING:
    pass

__all__ = ["MAX_LINGERING", "RELEASE_AFTER", "Backfill", "FleetMode"]

RELEASE_AFTER = 30.0
"""Seconds a run's telemetry stays subscribed to after the last page that had it open closed."""
MAX_LINGERING = 64
"""Runs no page has open kept subscribed at most (the oldest closed go first): a script
asking ``/api/state?run=`` for many runs costs the broker a bounded number of subscriptions."""

_log = logging.getLogger("cascade.dashboard")

Backfill = Callable[[str, int], Awaitable[Recorded]]
"""Reads a run's last recorded log lines, at most so many, and its tasks' counts
(``LogBackfill``)."""


class FleetMode:
    """The hub's telemetry subscriptions: the whole telemetry's handle, or one per opened run.

    :meth:`consider` is told the live runs at every summary; :meth:`open` and :meth:`close`
    count the pages (streams) that have a run open; :meth:`touch` is a one-off look. The
    subscriptions follow in a task of their own (:attr:`settled` is set when they match).
    """

    def __init__(
        self,
        connector: Connector,
        callback: MessageCallback,
        model: DashboardModel,
        *,
        threshold: int,
        release_after: float = RELEASE_AFTER,
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        self.connector = connector
        self.callback = callback
        self.model = model
        self.threshold = threshold
        self.release_after = release_after
        self.on_change = on_change
        self.settled = asyncio.Event()
        """Set while the subscriptions are those the mode and the open runs want."""
        self._whole: SubscriptionHandle | None = None
        self._runs: dict[str, SubscriptionHandle] = {}
        self._logs: dict[str, SubscriptionHandle] = {}
        self._opens: dict[str, int] = {}
        self._closed: dict[str, object] = {}  # run id -> its last close, the oldest first
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._timers: set[asyncio.TimerHandle] = set()
        self.backfill: Backfill | None = None
        """Where an opened run's earlier log lines are read from (``None``: nowhere)."""
        self._seeding: set[asyncio.Task[None]] = set()
        model.fleet.threshold = threshold

    @property
    def fleet(self) -> bool:
        """Whether the fleet is read from its engines' summaries."""
        return self.model.fleet.mode == FLEET

    @property
    def logged(self) -> frozenset[str]:
        """The runs whose task logs are subscribed to."""
        return frozenset(self._logs)

    @property
    def followed(self) -> frozenset[str]:
        """The runs whose telemetry is subscribed to one by one."""
        return frozenset(self._runs)

    async def start(self) -> None:
        """Subscribe as the threshold says (``0``: never to every run), failing as the
        connector does; the summaries read before may have said a fleet already."""
        if self.threshold == 0:
            self.model.set_mode(FLEET)
        await self._follow()

    def consider(self, live_runs: int) -> None:
        """The live runs now: switch mode at the threshold, back below ``LEAVE_BELOW`` of it."""
        after = next_mode("fleet" if self.fleet else "events", live_runs, self.threshold)
        if (after == FLEET) == self.fleet:
            return
        if after == FLEET:
            _log.info("fleet mode: %d live runs (threshold %d)", live_runs, self.threshold)
        else:
            _log.info("reading every run's events again: %d live runs", live_runs)
        self._switch(after)

    def open(self, run_id: str) -> None:
        """A page opened ``run_id`` (until its :meth:`close`)."""
        self._opens[run_id] = self._opens.get(run_id, 0) + 1
        self._closed.pop(run_id, None)
        if run_id not in self._logs or (self.fleet and run_id not in self._runs):
            self._kick()

    def close(self, run_id: str) -> None:
        """A page that had ``run_id`` open closed it (its stream ended)."""
        left = self._opens.get(run_id, 0) - 1
        if left > 0:
            self._opens[run_id] = left
            return
        self._opens.pop(run_id, None)
        closing = self._closed[run_id] = object()
        while len(self._closed) > MAX_LINGERING:
            del self._closed[next(iter(self._closed))]
            self._kick()
        loop = asyncio.get_running_loop()
        self._timers = {t for t in self._timers if t.when() > loop.time()}
        self._timers.add(loop.call_later(self.release_after, self._expire, run_id, closing))

    def touch(self, run_id: str) -> None:
        """A one-off look at ``run_id`` (``/api/state?run=``): followed as if just closed."""
        self.open(run_id)
        self.close(run_id)

    async def stop(self) -> None:
        """Stop following: no timer nor switch is left running (the connector is closing)."""
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        for seeding in list(self._seeding):
            seeding.cancel()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _switch(self, mode: str) -> None:
        self.model.set_mode(mode)
        self.on_change()
        self._kick()

    def _expire(self, run_id: str, closing: object) -> None:
        """``release_after`` seconds since ``closing``: released unless opened since."""
        if self._closed.get(run_id) is closing:
            del self._closed[run_id]
            self._kick()

    def _wanted(self) -> set[str]:
        """The runs to follow one by one: the open ones and those closed lately (fleet mode)."""
        return self._opened() if self.fleet else set()

    def _opened(self) -> set[str]:
        """The runs open in some page, and those closed lately: their logs are read."""
        return set(self._opens) | set(self._closed)

    async def _follow_logs(self, prefix: str) -> None:
        wanted = self._opened()
        for run_id in sorted(wanted - set(self._logs)):
            run_filter = logs_filter(run_id=run_id, prefix=prefix)
            self._logs[run_id] = await self.connector.subscribe(run_filter, self.callback)
            self._seed(run_id)
        for run_id in sorted(set(self._logs) - wanted):
            await self._logs.pop(run_id).unsubscribe()
            self.model.forget_logs(run_id)

    def _seed(self, run_id: str) -> None:
        """Fill in the lines ``run_id`` logged before its logs were subscribed to."""
        if self.backfill is not None:
            seeding = asyncio.get_running_loop().create_task(self._seeded(run_id, self.backfill))
            self._seeding.add(seeding)
            seeding.add_done_callback(self._seeding.discard)

    async def _seeded(self, run_id: str, backfill: Backfill) -> None:
        try:
            recorded = await backfill(run_id, self.model.logs.keep_lines)
        except Exception:
            _log.warning("could not read run %s's earlier log lines", run_id, exc_info=True)
            return
        # released meanwhile: its lines are no longer kept, and must not come back
        if run_id in self._logs and self.model.seed_logs(run_id, *recorded):
            self.on_change()

    def _kick(self) -> None:
        self.settled.clear()
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._follow_logged())

    async def _follow_logged(self) -> None:
        try:
            await self._follow()
        except Exception:  # the broker went away: the next open, close or switch tries again
            _log.warning("could not change the dashboard's subscriptions", exc_info=True)

    async def _follow(self) -> None:
        """Change the subscriptions until they are what the mode and the open runs want:
        a run's own first and the whole telemetry's last on the way into fleet mode, the
        whole telemetry's first on the way out, so no open run misses an event."""
        prefix = self.connector.topic_prefix
        async with self._lock:
            while True:
                await self._follow_logs(prefix)
                wanted, fleet = self._wanted(), self.fleet
                for run_id in sorted(wanted - set(self._runs)):
                    run_filter = telemetry_filter(run_id=run_id, prefix=prefix)
                    self._runs[run_id] = await self.connector.subscribe(run_filter, self.callback)
                    self.model.state.telemetry_filters.add(run_filter)
                    # its engine (the one whose summary lists it) says where the run is
                    listed = self.model.fleet.runs.get(run_id)
                    source = listed.source if listed is not None else None
                    self.model.state.request_snapshot(run_id, 0, source)
                whole_filter = telemetry_filter(prefix=prefix)
                if not fleet and self._whole is None:
                    self._whole = await self.connector.subscribe(whole_filter, self.callback)
                    self.model.state.telemetry_filters.add(whole_filter)
                if fleet and self._whole is not None:
                    whole, self._whole = self._whole, None
                    self.model.state.telemetry_filters.discard(whole_filter)
                    await whole.unsubscribe()
                    self._forget([r for r in self.model.state.runs if r not in self._runs])
                for run_id in sorted(set(self._runs) - wanted):
                    run_filter = telemetry_filter(run_id=run_id, prefix=prefix)
                    self.model.state.telemetry_filters.discard(run_filter)
                    await self._runs.pop(run_id).unsubscribe()
                    if self.fleet:
                        self._forget([run_id])
                settled = self._wanted() == set(self._runs) and fleet == self.fleet
                if settled and self._opened() == set(self._logs):
                    self.settled.set()
                    return

    def _forget(self, unread: list[str]) -> None:
        """Drop the runs whose events are no longer read: what is kept of them would go
        stale, and a fleet's opened runs must not add up in memory."""
        for run_id in unread:
            self.model.forget_run(run_id)
        self.on_change()
