"""The History's downloads: ``/api/history/runs`` and ``/api/history/tasks`` with
``format=csv`` or ``format=jsonl`` are files (their type, a name to save them under) of what
the same filters list, with the fields `cascade runs --json` and `cascade tasks --json` print;
a team member downloads what they may see, and nothing else."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timezone
from ipaddress import ip_network
from pathlib import Path
from typing import Any

import httpx
import pytest

from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.control.access import Roles
from cascade.dashboard import DashboardHub, DashboardSettings, ProxySignIn, create_app
from cascade.history import AUDIT_TIMES, RUN_TIMES, History, Received, iso_utc
from cascade.interfaces import Constraint, constraint_topic, decode_envelope
from cascade.testkit import Invoke

T0 = datetime.now(timezone.utc).timestamp() - 3600
OK = "0a" + "1" * 30  # acme/etl, succeeded
BAD = "0a" + "2" * 30  # acme/etl, failed with an error a spreadsheet would run
THEIRS = "0b" + "3" * 30  # globex/web
FORMULA = '=HYPERLINK("http://evil.example","click")'
ROLES = Roles.parse("""
[[grant]]
role = "viewer"
scopes = ["project:acme/etl"]
people = ["vera@example.com"]

[[grant]]
role = "admin"
scopes = ["global"]
people = ["root@example.com"]
""")
VERA = {"x-test-user": "vera@example.com"}
ROOT = {"x-test-user": "root@example.com"}


def _event(run_id: str, org: str, project: str, ts: float, body: dict[str, Any]) -> Received:
    envelope = decode_envelope({
        "ts": datetime.fromtimestamp(ts, timezone.utc).isoformat(), "run_id": run_id,
        "org_id": org, "project_id": project, "source": "host-1", "body": body,
    })  # fmt: skip
    return Received(f"cascade/telemetry/{org}/{project}/{run_id}/events", envelope, ts)


def _run(run_id: str, org: str, project: str, at: float, error: str | None) -> list[Received]:
    task = {"type": "TaskStateEvent", "task_id": "load-1", "task_name": "load"}
    end = {"type": "LifecycleEvent", "event": "ENGINE_STOPPED", "status": "Succeeded"}
    if error is not None:
        end = {**end, "status": "Failed", "error": error}
    return [
        _event(run_id, org, project, at, {"type": "LifecycleEvent", "event": "ENGINE_STARTED"}),
        _event(run_id, org, project, at + 1, {**task, "state": "RUNNING"}),
        _event(run_id, org, project, at + 2,
               {**task, "state": "FAILED" if error else "COMPLETED", "error": error or ""}),
        _event(run_id, org, project, at + 3, end),
    ]  # fmt: skip


@pytest.fixture
def path(tmp_path: Path) -> Path:
    """A history of three finished runs: two of acme/etl (one failed), one of globex/web."""
    path = tmp_path / "history.sqlite3"
    pause = Constraint.pause("task:load_*", reason="=cmd|' /C calc'!A0", issued_by="alice",
                             issued_at=T0)  # fmt: skip
    with History(path, mode="write") as writer:
        writer.store([
            Received(constraint_topic("task:load_*", "pause"), pause, T0),
            *_run(OK, "acme", "etl", T0, None),
            *_run(BAD, "acme", "etl", T0 + 10, FORMULA),
            *_run(THEIRS, "globex", "web", T0 + 20, None),
        ])  # fmt: skip
    return path


@pytest.fixture
def history(path: Path) -> Iterator[History]:
    with History(path) as reader:
        yield reader


def _client(history: History, **settings: Any) -> httpx.AsyncClient:
    hub = DashboardHub(InMemoryConnector(InMemoryBroker(), presence=False))
    app = create_app(hub, DashboardSettings(history=history, **settings))
    transport = httpx.ASGITransport(app=app)
    return httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1", timeout=30)


@pytest.fixture
async def http(history: History) -> AsyncIterator[httpx.AsyncClient]:
    async with _client(history) as client:
        yield client


@pytest.fixture
async def team(history: History) -> AsyncIterator[httpx.AsyncClient]:
    """A team's dashboard: people named by a trusted proxy's header."""
    sign_in = ProxySignIn([ip_network("127.0.0.1/32")], "x-test-user", "x-test-groups")
    async with _client(history, roles=ROLES, sign_in=sign_in) as client:
        yield client


def _rows(answer: httpx.Response) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(answer.content.decode("utf-8"), newline="")))


def _lines(answer: httpx.Response) -> list[dict[str, Any]]:
    assert answer.content.endswith(b"\n")
    return [json.loads(line) for line in answer.content.decode("ascii").splitlines()]


def _exported(listed: list[dict[str, Any]], times: tuple[str, ...]) -> list[dict[str, Any]]:
    """The list's objects as an export writes them: their times in ISO 8601 UTC."""
    return [
        {key: iso_utc(value) if key in times and value is not None else value
         for key, value in item.items()}
        for item in listed
    ]  # fmt: skip


