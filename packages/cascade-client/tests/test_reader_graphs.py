"""A run's graph in the reader: from its ENGINE_STARTED or its engine's snapshot answer,
checked; a malformed one is dropped and counted, and the rest of its message still taken."""

from __future__ import annotations

from typing import Any

import pytest

from cascade.connector_kit.testing import received
from cascade.interfaces import (
    Envelope,
    LifecycleEvent,
    Message,
    RunSnapshot,
    SnapshotTask,
    TaskStateEvent,
    events_topic,
    snapshot_topic,
)
from cascade.reader import ReaderModel

MAX_GRAPH_NODES = 2000  # the protocol's bound, as docs/protocol.md states it

TS = "2026-11-23T10:00:00+00:00"
GRAPH = {
    "nodes": [
        {"id": "extract-1", "name": "extract", "after": []},
        {"id": "clean-2", "name": "clean", "after": ["extract-1"], "map": True},
        {"id": "load-3", "name": "load", "after": ["clean-2"], "conditions": ["clean-2"]},
    ]
}


def _start(source: str = "host-1", **fields: Any) -> Message:
    body = LifecycleEvent(event="ENGINE_STARTED", tasks=3, name="etl", **fields)
    envelope = Envelope(run_id="run-1", org_id="o", project_id="p", source=source, body=body,
                        seq=1, ts=TS)  # fmt: skip
    return received(events_topic("o", "p", "run-1"), envelope)


def _answer(**fields: Any) -> Message:
    task = SnapshotTask(seq=2, ts=TS, task_id="extract-1", task_name="extract", state="RUNNING")
    body = RunSnapshot(after=0, through=2, last_seq=2, tasks=[task], **fields)
    envelope = Envelope(run_id="run-1", org_id="o", project_id="p", source="host-1", body=body,
                        ts=TS)  # fmt: skip
    return received(snapshot_topic("o", "p", "run-1"), envelope)


def test_a_runs_start_gives_its_graph() -> None:
    """The graph as sent, edges and marks, on the run's view."""
    state = ReaderModel()
    state.apply(_start(graph=GRAPH))
    run = state.runs["run-1"]
    assert run.graph is not None
    assert [(n.id, n.after, n.map, n.conditions) for n in run.graph.nodes] == [
        ("extract-1", [], False, []),
        ("clean-2", ["extract-1"], True, []),
        ("load-3", ["clean-2"], False, ["clean-2"]),
    ]
    assert (run.graph_nodes, state.rejected) == (None, 0)


def test_a_run_above_the_bound_says_its_size() -> None:
    """No graph, the size instead: a view can say why there is none."""
    state = ReaderModel()
    state.apply(_start(graph_nodes=MAX_GRAPH_NODES + 1))
    run = state.runs["run-1"]
    assert (run.graph, run.graph_nodes) == (None, MAX_GRAPH_NODES + 1)


def _lie(nodes: list[dict[str, Any]]) -> dict[str, Any]:
    return {"nodes": nodes}


@pytest.mark.parametrize(
    "graph",
    [
        _lie([{"id": "a", "name": "a", "after": ["nowhere"]}]),
        _lie([{"id": "a", "name": "a", "after": []}, {"id": "a", "name": "b", "after": []}]),
        _lie([{"id": "a" * 257, "name": "a", "after": []}]),
        _lie([{"id": "a", "name": "a", "after": ["b"]}, {"id": "b", "name": "b", "after": ["a"]}]),
        _lie([{"id": f"t{i}", "name": "t", "after": []} for i in range(MAX_GRAPH_NODES + 1)]),
        _lie([{"id": "a", "name": "a", "after": [], "conditions": ["a"]}]),
        "nodes",
    ],
    ids=["unknown id", "an id twice", "a long id", "a cycle", "too many", "condition", "text"],
)
def test_a_malformed_graph_is_dropped_and_counted_the_start_still_seen(graph: Any) -> None:
    """A lie in the graph costs the run its graph only: it is started, named and sized."""
    state = ReaderModel()
    state.apply(_start(graph=graph))
    run = state.runs["run-1"]
    assert (run.status, run.name, run.planned, run.graph) == ("Running", "etl", 3, None)
    assert state.rejected == 1


def test_a_reader_that_joined_late_gets_the_graph_from_the_answer() -> None:
    """The answer's first part carries it; a malformed one costs the answer nothing else."""
    state = ReaderModel(ask=lambda run_id, after: None)
    body = TaskStateEvent(task_id="extract-1", task_name="extract", state="RUNNING")
    envelope = Envelope(run_id="run-1", org_id="o", project_id="p", source="host-1", body=body,
                        seq=2, ts=TS)  # fmt: skip
    state.apply(received(events_topic("o", "p", "run-1"), envelope))
    assert (state.rejected, state.runs["run-1"].graph) == (0, None)
    state.apply(_answer(graph={"nodes": "x"}))
    assert (state.rejected, state.runs["run-1"].graph) == (1, None)
    assert not state.runs["run-1"].joined_late  # the answer's tasks taken all the same
    state.request_snapshot("run-1", 0, "host-1")  # asked again: an answer is taken if asked for
    state.apply(_answer(graph=GRAPH))
    graph = state.runs["run-1"].graph
    assert graph is not None
    assert [n.id for n in graph.nodes] == ["extract-1", "clean-2", "load-3"]


def test_another_sources_start_gives_no_graph() -> None:
    """A forger's start, after the run's own, changes nothing of its graph."""
    state = ReaderModel()
    state.apply(_start(graph=GRAPH))
    forged = {"nodes": [{"id": "x", "name": "x", "after": []}]}
    state.apply(_start("mallory", graph=forged))
    graph = state.runs["run-1"].graph
    assert graph is not None
    assert len(graph.nodes) == 3


def _start_of(run_id: str) -> Message:
    body = LifecycleEvent(event="ENGINE_STARTED", tasks=3, graph=GRAPH)
    envelope = Envelope(run_id=run_id, org_id="o", project_id="p", source="host-1", body=body,
                        seq=1, ts=TS)  # fmt: skip
    return received(events_topic("o", "p", run_id), envelope)


def test_the_graphs_held_are_bounded_across_runs() -> None:
    """Beyond ``max_graph_nodes`` a run's graph is not kept, and counted; a run forgotten
    frees its graph's room."""
    state = ReaderModel(max_graph_nodes=4)
    state.apply(_start_of("run-1"))
    state.apply(_start_of("run-2"))
    assert state.runs["run-1"].graph is not None
    assert (state.runs["run-2"].graph, state.graphs_dropped) == (None, 1)
    assert state.runs["run-2"].status == "Running"  # the start is taken all the same
    assert state.graph_nodes_held == 3
    state.forget_run("run-1")
    assert state.graph_nodes_held == 0
    state.apply(_start_of("run-3"))
    assert state.runs["run-3"].graph is not None


def test_a_reader_that_keeps_no_graph_reads_none() -> None:
    """``max_graph_nodes=0`` (`cascade watch`, the recorder's metrics: views that show no
    graph): a run's graph is not read, so not even a malformed one costs a check."""
    state = ReaderModel(max_graph_nodes=0)
    state.apply(_start(graph={"nodes": "not a list"}))
    run = state.runs["run-1"]
    assert (run.status, run.graph, state.rejected, state.graphs_dropped) == (
        "Running",
        None,
        0,
        1,
    )
