"""cascade.control's decisions against a real engine on the in-memory broker: what the engine
answers is what the Controller says; a refusal, which makes no telemetry, is still taken from
the run's owner (heard from the snapshot it is asked for)."""

from __future__ import annotations

import asyncio

import pytest

from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.control import Controller
from cascade.runtime import DependencyMissingError, Engine, RunStarted, TaskHeld, task
from cascade.runtime.testing import EventRecorder


async def test_a_retry_applied_then_a_second_refused_naming_the_first() -> None:
    broker = InMemoryBroker()
    api_up = asyncio.Event()

    @task(name="load", on_failure="hold")
    async def load(n: int) -> int:
        if not api_up.is_set():
            raise ConnectionError("the API is down")
        return n * 2

    @task(name="report")
    async def report(value: int) -> str:
        return f"report of {value}"

    @task(name="side", on_failure="hold")
    async def side(n: int) -> int:
        raise KeyError("id")

    # no heartbeats: a controller hears the owner from the snapshot it asks for, or not at all
    engine = Engine(InMemoryConnector(broker, source_id="engine-1"), heartbeat_interval=None)
    recorder = EventRecorder()
    engine.events.subscribe(recorder)
    run = asyncio.create_task(engine.run([report(load(4)), side(1)]))
    await recorder.until(lambda: len([e for e in recorder.events if isinstance(e, TaskHeld)]) == 2)
    (run_id,) = [e.run_id for e in recorder.events if isinstance(e, RunStarted)]
    async with InMemoryConnector(broker, presence=False) as cli:
        alice = Controller(cli, issued_by="alice", timeout=5)
        bob = Controller(cli, issued_by="bob", timeout=5)
        stale = await bob.run(run_id).skip("side", attempt=2)
        assert stale.reply is not None
        assert (stale.reply.outcome, stale.owner) == ("stale_attempt", "engine-1")
        skipped = await alice.run(run_id).skip("side", attempt=1, reason="not today")
        assert skipped.applied
        again = await bob.run(run_id).fail("side", attempt=1)
        assert again.reply is not None
        assert again.reply.outcome == "already_decided"
        assert "already decided: skip by alice " in again.describe()
        assert again.describe().endswith(" s ago (not today)")
        api_up.set()
        retried = await alice.run(run_id).retry("load", reason="API back")
        assert retried.applied, retried.describe()
    with pytest.raises(DependencyMissingError, match=r"<Target Output>\[1\]"):
        await asyncio.wait_for(run, 10)  # side skipped: the run succeeded, side has no result
