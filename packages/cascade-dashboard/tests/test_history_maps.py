"""The dashboard's history folds a map: a run's pages list the map's row and not its items,
the first page counts each map's items by state (``maps``) and lists the items that failed
among its failures, and ``map=TASK_ID`` pages that map's items (its row opened)."""

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
RUN = "a9a90001"
ITEMS = RUN_PAGE + 20  # more than a page of items
FAILED = 503


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


def _task(task_id: str, state: str, ts: float, error: str = "") -> Received:
    body = {"type": "TaskStateEvent", "task_id": task_id, "task_name": task_id.split("-")[0]}
    return _event(ts, {**body, "state": state, "error": error})


@pytest.fixture
def mapped(tmp_path: Path) -> Iterator[History]:
    """extract-1 gives ITEMS rows to the map transform-2; item FAILED fails."""
    path = tmp_path / "history.sqlite3"
    batch = [
        _event(T0, {"type": "LifecycleEvent", "event": "ENGINE_STARTED", "tasks": 2}),
        _task("extract-1", "RUNNING", T0),
        _task("extract-1", "COMPLETED", T0 + 1),
        _task("transform-2", "RUNNING", T0 + 1),
    ]
    for index in range(ITEMS):
        item = f"transform-2[{index}]"
        batch.append(_task(item, "RUNNING", T0 + 1))
        if index == FAILED:
            batch.append(_task(item, "FAILED", T0 + 2, error="ValueError: bad row"))
        else:
            batch.append(_task(item, "COMPLETED", T0 + 2))
    batch.append(_task("transform-2", "SKIPPED", T0 + 3, error="upstream task failed"))
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


async def test_a_runs_page_folds_its_map_and_counts_its_items(mapped: History) -> None:
    async with _client(mapped) as http:
        reply = await http.get("/api/history/run", params={"id": "a9a9"})
    assert reply.status_code == 200
    page = reply.json()
    assert [t["task_id"] for t in page["run"]["tasks"]] == ["extract-1", "transform-2"]
    assert page["next_after"] is None
    assert page["maps"] == [
        {
            "task_id": "transform-2",
            "task_name": "transform",
            "items": ITEMS,
            "counts": {"COMPLETED": ITEMS - 1, "FAILED": 1},
        }
    ]
    assert page["counts"] == {"COMPLETED": ITEMS, "FAILED": 1, "SKIPPED": 1}
    assert [f["task_id"] for f in page["run"]["failures"]] == [f"transform-2[{FAILED}]"]


async def test_a_maps_items_come_a_page_at_a_time(mapped: History) -> None:
    async with _client(mapped) as http:
        first = await http.get("/api/history/run", params={"id": RUN, "map": "transform-2"})
        assert first.status_code == 200
        page = first.json()
        cursor = page["next_after"]
        assert cursor is not None
        second = await http.get(
            "/api/history/run", params={"id": RUN, "map": "transform-2", "after": cursor}
        )
    rest = second.json()
    assert "maps" not in page
    assert page["counts"] is None
    assert len(page["run"]["tasks"]) == RUN_PAGE
    assert rest["next_after"] is None
    ids = [t["task_id"] for t in page["run"]["tasks"] + rest["run"]["tasks"]]
    assert sorted(ids) == sorted(f"transform-2[{index}]" for index in range(ITEMS))
