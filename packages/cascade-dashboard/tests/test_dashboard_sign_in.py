"""Signing in to a team's dashboard: a trusted proxy's header, the path after signing in,
/api/me, the content-security-policy, and `cascade dashboard`'s sign-in options."""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from typer.testing import Result

from cascade.control.access import Roles
from cascade.dashboard import (
    DashboardHub,
    DashboardSettings,
    OidcSignIn,
    ProxySignIn,
    SignIn,
    create_app,
)

PROXY = ipaddress.ip_network("10.0.0.0/24")
ROLES = Roles.parse('[[grant]]\nrole = "viewer"\nscopes = ["org:acme"]\ngroups = ["ops"]\n')
SECRET = "s" * 32


def client(
    hub: DashboardHub, peer: str, sign_in: SignIn | None = None, roles: Roles | None = None
) -> httpx.AsyncClient:
    """A client whose requests come from ``peer``, as a proxy's would."""
    settings = DashboardSettings(sign_in=sign_in, roles=roles)
    transport = httpx.ASGITransport(app=create_app(hub, settings), client=(peer, 5555))
    return httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1")


async def test_a_trusted_proxys_header_signs_its_user_in(hub: DashboardHub) -> None:
    """From 10.0.0.7 (in the trusted network): /api/me names the user, groups and grants."""
    sign_in = ProxySignIn([PROXY])
    headers = {"X-Forwarded-User": "alice", "X-Forwarded-Groups": "ops, data-eng,,"}
    async with client(hub, "10.0.0.7", sign_in=sign_in, roles=ROLES) as http:
        me = await http.get("/api/me", headers=headers)
    assert me.status_code == 200
    body = me.json()
    assert (body["name"], body["via"], body["groups"]) == ("alice", "proxy", ["data-eng", "ops"])
    assert body["role"] == "viewer"


async def test_the_header_from_anyone_else_is_ignored_and_logged(
    hub: DashboardHub, caplog: pytest.LogCaptureFixture
) -> None:
    """From 192.0.2.9, the same header signs nobody in (401, no sign-in page to offer); it is
    logged once however often it comes."""
    sign_in = ProxySignIn([PROXY])
    async with client(hub, "192.0.2.9", sign_in=sign_in, roles=ROLES) as http:
        with caplog.at_level(logging.WARNING, "cascade.dashboard"):
            answers = [await http.get("/api/me", headers={"X-Forwarded-User": "root"})
                       for _ in range(3)]  # fmt: skip
    assert [a.status_code for a in answers] == [401] * 3
    assert answers[0].json() == {"error": "not signed in"}
    logged = [r.getMessage() for r in caplog.records if "X-Forwarded-User" in r.getMessage()]
    assert logged == ["ignored X-Forwarded-User from 192.0.2.9, which is not a --trusted-proxy"]


@pytest.mark.parametrize(
    "headers",
    [[("x-forwarded-user", "alice"), ("x-forwarded-user", "root")],
     [("x-forwarded-user", "bad\x1bname")], [("x-forwarded-user", "  ")]],
)  # fmt: skip
async def test_a_trusted_proxys_unusable_header_signs_nobody_in(
    hub: DashboardHub, headers: list[tuple[str, str]]
) -> None:
    """Two user headers, a control character, a blank name: nobody, never a 500."""
    async with client(hub, "10.0.0.7", sign_in=ProxySignIn([PROXY]), roles=ROLES) as http:
        me = await http.get("/api/me", headers=headers)
    assert me.status_code == 401


def test_a_proxy_in_an_ipv6_network_and_a_v4_mapped_peer() -> None:
    """::ffff:10.0.0.7 is 10.0.0.7; a peer that is no address is never trusted."""
    proxy = ProxySignIn([PROXY, ipaddress.ip_network("fd00::/64")])
    assert proxy.trusts("::ffff:10.0.0.7")
    assert proxy.trusts("fd00::1")
    assert not proxy.trusts("10.0.1.7")
    assert not proxy.trusts("unix-socket")
    assert not proxy.trusts(None)


@pytest.mark.parametrize("value", [None, "", "/", "/?run=abc&task=x", "/static/app.js"])
def test_next_accepts_local_paths(value: str | None) -> None:
    """A path on the dashboard (or none: the page)."""
    assert OidcSignIn.next_path(value) == (value or "/")


@pytest.mark.parametrize(
    "value",
    ["https://evil.example/", "//evil.example/x", "/\\evil.example", "evil.example",
     "javascript:alert(1)", "/\r\nSet-Cookie: x=1", "/" + "a" * 3000],
)  # fmt: skip
def test_next_refuses_anything_else(value: str) -> None:
    """Another site, a scheme, a backslash, a control character, a huge value: ValueError."""
    with pytest.raises(ValueError, match="next"):
        OidcSignIn.next_path(value)


def oidc(**options: object) -> OidcSignIn:
    values: dict[str, object] = {"issuer": "https://id.example", "client_id": "cascade",
                                 "client_secret": "x", "public_url": "https://cascade.example",
                                 "session_secret": SECRET, **options}  # fmt: skip
    return OidcSignIn(**values)  # type: ignore[arg-type]


