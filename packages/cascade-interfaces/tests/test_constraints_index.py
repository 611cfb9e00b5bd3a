"""The constraints index, kept by writers for brokers that send retained messages only to
exact subscriptions (the in-memory broker with ``retained_to_wildcards=False``)."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest

from cascade.interfaces import (
    Constraint,
    InvalidMessageError,
    Message,
    Payload,
    constraint_topic,
    constraints_index_topic,
    decode_constraint,
    read_indexed_constraints,
    update_constraints_index,
)
from cascade.interfaces._constraints_index import (
    INDEX_ATTEMPTS,
    MAX_INDEX_BYTES,
    MAX_INDEXED_TOPICS,
    Entries,
    decode_constraints_index,
    encode_constraints_index,
)
from cascade.interfaces.connector_kit import encode_payload
from cascade.interfaces.testing import InMemoryBroker, InMemoryConnector

INDEX = constraints_index_topic("cascade")
PAUSE_API = constraint_topic("task:api_*", "pause")
LIMIT_DB = constraint_topic("task:db", "concurrency")


@pytest.fixture
async def writer() -> AsyncIterator[InMemoryConnector]:
    connector = InMemoryConnector(InMemoryBroker(retained_to_wildcards=False), presence=False)
    await connector.connect()
    yield connector
    await connector.disconnect()


def held(connector: InMemoryConnector) -> Entries:
    return decode_constraints_index(connector.broker.retained(INDEX) or b"", "cascade")


PAUSE = Constraint.pause("task:api_*")
LIMIT = Constraint.concurrency("task:db", 2)


def plain(constraint: Constraint) -> dict[str, Any]:
    return json.loads(encode_payload(constraint))  # type: ignore[no-any-return]


def test_the_payload_holds_each_constraint_by_relative_topic_sorted_and_round_trips() -> None:
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


async def test_writers_put_and_remove_their_constraints(writer: InMemoryConnector) -> None:
    assert await update_constraints_index(writer, put={PAUSE_API: PAUSE}, timeout=1)
    assert await update_constraints_index(writer, put={LIMIT_DB: LIMIT}, timeout=1)
    assert held(writer) == {PAUSE_API: plain(PAUSE), LIMIT_DB: plain(LIMIT)}
    assert not await update_constraints_index(writer, put={LIMIT_DB: LIMIT}, timeout=1)  # same
    wider = Constraint.concurrency("task:db", 5)
    assert await update_constraints_index(writer, put={LIMIT_DB: wider}, timeout=1)  # replaced
    assert held(writer)[LIMIT_DB] == plain(wider)
    assert await update_constraints_index(writer, remove=[PAUSE_API, LIMIT_DB], timeout=1)
    assert writer.broker.retained(INDEX) is None  # the last one out clears the topic


async def test_nothing_is_written_where_retained_messages_reach_wildcards() -> None:
    async with InMemoryConnector(presence=False) as writer:
        assert not await update_constraints_index(writer, put={PAUSE_API: PAUSE}, timeout=1)
        assert writer.broker.retained(INDEX) is None


async def test_an_index_beyond_the_cap_is_refused_and_nothing_written(
    writer: InMemoryConnector,
) -> None:
    many = {constraint_topic(f"task:t{i}", "pause"): PAUSE for i in range(MAX_INDEXED_TOPICS + 1)}
    with pytest.raises(ValueError, match="more than 10000"):
        await update_constraints_index(writer, put=many, timeout=1)
    assert writer.broker.retained(INDEX) is None


class RacedWriter(InMemoryConnector):
    """A writer whose every index write is followed at once by another writer's, made from
    what that other writer read before: the other's entry only (``times`` times)."""

    def __init__(self, broker: InMemoryBroker, other: Entries, times: int) -> None:
        super().__init__(broker, presence=False)
        self.other = other
        self.times = times

    async def publish(
        self, topic: str, payload: Payload, qos: int = 0, retain: bool = False
    ) -> None:
        await super().publish(topic, payload, qos, retain)
        if topic == INDEX and self.times:
            self.times -= 1
            await super().publish(topic, encode_constraints_index(self.other, "cascade"), 1, True)


async def test_a_concurrent_writer_that_hides_this_change_is_repaired() -> None:
    """The other writer's entry and this one's are both held in the end."""
    other = {LIMIT_DB: plain(LIMIT)}
    writer = RacedWriter(InMemoryBroker(retained_to_wildcards=False), other, times=1)
    async with writer:
        assert await update_constraints_index(writer, put={PAUSE_API: PAUSE}, timeout=1)
        assert held(writer) == {PAUSE_API: plain(PAUSE), LIMIT_DB: plain(LIMIT)}


async def test_a_writer_gives_up_after_its_attempts_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    broker = InMemoryBroker(retained_to_wildcards=False)
    other = {LIMIT_DB: plain(LIMIT)}
    async with RacedWriter(broker, other, times=INDEX_ATTEMPTS) as writer:
        with caplog.at_level(logging.WARNING, "cascade.interfaces"):
            assert await update_constraints_index(writer, put={PAUSE_API: PAUSE}, timeout=1)
    assert held(writer) == other
    assert f"each time this one wrote it ({INDEX_ATTEMPTS} times)" in caplog.text
    assert PAUSE_API in caplog.text


async def test_readers_get_each_indexed_and_global_constraint_once(
    writer: InMemoryConnector,
) -> None:
    """The index's constraints, and the global scope's topics read exactly (which win over
    the index's copies); a topic nobody indexed is not read."""
    pause_global = constraint_topic("global", "pause")
    unlisted = constraint_topic("task:other", "pause")
    await writer.publish(pause_global, Constraint.pause("global"), 1, True)
    await writer.publish(unlisted, Constraint.pause("task:other"), 1, True)
    stale_copy = Constraint.pause("global", expires_at=1.0)
    await update_constraints_index(
        writer, put={PAUSE_API: PAUSE, pause_global: stale_copy}, timeout=1
    )
    got: list[Message] = []
    async with InMemoryConnector(writer.broker, presence=False) as reader:
        read = await read_indexed_constraints(reader, got.append)
    assert sorted(read) == sorted([PAUSE_API, pause_global])
    assert unlisted not in read
    assert sorted(m.topic for m in got) == sorted([PAUSE_API, pause_global])
    assert all(m.retain for m in got)
    by_topic = {m.topic: decode_constraint(m.raw) for m in got}
    assert by_topic == {PAUSE_API: PAUSE, pause_global: Constraint.pause("global")}


async def test_a_reader_skips_an_index_it_cannot_read_and_says_so(
    writer: InMemoryConnector, caplog: pytest.LogCaptureFixture
) -> None:
    await writer.publish(INDEX, b'{"constraints": {"a/#": {}}}', 1, True)
    await writer.publish(constraint_topic("global", "pause"), Constraint.pause("global"), 1, True)
    got: list[Message] = []
    with caplog.at_level(logging.WARNING, "cascade.interfaces"):
        await read_indexed_constraints(writer, got.append)
    assert [m.topic for m in got] == [constraint_topic("global", "pause")]
    assert "ignored the constraints index" in caplog.text
