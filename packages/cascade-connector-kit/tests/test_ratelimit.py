"""RateLimitedLogger keeps floods out of the log but counts them."""

from __future__ import annotations

import logging

import pytest

from cascade.connector_kit import RateLimitedLogger


def test_logs_once_per_interval_and_reports_suppressed(caplog: pytest.LogCaptureFixture) -> None:
    """Repeats inside the interval are suppressed and then reported by count."""
    now = [0.0]
    limited = RateLimitedLogger(logging.getLogger("t"), interval=10, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING):
        assert limited.warning("k", "bad %s", 1)
        assert not limited.warning("k", "bad %s", 2)
        assert not limited.warning("k", "bad %s", 3)
        assert limited.warning("other", "different")
        now[0] = 10.0
        assert limited.warning("k", "bad %s", 4)
    assert [r.getMessage() for r in caplog.records] == [
        "bad 1",
        "different",
        "bad 4 (2 similar messages suppressed)",
    ]
