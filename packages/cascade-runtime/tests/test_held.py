"""A failed task held for a decision: it waits, the run lives, and retry, skip, complete or fail
ends the hold (the first decision wins; a request id applies once; a stale attempt is refused)."""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any

import pytest

from cascade.interfaces.commands import ControlError, Decided
from cascade.runtime import (
    DependencyMissingError,
    Engine,
    RetryPolicy,
    RunCancelledError,
    RunStarted,
    TaskCompleted,
    TaskEvent,
    TaskFailed,
    TaskFailedError,
    TaskHeld,
    TaskRunning,
    TaskSkipped,
    task,
)
from cascade.runtime.testing import EventRecorder


class Flaky:
    """A cause that fails its first ``failures`` calls, then is fixed."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    def __call__(self, n: int) -> int:
        self.calls += 1
        if self.calls <= self.failures:
            raise ValueError(f"row {self.calls} has a negative amount")
        return n * 2


class Started:
    """A run under way, its events recorded."""

    def __init__(self, engine: Engine, target: Any) -> None:
        self.engine = engine
        self.recorder = EventRecorder()
        engine.events.subscribe(self.recorder)
        self.task = asyncio.create_task(engine.run(target))

    @property
    def run_id(self) -> str:
        (started,) = [e for e in self.recorder.events if isinstance(e, RunStarted)]
        return started.run_id

    def of(self, kind: type[TaskEvent], name: str | None = None) -> list[Any]:
        return [
            e
            for e in self.recorder.events
            if isinstance(e, kind) and (name is None or e.task_name == name)
        ]

    async def held(self, count: int = 1) -> list[TaskHeld]:
        await self.recorder.until(lambda: len(self.of(TaskHeld)) >= count)
        return self.of(TaskHeld)


def workflow(cause: Flaky, **options: Any) -> tuple[Any, Any]:
    """``report(load(4))`` and ``side(1)``; ``load`` fails as ``cause`` does."""
    reported: list[int] = []

    @task(name="load", **options)
    def load(n: int) -> int:
        return cause(n)

    @task(name="report")
    async def report(value: int) -> str:
        reported.append(value)
        return f"report of {value}"

    @task(name="side")
    async def side(n: int) -> int:
        return n

    return [report(load(4)), side(1)], reported


def test_bad_hold_options_raise_naming_the_parameter() -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"on_failure": "retry"}, "on_failure"),
        ({"hold_timeout": 0}, "hold_timeout"),
        ({"hold_timeout": -1.0}, "hold_timeout"),
        ({"hold_timeout": math.inf}, "hold_timeout"),
        ({"hold_timeout": math.nan}, "hold_timeout"),
        ({"hold_default": "complete"}, "hold_default"),
    ]
    for kwargs, name in cases:
        with pytest.raises(ValueError, match=name):
            Engine(**kwargs)
        with pytest.raises(ValueError, match=name):
            task(**kwargs)(lambda: 1)
    held = task(on_failure="hold", hold_timeout=60, hold_default="skip")(lambda: 1)
    again = held.with_retry(3)
    assert (again.on_failure, again.hold_timeout, again.hold_default) == ("hold", 60.0, "skip")
    assert (task(lambda: 1).on_failure, Engine().hold_defaults.on_failure) == (None, "fail")


async def test_a_held_task_waits_with_its_failure_and_the_rest_goes_on() -> None:
    """BLOCKED with a decision hold (attempt, deadline, default), the failure's error and
    exception; the independent branch completes; the dependent waits; the run lives."""
    cause = Flaky(failures=10)
    target, reported = workflow(cause)
    run = Started(Engine(on_failure="hold", hold_timeout=600), target)
    before = time.time()
    (held,) = await run.held()
    await run.recorder.until(lambda: bool(run.of(TaskCompleted, "side")))
    assert held.state == "BLOCKED"
    assert held.task_name == "load"
    assert held.attempt == 1
    (hold,) = held.held_by
    assert (hold.type, hold.attempt, hold.default) == ("decision", 1, "fail")
    assert hold.deadline is not None
    assert before + 600 <= hold.deadline <= time.time() + 600
    assert held.error == "ValueError: row 1 has a negative amount"
    assert isinstance(held.exception, ValueError)
    assert not run.task.done()
    assert reported == []
    assert run.engine.stats.held == 1
    reply = run.engine.decide(run.run_id, "load", "fail", issued_by="alice", reason="bad data")
    assert reply is not None
    assert reply.applied
    with pytest.raises(TaskFailedError):
        await run.task
    (failed,) = run.of(TaskFailed, "load")
    assert failed.error == held.error
    assert failed.exception is held.exception
    assert failed.decided == reply.decided
    assert reply.decided is not None
    assert reply.decided.by == "alice"
    (skipped,) = run.of(TaskSkipped, "report")
    assert skipped.error == f"upstream task 'load' ({held.task_id}) failed"


async def test_the_task_option_overrides_the_engine_and_fail_stays_the_default() -> None:
    target, _ = workflow(Flaky(failures=1), on_failure="fail")
    with pytest.raises(TaskFailedError):
        await Engine(on_failure="hold").run(target)
    target, _ = workflow(Flaky(failures=1))
    with pytest.raises(TaskFailedError):
        await Engine().run(target)


async def test_retry_gives_one_attempt_and_failing_again_holds_at_the_next() -> None:
    """Automatic retries first (attempts 1, 2), then held at 2; a retry runs attempt 3 once
    (its RUNNING carries the decision) and, failing, is held at 3; the next retry succeeds."""
    cause = Flaky(failures=3)
    target, reported = workflow(cause, on_failure="hold", retry=RetryPolicy(max_attempts=2))
    run = Started(Engine(), target)
    (first,) = await run.held()
    assert first.attempt == 2
    assert cause.calls == 2
    reply = run.engine.decide(run.run_id, "load", "retry", issued_by="alice", reason="API back")
    assert reply is not None
    assert reply.applied
    assert reply.attempt == 2
    held = await run.held(2)
    assert (held[1].attempt, cause.calls) == (3, 3), "one attempt per retry decision"
    assert held[1].held_by[0].attempt == 3
    running = [e for e in run.of(TaskRunning, "load") if e.decided is not None]
    assert [(e.attempt, e.decided) for e in running] == [(3, reply.decided)]
    again = run.engine.decide(run.run_id, "load", "retry", attempt=3)
    assert again is not None
    assert again.applied
    assert await run.task == ["report of 8", 1]
    assert reported == [8]
    assert (run.engine.stats.held, run.engine.stats.decisions) == (2, 2)


async def test_skip_ends_it_skipped_its_dependents_too_and_the_run_succeeds() -> None:
    target, reported = workflow(Flaky(failures=10), on_failure="hold")
    run = Started(Engine(), target)
    (held,) = await run.held()
    reply = run.engine.decide(run.run_id, held.task_id, "skip", issued_by="bob", reason="today")
    assert reply is not None
    assert reply.applied
    with pytest.raises(DependencyMissingError) as missing:  # its target's first item skipped
        await run.task
    assert (missing.value.arg_name, missing.value.run_id) == ("<Target Output>[0]", run.run_id)
    (skipped,) = run.of(TaskSkipped, "load")
    assert skipped.error == "skipped by bob: today"
    assert skipped.decided == reply.decided
    (dependent,) = run.of(TaskSkipped, "report")
    assert dependent.error == f"upstream task 'load' ({held.task_id}) was skipped"
    assert reported == []


async def test_complete_gives_its_result_to_the_dependents() -> None:
    target, reported = workflow(Flaky(failures=10), on_failure="hold")
    run = Started(Engine(), target)
    await run.held()
    reply = run.engine.decide(run.run_id, "load", "complete", result=21)
    assert reply is not None
    assert reply.applied
    assert await run.task == ["report of 21", 1]
    assert reported == [21]
    (completed,) = run.of(TaskCompleted, "load")
    assert completed.decided == reply.decided
    assert reply.decided is not None
    assert reply.decided.decision == "complete"


async def test_the_first_decision_wins_and_a_request_id_applies_once() -> None:
    target, _ = workflow(Flaky(failures=10), on_failure="hold")
    engine = Engine()
    run = Started(engine, target)
    await run.held()

    async def decide(decision: Any, who: str, request_id: str, **kwargs: Any) -> Any:
        await asyncio.sleep(0)
        return engine.decide(
            run.run_id, "load", decision, issued_by=who, request_id=request_id, **kwargs
        )

    first, second, copy, named = await asyncio.gather(
        decide("skip", "alice", "r1"),
        decide("fail", "bob", "r2"),
        decide("skip", "alice", "r1"),
        decide("fail", "bob", "r3", attempt=1),
    )
    assert (first.outcome, second.outcome) == ("applied", "not_held")
    assert second.decided == first.decided
    assert second.decided.by == "alice"
    assert copy is first, "a copy of a request gets the same answer"
    assert named.outcome == "already_decided"
    assert named.decided == first.decided
    with pytest.raises(DependencyMissingError):
        await run.task
    assert len(run.of(TaskSkipped, "load")) == 1
    assert not run.of(TaskFailed)
    assert (engine.stats.decisions, engine.stats.decisions_refused) == (1, 2)


async def test_stale_unknown_ambiguous_and_not_held_requests_are_refused() -> None:
    cause = Flaky(failures=10)

    @task(name="load", on_failure="hold")
    def load(n: int) -> int:
        return cause(n)

    @task(name="fine")
    def fine() -> int:
        return 0

    one, two, other = load(1), load(2), fine()
    engine = Engine()
    run = Started(engine, [one, two, other])
    await run.held(2)
    await run.recorder.until(lambda: bool(run.of(TaskCompleted, "fine")))

    def decide(name: str, **kwargs: Any) -> Any:
        reply = engine.decide(run.run_id, name, "retry", **kwargs)
        assert reply is not None
        return reply

    ambiguous = decide("load")
    assert ambiguous.outcome == "ambiguous"
    assert sorted(ambiguous.candidates) == sorted([one.task_id, two.task_id])
    assert decide("nothing").outcome == "unknown_task"
    assert decide("fine").outcome == "not_held"
    assert decide("fine").decided is None
    stale = decide(one.task_id, attempt=2)
    assert (stale.outcome, stale.attempt, stale.task_id) == ("stale_attempt", 1, one.task_id)
    assert engine.decide("0" * 32, "load", "retry") is None
    with pytest.raises(ControlError, match="decision must be one of") as refused:
        engine.decide(run.run_id, "load", "later")  # type: ignore[arg-type]
    assert refused.value.field == "decision"
    with pytest.raises(ControlError, match="result"):
        engine.decide(run.run_id, one.task_id, "skip", result=1)
    with pytest.raises(ControlError, match="result"):
        engine.decide(run.run_id, one.task_id, "complete", result="x" * 20_000)
    with pytest.raises(ControlError, match="issued_by") as refused:
        engine.decide(run.run_id, one.task_id, "retry", issued_by="al\x00ice")
    assert refused.value.field == "issued_by"
    assert decide(one.task_id, attempt=1).applied
    await run.held(3)  # one held again, at attempt 2
    late = decide(one.task_id, attempt=1, reason="late")
    assert late.outcome == "already_decided"
    assert late.decided.id is not None
    assert decide(two.task_id).applied
    engine.cancel(run.run_id)
    with pytest.raises(RunCancelledError):
        await run.task


async def test_a_hold_past_its_deadline_takes_its_default() -> None:
    target, _ = workflow(Flaky(failures=10), on_failure="hold", hold_default="skip")
    run = Started(Engine(hold_timeout=0.05), target)
    with pytest.raises(DependencyMissingError):
        await asyncio.wait_for(run.task, 5)
    (skipped,) = run.of(TaskSkipped, "load")
    assert skipped.error == "skipped at its hold's deadline"
    decided = skipped.decided
    assert isinstance(decided, Decided)
    assert (decided.decision, decided.attempt, decided.by, decided.deadline) == (
        "skip",
        1,
        None,
        True,
    )


async def test_a_run_stopping_while_tasks_are_held_ends_them_failed_not_cancelled() -> None:
    target, _ = workflow(Flaky(failures=10), on_failure="hold")
    engine = Engine()
    run = Started(engine, target)
    (held,) = await run.held()
    engine.cancel(run.run_id, issued_by="carol")
    with pytest.raises(RunCancelledError):
        await run.task
    (failed,) = run.of(TaskFailed, "load")
    assert failed.error == (
        "ValueError: row 1 has a negative amount (held for a decision when the run stopped: "
        f"RunCancelledError: run {run.run_id} was cancelled by carol)"
    )
    assert failed.exception is held.exception
    assert failed.decided is None
    assert [e.state for e in run.of(TaskEvent, "report")] == ["CANCELLED"]
