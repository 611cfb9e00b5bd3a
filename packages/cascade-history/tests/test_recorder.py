"""The recorder: a real engine's run over the in-memory broker, recorded, queried; its queue's
bounds; hostile payloads rejected; a database that fails carried by the buffer."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Sequence
from typing import Any

import msgspec
import pytest

from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.history import History, HistoryError, Received, Recorder, Stored
from cascade.interfaces import Constraint, constraint_topic, events_topic
from cascade.runtime import Engine, TaskFailedError, task

from .messages import T0, iso


@task
async def fetch(n: int) -> int:
    return n * 2


@task
async def check(values: list[int]) -> int:
    raise ValueError(f"checksum mismatch in {len(values)} partitions")


@task
async def report(total: int) -> None:
    """Never runs: it depends on ``check``, which fails."""


async def test_a_real_engine_run_is_recorded(
    broker: InMemoryBroker, history: History, recorder: Recorder
) -> None:
    """A run of 6 tasks with a failure and a skip: its status, error, tasks and their states."""
    engine = Engine(
        InMemoryConnector(broker, source_id="engine-1"),
        org_id="acme",
        project_id="shop",
        heartbeat_interval=None,
    )
    with pytest.raises(TaskFailedError):
        await engine.run(report(check([fetch(n) for n in range(4)])))
    await broker.idle()
    await recorder.flush(timeout=5)

    [run] = history.runs(status="failed")
    assert (run.project_id, run.source, run.planned_tasks) == ("shop", "engine-1", 6)
    assert run.tasks == {"COMPLETED": 4, "FAILED": 1, "SKIPPED": 1}
    assert run.duration is not None
    detail = history.run(run.run_id)
    assert detail is not None
    failed = next(t for t in detail.tasks if t.state == "FAILED")
    assert failed.task_name == "check"
    assert failed.error == "ValueError: checksum mismatch in 4 partitions"
    assert [s.state for s in failed.states] == ["RUNNING", "FAILED"]
    stats = {s.task_name: s for s in history.tasks()}
    assert (stats["fetch"].executions, stats["check"].failure_rate) == (4, 1.0)
    presence = recorder.stats
    assert presence.rejected == presence.dropped == 0
    assert presence.received == presence.stored + presence.duplicates
    assert presence.queued == 0


async def test_copies_are_counted_as_duplicates(
    broker: InMemoryBroker, history: History, recorder: Recorder
) -> None:
    """A message published twice (a resend after a lost connection) is stored once."""
    envelope = {
        "ts": iso(T0),
        "run_id": "r1",
        "org_id": "local",
        "project_id": "default",
        "source": "s",
        "body": {"type": "LifecycleEvent", "event": "ENGINE_STARTED"},
    }
    async with InMemoryConnector(broker, presence=False) as engine:
        for _ in range(2):
            await engine.publish(events_topic("local", "default", "r1"), envelope, qos=1)
    await broker.idle()
    await recorder.flush(timeout=5)
    assert (recorder.stats.stored, recorder.stats.duplicates) == (1, 1)
    assert len(history.runs()) == 1


async def test_an_envelope_is_recorded_as_its_payload_says(
    broker: InMemoryBroker, history: History, recorder: Recorder
) -> None:
    """A payload that reads differently key by key than as a whole (``seq`` given twice, the
    first not a number: JSON keeps the last) is recorded as the connector decoded it, as every
    reader takes it, not rejected for the key JSON drops."""
    raw = (
        b'{"ts": "%s", "run_id": "r1", "org_id": "local", "project_id": "default", '
        b'"source": "s", "seq": true, "seq": 1, '
        b'"body": {"type": "LifecycleEvent", "event": "ENGINE_STARTED", "tasks": 3}}'
    ) % iso(T0).encode()
    async with InMemoryConnector(broker, presence=False) as engine:
        await engine.publish(events_topic("local", "default", "r1"), raw, qos=1)
    await broker.idle()
    await recorder.flush(timeout=5)
    assert (recorder.stats.stored, recorder.stats.rejected) == (1, 0)
    [run] = history.runs()
    assert (run.planned_tasks, run.missing_events) == (3, 0)


async def test_hostile_payloads_are_rejected_and_counted(
    broker: InMemoryBroker, history: History, recorder: Recorder
) -> None:
    """Not an envelope, a wrong type, oversized, a bad constraint: counted, nothing stored."""
    topic = events_topic("local", "default", "r1")
    async with InMemoryConnector(broker, presence=False) as attacker:
        await attacker.publish(topic, {"hello": "world"})
        await attacker.publish(topic, b"[1, 2]")  # not an object: the connector rejects it
        await attacker.publish(topic, {"run_id": 5, "body": {"type": "Nope"}})
        await attacker.publish(topic, {"x": "y" * (300 * 1024)})
        await attacker.publish("cascade/constraints/global/pause", {"scope": "global"}, qos=1)
    await broker.idle()
    await recorder.flush(timeout=5)
    stats = recorder.stats
    assert stats.rejected == 4
    assert stats.stored == 0
    assert history.runs() == []
    assert history.audit() == []


async def test_the_sourced_layout_is_recorded_and_its_forgeries_rejected(
    broker: InMemoryBroker, history: History, recorder: Recorder
) -> None:
    """An engine on the sourced layout is recorded as on the other; a message on a source's
    topic claiming another source (what an ACL binds is the topic) is rejected, not stored."""
    engine = Engine(
        InMemoryConnector(broker, source_id="engine-1", sourced_topics=True),
        heartbeat_interval=None,
    )
    await engine.run(fetch(1))
    forged = {
        "ts": iso(T0),
        "run_id": "r2",
        "org_id": "local",
        "project_id": "default",
        "source": "engine-1",
        "body": {"type": "LifecycleEvent", "event": "ENGINE_STARTED"},
    }
    async with InMemoryConnector(broker, presence=False) as mallory:
        topic = events_topic("local", "default", "r2", source="mallory")
        await mallory.publish(topic, forged, qos=1)
    await broker.idle()
    await recorder.flush(timeout=5)
    assert [run.source for run in history.runs()] == ["engine-1"]
    assert (recorder.stats.stored, recorder.stats.rejected) == (6, 1)  # 4 events, 2 statuses


async def test_constraints_set_and_cleared_are_audited(
    broker: InMemoryBroker, history: History, recorder: Recorder
) -> None:
    """What `cascade pause` and `cascade resume` publish lands in the audit trail."""
    topic = constraint_topic("task:api_*", "pause")
    async with InMemoryConnector(broker, presence=False) as cli:
        await cli.publish(topic, Constraint.pause("task:api_*"), qos=1, retain=True)
        await broker.idle()
        await cli.publish(topic, b"", qos=1, retain=True)
    await broker.idle()
    await recorder.flush(timeout=5)
    events = history.audit()
    assert [(e.action, e.scope, e.type, e.topic) for e in events] == [
        ("cleared", "task:api_*", "pause", topic),
        ("set", "task:api_*", "pause", topic),
    ]


async def test_a_constraint_expired_when_it_came_is_audited_as_its_clear(
    broker: InMemoryBroker, history: History, recorder: Recorder
) -> None:
    """`cascade resume` retains an expired copy before the empty payload: one clear, not a
    set and a clear; a copy a broker brings back later sets nothing either."""
    topic = constraint_topic("global", "pause")
    pause = Constraint.pause("global")
    async with InMemoryConnector(broker, presence=False) as cli:
        await cli.publish(topic, pause, qos=1, retain=True)
        await broker.idle()
        expired = msgspec.structs.replace(pause, expires_at=time.time() - 1)
        for payload in (expired, b"", expired):
            await cli.publish(topic, payload, qos=1, retain=True)
            await broker.idle()
    await recorder.flush(timeout=5)
    assert [(e.action, e.scope) for e in history.audit()] == [
        ("cleared", "global"),
        ("set", "global"),
    ]


async def test_a_retained_constraint_is_not_a_new_change_on_restart(
    broker: InMemoryBroker, history: History
) -> None:
    """A second recorder (or the same one started again) gets the retained copy: a duplicate."""
    topic = constraint_topic("global", "pause")
    async with InMemoryConnector(broker, presence=False) as cli:
        await cli.publish(topic, Constraint.pause("global"), qos=1, retain=True)
    for _ in range(2):
        async with InMemoryConnector(broker, presence=False) as connector:
            recorder = Recorder(connector, history)
            await recorder.start()
            await recorder.flush(timeout=5)
            await recorder.stop()
    assert (recorder.stats.stored, recorder.stats.duplicates) == (0, 1)
    assert len(history.audit()) == 1


class _FailingHistory(History):
    """A history whose writes fail ``failures`` times (the database is down), then work."""

    def __init__(self, url: str, failures: int) -> None:
        super().__init__(url, mode="write")
        self.failures = failures
        self.calls = 0

    def store(self, batch: Sequence[Received], **gaps: Any) -> Stored:
        self.calls += 1
        if self.calls <= self.failures:
            raise HistoryError("cannot write the history: connection refused")
        return super().store(batch, **gaps)


class _BlockedHistory(History):
    """A history whose writes wait until ``release`` is set (a database that hangs)."""

    def __init__(self, url: str) -> None:
        super().__init__(url, mode="write")
        self.release = threading.Event()

    def store(self, batch: Sequence[Received], **gaps: Any) -> Stored:
        self.release.wait(10)
        return super().store(batch, **gaps)


async def _publish_runs(broker: InMemoryBroker, count: int, first: int = 0) -> None:
    async with InMemoryConnector(broker, presence=False) as engine:
        for i in range(first, first + count):
            envelope = {
                "ts": iso(T0 + i),
                "run_id": f"run-{i}",
                "org_id": "local",
                "project_id": "default",
                "source": "s",
                "body": {"type": "LifecycleEvent", "event": "ENGINE_STARTED"},
            }
            await engine.publish(events_topic("local", "default", f"run-{i}"), envelope)
    await broker.idle()


async def test_a_database_that_fails_is_retried_and_nothing_is_lost(
    broker: InMemoryBroker, database_url: str
) -> None:
    """Writes that fail keep their batch, retried with backoff, until the database is back."""
    history = _FailingHistory(database_url, failures=3)
    async with InMemoryConnector(broker, presence=False) as connector:
        recorder = Recorder(connector, history, retry_initial=0.01)
        await recorder.start()
        await _publish_runs(broker, 50)
        await recorder.flush(timeout=5)
        await recorder.stop()
    stats = recorder.stats
    assert (stats.stored, stats.dropped, stats.write_errors) == (50, 0, 3)
    assert stats.last_error == "cannot write the history: connection refused"
    assert len(history.runs()) == 50
    history.close()


class _FaultyHistory(History):
    """A history whose first write fails with an error no database raises (a fault of ours)."""

    def __init__(self, url: str) -> None:
        super().__init__(url, mode="write")
        self.calls = 0

    def store(self, batch: Sequence[Received], **gaps: Any) -> Stored:
        self.calls += 1
        if self.calls == 1:
            raise RuntimeError("a bug")
        return super().store(batch, **gaps)


async def test_a_fault_in_a_write_rejects_its_batch_and_recording_goes_on(
    broker: InMemoryBroker, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """An unexpected exception from a write: its batch counted as rejected, logged with the
    traceback, and the next messages stored: the writer never dies."""
    history = _FaultyHistory(database_url)
    async with InMemoryConnector(broker, presence=False) as connector:
        recorder = Recorder(connector, history)
        await recorder.start()
        await _publish_runs(broker, 1)
        await recorder.flush(timeout=5)
        await _publish_runs(broker, 3)
        await recorder.flush(timeout=5)
        await recorder.stop()
    assert (recorder.stats.rejected, recorder.stats.stored) == (1, 3)  # run-0 again, new
    assert "a fault of the recorder" in caplog.text
    assert "RuntimeError: a bug" in caplog.text
    history.close()


async def test_a_full_queue_drops_and_counts_never_blocking(
    broker: InMemoryBroker, database_url: str
) -> None:
    """While the database hangs, the callback keeps taking messages; beyond the bound, drops."""
    history = _BlockedHistory(database_url)
    async with InMemoryConnector(broker, presence=False) as connector:
        recorder = Recorder(connector, history, max_queue=10, batch_size=5)
        await recorder.start()
        try:
            await _publish_runs(broker, 40)  # returns: the callback never waits on the database
            stats = recorder.stats
        finally:
            history.release.set()
        # at most the queue's bound and the batch being written are kept, the rest counted
        assert stats.received == stats.queued + stats.dropped == 40
        assert 10 <= stats.queued <= 15
        await recorder.flush(timeout=5)
        await recorder.stop()
    assert (recorder.stats.stored, recorder.stats.dropped) == (stats.queued, stats.dropped)
    history.close()


async def test_falling_behind_is_said_while_it_happens_and_catching_up_too(
    broker: InMemoryBroker, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A queue a tenth full: behind (a warning, the stats), before anything is dropped; once
    written, caught up; the times it fell behind are counted."""
    caplog.set_level("INFO", logger="cascade.history")
    history = _BlockedHistory(database_url)
    async with InMemoryConnector(broker, presence=False) as connector:
        recorder = Recorder(connector, history, max_queue=100, batch_size=5, name="rec-1")
        await recorder.start()
        try:
            await _publish_runs(broker, 8)
            assert not recorder.stats.behind
            await _publish_runs(broker, 10, first=8)
            stats = recorder.stats
        finally:
            history.release.set()
        assert (stats.behind, stats.times_behind, stats.dropped) == (True, 1, 0)
        said = re.search(r"recorder rec-1 is falling behind: (\d+) messages queued", caplog.text)
        assert said is not None
        assert 10 <= int(said.group(1)) <= 18
        assert "(it drops past 100)" in caplog.text
        await recorder.flush(timeout=5)
        await recorder.stop()
    assert (recorder.stats.behind, recorder.stats.times_behind) == (False, 1)
    assert "recorder rec-1 caught up after" in caplog.text
    history.close()


