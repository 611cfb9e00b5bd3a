"""Benchmark of task log forwarding: what a task that logs a lot costs its run, and how late
its lines reach a reader.

Prints two tables:

1. A task logs ``--lines`` INFO lines as fast as it can (a coroutine task, the logger at INFO),
   twice: with the application's handler a no-op (logging's floor, where forwarding weighs
   most) and with each line formatted and written to a file (/dev/null), as an application
   that logs has it. Rows: forwarding
   off (the baseline), forwarding on with budgets above the flood (every line sent) to a
   connector that drops every publish (the engine's own cost) and to a private mosquitto
   with a subscriber counting what arrives, and with the default budgets (500 lines a
   second per task: the rest dropped, counted). Wall time is the median of ``--repeats``;
   the ratio is to forwarding off; µs/line is the difference per line sent or dropped.
2. End to end on mosquitto: a task logs ``--rate`` lines a second for ``--seconds``; each
   line's delay from its record's time to its arrival at a subscriber (p50, p99, max).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import statistics
import time
from collections.abc import Callable
from datetime import datetime
from typing import NamedTuple

from cascade.connector_kit.testing import InMemoryConnector
from cascade.connectors.mqtt import MqttConnector
from cascade.interfaces import Connector, Message, Payload
from cascade.interfaces.logs import decode_log_batch, logs_filter
from cascade.runtime import Engine, LogForwarding, task
from cascade.testkit import MosquittoBroker, mosquitto_path

log = logging.getLogger("bench.logs")
UNBOUNDED = LogForwarding(
    lines_per_second=1e9, run_lines_per_second=1e9, max_lines_per_task=10**9, max_queue=10**7
)


class NullConnector(InMemoryConnector):
    """Drops every publish at once: isolates the engine's own cost."""

    async def publish(
        self, topic: str, payload: Payload, qos: int = 0, retain: bool = False
    ) -> None:
        return None


class Arrivals:
    """Lines a subscriber received; :meth:`until` waits for a count of them."""

    def __init__(self) -> None:
        self.lines = 0
        self.delays: list[float] = []
        self._changed = asyncio.Event()

    def __call__(self, message: Message) -> None:
        now = time.time()
        batch = decode_log_batch(message.raw)
        self.lines += len(batch.lines)
        self.delays += [now - datetime.fromisoformat(line.ts).timestamp() for line in batch.lines]
        self._changed.set()

    async def until(self, lines: int, timeout: float = 10.0) -> None:
        """Return once ``lines`` have arrived, or after ``timeout`` s (the table says)."""

        async def wait() -> None:
            while self.lines < lines:
                self._changed.clear()
                await self._changed.wait()

        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(wait(), timeout)


class Row(NamedTuple):
    name: str
    seconds: float
    sent: int
    dropped: int
    arrived: int | None


@task
async def flood(lines: int) -> None:
    for i in range(lines):
        log.info("row %d loaded", i)


async def _subscriber(broker: MosquittoBroker, prefix: str) -> tuple[MqttConnector, Arrivals]:
    """A subscriber to every log line under ``prefix``."""
    arrivals = Arrivals()
    reader = MqttConnector(broker.host, broker.port, presence=False, topic_prefix=prefix)
    await reader.connect(require=True)
    await reader.subscribe(logs_filter(prefix=prefix), arrivals)
    return reader, arrivals


async def measure(
    name: str,
    factory: Callable[[str], Connector],
    forwarding: LogForwarding | None,
    lines: int,
    broker: MosquittoBroker | None = None,
) -> Row:
    prefix = f"bench{time.monotonic_ns()}"
    listening = await _subscriber(broker, prefix) if broker is not None else None
    connector = factory(prefix)
    await connector.connect()
    engine = Engine(connector, heartbeat_interval=None, summaries=False, logs=forwarding)
    started = time.perf_counter()
    await engine.run(flood(lines))
    seconds = time.perf_counter() - started
    await connector.disconnect()
    arrived = None
    if listening is not None:
        reader, arrivals = listening
        await arrivals.until(engine.stats.log_lines_sent)
        await reader.disconnect()
        arrived = arrivals.lines
    stats = engine.stats
    return Row(name, seconds, stats.log_lines_sent, stats.log_lines_dropped, arrived)


