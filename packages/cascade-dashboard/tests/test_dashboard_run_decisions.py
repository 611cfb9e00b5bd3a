"""The page's live runs say the decisions people took on their held tasks, as the history's do:
``/api/state``'s run and ``?run=``'s detail carry ``decisions`` (a real engine on the
in-memory broker, decided through the Controller)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.control import Controller
from cascade.dashboard import DashboardHub, DashboardSettings, create_app
from cascade.runtime import DependencyMissingError, Engine, RunStarted, TaskHeld, task
from cascade.runtime.testing import EventRecorder


async def test_a_live_run_decided_lists_its_decisions_by_kind_and_person(
    broker: InMemoryBroker, hub: DashboardHub
) -> None:
    @task(name="transform", on_failure="hold")
    async def transform(n: int) -> int:
        raise ValueError(f"bad row {n}")

    engine = Engine(InMemoryConnector(broker, source_id="engine-1"), heartbeat_interval=None)
    recorder = EventRecorder()
    engine.events.subscribe(recorder)
    run = asyncio.create_task(engine.run([transform(1), transform(2)]))
    await recorder.until(lambda: len([e for e in recorder.events if isinstance(e, TaskHeld)]) == 2)
    (run_id,) = [e.run_id for e in recorder.events if isinstance(e, RunStarted)]
    first, second = (e.task_id for e in recorder.events if isinstance(e, TaskHeld))
    async with InMemoryConnector(broker, presence=False) as cli:
        assert (await Controller(cli, issued_by="ops-1", timeout=5).run(run_id).skip(first)).applied
        done = (
            await Controller(cli, issued_by="ops-2", timeout=5)
            .run(run_id)
            .complete(second, result=1)
        )
        assert done.applied
    with pytest.raises(DependencyMissingError):  # its first item skipped: no result
        await asyncio.wait_for(run, 10)
    await broker.idle()
    transport = httpx.ASGITransport(app=create_app(hub, DashboardSettings(token=None)))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
        state = (await http.get("/api/state", params={"run": run_id})).json()
    (listed,) = state["runs"]
    expected = [
        {"decision": "skip", "by": "ops-1", "count": 1},
        {"decision": "complete", "by": "ops-2", "count": 1},
    ]
    assert (listed["status"], listed["decisions"], listed["decisions_others"]) == (
        "Succeeded",
        expected,
        0,
    )
    assert state["run"]["decisions"] == expected
