"""ReaderModel folds telemetry, presence and constraints."""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone

from cascade.connector_kit.testing import received, telemetry
from cascade.interfaces import (
    Constraint,
    Envelope,
    Heartbeat,
    LifecycleEvent,
    Message,
    RunSnapshot,
    SnapshotTask,
    StatusMessage,
    TaskStateEvent,
    constraint_topic,
    encode_payload,
    events_topic,
    status_topic,
)
from cascade.reader import ReaderModel

Body = LifecycleEvent | TaskStateEvent | Heartbeat | RunSnapshot  # an envelope's body

T0 = time.time()  # the fake clocks run from now: messages are stamped with the real time


def _event(body: Body, run_id: str = "run-1") -> Message:
    return telemetry(body, run_id=run_id)


def _task(task_id: str, state: str, error: str = "") -> Message:
    return _event(
        TaskStateEvent(
            task_id=task_id,
            task_name=f"fn_{task_id}",
            state=state,  # type: ignore[arg-type]
            error=error,
        )
    )


def test_tasks_and_lifecycle() -> None:
    """Task states are counted per run, and the run's end carries status and error."""
    state = ReaderModel(clock=lambda: T0 + 100.0)
    for message in [
        _event(LifecycleEvent(event="ENGINE_STARTED")),
        _task("a", "RUNNING"),
        _task("b", "RUNNING"),
        _task("a", "COMPLETED"),
        _task("b", "FAILED", "E: x"),
        _task("c", "SKIPPED"),
    ]:
        state.apply(message)
    run = state.runs["run-1"]
    assert run.counts() == {"COMPLETED": 1, "FAILED": 1, "SKIPPED": 1}
    assert run.finished_tasks == 3
    assert run.status == "Running"
    state.apply(_event(LifecycleEvent(event="ENGINE_STOPPED", status="Failed", error="E: x")))
    assert (run.status, run.error) == ("Failed", "E: x")


def test_heartbeat_kept_per_run() -> None:
    """The latest heartbeat is kept on its run."""
    state = ReaderModel()
    heartbeat = Heartbeat(running=3, dropped_telemetry=2)
    state.apply(
        received(
            "cascade/telemetry/local/default/run-1/heartbeat",
            Envelope(
                run_id="run-1", org_id="local", project_id="default", source="h", body=heartbeat
            ),
        )
    )
    assert state.runs["run-1"].heartbeat == heartbeat


def test_total_tasks_from_heartbeat() -> None:
    """An older engine's run has no known total until a heartbeat says how many are pending."""
    state = ReaderModel()
    state.apply(_task("a", "RUNNING"))
    assert state.runs["run-1"].total_tasks is None
    assert state.runs["run-1"].progress is None
    beat = Envelope(run_id="run-1", org_id="local", project_id="default", source="host-1",
                    body=Heartbeat(running=1, pending=9))  # fmt: skip
    state.apply(received("cascade/telemetry/local/default/run-1/heartbeat", beat))
    assert state.runs["run-1"].total_tasks == 10


def test_stale_will_does_not_mark_engine_offline() -> None:
    """An offline from an older session than the current online is ignored."""
    state = ReaderModel()
    topic = status_topic("engine-1")
    state.apply(received(topic, StatusMessage(status="online", source="engine-1", session=2)))
    state.apply(received(topic, StatusMessage(status="offline", source="engine-1", session=1)))
    assert state.engines["engine-1"].online
    state.apply(
        received(
            topic, StatusMessage(status="offline", source="engine-1", session=2, reason="shutdown")
        )
    )
    assert state.engines["engine-1"].status == StatusMessage(
        status="offline", source="engine-1", session=2, reason="shutdown"
    )


def test_an_encoded_source_level_names_the_source_it_encodes() -> None:
    """``worker1.example.com`` publishes on ``status/worker1%2Eexample%2Ecom``: the reader
    knows it by its id, its telemetry on the sourced layout is its own, a cleared status
    forgets it, and a claim that its level does not encode is refused."""
    state = ReaderModel()
    source = "worker1.example.com"
    topic = status_topic(source)
    assert topic == "cascade/status/worker1%2Eexample%2Ecom"
    state.apply(received(topic, StatusMessage(status="online", source=source, session=1)))
    assert state.engines[source].online
    env = telemetry(LifecycleEvent(event="ENGINE_STARTED"), run_id="team.one-run", seq=1,
                    source=source, project_id="team.one", sourced=True)  # fmt: skip
    assert "/team%2Eone/" in env.topic
    assert env.topic.endswith("/worker1%2Eexample%2Ecom")
    state.apply(env)
    assert state.runs["team.one-run"].source == source
    state.apply(received(topic, StatusMessage(status="online", source="worker1", session=1)))
    assert "worker1" not in state.engines
    state.apply(received(topic, None))
    assert source not in state.engines


