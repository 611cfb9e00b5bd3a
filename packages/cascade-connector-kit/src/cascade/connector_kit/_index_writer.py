"""How a writer puts its changes in the constraints index so that none is lost silently.

A writer (``cascade pause``, ``limit``, ``resume``, the dashboard) changes
only the shards of the topics it sets or clears (``_index_shards.py``); a
concurrent writer of another shard never touches them. Two writers of one
shard can still overwrite each other (MQTT has no compare-and-set), so:

- each change carries a time: the writer's clock, or just above the newest
  entry it read for that topic, so a clear is never older than the set it
  clears, and a stale copy of the set cannot undo it;
- a writer stays subscribed to its shards from its read to its last check,
  and so sees every write of them that lands meanwhile, in the broker's
  order, its own included. It writes each shard as everything it has seen
  of it, merged, plus its change; then, for :data:`SETTLE` seconds after the
  broker acknowledged that, it watches: while the last write of a shard
  lacks its change, or an entry that had come before its own write came
  back (one its write may have overwritten), it writes the merge again, at
  most :data:`INDEX_ATTEMPTS` times. A writer that read before another's
  write and lands after it therefore repairs what it overwrote, however
  late it lands, and the writer it overwrote, if it still watches, writes
  its change again;
- it then reads its shards again, unsubscribed, as any reader would, and
  raises :class:`IndexNotHeldError`, naming what is missing, when its change
  is not there (the CLI exits 1, the dashboard answers 503).

The record earlier versions wrote (``{prefix}/index/constraints``) is read, never written:
readers take from it the topics no shard names, and a writer keeps the tombstone of a
topic it still holds, so that a clear hides it for good.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Collection, Mapping
from typing import Any

from cascade.interfaces import (
    Connector,
    ConnectorError,
    ConstraintTopicError,
    InvalidMessageError,
    Message,
    Payload,
    SubscriptionHandle,
    constraint_topic_key,
    decode_payload,
    encode_payload,
)

from ._constraints_index import (
    MAX_INDEXED_TOPICS,
    Entries,
    constraints_index_topic,
    decode_constraints_index,
    read_index,
)
from ._index_shards import (
    IndexRecord,
    Records,
    constraints_shard_topic,
    decode_index_shard,
    encode_index_shard,
    merge_records,
    prune_records,
    shard_of,
)

__all__ = ["INDEX_ATTEMPTS", "SETTLE", "IndexNotHeldError", "update_constraints_index"]

_log = logging.getLogger("cascade.connector_kit.constraints_index")

SETTLE = 1.0
"""Seconds a writer watches its shards after the broker acknowledged its write: the writes of
writers that read before it land meanwhile, and it repairs what they lack."""

INDEX_ATTEMPTS = 6
"""How many times a writer writes its change while concurrent writers hide it."""


class IndexNotHeldError(ConnectorError):
    """The constraints index does not hold a writer's change after :data:`INDEX_ATTEMPTS` writes.

    ``topics`` are the constraint topics whose change is missing. Running engines got the
    change live; engines and readers started afterwards may not see it.
    """

    def __init__(self, topics: list[str], what: list[str], attempts: int) -> None:
        self.topics = topics
        super().__init__(
            f"the constraints index did not keep {', '.join(what)} after {attempts} writes "
            "(other writers overwrote it each time): running engines have it, but engines and "
            "readers started from now on may not; run the command again"
        )


def _describe(topic: str, payload: Mapping[str, Any] | None, prefix: str) -> str:
    """A change as a user names it: ``pause on task:x (task/x/pause)``."""
    relative = topic.removeprefix(f"{prefix}/constraints/")
    if payload is not None:
        return f"{payload.get('type', '?')} on {payload.get('scope', '?')} ({relative})"
    try:
        key = constraint_topic_key(topic, prefix)
    except ConstraintTopicError:
        return f"the clear of {relative}"
    if key.type is not None:
        return f"the clear of {key.type} on {key.scope} ({relative})"
    return f"the clear of {key.scope} ({relative})"


def _stamp(held: IndexRecord | None, now: float) -> float:
    """A change's time: now, or just above the newest entry seen for its topic."""
    if held is None or held.t < now:
        return now
    return held.t + max(abs(held.t) * 1e-15, 1e-6)


