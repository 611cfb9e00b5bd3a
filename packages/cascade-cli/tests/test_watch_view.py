"""The live view shows what the reader model holds: runs, task counts, failures, engines and
constraints."""

from __future__ import annotations

import time

from rich.console import Console

from cascade.cli.rendering import render_watch
from cascade.connector_kit.testing import received, telemetry
from cascade.interfaces import (
    Constraint,
    Heartbeat,
    Hold,
    LifecycleEvent,
    Message,
    RunSnapshot,
    StatusMessage,
    TaskStateEvent,
    constraint_topic,
    status_topic,
)
from cascade.interfaces.serving import RunOrigin
from cascade.reader import ReaderModel

Body = LifecycleEvent | TaskStateEvent | Heartbeat | RunSnapshot  # an envelope's body


def _event(body: Body, run_id: str = "run-1") -> Message:
    return telemetry(body, run_id=run_id)


def _task(task_id: str, state: str, error: str = "") -> Message:
    return _event(
        TaskStateEvent(
            task_id=task_id,
            task_name=f"fn_{task_id}",
            state=state,  # type: ignore[arg-type]
            error=error,
        )
    )


def test_render_shows_runs_engines_constraints() -> None:
    """The live view names the run, task counts, failures, engines and constraints."""
    state = ReaderModel()
    for message in [
        _task("a", "RUNNING"),
        _task("b", "FAILED", "ValueError: boom"),
        received(status_topic("host-1"), StatusMessage(status="online", session=1)),
        received(
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


def test_a_held_task_is_shown_held_with_what_it_waits_for() -> None:
    """Counted ``held``, listed ``held`` with its decision hold and its error."""
    hold = Hold(type="decision", attempt=2, deadline=time.time() + 3600, default="skip")
    held = TaskStateEvent(
        task_id="load-1",
        task_name="load",
        state="BLOCKED",
        error="ConnectionError: down",
        held_by=[hold],
    )
    state = ReaderModel()
    state.apply(_event(held))
    console = Console(record=True, width=200)
    console.print(render_watch(state))
    text = console.export_text()
    assert "held 1" in text
    assert "held load" in text
    assert "awaits a decision on attempt 2 (skip at " in text
    assert "unless decided): ConnectionError: down" in text


def test_a_gate_is_shown_held_awaiting_approval_with_its_prompt() -> None:
    """Its hold says it awaits approval with its prompt, not a decision on an attempt."""
    hold = Hold(type="decision", attempt=1, deadline=time.time() + 3600, default="fail",
                kind="approval", prompt="Deploy v1.2 to production?")  # fmt: skip
    gate = TaskStateEvent(task_id="gate-1", task_name="gate", state="BLOCKED", held_by=[hold])
    state = ReaderModel()
    state.apply(_event(gate))
    console = Console(record=True, width=200)
    console.print(render_watch(state))
    text = console.export_text()
    assert "held gate" in text
    assert 'awaits approval: "Deploy v1.2 to production?" (fail at ' in text
    assert "on attempt" not in text


def test_a_maps_items_fold_into_one_row_each_state() -> None:
    """200 items of a map running are one row (how many, of which map); its failed items one
    row under their name with the first error; another task keeps its own row."""
    state = ReaderModel()

    def item(index: int, state_: str, error: str = "") -> Message:
        body = TaskStateEvent(
            task_id=f"transform-7[{index}]",
            task_name="transform",
            state=state_,  # type: ignore[arg-type]
            error=error,
        )
        return _event(body)

    for index in range(200):
        state.apply(item(index, "RUNNING"))
    state.apply(item(200, "FAILED", "ValueError: bad row 200"))
    state.apply(item(201, "FAILED", "ValueError: bad row 201"))
    state.apply(_task("load-8", "RUNNING"))
    console = Console(record=True, width=140)
    console.print(render_watch(state))
    text = console.export_text()
    assert "200 items running (map transform-7)" in text
    assert text.count("running transform") == 0  # no row per item
    assert "failed transform (2 items of its map)" in text
    assert "ValueError: bad row 200" in text
    assert "ValueError: bad row 201" not in text
    assert "running fn_load-8" in text


def test_a_loop_and_its_iteration_are_one_row() -> None:
    """A loop's own task running and its latest iteration are one row (the iteration's number
    and state); its earlier iterations show nowhere; a task whose name has an '@' keeps its
    row; a failed loop and the iteration that failed it are one failure."""
    state = ReaderModel()

    def counter(task_id: str, state_: str, error: str = "") -> Message:
        body = TaskStateEvent(
            task_id=task_id,
            task_name="counter",
            state=state_,  # type: ignore[arg-type]
            error=error,
        )
        return _event(body)

    state.apply(counter("counter-4", "RUNNING"))
    for number in range(2, 7):
        state.apply(counter(f"counter-4@{number}", "RUNNING"))
        state.apply(counter(f"counter-4@{number}", "COMPLETED"))
    state.apply(counter("counter-4@7", "RUNNING"))
    state.apply(_task("mail@2", "RUNNING"))  # no task 'mail' in the run: no iteration
    console = Console(record=True, width=140)
    console.print(render_watch(state))
    text = console.export_text()
    assert "running counter: iteration 7 running" in text
    assert text.count("running counter") == 1
    assert "running fn_mail@2" in text
    state.apply(counter("counter-4@7", "FAILED", "ValueError: too far"))
    state.apply(counter("counter-4", "FAILED", "ValueError: too far"))
    console = Console(record=True, width=140)
    console.print(render_watch(state))
    text = console.export_text()
    assert text.count("failed counter") == 1
    assert "failed counter (its iteration 7)" in text


def test_a_lost_run_says_so_when_with_which_engine_and_where_it_went() -> None:
    """Its engine's will with the run not ended: the run is Lost at once, says when, which
    engine, and once a carry-on started where it went on; nothing of it says "running" and
    its tasks' clocks stop at the death."""
    now = [time.time()]
    state = ReaderModel(clock=lambda: now[0])
    state.apply(received(status_topic("srv-1"), StatusMessage(status="online", session=1)))
    start = LifecycleEvent(event="ENGINE_STARTED", tasks=3, name="etl")
    state.apply(telemetry(start, run_id="run-1", source="srv-1", seq=1))
    load = TaskStateEvent(task_id="load", task_name="load", state="RUNNING")
    state.apply(telemetry(load, run_id="run-1", source="srv-1", seq=2))
    now[0] += 5
    state.apply(received(status_topic("srv-1"), StatusMessage(status="offline", session=1)))
    now[0] += 60  # a minute after the death

    def run_rows() -> str:
        console = Console(record=True, width=200)
        console.print(render_watch(state))
        text = console.export_text()
        return text[: text.index("Engines")]

    rows = run_rows()
    assert "Lost" in rows
    assert "when its engine srv-1 went offline; not carried on (yet)" in rows
    assert "running" not in rows.lower()
    assert "in flight load" in rows
    assert "1m" not in rows  # its clock stopped at the death, 5 s in
    origin = RunOrigin(workflow="etl", carried_on_from="run-1", lost_engine="srv-1")
    carry_on = LifecycleEvent(event="ENGINE_STARTED", tasks=3, name="etl", origin=origin)
    state.apply(telemetry(carry_on, run_id="run-2", source="srv-2", seq=1))
    assert "carried on as run-2 at srv-2" in run_rows()
