"""Writing a batch of received messages in one transaction, each event stored once.

Every event is inserted with ``ON CONFLICT DO NOTHING`` against its identity
index (``_schema``), so a copy is ignored by the database itself, whichever
writer stored the first. A run's row is upserted with rules that only move
it forward (earliest start, latest time, first end, highest counters), so
copies and events arriving out of order never take it back.

Text from the broker is stored as ``_text`` says (NUL and lone surrogates
escaped, fields bounded). A batch the database refuses for its content (not for
its connection) is stored in halves, down to the message at fault, which is
rejected: one bad message never holds up the others.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
import sqlalchemy as sa

from cascade.interfaces import (
    MAX_HOLDS,
    CancelReply,
    Envelope,
    Heartbeat,
    InvalidMessageError,
    LifecycleEvent,
    StatusMessage,
    TaskStateEvent,
    truncate_error,
)

from ._cancels import cancel_row, store_cancels
from ._constraint_changes import store_constraints
from ._engine import WRITE
from ._errors import from_database_error
from ._gaps import add_gaps
from ._inserts import insert_for, insert_new
from ._received import Received
from ._records import Stored
from ._rollup import add_executions
from ._schema import presence, run_events, runs, task_events
from ._text import checked_id, clean
from ._times import parse_time

__all__ = ["TRANSIENT", "store_batch"]

TRANSIENT = (
    sa.exc.OperationalError,
    sa.exc.InterfaceError,
    sa.exc.TimeoutError,
    sa.exc.DisconnectionError,
)
"""Database errors that say nothing of the batch (no connection, no disk, locked): retry later."""


_FINISHED = ("COMPLETED", "FAILED")  # an execution's end: what the rollup counts
_INT64 = 2**63 - 1  # the BIGINT columns (numbers, counters, sessions)
_INT32 = 2**31 - 1  # the INTEGER column (a run's planned tasks)


def _bounded(value: int | None, name: str, top: int = _INT64) -> int | None:
    """``value`` if its column can hold it (JSON integers have no bound); else rejected."""
    if value is not None and not -top - 1 <= value <= top:
        raise InvalidMessageError(f"{name} is out of range: {str(value)[:30]}", f"$.{name}")
    return value


def _time(value: str) -> float:
    when = parse_time(value)
    if when is None:
        raise InvalidMessageError(f"not a timestamp: {value[:64]!r}", "$.ts")
    return when


def _held_by(event: TaskStateEvent) -> list[Any] | None:
    """A BLOCKED event's holds as JSON (at most :data:`MAX_HOLDS`), ``None`` without any."""
    if isinstance(event.held_by, msgspec.UnsetType):
        return None
    holds: list[Any] = msgspec.to_builtins(event.held_by[:MAX_HOLDS])
    return holds


