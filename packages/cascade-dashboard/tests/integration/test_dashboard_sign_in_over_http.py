"""Signing in to a team's dashboard with a real OpenID Connect provider: both served over
real HTTP, real redirects, an ID token signed with the provider's key."""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from oidc_provider_mock import User, run_server_in_thread
from rich.console import Console

from cascade.cli.plumbing import BrokerOptions, mqtt_connector
from cascade.control.access import Roles
from cascade.dashboard import DashboardSettings, OidcSignIn, Tokens, serve_dashboard
from cascade.testkit import BrokerEndpoint, free_port

# the provider (oidc-provider-mock 0.3) calls Authlib's server side the way it did before 1.6
pytestmark = [
    pytest.mark.filterwarnings("ignore:get_jwt_config:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:authlib.jose module is deprecated"),
]

ROLES = """
[[grant]]
role = "operator"
scopes = ["project:acme/etl"]
groups = ["data-eng"]

[[grant]]
role = "viewer"
scopes = ["org:acme"]
people = ["alice@example.com"]
"""
ROLES += """
[[grant]]
role = "admin"
scopes = ["global"]
people = ["root"]
"""
ROOT = {"authorization": "Bearer the-root-secret"}
ALICE = User(sub="alice", claims={"email": "alice@example.com", "email_verified": True,
                                  "groups": ["data-eng", "ops"]})  # fmt: skip
# two accounts that say they are alice: by a name they chose, by an address nobody verified
NAMED_ALICE = User(sub="mallory", claims={"preferred_username": "alice@example.com"})
UNVERIFIED = User(sub="eve", claims={"email": "alice@example.com", "email_verified": False})


@pytest.fixture
def issuer() -> Iterator[str]:
    """The provider, serving on a free port in a thread of its own; alice is one of its users."""
    with run_server_in_thread(
        user_claims=[ALICE, NAMED_ALICE, UNVERIFIED], require_nonce=True
    ) as server:
        yield f"http://localhost:{server.server_port}"


@dataclass
class Served:
    url: str
    sign_in: OidcSignIn


@pytest.fixture
def name_claim() -> str:
    """The claim the dashboard names people by (a test may say another)."""
    return "email"


@pytest.fixture
async def dashboard(
    mqtt_broker: BrokerEndpoint, issuer: str, tmp_path: Path, name_claim: str
) -> AsyncIterator[Served]:
    """A team's dashboard on the test's broker, signing people in at ``issuer``."""
    roles = tmp_path / "roles.toml"
    by_sub = '[[grant]]\nrole = "operator"\nscopes = ["project:acme/etl"]\n'
    by_sub += f'people = ["{issuer}#alice"]\n'
    roles.write_text(ROLES + by_sub, encoding="utf-8")
    port = free_port()
    public_url = f"http://127.0.0.1:{port}"
    sign_in = OidcSignIn(issuer, "cascade-dashboard", "a-client-secret", public_url,
                         "a-session-secret-of-32-characters", name_claim=name_claim)  # fmt: skip
    options = BrokerOptions(host=mqtt_broker.host, port=mqtt_broker.port)
    ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    serving = asyncio.create_task(
        serve_dashboard(
            DashboardSettings(
                connector=lambda: mqtt_connector(options),
                port=port,
                token=Tokens(((b"the-root-secret", "root"),)),
                say=Console(record=True, width=200).print,
                on_ready=ready.set_result,
                sign_in=sign_in,
                roles=Roles.load(roles),
            )
        )
    )
    try:
        await asyncio.wait_for(asyncio.shield(ready), 10)
        yield Served(public_url, sign_in)
    finally:
        serving.cancel()
        await asyncio.gather(serving, return_exceptions=True)


async def sign_in_as(http: httpx.AsyncClient, dashboard: str, sub: str, next_path: str) -> str:
    """Through the provider's form as ``sub``, redirect by redirect; the URL it ends on."""
    to_provider = await http.get(f"{dashboard}/auth/login", params={"next": next_path})
    assert to_provider.status_code == 302, to_provider.text
    authorize = to_provider.headers["location"]
    asked = parse_qs(urlsplit(authorize).query)
    assert asked["code_challenge_method"] == ["S256"]
    assert asked["code_challenge"]
    assert asked["state"]
    assert asked["nonce"]
    assert asked["redirect_uri"] == [f"{dashboard}/auth/callback"]
    form = await http.get(authorize)
    assert form.status_code == 200
    assert "Authorize" in form.text
    back = await http.post(authorize, data={"sub": sub})
    assert back.status_code == 302, back.text
    callback = back.headers["location"]
    assert callback.startswith(f"{dashboard}/auth/callback?")
    landed = await http.get(callback)
    assert landed.status_code == 303, landed.text
    cookie = [part.strip().lower() for part in landed.headers["set-cookie"].split(";")]
    assert cookie[0].startswith("cascade_session=")
    assert {"httponly", "samesite=lax", "path=/", "max-age=28800"} <= set(cookie)
    assert "secure" not in cookie  # http://127.0.0.1: a browser would not send it back
    return str(landed.headers["location"])


