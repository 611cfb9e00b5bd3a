"""Subscriptions at QoS 0 on a clean session, at QoS 1 only with a persistent one."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from cascade.connectors.mqtt import MqttConnector
from cascade.connectors.mqtt.testing import FakeBroker
from cascade.interfaces import Message

Until = Callable[[Callable[[], object], str], Awaitable[None]]


async def test_a_clean_session_subscribes_at_qos_0(broker: FakeBroker) -> None:
    """Every SUBSCRIBE of a clean session, its own filters included, asks for QoS 0: a broker
    that keeps nothing for an absent reader is asked to keep nothing (NATS would make a
    replicated consumer per QoS 1 filter)."""
    async with MqttConnector("broker", source_id="s", link=broker) as connector:
        await connector.subscribe("a/#", lambda m: None)
        await connector.subscribe("b/+", lambda m: None)
        link = broker.link
        assert link.subscribe_qos == [0] * len(link.subscribes)
        assert len(link.subscribes) >= 3  # the connector's own, then a/#, then b/+
        assert link.granted["a/#"] == link.granted["b/+"] == 0


async def test_a_persistent_session_subscribes_at_qos_1(broker: FakeBroker) -> None:
    """With ``session_expiry`` the broker must queue QoS 1 messages while the reader is away,
    which it does only for QoS 1 subscriptions: every SUBSCRIBE asks for QoS 1."""
    connector = MqttConnector(
        "broker", source_id="s", client_id="recorder-1", session_expiry=3600, link=broker
    )
    async with connector:
        await connector.subscribe("a/#", lambda m: None)
        link = broker.link
        assert link.subscribe_qos == [1] * len(link.subscribes)
        assert link.granted["a/#"] == 1


@pytest.mark.parametrize("option", ["clean_session", "clean_start"])
async def test_a_session_kept_by_the_clients_own_option_subscribes_at_qos_1(
    broker: FakeBroker, option: str
) -> None:
    """aiomqtt's ``clean_session=False`` (``clean_start=False`` in MQTT 5) keeps the session
    as ``session_expiry`` does: its subscriptions too are at QoS 1."""
    options: dict[str, Any] = {option: False}
    connector = MqttConnector("broker", source_id="s", client_id="kept", link=broker, **options)
    async with connector:
        await connector.subscribe("a/#", lambda m: None)
        assert broker.link.subscribe_qos == [1] * len(broker.link.subscribes)


async def test_the_qos_is_chosen_again_on_every_connection(
    broker: FakeBroker, until: Until
) -> None:
    """Subscriptions remade after a reconnection keep the session's QoS."""
    connector = MqttConnector(
        "broker", source_id="s", backoff_initial=0.001, backoff_max=0.001, link=broker
    )
    async with connector:
        await connector.subscribe("a/#", lambda m: None)
        broker.link.lose()
        await until(lambda: len(broker.links) == 2, "a second connection")
        assert await connector.wait_connected(5)
        await connector.subscribe("barrier", lambda m: None)
        assert broker.link.granted["a/#"] == 0
        assert set(broker.link.subscribe_qos) == {0}


async def test_qos_1_messages_arrive_at_qos_0_on_a_clean_session(broker: FakeBroker) -> None:
    """A QoS 1 publish reaches a QoS 0 subscription at QoS 0 (the lower of the two); retained
    messages and markers too, and a subscription still returns after its retained messages."""
    got: list[Message] = []
    broker.retained["c/1"] = b'{"limit": 2}'
    async with MqttConnector("broker", source_id="s", link=broker) as connector:
        await connector.subscribe("c/#", got.append)
        assert [(m.topic, m.qos, m.retain) for m in got] == [("c/1", 0, True)]
        await connector.publish("c/2", {"limit": 3}, qos=1)
        await connector.flush(5)
        await connector.subscribe("barrier", lambda m: None)
    assert [(m.topic, m.qos) for m in got] == [("c/1", 0), ("c/2", 0)]
