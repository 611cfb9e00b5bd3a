"""Subscribing over a real broker: retained messages before subscribe returns, unsubscribe."""

from __future__ import annotations

import asyncio

import pytest

from cascade.connectors.mqtt import MqttConnector
from cascade.interfaces import Message
from cascade.testkit import (
    RETAINED_EXACT_ONLY,
    BrokerEndpoint,
    Inbox,
    broker_family,
    xfail_on_family,
)


@xfail_on_family("rabbitmq", RETAINED_EXACT_ONLY)
async def test_hundreds_of_retained_messages_arrive_before_subscribe_returns(
    mqtt_broker: BrokerEndpoint, observer: MqttConnector, prefix: str
) -> None:
    """Every matching retained message has reached the callback when subscribe returns."""
    async with MqttConnector(mqtt_broker.host, mqtt_broker.port, topic_prefix=prefix) as writer:
        for n in range(300):
            await writer.publish(f"{prefix}/constraints/task/t{n}", {"n": n}, qos=1, retain=True)
        await writer.flush(10)
    inbox = Inbox()
    await observer.subscribe(f"{prefix}/constraints/#", inbox)
    assert sorted(m.payload["n"] for m in inbox.all) == list(range(300))
    assert all(m.retain for m in inbox.all)


async def test_messages_flow_in_order_and_unsubscribe_stops_them(
    mqtt_broker: BrokerEndpoint, observer: MqttConnector, prefix: str
) -> None:
    """A burst arrives complete and in order per QoS level; unsubscribe stops delivery."""
    inbox = Inbox()
    handle = await observer.subscribe(f"{prefix}/events", inbox)
    async with MqttConnector(mqtt_broker.host, mqtt_broker.port, topic_prefix=prefix) as writer:
        for n in range(2000):
            await writer.publish(f"{prefix}/events", {"n": n}, qos=n % 2)
        await writer.flush(10)
        got = [await inbox.next() for _ in range(2000)]
        # MQTT orders messages per QoS level: each level arrives in publish order
        for qos in (0, 1):
            numbers = [m.payload["n"] for m in got if m.payload["n"] % 2 == qos]
            assert numbers == list(range(qos, 2000, 2))
        await handle.unsubscribe()
        await writer.publish(f"{prefix}/events", {"n": "late"}, qos=1)
        await writer.flush(10)
        later = Inbox()
        await observer.subscribe(f"{prefix}/other", later)  # a round trip after the late one
    assert len(inbox.all) == 2000
    assert observer.stats.rejected == 0


async def test_a_cleared_retained_topic_reads_as_empty(
    mqtt_broker: BrokerEndpoint, observer: MqttConnector, prefix: str
) -> None:
    """An empty retained payload clears the topic, and subscribers see {} live."""
    inbox = Inbox()
    await observer.subscribe(f"{prefix}/constraints/global", inbox)
    async with MqttConnector(mqtt_broker.host, mqtt_broker.port, topic_prefix=prefix) as writer:
        await writer.publish(f"{prefix}/constraints/global", {"type": "pause"}, 1, True)
        await writer.publish(f"{prefix}/constraints/global", b"", 1, True)
        await writer.flush(5)
    assert (await inbox.next()).payload == {"type": "pause"}
    assert (await inbox.next()).payload == {}
    late = Inbox()
    await observer.subscribe(f"{prefix}/constraints/#", late)
    assert late.all == []


