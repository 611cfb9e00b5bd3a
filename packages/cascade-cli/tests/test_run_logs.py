"""`cascade run` says what each task logged, what was dropped and what the history lacks, where
the run has logs; its JSON gives every task ``log_lines``, ``log_dropped`` and ``log_lost``;
`cascade logs` says the lines lost after the recorded ones."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from rich.console import Console
from typer.testing import CliRunner, Result

from cascade.cli import app
from cascade.cli.plumbing import CliContext
from cascade.connector_kit.testing import received
from cascade.history import History, Received, decode_message
from cascade.interfaces import decode_envelope
from cascade.interfaces.logs import DroppedLines, LogBatch, LogLine, logs_topic

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


def _logs(run_id: str, seq: int = 1, numbers: range = range(1, 4), dropped: int = 7) -> Received:
    logs = LogBatch(
        run_id=run_id, org_id="acme", project_id="shop", source="host-1", seq=seq, ts=_iso(T0),
        lines=[LogLine(ts=_iso(T0), task_id="a", task_name="a_n", message=f"m{n}", n=n)
               for n in numbers],
        dropped=[DroppedLines(task_id="a", task_name="a_n", lines=dropped, reason="budget")]
        if dropped else [],
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
    assert "logs: 3 lines of 1 task, 7 dropped by their engine" in result.output
    assert "3 +7 dropped" in result.output
    tasks = json.loads(_invoke("run", "aaaa1111", "--db", db, "--json").output)["tasks"]
    counted = {task["task_id"]: (task["log_lines"], task["log_dropped"]) for task in tasks}
    assert counted == {"a": (3, 7), "b": (0, 0)}
    assert "lost" not in result.output


def test_lines_the_history_lacks_are_said_once_in_run_and_logs(tmp_path: Path) -> None:
    """Batches 1 and 3 of a run's logs (2 never reached the history): lines 4-9 of its task
    are said lost, once, by `run` (its logs line, the task's row, its JSON) and `logs`, and
    batch 2 missing (its lines may have been any task's)."""
    path = str(tmp_path / "lost.sqlite3")
    with History(path, mode="write") as history:
        history.store([_task("cccc3333", "a", "RUNNING"), _logs("cccc3333", dropped=0),
                       _logs("cccc3333", 3, range(10, 12), dropped=0)])  # fmt: skip
    shown = _invoke("run", "cccc3333", "--db", path).output
    assert "logs: 5 lines of 1 task, 6 lost on the way or before a recorder listened" in shown
    assert "5 +6 lost" in shown
    assert "; 1 batch of lines missing, of any task" in " ".join(shown.split())
    run_json = json.loads(_invoke("run", "cccc3333", "--db", path, "--json").output)
    assert run_json["summary"]["log_batches"] == {"stored": 2, "last_seq": 3, "missing": 1}
    (task,) = run_json["tasks"]
    assert (task["log_lines"], task["log_dropped"], task["log_lost"]) == (5, 0, 6)
    printed = _invoke("logs", "cccc3333", "--db", path).output.splitlines()
    assert printed[-2:] == [
        "6 lines of a_n lost on the way or before a recorder listened (not in the history)",
        "1 batch of lines missing, of any task (lost on the way or before a recorder listened)",
    ]
    assert sum("lost" in line for line in printed) == 2


def test_a_run_without_logs_says_nothing_of_them(tmp_path: Path) -> None:
    db = _history(tmp_path)
    result = _invoke("run", "bbbb2222", "--db", db)
    assert result.exit_code == 0, result.output
    assert "logs:" not in result.output
    assert "dropped" not in result.output
    (task,) = json.loads(_invoke("run", "bbbb2222", "--db", db, "--json").output)["tasks"]
    assert (task["log_lines"], task["log_dropped"], task["log_lost"]) == (0, 0, 0)