def test_constraints_set_cleared_and_expired() -> None:
    """Constraints are keyed by topic, cleared by an empty payload, hidden once expired."""
    state = ReaderModel(clock=lambda: T0 + 1000.0)
    pause = constraint_topic("global", "pause")
    limit = constraint_topic("task:x", "concurrency")
    state.apply(received(pause, Constraint.pause("global")))
    state.apply(received(limit, Constraint.concurrency("task:x", 2, expires_at=999.0)))
    assert [c.type for _, c in state.active_constraints()] == ["pause"]
    state.apply(received(pause, None))
    assert state.active_constraints() == []


def test_malformed_messages_counted_and_ignored() -> None:
    """Messages that break the protocol change nothing and are counted."""
    state = ReaderModel()
    state.apply(Message(topic=events_topic("o", "p", "r"), payload={"body": 1}))
    state.apply(Message(topic=status_topic("s"), payload={"status": "??"}))
    state.apply(Message(topic=constraint_topic("global", "pause"), payload={"type": "pause"}))
    assert state.rejected == 3
    assert not state.runs
    assert not state.engines
    assert not state.constraints


def test_run_id_named_like_a_topic_kind_is_telemetry() -> None:
    """Classification uses the level after the prefix, not any level."""
    state = ReaderModel()
    state.apply(_event(LifecycleEvent(event="ENGINE_STARTED"), run_id="constraints"))
    assert "constraints" in state.runs
    assert not state.constraints


def test_finished_run_keeps_twenty_failures() -> None:
    """A finished run keeps up to 20 of its failed tasks."""
    state = ReaderModel()
    for i in range(30):
        body = TaskStateEvent(task_id=f"t{i}", task_name="n", state="FAILED", error="E: x")
        state.apply(_event(body, run_id="r"))
    state.apply(_event(LifecycleEvent(event="ENGINE_STOPPED", status="Failed"), run_id="r"))
    run = state.runs["r"]
    assert len(run.failed_tasks()) == 20
    assert run.counts()["FAILED"] == 30


def _stamped(body: Body, ts: float, run_id: str = "run-1", source: str = "host-1") -> Message:
    envelope = Envelope(
        ts=datetime.fromtimestamp(ts, timezone.utc).isoformat(),
        run_id=run_id,
        org_id="local",
        project_id="default",
        source=source,
        body=body,
    )
    return received(events_topic("local", "default", run_id), envelope)


def _status(status: str, source: str, ts: float | None, session: int = 1) -> Message:
    stamp = datetime.fromtimestamp(ts, timezone.utc).isoformat() if ts is not None else None
    message = StatusMessage(status=status, source=source, session=session, ts=stamp)  # type: ignore[arg-type]
    return Message(status_topic(source), json.loads(encode_payload(message)), retain=True)


def test_last_seen_is_the_messages_own_time() -> None:
    """An engine that shut down long ago is last seen then, not when its status arrived."""
    state = ReaderModel(clock=lambda: T0 + 10_000.0)
    state.apply(_status("offline", "old", 4_000.0))
    assert state.engines["old"].last_seen == 4_000.0


def test_telemetry_and_heartbeats_refresh_last_seen() -> None:
    """Any message of an engine moves its last seen forward, never back."""
    state = ReaderModel(clock=lambda: T0 + 10_000.0)
    state.apply(_status("online", "host-1", 1_000.0))
    state.apply(_stamped(TaskStateEvent(task_id="a", task_name="a", state="RUNNING"), 9_000.0))
    assert state.engines["host-1"].last_seen == 9_000.0
    beat = _stamped(Heartbeat(running=1), 9_500.0)
    state.apply(Message(beat.topic.replace("/events", "/heartbeat"), beat.payload))
    assert state.engines["host-1"].last_seen == 9_500.0
    state.apply(_stamped(TaskStateEvent(task_id="a", task_name="a", state="COMPLETED"), 9_100.0))
    assert state.engines["host-1"].last_seen == 9_500.0
    assert state.engines["host-1"].status is not None


