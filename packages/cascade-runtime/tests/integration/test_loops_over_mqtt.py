"""A loop over a real broker: a plain MQTT client sees each iteration as a task of its own
(``<loop's id>@n``, of the name of the task it calls) and the loop's own task complete last;
a pause of that name, published retained by the client, holds the next iteration until the
client clears it."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiomqtt
import msgspec

from cascade.connectors.mqtt import MqttConnector
from cascade.interfaces import Constraint, constraint_topic
from cascade.runtime import Engine, Jump, TaskBlocked, bind, select_jump, task
from cascade.runtime.testing import EventRecorder, eventually
from cascade.testkit import BrokerEndpoint


async def test_a_plain_client_sees_each_iteration_and_pauses_the_next(
    mqtt_broker: BrokerEndpoint, prefix: str, plain_client: aiomqtt.Client
) -> None:
    third, paused = asyncio.Event(), asyncio.Event()

    @task(name="tick")
    async def tick(n: int) -> Any:
        if n == 2:  # the third call waits until the engine has the pause: the next one is held
            third.set()
            await paused.wait()
        return n * 10 if n == 4 else Jump("again", n + 1)

    connector = MqttConnector(
        mqtt_broker.host, mqtt_broker.port, topic_prefix=prefix, source_id="it-loops"
    )
    engine = Engine(connector, heartbeat_interval=None)
    recorder = EventRecorder()
    engine.events.subscribe(recorder)
    received: list[dict[str, Any]] = []
    arrived = asyncio.Event()

    async def read() -> None:
        async for message in plain_client.messages:
            assert isinstance(message.payload, bytes)
            if str(message.topic).endswith("/events"):
                received.append(json.loads(message.payload)["body"])
                arrived.set()

    async def until(predicate: Any) -> None:
        async def wait() -> None:
            while not predicate():
                arrived.clear()
                await arrived.wait()

        await asyncio.wait_for(wait(), 15)

    def states(task_id: str) -> list[str]:
        return [b["state"] for b in received if b.get("task_id") == task_id]

    await plain_client.subscribe(f"{prefix}/telemetry/#", qos=1)
    reader = asyncio.create_task(read())
    loop = tick(0)
    bind(loop, select_jump({"again": loop}))
    pause_topic = constraint_topic("task:tick", "pause", prefix)
    run = asyncio.create_task(engine.run(loop))
    try:
        await third.wait()
        pause = msgspec.json.encode(Constraint.pause("task:tick"))
        await plain_client.publish(pause_topic, pause, qos=1, retain=True)
        await eventually(lambda: engine.stats.accepted >= 1)
        paused.set()
        await recorder.until(lambda: any(isinstance(e, TaskBlocked) for e in recorder.events))
        (held,) = {e.task_id for e in recorder.events if isinstance(e, TaskBlocked)}
        assert held.startswith(f"{loop.task_id}@")
        await until(lambda: "BLOCKED" in states(held))
        assert not run.done()
        await plain_client.publish(pause_topic, b"", qos=1, retain=True)
        assert await asyncio.wait_for(run, 15) == 40
        iterations = [f"{loop.task_id}@{n}" for n in range(2, 6)]
        await until(lambda: states(loop.task_id)[-1:] == ["COMPLETED"])
        for iteration in iterations:
            assert states(iteration)[-1] == "COMPLETED", (iteration, states(iteration))
        names = {b["task_id"]: b["task_name"] for b in received if "task_id" in b}
        assert {names[i] for i in iterations} == {"tick"}
        assert states(loop.task_id) == ["RUNNING", "COMPLETED"]  # running until its last
    finally:
        run.cancel()
        reader.cancel()
        await asyncio.gather(run, reader, return_exceptions=True)
