"""Benchmark of failover: a broker node killed under an engine, until a reader hears it again.

Two scenarios, one table:

A. A three-node NATS JetStream cluster (the testkit's ``NatsCluster``, nodes A, B, C):
   an engine with ``MqttConnector(hosts=[X, Y])``, a reader on the third node; X is each
   node in turn (A, B, C, A, ...), so the leaders of JetStream's streams die in their turn.
   Twice: with the connector's defaults, and with ``standby=True`` (a second connection
   kept open to Y carries the engine's QoS 0 telemetry while Y elects new leaders).
B. Two plain mosquittos (m1, m2, not bridged): an engine with ``hosts=[m1, m2]``, a
   reader on m2 (it hears the engine only once it is on m2).

Each repeat starts a fresh engine (it connects to the first node), runs a steady
stream of tasks (one at a time, each awaiting 10 ms: about 100 task starts and 200
events a second), and once it runs on the first node kills that node with SIGKILL.
The failover time is from the node's death (``kill()`` returned: the process is
reaped) to the moment the reader receives the first of the engine's events made
after it (its envelope's ``ts`` at or after the death: an event in flight before
cannot count). The engine is then stopped and the node started again (NATS: it
rejoins its cluster in about 8 s). ``--repeats`` (10) times; median, p95 and max
per scenario; the target is p95 <= 2 s. The connectors keep their defaults
(backoff from 0.1 s, keepalive 60 s): the engine sees the SIGKILL as a closed
socket at once.

Every wait is bounded; brokers are always stopped.

    python packages/cascade-runtime/benchmarks/bench_failover.py [--repeats 10] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from cascade.connectors.mqtt import MqttConnector
from cascade.interfaces import Message
from cascade.runtime import Engine, TaskRunning, task
from cascade.testkit import (
    NO_MOSQUITTO,
    NO_NATS,
    MosquittoBroker,
    NatsCluster,
    mosquitto_path,
    nats_server_path,
)

TARGET_P95 = 2.0
STEADY_STARTS = 20  # task starts on the first node before the kill
WAIT = 60.0  # the longest any one step may take


@task
async def tick(i: int) -> int:
    """One task of the steady stream."""
    await asyncio.sleep(0.01)
    return i


@dataclass
class Reader:
    """The events of one engine (by source id) that the reader received, with their times."""

    source: str = ""
    received: list[tuple[float, float]] = field(default_factory=list)  # (ts, received at)

    def __call__(self, message: Message) -> None:
        payload = message.payload
        if isinstance(payload, dict) and payload.get("source") == self.source:
            stamp = payload.get("ts")
            if isinstance(stamp, str):
                ts = datetime.fromisoformat(stamp).timestamp()
                self.received.append((ts, time.time()))

    def first_after(self, moment: float) -> float | None:
        """When the first event made at or after ``moment`` arrived, if one did."""
        for ts, at in self.received:
            if ts >= moment:
                return at
        return None


async def until(condition: Callable[[], object], what: str, timeout: float = WAIT) -> None:
    """Poll ``condition`` (every 5 ms) until it holds; ``TimeoutError`` naming ``what``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not within {timeout:g} s: {what}")
        await asyncio.sleep(0.005)


async def one_failover(
    hosts: list[str],
    kill_first: Callable[[], None],
    restart_first: Callable[[], None],
    reader: Reader,
    prefix: str,
    number: int,
    standby: bool = False,
) -> float:
    """Start an engine on ``hosts``, kill the first node under it, time the reader's next
    event; then stop the engine and start the node again."""
    source = f"bench-failover-{number}-{int(standby)}"
    reader.source, reader.received = source, []
    connector = MqttConnector(hosts=hosts, topic_prefix=prefix, source_id=source, standby=standby)
    engine = Engine(
        connector, max_concurrency=1, heartbeat_interval=None, summaries=False, logs=None
    )
    starts: list[float] = []
    engine.events.subscribe(
        lambda event: starts.append(time.time()) if isinstance(event, TaskRunning) else None
    )
    first_node = hosts[0].rsplit(":", 1)
    run = asyncio.create_task(engine.run([tick(i) for i in range(20_000)]))
    try:
        await until(
            lambda: (
                len(starts) >= STEADY_STARTS
                and connector.is_connected
                and (connector.hostname, str(connector.port)) == (first_node[0], first_node[1])
            ),
            "the engine running tasks on the first node",
        )
        kill_first()
        death = time.time()
        await until(lambda: reader.first_after(death) is not None, "the reader's next event")
        arrived = reader.first_after(death)
        assert arrived is not None
        return arrived - death
    finally:
        run.cancel()
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(run, WAIT)
        await asyncio.to_thread(restart_first)


