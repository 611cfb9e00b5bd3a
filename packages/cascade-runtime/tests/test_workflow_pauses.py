"""A pause on ``workflow:<name>`` holds that served workflow's new runs: its start requests are
refused (saying who paused it and why), its schedules' slots skipped (counted paused); the
announcement says it is paused; the runs under way go on; resumed, it starts again."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.control import ControlError, Controller, Limit
from cascade.interfaces.serving import ServedAnnouncement, decode_served, served_topic
from cascade.runtime import Engine, RunFinished, Schedule, task
from cascade.runtime.testing import eventually, serving

GATE: asyncio.Event | None = None


@task(name="load")
async def load(day: str = "any") -> str:
    if GATE is not None:
        await GATE.wait()
    return day


@task(name="report")
def report() -> str:
    return "report"


@pytest.fixture
def broker() -> InMemoryBroker:
    return InMemoryBroker()


async def test_a_paused_workflow_refuses_its_starts_and_skips_its_slots_until_resumed(
    broker: InMemoryBroker,
) -> None:
    """While workflow:load is paused: a start of load is refused naming the pause, report
    starts, load's schedule skips its slots (paused), and the announcement says so."""
    global GATE
    GATE = None
    engine = Engine(InMemoryConnector(broker, source_id="s1"), heartbeat_interval=None)
    schedules = {"tick": Schedule(every=timedelta(seconds=1), workflow="load")}
    seen: list[ServedAnnouncement] = []
    async with InMemoryConnector(broker, source_id="ops", presence=False) as ops:
        await ops.subscribe(
            served_topic(engine.org_id, engine.project_id, "s1"),
            lambda m: seen.append(decode_served(m.raw)) if m.raw else None,
        )
        control = Controller(ops, issued_by="alice", timeout=5)
        await control.pause("workflow:load", reason="db migration")
        workflows = {"load": load, "report": report}
        async with serving(engine, workflows=workflows, schedules=schedules) as runs:
            await eventually(lambda: engine.stats.slots_paused >= 1, timeout=6)
            refused = await control.start("load")
            assert refused.outcome == "refused"
            assert refused.error == (
                "load is paused by alice: db migration: it starts no new run until resumed "
                "(cascade resume workflow:load)"
            )
            assert (await control.start("report")).outcome == "started"
            await eventually(lambda: len(runs) == 1)
            described = {w.name: w for w in seen[-1].workflows}
            assert described["load"].paused
            assert described["load"].paused_by == "alice"
            assert described["load"].paused_reason == "db migration"
            assert not described["report"].paused
            assert (
                "its workflow load is paused by alice: db migration"
                in seen[-1].schedules[0].last_skipped
            )
            await control.resume("workflow:load")
            await eventually(lambda: not {w.name: w for w in seen[-1].workflows}["load"].paused)
            assert (await control.start("load")).outcome == "started"
            await eventually(lambda: len(runs) >= 3, timeout=5)  # the schedule fires again


async def test_runs_under_way_go_on_when_their_workflow_is_paused(broker: InMemoryBroker) -> None:
    """A run of load started before the pause ends as it would have (Succeeded), while a new
    start of load is refused."""
    global GATE
    GATE = asyncio.Event()
    engine = Engine(InMemoryConnector(broker, source_id="s2"), heartbeat_interval=None)
    ended: list[RunFinished] = []
    engine.events.subscribe(lambda e: ended.append(e) if isinstance(e, RunFinished) else None)
    try:
        async with InMemoryConnector(broker, source_id="ops", presence=False) as ops:
            control = Controller(ops, issued_by="alice", timeout=5)
            seen: list[ServedAnnouncement] = []
            await ops.subscribe(
                served_topic(engine.org_id, engine.project_id, "s2"),
                lambda m: seen.append(decode_served(m.raw)) if m.raw else None,
            )
            async with serving(engine, workflows={"load": load}) as runs:
                await eventually(lambda: len(seen) >= 1)  # it serves
                started = await control.start("load", {"day": "mon"})
                assert started.outcome == "started"
                await eventually(lambda: len(runs) == 1)
                await control.pause("workflow:load")
                await eventually(lambda: seen[-1].workflows[0].paused)  # its servers heard it
                refused = await control.start("load")
                assert refused.outcome == "refused", refused
                GATE.set()
                await eventually(lambda: len(ended) == 1, timeout=5)
        assert [(e.run_id, e.status) for e in ended] == [(started.run_id, "Succeeded")]
    finally:
        GATE = None


def test_a_workflow_is_paused_not_limited() -> None:
    """A limit on workflow:NAME is refused before anything is sent."""

    with pytest.raises(ControlError, match="workflow: it is paused and resumed, not limited"):
        Limit(scope="workflow:load", concurrency=1)
