"""The history's owner of a run over a real broker (issue 46's attack): a forger's event under
its own name, heard by a recorder that joins a live run before the engine's next word, no longer
makes the forger the run's owner; the engine (online by its status) takes the run over, and
`cascade cancel RUN --db` takes the engine's answer."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from cascade.cli import app
from cascade.connector_kit.testing import telemetry
from cascade.connectors.mqtt import MqttConnector
from cascade.history import History, Recorder
from cascade.interfaces import TaskStateEvent
from cascade.runtime import Engine, RunCancelledError, RunStarted, TaskRunning, task
from cascade.runtime.testing import EventRecorder
from cascade.testkit import BrokerEndpoint


def _cancel(broker: BrokerEndpoint, run_id: str, db: Path) -> Result:
    address = ["--host", broker.host, "--port", str(broker.port), "--timeout", "10"]
    return CliRunner().invoke(app, ["cancel", run_id, "--db", str(db), *address])


async def _until(condition: object, timeout: float = 10) -> None:
    async def wait() -> None:
        while not condition():  # type: ignore[operator]  # noqa: ASYNC110
            await asyncio.sleep(0.05)

    try:
        await asyncio.wait_for(wait(), timeout)
    except TimeoutError:
        raise AssertionError(condition.__doc__) from None


async def test_a_forger_heard_first_does_not_own_the_run_in_the_history(
    mqtt_broker: BrokerEndpoint, scope_name: str, tmp_path: Path
) -> None:
    """The forger's event comes first (nothing vouches for mallory); the engine's next word
    (its answer to the recorder, which joined late, or its next event), online by its status,
    takes the run over, and the cancel's answer from the engine is taken: exit 0. Mallory's
    event is kept apart under its name (set aside if it was written before the engine spoke,
    else refused)."""
    go = asyncio.Event()

    @task(name=f"{scope_name}_waits")
    async def waits() -> int:
        await asyncio.Event().wait()
        return 0

    @task(name=f"{scope_name}_goes")
    async def goes() -> int:
        await go.wait()
        return 1

    source, mallory = f"engine-{scope_name}", f"mallory-{scope_name}"
    engine = Engine(
        MqttConnector(mqtt_broker.host, mqtt_broker.port, source_id=source),
        heartbeat_interval=None,
    )
    events = EventRecorder()
    engine.events.subscribe(events)
    db = tmp_path / "history.sqlite3"
    run = asyncio.create_task(engine.run([waits(), goes()]))
    try:
        await events.until(lambda: len(events.names(TaskRunning)) == 2)
        (started,) = [e for e in events.events if isinstance(e, RunStarted)]
        run_id = started.run_id
        with History(db, mode="write") as history:
            async with (
                MqttConnector(mqtt_broker.host, mqtt_broker.port, presence=False) as listening,
                MqttConnector(mqtt_broker.host, mqtt_broker.port, presence=False) as forger,
            ):
                recorder = Recorder(listening, history)
                await recorder.start()
                forged = telemetry(
                    TaskStateEvent(task_id="evil", task_name="evil", state="FAILED", error="x"),
                    run_id=run_id, source=mallory, seq=40,
                )  # fmt: skip
                await forger.publish(forged.topic, forged.payload, qos=1)
                go.set()  # the engine speaks of the run again
                await _until(lambda: [run.source for run in history.runs()] == [source])
                said = await asyncio.to_thread(_cancel, mqtt_broker, run_id, db)
                with pytest.raises(RunCancelledError):
                    await asyncio.wait_for(run, 10)
                await recorder.flush(timeout=5)
                await recorder.stop()
            [recorded] = history.runs()
    finally:
        run.cancel()
    assert said.exit_code == 0, said.output
    assert said.stdout.startswith(f"cancelled run {run_id} on {source}")
    assert (recorded.source, recorded.vouched) == (source, "online")
    [claim] = recorded.claims
    assert (claim.source, claim.refused + claim.set_aside) == (mallory, 1)
