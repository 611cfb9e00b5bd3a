"""Text from the broker bounded before a reader stores it.

Every engine, and anyone else with publish rights on the broker, chooses the task names,
errors, reasons and scopes a reader keeps: a 20 MB name would make every view of it slow.
So a reader keeps at most :data:`KEPT` characters of a field (:func:`truncate`). What a
view then shows of it is the view's business (a terminal escapes what it would act on).
"""

from __future__ import annotations

__all__ = ["KEPT", "MARK", "truncate"]

MARK = "…[cut]"
"""Ends a text that was cut to its bound."""

KEPT = {"name": 256, "error": 2048, "reason": 256}
"""Characters a reader keeps of each text field it stores (the dashboard shows them all)."""


def truncate(text: str, limit: int) -> str:
    """``text`` if at most ``limit`` characters long, else its first ``limit`` and :data:`MARK`."""
    if len(text) <= limit:
        return text
    return text[:limit] + MARK