async def test_stopping_while_the_database_is_down_counts_what_is_left(
    broker: InMemoryBroker, database_url: str
) -> None:
    """stop() waits its timeout for the writer, then counts the unwritten messages as dropped."""
    history = _FailingHistory(database_url, failures=1_000_000)
    async with InMemoryConnector(broker, presence=False) as connector:
        recorder = Recorder(connector, history, retry_initial=0.01, retry_max=0.05)
        await recorder.start()
        await _publish_runs(broker, 7)
        await asyncio.sleep(0.05)
        await recorder.stop(timeout=0.2)
    stats = recorder.stats
    assert (stats.received, stats.stored, stats.dropped, stats.queued) == (7, 0, 7, 0)
    assert stats.write_errors >= 1
    history.close()


async def test_keep_prunes_old_runs_as_it_records(broker: InMemoryBroker, history: History) -> None:
    """With keep, runs last received longer ago than that are pruned between writes."""
    async with InMemoryConnector(broker, presence=False) as connector:
        recorder = Recorder(connector, history, clock=lambda: time.time() - 7200)
        await recorder.start()
        await _publish_runs(broker, 3)  # received two hours ago: older than an hour
        await recorder.flush(timeout=5)
        await recorder.stop()
        assert len(history.runs()) == 3
        pruning = Recorder(connector, history, keep=3600.0)
        await pruning.start()
        for _ in range(100):
            if not history.runs():
                break
            await asyncio.sleep(0.02)
        await pruning.stop()
    assert history.runs() == []


