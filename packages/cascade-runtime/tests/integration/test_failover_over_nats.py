"""On a three-node NATS JetStream cluster: an engine given nodes A and B obeys a pause retained
through C before it started, keeps running when A is killed mid-run (its constraints read again
through B), is resumed through B, and a reader on C hears its events."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from cascade.connectors.mqtt import MqttConnector
from cascade.interfaces import Message
from cascade.runtime import Engine, TaskBlocked, TaskRunning, task
from cascade.runtime.testing import EventRecorder, eventually
from cascade.testkit import NO_NATS, Inbox, NatsCluster, nats_server_path

PAUSE = (
    b'{"id": "pause-on-c", "scope": "task:report_*", "type": "pause", "params": {}, '
    b'"expires_at": null}'
)
SLOW = 30  # seconds: bounds for a loaded machine; the move itself takes well under one


@pytest.fixture(scope="module")
def cluster() -> Iterator[NatsCluster]:
    """A private cluster: this test kills one of its nodes."""
    if nats_server_path() is None:
        pytest.skip(NO_NATS)
    with NatsCluster() as nodes:
        yield nodes


async def test_an_engine_on_a_and_b_keeps_its_pause_when_a_dies(
    cluster: NatsCluster, prefix: str
) -> None:
    """The pause retained through C holds report_daily before and after A's death; resumed
    through B, it runs; C's reader gets the events made after the move."""
    a, b, c = cluster.nodes
    pause_topic = f"{prefix}/constraints/task/report_%2A/pause"
    connector = MqttConnector(
        hosts=[f"{a.host}:{a.port}", f"{b.host}:{b.port}"],
        topic_prefix=prefix,
        source_id="nats-engine",
        backoff_max=0.5,
    )
    # A's death may take the leader of a JetStream stream with it: B then holds QoS 1 acks
    # until a new leader is elected (seconds, by NATS), and the engine's last flush waits
    engine = Engine(connector, heartbeat_interval=None, connect_wait=10, shutdown_timeout=SLOW)
    recorder = EventRecorder()
    engine.events.subscribe(recorder)
    paused_at_start: list[bool] = []

    @task
    async def kill_a() -> int:
        paused_at_start.append(any(con.id == "pause-on-c" for con in engine.constraints))
        a.kill()
        await eventually(lambda: connector.stats.reconnects >= 1, SLOW)
        await eventually(lambda: any(con.id == "pause-on-c" for con in engine.constraints), SLOW)
        return 1

    @task
    async def report_daily(ready: int) -> str:
        return "report"

    async with (
        MqttConnector(c.host, c.port, topic_prefix=prefix, presence=False) as on_c,
        MqttConnector(b.host, b.port, topic_prefix=prefix, presence=False) as on_b,
    ):
        await on_c.publish(pause_topic, PAUSE, qos=1, retain=True)
        await on_c.flush(10)
        seen = Inbox()
        await on_c.subscribe(f"{prefix}/telemetry/+/+/+/events", seen)
        run = asyncio.create_task(engine.run(report_daily(kill_a())))
        await recorder.until(lambda: "report_daily" in recorder.names(TaskBlocked), timeout=SLOW)
        assert "report_daily" not in recorder.names(TaskRunning)
        assert (connector.hostname, connector.port) == (b.host, b.port)
        await on_b.publish(pause_topic, b"", qos=1, retain=True)
        assert await asyncio.wait_for(run, SLOW) == "report"

        def completed(message: Message) -> bool:
            body = message.payload.get("body", {}) if isinstance(message.payload, dict) else {}
            return bool(
                body.get("task_name") == "report_daily" and body.get("state") == "COMPLETED"
            )

        await seen.until(completed, SLOW)
    assert paused_at_start == [True]
    assert connector.stats.dropped == 0
    a.start()  # the module's cluster whole again
