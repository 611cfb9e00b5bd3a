"""Writing a batch of received messages in one transaction, each event stored once.

Every event is inserted with ``ON CONFLICT DO NOTHING`` against its identity
index (``_schema``), so a copy is ignored by the database itself, whichever
writer stored the first. A run's row is upserted with rules that only move
it forward (earliest start, latest time, first end, highest counters), so
copies and events arriving out of order never take it back.

A run belongs to the source stored for it (or, new, to the first of the batch), unless a
source something vouches for takes it over from one nothing did (``_owners``): an
event of it from another source is refused (``foreign source``, counted per run in
``run_refusals`` and per source in ``run_claims``), and an engine's answer to a cancel is
stored only from that source, for a run the history knows (else rejected: see
``_cancels``). So the rule of the recorder's callback holds for a recorder restarted, and
for one that shares the stream.

The rows are made by ``_rows`` (what is rejected or refused, and why) and written by
``_bulk`` (the events) and SQLAlchemy (the rest). Text from the broker is stored as
``_text`` says (NUL and lone surrogates escaped, fields bounded). A batch the database
refuses for its content (not for its connection) is stored in halves, down to the message
at fault, which is rejected: one bad message never holds up the others.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from cascade.interfaces import InvalidMessageError
from cascade.reader import REASON_BEYOND, SourceGaps

from .._errors import from_database_error
from .._received import Received
from .._text import checked_id, clean
from ..audit._cancels import store_cancels
from ..audit._constraint_changes import store_constraints
from ..audit._decisions import store_decisions
from ..audit._lineage import set_origins
from ..audit._witness import store_issued
from ..queries._graphs import store_graphs
from ..records._records import Stored
from ..store._bulk import insert_rows
from ..store._engine import WRITE
from ..store._inserts import INT64, adding_upsert, bounded_sum, insert_for, insert_new
from ..store._schema import presence, run_events, run_refusals, runs, source_gaps, task_events
from ._log_ingest import store_logs, stored_last_seqs
from ._owners import add_claims, set_aside_displaced, settle_owners, stored_owners
from ._rollup import add_executions
from ._rows import Rows

__all__ = ["TRANSIENT", "gap_rows", "refusal_rows", "store_batch"]

TRANSIENT = (
    sa.exc.OperationalError,
    sa.exc.InterfaceError,
    sa.exc.TimeoutError,
    sa.exc.DisconnectionError,
)
"""Database errors that say nothing of the batch (no connection, no disk, locked): retry later."""


_FINISHED = ("COMPLETED", "FAILED")  # an execution's end: what the rollup counts
_EXECUTION = ("run_id", "task_name", "ts", "state", "duration_ms")  # what the rollup adds up


def _upsert_runs(connection: sa.Connection, changes: list[dict[str, Any]]) -> None:
    """Insert new runs, and move known ones forward only (see the module's docs)."""
    if changes:
        connection.execute(_runs_upsert(connection.dialect.name), changes)


@functools.cache
def _runs_upsert(dialect: str) -> Any:
    """The runs' upsert on ``dialect`` (made once: building it costs more than a small batch)."""
    statement = insert_for(dialect)(runs)
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
    return statement.on_conflict_do_update(
        index_elements=[runs.c.run_id],
        set_={
            "started_at": least("started_at"),
            "last_ts": greatest("last_ts"),
            "received_at": least("received_at"),
            "last_received_at": greatest("last_received_at"),
            "ended_at": sa.func.coalesce(old.ended_at, new.ended_at),
            "status": sa.case((first_end, new.status), else_=old.status),
            "error": sa.case((first_end, new.error), else_=old.error),
            "planned_tasks": sa.func.coalesce(new.planned_tasks, old.planned_tasks),
            "dropped_telemetry": greatest("dropped_telemetry"),
            "last_seq": greatest("last_seq"),
            "trace_id": sa.func.coalesce(old.trace_id, new.trace_id),  # one per run: the first
            "vouched": sa.func.coalesce(old.vouched, new.vouched),
        },
    )


def _write(connection: sa.Connection, rows: Rows) -> int:
    """Write ``rows``; the messages that added to the history."""
    inserted = insert_rows(connection, task_events, rows.task_events, _EXECUTION)
    add_executions(connection, [row for row in inserted if row[3] in _FINISHED])
    new = len(inserted)
    if rows.reused_events:  # a result reused is no execution: the rollup does not count it
        new += len(insert_rows(connection, task_events, rows.reused_events, ("id",)))
    new += len(insert_rows(connection, run_events, rows.run_events, ("id",)))
    new += len(insert_new(connection, presence, rows.presence))
    # in one order: two writers upserting the same runs wait for each other, never deadlock
    _upsert_runs(connection, [rows.runs[run_id] for run_id in sorted(rows.runs)])
    set_origins(connection, rows.origins)  # the same runs, in the same order: no lock more
    if rows.graphs:
        store_graphs(connection, [rows.graphs[run_id] for run_id in sorted(rows.graphs)])
    new += store_constraints(connection, rows.constraints)
    new += store_cancels(connection, rows.cancels)
    new += store_decisions(connection, rows.decisions)
    new += store_issued(connection, rows.issued)
    new += store_logs(connection, rows.logs)
    return new + rows.heartbeats


def refusal_rows(refused: Mapping[tuple[str, str], int], at: float) -> list[dict[str, Any]]:
    """The ``run_refusals`` changes of ``refused`` (per run id and reason), at ``at`` (runs
    whose id the protocol refuses are left out: nothing of them is stored either)."""
    rows = []
    for (run_id, reason), count in sorted(refused.items()):
        try:
            checked = checked_id(run_id, "run_id")
        except InvalidMessageError:
            continue
        if count:
            rows.append(
                {
                    "run_id": checked,
                    "reason": reason[:32],
                    "refused": min(count, INT64),
                    "last_at": at,
                }
            )
    return rows


def _add_refusals(connection: sa.Connection, rows: list[dict[str, Any]]) -> None:
    """Add each row's ``refused`` to its run's count for its reason."""
    if rows:
        upsert = adding_upsert(
            connection.dialect.name, run_refusals, ("run_id", "reason"), ("refused",)
        )
        connection.execute(upsert, rows)


def gap_rows(gaps: Mapping[str, SourceGaps], recorder: str, now: float) -> list[dict[str, Any]]:
    """The ``source_gaps`` changes of a recorder's counts since its last write (sources that
    are not ids of the protocol are left out: they were never stored either; the recorder's
    name is kept to 1,024 bytes)."""
    recorder = clean(recorder)
    rows = []
    for source, counted in sorted(gaps.items()):
        try:
            source_id = checked_id(source, "source")
        except InvalidMessageError:
            continue
        if counted.missed:
            missed = max(-INT64, min(INT64, counted.missed))  # a Python int has no bound
            first = counted.since if counted.since is not None else now
            rows.append(
                {
                    "source": source_id,
                    "recorder": recorder,
                    "missed": missed,
                    "first_at": first,
                    "last_at": now,
                }
            )
    return rows


def add_gaps(connection: sa.Connection, rows: list[dict[str, Any]]) -> None:
    """Add each row's ``missed`` to its (source, recorder)'s count, keeping the first gap's time
    (and the count within 64 bits: a sum past them would cost the whole batch its counts)."""
    if not rows:
        return
    statement = insert_for(connection)(source_gaps)
    new, old = statement.excluded, source_gaps.c
    statement = statement.on_conflict_do_update(
        index_elements=[old.source, old.recorder],
        set_={
            "missed": bounded_sum(old.missed, new.missed),
            "first_at": sa.case((new.first_at < old.first_at, new.first_at), else_=old.first_at),
            "last_at": sa.case((new.last_at > old.last_at, new.last_at), else_=old.last_at),
        },
    )
    connection.execute(statement, rows)


def store_batch(
    engine: sa.Engine,
    batch: Sequence[Received],
    gaps: list[dict[str, Any]] | None = None,
    refused: list[dict[str, Any]] | None = None,
    vouched: Mapping[str, tuple[str, str]] | None = None,
    claims: list[dict[str, Any]] | None = None,
    displaced: Mapping[str, int] | None = None,
) -> Stored:
    """Store ``batch``, and add ``gaps`` (:func:`gap_rows`), ``refused``
    (:func:`refusal_rows`) and ``claims`` (:func:`claim_rows`), in one transaction, after
    what ``vouched`` says of the runs' sources (:func:`settle_owners`) and ``displaced``
    (:func:`set_aside_displaced`), and say what became of the batch's messages.

    Raises :class:`HistoryError` when the database cannot be written now
    (:data:`TRANSIENT`): nothing of the batch was stored, and all of it may be
    given again. A message the database refuses (not its connection) is rejected.
    """
    if not batch and not gaps and not refused and not vouched and not claims and not displaced:
        return Stored()
    try:
        with engine.connect() as connection, connection.execution_options(**WRITE).begin():
            owners = stored_owners(connection, batch, vouched or {})
            withdrawn = set_aside_displaced(connection, owners, displaced or {})
            set_aside = settle_owners(connection, owners, vouched or {}, time.time())
            rows = Rows(owners, withdrawn, stored_last_seqs(connection, batch))
            for item in batch:
                rows.add(item)
            valid = len(batch) - rows.rejected - rows.refused
            new = _write(connection, rows) if valid else 0
            batch_refusals = [
                {"run_id": run_id, "reason": reason, "refused": count, "last_at": at}
                for (run_id, reason), (count, at) in sorted(rows.refusals.items())
            ]
            lone = {(run_id, REASON_BEYOND): 1 for run_id in displaced or {}}
            batch_refusals += refusal_rows(lone, time.time())  # each displaced event
            _add_refusals(connection, batch_refusals + (refused or []))
            add_claims(connection, set_aside + rows.claim_rows() + (claims or []))
            add_gaps(connection, gaps or [])
    except TRANSIENT as exc:
        raise from_database_error("cannot write the history", exc) from None
    except (sa.exc.SQLAlchemyError, TypeError, ValueError, ArithmeticError):  # the content
        if not batch:
            return Stored()  # counts the database refuses: not kept
        if gaps or refused or vouched or claims or displaced:  # the batch, then the counts
            result = store_batch(engine, batch)
            store_batch(engine, [], gaps, refused, vouched, claims, displaced)
            return result
        if len(batch) == 1:
            return Stored(rejected=1)
        half = len(batch) // 2
        first, second = store_batch(engine, batch[:half]), store_batch(engine, batch[half:])
        return Stored(
            first.stored + second.stored,
            first.duplicates + second.duplicates,
            first.rejected + second.rejected,
            first.refused + second.refused,
        )
    return Stored(new, valid - new, rows.rejected, rows.refused)
