"""What no engine of a run can have sent is refused by the recorder, stored nowhere, counted
per run and reason: another source's events, a second different message with a number
stored, numbers out of bounds, timestamps ahead; what survives it (a restarted recorder, a
gap sum past 64 bits, runs the recorder stopped following to follow newer ones)."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.history import History, Received, Recorder, Stored
from cascade.interfaces import decode_envelope, events_topic, heartbeat_topic, status_topic
from cascade.reader import MAX_SEQ_JUMP, REASON_BEYOND, REASON_CONFLICT, REASON_FOREIGN, SourceGaps

from .messages import T0, iso, lifecycle, task

RUN = "58a88765cea2c1d0a1f3c2b7e9d84a61"
_INT64 = 2**63 - 1


def _event(
    run_id: str, seq: int, *, source: str = "engine-1", state: str = "COMPLETED", **more: Any
) -> dict[str, Any]:
    """Event ``seq`` of ``run_id``: task ``t-{seq}`` in ``state``, stamped now."""
    return {
        "ts": more.pop("ts", iso(time.time())),
        "run_id": run_id,
        "org_id": "local",
        "project_id": "default",
        "source": source,
        "seq": seq,
        "body": {
            "type": "TaskStateEvent",
            "task_id": f"t-{seq}",
            "task_name": "t",
            "state": state,
            "duration_ms": 1.0,
            "error": more.pop("error", ""),
        },
    }


def _beat(run_id: str, last_seq: int, source: str = "engine-1") -> dict[str, Any]:
    beat = _event(run_id, 0, source=source)
    del beat["seq"]
    beat["body"] = {"type": "Heartbeat", "last_seq": last_seq}
    return beat


async def _publish(broker: InMemoryBroker, recorder: Recorder, *envelopes: dict[str, Any]) -> None:
    async with InMemoryConnector(broker, presence=False) as publisher:
        for envelope in envelopes:
            kind = "heartbeat" if envelope["body"]["type"] == "Heartbeat" else "events"
            topic = (heartbeat_topic if kind == "heartbeat" else events_topic)(
                "local", "default", envelope["run_id"]
            )
            await publisher.publish(topic, envelope, qos=1)
    await broker.idle()
    await recorder.flush(timeout=5)


async def test_a_forgers_events_first_are_shown_not_taken_for_the_run(
    broker: InMemoryBroker, history: History, recorder: Recorder
) -> None:
    """Events 1-3 from ``attacker`` before the engine's own 1-3: the engine's are refused as
    another source's, counted on the run and shown; none is a duplicate, none is stored."""
    forged = [_event(RUN, n, source="attacker", state="FAILED", error="Evil: forged")
              for n in (1, 2, 3)]  # fmt: skip
    real = [_event(RUN, n) for n in (1, 2, 3)]
    await _publish(broker, recorder, *forged, *real)
    stats = recorder.stats
    assert (stats.stored, stats.duplicates, stats.refused) == (3, 0, 3)
    [run] = history.runs()
    assert run.refused == {REASON_FOREIGN: 3}
    assert run.to_json()["refused"] == {REASON_FOREIGN: 3}
    detail = history.run(RUN)
    assert detail is not None
    assert detail.run.refused == {REASON_FOREIGN: 3}


async def test_a_second_message_with_a_stored_number_is_a_conflict(
    broker: InMemoryBroker, history: History, recorder: Recorder
) -> None:
    """The forger claims the engine's source: its 1-3 after the real ones are conflicts (the
    first stay); a byte-identical copy is a duplicate; a second seq 1 (numbering restarted)
    is a conflict too."""
    real = [_event(RUN, n) for n in (1, 2, 3)]
    forged = [_event(RUN, n, state="FAILED", error="Evil: forged") for n in (1, 2, 3)]
    await _publish(broker, recorder, *real, real[1], *forged)
    stats = recorder.stats
    assert (stats.stored, stats.duplicates, stats.refused) == (3, 1, 3)
    [run] = history.runs()
    assert run.tasks == {"COMPLETED": 3}
    assert run.refused == {REASON_CONFLICT: 3}


