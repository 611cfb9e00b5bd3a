"""`cascade cancel` and the dashboard's Cancel: a command to the engine, answered by it."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from typer.testing import Result

from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.control import CancelAnswer, Controller, Refusal
from cascade.dashboard import DashboardHub, DashboardSettings, create_app
from cascade.interfaces import (
    Envelope,
    Heartbeat,
    LifecycleEvent,
    Message,
    decode_envelope,
    encode_payload,
    events_topic,
    heartbeat_topic,
)
from cascade.interfaces.commands import CancelReply, CancelRequest, reply_topic
from cascade.runtime import Engine, RunCancelledError, RunStarted, TaskRunning, task
from cascade.runtime.testing import EventRecorder

RUN = "0123456789abcdef0123456789abcdef"
TOKEN = "s3cret"


@task
async def forever() -> None:
    await asyncio.Event().wait()


async def _running(broker: InMemoryBroker) -> tuple[str, asyncio.Task[Any]]:
    engine = Engine(InMemoryConnector(broker, source_id="engine-1"), heartbeat_interval=None)
    recorder = EventRecorder()
    engine.events.subscribe(recorder)
    run = asyncio.create_task(engine.run([forever(), forever()]))
    await recorder.until(lambda: len(recorder.names(TaskRunning)) == 2)
    (started,) = [e for e in recorder.events if isinstance(e, RunStarted)]
    return started.run_id, run


async def test_the_request_is_answered_by_the_engine_running_the_run() -> None:
    """A cancel publishes the request, not retained, and returns the engine's answer,
    which carries who asked into the run's end."""
    broker = InMemoryBroker()
    run_id, run = await _running(broker)
    async with InMemoryConnector(broker, presence=False) as cli:
        answer = await Controller(cli, issued_by="alice", timeout=5).cancel(run_id, reason="oops")
    reply = answer.reply
    assert reply is not None
    assert (reply.run_id, reply.source, reply.cancelled_count) == (run_id, "engine-1", 2)
    assert (answer.owner, answer.refused) == ("engine-1", 0)
    with pytest.raises(RunCancelledError, match="cancelled by alice: oops"):
        await asyncio.wait_for(run, 5)
    # nothing kept but what engines keep about themselves (their status and summary)
    assert [t for t in broker.retained_topics if "/status/" not in t and "/summary/" not in t] == []


async def test_no_engine_no_answer() -> None:
    """A run nobody runs: None after the timeout, and nothing left behind at the broker."""
    broker = InMemoryBroker()
    async with InMemoryConnector(broker, presence=False) as cli:
        answer = await Controller(cli, timeout=0.2).cancel(RUN)
    assert (answer.reply, answer.owner, answer.refused) == (None, None, 0)
    assert broker.retained_topics == []


class Forger:
    """Anyone who can publish: answers every cancel at once as ``source``, on its own reply
    topic (what a broker ACL lets it), saying it cancelled 99 tasks; with ``telemetry``, it
    first publishes a heartbeat of the run as ``source``, as if the run were its own."""

    def __init__(self, broker: InMemoryBroker, source: str = "mallory", *, telemetry: bool = False):
        self.connector = InMemoryConnector(broker, source_id=source, presence=False)
        self.source = source
        self.telemetry = telemetry
        self.answered = asyncio.Event()

    async def start(self) -> None:
        await self.connector.connect()
        await self.connector.subscribe("cascade/command/+/+/+/cancel", self._answer)

    async def _answer(self, message: Message) -> None:
        request = msgspec.json.decode(message.raw, type=CancelRequest)
        if self.telemetry:
            beat = Envelope(run_id=request.run_id, org_id="o", project_id="p",
                            source=self.source, seq=7, body=Heartbeat(last_seq=7))  # fmt: skip
            topic = heartbeat_topic("o", "p", request.run_id)
            await self.connector.publish(topic, encode_payload(beat), qos=1)
        forged = CancelReply(id=request.id, run_id=request.run_id, source=self.source,
                             cancelled_count=99)  # fmt: skip
        org = message.topic.split("/")[2]  # the command's: where its requester listens
        await self.connector.publish(reply_topic(org, request.id, self.source), forged, qos=1)
        self.answered.set()


