"""The served schedules as the fleet announces them: each schedule once, from the announcements
of every process that serves it (its next slots, its last slot and that slot's run, paused or
not), as `cascade schedules` and the dashboard list them."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from cascade.interfaces.commands import ControlError
from cascade.interfaces.serving import ServedSchedule, StartRequest
from cascade.interfaces.wire import BackfillSlot, slot_request_id

from ._served import Served
from ._start_errors import NobodyServesError

__all__ = ["BACKFILL_MAX", "ScheduleView", "backfill_request", "backfilled", "schedules_of"]

BACKFILL_MAX = 100
"""The most slots one backfill starts."""


@dataclass
class ScheduleView:
    """A schedule of ``org_id`` and ``project_id`` as its servers announce it.

    ``schedule``: what it is, as a server announces it (``name``, ``workflow``, ``cron``/``tz``
    or ``every``, ``overlap``, ``catchup``); ``pause``: the announcement of a server that says
    it is paused (its ``paused_by``, ``paused_reason`` and ``paused_until``), ``None`` if
    none does; ``next``: its next slot (the
    earliest any online server says), then ``upcoming``; ``last``: the latest slot heard
    claimed; ``last_slot``, ``last_run`` and ``last_source``: the latest slot a server says it
    fired, its run and that server; ``skipped``: the slots its servers skipped, the latest
    said in ``last_skipped``; ``servers``: the online sources that serve it.
    """

    org_id: str
    project_id: str
    schedule: ServedSchedule
    pause: ServedSchedule | None = None
    next: str = ""
    upcoming: list[str] = field(default_factory=list)
    last: str = ""
    last_slot: str = ""
    last_run: str = ""
    last_source: str = ""
    skipped: int = 0
    last_skipped: str = ""
    servers: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        """The schedule's name."""
        return self.schedule.name

    @property
    def paused(self) -> bool:
        """Whether a pause on ``schedule:<name>`` is in force, as its servers say."""
        return self.pause is not None

    def as_json(self) -> dict[str, object]:
        """As `cascade schedules --json` lists it."""
        said, pause = self.schedule, self.pause or ServedSchedule(name="-", workflow="-")
        return {
            "name": said.name,
            "org_id": self.org_id,
            "project_id": self.project_id,
            "workflow": said.workflow,
            "cron": said.cron,
            "tz": said.tz,
            "every": said.every,
            "overlap": said.overlap,
            "catchup": said.catchup,
            "next": self.next,
            "upcoming": self.upcoming,
            "last": self.last,
            "last_slot": self.last_slot,
            "last_run": self.last_run,
            "last_source": self.last_source,
            "paused": self.paused,
            "paused_by": pause.paused_by,
            "paused_reason": pause.paused_reason,
            "paused_until": pause.paused_until or None,
            "skipped": self.skipped,
            "last_skipped": self.last_skipped,
            "servers": self.servers,
        }


def schedules_of(found: Iterable[Served]) -> list[ScheduleView]:
    """Each schedule the announcements in ``found`` name, once by org, project and name, by
    name. A server that is offline still says what it last fired; its next slots do not
    count."""
    views: dict[tuple[str, str, str], ScheduleView] = {}
    for server in found:
        said = server.announcement
        for entry in said.schedules:
            key = (said.org_id, said.project_id, entry.name)
            view = views.get(key)
            if view is None:
                view = views[key] = ScheduleView(said.org_id, said.project_id, entry)
            if entry.last_slot > view.last_slot:
                view.last_slot, view.last_run = entry.last_slot, entry.last_run
                view.last_source = said.source
            if entry.paused and server.online:
                view.pause = entry  # the servers read one pause: any says it
            view.last = max(view.last, entry.last)
            view.skipped += entry.skipped
            if entry.last_skipped > view.last_skipped:
                view.last_skipped = entry.last_skipped
            if server.online:
                view.servers.append(said.source)
                if entry.next and (not view.next or entry.next < view.next):
                    view.next, view.upcoming = entry.next, list(entry.upcoming)
    return sorted(views.values(), key=lambda v: (v.name, v.org_id, v.project_id))


def backfilled(
    views: Iterable[ScheduleView],
    schedule: str,
    slots: Sequence[datetime],
    *,
    org: str | None = None,
    project: str | None = None,
) -> ScheduleView:
    """The schedule a backfill of ``slots`` goes to, checked: at most :data:`BACKFILL_MAX`
    slots, each aware; the schedule served online, in one org and project."""
    if len(slots) > BACKFILL_MAX:
        raise ControlError(
            f"{len(slots)} slots: a backfill starts at most {BACKFILL_MAX}; narrow the range",
            "slots",
        )
    if any(slot.tzinfo is None for slot in slots):
        raise ControlError("a slot is an aware datetime (UTC, or with its offset)", "slots")
    found = [
        view
        for view in views
        if view.name == schedule
        and view.servers
        and org in (None, view.org_id)
        and project in (None, view.project_id)
    ]
    if not found:
        raise NobodyServesError(
            f"no online process serves schedule {schedule} (cascade schedules lists them)",
            schedule,
        )
    if len(found) > 1:
        places = ", ".join(f"{v.org_id}/{v.project_id}" for v in found)
        raise ControlError(
            f"schedule {schedule} is served in {places}: name the org and project", "org"
        )
    return found[0]


def backfill_request(
    view: ScheduleView, slot: datetime, *, issued_by: str, reason: str | None
) -> StartRequest:
    """The start request of ``slot`` of ``view``'s schedule, its id the slot's."""
    return StartRequest(
        id=slot_request_id(view.name, slot),
        workflow=view.schedule.workflow,
        issued_by=issued_by,
        reason=reason,
        issued_at=time.time(),
        backfill=BackfillSlot(schedule=view.name, slot=slot.isoformat()),
    )
