"""A reader's task logs: each run's last lines, what is missing from them, and what is refused."""

from __future__ import annotations

import logging

from cascade.connector_kit.testing import received
from cascade.interfaces import Envelope, Heartbeat, Message, heartbeat_topic
from cascade.interfaces.logs import DroppedLines, LogBatch, LogLine, logs_topic
from cascade.reader import (
    REASON_BEYOND,
    REASON_FOREIGN,
    REASON_FUTURE,
    REASON_MISMATCH,
    LogFollower,
    ReaderModel,
    cut_message,
)

MAX_LOG_LINE_BYTES = 16 * 1024  # the protocol's bound, as docs/protocol.md states it

TS = "2026-11-24T10:00:00+00:00"


def _line(n: int, task: str = "load", **fields: object) -> LogLine:
    values: dict[str, object] = {"ts": TS, "task_id": f"{task}-1", "task_name": task,
                                 "message": f"line {n}", "n": n, **fields}  # fmt: skip
    return LogLine(**values)  # type: ignore[arg-type]


def _batch(
    seq: int,
    *lines: LogLine,
    source: str = "host-1",
    run_id: str = "r1",
    dropped: tuple[DroppedLines, ...] = (),
    sourced: str | None = None,
) -> Message:
    batch = LogBatch(run_id=run_id, org_id="o", project_id="p", source=source, seq=seq, ts=TS,
                     lines=list(lines), dropped=list(dropped))  # fmt: skip
    return received(logs_topic("o", "p", run_id, source=sourced), batch)


def test_lines_are_kept_per_run_and_read_by_task_and_level() -> None:
    logs = LogFollower()
    heard = logs.apply(_batch(1, _line(1), _line(1, "send", level="WARNING")))
    assert heard is not None
    assert [h.index for h in heard.lines] == [1, 2]
    logs.apply(_batch(2, _line(2, level="ERROR")))
    run = logs.runs["r1"]
    assert [h.line.message for h in run.lines()] == ["line 1", "line 1", "line 2"]
    assert [h.line.message for h in run.lines(task="lo*")] == ["line 1", "line 2"]
    assert [h.line.task_name for h in run.lines(task="send-1")] == ["send"]  # by id too
    assert [h.index for h in run.lines(level=logging.WARNING)] == [2, 3]
    assert [h.index for h in run.lines(after=2)] == [3]
    assert run.lines(after=3) == []


def test_the_last_lines_are_kept_and_those_let_go_counted() -> None:
    logs = LogFollower(keep_lines=3)
    logs.apply(_batch(1, *(_line(n) for n in range(1, 6))))
    run = logs.runs["r1"]
    assert [h.line.n for h in run.kept] == [3, 4, 5]
    assert (run.heard, run.let_go) == (5, 2)
    bytes_bound = LogFollower(keep_bytes=len("line 1") * 2)
    bytes_bound.apply(_batch(1, *(_line(n) for n in range(1, 6))))
    assert [h.line.n for h in bytes_bound.runs["r1"].kept] == [4, 5]


def test_dropped_lines_and_gaps_in_n_and_seq_are_counted() -> None:
    logs = LogFollower()
    logs.apply(_batch(1, _line(1), _line(2)))
    said = DroppedLines(task_id="load-1", task_name="load", lines=10, reason="rate")
    heard = logs.apply(_batch(2, _line(13), dropped=(said,)))  # 10 dropped, 10 in the gap
    assert heard is not None
    assert heard.dropped == [said]
    assert heard.missing == [("load-1", "load", 10)]
    heard = logs.apply(_batch(4, _line(20)))  # batch 3 missed, with lines 14 to 19
    assert heard is not None
    assert heard.missing == [("load-1", "load", 6)]
    counts = logs.runs["r1"].tasks["load-1"]
    assert (counts.lines, counts.dropped, counts.missed, counts.reasons) == (4, 10, 6, {"rate": 10})
    assert logs.missed_batches("r1") == 1
    assert logs.gaps.by_source["host-1"].missed == 1


def test_a_copy_changes_nothing() -> None:
    logs = LogFollower()
    first = _batch(1, _line(1))
    logs.apply(first)
    assert logs.apply(first) is None
    assert (logs.copies, logs.runs["r1"].heard) == (1, 1)


