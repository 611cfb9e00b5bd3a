"""Per-person API tokens at a team's dashboard: admins make and revoke them, a token's requests
are its holder's with the holder's roles, a revoked or expired one is a 401; and the access
rows go to the history, where they vouch for the controls the recorder received."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timezone
from ipaddress import ip_network
from pathlib import Path

import httpx
import pytest

from cascade.connector_kit.testing import InMemoryBroker, telemetry
from cascade.control.access import Roles
from cascade.dashboard import DashboardHub, DashboardSettings, ProxySignIn, create_app
from cascade.dashboard.auth import AccessLog, ApiTokens
from cascade.history import History, Received
from cascade.interfaces import TaskStateEvent, decode_constraint

ROLES = Roles.parse("""
[[grant]]
role = "viewer"
scopes = ["project:acme/etl"]
people = ["vera@example.com"]

[[grant]]
role = "operator"
scopes = ["org:acme", "task:etl_*"]
people = ["olga@example.com"]

[[grant]]
role = "admin"
scopes = ["global"]
people = ["root@example.com"]
""")
ETL = "a" * 32
GLOBEX = "c" * 32
ROOT = {"x-test-user": "root@example.com"}
VERA = {"x-test-user": "vera@example.com"}


def signed_in_by_header() -> ProxySignIn:
    """Whoever ``x-test-user`` names, as an auth proxy in front would say; the test client's
    requests come from the trusted 127.0.0.1."""
    return ProxySignIn([ip_network("127.0.0.1/32")], "x-test-user")


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def history(tmp_path: Path) -> Iterator[History]:
    with History(tmp_path / "history.sqlite3", mode="write") as history:
        yield history


@pytest.fixture
def access_log(history: History) -> AccessLog:
    """The access log writing into the history, as `cascade dashboard --roles --db` makes it."""

    def write(event: object) -> None:
        history.record_access(**{k: getattr(event, k) for k in (
            "who", "via", "action", "target", "outcome", "reason", "at")})  # fmt: skip

    return AccessLog(write)


@pytest.fixture
async def http(
    hub: DashboardHub, history: History, access_log: AccessLog
) -> AsyncIterator[httpx.AsyncClient]:
    now = datetime.now(timezone.utc)
    for run_id, org in ((ETL, "acme"), (GLOBEX, "globex")):
        body = TaskStateEvent(task_id="t-1", task_name="etl_load", state="RUNNING")
        hub.model.apply(telemetry(body, run_id=run_id, org_id=org, project_id="etl", ts=now))
    settings = DashboardSettings(roles=ROLES, sign_in=signed_in_by_header(), history=history)
    app = create_app(hub, settings, access_log=access_log, api_tokens=history)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        yield client


async def make(http: httpx.AsyncClient, holder: str, **more: str) -> str:
    answer = await http.post("/api/tokens", json={"holder": holder, **more}, headers=ROOT)
    assert answer.status_code == 201, answer.text
    assert answer.headers["cache-control"] == "no-store"
    return str(answer.json()["secret"])


async def test_an_admin_makes_a_token_and_its_holder_reads_as_their_role_allows(
    http: httpx.AsyncClient,
) -> None:
    secret = await make(http, "vera@example.com", note="a report script", expires="30d")
    assert secret.startswith("cascade_")
    me = (await http.get("/api/me", headers=bearer(secret))).json()
    assert (me["name"], me["via"], me["role"]) == ("vera@example.com", "api-token", "viewer")
    state = (await http.get("/api/state", headers=bearer(secret))).json()
    assert [run["run_id"] for run in state["runs"]] == [ETL]
    pause = await http.post("/api/constraints", json={"scope": "task:etl_*", "type": "pause"},
                            headers=bearer(secret))  # fmt: skip
    assert pause.status_code == 403
    listed = (await http.get("/api/tokens", headers=ROOT)).json()["tokens"]
    assert [(t["holder"], t["note"], t["state"]) for t in listed] == [
        ("vera@example.com", "a report script", "active")
    ]
    assert listed[0]["last_used_at"] is not None
    assert secret not in str(listed)
    assert listed[0]["expires_at"] > time.time() + 29 * 86400


async def test_a_viewer_may_not_make_list_or_revoke_tokens(
    http: httpx.AsyncClient, history: History, access_log: AccessLog
) -> None:
    answers = [
        await http.post("/api/tokens", json={"holder": "vera@example.com"}, headers=VERA),
        await http.get("/api/tokens", headers=VERA),
        await http.delete("/api/tokens/1", headers=VERA),
    ]
    assert [a.status_code for a in answers] == [403, 403, 403]
    assert answers[0].json()["error"] == "vera@example.com is not an admin over global"
    assert history.tokens() == []
    await access_log.flush()
    refused = [(e.type, e.issued_by, e.vouched) for e in history.audit()]
    assert sorted(refused) == [
        ("token-create", "vera@example.com", "proxy"),
        ("token-list", "vera@example.com", "proxy"),
        ("token-revoke", "vera@example.com", "proxy"),
    ]


async def test_a_revoked_token_is_a_401(http: httpx.AsyncClient) -> None:
    secret = await make(http, "vera@example.com")
    assert (await http.get("/api/state", headers=bearer(secret))).status_code == 200
    [token] = (await http.get("/api/tokens", headers=ROOT)).json()["tokens"]
    revoked = await http.delete(f"/api/tokens/{token['id']}", headers=ROOT)
    assert revoked.status_code == 200
    assert revoked.json()["token"]["revoked_at"] is not None
    answer = await http.get("/api/state", headers=bearer(secret))
    assert answer.status_code == 401
    assert answer.json()["error"] == "unknown, revoked or expired API token"
    assert (await http.get("/api/state", headers=bearer(secret + "x"))).status_code == 401


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"holder": ""}, 400),
        ({"holder": "a", "expires": "soon"}, 400),
        ({"holder": "a", "colour": "red"}, 400),
        (["a"], 400),
    ],
)
async def test_a_bad_request_for_a_token_is_a_400(
    http: httpx.AsyncClient, body: object, status: int
) -> None:
    answer = await http.post("/api/tokens", json=body, headers=ROOT)
    assert answer.status_code == status
    assert answer.json()["error"]
    bad_id = await http.delete("/api/tokens/x1", headers=ROOT)
    assert bad_id.status_code == 400
    assert (await http.delete("/api/tokens/77", headers=ROOT)).status_code == 404


async def test_an_operators_control_by_token_is_vouched_for_in_the_audit(
    http: httpx.AsyncClient, broker: InMemoryBroker, history: History, access_log: AccessLog
) -> None:
    """The pause as the recorder receives it names olga; the dashboard's row says an API token
    vouched for her; a pause claimed under her name by another writer is not vouched for."""
    secret = await make(http, "olga@example.com")
    answer = await http.post("/api/constraints",
                             json={"scope": "org:acme/task:etl_*", "type": "pause"},
                             headers=bearer(secret))  # fmt: skip
    assert answer.status_code == 200, answer.text
    await access_log.flush()
    (topic,) = broker.retained_topics
    constraint = decode_constraint(broker.retained(topic) or b"")
    claimed = decode_constraint({"id": "x", "scope": "global", "type": "pause", "params": {},
                                 "issued_by": "olga@example.com"})  # fmt: skip
    now = time.time()
    history.store(
        [
            Received(topic, constraint, now),
            Received("cascade/constraints/global/pause", claimed, now),
        ]
    )
    by_scope = {e.scope: e for e in history.audit() if e.action == "set"}
    assert by_scope["org:acme/task:etl_*"].vouched == "api-token"
    assert by_scope["org:acme/task:etl_*"].issued_by == "olga@example.com"
    assert by_scope["global"].vouched is None


async def test_a_lookup_is_cached_a_few_seconds_and_expiry_is_exact(history: History) -> None:
    """A revoke elsewhere takes effect once the cached lookup is older than the cache's ttl;
    an expiry takes effect at once."""
    made = history.create_token("vera", created_by="root", expires_at=time.time() + 3600)
    ticks = [0.0]
    wall = [time.time()]
    tokens = ApiTokens(history, ttl=5.0, clock=lambda: ticks[0], wall=lambda: wall[0])
    assert await tokens.holder(made.secret) == "vera"
    history.revoke_token(made.token.id)
    ticks[0] = 4.9
    assert await tokens.holder(made.secret) == "vera"  # cached
    ticks[0] = 5.0
    assert await tokens.holder(made.secret) is None
    other = history.create_token("vera", created_by="root", expires_at=time.time() + 3600)
    assert await tokens.holder(other.secret) == "vera"
    wall[0] += 7200
    assert await tokens.holder(other.secret) is None
