"""TelemetrySubscriber: exact docs/protocol.md envelopes on the events topic, and the heartbeat."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import Any

import msgspec
import pytest

from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.interfaces import (
    ConnectorStats,
    Envelope,
    FlushTimeoutError,
    Heartbeat,
    LifecycleEvent,
    Message,
    Payload,
    TaskStateEvent,
    decode_envelope,
    events_topic,
    heartbeat_topic,
    telemetry_filter,
)
from cascade.runtime import (
    Engine,
    Event,
    RunCounters,
    RunStarted,
    TaskBlocked,
    TaskCompleted,
    TaskFailed,
    TaskFailedError,
    TaskRetrying,
    TaskRunning,
    TelemetrySubscriber,
    task,
)

MAX_ERROR_LENGTH = 16 * 1024  # the protocol's bound, as docs/protocol.md states it

ENVELOPE_KEYS = {"v", "ts", "run_id", "org_id", "project_id", "source", "seq", "body"}
TASK_KEYS = {"type", "task_id", "task_name", "state", "duration_ms", "error"}


@task
async def fetch(x: int) -> int:
    return x


@task
def boom(x: int) -> int:
    raise KeyError("missing")


def engine_for(broker: InMemoryBroker, **kwargs: Any) -> tuple[Engine, list[Event]]:
    connector = InMemoryConnector(broker, source_id="host-42", presence=False)
    engine = Engine(connector, org_id="acme", project_id="shop", heartbeat_interval=None, **kwargs)
    events: list[Event] = []
    engine.events.subscribe(events.append)
    return engine, events


def published(broker: InMemoryBroker, topic: str) -> list[tuple[Envelope, dict[str, Any], int]]:
    return [
        (decode_envelope(m.raw), json.loads(m.raw), m.qos)
        for m in broker.history
        if m.topic == topic
    ]


async def test_events_are_published_as_protocol_envelopes() -> None:
    """Every event becomes one envelope with the documented fields, names and QoS."""
    broker = InMemoryBroker()
    engine, events = engine_for(broker)
    leaf = fetch(1)
    await engine.run(fetch(leaf))
    assert isinstance(events[0], RunStarted)
    run_id = events[0].run_id
    messages = published(broker, f"cascade/telemetry/acme/shop/{run_id}/events")
    assert len(messages) == 6
    for envelope, raw, _ in messages:
        assert set(raw) == ENVELOPE_KEYS
        assert (envelope.v, envelope.run_id, envelope.org_id, envelope.project_id) == (
            "1.0",
            run_id,
            "acme",
            "shop",
        )
        assert envelope.source == "host-42"
        assert datetime.fromisoformat(envelope.ts).tzinfo == timezone.utc
    assert [raw["seq"] for _, raw, _ in messages] == [1, 2, 3, 4, 5, 6]  # in emission order
    bodies = [raw["body"] for _, raw, _ in messages]
    assert bodies[0] == {
        "type": "LifecycleEvent",
        "event": "ENGINE_STARTED",
        "tasks": 2,
        "name": "fetch",
        "graph": {
            "nodes": [
                {"id": leaf.task_id, "name": "fetch", "after": []},
                {"id": bodies[3]["task_id"], "name": "fetch", "after": [leaf.task_id]},
            ]
        },
    }
    assert bodies[-1] == {
        "type": "LifecycleEvent",
        "event": "ENGINE_STOPPED",
        "status": "Succeeded",
        "error": "",
    }
    task_bodies = bodies[1:-1]
    assert all(set(b) == TASK_KEYS and b["type"] == "TaskStateEvent" for b in task_bodies)
    assert [(b["task_id"], b["task_name"], b["state"], b["error"]) for b in task_bodies[:2]] == [
        (leaf.task_id, "fetch", "RUNNING", ""),
        (leaf.task_id, "fetch", "COMPLETED", ""),
    ]
    assert all(isinstance(b["duration_ms"], float) for b in task_bodies)
    assert [qos for *_, qos in messages] == [1, 0, 0, 0, 0, 1]
    assert isinstance(messages[1][0].body, TaskStateEvent)
    assert isinstance(messages[0][0].body, LifecycleEvent)


async def test_failed_run_publishes_failed_and_stopped_with_error() -> None:
    """A failing task publishes FAILED with its error and ENGINE_STOPPED Failed with the run's."""
    broker = InMemoryBroker()
    engine, events = engine_for(broker)
    with pytest.raises(TaskFailedError):
        await engine.run(boom(1))
    assert isinstance(events[0], RunStarted)
    bodies = [
        raw["body"]
        for _, raw, _ in published(broker, events_topic("acme", "shop", events[0].run_id))
    ]
    assert [b.get("state", b.get("event")) for b in bodies] == [
        "ENGINE_STARTED",
        "RUNNING",
        "FAILED",
        "ENGINE_STOPPED",
    ]
    assert bodies[2]["error"] == "KeyError: 'missing'"
    assert bodies[3]["status"] == "Failed"
    assert bodies[3]["error"].startswith("TaskFailedError: task 'boom'")


