"""Times: the protocol's timestamps as epoch seconds, and periods given as ages or datetimes."""

from __future__ import annotations

import math
import time
from datetime import datetime, timedelta, timezone

__all__ = ["parse_time", "since_epoch"]


def parse_time(value: str) -> float | None:
    """Epoch seconds of a protocol timestamp (ISO 8601; without an offset read as UTC),
    ``None`` for anything that is not one."""
    if not value or len(value) > 64:
        return None
    if value.endswith(("Z", "z")):  # fromisoformat reads a Z from Python 3.11 only
        value = value[:-1] + "+00:00"
    try:
        when = datetime.fromisoformat(value)
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        seconds = when.timestamp()
    except (ValueError, TypeError, OverflowError, OSError):
        return None
    return seconds if math.isfinite(seconds) else None


def since_epoch(
    since: datetime | timedelta | float | None, now: float | None = None
) -> float | None:
    """``since`` as epoch seconds: a moment (an aware datetime, or epoch seconds), or an age
    (a timedelta: that long before now); ``None`` stays ``None`` (since the beginning)."""
    if since is None:
        return None
    if isinstance(since, timedelta):
        return (time.time() if now is None else now) - since.total_seconds()
    if isinstance(since, datetime):
        if since.tzinfo is None:
            raise ValueError("since must be an aware datetime (with a time zone)")
        return since.timestamp()
    return float(since)
