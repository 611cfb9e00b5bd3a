"""Scenario 14: K `cascade` writers at once (pauses, limits, resumes mixed), each a process.

Whatever the broker family, every constraint a writer reported as set is held
by an engine started afterwards and listed by `cascade status`, and every
clear it reported is clear; a writer that cannot say so exits non-zero and
names what did not take. On RabbitMQ 3.x (retained messages to exact topics
only) this is the constraints index's work; on mosquitto, the broker's.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from cascade.connector_kit.constraints_index import (
    INDEX_SHARDS,
    IndexRecord,
    constraints_shard_topic,
    decode_index_shard,
    read_index,
    shard_of,
)
from cascade.connectors.mqtt import MqttConnector
from cascade.control import Controller
from cascade.interfaces import Message, constraint_topic
from cascade.runtime import Engine, RunCancelledError, task
from cascade.testkit import OwnBroker

from .conftest import Figures

# The CLI writes under the default topic prefix: scopes of the test's own keep runs apart.
PREFIX = "cascade"


@dataclass
class Writer:
    """One `cascade` process: what it was asked to do, and what it answered."""

    kind: str  # "pause", "limit" or "resume"
    scope: str
    code: int | None = None
    stdout: str = ""
    stderr: str = ""

    @property
    def held(self) -> tuple[str, str]:
        """The (scope, type) a reported set puts in force, or a reported clear takes out."""
        return (self.scope, "concurrency" if self.kind == "limit" else "pause")

    def args(self) -> list[str]:
        if self.kind == "limit":
            return ["limit", self.scope, "--concurrency", "1"]
        return [self.kind, self.scope]


async def _cascade(broker: OwnBroker, *args: str) -> tuple[int, str, str]:
    address = ["--host", broker.host, "--port", str(broker.port), "--timeout", "30"]
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cascade.cli",
        *args,
        *address,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def _run(broker: OwnBroker, writer: Writer) -> None:
    writer.code, writer.stdout, writer.stderr = await _cascade(broker, *writer.args())


class IndexWrites:
    """Every write of the constraints index's shards in the order the broker delivered them,
    heard from before the writers start (on a broker that needs the index): what a lost
    entry's shard held at each write, and what it holds now."""

    def __init__(self, broker: OwnBroker) -> None:
        self.broker = broker
        self.heard: list[tuple[str, bytes]] = []

    def __call__(self, message: Message) -> None:
        self.heard.append((message.topic, message.raw))

    @contextlib.asynccontextmanager
    async def listening(self) -> AsyncIterator[IndexWrites]:
        async with MqttConnector(self.broker.host, self.broker.port, presence=False) as observer:
            for shard in range(INDEX_SHARDS):
                await observer.subscribe(constraints_shard_topic(PREFIX, shard), self)
            yield self

    async def story(self, scope: str, kind: str) -> str:
        """The entry of ``kind`` on ``scope`` in each write of its shard (set, cleared or
        absent: -) as delivered, and in the shard as the broker keeps it now."""
        topic = constraint_topic(scope, kind, PREFIX)
        shard = shard_of(topic, PREFIX)
        shard_topic = constraints_shard_topic(PREFIX, shard)
        writes = [_entry(decode_index_shard(raw, PREFIX).get(topic)) for t, raw in self.heard
                  if t == shard_topic]  # fmt: skip
        async with MqttConnector(self.broker.host, self.broker.port, presence=False) as reader:
            now = _entry((await read_index(reader, [shard])).shards[shard].get(topic))
        if not writes and now == "-":
            return f"{scope} {kind}: no index written (a broker that sends retained to wildcards)"
        return f"{scope} {kind} in shard {shard}'s writes as delivered: {writes}; kept now: {now}"


def _entry(record: IndexRecord | None) -> str:
    return "-" if record is None else "set" if record.payload is not None else "cleared"


async def _held_by_a_new_engine(broker: OwnBroker, scopes: list[str]) -> set[tuple[str, str]]:
    """The constraints a new engine holds when its first task starts (its snapshot complete),
    its run holding a task of each of ``scopes`` (``task:NAME``): on a broker with an index,
    an engine reads only the constraints that can govern its run's tasks."""
    # a broker still busy with the writers' leaving may take seconds to confirm subscriptions
    connector = MqttConnector(broker.host, broker.port, topic_prefix=PREFIX, connect_timeout=30)
    engine = Engine(connector, heartbeat_interval=None, connect_wait=20)
    held: list[tuple[str, str]] = []
    probed = asyncio.Event()

    @task
    async def probe() -> None:
        held.extend(sorted((c.scope, c.type) for c in engine.constraints))
        probed.set()

    async def governed() -> None:
        await asyncio.Event().wait()  # paused, limited or running: ended by the cancel below

    tasks = [task(name=scope.removeprefix("task:"))(governed)() for scope in scopes]
    run = asyncio.create_task(engine.run([probe(), *tasks]))
    try:
        await asyncio.wait_for(probed.wait(), 60)
    finally:
        run.cancel()
        with contextlib.suppress(asyncio.CancelledError, RunCancelledError):
            await run
    return set(held)


