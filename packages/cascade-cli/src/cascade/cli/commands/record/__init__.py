"""`cascade record`: the broker recorded into the history; and its metrics."""

from ._command import record

__all__ = ["record"]
