"""Reading the tasks' log lines: the part of :class:`~cascade.history.History` that `cascade
logs`, `cascade run` and the dashboard's log panel read."""

from __future__ import annotations

from collections.abc import Iterable

from ._history_base import HistoryBase
from ._log_queries import (
    log_batches_query,
    log_counts_query,
    log_lines_query,
    runs_logging_query,
)
from ._log_records import LogBatches, LogCount, RecordedLogLine

__all__ = ["HistoryLogs"]


class HistoryLogs(HistoryBase):
    """The task log lines and counts of :class:`~cascade.history.History`."""

    def log_lines(
        self,
        run_id: str,
        *,
        task: str | None = None,
        level: int = 0,
        since: float | None = None,
        after: int = 0,
        limit: int | None = 1000,
        last: bool = False,
        among: Iterable[tuple[str, str | None]] | None = None,
    ) -> list[RecordedLogLine]:
        """The lines the tasks of the run ``run_id`` (its whole id) logged, in the order they
        were logged (by time, then ``n``), at most ``limit`` (``None``: all); ``[]`` for a run
        without any. ``last``: the newest ``limit`` of them (still oldest first), read
        without going through the others: a long run's tail.

        ``task``: a task id, or a task name, or a shell glob of names (``load_*``, as
        :meth:`run`'s ``name_glob``). ``level``: that level's number or higher
        (``logging.WARNING``: warnings, errors). ``since``: lines logged since then (epoch
        seconds, as the engine said). ``after``: the :attr:`~RecordedLogLine.id` of the
        last line the caller has: the lines stored after it, to page through a run's lines
        or follow them while it is recorded (ids number lines in the order stored: a run's
        batches as received, each batch's lines in the order logged; a batch that arrived
        late is found after the lines stored before it). ``among``: none unless the run is
        recorded and one of these orgs' and projects' (as :meth:`runs`), in the same query.
        """
        if limit is not None and limit < 1:
            raise ValueError("limit must be at least 1")
        return self._read(
            lambda c: log_lines_query(
                c,
                run_id,
                task=task,
                level=level,
                since=since,
                after=after,
                limit=limit,
                last=last,
                among=among,
            )
        )

    def log_counts(self, run_id: str) -> dict[str, LogCount]:
        """Per task id, what the tasks of the run ``run_id`` logged: the lines stored and those
        their engine dropped (:class:`LogCount`); empty for a run without logs."""
        return self._read(lambda c: log_counts_query(c, run_id))

    def log_batches(self, run_id: str) -> LogBatches | None:
        """How the history holds the run ``run_id``'s log batches as its engine numbered them
        (:class:`LogBatches`: the batches ``missing``, whichever tasks' lines they held);
        ``None`` for a run without logs."""
        return self._read(lambda c: log_batches_query(c, run_id))

    def runs_logging(
        self,
        text: str,
        *,
        since: float | None = None,
        limit: int = 100,
        among: Iterable[tuple[str, str | None]] | None = None,
    ) -> list[str]:
        """The ids of the runs a line of which contains ``text`` (any case: ASCII letters on
        SQLite, all on PostgreSQL), the run with the latest such line first, at most
        ``limit``. ``since``: lines received since then (epoch seconds). It reads every line
        (of the period) whose text it looks through: no index finds a substring. ``among``:
        of these orgs' and projects' recorded runs only (as :meth:`runs`)."""
        if not text:
            raise ValueError("text must not be empty")
        return self._read(
            lambda c: runs_logging_query(c, text, since=since, limit=limit, among=among)
        )
