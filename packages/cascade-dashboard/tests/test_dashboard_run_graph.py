"""``GET /api/runs/{run_id}/graph``: a run's graph from the live model, else from the history,
else why there is none; by a whole id or a prefix; hidden means unknown in a team's dashboard.

In process through httpx's ASGI transport, as the dashboard's other API tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timezone
from ipaddress import ip_network
from pathlib import Path
from typing import Any

import httpx
import pytest

from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector, telemetry
from cascade.control.access import Roles
from cascade.dashboard import (
    DashboardHub,
    DashboardSettings,
    ProxySignIn,
    Tokens,
    create_app,
)
from cascade.history import History, Received
from cascade.interfaces import LifecycleEvent, TaskStateEvent, decode_envelope

MAX_GRAPH_NODES = 2000  # the protocol's bound, as docs/protocol.md states it

T0 = datetime.now(timezone.utc).timestamp() - 3600
NODES: list[dict[str, Any]] = [
    {"id": "extract-1", "name": "extract", "after": []},
    {"id": "clean-2", "name": "clean", "after": ["extract-1"], "map": True},
    {"id": "load-3", "name": "load", "after": ["clean-2"], "conditions": ["clean-2"]},
]
LIVE = "1a" + "1" * 30  # acme/etl, heard live with its graph
LIVE_BIG = "1a" + "2" * 30  # acme/etl, live, above the bound
LIVE_LATE = "1a" + "3" * 30  # acme/etl, live, heard mid-way
GLOBEX_LIVE = "1b" + "4" * 30  # globex/web, live with its graph
DONE = "0a" + "5" * 30  # acme/etl, recorded with its graph
DONE_OLD = "0a" + "6" * 30  # acme/etl, recorded from an engine before graphs
DONE_BIG = "0a" + "7" * 30  # acme/etl, recorded above the bound
GLOBEX_DONE = "0b" + "8" * 30  # globex/web, recorded with its graph
ROLES = Roles.parse("""
[[grant]]
role = "viewer"
scopes = ["project:acme/etl"]
people = ["vera@example.com"]
""")
VERA = {"x-test-user": "vera@example.com"}
EVE = {"x-test-user": "eve@example.com"}


def _start(run_id: str, org: str, project: str, **fields: Any) -> Received:
    body = {"type": "LifecycleEvent", "event": "ENGINE_STARTED", "tasks": 3, **fields}
    envelope = decode_envelope({
        "ts": datetime.fromtimestamp(T0, timezone.utc).isoformat(), "run_id": run_id,
        "org_id": org, "project_id": project, "source": "host-1", "seq": 1, "body": body,
    })  # fmt: skip
    return Received(f"cascade/telemetry/{org}/{project}/{run_id}/events", envelope, T0)


@pytest.fixture
def history(tmp_path: Path) -> Iterator[History]:
    path = tmp_path / "history.sqlite3"
    with History(path, mode="write") as writer:
        writer.store([
            _start(DONE, "acme", "etl", graph={"nodes": NODES}),
            _start(DONE_OLD, "acme", "etl"),
            _start(DONE_BIG, "acme", "etl", graph_nodes=MAX_GRAPH_NODES + 5),
            _start(GLOBEX_DONE, "globex", "web", graph={"nodes": NODES}),
        ])  # fmt: skip
    with History(path) as reader:
        yield reader


@pytest.fixture
async def hub() -> AsyncIterator[DashboardHub]:
    hub = DashboardHub(InMemoryConnector(InMemoryBroker(), presence=False))
    await hub.start()
    now = datetime.now(timezone.utc)
    for run_id, org, project, fields in (
        (LIVE, "acme", "etl", {"graph": {"nodes": NODES}}),
        (LIVE_BIG, "acme", "etl", {"graph_nodes": MAX_GRAPH_NODES + 1}),
        (GLOBEX_LIVE, "globex", "web", {"graph": {"nodes": NODES}}),
    ):
        start = LifecycleEvent(event="ENGINE_STARTED", tasks=3, **fields)
        hub.model.apply(
            telemetry(start, run_id=run_id, org_id=org, project_id=project, ts=now, seq=1)
        )
    running = TaskStateEvent(task_id="load-3", task_name="load", state="RUNNING")
    hub.model.apply(
        telemetry(running, run_id=LIVE_LATE, org_id="acme", project_id="etl", ts=now, seq=7)
    )
    yield hub
    await hub.stop()


def _client(hub: DashboardHub, settings: DashboardSettings) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=create_app(hub, settings))
    return httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1", timeout=30)


@pytest.fixture
async def http(hub: DashboardHub, history: History) -> AsyncIterator[httpx.AsyncClient]:
    async with _client(hub, DashboardSettings(history=history)) as client:
        yield client


@pytest.fixture
async def team(hub: DashboardHub, history: History) -> AsyncIterator[httpx.AsyncClient]:
    settings = DashboardSettings(
        token=Tokens.parse(["script@example.com=s3cret"], "dash"),
        roles=ROLES,
        sign_in=ProxySignIn([ip_network("127.0.0.1/32")], "x-test-user", "x-test-groups"),
        history=history,
    )
    async with _client(hub, settings) as client:
        yield client


async def test_a_live_runs_graph_is_the_one_its_engine_sent(http: httpx.AsyncClient) -> None:
    """By a whole id or a prefix of it: the nodes as sent, map and conditions included."""
    for given in (LIVE, LIVE[:8]):
        answer = await http.get(f"/api/runs/{given}/graph")
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"run_id": LIVE, "nodes": NODES}


async def test_a_past_runs_graph_comes_from_the_history(http: httpx.AsyncClient) -> None:
    """A run the dashboard never heard live: its recorded graph."""
    answer = await http.get(f"/api/runs/{DONE[:10]}/graph")
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"run_id": DONE, "nodes": NODES}


@pytest.mark.parametrize(
    ("run_id", "why", "size"),
    [
        (LIVE_BIG, f"{MAX_GRAPH_NODES + 1} tasks, above the bound", MAX_GRAPH_NODES + 1),
        (DONE_BIG, f"{MAX_GRAPH_NODES + 5} tasks, above the bound", MAX_GRAPH_NODES + 5),
        (DONE_OLD, "an engine before graphs", None),
        (LIVE_LATE, "joined the run late", None),
    ],
)
async def test_a_run_without_a_graph_says_why(
    http: httpx.AsyncClient, run_id: str, why: str, size: int | None
) -> None:
    """Above the bound (live or recorded), an engine before graphs, a run heard mid-way."""
    answer = await http.get(f"/api/runs/{run_id}/graph")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["run_id"], body["nodes"], body.get("graph_nodes")) == (run_id, None, size)
    assert why in body["why"]


async def test_bad_and_unknown_ids(http: httpx.AsyncClient) -> None:
    """Unknown: 404; several runs' prefix or no hex: 400, as the other run addresses."""
    unknown = await http.get(f"/api/runs/{'f' * 32}/graph")
    assert unknown.status_code == 404
    several = await http.get("/api/runs/1a/graph")
    assert several.status_code == 400
    assert LIVE[:12] in several.text
    assert (await http.get("/api/runs/not-hex!/graph")).status_code == 400


