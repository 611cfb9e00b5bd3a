"""A team's dashboard (``roles=``): each person sees the projects their grants cover and
steers within their scopes; every refusal is a 403 with its reason and an access row."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from ipaddress import ip_network

import httpx
import pytest

from cascade.connector_kit.testing import InMemoryBroker, telemetry
from cascade.control.access import Access, Identity, Roles
from cascade.dashboard import DashboardHub, DashboardSettings, ProxySignIn, Tokens, create_app
from cascade.dashboard.auth import AccessEvent, AccessLog
from cascade.dashboard.live import Follower
from cascade.interfaces import TaskStateEvent, decode_constraint

ROLES = Roles.parse("""
[[grant]]
role = "viewer"
scopes = ["project:acme/etl"]
people = ["vera@example.com"]

[[grant]]
role = "operator"
scopes = ["org:acme", "task:etl_*"]
groups = ["data-eng"]

[[grant]]
role = "admin"
scopes = ["global"]
people = ["root@example.com"]
""")
ETL = "a" * 32
WEB = "b" * 32
GLOBEX = "c" * 32


def signed_in_by_header() -> ProxySignIn:
    """Whoever ``x-test-user`` names (groups in ``x-test-groups``), as an auth proxy in front
    would say; the test client's requests come from the trusted 127.0.0.1."""
    return ProxySignIn([ip_network("127.0.0.1/32")], "x-test-user", "x-test-groups")


@pytest.fixture
def audit() -> tuple[AccessLog, list[AccessEvent]]:
    rows: list[AccessEvent] = []
    return AccessLog(rows.append), rows


