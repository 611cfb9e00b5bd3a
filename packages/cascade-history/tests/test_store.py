"""Ingest: each message stored once, runs that never go backwards, hostile text stored inert."""

from __future__ import annotations

import json
import threading

import pytest
import sqlalchemy as sa

from cascade.history import History, Received, Stored
from cascade.interfaces import Constraint, StatusMessage

from .messages import T0, cleared, constraint, heartbeat, lifecycle, status, task

YEAR = 365 * 86400.0


def _a_run(run_id: str = "r1", *, seq: bool = False) -> list[Received]:
    numbers = iter(range(1, 100))

    def n() -> int | None:
        return next(numbers) if seq else None

    return [
        lifecycle(run_id, "ENGINE_STARTED", T0, seq=n(), tasks=2),
        task(run_id, "fetch-1", "RUNNING", T0 + 1, seq=n()),
        task(run_id, "fetch-1", "COMPLETED", T0 + 2, seq=n(), duration_ms=1000),
        task(run_id, "load-1", "RUNNING", T0 + 2, seq=n()),
        task(run_id, "load-1", "FAILED", T0 + 4, seq=n(), duration_ms=2000, error="OSError: x"),
        lifecycle(run_id, "ENGINE_STOPPED", T0 + 5, seq=n(), status="Failed", error="load-1"),
    ]


@pytest.mark.parametrize("seq", [False, True], ids=["without-seq", "with-seq"])
def test_a_message_delivered_twice_is_stored_once(history: History, seq: bool) -> None:
    """Copies in the same batch and in later batches are counted as duplicates, stored once."""
    batch = _a_run(seq=seq)
    assert history.store(batch + batch[:2]) == Stored(stored=6, duplicates=2)
    assert history.store(batch) == Stored(stored=0, duplicates=6)
    detail = history.run("r1")
    assert detail is not None
    assert [len(t.states) for t in detail.tasks] == [2, 2]


def test_with_seq_the_identity_is_the_number(history: History) -> None:
    """Two events numbered apart are two events, even with the same task, state and time."""
    first = task("r1", "a-1", "BLOCKED", T0, seq=1)
    second = task("r1", "a-1", "BLOCKED", T0, seq=2)
    copy = task("r1", "a-1", "BLOCKED", T0, seq=1)
    assert history.store([first, second, copy]) == Stored(stored=2, duplicates=1)
    unnumbered = [task("r2", "a-1", "BLOCKED", T0), task("r2", "a-1", "BLOCKED", T0)]
    assert history.store(unnumbered) == Stored(stored=1, duplicates=1)


def test_a_run_never_goes_backwards(history: History) -> None:
    """Its end, then its start and a late copy of a task's first state: still ended, Failed."""
    run = _a_run()
    history.store([run[5], run[4]])
    history.store([run[0], run[1]])
    history.store([lifecycle("r1", "ENGINE_STARTED", T0, tasks=2)])  # a copy, after the end
    history.store([task("r1", "load-1", "RUNNING", T0 + 2)])  # older than its FAILED
    [summary] = history.runs()
    assert summary.status == "Failed"
    assert summary.error == "load-1"
    assert (summary.started_at, summary.ended_at, summary.duration) == (T0, T0 + 5, 5.0)
    assert summary.planned_tasks == 2
    assert summary.tasks == {"RUNNING": 1, "FAILED": 1}  # fetch-1's end never came


def test_a_run_whose_end_came_first_is_partial_until_its_last_states_come(
    history: History,
) -> None:
    """The end (QoS 1) stored before the last task states (QoS 0), as RabbitMQ may deliver
    them: the run has ended and says what it misses; once they come, it is whole."""
    run = _a_run(seq=True)
    history.store([*run[:3], run[5]])
    [summary] = history.runs()
    assert (summary.status, summary.missing_events) == ("Failed", 2)
    assert summary.tasks == {"COMPLETED": 1}
    history.store(run[3:5])
    [summary] = history.runs()
    assert (summary.status, summary.missing_events) == ("Failed", 0)
    assert summary.tasks == {"COMPLETED": 1, "FAILED": 1}


def test_a_run_first_seen_midway_starts_when_first_seen_until_its_start_arrives(
    history: History,
) -> None:
    """A recorder that joins late knows the run from its first event; ENGINE_STARTED corrects it."""
    history.store([task("r1", "a-1", "RUNNING", T0 + 10)])
    [summary] = history.runs()
    assert (summary.status, summary.started_at, summary.ended_at) == ("Running", T0 + 10, None)
    history.store([lifecycle("r1", "ENGINE_STARTED", T0)])
    assert history.runs()[0].started_at == T0


