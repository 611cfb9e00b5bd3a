"""Each task's final state agrees across every view, end to end on a real broker: a real engine
runs small workflows (a map, a failed task and what it skips, a condition that is false) while
a recorder writes the history; what its own events say of each task is what the dashboard's
live view (``/api/state?run=``), its history (``/api/history/run``, a map's items included) and
``cascade run --json`` say, with the engine online and once it went offline."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from rich.console import Console
from typer.testing import CliRunner

from cascade.cli import app as cli_app
from cascade.cli.plumbing import BrokerOptions, CliContext, mqtt_connector
from cascade.connectors.mqtt import MqttConnector
from cascade.dashboard import DashboardHub, DashboardSettings, create_app
from cascade.history import History, Recorder
from cascade.runtime import (
    Engine,
    RunStarted,
    TaskCancelled,
    TaskCompleted,
    TaskEvent,
    TaskFailed,
    TaskFailedError,
    TaskSkipped,
    task,
)
from cascade.runtime.testing import EventRecorder
from cascade.testkit import BrokerEndpoint

WAIT = 20.0
_FINAL = {TaskCompleted: "COMPLETED", TaskFailed: "FAILED", TaskSkipped: "SKIPPED",
          TaskCancelled: "CANCELLED"}  # fmt: skip


@pytest.fixture
async def hub(mqtt_broker: BrokerEndpoint) -> AsyncIterator[DashboardHub]:
    options = BrokerOptions(host=mqtt_broker.host, port=mqtt_broker.port, timeout=5.0)
    hub = DashboardHub(mqtt_connector(options), timeout=5.0)
    await hub.start()
    yield hub
    await hub.stop()


def engine_said(events: EventRecorder, run_id: str) -> dict[str, str]:
    """Each task's last final state, as the engine's own events say it."""
    said: dict[str, str] = {}
    for event in events.events:
        if isinstance(event, TaskEvent) and event.run_id == run_id:
            state = next((s for kind, s in _FINAL.items() if isinstance(event, kind)), None)
            if state is not None:
                said[event.task_id] = state
    return said


async def live_said(http: httpx.AsyncClient, run_id: str) -> dict[str, str]:
    answer = await http.get("/api/state", params={"run": run_id})
    assert answer.status_code == 200, answer.text
    return {t["task_id"]: t["state"] for t in answer.json()["run"]["tasks"]}


async def history_said(http: httpx.AsyncClient, run_id: str) -> dict[str, str]:
    """The run page's history: its tasks, and each map's items, page by page."""
    said: dict[str, str] = {}

    async def pages(**params: str) -> dict[str, Any]:
        first: dict[str, Any] | None = None
        after: str | None = None
        while True:
            asked = {"id": run_id, **params, **({"after": after} if after else {})}
            answer = await http.get("/api/history/run", params=asked)
            assert answer.status_code == 200, answer.text
            body = answer.json()
            first = first or body
            said.update({t["task_id"]: t["state"] for t in body["run"]["tasks"]})
            after = body["next_after"]
            if after is None:
                return first

    first = await pages()
    for counted in first.get("maps") or []:
        await pages(map=counted["task_id"])
    return said


def cli_said(db: Path, run_id: str) -> dict[str, str]:
    result = CliRunner().invoke(cli_app, ["run", run_id, "--db", str(db), "--json"],
                                obj=CliContext(console=Console(width=200)))  # fmt: skip
    assert result.exit_code == 0, result.output
    return {t["task_id"]: t["state"] for t in json.loads(result.output)["tasks"]}


async def test_each_tasks_final_state_agrees_across_events_live_view_history_and_cli(
    hub: DashboardHub, mqtt_broker: BrokerEndpoint, scope_name: str, tmp_path: Path
) -> None:
    @task(name=f"extract_{scope_name}")
    def extract() -> list[int]:
        return [1, 2, 3, 4]

    @task(name=f"double_{scope_name}")
    def double(row: int) -> int:
        return row * 2

    @task(name=f"total_{scope_name}")
    def total(rows: list[int]) -> int:
        return sum(rows)

    @task(name=f"broken_{scope_name}")
    def broken() -> int:
        raise ValueError("broken on purpose")

    @task(name=f"after_{scope_name}")
    def after(value: int) -> int:
        return value

    @task(name=f"check_{scope_name}")
    def check() -> bool:
        return False

    @task(name=f"load_{scope_name}")
    def load(value: int) -> int:
        return value

    workflows: list[Callable[[], list[Any]]] = [
        lambda: [total(double.map(row=extract()))],
        lambda: [after(broken()), total(double.map(row=extract()))],
        lambda: [load(total(double.map(row=extract()))).run_if(check())],
    ]
    db = tmp_path / "h.sqlite3"
    history = History(f"sqlite:///{db}", mode="write")
    connector = MqttConnector(mqtt_broker.host, mqtt_broker.port, source_id=f"agree-{scope_name}")
    engine = Engine(connector)
    events = EventRecorder()
    engine.events.subscribe(events)
    listening = MqttConnector(mqtt_broker.host, mqtt_broker.port, presence=False)
    app = create_app(hub, DashboardSettings(history=history))
    transport = httpx.ASGITransport(app=app)
    async with (
        listening,
        Recorder(listening, history) as recorder,
        httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http,
    ):
        await connector.connect()
        run_ids = []
        for workflow in workflows:
            with contextlib.suppress(TaskFailedError):  # the run with a failed task fails
                await engine.run(workflow())
            run_ids.append([e for e in events.events if isinstance(e, RunStarted)][-1].run_id)
        said = {run_id: engine_said(events, run_id) for run_id in run_ids}
        assert {s for run in said.values() for s in run.values()} == {
            "COMPLETED", "FAILED", "SKIPPED",
        }  # fmt: skip

        async def agreed(run_id: str) -> bool:
            await recorder.flush(timeout=5)
            views = [await live_said(http, run_id), await history_said(http, run_id),
                     await asyncio.to_thread(cli_said, db, run_id)]  # fmt: skip
            return all(view == said[run_id] for view in views)

        async def all_agree(when: str) -> None:
            deadline = time.monotonic() + WAIT
            for run_id in run_ids:
                # no event says when the broker delivered, nor when a batch was written
                while not await agreed(run_id):
                    assert time.monotonic() < deadline, (
                        when, run_id, said[run_id], await live_said(http, run_id),
                        await history_said(http, run_id), cli_said(db, run_id),
                    )  # fmt: skip
                    await asyncio.sleep(0.1)

        await all_agree("its engine online")
        await connector.disconnect()
        await all_agree("its engine offline")
