"""`cascade logs`: a run's task log lines; and following them live."""

from ._command import PAGE, logs

__all__ = ["PAGE", "logs"]
