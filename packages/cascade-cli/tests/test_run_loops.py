"""`cascade run` of a run with a loop: one row for the loop with its iterations counted by
state and its latest, the iterations listed with --items or --map, --json with the loops in its
summary; a task whose name has an '@' is no iteration."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner, Result

from cascade.cli import app
from cascade.cli.plumbing import CliContext
from cascade.history import History, Received
from cascade.interfaces import decode_envelope

T0 = 1_795_000_000.0  # 2026-11-18
RUN = "cafe0002c1d0a1f3c2b7e9d84a61bbbb"
ITERATIONS = 1_000  # counter-2@2 .. counter-2@1001, the last failing


def _invoke(*args: str, width: int = 200) -> Result:
    return CliRunner().invoke(app, list(args), obj=CliContext(console=Console(width=width)))


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


def _task(task_id: str, state: str, ts: float, name: str = "counter", **extra: Any) -> Received:
    body = {"type": "TaskStateEvent", "task_id": task_id, "task_name": name, "state": state}
    return _event(ts, {**body, **extra})


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A run whose loop counter-2 ran 1,000 iterations, the last failing, beside mail@home-3
    (a task whose name has an '@')."""
    path = str(tmp_path_factory.mktemp("loops") / "history.sqlite3")
    batch = [
        _event(T0, {"type": "LifecycleEvent", "event": "ENGINE_STARTED", "tasks": 2}),
        _task("counter-2", "RUNNING", T0),
        _task("mail@home-3", "COMPLETED", T0, name="mail@home"),
    ]
    last = ITERATIONS + 1
    for number in range(2, last + 1):
        at = T0 + number / (ITERATIONS + 2)
        batch.append(_task(f"counter-2@{number}", "RUNNING", at))
        if number < last:
            batch.append(_task(f"counter-2@{number}", "COMPLETED", at, duration_ms=1.0))
    batch += [
        _task(f"counter-2@{last}", "FAILED", T0 + 2, error="ValueError: too far"),
        _task("counter-2", "FAILED", T0 + 2, error="ValueError: too far"),
        _event(T0 + 3, {"type": "LifecycleEvent", "event": "ENGINE_STOPPED", "status": "Failed"}),
    ]
    with History(path, mode="write") as history:
        history.store(batch)
    return path


def _rows(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("│ ")]


def test_a_loop_is_one_row_with_its_iterations_counted(db: str) -> None:
    result = _invoke("run", "cafe0002", "--db", db)
    assert result.exit_code == 0, result.output
    rows = _rows(result.output)
    assert len(rows) == 2, result.output  # the loop and mail@home-3: no iteration
    (folded,) = [row for row in rows if row.startswith("│ counter-2 ")]
    said = "\N{MULTIPLICATION SIGN}1,000 iterations: completed 999 failed 1; latest @1001 failed"
    assert said in folded
    assert "1,000 iterations of 1 loop folded into its row: --items lists them" in result.output
    assert "more task" not in result.output


def test_iterations_are_listed_with_items_or_map(db: str) -> None:
    listed = _invoke("run", "cafe0002", "--db", db, "--items")
    assert listed.exit_code == 0, listed.output
    assert len(_rows(listed.output)) == 20
    opened = _invoke("run", "cafe0002", "--db", db, "--map", "counter-2", "--limit", "5")
    assert opened.exit_code == 0, opened.output
    rows = _rows(opened.output)
    assert len(rows) == 5
    assert all(row.startswith("│ counter-2@") for row in rows)
    assert "Tasks (iterations of counter-2): 1,000" in opened.output
    failed = _invoke("run", "cafe0002", "--db", db, "--map", "counter-2", "--state", "failed")
    assert failed.exit_code == 0, failed.output
    assert "Tasks (failed; iterations of counter-2): 1" in failed.output
    assert "counter-2@1001" in failed.output


def test_json_lists_every_task_and_the_loops(db: str) -> None:
    result = _invoke("run", "cafe0002", "--db", db, "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert len(document["tasks"]) == ITERATIONS + 2
    assert document["summary"]["loops"] == [
        {
            "task_id": "counter-2",
            "task_name": "counter",
            "iterations": ITERATIONS,
            "counts": {"COMPLETED": ITERATIONS - 1, "FAILED": 1},
            "latest": "counter-2@1001",
            "latest_state": "FAILED",
        }
    ]
    assert document["summary"]["maps"] == []
