"""The broker logins' witness notes (``issued_notes``), and what they vouch for in the audit.

A writer logged in to the broker says on its own topic, ``{prefix}/issued/{login}``, what it
did (:class:`~cascade.interfaces.notes.IssuedNote`: the topic it wrote, the control's
``issued_at``, ``issued_by`` and id). A recorder keeps them only when told that the broker's
ACL binds that topic to the login (`cascade record --logins-bound`; `cascade acl` writes
such an ACL): anywhere else anyone could write any login's notes.

The match rule (:func:`witness`): a note vouches for an event of the audit that no
dashboard's row vouched for already when the note's login is the event's ``issued_by`` (a
login that claims another name vouches for nothing) and the note names the event exactly:

- a ``set``: the constraint's topic and its ``issued_at``;
- a ``cleared``: the constraint's topic and the clear note's ``issued_at``;
- a ``cancelled``: the cancel request's id.

The event then says ``vouched`` ``broker``: the broker knew who logged in.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from cascade.interfaces import decode_level
from cascade.interfaces.notes import IssuedNote

from .._received import Received
from .._text import clean
from ..records._audit_records import AuditEvent
from ..store._schema import issued_notes

__all__ = ["issued_row", "store_issued", "witness"]

_ACTIONS = {"set": "set", "cleared": "cleared", "cancelled": "cancel"}
"""An audit event's action: the note's that names it."""


def issued_row(item: Received) -> dict[str, Any]:
    """The ``issued_notes`` row of a received note (its topic's last level is the login:
    ``_received`` checked it is the one level under ``{prefix}/issued/``)."""
    note = item.message
    assert isinstance(note, IssuedNote)
    return {
        "login": clean(decode_level(item.topic.rsplit("/", 1)[-1]), 1024),
        "topic": clean(note.topic, None),
        "action": note.action,
        "issued_at": note.issued_at,
        "issued_by": None if note.issued_by is None else clean(note.issued_by, 256),
        "ref_id": None if note.id is None else clean(note.id, 256),
        "at": item.received_at,
    }


def store_issued(connection: sa.Connection, rows: list[dict[str, Any]]) -> int:
    """Insert the notes; how many."""
    if rows:
        connection.execute(sa.insert(issued_notes), rows)
    return len(rows)


def _key(event: AuditEvent) -> tuple[str, str, Any] | None:
    """What a note that names ``event`` says: (action, topic or request id, issued_at)."""
    action = _ACTIONS.get(event.action)
    if action is None or event.issued_by is None or event.vouched is not None:
        return None
    if action == "cancel":
        return (action, event.request_id, None) if event.request_id else None
    return (action, event.topic, event.issued_at) if event.issued_at is not None else None


def witness(connection: sa.Connection, events: Iterable[AuditEvent]) -> list[AuditEvent]:
    """``events`` with ``vouched`` ``broker`` where a login's note names one and the login is
    its ``issued_by`` (the rule above), in the same order; one query."""
    listed = list(events)
    wanted = {i: key for i, event in enumerate(listed) if (key := _key(event)) is not None}
    if not wanted:
        return listed
    notes = issued_notes
    logins: dict[tuple[str, Any, Any], set[str]] = {}
    query = sa.select(notes).where(
        sa.or_(
            notes.c.topic.in_({key[1] for key in wanted.values() if key[0] != "cancel"}),
            notes.c.ref_id.in_({key[1] for key in wanted.values() if key[0] == "cancel"}),
        )
    )
    for row in connection.execute(query):
        named = row.ref_id if row.action == "cancel" else row.topic
        at = None if row.action == "cancel" else row.issued_at
        logins.setdefault((row.action, named, at), set()).add(row.login)
    return [
        dataclasses.replace(event, vouched="broker")
        if i in wanted and event.issued_by in logins.get(wanted[i], ())
        else event
        for i, event in enumerate(listed)
    ]
