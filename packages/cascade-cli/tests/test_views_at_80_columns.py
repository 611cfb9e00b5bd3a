"""Every table and view of the CLI on an 80-column terminal: no line wider, and what tells its
rows apart (ids, states, what held a task) still there; counts said in the right number."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

from cascade.cli import app
from cascade.cli.plumbing import BrokerOptions, CliContext
from cascade.cli.rendering import render_fleet, render_status, render_watch
from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector, received, telemetry
from cascade.history import History, Received
from cascade.interfaces import (
    Connector,
    Constraint,
    Hold,
    StatusMessage,
    TaskStateEvent,
    decode_envelope,
    encode_payload,
    status_topic,
)
from cascade.interfaces.summaries import (
    EngineSummary,
    RunTally,
    summary_messages,
    summary_topic,
)
from cascade.reader import ReaderModel

WIDTH = 80
RUN = "5eed0000aa11c1d0a1f3c2b7e9d84a61"
SOURCE = "etl-worker-17.eu-west-1.compute.internal"
START = time.time() - 600
PAUSE = {"type": "pause", "scope": "task:transform", "issued_by": "alice", "reason": "hold on"}
TRANSFORMS = [f"transform-{n}" for n in (2, 5, 8, 11, 14, 17)]


def _event(ts: float, body: dict[str, Any]) -> Received:
    raw = {
        "ts": datetime.fromtimestamp(ts, timezone.utc).isoformat(),
        "run_id": RUN,
        "org_id": "acme",
        "project_id": "warehouse-nightly-reconciliation",
        "source": SOURCE,
        "body": body,
    }
    return Received(f"cascade/telemetry/acme/x/{RUN}/events", decode_envelope(raw), ts)


def _transform(task_id: str, at: float, held: bool) -> list[Received]:
    """A `transform` task: held 16.2 s by a pause (when ``held``), then run and completed."""
    task = {"type": "TaskStateEvent", "task_id": task_id, "task_name": "transform"}
    events = []
    if held:
        events.append(_event(at, {**task, "state": "BLOCKED", "held_by": [PAUSE]}))
        at += 16.2
    events.append(_event(at, {**task, "state": "RUNNING"}))
    events.append(_event(at + 2, {**task, "state": "COMPLETED", "duration_ms": 2000.0}))
    return events


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A failed run of six `transform` tasks (three held by a pause) and a failing `load`, with
    a long error, and a pause set and cleared."""
    path = str(tmp_path_factory.mktemp("at80") / "history.sqlite3")
    load = {"type": "TaskStateEvent", "task_id": "load-20", "task_name": "load"}
    error = "ValueError: checksum mismatch in partition 5 of the nightly warehouse export"
    messages = [_event(START, {"type": "LifecycleEvent", "event": "ENGINE_STARTED", "tasks": 7})]
    for index, task_id in enumerate(TRANSFORMS):
        messages += _transform(task_id, START + 1 + index, held=index < 3)
    messages += [
        _event(START + 30, {**load, "state": "RUNNING"}),
        _event(START + 31, {**load, "state": "FAILED", "duration_ms": 1000.0, "error": error}),
        _event(
            START + 32,
            {
                "type": "LifecycleEvent",
                "event": "ENGINE_STOPPED",
                "status": "Failed",
                "error": f"TaskFailedError: task 'load' (load-20) failed: {error}",
            },
        ),
    ]
    pause = Constraint.pause("task:transform", reason="hold on", issued_by="alice")
    topic = "cascade/constraints/task:transform/pause"
    with History(path, mode="write") as history:
        history.store([*messages, Received(topic, pause, START + 1)])
    return path


def _history_view(*args: str) -> Callable[[str], str]:
    def view(db: str) -> str:
        result = CliRunner().invoke(app, [*args, "--db", db], env={"COLUMNS": str(WIDTH)})
        assert result.exit_code == 0, result.output
        return result.output

    return view


def _printed(renderable: Any) -> str:
    console = Console(record=True, width=WIDTH, force_terminal=False)
    console.print(renderable)
    return console.export_text()


def _model() -> ReaderModel:
    """A live run with three `transform` tasks blocked by one pause and one running; one engine
    online with a summary counting that one live run."""
    state = ReaderModel()
    pause = Hold(type="pause", scope="task:transform", issued_by="alice", reason="maintenance")
    for task_id in TRANSFORMS[:3]:
        blocked = TaskStateEvent(
            task_id=task_id, task_name="transform", state="BLOCKED", held_by=[pause]
        )
        state.apply(telemetry(blocked, run_id=RUN, source=SOURCE))
    running = TaskStateEvent(task_id="extract-1", task_name="extract", state="RUNNING")
    state.apply(telemetry(running, run_id=RUN, source=SOURCE))
    state.apply(received(status_topic(SOURCE), StatusMessage(status="online", session=1)))
    now = datetime.now(timezone.utc).isoformat()
    summary = EngineSummary(source=SOURCE, ts=now, runs=RunTally(running=1), more_live=1)
    for at, said in summary_messages(summary):
        state.apply(received(at, said, retain=True))
    return state


