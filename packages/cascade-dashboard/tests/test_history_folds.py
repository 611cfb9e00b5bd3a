"""The dashboard's history folds a map, and a loop as a map: a run's pages list the map's (the
loop's) row and not its items (iterations), the first page counts each one's items by state
(``maps``; ``loops``, with the latest iteration) and lists the items that failed among its
failures, and ``map=TASK_ID`` pages that map's items or that loop's iterations (its row
opened)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
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
MAP_RUN = "a9a90001"
ITEMS = RUN_PAGE + 20  # more than a page of items
FAILED = 503
LOOP_RUN = "a9a90002"
ITERATIONS = RUN_PAGE + 20  # more than a page: counter-2@2 on, the last failing
LAST = ITERATIONS + 1


def _event(run: str, ts: float, body: dict[str, Any]) -> Received:
    envelope = decode_envelope(
        {
            "ts": datetime.fromtimestamp(ts, timezone.utc).isoformat(),
            "run_id": run,
            "org_id": "acme",
            "project_id": "shop",
            "source": "host-1",
            "body": body,
        }
    )
    return Received(f"cascade/telemetry/acme/shop/{run}/events", envelope, ts)


def _task(
    run: str, task_id: str, state: str, ts: float, name: str | None = None, error: str = ""
) -> Received:
    """A task's state, its name ``task_id``'s before its first ``-`` unless given."""
    body = {
        "type": "TaskStateEvent",
        "task_id": task_id,
        "task_name": name or task_id.split("-")[0],
    }
    return _event(run, ts, {**body, "state": state, "error": error})


def _stored(tmp_path: Path, batch: Sequence[Received]) -> Iterator[History]:
    path = tmp_path / "history.sqlite3"
    with History(path, mode="write") as writer:
        writer.store(batch)
    with History(path) as reader:
        yield reader


@pytest.fixture
def mapped(tmp_path: Path) -> Iterator[History]:
    """extract-1 gives ITEMS rows to the map transform-2; item FAILED fails."""
    batch = [
        _event(MAP_RUN, T0, {"type": "LifecycleEvent", "event": "ENGINE_STARTED", "tasks": 2}),
        _task(MAP_RUN, "extract-1", "RUNNING", T0),
        _task(MAP_RUN, "extract-1", "COMPLETED", T0 + 1),
        _task(MAP_RUN, "transform-2", "RUNNING", T0 + 1),
    ]
    for index in range(ITEMS):
        item = f"transform-2[{index}]"
        batch.append(_task(MAP_RUN, item, "RUNNING", T0 + 1))
        if index == FAILED:
            batch.append(_task(MAP_RUN, item, "FAILED", T0 + 2, error="ValueError: bad row"))
        else:
            batch.append(_task(MAP_RUN, item, "COMPLETED", T0 + 2))
    batch.append(_task(MAP_RUN, "transform-2", "SKIPPED", T0 + 3, error="upstream task failed"))
    yield from _stored(tmp_path, batch)


@pytest.fixture
def looped(tmp_path: Path) -> Iterator[History]:
    """counter-2 loops ITERATIONS times, its last iteration failing; mail@home-3 has an '@'."""
    batch = [
        _event(LOOP_RUN, T0, {"type": "LifecycleEvent", "event": "ENGINE_STARTED", "tasks": 2}),
        _task(LOOP_RUN, "counter-2", "RUNNING", T0),
        _task(LOOP_RUN, "mail@home-3", "COMPLETED", T0, name="mail@home"),
    ]
    for number in range(2, LAST + 1):
        at = T0 + number / (LAST + 1)
        batch.append(_task(LOOP_RUN, f"counter-2@{number}", "RUNNING", at))
        if number < LAST:
            batch.append(_task(LOOP_RUN, f"counter-2@{number}", "COMPLETED", at))
    batch += [
        _task(LOOP_RUN, f"counter-2@{LAST}", "FAILED", T0 + 2, error="ValueError: too far"),
        _task(LOOP_RUN, "counter-2", "FAILED", T0 + 2, error="ValueError: too far"),
    ]
    yield from _stored(tmp_path, batch)


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
        first = await http.get("/api/history/run", params={"id": MAP_RUN, "map": "transform-2"})
        assert first.status_code == 200
        page = first.json()
        cursor = page["next_after"]
        assert cursor is not None
        second = await http.get(
            "/api/history/run", params={"id": MAP_RUN, "map": "transform-2", "after": cursor}
        )
    rest = second.json()
    assert "maps" not in page
    assert page["counts"] is None
    assert len(page["run"]["tasks"]) == RUN_PAGE
    assert rest["next_after"] is None
    ids = [t["task_id"] for t in page["run"]["tasks"] + rest["run"]["tasks"]]
    assert sorted(ids) == sorted(f"transform-2[{index}]" for index in range(ITEMS))


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
        first = await http.get("/api/history/run", params={"id": LOOP_RUN, "map": "counter-2"})
        page = first.json()
        cursor = page["next_after"]
        assert cursor is not None
        second = await http.get(
            "/api/history/run", params={"id": LOOP_RUN, "map": "counter-2", "after": cursor}
        )
    rest = second.json()
    assert "loops" not in page
    assert len(page["run"]["tasks"]) == RUN_PAGE
    assert rest["next_after"] is None
    ids = [t["task_id"] for t in page["run"]["tasks"] + rest["run"]["tasks"]]
    assert sorted(ids) == sorted(f"counter-2@{number}" for number in range(2, LAST + 1))
