"""`cascade logs`: a run's task log lines; and following them live."""

from ._command import logs

__all__ = ["logs"]
