"""`cascade runs/tasks/audit/logs --format csv|jsonl`: one row a run, task, audit entry or log
line on stdout, the columns --json's fields in its order, times in ISO 8601 UTC; CSV parses
back (the standard library's reader) with its header, and keeps a spreadsheet from running
what a message said."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from cascade.cli import app
from cascade.connector_kit.testing import received
from cascade.history import History, Received, decode_message
from cascade.interfaces import Constraint, decode_envelope
from cascade.interfaces.logs import LogBatch, LogLine, logs_topic

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc).timestamp()
RUN = "e4a0000011c1d0a1f3c2b7e9d84a6100"
ISO = "2026-11-20T12:00:00+00:00"
HOSTILE = '=HYPERLINK("http://evil")\x1b[31m'


def _invoke(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat()


def _event(ts: float, body: dict[str, Any]) -> Received:
    envelope = decode_envelope({
        "ts": _iso(ts), "run_id": RUN, "org_id": "acme", "project_id": "shop",
        "source": "host-1", "body": body,
    })  # fmt: skip
    return Received(f"cascade/telemetry/acme/shop/{RUN}/events", envelope, ts)


@pytest.fixture
def db(tmp_path: Path) -> str:
    """A failed run of two tasks (one a hostile name), its log lines, a limit set."""
    path = str(tmp_path / "h.sqlite3")
    task = {"type": "TaskStateEvent", "task_id": "load-1", "task_name": "load"}
    logs = LogBatch(
        run_id=RUN, org_id="acme", project_id="shop", source="host-1", seq=1, ts=_iso(T0),
        lines=[
            LogLine(ts=_iso(T0), task_id="load-1", task_name="load", message='first, "quoted"',
                    n=1),
            LogLine(ts=_iso(T0 + 1), task_id="load-1", task_name="load", message="two\nlines", n=2,
                    level="WARNING"),
        ],
    )  # fmt: skip
    stored = decode_message(received(logs_topic("acme", "shop", RUN), logs), received_at=T0)
    assert stored is not None
    limit = Constraint.concurrency("task:load_*", 2, reason=HOSTILE, issued_by="bob")
    with History(path, mode="write") as history:
        history.store(
            [
                _event(T0, {"type": "LifecycleEvent", "event": "ENGINE_STARTED", "tasks": 2}),
                _event(T0 + 1, {**task, "state": "RUNNING"}),
                _event(
                    T0 + 2,
                    {
                        **task,
                        "state": "FAILED",
                        "duration_ms": 1000.0,
                        "error": "ValueError: bad row",
                    },
                ),
                _event(
                    T0 + 2,
                    {
                        "type": "TaskStateEvent",
                        "task_id": "x-2",
                        "task_name": HOSTILE,
                        "state": "COMPLETED",
                        "duration_ms": 5.0,
                    },
                ),
                _event(
                    T0 + 3,
                    {
                        "type": "LifecycleEvent",
                        "event": "ENGINE_STOPPED",
                        "status": "Failed",
                        "error": "ValueError: bad row",
                    },
                ),
                stored,
                Received("cascade/constraints/task:load_*/concurrency", limit, T0),
            ]
        )
    return path


# each command: its arguments, the --json rows, and the fields that are times
COMMANDS: dict[str, tuple[list[str], str, tuple[str, ...]]] = {
    "runs": (["runs"], "array", ("started_at", "ended_at", "received_at")),
    "tasks": (["tasks", "--since", "3650d"], "array", ()),
    "audit": (["audit", "--since", "3650d"], "array", ("at", "expires_at", "issued_at", "last_at")),
    "logs": (["logs", RUN[:8]], "lines", ()),
}


def _json_rows(name: str, db: str) -> list[dict[str, Any]]:
    args, shape, _ = COMMANDS[name]
    result = _invoke(*args, "--db", db, "--json")
    assert result.exit_code == 0, result.output
    if shape == "array":
        rows: list[dict[str, Any]] = json.loads(result.stdout)
        return rows
    return [json.loads(line) for line in result.stdout.splitlines()]


def _as_iso(value: Any) -> Any:
    return _iso(value) if isinstance(value, float) else value


@pytest.mark.parametrize("name", COMMANDS)
def test_jsonl_is_a_row_a_line_with_the_json_fields_and_iso_times(name: str, db: str) -> None:
    """Each line one object: --json's fields in their order and values, times as ISO 8601."""
    args, _, times = COMMANDS[name]
    result = _invoke(*args, "--db", db, "--format", "jsonl")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    expected = _json_rows(name, db)
    assert len(rows) == len(expected) > 0
    for row, want in zip(rows, expected, strict=True):
        assert list(row) == list(want)
        assert row == {key: _as_iso(v) if key in times else v for key, v in want.items()}
    for time_field in times:
        assert all(row[time_field] is None or row[time_field].endswith("+00:00") for row in rows)


