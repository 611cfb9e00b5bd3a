"""Holds and decisions on a real broker (the family's: mosquitto or RabbitMQ): a real engine
holds two failed tasks of ``report(load(4))`` + ``side(1)``; the dashboard lists them and its
decide endpoint retries one (once: a second retry of the same hold is refused, saying who
decided) and skips the other; the run succeeds with the report's result; a recorder on the same
broker keeps the holds, each decision the events came of, and the engine's answers (applied
and refused) in the audit."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from cascade.cli.plumbing import BrokerOptions, mqtt_connector
from cascade.connectors.mqtt import MqttConnector
from cascade.dashboard import DashboardHub, DashboardSettings, create_app
from cascade.history import History, Recorder
from cascade.runtime import DependencyMissingError, Engine, RunStarted, TaskHeld, task
from cascade.runtime.testing import EventRecorder
from cascade.testkit import BrokerEndpoint

TOKEN = "integration-token"
WAIT = 20.0


@pytest.fixture
async def hub(mqtt_broker: BrokerEndpoint) -> AsyncIterator[DashboardHub]:
    options = BrokerOptions(host=mqtt_broker.host, port=mqtt_broker.port, timeout=5.0)
    hub = DashboardHub(mqtt_connector(options), timeout=5.0)
    await hub.start()
    yield hub
    await hub.stop()


async def until(check: Callable[[], Any], what: str) -> Any:
    """``check()``'s first truthy value (looked at as the hub's model moves; no event says
    when a broker delivered)."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"not within {WAIT:g} s: {what}")


async def test_the_dashboard_decides_on_a_real_runs_holds_and_the_history_keeps_them(
    hub: DashboardHub, mqtt_broker: BrokerEndpoint, scope_name: str, tmp_path: Path
) -> None:
    fixed = asyncio.Event()

    @task(name=f"load_{scope_name}", on_failure="hold")
    async def load(n: int) -> int:
        if not fixed.is_set():
            raise ConnectionError("the API is down")
        return n * 10

    @task(name=f"report_{scope_name}")
    async def report(rows: int) -> str:
        return f"{rows} rows"

    @task(name=f"side_{scope_name}", on_failure="hold")
    async def side(n: int) -> int:
        raise ValueError(f"side {n} is broken")

    engine = Engine(MqttConnector(mqtt_broker.host, mqtt_broker.port, source_id="it-holder"),
                    heartbeat_interval=0.5)  # fmt: skip
    events = EventRecorder()
    engine.events.subscribe(events)
    history = History(f"sqlite:///{tmp_path / 'h.sqlite3'}", mode="write")
    listening = MqttConnector(mqtt_broker.host, mqtt_broker.port, presence=False)
    transport = httpx.ASGITransport(app=create_app(hub, DashboardSettings(token=TOKEN)))
    async with (
        listening,
        Recorder(listening, history) as recorder,
        httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1",
                          headers={"Authorization": f"Bearer {TOKEN}"}) as http,
    ):  # fmt: skip
        run = asyncio.create_task(engine.run([report(load(4)), side(1)]))
        await until(lambda: len([e for e in events.events if isinstance(e, TaskHeld)]) == 2,
                    "two tasks held")  # fmt: skip
        (started,) = [e for e in events.events if isinstance(e, RunStarted)]
        run_id = started.run_id

        def held() -> list[dict[str, Any]]:
            listed = hub.model.held.listed()["tasks"]
            return [t for t in listed if t["run_id"] == run_id]

        shown = await until(lambda: len(held()) == 2 and held(), "the dashboard lists both")
        by_name = {t["name"]: t for t in shown}
        load_id = by_name[f"load_{scope_name}"]["task_id"]
        assert by_name[f"side_{scope_name}"]["error"] == "ValueError: side 1 is broken"
        assert by_name[f"load_{scope_name}"]["attempt"] == 1

        fixed.set()
        retry = {"decision": "retry", "attempt": 1, "reason": "API back"}
        path = f"/api/runs/{run_id}/tasks/{load_id}/decide"
        first, second = await asyncio.gather(http.post(path, json=retry),
                                             http.post(path, json=retry))  # fmt: skip
        assert sorted([first.status_code, second.status_code]) == [200, 409]
        refused = first if first.status_code == 409 else second
        assert "already decided: retry by" in refused.json()["error"]
        skip = {"decision": "skip", "reason": "not today"}
        skipped = await http.post(f"/api/runs/{run_id}/tasks/side_{scope_name}/decide", json=skip)
        assert skipped.status_code == 200, skipped.text
        assert skipped.json()["decided"]["outcome"] == "applied"
        with pytest.raises(DependencyMissingError, match=r"<Target Output>\[1\]"):
            await asyncio.wait_for(run, WAIT)  # side skipped: the run succeeded, side has none
        await until(lambda: not held(), "the list emptied")

        def recorded() -> Any:
            detail = history.run(run_id)
            return detail if detail is not None and detail.run.status == "Succeeded" else None

        async def recorded_all() -> Any:
            await recorder.flush(timeout=5)
            return recorded() and len(history.decisions(run_id)) == 3

        deadline = time.monotonic() + WAIT
        while not await recorded_all():
            assert time.monotonic() < deadline, "the history did not get the run and answers"
            await asyncio.sleep(0.05)
    try:
        answers = history.decisions(run_id)
        assert sorted((a.decision, a.outcome) for a in answers) == [
            ("retry", "already_decided"), ("retry", "applied"), ("skip", "applied"),
        ]  # fmt: skip
        assert {a.issued_by for a in answers} == {hub.operator}  # the token's holder
        assert {a.reason for a in answers} == {"API back", "not today"}
        detail = history.run(run_id)
        assert detail is not None
        tasks = {t.task_name: t for t in detail.tasks}
        load_task = tasks[f"load_{scope_name}"]
        assert [c.state for c in load_task.states][:2] == ["RUNNING", "HELD"]
        first_attempt = load_task.attempt_list[0]
        assert (first_attempt.state, first_attempt.error) == (
            "HELD",
            "ConnectionError: the API is down",
        )
        assert first_attempt.decided is not None
        assert first_attempt.decided["decision"] == "retry"
        assert first_attempt.decided["reason"] == "API back"
        assert first_attempt.traceback is not None
        assert tasks[f"side_{scope_name}"].state == "SKIPPED"
        assert tasks[f"side_{scope_name}"].decisions[0]["decision"] == "skip"
        decided = [e for e in history.audit() if e.action == "decided" and e.run_id == run_id]
        assert len(decided) == 3
    finally:
        history.close()
