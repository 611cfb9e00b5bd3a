"""`cascade run`: one run's detail from the history; and its overview."""

from ._command import DEFAULT_LIMIT, run, show_recorded_run

__all__ = ["DEFAULT_LIMIT", "run", "show_recorded_run"]
