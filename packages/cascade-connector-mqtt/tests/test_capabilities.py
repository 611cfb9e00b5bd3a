"""What the connector learns of the broker: retained messages for wildcard subscriptions."""

from __future__ import annotations

import asyncio

import pytest

from cascade.connectors.mqtt import MqttConnector
from cascade.connectors.mqtt.testing import Inbox
from cascade.connectors.mqtt.testing._fake_client import FakeClient, FakeMqtt


@pytest.mark.parametrize("sends", [True, False])
async def test_the_first_connection_learns_whether_wildcards_get_retained_messages(
    fake_mqtt: FakeMqtt, sends: bool
) -> None:
    """Known once connected and subscribed; the probe is cleared and its filter dropped."""
    FakeClient.retained_to_wildcards = sends
    connector = MqttConnector("broker", source_id="s", link=fake_mqtt.link)
    before = connector.capabilities
    assert before.retained_to_wildcards is None
    async with connector:
        await connector.subscribe("t/#", lambda m: None)  # returns once its marker is back
        assert connector.capabilities.retained_to_wildcards is sends
        client = fake_mqtt.client
        assert not [t for t in client.retained if "/probe" in t]  # cleared
        (probe_filter,) = client.unsubscribed
        assert probe_filter.endswith("/+")
        assert probe_filter not in client.filters


async def test_the_probe_is_made_once_and_never_dispatched(fake_mqtt: FakeMqtt) -> None:
    """A reconnection does not probe again, and a '#' subscriber never sees the probe."""
    everything = Inbox()
    connector = MqttConnector(
        "broker", source_id="s", backoff_initial=0.001, backoff_max=0.001, link=fake_mqtt.link
    )
    await connector.subscribe("#", everything)
    async with connector:
        await connector.subscribe("t/x", lambda m: None)
        fake_mqtt.client.lose(None)
        for _ in range(1000):  # yield until the supervisor has made the next connection
            if len(fake_mqtt.clients) == 2 and connector.is_connected:
                break
            await asyncio.sleep(0)
        await connector.subscribe("t/y", lambda m: None)
        assert len(fake_mqtt.clients) == 2
        second = fake_mqtt.clients[1]
        assert not [f for f in second.filters + second.unsubscribed if f.endswith("/+")]
    assert not [m for m in everything.all if "/_marker/" in m.topic]
