"""The audit's cancels: each engine's answer to a cancel, stored once per request.

The answer (:class:`~cascade.interfaces.commands.CancelReply`) says which run its engine
stopped, what it stopped, and (from engines that echo the request) who asked, why and when: all that
the audit shows of a cancel. It is what the answering engine said: ``_ingest`` keeps it
only from the source the history recorded the run from.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from cascade.interfaces import InvalidMessageError
from cascade.interfaces.commands import CancelReply
from cascade.interfaces.wire import MAX_LISTED_TASKS, TaskRef

from .._received import Received
from .._text import clean
from ..records._audit_records import AuditEvent
from ..store._inserts import insert_new
from ..store._schema import cancels
from ._answers import answer_columns, request_columns

__all__ = ["cancel_events", "cancel_row", "store_cancels"]

_INT64 = 2**63 - 1


def _count(value: int, name: str) -> int:
    if value > _INT64:
        raise InvalidMessageError(f"{name} is out of range: {str(value)[:30]}", f"$.{name}")
    return value


def _tasks(tasks: list[TaskRef]) -> list[dict[str, str]]:
    """The tasks an answer names, as stored: at most :data:`MAX_LISTED_TASKS` (as engines
    send), each id and name bounded."""
    return [
        {"task_id": clean(ref.task_id), "task_name": clean(ref.task_name)}
        for ref in tasks[:MAX_LISTED_TASKS]
    ]


def cancel_row(item: Received) -> dict[str, Any]:
    """The ``cancels`` row of a received answer; :class:`InvalidMessageError` if it cannot
    be one (an id the protocol refuses, a count no column holds)."""
    reply = item.message
    assert isinstance(reply, CancelReply)
    return {
        **answer_columns(item, reply),
        "outcome": clean(reply.outcome, 64),
        "cancelled": _tasks(reply.cancelled),
        "cancelled_count": _count(reply.cancelled_count, "cancelled_count"),
        "abandoned": _tasks(reply.abandoned),
        "abandoned_count": _count(reply.abandoned_count, "abandoned_count"),
        "not_started": _count(reply.not_started, "not_started"),
    }


def store_cancels(connection: sa.Connection, rows: list[dict[str, Any]]) -> int:
    """Insert the answers the history does not have yet (by request id: a copy, or the same
    answer from a second recorder, is none); how many were new."""
    return len(insert_new(connection, cancels, rows))


def _stopped(row: Any) -> dict[str, Any]:
    """What a stored cancel stopped (:attr:`AuditEvent.stopped`)."""
    return {
        "outcome": row.outcome,
        "cancelled": row.cancelled,
        "cancelled_count": row.cancelled_count,
        "abandoned": row.abandoned,
        "abandoned_count": row.abandoned_count,
        "not_started": row.not_started,
    }


def cancel_events(
    connection: sa.Connection, *, since: float | None, limit: int
) -> list[AuditEvent]:
    """The newest ``limit`` cancels received since ``since``, as the audit's ``cancelled``
    events (newest first)."""
    query = sa.select(cancels).order_by(cancels.c.at.desc(), cancels.c.id.desc()).limit(limit)
    if since is not None:
        query = query.where(cancels.c.at >= since)
    return [
        AuditEvent(
            row.at,
            "cancelled",
            f"run:{row.run_id}",
            topic=row.topic,
            stopped=_stopped(row),
            **request_columns(row),
        )
        for row in connection.execute(query)
    ]
