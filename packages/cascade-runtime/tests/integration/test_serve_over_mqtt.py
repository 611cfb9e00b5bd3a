"""Served workflows over a real broker: a plain MQTT client reads the announcement, starts
runs addressed to the server (two at once) or through the shared subscription (mosquitto),
and gets each answer once."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any

import aiomqtt
import msgspec
import pytest

from cascade.connectors.mqtt import MqttConnector
from cascade.interfaces.serving import (
    ServedAnnouncement,
    StartReply,
    StartRequest,
    addressed_start_topic,
    decode_served,
    decode_start_reply,
    served_topic,
    start_topic,
)
from cascade.runtime import Engine, ResultStore, RunFinished, TaskRunning, task
from cascade.runtime.testing import EventRecorder, eventually, serving
from cascade.testkit import (
    NO_SHARED_SUBSCRIPTIONS,
    BrokerEndpoint,
    OwnBroker,
    RabbitMQBroker,
    SharedStore,
    broker_family,
    only_on_family,
    rabbitmq_user,
    skip_on_family,
)


class Gate:
    """A task that waits until released."""

    def __init__(self) -> None:
        self.release = asyncio.Event()

        @task(name="waits")
        async def waits(tag: str) -> str:
            await self.release.wait()
            return tag

        self.waits = waits

    def workflow(self, tag: str = "x") -> Any:
        return self.waits(tag)


@task(name="double")
async def double(n: int) -> int:
    return n * 2


def nightly(n: int = 2) -> Any:
    return double(n)


class Requester:
    """A plain MQTT client: announcements on the exact served topics, answers on reply/#."""

    def __init__(self, client: aiomqtt.Client, prefix: str) -> None:
        self.client = client
        self.prefix = prefix
        self.served: dict[str, list[bytes]] = {}
        self.replies: list[StartReply] = []
        self._changed = asyncio.Event()

    async def read(self) -> None:
        async for message in self.client.messages:
            assert isinstance(message.payload, bytes)
            topic = str(message.topic)
            if topic.startswith(f"{self.prefix}/reply/"):
                self.replies.append(decode_start_reply(message.payload))
            else:
                self.served.setdefault(topic.rsplit("/", 1)[-1], []).append(message.payload)
            self._changed.set()

    async def until(self, predicate: Callable[[], bool], timeout: float = 15.0) -> None:
        async def wait() -> None:
            while not predicate():
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(wait(), timeout)

    def announced(self, source: str) -> ServedAnnouncement | None:
        seen = self.served.get(source)
        return decode_served(seen[-1]) if seen and seen[-1] else None

    def answers(self, request_id: str) -> list[StartReply]:
        return [r for r in self.replies if r.id == request_id]

    async def send(self, request: StartRequest, topic: str) -> None:
        await self.client.publish(topic, msgspec.json.encode(request), qos=1)


@contextlib.asynccontextmanager
async def requester(
    broker: BrokerEndpoint, prefix: str, sources: list[str], org: str = "acme"
) -> AsyncIterator[Requester]:
    async with aiomqtt.Client(broker.host, broker.port) as client:
        for source in sources:  # exact topics: RabbitMQ sends retained ones only to those
            await client.subscribe(served_topic(org, "default", source, prefix), qos=1)
        await client.subscribe(f"{prefix}/reply/#", qos=1)
        reading = Requester(client, prefix)
        reader = asyncio.create_task(reading.read())
        try:
            yield reading
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                await reader


def _engine(
    broker: BrokerEndpoint,
    prefix: str,
    source: str,
    link: Mapping[str, Any] | None = None,
    **options: Any,
) -> Engine:
    """An engine serving under ``source``; ``link``: more options of its connector."""
    connector = MqttConnector(
        broker.host, broker.port, topic_prefix=prefix, source_id=source, **(link or {})
    )
    return Engine(connector, heartbeat_interval=None, connect_wait=1.0, org_id="acme", **options)