async def _listed_by_status(broker: OwnBroker) -> set[tuple[str, str]]:
    code, out, err = await _cascade(broker, "status", "--json")
    assert code == 0, err
    return {(c["scope"], c["type"]) for c in json.loads(out)["constraints"]}


async def _preset(broker: OwnBroker, scopes: list[str]) -> None:
    """Pause ``scopes`` beforehand (one writer, alone), for the resumes to clear."""
    async with MqttConnector(broker.host, broker.port, presence=False) as operator:
        control = Controller(operator, timeout=30)
        for scope in scopes:
            await control.pause(scope)


@pytest.mark.timeout(600)
@pytest.mark.parametrize("count", [2, 10, 50])
async def test_concurrent_writers(
    own_broker: OwnBroker, count: int, figures: Figures, caplog: pytest.LogCaptureFixture
) -> None:
    """``count`` concurrent `cascade pause/limit/resume` processes: each reported change holds
    for a new engine and `status`, or its writer failed naming it."""
    figures.scenario = f"14 concurrent writers ({count})"
    base = f"w{uuid.uuid4().hex[:8]}"
    kinds = ("pause", "limit", "resume")
    writers = [Writer(kinds[i % 3], f"task:{base}_{i}") for i in range(count)]
    await _preset(own_broker, [w.scope for w in writers if w.kind == "resume"])
    scopes = [w.scope for w in writers]
    assert {w.held for w in writers if w.kind == "resume"} <= await _held_by_a_new_engine(
        own_broker, scopes
    ), "the preset pauses must hold before they are resumed"

    started = time.monotonic()
    async with IndexWrites(own_broker).listening() as index_writes:
        await asyncio.gather(*(_run(own_broker, w) for w in writers))
        figures.seconds = time.monotonic() - started
        figures.what = f"{count} writers started → all exited"

    mine = f"task:{base}_"
    listed = {h for h in await _listed_by_status(own_broker) if h[0].startswith(mine)}
    held = {h for h in await _held_by_a_new_engine(own_broker, scopes) if h[0].startswith(mine)}
    reported = [w for w in writers if w.code == 0]
    failed = [w for w in writers if w.code != 0]
    sets = {w.held for w in reported if w.kind != "resume"}
    clears = {w.held for w in reported if w.kind == "resume"}
    figures.emitted = count
    figures.delivered = len(sets & held) + len(clears - held)
    figures.dropped = len(failed)
    figures.notes.append(
        f"{len(sets)} sets and {len(clears)} clears reported; held by a new engine: "
        f"{len(sets & held)}/{len(sets)} sets, {len(clears - held)}/{len(clears)} clears; "
        f"listed by status: {len(sets & listed)}/{len(sets)} sets, "
        f"{len(clears - listed)}/{len(clears)} clears; writers that reported failure: "
        f"{len(failed)}"
    )
    if sets:  # the diagnosis of a loss, told of one set that held
        figures.notes.append(await index_writes.story(*min(sets & held or sets)))
    for writer in failed:  # a failure names what did not take
        assert writer.code == 1, (writer, writer.stderr)
        assert writer.scope in writer.stderr, writer.stderr
    unread = [
        r.getMessage()
        for r in caplog.records
        if "could not read" in r.getMessage() or "did not all arrive" in r.getMessage()
    ]
    assert unread == [], "the engine could not read the index: not what this test measures"
    # says whether the index lost it (status misses it too) or the engine's read did, and
    # where: in the writes as delivered, or between the last of them and what the broker keeps
    assert sets - held == set(), (
        f"reported as set, not held by an engine started afterwards; listed by status: "
        f"{sorted((sets - held) & listed)}; its writers said: "
        f"{[(w.stdout, w.stderr) for w in reported if w.held in sets - held]}; "
        f"{[await index_writes.story(*lost) for lost in sorted(sets - held)]}"
    )
    assert clears & held == set(), "reported as cleared, still held by an engine"
    assert sets - listed == set(), "reported as set, not listed by status"
    assert clears & listed == set(), "reported as cleared, still listed by status"