@task
def huge_failure() -> None:
    raise ValueError("x" * (MAX_ERROR_LENGTH * 2))


async def test_a_long_error_is_sent_cut_to_the_bound() -> None:
    """An error longer than MAX_ERROR_LENGTH goes out cut, saying how much was left out, so
    that the event stays far inside the readers' telemetry bound and is not rejected."""
    broker = InMemoryBroker()
    engine, events = engine_for(broker)
    with pytest.raises(TaskFailedError):
        await engine.run(huge_failure())
    topic = events_topic("acme", "shop", events[0].run_id)
    failed = [raw for _, raw, _ in published(broker, topic) if raw["body"].get("state") == "FAILED"]
    error = failed[0]["body"]["error"]
    assert error.startswith("ValueError: xxx")
    assert len(error) < MAX_ERROR_LENGTH + 40
    assert error.endswith(f"… ({len('ValueError: ') + MAX_ERROR_LENGTH} more characters)")


async def test_concurrent_runs_of_one_engine_publish_only_their_own_events() -> None:
    """Two runs at once share the engine's bus; each run's topic carries that run's events only."""
    broker = InMemoryBroker()
    engine, events = engine_for(broker)
    first, second = fetch(1), fetch(2)
    await asyncio.gather(engine.run(first), engine.run(second))
    runs = {e.run_id: e.task_count for e in events if isinstance(e, RunStarted)}
    assert len(runs) == 2
    task_ids = set()
    for run_id in runs:
        bodies = [
            raw["body"] for _, raw, _ in published(broker, events_topic("acme", "shop", run_id))
        ]
        assert [b.get("state", b.get("event")) for b in bodies] == [
            "ENGINE_STARTED",
            "RUNNING",
            "COMPLETED",
            "ENGINE_STOPPED",
        ]
        task_ids.add(bodies[1]["task_id"])
    assert task_ids == {first.task_id, second.task_id}


async def test_topic_prefix_and_ids_are_encoded() -> None:
    """Ids with topic separators or dots cannot add levels; the prefix is configurable."""
    broker = InMemoryBroker()
    connector = InMemoryConnector(broker, presence=False, topic_prefix="acme/cascade")
    engine = Engine(connector, org_id="a/b", project_id="p.+#", heartbeat_interval=None)
    events: list[Event] = []
    engine.events.subscribe(events.append)
    await engine.run(fetch(1))
    assert isinstance(events[0], RunStarted)
    topic = f"acme/cascade/telemetry/a%2Fb/p%2E%2B%23/{events[0].run_id}/events"
    assert len(published(broker, topic)) == 4


