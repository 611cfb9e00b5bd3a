"""Every wait says why: what `watch` and `why` make of a BLOCKED event's held_by and of
heartbeats' blocked tasks."""

from __future__ import annotations

import json
from collections.abc import Callable

import msgspec
import pytest
from rich.console import Console
from typer.testing import Result

from cascade.cli.rendering import (
    NOTHING_HOLDS,
    TimeFormat,
    holds_text,
    recorded_holds_brief,
    render_watch,
)
from cascade.interfaces import (
    Envelope,
    Heartbeat,
    Hold,
    LifecycleEvent,
    Message,
    RunSnapshot,
    TaskStateEvent,
    encode_payload,
    events_topic,
    heartbeat_topic,
)
from cascade.reader import ReaderModel

Body = LifecycleEvent | TaskStateEvent | Heartbeat | RunSnapshot  # an envelope's body

RUN = "0123456789abcdef0123456789abcdef"
PAUSE = Hold(type="pause", scope="task:load_*", reason="maintenance", issued_by="alice")


def _message(body: Body, ts: str = "2026-01-01T00:00:01+00:00") -> Message:
    envelope = Envelope(run_id=RUN, org_id="o", project_id="p", source="host-1", body=body, ts=ts)
    kind = heartbeat_topic if isinstance(body, Heartbeat) else events_topic
    return Message(topic=kind("o", "p", RUN), payload=json.loads(encode_payload(envelope)))


def _blocked(task_id: str, held: list[Hold] | None) -> Message:
    body = TaskStateEvent(task_id=task_id, task_name="load_daily", state="BLOCKED")
    if held is not None:
        body.held_by = held
    return _message(body)


def test_hold_texts() -> None:
    """Each kind of hold in words; none at all says it waits for a free slot."""
    times = TimeFormat(1_000.0)
    concurrency = Hold(
        type="concurrency", scope="task:api_*", limit=2, running=2, holders={"api_get": 2}
    )
    rate = Hold(type="rate_limit", scope="global", rate="2/s", next_start=1_000.5)
    assert holds_text([PAUSE], times) == 'pause on task:load_* by alice "maintenance"'
    assert holds_text([concurrency], times) == "concurrency 2/2 on task:api_* (running: 2 api_get)"
    assert holds_text([rate], times).startswith("rate_limit 2/s on global, next start ")
    assert holds_text([rate], times).endswith("(in 0.5s)")
    assert "broker's retained constraints" in holds_text([Hold(type="sync")], times)
    assert holds_text([Hold(type="quota", scope="global")], times) == "quota on global"
    assert holds_text([], times) == NOTHING_HOLDS


def test_queued_hold_texts() -> None:
    """A task waiting for a worker of its executor: which workers, all busy."""
    times = TimeFormat(1_000.0)
    threads = Hold(type="queued", executor="threads", workers=32)
    processes = Hold(type="queued", executor="processes", workers=8)
    assert holds_text([threads], times) == "waiting for one of 32 threads (all busy)"
    assert holds_text([processes], times) == "waiting for one of 8 worker processes (all busy)"
    assert recorded_holds_brief([msgspec.to_builtins(threads)]) == "a worker"


def test_resource_hold_texts() -> None:
    """A task waiting for a system resource: who holds it (the largest first), or who waits
    for it first; a resource hold from an engine that sends only its type and name."""
    times = TimeFormat(1_000.0)
    gpu = Hold(
        type="resource", resource="gpu_slots", amount=1, in_use=1, capacity=1,
        users={"train-12": 1},
    )  # fmt: skip
    assert holds_text([gpu], times) == "resource:gpu_slots needs 1 (1 of 1 in use by train-12)"
    users = {f"load-{i}": 4.0 + i for i in range(5)}
    memory = Hold(
        type="resource", resource="memory_gb", amount=16, in_use=30, capacity=32, users=users
    )
    assert holds_text([memory], times) == (
        "resource:memory_gb needs 16 (30 of 32 in use by load-4, load-3, load-2, 2 more tasks)"
    )
    ahead = Hold(
        type="resource", resource="memory_gb", amount=0.5, in_use=8, capacity=32, ahead="big-3"
    )
    assert holds_text([ahead], times) == (
        "resource:memory_gb needs 0.5 (8 of 32 in use; big-3 waits for it first)"
    )
    assert holds_text([Hold(type="resource", resource="x")], times) == (
        "resource:x (? of ? in use)"
    )
    kept = [{"type": "resource", "resource": "gpu_slots", "amount": 1, "in_use": 1, "capacity": 1}]
    assert recorded_holds_brief(kept) == "resource gpu_slots"  # a history's table cell


