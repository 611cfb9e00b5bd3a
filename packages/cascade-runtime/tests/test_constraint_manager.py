"""The constraint manager: pause, concurrency, rate limits, TTL, replacement and clearing."""

from __future__ import annotations

import asyncio
import json
import math
import time
from typing import Any

import pytest

from cascade.interfaces import Constraint, Message, constraint_topic, encode_payload
from cascade.runtime import ConstraintManager


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def message(topic: str, payload: Any) -> Message:
    raw = payload if isinstance(payload, bytes) else encode_payload(payload)
    decoded = json.loads(raw) if raw else {}
    return Message(topic=topic, payload=decoded if isinstance(decoded, dict) else {}, raw=raw)


def send(manager: ConstraintManager, constraint: Constraint, typed: bool = True) -> str:
    topic = constraint_topic(constraint.scope, constraint.type if typed else None)
    manager.handle_message(message(topic, constraint))
    return topic


def test_pause_blocks_matching_tasks_only() -> None:
    """A pause on task:api_* blocks api_call until cleared, never other tasks."""
    manager = ConstraintManager()
    topic = send(manager, Constraint.pause("task:api_*"))
    assert manager.admit("api_call") == math.inf
    assert manager.admit("db_write") is None
    manager.handle_message(message(topic, b""))
    assert manager.admit("api_call") is None
    assert manager.constraints == []


def test_global_pause_blocks_everything() -> None:
    """A global pause matches every task name."""
    manager = ConstraintManager()
    send(manager, Constraint.pause("global"))
    assert manager.admit("anything") == math.inf


def test_concurrency_limit_counts_running_matching_tasks() -> None:
    """At most limit matching tasks are admitted until one finishes; limit 0 admits none."""
    manager = ConstraintManager()
    send(manager, Constraint.concurrency("task:w*", 2))
    assert manager.admit("w1") is None
    assert manager.admit("w2") is None
    assert manager.admit("w3") == math.inf
    assert manager.admit("other") is None
    manager.finished("w1")
    assert manager.admit("w3") is None
    send(manager, Constraint.concurrency("task:w*", 0))
    manager.finished("w2")
    manager.finished("w3")
    assert manager.admit("w4") == math.inf


def test_tasks_running_before_a_limit_count_against_it() -> None:
    """A limit published mid-run counts the matching tasks already running."""
    manager = ConstraintManager()
    assert manager.admit("w") is None
    assert manager.admit("w") is None
    send(manager, Constraint.concurrency("global", 2))
    assert manager.admit("w") == math.inf


def test_rate_below_one_per_second_lets_tasks_through() -> None:
    """30/m lets one task through now and the next exactly two seconds later."""
    monotonic = FakeClock()
    manager = ConstraintManager(monotonic=monotonic)
    send(manager, Constraint.rate_limit("task:api_call", "30/m"))
    assert manager.admit("api_call") is None
    assert manager.admit("api_call") == pytest.approx(2.0)
    monotonic.now += 1.5
    assert manager.admit("api_call") == pytest.approx(0.5)
    monotonic.now += 0.5
    assert manager.admit("api_call") is None


@pytest.mark.parametrize(("rate", "interval"), [("1/h", 3600.0), (0.01, 100.0), ("0.5/s", 2.0)])
def test_any_valid_rate_has_a_finite_wait(rate: str | float, interval: float) -> None:
    """Every valid rate gives a finite wait equal to one token's refill time."""
    monotonic = FakeClock()
    manager = ConstraintManager(monotonic=monotonic)
    send(manager, Constraint.rate_limit("global", rate))
    assert manager.admit("t") is None
    assert manager.admit("t") == pytest.approx(interval)
    monotonic.now += interval
    assert manager.admit("t") is None


def test_rate_capacity_allows_a_burst() -> None:
    """params.capacity lets that many tasks start at once after a quiet spell."""
    manager = ConstraintManager(monotonic=FakeClock())
    send(manager, Constraint.rate_limit("global", "1/s", capacity=3))
    assert [manager.admit("t") for _ in range(3)] == [None, None, None]
    assert manager.admit("t") == pytest.approx(1.0)