def test_a_batch_no_engine_of_the_run_can_have_sent_is_refused() -> None:
    logs = LogFollower()
    assert logs.apply(_batch(1, _line(1), source="mallory", sourced="host-1")) is None
    assert logs.refusals.by_source == {"host-1": {REASON_MISMATCH: 1}}
    assert "r1" not in logs.runs
    logs.apply(_batch(1, _line(1), sourced="host-1"))
    assert logs.apply(_batch(2, _line(2), source="mallory")) is None
    assert logs.refusals.of("mallory") == 1
    assert logs.refusals.by_source["mallory"] == {REASON_FOREIGN: 1}
    assert logs.runs["r1"].heard == 1


def test_the_runs_owner_as_its_telemetry_says_is_believed_whoever_was_heard_first() -> None:
    """With a reader model's owner of the run (its telemetry heard from host-1): mallory's
    batch heard first is refused; a run heard from mallory before the model knew its owner is
    heard anew from host-1's, mallory's lines gone (counted refused)."""
    state = ReaderModel()
    logs = LogFollower(owner=lambda run_id: o[0] if (o := state.run_owner(run_id)) else None)
    assert logs.apply(_batch(1, _line(1, message="forged"), source="mallory")) is not None
    beat = Envelope(run_id="r1", org_id="o", project_id="p", source="host-1", body=Heartbeat())
    state.apply(received(heartbeat_topic("o", "p", "r1"), beat))
    assert state.run_owner("r1") == ("host-1", False)
    heard = logs.apply(_batch(1, _line(1)))
    assert heard is not None
    assert [h.line.message for h in logs.runs["r1"].lines()] == ["line 1"]
    assert (logs.taken_over, logs.last_taken_from) == (1, "mallory")
    assert logs.apply(_batch(2, _line(2, message="forged again"), source="mallory")) is None
    assert logs.refusals.by_source == {"mallory": {REASON_FOREIGN: 2}}
    assert logs.runs["r1"].source == "host-1"


def test_a_forged_batch_number_heard_first_is_displaced_by_the_engines() -> None:
    """A forger claiming the engine's source sends batch 10**15 first: the engine's batches
    (far below) make the follower forget it (its line too) and hear the run anew."""
    logs = LogFollower()
    logs.apply(_batch(10**15, _line(1, message="Evil: forged")))
    for seq in (40, 41):
        logs.apply(_batch(seq, _line(seq)))
    run = logs.runs["r1"]
    assert [h.line.message for h in run.kept] == ["line 40", "line 41"]
    assert (logs.missed_batches("r1"), logs.refusals.by_source) == (
        0,
        {"host-1": {REASON_BEYOND: 1}},
    )


def test_a_batch_with_a_line_dated_ahead_of_the_clock_is_refused() -> None:
    """A line dated 9999-12-31 in a batch dated now: the batch is refused whole, counted as
    a timestamp ahead, as a batch stamped so is."""
    logs = LogFollower()
    assert logs.apply(_batch(1, _line(1), _line(2, ts="9999-12-31T00:00:00+00:00"))) is None
    assert logs.refusals.by_source == {"host-1": {REASON_FUTURE: 1}}
    assert "r1" not in logs.runs


def test_long_messages_are_cut_and_malformed_or_oversized_ones_ignored() -> None:
    logs = LogFollower()
    logs.apply(_batch(1, _line(1, message="é" * MAX_LOG_LINE_BYTES)))
    kept = logs.runs["r1"].kept[0].line.message
    assert kept.startswith("é" * (MAX_LOG_LINE_BYTES // 2))
    assert kept.endswith(f"… ({MAX_LOG_LINE_BYTES:,} more bytes)")
    assert cut_message("short") == "short"
    assert logs.apply(received(logs_topic("o", "p", "r1"), {"run_id": "r1"})) is None
    assert logs.rejected == 1
    huge = received(logs_topic("o", "p", "r2"), {"pad": "x" * (300 * 1024)})
    assert logs.apply(huge) is None
    assert logs.oversized == 1


def test_runs_beyond_the_bound_go_least_recently_heard_first() -> None:
    now = [0.0]
    logs = LogFollower(max_runs=2, clock=lambda: now[0])
    for index, run_id in enumerate(("a", "b", "c")):
        now[0] = 2e9 + index  # after TS: not ahead
        logs.apply(_batch(1, _line(1), run_id=run_id))
    assert sorted(logs.runs) == ["b", "c"]
    assert logs.forgotten_runs == 1
    assert logs.forget_run("b")
    assert not logs.forget_run("b")
