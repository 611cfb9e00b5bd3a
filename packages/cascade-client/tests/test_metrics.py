"""CascadeMetrics: counters fed as messages arrive, gauges read from the state, bounded labels."""

from __future__ import annotations

import json
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from cascade.interfaces import (
    Constraint,
    Envelope,
    Heartbeat,
    Hold,
    LifecycleEvent,
    Message,
    Payload,
    RunSnapshot,
    StatusMessage,
    TaskStateEvent,
    constraint_topic,
    encode_payload,
    events_topic,
    heartbeat_topic,
    status_topic,
)
from cascade.interfaces.logs import DroppedLines, LogBatch, LogLine, logs_topic
from cascade.interfaces.serving import RunOrigin
from cascade.metrics import MAX_LABEL_LENGTH, OTHER, CascadeMetrics, LabelCap
from cascade.reader import ReaderModel

Body = LifecycleEvent | TaskStateEvent | Heartbeat | RunSnapshot  # an envelope's body

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]
_ts = iter(range(10**6))


def _msg(topic: str, payload: Payload | None) -> Message:
    raw = encode_payload(payload) if payload is not None else b""
    return Message(topic=topic, payload=json.loads(raw) if raw else {}, raw=raw)


def _stamp() -> str:
    """A new timestamp per message, so that each event is newer than the one before."""
    return f"2026-01-01T00:{next(_ts) // 60 % 60:02d}:{next(_ts) % 60:02d}.{next(_ts):06d}+00:00"


def _event(body: Body, run_id: str = "run-1", source: str = "host-1", **extra: Any) -> Message:
    envelope = Envelope(
        run_id=run_id, org_id="local", project_id="shop", source=source, body=body,
        ts=_stamp(), **extra,
    )  # fmt: skip
    if isinstance(body, Heartbeat):
        return _msg(heartbeat_topic("local", "shop", run_id), envelope)
    return _msg(events_topic("local", "shop", run_id), envelope)


def _task(task_id: str, state: str, name: str = "", **extra: Any) -> Message:
    body = TaskStateEvent(task_id=task_id, task_name=name or f"fn_{task_id}", state=state, **extra)  # type: ignore[arg-type]
    return _event(body)


