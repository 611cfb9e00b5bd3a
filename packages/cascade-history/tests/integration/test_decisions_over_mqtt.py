"""Holds and decisions recorded from a real engine on the family's broker (mosquitto or
RabbitMQ): a retry asked through ``cascade.control`` (the engine's answer in the audit, the
retry's event with who decided), and a hold past its deadline taking its default (the
system's decision, no one's)."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import pytest

from cascade.connectors.mqtt import MqttConnector
from cascade.control import Controller
from cascade.history import History, Recorder
from cascade.runtime import DependencyMissingError, Engine, RunStarted, TaskHeld, task
from cascade.runtime.testing import EventRecorder
from cascade.testkit import BrokerEndpoint

WAIT = 20.0
PREFIX = f"hist-decided-{uuid.uuid4().hex[:8]}"  # the session's broker is shared


async def _held(events: EventRecorder, count: int) -> None:
    deadline = time.monotonic() + WAIT
    while len([e for e in events.events if isinstance(e, TaskHeld)]) < count:
        assert time.monotonic() < deadline, "the tasks were not held"
        await asyncio.sleep(0.02)


async def _record(broker: BrokerEndpoint, history: History) -> str:
    tries = 0

    @task(name="load", on_failure="hold")
    async def load(n: int) -> int:
        nonlocal tries
        tries += 1
        if tries == 1:
            raise ConnectionError("the API is down")
        return n

    @task(name="side", on_failure="hold", hold_timeout=0.5, hold_default="skip")
    async def side() -> int:
        raise ValueError("side is broken")

    link = MqttConnector(broker.host, broker.port, topic_prefix=PREFIX, source_id="it-decided")
    engine = Engine(link, heartbeat_interval=None)
    events = EventRecorder()
    engine.events.subscribe(events)
    async with MqttConnector(
        broker.host, broker.port, topic_prefix=PREFIX, presence=False
    ) as listening:
        recorder = Recorder(listening, history)
        await recorder.start()
        run = asyncio.create_task(engine.run([load(4), side()]))
        await _held(events, 1)
        (started,) = [e for e in events.events if isinstance(e, RunStarted)]
        controller = Controller(listening, issued_by="alice", timeout=10.0)
        answer = await controller.run(started.run_id).retry("load", attempt=1, reason="API back")
        assert answer.applied, answer.describe()
        with pytest.raises(DependencyMissingError, match=r"<Target Output>\[1\]"):
            await asyncio.wait_for(run, WAIT)  # side skipped at its deadline: no result
        deadline = time.monotonic() + WAIT
        while True:  # the history has no event to await
            await recorder.flush(timeout=5)
            detail = await asyncio.to_thread(history.run, started.run_id)
            answers = await asyncio.to_thread(history.decisions, started.run_id)
            if detail is not None and detail.run.status == "Succeeded" and answers:
                break
            assert time.monotonic() < deadline, "the history did not get the run's end"
            await asyncio.sleep(0.05)
        await recorder.stop()
    return started.run_id


def test_a_retry_and_a_deadlines_default_are_recorded(
    mqtt_broker: BrokerEndpoint, tmp_path: Path
) -> None:
    with History(f"sqlite:///{tmp_path / 'h.sqlite3'}", mode="write") as history:
        run_id = asyncio.run(_record(mqtt_broker, history))
        (answer,) = history.decisions(run_id)
        assert (answer.decision, answer.outcome, answer.issued_by, answer.reason) == (
            "retry", "applied", "alice", "API back",
        )  # fmt: skip
        assert (answer.task_name, answer.attempt, answer.source) == ("load", 1, "it-decided")
        detail = history.run(run_id)
        assert detail is not None
        tasks = {t.task_name: t for t in detail.tasks}
        first, second = tasks["load"].attempt_list
        assert (first.state, first.error) == ("HELD", "ConnectionError: the API is down")
        assert first.decided is not None
        assert (first.decided["by"], first.decided["reason"]) == ("alice", "API back")
        assert second.state == "COMPLETED"
        side = tasks["side"]
        assert side.state == "SKIPPED"
        (held,) = side.attempt_list
        assert held.hold is not None
        assert held.hold["default"] == "skip"
        assert held.decided is not None
        assert held.decided["deadline"] is True
        assert "by" not in held.decided  # the system's decision, no one's
        (event,) = [e for e in history.audit() if e.action == "decided"]
        assert (event.type, event.issued_by, event.run_id) == ("retry", "alice", run_id)
