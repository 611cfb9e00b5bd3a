"""A run opened on a dashboard with a history shows the lines its tasks logged before: the
history's last ones, merged with those heard live, in order, none twice; without a history,
the log panel says why they are missing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest

from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector, received
from cascade.dashboard import DashboardHub, DashboardSettings, create_app
from cascade.history import History, LogCount, RecordedLogLine, decode_message
from cascade.interfaces.logs import LogBatch, LogLine, logs_topic

T0 = datetime.now(timezone.utc).timestamp() - 3600
Recorded = tuple[Sequence[RecordedLogLine], Mapping[str, LogCount]]  # what a backfill reads
RUN = "3a950001"


def _batch(seq: int, *lines: tuple[str, int], run_id: str = RUN) -> LogBatch:
    """Batch ``seq`` of ``run_id``: line ``n`` of each ``(task, n)``, logged at ``T0 + n``."""
    return LogBatch(
        run_id=run_id, org_id="acme", project_id="shop", source="host-1", seq=seq,
        ts=_iso(T0), lines=[LogLine(ts=_iso(T0 + n), task_id=f"{task}-1", task_name=task,
                                    message=f"{task} {n}", n=n) for task, n in lines],
    )  # fmt: skip


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat()


def _store(history: History, logs: LogBatch) -> None:
    """``logs`` stored as `cascade record` stores what it receives."""
    item = decode_message(received(logs_topic("acme", "shop", logs.run_id), logs), received_at=T0)
    assert item is not None
    history.store([item])


@pytest.fixture
def history(tmp_path: Path) -> Iterator[History]:
    """A history holding run RUN's first lines: load 1, 2 and save 3."""
    with History(tmp_path / "history.sqlite3", mode="write") as history:
        _store(history, _batch(1, ("load", 1), ("load", 2)))
        _store(history, _batch(2, ("save", 3)))
        yield history


@pytest.fixture
async def hub(broker: InMemoryBroker) -> AsyncIterator[DashboardHub]:
    hub = DashboardHub(InMemoryConnector(broker, presence=False), timeout=2.0, release_after=5)
    await hub.start()
    yield hub
    await hub.stop()


@pytest.fixture
async def publish(broker: InMemoryBroker) -> AsyncIterator[Callable[[LogBatch], Any]]:
    """Publishes log batches as an engine does, and waits until they are delivered."""
    engine = InMemoryConnector(broker, presence=False)
    await engine.connect()

    async def send(batch: LogBatch) -> None:
        await engine.publish(logs_topic("acme", "shop", batch.run_id), batch, qos=0)
        await broker.idle()

    yield send
    await engine.disconnect()


def _client(hub: DashboardHub, history: History | None) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(
        app=create_app(hub, DashboardSettings(token=None, history=history))
    )
    return httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1", timeout=30)


async def _messages(http: httpx.AsyncClient, run_id: str = RUN) -> list[str]:
    """The open run's lines ``/api/state?run=`` gives (opening it, as a page's look does)."""
    logs = (await http.get("/api/state", params={"run": run_id, "limit": "25"})).json()["logs"]
    return [line["message"] for line in logs["lines"]]


async def _until(condition: Callable[[], bool]) -> None:
    async def wait() -> None:
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.01)

    await asyncio.wait_for(wait(), 5)


async def test_earlier_lines_come_from_the_history_then_live_ones_follow(
    hub: DashboardHub, history: History, publish: Callable[[LogBatch], Any]
) -> None:
    async with _client(hub, history) as http:
        await _messages(http)  # opens the run: its logs subscribed to, its earlier lines read
        await _until(lambda: RUN in hub.model.logs.runs)
        assert await _messages(http) == ["load 1", "load 2", "save 3"]
        # live: a copy of a recorded line (a batch the history also had) and a new one
        await publish(_batch(3, ("save", 3), ("load", 4)))
        assert await _messages(http) == ["load 1", "load 2", "save 3", "load 4"]


