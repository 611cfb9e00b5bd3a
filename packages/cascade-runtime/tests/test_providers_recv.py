"""``cs.recv`` on the in-memory broker: a task waits for a message on a topic of its run's
org and project and gives its payload; another org's or project's message does not wake it;
a timeout fails it; an engine without a connector says what it needs; a pause holds it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import cascade.runtime as cs
from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.interfaces import Constraint, constraint_topic
from cascade.runtime import Engine, Event, TaskBlocked, TaskEvent, task


class Listening(InMemoryConnector):
    """The engine's connector, telling the test when a subscription under ``/signal/`` is made
    (so the test sends its message after it, not before)."""

    def __init__(self, broker: InMemoryBroker) -> None:
        super().__init__(broker, presence=False)
        self.listening = asyncio.Event()
        self.delivered = 0  # messages given to recv's subscriptions

    async def subscribe(self, topic_filter: str, callback: Any, **kwargs: Any) -> Any:
        if "/signal/" not in topic_filter:
            return await super().subscribe(topic_filter, callback, **kwargs)

        def counted(message: Any) -> Any:
            self.delivered += 1
            return callback(message)

        handle = await super().subscribe(topic_filter, counted, **kwargs)
        self.listening.set()
        return handle


@pytest.fixture
async def sender(broker: InMemoryBroker) -> Any:
    connector = InMemoryConnector(broker, presence=False)
    await connector.connect()
    yield connector
    await connector.disconnect()


@pytest.fixture
def broker() -> InMemoryBroker:
    return InMemoryBroker()


@task
def greet(payload: dict[str, Any]) -> str:
    return f"approved by {payload['by']}"


async def test_recv_gives_the_payload_of_the_runs_topic(
    broker: InMemoryBroker, sender: InMemoryConnector
) -> None:
    """A message on ``cascade/signal/{org}/{project}/{topic}`` wakes ``recv``; one on another
    project's topic of the same name does not."""
    listening = Listening(broker)
    engine = Engine(listening, org_id="acme", project_id="ops", heartbeat_interval=None)
    run = asyncio.create_task(engine.run(greet(cs.recv("approvals/deploy", timeout=30))))
    await asyncio.wait_for(listening.listening.wait(), 10)
    await sender.publish("cascade/signal/acme/other/approvals/deploy", {"by": "mallory"}, qos=1)
    await sender.publish("cascade/signal/acme/ops/approvals/deploy", {"by": "alice"}, qos=1)
    assert await asyncio.wait_for(run, 10) == "approved by alice"
    assert listening.delivered == 1
    await sender.publish("cascade/signal/acme/ops/approvals/deploy", {"by": "late"}, qos=1)
    await broker.idle()
    assert listening.delivered == 1  # unsubscribed once received


async def test_a_retained_message_is_received_at_once(
    broker: InMemoryBroker, sender: InMemoryConnector
) -> None:
    """A retained signal set before the run is what ``recv`` gets as it subscribes."""
    await sender.publish("cascade/signal/local/default/go", {"now": True}, qos=1, retain=True)
    await broker.idle()
    engine = Engine(InMemoryConnector(broker, presence=False), heartbeat_interval=None)
    assert await engine.run(cs.recv("go")) == {"now": True}


async def test_no_message_in_time_fails_with_recv_timeout(broker: InMemoryBroker) -> None:
    """Past ``timeout`` the task fails with ``RecvTimeout`` naming the broker's topic."""
    engine = Engine(InMemoryConnector(broker, presence=False), heartbeat_interval=None)
    with pytest.raises(cs.TaskFailedError) as raised:
        await engine.run(cs.recv("never", timeout=0.05))
    assert raised.value.task_name == "recv"
    timeout = raised.value.exception
    assert isinstance(timeout, cs.RecvTimeout)
    assert isinstance(timeout, TimeoutError)
    assert timeout.topic == "cascade/signal/local/default/never"


async def test_an_engine_without_a_connector_says_what_recv_needs() -> None:
    """Without a connector there is nothing to wait on: the task fails saying so."""
    with pytest.raises(cs.TaskFailedError) as raised:
        await Engine().run(cs.recv("go", timeout=1))
    assert isinstance(raised.value.exception, cs.ResourceMissing)
    assert "needs an engine with a connector" in str(raised.value.exception)


async def test_a_pause_of_recv_holds_it(broker: InMemoryBroker, sender: InMemoryConnector) -> None:
    """``task:recv`` paused holds the task: it does not subscribe until the pause is cleared."""
    events: list[Event] = []
    blocked = asyncio.Event()

    def record(event: Event) -> None:
        events.append(event)
        if isinstance(event, TaskBlocked) and event.task_name == "recv":
            blocked.set()

    pause = Constraint.pause("task:recv")
    topic = constraint_topic(pause.scope, pause.type)
    await sender.publish(topic, pause, qos=1, retain=True)
    await broker.idle()
    listening = Listening(broker)
    engine = Engine(listening, heartbeat_interval=None)
    engine.events.subscribe(record)
    run = asyncio.create_task(engine.run(cs.recv("go", timeout=30)))
    await asyncio.wait_for(blocked.wait(), 10)
    assert not listening.listening.is_set()
    await sender.publish(topic, b"", qos=1, retain=True)
    await asyncio.wait_for(listening.listening.wait(), 10)
    await sender.publish("cascade/signal/local/default/go", {"ok": 1}, qos=1)
    assert await asyncio.wait_for(run, 10) == {"ok": 1}
    states = [e.state for e in events if isinstance(e, TaskEvent) and e.task_name == "recv"]
    assert states == ["BLOCKED", "RUNNING", "COMPLETED"]


async def test_a_signal_over_the_bound_is_not_taken_and_is_counted(
    broker: InMemoryBroker, sender: InMemoryConnector
) -> None:
    """A 16 MB signal does not reach ``recv`` (every other message kind has a bound): it is
    counted and logged, and ``recv`` waits on for one within the bound."""
    listening = Listening(broker)
    engine = Engine(listening, org_id="acme", project_id="ops", heartbeat_interval=None)
    run = asyncio.create_task(engine.run(greet(cs.recv("approvals/deploy", timeout=30))))
    await asyncio.wait_for(listening.listening.wait(), 10)
    topic = "cascade/signal/acme/ops/approvals/deploy"
    await sender.publish(topic, {"by": "mallory", "pad": "x" * 16_000_000}, qos=1)
    await broker.idle()
    assert not run.done()
    assert engine.stats.signals_rejected == 1
    await sender.publish(topic, {"by": "alice", "pad": "x" * 60_000}, qos=1)  # within 64 KiB
    assert await asyncio.wait_for(run, 10) == "approved by alice"
    assert engine.stats.signals_rejected == 1
