"""Events on the in-process bus, and a run without a connector."""

from __future__ import annotations

import gc
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest

from cascade.runtime import (
    Engine,
    Event,
    EventBus,
    RunFinished,
    RunStarted,
    TaskCompleted,
    TaskEvent,
    TaskFailed,
    TaskFailedError,
    TaskRunning,
    task,
)


@task
async def double(x: int) -> int:
    return x * 2


@task
def boom(x: int) -> int:
    raise ValueError(f"bad {x}")


async def test_run_emits_started_task_states_and_finished() -> None:
    """A run emits RunStarted, RUNNING and COMPLETED per task, then RunFinished Succeeded."""
    engine = Engine()
    events: list[Event] = []
    engine.events.subscribe(events.append)
    first = double(1)
    await engine.run(double(first))
    assert isinstance(events[0], RunStarted)
    assert events[0].task_count == 2
    assert isinstance(events[-1], RunFinished)
    assert (events[-1].status, events[-1].error) == ("Succeeded", "")
    run_id = events[0].run_id
    assert all(e.run_id == run_id for e in events)
    task_events = [e for e in events if isinstance(e, TaskEvent)]
    assert [(type(e), e.task_id) for e in task_events[:2]] == [
        (TaskRunning, first.task_id),
        (TaskCompleted, first.task_id),
    ]
    assert all(e.duration_ms >= 0 and e.error == "" for e in task_events)


async def test_failed_run_finishes_with_status_and_error() -> None:
    """RunFinished of a failed run has status Failed and the error as 'ExcType: message'."""
    engine = Engine()
    events: list[Event] = []
    engine.events.subscribe(events.append)
    with pytest.raises(TaskFailedError):
        await engine.run(boom(3))
    finished = events[-1]
    assert isinstance(finished, RunFinished)
    assert finished.status == "Failed"
    assert finished.error.startswith("TaskFailedError: task 'boom'")
    failed = [e for e in events if isinstance(e, TaskEvent) and e.state == "FAILED"]
    assert [e.error for e in failed] == ["ValueError: bad 3"]


async def test_failing_handler_is_isolated(caplog: pytest.LogCaptureFixture) -> None:
    """A handler that raises is logged and counted; the run and other handlers go on."""
    engine = Engine()
    seen: list[Event] = []

    def broken(event: Event) -> None:
        raise RuntimeError("handler bug")

    engine.events.subscribe(broken)
    engine.events.subscribe(seen.append)
    assert await engine.run(double(2)) == 4
    assert len(seen) == 4
    assert engine.events.handler_errors == 4
    assert "event handler" in caplog.text


async def test_only_events_that_hold_an_exception_are_tracked_by_the_collector() -> None:
    """A run's events are outside the garbage collector's generations (a run's telemetry keeps
    each task's latest), except those that hold an exception: its traceback's frames can hold
    the event, a cycle only the collector can free."""
    engine = Engine()
    events: list[Event] = []
    engine.events.subscribe(events.append)
    with pytest.raises(TaskFailedError):
        await engine.run(boom(double(1)))
    failed = [e for e in events if isinstance(e, TaskFailed)]
    assert failed
    assert all(e.exception is not None and gc.is_tracked(e) for e in failed)
    others = [e for e in events if not isinstance(e, TaskFailed)]
    assert {type(e) for e in others} >= {RunStarted, TaskRunning, TaskCompleted, RunFinished}
    assert not any(gc.is_tracked(e) for e in others)


def test_unsubscribe_stops_delivery() -> None:
    """The function subscribe returns stops the handler."""
    bus = EventBus()
    seen: list[Event] = []
    stop = bus.subscribe(seen.append)
    bus.emit(RunStarted(run_id="r", task_count=0))
    stop()
    stop()
    bus.emit(RunStarted(run_id="r", task_count=0))
    assert len(seen) == 1


def test_no_mqtt_import_without_connector() -> None:
    """A run without a connector imports nothing from MQTT (checked in a fresh interpreter)."""
    code = textwrap.dedent(
        """
        import sys
        from cascade.runtime import run, task

        @task
        def one() -> int:
            return 1

        assert run([one(), one()]) == [1, 1]
        loaded = [m for m in sys.modules if m.startswith(("aiomqtt", "paho", "cascade.connectors"))]
        print(loaded)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "[]"


async def test_event_is_a_type_every_event_is_an_instance_of_and_the_originals_bus_form() -> None:
    """``isinstance(event, Event)`` holds for every kind a run emits (resources too), and
    ``subscribe(EventType, handler)`` (the original bus's form) gets the instances of that type,
    ``subscribe(Event, handler)`` every event."""
    import cascade.runtime as cs

    @cs.resource
    def config() -> Iterator[str]:
        yield "url"

    @cs.task
    def needs(config: str = cs.inject("config")) -> str:
        return config

    engine = Engine()
    engine.register(config)
    every: list[Event] = []
    wildcard: list[Event] = []
    completed: list[Event] = []
    engine.events.subscribe(every.append)
    engine.events.subscribe(Event, wildcard.append)
    engine.events.subscribe(TaskCompleted, completed.append)
    await engine.run(needs())
    kinds = {type(event) for event in every}
    assert {RunStarted, RunFinished, TaskRunning, TaskCompleted} <= kinds
    assert {cs.ResourceAcquired, cs.ResourceReleased} <= kinds
    assert all(isinstance(event, Event) for event in every)
    assert not isinstance("TaskCompleted", Event)
    assert wildcard == every
    assert completed == [e for e in every if isinstance(e, TaskCompleted)] != []
    with pytest.raises(TypeError, match="no event type"):
        engine.events.subscribe("TaskCompleted", completed.append)
