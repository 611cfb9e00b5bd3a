"""Worker processes over a real broker: a plain MQTT client sees a map's items run in a
ProcessExecutor as it sees threads' (RUNNING, COMPLETED, by their ids), and their log lines,
tagged with item and attempt, before the run's end."""

from __future__ import annotations

import asyncio
import importlib
import json
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import aiomqtt
import pytest

from cascade.connectors.mqtt import MqttConnector
from cascade.runtime import Engine, ProcessExecutor
from cascade.testkit import BrokerEndpoint, broker_family

WORKERS = Path(__file__).parent.parent / "workers"


@pytest.fixture
def tasks() -> Iterator[ModuleType]:
    """The tasks workers run, from a module they can import (its folder on sys.path)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(WORKERS))
        module = importlib.import_module("cascade_worker_tasks")
        module.log.setLevel("INFO")
        try:
            yield module
        finally:
            module.log.setLevel("NOTSET")


async def test_a_plain_client_sees_items_run_in_worker_processes_with_their_lines(
    mqtt_broker: BrokerEndpoint, prefix: str, plain_client: aiomqtt.Client, tasks: ModuleType
) -> None:
    received: list[tuple[str, Any]] = []
    stopped = asyncio.Event()

    async def read() -> None:
        async for message in plain_client.messages:
            assert isinstance(message.payload, bytes)
            payload = json.loads(message.payload)
            received.append((str(message.topic), payload))
            if payload.get("body", {}).get("event") == "ENGINE_STOPPED":
                stopped.set()

    await plain_client.subscribe(f"{prefix}/telemetry/#", qos=1)
    await plain_client.subscribe(f"{prefix}/logs/#", qos=1)
    reader = asyncio.create_task(read())
    connector = MqttConnector(
        mqtt_broker.host, mqtt_broker.port, topic_prefix=prefix, source_id="it-workers"
    )
    mapped = tasks.noisy.map(n=[1, 2, 3])
    try:
        with ProcessExecutor(2) as processes:
            engine = Engine(connector, executor=processes, heartbeat_interval=None)
            assert await engine.run(mapped) == [1, 2, 3]
        await asyncio.wait_for(stopped.wait(), 15)
    finally:
        reader.cancel()
    bodies = [p["body"] for t, p in received if t.endswith("/events")]
    items = {f"{mapped.task_id}[{i}]" for i in range(3)}
    for state in ("RUNNING", "COMPLETED"):
        assert {b["task_id"] for b in bodies if b.get("state") == state} >= items
    (made,) = [b for b in bodies if "items" in b]
    assert made["items"] == 3
    lines = [line for t, p in received if "/logs/" in t for line in p["lines"]]
    assert sorted(
        (line["task_id"], line["attempt"], line["message"].split(" in pid")[0]) for line in lines
    ) == [(f"{mapped.task_id}[{i}]", 1, f"line {i + 1}") for i in range(3)]
    if broker_family() != "rabbitmq":  # QOS_ORDER_NOT_KEPT: QoS 0 lines, a QoS 1 end
        last_line = max(i for i, (t, _) in enumerate(received) if "/logs/" in t)
        (end,) = [
            i
            for i, (_, p) in enumerate(received)
            if p.get("body", {}).get("event") == "ENGINE_STOPPED"
        ]
        assert last_line < end
