"""A recorder that joins a run late, or misses its events, stores the engine's true task table
from the engine's snapshot; a cancelled run's tasks are stored CANCELLED."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.history import History, Recorder
from cascade.interfaces import Envelope, Heartbeat, RunSnapshot, SnapshotTask, snapshot_topic
from cascade.interfaces.commands import snapshot_request_topic
from cascade.interfaces.summaries import summary_topic
from cascade.reader import MAX_SNAPSHOT_PARTS
from cascade.runtime import Engine, RunCancelledError, RunStarted, TaskCompleted, TaskRunning, task
from cascade.runtime.testing import EventRecorder, eventually


async def _slow_run(
    broker: InMemoryBroker, gates: list[asyncio.Event]
) -> tuple[EventRecorder, asyncio.Task[Any], Engine]:
    @task(name="slow")
    async def slow(i: int) -> int:
        await gates[i].wait()
        return i

    engine = Engine(InMemoryConnector(broker, source_id="engine-1"), heartbeat_interval=None)
    events = EventRecorder()
    engine.events.subscribe(events)
    run = asyncio.create_task(engine.run([slow(i) for i in range(len(gates))]))
    await events.until(lambda: len(events.names(TaskRunning)) == len(gates))
    return events, run, engine


def _run_id(events: EventRecorder) -> str:
    (started,) = [e for e in events.events if isinstance(e, RunStarted)]
    return started.run_id


async def test_a_recorder_that_joins_late_stores_the_engine_table(history: History) -> None:
    """Started when 20 of 40 are done: once the engine answers, the history has 40 tasks,
    20 completed and 20 running, though it never received their own events."""
    broker = InMemoryBroker()
    gates = [asyncio.Event() for _ in range(40)]
    events, run, _ = await _slow_run(broker, gates)
    for gate in gates[:20]:
        gate.set()
    await events.until(lambda: len(events.names(TaskCompleted)) == 20)
    connector = InMemoryConnector(broker, presence=False, source_id="recorder")
    async with connector, Recorder(connector, history) as recorder:
        gates[20].set()  # its first message of the run: a task completing, seq far above 1
        run_id = _run_id(events)

        def complete() -> bool:
            summary = history.run(run_id)
            return summary is not None and sum(summary.run.tasks.values()) == 40

        await eventually(complete)
        await recorder.flush(5)
        detail = history.run(run_id)
        assert detail is not None
        assert detail.run.tasks == {"COMPLETED": 21, "RUNNING": 19}
        assert recorder.stats.gaps == 0
        for gate in gates:
            gate.set()
        await run


async def test_a_cancelled_run_is_stored_with_every_task_ended(history: History) -> None:
    """3 running and 2 never started, cancelled: 5 CANCELLED tasks, the run Cancelled."""
    broker = InMemoryBroker()
    connector = InMemoryConnector(broker, presence=False, source_id="recorder")
    async with connector, Recorder(connector, history) as recorder:

        @task(name="slow")
        async def slow(i: int) -> int:
            await asyncio.Event().wait()
            return i

        @task(name="after")
        async def after(values: list[int]) -> int:
            return sum(values)

        engine = Engine(InMemoryConnector(broker, source_id="engine-1"), heartbeat_interval=None)
        events = EventRecorder()
        engine.events.subscribe(events)
        running = [slow(i) for i in range(3)]
        started = asyncio.create_task(engine.run([after(running), after(running)]))
        await events.until(lambda: len(events.names(TaskRunning)) == 3)
        engine.cancel(_run_id(events), issued_by="alice")
        with pytest.raises(RunCancelledError):
            await started
        await broker.idle()
        await recorder.flush(5)
    detail = history.run(_run_id(events))
    assert detail is not None
    assert detail.run.status == "Cancelled"
    assert detail.run.tasks == {"CANCELLED": 5}


async def test_a_snapshot_from_another_source_is_refused(history: History) -> None:
    """A snapshot published as another source than the run's engine: counted refused, its
    tasks never stored."""
    broker = InMemoryBroker()
    gates = [asyncio.Event() for _ in range(2)]
    connector = InMemoryConnector(broker, presence=False, source_id="recorder")
    async with connector, Recorder(connector, history) as recorder:
        events, run, _ = await _slow_run(broker, gates)
        run_id = _run_id(events)
        await broker.idle()
        forged = RunSnapshot(
            after=0, through=99, last_seq=99,
            tasks=[SnapshotTask(seq=50, ts="2026-11-23T10:00:01+00:00", task_id="slow-x",
                                task_name="slow", state="FAILED", error="Evil: forged")],
        )  # fmt: skip
        envelope = Envelope(run_id=run_id, org_id="local", project_id="default",
                            source="attacker", body=forged)  # fmt: skip
        async with InMemoryConnector(broker, presence=False, source_id="attacker") as liar:
            await liar.publish(snapshot_topic("local", "default", run_id), envelope, qos=1)
        await broker.idle()
        await recorder.flush(5)
        assert (recorder.stats.rejected, recorder.stats.refused) == (0, 1)  # foreign source
        for gate in gates:
            gate.set()
        await run
        await broker.idle()
        await recorder.flush(5)
    detail = history.run(run_id)
    assert detail is not None
    assert "slow-x" not in {task.task_id for task in detail.tasks}


async def test_an_answer_unasked_or_out_of_bounds_stores_nothing(history: History) -> None:
    """A forger's answer about a run of its own (never heard of: unasked), and the run's own
    source's answer with a task numbered past its through, more parts than an engine sends,
    or a task dated 9999: each refused, no run and no task stored."""
    broker = InMemoryBroker()
    gates = [asyncio.Event() for _ in range(2)]
    connector = InMemoryConnector(broker, presence=False, source_id="recorder")
    async with connector, Recorder(connector, history) as recorder:
        events, run, _ = await _slow_run(broker, gates)
        run_id = _run_id(events)
        await broker.idle()

        def answer(
            run: str, source: str, seq: int, ts: str = "2026-11-23T10:00:01+00:00", **fields: int
        ) -> Envelope:
            counts: dict[str, Any] = {"after": 0, "through": 10, "last_seq": 10, **fields}
            body = RunSnapshot(
                **counts,
                tasks=[SnapshotTask(seq=seq, ts=ts, task_id="forged", task_name="slow",
                                    state="FAILED", error="Evil: forged")],
            )  # fmt: skip
            return Envelope(run_id=run, org_id="local", project_id="default", source=source,
                            body=body)  # fmt: skip

        forged = [
            answer("f" * 32, "mallory", 5, parts=3),  # a run the recorder never heard of
            answer(run_id, "engine-1", 11),  # past through
            answer(run_id, "engine-1", 5, parts=MAX_SNAPSHOT_PARTS + 1),
            answer(run_id, "engine-1", 5, ts="9999-12-31T00:00:00+00:00"),  # dated ahead
        ]
        async with InMemoryConnector(broker, presence=False, source_id="engine-1") as liar:
            for envelope in forged:
                topic = snapshot_topic("local", "default", envelope.run_id)
                await liar.publish(topic, envelope, qos=1)
        await broker.idle()
        await recorder.flush(5)
        assert (recorder.stats.rejected, recorder.stats.refused) == (0, 4)
        for gate in gates:
            gate.set()
        await run
        await broker.idle()
        await recorder.flush(5)
    assert history.run("f" * 32) is None
    detail = history.run(run_id)
    assert detail is not None
    assert "forged" not in {task.task_id for task in detail.tasks}


async def test_a_forged_heartbeat_heard_first_costs_the_history_nothing(history: History) -> None:
    """A recorder that joins a live run hears first a forger's heartbeat claiming the engine's
    source and last_seq 2**63 - 1: the run is stored as without it (every task, missing only
    what went before the recorder joined), and the forger's next heartbeat is refused."""
    broker = InMemoryBroker()
    gates = [asyncio.Event() for _ in range(24)]
    events, run, _ = await _slow_run(broker, gates)
    run_id = _run_id(events)
    forged = Envelope(run_id=run_id, org_id="local", project_id="default", source="engine-1",
                      body=Heartbeat(running=24, last_seq=2**63 - 1))  # fmt: skip
    topic = f"cascade/telemetry/local/default/{run_id}/heartbeat"
    connector = InMemoryConnector(broker, presence=False, source_id="recorder")
    async with (
        connector,
        Recorder(connector, history) as recorder,
        InMemoryConnector(broker, presence=False, source_id="engine-1") as liar,
    ):
        await liar.publish(topic, forged, qos=1)
        await broker.idle()
        for gate in gates:
            gate.set()
        await run
        await broker.idle()
        await liar.publish(topic, forged, qos=1)
        await broker.idle()
        await recorder.flush(5)
        assert recorder.stats.refused == 1  # the second: out of bounds of the real numbers
    detail = history.run(run_id)
    assert detail is not None
    assert (detail.run.status, detail.run.tasks) == ("Succeeded", {"COMPLETED": 24})
    # what it joined after (the run's start and its 24 tasks running), not 2**63 - 25
    assert detail.run.missing_events == 25


