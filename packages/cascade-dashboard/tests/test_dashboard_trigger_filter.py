"""The Runs place's trigger filter (``?trigger=NAME``, as ``cascade runs --trigger``): the live
runs a trigger started (``/api/state``, the stream's filter) and the recorded ones
(``/api/history/runs``), by its name exactly; other triggers', a schedule's and a script's
runs not."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx

from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector, telemetry
from cascade.dashboard import DashboardHub, DashboardSettings, create_app
from cascade.history import History, Received
from cascade.interfaces import LifecycleEvent, decode_envelope
from cascade.interfaces.serving import RunOrigin

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
T0 = datetime.now(timezone.utc).timestamp() - 3600
# run id -> what started it: two triggers (one named as the other's prefix), a schedule, none
STARTED = {
    "a1" * 16: {"workflow": "report", "trigger": "after_etl", "trigger_depth": 1},
    "b2" * 16: {"workflow": "report", "trigger": "after_etl_2", "trigger_depth": 1},
    "c3" * 16: {"workflow": "report", "schedule": "nightly"},
    "d4" * 16: None,
}


def _client(hub: DashboardHub, history: History | None = None) -> httpx.AsyncClient:
    app = create_app(hub, DashboardSettings(token=TOKEN, history=history))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1")


async def test_the_live_runs_filtered_by_trigger(hub: DashboardHub) -> None:
    for n, (run_id, origin) in enumerate(STARTED.items()):
        said = None if origin is None else RunOrigin(**origin)  # type: ignore[arg-type]
        body = LifecycleEvent(event="ENGINE_STARTED", name="report", origin=said)
        hub.model.apply(
            telemetry(body, run_id=run_id, ts=datetime.fromtimestamp(T0 + n, timezone.utc))
        )
    async with _client(hub) as http:
        started = (
            await http.get("/api/state", params={"trigger": "after_etl"}, headers=AUTH)
        ).json()
        nobody = (await http.get("/api/state", params={"trigger": "nightly"}, headers=AUTH)).json()
    assert [run["run_id"] for run in started["runs"]] == ["a1" * 16]
    assert (started["runs_matching"], started["runs_total"]) == (1, 4)
    assert nobody["runs"] == []  # a schedule's name is no trigger's


def _event(run_id: str, ts: float, body: dict[str, Any]) -> Received:
    raw = {"ts": datetime.fromtimestamp(ts, timezone.utc).isoformat(), "run_id": run_id,
           "org_id": "acme", "project_id": "shop", "source": "host-1", "body": body}  # fmt: skip
    return Received(f"cascade/telemetry/acme/shop/{run_id}/events", decode_envelope(raw), ts)


async def test_the_recorded_runs_filtered_by_trigger(tmp_path: Path) -> None:
    history = History(str(tmp_path / "h.sqlite3"), mode="write")
    for n, (run_id, origin) in enumerate(STARTED.items()):
        start: dict[str, Any] = {"type": "LifecycleEvent", "event": "ENGINE_STARTED",
                                 "name": "report"}  # fmt: skip
        if origin is not None:
            start["origin"] = origin
        stop = {"type": "LifecycleEvent", "event": "ENGINE_STOPPED", "status": "Succeeded"}
        history.store([_event(run_id, T0 + n, start), _event(run_id, T0 + n + 1, stop)])
    hub = DashboardHub(InMemoryConnector(InMemoryBroker(), presence=False))
    try:
        async with _client(hub, history) as http:
            started = (await http.get("/api/history/runs", params={"trigger": "after_etl"},
                                      headers=AUTH)).json()  # fmt: skip
            every = (await http.get("/api/history/runs", headers=AUTH)).json()
    finally:
        history.close()
    assert [run["run_id"] for run in started["runs"]] == ["a1" * 16]
    assert started["runs"][0]["origin"]["trigger"] == "after_etl"
    assert len(every["runs"]) == 4
