"""The dashboard's one broker connection: one subscription shared by every open page."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from cascade.connector_kit import event_set
from cascade.control import Controller, Refusal, RunHandle
from cascade.control.checks import default_operator
from cascade.interfaces import CascadeError, Connector
from cascade.interfaces.serving import served_filter
from cascade.reader import DEFAULT_FLEET_THRESHOLD, SnapshotAsker, subscribe_statuses

from ._fleet_mode import RELEASE_AFTER, FleetMode
from ._model import DashboardModel
from ._workflows import ServedWorkflows

__all__ = ["DashboardHub"]

_log = logging.getLogger("cascade.dashboard")


class DashboardHub:
    """Owns the connector, the model fed by it, and the wake-up of the pages' streams.

    Pages never hold a queue of their own: they wait for :attr:`DashboardModel.version`
    to move and then read the model, so however fast messages come, a slow page costs
    no memory.
    """

    def __init__(
        self,
        connector: Connector,
        *,
        timeout: float = 5.0,
        operator: str | None = None,
        fleet_threshold: int = DEFAULT_FLEET_THRESHOLD,
        release_after: float = RELEASE_AFTER,
    ) -> None:
        self.connector = connector
        self.timeout = timeout
        self.operator = operator or default_operator(None)
        """Who the controls of a token without a name are issued by."""
        self.model = DashboardModel(prefix=connector.topic_prefix)
        self.closing = asyncio.Event()
        self._changed = asyncio.Event()
        self.telemetry = FleetMode(
            connector,
            self._on_message,
            self.model,
            threshold=fleet_threshold,
            release_after=release_after,
            on_change=lambda: self._changed.set(),
        )
        """Which telemetry is read (every run's, or in fleet mode the opened runs'), and the
        pages' opened runs (``open``/``close``)."""
        self.workflows = ServedWorkflows(connector.topic_prefix, self.model.state)
        """The served workflows heard of (the start form's)."""

    async def start(self) -> None:
        """Connect (failing fast when the broker cannot be reached) and subscribe: to the
        engines' status and summaries first, so a fleet is known before any telemetry."""
        await self.connector.connect(require=True)
        self.model.state.ask = SnapshotAsker(self.connector).ask
        # before the statuses: where the broker needs a roll call, the announcements answer it
        await self.connector.subscribe(served_filter(self.connector.topic_prefix), self.workflows)
        await subscribe_statuses(self.connector, self._on_message)
        await self.telemetry.start()
        await self.connector.subscribe_constraints(self._on_message)

    def close_streams(self) -> None:
        """End every page's stream (the server is stopping)."""
        self.closing.set()
        self._changed.set()

    async def stop(self) -> None:
        """End every page's stream, then disconnect."""
        self.close_streams()
        await self.telemetry.stop()
        await self.connector.disconnect()

    def _on_message(self, message: Any) -> None:
        self.model.apply(message)
        self.telemetry.consider(self.model.fleet.live_runs)
        self._changed.set()

    async def follow_recorders(self, history: Callable[[], Any], every: float = 5.0) -> None:
        """Every ``every`` seconds, read what the recorders noted in the history
        (``history()``: the one open now, or ``None``) into the pages' header: a recorder
        that says it is behind is shown while it is. Until cancelled; a history that cannot
        be read (an older schema, a database down) shows none."""
        while True:
            notes: list[Any] = []
            source = history()
            if source is not None:
                try:
                    notes = await asyncio.to_thread(source.recorders, since=timedelta(minutes=1))
                except CascadeError as exc:
                    _log.debug("cannot read the recorders' notes: %s", exc)
            if self.model.note_recorders(notes, self.model.clock()):
                self._changed.set()
            await asyncio.sleep(every)

    async def wait_change(self, seen: int, timeout: float) -> None:
        """Return once the model's version is past ``seen``, after ``timeout``, or on close.

        Streams wait here at most ``KEEPALIVE`` at a time, so an engine whose telemetry does
        not arrive (said by time passing, not by a message) is noticed here too."""
        self.model.check_silent()
        if self.model.version != seen or self.closing.is_set():
            return
        if self._changed.is_set():
            self._changed = asyncio.Event()
        changed = self._changed
        await event_set(changed, timeout)

    def connection(self) -> dict[str, Any]:
        """The broker connection as the pages show it."""
        return {
            "connected": self.connector.is_connected,
            "prefix": self.connector.topic_prefix,
            "received": self.connector.stats.received,
        }

    def controller(self, issued_by: str | None = None) -> Controller:
        """Steering through this dashboard's connection, issued by ``issued_by`` (else
        :attr:`operator`)."""
        return Controller(
            self.connector, issued_by=issued_by or self.operator, timeout=self.timeout
        )

    def run(
        self,
        run_id: str,
        issued_by: str | None = None,
        owner: str | None = None,
        org: str | None = None,
        project: str | None = None,
    ) -> RunHandle:
        """One run to steer (:meth:`Controller.run`: its cancel and its decisions, as
        ``cascade cancel`` and ``cascade retry`` do them) through this dashboard's connection,
        issued by ``issued_by`` (else :attr:`operator`); its run id is a whole one.

        The run's engine is ``owner`` (its history's) when given, else the source this
        dashboard heard the run from, else the first heard while a request waits; its org and
        project (a cancel's and a decision's topic names them) likewise. Answers from others
        are logged."""
        heard = self.model.state.runs.get(run_id)
        if heard is not None:
            owner = owner or heard.source
            org, project = org or heard.org_id, project or heard.project_id
        return self.controller(issued_by).run(
            run_id, owner=owner, org=org, project=project, on_refused=_log_refusal
        )


def _log_refusal(refusal: Refusal) -> None:
    _log.warning("%s", refusal)
