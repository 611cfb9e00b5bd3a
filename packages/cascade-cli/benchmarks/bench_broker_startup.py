"""Benchmark of startup and first answers on each broker family, side by side with mosquitto.

On a private mosquitto, a private three-node NATS JetStream cluster (``NatsCluster``, where
``nats-server`` is installed) and a private RabbitMQ node (where ``rabbitmq-server`` is
installed), each row is the median of ``--repeats`` (5) measurements:

- engine to first task: a real ``Engine`` with an ``MqttConnector`` (a fresh one each time),
  in this process, from ``engine.run(...)`` to the first task's body (the connection, the
  engine's subscriptions and the wait for the retained constraints come first);
- ``cascade status``: the process's wall time, to exit 0;
- ``cascade watch``'s first line: from the process's start to its first line on stdout
  (``--json``; an engine runs short tasks meanwhile, so its telemetry flows);
- ``cascade pause`` acknowledged: the process's wall time to exit 0, once the broker has
  acknowledged the retained constraint;
- ``cascade resume`` acknowledged: the same for the resume.

The brokers run side by side and take turns within each round, so the machine's other
load falls on each alike. The engine connects to the first node and the commands to the
second (on NATS; one node elsewhere). A command's wall time includes the Python
interpreter's start and the CLI's imports, the same on every broker. Each broker's column
has its ratio to mosquitto's; target: every row within 1.5x of mosquitto's (met / not met
per row).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field

from cascade.connectors.mqtt import MqttConnector
from cascade.runtime import Engine, task
from cascade.testkit import (
    BrokerEndpoint,
    MosquittoBroker,
    NatsCluster,
    RabbitMQBroker,
    mosquitto_path,
    nats_server_path,
    rabbitmq_server_path,
)

TARGET_RATIO = 1.5
COMMAND_TIMEOUT = 30.0  # the longest one command may take before the bench gives up on it
ROWS = (
    "engine to first task",
    "`cascade status`",
    "`cascade watch` first line",
    "`cascade pause` acknowledged",
    "`cascade resume` acknowledged",
)
SCOPE = "task:bench_elsewhere"  # matches none of the background engine's tasks


@dataclass(frozen=True)
class Node:
    """One MQTT listener."""

    host: str
    port: int


@dataclass
class Family:
    """A broker under test, its nodes (engine on the first, commands on the second), results."""

    name: str
    engine_node: Node
    command_node: Node
    seconds: dict[str, list[float]] = field(default_factory=dict)

    def median(self, row: str) -> float:
        return statistics.median(self.seconds[row])

    def cell(self, row: str) -> str:
        """The median, and the range of the measurements."""
        values = self.seconds[row]
        return f"{self.median(row):.3f} s ({min(values):.2f}-{max(values):.2f})"


@task
async def tick() -> int:
    await asyncio.sleep(0.02)  # the workload: a short task, so the engine's telemetry flows
    return 1


async def engine_to_first_task(node: Node, number: int) -> float:
    """Seconds from ``Engine.run`` to the first task's body, with a fresh connector."""
    reached: list[float] = []

    @task(name="bench_first")
    async def body() -> int:
        reached.append(time.perf_counter())
        return 1

    connector = MqttConnector(node.host, node.port, source_id=f"bench-first-{number}")
    engine = Engine(connector, org_id="bench", project_id="startup", heartbeat_interval=None)
    started = time.perf_counter()
    await engine.run(body())
    return reached[0] - started


async def background_engine(node: Node, stop: asyncio.Event) -> None:
    """An engine running runs of short tasks until ``stop``: telemetry for `watch`."""
    connector = MqttConnector(node.host, node.port, source_id="bench-stream")
    await connector.connect(require=True)
    engine = Engine(
        connector, org_id="bench", project_id="startup", heartbeat_interval=1.0, max_concurrency=4
    )
    try:
        while not stop.is_set():
            await engine.run([tick() for _ in range(20)])
    finally:
        await connector.disconnect()


def cli(node: Node, *args: str) -> list[str]:
    """The argv of one `cascade` command against ``node``."""
    address = ["--host", node.host, "--port", str(node.port), "--timeout", "20"]
    return [sys.executable, "-m", "cascade.cli", *args, *address]


async def command_seconds(argv: list[str]) -> float:
    """Wall time of a command that must exit 0."""
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    _, err = await asyncio.wait_for(process.communicate(), COMMAND_TIMEOUT)
    elapsed = time.perf_counter() - started
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[3:])} exited {process.returncode}: {err.decode()}")
    return elapsed


async def first_line_seconds(argv: list[str]) -> float:
    """Seconds from a command's start to its first line on stdout; then it is ended."""
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
    )
    assert process.stdout is not None
    try:
        line = await asyncio.wait_for(process.stdout.readline(), COMMAND_TIMEOUT)
        elapsed = time.perf_counter() - started
        if not line:
            raise RuntimeError(f"{' '.join(argv[3:])} ended without a line")
        return elapsed
    finally:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()


