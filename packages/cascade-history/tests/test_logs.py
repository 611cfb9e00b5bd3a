"""Task logs in the history: batches stored once each, in the order logged, from the run's own
source only; what each task logged and dropped; lines by task, level, time and page; runs
found by their text; retention of their own."""

from __future__ import annotations

import logging

import pytest

from cascade.history import History, LogBatches, LogCount, RecordedLogLine, Stored
from cascade.interfaces.logs import DroppedLines
from cascade.reader import MAX_SEQ_JUMP, REASON_BEYOND, REASON_FOREIGN

from .logs import batch, line, stored_batch
from .messages import T0, lifecycle

MAX_LOG_LINE_BYTES = 16 * 1024  # the protocol's bound, as docs/protocol.md states it

RUN = "run-logs-1"


def _messages(lines: list[RecordedLogLine]) -> list[str]:
    return [line.message for line in lines]


def test_a_batch_is_stored_with_every_field(history: History) -> None:
    logged = line(
        "t1", 1, "hello", level="WARNING", level_number=33, attempt=2, logger="app.load",
        stream="stderr", trace_id="a" * 32, span_id="b" * 16,
    )  # fmt: skip
    assert history.store([stored_batch(batch(RUN, 1, [logged]))]) == Stored(stored=1)
    (got,) = history.log_lines(RUN)
    assert got == RecordedLogLine(
        id=got.id, run_id=RUN, task_id="t1", task_name="t1_name", attempt=2, n=1, ts=T0 + 1,
        level="WARNING", level_number=33, logger="app.load", message="hello", stream="stderr",
        source="engine-1", trace_id="a" * 32, span_id="b" * 16,
    )  # fmt: skip
    assert got.to_json()["message"] == "hello"


def test_a_copy_of_a_batch_is_stored_once(history: History) -> None:
    """Same run, same seq: a duplicate, in the same write or a later one."""
    logs = batch(RUN, 1, [line("t1", 1), line("t1", 2)], dropped=[DroppedLines(
        task_id="t1", task_name="t1_name", lines=5, reason="budget")])  # fmt: skip
    assert history.store([stored_batch(logs), stored_batch(logs)]) == Stored(1, 1)
    assert history.store([stored_batch(logs)]) == Stored(0, 1)
    assert _messages(history.log_lines(RUN)) == ["t1 line 1", "t1 line 2"]
    assert history.log_counts(RUN) == {"t1": LogCount("t1_name", lines=2, dropped=5)}


def test_lines_come_in_the_order_logged_and_page_by_id(history: History) -> None:
    """A batch's lines out of order are stored in order (time, then n); ``after`` pages."""
    history.store([stored_batch(batch(RUN, 1, [line("t1", 3), line("t2", 2, ts=T0 + 3),
                                               line("t1", 1)]))])  # fmt: skip
    history.store([stored_batch(batch(RUN, 2, [line("t1", 4)]))])
    assert _messages(history.log_lines(RUN)) == ["t1 line 1", "t2 line 2", "t1 line 3",
                                                 "t1 line 4"]  # fmt: skip
    first = history.log_lines(RUN, limit=2)
    rest = history.log_lines(RUN, after=first[-1].id, limit=None)
    assert _messages(first + rest) == _messages(history.log_lines(RUN))
    assert history.log_lines(RUN, after=rest[-1].id) == []
    # a long run's tail, oldest first, without reading the rest
    assert _messages(history.log_lines(RUN, limit=2, last=True)) == ["t1 line 3", "t1 line 4"]
    assert _messages(history.log_lines(RUN, task="t2", limit=5, last=True)) == ["t2 line 2"]


def test_lines_by_task_level_and_time(history: History) -> None:
    history.store([stored_batch(batch(RUN, 1, [
        line("a-1", 1, task_name="load_a"),
        line("b-1", 2, task_name="load_b", level="ERROR"),
        line("c-1", 3, task_name="save", level="DEBUG"),
    ]))])  # fmt: skip
    assert _messages(history.log_lines(RUN, task="b-1")) == ["b-1 line 2"]
    assert _messages(history.log_lines(RUN, task="save")) == ["c-1 line 3"]
    assert _messages(history.log_lines(RUN, task="load_*")) == ["a-1 line 1", "b-1 line 2"]
    assert history.log_lines(RUN, task="Load_*") == []  # names are case-sensitive
    assert _messages(history.log_lines(RUN, level=logging.WARNING)) == ["b-1 line 2"]
    assert _messages(history.log_lines(RUN, since=T0 + 2)) == ["b-1 line 2", "c-1 line 3"]
    assert history.log_lines("another-run") == []
    with pytest.raises(ValueError, match="limit"):
        history.log_lines(RUN, limit=0)


