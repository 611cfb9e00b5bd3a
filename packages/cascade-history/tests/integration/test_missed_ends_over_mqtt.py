"""A run that ends while the recorder is away, on the family's broker (mosquitto, RabbitMQ or
a NATS cluster): once back, the recorder stores the run's end from its engine's retained
summary, and counts what it never received of it as missed. The engine's source id has a dot
in it, which NATS refuses in a topic unless it is encoded."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from cascade.connectors.mqtt import MqttConnector
from cascade.history import History, Recorder
from cascade.runtime import Engine, RunStarted, TaskRunning, task
from cascade.runtime.testing import EventRecorder, eventually
from cascade.testkit import BrokerEndpoint

WAIT = 30.0
PREFIX = f"hist-missed-{uuid.uuid4().hex[:8]}"  # the session's broker is shared


def _status(history: History, run_id: str) -> str | None:
    detail = history.run(run_id)
    return None if detail is None else detail.run.status


async def _away_while_it_ends(broker: BrokerEndpoint, history: History) -> None:
    gates = [asyncio.Event() for _ in range(3)]

    @task(name="slow")
    async def slow(i: int) -> int:
        await gates[i].wait()
        return i

    listening = MqttConnector(broker.host, broker.port, topic_prefix=PREFIX, presence=False)
    engine_link = MqttConnector(
        broker.host, broker.port, topic_prefix=PREFIX, source_id="worker1.example.com"
    )
    async with listening, engine_link, Recorder(listening, history) as recorder:
        engine = Engine(engine_link, heartbeat_interval=None)
        events = EventRecorder()
        engine.events.subscribe(events)
        run = asyncio.create_task(engine.run([slow(i) for i in range(3)]))
        await events.until(lambda: len(events.names(TaskRunning)) == 3)
        (started,) = [e for e in events.events if isinstance(e, RunStarted)]
        run_id = started.run_id
        await eventually(lambda: history.run(run_id) is not None, WAIT)
        await listening.disconnect()  # away: the run ends meanwhile
        for gate in gates:
            gate.set()
        await run
        await engine_link.flush(WAIT)
        await listening.connect(require=True)
        # a connect() asked for is no reconnection to the connector: the recorder is told as a
        # lost connection tells it (the NATS node-loss scenario loses one for real)
        listening.stats.reconnects += 1
        await eventually(lambda: _status(history, run_id) == "Succeeded", WAIT)
        await recorder.flush(5)
        detail = history.run(run_id)
        assert detail is not None
        assert detail.run.missing_events == 4  # three completions and the end itself
        assert recorder.stats.ends_from_summaries == 1


def test_a_run_that_ended_while_the_recorder_was_away(
    mqtt_broker: BrokerEndpoint, tmp_path: Path
) -> None:
    with History(f"sqlite:///{tmp_path / 'h.sqlite3'}", mode="write") as history:
        asyncio.run(_away_while_it_ends(mqtt_broker, history))
