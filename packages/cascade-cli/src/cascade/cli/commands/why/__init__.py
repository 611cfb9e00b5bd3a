"""`cascade why`: what holds a task, live or from the history."""

from ._command import why

__all__ = ["why"]
