"""A fleet from its engines' summaries: what a view shows without reading every event.

Each engine's retained summary (``{prefix}/summary/{source}``,
:class:`~cascade.interfaces.summaries.EngineSummary`) is kept on its :class:`EngineView`;
:func:`fleet_totals` adds them up for an overview of thousands of engines. The runs it lists
are taken from its summaries per org and project (``{prefix}/summary/{org}/{project}/{source}``)
only, whose topic an ACL binds to the engine login's orgs and projects: one listing a run of
another org or project is refused, and counted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import msgspec

from cascade.interfaces import InvalidMessageError, Message, decode_level, same_source
from cascade.interfaces.summaries import (
    EngineSummary,
    RunTally,
    SummaryRun,
    TaskTally,
    decode_summary,
    misplaced_runs,
)

from ._refusals import (
    REASON_FUTURE,
    REASON_INCONSISTENT,
    REASON_MISMATCH,
    REASON_NOT_ITS_PLACE,
    Refusals,
    ahead,
)
from ._timestamps import parse_timestamp
from ._views import EngineView, RunView

__all__ = [
    "MAX_MORE_LIVE",
    "MAX_PLACES",
    "CarriedOn",
    "FleetTotals",
    "apply_summary",
    "carried_on",
    "carries",
    "counted_summary",
    "fleet_totals",
    "stranded_runs",
]

MAX_MORE_LIVE = 10_000
"""Live runs a summary may say it leaves out of its list (``more_live``) at most: one engine
process running more at once is not plausible, and a summary claiming more is refused."""


MAX_PLACES = 64
"""Orgs and projects whose summaries a reader keeps per engine at most: an engine lists 20
runs, so publishes 20 at once (those of places it left are cleared); one of a place more is
refused as numbers that disagree, so that no login can make a reader keep a summary per
project it invents."""


def apply_summary(
    engines: dict[str, EngineView],
    refusals: Refusals,
    clock: Callable[[], float],
    message: Message,
    prefix: str = "cascade",
) -> None:
    """An engine's summary: kept on its engine, unless older than the one kept or refused.

    A summary is a claim: one whose live runs are more than it lists and says it leaves out
    (``more_live``, at most :data:`MAX_MORE_LIVE`) is refused, as one stamped beyond the
    clock skew is, and one per org and project that lists a run of another (its topic's org
    and project are what an ACL binds). Summaries are ordered by their stamp, but never by a
    time the reader has not reached: one stamped ahead (within the skew) counts as received
    now, so the engine's next summary replaces it instead of looking older for minutes. An
    empty payload (a cleared retained summary, `cascade forget`) drops the summary.
    """
    levels = message.topic.removeprefix(prefix + "/").split("/")
    if len(levels) not in (2, 4):
        raise InvalidMessageError(f"not a summary's topic: {message.topic!r}")
    level = levels[-1]
    place = (levels[1], levels[2]) if len(levels) == 4 else None
    if not message.raw:
        engine = engines.get(decode_level(level))
        if engine is not None:
            if place is None:
                engine.claimed = None
            else:
                engine.placed.pop(place, None)
            engine.summary = _shown(engine)
        return
    summary = decode_summary(message.raw)
    if not same_source(summary.source, level):
        refusals.count(decode_level(level), REASON_MISMATCH)  # the topic is what an ACL binds
        return
    now = clock()
    stamp = parse_timestamp(summary.ts)
    if stamp is not None and ahead(stamp, now):
        refusals.count(summary.source, REASON_FUTURE)
        return
    if not _consistent(summary):
        refusals.count(summary.source, REASON_INCONSISTENT)
        return
    if place is not None and misplaced_runs(summary, message.topic, prefix):
        refusals.count(summary.source, REASON_NOT_ITS_PLACE)
        return
    engine = engines.get(summary.source)
    if engine is None:
        engine = engines[summary.source] = EngineView(summary.source, None)
    at = min(stamp, now) if stamp is not None else now
    if place is not None:
        kept = engine.placed.get(place)
        if kept is None and len(engine.placed) >= MAX_PLACES:
            refusals.count(summary.source, REASON_INCONSISTENT)
            return
        if kept is not None and _stamp(kept, now) > at:
            return
        engine.placed[place] = summary
    else:
        if engine.claimed is not None and at < engine.summary_at:
            return
        engine.claimed, engine.summary_at = summary, at
    engine.summary = _shown(engine)
    engine.heard(at if stamp is not None or message.retain else now)


def _stamp(summary: EngineSummary, now: float) -> float:
    stamp = parse_timestamp(summary.ts)
    return min(stamp, now) if stamp is not None else now


def _shown(engine: EngineView) -> EngineSummary | None:
    """``engine``'s summary as shown: its own figures, listing the runs its summaries per org
    and project vouch for (live first); without its own (a reader of some orgs), theirs
    added up."""
    placed = engine.placed.values()
    listed = sorted(
        (run for each in placed for run in each.listed), key=lambda run: run.status != "Running"
    )
    live = sum(run.status == "Running" for run in listed)
    claimed = engine.claimed
    if claimed is not None:
        unlisted = max(claimed.more_live, claimed.runs.running - live, 0)
        return msgspec.structs.replace(claimed, listed=listed, more_live=unlisted)
    if not engine.placed:
        return None
    latest = max(placed, key=lambda each: each.ts)
    tasks = TaskTally()
    for each in placed:
        tasks += each.tasks
    return EngineSummary(
        source=engine.source,
        ts=latest.ts,
        session=latest.session,
        runs=RunTally(running=sum(each.runs.running for each in placed)),
        tasks=tasks,
        events=sum(each.events for each in placed),
        listed=listed,
        more_live=sum(each.more_live for each in placed),
    )


def _consistent(summary: EngineSummary) -> bool:
    """Whether ``summary``'s live runs are what it lists live and says it leaves out."""
    if summary.more_live > MAX_MORE_LIVE:
        return False
    listed_live = sum(run.status == "Running" for run in summary.listed)
    return summary.runs.running <= listed_live + summary.more_live