@xfail_on_family("rabbitmq", RETAINED_EXACT_ONLY)
async def test_twin_connectors_wait_for_their_own_markers(
    mqtt_broker: BrokerEndpoint,
    observer: MqttConnector,
    prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two connectors of one source and session never take each other's subscribe markers."""
    same_session = lambda previous: previous + 1  # noqa: E731 - as if in the same millisecond
    monkeypatch.setattr("cascade.connectors.mqtt._presence._next_session", same_session)
    async with MqttConnector(mqtt_broker.host, mqtt_broker.port, topic_prefix=prefix) as writer:
        for n in range(50):
            await writer.publish(f"{prefix}/r/{n}", {"n": n}, qos=1, retain=True)
        await writer.flush(10)
    markers = Inbox()
    await observer.subscribe(f"{prefix}/_marker/#", markers)
    host, port = mqtt_broker.host, mqtt_broker.port
    first = MqttConnector(host, port, topic_prefix=prefix, source_id="twin")
    second = MqttConnector(host, port, topic_prefix=prefix, source_id="twin")
    async with first, second:
        assert first.session == second.session
        busy, release = asyncio.Event(), asyncio.Event()

        async def hold(message: Message) -> None:
            busy.set()
            await release.wait()

        await second.subscribe(f"{prefix}/hold", hold)
        await observer.publish(f"{prefix}/hold", {})
        await busy.wait()  # the second's reader is held: what reaches it now waits in line
        await first.subscribe(f"{prefix}/x", lambda m: None)
        await first.subscribe(f"{prefix}/y", lambda m: None)
        got: list[Message] = []

        async def keep(message: Message) -> None:
            got.append(message)
            await asyncio.sleep(0)  # give a returning subscribe() its chance

        subscribing = asyncio.create_task(second.subscribe(f"{prefix}/r/#", keep))
        for _ in range(4):  # both connectors' markers, the second's last one included
            await markers.until(lambda m: m.topic.startswith(f"{prefix}/_marker/twin/"))
        release.set()
        await subscribing
        assert len(got) == 50


async def test_the_connector_learns_whether_wildcards_get_retained_messages(
    mqtt_broker: BrokerEndpoint, observer: MqttConnector, prefix: str
) -> None:
    """mosquitto sends them, RabbitMQ 3.x does not; the probe leaves nothing retained behind."""
    host, port = mqtt_broker.host, mqtt_broker.port
    seen = Inbox()  # live, so on either family: the probe's topic
    await observer.subscribe(f"{prefix}/_marker/prober/+/probe", seen)
    async with MqttConnector(host, port, topic_prefix=prefix, source_id="prober") as connector:
        await connector.subscribe(f"{prefix}/x/#", lambda m: None)
        expected = broker_family() != "rabbitmq"
        assert connector.capabilities.retained_to_wildcards is expected
    probe = await seen.next()
    assert probe.payload == {"probe": 1}
    leftover = Inbox()  # an exact subscription: every family sends it what is retained there
    async with MqttConnector(host, port, topic_prefix=prefix, presence=False) as reader:
        await reader.subscribe(probe.topic, leftover)
    assert leftover.all == []


async def test_a_topic_the_client_refuses_is_rejected_and_the_connection_stays(
    mqtt_broker: BrokerEndpoint, prefix: str
) -> None:
    """RabbitMQ delivers 'task/api_*' as 'task/api_+': counted in rejected, nothing else lost."""
    host, port = mqtt_broker.host, mqtt_broker.port
    inbox = Inbox()
    async with MqttConnector(host, port, topic_prefix=prefix, presence=False) as reader:
        await reader.subscribe(f"{prefix}/c/#", inbox)
        async with MqttConnector(host, port, topic_prefix=prefix, presence=False) as writer:
            await writer.publish(f"{prefix}/c/task/api_*/pause", {"n": 1}, qos=1)
            await writer.publish(f"{prefix}/c/after", {"n": 2}, qos=1)
        await inbox.until(lambda m: m.topic == f"{prefix}/c/after")
        rabbitmq = broker_family() == "rabbitmq"
        assert [m.payload["n"] for m in inbox.all] == ([2] if rabbitmq else [1, 2])
        assert reader.stats.rejected == (1 if rabbitmq else 0)
        assert reader.stats.reconnects == 0
        assert reader.is_connected


async def test_many_subscriptions_made_at_once_are_no_warning(
    mqtt_broker: BrokerEndpoint,
    observer: MqttConnector,
    prefix: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Subscriptions made at once, as a constraints index is read (17 exact topics), each wait
    for the broker's answer: by design, so no warning about pending calls (aiomqtt's says so
    past 10, which every served engine on RabbitMQ printed)."""
    topics = [f"{prefix}/index/constraints/{n}" for n in range(40)]
    with caplog.at_level("WARNING"):
        handles = await asyncio.gather(*(observer.subscribe(t, Inbox()) for t in topics))
        await asyncio.gather(*(handle.unsubscribe() for handle in handles))
    assert not [r.getMessage() for r in caplog.records if "pending" in r.getMessage()]
