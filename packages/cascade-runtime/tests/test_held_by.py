"""Every wait says why: a BLOCKED event names what holds the task, and heartbeats say it again."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.interfaces import (
    Constraint,
    Heartbeat,
    Hold,
    Message,
    constraint_topic,
    decode_envelope,
    encode_payload,
)
from cascade.runtime import ConstraintManager, Engine, TaskBlocked, TaskRunning, task
from cascade.runtime.testing import EventRecorder

MAX_HOLDS = 8  # the protocol's bound, as docs/protocol.md states it


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def send(manager: ConstraintManager, constraint: Constraint) -> None:
    """Hand ``manager`` the constraint as the broker would, on its own topic."""
    raw = encode_payload(constraint)
    topic = constraint_topic(constraint.scope, constraint.type)
    manager.handle_message(Message(topic=topic, payload=json.loads(raw), raw=raw))


def test_a_pause_names_its_scope_reason_and_issuer() -> None:
    """The pause's scope, type, reason and issued_by; nothing for a task it does not govern."""
    manager = ConstraintManager()
    send(manager, Constraint.pause("task:load_*", reason="maintenance", issued_by="alice"))
    assert manager.holds("load_daily") == [
        Hold(type="pause", scope="task:load_*", reason="maintenance", issued_by="alice")
    ]
    assert manager.holds("other") == []


def test_a_full_concurrency_limit_names_the_tasks_holding_its_slots() -> None:
    """limit, running and the names of the running tasks that fill it; none while it has room."""
    manager = ConstraintManager()
    send(manager, Constraint.concurrency("task:api_*", 3))
    assert manager.admit("api_get") is None
    assert manager.admit("api_get") is None
    assert manager.holds("api_put") == []  # 2 of 3: it would start
    assert manager.admit("api_post") is None
    assert manager.holds("api_put") == [
        Hold(
            type="concurrency",
            scope="task:api_*",
            limit=3,
            running=3,
            holders={"api_get": 2, "api_post": 1},
        )
    ]


def test_an_empty_rate_limit_says_when_the_next_start_is_due() -> None:
    """next_start is wall time, one token's wait after the last start."""
    clock, monotonic = FakeClock(1_000.0), FakeClock(50.0)
    manager = ConstraintManager(clock=clock, monotonic=monotonic)
    send(manager, Constraint.rate_limit("global", "2/s"))
    assert manager.admit("a") is None
    assert manager.admit("a") is None
    assert manager.holds("a") == [
        Hold(type="rate_limit", scope="global", rate="2/s", next_start=1_000.5)
    ]
    monotonic.now += 0.5
    assert manager.holds("a") == []


async def test_waiting_for_the_brokers_constraints_is_a_hold_of_its_own() -> None:
    """Between a subscription's begin and end no task starts: the hold says so."""
    manager = ConstraintManager()
    manager.sync("begin")
    assert manager.holds("a") == [Hold(type="sync")]
    manager.sync("end")
    assert manager.holds("a") == []
    manager.close()


@task
async def load_daily() -> int:
    return 1


async def _blocked_run(
    broker: InMemoryBroker, constraint: Constraint, heartbeat: float | None = None
) -> tuple[Engine, EventRecorder, asyncio.Task[Any]]:
    async with InMemoryConnector(broker, presence=False) as controller:
        topic = constraint_topic(constraint.scope, constraint.type)
        await controller.publish(topic, constraint, qos=1, retain=True)
    engine = Engine(InMemoryConnector(broker, presence=False), heartbeat_interval=heartbeat)
    recorder = EventRecorder()
    engine.events.subscribe(recorder)
    run = asyncio.create_task(engine.run(load_daily()))
    await recorder.until(lambda: bool(recorder.names(TaskBlocked)))
    return engine, recorder, run


