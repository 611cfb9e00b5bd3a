"""`cascade runs`: the recorded runs, newest first, from the history database."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated

import typer
from rich.text import Text

from ...plumbing._broker import MAX_COUNT
from ...plumbing._context import CliContext
from ...plumbing._export import Export, Exporter, export_format
from ...plumbing._history_db import (
    SINCE_HELP,
    Db,
    Json,
    echo_json,
    history_line,
    open_history,
    query,
    since_seconds,
)
from ...rendering._fit import print_fitted
from ...rendering._plural import counted
from ...rendering._render import TimeFormat
from ._runs import (
    LINE_NOTE,
    MISSING_NOTE,
    REFUSED_NOTE,
    filtered,
    fold_lines,
    gap_lines,
    runs_table,
)

if TYPE_CHECKING:
    from cascade.history import RunFilters

__all__ = ["runs"]


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
    name: Annotated[
        str | None,
        typer.Option(
            "--name", help="Only runs of this name (Engine.run(name=...), a served workflow's)."
        ),
    ] = None,
    schedule: Annotated[
        str | None,
        typer.Option("--schedule", help="Only runs this schedule started (cascade schedules)."),
    ] = None,
    trigger: Annotated[
        str | None,
        typer.Option(
            "--trigger", metavar="NAME", help="Only runs this trigger started (cascade served)."
        ),
    ] = None,
    limit: Annotated[
        int,
        typer.Option(
            "--limit",
            min=0,
            max=MAX_COUNT,
            help="At most this many runs; 0: all. A list cut short says how many it left out.",
        ),
    ] = 50,
    json_output: Json = False,
    export: Export = None,
    db: Db = None,
) -> None:
    """Recorded runs, newest first.

    Recorded runs, newest first: name, status, start, duration, tasks by state, the
    schedule and slot that started it, engine, error. A run and its reruns are one row
    (the latest's, its outcome first) beside their line of work: the first run and each
    rerun, how each ended and the results it reused.

    Examples: cascade runs --status failed --since 24h; cascade runs --schedule nightly;
    cascade runs --trigger report_after_etl; cascade runs --project etl --json;
    cascade runs --since 7d --format csv > runs.csv
    """
    export = export_format(export, json_output)
    after = since_seconds(since)
    filters: RunFilters = {
        "since": after,
        "status": status,
        "project": project,
        "task": task,
        "source": source,
        "name": name,
        "schedule": schedule,
        "trigger": trigger,
    }
    with open_history("runs", db) as history:
        found = query(lambda: history.runs(**filters, limit=limit or MAX_COUNT))
        total = len(found)
        if limit and total == limit:  # perhaps cut: count what the filters pick
            total = query(lambda: history.count_runs(**filters))
        sources = {run.source for run in found}
        gaps = [] if json_output or export else query(lambda: history.gaps(since=after))
    shown = f"showing {len(found):,} of {counted(total, 'run')}: --limit 0 for all"
    if export is not None or json_output:
        if export is not None:
            from cascade.history import RUN_COLUMNS, RUN_TIMES

            Exporter(export, RUN_COLUMNS, times=RUN_TIMES).rows(run.to_json() for run in found)
        else:  # a list, as ever: what it leaves out is said on stderr
            echo_json([run.to_json() for run in found])
        if total > len(found):
            typer.echo(f"cascade: {shown}", err=True)
        return
    console = CliContext.of(ctx).out()
    if not found:
        matching = " that match" if filtered(ctx) else ""
        console.print(f"no runs recorded{matching} in {history.location}", markup=False)
        return
    times = TimeFormat(time.time())
    rows = fold_lines(found)
    table, left_out = runs_table(rows, times, console.width)
    print_fitted(console, table, left_out)
    if total > len(found):
        console.print(Text(shown, style="dim"))
    if len(rows) < len(found):
        console.print(Text(LINE_NOTE, style="dim"))
    if any(run.missing_events for run in found):
        console.print(Text(MISSING_NOTE, style="yellow"))
    if any(run.refused for run in found):
        console.print(Text(REFUSED_NOTE, style="yellow"))
    for line in gap_lines([gap for gap in gaps if gap.source in sources], times):
        console.print(line)
    console.print(history_line(history), soft_wrap=True)
