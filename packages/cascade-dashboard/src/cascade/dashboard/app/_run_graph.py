"""``GET /api/runs/{run_id}/graph``: a run's graph of tasks and their dependencies, as its
engine sent it (``ENGINE_STARTED``, or its snapshot answer), from the live model, else from the
history; read by whoever may read the run (hidden means unknown: ``_visible_runs``)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import msgspec
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from cascade.control import ControlError
from cascade.interfaces.graphs import RunGraph
from cascade.interfaces.wire import MAX_GRAPH_NODES
from cascade.reader import RunView

from .._guard import refusal
from ..live._visible_runs import HistoryUnreadable, find_run, seen_live, unknown_run
from ._controls import Controls

if TYPE_CHECKING:
    from cascade.history import History, RecordedGraph

__all__ = ["run_graph"]

NO_GRAPH = "no graph sent: its engine sends none (an engine before graphs), or sent a malformed one"
"""Why a run has no graph where its engine sent neither a graph nor its size."""
JOINED_LATE = (
    "no graph heard yet: this dashboard joined the run late, its engine's answer is awaited"
)
"""Why a live run this dashboard heard of only mid-way has none yet."""


def above_bound(nodes: int) -> str:
    """Why a run of ``nodes`` tasks has no graph: its engine sent only their count."""
    return f"no graph sent: {nodes} tasks, above the bound of {MAX_GRAPH_NODES}"


def _nodes(run_id: str, graph: RunGraph) -> JSONResponse:
    return JSONResponse({"run_id": run_id, "nodes": msgspec.to_builtins(graph.nodes)})


def _none(run_id: str, why: str, nodes: int | None = None) -> JSONResponse:
    answer: dict[str, Any] = {"run_id": run_id, "nodes": None, "why": why}
    if nodes is not None:
        answer["graph_nodes"] = nodes
    return JSONResponse(answer)


async def _recorded(history: History, run_id: str, among: Any) -> RecordedGraph | None:
    """The history's graph of ``run_id``, read in a worker thread."""
    from cascade.history import HistoryError

    try:
        return await asyncio.to_thread(history.graph, run_id, among=among)
    except HistoryError as exc:
        raise HistoryUnreadable(str(exc)) from None


async def run_graph(controls: Controls, request: Request) -> Response:
    """``{"run_id", "nodes": [...]}`` (each node ``id``, ``name``, ``after``, and ``map`` and
    ``conditions`` where they say something), or ``{"run_id", "nodes": null, "why"}`` (and
    ``graph_nodes``, the run's task count, where it is above the bound); 400 for a malformed id
    or a prefix several runs have, 404 for a run nobody heard of or the asker may not see,
    503 when the history cannot answer."""
    access = controls.team.reader(request.scope) if controls.team is not None else None
    among = access.among() if access is not None else None
    given = request.path_params["run_id"]
    model, history = controls.hub.model, controls.source.history
    try:
        found = await find_run(model, history, given, among)
        if found is None:
            return unknown_run(given, team=controls.team is not None)
        run_id = found.run_id
        live = seen_live(model, run_id, among)
        if isinstance(live, RunView) and live.graph is not None:
            return _nodes(run_id, live.graph)
        recorded = None if history is None else await _recorded(history, run_id, among)
    except ControlError as exc:
        return refusal(400, str(exc))
    except HistoryUnreadable as exc:
        return refusal(503, str(exc))
    if recorded is not None:
        if recorded.graph is not None:
            return _nodes(run_id, recorded.graph)
        return _none(run_id, above_bound(recorded.nodes), recorded.nodes)
    if isinstance(live, RunView):
        if live.graph_nodes is not None:
            return _none(run_id, above_bound(live.graph_nodes), live.graph_nodes)
        return _none(run_id, JOINED_LATE if live.joined_late else NO_GRAPH)
    if live is None and found.owner is None:  # a whole id nobody heard of
        return unknown_run(given, team=controls.team is not None)
    return _none(run_id, JOINED_LATE if live is not None else NO_GRAPH)
