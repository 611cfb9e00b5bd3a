"""Times on a screen: durations short enough for a cell, and absolute times in one zone."""

from __future__ import annotations

from datetime import datetime, tzinfo

from cascade.reader import LAST_TIMESTAMP

__all__ = ["TimeFormat", "duration"]

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def duration(seconds: float) -> str:
    """``12.3s``, ``4m05s``, ``2h05m``, ``3d04h``: a duration short enough for a cell, rounded
    to its last unit (a TTL of 300 s, stored as 299.9999..., is ``5m00s``)."""
    seconds = max(0.0, seconds)
    if seconds < 59.95:  # what rounds to 60.0s is a minute
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"


class TimeFormat:
    """Absolute times of one screen, all in one zone (local unless ``tz`` is given)."""

    def __init__(self, now: float, tz: tzinfo | None = None) -> None:
        self.now = now
        self._now = (
            datetime.fromtimestamp(now, tz) if tz else datetime.fromtimestamp(now).astimezone()
        )
        self.tz = self._now.tzinfo

    @property
    def zone(self) -> str:
        """The zone's name and offset, e.g. ``UTC`` or ``CET (UTC+01:00)``."""
        name = self._now.tzname() or ""
        offset = self._now.strftime("%z")
        label = f"UTC{offset[:3]}:{offset[3:]}" if offset else ""
        if not offset or offset == "+0000":
            return name if name in ("UTC", "GMT") else f"{name} (UTC)".strip()
        return f"{name} ({label})" if name else label

    def _local(self, ts: float) -> datetime | str:
        """``ts`` in this zone, or what to show instead of a time that has no date."""
        if ts > LAST_TIMESTAMP:
            return "beyond year 9999"
        try:
            return datetime.fromtimestamp(ts, self.tz)
        except (OverflowError, OSError, ValueError):
            return "out of range"

    def at(self, ts: float) -> str:
        """``HH:MM:SS`` today, a date too otherwise; ``beyond year 9999`` for far times."""
        when = self._local(ts)
        if isinstance(when, str):
            return when
        if when.date() == self._now.date():
            return when.strftime("%H:%M:%S")
        return when.strftime("%Y-%m-%d %H:%M:%S")

    def short(self, ts: float) -> str:
        """:meth:`at` for a table's cell: ``HH:MM:SS`` today, ``Nov 23 14:02`` another day of
        this year, ``2025-11-23 14:02`` of another year (months in English, whatever the
        locale)."""
        when = self._local(ts)
        if isinstance(when, str):
            return when
        if when.date() == self._now.date():
            return when.strftime("%H:%M:%S")
        if when.year == self._now.year:
            return f"{_MONTHS[when.month - 1]} {when.day:2d} {when:%H:%M}"
        return when.strftime("%Y-%m-%d %H:%M")

    def ago(self, ts: float | None) -> str:
        """``4m05s ago``, or ``unknown`` when there is no time."""
        if ts is None:
            return "unknown"
        return f"{duration(self.now - ts)} ago"
