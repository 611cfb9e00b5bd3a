"""What a rerun does with each task: reuse its stored result, run it, force it, or skip it (not
routed, or not needed: every task that uses it is reused), and why."""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from typing import Any, Literal

from cascade.interfaces.serving import PlanStep
from cascade.interfaces.wire import RerunMode

from .._errors import RerunError
from ..workflow._graph import Graph, Node
from ..workflow._param import Param
from ..workflow._router import NOT_ROUTED, Router
from ..workflow._routing import Demand
from ..workflow._run_state import RunState, resolve
from ..workflow._task import LazyResult, MappedLazyResult
from ._fingerprints import Prints, fingerprint_call
from ._results import UNFINISHED, ManifestTask, RunManifest

__all__ = [
    "NOT_NEEDED",
    "RERUN_MODES",
    "Step",
    "check_rerun",
    "kept_results",
    "map_items",
    "plan_rerun",
    "reused_loops",
    "reused_selectors",
    "skip_not_needed",
    "skip_not_routed",
]

RERUN_MODES = ("failure", "all", "from")
_WHY_LIMIT = 1000
NOT_NEEDED = "not needed"
"""How a task a rerun does not run, no task it runs needing it, ends ``SKIPPED``: its error
begins so (:func:`skip_not_needed`)."""
_ENDED = {
    "FAILED": "it had failed",
    "CANCELLED": "it was cancelled (the run stopped)",
}
_ITEMS_ENDED = {
    "FAILED": "had failed",
    "SKIPPED": "had been skipped",
    "CANCELLED": "had been cancelled",
}


class Step:
    """What a rerun does with one node: ``action`` (``reuse``, ``run``, ``force``), ``why`` and,
    for a ``reuse``, the run whose result it takes (``from_run``) and the fingerprint."""

    __slots__ = (
        "action",
        "fingerprint",
        "from_run",
        "items",
        "items_reused",
        "node",
        "sha256",
        "size",
        "why",
    )

    def __init__(
        self,
        node: Node,
        action: Literal["run", "reuse", "force", "skip"],
        why: str,
        kept: ManifestTask | None = None,
    ) -> None:
        self.node = node
        self.action = action
        self.why = why[:_WHY_LIMIT]
        self.from_run = None if kept is None else kept.from_run
        self.fingerprint = None if kept is None else kept.fingerprint
        self.size = None if kept is None else kept.size
        self.sha256 = None if kept is None else kept.sha256
        # a map that runs again: how many items it will make, and reuse (None: not known)
        self.items: int | None = None
        self.items_reused: int | None = None

    def refused(self, why: str) -> None:
        """The stored result this step would reuse is not to be believed: it runs (``force``)
        and ``why`` says so."""
        self.action, self.why = "force", why[:_WHY_LIMIT]
        self.from_run = self.fingerprint = self.size = self.sha256 = None

    def public(self) -> PlanStep:
        """The step as a dry run's answer lists it."""
        lazy = self.node.lazy
        return PlanStep(
            task_id=lazy.task_id,
            task_name=lazy.name,
            action=self.action,
            why=self.why,
            from_run=self.from_run,
            items=self.items,
            items_reused=self.items_reused,
        )

    def say_items(self, items: list[Step], key: str, manifest: RunManifest) -> None:
        """This map runs again making ``items`` (their steps, their kept results proven): how
        many, how many are reused, and why, from how its items ended in ``manifest``'s run
        (``1 of 200 items had failed; 199 kept will be reused, 1 runs again``)."""
        reused = sum(item.action == "reuse" for item in items)
        before: list[str] = []
        while (entry := manifest.tasks.get(f"{key}[{len(before)}]")) is not None:
            before.append(entry.state)
        ended = Counter(state for state in before if state in _ITEMS_ENDED)
        said = [f"{n:,} of {len(before):,} items {_ITEMS_ENDED[at]}" for at, n in ended.items()]
        runs = len(items) - reused
        again = f"{reused:,} kept will be reused, {runs:,} {'runs' if runs == 1 else 'run'} again"
        self.why = "; ".join([*(said or [self.why]), again])[:_WHY_LIMIT]
        self.items, self.items_reused = len(items), reused


