"""Every task ends: a stopped run gives each unfinished task its terminal state (CANCELLED)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.runtime import (
    Engine,
    RunCancelledError,
    RunStarted,
    TaskCancelled,
    TaskRunning,
    task,
)
from cascade.runtime.testing import EventRecorder


def _workflow(gate: asyncio.Event) -> list[Any]:
    """Three coroutine tasks that run until cancelled, and two that wait for them."""

    @task(name="slow")
    async def slow(i: int) -> int:
        await gate.wait()
        return i

    @task(name="later")
    async def later(values: list[int]) -> int:
        return sum(values)

    running = [slow(i) for i in range(3)]
    return [later(running), later(running)]


async def test_a_cancelled_run_of_3_running_and_2_pending_ends_all_5() -> None:
    """Cancel: the 3 running and the 2 that never started each get a CANCELLED event, published
    as FAILED with cancelled: true and the canceller's words, before the run's end; the last
    heartbeat counts them failed and cancelled, none running."""
    broker = InMemoryBroker()
    engine = Engine(InMemoryConnector(broker, source_id="e1"), heartbeat_interval=60)
    recorder = EventRecorder()
    engine.events.subscribe(recorder)
    run = asyncio.create_task(engine.run(_workflow(asyncio.Event())))
    await recorder.until(lambda: len(recorder.names(TaskRunning)) == 3)
    (started,) = [e for e in recorder.events if isinstance(e, RunStarted)]
    engine.cancel(started.run_id, issued_by="alice", reason="wrong input")
    with pytest.raises(RunCancelledError):
        await asyncio.wait_for(run, 5)
    cancelled = [e for e in recorder.events if isinstance(e, TaskCancelled)]
    assert sorted(e.task_name for e in cancelled) == ["later", "later", "slow", "slow", "slow"]
    said = f"RunCancelledError: run {started.run_id} was cancelled by alice: wrong input"
    assert {e.error for e in cancelled} == {said}
    assert all(e.duration_ms > 0 for e in cancelled if e.task_name == "slow")
    assert all(e.duration_ms == 0 for e in cancelled if e.task_name == "later")
    await broker.idle()
    sent = [json.loads(m.raw) for m in broker.history if "/telemetry/" in m.topic]
    events = [m for m in sent if m["body"]["type"] != "Heartbeat"]
    ends = {}
    for message in events:
        body = message["body"]
        if body["type"] == "TaskStateEvent":
            ends[body["task_id"]] = body
    assert len(ends) == 5
    assert all(b["state"] == "FAILED" and b["cancelled"] is True for b in ends.values())
    assert not any("traceback" in b for b in ends.values())  # a stopped task did not fail
    assert events[-1]["body"]["event"] == "ENGINE_STOPPED"
    assert [m["seq"] for m in events] == list(range(1, len(events) + 1))
    (beat,) = [m["body"] for m in sent if m["body"]["type"] == "Heartbeat"]
    assert (beat["running"], beat["failed"], beat["cancelled"], beat["pending"]) == (0, 5, 5, 0)


async def test_a_run_ended_by_its_caller_ends_its_tasks_too() -> None:
    """The program awaiting the run cancels it (Ctrl-C): its tasks end CANCELLED, saying so."""
    engine = Engine()
    recorder = EventRecorder()
    engine.events.subscribe(recorder)
    run = asyncio.create_task(engine.run(_workflow(asyncio.Event())))
    await recorder.until(lambda: len(recorder.names(TaskRunning)) == 3)
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    cancelled = [e for e in recorder.events if isinstance(e, TaskCancelled)]
    assert len(cancelled) == 5
    assert {e.error for e in cancelled} == {"CancelledError: the run was cancelled"}


async def test_a_run_that_ends_well_cancels_nothing() -> None:
    """Completed, failed and skipped tasks keep their states: no CANCELLED after them."""

    @task(name="boom")
    async def boom() -> int:
        raise ValueError("no")

    @task(name="after")
    async def after(x: int) -> int:
        return x

    engine = Engine()
    recorder = EventRecorder()
    engine.events.subscribe(recorder)
    with pytest.raises(Exception, match="boom"):
        await engine.run([after(boom())])
    assert not any(isinstance(e, TaskCancelled) for e in recorder.events)


async def test_an_attempt_that_breaks_the_engine_ends_its_task_failed_and_said() -> None:
    """A step of an attempt that raises where the engine does not expect it (here the task's
    retry policy, asked whether a failure is retried) fails that task with a FAILED event
    saying so: the run ends failed, never waiting for it, and no view is left showing it
    RUNNING."""
    from cascade.runtime import RetryPolicy, TaskFailed, TaskFailedError

    class Broken(RetryPolicy):
        def retries(self, failure: BaseException) -> bool:
            raise RuntimeError("a step broke")

    @task(name="flaky", retry=Broken(max_attempts=2))
    async def flaky() -> int:
        raise ValueError("first attempt")

    engine = Engine()
    recorder = EventRecorder()
    engine.events.subscribe(recorder)
    with pytest.raises(TaskFailedError):
        await asyncio.wait_for(engine.run(flaky()), 5)
    (failed,) = [e for e in recorder.events if isinstance(e, TaskFailed)]
    assert failed.task_name == "flaky"
    assert failed.error == "RuntimeError: a step broke"
