"""A task waiting for a worker, over a real mosquitto: on the wire a BLOCKED state with a hold of
type queued (a state the existing tools know), in the reader model QUEUED, then
RUNNING when its thread starts it, its duration from then."""

from __future__ import annotations

import asyncio
import threading
import time

from cascade.connector_kit import bounded
from cascade.connectors.mqtt import MqttConnector
from cascade.interfaces import Message, telemetry_filter
from cascade.reader import ReaderModel
from cascade.runtime import Engine, ThreadExecutor, task
from cascade.testkit import MosquittoBroker

_TASKS = ("one", "two")


async def test_a_task_waiting_for_a_thread_is_queued_then_running(
    mosquitto_broker: MosquittoBroker,
) -> None:
    broker = mosquitto_broker
    gates = {name: threading.Event() for name in _TASKS}
    ran: dict[str, float] = {}

    @task
    def hold(name: str) -> str:
        began = time.perf_counter()
        assert gates[name].wait(20)
        ran[name] = (time.perf_counter() - began) * 1000
        return name

    state = ReaderModel()
    bodies: list[dict[str, object]] = []
    changed = asyncio.Event()

    def apply(message: Message) -> None:
        state.apply(message)
        body = message.payload.get("body")
        if message.topic.endswith("/events") and isinstance(body, dict) and "task_id" in body:
            bodies.append(body)
        changed.set()

    async def until(predicate: object) -> None:
        async with bounded(20):
            while not predicate():  # type: ignore[operator]
                changed.clear()
                await changed.wait()

    async with MqttConnector(broker.host, broker.port, presence=False) as view:
        await view.subscribe(telemetry_filter(), apply)
        engine = Engine(
            MqttConnector(broker.host, broker.port, source_id="queued-engine"),
            executor=ThreadExecutor(1),
            heartbeat_interval=None,
        )
        run = asyncio.create_task(engine.run([hold("one"), hold("two")]))
        try:
            await until(lambda: sum(1 for b in bodies if b["state"] == "BLOCKED") == 1)
            (queued,) = [b for b in bodies if b["state"] == "BLOCKED"]
            qid = queued["task_id"]
            assert queued["held_by"] == [{"type": "queued", "executor": "threads", "workers": 1}]
            assert queued["duration_ms"] == 0.0
            first = next(b for b in bodies if b["state"] == "RUNNING")
            assert first["task_id"] != queued["task_id"]
            await until(lambda: _state(state, queued["task_id"]) == "QUEUED")
            (run_view,) = state.runs.values()
            (task_view,) = [t for t in run_view.active_tasks() if t.state == "QUEUED"]
            assert [hold.type for hold in task_view.held_by or ()] == ["queued"]
            # the first task's thread ends: the second starts, RUNNING only now
            gates["one"].set()
            await until(lambda: _state(state, queued["task_id"]) == "RUNNING")
            gates["two"].set()
            assert await run == ["one", "two"]
        finally:
            for gate in gates.values():
                gate.set()
        await until(lambda: [b["state"] for b in bodies if b["task_id"] == qid][-1] == "COMPLETED")
    (done,) = [b for b in bodies if b["state"] == "COMPLETED" and b["task_id"] == queued["task_id"]]
    assert ran["two"] - 5 <= float(done["duration_ms"]) <= ran["two"] + 100  # type: ignore[arg-type]
    said = [b["state"] for b in bodies if b["task_id"] == queued["task_id"]]
    assert said == ["BLOCKED", "RUNNING", "COMPLETED"]


def _state(model: ReaderModel, task_id: object) -> str | None:
    for run in model.runs.values():
        task = run.tasks.get(str(task_id))
        if task is not None:
            return task.state
    return None