class _Watch:
    """What a writer has seen of its shards since its read: everything (merged), the last write
    of each as it arrived, and what had arrived when its own last write came back (what that
    write may have overwritten, and so what it owes)."""

    def __init__(self, prefix: str, shards: Collection[int]) -> None:
        self.prefix = prefix
        self.topics = {constraints_shard_topic(prefix, shard): shard for shard in shards}
        self.seen: dict[int, Records] = {shard: {} for shard in shards}
        self.last: dict[int, Records] = {shard: {} for shard in shards}
        self.owed: dict[int, Records] = {shard: {} for shard in shards}
        self.written: dict[int, bytes] = {}
        self.legacy: Entries = {}
        self.handles: list[SubscriptionHandle] = []

    def on_message(self, message: Message) -> None:
        try:
            if message.topic == constraints_index_topic(self.prefix):
                self.legacy = decode_constraints_index(message.raw, self.prefix)
                return
            shard = self.topics[message.topic]
            records = decode_index_shard(message.raw, self.prefix)
        except InvalidMessageError as exc:
            _log.warning("ignored the constraints index on %r: %s", message.topic, exc)
            return
        self.seen[shard] = merge_records(self.seen[shard], records)
        self.last[shard] = records
        if message.raw == self.written.get(shard):  # everything before it, it may have erased
            self.owed[shard] = self.seen[shard]

    async def open(self, connector: Connector) -> None:
        """Subscribe to the shards (their retained messages are in when this returns), and read
        the record of earlier versions once."""
        legacy = await connector.subscribe(constraints_index_topic(self.prefix), self.on_message)
        for topic in self.topics:
            self.handles.append(await connector.subscribe(topic, self.on_message))
        await legacy.unsubscribe()  # written by every writer: not watched

    async def close(self) -> None:
        for handle in self.handles:
            await handle.unsubscribe()

    def _ours(self, shard: int, mine: Mapping[str, IndexRecord]) -> Records:
        return {t: r for t, r in mine.items() if shard_of(t, self.prefix) == shard}

    def wanted(self, mine: Mapping[str, IndexRecord], now: float) -> dict[int, Records]:
        """What to write to each shard: everything seen of it and ``mine``, pruned."""
        return {
            shard: prune_records(merge_records(seen, self._ours(shard, mine)), now, self.legacy)
            for shard, seen in self.seen.items()
        }

    def lacking(self, mine: Mapping[str, IndexRecord], now: float) -> bool:
        """Whether the last write of a shard lacks an entry of ``mine`` or one this writer owes."""
        for shard, owed in self.owed.items():
            due = prune_records(merge_records(owed, self._ours(shard, mine)), now, self.legacy)
            if _missing(self.last[shard], due):
                return True
        return False


def _missing(held: Mapping[str, IndexRecord], wanted: Mapping[str, IndexRecord]) -> list[str]:
    """The topics of ``wanted`` whose entry ``held`` lacks, or holds older."""
    return [t for t, r in wanted.items() if t not in held or r.newer_than(held[t])]


async def update_constraints_index(
    connector: Connector,
    *,
    put: Mapping[str, Payload] | None = None,
    remove: Collection[str] = (),
    timeout: float,
    settle: float | None = None,
) -> bool:
    """Put the constraints ``put`` (topic → payload) in the index and take the topics
    ``remove`` out of it: what ``Connector.index_constraints`` does on a broker that
    needs an index.

    For writers, after their constraints are published (``put``) or cleared
    (``remove``). ``settle`` is :data:`SETTLE` unless given. Returns whether the
    index was written (``False``: nothing to change). Raises :class:`IndexNotHeldError`
    when the change is missing after :data:`INDEX_ATTEMPTS` writes, and
    :class:`ValueError` when a shard would hold more than :data:`MAX_INDEXED_TOPICS`
    constraints (nothing is written).
    """
    prefix = connector.topic_prefix
    settle = SETTLE if settle is None else settle
    changes: dict[str, dict[str, Any] | None] = dict.fromkeys(remove)
    changes.update({t: decode_payload(encode_payload(p)) for t, p in (put or {}).items()})
    if not changes:
        return False
    shards = sorted({shard_of(topic, prefix) for topic in changes})
    mine: dict[str, IndexRecord] = {}
    attempt = 0
    while True:
        watch = _Watch(prefix, shards)
        try:
            await watch.open(connector)
            if not mine:
                now, seen = time.time(), merge_records(*watch.seen.values())
                mine = {t: IndexRecord(_stamp(seen.get(t), now), p) for t, p in changes.items()}
            while attempt < INDEX_ATTEMPTS:
                if attempt:  # colliding writers would collide again at once
                    await asyncio.sleep(random.uniform(0.0, settle / 4))
                attempt += 1
                acked = await _write(connector, watch, mine, timeout)
                await asyncio.sleep(max(0.0, acked + settle - time.monotonic()))
                if not watch.lacking(mine, time.time()):
                    break
        finally:
            await watch.close()
        missing = _missing((await read_index(connector, shards)).merged(), mine)
        if not missing:
            return True
        if attempt >= INDEX_ATTEMPTS:
            what = [_describe(t, mine[t].payload, prefix) for t in missing]
            raise IndexNotHeldError(missing, what, INDEX_ATTEMPTS)


async def _write(
    connector: Connector, watch: _Watch, mine: Mapping[str, IndexRecord], timeout: float
) -> float:
    """Write each shard of ``mine`` as the watch has seen it plus ``mine``; returns when the
    broker acknowledged them (``time.monotonic()``)."""
    prefix = connector.topic_prefix
    writes: list[tuple[str, bytes]] = []
    for shard, wanted in watch.wanted(mine, time.time()).items():
        if sum(r.payload is not None for r in wanted.values()) > MAX_INDEXED_TOPICS:
            raise ValueError(
                f"the constraints index would hold more than {MAX_INDEXED_TOPICS} constraints "
                "in one shard: clear constraints (cascade resume) first"
            )
        payload = encode_index_shard(wanted, prefix)
        writes.append((constraints_shard_topic(prefix, shard), payload))
        watch.written[shard] = payload
    for topic, payload in writes:
        await connector.publish(topic, payload, qos=1, retain=True)
    await connector.flush(timeout)
    return time.monotonic()
