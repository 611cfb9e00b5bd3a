"""`cascade start`: a served workflow started by a process serving it (and what `rerun` shares
with it: the params, the asking, what is said)."""

from ._command import start

__all__ = ["start"]