async def test_heartbeat_counts_running_tasks() -> None:
    """Heartbeats on .../heartbeat carry the run's counters while it runs."""
    broker = InMemoryBroker()
    observer = InMemoryConnector(broker, presence=False)
    await observer.connect()
    seen = asyncio.Event()
    beats: list[Envelope] = []

    def on_heartbeat(message: Message) -> None:
        envelope = decode_envelope(message.raw)
        beats.append(envelope)
        if isinstance(envelope.body, Heartbeat) and envelope.body.running == 1:
            seen.set()

    await observer.subscribe(telemetry_filter(kind="heartbeat"), on_heartbeat)

    @task
    async def hold() -> str:
        await asyncio.wait_for(seen.wait(), 10)
        return "held"

    engine, events = engine_for(broker, max_concurrency=1)
    engine.heartbeat_interval = 0.01
    assert await engine.run([hold(), fetch(1), fetch(2)]) == ["held", 1, 2]
    await observer.disconnect()
    assert isinstance(events[0], RunStarted)
    body = next(b.body for b in beats if isinstance(b.body, Heartbeat) and b.body.running == 1)
    # last_seq: the run's start and hold's RUNNING were emitted before this heartbeat
    assert body == Heartbeat(
        running=1,
        completed=0,
        failed=0,
        skipped=0,
        blocked=0,
        pending=2,
        dropped_telemetry=0,
        last_seq=2,
    )
    raw = next(m.raw for m in broker.history if m.topic.endswith("/heartbeat"))
    assert set(json.loads(raw)["body"]) == {
        "type",
        "running",
        "completed",
        "failed",
        "skipped",
        "blocked",
        "pending",
        "dropped_telemetry",
        "last_seq",
    }
    assert all(m.qos == 0 for m in broker.history if m.topic.endswith("/heartbeat"))
    assert beats[0].run_id == events[0].run_id
    assert heartbeat_topic("acme", "shop", events[0].run_id) in {m.topic for m in broker.history}


async def test_final_heartbeat_has_the_final_counters() -> None:
    """The last heartbeat of a run, sent as it ends, counts every task as finished."""
    broker = InMemoryBroker()
    engine, _ = engine_for(broker)
    engine.heartbeat_interval = 3600
    with pytest.raises(TaskFailedError):
        await engine.run([fetch(1), boom(fetch(2))])
    beats = [decode_envelope(m.raw).body for m in broker.history if m.topic.endswith("/heartbeat")]
    # last_seq 8: the run's start, two states of each of its three tasks, and its end
    assert beats == [
        Heartbeat(running=0, completed=2, failed=1, skipped=0, blocked=0, pending=0, last_seq=8)
    ]


class HangingConnector(InMemoryConnector):
    """Its publish never returns: a broker connection stuck in the worst way."""

    async def publish(
        self, topic: str, payload: Payload, qos: int = 0, retain: bool = False
    ) -> None:
        await asyncio.Event().wait()


class RaisingConnector(InMemoryConnector):
    """Its publish raises: a buggy connector."""

    async def publish(
        self, topic: str, payload: Payload, qos: int = 0, retain: bool = False
    ) -> None:
        raise RuntimeError("connector bug")


async def test_hanging_publish_never_holds_the_run() -> None:
    """A connector whose publish hangs costs the telemetry (counted), never the run."""
    engine = Engine(
        HangingConnector(presence=False), heartbeat_interval=None, shutdown_timeout=0.05
    )
    assert await engine.run([fetch(i) for i in range(10)]) == list(range(10))
    assert engine.stats.telemetry_dropped > 0


async def test_raising_publish_never_breaks_the_run() -> None:
    """A connector whose publish raises is logged; the run succeeds."""
    engine = Engine(RaisingConnector(presence=False), heartbeat_interval=None)
    assert await engine.run(fetch(fetch(3))) == 3
    assert engine.stats.telemetry_dropped == 6


def test_envelope_encoding_round_trips_awkward_ids() -> None:
    """Ids with quotes, percent signs and non-ASCII survive the pre-encoded envelope exactly."""
    connector = InMemoryConnector(source_id='src"%d', presence=False)
    subscriber = TelemetrySubscriber(
        connector, run_id="run%s", org_id='o"rg', project_id="prøject", heartbeat_interval=None
    )
    ts = 1795216272.540744
    raw = subscriber.envelope(TaskStateEvent(task_id="t%", task_name="n", state="RUNNING"), ts)
    envelope = decode_envelope(raw)
    assert (envelope.run_id, envelope.org_id, envelope.project_id, envelope.source) == (
        "run%s",
        'o"rg',
        "prøject",
        'src"%d',
    )
    assert datetime.fromisoformat(envelope.ts) == datetime.fromtimestamp(ts, timezone.utc)
    assert list(json.loads(raw)) == ["v", "ts", "run_id", "org_id", "project_id", "source", "body"]