async def test_two_runs_started_over_the_broker_run_at_once_and_the_load_is_announced(
    mqtt_broker: BrokerEndpoint, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The probe finds shared subscriptions on mosquitto and none on RabbitMQ, without
    costing the connection; requests addressed to the server start two runs at once, each
    answered once; the announcement shows them live, then none; stopping clears it."""
    gate = Gate()
    engine = _engine(mqtt_broker, prefix, "it-server")
    recorder = EventRecorder()
    engine.events.subscribe(recorder)
    shared = broker_family() == "mosquitto"
    async with requester(mqtt_broker, prefix, ["it-server"]) as asker:
        with caplog.at_level(logging.INFO, "cascade.runtime.serve"):
            async with serving(engine, {"gated": gate.workflow}, max_runs=2):
                if shared:
                    await asker.until(
                        lambda: (a := asker.announced("it-server")) is not None and a.shared
                    )
                else:
                    await eventually(lambda: "no shared subscriptions" in caplog.text)
                for n in (1, 2):
                    request = StartRequest(id=f"a{n}", workflow="gated", params={"tag": str(n)})
                    await asker.send(
                        request,
                        addressed_start_topic("acme", "default", "gated", "it-server", prefix),
                    )
                await asker.until(lambda: bool(asker.answers("a1") and asker.answers("a2")))
                await recorder.until(lambda: len(recorder.names(TaskRunning)) == 2)
                await asker.until(
                    lambda: (a := asker.announced("it-server")) is not None and a.running == 2
                )
                loaded = asker.announced("it-server")
                gate.release.set()
                await recorder.until(lambda: len(recorder.names(RunFinished)) == 2)
                await asker.until(
                    lambda: (a := asker.announced("it-server")) is not None and a.running == 0
                )
                assert engine.connector is not None
                assert engine.connector.is_connected
                assert engine.connector.stats.reconnects == 0  # the probe cost nothing
            await asker.until(lambda: asker.served["it-server"][-1] == b"")  # cleared
    (one,) = asker.answers("a1")
    (two,) = asker.answers("a2")
    assert (one.outcome, two.outcome) == ("started", "started")
    assert loaded is not None
    assert loaded.shared is shared
    assert {r.run_id for r in loaded.live} == {one.run_id, two.run_id}
    ends = {e.run_id: e.status for e in recorder.events if isinstance(e, RunFinished)}
    assert ends == {one.run_id: "Succeeded", two.run_id: "Succeeded"}


@skip_on_family("rabbitmq", NO_SHARED_SUBSCRIPTIONS)
@skip_on_family("nats", NO_SHARED_SUBSCRIPTIONS)
async def test_requests_on_the_shared_topic_go_each_to_one_of_two_servers(
    mqtt_broker: BrokerEndpoint, prefix: str
) -> None:
    """Two engines serve nightly; each of 12 requests on start/nightly is taken by exactly
    one of them (one answer each), and both take some."""
    sources = ["it-server-a", "it-server-b"]
    engines = [_engine(mqtt_broker, prefix, s) for s in sources]
    recorder = EventRecorder()
    for engine in engines:
        engine.events.subscribe(recorder)
    ids = [f"s{i}" for i in range(12)]
    async with (
        requester(mqtt_broker, prefix, sources) as asker,
        serving(engines[0], {"nightly": nightly}),
        serving(engines[1], {"nightly": nightly}),
    ):
        await asker.until(
            lambda: all((a := asker.announced(s)) is not None and a.shared for s in sources)
        )
        for request_id in ids:
            request = StartRequest(id=request_id, workflow="nightly", params={"n": 3})
            await asker.send(request, start_topic("acme", "default", "nightly", prefix))
        await asker.until(lambda: all(asker.answers(i) for i in ids))
        await recorder.until(lambda: len(recorder.names(RunFinished)) == len(ids))
    answers = [asker.answers(i) for i in ids]
    assert all(len(a) == 1 and a[0].started for a in answers)
    by = [a[0].source for a in answers]
    assert set(by) == set(sources)
    assert [e.stats.starts_taken for e in engines] == [by.count(s) for s in sources]


async def test_after_a_broker_restart_it_announces_again_and_takes_requests(
    own_broker: OwnBroker, prefix: str
) -> None:
    """A broker restarted (mosquitto loses its retained messages without persistence): once
    reconnected, the engine announces again, and a request is answered."""
    endpoint: BrokerEndpoint = own_broker
    # its reconnections back off to 1 s at most, not 30: a restart of 10-20 s was waited out
    # up to twice over (the attempt after it came seconds after the broker was back)
    engine = _engine(endpoint, prefix, "it-restarted", link={"backoff_max": 1.0})
    connector = engine.connector
    assert isinstance(connector, MqttConnector)
    async with serving(engine, {"nightly": nightly}):
        async with requester(endpoint, prefix, ["it-restarted"]) as asker:
            await asker.until(lambda: asker.announced("it-restarted") is not None)
        reconnects = connector.stats.reconnects
        await asyncio.to_thread(own_broker.restart)
        await eventually(lambda: connector.stats.reconnects > reconnects, timeout=30)
        async with requester(endpoint, prefix, ["it-restarted"]) as asker:
            await asker.until(lambda: asker.announced("it-restarted") is not None, timeout=30)
            request = StartRequest(id="after", workflow="nightly")
            await asker.send(
                request, addressed_start_topic("acme", "default", "nightly", "it-restarted", prefix)
            )
            await asker.until(lambda: bool(asker.answers("after")), timeout=30)
    assert asker.answers("after")[0].started


async def test_a_failed_served_run_is_rerun_by_a_request_reusing_what_succeeded(
    mqtt_broker: BrokerEndpoint, prefix: str, tmp_path: Path
) -> None:
    """load(transform(extract(5))) started by a request fails at transform; the cause fixed,
    a rerun request naming it by 12 hex digits answers with the plan and starts a run that
    reuses extract (its function ran once in all) and succeeds."""
    calls = {"extract": 0, "transform": 0}
    broken = True

    @task(name="extract")
    def extract(n: int) -> list[int]:
        calls["extract"] += 1
        return list(range(n))

    @task(name="transform")
    def transform(rows: list[int]) -> list[int]:
        calls["transform"] += 1
        if broken:
            raise ValueError("bad rows")
        return [r * 2 for r in rows]

    @task(name="load")
    def load(rows: list[int]) -> int:
        return sum(rows)

    def etl(n: int = 5) -> Any:
        return load(transform(extract(n)))

    engine = _engine(mqtt_broker, prefix, "it-rerun", results=tmp_path)
    recorder = EventRecorder()
    engine.events.subscribe(recorder)

    def ended(run_id: str | None) -> str | None:
        return next(
            (
                e.status
                for e in recorder.events
                if isinstance(e, RunFinished) and e.run_id == run_id
            ),
            None,
        )

    topic = addressed_start_topic("acme", "default", "nightly", "it-rerun", prefix)
    async with (
        requester(mqtt_broker, prefix, ["it-rerun"]) as asker,
        serving(engine, {"nightly": etl}),
    ):
        await asker.until(lambda: asker.announced("it-rerun") is not None)
        await asker.send(StartRequest(id="first", workflow="nightly"), topic)
        await asker.until(lambda: bool(asker.answers("first")))
        (first,) = asker.answers("first")
        await recorder.until(lambda: ended(first.run_id) is not None)
        await asker.until(lambda: (a := asker.announced("it-rerun")) is not None and a.running == 0)
        assert first.run_id is not None
        assert ended(first.run_id) == "Failed"
        broken = False
        await asker.send(
            StartRequest(id="again", workflow="nightly", rerun_of=first.run_id[:12]), topic
        )
        await asker.until(lambda: bool(asker.answers("again")))
        (again,) = asker.answers("again")
        await recorder.until(lambda: ended(again.run_id) is not None)
    assert (again.outcome, again.rerun_of) == ("started", first.run_id)
    assert [(p.task_name, p.action) for p in again.plan] == [
        ("extract", "reuse"),
        ("transform", "run"),
        ("load", "run"),
    ]
    assert ended(again.run_id) == "Succeeded"
    assert calls == {"extract": 1, "transform": 2}


async def test_one_rerun_request_sent_to_two_servers_sharing_a_store_starts_one_run(
    mqtt_broker: BrokerEndpoint, prefix: str, shared_store: SharedStore
) -> None:
    """Two engines serve the same workflow and keep results in one store (a directory, an S3
    bucket), each its own store object as in two processes; a failed run's
    rerun, one request addressed to both at once: one starts it, the other refuses, naming the
    server that took it (by the claim in the store, or by that server's announcement when it
    came first)."""
    sources = ["it-share-a", "it-share-b"]
    gate = Gate()
    broken = True

    @task(name="fails")
    async def fails(tag: str) -> str:
        if broken:
            raise ValueError("not yet")
        return tag

    def workflow(tag: str = "x") -> Any:
        return gate.waits(fails(tag))

    engines = [
        _engine(
            mqtt_broker,
            prefix,
            s,
            results=ResultStore(shared_store.url, storage_options=shared_store.storage_options),
        )
        for s in sources
    ]
    recorder = EventRecorder()
    for engine in engines:
        engine.events.subscribe(recorder)
    async with (
        requester(mqtt_broker, prefix, sources) as asker,
        serving(engines[0], {"nightly": workflow}),
        serving(engines[1], {"nightly": workflow}),
    ):
        await asker.until(lambda: all(asker.announced(s) is not None for s in sources))
        topics = [addressed_start_topic("acme", "default", "nightly", s, prefix) for s in sources]
        await asker.send(StartRequest(id="first", workflow="nightly"), topics[0])
        await asker.until(lambda: bool(asker.answers("first")))
        (first,) = asker.answers("first")
        await recorder.until(lambda: len(recorder.names(RunFinished)) == 1)
        broken = False
        request = StartRequest(id="again", workflow="nightly", rerun_of=first.run_id)
        await asyncio.gather(*(asker.send(request, topic) for topic in topics))
        await asker.until(lambda: len(asker.answers("again")) == 2)
        refused, started = sorted(asker.answers("again"), key=lambda r: r.outcome)
        gate.release.set()
        await recorder.until(lambda: len(recorder.names(RunFinished)) == 2)
    assert (refused.outcome, started.outcome) == ("refused", "started")
    assert refused.error in (
        f"request again was taken already: {started.run_id} on {started.source}",
        f"a rerun of {first.run_id} is live: on {started.source}",
    )
    assert sum(e.stats.starts_taken for e in engines) == 2


@only_on_family("rabbitmq", "it adds a user with topic permissions to the RabbitMQ node")
async def test_on_rabbitmq_with_topic_permissions_serving_keeps_its_connection(
    mqtt_broker: BrokerEndpoint, prefix: str
) -> None:
    """RabbitMQ closes the connection on a subscription its permissions deny: an engine whose
    login may read its prefix's topics only (no ``$share/...``) serves without losing its
    connection once (nothing is probed there), and takes a request addressed to it."""
    assert isinstance(mqtt_broker, RabbitMQBroker)
    broker = mqtt_broker
    login = f"etl-{prefix}"  # the node is the session's: a user of this test's own
    broker.add_definitions({
        "users": [rabbitmq_user(login, "pw")],
        "permissions": [
            {"user": login, "vhost": "/", "configure": ".*", "write": ".*", "read": ".*"}
        ],
        "topic_permissions": [
            {"user": login, "vhost": "/", "exchange": "amq.topic",
             "write": ".*", "read": rf"^{prefix}\..*"},
        ],
    })  # fmt: skip
    connector = MqttConnector(
        broker.host, broker.port, username=login, password="pw", topic_prefix=prefix,
        source_id="etl",
    )  # fmt: skip
    engine = Engine(connector, heartbeat_interval=None, connect_wait=1.0)
    recorder = EventRecorder()
    engine.events.subscribe(recorder)
    async with (
        requester(broker, prefix, ["etl"], org="local") as asker,
        serving(engine, {"nightly": nightly}),
    ):
        await asker.until(lambda: asker.announced("etl") is not None)
        await asker.send(
            StartRequest(id="r1", workflow="nightly"),
            addressed_start_topic("local", "default", "nightly", "etl", prefix),
        )
        await asker.until(lambda: bool(asker.answers("r1")))
        await recorder.until(lambda: bool(recorder.names(RunFinished)))
        assert connector.is_connected
        assert connector.stats.reconnects == 0
    assert asker.answers("r1")[0].started
    announced = asker.announced("etl")
    assert announced is None or not announced.shared
