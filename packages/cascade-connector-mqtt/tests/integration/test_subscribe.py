"""Subscribing over a real broker: retained messages before subscribe returns, unsubscribe."""

from __future__ import annotations

import socket

import pytest

from cascade.connectors.mqtt import MqttConnector
from cascade.connectors.mqtt.testing import BrokerEndpoint, Inbox


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


async def test_public_publish_path_delivers_in_order(
    mqtt_broker: BrokerEndpoint,
    observer: MqttConnector,
    prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The fallback without paho internals delivers everything, in order, at QoS 0 and 1."""
    monkeypatch.setattr(
        "cascade.connectors.mqtt._connector._fast_wire_supported", lambda paho: False
    )
    inbox = Inbox()
    await observer.subscribe(f"{prefix}/slow", inbox)
    async with MqttConnector(mqtt_broker.host, mqtt_broker.port, topic_prefix=prefix) as writer:
        for n in range(500):
            await writer.publish(f"{prefix}/slow", {"n": n}, qos=n % 2)
        await writer.flush(10)
        got = [await inbox.next() for _ in range(500)]
    for qos in (0, 1):
        assert [m.payload["n"] for m in got if m.payload["n"] % 2 == qos] == list(
            range(qos, 500, 2)
        )


async def test_small_packets_are_not_held_back(mqtt_broker: BrokerEndpoint, prefix: str) -> None:
    """TCP_NODELAY is set: Nagle's algorithm held a SUBSCRIBE or marker ~40 ms behind an ACK."""
    async with MqttConnector(mqtt_broker.host, mqtt_broker.port, topic_prefix=prefix) as connector:
        assert connector._client is not None
        sock = connector._client._client.socket()
        assert isinstance(sock, socket.socket)
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
