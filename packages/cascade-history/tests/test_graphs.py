"""A run's graph in the history: as its ENGINE_STARTED sent it, the first kept, a malformed one
refused alone, the size of one above the bound, read by those who may see the run."""

from __future__ import annotations

from typing import Any

from cascade.history import History

from .messages import T0, lifecycle, task

_GRAPH: dict[str, Any] = {
    "nodes": [
        {"id": "extract-1", "name": "extract", "after": []},
        {"id": "clean-2", "name": "clean", "after": ["extract-1"], "map": True},
        {"id": "load-3", "name": "load", "after": ["clean-2"], "conditions": ["clean-2"]},
    ]
}


def test_a_runs_graph_is_recorded_with_its_edges(history: History) -> None:
    """Nodes, edges, maps and conditions as sent; its JSON is the wire's."""
    history.store([lifecycle("r1", "ENGINE_STARTED", T0, seq=1, tasks=3, graph=_GRAPH)])
    recorded = history.graph("r1")
    assert recorded is not None
    assert recorded.graph is not None
    assert recorded.nodes == 3
    assert recorded.to_json() == {"run_id": "r1", "nodes": _GRAPH["nodes"], "graph_nodes": 3}


def test_the_first_graph_stays(history: History) -> None:
    """A start delivered again with another graph (a copy, a second recorder) changes nothing."""
    history.store([lifecycle("r1", "ENGINE_STARTED", T0, seq=1, tasks=3, graph=_GRAPH)])
    other = {"nodes": [{"id": "x-1", "name": "x", "after": []}]}
    history.store([lifecycle("r1", "ENGINE_STARTED", T0, seq=1, tasks=1, graph=other)])
    recorded = history.graph("r1")
    assert recorded is not None
    assert recorded.nodes == 3


def test_a_malformed_graph_is_refused_alone(history: History) -> None:
    """The start and what follows are stored; the graph is not, counted rejected."""
    lie = {"nodes": [{"id": "a", "name": "a", "after": ["nowhere"]}]}
    stored = history.store(
        [
            lifecycle("r1", "ENGINE_STARTED", T0, seq=1, tasks=1, name="etl", graph=lie),
            task("r1", "a", "RUNNING", T0 + 1, seq=2),
        ]
    )
    assert stored.rejected == 1
    [run] = history.runs()
    assert (run.run_id, run.name, run.planned_tasks) == ("r1", "etl", 1)
    assert history.graph("r1") is None


def test_a_run_above_the_bound_is_recorded_with_its_size(history: History) -> None:
    """No graph sent, its size instead: the history says how many tasks."""
    history.store([lifecycle("r1", "ENGINE_STARTED", T0, seq=1, tasks=2001, graph_nodes=2001)])
    recorded = history.graph("r1")
    assert recorded is not None
    assert (recorded.nodes, recorded.graph) == (2001, None)
    assert recorded.to_json()["nodes"] is None


def test_an_engine_before_graphs_leaves_none(history: History) -> None:
    """A start without graph nor size: no graph, as for an unknown run."""
    history.store([lifecycle("r1", "ENGINE_STARTED", T0, seq=1, tasks=3)])
    assert history.graph("r1") is None
    assert history.graph("nowhere") is None


def test_a_graph_is_read_by_those_who_may_see_its_run(history: History) -> None:
    """``among`` another org's projects: the run's graph is not there."""
    history.store([lifecycle("r1", "ENGINE_STARTED", T0, seq=1, tasks=3, graph=_GRAPH)])
    assert history.graph("r1", among=[("local", None)]) is not None
    assert history.graph("r1", among=[("local", "default")]) is not None
    assert history.graph("r1", among=[("acme", None)]) is None


def test_pruning_a_run_prunes_its_graph(history: History) -> None:
    """A run pruned takes its graph with it."""
    history.store(
        [
            lifecycle("r1", "ENGINE_STARTED", T0, seq=1, tasks=3, graph=_GRAPH),
            lifecycle("r1", "ENGINE_STOPPED", T0 + 1, seq=2, status="Succeeded"),
        ]
    )
    history.prune(before=T0 + 10)
    assert history.graph("r1") is None
