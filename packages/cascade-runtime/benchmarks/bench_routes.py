"""Benchmark: what routers cost a run that runs only the routes they chose.

``--routers`` routers (20), each choosing one of two branches, each branch a chain of
``--branch-tasks`` no-op coroutine tasks (50), half the routers choosing the first: with their
selectors, 2,000 branch tasks and the task gathering the routers' results, 2,021 tasks.
Rows (no connector, results not kept, ``max_concurrency=64``):

- ``direct``, the baseline: the same run without routers, the chosen branches wired directly
  to the gathering task beside the selectors (1,021 tasks, all of which run);
- ``routed, lazy selectors``: each router's selector a task, its branches decided as it ends
  (the unchosen branch's 50 tasks end ``SKIPPED`` ``not routed``, without running);
- ``routed, Param selectors``: each selector a ``Param``, the branches decided at the start;
- ``both branches run``: no routers, both branches of each wired to the gathering task (2,021
  tasks, all of which run): what the run would cost if every branch ran.

Each row's ``run ms`` is the median of ``--repeats`` runs (rows interleaved, the graph built
in the time), with its ratio to ``direct``; ``graph ms`` the median time to make the row's lazy
results and build their graph (the routers' analysis with it), timed apart: the part of a run
before its first task. Every run's result is checked against the direct one (the chosen
branches ran). Run it with ``nox -s bench`` or on its own.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import time
from collections.abc import Callable
from typing import Any

from cascade.runtime import Engine, LazyResult, Param, Router, task
from cascade.runtime.workflow._graph import build_graph

KEYS = ("a", "b")


@task
async def pick(router: int) -> str:
    return KEYS[router % 2]


@task
async def step(previous: int, add: int) -> int:
    return previous + add


@task
async def gather(values: list[Any]) -> int:
    return sum(value for value in values if isinstance(value, int))


def chain(key: str, length: int) -> LazyResult[int]:
    """A branch: ``length`` tasks, each taking the one before (``a`` adds 1 a task, ``b`` 2)."""
    add = KEYS.index(key) + 1
    value = step(0, add)
    for _ in range(length - 1):
        value = step(value, add)
    return value


def direct(routers: int, length: int) -> Any:
    chosen = [chain(KEYS[r % 2], length) for r in range(routers)]
    return gather([*chosen, *(pick(r) for r in range(routers))])


def routed_lazy(routers: int, length: int) -> Any:
    selectors = [pick(r) for r in range(routers)]
    return gather(
        [*(Router(s, routes={k: chain(k, length) for k in KEYS}) for s in selectors), *selectors]
    )


def routed_param(routers: int, length: int) -> Any:
    return gather(
        [
            *(
                Router(Param(f"route{r}", default=KEYS[r % 2]), {k: chain(k, length) for k in KEYS})
                for r in range(routers)
            ),
            *(pick(r) for r in range(routers)),
        ]
    )


def both(routers: int, length: int) -> Any:
    branches = [chain(k, length) for _ in range(routers) for k in KEYS]
    return gather([*branches, *(pick(r) for r in range(routers))])


Shape = Callable[[int, int], Any]
# name → (the graph, whether its result is the direct run's)
ROWS: dict[str, tuple[Shape, bool]] = {
    "direct": (direct, True),
    "routed, lazy selectors": (routed_lazy, True),
    "routed, Param selectors": (routed_param, True),
    "both branches run": (both, False),
}


async def one_run(shape: Shape, routers: int, length: int) -> tuple[float, int]:
    """Seconds for one run, from building the graph to its end, and the run's result."""
    gc.collect()
    started = time.perf_counter()
    result = await Engine(max_concurrency=64).run(shape(routers, length))
    return time.perf_counter() - started, result


def graph_time(shape: Shape, routers: int, length: int) -> float:
    """Seconds to make the lazy results and build their graph (the routing found with it), the
    part of a run that is before its first task."""
    gc.collect()
    started = time.perf_counter()
    build_graph(shape(routers, length))
    return time.perf_counter() - started


async def main(args: argparse.Namespace) -> None:
    routers, length = args.routers, args.branch_tasks
    for shape, _ in ROWS.values():  # warm-up
        await one_run(shape, routers, length)
    times: dict[str, list[float]] = {name: [] for name in ROWS}
    graphs: dict[str, list[float]] = {name: [] for name in ROWS}
    results: dict[str, set[int]] = {name: set() for name in ROWS}
    for _ in range(args.repeats):
        for name, (shape, _) in ROWS.items():
            seconds, result = await one_run(shape, routers, length)
            times[name].append(seconds)
            results[name].add(result)
            graphs[name].append(graph_time(shape, routers, length))
    for name, (_, same) in ROWS.items():
        if same and results[name] != results["direct"]:
            raise SystemExit(f"{name}: result {results[name]}, not {results['direct']} (direct)")
    branch_tasks = 2 * routers * length
    print(
        f"\n{routers} routers, each choosing one of 2 branches of {length} tasks "
        f"({branch_tasks + routers + 1} tasks with the selectors and the gathering), no-op "
        f"coroutines, median of {args.repeats} runs, ratio to direct; graph: of the run, the "
        "median time to build its graph"
    )
    print(f"{'graph':<24} {'tasks run':>9} {'run ms':>8} {'ratio':>6} {'graph ms':>9}")
    base = statistics.median(times["direct"])
    for name, (_, same) in ROWS.items():
        ran = (branch_tasks // 2 if same else branch_tasks) + routers + 1
        median = statistics.median(times[name])
        graph = statistics.median(graphs[name])
        print(f"{name:<24} {ran:>9} {median * 1e3:8.1f} {median / base:6.2f} {graph * 1e3:9.1f}")


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--routers", type=int, default=20)
    parser.add_argument("--branch-tasks", type=int, default=50, help="tasks in each branch")
    parser.add_argument("--repeats", type=int, default=15)
    args, _ = parser.parse_known_args(argv)  # the bench session passes every script its options
    return args


if __name__ == "__main__":
    asyncio.run(main(parse()))
