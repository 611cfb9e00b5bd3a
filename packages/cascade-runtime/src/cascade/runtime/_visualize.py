"""``visualize``: the graph a target builds, drawn as Graphviz DOT or as plain text; ``dry_run``:
its plan printed, a task a line.

It draws what a run's start tells every view of its graph (the same tasks, edges and kinds
of edge: data, a condition or a route, order only, a map), so the picture and the views agree.
"""

from __future__ import annotations

from typing import Any, Literal

from ._errors import CascadeRuntimeError
from .workflow._graph import Node, build_graph
from .workflow._graph_wire import wire_graph
from .workflow._task import LazyResult

__all__ = ["dry_run", "visualize"]

_JUMPS = " jumps to "  # a text line of a loop's jump, not a task


def _arguments(lazy: LazyResult[Any]) -> dict[int, str]:
    """For each lazy result among ``lazy``'s arguments (at any depth), the argument it is in:
    its position (``"0"``) or keyword (``"z"``)."""
    found: dict[int, str] = {}
    given = [(str(i), a) for i, a in enumerate(lazy.args)] + list(lazy.kwargs.items())
    for label, value in given:
        stack = [value]
        while stack:
            item = stack.pop()
            if isinstance(item, LazyResult):
                found.setdefault(id(item), label)
            elif isinstance(item, (list, tuple, set, frozenset)):
                stack.extend(item)
            elif isinstance(item, dict):
                stack.extend(item.values())
    return found


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def visualize(target: Any, format: Literal["dot", "text"] = "dot") -> str:
    """The graph ``target`` builds (nothing runs), as the Cascade engine's ``cs.visualize``:
    Graphviz DOT by default (``digraph CascadeWorkflow { ... }``: a box per task, labelled
    with its name and its kind, ``task`` or ``map``; an edge per dependency, labelled with the
    argument that takes it, dashed for a condition or a route, dotted for order only), or
    ``format="text"``: a line per task, dependencies first, with what it waits for."""
    if format not in ("dot", "text"):
        raise ValueError(f"visualize draws 'dot' or 'text', not {format!r}")
    graph = build_graph(target)
    shape = wire_graph(graph)
    if shape is None:
        raise CascadeRuntimeError(
            f"the graph of {len(graph.nodes):,} tasks is larger than a run's start describes: "
            "it is not drawn"
        )
    by_id = {node.lazy.task_id: node for node in graph.nodes}
    lines: list[str] = []
    if format == "dot":
        lines += ["digraph CascadeWorkflow {", '  rankdir="TB";']
    for wire in shape.nodes:
        lazy = by_id[wire.id].lazy
        kind = "map" if wire.map else "task"
        args = _arguments(lazy)
        if graph.same:  # a pure call's twin among them: as the one it shares a node with
            args = {graph.same.get(key, key): label for key, label in reversed(args.items())}
        edges = []
        for dep in wire.after:
            dep_lazy = by_id[dep].lazy
            if dep in wire.order:
                edges.append((dep, "after", "dotted"))
            elif dep in wire.conditions:
                edges.append((dep, "condition", "dashed"))
            else:
                edges.append((dep, args.get(id(dep_lazy), ""), ""))
        if format == "text":
            waits = ", ".join(f"{dep} ({label})" if label else dep for dep, label, _style in edges)
            lines.append(f"{wire.id} [{kind} {wire.name}]" + (f" <- {waits}" if waits else ""))
            continue
        label = _quote(f"{wire.name}\\n({kind})").replace("\\\\n", "\\n")
        lines.append(f"  {_quote(wire.id)} [label={label}, shape=box];")
        for dep, edge_label, style in edges:
            options = [f"label={_quote(edge_label)}"] if edge_label else []
            if style:
                options.append(f"style={style}")
            attrs = f" [{', '.join(options)}]" if options else ""
            lines.append(f"  {_quote(dep)} -> {_quote(wire.id)}{attrs};")
    lines += _jumps(graph.nodes, format)
    if format == "dot":
        lines.append("}")
    return "\n".join(lines)


def _jumps(nodes: list[Node], format: str) -> list[str]:
    """The loops' jumps (:func:`~cascade.runtime.bind`): an edge from each bound call to each
    route's call, labelled ``jump: KEY`` (bold in DOT), with a box for a route's call that is
    no task of the graph (it runs only as an iteration); a route of ``None`` ends the loop."""
    drawn = {id(node.lazy) for node in nodes}
    bound = [node.lazy for node in nodes if node.lazy.jumps is not None]
    lines: list[str] = []
    while bound:
        lazy = bound.pop(0)
        for key, route in lazy.jumps.routes.items():
            if route is None:
                continue
            if id(route) not in drawn:
                drawn.add(id(route))
                if route.jumps is not None:
                    bound.append(route)
                if format == "dot":
                    label = _quote(f"{route.name}\\n(task)").replace("\\\\n", "\\n")
                    lines.append(f"  {_quote(route.task_id)} [label={label}, shape=box];")
                else:
                    lines.append(f"{route.task_id} [task {route.name}] (a loop's route)")
            if format == "dot":
                edge = _quote(f"jump: {key}")
                lines.append(
                    f"  {_quote(lazy.task_id)} -> {_quote(route.task_id)} [label={edge}, "
                    "style=bold];"
                )
            else:
                lines.append(f"{lazy.task_id}{_JUMPS}{route.task_id} ({key!r})")
    return lines


def dry_run(target: Any) -> None:
    """Print the plan ``target`` builds, nothing run (the Cascade engine's ``cs.dry_run``): each
    task on a line, numbered, in an order it may run in (what it waits for before it), with
    its kind and what it waits for, as :func:`visualize`'s text says."""
    lines = visualize(target, "text").splitlines()
    tasks = [line for line in lines if _JUMPS not in line]
    for index, line in enumerate(tasks, 1):
        print(f"[{index}/{len(tasks)}] {line}")
    for line in lines:
        if _JUMPS in line:  # a loop's jump: no step of the plan, where it may go on
            print(f"  {line}")