async def test_numbers_out_of_bounds_are_refused(
    broker: InMemoryBroker, history: History, recorder: Recorder
) -> None:
    """A heartbeat's ``last_seq`` of 2**63 - 1 and a seq a million and one past the last:
    refused, so neither the run's missing events nor the recorder's gaps take them."""
    await _publish(
        broker,
        recorder,
        _event(RUN, 1),
        _event(RUN, 2),
        _beat(RUN, _INT64),
        _event(RUN, 3 + MAX_SEQ_JUMP),
    )
    assert (recorder.stats.refused, recorder.stats.gaps) == (2, 0)
    [run] = history.runs()
    assert run.missing_events == 0
    assert run.refused == {REASON_BEYOND: 2}


async def test_runs_dated_in_the_future_are_refused(
    broker: InMemoryBroker, history: History, recorder: Recorder
) -> None:
    """120 Failed runs dated 9999-12-31 (and a status from then): none stored, each counted
    ``timestamp ahead``; a real run is listed alone, ``--since 1h`` included."""
    fake = "9999-12-31T23:59:59+00:00"
    forged = [
        {**_event(f"fake-{n}", 1, state="FAILED", ts=fake), "source": f"evil-{n}"}
        for n in range(120)
    ]
    await _publish(broker, recorder, *forged, _event(RUN, 1))
    async with InMemoryConnector(broker, presence=False) as publisher:
        status = {"status": "online", "source": "evil", "session": 1, "ts": fake}
        await publisher.publish(status_topic("evil"), status, qos=1)
    await broker.idle()
    await recorder.flush(timeout=5)
    assert recorder.stats.refused == 121
    assert [run.run_id for run in history.runs()] == [RUN]
    assert [run.run_id for run in history.runs(since=timedelta(hours=1))] == [RUN]


async def test_an_answer_to_a_cancel_counts_only_from_the_runs_engine(
    broker: InMemoryBroker, history: History, recorder: Recorder
) -> None:
    """Answers for a run of ``engine-1``: from ``mallory`` (on its own topic) rejected; for a
    run the history does not know, rejected; from ``engine-1``, stored."""
    await _publish(broker, recorder, _event(RUN, 1))
    answer = {"id": "r1", "run_id": RUN, "source": "mallory"}
    async with InMemoryConnector(broker, presence=False) as publisher:
        await publisher.publish("cascade/reply/local/r1/mallory", answer, qos=1)
        unknown = {"id": "r2", "run_id": "nobody-knows", "source": "engine-1"}
        await publisher.publish("cascade/reply/local/r2/engine-1", unknown, qos=1)
        await publisher.publish("cascade/reply/local/r1/engine-1", {**answer, "source": "engine-1"})
    await broker.idle()
    await recorder.flush(timeout=5)
    assert [(e.request_id, e.source) for e in history.audit()] == [("r1", "engine-1")]
    assert recorder.stats.rejected == 2


def test_a_restarted_recorder_keeps_the_runs_source(history: History) -> None:
    """The source stored for a run is its owner for every later write: another's events and
    answers are refused, counted on the run."""
    history.store([lifecycle(RUN, "ENGINE_STARTED", T0, seq=1, source="engine-1")])
    later = history.store(
        [
            task(RUN, "a-1", "FAILED", T0 + 1, seq=2, source="attacker"),
            task(RUN, "a-1", "COMPLETED", T0 + 1, seq=3, source="engine-1"),
        ]
    )
    assert later == Stored(stored=1, refused=1)
    [run] = history.runs()
    assert (run.source, run.tasks, run.refused) == ("engine-1", {"COMPLETED": 1},
                                                    {REASON_FOREIGN: 1})  # fmt: skip


