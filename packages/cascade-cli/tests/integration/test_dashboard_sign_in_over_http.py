"""Signing in to a team's dashboard with a real OpenID Connect provider: both served over
real HTTP, real redirects, an ID token signed with the provider's key."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from oidc_provider_mock import User, run_server_in_thread
from rich.console import Console

from cascade.cli import BrokerOptions, mqtt_connector
from cascade.cli.access import Roles
from cascade.cli.dashboard import OidcSignIn, serve_dashboard
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
ALICE = User(sub="alice", claims={"email": "alice@example.com", "groups": ["data-eng", "ops"]})


@pytest.fixture
def issuer() -> Iterator[str]:
    """The provider, serving on a free port in a thread of its own; alice is one of its users."""
    with run_server_in_thread(user_claims=[ALICE], require_nonce=True) as server:
        yield f"http://localhost:{server.server_port}"


@dataclass
class Served:
    url: str
    sign_in: OidcSignIn


@pytest.fixture
async def dashboard(
    mqtt_broker: BrokerEndpoint, issuer: str, tmp_path: Path
) -> AsyncIterator[Served]:
    """A team's dashboard on the test's broker, signing people in at ``issuer``."""
    roles = tmp_path / "roles.toml"
    roles.write_text(ROLES, encoding="utf-8")
    port = free_port()
    public_url = f"http://127.0.0.1:{port}"
    sign_in = OidcSignIn(issuer, "cascade-dashboard", "a-client-secret", public_url,
                         "a-session-secret-of-32-characters")  # fmt: skip
    options = BrokerOptions(host=mqtt_broker.host, port=mqtt_broker.port)
    ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    serving = asyncio.create_task(
        serve_dashboard(
            options,
            mqtt_connector,
            "127.0.0.1",
            port,
            None,
            Console(record=True, width=200),
            on_ready=ready.set_result,
            sign_in=sign_in,
            roles=Roles.load(roles),
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
