"""`cascade dashboard` without --db: the history `cascade record` writes by default, if there is
one (never made by the dashboard), said on start and on the page; how to start recording while
there is none; a default file that cannot be read said, not fatal.

The default follows platformdirs: ``$XDG_DATA_HOME/cascade/history.sqlite3`` here, each test's
own (conftest.py points XDG_DATA_HOME at a fresh folder)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from rich.console import Console
from typer.testing import Result

from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.dashboard import (
    DashboardHub,
    DashboardSettings,
    HistorySource,
    create_app,
    serve_dashboard,
)
from cascade.history import History


@pytest.fixture
def default_db() -> Path:
    """Where `cascade record` writes without --db in this test's environment (not there yet)."""
    path = Path(os.environ["XDG_DATA_HOME"]) / "cascade" / "history.sqlite3"
    assert not path.exists()
    return path


def _client(source: HistorySource) -> httpx.AsyncClient:
    hub = DashboardHub(InMemoryConnector(InMemoryBroker(), presence=False))
    transport = httpx.ASGITransport(
        app=create_app(hub, DashboardSettings(token=None, history=source))
    )
    return httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1")


def _record(path: Path) -> None:
    """What `cascade record` leaves: a history at ``path``, folder and all."""
    History(path, mode="write").close()


def _foreign_file(path: Path, *, make: bool = True) -> bytes:
    """Another application's SQLite file at ``path`` (made unless ``make`` is false): its bytes."""
    if make:
        path.parent.mkdir(parents=True)
        with contextlib.closing(sqlite3.connect(path)) as other, other:
            other.execute("CREATE TABLE notes (text TEXT)")
    return path.read_bytes()


async def test_without_a_default_history_the_page_says_how_to_start_recording(
    default_db: Path,
) -> None:
    """None there: ``/api/history`` names the file and the command that makes it; the other
    endpoints 404 saying the same; nothing is created, not even the folder."""
    source = HistorySource.default()
    source.record = "cascade record --host mq.example:1883"
    async with _client(source) as http:
        status = (await http.get("/api/history")).json()
        runs = await http.get("/api/history/runs")
    assert status == {
        "history": False,
        "location": str(default_db),
        "note": f"No history yet at {default_db}: run `cascade record --host mq.example:1883` "
        "to keep runs; this page shows it once it is there (it looks again every few seconds).",
        "run_page": 500,
    }
    assert (runs.status_code, runs.json()["error"]) == (404, status["note"])
    assert not default_db.parent.exists()


async def test_a_default_history_recorded_meanwhile_is_read_on_the_next_load(
    default_db: Path,
) -> None:
    """`cascade record` started after the dashboard: the page's next load finds its history."""
    source = HistorySource.default()
    async with _client(source) as http:
        before = (await http.get("/api/history")).json()
        _record(default_db)
        after = (await http.get("/api/history")).json()
        runs = await http.get("/api/history/runs")
    source.close()
    assert before["history"] is False
    assert after == {
        "history": True,
        "location": str(default_db),
        "note": None,
        "run_page": 500,
    }
    assert (runs.status_code, runs.json()) == (200, {"runs": []})


async def test_a_default_history_is_opened_read_only(default_db: Path) -> None:
    """There at start: served, opened as every reader opens it."""
    _record(default_db)
    source = HistorySource.default()
    try:
        assert source.history is not None
        assert source.history.mode == "read"
        assert (source.location, source.note) == (str(default_db), None)
        assert source.line() == f"history: {default_db}"
    finally:
        source.close()


async def test_a_default_file_that_is_no_history_is_said_and_left_as_it_was(
    default_db: Path,
) -> None:
    """Another application's SQLite file at the default place: the page and the startup line
    say so; the dashboard serves on; not a byte of the file changes."""
    before = _foreign_file(default_db)
    source = HistorySource.default()
    async with _client(source) as http:
        status = (await http.get("/api/history")).json()
        state = await http.get("/api/state")
    assert status["history"] is False
    assert status["note"].startswith(f"{default_db} is not a Cascade history")
    assert source.line() == f"history: {status['note']}"
    assert state.status_code == 200
    assert _foreign_file(default_db, make=False) == before


