"""The connector's lifecycle around a run: connect, disconnect, ownership, cancellation."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap

import pytest

from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.interfaces import InvalidTopicError, status_topic
from cascade.runtime import Engine, Event, RunStarted, TaskFailedError, TaskRunning, task


@task
async def one() -> int:
    return 1


@task
def boom() -> None:
    raise RuntimeError("x")


async def test_engine_connects_and_disconnects() -> None:
    """A run connects an unconnected connector (birth) and disconnects it at the end (offline)."""
    broker = InMemoryBroker()
    connector = InMemoryConnector(broker, source_id="eng")
    await Engine(connector, heartbeat_interval=None).run(one())
    assert not connector.is_connected
    statuses = [
        json.loads(m.raw)["status"] for m in broker.history if m.topic == status_topic("eng")
    ]
    assert statuses == ["online", "offline"]


async def test_already_connected_connector_is_left_connected() -> None:
    """A connector the caller connected stays connected after the run."""
    connector = InMemoryConnector(presence=False)
    await connector.connect()
    await Engine(connector, heartbeat_interval=None).run(one())
    assert connector.is_connected
    await connector.disconnect()


async def test_failed_run_disconnects() -> None:
    """A failing run still disconnects the connector it connected."""
    connector = InMemoryConnector(presence=False)
    with pytest.raises(TaskFailedError):
        await Engine(connector, heartbeat_interval=None).run(boom())
    assert not connector.is_connected


class HangingConnect(InMemoryConnector):
    """A connector whose connect and disconnect never return."""

    async def connect(self, *, require: bool = False) -> None:
        await asyncio.Event().wait()

    async def disconnect(self) -> None:
        await asyncio.Event().wait()


async def test_hanging_connector_is_bounded() -> None:
    """Connect and disconnect are bounded: a hung connector only costs the telemetry."""
    engine = Engine(
        HangingConnect(presence=False),
        heartbeat_interval=None,
        connect_wait=0.05,
        shutdown_timeout=0.05,
    )
    assert await engine.run([one(), one()]) == [1, 1]


async def test_cancellation_stops_publishes_cancelled_and_disconnects() -> None:
    """Cancelling a run starts nothing new, publishes ENGINE_STOPPED with the error, disconnects."""
    broker = InMemoryBroker()
    connector = InMemoryConnector(broker, presence=False)
    started = asyncio.Event()
    after_ran: list[int] = []

    @task
    async def forever() -> int:
        started.set()
        await asyncio.Event().wait()
        return 0

    @task
    def after(x: int) -> int:
        after_ran.append(x)
        return x

    engine = Engine(connector, heartbeat_interval=None)
    events: list[Event] = []
    engine.events.subscribe(events.append)
    run = asyncio.create_task(engine.run(after(forever())))
    await started.wait()
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    assert after_ran == []
    assert not connector.is_connected
    assert isinstance(events[0], RunStarted)
    assert [type(e) for e in events[1:2]] == [TaskRunning]
    bodies = [json.loads(m.raw)["body"] for m in broker.history if m.topic.endswith("/events")]
    assert bodies[-1] == {
        "type": "LifecycleEvent",
        "event": "ENGINE_STOPPED",
        "status": "Failed",  # docs/protocol.md's statuses are Succeeded and Failed
        "error": "CancelledError: the run was cancelled",
        "cancelled": True,  # additive: readers that know it show the run Cancelled
    }
    # every task ends: the one running and the one that never started, as FAILED + cancelled
    ended = {b["task_name"]: b for b in bodies if b["type"] == "TaskStateEvent"}
    for name in ("forever", "after"):
        assert ended[name]["state"] == "FAILED"
        assert ended[name]["cancelled"] is True
        assert ended[name]["error"] == "CancelledError: the run was cancelled"
    assert ended["after"]["duration_ms"] == 0.0


def test_run_shortcut() -> None:
    """cascade.runtime.run runs a target synchronously, passing engine options through."""
    from cascade.runtime import run

    connector = InMemoryConnector(presence=False)
    assert run([one(), one()], connector=connector, heartbeat_interval=None) == [1, 1]


def test_ctrl_c_in_run_publishes_cancelled_and_raises_keyboard_interrupt() -> None:
    """SIGINT during run() cancels the run: ENGINE_STOPPED, then KeyboardInterrupt."""
    code = textwrap.dedent(
        """
        import asyncio, json, os, signal
        from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
        from cascade.runtime import run, task

        broker = InMemoryBroker()

        @task
        async def forever() -> None:
            os.kill(os.getpid(), signal.SIGINT)
            await asyncio.Event().wait()

        connector = InMemoryConnector(broker, presence=False)
        try:
            run(forever(), connector=connector, heartbeat_interval=None)
        except KeyboardInterrupt:
            last = [m for m in broker.history if "/telemetry/" in m.topic][-1]
            body = json.loads(last.raw)["body"]
            print(body["event"], body["status"], body["error"], connector.is_connected)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == (
        "ENGINE_STOPPED Failed CancelledError: the run was cancelled False"
    )


def test_bad_engine_options_are_refused() -> None:
    """An invalid topic prefix or concurrency fails at construction, not in the middle of a run."""
    with pytest.raises(InvalidTopicError):
        Engine(InMemoryConnector(presence=False), topic_prefix="cascade/#")
    with pytest.raises(ValueError, match="max_concurrency"):
        Engine(max_concurrency=0)
