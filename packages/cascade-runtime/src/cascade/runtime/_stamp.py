"""Timestamps as the protocol writes them, formatted fast: the telemetry's hot path."""

from __future__ import annotations

from datetime import datetime, timezone

__all__ = ["Stamp"]


class Stamp:
    """Epoch seconds as ISO 8601 in UTC (``2026-11-20T23:11:05.540744+00:00``), as bytes.

    The part up to the second is cached: formatting is on the telemetry hot path.
    """

    __slots__ = ("prefix", "whole_second")

    def __init__(self) -> None:
        self.whole_second = -1
        self.prefix = b""

    def __call__(self, ts: float) -> tuple[bytes, int]:
        """The cached ``YYYY-MM-DDTHH:MM:SS`` part and the microseconds of ``ts``."""
        second = int(ts)
        if second != self.whole_second:
            when = datetime.fromtimestamp(second, timezone.utc)
            self.prefix = when.strftime("%Y-%m-%dT%H:%M:%S").encode()
            self.whole_second = second
        return self.prefix, int((ts - second) * 1_000_000)
