"""A generated plan run on the real engine, what it did (its events and what went on the wire), and
where that differs from the reference (cascade_generated_reference)."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from cascade_generated_plans import DECIDED, Call, Loop, Map, Plan, build, reached
from cascade_generated_reference import (
    CONDITION,
    DECISION,
    ITERATION,
    NOT_NEEDED,
    NOT_ROUTED,
    UPSTREAM,
    Expected,
    Outcome,
    uses,
)

from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.interfaces.serving import PlanStep
from cascade.runtime import (
    DependencyMissingError,
    Engine,
    Event,
    RunStarted,
    TaskCompleted,
    TaskEvent,
    TaskFailedError,
    TaskHeld,
    TaskMapped,
    TaskRunning,
)

ENDS = {"COMPLETED", "FAILED", "SKIPPED", "CANCELLED"}


RUN_BOUND = 30.0
"""Seconds a generated run may take (they take milliseconds): a run that hangs fails the check."""


@dataclass
class Observed:
    """What a run did: its task events in order, its id, whether it failed, its result, and
    each task's last state on the wire."""

    events: list[TaskEvent] = field(default_factory=list)
    run_id: str = ""
    failed: bool = False
    missing: bool = False  # the run raised DependencyMissingError
    result: Any = None
    wire: dict[str, str] = field(default_factory=dict)


async def observe(
    plan: Plan, engine_options: dict[str, Any] | None = None, *, rerun_of: str | None = None
) -> Observed:
    """Run ``plan`` on an engine with an in-memory connector (and ``engine_options``), taking
    each hold's decisions as the plan says."""
    broker = InMemoryBroker()
    engine = Engine(
        InMemoryConnector(broker, presence=False),
        heartbeat_interval=None,
        summaries=False,
        **(engine_options or {}),
    )
    observed = Observed()
    holds: Counter[str] = Counter()
    nodes = {node.label: node for node in plan.nodes}
    loop = asyncio.get_running_loop()

    def decide(event: TaskHeld) -> None:
        node = nodes[event.task_name]
        assert isinstance(node, Call)
        decision = node.decisions[holds[event.task_id]]
        holds[event.task_id] += 1
        result = DECIDED if decision == "complete" else None
        engine.decide(event.run_id, event.task_id, decision, result=result)  # type: ignore[arg-type]

    def record(event: Event) -> None:
        if isinstance(event, RunStarted):
            observed.run_id = event.run_id
        elif isinstance(event, TaskEvent):
            observed.events.append(event)
            if isinstance(event, TaskHeld):
                loop.call_soon(decide, event)

    engine.events.subscribe(record)
    run = engine.run(build(plan), params=dict(plan.params), rerun_of=rerun_of)
    try:
        observed.result = await asyncio.wait_for(run, RUN_BOUND)
    except TaskFailedError:
        observed.failed = True
    except DependencyMissingError:
        observed.missing = True
    except asyncio.TimeoutError:
        last = [f"{type(e).__name__} {e.task_name}" for e in observed.events[-6:]]
        raise AssertionError(
            f"the run did not end in {RUN_BOUND} s (a hang); its last task events: {last}"
        ) from None
    for message in broker.history:
        if message.topic.endswith("/events"):
            body = json.loads(message.raw).get("body", {})
            if "task_id" in body and body.get("state") in ENDS:
                observed.wire[body["task_id"]] = body["state"]
    return observed


def reason(error: str) -> str:
    """The class of a skip's error."""
    if error == CONDITION:
        return CONDITION
    if error == NOT_ROUTED:
        return NOT_ROUTED
    if error.startswith(NOT_NEEDED + ":"):
        return NOT_NEEDED
    if error.startswith("upstream"):
        return UPSTREAM
    if error.startswith("its iteration"):
        return ITERATION
    return DECISION


def made(task_id: str) -> bool:
    """Whether ``task_id`` is a task the run made (a map's item, a loop's iteration), not one
    of the graph's."""
    return "[" in task_id or "@" in task_id


