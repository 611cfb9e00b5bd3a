"""`cascade schedules` and `cascade backfill`: the served schedules, and slots started on
purpose."""

from ._command import schedules

__all__ = ["schedules"]
