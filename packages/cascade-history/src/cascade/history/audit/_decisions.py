"""The audit's decisions: each engine's answer to a decision on a held task, stored once per
request.

The answer (:class:`~cascade.interfaces.commands.DecisionReply`) says which task of which
run it found held at which attempt, what came of the request (``applied``, or why it was
refused), the decision taken on that hold (this request's, or the earlier one that won)
and, echoed from the request, who asked, why and when. It is what the answering engine
said: ``_rows`` keeps it only from the source the history recorded the run from, as a
cancel's.
"""

from __future__ import annotations

from typing import Any

import msgspec
import sqlalchemy as sa

from cascade.interfaces.commands import DecisionReply

from .._received import Received
from .._text import clean
from ..records._attempts import DecisionRecord
from ..records._audit_records import AuditEvent
from ..store._inserts import insert_new
from ..store._schema import decisions
from ._answers import answer_columns, request_columns, said

__all__ = [
    "decision_events",
    "decision_row",
    "decision_target",
    "run_decisions",
    "store_decisions",
]

_CANDIDATES = 32  # the task ids of an ambiguous answer kept


def decision_target(run_id: str, task: str | None, attempt: int | None) -> str:
    """``run:<id>/task:<task>/attempt:<n>``: the target of a decision in the audit (a dashboard's
    row on a decision says the same, so that it vouches for the engine's answer)."""
    target = f"run:{run_id}/task:{task or '?'}"
    return target if attempt is None else f"{target}/attempt:{attempt}"


def decision_row(item: Received) -> dict[str, Any]:
    """The ``decisions`` row of a received answer; ``InvalidMessageError`` if it cannot be
    one (an id the protocol refuses)."""
    reply = item.message
    assert isinstance(reply, DecisionReply)
    decided = None if reply.decided is None else msgspec.to_builtins(reply.decided)
    candidates = None
    if reply.candidates is not None:
        candidates = [clean(task_id) for task_id in reply.candidates[:_CANDIDATES]]
    return {
        **answer_columns(item, reply),
        "decision": reply.decision,
        "outcome": clean(reply.outcome, 64),
        "task_id": said(reply.task_id, 1024),
        "task_name": said(reply.task_name, 1024),
        "attempt": reply.attempt,
        "decided": decided,
        "candidates": candidates,
    }


def store_decisions(connection: sa.Connection, rows: list[dict[str, Any]]) -> int:
    """Insert the answers the history does not have yet (by request id: a copy, or the same
    answer from a second recorder, is none); how many were new."""
    return len(insert_new(connection, decisions, rows))


def _record(row: Any) -> DecisionRecord:
    return DecisionRecord(
        at=row.at,
        run_id=row.run_id,
        source=row.source,
        request_id=row.request_id,
        decision=row.decision,
        outcome=row.outcome,
        task_id=row.task_id,
        task_name=row.task_name,
        attempt=row.attempt,
        decided=row.decided if isinstance(row.decided, dict) else None,
        candidates=row.candidates if isinstance(row.candidates, list) else None,
        reason=row.reason,
        issued_by=row.issued_by,
        issued_at=row.issued_at,
    )


def run_decisions(connection: sa.Connection, run_id: str, limit: int) -> list[DecisionRecord]:
    """The answers to decisions on ``run_id``'s held tasks, in the order received (the first
    ``limit``)."""
    query = (
        sa.select(decisions)
        .where(decisions.c.run_id == run_id)
        .order_by(decisions.c.at, decisions.c.id)
        .limit(limit)
    )
    return [_record(row) for row in connection.execute(query)]


def decision_events(
    connection: sa.Connection, *, since: float | None, limit: int
) -> list[AuditEvent]:
    """The newest ``limit`` answers to decisions received since ``since``, as the audit's
    ``decided`` events (newest first): ``type`` is the decision, ``scope`` its
    :func:`decision_target`, ``decided`` the answer (:meth:`DecisionRecord.to_json`)."""
    query = sa.select(decisions).order_by(decisions.c.at.desc(), decisions.c.id.desc())
    query = query.limit(limit)
    if since is not None:
        query = query.where(decisions.c.at >= since)
    events = []
    for row in connection.execute(query):
        record = _record(row)
        events.append(
            AuditEvent(
                row.at,
                "decided",
                decision_target(row.run_id, row.task_id, row.attempt),
                row.decision,
                topic=row.topic,
                decided=record.to_json(),
                **request_columns(row),
            )
        )
    return events