def check_rerun(rerun: object, from_task: object) -> None:
    """``ValueError`` for a ``rerun`` mode that is not one, or a ``from_task`` without
    ``rerun="from"`` (or the other way round)."""
    if rerun not in RERUN_MODES:
        raise ValueError(f"rerun must be one of {', '.join(RERUN_MODES)}, not {rerun!r}")
    if (rerun == "from") != (from_task is not None):
        raise ValueError('from_task goes with rerun="from", and only with it')


def kept_results(manifest: RunManifest) -> dict[str, ManifestTask]:
    """The results ``manifest``'s run kept that a rerun may reuse (a digest to prove each), by
    fingerprint."""
    kept: dict[str, ManifestTask] = {}
    for task in manifest.tasks.values():
        if task.fingerprint and task.from_run and task.sha256 and task.size is not None:
            kept.setdefault(task.fingerprint, task)
    return kept


def map_items(node: Node, state: RunState, code: str, kept: dict[str, ManifestTask]) -> list[Step]:
    """The steps of the items map ``node`` makes, its upstream results known (``state``'s
    ``result``, its params bound): ``reuse`` those whose result is in ``kept``
    (:func:`kept_results`; still to prove), ``run`` the others; ``MapError`` where its lists
    cannot be mapped. An item is its task called on its values, as the run makes it."""
    lazy = node.lazy
    assert isinstance(lazy, MappedLazyResult)
    rows = lazy.items(resolve(lazy.kwargs, state))
    steps = []
    for index, row in enumerate(rows):
        call = LazyResult(lazy.task, (), row, f"{lazy.task_id}[{index}]")
        item = Node(call, -1, (node, index))  # planned, never run: no state of a run
        fingerprint, why_not = fingerprint_call(item.lazy, code)
        found = kept.get(fingerprint) if fingerprint is not None else None
        if found is not None:
            steps.append(Step(item, "reuse", "unchanged", found))
        else:
            steps.append(Step(item, "run", f"not reusable: {why_not}" if why_not else "new"))
    return steps


def _downstream(graph: Graph, keys: list[str], manifest: RunManifest, from_task: str) -> set[int]:
    """The nodes ``from_task`` names (a task id of this run or of the rerun one, a name or a
    stable key) and every node downstream of them, by ``id``."""
    wanted = {from_task}
    wanted |= {key for key, task in manifest.tasks.items() if task.task_id == from_task}
    start = [
        node
        for node, key in zip(graph.nodes, keys, strict=True)
        if node.lazy.task_id == from_task or node.lazy.name == from_task or key in wanted
    ]
    if not start:
        raise RerunError(f"no task {from_task!r} in the workflow (a task's id, name or key)")
    found: set[int] = set()
    stack = list(start)
    while stack:
        node = stack.pop()
        if id(node) not in found:
            found.add(id(node))
            stack.extend(node.dependents)
    return found


def _why_run(
    graph: Graph,
    node: Node,
    key: str,
    code: str,
    fingerprint: str,
    entry: ManifestTask | None,
    manifest: RunManifest,
    changed: dict[int, str],
) -> str:
    """Why a task with no reusable result in ``manifest`` runs."""
    short = manifest.run_id[:12]
    if entry is None:
        if manifest.status == UNFINISHED:
            return f"run {short} kept no result of it (that run did not finish)"
        return f"new: run {short} had no task {key}"
    if entry.state == "SKIPPED":
        return _why_skipped(graph, node, entry.skipped)
    if entry.state in _ENDED:
        return _ENDED[entry.state]
    if entry.state != "COMPLETED":
        return f"it had not completed ({entry.state})"
    if entry.fingerprint is None:
        return f"it was not reusable in run {short}: {entry.why_not or 'no fingerprint'}"
    if entry.fingerprint == fingerprint:
        return f"its result was not kept: {entry.not_kept or 'not stored'}"
    if entry.code and entry.code != code:
        return "its code changed"
    upstream = [changed[id(dep)] for dep in node.deps if id(dep) in changed]
    if upstream:
        return f"its input changed: upstream {', '.join(upstream)} changed"
    return "its input changed: its arguments"


