"""What the engines' summaries say, in a line: the fleet's totals, and one engine's.

Only numbers come from a summary here (msgspec checked them on decoding): no engine's
text reaches the terminal through these lines.
"""

from __future__ import annotations

from cascade.interfaces.summaries import TaskTally
from cascade.reader import CarriedOn, EngineView, FleetTotals, stranded_runs

from ._plural import counted

__all__ = ["NO_SUMMARY", "fleet_line", "offline_text", "rate", "summary_text"]

NO_SUMMARY = "no summary"
"""What an engine that publishes no summary (older, or none yet) shows instead."""


def rate(events_per_s: float) -> str:
    """``1,234.5 ev/s``."""
    return f"{events_per_s:,.1f} ev/s"


def _tasks(tasks: TaskTally) -> str:
    held_count = min(tasks.held, tasks.blocked)  # held are blocked too: a summary saying more lies
    held = f" ({held_count:,} held for a decision)" if held_count else ""
    return (
        f"tasks {tasks.running:,} running, {tasks.blocked:,} blocked{held}, "
        f"{tasks.pending:,} pending"
    )


def fleet_line(totals: FleetTotals) -> str:
    """``fleet: 120 engines (118 online, 2 without summary) · 340 live runs · tasks ...``:
    what the online engines' summaries add up to, and the runs stranded on offline ones."""
    engines = f"{counted(totals.engines, 'engine')} ({totals.online:,} online"
    if totals.without_summary:
        engines += f", {totals.without_summary:,} without summary"
    if totals.unconfirmed:
        engines += f", {totals.unconfirmed:,} unconfirmed (a summary, no status)"
    parts = [
        f"fleet: {engines})",
        counted(totals.live_runs, "live run"),
        _tasks(totals.tasks),
        f"failed {counted(totals.runs.failed, 'run')}, {counted(totals.tasks.failed, 'task')}",
        rate(totals.events_per_s),
        f"{totals.dropped:,} dropped",
    ]
    if totals.stranded:
        parts.append(f"{counted(totals.stranded, 'run')} stranded on offline engines")
    if totals.carried:
        parts.append(f"{counted(totals.carried, 'run')} of offline engines carried on elsewhere")
    return " · ".join(parts)


def offline_text(engine: EngineView, carried: CarriedOn) -> str:
    """An offline engine's runs that were live at its end: ``2 runs stranded (offline), 1
    carried on elsewhere`` (those ``carried`` says another server carries on); nothing live."""
    stranded, moved = stranded_runs(engine, carried)
    said = f"{counted(stranded, 'run')} stranded (offline)"
    return said + (f", {moved:,} carried on elsewhere" if moved else "")


def summary_text(engine: EngineView, carried: CarriedOn | None = None) -> str:
    """One engine's summary: ``3 live runs · tasks 5 running, ... · failed 1 runs, 2 tasks ·
    12.5 ev/s``; an offline engine's runs live at its end are stranded but for those another
    server carries on (``carried``: :func:`~cascade.reader.carried_on`, :func:`offline_text`);
    :data:`NO_SUMMARY` without."""
    summary = engine.summary
    if summary is None:
        return NO_SUMMARY
    if not engine.online:
        return offline_text(engine, carried or {})
    parts = [counted(summary.runs.running, "live run"), _tasks(summary.tasks)]
    if summary.runs.failed or summary.tasks.failed:
        parts.append(
            f"failed {counted(summary.runs.failed, 'run')}, {counted(summary.tasks.failed, 'task')}"
        )
    parts.append(rate(summary.events_per_s))
    if summary.dropped:
        parts.append(f"{summary.dropped:,} dropped")
    return " · ".join(parts)
