"""WatchState folds telemetry, presence and constraints; the live view shows them."""

from __future__ import annotations

import json

from rich.console import Console

from cascade.cli import WatchState
from cascade.cli._render import render_watch
from cascade.interfaces import (
    Body,
    Constraint,
    Envelope,
    Heartbeat,
    LifecycleEvent,
    Message,
    Payload,
    StatusMessage,
    TaskStateEvent,
    constraint_topic,
    encode_payload,
    events_topic,
    status_topic,
)


def _msg(topic: str, payload: Payload | None) -> Message:
    return Message(topic=topic, payload=json.loads(encode_payload(payload)) if payload else {})


def _event(body: Body, run_id: str = "run-1") -> Message:
    envelope = Envelope(
        run_id=run_id, org_id="local", project_id="default", source="host-1", body=body
    )
    return _msg(events_topic("local", "default", run_id), envelope)


def _task(task_id: str, state: str, error: str = "") -> Message:
    return _event(
        TaskStateEvent(
            task_id=task_id,
            task_name=f"fn_{task_id}",
            state=state,  # type: ignore[arg-type]
            error=error,
        )
    )


def test_tasks_and_lifecycle() -> None:
    """Task states are counted per run, and the run's end carries status and error."""
    state = WatchState(clock=lambda: 100.0)
    for message in [
        _event(LifecycleEvent(event="ENGINE_STARTED")),
        _task("a", "RUNNING"),
        _task("b", "RUNNING"),
        _task("a", "COMPLETED"),
        _task("b", "FAILED", "E: x"),
        _task("c", "SKIPPED"),
    ]:
        state.apply(message)
    run = state.runs["run-1"]
    assert run.counts() == {"COMPLETED": 1, "FAILED": 1, "SKIPPED": 1}
    assert run.finished_tasks == 3
    assert run.status == "Running"
    state.apply(_event(LifecycleEvent(event="ENGINE_STOPPED", status="Failed", error="E: x")))
    assert (run.status, run.error) == ("Failed", "E: x")


def test_heartbeat_kept_per_run() -> None:
    """The latest heartbeat is kept on its run."""
    state = WatchState()
    heartbeat = Heartbeat(running=3, dropped_telemetry=2)
    state.apply(
        _msg(
            "cascade/telemetry/local/default/run-1/heartbeat",
            Envelope(
                run_id="run-1", org_id="local", project_id="default", source="h", body=heartbeat
            ),
        )
    )
    assert state.runs["run-1"].heartbeat == heartbeat


def test_total_tasks_from_heartbeat() -> None:
    """Tasks not seen yet count towards the total once a heartbeat says how many are pending."""
    state = WatchState()
    state.apply(_task("a", "RUNNING"))
    assert state.runs["run-1"].total_tasks == 1
    beat = Envelope(run_id="run-1", org_id="local", project_id="default", source="h",
                    body=Heartbeat(running=1, pending=9))  # fmt: skip
    state.apply(_msg("cascade/telemetry/local/default/run-1/heartbeat", beat))
    assert state.runs["run-1"].total_tasks == 10


def test_stale_will_does_not_mark_engine_offline() -> None:
    """An offline from an older session than the current online is ignored."""
    state = WatchState()
    topic = status_topic("engine-1")
    state.apply(_msg(topic, StatusMessage(status="online", source="engine-1", session=2)))
    state.apply(_msg(topic, StatusMessage(status="offline", source="engine-1", session=1)))
    assert state.engines["engine-1"].status.status == "online"
    state.apply(
        _msg(
            topic, StatusMessage(status="offline", source="engine-1", session=2, reason="shutdown")
        )
    )
    assert state.engines["engine-1"].status.reason == "shutdown"


def test_constraints_set_cleared_and_expired() -> None:
    """Constraints are keyed by topic, cleared by an empty payload, hidden once expired."""
    state = WatchState(clock=lambda: 1000.0)
    pause = constraint_topic("global", "pause")
    limit = constraint_topic("task:x", "concurrency")
    state.apply(_msg(pause, Constraint.pause("global")))
    state.apply(_msg(limit, Constraint.concurrency("task:x", 2, expires_at=999.0)))
    assert [c.type for _, c in state.active_constraints()] == ["pause"]
    state.apply(_msg(pause, None))
    assert state.active_constraints() == []


