"""Reconnection delays: exponential, jittered, bounded."""

from __future__ import annotations

import pytest

from cascade.connectors.mqtt._backoff import Backoff


def test_first_retry_is_well_under_a_second() -> None:
    """The first delay is at most the initial delay (0.1 s by default)."""
    assert all(0.05 <= Backoff().next_delay() <= 0.1 for _ in range(100))


def test_delays_grow_then_stay_at_the_cap() -> None:
    """Upper bounds double each attempt until the maximum, never beyond."""
    backoff = Backoff(0.1, 2.0, rand=lambda low, high: high)
    assert [backoff.next_delay() for _ in range(7)] == [0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0]


def test_jitter_spans_the_upper_half() -> None:
    """Each delay is drawn from [bound/2, bound]."""
    bounds: list[tuple[float, float]] = []

    def record(low: float, high: float) -> float:
        bounds.append((low, high))
        return low

    backoff = Backoff(1.0, 8.0, rand=record)
    backoff.next_delay()
    backoff.next_delay()
    assert bounds == [(0.5, 1.0), (1.0, 2.0)]


def test_capped_delay_is_at_the_maximum_and_reset_starts_over() -> None:
    """Refusals wait at the cap; a success resets to the initial delay."""
    backoff = Backoff(0.1, 30.0)
    assert all(15.0 <= backoff.capped_delay() <= 30.0 for _ in range(20))
    backoff.reset()
    assert backoff.next_delay() <= 0.1


def test_many_attempts_do_not_overflow() -> None:
    """Thousands of failed attempts still give the capped delay."""
    backoff = Backoff(0.1, 5.0, rand=lambda low, high: high)
    for _ in range(5000):
        delay = backoff.next_delay()
    assert delay == 5.0


def test_bad_bounds_are_refused() -> None:
    """The initial delay must be positive and not above the maximum."""
    with pytest.raises(ValueError, match="backoff"):
        Backoff(0, 1)
    with pytest.raises(ValueError, match="backoff"):
        Backoff(2, 1)
