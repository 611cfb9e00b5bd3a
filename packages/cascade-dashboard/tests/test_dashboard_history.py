"""`cascade dashboard --db`: the history's JSON endpoints on SQLite, the page's history places
and its script, and the command's option.

In process through httpx's ASGI transport, as the dashboard's other API tests: the installed
Starlette deprecates its TestClient over httpx (and warnings are errors here)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import Result

from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.dashboard import DashboardHub, DashboardSettings, create_app
from cascade.dashboard.history import MAX_LIMIT
from cascade.history import History, HistoryError, Received
from cascade.interfaces import Constraint, decode_envelope
from cascade.interfaces.commands import decode_cancel_reply, reply_topic

NOW = datetime.now(timezone.utc).timestamp()
T0 = NOW - 3600  # an hour ago: inside every default period
EVIL = "evil\x1b]0;pwned\x07<img src=x onerror=alert(1)>[bold]"


def _event(run_id: str, ts: float, body: dict[str, Any], project: str = "shop") -> Received:
    envelope = decode_envelope(
        {
            "ts": datetime.fromtimestamp(ts, timezone.utc).isoformat(),
            "run_id": run_id,
            "org_id": "acme",
            "project_id": project,
            "source": "host-1",
            "body": body,
        }
    )
    return Received(f"cascade/telemetry/acme/{project}/{run_id}/events", envelope, ts)


def _task(run_id: str, name: str, state: str, ts: float, **extra: Any) -> Received:
    body = {"type": "TaskStateEvent", "task_id": f"{name}-1", "task_name": name, "state": state}
    return _event(run_id, ts, {**body, **extra})


def _stopped(run_id: str, ts: float, status: str, error: str | None = None) -> Received:
    body = {"type": "LifecycleEvent", "event": "ENGINE_STOPPED", "status": status}
    return _event(run_id, ts, body if error is None else {**body, "error": error})


@pytest.fixture
def history(tmp_path: Path) -> Iterator[History]:
    """A succeeded run (a retried load), a failed one with hostile text, a pause cleared."""
    start = {"type": "LifecycleEvent", "event": "ENGINE_STARTED", "tasks": 1}
    with History(tmp_path / "history.sqlite3", mode="write") as history:
        history.store(
            [
                _event("aaaa1111", T0, start),
                _task("aaaa1111", "load", "RUNNING", T0 + 1),
                _task("aaaa1111", "load", "RETRYING", T0 + 2, duration_ms=1000, error="E: 1"),
                _task("aaaa1111", "load", "RUNNING", T0 + 3, duration_ms=2000),
                _task("aaaa1111", "load", "COMPLETED", T0 + 5, duration_ms=4000),
                _stopped("aaaa1111", T0 + 6, "Succeeded"),
                _event("bbbb2222", T0 + 60, start, project="etl"),
                _task("bbbb2222", EVIL, "RUNNING", T0 + 61),
                _task("bbbb2222", EVIL, "FAILED", T0 + 62, duration_ms=1000, error=EVIL),
                _stopped("bbbb2222", T0 + 63, "Failed", error=EVIL),
                Received("cascade/constraints/global/pause", Constraint.pause("global"), T0 + 5),
                Received("cascade/constraints/global/pause", None, T0 + 6),
            ]
        )
        yield history


def _client(history: History | None) -> httpx.AsyncClient:
    hub = DashboardHub(InMemoryConnector(InMemoryBroker(), presence=False))
    transport = httpx.ASGITransport(
        app=create_app(hub, DashboardSettings(token=None, history=history))
    )
    return httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1")


async def test_runs_with_the_filters_of_cascade_runs(history: History) -> None:
    """Newest first; status, project, task, source and since filter as `cascade runs` does."""
    async with _client(history) as http:
        runs = (await http.get("/api/history/runs")).json()["runs"]
        failed = (await http.get("/api/history/runs", params={"status": "failed"})).json()["runs"]
        etl = (await http.get("/api/history/runs", params={"project": "etl"})).json()["runs"]
        loads = (await http.get("/api/history/runs", params={"task": "load"})).json()["runs"]
        recent = (await http.get("/api/history/runs", params={"since": "30m"})).json()["runs"]
        one = (await http.get("/api/history/runs", params={"limit": "1"})).json()["runs"]
        elsewhere = (await http.get("/api/history/runs", params={"source": "x"})).json()["runs"]
    assert [r["run_id"] for r in runs] == ["bbbb2222", "aaaa1111"]
    assert [r["run_id"] for r in failed] == [r["run_id"] for r in etl] == ["bbbb2222"]
    assert failed[0]["error"] == EVIL  # as text: the page shows it as text
    assert [r["run_id"] for r in loads] == ["aaaa1111"]
    assert recent == elsewhere == []
    assert [r["run_id"] for r in one] == ["bbbb2222"]


async def test_a_runs_refusals_are_in_its_json(history: History) -> None:
    """What the recorder refused of a run (stored nowhere) is counted in its JSON, by reason;
    a run without refusals says ``{}``."""
    history.store([], refused={("aaaa1111", "foreign source"): 3})
    async with _client(history) as http:
        run = (await http.get("/api/history/run", params={"id": "aaaa"})).json()["run"]
        other = (await http.get("/api/history/run", params={"id": "bbbb2222"})).json()["run"]
    assert (run["refused"], other["refused"]) == ({"foreign source": 3}, {})


async def test_a_finished_runs_timeline_is_drawn_as_the_live_one(history: History) -> None:
    """?id= (a prefix will do): each task with its segments, as the live timeline has them."""
    async with _client(history) as http:
        run = (await http.get("/api/history/run", params={"id": "aaaa"})).json()["run"]
        failed = (await http.get("/api/history/run", params={"id": "bbbb2222"})).json()["run"]
    assert (run["run_id"], run["status"], run["duration"]) == ("aaaa1111", "Succeeded", 6.0)
    [load] = run["tasks"]
    assert (load["name"], load["attempts"], load["state"]) == ("load", 2, "COMPLETED")
    assert [
        (s["state"], s["start"] - T0, s["end"] - T0, s["outcome"]) for s in load["segments"]
    ] == [
        ("RUNNING", 1, 2, "RETRYING"),
        ("RETRYING", 2, 3, "RUNNING"),
        ("RUNNING", 3, 5, "COMPLETED"),
    ]
    (failure,) = failed["failures"]
    assert {key: failure[key] for key in ("task_id", "name", "error", "state")} == {
        "task_id": f"{EVIL}-1", "name": EVIL, "error": EVIL, "state": "FAILED",
    }  # fmt: skip
    assert [attempt["error"] for attempt in failure["attempt_list"]] == [EVIL]


async def test_tasks_and_a_tasks_durations_over_time(history: History) -> None:
    """Per task statistics over 7 days by default; one task's executions, oldest first."""
    async with _client(history) as http:
        tasks = (await http.get("/api/history/tasks")).json()["tasks"]
        loads = (await http.get("/api/history/tasks", params={"name": "lo*"})).json()["tasks"]
        load = (await http.get("/api/history/task", params={"name": "load"})).json()
    assert {t["task_name"] for t in tasks} == {"load", EVIL}
    assert [(t["task_name"], t["p50_ms"]) for t in loads] == [("load", 4000)]
    assert load["name"] == "load"
    assert [(e["run_id"], e["duration_ms"], e["state"]) for e in load["executions"]] == [
        ("aaaa1111", 4000, "COMPLETED")
    ]


