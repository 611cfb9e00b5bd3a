"""What a reader keeps, and when it reads the fleet from the summaries, by default: numbers
the faces show in their help (`cascade watch --help`) without loading the model."""

from __future__ import annotations

__all__ = ["DEFAULT_FLEET_THRESHOLD", "DEFAULT_KEEP_FOR", "DEFAULT_KEEP_RUNS"]

DEFAULT_KEEP_RUNS = 20
"""Finished runs a :class:`ReaderModel` keeps by default (the most recently finished)."""

DEFAULT_KEEP_FOR = 600.0
"""Seconds a :class:`ReaderModel` keeps a finished (or silent) run by default."""

DEFAULT_FLEET_THRESHOLD = 200
"""Live runs from which a view reads the fleet from its engines' summaries by default."""
