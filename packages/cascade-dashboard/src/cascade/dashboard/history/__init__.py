"""The history: where the page reads it from, and its API (/api/history/...)."""

from ._history_api import MAX_LIMIT, RUN_PAGE

__all__ = ["MAX_LIMIT", "RUN_PAGE"]
