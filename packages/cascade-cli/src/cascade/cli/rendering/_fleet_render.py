"""`cascade watch`'s fleet view: what the engines' summaries say, without a run's events.

The fleet's totals, then the engines that need a look first (a conflict, stranded runs, the
most live runs and failures), as many as the terminal has room for.
"""

from __future__ import annotations

from datetime import tzinfo

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from cascade.reader import (
    LEAVE_BELOW,
    SHOWN,
    CarriedOn,
    EngineView,
    ReaderModel,
    carried_on,
    inert,
    stranded_runs,
)

from ._fleet_rank import needs_a_look
from ._plural import counted
from ._render import (
    TimeFormat,
    constraints_table,
    engine_status_text,
    footer_line,
    ignored_lines,
    names_text,
    refused_lines,
)
from ._summary_text import NO_SUMMARY, fleet_line, offline_text, rate

__all__ = ["FLEET_CHROME", "events_header", "fleet_header", "fleet_table", "render_fleet"]

FLEET_CHROME = 16
"""Lines of the fleet view that are not an engine's row (the header, the totals, the tables'
borders, the constraints, the footer): the engines get the terminal's height less these."""


def fleet_header(engines: int, threshold: int) -> Text:
    """``fleet mode: from 1,200 engines' summaries, above --fleet-threshold 200 live runs``."""
    if threshold == 0:
        why = "--fleet-threshold 0: always"
    else:
        back = int(threshold * LEAVE_BELOW)
        runs = counted(threshold, "live run")
        why = f"above --fleet-threshold {runs} (events again below {back:,})"
    said = counted(engines, "engine's summary", "engines' summaries")
    return Text(f"fleet mode: from {said}, {why}", style="bold")


def events_header(live_runs: int, threshold: int) -> Text:
    """``events mode: 12 live runs in the summaries, fleet mode from --fleet-threshold 200``."""
    return Text(
        f"events mode: {counted(live_runs, 'live run')} in the summaries, "
        f"fleet mode from --fleet-threshold {threshold:,}",
        style="dim",
    )


def _row(engine: EngineView, carried: CarriedOn) -> list[RenderableType]:
    source = Text(inert(engine.source, SHOWN["source"]))
    summary = engine.summary
    if summary is None:  # its live runs as its own events last showed them, if any
        seen = f"{len(engine.live_seen):,} seen, " if engine.online and engine.live_seen else ""
        said = Text(seen + NO_SUMMARY, style="dim")
        return [source, engine_status_text(engine), said, "", "", ""]
    live = Text(f"{summary.runs.running:,}")
    if not engine.online:  # nothing is live on it: stranded, or carried on elsewhere
        stranded = stranded_runs(engine, carried)[0]
        live = Text(offline_text(engine, carried), style="red" if stranded else "")
    else:
        names = names_text(summary)
        if names:
            live.append(f" ({names})", style="dim")
    tasks = summary.tasks
    failed = f"{counted(summary.runs.failed, 'run')}, {counted(tasks.failed, 'task')}"
    return [
        source,
        engine_status_text(engine),
        live,
        f"{tasks.running:,} / {tasks.blocked:,} / {tasks.pending:,}",
        Text(failed, style="red" if summary.runs.failed or tasks.failed else ""),
        rate(summary.events_per_s),
    ]


def fleet_table(state: ReaderModel, offline_max_age: float | None, rows: int) -> Table:
    """The engines that need a look first, at most ``rows``: their live runs (and the names
    their summaries list), tasks running /
    blocked / pending, failures and events/s; the caption says how many are not listed."""
    shown, hidden = state.visible_engines(offline_max_age)
    listed = needs_a_look(shown, rows)
    said = []
    if len(shown) > len(listed):
        more = counted(len(shown) - len(listed), "more engine")
        said.append(f"{more} (cascade status --json lists all)")
    if hidden:
        said.append(f"{hidden:,} offline hidden (--all shows them)")
    table = Table(
        title="Engines", title_justify="left", expand=True, caption="; ".join(said) or None
    )
    for column in ("source", "status", "live runs", "tasks run/blocked/pending", "failed", "rate"):
        table.add_column(column)
    carried = carried_on(state.engines.values())
    for engine in listed:
        table.add_row(*_row(engine, carried))
    if not listed:
        table.add_row(Text("none", style="dim"), "", "", "", "", "")
    return table


def render_fleet(
    state: ReaderModel,
    *,
    threshold: int,
    rows: int,
    offline_max_age: float | None = None,
    broker: str | None = None,
    tz: tzinfo | None = None,
) -> RenderableType:
    """The fleet view: which mode and why, the fleet's totals, the engines that need a look
    first (at most ``rows``), the constraints, then the connection and the time."""
    times = TimeFormat(state.clock(), tz)
    totals = state.fleet()
    parts: list[RenderableType] = [
        fleet_header(totals.engines, threshold),
        Text(fleet_line(totals)),
        fleet_table(state, offline_max_age, rows),
        constraints_table(state, times),
    ]
    parts.extend(ignored_lines(state))
    parts.extend(refused_lines(state))
    parts.append(footer_line(state, times, broker))
    return Group(*parts)