async def test_the_audit_trail(history: History) -> None:
    """The pause set and cleared, newest first."""
    async with _client(history) as http:
        events = (await http.get("/api/history/audit")).json()["events"]
    assert [(e["action"], e["scope"], e["type"]) for e in events] == [
        ("cleared", "global", "pause"),
        ("set", "global", "pause"),
    ]


async def test_a_cancel_is_in_the_audit_trail(history: History) -> None:
    """A run's cancel, as its engine answered, among the constraints' changes: who, why, which
    run, what it stopped (the page renders it with textContent, as every field)."""
    reply = decode_cancel_reply(
        {
            "id": "req-1",
            "run_id": "c" * 32,
            "source": "host-1",
            "cancelled": [{"task_id": "x-1", "task_name": EVIL}],
            "cancelled_count": 1,
            "not_started": 3,
            "issued_by": "alice",
            "reason": EVIL,
        }
    )
    started = {"type": "LifecycleEvent", "event": "ENGINE_STARTED"}
    history.store([_event("c" * 32, T0, started)])  # an answer counts from its run's engine
    history.store([Received(reply_topic("local", "req-1", reply.source), reply, T0 + 100)])
    async with _client(history) as http:
        events = (await http.get("/api/history/audit")).json()["events"]
    cancel = events[0]
    assert (cancel["action"], cancel["scope"], cancel["run_id"]) == (
        "cancelled",
        "run:" + "c" * 32,
        "c" * 32,
    )
    assert (cancel["issued_by"], cancel["reason"], cancel["source"]) == ("alice", EVIL, "host-1")
    assert cancel["stopped"]["cancelled"] == [{"task_id": "x-1", "task_name": EVIL}]
    assert cancel["stopped"]["not_started"] == 3


