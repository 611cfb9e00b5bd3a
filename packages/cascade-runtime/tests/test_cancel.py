"""Cancelling a run: coroutines cancelled, threads left to finish, nothing new starts."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any, Literal

import msgspec
import pytest

from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.interfaces import Message
from cascade.interfaces.commands import (
    CancelRequest,
    cancel_topic,
    decode_cancel_reply,
    reply_topic,
)
from cascade.runtime import (
    Engine,
    RunCancelledError,
    RunFinished,
    RunStarted,
    TaskRunning,
    task,
)
from cascade.runtime.testing import EventRecorder


class Workflow:
    """A coroutine task that waits for ever, a plain function blocked in its thread until
    released, and a task after each that must never start."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.thread_done = threading.Event()
        self.coroutine_cancelled = asyncio.Event()
        self.after_started: list[str] = []

        @task(name="waits")
        async def waits() -> int:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                self.coroutine_cancelled.set()
                raise
            return 0

        @task(name="blocks")
        def blocks() -> int:
            self.release.wait(10)
            self.thread_done.set()
            return 1

        @task(name="after")
        async def after(value: int) -> int:
            self.after_started.append("after")
            return value

        self.target = [after(waits()), after(blocks())]


async def _started(engine: Engine, workflow: Workflow) -> tuple[EventRecorder, asyncio.Task[Any]]:
    recorder = EventRecorder()
    engine.events.subscribe(recorder)
    run = asyncio.create_task(engine.run(workflow.target))
    await recorder.until(lambda: sorted(recorder.names(TaskRunning)) == ["blocks", "waits"])
    return recorder, run


def _run_id(recorder: EventRecorder) -> str:
    (started,) = [e for e in recorder.events if isinstance(e, RunStarted)]
    return started.run_id


async def test_cancel_stops_the_run_and_says_what_it_stopped() -> None:
    """The coroutine is cancelled, the thread runs on (its result discarded), the dependants
    never start, and the run raises RunCancelledError, its end being Cancelled."""
    engine, workflow = Engine(), Workflow()
    recorder, run = await _started(engine, workflow)
    run_id = _run_id(recorder)
    report = engine.cancel(run_id, issued_by="alice", reason="wrong input")
    assert report is not None
    assert [t.task_name for t in report.cancelled] == ["waits"]
    assert [t.task_name for t in report.abandoned] == ["blocks"]
    assert (report.not_started, report.already) == (2, False)
    with pytest.raises(RunCancelledError) as raised:
        await asyncio.wait_for(run, 5)
    assert (raised.value.run_id, raised.value.issued_by, raised.value.reason) == (
        run_id,
        "alice",
        "wrong input",
    )
    assert str(raised.value) == f"run {run_id} was cancelled by alice: wrong input"
    assert workflow.coroutine_cancelled.is_set()
    assert not workflow.thread_done.is_set()  # Python cannot stop a thread: it runs on
    workflow.release.set()
    await asyncio.to_thread(workflow.thread_done.wait, 5)
    assert workflow.after_started == []
    (finished,) = [e for e in recorder.events if isinstance(e, RunFinished)]
    assert finished.status == "Cancelled"
    assert finished.error == f"RunCancelledError: run {run_id} was cancelled by alice: wrong input"
    assert engine.cancel(run_id) is None  # it has ended


async def test_a_second_cancel_says_it_was_already_cancelled() -> None:
    """Cancelling twice (a request delivered twice) reports the first as done."""
    engine, workflow = Engine(), Workflow()
    recorder, run = await _started(engine, workflow)
    first = engine.cancel(_run_id(recorder))
    second = engine.cancel(_run_id(recorder))
    workflow.release.set()
    with pytest.raises(RunCancelledError):
        await asyncio.wait_for(run, 5)
    assert first is not None
    assert not first.already
    assert second is not None
    assert second.already


