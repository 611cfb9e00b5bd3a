"""The start form's endpoints in a team's dashboard against a process serving workflows (the
testkit's ``ServingEngine``, on the in-memory broker): the workflows listed with who serves
them and whether the asker may start each; ``POST /api/workflows/{name}/start``'s answers
(200 with the new run, 400, 403, 404, 409, 504) and their audit rows; the run it started is
then on the page with its name and who started it."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from cascade.connector_kit.testing import InMemoryBroker
from cascade.dashboard import DashboardHub
from cascade.dashboard.auth import AccessEvent, AccessLog
from cascade.interfaces.serving import ServedWorkflow, WorkflowParam
from cascade.testkit import ServingEngine

NIGHTLY = ServedWorkflow(
    name="nightly",
    params=[
        WorkflowParam(name="day", annotation="str"),
        WorkflowParam(name="n", required=False, default=5, annotation="int"),
    ],
    doc="Load the day's orders.",
)


def who(name: str) -> dict[str, str]:
    return {"x-test-user": f"{name}@example.com", "content-type": "application/json"}


@pytest.fixture
async def serving(serve: Any) -> ServingEngine:
    """``nightly`` served by ``server-1`` of acme/etl (its runs stay live)."""
    trigger = {
        "name": "nightly_after_etl",
        "workflow": "nightly",
        "kind": "after",
        "on": "etl Succeeded",
        "events": 2,
        "started": 1,
        "last_event": "run 1 of etl",
    }
    server: ServingEngine = await serve(
        [NIGHTLY], org_id="acme", project_id="etl", end=None, triggers=[trigger]
    )
    return server


def start(**body: object) -> tuple[str, bytes]:
    return "/api/workflows/nightly/start", json.dumps(body).encode()


async def test_the_workflows_are_listed_with_who_may_start_them(
    serving: ServingEngine, http: httpx.AsyncClient
) -> None:
    listed = (await http.get("/api/workflows", headers=who("alice"))).json()["workflows"]
    [nightly] = listed
    assert (nightly["name"], nightly["doc"], nightly["startable"]) == (
        "nightly", "Load the day's orders.", True,
    )  # fmt: skip
    assert [p["name"] for p in nightly["params"]] == ["day", "n"]
    [server] = nightly["servers"]
    assert (server["source"], server["online"], server["org_id"]) == ("server-1", True, "acme")
    [trigger] = nightly["triggers"]  # the triggers that start it, as its servers say
    assert (trigger["name"], trigger["on"], trigger["source"]) == (
        "nightly_after_etl", "etl Succeeded", "server-1",
    )  # fmt: skip
    assert (trigger["started"], trigger["events"], trigger["paused"]) == (1, 2, False)
    vera = (await http.get("/api/workflows", headers=who("vera"))).json()["workflows"]
    assert [w["startable"] for w in vera] == [False]
    oscar = (await http.get("/api/workflows", headers=who("oscar"))).json()["workflows"]
    assert oscar == []  # another project's: not even listed


async def test_an_operator_starts_it_and_the_run_shows_who(
    serving: ServingEngine,
    http: httpx.AsyncClient,
    broker: InMemoryBroker,
    audit: tuple[AccessLog, list[AccessEvent]],
) -> None:
    path, body = start(params={"day": "2026-11-25"}, reason="the nightly load")
    response = await http.post(path, content=body, headers=who("alice"))
    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer["name"], answer["source"], answer["queued"]) == ("nightly", "server-1", False)
    [(run_id, request)] = serving.started
    assert answer["run_id"] == run_id
    assert (request.issued_by, request.reason) == ("alice@example.com", "the nightly load")
    assert request.params == {"day": "2026-11-25"}
    await broker.idle()
    runs = (await http.get("/api/state", headers=who("alice"))).json()["runs"]
    [run] = [r for r in runs if r["run_id"] == run_id]
    assert run["name"] == "nightly"
    assert run["origin"]["issued_by"] == "alice@example.com"
    assert run["origin"]["params"] == {"day": "2026-11-25", "n": 5}
    rows = [(e.who, e.action, e.target, e.outcome) for e in audit[1] if e.action == "start"]
    assert rows == [("alice@example.com", "start", "workflow:nightly", "allowed")]


async def test_the_answers_that_are_not_a_start(
    serving: ServingEngine,
    http: httpx.AsyncClient,
    audit: tuple[AccessLog, list[AccessEvent]],
) -> None:
    """400 a malformed body; 403 a viewer (audited); 404 a workflow nobody serves; 409 the
    serving process's refusal in its words; nothing started by any of them."""
    path, _ = start()
    bad = await http.post(path, content=b'{"params": [1]}', headers=who("alice"))
    assert bad.status_code == 400
    assert "params" in bad.json()["error"]
    unknown = await http.post(path, content=b'{"parms": {}}', headers=who("alice"))
    assert unknown.status_code == 400
    viewer = await http.post(path, content=b"{}", headers=who("vera"))
    assert viewer.status_code == 403
    nobody = await http.post("/api/workflows/weekly/start", content=b"{}", headers=who("alice"))
    assert nobody.status_code == 404
    assert "nobody serves weekly" in nobody.json()["error"]
    hidden = await http.post(path, content=b"{}", headers=who("oscar"))  # another project's
    assert hidden.status_code == 404
    refused = await http.post(path, content=b"{}", headers=who("alice"))  # day is required
    assert refused.status_code == 409
    assert "missing 1 required argument: 'day'" in refused.json()["error"]
    assert serving.started == []
    said = [(e.who, e.outcome) for e in audit[1] if e.action == "start"]
    assert ("vera@example.com", "refused") in said


async def test_a_server_that_does_not_answer_is_a_504(
    serve: Any, hub: DashboardHub, http: httpx.AsyncClient
) -> None:
    await serve([NIGHTLY], "silent-1", org_id="acme", project_id="etl", answer=False)
    hub.timeout = 0.3
    path, body = start(params={"day": "x"})
    response = await http.post(path, content=body, headers=who("alice"))
    assert response.status_code == 504
    assert "no answer to start nightly" in response.json()["error"]
