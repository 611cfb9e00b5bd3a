"""Plain-function tasks of Python code that computes, in threads and in worker processes.

``--tasks`` tasks (200) of about ``--ms`` milliseconds of CPU each (50: a loop of Python
calibrated on this machine before the rows run), no connector, ``max_concurrency=64``:

- ``threads``, the baseline: the engine's default executor (one thread pool a run), where
  the GIL lets one task compute at a time;
- ``ProcessExecutor(N)``: ``--workers`` worker processes (2), a new executor each run, so
  its pool's start (spawning the workers, each importing the engine) is in the time;
- ``ProcessExecutor(N), pool warm``: one executor for all its runs, started by a run before
  the timed ones.

Each row's time is the median of ``--repeats`` runs (3), the rows interleaved; the ratio is to
``threads``. The aim on a 2-core machine: processes at most 0.6x threads' wall time. Run it
with ``nox -s bench`` or on its own.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from collections.abc import Callable

from cascade.runtime import Engine, Executor, ProcessExecutor, task


@task
def compute(rounds: int) -> int:
    """Python that computes: ``rounds`` rounds of a loop."""
    total = 0
    for i in range(rounds):
        total += i * i % 7
    return total


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
    times: dict[str, list[float]] = {name: [] for name in rows}
    for _ in range(args.repeats):
        for name, make in rows.items():
            executor, done = make()
            try:
                times[name].append(asyncio.run(one_run(executor, args.tasks, rounds)))
            finally:
                done()
    warm.shutdown()
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
    print(f"aim: processes <= 0.6x threads' wall time: {verdict} ({best / base:.2f}x at best)")


if __name__ == "__main__":
    main()
