"""A map of many items from one upstream result, against the same tasks written out in the graph.

Rows (no connector, results not kept, ``max_concurrency=64``):

- ``fixed``, the baseline: ``[work(i) for i in range(items)]``, a graph the size of the work
  before the run starts;
- ``map``: ``work.map(i=rows(items))``, one upstream task whose result is the list, the items
  made when it completes, their results gathered into one list.

Each row's time is the median of ``--repeats`` runs, interleaved; its memory is the peak of
what Python allocated during one run (``tracemalloc``, a run of its own, as tracing slows it),
said per item. Run it with ``nox -s bench`` or on its own (``--items``, ``--repeats``).
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

from cascade.runtime import Engine, task


@task
async def work(i: int) -> int:
    return i


@task
def rows(items: int) -> list[int]:
    return list(range(items))


def fixed(items: int) -> Any:
    return [work(i) for i in range(items)]


def mapped(items: int) -> Any:
    return work.map(i=rows(items))


ROWS: dict[str, Callable[[int], Any]] = {"fixed": fixed, "map": mapped}


async def one_run(shape: Callable[[int], Any], items: int) -> float:
    """Seconds for one run of ``items`` items, from building the graph to its end."""
    gc.collect()
    started = time.perf_counter()
    await Engine(max_concurrency=64).run(shape(items))
    return time.perf_counter() - started


async def peak_bytes(shape: Callable[[int], Any], items: int) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        await Engine(max_concurrency=64).run(shape(items))
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


async def main(args: argparse.Namespace) -> None:
    for shape in ROWS.values():  # warm-up
        await one_run(shape, min(args.items, 1000))
    times: dict[str, list[float]] = {name: [] for name in ROWS}
    for _ in range(args.repeats):
        for name, shape in ROWS.items():
            times[name].append(await one_run(shape, args.items))
    peaks = {name: await peak_bytes(shape, args.items) for name, shape in ROWS.items()}
    base = statistics.median(times["fixed"])
    print(f"\n{args.items} items, median of {args.repeats} runs, ratio to fixed")
    print(f"{'graph':<8} {'s':>9} {'ratio':>6} {'µs/item':>8} {'peak MiB':>9} {'bytes/item':>11}")
    for name in ROWS:
        median = statistics.median(times[name])
        print(
            f"{name:<8} {median:9.4f} {median / base:6.2f} {median / args.items * 1e6:8.2f} "
            f"{peaks[name] / 2**20:9.1f} {peaks[name] / args.items:11.0f}"
        )


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=5)
    return parser.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse()))