def test_a_rate_limit_received_again_gives_no_new_burst() -> None:
    """The same limit again (retained, after a reconnect), or a new rate, keeps the spent tokens."""
    monotonic = FakeClock()
    manager = ConstraintManager(monotonic=monotonic)
    send(manager, Constraint.rate_limit("global", "1/m", capacity=2))
    assert [manager.admit("t") for _ in range(2)] == [None, None]
    send(manager, Constraint.rate_limit("global", "1/m", capacity=2))
    assert manager.admit("t") == pytest.approx(60.0)
    send(manager, Constraint.rate_limit("global", "2/m"))
    assert manager.admit("t") == pytest.approx(30.0)
    monotonic.now += 30.0
    assert manager.admit("t") is None


def test_same_scope_and_type_replaces() -> None:
    """A new constraint with the same scope and type replaces the old, whatever its id."""
    manager = ConstraintManager()
    send(manager, Constraint.concurrency("global", 1))
    newer = Constraint.concurrency("global", 3)
    newer.id = "another-id"
    send(manager, newer)
    assert [(c.id, c.limit) for c in manager.constraints] == [("another-id", 3)]


def test_pause_and_limit_on_one_scope_coexist_and_clear_separately() -> None:
    """On per-type topics, a pause and a limit on one scope are set and cleared independently."""
    manager = ConstraintManager()
    pause_topic = send(manager, Constraint.pause("task:a*"))
    send(manager, Constraint.concurrency("task:a*", 1))
    assert {c.type for c in manager.constraints} == {"pause", "concurrency"}
    assert manager.admit("a1") == math.inf
    manager.handle_message(message(pause_topic, b""))
    assert [c.type for c in manager.constraints] == ["concurrency"]
    assert manager.admit("a1") is None
    assert manager.admit("a2") == math.inf


def test_legacy_scope_topic_keeps_both_and_clears_both() -> None:
    """Pause then limit on the one per-scope topic both hold; its empty payload clears both."""
    manager = ConstraintManager()
    topic = send(manager, Constraint.pause("global"), typed=False)
    assert send(manager, Constraint.concurrency("global", 1), typed=False) == topic
    assert len(manager.constraints) == 2
    manager.handle_message(message(topic, b""))
    assert manager.constraints == []
    assert manager.stats.cleared == 1


def test_clearing_a_topic_keeps_what_another_topic_set_since() -> None:
    """If another topic re-set the same (scope, type), clearing the first topic keeps it."""
    manager = ConstraintManager()
    legacy = send(manager, Constraint.pause("global"), typed=False)
    send(manager, Constraint.pause("global"), typed=True)
    manager.handle_message(message(legacy, b""))
    assert [c.type for c in manager.constraints] == ["pause"]


def test_changes_notify_listeners() -> None:
    """Applying and clearing call the on_change callbacks (which wake the scheduler)."""
    manager = ConstraintManager()
    calls: list[int] = []
    manager.on_change(lambda: calls.append(1))
    topic = send(manager, Constraint.pause("global"))
    manager.handle_message(message(topic, b""))
    assert len(calls) == 2


async def test_expiry_ends_a_constraint_by_itself() -> None:
    """A constraint ends at expires_at without anyone clearing it, and listeners are told."""
    manager = ConstraintManager()
    expired = asyncio.Event()
    send(manager, Constraint.pause("global", expires_at=time.time() + 0.05))
    manager.on_change(expired.set)
    assert manager.admit("t") == math.inf
    await asyncio.wait_for(expired.wait(), 5)
    assert manager.constraints == []
    assert manager.stats.expired == 1
    assert manager.admit("t") is None
    manager.close()


async def test_replaced_constraint_does_not_expire_its_successor() -> None:
    """Replacing a constraint cancels its expiry; the successor stays in force."""
    clock = FakeClock(time.time())
    manager = ConstraintManager(clock=clock)
    send(manager, Constraint.pause("global", expires_at=clock.now + 0.01))
    send(manager, Constraint.pause("global"))
    await asyncio.sleep(0.05)  # past the first one's expiry: nothing may happen
    assert [c.type for c in manager.constraints] == ["pause"]
    assert manager.stats.expired == 0


def test_constraint_already_expired_is_not_applied() -> None:
    """A constraint whose expires_at has passed replaces its predecessor and is gone."""
    clock = FakeClock(2_000_000_000.0)
    manager = ConstraintManager(clock=clock)
    send(manager, Constraint.pause("global"))
    send(manager, Constraint.pause("global", expires_at=clock.now - 1))
    assert manager.constraints == []
    assert manager.stats.expired == 1
