"""The connector over MQTT 5 (mosquitto only: the embedded broker speaks 3.1.1)."""

from __future__ import annotations

import pytest

from cascade.connectors.mqtt import MqttConnector
from cascade.testkit import BrokerEndpoint, Inbox

pytestmark = pytest.mark.mqtt5


async def test_presence_and_messages_over_mqtt5(
    mqtt_broker: BrokerEndpoint, observer: MqttConnector, prefix: str
) -> None:
    """Birth, QoS 0 and QoS 1 messages, and the graceful offline all work with protocol 5."""
    if not mqtt_broker.supports_mqtt5:
        pytest.skip(f"the broker does not speak MQTT 5 ({type(mqtt_broker).__name__})")
    status, events = Inbox(), Inbox()
    async with MqttConnector(
        mqtt_broker.host, mqtt_broker.port, protocol="5", topic_prefix=prefix, source_id="v5"
    ) as engine:
        await observer.subscribe(f"{prefix}/status/v5", status)
        assert (await status.next()).payload["session"] == engine.session
        await engine.subscribe(f"{prefix}/events", events)
        for n in range(300):
            await engine.publish(f"{prefix}/events", {"n": n}, qos=n % 2)
        await engine.flush(10)
        got = sorted([(await events.next()).payload["n"] for _ in range(300)])
        assert got == list(range(300))
    assert (await status.next()).payload["reason"] == "shutdown"


async def test_overlapping_filters_each_get_a_message_once(
    mqtt_broker: BrokerEndpoint, prefix: str
) -> None:
    """The broker sends a copy per matching subscription; each callback still gets one."""
    if not mqtt_broker.supports_mqtt5:
        pytest.skip(f"the broker does not speak MQTT 5 ({type(mqtt_broker).__name__})")
    wide, narrow = Inbox(), Inbox()
    async with MqttConnector(
        mqtt_broker.host, mqtt_broker.port, protocol="5", topic_prefix=prefix, presence=False
    ) as engine:
        await engine.subscribe(f"{prefix}/a/#", wide)
        await engine.subscribe(f"{prefix}/a/+", narrow)
        for n in range(5):
            await engine.publish(f"{prefix}/a/x", {"n": n}, qos=1)
        await engine.flush(10)
        # a subscribe is a barrier: its marker comes back after every copy sent before it
        await engine.subscribe(f"{prefix}/barrier", Inbox())
    assert [m.payload["n"] for m in wide.all] == list(range(5))
    assert [m.payload["n"] for m in narrow.all] == list(range(5))


async def test_a_status_subscription_sees_its_own_status_once(
    mqtt_broker: BrokerEndpoint, observer: MqttConnector, prefix: str
) -> None:
    """A user filter overlapping the connector's own status filter: one copy, one stale check."""
    if not mqtt_broker.supports_mqtt5:
        pytest.skip(f"the broker does not speak MQTT 5 ({type(mqtt_broker).__name__})")
    statuses = Inbox()
    async with MqttConnector(
        mqtt_broker.host, mqtt_broker.port, protocol="5", topic_prefix=prefix, source_id="v5s"
    ) as engine:
        await engine.subscribe(f"{prefix}/status/+", statuses)
        stale = {"status": "offline", "source": "v5s", "session": 1}
        await observer.publish(f"{prefix}/status/v5s", stale, qos=1, retain=True)
        await statuses.until(lambda m: m.payload == {**m.payload, **stale})
        await statuses.until(lambda m: m.payload["source"] == "v5s")  # the re-announcement
        await engine.subscribe(f"{prefix}/barrier", Inbox())
        mine = [m for m in statuses.all if m.topic == f"{prefix}/status/v5s"]
        seen = [(m.payload["status"], m.payload["session"]) for m in mine]
        online = ("online", engine.session)
    assert seen == [online, ("offline", 1), online]