def _why_skipped(graph: Graph, node: Node, error: str | None) -> str:
    """Why a task that ended ``SKIPPED`` with ``error`` (its manifest's ``skipped``; ``None``
    from engines that did not say) runs in a rerun: said as that skip's cause was."""
    if error is None:
        return "it was skipped"
    if error == NOT_ROUTED:
        return f"it was not routed: {_routers_of(graph, node)} did not choose it"
    if error.startswith("upstream task ") and error.endswith(" failed"):
        return "it was skipped (a task it needs had failed)"
    return f"it was skipped ({error})"


def _routers_of(graph: Graph, node: Node) -> str:
    """The routers through which the graph takes routed ``node``, by what selects (``its
    router on pick``, ``its router on parameter dest``)."""
    found: dict[str, None] = {}
    claims = graph.routing.claims if graph.routing is not None else {}
    stack = [node]
    seen = {id(node)}
    while stack:
        at = stack.pop()
        for consumer, path in claims.get(id(at), ()):
            for router, _ in path:
                found[_selects(router)] = None
            if id(consumer) in claims and id(consumer) not in seen:  # routed through it too
                seen.add(id(consumer))
                stack.append(consumer)
    if not found:
        return "its router"
    return "its router on " + " or on ".join(found)


def _selects(router: Router[Any]) -> str:
    selector = router.selector
    if isinstance(selector, LazyResult):
        return selector.name
    if isinstance(selector, Param):
        return f"parameter {selector.name}"
    if isinstance(selector, Router):
        return f"a router on {_selects(selector)}"
    return repr(selector)[:60]


def plan_rerun(
    graph: Graph,
    prints: Prints,
    manifest: RunManifest,
    rerun: RerunMode,
    from_task: str | None,
) -> list[Step]:
    """Each node's :class:`Step`, in graph order, for a rerun of ``manifest``'s run.

    A task whose fingerprint is one the manifest kept a result for is reused (``reuse``), unless
    ``rerun`` forces it (``all``; ``from``: ``from_task`` and what is downstream of it) or the
    manifest names no digest to check its file against: ``force``. Every other task runs
    (``run``), the manifest saying why: it had failed, it is new, its code or its input
    changed, ... A ``reuse`` still has its file to prove (:func:`~._run_results.read_kept`).
    """
    check_rerun(rerun, from_task)
    keys = prints.keys
    forced = _downstream(graph, keys, manifest, from_task) if from_task is not None else set()
    kept: dict[str, ManifestTask] = {}
    for task in manifest.tasks.values():
        if task.fingerprint and task.from_run:
            kept.setdefault(task.fingerprint, task)
    # the tasks whose fingerprint is not the one they had in that run: their key, by node
    changed: dict[int, str] = {}
    steps = []
    for node, key, code, fingerprint, why_not in zip(
        graph.nodes, keys, prints.codes, prints.fingerprints, prints.why_not, strict=True
    ):
        entry = manifest.tasks.get(key)
        if entry is None or entry.fingerprint != fingerprint:
            changed[id(node)] = key
        found = kept.get(fingerprint) if fingerprint is not None else None
        if fingerprint is None:
            step = Step(node, "run", f"not reusable: {why_not}")
        elif found is None:
            why = _why_run(graph, node, key, code, fingerprint, entry, manifest, changed)
            if id(node) in forced and type(node.lazy) is MappedLazyResult:
                # it makes its items again: forced, none of its kept items is reused
                step = Step(node, "force", f"rerun from {from_task}; {why}")
            else:
                step = Step(node, "run", why)
        elif rerun == "all":
            step = Step(node, "force", "rerun all")
        elif id(node) in forced:
            step = Step(node, "force", f"rerun from {from_task}")
        elif found.sha256 is None or found.size is None:
            why = f"its stored result (from run {str(found.from_run)[:12]}) has no digest to check"
            step = Step(node, "force", why)
        else:
            step = Step(node, "reuse", "unchanged", found)
        steps.append(step)
    return steps