async def test_in_a_teams_dashboard_a_hidden_runs_graph_is_the_unknown_runs_404(
    team: httpx.AsyncClient,
) -> None:
    """A viewer of acme/etl reads its runs' graphs; globex's answer as an unknown run's; a
    person without a role reads none."""
    mine = await team.get(f"/api/runs/{LIVE}/graph", headers=VERA)
    assert mine.status_code == 200
    assert mine.json()["nodes"] == NODES
    recorded = await team.get(f"/api/runs/{DONE}/graph", headers=VERA)
    assert recorded.status_code == 200
    assert recorded.json()["nodes"] == NODES
    for hidden, unknown in ((GLOBEX_LIVE, "1d" + "4" * 30), (GLOBEX_DONE, "0d" + "8" * 30)):
        theirs = await team.get(f"/api/runs/{hidden}/graph", headers=VERA)
        nobodys = await team.get(f"/api/runs/{unknown}/graph", headers=VERA)
        assert theirs.status_code == nobodys.status_code == 404
        assert theirs.text.replace(hidden, unknown) == nobodys.text
    outsider = await team.get(f"/api/runs/{LIVE}/graph", headers=EVE)
    assert outsider.status_code == 403
    assert "extract" not in outsider.text
    nobody = await team.get(f"/api/runs/{LIVE}/graph")
    assert nobody.status_code == 401
