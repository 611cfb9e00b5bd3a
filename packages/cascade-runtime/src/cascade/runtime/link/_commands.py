"""A run's commands over the broker: the engine running it listens to cancel, decide and snapshot
requests, and answers them."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from cascade.connector_kit import RateLimitedLogger
from cascade.interfaces import Connector, InvalidMessageError, Message, SubscriptionHandle
from cascade.interfaces.commands import (
    CancelReply,
    DecisionReply,
    DecisionRequest,
    reply_topic,
    snapshot_request_topic,
)
from cascade.interfaces.wire import (
    MAX_LISTED_TASKS,
    command_filter,
    decode_cancel_request,
    decode_decision_request,
    decode_snapshot_request,
)

from .._run import CancelReport
from .._steps import StepFailed, within

__all__ = ["CommandListener"]

_log = logging.getLogger("cascade.runtime.engine")

Cancel = Callable[..., "CancelReport | None"]
Snapshot = Callable[[int], None]
Decide = Callable[[DecisionRequest], "DecisionReply | None"]


class CommandListener:
    """Subscribes to ``{prefix}/command/{org}/{project}/{run_id}/+`` (the run's org and project,
    which a broker ACL binds) and ``{prefix}/command/{run_id}/snapshot`` for one run, and
    answers each request.

    - ``.../cancel``: a valid request for this run cancels it (``cancel``:
      :meth:`Engine.cancel <cascade.runtime.Engine.cancel>`) and is answered, QoS 1 and
      not retained, on ``{prefix}/reply/{org}/{request id}/{source}`` (the run's org) with
      what was cancelled, and the request's ``issued_by``, ``reason`` and ``issued_at``
      (the history's audit records a cancel from it).
    - ``.../snapshot``: a valid request for this run asks the run's telemetry for a
      snapshot (``snapshot``: :meth:`TelemetrySubscriber.request_snapshot`), which
      answers every reader at once, at most once a second.
    - ``.../decide``: a valid decision on a held task of this run (``decide``: the
      engine's, applying it or refusing it) is answered on the same reply topic as a
      cancel, QoS 1, with the :class:`~cascade.interfaces.commands.DecisionReply`.

    Malformed requests, requests for another run and unknown commands are counted in
    :attr:`rejected`, logged at a limited rate and answered with nothing. The
    subscription lasts as long as the run, and where the connection outlives the run a while
    longer (:meth:`run_ended`: its late decisions are answered, not applied); where the run
    closes the connection, until the requests the broker routed to it before are handled
    (:meth:`drain`). A request sent before, after that, or while the connection was down,
    reaches nobody (it is not retained, and the connector's sessions are clean).
    """

    def __init__(
        self,
        connector: Connector,
        cancel: Cancel,
        run_id: str,
        prefix: str,
        snapshot: Snapshot | None = None,
        org_id: str = "local",
        decide: Decide | None = None,
        project_id: str = "default",
    ) -> None:
        self._connector = connector
        self._cancel = cancel
        self._decide = decide
        self._snapshot = snapshot
        self._run_id = run_id
        self._org_id = org_id
        self._prefix = prefix
        self._filters = (
            command_filter(org_id, project_id, run_id, prefix),
            snapshot_request_topic(run_id, prefix),
        )
        self._handles: list[SubscriptionHandle] = []
        self._log = RateLimitedLogger(_log)
        self._ended = False
        self.rejected = 0
        """Requests on the run's command topics that were malformed, for another run, or of
        no command this engine knows."""

    async def subscribe(self) -> None:
        """Subscribe to the run's command topics (the control link calls this once connected):
        both SUBSCRIBEs sent at once, so the second costs no round trip of its own."""
        subscribe, callback = self._connector.subscribe, self._on_request
        made = await asyncio.gather(
            *(subscribe(f, callback) for f in self._filters), return_exceptions=True
        )
        self._handles = [h for h in made if not isinstance(h, BaseException)]
        for failed in made:
            if isinstance(failed, BaseException):
                raise failed

    def run_ended(self) -> None:
        """The run has ended, the subscription stays a while: decisions are still answered
        (the engine's ended runs say how), snapshot requests no longer (its telemetry is
        closed: a reader that asks now hears nothing, as from an engine gone)."""
        self._ended = True

    def _reject(self, message: Message, exc: InvalidMessageError) -> None:
        self.rejected += 1
        self._log.warning("rejected", "rejected a command on %r: %s", message.topic, exc)

    async def _on_request(self, message: Message) -> None:
        command = message.topic.rsplit("/", 1)[-1]
        if command == "snapshot" and self._snapshot is not None:
            if self._ended:
                return
            try:
                asked = decode_snapshot_request(message.raw or message.payload)
                if asked.run_id != self._run_id:
                    raise InvalidMessageError(f"for run {asked.run_id!r}, not this one", "$.run_id")
            except InvalidMessageError as exc:
                self._reject(message, exc)
                return
            self._snapshot(asked.after)
            return
        if command == "decide" and self._decide is not None:
            await self._on_decide(message)
            return
        if command != "cancel":
            self._reject(message, InvalidMessageError(f"no command {command!r}"))
            return
        try:
            request = decode_cancel_request(message.raw or message.payload)
            if request.run_id != self._run_id:
                raise InvalidMessageError(f"for run {request.run_id!r}, not this one", "$.run_id")
            topic = reply_topic(self._org_id, request.id, self._connector.source_id, self._prefix)
        except InvalidMessageError as exc:
            self._reject(message, exc)
            return
        report = self._cancel(self._run_id, issued_by=request.issued_by, reason=request.reason)
        if report is None:
            return  # the run has ended: whoever asked hears nothing from this engine
        reply = CancelReply(
            id=request.id,
            run_id=self._run_id,
            source=self._connector.source_id,
            outcome="already_cancelled" if report.already else "cancelled",
            cancelled=report.cancelled[:MAX_LISTED_TASKS],
            cancelled_count=len(report.cancelled),
            abandoned=report.abandoned[:MAX_LISTED_TASKS],
            abandoned_count=len(report.abandoned),
            not_started=report.not_started,
            issued_by=request.issued_by,
            reason=request.reason,
            issued_at=request.issued_at,
        )
        await self._connector.publish(topic, reply, qos=1)

    async def _on_decide(self, message: Message) -> None:
        assert self._decide is not None
        try:
            request = decode_decision_request(message.raw or message.payload)
            if request.run_id != self._run_id:
                raise InvalidMessageError(f"for run {request.run_id!r}, not this one", "$.run_id")
            topic = reply_topic(self._org_id, request.id, self._connector.source_id, self._prefix)
        except InvalidMessageError as exc:
            self._reject(message, exc)
            return
        reply = self._decide(request)
        if reply is None:
            return  # the run has ended: whoever asked hears nothing from this engine
        await self._connector.publish(topic, reply, qos=1)

    async def drain(self, timeout: float) -> None:
        """Wait until every request the broker routed to this listener before now is handled
        (bounded by ``timeout``; never raises): a subscription made again to the run's commands
        returns once what came before it was passed on (the connector's ``subscribe``). Before a
        run closes the connection it opened, so that the decisions already on their way in are
        answered, not dropped with it."""
        if not self._handles:
            return
        try:
            async with within("take the requests on their way", timeout, "shutdown_timeout"):
                behind = await self._connector.subscribe(self._filters[0], _ignore)
                await behind.unsubscribe()  # the filter stays: the listener's own is on it
        except StepFailed as exc:
            _log.warning("%s", exc)

    async def close(self, timeout: float) -> None:
        """Unsubscribe (bounded by ``timeout``; never raises)."""
        if not self._handles:
            return
        try:
            async with within("unsubscribe from the run's commands", timeout, "shutdown_timeout"):
                await asyncio.gather(*(handle.unsubscribe() for handle in self._handles))
        except StepFailed as exc:
            _log.warning("%s", exc)


def _ignore(message: Message) -> None:
    """The callback of :meth:`CommandListener.drain`'s subscription: the listener's own one
    handles each request."""