async def test_after_a_reconnection_it_asks_for_each_unended_run(history: History) -> None:
    """What was sent while it was away is gone for a clean session, and a run whose rest
    fell in that time shows no hole: once its connector says it reconnected, the recorder
    asks the engine of every run it follows that has not ended for a snapshot."""
    broker = InMemoryBroker()
    gates = [asyncio.Event() for _ in range(3)]
    connector = InMemoryConnector(broker, presence=False, source_id="recorder")
    watcher = InMemoryConnector(broker, presence=False, source_id="watcher")
    asked: list[str] = []
    async with connector, watcher, Recorder(connector, history):
        events, run, _ = await _slow_run(broker, gates)
        run_id = _run_id(events)
        await watcher.subscribe(
            snapshot_request_topic(run_id), lambda message: asked.append(message.topic)
        )
        await eventually(lambda: history.run(run_id) is not None)
        await broker.idle()
        assert asked == []  # nothing missed: nothing asked
        connector.stats.reconnects += 1
        await eventually(lambda: len(asked) == 1)
        for gate in gates:
            gate.set()
        await run


@pytest.mark.parametrize("missed_by", ["reconnects", "shed"])
async def test_a_run_whose_end_was_missed_ends_as_its_summary_says(
    history: History, missed_by: str
) -> None:
    """Its engine answers no snapshot for a run it has ended; its retained summary lists it
    ended. The recorder missed the run's last messages, its end among them: while it was away
    (a reconnection), or because its connector shed them (it read too slowly; here they went
    while it was away, and the connector counts them shed, no reconnection). Either way it
    stores the run's end from the summary, not a run running for ever, and counts what it
    never received of it as missed (the three completions and the end itself)."""
    broker = InMemoryBroker()
    gates = [asyncio.Event() for _ in range(3)]
    connector = InMemoryConnector(broker, presence=False, source_id="recorder")
    async with connector, Recorder(connector, history) as recorder:
        events, run, _ = await _slow_run(broker, gates)
        run_id = _run_id(events)
        await eventually(lambda: history.run(run_id) is not None)
        await broker.idle()
        await connector.disconnect()  # away: the run ends meanwhile
        for gate in gates:
            gate.set()
        await run
        await connector.connect()
        assert _status(history, run_id) == "Running"
        reconnects = connector.stats.reconnects
        if missed_by == "reconnects":
            connector.stats.reconnects += 1
        else:
            connector.stats.shed += 4
        await eventually(lambda: _status(history, run_id) == "Succeeded")
        await recorder.flush(5)
        detail = history.run(run_id)
        assert detail is not None
        assert detail.run.missing_events == 4
        assert recorder.stats.ends_from_summaries == 1
        if missed_by == "shed":
            assert connector.stats.reconnects == reconnects  # the shed alone: no reconnection