async def test_alice_signs_in_and_the_dashboard_names_her_groups_and_grants(
    dashboard: Served,
) -> None:
    """Login → the provider's form → the callback → next; /api/me names alice (by her email),
    her groups, and the grants the roles file gives her name and her group."""
    async with httpx.AsyncClient(timeout=10) as http:
        before = await http.get(f"{dashboard.url}/api/me")
        assert before.status_code == 401
        assert before.json() == {"error": "not signed in", "sign_in": "/auth/login"}
        landed = await sign_in_as(http, dashboard.url, "alice", "/?run=abc")
        assert landed == "/?run=abc"
        me = await http.get(f"{dashboard.url}/api/me")
    assert me.status_code == 200, me.text
    body = me.json()
    assert (body["name"], body["via"], body["claim"]) == ("alice@example.com", "oidc", "email")
    assert body["groups"] == ["data-eng", "ops"]
    assert body["role"] == "operator"
    assert {(g["role"], tuple(g["scopes"])) for g in body["grants"]} == {
        ("operator", ("project:acme/etl",)),
        ("viewer", ("org:acme",)),
    }


async def test_a_tampered_session_cookie_signs_nobody_in(dashboard: Served) -> None:
    """One character of the signed cookie changed: /api/me answers 401."""
    async with httpx.AsyncClient(timeout=10) as http:
        await sign_in_as(http, dashboard.url, "alice", "/")
        value = http.cookies["cascade_session"]
        payload, _, signature = value.partition(".")
        forged = payload[:-2] + ("A" if payload[-2] != "A" else "B") + payload[-1]
        http.cookies.clear()
        http.cookies.set("cascade_session", f"{forged}.{signature}", domain="127.0.0.1")
        me = await http.get(f"{dashboard.url}/api/me")
    assert me.status_code == 401


async def test_signing_out_ends_the_session(dashboard: Served, issuer: str) -> None:
    """POST /auth/logout: to the provider's end_session_endpoint, and the old cookie is spent;
    GET /auth/logout does nothing."""
    async with httpx.AsyncClient(timeout=10) as http:
        await sign_in_as(http, dashboard.url, "alice", "/")
        assert (await http.get(f"{dashboard.url}/auth/logout")).status_code == 405
        assert (await http.get(f"{dashboard.url}/api/me")).status_code == 200
        out = await http.post(f"{dashboard.url}/auth/logout")
        assert out.status_code == 303
        assert out.headers["location"].startswith(f"{issuer}/oauth2/end_session?")
        assert (await http.get(f"{dashboard.url}/api/me")).status_code == 401


async def test_a_callback_with_a_wrong_state_is_refused(dashboard: Served) -> None:
    """The provider's answer carrying a state this browser never sent: 400, nobody signed in;
    a provider's error is a 401 page saying it, never a 500."""
    async with httpx.AsyncClient(timeout=10) as http:
        to_provider = await http.get(f"{dashboard.url}/auth/login")
        authorize = to_provider.headers["location"]
        back = await http.post(authorize, data={"sub": "alice"})
        callback = re.sub(r"state=[^&]+", "state=forged", back.headers["location"])
        refused = await http.get(callback)
        assert refused.status_code == 400
        assert "state does not match" in refused.text
        assert (await http.get(f"{dashboard.url}/api/me")).status_code == 401
        denied = await http.get(
            f"{dashboard.url}/auth/callback", params={"error": "access_denied", "state": "x"}
        )
    assert denied.status_code == 401
    assert "access_denied" in denied.text


async def test_login_refuses_a_next_that_leaves_the_dashboard(dashboard: Served) -> None:
    """next=https://elsewhere or //elsewhere: 400, no redirect at all."""
    async with httpx.AsyncClient(timeout=10) as http:
        for value in ("https://evil.example/", "//evil.example/", "/\\evil.example"):
            answer = await http.get(f"{dashboard.url}/auth/login", params={"next": value})
            assert answer.status_code == 400, value
            assert "location" not in answer.headers


async def through_the_provider(http: httpx.AsyncClient, dashboard: str, sub: str) -> httpx.Response:
    """Login → the provider's form as ``sub`` → the callback's answer."""
    to_provider = await http.get(f"{dashboard}/auth/login")
    back = await http.post(to_provider.headers["location"], data={"sub": sub})
    assert back.status_code == 302, back.text
    return await http.get(back.headers["location"])


