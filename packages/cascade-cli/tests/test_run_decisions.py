"""`cascade run` shows a run's holds and decisions: each attempt of a task that was held (how
it ended, its error, the decision on its hold, who and why), the tasks held now, and every
answer of its engine to a decision (applied or refused); `--json` has them all; `cascade
audit` lists the decisions."""

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
from cascade.interfaces.commands import decode_decision_reply

T0 = 1_795_000_000.0
RUN = "feed0048c1d0a1f3c2b7e9d84a61cccc"


def _invoke(*args: str) -> Result:
    return CliRunner().invoke(app, list(args), obj=CliContext(console=Console(width=200)))


def _event(ts: float, body: dict[str, Any], seq: int) -> Received:
    raw = {"ts": datetime.fromtimestamp(ts, timezone.utc).isoformat(), "run_id": RUN,
           "org_id": "acme", "project_id": "shop", "source": "host-1", "body": body,
           "seq": seq}  # fmt: skip
    return Received(f"cascade/telemetry/acme/shop/{RUN}/events", decode_envelope(raw), ts)


def _task(task_id: str, state: str, ts: float, seq: int, **extra: Any) -> Received:
    body = {"type": "TaskStateEvent", "task_id": task_id, "task_name": task_id.split("-")[0]}
    return _event(ts, {**body, "state": state, **extra}, seq)


def _hold(attempt: int) -> list[dict[str, Any]]:
    return [{"type": "decision", "attempt": attempt, "deadline": T0 + 86_400, "default": "fail"}]


def _reply(request_id: str, at: float, **said: Any) -> Received:
    reply = decode_decision_reply({"id": request_id, "run_id": RUN, "source": "host-1",
                                   "task_id": "load-1", "task_name": "load", "attempt": 1,
                                   **said})  # fmt: skip
    return Received(f"cascade/reply/acme/{request_id}/host-1", reply, at)


ALICE = {"decision": "retry", "attempt": 1, "by": "alice", "reason": "API back", "at": T0 + 30,
         "id": "req-1"}  # fmt: skip


@pytest.fixture
def db(tmp_path: Path) -> str:
    """``load`` failed, was held, retried by alice (bob's skip came second, refused), and
    completed; ``side`` is held now."""
    path = str(tmp_path / "history.sqlite3")
    batch = [
        _event(T0, {"type": "LifecycleEvent", "event": "ENGINE_STARTED"}, 1),
        _task("load-1", "RUNNING", T0 + 1, 2),
        _task("load-1", "BLOCKED", T0 + 3, 3, error="ConnectionError: down",
              traceback="Traceback:\n  ConnectionError: down\n", held_by=_hold(1)),
        _task("side-1", "RUNNING", T0 + 4, 4),
        _task("side-1", "BLOCKED", T0 + 5, 5, error="ValueError: side", held_by=_hold(1)),
        _task("load-1", "RUNNING", T0 + 30, 6, decided=ALICE),
        _task("load-1", "COMPLETED", T0 + 32, 7, duration_ms=31_000),
        _reply("req-1", T0 + 30, decision="retry", outcome="applied", decided=ALICE,
               issued_by="alice", reason="API back"),
        _reply("req-2", T0 + 31, decision="skip", outcome="already_decided", decided=ALICE,
               issued_by="bob", reason="skip it today"),
    ]  # fmt: skip
    with History(path, mode="write") as history:
        stored = history.store(batch)
    assert stored.rejected == 0
    return path


def test_run_shows_the_holds_the_attempts_and_the_decisions(db: str) -> None:
    result = _invoke("run", RUN[:12], "--db", db)
    assert result.exit_code == 0, result.output
    out = result.output
    lines = out.splitlines()
    held = lines.index(
        "Held: 1, waiting for a decision (cascade retry|skip|complete|fail RUN TASK)"
    )
    assert lines[held + 1].split()[:2] == ["side", "side-1"]
    assert "fail at" in lines[held + 1]
    assert lines[held + 2].strip() == "attempts: 1 held after 1.0s: ValueError: side"
    decisions = lines.index("Decisions: 2")
    first, second = lines[decisions + 1], lines[decisions + 2]
    assert "retry load attempt 1" in first
    assert "by alice" in first
    assert "API back" in first
    assert "applied" in first
    assert "skip load attempt 1" in second
    assert "by bob" in second
    assert "refused: already_decided (retry by alice" in second


