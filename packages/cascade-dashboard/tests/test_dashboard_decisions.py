"""Held tasks on the dashboard: the "Needs a decision" list (``held``) of ``/api/state`` and the
streams, and ``POST /api/runs/{run}/tasks/{task}/decide`` against an engine that holds them
(the testkit's ``HoldingEngine``, on the in-memory broker), in a team's dashboard: who may
decide on what, the answers (200, 409, 504, 403, 404, 400) and their audit rows."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from ipaddress import ip_network

import httpx
import pytest

from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector, telemetry
from cascade.control.access import Roles
from cascade.dashboard import DashboardHub, DashboardSettings, ProxySignIn, create_app
from cascade.dashboard.auth import AccessEvent, AccessLog
from cascade.dashboard.live import Follower
from cascade.interfaces import LifecycleEvent, TaskStateEvent
from cascade.interfaces.serving import RunOrigin
from cascade.testkit import HeldTask, HoldingEngine

ROLES = Roles.parse("""
[[grant]]
role = "viewer"
scopes = ["project:acme/etl"]
people = ["vera@example.com", "tom@example.com"]

[[grant]]
role = "operator"
scopes = ["project:acme/etl"]
people = ["alice@example.com", "bob@example.com"]

[[grant]]
role = "operator"
scopes = ["task:load*"]
people = ["tom@example.com"]
""")
RUN = "a" * 32
GLOBEX = "c" * 32


def who(name: str) -> dict[str, str]:
    return {"x-test-user": name, "content-type": "application/json"}


VERA, ALICE, BOB, TOM = (who(f"{n}@example.com") for n in ("vera", "alice", "bob", "tom"))


@pytest.fixture
def audit() -> tuple[AccessLog, list[AccessEvent]]:
    rows: list[AccessEvent] = []
    return AccessLog(rows.append), rows


@pytest.fixture
async def engine(broker: InMemoryBroker, hub: DashboardHub) -> AsyncIterator[HoldingEngine]:
    """``RUN`` of acme/etl with ``load-1`` and ``side-1`` held (attempt 1), and a run of
    another org (``GLOBEX``) with one held task; the dashboard has heard them."""
    held = HoldingEngine(InMemoryConnector(broker, source_id="engine-1"), RUN,
                         [HeldTask("load-1", "load"), HeldTask("side-1", "side")],
                         org_id="acme", project_id="etl")  # fmt: skip
    other = HoldingEngine(InMemoryConnector(broker, source_id="engine-2"), GLOBEX,
                          [HeldTask("load-1", "load")], org_id="globex",
                          project_id="etl")  # fmt: skip
    for stand_in in (held, other):
        await stand_in.connector.connect()
        await stand_in.start()
    await broker.idle()
    yield held
    for stand_in in (held, other):
        await stand_in.connector.disconnect()


@pytest.fixture
async def http(
    hub: DashboardHub, audit: tuple[AccessLog, list[AccessEvent]], engine: HoldingEngine
) -> AsyncIterator[httpx.AsyncClient]:
    sign_in = ProxySignIn([ip_network("127.0.0.1/32")], "x-test-user", "x-test-groups")
    app = create_app(hub, DashboardSettings(roles=ROLES, sign_in=sign_in), access_log=audit[0])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        yield client


def decide(task: str, decision: str, **more: object) -> tuple[str, bytes]:
    body = json.dumps({"decision": decision, **more}).encode()
    return f"/api/runs/{RUN}/tasks/{task}/decide", body


async def test_the_state_lists_held_tasks_and_who_may_decide_on_each(
    http: httpx.AsyncClient,
) -> None:
    """Each held task with its run, attempt, error, since, deadline and default; the longest
    held first; ``decide`` is whether the asker may decide on it: an operator of the project
    on all, a task-scoped operator on the tasks its glob matches, a viewer on none. Another
    org's held task is not listed to those who may not see it."""
    state = (await http.get("/api/state?limit=10", headers=ALICE)).json()
    held = state["held"]
    assert held["total"] == 2
    assert [(t["task_id"], t["name"], t["attempt"], t["default"]) for t in held["tasks"]] == [
        ("load-1", "load", 1, "fail"), ("side-1", "side", 1, "fail"),
    ]  # fmt: skip
    load = held["tasks"][0]
    assert (load["run_id"], load["org_id"], load["project_id"]) == (RUN, "acme", "etl")
    assert load["error"] == "ValueError: the API is down"
    assert load["deadline"] > load["since"] > 0
    assert [t["decide"] for t in held["tasks"]] == [True, True]
    vera = (await http.get("/api/state?limit=10", headers=VERA)).json()["held"]
    assert [t["decide"] for t in vera["tasks"]] == [False, False]
    tom = (await http.get("/api/state?limit=10", headers=TOM)).json()["held"]
    assert [(t["name"], t["decide"]) for t in tom["tasks"]] == [("load", True), ("side", False)]
    (run,) = (await http.get("/api/state?limit=10", headers=ALICE)).json()["runs"]
    assert run["counts"] == {"HELD": 2}
    detail = (await http.get(f"/api/state?limit=10&run={RUN}", headers=ALICE)).json()["run"]
    states = {t["task_id"]: (t["state"], t["held_by"][0]["type"]) for t in detail["tasks"]}
    assert states == {"load-1": ("HELD", "decision"), "side-1": ("HELD", "decision")}