def disagreements(expected: Expected, observed: Observed) -> list[str]:
    """Where the run differs from the reference, each said in one line (none: it agrees)."""
    found: list[str] = []
    by_id: dict[str, list[tuple[int, TaskEvent]]] = {}
    for position, event in enumerate(observed.events):
        by_id.setdefault(event.task_id, []).append((position, event))
    ids = {
        events[0][1].task_name: task_id for task_id, events in by_id.items() if not made(task_id)
    }
    labels = {expected.plan.nodes[i].label: i for i in expected.outcomes}
    if set(ids) != set(labels):
        found.append(f"tasks: the run has {sorted(ids)}, the reference {sorted(labels)}")
    completed_at = {
        event.task_name: position
        for position, event in enumerate(observed.events)
        if isinstance(event, TaskCompleted) and not made(event.task_id)
    }
    for label in sorted(set(ids) & set(labels), key=lambda name: int(name[1:])):
        index = labels[label]
        outcome = expected.outcomes[index]
        task_id = ids[label]
        found += compare(label, outcome, by_id[task_id], observed.wire.get(task_id))
        started = [p for p, e in by_id[task_id] if isinstance(e, TaskRunning)]
        for need in sorted(outcome.needs):
            before = expected.plan.nodes[need].label
            if started and completed_at.get(before, len(observed.events)) > started[0]:
                found.append(f"{label} started before {before} (which it needs) completed")
        node = expected.plan.nodes[index]
        if isinstance(node, Map):
            items = sorted(
                (int(i[len(task_id) + 1 : -1]), events)
                for i, events in by_id.items()
                if i.startswith(task_id + "[")
            )
            want = outcome.items or ()
            if [i for i, _ in items] != list(range(len(want))):
                found.append(f"{label} made {len(items)} items, the reference {len(want)}")
            else:
                for (i, events), item in zip(items, want, strict=True):
                    wire = observed.wire.get(f"{task_id}[{i}]")
                    found += compare(f"{label}[{i}]", item, events, wire)
        if isinstance(node, Loop):
            found += compare_iterations(label, outcome, task_id, by_id, observed)
    if observed.failed != expected.failed:
        found.append(f"the run failed: {observed.failed}, the reference: {expected.failed}")
    elif observed.missing != expected.missing:
        found.append(
            f"the target has no result (DependencyMissingError): {observed.missing}, the "
            f"reference: {expected.missing}"
        )
    elif not expected.failed and not expected.missing and observed.result != expected.result:
        found.append(f"the run's result {observed.result!r}, the reference {expected.result!r}")
    return found


def compare_iterations(
    label: str,
    outcome: Outcome,
    task_id: str,
    by_id: dict[str, list[tuple[int, TaskEvent]]],
    observed: Observed,
) -> list[str]:
    """Where a loop's iterations differ from the reference's: their ids (``@2`` on, none
    where its call did not jump), each one's end, attempts and reuse, and its name; and the
    loop's call ending only after its last iteration."""
    found = []
    iterations = sorted(
        (int(i[len(task_id) + 1 :]), events)
        for i, events in by_id.items()
        if i.startswith(task_id + "@")
    )
    want = outcome.iterations or ()
    if [n for n, _ in iterations] != list(range(2, 2 + len(want))):
        ran = [f"@{n}" for n, _ in iterations]
        return [f"{label} made iterations {ran}, the reference {len(want)} (@2 on)"]
    for (n, events), iteration in zip(iterations, want, strict=True):
        wire = observed.wire.get(f"{task_id}@{n}")
        found += compare(f"{label}@{n}", iteration, events, wire)
        names = {e.task_name for _, e in events}
        if names != {label}:
            found.append(f"{label}@{n} is named {sorted(names)}, the reference {label}")
    if iterations:
        last = max(p for p, _ in iterations[-1][1])
        ended = [p for p, e in by_id[task_id] if e.state in ENDS]
        if ended and ended[-1] < last:
            found.append(f"{label} ended before its last iteration @{iterations[-1][0]}")
    return found


