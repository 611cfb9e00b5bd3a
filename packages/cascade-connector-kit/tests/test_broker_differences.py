"""The Connector methods where brokers differ: each decided by the connector, the same call on
every broker (the roll call, the shared-subscription probe, the constraints' subscription)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.interfaces import (
    Connector,
    ConnectorError,
    Constraint,
    Message,
    constraint_topic,
    rollcall_topic,
)


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


@pytest.mark.parametrize(
    ("shares", "plain", "filters", "each_gets"),
    [
        (True, False, "$share/g/jobs/#", 0),
        (True, True, "$share/g/jobs/#", 0),
        (False, True, "jobs/#", 4),
        (False, False, None, 0),
    ],
    ids=["shared", "shared-plain-unused", "plain-fallback", "no-fallback"],
)
async def test_a_shared_subscription_or_the_one_fallback(
    shares: bool, plain: bool, filters: str | None, each_gets: int
) -> None:
    """``subscribe_shared``: where the broker shares, each message reaches one member of the
    group; where it does not, each member subscribes to the filter itself (``plain``), or to
    nothing, and says so by returning no subscription."""
    broker = InMemoryBroker(shared_subscriptions=shares)
    got: dict[str, list[str]] = {"a": [], "b": []}
    async with (
        InMemoryConnector(broker, source_id="a", presence=False) as a,
        InMemoryConnector(broker, source_id="b", presence=False) as b,
    ):
        handles = {}
        for name, member in (("a", a), ("b", b)):
            handles[name] = await member.subscribe_shared(
                "g",
                ["jobs/#"],
                _collect(got[name]),
                probe=f"cascade/_marker/{name}/share-probe",
                timeout=5,
                plain=plain,
            )
        for k in range(4):
            await a.publish(f"jobs/{k}", {"k": k}, qos=1)
        await broker.idle()
    for handle in handles.values():
        assert [h.topic_filter for h in handle] == ([filters] if filters else [])
    if shares:
        assert sorted(got["a"] + got["b"]) == [f"jobs/{k}" for k in range(4)]
    else:
        assert len(got["a"]) == len(got["b"]) == each_gets


def _collect(topics: list[str]) -> Callable[[Message], None]:
    return lambda message: topics.append(message.topic)


class _Made:
    """A shared subscription made before connecting, as a recorder makes it."""

    def __init__(self, topic_filter: str) -> None:
        self.topic_filter = topic_filter
        self.ended = False

    async def unsubscribe(self) -> None:
        self.ended = True


@pytest.mark.parametrize("shares", [True, False], ids=["shared", "not-shared"])
async def test_shared_subscriptions_made_before_are_kept_or_replaced(shares: bool) -> None:
    """``subscribed``: where the broker shares, those subscriptions are the ones in force;
    where it does not, the plain ones replace them, and they are unsubscribed."""
    broker = InMemoryBroker(shared_subscriptions=shares)
    made = _Made("$share/g/jobs/#")
    async with InMemoryConnector(broker, source_id="a", presence=False) as connector:
        handles = await connector.subscribe_shared(
            "g",
            ["jobs/#"],
            lambda message: None,
            probe="cascade/_marker/a/share-probe",
            timeout=5,
            plain=True,
            subscribed=[made],
        )
    if shares:
        assert handles == [made]
    else:
        assert [h.topic_filter for h in handles] == ["jobs/#"]
    assert made.ended is not shares


class _Unanswered(InMemoryConnector):
    """A connector whose broker does not answer the probe."""

    async def shares_subscriptions(self, topic: str, *, timeout: float) -> bool:
        raise ConnectorError(f"the broker did not acknowledge {topic} within {timeout} s")


async def test_a_probe_the_broker_does_not_answer_takes_the_fallback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A broker that does not answer the probe is taken as one without shared subscriptions
    (logged): the fallback, never an error."""
    async with _Unanswered(InMemoryBroker(), source_id="a", presence=False) as connector:
        handles = await connector.subscribe_shared(
            "g", ["jobs/#"], lambda message: None, probe="p", timeout=0.1, plain=True
        )
    assert [h.topic_filter for h in handles] == ["jobs/#"]
    assert "could not try a shared subscription on p (taken as none)" in caplog.text