async def test_an_operator_retries_and_a_second_decision_is_refused_with_who_decided(
    http: httpx.AsyncClient,
    engine: HoldingEngine,
    audit: tuple[AccessLog, list[AccessEvent]],
    broker: InMemoryBroker,
) -> None:
    path, body = decide("load-1", "retry", attempt=1, reason="API back")
    applied = await http.post(path, content=body, headers=ALICE)
    assert applied.status_code == 200, applied.text
    answer = applied.json()
    assert answer["decided"]["outcome"] == "applied"
    assert answer["decided"]["issued_by"] == "alice@example.com"
    assert answer["said"].startswith("retried load")
    assert [(r.decision, r.issued_by, r.reason) for r in engine.applied] == [
        ("retry", "alice@example.com", "API back"),
    ]
    path, body = decide("load-1", "skip", attempt=1, reason="skip it today")
    refused = await http.post(path, content=body, headers=BOB)
    assert refused.status_code == 409
    said = refused.json()
    assert "already decided: retry by alice@example.com" in said["error"]
    assert said["decided"]["decided"]["by"] == "alice@example.com"
    assert len(engine.applied) == 1
    await audit[0].flush()
    rows = [(r.who, r.action, r.target, r.outcome) for r in audit[1]]
    target = f"run:{RUN}/task:load-1/attempt:1"
    assert rows == [
        ("alice@example.com", "retry", target, "allowed"),
        ("bob@example.com", "skip", target, "allowed"),
    ]
    assert audit[1][0].reason == "applied; reason given: API back"
    assert audit[1][1].reason is not None
    assert audit[1][1].reason.startswith("refused by the engine (already_decided)")
    assert audit[1][1].reason.endswith("reason given: skip it today")
    await broker.idle()
    held = (await http.get("/api/state?limit=10", headers=ALICE)).json()["held"]
    assert [t["task_id"] for t in held["tasks"]] == ["side-1"]


async def test_a_task_scoped_operator_decides_only_on_its_tasks(
    http: httpx.AsyncClient, engine: HoldingEngine, audit: tuple[AccessLog, list[AccessEvent]]
) -> None:
    path, body = decide("side-1", "skip")
    outside = await http.post(path, content=body, headers=TOM)
    assert outside.status_code == 403
    assert "tom@example.com is not an operator" in outside.json()["error"]
    path, body = decide("load", "complete", result={"rows": 3})  # by name: one held has it
    inside = await http.post(path, content=body, headers=TOM)
    assert inside.status_code == 200, inside.text
    assert [(r.task, r.decision, r.result) for r in engine.applied] == [
        ("load", "complete", {"rows": 3}),
    ]
    await audit[0].flush()
    assert [(r.who, r.action, r.outcome) for r in audit[1]] == [
        ("tom@example.com", "skip", "refused"),
        ("tom@example.com", "complete", "allowed"),
    ]