async def test_runs_download_as_csv_with_the_lists_fields(http: httpx.AsyncClient) -> None:
    """A file to save (its type, ``cascade-runs-<when>.csv``), a column per field of the
    list's runs in their order, a run a row; an object is its JSON, nothing an empty cell."""
    listed = (await http.get("/api/history/runs")).json()["runs"]
    answer = await http.get("/api/history/runs", params={"format": "csv"})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "text/csv; charset=utf-8; header=present"
    disposition = answer.headers["content-disposition"]
    assert re.fullmatch(r'attachment; filename="cascade-runs-\d{8}T\d{6}Z\.csv"', disposition)
    assert answer.headers["cascade-rows"] == "3"
    assert answer.headers["cascade-more"] == "false"
    assert answer.content.split(b"\n")[0].decode() == ",".join(listed[0])
    rows = _rows(answer)
    assert [row["run_id"] for row in rows] == [run["run_id"] for run in listed]
    ok = next(row for row in rows if row["run_id"] == OK)
    assert json.loads(ok["tasks"]) == {"COMPLETED": 1}
    assert ok["error"] == ok["ended_at"][:0] == ""  # None: an empty cell
    assert float(ok["duration"]) == 3.0
    assert ok["project_id"] == "etl"


async def test_a_text_a_spreadsheet_would_run_is_kept_as_text(http: httpx.AsyncClient) -> None:
    """An error from the broker starting with ``=`` is ``'=...`` in the CSV (OWASP's advice),
    as it was in the JSON Lines."""
    rows = _rows(await http.get("/api/history/runs", params={"format": "csv"}))
    lines = _lines(await http.get("/api/history/runs", params={"format": "jsonl"}))
    assert next(row for row in rows if row["run_id"] == BAD)["error"] == "'" + FORMULA
    assert next(line for line in lines if line["run_id"] == BAD)["error"] == FORMULA


async def test_a_line_break_in_a_text_forges_no_row(tmp_path: Path) -> None:
    """An error ``x<CR>=HYPERLINK(...)`` and one ``x<LF>=HYPERLINK(...)``: a row each, for the
    csv module and for a naive split into lines alike, and no line starts a formula."""
    with History(tmp_path / "h.sqlite3", mode="write") as writer:
        writer.store([
            *_run(OK, "acme", "etl", T0, "x\r" + FORMULA),
            *_run(BAD, "acme", "etl", T0 + 10, "x\n" + FORMULA),
        ])  # fmt: skip
    with History(tmp_path / "h.sqlite3") as reader:
        async with _client(reader) as client:
            answer = await client.get("/api/history/runs", params={"format": "csv"})
    rows = {row["run_id"]: row["error"] for row in _rows(answer)}
    assert rows == {OK: "x\\x0d" + FORMULA, BAD: "x\n'" + FORMULA}
    lines = answer.content.decode().splitlines()
    assert len(lines) == 4  # the header, a row, a row of two lines (LF, quoted)
    assert not [line for line in lines if line.startswith("=")]


async def test_runs_download_as_json_lines_of_the_lists_objects(http: httpx.AsyncClient) -> None:
    """One object a line, each the list's (``cascade runs --json``'s), times in ISO 8601."""
    listed = (await http.get("/api/history/runs", params={"status": "failed"})).json()["runs"]
    answer = await http.get("/api/history/runs", params={"status": "failed", "format": "jsonl"})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/jsonl; charset=utf-8"
    assert answer.headers["content-disposition"].endswith('.jsonl"')
    assert _lines(answer) == _exported(listed, RUN_TIMES)
    assert [run["run_id"] for run in listed] == [BAD]


