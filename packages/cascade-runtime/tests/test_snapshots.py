"""A run's snapshot: the engine answers readers' requests with every task's latest event."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import msgspec

from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.interfaces import Message, RunSnapshot, decode_envelope, telemetry_filter
from cascade.interfaces.commands import SnapshotRequest, snapshot_request_topic
from cascade.runtime import (
    Engine,
    Jump,
    RunStarted,
    TaskCompleted,
    TaskRunning,
    bind,
    select_jump,
    task,
)
from cascade.runtime.testing import EventRecorder

SNAPSHOT_INTERVAL = 1.0  # how often an engine answers a run's snapshot requests at most


class Answers:
    """What the run's telemetry topics carried: its events by seq, and each snapshot message."""

    def __init__(self) -> None:
        self.events: dict[int, Any] = {}
        self.snapshots: list[tuple[float, RunSnapshot]] = []
        self.arrived = asyncio.Event()

    def __call__(self, message: Message) -> None:
        envelope = decode_envelope(message.raw)
        if isinstance(envelope.body, RunSnapshot):
            self.snapshots.append((time.monotonic(), envelope.body))
            self.arrived.set()
        elif isinstance(envelope.seq, int):
            self.events[envelope.seq] = envelope

    async def next_snapshot(self) -> RunSnapshot:
        self.arrived.clear()
        await asyncio.wait_for(self.arrived.wait(), 5)
        return self.snapshots[-1][1]


async def _running(broker: InMemoryBroker, gate: asyncio.Event) -> tuple[EventRecorder, str, Any]:
    @task(name="quick")
    async def quick(i: int) -> int:
        return i

    @task(name="slow")
    async def slow(i: int) -> int:
        await gate.wait()
        return i

    engine = Engine(InMemoryConnector(broker, source_id="e1"), heartbeat_interval=None)
    recorder = EventRecorder()
    engine.events.subscribe(recorder)
    target = [quick(i) for i in range(20)] + [slow(i) for i in range(20)]
    run = asyncio.create_task(engine.run(target))
    await recorder.until(
        lambda: len(recorder.names(TaskCompleted)) == 20 and len(recorder.names(TaskRunning)) == 40
    )
    (started,) = [e for e in recorder.events if isinstance(e, RunStarted)]
    return recorder, started.run_id, run


async def test_a_snapshot_lists_every_task_latest_event_and_the_counts() -> None:
    """Asked with after=0: 40 tasks, each as its latest event (same seq, ts, state), and the
    counts 20 completed and 20 running; asked with after=K, only the tasks changed after K."""
    broker, gate, answers = InMemoryBroker(), asyncio.Event(), Answers()
    async with InMemoryConnector(broker, presence=False) as reader:
        await reader.subscribe(telemetry_filter(prefix="cascade"), answers)
        _, run_id, run = await _running(broker, gate)
        await broker.idle()
        await reader.publish(snapshot_request_topic(run_id), SnapshotRequest(run_id=run_id), qos=1)
        snapshot = await answers.next_snapshot()
        assert (snapshot.part, snapshot.parts, snapshot.after) == (1, 1, 0)
        assert snapshot.through == snapshot.last_seq == max(answers.events)
        assert (snapshot.planned, snapshot.completed, snapshot.running, snapshot.pending) == (
            40,
            20,
            20,
            0,
        )
        assert len(snapshot.tasks) == 40
        for entry in snapshot.tasks:
            sent = answers.events[entry.seq]
            assert (entry.ts, entry.task_id, entry.state) == (
                sent.ts,
                sent.body.task_id,
                sent.body.state,
            )
        # only what changed after the 30th event (answered a second after the first answer)
        request = SnapshotRequest(run_id=run_id, after=30)
        await reader.publish(snapshot_request_topic(run_id), request, qos=1)
        later = await answers.next_snapshot()
        assert later.after == 30
        assert {t.seq for t in later.tasks} == {t.seq for t in snapshot.tasks if t.seq > 30}
        gate.set()
        await run


async def test_a_thousand_readers_asking_at_once_get_shared_answers_a_second_apart() -> None:
    """2,000 requests in two bursts: two answers, the second at least SNAPSHOT_INTERVAL after
    the first; malformed requests, requests for another run and unknown commands change nothing."""
    broker, gate, answers = InMemoryBroker(), asyncio.Event(), Answers()
    async with InMemoryConnector(broker, presence=False) as reader:
        await reader.subscribe(telemetry_filter(prefix="cascade"), answers)
        _, run_id, run = await _running(broker, gate)
        topic = snapshot_request_topic(run_id)
        await reader.publish(topic, b"{not json", qos=1)
        await reader.publish(topic, SnapshotRequest(run_id="f" * 32), qos=1)
        await reader.publish(f"cascade/command/local/default/{run_id}/reboot", b"{}", qos=1)
        for _ in range(1000):
            await reader.publish(topic, SnapshotRequest(run_id=run_id), qos=1)
        await answers.next_snapshot()
        for _ in range(1000):
            await reader.publish(topic, SnapshotRequest(run_id=run_id), qos=1)
        await answers.next_snapshot()
        await broker.idle()
        gate.set()
        await run
    (first, _), (second, _) = answers.snapshots
    assert second - first >= SNAPSHOT_INTERVAL * 0.95  # monotonic clocks of one process


