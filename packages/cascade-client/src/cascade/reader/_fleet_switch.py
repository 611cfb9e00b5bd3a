"""Fleet mode, the one rule every view follows: a run's events while the fleet is small, the
engines' summaries alone once it is large (from a threshold of live runs, as the summaries
count them), and the events again below :data:`LEAVE_BELOW` of it.

:func:`next_mode` is the rule; :class:`TelemetrySwitch` follows it with one subscription to
the telemetry (`cascade watch`); the dashboard follows it with a subscription per opened run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Literal

from cascade.interfaces import Connector, Message, SubscriptionHandle

from ._defaults import DEFAULT_FLEET_THRESHOLD
from ._model import ReaderModel

__all__ = [
    "DEFAULT_FLEET_THRESHOLD",
    "FLEET_CHECK",
    "LEAVE_BELOW",
    "Mode",
    "TelemetrySwitch",
    "keep_switching",
    "next_mode",
]

Mode = Literal["events", "fleet"]

LEAVE_BELOW = 0.8
"""Fleet mode ends once the live runs are below this share of the threshold: a fleet that
hovers about the threshold does not make the view subscribe and unsubscribe every check."""

FLEET_CHECK = 0.5
"""Seconds between two looks at the summaries' live runs."""


def next_mode(mode: Mode, live_runs: int, threshold: int) -> Mode:
    """The mode a view in ``mode`` goes to when the summaries count ``live_runs``: ``fleet``
    from ``threshold`` on (``0``: always), ``events`` again below :data:`LEAVE_BELOW` of it."""
    if mode == "events" and (threshold == 0 or live_runs >= threshold):
        return "fleet"
    if mode == "fleet" and threshold > 0 and live_runs < threshold * LEAVE_BELOW:
        return "events"
    return mode


class TelemetrySwitch:
    """Subscribes ``callback`` to ``topic_filter`` (the telemetry) while the engines' summaries
    in ``state`` count fewer live runs than ``threshold``, and unsubscribes it from there on.

    :attr:`mode` is ``events`` while it reads the telemetry, ``fleet`` while it does not
    (``threshold`` 0: from the start, never subscribing); back to ``events`` below
    :data:`LEAVE_BELOW` of the threshold. Entering fleet mode forgets the runs (what was known
    of them goes stale, :meth:`ReaderModel.forget_runs`), so that reading them again joins
    each late and asks its engine for its state.
    """

    def __init__(
        self,
        connector: Connector,
        state: ReaderModel,
        topic_filter: str,
        callback: Callable[[Message], None],
        threshold: int,
    ) -> None:
        self._connector = connector
        self._state = state
        self._filter = topic_filter
        self._callback = callback
        self.threshold = threshold
        self.mode: Mode = "events"
        self._handle: SubscriptionHandle | None = None

    @property
    def subscribed(self) -> bool:
        """Whether the telemetry is subscribed to now."""
        return self._handle is not None

    async def update(self) -> bool:
        """Subscribe or unsubscribe as the summaries' live runs say; whether the mode changed."""
        after = next_mode(self.mode, self._state.fleet().live_runs, self.threshold)
        if self.mode == "events" and after == "fleet":
            handle, self._handle = self._handle, None
            if handle is not None:
                await handle.unsubscribe()
            self._state.telemetry_filters.discard(self._filter)
            self._state.forget_runs()
            self.mode = "fleet"
            return True
        if self.mode == "fleet" and after == "events":
            self._handle = await self._connector.subscribe(self._filter, self._callback)
            self._state.telemetry_filters.add(self._filter)
            self.mode = "events"
            return True
        if self.mode == "events" and self._handle is None:  # the first look
            self._handle = await self._connector.subscribe(self._filter, self._callback)
            self._state.telemetry_filters.add(self._filter)
        return False

    def said(self) -> dict[str, Any]:
        """What `watch --json` prints when the mode changes: ``{"mode", "live_runs",
        "engines", "threshold"}`` (``live_runs``: as the engines' summaries count them)."""
        totals = self._state.fleet()
        return {
            "mode": self.mode,
            "live_runs": totals.live_runs,
            "engines": totals.engines,
            "threshold": self.threshold,
        }


async def keep_switching(switch: TelemetrySwitch, changed: Callable[[], None]) -> None:
    """Look at the live runs every :data:`FLEET_CHECK` seconds; call ``changed`` on a change."""
    while True:
        await asyncio.sleep(FLEET_CHECK)
        if await switch.update():
            changed()
