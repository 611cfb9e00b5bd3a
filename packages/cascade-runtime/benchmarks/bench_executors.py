"""Plain-function tasks of Python code that computes, in threads, in worker processes and on
Dask.

``--tasks`` tasks (200) of about ``--ms`` milliseconds of CPU each (50: a loop of Python
calibrated on this machine before the rows run), no connector, ``max_concurrency=64``:

- ``threads``, the baseline: the engine's default executor (one thread pool a run), where
  the GIL lets one task compute at a time;
- ``ProcessExecutor(N)``: ``--workers`` worker processes (2), a new executor each run, so
  its pool's start (spawning the workers, each importing the engine) is in the time;
- ``ProcessExecutor(N), pool warm``: one executor for all its runs, started by a run before
  the timed ones;
- ``DaskExecutor, N workers`` (where distributed is installed): a ``LocalCluster`` of ``N``
  worker processes of one thread each, started before the rows.

Each row's time is the median of ``--repeats`` runs (3), the rows interleaved; the ratio is to
``threads``. The aim on a 2-core machine: processes and Dask at most 0.6x threads' wall time.

Then, on the same cluster, ``--noops`` (2,000) no-op tasks through ``DaskExecutor`` (telemetry
on: an in-memory connector) against ``client.map`` of the same function and ``gather``: the
engine's cost over Dask's own (aim: at most 1.5x). Run it with ``nox -s bench`` or on its own.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import importlib.util
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

from cascade.connector_kit.testing import InMemoryConnector
from cascade.runtime import DaskExecutor, Engine, Executor, ProcessExecutor, task


@task
def compute(rounds: int) -> int:
    """Python that computes: ``rounds`` rounds of a loop."""
    total = 0
    for i in range(rounds):
        total += i * i % 7
    return total


def noop(i: int) -> int:
    return i


@task(name="noop")
def noop_task(i: int) -> int:
    return i


def calibrate(ms: float) -> int:
    """Rounds of :func:`compute`'s loop that take about ``ms`` ms of CPU here."""
    rounds = 10_000
    while True:
        started = time.process_time()
        compute.fn(rounds)
        took = time.process_time() - started
        if took > 0.05:
            return max(1, int(rounds * ms / 1000 / took))
        rounds *= 2


async def one_run(executor: Executor | None, tasks: int, rounds: int) -> float:
    """Seconds for one run of ``tasks`` tasks of ``rounds`` rounds on ``executor``."""
    started = time.perf_counter()
    await Engine(max_concurrency=64, executor=executor).run([compute(rounds) for _ in range(tasks)])
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--ms", type=float, default=50.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--noops", type=int, default=2000)
    args = parser.parse_args()
    rounds = calibrate(args.ms)
    workers = args.workers
    warm = ProcessExecutor(workers)
    asyncio.run(one_run(warm, workers, rounds))  # the warm pool's start, not timed

    def fresh() -> tuple[Executor | None, Callable[[], None]]:
        executor = ProcessExecutor(workers)
        return executor, executor.shutdown

    rows: dict[str, Callable[[], tuple[Executor | None, Callable[[], None]]]] = {
        "threads": lambda: (None, lambda: None),
        f"ProcessExecutor({workers})": fresh,
        f"ProcessExecutor({workers}), pool warm": lambda: (warm, lambda: None),
    }
    cluster = _dask_cluster(workers)
    if cluster is not None:
        client, on_dask = cluster[1], DaskExecutor(cluster[1])
        rows[f"DaskExecutor, {workers} workers"] = lambda: (on_dask, lambda: None)
    times: dict[str, list[float]] = {name: [] for name in rows}
    for _ in range(args.repeats):
        for name, make in rows.items():
            executor, done = make()
            try:
                times[name].append(asyncio.run(one_run(executor, args.tasks, rounds)))
            finally:
                done()
    warm.shutdown()
    try:
        _print_rows(args, rounds, rows, times)
        if cluster is not None:
            _print_noops(client, on_dask, args.noops, args.repeats)
    finally:
        if cluster is not None:
            cluster[1].close()
            cluster[0].close()


def _print_rows(
    args: argparse.Namespace,
    rounds: int,
    rows: dict[str, Any],
    times: dict[str, list[float]],
) -> None:
    print(
        f"{args.tasks} tasks of about {args.ms:g} ms of CPU each ({rounds} rounds), "
        f"{os.cpu_count()} CPUs, median of {args.repeats} runs, ratio to threads"
    )
    print(f"{'executor':<34} {'wall s':>8} {'ratio':>6}")
    base = statistics.median(times["threads"])
    for name, measured in times.items():
        median = statistics.median(measured)
        print(f"{name:<34} {median:>8.2f} {median / base:>6.2f}")
    best = min(statistics.median(times[name]) for name in rows if name != "threads")
    verdict = "met" if best / base <= 0.6 else "not met"
    print(f"aim: elsewhere <= 0.6x threads' wall time: {verdict} ({best / base:.2f}x at best)")


def _dask_cluster(workers: int) -> tuple[Any, Any] | None:
    """A LocalCluster of ``workers`` processes of one thread, and a client; ``None`` without
    distributed."""
    if importlib.util.find_spec("distributed") is None:
        print("(no Dask rows: distributed is not installed)")
        return None
    dask: Any = importlib.import_module("dask")
    distributed: Any = importlib.import_module("distributed")  # typed in part only
    dask.config.set({"distributed.scheduler.allowed-failures": 0})
    cluster = distributed.LocalCluster(
        n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
    )
    client = distributed.Client(cluster, set_as_default=False)
    client.wait_for_workers(workers)
    return cluster, client


def _print_noops(client: Any, on_dask: DaskExecutor, noops: int, repeats: int) -> None:
    async def engine_run() -> float:
        started = time.perf_counter()
        engine = Engine(InMemoryConnector(), max_concurrency=64, executor=on_dask)
        await engine.run(noop_task.map(i=list(range(noops))))
        return time.perf_counter() - started

    def plain() -> float:
        started = time.perf_counter()
        client.gather(client.map(noop, range(noops), pure=False))
        return time.perf_counter() - started

    asyncio.run(engine_run())  # the workers have the functions: not timed
    plain()
    engine_times: list[float] = []
    plain_times: list[float] = []
    for _ in range(repeats):
        engine_times.append(asyncio.run(engine_run()))
        plain_times.append(plain())
    base = statistics.median(plain_times)
    ours = statistics.median(engine_times)
    print(f"\n{noops} no-op tasks on the same cluster, median of {repeats} runs")
    print(f"{'how':<34} {'wall s':>8} {'ratio':>6}")
    print(f"{'client.map, gather':<34} {base:>8.2f} {1.0:>6.2f}")
    print(f"{'DaskExecutor, telemetry on':<34} {ours:>8.2f} {ours / base:>6.2f}")
    verdict = "met" if ours / base <= 1.5 else "not met"
    print(f"aim: DaskExecutor <= 1.5x client.map: {verdict} ({ours / base:.2f}x)")


if __name__ == "__main__":
    main()
