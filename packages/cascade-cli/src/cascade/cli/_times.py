"""Times on a screen: durations short enough for a cell, and absolute times in one zone."""

from __future__ import annotations

from datetime import datetime, tzinfo

from ._views import LAST_TIMESTAMP

__all__ = ["TimeFormat", "duration"]


def duration(seconds: float) -> str:
    """``12.3s``, ``4m05s``, ``2h05m``, ``3d04h``: a duration short enough for a cell."""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
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

    def at(self, ts: float) -> str:
        """``HH:MM:SS`` today, a date too otherwise; ``beyond year 9999`` for far times."""
        if ts > LAST_TIMESTAMP:
            return "beyond year 9999"
        try:
            when = datetime.fromtimestamp(ts, self.tz)
        except (OverflowError, OSError, ValueError):
            return "out of range"
        if when.date() == self._now.date():
            return when.strftime("%H:%M:%S")
        return when.strftime("%Y-%m-%d %H:%M:%S")

    def ago(self, ts: float | None) -> str:
        """``4m05s ago``, or ``unknown`` when there is no time."""
        if ts is None:
            return "unknown"
        return f"{duration(self.now - ts)} ago"
