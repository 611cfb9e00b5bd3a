"""What status, watch and the dashboard read on a broker that sends retained messages to
exact subscriptions only (the in-memory broker with ``retained_to_wildcards=False``)."""

from __future__ import annotations

from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.interfaces import (
    Constraint,
    Message,
    constraint_topic,
    rollcall_topic,
)
from cascade.reader import subscribe_statuses
from cascade.runtime.testing import eventually


async def test_a_roll_call_brings_the_online_sources_and_only_there() -> None:
    """Online sources answer with their birth; one that went offline before is not found."""
    broker = InMemoryBroker(retained_to_wildcards=False)
    online = InMemoryConnector(broker, source_id="online")
    gone = InMemoryConnector(broker, source_id="gone")
    await online.connect()
    await gone.connect()
    await gone.disconnect()
    seen: list[Message] = []
    async with InMemoryConnector(broker, presence=False) as reader:
        assert await subscribe_statuses(reader, seen.append)
        await broker.idle()
    assert [(m.topic, m.payload["status"]) for m in seen] == [("cascade/status/online", "online")]
    await online.disconnect()


async def test_no_roll_call_where_retained_statuses_reach_wildcards() -> None:
    broker = InMemoryBroker()
    seen: list[Message] = []
    async with (
        InMemoryConnector(broker, source_id="e"),
        InMemoryConnector(broker, presence=False) as reader,
    ):
        assert not await subscribe_statuses(reader, seen.append)
        await broker.idle()
    assert [m.topic for m in seen] == ["cascade/status/e"]  # the retained birth
    assert not [m for m in broker.history if m.topic == rollcall_topic()]


async def test_constraints_are_read_again_after_a_reconnection() -> None:
    """A constraint set while the reader was away reaches it once it is back (watch, the
    dashboard), as the engine's snapshot does."""
    broker = InMemoryBroker(retained_to_wildcards=False)
    topic = constraint_topic("task:x", "pause")
    seen: list[str] = []
    async with InMemoryConnector(broker, presence=False) as writer:
        reader = InMemoryConnector(broker, presence=False)
        await reader.connect()
        await reader.subscribe_constraints(lambda m: seen.append(m.topic))
        assert seen == []
        await reader.crash()
        await writer.publish(topic, Constraint.pause("task:x"), 1, True)
        await writer.index_constraints(put={topic: Constraint.pause("task:x")}, timeout=1)
        await reader.connect()
        await eventually(lambda: seen == [topic])
        await reader.disconnect()