def test_telemetry_of_an_unannounced_engine_shows_it() -> None:
    """A source heard only through telemetry is an engine of unknown status."""
    state = ReaderModel(clock=lambda: T0 + 10_000.0)
    state.apply(_stamped(LifecycleEvent(event="ENGINE_STARTED"), 9_000.0, source="quiet"))
    assert state.engines["quiet"].status is None
    assert state.engines["quiet"].last_seen == 9_000.0


def test_unstamped_messages() -> None:
    """Without a timestamp, a live message is seen now and a retained one at an unknown time."""
    state = ReaderModel(clock=lambda: 10_000.0)
    state.apply(_status("offline", "retained", None))
    assert state.engines["retained"].last_seen is None
    live = Message(status_topic("live"), {"status": "online"})
    state.apply(live)
    assert state.engines["live"].last_seen == 10_000.0
    state.apply(Message(status_topic("bad"), {"status": "online", "ts": "yesterday"}, retain=True))
    assert state.engines["bad"].last_seen is None


def test_cleared_status_forgets_the_engine() -> None:
    """An empty retained status (``cascade forget``) removes the engine from the view."""
    state = ReaderModel()
    state.apply(_status("offline", "gone", 1.0))
    state.apply(Message(status_topic("gone"), {}, retain=True))
    assert "gone" not in state.engines


def test_planned_total_from_the_start() -> None:
    """The task count announced at the start is the total before any heartbeat."""
    state = ReaderModel()
    state.apply(_event(LifecycleEvent(event="ENGINE_STARTED", tasks=30)))
    state.apply(_task("a", "RUNNING"))
    state.apply(_task("a", "COMPLETED"))
    run = state.runs["run-1"]
    assert (run.finished_tasks, run.total_tasks, run.progress) == (1, 30, 1 / 30)


def test_tasks_beyond_the_planned_total_raise_it() -> None:
    """A map's items are tasks its start did not count: 14 planned, 216 finished reads 216/216
    (the total read first, as a page reads it), never 216/14."""
    state = ReaderModel()
    state.apply(_event(LifecycleEvent(event="ENGINE_STARTED", tasks=14)))
    for i in range(216):
        state.apply(_task(f"item-{i}", "COMPLETED"))
    state.apply(_task("load", "RUNNING"))
    run = state.runs["run-1"]
    total = run.total_tasks
    assert (run.finished_tasks, total, run.progress) == (216, 217, 216 / 217)


def test_progress_never_goes_back() -> None:
    """The seen 28/30 of an older engine, then a heartbeat of 61 tasks: the bar does not go back."""
    state = ReaderModel()
    for i in range(28):
        state.apply(_task(f"t{i}", "COMPLETED"))
    run = state.runs["run-1"]
    assert state.runs["run-1"].progress is None  # unknown total: no bar that could go back
    beat = Envelope(run_id="run-1", org_id="local", project_id="default", source="host-1",
                    body=Heartbeat(completed=40, running=2, pending=19))  # fmt: skip
    state.apply(received("cascade/telemetry/local/default/run-1/heartbeat", beat))
    assert (run.finished_tasks, run.total_tasks) == (40, 61)
    before = run.progress
    assert before == 40 / 61
    late = Envelope(run_id="run-1", org_id="local", project_id="default", source="h",
                    body=Heartbeat(completed=10, pending=5))  # fmt: skip
    state.apply(received("cascade/telemetry/local/default/run-1/heartbeat", late))
    assert run.total_tasks == 61
    assert run.progress == before


def test_finished_run_keeps_counts_and_failures_only() -> None:
    """A finished run drops its tasks but keeps its counts and its failures."""
    state = ReaderModel()
    state.apply(_event(LifecycleEvent(event="ENGINE_STARTED", tasks=3)))
    for message in [_task("a", "COMPLETED"), _task("b", "FAILED", "E: x"), _task("c", "SKIPPED")]:
        state.apply(message)
    state.apply(_event(LifecycleEvent(event="ENGINE_STOPPED", status="Failed", error="E: x")))
    run = state.runs["run-1"]
    assert list(run.tasks) == ["b"]
    assert run.counts() == {"COMPLETED": 1, "FAILED": 1, "SKIPPED": 1}
    assert (run.finished_tasks, run.total_tasks) == (3, 3)
    state.apply(_task("d", "RUNNING"))  # a straggler changes nothing
    assert run.counts() == {"COMPLETED": 1, "FAILED": 1, "SKIPPED": 1}


