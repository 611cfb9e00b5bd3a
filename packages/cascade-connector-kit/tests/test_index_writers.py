"""Writers of the constraints index, alone and at once, on a broker that sends retained messages
only to exact subscriptions (the in-memory broker with ``retained_to_wildcards=False``)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from cascade.connector_kit import bounded
from cascade.connector_kit.constraints_index import (
    INDEX_ATTEMPTS,
    MAX_INDEXED_TOPICS,
    IndexNotHeldError,
    IndexRecord,
    Records,
    constraints_index_topic,
    constraints_shard_topic,
    decode_constraints_index,
    encode_constraints_index,
    encode_index_shard,
    read_index,
    shard_of,
)
from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.interfaces import Constraint, Message, Payload, constraint_topic, encode_payload

SETTLE = 0.05  # the writers' settle time in these tests (SETTLE, 1 s, in use)
LEGACY = constraints_index_topic("cascade")
# t0 and t2 share a shard, t1 has another (asserted below)
PAUSE_T0, PAUSE_T1, PAUSE_T2 = (constraint_topic(f"task:t{i}", "pause") for i in range(3))


def shard(topic: str) -> str:
    return constraints_shard_topic("cascade", shard_of(topic, "cascade"))


def test_the_topics_of_these_tests_fall_in_the_shards_they_need() -> None:
    assert shard(PAUSE_T0) == shard(PAUSE_T2) != shard(PAUSE_T1)


def plain(constraint: Constraint) -> dict[str, Any]:
    return json.loads(encode_payload(constraint))  # type: ignore[no-any-return]


def pause(topic: str) -> Constraint:
    return Constraint.pause(f"task:{topic.split('/')[-2]}")


async def held(broker: InMemoryBroker) -> dict[str, dict[str, Any]]:
    """What a reader of the index takes as in force now."""
    async with InMemoryConnector(broker, presence=False) as reader:
        return (await read_index(reader)).constraints()


async def holds(broker: InMemoryBroker, topic: str, *, held: bool = True) -> bool:
    """Whether a reader of the index now takes ``topic`` as set (or, ``held=False``, as not)."""
    async with InMemoryConnector(broker, presence=False) as reader:
        return (topic in (await read_index(reader)).constraints()) is held


@contextlib.asynccontextmanager
async def landing(
    broker: InMemoryBroker, topic: str, *, held: bool = True
) -> AsyncIterator[asyncio.Event]:
    """An event set once a write of ``topic``'s shard lands that sets it (``held=False``:
    clears it), watched from before the block's writes start."""
    landed = asyncio.Event()

    async def check(message: Message) -> None:
        if await holds(broker, topic, held=held):
            landed.set()

    async with InMemoryConnector(broker, presence=False) as watcher:
        await watcher.subscribe(shard(topic), check)
        yield landed


def legacy(broker: InMemoryBroker) -> dict[str, Any]:
    return decode_constraints_index(broker.retained(LEGACY) or b"", "cascade")


@pytest.fixture
def broker() -> InMemoryBroker:
    return InMemoryBroker(retained_to_wildcards=False)


@pytest.fixture
async def writer(broker: InMemoryBroker) -> AsyncIterator[InMemoryConnector]:
    async with InMemoryConnector(broker, presence=False) as connector:
        yield connector


async def put(connector: InMemoryConnector, topic: str) -> bool:
    change = {topic: pause(topic)}
    return await connector.index_constraints(put=change, timeout=1, settle=SETTLE)


async def clear(connector: InMemoryConnector, topic: str) -> bool:
    return await connector.index_constraints(remove=[topic], timeout=1, settle=SETTLE)


async def test_writers_set_and_clear_in_the_topics_shard_only(
    broker: InMemoryBroker, writer: InMemoryConnector
) -> None:
    """Each change goes to its topic's shard; the record of earlier versions is never written."""
    assert await put(writer, PAUSE_T0)
    assert await put(writer, PAUSE_T1)
    assert await held(broker) == {
        PAUSE_T0: plain(pause(PAUSE_T0)),
        PAUSE_T1: plain(pause(PAUSE_T1)),
    }
    assert broker.retained(shard(PAUSE_T1)) is not None
    assert await clear(writer, PAUSE_T0)
    assert await held(broker) == {PAUSE_T1: plain(pause(PAUSE_T1))}
    assert broker.retained(LEGACY) is None
    async with InMemoryConnector(broker, presence=False) as reader:
        tombstone = (await read_index(reader)).merged()[PAUSE_T0]
    assert tombstone.payload is None  # kept, so that no stale copy of the pause can undo it


