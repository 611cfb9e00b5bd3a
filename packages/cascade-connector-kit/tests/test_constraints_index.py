"""The constraints index as readers read it, on brokers that send retained messages only to
exact subscriptions (the in-memory broker with ``retained_to_wildcards=False``): its shards,
the record earlier versions keep, and the global scope's own topics."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest

from cascade.connector_kit.constraints_index import (
    MAX_INDEX_BYTES,
    MAX_INDEXED_TOPICS,
    PRUNE_AFTER,
    IndexRecord,
    constraints_index_topic,
    constraints_shard_topic,
    decode_constraints_index,
    decode_index_shard,
    encode_constraints_index,
    encode_index_shard,
    merge_records,
    prune_records,
    read_indexed_constraints,
    shard_of,
)
from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.interfaces import (
    Constraint,
    ConstraintTopicError,
    InvalidMessageError,
    Message,
    constraint_from_topic,
    constraint_topic,
    decode_constraint,
    encode_payload,
)

INDEX = constraints_index_topic("cascade")
PAUSE_API = constraint_topic("task:api_*", "pause")
LIMIT_DB = constraint_topic("task:db", "concurrency")


@pytest.fixture
async def writer() -> AsyncIterator[InMemoryConnector]:
    connector = InMemoryConnector(InMemoryBroker(retained_to_wildcards=False), presence=False)
    await connector.connect()
    yield connector
    await connector.disconnect()


PAUSE = Constraint.pause("task:api_*")
LIMIT = Constraint.concurrency("task:db", 2)


def plain(constraint: Constraint) -> dict[str, Any]:
    return json.loads(encode_payload(constraint))  # type: ignore[no-any-return]


def test_earlier_versions_record_holds_each_constraint_by_relative_topic_and_round_trips() -> None:
    raw = encode_constraints_index({PAUSE_API: {"b": 1}, LIMIT_DB: {"a": 2}}, "cascade")
    assert raw == (
        b'{"constraints":{"task/api_%2A/pause":{"b":1},"task/db/concurrency":{"a":2}},"v":1}'
    )
    assert decode_constraints_index(raw, "cascade") == {PAUSE_API: {"b": 1}, LIMIT_DB: {"a": 2}}
    assert list(decode_constraints_index(raw, "other")) == [
        "other/constraints/task/api_%2A/pause",
        "other/constraints/task/db/concurrency",
    ]
    assert decode_constraints_index(b"", "cascade") == {}


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"not json", "not valid JSON"),
        (b"[]", "Expected `object`"),
        (b'{"constraints": ["a"]}', "Expected `object`"),
        (b'{"constraints": {"a": 1}}', "Expected `object`"),
        (b'{"constraints": {"a/+/b": {}}}', "$.constraints['a/+/b']"),
        (b'{"constraints": {"a": {}, "b/#": {}}}', "$.constraints['b/#']"),
        (
            b'{"constraints": {'
            + b",".join(b'"t%d": {}' % i for i in range(MAX_INDEXED_TOPICS + 1))
            + b"}}",
            "at most",
        ),
        (b" " * (MAX_INDEX_BYTES + 1), "bytes; at most"),
    ],
)
def test_anything_else_is_rejected_with_where(raw: bytes, reason: str) -> None:
    with pytest.raises(InvalidMessageError) as caught:
        decode_constraints_index(raw, "cascade")
    assert reason in f"{caught.value} {caught.value.path}"


def test_a_shard_holds_each_entry_with_its_time_sorted_and_round_trips() -> None:
    records = {LIMIT_DB: IndexRecord(2.5, {"a": 2}), PAUSE_API: IndexRecord(1.0, None)}
    raw = encode_index_shard(records, "cascade")
    assert raw == (
        b'{"entries":{"task/api_%2A/pause":{"t":1.0,"c":null},'
        b'"task/db/concurrency":{"t":2.5,"c":{"a":2}}},"v":2}'
    )
    assert decode_index_shard(raw, "cascade") == records
    assert encode_index_shard({}, "cascade") == b""
    assert decode_index_shard(b"", "cascade") == {}


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"[]", "Expected `object`"),
        (b'{"entries": {"a": {"c": {}}}}', "missing required field `t`"),
        (b'{"entries": {"a": {"t": "1"}}}', "Expected `float`"),
        (b'{"entries": {"a": {"t": 1e999}}}', "out of range"),
        (b'{"entries": {"a/+": {"t": 1}}}', "$.entries['a/+']"),
        (b" " * (MAX_INDEX_BYTES + 1), "bytes; at most"),
    ],
)
def test_a_shard_that_is_not_one_is_rejected_with_where(raw: bytes, reason: str) -> None:
    with pytest.raises(InvalidMessageError) as caught:
        decode_index_shard(raw, "cascade")
    assert reason in f"{caught.value} {caught.value.path}"


def test_shards_are_a_fixed_set_picked_by_a_hash_of_the_topic() -> None:
    assert constraints_shard_topic("site/cascade", 15) == "site/cascade/index/constraints/15"
    with pytest.raises(ValueError, match="0 to 15"):
        constraints_shard_topic("cascade", 16)
    assert shard_of(PAUSE_API, "cascade") == shard_of(
        PAUSE_API.replace("cascade/", "other/", 1), "other"
    )
    spread = {shard_of(constraint_topic(f"task:t{i}", "pause"), "cascade") for i in range(200)}
    assert spread == set(range(16))


def test_the_newest_entry_wins_and_a_clear_wins_a_tie() -> None:
    old, new = IndexRecord(1.0, {"limit": 1}), IndexRecord(2.0, {"limit": 2})
    assert merge_records({LIMIT_DB: new}, {LIMIT_DB: old}) == {LIMIT_DB: new}
    assert merge_records({LIMIT_DB: old}, {LIMIT_DB: new}) == {LIMIT_DB: new}
    cleared = IndexRecord(2.0, None)
    assert merge_records({LIMIT_DB: new}, {LIMIT_DB: cleared}) == {LIMIT_DB: cleared}
    assert merge_records({LIMIT_DB: cleared}, {LIMIT_DB: new}) == {LIMIT_DB: cleared}


def test_writers_turn_expired_entries_into_clears_and_drop_old_clears() -> None:
    now = 10_000.0
    records = {
        PAUSE_API: IndexRecord(now - 5, {"expires_at": now - 1}),
        LIMIT_DB: IndexRecord(now - PRUNE_AFTER - 1, None),
        "cascade/constraints/task/kept/pause": IndexRecord(now - PRUNE_AFTER - 1, None),
        "cascade/constraints/task/live/pause": IndexRecord(now - 5, {"expires_at": now + 1}),
    }
    pruned = prune_records(records, now, keep=["cascade/constraints/task/kept/pause"])
    assert pruned == {
        PAUSE_API: IndexRecord(now - 5, None),
        "cascade/constraints/task/kept/pause": records["cascade/constraints/task/kept/pause"],
        "cascade/constraints/task/live/pause": records["cascade/constraints/task/live/pause"],
    }


def shard_of_topic(topic: str) -> str:
    return constraints_shard_topic("cascade", shard_of(topic, "cascade"))


async def retain_shard(connector: InMemoryConnector, topic: str, record: IndexRecord) -> None:
    raw = encode_index_shard({topic: record}, "cascade")
    await connector.publish(shard_of_topic(topic), raw, 1, True)


async def read(connector: InMemoryConnector) -> dict[str, Constraint]:
    got: list[Message] = []
    async with InMemoryConnector(connector.broker, presence=False) as reader:
        topics = await read_indexed_constraints(reader, got.append)
    assert sorted(topics) == sorted(m.topic for m in got)
    assert len(set(topics)) == len(topics), "each constraint is handed over once"
    assert all(m.retain for m in got)
    return {m.topic: decode_constraint(m.raw) for m in got}


async def test_readers_read_each_listed_and_global_topic_once(
    writer: InMemoryConnector,
) -> None:
    """The index is a directory: each topic it lists is read exactly, and what that topic
    retains is handed over (never the index's copy); the global scope's topics are read
    whatever the index says; a topic nobody listed is not read."""
    pause_global = constraint_topic("global", "pause")
    unlisted = constraint_topic("task:other", "pause")
    await writer.publish(pause_global, Constraint.pause("global"), 1, True)
    await writer.publish(unlisted, Constraint.pause("task:other"), 1, True)
    await writer.publish(PAUSE_API, PAUSE, 1, True)
    await retain_shard(writer, PAUSE_API, IndexRecord(1.0, plain(PAUSE)))
    stale_copy = Constraint.pause("global", expires_at=1.0)
    await retain_shard(writer, pause_global, IndexRecord(1.0, plain(stale_copy)))
    assert await read(writer) == {PAUSE_API: PAUSE, pause_global: Constraint.pause("global")}


async def test_an_index_entry_is_a_hint_never_a_constraint(writer: InMemoryConnector) -> None:
    """Issue 45: whoever writes a shard cannot set a constraint through it. A listed topic that
    retains nothing gives nothing (whatever the entry's copy says), and what a listed topic
    retains is handed over on its own topic, where a reader refuses another scope's."""
    hidden = constraint_topic("task:etl_*", "pause")
    await retain_shard(
        writer,
        constraint_topic("task:x", "pause"),
        IndexRecord(1.0, plain(Constraint.pause("global"))),
    )
    await writer.publish(hidden, Constraint.pause("global"), 1, True)  # on a topic an ACL grants
    await retain_shard(writer, hidden, IndexRecord(1.0, plain(Constraint.pause("global"))))
    got: list[Message] = []
    async with InMemoryConnector(writer.broker, presence=False) as reader:
        await read_indexed_constraints(reader, got.append)
    assert [m.topic for m in got] == [hidden]
    with pytest.raises(ConstraintTopicError):
        constraint_from_topic(got[0].topic, got[0].raw)


async def test_readers_take_earlier_versions_record_where_no_shard_names_the_topic(
    writer: InMemoryConnector,
) -> None:
    """What earlier versions listed is read; a shard's entry (a set or a clear) wins over it."""
    cleared = constraint_topic("task:cleared", "pause")
    legacy = {
        PAUSE_API: plain(PAUSE),
        LIMIT_DB: plain(LIMIT),
        cleared: plain(Constraint.pause("task:cleared")),
    }
    await writer.publish(INDEX, encode_constraints_index(legacy, "cascade"), 1, True)
    wider = Constraint.concurrency("task:db", 5)
    for topic, constraint in (
        (PAUSE_API, PAUSE),
        (LIMIT_DB, wider),
        (cleared, Constraint.pause("task:cleared")),
    ):
        await writer.publish(topic, constraint, 1, True)
    await retain_shard(writer, LIMIT_DB, IndexRecord(1.0, plain(wider)))
    await retain_shard(writer, cleared, IndexRecord(1.0, None))
    assert await read(writer) == {PAUSE_API: PAUSE, LIMIT_DB: wider}


async def test_a_reader_skips_an_index_it_cannot_read_and_says_so(
    writer: InMemoryConnector, caplog: pytest.LogCaptureFixture
) -> None:
    await writer.publish(INDEX, b'{"constraints": {"a/#": {}}}', 1, True)
    await writer.publish(constraints_shard_topic("cascade", 3), b'{"entries": 1}', 1, True)
    await writer.publish(PAUSE_API, PAUSE, 1, True)
    await retain_shard(writer, PAUSE_API, IndexRecord(1.0, plain(PAUSE)))
    await writer.publish(constraint_topic("global", "pause"), Constraint.pause("global"), 1, True)
    with caplog.at_level(logging.WARNING, "cascade.connector_kit"):
        got = await read(writer)
    assert got == {
        PAUSE_API: PAUSE,
        constraint_topic("global", "pause"): Constraint.pause("global"),
    }
    assert caplog.text.count("ignored the constraints index") == 2
