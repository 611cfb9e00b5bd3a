"""What the audit keeps of an engine's answer to a request (a cancel's, a decision's) and of a
start request: the columns they share, written and read in one place."""

from __future__ import annotations

from typing import Any

from cascade.interfaces.commands import CancelReply, DecisionReply

from .._received import Received
from .._text import MAX_TEXT_BYTES, checked_id, clean

__all__ = ["answer_columns", "request_columns", "said"]

_MAX_ISSUER_BYTES = 256  # cancels.issued_by, decisions.issued_by


def said(text: str | None, limit: int | None) -> str | None:
    """``text`` as stored, cleaned and bounded to ``limit`` bytes (``None``: nothing said; a
    ``limit`` of ``None``: no bound)."""
    return None if text is None else clean(text, limit)


def answer_columns(item: Received, reply: CancelReply | DecisionReply) -> dict[str, Any]:
    """The columns of a received answer's row that every answer has: the request's id, the run
    and the engine that answered, who asked, why and when (as the engine echoed them), the
    answer's topic and when the recorder received it; :class:`InvalidMessageError` for an id
    the protocol refuses."""
    return {
        "request_id": reply.id,
        "run_id": checked_id(reply.run_id, "run_id"),
        "source": checked_id(reply.source, "source"),
        "reason": said(reply.reason, MAX_TEXT_BYTES),
        "issued_by": said(reply.issued_by, _MAX_ISSUER_BYTES),
        "issued_at": reply.issued_at,
        "topic": clean(item.topic, None),
        "at": item.received_at,
    }


def request_columns(row: Any) -> dict[str, Any]:
    """The columns of an audit event that a request's answer echoes, from a stored ``row``
    (``cancels``, ``decisions``; ``runs``: a start's): who asked, why and when, the run, the
    engine that answered and the request's id."""
    return {
        "reason": row.reason,
        "issued_by": row.issued_by,
        "issued_at": row.issued_at,
        "run_id": row.run_id,
        "source": row.source,
        "request_id": row.request_id,
    }
