"""The constraints index: retained constraints on brokers that send them to exact topics only.

MQTT has a broker send a new subscription the retained message of every topic
its filter matches; RabbitMQ 3.x's MQTT plugin sends one only to a subscription
of that exact topic, so ``{prefix}/constraints/#`` brings none of them
(``Connector.capabilities.retained_to_wildcards`` is ``False``). On such a
broker, Cascade's writers (the CLI, the dashboard) also keep the list of the
constraint topics they retain on one retained topic, the *index*, and readers
(engines, ``cascade status``) read the index, then every listed topic,
each through a subscription of its exact topic. The ``global`` scope's topics
are read whether listed or not. On other brokers nothing here is used.

MQTT cannot update a retained message atomically: two writers that read the
index at the same moment each write it back with only their own change, and
the last write wins. A writer reads the index again after writing and writes
it again while its own change is missing (:data:`INDEX_ATTEMPTS` times at
most), so an entry is lost only when another writer read the index before
this writer's write and wrote it after this writer's check. docs/protocol.md says what is lost.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection, Iterable

import msgspec

from ._codec import DECODE_ERRORS, invalid_message
from ._connector import Connector, Message
from ._errors import InvalidMessageError, InvalidTopicError
from ._topics import constraint_topic, validate_topic

__all__ = [
    "INDEX_ATTEMPTS",
    "MAX_INDEXED_TOPICS",
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
"""How many topics the index lists at most (an engine holds 10,000 constraints by default)."""

INDEX_ATTEMPTS = 3
"""How many times a writer writes the index while a concurrent writer's change hides its own."""

_TYPES = ("pause", "concurrency", "rate_limit")
_READ_AT_ONCE = 100


class _Index(msgspec.Struct, forbid_unknown_fields=False):
    topics: list[str]
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
    """The topics read whether the index lists them or not: the ``global`` scope's."""
    return [constraint_topic("global", prefix=prefix)] + [
        constraint_topic("global", kind, prefix) for kind in _TYPES
    ]


def encode_constraints_index(topics: Iterable[str], prefix: str) -> bytes:
    """The index's payload: ``{"v": 1, "topics": [...]}``, each topic relative to
    ``{prefix}/constraints/``, sorted (so the same set is the same payload)."""
    base = f"{prefix}/constraints/"
    relative = sorted({topic.removeprefix(base) for topic in topics})
    return _encoder.encode(_Index(topics=relative))


def decode_constraints_index(raw: bytes, prefix: str) -> list[str]:
    """The full topics an index payload lists; ``[]`` for an empty (cleared) payload.

    Raises :class:`InvalidMessageError` for anything that is not an index: not
    the JSON object above, more than :data:`MAX_INDEXED_TOPICS` topics, or a
    listed topic that is not a valid topic name (a wildcard, an empty level is
    fine, a ``+`` is not).
    """
    if not raw:
        return []
    try:
        index = _decoder.decode(raw)
    except DECODE_ERRORS as exc:
        raise invalid_message(exc, "$") from None
    if len(index.topics) > MAX_INDEXED_TOPICS:
        raise InvalidMessageError(
            f"the index lists {len(index.topics)} topics; at most {MAX_INDEXED_TOPICS} are read",
            "$.topics",
        )
    topics = [f"{prefix}/constraints/{relative}" for relative in index.topics]
    for position, topic in enumerate(topics):
        try:
            validate_topic(topic)
        except InvalidTopicError as exc:
            raise InvalidMessageError(str(exc), f"$.topics[{position}]") from None
    return topics


async def _read_retained(
    connector: Connector, topics: Collection[str], callback: Callable[[Message], None]
) -> None:
    """Subscribe to each of ``topics`` exactly, hand ``callback`` the retained messages that
    come, and unsubscribe; :data:`_READ_AT_ONCE` topics at a time, since every received
    message is matched against every subscription. Live copies that arrive meanwhile are
    left to the caller's own subscriptions (they come to those anyway)."""

    def retained_only(message: Message) -> None:
        if message.retain:
            callback(message)

    ordered = list(topics)
    for start in range(0, len(ordered), _READ_AT_ONCE):
        batch = ordered[start : start + _READ_AT_ONCE]
        subscribing = [
            asyncio.ensure_future(connector.subscribe(topic, retained_only)) for topic in batch
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


async def _read_index(connector: Connector) -> list[str] | None:
    """The topics the index lists (``None`` when it is not a valid index: logged)."""
    prefix = connector.topic_prefix
    found: list[list[str] | None] = [[]]

    def keep(message: Message) -> None:
        try:
            found[0] = decode_constraints_index(message.raw, prefix)
        except InvalidMessageError as exc:
            found[0] = None
            _log.warning("ignored the constraints index on %r: %s", message.topic, exc)

    await _read_retained(connector, [constraints_index_topic(prefix)], keep)
    return found[0]


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


async def read_indexed_constraints(
    connector: Connector, callback: Callable[[Message], None]
) -> list[str]:
    """Hand ``callback`` the retained message of every constraint topic the index lists,
    and of the ``global`` scope's topics, each read through its exact topic.

    For readers on a broker whose ``capabilities.retained_to_wildcards`` is ``False``,
    once their ``{prefix}/constraints/#`` subscription is made (live changes come
    through that). Returns the topics read.
    """
    prefix = connector.topic_prefix
    listed = await _read_index(connector) or []
    topics = list(dict.fromkeys([*always_read(prefix), *listed]))
    await _read_retained(connector, topics, callback)
    return topics


async def update_constraints_index(
    connector: Connector,
    *,
    add: Collection[str] = (),
    remove: Collection[str] = (),
    timeout: float,
) -> bool:
    """Add ``add`` to the index and take ``remove`` out of it, on a broker that needs it.

    For writers, after their constraints are published (``add``) or cleared
    (``remove``). Does nothing but read where the broker sends retained messages
    to wildcard subscriptions. Writes at most :data:`INDEX_ATTEMPTS` times:
    again while a concurrent writer's index hides this change. Returns whether
    the index was written. Raises :class:`ValueError` when the index would
    list more than :data:`MAX_INDEXED_TOPICS` topics (nothing is written).
    """
    prefix = connector.topic_prefix
    wanted, unwanted = set(add), set(remove) - set(add)
    writes = 0
    while True:
        listed = await _read_index(connector)  # the first read also has the broker probed
        if connector.capabilities.retained_to_wildcards is not False:
            return False
        current = set(listed or [])
        if listed is not None and wanted <= current and not unwanted & current:
            return writes > 0
        if writes == INDEX_ATTEMPTS:
            _log.warning(
                "other writers changed the constraints index at %r each time this one wrote "
                "it (%d times): it may not list %s",
                constraints_index_topic(prefix),
                writes,
                ", ".join(sorted(wanted)) or "what was cleared",
            )
            return True
        topics = (current | wanted) - unwanted
        if len(topics) > MAX_INDEXED_TOPICS:
            raise ValueError(
                f"the constraints index would list {len(topics)} topics, more than "
                f"{MAX_INDEXED_TOPICS}: clear constraints (cascade resume) first"
            )
        payload = encode_constraints_index(topics, prefix) if topics else b""
        await connector.publish(constraints_index_topic(prefix), payload, qos=1, retain=True)
        await connector.flush(timeout)
        writes += 1
