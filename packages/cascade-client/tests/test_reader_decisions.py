"""A live run counts the decisions its engine applied on its held tasks, by kind and person,
from its task events' ``decided``: a resent copy counts once, a deadline's default is no one's
decision, and the people counted are bounded."""

from __future__ import annotations

import time
from datetime import datetime, timezone

from cascade.connector_kit.testing import telemetry
from cascade.interfaces import TaskStateEvent
from cascade.interfaces.commands import Decided
from cascade.reader import DecisionCount, ReaderModel, RunView

T0 = time.time()


def _decided(
    task_id: str, state: str, decision: str, by: str | None, **more: object
) -> TaskStateEvent:
    return TaskStateEvent(
        task_id=task_id,
        task_name=task_id.split("-")[0],
        state=state,  # type: ignore[arg-type]
        decided=Decided(decision=decision, attempt=1, by=by, **more),  # type: ignore[arg-type]
    )


def _run(*bodies: tuple[TaskStateEvent, int | None]) -> RunView:
    model = ReaderModel(clock=lambda: T0)
    stamp = datetime.now(timezone.utc)
    for body, seq in bodies:
        model.apply(telemetry(body, run_id="run-1", seq=seq, ts=stamp))
    return model.runs["run-1"]


def test_decisions_are_counted_by_kind_and_person_in_the_order_first_seen() -> None:
    run = _run(
        (_decided("transform-1", "SKIPPED", "skip", "ops-1"), 1),
        (_decided("transform-2", "COMPLETED", "complete", "ops-2"), 2),
        (_decided("transform-3", "SKIPPED", "skip", "ops-1"), 3),
        (_decided("load-1", "RUNNING", "retry", None), 4),
    )
    assert run.decisions() == [
        DecisionCount("skip", "ops-1", 2),
        DecisionCount("complete", "ops-2", 1),
        DecisionCount("retry", None, 1),
    ]
    assert [str(d) for d in run.decisions()] == [
        "2 skipped by ops-1",
        "1 completed by ops-2",
        "1 retried by someone unnamed",
    ]


def test_a_resent_copy_counts_once_numbered_or_not() -> None:
    skipped = _decided("transform-1", "SKIPPED", "skip", "ops-1")
    assert _run((skipped, 1), (skipped, 1)).decisions() == [DecisionCount("skip", "ops-1", 1)]
    assert _run((skipped, None), (skipped, None)).decisions() == [DecisionCount("skip", "ops-1", 1)]


def test_a_copy_arriving_after_a_later_state_counts_once() -> None:
    """The decision is the (task, attempt)'s: a copy of its event that arrives out of order (a
    resend after the retry's later event) is not a second one."""
    retried = _decided("load-1", "RUNNING", "retry", "ops-1")
    done = TaskStateEvent(task_id="load-1", task_name="load", state="COMPLETED")
    run = _run((retried, None), (done, None), (retried, None))
    assert run.decisions() == [DecisionCount("retry", "ops-1", 1)]


def test_a_deadlines_default_is_not_counted() -> None:
    deadline = TaskStateEvent(
        task_id="load-1",
        task_name="load",
        state="SKIPPED",
        decided=Decided(decision="skip", attempt=1, deadline=True),
    )
    assert _run((deadline, 1)).decisions() == []


def test_a_run_with_no_decision_has_none() -> None:
    plain = TaskStateEvent(task_id="load-1", task_name="load", state="COMPLETED")
    assert _run((plain, 1)).decisions() == []


def test_the_people_counted_are_bounded_the_rest_counted_as_others() -> None:
    bodies = [(_decided(f"t-{n}", "SKIPPED", "skip", f"ops-{n}"), n) for n in range(1, 21)]
    run = _run(*bodies)
    assert len(run.decisions()) == 16
    assert sum(d.count for d in run.decisions()) + run.decisions_others == 20
    assert run.decisions_others == 4


def test_the_decisions_outlive_the_runs_compaction() -> None:
    run = _run((_decided("transform-1", "SKIPPED", "skip", "ops-1"), 1))
    run.finish(T0)
    run.compact()
    assert run.decisions() == [DecisionCount("skip", "ops-1", 1)]
