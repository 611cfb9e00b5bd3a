"""Over a real broker: a task whose resource failed at its setup is published FAILED, saying so."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiomqtt
import pytest

from cascade.connectors.mqtt import MqttConnector
from cascade.runtime import Engine, TaskFailedError, inject, resource, task
from cascade.testkit import BrokerEndpoint

WAREHOUSE_DOWN = True


@resource
async def warehouse() -> AsyncIterator[str]:
    if WAREHOUSE_DOWN:
        raise ConnectionError("the warehouse is down")
    yield "never"


@resource
async def cache() -> AsyncIterator[dict[str, int]]:
    yield {"hits": 0}


@task
async def load(rows: int, db: str = inject("warehouse")) -> int:
    return rows


@task
async def warm(store: dict[str, int] = inject("cache")) -> int:
    return store["hits"]


async def test_a_failed_setup_is_its_tasks_failure_on_the_wire(
    mqtt_broker: BrokerEndpoint, prefix: str, plain_client: aiomqtt.Client
) -> None:
    """A plain subscriber sees the needing task FAILED with the setup's error, the other task
    COMPLETED, and the run Failed: no new field, only what the existing tools read."""
    await plain_client.subscribe(f"{prefix}/telemetry/+/+/+/events", qos=1)
    connector = MqttConnector(mqtt_broker.host, mqtt_broker.port, topic_prefix=prefix)
    engine = Engine(connector, heartbeat_interval=None, resources=[warehouse, cache])
    with pytest.raises(TaskFailedError):
        await engine.run([load(5), warm()])

    bodies: list[dict[str, Any]] = []
    ended: dict[str, dict[str, Any]] = {}

    async def until_stopped_and_both_ended() -> None:
        # not only until ENGINE_STOPPED: RabbitMQ may deliver it (QoS 1) before the run's
        # last task states (QoS 0), which the engine sent first (docs/brokers.md)
        async for message in plain_client.messages:
            assert isinstance(message.payload, bytes)
            body = json.loads(message.payload)["body"]
            bodies.append(body)
            if body.get("state") in ("FAILED", "COMPLETED"):
                ended[body["task_name"]] = body
            if ended.keys() == {"load", "warm"} and any(
                b.get("event") == "ENGINE_STOPPED" for b in bodies
            ):
                return

    await asyncio.wait_for(until_stopped_and_both_ended(), 15)
    assert ended["load"]["state"] == "FAILED"
    assert ended["load"]["error"] == (
        "ResourceFailed: resource 'warehouse' failed at its setup: "
        "ConnectionError: the warehouse is down"
    )
    assert ended["warm"]["state"] == "COMPLETED"
    (stopped,) = [b for b in bodies if b.get("event") == "ENGINE_STOPPED"]
    assert stopped["status"] == "Failed"