@pytest.mark.parametrize(
    ("error", "project_id"),
    [("", "p"), ('KeyError: "k" \u2013 ünïcode\n%s', "p"), ("", "100%b}"), ("%b}", "%%b}")],
)
def test_fast_task_envelope_equals_schema_encoding(error: str, project_id: str) -> None:
    """The hand-formatted task envelope is byte for byte the TaskStateEvent schema's encoding."""
    subscriber = TelemetrySubscriber(
        InMemoryConnector(presence=False), run_id="r", org_id="o", project_id=project_id
    )
    event = TaskFailed(
        run_id="r", task_id='id"%', task_name="n%s", duration_ms=12.5, error=error, ts=1795216272.5
    )
    body = TaskStateEvent(
        task_id='id"%', task_name="n%s", state="FAILED", duration_ms=12.5, error=error
    )
    fast = subscriber.task_envelope(event, 1)
    assert fast == subscriber.envelope(body, event.ts, 1)
    envelope = Envelope(ts=decode_envelope(fast).ts, run_id="r", org_id="o", project_id=project_id,
                        source=subscriber.connector.source_id, seq=1, body=body)  # fmt: skip
    assert fast == msgspec.json.encode(envelope)


def test_heartbeat_dropped_telemetry_adds_connector_and_queue_drops() -> None:
    """dropped_telemetry is the connector's dropped count plus what the queue dropped."""
    connector = InMemoryConnector(presence=False)
    connector.stats.dropped = 5
    subscriber = TelemetrySubscriber(
        connector, run_id="r", org_id="o", project_id="p", heartbeat_interval=None, max_queue=2
    )
    for index in range(4):
        subscriber.on_event(TaskFailed(run_id="r", task_id=f"t{index}", task_name="t"))
    assert subscriber.dropped == 2
    assert subscriber.heartbeat().dropped_telemetry == 7
    assert subscriber.heartbeat().failed == 4


def test_counters_follow_a_retried_task_through_each_attempt() -> None:
    """Between attempts a task is pending, a held attempt is blocked, each attempt is running."""
    counters = RunCounters()
    counters.update(RunStarted(run_id="r", task_count=1), 1)
    seen: list[tuple[str, int, int, int]] = []
    for event in (
        TaskRunning(run_id="r", task_id="t", task_name="t", attempt=1),
        TaskRetrying(run_id="r", task_id="t", task_name="t", attempt=1),
        TaskBlocked(run_id="r", task_id="t", task_name="t", attempt=2),
        TaskRunning(run_id="r", task_id="t", task_name="t", attempt=2),
        TaskRetrying(run_id="r", task_id="t", task_name="t", attempt=2),
        TaskRunning(run_id="r", task_id="t", task_name="t", attempt=3),
        TaskCompleted(run_id="r", task_id="t", task_name="t", attempt=3),
    ):
        counters.update(event, 1)
        seen.append((event.state, counters.running, counters.blocked, counters.pending))
    assert seen == [
        ("RUNNING", 1, 0, 0),
        ("RETRYING", 0, 0, 1),
        ("BLOCKED", 0, 1, 0),
        ("RUNNING", 1, 0, 0),
        ("RETRYING", 0, 0, 1),
        ("RUNNING", 1, 0, 0),
        ("COMPLETED", 0, 0, 0),
    ]
    assert counters.completed == 1


