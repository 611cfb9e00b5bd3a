"""The dashboard's access audit in the history (``access_events``), and what it vouches for.

A team's dashboard writes a row for every control it let someone do (``allowed``) and every
one it refused (``refused``: read refusals too), naming the person and what vouched for the
name (``via``: ``oidc``, ``proxy``, ``api-token``, ``token``; of ``oidc``, the ID token's
``claim`` that named them too). The audit lists the refusals as events of their own (action
``refused``): the refusals of one person, action and reason within a minute are one row, with
their ``count`` and the ``last_at`` of them (the dashboard folds them; the row's target is its
first's). An allowed row is not listed again: the control
it allowed is in the audit already, as the recorder received it from the broker (a set, a
clear, a cancel), and the row *vouches* for that event's ``issued_by``.

The match rule (:func:`vouch`): an allowed row vouches for an event when

- its person is the event's ``issued_by``, exactly;
- its action and target are the event's: a ``set`` of type T on scope S is action T on S, a
  ``cleared`` on S is ``resume`` on S, a ``cancelled`` of run R is ``cancel`` on ``run:R``, a
  ``decided`` D of task T of run R at attempt N is D on ``run:R/task:T/attempt:N``;
- its time is within :data:`VOUCH_WINDOW` seconds of the event's, either way (the dashboard
  writes its row right after publishing, and a recorder receives the message within moments;
  the two clocks may be two machines');
- and no nearer event took it: each row vouches for one event at most, the nearest in time.

Everything else a writer said is *claimed* (``vouched`` is ``None``): a `cascade pause --as
NAME` of the CLI, a ``mosquitto_pub``, a dashboard's ``--token NAME=SECRET`` without
``--roles``. A writer who claims someone's name on the same scope within the window of that
person's own control could take their row if nearer: the window is kept short for that.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa

from .._text import MAX_TEXT_BYTES, clean
from ..records._audit_records import AuditEvent
from ..store._schema import access_events

__all__ = [
    "VIAS",
    "VOUCH_WINDOW",
    "access_row",
    "count_access",
    "insert_access",
    "refused_events",
    "vouch",
]

VOUCH_WINDOW = 5.0
"""Seconds between a dashboard's allowed row and the event it vouches for, at most."""
VIAS = frozenset({"oidc", "proxy", "api-token", "token", "broker"})
"""What may vouch for a name (``cascade.cli.access.Via``)."""
_OUTCOMES = frozenset({"allowed", "refused"})


def access_row(
    *,
    at: float,
    who: str,
    via: str,
    action: str,
    target: str,
    outcome: str,
    reason: str | None,
    claim: str | None = None,
    count: int = 1,
    last_at: float | None = None,
) -> dict[str, Any]:
    """The ``access_events`` row of one access (or of ``count`` alike, the first at ``at``,
    the last at ``last_at``); ``ValueError`` for one that cannot be."""
    if via not in VIAS:
        raise ValueError(f"via must be one of {', '.join(sorted(VIAS))}, not {via!r}")
    if outcome not in _OUTCOMES:
        raise ValueError(f"outcome must be allowed or refused, not {outcome!r}")
    if not who:
        raise ValueError("who is empty")
    if count < 1:
        raise ValueError(f"count must be at least 1, not {count}")
    return {
        "at": at,
        "who": clean(who, 256),
        "via": via,
        "action": clean(action, 32),
        "target": clean(target, MAX_TEXT_BYTES),
        "outcome": outcome,
        "reason": clean(reason) if reason is not None else None,
        "claim": clean(claim, 64) if claim is not None else None,
        "count": count,
        "last_at": last_at,
    }


def insert_access(connection: sa.Connection, row: Mapping[str, Any]) -> int:
    """Add ``row`` (an :func:`access_row`) to ``access_events``; its id."""
    key = connection.execute(sa.insert(access_events).values(row)).inserted_primary_key
    assert key is not None
    return int(key[0])


