"""`cascade why` against a real broker and a real engine: every wait says why."""

from __future__ import annotations

import asyncio
import json

from typer.testing import CliRunner, Result

from cascade.cli import app
from cascade.connectors.mqtt import MqttConnector
from cascade.runtime import Engine, RunStarted, TaskBlocked, task
from cascade.runtime.testing import EventRecorder
from cascade.testkit import BrokerEndpoint


def cascade(broker: BrokerEndpoint, *args: str) -> Result:
    """`cascade ARGS` in-process against ``broker``."""
    address = ["--host", broker.host, "--port", str(broker.port), "--timeout", "10"]
    return CliRunner().invoke(app, [*args, *address])


async def test_why_names_the_pause_its_issuer_and_reason_and_the_limit(
    mqtt_broker: BrokerEndpoint, scope_name: str
) -> None:
    """A task held by a reasoned pause, another by a full concurrency limit: `why RUN_ID` says
    each (from the run's heartbeat), `why RUN_ID TASK` only that one, and `--json` the holds."""
    held, other = f"{scope_name}_load", f"{scope_name}_api"
    engine = Engine(MqttConnector(mqtt_broker.host, mqtt_broker.port), heartbeat_interval=0.2)
    recorder = EventRecorder()
    engine.events.subscribe(recorder)
    release = asyncio.Event()

    @task(name=held)
    async def load() -> int:
        return 1

    @task(name=other)
    async def api(i: int) -> int:
        await release.wait()
        return i

    # set with the CLI, which keeps the constraints index RabbitMQ's engines read them through
    pause = ["pause", f"task:{held}", "--reason", "warehouse maintenance", "--as", "alice"]
    for args in (pause, ["limit", f"task:{other}", "--concurrency", "1"]):
        result = await asyncio.to_thread(cascade, mqtt_broker, *args)
        assert result.exit_code == 0, result.output
    run = asyncio.create_task(engine.run([load(), api(1), api(2)]))
    try:
        await recorder.until(lambda: sorted(recorder.names(TaskBlocked)) == [other, held])
        (started,) = [e for e in recorder.events if isinstance(e, RunStarted)]
        answer = await asyncio.to_thread(cascade, mqtt_broker, "why", started.run_id)
        assert answer.exit_code == 0, answer.output
        lines = answer.stdout.splitlines()
        assert lines[0].startswith(f"run {started.run_id[:12]} (")
        assert "Running" in lines[0]
        (load_line,) = [line for line in lines if line.startswith(f"  {held} (")]
        assert "pause on task:" + held + ' by alice "warehouse maintenance"' in load_line
        (api_line,) = [line for line in lines if line.startswith(f"  {other} (")]
        assert f"concurrency 1/1 on task:{other} (running: 1 {other})" in api_line

        only = await asyncio.to_thread(
            cascade, mqtt_broker, "why", started.run_id[:12], held, "--json"
        )
        assert only.exit_code == 0, only.output
        (listed,) = json.loads(only.stdout)["runs"]
        assert [t["task_name"] for t in listed["blocked"]] == [held]
        assert listed["blocked"][0]["held_by"] == [
            {"type": "pause", "scope": f"task:{held}", "reason": "warehouse maintenance",
             "issued_by": "alice"}
        ]  # fmt: skip
    finally:
        for scope in (held, other):
            await asyncio.to_thread(cascade, mqtt_broker, "resume", f"task:{scope}")
        release.set()
        assert await asyncio.wait_for(run, 15) == [1, 1, 2]


async def test_why_names_the_system_resource_a_task_waits_for_and_who_holds_it(
    mqtt_broker: BrokerEndpoint, scope_name: str
) -> None:
    """Two tasks asking for the one GPU: `why RUN_ID` (from the run's heartbeat, over the
    broker) says the second waits for gpu_slots, held by the first."""
    name = f"{scope_name}_train"
    engine = Engine(
        MqttConnector(mqtt_broker.host, mqtt_broker.port),
        heartbeat_interval=0.2,
        system_resources={"gpu_slots": 1},
    )
    recorder = EventRecorder()
    engine.events.subscribe(recorder)
    release = asyncio.Event()

    @task(name=name)
    async def train(i: int) -> int:
        await release.wait()
        return i

    first, second = (train.with_constraints(gpu_slots=1)(i) for i in (1, 2))
    run = asyncio.create_task(engine.run([first, second]))
    try:
        await recorder.until(lambda: recorder.names(TaskBlocked) == [name])
        (started,) = [e for e in recorder.events if isinstance(e, RunStarted)]
        answer = await asyncio.to_thread(cascade, mqtt_broker, "why", started.run_id)
        assert answer.exit_code == 0, answer.output
        (line,) = [line for line in answer.stdout.splitlines() if f"({second.task_id})" in line]
        assert f"resource:gpu_slots needs 1 (1 of 1 in use by {first.task_id})" in line
    finally:
        release.set()
        assert await asyncio.wait_for(run, 15) == [1, 2]
