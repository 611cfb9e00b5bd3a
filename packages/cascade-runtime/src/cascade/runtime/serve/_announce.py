"""A serving engine's announcement (what it serves and its load, retained on its served topic),
and the other serving processes' as it hears them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime

from cascade.connector_kit import RateLimitedLogger
from cascade.interfaces import (
    Connector,
    InvalidMessageError,
    Message,
    SubscriptionHandle,
    decode_level,
    decode_status,
    same_source,
)
from cascade.interfaces.serving import (
    ServedAnnouncement,
    decode_served,
    served_filter,
    served_topic,
)
from cascade.interfaces.wire import ServedRun

from .._steps import StepFailed, explain, within

__all__ = ["Announcer", "Peers"]

_log = logging.getLogger("cascade.runtime.serve")


class Announcer:
    """Publishes ``announcement()``, retained at QoS 1, on :func:`served_topic` of ``org_id``,
    ``project_id`` and the connector's source: at :meth:`start`, again after each
    :meth:`changed` (changes that come while one is published make one more, with the latest
    figures), and on each roll call
    where the broker sends retained messages only to exact subscriptions (as the connector
    answers them with its status). :meth:`stop` clears it (an empty retained message).

    A failed publish is logged at a limited rate and counted in :attr:`failed`; the next
    change publishes again.
    """

    def __init__(
        self,
        connector: Connector,
        prefix: str,
        announcement: Callable[[], ServedAnnouncement],
        *,
        org_id: str,
        project_id: str,
    ) -> None:
        self._connector = connector
        self.topic = served_topic(org_id, project_id, connector.source_id, prefix)
        self._announcement = announcement
        self._wake = asyncio.Event()
        self._loop: asyncio.Task[None] | None = None
        self._rollcall: SubscriptionHandle | None = None
        self._log = RateLimitedLogger(_log)
        self.published = 0
        """Announcements published."""
        self.failed = 0
        """Announcements whose publish failed."""

    async def start(self) -> None:
        """Publish now, then whenever changed or asked by a roll call."""
        try:
            self._rollcall = await self._connector.answer_rollcalls(self._on_rollcall)
        except Exception as exc:
            self._log.warning("rollcall", "could not subscribe to roll calls: %s", explain(exc))
        self._wake.set()
        self._loop = asyncio.create_task(self._publish_loop(), name="cascade-served")

    def changed(self) -> None:
        """The announcement changed: publish it soon."""
        self._wake.set()

    def _on_rollcall(self, message: Message) -> None:
        self._wake.set()

    async def _publish_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self._publish()

    async def _publish(self) -> None:
        try:
            await self._connector.publish(self.topic, self._announcement(), qos=1, retain=True)
        except Exception as exc:
            self.failed += 1
            self._log.warning("publish", "announcement publish failed: %s", explain(exc))
        else:
            self.published += 1

    async def stop(self, timeout: float) -> None:
        """Stop announcing and clear the announcement (each step bounded by ``timeout``)."""
        loop, self._loop = self._loop, None
        if loop is not None:
            loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await loop
        handle, self._rollcall = self._rollcall, None
        try:
            if handle is not None:
                async with within("unsubscribe from roll calls", timeout, "shutdown_timeout"):
                    await handle.unsubscribe()
            async with within("clear the served announcement", timeout, "shutdown_timeout"):
                await self._connector.publish(self.topic, b"", qos=1, retain=True)
        except StepFailed as exc:
            _log.warning("%s", exc)


class Peers:
    """The other serving processes of ``org_id`` and ``project_id``, by their announcements
    heard on :func:`served_filter` of that org and project: the reruns each runs now (a
    request to rerun one of those runs is refused here too), the runs of schedules each runs
    (``changed`` is called when they change), and the last slot of each schedule each fired
    (told to ``fired(source, schedule, slot, run_id)``).

    A server found offline (its status, the broker's will where it died) while its
    announcement lists live runs is told to ``lost(source, runs)``, whichever of the two is
    heard first; so is this server's own announcement left retained by a process of the same
    source that died before it, the first heard (``lost(own source, runs)``: the caller
    passes over the runs it runs itself).

    An announcement of another org or project is not a peer's (a schedule of the same name
    there is another schedule) and is passed over; one whose ``source``, ``org_id`` or
    ``project_id`` is not its topic's, or a malformed one, is refused (counted in
    :attr:`refused`, logged at a limited rate); an empty one (cleared) forgets its source.
    """

    def __init__(
        self,
        own_source: str,
        changed: Callable[[], None] = lambda: None,
        fired: Callable[[str, str, datetime, str], None] = lambda *_: None,
        lost: Callable[[str, list[ServedRun]], None] = lambda *_: None,
        *,
        org_id: str,
        project_id: str,
        prefix: str,
    ) -> None:
        self._own = own_source
        self._fired = fired
        self._place = (org_id, project_id)
        self._prefix = prefix
        self.filter = served_filter(prefix, org_id=org_id, project_id=project_id)
        """The topic filter of the announcements of this org and project."""
        self._reruns: dict[str, set[str]] = {}  # source -> the runs its live runs rerun
        # source -> (schedule, workflow, run id) of its live runs of schedules
        self._scheduled: dict[str, list[tuple[str, str, str]]] = {}
        self._offline: set[str] = set()
        self._live: dict[str, list[ServedRun]] = {}  # source -> its live runs, as announced
        self._lost = lost
        self._own_heard = False
        self._changed = changed
        self._log = RateLimitedLogger(_log)
        self.refused = 0
        """Announcements of this org and project refused (malformed, or not their topic's)."""

    def __call__(self, message: Message) -> None:
        levels = message.topic[len(self._prefix) + 1 :].split("/")
        if len(levels) != 4 or tuple(map(decode_level, levels[1:3])) != self._place:
            return  # another org's or project's: not a peer of this one's schedules
        level = levels[3]
        source = decode_level(level)
        if source == self._own:
            if not self._own_heard:  # the first: an earlier process's, or this one's first
                self._own_heard = True
                self._own_left(message)
            return
        if not message.raw:
            self._live.pop(source, None)
            self._reruns.pop(source, None)
            if self._scheduled.pop(source, []):
                self._changed()
            return
        try:
            announcement = decode_served(message.raw)
        except InvalidMessageError as exc:
            self._refuse(message.topic, str(exc))
            return
        if not same_source(announcement.source, level):
            self._refuse(message.topic, "its source is not its topic's")
            return
        if (announcement.org_id, announcement.project_id) != self._place:
            self._refuse(message.topic, "its org or project is not its topic's")
            return
        self._live[source] = list(announcement.live)
        if source in self._offline and announcement.live:
            self._lost(source, list(announcement.live))
        self._reruns[source] = {r.rerun_of for r in announcement.live if r.rerun_of is not None}
        scheduled = [
            (r.schedule, r.workflow, r.run_id) for r in announcement.live if r.schedule is not None
        ]
        if scheduled or self._scheduled.pop(source, []):
            self._scheduled[source] = scheduled
            self._changed()
        for entry in announcement.schedules:
            if entry.last_slot and entry.last_run:
                try:
                    slot = datetime.fromisoformat(entry.last_slot)
                except ValueError:
                    continue
                self._fired(source, entry.name, slot, entry.last_run)

    def _own_left(self, message: Message) -> None:
        if not message.raw:
            return
        try:
            announcement = decode_served(message.raw)
        except InvalidMessageError:
            return
        if announcement.live and (announcement.org_id, announcement.project_id) == self._place:
            self._lost(self._own, list(announcement.live))

    def _refuse(self, topic: str, why: str) -> None:
        self.refused += 1
        self._log.warning("peer", "refused an announcement on %r: %s", topic[:256], why)

    def on_status(self, message: Message) -> None:
        """A source's presence: a killed server's announcement stays retained, its status
        (the broker's will) says it is gone, and its runs with it."""
        source = decode_level(message.topic.rsplit("/", 1)[-1])
        try:
            offline = decode_status(message.raw).status == "offline" if message.raw else True
        except InvalidMessageError:
            return
        if offline != (source in self._offline):
            (self._offline.add if offline else self._offline.discard)(source)
            if source in self._scheduled:
                self._changed()
            live = self._live.get(source)
            if offline and live and source != self._own:
                self._lost(source, list(live))

    def scheduled(self, schedule: str, workflow: str) -> list[tuple[str, str]]:
        """The runs of ``schedule`` of ``workflow`` (a schedule of the same name that starts
        another workflow is another) live at online servers, as (source, run id)."""
        return [
            (source, run_id)
            for source, runs in self._scheduled.items()
            if source not in self._offline
            for name, started, run_id in runs
            if (name, started) == (schedule, workflow)
        ]

    def rerunning(self, rerun_of: str) -> str | None:
        """The source that reruns ``rerun_of`` now, by its announcement; ``None`` if none."""
        for source, reruns in self._reruns.items():
            if rerun_of in reruns:
                return source
        return None
