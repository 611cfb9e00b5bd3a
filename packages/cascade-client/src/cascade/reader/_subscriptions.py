"""What `status`, `watch` and the dashboard subscribe to, on every kind of broker.

On a broker that sends retained messages only to subscriptions of their exact
topic (``connector.capabilities.retained_to_wildcards`` is ``False``), the
wildcard subscriptions bring no retained constraint or status: the retained
constraints are read exactly through the constraints index, and the online
sources are asked to announce themselves again (a roll call).
"""

from __future__ import annotations

from collections.abc import Callable

from cascade.interfaces import Connector, Message, SubscriptionHandle, rollcall_topic, status_filter
from cascade.interfaces.summaries import summary_filter

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
    if connector.capabilities.retained_to_wildcards is not False:
        return False
    await connector.publish(rollcall_topic(prefix), {"rollcall": 1}, qos=1)
    return True


async def subscribe_summaries(
    connector: Connector, callback: Callable[[Message], None]
) -> SubscriptionHandle:
    """Subscribe ``callback`` to every engine's summary (``{prefix}/summary/+``)."""
    return await connector.subscribe(summary_filter(connector.topic_prefix), callback)
