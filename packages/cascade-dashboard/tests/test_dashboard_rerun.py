"""The rerun button's endpoint, ``POST /api/runs/{run}/rerun``, in a team's dashboard against a
process serving the run's workflow (the testkit's ``ServingEngine``, on the in-memory broker):
a dry run answers the plan and starts nothing; a rerun starts a run of the line, issued by the
operator with their reason; a viewer is refused (403, audited), a run of another project is
unknown (404), a plain script's run has no workflow to rerun (409)."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone
from typing import Any

import httpx
import pytest

from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.dashboard.auth import AccessEvent, AccessLog
from cascade.interfaces import Envelope, LifecycleEvent, encode_payload, events_topic
from cascade.interfaces.serving import PlanStep, ServedWorkflow, WorkflowParam
from cascade.testkit import ServingEngine

NIGHTLY = ServedWorkflow(
    name="nightly", params=[WorkflowParam(name="day", annotation="str")], doc="The day's load."
)
PLAN = [
    PlanStep(task_id="extract", task_name="extract", action="reuse", why="its result matches",
             from_run="a" * 32),
    PlanStep(task_id="transform", task_name="transform", action="run", why="it failed"),
]  # fmt: skip


def who(name: str) -> dict[str, str]:
    return {"x-test-user": f"{name}@example.com", "content-type": "application/json"}


@pytest.fixture
async def serving(serve: Any) -> ServingEngine:
    """``nightly`` served by ``server-1`` of acme/etl, its rerun's plan ``PLAN``."""
    server: ServingEngine = await serve([NIGHTLY], org_id="acme", project_id="etl", plan=PLAN)
    return server


@pytest.fixture
async def first_run(serving: ServingEngine, http: httpx.AsyncClient, broker: InMemoryBroker) -> str:
    """A run of ``nightly`` an operator started (it ends, Succeeded): the run to rerun."""
    body = json.dumps({"params": {"day": "tue"}}).encode()
    started = await http.post("/api/workflows/nightly/start", content=body, headers=who("alice"))
    assert started.status_code == 200, started.text
    await broker.idle()
    run_id: str = started.json()["run_id"]
    return run_id


def rerun(run_id: str, **body: object) -> tuple[str, bytes]:
    return f"/api/runs/{run_id}/rerun", json.dumps(body).encode()


async def test_a_dry_run_answers_the_plan_and_starts_nothing(
    first_run: str,
    serving: ServingEngine,
    http: httpx.AsyncClient,
    audit: tuple[AccessLog, list[AccessEvent]],
) -> None:
    path, body = rerun(first_run[:8], dry_run=True)  # the short id a table prints will do
    response = await http.post(path, content=body, headers=who("alice"))
    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer["planned"], answer["rerun_of"], answer["workflow"]) == (
        True, first_run, "nightly",
    )  # fmt: skip
    steps = [(s["task_name"], s["action"], s["why"]) for s in answer["plan"]]
    assert steps == [("extract", "reuse", "its result matches"), ("transform", "run", "it failed")]
    assert answer["plan"][0]["from_run"] == "a" * 32
    assert answer["plan_count"] == 2
    assert [run_id for run_id, _ in serving.started] == [first_run]  # nothing new started
    [asked] = [r for r in serving.requests if r.rerun_of is not None]
    assert (asked.dry_run, asked.workflow, asked.issued_by) == (
        True,
        "nightly",
        "alice@example.com",
    )
    await audit[0].flush()
    rows = [(e.who, e.target, e.outcome) for e in audit[1] if e.action == "rerun"]
    assert rows == [("alice@example.com", f"run:{first_run}", "allowed")]


async def test_a_rerun_starts_a_run_of_the_line_issued_by_the_operator(
    first_run: str, serving: ServingEngine, http: httpx.AsyncClient, broker: InMemoryBroker
) -> None:
    path, body = rerun(first_run, reason="the API is back")
    response = await http.post(path, content=body, headers=who("alice"))
    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer["rerun_of"], answer["source"], answer["name"]) == (
        first_run, "server-1", "nightly",
    )  # fmt: skip
    [_, (run_id, request)] = serving.started
    assert answer["run_id"] == run_id != first_run
    assert (request.rerun_of, request.dry_run, request.rerun) == (first_run, False, "failure")
    assert (request.issued_by, request.reason) == ("alice@example.com", "the API is back")
    assert request.params == {}  # those it ran with, kept by the serving process
    await broker.idle()
    runs = (await http.get("/api/state", headers=who("alice"))).json()["runs"]
    [rerun_row] = [r for r in runs if r["run_id"] == run_id]
    assert rerun_row["origin"]["rerun_of"] == first_run
    assert rerun_row["origin"]["params"] == {"day": "tue"}


async def test_who_may_not_rerun_is_refused_and_nothing_is_asked(
    first_run: str,
    serving: ServingEngine,
    http: httpx.AsyncClient,
    audit: tuple[AccessLog, list[AccessEvent]],
) -> None:
    """A viewer: 403, audited, not even the plan; another project's operator: 404, as for a
    run nobody heard of; a malformed body: 400."""
    asked_before = len(serving.requests)
    for dry_run in (True, False):
        path, body = rerun(first_run, dry_run=dry_run)
        viewer = await http.post(path, content=body, headers=who("vera"))
        assert viewer.status_code == 403, viewer.text
    path, body = rerun(first_run)
    other = await http.post(path, content=body, headers=who("oscar"))
    assert other.status_code == 404
    assert other.json()["error"] == (
        f"no run's id starts with {first_run} among the runs you may see"
    )
    bad = await http.post(path, content=b'{"rerun": "some"}', headers=who("alice"))
    assert bad.status_code == 400
    assert "rerun must be one of" in bad.json()["error"]
    given = await http.post(path, content=b'{"workflow": "weekly"}', headers=who("alice"))
    assert given.status_code == 400
    assert len(serving.requests) == asked_before
    await audit[0].flush()
    refused = [(e.who, e.outcome) for e in audit[1] if e.action == "rerun"]
    # (vera's two refusals in a minute fold into one row, its count handed on at the flush)
    assert set(refused) == {("vera@example.com", "refused"), ("oscar@example.com", "refused")}


async def test_a_run_no_served_workflow_started_is_not_rerun(
    serving: ServingEngine, http: httpx.AsyncClient, broker: InMemoryBroker
) -> None:
    """A plain script's run (no ``origin.workflow``): 409 saying how to rerun it instead."""
    script = InMemoryConnector(broker, source_id="laptop-1")
    await script.connect()
    run_id = uuid.uuid4().hex
    envelope = Envelope(run_id=run_id, org_id="acme", project_id="etl", source="laptop-1",
                        seq=1, body=LifecycleEvent(event="ENGINE_STARTED", tasks=1),
                        ts=datetime.now(timezone.utc).isoformat())  # fmt: skip
    topic = events_topic("acme", "etl", run_id, prefix=script.topic_prefix, source="laptop-1")
    await script.publish(topic, encode_payload(envelope), qos=1)
    await broker.idle()
    await script.disconnect()
    path, body = rerun(run_id, dry_run=True)
    response = await http.post(path, content=body, headers=who("alice"))
    assert response.status_code == 409, response.text
    assert "was not started by a served workflow" in response.json()["error"]
