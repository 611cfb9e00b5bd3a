"""The Connector methods where brokers differ: each decided by the connector, the same call on
every broker (the roll call, the shared-subscription probe, the constraints' subscription)."""

from __future__ import annotations

import pytest

from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.interfaces import Connector, Constraint, Message, constraint_topic, rollcall_topic


def _probes(broker: InMemoryBroker, topic: str) -> list[Message]:
    return [m for m in broker.history if m.topic == topic]


async def test_both_connectors_keep_the_whole_protocol() -> None:
    """The in-memory connector (as the MQTT one) is a Connector, broker methods included."""
    assert isinstance(InMemoryConnector(presence=False), Connector)


@pytest.mark.parametrize("exact_only", [False, True], ids=["wildcards", "exact-only"])
async def test_the_roll_is_called_only_where_the_broker_needs_it(exact_only: bool) -> None:
    """``call_roll`` publishes on ``{prefix}/rollcall`` and says so only where the broker sends
    a wildcard no retained message; elsewhere nothing is published."""
    broker = InMemoryBroker(retained_to_wildcards=not exact_only)
    async with InMemoryConnector(broker, presence=False) as reader:
        assert await reader.call_roll() is exact_only
        await broker.idle()
    assert len(_probes(broker, rollcall_topic())) == int(exact_only)


@pytest.mark.parametrize("exact_only", [False, True], ids=["wildcards", "exact-only"])
async def test_roll_calls_are_answered_only_where_the_broker_needs_them(exact_only: bool) -> None:
    """``answer_rollcalls`` calls back on each roll call where the broker needs one; elsewhere
    it subscribes to nothing, and a roll call (another tool's) calls nothing back."""
    broker = InMemoryBroker(retained_to_wildcards=not exact_only)
    called: list[str] = []
    async with InMemoryConnector(broker, presence=False) as engine:
        handle = await engine.answer_rollcalls(lambda message: called.append(message.topic))
        assert handle.topic_filter == rollcall_topic()
        async with InMemoryConnector(broker, presence=False) as reader:
            await reader.publish(rollcall_topic(), {"rollcall": 1}, qos=1)
            await broker.idle()
        await handle.unsubscribe()
        async with InMemoryConnector(broker, presence=False) as reader:
            await reader.publish(rollcall_topic(), {"rollcall": 1}, qos=1)
            await broker.idle()
    assert called == ([rollcall_topic()] if exact_only else [])


@pytest.mark.parametrize(
    ("shares", "exact_only", "expected", "tried"),
    [(True, False, True, True), (False, False, False, True), (True, True, False, False)],
    ids=["mosquitto", "amqtt", "rabbitmq-3"],
)
async def test_the_shared_subscription_probe(
    shares: bool, exact_only: bool, expected: bool, tried: bool
) -> None:
    """``shares_subscriptions`` tries a shared subscription on the topic given, and says whether
    the broker delivered through it; where the broker sends retained messages to exact
    subscriptions only (RabbitMQ 3.x, which has none), nothing is tried."""
    broker = InMemoryBroker(shared_subscriptions=shares, retained_to_wildcards=not exact_only)
    topic = "cascade/_marker/me/share-probe"
    async with InMemoryConnector(broker, source_id="me", presence=False) as connector:
        assert await connector.shares_subscriptions(topic, timeout=5) is expected
    assert bool(_probes(broker, topic)) is tried


@pytest.mark.parametrize("exact_only", [False, True], ids=["wildcards", "exact-only"])
async def test_a_constraints_subscription_says_whether_it_reads_the_index(
    exact_only: bool,
) -> None:
    """The same call brings a retained pause on both brokers (written as ``cascade pause``
    writes it: ``index_constraints`` beside it), and says whether the index was read."""
    broker = InMemoryBroker(retained_to_wildcards=not exact_only)
    topic = constraint_topic("task:x", "pause")
    async with InMemoryConnector(broker, presence=False) as writer:
        await writer.publish(topic, Constraint.pause("task:x"), 1, True)
        put = {topic: Constraint.pause("task:x")}
        assert await writer.index_constraints(put=put, timeout=1, settle=0.01) is exact_only
    shards = [t for t in broker.retained_topics if t.startswith("cascade/index/constraints/")]
    assert bool(shards) is exact_only
    seen: list[str] = []
    async with InMemoryConnector(broker, presence=False) as reader:
        subscription = await reader.subscribe_constraints(lambda m: seen.append(m.topic))
        assert subscription.indexed is exact_only
        await subscription.unsubscribe()
    assert seen == [topic]
