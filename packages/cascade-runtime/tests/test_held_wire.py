"""A held task on the wire: a BLOCKED event every reader knows, counted in heartbeats and
snapshots, and decisions taken over the broker (the run's ``.../decide`` command)."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

import msgspec

from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.interfaces import (
    Constraint,
    Envelope,
    Heartbeat,
    Message,
    RunSnapshot,
    TaskStateEvent,
    constraint_topic,
    decode_envelope,
    telemetry_filter,
)
from cascade.interfaces.commands import (
    DecisionRequest,
    SnapshotRequest,
    decide_topic,
    decode_decision_reply,
    reply_topic,
    snapshot_request_topic,
)
from cascade.interfaces.summaries import EngineSummary, decode_summary, summary_filter
from cascade.runtime import Engine, RunStarted, TaskBlocked, TaskHeld, task
from cascade.runtime.testing import EventRecorder


class Telemetry:
    """The run's envelopes as a reader gets them, and the answers on the reply topics."""

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []
        self.raw: list[bytes] = []  # the events
        self.replies: list[Message] = []
        self.summaries: list[EngineSummary] = []
        self.changed = asyncio.Event()

    def on_summary(self, message: Message) -> None:
        if message.raw:
            self.summaries.append(decode_summary(message.raw))
            self.changed.set()

    def on_telemetry(self, message: Message) -> None:
        self.envelopes.append(decode_envelope(message.raw))
        if message.topic.endswith("/events"):
            self.raw.append(message.raw)
        self.changed.set()

    def on_reply(self, message: Message) -> None:
        self.replies.append(message)
        self.changed.set()

    async def until(self, predicate: Any) -> None:
        async def wait() -> None:
            while not predicate():
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(wait(), 10)

    def bodies(self, kind: type[Any]) -> list[Any]:
        return [e.body for e in self.envelopes if isinstance(e.body, kind)]

    def task_events(self, name: str) -> list[TaskStateEvent]:
        return [b for b in self.bodies(TaskStateEvent) if b.task_name == name]


class SixStates(msgspec.Struct, tag="TaskStateEvent", tag_field="type"):
    """A task event as Cascade's readers before holds decode it: six states, strictly."""

    task_id: str
    task_name: str
    state: Literal["RUNNING", "COMPLETED", "FAILED", "SKIPPED", "BLOCKED", "RETRYING"]
    duration_ms: float = 0.0
    error: str = ""


class OldEnvelope(msgspec.Struct):
    body: SixStates


