"""The demo's closing summary: what ran, what failed on purpose, and what to try next."""

from __future__ import annotations

import pytest
from rich.console import Console

from cascade.cli.commands.demo._demo_summary import demo_summary
from cascade.connector_kit.testing import telemetry
from cascade.interfaces import TaskStateEvent
from cascade.reader import ReaderModel, RunView


def _finished_demo_run() -> RunView:
    state = ReaderModel()
    for body in (
        TaskStateEvent(task_id="a", task_name="fn_a", state="COMPLETED"),
        TaskStateEvent(
            task_id="v", task_name="fn_v", state="FAILED", error="ValueError: checksum mismatch"
        ),
        TaskStateEvent(task_id="p", task_name="fn_p", state="SKIPPED"),
    ):
        state.apply(telemetry(body, run_id="0123456789abcdef"))
    return state.runs["0123456789abcdef"]


def _said(summary: object) -> str:
    console = Console(record=True, width=200)
    console.print(summary)
    return console.export_text()


def test_the_summary_says_what_ran_what_failed_on_purpose_and_what_next() -> None:
    """A newcomer reads what happened and which commands to try, with the broker's address."""
    text = _said(
        demo_summary(
            _finished_demo_run(),
            6.04,
            host="mqtt.example:1884",
            retried={"flaky_lookup": 3},
            paused="paused P",
            limited="limited L",
        )
    )
    assert "run 0123456789ab: 3 tasks in 6.0s on mqtt.example:1884: 1 completed, 1 failed," in text
    said = "fn_v failed on purpose (ValueError: checksum mismatch); 1 task needing its result was"
    assert f"{said} skipped" in text
    assert "flaky_lookup failed 2 times and succeeded on attempt 3" in text
    assert "paused P, and limited L" in text
    for command in ("watch", "dashboard", "record", "demo"):
        assert f"cascade {command} --host mqtt.example:1884" in text
    # the dashboard it suggests is read-only: its hint says so, and what turns controls on
    assert "with controls" not in text
    assert "read-only (--token NAME=SECRET turns its controls on)" in " ".join(text.split())


def test_after_an_embedded_broker_it_suggests_what_outlives_it() -> None:
    """The embedded broker is gone with the demo: no command points at its address."""
    text = _said(demo_summary(None, 1.0, host=None, retried={}, paused="p", limited="l"))
    assert "heard nothing of its run" in text
    assert "cascade dashboard --demo" in text
    assert "cascade demo --duration 60" in text
    assert "--host 127.0.0.1" not in text


def test_its_commands_run_as_printed_where_cascade_is_not_on_the_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Launched by the clone's ``python3 dev.py demo``, it prints what runs from the clone."""
    monkeypatch.setenv("CASCADE_COMMAND", "python3 dev.py cascade")
    text = _said(demo_summary(None, 1.0, host="h:1", retried={}, paused="p", limited="l"))
    assert "python3 dev.py cascade watch --host h:1" in text
    assert "python3 dev.py cascade record --host h:1" in text