def count_access(connection: sa.Connection, row_id: int, count: int, last_at: float) -> None:
    """Row ``row_id`` now stands for ``count`` accesses, the last at ``last_at`` (the count
    only grows: a late, smaller one changes nothing)."""
    ae = access_events
    connection.execute(
        sa.update(ae)
        .where(ae.c.id == row_id, ae.c.count < count)
        .values(count=count, last_at=last_at)
    )


def _vouched(via: str, claim: str | None) -> str:
    """What vouched for a name, as the audit shows it: ``oidc:email``, ``proxy``."""
    return f"{via}:{claim}" if claim else via


def refused_events(
    connection: sa.Connection, *, since: float | None, limit: int
) -> list[AuditEvent]:
    """The refusals, newest first: action ``refused``, ``type`` the action refused, ``scope``
    its target, ``issued_by`` who was refused and ``vouched`` what vouched for the name."""
    ae = access_events
    query = (
        sa.select(ae, ae.c.count.label("times"))  # a Row's count is the tuple's method
        .where(ae.c.outcome == "refused")
        .order_by(ae.c.at.desc(), ae.c.id.desc())
        .limit(limit)
    )
    if since is not None:
        query = query.where(ae.c.at >= since)
    events = []
    for row in connection.execute(query):
        run_id = row.target[4:] if row.target.startswith("run:") else None
        events.append(
            AuditEvent(
                row.at,
                "refused",
                row.target,
                row.action,
                reason=row.reason,
                issued_by=row.who,
                run_id=run_id,
                vouched=_vouched(row.via, row.claim),
                count=row.times,
                last_at=row.last_at,
            )
        )
    return events


def _key(event: AuditEvent) -> tuple[str, str, str] | None:
    """The (who, action, target) of the allowed row that would vouch for ``event``."""
    if event.issued_by is None:
        return None
    if event.action == "set" and event.type is not None and event.scope is not None:
        return event.issued_by, event.type, event.scope
    if event.action == "cleared" and event.scope is not None:
        return event.issued_by, "resume", event.scope
    if event.action == "cancelled" and event.run_id is not None:
        return event.issued_by, "cancel", f"run:{event.run_id}"
    if event.action == "decided" and event.type is not None and event.scope is not None:
        return event.issued_by, event.type, event.scope
    if event.action == "start" and event.type is not None:
        return event.issued_by, "start", f"workflow:{event.type}"
    return None


def vouch(connection: sa.Connection, events: Iterable[AuditEvent]) -> list[AuditEvent]:
    """``events`` with ``vouched`` set where an allowed row of the dashboard vouches for them
    (the rule above), in the same order; one query, over the events' period only."""
    listed = list(events)
    wanted = [(i, key) for i, event in enumerate(listed) if (key := _key(event)) is not None]
    if not wanted:
        return listed
    ae = access_events
    start = min(listed[i].at for i, _ in wanted) - VOUCH_WINDOW
    end = max(listed[i].at for i, _ in wanted) + VOUCH_WINDOW
    rows: dict[tuple[str, str, str], list[Any]] = {}
    query = sa.select(ae).where(ae.c.outcome == "allowed", ae.c.at.between(start, end))
    for row in connection.execute(query):
        rows.setdefault((row.who, row.action, row.target), []).append(row)
    # nearest pairs first, so that each row goes to the event it is nearest to
    pairs = sorted(
        (abs(row.at - listed[i].at), i, row.id, row)
        for i, key in wanted
        for row in rows.get(key, ())
        if abs(row.at - listed[i].at) <= VOUCH_WINDOW
    )
    taken_rows: set[int] = set()
    vouched: dict[int, str] = {}
    for _, i, row_id, row in pairs:
        if i in vouched or row_id in taken_rows:
            continue
        vouched[i] = _vouched(row.via, row.claim)
        taken_rows.add(row_id)
    return [
        dataclasses.replace(event, vouched=vouched[i]) if i in vouched else event
        for i, event in enumerate(listed)
    ]
