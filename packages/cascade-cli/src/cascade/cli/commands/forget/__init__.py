"""`cascade forget`: offline engines' retained statuses cleared; and which are stale."""

from ._command import forget

__all__ = ["forget"]
