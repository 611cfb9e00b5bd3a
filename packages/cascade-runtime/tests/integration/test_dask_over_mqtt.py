"""Issue 63's done-when, against the real things: a map of 40 CPU-bound items on a Dask
scheduler and two worker processes, steered through a mosquitto broker while a worker is
killed, seen item by item, with its lines, by a plain MQTT client."""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import aiomqtt
import pytest

from cascade.connectors.mqtt import MqttConnector
from cascade.control import Controller
from cascade.runtime import (
    DaskExecutor,
    Engine,
    LogForwarding,
    TaskBlocked,
    TaskCompleted,
    TaskEvent,
    TaskRetrying,
    TaskRunning,
    WorkerLost,
    unmapped,
)
from cascade.runtime.testing import EventRecorder, eventually
from cascade.testkit import RETAINED_EXACT_ONLY, BrokerEndpoint, DaskCluster, xfail_on_family

pytest.importorskip(
    "distributed", reason="distributed is not installed (pip install 'cascade-runtime[dask]')"
)

WORKERS = Path(__file__).parent.parent / "workers"
ITEMS = 40


@pytest.fixture
def tasks() -> Iterator[ModuleType]:
    """The tasks the workers run, from a module they import (its folder on their PYTHONPATH)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(WORKERS))
        yield importlib.import_module("cascade_worker_tasks")


@xfail_on_family("rabbitmq", RETAINED_EXACT_ONLY)
async def test_a_map_on_dask_is_paused_survives_a_killed_worker_and_is_seen_item_by_item(
    mqtt_broker: BrokerEndpoint,
    prefix: str,
    plain_client: aiomqtt.Client,
    tasks: ModuleType,
    tmp_path: Path,
) -> None:
    received: list[tuple[str, Any]] = []

    async def read() -> None:
        async for message in plain_client.messages:
            assert isinstance(message.payload, bytes)
            if message.payload:
                received.append((str(message.topic), json.loads(message.payload)))

    await plain_client.subscribe(f"{prefix}/telemetry/#", qos=1)
    await plain_client.subscribe(f"{prefix}/logs/#", qos=1)
    reader = asyncio.create_task(read())
    engine_side = MqttConnector(
        mqtt_broker.host, mqtt_broker.port, topic_prefix=prefix, source_id="it-dask"
    )
    operator_side = MqttConnector(mqtt_broker.host, mqtt_broker.port, topic_prefix=prefix)
    cluster = DaskCluster(2, paths=[str(WORKERS)])
    mapped = tasks.crunch_saying_so.with_retry(3).map(
        x=range(ITEMS), folder=unmapped(str(tmp_path))
    )

    def started(x: int, attempt: int = 1) -> Path:
        return tmp_path / f"started-{x}.{attempt}"

    for held in (5, 8):  # items 5 and 8 wait, once started, till the test lets them go
        (tmp_path / f"hold-{held}").write_text("")
    try:
        with DaskExecutor(cluster.address) as on_dask:
            # one item a worker at a time: the rest wait in the engine, where a pause holds them
            engine = Engine(
                engine_side,
                executor=on_dask,
                max_concurrency=2,
                heartbeat_interval=None,
                logs=LogForwarding(),
            )
            recorder = EventRecorder()
            engine.events.subscribe(recorder)
            run = asyncio.create_task(engine.run(mapped))
            # the worker that runs item 5 killed while it holds it
            await eventually(started(5).exists, timeout=60)
            os.kill(int(started(5).read_text()), signal.SIGKILL)
            (tmp_path / "hold-5").unlink()
            # `cascade pause task:crunch` from elsewhere, while item 8 holds a worker
            await eventually(started(8).exists, timeout=60)
            async with operator_side:
                control = Controller(operator_side, issued_by="test")
                await control.pause("task:crunch", reason="done-when")
                await recorder.until(lambda: "crunch" in recorder.names(TaskBlocked), timeout=30)
                began = _ran(recorder, TaskRunning)
                (tmp_path / "hold-8").unlink()
                # what had started runs on to its end; nothing more starts
                await recorder.until(
                    lambda: began <= _ran(recorder, TaskCompleted) | _ran(recorder, TaskRetrying),
                    timeout=60,
                )
                assert _ran(recorder, TaskRunning) == began
                assert len(began) < ITEMS
                await control.resume("task:crunch")
            results = await asyncio.wait_for(run, 120)
    finally:
        cluster.stop()

    assert [answer for _, answer in results] == [
        sum(i * i for i in range(1_000_000 + x)) for x in range(ITEMS)
    ]
    assert os.getpid() not in {pid for pid, _ in results}
    lost = [e for e in recorder.events if isinstance(e, TaskRetrying)]
    assert lost
    assert all(isinstance(e.exception, WorkerLost) for e in lost)
    assert f"{mapped.task_id}[5]" in {e.task_id for e in lost}
    assert all("worker lost (tcp://127.0.0.1:" in e.error for e in lost)
    done = {e.task_id: e.attempt for e in recorder.events if isinstance(e, TaskCompleted)}
    items = [f"{mapped.task_id}[{x}]" for x in range(ITEMS)]
    assert set(items) <= set(done)
    assert done[f"{mapped.task_id}[5]"] == 2
    # what a plain MQTT client (cascade watch, the page, the recorder) saw: every item, its line
    try:
        await eventually(lambda: _seen(received, items), timeout=15)
    finally:
        reader.cancel()


def _ran(recorder: EventRecorder, kind: type[TaskEvent]) -> set[str]:
    """The map's items with an event of ``kind`` (not the map itself)."""
    return {e.task_id for e in recorder.events if isinstance(e, kind) and "[" in e.task_id}


def _seen(received: list[tuple[str, Any]], items: list[str]) -> bool:
    """Whether every item's COMPLETED and its line reached the plain client."""
    completed = {
        p["body"]["task_id"]
        for t, p in received
        if t.endswith("/events") and p.get("body", {}).get("state") == "COMPLETED"
    }
    logged = {
        line["task_id"]
        for t, p in received
        if "/logs/" in t
        for line in p["lines"]
        if line["message"].startswith("item ")
    }
    return set(items) <= completed and set(items) <= logged
