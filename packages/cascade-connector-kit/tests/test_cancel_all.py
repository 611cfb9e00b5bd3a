"""cancel_all: tasks stopped for good, though one of them dropped a cancellation (as an
``asyncio.wait_for`` before Python 3.12 does when a cancel meets the end of its wait)."""

from __future__ import annotations

import asyncio

from cascade.connector_kit import bounded, cancel_all


async def test_a_task_that_dropped_a_cancel_is_cancelled_again_until_it_ends() -> None:
    dropped: list[int] = []

    async def clock() -> None:  # a loop whose wait drops the first cancel, as wait_for may
        while True:
            try:
                await asyncio.sleep(0.01)
            except asyncio.CancelledError:
                if dropped:
                    raise
                dropped.append(1)

    async def fails() -> None:
        raise ValueError("its error is taken, not logged as never retrieved")

    tasks = [asyncio.create_task(clock()), asyncio.create_task(fails())]
    await asyncio.sleep(0.05)
    async with bounded(5):  # one cancel and a gather would wait for ever
        await cancel_all(tasks, again_after=0.05)
    assert dropped == [1]
    assert tasks[0].cancelled()
    assert isinstance(tasks[1].exception(), ValueError)
