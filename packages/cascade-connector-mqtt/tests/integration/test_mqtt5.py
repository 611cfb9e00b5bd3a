"""The connector over MQTT 5 (mosquitto only: the embedded broker speaks 3.1.1)."""

from __future__ import annotations

import pytest

from cascade.connectors.mqtt import MqttConnector
from cascade.connectors.mqtt.testing import BrokerEndpoint, Inbox

pytestmark = pytest.mark.mqtt5


async def test_presence_and_messages_over_mqtt5(
    mqtt_broker: BrokerEndpoint, observer: MqttConnector, prefix: str
) -> None:
    """Birth, QoS 0 and QoS 1 messages, and the graceful offline all work with protocol 5."""
    if not mqtt_broker.supports_mqtt5:
        pytest.skip("the broker does not speak MQTT 5 (embedded amqtt broker)")
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