async def test_a_summary_on_another_sources_topic_ends_nothing(history: History) -> None:
    """A summary whose source is not its topic's is refused and counted: the run it lists as
    failed goes on, and ends as its engine says."""
    broker = InMemoryBroker()
    gates = [asyncio.Event()]
    connector = InMemoryConnector(broker, presence=False, source_id="recorder")
    liar = InMemoryConnector(broker, presence=False, source_id="mallory")
    async with connector, liar, Recorder(connector, history) as recorder:
        events, run, _ = await _slow_run(broker, gates)
        run_id = _run_id(events)
        await eventually(lambda: history.run(run_id) is not None)
        listed = {"run_id": run_id, "org_id": "default", "project_id": "default",
                  "status": "Failed", "started": "2026-11-26T09:00:00+00:00",
                  "ended": "2026-11-26T09:00:01+00:00", "tasks": {}, "last_seq": 2}  # fmt: skip
        forged = {"source": "mallory", "listed": [listed]}
        await liar.publish(summary_topic("engine-1"), forged, retain=True)
        connector.stats.reconnects += 1
        await eventually(lambda: recorder.stats.refused == 1)
        gates[0].set()
        await run
        await eventually(lambda: _status(history, run_id) == "Succeeded")
        assert recorder.stats.ends_from_summaries == 0


def _status(history: History, run_id: str) -> str | None:
    detail = history.run(run_id)
    return None if detail is None else detail.run.status
