"""A gate: held from its start with its prompt, approved by complete (its dependents get the
value), rejected by fail, skipped by skip, decided by its default at its deadline; retry refused."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import timedelta
from typing import Any

import msgspec
import pytest

from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.interfaces import (
    Envelope,
    Heartbeat,
    Message,
    TaskStateEvent,
    decode_envelope,
    telemetry_filter,
)
from cascade.runtime import (
    DependencyMissingError,
    Engine,
    GateError,
    GateRejected,
    Param,
    RunCancelledError,
    RunFinished,
    RunStarted,
    TaskCompleted,
    TaskEvent,
    TaskFailed,
    TaskFailedError,
    TaskHeld,
    TaskRunning,
    TaskSkipped,
    gate,
    task,
)
from cascade.runtime.testing import EventRecorder

APPROVAL = "approval"  # a gate's hold's kind, as docs/protocol.md names it
MAX_PROMPT_LENGTH = 1024


class Started:
    """A run under way, its events recorded."""

    def __init__(self, engine: Engine, target: Any, **options: Any) -> None:
        self.engine = engine
        self.recorder = EventRecorder()
        engine.events.subscribe(self.recorder)
        self.task = asyncio.create_task(engine.run(target, **options))

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

    async def held(self) -> TaskHeld:
        await self.recorder.until(lambda: bool(self.of(TaskHeld)))
        held: list[TaskHeld] = self.of(TaskHeld)
        assert len(held) == 1
        return held[0]


@task
def build() -> str:
    return "v1.2"


@task
def deploy(version: str, approval: Any) -> str:
    return f"deployed {version} ({approval!r})"


def release(**options: Any) -> Any:
    """``deploy(build(), gate(...))``: the gate waits for nothing, so it is held at once."""
    return deploy(build(), gate("Deploy v1.2 to production?", **options))


async def test_a_gate_is_held_at_once_with_its_prompt_and_complete_approves_with_true() -> None:
    """No attempt runs: the gate is HELD (a decision hold of kind approval, its prompt, attempt
    1, the engine's hold_timeout), the run lives; complete approves and deploy gets True."""
    engine = Engine(hold_timeout=600)
    before = time.time()
    run = Started(engine, release())
    held = await run.held()
    assert (held.task_name, held.attempt, held.error, held.exception) == ("gate", 1, "", None)
    (hold,) = held.held_by
    assert (hold.type, hold.kind, hold.prompt) == (
        "decision",
        APPROVAL,
        "Deploy v1.2 to production?",
    )
    assert hold.awaits_approval
    assert hold.awaits_decision
    assert (hold.attempt, hold.default) == (1, "fail")
    assert hold.deadline is not None
    assert before + 600 <= hold.deadline <= time.time() + 600
    assert run.of(TaskRunning, "gate") == []
    assert not run.task.done()
    assert engine.stats.held == 1
    reply = engine.decide(run.run_id, "gate", "complete", issued_by="alice", reason="go")
    assert reply is not None
    assert reply.applied
    assert await run.task == "deployed v1.2 (True)"
    (approved,) = run.of(TaskCompleted, "gate")
    assert approved.decided == reply.decided
    assert approved.decided is not None
    assert approved.decided.by == "alice"


async def test_complete_with_a_value_gives_that_value_to_the_dependents() -> None:
    run = Started(Engine(), release())
    await run.held()
    reply = run.engine.decide(run.run_id, "gate", "complete", result="yes")
    assert reply is not None
    assert reply.applied
    assert await run.task == "deployed v1.2 ('yes')"


async def test_fail_rejects_it_saying_who_and_why_and_its_dependents_are_skipped() -> None:
    run = Started(Engine(), release())
    await run.held()
    reply = run.engine.decide(run.run_id, "gate", "fail", issued_by="bob", reason="not today")
    assert reply is not None
    assert reply.applied
    with pytest.raises(TaskFailedError) as raised:
        await run.task
    rejected = raised.value.exception
    assert isinstance(rejected, GateRejected)
    assert (rejected.by, rejected.reason, rejected.deadline) == ("bob", "not today", False)
    (failed,) = run.of(TaskFailed, "gate")
    assert failed.error == "GateRejected: rejected by bob: not today"
    assert failed.exception is None  # nothing was raised: no traceback goes out
    assert failed.decided == reply.decided
    (skipped,) = run.of(TaskSkipped, "deploy")
    assert "'gate'" in skipped.error
    assert "failed" in skipped.error


async def test_skip_skips_it_and_its_dependents_and_the_run_succeeds() -> None:
    run = Started(Engine(), release())
    await run.held()
    reply = run.engine.decide(run.run_id, "gate", "skip", issued_by="carol")
    assert reply is not None
    assert reply.applied
    with pytest.raises(DependencyMissingError) as missing:  # the run succeeds, its target none
        await run.task
    assert missing.value.dependency_id.startswith("gate-")
    assert [e.task_name for e in run.of(TaskSkipped)] == ["gate", "deploy"]
    assert [e.status for e in run.recorder.events if isinstance(e, RunFinished)] == ["Succeeded"]


async def test_retry_is_refused_and_the_gate_stays_held_for_another_decision() -> None:
    run = Started(Engine(), release())
    await run.held()
    refused = run.engine.decide(run.run_id, "gate", "retry", issued_by="dave")
    assert refused is not None
    assert (refused.outcome, refused.applied, refused.decided) == ("not_retryable", False, None)
    assert (refused.task_id, refused.attempt) == (run.of(TaskHeld)[0].task_id, 1)
    assert run.engine.stats.decisions_refused == 1
    reply = run.engine.decide(run.run_id, "gate", "complete", attempt=1)
    assert reply is not None
    assert reply.applied
    assert await run.task == "deployed v1.2 (True)"


@pytest.mark.parametrize(
    ("default", "ends", "result"),
    [("fail", TaskFailed, None), ("skip", TaskSkipped, None), ("complete", TaskCompleted, True)],
)
async def test_its_deadline_takes_its_default(
    default: Any, ends: type[TaskEvent], result: Any
) -> None:
    """deadline (seconds or a timedelta) bounds the wait; then the default is taken, recorded
    as the deadline's decision (nobody named)."""
    deadline: Any = 0.05 if default != "skip" else timedelta(milliseconds=50)
    engine = Engine()
    gated = gate("Go?", deadline=deadline, default=default)
    run = Started(engine, gated)
    held = await run.held()
    (hold,) = held.held_by
    assert hold.default == default
    if default == "fail":
        with pytest.raises(TaskFailedError) as raised:
            await run.task
        assert isinstance(raised.value.exception, GateRejected)
        assert str(raised.value.exception) == "rejected at its deadline (no decision came)"
    elif default == "skip":
        with pytest.raises(DependencyMissingError):
            await run.task
    else:
        assert await run.task is result
    (end,) = run.of(ends, "gate")
    assert end.decided is not None
    assert (end.decided.decision, end.decided.deadline, end.decided.by) == (default, True, None)
    assert engine.stats.decisions == 1


async def test_a_lazy_or_param_prompt_is_its_value_when_the_gate_is_reached() -> None:
    @task
    def summary(version: str) -> str:
        return f"Deploy {version}? " + "x" * 2000

    run = Started(Engine(), deploy(build(), gate(summary(build()), name="approve")))
    held = await run.held()
    assert held.task_name == "approve"
    prompt = held.held_by[0].prompt
    assert prompt is not None
    assert prompt.startswith("Deploy v1.2? x")
    assert len(prompt) == MAX_PROMPT_LENGTH
    assert prompt.endswith("…")
    run.engine.decide(run.run_id, "approve", "complete")
    await run.task

    question: Param[str] = Param("question", default="Ship it?")
    asked = Started(Engine(), gate(question), params={"question": "Ship v2?"})
    assert (await asked.held()).held_by[0].prompt == "Ship v2?"
    asked.engine.decide(asked.run_id, "gate", "complete", result=False)
    assert await asked.task is False


def test_bad_arguments_raise_gate_error_naming_what_is_wrong() -> None:
    cases: list[tuple[Any, dict[str, Any], str]] = [
        ("", {}, "prompt"),
        ("x" * (MAX_PROMPT_LENGTH + 1), {}, "prompt"),
        (42, {}, "prompt"),
        ("ok?", {"deadline": 0}, "deadline"),
        ("ok?", {"deadline": float("inf")}, "deadline"),
        ("ok?", {"deadline": "1h"}, "deadline"),
        ("ok?", {"deadline": timedelta(0)}, "deadline"),
        ("ok?", {"default": "retry"}, "default"),
        ("ok?", {"name": ""}, "name"),
    ]
    for prompt, options, named in cases:
        with pytest.raises(GateError, match=named):
            gate(prompt, **options)
    assert issubclass(GateError, ValueError)
    with pytest.raises(GateError, match="with_retry does not apply to a gate"):
        gate("ok?").with_retry(3)
    with pytest.raises(GateError, match="with_timeout does not apply to a gate"):
        gate("ok?").with_timeout(5)


async def test_a_run_stopping_while_a_gate_is_held_ends_it_failed_saying_so() -> None:
    run = Started(Engine(), release())
    await run.held()
    run.engine.cancel(run.run_id, issued_by="ops", reason="wrong day")
    with pytest.raises(RunCancelledError):
        await run.task
    (failed,) = run.of(TaskFailed, "gate")
    assert failed.error.startswith("awaiting approval when the run stopped: RunCancelledError")


async def test_an_approved_value_and_what_is_computed_from_it_are_never_kept() -> None:
    """A decision's value is given, not computed: a rerun asks the gate again."""
    engine = Engine(results=f"memory://gate-{uuid.uuid4().hex}")
    run = Started(engine, release())
    await run.held()
    engine.decide(run.run_id, "gate", "complete", issued_by="alice")
    await run.task
    store = engine.results
    assert store is not None
    manifest = store.manifest(run.run_id)
    assert manifest.tasks["build#1"].not_kept is None
    assert manifest.tasks["gate#1"].not_kept == (
        "completed by a decision (alice): its result was given, not computed"
    )
    assert manifest.tasks["deploy#1"].not_kept == "decided upstream: gate completed by alice"
    plan = await engine.plan(release(), rerun_of=run.run_id)
    assert {s.task_name: s.action for s in plan} == {
        "build": "reuse",
        "gate": "run",
        "deploy": "run",
    }


class OldTaskEvent(msgspec.Struct, tag="TaskStateEvent", tag_field="type"):
    """A task event as a reader that knows no gate decodes it."""

    task_id: str
    task_name: str
    state: str


async def test_on_the_wire_a_gate_is_a_blocked_task_whose_hold_has_its_prompt() -> None:
    """Its BLOCKED event and the heartbeat's blocked_tasks carry kind and prompt; a reader that
    knows neither field decodes a BLOCKED task; no traceback goes out."""
    broker = InMemoryBroker()
    events: list[bytes] = []
    beats: list[Heartbeat] = []
    changed = asyncio.Event()

    def on_telemetry(message: Message) -> None:
        envelope: Envelope = decode_envelope(message.raw)
        if isinstance(envelope.body, Heartbeat):
            beats.append(envelope.body)
        elif isinstance(envelope.body, TaskStateEvent):
            events.append(message.raw)
        changed.set()

    engine = Engine(InMemoryConnector(broker, source_id="e1"), heartbeat_interval=0.02)
    async with InMemoryConnector(broker, presence=False) as reader:
        await reader.subscribe(telemetry_filter(prefix="cascade"), on_telemetry)
        run = Started(engine, release())
        await run.held()

        async def heartbeat_lists_it() -> None:
            while not any(beat.blocked_tasks for beat in beats):
                changed.clear()
                await changed.wait()

        await asyncio.wait_for(heartbeat_lists_it(), 10)
        (raw,) = [e for e in events if b'"BLOCKED"' in e]
        body = decode_envelope(raw).body
        assert isinstance(body, TaskStateEvent)
        assert body.reader_state == "HELD"
        assert body.held is not None
        assert body.held.prompt == "Deploy v1.2 to production?"
        assert body.traceback is msgspec.UNSET or body.traceback is None
        old = msgspec.json.decode(msgspec.json.encode(msgspec.json.decode(raw)["body"]),
                                  type=OldTaskEvent)  # fmt: skip
        assert old.state == "BLOCKED"
        listed = [
            t
            for beat in beats
            if isinstance(beat.blocked_tasks, list)
            for t in beat.blocked_tasks
            if t.task_name == "gate"
        ]
        assert listed[-1].held_by[0].kind == APPROVAL
        assert listed[-1].held_by[0].prompt == "Deploy v1.2 to production?"
        engine.decide(run.run_id, "gate", "complete")
        assert await run.task == "deployed v1.2 (True)"
