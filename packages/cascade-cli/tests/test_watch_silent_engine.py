"""`cascade watch`'s live view names an engine whose telemetry does not arrive, with the
likely cause (`--json` says it on stderr: tests/docs/test_teams.py)."""

from __future__ import annotations

from datetime import datetime, timezone

from rich.console import Console

from cascade.cli.rendering import render_watch
from cascade.connector_kit.testing import received
from cascade.interfaces import StatusMessage, status_topic, telemetry_filter
from cascade.reader import ReaderModel


def _flapping(model: ReaderModel) -> None:
    for session in (1, 2, 3):
        online = StatusMessage(status="online", source="engine-1", session=session)
        model.apply(received(status_topic("engine-1"), online))
        will = StatusMessage(status="offline", source="engine-1", session=session)
        model.apply(received(status_topic("engine-1"), will))


def test_the_live_view_names_the_silent_engine_and_the_likely_cause() -> None:
    model = ReaderModel()
    model.telemetry_filters.add(telemetry_filter())
    _flapping(model)
    console = Console(width=80, record=True, color_system=None)
    console.print(render_watch(model))
    text = " ".join(console.export_text().split())
    assert "engine-1's connection is closed as soon as it is made" in text
    assert "connector needs sourced_topics=True" in text


def test_a_quiet_engine_is_no_silent_one() -> None:
    model = ReaderModel()
    online = StatusMessage(
        status="online", source="engine-1", session=1, ts=datetime.now(timezone.utc).isoformat()
    )
    model.apply(received(status_topic("engine-1"), online))
    console = Console(width=80, record=True, color_system=None)
    console.print(render_watch(model))
    text = console.export_text()
    assert "reached this view" not in text
    assert "closed as soon as it is made" not in text
