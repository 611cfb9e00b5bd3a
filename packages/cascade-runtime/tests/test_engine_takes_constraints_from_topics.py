"""A constraint's scope and type are its topic's: what an ACL grants one scope steers no other.

The attacks of issue 45, on the in-memory broker (the broker's ACL grants the topic, so each
attacker here publishes only on the topics of a scope it was given): an operator over
``task:etl_*`` tries to pause every task, to limit ``task:*`` and to lift an admin's pause.
"""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any

import pytest

from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.interfaces import Constraint, Message, constraint_topic
from cascade.runtime import ConstraintManager, Engine, Event, TaskBlocked, TaskRunning, task

ETL_PAUSE = constraint_topic("task:etl_*", "pause")  # cascade/constraints/task/etl_%2A/pause
ETL_LIMIT = constraint_topic("task:etl_*", "concurrency")
ETL_SCOPE = constraint_topic("task:etl_*")  # docs/protocol.md's per-scope topic


def raw(scope: str, kind: str = "pause", **params: Any) -> bytes:
    return json.dumps({"id": f"{kind}-x", "scope": scope, "type": kind, "params": params}).encode()


def message(topic: str, payload: bytes) -> Message:
    return Message(topic=topic, payload=json.loads(payload) if payload else {}, raw=payload)


def test_a_global_pause_on_a_task_scope_topic_is_refused(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The attack's payload, retained on the operator's topic: refused, counted, logged."""
    manager = ConstraintManager()
    manager.handle_message(message(ETL_PAUSE, raw("global")))
    manager.handle_message(message(ETL_SCOPE, raw("global")))
    assert manager.constraints == []
    assert manager.admit("web_report") is None
    assert (manager.stats.rejected_topic, manager.stats.rejected_control) == (2, 0)
    assert "refused a constraint on 'cascade/constraints/task/etl_%2A/pause'" in caplog.text


def test_a_wider_limit_on_a_task_scope_topic_is_refused() -> None:
    """A ``task:*`` limit of 1 on the ``task:etl_*`` topic limits nothing."""
    manager = ConstraintManager()
    manager.handle_message(message(ETL_LIMIT, raw("task:*", "concurrency", limit=1)))
    assert manager.constraints == []
    assert manager.stats.rejected_topic == 1


def test_a_type_other_than_its_topics_is_refused() -> None:
    """A per-type topic holds its type only; the per-scope topic of docs/protocol.md any."""
    manager = ConstraintManager()
    manager.handle_message(message(ETL_PAUSE, raw("task:etl_*", "concurrency", limit=0)))
    assert manager.stats.rejected_topic == 1
    manager.handle_message(message(ETL_SCOPE, raw("task:etl_*", "concurrency", limit=0)))
    manager.handle_message(message(ETL_PAUSE, raw("task:etl_*")))
    assert sorted(c.type for c in manager.constraints) == ["concurrency", "pause"]
    assert manager.stats.accepted == 2


def test_the_existing_tools_topics_are_read_as_their_scopes() -> None:
    """Unescaped (``task/api_*``) and multi-level (``task/a/b``) per-scope topics keep working."""
    manager = ConstraintManager()
    manager.handle_message(message("cascade/constraints/task/api_*", raw("task:api_*")))
    manager.handle_message(message("cascade/constraints/task/a/b", raw("task:a/b")))
    manager.handle_message(message("cascade/constraints/global", raw("global")))
    assert sorted(c.scope for c in manager.constraints) == ["global", "task:a/b", "task:api_*"]
    assert manager.stats.rejected_topic == 0


def test_a_clear_never_removes_what_another_topic_holds() -> None:
    """An admin's global pause stays through any set and clear on an operator's topic."""
    manager = ConstraintManager()
    admin = constraint_topic("global", "pause")
    manager.handle_message(message(admin, raw("global")))
    manager.handle_message(message(ETL_PAUSE, raw("global")))  # the same key, claimed
    manager.handle_message(message(ETL_PAUSE, raw("task:etl_*")))  # their own
    manager.handle_message(message(ETL_PAUSE, b""))
    manager.handle_message(message(ETL_SCOPE, b""))
    assert [(c.scope, c.type) for c in manager.constraints] == [("global", "pause")]
    assert manager.admit("web_report") == math.inf
    manager.handle_message(message(admin, b""))
    assert manager.constraints == []


@task
async def web_report() -> str:
    return "report"


@task
async def etl_load() -> str:
    return "loaded"


async def test_an_operators_topic_steers_only_its_own_scope() -> None:
    """Engine, end to end: the attacker's global pause and ``task:*`` limit, retained on its
    topics, hold nothing; its own pause holds ``etl_*`` tasks, and the admin's global pause,
    which the attacker tried to lift, still holds everything until the admin clears it."""
    broker = InMemoryBroker()
    operator = InMemoryConnector(broker, presence=False)
    await operator.connect()
    await operator.publish(ETL_PAUSE, raw("global"), qos=1, retain=True)
    await operator.publish(ETL_LIMIT, raw("task:*", "concurrency", limit=1), qos=1, retain=True)
    engine = Engine(InMemoryConnector(broker, presence=False), heartbeat_interval=None)
    assert await engine.run([web_report(), web_report()]) == ["report", "report"]
    assert engine.stats.rejected_topic == 2

    await operator.publish(ETL_PAUSE, raw("task:etl_*"), qos=1, retain=True)  # honest
    admin = constraint_topic("global", "pause")
    await operator.publish(admin, Constraint.pause("global"), qos=1, retain=True)
    started: list[str] = []
    blocked: list[str] = []
    both_held = asyncio.Event()

    def seen(event: Event) -> None:
        if isinstance(event, TaskRunning):
            started.append(event.task_name)
        elif isinstance(event, TaskBlocked):
            blocked.append(event.task_name)
            if len(blocked) == 2:
                both_held.set()

    engine.events.subscribe(seen)
    run = asyncio.create_task(engine.run([web_report(), etl_load()]))
    await both_held.wait()
    assert {(c.scope, c.type) for c in engine.constraints} == {
        ("global", "pause"),
        ("task:etl_*", "pause"),
    }
    await operator.publish(ETL_SCOPE, raw("global"), qos=1, retain=True)  # takes no key
    await operator.publish(ETL_SCOPE, b"", qos=1, retain=True)
    await operator.publish(ETL_PAUSE, b"", qos=1, retain=True)
    await broker.idle()
    assert [(c.scope, c.type) for c in engine.constraints] == [("global", "pause")]
    assert started == []
    await operator.publish(admin, b"", qos=1, retain=True)
    assert await run == ["report", "loaded"]
    await operator.disconnect()
