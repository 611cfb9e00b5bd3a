"""`cascade run` says what each task logged and what was dropped, where the run has logs; its
JSON gives every task ``log_lines`` and ``log_dropped``."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from rich.console import Console
from typer.testing import CliRunner, Result

from cascade.cli import app
from cascade.cli.plumbing import CliContext
from cascade.history import History, Received, decode_message
from cascade.interfaces import DroppedLines, LogBatch, LogLine, decode_envelope, logs_topic
from cascade.interfaces.testing import received

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc).timestamp()


def _invoke(*args: str) -> Result:
    return CliRunner().invoke(app, list(args), obj=CliContext(console=Console(width=200)))


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat()


def _task(run_id: str, task_id: str, state: str) -> Received:
    envelope = decode_envelope({
        "ts": _iso(T0), "run_id": run_id, "org_id": "acme", "project_id": "shop",
        "source": "host-1",
        "body": {"type": "TaskStateEvent", "task_id": task_id, "task_name": f"{task_id}_n",
                 "state": state},
    })  # fmt: skip
    return Received(f"cascade/telemetry/acme/shop/{run_id}/events", envelope, T0)


def _logs(run_id: str) -> Received:
    logs = LogBatch(
        run_id=run_id, org_id="acme", project_id="shop", source="host-1", seq=1, ts=_iso(T0),
        lines=[LogLine(ts=_iso(T0), task_id="a", task_name="a_n", message=f"m{n}", n=n)
               for n in range(1, 4)],
        dropped=[DroppedLines(task_id="a", task_name="a_n", lines=7, reason="budget")],
    )  # fmt: skip
    item = decode_message(received(logs_topic("acme", "shop", run_id), logs), received_at=T0)
    assert item is not None
    return item


def _history(tmp_path: Path) -> str:
    path = str(tmp_path / "h.sqlite3")
    with History(path, mode="write") as history:
        history.store([_task("aaaa1111", "a", "RUNNING"), _task("aaaa1111", "b", "RUNNING"),
                       _logs("aaaa1111"), _task("bbbb2222", "a", "RUNNING")])  # fmt: skip
    return path


def test_run_counts_each_tasks_lines_and_drops(tmp_path: Path) -> None:
    db = _history(tmp_path)
    result = _invoke("run", "aaaa1111", "--db", db)
    assert result.exit_code == 0, result.output
    assert "logs: 3 lines of 1 tasks, 7 dropped by their engine" in result.output
    assert "3 +7 dropped" in result.output
    tasks = json.loads(_invoke("run", "aaaa1111", "--db", db, "--json").output)["tasks"]
    counted = {task["task_id"]: (task["log_lines"], task["log_dropped"]) for task in tasks}
    assert counted == {"a": (3, 7), "b": (0, 0)}


def test_a_run_without_logs_says_nothing_of_them(tmp_path: Path) -> None:
    db = _history(tmp_path)
    result = _invoke("run", "bbbb2222", "--db", db)
    assert result.exit_code == 0, result.output
    assert "logs:" not in result.output
    assert "dropped" not in result.output
    (task,) = json.loads(_invoke("run", "bbbb2222", "--db", db, "--json").output)["tasks"]
    assert (task["log_lines"], task["log_dropped"]) == (0, 0)
