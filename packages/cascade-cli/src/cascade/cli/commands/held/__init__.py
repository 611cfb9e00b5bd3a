"""`cascade held`: the tasks held for a decision, fleet-wide; and the listening it is made of,
which `cascade retry --held` (and skip, fail) share."""

from ._command import held

__all__ = ["held"]
