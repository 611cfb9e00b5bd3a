"""`cascade audit`: every constraint set, cleared or expired, from the history database."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table
from rich.text import Text

from ._context import CliContext
from ._history_db import SINCE_HELP, Db, Json, cell, echo_json, open_history, query, since_seconds
from ._inert import SHOWN
from ._render import TimeFormat, duration

if TYPE_CHECKING:
    from cascade.history import AuditEvent

__all__ = ["audit"]

_ACTION_STYLES = {"set": "magenta", "cleared": "green", "expired": "yellow"}


def _by(event: AuditEvent) -> Text:
    """Who set or cleared it; on an expiry, who had set what expired."""
    if event.issued_by is None or event.action != "expired":
        return cell(event.issued_by, SHOWN["source"])
    return Text("set by ").append_text(cell(event.issued_by, SHOWN["source"]))


def audit(
    ctx: typer.Context,
    since: Annotated[
        str, typer.Option("--since", metavar="AGE", help=f"{SINCE_HELP} (default: 7d).")
    ] = "7d",
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many events.")] = 1000,
    json_output: Json = False,
    db: Db = None,
) -> None:
    """Constraints set, cleared and expired, newest first: when, scope, type, params, TTL,
    who set or cleared it and why (as its writer claimed: `--as NAME --reason TEXT` of
    `cascade pause`, `limit`, `resume`).

    Examples: cascade audit; cascade audit --since 30d --json | jq '.[] | select(.action == "set")'
    """
    after = since_seconds(since)
    history = open_history("audit", db)
    try:
        found = query(lambda: history.audit(since=after, limit=limit))
    finally:
        history.close()
    if json_output:
        echo_json([event.to_json() for event in found])
        return
    console = CliContext.of(ctx).out()
    if not found:
        console.print(f"no constraint set or cleared in the last {since}")
        return
    times = TimeFormat(time.time())
    table = Table(title=f"Constraints (times in {times.zone})", title_justify="left")
    for column in ("when", "action", "scope", "type", "params", "ttl", "by", "reason", "topic"):
        table.add_column(column)
    for event in found:
        params = ", ".join(f"{key}={value}" for key, value in (event.params or {}).items())
        table.add_row(
            times.at(event.at),
            Text(event.action, style=_ACTION_STYLES.get(event.action, "")),
            cell(event.scope, SHOWN["scope"]),
            cell(event.type, SHOWN["name"]),
            cell(params, SHOWN["params"]),
            duration(event.ttl) if event.ttl is not None else "-",
            _by(event),
            cell(event.reason, SHOWN["reason"]),
            cell(event.topic, SHOWN["scope"]),
        )
    console.print(table)