def _numbered(body: Body, seq: int, ts: str = "2026-11-23T10:00:00+00:00") -> Message:
    envelope = Envelope(run_id="run-1", org_id="local", project_id="default", source="host-1",
                        body=body, seq=seq, ts=ts)  # fmt: skip
    return received(events_topic("local", "default", "run-1"), envelope)


def test_task_states_after_the_end_count_once_by_their_numbers() -> None:
    """The run's end (QoS 1) overtook its last task states (QoS 0), as on RabbitMQ: each state
    numbered and not seen yet still moves the counts; a copy of one does not."""
    state = ReaderModel()

    def at(second: int) -> str:
        return f"2026-01-01T00:00:{second:02d}+00:00"

    def task(task_id: str, task_state: str, seq: int) -> Message:
        body = TaskStateEvent(task_id=task_id, task_name=f"fn_{task_id}", state=task_state)  # type: ignore[arg-type]
        return _numbered(body, seq, at(seq))

    late = [task("a", "COMPLETED", 4), task("b", "RUNNING", 5), task("b", "FAILED", 6)]
    for message in [
        _numbered(LifecycleEvent(event="ENGINE_STARTED", tasks=3), 1, at(1)),
        task("a", "RUNNING", 2),
        task("c", "COMPLETED", 3),
        _numbered(LifecycleEvent(event="ENGINE_STOPPED", status="Failed"), 7, at(7)),
        *late,
        *late,  # copies, resent after a lost connection
    ]:
        state.apply(message)
    run = state.runs["run-1"]
    assert run.status == "Failed"
    assert run.counts() == {"COMPLETED": 2, "FAILED": 1}
    assert (run.finished_tasks, run.total_tasks) == (3, 3)
    assert state.gaps.missed_in("run-1") == 0


def _finished_run(state: ReaderModel, run_id: str) -> None:
    state.apply(_event(LifecycleEvent(event="ENGINE_STARTED", tasks=1), run_id))
    state.apply(_event(LifecycleEvent(event="ENGINE_STOPPED", status="Succeeded"), run_id))


def test_finished_runs_kept_up_to_a_count() -> None:
    """Beyond keep_runs finished runs, the earliest finished go; running ones stay."""
    now = [T0]
    state = ReaderModel(clock=lambda: now[0], keep_runs=2, keep_for=None)
    state.apply(_event(LifecycleEvent(event="ENGINE_STARTED", tasks=1), "running"))
    for i in range(5):
        now[0] += 1
        _finished_run(state, f"r{i}")
    assert list(state.runs) == ["running", "r3", "r4"]
    assert state.forgotten_runs == 3


def test_runs_kept_up_to_an_age() -> None:
    """Finished runs go keep_for after their end, silent running ones keep_for after their last."""
    now = [T0]
    state = ReaderModel(clock=lambda: now[0], keep_runs=None, keep_for=60.0)
    _finished_run(state, "done")
    state.apply(_event(LifecycleEvent(event="ENGINE_STARTED", tasks=9), "silent"))
    now[0] = T0 + 50.0
    state.apply(_event(LifecycleEvent(event="ENGINE_STARTED", tasks=9), "busy"))
    assert state.prune() == 0
    now[0] = T0 + 100.0
    state.apply(_task("x", "RUNNING"))  # run-1: heard now
    assert state.prune() == 2
    assert sorted(state.runs) == ["busy", "run-1"]


def test_connection_state() -> None:
    """The view's broker connection: since when it is in its state, and how often it was lost."""
    state = ReaderModel(clock=lambda: 5.0)
    state.observe_connection(True, now=1.0)
    state.observe_connection(True, now=2.0)
    assert (state.connection.connected, state.connection.since) == (True, 1.0)
    state.observe_connection(False, now=3.0)
    state.observe_connection(False, now=4.0)
    assert (state.connection.connected, state.connection.since) == (False, 3.0)
    state.observe_connection(True)
    assert (state.connection.connected, state.connection.since, state.connection.losses) == (
        True,
        5.0,
        1,
    )


def test_visible_engines_hide_long_offline() -> None:
    """Offline engines last heard more than the age ago (or at no known time) are hidden."""
    state = ReaderModel(clock=lambda: 10_000.0)
    state.apply(_status("offline", "old", 1_000.0))
    state.apply(_status("offline", "recent", 9_990.0))
    state.apply(_status("offline", "unstamped", None))
    state.apply(_status("online", "ancient-but-online", 1.0))
    shown, hidden = state.visible_engines(offline_max_age=3600)
    assert [e.source for e in shown] == ["ancient-but-online", "recent"]
    assert hidden == 2
    shown, hidden = state.visible_engines(None)
    assert (len(shown), hidden) == (4, 0)


