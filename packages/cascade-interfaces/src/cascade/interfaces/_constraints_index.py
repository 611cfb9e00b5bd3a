"""The constraints index: retained constraints on brokers that send them to exact topics only.

MQTT has a broker send a new subscription the retained message of every topic
its filter matches; RabbitMQ 3.x's MQTT plugin sends one only to a subscription
of that exact topic, so ``{prefix}/constraints/#`` brings none of them
(``Connector.capabilities.retained_to_wildcards`` is ``False``). On such a
broker, Cascade's writers (the CLI, the dashboard) also keep a copy of every
constraint they retain, by topic, in one retained message, the *index*; readers
(engines, ``cascade status``) read it through a subscription of its exact topic,
and the ``global`` scope's topics through theirs (the truth for that scope,
whoever wrote it). One read, whatever the number of constraints: reading each
topic exactly costs RabbitMQ 3.10 about 3 ms a topic (measured: 1,000 in 3 s).
On other brokers nothing here is used.

MQTT cannot update a retained message atomically: two writers that read the
index at the same moment each write it back with only their own change, and
the last write wins. A writer reads the index again after writing and writes
it again while its own change is missing (:data:`INDEX_ATTEMPTS` times at
most), so an entry is lost only when another writer read the index before
this writer's write and wrote it after this writer's check (docs/protocol.md).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection, Mapping
from typing import Any

import msgspec

from ._codec import DECODE_ERRORS, Payload, decode_payload, encode_payload, invalid_message
from ._connector import Connector, Message
from ._errors import InvalidMessageError, InvalidTopicError
from ._topics import constraint_topic, validate_topic

__all__ = [
    "INDEX_ATTEMPTS",
    "MAX_INDEXED_TOPICS",
    "MAX_INDEX_BYTES",
    "always_read",
    "beside_exact_reads",
    "constraints_index_topic",
    "decode_constraints_index",
    "encode_constraints_index",
    "read_indexed_constraints",
    "update_constraints_index",
]

_log = logging.getLogger("cascade.interfaces.constraints_index")

MAX_INDEXED_TOPICS = 10_000
"""How many constraints the index holds at most (an engine holds 10,000 by default)."""

MAX_INDEX_BYTES = 16 * 1024 * 1024
"""The largest index a reader takes (10,000 of the CLI's constraints take about 1.5 MB)."""

INDEX_ATTEMPTS = 3
"""How many times a writer writes the index while a concurrent writer's change hides its own."""

_TYPES = ("pause", "concurrency", "rate_limit")

Entries = dict[str, dict[str, Any]]
"""The index's constraints: full topic → payload (a JSON object)."""


class _Index(msgspec.Struct, forbid_unknown_fields=False):
    constraints: dict[str, dict[str, Any]]
    v: int = 1


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(_Index)


def constraints_index_topic(prefix: str) -> str:
    """The retained topic of the index: ``{prefix}/index/constraints``.

    Outside ``{prefix}/constraints/``, so that readers of that tree that do not
    know the index (the existing tools) never meet it.
    """
    return f"{prefix}/index/constraints"


def always_read(prefix: str) -> list[str]:
    """The topics read exactly whatever the index says: the ``global`` scope's."""
    return [constraint_topic("global", prefix=prefix)] + [
        constraint_topic("global", kind, prefix) for kind in _TYPES
    ]


def encode_constraints_index(entries: Mapping[str, Mapping[str, Any]], prefix: str) -> bytes:
    """The index's payload: ``{"constraints": {topic: payload, ...}, "v": 1}``, each topic
    relative to ``{prefix}/constraints/``, sorted (so the same set is the same payload)."""
    base = f"{prefix}/constraints/"
    relative = {topic.removeprefix(base): dict(payload) for topic, payload in entries.items()}
    return _encoder.encode(_Index(constraints=dict(sorted(relative.items()))))


def decode_constraints_index(raw: bytes, prefix: str) -> Entries:
    """The constraints an index payload holds, by full topic; ``{}`` for an empty payload.

    Raises :class:`InvalidMessageError` for anything that is not an index: over
    :data:`MAX_INDEX_BYTES`, not the JSON object above, more than
    :data:`MAX_INDEXED_TOPICS` constraints, or a topic that is not a valid topic
    name. The constraints themselves are checked where they are applied, as
    any received constraint is.
    """
    if not raw:
        return {}
    if len(raw) > MAX_INDEX_BYTES:
        raise InvalidMessageError(f"the index is {len(raw)} bytes; at most {MAX_INDEX_BYTES}")
    try:
        index = _decoder.decode(raw)
    except DECODE_ERRORS as exc:
        raise invalid_message(exc, "$") from None
    if len(index.constraints) > MAX_INDEXED_TOPICS:
        raise InvalidMessageError(
            f"the index holds {len(index.constraints)} constraints; at most "
            f"{MAX_INDEXED_TOPICS} are read",
            "$.constraints",
        )
    entries: Entries = {}
    for relative, payload in index.constraints.items():
        topic = f"{prefix}/constraints/{relative}"
        try:
            validate_topic(topic)
        except InvalidTopicError as exc:
            raise InvalidMessageError(str(exc), f"$.constraints[{relative!r}]") from None
        entries[topic] = payload
    return entries


def beside_exact_reads(
    connector: Connector, callback: Callable[[Message], None]
) -> Callable[[Message], None]:
    """``callback`` for a ``{prefix}/constraints/#`` subscription whose retained messages are
    read exactly (:func:`read_indexed_constraints`): on a broker whose
    ``capabilities.retained_to_wildcards`` is ``False``, a retained copy that reaches the
    wildcard was brought by an exact read, which hands it over itself; it is skipped here,
    so that each message is handled once."""

    def live(message: Message) -> None:
        if message.retain and connector.capabilities.retained_to_wildcards is False:
            return
        callback(message)

    return live


async def _read_retained(
    connector: Connector, topics: Collection[str], callback: Callable[[Message], None]
) -> None:
    """Subscribe to each of ``topics`` exactly, hand ``callback`` the retained messages that
    come, and unsubscribe. Live copies that arrive meanwhile are left to the caller's own
    subscriptions (they come to those anyway)."""

    def retained_only(message: Message) -> None:
        if message.retain:
            callback(message)

    subscribing = [
        asyncio.ensure_future(connector.subscribe(topic, retained_only)) for topic in topics
    ]
    try:
        await asyncio.gather(*subscribing)
    finally:  # cancelled or failed: what was subscribed is unsubscribed all the same
        for task in subscribing:
            task.cancel()  # a subscribe cancelled under way unsubscribes by itself
        await asyncio.gather(*subscribing, return_exceptions=True)
        made = [
            task.result()
            for task in subscribing
            if task.done() and not task.cancelled() and task.exception() is None
        ]
        await asyncio.gather(*(handle.unsubscribe() for handle in made))


async def read_indexed_constraints(
    connector: Connector, callback: Callable[[Message], None]
) -> list[str]:
    """Hand ``callback`` every constraint the index holds, as a retained message on its
    topic, and the retained messages of the ``global`` scope's topics, read exactly
    (which win over the index's copies of them).

    For readers on a broker whose ``capabilities.retained_to_wildcards`` is ``False``,
    once their ``{prefix}/constraints/#`` subscription is made (live changes come
    through that). An index that cannot be read is logged and skipped. Returns the
    topics handed over.
    """
    prefix = connector.topic_prefix
    exact = always_read(prefix)
    found: list[Message] = []
    entries: Entries = {}

    def keep(message: Message) -> None:
        nonlocal entries
        if message.topic in exact:
            found.append(message)
            return
        try:
            entries = decode_constraints_index(message.raw, prefix)
        except InvalidMessageError as exc:
            _log.warning("ignored the constraints index on %r: %s", message.topic, exc)

    await _read_retained(connector, [constraints_index_topic(prefix), *exact], keep)
    for topic, payload in entries.items():
        if topic not in exact:
            raw = encode_payload(payload)
            found.append(Message(topic=topic, payload=payload, raw=raw, qos=1, retain=True))
    for message in found:
        callback(message)
    return [message.topic for message in found]


async def _read_index(connector: Connector) -> Entries | None:
    """The index's constraints (``None`` when it is not a valid index: logged)."""
    prefix = connector.topic_prefix
    found: list[Entries | None] = [{}]

    def keep(message: Message) -> None:
        try:
            found[0] = decode_constraints_index(message.raw, prefix)
        except InvalidMessageError as exc:
            found[0] = None
            _log.warning("ignored the constraints index on %r: %s", message.topic, exc)

    await _read_retained(connector, [constraints_index_topic(prefix)], keep)
    return found[0]


async def update_constraints_index(
    connector: Connector,
    *,
    put: Mapping[str, Payload] | None = None,
    remove: Collection[str] = (),
    timeout: float,
) -> bool:
    """Put the constraints ``put`` (topic → payload) in the index and take the topics
    ``remove`` out of it, on a broker that needs an index.

    For writers, after their constraints are published (``put``) or cleared
    (``remove``). Does nothing but read where the broker sends retained messages
    to wildcard subscriptions. Writes at most :data:`INDEX_ATTEMPTS` times:
    again while a concurrent writer's index hides this change. Returns whether
    the index was written. Raises :class:`ValueError` when the index would hold
    more than :data:`MAX_INDEXED_TOPICS` constraints (nothing is written).
    """
    prefix = connector.topic_prefix
    wanted = {topic: decode_payload(encode_payload(p)) for topic, p in (put or {}).items()}
    unwanted = set(remove) - set(wanted)
    writes = 0
    while True:
        current = await _read_index(connector)  # the first read also has the broker probed
        if connector.capabilities.retained_to_wildcards is not False:
            return False
        held = current or {}
        done = all(held.get(t) == p for t, p in wanted.items()) and not unwanted & set(held)
        if current is not None and done:
            return writes > 0
        if writes == INDEX_ATTEMPTS:
            _log.warning(
                "other writers changed the constraints index at %r each time this one wrote "
                "it (%d times): it may not hold %s",
                constraints_index_topic(prefix),
                writes,
                ", ".join(sorted(wanted)) or "what was cleared",
            )
            return True
        entries = {t: p for t, p in {**held, **wanted}.items() if t not in unwanted}
        if len(entries) > MAX_INDEXED_TOPICS:
            raise ValueError(
                f"the constraints index would hold {len(entries)} constraints, more than "
                f"{MAX_INDEXED_TOPICS}: clear constraints (cascade resume) first"
            )
        payload = encode_constraints_index(entries, prefix) if entries else b""
        await connector.publish(constraints_index_topic(prefix), payload, qos=1, retain=True)
        await connector.flush(timeout)
        writes += 1
