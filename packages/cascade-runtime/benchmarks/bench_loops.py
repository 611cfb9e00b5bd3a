"""What a loop (``Jump``, ``select_jump``, ``bind``) costs, beside the same work as a graph.

For each length, a loop of that many iterations of a plain task, and as its baseline a chain
of that many calls of the same task (each taking the one before), both on an engine with no
connector: the time per iteration (median of the repeats) and the memory the run holds at
its peak (tracemalloc, beyond what was held before the run). A loop holds one iteration at a
time, so its peak stays flat as it grows, where the chain holds its whole graph.

    python packages/cascade-runtime/benchmarks/bench_loops.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

from cascade.runtime import Engine, Jump, LazyResult, bind, select_jump, task

LENGTHS = (100, 1_000, 10_000)


@task
def step(n: int) -> Any:
    return n + 1


@task
def countdown(n: int) -> Jump:
    return Jump("done", n) if n <= 0 else Jump("again", n - 1)


def loop_of(length: int) -> LazyResult[Any]:
    loop = countdown(length - 1)
    bind(loop, select_jump({"again": loop, "done": None}))
    return loop


def chain_of(length: int) -> LazyResult[Any]:
    call = step(0)
    for _ in range(length - 1):
        call = step(call)
    return call


def measure(make: Callable[[int], LazyResult[Any]], length: int) -> tuple[float, float]:
    """Seconds per iteration, and the peak KiB held beyond the start, of one run."""
    engine = Engine()
    target = make(length)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    started = time.perf_counter()
    asyncio.run(engine.run(target))
    elapsed = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return elapsed / length, (peak - before) / 1024


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    print("loops beside a chain of the same calls (engine, no connector; tracemalloc on)")
    print(f"{'length':>8}  {'loop µs/it':>11}  {'chain µs/it':>12}  {'ratio':>6}  "
          f"{'loop peak KiB':>14}  {'chain peak KiB':>15}")  # fmt: skip
    measure(loop_of, 10)  # warm: imports, the first loop's setup
    measure(chain_of, 10)
    for length in LENGTHS:
        loops = [measure(loop_of, length) for _ in range(args.repeats)]
        chains = [measure(chain_of, length) for _ in range(args.repeats)]
        loop_time = statistics.median(t for t, _ in loops) * 1e6
        chain_time = statistics.median(t for t, _ in chains) * 1e6
        loop_peak = statistics.median(m for _, m in loops)
        chain_peak = statistics.median(m for _, m in chains)
        ratio = loop_time / chain_time
        print(f"{length:>8,}  {loop_time:>11.1f}  {chain_time:>12.1f}  {ratio:>5.2f}x  "
              f"{loop_peak:>14,.0f}  {chain_peak:>15,.0f}")  # fmt: skip


if __name__ == "__main__":
    main()
