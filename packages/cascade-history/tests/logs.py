"""Task log batches for the history's tests, as an engine would send them."""

from __future__ import annotations

from typing import Any

from cascade.connector_kit.testing import received
from cascade.history import Received, decode_message
from cascade.interfaces.logs import DroppedLines, LogBatch, LogLine, logs_topic

from .messages import T0, iso

__all__ = ["batch", "line", "stored_batch"]


def line(task: str, n: int, message: str | None = None, **more: Any) -> LogLine:
    """Line ``n`` of task ``task`` (named ``{task}_name`` unless ``task_name`` says), logged
    at ``T0 + n`` unless ``ts`` says."""
    ts = more.pop("ts", T0 + n)
    return LogLine(
        ts=iso(ts),
        task_id=task,
        task_name=more.pop("task_name", f"{task}_name"),
        message=f"{task} line {n}" if message is None else message,
        n=n,
        **more,
    )


def batch(
    run_id: str,
    seq: int,
    lines: list[LogLine],
    *,
    source: str = "engine-1",
    dropped: list[DroppedLines] | None = None,
    ts: float = T0,
) -> LogBatch:
    """Batch ``seq`` of ``run_id``'s logs from ``source``."""
    return LogBatch(
        run_id=run_id, org_id="local", project_id="default", source=source, seq=seq,
        ts=iso(ts), lines=lines, dropped=dropped or [],
    )  # fmt: skip


def stored_batch(logs: LogBatch, received_at: float = T0, *, sourced: bool = False) -> Received:
    """``logs`` as delivered on its topic and decoded for :meth:`History.store`."""
    topic = logs_topic("local", "default", logs.run_id, source=logs.source if sourced else None)
    item = decode_message(received(topic, logs), received_at=received_at)
    assert item is not None
    return item
