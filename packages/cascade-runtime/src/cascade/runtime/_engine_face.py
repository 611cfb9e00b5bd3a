"""What a run's broker links and a serving engine use of their :class:`~cascade.runtime.Engine`:
its settings, counters, events and the calls they make, as a protocol, so that they need not
import the engine that imports them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from cascade.interfaces import Connector
from cascade.interfaces.serving import PlanStep, RerunMode

from ._events import EventBus
from ._run import CancelReport
from ._stats import EngineStats
from .logs._logs import LogForwarding
from .results._results import ResultStore

__all__ = ["EngineFace"]


class EngineFace(Protocol):
    """The engine's side that ``RunWiring`` and ``Server`` see (``Engine`` has it all)."""

    connector: Connector | None
    org_id: str
    project_id: str
    topic_prefix: str
    sourced_topics: bool
    heartbeat_interval: float | None
    summaries: bool
    logs: LogForwarding | None
    manage_connection: bool | None
    connect_wait: float
    shutdown_timeout: float
    stats: EngineStats
    events: EventBus
    results: ResultStore | None

    def cancel(
        self, run_id: str, *, issued_by: str | None = None, reason: str | None = None
    ) -> CancelReport | None:
        """Cancel the run ``run_id`` if the engine runs it."""
        ...

    async def plan(
        self,
        target: Any,
        *,
        rerun_of: str,
        rerun: RerunMode = "failure",
        from_task: str | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> list[PlanStep]:
        """What a rerun of ``rerun_of`` would do with each task of ``target`` (its Params bound
        to ``params``)."""
        ...
