"""Converging on the broker: after a (re)subscription, what it no longer retains is dropped."""

from __future__ import annotations

import asyncio
import logging
import math

import pytest

from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.interfaces import Constraint, Message, constraint_topic, encode_payload
from cascade.runtime import ConstraintManager, Engine, task


def retained(constraint: Constraint) -> Message:
    topic = constraint_topic(constraint.scope, constraint.type)
    raw = encode_payload(constraint)
    return Message(topic=topic, payload={"_": 1}, raw=raw, qos=1, retain=True)


async def test_a_constraint_the_snapshot_lacks_is_dropped_and_wakes() -> None:
    """Set before the resubscription, absent from its snapshot: dropped, counted, woken."""
    manager = ConstraintManager()
    woken: list[None] = []
    manager.on_change(lambda: woken.append(None))
    manager.handle_message(retained(Constraint.pause("global")))
    manager.sync("begin")
    woken.clear()
    manager.sync("end")
    assert manager.constraints == []
    assert manager.admit("t") is None
    assert manager.stats.unretained == 1
    assert woken


async def test_a_constraint_delivered_again_stays_with_its_tokens() -> None:
    """Delivered again in the snapshot: kept, and a rate limit keeps its spent tokens."""
    manager = ConstraintManager(monotonic=lambda: 0.0)
    limit = Constraint.rate_limit("task:t", "1/m")
    manager.handle_message(retained(limit))
    assert manager.admit("t") is None  # the one token
    manager.sync("begin")
    manager.handle_message(retained(limit))
    manager.sync("end")
    assert manager.constraints == [limit]
    assert manager.admit("t") == pytest.approx(60.0)
    assert manager.stats.unretained == 0


async def test_live_messages_after_begin_and_in_process_constraints_stay() -> None:
    """What arrives after "begin" is the broker's present; ``apply()`` in process is not its."""
    manager = ConstraintManager()
    manager.apply(Constraint.concurrency("task:a", 1))
    manager.sync("begin")
    live = retained(Constraint.pause("task:b"))
    manager.handle_message(Message(live.topic, live.payload, live.raw, qos=1, retain=False))
    manager.sync("end")
    assert sorted(c.scope for c in manager.constraints) == ["task:a", "task:b"]


async def test_a_second_begin_moves_the_line() -> None:
    """A connection lost mid-snapshot: only the last snapshot counts."""
    manager = ConstraintManager()
    manager.sync("begin")
    manager.handle_message(retained(Constraint.pause("global")))
    manager.sync("begin")  # lost again before "end"
    manager.sync("end")
    assert manager.constraints == []


async def test_end_without_begin_drops_nothing() -> None:
    """A subscription added while a reconnection synced hears only "end"."""
    manager = ConstraintManager()
    manager.handle_message(retained(Constraint.pause("global")))
    manager.sync("end")
    assert manager.admit("t") == math.inf


async def test_no_task_starts_while_the_snapshot_arrives() -> None:
    """Between "begin" and "end" admission waits: what was set meanwhile applies first."""
    manager = ConstraintManager()
    manager.sync("begin")
    assert manager.admit("t") == math.inf
    manager.handle_message(retained(Constraint.pause("task:t")))
    manager.sync("end")
    assert manager.admit("t") == math.inf  # the pause from the snapshot, not the hold
    assert manager.admit("u") is None
    manager.close()


async def test_a_snapshot_that_never_ends_holds_tasks_only_sync_hold(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A broker that hangs mid-snapshot: tasks start again after sync_hold, with a warning."""
    manager = ConstraintManager(sync_hold=0.01)
    released = asyncio.Event()
    manager.on_change(released.set)
    manager.sync("begin")
    assert manager.admit("t") == math.inf
    with caplog.at_level(logging.WARNING, "cascade.runtime.constraints"):
        await released.wait()
    assert manager.admit("t") is None
    assert "sync_hold" in caplog.text
    manager.close()


@task(name="step")
async def step(i: int) -> int:
    return i


async def test_engine_converges_across_a_lost_connection() -> None:
    """In-memory broker: a pause cleared while the engine's connector was away stops holding."""
    broker = InMemoryBroker()
    operator = InMemoryConnector(broker, presence=False)
    engine_side = InMemoryConnector(broker, source_id="e")
    await operator.connect()
    topic = constraint_topic("global", "pause")
    await operator.publish(topic, Constraint.pause("global"), 1, True)
    engine = Engine(engine_side, heartbeat_interval=None)
    held = asyncio.Event()
    engine.events.subscribe(lambda e: held.set() if getattr(e, "state", "") == "BLOCKED" else None)
    run = asyncio.create_task(engine.run([step(i) for i in range(3)]))
    await held.wait()
    await engine_side.crash()
    await operator.publish(topic, b"", 1, True)  # resumed while the engine is away
    assert [c.type for c in engine.constraints] == ["pause"]
    await engine_side.connect()
    assert await run == [0, 1, 2]
    assert engine.stats.unretained == 1
    await operator.disconnect()


async def test_cap_rejects_new_constraints_only(caplog: pytest.LogCaptureFixture) -> None:
    """Beyond max_constraints a new one is rejected, counted, warned; replacing still works."""
    manager = ConstraintManager(max_constraints=2)
    manager.handle_message(retained(Constraint.pause("task:a")))
    manager.handle_message(retained(Constraint.pause("task:b")))
    with caplog.at_level(logging.WARNING, "cascade.runtime.constraints"):
        manager.handle_message(retained(Constraint.pause("task:c")))
        manager.handle_message(retained(Constraint.pause("task:d")))
    assert sorted(c.scope for c in manager.constraints) == ["task:a", "task:b"]
    assert manager.stats.rejected_over_cap == 2
    assert "max_constraints" in caplog.text
    assert len([r for r in caplog.records if "rejected constraint" in r.message]) == 1
    manager.handle_message(retained(Constraint.concurrency("task:a", 1)))  # new key: rejected
    manager.handle_message(retained(Constraint.pause("task:b", expires_at=4e9)))  # replaces
    assert manager.stats.rejected_over_cap == 3
    assert [c.expires_at for c in manager.constraints if c.scope == "task:b"] == [4e9]


def test_max_constraints_must_not_be_negative() -> None:
    """A negative cap is a clear error, in the manager and the engine."""
    with pytest.raises(ValueError, match="max_constraints"):
        ConstraintManager(max_constraints=-1)
    with pytest.raises(ValueError, match="max_constraints"):
        Engine(max_constraints=-1)
