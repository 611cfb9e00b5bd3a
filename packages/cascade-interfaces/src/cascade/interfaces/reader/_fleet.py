"""A fleet from its engines' summaries: what a view shows without reading every event.

Each engine's retained summary (``{prefix}/summary/{source}``,
:class:`~cascade.interfaces.EngineSummary`) is kept on its :class:`EngineView`;
:func:`fleet_totals` adds them up for an overview of thousands of engines.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from cascade.interfaces import (
    REASON_FUTURE,
    REASON_MISMATCH,
    Message,
    Refusals,
    RunTally,
    TaskTally,
    ahead,
    decode_summary,
    parse_timestamp,
    same_source,
)

from ._views import EngineView

__all__ = ["FleetTotals", "apply_summary", "fleet_totals"]


def apply_summary(
    engines: dict[str, EngineView],
    refusals: Refusals,
    clock: Callable[[], float],
    message: Message,
) -> None:
    """An engine's summary: kept on its engine, unless older than the one kept or refused.

    An empty payload (a cleared retained summary, `cascade forget`) drops the summary.
    """
    level = message.topic.rsplit("/", 1)[-1]
    if not message.raw:
        engine = engines.get(level)
        if engine is not None:
            engine.summary = None
        return
    summary = decode_summary(message.raw)
    if not same_source(summary.source, level):
        refusals.count(level, REASON_MISMATCH)  # the topic is what an ACL binds
        return
    stamp = parse_timestamp(summary.ts)
    if stamp is not None and ahead(stamp, clock()):
        refusals.count(summary.source, REASON_FUTURE)
        return
    engine = engines.get(summary.source)
    if engine is None:
        engine = engines[summary.source] = EngineView(summary.source, None)
    kept = engine.summary
    if kept is not None and summary.ts < kept.ts:  # ISO 8601 in UTC: text order is time order
        return
    engine.summary = summary
    engine.heard(stamp if stamp is not None or message.retain else clock())


@dataclass
class FleetTotals:
    """A fleet added up from its engines' summaries.

    ``runs`` and ``tasks`` count over the engines that are online (or whose status is
    unknown); an offline engine's live runs are ``stranded`` (it ended without ending
    them). ``events_per_s`` and ``dropped`` add up the online engines' too;
    ``without_summary``: engines heard of that publish none (older engines, or none yet).
    """

    engines: int = 0
    online: int = 0
    without_summary: int = 0
    runs: RunTally = field(default_factory=RunTally)
    tasks: TaskTally = field(default_factory=TaskTally)
    events_per_s: float = 0.0
    dropped: int = 0
    stranded: int = 0

    @property
    def live_runs(self) -> int:
        """Runs live now on online engines."""
        return self.runs.running


def fleet_totals(engines: Iterable[EngineView]) -> FleetTotals:
    """The totals of ``engines``' summaries (see :class:`FleetTotals`)."""
    totals = FleetTotals()
    tasks: dict[str, int] = dict.fromkeys(TaskTally.__struct_fields__, 0)
    runs: dict[str, int] = dict.fromkeys(RunTally.__struct_fields__, 0)
    for engine in engines:
        totals.engines += 1
        summary = engine.summary
        if engine.online:
            totals.online += 1
        if summary is None:
            totals.without_summary += 1
            continue
        if not engine.online:
            totals.stranded += summary.runs.running
            continue
        for name in tasks:
            tasks[name] += getattr(summary.tasks, name)
        for name in runs:
            runs[name] += getattr(summary.runs, name)
        totals.events_per_s += summary.events_per_s
        totals.dropped += summary.dropped
    totals.tasks, totals.runs = TaskTally(**tasks), RunTally(**runs)
    return totals