async def test_a_shared_recorder_subscribes_through_the_group(
    broker: InMemoryBroker, history: History
) -> None:
    """share="g": telemetry through $share/g/..., the broker's delivery to it checked; it counts
    no gaps of its own (it sees a part of each run), the history counts them per run."""
    async with InMemoryConnector(broker, presence=False) as connector:
        recorder = Recorder(connector, history, share="g")
        await recorder.start()
        assert recorder.sharing
        assert await recorder.check_sharing(timeout=5)
        await _publish_runs(broker, 3)
        await recorder.flush(timeout=5)
        await recorder.stop()
    assert len(history.runs()) == 3
    assert recorder.stats.gaps == 0


def test_a_group_name_with_wildcards_is_refused(history: History) -> None:
    """A shared subscription's group is one topic level without wildcards."""
    connector = InMemoryConnector(InMemoryBroker(), presence=False)
    with pytest.raises(ValueError, match="group name"):
        Recorder(connector, history, share="a+b")


class _CountingHistory(History):
    """A history that keeps the size of each batch it is given."""

    def __init__(self, url: str) -> None:
        super().__init__(url, mode="write")
        self.batches: list[int] = []

    def store(self, batch: Sequence[Received], **gaps: Any) -> Stored:
        if batch:
            self.batches.append(len(batch))
        return super().store(batch, **gaps)


