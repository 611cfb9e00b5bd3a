"""How a run ended, heard from its engine: what `cascade start --wait` waits for.

A run started by a request may end before its requester hears the answer (a short run),
so :class:`RunEnds` listens from before the request, to the runs' lifecycle events of the
orgs that may run it, and keeps the ends heard; :func:`wait_run` then waits for the one run.
An end counts only from the run's owner when it is known (the process that answered), and
only on the topic of the source, org and project it claims (what a broker ACL binds): one
whose topic names another is refused and counted (:attr:`RunEnds.refusals`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict

from cascade.connector_kit import bounded
from cascade.interfaces import (
    CascadeError,
    Connector,
    InvalidMessageError,
    LifecycleEvent,
    Message,
    StatusMessage,
    SubscriptionHandle,
    decode_envelope,
    decode_status,
    same_place,
    same_source,
    split_run_topic,
    status_topic,
    telemetry_filter,
)
from cascade.interfaces.wire import RunStatus
from cascade.reader import REASON_MISMATCH, REASON_NOT_ITS_PLACE, Refusals

__all__ = ["RunEndError", "RunEnds", "wait_run"]

_KEPT = 1024  # ends kept at most: the oldest heard is forgotten first


class RunEndError(CascadeError):
    """The run's end was not heard: its engine went offline, or the wait timed out."""


class RunEnds:
    """A telemetry callback that keeps the status of each run heard ending
    (``ENGINE_STOPPED``), at most 1,024 (the oldest forgotten), by run id."""

    def __init__(self, prefix: str) -> None:
        self.ended: OrderedDict[str, tuple[str, RunStatus]] = OrderedDict()
        self.heard = asyncio.Event()
        """Set at each end heard (a waiter clears it before it looks)."""
        self.refusals = Refusals()
        """The ends refused (by the source they claim): on a topic of another source, org or
        project than the payload's, which a broker ACL binds to the sender's login."""
        self._prefix = prefix

    def __call__(self, message: Message) -> None:
        """Take one telemetry message: an end is kept, anything else ignored."""
        split = split_run_topic(message.topic, self._prefix)
        body = message.payload.get("body") if isinstance(message.payload, dict) else None
        if split is None or not isinstance(body, dict) or body.get("type") != "LifecycleEvent":
            return
        try:
            envelope = decode_envelope(message.raw or message.payload)
        except InvalidMessageError:
            return
        event = envelope.body
        if not isinstance(event, LifecycleEvent) or event.event != "ENGINE_STOPPED":
            return
        level = split[1]
        if level is not None and not same_source(envelope.source, level):
            self.refusals.count(envelope.source, REASON_MISMATCH)
            return  # the topic names another source: the claim is not its
        if not same_place(message.topic, envelope.org_id, envelope.project_id, self._prefix):
            self.refusals.count(envelope.source, REASON_NOT_ITS_PLACE)
            return  # the topic names another org or project: the run it claims is not its
        if event.status is None:
            return
        self.ended[envelope.run_id] = (envelope.source, event.status)
        if len(self.ended) > _KEPT:
            self.ended.popitem(last=False)
        self.heard.set()

    def status(self, run_id: str, owner: str | None = None) -> RunStatus | None:
        """How ``run_id`` ended (from ``owner``, when given), or ``None``: not heard."""
        heard = self.ended.get(run_id)
        if heard is None or (owner is not None and heard[0] != owner):
            return None
        return heard[1]

    async def listen(
        self, connector: Connector, org: str | None = None, project: str | None = None
    ) -> SubscriptionHandle:
        """Subscribe to the lifecycle events (``events`` of every run; of ``org``'s and
        ``project``'s only, when given: a broker ACL may let this login read those only, and
        RabbitMQ closes the connection of a subscription it denies)."""
        return await connector.subscribe(
            telemetry_filter(org, project, kind="events", prefix=self._prefix), self
        )


async def wait_run(
    connector: Connector,
    run_id: str,
    *,
    owner: str | None = None,
    org: str | None = None,
    project: str | None = None,
    timeout: float | None = None,
    ends: RunEnds | None = None,
) -> RunStatus:
    """Wait until ``run_id`` ends and return its status (``Succeeded`` or ``Failed``).

    ``owner`` is the source that runs it (a start's answer says it): only its end counts,
    and its going offline ends the wait with :class:`RunEndError`, as does ``timeout``
    (seconds; ``None``: however long the run takes). ``ends`` is a :class:`RunEnds` already
    listening (from before the run was started, so that a short run's end is not missed);
    without one, the run's lifecycle is listened to from now on (``org`` and ``project``:
    the run's, where known: a serving process's announcement says them)."""
    prefix = connector.topic_prefix
    handles: list[SubscriptionHandle] = []
    gone = asyncio.Event()
    current: list[StatusMessage] = []

    def presence(message: Message) -> None:
        with contextlib.suppress(InvalidMessageError):
            status = decode_status(message.raw)
            if not current or status.supersedes(current[0]):  # a stale will is not an end
                current[:] = [status]
                if status.status == "offline":
                    gone.set()

    try:
        if ends is None:
            ends = RunEnds(prefix)
            handles.append(
                await connector.subscribe(
                    telemetry_filter(org, project, run_id, kind="events", prefix=prefix), ends
                )
            )
        if owner is not None:
            handles.append(await connector.subscribe(status_topic(owner, prefix), presence))
        async with bounded(timeout):
            while True:
                ends.heard.clear()
                status = ends.status(run_id, owner)
                if status is not None:
                    break
                if gone.is_set():
                    raise RunEndError(f"{owner} went offline before run {run_id} ended")
                waiting = {
                    asyncio.ensure_future(ends.heard.wait()),
                    asyncio.ensure_future(gone.wait()),
                }
                try:
                    await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for task in waiting:
                        task.cancel()
        return status
    except asyncio.TimeoutError:
        raise RunEndError(f"run {run_id} did not end within {timeout:g} s") from None
    finally:
        for handle in handles:
            with contextlib.suppress(Exception):
                await handle.unsubscribe()
