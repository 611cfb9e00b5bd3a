"""Whoever may publish can claim anything: a view refuses what no engine of a run can have
sent, changes nothing for it, and says so (watch's footer, status --json, the dashboard,
/metrics)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from rich.console import Console

from cascade.cli.rendering import render_watch, status_json
from cascade.connector_kit.testing import telemetry
from cascade.dashboard.live import DashboardModel
from cascade.interfaces import Heartbeat, LifecycleEvent, Message, TaskStateEvent
from cascade.metrics import CascadeMetrics
from cascade.reader import MAX_SEQ_JUMP, ReaderModel

RUN = "58a88765cea2c1d0a1f3c2b7e9d84a61"


def _message(
    body: Any, seq: int | None, source: str = "engine", ts: datetime | None = None
) -> Message:
    return telemetry(body, run_id=RUN, seq=seq, source=source, ts=ts)


def _task(task_id: str, state: str, seq: int, source: str = "engine", error: str = "") -> Message:
    body = TaskStateEvent(task_id=task_id, task_name="load", state=state, error=error)  # type: ignore[arg-type]
    return _message(body, seq, source)


def _footer(state: ReaderModel) -> str:
    console = Console(width=200, record=True)
    console.print(render_watch(state))
    return console.export_text()


def test_a_forger_first_owns_nothing_of_the_engines_run_it_did_not_start() -> None:
    """The engine starts its run; a forger's events for it, claiming another source, are
    refused and counted, and the view shows the engine's tasks only."""
    state = ReaderModel()
    state.apply(_message(LifecycleEvent(event="ENGINE_STARTED", tasks=3), 1))
    for seq in (2, 3, 4):
        state.apply(_task(f"t{seq}", "FAILED", seq, source="attacker", error="Evil: forged"))
    for seq in (2, 3, 4):
        state.apply(_task(f"t{seq}", "COMPLETED", seq))
    run = state.runs[RUN]
    assert run.source == "engine"
    assert run.counts() == {"COMPLETED": 3}
    assert run.refused == 3
    assert state.refusals.describe("attacker") == "3 foreign source"
    assert "refused 3 messages claiming attacker: 3 foreign source" in _footer(state)


def test_a_forged_late_number_is_a_conflict_once_the_real_one_comes() -> None:
    """A hole (seq 3 lost), a forged seq 3 that fills it claiming the engine, then the
    engine's own seq 3: two messages numbered alike, a conflict counted, never silent."""
    state = ReaderModel()
    state.apply(_message(LifecycleEvent(event="ENGINE_STARTED", tasks=2), 1))
    state.apply(_task("a", "RUNNING", 2))
    state.apply(_task("b", "RUNNING", 4))
    assert state.gaps.missed_in(RUN) == 1
    state.apply(_task("a", "COMPLETED", 3, error=""))  # forged, claiming the engine
    state.apply(_task("a", "FAILED", 3, error="Real: it failed"))  # the engine's, resent late
    assert state.refusals.describe("engine") == "1 conflict"
    assert state.runs[RUN].refused == 1
    assert status_json(state)["refused"] == [
        {"source": "engine", "messages": 1, "reasons": {"conflict": 1}}
    ]


def test_impossible_numbers_are_refused_not_counted_as_missed() -> None:
    """seq 10**12 after seq 1 and a heartbeat's last_seq 2**63-1: refused, nothing missed."""
    state = ReaderModel()
    metrics = CascadeMetrics(state)
    state.apply(_message(LifecycleEvent(event="ENGINE_STARTED", tasks=1), 1))
    state.apply(_task("a", "COMPLETED", 10**12))
    state.apply(_message(Heartbeat(completed=1, last_seq=2**63 - 1), None))
    state.apply(_task("b", "COMPLETED", 2 + MAX_SEQ_JUMP))
    assert state.gaps.missed == 0
    assert state.runs[RUN].counts() == {}
    assert state.refusals.describe("engine") == "3 seq out of bounds"
    scrape = metrics.render().decode()
    assert 'cascade_refused_messages_total{reason="seq out of bounds"} 3.0' in scrape
    assert 'cascade_refused_messages_total{reason="conflict"} 0.0' in scrape


def test_timestamps_from_the_future_are_refused() -> None:
    """A run dated 9999-12-31 is not shown (it would sort above every real run)."""
    state = ReaderModel()
    model = DashboardModel()
    future = datetime(9999, 12, 31, tzinfo=timezone.utc)
    message = _message(LifecycleEvent(event="ENGINE_STARTED"), 1, source="liar", ts=future)
    state.apply(message)
    model.apply(message)
    assert state.runs == {}
    assert state.refusals.describe("liar") == "1 timestamp ahead"
    snapshot = model.snapshot()
    assert snapshot["runs"] == []
    assert snapshot["refused"] == [
        {"source": "liar", "messages": 1, "reasons": {"timestamp ahead": 1}}
    ]