def test_counts_add_up_lines_and_drops_per_task(history: History) -> None:
    history.store([stored_batch(batch(RUN, 1, [line("t1", 1), line("t2", 1)]))])
    history.store([stored_batch(batch(RUN, 2, [line("t1", 9)], dropped=[
        DroppedLines(task_id="t1", task_name="t1_name", lines=7, reason="rate"),
        DroppedLines(task_id="t3", task_name="t3_name", lines=2, reason="queue"),
    ]))])  # fmt: skip
    assert history.log_counts(RUN) == {
        "t1": LogCount("t1_name", 2, 7),
        "t2": LogCount("t2_name", 1, 0),
        "t3": LogCount("t3_name", 0, 2),
    }
    assert history.log_counts("another-run") == {}


def test_a_long_message_is_cut_and_nul_escaped(history: History) -> None:
    history.store([stored_batch(batch(RUN, 1, [line("t1", 1, "x\x00" + "y" * 40_000)]))])
    (got,) = history.log_lines(RUN)
    assert got.message.startswith("x\\x00yyy")
    assert len(got.message.encode()) <= MAX_LOG_LINE_BYTES


def test_a_batch_with_a_line_of_no_time_is_rejected_whole(history: History) -> None:
    bad = batch(RUN, 1, [line("t1", 1), line("t1", 2, ts=T0)])
    bad.lines[1].ts = "yesterday"
    assert history.store([stored_batch(bad)]) == Stored(rejected=1)
    assert history.log_lines(RUN) == []
    assert history.log_counts(RUN) == {}


def test_logs_from_another_source_than_the_runs_are_refused(history: History) -> None:
    """The run's events say engine-1; a batch from engine-2 is refused, counted on the run."""
    history.store([lifecycle(RUN, "ENGINE_STARTED", T0, source="engine-1")])
    got = history.store([stored_batch(batch(RUN, 1, [line("t1", 1)], source="engine-2"))])
    assert got == Stored(refused=1)
    assert history.log_lines(RUN) == []
    run = history.run(RUN)
    assert run is not None
    assert run.run.refused == {REASON_FOREIGN: 1}


def test_a_run_heard_of_by_its_logs_first_belongs_to_their_source(history: History) -> None:
    """Its later events and logs from another source are refused."""
    assert history.store([stored_batch(batch(RUN, 1, [line("t1", 1)]))]) == Stored(stored=1)
    later = history.store([
        lifecycle(RUN, "ENGINE_STARTED", T0, source="engine-2"),
        stored_batch(batch(RUN, 2, [line("t1", 2)], source="engine-2")),
    ])  # fmt: skip
    assert later == Stored(refused=2)
    assert history.runs() == []


def test_runs_are_found_by_the_text_they_logged(history: History) -> None:
    history.store(
        [stored_batch(batch("r1", 1, [line("t", 1, "Connection REFUSED by db")]))],
    )
    history.store([stored_batch(batch("r2", 1, [line("t", 1, "all good")]))])
    history.store([stored_batch(batch("r3", 1, [line("t", 1, "refused: 100%_done")]))])
    assert history.runs_logging("refused") == ["r3", "r1"]
    assert history.runs_logging("refused", limit=1) == ["r3"]
    assert history.runs_logging("100%_") == ["r3"]  # LIKE's wildcards are text here
    assert history.runs_logging("0%x") == []
    assert history.runs_logging("good", since=T0 + 1) == []
    assert history.runs_logging("good", since=T0 - 1) == ["r2"]


def test_keep_logs_prunes_lines_by_when_they_were_received(history: History) -> None:
    """Lines received before the moment go (their counts stay); newer ones stay."""
    history.store([stored_batch(batch(RUN, 1, [line("t1", 1)]), received_at=T0)])
    history.store([stored_batch(batch(RUN, 2, [line("t1", 2)]), received_at=T0 + 100)])
    assert history.prune_logs(T0 + 50) == 2  # a line and its batch
    assert history.prune_logs(T0 + 50) == 0
    assert _messages(history.log_lines(RUN)) == ["t1 line 2"]
    assert history.log_counts(RUN) == {"t1": LogCount("t1_name", 2, 0)}


def test_logs_go_with_their_run_by_default(history: History) -> None:
    """prune (``--keep``) deletes a run's logs with it, and those of runs known only by logs."""
    history.store(
        [lifecycle(RUN, "ENGINE_STARTED", T0)],
    )
    history.store([stored_batch(batch(RUN, 1, [line("t1", 1)]), received_at=T0)])
    history.store([stored_batch(batch("logs-only", 1, [line("t1", 1)]), received_at=T0)])
    history.store([stored_batch(batch("kept", 1, [line("t1", 1)]), received_at=T0 + 100)])
    while history.prune(T0 + 50):
        pass
    for run_id in (RUN, "logs-only"):
        assert (history.log_lines(run_id), history.log_counts(run_id)) == ([], {})
    assert _messages(history.log_lines("kept")) == ["t1 line 1"]


