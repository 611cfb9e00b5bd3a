"""A command that waits on the broker says, once it has heard nothing for a while, which
broker it is connected to and what it waits for: one line on stderr."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cascade.cli import app
from cascade.cli.plumbing import BrokerOptions, CliContext
from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.interfaces import Connector, StatusMessage, encode_payload, status_topic

RUN = "58a88765cea2c1d0a1f3c2b7e9d84a61"
BROKER = ["--host", "broker.example:1884", "--timeout", "1"]


@pytest.fixture(autouse=True)
def no_default_history(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.delenv("CASCADE_HISTORY_DB", raising=False)


def _context(quiet_after: float) -> CliContext:
    broker = InMemoryBroker()

    def factory(options: BrokerOptions) -> Connector:
        return InMemoryConnector(broker, presence=False)

    return CliContext(connector_factory=factory, quiet_after=quiet_after)


@pytest.mark.parametrize(
    ("args", "waits_for"),
    [
        (["cancel", RUN], "the answer of the engine of run 58a88765cea2 (at most 1 s)"),
        (["retry", RUN, "load-1"], "the answer of the engine of run 58a88765cea2 (at most 1 s)"),
        (["why", RUN], "a heartbeat of run 58a88765cea2 (at most 1 s)"),
    ],
)
def test_a_silent_broker_is_named_with_what_is_waited_for(args: list[str], waits_for: str) -> None:
    result = CliRunner().invoke(app, [*args, *BROKER], obj=_context(0.05))
    assert result.exit_code == 1  # nothing answered
    assert result.stderr.splitlines()[0] == (
        f"cascade: connected to broker.example:1884, nothing heard for 0.05 s: waiting for "
        f"{waits_for}"
    )


def test_nothing_is_said_before_the_silence_lasts() -> None:
    result = CliRunner().invoke(app, ["cancel", RUN, *BROKER], obj=_context(60))
    assert result.exit_code == 1
    assert "nothing heard" not in result.stderr


@pytest.mark.parametrize(
    ("args", "looked_for"),
    [
        (["status"], "no engine's status, summary or constraint is kept there"),
        (["status", "--json"], "no engine's status, summary or constraint is kept there"),
        (["held", "--timeout", "0.1"], "no run's telemetry within 0.1 s"),
        (["served", "--timeout", "0.1"], "no serving process's announcement"),
    ],
)
def test_a_short_read_that_heard_nothing_names_the_broker(args: list[str], looked_for: str) -> None:
    """Their empty answer may come from the wrong broker: they say which they read."""
    result = CliRunner().invoke(app, [*args, "--host", "broker.example:1884"], obj=_context(60))
    assert result.exit_code == 0, result.output
    assert result.stderr == (
        f"cascade: heard nothing on broker.example:1884: {looked_for} (is it the engines' "
        "broker?)\n"
    )
    assert "heard nothing" not in result.stdout


def test_a_short_read_that_heard_something_says_nothing_more(
    publish_retained: Callable[[str, bytes], None], broker: InMemoryBroker
) -> None:
    shut_down = StatusMessage.announce("offline", "e", 1, reason="shutdown")
    publish_retained(status_topic("e"), encode_payload(shut_down))
    context = CliContext(
        connector_factory=lambda options: InMemoryConnector(broker, presence=False)
    )
    result = CliRunner().invoke(app, ["status", "--json"], obj=context)
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
