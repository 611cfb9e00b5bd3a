"""The views' options: ages and their documented defaults (the README's: --offline-max-age 1h,
--keep-for 10m)."""

from __future__ import annotations

from cascade.cli.plumbing._view_options import (
    DEFAULT_KEEP_FOR_AGE,
    DEFAULT_OFFLINE_MAX_AGE,
    parse_age,
)
from cascade.reader import DEFAULT_KEEP_FOR


def test_ages_and_the_documented_defaults() -> None:
    """An age is seconds, or a number with s, m, h or d; the defaults are 1h and 10m."""
    assert parse_age(DEFAULT_OFFLINE_MAX_AGE) == 3600
    assert parse_age(DEFAULT_KEEP_FOR_AGE) == DEFAULT_KEEP_FOR == 600
    assert [parse_age(a) for a in ("90", "90s", "15m", "2h", "7d")] == [90, 90, 900, 7200, 604800]
