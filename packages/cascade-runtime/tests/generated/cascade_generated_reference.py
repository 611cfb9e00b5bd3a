"""The documented meaning of a generated plan (docs/workflows.md), computed plainly: which tasks
run and how often, their results, how each ends and why, and the run's outcome and result.

It is demand-driven, as the docs say a run is: a task runs when the target needs it, directly or
as the route a router chooses for a task that is needed; a task the graph holds that nothing
needs so ends ``SKIPPED`` (``not routed``), and in a rerun a task every task that uses it
reused, or not needed itself, ends ``not needed`` (docs/results.md). A task is skipped by an
upstream that did not complete only when it needs that upstream (an argument, its condition, a
router's selector or its chosen route, a task it runs after), never through a route not chosen.
A task it runs after (``after``, ``sequence``) is needed as an argument is, and gives it no
value.

A loop (docs/workflows.md, "Loops") is its call and then its iterations, ``<task_id>@2``,
``@3`` ..., each a task of the loop's task's name: its call stays ``RUNNING`` until the last
ends, and completes with that one's result (a jump to ``None``: the jump's data). An iteration
that fails fails the run and skips the loop (and what needs it); its call failing fails it as
any task's. A rerun from a failure reads back the steps its run finished (the call's jump
too, said as one ``RUNNING``) and runs on from the one that failed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cascade_generated_plans import (
    DECIDED,
    FLAG_PARAMS,
    KEY_PARAMS,
    Call,
    Choice,
    Const,
    Loop,
    Map,
    NodeRef,
    ParamRef,
    Plan,
    Ref,
    RouterRef,
    loop_value,
    number,
    reached,
    references,
)

CONDITION = "condition false"
NOT_ROUTED = "not routed"
NOT_NEEDED = "not needed"
UPSTREAM = "upstream"
DECISION = "decided"
ITERATION = "an iteration ended without a result"


@dataclass
class Outcome:
    """How one task ends: ``state`` (``completed``, ``failed``, ``skipped``), the reasons a
    skip may give (more than one where the docs allow either), its value, its attempts, the
    nodes it needs completed before it starts, a map's items, and a loop's iterations (its
    steps after its call, ``@2`` first; ``None``: its call did not jump)."""

    state: str
    why: frozenset[str] = frozenset()
    value: Any = None
    attempts: int = 0
    needs: frozenset[int] = frozenset()
    items: tuple[Outcome, ...] | None = None
    reused: bool = False
    iterations: tuple[Outcome, ...] | None = None


@dataclass
class Expected:
    """A run's documented outcome: each node of the graph's ``Outcome`` by index, whether the
    run fails, and its result when it succeeds."""

    outcomes: dict[int, Outcome]
    failed: bool
    result: list[Any] | None
    plan: Plan = field(repr=False)
    missing: bool = False  # no task failed, an item of the target has no result


def uses(plan: Plan, index: int) -> set[int]:
    """The nodes node ``index`` takes in any way: its arguments, the selectors and routes of
    its routers (every route), its condition, what it maps over, and what it runs after."""
    found = set(plan.order(index))
    stack: list[Ref] = list(references(plan.nodes[index]))
    while stack:
        ref = stack.pop()
        if isinstance(ref, NodeRef):
            found.add(ref.index)
        elif isinstance(ref, RouterRef):
            stack.append(ref.selector)
            stack.extend(route for _, route in ref.routes)
    return found


class _Missing:
    """A router's selector that is no key: the task taking the router fails."""


def expect(
    plan: Plan, *, kept: Mapping[int, Outcome] | None = None, rerun: bool = False
) -> Expected:
    """What running ``plan`` does. ``kept``: the outcomes of an earlier run whose results are
    in the store: a rerun of it (``rerun``) reuses every task that completed, another run
    takes them for the tasks cached (``with_cache``)."""
    return _Interpreter(plan, kept, rerun).expected()


