"""A task held for a decision over a real broker: a plain MQTT client sees it BLOCKED with a
decision hold, publishes a retry on the run's decide topic, gets the answer; the run succeeds."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import aiomqtt

from cascade.connectors.mqtt import MqttConnector
from cascade.interfaces.commands import decide_topic, reply_topic
from cascade.runtime import Engine, RunStarted, TaskHeld, task
from cascade.runtime.testing import EventRecorder
from cascade.testkit import BrokerEndpoint


async def test_a_plain_client_retries_a_held_task_and_the_run_succeeds(
    mqtt_broker: BrokerEndpoint, prefix: str, plain_client: aiomqtt.Client
) -> None:
    calls = 0

    @task(name="load", on_failure="hold")
    async def load(n: int) -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("the API is down")
        return n * 2

    @task(name="report")
    async def report(value: int) -> str:
        return f"report of {value}"

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

    def held_events() -> list[Any]:
        return [
            p["body"]
            for t, p in received
            if t.endswith("/events") and p["body"].get("task_name") == "load"
            and p["body"].get("state") == "BLOCKED"
        ]  # fmt: skip

    await plain_client.subscribe(f"{prefix}/telemetry/#", qos=1)
    await plain_client.subscribe(f"{prefix}/reply/#", qos=1)
    reader = asyncio.create_task(read())
    try:
        run = asyncio.create_task(engine.run(report(load(4))))
        await recorder.until(lambda: any(isinstance(e, TaskHeld) for e in recorder.events))
        (run_id,) = [e.run_id for e in recorder.events if isinstance(e, RunStarted)]
        await until(lambda: bool(held_events()))
        (held,) = held_events()
        assert held["error"] == "ConnectionError: the API is down"
        assert [h["type"] for h in held["held_by"]] == ["decision"]
        assert held["held_by"][0]["attempt"] == 1
        request = {
            "id": "plain-1",
            "run_id": run_id,
            "task": "load",
            "decision": "retry",
            "attempt": 1,
            "issued_by": "alice",
            "reason": "the API is back",
        }
        await plain_client.publish(
            decide_topic(engine.org_id, engine.project_id, run_id, prefix),
            json.dumps(request),
            qos=1,
        )
        answer_topic = reply_topic(engine.org_id, "plain-1", "it-engine", prefix)
        await until(lambda: any(t == answer_topic for t, _ in received))
        assert await asyncio.wait_for(run, 15) == "report of 8"
    finally:
        reader.cancel()
    (reply,) = [p for t, p in received if t == answer_topic]
    assert reply["outcome"] == "applied"
    assert (reply["task_name"], reply["attempt"], reply["source"]) == ("load", 1, "it-engine")
    assert reply["decided"]["by"] == "alice"
    assert reply["decided"]["decision"] == "retry"
    assert calls == 2


async def test_decisions_arriving_as_and_after_one_ends_the_run_are_each_answered(
    mqtt_broker: BrokerEndpoint, prefix: str, plain_client: aiomqtt.Client
) -> None:
    """Sixteen decisions at once on one held task whose first ends the run, then four more once
    it has ended: every one is answered, one applied, the rest already decided; counted."""
    calls = 0

    @task(name="load", on_failure="hold")
    async def load() -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("the API is down")
        return 2

    connector = MqttConnector(
        mqtt_broker.host, mqtt_broker.port, topic_prefix=prefix, source_id="it-engine"
    )
    engine = Engine(connector, heartbeat_interval=None)
    recorder = EventRecorder()
    engine.events.subscribe(recorder)
    answers: dict[str, dict[str, Any]] = {}
    arrived = asyncio.Event()

    async def read() -> None:
        async for message in plain_client.messages:
            assert isinstance(message.payload, bytes)
            answer = json.loads(message.payload)
            answers[answer["id"]] = answer
            arrived.set()

    async def answered(count: int) -> None:
        while len(answers) < count:
            arrived.clear()
            await arrived.wait()

    kinds = ["retry", "skip", "fail", "complete"]
    await plain_client.subscribe(f"{prefix}/reply/#", qos=1)
    reader = asyncio.create_task(read())
    async with connector:  # a connection that outlives the run, as a serving engine's does
        run = asyncio.create_task(engine.run(load()))
        try:
            await recorder.until(lambda: any(isinstance(e, TaskHeld) for e in recorder.events))
            (run_id,) = [e.run_id for e in recorder.events if isinstance(e, RunStarted)]
            topic = decide_topic(engine.org_id, engine.project_id, run_id, prefix)

            async def decide(n: int, attempt: int | None) -> None:
                request: dict[str, Any] = {"id": f"d-{n}", "run_id": run_id, "task": "load"}
                request.update(decision=kinds[n % 4], issued_by=f"op-{n}")
                if attempt is not None:
                    request["attempt"] = attempt
                await plain_client.publish(topic, json.dumps(request), qos=1)

            await asyncio.gather(*(decide(n, 1) for n in range(16)))
            with contextlib.suppress(Exception):
                await asyncio.wait_for(run, 15)  # the first decision ended it, however
            await asyncio.gather(*(decide(n, None) for n in range(16, 20)))
            await asyncio.wait_for(answered(20), 15)
        finally:
            run.cancel()
            reader.cancel()
    applied = [a for a in answers.values() if a["outcome"] == "applied"]
    assert len(applied) == 1
    first = applied[0]["decided"]
    refused = [a for a in answers.values() if a is not applied[0]]
    assert {a["outcome"] for a in refused} == {"already_decided"}
    assert {a["decided"]["id"] for a in refused} == {first["id"]}
    assert {a["task_id"] for a in answers.values()} == {applied[0]["task_id"]}
    assert (engine.stats.decisions, engine.stats.decisions_refused) == (1, 19)