@dataclass
class _Rows:
    """A batch turned into rows, and each run's changes merged into one."""

    task_events: list[dict[str, Any]] = field(default_factory=list)
    run_events: list[dict[str, Any]] = field(default_factory=list)
    presence: list[dict[str, Any]] = field(default_factory=list)
    constraints: list[Received] = field(default_factory=list)
    cancels: list[dict[str, Any]] = field(default_factory=list)
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    heartbeats: int = 0
    rejected: int = 0
    _ids: dict[tuple[str, str], str] = field(default_factory=dict)  # checked ids of this batch

    def _id(self, value: str, name: str) -> str:
        checked = self._ids.get((value, name))
        if checked is None:
            checked = self._ids[(value, name)] = checked_id(value, name)
        return checked

    def add(self, item: Received) -> None:
        message = item.message
        try:
            if isinstance(message, Envelope):
                self._envelope(message)
            elif isinstance(message, StatusMessage):
                self._status(item, message)
            elif isinstance(message, CancelReply):
                self.cancels.append(cancel_row(item))
            else:
                self.constraints.append(item)
        except InvalidMessageError:
            self.rejected += 1

    def _envelope(self, envelope: Envelope) -> None:
        # everything is checked before anything changes: a rejected message leaves no trace
        run_id = self._id(envelope.run_id, "run_id")
        org_id = self._id(envelope.org_id, "org_id")
        project_id = self._id(envelope.project_id, "project_id")
        source = self._id(envelope.source, "source")
        ts = _time(envelope.ts)
        seq = _bounded(envelope.seq, "seq") if isinstance(envelope.seq, int) else None
        trace_id = envelope.trace_id if isinstance(envelope.trace_id, str) else None
        body = envelope.body
        if isinstance(body, TaskStateEvent):
            self.task_events.append(
                {
                    "run_id": run_id,
                    "seq": seq,
                    "task_id": clean(body.task_id),
                    "task_name": clean(body.task_name),
                    "state": body.reader_state,
                    "ts": ts,
                    "duration_ms": body.duration_ms,
                    "error": clean(truncate_error(body.error), None) if body.error else "",
                    "held_by": _held_by(body),
                }
            )
            run = self._run(run_id, org_id, project_id, source, ts)
        elif isinstance(body, LifecycleEvent):
            error = None if body.error is None else clean(truncate_error(body.error), None)
            tasks = _bounded(body.tasks, "body.tasks", _INT32)
            self.run_events.append(
                {
                    "run_id": run_id,
                    "seq": seq,
                    "event": body.event,
                    "ts": ts,
                    "status": body.status,
                    "error": error,
                    "tasks": tasks,
                }
            )
            run = self._run(run_id, org_id, project_id, source, ts)
            if body.event == "ENGINE_STARTED":
                if tasks is not None:
                    run["planned_tasks"] = tasks
            elif run["ended_at"] is None:  # the first end seen wins, as in the upsert
                run["ended_at"] = ts
                run["status"] = "Cancelled" if body.cancelled else body.status or "Finished"
                run["error"] = error
        else:
            assert isinstance(body, Heartbeat)
            dropped = _bounded(body.dropped_telemetry, "body.dropped_telemetry") or 0
            if isinstance(body.last_seq, int):
                seq = _bounded(body.last_seq, "body.last_seq")
            run = self._run(run_id, org_id, project_id, source, ts)
            run["dropped_telemetry"] = max(run["dropped_telemetry"], dropped)
            self.heartbeats += 1
        if seq is not None and (run["last_seq"] is None or seq > run["last_seq"]):
            run["last_seq"] = seq
        if trace_id is not None and run["trace_id"] is None:
            run["trace_id"] = trace_id

    def _run(
        self, run_id: str, org_id: str, project_id: str, source: str, ts: float
    ) -> dict[str, Any]:
        """The run's change in this batch (made on its first event), moved to ``ts``."""
        run = self.runs.get(run_id)
        if run is None:
            run = self.runs[run_id] = {
                "run_id": run_id,
                "org_id": org_id,
                "project_id": project_id,
                "source": source,
                "started_at": ts,
                "last_ts": ts,
                "ended_at": None,
                "status": "Running",
                "error": None,
                "planned_tasks": None,
                "dropped_telemetry": 0,
                "last_seq": None,
                "trace_id": None,
            }
        elif ts < run["started_at"]:
            run["started_at"] = ts
        elif ts > run["last_ts"]:
            run["last_ts"] = ts
        return run

    def _status(self, item: Received, status: StatusMessage) -> None:
        source = checked_id(status.source or item.topic.rsplit("/", 1)[-1], "source")
        ts = _time(status.ts) if status.ts else 0.0
        reason = None if status.reason is None else clean(status.reason)
        self.presence.append(
            {
                "source": source,
                "status": status.status,
                "session": _bounded(status.session, "session") or 0,
                "ts": ts,
                "received_at": item.received_at,
                "reason": reason,
                "conflict_session": _bounded(status.conflict_session, "conflict_session"),
            }
        )


