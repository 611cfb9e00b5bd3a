"""How a writer puts its changes in the constraints index so that none is lost silently.

A writer (``cascade pause``, ``limit``, ``resume``, the dashboard) changes
only the shards of the topics it sets or clears (``_index_shards.py``); a
concurrent writer of another shard never touches them. Two writers of one
shard can still overwrite each other (MQTT has no compare-and-set), so:

- each change carries a time: the writer's clock, or just above the newest
  entry it read for that topic, so a clear is never older than the set it
  clears, and a stale copy of the set cannot undo it;
- a writer writes the shard's entries as it read them plus its change, then
  waits until :data:`SETTLE` seconds have passed since the broker
  acknowledged the write, and reads the shard again. Every writer that read
  the shard before this write and is not slower than :data:`SETTLE` from its
  read to its acknowledgement has landed by then, so a change still there
  stays there. A change that is missing (or hidden by an older state) is
  written again, at most :data:`INDEX_ATTEMPTS` times, after a random pause
  that keeps colliding writers from colliding again;
- a writer that took longer than :data:`SETTLE` from its read to its
  acknowledgement may have written over a change another writer already
  confirmed: it says so (a warning naming the shards);
- a writer whose change is still missing after its last attempt raises
  :class:`IndexNotHeldError`, naming it (the CLI exits 1).

Writers also keep the record of earlier versions (``{prefix}/index/constraints``)
current, by the same read-modify-write those versions do, so that their readers
(engines not yet upgraded) see what this version sets.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Collection, Mapping
from typing import Any

from ._codec import Payload, decode_payload, encode_payload
from ._connector import Connector
from ._constraints_index import (
    MAX_INDEXED_TOPICS,
    Entries,
    IndexSnapshot,
    constraints_index_topic,
    encode_constraints_index,
    read_index,
)
from ._errors import ConnectorError
from ._index_shards import (
    IndexRecord,
    Records,
    constraints_shard_topic,
    encode_index_shard,
    merge_records,
    prune_records,
    shard_of,
)
from ._topics import scope_from_path

__all__ = ["INDEX_ATTEMPTS", "SETTLE", "IndexNotHeldError", "update_constraints_index"]

_log = logging.getLogger("cascade.interfaces.constraints_index")

SETTLE = 1.0
"""Seconds a writer gives concurrent writers of its shard to land before it checks its change;
also the longest a writer may take from its read to the broker's acknowledgement of its write
without warning that it may have written over a change another writer confirmed."""

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
    path, _, kind = relative.rpartition("/")
    if path and kind in ("pause", "concurrency", "rate_limit"):
        return f"the clear of {kind} on {scope_from_path(path)} ({relative})"
    return f"the clear of {scope_from_path(relative)} ({relative})"


def _stamp(held: IndexRecord | None, now: float) -> float:
    """A change's time: now, or just above the newest entry seen for its topic."""
    if held is None or held.t < now:
        return now
    return held.t + max(abs(held.t) * 1e-15, 1e-6)


async def update_constraints_index(
    connector: Connector,
    *,
    put: Mapping[str, Payload] | None = None,
    remove: Collection[str] = (),
    timeout: float,
    settle: float | None = None,
) -> bool:
    """Put the constraints ``put`` (topic → payload) in the index and take the topics
    ``remove`` out of it, on a broker that needs an index.

    For writers, after their constraints are published (``put``) or cleared
    (``remove``). Where the broker sends retained messages to wildcard
    subscriptions, does nothing but the one read that tells which broker it is
    (when the connector does not know yet). ``settle`` is :data:`SETTLE` unless
    given. Returns whether the index was written. Raises :class:`IndexNotHeldError`
    when the change is still missing after :data:`INDEX_ATTEMPTS` writes, and
    :class:`ValueError` when a shard would hold more than :data:`MAX_INDEXED_TOPICS`
    constraints (nothing is written).
    """
    prefix = connector.topic_prefix
    settle = SETTLE if settle is None else settle
    changes: dict[str, dict[str, Any] | None] = dict.fromkeys(remove)
    changes.update({t: decode_payload(encode_payload(p)) for t, p in (put or {}).items()})
    if not changes:
        return False
    if connector.capabilities.retained_to_wildcards is None:
        await read_index(connector, ())  # its first subscription tells the connector
    if connector.capabilities.retained_to_wildcards is not False:
        return False
    shards = sorted({shard_of(topic, prefix) for topic in changes})
    read_at = time.monotonic()
    snapshot = await read_index(connector, shards)
    now, merged = time.time(), snapshot.merged()
    mine = {t: IndexRecord(_stamp(merged.get(t), now), p) for t, p in changes.items()}
    for attempt in range(1, INDEX_ATTEMPTS + 1):
        acked = await _write(connector, snapshot, mine, timeout)
        if acked - read_at > settle:
            _log.warning(
                "this writer took %.1f s from reading the constraints index to the broker's "
                "acknowledgement of its write, more than %g s: it may have written over a change "
                "another writer made meanwhile on %s (check with cascade status)",
                acked - read_at,
                settle,
                ", ".join(constraints_shard_topic(prefix, shard) for shard in shards),
            )
        await asyncio.sleep(max(0.0, acked + settle - time.monotonic()))
        snapshot = await read_index(connector, shards)
        merged = snapshot.merged()
        missing = [t for t, r in mine.items() if t not in merged or r.newer_than(merged[t])]
        if not missing:
            return True
        if attempt < INDEX_ATTEMPTS:
            await asyncio.sleep(random.uniform(0.0, settle / 2))
            read_at = time.monotonic()
            snapshot = await read_index(connector, shards)
    what = [_describe(t, mine[t].payload, prefix) for t in missing]
    raise IndexNotHeldError(missing, what, INDEX_ATTEMPTS)


async def _write(
    connector: Connector, snapshot: IndexSnapshot, mine: Mapping[str, IndexRecord], timeout: float
) -> float:
    """Write the shards of ``mine``, each as read plus ``mine``, and the record of earlier
    versions; returns when the broker acknowledged them (``time.monotonic()``)."""
    prefix = connector.topic_prefix
    now = time.time()
    legacy = dict(snapshot.legacy)
    writes: list[tuple[str, bytes]] = []
    for shard, records in snapshot.shards.items():
        ours = {t: r for t, r in mine.items() if shard_of(t, prefix) == shard}
        updated = prune_records(merge_records(records, ours), now, keep=legacy)
        if sum(r.payload is not None for r in updated.values()) > MAX_INDEXED_TOPICS:
            raise ValueError(
                f"the constraints index would hold more than {MAX_INDEXED_TOPICS} constraints "
                "in one shard: clear constraints (cascade resume) first"
            )
        writes.append((constraints_shard_topic(prefix, shard), encode_index_shard(updated, prefix)))
        _mirror(legacy, updated)
    older = encode_constraints_index(legacy, prefix) if legacy else b""
    for topic, payload in [*writes, (constraints_index_topic(prefix), older)]:
        await connector.publish(topic, payload, qos=1, retain=True)
    await connector.flush(timeout)
    return time.monotonic()


def _mirror(legacy: Entries, records: Records) -> None:
    """Bring the record of earlier versions in line with one shard's entries."""
    for topic, record in records.items():
        if record.payload is None:
            legacy.pop(topic, None)
        else:
            legacy[topic] = record.payload