async def test_me_offers_the_sign_in_page_and_the_policy_allows_the_sign_out_form(
    hub: DashboardHub,
) -> None:
    """Nobody signed in: 401 naming /auth/login; the page's form-action allows this origin and
    the provider's only; a dashboard without a sign-in allows no form at all."""
    async with client(hub, "127.0.0.1", sign_in=oidc(), roles=ROLES) as http:
        me = await http.get("/api/me")
        policy = me.headers["content-security-policy"]
        login = await http.get("/auth/login", params={"next": "https://evil.example"})
        logout = await http.get("/auth/logout")
    assert me.status_code == 401
    assert me.json() == {"error": "not signed in", "sign_in": "/auth/login"}
    assert "form-action 'self' https://id.example" in policy
    assert "default-src 'self'" in policy
    assert login.status_code == 400
    assert "next must be a path" in login.text
    assert logout.status_code == 405
    async with client(hub, "127.0.0.1") as http:
        assert "form-action 'none'" in (await http.get("/")).headers["content-security-policy"]


def test_an_https_public_url_makes_the_cookie_secure() -> None:
    """Secure with https://, not with http:// (a browser would never send it back)."""
    assert oidc().secure
    assert not oidc(public_url="http://127.0.0.1:8787").secure
    assert oidc().redirect_uri == "https://cascade.example/auth/callback"


@pytest.mark.parametrize(
    ("options", "says"),
    [({"issuer": "id.example"}, "http:// or https:// URL"),
     ({"public_url": "https://c.example/?x=1"}, "no ?query"),
     ({"scope": "email"}, "lacks openid"),
     ({"session_secret": "short"}, "too short")],
)  # fmt: skip
def test_bad_oidc_settings_say_what_is_wrong(options: dict[str, object], says: str) -> None:
    """Each refused with a ValueError naming the setting."""
    with pytest.raises(ValueError, match=says.replace("?", r"\?")):
        oidc(**options)


@pytest.fixture
def roles_file(tmp_path: Path) -> str:
    path = tmp_path / "roles.toml"
    path.write_text('[[grant]]\nrole = "admin"\nscopes = ["global"]\npeople = ["a"]\n')
    return str(path)


ISSUER = ["--oidc-issuer", "https://id.example", "--oidc-client-id", "cascade",
          "--oidc-client-secret", "hunter2-secret"]  # fmt: skip


@pytest.mark.parametrize(
    ("args", "says"),
    [(["--oidc-client-id", "c"], "--oidc-client-id is an OpenID Connect setting"),
     (["--public-url", "https://c.example"], "--public-url is an OpenID Connect setting"),
     (["--proxy-user-header", "X-User"], "--proxy-user-header needs --trusted-proxy"),
     (["--oidc-issuer", "https://id.example", "--public-url", "https://c.example",
       "--roles", "R"], "--oidc-issuer needs --oidc-client-id"),
     ([*ISSUER, "--roles", "R"], "--oidc-issuer needs --public-url"),
     (["--oidc-issuer", "https://id.example", "--oidc-client-id", "c", "--roles", "R"],
      "--oidc-issuer needs --oidc-client-secret"),
     ([*ISSUER, "--public-url", "https://c.example"], "--oidc-issuer needs --roles FILE"),
     (["--trusted-proxy", "10.0.0.1"], "--trusted-proxy needs --roles FILE"),
     ([*ISSUER, "--public-url", "https://c.example", "--trusted-proxy", "10.0.0.1",
       "--roles", "R"], "not both"),
     (["--roles", "R"], "--roles needs a way to sign in"),
     (["--trusted-proxy", "10.0.0.1/8", "--roles", "R"], "is not an address or a network"),
     (["--trusted-proxy", "10.0.0.1", "--proxy-user-header", "X User", "--roles", "R"],
      "is not a header name"),
     ([*ISSUER, "--public-url", "c.example", "--roles", "R"], "public URL must be"),
     ([*ISSUER, "--public-url", "https://c.example", "--session-secret", "short",
       "--roles", "R"], "session secret is too short"),
     (["--token", "a=x", "--roles", "missing.toml"], "cannot read the roles file")],
)  # fmt: skip
def test_contradictory_or_incomplete_sign_in_options_are_usage_errors(
    invoke: Callable[..., Result], roles_file: str, args: list[str], says: str
) -> None:
    """Exit 2 naming what is missing or what clashes; nothing is served."""
    args = [roles_file if a == "R" else a for a in args]
    result = invoke("dashboard", "--listen", "127.0.0.1:0", *args)
    assert result.exit_code == 2, result.output
    assert says in " ".join(result.output.split()), result.output


def test_the_client_secret_is_never_printed(invoke: Callable[..., Result], roles_file: str) -> None:
    """Not even in a usage error about the other options."""
    result = invoke("dashboard", *ISSUER, "--roles", roles_file)
    assert result.exit_code == 2
    assert "hunter2-secret" not in result.output
