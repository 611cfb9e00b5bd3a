"""Benchmark: what telling a run's graph costs its start (``ENGINE_STARTED``'s ``graph``).

For a run of 1 task, of 2,000 (the most whose graph is sent: 1,999 independent tasks and
their sum) and of 2,001 (above the bound: its size alone is sent), printed per row: the
median of ``--repeats`` whole runs (an engine with an in-memory connector, telemetry on), the
median time to decide and encode the graph as the run's start does (``wire_graph`` and the
``ENGINE_STARTED`` body), and its share of the run. Wall times on a shared machine move with
its load; valgrind's instruction counts do not (docs/performance.md has them).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

import msgspec

from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.interfaces import LifecycleEvent
from cascade.runtime import Engine, task
from cascade.runtime.workflow._graph import build_graph
from cascade.runtime.workflow._graph_wire import wire_graph

_encode = msgspec.json.Encoder().encode


@task
def one(i: int) -> int:
    return i


@task
def total(values: list[int]) -> int:
    return sum(values)


def _target(tasks: int) -> Any:
    return total([one(i) for i in range(tasks - 1)]) if tasks > 1 else one(0)


async def _run(tasks: int) -> float:
    engine = Engine(InMemoryConnector(InMemoryBroker(), source_id="bench"), heartbeat_interval=None)
    target = _target(tasks)
    started = time.perf_counter()
    await engine.run(target)
    return time.perf_counter() - started


def _graph_time(tasks: int, repeats: int) -> tuple[float, int]:
    graph = build_graph(_target(tasks))
    times, size = [], 0
    for _ in range(repeats):
        started = time.perf_counter()
        shape = wire_graph(graph)
        body = _encode(LifecycleEvent(event="ENGINE_STARTED", tasks=tasks, graph=shape))
        times.append(time.perf_counter() - started)
        size = len(body)
    return statistics.median(times), size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=9)
    args, _ = parser.parse_known_args()  # the bench session passes every script its options
    print(f"{'tasks':>6} {'run (ms)':>9} {'graph (µs)':>11} {'share':>7} {'start (bytes)':>14}")
    for tasks in (1, 2_000, 2_001):
        runs = [asyncio.run(_run(tasks)) for _ in range(args.repeats)]
        run = statistics.median(runs)
        graph, size = _graph_time(tasks, args.repeats * 5)
        print(f"{tasks:>6} {run * 1e3:>9.1f} {graph * 1e6:>11.0f} {graph / run:>7.2%} {size:>14}")


if __name__ == "__main__":
    main()