class SlowBroker(InMemoryConnector):
    """A connected broker that takes what it holds only when flushed: a slower one than the run.

    It holds every message published (``stats.buffered``) until ``flush()``, noting how many
    events it had been handed at each (``flushes``); with ``hung``, a flush never succeeds
    and nothing is ever taken.
    """

    def __init__(self, *, hung: bool = False) -> None:
        super().__init__(presence=False)
        self.hung = hung
        self.held = 0
        self.most_held = 0
        self.taken: list[bytes] = []
        self.flushes: list[int] = []  # how many events it had been handed at each flush

    @property
    def stats(self) -> ConnectorStats:
        stats = super().stats
        stats.buffered = self.held
        return stats

    async def publish(
        self, topic: str, payload: Payload, qos: int = 0, retain: bool = False
    ) -> None:
        self.held += 1
        self.most_held = max(self.most_held, self.held)
        if "/events" in topic:
            self.taken.append(payload if isinstance(payload, bytes) else b"")

    async def flush(self, timeout: float | None = None) -> None:
        if self.hung:
            await asyncio.sleep(timeout or 0)
            raise FlushTimeoutError("the broker takes nothing")
        self.flushes.append(len(self.taken))
        super().stats.published += self.held
        self.held = 0


async def test_a_burst_waits_for_a_slower_broker_and_loses_nothing() -> None:
    """The connector is never handed much more than it can confirm; every event goes, in order."""
    broker = SlowBroker()
    engine = Engine(broker, heartbeat_interval=None)
    assert len(await engine.run([fetch(i) for i in range(5_000)])) == 5_000
    assert engine.stats.telemetry_dropped == 0
    seqs = [json.loads(raw)["seq"] for raw in broker.taken]
    assert seqs == list(range(1, 10_003))
    assert broker.most_held < 2_048 + 2 * 128  # the sender waited for it, a batch at a time


async def test_a_hung_broker_costs_the_run_nothing_and_every_event_is_counted() -> None:
    """A broker that takes nothing is waited for at most a second, by the sender only: the run
    ends in time, and each event was handed to the connector or counted as dropped."""
    broker = SlowBroker(hung=True)
    engine = Engine(broker, heartbeat_interval=None, shutdown_timeout=0.5)
    started = time.monotonic()
    assert len(await engine.run([fetch(i) for i in range(5_000)])) == 5_000
    assert time.monotonic() - started < 5
    assert len(broker.taken) + engine.stats.telemetry_dropped == 10_002


async def test_a_sourced_connector_puts_the_engine_in_its_topics_last_level() -> None:
    """On a connector that says ``sourced_topics``: events and heartbeats go to
    ``.../{kind}/{source}``, the layout a broker ACL binds to a login; nothing goes to the
    unsourced topics. The engine has no say in it."""
    broker = InMemoryBroker()
    connector = InMemoryConnector(broker, source_id="host-42", presence=False, sourced_topics=True)
    engine = Engine(connector, org_id="acme", project_id="shop", heartbeat_interval=0.01)
    events: list[Event] = []
    engine.events.subscribe(events.append)
    await engine.run(fetch(1))
    run_id = events[0].run_id
    topics = {m.topic for m in broker.history if "/telemetry/" in m.topic}
    assert topics == {
        events_topic("acme", "shop", run_id, source="host-42"),
        heartbeat_topic("acme", "shop", run_id, source="host-42"),
    }
    assert len(published(broker, f"cascade/telemetry/acme/shop/{run_id}/events/host-42")) == 4