def test_run_json_has_each_attempt_and_the_decisions(db: str) -> None:
    result = _invoke("run", RUN, "--db", db, "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    load = next(task for task in out["tasks"] if task["task_id"] == "load-1")
    first, second = load["attempt_list"]
    assert (first["state"], first["error"], first["duration"]) == (
        "HELD", "ConnectionError: down", 2.0,
    )  # fmt: skip
    assert first["traceback"] == "Traceback:\n  ConnectionError: down\n"
    assert first["decided"] == ALICE
    assert (second["state"], second["decided"]) == ("COMPLETED", None)
    summary = out["summary"]
    assert [task["task_id"] for task in summary["held"]] == ["side-1"]
    assert [(d["decision"], d["issued_by"], d["outcome"]) for d in summary["decisions"]] == [
        ("retry", "alice", "applied"),
        ("skip", "bob", "already_decided"),
    ]
    assert summary["counts"] == {"COMPLETED": 1, "HELD": 1}


def test_run_state_held_picks_the_held_tasks(db: str) -> None:
    result = _invoke("run", RUN, "--db", db, "--json", "--state", "held")
    assert result.exit_code == 0, result.output
    assert [task["task_id"] for task in json.loads(result.output)["tasks"]] == ["side-1"]


def _rows(output: str) -> list[list[str]]:
    """The table's rows, each a list of its cells' text (a cell's lines joined by a space)."""
    rows: list[list[str]] = []
    for line in output.splitlines():
        cells = line.rstrip().removesuffix("\u2502").split("\u2502")[1:]  # a cut right edge too
        cells = [cell.strip() for cell in cells]
        if not cells:
            continue
        if cells[0] or not rows:  # a row's first line has its time
            rows.append(cells)
        else:
            rows[-1] = [f"{a} {b}".strip() for a, b in zip(rows[-1], cells, strict=False)]
    return rows


def test_audit_lists_the_decisions(db: str) -> None:
    result = _invoke("audit", "--db", db, "--since", "3650d")
    assert result.exit_code == 0, result.output
    rows = _rows(result.output)
    assert len(rows) == 2
    assert rows[0][1:4] == ["refused", "run:feed0048c1d0", "skip"]
    said = "load (load-1) attempt 1 on host-1: refused: already decided: retry by alice"
    assert rows[0][4] == said
    assert rows[0][6] == "bob (claimed)"
    assert rows[1][1:4] == ["decided", "run:feed0048c1d0", "retry"]
    assert rows[1][4] == "load (load-1) attempt 1 on host-1: applied"
    events = json.loads(_invoke("audit", "--db", db, "--since", "3650d", "--json").output)
    assert [(e["action"], e["type"], e["issued_by"]) for e in events] == [
        ("decided", "skip", "bob"),
        ("decided", "retry", "alice"),
    ]


def test_run_shows_a_gate_held_now_awaiting_approval_with_its_prompt(tmp_path: Path) -> None:
    path = str(tmp_path / "history.sqlite3")
    gate = {"type": "decision", "attempt": 1, "deadline": T0 + 3600, "default": "fail",
            "kind": "approval", "prompt": "Deploy v1.2 to production?"}  # fmt: skip
    batch = [
        _event(T0, {"type": "LifecycleEvent", "event": "ENGINE_STARTED"}, 1),
        _task("approve-1", "BLOCKED", T0 + 1, 2, held_by=[gate]),
    ]
    with History(path, mode="write") as history:
        assert history.store(batch).rejected == 0
    result = _invoke("run", RUN[:12], "--db", path)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    held = next(i for i, line in enumerate(lines) if line.startswith("Held: 1"))
    assert lines[held + 1].split()[:2] == ["approve", "approve-1"]
    assert "fail at " in lines[held + 1]
    assert (
        lines[held + 1]
        .rstrip()
        .endswith('unless decided  awaiting approval: "Deploy v1.2 to production?"')
    )


def test_the_lists_of_runs_say_the_decisions_that_made_a_run(db: str) -> None:
    """`cascade runs` says alice's retry under the run's status, `--json` and the CSV export
    have it as ``decisions``, and `cascade run` says it beside the status (bob's, refused,
    is none of them)."""
    table = _invoke("runs", "--db", db)
    assert table.exit_code == 0, table.output
    assert "1 retried by alice" in table.stdout
    assert "bob" not in table.stdout
    (listed,) = json.loads(_invoke("runs", "--db", db, "--json").stdout)
    assert listed["decisions"] == [{"decision": "retry", "by": "alice", "count": 1}]
    exported = _invoke("runs", "--db", db, "--format", "csv").stdout.splitlines()
    assert exported[0].endswith(",decisions,line")
    assert '""by"": ""alice""' in exported[1]
    head = _invoke("run", RUN, "--db", db).stdout.splitlines()[0]
    assert head.startswith(f"run {RUN}  Running · 1 retried by alice  started ")


def test_audit_shows_a_decision_the_engine_refused_as_refused_with_why(tmp_path: Path) -> None:
    """A decision on a task that was not held is a ``refused`` row saying why in words, on a
    terminal of 80 columns too (it read ``decided retry OPERATOR (claimed)``, its refusal in
    the params cut first); ``--json`` keeps its ``action`` and ``decided.outcome``."""
    path = str(tmp_path / "history.sqlite3")
    batch = [
        _event(T0, {"type": "LifecycleEvent", "event": "ENGINE_STARTED"}, 1),
        _task("load-1", "RUNNING", T0 + 1, 2),
        _reply("req-9", T0 + 2, decision="retry", outcome="not_held", issued_by="OPERATOR"),
    ]
    with History(path, mode="write") as history:
        assert history.store(batch).rejected == 0
    result = CliRunner().invoke(
        app, ["audit", "--db", path, "--since", "3650d"],
        obj=CliContext(console=Console(width=80)),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    ((_, action, _, decision, params, *_),) = _rows(result.output)
    assert (action, decision) == ("refused", "retry"), result.output
    assert params == "load (load-1) attempt 1 on host-1: refused: the task is not held"
    events = json.loads(_invoke("audit", "--db", path, "--since", "3650d", "--json").output)
    assert [(e["action"], e["type"], e["decided"]["outcome"]) for e in events] == [
        ("decided", "retry", "not_held")
    ]