async def test_a_held_task_over_the_broker_from_its_hold_to_a_decision() -> None:
    """The held BLOCKED (old readers: BLOCKED; ours: HELD, with traceback); heartbeats and
    snapshots count it and list it first; of two decisions sent at once on one hold exactly
    one applies, the other is refused with who decided; malformed ones get no answer."""
    broker = InMemoryBroker()
    seen = Telemetry()
    attempts = 0

    @task(name="load", on_failure="hold")
    def load(n: int) -> int:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise ValueError("the API is down")
        return n * 2

    @task(name="report")
    def report(value: int) -> int:
        return value + 1

    @task(name="waiting")
    def waiting() -> int:
        return 0

    engine = Engine(InMemoryConnector(broker, source_id="e1"), heartbeat_interval=0.02)
    recorder = EventRecorder()
    engine.events.subscribe(recorder)
    async with InMemoryConnector(broker, presence=False) as reader:
        await reader.subscribe(telemetry_filter(prefix="cascade"), seen.on_telemetry)
        await reader.subscribe("cascade/reply/#", seen.on_reply)
        await reader.subscribe(summary_filter(), seen.on_summary)
        pause = Constraint.pause("task:waiting", reason="later")
        await reader.publish(constraint_topic(pause.scope, "pause"), pause, 1, retain=True)
        run = asyncio.create_task(engine.run([report(load(4)), waiting()]))
        await recorder.until(
            lambda: (
                any(isinstance(e, TaskHeld) for e in recorder.events)
                and any(type(e) is TaskBlocked for e in recorder.events)
            )
        )
        (run_id,) = [e.run_id for e in recorder.events if isinstance(e, RunStarted)]
        await seen.until(lambda: any(hb.held == 1 for hb in seen.bodies(Heartbeat)))

        (held,) = [b for b in seen.task_events("load") if b.state == "BLOCKED"]
        assert held.reader_state == "HELD"
        assert held.error == "ValueError: the API is down"
        assert held.held is not None
        assert (held.held.attempt, held.held.default) == (1, "fail")
        assert isinstance(held.traceback, str)
        assert "the API is down" in held.traceback
        old = [
            msgspec.json.decode(raw, type=OldEnvelope)
            for raw in seen.raw
            if b'"task_name":"load"' in raw
        ]
        assert [e.body.state for e in old] == ["RUNNING", "BLOCKED"]

        heartbeat = [hb for hb in seen.bodies(Heartbeat) if hb.held == 1][-1]
        assert (heartbeat.blocked, heartbeat.held, heartbeat.running) == (2, 1, 0)
        assert isinstance(heartbeat.blocked_tasks, list)
        first, second = heartbeat.blocked_tasks
        assert (first.task_name, [h.type for h in first.held_by]) == ("load", ["decision"])
        assert (second.task_name, [h.type for h in second.held_by]) == ("waiting", ["pause"])

        await seen.until(lambda: any(s.tasks.held for s in seen.summaries))
        summary = [s for s in seen.summaries if s.tasks.held][-1]
        assert (summary.tasks.blocked, summary.tasks.held) == (2, 1)
        assert [(r.tasks.blocked, r.tasks.held) for r in summary.listed] == [(2, 1)]

        await reader.publish(snapshot_request_topic(run_id), SnapshotRequest(run_id=run_id), 1)
        await seen.until(lambda: bool(seen.bodies(RunSnapshot)))
        (snapshot,) = seen.bodies(RunSnapshot)
        assert (snapshot.blocked, snapshot.held) == (2, 1)
        states = {t.task_name: t.reader_state for t in snapshot.tasks}
        assert states == {"load": "HELD", "waiting": "BLOCKED"}

        topic = decide_topic("local", "default", run_id)
        await reader.publish(topic, b"{not json", qos=1)
        other = DecisionRequest(id="r0", run_id="f" * 32, task="load", decision="skip")
        await reader.publish(topic, other, qos=1)
        alice = DecisionRequest(
            id="r1", run_id=run_id, task="load", decision="retry", attempt=1,
            issued_by="alice", reason="API back", issued_at=1795216320.5,
        )  # fmt: skip
        bob = DecisionRequest(
            id="r2", run_id=run_id, task="load", decision="skip", attempt=1, issued_by="bob"
        )
        await asyncio.gather(reader.publish(topic, alice, qos=1), reader.publish(topic, bob, 1))
        await reader.publish(topic, alice, qos=1)  # the broker's copy of a QoS 1 message
        await seen.until(lambda: len(seen.replies) == 3)
        await reader.publish(constraint_topic(pause.scope, "pause"), b"", 1, retain=True)
        assert await asyncio.wait_for(run, 10) == [9, 0]
        await broker.idle()

    assert [m.topic for m in seen.replies] == [
        reply_topic("local", "r1", "e1"),
        reply_topic("local", "r2", "e1"),
        reply_topic("local", "r1", "e1"),
    ]
    assert not any(m.retain for m in seen.replies)
    applied, refused, again = (decode_decision_reply(m.raw) for m in seen.replies)
    assert (applied.outcome, applied.task_id, applied.attempt, applied.source) == (
        "applied",
        held.task_id,
        1,
        "e1",
    )
    assert (applied.issued_by, applied.reason, applied.issued_at) == (
        "alice",
        "API back",
        1795216320.5,
    )
    assert refused.outcome == "already_decided"
    assert refused.decided == applied.decided
    assert refused.decided is not None
    assert refused.decided.by == "alice"
    assert again == applied
    retried = [b for b in seen.task_events("load") if b.state == "RUNNING"][-1]
    assert retried.decided == applied.decided
    assert attempts == 2
    assert (engine.stats.decisions, engine.stats.decisions_refused) == (1, 1)
