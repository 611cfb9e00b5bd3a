"""Run names and lineage on the dashboard: ``/api/state``'s runs with their name and origin (as
their start said), and the history's runs filtered by name, a run with the run it reruns, the
runs that rerun it and its reused tasks (each with the run its result came from)."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx

from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.dashboard import DashboardHub, DashboardSettings, create_app
from cascade.history import History, Received
from cascade.interfaces import (
    Envelope,
    LifecycleEvent,
    TaskStateEvent,
    decode_envelope,
    events_topic,
)
from cascade.interfaces.serving import RunOrigin

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
T0 = datetime.now(timezone.utc).timestamp() - 3600
FIRST, SECOND = "a1" * 16, "b2" * 16


def _client(hub: DashboardHub, history: History | None = None) -> httpx.AsyncClient:
    app = create_app(hub, DashboardSettings(token=TOKEN, history=history))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1")


def _envelope(run_id: str, seq: int, body: LifecycleEvent | TaskStateEvent) -> Envelope:
    return Envelope(run_id=run_id, org_id="o", project_id="p", source="engine-a", seq=seq,
                    body=body)  # fmt: skip


async def test_the_live_runs_have_their_name_and_origin(
    broker: InMemoryBroker, hub: DashboardHub
) -> None:
    origin = RunOrigin(workflow="nightly", params={"n": 5}, rerun_of=FIRST, root_run=FIRST,
                       request_id="req-2", issued_by="bob")  # fmt: skip
    async with InMemoryConnector(broker, source_id="engine-a") as engine:
        topic = events_topic("o", "p", SECOND)
        bodies: list[LifecycleEvent | TaskStateEvent] = [
            LifecycleEvent(event="ENGINE_STARTED", tasks=1, name="nightly", origin=origin),
            TaskStateEvent(task_id="t", task_name="t", state="RUNNING"),
        ]
        for seq, body in enumerate(bodies, start=1):
            await engine.publish(topic, _envelope(SECOND, seq, body))
        plain = LifecycleEvent(event="ENGINE_STARTED")
        await engine.publish(events_topic("o", "p", "c3" * 16), _envelope("c3" * 16, 1, plain))
        await broker.idle()
    async with _client(hub) as http:
        state = (await http.get("/api/state", headers=AUTH)).json()
        detail = (await http.get("/api/state", params={"run": SECOND}, headers=AUTH)).json()
    runs = {run["run_id"]: run for run in state["runs"]}
    assert runs[SECOND]["name"] == "nightly"
    assert runs[SECOND]["origin"]["rerun_of"] == FIRST
    assert runs[SECOND]["origin"]["params"] == {"n": 5}
    assert (runs["c3" * 16]["name"], runs["c3" * 16]["origin"]) == (None, None)
    assert detail["run"]["name"] == "nightly"


def _event(run_id: str, ts: float, body: dict[str, Any]) -> Received:
    raw = {"ts": datetime.fromtimestamp(ts, timezone.utc).isoformat(), "run_id": run_id,
           "org_id": "acme", "project_id": "shop", "source": "host-1", "body": body}  # fmt: skip
    return Received(f"cascade/telemetry/acme/shop/{run_id}/events", decode_envelope(raw), ts)


def _recorded(path: Path) -> History:
    """A served run that failed at transform, and its rerun that reused extract."""
    history = History(str(path), mode="write")
    for run_id, at, origin, status in (
        (FIRST, T0, {"workflow": "nightly", "request_id": "req-1", "issued_by": "alice"},
         "Failed"),
        (SECOND, T0 + 60, {"workflow": "nightly", "rerun_of": FIRST, "root_run": FIRST,
                           "request_id": "req-2"}, "Succeeded"),
    ):  # fmt: skip
        extract = {"type": "TaskStateEvent", "task_id": "extract-1", "task_name": "extract",
                   "state": "COMPLETED"}  # fmt: skip
        if "rerun_of" in origin:
            extract["reused_from"] = FIRST
        history.store(
            [
                _event(
                    run_id,
                    at,
                    {
                        "type": "LifecycleEvent",
                        "event": "ENGINE_STARTED",
                        "name": "nightly",
                        "origin": origin,
                    },
                ),
                _event(run_id, at + 1, extract),
                _event(
                    run_id,
                    at + 2,
                    {"type": "LifecycleEvent", "event": "ENGINE_STOPPED", "status": status},
                ),
            ]
        )
    history.store([_event("c3" * 16, T0, {"type": "LifecycleEvent", "event": "ENGINE_STARTED"})])
    return history


async def test_the_history_filters_by_name_and_links_a_line(tmp_path: Path) -> None:
    history = _recorded(tmp_path / "h.sqlite3")
    hub = DashboardHub(InMemoryConnector(InMemoryBroker(), presence=False))
    try:
        async with _client(hub, history) as http:
            named = (await http.get("/api/history/runs", params={"name": "nightly"},
                                    headers=AUTH)).json()  # fmt: skip
            old = (await http.get("/api/history/run", params={"id": FIRST[:12]},
                                  headers=AUTH)).json()["run"]  # fmt: skip
            new = (await http.get("/api/history/run", params={"id": SECOND},
                                  headers=AUTH)).json()["run"]  # fmt: skip
            audit = (await http.get("/api/history/audit", headers=AUTH)).json()["events"]
    finally:
        history.close()
    assert [run["run_id"] for run in named["runs"]] == [SECOND, FIRST]
    assert old["replaced_by"] == [
        {"run_id": SECOND, "status": "Succeeded", "name": "nightly", "reused": None}
    ]
    assert old["origin"]["issued_by"] == "alice"
    assert new["rerun_of"] == {
        "run_id": FIRST,
        "status": "Failed",
        "name": "nightly",
        "reused": None,
    }
    assert [link["run_id"] for link in new["line"]] == [FIRST, SECOND]
    [extract] = new["tasks"]
    assert extract["reused_from"] == FIRST
    assert sorted(e["request_id"] for e in audit if e["action"] == "start") == ["req-1", "req-2"]