def test_malformed_messages_counted_and_ignored() -> None:
    """Messages that break the protocol change nothing and are counted."""
    state = WatchState()
    state.apply(Message(topic=events_topic("o", "p", "r"), payload={"body": 1}))
    state.apply(Message(topic=status_topic("s"), payload={"status": "??"}))
    state.apply(Message(topic=constraint_topic("global", "pause"), payload={"type": "pause"}))
    assert state.rejected == 3
    assert not state.runs
    assert not state.engines
    assert not state.constraints


def test_run_id_named_like_a_topic_kind_is_telemetry() -> None:
    """Classification uses the level after the prefix, not any level."""
    state = WatchState()
    state.apply(_event(LifecycleEvent(event="ENGINE_STARTED"), run_id="constraints"))
    assert "constraints" in state.runs
    assert not state.constraints


def test_render_shows_runs_engines_constraints() -> None:
    """The live view names the run, task counts, failures, engines and constraints."""
    state = WatchState()
    for message in [
        _task("a", "RUNNING"),
        _task("b", "FAILED", "ValueError: boom"),
        _msg(status_topic("host-1"), StatusMessage(status="online", session=1)),
        _msg(
            constraint_topic("task:api_*", "concurrency"), Constraint.concurrency("task:api_*", 2)
        ),
    ]:
        state.apply(message)
    console = Console(record=True, width=140)
    console.print(render_watch(state))
    text = console.export_text()
    for expected in [
        "run-1",
        "running 1",
        "failed 1",
        "fn_a",
        "ValueError: boom",
        "host-1",
        "online",
        "task:api_*",
        "concurrency",
        "limit=2",
    ]:
        assert expected in text, expected


def _stamped(body: Body, ts: str) -> Message:
    envelope = Envelope(
        ts=ts, run_id="run-1", org_id="local", project_id="default", source="host-1", body=body
    )
    return _msg(events_topic("local", "default", "run-1"), envelope)


def test_resent_copies_change_nothing() -> None:
    """At least once: a copy resent after newer events neither counts twice nor rewinds."""
    running = TaskStateEvent(task_id="a", task_name="fn_a", state="RUNNING")
    completed = TaskStateEvent(task_id="a", task_name="fn_a", state="COMPLETED")
    started = LifecycleEvent(event="ENGINE_STARTED")
    stopped = LifecycleEvent(event="ENGINE_STOPPED", status="Succeeded")
    beat = Heartbeat(completed=1)
    first = [
        _stamped(started, "2026-11-22T10:00:00+00:00"),
        _stamped(running, "2026-11-22T10:00:00.100000+00:00"),
        _stamped(Heartbeat(running=1), "2026-11-22T10:00:00.500000+00:00"),
        _stamped(completed, "2026-11-22T10:00:01.200000+00:00"),
        _stamped(beat, "2026-11-22T10:00:01.500000+00:00"),
        _stamped(stopped, "2026-11-22T10:00:02+00:00"),
    ]
    once = WatchState(clock=lambda: 100.0)
    for message in first:
        once.apply(message)
    twice = WatchState(clock=lambda: 100.0)
    for message in first + first[:3]:  # the first three resent after the newer ones
        twice.apply(message)
    assert twice.runs["run-1"] == once.runs["run-1"]
    for message in first:  # and the whole run
        twice.apply(message)
    run = twice.runs["run-1"]
    assert run == once.runs["run-1"]
    assert run.counts() == {"COMPLETED": 1}
    assert (run.finished_tasks, run.total_tasks) == (1, 1)
    assert run.status == "Succeeded"
    assert run.heartbeat == beat
    assert twice.rejected == 0


def test_a_retry_is_a_new_event_not_a_copy() -> None:
    """The same state again at another time (a retry's RUNNING) is applied."""
    state = WatchState(clock=lambda: 100.0)
    for state_name, ts in [
        ("RUNNING", "2026-11-22T10:00:00+00:00"),
        ("RETRYING", "2026-11-22T10:00:01+00:00"),
        ("RUNNING", "2026-11-22T10:00:02+00:00"),
    ]:
        body = TaskStateEvent(task_id="a", task_name="fn_a", state=state_name)  # type: ignore[arg-type]
        state.apply(_stamped(body, ts))
    assert state.runs["run-1"].tasks["a"].state == "RUNNING"
