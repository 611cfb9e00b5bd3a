"""The audit trail's rows: each change of a constraint topic, stored once, and who made it.

A constraint's payload carries no time and no identity of its change; a clear (an empty
retained payload) names no one. See :func:`store_constraints`.
"""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec
import sqlalchemy as sa

from cascade.interfaces import Constraint
from cascade.interfaces.notes import ClearNote

from .._received import Received
from .._text import MAX_TEXT_BYTES, clean
from ..store._inserts import insert_new
from ..store._schema import constraint_events

__all__ = ["NOTE_WINDOW", "store_constraints"]

_MAX_ISSUER_BYTES = 256  # constraint_events.issued_by


def _claimed(text: str | msgspec.UnsetType | None, limit: int = MAX_TEXT_BYTES) -> str | None:
    """A reason or a writer's name as stored (bounded), ``None`` where there is none."""
    return None if text is None or isinstance(text, msgspec.UnsetType) else clean(text, limit)


def _constraint_state(item: Received) -> dict[str, Any]:
    constraint = item.message
    if constraint is None:
        return {"action": "cleared"}
    assert isinstance(constraint, Constraint)
    if constraint.expires_at is not None and constraint.expires_at <= item.received_at:
        # expired when it came: the copy a clear writes first (cascade.control's
        # clear_constraints), or one a broker brought back long after; it sets nothing
        return {"action": "cleared"}
    return {
        "action": "set",
        "scope": clean(constraint.scope, None),
        "type": constraint.type,
        "params": constraint.params,
        "constraint_id": clean(constraint.id, None),
        "expires_at": constraint.expires_at,
        "reason": _claimed(constraint.reason),
        "issued_by": _claimed(constraint.issued_by, _MAX_ISSUER_BYTES),
        "issued_at": (
            None if isinstance(constraint.issued_at, msgspec.UnsetType) else constraint.issued_at
        ),
    }


_STATE_KEYS = (
    "action",
    "scope",
    "type",
    "params",
    "constraint_id",
    "expires_at",
    "reason",
    "issued_by",
    "issued_at",
)


def store_constraints(connection: sa.Connection, items: list[Received]) -> int:
    """Each change of a constraint topic's retained state, once; how many were new.

    A constraint's payload carries no time and no identity of its change, so
    the history keeps a topic's changes numbered (``change``): a message
    equal to the topic's last stored state (a retained copy delivered on
    subscribing, a QoS 1 copy) is none, and two recorders storing the same
    change at once number it alike, and the unique index keeps one.

    A clear keeps what it cleared (scope, type, params) and nobody's name: a
    :class:`~cascade.interfaces.notes.ClearNote` that follows it within
    :data:`NOTE_WINDOW` seconds gives it its writer's (``issued_by``,
    ``reason``, ``issued_at``); a note with no such clear to go to is none.
    """
    latest: dict[str, tuple[int, float, dict[str, Any]]] = {}
    new = 0
    for item in items:
        key = hashlib.sha256(item.topic.encode("utf-8", "surrogatepass")).hexdigest()
        if key not in latest:
            row = connection.execute(
                sa.select(constraint_events)
                .where(constraint_events.c.topic_key == key)
                .order_by(constraint_events.c.change.desc())
                .limit(1)
            ).first()
            state = {k: getattr(row, k) for k in _STATE_KEYS} if row is not None else {}
            latest[key] = (row.change, row.at, state) if row is not None else (0, 0.0, state)
        change, at, state = latest[key]
        if isinstance(item.message, ClearNote):
            if _unnamed_clear(state, at, item.received_at):
                named = _claimed_by(item.message)
                connection.execute(
                    sa.update(constraint_events)
                    .where(constraint_events.c.topic_key == key)
                    .where(constraint_events.c.change == change)
                    .values(**named)
                )
                latest[key] = (change, at, {**state, **named})
                new += 1
            continue
        incoming = _constraint_state(item)
        if incoming["action"] == "cleared" and (not state or state["action"] == "cleared"):
            continue  # cleared what it never saw set, or cleared again
        if all(state.get(k) == incoming.get(k) for k in _STATE_KEYS):
            continue
        if incoming["action"] == "cleared":  # say what it cleared (not who: a note may)
            incoming = {**state, **dict.fromkeys(_CLEARED_NOTHING), "action": "cleared"}
        row_values = {
            "topic": clean(item.topic, None),
            "topic_key": key,
            "change": change + 1,
            "at": item.received_at,
            "retained": item.retained,
            **{k: incoming.get(k) for k in _STATE_KEYS},
        }
        new += len(insert_new(connection, constraint_events, [row_values]))
        latest[key] = (change + 1, item.received_at, {k: incoming.get(k) for k in _STATE_KEYS})
    return new


NOTE_WINDOW = 60.0
"""Seconds after a clear in which a :class:`~cascade.interfaces.notes.ClearNote` names its
writer."""

_CLEARED_NOTHING = ("expires_at", "reason", "issued_by", "issued_at")  # what a clear says


def _unnamed_clear(state: dict[str, Any], at: float, now: float) -> bool:
    """Whether the topic's last change is a clear, named by no note yet, of the last minute."""
    return (
        state.get("action") == "cleared"
        and state.get("issued_by") is None
        and state.get("reason") is None
        and 0.0 <= now - at <= NOTE_WINDOW
    )


def _claimed_by(note: ClearNote) -> dict[str, Any]:
    """A note's who, why and when, as stored (bounded)."""
    return {
        "reason": _claimed(note.reason),
        "issued_by": _claimed(note.issued_by, _MAX_ISSUER_BYTES),
        "issued_at": note.issued_at,
    }
