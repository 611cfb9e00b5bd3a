"""An engine given two nodes (two private mosquittos, A and B) keeps running when A is killed."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from cascade.connectors.mqtt import MqttConnector
from cascade.interfaces import Message
from cascade.runtime import Engine, TaskBlocked, TaskRunning, task
from cascade.runtime.testing import EventRecorder, eventually
from cascade.testkit import (
    MOSQUITTO_ONLY,
    NO_MOSQUITTO,
    Inbox,
    MosquittoBroker,
    mosquitto_path,
    skip_on_family,
)

pytestmark = skip_on_family("rabbitmq", MOSQUITTO_ONLY.format(family="rabbitmq"))

PAUSE = (
    b'{"id": "pause-on-b", "scope": "task:report_*", "type": "pause", "params": {}, '
    b'"expires_at": null}'
)


@pytest.fixture
def nodes() -> Iterator[tuple[MosquittoBroker, MosquittoBroker]]:
    """Two private mosquittos: two nodes of one broker, as far as the engine can tell."""
    if mosquitto_path() is None:
        pytest.skip(NO_MOSQUITTO)
    with MosquittoBroker() as a, MosquittoBroker() as b:
        yield a, b


def _events(inbox: Inbox) -> list[tuple[str, str]]:
    """(task name or "", state or event) of every telemetry event the inbox holds."""
    bodies = [m.payload["body"] for m in inbox.all if isinstance(m.payload, dict)]
    return [(b.get("task_name", ""), b.get("state") or b.get("event", "")) for b in bodies]


async def test_an_engine_moves_to_the_next_node_and_obeys_its_retained_pause(
    nodes: tuple[MosquittoBroker, MosquittoBroker], prefix: str
) -> None:
    """A killed mid-run: the engine goes on through B, where a subscriber sees its later events,
    and the pause retained on B before the move holds its tasks until cleared there."""
    a, b = nodes
    pause_topic = f"{prefix}/constraints/task/report_%2A/pause"
    connector = MqttConnector(
        hosts=[f"{a.host}:{a.port}", f"{b.host}:{b.port}"],
        topic_prefix=prefix,
        source_id="it-engine",
        backoff_max=0.5,
    )
    engine = Engine(connector, heartbeat_interval=None)
    recorder = EventRecorder()
    engine.events.subscribe(recorder)

    @task
    async def kill_a() -> int:
        a.kill()
        # the constraints are read again on B: its retained pause is known before this ends
        await eventually(lambda: any(c.id == "pause-on-b" for c in engine.constraints), 15)
        return 1

    @task
    async def report_daily(ready: int) -> str:
        return "report"

    async with MqttConnector(b.host, b.port, topic_prefix=prefix) as on_b:
        await on_b.publish(pause_topic, PAUSE, qos=1, retain=True)
        await on_b.flush(5)
        seen = Inbox()
        await on_b.subscribe(f"{prefix}/telemetry/+/+/+/events", seen)
        run = asyncio.create_task(engine.run(report_daily(kill_a())))
        await recorder.until(lambda: "report_daily" in recorder.names(TaskBlocked), timeout=20)
        assert "report_daily" not in recorder.names(TaskRunning)
        assert (connector.hostname, connector.port) == (b.host, b.port)
        await on_b.publish(pause_topic, b"", qos=1, retain=True)
        assert await asyncio.wait_for(run, 15) == "report"

        def stopped(message: Message) -> bool:
            payload = message.payload
            return isinstance(payload, dict) and bool(
                payload["body"].get("event") == "ENGINE_STOPPED"
            )

        await seen.until(stopped, 15)
    events = _events(seen)
    assert ("report_daily", "BLOCKED") in events
    assert ("report_daily", "RUNNING") in events
    assert ("report_daily", "COMPLETED") in events
    assert ("kill_a", "COMPLETED") in events  # sent once on B
    assert engine.stats.accepted >= 1
    assert connector.stats.dropped == 0