def counted_summary(engine: EngineView) -> EngineSummary | None:
    """``engine``'s summary as a fleet's totals count it: only once its source has a status.

    Every engine announces its status (retained) before its first summary; a summary of a
    source that never did (an *unconfirmed* one) is shown as such, never added to the fleet's
    runs nor counted as an engine online (a publisher cannot invent a fleet with summaries
    alone).
    """
    return engine.summary if engine.status is not None else None


CarriedOn = dict[str, tuple[str, SummaryRun]]
"""The runs the engines' summaries say are carried on (:func:`carried_on`): by the run each
carries on, the source that carries it on and its run there."""


def carried_on(engines: Iterable[EngineView]) -> CarriedOn:
    """The runs ``engines``' counted summaries (:func:`counted_summary`) list as carrying on
    another (:attr:`~cascade.interfaces.summaries.SummaryRun.carried_on_from`), by the run each
    carries on (the latest started, where two say so)."""
    carried: CarriedOn = {}
    for engine in engines:
        summary = counted_summary(engine)
        if summary is None:
            continue
        for run in summary.listed:
            lost = run.carried_on_from
            if lost is not None and lost != run.run_id:
                kept = carried.get(lost)
                if kept is None or kept[1].started < run.started:
                    carried[lost] = (engine.source, run)
    return carried


def carries(carried: CarriedOn, run: SummaryRun | RunView) -> tuple[str, SummaryRun] | None:
    """The source and run that carry ``run`` on, as ``carried`` says, if of its org and project
    (a claim of another place, which a broker's ACL lets anyone publish, carries nothing)."""
    found = carried.get(run.run_id)
    if found is None or (found[1].org_id, found[1].project_id) != (run.org_id, run.project_id):
        return None
    return found


def stranded_runs(engine: EngineView, carried: CarriedOn) -> tuple[int, int]:
    """An offline engine's live runs, as its last summary counts them: those stranded (lost:
    nobody carries them on, or none that this view knows of) and those another server carries
    on (``carried``: :func:`carried_on`); ``(0, 0)`` for an engine online or without a
    counted summary."""
    summary = counted_summary(engine)
    if summary is None or engine.online:
        return 0, 0
    moved = sum(
        run.status == "Running" and carries(carried, run) is not None for run in summary.listed
    )
    return max(0, summary.runs.running - moved), moved


@dataclass
class FleetTotals:
    """A fleet added up from its engines' summaries.

    ``runs`` and ``tasks`` count over the engines that are online (or whose status is
    unknown); an offline engine's live runs are ``stranded`` (it ended without ending
    them) but for those another server's summary says it carries on (``carried``).
    ``events_per_s`` and ``dropped`` add up the online engines' too;
    ``without_summary``: engines heard of that publish none (older engines, or none yet);
    ``unconfirmed``: sources whose summary came without a status (:func:`counted_summary`),
    neither online nor counted; ``live_without_summary``: the live runs of the online engines
    without a summary, as their own events last showed them (:attr:`EngineView.live_seen`):
    of those that announced a status only, so that telemetry alone switches no view.
    """

    engines: int = 0
    online: int = 0
    without_summary: int = 0
    unconfirmed: int = 0
    runs: RunTally = field(default_factory=RunTally)
    tasks: TaskTally = field(default_factory=TaskTally)
    events_per_s: float = 0.0
    dropped: int = 0
    stranded: int = 0
    live_without_summary: int = 0
    carried: int = 0

    @property
    def live_runs(self) -> int:
        """Runs live now on online engines, however they are known: as the summaries count
        them, and as their events showed them for the engines that send none."""
        return self.runs.running + self.live_without_summary


def fleet_totals(engines: Iterable[EngineView]) -> FleetTotals:
    """The totals of ``engines``' summaries (see :class:`FleetTotals`)."""
    engines = list(engines)
    moved = carried_on(engines)
    totals = FleetTotals()
    tasks: dict[str, int] = dict.fromkeys(TaskTally.__struct_fields__, 0)
    runs: dict[str, int] = dict.fromkeys(RunTally.__struct_fields__, 0)
    for engine in engines:
        totals.engines += 1
        summary = counted_summary(engine)
        if summary is None and engine.summary is not None:
            totals.unconfirmed += 1
            continue
        if engine.online:
            totals.online += 1
        if summary is None:
            totals.without_summary += 1
            if engine.status is not None and engine.online:  # a status vouches for it
                totals.live_without_summary += len(engine.live_seen)
            continue
        if not engine.online:
            stranded, carried = stranded_runs(engine, moved)
            totals.stranded += stranded
            totals.carried += carried
            continue
        for name in tasks:
            tasks[name] += getattr(summary.tasks, name)
        for name in runs:
            runs[name] += getattr(summary.runs, name)
        totals.events_per_s += summary.events_per_s
        totals.dropped += summary.dropped
    totals.tasks, totals.runs = TaskTally(**tasks), RunTally(**runs)
    return totals
