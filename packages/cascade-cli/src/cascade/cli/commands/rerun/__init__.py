"""`cascade rerun`: a run of a served workflow run again, reusing the results that still match."""

from ._command import rerun

__all__ = ["rerun"]
