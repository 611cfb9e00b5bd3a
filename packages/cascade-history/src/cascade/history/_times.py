"""Times: the protocol's timestamps as epoch seconds, and periods given as ages or datetimes."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

from cascade.reader import parse_timestamp

__all__ = ["parse_time", "since_epoch"]


_UTC = "+00:00"
_LONGEST = 64  # as parse_timestamp: a longer text is no timestamp


def parse_time(value: str | None) -> float | None:
    """Epoch seconds of a protocol timestamp, ``None`` for anything that is not one
    (:func:`cascade.reader.parse_timestamp`, which it equals).

    Read once for every event recorded: what engines send (``+00:00``, an aware time) is read
    straight away, anything else as ``parse_timestamp`` reads it.
    """
    if value.__class__ is str and value.endswith(_UTC) and len(value) <= _LONGEST:
        try:
            return datetime.fromisoformat(value).timestamp()
        except (ValueError, OverflowError, OSError):
            return None
    return parse_timestamp(value)


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
