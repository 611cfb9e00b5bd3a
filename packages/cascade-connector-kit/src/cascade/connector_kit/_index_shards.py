"""The constraints index's shards: a fixed set of retained records, merged last-writer-wins.

MQTT cannot change a retained message atomically, so one record kept by
read-modify-write loses the changes of writers that read it at the same
moment. The index is therefore :data:`INDEX_SHARDS` records: a constraint
topic lives in the shard :func:`shard_of` names (a hash of its topic), so
writers of different shards never overwrite each other; each entry carries
the time of its change, a clear is kept as a *tombstone* (no payload) for
:data:`PRUNE_AFTER` seconds, and a reader takes, per topic, the newest entry
it finds. What writers do to keep their entries from being overwritten by a
concurrent writer of the same shard is in ``_index_writer.py``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

import msgspec

from cascade.interfaces import (
    InvalidMessageError,
    InvalidTopicError,
    encode_payload,
    validate_topic,
)

from ._records import decode_record

__all__ = [
    "INDEX_SHARDS",
    "PRUNE_AFTER",
    "IndexRecord",
    "Records",
    "constraints_shard_topic",
    "decode_index_shard",
    "encode_index_shard",
    "merge_records",
    "prune_records",
    "shard_of",
]

INDEX_SHARDS = 16
"""How many shard records the index has (``{prefix}/index/constraints/0`` .. ``/15``)."""

PRUNE_AFTER = 600.0
"""Seconds a tombstone (a clear) or an expired constraint is kept before writers drop it."""

MAX_SHARD_ENTRIES = 10_000
"""The most entries (tombstones included) a reader takes from one shard."""

MAX_SHARD_BYTES = 16 * 1024 * 1024
"""The largest shard record a reader takes."""


class IndexRecord(NamedTuple):
    """One topic's entry: the epoch time of its change and the payload set (``None``: cleared)."""

    t: float
    payload: dict[str, Any] | None

    def newer_than(self, other: IndexRecord) -> bool:
        """Last writer wins; at one time a clear wins, then the larger payload (any order that
        every reader agrees on)."""
        return _order(self) > _order(other)


Records = dict[str, IndexRecord]
"""Entries by full constraint topic."""


def _order(record: IndexRecord) -> tuple[float, bool, bytes]:
    payload = record.payload
    return (record.t, payload is None, b"" if payload is None else encode_payload(payload))


class _Entry(msgspec.Struct, forbid_unknown_fields=False):
    t: float
    c: dict[str, Any] | None = None


class _Shard(msgspec.Struct, forbid_unknown_fields=False):
    entries: dict[str, _Entry]
    v: int = 2


_encoder = msgspec.json.Encoder()


def constraints_shard_topic(prefix: str, shard: int) -> str:
    """The retained topic of one shard: ``{prefix}/index/constraints/{shard}``."""
    if not 0 <= shard < INDEX_SHARDS:
        raise ValueError(f"shard must be 0 to {INDEX_SHARDS - 1}, not {shard}")
    return f"{prefix}/index/constraints/{shard}"


def shard_of(topic: str, prefix: str) -> int:
    """The shard of a constraint topic: the first four bytes of the SHA-256 of its UTF-8 path
    below ``{prefix}/constraints/``, as a big-endian number, modulo :data:`INDEX_SHARDS`
    (a CRC's low bits take only some of the values over topics that differ in a digit)."""
    relative = topic.removeprefix(f"{prefix}/constraints/").encode("utf-8", "surrogatepass")
    return int.from_bytes(hashlib.sha256(relative).digest()[:4], "big") % INDEX_SHARDS


def encode_index_shard(records: Mapping[str, IndexRecord], prefix: str) -> bytes:
    """A shard's payload: ``{"entries": {topic: {"c": payload or null, "t": time}}, "v": 2}``,
    each topic relative to ``{prefix}/constraints/``, sorted; empty when it holds nothing."""
    if not records:
        return b""
    base = f"{prefix}/constraints/"
    entries = {
        topic.removeprefix(base): _Entry(t=record.t, c=record.payload)
        for topic, record in sorted(records.items())
    }
    return _encoder.encode(_Shard(entries=entries))


def decode_index_shard(raw: bytes, prefix: str) -> Records:
    """A shard's entries by full topic; ``{}`` for an empty payload.

    Raises :class:`InvalidMessageError` for anything else: over
    :data:`MAX_SHARD_BYTES`, not the object above, more than
    :data:`MAX_SHARD_ENTRIES` entries, a time that is not a finite number (JSON has
    no other), or a topic that is not a valid topic name.
    """
    if not raw:
        return {}
    if len(raw) > MAX_SHARD_BYTES:
        raise InvalidMessageError(f"the shard is {len(raw)} bytes; at most {MAX_SHARD_BYTES}")
    shard = decode_record(raw, _Shard)
    if len(shard.entries) > MAX_SHARD_ENTRIES:
        raise InvalidMessageError(
            f"the shard holds {len(shard.entries)} entries; at most {MAX_SHARD_ENTRIES}",
            "$.entries",
        )
    records: Records = {}
    for relative, entry in shard.entries.items():
        where = f"$.entries[{relative!r}]"
        topic = f"{prefix}/constraints/{relative}"
        try:
            validate_topic(topic)
        except InvalidTopicError as exc:
            raise InvalidMessageError(str(exc), where) from None
        records[topic] = IndexRecord(entry.t, entry.c)
    return records


def merge_records(*shards: Mapping[str, IndexRecord]) -> Records:
    """Per topic, the newest entry of ``shards`` (see :meth:`IndexRecord.newer_than`)."""
    merged: Records = {}
    for records in shards:
        for topic, record in records.items():
            held = merged.get(topic)
            if held is None or record.newer_than(held):
                merged[topic] = record
    return merged


def prune_records(records: Mapping[str, IndexRecord], now: float, keep: Iterable[str]) -> Records:
    """``records`` as a writer writes them back: an expired constraint becomes a tombstone of
    its time, and a tombstone older than :data:`PRUNE_AFTER` is dropped unless its topic is
    in ``keep`` (still held by the record of earlier versions, which it must keep hiding)."""
    kept = set(keep)
    pruned: Records = {}
    for topic, record in records.items():
        payload = record.payload
        expires = payload.get("expires_at") if payload is not None else None
        if isinstance(expires, (int, float)) and not isinstance(expires, bool) and expires < now:
            record = IndexRecord(record.t, None)
        if record.payload is None and record.t < now - PRUNE_AFTER and topic not in kept:
            continue
        pruned[topic] = record
    return pruned
