"""The history's tables on an 80-column terminal: run ids (12 hex digits), statuses, actions and
times whole, errors cut to a line, other text folded, the least needed columns left out saying
so; times with their date when it is not today; and empty views saying "none"."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from cascade.cli import app
from cascade.history import History, Received
from cascade.interfaces import Constraint, decode_envelope
from cascade.interfaces.commands import decode_cancel_reply, reply_topic

NOW = datetime(2026, 11, 24, 18, 0, tzinfo=timezone.utc).timestamp()
TODAY = NOW - 3600  # 17:00
THIS_YEAR = datetime(2026, 11, 21, 9, 30, tzinfo=timezone.utc).timestamp()
LAST_YEAR = datetime(2025, 12, 30, 23, 15, tzinfo=timezone.utc).timestamp()
IDS = {
    "Succeeded": "58a88765cea2c1d0a1f3c2b7e9d84a61",
    "Failed": "0badc0ffee11c1d0a1f3c2b7e9d84a61",
    "Cancelled": "c0ffee0000aac1d0a1f3c2b7e9d84a61",
}


@pytest.fixture
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The local time zone is UTC, and the commands' clock says NOW."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    clock = SimpleNamespace(time=lambda: NOW)
    for command in ("runs", "audit", "run"):
        monkeypatch.setattr(f"cascade.cli.commands.{command}._command.time", clock)
    yield
    monkeypatch.undo()
    time.tzset()


def _invoke(*args: str) -> Result:
    """`cascade ARGS` as on an 80-column terminal (rich reads COLUMNS)."""
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "80"})


def _event(run_id: str, ts: float, body: dict[str, Any]) -> Received:
    raw = {
        "ts": datetime.fromtimestamp(ts, timezone.utc).isoformat(),
        "run_id": run_id,
        "org_id": "acme",
        "project_id": "warehouse-nightly-reconciliation",
        "source": "etl-worker-17.eu-west-1.compute.internal",
        "body": body,
    }
    return Received(f"cascade/telemetry/acme/x/{run_id}/events", decode_envelope(raw), ts)


def _run(run_id: str, start: float, status: str) -> list[Received]:
    begin = {"type": "LifecycleEvent", "event": "ENGINE_STARTED", "tasks": 3}
    task = {"type": "TaskStateEvent", "task_id": "load-1", "task_name": "load_orders_table"}
    end: dict[str, Any] = {"type": "LifecycleEvent", "event": "ENGINE_STOPPED"}
    if status == "Cancelled":
        end |= {"status": "Failed", "cancelled": True}
    else:
        end["status"] = status
    if status != "Succeeded":
        end["error"] = "TaskFailedError: task 'load_orders_table' (load-1) failed: timeout"
    return [
        _event(run_id, start, begin),
        _event(run_id, start + 1, {**task, "state": "RUNNING"}),
        _event(
            run_id,
            start + 70,
            {
                **task,
                "state": "COMPLETED" if status == "Succeeded" else "FAILED",
                "duration_ms": 69_000.0,
                "error": "" if status == "Succeeded" else "TimeoutError: the warehouse is slow",
            },
        ),
        _event(run_id, start + 71, end),
    ]


@pytest.fixture
def db(tmp_path: Path) -> str:
    """Three runs (today, earlier this year, last year), a limit set and a cancel."""
    path = str(tmp_path / "history.sqlite3")
    run_id = IDS["Cancelled"]
    reply = decode_cancel_reply(
        {
            "id": "9f1c0e2a4b6d48e0a1b2c3d4e5f60718",
            "run_id": run_id,
            "source": "etl-worker-17.eu-west-1.compute.internal",
            "cancelled": [{"task_id": "load-1", "task_name": "load_orders_table"}],
            "cancelled_count": 1,
            "not_started": 2,
            "issued_by": "alice",
            "reason": "wrong input data in the staging bucket",
        }
    )
    limit = Constraint.concurrency(
        "task:load_*", 2, reason="warehouse maintenance", issued_by="bob"
    )
    with History(path, mode="write") as history:
        history.store(
            [
                *_run(IDS["Succeeded"], TODAY, "Succeeded"),
                *_run(IDS["Failed"], THIS_YEAR, "Failed"),
                *_run(run_id, LAST_YEAR, "Cancelled"),
                Received("cascade/constraints/task:load_*/concurrency", limit, THIS_YEAR),
                Received(reply_topic("local", reply.id, reply.source), reply, TODAY),
            ]
        )
    return path


def _fits(output: str) -> list[str]:
    lines = output.splitlines()
    tables = [line for line in lines if not line.startswith("history: ")]  # a path, unwrapped
    assert max(len(line) for line in tables) <= 80, output
    # nothing cut but an error, at the end of its cell (one line each: the run says it whole)
    assert "…" not in output.replace("… │", ""), output
    return lines


@pytest.mark.usefixtures("utc")
def test_runs_keep_ids_statuses_and_dates_whole(db: str) -> None:
    """Every run's 12-digit id and status on its row, its start with the date when it is not
    today; the engine, the project and the duration left out, saying so."""
    result = _invoke("runs", "--db", db)
    assert result.exit_code == 0, result.output
    lines = _fits(result.output)
    for status, started in (
        ("Succeeded", "17:00:00"),
        ("Failed", "Nov 21 09:30"),
        ("Cancelled", "2025-12-30 23:15"),
    ):
        (row,) = (line for line in lines if IDS[status][:12] in line)
        assert f" {status} " in row
        assert f" {started} " in row
    assert "not shown at 80 columns: duration, project, source; --json has them" in lines


@pytest.mark.usefixtures("utc")
def test_runs_keep_each_count_beside_its_state(tmp_path: Path) -> None:
    """Counts too long for one line are one state a line, never a name apart from its count."""
    path = str(tmp_path / "history.sqlite3")
    body = {"type": "TaskStateEvent", "task_name": "extract"}
    states = ["RUNNING", "FAILED", "SKIPPED"] + ["COMPLETED"] * 13
    with History(path, mode="write") as history:
        history.store(
            [
                _event(IDS["Succeeded"], TODAY + i, {**body, "task_id": f"x-{i}", "state": state})
                for i, state in enumerate(states)
            ]
        )
    result = _invoke("runs", "--db", path)
    assert result.exit_code == 0, result.output
    lines = _fits(result.output)
    start = next(i for i, line in enumerate(lines) if line.startswith(f"│ {IDS['Succeeded'][:12]}"))
    header = next(line for line in lines if line.startswith("┃ run "))
    column = [part.strip() for part in header.split("┃")].index("tasks")
    cells = [line.split("│")[column].strip() for line in lines[start : start + 4]]
    assert cells == ["running 1", "completed 13", "failed 1", "skipped 1"]


@pytest.mark.usefixtures("utc")
def test_audit_keeps_when_action_and_the_cancelled_run_whole(db: str) -> None:
    """A cancel's scope is `run:` and the run's 12 digits, on one line; its time today is a
    time, the limit's of another day has its date."""
    result = _invoke("audit", "--db", db, "--since", "3650d")
    assert result.exit_code == 0, result.output
    lines = _fits(result.output)
    (cancel,) = (line for line in lines if " cancelled " in line)
    assert f" run:{IDS['Cancelled'][:12]} " in cancel
    assert cancel.startswith("│ 17:00:00 ")
    (limit,) = (line for line in lines if " set " in line)
    assert limit.startswith("│ Nov 21 09:30 ")
    assert " concurrency " in limit
    (said,) = (i for i, line in enumerate(lines) if line.startswith("not shown at 80 columns: "))
    assert lines[said - 1].startswith("└")  # right under the table