async def test_a_steady_stream_is_written_a_batch_per_linger(
    broker: InMemoryBroker, database_url: str
) -> None:
    """A message after a quiet spell is written at once; those that follow it wait for others
    to share their transaction, until ``linger`` has passed since the last one began or a whole
    batch is queued; stopping writes what waits at once."""
    history = _CountingHistory(database_url)
    async with InMemoryConnector(broker, presence=False) as connector:
        recorder = Recorder(connector, history, batch_size=100, linger=60.0)
        await recorder.start()
        await _publish_runs(broker, 1)
        await recorder.flush(timeout=5)
        assert history.batches == [1]
        await _publish_runs(broker, 30, first=1)
        with pytest.raises(asyncio.TimeoutError):  # 60 s to wait for the rest of a batch
            await recorder.flush(timeout=0.5)
        assert (history.batches, recorder.stats.queued) == ([1], 30)
        await _publish_runs(broker, 75, first=31)  # a whole batch, taken at once, and 5
        await _publish_runs(broker, 1, first=106)
        began = time.monotonic()
        await recorder.stop(timeout=30)
        assert time.monotonic() - began < 30
    assert history.batches == [1, 100, 6]
    assert (recorder.stats.stored, recorder.stats.dropped) == (107, 0)
    history.close()


async def test_a_constraint_on_another_scopes_topic_is_refused_not_audited(
    broker: InMemoryBroker, history: History, recorder: Recorder
) -> None:
    """Issue 45: a ``global`` pause on a ``task:etl_*`` topic is what no engine applies, so
    the audit records no such set; it is counted refused. The operator's own is recorded."""
    topic = constraint_topic("task:etl_*", "pause")
    async with InMemoryConnector(broker, presence=False) as operator:
        await operator.publish(topic, Constraint.pause("global"), qos=1, retain=True)
        await operator.publish(topic, Constraint.pause("task:etl_*"), qos=1, retain=True)
    await broker.idle()
    await recorder.flush(timeout=5)
    assert (recorder.stats.refused, recorder.stats.rejected) == (1, 0)
    assert [(row.scope, row.action) for row in history.audit()] == [("task:etl_*", "set")]


async def test_a_run_on_another_orgs_topic_is_refused_and_counted(
    broker: InMemoryBroker, history: History, recorder: Recorder
) -> None:
    """A run claiming acme/etl on globex's topic (what a broker ACL binds to a login is the
    topic): refused and counted as its run's refusal, not stored as acme's."""
    forged = {
        "ts": iso(T0),
        "run_id": "r2",
        "org_id": "acme",
        "project_id": "etl",
        "source": "mallory",
        "body": {"type": "LifecycleEvent", "event": "ENGINE_STARTED"},
    }
    async with InMemoryConnector(broker, presence=False) as mallory:
        await mallory.publish(events_topic("globex", "etl", "r2", source="mallory"), forged, qos=1)
    await broker.idle()
    await recorder.flush(timeout=5)
    assert history.runs() == []
    assert (recorder.stats.stored, recorder.stats.refused) == (0, 1)
