"""`cascade runs`, `run` and `audit` on runs a start request started and a rerun of one: the
NAME column and `--name`, the run's name, workflow, params, who started it, what it reruns and
what replaced it, its reused tasks with their run, the audit's start rows, and their JSON."""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner, Result

from cascade.cli import app
from cascade.cli.plumbing import CliContext
from cascade.history import History, Received
from cascade.interfaces import decode_envelope, decode_status

T0 = 1_795_000_000.0
FIRST = "a1" * 16
SECOND = "b2" * 16


def _invoke(*args: str, width: int = 250) -> Result:
    return CliRunner().invoke(app, list(args), obj=CliContext(console=Console(width=width)))


def _event(run_id: str, ts: float, body: dict[str, Any]) -> Received:
    raw = {"ts": datetime.fromtimestamp(ts, timezone.utc).isoformat(), "run_id": run_id,
           "org_id": "acme", "project_id": "shop", "source": "host-1", "body": body}  # fmt: skip
    return Received(f"cascade/telemetry/acme/shop/{run_id}/events", decode_envelope(raw), ts)


def _task(run_id: str, name: str, state: str, ts: float, **extra: Any) -> list[Received]:
    body = {"type": "TaskStateEvent", "task_id": f"{name}-1", "task_name": name}
    states = ["RUNNING", state] if not {"reused_from", "cached"} & set(extra) else [state]
    return [_event(run_id, ts, {**body, "state": s, **extra}) for s in states]


def _run(run_id: str, at: float, origin: dict[str, Any], *, failed: bool) -> list[Received]:
    start = {"type": "LifecycleEvent", "event": "ENGINE_STARTED", "tasks": 2, "name": "nightly",
             "origin": origin}  # fmt: skip
    reused = {"reused_from": origin["rerun_of"]} if "rerun_of" in origin else {}
    end = {"type": "LifecycleEvent", "event": "ENGINE_STOPPED",
           "status": "Failed" if failed else "Succeeded"}  # fmt: skip
    return [
        _event(run_id, at, start),
        *_task(run_id, "extract", "COMPLETED", at + 1, **reused),
        *_task(
            run_id,
            "transform",
            "FAILED" if failed else "COMPLETED",
            at + 2,
            **({"error": "KeyError: 'day'"} if failed else {}),
        ),
        _event(run_id, at + 3, end),
    ]


@pytest.fixture
def db(tmp_path: Path) -> str:
    """A served run that failed, its rerun that succeeded (reusing extract), a plain run."""
    path = str(tmp_path / "history.sqlite3")
    origin = {"workflow": "nightly", "params": {"day": "2026-11-18", "n": 5}, "issued_by": "alice",
              "request_id": "req-1", "reason": "the nightly load"}  # fmt: skip
    again = {**origin, "request_id": "req-2", "issued_by": "bob", "reason": "\x1b[31mfixed",
             "rerun_of": FIRST, "root_run": FIRST}  # fmt: skip
    plain = {"type": "LifecycleEvent", "event": "ENGINE_STARTED", "name": "adhoc"}
    with History(path, mode="write") as history:
        history.store(_run(FIRST, T0, origin, failed=True))
        history.store(_run(SECOND, T0 + 60, again, failed=False))
        history.store([_event("c3" * 16, T0 + 120, plain)])
    return path


