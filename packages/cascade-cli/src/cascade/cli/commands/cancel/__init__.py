"""`cascade cancel`: a run stopped by its engine; and what it says of refused answers."""

from ._command import cancel

__all__ = ["cancel"]
