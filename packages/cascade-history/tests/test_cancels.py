"""A cancel is an audit row: an engine's answer to a cancel, recorded once, bounded, queried
beside the constraints' changes; from a real engine's answer over the in-memory broker."""

from __future__ import annotations

import asyncio

import pytest

from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.history import History, Recorder, Stored
from cascade.interfaces import Message
from cascade.interfaces.commands import CancelRequest, cancel_topic, reply_filter
from cascade.runtime import Engine, RunCancelledError, RunStarted, TaskRunning, task
from cascade.runtime.testing import EventRecorder

from .messages import T0, cancel_reply, constraint, lifecycle

RUN = "58a88765cea2c1d0a1f3c2b7e9d84a61"


@pytest.fixture
def known_run(history: History) -> None:
    """The history knows RUN, of ``host-1`` (the answers' engine): an answer for a run it
    does not know, or from another source, is rejected (``test_refusals``)."""
    history.store([lifecycle(RUN, "ENGINE_STARTED", T0 + 100, seq=1, source="host-1")])


@pytest.mark.usefixtures("known_run")
def test_a_cancel_is_an_audit_row_beside_the_constraints(history: History) -> None:
    """Who, why, when, which run, what it stopped; newest first among constraint changes."""
    stored = history.store(
        [
            constraint("cascade/constraints/global/pause", "global", "pause", T0),
            cancel_reply(
                "req-1",
                RUN,
                T0 + 1,
                cancelled=["crawl", "crawl"],
                abandoned=["load"],
                not_started=17,
                issued_by="alice",
                reason="wrong input",
                issued_at=T0 + 0.5,
            ),
            constraint("cascade/constraints/task/x/pause", "task:x", "pause", T0 + 2),
        ]
    )
    assert stored.stored == 3
    actions = [event.action for event in history.audit()]
    assert actions == ["set", "cancelled", "set"]
    cancel = history.audit()[1]
    assert (cancel.at, cancel.scope, cancel.run_id, cancel.source) == (
        T0 + 1,
        f"run:{RUN}",
        RUN,
        "host-1",
    )
    assert (cancel.issued_by, cancel.reason, cancel.issued_at) == ("alice", "wrong input", T0 + 0.5)
    assert (cancel.request_id, cancel.topic) == ("req-1", "cascade/reply/local/req-1/host-1")
    assert (cancel.type, cancel.params, cancel.ttl) == (None, None, None)
    assert cancel.to_json()["stopped"] == {
        "outcome": "cancelled",
        "cancelled": [
            {"task_id": "crawl-0", "task_name": "crawl"},
            {"task_id": "crawl-1", "task_name": "crawl"},
        ],
        "cancelled_count": 2,
        "abandoned": [{"task_id": "load-0", "task_name": "load"}],
        "abandoned_count": 1,
        "not_started": 17,
    }
    assert history.audit()[0].to_json()["stopped"] is None  # a constraint's


@pytest.mark.usefixtures("known_run")
def test_an_answer_is_stored_once_per_request(history: History) -> None:
    """A copy (QoS 1 resent, or a second recorder's) is a duplicate; a second request for the
    same run (already_cancelled) is a row of its own; an engine that does not echo the
    request leaves who and why None."""
    first = cancel_reply("req-1", RUN, T0, cancelled=["a"], issued_by="alice")
    assert history.store([first, first]).stored == 1
    assert history.store([cancel_reply("req-1", RUN, T0 + 5)]).duplicates == 1
    again = cancel_reply("req-2", RUN, T0 + 9, outcome="already_cancelled")
    assert history.store([again]).stored == 1
    said = [(e.request_id, e.issued_by, (e.stopped or {}).get("outcome")) for e in history.audit()]
    assert said == [("req-2", None, "already_cancelled"), ("req-1", "alice", "cancelled")]


@pytest.mark.usefixtures("known_run")
def test_what_an_answer_says_is_stored_bounded(history: History) -> None:
    """At most 32 tasks of each list (the counts as said), issued_by cut to 256 bytes."""
    reply = cancel_reply("req-1", RUN, T0, cancelled=["t"] * 40, issued_by="x" * 5000)
    history.store([reply])
    (cancel,) = history.audit()
    assert cancel.stopped is not None
    assert (len(cancel.stopped["cancelled"]), cancel.stopped["cancelled_count"]) == (32, 40)
    assert cancel.issued_by is not None
    assert len(cancel.issued_by.encode()) <= 256


@pytest.mark.usefixtures("known_run")
def test_an_answer_that_cannot_be_stored_is_rejected_alone(history: History) -> None:
    """A count no column holds, a source the protocol refuses: rejected; the rest stored."""
    too_many = cancel_reply("req-1", RUN, T0, not_started=2**63)
    no_source = cancel_reply("req-2", RUN, T0, source="")
    good = cancel_reply("req-3", RUN, T0)
    assert history.store([too_many, no_source, good]) == Stored(1, 0, 2)
    assert [event.request_id for event in history.audit()] == ["req-3"]