async def flood_table(
    lines: int, repeats: int, broker: MosquittoBroker | None, handled: str
) -> None:
    def null(prefix: str) -> Connector:
        return NullConnector(topic_prefix=prefix, presence=False)

    def mqtt(prefix: str) -> Connector:
        assert broker is not None
        return MqttConnector(broker.host, broker.port, topic_prefix=prefix, presence=False)

    cases: list[tuple[str, Callable[[str], Connector], LogForwarding | None]] = [
        ("forwarding off", null, None),
        ("on, above the flood (null connector)", null, UNBOUNDED),
        ("on, default budgets (null connector)", null, LogForwarding()),
    ]
    if broker is not None:
        cases.insert(2, ("on, above the flood (mosquitto)", mqtt, UNBOUNDED))
    results: dict[str, list[Row]] = {name: [] for name, _, _ in cases}
    for _ in range(repeats):
        for name, factory, forwarding in cases:
            on_broker = broker if factory is mqtt else None
            results[name].append(await measure(name, factory, forwarding, lines, on_broker))
    base = statistics.median(r.seconds for r in results["forwarding off"])
    print(f"\n### A task logging {lines:,} INFO lines as fast as it can, {handled} "
          f"(median of {repeats})\n")  # fmt: skip
    print("| forwarding | wall s | ratio to off | µs/line | sent | dropped | arrived |")
    print("|---|--:|--:|--:|--:|--:|--:|")
    for name, rows in results.items():
        seconds = statistics.median(r.seconds for r in rows)
        last = rows[-1]
        extra = (seconds - base) / lines * 1e6 if name != "forwarding off" else 0.0
        arrived = "-" if last.arrived is None else f"{last.arrived:,}"
        print(f"| {name} | {seconds:.3f} | {seconds / base:.2f} | {extra:.2f} | {last.sent:,} | "
              f"{last.dropped:,} | {arrived} |")  # fmt: skip
        if name != "forwarding off":
            assert last.sent + last.dropped == lines, (name, last)  # every line accounted for
    print("\nµs/line: the run's extra time per line logged, over forwarding off.")


@task
async def steady(rate: int, seconds: float) -> None:
    interval = 1 / rate
    began = time.perf_counter()
    for i in range(int(rate * seconds)):
        log.info("line %d", i)
        wait = began + (i + 1) * interval - time.perf_counter()
        if wait > 0:
            await asyncio.sleep(wait)  # the pace of the workload, not a synchronisation


async def latency_table(rate: int, seconds: float, broker: MosquittoBroker) -> None:
    prefix = f"latency{time.monotonic_ns()}"
    reader, arrivals = await _subscriber(broker, prefix)
    connector = MqttConnector(broker.host, broker.port, topic_prefix=prefix, presence=False)
    engine = Engine(connector, heartbeat_interval=None, logs=UNBOUNDED)
    await engine.run(steady(rate, seconds))
    await arrivals.until(engine.stats.log_lines_sent)
    await reader.disconnect()
    delays = sorted(arrivals.delays)
    print(f"\n### End to end on mosquitto: {rate:,} lines/s for {seconds:g} s\n")
    print("| lines arrived | p50 ms | p99 ms | max ms |")
    print("|--:|--:|--:|--:|")
    p99 = delays[int(len(delays) * 0.99)]
    median = statistics.median(delays)
    print(f"| {len(delays):,} of {engine.stats.log_lines_sent:,} | {median * 1000:.0f} | "
          f"{p99 * 1000:.0f} | {delays[-1] * 1000:.0f} |")  # fmt: skip


def _written_handler(stack: contextlib.ExitStack) -> logging.Handler:
    """A handler as ``logging.basicConfig`` makes one, writing to /dev/null."""
    handler = logging.StreamHandler(stack.enter_context(open(os.devnull, "w")))  # noqa: SIM115
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    return handler


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=100_000, help="lines the flooding task logs")
    parser.add_argument("--repeats", type=int, default=5, help="runs per row (median)")
    parser.add_argument("--rate", type=int, default=5_000, help="lines/s of the latency run")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of the latency run")
    args = parser.parse_args()
    log.setLevel(logging.INFO)
    root = logging.getLogger()
    if mosquitto_path() is None:
        print("mosquitto is not installed: its rows are left out")
    with contextlib.ExitStack() as stack:
        broker = stack.enter_context(MosquittoBroker()) if mosquitto_path() else None
        # logging's floor: a handler that does nothing with the line
        null = logging.NullHandler()
        root.addHandler(null)
        await flood_table(args.lines, args.repeats, broker, "the application's handler a no-op")
        root.removeHandler(null)
        # as an application that logs has it: each line formatted and written to a file
        root.addHandler(_written_handler(stack))
        await flood_table(args.lines, args.repeats, broker, "each line formatted and written")
        if broker is not None:
            await latency_table(args.rate, args.seconds, broker)


if __name__ == "__main__":
    asyncio.run(main())
