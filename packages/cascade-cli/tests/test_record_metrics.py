"""`cascade record --metrics-listen` serves the recorder's own figures beside the readers'."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from cascade.cli.commands.record import Exporter
from cascade.history import RecorderStats
from cascade.interfaces import Message, decode_payload, encode_payload, events_topic

METRICS_PAGE = Path(__file__).parents[3] / "docs" / "metrics.md"


def _stats(**changed: object) -> RecorderStats:
    base = {"received": 0, "stored": 0, "duplicates": 0, "rejected": 0, "dropped": 0,
            "queued": 0, "lag": 0.0, "write_errors": 0, "last_error": None}  # fmt: skip
    return RecorderStats(**{**base, **changed})  # type: ignore[arg-type]


def test_the_recorders_queue_lag_drops_and_whether_it_keeps_up_are_read_at_each_scrape() -> None:
    """Each scrape reads the stats now: a recorder behind shows it, then caught up."""
    now = [_stats(stored=5, queued=12_000, lag=3.5, dropped=7, behind=True, shed=9)]
    exporter = Exporter("cascade", "127.0.0.1:0")
    exporter.follow(lambda: now[0])
    behind = exporter.metrics.render().decode()
    now[0] = _stats(stored=12_005, dropped=7, shed=9)
    caught_up = exporter.metrics.render().decode()
    for line in ("cascade_recorder_queued 12000.0", "cascade_recorder_lag_seconds 3.5",
                 "cascade_recorder_behind 1.0", "cascade_recorder_dropped_total 7.0",
                 "cascade_recorder_stored_total 5.0",
                 "cascade_recorder_shed_total 9.0"):  # fmt: skip
        assert line in behind.splitlines()
    for line in ("cascade_recorder_queued 0.0", "cascade_recorder_behind 0.0",
                 "cascade_recorder_stored_total 12005.0"):  # fmt: skip
        assert line in caught_up.splitlines()


def test_the_metrics_page_lists_the_recorders_own_figures_and_only_those() -> None:
    """docs/metrics.md's `cascade_recorder_*` rows are what the recorder adds to a scrape."""
    exporter = Exporter("cascade", "127.0.0.1:0")
    exporter.follow(_stats)
    scraped = {
        family.name + ("_total" if family.type == "counter" else "")
        for family in text_string_to_metric_families(exporter.metrics.render().decode())
        if family.name.startswith("cascade_recorder_")
    }
    page = METRICS_PAGE.read_text(encoding="utf-8")
    listed = set(re.findall(r"^\| `(cascade_recorder_[a-z_]+)` \|", page, flags=re.M))
    assert listed == scraped
    assert len(listed) == 6


def test_a_run_whose_end_was_shed_is_forgotten_after_two_quiet_minutes() -> None:
    """The metrics' state holds a run it hears nothing of (its end shed by a recorder behind)
    for two minutes, not the readers' ten: a soak's recorder grew by each such run."""
    now = [1_800_000_000.0]
    exporter = Exporter("cascade", "127.0.0.1:0")
    state = exporter.metrics.state
    state.clock = lambda: now[0]
    topic = events_topic("local", "default", "r" * 32)
    started = {"type": "LifecycleEvent", "event": "ENGINE_STARTED", "tasks": 2}
    running = {"type": "TaskStateEvent", "task_id": "t-1", "task_name": "t", "state": "RUNNING",
               "duration_ms": 0.0, "error": ""}  # fmt: skip
    stamp = datetime.fromtimestamp(now[0], timezone.utc).isoformat()
    for seq, body in enumerate([started, running], start=1):
        envelope = {"v": "1.0", "ts": stamp, "run_id": "r" * 32, "org_id": "local",
                    "project_id": "default", "source": "e", "seq": seq, "body": body}  # fmt: skip
        raw = encode_payload(envelope)
        exporter.metrics.apply(Message(topic=topic, payload=decode_payload(raw), raw=raw))
    assert list(state.runs) == ["r" * 32]
    now[0] += 110
    state.prune(now[0])
    assert list(state.runs) == ["r" * 32]  # quiet, not for long
    now[0] += 11
    state.prune(now[0])
    assert list(state.runs) == []