@pytest.mark.parametrize("name", COMMANDS)
def test_csv_parses_back_with_its_header(name: str, db: str) -> None:
    """The header names --json's fields; each row parses back to them (nested values as
    JSON text, none as empty); a message's newline and quotes survive the round trip."""
    args, _, times = COMMANDS[name]
    result = _invoke(*args, "--db", db, "--format", "csv")
    assert result.exit_code == 0, result.output
    reader = csv.DictReader(io.StringIO(result.stdout))
    rows = list(reader)
    expected = _json_rows(name, db)
    assert reader.fieldnames == list(expected[0])
    assert len(rows) == len(expected)
    for row, want in zip(rows, expected, strict=True):
        for key, value in want.items():
            if value is None:
                assert row[key] == "", key
            elif key in times:
                assert row[key] == _iso(value), key
            elif isinstance(value, bool):
                assert row[key] == str(value).lower(), key
            elif isinstance(value, int | float):
                assert float(row[key]) == value, key
            elif isinstance(value, dict | list):
                assert json.loads(row[key]) == value, key
            elif value.startswith("="):
                assert row[key].startswith("'="), key  # a spreadsheet shows it, runs nothing
            elif "\x1b" not in value:
                assert row[key] == value, key


def test_csv_keeps_a_spreadsheet_and_a_terminal_from_acting_on_a_message(db: str) -> None:
    """A task named like a formula starts with a quote; its escape character is written as
    text (JSON Lines keeps both as they were)."""
    text = _invoke("tasks", "--db", db, "--since", "3650d", "--format", "csv").stdout
    assert "\x1b" not in text
    assert "'=HYPERLINK" in text
    assert "\\x1b[31m" in text
    lines = _invoke("tasks", "--db", db, "--since", "3650d", "--format", "jsonl").stdout
    assert HOSTILE in [json.loads(line)["task_name"] for line in lines.splitlines()]


def test_logs_rows_are_the_lines_of_json(db: str) -> None:
    """`logs --format jsonl` writes what --json does; its CSV's message keeps its newline."""
    jsonl = _invoke("logs", RUN[:8], "--db", db, "--format", "jsonl")
    assert jsonl.stdout == _invoke("logs", RUN[:8], "--db", db, "--json").stdout
    rows = list(
        csv.DictReader(io.StringIO(_invoke("logs", RUN[:8], "--db", db, "--format", "csv").stdout))
    )
    assert [row["message"] for row in rows] == ['first, "quoted"', "two\nlines"]
    assert [row["ts"] for row in rows] == [ISO, "2026-11-20T12:00:01+00:00"]


def test_an_empty_export_is_its_header(db: str) -> None:
    """No run matches: CSV is its header alone, JSON Lines nothing."""
    csv_out = _invoke("runs", "--db", db, "--status", "running", "--format", "csv")
    assert csv_out.exit_code == 0, csv_out.output
    assert csv_out.stdout.startswith("run_id,org_id,project_id,source,status,started_at,")
    assert len(csv_out.stdout.splitlines()) == 1
    jsonl_out = _invoke("runs", "--db", db, "--status", "running", "--format", "jsonl")
    assert (jsonl_out.exit_code, jsonl_out.stdout) == (0, "")


@pytest.mark.parametrize(
    "args",
    [
        ["runs", "--json", "--format", "csv"],
        ["runs", "--format", "xml"],
        ["logs", RUN, "-f", "--format", "csv"],
    ],
)
def test_what_cannot_be_exported_is_a_usage_error(args: list[str], db: str) -> None:
    """--json with --format, an unknown format, and -f with --format: one line, exit 2."""
    result = _invoke(*args, "--db", db)
    assert result.exit_code == 2, result.output
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


# every character a reader may take for a line break (str.splitlines' set), by name
BREAKS = {
    "CR": "\r", "LF": "\n", "CRLF": "\r\n", "VT": "\v", "FF": "\f", "FS": "\x1c", "GS": "\x1d",
    "RS": "\x1e", "NEL": "\x85", "LS": "\u2028", "PS": "\u2029",
}  # fmt: skip


def _escaped(brk: str) -> str:
    return f"\\x{ord(brk):02x}" if ord(brk) < 0x100 else f"\\u{ord(brk):04x}"


@pytest.mark.parametrize("brk", BREAKS.values(), ids=BREAKS.keys())
def test_a_line_break_in_a_cell_forges_no_row_and_no_line_starts_a_formula(
    brk: str, tmp_path: Path
) -> None:
    """A run named ``x<break>=1+1<break>-2<break>@SUM(A1)``: the csv module reads one row,
    and no line of the file starts a formula, also for a naive split on every line break.
    LF and CRLF stay in the cell, quoted, each line after one guarded; any other break is
    written escaped, so that a naive split sees one line per row."""
    path = str(tmp_path / "h.sqlite3")
    name = f"x{brk}=1+1{brk}-2{brk}@SUM(A1)"
    started = {"type": "LifecycleEvent", "event": "ENGINE_STARTED", "tasks": 1, "name": name}
    with History(path, mode="write") as history:
        history.store([_event(T0, started)])
    # the bytes: CliRunner's stdout turns CRLF into LF
    text = _invoke("runs", "--db", path, "--format", "csv").stdout_bytes.decode()
    header, *rows = list(csv.reader(io.StringIO(text, newline="")))
    assert len(rows) == 1
    cell = rows[0][header.index("name")]
    for line in text.splitlines():
        assert not line.startswith(("=", "+", "-", "@")), repr(text)
    if brk in ("\n", "\r\n"):
        assert cell == f"x{brk}'=1+1{brk}'-2{brk}'@SUM(A1)"
        assert f'"x{brk}' in text  # quoted
    else:
        assert cell == "x" + _escaped(brk) + "=1+1" + _escaped(brk) + "-2" + _escaped(brk) + (
            "@SUM(A1)"
        )
        assert len(text.splitlines()) == 2, repr(text)  # the header and the row