async def test_nothing_is_written_where_retained_messages_reach_wildcards() -> None:
    async with InMemoryConnector(presence=False) as writer:
        assert not await put(writer, PAUSE_T0)
        assert writer.broker.retained_topics == []
        assert [m.topic for m in writer.broker.history] == []


async def test_a_shard_beyond_the_cap_is_refused_and_nothing_written(
    writer: InMemoryConnector,
) -> None:
    full = {
        constraint_topic(f"task:full{i}", "pause"): IndexRecord(1.0, plain(pause(PAUSE_T0)))
        for i in range(MAX_INDEXED_TOPICS)
    }
    await writer.publish(shard(PAUSE_T0), encode_index_shard(full, "cascade"), 1, True)
    with pytest.raises(ValueError, match="more than 10000"):
        await put(writer, PAUSE_T0)
    assert writer.broker.retained_topics == [shard(PAUSE_T0)]


class GatedWriter(InMemoryConnector):
    """A writer whose writes of the index wait for :attr:`gate` (set by the test); :attr:`ready`
    is set once it has read the index and is about to write it."""

    def __init__(self, broker: InMemoryBroker) -> None:
        super().__init__(broker, presence=False)
        self.gate = asyncio.Event()
        self.ready = asyncio.Event()
        self.writes = 0

    async def publish(
        self, topic: str, payload: Payload, qos: int = 0, retain: bool = False
    ) -> None:
        if topic.startswith("cascade/index/constraints/"):
            self.ready.set()
            await self.gate.wait()
            self.writes += 1
        await super().publish(topic, payload, qos, retain)


async def test_two_writers_that_read_a_shard_at_once_both_end_in_it(broker: InMemoryBroker) -> None:
    """Both read before either writes: the first write is overwritten by the second, which
    lacks its entry; its writer finds it missing after the settle time and writes it again."""
    first, second = GatedWriter(broker), GatedWriter(broker)
    async with first, second:
        writing = [
            asyncio.create_task(put(w, t)) for w, t in ((first, PAUSE_T0), (second, PAUSE_T2))
        ]
        await asyncio.gather(first.ready.wait(), second.ready.wait())
        first.gate.set()
        await asyncio.sleep(0)
        second.gate.set()
        assert await asyncio.gather(*writing) == [True, True]
    assert set(await held(broker)) == {PAUSE_T0, PAUSE_T2}
    # the first finds its entry overwritten; the second saw the first's write land before its
    # own: both write the merge again
    assert (first.writes, second.writes) == (2, 2)


async def test_a_stale_writer_landing_after_another_writer_wrote_does_not_erase_it(
    broker: InMemoryBroker,
) -> None:
    """The loss of issue 21: a writer that read before another's write lands after it (here
    within the settle time); the other writer's check comes after that, sees its entry
    missing and writes it again."""
    stale, fresh = GatedWriter(broker), InMemoryConnector(broker, presence=False)
    async with stale, fresh:
        late = asyncio.create_task(put(stale, PAUSE_T2))
        await stale.ready.wait()  # it has read: no entry yet
        async with landing(broker, PAUSE_T0) as written:
            landed = asyncio.create_task(put(fresh, PAUSE_T0))
            async with bounded(5):
                await written.wait()  # fresh has written, and now settles
        assert set(await held(broker)) == {PAUSE_T0}
        stale.gate.set()
        assert list(await asyncio.gather(late, landed)) == [True, True]
    assert set(await held(broker)) == {PAUSE_T0, PAUSE_T2}


async def test_a_clear_is_not_undone_by_a_stale_copy_of_what_it_cleared(
    broker: InMemoryBroker, writer: InMemoryConnector
) -> None:
    assert await put(writer, PAUSE_T0)
    stale = GatedWriter(broker)
    async with stale:
        late = asyncio.create_task(put(stale, PAUSE_T2))
        await stale.ready.wait()  # it read PAUSE_T0 as set
        async with landing(broker, PAUSE_T0, held=False) as written:
            clearing = asyncio.create_task(clear(writer, PAUSE_T0))
            async with bounded(5):
                await written.wait()  # the clear has been written, and now settles
        stale.gate.set()  # writes PAUSE_T0 back as it read it, with its old time
        assert list(await asyncio.gather(late, clearing)) == [True, True]
    assert set(await held(broker)) == {PAUSE_T2}