def test_without_the_history_extra_the_page_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No cascade-history installed: the History section says which extra brings it."""
    monkeypatch.setitem(sys.modules, "cascade.history", None)
    source = HistorySource.default()
    assert source.note == (
        "the History section needs the history extra: pip install 'cascade-cli[history]'"
    )


def test_a_dashboard_given_no_history_has_no_history_section() -> None:
    """``create_app`` without a history (serving it yourself): no note, no section."""
    assert (HistorySource().note, HistorySource().line()) == (None, None)


async def _startup_lines(source: HistorySource, record_command: str | None = None) -> list[str]:
    """What `serve_dashboard` prints until it listens."""
    console = Console(record=True, width=400)
    memory = InMemoryBroker()
    ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    serving = asyncio.create_task(
        serve_dashboard(
            DashboardSettings(
                connector=lambda: InMemoryConnector(memory, presence=False),
                port=0,
                history=source,
                record_command=record_command,
                say=lambda text: console.print(text, markup=False, highlight=False),
                on_ready=ready.set_result,
            )
        )
    )
    try:
        await asyncio.wait_for(ready, 10)
    finally:
        serving.cancel()
        await asyncio.gather(serving, return_exceptions=True)
    return console.export_text().splitlines()


async def test_the_startup_line_names_the_default_history_or_how_to_make_one(
    default_db: Path,
) -> None:
    """Before the URL: the history's path, or the `cascade record` that makes one (what
    `cascade dashboard` gives: its broker's, tests/test_dashboard_face.py in the CLI)."""
    missing = await _startup_lines(
        HistorySource.default(), "cascade record --host '[::1]:1884' --username ops --tls"
    )
    assert missing[0] == (
        f"history: none yet at {default_db}: run "
        "`cascade record --host '[::1]:1884' --username ops --tls` to keep runs"
    )
    assert missing[1].startswith("cascade dashboard on http://127.0.0.1:")
    _record(default_db)
    source = HistorySource.default()
    try:
        found = await _startup_lines(source)
    finally:
        source.close()
    assert found[0] == f"history: {default_db}"


def test_the_command_uses_the_default_history_and_never_makes_one(
    invoke: Callable[..., Result], monkeypatch: pytest.MonkeyPatch, default_db: Path
) -> None:
    """No --db: the command serves the default history when it is there, and makes none when
    it is not; CASCADE_HISTORY_DB (as --db) still names another one."""
    served: list[Any] = []

    async def serve(settings: DashboardSettings) -> None:
        source = settings.history
        assert isinstance(source, HistorySource)
        served.append((source.history is not None, source.location))

    monkeypatch.setattr("cascade.dashboard.serve_dashboard", serve)
    assert invoke("dashboard").exit_code == 0
    assert not default_db.parent.exists()
    _record(default_db)
    assert invoke("dashboard").exit_code == 0
    other = default_db.parent / "other.sqlite3"
    _record(other)
    monkeypatch.setenv("CASCADE_HISTORY_DB", str(other))
    assert invoke("dashboard").exit_code == 0
    assert served == [(False, str(default_db)), (True, str(default_db)), (True, str(other))]


def test_help_says_which_history_is_shown(invoke: Callable[..., Result]) -> None:
    """--help: --db's, else `cascade record`'s default file, never made by the dashboard."""
    said = " ".join(invoke("dashboard", "--help").output.split())
    assert (
        "else `cascade record`'s default file if it exists (opened read-only, never made; a "
        "file not there yet, or without tables yet, is waited for" in said
    )
    assert "with none yet, how to start recording" in said