async def test_the_in_memory_connector_is_on_the_plain_layout_whatever_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``CASCADE_SOURCED_TOPICS`` is the MQTT connector's to read: an in-memory connector
    keeps the plain layout unless told (``sourced_topics=True``), even a bad value unread."""
    monkeypatch.setenv("CASCADE_SOURCED_TOPICS", "1")
    broker = InMemoryBroker()
    engine, events = engine_for(broker)
    await engine.run(fetch(1))
    run_id = events[0].run_id
    topics = {m.topic for m in broker.history if "/telemetry/" in m.topic}
    assert topics == {events_topic("acme", "shop", run_id)}
    monkeypatch.setenv("CASCADE_SOURCED_TOPICS", "maybe")
    assert not InMemoryConnector(InMemoryBroker()).sourced_topics


class BatchingConnector(InMemoryConnector):
    """Takes task events in batches (``batch_publisher``), as MqttConnector does; keeps what
    reaches the events topic, batched or published, in order."""

    def __init__(self, *, raising: bool = False) -> None:
        super().__init__(presence=False)
        self.raising = raising
        self.batches: list[int] = []
        self.events: list[tuple[dict[str, Any], int]] = []

    def batch_publisher(
        self, topic: str, qos: int = 0, retain: bool = False
    ) -> Callable[[Sequence[bytes]], None]:
        def send_many(raws: Sequence[bytes]) -> None:
            if self.raising:
                raise RuntimeError("connector bug")
            self.batches.append(len(raws))
            self.events += [(json.loads(raw), qos) for raw in raws]

        return send_many

    async def publish(
        self, topic: str, payload: Payload, qos: int = 0, retain: bool = False
    ) -> None:
        if "/events" in topic and isinstance(payload, bytes):
            self.events.append((json.loads(payload), qos))


async def test_task_events_go_in_batches_numbered_in_order_between_the_lifecycle() -> None:
    """A connector that takes batches gets the task events a loop turn at a time, each
    numbered in order, the run's start first and its end last, both at QoS 1."""
    connector = BatchingConnector()
    engine = Engine(connector, heartbeat_interval=None)
    assert await engine.run([fetch(i) for i in range(500)]) == list(range(500))
    seqs = [body["seq"] for body, _ in connector.events]
    assert seqs == list(range(1, 1_003))
    first, last = connector.events[0], connector.events[-1]
    assert (first[0]["body"]["event"], first[1]) == ("ENGINE_STARTED", 1)
    assert (last[0]["body"]["event"], last[1]) == ("ENGINE_STOPPED", 1)
    assert all(qos == 0 for _, qos in connector.events[1:-1])
    assert max(connector.batches) > 1
    assert sum(connector.batches) == 1_000
    assert engine.stats.telemetry_dropped == 0


async def test_a_raising_batch_publisher_costs_its_batch_never_the_run() -> None:
    """Each batch a connector refuses is counted, event by event; the run succeeds."""
    connector = BatchingConnector(raising=True)
    engine = Engine(connector, heartbeat_interval=None)
    assert await engine.run([fetch(i) for i in range(50)]) == list(range(50))
    assert engine.stats.telemetry_dropped == 100
    assert [body["body"]["event"] for body, _ in connector.events] == [
        "ENGINE_STARTED",
        "ENGINE_STOPPED",
    ]
    assert connector.events[-1][0]["seq"] == 102


@pytest.mark.parametrize(("linger", "batches"), [(0.0, [1] * 11), (3600.0, [1, 10])])
async def test_events_of_several_loop_turns_gather_for_the_linger_and_the_end_waits_for_none(
    linger: float, batches: list[int]
) -> None:
    """What the run hands over before the sender starts goes at once; the events handed over
    a loop turn apart after it go in one batch while the sender lingers (in one per turn
    without a linger); closing sends them at once, whatever is left of the linger."""
    connector = BatchingConnector()
    subscriber = TelemetrySubscriber(
        connector, run_id="r", org_id="o", project_id="p", heartbeat_interval=None, linger=linger
    )
    subscriber.start()
    for index in range(11):
        subscriber.on_event(TaskRunning(run_id="r", task_id=f"t{index}", task_name="t"))
        for _ in range(3):  # the sender's turns: woken, taking the batch, handing it over
            await asyncio.sleep(0)
    await asyncio.wait_for(subscriber.aclose(), 10)
    assert connector.batches == batches
    assert [body["seq"] for body, _ in connector.events] == list(range(1, 12))


async def test_the_run_ends_once_its_states_are_confirmed() -> None:
    """The run's end is handed over after the connector confirmed the task states before it
    (brokers that keep a publisher's order only within a QoS level deliver it after them)."""
    broker = SlowBroker()
    engine = Engine(broker, heartbeat_interval=None)
    assert await engine.run([fetch(i) for i in range(3)]) == [0, 1, 2]
    bodies = [json.loads(raw)["body"] for raw in broker.taken]
    kinds = [body.get("event") or body["state"] for body in bodies]
    assert (kinds[0], kinds[-1]) == ("ENGINE_STARTED", "ENGINE_STOPPED")
    assert sorted(kinds[1:-1]) == ["COMPLETED"] * 3 + ["RUNNING"] * 3
    assert len(broker.taken) - 1 in broker.flushes  # every state, then the end
