"""`--format csv|jsonl` from a history on a real PostgreSQL (a private cluster): the same rows as
--json, times in ISO 8601 UTC, CSV parsing back with its header."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import datetime, timezone

import pytest
from typer.testing import CliRunner, Result

from cascade.cli import app
from cascade.connector_kit.testing import received
from cascade.history import History, Received, decode_message
from cascade.interfaces import decode_envelope
from cascade.interfaces.logs import LogBatch, LogLine, logs_topic
from cascade.testkit import (
    PrivatePostgreSQL,
    own_postgresql,
)

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc).timestamp()
RUN = "e4a0000022c1d0a1f3c2b7e9d84a6100"


@pytest.fixture(scope="module")
def postgresql() -> Iterator[PrivatePostgreSQL]:
    yield from own_postgresql()


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat()


def _event(ts: float, body: dict[str, object]) -> Received:
    envelope = decode_envelope({
        "ts": _iso(ts), "run_id": RUN, "org_id": "acme", "project_id": "shop",
        "source": "host-1", "body": body,
    })  # fmt: skip
    return Received(f"cascade/telemetry/acme/shop/{RUN}/events", envelope, ts)


@pytest.fixture
def database_url(postgresql: PrivatePostgreSQL) -> Iterator[str]:
    """A history with one finished run of one task, and two lines it logged."""
    name = postgresql.create_database()
    url = postgresql.url(name)
    task = {"type": "TaskStateEvent", "task_id": "load-1", "task_name": "load"}
    logs = LogBatch(
        run_id=RUN, org_id="acme", project_id="shop", source="host-1", seq=1, ts=_iso(T0),
        lines=[LogLine(ts=_iso(T0 + n), task_id="load-1", task_name="load", message=f"m, {n}",
                       n=n) for n in (1, 2)],
    )  # fmt: skip
    stored = decode_message(received(logs_topic("acme", "shop", RUN), logs), received_at=T0)
    assert stored is not None
    with History(url, mode="write") as history:
        history.store(
            [
                _event(T0, {"type": "LifecycleEvent", "event": "ENGINE_STARTED", "tasks": 1}),
                _event(T0 + 1, {**task, "state": "RUNNING"}),
                _event(T0 + 2, {**task, "state": "COMPLETED", "duration_ms": 1000.0}),
                _event(
                    T0 + 3,
                    {"type": "LifecycleEvent", "event": "ENGINE_STOPPED", "status": "Succeeded"},
                ),
                stored,
            ]
        )
    yield url
    postgresql.drop_database(name)


def _invoke(*args: str) -> Result:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result


def test_runs_export_the_json_fields_with_iso_times(database_url: str) -> None:
    (want,) = json.loads(_invoke("runs", "--db", database_url, "--json").stdout)
    (line,) = _invoke("runs", "--db", database_url, "--format", "jsonl").stdout.splitlines()
    row = json.loads(line)
    assert list(row) == list(want)
    assert row["started_at"] == _iso(want["started_at"]) == _iso(T0)
    assert {k: v for k, v in row.items() if not k.endswith("_at")} == {
        k: v for k, v in want.items() if not k.endswith("_at")
    }
    reader = csv.DictReader(
        io.StringIO(_invoke("runs", "--db", database_url, "--format", "csv").stdout)
    )
    (parsed,) = list(reader)
    assert reader.fieldnames == list(want)
    assert (parsed["run_id"], parsed["status"], parsed["ended_at"]) == (
        RUN, "Succeeded", _iso(T0 + 3)
    )  # fmt: skip
    assert json.loads(parsed["tasks"]) == {"COMPLETED": 1}


def test_logs_export_one_row_a_line(database_url: str) -> None:
    text = _invoke("logs", RUN[:8], "--db", database_url, "--format", "csv").stdout
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [(row["n"], row["message"], row["ts"]) for row in rows] == [
        ("1", "m, 1", _iso(T0 + 1)),
        ("2", "m, 2", _iso(T0 + 2)),
    ]
    jsonl = _invoke("logs", RUN[:8], "--db", database_url, "--format", "jsonl").stdout
    assert jsonl == _invoke("logs", RUN[:8], "--db", database_url, "--json").stdout
