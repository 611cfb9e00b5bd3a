"""The fault suite's brokers, helpers, and the table of figures printed at the end of the run."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
import uuid
from collections.abc import AsyncIterator, Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from cascade.connector_kit import BrokerDifferences
from cascade.connectors.mqtt import MqttConnector
from cascade.interfaces import (
    BrokerCapabilities,
    Connector,
    ConnectorStats,
    MessageCallback,
    Payload,
    SubscriptionHandle,
    SyncCallback,
)
from cascade.testkit import (  # noqa: F401 - fixtures
    OwnBroker,
    broker_family,
    family_own_broker,
    s3_server,
    shared_store,
    sigint_default,
)

pytestmark = pytest.mark.integration

ENGINE_PROCESS = Path(__file__).with_name("engine_process.py")


# -- the table ------------------------------------------------------------------------------


@dataclass
class Figures:
    """One scenario's row in the table: messages emitted / delivered / dropped, time, outcome."""

    scenario: str
    emitted: int | None = None
    delivered: int | None = None
    dropped: int | None = None
    seconds: float | None = None
    what: str = ""
    outcome: str = "not run"
    notes: list[str] = field(default_factory=list)


_ROWS: list[Figures] = []


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Figures:
    """This test's row in the table printed at the end of the session."""
    row = Figures(scenario=request.node.name.removeprefix("test_"))
    _ROWS.append(row)
    request.node.stash[_ROW_KEY] = row
    return row