async def test_the_blocked_event_and_its_envelope_carry_held_by() -> None:
    """The engine's BLOCKED event names the pause; on the wire it is the body's held_by, and
    the other task states stay exactly as they were."""
    broker = InMemoryBroker()
    seen: list[dict[str, Any]] = []
    async with InMemoryConnector(broker, presence=False) as watcher:
        await watcher.subscribe("cascade/telemetry/#", lambda m: seen.append(m.payload))
        pause = Constraint.pause("task:load_*", reason="maintenance", issued_by="alice")
        _, recorder, run = await _blocked_run(broker, pause)
        (blocked,) = [e for e in recorder.events if isinstance(e, TaskBlocked)]
        expected = Hold(type="pause", scope="task:load_*", reason="maintenance", issued_by="alice")
        assert blocked.held_by == (expected,)
        async with InMemoryConnector(broker, presence=False) as controller:
            await controller.publish(constraint_topic(pause.scope, "pause"), b"", 1, retain=True)
        assert await asyncio.wait_for(run, 5) == 1
        await broker.idle()
    bodies = [m["body"] for m in seen if m["body"]["type"] == "TaskStateEvent"]
    by_state = {body["state"]: body for body in bodies}
    assert by_state["BLOCKED"]["held_by"] == [
        {"type": "pause", "scope": "task:load_*", "reason": "maintenance", "issued_by": "alice"}
    ]
    assert set(by_state["RUNNING"]) == {
        "type", "task_id", "task_name", "state", "duration_ms", "error"
    }  # fmt: skip


async def test_a_heartbeat_lists_the_blocked_tasks_with_what_holds_them_now() -> None:
    """A reader that missed the BLOCKED event learns from a heartbeat; it says what holds the
    task now (a limit set after it blocked too), not only what held it when it blocked."""
    broker = InMemoryBroker()
    _, recorder, run = await _blocked_run(broker, Constraint.pause("task:load_*"), heartbeat=0.05)
    both = asyncio.Event()
    listed: list[Any] = []  # the heartbeats' blocked tasks

    def on_heartbeat(message: Message) -> None:
        body = decode_envelope(message.raw).body
        assert isinstance(body, Heartbeat)
        if isinstance(body.blocked_tasks, list) and len(body.blocked_tasks[0].held_by) == 2:
            listed[:] = body.blocked_tasks
            both.set()

    async with InMemoryConnector(broker, presence=False) as controller:
        await controller.subscribe("cascade/telemetry/+/+/+/heartbeat", on_heartbeat)
        limit = Constraint.concurrency("global", 0, reason="drain")
        await controller.publish(constraint_topic("global", "concurrency"), limit, 1, retain=True)
        await asyncio.wait_for(both.wait(), 5)
        await controller.publish(constraint_topic("task:load_*", "pause"), b"", 1, retain=True)
        await controller.publish(constraint_topic("global", "concurrency"), b"", 1, retain=True)
    assert await asyncio.wait_for(run, 5) == 1
    assert recorder.names(TaskRunning) == ["load_daily"]
    (blocked,) = listed
    assert blocked.task_name == "load_daily"
    assert blocked.since is not None
    assert [(h.type, h.scope, h.reason) for h in blocked.held_by] == [
        ("pause", "task:load_*", None),
        ("concurrency", "global", "drain"),
    ]


def test_held_by_is_bounded() -> None:
    """However many constraints hold a task, a BLOCKED event names at most MAX_HOLDS."""
    manager = ConstraintManager()
    for i in range(MAX_HOLDS + 5):
        send(manager, Constraint.pause(f"task:load_{'*' * (i + 1)}"))
    assert len(manager.holds("load_daily")) == MAX_HOLDS


@pytest.mark.parametrize("held", [[], [{"type": "some_later_kind", "scope": "global"}]])
def test_readers_take_held_by_of_any_type(held: list[dict[str, Any]]) -> None:
    """A later engine's hold types decode (readers show at least the type)."""
    body = {"type": "TaskStateEvent", "task_id": "t", "task_name": "n", "state": "BLOCKED"}
    raw = json.dumps(
        {"run_id": "r", "org_id": "o", "project_id": "p", "source": "s",
         "body": {**body, "held_by": held}}
    )  # fmt: skip
    decoded = decode_envelope(raw).body
    assert [h.type for h in decoded.held_by] == [h["type"] for h in held]  # type: ignore[union-attr]