def test_runs_show_names_and_filter_by_one(db: str) -> None:
    result = _invoke("runs", "--db", db)
    assert result.exit_code == 0, result.output
    assert "┃ name " in result.output
    # the failed run and its rerun are one row, the rerun's: its outcome first, the line beside
    rows = [line for line in result.output.splitlines() if "b2b2b2b2b2b2" in line]
    assert len(rows) == 2, result.output  # the row's id, and the line of work's second run
    assert "nightly" in rows[0]
    assert "Succeeded" in rows[0]
    assert f"first {FIRST[:12]} Failed" in rows[0]
    assert f"rerun {SECOND[:12]} Succeeded, 1 reused" in rows[1]
    assert not any(line.startswith(f"│ {FIRST[:12]}") for line in result.output.splitlines())
    assert "a run and its reruns are one row" in result.output
    assert "adhoc" in result.output
    named = _invoke("runs", "--db", db, "--name", "nightly", "--json")
    assert named.exit_code == 0, named.output
    found = json.loads(named.output)
    assert [run["run_id"] for run in found] == [SECOND, FIRST]
    assert found[0]["rerun_of"] == {"run_id": FIRST, "status": "Failed", "name": "nightly",
                                    "reused": None}  # fmt: skip
    assert found[1]["replaced_by"] == [{"run_id": SECOND, "status": "Succeeded",
                                        "name": "nightly", "reused": None}]  # fmt: skip
    line = [(link["run_id"], link["status"], link["reused"]) for link in found[0]["line"]]
    assert line == [(FIRST, "Failed", 0), (SECOND, "Succeeded", 1)]
    assert found[1]["line"] == found[0]["line"]
    nothing = _invoke("runs", "--db", db, "--name", "nobody")
    assert nothing.exit_code == 0
    assert "no runs recorded that match" in nothing.output


def test_run_shows_its_name_origin_lineage_and_reuse(db: str) -> None:
    old = _invoke("run", FIRST[:12], "--db", db)
    assert old.exit_code == 0, old.output
    assert "name nightly  workflow nightly  params" in old.output
    assert '"day": "2026-11-18"' in old.output
    assert "started by alice (request req-1): the nightly load" in old.output
    assert f"replaced by {SECOND[:12]} (Succeeded)" in old.output
    new = _invoke("run", SECOND[:12], "--db", db)
    assert new.exit_code == 0, new.output
    assert f"rerun of {FIRST[:12]} (Failed)" in new.output
    assert f"reused: 1 task's result from run {FIRST[:12]}" in new.output
    [extract] = [line for line in new.output.splitlines() if line.startswith("│ extract")]
    assert f"COMPLETED reused from {FIRST[:12]}" in extract
    assert "\x1b[31m" not in new.output  # the reason is shown inert
    assert "\\x1b[31mfixed" in new.output


def test_run_json_has_the_origin_lineage_and_reused_tasks(db: str) -> None:
    result = _invoke("run", SECOND, "--db", db, "--json")
    assert result.exit_code == 0, result.output
    said = json.loads(result.output)
    assert said["name"] == "nightly"
    assert said["origin"]["params"] == {"day": "2026-11-18", "n": 5}
    assert said["origin"]["rerun_of"] == FIRST
    assert said["rerun_of"]["status"] == "Failed"
    assert said["replaced_by"] == []
    tasks = {task["task_name"]: task for task in said["tasks"]}
    assert tasks["extract"]["reused_from"] == FIRST
    assert "reused_from" not in tasks["transform"]
    assert said["summary"]["reused"] == {FIRST: 1}


def test_audit_lists_who_started_each_run(db: str) -> None:
    result = _invoke("audit", "--db", db, "--since", "3650d")
    assert result.exit_code == 0, result.output
    starts = [line for line in result.output.splitlines() if " start " in line]
    assert len(starts) == 2, result.output
    assert "alice (claimed)" in starts[1]
    assert f"run:{FIRST[:12]}" in starts[1]
    assert f"rerun of {FIRST[:12]}" in starts[0]
    assert "bob (claimed)" in starts[0]
    said = json.loads(_invoke("audit", "--db", db, "--since", "3650d", "--json").output)
    assert [(e["action"], e["request_id"]) for e in said] == [("start", "req-2"),
                                                              ("start", "req-1")]  # fmt: skip
    assert said[0]["started"]["rerun_of"] == FIRST