def _live_view(render: Callable[[ReaderModel], Any]) -> Callable[[str], str]:
    return lambda db: _printed(render(_model()))


def _watch_command(db: str) -> str:
    """`cascade watch` itself, in events mode below the threshold (its header on top)."""
    broker = InMemoryBroker()
    console = Console(record=True, width=WIDTH, height=40, force_terminal=True)

    async def seed() -> None:
        async with InMemoryConnector(broker, presence=False) as other:
            status = StatusMessage(status="online", source=SOURCE, session=1)
            await other.publish(status_topic(SOURCE), encode_payload(status), qos=1, retain=True)
            now = datetime.now(timezone.utc).isoformat()
            summary = EngineSummary(source=SOURCE, ts=now, runs=RunTally(running=1), more_live=1)
            await other.publish(summary_topic(SOURCE), encode_payload(summary), qos=1, retain=True)

    asyncio.run(seed())

    def factory(options: BrokerOptions) -> Connector:
        return InMemoryConnector(broker, presence=False)

    context = CliContext(connector_factory=factory, console=console)
    result = CliRunner().invoke(app, ["watch", "--duration", "0"], obj=context)
    assert result.exit_code == 0, result.output
    frames = console.export_text().split("events mode: ")  # Live drew it more than once
    assert len(frames) > 1, frames
    return "events mode: " + frames[-1]


@dataclass(frozen=True)
class View:
    """A view of the CLI, and what must show in it at 80 columns."""

    render: Callable[[str], str]
    shown: tuple[str, ...]
    not_shown: tuple[str, ...] = ()


VIEWS = {
    "runs": View(
        _history_view("runs"),
        (RUN[:12], " Failed ", "ValueError: "),
    ),
    "run": View(
        _history_view("run", RUN[:8]),
        (
            *(f"│ {task_id} " for task_id in TRANSFORMS),  # each row its own task
            "│ load-20 ",
            " COMPLETED ",
            " FAILED ",
            " held ",
            "16.2s: pause",
        ),
    ),
    "tasks": View(_history_view("tasks"), ("│ transform ", "│ load ", " failures ")),
    "audit": View(_history_view("audit"), (" set ", "task:transform", " pause ")),
    "watch (the runs)": View(
        _live_view(render_watch),
        ("3 tasks blocked", "(transform)", "pause on", "running extract"),
        ("blocked transform",),  # not once a task
    ),
    "watch (events mode)": View(
        _watch_command, ("events mode: 1 live run in the summaries", "Engines")
    ),
    "watch (fleet mode)": View(
        _live_view(lambda state: render_fleet(state, threshold=1, rows=10)),
        ("fleet mode: from 1 engine's summary", "fleet: 1 engine (1 online)", "1 live run"),
    ),
    "status": View(
        _live_view(render_status),
        ("fleet: 1 engine (1 online) · 1 live run", "Engines", "online"),
    ),
}


@pytest.mark.parametrize("name", VIEWS)
def test_the_view_fits_80_columns_and_keeps_its_key_columns(name: str, db: str) -> None:
    """No line wider than 80 (but the history's path, printed whole to be copied); the texts
    that tell its rows apart are there."""
    view = VIEWS[name]
    text = view.render(db)
    lines = [line for line in text.splitlines() if not line.startswith("history: ")]
    assert max(len(line) for line in lines) <= WIDTH, text
    flat = " ".join(text.split())
    for expected in view.shown:
        assert expected in text or " ".join(expected.split()) in flat, (expected, text)
    for unexpected in view.not_shown:
        assert unexpected not in text, (unexpected, text)


def test_a_count_says_its_noun_in_the_right_number() -> None:
    """The one helper every view counts with."""
    from cascade.cli.rendering import counted

    assert counted(1, "engine") == "1 engine"
    assert counted(0, "engine") == "0 engines"
    assert counted(1200, "live run") == "1,200 live runs"
    assert counted(1, "engine's summary", "engines' summaries") == "1 engine's summary"
    assert counted(2, "engine's summary", "engines' summaries") == "2 engines' summaries"


def test_the_history_path_line_is_the_only_wide_one(db: str, tmp_path: Path) -> None:
    """(What the check above leaves out is only the path's line.)"""
    text = _history_view("runs")(db)
    assert [line for line in text.splitlines() if len(line) > WIDTH] in (
        [],
        [line for line in text.splitlines() if line.startswith("history: ")],
    )
