"""`cascade status`: engines that ended cleanly a while ago fold into one counted line, and
stay findable (`--all`, `--json`); an engine whose connection was lost stays listed."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

from typer.testing import Result

from cascade.interfaces import StatusMessage, encode_payload, status_topic

Publish = Callable[[str, bytes], None]


def _offline(publish: Publish, source: str, reason: str | None, ago: float) -> None:
    ts = (datetime.now(timezone.utc) - timedelta(seconds=ago)).isoformat()
    status = StatusMessage(status="offline", source=source, session=1, ts=ts, reason=reason)
    publish(status_topic(source), encode_payload(status))


def test_clean_ends_fold_into_a_count_and_lost_engines_stay(
    invoke: Callable[..., Result], publish_retained: Publish
) -> None:
    for n in range(12):
        _offline(publish_retained, f"script-{n:02d}", "shutdown", ago=300)
    _offline(publish_retained, "just-ended", "shutdown", ago=1)
    _offline(publish_retained, "lost-engine", None, ago=300)  # its will: no reason
    result = invoke("status")
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "12 engines ended cleanly in the last hour — `cascade status --all` to list" in text
    assert "lost-engine" in text
    assert "just-ended" in text
    assert "script-03" not in text

    every = invoke("status", "--all")
    assert every.exit_code == 0, every.output
    assert "script-03" in every.output
    assert "ended cleanly" not in every.output

    listed = json.loads(invoke("status", "--json").output)
    assert listed["ended_cleanly"] == 12
    assert len(listed["engines"]) == 14  # JSON lists them all