def test_run_says_what_a_tasks_cache_gave(tmp_path: Path) -> None:
    """`COMPLETED cached from RUN` (from the results store), `COMPLETED cached` (a policy)."""
    path = str(tmp_path / "history.sqlite3")
    start = {"type": "LifecycleEvent", "event": "ENGINE_STARTED", "tasks": 2, "name": "nightly"}
    with History(path, mode="write") as history:
        history.store(
            [
                _event(SECOND, T0, start),
                *_task(SECOND, "extract", "COMPLETED", T0 + 1, reused_from=FIRST, cached=True),
                *_task(SECOND, "render", "COMPLETED", T0 + 1, cached=True),
            ]
        )
    shown = _invoke("run", SECOND[:12], "--db", path)
    assert shown.exit_code == 0, shown.output
    [extract] = [line for line in shown.output.splitlines() if line.startswith("│ extract")]
    assert f"COMPLETED cached from {FIRST[:12]}" in extract
    [render] = [line for line in shown.output.splitlines() if line.startswith("│ render")]
    assert "COMPLETED cached " in render
    said = json.loads(_invoke("run", SECOND[:12], "--db", path, "--json").output)
    tasks = {task["task_name"]: task for task in said["tasks"]}
    assert (tasks["extract"]["cached"], tasks["extract"]["reused_from"]) == (True, FIRST)
    assert tasks["render"]["cached"] is True


