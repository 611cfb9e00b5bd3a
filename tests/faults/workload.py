"""The scenarios' workload, in a module of its own so that a process beside a scenario (its
timing witness) runs the very same tasks."""

from __future__ import annotations

import asyncio

from cascade.runtime import LazyResult, task


@task
async def _nap(i: int, seconds: float) -> int:
    await asyncio.sleep(seconds)
    return i


@task
def _total(values: list[int]) -> int:
    return sum(values)


def sleepy_fanout(tasks: int, seconds: float) -> LazyResult[int]:
    """``tasks`` tasks that each sleep ``seconds``, then their sum."""
    return _total([_nap(i, seconds) for i in range(tasks)])
