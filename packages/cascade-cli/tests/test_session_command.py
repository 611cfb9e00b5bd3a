"""`cascade session list|revoke`: the sign-in sessions a team's dashboard keeps in its history,
and a revocation there reaching a dashboard's sessions when it reads the history again."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner, Result

from cascade.cli import app
from cascade.cli.plumbing import CliContext
from cascade.dashboard import OidcSignIn
from cascade.history import History


def invoke(*args: str) -> Result:
    return CliRunner().invoke(app, list(args), obj=CliContext(console=Console(width=200)))


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "history.sqlite3"


@pytest.fixture
def history(path: Path) -> Iterator[History]:
    with History(path, mode="write") as history:
        yield history


def sign_in() -> OidcSignIn:
    return OidcSignIn("https://id.example", "cascade", "x", "https://cascade.example", "s" * 32)


async def test_a_session_revoked_with_the_cli_is_refused_at_the_dashboard(
    history: History, path: Path
) -> None:
    """alice signs in (her session kept in the history); `cascade session list` shows it by
    handle, never its id; `cascade session revoke --who` ends it; the dashboard, reading the
    history again, refuses it, and bob's stays."""
    oidc = sign_in()
    oidc.sessions.attach(history)
    alice = await oidc.sessions.start("alice@example.com", "email")
    bob = await oidc.sessions.start("bob@example.com", "email")
    listed = invoke("session", "list", "--json", "--db", str(path))
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.output)
    assert sorted(r["who"] for r in rows) == ["alice@example.com", "bob@example.com"]
    assert alice not in listed.output
    ended = invoke("session", "revoke", "--who", "alice@example.com", "--as", "root", "--db",
                   str(path))  # fmt: skip
    assert ended.exit_code == 0, ended.output
    assert "ended" in ended.output
    assert oidc.sessions.live(alice)  # not read again yet
    oidc.sessions.refresh()
    assert not oidc.sessions.live(alice)
    assert oidc.sessions.live(bob)
    again = invoke("session", "revoke", "--who", "alice@example.com", "--db", str(path))
    assert again.exit_code != 0
    assert "no live session" in again.output


async def test_a_session_the_dashboard_never_made_is_refused(history: History) -> None:
    """A session id of nobody's (forged in a cookie signed with the secret): not live; one
    signed out: not live, in a dashboard started afterwards on the same history either (where
    one still signed in is)."""
    oidc = sign_in()
    oidc.sessions.attach(history)
    assert not oidc.sessions.live("made-up")
    kept = await oidc.sessions.start("alice@example.com", "email")
    await oidc.sessions.end("alice@example.com", session_id=kept)
    other = await oidc.sessions.start("bob@example.com", "email")
    later = sign_in()
    later.sessions.attach(history)
    assert not later.sessions.live(kept)
    assert later.sessions.live(other)