def test_watch_shows_what_holds_a_blocked_task() -> None:
    """Beside the blocked task, its holds; a task from an engine that does not say, nothing."""
    state = ReaderModel(clock=lambda: 2e9)
    state.apply(_blocked("load-1", [PAUSE]))
    state.apply(_blocked("load-2", None))
    console = Console(width=160, record=True)
    console.print(render_watch(state))
    text = console.export_text()
    (line,) = [line for line in text.splitlines() if 'by alice "maintenance"' in line]
    assert "blocked load_daily" in line
    assert state.runs[RUN].tasks["load-2"].held_by is None


def test_a_heartbeat_tells_a_late_view_what_is_blocked_and_why() -> None:
    """Tasks this view never saw block are added from the heartbeat, and the holds of those
    it saw are brought up to date."""
    state = ReaderModel(clock=lambda: 2e9)
    state.apply(_blocked("load-1", [PAUSE]))
    limit = Hold(type="concurrency", scope="global", limit=0, running=0)
    beat = msgspec.convert(
        {
            "blocked": 2,
            "blocked_tasks": [
                {"task_id": "load-1", "task_name": "load_daily", "held_by": [limit]},
                {
                    "task_id": "load-9",
                    "task_name": "load_daily",
                    "since": 1.5e9,
                    "held_by": [PAUSE],
                },
            ],
        },
        Heartbeat,
    )  # fmt: skip
    state.apply(_message(beat, ts="2026-01-01T00:00:02+00:00"))
    tasks = state.runs[RUN].tasks
    assert tasks["load-1"].held_by == (limit,)
    assert (tasks["load-9"].state, tasks["load-9"].since, tasks["load-9"].held_by) == (
        "BLOCKED",
        1.5e9,
        (PAUSE,),
    )
    running = TaskStateEvent(task_id="load-9", task_name="load_daily", state="RUNNING")
    state.apply(_message(running, ts="2026-01-01T00:00:03+00:00"))
    assert tasks["load-9"].state == "RUNNING"


def test_a_hostile_hold_is_cut_and_shown_inert() -> None:
    """A reason of another engine's is kept cut, and shown with its escapes."""
    state = ReaderModel(clock=lambda: 2e9)
    state.apply(_blocked("load-1", [Hold(type="pause", reason="\x1b]0;t\x07" + "x" * 5000)]))
    (hold,) = state.runs[RUN].tasks["load-1"].held_by or ()
    assert hold.reason is not None
    assert len(hold.reason) < 300
    text = holds_text([hold], TimeFormat(2e9))
    assert "\x1b" not in text
    assert "\\x1b]0;t\\x07" in text


@pytest.mark.parametrize("run_id", ["xyz", "0123456789abcdef0123456789abcdef00", ""])
def test_why_refuses_a_malformed_run_id(invoke: Callable[..., Result], run_id: str) -> None:
    """Not hex, empty or too long: exit 2 before anything is sent."""
    result = invoke("why", run_id)
    assert result.exit_code == 2
    assert "a run id is hex digits" in result.output


def test_why_exits_1_when_nothing_of_the_run_is_heard(invoke: Callable[..., Result]) -> None:
    """No engine runs it and no history: one line on stderr, exit 1, after --timeout."""
    result = invoke("why", RUN, "--timeout", "0.2")
    assert result.exit_code == 1
    assert f"nothing heard of run {RUN} within 0.2 s" in result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_the_dashboard_lists_what_holds_each_blocked_task() -> None:
    """A run's detail has each blocked task's held_by as JSON (null: its engine did not say)."""
    from cascade.dashboard.live import DashboardModel

    model = DashboardModel(clock=lambda: 2e9)
    model.apply(_blocked("load-1", [PAUSE]))
    model.apply(_blocked("load-2", None))
    detail = model.run_detail(RUN)
    assert detail is not None
    held = {task["task_id"]: task["held_by"] for task in detail["tasks"]}
    assert held == {
        "load-1": [
            {"type": "pause", "scope": "task:load_*", "reason": "maintenance", "issued_by": "alice"}
        ],
        "load-2": None,
    }
