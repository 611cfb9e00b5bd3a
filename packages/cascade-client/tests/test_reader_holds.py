"""A task held for a decision reads HELD (a BLOCKED event with a hold of type ``decision``),
from its event or from a heartbeat, with its failed attempt's error and traceback; a reader
that knows only the wire's six states still reads it as BLOCKED."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone

import msgspec

from cascade.connector_kit.testing import telemetry
from cascade.interfaces import (
    Heartbeat,
    Hold,
    LifecycleEvent,
    RunSnapshot,
    SnapshotTask,
    TaskStateEvent,
    decode_envelope,
)
from cascade.interfaces.commands import Decided
from cascade.reader import HeldTask, ReaderModel, held_tasks

T0 = time.time()
TB = 'Traceback (most recent call last):\n  File "f.py", line 1, in load\nValueError: x\n'
MAX_HOLDERS = 8  # the protocol's bound, as docs/protocol.md states it
HOLD = Hold(type="decision", attempt=3, deadline=T0 + 86_400, default="fail")


def _held(task_id: str = "load-1") -> TaskStateEvent:
    return TaskStateEvent(
        task_id=task_id,
        task_name="load",
        state="BLOCKED",
        error="ValueError: x",
        held_by=[HOLD],
        traceback=TB,
    )


def _model(*bodies: TaskStateEvent | Heartbeat) -> ReaderModel:
    model = ReaderModel(clock=lambda: T0)
    for seq, body in enumerate(bodies, 1):
        numbered = isinstance(body, TaskStateEvent)
        model.apply(telemetry(body, run_id="run-1", seq=seq if numbered else None))
    return model


def test_a_held_task_reads_held_with_its_hold_error_and_traceback() -> None:
    """Its state, the decision hold (attempt, deadline, default), the error and traceback."""
    run = _model(_held()).runs["run-1"]
    task = run.tasks["load-1"]
    assert (task.state, task.error, task.traceback) == ("HELD", "ValueError: x", TB)
    assert task.hold == HOLD
    assert run.held_tasks() == [task]
    assert (run.count("HELD"), run.count("BLOCKED")) == (1, 0)
    assert task in run.active_tasks()


def test_a_blocked_task_under_a_constraint_is_not_held() -> None:
    """A pause's BLOCKED stays BLOCKED, without a decision hold."""
    body = TaskStateEvent(
        task_id="a-1", task_name="a", state="BLOCKED", held_by=[Hold(type="pause", scope="global")]
    )
    run = _model(body).runs["run-1"]
    assert run.tasks["a-1"].state == "BLOCKED"
    assert run.tasks["a-1"].hold is None
    assert run.held_tasks() == []


def test_a_decision_ends_the_hold() -> None:
    """The retry's RUNNING (carrying ``decided``) replaces the hold."""
    retried = TaskStateEvent(
        task_id="load-1",
        task_name="load",
        state="RUNNING",
        decided=Decided(decision="retry", attempt=3, by="alice"),
    )
    run = _model(_held(), retried).runs["run-1"]
    assert run.tasks["load-1"].state == "RUNNING"
    assert run.held_tasks() == []


def test_held_tasks_reads_every_live_runs_held_tasks_the_longest_held_first() -> None:
    """Fleet-wide, as plain values: the live runs' held tasks (not a finished run's, not a task
    a constraint holds back), each with its run, its hold and what its run's heartbeat counts;
    the longest held first, then by run id and task id."""
    clock = [T0]
    model = ReaderModel(clock=lambda: clock[0])

    def hear(body: TaskStateEvent | Heartbeat | LifecycleEvent, run_id: str) -> None:
        model.apply(telemetry(body, run_id=run_id, org_id="acme", project_id=run_id[:3]))

    hear(_held("side-1"), "etl-2")
    hear(_held("load-1"), "etl-2")
    hear(_held("load-1"), "etl-1")
    hear(Heartbeat(blocked=3, pending=2), "etl-1")
    hear(TaskStateEvent(task_id="a-1", task_name="a", state="BLOCKED",
                        held_by=[Hold(type="pause")]), "web-1")  # fmt: skip
    clock[0] += 10
    hear(_held("crawl-1"), "web-1")
    hear(_held("load-1"), "old-1")
    hear(LifecycleEvent(event="ENGINE_STOPPED"), "old-1")
    found = held_tasks(model)
    assert [(held.run_id, held.task_id) for held in found] == [
        ("etl-1", "load-1"), ("etl-2", "load-1"), ("etl-2", "side-1"), ("web-1", "crawl-1"),
    ]  # fmt: skip
    assert found[0] == HeldTask(
        run_id="etl-1", org_id="acme", project_id="etl", source="host-1", task_id="load-1",
        name="load", error="ValueError: x", since=T0, attempt=3, deadline=HOLD.deadline,
        default="fail", run_blocked=3, run_pending=2,
    )  # fmt: skip
    assert (found[1].run_blocked, found[1].run_pending) == (None, None)  # no heartbeat heard
    assert found[3].since == T0 + 10


