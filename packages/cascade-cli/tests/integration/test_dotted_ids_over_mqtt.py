"""Ids with dots over a real broker: an engine named ``worker1.example.com`` in the project
``team.one`` (NATS closes the connection of a client that puts a ``.`` in a topic: every
level built from an id is percent-encoded, and readers decode it)."""

from __future__ import annotations

import asyncio
import json

import pytest
from typer.testing import CliRunner, Result

from cascade.cli import app
from cascade.connectors.mqtt import MqttConnector
from cascade.interfaces import Message, decode_envelope, status_topic, telemetry_filter
from cascade.interfaces.summaries import summary_topic
from cascade.runtime import Engine, TaskBlocked, TaskRunning, task
from cascade.runtime.testing import EventRecorder, eventually
from cascade.testkit import BrokerEndpoint

SOURCE = "worker1.example.com"
PROJECT = "team.one"


def cascade(broker: BrokerEndpoint, *args: str) -> Result:
    """Run `cascade ARGS --host H --port P` in-process with the real MQTT connector."""
    address = ["--host", broker.host, "--port", str(broker.port), "--timeout", "10"]
    return CliRunner().invoke(app, [*args, *address])


def _engines(broker: BrokerEndpoint) -> dict[str, dict[str, object]]:
    result = cascade(broker, "status", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    return {str(e["source"]): e for e in data["engines"]}


async def _forget(broker: BrokerEndpoint) -> None:
    """Clear what the engine retains (its status and summary) on the shared broker."""
    async with MqttConnector(broker.host, broker.port, presence=False) as tool:
        for topic in (status_topic(SOURCE), summary_topic(SOURCE)):
            await tool.publish(topic, b"", qos=1, retain=True)
        await tool.flush(5)


@pytest.mark.parametrize("sourced", [False, True], ids=["unsourced", "sourced"])
def test_an_engine_with_dotted_ids_is_heard_shown_and_paused(
    mqtt_broker: BrokerEndpoint, scope_name: str, sourced: bool
) -> None:
    """Its telemetry arrives (on ``.../team%2Eone/...``, naming its source), `cascade status`
    shows it by its id, and a `cascade pause` acknowledged by the broker holds its next task
    until `cascade resume`."""
    scope = f"task:{scope_name}"

    async def scenario() -> None:
        heard: asyncio.Queue[Message] = asyncio.Queue()
        reader = MqttConnector(mqtt_broker.host, mqtt_broker.port, presence=False)
        await reader.subscribe(telemetry_filter(project_id=PROJECT), heard.put_nowait)
        await reader.connect()
        connector = MqttConnector(
            mqtt_broker.host, mqtt_broker.port, source_id=SOURCE, sourced_topics=sourced
        )
        engine = Engine(connector, project_id=PROJECT, heartbeat_interval=None)
        recorder = EventRecorder()
        engine.events.subscribe(recorder)
        gate = asyncio.Event()

        @task(name=f"{scope_name}_first")
        async def first() -> int:
            await gate.wait()
            return 1

        @task(name=scope_name)
        async def held(value: int) -> int:
            return value + 1

        run = asyncio.create_task(engine.run(held(first())))
        try:
            message = await asyncio.wait_for(heard.get(), 15)
            assert "/team%2Eone/" in message.topic
            assert message.topic.endswith("/worker1%2Eexample%2Ecom") is sourced
            envelope = decode_envelope(message.raw)
            assert (envelope.source, envelope.project_id) == (SOURCE, PROJECT)

            engines = await asyncio.to_thread(_engines, mqtt_broker)
            assert engines[SOURCE]["status"] == "online"

            paused = await asyncio.to_thread(cascade, mqtt_broker, "pause", scope)
            assert paused.exit_code == 0, paused.output
            await eventually(lambda: any(c.scope == scope for c in engine.constraints), 15)
            gate.set()
            await recorder.until(lambda: scope_name in recorder.names(TaskBlocked), timeout=15)
            assert scope_name not in recorder.names(TaskRunning)

            resumed = await asyncio.to_thread(cascade, mqtt_broker, "resume", scope)
            assert resumed.exit_code == 0, resumed.output
            assert await asyncio.wait_for(run, 15) == 2
        finally:
            gate.set()
            if not run.done():
                run.cancel()
            await asyncio.gather(run, return_exceptions=True)
            await reader.disconnect()
            await asyncio.to_thread(cascade, mqtt_broker, "resume", scope)
            await _forget(mqtt_broker)

    asyncio.run(scenario())