def _samples(metrics: CascadeMetrics) -> Samples:
    """Every sample of a scrape, by name and labels."""
    found: Samples = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def _one(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


@pytest.fixture
def metrics() -> CascadeMetrics:
    return CascadeMetrics(ReaderModel(clock=lambda: 1_767_229_200.0))  # after every _stamp()


def test_runs_and_tasks_counted_by_final_state(metrics: CascadeMetrics) -> None:
    """Each task's final state counts once by name; the run's end counts by project and state;
    completed and failed tasks' durations land in the histogram, in seconds."""
    for message in [
        _event(LifecycleEvent(event="ENGINE_STARTED", tasks=3)),
        _task("a", "RUNNING"),
        _task("a", "COMPLETED", duration_ms=1500.0),
        _task("b", "RUNNING"),
        _task("b", "RETRYING", error="E: once"),
        _task("b", "RUNNING"),
        _task("b", "FAILED", error="E: twice", duration_ms=20.0),
        _task("c", "SKIPPED"),
        _event(LifecycleEvent(event="ENGINE_STOPPED", status="Failed", error="E: twice")),
    ]:
        metrics.apply(message)
    got = _samples(metrics)
    assert _one(got, "cascade_tasks_total", task="fn_a", state="COMPLETED") == 1
    assert _one(got, "cascade_tasks_total", task="fn_b", state="FAILED") == 1
    assert _one(got, "cascade_tasks_total", task="fn_c", state="SKIPPED") == 1
    assert _one(got, "cascade_task_retries_total", task="fn_b") == 1
    assert _one(got, "cascade_runs_total", project="shop", state="Failed") == 1
    assert _one(got, "cascade_task_duration_seconds_count", task="fn_a") == 1
    assert _one(got, "cascade_task_duration_seconds_sum", task="fn_a") == 1.5
    assert _one(got, "cascade_task_duration_seconds_bucket", task="fn_b", le="0.05") == 1
    assert ("cascade_task_duration_seconds_count", (("task", "fn_c"),)) not in got
    assert _one(got, "cascade_runs_running") == 0


def test_copies_and_stragglers_are_not_counted_again(metrics: CascadeMetrics) -> None:
    """A copy resent after a lost connection, and an event after the run's end, count nothing."""
    done = _task("a", "COMPLETED")
    stopped = _event(LifecycleEvent(event="ENGINE_STOPPED", status="Succeeded"))
    for message in [done, done, stopped, stopped, _task("z", "COMPLETED")]:
        metrics.apply(message)
    got = _samples(metrics)
    assert _one(got, "cascade_tasks_total", task="fn_a", state="COMPLETED") == 1
    assert _one(got, "cascade_runs_total", project="shop", state="Succeeded") == 1
    assert ("cascade_tasks_total", (("state", "COMPLETED"), ("task", "fn_z"))) not in got


def test_task_states_after_the_end_are_counted_once(metrics: CascadeMetrics) -> None:
    """The run's end overtook its last task states (RabbitMQ keeps QoS 0 and QoS 1 apart): each
    numbered state not seen yet counts, once; a copy of it counts nothing."""
    started = _event(LifecycleEvent(event="ENGINE_STARTED", tasks=2), seq=1)

    def task(task_id: str, state: str, seq: int) -> Message:
        body = TaskStateEvent(task_id=task_id, task_name=f"fn_{task_id}", state=state)  # type: ignore[arg-type]
        return _event(body, seq=seq)

    running = task("a", "RUNNING", 2)
    stopped = _event(LifecycleEvent(event="ENGINE_STOPPED", status="Succeeded"), seq=5)
    late = [task("a", "COMPLETED", 3), task("b", "SKIPPED", 4)]
    for message in [started, running, stopped, *late, *late]:
        metrics.apply(message)
    got = _samples(metrics)
    assert _one(got, "cascade_tasks_total", task="fn_a", state="COMPLETED") == 1
    assert _one(got, "cascade_tasks_total", task="fn_b", state="SKIPPED") == 1
    assert _one(got, "cascade_task_duration_seconds_count", task="fn_a") == 1
    assert _one(got, "cascade_runs_total", project="shop", state="Succeeded") == 1
    assert _one(got, "cascade_tasks_running") == 0


def test_what_is_going_on_now(metrics: CascadeMetrics) -> None:
    """Runs and tasks running and blocked now, engines online, constraints in force by type,
    the oldest pause's age: read from the state at each scrape."""
    now = metrics.state.clock()
    for message in [
        _msg(status_topic("host-1"), StatusMessage(status="online", source="host-1", session=1)),
        _msg(status_topic("host-2"), StatusMessage(status="offline", source="host-2", session=1)),
        _event(LifecycleEvent(event="ENGINE_STARTED")),
        _task("a", "RUNNING"),
        _task("b", "RETRYING"),
        _task("c", "BLOCKED"),
        _msg(constraint_topic("global", "pause"),
             Constraint.pause("global", issued_at=now - 90.0)),
        _msg(constraint_topic("task:api_*", "rate_limit"),
             Constraint.rate_limit("task:api_*", "5/s")),
    ]:  # fmt: skip
        metrics.apply(message)
    got = _samples(metrics)
    assert _one(got, "cascade_runs_running") == 1
    assert _one(got, "cascade_tasks_running") == 2
    assert _one(got, "cascade_tasks_blocked") == 1
    assert _one(got, "cascade_engines_online") == 1
    assert _one(got, "cascade_engine_online", source="host-1") == 1
    assert _one(got, "cascade_engine_online", source="host-2") == 0
    assert _one(got, "cascade_constraints", type="pause") == 1
    assert _one(got, "cascade_constraints", type="rate_limit") == 1
    assert _one(got, "cascade_constraints", type="concurrency") == 0
    assert _one(got, "cascade_pause_age_seconds") == 90.0


def test_a_run_lost_with_its_engine_leaves_the_gauges_and_ends_lost_once(
    metrics: CascadeMetrics,
) -> None:
    """Its engine's will (the broker's word) with the run not ended: the run and its tasks
    (running, blocked, held) leave the gauges at once, and the run counts once as ended
    ``Lost``: not again when a carry-on says where it went, nor when a late end comes."""
    online = StatusMessage(status="online", source="host-1", session=1)
    gate = Hold(type="decision", kind="approval", attempt=1, deadline=2e9, default="fail")
    for message in [
        _msg(status_topic("host-1"), online),
        _event(LifecycleEvent(event="ENGINE_STARTED", tasks=3)),
        _task("a", "RUNNING"),
        _task("b", "BLOCKED"),
        _task("c", "BLOCKED", held_by=[gate]),
    ]:
        metrics.apply(message)
    got = _samples(metrics)
    assert (_one(got, "cascade_runs_running"), _one(got, "cascade_tasks_running")) == (1, 1)
    assert _one(got, "cascade_tasks_held", org="local", project="shop") == 1
    will = StatusMessage(status="offline", source="host-1", session=1)
    carry_on = RunOrigin(workflow="etl", carried_on_from="run-1", lost_engine="host-1")
    for message in [
        _msg(status_topic("host-1"), will),
        _event(LifecycleEvent(event="ENGINE_STARTED", origin=carry_on), "run-2", "host-2"),
        _event(LifecycleEvent(event="ENGINE_STOPPED", status="Succeeded")),  # sent before
    ]:
        metrics.apply(message)
    got = _samples(metrics)
    assert _one(got, "cascade_runs_running") == 1  # the carry-on
    assert _one(got, "cascade_tasks_running") == 0
    assert _one(got, "cascade_tasks_blocked") == 0
    assert _one(got, "cascade_tasks_held", org="local", project="shop") == 0
    assert _one(got, "cascade_runs_total", project="shop", state="Lost") == 1
    assert ("cascade_runs_total", (("project", "shop"), ("state", "Succeeded"))) not in got


def test_a_run_known_only_from_its_carry_on_is_not_counted_lost(
    metrics: CascadeMetrics,
) -> None:
    """A reader that joined after the death knows the lost run from its carry-on: it ended
    before this reader counted anything."""
    will = StatusMessage(status="offline", source="host-1", session=1)
    carry_on = RunOrigin(workflow="etl", carried_on_from="run-1", lost_engine="host-1")
    retained = Message(
        topic=status_topic("host-1"), payload={}, raw=encode_payload(will), retain=True
    )
    metrics.apply(Message(topic=retained.topic, payload=json.loads(retained.raw),
                          raw=retained.raw, retain=True))  # fmt: skip
    metrics.apply(_event(LifecycleEvent(event="ENGINE_STARTED", origin=carry_on), "run-2"))
    assert metrics.state.runs["run-1"].status == "Lost"
    got = _samples(metrics)
    assert ("cascade_runs_total", (("project", "shop"), ("state", "Lost"))) not in got


def test_dropped_telemetry_is_the_engines_own_count(metrics: CascadeMetrics) -> None:
    """The largest ``dropped_telemetry`` an engine's heartbeats reported in its session; a
    new session (a restarted engine) starts again, which Prometheus reads as a reset."""
    status = status_topic("host-1")
    metrics.apply(_msg(status, StatusMessage(status="online", source="host-1", session=1)))
    for dropped in (2, 5, 3):  # 3: another run's heartbeat on the same connector, older
        metrics.apply(_event(Heartbeat(dropped_telemetry=dropped)))
    assert _one(_samples(metrics), "cascade_telemetry_dropped_total", source="host-1") == 5
    metrics.apply(_msg(status, StatusMessage(status="online", source="host-1", session=2)))
    metrics.apply(_event(Heartbeat(dropped_telemetry=1), run_id="run-2"))
    assert _one(_samples(metrics), "cascade_telemetry_dropped_total", source="host-1") == 1


def test_missed_events_per_source(metrics: CascadeMetrics) -> None:
    """The holes in a run's numbers are the reader's missed events, by source; a late copy
    fills its hole; a sharing recorder leaves the metric out."""
    started = LifecycleEvent(event="ENGINE_STARTED")
    for seq in (1, 2, 5):
        metrics.apply(_event(started, seq=seq))
    assert _one(_samples(metrics), "cascade_missed_events", source="host-1") == 2
    metrics.apply(_event(started, seq=3))
    assert _one(_samples(metrics), "cascade_missed_events", source="host-1") == 1
    metrics.count_gaps = False
    assert not any(name == "cascade_missed_events" for name, _ in _samples(metrics))


def test_rejected_messages_are_counted(metrics: CascadeMetrics) -> None:
    """What is not the protocol changes nothing but ``cascade_messages_rejected_total``."""
    metrics.apply(Message(topic=events_topic("l", "p", "r"), payload={"run_id": "r"}, raw=b"{}"))
    metrics.apply(Message(topic=status_topic("x"), payload={"status": 3}, raw=b"{}"))
    got = _samples(metrics)
    assert _one(got, "cascade_messages_rejected_total", reason="invalid") == 2
    assert not metrics.state.runs


def test_a_flood_of_task_names_stays_bounded() -> None:
    """A hostile engine sending 20,000 distinct task names (and sources) grows neither the
    series nor the caps: beyond the first 50 every name is folded into ``_other``, counted."""
    metrics = CascadeMetrics(ReaderModel(), max_label_values=50)
    sizes = []
    for batch in range(4):
        for n in range(5_000):
            name = f"evil_{batch}_{n}_" + "x" * 300
            metrics.apply(_task(f"t{batch}-{n}", "COMPLETED", name=name))
        for n in range(100):
            beat = Heartbeat(dropped_telemetry=1)
            metrics.apply(_event(beat, run_id=f"r{batch}-{n}", source=f"src-{batch}-{n}"))
        sizes.append(len(_samples(metrics)))
    got = _samples(metrics)
    assert sizes[0] == sizes[1] == sizes[2] == sizes[3]  # no new series beyond the caps
    assert len(metrics.sources) == 50
    assert len(metrics.tasks) == 50
    tasks = {labels for name, labels in got if name == "cascade_tasks_total"}
    assert len(tasks) == 51  # 50 names and _other
    assert _one(got, "cascade_tasks_total", task=OTHER, state="COMPLETED") == 20_000 - 50
    assert _one(got, "cascade_label_values_folded_total", label="task") == 20_000 - 50
    assert all(len(dict(labels).get("task", "")) <= MAX_LABEL_LENGTH for _, labels in got)


def test_the_cap_keeps_the_first_values() -> None:
    """A cap admits values as they come until full, cuts long ones, and never admits
    ``_other`` as a value of its own."""
    cap = LabelCap("task", 2)
    assert [cap(v) for v in ("a", OTHER, "b", "c", "a", "y" * 500)] == ["a", OTHER, "b", OTHER,
                                                                      "a", OTHER]  # fmt: skip
    assert cap.folded == 3
    assert LabelCap("task", 1)("z" * 500) == "z" * MAX_LABEL_LENGTH
    with pytest.raises(ValueError, match="at least 0"):
        LabelCap("task", -1)


def test_registries_are_private() -> None:
    """Two exporters never share a series (nor touch prometheus_client's global registry)."""
    from prometheus_client import REGISTRY

    one, two = CascadeMetrics(ReaderModel()), CascadeMetrics(ReaderModel())
    one.apply(_task("a", "COMPLETED"))
    assert _one(_samples(one), "cascade_tasks_total", task="fn_a", state="COMPLETED") == 1
    assert ("cascade_tasks_total", (("state", "COMPLETED"), ("task", "fn_a"))) not in _samples(two)
    assert REGISTRY.get_sample_value("cascade_runs_running") is None


def test_label_values_are_inert(metrics: CascadeMetrics) -> None:
    """A source, task or project name with ESC, BEL or other controls reaches the scrape as
    the terminal shows it (``\\x1b``): no control character in the exporter's output."""
    evil = "host\x1b]0;owned\x07\x1b[2J\u202e"
    started = LifecycleEvent(event="ENGINE_STARTED")
    metrics.apply(_event(started, run_id="evil", source=evil, seq=1))
    metrics.apply(_event(started, run_id="evil", source=evil, seq=3))
    metrics.apply(_event(Heartbeat(dropped_telemetry=2), run_id="evil", source=evil))
    metrics.apply(_task("t1", "COMPLETED", name="fn\x1b[31m\x07"))
    metrics.apply(_msg(status_topic(evil), StatusMessage(status="online", source=evil, session=1)))
    scrape = metrics.render().decode()
    assert not any(c in scrape for c in "\x1b\x07\u202e")
    shown = "host\\x1b]0;owned\\x07\\x1b[2J\\u202e"
    got = _samples(metrics)
    assert _one(got, "cascade_missed_events", source=shown) == 1
    assert _one(got, "cascade_telemetry_dropped_total", source=shown) == 2
    assert _one(got, "cascade_tasks_total", task="fn\\x1b[31m\\x07", state="COMPLETED") == 1
    assert LabelCap("task", 1)("\x1b" * 200) == "\\x1b" * (MAX_LABEL_LENGTH // 4)


def test_log_lines_received_and_dropped_per_source(metrics: CascadeMetrics) -> None:
    """Each batch's lines and the lines its engine said it dropped, once per batch (a copy
    counts nothing), by source."""
    line = LogLine(ts=_stamp(), task_id="t-1", task_name="t", message="hello")
    dropped = DroppedLines(task_id="t-1", task_name="t", lines=312, reason="budget")
    batch = LogBatch(run_id="run-1", org_id="local", project_id="shop", source="host-1", seq=1,
                     ts=line.ts, lines=[line, line], dropped=[dropped])  # fmt: skip
    message = _msg(logs_topic("local", "shop", "run-1"), batch)
    metrics.apply(message)
    metrics.apply(message)
    got = _samples(metrics)
    assert _one(got, "cascade_log_lines_total", source="host-1") == 2
    assert _one(got, "cascade_log_lines_dropped_total", source="host-1", reason="budget") == 312
