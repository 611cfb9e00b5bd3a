"""`cascade audit`: every constraint set, cleared or expired, and every run cancelled, from the
history database."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from ._broker import MAX_COUNT
from ._context import CliContext
from ._history_db import SINCE_HELP, Db, Json, cell, echo_json, open_history, query, since_seconds
from ._inert import SHOWN, inert
from ._render import TimeFormat, duration
from ._run_ids import short_id

if TYPE_CHECKING:
    from cascade.history import AuditEvent

__all__ = ["audit"]

_ACTION_STYLES = {"set": "magenta", "cleared": "green", "expired": "yellow", "cancelled": "red"}
_NAMES_SHOWN = 5


def _by(event: AuditEvent) -> Text:
    """Who set or cleared it; on an expiry, who had set what expired."""
    if event.issued_by is None or event.action != "expired":
        return cell(event.issued_by, SHOWN["source"])
    return Text("set by ").append_text(cell(event.issued_by, SHOWN["source"]))


def _names(tasks: Any, count: int) -> str:
    listed = tasks if isinstance(tasks, list) else []
    names = [str(t.get("task_name", "?")) if isinstance(t, dict) else "?" for t in listed]
    shown = ", ".join(inert(name, SHOWN["name"]) for name in names[:_NAMES_SHOWN])
    more = count - min(len(names), _NAMES_SHOWN)
    return shown + (f" and {more} more" if more > 0 else "")


def stopped_text(event: AuditEvent) -> str:
    """What a cancel stopped, in words: ``on host-4242: cancelled 2 (crawl, crawl), abandoned 1
    (load), not started 17``; ``already cancelled`` for a second request."""
    stopped = event.stopped or {}
    head = f"on {inert(event.source or '?', SHOWN['source'])}: "
    if stopped.get("outcome") == "already_cancelled":
        return head + "already cancelled"
    parts = []
    for kind in ("cancelled", "abandoned"):
        count = stopped.get(f"{kind}_count") or 0
        names = f" ({_names(stopped.get(kind), count)})" if count else ""
        if count or kind == "cancelled":
            parts.append(f"{kind} {count}{names}")
    parts.append(f"not started {stopped.get('not_started') or 0}")
    return head + ", ".join(parts)


def _scope_and_params(event: AuditEvent) -> tuple[str | None, str]:
    if event.action == "cancelled":
        return f"run:{short_id(event.run_id or '')}", stopped_text(event)
    params = ", ".join(f"{key}={value}" for key, value in (event.params or {}).items())
    return event.scope, params


def audit(
    ctx: typer.Context,
    since: Annotated[
        str, typer.Option("--since", metavar="AGE", help=f"{SINCE_HELP} (default: 7d).")
    ] = "7d",
    limit: Annotated[
        int, typer.Option("--limit", min=1, max=MAX_COUNT, help="At most this many events.")
    ] = 1000,
    json_output: Json = False,
    db: Db = None,
) -> None:
    """Constraints set, cleared and expired, and runs cancelled, newest first: when, scope,
    type, params, TTL, who set, cleared or cancelled and why (as its writer claimed: `--as
    NAME --reason TEXT` of `cascade pause`, `limit`, `resume`, `cancel`). A cancel's scope is
    its run (`run:` and the run's short id), its params what the engine that ran it stopped.

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
        console.print(f"no constraint set or cleared, and no run cancelled, in the last {since}")
        return
    times = TimeFormat(time.time())
    title = f"Constraints and cancels (times in {times.zone})"
    table = Table(title=title, title_justify="left")
    for column in ("when", "action", "scope", "type", "params", "ttl", "by", "reason", "topic"):
        table.add_column(column)
    for event in found:
        scope, params = _scope_and_params(event)
        table.add_row(
            times.at(event.at),
            Text(event.action, style=_ACTION_STYLES.get(event.action, "")),
            cell(scope, SHOWN["scope"]),
            cell(event.type, SHOWN["name"]),
            cell(params, SHOWN["params"]),
            duration(event.ttl) if event.ttl is not None else "-",
            _by(event),
            cell(event.reason, SHOWN["reason"]),
            cell(event.topic, SHOWN["scope"]),
        )
    console.print(table)