def test_a_reader_that_joins_late_learns_the_hold_from_a_heartbeat() -> None:
    """A heartbeat's blocked task with a decision hold is HELD; one under a pause, BLOCKED."""
    beat = msgspec.convert(
        {
            "blocked": 2,
            "held": 1,
            "blocked_tasks": [
                {"task_id": "load-1", "task_name": "load", "since": T0 - 60, "held_by": [HOLD]},
                {"task_id": "a-2", "task_name": "a", "held_by": [Hold(type="pause")]},
            ],
        },
        Heartbeat,
    )
    run = _model(beat).runs["run-1"]
    assert run.tasks["load-1"].state == "HELD"
    assert run.tasks["load-1"].since == T0 - 60
    assert run.tasks["a-2"].state == "BLOCKED"


def test_the_existing_tools_read_a_held_task_as_blocked() -> None:
    """On the wire it is BLOCKED: a reader that knows six states and ignores unknown fields
    decodes it, and counts the task as waiting."""

    class OldTaskState(msgspec.Struct, tag="TaskStateEvent", tag_field="type"):
        task_id: str
        task_name: str
        state: str
        duration_ms: float = 0.0
        error: str = ""

    raw = msgspec.json.encode(telemetry(_held(), run_id="run-1", seq=1).payload)
    body = json.loads(raw)["body"]
    old = msgspec.convert(body, OldTaskState)
    assert old.state in {"RUNNING", "COMPLETED", "FAILED", "SKIPPED", "BLOCKED", "RETRYING"}
    assert old.state == "BLOCKED"
    assert decode_envelope(raw).body.reader_state == "HELD"  # type: ignore[union-attr]


def test_a_snapshot_fills_in_what_a_heartbeat_said_of_a_held_task() -> None:
    """A reader that joined late hears a held task from a heartbeat (no error, no number);
    the snapshot it asks for carries the task's BLOCKED event, older than the heartbeat: its
    error and number are taken, and the task stays held since the heartbeat's ``since``."""
    model = ReaderModel(clock=lambda: T0, ask=lambda run_id, after: None)
    beat = msgspec.convert(
        {
            "blocked": 1,
            "held": 1,
            "blocked_tasks": [
                {"task_id": "load-1", "task_name": "load", "since": T0 - 60, "held_by": [HOLD]},
            ],
        },
        Heartbeat,
    )
    now = datetime.now(timezone.utc)
    model.apply(telemetry(beat, run_id="run-1", ts=now))
    assert model.runs["run-1"].tasks["load-1"].error == ""
    entry = SnapshotTask(
        seq=4,
        ts=(now - timedelta(seconds=60)).isoformat(),
        task_id="load-1",
        task_name="load",
        state="BLOCKED",
        error="ValueError: x",
        held_by=[HOLD],
    )
    model.request_snapshot("run-1", 0, "host-1")
    answer = RunSnapshot(after=0, through=4, last_seq=4, blocked=1, held=1, tasks=[entry])
    model.apply(telemetry(answer, run_id="run-1", ts=now))
    task = model.runs["run-1"].tasks["load-1"]
    assert (task.state, task.error, task.seq, task.since) == ("HELD", "ValueError: x", 4, T0 - 60)
    assert task.hold == HOLD


def test_a_snapshot_alone_says_since_when_a_task_is_held_and_what_waits() -> None:
    """A reader that heard neither the hold nor a heartbeat takes, from the answer alone, when
    the task was held (its entry's ``ts``, not when the answer came) and its run's blocked and
    pending counts; a later heartbeat's counts win, an older one's do not."""
    model = ReaderModel(clock=lambda: T0, ask=lambda run_id, after: None)
    now = datetime.fromtimestamp(T0, timezone.utc)
    held_at = now - timedelta(seconds=90)
    entry = SnapshotTask(seq=4, ts=held_at.isoformat(), task_id="load-1", task_name="load",
                         state="BLOCKED", error="ValueError: x", held_by=[HOLD])  # fmt: skip
    model.request_snapshot("run-1", 0, "host-1")
    answer = RunSnapshot(after=0, through=4, last_seq=4, blocked=1, pending=2, held=1,
                         tasks=[entry])  # fmt: skip
    model.apply(telemetry(answer, run_id="run-1", ts=now))
    (held,) = held_tasks(model)
    assert held.since == held_at.timestamp()
    assert (held.run_blocked, held.run_pending) == (1, 2)
    model.apply(telemetry(Heartbeat(blocked=5, pending=6), run_id="run-1", ts=held_at))
    assert held_tasks(model)[0].run_pending == 2  # a heartbeat older than the answer
    later = now + timedelta(seconds=1)
    model.apply(telemetry(Heartbeat(blocked=1, pending=0), run_id="run-1", ts=later))
    assert held_tasks(model)[0].run_pending == 0