@pytest.mark.usefixtures("utc")
def test_run_keeps_its_id_and_states_whole(db: str) -> None:
    """The whole run id in its header; each task's state whole; the timeline left out."""
    result = _invoke("run", IDS["Failed"][:8], "--db", db)
    assert result.exit_code == 0, result.output
    lines = _fits(result.output)
    assert lines[0].startswith(f"run {IDS['Failed']}  Failed  started 2026-11-21 09:30:00")
    (row,) = (line for line in lines if line.startswith("│ load_orders_t"))
    assert " FAILED " in row
    assert "not shown at 80 columns: states; --json has them" in lines


def test_tasks_keep_their_numbers_whole(db: str) -> None:
    """The task name folds; counts and durations never."""
    result = _invoke("tasks", "--db", db, "--since", "3650d")
    assert result.exit_code == 0, result.output
    lines = _fits(result.output)
    (row,) = (line for line in lines if line.startswith("│ load_orde"))
    cells = [cell.strip() for cell in row.split("│")[2:-1]]
    assert cells == ["3", "3", "2", "66.7%", "1m09s", "1m09s", "1m09s"], result.output


def test_status_says_none_for_empty_tables(invoke: Any) -> None:
    """No engine, no constraint: each table says so, rather than showing nothing."""
    result = invoke("status", "--timeout", "1")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    for title in ("Engines", "Constraints"):
        start = lines.index(next(line for line in lines if line.startswith(title)))
        assert "│ none " in lines[start + 4], result.output
