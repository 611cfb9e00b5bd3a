"""A served run and its rerun recorded from the family's broker (mosquitto or RabbitMQ): the
names and origins their ENGINE_STARTED carried, the task the rerun reused, the link between
the two, and the audit's start rows. The engine is a connector publishing what a serving
engine publishes (the runtime's serve is another branch's)."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

import msgspec

from cascade.connectors.mqtt import MqttConnector
from cascade.history import History, Recorder, RunLink
from cascade.interfaces import Envelope, LifecycleEvent, TaskStateEvent, events_topic
from cascade.interfaces.serving import RunOrigin
from cascade.testkit import BrokerEndpoint

WAIT = 20.0
PREFIX = f"hist-lineage-{uuid.uuid4().hex[:8]}"  # the session's broker is shared
SOURCE = "it-served"


def _events(origin: RunOrigin, *, reused: bool, failed: bool) -> list[Any]:
    extract = TaskStateEvent(task_id="extract-1", task_name="extract", state="COMPLETED")
    if reused and origin.rerun_of is not None:
        extract.reused_from = origin.rerun_of
    end = TaskStateEvent(task_id="transform-1", task_name="transform", state="COMPLETED")
    if failed:
        end = TaskStateEvent(task_id="transform-1", task_name="transform", state="FAILED",
                             error="KeyError: 'x'")  # fmt: skip
    return [
        LifecycleEvent(event="ENGINE_STARTED", tasks=2, name="nightly", origin=origin),
        extract,
        TaskStateEvent(task_id="transform-1", task_name="transform", state="RUNNING"),
        end,
        LifecycleEvent(event="ENGINE_STOPPED", status="Failed" if failed else "Succeeded"),
    ]


async def _publish(engine: MqttConnector, run_id: str, bodies: list[Any]) -> None:
    topic = events_topic("local", "default", run_id, PREFIX)
    for seq, body in enumerate(bodies, start=1):
        envelope = Envelope(run_id=run_id, org_id="local", project_id="default",
                            source=SOURCE, seq=seq, body=body)  # fmt: skip
        await engine.publish(topic, msgspec.json.encode(envelope), qos=1)


async def _record(broker: BrokerEndpoint, history: History) -> None:
    first = RunOrigin(workflow="nightly", params={"n": 5}, request_id="req-1",
                      issued_by="alice", reason="nightly", issued_at=time.time())  # fmt: skip
    again = RunOrigin(workflow="nightly", params={"n": 5}, rerun_of="a" * 32,
                      root_run="a" * 32, request_id="req-2", issued_by="bob")  # fmt: skip
    async with MqttConnector(
        broker.host, broker.port, topic_prefix=PREFIX, presence=False
    ) as listening:
        recorder = Recorder(listening, history)
        await recorder.start()
        async with MqttConnector(
            broker.host, broker.port, topic_prefix=PREFIX, source_id=SOURCE
        ) as engine:
            await _publish(engine, "a" * 32, _events(first, reused=False, failed=True))
            await _publish(engine, "b" * 32, _events(again, reused=True, failed=False))
        deadline = time.monotonic() + WAIT
        while True:  # the history has no event to await
            await recorder.flush(timeout=5)
            done = await asyncio.to_thread(history.runs, status="succeeded")
            if done:
                break
            assert time.monotonic() < deadline, "the history did not get the rerun's end"
            await asyncio.sleep(0.05)
        await recorder.stop()


def test_a_rerun_and_its_start_are_recorded(mqtt_broker: BrokerEndpoint, tmp_path: Path) -> None:
    with History(f"sqlite:///{tmp_path / 'h.sqlite3'}", mode="write") as history:
        asyncio.run(_record(mqtt_broker, history))
        old = history.run("a" * 32)
        assert old is not None
        assert (old.run.name, old.run.workflow, old.run.status) == ("nightly", "nightly", "Failed")
        assert old.run.origin is not None
        assert old.run.origin["params"] == {"n": 5}
        assert old.run.replaced_by == [RunLink("b" * 32, "Succeeded", "nightly")]
        new = history.run("b" * 32)
        assert new is not None
        assert new.run.rerun_of == RunLink("a" * 32, "Failed", "nightly")
        assert new.run.root_run == "a" * 32
        reused = {t.task_name: t.reused_from for t in new.tasks}
        assert reused == {"extract": "a" * 32, "transform": None}
        starts = [(e.run_id, e.issued_by, e.request_id) for e in history.audit()
                  if e.action == "start"]  # fmt: skip
        assert sorted(starts) == [("a" * 32, "alice", "req-1"), ("b" * 32, "bob", "req-2")]
        assert [r.run_id for r in history.lineage("a" * 32)] == ["a" * 32, "b" * 32]
