"""`cascade runs`: the recorded runs; and their table."""

from ._command import runs

__all__ = ["runs"]
