"""SUBSCRIBEs the broker refused (SUBACK 0x80 or above): tried again with backoff.

A refused filter is not subscribed: nothing arrives on it, its retained messages
included, so its subscriptions are not told that their snapshot ended (``"end"``)
until a later SUBSCRIBE of it is granted and the marker behind it is back. NATS
refuses a QoS 1 subscription whose JetStream consumer it cannot create (a node of
its cluster lost) and grants it again once it can; an ACL that denies the filter
refuses it every time. So a refused filter is subscribed again on the same
connection after a backoff delay, each refusal counted (``subscriptions_refused``)
and logged at a limited rate, until it is granted, the connection goes (the next
one subscribes every filter again), or no subscription uses it any more.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from cascade.connector_kit import RateLimitedLogger

from ._backoff import Backoff
from ._connection import Connection
from ._link import LinkError
from ._stats import MqttConnectorStats

__all__ = ["RefusedSubscribes", "is_refused"]

_log = logging.getLogger("cascade.connectors.mqtt")


def is_refused(code: object) -> bool:
    """Whether a SUBACK's reason code refuses the filter (0x80 or above)."""
    value = getattr(code, "value", code)
    return isinstance(value, int) and value >= 0x80


@dataclass
class _Retry:
    connection: Connection
    topic_filter: str
    refusals: int = 0
    granted: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    task: asyncio.Task[None] | None = None


Resubscribe = Callable[[Connection, str], Awaitable[object]]
"""SUBSCRIBE one filter on a connection; its SUBACK's reason code (``LinkError`` if it goes)."""

Granted = Callable[[Connection, str], "asyncio.Future[None]"]
"""A retried filter was granted: send the marker behind it, which ends its snapshot; the
marker's future (done when it is back, or when the connection goes)."""


class RefusedSubscribes:
    """The filters being subscribed again after a refusal, one task each."""

    def __init__(
        self,
        stats: MqttConnectorStats,
        log: RateLimitedLogger,
        resubscribe: Resubscribe,
        granted: Granted,
        *,
        initial: float,
        maximum: float,
    ) -> None:
        self._stats = stats
        self._log = log
        self._resubscribe = resubscribe
        self._granted = granted
        self._initial = initial
        self._maximum = maximum
        self._retries: dict[str, _Retry] = {}

    @property
    def filters(self) -> frozenset[str]:
        """The filters being subscribed again now."""
        return frozenset(self._retries)

    def retrying(self, topic_filter: str) -> asyncio.Future[None] | None:
        """The future set once ``topic_filter`` is granted (or given up), if it is retried."""
        retry = self._retries.get(topic_filter)
        return None if retry is None else retry.granted

    def refused(
        self, connection: Connection, topic_filter: str, code: object
    ) -> asyncio.Future[None]:
        """The broker refused ``topic_filter`` on ``connection``: count, log, and retry it.

        Returns the future set once it is granted and its marker sent, or once
        the retry ends otherwise (the connection went, nobody uses the filter).
        """
        retry = self._retries.get(topic_filter)
        if retry is None or retry.connection is not connection:
            if retry is not None:
                self._end(retry)
            retry = self._retries[topic_filter] = _Retry(connection, topic_filter)
            retry.task = asyncio.create_task(
                self._retry(retry), name=f"cascade-mqtt-resubscribe:{topic_filter}"
            )
        self._count(retry, code)
        return retry.granted

    def _count(self, retry: _Retry, code: object) -> None:
        retry.refusals += 1
        self._stats.subscriptions_refused += 1
        self._log.warning(
            f"refused:{retry.topic_filter}",
            "the broker refused the subscription to %r (%s, %d time(s) on this connection): "
            "nothing arrives on it and its retained messages are not known; subscribing again "
            "with backoff (an ACL that denies it? a cluster node lost?)",
            retry.topic_filter,
            code,
            retry.refusals,
        )

    async def _retry(self, retry: _Retry) -> None:
        backoff = Backoff(self._initial, self._maximum)
        connection, topic_filter = retry.connection, retry.topic_filter
        try:
            while True:
                await asyncio.sleep(backoff.next_delay())
                code = await self._resubscribe(connection, topic_filter)
                if not is_refused(code):
                    break
                self._count(retry, code)
        except LinkError:
            self._end(retry)  # the connection is going: the next one subscribes every filter
            return
        finally:
            if self._retries.get(topic_filter) is retry:
                del self._retries[topic_filter]
        _log.info(
            "the broker granted the subscription to %r after %d refusal(s)",
            topic_filter,
            retry.refusals,
        )
        marker = self._granted(connection, topic_filter)
        marker.add_done_callback(lambda _: _settle(retry.granted))

    def forget(self, topic_filter: str) -> None:
        """No subscription uses ``topic_filter`` any more: stop retrying it."""
        retry = self._retries.pop(topic_filter, None)
        if retry is not None:
            self._end(retry)

    def lost(self) -> None:
        """The connection went: stop every retry (the next connection subscribes anew)."""
        for retry in list(self._retries.values()):
            self._end(retry)
        self._retries.clear()

    @staticmethod
    def _end(retry: _Retry) -> None:
        if retry.task is not None and retry.task is not asyncio.current_task():
            retry.task.cancel()
        _settle(retry.granted)


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