def test_a_scheduled_run_says_its_schedule_and_slot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`cascade runs` adds a scheduled column (the schedule, its slot in local time) when a
    run names one, `--schedule` finds its runs, `--json` has both in the origin, and
    `cascade run` says `scheduled: nightly, slot ...`."""
    monkeypatch.setenv("TZ", "Europe/Berlin")
    time.tzset()
    path = str(tmp_path / "history.sqlite3")
    origin = {"workflow": "nightly", "request_id": "sched-nightly-20251127T010000Z",
              "schedule": "nightly", "scheduled_for": "2025-11-27T01:00:00+00:00"}  # fmt: skip
    plain = {"type": "LifecycleEvent", "event": "ENGINE_STARTED", "name": "adhoc"}
    with History(path, mode="write") as history:
        history.store(_run(FIRST, T0, origin, failed=False))
        history.store([_event("c3" * 16, T0 + 120, plain)])
    try:
        table = _invoke("runs", "--db", path)
        assert table.exit_code == 0, table.output
        assert "┃ scheduled " in table.output
        [line] = [line for line in table.output.splitlines() if "a1a1a1a1a1a1" in line]
        assert "nightly 2025-11-27 02:00" in line  # another year's slot, in Berlin's time
        found = json.loads(_invoke("runs", "--db", path, "--schedule", "nightly", "--json").output)
        assert [
            (r["run_id"], r["origin"]["schedule"], r["origin"]["scheduled_for"]) for r in found
        ] == [(FIRST, "nightly", "2025-11-27T01:00:00+00:00")]
        shown = _invoke("run", FIRST[:12], "--db", path)
        assert shown.exit_code == 0, shown.output
        assert "scheduled: nightly, slot 2025-11-27 02:00:00" in shown.output
        other = _invoke("run", "c3c3c3c3c3c3", "--db", path)
        assert "scheduled:" not in other.output
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_runs_trigger_lists_the_runs_that_trigger_started(tmp_path: Path) -> None:
    """`--trigger NAME` finds the runs that trigger started, by its name exactly (another
    trigger's run and a run no trigger started are left out), their origin in `--json`; none
    found says "that match"."""
    path = str(tmp_path / "history.sqlite3")
    after = {"workflow": "nightly", "trigger": "report_after_etl", "followed_run": SECOND,
             "trigger_event": f"run {SECOND} of etl Succeeded on host-1"}  # fmt: skip
    signal = {"workflow": "nightly", "trigger": "on_deploy", "trigger_event": "signal d1"}
    with History(path, mode="write") as history:
        history.store(_run(FIRST, T0, after, failed=False))
        history.store(_run("c3" * 16, T0 + 60, signal, failed=False))
        history.store(_run(SECOND, T0 - 60, {"workflow": "etl"}, failed=False))
    found = _invoke("runs", "--db", path, "--trigger", "report_after_etl", "--json")
    assert found.exit_code == 0, found.output
    said = json.loads(found.output)
    assert [(r["run_id"], r["origin"]["trigger"]) for r in said] == [(FIRST, "report_after_etl")]
    assert said[0]["origin"]["followed_run"] == SECOND
    table = _invoke("runs", "--db", path, "--trigger", "on_deploy")
    assert [line for line in table.output.splitlines() if "c3c3c3c3c3c3" in line]
    assert "a1a1a1a1a1a1" not in table.output
    none = _invoke("runs", "--db", path, "--trigger", "report_after")
    assert "no runs recorded that match" in none.output


def test_a_run_carried_on_says_from_what_and_its_lost_run_where_it_went(tmp_path: Path) -> None:
    path = str(tmp_path / "history.sqlite3")
    origin = {"workflow": "nightly", "issued_by": "alice", "request_id": "req-1"}
    carried = {**origin, "rerun_of": FIRST, "root_run": FIRST, "carried_on_from": FIRST,
               "lost_engine": "server-a", "carry_ons": 1}  # fmt: skip
    with History(path, mode="write") as history:
        history.store(_run(FIRST, T0, origin, failed=True)[:3])  # its engine died mid-run
        history.store(_run(SECOND, T0 + 60, carried, failed=False))
    lost = _invoke("run", FIRST[:12], "--db", path)
    assert f"replaced by {SECOND[:12]} (Succeeded) (carried on after server-a died)" in lost.output
    new = _invoke("run", SECOND[:12], "--db", path)
    assert f"carried on from {FIRST[:12]}" in new.output
    assert "after server-a died" in new.output


def test_a_lost_run_says_how_to_carry_it_on(tmp_path: Path) -> None:
    path = str(tmp_path / "history.sqlite3")
    served = {"workflow": "nightly", "issued_by": "alice", "request_id": "req-1"}
    offline = decode_status(
        {"status": "offline", "source": "host-1", "session": 1, "ts": _iso(T0 + 30)}
    )
    with History(path, mode="write") as history:
        history.store(_run(FIRST, T0, served, failed=False)[:3])  # its engine died mid-run
        history.store(_run(SECOND, T0, {}, failed=False)[:3])  # a script's run, likewise
        history.store([Received("cascade/status/host-1", offline, T0 + 30)])
    served_run = _invoke("run", FIRST[:12], "--db", path)
    assert f"lost with its engine: `cascade rerun {FIRST[:12]}` carries it on" in served_run.output
    script_run = _invoke("run", SECOND[:12], "--db", path)
    assert f"`cascade rerun {SECOND[:12]} --entrypoint FILE.py:FUNCTION`" in script_run.output


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat()


def test_a_lost_run_says_when_with_which_engine_and_where_it_went_its_clock_stopped(
    tmp_path: Path,
) -> None:
    """The history has the run Lost (its engine went offline after its last event, 30 s in):
    `cascade run` says so, when, which engine and the run carrying it on, its time stopped at
    the death (never "running"); `cascade runs` the same time; --json has ``lost_at``."""
    path = str(tmp_path / "history.sqlite3")
    origin = {"workflow": "nightly", "issued_by": "alice", "request_id": "req-1"}
    carried = {**origin, "rerun_of": FIRST, "root_run": FIRST, "carried_on_from": FIRST,
               "lost_engine": "host-1", "carry_ons": 1}  # fmt: skip
    offline = decode_status({"status": "offline", "source": "host-1", "session": 1, "ts": _iso(T0)})
    with History(path, mode="write") as history:
        history.store(_run(FIRST, T0, origin, failed=False)[:3])  # its engine died mid-run
        history.store([Received("cascade/status/host-1", offline, T0 + 30)])
        history.store(_run(SECOND, T0 + 31, carried, failed=False)[:1])  # carried on, in place
    lost = _invoke("run", FIRST[:12], "--db", path)
    assert lost.exit_code == 0, lost.output
    head = lost.output.splitlines()[0]
    assert "Lost" in head
    assert "lost after 30.0s" in head
    assert "running" not in head
    at = datetime.fromtimestamp(T0 + 30).strftime("%Y-%m-%d %H:%M:%S")  # not today
    said = (
        f"lost at {at} when its engine host-1 went offline; carried on as {SECOND[:12]} at host-1"
    )
    assert said in lost.output
    listed = _invoke("runs", "--db", path, "--status", "lost")
    row = next(line for line in listed.output.splitlines() if FIRST[:12] in line)
    assert "Lost" in row
    assert "30.0s" in row
    data = json.loads(_invoke("run", FIRST[:12], "--db", path, "--json").stdout)
    assert (data["status"], data["lost_at"], data["duration"]) == ("Lost", T0 + 30, 30.0)
    assert data["replaced_by"][0]["source"] == "host-1"