async def test_many_writers_at_once_all_end_in_the_index(broker: InMemoryBroker) -> None:
    topics = [constraint_topic(f"task:many{i}", "pause") for i in range(40)]
    writers = [InMemoryConnector(broker, presence=False) for _ in topics]
    for connector in writers:
        await connector.connect()
    try:
        done = await asyncio.gather(*(put(w, t) for w, t in zip(writers, topics, strict=True)))
    finally:
        for connector in writers:
            await connector.disconnect()
    assert all(done)
    assert set(await held(broker)) == set(topics)


class OverwrittenWriter(InMemoryConnector):
    """Each index write it makes is followed at once by another writer's stale copy of its shard
    (``times`` times): what that writer read before, with only its own entry."""

    def __init__(self, broker: InMemoryBroker, other: Records, times: int) -> None:
        super().__init__(broker, presence=False)
        self.other = other
        self.times = times

    async def publish(
        self, topic: str, payload: Payload, qos: int = 0, retain: bool = False
    ) -> None:
        await super().publish(topic, payload, qos, retain)
        if topic == shard(PAUSE_T0) and self.times:
            self.times -= 1
            stale = encode_index_shard(self.other, "cascade")
            await super().publish(topic, stale, 1, True)


async def test_a_writer_overwritten_each_time_gives_up_naming_what_did_not_take(
    broker: InMemoryBroker,
) -> None:
    other = {PAUSE_T2: IndexRecord(1.0, plain(pause(PAUSE_T2)))}
    async with OverwrittenWriter(broker, other, times=INDEX_ATTEMPTS) as writer:
        with pytest.raises(IndexNotHeldError) as caught:
            await put(writer, PAUSE_T0)
    assert caught.value.topics == [PAUSE_T0]
    assert "did not keep pause on task:t0 (task/t0/pause)" in str(caught.value)
    async with InMemoryConnector(broker, presence=False) as reader:
        assert set((await read_index(reader)).merged()) == {PAUSE_T2}


async def test_a_writer_overwritten_fewer_times_than_its_attempts_succeeds(
    broker: InMemoryBroker,
) -> None:
    other = {PAUSE_T2: IndexRecord(1.0, plain(pause(PAUSE_T2)))}
    async with OverwrittenWriter(broker, other, times=INDEX_ATTEMPTS - 1) as writer:
        assert await put(writer, PAUSE_T0)
    assert set(await held(broker)) == {PAUSE_T0, PAUSE_T2}


async def test_a_failed_clear_names_the_scope_it_did_not_clear(broker: InMemoryBroker) -> None:
    other = {PAUSE_T0: IndexRecord(1.0, plain(pause(PAUSE_T0)))}
    async with OverwrittenWriter(broker, other, times=INDEX_ATTEMPTS) as writer:
        with pytest.raises(IndexNotHeldError, match=r"the clear of pause on task:t0 \("):
            await clear(writer, PAUSE_T0)


async def test_a_writer_landing_after_another_one_returned_repairs_what_it_overwrote(
    broker: InMemoryBroker,
) -> None:
    """However late a writer that read before another's write lands, it saw that write land
    (it watches its shards from its read on) and writes the merge again."""
    stale, fresh = GatedWriter(broker), InMemoryConnector(broker, presence=False)
    async with stale, fresh:
        late = asyncio.create_task(put(stale, PAUSE_T2))
        await stale.ready.wait()  # it has read: no entry yet
        assert await put(fresh, PAUSE_T0)  # written, checked, reported
        assert set(await held(broker)) == {PAUSE_T0}
        stale.gate.set()  # lands with its stale copy of the shard, without PAUSE_T0
        assert await late
    assert set(await held(broker)) == {PAUSE_T0, PAUSE_T2}
    assert stale.writes == 2


async def test_earlier_versions_constraints_are_kept_and_hidden_once_cleared(
    broker: InMemoryBroker, writer: InMemoryConnector
) -> None:
    """What an earlier version's writer set is read, left as it was (never written again), and
    hidden by a new writer's resume: a tombstone in the topic's shard."""
    older = {PAUSE_T1: plain(pause(PAUSE_T1)), PAUSE_T2: plain(pause(PAUSE_T2))}
    await writer.publish(LEGACY, encode_constraints_index(older, "cascade"), 1, True)
    assert await put(writer, PAUSE_T0)
    assert await clear(writer, PAUSE_T2)
    assert set(await held(broker)) == {PAUSE_T0, PAUSE_T1}
    assert legacy(broker) == older  # as the earlier version left it
    async with InMemoryConnector(broker, presence=False) as reader:
        assert (await read_index(reader)).merged()[PAUSE_T2].payload is None
