"""Who serves what: the announcements of the serving processes (retained, one per source),
each with its source's presence, as `cascade served` lists them and a start picks from.

An announcement counts only from the source, org and project its topic names (the levels a
broker ACL binds: ``served/{org}/+/%u``); another is refused and counted, so a start goes to
the org and project its server's topic says. A source is online as every
reader tells it, from its status (unknown counts as online). Where the broker sends retained
messages to exact subscriptions only (RabbitMQ 3.x), the serving processes are asked to say
it again (the roll call), and answers are awaited for a moment: nothing says all are in.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from cascade.connector_kit import RateLimitedLogger, event_set
from cascade.interfaces import (
    Connector,
    InvalidMessageError,
    Message,
    SubscriptionHandle,
    decode_level,
    same_source,
    status_filter,
)
from cascade.interfaces.serving import (
    ServedAnnouncement,
    ServedWorkflow,
    decode_served,
    served_filter,
)
from cascade.reader import ROLLCALL_WAIT, ReaderModel

__all__ = ["Served", "ServedHeard", "listen_served", "served"]

_log = RateLimitedLogger(logging.getLogger("cascade.control.served"))
_KEPT = 10_000  # announcements kept at most: bounded whatever a hostile publisher sends


@dataclass(frozen=True)
class Served:
    """A serving process's :attr:`announcement` and whether its source is :attr:`online`."""

    announcement: ServedAnnouncement
    online: bool

    @property
    def source(self) -> str:
        """The serving process's source id."""
        return self.announcement.source

    @property
    def load(self) -> int:
        """Its runs running and queued: a start goes to the least loaded."""
        return self.announcement.running + self.announcement.queued

    def workflow(self, name: str) -> ServedWorkflow | None:
        """The workflow ``name`` as it serves it, or ``None``."""
        return next((w for w in self.announcement.workflows if w.name == name), None)


class ServedHeard:
    """A callback on the announcements and the statuses: keeps the latest announcement of
    each source (an empty one forgets it), refuses one whose ``source``, ``org_id`` or
    ``project_id`` is not its topic's,
    a malformed one, and a new source's beyond 10,000 (counted in :attr:`refused`, logged at
    a limited rate), and calls ``on_change`` after each announcement or status taken."""

    def __init__(self, prefix: str, on_change: Callable[[], None] | None = None) -> None:
        self.announcements: dict[str, ServedAnnouncement] = {}
        self.refused = 0
        self._prefix = prefix
        self._statuses = ReaderModel(prefix=prefix)
        self._on_change = on_change

    def __call__(self, message: Message) -> None:
        """Take one announcement or status message."""
        kind = message.topic.removeprefix(self._prefix + "/").split("/", 1)[0]
        if kind == "status":
            self._statuses.apply(message)
        elif kind == "served":
            self._announced(message)
        else:
            return
        if self._on_change is not None:
            self._on_change()

    def _announced(self, message: Message) -> None:
        levels = message.topic[len(self._prefix) + 1 :].split("/")
        if len(levels) != 4:  # served/{org}/{project}/{source}
            self._refuse(message.topic, "not an announcement's topic")
            return
        _, org, project, level = levels
        source = decode_level(level)
        if not message.raw:  # cleared: it stopped serving (there: not another place's)
            known = self.announcements.get(source)
            if known is not None and (known.org_id, known.project_id) == (
                decode_level(org),
                decode_level(project),
            ):
                del self.announcements[source]
            return
        try:
            announcement = decode_served(message.raw)
        except InvalidMessageError as exc:
            self._refuse(message.topic, f"malformed: {exc}")
            return
        if not same_source(announcement.source, level):
            self._refuse(message.topic, "its source is not its topic's")
            return
        if (announcement.org_id, announcement.project_id) != (
            decode_level(org),
            decode_level(project),
        ):
            self._refuse(message.topic, "its org or project is not its topic's")
            return
        if source not in self.announcements and len(self.announcements) >= _KEPT:
            self._refuse(message.topic, f"{_KEPT:,} announcements kept already")
            return
        self.announcements[source] = announcement

    def _refuse(self, topic: str, why: str) -> None:
        self.refused += 1
        _log.log(logging.WARNING, why[:16], "refused an announcement on %r: %s", topic[:256], why)

    def online(self, source: str) -> bool:
        """Whether ``source`` is online, as its status says (unknown counts as online)."""
        engine = self._statuses.engines.get(source)
        return engine is None or engine.online

    def served(self) -> list[Served]:
        """Every announcement heard, with its source's presence, by source."""
        return [
            Served(announcement, self.online(announcement.source))
            for _, announcement in sorted(self.announcements.items())
        ]

    def servers_of(self, workflow: str) -> list[Served]:
        """The announcements that serve ``workflow``, online or not."""
        return [s for s in self.served() if s.workflow(workflow) is not None]


async def listen_served(
    connector: Connector, heard: ServedHeard, *, until: asyncio.Event | None, wait: float
) -> list[SubscriptionHandle]:
    """Subscribe ``heard`` to the announcements and the statuses; where the broker sends it
    no retained ones, call the roll call and wait for the answers up to ``wait`` seconds
    (until ``until`` is set, when given). The handles, to unsubscribe."""
    prefix = connector.topic_prefix
    handles = [
        await connector.subscribe(served_filter(prefix), heard),
        await connector.subscribe(status_filter(prefix), heard),
    ]
    if not await connector.call_roll():
        return handles
    if until is None:
        await asyncio.sleep(wait)  # the roll call's answers: nothing says when all are in
    else:
        await event_set(until, wait)
    return handles


async def served(connector: Connector, *, timeout: float = 5.0) -> list[Served]:
    """Who serves what on ``connector`` (connected): each serving process's announcement
    and whether it is online, by source. Where the broker needs a roll call, its answers are
    awaited :data:`~cascade.reader.ROLLCALL_WAIT` seconds (``timeout`` when
    shorter)."""
    heard = ServedHeard(connector.topic_prefix)
    handles = await listen_served(connector, heard, until=None, wait=min(ROLLCALL_WAIT, timeout))
    for handle in handles:
        await handle.unsubscribe()
    return heard.served()
