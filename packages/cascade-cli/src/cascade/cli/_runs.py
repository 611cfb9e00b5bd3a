"""`cascade runs`: the recorded runs, newest first, from the history database."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table
from rich.text import Text

from ._broker import MAX_COUNT
from ._context import CliContext
from ._history_db import SINCE_HELP, Db, Json, cell, echo_json, open_history, query, since_seconds
from ._inert import SHOWN, inert
from ._render import STATE_STYLES, TimeFormat, duration
from ._run_ids import SHORT_ID, short_id

if TYPE_CHECKING:
    from cascade.history import SourceGap

__all__ = [
    "MISSING_NOTE",
    "RUN_STYLES",
    "STATE_STYLES",
    "gap_lines",
    "missing_cell",
    "runs",
    "task_counts",
]

RUN_STYLES = {
    "Running": "cyan",
    "Succeeded": "green",
    "Failed": "red",
    "Cancelled": "yellow",
    "Lost": "magenta",
}


MISSING_NOTE = (
    "missing: events the engine numbered that never reached the history (the recorder was "
    "away, behind or down, or the engine dropped them); cascade run RUN_ID says more"
)
_GAP_LINES = 5  # recorders' gap counts shown under the table at most


def missing_cell(missing: int | None) -> Text:
    """A run's missing events for a table: the number in yellow, ``-`` when none or unknown."""
    return Text(f"{missing:,}", style="yellow") if missing else Text("-")


def gap_lines(gaps: list[SourceGap], times: TimeFormat) -> list[Text]:
    """What recorders found missing of these sources, one line each (the latest first)."""
    lines = [
        Text(
            f"recorder {inert(gap.recorder, SHOWN['source'])} missed {gap.missed:,} events of "
            f"{inert(gap.source, SHOWN['source'])} (from {times.at(gap.first_at)}, last "
            f"{times.at(gap.last_at)})",
            style="yellow",
        )
        for gap in gaps[:_GAP_LINES]
    ]
    if len(gaps) > _GAP_LINES:
        lines.append(Text(f"… and {len(gaps) - _GAP_LINES} more (History.gaps())", style="yellow"))
    return lines


def task_counts(counts: dict[str, int]) -> Text:
    """``completed 4 failed 1``: tasks counted by state, coloured, in a fixed order."""
    parts = [
        Text(f"{state.lower()} {counts[state]}", style=style)
        for state, style in STATE_STYLES.items()
        if counts.get(state)
    ]
    return Text(" ").join(parts) if parts else Text("-")


def runs(
    ctx: typer.Context,
    since: Annotated[
        str | None, typer.Option("--since", metavar="AGE", help=f"{SINCE_HELP} (default: all).")
    ] = None,
    status: Annotated[
        str | None,
        typer.Option(
            "--status",
            help="Only runs with this status: running, succeeded, failed, cancelled, "
            "or lost (no end heard, and its engine went offline after its last event).",
        ),
    ] = None,
    project: Annotated[str | None, typer.Option("--project", help="Only this project.")] = None,
    task: Annotated[
        str | None, typer.Option("--task", metavar="NAME", help="Only runs with a task NAME.")
    ] = None,
    source: Annotated[
        str | None, typer.Option("--source", help="Only runs of this engine (source id).")
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", min=1, max=MAX_COUNT, help="At most this many runs.")
    ] = 50,
    json_output: Json = False,
    db: Db = None,
) -> None:
    """Recorded runs, newest first: status, start, duration, tasks by state, engine, error.

    Examples: cascade runs --status failed --since 24h; cascade runs --project etl --json
    """
    after = since_seconds(since)
    history = open_history("runs", db)
    try:
        found = query(
            lambda: history.runs(
                since=after,
                status=status,
                project=project,
                task=task,
                source=source,
                limit=limit,
            )
        )
        sources = {run.source for run in found}
        gaps = [] if json_output else query(lambda: history.gaps(since=after))
    finally:
        history.close()
    if json_output:
        echo_json([run.to_json() for run in found])
        return
    console = CliContext.of(ctx).out()
    if not found:
        console.print("no runs recorded" + (" that match" if _filtered(ctx) else ""))
        return
    times = TimeFormat(time.time())
    table = Table(title=f"Runs (times in {times.zone})", title_justify="left")
    lacking = any(run.missing_events for run in found)
    columns = ["run", "status", "started", "duration", "tasks", "missing", "project", "source"]
    for column in [*columns, "error"]:
        if column != "missing" or lacking:
            table.add_column(column)
    for run in found:
        cells: list[Text | str] = [
            cell(short_id(run.run_id), SHORT_ID, "bold"),
            Text(run.status, style=RUN_STYLES.get(run.status, "")),
            times.at(run.started_at),
            duration(run.duration) if run.duration is not None else "-",
            task_counts(run.tasks),
        ]
        if lacking:
            cells.append(missing_cell(run.missing_events))
        cells += [
            cell(run.project_id, SHOWN["name"]),
            cell(run.source, SHOWN["source"]),
            cell(run.error, SHOWN["error"], "red"),
        ]
        table.add_row(*cells)
    console.print(table)
    if lacking:
        console.print(Text(MISSING_NOTE, style="yellow"))
    for line in gap_lines([gap for gap in gaps if gap.source in sources], times):
        console.print(line)


def _filtered(ctx: typer.Context) -> bool:
    return any(
        ctx.params.get(name) is not None
        for name in ("since", "status", "project", "task", "source")
    )
