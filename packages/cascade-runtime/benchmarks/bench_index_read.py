"""Benchmark: what reading the constraints index costs an engine at each run's start (RabbitMQ).

On a broker that sends retained messages to exact subscriptions only, an
engine reads the index at every run's start, one exact subscription per
record: the 16 shards, the record of earlier versions and the ``global``
scope's 4 topics, 21 in all (earlier versions: 5). On one private RabbitMQ
node (``RabbitMQBroker``), median and max over ``--repeat`` (20) times:

- ``exact reads of K topics``: subscribing to K retained topics at once,
  receiving them and unsubscribing, for K = 5 (earlier versions), 13 (8
  shards), 21 (16 shards, this version) and 37 (32 shards);
- ``index read``: ``read_indexed_constraints`` as an engine calls it, with
  ``--constraints`` (0 and 100) constraints indexed;
- ``run start``: ``Engine.run`` of one task on a connected ``MqttConnector``,
  from the call to the task's start (the index read is part of it).

Skipped where rabbitmq-server is not installed.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable

from cascade.connector_kit._constraints_index import _read_retained
from cascade.connector_kit.constraints_index import read_indexed_constraints
from cascade.connectors.mqtt import MqttConnector
from cascade.interfaces import (
    Constraint,
    Message,
    constraint_topic,
)
from cascade.runtime import Engine, task
from cascade.testkit import RabbitMQBroker, rabbitmq_server_path

PREFIX = "bench-index"


async def timed(repeat: int, step: Callable[[], Awaitable[object]]) -> tuple[float, float]:
    """Median and max milliseconds of ``step()`` over ``repeat`` calls (after one warm-up)."""
    await step()
    seconds = []
    for _ in range(repeat):
        started = time.perf_counter()
        await step()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds) * 1000, max(seconds) * 1000


def row(label: str, figures: tuple[float, float]) -> None:
    print(f"{label:<44} {figures[0]:9.1f} {figures[1]:9.1f}")


async def bench(port: int, args: argparse.Namespace) -> None:
    async with (
        MqttConnector("127.0.0.1", port, topic_prefix=PREFIX, presence=False) as reader,
        MqttConnector("127.0.0.1", port, topic_prefix=PREFIX, source_id="bench") as engine_link,
    ):
        print(f"{'ms':<44} {'median':>9} {'max':>9}")
        for count in (5, 13, 21, 37):
            topics = [f"{PREFIX}/bench/exact/{i}" for i in range(count)]
            for topic in topics:
                await reader.publish(topic, {"bench": 1}, qos=1, retain=True)
            await reader.flush(10)

            def ignore(message: Message) -> None:
                pass

            async def read_exactly(topics: list[str] = topics) -> None:
                await _read_retained(reader, topics, ignore)

            row(f"exact reads of {count} topics", await timed(args.repeat, read_exactly))
        engine = Engine(engine_link, heartbeat_interval=None)
        started: list[float] = []

        @task
        async def first() -> None:
            started.append(time.perf_counter())

        async def run_start() -> None:
            called = time.perf_counter()
            await engine.run(first())
            started[-1] -= called

        for indexed in sorted(set(args.constraints)):
            puts = {
                constraint_topic(f"task:bench{i}", "pause", PREFIX): Constraint.pause(
                    f"task:bench{i}"
                )
                for i in range(indexed)
            }
            if puts:
                await reader.index_constraints(put=puts, timeout=30)

            async def index_read() -> None:
                await read_indexed_constraints(reader, lambda message: None)

            row(f"index read, {indexed} constraints indexed", await timed(args.repeat, index_read))
            await timed(args.repeat, run_start)
            runs = started[-args.repeat :]
            row(
                f"run start, {indexed} constraints indexed",
                (statistics.median(runs) * 1000, max(runs) * 1000),
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--constraints", type=int, nargs="*", default=[0, 100])
    parser.add_argument("--quick", action="store_true", help="5 repeats")
    args = parser.parse_args()
    if args.quick:
        args.repeat = 5
    if rabbitmq_server_path() is None:
        print("bench_index_read: skipped (rabbitmq-server is not installed)")
        return
    with RabbitMQBroker() as rabbit:
        asyncio.run(bench(rabbit.port, args))


if __name__ == "__main__":
    main()
