"""`cascade audit`: every constraint set, cleared or expired, and every run cancelled, from the
history database."""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.text import Text

from cascade.control.run_ids import SHORT_ID
from cascade.reader import SHOWN

from ...plumbing._broker import MAX_COUNT
from ...plumbing._context import CliContext
from ...plumbing._export import Export, Exporter, export_format
from ...plumbing._history_db import (
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
from ...rendering._fit import Cell, Column, fitted, print_fitted
from ...rendering._render import TimeFormat, duration
from ._audit import action_style, action_text, by_text, scope_and_params

__all__ = ["audit"]


# When and what are never cut; a scope folds no narrower than `run:` and a run's short id.
# On a narrow terminal the topic goes first, then the TTL, the params, the reason, who.
_COLUMNS = (
    Column("when", whole=True),
    Column("action", whole=True),
    Column("scope", fold=4 + SHORT_ID),
    Column("type", rank=6, fold=11),
    Column("params", rank=3),
    Column("ttl", whole=True, rank=2),
    Column("by", rank=5),
    Column("reason", rank=4),
    Column("topic", rank=1),
)


def audit(
    ctx: typer.Context,
    since: Annotated[
        str, typer.Option("--since", metavar="AGE", help=f"{SINCE_HELP} (default: 7d).")
    ] = "7d",
    limit: Annotated[
        int,
        typer.Option(
            "--limit",
            min=0,
            max=MAX_COUNT,
            help="At most this many events, the newest; 0: all. A list cut short says so.",
        ),
    ] = 1000,
    json_output: Json = False,
    export: Export = None,
    db: Db = None,
) -> None:
    """Constraints, starts, cancels, decisions, posts, newest first.

    Constraints set, cleared and expired, runs cancelled, decisions on held tasks, and what a
    team's dashboard refused, newest first: when, scope, type, params, TTL, who and why. Who is
    shown with what vouched for the name: `alice@example.com (oidc)` where a team's dashboard
    signed the person in (oidc, proxy, api-token, token), `bob (claimed)` where only its writer
    said it (`--as NAME` of `cascade pause`, `limit`, `resume`, `cancel`). A cancel's scope is
    its run (`run:` and the run's short id), its params what the engine that ran it stopped. A
    `decided` row's type is the decision (retry, skip, complete, fail), its params the task, the
    attempt and what came of it: applied; a decision its engine refused is a `refused` row
    whose params say why (the task is not held; already decided, and by whom). A `refused` row's
    type is the action refused, its reason the dashboard's; the refusals of one person, action
    and reason within a minute are one row: `refused` with its count. A `start` row is a run a
    start request started (`cascade start`, `cascade rerun`, the dashboard), as its engine
    said: its type the workflow, its params the run's name, params and the run it reruns. A
    `notified` row is a webhook `cascade notify --db` posted, or failed to for good: its type
    the event (run.failed, task.held, ...), its params where (the URL redacted) and how it
    ended, its by the notifier.

    Examples: cascade audit; cascade audit --since 30d --json | jq '.[] | select(.action == "set")';
    cascade audit --since 30d --format csv > audit.csv
    """
    export = export_format(export, json_output)
    after = since_seconds(since)
    bound = limit or MAX_COUNT
    with open_history("audit", db) as history:
        # one more than shown tells a cut list (counting the audit's sources would not pay)
        found = query(lambda: history.audit(since=after, limit=bound + 1))
    cut = len(found) > bound
    found = found[:bound]
    newest = "the newest " + ("event" if len(found) == 1 else f"{len(found):,} events")
    shown = f"showing {newest}; more are left out: --limit 0 for all"
    if json_output or export is not None:
        if export is not None:
            from cascade.history import AUDIT_COLUMNS, AUDIT_TIMES

            Exporter(export, AUDIT_COLUMNS, times=AUDIT_TIMES).rows(e.to_json() for e in found)
        else:  # a list, as ever: that it is cut is said on stderr
            echo_json([event.to_json() for event in found])
        if cut:
            typer.echo(f"cascade: {shown}", err=True)
        return
    console = CliContext.of(ctx).out()
    if not found:
        console.print(
            f"no constraint set or cleared, no run started, cancelled or decided, nothing "
            f"refused and nothing notified, in the last {since} in {history.location}",
            markup=False,
        )
        return
    times = TimeFormat(time.time())
    title = (
        f"Constraints, starts, cancels, decisions, refusals and notifications "
        f"(times in {times.zone})"
    )
    rows: list[list[Cell]] = []
    for event in found:
        scope, params = scope_and_params(event)
        rows.append(
            [
                times.short(event.at),
                Text(action_text(event), style=action_style(event)),
                cell(scope, SHOWN["scope"]),
                cell(event.type, SHOWN["name"]),
                cell(params, SHOWN["params"]),
                duration(event.ttl) if event.ttl is not None else "-",
                by_text(event),
                cell(event.reason, SHOWN["reason"]),
                cell(event.topic, SHOWN["scope"]),
            ]
        )
    table, left_out = fitted(_COLUMNS, rows, console.width, title=title)
    print_fitted(console, table, left_out)
    if cut:
        console.print(Text(shown, style="dim"))
    console.print(history_line(history), soft_wrap=True)
