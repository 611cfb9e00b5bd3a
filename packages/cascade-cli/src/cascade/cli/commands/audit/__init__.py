"""`cascade audit`: who did what, from the history; and its table."""

from ._command import audit

__all__ = ["audit"]
