"""The recorder on a real mosquitto stores the task log batches an engine publishes, into SQLite
and into the private PostgreSQL: each line once, a copy of a batch a duplicate."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from cascade.connectors.mqtt import MqttConnector
from cascade.history import History, Recorder
from cascade.interfaces.logs import logs_filter, logs_topic
from cascade.testkit import MosquittoBroker
from cascade.testkit import family_mosquitto_broker as family_mosquitto_broker  # fixture

from ..logs import batch, line

RUN = "run-logs-mqtt"
BATCHES = 20
LINES = 50


async def _record_published(broker: MosquittoBroker, history: History) -> Recorder:
    """Publish BATCHES batches of LINES lines, the first twice, while recording, until the
    last is stored (QoS 1 on one connection: in order, so the copy came before)."""
    async with MqttConnector(broker.host, broker.port, source_id="it-recorder") as connector:
        recorder = Recorder(connector, history)
        await recorder.start()
        async with MqttConnector(broker.host, broker.port, source_id="engine-1") as engine:
            batches = [
                batch(RUN, seq, [line(f"t{seq % 3}", seq * LINES + n) for n in range(LINES)])
                for seq in range(1, BATCHES + 1)
            ]
            topic = logs_topic("local", "default", RUN, source="engine-1")
            for logs in [batches[0], *batches]:
                await engine.publish(topic, logs, qos=1)
        for _ in range(1000):
            await recorder.flush(timeout=5)
            last = await asyncio.to_thread(history.log_lines, RUN, after=0, limit=None)
            if last and last[-1].n == (BATCHES + 1) * LINES - 1:
                break
            await asyncio.sleep(0.01)
        await recorder.stop()
    return recorder


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_published_batches_are_stored(
    mosquitto_broker: MosquittoBroker, database_url: str, tmp_path: Path, database: str
) -> None:
    url = database_url if database == "postgresql" else f"sqlite:///{tmp_path / 'h.sqlite3'}"
    with History(url, mode="write") as history:
        recorder = asyncio.run(_record_published(mosquitto_broker, history))
        assert (recorder.stats.rejected, recorder.stats.refused) == (0, 0)
        assert recorder.stats.duplicates >= 1
        lines = history.log_lines(RUN, limit=None)
        assert [got.n for got in lines] == list(range(LINES, (BATCHES + 1) * LINES))
        counts = history.log_counts(RUN)
        assert sum(count.lines for count in counts.values()) == BATCHES * LINES
        assert history.runs_logging("T1 LINE") == [RUN]


async def _lines_lost_while_no_recorder_listened(
    broker: MosquittoBroker, history: History
) -> tuple[str, int]:
    """A real engine's task logs 100 lines, then 100 more while the recorder is stopped, then
    100 more after it started again; meanwhile another task logs its only 50 lines while the
    recorder is stopped. The run's id, and the batches sent while no recorder listened. Each
    phase starts once the last one's lines are in: stored in the history, or, while no
    recorder listens, heard by a watcher."""
    from cascade.runtime import Engine, RunStarted, task
    from cascade.runtime.testing import EventRecorder

    phases = [asyncio.Event() for _ in range(3)]

    @task(name="chatty")
    async def chatty() -> None:
        log = logging.getLogger("chatty")
        for phase, start in zip(phases, (1, 101, 201), strict=True):
            await phase.wait()
            for n in range(start, start + 100):
                log.info("line %d", n)

    @task(name="quiet")
    async def quiet() -> None:
        await phases[1].wait()
        for n in range(50):
            logging.getLogger("chatty").info("quiet %d", n)

    logging.getLogger("chatty").setLevel(logging.INFO)
    engine = Engine(MqttConnector(broker.host, broker.port, source_id="it-engine"),
                    heartbeat_interval=None)  # fmt: skip
    events = EventRecorder()
    engine.events.subscribe(events)
    heard: list[int] = []

    async def until(condition: Callable[[], bool]) -> None:
        while not condition():  # noqa: ASYNC110 - the history has no event to await
            await asyncio.sleep(0.02)

    def stored() -> int:
        return sum(count.lines for count in history.log_counts(run_id).values())

    async with MqttConnector(broker.host, broker.port, presence=False) as watching:
        await watching.subscribe(logs_filter(), lambda m: heard.append(len(m.payload["lines"])))
        run = asyncio.create_task(engine.run([chatty(), quiet()]))
        await events.until(lambda: any(isinstance(e, RunStarted) for e in events.events))
        (started,) = [e for e in events.events if isinstance(e, RunStarted)]
        run_id = started.run_id
        async with MqttConnector(broker.host, broker.port, presence=False) as listening:
            recorder = Recorder(listening, history)
            await recorder.start()
            phases[0].set()
            await asyncio.wait_for(until(lambda: stored() == 100), 10)
            await recorder.stop()
            before = len(heard)
            phases[1].set()
            await asyncio.wait_for(until(lambda: sum(heard) == 250), 10)
            unheard = len(heard) - before
            await recorder.start()
            phases[2].set()
            await asyncio.wait_for(run, 10)
            await asyncio.wait_for(until(lambda: stored() == 200), 10)
            await recorder.stop()
    return run_id, unheard


def test_lines_lost_while_no_recorder_listened_are_counted(
    mosquitto_broker: MosquittoBroker, tmp_path: Path
) -> None:
    """The 100 lines logged while the recorder was stopped are the task's lost lines; the 200
    it heard are stored. The batches sent meanwhile are missing from the run's numbering: so
    are the lines of the task that logged only then (it has no counts of its own), and
    `cascade run` and `cascade logs` say so."""
    db = tmp_path / "h.sqlite3"
    with History(f"sqlite:///{db}", mode="write") as history:
        run_id, unheard = asyncio.run(
            _lines_lost_while_no_recorder_listened(mosquitto_broker, history)
        )
        [count] = history.log_counts(run_id).values()
        assert (count.lines, count.dropped, count.lost) == (200, 0, 100)
        batches = history.log_batches(run_id)
        assert batches is not None
        assert unheard >= 1
        assert batches.missing == unheard
    said = f"{unheard:,} batch{'es' if unheard > 1 else ''} of lines missing, of any task"
    cli = [sys.executable, "-m", "cascade.cli"]
    shown = subprocess.run([*cli, "run", run_id, "--db", str(db)], capture_output=True,
                           text=True, timeout=60, check=True, env=_wide())  # fmt: skip
    assert said in " ".join(shown.stdout.split()), shown.stdout
    logs = subprocess.run([*cli, "logs", run_id, "--db", str(db)], capture_output=True,
                          text=True, timeout=60, check=True)  # fmt: skip
    assert said in logs.stdout


def _wide() -> dict[str, str]:
    """The environment, with a terminal wide enough that a line is not wrapped."""
    return {**os.environ, "COLUMNS": "300"}