@pytest.mark.usefixtures("known_run")
def test_since_limit_and_pruning(history: History) -> None:
    """``since`` and ``limit`` apply to cancels as to constraints; pruning removes old ones."""
    history.store([cancel_reply(f"req-{i}", RUN, T0 + i) for i in range(5)])
    assert [e.request_id for e in history.audit(since=T0 + 3)] == ["req-4", "req-3"]
    assert [e.request_id for e in history.audit(limit=2)] == ["req-4", "req-3"]
    assert history.prune(T0 + 2) == 2
    assert len(history.audit()) == 3


@task(name="waits")
async def waits() -> int:
    await asyncio.Event().wait()
    return 0


@task(name="after")
async def after(value: int) -> int:
    return value


async def test_a_real_engines_answer_is_recorded(
    broker: InMemoryBroker, history: History, recorder: Recorder
) -> None:
    """A run cancelled over the broker: its engine's answer is the audit's row, with the
    request's who, why and when."""
    engine = Engine(InMemoryConnector(broker, source_id="engine-1"), heartbeat_interval=None)
    events = EventRecorder()
    engine.events.subscribe(events)
    run = asyncio.create_task(engine.run([after(waits()), after(waits())]))
    await events.until(lambda: len(events.names(TaskRunning)) == 2)
    (started,) = [e for e in events.events if isinstance(e, RunStarted)]
    answered = asyncio.Event()

    def on_answer(message: Message) -> None:
        answered.set()

    async with InMemoryConnector(broker, presence=False) as operator:
        await operator.subscribe(reply_filter("r1"), on_answer)
        request = CancelRequest(
            id="r1", run_id=started.run_id, issued_by="alice", reason="x", issued_at=T0
        )
        await operator.publish(cancel_topic("local", "default", started.run_id), request, qos=1)
        await asyncio.wait_for(answered.wait(), 5)
    with pytest.raises(RunCancelledError):
        await asyncio.wait_for(run, 5)
    await broker.idle()
    await recorder.flush(timeout=5)
    (cancel,) = [e for e in history.audit() if e.action == "cancelled"]
    assert (cancel.run_id, cancel.source, cancel.issued_by, cancel.reason, cancel.issued_at) == (
        started.run_id,
        "engine-1",
        "alice",
        "x",
        T0,
    )
    assert cancel.stopped is not None
    assert (cancel.stopped["cancelled_count"], cancel.stopped["not_started"]) == (2, 2)
    assert recorder.stats.rejected == 0


@pytest.mark.usefixtures("known_run")
async def test_malformed_answers_are_rejected_and_counted(
    broker: InMemoryBroker, history: History, recorder: Recorder
) -> None:
    """Not an answer, on another request's topic, oversized, from another source than its
    topic names, a level too many or too few: counted, nothing stored; a good answer after
    them is stored."""
    good = {"id": "r9", "run_id": RUN, "source": "host-1"}
    async with InMemoryConnector(broker, presence=False) as attacker:
        await attacker.publish("cascade/reply/local/r1/host-1", {"hello": "world"}, qos=1)
        await attacker.publish("cascade/reply/local/r2/host-1", {**good, "not_started": -1}, qos=1)
        await attacker.publish("cascade/reply/local/r3/host-1", good, qos=1)  # r9's answer on r3's
        big = {**good, "id": "r4", "x": "y" * 70_000}
        await attacker.publish("cascade/reply/local/r4/host-1", big)
        await attacker.publish("cascade/reply/local/r9/mallory", good, qos=1)  # host-1's there
        await attacker.publish("cascade/reply/local/r5/host-1/deeper", {**good, "id": "r5"}, qos=1)
        await attacker.publish("cascade/reply/local/r6", {**good, "id": "r6"}, qos=1)
        await attacker.publish("cascade/reply/local/r9/host-1", good, qos=1)
    await broker.idle()
    await recorder.flush(timeout=5)
    stats = recorder.stats
    assert (stats.rejected, stats.stored) == (5, 1)  # r5 and r6 are not subscribed to
    assert [event.request_id for event in history.audit()] == ["r9"]


@pytest.mark.usefixtures("known_run")
async def test_a_starts_answer_is_left_alone_not_rejected(
    broker: InMemoryBroker, history: History, recorder: Recorder
) -> None:
    """A serving process's answer to a start shares the reply topics: no audit row of its own
    (the run's ENGINE_STARTED gives the start's), and no rejection either."""
    answer = {"id": "s1", "source": "host-1", "workflow": "nightly", "outcome": "started"}
    async with InMemoryConnector(broker, presence=False) as server:
        await server.publish("cascade/reply/local/s1/host-1", {**answer, "run_id": RUN}, qos=1)
    await broker.idle()
    await recorder.flush(timeout=5)
    assert (recorder.stats.rejected, recorder.stats.stored) == (0, 0)
    assert history.audit() == []