def test_a_db_not_made_yet_is_waited_for_and_read_once_it_is(
    invoke: Callable[..., Result], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`cascade record & cascade dashboard` with CASCADE_HISTORY_DB set: the file is not there
    when the dashboard starts; it serves, saying how to record into that file, and reads the
    history on the page's next load once `cascade record` made it, never making it itself."""
    named = tmp_path / "team" / "history.sqlite3"
    said: list[tuple[str | None, str | None]] = []
    read: list[Any] = []

    async def serve(settings: DashboardSettings) -> None:
        source = settings.history
        assert isinstance(source, HistorySource)
        source.record = settings.record_command or source.record
        said.append((source.line(), source.note))
        async with _client(source) as http:
            read.append((await http.get("/api/history")).json()["history"])
            _record(named)  # the recorder started beside it has made it meanwhile
            read.append((await http.get("/api/history")).json()["history"])
        source.close()

    monkeypatch.setattr("cascade.dashboard.serve_dashboard", serve)
    monkeypatch.setenv("CASCADE_HISTORY_DB", str(named))
    result = invoke("dashboard", "--host", "broker.example")
    assert result.exit_code == 0, result.output
    ((line, note),) = said
    record = f"cascade record --host broker.example:1883 --db {named}"
    assert line == f"history: none yet at {named}: run `{record}` to keep runs"
    assert note is not None
    assert f"No history yet at {named}: run `{record}`" in note
    assert read == [False, True]


def _held_migration(path: Path) -> None:
    """What a `cascade record` started in the same second leaves before its migration commits:
    the file made, no table in it yet."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.closing(sqlite3.connect(path)) as made, made:
        made.execute("PRAGMA journal_mode=WAL")  # as the recorder's connection does first


@pytest.mark.parametrize("named_by", ["--db", "CASCADE_HISTORY_DB"])
def test_a_db_made_but_not_yet_migrated_is_waited_for_as_a_missing_one(
    invoke: Callable[..., Result], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, named_by: str
) -> None:
    """`cascade record --db F & cascade dashboard --db F` in the same second: the file is there,
    empty of tables (the recorder's first migration not committed yet). The dashboard serves,
    saying it waits, and reads the history on the page's next load once the migration is in;
    it never made a table itself."""
    named = tmp_path / "new" / "history.sqlite3"
    _held_migration(named)
    said: list[tuple[str | None, str | None]] = []
    read: list[Any] = []

    async def serve(settings: DashboardSettings) -> None:
        source = settings.history
        assert isinstance(source, HistorySource)
        said.append((source.line(), source.note))
        with contextlib.closing(sqlite3.connect(named)) as looking:
            assert looking.execute("SELECT name FROM sqlite_master").fetchall() == []
        async with _client(source) as http:
            read.append((await http.get("/api/history")).json()["history"])
            _record(named)  # the recorder's migration commits
            read.append((await http.get("/api/history")).json()["history"])
        source.close()

    monkeypatch.setattr("cascade.dashboard.serve_dashboard", serve)
    if named_by == "--db":
        result = invoke("dashboard", "--host", "broker.example", "--db", str(named))
    else:
        monkeypatch.setenv("CASCADE_HISTORY_DB", str(named))
        result = invoke("dashboard", "--host", "broker.example")
    assert result.exit_code == 0, result.output
    ((line, note),) = said
    assert line is not None
    assert line.startswith(f"history: none yet at {named}"), line
    assert note is not None
    assert f"No history yet at {named}" in note
    assert read == [False, True]


def test_a_db_of_another_programs_tables_is_still_refused(
    invoke: Callable[..., Result], tmp_path: Path
) -> None:
    """A file of tables, none of them a history's, is no history in the making: exit 1."""
    named = tmp_path / "other" / "notes.sqlite3"
    before = _foreign_file(named)
    result = invoke("dashboard", "--db", str(named))
    assert result.exit_code == 1
    assert "is not a Cascade history" in result.output
    assert named.read_bytes() == before