async def test_lines_heard_before_the_history_answers_are_merged_in_order_once(
    hub: DashboardHub, history: History, publish: Callable[[LogBatch], Any]
) -> None:
    async with _client(hub, history) as http:
        read = hub.telemetry.backfill
        assert read is not None
        answer = asyncio.Event()

        async def slow(run_id: str, keep: int) -> Recorded:
            await answer.wait()
            return await read(run_id, keep)

        hub.telemetry.backfill = slow
        await _messages(http)
        await asyncio.wait_for(hub.telemetry.settled.wait(), 5)
        await publish(_batch(3, ("save", 3), ("load", 4)))
        _store(history, _batch(3, ("save", 3), ("load", 4)))  # recorded meanwhile too
        assert await _messages(http) == ["save 3", "load 4"]
        seen = hub.model.version
        answer.set()
        await _until(lambda: hub.model.version > seen)
        assert await _messages(http) == ["load 1", "load 2", "save 3", "load 4"]
        await publish(_batch(4, ("load", 4), ("load", 5)))  # a line heard again is skipped
        assert await _messages(http) == ["load 1", "load 2", "save 3", "load 4", "load 5"]


async def test_lines_the_history_lacks_are_said_missed_once(
    hub: DashboardHub, history: History, publish: Callable[[LogBatch], Any]
) -> None:
    """The history has load 1, 2, then load 6 (3-5 lost while no recorder listened), and save
    3 (its task's first two never recorded): the opened run says 5 lines missed, and a live
    batch with load 7 says no more."""
    _store(history, _batch(4, ("load", 6)))
    async with _client(hub, history) as http:
        await _messages(http)
        await _until(lambda: RUN in hub.model.logs.runs and hub.model.logs.runs[RUN].missed > 0)
        logs = (await http.get("/api/state", params={"run": RUN, "limit": "25"})).json()["logs"]
        assert (logs["missed"], logs["dropped"]) == (5, 0)
        await publish(_batch(5, ("load", 7)))
        logs = (await http.get("/api/state", params={"run": RUN, "limit": "25"})).json()["logs"]
        assert [line["message"] for line in logs["lines"]][-2:] == ["load 6", "load 7"]
        assert logs["missed"] == 5


async def test_a_run_the_history_has_not_recorded_changes_nothing(
    hub: DashboardHub, history: History, publish: Callable[[LogBatch], Any]
) -> None:
    other = "4b950002"
    async with _client(hub, history) as http:
        assert await _messages(http, other) == []
        await asyncio.wait_for(hub.telemetry.settled.wait(), 5)
        await publish(_batch(1, ("load", 7), run_id=other))
        await asyncio.sleep(0.05)  # the history's answer (none) came meanwhile
        assert await _messages(http, other) == ["load 7"]
        assert hub.model.logs.runs[other].let_go == 0


async def test_the_last_lines_are_kept_up_to_the_bound(hub: DashboardHub, history: History) -> None:
    _store(history, _batch(3, ("load", 4), ("load", 5)))
    hub.model.logs.keep_lines = 3  # the history is read 3 lines at a time, its last 3 kept
    async with _client(hub, history) as http:
        await _messages(http)
        await _until(lambda: RUN in hub.model.logs.runs)
        logs = (await http.get("/api/state", params={"run": RUN, "limit": "25"})).json()["logs"]
    assert [line["message"] for line in logs["lines"]] == ["save 3", "load 4", "load 5"]
    assert [line["index"] for line in logs["lines"]] == [1, 2, 3]  # the lines it has
    seen = hub.model.version
    assert not hub.model.seed_logs(RUN, history.log_lines(RUN))  # nothing new: no change
    assert not hub.model.seed_logs("5c950003", [])
    assert hub.model.version == seen


async def test_without_a_history_the_log_panel_says_why_earlier_lines_are_missing(
    hub: DashboardHub,
) -> None:
    async with _client(hub, None) as http:
        assert (await http.get("/api/history")).json()["history"] is False
        page = (await http.get("/")).text
        script = (await http.get("/static/runpage.js")).text
    assert page.count("lines logged before the run was opened are not shown") == 1
    assert (
        '<small id="rp-logs-earlier" class="note" hidden>lines logged before the run was opened '
        "are not shown (no history: run <code>cascade record</code> and give the dashboard --db)"
    ) in page
    assert '$("rp-logs-earlier").hidden = !(liveRun && historyKnown === false);' in script