async def test_a_viewer_may_not_decide(
    http: httpx.AsyncClient, engine: HoldingEngine, audit: tuple[AccessLog, list[AccessEvent]]
) -> None:
    path, body = decide("load-1", "fail")
    answer = await http.post(path, content=body, headers=VERA)
    assert answer.status_code == 403
    assert engine.requests == []
    await audit[0].flush()
    assert [(r.who, r.action, r.outcome) for r in audit[1]] == [
        ("vera@example.com", "fail", "refused")
    ]


async def test_a_hidden_run_is_an_unknown_one(http: httpx.AsyncClient) -> None:
    body = json.dumps({"decision": "retry"}).encode()
    hidden = await http.post(f"/api/runs/{GLOBEX}/tasks/load-1/decide", content=body,
                             headers=ALICE)  # fmt: skip
    unknown = await http.post(f"/api/runs/{'d' * 32}/tasks/load-1/decide", content=body,
                              headers=ALICE)  # fmt: skip
    assert hidden.status_code == unknown.status_code == 404
    assert hidden.json()["error"].replace(GLOBEX, "RUN") == unknown.json()["error"].replace(
        "d" * 32, "RUN"
    )


@pytest.mark.parametrize(
    ("body", "status", "said"),
    [
        ({"decision": "maybe"}, 400, "decision must be one of"),
        ({"decision": "retry", "result": 1}, 400, "a result goes with complete"),
        ({"decision": "retry", "attempt": 0}, 400, "attempt must be a whole number"),
        ({"decision": "retry", "why": "x"}, 400, "unknown fields: why"),
        ([1], 400, "must be a JSON object"),
    ],
)
async def test_a_bad_decision_is_a_400_saying_why(
    http: httpx.AsyncClient, engine: HoldingEngine, body: object, status: int, said: str
) -> None:
    answer = await http.post(f"/api/runs/{RUN}/tasks/load-1/decide",
                             content=json.dumps(body).encode(), headers=ALICE)  # fmt: skip
    assert answer.status_code == status
    assert said in answer.json()["error"]
    assert engine.requests == []


async def test_not_json_is_a_415(http: httpx.AsyncClient) -> None:
    answer = await http.post(f"/api/runs/{RUN}/tasks/load-1/decide", content=b"retry",
                             headers={"x-test-user": "alice@example.com"})  # fmt: skip
    assert answer.status_code == 415


async def test_no_engine_answering_is_a_504(
    hub: DashboardHub, http: httpx.AsyncClient, audit: tuple[AccessLog, list[AccessEvent]]
) -> None:
    """A run heard of whose engine is gone: nobody answers within the hub's timeout."""
    hub.timeout = 0.2
    gone = "e" * 32
    body = TaskStateEvent(task_id="load-1", task_name="load", state="RUNNING")
    hub.model.apply(telemetry(body, run_id=gone, org_id="acme", project_id="etl"))
    answer = await http.post(f"/api/runs/{gone}/tasks/load-1/decide",
                             content=b'{"decision": "retry"}', headers=ALICE)  # fmt: skip
    assert answer.status_code == 504
    assert "no engine answered" in answer.json()["error"]
    await audit[0].flush()
    (row,) = audit[1]
    assert row.reason is not None
    assert row.reason.startswith("no engine answered")


async def test_the_stream_sends_the_held_list_when_it_changes(
    hub: DashboardHub, engine: HoldingEngine, broker: InMemoryBroker
) -> None:
    follower = Follower.asked(hub, {"since": "0"}, controls=True)
    first = follower.next_event()
    assert first is not None
    data = json.loads(first.split(b"data: ", 1)[1])
    held = [(t["run_id"], t["task_id"]) for t in data["held"]["tasks"]]
    assert held == [(RUN, "load-1"), (RUN, "side-1"), (GLOBEX, "load-1")]
    assert follower.next_event() is None  # nothing changed: no held part again
    answer = await hub.controller("carol").run(RUN).skip("side-1", reason="not today")
    assert answer.applied
    await broker.idle()
    later = follower.next_event()
    assert later is not None
    data = json.loads(later.split(b"data: ", 1)[1])
    held = [(t["run_id"], t["task_id"]) for t in data["held"]["tasks"]]
    assert held == [(RUN, "load-1"), (GLOBEX, "load-1")]
    assert data["held"]["total"] == 2