@pytest.mark.parametrize(
    ("path", "params", "status", "says"),
    [
        ("/api/history/runs", {"status": "exploded"}, 400, "unknown run status 'exploded'"),
        ("/api/history/runs", {"since": "soon"}, 400, "since: 'soon' is not an age"),
        (
            "/api/history/runs",
            {"limit": "0"},
            400,
            f"limit must be a whole number from 1 to {MAX_LIMIT}",
        ),
        ("/api/history/runs", {"limit": "1e9"}, 400, "limit must be"),
        ("/api/history/run", {}, 400, "give ?id=RUN_ID"),
        ("/api/history/run", {"id": "0ff"}, 404, "no such run in the history"),
        ("/api/history/run", {"id": "nope"}, 400, "a run id is hex digits"),
        ("/api/history/task", {}, 400, "give ?name=TASK_NAME"),
    ],
)
async def test_bad_requests_get_one_line(
    history: History, path: str, params: dict[str, str], status: int, says: str
) -> None:
    """400 for what cannot be read, 404 for a run the history lacks; a JSON error each."""
    async with _client(history) as http:
        answer = await http.get(path, params=params)
    assert answer.status_code == status
    assert says in answer.json()["error"]


async def test_an_ambiguous_prefix_is_a_bad_request(history: History) -> None:
    """A prefix several runs have: 400, saying to give more of it."""
    history.store([_task("aaaa3333", "x", "RUNNING", T0)])
    async with _client(history) as http:
        answer = await http.get("/api/history/run", params={"id": "aaaa"})
    assert (answer.status_code, "several runs" in answer.json()["error"]) == (400, True)


class _Down(History):
    """A history whose database cannot be read now."""

    def runs(self, **filters: Any) -> Any:
        raise HistoryError("cannot read postgresql+psycopg://db/x: connection refused")


async def test_a_database_that_cannot_be_read_is_503(tmp_path: Path) -> None:
    """The database's one line, 503: the live page goes on."""
    History(tmp_path / "h.sqlite3", mode="write").close()
    with _Down(tmp_path / "h.sqlite3") as down:
        async with _client(down) as http:
            answer = await http.get("/api/history/runs")
            state = await http.get("/api/state")
    assert answer.status_code == 503
    assert answer.json() == {"error": "cannot read postgresql+psycopg://db/x: connection refused"}
    assert state.status_code == 200


async def test_without_db_the_history_is_404() -> None:
    """Started without --db: every history endpoint says how to get one."""
    async with _client(None) as http:
        answers = [
            await http.get(f"/api/history/{name}") for name in ("runs", "run", "tasks", "audit")
        ]
    assert {a.status_code for a in answers} == {404}
    assert answers[0].json() == {"error": "no history here: start the dashboard with --db URL"}


async def test_the_page_has_the_historys_places_and_no_inline_script(history: History) -> None:
    """The recorded runs in the Runs list, the Tasks and Audit places, and their script, served
    from the package; no inline script (the first state is a JSON data block), no HTML built."""
    async with _client(history) as http:
        page = (await http.get("/")).text
        main = (await http.get("/static/main.js")).text
        script = await http.get("/static/history.js")
        answer = await http.get("/api/history/runs")
    for part in ('id="h-runs"', 'data-place="tasks"', 'data-place="audit"', 'id="h-audit"'):
        assert part in page
    assert 'from "./history.js";' in main
    # the one script run is a file, the page's module; the other is its first state, data
    data = '<script id="first-state" type="application/json">'
    assert page.count("<script") == page.count('<script type="module" src=') + 1 == 2
    assert page.count(data) == 1
    assert script.status_code == 200
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in script.text
    assert answer.headers["content-type"] == "application/json"
    assert "unsafe-inline" not in answer.headers["content-security-policy"]


def test_dashboard_db_is_opened_as_a_reader(invoke: Callable[..., Result], tmp_path: Path) -> None:
    """--db naming a file that is no history: exit 1, one line, the file as it was, before any
    broker (a file not there yet is waited for: test_dashboard_default_history.py)."""
    other = tmp_path / "other.sqlite3"
    other.write_bytes(b"not a database at all")
    result = invoke("dashboard", "--db", str(other), "--listen", "127.0.0.1:0")
    assert result.exit_code == 1
    assert result.output.startswith("cascade: ")
    assert len(result.output.strip().splitlines()) == 1
    assert other.read_bytes() == b"not a database at all"
