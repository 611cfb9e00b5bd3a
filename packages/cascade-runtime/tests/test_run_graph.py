"""A run's graph on its start and its snapshots: the tasks, their edges, within the bounds."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import msgspec

from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.interfaces import LifecycleEvent, Message, RunSnapshot, decode_envelope
from cascade.interfaces.commands import SnapshotRequest, snapshot_request_topic
from cascade.interfaces.graphs import check_graph
from cascade.runtime import Engine, Router, RunStarted, TaskRunning, task
from cascade.runtime.testing import EventRecorder

MAX_GRAPH_BYTES = 128 * 1024  # the protocol's bound, as docs/protocol.md states it
MAX_GRAPH_NODES = 2000


@task
def extract() -> list[int]:
    return [1, 2, 3]


@task
def healthy() -> bool:
    return True


@task
def kind() -> str:
    return "fast"


@task
def clean(row: int) -> int:
    return row * 2


@task
def fast(rows: list[int]) -> int:
    return sum(rows)


@task
def slow(rows: list[int]) -> int:
    return sum(rows)


@task
def load(rows: list[int], total: int) -> int:
    return total


async def _started(target: Any) -> tuple[dict[str, Any], list[Any]]:
    """The body of the run's ENGINE_STARTED as the wire carried it, and its task events."""
    broker = InMemoryBroker()
    sent: list[Message] = []
    async with InMemoryConnector(broker, presence=False) as reader:
        await reader.subscribe("cascade/telemetry/#", sent.append)
        engine = Engine(InMemoryConnector(broker, source_id="e1"), heartbeat_interval=None)
        await engine.run(target)
        await broker.idle()
    bodies = [json.loads(m.raw)["body"] for m in sent]
    (start,) = [b for b in bodies if b.get("event") == "ENGINE_STARTED"]
    return start, [b for b in bodies if b["type"] == "TaskStateEvent"]


async def test_an_etl_sends_its_tasks_and_their_edges() -> None:
    """A map, a run_if and a router: each task once, with what it runs after, the map marked,
    the condition and the selector told apart from the data."""
    rows = extract()
    ok = healthy()
    cleaned = clean.map(row=rows)
    choice = kind()
    quick, thorough = fast(cleaned), slow(cleaned)
    total: Router[int] = Router(choice, {"fast": quick, "slow": thorough})
    loaded = load(cleaned, total).run_if(ok)
    start, tasks = await _started(loaded)
    assert start["tasks"] == 7
    assert "graph_nodes" not in start
    graph = check_graph(start["graph"])
    nodes = {node.id: node for node in graph.nodes}
    by_name = {node.name: node for node in graph.nodes}
    assert set(nodes) == {t["task_id"] for t in tasks if "[" not in t["task_id"]}
    assert by_name["clean"].map
    assert not by_name["load"].map
    assert by_name["clean"].after == [rows.task_id]
    assert set(by_name["load"].after) == {
        cleaned.task_id,
        choice.task_id,
        ok.task_id,
        quick.task_id,
        thorough.task_id,
    }
    assert set(by_name["load"].conditions) == {choice.task_id, ok.task_id}
    # the routes only it takes wait for the selector: a condition of theirs, not data
    assert set(by_name["fast"].after) == {cleaned.task_id, choice.task_id}
    assert by_name["fast"].conditions == [choice.task_id]
    assert set(by_name["slow"].after) == {cleaned.task_id, choice.task_id}
    assert by_name["extract"].after == []
    assert by_name["extract"].conditions == []
    wire_load = next(n for n in start["graph"]["nodes"] if n["name"] == "load")
    assert set(wire_load) == {"id", "name", "after", "conditions"}  # no "map": false


async def test_a_run_above_the_bound_sends_its_size_instead() -> None:
    """One task more than the bound: no graph, ``graph_nodes`` says how many tasks."""

    @task
    def one(i: int) -> int:
        return i

    start, _ = await _started([one(i) for i in range(MAX_GRAPH_NODES + 1)])
    assert "graph" not in start
    assert start["graph_nodes"] == start["tasks"] == MAX_GRAPH_NODES + 1


async def test_a_graph_over_the_bytes_bound_is_left_out() -> None:
    """Few tasks, long names: over 128 KiB encoded, the graph is left out, saying the size."""

    @task(name="n" * 240)
    def long_named(i: int) -> int:
        return i

    count = MAX_GRAPH_BYTES // 400
    start, _ = await _started([long_named(i) for i in range(count)])
    assert "graph" not in start
    assert start["graph_nodes"] == count


async def test_the_snapshot_carries_the_graph_in_its_first_part_below_the_readers_bound() -> None:
    """A graph near its bound and tasks with long errors: every part under 256 KiB, the graph
    in the first only, the same as the start's."""
    broker = InMemoryBroker()
    snapshots: list[tuple[int, RunSnapshot]] = []
    starts: list[LifecycleEvent] = []
    answered = asyncio.Event()

    def heard(message: Message) -> None:
        body = decode_envelope(message.raw).body
        if isinstance(body, RunSnapshot):
            snapshots.append((len(message.raw), body))
            if len(snapshots) == body.parts:
                answered.set()
        elif isinstance(body, LifecycleEvent) and body.event == "ENGINE_STARTED":
            starts.append(body)

    @task(name="f" * 100)
    async def fails(i: int) -> int:
        raise ValueError("x" * 10_000)

    @task
    async def wait(gate: asyncio.Event) -> int:
        await gate.wait()
        return 0

    gate = asyncio.Event()
    count = MAX_GRAPH_BYTES // 260
    async with InMemoryConnector(broker, presence=False) as reader:
        await reader.subscribe("cascade/telemetry/#", heard)
        engine = Engine(InMemoryConnector(broker, source_id="e1"), heartbeat_interval=None)
        recorder = EventRecorder()
        engine.events.subscribe(recorder)
        run = asyncio.create_task(engine.run([fails(i) for i in range(count)] + [wait(gate)]))
        await recorder.until(lambda: len(recorder.names(TaskRunning)) == count + 1)
        await broker.idle()
        (started,) = [e for e in recorder.events if isinstance(e, RunStarted)]
        assert started.graph is not None
        request = SnapshotRequest(run_id=started.run_id)
        await reader.publish(snapshot_request_topic(started.run_id), request, qos=1)
        await asyncio.wait_for(answered.wait(), 10)
        gate.set()
        await asyncio.gather(run, return_exceptions=True)
    assert len(snapshots) > 1
    assert max(size for size, _ in snapshots) < 256 * 1024
    first = snapshots[0][1]
    assert check_graph(first.graph) == check_graph(starts[0].graph)
    assert first.graph_nodes is msgspec.UNSET
    assert all(body.graph is msgspec.UNSET for _, body in snapshots[1:])
