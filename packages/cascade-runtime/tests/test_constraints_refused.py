"""A constraints subscription the broker refuses (SUBACK 0x80): the engine waits connect_wait,
says so once naming the broker and why, counts it, and applies the constraints when granted."""

from __future__ import annotations

import asyncio
import logging

import pytest

from cascade.connectors.mqtt import MqttConnector
from cascade.connectors.mqtt.testing import FakeBroker
from cascade.interfaces import Constraint, constraint_topic, encode_payload
from cascade.runtime import Engine, task
from cascade.runtime.testing import eventually

FILTER = "cascade/constraints/#"


@task
async def first(gate: asyncio.Event) -> int:
    await gate.wait()
    return 1


@task
def second(x: int) -> int:
    return x + 1


def _connector(broker: FakeBroker) -> MqttConnector:
    return MqttConnector(
        "broker",
        link=broker,
        source_id="e1",
        backoff_initial=0.01,
        backoff_max=0.02,
        connect_timeout=0.3,
    )


async def test_a_refused_subscription_is_warned_once_counted_and_applied_when_granted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Refused at connect: the run starts after connect_wait with one warning naming the broker
    and the refusal; once granted, the retained pause holds the next task."""
    broker = FakeBroker()
    topic = constraint_topic("task:second", "pause")
    broker.retained[topic] = encode_payload(Constraint.pause("task:second"))
    broker.refuse = {FILTER}
    engine = Engine(_connector(broker), heartbeat_interval=None, connect_wait=0.2)
    gate = asyncio.Event()
    blocked = asyncio.Event()
    engine.events.subscribe(
        lambda e: blocked.set() if getattr(e, "state", "") == "BLOCKED" else None
    )
    with caplog.at_level(logging.WARNING, "cascade.runtime.engine"):
        run = asyncio.create_task(engine.run(second(first(gate))))
        await eventually(lambda: engine.stats.constraints_unknown == 1)
        assert engine.constraints == []
        broker.refuse.clear()
        await eventually(lambda: [c.type for c in engine.constraints] == ["pause"])
        gate.set()
        await blocked.wait()  # the pause that came late holds the second task
        assert not run.done()
        broker.route(topic, b"", 1, True)  # resumed
        assert await run == 2
    warnings = [r.getMessage() for r in caplog.records if "(connect_wait)" in r.getMessage()]
    assert len(warnings) == 1
    assert "the broker refused the constraints subscription" in warnings[0]
    assert "(broker broker:1883)" in warnings[0]
    assert not [r for r in caplog.records if "sync_hold" in r.getMessage()]  # said once
    assert engine.stats.constraints_unknown == 1


async def test_granted_within_connect_wait_is_neither_warned_nor_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Refused once, granted within connect_wait: the retained pause holds from the start."""
    broker = FakeBroker()
    topic = constraint_topic("task:second", "pause")
    broker.retained[topic] = encode_payload(Constraint.pause("task:second"))
    broker.refuse = {FILTER}
    connector = _connector(broker)
    engine = Engine(connector, heartbeat_interval=None, connect_wait=5)

    async def grant_after_a_refusal() -> None:
        await eventually(lambda: connector.stats.subscriptions_refused >= 1)
        broker.refuse.clear()

    granting = asyncio.create_task(grant_after_a_refusal())
    gate = asyncio.Event()
    gate.set()
    blocked = asyncio.Event()
    engine.events.subscribe(
        lambda e: blocked.set() if getattr(e, "state", "") == "BLOCKED" else None
    )
    with caplog.at_level(logging.WARNING, "cascade.runtime.engine"):
        run = asyncio.create_task(engine.run(second(first(gate))))
        await blocked.wait()
        broker.route(topic, b"", 1, True)
        assert await run == 2
    await granting
    assert engine.stats.constraints_unknown == 0
    assert not [r for r in caplog.records if "(connect_wait)" in r.getMessage()]
