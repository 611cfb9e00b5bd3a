"""The constraints index: retained constraints on brokers that send them to exact topics only.

MQTT has a broker send a new subscription the retained message of every topic
its filter matches; RabbitMQ 3.x's MQTT plugin sends one only to a subscription
of that exact topic, so ``{prefix}/constraints/#`` brings none of them
(the connector finds so at its first connection). On such a broker, Cascade's
writers (the CLI, the dashboard) also list every constraint topic they retain
in the *index*: :data:`INDEX_SHARDS` retained records
(``_index_shards.py``), written so that concurrent writers do not lose each
other's changes (``_index_writer.py``). Readers (engines, ``cascade status``)
read every shard, the record earlier versions kept (``{prefix}/index/constraints``,
for the topics no shard names) and the ``global`` scope's topics, then each
listed topic, each through a subscription of its exact topic. The index is a
directory: what a reader applies comes from the constraint's own topic, which
the broker's ACL binds to its scope's writers; the shards, which every writer
writes, only say where to look. RabbitMQ 3.10 takes about 3 ms an exact
subscription (measured: 1,000 in 3 s). On other brokers nothing here is used:
the connector decides (``_broker_differences.py``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection, Mapping
from typing import Any, NamedTuple

import msgspec

from cascade.interfaces import (
    Connector,
    InvalidMessageError,
    InvalidTopicError,
    Message,
    TopicKey,
    constraint_topic,
    constraint_topic_key,
    validate_topic,
)

from ._index_shards import (
    INDEX_SHARDS,
    Records,
    constraints_shard_topic,
    decode_index_shard,
    merge_records,
)
from ._records import decode_record

__all__ = [
    "MAX_INDEXED_TOPICS",
    "MAX_INDEX_BYTES",
    "IndexSnapshot",
    "always_read",
    "constraints_index_topic",
    "decode_constraints_index",
    "encode_constraints_index",
    "read_index",
    "read_indexed_constraints",
]

_log = logging.getLogger("cascade.connector_kit.constraints_index")

MAX_INDEXED_TOPICS = 10_000
"""How many constraints the index holds at most (an engine holds 10,000 by default)."""

MAX_INDEX_BYTES = 16 * 1024 * 1024
"""The largest index a reader takes (10,000 of the CLI's constraints take about 1.5 MB)."""

_TYPES = ("pause", "concurrency", "rate_limit")

Entries = dict[str, dict[str, Any]]
"""The index's constraints: full topic → payload (a JSON object)."""


class _Index(msgspec.Struct, forbid_unknown_fields=False):
    constraints: dict[str, dict[str, Any]]
    v: int = 1


_encoder = msgspec.json.Encoder()


def constraints_index_topic(prefix: str) -> str:
    """The retained record of the index that earlier versions keep: ``{prefix}/index/constraints``
    (the shards are below it, ``{prefix}/index/constraints/{k}``).

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
    """The payload of earlier versions' record: ``{"constraints": {topic: payload}, "v": 1}``,
    each topic relative to ``{prefix}/constraints/``, sorted (the same set, the same payload)."""
    base = f"{prefix}/constraints/"
    relative = {topic.removeprefix(base): dict(payload) for topic, payload in entries.items()}
    return _encoder.encode(_Index(constraints=dict(sorted(relative.items()))))


def decode_constraints_index(raw: bytes, prefix: str) -> Entries:
    """The constraints earlier versions' record holds, by full topic; ``{}`` for an empty payload.

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
    index = decode_record(raw, _Index)
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


def _wants(wanted: Callable[[TopicKey], bool], topic: str, prefix: str) -> bool:
    try:
        return wanted(constraint_topic_key(topic, prefix))
    except InvalidMessageError:
        return False  # no scope: no reader applies it


class IndexSnapshot(NamedTuple):
    """What one read of the index found: the shards' entries (by shard number, those read),
    the record of earlier versions, and the ``global`` scope's retained messages."""

    shards: dict[int, Records]
    legacy: Entries
    exact: list[Message]

    def merged(self) -> Records:
        """Per topic, the newest entry of the shards read."""
        return merge_records(*self.shards.values())

    def constraints(self) -> Entries:
        """The constraints in force by topic: the shards' newest entries that are not clears,
        and the record of earlier versions for the topics no shard names."""
        merged = self.merged()
        held = {t: p for t, p in self.legacy.items() if t not in merged}
        held.update({t: r.payload for t, r in merged.items() if r.payload is not None})
        return held


async def read_index(
    connector: Connector, shards: Collection[int] = range(INDEX_SHARDS), *, exact: bool = False
) -> IndexSnapshot:
    """Read ``shards``, the record of earlier versions and (``exact``) the ``global`` scope's
    topics, each through one subscription of its exact topic, all at once. A record that
    cannot be read is logged and taken as empty."""
    prefix = connector.topic_prefix
    legacy_topic = constraints_index_topic(prefix)
    by_topic = {constraints_shard_topic(prefix, shard): shard for shard in shards}
    globals_ = always_read(prefix) if exact else []
    snapshot = IndexSnapshot({shard: {} for shard in shards}, {}, [])

    def keep(message: Message) -> None:
        try:
            if message.topic in by_topic:
                snapshot.shards[by_topic[message.topic]] = decode_index_shard(message.raw, prefix)
            elif message.topic == legacy_topic:
                snapshot.legacy.update(decode_constraints_index(message.raw, prefix))
            else:
                snapshot.exact.append(message)
        except InvalidMessageError as exc:
            _log.warning("ignored the constraints index on %r: %s", message.topic, exc)

    await _read_retained(connector, [*by_topic, legacy_topic, *globals_], keep)
    return snapshot


async def read_indexed_constraints(
    connector: Connector,
    callback: Callable[[Message], None],
    *,
    wanted: Callable[[TopicKey], bool] | None = None,
) -> list[str]:
    """Hand ``callback`` the retained message of every constraint topic the index lists, and
    of the ``global`` scope's topics, each read through a subscription of its exact topic.

    The index is a directory, not a copy: it says which topics hold a constraint, and each
    is then read from its own topic, which the broker's ACL binds to the writers of its
    scope, and checked against that topic by whoever applies it (as every constraint is:
    :func:`~cascade.interfaces.constraint_from_topic`). So a writer of the index can make
    readers read a topic more (bounded: at most :data:`MAX_INDEXED_TOPICS`), or fail to
    read one it hid, but never make them take a constraint on another scope than its
    topic's. The ``global`` scope's topics are read whatever the index says.

    For readers on a broker that sends retained messages to exact subscriptions only
    (``Connector.subscribe_constraints`` calls it there), once their
    ``{prefix}/constraints/#`` subscription is made (live changes come through that).
    :data:`INDEX_SHARDS` + 5 exact subscriptions, at once, then one per listed topic, at
    once: with ``wanted``, only the listed topics whose scope and type
    (:func:`~cascade.interfaces.constraint_topic_key`) it wants (an engine: the scopes
    that can govern its run's tasks), so that constraints on other tasks cost a run's
    start nothing. A record that cannot be read is logged and skipped. Returns the topics
    handed over.
    """
    snapshot = await read_index(connector, exact=True)
    found = list(snapshot.exact)
    exact = set(always_read(connector.topic_prefix))
    prefix = connector.topic_prefix
    listed = sorted(
        topic
        for topic in snapshot.constraints()
        if topic not in exact and (wanted is None or _wants(wanted, topic, prefix))
    )
    if len(listed) > MAX_INDEXED_TOPICS:
        _log.warning(
            "the constraints index lists %d topics; only the first %d are read",
            len(listed),
            MAX_INDEXED_TOPICS,
        )
        listed = listed[:MAX_INDEXED_TOPICS]
    await _read_retained(connector, listed, found.append)
    for message in found:
        callback(message)
    return [message.topic for message in found]
