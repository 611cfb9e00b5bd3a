"""`cascade cancel` against a real broker and a real engine; a cancel is a command, not state."""

from __future__ import annotations

import asyncio
import inspect
import threading
import uuid
from typing import Any

import aiomqtt
import msgspec
import pytest
from typer.testing import CliRunner, Result

from cascade.cli import app
from cascade.connector_kit import Subscription, bounded
from cascade.connectors.mqtt import MqttConnector
from cascade.interfaces import Message, MessageCallback, decode_envelope
from cascade.interfaces.commands import CancelReply, CancelRequest, cancel_topic, reply_topic
from cascade.runtime import Engine, RunCancelledError, RunStarted, TaskRunning, task
from cascade.runtime.testing import EventRecorder
from cascade.testkit import BrokerEndpoint, Inbox

PLACE = ("--org", "local", "--project", "default")  # an engine's own, by default


def cascade(broker: BrokerEndpoint, *args: str, timeout: str = "10") -> Result:
    """`cascade ARGS` in-process against ``broker``."""
    address = ["--host", broker.host, "--port", str(broker.port), "--timeout", timeout]
    return CliRunner().invoke(app, [*args, *address])


async def test_cancel_stops_a_real_run_and_says_what_it_stopped(
    mqtt_broker: BrokerEndpoint, scope_name: str
) -> None:
    """The engine answers over the broker: the coroutine is cancelled, the thread left to
    finish, the dependants never start; the run ends Failed with cancelled: true, the
    canceller's name and reason in its error, and `cascade cancel` exits 0 saying so."""
    release, thread_done = threading.Event(), threading.Event()
    started_after: list[str] = []

    @task(name=f"{scope_name}_waits")
    async def waits() -> int:
        await asyncio.Event().wait()
        return 0

    @task(name=f"{scope_name}_blocks")
    def blocks() -> int:
        release.wait(20)
        thread_done.set()
        return 1

    @task(name=f"{scope_name}_after")
    async def after(value: int) -> int:
        started_after.append("after")
        return value

    source = f"engine-{scope_name}"
    engine = Engine(
        MqttConnector(mqtt_broker.host, mqtt_broker.port, source_id=source),
        heartbeat_interval=None,
    )
    recorder = EventRecorder()
    engine.events.subscribe(recorder)
    async with MqttConnector(mqtt_broker.host, mqtt_broker.port, presence=False) as observer:
        events = Inbox()
        await observer.subscribe("cascade/telemetry/+/+/+/events", events)
        run = asyncio.create_task(engine.run([after(waits()), after(blocks())]))
        try:
            await recorder.until(lambda: len(recorder.names(TaskRunning)) == 2)
            (started,) = [e for e in recorder.events if isinstance(e, RunStarted)]
            run_id = started.run_id
            said = await asyncio.to_thread(
                cascade, mqtt_broker, "cancel", run_id, "--reason", "wrong input", "--as", "alice"
            )
            assert said.exit_code == 0, said.output
            assert said.stdout == (
                f"cancelled run {run_id} on {source}: 1 running tasks cancelled "
                f"({scope_name}_waits), 1 left to finish in their threads, results discarded "
                f"({scope_name}_blocks), 2 not started\n"
            )
            with pytest.raises(RunCancelledError, match="cancelled by alice: wrong input"):
                await asyncio.wait_for(run, 10)
            assert not thread_done.is_set()  # its thread runs on; the run did not wait for it
        finally:
            release.set()
        stopped = await events.until(
            lambda m: (
                m.payload.get("run_id") == run_id
                and m.payload["body"].get("event") == "ENGINE_STOPPED"
            )
        )
    body = decode_envelope(stopped.raw).body
    assert (body.status, body.cancelled) == ("Failed", True)  # type: ignore[union-attr]
    assert body.error == f"RunCancelledError: run {run_id} was cancelled by alice: wrong input"  # type: ignore[union-attr]
    assert started_after == []
    await asyncio.to_thread(thread_done.wait, 20)


def test_cancel_of_a_run_no_engine_runs_exits_1_and_leaves_nothing(
    mqtt_broker: BrokerEndpoint,
) -> None:
    """Nobody answers: exit 1 after --timeout, one line; the request was not retained."""
    run_id = uuid.uuid4().hex
    result = cascade(mqtt_broker, "cancel", run_id, *PLACE, timeout="1")
    assert result.exit_code == 1
    assert f"no engine answered for run {run_id} within 1 s" in result.stderr

    async def retained() -> list[object]:
        async with MqttConnector(mqtt_broker.host, mqtt_broker.port, presence=False) as late:
            inbox = Inbox()
            await late.subscribe(
                cancel_topic(*PLACE[1::2], run_id), inbox
            )  # returns after retained ones
            return list(inbox.all)

    assert asyncio.run(retained()) == []