async def measure(families: list[Family], repeats: int) -> None:
    """Every row, ``repeats`` times, the families taking turns within each round: the machine's
    other load (a shared 2-core box) falls on each of them alike."""
    for _ in range(repeats):
        for family in families:
            number = len(family.seconds.get(ROWS[0], []))
            time_taken = await engine_to_first_task(family.engine_node, number)
            family.seconds.setdefault(ROWS[0], []).append(time_taken)
        for family in families:
            await _commands(family)


async def _commands(family: Family) -> None:
    """One measurement of each command, with an engine running tasks meanwhile."""
    stop = asyncio.Event()
    streaming = asyncio.create_task(background_engine(family.engine_node, stop))
    node = family.command_node
    steps: list[tuple[str, Callable[[], Awaitable[float]]]] = [
        (ROWS[1], lambda: command_seconds(cli(node, "status"))),
        (ROWS[2], lambda: first_line_seconds(cli(node, "watch", "--json"))),
        (ROWS[3], lambda: command_seconds(cli(node, "pause", SCOPE, "--ttl", "600"))),
        (ROWS[4], lambda: command_seconds(cli(node, "resume", SCOPE))),
    ]
    try:
        for row, step in steps:
            family.seconds.setdefault(row, []).append(await step())
    finally:
        stop.set()
        await asyncio.wait_for(streaming, COMMAND_TIMEOUT)


@contextlib.contextmanager
def started(name: str) -> Iterator[tuple[Node, Node] | None]:
    """The family's private broker while the caller runs: (engine node, command node), or
    ``None`` where it is not installed."""
    if name == "mosquitto":
        if mosquitto_path() is None:
            yield None
            return
        with MosquittoBroker() as broker:
            yield _nodes(broker, broker)
    elif name == "nats":
        if nats_server_path() is None:
            yield None
            return
        with NatsCluster() as cluster:
            a, b = cluster.nodes[0], cluster.nodes[1]
            yield _nodes(a, b)
    else:
        if rabbitmq_server_path() is None:
            yield None
            return
        with RabbitMQBroker() as rabbit:
            yield _nodes(rabbit, rabbit)


def _nodes(engine: BrokerEndpoint, command: BrokerEndpoint) -> tuple[Node, Node]:
    return Node(engine.host, engine.port), Node(command.host, command.port)


LABELS = {"mosquitto": "mosquitto", "nats": "NATS cluster (3 nodes)", "rabbitmq": "RabbitMQ"}


def table(families: list[Family]) -> list[str]:
    """The Markdown table: each family's medians, and the others' ratios to mosquitto's."""
    base = families[0]
    header = ["", f"{LABELS[base.name]}"]
    for other in families[1:]:
        header += [LABELS[other.name], f"x {LABELS[base.name]}", f"≤ {TARGET_RATIO:g}x"]
    lines = ["| " + " | ".join(header) + " |", "|---" + "|---:" * (len(header) - 1) + "|"]
    for row in ROWS:
        cells = [row, base.cell(row)]
        for other in families[1:]:
            ratio = other.median(row) / base.median(row)
            verdict = "met" if ratio <= TARGET_RATIO else "not met"
            cells += [other.cell(row), f"{ratio:.2f}x", verdict]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--families",
        default="mosquitto,nats,rabbitmq",
        help="comma-separated, mosquitto first (the base of the ratios)",
    )
    args = parser.parse_args()
    for variable in ("CASCADE_MQTT_HOST", "CASCADE_MQTT_PORT"):
        os.environ.pop(variable, None)  # the commands get --host and --port
    logging.basicConfig(level=logging.ERROR)
    names = [n.strip() for n in args.families.split(",") if n.strip()]
    if not names or names[0] != "mosquitto":
        parser.error("--families must start with mosquitto: the ratios are to it")
    measured: list[Family] = []
    with contextlib.ExitStack() as brokers:
        for name in names:
            nodes = brokers.enter_context(started(name))
            if nodes is None:
                print(f"{name}: not installed, skipped", file=sys.stderr)
                continue
            measured.append(Family(name, *nodes))
        if not measured or measured[0].name != "mosquitto":
            print("mosquitto is not installed: no base for the ratios", file=sys.stderr)
            return 1
        load = os.getloadavg()[0]
        asyncio.run(measure(measured, args.repeats))
    print(
        f"\nstartup and first answers, medians of {args.repeats} (range), load average "
        f"{load:.1f} before, {os.getloadavg()[0]:.1f} after, on {os.cpu_count()} CPUs:\n"
    )
    for line in table(measured):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