@pytest.mark.parametrize(
    ("sub", "says"),
    [("mallory", "has no email"), ("eve", "email_verified is not true")],
)
async def test_an_account_claiming_the_admins_name_signs_nobody_in(
    dashboard: Served, sub: str, says: str
) -> None:
    """preferred_username = alice's address (no email), or alice's address unverified: 403 saying
    why, no session, never alice."""
    async with httpx.AsyncClient(timeout=10) as http:
        refused = await through_the_provider(http, dashboard.url, sub)
        me = await http.get(f"{dashboard.url}/api/me")
    assert refused.status_code == 403
    assert says in refused.text
    assert me.status_code == 401


@pytest.mark.parametrize("name_claim", ["sub"])
async def test_a_claim_named_explicitly_signs_in_qualified_with_the_issuer(
    dashboard: Served, issuer: str
) -> None:
    """--oidc-name-claim sub: alice is ISSUER#alice, /api/me says by which claim; the roles file
    names her so."""
    async with httpx.AsyncClient(timeout=10) as http:
        landed = await through_the_provider(http, dashboard.url, "alice")
        me = await http.get(f"{dashboard.url}/api/me")
    assert landed.status_code == 303
    assert (me.json()["name"], me.json()["claim"]) == (f"{issuer}#alice", "sub")
    assert me.json()["role"] == "operator"


async def test_a_cookie_copied_before_logout_is_refused_after_it(dashboard: Served) -> None:
    """The cookie kept aside, then POST /auth/logout: the copy signs nobody in (401)."""
    async with httpx.AsyncClient(timeout=10) as http:
        await sign_in_as(http, dashboard.url, "alice", "/")
        copied = http.cookies["cascade_session"]
        assert (await http.post(f"{dashboard.url}/auth/logout")).status_code == 303
    async with httpx.AsyncClient(timeout=10, cookies={"cascade_session": copied}) as thief:
        me = await thief.get(f"{dashboard.url}/api/me")
    assert me.status_code == 401


async def test_an_admin_revokes_a_session_and_its_cookie_is_refused(dashboard: Served) -> None:
    """GET /api/sessions lists alice's session (by handle, never its id); DELETE
    /api/sessions?who=alice ends it: her cookie is refused at once; she is not an admin, so her
    own list is refused."""
    async with httpx.AsyncClient(timeout=10) as http:
        await sign_in_as(http, dashboard.url, "alice", "/")
        assert (await http.get(f"{dashboard.url}/api/sessions")).status_code == 403
        listed = await http.get(f"{dashboard.url}/api/sessions", headers=ROOT)
        assert [s["who"] for s in listed.json()["sessions"]] == ["alice@example.com"]
        assert listed.json()["sessions"][0]["claim"] == "email"
        revoked = await http.delete(
            f"{dashboard.url}/api/sessions", params={"who": "alice@example.com"}, headers=ROOT
        )
        assert revoked.status_code == 200, revoked.text
        assert len(revoked.json()["revoked"]) == 1
        assert (await http.get(f"{dashboard.url}/api/me")).status_code == 401
        listed = await http.get(f"{dashboard.url}/api/sessions", headers=ROOT)
    assert listed.json()["sessions"] == []


async def test_signing_in_makes_no_http_client_per_login_and_a_flood_gets_429(
    dashboard: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After the first login (the metadata fetched once), 15 more make no HTTP client at all
    (Authlib made one, with its TLS context, each); 40 at once from one address: the budget's
    20 answered, the rest 429."""
    import httpx2

    made = []
    init = httpx2.AsyncClient.__init__

    def counted(self: httpx2.AsyncClient, *args: object, **kwargs: object) -> None:
        made.append(type(self).__name__)
        init(self, *args, **kwargs)  # type: ignore[arg-type]

    async with httpx.AsyncClient(timeout=10) as http:
        began = time.monotonic()
        assert (await http.get(f"{dashboard.url}/auth/login")).status_code == 302
        monkeypatch.setattr(httpx2.AsyncClient, "__init__", counted)
        logins = [await http.get(f"{dashboard.url}/auth/login") for _ in range(15)]
        monkeypatch.undo()
        assert [a.status_code for a in logins] == [302] * 15
        assert made == []
        flood = await asyncio.gather(*(http.get(f"{dashboard.url}/auth/login")
                                       for _ in range(40)))  # fmt: skip
    codes = [a.status_code for a in flood]
    # 4 of the budget's 20 were left, and one more a second since the first login
    refilled = math.ceil(time.monotonic() - began)
    assert codes.count(302) <= 4 + refilled, codes
    assert codes.count(429) >= 1
    assert next(a for a in flood if a.status_code == 429).headers["retry-after"] == "1"