def _stamped_at(body: Body, ts: str) -> Message:
    envelope = Envelope(
        ts=ts, run_id="run-1", org_id="local", project_id="default", source="host-1", body=body
    )
    return received(events_topic("local", "default", "run-1"), envelope)


def test_resent_copies_change_nothing() -> None:
    """At least once: a copy resent after newer events neither counts twice nor rewinds."""
    running = TaskStateEvent(task_id="a", task_name="fn_a", state="RUNNING")
    completed = TaskStateEvent(task_id="a", task_name="fn_a", state="COMPLETED")
    started = LifecycleEvent(event="ENGINE_STARTED")
    stopped = LifecycleEvent(event="ENGINE_STOPPED", status="Succeeded")
    beat = Heartbeat(completed=1)
    first = [
        _stamped_at(started, "2026-11-22T10:00:00+00:00"),
        _stamped_at(running, "2026-11-22T10:00:00.100000+00:00"),
        _stamped_at(Heartbeat(running=1), "2026-11-22T10:00:00.500000+00:00"),
        _stamped_at(completed, "2026-11-22T10:00:01.200000+00:00"),
        _stamped_at(beat, "2026-11-22T10:00:01.500000+00:00"),
        _stamped_at(stopped, "2026-11-22T10:00:02+00:00"),
    ]
    once = ReaderModel(clock=lambda: T0 + 100.0)
    for message in first:
        once.apply(message)
    twice = ReaderModel(clock=lambda: T0 + 100.0)
    for message in first + first[:3]:  # the first three resent after the newer ones
        twice.apply(message)
    assert twice.runs["run-1"] == once.runs["run-1"]
    for message in first:  # and the whole run
        twice.apply(message)
    run = twice.runs["run-1"]
    assert run == once.runs["run-1"]
    assert run.counts() == {"COMPLETED": 1}
    assert (run.finished_tasks, run.total_tasks) == (1, 1)
    assert run.status == "Succeeded"
    assert run.heartbeat == beat
    assert twice.rejected == 0


def test_a_retry_is_a_new_event_not_a_copy() -> None:
    """The same state again at another time (a retry's RUNNING) is applied."""
    state = ReaderModel(clock=lambda: T0 + 100.0)
    for state_name, ts in [
        ("RUNNING", "2026-11-22T10:00:00+00:00"),
        ("RETRYING", "2026-11-22T10:00:01+00:00"),
        ("RUNNING", "2026-11-22T10:00:02+00:00"),
    ]:
        body = TaskStateEvent(task_id="a", task_name="fn_a", state=state_name)  # type: ignore[arg-type]
        state.apply(_stamped_at(body, ts))
    assert state.runs["run-1"].tasks["a"].state == "RUNNING"


def test_a_flood_of_sources_and_runs_stays_bounded() -> None:
    """Beyond max_engines sources and max_runs runs, prune() forgets down to 90 %: offline
    engines first, then the least recently heard; the stalest runs; their gap counts with them."""
    now = [T0 + 1000.0]
    state = ReaderModel(clock=lambda: now[0], keep_runs=None, keep_for=None)
    state.max_engines, state.max_runs = 20, 40
    for index in range(30):  # 30 sources, the first 10 of them offline
        status = "offline" if index < 10 else "online"
        state.apply(_status(status, f"src-{index:02d}", ts=1000.0 + index))
    for index in range(50):  # 50 runs of one source, heard one a second
        now[0] = T0 + 2000.0 + index
        state.apply(_event(LifecycleEvent(event="ENGINE_STARTED"), run_id=f"run-{index:02d}"))
    state.prune()
    assert len(state.engines) == 18
    assert state.forgotten_engines == 31 - 18  # the 30, and host-1 of the runs' telemetry
    # the 10 offline first, then the 3 online least recently heard (host-1 was heard last)
    assert sorted(state.engines) == ["host-1", *(f"src-{index}" for index in range(13, 30))]
    assert sorted(state.runs) == [f"run-{index:02d}" for index in range(14, 50)]
    assert state.forgotten_runs == 14


def test_a_fleet_of_ten_thousand_engines_and_its_readers_is_held_whole() -> None:
    """The bound is far above a 10,000-engine fleet (and the sources of its readers): none is
    forgotten, online or not."""
    state = ReaderModel(clock=lambda: T0 + 100.0)
    for index in range(12_000):
        status = "offline" if index % 10 == 0 else "online"
        state.apply(_status(status, f"engine-{index:05d}", ts=1000.0 + index))
    state.prune()
    assert len(state.engines) == 12_000
    assert state.forgotten_engines == 0


