"""The constraints index, kept by writers for brokers that send retained messages only to
exact subscriptions (the in-memory broker with ``retained_to_wildcards=False``)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest

from cascade.interfaces import (
    Constraint,
    InvalidMessageError,
    Message,
    Payload,
    constraint_topic,
    constraints_index_topic,
    read_indexed_constraints,
    update_constraints_index,
)
from cascade.interfaces._constraints_index import (
    INDEX_ATTEMPTS,
    MAX_INDEXED_TOPICS,
    decode_constraints_index,
    encode_constraints_index,
)
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


def listed(connector: InMemoryConnector) -> list[str]:
    return decode_constraints_index(connector.broker.retained(INDEX) or b"", "cascade")


def test_the_payload_lists_topics_relative_to_the_prefix_sorted_and_round_trips() -> None:
    raw = encode_constraints_index([PAUSE_API, LIMIT_DB, PAUSE_API], "cascade")
    assert raw == b'{"topics":["task/api_%2A/pause","task/db/concurrency"],"v":1}'
    assert decode_constraints_index(raw, "cascade") == [PAUSE_API, LIMIT_DB]
    assert decode_constraints_index(raw, "other") == [
        "other/constraints/task/api_%2A/pause",
        "other/constraints/task/db/concurrency",
    ]
    assert decode_constraints_index(b"", "cascade") == []


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"not json", "not valid JSON"),
        (b"[]", "Expected `object`"),
        (b'{"topics": "a"}', "Expected `array`"),
        (b'{"topics": ["a/+/b"]}', "$.topics[0]"),
        (b'{"topics": ["a", "b/#"]}', "$.topics[1]"),
        (b'{"topics": [' + b",".join([b'"t"'] * (MAX_INDEXED_TOPICS + 1)) + b"]}", "at most"),
    ],
)
def test_anything_else_is_rejected_with_where(raw: bytes, reason: str) -> None:
    with pytest.raises(InvalidMessageError) as caught:
        decode_constraints_index(raw, "cascade")
    assert reason in f"{caught.value} {caught.value.path}"


async def test_writers_add_and_remove_their_topics(writer: InMemoryConnector) -> None:
    assert await update_constraints_index(writer, add=[PAUSE_API], timeout=1)
    assert await update_constraints_index(writer, add=[LIMIT_DB], timeout=1)
    assert listed(writer) == [PAUSE_API, LIMIT_DB]
    assert not await update_constraints_index(writer, add=[LIMIT_DB], timeout=1)  # no change
    assert await update_constraints_index(writer, remove=[PAUSE_API, LIMIT_DB], timeout=1)
    assert writer.broker.retained(INDEX) is None  # the last one out clears the topic


async def test_nothing_is_written_where_retained_messages_reach_wildcards() -> None:
    async with InMemoryConnector(presence=False) as writer:
        assert not await update_constraints_index(writer, add=[PAUSE_API], timeout=1)
        assert writer.broker.retained(INDEX) is None


async def test_an_index_beyond_the_cap_is_refused_and_nothing_written(
    writer: InMemoryConnector,
) -> None:
    many = [constraint_topic(f"task:t{i}", "pause") for i in range(MAX_INDEXED_TOPICS + 1)]
    with pytest.raises(ValueError, match="more than 10000"):
        await update_constraints_index(writer, add=many, timeout=1)
    assert writer.broker.retained(INDEX) is None


class RacedWriter(InMemoryConnector):
    """A writer whose every index write is followed at once by another writer's, made from
    what that other writer read before: the other's entry only (``times`` times)."""

    def __init__(self, broker: InMemoryBroker, other: list[str], times: int) -> None:
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
    """The other writer's entry and this one's are both listed in the end."""
    writer = RacedWriter(InMemoryBroker(retained_to_wildcards=False), [LIMIT_DB], times=1)
    async with writer:
        assert await update_constraints_index(writer, add=[PAUSE_API], timeout=1)
        assert listed(writer) == [PAUSE_API, LIMIT_DB]


async def test_a_writer_gives_up_after_its_attempts_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    broker = InMemoryBroker(retained_to_wildcards=False)
    async with RacedWriter(broker, [LIMIT_DB], times=INDEX_ATTEMPTS) as writer:
        with caplog.at_level(logging.WARNING, "cascade.interfaces"):
            assert await update_constraints_index(writer, add=[PAUSE_API], timeout=1)
    assert listed(writer) == [LIMIT_DB]
    assert f"each time this one wrote it ({INDEX_ATTEMPTS} times)" in caplog.text
    assert PAUSE_API in caplog.text


async def test_readers_get_each_listed_and_global_constraint_once(
    writer: InMemoryConnector,
) -> None:
    """Retained on the index's topics and on the global scope's (listed or not); a topic
    nobody indexed is not read."""
    pause_global = constraint_topic("global", "pause")
    unlisted = constraint_topic("task:other", "pause")
    for topic, scope in ((PAUSE_API, "task:api_*"), (pause_global, "global"), (unlisted, "x")):
        await writer.publish(topic, Constraint.pause(scope if scope != "x" else "task:o"), 1, True)
    await update_constraints_index(writer, add=[PAUSE_API], timeout=1)
    got: list[Message] = []
    async with InMemoryConnector(writer.broker, presence=False) as reader:
        read = await read_indexed_constraints(reader, got.append)
        assert {PAUSE_API, pause_global} <= set(read)
        assert unlisted not in read
        assert sorted(m.topic for m in got) == sorted([PAUSE_API, pause_global])
        assert all(m.retain for m in got)


async def test_a_reader_skips_an_index_it_cannot_read_and_says_so(
    writer: InMemoryConnector, caplog: pytest.LogCaptureFixture
) -> None:
    await writer.publish(INDEX, b'{"topics": ["a/#"]}', 1, True)
    await writer.publish(constraint_topic("global", "pause"), Constraint.pause("global"), 1, True)
    got: list[Message] = []
    with caplog.at_level(logging.WARNING, "cascade.interfaces"):
        await read_indexed_constraints(writer, got.append)
    assert [m.topic for m in got] == [constraint_topic("global", "pause")]
    assert "ignored the constraints index" in caplog.text