async def test_cancel_of_a_run_this_engine_does_not_run() -> None:
    """Another engine's run, or one that has ended: None, and nothing happens."""
    assert Engine().cancel("0" * 32) is None


async def test_a_cancel_over_the_broker_is_answered_and_the_end_says_cancelled() -> None:
    """A request on the run's cancel topic cancels it; the answer names what was cancelled;
    ENGINE_STOPPED is Failed with cancelled: true. A malformed request is not answered. The
    answer echoes who asked, why and when (the history's audit records the cancel from it)."""
    broker = InMemoryBroker()
    engine = Engine(InMemoryConnector(broker, source_id="engine-1"), heartbeat_interval=None)
    workflow = Workflow()
    answers: list[Message] = []
    answered = asyncio.Event()

    def on_answer(message: Message) -> None:
        answers.append(message)
        answered.set()

    async with InMemoryConnector(broker, presence=False) as operator:
        stopped: list[dict[str, Any]] = []
        await operator.subscribe("cascade/reply/#", on_answer)
        await operator.subscribe(
            "cascade/telemetry/+/+/+/events", lambda m: stopped.append(m.payload["body"])
        )
        recorder, run = await _started(engine, workflow)
        run_id = _run_id(recorder)
        await operator.publish(cancel_topic("local", "default", run_id), b"{not json", qos=1)
        await operator.publish(
            cancel_topic("local", "default", run_id), {"id": "x/y", "run_id": run_id}, qos=1
        )
        other = CancelRequest(id="r1", run_id="f" * 32)
        await operator.publish(cancel_topic("local", "default", run_id), other, qos=1)
        request = CancelRequest(
            id="r2", run_id=run_id, issued_by="alice", reason="bad data", issued_at=1795216320.5
        )
        await operator.publish(cancel_topic("local", "default", run_id), request, qos=1)
        await asyncio.wait_for(answered.wait(), 5)
        with pytest.raises(RunCancelledError):
            await asyncio.wait_for(run, 5)
        workflow.release.set()
        await broker.idle()
    (answer,) = answers
    assert answer.topic == reply_topic("local", "r2", "engine-1")
    assert not answer.retain
    reply = decode_cancel_reply(answer.raw)
    assert (reply.run_id, reply.source, reply.outcome) == (run_id, "engine-1", "cancelled")
    assert [t.task_name for t in reply.cancelled] == ["waits"]
    assert [t.task_name for t in reply.abandoned] == ["blocks"]
    assert (reply.cancelled_count, reply.abandoned_count, reply.not_started) == (1, 1, 2)
    assert (reply.issued_by, reply.reason, reply.issued_at) == ("alice", "bad data", 1795216320.5)
    assert stopped[-1] == {
        "type": "LifecycleEvent",
        "event": "ENGINE_STOPPED",
        "status": "Failed",
        "error": f"RunCancelledError: run {run_id} was cancelled by alice: bad data",
        "cancelled": True,
    }


class _EarlierLifecycleEvent(msgspec.Struct, tag="LifecycleEvent", tag_field="type"):
    """ENGINE_STOPPED as Cascade's readers before `cancelled` decode it (strictly)."""

    event: str
    status: Literal["Succeeded", "Failed"] | None = None
    error: str | None = None


def test_why_a_cancelled_run_is_failed_with_cancelled_true() -> None:
    """Readers that know only Succeeded and Failed (Cascade's own, strict, before this) read
    `Failed` with `cancelled: true`, and would reject a `Cancelled` status outright."""
    sent = {"type": "LifecycleEvent", "event": "ENGINE_STOPPED", "status": "Failed",
            "error": "RunCancelledError: ...", "cancelled": True}  # fmt: skip
    assert msgspec.json.decode(json.dumps(sent), type=_EarlierLifecycleEvent).status == "Failed"
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(
            json.dumps({**sent, "status": "Cancelled"}), type=_EarlierLifecycleEvent
        )
