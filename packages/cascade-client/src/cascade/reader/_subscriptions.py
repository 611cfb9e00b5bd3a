"""What `status`, `watch` and the dashboard subscribe to, on every kind of broker.

On a broker that sends retained messages only to subscriptions of their exact
topic, the wildcard subscriptions bring no retained constraint or status: the
connector reads the retained constraints exactly through the constraints index
(``Connector.subscribe_constraints``), and asks the online sources to announce
themselves again (a roll call, ``Connector.call_roll``).
"""

from __future__ import annotations

from collections.abc import Callable

from cascade.interfaces import Connector, Message, SubscriptionHandle, status_filter
from cascade.interfaces.summaries import placed_summary_filter, summary_filter

__all__ = ["ROLLCALL_WAIT", "subscribe_statuses", "subscribe_summaries"]

ROLLCALL_WAIT = 1.0
"""Seconds `cascade status` gives the sources to answer a roll call (at most ``--timeout``):
nothing says that all have answered."""


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
    return await connector.call_roll()


async def subscribe_summaries(
    connector: Connector, callback: Callable[[Message], None]
) -> tuple[SubscriptionHandle, SubscriptionHandle]:
    """Subscribe ``callback`` to every engine's summaries: per org and project
    (``{prefix}/summary/+/+/+``, where the runs they list are vouched for), then its own
    (``{prefix}/summary/+``), so that retained ones come in that order."""
    prefix = connector.topic_prefix
    placed = await connector.subscribe(placed_summary_filter(prefix), callback)
    return placed, await connector.subscribe(summary_filter(prefix), callback)
