"""`cascade run` of a big run: its summary first (counts by state, slowest tasks, failures
with their errors), then a screenful of its tasks (--state, --task, --limit choose them) and
how many more there are; its JSON as before, with the summary added."""

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

T0 = 1_795_000_000.0  # 2026-11-18
RUN = "feed0001c1d0a1f3c2b7e9d84a61aaaa"
TASKS = 30
FAILED = (4, 11, 17)  # failing in the reverse order: 17 first
RUNNING = (28, 29)


def _invoke(*args: str) -> Result:
    return CliRunner().invoke(app, list(args), obj=CliContext(console=Console(width=200)))


def _event(run_id: str, ts: float, body: dict[str, Any]) -> Received:
    raw = {
        "ts": datetime.fromtimestamp(ts, timezone.utc).isoformat(),
        "run_id": run_id,
        "org_id": "acme",
        "project_id": "shop",
        "source": "host-1",
        "body": body,
    }
    return Received(f"cascade/telemetry/acme/shop/{run_id}/events", decode_envelope(raw), ts)


def _task(index: int, state: str, ts: float, **extra: Any) -> Received:
    name = "load_table" if index % 2 else "extract"
    body = {"type": "TaskStateEvent", "task_id": f"t{index:02d}", "task_name": name}
    return _event(RUN, ts, {**body, "state": state, **extra})


@pytest.fixture
def db(tmp_path: Path) -> str:
    """A run of 30 tasks: t{i} takes i seconds; three fail, two still run, the rest complete."""
    path = str(tmp_path / "history.sqlite3")
    batch = [_event(RUN, T0, {"type": "LifecycleEvent", "event": "ENGINE_STARTED"})]
    for index in range(TASKS):
        batch.append(_task(index, "RUNNING", T0 + index))
        if index in RUNNING:
            continue
        if index in FAILED:
            end = T0 + 100 - index
            error = f"ValueError: bad partition {index}"
            batch.append(_task(index, "FAILED", end, duration_ms=index * 1000.0, error=error))
        else:
            batch.append(_task(index, "COMPLETED", T0 + 50, duration_ms=index * 1000.0))
    with History(path, mode="write") as history:
        history.store(batch)
    return path


def _rows(output: str) -> list[str]:
    """The tasks' table's rows: their task ids are not in it, their names and states are."""
    return [line for line in output.splitlines() if line.startswith(("│ extract", "│ load_"))]


def test_run_starts_with_a_summary_then_a_screenful(db: str) -> None:
    """Counts, the five slowest finished tasks longest first, the failures in the order they
    failed with their errors, then 20 tasks and what to do for the others."""
    result = _invoke("run", "feed", "--db", db)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[2] == "tasks: 30: running 2 completed 25 failed 3"
    slowest = lines.index("Slowest")
    assert [line.split()[:3] for line in lines[slowest + 1 : slowest + 6]] == [
        ["27.0s", "load_table", "t27"],
        ["26.0s", "extract", "t26"],
        ["25.0s", "load_table", "t25"],
        ["24.0s", "extract", "t24"],
        ["23.0s", "load_table", "t23"],
    ]
    failures = lines.index("Failures: 3, in the order they failed")
    assert [line.split() for line in lines[failures + 1 : failures + 4]] == [
        ["load_table", "t17", "ValueError:", "bad", "partition", "17"],
        ["load_table", "t11", "ValueError:", "bad", "partition", "11"],
        ["extract", "t04", "ValueError:", "bad", "partition", "4"],
    ]
    assert lines[failures + 4] == "Tasks: 30"
    assert len(_rows(result.output)) == 20
    assert lines[-2] == "… 10 more tasks: --limit 0 for all, or --state/--task to filter"
    assert lines[-1] == f"history: {db}"  # which one it read