async def test_a_download_past_its_limit_says_more_matched(http: httpx.AsyncClient) -> None:
    answer = await http.get("/api/history/runs", params={"format": "csv", "limit": "2"})
    assert len(_rows(answer)) == 2
    assert (answer.headers["cascade-rows"], answer.headers["cascade-more"]) == ("2", "true")
    tasks = await http.get("/api/history/tasks", params={"format": "jsonl", "limit": "1"})
    assert tasks.headers["cascade-more"] == "false"  # one task name: load


async def test_bad_download_parameters_are_400s_saying_what(http: httpx.AsyncClient) -> None:
    xlsx = await http.get("/api/history/runs", params={"format": "xlsx"})
    huge = await http.get("/api/history/runs", params={"format": "csv", "limit": "10001"})
    assert (xlsx.status_code, xlsx.json()) == (400, {"error": "format must be json, csv or jsonl"})
    assert (huge.status_code, huge.json()) == (
        400, {"error": "limit must be a whole number from 1 to 10000"}
    )  # fmt: skip
    # the list's own bound is unchanged
    assert (await http.get("/api/history/runs", params={"limit": "501"})).status_code == 400


async def test_tasks_download_with_the_lists_fields(http: httpx.AsyncClient) -> None:
    listed = (await http.get("/api/history/tasks")).json()["tasks"]
    answer = await http.get("/api/history/tasks", params={"format": "csv"})
    assert answer.headers["content-type"].startswith("text/csv")
    assert re.search(r'filename="cascade-tasks-\d{8}T\d{6}Z\.csv"',
                     answer.headers["content-disposition"])  # fmt: skip
    rows = _rows(answer)
    assert list(rows[0]) == list(listed[0])
    assert [(row["task_name"], row["executions"], row["failures"], row["approximate"])
            for row in rows] == [("load", "3", "1", "false")]  # fmt: skip
    lines = _lines(await http.get("/api/history/tasks", params={"format": "jsonl"}))
    assert lines == listed


async def test_the_audit_downloads_its_rows(http: httpx.AsyncClient) -> None:
    listed = (await http.get("/api/history/audit")).json()["events"]
    lines = _lines(await http.get("/api/history/audit", params={"format": "jsonl"}))
    rows = _rows(await http.get("/api/history/audit", params={"format": "csv"}))
    assert lines == _exported(listed, AUDIT_TIMES)
    assert [(row["action"], row["issued_by"], row["reason"]) for row in rows] == [
        ("set", "alice", "'=cmd|' /C calc'!A0")
    ]


async def test_a_team_member_downloads_only_what_they_may_see(team: httpx.AsyncClient) -> None:
    """Vera (acme/etl) gets her project's runs only, in either format; the task statistics
    and the audit cover every project: for those who see them all, as their lists are."""
    for fmt in ("csv", "jsonl"):
        mine = await team.get("/api/history/runs", params={"format": fmt}, headers=VERA)
        assert mine.status_code == 200, mine.text
        assert THEIRS not in mine.text
        assert "globex" not in mine.text
        assert mine.headers["cascade-rows"] == "2"
        every = await team.get("/api/history/runs", params={"format": fmt}, headers=ROOT)
        assert THEIRS in every.text
        for what in ("tasks", "audit"):
            got = await team.get(f"/api/history/{what}", params={"format": fmt}, headers=VERA)
            listed = await team.get(f"/api/history/{what}", headers=VERA)
            assert (got.status_code, got.json()) == (listed.status_code, listed.json())
            assert got.status_code == 403
        nobody = await team.get("/api/history/runs", params={"format": fmt})
        assert nobody.status_code == 401
        assert "content-disposition" not in nobody.headers


async def test_the_downloads_agree_with_the_commands_json(
    http: httpx.AsyncClient, path: Path, invoke: Invoke
) -> None:
    """A download is what `cascade runs/tasks/audit --format` prints, byte for byte, and its
    columns are the fields of their `--json` objects."""
    for what in ("runs", "tasks", "audit"):
        printed = invoke(what, "--json", "--db", str(path))
        assert printed.exit_code == 0, printed.output
        objects = json.loads(printed.output)
        for fmt in ("csv", "jsonl"):
            exported = invoke(what, "--format", fmt, "--db", str(path))
            assert exported.exit_code == 0, exported.output
            download = await http.get(f"/api/history/{what}", params={"format": fmt})
            assert download.content.decode("utf-8") == exported.output
        csv_file = await http.get(f"/api/history/{what}", params={"format": "csv"})
        assert list(_rows(csv_file)[0]) == list(objects[0])
        assert len(_rows(csv_file)) == len(objects)
