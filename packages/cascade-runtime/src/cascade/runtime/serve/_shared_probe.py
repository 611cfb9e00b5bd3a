"""Whether the broker has MQTT shared subscriptions: asked once, by trying one."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid

from cascade.interfaces import Connector, Message
from cascade.interfaces.serving import served_topic

from .._steps import explain

__all__ = ["PROBE_MIN_WAIT", "probe_topic", "shared_subscriptions_work"]

_log = logging.getLogger("cascade.runtime.serve")

PROBE_MIN_WAIT = 1.0
"""Seconds the probe waits at least for its message (``connect_wait``, when longer)."""


def probe_topic(org_id: str, project_id: str, source: str, prefix: str) -> str:
    """``{prefix}/served/{org}/{project}/{source}/probe``: where a serving engine tries a
    shared subscription (below its own announcement's topic, which a broker ACL grants it)."""
    return f"{served_topic(org_id, project_id, source, prefix)}/probe"


async def shared_subscriptions_work(
    connector: Connector, prefix: str, wait: float, org_id: str, project_id: str
) -> bool:
    """Subscribe ``$share/{a group of its own}/{probe topic}``, publish there, and say whether
    the message came back within ``wait`` seconds.

    mosquitto delivers it at once; RabbitMQ 3.x's MQTT plugin takes the filter literally
    (its first level ``$share``), so nothing comes. A refused subscription, an error or a
    connection lost on the way count as no: requests then come only addressed to this
    source, which works everywhere. Never raises (but ``CancelledError``).
    """
    topic = probe_topic(org_id, project_id, connector.source_id, prefix)
    nonce = uuid.uuid4().hex
    arrived = asyncio.Event()

    def on_probe(message: Message) -> None:
        if message.payload.get("probe") == nonce:
            arrived.set()

    handle = None
    try:
        handle = await connector.subscribe(f"$share/probe-{nonce[:12]}/{topic}", on_probe)
        await connector.publish(topic, {"probe": nonce}, qos=1)
        await asyncio.wait_for(arrived.wait(), wait)
        return True
    except asyncio.TimeoutError:
        return False
    except Exception as exc:
        _log.warning("could not try a shared subscription (taken as none): %s", explain(exc))
        return False
    finally:
        if handle is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(handle.unsubscribe(), wait)
