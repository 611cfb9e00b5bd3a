"""The dashboard's history answers bounded, off the event loop, and the operator first:
a run's tasks in pages with a cursor, list limits capped, queries and their JSON in worker
threads (the live page answers meanwhile; who waits for them: test_dashboard_fair_share).
Slow histories are made slow with events, never sleeps. And the timeline segments
it draws from recorded states follow the live timeline's rules."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest

from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.dashboard import DashboardHub, DashboardSettings, create_app
from cascade.dashboard.history import MAX_LIMIT, RUN_PAGE
from cascade.dashboard.history import _history_api as history_api
from cascade.history import History, Received, RunSummary, StateChange
from cascade.interfaces import decode_envelope

T0 = datetime.now(timezone.utc).timestamp() - 3600
TOKEN = "s3cret-token"
HOLDER = {"Authorization": f"Bearer {TOKEN}"}


def _event(run_id: str, ts: float, body: dict[str, Any]) -> Received:
    envelope = decode_envelope(
        {
            "ts": datetime.fromtimestamp(ts, timezone.utc).isoformat(),
            "run_id": run_id,
            "org_id": "acme",
            "project_id": "shop",
            "source": "host-1",
            "body": body,
        }
    )
    return Received(f"cascade/telemetry/acme/shop/{run_id}/events", envelope, ts)


def _task(run_id: str, task_id: str, state: str, ts: float) -> Received:
    name = f"t{int(task_id[-1]) % 2}"  # two task names
    body = {"type": "TaskStateEvent", "task_id": task_id, "task_name": name, "state": state}
    return _event(run_id, ts, body)


def _client(history: History | None) -> httpx.AsyncClient:
    hub = DashboardHub(InMemoryConnector(InMemoryBroker(), presence=False))
    transport = httpx.ASGITransport(
        app=create_app(hub, DashboardSettings(token=TOKEN, history=history))
    )
    return httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1", timeout=30)


@pytest.fixture
def big_run(tmp_path: Path) -> Iterator[History]:
    """A run of RUN_PAGE + 3 tasks, two states each; one of them failed."""
    path = tmp_path / "history.sqlite3"
    start = {"type": "LifecycleEvent", "event": "ENGINE_STARTED", "tasks": RUN_PAGE + 3}
    batch = [_event("b16b0001", T0, start)]
    for index in range(RUN_PAGE + 3):
        batch.append(_task("b16b0001", f"task-{index:05d}", "RUNNING", T0 + index))
        end = "FAILED" if index == RUN_PAGE + 1 else "COMPLETED"
        batch.append(_task("b16b0001", f"task-{index:05d}", end, T0 + index + 0.5))
    with History(path, mode="write") as writer:
        writer.store(batch)
    with History(path) as reader:
        yield reader


async def test_a_runs_detail_is_a_page_with_a_cursor_to_the_next(big_run: History) -> None:
    async with _client(big_run) as http:
        first = await http.get("/api/history/run", params={"id": "b16b"})
        assert first.status_code == 200
        page = first.json()
        cursor = page["next_after"]
        second = await http.get("/api/history/run", params={"id": "b16b0001", "after": cursor})
    assert len(page["run"]["tasks"]) == RUN_PAGE
    assert page["counts"] == {"COMPLETED": RUN_PAGE + 2, "FAILED": 1}
    assert page["run"]["failures"] == []
    rest = second.json()
    assert rest["next_after"] is None
    assert rest["counts"] is None  # the first page's: not counted again
    assert len(rest["run"]["tasks"]) == 3
    assert [f["task_id"] for f in rest["run"]["failures"]] == [f"task-{RUN_PAGE + 1:05d}"]
    ids = [t["task_id"] for t in page["run"]["tasks"] + rest["run"]["tasks"]]
    assert sorted(ids) == [f"task-{index:05d}" for index in range(RUN_PAGE + 3)]


async def test_a_limit_beyond_the_cap_is_a_400_saying_so(big_run: History) -> None:
    async with _client(big_run) as http:
        over = await http.get("/api/history/runs", params={"limit": str(MAX_LIMIT + 1)})
        at_cap = await http.get("/api/history/runs", params={"limit": str(MAX_LIMIT)})
        audit = await http.get("/api/history/audit", params={"limit": "100000"})
    assert over.status_code == audit.status_code == 400
    assert over.json() == {"error": f"limit must be a whole number from 1 to {MAX_LIMIT}"}
    assert at_cap.status_code == 200


class _Blocking(dict):  # type: ignore[type-arg]
    """A JSON object whose encoding waits until ``release`` (JSON encoders ask a dict
    subclass for its items): where it is encoded is where the wait happens."""

    def __init__(self, entered: threading.Event, release: threading.Event) -> None:
        super().__init__(run_id="slow")
        self.entered, self.release = entered, release
        self.timed_out = False

    def items(self) -> Any:
        self.entered.set()
        self.timed_out = not self.release.wait(10)
        return super().items()


class _SlowSummary:
    def __init__(self, body: _Blocking) -> None:
        self.body = body

    def to_json(self) -> _Blocking:
        return self.body


@pytest.fixture
def recorded(tmp_path: Path) -> Path:
    path = tmp_path / "history.sqlite3"
    History(path, mode="write").close()
    return path


async def test_the_live_page_answers_while_a_big_reply_is_encoded(recorded: Path) -> None:
    """The JSON of a history reply is made in a worker thread: while it is, /api/state
    answers (on the event loop, it would wait for the encoding)."""
    entered, release = threading.Event(), threading.Event()
    body = _Blocking(entered, release)

    class _BigReply(History):
        def runs(self, **filters: Any) -> list[RunSummary]:
            return [_SlowSummary(body)]  # type: ignore[list-item]

    with _BigReply(recorded) as history:
        async with _client(history) as http:
            reply = asyncio.ensure_future(http.get("/api/history/runs"))
            assert await asyncio.to_thread(entered.wait, 10)
            state = await http.get("/api/state")
            answered_while_encoding = not release.is_set() and not body.timed_out
            release.set()
            assert (await reply).json() == {"runs": [{"run_id": "slow"}]}
    assert state.status_code == 200
    assert answered_while_encoding
    assert not body.timed_out


async def test_the_task_list_is_cut_at_its_limit_and_says_so(big_run: History) -> None:
    """One row per task name: as many as engines sent names, so at most ``limit``."""
    async with _client(big_run) as http:
        one = await http.get("/api/history/tasks", params={"limit": "1", "since": "all"})
        every = await http.get("/api/history/tasks", params={"since": "all"})
        over = await http.get("/api/history/tasks", params={"limit": str(MAX_LIMIT + 1)})
    assert [t["task_name"] for t in one.json()["tasks"]] == ["t0"]
    assert one.json()["more"] is True
    assert [t["task_name"] for t in every.json()["tasks"]] == ["t0", "t1"]
    assert every.json()["more"] is False
    assert over.status_code == 400


@pytest.mark.parametrize(
    ("states", "drawn"),
    [
        ([("SKIPPED", 1)], [("SKIPPED", 1, 1, "SKIPPED")]),
        ([("COMPLETED", 4)], [("COMPLETED", 4, 4, "COMPLETED")]),  # only its end was seen
        (
            [("BLOCKED", 1), ("RUNNING", 2)],
            [("BLOCKED", 1, 2, "RUNNING"), ("RUNNING", 2, None, None)],
        ),
    ],
)
def test_segments_follow_the_live_timelines_rules(
    states: list[tuple[str, float]], drawn: list[tuple[str, float, float | None, str | None]]
) -> None:
    """A skip is a point; a task first seen finished is one; a running one stays open."""
    changes = [StateChange(state, ts, 1, 0.0, "") for state, ts in states]
    assert [
        (s["state"], s["start"], s["end"], s["outcome"]) for s in history_api.segments(changes)
    ] == drawn
