"""The dashboard reads the task logs of the runs its pages have open, and only theirs: the
open run's last lines, a task's or every task's, bounded, and released with the run."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.dashboard import DashboardHub, DashboardSettings, create_app
from cascade.interfaces.logs import DroppedLines, LogBatch, LogLine, logs_topic

TS = "2026-01-01T00:00:00+00:00"


def _batch(run_id: str, seq: int, *lines: LogLine, **fields: Any) -> LogBatch:
    return LogBatch(run_id=run_id, org_id="o", project_id="p", source="host-1", seq=seq, ts=TS,
                    lines=list(lines), **fields)  # fmt: skip


def _line(n: int, task: str = "load", message: str = "") -> LogLine:
    return LogLine(ts=TS, task_id=f"{task}-1", task_name=task, message=message or f"{task} {n}",
                   n=n)  # fmt: skip


@pytest.fixture
async def publish(broker: InMemoryBroker) -> AsyncIterator[Callable[..., Any]]:
    """Publishes log batches as an engine does, and waits until they are delivered."""
    engine = InMemoryConnector(broker, presence=False)
    await engine.connect()

    async def send(batch: LogBatch) -> None:
        await engine.publish(logs_topic("o", "p", batch.run_id), batch, qos=0)
        await broker.idle()

    yield send
    await engine.disconnect()


@pytest.fixture
async def lingering(broker: InMemoryBroker) -> AsyncIterator[DashboardHub]:
    """A hub that releases a closed run's subscriptions 0.2 s after its last page closed."""
    hub = DashboardHub(InMemoryConnector(broker, presence=False), timeout=2.0, release_after=0.2)
    await hub.start()
    yield hub
    await hub.stop()


async def _state(hub: DashboardHub, **params: str) -> dict[str, Any]:
    transport = httpx.ASGITransport(app=create_app(hub, DashboardSettings(token=None)))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
        response = await http.get("/api/state", params={"limit": "25", **params})
    assert response.status_code == 200
    answer: dict[str, Any] = response.json()
    return answer


async def _until(condition: Callable[[], bool]) -> None:
    async def wait() -> None:
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.01)

    await asyncio.wait_for(wait(), 5)


async def test_an_open_runs_lines_are_read_and_a_tasks_shown(
    lingering: DashboardHub, publish: Callable[..., Any]
) -> None:
    hub = lingering
    hub.telemetry.open("run-1")
    await asyncio.wait_for(hub.telemetry.settled.wait(), 5)
    assert hub.telemetry.logged == {"run-1"}
    said = DroppedLines(task_id="load-1", task_name="load", lines=312)
    await publish(_batch("run-1", 1, _line(1), _line(1, "send"), _line(314), dropped=[said]))
    await publish(_batch("run-2", 1, _line(1)))  # no page has it open: not read
    logs = (await _state(hub, run="run-1", task="load"))["logs"]
    assert [line["message"] for line in logs["lines"]] == ["load 1", "load 314"]
    assert (logs["dropped"], logs["missed"], logs["let_go"]) == (312, 0, 0)
    every = (await _state(hub, run="run-1"))["logs"]
    assert [line["task_name"] for line in every["lines"]] == ["load", "send", "load"]
    assert set(hub.model.logs.runs) == {"run-1"}
    hub.telemetry.close("run-1")


async def test_a_busy_runs_lines_are_bounded_per_event(
    lingering: DashboardHub, publish: Callable[..., Any]
) -> None:
    hub = lingering
    hub.telemetry.open("run-1")
    await asyncio.wait_for(hub.telemetry.settled.wait(), 5)
    for seq in range(1, 11):  # 10 batches of 100 lines of 1 KB: 1 MB in all
        lines = [_line(100 * seq + n, message="x" * 1000) for n in range(100)]
        await publish(_batch("run-1", seq, *lines))
    logs = (await _state(hub, run="run-1"))["logs"]
    size = len(json.dumps(logs["lines"]))
    assert 30_000 < size < 45_000  # the last lines that fit in one event
    assert logs["lines"][-1]["n"] == 1099
    hub.telemetry.close("run-1")


async def test_a_closed_runs_logs_are_released_and_forgotten(
    lingering: DashboardHub, publish: Callable[..., Any]
) -> None:
    hub = lingering
    hub.telemetry.open("run-1")
    await asyncio.wait_for(hub.telemetry.settled.wait(), 5)
    await publish(_batch("run-1", 1, _line(1)))
    assert "run-1" in hub.model.logs.runs
    hub.telemetry.close("run-1")
    await _until(lambda: not hub.telemetry.logged)
    assert hub.model.logs.runs == {}
    await publish(_batch("run-1", 2, _line(2)))
    assert hub.model.logs.runs == {}
