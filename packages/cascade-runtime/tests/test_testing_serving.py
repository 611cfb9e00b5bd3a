"""cascade.runtime.testing.serving: a block whose engine stopped serving under it fails."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.runtime import Engine, task
from cascade.runtime.testing import serving


@task(name="one")
def one() -> int:
    return 1


class _Quits(Engine):
    """An engine whose serve returns at once (``ended`` set), as one that gave up would."""

    def __init__(self) -> None:
        super().__init__(
            InMemoryConnector(InMemoryBroker(), source_id="s1"), heartbeat_interval=None
        )
        self.ended = asyncio.Event()

    async def serve(self, *args: Any, **kwargs: Any) -> None:
        self.ended.set()


async def test_a_serve_that_returns_before_the_block_ends_fails_the_block() -> None:
    engine = _Quits()
    with pytest.raises(AssertionError, match=r"engine\.serve returned before it was cancelled"):
        async with serving(engine, {"one": one}):
            await engine.ended.wait()
