"""A real engine over a real mosquitto: each failed attempt's traceback is published, and the
recorder stores it, into SQLite and into the private PostgreSQL."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from cascade.connectors.mqtt import MqttConnector
from cascade.history import History, Recorder
from cascade.testkit import MosquittoBroker
from cascade.testkit import family_mosquitto_broker as family_mosquitto_broker  # fixture


async def _record_a_failing_run(broker: MosquittoBroker, history: History) -> str:
    """Run a task that fails twice (one retry) while a recorder records; the run's id, once
    the history has the run's end."""
    from cascade.runtime import Engine, RunStarted, TaskFailedError, task
    from cascade.runtime.testing import EventRecorder

    @task(name="load")
    def load(row: int) -> None:
        raise ValueError(f"row {row} has a negative amount")  # the line that raised

    engine = Engine(MqttConnector(broker.host, broker.port, source_id="it-engine"),
                    heartbeat_interval=None)  # fmt: skip
    events = EventRecorder()
    engine.events.subscribe(events)
    async with MqttConnector(broker.host, broker.port, presence=False) as listening:
        recorder = Recorder(listening, history)
        await recorder.start()
        with pytest.raises(TaskFailedError):
            await asyncio.wait_for(engine.run(load.with_retry(max_attempts=2)(3)), 20)
        (started,) = [e for e in events.events if isinstance(e, RunStarted)]
        for _ in range(500):  # the history has no event to await
            await recorder.flush(timeout=5)
            runs = await asyncio.to_thread(history.runs)
            if runs and runs[0].status == "Failed":
                break
            await asyncio.sleep(0.02)
        await recorder.stop()
    return started.run_id


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_a_failed_tasks_tracebacks_are_recorded(
    mosquitto_broker: MosquittoBroker, database_url: str, tmp_path: Path, database: str
) -> None:
    """The history has the traceback of each failed attempt (RETRYING, FAILED), naming the
    line that raised; the task's is its last attempt's."""
    url = database_url if database == "postgresql" else f"sqlite:///{tmp_path / 'h.sqlite3'}"
    with History(url, mode="write") as history:
        run_id = asyncio.run(_record_a_failing_run(mosquitto_broker, history))
        detail = history.run(run_id)
        assert detail is not None
        assert detail.run.status == "Failed"
        (load,) = detail.tasks
        failed = [change for change in load.states if change.traceback is not None]
        assert [(change.state, change.attempt) for change in failed] == [
            ("RETRYING", 1),
            ("FAILED", 2),
        ]
        for change in failed:
            assert change.traceback is not None
            assert change.traceback.startswith("Traceback (most recent call last):\n")
            assert "# the line that raised\n" in change.traceback
            assert change.traceback.endswith("ValueError: row 3 has a negative amount\n")
        assert load.traceback == failed[-1].traceback
