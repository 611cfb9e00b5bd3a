"""Who, why, until: `--reason` and `--as` on pause and limit, and what status shows of them."""

from __future__ import annotations

import getpass
import json
import socket
from collections.abc import Callable

import pytest
from typer.testing import Result

from cascade.connector_kit.testing import InMemoryBroker
from cascade.interfaces import decode_constraint

PAUSE = "cascade/constraints/task/load_%2A/pause"


@pytest.fixture(autouse=True)
def _no_operator(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CASCADE_OPERATOR", raising=False)
    monkeypatch.delenv("CASCADE_MQTT_USERNAME", raising=False)
    monkeypatch.setenv("COLUMNS", "200")


def _retained(broker: InMemoryBroker, topic: str = PAUSE) -> dict[str, object]:
    constraint = decode_constraint(broker.retained(topic) or b"")
    return {name: getattr(constraint, name) for name in ("reason", "issued_by", "issued_at")}


def test_pause_with_reason_and_as(invoke: Callable[..., Result], broker: InMemoryBroker) -> None:
    """The constraint says why, who and when; the command says it back."""
    result = invoke(
        "pause",
        "task:load_*",
        "--ttl",
        "7200",
        "--reason",
        "warehouse maintenance",
        "--as",
        "alice",
    )
    assert result.exit_code == 0, result.output
    assert result.output == 'paused task:load_* for 7200s by alice: "warehouse maintenance"\n'
    fields = _retained(broker)
    assert (fields["reason"], fields["issued_by"]) == ("warehouse maintenance", "alice")
    assert isinstance(fields["issued_at"], float)


def test_limit_carries_them_on_each_constraint(
    invoke: Callable[..., Result], broker: InMemoryBroker
) -> None:
    """A concurrency and a rate limit set together both carry the reason and the name."""
    result = invoke(
        "limit",
        "task:db",
        "--concurrency",
        "2",
        "--rate",
        "5/s",
        "--reason",
        "db load",
        "--as",
        "bo",
    )
    assert result.exit_code == 0, result.output
    for kind in ("concurrency", "rate_limit"):
        fields = _retained(broker, f"cascade/constraints/task/db/{kind}")
        assert (fields["reason"], fields["issued_by"]) == ("db load", "bo")


def test_issued_by_falls_back_to_the_variable_the_username_then_user_at_host(
    invoke: Callable[..., Result], broker: InMemoryBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--as, else $CASCADE_OPERATOR, else --username, else user@host."""
    assert invoke("pause", "task:load_*").exit_code == 0
    assert _retained(broker)["issued_by"] == f"{getpass.getuser()}@{socket.gethostname()}"
    assert invoke("pause", "task:load_*", "--username", "svc-ops").exit_code == 0
    assert _retained(broker)["issued_by"] == "svc-ops"
    monkeypatch.setenv("CASCADE_OPERATOR", "carol")
    assert invoke("pause", "task:load_*", "--username", "svc-ops").exit_code == 0
    assert _retained(broker)["issued_by"] == "carol"
    assert invoke("pause", "task:load_*", "--as", "dave").exit_code == 0
    assert _retained(broker)["issued_by"] == "dave"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--reason", "x" * 257], "--reason is too long: 257 characters, at most 256"),
        (["--reason", "bad\x1b]0;title"], "--reason holds '\\x1b'"),
        (["--reason", "  "], "--reason is empty"),
        (["--as", "eve\nroot"], "--as (or $CASCADE_OPERATOR) holds '\\n'"),
        (["--as", "e" * 129], "at most 128"),
    ],
)
def test_bad_reason_or_name_is_a_usage_error(
    invoke: Callable[..., Result], broker: InMemoryBroker, args: list[str], message: str
) -> None:
    """Control characters, empty or overlong text: exit 2, one line, nothing published."""
    result = invoke("pause", "task:x", *args)
    assert result.exit_code == 2
    assert message in result.output
    assert broker.history == []


def test_status_shows_who_when_why_and_until(
    invoke: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The constraints table says by whom, when, why and when it resumes; --json has the fields."""
    monkeypatch.setenv("TZ", "UTC")
    args = ["--ttl", "7200", "--reason", "warehouse maintenance", "--as", "alice"]
    assert invoke("pause", "task:load_*", *args).exit_code == 0
    assert invoke("limit", "task:db", "--concurrency", "1").exit_code == 0
    table = invoke("status")
    assert table.exit_code == 0, table.output
    line = next(line for line in table.output.splitlines() if "task:load_*" in line)
    assert "by alice" in line
    assert '"warehouse maintenance"' in line
    assert "resumes" in line
    assert "(in 1h59m)" in line or "(in 2h00m)" in line
    data = json.loads(invoke("status", "--json").output)
    by_scope = {c["scope"]: c for c in data["constraints"]}
    pause = by_scope["task:load_*"]
    assert (pause["reason"], pause["issued_by"]) == ("warehouse maintenance", "alice")
    assert pause["issued_at"].endswith("+00:00")
    assert by_scope["task:db"]["reason"] is None


def test_status_of_a_constraint_that_says_nothing_of_its_origin(
    invoke: Callable[..., Result], publish_retained: Callable[[str, bytes], None]
) -> None:
    """An existing tool's constraint shows '-' and nulls, as before these fields."""
    raw = b'{"id": "p", "scope": "global", "type": "pause", "params": {}}'
    publish_retained("cascade/constraints/global", raw)
    data = json.loads(invoke("status", "--json").output)
    (pause,) = data["constraints"]
    assert (pause["reason"], pause["issued_by"], pause["issued_at"]) == (None, None, None)
    table = invoke("status").output
    line = next(line for line in table.splitlines() if "global" in line and "pause" in line)
    assert " - " in line


def test_hostile_reason_from_the_broker_is_shown_inert(
    invoke: Callable[..., Result], publish_retained: Callable[[str, bytes], None]
) -> None:
    """Another publisher's reason and name reach the terminal with their escapes shown."""
    raw = json.dumps(
        {
            "id": "p",
            "scope": "global",
            "type": "pause",
            "params": {},
            "reason": "\x1b]0;pwned\x07",
            "issued_by": "\x9b31m",
        }
    ).encode()
    publish_retained("cascade/constraints/global/pause", raw)
    result = invoke("status")
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output
    assert "\x9b" not in result.output
    assert "\\x1b]0;pwned\\x07" in result.output