def test_heartbeats_keep_the_highest_drop_count_and_sequence(history: History) -> None:
    """dropped_telemetry and last_seq only rise; events numbered but never stored are missing."""
    events = [task("r1", "a-1", "RUNNING", T0 + i, seq=i + 1, name="a") for i in range(3)]
    history.store(events)
    history.store([heartbeat("r1", T0 + 6, dropped=4, last_seq=5)])
    history.store([heartbeat("r1", T0 + 5, dropped=2, last_seq=4)])  # older, arriving late
    [summary] = history.runs()
    assert summary.dropped_telemetry == 4
    assert summary.missing_events == 2
    assert history.store([heartbeat("r1", T0 + 7)]) == Stored(stored=1)


def test_hostile_text_is_stored_escaped_and_bounded(history: History) -> None:
    """NUL and lone surrogates (which no database takes) are stored as escapes; names are cut."""
    name = "evil\x00\ud800\x1b]0;title\x07"
    huge = "x" * 5000
    result = history.store(
        [
            task("r1", "a-1", "FAILED", T0, name=name, error="E: \x00\x1b[31mred"),
            task("r1", "b-1", "COMPLETED", T0, name=huge),
        ]
    )
    assert result == Stored(stored=2)
    detail = history.run("r1")
    assert detail is not None
    names = sorted(t.task_name for t in detail.tasks)
    assert names[0] == "evil\\x00\\ud800\x1b]0;title\x07"  # escaped by the CLI when shown
    assert len(names[1].encode()) <= 1024
    assert names[1].endswith("…[cut]")
    assert "\\x00" in next(t.error for t in detail.tasks if t.task_id == "a-1")


def test_what_is_not_the_protocol_is_rejected(history: History) -> None:
    """A timestamp that is no time, and an id the protocol refuses, are rejected, never stored."""
    bad_time = task("r1", "a-1", "RUNNING", T0)
    assert bad_time.message is not None
    bad_time.message.ts = "yesterday"  # type: ignore[union-attr]
    bad_id = task("r" * 2000, "a-1", "RUNNING", T0)
    assert history.store([bad_time, bad_id]) == Stored(rejected=2)
    assert history.runs() == []


def test_numbers_no_column_can_hold_are_rejected(history: History) -> None:
    """JSON integers are unbounded; a seq, count or session beyond 64 bits (planned tasks: 32)
    is rejected, alone, and the rest of the batch stored."""
    huge = 10**30
    batch = [
        task("r1", "a-1", "RUNNING", T0, seq=huge),
        heartbeat("r1", T0, last_seq=2**63),
        heartbeat("r1", T0, dropped=2**64),
        lifecycle("r1", "ENGINE_STARTED", T0, tasks=2**31),
        status("s", "online", huge, T0),
        task("r1", "a-1", "RUNNING", T0, seq=2**63 - 1),
    ]
    assert history.store(batch) == Stored(stored=1, rejected=5)


def test_a_message_the_database_refuses_is_rejected_alone(history: History) -> None:
    """A batch with one message the database cannot take stores every other one."""
    poison = Constraint(id="x", scope="global", type="pause", params={"p": object()})
    batch = [*_a_run(), Received("cascade/constraints/global/pause", poison, T0)]
    assert history.store(batch) == Stored(stored=6, rejected=1)
    assert history.runs()[0].status == "Failed"


def test_presence_changes_are_stored_once(history: History) -> None:
    """A retained birth delivered again on resubscribing is no new change."""
    online = status("host-1", "online", 1000, T0, retained=True)
    offline = status("host-1", "offline", 1000, T0 + 9)
    assert history.store([online, offline]) == Stored(stored=2)
    assert history.store([online]) == Stored(duplicates=1)
    legacy = Received("cascade/status/old-tool", StatusMessage(status="online"), T0)
    assert history.store([legacy, legacy]) == Stored(stored=1, duplicates=1)


def test_constraint_changes_are_the_audit_trail(history: History) -> None:
    """Set, its retained copy, cleared, set again with a TTL: three events, newest first."""
    topic = "cascade/constraints/task/api_%2A/pause"
    pause = constraint(topic, "task:api_*", "pause", T0, retained=True)
    again = constraint(topic, "task:api_*", "pause", T0 + 1, retained=True)
    history.store([pause, again])
    history.store([cleared(topic, T0 + 2)])
    history.store([cleared(topic, T0 + 2.5)])  # cleared again: no change
    limit = constraint(
        "cascade/constraints/global/rate_limit",
        "global",
        "rate_limit",
        T0 + 3,
        params={"rate": "10/m"},
        expires_at=T0 + 3 + YEAR,  # not passed yet
    )
    history.store([limit])
    events = history.audit(since=T0 - 1)
    assert [(e.action, e.scope, e.type) for e in events] == [
        ("set", "global", "rate_limit"),
        ("cleared", "task:api_*", "pause"),
        ("set", "task:api_*", "pause"),
    ]
    assert events[0].params == {"rate": "10/m"}
    assert events[0].ttl == YEAR
    assert events[0].topic == "cascade/constraints/global/rate_limit"
    assert history.audit(since=T0 + 2.5)[0].action == "set"


