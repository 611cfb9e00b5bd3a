"""Views agree with the engine: a view that joins late or misses events asks for a snapshot."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.interfaces import Message, status_filter, telemetry_filter
from cascade.reader import ReaderModel, SnapshotAsker
from cascade.runtime import (
    Engine,
    RunCancelledError,
    RunStarted,
    TaskCompleted,
    TaskRunning,
    task,
)
from cascade.runtime.testing import EventRecorder


class SlowRun:
    """40 slow tasks on an in-memory broker, 20 of them released to complete."""

    def __init__(self, broker: InMemoryBroker) -> None:
        self.gates = [asyncio.Event() for _ in range(40)]
        self.engine = Engine(
            InMemoryConnector(broker, source_id="engine-1"), heartbeat_interval=None
        )
        self.recorder = EventRecorder()
        self.engine.events.subscribe(self.recorder)

        @task(name="slow")
        async def slow(i: int) -> int:
            await self.gates[i].wait()
            return i

        self.target = [slow(i) for i in range(40)]
        self.run: asyncio.Task[Any] | None = None

    async def start(self, done: int) -> str:
        self.run = asyncio.create_task(self.engine.run(self.target))
        await self.recorder.until(lambda: len(self.recorder.names(TaskRunning)) == 40)
        for gate in self.gates[:done]:
            gate.set()
        await self.recorder.until(lambda: len(self.recorder.names(TaskCompleted)) == done)
        (started,) = [e for e in self.recorder.events if isinstance(e, RunStarted)]
        return started.run_id

    async def finish(self) -> None:
        for gate in self.gates:
            gate.set()
        assert self.run is not None
        await self.run


async def _until(condition: Callable[[], bool], changed: asyncio.Event) -> None:
    async def wait() -> None:
        while not condition():
            changed.clear()
            await changed.wait()

    await asyncio.wait_for(wait(), 5)


def _watching(state: ReaderModel, changed: asyncio.Event, drop: float = 0.0) -> Callable[..., None]:
    """A view's subscription callback; ``drop``: the share of task events lost on the way."""
    rng = random.Random(7)

    def on_message(message: Message) -> None:
        body = message.payload.get("body", {})
        if drop and body.get("type") == "TaskStateEvent" and rng.random() < drop:
            return
        state.apply(message)
        changed.set()

    return on_message


async def test_a_view_that_joins_late_shows_the_engine_counts_after_its_answer() -> None:
    """Joined when 20 of 40 are done: partial at first ('joined late'), then exactly 20
    completed and 20 running, and nothing missed."""
    broker = InMemoryBroker()
    run = SlowRun(broker)
    run_id = await run.start(done=20)
    changed = asyncio.Event()
    async with InMemoryConnector(broker, presence=False) as reader:
        state = ReaderModel()
        asker = SnapshotAsker(reader)
        state.ask = asker.ask
        await reader.subscribe(telemetry_filter(), _watching(state, changed))
        await reader.subscribe(status_filter(), _watching(state, changed))
        run.gates[20].set()  # the view's first message of the run: a task completing
        await _until(lambda: run_id in state.runs, changed)
        view = state.runs[run_id]
        assert state.partial(view) == "joined late: 1 of ? tasks known; asking the engine"
        await _until(lambda: state.partial(view) is None, changed)
        assert view.counts() == Counter({"COMPLETED": 21, "RUNNING": 19})
        assert (view.total_tasks, view.finished_tasks) == (40, 21)
        assert state.gaps.missed == 0
        assert asker.asked == 1
        await run.finish()


@pytest.mark.parametrize("drop", [0.1, 0.5])
async def test_a_lossy_view_repairs_its_task_table_and_missed_count(drop: float) -> None:
    """A view that loses a share of the task events sees the gap, asks, and shows the engine's
    true table; its missed count falls back to 0."""
    broker = InMemoryBroker()
    run = SlowRun(broker)
    changed = asyncio.Event()
    async with InMemoryConnector(broker, presence=False) as reader:
        state = ReaderModel()
        asker = SnapshotAsker(reader, again_after=0.2)
        state.ask = asker.ask
        await reader.subscribe(telemetry_filter(), _watching(state, changed, drop))
        run_id = await run.start(done=30)
        await broker.idle()
        await _until(lambda: run_id in state.runs, changed)
        view = state.runs[run_id]
        await _until(
            lambda: (
                view.counts() == Counter({"COMPLETED": 30, "RUNNING": 10})
                and state.gaps.missed == 0
            ),
            changed,
        )
        assert state.partial(view) is None
        assert asker.asked >= 1
        await run.finish()


async def test_a_cancelled_run_shows_every_task_ended() -> None:
    """3 running and 2 pending, cancelled: the view shows 5 CANCELLED, none running."""
    broker = InMemoryBroker()
    engine = Engine(InMemoryConnector(broker, source_id="engine-1"), heartbeat_interval=None)
    recorder = EventRecorder()
    engine.events.subscribe(recorder)

    @task(name="slow")
    async def slow(i: int) -> int:
        await asyncio.Event().wait()
        return i

    @task(name="after")
    async def after(values: list[int]) -> int:
        return sum(values)

    running = [slow(i) for i in range(3)]
    changed = asyncio.Event()
    async with InMemoryConnector(broker, presence=False) as reader:
        state = ReaderModel()
        await reader.subscribe(telemetry_filter(), _watching(state, changed))
        started = asyncio.create_task(engine.run([after(running), after(running)]))
        await recorder.until(lambda: len(recorder.names(TaskRunning)) == 3)
        (begun,) = [e for e in recorder.events if isinstance(e, RunStarted)]
        engine.cancel(begun.run_id, issued_by="alice")
        with pytest.raises(RunCancelledError):
            await started
        await broker.idle()
    view = state.runs[begun.run_id]
    assert view.status == "Cancelled"
    assert view.finished_tasks == 5
    assert view.counts()["RUNNING"] == 0
