"""Issue 62's done-when on a real broker (mosquitto): a real engine maps 10,000 items from one
upstream result, a real recorder keeps the run, and `cascade run` in a process of its own shows
the map as one row with its 10,000 items counted by state; --items, --map, --state and --json
show the items themselves."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cascade.connectors.mqtt import MqttConnector
from cascade.history import History, Recorder
from cascade.runtime import Engine, TaskFailedError, task
from cascade.testkit import MosquittoBroker

ITEMS = 10_000
BAD = 7  # the item that fails


def _cascade(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "cascade.cli", *args, "--db", str(db)],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip


def test_a_recorded_map_is_one_row_in_cascade_run(
    mosquitto_broker: MosquittoBroker, tmp_path: Path, scope_name: str
) -> None:
    db = tmp_path / "history.sqlite3"

    @task(name=f"{scope_name}_rows")
    def rows(n: int) -> list[int]:
        return list(range(n))

    @task(name=f"{scope_name}_scale")
    async def scale(row: int) -> int:
        if row == BAD:
            raise ValueError(f"bad row {row}")
        return row * 10

    async def scenario() -> str:
        with History(db, mode="write") as history:
            async with MqttConnector(
                mosquitto_broker.host, mosquitto_broker.port, presence=False
            ) as listening:
                recorder = Recorder(listening, history)
                await recorder.start()
                engine = Engine(MqttConnector(mosquitto_broker.host, mosquitto_broker.port))
                started: list[str] = []
                engine.events.subscribe(lambda event: started.append(event.run_id))
                with pytest.raises(TaskFailedError):  # the item's failure skips the map
                    await engine.run(scale.map(row=rows(ITEMS)))
                run_id = started[0]
                for _ in range(1200):  # the recorder writes in batches: nothing to await
                    await recorder.flush(timeout=5)
                    found = history.run(run_id, limit=1)
                    ended = found is not None and found.run.ended_at is not None
                    if ended and found and sum(found.run.tasks.values()) == ITEMS + 2:
                        break
                    await asyncio.sleep(0.05)
                await recorder.stop()
        return run_id

    run_id = asyncio.run(scenario())
    shown = _cascade(db, "run", run_id[:12])
    assert shown.returncode == 0, shown.stderr
    table = [line for line in shown.stdout.splitlines() if line.startswith("│ ")]
    assert len(table) == 2, shown.stdout  # rows, and the map: no item
    (folded,) = [line for line in table if f"{scope_name}_scale-" in line.split("│")[1]]
    assert f"\N{MULTIPLICATION SIGN}{ITEMS:,}: completed {ITEMS - 1:,} failed 1" in folded
    assert "SKIPPED" in folded
    assert f"{ITEMS:,} items of 1 map folded into its row" in shown.stdout
    failed = _cascade(db, "run", run_id[:12], "--state", "failed")
    assert failed.returncode == 0, failed.stderr
    rows_failed = [line for line in failed.stdout.splitlines() if line.startswith("│ ")]
    assert len(rows_failed) == 1
    assert f"[{BAD}]" in rows_failed[0]
    listed = _cascade(db, "run", run_id[:12], "--items", "--limit", "30")
    assert listed.returncode == 0, listed.stderr
    assert len([line for line in listed.stdout.splitlines() if line.startswith("│ ")]) >= 30
    assert f"… {ITEMS + 2 - 30:,} more tasks" in listed.stdout
    as_json = _cascade(db, "run", run_id[:12], "--json")
    assert as_json.returncode == 0, as_json.stderr
    got = json.loads(as_json.stdout)
    assert len(got["tasks"]) == ITEMS + 2
    [entry] = got["summary"]["maps"]
    assert entry["task_name"] == f"{scope_name}_scale"
    assert (entry["items"], entry["counts"]) == (ITEMS, {"COMPLETED": ITEMS - 1, "FAILED": 1})
    assert {t["task_id"] for t in got["tasks"]} >= {
        f"{entry['task_id']}[{index}]" for index in range(ITEMS)
    }
    map_id = entry["task_id"]
    expanded = _cascade(db, "run", run_id[:12], "--map", map_id, "--limit", "3")
    assert expanded.returncode == 0, expanded.stderr
    assert f"Tasks (items of {map_id}): {ITEMS:,}" in expanded.stdout
