"""Where a serving engine tries whether the broker has MQTT shared subscriptions."""

from __future__ import annotations

from cascade.interfaces.serving import served_topic

__all__ = ["PROBE_MIN_WAIT", "probe_topic"]

PROBE_MIN_WAIT = 1.0
"""Seconds the probe waits at least for the broker (``connect_wait``, when longer)."""


def probe_topic(org_id: str, project_id: str, source: str, prefix: str) -> str:
    """``{prefix}/served/{org}/{project}/{source}/probe``: where a serving engine tries a
    shared subscription (below its own announcement's topic, which a broker ACL grants it)."""
    return f"{served_topic(org_id, project_id, source, prefix)}/probe"
