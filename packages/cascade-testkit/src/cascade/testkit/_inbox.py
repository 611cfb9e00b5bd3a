"""A subscription callback that keeps what it receives, for tests to await."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from cascade.interfaces import Message

__all__ = ["Inbox"]


class Inbox:
    """A subscription callback that queues what it gets, for awaiting with a deadline."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[Message] = asyncio.Queue()
        self.all: list[Message] = []

    def __call__(self, message: Message) -> None:
        self.all.append(message)
        self.queue.put_nowait(message)

    async def next(self, timeout: float = 10.0) -> Message:
        """The next message, or TimeoutError after ``timeout`` seconds."""
        return await asyncio.wait_for(self.queue.get(), timeout)

    async def until(self, predicate: Callable[[Message], bool], timeout: float = 10.0) -> Message:
        """Skip messages until one satisfies ``predicate``; TimeoutError after ``timeout``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            message = await asyncio.wait_for(self.queue.get(), max(0.0, deadline - loop.time()))
            if predicate(message):
                return message
