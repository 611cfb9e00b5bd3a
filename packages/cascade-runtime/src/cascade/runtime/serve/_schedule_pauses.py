"""The pauses of a serving engine's schedules and workflows: the constraints on
``schedule:<name>`` and ``workflow:<name>`` scopes (and on those placed in its own org or
project, ``org:ORG/schedule:<name>``, ``project:ORG/PROJECT/workflow:<name>``), read from the
broker as every constraint is (retained, cleared by a resume, ended by their ``expires_at``),
so that the servers skip a paused schedule's slots, and start no new run of a paused
workflow (its requests refused, its schedules' slots skipped)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from cascade.interfaces import (
    Connector,
    Constraint,
    SubscriptionHandle,
    TopicKey,
)
from cascade.interfaces.wire import split_scope

from .._steps import explain
from ..constraints._constraints import ConstraintManager, ConstraintStats

__all__ = ["SchedulePauses"]

_log = logging.getLogger("cascade.runtime.serve")


class SchedulePauses:
    """The pauses on ``schedule:<name>`` and ``workflow:<name>`` in force, heard on
    ``{prefix}/constraints/#``
    (through the constraints index where the broker sends retained messages to exact
    subscriptions only); ``changed`` is called when they change."""

    def __init__(
        self,
        connector: Connector,
        prefix: str,
        changed: Callable[[], None],
        place: tuple[str, str] | None = None,
    ) -> None:
        self._connector = connector
        self._constraints = ConstraintManager(prefix=prefix, stats=ConstraintStats(), place=place)
        self._constraints.on_change(changed)
        self._handle: SubscriptionHandle | None = None

    async def start(self) -> None:
        """Subscribe: returns once the retained ones are heard (a failure is logged; the
        pauses published later still arrive once the connector subscribes again)."""
        try:
            self._handle = await self._connector.subscribe_constraints(
                self._constraints.handle_message,
                on_sync=self._constraints.sync,
                wanted=self._wanted,
            )
        except Exception as exc:
            _log.warning("cannot read the schedules' pauses: %s", explain(exc))

    def _wanted(self, key: TopicKey) -> bool:
        """Whether the index's topic of ``key`` may hold a pause of one of its schedules."""
        target = split_scope(key.scope).target
        return self._constraints.governs_here(key.scope) and target.startswith(
            ("schedule:", "workflow:", "trigger:")
        )

    async def stop(self) -> None:
        handle, self._handle = self._handle, None
        self._constraints.close()
        if handle is not None:
            await handle.unsubscribe()

    def pause(self, name: str, kind: str = "schedule") -> Constraint | None:
        """The pause on ``schedule:<name>`` (or, ``kind="workflow"``, ``workflow:<name>``;
        ``kind="trigger"``, ``trigger:<name>``) in force; ``None`` if none."""
        scope = f"{kind}:{name}"
        return next(
            (
                c
                for c in self._constraints.constraints
                if c.type == "pause" and split_scope(c.scope).target == scope
            ),
            None,
        )
