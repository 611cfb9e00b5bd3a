"""The rate and TTL rules, stated once for the CLI, the dashboard and the engine."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cascade.interfaces import canonical_rate, expiry_after, parse_rate

MIN_TTL = 1.0  # the shortest TTL a writer accepts, as docs/protocol.md states it
MAX_TTL = 10 * 365 * 86_400.0  # the longest: ten years


@pytest.mark.parametrize(
    ("rate", "published"),
    [
        ("1e3", "1000/s"),
        ("10", "10/s"),
        (" 10 / m ", "10/m"),
        ("0.5/s", "0.5/s"),
        ("2/h", "2/h"),
        ("00010.500/m", "10.5/m"),
        ("1E-3/s", "0.001/s"),
        (0.25, "0.25/s"),
        (7, "7/s"),
    ],
)
def test_rates_are_published_in_the_plain_form(rate: str | float, published: str) -> None:
    """Whatever number form a user gives, writers publish ``<plain count>/<unit>``, the form
    the existing tools read too."""
    assert canonical_rate(rate) == published
    assert parse_rate(published) == pytest.approx(parse_rate(rate))


@pytest.mark.parametrize("rate", ["", "x", "10/d", "-1", "0", "1e16", "inf", "nan", True, 0.0])
def test_bad_rates_are_refused(rate: str | float) -> None:
    """Anything but a positive rate of at most 1e15 a second is refused, naming the forms."""
    with pytest.raises(ValueError, match="rate must be"):
        canonical_rate(rate)


@given(st.floats(min_value=1e-9, max_value=1e15))
def test_every_valid_rate_keeps_its_value(rate: float) -> None:
    """The plain form of a rate is the same rate."""
    assert parse_rate(canonical_rate(rate)) == pytest.approx(rate, rel=1e-12)


@pytest.mark.parametrize("ttl", [MIN_TTL, 300.0, MAX_TTL])
def test_ttls_in_bounds_give_an_expiry(ttl: float) -> None:
    """A TTL from one second to ten years ends that long after now."""
    assert expiry_after(ttl, 1000.0) == 1000.0 + ttl


@pytest.mark.parametrize("ttl", [1e-9, 0.0, -1.0, MAX_TTL * 2, math.inf, math.nan])
def test_ttls_out_of_bounds_are_refused(ttl: float) -> None:
    """A TTL that would have ended before an engine could apply it, or never, is refused."""
    with pytest.raises(ValueError, match="--ttl must be from 1 second"):
        expiry_after(ttl, 1000.0)
