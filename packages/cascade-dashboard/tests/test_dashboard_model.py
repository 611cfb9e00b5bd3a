"""The dashboard's adapter onto the watch state: timelines, monotone progress, bounded memory."""

from __future__ import annotations

from typing import Any

from cascade.dashboard.live import MAX_SEGMENTS_PER_TASK, DashboardModel
from cascade.interfaces import Message

TOPIC = "cascade/telemetry/local/default/run-1/events"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def envelope(body: dict[str, Any], run_id: str = "run-1") -> dict[str, Any]:
    return {"v": "1.0", "ts": "1970-01-01T00:16:40+00:00", "run_id": run_id,
            "org_id": "local", "project_id": "default", "source": "h", "body": body}  # fmt: skip


def state_event(task_id: str, state: str, run_id: str = "run-1", error: str = "") -> Message:
    body = {"type": "TaskStateEvent", "task_id": task_id, "task_name": task_id.split("-")[0],
            "state": state, "duration_ms": 1.0, "error": error}  # fmt: skip
    topic = f"cascade/telemetry/local/default/{run_id}/events"
    return Message(topic, envelope(body, run_id))


def heartbeat(pending: int, completed: int) -> Message:
    body = {"type": "Heartbeat", "pending": pending, "completed": completed}
    return Message("cascade/telemetry/local/default/run-1/heartbeat", envelope(body))


def test_timeline_has_a_segment_per_state_with_its_outcome() -> None:
    """Blocked, then running and retried, then running and completed: four segments, in order."""
    clock = Clock()
    model = DashboardModel(clock=clock)
    for state in ("BLOCKED", "RUNNING", "RETRYING", "RUNNING", "COMPLETED"):
        model.apply(state_event("fetch-1", state))
        clock.now += 1
    (task,) = model.run_detail("run-1")["tasks"]  # type: ignore[index]
    assert [(s["state"], s["start"], s["end"], s["outcome"]) for s in task["segments"]] == [
        ("BLOCKED", 1000.0, 1001.0, "RUNNING"),
        ("RUNNING", 1001.0, 1002.0, "RETRYING"),
        ("RETRYING", 1002.0, 1003.0, "RUNNING"),
        ("RUNNING", 1003.0, 1004.0, "COMPLETED"),
    ]
    assert task["attempts"] == 2


def test_a_repeated_state_adds_no_segment() -> None:
    """The same state twice (a re-sent event) changes nothing."""
    model = DashboardModel(clock=Clock())
    model.apply(state_event("fetch-1", "RUNNING"))
    model.apply(state_event("fetch-1", "RUNNING"))
    (task,) = model.run_detail("run-1")["tasks"]  # type: ignore[index]
    assert len(task["segments"]) == 1


def test_progress_never_goes_backwards() -> None:
    """Unknown (null) until a total is known; a heartbeat counting more tasks never lowers it."""
    model = DashboardModel(clock=Clock())
    model.apply(state_event("a-1", "RUNNING"))
    model.apply(state_event("a-1", "COMPLETED"))
    assert model.snapshot()["runs"][0]["progress"] is None
    model.apply(heartbeat(pending=1, completed=1))
    assert model.snapshot()["runs"][0]["progress"] == 0.5
    model.apply(heartbeat(pending=9, completed=1))
    (run,) = model.snapshot()["runs"]
    assert (run["finished"], run["total"], run["progress"]) == (1, 10, 0.5)


def test_segments_per_task_and_per_run_are_bounded() -> None:
    """A task flapping forever keeps its last segments; a run with endless tasks stops growing."""
    model = DashboardModel(clock=Clock(), max_segments_per_run=100)
    for n in range(1000):
        model.apply(state_event("flappy-1", "RUNNING" if n % 2 else "BLOCKED"))
    for n in range(1000):
        model.apply(state_event(f"t-{n}", "RUNNING"))
    detail = model.run_detail("run-1")
    assert detail is not None
    sizes = {t["task_id"]: len(t["segments"]) for t in detail["tasks"]}
    assert sizes["flappy-1"] == MAX_SEGMENTS_PER_TASK
    assert sum(sizes.values()) <= 100 + MAX_SEGMENTS_PER_TASK
    assert detail["truncated"] > 0


def test_timelines_of_runs_the_state_dropped_are_dropped() -> None:
    """The adapter keeps nothing of a run the watch state no longer holds."""
    model = DashboardModel(clock=Clock())
    model.apply(state_event("a-1", "RUNNING", run_id="old"))
    del model.state.runs["old"]
    model.apply(state_event("a-1", "RUNNING", run_id="new"))
    assert model.kept_timelines == {"new"}


def test_malformed_telemetry_is_counted_and_changes_nothing() -> None:
    """What the model rejects is counted, and draws nothing."""
    model = DashboardModel(clock=Clock())
    model.apply(Message(TOPIC, {"run_id": "run-1", "body": {"task_id": "x"}}))
    snapshot = model.snapshot()
    assert snapshot["rejected"] == 1
    assert snapshot["runs"] == []
    assert model.run_detail("run-1") is None


def test_snapshot_lists_the_running_and_latest_runs_first() -> None:
    """Past max_runs, finished runs heard of longest ago are left out, and counted."""
    clock = Clock()
    model = DashboardModel(clock=clock)
    for n in range(5):
        model.apply(state_event("a-1", "RUNNING", run_id=f"run-{n}"))
        clock.now += 1
    for n in (0, 1, 3):
        lifecycle = {"type": "LifecycleEvent", "event": "ENGINE_STOPPED", "status": "Succeeded"}
        topic = f"cascade/telemetry/local/default/run-{n}/events"
        model.apply(Message(topic, envelope(lifecycle, f"run-{n}")))
        clock.now += 1
    snapshot = model.snapshot(max_runs=3)
    assert [r["run_id"] for r in snapshot["runs"]] == ["run-2", "run-3", "run-4"]
    assert snapshot["runs_total"] == 5
