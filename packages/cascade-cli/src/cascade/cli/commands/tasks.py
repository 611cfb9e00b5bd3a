"""`cascade tasks`: per task name, how its executions went, from the history database."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.text import Text

from cascade.reader import SHOWN

from ..plumbing._context import CliContext
from ..plumbing._export import Export, Exporter, export_format
from ..plumbing._history_db import (
    SINCE_HELP,
    Db,
    Json,
    cell,
    echo_json,
    history_line,
    open_history,
    query,
    since_seconds,
)
from ..rendering._fit import Cell, Column, fitted, print_fitted
from ..rendering._render import duration

__all__ = ["tasks"]


# Numbers are never cut; the runs, then the executions, are left out on a narrow terminal.
_COLUMNS = (
    Column("task"),
    Column("runs", whole=True, rank=1, justify="right"),
    Column("executions", whole=True, rank=2, justify="right"),
    Column("failures", whole=True, justify="right"),
    Column("failure rate", fold=7, justify="right"),
    Column("p50", whole=True, justify="right"),
    Column("p95", whole=True, rank=3, justify="right"),
    Column("max", whole=True, justify="right"),
)


def tasks(
    ctx: typer.Context,
    since: Annotated[
        str, typer.Option("--since", metavar="AGE", help=f"{SINCE_HELP} (default: 7d).")
    ] = "7d",
    name: Annotated[
        str | None,
        typer.Option("--name", metavar="GLOB", help="Only task names matching GLOB (api_*)."),
    ] = None,
    exact: Annotated[
        bool | None,
        typer.Option(
            "--exact/--rollup",
            help="From every execution, or from the hourly rollup (percentiles within 2.5 %); "
            "by default exact up to 10,000 executions in the period.",
            show_default=False,
        ),
    ] = None,
    json_output: Json = False,
    export: Export = None,
    db: Db = None,
) -> None:
    """Per task name: runs, executions, failures and durations.

    Per task name: runs, finished executions, failures, failure rate, p50/p95/max duration.

    Examples: cascade tasks; cascade tasks --since 30d --name 'load_*' --json;
    cascade tasks --since 30d --format csv > tasks.csv
    """
    export = export_format(export, json_output)
    after = since_seconds(since)
    with open_history("tasks", db) as history:
        found = query(lambda: history.tasks(since=after, name_glob=name, exact=exact))
    if json_output:
        echo_json([stats.to_json() for stats in found])
        return
    if export is not None:
        from cascade.history import TASK_COLUMNS

        Exporter(export, TASK_COLUMNS).rows(stats.to_json() for stats in found)
        return
    console = CliContext.of(ctx).out()
    if not found:
        console.print(f"no task finished in the last {since} in {history.location}", markup=False)
        return
    rows: list[list[Cell]] = [
        [
            cell(stats.task_name, SHOWN["name"], "bold"),
            str(stats.runs),
            str(stats.executions),
            str(stats.failures),
            Text(f"{stats.failure_rate:.1%}", style="red" if stats.failure_rate else ""),
            duration(stats.p50_ms / 1000),
            duration(stats.p95_ms / 1000),
            duration(stats.max_ms / 1000),
        ]
        for stats in found
    ]
    table, left_out = fitted(
        _COLUMNS, rows, console.width, title=f"Tasks finished in the last {since}"
    )
    print_fitted(console, table, left_out)
    if any(stats.approximate for stats in found):
        console.print(
            Text(
                "p50 and p95 from the hourly rollup: within 2.5 %, from the start of the hour "
                f"{since} ago falls in (--exact reads every execution)",
                style="dim",
            )
        )
    console.print(history_line(history), soft_wrap=True)
