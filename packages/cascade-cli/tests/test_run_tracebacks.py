"""`cascade run` shows, under Failures, the traceback of the first failure, indented and
inert; `--json` has each failed attempt's traceback with its state."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner, Result

from cascade.cli import app
from cascade.cli.plumbing import CliContext
from cascade.history import History, Received
from cascade.interfaces import decode_envelope

T0 = 1_795_000_000.0
RUN = "feed0002c1d0a1f3c2b7e9d84a61bbbb"
TB = (
    "Traceback (most recent call last):\n"
    '  File "flow.py", line 12, in load\n'
    "    raise ValueError(row)\n"
    "ValueError: row 3 \x1b]0;owned\x07has a negative amount\n"
)


def _invoke(*args: str) -> Result:
    return CliRunner().invoke(app, list(args), obj=CliContext(console=Console(width=200)))


def _event(ts: float, body: dict[str, Any]) -> Received:
    raw = {
        "ts": datetime.fromtimestamp(ts, timezone.utc).isoformat(),
        "run_id": RUN,
        "org_id": "acme",
        "project_id": "shop",
        "source": "host-1",
        "body": body,
    }
    return Received(f"cascade/telemetry/acme/shop/{RUN}/events", decode_envelope(raw), ts)


def _task(task_id: str, state: str, ts: float, **extra: Any) -> Received:
    body = {"type": "TaskStateEvent", "task_id": task_id, "task_name": task_id.split("-")[0]}
    return _event(ts, {**body, "state": state, **extra})


@pytest.fixture
def db(tmp_path: Path) -> str:
    """``load`` fails first (on its second attempt, with a traceback); ``late`` fails after it,
    from an engine that sent none."""
    path = str(tmp_path / "history.sqlite3")
    error = "ValueError: row 3 has a negative amount"
    batch = [
        _event(T0, {"type": "LifecycleEvent", "event": "ENGINE_STARTED"}),
        _task("load-1", "RUNNING", T0 + 1),
        _task("load-1", "RETRYING", T0 + 2, error="OSError: down", traceback="Traceback: first\n"),
        _task("load-1", "RUNNING", T0 + 3),
        _task("load-1", "FAILED", T0 + 4, error=error, traceback=TB),
        _task("late-1", "RUNNING", T0 + 1),
        _task("late-1", "FAILED", T0 + 9, error="KeyError: 'k'"),
    ]
    with History(path, mode="write") as history:
        history.store(batch)
    return path


def test_run_shows_the_first_failures_traceback_indented_and_inert(db: str) -> None:
    """Under the failures: the first one's last failed attempt, its traceback line by line,
    indented, its control characters escaped (no terminal sequence gets through)."""
    result = _invoke("run", RUN[:12], "--db", db)
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output
    lines = result.output.splitlines()
    failures = lines.index("Failures: 2, in the order they failed")
    assert lines[failures + 1].split()[:2] == ["load", "load-1"]
    # a failure retried: each attempt, how it ended and its error
    assert lines[failures + 2].split() == [
        "attempts:", "1", "retrying", "after", "1.0s:", "OSError:", "down;", "2", "failed",
        "after", "1.0s:", "ValueError:", "row", "3", "has", "a", "negative", "amount",
    ]  # fmt: skip
    del lines[failures + 2]
    assert lines[failures + 2].split()[:2] == ["late", "late-1"]
    assert lines[failures + 3 : failures + 8] == [
        "  traceback of load, attempt 2:",
        "    Traceback (most recent call last):",
        '      File "flow.py", line 12, in load',
        "        raise ValueError(row)",
        "    ValueError: row 3 \\x1b]0;owned\\x07has a negative amount",
    ]
    assert lines[failures + 8] == "Tasks: 2"
    assert "Traceback: first" not in result.output  # the earlier attempt's is in --json


def test_run_json_has_each_failed_attempts_traceback(db: str) -> None:
    """--json: each failed state of a task with its traceback, as stored; none elsewhere."""
    result = _invoke("run", RUN, "--db", db, "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    load = next(task for task in out["tasks"] if task["task_id"] == "load-1")
    assert [change.get("traceback") for change in load["states"]] == [
        None,
        "Traceback: first\n",
        None,
        TB,
    ]
    assert out["summary"]["failures"][0]["states"][-1]["traceback"] == TB
    late = next(task for task in out["tasks"] if task["task_id"] == "late-1")
    assert all("traceback" not in change for change in late["states"])
