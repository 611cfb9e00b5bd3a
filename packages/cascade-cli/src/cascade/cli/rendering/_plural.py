"""A count and its noun in the right number, the one way every view says how many."""

from __future__ import annotations

__all__ = ["counted"]


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """``1 engine``, ``0 engines``, ``1,200 engines``: ``count`` with thousands separated and
    ``noun`` singular for one, else ``plural`` (``noun`` and an ``s`` unless given:
    ``counted(n, "engine's summary", "engines' summaries")``)."""
    return f"{count:,} {noun if count == 1 else (plural or noun + 's')}"
