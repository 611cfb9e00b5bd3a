"""Benchmark: what admitting a task costs with 0, 1,000 and 10,000 constraints on other tasks.

Anyone who may write constraints can leave thousands retained at the
broker, most of them TTL-less and about task names an engine never runs.
They must not slow the engine's scheduler. Two tables, each the median of
``--repeats``, with the ratio to the row with no constraints:

1. The constraint manager alone: one ``admit()`` + ``finished()`` of a task
   named ``work`` (µs), with ``N`` constraints held whose scopes are a third
   exact names (``task:other-7``), a third prefix globs (``task:other-7-*``)
   and a third other globs (``task:*-other-7?``). Target: 10,000 <= 1.5x of 0.
2. An engine run of ``--tasks`` no-op tasks on the in-memory broker with the
   ``N`` constraints retained there: the time from the run's start (the
   constraints are in) to its end, i.e. the scheduler's share only.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time

from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.interfaces import Constraint, constraint_topic
from cascade.runtime import ConstraintManager, Engine, Event, RunFinished, RunStarted, task

COUNTS = (0, 1_000, 10_000)
TARGET = 1.5


def unrelated(count: int) -> list[Constraint]:
    """``count`` constraints that govern no task named ``work``."""
    shapes = ("task:other-{}", "task:other-{}-*", "task:*-other-{}?")
    return [Constraint.pause(shapes[i % 3].format(i)) for i in range(count)]


async def admission_us(count: int, admissions: int) -> float:
    manager = ConstraintManager(max_constraints=max(count, 1))
    for constraint in unrelated(count):
        manager.apply(constraint, constraint_topic(constraint.scope, constraint.type))
    admit, finished = manager.admit, manager.finished
    started = time.perf_counter()
    for _ in range(admissions):
        admit("work")
        finished("work")
    elapsed = time.perf_counter() - started
    manager.close()
    return elapsed / admissions * 1e6


@task(name="work")
async def work(i: int) -> int:
    return i


async def scheduling_s(count: int, tasks: int) -> float:
    broker = InMemoryBroker()
    async with InMemoryConnector(broker, presence=False) as operator:
        for constraint in unrelated(count):
            topic = constraint_topic(constraint.scope, constraint.type)
            await operator.publish(topic, constraint, 1, True)
    marks: list[float] = []

    def mark(event: Event) -> None:
        if isinstance(event, RunStarted | RunFinished):
            marks.append(time.perf_counter())

    engine = Engine(InMemoryConnector(broker, presence=False), heartbeat_interval=None)
    engine.events.subscribe(mark)
    await engine.run([work(i) for i in range(tasks)])
    return marks[1] - marks[0]


def table(title: str, unit: str, medians: dict[int, float]) -> None:
    print(f"\n{title}")
    print(f"{'constraints':>12} {unit:>14} {'ratio to 0':>11}")
    for count, value in medians.items():
        print(f"{count:>12,} {value:>14.3f} {value / medians[0]:>11.2f}")


async def main(args: argparse.Namespace) -> None:
    admission = {
        n: statistics.median([await admission_us(n, args.admissions) for _ in range(args.repeats)])
        for n in COUNTS
    }
    table(f"admit()+finished() of one task, median of {args.repeats}", "µs", admission)
    scheduling = {
        n: statistics.median([await scheduling_s(n, args.tasks) for _ in range(args.repeats)])
        for n in COUNTS
    }
    table(f"engine run of {args.tasks} no-op tasks, start → end", "s", scheduling)
    ratio = admission[COUNTS[-1]] / admission[0]
    verdict = "met" if ratio <= TARGET else "NOT met"
    print(
        f"\nadmission with {COUNTS[-1]:,} unrelated constraints <= {TARGET}x of none: "
        f"{ratio:.2f}x {verdict}"
    )


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--admissions", type=int, default=200_000)
    parser.add_argument("--tasks", type=int, default=2_000)
    parser.add_argument("--quick", action="store_true", help="3 repeats, 20,000 admissions")
    arguments = parser.parse_args(argv)
    if arguments.quick:
        arguments.repeats, arguments.admissions = 3, 20_000
    return arguments


if __name__ == "__main__":
    asyncio.run(main(parse(sys.argv[1:])))