def compare(
    label: str, outcome: Outcome, events: list[tuple[int, TaskEvent]], wire: str | None
) -> list[str]:
    """Where one task's events differ from its expected outcome."""
    found = []
    ends = [e for _, e in events if e.state in ENDS]
    if not ends:
        return [f"{label} never ended"]
    last = ends[-1]
    state = last.state.lower()
    if state != outcome.state:
        found.append(f"{label} ended {state} ({last.error}), the reference: {outcome.state}")
    elif state == "skipped" and reason(last.error) not in outcome.why:
        found.append(f"{label} skipped ({last.error}), the reference: {sorted(outcome.why)}")
    attempts = sum(
        1 for _, e in events if isinstance(e, TaskRunning) and not isinstance(e, TaskMapped)
    )
    if attempts != outcome.attempts:
        found.append(f"{label} ran {attempts} attempt(s), the reference {outcome.attempts}")
    reused = isinstance(last, TaskCompleted) and (last.cached or last.reused_from is not None)
    if state == "completed" and reused != outcome.reused:
        found.append(f"{label} reused: {reused}, the reference: {outcome.reused}")
    if wire != last.state:
        found.append(f"{label} ended {last.state}, on the wire {wire}")
    return found


def start_disagreements(observed: Observed, starts: dict[tuple[str, int], float]) -> list[str]:
    """Where an attempt's ``RUNNING`` is not when its body started (``starts``, recorded by the
    bodies; :data:`SAID_WITHIN` seconds either way): said while it waited for a worker, or
    after it started."""
    found = []
    for event in observed.events:
        if type(event) is not TaskRunning:
            continue
        began = starts.get((event.task_id, event.attempt))
        if began is None:
            continue  # a map's own task or a loop's going on: no body of its own
        if abs(began - event.ts) > SAID_WITHIN:
            found.append(
                f"{event.task_name} ({event.task_id}) attempt {event.attempt} said RUNNING "
                f"{(began - event.ts) * 1000:+.1f} ms from its body's start"
            )
    return found


SAID_WITHIN = 0.05
"""How far an attempt's ``RUNNING`` may be from its body's start (a loaded machine's thread
switches; an attempt that waits for a worker waits for a body's :data:`WORK` or more)."""


def plan_disagreements(
    expected: Expected, kept: dict[int, Outcome], steps: list[PlanStep], rerun: Expected
) -> list[str]:
    """Where ``engine.plan`` differs from what the reference says a rerun reuses: every task
    that completed and was kept (a map whole), a loop whose call jumped (it goes on from that
    jump), and no other; and from what it skips as not needed (``rerun``: the rerun's
    outcomes), which it says so."""
    found = []
    labels = {expected.plan.nodes[i].label: i for i in expected.outcomes}
    for step in steps:
        index = labels.get(step.task_name)
        if index is None:
            found.append(f"the plan names {step.task_name}, which the graph has not")
            continue
        node = expected.plan.nodes[index]
        keeps = not isinstance(node, Call) or node.kept  # a tuple is never kept
        reuse = (kept[index].state == "completed" and keeps) or kept[index].iterations is not None
        if NOT_NEEDED in rerun.outcomes[index].why:
            if (step.action, step.why.split(":")[0]) != ("skip", NOT_NEEDED):
                found.append(f"the plan says {step.action} {step.task_name} ({step.why})")
            continue
        if (step.action == "reuse") != reuse:
            found.append(f"the plan says {step.action} {step.task_name} ({step.why})")
    return found


def rerun_disagreements(plan: Plan, steps: list[PlanStep], observed: Observed) -> list[str]:
    """Where a rerun did other than its plan (``steps``, made before it) says: a task run that
    the plan reuses (but a loop going on from its kept first jump) or skips; and a task run
    that is not the target's though every task of the graph that uses it was reused."""
    found = []
    ran = {
        e.task_name for e in observed.events if isinstance(e, TaskRunning) and not made(e.task_id)
    }
    reused = {
        e.task_name
        for e in observed.events
        if isinstance(e, TaskCompleted) and e.reused_from is not None and not made(e.task_id)
    }
    index = {node.label: i for i, node in enumerate(plan.nodes)}
    for step in steps:
        if step.action == "reuse" and isinstance(plan.nodes[index[step.task_name]], Loop):
            ran.discard(step.task_name)  # it goes on from its kept first jump, said RUNNING
        elif step.task_name in ran and step.action in ("reuse", "skip"):
            found.append(f"{step.task_name} ran, its plan says {step.action} ({step.why})")
    graph = reached(plan)
    for label in sorted(ran, key=lambda name: int(name[1:])):
        at = index[label]
        users = [plan.nodes[i].label for i in graph if at in uses(plan, i)]
        if at not in plan.target and users and all(user in reused for user in users):
            found.append(f"{label} ran, though every task that uses it was reused: {users}")
    return found
