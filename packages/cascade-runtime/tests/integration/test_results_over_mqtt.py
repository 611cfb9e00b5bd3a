"""A named run, and its rerun that reuses what succeeded, as a plain MQTT subscriber sees them."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from typing import Any

import aiomqtt
import pytest

from cascade.connectors.mqtt import MqttConnector
from cascade.runtime import Engine, RunStarted, TaskFailedError, task
from cascade.testkit import BrokerEndpoint


async def _until(
    client: aiomqtt.Client, enough: Callable[[list[Any]], bool], timeout: float = 15.0
) -> list[Any]:
    """Every envelope received until ``enough`` says so of them: not at a run's
    ENGINE_STOPPED, which RabbitMQ may deliver (QoS 1) before the run's last task events
    (QoS 0)."""
    received: list[Any] = []

    async def read() -> None:
        async for message in client.messages:
            assert isinstance(message.payload, bytes)
            received.append(json.loads(message.payload))
            if enough(received):
                return

    await asyncio.wait_for(read(), timeout)
    return received


def _ended(envelopes: list[Any], runs: int) -> bool:
    """Both runs stopped, and the rerun's extract and transform ended."""
    stopped = [e for e in envelopes if e["body"].get("event") == "ENGINE_STOPPED"]
    ended = {
        (e["run_id"], e["body"]["task_name"])
        for e in envelopes
        if e["body"].get("state") == "COMPLETED"
    }
    if len(stopped) < runs:
        return False
    last = stopped[-1]["run_id"]
    return {(last, "extract"), (last, "transform"), (last, "load")} <= ended


async def test_a_rerun_on_the_wire_names_its_origin_and_what_it_reused(
    mqtt_broker: BrokerEndpoint, prefix: str, plain_client: aiomqtt.Client
) -> None:
    """``load(transform(extract(5)))``: transform fails, then a rerun of that run reuses
    extract. ENGINE_STARTED carries the name and (for the rerun) its origin; extract's
    COMPLETED in the rerun carries ``reused_from``, and no RUNNING precedes it."""
    calls = {"extract": 0, "transform": 0}
    broken = True

    @task
    def extract(n: int) -> list[int]:
        calls["extract"] += 1
        return list(range(n))

    @task
    async def transform(rows: list[int]) -> list[int]:
        calls["transform"] += 1
        if broken:
            raise RuntimeError("the cause")
        return [row * 10 for row in rows]

    @task
    async def load(rows: list[int]) -> int:
        return sum(rows)

    await plain_client.subscribe(f"{prefix}/telemetry/+/+/+/events", qos=1)
    connector = MqttConnector(
        mqtt_broker.host, mqtt_broker.port, topic_prefix=prefix, source_id="it-results"
    )
    engine = Engine(connector, heartbeat_interval=None, results=f"memory://it-{uuid.uuid4().hex}")
    started: list[str] = []
    engine.events.subscribe(
        lambda event: started.append(event.run_id) if isinstance(event, RunStarted) else None
    )
    reading = asyncio.create_task(_until(plain_client, lambda seen: _ended(seen, 2)))
    with pytest.raises(TaskFailedError):
        await engine.run(load(transform(extract(5))), name="nightly")
    broken = False
    assert await engine.run(load(transform(extract(5))), rerun_of=started[0][:12]) == 100
    first, second = started
    envelopes = await reading
    assert calls == {"extract": 1, "transform": 2}

    def bodies(run_id: str) -> list[dict[str, Any]]:
        return [e["body"] for e in envelopes if e["run_id"] == run_id]

    (opening,) = [b for b in bodies(first) if b.get("event") == "ENGINE_STARTED"]
    assert opening["name"] == "nightly"
    assert "origin" not in opening
    (rerun,) = [b for b in bodies(second) if b.get("event") == "ENGINE_STARTED"]
    assert rerun["name"] == "nightly"  # a rerun keeps its run's name
    assert rerun["origin"] == {"rerun_of": first, "root_run": first}
    extract_states = [b for b in bodies(second) if b.get("task_name") == "extract"]
    assert [(b["state"], b.get("reused_from"), b["duration_ms"]) for b in extract_states] == [
        ("COMPLETED", first, 0.0)
    ]
    transform_states = [b for b in bodies(second) if b.get("task_name") == "transform"]
    assert sorted(b["state"] for b in transform_states) == ["COMPLETED", "RUNNING"]
    assert all("reused_from" not in b for b in transform_states)


async def test_a_task_a_rerun_does_not_need_is_skipped_on_the_wire_saying_why(
    mqtt_broker: BrokerEndpoint, prefix: str, plain_client: aiomqtt.Client
) -> None:
    """``load(count(fetch()))``: fetch's answer (a tuple) is not kept, count's is, load
    fails once. In the rerun a plain subscriber sees fetch SKIPPED, not needed, with no
    RUNNING; count COMPLETED from the first run; load run again."""
    calls = {"fetch": 0, "load": 0}

    @task
    def fetch() -> tuple[str, ...]:
        calls["fetch"] += 1
        return ("a", "b", "c")

    @task
    def count(response: tuple[str, ...]) -> int:
        return len(response)

    @task
    async def load(n: int) -> int:
        calls["load"] += 1
        if calls["load"] == 1:
            raise RuntimeError("the database is down")
        return n

    await plain_client.subscribe(f"{prefix}/telemetry/+/+/+/events", qos=1)
    connector = MqttConnector(
        mqtt_broker.host, mqtt_broker.port, topic_prefix=prefix, source_id="it-not-needed"
    )
    engine = Engine(connector, heartbeat_interval=None, results=f"memory://it-{uuid.uuid4().hex}")
    started: list[str] = []
    engine.events.subscribe(
        lambda event: started.append(event.run_id) if isinstance(event, RunStarted) else None
    )

    def rerun_loaded(seen: list[Any]) -> bool:
        stopped = [e for e in seen if e["body"].get("event") == "ENGINE_STOPPED"]
        return len(stopped) == 2 and any(
            e["run_id"] == started[-1]
            and (e["body"].get("task_name"), e["body"].get("state")) == ("load", "COMPLETED")
            for e in seen
        )

    reading = asyncio.create_task(_until(plain_client, rerun_loaded))
    with pytest.raises(TaskFailedError):
        await engine.run(load(count(fetch())))
    assert await engine.run(load(count(fetch())), rerun_of=started[0]) == 3
    envelopes = await reading
    assert calls == {"fetch": 1, "load": 2}
    second = [e["body"] for e in envelopes if e["run_id"] == started[1]]
    fetched = [(b["state"], b["error"]) for b in second if b.get("task_name") == "fetch"]
    assert fetched == [("SKIPPED", "not needed: every task that uses it is reused")]
    counted = [(b["state"], b.get("reused_from")) for b in second if b.get("task_name") == "count"]
    assert counted == [("COMPLETED", started[0])]
