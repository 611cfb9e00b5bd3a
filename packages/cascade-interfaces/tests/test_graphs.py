"""A run's graph on the wire: its exact shape, and the checks a reader makes of a sender's."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from cascade.interfaces import (
    Envelope,
    InvalidMessageError,
    LifecycleEvent,
    decode_envelope,
    encode_payload,
)
from cascade.interfaces.graphs import RunGraph, check_graph

MAX_GRAPH_ID_LENGTH = 256  # the protocol's bound, as docs/protocol.md states it
MAX_GRAPH_NODES = 2000


def _etl() -> dict[str, Any]:
    return {
        "nodes": [
            {"id": "extract-1", "name": "extract", "after": []},
            {"id": "ok-2", "name": "ok", "after": ["extract-1"]},
            {"id": "clean-3", "name": "clean", "after": ["extract-1"], "map": True},
            {
                "id": "load-4",
                "name": "load",
                "after": ["clean-3", "ok-2"],
                "conditions": ["ok-2"],
            },
        ]
    }


def test_the_graph_travels_in_engine_started_as_documented() -> None:
    """The wire's shape: ``after`` always, ``map`` and ``conditions`` only where they say
    something; a run without a graph says nothing of it."""
    graph = msgspec.convert(
        {
            "nodes": [
                {"id": "a-1", "name": "a", "after": []},
                {"id": "b-2", "name": "b", "after": ["a-1"], "map": True, "conditions": ["a-1"]},
            ]
        },
        RunGraph,
    )
    body = LifecycleEvent(event="ENGINE_STARTED", tasks=2, graph=graph)
    envelope = Envelope(run_id="r1", org_id="o", project_id="p", source="s", body=body)
    wire = json.loads(encode_payload(envelope))["body"]
    assert wire["graph"] == {
        "nodes": [
            {"id": "a-1", "name": "a", "after": []},
            {"id": "b-2", "name": "b", "after": ["a-1"], "map": True, "conditions": ["a-1"]},
        ]
    }
    assert "graph_nodes" not in wire
    plain = json.loads(encode_payload(LifecycleEvent(event="ENGINE_STARTED", tasks=2)))
    assert "graph" not in plain
    assert "graph_nodes" not in plain


def test_a_reader_takes_a_sound_graph() -> None:
    """What an engine sends is taken whole, edges and all."""
    graph = check_graph(_etl())
    load = graph.nodes[3]
    assert (load.after, load.conditions, graph.nodes[2].map) == (
        ["clean-3", "ok-2"],
        ["ok-2"],
        True,
    )


def test_order_only_dependencies_travel_as_order_and_are_left_out_when_none() -> None:
    """``order``, additive: the ids among ``after`` taken only for their order; a graph
    without it (an engine before it) is read as having none."""
    (node, plain) = msgspec.convert(
        {"nodes": [{"id": "c-3", "name": "c", "after": ["a-1", "b-2"], "order": ["a-1"]},
                   {"id": "a-1", "name": "a", "after": []}]},
        RunGraph,
    ).nodes  # fmt: skip
    assert json.loads(msgspec.json.encode(node))["order"] == ["a-1"]
    assert "order" not in json.loads(msgspec.json.encode(plain))
    graph = _etl()
    graph["nodes"][3]["order"] = ["clean-3"]
    assert check_graph(graph).nodes[3].order == ["clean-3"]
    assert check_graph(_etl()).nodes[3].order == []


def _with(change: Any) -> dict[str, Any]:
    graph = _etl()
    change(graph["nodes"])
    return graph


@pytest.mark.parametrize(
    ("change", "said"),
    [
        (lambda nodes: nodes.append(dict(nodes[0])), "names two nodes"),
        (lambda nodes: nodes[1]["after"].append("nowhere-9"), "no node's id"),
        (lambda nodes: nodes[1]["after"].append("extract-1"), "names a task twice"),
        (lambda nodes: nodes[1]["after"].append("ok-2"), "the node itself"),
        (lambda nodes: nodes[3].update(conditions=["extract-1"]), "not in its after"),
        (lambda nodes: nodes[3].update(order=["extract-1"]), "order names a task not in its"),
        (lambda nodes: nodes[3].update(order=["clean-3", "clean-3"]), "order names a task twice"),
        (lambda nodes: nodes[0]["after"].append("load-4"), "cycle"),
        (lambda nodes: nodes[0].update(id="x" * (MAX_GRAPH_ID_LENGTH + 1)), "$.graph.nodes[0].id"),
        (lambda nodes: nodes[0].update(id=""), "$.graph.nodes[0].id"),
        (lambda nodes: nodes[0].update(after="extract-1"), "$.graph.nodes[0].after"),
        (lambda nodes: nodes[0].pop("name"), "name"),
    ],
)
def test_a_reader_refuses_what_no_engine_sends(change: Any, said: str) -> None:
    """Each lie is refused with what is wrong, never taken in part."""
    with pytest.raises(InvalidMessageError, match=said.replace("[", r"\[").replace("$", r"\$")):
        check_graph(_with(change))


def test_a_graph_over_the_bound_is_refused() -> None:
    """More nodes than any engine sends is refused, however sound."""
    nodes = [{"id": f"t-{i}", "name": "t", "after": []} for i in range(MAX_GRAPH_NODES + 1)]
    with pytest.raises(InvalidMessageError, match="nodes"):
        check_graph({"nodes": nodes})
    with pytest.raises(InvalidMessageError, match="object"):
        check_graph([1, 2])


def test_a_malformed_graph_costs_the_envelope_nothing() -> None:
    """The envelope decodes whatever its graph holds: the run's start is still seen."""
    wire = {
        "run_id": "r1",
        "org_id": "o",
        "project_id": "p",
        "source": "s",
        "seq": 1,
        "body": {"type": "LifecycleEvent", "event": "ENGINE_STARTED", "tasks": 3, "graph": 7},
    }
    body = decode_envelope(wire).body
    assert isinstance(body, LifecycleEvent)
    assert (body.event, body.tasks, body.graph) == ("ENGINE_STARTED", 3, 7)
