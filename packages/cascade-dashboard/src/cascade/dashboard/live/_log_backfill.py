"""An opened run's earlier task log lines, from the dashboard's history.

Log batches are QoS 0 and not retained: the lines a task logged before a page opened its run
never come live. With a history (``--db``, or `cascade record`'s default), :class:`LogBackfill`
reads the run's last recorded lines and its tasks' counts, in a worker thread, once its logs
are subscribed to, and :func:`seed_run` merges them with those heard meanwhile: a line is known
by its task, attempt and ``n``, so none shows twice, and the lines go in the order they were
logged; a task's lines dropped and lost are the history's counts where those are larger than
what was heard (the same lines are not counted twice).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from cascade.interfaces.logs import LogLine
from cascade.reader import HeardLine, LogFollower, RunLogs, parse_timestamp

from .._history_source import HistorySource

if TYPE_CHECKING:
    from cascade.history import History, LogCount, RecordedLogLine

__all__ = ["LogBackfill", "recorded_tail", "seed_run"]

_READERS = 2  # history reads of opened runs at once: a burst of opens waits, never floods
_log = logging.getLogger("cascade.dashboard")


Recorded = tuple[Sequence["RecordedLogLine"], Mapping[str, "LogCount"]]
"""A run's last lines the history holds, oldest first, and its tasks' counts (by task id)."""


def recorded_tail(history: History, run_id: str, keep: int) -> Recorded:
    """The last ``keep`` lines the history holds of ``run_id``, oldest first, and its tasks'
    counts (blocking)."""
    return history.log_lines(run_id, limit=keep, last=True), history.log_counts(run_id)


class LogBackfill:
    """Reads an opened run's last recorded lines from ``source``'s history, if it has one."""

    def __init__(self, source: HistorySource) -> None:
        self.source = source
        self._readers = asyncio.Semaphore(_READERS)

    async def __call__(self, run_id: str, keep: int) -> Recorded:
        """The run's last ``keep`` recorded lines and its tasks' counts; none without a
        history, or when it cannot be read (logged)."""
        await self.source.refresh()
        history = self.source.history
        if history is None or keep < 1:
            return [], {}
        from cascade.history import HistoryError

        async with self._readers:
            try:
                return await asyncio.to_thread(recorded_tail, history, run_id, keep)
            except HistoryError as exc:
                _log.warning("could not read run %s's earlier log lines: %s", run_id, exc)
                return [], {}


def seed_run(
    follower: LogFollower,
    run_id: str,
    recorded: Sequence[RecordedLogLine],
    counts: Mapping[str, LogCount] | None = None,
) -> bool:
    """Merge ``recorded`` into the lines ``follower`` keeps of ``run_id`` (its last lines, as
    its bounds say), and the history's ``counts`` of its tasks into the run's (lines dropped,
    and lost: :func:`_count_recorded`); whether the kept lines or the counts changed.

    They are kept anew (a new :class:`RunLogs`, its counts carried over), so every page's
    window starts over with them; lines from another source than the run's are left out, as
    the follower would refuse them.
    """
    old = follower.runs.get(run_id)
    if old is None and (not recorded or len(follower.runs) >= follower.max_runs):
        return False
    counted = old is not None and _count_recorded(old, counts or {})
    source = old.source if old is not None else recorded[0].source
    heard = [kept.line for kept in old.kept] if old is not None else []
    known = {_key(line) for line in heard}
    earlier = [
        line
        for line in map(_as_line, (r for r in recorded if r.source == source))
        if _key(line) not in known
    ]
    merged = sorted([*earlier, *heard], key=_logged_at)  # stable: the history's first
    kept = _last_that_fit(merged, follower.keep_lines, follower.keep_bytes)
    if list(map(_key, kept)) == list(map(_key, heard)):
        return counted
    run = RunLogs(run_id, old.org_id if old else "", old.project_id if old else "", source)
    if old is not None:
        run.tasks, run.let_go, run.last_heard = old.tasks, old.let_go, old.last_heard
    for line in earlier:  # a copy of these coming live later is skipped as heard
        task = run.counts(line.task_id, line.task_name)
        task.last_n = max(task.last_n, line.n)
    run.heard = run.let_go + len(merged)
    run.let_go = run.heard - len(kept)
    for index, line in enumerate(kept, run.let_go + 1):
        run.kept.append(HeardLine(index, run_id, source, line))
        run.kept_bytes += len(line.message)
    follower.runs[run_id] = run
    _count_recorded(run, counts or {})
    return True


def _count_recorded(run: RunLogs, counts: Mapping[str, LogCount]) -> bool:
    """Take the history's counts of ``run``'s tasks where they say more than was heard: the
    lines its engine said it dropped, and the gaps in their numbers (dropped, or lost: the
    history lacks them); whether any count changed."""
    changed = False
    for task_id, count in counts.items():
        task = run.counts(task_id, count.task_name)
        gaps = count.dropped + count.lost
        if count.dropped > task.dropped or gaps > task.gaps:
            task.dropped = max(task.dropped, count.dropped)
            task.gaps = max(task.gaps, gaps)
            changed = True
    return changed


def _last_that_fit(lines: list[LogLine], keep_lines: int, keep_bytes: int) -> list[LogLine]:
    size, start = 0, len(lines)
    while start and len(lines) - start < keep_lines:
        size += len(lines[start - 1].message)
        if size > keep_bytes:
            break
        start -= 1
    return lines[start:]


def _as_line(recorded: RecordedLogLine) -> LogLine:
    return LogLine(
        ts=datetime.fromtimestamp(recorded.ts, timezone.utc).isoformat(),
        task_id=recorded.task_id,
        task_name=recorded.task_name,
        message=recorded.message,
        level=recorded.level,  # type: ignore[arg-type]  # a level name, as the engine sent it
        attempt=recorded.attempt,
        n=recorded.n,
        logger=recorded.logger,
        level_number=recorded.level_number,
        stream=recorded.stream,  # type: ignore[arg-type]
        trace_id=recorded.trace_id,
        span_id=recorded.span_id,
    )


def _key(line: LogLine) -> tuple[str, int, int, str]:
    # n numbers a task's lines from 1; an unnumbered line (n 0) is told by its message
    return line.task_id, line.attempt, line.n, line.message if not line.n else ""


def _logged_at(line: LogLine) -> tuple[float, int, int]:
    stamp = parse_timestamp(line.ts)
    return (float("inf") if stamp is None else stamp), line.attempt, line.n
