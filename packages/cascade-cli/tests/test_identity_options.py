"""Conflicting engines marked by status and watch; id options that cannot form a topic refused."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest
from rich.console import Console
from typer.testing import Result

from cascade.cli.rendering import TimeFormat, engines_table
from cascade.interfaces import Message, StatusMessage, encode_payload, status_topic
from cascade.reader import ReaderModel

TOPIC = status_topic("shared")


def _status(
    kind: str, session: int, conflict: int | None = None, source: str = "shared"
) -> Message:
    message = StatusMessage(
        status=kind,  # type: ignore[arg-type]
        source=source,
        session=session,
        conflict_session=conflict,
    )
    return Message(topic=TOPIC, payload=json.loads(encode_payload(message)))


def test_an_online_naming_a_conflict_marks_the_engine() -> None:
    """The connector said another session shares its id."""
    state = ReaderModel()
    state.apply(_status("online", 5, conflict=9))
    assert state.engines["shared"].conflict_session == 9


def test_an_older_online_after_a_newer_one_marks_the_engine() -> None:
    """One connector's sessions only rise: an older online after a newer is a second engine."""
    state = ReaderModel()
    state.apply(_status("online", 5))
    state.apply(_status("online", 9))  # a reconnection, as far as anyone can tell
    assert not state.engines["shared"].conflict
    state.apply(_status("online", 5))
    assert state.engines["shared"].conflict_session == 9


def test_offline_clears_the_mark() -> None:
    """The mark belongs to the status shown: an engine offline conflicts with nothing."""
    state = ReaderModel()
    state.apply(_status("online", 5, conflict=9))
    state.apply(_status("offline", 9))
    assert not state.engines["shared"].conflict


def test_the_engines_table_shows_the_conflict() -> None:
    """The table says CONFLICT and names the other session."""
    state = ReaderModel()
    state.apply(_status("online", 5, conflict=9))
    console = Console(width=200, record=True)
    console.print(engines_table(state, TimeFormat(time.time())))
    assert "CONFLICT: source id shared with session 9" in console.export_text()


def test_status_json_marks_the_conflict(
    invoke: Callable[..., Result], publish_retained: Callable[[str, bytes], None]
) -> None:
    """`status --json` gives "conflict" for every engine, and the other session when true."""
    publish_retained(TOPIC, json.dumps(_status("online", 5, conflict=9).payload).encode())
    publish_retained(status_topic("alone"), b'{"status": "online", "session": 1}')
    result = invoke("status", "--json")
    assert result.exit_code == 0, result.output
    engines = {e["source"]: e for e in json.loads(result.output)["engines"]}
    assert engines["shared"]["conflict"] is True
    assert engines["shared"]["conflict_session"] == 9
    assert engines["alone"]["conflict"] is False
    assert "conflict_session" not in engines["alone"]


@pytest.mark.parametrize("option", ["--project", "--run"])
@pytest.mark.parametrize("value", ["p\udcff", "x" * 1025])
def test_watch_refuses_an_id_option_that_cannot_form_a_topic(
    invoke: Callable[..., Result], option: str, value: str
) -> None:
    """A usage error (exit 2) naming the option, before connecting."""
    result = invoke("watch", option, value, "--duration", "0")
    assert result.exit_code == 2, result.output
    assert option in result.output


@pytest.mark.parametrize("variable", ["CASCADE_ORG_ID", "CASCADE_PROJECT_ID"])
def test_demo_refuses_a_bad_id_variable_before_starting(
    invoke: Callable[..., Result], monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    """A usage error naming the variable, not a demo that fails at its engine's start."""
    monkeypatch.setenv(variable, "acme\udcff")
    result = invoke("demo")
    assert result.exit_code == 2, result.output
    assert f"${variable}" in result.output
