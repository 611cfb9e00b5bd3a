"""What an engine hands the links it opens on the broker, a run's (``RunWiring``) and its
serving's (``Server``): the connector, where they publish and how long they wait, the engine's
counters and events, and how to cancel one of its runs."""

from __future__ import annotations

from dataclasses import dataclass

from cascade.interfaces import Connector

from .._ended_runs import EndedRuns
from .._events import EventBus
from .._stats import EngineStats
from ._commands import Cancel

__all__ = ["LinkContext"]


@dataclass(frozen=True, slots=True)
class LinkContext:
    """An engine's settings for the broker as they stand when a link opens (a run's, at its
    start), with the engine's ``stats``, ``events`` and ``cancel``, and its ``ended_runs``, whose
    command subscriptions a connection that outlives its runs keeps a while."""

    connector: Connector
    org_id: str
    project_id: str
    topic_prefix: str
    heartbeat_interval: float | None
    summaries: bool
    connect_wait: float
    shutdown_timeout: float
    stats: EngineStats
    events: EventBus
    cancel: Cancel
    ended_runs: EndedRuns
