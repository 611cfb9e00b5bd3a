"""Task log batches: their topics, and strict decoding of what anyone may send."""

from __future__ import annotations

import msgspec
import pytest

from cascade.interfaces import InvalidMessageError, topic_matches
from cascade.interfaces.logs import (
    DroppedLines,
    LogBatch,
    LogLine,
    decode_log_batch,
    logs_filter,
    logs_topic,
)

MAX_LOG_PAYLOAD_BYTES = 256 * 1024  # the protocol's bound, as docs/protocol.md states it


def _batch(**fields: object) -> LogBatch:
    line = LogLine(ts="2026-11-24T10:00:00+00:00", task_id="load-1", task_name="load",
                   message="loaded 12 rows", n=1, logger="etl")  # fmt: skip
    values: dict[str, object] = {
        "run_id": "r1", "org_id": "o", "project_id": "p", "source": "host-1", "seq": 1,
        "ts": line.ts, "lines": [line],
    }  # fmt: skip
    return LogBatch(**{**values, **fields})  # type: ignore[arg-type]


def test_topics_of_both_layouts_match_the_filter() -> None:
    assert logs_topic("o", "p", "r/1") == "cascade/logs/o/p/r%2F1"
    assert logs_topic("o", "p", "r1", source="host-1") == "cascade/logs/o/p/r1/host-1"
    for topic in (logs_topic("o", "p", "r1"), logs_topic("o", "p", "r1", source="h")):
        assert topic_matches(logs_filter(run_id="r1"), topic)
        assert not topic_matches(logs_filter(run_id="r2"), topic)
    assert not topic_matches("cascade/telemetry/#", logs_topic("o", "p", "r1"))


def test_a_batch_round_trips_with_its_dropped_lines() -> None:
    batch = _batch(dropped=[DroppedLines(task_id="load-1", task_name="load", lines=312)])
    decoded = decode_log_batch(msgspec.json.encode(batch))
    assert decoded == batch


@pytest.mark.parametrize(
    ("field", "value"),
    [("seq", 0), ("run_id", ""), ("lines", [{"ts": "t", "task_id": "a"}]),
     ("dropped", [{"task_id": "a", "task_name": "a", "lines": 0}]),
     ("lines", [{"ts": "t", "task_id": "a", "task_name": "a", "message": "", "level": "LOUD"}])],
)  # fmt: skip
def test_what_no_engine_sends_is_refused_naming_the_field(field: str, value: object) -> None:
    raw = msgspec.json.encode({**msgspec.to_builtins(_batch()), field: value})
    with pytest.raises(InvalidMessageError, match=field):
        decode_log_batch(raw)