def test_lines_numbered_but_neither_stored_nor_dropped_are_counted_lost(history: History) -> None:
    """Batches 1 and 4 of a run (2 and 3 lost while no recorder listened): t1's lines 1-2 and
    6-7 stored, line 8 dropped over its budget, so lines 3-5 are lost; t2, whose first line
    stored is its 4th, lost 3 before; a task of unnumbered lines (an older engine's) lost none."""
    history.store([stored_batch(batch(RUN, 1, [line("t1", 1), line("t1", 2)]))])
    dropped = [DroppedLines(task_id="t1", task_name="t1_name", lines=1, reason="budget")]
    history.store([stored_batch(batch(RUN, 4, [line("t1", 6), line("t1", 7), line("t2", 4),
                                               line("t3", 0)], dropped=dropped))])  # fmt: skip
    assert history.log_counts(RUN) == {
        "t1": LogCount("t1_name", lines=4, dropped=1, lost=3),
        "t2": LogCount("t2_name", lines=1, dropped=0, lost=3),
        "t3": LogCount("t3_name", lines=1, dropped=0, lost=0),
    }
    assert history.log_counts(RUN)["t1"].to_json()["lost"] == 3


def test_a_batch_of_nothing_stores_and_blocks_nothing(history: History) -> None:
    """A batch with no line and no drop (no engine sends one; anyone may): stored as a batch,
    counting nothing, and the write goes through (it once failed on SQLite's syntax and was
    retried for ever, holding up every message behind it)."""
    assert history.store([stored_batch(batch(RUN, 1, []))]) == Stored(1)
    assert history.store([stored_batch(batch(RUN, 2, [line("t1", 1)]))]) == Stored(1)
    assert history.log_counts(RUN) == {"t1": LogCount("t1_name", lines=1, dropped=0)}


def test_batches_missing_are_counted_from_their_numbers_tasks_that_lost_every_line_too(
    history: History,
) -> None:
    """Batches 1, 2 and 5 stored (3 and 4 lost: every line of task t2 was in them): two
    batches missing, which the tasks' counts cannot say (t2 has no row); a late one fills
    its hole, a copy counts once, and a run without logs has none."""
    history.store([stored_batch(batch(RUN, 1, [line("t1", 1)])),
                   stored_batch(batch(RUN, 2, [line("t1", 2)]))])  # fmt: skip
    history.store([stored_batch(batch(RUN, 5, [line("t1", 3)]))])
    assert history.log_counts(RUN) == {"t1": LogCount("t1_name", lines=3, dropped=0)}
    got = history.log_batches(RUN)
    assert got == LogBatches(stored=3, last_seq=5)
    assert got is not None
    assert got.missing == 2
    assert got.to_json() == {"stored": 3, "last_seq": 5, "missing": 2}
    late = batch(RUN, 3, [line("t2", 1)])
    history.store([stored_batch(late), stored_batch(late)])
    history.store([stored_batch(late)])
    assert history.log_batches(RUN) == LogBatches(stored=4, last_seq=5)
    assert history.log_batches("another-run") is None


def test_a_batch_numbered_beyond_what_an_engine_can_send_is_refused(history: History) -> None:
    """A batch number more than MAX_SEQ_JUMP above the run's highest is refused (counted on
    the run), never a giant count of batches missing; one within the bound is taken."""
    history.store([stored_batch(batch(RUN, 1, [line("t1", 1)]))])
    forged = batch(RUN, 10**15, [line("t1", 2, "forged")])
    assert history.store([stored_batch(forged)]) == Stored(refused=1)
    assert history.store([stored_batch(batch(RUN + "-2", MAX_SEQ_JUMP + 1, []))]) == Stored(
        refused=1
    )  # a run's first batch is bounded from 0: engines number from 1
    assert history.log_batches(RUN) == LogBatches(stored=1, last_seq=1)
    assert history.log_batches(RUN + "-2") is None
    assert "forged" not in _messages(history.log_lines(RUN))
    detail = history.run(RUN, counts=False)
    assert detail is None or detail.run.refused.get(REASON_BEYOND) == 1
    assert history.store([stored_batch(batch(RUN, 1 + MAX_SEQ_JUMP, [line("t1", 2)]))]) == Stored(
        stored=1
    )
    assert history.log_batches(RUN) == LogBatches(stored=2, last_seq=1 + MAX_SEQ_JUMP)