_ROW_KEY = pytest.StashKey[Figures]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    row = item.stash.get(_ROW_KEY, None)
    callspec = getattr(item, "callspec", None)
    store = callspec.params.get("shared_store") if callspec is not None else None
    if row is not None and store == "s3" and not row.scenario.endswith(" [S3]"):
        row.scenario += " [S3]"  # the scenario's variant with its shared store on S3
    if row is not None and (report.when == "call" or report.failed):
        if report.failed:
            row.outcome = f"FAILED ({report.when})"
        elif report.when == "call":
            row.outcome = "passed" if report.passed else report.outcome
    return report


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def pytest_terminal_summary(terminalreporter: Any) -> None:  # pragma: no cover - pytest plumbing
    """Print every scenario's figures as a table."""
    if not _ROWS:
        return
    header = ("scenario", "emitted", "delivered", "dropped", "time (s)", "time of", "outcome")
    rows = [
        (
            r.scenario,
            _cell(r.emitted),
            _cell(r.delivered),
            _cell(r.dropped),
            _cell(r.seconds),
            r.what or "-",
            r.outcome,
        )
        for r in sorted(_ROWS, key=lambda r: r.scenario)
    ]
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]
    write = terminalreporter.write_line
    terminalreporter.section("fault scenarios")
    write("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    write("  ".join("-" * w for w in widths))
    for row in rows:
        write("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
    for r in sorted(_ROWS, key=lambda r: r.scenario):
        for note in r.notes:
            write(f"  {r.scenario}: {note}")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The scenarios' variants with their shared store on S3 run in the ``faults`` session
    alone (mosquitto): the store's part is the same on every broker, and on RabbitMQ they
    added two minutes (the schedules' fleet test, where RabbitMQ lets the store decide
    slots, runs on S3 in ``integration-rabbitmq``)."""
    if broker_family() == "mosquitto":
        return
    skip = pytest.mark.skip(reason="the S3 variants of the fault scenarios run on mosquitto")
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and callspec.params.get("shared_store") == "s3":
            item.add_marker(skip)


# -- helpers ----------------------------------------------------------------------------------


@pytest.fixture
def prefix() -> str:
    """A topic prefix of its own per test."""
    return f"faults-{uuid.uuid4().hex[:10]}"


class MeteredConnector(BrokerDifferences):
    """A real connector seen through a thin adapter: it counts and times every ``publish()``.

    ``emitted`` counts the telemetry (what the scenarios follow to its readers), ``others``
    the rest the engine publishes (its summary). ``min_qos`` raises the QoS of every
    message (the telemetry subscriber sends task states at QoS 0; the restart scenario runs
    at QoS 1 too). Everything else goes straight to the wrapped connector.
    """

    def __init__(self, inner: MqttConnector, *, min_qos: int = 0) -> None:
        self.inner = inner
        self.min_qos = min_qos
        self.emitted = 0
        self.others = 0
        self.publish_seconds: list[float] = []

    @property
    def source_id(self) -> str:
        return self.inner.source_id

    @property
    def topic_prefix(self) -> str:
        return self.inner.topic_prefix

    @property
    def sourced_topics(self) -> bool:
        return self.inner.sourced_topics

    @property
    def is_connected(self) -> bool:
        return self.inner.is_connected

    @property
    def stats(self) -> ConnectorStats:
        return self.inner.stats

    @property
    def capabilities(self) -> BrokerCapabilities:
        return self.inner.capabilities

    async def connect(self, *, require: bool = False) -> None:
        await self.inner.connect(require=require)

    async def flush(self, timeout: float | None = None) -> None:
        await self.inner.flush(timeout)

    async def disconnect(self) -> None:
        await self.inner.disconnect()

    async def publish(
        self, topic: str, payload: Payload, qos: int = 0, retain: bool = False
    ) -> None:
        started = time.perf_counter()
        await self.inner.publish(topic, payload, max(qos, self.min_qos), retain)
        self.publish_seconds.append(time.perf_counter() - started)
        if "/telemetry/" in topic:
            self.emitted += 1
        else:
            self.others += 1

    async def subscribe(
        self,
        topic_filter: str,
        callback: MessageCallback,
        *,
        on_sync: SyncCallback | None = None,
    ) -> SubscriptionHandle:
        return await self.inner.subscribe(topic_filter, callback, on_sync=on_sync)

    async def __aenter__(self) -> MeteredConnector:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.disconnect()


def as_connector(connector: MeteredConnector) -> Connector:
    """The adapter as the Connector protocol (checked by mypy here, once)."""
    return connector


class TcpProxy:
    """A small TCP proxy of the test's own between a client and the broker.

    ``start()`` begins listening on :attr:`port` (reserved up front, so a client
    can be pointed at it while nothing listens); ``freeze()`` silently stops
    forwarding on every connection open now, in both directions, without
    closing anything (the broker and the client see a connection that went
    quiet); ``freeze(down_only=True)`` swallows only what the broker sends.
    A frozen connection's broker side is never closed by the proxy, even
    when the client hangs up: only the broker's keepalive can end it. New
    connections are forwarded normally. ``cut()`` closes every connection and
    refuses new ones until ``restore()``. ``close()`` closes all.
    :attr:`swallowed` counts the bytes frozen connections took and dropped
    (:meth:`wait_swallowed` waits for a number of them).
    """

    def __init__(self, target_port: int, port: int) -> None:
        self.target_port = target_port
        self.port = port
        self.connections = 0
        self.swallowed = 0
        self._swallowing = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._pumps: set[asyncio.Task[None]] = set()
        self._frozen: set[int] = set()  # connections swallowed in both directions
        self._frozen_down: set[int] = set()  # connections whose broker-to-client side is swallowed
        self._writers: list[asyncio.StreamWriter] = []
        self._live: set[int] = set()
        self.opened = asyncio.Event()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    def freeze(self, *, down_only: bool = False) -> int:
        """Stop forwarding on the connections open now; returns how many."""
        self._frozen_down |= self._live
        if not down_only:
            self._frozen |= self._live
        return len(self._live)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        number = self.connections
        self._live.add(number)
        self._writers.append(writer)
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        self._writers.append(up_writer)
        self.opened.set()
        for source, sink, frozen in (
            (reader, up_writer, self._frozen),
            (up_reader, writer, self._frozen_down),
        ):
            pump = asyncio.create_task(self._pump(number, source, sink, frozen))
            self._pumps.add(pump)
            pump.add_done_callback(self._pumps.discard)

    async def _pump(
        self,
        number: int,
        source: asyncio.StreamReader,
        sink: asyncio.StreamWriter,
        frozen: set[int],
    ) -> None:
        try:
            while True:
                data = await source.read(65536)
                if not data:
                    break
                if number in frozen:
                    self.swallowed += len(data)
                    self._swallowing.set()
                    continue  # swallowed: the connection looks alive but nothing gets through
                sink.write(data)
                await sink.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            self._live.discard(number)
            if number not in self._frozen_down:
                sink.close()

    async def wait_swallowed(self, count: int) -> None:
        """Return once frozen connections have swallowed at least ``count`` bytes."""
        while self.swallowed < count:
            self._swallowing.clear()
            await self._swallowing.wait()

    async def cut(self) -> None:
        """Close every connection (both sides) and refuse new ones until :meth:`restore`."""
        await self._drop_all()

    async def restore(self) -> None:
        """Listen again after :meth:`cut`: new connections are forwarded."""
        await self.start()

    async def close(self) -> None:
        server = await self._drop_all()
        if server is not None:
            await server.wait_closed()  # since 3.12.1 this waits for every connection to end

    async def _drop_all(self) -> asyncio.Server | None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for pump in list(self._pumps):
            pump.cancel()
        await asyncio.gather(*self._pumps, return_exceptions=True)
        for writer in self._writers:
            writer.close()
        for writer in self._writers:
            with contextlib.suppress(Exception):
                await writer.wait_closed()
        self._writers.clear()
        self._live.clear()
        return server


class EngineProcess:
    """``engine_process.py`` in a child process; its stdout is one JSON object per line."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[dict[str, Any]] = []

    @classmethod
    async def start(cls, *args: str) -> EngineProcess:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(ENGINE_PROCESS),
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            preexec_fn=sigint_default,  # the interrupt scenario's Ctrl-C reaches it
        )
        return cls(process)

    async def expect(self, event: str, timeout: float = 20.0) -> dict[str, Any]:
        """Read lines until one has ``"event": event``; TimeoutError or EOFError otherwise."""
        stdout = self.process.stdout
        assert stdout is not None

        async def read() -> dict[str, Any]:
            while True:
                line = await stdout.readline()
                if not line:
                    raise EOFError(f"engine process ended before {event!r}: {self.lines}")
                record: dict[str, Any] = json.loads(line)
                self.lines.append(record)
                if record.get("event") == event:
                    return record

        return await asyncio.wait_for(read(), timeout)

    async def wait(self, timeout: float = 20.0) -> int:
        """Read the rest of the output and wait for the exit code."""
        stdout = self.process.stdout
        assert stdout is not None

        async def read() -> int:
            while line := await stdout.readline():
                self.lines.append(json.loads(line))
            return await self.process.wait()

        return await asyncio.wait_for(read(), timeout)

    async def close(self) -> None:
        """Kill the child if it still runs, and reap it."""
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
        await self.process.wait()


@pytest.fixture
async def engine_processes() -> AsyncIterator[list[EngineProcess]]:
    """Children started by the test, killed and reaped at its end whatever happens."""
    children: list[EngineProcess] = []
    yield children
    for child in children:
        await child.close()


def engine_args(broker: OwnBroker, prefix: str, source: str, **options: object) -> list[str]:
    """Command-line arguments for ``engine_process.py``."""
    args = ["--port", str(broker.port), "--prefix", prefix, "--source", source]
    for name, value in options.items():
        args += [f"--{name.replace('_', '-')}", str(value)]
    return args
