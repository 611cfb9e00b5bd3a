"""`cascade run` of a run with a map: one row for the map with its items counted by state, the
items listed with --items or picked by --state and --task; --json lists every task as before,
with the maps in its summary."""

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
RUN = "cafe0001c1d0a1f3c2b7e9d84a61bbbb"
ITEMS = 10_000
FAILED = (17, 4_242)


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


def _task(task_id: str, state: str, ts: float, **extra: Any) -> Received:
    name = task_id.split("-")[0]
    body = {"type": "TaskStateEvent", "task_id": task_id, "task_name": name, "state": state}
    return _event(ts, {**body, **extra})


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A run whose extract-1 gives 10,000 rows to the map transform-2: two items fail, so the
    map and summarize-3 are skipped."""
    path = str(tmp_path_factory.mktemp("maps") / "history.sqlite3")
    why = "upstream task 'transform' (transform-2[17]) failed"
    batch = [
        _event(T0, {"type": "LifecycleEvent", "event": "ENGINE_STARTED", "tasks": 3}),
        _task("extract-1", "RUNNING", T0),
        _task("extract-1", "COMPLETED", T0 + 1, duration_ms=1000.0),
        _task("transform-2", "RUNNING", T0 + 1, items=ITEMS),
    ]
    for index in range(ITEMS):
        item = f"transform-2[{index}]"
        batch.append(_task(item, "RUNNING", T0 + 1))
        if index in FAILED:
            batch.append(_task(item, "FAILED", T0 + 2, error=f"ValueError: bad row {index}"))
        else:
            batch.append(_task(item, "COMPLETED", T0 + 2, duration_ms=3.0))
    batch += [
        _task("transform-2", "SKIPPED", T0 + 3, error=why),
        _task("summarize-3", "SKIPPED", T0 + 3, error=why),
        _event(T0 + 4, {"type": "LifecycleEvent", "event": "ENGINE_STOPPED", "status": "Failed"}),
    ]
    with History(path, mode="write") as history:
        history.store(batch)
    return path


def _rows(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("│ ")]


def test_a_map_is_one_row_with_its_items_counted(db: str) -> None:
    result = _invoke("run", "cafe", "--db", db)
    assert result.exit_code == 0, result.output
    rows = _rows(result.output)
    assert len(rows) == 3, result.output  # extract, the map, summarize: no item
    (folded,) = [row for row in rows if row.startswith("│ transform-2 ")]
    assert "\N{MULTIPLICATION SIGN}10,000: completed 9,998 failed 2" in folded
    assert "SKIPPED" in folded
    assert not any(row.startswith("│ transform-2[") for row in rows)
    folded_note = "Tasks: 3 (10,000 items of 1 map folded into its row: --items lists them)"
    assert folded_note in result.output
    assert "more task" not in result.output
    assert "tasks: 10,003" in result.output  # the run's counts: every task, items too
    assert "transform-2[17]" in result.output  # the failures name the items that failed


def test_items_are_listed_with_items_or_picked_by_filters(db: str) -> None:
    listed = _invoke("run", "cafe", "--db", db, "--items")
    assert listed.exit_code == 0, listed.output
    assert len(_rows(listed.output)) == 20
    assert "… 9,983 more tasks" in listed.output
    assert "--items lists them" not in listed.output
    failed = _invoke("run", "cafe", "--db", db, "--state", "failed")
    assert failed.exit_code == 0, failed.output
    rows = _rows(failed.output)
    assert len(rows) == 2
    assert all("transform-2[" in row and "FAILED" in row for row in rows)
    named = _invoke("run", "cafe", "--db", db, "--task", "transform", "--limit", "5")
    assert named.exit_code == 0, named.output
    assert "Tasks (named transform): 10,001" in named.output


def test_json_lists_every_task_and_the_maps(db: str) -> None:
    result = _invoke("run", "cafe", "--db", db, "--json")
    assert result.exit_code == 0, result.output
    got = json.loads(result.output)
    assert len(got["tasks"]) == ITEMS + 3
    summary = got["summary"]
    assert (summary["matched"], summary["more"], summary["total"]) == (ITEMS + 3, 0, ITEMS + 3)
    assert summary["maps"] == [
        {
            "task_id": "transform-2",
            "task_name": "transform",
            "items": ITEMS,
            "counts": {"COMPLETED": ITEMS - 2, "FAILED": 2},
        }
    ]


def test_a_narrow_terminal_keeps_the_items(db: str) -> None:
    result = _invoke("run", "cafe", "--db", db, width=80)
    assert result.exit_code == 0, result.output
    assert "\N{MULTIPLICATION SIGN}10,000:" in result.output
    assert "items" not in result.output.split("not shown at", 1)[-1].split("\n")[0]


def test_map_lists_one_maps_items(db: str) -> None:
    """--map TASK_ID: the map's row expanded, its items only (--state picks among them)."""
    result = _invoke("run", "cafe", "--db", db, "--map", "transform-2", "--limit", "5")
    assert result.exit_code == 0, result.output
    rows = _rows(result.output)
    assert len(rows) == 5
    assert all(row.startswith("│ transform-2[") for row in rows)
    assert "Tasks (items of transform-2): 10,000" in result.output
    assert "… 9,995 more tasks picked" in result.output
    failed = _invoke("run", "cafe", "--db", db, "--map", "transform-2", "--state", "failed")
    assert failed.exit_code == 0, failed.output
    assert "Tasks (failed; items of transform-2): 2" in failed.output
    none = _invoke("run", "cafe", "--db", db, "--map", "extract-1", "--json")
    assert none.exit_code == 0, none.output
    assert json.loads(none.output)["tasks"] == []