async def test_an_engine_away_when_a_cancel_is_sent_does_not_get_it_later(
    mqtt_broker: BrokerEndpoint,
) -> None:
    """The connector's sessions are clean: once an engine's connection ends, the broker keeps
    nothing for its client id, so a cancel sent while it is away is never delivered to it.
    Seen from a plain client that takes the same client id back asking to resume a session
    (clean_session=False): whatever the broker had kept would arrive before a marker."""
    run_id = uuid.uuid4().hex
    client_id = f"away-{run_id[:8]}"
    topic = cancel_topic(*PLACE[1::2], run_id)
    engine_side = MqttConnector(
        mqtt_broker.host, mqtt_broker.port, presence=False, client_id=client_id
    )
    await engine_side.connect(require=True)
    await engine_side.subscribe(topic, Inbox())
    await engine_side.disconnect()  # away
    said = await asyncio.to_thread(cascade, mqtt_broker, "cancel", run_id, *PLACE, timeout="1")
    assert said.exit_code == 1  # nobody answered: the one subscriber was away
    received: list[bytes] = []
    resumed = aiomqtt.Client(
        mqtt_broker.host, mqtt_broker.port, identifier=client_id, clean_session=False
    )
    try:
        async with resumed, aiomqtt.Client(mqtt_broker.host, mqtt_broker.port) as other:
            await resumed.subscribe(topic, qos=1)
            await other.publish(topic, b'{"marker": 1}', qos=1)
            async with bounded(10):
                async for message in resumed.messages:
                    received.append(bytes(message.payload))
                    if b"marker" in received[-1]:
                        break
    finally:  # end the session this test's client asked the broker to keep
        async with aiomqtt.Client(
            mqtt_broker.host, mqtt_broker.port, identifier=client_id, clean_session=True
        ):
            pass
    assert received == [b'{"marker": 1}']


class _Forger:
    """Anyone who can publish: subscribed to every cancel, it answers at once as ``source``
    on its own reply topic (what a broker ACL would let it), saying it cancelled 99 tasks."""

    def __init__(self, broker: BrokerEndpoint, source: str) -> None:
        self.source = source
        self.connector = MqttConnector(broker.host, broker.port, presence=False, source_id=source)

    async def __aenter__(self) -> _Forger:
        await self.connector.connect(require=True)
        await self.connector.subscribe("cascade/command/+/+/+/cancel", self._answer)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.connector.disconnect()

    async def _answer(self, message: Message) -> None:
        request = msgspec.json.decode(message.raw, type=CancelRequest)
        forged = CancelReply(
            id=request.id, run_id=request.run_id, source=self.source, cancelled_count=99
        )
        await self.connector.publish(reply_topic("local", request.id, self.source), forged, qos=1)


class _HeldCommands(MqttConnector):
    """An engine's connector that hands it each command once ``release`` is set (so that a
    forger's answer reaches the broker first). A thread's event: the connector's callbacks
    run on a loop of its own."""

    def __init__(
        self, broker: BrokerEndpoint, source: str, release: threading.Event, *, sourced: bool
    ) -> None:
        super().__init__(broker.host, broker.port, source_id=source, sourced_topics=sourced)
        self.release = release

    async def subscribe(
        self, topic_filter: str, callback: MessageCallback, **options: Any
    ) -> Subscription:
        if "/command/" not in topic_filter:
            return await super().subscribe(topic_filter, callback, **options)

        async def held(message: Message) -> None:
            await asyncio.to_thread(self.release.wait, 10)
            handled = callback(message)
            if inspect.isawaitable(handled):
                await handled

        return await super().subscribe(topic_filter, held, **options)


@pytest.mark.parametrize("sourced", [False, True], ids=["unsourced", "sourced"])
async def test_a_forged_answer_is_refused_and_the_engines_taken(
    mqtt_broker: BrokerEndpoint, scope_name: str, sourced: bool
) -> None:
    """A forger answers first, on its own reply topic: `cascade cancel` says it refused it (the
    run belongs to the engine its telemetry is heard from, in either layout) and takes the
    engine's answer."""

    @task(name=f"{scope_name}_waits")
    async def waits() -> int:
        await asyncio.Event().wait()
        return 0

    source, mallory = f"engine-{scope_name}", f"mallory-{scope_name}"
    forged = threading.Event()
    engine = Engine(
        _HeldCommands(mqtt_broker, source, forged, sourced=sourced), heartbeat_interval=None
    )
    recorder = EventRecorder()
    engine.events.subscribe(recorder)
    async with (
        _Forger(mqtt_broker, mallory),
        MqttConnector(mqtt_broker.host, mqtt_broker.port, presence=False) as observer,
    ):
        await observer.subscribe(f"cascade/reply/+/+/{mallory}", lambda message: forged.set())
        run = asyncio.create_task(engine.run([waits(), waits()]))
        await recorder.until(lambda: len(recorder.names(TaskRunning)) == 2)
        (started,) = [e for e in recorder.events if isinstance(e, RunStarted)]
        run_id = started.run_id
        # placed (a cancel's topic names it), its owner heard from its telemetry
        said = await asyncio.to_thread(cascade, mqtt_broker, "cancel", run_id, *PLACE)
        with pytest.raises(RunCancelledError):
            await asyncio.wait_for(run, 10)
    assert said.exit_code == 0, said.output
    assert said.stdout.startswith(f"cancelled run {run_id} on {source}: 2 running tasks")
    assert said.stderr.splitlines() == [
        f"cascade: refused an answer from {mallory}: run {run_id[:12]} belongs to {source}"
    ]


async def test_a_forged_answer_for_a_run_no_engine_runs_exits_1(
    mqtt_broker: BrokerEndpoint, scope_name: str
) -> None:
    """Only a forger answers (the run is unknown, or has ended): nothing is said cancelled;
    exit 1, saying the forged answer was refused."""
    run_id, mallory = uuid.uuid4().hex, f"mallory-{scope_name}"
    async with _Forger(mqtt_broker, mallory):
        said = await asyncio.to_thread(cascade, mqtt_broker, "cancel", run_id, *PLACE, timeout="1")
    assert said.exit_code == 1
    assert said.stdout == ""
    assert said.stderr.splitlines() == [
        f"cascade: refused an answer from {mallory}: no engine of run {run_id[:12]} was heard",
        f"cascade: no engine answered for run {run_id} within 1 s (1 answer was from other "
        "sources refused): it has ended, it runs on another broker, or its engine is not "
        "connected",
    ]
