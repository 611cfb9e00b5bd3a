"""Birth, will and graceful offline: what the connector announces about itself."""

from __future__ import annotations

import json

import aiomqtt
import pytest

from cascade.connectors.mqtt import MqttConnector
from cascade.connectors.mqtt.testing._fake_client import FakeMqtt, parse_publishes


async def test_will_is_a_retained_offline_with_the_session(fake_mqtt: FakeMqtt) -> None:
    """The will registered at CONNECT is a retained QoS 1 offline for this session."""
    async with MqttConnector("broker", source_id="engine-1", link=fake_mqtt.link) as connector:
        will = fake_mqtt.client.kwargs["will"]
        assert isinstance(will, aiomqtt.Will)
        assert will.topic == "cascade/status/engine-1"
        assert (will.qos, will.retain) == (1, True)
        payload = json.loads(will.payload)  # type: ignore[arg-type]
        assert payload["status"] == "offline"
        assert payload["source"] == "engine-1"
        assert payload["session"] == connector.session
        assert "reason" not in payload


async def test_birth_is_a_retained_online_with_the_same_session(fake_mqtt: FakeMqtt) -> None:
    """On connect the first thing published is the retained online birth, same session."""
    async with MqttConnector("broker", source_id="engine-1", link=fake_mqtt.link) as connector:
        topic, raw, qos, retain = fake_mqtt.paho.published[0]
        assert (topic, qos, retain) == ("cascade/status/engine-1", 1, True)
        birth = json.loads(raw)
        assert birth["status"] == "online"
        assert birth["session"] == connector.session > 0


async def test_graceful_disconnect_publishes_offline_with_reason(fake_mqtt: FakeMqtt) -> None:
    """disconnect() publishes a retained offline with reason shutdown, then DISCONNECTs."""
    connector = MqttConnector(
        "broker", source_id="engine-1", flush_timeout=0.5, link=fake_mqtt.link
    )
    await connector.connect()
    client = fake_mqtt.client
    await connector.disconnect()
    topic, raw, qos, retain = client.paho.published[-1]
    offline = json.loads(raw)
    assert (topic, qos, retain) == ("cascade/status/engine-1", 1, True)
    assert offline["status"] == "offline"
    assert offline["reason"] == "shutdown"
    assert offline["session"] == connector.session
    assert client.paho.disconnect_calls == 1
    assert not connector.is_connected


async def test_presence_off_announces_nothing(fake_mqtt: FakeMqtt) -> None:
    """With presence=False there is no will, no birth and no graceful offline."""
    connector = MqttConnector(
        "broker", source_id="cli-1", presence=False, flush_timeout=0.5, link=fake_mqtt.link
    )
    await connector.connect()
    client = fake_mqtt.client
    assert client.kwargs["will"] is None
    await connector.publish("t", {"x": 1})
    await connector.flush(1)
    await connector.disconnect()
    direct = [t for t, *_ in client.paho.published if "/_marker/" not in t]
    batched = [t for _, blob in client.paho.packets for t, *_ in parse_publishes(blob)]
    assert direct + batched == ["t"]


async def test_session_rises_on_every_connect(fake_mqtt: FakeMqtt) -> None:
    """Every CONNECT (reconnect, or connect after disconnect) uses a higher session."""
    connector = MqttConnector("broker", source_id="engine-1", link=fake_mqtt.link)
    await connector.connect()
    first = connector.session
    await connector.disconnect()
    await connector.connect()
    assert connector.session > first
    await connector.disconnect()


@pytest.mark.parametrize("source", ["a/b", "x+y", "h#"])
async def test_source_id_is_sanitized_into_one_topic_level(
    fake_mqtt: FakeMqtt, source: str
) -> None:
    """A source id cannot add topic levels or wildcards to the status topic."""
    connector = MqttConnector("broker", source_id=source, link=fake_mqtt.link)
    assert "/" not in connector.source_id
    assert "+" not in connector.source_id
    assert "#" not in connector.source_id