def test_task_states_that_come_after_the_run_end_still_count() -> None:
    """On a broker that does not keep QoS 0 and 1 in one order (RabbitMQ), a run's last task
    states can come after its end: they count, the run keeps its tasks until nothing it sent
    is missing, and a copy after that changes nothing."""
    state = ReaderModel()
    state.apply(_numbered(LifecycleEvent(event="ENGINE_STARTED", tasks=2), 1))
    state.apply(_numbered(TaskStateEvent(task_id="a", task_name="a", state="RUNNING"), 2))
    state.apply(_numbered(LifecycleEvent(event="ENGINE_STOPPED", status="Failed"), 5))
    run = state.runs["run-1"]
    stopped = TaskStateEvent(task_id="a", task_name="a", state="FAILED", cancelled=True)
    state.apply(_numbered(stopped, 4))
    never = TaskStateEvent(task_id="b", task_name="b", state="FAILED", cancelled=True)
    state.apply(_numbered(never, 3))
    state.prune()
    assert run.counts() == {"CANCELLED": 2}
    assert run.compacted
    state.apply(_numbered(never, 3))  # a copy
    assert (run.counts(), run.finished_tasks) == ({"CANCELLED": 2}, 2)


def test_runs_of_engines_that_number_nothing_are_not_partial() -> None:
    """An engine before seq (no numbers): its run is never said to be joined late, and never
    asked about; one that numbers, first heard mid-way, is both."""
    asked: list[tuple[str, int]] = []
    state = ReaderModel(ask=lambda run_id, after: asked.append((run_id, after)))
    state.apply(_task("a", "RUNNING"))  # no seq
    assert state.partial(state.runs["run-1"]) is None
    state.apply(
        received(
            events_topic("local", "default", "run-2"),
            Envelope(run_id="run-2", org_id="local", project_id="default", source="host-1",
                     seq=9, body=TaskStateEvent(task_id="b", task_name="b", state="RUNNING")),
        )
    )  # fmt: skip
    assert state.partial(state.runs["run-2"]) == (
        "joined late: 1 of ? tasks known; host-1 unconfirmed as its engine; asking the engine"
    )
    assert asked == [("run-2", 0)]


def test_a_snapshot_from_another_source_is_refused_and_counted() -> None:
    """Only the run's engine answers for it: another source's snapshot changes no task and
    settles no gap, and is counted rejected."""
    state = ReaderModel()
    state.apply(_numbered(LifecycleEvent(event="ENGINE_STARTED", tasks=2), 1))
    state.apply(_numbered(TaskStateEvent(task_id="a", task_name="a", state="RUNNING"), 3))
    forged = RunSnapshot(
        after=0, through=9, last_seq=9,
        tasks=[SnapshotTask(seq=8, ts="2026-11-23T10:00:01+00:00", task_id="a", task_name="a",
                            state="FAILED", error="Evil: forged")],
    )  # fmt: skip
    envelope = Envelope(run_id="run-1", org_id="local", project_id="default",
                        source="attacker", body=forged)  # fmt: skip
    state.apply(received("cascade/telemetry/local/default/run-1/snapshot", envelope))
    run = state.runs["run-1"]
    assert (run.tasks["a"].state, state.gaps.missed_in("run-1")) == ("RUNNING", 1)
    assert (run.refused, state.refusals.describe("attacker")) == (1, "1 foreign source")


def test_a_will_heard_live_is_when_the_engine_was_last_seen() -> None:
    """A will carries the stamp of the connection it was left with (minutes old for an idle
    engine); heard live, it is the broker's word that the engine was there until now."""
    now = T0 + 10_000.0
    state = ReaderModel(clock=lambda: now)
    state.apply(_status("online", "etl-1", 1_000.0))
    will = _status("offline", "etl-1", 1_000.0)
    state.apply(Message(will.topic, will.payload, retain=False))
    engine = state.engines["etl-1"]
    assert not engine.online
    assert engine.last_seen == now


def test_a_retained_will_is_seen_at_its_own_time() -> None:
    """A will found retained says nothing of when the connection was lost."""
    state = ReaderModel(clock=lambda: T0 + 10_000.0)
    state.apply(_status("offline", "etl-1", 1_000.0))
    assert state.engines["etl-1"].last_seen == 1_000.0
