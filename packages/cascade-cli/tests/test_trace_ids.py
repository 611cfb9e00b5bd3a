"""A traced run's trace id (the envelope's optional ``trace_id``): kept and shown by the views."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from typer.testing import CliRunner

from cascade.cli import app
from cascade.cli.plumbing import CliContext
from cascade.cli.rendering import render_watch
from cascade.dashboard.live import DashboardModel
from cascade.history import History, Received
from cascade.interfaces import (
    Envelope,
    Heartbeat,
    LifecycleEvent,
    Message,
    RunSnapshot,
    TaskStateEvent,
    decode_envelope,
    encode_payload,
    events_topic,
)
from cascade.reader import ReaderModel

Body = LifecycleEvent | TaskStateEvent | Heartbeat | RunSnapshot  # an envelope's body

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
RUN_1 = "0123456789abcdef0123456789abcdef"  # a run id as engines make them: `cascade run` takes hex


def _event(body: Body, trace_id: str | None, run_id: str = "run-1") -> Message:
    envelope = Envelope(run_id=run_id, org_id="local", project_id="default", source="h", body=body)
    if trace_id is not None:
        envelope.trace_id = trace_id
    payload = json.loads(encode_payload(envelope))
    return Message(topic=events_topic("local", "default", run_id), payload=payload)


def _run(trace_id: str | None, run_id: str = "run-1") -> list[Message]:
    return [
        _event(LifecycleEvent(event="ENGINE_STARTED", tasks=1), trace_id, run_id),
        _event(TaskStateEvent(task_id="t-1", task_name="t", state="RUNNING"), trace_id, run_id),
    ]


def test_watch_keeps_and_shows_the_trace_id_of_a_traced_run() -> None:
    """`cascade watch` shows ``trace <id>`` under a traced run, nothing under an untraced one."""
    state = ReaderModel()
    for message in [*_run(TRACE), *_run(None, "run-2")]:
        state.apply(message)
    assert state.runs["run-1"].trace_id == TRACE
    assert state.runs["run-2"].trace_id is None
    console = Console(record=True, width=140)
    console.print(render_watch(state))
    text = console.export_text()
    assert text.count("trace ") == 1
    assert f"trace {TRACE}" in text


def test_a_malformed_trace_id_is_rejected_with_its_message() -> None:
    """A ``trace_id`` that is not 32 lowercase hex digits makes the message invalid."""
    state = ReaderModel()
    state.apply(_event(LifecycleEvent(event="ENGINE_STARTED"), "\x1b[2J" + "0" * 28))
    assert state.rejected == 1
    assert state.runs == {}


def test_the_dashboards_run_detail_has_the_trace_id() -> None:
    """The run summary and detail carry ``trace_id`` (null when the run is not traced)."""
    model = DashboardModel()
    for message in [*_run(TRACE), *_run(None, "run-2")]:
        model.apply(message)
    detail = model.run_detail("run-1")
    assert detail is not None
    assert detail["trace_id"] == TRACE
    untraced = model.run_detail("run-2")
    assert untraced is not None
    assert untraced["trace_id"] is None
    assert {r["run_id"]: r["trace_id"] for r in model.snapshot()["runs"]} == {
        "run-1": TRACE,
        "run-2": None,
    }


def test_cascade_run_shows_the_recorded_trace_id(tmp_path: Path) -> None:
    """`cascade run RUN_ID` from the history says ``trace <id>``, and its JSON has it."""
    path = str(tmp_path / "history.sqlite3")
    with History(path, mode="write") as history:
        for message in _run(TRACE, RUN_1):
            envelope = decode_envelope(message.payload)
            history.store([Received(message.topic, envelope, 1_795_000_000.0)])
    context = CliContext(console=Console(width=200))
    shown = CliRunner().invoke(app, ["run", RUN_1, "--db", path], obj=context)
    assert shown.exit_code == 0, shown.output
    assert f"trace {TRACE}" in shown.output
    as_json = CliRunner().invoke(app, ["run", RUN_1, "--db", path, "--json"], obj=context)
    assert json.loads(as_json.output)["trace_id"] == TRACE
