"""Subscribing to the constraints on any broker: one recipe for engines and readers alike."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from ._connector import Connector, Message, SubscriptionHandle, SyncCallback, SyncPhase
from ._constraint_topic import TopicKey
from ._constraints_index import beside_exact_reads, read_indexed_constraints
from ._topics import constraints_filter

__all__ = ["subscribe_constraints"]

_log = logging.getLogger("cascade.interfaces")


async def subscribe_constraints(
    connector: Connector,
    callback: Callable[[Message], None],
    *,
    on_sync: SyncCallback | None = None,
    wanted: Callable[[TopicKey], bool] | None = None,
    on_read_error: Callable[[Exception], None] | None = None,
) -> SubscriptionHandle:
    """Subscribe ``callback`` to every constraint topic (``{prefix}/constraints/#``) and hand
    it the retained constraints, on any broker, now and after every reconnection.

    Where the broker sends retained messages only to subscriptions of their exact topic
    (``connector.capabilities.retained_to_wildcards`` is ``False``: RabbitMQ's MQTT plugin,
    for one), each snapshot of the wildcard subscription (which brings none) is followed by
    a read of the constraints index (:func:`read_indexed_constraints`, with ``wanted``),
    each message handed over once (:func:`beside_exact_reads`); a new snapshot cuts short
    the read of the one before. ``on_sync`` is told where each snapshot begins and ends, its
    end once its read is done (failed or not; not when cut short).

    Returns once subscribed and the first snapshot is handed over, its read included. A
    read that fails is passed to ``on_read_error``; without it, the first one's error is
    raised (the subscription ended) and a later one's is logged. Cancelled meanwhile, the
    subscription is ended. The handle's ``unsubscribe()`` also cuts short a read under way.
    """
    subscription = _ConstraintSubscription(connector, callback, on_sync, wanted, on_read_error)
    return await subscription.open()


class _ConstraintSubscription:
    """One subscription to the constraints and its reads of the index."""

    def __init__(
        self,
        connector: Connector,
        callback: Callable[[Message], None],
        on_sync: SyncCallback | None,
        wanted: Callable[[TopicKey], bool] | None,
        on_read_error: Callable[[Exception], None] | None,
    ) -> None:
        self._connector = connector
        self._callback = callback
        self._on_sync = on_sync
        self._wanted = wanted
        self._on_read_error = on_read_error
        self._read: asyncio.Task[None] | None = None
        self._first: Exception | None = None  # the first read's error, raised by open()
        self._opening = True
        self._handle: SubscriptionHandle | None = None

    @property
    def topic_filter(self) -> str:
        """The filter this subscription was made with."""
        assert self._handle is not None
        return self._handle.topic_filter

    async def open(self) -> SubscriptionHandle:
        connector = self._connector
        self._handle = handle = await connector.subscribe(
            constraints_filter(connector.topic_prefix),
            beside_exact_reads(connector, self._callback),
            on_sync=self._synced,
        )
        try:
            if (
                self._read is None
                and connector.is_connected
                and connector.capabilities.retained_to_wildcards is False
            ):
                self._start_read()  # no snapshot ended while subscribing: read all the same
            if self._read is not None:
                await asyncio.wait({self._read})
        except BaseException:
            await self.unsubscribe()
            raise
        finally:
            self._opening = False
        if self._first is not None:
            await handle.unsubscribe()
            raise self._first
        return self

    async def unsubscribe(self) -> None:
        """Cut short a read under way, and end the subscription. Idempotent."""
        self._stop_read()
        if self._handle is not None:
            await self._handle.unsubscribe()

    def _synced(self, phase: SyncPhase) -> None:
        self._stop_read()
        if phase == "begin" or self._connector.capabilities.retained_to_wildcards is not False:
            if self._on_sync is not None:
                self._on_sync(phase)
            return
        self._start_read()

    def _start_read(self) -> None:
        self._read = asyncio.ensure_future(self._read_exactly(first=self._opening))

    def _stop_read(self) -> None:
        read = self._read
        if read is not None and not read.done():
            read.cancel()
        self._read = None

    async def _read_exactly(self, *, first: bool) -> None:
        """Read the retained constraints through their exact topics, then end the snapshot."""
        try:
            await read_indexed_constraints(self._connector, self._callback, wanted=self._wanted)
        except Exception as exc:
            if self._on_read_error is not None:
                self._on_read_error(exc)
            elif first:
                self._first = exc
            else:
                _log.warning(
                    "could not read the constraints index after a reconnection", exc_info=True
                )
        if self._on_sync is not None:
            self._on_sync("end")