def skip_not_needed(graph: Graph, steps: list[Step], going_on: Collection[int] = ()) -> None:
    """Make ``skip`` the step of each task the rerun would run (``run``, ``force``, or a reused
    loop in ``going_on``) that no task it runs needs: not one of the target's, and every task
    that takes it (as an argument, its condition, a router's selector or route, an amount, or
    runs after it) is reused or not needed itself. ``steps``: the plan, its kept results
    proven (a refused one runs, and what it takes is needed); ``going_on``: the ``id`` of each
    reused loop that goes on from its kept first jump (it runs: what it takes is needed). A
    task whose needs the routers decide as the rerun goes (a route of a task that runs) is
    needed: it runs where chosen."""
    by_node = {id(step.node): step for step in steps}
    roots = graph.roots
    runs: set[int] = set()  # the nodes the rerun runs, by id
    for step in reversed(steps):  # dependents first
        node = step.node
        if step.action == "reuse" and id(node) not in going_on:
            continue
        if step.action not in ("run", "force", "reuse"):
            continue
        takers = node.dependents
        if id(node.lazy) in roots or not takers or any(id(t) in runs for t in takers):
            runs.add(id(node))
            continue
        reused = all(by_node[id(t)].action == "reuse" for t in takers)
        why = f"{NOT_NEEDED}: every task that uses it is reused" + (
            "" if reused else " or not needed"
        )
        if step.action == "force":  # its stored result was not believed: still said
            why = f"{why}; {step.why}"
        step.action, step.why = "skip", why[:_WHY_LIMIT]
        step.from_run = step.fingerprint = step.size = step.sha256 = None
        step.items = step.items_reused = None


def skip_not_routed(state: RunState, steps: list[Step], reused: list[tuple[Step, Any]]) -> None:
    """Make ``skip`` the step of each task the rerun will end ``not routed`` (no task it needs
    takes it, as its routers' params, values and ``reused`` selectors' kept values tell before
    it starts), and say of each task whose routes wait on a task that runs that it runs only
    where chosen. For a plan only: it decides the routed nodes in ``state``, the plan's own."""
    graph = state.graph
    if graph.routing is None:
        return
    by_node = {id(step.node): step for step in steps}
    for step, value in reused:  # as the rerun will have them at its start
        state.result[step.node.index], state.done[step.node.index] = value, True
    for step in steps:  # not needed (skip_not_needed): ended before the routers decide
        if step.action == "skip":
            at = step.node.index
            state.done[at] = state.skipped[at] = True

    def skip(node: Node) -> None:
        step = by_node[id(node)]
        if step.action == "skip":
            return  # not needed: ended so before its routers chose, as in the rerun
        step.action, step.why = "skip", f"{NOT_ROUTED}: no task the rerun needs takes it"
        step.from_run = step.fingerprint = step.size = step.sha256 = None

    Demand(graph.routing, state, lambda node: None, skip).start()
    for node in graph.routing.routed:
        step = by_node[id(node)]
        if state.wanted[node.index] is None and step.action in ("run", "force"):
            step.why = f"{step.why}, where its router chooses it"[:_WHY_LIMIT]


def reused_selectors(graph: Graph, steps: list[Step]) -> list[Step]:
    """The ``reuse`` steps of the tasks whose values choose routes (their kept values tell a
    plan which routes the rerun takes)."""
    routing = graph.routing
    if routing is None:
        return []
    return [s for s in steps if s.action == "reuse" and id(s.node) in routing.watchers]


def reused_loops(steps: list[Step]) -> list[Step]:
    """The ``reuse`` steps of loops (a kept value that is the loop's first jump goes on from
    it: what the loop takes is needed)."""
    return [s for s in steps if s.action == "reuse" and s.node.lazy.jumps is not None]
