"""Engine(connect_wait=): what a broker that accepts TCP but never answers costs a run."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import aiomqtt
import pytest

from cascade.connectors.mqtt import MqttConnector
from cascade.interfaces import Constraint, constraint_topic, encode_payload
from cascade.runtime import Engine, Event, TaskBlocked, task
from cascade.testkit import BrokerEndpoint

CONNECTOR_TIMEOUT = 10.0  # the connector's own bound, far above the engine's connect_wait


class SilentThenForwarding:
    """A TCP listener that accepts connections and never answers on them, until
    :meth:`forward` is called: connections made after that are piped to the broker."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.forwarding = False
        self.accepted = 0
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self._pumps: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)

    def forward(self) -> None:
        self.forwarding = True

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        self._writers.append(writer)
        if not self.forwarding:
            return  # held open, never read from nor written to
        upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        self._writers.append(upstream_writer)
        for source, sink in ((reader, upstream_writer), (upstream_reader, writer)):
            pump = asyncio.create_task(self._pump(source, sink))
            self._pumps.add(pump)
            pump.add_done_callback(self._pumps.discard)

    @staticmethod
    async def _pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()
        sink.close()

    async def close(self) -> None:
        for pump in list(self._pumps):
            pump.cancel()
        await asyncio.gather(*self._pumps, return_exceptions=True)
        for writer in self._writers:
            writer.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


@pytest.fixture
async def silent(mqtt_broker: BrokerEndpoint) -> AsyncIterator[SilentThenForwarding]:
    server = SilentThenForwarding(mqtt_broker.host, mqtt_broker.port)
    await server.start()
    yield server
    await server.close()


def _connector(server: SilentThenForwarding, prefix: str) -> MqttConnector:
    return MqttConnector(
        "127.0.0.1",
        server.port,
        topic_prefix=prefix,
        source_id="wait-engine",
        connect_timeout=CONNECTOR_TIMEOUT,
        backoff_initial=0.05,
        backoff_max=0.2,
    )


async def test_a_silent_broker_delays_the_first_task_by_connect_wait_only(
    silent: SilentThenForwarding, prefix: str
) -> None:
    """The first task starts after connect_wait, not after the connector's connect timeout."""
    started: list[float] = []

    @task
    async def first() -> int:
        started.append(time.monotonic())
        return 1

    engine = Engine(_connector(silent, prefix), connect_wait=0.3, heartbeat_interval=None)
    begin = time.monotonic()
    assert await engine.run([first(), first()]) == [1, 1]
    waited = started[0] - begin
    assert silent.accepted >= 1  # the connection was accepted and never answered
    assert 0.3 <= waited < CONNECTOR_TIMEOUT / 2, waited


async def test_constraints_apply_when_a_late_connection_is_made(
    silent: SilentThenForwarding, prefix: str, plain_client: aiomqtt.Client
) -> None:
    """After connect_wait the engine keeps connecting; the retained pause applies once it has."""
    pause = Constraint(
        id="p1", scope="task:gated", type="pause", expires_at=time.time() + 1.5, params={}
    )
    await plain_client.publish(
        constraint_topic("task:gated", "pause", prefix),
        encode_payload(pause),
        qos=1,
        retain=True,
    )
    # the first attempt hangs on the silent socket for 0.5 s; the retry is forwarded
    connector = MqttConnector(
        "127.0.0.1",
        silent.port,
        topic_prefix=prefix,
        source_id="wait-engine",
        connect_timeout=0.5,
        backoff_initial=0.05,
        backoff_max=0.2,
    )
    events: list[Event] = []

    @task
    async def opener() -> int:
        silent.forward()  # from now on the engine's connection attempts reach the broker
        assert await connector.wait_connected(10.0)
        return 1

    @task
    async def gated(_: int) -> int:
        return 2

    engine = Engine(connector, connect_wait=0.05, heartbeat_interval=None)
    engine.events.subscribe(events.append)
    try:
        assert await engine.run(gated(opener())) == 2
    finally:
        await plain_client.publish(
            constraint_topic("task:gated", "pause", prefix), b"", retain=True
        )
    blocked = [e for e in events if isinstance(e, TaskBlocked) and e.task_name == "gated"]
    assert blocked, (
        "the pause retained at the broker did not hold the task started after connecting"
    )
