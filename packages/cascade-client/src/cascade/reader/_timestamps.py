"""The protocol's timestamps (ISO 8601 with a UTC offset) as epoch seconds."""

from __future__ import annotations

import math
from datetime import datetime, timezone

__all__ = ["parse_timestamp"]

_LONGEST = 64  # far above any ISO 8601 timestamp: a longer text is no timestamp, unread


def parse_timestamp(value: str | None) -> float | None:
    """Epoch seconds of a protocol timestamp, ``None`` for anything that is not one.

    A timestamp without an offset is read as UTC; anything else (older tools, hostile input:
    not a string, too long, not ISO 8601, out of range) gives ``None``, never an error.
    """
    if not value or not isinstance(value, str) or len(value) > _LONGEST:
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
