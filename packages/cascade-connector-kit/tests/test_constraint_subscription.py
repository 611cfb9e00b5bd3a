"""subscribe_constraints: the retained constraints on any broker, each handed over once, the
snapshot's end told after its exact reads, now and after every reconnection."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.interfaces import (
    ConnectorError,
    Constraint,
    Message,
    MessageCallback,
    SubscriptionHandle,
    SyncCallback,
    SyncPhase,
    TopicKey,
    constraint_topic,
)

PAUSE_X = constraint_topic("task:x", "pause")
PAUSE_Y = constraint_topic("task:y", "pause")


class _Failing(InMemoryConnector):
    """Its subscriptions to exact topics fail (the exact reads of the index)."""

    async def subscribe(
        self, topic_filter: str, callback: MessageCallback, *, on_sync: SyncCallback | None = None
    ) -> Any:
        if "#" not in topic_filter:
            raise ConnectorError("no exact subscriptions here")
        return await super().subscribe(topic_filter, callback, on_sync=on_sync)


async def _set(broker: InMemoryBroker, *topics: str) -> None:
    """Constraints retained on ``topics``, and listed in the index."""
    async with InMemoryConnector(broker, presence=False) as writer:
        put = {topic: Constraint.pause(f"task:{topic.split('/')[-2]}") for topic in topics}
        for topic, constraint in put.items():
            await writer.publish(topic, constraint, 1, True)
        if not broker.retained_to_wildcards:
            await writer.index_constraints(put=put, timeout=1)
        await broker.idle()


@pytest.mark.parametrize("to_wildcards", [True, False])
async def test_retained_constraints_come_once_before_the_snapshot_ends(to_wildcards: bool) -> None:
    """On either kind of broker, each retained constraint comes once, between begin and end,
    before subscribe_constraints returns."""
    broker = InMemoryBroker(retained_to_wildcards=to_wildcards)
    await _set(broker, PAUSE_X)
    told: list[str] = []
    async with InMemoryConnector(broker, presence=False) as reader:
        await broker.idle()  # its connection's own snapshot over
        await reader.subscribe_constraints(
            lambda m: told.append(m.topic), on_sync=lambda phase: told.append(phase)
        )
        assert told == ["begin", PAUSE_X, "end"]


async def test_wanted_leaves_the_other_scopes_unread() -> None:
    """Where the index is read, only the topics whose scope ``wanted`` wants are read."""
    broker = InMemoryBroker(retained_to_wildcards=False)
    await _set(broker, PAUSE_X, PAUSE_Y)
    seen: list[str] = []

    def only_x(key: TopicKey) -> bool:
        return key.scope == "task:x"

    async with InMemoryConnector(broker, presence=False) as reader:
        await reader.subscribe_constraints(lambda m: seen.append(m.topic), wanted=only_x)
    assert seen == [PAUSE_X]


async def test_a_live_constraint_comes_through_the_wildcard() -> None:
    """A constraint set after the subscription comes once, live."""
    broker = InMemoryBroker(retained_to_wildcards=False)
    seen: list[Message] = []
    async with InMemoryConnector(broker, presence=False) as reader:
        await reader.subscribe_constraints(seen.append)
        await _set(broker, PAUSE_X)
    assert [(m.topic, m.retain) for m in seen] == [(PAUSE_X, False)]


async def test_a_reconnection_reads_the_index_again_and_ends_its_snapshot() -> None:
    """A constraint set while the reader was away comes after it is back, before the end of
    the new snapshot."""
    broker = InMemoryBroker(retained_to_wildcards=False)
    told: list[str] = []
    ended = asyncio.Event()

    def on_sync(phase: SyncPhase) -> None:
        told.append(phase)
        if phase == "end" and PAUSE_X in told:
            ended.set()

    reader = InMemoryConnector(broker, presence=False)
    await reader.connect()
    await reader.subscribe_constraints(lambda m: told.append(m.topic), on_sync=on_sync)
    await reader.crash()
    await _set(broker, PAUSE_X)
    await reader.connect()
    await asyncio.wait_for(ended.wait(), 5)
    assert told == ["begin", "end", "begin", PAUSE_X, "end"]
    await reader.disconnect()


async def test_a_failed_first_read_is_raised_and_the_subscription_ended() -> None:
    """Without on_read_error, the first read's failure is the caller's: raised, nothing left
    subscribed."""
    broker = InMemoryBroker(retained_to_wildcards=False)
    seen: list[Message] = []
    async with _Failing(broker, presence=False) as reader:
        with pytest.raises(ConnectorError, match="no exact subscriptions"):
            await reader.subscribe_constraints(seen.append)
        await _set(broker, PAUSE_X)
    assert seen == []


async def test_a_failed_read_goes_to_on_read_error_and_the_snapshot_still_ends() -> None:
    """With on_read_error, a read's failure is handed to it, and the snapshot's end is told."""
    broker = InMemoryBroker(retained_to_wildcards=False)
    errors: list[Exception] = []
    phases: list[SyncPhase] = []
    async with _Failing(broker, presence=False) as reader:
        handle: SubscriptionHandle = await reader.subscribe_constraints(
            lambda m: None, on_sync=phases.append, on_read_error=errors.append
        )
        assert handle.topic_filter == "cascade/constraints/#"
        assert [str(e) for e in errors] == ["no exact subscriptions here"]
        assert phases == ["begin", "end"]
        await handle.unsubscribe()