def test_a_resource_hold_is_kept_with_its_texts_and_users_bounded() -> None:
    """A reader keeps a resource hold whole, but at most MAX_HOLDERS users, the largest, and
    every name cut to what it keeps."""
    users = {f"train-{i}": float(i) for i in range(1, MAX_HOLDERS + 4)}
    hold = Hold(
        type="resource", resource="gpu_" + "x" * 300, amount=1, in_use=10, capacity=10,
        users=users, ahead="big-" + "y" * 300,
    )  # fmt: skip
    body = TaskStateEvent(task_id="t-1", task_name="t", state="BLOCKED", held_by=[hold])
    (kept,) = _model(body).runs["run-1"].tasks["t-1"].held_by or ()
    assert kept.users is not None
    assert (
        sorted(kept.users.values(), reverse=True)
        == sorted(users.values(), reverse=True)[:MAX_HOLDERS]
    )
    assert (kept.resource or "").endswith("…[cut]")
    assert (kept.ahead or "").endswith("…[cut]")
    assert len(kept.resource or "") == len(kept.ahead or "") < 300
    assert (kept.amount, kept.in_use, kept.capacity) == (1, 10, 10)


def test_a_gate_reads_held_awaiting_approval_with_its_prompt() -> None:
    """A gate's hold (kind approval, its prompt), from its event or a heartbeat: held_tasks
    says it awaits approval and carries the prompt; a failed task's hold does not."""
    gate = Hold(type="decision", attempt=1, deadline=T0 + 60, default="fail",
                kind="approval", prompt="Deploy v1.2?")  # fmt: skip
    event = TaskStateEvent(task_id="gate-2", task_name="gate", state="BLOCKED", held_by=[gate])
    beat = Heartbeat(
        blocked=1,
        held=1,
        blocked_tasks=msgspec.convert(
            {"blocked_tasks": [{"task_id": "gate-3", "task_name": "gate", "held_by": [gate]}]},
            Heartbeat,
        ).blocked_tasks,
    )
    model = ReaderModel(clock=lambda: T0)
    model.apply(telemetry(event, run_id="run-1", seq=1))
    model.apply(telemetry(_held(), run_id="run-1", seq=2))
    model.apply(telemetry(beat, run_id="run-2"))
    found = {(held.run_id, held.task_id): held for held in held_tasks(model)}
    for key in (("run-1", "gate-2"), ("run-2", "gate-3")):
        assert (found[key].awaits_approval, found[key].prompt) == (True, "Deploy v1.2?")
        assert (found[key].error, found[key].attempt, found[key].default) == ("", 1, "fail")
    failed = found[("run-1", "load-1")]
    assert (failed.awaits_approval, failed.prompt) == (False, None)
    assert model.runs["run-1"].tasks["gate-2"].hold == gate


QUEUED_HOLD = Hold(type="queued", executor="threads", workers=32)


def test_a_task_waiting_for_a_worker_reads_queued_then_running() -> None:
    """A BLOCKED event with a hold of type ``queued`` reads QUEUED (active, its hold kept), from
    its event or a heartbeat; its RUNNING then replaces it. A reader of the wire's six states
    reads BLOCKED."""
    body = TaskStateEvent(task_id="x-1", task_name="x", state="BLOCKED", held_by=[QUEUED_HOLD])
    assert body.state == "BLOCKED"
    run = _model(body).runs["run-1"]
    task = run.tasks["x-1"]
    assert (task.state, task.held_by, task.hold) == ("QUEUED", (QUEUED_HOLD,), None)
    assert (run.count("QUEUED"), run.count("BLOCKED"), run.held_tasks()) == (1, 0, [])
    assert task in run.active_tasks()
    running = TaskStateEvent(task_id="x-1", task_name="x", state="RUNNING")
    assert _model(body, running).runs["run-1"].tasks["x-1"].state == "RUNNING"
    listed = {"blocked_tasks": [{"task_id": "y-2", "task_name": "y", "held_by": [QUEUED_HOLD]}]}
    beat = Heartbeat(blocked=1, blocked_tasks=msgspec.convert(listed, Heartbeat).blocked_tasks)
    assert _model(beat).runs["run-1"].tasks["y-2"].state == "QUEUED"
