"""A map over a real broker: a plain MQTT client sees the map's RUNNING with how many items it
made, each item as a task of its own (``<map's id>[i]``), and retries a held item by its id on
the run's decide topic; the run succeeds with every item's result."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiomqtt

from cascade.connectors.mqtt import MqttConnector
from cascade.interfaces.commands import decide_topic, reply_topic
from cascade.runtime import Engine, RunStarted, TaskHeld, task
from cascade.runtime.testing import EventRecorder
from cascade.testkit import BrokerEndpoint


async def test_a_plain_client_sees_a_maps_items_and_retries_one_by_its_id(
    mqtt_broker: BrokerEndpoint, prefix: str, plain_client: aiomqtt.Client
) -> None:
    tries: dict[int, int] = {}

    @task(name="rows")
    async def rows(n: int) -> list[int]:
        return list(range(n))

    @task(name="load", on_failure="hold")
    async def load(row: int) -> int:
        tries[row] = tries.get(row, 0) + 1
        if row == 2 and tries[row] == 1:
            raise ConnectionError("the API is down")
        return row * 10

    connector = MqttConnector(
        mqtt_broker.host, mqtt_broker.port, topic_prefix=prefix, source_id="it-engine"
    )
    engine = Engine(connector, heartbeat_interval=None)
    recorder = EventRecorder()
    engine.events.subscribe(recorder)
    received: list[tuple[str, Any]] = []
    arrived = asyncio.Event()

    async def read() -> None:
        async for message in plain_client.messages:
            assert isinstance(message.payload, bytes)
            received.append((str(message.topic), json.loads(message.payload)))
            arrived.set()

    async def until(predicate: Any) -> None:
        async def wait() -> None:
            while not predicate():
                arrived.clear()
                await arrived.wait()

        await asyncio.wait_for(wait(), 15)

    def bodies() -> list[dict[str, Any]]:
        return [p["body"] for t, p in received if t.endswith("/events")]

    await plain_client.subscribe(f"{prefix}/telemetry/#", qos=1)
    await plain_client.subscribe(f"{prefix}/reply/#", qos=1)
    reader = asyncio.create_task(read())
    mapped = load.map(row=rows(4))
    try:
        run = asyncio.create_task(engine.run(mapped))
        await recorder.until(lambda: any(isinstance(e, TaskHeld) for e in recorder.events))
        (run_id,) = [e.run_id for e in recorder.events if isinstance(e, RunStarted)]
        held_id = f"{mapped.task_id}[2]"
        await until(
            lambda: any(
                b.get("task_id") == held_id and b.get("state") == "BLOCKED" for b in bodies()
            )
        )
        request = {
            "id": "plain-item-1",
            "run_id": run_id,
            "task": held_id,
            "decision": "retry",
            "issued_by": "alice",
        }
        await plain_client.publish(
            decide_topic(engine.org_id, engine.project_id, run_id, prefix),
            json.dumps(request),
            qos=1,
        )
        assert await asyncio.wait_for(run, 15) == [0, 10, 20, 30]
        await until(lambda: any(b.get("event") == "ENGINE_STOPPED" for b in bodies()))
    finally:
        reader.cancel()
    answers = reply_topic(engine.org_id, "plain-item-1", "it-engine", prefix)
    (reply,) = [p for t, p in received if t == answers]
    assert (reply["outcome"], reply["task_id"], reply["task_name"]) == ("applied", held_id, "load")
    (made,) = [b for b in bodies() if "items" in b]
    assert (made["task_id"], made["task_name"], made["state"], made["items"]) == (
        mapped.task_id,
        "load",
        "RUNNING",
        4,
    )
    completed = {b["task_id"] for b in bodies() if b.get("state") == "COMPLETED"}
    assert {f"{mapped.task_id}[{i}]" for i in range(4)} | {mapped.task_id} <= completed
    assert {b["task_name"] for b in bodies() if "[" in b.get("task_id", "")} == {"load"}
