"""The rules of a constraint's values, stated once: rates and time-to-live.

The CLI (``--rate``, ``--ttl``), the dashboard's control requests and the
engine (reading ``params.rate``) all apply these, so that what one accepts the
others accept alike.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal

from ._limits import MAX_NUMBER

__all__ = ["MAX_TTL", "MIN_TTL", "canonical_rate", "expiry_after", "parse_rate"]

MIN_TTL = 1.0
"""The shortest time-to-live a writer accepts, in seconds: a shorter one would have ended
before an engine could apply it."""

MAX_TTL = 10 * 365 * 86400.0
"""The longest time-to-live a writer accepts, in seconds (ten years)."""

# A count in plain or exponent notation, then an optional unit.
_RATE = re.compile(r"\s*((?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)\s*(?:/\s*([smh]))?\s*")
_UNIT_SECONDS = {"s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
_FORMS = "'<count>/<s|m|h>' or a number per second (10, 10/s, 10/m, 0.5/s, 2/h, 1e3)"


def parse_rate(rate: str | float) -> float:
    """Tasks per second for a rate: ``"10/m"``, ``"0.5/s"``, ``"2/h"``, ``"1e3"``, or a number.

    Raises :class:`ValueError` for anything else, and for rates that are not
    positive and finite (at most 1e15 a second).
    """
    if isinstance(rate, bool):
        raise ValueError(f"rate must be {_FORMS}, not {rate!r}")
    if isinstance(rate, (int, float)):
        per_second = float(rate)
    else:
        match = _RATE.fullmatch(rate)
        if match is None:
            raise ValueError(f"rate must be {_FORMS}, not {rate!r}")
        per_second = float(match[1]) / _UNIT_SECONDS[match[2]]
    if not (math.isfinite(per_second) and 0 < per_second <= MAX_NUMBER):
        raise ValueError(f"rate must be positive and at most 1e15 a second, not {rate!r}")
    return per_second


def canonical_rate(rate: str | float) -> str:
    """``rate`` as writers publish it: ``"<count>/<unit>"`` with a plain decimal count.

    ``"1e3"`` becomes ``"1000/s"``, ``" 10 / m"`` ``"10/m"``: the form every reader,
    the existing Cascade tools' too, understands. Raises :class:`ValueError` as
    :func:`parse_rate` does.
    """
    parse_rate(rate)
    if isinstance(rate, str):
        match = _RATE.fullmatch(rate)
        assert match is not None  # parse_rate accepted it
        count, unit = Decimal(match[1]), match[2] or "s"
    else:
        count, unit = Decimal(repr(float(rate))), "s"
    return f"{count.normalize():f}/{unit}"


def expiry_after(ttl: float, now: float) -> float:
    """The ``expires_at`` of a constraint set at ``now`` for ``ttl`` seconds.

    Raises :class:`ValueError` unless ``ttl`` is a number from :data:`MIN_TTL`
    to :data:`MAX_TTL`.
    """
    if isinstance(ttl, bool) or not (math.isfinite(ttl) and MIN_TTL <= ttl <= MAX_TTL):
        raise ValueError(
            f"--ttl must be from {MIN_TTL:g} second to {MAX_TTL:.0f} seconds (10 years), not {ttl}"
        )
    return now + ttl
