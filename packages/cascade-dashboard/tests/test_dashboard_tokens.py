"""The dashboard's named tokens: whose controls a request's token issues, with a reason."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from typer.testing import Result

from cascade.connector_kit.testing import InMemoryBroker
from cascade.dashboard import DashboardHub, DashboardSettings, Tokens, create_app
from cascade.interfaces import decode_constraint

PAUSE = "cascade/constraints/task/load_%2A/pause"
TOKENS = Tokens.parse(["alice=a-secret", "bob=b-secret", "anon-secret"], "dash-operator")


def _client(hub: DashboardHub, token: str | Tokens | None) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=create_app(hub, DashboardSettings(token=token)))
    return httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1")


async def _pause(hub: DashboardHub, secret: str, **body: Any) -> httpx.Response:
    async with _client(hub, TOKENS) as http:
        return await http.post(
            "/api/constraints",
            json={"scope": "task:load_*", "type": "pause", **body},
            headers={"Authorization": f"Bearer {secret}"},
        )


@pytest.mark.parametrize(
    ("secret", "name"),
    [("a-secret", "alice"), ("b-secret", "bob"), ("anon-secret", "dash-operator")],
)
async def test_each_token_issues_its_holders_controls(
    broker: InMemoryBroker, hub: DashboardHub, secret: str, name: str
) -> None:
    """NAME=SECRET: the constraint says NAME; a token without a name says the dashboard's."""
    answer = await _pause(hub, secret, reason="warehouse maintenance")
    assert answer.status_code == 200, answer.text
    constraint = decode_constraint(broker.retained(PAUSE) or b"")
    assert (constraint.issued_by, constraint.reason) == (name, "warehouse maintenance")


async def test_a_wrong_secret_issues_nothing(broker: InMemoryBroker, hub: DashboardHub) -> None:
    """A secret that is none of the tokens: 401, nothing published."""
    answer = await _pause(hub, "alice")
    assert answer.status_code == 401
    assert broker.retained_topics == []


@pytest.mark.parametrize(
    ("reason", "message"),
    [(7, "reason must be text"), ("x" * 300, "reason is too long"), ("a\x1bb", "holds")],
)
async def test_a_bad_reason_is_refused_like_the_cli_refuses_it(
    broker: InMemoryBroker, hub: DashboardHub, reason: object, message: str
) -> None:
    """400 with the CLI's message; nothing published."""
    answer = await _pause(hub, "a-secret", reason=reason)
    assert answer.status_code == 400
    assert message in answer.json()["error"]
    assert broker.retained_topics == []


async def test_the_snapshot_shows_who_and_why(broker: InMemoryBroker, hub: DashboardHub) -> None:
    """/api/state lists the constraint with reason, issued_by and issued_at."""
    assert (await _pause(hub, "b-secret", reason="db maintenance")).status_code == 200
    await broker.idle()
    async with _client(hub, TOKENS) as http:
        (shown,) = (await http.get("/api/state")).json()["constraints"]
    assert (shown["issued_by"], shown["reason"]) == ("bob", "db maintenance")
    assert isinstance(shown["issued_at"], float)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (["a=x", "b=x"], "two --token values have the same secret"),
        (["alice="], "the secret is empty"),
        (["=x"], "--token NAME is empty"),
        (["al ice=x"], "has a space"),
        (["\x1b=x"], "holds"),
    ],
)
def test_malformed_tokens_are_usage_errors(values: list[str], message: str) -> None:
    """Tokens that cannot be told apart or named are refused before anything is served."""
    with pytest.raises(ValueError, match=message):
        Tokens.parse(values, "me")


def test_the_command_reads_several_tokens_from_flags_and_the_variable(
    invoke: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    """--token is repeatable, and CASCADE_DASHBOARD_TOKEN takes several, space-separated."""
    seen: list[Any] = []

    async def serve(settings: DashboardSettings) -> None:
        seen.append((settings.token, settings.operator))

    monkeypatch.setattr("cascade.dashboard.serve_dashboard", serve)
    monkeypatch.delenv("CASCADE_OPERATOR", raising=False)
    result = invoke("dashboard", "--token", "alice=one", "--token", "two", "--as", "ops")
    assert result.exit_code == 0, result.output
    monkeypatch.setenv("CASCADE_DASHBOARD_TOKEN", "carol=three dave=four")
    result = invoke("dashboard")
    assert result.exit_code == 0, result.output
    assert seen == [
        (Tokens(((b"one", "alice"), (b"two", "ops"))), "ops"),
        (Tokens(((b"three", "carol"), (b"four", "dave"))), seen[1][1]),
    ]
    monkeypatch.setenv("CASCADE_DASHBOARD_TOKEN", "x=same y=same")
    result = invoke("dashboard")
    assert result.exit_code == 2
    assert "same secret" in result.output