def _upsert_runs(connection: sa.Connection, changes: list[dict[str, Any]]) -> None:
    """Insert new runs, and move known ones forward only (see the module's docs)."""
    if not changes:
        return
    statement = insert_for(connection)(runs)
    new = statement.excluded
    old = runs.c

    def least(column: str) -> Any:
        return sa.case((new[column] < old[column], new[column]), else_=old[column])

    def greatest(column: str) -> Any:
        return sa.case(
            (old[column].is_(None), new[column]),
            (new[column] > old[column], new[column]),
            else_=old[column],
        )

    first_end = old.ended_at.is_(None) & new.ended_at.is_not(None)
    statement = statement.on_conflict_do_update(
        index_elements=[runs.c.run_id],
        set_={
            "started_at": least("started_at"),
            "last_ts": greatest("last_ts"),
            "ended_at": sa.func.coalesce(old.ended_at, new.ended_at),
            "status": sa.case((first_end, new.status), else_=old.status),
            "error": sa.case((first_end, new.error), else_=old.error),
            "planned_tasks": sa.func.coalesce(new.planned_tasks, old.planned_tasks),
            "dropped_telemetry": greatest("dropped_telemetry"),
            "last_seq": greatest("last_seq"),
            "trace_id": sa.func.coalesce(old.trace_id, new.trace_id),  # one per run: the first
        },
    )
    connection.execute(statement, changes)


def _write(connection: sa.Connection, rows: _Rows) -> int:
    """Write ``rows``; the messages that added to the history."""
    te = task_events.c
    inserted = insert_new(
        connection, task_events, rows.task_events, (te.run_id, te.task_name, te.ts, te.state,
                                                    te.duration_ms)
    )  # fmt: skip
    add_executions(connection, [row for row in inserted if row.state in _FINISHED])
    new = len(inserted)
    new += len(insert_new(connection, run_events, rows.run_events))
    new += len(insert_new(connection, presence, rows.presence))
    # in one order: two writers upserting the same runs wait for each other, never deadlock
    _upsert_runs(connection, [rows.runs[run_id] for run_id in sorted(rows.runs)])
    new += store_constraints(connection, rows.constraints)
    new += store_cancels(connection, rows.cancels)
    return new + rows.heartbeats


def store_batch(
    engine: sa.Engine, batch: Sequence[Received], gaps: list[dict[str, Any]] | None = None
) -> Stored:
    """Store ``batch``, and add ``gaps`` (:func:`gap_rows`), in one transaction, and say what
    became of the batch's messages.

    Raises :class:`HistoryError` when the database cannot be written now
    (:data:`TRANSIENT`): nothing of the batch was stored, and all of it may be
    given again. A message the database refuses (not its connection) is rejected.
    """
    rows = _Rows()
    for item in batch:
        rows.add(item)
    valid = len(batch) - rows.rejected
    if valid == 0 and not gaps:
        return Stored(rejected=rows.rejected)
    try:
        with engine.connect() as connection, connection.execution_options(**WRITE).begin():
            new = _write(connection, rows) if valid else 0
            add_gaps(connection, gaps or [])
    except TRANSIENT as exc:
        raise from_database_error("cannot write the history", exc) from None
    except (sa.exc.SQLAlchemyError, TypeError, ValueError, ArithmeticError):  # the content
        if not batch:
            return Stored()  # counts the database refuses: not kept
        if gaps:  # the batch without the counts, then the counts on their own
            result = store_batch(engine, batch)
            store_batch(engine, [], gaps)
            return result
        if len(batch) == 1:
            return Stored(rejected=1)
        half = len(batch) // 2
        first, second = store_batch(engine, batch[:half]), store_batch(engine, batch[half:])
        return Stored(
            first.stored + second.stored,
            first.duplicates + second.duplicates,
            first.rejected + second.rejected,
        )
    return Stored(new, valid - new, rows.rejected)
