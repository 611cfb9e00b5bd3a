"""The dashboard's history finds runs by what they logged and gives a run's recorded log lines
a page at a time (the page shows them with logs.js, as text)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import httpx
import pytest

from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector, received
from cascade.dashboard import DashboardHub, DashboardSettings, create_app
from cascade.history import History, Received, decode_message
from cascade.interfaces import decode_envelope
from cascade.interfaces.logs import LogBatch, LogLine, logs_topic

T0 = datetime.now(timezone.utc).timestamp() - 3600
RUN = "10950001"


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat()


def _started(run_id: str) -> Received:
    envelope = decode_envelope({
        "ts": _iso(T0), "run_id": run_id, "org_id": "acme", "project_id": "shop",
        "source": "host-1", "body": {"type": "LifecycleEvent", "event": "ENGINE_STARTED"},
    })  # fmt: skip
    return Received(f"cascade/telemetry/acme/shop/{run_id}/events", envelope, T0)


def _logs(run_id: str, seq: int, *messages: tuple[str, str, str]) -> Received:
    logs = LogBatch(
        run_id=run_id, org_id="acme", project_id="shop", source="host-1", seq=seq, ts=_iso(T0),
        lines=[LogLine(ts=_iso(T0 + n), task_id=task, task_name=task, message=message,
                       level=level, n=n)  # type: ignore[arg-type]
               for n, (task, level, message) in enumerate(messages, 1)],
    )  # fmt: skip
    item = decode_message(received(logs_topic("acme", "shop", run_id), logs), received_at=T0)
    assert item is not None
    return item


@pytest.fixture
def history(tmp_path: Path) -> Iterator[History]:
    path = tmp_path / "history.sqlite3"
    with History(path, mode="write") as writer:
        writer.store([
            _started(RUN), _started("20950002"),
            _logs(RUN, 1, ("load", "INFO", "<b>hello</b>"), ("load", "ERROR", "disk full"),
                  ("save", "WARNING", "slow")),
            _logs("20950002", 1, ("load", "INFO", "all fine")),
        ])  # fmt: skip
    with History(path) as reader:
        yield reader


def _client(history: History) -> httpx.AsyncClient:
    hub = DashboardHub(InMemoryConnector(InMemoryBroker(), presence=False))
    transport = httpx.ASGITransport(
        app=create_app(hub, DashboardSettings(token="s3cret-token", history=history))
    )
    return httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1", timeout=30)


async def test_runs_whose_logs_contain_a_text(history: History) -> None:
    async with _client(history) as http:
        found = await http.get("/api/history/runs", params={"logging": "DISK"})
        none = await http.get("/api/history/runs", params={"logging": "nowhere"})
    assert [run["run_id"] for run in found.json()["runs"]] == [RUN]
    assert none.json() == {"runs": []}


async def test_a_runs_lines_a_page_at_a_time(history: History) -> None:
    path = f"/api/history/runs/{RUN}/logs"
    async with _client(history) as http:
        first = (await http.get(path, params={"limit": "2"})).json()
        rest = (await http.get(path, params={"after": str(first["next_after"])})).json()
        errors = (await http.get(path, params={"level": "warning", "task": "load"})).json()
        bad = await http.get(path, params={"level": "loud"})
    assert [line["message"] for line in first["lines"]] == ["<b>hello</b>", "disk full"]
    assert [line["message"] for line in rest["lines"]] == ["slow"]
    assert rest["next_after"] is None
    assert [line["message"] for line in errors["lines"]] == ["disk full"]
    assert bad.status_code == 400


async def test_the_page_draws_log_lines_as_text(history: History) -> None:
    async with _client(history) as http:
        run_page = (await http.get("/static/runpage.js")).text
        script = (await http.get("/static/logs.js")).text
    assert 'from "./logs.js";' in run_page  # the live tail's lines and a recorded run's
    assert "textContent" in script
    assert "innerHTML" not in script


async def test_the_first_page_says_the_runs_batches_missing(tmp_path: Path) -> None:
    """Batches 1 and 4 stored, 2 and 3 lost (every line of a task among them): the first
    page says 2 batches missing, the page shows it; later pages leave it out."""
    path = tmp_path / "history.sqlite3"
    with History(path, mode="write") as writer:
        writer.store([_started(RUN), _logs(RUN, 1, ("load", "INFO", "one")),
                      _logs(RUN, 4, ("load", "INFO", "four"))])  # fmt: skip
    with History(path) as reader:
        async with _client(reader) as http:
            first = await http.get(f"/api/history/runs/{RUN}/logs", params={"limit": "1"})
            later = await http.get(
                f"/api/history/runs/{RUN}/logs", params={"after": first.json()["next_after"]}
            )
            none = (await http.get("/api/history/runs/30950003/logs")).json()
            script = (await http.get("/static/runpage.js")).text
    assert first.json()["batches"] == {"stored": 2, "last_seq": 4, "missing": 2}
    assert "batches" not in later.json()
    assert none == {"lines": [], "next_after": None, "batches": None}
    assert "batches.missing" in script
