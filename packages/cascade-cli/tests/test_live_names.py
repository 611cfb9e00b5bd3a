"""Run names in the live views: `cascade watch` (a run's name, and the run it reruns, from its
ENGINE_STARTED), `cascade status` and the fleet view (the live runs' names an engine's
summary lists, made inert), and `status --json` (``live_names``)."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from rich.console import Console

from cascade.cli.rendering import render_fleet, render_status, render_watch, status_json
from cascade.connector_kit.testing import received, telemetry
from cascade.interfaces import LifecycleEvent, StatusMessage, TaskStateEvent, status_topic
from cascade.interfaces.serving import RunOrigin
from cascade.interfaces.summaries import (
    EngineSummary,
    RunTally,
    SummaryRun,
    TaskTally,
    summary_messages,
)
from cascade.reader import ReaderModel

NOW = datetime.now(timezone.utc).isoformat()


def _text(renderable: object) -> str:
    console = Console(record=True, width=200)
    console.print(renderable)
    return console.export_text()


def test_watch_shows_each_runs_name_and_what_it_reruns() -> None:
    state = ReaderModel()
    origin = RunOrigin(workflow="nightly", rerun_of="a1" * 16, root_run="a1" * 16)
    state.apply(telemetry(LifecycleEvent(event="ENGINE_STARTED", name="nightly", origin=origin),
                          run_id="b2" * 16, seq=1))  # fmt: skip
    state.apply(telemetry(LifecycleEvent(event="ENGINE_STARTED"), run_id="c3" * 16, seq=1))
    state.apply(telemetry(TaskStateEvent(task_id="t", task_name="t", state="RUNNING"),
                          run_id="c3" * 16, seq=2))  # fmt: skip
    text = _text(render_watch(state))
    assert "┃ name " in text or " name " in text
    [named] = [line for line in text.splitlines() if "b2b2b2b2b2b2" in line]
    assert "nightly" in named
    assert f"rerun of {'a1' * 6}" in text
    [plain] = [line for line in text.splitlines() if "c3c3c3c3c3c3" in line]
    assert "nightly" not in plain


def _summary(source: str) -> EngineSummary:
    def run(run_id: str, name: str | None, status: str = "Running") -> SummaryRun:
        return SummaryRun(run_id=run_id, org_id="o", project_id="p", status=status,  # type: ignore[arg-type]
                          started=NOW, tasks=TaskTally(running=1), name=name)  # fmt: skip

    listed = [run("r1", "nightly"), run("r2", "nightly"), run("r3", "\x1b[2Jetl"),
              run("r4", None), run("r5", "ended-one", "Succeeded")]  # fmt: skip
    return EngineSummary(source=source, ts=NOW, runs=RunTally(running=4), listed=listed,
                         more_live=0)  # fmt: skip


def _state() -> ReaderModel:
    state = ReaderModel()
    state.apply(received(status_topic("host-1"), StatusMessage(status="online", source="host-1",
                                                               session=1)))  # fmt: skip
    for at, said in summary_messages(_summary("host-1")):
        state.apply(received(at, said, retain=True))
    return state


def test_status_and_the_fleet_view_name_the_live_runs_inert() -> None:
    state = _state()
    for text in (_text(render_status(state)), _text(render_fleet(state, threshold=0, rows=10))):
        assert "nightly, \\x1b[2Jetl" in text
        assert "\x1b" not in text
        assert "ended-one" not in text  # not live


def test_status_json_lists_the_live_names() -> None:
    document = json.loads(json.dumps(status_json(_state())))
    [engine] = document["engines"]
    assert engine["summary"]["live_names"] == ["nightly", "\x1b[2Jetl"]
