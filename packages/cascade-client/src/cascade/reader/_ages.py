"""Ages as people give them: ``90`` or ``90s``, ``15m``, ``2h``, ``7d``."""

from __future__ import annotations

import re

__all__ = ["parse_age"]

_AGE = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([smhd]?)\s*")
_UNIT_SECONDS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_age(text: str) -> float:
    """Seconds in an age: ``90`` or ``90s``, ``15m``, ``2h``, ``7d``; :class:`ValueError` for
    anything else."""
    match = _AGE.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not an age: use e.g. 90s, 15m, 2h or 7d")
    return float(match[1]) * _UNIT_SECONDS[match[2]]