async def test_the_held_list_is_bounded_and_says_how_many_there_are(
    hub: DashboardHub, engine: HoldingEngine
) -> None:
    listed = hub.model.held.listed(limit=1)
    assert listed["total"] == 3
    assert [t["task_id"] for t in listed["tasks"]] == ["load-1"]
    assert listed["tasks"][0]["decide"] is False  # nobody may decide: no decidable given


async def test_a_task_scoped_operator_may_not_decide_on_a_task_not_known_here(
    http: httpx.AsyncClient, engine: HoldingEngine
) -> None:
    """Its glob cannot be checked against a task the dashboard has not heard of: refused, on
    the safe side (an operator of the project may: the engine answers unknown_task)."""
    path, body = decide("load-9", "retry")
    refused = await http.post(path, content=body, headers=TOM)
    assert refused.status_code == 403
    assert "the task is not known here" in refused.json()["error"]
    asked = await http.post(path, content=body, headers=ALICE)
    assert asked.status_code == 409
    assert asked.json()["decided"]["outcome"] == "unknown_task"
    assert engine.applied == []


async def test_a_gate_is_listed_awaiting_approval_with_its_prompt_and_approved(
    http: httpx.AsyncClient, broker: InMemoryBroker, audit: tuple[AccessLog, list[AccessEvent]]
) -> None:
    """A gate's entry says it awaits approval and has its prompt (a failed task's: neither);
    a retry of it is refused (409, said so); complete approves it, audited as any decision."""
    gated = "d" * 32
    gate = HeldTask("approve-1", "approve", prompt="Deploy v1.2 to production?")
    stand_in = HoldingEngine(InMemoryConnector(broker, source_id="engine-3"), gated, [gate],
                             org_id="acme", project_id="etl")  # fmt: skip
    await stand_in.connector.connect()
    await stand_in.start()
    await broker.idle()
    try:
        held = (await http.get("/api/state?limit=10", headers=ALICE)).json()["held"]
        entries = {t["task_id"]: t for t in held["tasks"]}
        listed = entries["approve-1"]
        assert (listed["awaits_approval"], listed["prompt"]) == (True, "Deploy v1.2 to production?")
        assert (listed["error"], listed["attempt"], listed["decide"]) == ("", 1, True)
        assert (entries["load-1"]["awaits_approval"], entries["load-1"]["prompt"]) == (False, None)
        url = f"/api/runs/{gated}/tasks/approve-1/decide"
        refused = await http.post(url, content=b'{"decision": "retry"}', headers=ALICE)
        assert refused.status_code == 409
        assert "is a gate: it has no attempt to retry" in refused.json()["error"]
        # the page's Approve with its value field empty: null, which approves a gate with true
        body = b'{"decision": "complete", "attempt": 1, "result": null, "reason": "canary"}'
        approved = await http.post(url, content=body, headers=ALICE)
        assert approved.status_code == 200, approved.text
        assert approved.json()["said"].startswith("completed approve")
        assert gate.decided[1].by == "alice@example.com"
        await audit[0].flush()
        rows = [(r.who, r.action, r.target) for r in audit[1]]
        assert ("alice@example.com", "complete", f"run:{gated}/task:approve-1/attempt:1") in rows
    finally:
        await stand_in.connector.disconnect()


