"""What `status`, `watch` and the dashboard subscribe to, on every kind of broker.

On a broker that sends retained messages only to subscriptions of their exact
topic (``connector.capabilities.retained_to_wildcards`` is ``False``), the
wildcard subscriptions bring no retained constraint or status: the retained
constraints are read exactly through the constraints index, and the online
sources are asked to announce themselves again (a roll call).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from cascade.interfaces import (
    Connector,
    Message,
    SubscriptionHandle,
    SyncPhase,
    beside_exact_reads,
    constraints_filter,
    read_indexed_constraints,
    rollcall_topic,
    status_filter,
    summary_filter,
)

__all__ = ["ROLLCALL_WAIT", "subscribe_constraints", "subscribe_statuses", "subscribe_summaries"]

_log = logging.getLogger("cascade.cli")

ROLLCALL_WAIT = 1.0
"""Seconds `cascade status` gives the sources to answer a roll call (at most ``--timeout``):
nothing says that all have answered."""


async def subscribe_constraints(
    connector: Connector, callback: Callable[[Message], None]
) -> SubscriptionHandle:
    """Subscribe ``callback`` to every constraint topic, and hand it the retained ones: through
    ``{prefix}/constraints/#``, or read exactly through the index where the broker sends
    retained messages only to exact subscriptions, now and after every reconnection."""
    later: set[asyncio.Task[object]] = set()
    subscribed = False

    def synced(phase: SyncPhase) -> None:
        if phase == "end" and subscribed and connector.capabilities.retained_to_wildcards is False:
            task = asyncio.ensure_future(_read(connector, callback))
            later.add(task)  # kept until done: the loop holds tasks weakly
            task.add_done_callback(later.discard)

    handle = await connector.subscribe(
        constraints_filter(connector.topic_prefix),
        beside_exact_reads(connector, callback),
        on_sync=synced,
    )
    subscribed = True
    if connector.capabilities.retained_to_wildcards is False:
        await read_indexed_constraints(connector, callback)
    return handle


async def _read(connector: Connector, callback: Callable[[Message], None]) -> None:
    """A reconnection's read of the index, in the background: a failure is logged."""
    try:
        await read_indexed_constraints(connector, callback)
    except Exception:
        _log.warning("could not read the constraints index after a reconnection", exc_info=True)


async def subscribe_statuses(
    connector: Connector, callback: Callable[[Message], None], *, summaries: bool = True
) -> bool:
    """Subscribe ``callback`` to every source's status (and, with ``summaries``, every
    engine's summary); where the broker sends it no retained status, call the roll call (the
    answers come to ``callback``: engines answer with both) and return ``True``."""
    prefix = connector.topic_prefix
    await connector.subscribe(status_filter(prefix), callback)
    if summaries:
        await subscribe_summaries(connector, callback)
    if connector.capabilities.retained_to_wildcards is not False:
        return False
    await connector.publish(rollcall_topic(prefix), {"rollcall": 1}, qos=1)
    return True


async def subscribe_summaries(
    connector: Connector, callback: Callable[[Message], None]
) -> SubscriptionHandle:
    """Subscribe ``callback`` to every engine's summary (``{prefix}/summary/+``)."""
    return await connector.subscribe(summary_filter(connector.topic_prefix), callback)
