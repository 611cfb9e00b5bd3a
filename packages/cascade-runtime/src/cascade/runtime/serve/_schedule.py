"""``Schedule``: when a served workflow starts by itself, and what a slot does while a run of
its schedule still lives or after an outage. Its slots are computed by croniter (a cron
expression, in a time zone by zoneinfo) or are multiples of ``every`` since the epoch, so that
every server of a schedule computes the same slots."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cascade.interfaces.serving import ServedSchedule
from cascade.interfaces.wire import Catchup, Overlap, slot_stamp

__all__ = ["CATCHUP_MAX", "Schedule"]

CATCHUP_MAX = 100
"""The most missed slots ``catchup="all"`` fires after an outage (the latest ones)."""
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MAX_JITTER = timedelta(hours=1)


def _croniter() -> Any:
    """croniter's reader, imported when a cron schedule is first made: a run that serves no
    schedule never pays for it (a tenth of the engine's import)."""
    from croniter import croniter  # type: ignore[import-untyped]  # croniter ships no stubs

    return croniter


@dataclass(frozen=True)
class Schedule:
    """When a served workflow starts by itself: ``cron`` (a cron expression, read by croniter,
    in the time zone ``tz``: ``Schedule(cron="0 2 * * *", tz="Europe/Berlin")`` fires at 2
    o'clock Berlin time, and on the night the clocks skip 2 o'clock at 3) or ``every`` (a
    period of whole seconds, its slots multiples of it since 1970-01-01 UTC); one of them.

    ``params``: the workflow's params for each slot's run. ``workflow``: the served workflow
    it starts (the schedule's own name by default). ``overlap``: what a slot does while a
    run of this schedule lives anywhere in the fleet: ``"skip"`` it (said in a warning,
    counted in ``EngineStats.slots_skipped`` and in the announcement), ``"queue"`` it (one
    waits and starts when the live run ends; a later slot while one waits is skipped),
    ``"cancel"`` the live run and start, or ``"allow"`` both. ``catchup``: what the slots
    missed while no server of it ran do when one comes back: ``"none"`` fire (counted in
    ``slots_missed``), ``"latest"`` alone fires, ``"all"`` fire (the latest
    :data:`CATCHUP_MAX`). ``jitter``: a delay up to this long after each slot before it fires,
    the same on every server (drawn from the slot's name), to spread schedules that share a
    time; the run still names its slot. Bad values raise ``ValueError``.
    """

    cron: str | None = None
    every: timedelta | None = None
    tz: str = "UTC"
    params: Mapping[str, Any] = field(default_factory=dict)
    workflow: str | None = None
    overlap: Overlap = "skip"
    catchup: Catchup = "latest"
    jitter: timedelta = timedelta(0)

    def __post_init__(self) -> None:
        if (self.cron is None) == (self.every is None):
            raise ValueError("a Schedule takes cron or every, one of them")
        if self.cron is not None and not _croniter().is_valid(self.cron):
            raise ValueError(f"not a cron expression croniter reads: {self.cron!r}")
        if self.every is not None:
            seconds = self.every.total_seconds()
            if seconds < 1 or seconds != int(seconds):
                raise ValueError(
                    f"every is a whole number of seconds, at least 1, not {self.every}"
                )
        try:
            ZoneInfo(self.tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {self.tz!r} (an IANA name: Europe/Berlin)"
            ) from None
        if self.overlap not in get_args(Overlap):
            raise ValueError(f"overlap is one of {get_args(Overlap)}, not {self.overlap!r}")
        if self.catchup not in get_args(Catchup):
            raise ValueError(f"catchup is one of {get_args(Catchup)}, not {self.catchup!r}")
        if not timedelta(0) <= self.jitter <= _MAX_JITTER:
            raise ValueError(f"jitter is between 0 and 1 hour, not {self.jitter}")

    def next_after(self, moment: datetime) -> datetime:
        """The first slot strictly after ``moment`` (aware), in UTC."""
        if self.every is not None:
            period = int(self.every.total_seconds())
            elapsed = int((moment - _EPOCH).total_seconds() // period)
            return _EPOCH + timedelta(seconds=(elapsed + 1) * period)
        assert self.cron is not None
        local = moment.astimezone(ZoneInfo(self.tz))
        nxt: datetime = _croniter()(self.cron, local).get_next(datetime)
        return nxt.astimezone(timezone.utc)

    def slots(self, after: datetime, until: datetime) -> Iterator[datetime]:
        """The slots after ``after`` up to ``until`` (included), oldest first."""
        slot = self.next_after(after)
        while slot <= until:
            yield slot
            slot = self.next_after(slot)

    def is_slot(self, moment: datetime) -> bool:
        """Whether ``moment`` is one of the slots."""
        return self.next_after(moment - timedelta(seconds=1)) == moment

    def delay(self, name: str, slot: datetime) -> float:
        """Seconds after ``slot`` that ``name`` fires it (its jitter, the same on every server)."""
        span = int(self.jitter.total_seconds() * 1000)
        if span == 0:
            return 0.0
        digest = hashlib.sha256(f"{name}/{slot_stamp(slot)}".encode()).digest()
        return int.from_bytes(digest[:8], "big") % (span + 1) / 1000

    def described(self, name: str) -> ServedSchedule:
        """What the announcement says of it (its state added by the server)."""
        return ServedSchedule(
            name=name,
            workflow=self.workflow or name,
            cron=self.cron or "",
            tz=self.tz if self.cron is not None else "",
            every=self.every.total_seconds() if self.every is not None else 0.0,
            overlap=self.overlap,
            catchup=self.catchup,
        )
