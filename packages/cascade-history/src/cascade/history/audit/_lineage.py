"""A run's name and origin as stored (``runs.name``, ``workflow``, ``params``, ``rerun_of``,
``root_run`` and the start request's fields: revision 0013; the ``schedule`` and the slot,
``scheduled_for``, that started it: revision 0016; the run it carries on, ``carried_on_from``,
and the engine that died, ``lost_engine``: revision 0020; the ``trigger``, its ``trigger_event``
and the ``followed_run``: revision 0021), and the audit's ``start`` rows.

They come from the run's ``ENGINE_STARTED`` (``LifecycleEvent.name`` and ``origin``), which
``_rows`` takes only from the run's own engine: a start row says what that engine said of the
request that started the run (who asked, why, when, the workflow and its params), as much to
be believed as the run itself.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec
import sqlalchemy as sa

from cascade.interfaces import LifecycleEvent

from .._text import MAX_TEXT_BYTES
from ..records._audit_records import AuditEvent
from ..store._schema import runs, task_events
from ._answers import request_columns, said

__all__ = [
    "NO_ORIGIN",
    "ORIGIN_COLUMNS",
    "origin_columns",
    "origin_of",
    "reused_query",
    "set_origins",
    "start_events",
]

ORIGIN_COLUMNS = (
    "name",
    "workflow",
    "params",
    "rerun_of",
    "root_run",
    "request_id",
    "issued_by",
    "reason",
    "issued_at",
    "schedule",
    "scheduled_for",
    "carried_on_from",
    "lost_engine",
    "trigger",
    "trigger_event",
    "followed_run",
)
"""The ``runs`` columns an ``ENGINE_STARTED`` fills (the first stored stays)."""

NO_ORIGIN: dict[str, Any] = dict.fromkeys(ORIGIN_COLUMNS)
"""A run's origin columns before its ``ENGINE_STARTED`` said anything."""

_NAME_BYTES = 256  # runs.name, runs.issued_by
_SLOT_BYTES = 64  # runs.scheduled_for


def origin_columns(event: LifecycleEvent) -> dict[str, Any]:
    """The origin columns of a run's ``ENGINE_STARTED`` (its ``name`` and ``origin``), every
    one of :data:`ORIGIN_COLUMNS` (``None`` where it says nothing)."""
    columns: dict[str, Any] = {**NO_ORIGIN, "name": said(event.name, _NAME_BYTES)}
    origin = event.origin
    if origin is not None:
        params: Any = None if origin.params is None else msgspec.to_builtins(origin.params)
        columns.update(
            workflow=origin.workflow,
            params=None if params is None else json.dumps(params, sort_keys=True),
            rerun_of=said(origin.rerun_of, MAX_TEXT_BYTES),
            root_run=said(origin.root_run, MAX_TEXT_BYTES),
            request_id=origin.request_id,
            issued_by=said(origin.issued_by, _NAME_BYTES),
            reason=said(origin.reason, MAX_TEXT_BYTES),
            issued_at=origin.issued_at,
            schedule=origin.schedule,
            scheduled_for=said(origin.scheduled_for, _SLOT_BYTES),
            carried_on_from=said(origin.carried_on_from, MAX_TEXT_BYTES),
            lost_engine=said(origin.lost_engine, _NAME_BYTES),
            trigger=origin.trigger,
            trigger_event=said(origin.trigger_event, MAX_TEXT_BYTES),
            followed_run=said(origin.followed_run, MAX_TEXT_BYTES),
        )
    return columns


_ORIGIN_UPDATE = (
    sa.update(runs)
    .where(runs.c.run_id == sa.bindparam("b_run_id"))
    .values({c: sa.func.coalesce(runs.c[c], sa.bindparam(f"b_{c}")) for c in ORIGIN_COLUMNS})
)


def set_origins(connection: sa.Connection, origins: dict[str, dict[str, Any]]) -> None:
    """Give the runs of ``origins`` (upserted just before, in the same transaction) the name
    and origin their ``ENGINE_STARTED`` said, where none is stored yet (the first stays). A
    run's start comes once: the runs' upsert, which every event moves, pays nothing for it."""
    if origins:
        connection.execute(
            _ORIGIN_UPDATE,
            [
                {"b_run_id": run_id, **{f"b_{c}": v for c, v in origins[run_id].items()}}
                for run_id in sorted(origins)
            ],
        )


def _params(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        params = json.loads(text)
    except ValueError:
        return None
    return params if isinstance(params, dict) else None


def origin_of(row: Any) -> dict[str, Any] | None:
    """A stored run's origin as its ``ENGINE_STARTED`` said it (``RunOrigin``'s fields, those
    said only); ``None``: it said none."""
    origin = {
        column: getattr(row, column)
        for column in ORIGIN_COLUMNS[1:]
        if getattr(row, column) is not None
    }
    if "params" in origin:
        origin["params"] = _params(origin["params"])
    return origin or None


def start_events(connection: sa.Connection, *, since: float | None, limit: int) -> list[AuditEvent]:
    """The runs a start request started, newest first (by when the history first heard of
    them), as the audit's ``start`` events: ``scope`` ``run:<id>``, ``type`` the workflow,
    ``params`` its params, ``issued_by``, ``reason`` and ``issued_at`` the request's, and
    ``started`` the run's name, workflow, params, ``rerun_of`` and ``root_run``."""
    query = (
        sa.select(runs)
        .where(runs.c.request_id.is_not(None))
        .order_by(runs.c.received_at.desc(), runs.c.run_id)
        .limit(limit)
    )
    if since is not None:
        query = query.where(runs.c.received_at >= since)
    events = []
    for row in connection.execute(query):
        params = _params(row.params)
        started = {
            "name": row.name,
            "workflow": row.workflow,
            "params": params,
            "rerun_of": row.rerun_of,
            "root_run": row.root_run,
        }
        at = row.received_at if row.received_at is not None else row.started_at
        events.append(
            AuditEvent(
                at,
                "start",
                f"run:{row.run_id}",
                row.workflow,
                params,
                started=started,
                **request_columns(row),
            )
        )
    return events


def reused_query(connection: sa.Connection, run_id: str) -> dict[str, int]:
    """Per run, how many of ``run_id``'s task events are a reuse of that run's result."""
    te = task_events
    query = (
        sa.select(te.c.reused_from, sa.func.count())
        .where(te.c.run_id == run_id, te.c.reused_from.is_not(None))
        .group_by(te.c.reused_from)
        .order_by(te.c.reused_from)
    )
    return {str(of): int(count) for of, count in connection.execute(query)}