@pytest.fixture
async def http(
    hub: DashboardHub, audit: tuple[AccessLog, list[AccessEvent]]
) -> AsyncIterator[httpx.AsyncClient]:
    now = datetime.now(timezone.utc)
    for run_id, org, project in (
        (ETL, "acme", "etl"),
        (WEB, "acme", "web"),
        (GLOBEX, "globex", "etl"),
    ):
        body = TaskStateEvent(task_id="t-1", task_name="etl_load", state="RUNNING")
        hub.model.apply(telemetry(body, run_id=run_id, org_id=org, project_id=project, ts=now))
    app = create_app(
        hub,
        DashboardSettings(
            token=Tokens.parse(["script@example.com=s3cret"], "dash"),
            roles=ROLES,
            sign_in=signed_in_by_header(),
        ),
        access_log=audit[0],
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        yield client


def who(name: str, groups: str = "") -> dict[str, str]:
    return {"x-test-user": name, "x-test-groups": groups}


VERA = who("vera@example.com")
ALICE = who("alice@example.com", "data-eng")


async def test_nobody_signed_in_reads_nothing(http: httpx.AsyncClient) -> None:
    for path in ("/api/state", "/api/state?limit=5", "/api/history/runs", "/metrics"):
        answer = await http.get(path)
        assert answer.status_code == 401, path
        assert "sign in" in answer.json()["error"]


async def test_a_viewer_sees_only_its_project(http: httpx.AsyncClient) -> None:
    state = (await http.get("/api/state", headers=VERA)).json()
    assert [run["run_id"] for run in state["runs"]] == [ETL]
    assert all(engine["summary"] is None for engine in state["engines"])
    assert state["fleet"] is None  # the fleet's totals count every project's runs
    # another project's run, asked by its id, is one the dashboard does not know
    assert (await http.get(f"/api/state?run={GLOBEX}", headers=VERA)).json()["run"] is None
    assert (await http.get(f"/api/state?run={ETL}", headers=VERA)).json()["run"]["run_id"] == ETL


async def test_an_admin_over_global_sees_every_run(http: httpx.AsyncClient) -> None:
    state = (await http.get("/api/state", headers=who("root@example.com"))).json()
    assert {run["run_id"] for run in state["runs"]} == {ETL, WEB, GLOBEX}
    assert (await http.get("/metrics", headers=who("root@example.com"))).status_code == 200


async def test_a_viewer_is_refused_every_control_with_a_reason_and_a_row(
    http: httpx.AsyncClient,
    broker: InMemoryBroker,
    audit: tuple[AccessLog, list[AccessEvent]],
) -> None:
    pause = {"scope": "task:etl_*", "type": "pause"}
    answers = [
        await http.post("/api/constraints", json=pause, headers=VERA),
        await http.delete("/api/constraints?scope=task:etl_*", headers=VERA),
        await http.post(f"/api/runs/{ETL}/cancel", headers=VERA),
        await http.get("/metrics", headers=VERA),
    ]
    assert [answer.status_code for answer in answers] == [403] * 4
    assert answers[0].json()["error"] == "vera@example.com is not an operator of scope task:etl_*"
    assert answers[2].json()["error"] == "vera@example.com is not an operator of project acme/etl"
    await audit[0].flush()
    rows = audit[1]
    assert [(r.who, r.via, r.action, r.target, r.outcome) for r in rows] == [
        ("vera@example.com", "proxy", "pause", "task:etl_*", "refused"),
        ("vera@example.com", "proxy", "resume", "task:etl_*", "refused"),
        ("vera@example.com", "proxy", "cancel", f"run:{ETL}", "refused"),
        ("vera@example.com", "proxy", "read", "/metrics", "refused"),
    ]
    assert broker.retained_topics == []


async def test_an_operator_pauses_within_its_scope_and_not_outside(
    http: httpx.AsyncClient,
    broker: InMemoryBroker,
    audit: tuple[AccessLog, list[AccessEvent]],
) -> None:
    """alice (org:acme, task:etl_*) pauses acme's etl_load*: on its topic in acme; not every
    org's, not another org's, not a wider glob."""
    inside = await http.post(
        "/api/constraints", json={"scope": "org:acme/task:etl_load*", "type": "pause"},
        headers=ALICE,
    )  # fmt: skip
    assert inside.status_code == 200, inside.text
    (topic,) = broker.retained_topics
    assert topic == "cascade/constraints/org/acme/task/etl_load%2A/pause"
    assert decode_constraint(broker.retained(topic) or b"").issued_by == "alice@example.com"
    for scope in ("global", "org:acme/task:*", "org:acme/task:web_*", "task:etl_load*",
                  "org:globex/task:etl_load*"):  # fmt: skip
        outside = await http.post(
            "/api/constraints", json={"scope": scope, "type": "pause"}, headers=ALICE
        )
        assert outside.status_code == 403, scope
    cancel = await http.post(f"/api/runs/{GLOBEX}/cancel", headers=ALICE)
    # another org's run is one she never heard of: a 404 naming nothing (still audited)
    unknown = await http.post(f"/api/runs/{'d' * 32}/cancel", headers=ALICE)
    assert cancel.status_code == unknown.status_code == 404
    assert cancel.json()["error"].replace(GLOBEX, "RUN") == unknown.json()["error"].replace(
        "d" * 32, "RUN"
    )
    await audit[0].flush()
    # the unknown run's cancel is the same refusal as the hidden one's: it folds into its row
    assert [(r.action, r.target, r.outcome, r.count) for r in audit[1]] == [
        ("pause", "org:acme/task:etl_load*", "allowed", 1),
        ("pause", "global", "refused", 1),
        ("pause", "org:acme/task:*", "refused", 1),
        ("pause", "org:acme/task:web_*", "refused", 1),
        ("pause", "task:etl_load*", "refused", 1),
        ("pause", "org:globex/task:etl_load*", "refused", 1),
        ("cancel", f"run:{GLOBEX}", "refused", 1),
        ("cancel", f"run:{GLOBEX}", "refused", 2),
    ]


async def test_a_bad_control_is_a_400_before_any_role_is_checked(
    http: httpx.AsyncClient, audit: tuple[AccessLog, list[AccessEvent]]
) -> None:
    answer = await http.post("/api/constraints", json={"scope": "team:x", "type": "pause"},
                             headers=VERA)  # fmt: skip
    assert answer.status_code == 400
    await audit[0].flush()
    assert audit[1] == []


async def test_someone_without_a_role_is_refused_and_audited(
    http: httpx.AsyncClient, audit: tuple[AccessLog, list[AccessEvent]]
) -> None:
    answer = await http.get("/api/state", headers=who("eve@example.com"))
    assert answer.status_code == 403
    assert answer.json()["error"] == "eve@example.com has no role on this dashboard"
    await audit[0].flush()
    assert [(r.who, r.outcome) for r in audit[1]] == [("eve@example.com", "refused")]


@pytest.mark.parametrize(
    "headers",
    [
        {"sec-fetch-site": "cross-site"},
        {"sec-fetch-site": "same-site"},
        {"origin": "http://evil.example"},
    ],
)
async def test_a_session_control_made_by_another_sites_page_is_refused(
    http: httpx.AsyncClient, broker: InMemoryBroker, headers: dict[str, str]
) -> None:
    body = {"scope": "org:acme/task:etl_x", "type": "pause"}
    answer = await http.post("/api/constraints", json=body, headers={**ALICE, **headers})
    assert answer.status_code == 403
    assert "use the dashboard's own page" in answer.json()["error"]
    assert broker.retained_topics == []
    same = await http.post("/api/constraints", json=body,
                           headers={**ALICE, "sec-fetch-site": "same-origin",
                                    "origin": "http://127.0.0.1"})  # fmt: skip
    assert same.status_code == 200, same.text


async def test_a_named_token_is_a_person_of_the_roles_file(http: httpx.AsyncClient) -> None:
    """script@example.com holds no grant: its token reads nothing."""
    answer = await http.get("/api/state", headers={"Authorization": "Bearer s3cret"})
    assert answer.status_code == 403


async def test_a_viewers_stream_holds_only_its_runs(
    http: httpx.AsyncClient, hub: DashboardHub
) -> None:
    whole = await http.get("/api/stream", headers=VERA)
    assert whole.status_code == 400  # the whole state's stream would show every project
    among = Access.of(ROLES, Identity("vera@example.com", "oidc")).among()
    follower = Follower.asked(hub, {"since": "0", "run": GLOBEX}, among=among)
    raw = follower.next_event() or b""
    first = json.loads(raw.split(b"data: ", 1)[1])
    assert not {"run", "tasks", "logs"} & set(first)  # another project's run is not opened
    assert [run["run_id"] for run in first["runs"]["upsert"]] == [ETL]
    assert all(engine["summary"] is None for engine in first["engines"]["upsert"])
    assert first["fleet"] is None


async def test_the_page_shows_controls_to_operators_only(http: httpx.AsyncClient) -> None:
    viewer = (await http.get("/api/state", headers=VERA)).json()
    operator = (await http.get("/api/state", headers=ALICE)).json()
    assert (viewer["controls"], operator["controls"]) == (False, True)