async def test_a_big_run_is_answered_in_parts_below_the_readers_bound() -> None:
    """Tasks with long errors: the answer comes in parts, each under 256 KiB, together listing
    every task once."""
    broker, answers = InMemoryBroker(), Answers()
    sizes: list[int] = []

    @task(name="fails")
    async def fails(i: int) -> int:
        raise ValueError("x" * 10_000)

    @task(name="wait")
    async def wait(gate: asyncio.Event) -> int:
        await gate.wait()
        return 0

    gate = asyncio.Event()
    async with InMemoryConnector(broker, presence=False) as reader:
        await reader.subscribe(telemetry_filter(prefix="cascade"), answers)
        await reader.subscribe(
            "cascade/telemetry/+/+/+/snapshot", lambda m: sizes.append(len(m.raw))
        )
        engine = Engine(InMemoryConnector(broker, source_id="e1"), heartbeat_interval=None)
        recorder = EventRecorder()
        engine.events.subscribe(recorder)
        run = asyncio.create_task(engine.run([fails(i) for i in range(100)] + [wait(gate)]))
        await recorder.until(lambda: len(recorder.names(TaskRunning)) == 101)
        await broker.idle()
        (started,) = [e for e in recorder.events if isinstance(e, RunStarted)]
        request = SnapshotRequest(run_id=started.run_id)
        await reader.publish(snapshot_request_topic(started.run_id), request, qos=1)
        await answers.next_snapshot()
        await broker.idle()
        gate.set()
        await asyncio.gather(run, return_exceptions=True)
    parts = [body for _, body in answers.snapshots]
    assert len(parts) == parts[0].parts > 1
    assert [p.part for p in parts] == list(range(1, len(parts) + 1))
    assert max(sizes) < 256 * 1024
    assert len({t.task_id for p in parts for t in p.tasks}) == 101


def _completed(recorder: EventRecorder, task_id: str) -> bool:
    return any(isinstance(e, TaskCompleted) and e.task_id == task_id for e in recorder.events)


async def test_a_snapshot_names_a_maps_items_mid_map_and_after_it() -> None:
    """A map of 3 items, 2 of them waiting: the map's entry says it made 3, as its RUNNING did;
    once the map has completed (another task still running), its COMPLETED entry still does."""
    broker, answers = InMemoryBroker(), Answers()
    items_gate, other_gate = asyncio.Event(), asyncio.Event()

    @task(name="rows")
    async def rows() -> list[int]:
        return [0, 1, 2]

    @task(name="load")
    async def load(row: int) -> int:
        if row:
            await items_gate.wait()
        return row

    @task(name="other")
    async def other() -> int:
        await other_gate.wait()
        return 0

    async with InMemoryConnector(broker, presence=False) as reader:
        await reader.subscribe(telemetry_filter(prefix="cascade"), answers)
        engine = Engine(InMemoryConnector(broker, source_id="e1"), heartbeat_interval=None)
        recorder = EventRecorder()
        engine.events.subscribe(recorder)
        mapped = load.map(row=rows())
        run = asyncio.create_task(engine.run([mapped, other()]))
        await recorder.until(lambda: _completed(recorder, f"{mapped.task_id}[0]"))
        await broker.idle()
        (started,) = [e for e in recorder.events if isinstance(e, RunStarted)]
        request = SnapshotRequest(run_id=started.run_id)
        await reader.publish(snapshot_request_topic(started.run_id), request, qos=1)
        mid = {t.task_id: t for t in (await answers.next_snapshot()).tasks}
        assert (mid[mapped.task_id].state, mid[mapped.task_id].items) == ("RUNNING", 3)
        assert all(t.items is msgspec.UNSET for t in mid.values() if t.task_id != mapped.task_id)
        items_gate.set()
        await recorder.until(lambda: _completed(recorder, mapped.task_id))
        await broker.idle()
        await reader.publish(snapshot_request_topic(started.run_id), request, qos=1)
        after = {t.task_id: t for t in (await answers.next_snapshot()).tasks}
        assert (after[mapped.task_id].state, after[mapped.task_id].items) == ("COMPLETED", 3)
        other_gate.set()
        assert await run == [[0, 1, 2], 0]


async def test_a_snapshot_lists_a_loops_latest_thousand_iterations_and_counts_them_all() -> None:
    """A loop at its 1,500th iteration: the answer lists the loop's task and its latest 1,000
    iterations (what the engine holds of a loop is bounded), and counts every one."""
    broker, gate, answers = InMemoryBroker(), asyncio.Event(), Answers()
    reached = asyncio.Event()

    @task(name="count")
    async def count(n: int) -> int | Jump:
        if n == 1_500:
            reached.set()
            await gate.wait()
            return n
        return Jump("again", n + 1)

    async with InMemoryConnector(broker, presence=False) as reader:
        await reader.subscribe(telemetry_filter(prefix="cascade"), answers)
        engine = Engine(InMemoryConnector(broker, source_id="e1"), heartbeat_interval=None)
        starts: list[RunStarted] = []
        engine.events.subscribe(lambda e: starts.append(e) if isinstance(e, RunStarted) else None)
        loop = count(1)
        bind(loop, select_jump({"again": loop}))
        run = asyncio.create_task(engine.run(loop))
        try:
            await asyncio.wait_for(reached.wait(), 60)
            (started,) = starts
            await broker.idle()
            request = SnapshotRequest(run_id=started.run_id)
            await reader.publish(snapshot_request_topic(started.run_id), request, qos=1)
            snapshot = await answers.next_snapshot()
            while True:  # one answer, in parts below the readers' bound
                answers.arrived.clear()
                if len(answers.snapshots) >= snapshot.parts:
                    break
                await asyncio.wait_for(answers.arrived.wait(), 5)
            listed = {entry.task_id for _, part in answers.snapshots for entry in part.tasks}
            latest = {f"{loop.task_id}@{n}" for n in range(501, 1_501)}
            assert listed == {loop.task_id, *latest}
            assert (snapshot.completed, snapshot.running) == (
                1_498,
                2,
            )  # @2 to @1499; the loop, @1500
        finally:
            gate.set()
        assert await run == 1_500
