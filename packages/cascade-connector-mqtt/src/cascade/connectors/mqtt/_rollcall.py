"""Answering roll calls: presence on brokers that send retained statuses to exact topics only."""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable

from cascade.interfaces import BrokerCapabilities, Message, rollcall_topic

from ._subscriptions import Subscriptions

__all__ = ["ANSWER_SPACING", "RollCall"]

_log = logging.getLogger("cascade.connectors.mqtt")

ANSWER_SPACING = 0.25
"""Seconds between two answers at least: a flood of roll calls costs each source 4 answers a
second at most, and a roll call that comes sooner is answered at the end of the spacing."""


class RollCall:
    """Announces this source online again whenever a reader asks on ``{prefix}/rollcall``.

    Readers such as ``cascade status`` find the sources that are online through
    their retained births on ``{prefix}/status/+``; a broker that sends retained
    messages only to subscriptions of their exact topic (RabbitMQ 3.x) sends a
    new reader none, so the reader asks, and each source publishes its birth
    again (retained, as every birth). A connector with presence subscribes to
    the roll call once it has learned that its broker is such a broker; on
    others it never subscribes, and nothing changes.
    """

    def __init__(
        self, subscriptions: Subscriptions, prefix: str, announce: Callable[[], None]
    ) -> None:
        self._subscriptions = subscriptions
        self._topic = rollcall_topic(prefix)
        self._announce = announce
        self._joining: asyncio.Task[object] | None = None
        self._last = -math.inf
        self._pending: asyncio.TimerHandle | None = None

    def probed(self, capabilities: BrokerCapabilities) -> None:
        """The broker was probed: subscribe to the roll call if it needs one (once)."""
        if capabilities.retained_to_wildcards is False and self._joining is None:
            self._joining = asyncio.create_task(
                self._subscriptions.subscribe(self._topic, self._called, None),
                name="cascade-mqtt-rollcall",
            )
            _log.info("answering roll calls on %r", self._topic)

    def _called(self, message: Message) -> None:
        if self._pending is not None:
            return  # an answer is due already
        loop = asyncio.get_running_loop()
        wait = self._last + ANSWER_SPACING - loop.time()
        if wait <= 0:
            self._answer()
        else:
            self._pending = loop.call_later(wait, self._answer)

    def _answer(self) -> None:
        self._pending = None
        self._last = asyncio.get_running_loop().time()
        self._announce()

    async def close(self) -> None:
        """Drop a pending answer; once the connection is closed, let a subscribe under way
        end (it ends with the connection; the subscription stays for the next one)."""
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
        if self._joining is not None:
            await asyncio.wait({self._joining})