def test_a_batch_keeps_the_first_source_of_a_new_run(history: History) -> None:
    """Two sources in one batch for a run not stored yet: the first owns it."""
    stored = history.store(
        [
            task("r1", "a-1", "RUNNING", T0, seq=1, source="engine-1"),
            task("r1", "a-1", "FAILED", T0, seq=2, source="attacker"),
        ]
    )
    assert stored == Stored(stored=1, refused=1)


def test_gap_sums_are_bounded(history: History) -> None:
    """A count past 64 bits, and sums past them, are kept at the column's bound: the other
    sources' counts of the same writes are kept."""
    history.store([], gaps={"e1": SourceGaps(2**70, T0), "e2": SourceGaps(3, T0)}, recorder="r")
    history.store([], gaps={"e1": SourceGaps(_INT64, T0), "e2": SourceGaps(1, T0)}, recorder="r")
    found = {gap.source: gap.missed for gap in history.gaps()}
    assert found == {"e1": _INT64, "e2": 4}


def _received(run_id: str, ts: float, received_at: float) -> Received:
    envelope = decode_envelope(
        {"ts": iso(ts), "run_id": run_id, "org_id": "local", "project_id": "default",
         "source": "engine-1", "seq": 1,
         "body": {"type": "LifecycleEvent", "event": "ENGINE_STARTED"}}
    )  # fmt: skip
    return Received(events_topic("local", "default", run_id), envelope, received_at)


def test_retention_and_since_go_by_when_runs_were_received(history: History) -> None:
    """A run dated ten days ago but received now is kept by ``--keep 60s`` and listed under
    ``--since 1h``; one dated now but last received two hours ago is neither."""
    now = time.time()
    history.store([_received("old-ts", now - 10 * 86400, now), _received("old", now, now - 7200)])
    assert [run.run_id for run in history.runs(since=timedelta(hours=1))] == ["old-ts"]
    history.prune(now - 60)
    assert [run.run_id for run in history.runs()] == ["old-ts"]


async def test_runs_followed_beyond_the_bound_evict_the_quietest(
    broker: InMemoryBroker, history: History
) -> None:
    """As many never-ending runs as the recorder follows, then a real run missing two events:
    the quietest run is no longer followed (counted), and the real run's gap is."""
    async with InMemoryConnector(broker, presence=False, source_id="rec") as connector:
        recorder = Recorder(connector, history, max_followed=50)
        await recorder.start()
        await _publish(broker, recorder, *(_event(f"idle-{n}", 1) for n in range(50)))
        await _publish(broker, recorder, *(_event("real", n) for n in (1, 2, 5)))
        assert (recorder.stats.gaps, recorder.stats.unfollowed) == (2, 1)
        await recorder.stop()
    assert {gap.source: gap.missed for gap in history.gaps()} == {"engine-1": 2}


async def test_a_forged_number_heard_first_is_set_aside_when_the_engines_come(
    broker: InMemoryBroker, history: History, recorder: Recorder
) -> None:
    """A forger claiming the engine's source sends seq 2**63 - 1 for a live run before the
    recorder hears the engine (which it joined mid-way): stored at first, it is set aside once
    the engine's events (30-50) come, far below it; they are the run's (not 'seq out of
    bounds'), and the run lacks 29 events, not 2**63."""
    await _publish(broker, recorder, _event(RUN, _INT64, state="FAILED", error="Evil: forged"))
    [run] = history.runs()
    assert run.tasks == {"FAILED": 1}
    await _publish(broker, recorder, *(_event(RUN, n) for n in range(30, 51)))
    await _publish(broker, recorder, _event(RUN, _INT64 - 1, state="FAILED"))
    [run] = history.runs()
    assert (run.tasks, run.missing_events) == ({"COMPLETED": 21}, 29)
    assert run.refused == {REASON_BEYOND: 2}
    assert recorder.stats.refused == 2
