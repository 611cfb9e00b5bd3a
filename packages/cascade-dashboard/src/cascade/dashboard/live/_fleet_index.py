"""The fleet as its engines' summaries tell it: totals kept as they change, and the runs the
summaries list, in the pages' order.

Summaries come about once per engine every few seconds, so with thousands of engines each
one must cost little: applying one changes the totals by what that engine's summary changed
(never a walk of every engine) and the runs it lists (at most a few dozen), each moved in a
sorted list by bisection. What a page shows of a fleet is read from here in fleet mode
(``_fleet_mode``): the engines' figures, the fleet's totals, and the runs as summarised.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Any

import msgspec

from cascade.interfaces.summaries import EngineSummary, RunTally, SummaryRun, TaskTally
from cascade.reader import (
    CarriedOn,
    EngineView,
    counted_summary,
    parse_timestamp,
    stranded_runs,
)

__all__ = ["EVENTS", "FLEET", "FleetIndex", "FleetRun", "summary_dict"]

EVENTS = "events"
"""The mode in which the dashboard reads every run's events."""
FLEET = "fleet"
"""The mode in which it reads the engines' summaries, and a run's events once it is opened."""

_RUNS = RunTally.__struct_fields__
_TASKS = TaskTally.__struct_fields__
# an engine's part of the totals: engines, online, without a summary, unconfirmed, its runs by
# status, its tasks by state, events/s, dropped, stranded live runs, live runs its events showed
# (it sends no summary)
_HEAD = 4
_WIDTH = _HEAD + len(_RUNS) + len(_TASKS) + 4
_NOTHING: tuple[float, ...] = (0,) * _WIDTH
_NO_TALLIES = (0,) * (len(_RUNS) + len(_TASKS))
_UNCONFIRMED: tuple[float, ...] = (1, 0, 0, 1, *_NO_TALLIES, 0.0, 0, 0, 0)

RunKey = tuple[int, float, str]


def _share(engine: EngineView | None, carried: CarriedOn) -> tuple[float, ...]:
    """What ``engine`` adds to the totals: :func:`~cascade.reader.fleet_totals` of
    it alone (an offline engine's runs are stranded, not live, but for those ``carried`` says
    another server carries on; an unconfirmed summary counts for nothing but itself), as one
    flat tuple. Worked out here, not by ``fleet_totals`` itself: it is asked at every
    summary, thousands a second in a fleet."""
    if engine is None:
        return _NOTHING
    summary = counted_summary(engine)
    if summary is None and engine.summary is not None:
        return _UNCONFIRMED
    online = engine.online
    if summary is None:
        live = len(engine.live_seen) if engine.status is not None and online else 0
        return (1, int(online), 1, 0, *_NO_TALLIES, 0.0, 0, 0, live)
    if not online:
        return (1, 0, 0, 0, *_NO_TALLIES, 0.0, 0, stranded_runs(engine, carried)[0], 0)
    return (
        1,
        1,
        0,
        0,
        *msgspec.structs.astuple(summary.runs),
        *msgspec.structs.astuple(summary.tasks),
        summary.events_per_s,
        summary.dropped,
        0,
        0,
    )


class FleetRun(msgspec.Struct, eq=False, gc=False):
    """One run an engine's summary lists, with what the runs' list reads of it (its
    ``run_id``, ``org_id``, ``project_id``, ``status`` and ``source``, as of a :class:`RunView`).

    Not tracked by the garbage collector (it refers to no container that could refer back):
    a fleet's tens of thousands of them made every full collection a pause of the loop."""

    run: SummaryRun
    source: str
    key: RunKey
    version: int
    """The model version its summary last changed at."""
    json: bytes | None = None
    """Its row as JSON, built once per change (``_model``)."""

    @property
    def run_id(self) -> str:
        """The run's id."""
        return self.run.run_id

    @property
    def org_id(self) -> str:
        """The run's org."""
        return self.run.org_id

    @property
    def project_id(self) -> str:
        """The run's project."""
        return self.run.project_id

    @property
    def status(self) -> str:
        """``Running``, ``Succeeded``, ``Failed`` or ``Cancelled`` (a cancelled run)."""
        return "Cancelled" if self.run.cancelled else self.run.status