class _Interpreter:
    def __init__(self, plan: Plan, kept: Mapping[int, Outcome] | None, rerun: bool) -> None:
        self.plan = plan
        self.reruns = rerun
        self.params = {**KEY_PARAMS, **FLAG_PARAMS, **dict(plan.params)}
        self.kept = kept
        self.done: dict[int, Outcome] = {}

    def expected(self) -> Expected:
        for index in self.plan.target:
            self.node(index)
        outcomes = dict(self.done)
        graph = reached(self.plan)
        for index in sorted(graph, reverse=True):  # what uses a task comes first
            if self.needless(index, graph, outcomes):
                outcomes[index] = Outcome("skipped", frozenset({NOT_NEEDED}))
            elif index not in outcomes:  # no task the run needs takes it
                outcomes[index] = Outcome("skipped", frozenset({NOT_ROUTED}))
        failed = any(
            o.state == "failed"
            or any(i.state == "failed" for i in (*(o.items or ()), *(o.iterations or ())))
            for o in outcomes.values()
        )
        result = None if failed else [outcomes[i].value for i in self.plan.target]
        # a target skipped raises DependencyMissingError, unless a task it runs after was
        # skipped (a sequence stopped): that one gives None
        missing = not failed and any(
            outcomes[i].state == "skipped"
            and not any(outcomes[before].state == "skipped" for before in self.plan.order(i))
            for i in self.plan.target
        )
        return Expected(outcomes, failed, result, self.plan, missing)

    def needless(self, index: int, graph: set[int], outcomes: dict[int, Outcome]) -> bool:
        """Whether a rerun does not run node ``index`` (it ends skipped, not needed): not
        reused, not the target's, and every task of the graph that uses it reused or not
        needed (``outcomes``: theirs, said already)."""
        found = outcomes.get(index)
        if not self.reruns or index in self.plan.target or (found and found.reused):
            return False
        users = [i for i in graph if index in uses(self.plan, i)]
        return bool(users) and all(
            outcomes[i].reused or NOT_NEEDED in outcomes[i].why for i in users
        )

    def node(self, index: int) -> Outcome:
        if index not in self.done:
            node = self.plan.nodes[index]
            if isinstance(node, Choice):
                outcome = self.choice(node)
            elif isinstance(node, Call):
                outcome = self.call(node)
            elif isinstance(node, Loop):
                outcome = self.loop(node)
            else:
                outcome = self.map(node)
            self.done[index] = outcome
        return self.done[index]

    def ref(self, ref: Ref, needs: set[int]) -> Outcome | _Missing:
        """The value ``ref`` gives its task, as an ``Outcome`` of what it waited for."""
        if isinstance(ref, Const):
            return Outcome("completed", value=ref.value)
        if isinstance(ref, ParamRef):
            return Outcome("completed", value=self.params[ref.name])
        if isinstance(ref, NodeRef):
            needs.add(ref.index)
            return self.node(ref.index)
        chooser = self.ref(ref.selector, needs)
        assert isinstance(chooser, Outcome)
        if chooser.state != "completed":  # no route chosen: what only they need is not routed
            return Outcome("skipped", frozenset({UPSTREAM}))
        routes = dict(ref.routes)
        if chooser.value not in routes:
            return _Missing()
        return self.ref(routes[chooser.value], needs)

    def inputs(
        self, index: int, refs: tuple[Ref, ...], condition: NodeRef | ParamRef | None
    ) -> tuple[list[Any], set[int], Outcome | None]:
        """What node ``index`` waits for: its inputs' values, the nodes it needs, and the
        outcome it ends with before any attempt (skipped, or failed for a missing route), if
        any."""
        needs: set[int] = set()
        values: list[Any] = []
        why: set[str] = set()
        missing = False
        for before in self.plan.order(index):
            needs.add(before)
            if self.node(before).state != "completed":
                why.add(UPSTREAM)
        for ref in refs:
            got = self.ref(ref, needs)
            if isinstance(got, _Missing):
                missing = True
            elif got.state != "completed":
                why.add(UPSTREAM)
            else:
                values.append(got.value)
        if condition is not None:
            decided = self.ref(condition, needs)
            assert isinstance(decided, Outcome)
            if decided.state != "completed":
                why.add(UPSTREAM)
            elif not decided.value:
                why.add(CONDITION)
        if missing and not why:
            return values, needs, Outcome("failed", needs=frozenset(needs))
        if why:
            # with several reasons the docs do not say which is told: any of them is
            return values, needs, Outcome("skipped", frozenset(why), needs=frozenset(needs))
        return values, needs, None

    def previous(self, node: Call | Choice | Map | Loop) -> Outcome | None:
        """The kept outcome this node reuses, if any."""
        if self.kept is None:
            return None
        index = self.plan.nodes.index(node)
        earlier = self.kept.get(index)
        return earlier if earlier is not None and earlier.state == "completed" else None

    def choice(self, node: Choice) -> Outcome:
        _, needs, early = self.inputs(self.plan.nodes.index(node), (), None)
        frozen = frozenset(needs)
        if early is not None:
            return early
        if (earlier := self.previous(node)) is not None and self.reruns:
            return Outcome("completed", value=earlier.value, needs=frozen, reused=True)
        if node.fails:
            return Outcome("failed", attempts=1, needs=frozen)
        return Outcome("completed", value=node.value, attempts=1, needs=frozen)

    def call(self, node: Call) -> Outcome:
        values, needs, early = self.inputs(self.plan.nodes.index(node), node.args, node.condition)
        if early is not None:
            return early
        frozen = frozenset(needs)
        earlier = self.previous(node)
        if earlier is not None and (self.reruns or node.cache) and node.kept:
            return Outcome("completed", value=earlier.value, needs=frozen, reused=True)
        numbers = [number(node.label, tuple(values), k) for k in range(node.width)]
        value: Any = numbers if node.kept else tuple(numbers)
        if node.failures < node.attempts:
            return Outcome("completed", value=value, attempts=node.failures + 1, needs=frozen)
        attempts = node.attempts
        for decision in node.decisions:
            if decision == "retry":
                attempts += 1
                if attempts > node.failures:
                    return Outcome("completed", value=value, attempts=attempts, needs=frozen)
            elif decision == "skip":
                return Outcome("skipped", frozenset({DECISION}), attempts=attempts, needs=frozen)
            elif decision == "complete":
                return Outcome("completed", value=DECIDED, attempts=attempts, needs=frozen)
            else:
                break
        return Outcome("failed", attempts=attempts, needs=frozen)

    def map(self, node: Map) -> Outcome:
        values, needs, early = self.inputs(
            self.plan.nodes.index(node), (node.over,), node.condition
        )
        if early is not None:
            return early
        frozen = frozenset(needs)
        earlier = self.previous(node)
        if earlier is not None and self.reruns:
            return Outcome("completed", value=earlier.value, needs=frozen, reused=True)
        [over] = values
        kept_items = (
            self.kept[self.plan.nodes.index(node)].items
            if self.reruns and self.kept is not None and self.plan.nodes.index(node) in self.kept
            else None
        )
        items = []
        for i, x in enumerate(over):
            before = kept_items[i] if kept_items and i < len(kept_items) else None
            if before is not None and before.state == "completed":
                items.append(Outcome("completed", value=before.value, reused=True))
            elif node.failing and x % 3 == 0:
                items.append(Outcome("failed", attempts=node.attempts))
            else:
                items.append(Outcome("completed", value=number(node.label, x), attempts=1))
        if all(item.state == "completed" for item in items):
            return Outcome(
                "completed", value=[i.value for i in items], needs=frozen, items=tuple(items)
            )
        return Outcome("skipped", frozenset({UPSTREAM}), needs=frozen, items=tuple(items))

    def loop(self, node: Loop) -> Outcome:
        index = self.plan.nodes.index(node)
        values, needs, early = self.inputs(index, node.args, node.condition)
        if early is not None:
            return early
        frozen = frozenset(needs)
        earlier = self.kept.get(index) if self.reruns and self.kept is not None else None
        value = loop_value(node.label, node.width, node.steps, tuple(values))
        if earlier is not None and earlier.state == "completed" and earlier.iterations is None:
            # its call returned the value: kept and reused as any task's result
            return Outcome("completed", value=earlier.value, needs=frozen, reused=True)
        if earlier is not None and earlier.iterations is not None:  # its call's jump, read back
            first = Outcome("completed", attempts=1)
        else:
            first = self.step(node, 1)
        if first.state == "failed":
            return Outcome("failed", attempts=first.attempts, needs=frozen)
        kept_steps = earlier.iterations or () if earlier is not None else ()
        iterations: list[Outcome] = []
        for step in range(2, node.steps + 1):
            before = kept_steps[step - 2] if step - 2 < len(kept_steps) else None
            if before is not None and before.state == "completed":
                ran = Outcome("completed", reused=True)
            else:
                ran = self.step(node, step)
            iterations.append(ran)
            if ran.state == "failed":
                return Outcome(
                    "skipped",
                    frozenset({UPSTREAM, ITERATION}),
                    attempts=first.attempts,
                    needs=frozen,
                    iterations=tuple(iterations),
                )
        jumped = tuple(iterations) if node.steps > 1 or node.exits else None
        return Outcome(
            "completed", value=value, attempts=first.attempts, needs=frozen, iterations=jumped
        )

    @staticmethod
    def step(node: Loop, step: int) -> Outcome:
        """Step ``step`` of loop ``node`` run: how it ends and its attempts."""
        if step != node.failing:
            return Outcome("completed", attempts=1)
        if node.failures < node.attempts:
            return Outcome("completed", attempts=node.failures + 1)
        return Outcome("failed", attempts=node.attempts)