async def test_the_held_api_lists_what_a_bulk_filter_matches_and_who_may_decide(
    http: httpx.AsyncClient,
) -> None:
    """``/api/held`` lists the held tasks a filter picks (run prefix, task glob or id,
    org/project or project, error text in any case) that the asker may see, with ``total``
    and its ``limit``; ``decide`` as in the state's list (a viewer: none; a task-scoped
    operator: its tasks); an overlong filter is a 400."""

    async def ids(query: str, headers: dict[str, str] = ALICE) -> list[str]:
        answer = (await http.get(f"/api/held?{query}", headers=headers)).json()
        assert answer["limit"] == 500
        assert answer["total"] == len(answer["tasks"])
        return [t["task_id"] for t in answer["tasks"]]

    assert await ids("") == ["load-1", "side-1"]  # globex's is not alice's to see
    assert await ids("task=lo*") == ["load-1"]
    assert await ids("task=side-1") == ["side-1"]
    assert await ids(f"run_id={RUN[:8]}") == ["load-1", "side-1"]
    assert await ids("run_id=b") == []
    assert await ids("project=acme/etl&error=API%20IS%20DOWN") == ["load-1", "side-1"]
    assert await ids("project=etl&error=nothing-like-it") == []
    assert await ids("project=globex/etl") == []
    vera = (await http.get("/api/held", headers=VERA)).json()["tasks"]
    assert [t["decide"] for t in vera] == [False, False]
    tom = (await http.get("/api/held", headers=TOM)).json()["tasks"]
    assert [(t["task_id"], t["decide"]) for t in tom] == [("load-1", True), ("side-1", False)]
    long = await http.get("/api/held?task=" + "x" * 257, headers=ALICE)
    assert long.status_code == 400
    assert long.json()["error"] == "task must be at most 256 characters"


async def test_the_held_api_lists_at_most_500_and_says_how_many_match(
    http: httpx.AsyncClient, broker: InMemoryBroker
) -> None:
    """Of 501 held tasks a filter matches, the 500 held longest are listed (a bulk decision
    decides at most those at once), ``total`` saying 501."""
    many = "d" * 32
    tasks = [HeldTask(f"load-{n}", "load", since=1_000.0 + n) for n in range(501)]
    stand_in = HoldingEngine(InMemoryConnector(broker, source_id="engine-3"), many, tasks,
                             org_id="acme", project_id="etl")  # fmt: skip
    await stand_in.connector.connect()
    await stand_in.start()
    await broker.idle()
    try:
        answer = (await http.get(f"/api/held?run_id={many}", headers=ALICE)).json()
    finally:
        await stand_in.connector.disconnect()
    assert (answer["total"], len(answer["tasks"]), answer["limit"]) == (501, 500, 500)
    assert answer["tasks"][0]["task_id"] == "load-0"  # the longest held first
    assert "load-500" not in {t["task_id"] for t in answer["tasks"]}


async def test_a_decision_on_a_lost_run_is_a_409_at_once_saying_where_it_went(
    hub: DashboardHub,
    http: httpx.AsyncClient,
    engine: HoldingEngine,
    broker: InMemoryBroker,
    audit: tuple[AccessLog, list[AccessEvent]],
) -> None:
    """Its engine died (the broker's will): nobody is asked, no timeout is waited for; once a
    server carries it on, the answer names the carry-on and links to its page."""
    hub.timeout = 0.5  # asked, nobody would answer: a 504
    connector = engine.connector
    assert isinstance(connector, InMemoryConnector)
    await connector.crash()
    await broker.idle()
    path, body = decide("load-1", "retry", attempt=1)
    answer = await http.post(path, content=body, headers=ALICE)
    assert answer.status_code == 409, answer.text
    said = answer.json()
    assert (said["lost"], said["lost_engine"], said["carried_on_as"]) == (True, "engine-1", None)
    assert said["error"].startswith(f"run {RUN} was lost with its engine engine-1")
    carry_on = "d" * 32
    origin = RunOrigin(workflow="etl", carried_on_from=RUN, lost_engine="engine-1", carry_ons=1)
    started = LifecycleEvent(event="ENGINE_STARTED", tasks=2, origin=origin)
    hub.model.apply(
        telemetry(
            started, run_id=carry_on, source="engine-3", seq=1, org_id="acme", project_id="etl"
        )
    )
    answer = await http.post(path, content=body, headers=ALICE)
    assert answer.status_code == 409, answer.text
    said = answer.json()
    assert (said["carried_on_as"], said["carried_on_by"]) == (carry_on, "engine-3")
    assert said["link"] == f"/runs/{carry_on}"
    assert f"carried on as {carry_on} at engine-3" in said["error"]
    await audit[0].flush()
    reason = audit[1][-1].reason
    assert reason is not None
    assert reason.startswith(f"refused: run {RUN} was lost")