def summary(name: str, times: Sequence[float]) -> str:
    """One table row: median, p95 and max in seconds, and whether p95 meets the target."""
    ordered = sorted(times)
    p95 = ordered[min(len(ordered) - 1, max(0, round(0.95 * len(ordered)) - 1))]
    verdict = "met" if p95 <= TARGET_P95 else "NOT met"
    return (
        f"{name:<34} {len(times):>3} {statistics.median(times):>8.3f} {p95:>8.3f} "
        f"{max(times):>8.3f}   p95 <= {TARGET_P95:g} s: {verdict}"
    )


async def nats_scenario(repeats: int, standby: bool) -> list[float]:
    """Scenario A: NatsCluster; each repeat kills the next node in turn (a, b, c, a, ...) under
    an engine given that node and the next, with the reader on the third, so that the nodes
    holding JetStream's leaders die in their turn as a real node loss may: a kinder run that
    always kills the node restarted last (which then leads nothing) would hide that."""
    cluster = NatsCluster()
    await asyncio.to_thread(cluster.start)
    try:
        nodes = cluster.nodes
        prefix = f"bench{uuid.uuid4().hex[:8]}"
        times = []
        for number in range(repeats):
            victim, other, watch = (nodes[(number + k) % len(nodes)] for k in range(3))
            leader = await asyncio.to_thread(watch.meta_leader)
            reader = Reader()
            async with MqttConnector(
                watch.host, watch.port, topic_prefix=prefix, presence=False
            ) as on_watch:
                await on_watch.subscribe(f"{prefix}/telemetry/+/+/+/events", reader)
                took = await one_failover(
                    [f"{victim.host}:{victim.port}", f"{other.host}:{other.port}"],
                    victim.kill,
                    victim.start,
                    reader,
                    prefix,
                    number,
                    standby,
                )
            role = " (the meta leader)" if leader == victim.name else ""
            label = "nats standby" if standby else "nats"
            print(
                f"  {label} #{number + 1}: {took:.3f} s, {victim.name} killed{role}",
                file=sys.stderr,
            )
            times.append(took)
        return times
    finally:
        await asyncio.to_thread(cluster.close)


async def mosquitto_scenario(repeats: int) -> list[float]:
    """Scenario B: two plain mosquittos, engine on [m1, m2], reader on m2, m1 killed."""
    with MosquittoBroker() as m1, MosquittoBroker() as m2:
        prefix = f"bench{uuid.uuid4().hex[:8]}"
        reader = Reader()
        async with MqttConnector(m2.host, m2.port, topic_prefix=prefix, presence=False) as on_m2:
            await on_m2.subscribe(f"{prefix}/telemetry/+/+/+/events", reader)
            times = []
            for number in range(repeats):
                took = await one_failover(
                    [f"{m1.host}:{m1.port}", f"{m2.host}:{m2.port}"],
                    m1.kill,
                    m1.start,
                    reader,
                    prefix,
                    number,
                )
                print(f"  mosquitto #{number + 1}: {took:.3f} s", file=sys.stderr)
                times.append(took)
        return times


async def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10, help="kills per scenario (10)")
    parser.add_argument("--quick", action="store_true", help="3 repeats (a smoke run)")
    args, _ = parser.parse_known_args(argv)  # nox -s bench passes every script its posargs
    repeats = 3 if args.quick else args.repeats
    rows = []
    if nats_server_path() is None:
        print(f"skipped NATS: {NO_NATS}")
    else:
        rows.append(summary("NATS, each node in turn", await nats_scenario(repeats, False)))
        rows.append(summary("NATS, each node in turn, standby", await nats_scenario(repeats, True)))
    if mosquitto_path() is None:
        print(f"skipped mosquitto: {NO_MOSQUITTO}")
    else:
        rows.append(
            summary("2 mosquittos, engine [m1,m2], on m2", await mosquitto_scenario(repeats))
        )
    print("failover: node SIGKILLed -> the reader's next event from the engine (seconds)")
    print(f"{'scenario':<34} {'n':>3} {'median':>8} {'p95':>8} {'max':>8}")
    for row in rows:
        print(row)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
