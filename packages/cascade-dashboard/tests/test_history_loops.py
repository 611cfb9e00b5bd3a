"""The dashboard's history folds a loop as a map: a run's pages list the loop's row and not its
iterations, the first page counts each loop's iterations by state with its latest (``loops``)
and lists the iteration that failed among its failures, and ``map=TASK_ID`` pages that loop's
iterations (its row opened)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest

from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.dashboard import DashboardHub, DashboardSettings, create_app
from cascade.dashboard.history import RUN_PAGE
from cascade.history import History, Received
from cascade.interfaces import decode_envelope

T0 = datetime.now(timezone.utc).timestamp() - 3600
TOKEN = "s3cret-token"
RUN = "a9a90002"
ITERATIONS = RUN_PAGE + 20  # more than a page: counter-2@2 on, the last failing
LAST = ITERATIONS + 1


def _event(ts: float, body: dict[str, Any]) -> Received:
    envelope = decode_envelope(
        {
            "ts": datetime.fromtimestamp(ts, timezone.utc).isoformat(),
            "run_id": RUN,
            "org_id": "acme",
            "project_id": "shop",
            "source": "host-1",
            "body": body,
        }
    )
    return Received(f"cascade/telemetry/acme/shop/{RUN}/events", envelope, ts)


def _task(task_id: str, state: str, ts: float, name: str = "counter", error: str = "") -> Received:
    body = {"type": "TaskStateEvent", "task_id": task_id, "task_name": name}
    return _event(ts, {**body, "state": state, "error": error})


@pytest.fixture
def looped(tmp_path: Path) -> Iterator[History]:
    """counter-2 loops ITERATIONS times, its last iteration failing; mail@home-3 has an '@'."""
    path = tmp_path / "history.sqlite3"
    batch = [
        _event(T0, {"type": "LifecycleEvent", "event": "ENGINE_STARTED", "tasks": 2}),
        _task("counter-2", "RUNNING", T0),
        _task("mail@home-3", "COMPLETED", T0, name="mail@home"),
    ]
    for number in range(2, LAST + 1):
        at = T0 + number / (LAST + 1)
        batch.append(_task(f"counter-2@{number}", "RUNNING", at))
        if number < LAST:
            batch.append(_task(f"counter-2@{number}", "COMPLETED", at))
    batch += [
        _task(f"counter-2@{LAST}", "FAILED", T0 + 2, error="ValueError: too far"),
        _task("counter-2", "FAILED", T0 + 2, error="ValueError: too far"),
    ]
    with History(path, mode="write") as writer:
        writer.store(batch)
    with History(path) as reader:
        yield reader


def _client(history: History) -> httpx.AsyncClient:
    hub = DashboardHub(InMemoryConnector(InMemoryBroker(), presence=False))
    transport = httpx.ASGITransport(
        app=create_app(hub, DashboardSettings(token=TOKEN, history=history))
    )
    return httpx.AsyncClient(
        transport=transport,
        base_url="http://127.0.0.1",
        timeout=30,
        headers={"Authorization": f"Bearer {TOKEN}"},
    )


async def test_a_runs_page_folds_its_loop_and_counts_its_iterations(looped: History) -> None:
    async with _client(looped) as http:
        reply = await http.get("/api/history/run", params={"id": "a9a90002"})
    assert reply.status_code == 200
    page = reply.json()
    assert sorted(t["task_id"] for t in page["run"]["tasks"]) == ["counter-2", "mail@home-3"]
    assert page["next_after"] is None
    assert page["loops"] == [
        {
            "task_id": "counter-2",
            "task_name": "counter",
            "iterations": ITERATIONS,
            "counts": {"COMPLETED": ITERATIONS - 1, "FAILED": 1},
            "latest": f"counter-2@{LAST}",
            "latest_state": "FAILED",
        }
    ]
    assert page["maps"] == []
    failures = sorted(f["task_id"] for f in page["run"]["failures"])
    assert failures == ["counter-2", f"counter-2@{LAST}"]


async def test_a_loops_iterations_come_a_page_at_a_time(looped: History) -> None:
    async with _client(looped) as http:
        first = await http.get("/api/history/run", params={"id": RUN, "map": "counter-2"})
        page = first.json()
        cursor = page["next_after"]
        assert cursor is not None
        second = await http.get(
            "/api/history/run", params={"id": RUN, "map": "counter-2", "after": cursor}
        )
    rest = second.json()
    assert "loops" not in page
    assert len(page["run"]["tasks"]) == RUN_PAGE
    assert rest["next_after"] is None
    ids = [t["task_id"] for t in page["run"]["tasks"] + rest["run"]["tasks"]]
    assert sorted(ids) == sorted(f"counter-2@{number}" for number in range(2, LAST + 1))
