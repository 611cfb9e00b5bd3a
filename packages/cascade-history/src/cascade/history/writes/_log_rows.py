"""A batch of task log lines turned into the rows a transaction writes (:class:`LogRows`).

A batch is checked whole before anything of it is kept (one line whose time is no time, or
is more than ``MAX_CLOCK_SKEW`` ahead of when it arrived, rejects it, as one bad field
rejects an event), then kept under its identity, the run and
its ``seq``: the writer stores the lines and counts of the batches the history did not have
yet (``_log_ingest``), so a copy delivered again adds nothing.
"""

from __future__ import annotations

from typing import Any

from cascade.interfaces import InvalidMessageError
from cascade.interfaces.logs import LogBatch
from cascade.interfaces.wire import MAX_LOG_LINE_BYTES, level_number
from cascade.reader import MAX_CLOCK_SKEW, MAX_SEQ_JUMP

from .._text import checked_id, clean
from .._times import parse_time

__all__ = ["LogRows", "OutOfBoundsError", "log_batch_ids"]

_Key = tuple[str, int]  # (run_id, seq): a batch's identity


class OutOfBoundsError(InvalidMessageError):
    """A batch numbered beyond what the run's engine can have sent (refused, counted
    ``seq out of bounds`` on the run)."""


class LogRows:
    """The log batches of one transaction: :meth:`add` each (already found the run's)."""

    def __init__(self, last_seqs: dict[str, int] | None = None) -> None:
        self.last_seqs = last_seqs if last_seqs is not None else {}
        """Per run, the highest batch number stored or taken (a number is bounded by it)."""
        self.batches: list[dict[str, Any]] = []  # log_batches rows, in the order received
        self.lines: dict[_Key, list[dict[str, Any]]] = {}
        # per batch and task: [task_name, lines, dropped_rate, dropped_budget, dropped_queue,
        # the highest line number]
        self.tasks: dict[_Key, dict[str, list[Any]]] = {}

    def add(self, batch: LogBatch, run_id: str, source: str, received_at: float) -> None:
        """Add ``batch`` (of ``run_id`` from ``source``, both as stored); raises
        :class:`~cascade.interfaces.InvalidMessageError` before keeping anything of it."""
        key = (run_id, batch.seq)
        if key in self.lines:
            return  # a copy: the writer counts it as a duplicate (no new batch stored)
        if not self.in_bounds(run_id, batch.seq):
            raise OutOfBoundsError(f"batch {batch.seq} is out of bounds", "$.seq")
        rows: list[dict[str, Any]] = []
        tasks: dict[str, list[Any]] = {}
        for line in batch.lines:
            ts = parse_time(line.ts)
            if ts is None:
                raise InvalidMessageError(f"not a timestamp: {line.ts[:64]!r}", "$.lines[].ts")
            if ts - received_at > MAX_CLOCK_SKEW:  # ahead(): no engine logs in the future
                raise InvalidMessageError(
                    f"a line stamped {line.ts[:64]!r}, ahead of the recorder's clock",
                    "$.lines[].ts",
                )
            task_id = clean(line.task_id)
            task_name = clean(line.task_name)
            rows.append(
                {
                    "run_id": run_id,
                    "task_id": task_id,
                    "task_name": task_name,
                    "attempt": line.attempt,
                    "n": line.n,
                    "ts": ts,
                    "level": line.level,
                    "level_number": level_number(line),
                    "logger": clean(line.logger),
                    "message": clean(line.message, MAX_LOG_LINE_BYTES),
                    "stream": line.stream,
                    "source": source,
                    "trace_id": line.trace_id,
                    "span_id": line.span_id,
                    "received_at": received_at,
                }
            )
            counts = tasks.get(task_id)
            if counts is None:
                counts = tasks[task_id] = [task_name, 0, 0, 0, 0, 0]
            counts[1] += 1
            if line.n > counts[5]:
                counts[5] = line.n
        for dropped in batch.dropped:
            task_id = clean(dropped.task_id)
            counts = tasks.get(task_id)
            if counts is None:
                counts = tasks[task_id] = [clean(dropped.task_name), 0, 0, 0, 0, 0]
            counts[2 + ("rate", "budget", "queue").index(dropped.reason)] += dropped.lines
        rows.sort(key=_logged)  # stored (and numbered) in the order logged
        self.batches.append(
            {
                "run_id": run_id,
                "seq": batch.seq,
                "source": source,
                "lines": len(rows),
                "received_at": received_at,
            }
        )
        self.lines[key] = rows
        self.tasks[key] = tasks
        self.last_seqs[run_id] = max(self.last_seqs.get(run_id, 0), batch.seq)

    def in_bounds(self, run_id: str, seq: int) -> bool:
        """Whether the run's engine can have sent batch ``seq``: at most
        :data:`~cascade.reader.MAX_SEQ_JUMP` above the highest number the history has of
        the run (0 when none: an engine numbers its batches from 1), so that no number a
        publisher sends makes a hole (batches missing) larger than that."""
        return seq - self.last_seqs.get(run_id, 0) <= MAX_SEQ_JUMP


def _logged(row: dict[str, Any]) -> tuple[float, int]:
    return row["ts"], row["n"]


def log_batch_ids(batch: LogBatch) -> tuple[str, str]:
    """The batch's run and source ids as stored (``InvalidMessageError`` if the protocol
    refuses one)."""
    checked_id(batch.org_id, "org_id")
    checked_id(batch.project_id, "project_id")
    return checked_id(batch.run_id, "run_id"), checked_id(batch.source, "source")