def test_an_expiry_that_passed_is_in_the_audit(history: History) -> None:
    """A constraint whose expires_at passed with nothing after it shows as expired then."""
    topic = "cascade/constraints/global/pause"
    history.store([constraint(topic, "global", "pause", T0, expires_at=T0 + 60)])
    events = history.audit()
    assert [(e.action, e.at) for e in events] == [("expired", T0 + 60), ("set", T0)]


def test_two_writers_store_each_message_once(database_url: str) -> None:
    """Two recorders' histories on one database, writing the same messages at once."""
    runs = [_a_run(f"run-{i}", seq=i % 2 == 0) for i in range(20)]
    batch = [message for run in runs for message in run]
    first, second = History(database_url, mode="write"), History(database_url, mode="write")
    results: list[Stored] = []
    try:
        threads = [
            threading.Thread(target=lambda h=h: results.append(h.store(batch)))
            for h in (first, second)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sum(r.stored for r in results) == len(batch)
        assert sum(r.duplicates for r in results) == len(batch)
        assert len(first.runs()) == 20
        assert all(run.status == "Failed" for run in first.runs())
    finally:
        first.close()
        second.close()


def test_a_batch_longer_than_a_statement_keeps_the_first_of_each_copy(history: History) -> None:
    """1,200 events and two copies in their midst (one byte for byte, one numbered as another
    event but saying FAILED): each copy a duplicate, the first of the two alike kept, and each
    finished execution counted once in the per-task statistics."""
    states = ("RUNNING", "COMPLETED")
    batch = [
        task("r1", f"t-{i // 2}", states[i % 2], T0 + i, seq=i + 1, duration_ms=float(i % 2))
        for i in range(1_200)
    ]
    conflicting = task("r1", "t-4", "FAILED", T0 + 9, seq=10, error="not sent by its engine")
    mixed = [*batch[:700], batch[3], conflicting, *batch[700:]]
    assert history.store(mixed) == Stored(stored=1_200, duplicates=2)
    assert history.store(mixed) == Stored(duplicates=1_202)
    detail = history.run("r1")
    assert detail is not None
    assert len(detail.tasks) == 600
    t4 = next(t for t in detail.tasks if t.task_id == "t-4")
    assert [s.state for s in t4.states] == ["RUNNING", "COMPLETED"]
    for exact in (True, False):
        [stats] = history.tasks(exact=exact)
        assert (stats.executions, stats.failures, stats.runs) == (600, 0, 1)


def test_holds_are_stored_as_the_json_text_sqlalchemy_writes(
    history: History, database_url: str
) -> None:
    """A BLOCKED event's holds are stored as ``json.dumps`` writes them (what SQLAlchemy's JSON
    type binds), an event without any as JSON ``null``, on either database."""
    holds = [{"type": "pause", "scope": "global", "reason": "café"}]
    blocked = task("r1", "a-1", "BLOCKED", T0, seq=1, held_by=holds)
    assert history.store([blocked, task("r1", "a-1", "RUNNING", T0 + 1, seq=2)]).stored == 2
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as connection:
            query = sa.text("SELECT seq, CAST(held_by AS TEXT) FROM task_events ORDER BY seq")
            stored = [tuple(row) for row in connection.execute(query)]
    finally:
        engine.dispose()
    assert stored == [(1, json.dumps(holds)), (2, "null")]


def test_each_run_of_a_task_counts_once_whatever_copies_come(history: History) -> None:
    """The rows a bulk insert says it took make the per-task statistics: a batch all new, all
    copies, copies of rows stored before mixed with new ones, and copies within a batch longer
    than a statement (where SQLite undoes the statement and takes its rows again)."""

    def runs(*numbers: int) -> list[Received]:
        return [
            message
            for n in numbers
            for message in (
                task(f"r{n}", "t-1", "RUNNING", T0 + n, name="t", seq=1),
                task(f"r{n}", "t-1", "COMPLETED", T0 + n + 0.5, name="t", seq=2, duration_ms=5.0),
            )
        ]

    def counted() -> tuple[int, int]:
        [stats] = history.tasks(exact=True)
        return stats.runs, stats.executions

    assert history.store(runs(1, 2, 3)) == Stored(stored=6)
    assert counted() == (3, 3)
    assert history.store(runs(1, 2, 3)) == Stored(duplicates=6)
    assert counted() == (3, 3)
    assert history.store(runs(4, 2, 4, 5)) == Stored(stored=4, duplicates=4)
    assert counted() == (5, 5)
    many = runs(*range(6, 1_500), 7, *range(1_500, 2_000), 3)
    assert history.store(many) == Stored(stored=2 * 1_994, duplicates=4)
    assert counted() == (1_999, 1_999)