def _key(run: SummaryRun) -> RunKey:
    started = parse_timestamp(run.started) or 0.0
    return (0 if run.status == "Running" else 1, -started, run.run_id)


def summary_dict(summary: EngineSummary | None) -> dict[str, Any] | None:
    """An engine's summary as the engines' list shows it (``None``: it publishes none)."""
    if summary is None:
        return None
    return {
        "ts": summary.ts,
        "live_runs": summary.runs.running,
        "runs": {name: getattr(summary.runs, name) for name in _RUNS},
        "tasks": {name: getattr(summary.tasks, name) for name in _TASKS},
        "events": summary.events,
        "events_per_s": summary.events_per_s,
        "dropped": summary.dropped,
        "more_live": summary.more_live,
    }


class FleetIndex:
    """The engines' summaries added up, and the runs they list, kept up to date per summary.

    :meth:`engine` is told of every engine whose summary or status changed; the totals
    (:meth:`totals`) and the runs' sorted list (:attr:`keys`, :attr:`items`) follow at the
    cost of that engine's share and its listed runs. A run listed by two engines stays the
    first one's (the other cannot have it too). A listed run that carries on another
    (``carried_on_from``) takes that run out of its offline engine's stranded ones: that
    engine's share is worked out again, and only it.
    """

    def __init__(self, threshold: int | None = None) -> None:
        self.mode = EVENTS
        """:data:`EVENTS` or :data:`FLEET` (set by the hub's ``FleetMode``)."""
        self.threshold = threshold
        """Live runs from which the dashboard reads a fleet (``None``: never told)."""
        self.runs: dict[str, FleetRun] = {}
        self.keys: list[RunKey] = []
        """The listed runs' keys in the pages' order: running first, the newest first."""
        self.items: list[FleetRun] = []
        """The listed runs, in the order of :attr:`keys`."""
        self.order = 0
        """The model version at which a run was last added, removed or moved."""
        self._sums = [0.0] * _WIDTH
        self._shares: dict[str, tuple[float, ...]] = {}
        self._summaries: dict[str, EngineSummary] = {}
        self._listed: dict[str, list[str]] = {}
        self._live_seen: dict[str, int] = {}
        self._views: dict[str, EngineView] = {}
        self._carried: CarriedOn = {}  # by the run carried on: its carrier and run there
        self._carrying: dict[str, list[str]] = {}  # by carrier: the runs it carries on

    @property
    def live_runs(self) -> int:
        """Runs live now on online engines, as their summaries count them, and as their events
        showed them for those that send none (``live_without_summary``)."""
        return int(self._sums[_HEAD]) + int(self._sums[-1])

    def live_seen(self, source: str) -> int:
        """The live runs ``source``'s events showed when :meth:`engine` last looked at it."""
        return self._live_seen.get(source, 0)

    def engine(self, source: str, engine: EngineView | None, version: int) -> bool:
        """``source``'s summary or status may have changed at ``version`` (``engine``: its
        view now, ``None`` once forgotten); whether its summary did."""
        summary = counted_summary(engine) if engine is not None else None
        if engine is None:
            self._views.pop(source, None)
        else:
            self._views[source] = engine
        touched = self._carry(source, summary.listed if summary is not None else [])
        self._reshare(source, engine)
        for lost in touched:  # the offline engines of the runs it carries on, or no longer
            kept = self.runs.get(lost)
            if kept is not None and kept.source != source:
                self._reshare(kept.source, self._views.get(kept.source))
        if summary is self._summaries.get(source):
            return False
        if summary is None:
            del self._summaries[source]
        else:
            self._summaries[source] = summary
        self._relist(source, summary.listed if summary is not None else [], version)
        return True

    def _reshare(self, source: str, engine: EngineView | None) -> None:
        """``source``'s part of the totals as ``engine`` (``None``: forgotten) says it now."""
        share = _share(engine, self._carried)
        if engine is None or not engine.live_seen:
            self._live_seen.pop(source, None)
        else:
            self._live_seen[source] = len(engine.live_seen)
        before = self._shares.get(source, _NOTHING)
        if share != before:
            sums = self._sums
            for index in range(_WIDTH):
                sums[index] += share[index] - before[index]
            if engine is None:
                self._shares.pop(source, None)
            else:
                self._shares[source] = share

    def _carry(self, source: str, listed: list[SummaryRun]) -> set[str]:
        """Take the runs ``source`` lists as carrying others on; the runs carried on whose
        carrier changed."""
        now = {
            run.carried_on_from: run
            for run in listed
            if run.carried_on_from is not None and run.carried_on_from != run.run_id
        }
        touched: set[str] = set()
        for lost in self._carrying.pop(source, ()):
            kept = self._carried.get(lost)
            if lost not in now and kept is not None and kept[0] == source:
                del self._carried[lost]
                touched.add(lost)
        for lost, run in now.items():
            kept = self._carried.get(lost)
            if kept is None or kept[0] != source or kept[1].run_id != run.run_id:
                touched.add(lost)
            self._carried[lost] = (source, run)
        if now:
            self._carrying[source] = list(now)
        return touched

    def forget_gone(self, engines: dict[str, EngineView], version: int) -> None:
        """Drop what is kept of the engines no longer in ``engines`` (the model's)."""
        for source in [s for s in self._shares if s not in engines]:
            self.engine(source, None, version)

    def totals(self) -> dict[str, Any]:
        """The fleet's totals (``/api/state``'s ``fleet``): as
        :class:`~cascade.reader.FleetTotals` says them, and the threshold."""
        sums = [int(value) for value in self._sums]
        runs = dict(zip(_RUNS, sums[_HEAD : _HEAD + len(_RUNS)], strict=True))
        tasks = dict(zip(_TASKS, sums[_HEAD + len(_RUNS) : -4], strict=True))
        return {
            "engines": sums[0],
            "online": sums[1],
            "without_summary": sums[2],
            "unconfirmed": sums[3],
            # however known: the summaries' and, of the engines sending none, their events'
            "live_runs": runs["running"] + sums[-1],
            "live_without_summary": sums[-1],
            "runs": runs,
            "tasks": tasks,
            # added and taken away at every summary: rounded, so no drift shows
            "events_per_s": round(max(0.0, self._sums[-4]), 3),
            "dropped": sums[-3],
            "stranded": sums[-2],
            "listed_runs": len(self.runs),
            "threshold": self.threshold,
        }

    def _relist(self, source: str, listed: list[SummaryRun], version: int) -> None:
        before = self._listed.pop(source, [])
        now: list[str] = []
        for run in listed:
            kept = self.runs.get(run.run_id)
            if kept is None:
                kept = self.runs[run.run_id] = FleetRun(run, source, _key(run), version)
                self._insert(kept, version)
            elif kept.source != source or kept.run_id in now:
                continue
            elif kept.run != run:
                # its counts move at every summary; its place only when it starts or ends
                moved = run.status != kept.run.status or run.started != kept.run.started
                key = _key(run) if moved else kept.key
                if key != kept.key:
                    self._remove(kept, version)
                    kept.key = key
                    self._insert(kept, version)
                kept.run, kept.version, kept.json = run, version, None
            now.append(run.run_id)
        if len(now) != len(before) or set(now) != set(before):
            listing = set(now)
            for run_id in before:
                if run_id not in listing:
                    self._remove(self.runs.pop(run_id), version)
        if now:
            self._listed[source] = now

    def _insert(self, run: FleetRun, version: int) -> None:
        at = bisect_left(self.keys, run.key)
        self.keys.insert(at, run.key)
        self.items.insert(at, run)
        self.order = version

    def _remove(self, run: FleetRun, version: int) -> None:
        at = bisect_left(self.keys, run.key)
        del self.keys[at]
        del self.items[at]
        self.order = version
