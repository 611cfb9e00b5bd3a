"""`cascade schedules` and `cascade backfill`: the served schedules, and slots started on
purpose."""

from ._backfill import backfill
from ._command import schedules

__all__ = ["backfill", "schedules"]
