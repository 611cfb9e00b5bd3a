"""What the history answers about the tasks' log lines: a line recorded, and a task's counts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["LogBatches", "LogCount", "RecordedLogLine"]


@dataclass(frozen=True, slots=True)
class RecordedLogLine:
    """One line a task logged, as the history stored it (:meth:`History.log_lines
    <cascade.history.History.log_lines>`).

    The fields of :class:`~cascade.interfaces.logs.LogLine`, with ``ts`` in epoch seconds,
    ``level_number`` always given and ``message`` cut to
    :data:`~cascade.interfaces.wire.MAX_LOG_LINE_BYTES`; ``id`` numbers the history's lines in
    the order they were stored (a run's batches as received, each batch's lines in the order
    logged): the cursor of :meth:`~cascade.history.History.log_lines`'s ``after``.
    ``source`` is the engine that sent it.
    """

    id: int
    run_id: str
    task_id: str
    task_name: str
    attempt: int
    n: int
    ts: float
    level: str
    level_number: int
    logger: str
    message: str
    stream: str | None
    source: str
    trace_id: str | None
    span_id: str | None

    def to_json(self) -> dict[str, Any]:
        """This line as a JSON object (its fields by name; ``ts`` in epoch seconds)."""
        return {
            "id": self.id,
            "run_id": self.run_id,
            "task_id": self.task_id,
            "task_name": self.task_name,
            "attempt": self.attempt,
            "n": self.n,
            "ts": self.ts,
            "level": self.level,
            "level_number": self.level_number,
            "logger": self.logger,
            "message": self.message,
            "stream": self.stream,
            "source": self.source,
            "trace_id": self.trace_id,
            "span_id": self.span_id,
        }


@dataclass(frozen=True, slots=True)
class LogCount:
    """What one task of a run logged (:meth:`History.log_counts
    <cascade.history.History.log_counts>`): ``lines`` the history stored (lines
    ``cascade record --keep-logs`` deleted since included), ``dropped`` the lines its engine
    said it dropped (over its rate or budget, or its queue full), ``lost`` the lines it
    numbered below the highest stored that the history has neither stored nor heard dropped:
    lost on the way, or logged before a recorder listened (a task's last lines lost are
    not known)."""

    task_name: str
    lines: int
    dropped: int
    lost: int = 0

    def to_json(self) -> dict[str, Any]:
        """These counts as a JSON object."""
        return {
            "task_name": self.task_name,
            "lines": self.lines,
            "dropped": self.dropped,
            "lost": self.lost,
        }


@dataclass(frozen=True, slots=True)
class LogBatches:
    """A run's log batches as numbered by its engine (:meth:`History.log_batches
    <cascade.history.History.log_batches>`): ``stored`` the batches the history stored (each
    once; ``cascade record --keep-logs`` deleted since included), ``last_seq`` the highest
    number among them, ``missing`` the numbers below it the history lacks: batches lost on
    the way (a recorder down, a broker that shed them) or sent before a recorder listened.
    Their lines are known neither in number nor by task, so a task that lost every line is
    in this count and no other; batches lost after the last one stored are not known."""

    stored: int
    last_seq: int

    @property
    def missing(self) -> int:
        """Batches numbered below :attr:`last_seq` the history lacks."""
        return max(0, self.last_seq - self.stored)

    def to_json(self) -> dict[str, Any]:
        """These counts as a JSON object (``missing`` too)."""
        return {"stored": self.stored, "last_seq": self.last_seq, "missing": self.missing}