@pytest.mark.parametrize(
    ("args", "states", "more"),
    [
        (["--state", "FAILED,running"], ["FAILED"] * 3 + ["RUNNING"] * 2, None),
        (["--state", "failed", "--state", "Running"], ["FAILED"] * 3 + ["RUNNING"] * 2, None),
        (["--state", "failed", "--limit", "1"], ["FAILED"], "… 2 more tasks picked"),
        (["--task", "load_*", "--state", "failed"], ["FAILED"] * 2, None),
        (["--task", "load_t?ble", "--limit", "3"], ["COMPLETED"] * 3, "… 12 more tasks picked"),
        (["--limit", "0"], None, None),
        (["--limit", "3"], ["COMPLETED"] * 3, "… 27 more tasks: --limit 0 for all, or"),
    ],
)
def test_state_task_and_limit_choose_the_tasks(
    db: str, args: list[str], states: list[str] | None, more: str | None
) -> None:
    """--state (any case, repeated or a comma list), --task (a glob), --limit (0: all); the
    last line says how many more the filters pick."""
    result = _invoke("run", RUN, "--db", db, *args)
    assert result.exit_code == 0, result.output
    rows = _rows(result.output)
    if states is None:
        assert len(rows) == TASKS
    else:
        assert [row.split("│")[2].strip() for row in rows] == states
    last = result.output.splitlines()[-2]  # before the history's line
    if more is None:
        assert last.startswith("└")
    else:
        assert last.startswith(more)


def test_an_unknown_state_is_a_usage_error(db: str) -> None:
    result = _invoke("run", "feed", "--db", db, "--state", "failed,done")
    assert result.exit_code == 2
    assert "unknown task state 'done': use one of running, completed, failed" in result.output


def test_json_keeps_its_keys_and_adds_the_summary(db: str) -> None:
    """Every task without --limit, as before, each with its log counts; --state and --limit
    choose them; the summary is one more key."""
    whole = json.loads(_invoke("run", "feed", "--db", db, "--json").output)
    with History(db) as history:
        detail = history.run(RUN)
    assert detail is not None
    summary = whole.pop("summary")
    expected = detail.to_json()
    no_logs = {"log_lines": 0, "log_dropped": 0, "log_lost": 0}
    expected["tasks"] = [{**task, **no_logs} for task in expected["tasks"]]
    assert whole == expected
    assert {key: summary[key] for key in ("counts", "total", "matched", "more")} == {
        "counts": {"COMPLETED": 25, "FAILED": 3, "RUNNING": 2},
        "total": 30,
        "matched": 30,
        "more": 0,
    }
    assert [task["task_id"] for task in summary["slowest"]] == ["t27", "t26", "t25", "t24", "t23"]
    assert [task["error"] for task in summary["failures"]] == [
        f"ValueError: bad partition {index}" for index in (17, 11, 4)
    ]
    some = json.loads(
        _invoke("run", "feed", "--db", db, "--json", "--state", "failed", "--limit", "2").output
    )
    assert [task["task_id"] for task in some["tasks"]] == ["t04", "t11"]
    assert (some["summary"]["matched"], some["summary"]["more"]) == (3, 1)


def test_empty_sections_say_none(tmp_path: Path) -> None:
    """A run whose tasks all still run has no slowest task and no failure; a filter that picks
    none lists none; a run without a task has none to count."""
    path = str(tmp_path / "history.sqlite3")
    with History(path, mode="write") as history:
        history.store([_task(1, "RUNNING", T0), _event("beef0002", T0, {"type": "Heartbeat"})])
    lines = _invoke("run", RUN, "--db", path, "--state", "skipped").output.splitlines()
    assert lines[2:-1] == [
        "tasks: 1: running 1",
        "Slowest: none",
        "Failures: none",
        "Tasks (skipped): none",
    ]
    empty = _invoke("run", "beef0002", "--db", path).output.splitlines()
    assert empty[2:-1] == ["tasks: none", "Slowest: none", "Failures: none", "Tasks: none"]
