"""cascade.control's decisions on a held task: checked before anything is sent, answered by
the run's engine (a stand-in that answers as an engine does), taken from its owner only."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from typing import Any

import msgspec
import pytest

from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector, received, telemetry
from cascade.control import (
    ControlError,
    Controller,
    Decide,
    DecisionAnswer,
    Refusal,
    RunLostError,
)
from cascade.control._decisions import request_decision
from cascade.interfaces import (
    LifecycleEvent,
    Message,
    StatusMessage,
    TaskStateEvent,
    status_topic,
)
from cascade.interfaces.commands import (
    DecisionReply,
    DecisionRequest,
    cancel_topic,
    decide_topic,
    reply_topic,
)
from cascade.interfaces.notes import decode_issued_note, issued_topic
from cascade.interfaces.serving import RunOrigin
from cascade.reader import ReaderModel
from cascade.testkit import HeldTask, HoldingEngine, Inbox

MAX_RESULT_BYTES = 16 * 1024  # the protocol's bound, as docs/protocol.md states it

RUN = "58a88765cea2c1d0a1f3c2b7e9d84a61"


@pytest.fixture
def broker() -> InMemoryBroker:
    return InMemoryBroker()


@pytest.fixture
async def engine(broker: InMemoryBroker) -> AsyncIterator[HoldingEngine]:
    connector = InMemoryConnector(broker, source_id="host-1", presence=False)
    await connector.connect()
    held = [HeldTask("load-1", "load"), HeldTask("side-1", "side", attempt=2)]
    engine = HoldingEngine(connector, RUN, held)
    await engine.start()
    yield engine
    await connector.disconnect()


@pytest.fixture
async def control(broker: InMemoryBroker) -> AsyncIterator[Controller]:
    connector = InMemoryConnector(broker, presence=False)
    await connector.connect(require=True)
    yield Controller(connector, issued_by="alice", timeout=2.0, login="alice")
    await connector.disconnect()


async def test_a_retry_is_applied_by_the_owner_and_says_what_it_did(
    broker: InMemoryBroker, engine: HoldingEngine, control: Controller
) -> None:
    """The request names the decision, task, attempt and who/why; the owner's answer is
    applied; the login says what it did on its own topic (the audit's witness)."""
    notes = Inbox()
    await control.connector.subscribe(issued_topic("alice"), notes)
    answer = await control.run(RUN).retry("load", attempt=1, reason="API back")
    assert isinstance(answer, DecisionAnswer)
    assert answer.applied
    assert (answer.owner, answer.refused) == ("host-1", 0)
    (request,) = engine.applied
    assert (request.task, request.decision, request.attempt) == ("load", "retry", 1)
    assert (request.issued_by, request.reason) == ("alice", "API back")
    assert (
        answer.describe() == "retried load (load-1, attempt 1) of run 58a88765cea2 on "
        "host-1: attempt 2 starts"
    )
    note = decode_issued_note((await notes.next()).raw or b"")
    # where its telemetry said the run is (no org nor project given)
    assert (note.action, note.id, note.topic) == (
        "retry",
        request.id,
        f"cascade/command/local/default/{RUN}/decide",
    )
    assert broker.retained(f"cascade/command/local/default/{RUN}/decide") is None


async def test_a_decision_goes_to_the_org_and_project_given_and_no_other(
    broker: InMemoryBroker, control: Controller
) -> None:
    """With the run's org and project given, the decision is sent on their topic at once; an
    engine of the same run id in another org never hears it; a run whose org and project
    nobody gave and that is not heard gets nothing sent, and the answer says why."""
    acme = InMemoryConnector(broker, source_id="acme-1", presence=False)
    globex = InMemoryConnector(broker, source_id="globex-1", presence=False)
    for connector in (acme, globex):
        await connector.connect()
    ours = HoldingEngine(acme, RUN, [HeldTask("load-1", "load")], org_id="acme", project_id="etl")
    theirs = HoldingEngine(globex, RUN, [HeldTask("load-1", "load")], org_id="globex",
                           project_id="etl", snapshots=False)  # fmt: skip
    await ours.start()
    await theirs.start()
    sent = len(broker.history)
    answer = await control.run(RUN, owner="acme-1", org="acme", project="etl").skip("load")
    assert answer.applied
    assert [m.topic for m in broker.history[sent:] if "/command/" in m.topic] == [
        decide_topic("acme", "etl", RUN)
    ]  # no snapshot request: the owner and the place were known
    assert theirs.requests == []
    other = "0" * 31 + "1"
    sent = len(broker.history)
    control.timeout = 0.2
    unheard = await control.run(other).skip("load")
    assert unheard.reply is None
    assert unheard.unlocated
    assert not any(m.topic.endswith("/decide") for m in broker.history[sent:])
    assert unheard.unanswered(0.2) == (
        f"nothing was sent to run {other}: its org and project are not known (no history names "
        "the run, and nothing of it was heard within 0.2 s): give them (--org and --project)"
    )
    for connector in (acme, globex):
        await connector.disconnect()


async def test_a_second_decision_on_one_hold_is_refused_naming_the_first(
    engine: HoldingEngine, control: Controller
) -> None:
    """First decision wins; the second is ``already_decided`` with who, why and when."""
    first = await control.run(RUN).skip("side", reason="not today")
    second = await control.run(RUN).retry("side", attempt=2)
    assert first.applied
    assert not second.applied
    assert second.reply is not None
    assert second.reply.outcome == "already_decided"
    described = second.describe(now=time.time() + 12)
    assert described.startswith(
        "side (side-1, attempt 2) of run 58a88765cea2: already decided: skip by alice 1"
    )
    assert described.endswith(" s ago (not today)")


@pytest.mark.parametrize(
    ("task", "attempt", "outcome", "said"),
    [
        ("nope", None, "unknown_task", "run 58a88765cea2 has no task nope"),
        (
            "side",
            1,
            "stale_attempt",
            "side (side-1) of run 58a88765cea2 is held at attempt 2, not 1",
        ),
    ],
)
async def test_refusals_say_why(
    engine: HoldingEngine,
    control: Controller,
    task: str,
    attempt: int | None,
    outcome: str,
    said: str,
) -> None:
    answer = await control.run(RUN).fail(task, attempt=attempt)
    assert answer.reply is not None
    assert answer.reply.outcome == outcome
    assert answer.describe() == said
    assert engine.applied == []


async def test_complete_sends_its_result_as_json(
    engine: HoldingEngine, control: Controller
) -> None:
    answer = await control.run(RUN).complete("load-1", {"rows": (1, 2)})
    assert answer.applied
    assert engine.applied[0].result == {"rows": [1, 2]}
    null = Decide(run_id=RUN, task="side", decision="complete", result=None).wire_request()
    sent = msgspec.json.decode(_encoded(null), type=DecisionRequest)
    assert json.loads(json.dumps(sent.result)) is None


async def test_a_complete_without_a_result_is_null_as_the_cli_and_the_page_send_it(
    engine: HoldingEngine, control: Controller
) -> None:
    """A gate's approval needs no value (the engine makes it ``true``): a complete without a
    result is sent as ``null``, whoever sends it (the API was the one door that refused)."""
    answer = await control.decide(RUN, "load-1", "complete")
    assert answer.applied
    assert engine.applied[0].result is None
    asked = Decide(run_id=RUN, task="approve", decision="complete")
    assert asked.result is None


def _encoded(request: Any) -> bytes:
    import msgspec

    return msgspec.json.encode(request)


async def test_nobody_answers_within_the_timeout(control: Controller) -> None:
    control.timeout = 0.2
    answer = await control.run(RUN, org="local", project="default").retry("load")
    assert (answer.reply, answer.applied, answer.owner) == (None, False, None)
    assert answer.unanswered(0.2) == f"no engine answered for run {RUN} within 0.2 s"


class HeldReplies(InMemoryConnector):
    """An engine's connector whose answers wait for ``release`` (so that another's comes
    first)."""

    def __init__(self, broker: InMemoryBroker, release: asyncio.Event) -> None:
        super().__init__(broker, source_id="host-1", presence=False)
        self.release = release

    async def publish(self, topic: str, payload: Any, qos: int = 0, retain: bool = False) -> None:
        if topic.startswith("cascade/reply/"):
            await self.release.wait()
        await super().publish(topic, payload, qos, retain)


async def test_an_answer_from_another_source_is_refused_and_counted(
    broker: InMemoryBroker, control: Controller
) -> None:
    """A forger's answer, which comes before the owner's, is refused and said; the owner's
    answer counts."""
    forged_first = asyncio.Event()
    owner = HeldReplies(broker, forged_first)
    await owner.connect()
    await HoldingEngine(owner, RUN, [HeldTask("load-1", "load")]).start()
    forger = InMemoryConnector(broker, source_id="mallory", presence=False)
    await forger.connect()

    async def forge(message: Message) -> None:
        request = msgspec.json.decode(message.raw or b"", type=DecisionRequest)
        forged = DecisionReply(
            id=request.id,
            run_id=RUN,
            source="mallory",
            decision=request.decision,
            outcome="applied",
        )
        await forger.publish(reply_topic("local", request.id, "mallory"), forged, qos=1)
        forged_first.set()

    await forger.subscribe(decide_topic("local", "default", RUN), forge)
    refusals: list[Refusal] = []
    answer = await control.run(RUN, on_refused=refusals.append).retry("load")
    assert answer.applied
    assert answer.reply is not None
    assert answer.reply.source == "host-1"
    assert answer.refused == len(refusals) == 1
    assert str(refusals[0]) == "refused an answer from mallory: run 58a88765cea2 belongs to host-1"
    await forger.disconnect()
    await owner.disconnect()


@pytest.mark.parametrize(
    ("call", "field", "said"),
    [
        (lambda c: c.decide("abc", "load", "retry"), "run_id", "a whole run id"),
        (lambda c: c.decide(RUN, " ", "retry"), "task", "task is empty"),
        (lambda c: c.decide(RUN, "load\x1b", "retry"), "task", "task holds"),
        (lambda c: c.decide(RUN, "load", "redo"), "decision", "decision must be one of"),
        (lambda c: c.decide(RUN, "load", "retry", attempt=0), "attempt", "attempt must be"),
        (
            lambda c: c.decide(RUN, "load", "complete", result=object()),
            "result",
            "result is not JSON",
        ),
        (
            lambda c: c.decide(RUN, "load", "complete", result="x" * MAX_RESULT_BYTES),
            "result",
            "result is 16,386",
        ),
        (lambda c: c.decide(RUN, "load", "skip", result=1), "result", "a result goes with"),
        (lambda c: c.decide(RUN, "load", "skip", reason="a\nb"), "reason", "reason holds"),
    ],
)
async def test_bad_input_raises_control_error_naming_the_field_and_sends_nothing(
    engine: HoldingEngine, control: Controller, call: Any, field: str, said: str
) -> None:
    with pytest.raises(ControlError) as raised:
        await call(control)
    assert raised.value.field == field
    assert str(raised.value).startswith(said)
    assert engine.requests == []


async def test_a_copy_of_a_request_gets_the_same_answer_and_is_applied_once(
    broker: InMemoryBroker, engine: HoldingEngine
) -> None:
    """QoS 1 may deliver a request twice: the engine answers the copy as the original."""
    async with InMemoryConnector(broker, presence=False) as cli:
        request = Decide(run_id=RUN, task="load", decision="retry").wire_request(issued_by="bob")
        first = await request_decision(cli, request, timeout=2)
        again = await request_decision(cli, request, timeout=2)
    assert first.applied
    assert again.applied
    assert len(engine.applied) == 1
    assert len(engine.requests) == 2


async def test_a_run_handle_binds_the_run_once_for_each_of_its_verbs(
    broker: InMemoryBroker, control: Controller
) -> None:
    """``Controller.run`` binds the run's id (a whole id, kept in lower case), owner, org and
    project once: each verb of the handle goes to that run's topic at once (no snapshot asked:
    the owner and the place were known), answered by its owner; a cancel too."""
    acme = InMemoryConnector(broker, source_id="acme-1", presence=False)
    await acme.connect()
    held = [HeldTask("load-1", "load"), HeldTask("side-1", "side"), HeldTask("sum-1", "sum")]
    engine = HoldingEngine(acme, RUN, held, org_id="acme", project_id="etl")
    await engine.start()
    run = control.run(RUN.upper(), owner="acme-1", org="acme", project="etl")
    assert (run.run_id, run.owner, run.org, run.project) == (RUN, "acme-1", "acme", "etl")
    sent = len(broker.history)
    answers = [
        await run.retry("load", attempt=1, reason="API back"),
        await run.skip("side"),
        await run.complete("sum", {"rows": 0}),
    ]
    assert [(a.applied, a.owner) for a in answers] == [(True, "acme-1")] * 3
    assert [(r.task, r.decision, r.run_id) for r in engine.applied] == [
        ("load", "retry", RUN),
        ("side", "skip", RUN),
        ("sum", "complete", RUN),
    ]
    assert engine.applied[2].result == {"rows": 0}
    assert [m.topic for m in broker.history[sent:] if "/command/" in m.topic] == [
        decide_topic("acme", "etl", RUN)
    ] * 3
    control.timeout = 0.2
    sent = len(broker.history)
    cancelled = await run.cancel(reason="wrong input")  # the stand-in answers no cancel
    assert (cancelled.reply, cancelled.owner) == (None, "acme-1")
    assert [m.topic for m in broker.history[sent:] if "/command/" in m.topic] == [
        cancel_topic("acme", "etl", RUN)
    ]
    with pytest.raises(ControlError) as bad:
        control.run("not-a-run")
    assert bad.value.field == "run_id"
    await acme.disconnect()


async def test_a_decision_on_a_run_the_reader_knows_lost_says_where_it_went_at_once(
    broker: InMemoryBroker, engine: HoldingEngine
) -> None:
    """The caller's reader heard the run's engine go offline and another server carry the
    run on: the decision raises RunLostError at once (no waiting for an answer no engine can
    give), with the facts as fields; nothing is sent. A run it does not know lost is asked."""
    carried = "0" * 31 + "2"
    now = float(int(time.time()) + 1)
    reader = ReaderModel(clock=lambda: now)
    start = LifecycleEvent(event="ENGINE_STARTED", tasks=2)
    for message in [
        received(status_topic("host-1"), StatusMessage(status="online", source="host-1")),
        telemetry(start, run_id=RUN, source="host-1", seq=1),
        received(status_topic("host-1"), StatusMessage(status="offline", source="host-1")),
        telemetry(
            LifecycleEvent(event="ENGINE_STARTED", origin=RunOrigin(
                workflow="etl", carried_on_from=RUN, lost_engine="host-1")),
            run_id=carried, source="host-2", seq=1,
        ),
    ]:  # fmt: skip
        reader.apply(message)
    sent = Inbox()
    await engine.connector.subscribe("cascade/command/#", sent)  # decisions, cancels
    connector = InMemoryConnector(broker, presence=False)
    async with connector:
        control = Controller(connector, issued_by="alice", timeout=30.0, reader=reader)
        started = time.monotonic()
        with pytest.raises(RunLostError) as raised:
            await control.run(RUN).retry("load", reason="API back")
        with pytest.raises(RunLostError):
            await control.decide(RUN, "load", "skip")
        assert time.monotonic() - started < 1.0
        lost = raised.value
        assert (lost.run_id, lost.engine, lost.lost_at) == (RUN, "host-1", now)
        assert (lost.carried_on_as, lost.carried_on_by) == (carried, "host-2")
        at = datetime.fromtimestamp(now, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        assert str(lost) == (
            f"run {RUN} was lost at {at} when its engine host-1 went offline; "
            f"carried on as {carried} at host-2: decide there"
        )
        await broker.idle()
        assert sent.all == []
        back = StatusMessage(status="online", source="host-1", session=2)
        reader.apply(received(status_topic("host-1"), back))
        running = TaskStateEvent(task_id="load-1", task_name="load", state="RUNNING")
        reader.apply(telemetry(running, run_id=RUN, source="host-1", seq=3))
        answer = await control.run(RUN).retry("load", attempt=1)  # back: asked as ever
        assert answer.applied
