"""A plain-function task is RUNNING when a worker starts it, its duration counted from then; an
attempt handed to an executor whose workers are all busy is BLOCKED, held by a ``queued`` hold,
until one does."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from cascade.runtime import (
    Engine,
    RunCancelledError,
    TaskBlocked,
    TaskCancelled,
    TaskCompleted,
    TaskEvent,
    TaskQueued,
    TaskRunning,
    ThreadExecutor,
    current_task,
    task,
)
from cascade.runtime.testing import EventRecorder, eventually


def _of(recorder: EventRecorder, kind: type) -> list[str]:
    return [e.task_id for e in recorder.events if isinstance(e, TaskEvent) and type(e) is kind]


async def test_six_tasks_on_two_threads_are_running_two_at_a_time() -> None:
    """ThreadExecutor(2), six tasks that wait on events: two RUNNING, four QUEUED; each
    release starts one more, and each duration is from its worker's start."""
    gates = [threading.Event() for _ in range(6)]
    began: dict[int, float] = {}
    ended: dict[int, float] = {}
    ids: dict[str, int] = {}

    @task
    def work(i: int) -> int:
        began[i] = time.perf_counter()
        context = current_task()
        assert context is not None
        ids[context.task_id] = i
        gates[i].wait(10)
        ended[i] = time.perf_counter()
        return i

    engine = Engine(executor=ThreadExecutor(2), max_concurrency=6)
    recorder = EventRecorder()
    engine.events.subscribe(recorder)
    run = asyncio.create_task(engine.run([work(i) for i in range(6)]))
    try:
        await recorder.until(lambda: len(_of(recorder, TaskQueued)) == 4)
        await eventually(lambda: len(began) == 2)
        running = _of(recorder, TaskRunning)
        assert len(running) == 2
        queued = [e for e in recorder.events if type(e) is TaskQueued]
        assert all(isinstance(e, TaskBlocked) for e in queued)
        hold = queued[0].held_by[0]
        assert (hold.type, hold.executor, hold.workers) == ("queued", "threads", 2)
        assert set(_of(recorder, TaskQueued)).isdisjoint(running)
        first = min(began)
        gates[first].set()
        await recorder.until(lambda: len(_of(recorder, TaskRunning)) == 3)
        assert len(began) == 3
        assert len(_of(recorder, TaskCompleted)) == 1
    finally:
        for gate in gates:
            gate.set()
    assert await run == list(range(6))
    completed = {e.task_id: e for e in recorder.events if type(e) is TaskCompleted}
    by_index = {ids[task_id]: event for task_id, event in completed.items()}
    assert len(by_index) == 6
    for i, event in by_index.items():
        ran_ms = (ended[i] - began[i]) * 1000
        # from the worker's start: not the time it waited for one (before that thread began)
        assert ran_ms - 1 <= event.duration_ms <= ran_ms + 50, (i, event.duration_ms, ran_ms)
    # each RUNNING after its BLOCKED, and none of the waiting ones before a thread was free
    order = [
        (type(e).__name__, e.task_id)
        for e in recorder.events
        if isinstance(e, TaskEvent) and type(e) in (TaskQueued, TaskRunning)
    ]
    for task_id in _of(recorder, TaskQueued):
        assert order.index(("TaskQueued", task_id)) < order.index(("TaskRunning", task_id))


async def test_a_worker_free_when_handed_over_says_running_and_no_queued() -> None:
    """Tasks within the thread count start at once: RUNNING, no queued state (no event more)."""

    @task
    def work(i: int) -> int:
        return i

    engine = Engine(executor=ThreadExecutor(4), max_concurrency=4)
    recorder = EventRecorder()
    engine.events.subscribe(recorder)
    assert await engine.run([work(i) for i in range(4)]) == [0, 1, 2, 3]
    assert _of(recorder, TaskQueued) == []
    assert len(_of(recorder, TaskRunning)) == 4


async def test_a_queued_attempt_cancelled_with_its_run_never_ran() -> None:
    """A run cancelled while an attempt waits for a thread: it never starts, its duration is 0
    and the cancel counts it not started."""
    gate = threading.Event()
    ran: list[int] = []

    @task
    def work(i: int) -> int:
        ran.append(i)
        gate.wait(10)
        return i

    engine = Engine(executor=ThreadExecutor(1), max_concurrency=2)
    recorder = EventRecorder()
    engine.events.subscribe(recorder)
    run = asyncio.create_task(engine.run([work(0), work(1)]))
    try:
        await recorder.until(lambda: len(_of(recorder, TaskQueued)) == 1)
        run_id = recorder.events[0].run_id
        report = engine.cancel(run_id, issued_by="test")
        assert report is not None
        assert len(report.abandoned) == 1
        assert report.not_started == 1
        with pytest.raises(RunCancelledError):
            await run
    finally:
        gate.set()
    queued = _of(recorder, TaskQueued)[0]
    cancelled = [e for e in recorder.events if type(e) is TaskCancelled and e.task_id == queued]
    assert [e.duration_ms for e in cancelled] == [0.0]
    assert queued not in _of(recorder, TaskRunning)
    assert ran == [0]