class Honest(Forger):
    """A run's engine stand-in, without telemetry: answers as ``source`` once ``after`` has
    answered (so that its answer comes second)."""

    def __init__(self, broker: InMemoryBroker, source: str, after: Forger) -> None:
        super().__init__(broker, source)
        self.after = after

    async def _answer(self, message: Message) -> None:
        await self.after.answered.wait()
        await super()._answer(message)


class HeldReplies(InMemoryConnector):
    """An engine's connector whose answers to commands wait for ``release`` (so that another's
    answer comes first)."""

    def __init__(self, broker: InMemoryBroker, source_id: str, release: asyncio.Event) -> None:
        super().__init__(broker, source_id=source_id)
        self.release = release

    async def publish(self, topic: str, payload: Any, qos: int = 0, retain: bool = False) -> None:
        if topic.startswith("cascade/reply/"):
            await self.release.wait()
        await super().publish(topic, payload, qos, retain)


class Among(InMemoryConnector):
    """The command's connector, on a broker where ``others`` connect first (in the command's
    own event loop)."""

    def __init__(self, broker: InMemoryBroker, *others: Forger) -> None:
        super().__init__(broker, presence=False)
        self.others = others

    async def connect(self, *, require: bool = False) -> None:
        for other in self.others:
            await other.start()
        await super().connect(require=require)

    async def disconnect(self) -> None:
        await super().disconnect()
        for other in self.others:
            await other.connector.disconnect()


async def test_an_answer_from_another_source_is_refused_and_the_engines_taken() -> None:
    """A forger answers first, on its own reply topic: refused (said to on_refused, counted),
    as the run's owner is the engine whose telemetry is heard; the engine's answer is taken."""
    broker = InMemoryBroker()
    forger = Forger(broker)
    await forger.start()
    engine = Engine(HeldReplies(broker, "engine-1", forger.answered), heartbeat_interval=None)
    recorder = EventRecorder()
    engine.events.subscribe(recorder)
    run = asyncio.create_task(engine.run([forever(), forever()]))
    await recorder.until(lambda: len(recorder.names(TaskRunning)) == 2)
    (started,) = [e for e in recorder.events if isinstance(e, RunStarted)]
    refusals: list[Refusal] = []
    async with InMemoryConnector(broker, presence=False) as cli:
        answer = await Controller(cli, timeout=5).cancel(started.run_id, on_refused=refusals.append)
    assert answer.reply is not None
    assert (answer.reply.source, answer.reply.cancelled_count) == ("engine-1", 2)
    assert (answer.owner, answer.refused) == ("engine-1", 1)
    assert [str(r) for r in refusals] == [
        f"refused an answer from mallory: run {started.run_id[:12]} belongs to engine-1"
    ]
    with pytest.raises(RunCancelledError):
        await asyncio.wait_for(run, 5)
    await forger.connector.disconnect()


def test_a_forged_answer_for_a_run_no_engine_runs_exits_1(
    invoke: Callable[..., Result], broker: InMemoryBroker
) -> None:
    """Nobody runs the run but a forger answers: its answer is refused and said, nothing is
    said cancelled, and the command exits 1 saying no engine of the run answered."""
    forger = Forger(broker)
    result = invoke("cancel", RUN, "--timeout", "0.3", "--org", "o", "--project", "p",
                    connector_factory=lambda options: Among(broker, forger))  # fmt: skip
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"cascade: refused an answer from mallory: no engine of run {RUN[:12]} was heard",
        f"cascade: no engine answered for run {RUN} within 0.3 s (1 answer was from other "
        "sources refused): it has ended, it runs on another broker, or its engine is not "
        "connected",
    ]


def _recorded(path: Path, run_id: str, source: str) -> None:
    """A history that recorded ``run_id`` from ``source`` (its ENGINE_STARTED)."""
    from cascade.history import History, Received

    started = Envelope(run_id=run_id, org_id="o", project_id="p", source=source, seq=1,
                       body=LifecycleEvent(event="ENGINE_STARTED", tasks=2))  # fmt: skip
    topic = events_topic("o", "p", run_id)
    raw = decode_envelope(json.loads(encode_payload(started)))
    with History(path, mode="write") as history:
        history.store([Received(topic, raw, time.time())])


