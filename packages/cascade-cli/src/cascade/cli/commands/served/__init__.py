"""`cascade served`: who serves which workflows."""

from ._command import served

__all__ = ["served"]
