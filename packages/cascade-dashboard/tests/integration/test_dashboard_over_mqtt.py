"""The dashboard's API on a real broker: controls are acknowledged and seen by every reader."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from rich.console import Console

from cascade.cli.plumbing import BrokerOptions, mqtt_connector
from cascade.connectors.mqtt import MqttConnector
from cascade.dashboard import DashboardHub, DashboardSettings, create_app, serve_dashboard
from cascade.runtime import (
    Engine,
    RunCancelledError,
    RunStarted,
    TaskBlocked,
    TaskRunning,
    task,
)
from cascade.runtime.testing import EventRecorder
from cascade.testkit import (
    BrokerEndpoint,
    MosquittoBroker,
)

TOKEN = "integration-token"


@pytest.fixture
async def hub(mqtt_broker: BrokerEndpoint) -> AsyncIterator[DashboardHub]:
    options = BrokerOptions(host=mqtt_broker.host, port=mqtt_broker.port, timeout=5.0)
    hub = DashboardHub(mqtt_connector(options), timeout=5.0)
    await hub.start()
    yield hub
    await hub.stop()


def client(hub: DashboardHub) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(hub, DashboardSettings(token=TOKEN))),
        base_url="http://127.0.0.1",
        headers={"Authorization": f"Bearer {TOKEN}"},
    )


async def test_pause_from_the_api_holds_an_engine_until_cleared(
    hub: DashboardHub, mqtt_broker: BrokerEndpoint, scope_name: str
) -> None:
    """POST pause (acked by the broker), an engine starting afterwards holds the task; DELETE."""
    ran = asyncio.Event()

    @task(name=scope_name)
    async def held() -> str:
        ran.set()
        return "ok"

    async with client(hub) as http:
        answer = await http.post(
            "/api/constraints",
            json={"scope": f"task:{scope_name}", "type": "pause", "reason": "db upgrade"},
        )
        assert answer.status_code == 200, answer.text
        engine = Engine(MqttConnector(mqtt_broker.host, mqtt_broker.port))
        blocked = asyncio.Event()
        engine.events.subscribe(lambda e: blocked.set() if isinstance(e, TaskBlocked) else None)
        run = asyncio.create_task(engine.run(held()))
        await asyncio.wait_for(blocked.wait(), 10)
        assert not ran.is_set()
        state = (await http.get("/api/state")).json()
        mine = [c for c in state["constraints"] if scope_name in c["scope"]]
        assert [(c["scope"], c["reason"], c["issued_by"]) for c in mine] == [
            (f"task:{scope_name}", "db upgrade", hub.operator)  # the token has no name
        ]
        cleared = await http.delete("/api/constraints", params={"scope": f"task:{scope_name}"})
        assert f"cascade/constraints/task/{scope_name}/pause" in cleared.json()["cleared"]
        assert await asyncio.wait_for(run, 10) == "ok"


async def test_a_broker_that_does_not_acknowledge_gives_503(
    mosquitto_broker: MosquittoBroker,
    scope_name: str,
) -> None:
    """A frozen broker: the control request fails with 503 and the reason, not a hang or 200."""
    options = BrokerOptions(host=mosquitto_broker.host, port=mosquitto_broker.port, timeout=1.0)
    hub = DashboardHub(mqtt_connector(options), timeout=1.0)
    await hub.start()
    try:
        mosquitto_broker.pause()
        async with client(hub) as http:
            answer = await http.post(
                "/api/constraints", json={"scope": f"task:{scope_name}", "type": "pause"}
            )
        assert answer.status_code == 503
        assert "not yet accepted" in answer.json()["error"]
    finally:
        mosquitto_broker.resume()
        await hub.stop()


async def test_listening_beyond_loopback_warns(mqtt_broker: BrokerEndpoint) -> None:
    """--listen 0.0.0.0:0 serves, and says other machines can reach it."""
    console = Console(record=True, width=200)
    options = BrokerOptions(host=mqtt_broker.host, port=mqtt_broker.port)
    ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    serving = asyncio.create_task(
        serve_dashboard(
            DashboardSettings(
                connector=lambda: mqtt_connector(options),
                host="0.0.0.0",
                port=0,
                say=lambda text: console.print(text, markup=False),
                on_ready=ready.set_result,
            )
        )
    )
    try:
        url = await asyncio.wait_for(ready, 10)
        port = int(url.rstrip("/").rsplit(":", 1)[1])
        async with httpx.AsyncClient() as http:
            page = await http.get(f"http://127.0.0.1:{port}/api/state")
        assert page.json()["controls"] is False
    finally:
        serving.cancel()
        await asyncio.gather(serving, return_exceptions=True)
    text = console.export_text()
    assert "warning: listening on 0.0.0.0, not loopback" in text
    assert "read-only" in text


async def test_cancel_from_the_api_stops_a_real_run(
    hub: DashboardHub, mqtt_broker: BrokerEndpoint, scope_name: str
) -> None:
    """POST /api/runs/ID/cancel reaches the engine over the broker and returns its answer;
    the run raises RunCancelledError and the dashboard then shows it Cancelled."""

    @task(name=scope_name)
    async def forever() -> None:
        await asyncio.Event().wait()

    engine = Engine(MqttConnector(mqtt_broker.host, mqtt_broker.port), heartbeat_interval=None)
    recorder = EventRecorder()
    engine.events.subscribe(recorder)
    run = asyncio.create_task(engine.run(forever()))
    await recorder.until(lambda: scope_name in recorder.names(TaskRunning))
    (started,) = [e for e in recorder.events if isinstance(e, RunStarted)]
    async with client(hub) as http:
        answer = await http.post(
            f"/api/runs/{started.run_id}/cancel", json={"reason": "from the page"}
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["cancelled"]["cancelled"] == [
            {
                "task_id": answer.json()["cancelled"]["cancelled"][0]["task_id"],
                "task_name": scope_name,
            }
        ]
        with pytest.raises(RunCancelledError, match=f"by {hub.operator}: from the page"):
            await asyncio.wait_for(run, 10)
        while hub.model.state.runs.get(started.run_id) is None or (
            hub.model.state.runs[started.run_id].status == "Running"
        ):
            await hub.wait_change(hub.model.version, 10)
        detail = (await http.get("/api/state", params={"run": started.run_id})).json()["run"]
    assert detail["status"] == "Cancelled"
