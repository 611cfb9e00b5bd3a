"""Task logs on a real broker: a run's lines reach a subscriber, tagged, before its end."""

from __future__ import annotations

import asyncio
import logging

from cascade.connectors.mqtt import MqttConnector
from cascade.interfaces import Message, decode_envelope
from cascade.interfaces.logs import LogBatch, decode_log_batch, logs_filter
from cascade.runtime import Engine, task
from cascade.testkit import BrokerEndpoint, broker_family

app = logging.getLogger("it.app")


@task
async def noisy(lines: int) -> int:
    for i in range(lines):
        app.warning("line %d of the coroutine", i)
    return lines


@task
def threaded(lines: int) -> int:
    for i in range(lines):
        app.warning("line %d of the thread", i)
    return lines


async def test_a_runs_lines_reach_a_reader_before_its_end(
    mqtt_broker: BrokerEndpoint, prefix: str
) -> None:
    arrived: list[tuple[str, LogBatch | None]] = []
    stopped = asyncio.Event()

    def keep(message: Message) -> None:
        if "/logs/" in message.topic:
            arrived.append((message.topic, decode_log_batch(message.raw)))
        elif decode_envelope(message.raw).body.event == "ENGINE_STOPPED":  # type: ignore[union-attr]
            arrived.append((message.topic, None))
            stopped.set()

    reader = MqttConnector(mqtt_broker.host, mqtt_broker.port, presence=False, topic_prefix=prefix)
    await reader.connect(require=True)
    await reader.subscribe(logs_filter(prefix=prefix), keep)
    await reader.subscribe(f"{prefix}/telemetry/+/+/+/events/#", keep)
    engine = Engine(
        MqttConnector(
            mqtt_broker.host,
            mqtt_broker.port,
            topic_prefix=prefix,
            source_id="it-logs",
            sourced_topics=True,
        ),
        heartbeat_interval=None,
    )
    try:
        assert await engine.run([noisy(300), threaded(300)]) == [300, 300]
        await asyncio.wait_for(stopped.wait(), 15)
    finally:
        await reader.disconnect()
    batches = [batch for _, batch in arrived if batch is not None]
    if broker_family() != "rabbitmq":  # QOS_ORDER_NOT_KEPT: QoS 0 lines, a QoS 1 end
        assert arrived[-1][1] is None  # ENGINE_STOPPED last: every batch came before it
    assert all(topic.endswith("/it-logs") for topic, b in arrived if b is not None)
    lines = [line for batch in batches for line in batch.lines]
    by_task = {name: [line.n for line in lines if line.task_name == name]
               for name in ("noisy", "threaded")}  # fmt: skip
    assert by_task == {"noisy": list(range(1, 301)), "threaded": list(range(1, 301))}
    assert [batch.seq for batch in batches] == list(range(1, len(batches) + 1))
    assert engine.stats.log_lines_sent == 600
