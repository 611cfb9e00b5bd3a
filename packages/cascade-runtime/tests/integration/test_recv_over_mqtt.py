"""Over a real broker: ``cs.recv`` waits for a message a plain MQTT client sends on the run's
``{prefix}/signal/{org}/{project}/{topic}``, and takes a retained one at once."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiomqtt

import cascade.runtime as cs
from cascade.connectors.mqtt import MqttConnector
from cascade.runtime import Engine
from cascade.testkit import BrokerEndpoint


class Listening(MqttConnector):
    """The engine's connector, telling the test once ``recv``'s subscription is acknowledged
    (its ``subscribe`` returns after the broker's SUBACK)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.listening = asyncio.Event()

    async def subscribe(self, topic_filter: str, callback: Any, **kwargs: Any) -> Any:
        handle = await super().subscribe(topic_filter, callback, **kwargs)
        if "/signal/" in topic_filter:
            self.listening.set()
        return handle


async def test_recv_takes_a_plain_clients_message_for_its_project(
    mqtt_broker: BrokerEndpoint, prefix: str, plain_client: aiomqtt.Client
) -> None:
    """A message on another project's topic leaves ``recv`` waiting; the run's project's
    wakes it with its payload."""
    connector = Listening(mqtt_broker.host, mqtt_broker.port, topic_prefix=prefix)
    engine = Engine(connector, org_id="acme", project_id="team.one", heartbeat_interval=None)
    run = asyncio.create_task(engine.run(cs.recv("approvals/deploy", timeout=30)))
    await asyncio.wait_for(connector.listening.wait(), 20)
    elsewhere = (
        f"{prefix}/signal/acme/team%2Etwo/approvals/deploy"  # encoded too: NATS refuses a "."
    )
    ours = f"{prefix}/signal/acme/team%2Eone/approvals/deploy"  # the project's level encoded
    await plain_client.publish(elsewhere, json.dumps({"by": "mallory"}), qos=1)
    await plain_client.publish(ours, json.dumps({"by": "alice"}), qos=1)
    assert await asyncio.wait_for(run, 20) == {"by": "alice"}


async def test_a_retained_signal_is_taken_at_once(
    mqtt_broker: BrokerEndpoint, prefix: str, plain_client: aiomqtt.Client
) -> None:
    """A retained message set before the run is ``recv``'s as it subscribes."""
    topic = f"{prefix}/signal/local/default/go"
    await plain_client.publish(topic, json.dumps({"go": True}), qos=1, retain=True)
    try:
        connector = MqttConnector(mqtt_broker.host, mqtt_broker.port, topic_prefix=prefix)
        engine = Engine(connector, heartbeat_interval=None)
        assert await asyncio.wait_for(engine.run(cs.recv("go", timeout=20)), 30) == {"go": True}
    finally:
        await plain_client.publish(topic, b"", qos=1, retain=True)


async def test_a_signal_over_the_bound_is_not_taken(
    mqtt_broker: BrokerEndpoint, prefix: str, plain_client: aiomqtt.Client
) -> None:
    """A plain client's 2 MB signal does not reach ``recv`` (64 KiB is the signal's bound):
    counted, and ``recv`` takes the next one within the bound."""
    connector = Listening(mqtt_broker.host, mqtt_broker.port, topic_prefix=prefix)
    engine = Engine(connector, org_id="acme", project_id="ops", heartbeat_interval=None)
    run = asyncio.create_task(engine.run(cs.recv("approvals/deploy", timeout=30)))
    await asyncio.wait_for(connector.listening.wait(), 20)
    topic = f"{prefix}/signal/acme/ops/approvals/deploy"
    await plain_client.publish(topic, json.dumps({"by": "mallory", "pad": "x" * 2_000_000}), qos=1)
    await plain_client.publish(topic, json.dumps({"by": "alice"}), qos=1)
    assert await asyncio.wait_for(run, 20) == {"by": "alice"}
    assert engine.stats.signals_rejected == 1
