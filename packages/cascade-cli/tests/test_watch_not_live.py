"""`cascade watch --run` of a run that is not live ends with what is known of it (the history's
final state, or its engine's summary), and `watch --json` says where it waits when nothing
comes."""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner, Result

from cascade.cli import app
from cascade.cli.plumbing import BrokerOptions, CliContext
from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.history import History, Received
from cascade.interfaces import Connector, decode_envelope, encode_payload, events_topic
from cascade.interfaces.summaries import (
    EngineSummary,
    RunTally,
    SummaryRun,
    TaskTally,
    summary_messages,
)

RUN = "58a88765cea2c1d0a1f3c2b7e9d84a61"
T0 = time.time() - 600


@pytest.fixture(autouse=True)
def no_default_history(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No default history unless a test makes one (--db)."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.delenv("CASCADE_HISTORY_DB", raising=False)


def _event(body: dict[str, Any], ts: float) -> Received:
    raw = {"ts": datetime.fromtimestamp(ts, timezone.utc).isoformat(), "run_id": RUN,
           "org_id": "o", "project_id": "p", "source": "host-1", "body": body}  # fmt: skip
    return Received(events_topic("o", "p", RUN), decode_envelope(raw), ts)


def _history(tmp_path: Path, *, ended: bool) -> str:
    path = str(tmp_path / "history.sqlite3")
    events = [
        _event({"type": "LifecycleEvent", "event": "ENGINE_STARTED"}, T0),
        _event(
            {
                "type": "TaskStateEvent",
                "task_id": "load-1",
                "task_name": "load",
                "state": "COMPLETED",
            },
            T0 + 1,
        ),
    ]
    if ended:
        stop = {"type": "LifecycleEvent", "event": "ENGINE_STOPPED", "status": "Succeeded"}
        events.append(_event(stop, T0 + 2))
    with History(path, mode="write") as history:
        history.store(events)
    return path


def _invoke(
    *args: str, broker: InMemoryBroker | None = None, terminal: bool = False
) -> tuple[Result, str]:
    """``cascade ARGS`` on ``broker`` (``None``: the broker must not be asked); and what the
    console printed (a terminal's, with ``terminal``)."""

    def factory(options: BrokerOptions) -> Connector:
        assert broker is not None, "the broker was asked"
        return InMemoryConnector(broker, presence=False)

    out = io.StringIO()
    console = (
        Console(file=out, force_terminal=True, color_system=None, width=120) if terminal else None
    )
    context = CliContext(connector_factory=factory, console=console, quiet_after=0.05)
    result = CliRunner().invoke(app, list(args), obj=context)
    return result, out.getvalue()


def test_an_ended_run_in_the_history_is_shown_at_once(tmp_path: Path) -> None:
    """Its end said on stderr, its final state as `cascade run` shows it, the broker not
    asked: nothing more will come of it."""
    db = _history(tmp_path, ended=True)
    result, shown = _invoke("watch", "--run", RUN, "--db", db, terminal=True)
    assert result.exit_code == 0, result.output
    assert result.stderr.startswith("cascade: run 58a88765cea2 is not live: it ended at ")
    assert "(Succeeded); its final state, from the history:" in result.stderr
    assert f"run {RUN}" in shown
    assert "Succeeded" in shown
    assert "│ load-1 " in shown  # the task, by its id
    assert "COMPLETED" in shown


def test_an_ended_run_with_json_points_at_cascade_run(tmp_path: Path) -> None:
    db = _history(tmp_path, ended=True)
    result, _ = _invoke("watch", "--run", RUN, "--db", db, "--json")
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert result.stderr.rstrip().endswith(
        "(Succeeded); its final state: cascade run 58a88765cea2 --json"
    )


def test_a_run_not_heard_without_a_history_is_not_live() -> None:
    result, _ = _invoke("watch", "--run", RUN, "--json", broker=InMemoryBroker())
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith(
        f"cascade: run {RUN} is not live: nothing heard of it on localhost:1883 within 0.05 s"
    )
    assert "its end cannot be shown" in result.stderr


def test_a_run_not_heard_that_its_engines_summary_says_ended(
    broker: InMemoryBroker, publish_retained: Callable[[str, bytes], None]
) -> None:
    """No history, but the engine's retained summary lists the run as ended: that is said."""
    listed = SummaryRun(run_id=RUN, org_id="o", project_id="p", status="Failed",
                        started="2026-11-18T10:00:00+00:00", tasks=TaskTally(failed=1),
                        ended="2026-11-18T10:00:05+00:00")  # fmt: skip
    summary = EngineSummary(source="host-1", runs=RunTally(failed=1), listed=[listed])
    for at, said in summary_messages(summary):
        publish_retained(at, encode_payload(said))
    result, _ = _invoke("watch", "--run", RUN, "--json", broker=broker)
    assert result.exit_code == 0, result.output
    assert "its engine host-1 says in its summary that it ended at " in result.stderr
    assert "(Failed)" in result.stderr


def test_a_run_not_heard_that_the_history_has_unended_is_shown(tmp_path: Path) -> None:
    db = _history(tmp_path, ended=False)
    result, shown = _invoke(
        "watch", "--run", RUN, "--db", db, broker=InMemoryBroker(), terminal=True
    )
    assert result.exit_code == 0, result.output
    assert "nothing heard of it on localhost:1883 within 0.05 s" in result.stderr
    assert "the history has it as Running, its end not recorded" in result.stderr
    assert shown.rstrip().endswith(f"history: {db}")
    assert f"run {RUN}  Running" in shown
    assert "│ load-1 " in shown  # the task, by its id


def test_watch_json_says_where_it_waits_when_nothing_comes() -> None:
    result, _ = _invoke("watch", "--json", "--duration", "1", broker=InMemoryBroker())
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "cascade: connected to localhost:1883, nothing heard for 0.05 s: waiting for the "
        "telemetry of the runs (Ctrl-C ends)"
    ]
