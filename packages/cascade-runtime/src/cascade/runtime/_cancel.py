"""A run's cancel command over the broker: the engine running it listens, cancels, answers."""

from __future__ import annotations

import logging
from collections.abc import Callable

from cascade.interfaces import (
    MAX_LISTED_TASKS,
    CancelReply,
    Connector,
    InvalidMessageError,
    Message,
    SubscriptionHandle,
    cancel_topic,
    decode_cancel_request,
    reply_topic,
)
from cascade.interfaces.connector_kit import RateLimitedLogger

from ._scheduler import CancelReport
from ._steps import StepFailed, within

__all__ = ["CancelListener"]

_log = logging.getLogger("cascade.runtime.engine")

Cancel = Callable[..., "CancelReport | None"]


class CancelListener:
    """Subscribes to ``{prefix}/command/{run_id}/cancel`` for one run, and answers each request.

    A valid request for this run cancels it (``cancel``: :meth:`Engine.cancel
    <cascade.runtime.Engine.cancel>`) and is answered, QoS 1 and not retained, on
    ``{prefix}/reply/{request id}`` with what was cancelled, and the request's
    ``issued_by``, ``reason`` and ``issued_at`` (the history's audit records a cancel from
    it). Malformed requests, and requests for another run, are counted in :attr:`rejected`,
    logged at a limited rate and answered with nothing. The subscription lasts as long as
    the run: a request sent before or after, or while the connection was down, reaches
    nobody (it is not retained, and the connector's sessions are clean).
    """

    def __init__(self, connector: Connector, cancel: Cancel, run_id: str, prefix: str) -> None:
        self._connector = connector
        self._cancel = cancel
        self._run_id = run_id
        self._prefix = prefix
        self._topic = cancel_topic(run_id, prefix)
        self._handle: SubscriptionHandle | None = None
        self._log = RateLimitedLogger(_log)
        self.rejected = 0
        """Requests on the run's cancel topic that were malformed or for another run."""

    async def subscribe(self) -> None:
        """Subscribe to the run's cancel topic (the control link calls this once connected)."""
        self._handle = await self._connector.subscribe(self._topic, self._on_request)

    async def _on_request(self, message: Message) -> None:
        try:
            request = decode_cancel_request(message.raw or message.payload)
            if request.run_id != self._run_id:
                raise InvalidMessageError(f"for run {request.run_id!r}, not this one", "$.run_id")
            topic = reply_topic(request.id, self._prefix)
        except InvalidMessageError as exc:
            self.rejected += 1
            self._log.warning("rejected", "rejected a cancel request on %r: %s", message.topic, exc)
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

    async def close(self, timeout: float) -> None:
        """Unsubscribe (bounded by ``timeout``; never raises)."""
        if self._handle is None:
            return
        try:
            async with within("unsubscribe from the run's commands", timeout, "shutdown_timeout"):
                await self._handle.unsubscribe()
        except StepFailed as exc:
            _log.warning("%s", exc)
