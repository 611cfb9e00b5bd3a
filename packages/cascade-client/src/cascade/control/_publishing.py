"""How constraints, their clearing and the notes of who did it reach the broker."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from cascade.interfaces import (
    Connector,
    ConnectorError,
    InvalidMessageError,
    Message,
    decode_constraint,
)
from cascade.interfaces.notes import ClearNote, IssuedNote, cleared_topic, issued_topic
from cascade.interfaces.wire import ConstraintType

from ._constraints import resume_topics

__all__ = [
    "PublishRefusedError",
    "clear_constraints",
    "expired_copies",
    "say_issued",
    "publish_confirmed",
    "set_constraints",
]


class PublishRefusedError(ConnectorError):
    """The broker said it refused messages a command published (an MQTT 5 PUBACK's reason)."""


async def publish_confirmed(
    connector: Connector,
    messages: Sequence[tuple[str, Any]],
    timeout: float,
    *,
    retain: bool = True,
) -> None:
    """Publish ``messages`` (retained unless told not to) at QoS 1 and wait until the broker
    accepted them all.

    Raises :class:`PublishRefusedError` when the broker refused any: when it said so
    (MQTT 5, e.g. "not authorized" from an ACL), or when the connector gave them up
    (counted dropped: a broker that closes the connection on a publish it refuses,
    as RabbitMQ does under MQTT 3.1.1, closed it each time one was sent). Under MQTT
    3.1.1 mosquitto acknowledges a publish it drops like one it accepts, and nobody can tell.
    """
    stats = connector.stats
    refused, dropped = stats.refused, stats.dropped
    for topic, payload in messages:
        await connector.publish(topic, payload, qos=1, retain=retain)
    await connector.flush(timeout)
    topics = ", ".join(topic for topic, _ in messages)
    refused = connector.stats.refused - refused
    if refused:
        raise PublishRefusedError(
            f"the broker refused {refused} of {len(messages)} messages to {topics} (an ACL "
            "that denies this user those topics does that; see docs/protocol.md)"
        )
    dropped = connector.stats.dropped - dropped
    if dropped:
        raise PublishRefusedError(
            f"the broker did not take {dropped} of {len(messages)} messages to {topics}: it "
            "closed the connection each time they were sent (a broker does that to a publish "
            "its ACL or permissions deny this user; see docs/protocol.md)"
        )


def expired_copies(
    topics: Sequence[str], retained: Mapping[str, Mapping[str, Any]], now: float
) -> list[tuple[str, dict[str, Any]]]:
    """What each of ``topics`` retains (a valid constraint), with ``expires_at`` set to
    ``now``: written retained just before the clear, so that a broker that brings a deleted
    retained message back (a NATS 2.9 cluster after a node restart does, docs/brokers.md)
    brings back one that every reader, the existing tools too, drops as expired. The
    payload is kept as it was otherwise (its unknown fields too)."""
    copies = []
    for topic in topics:
        payload = retained.get(topic)
        if not payload:
            continue
        try:
            decode_constraint(payload)
        except InvalidMessageError:
            continue  # every reader refuses it already: nothing to bring back
        copies.append((topic, {**payload, "expires_at": now}))
    return copies


async def say_issued(connector: Connector, login: str | None, notes: Sequence[IssuedNote]) -> None:
    """Say on ``login``'s own topic what it did (:class:`~cascade.interfaces.notes.IssuedNote`, for
    the history's audit); nothing without a login. Fire and forget: a note the broker
    refuses costs the audit its witness, never the control."""
    if login is None:
        return
    topic = issued_topic(login, connector.topic_prefix)
    for note in notes:
        await connector.publish(topic, note, qos=1)


async def set_constraints(
    connector: Connector,
    messages: Sequence[tuple[str, Any]],
    timeout: float,
    *,
    login: str | None = None,
) -> None:
    """Publish constraints as :func:`publish_confirmed` does, and put them in the
    constraints index where the broker needs one (``Connector.index_constraints``); then,
    with the broker ``login`` that did it, say so (:func:`say_issued`).

    Raises :class:`~cascade.connector_kit.constraints_index.IndexNotHeldError` (a
    ``ConnectorError``: the CLI exits 1, the dashboard answers 503) naming the constraints the
    index did not keep.
    """
    await publish_confirmed(connector, messages, timeout)
    await connector.index_constraints(put=dict(messages), timeout=timeout)
    notes = [
        IssuedNote(
            topic=topic,
            action="set",
            issued_at=constraint.issued_at,
            issued_by=constraint.issued_by,
            id=constraint.id,
        )
        for topic, constraint in messages
    ]
    await say_issued(connector, login, notes)


async def clear_constraints(
    connector: Connector,
    scope: str,
    kind: ConstraintType | None,
    timeout: float,
    *,
    issued_by: str | None = None,
    reason: str | None = None,
    login: str | None = None,
) -> list[str]:
    """Clear what ``resume`` clears on ``scope`` (one type or all); returns the topics cleared.

    The retained constraints are read first, so that constraints other tools wrote for
    the scope on other topics are cleared too (see :func:`resume_topics`). Raises
    :class:`~cascade.connector_kit.constraints_index.IndexNotHeldError` naming the clears the
    index did not keep.
    Each topic that held a constraint first gets it again expired (:func:`expired_copies`),
    then the clear. Once all is done, a :class:`~cascade.interfaces.notes.ClearNote` per topic says
    who cleared it
    and why, for the history's audit (fire and forget: a note the broker refuses costs the
    audit a name, never the clear), and with the broker ``login`` that cleared them, so does
    its own note (:func:`say_issued`).
    """
    retained: dict[str, dict[str, Any]] = {}

    def keep(message: Message) -> None:
        retained[message.topic] = message.payload

    handle = await connector.subscribe_constraints(keep)
    await handle.unsubscribe()
    topics = resume_topics(scope, kind, retained, connector.topic_prefix)
    now = time.time()
    await publish_confirmed(connector, expired_copies(topics, retained, now), timeout)
    await publish_confirmed(connector, [(topic, b"") for topic in topics], timeout)
    await connector.index_constraints(remove=topics, timeout=timeout)
    note = ClearNote(issued_by=issued_by, reason=reason, issued_at=now)
    for topic in topics:
        await connector.publish(cleared_topic(topic, connector.topic_prefix), note, qos=1)
    notes = [
        IssuedNote(topic=topic, action="cleared", issued_at=note.issued_at, issued_by=issued_by)
        for topic in topics
    ]
    await say_issued(connector, login, notes)
    return topics
