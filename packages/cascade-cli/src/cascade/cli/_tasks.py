"""`cascade tasks`: per task name, how its executions went, from the history database."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from ._context import CliContext
from ._history_db import SINCE_HELP, Db, Json, cell, echo_json, open_history, query, since_seconds
from ._inert import SHOWN
from ._render import duration

__all__ = ["tasks"]


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
    db: Db = None,
) -> None:
    """Per task name: runs, finished executions, failures, failure rate, p50/p95/max duration.

    Examples: cascade tasks; cascade tasks --since 30d --name 'load_*' --json
    """
    after = since_seconds(since)
    history = open_history("tasks", db)
    try:
        found = query(lambda: history.tasks(since=after, name_glob=name, exact=exact))
    finally:
        history.close()
    if json_output:
        echo_json([stats.to_json() for stats in found])
        return
    console = CliContext.of(ctx).out()
    if not found:
        console.print(f"no task finished in the last {since}")
        return
    table = Table(title=f"Tasks finished in the last {since}", title_justify="left")
    for column in ("task", "runs", "executions", "failures", "failure rate", "p50", "p95", "max"):
        table.add_column(column, justify="left" if column == "task" else "right")
    for stats in found:
        rate = stats.failure_rate
        table.add_row(
            cell(stats.task_name, SHOWN["name"], "bold"),
            str(stats.runs),
            str(stats.executions),
            str(stats.failures),
            Text(f"{rate:.1%}", style="red" if rate else ""),
            duration(stats.p50_ms / 1000),
            duration(stats.p95_ms / 1000),
            duration(stats.max_ms / 1000),
        )
    console.print(table)
    if any(stats.approximate for stats in found):
        console.print(
            Text(
                "p50 and p95 from the hourly rollup: within 2.5 %, from the start of the hour "
                f"{since} ago falls in (--exact reads every execution)",
                style="dim",
            )
        )
