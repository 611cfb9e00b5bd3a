"""Whether the broker has MQTT shared subscriptions: asked once, of the connector."""

from __future__ import annotations

import logging

from cascade.interfaces import Connector
from cascade.interfaces.serving import served_topic

from .._steps import explain

__all__ = ["PROBE_MIN_WAIT", "probe_topic", "shared_subscriptions_work"]

_log = logging.getLogger("cascade.runtime.serve")

PROBE_MIN_WAIT = 1.0
"""Seconds the probe waits at least for the broker (``connect_wait``, when longer)."""


def probe_topic(org_id: str, project_id: str, source: str, prefix: str) -> str:
    """``{prefix}/served/{org}/{project}/{source}/probe``: where a serving engine tries a
    shared subscription (below its own announcement's topic, which a broker ACL grants it)."""
    return f"{served_topic(org_id, project_id, source, prefix)}/probe"


async def shared_subscriptions_work(
    connector: Connector, prefix: str, wait: float, org_id: str, project_id: str
) -> bool:
    """Whether the broker delivers through a shared subscription tried on :func:`probe_topic`
    (:meth:`~cascade.interfaces.Connector.shares_subscriptions`: mosquitto does; RabbitMQ 3.x
    takes the filter literally, and its connector tries none).

    An error, a broker that does not answer within ``wait`` seconds or a connection lost on
    the way count as no: requests then come only addressed to this source, which works
    everywhere. Never raises (but ``CancelledError``).
    """
    topic = probe_topic(org_id, project_id, connector.source_id, prefix)
    try:
        return await connector.shares_subscriptions(topic, timeout=wait)
    except Exception as exc:
        _log.warning("could not try a shared subscription (taken as none): %s", explain(exc))
        return False
