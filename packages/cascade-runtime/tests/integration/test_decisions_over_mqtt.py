"""A task held for a decision over a real broker: a plain MQTT client sees it BLOCKED with a
decision hold, publishes a retry on the run's decide topic, gets the answer; the run succeeds."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import aiomqtt
import pytest

from cascade.connector_kit import Subscription
from cascade.connectors.mqtt import MqttConnector
from cascade.interfaces import Message, MessageCallback, SyncCallback
from cascade.interfaces.commands import decide_topic, reply_topic
from cascade.runtime import (
    DependencyMissingError,
    Engine,
    Event,
    RunFinished,
    RunStarted,
    TaskHeld,
    task,
)
from cascade.runtime.testing import EventRecorder
from cascade.testkit import BrokerEndpoint


class _Answers(dict[str, dict[str, Any]]):
    """The answers to decisions a plain client hears (on ``{prefix}/reply/#``), by request id."""

    def __init__(self, client: aiomqtt.Client) -> None:
        super().__init__()
        self._client = client
        self._arrived = asyncio.Event()

    async def read(self) -> None:
        async for message in self._client.messages:
            assert isinstance(message.payload, bytes)
            answer = json.loads(message.payload)
            self[answer["id"]] = answer
            self._arrived.set()

    async def until(self, wanted: int | str) -> None:
        """Until ``wanted`` answers are in (a count), or the answer to ``wanted`` (an id)."""
        while len(self) < wanted if isinstance(wanted, int) else wanted not in self:
            self._arrived.clear()
            await self._arrived.wait()


async def test_a_plain_client_retries_a_held_task_and_the_run_succeeds(
    mqtt_broker: BrokerEndpoint, prefix: str, plain_client: aiomqtt.Client
) -> None:
    calls = 0

    @task(name="load", on_failure="hold")
    async def load(n: int) -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("the API is down")
        return n * 2

    @task(name="report")
    async def report(value: int) -> str:
        return f"report of {value}"

    connector = MqttConnector(
        mqtt_broker.host, mqtt_broker.port, topic_prefix=prefix, source_id="it-engine"
    )
    engine = Engine(connector, heartbeat_interval=None)
    recorder = EventRecorder()
    engine.events.subscribe(recorder)
    received: list[tuple[str, Any]] = []
    arrived = asyncio.Event()

    async def read() -> None:
        async for message in plain_client.messages:
            assert isinstance(message.payload, bytes)
            received.append((str(message.topic), json.loads(message.payload)))
            arrived.set()

    async def until(predicate: Any) -> None:
        async def wait() -> None:
            while not predicate():
                arrived.clear()
                await arrived.wait()

        await asyncio.wait_for(wait(), 15)

    def held_events() -> list[Any]:
        return [
            p["body"]
            for t, p in received
            if t.endswith("/events") and p["body"].get("task_name") == "load"
            and p["body"].get("state") == "BLOCKED"
        ]  # fmt: skip

    await plain_client.subscribe(f"{prefix}/telemetry/#", qos=1)
    await plain_client.subscribe(f"{prefix}/reply/#", qos=1)
    reader = asyncio.create_task(read())
    try:
        run = asyncio.create_task(engine.run(report(load(4))))
        await recorder.until(lambda: any(isinstance(e, TaskHeld) for e in recorder.events))
        (run_id,) = [e.run_id for e in recorder.events if isinstance(e, RunStarted)]
        await until(lambda: bool(held_events()))
        (held,) = held_events()
        assert held["error"] == "ConnectionError: the API is down"
        assert [h["type"] for h in held["held_by"]] == ["decision"]
        assert held["held_by"][0]["attempt"] == 1
        request = {
            "id": "plain-1",
            "run_id": run_id,
            "task": "load",
            "decision": "retry",
            "attempt": 1,
            "issued_by": "alice",
            "reason": "the API is back",
        }
        await plain_client.publish(
            decide_topic(engine.org_id, engine.project_id, run_id, prefix),
            json.dumps(request),
            qos=1,
        )
        answer_topic = reply_topic(engine.org_id, "plain-1", "it-engine", prefix)
        await until(lambda: any(t == answer_topic for t, _ in received))
        assert await asyncio.wait_for(run, 15) == "report of 8"
    finally:
        reader.cancel()
    (reply,) = [p for t, p in received if t == answer_topic]
    assert reply["outcome"] == "applied"
    assert (reply["task_name"], reply["attempt"], reply["source"]) == ("load", 1, "it-engine")
    assert reply["decided"]["by"] == "alice"
    assert reply["decided"]["decision"] == "retry"
    assert calls == 2


async def test_decisions_arriving_as_and_after_one_ends_the_run_are_each_answered(
    mqtt_broker: BrokerEndpoint, prefix: str, plain_client: aiomqtt.Client
) -> None:
    """Sixteen decisions at once on one held task whose first ends the run, then four more once
    it has ended: every one is answered, one applied, the rest already decided; counted."""
    calls = 0

    @task(name="load", on_failure="hold")
    async def load() -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("the API is down")
        return 2

    connector = MqttConnector(
        mqtt_broker.host, mqtt_broker.port, topic_prefix=prefix, source_id="it-engine"
    )
    engine = Engine(connector, heartbeat_interval=None)
    recorder = EventRecorder()
    engine.events.subscribe(recorder)
    answers = _Answers(plain_client)

    kinds = ["retry", "skip", "fail", "complete"]
    await plain_client.subscribe(f"{prefix}/reply/#", qos=1)
    reader = asyncio.create_task(answers.read())
    async with connector:  # a connection that outlives the run, as a serving engine's does
        run = asyncio.create_task(engine.run(load()))
        try:
            await recorder.until(lambda: any(isinstance(e, TaskHeld) for e in recorder.events))
            (run_id,) = [e.run_id for e in recorder.events if isinstance(e, RunStarted)]
            topic = decide_topic(engine.org_id, engine.project_id, run_id, prefix)

            async def decide(n: int, attempt: int | None) -> None:
                request: dict[str, Any] = {"id": f"d-{n}", "run_id": run_id, "task": "load"}
                request.update(decision=kinds[n % 4], issued_by=f"op-{n}")
                if attempt is not None:
                    request["attempt"] = attempt
                await plain_client.publish(topic, json.dumps(request), qos=1)

            await asyncio.gather(*(decide(n, 1) for n in range(16)))
            with contextlib.suppress(Exception):
                await asyncio.wait_for(run, 15)  # the first decision ended it, however
            await asyncio.gather(*(decide(n, None) for n in range(16, 20)))
            await asyncio.wait_for(answers.until(20), 15)
        finally:
            run.cancel()
            reader.cancel()
    applied = [a for a in answers.values() if a["outcome"] == "applied"]
    assert len(applied) == 1
    first = applied[0]["decided"]
    refused = [a for a in answers.values() if a is not applied[0]]
    assert {a["outcome"] for a in refused} == {"already_decided"}
    assert {a["decided"]["id"] for a in refused} == {first["id"]}
    assert {a["task_id"] for a in answers.values()} == {applied[0]["task_id"]}
    assert (engine.stats.decisions, engine.stats.decisions_refused) == (1, 19)


async def test_a_run_that_owns_its_connection_answers_every_decision_it_got_before_closing_it(
    mqtt_broker: BrokerEndpoint, prefix: str, plain_client: aiomqtt.Client
) -> None:
    """``Engine(connector).run(...)``: the run connects, and disconnects at its end. Sixteen
    decisions published at once by sixteen operators on its held task, in five runs one after
    another: the first of
    each round ends its run, and each of the sixteen is answered before the connection closes
    (the engine waits for what the broker routed to it, then for its answers to be taken).

    The engine's reader is held until the broker has acknowledged all sixteen: what is promised
    is an answer to each decision routed to the run before it ends, and a loaded broker may
    route one operator's publish after the first decision has ended the run."""
    kinds = ["retry", "skip", "fail", "complete"]
    answers = _Answers(plain_client)

    await plain_client.subscribe(f"{prefix}/reply/#", qos=1)
    reader = asyncio.create_task(answers.read())
    connector = MqttConnector(
        mqtt_broker.host, mqtt_broker.port, topic_prefix=prefix, source_id="it-owns"
    )
    engine = Engine(connector, heartbeat_interval=None)  # not connected: each run connects
    recorder = EventRecorder()
    engine.events.subscribe(recorder)
    routed = asyncio.Event()  # the broker acknowledged the round's sixteen decisions

    async def until_routed(message: Message) -> None:
        await routed.wait()

    # subscribed before any run's: the reader holds each command here before the run sees it
    await connector.subscribe(f"{prefix}/command/#", until_routed)
    rounds = 5
    operators = [aiomqtt.Client(mqtt_broker.host, mqtt_broker.port) for _ in range(16)]
    stack = contextlib.AsyncExitStack()
    for operator in operators:  # sixteen operators, each on a connection of their own
        await stack.enter_async_context(operator)
    try:
        for round_ in range(rounds):
            calls = 0

            @task(name="load", on_failure="hold")
            async def load() -> int:
                nonlocal calls
                calls += 1
                if calls == 1:
                    raise ConnectionError("the API is down")
                return 2

            recorder.events.clear()
            routed.clear()
            run = asyncio.create_task(engine.run(load()))
            try:
                await recorder.until(lambda: any(isinstance(e, TaskHeld) for e in recorder.events))
                (run_id,) = [e.run_id for e in recorder.events if isinstance(e, RunStarted)]
                topic = decide_topic(engine.org_id, engine.project_id, run_id, prefix)

                async def decide(
                    operator: aiomqtt.Client, n: int, run_id: str = run_id, topic: str = topic
                ) -> None:
                    request: dict[str, Any] = {"id": f"d-{n}", "run_id": run_id, "task": "load"}
                    request.update(decision=kinds[n % 4], issued_by=f"op-{n}", attempt=1)
                    await operator.publish(topic, json.dumps(request), qos=1)

                await asyncio.gather(*(decide(operators[n], 16 * round_ + n) for n in range(16)))
                routed.set()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(run, 15)  # the first decision ended it, however
                assert not connector.is_connected  # the run closed its connection
            finally:
                run.cancel()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(answers.until(16 * (round_ + 1)), 5)
    finally:
        reader.cancel()
        await stack.aclose()
    by_round = [sum(1 for n in range(16) if f"d-{16 * r + n}" in answers) for r in range(rounds)]
    assert by_round == [16] * rounds, by_round
    applied = [a for a in answers.values() if a["outcome"] == "applied"]
    assert len(applied) == rounds
    refused = {a["outcome"] for a in answers.values() if a["outcome"] != "applied"}
    assert refused == {"already_decided"}
    assert (engine.stats.decisions, engine.stats.decisions_refused) == (rounds, 15 * rounds)


class _Resuming(MqttConnector):
    """An MQTT connector whose reader an application's slow callback holds (``held``) until the
    run, ended, comes back to the connection (subscribes again, or disconnects)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.resume = asyncio.Event()
        self.ending = False  # set once the run has ended

    async def held(self, message: Message) -> None:
        await self.resume.wait()

    async def subscribe(
        self, topic_filter: str, callback: MessageCallback, *, on_sync: SyncCallback | None = None
    ) -> Subscription:
        if self.ending:
            self.resume.set()
        return await super().subscribe(topic_filter, callback, on_sync=on_sync)

    async def disconnect(self) -> None:
        if self.ending:
            self.resume.set()
        await super().disconnect()


async def test_decisions_the_connection_got_before_the_run_closed_it_are_answered(
    mqtt_broker: BrokerEndpoint, prefix: str, plain_client: aiomqtt.Client
) -> None:
    """A run that owns its connection, whose reader is behind (slow callbacks of the
    application's hold it) as the first of five decisions ends the run: the four behind it had
    reached the connection (acknowledged by the broker) and are answered before it closes, not
    dropped with it."""
    answers = _Answers(plain_client)

    @task(name="load", on_failure="hold")
    async def load() -> int:
        raise ConnectionError("the API is down")

    await plain_client.subscribe(f"{prefix}/reply/#", qos=1)
    reader = asyncio.create_task(answers.read())
    connector = _Resuming(
        mqtt_broker.host, mqtt_broker.port, topic_prefix=prefix, source_id="it-behind"
    )
    engine = Engine(connector, heartbeat_interval=None)  # not connected: the run connects
    recorder = EventRecorder()
    engine.events.subscribe(recorder)

    def ending(event: Event) -> None:
        connector.ending = connector.ending or isinstance(event, RunFinished)

    engine.events.subscribe(ending)
    run = asyncio.create_task(engine.run(load()))
    try:
        await recorder.until(lambda: any(isinstance(e, TaskHeld) for e in recorder.events))
        (run_id,) = [e.run_id for e in recorder.events if isinstance(e, RunStarted)]
        topic = decide_topic(engine.org_id, engine.project_id, run_id, prefix)
        await connector.subscribe(topic, connector.held)  # after the run's: it gets each first
        go = asyncio.Event()

        async def slow(message: Message) -> None:
            await go.wait()

        await connector.subscribe(f"{prefix}/slow", slow)
        await plain_client.publish(f"{prefix}/slow", b"{}", qos=1)  # the reader waits on it
        for n in range(5):  # each routed to the engine's connection once acknowledged
            request = {"id": f"d-{n}", "run_id": run_id, "task": "load", "decision": "skip"}
            await plain_client.publish(topic, json.dumps(request), qos=1)
        go.set()  # d-0 ends the run; the four behind it wait in the connection
        with pytest.raises(DependencyMissingError):  # skipped: the target has no result
            await asyncio.wait_for(run, 15)
        assert not connector.is_connected
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(answers.until(5), 5)
    finally:
        run.cancel()
        reader.cancel()
    assert sorted(answers) == [f"d-{n}" for n in range(5)]
    assert [answers[f"d-{n}"]["outcome"] for n in range(5)] == ["applied"] + ["already_decided"] * 4
    assert (engine.stats.decisions, engine.stats.decisions_refused) == (1, 4)
