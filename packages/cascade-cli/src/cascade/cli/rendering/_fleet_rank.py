"""Which engines of thousands a bounded view lists: those that need a look first."""

from __future__ import annotations

import heapq
from collections.abc import Iterable

from cascade.reader import EngineView

__all__ = ["needs_a_look"]


def _rank(engine: EngineView) -> tuple[bool, bool, int, int, int, str]:
    summary = engine.summary  # without one: the runs its own events showed live
    live = summary.runs.running if summary is not None else len(engine.live_seen)
    failed = summary.runs.failed if summary is not None else 0
    failing = summary.tasks.failed if summary is not None else 0
    stranded = not engine.online and live > 0
    return (not engine.conflict, not stranded, -live, -failed, -failing, engine.source)


def needs_a_look(engines: Iterable[EngineView], most: int) -> list[EngineView]:
    """At most ``most`` of ``engines``, first those two processes share (a conflict), then
    offline ones with live runs (stranded), then by live runs, failed runs and failed tasks
    (most first), then by source: a partial sort, so thousands cost little."""
    return heapq.nsmallest(most, engines, key=_rank)