@pytest.mark.parametrize("answered", [True, False])
def test_the_historys_owner_wins_over_a_live_forger(
    invoke: Callable[..., Result], broker: InMemoryBroker, tmp_path: Path, answered: bool
) -> None:
    """The history recorded the run from host-1; a forger publishes the run's telemetry as
    its own before it answers: its answer is refused all the same, host-1's is taken (and
    without host-1's, exit 1)."""
    db = tmp_path / "h.sqlite3"
    _recorded(db, RUN, "host-1")
    forger = Forger(broker, telemetry=True)
    others: list[Forger] = (
        [forger, Honest(broker, "host-1", after=forger)] if answered else [forger]
    )
    result = invoke("cancel", RUN, "--db", str(db), "--timeout", "0.5" if answered else "0.3",
                    connector_factory=lambda options: Among(broker, *others))  # fmt: skip
    refused = f"cascade: refused an answer from mallory: run {RUN[:12]} belongs to host-1"
    if answered:
        assert result.exit_code == 0, result.output
        assert result.stdout.startswith(f"cancelled run {RUN} on host-1: 99 running tasks")
        assert result.stderr.splitlines() == [refused]
    else:
        assert result.exit_code == 1
        assert result.stdout == ""
        assert result.stderr.splitlines() == [
            refused,
            f"cascade: no engine answered for run {RUN} within 0.3 s (1 answer was from other "
            "sources than host-1 refused): it has ended, it runs on another broker, or its "
            "engine is not connected",
        ]


def test_without_a_history_the_first_source_heard_owns_the_run(
    invoke: Callable[..., Result], broker: InMemoryBroker
) -> None:
    """The rule's limit, as every reader's: with no history, a forger heard on the run's
    telemetry before its engine is taken for its owner (a broker ACL on the telemetry topics,
    the sourced layout, is what stops it)."""
    forger = Forger(broker, telemetry=True)
    result = invoke("cancel", RUN, "--timeout", "5", "--org", "o", "--project", "p",
                    connector_factory=lambda options: Among(broker, forger))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"cancelled run {RUN} on mallory:")


def test_what_the_command_says() -> None:
    """What was cancelled, what runs on in its thread, what will not start."""
    reply = msgspec.convert(
        {
            "id": "r",
            "run_id": RUN,
            "source": "host-1",
            "cancelled": [{"task_id": f"a-{i}", "task_name": f"a{i}"} for i in range(6)],
            "cancelled_count": 7,
            "abandoned": [{"task_id": "s-1", "task_name": "sync_load"}],
            "abandoned_count": 1,
            "not_started": 17,
        },
        CancelReply,
    )
    assert CancelAnswer(RUN, reply=reply).describe() == (
        f"cancelled run {RUN} on host-1: 7 running tasks cancelled (a0, a1, a2, a3, a4 and 2 "
        "more), 1 left to finish in their threads, results discarded (sync_load), 17 not started"
    )


@pytest.mark.parametrize("run_id", ["xyz", RUN + "00", "g" * 32])
def test_a_malformed_run_id_exits_2(invoke: Callable[..., Result], run_id: str) -> None:
    """Not hex, or more than 32 digits: nothing is sent (a prefix: test_run_ids.py)."""
    result = invoke("cancel", run_id)
    assert result.exit_code == 2
    assert "a run id is hex digits: all 32, or a prefix only one run has, not" in result.output


def test_no_engine_answering_exits_1(invoke: Callable[..., Result]) -> None:
    """One line on stderr naming the run and the wait."""
    result = invoke("cancel", RUN, "--timeout", "0.3", "--org", "o", "--project", "p")
    assert result.exit_code == 1
    assert result.stderr.startswith(f"cascade: no engine answered for run {RUN} within 0.3 s")
    assert len(result.stderr.splitlines()) == 1


async def test_the_dashboards_cancel_is_token_gated_and_answered(
    broker: InMemoryBroker, hub: DashboardHub
) -> None:
    """POST /api/runs/ID/cancel: 401 without the token; 400 for a bad id or reason; 504 when
    no engine answers; 200 with what the engine cancelled, issued by the token's name."""
    from cascade.dashboard import Tokens

    hub.timeout = 0.3
    tokens = Tokens.parse([f"bob={TOKEN}"], "dash")
    transport = httpx.ASGITransport(app=create_app(hub, DashboardSettings(token=tokens)))
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
        assert (await http.post(f"/api/runs/{RUN}/cancel")).status_code == 401
        bad = await http.post("/api/runs/xyz/cancel", headers=auth)
        assert (bad.status_code, bad.json()["error"]) == (
            400,
            "a run id is hex digits: all 32, or a prefix only one run has, not 'xyz'",
        )
        reason = await http.post(f"/api/runs/{RUN}/cancel", headers=auth, json={"reason": 5})
        assert reason.status_code == 400
        assert (await http.post(f"/api/runs/{RUN}/cancel", headers=auth)).status_code == 504
        run_id, run = await _running(broker)
        hub.timeout = 5
        done = await http.post(f"/api/runs/{run_id}/cancel", headers=auth, json={"reason": "x"})
    assert done.status_code == 200, done.text
    assert done.json()["cancelled"]["cancelled_count"] == 2
    assert done.json()["said"].startswith(f"cancelled run {run_id} on engine-1: 2 running")
    with pytest.raises(RunCancelledError, match="cancelled by bob: x"):
        await asyncio.wait_for(run, 5)


