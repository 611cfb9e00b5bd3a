"""An engine's summary on a real broker: retained after the run, read by a plain client."""

from __future__ import annotations

import asyncio
import json

import aiomqtt

from cascade.connectors.mqtt import MqttConnector
from cascade.interfaces.summaries import decode_summary, summary_filter, summary_topic
from cascade.runtime import Engine, TaskRunning, task
from cascade.runtime.testing import EventRecorder
from cascade.testkit import BrokerEndpoint, broker_family


@task
async def double(x: int) -> int:
    return x * 2


@task
def total(values: list[int]) -> int:
    return sum(values)


async def test_a_stopped_engine_leaves_its_final_summary_retained(
    mqtt_broker: BrokerEndpoint, prefix: str
) -> None:
    """After the run (and the engine's disconnect), a client that arrives reads the retained
    summary: the run's end and its tasks' counts."""
    connector = MqttConnector(
        mqtt_broker.host, mqtt_broker.port, topic_prefix=prefix, source_id="it-summary"
    )
    engine = Engine(connector, heartbeat_interval=None, org_id="acme", project_id="etl")
    assert await engine.run(total([double(i) for i in range(4)])) == 12
    # RabbitMQ 3.x sends a retained message to an exact subscription only
    topic = summary_topic("it-summary", prefix)
    wanted = summary_filter(prefix) if broker_family() == "mosquitto" else topic
    async with aiomqtt.Client(mqtt_broker.host, mqtt_broker.port) as client:
        await client.subscribe(wanted, qos=1)

        async def first() -> aiomqtt.Message:
            async for message in client.messages:
                return message
            raise AssertionError("the subscription ended")

        message = await asyncio.wait_for(first(), 15)
    assert str(message.topic) == topic
    assert message.retain
    assert isinstance(message.payload, bytes)
    summary = decode_summary(message.payload)
    assert (summary.source, summary.runs.succeeded, summary.runs.running) == ("it-summary", 1, 0)
    assert (summary.tasks.completed, summary.events) == (5, 12)
    (run,) = summary.listed
    assert (run.org_id, run.project_id, run.status, run.planned) == ("acme", "etl", "Succeeded", 5)
    assert json.loads(message.payload)["source"] == "it-summary"
    # cleared, so that the shared broker keeps nothing of this test
    async with aiomqtt.Client(mqtt_broker.host, mqtt_broker.port) as client:
        await client.publish(topic, b"", qos=1, retain=True)


@task
async def held(gate: asyncio.Event) -> int:
    await gate.wait()
    return 1


async def test_a_reader_that_arrives_mid_run_gets_the_live_summary(
    mqtt_broker: BrokerEndpoint, prefix: str
) -> None:
    """Retained through ``summary/+``, or, where the broker sends retained messages to exact
    subscriptions only, by the engine's answer to the reader's roll call."""
    connector = MqttConnector(
        mqtt_broker.host, mqtt_broker.port, topic_prefix=prefix, source_id="it-live"
    )
    gate = asyncio.Event()
    engine = Engine(connector, heartbeat_interval=None)
    recorder = EventRecorder()
    engine.events.subscribe(recorder)
    run = asyncio.ensure_future(engine.run(held(gate)))
    seen: asyncio.Queue[bytes] = asyncio.Queue()
    reader = MqttConnector(mqtt_broker.host, mqtt_broker.port, topic_prefix=prefix, presence=False)
    try:
        await recorder.until(lambda: any(isinstance(e, TaskRunning) for e in recorder.events))
        await reader.connect(require=True)
        await reader.subscribe(summary_filter(prefix), lambda m: seen.put_nowait(m.raw))
        if reader.capabilities.retained_to_wildcards is False:
            await reader.publish(f"{prefix}/rollcall", {"rollcall": 1}, qos=1)

        async def live() -> None:
            while decode_summary(await seen.get()).runs.running != 1:
                pass

        await asyncio.wait_for(live(), 15)
    finally:
        gate.set()
        await run
        await reader.disconnect()
    async with aiomqtt.Client(mqtt_broker.host, mqtt_broker.port) as client:
        await client.publish(summary_topic("it-live", prefix), b"", qos=1, retain=True)
