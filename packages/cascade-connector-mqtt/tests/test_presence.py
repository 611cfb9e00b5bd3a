"""Birth, will and graceful offline: what the connector announces about itself."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from cascade.connectors.mqtt import MqttConnector
from cascade.connectors.mqtt.testing import FakeBroker


async def test_will_is_a_retained_offline_with_the_session(broker: FakeBroker) -> None:
    """The will registered at CONNECT is a retained QoS 1 offline for this session."""
    async with MqttConnector("broker", source_id="engine-1", link=broker) as connector:
        will = broker.link.settings.will
        assert will is not None
        topic, raw = will
        assert topic == "cascade/status/engine-1"  # sent retained at QoS 1 (the Link contract)
        payload = json.loads(raw)
        assert payload["status"] == "offline"
        assert payload["source"] == "engine-1"
        assert payload["session"] == connector.session
        assert "reason" not in payload


async def test_birth_is_a_retained_online_with_the_same_session(broker: FakeBroker) -> None:
    """On connect the first thing published on its status topic is the retained online birth,
    same session."""
    async with MqttConnector("broker", source_id="engine-1", link=broker) as connector:
        own = [m for m in broker.link.sent if m.topic == "cascade/status/engine-1"]
        first = own[0]
        assert (first.qos, first.retain) == (1, True)
        birth = json.loads(first.payload)
        assert birth["status"] == "online"
        assert birth["session"] == connector.session > 0


async def test_graceful_disconnect_publishes_offline_with_reason(broker: FakeBroker) -> None:
    """disconnect() publishes a retained offline with reason shutdown, then DISCONNECTs."""
    connector = MqttConnector("broker", source_id="engine-1", flush_timeout=0.5, link=broker)
    await connector.connect()
    link = broker.link
    await connector.disconnect()
    last = link.sent[-1]
    offline = json.loads(last.payload)
    assert (last.topic, last.qos, last.retain) == ("cascade/status/engine-1", 1, True)
    assert offline["status"] == "offline"
    assert offline["reason"] == "shutdown"
    assert offline["session"] == connector.session
    assert link.disconnects == 1


async def test_a_slow_disconnect_is_not_cut_short(broker: FakeBroker) -> None:
    """A DISCONNECT that takes a while to go out still goes: without it the broker would
    publish the will, and a reader would see offline without the reason shutdown."""
    broker.before_disconnect = lambda link: asyncio.sleep(0.3)  # longer than one cancel retry
    connector = MqttConnector("broker", source_id="engine-1", flush_timeout=0.5, link=broker)
    await connector.connect()
    link = broker.link
    await connector.disconnect()
    assert link.disconnects == 1
    assert link.closed
    assert not connector.is_connected


async def test_presence_off_announces_nothing(broker: FakeBroker) -> None:
    """With presence=False there is no will, no birth and no graceful offline."""
    connector = MqttConnector(
        "broker", source_id="cli-1", presence=False, flush_timeout=0.5, link=broker
    )
    await connector.connect()
    link = broker.link
    assert link.settings.will is None
    await connector.publish("t", {"x": 1})
    await connector.flush(1)
    await connector.disconnect()
    assert [m.topic for m in link.sent if "/_marker/" not in m.topic] == ["t"]


async def test_session_rises_on_every_connect(broker: FakeBroker) -> None:
    """Every CONNECT (reconnect, or connect after disconnect) uses a higher session."""
    connector = MqttConnector("broker", source_id="engine-1", link=broker)
    await connector.connect()
    first = connector.session
    await connector.disconnect()
    await connector.connect()
    assert connector.session > first
    await connector.disconnect()


async def test_two_connectors_in_one_millisecond_have_two_sessions(
    broker: FakeBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Connectors of one process that connect in the same millisecond still differ: with one
    session, two sharing a source id would take each other's offline for their own, and the
    survivor would be shown offline."""
    monkeypatch.setattr(time, "time_ns", lambda: 1_795_000_000_000_000_000)  # time stands still
    first = MqttConnector("broker", source_id="engine-1", link=broker)
    second = MqttConnector("broker", source_id="engine-1", link=broker)
    await first.connect()
    await second.connect()
    assert second.session > first.session
    await second.disconnect()
    await first.disconnect()


@pytest.mark.parametrize(
    ("source", "level"),
    [("a/b", "a%2Fb"), ("x+y", "x%2By"), ("h#", "h%23"), ("worker1.example.com",
     "worker1%2Eexample%2Ecom"), ("my host", "my%20host")],
)  # fmt: skip
async def test_source_id_is_encoded_into_one_topic_level(
    broker: FakeBroker, source: str, level: str
) -> None:
    """A source id cannot add topic levels or wildcards to the status topic, nor a character a
    broker refuses: it is the id as given, encoded in its status topic (and its markers)."""
    connector = MqttConnector("broker", source_id=source, link=broker)
    assert connector.source_id == source
    await connector.connect()
    assert f"cascade/status/{level}" in broker.retained
    await connector.disconnect()