async def test_the_dashboards_cancel_answers_504_for_a_forged_answer(
    broker: InMemoryBroker, hub: DashboardHub, caplog: pytest.LogCaptureFixture
) -> None:
    """A run nobody heard of is placed nowhere (a cancel's topic names its org and project):
    504 saying nothing was sent; with the run's engine answering after a forger, 200 with the
    engine's, and the forger's answer refused (logged) and counted, never taken."""
    from cascade.dashboard import Tokens

    forger = Forger(broker)
    await forger.start()
    hub.timeout = 0.3
    transport = httpx.ASGITransport(
        app=create_app(hub, DashboardSettings(token=Tokens.parse([f"bob={TOKEN}"], "d")))
    )
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
        forged = await http.post(f"/api/runs/{RUN}/cancel", headers=auth)
        assert (forged.status_code, forged.json()["error"]) == (
            504,
            f"nothing was sent to run {RUN}: its org and project are not known (no history "
            "names the run, and nothing of it was heard within 0.3 s): give them (--org and "
            "--project)",
        )
        assert not forger.answered.is_set()
        forger.answered.clear()
        engine = Engine(HeldReplies(broker, "engine-1", forger.answered), heartbeat_interval=None)
        recorder = EventRecorder()
        engine.events.subscribe(recorder)
        run = asyncio.create_task(engine.run([forever(), forever()]))
        await recorder.until(lambda: len(recorder.names(TaskRunning)) == 2)
        (started,) = [e for e in recorder.events if isinstance(e, RunStarted)]
        hub.timeout = 5
        done = await http.post(f"/api/runs/{started.run_id}/cancel", headers=auth)
    assert done.status_code == 200, done.text
    assert done.json()["said"].startswith(f"cancelled run {started.run_id} on engine-1: 2")
    assert done.json()["refused"] == 1
    assert "refused an answer from mallory: run " in caplog.text
    with pytest.raises(RunCancelledError):
        await asyncio.wait_for(run, 5)
    await forger.connector.disconnect()


def test_views_show_a_cancelled_run_as_cancelled() -> None:
    """ENGINE_STOPPED with cancelled: true is a Cancelled run; without it, Failed as ever."""
    import json

    from cascade.interfaces import Envelope, LifecycleEvent, Message, encode_payload, events_topic
    from cascade.reader import ReaderModel

    state = ReaderModel()
    for run_id, cancelled in ((RUN, True), ("f" * 32, None)):
        body = LifecycleEvent(event="ENGINE_STOPPED", status="Failed", cancelled=cancelled)
        envelope = Envelope(run_id=run_id, org_id="o", project_id="p", source="s", body=body)
        payload = json.loads(encode_payload(envelope))
        state.apply(Message(topic=events_topic("o", "p", run_id), payload=payload))
    assert (state.runs[RUN].status, state.runs["f" * 32].status) == ("Cancelled", "Failed")


def test_a_run_nobody_places_gets_nothing_sent_and_the_error_says_what_to_give(
    invoke: Callable[..., Result], broker: InMemoryBroker
) -> None:
    """No history, no --org/--project, and the run not heard: a cancel's topic names the run's
    org and project, so nothing is sent (the forger listening hears nothing), exit 1."""
    forger = Forger(broker)
    result = invoke("cancel", RUN, "--timeout", "0.3",
                    connector_factory=lambda options: Among(broker, forger))  # fmt: skip
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"cascade: nothing was sent to run {RUN}: its org and project are not known (no history "
        "names the run, and nothing of it was heard within 0.3 s): give them (--org and "
        "--project)"
    ]
    assert not forger.answered.is_set()
