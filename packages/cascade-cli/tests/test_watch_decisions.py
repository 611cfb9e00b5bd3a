"""`cascade watch` says in a run's row the decisions people took on its held tasks, as the
history's lists do: a run that succeeded by a skip reads ``Succeeded`` and ``1 skipped by
ops-1`` (a real engine on the in-memory broker, decided through the Controller)."""

from __future__ import annotations

import asyncio

import pytest
from rich.console import Console

from cascade.cli.rendering import render_watch
from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.control import Controller
from cascade.interfaces import telemetry_filter
from cascade.reader import DecisionCount, ReaderModel
from cascade.runtime import DependencyMissingError, Engine, RunStarted, TaskHeld, task
from cascade.runtime.testing import EventRecorder


def shown(state: ReaderModel) -> str:
    console = Console(record=True, width=160)
    console.print(render_watch(state))
    return console.export_text()


async def test_a_run_that_succeeded_by_decisions_says_whose_in_its_row() -> None:
    broker = InMemoryBroker()

    @task(name="transform", on_failure="hold")
    async def transform(n: int) -> int:
        raise ValueError(f"bad row {n}")

    @task(name="load")
    async def load(value: int | None) -> int:
        return value or 0

    engine = Engine(InMemoryConnector(broker, source_id="engine-1"), heartbeat_interval=None)
    recorder = EventRecorder()
    engine.events.subscribe(recorder)
    async with InMemoryConnector(broker, presence=False) as reader:
        state = ReaderModel()
        await reader.subscribe(telemetry_filter(), state.apply)
        run = asyncio.create_task(engine.run([load(transform(1)), transform(2), transform(3)]))

        def held() -> list[TaskHeld]:
            return [e for e in recorder.events if isinstance(e, TaskHeld)]

        await recorder.until(lambda: len(held()) == 3)
        (run_id,) = [e.run_id for e in recorder.events if isinstance(e, RunStarted)]
        first, second, third = (e.task_id for e in held())
        ops1 = Controller(reader, issued_by="ops-1", timeout=5)
        ops2 = Controller(reader, issued_by="ops-2", timeout=5)
        assert (await ops1.run(run_id).skip(first)).applied
        assert (await ops2.run(run_id).complete(second, result=7)).applied
        assert (await ops1.run(run_id).skip(third)).applied
        with pytest.raises(DependencyMissingError):  # skipped items of its target: no result
            await asyncio.wait_for(run, 10)
        await reader.disconnect()
    view = state.runs[run_id]
    assert view.status == "Succeeded"
    assert view.decisions() == [
        DecisionCount("skip", "ops-1", 2),
        DecisionCount("complete", "ops-2", 1),
    ]
    text = shown(state)
    assert "Succeeded" in text
    assert "2 skipped by ops-1, 1 completed by ops-2" in text
