"""Where a team's dashboard writes its access audit and its API tokens: the history it reads
(``--db URL``, or `cascade record`'s default file when it exists), opened for writing.

The dashboard never migrates a history: a recorder owns its schema. If the schema is not this
Cascade's, it says so in one line at start and keeps the access rows in its log only (API
tokens then cannot be made nor used).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from .._history_source import HistorySource
from ._access_log import AccessEvent

if TYPE_CHECKING:
    from cascade.history import History

__all__ = ["open_access_history", "sink_of"]

_FOLDS_KEPT = 10_000  # far more than a minute's folds: an older one's counts are all written


def _url(source: HistorySource) -> str | None:
    if source.history is not None:
        return source.history.url.render_as_string(hide_password=False)
    default = source.default_path
    return str(default) if default is not None and default.exists() else None


def open_access_history(source: HistorySource) -> tuple[History | None, str]:
    """The history of ``source`` opened for writing (``None`` when it cannot be), and the line
    to print on start saying where the access audit goes. Blocks: call it before serving."""
    url = _url(source)
    if url is None:
        return None, "access audit: in the log only (no history: --db URL keeps it)"
    from cascade.history import History, HistoryError, schema_status

    try:
        status = schema_status(url)
        if not status.up_to_date:
            return None, (
                f"access audit: in the log only: {status.location} is at schema revision "
                f"{status.current}, not this Cascade's {status.head} (migrate it: cascade "
                "history migrate --db URL)"
            )
        return History(url, mode="write", migrate=False), f"access audit: {status.location}"
    except HistoryError as exc:
        return None, f"access audit: in the log only: {exc}"


def sink_of(history: History) -> Callable[[AccessEvent], None]:
    """The access log's sink writing each row into ``history``; a fold's later counts update
    its row (called from one thread, in order)."""
    rows: dict[int, int] = {}  # fold -> its row's id, for the folds of the last minutes

    def write(event: AccessEvent) -> None:
        row = rows.get(event.fold) if event.fold is not None else None
        if row is not None:
            history.count_access(row, event.count, event.last_at or event.at)
            return
        row = history.record_access(
            who=event.who,
            via=event.via,
            action=event.action,
            target=event.target,
            outcome=event.outcome,
            reason=event.reason,
            at=event.at,
            claim=event.claim,
            count=event.count,
            last_at=event.last_at,
        )
        if event.fold is not None:
            rows[event.fold] = row
            while len(rows) > _FOLDS_KEPT:
                del rows[next(iter(rows))]

    return write
