"""A batch of received messages turned into the rows a transaction writes (:class:`Rows`).

Each message is checked whole before anything of it is kept: one the protocol or the columns
refuse (an id, a time, a number out of range) is counted as rejected and leaves no trace, an
event of a run from another source than the run's is counted as refused. Each run's changes in
the batch are merged into one row (its earliest and latest times, its first end, its highest
numbers), which the upsert then moves forward only.

This runs once per event stored, in the writer's thread: the ids of a batch are checked once
per run, a timestamp the recorder's callback read is not read again (:class:`Timed`), and a
task's holds are written as the JSON text the column stores.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec

from cascade.interfaces import (
    Envelope,
    Heartbeat,
    InvalidMessageError,
    LifecycleEvent,
    StatusMessage,
    TaskStateEvent,
    decode_level,
)
from cascade.interfaces.commands import CancelReply, DecisionReply
from cascade.interfaces.logs import LogBatch
from cascade.interfaces.notes import IssuedNote
from cascade.interfaces.wire import MAX_HOLDS, truncate_error, truncate_traceback
from cascade.reader import REASON_BEYOND, REASON_FOREIGN

from .._received import Received, Timed
from .._text import checked_id, clean
from .._times import parse_time
from ..audit._cancels import cancel_row
from ..audit._decisions import decision_row
from ..audit._lineage import origin_columns
from ..audit._witness import issued_row
from ..queries._graphs import graph_row
from ..store._inserts import INT64
from ._log_rows import LogRows, OutOfBoundsError, log_batch_ids
from ._owners import Owner

__all__ = ["Rows"]

_INT32 = 2**31 - 1  # the INTEGER column (a run's planned tasks)
_NO_HOLDS = json.dumps(None)  # what the held_by column stores for an event without holds
# the states whose traceback is kept: a failure, and a failed task held for a decision
_FAILURES = frozenset({"FAILED", "RETRYING", "BLOCKED"})


def _bounded(value: int | None, name: str, top: int = INT64) -> int | None:
    """``value`` if its column can hold it (JSON integers have no bound); else rejected."""
    if value is not None and not -top - 1 <= value <= top:
        raise InvalidMessageError(f"{name} is out of range: {str(value)[:30]}", f"$.{name}")
    return value


def _time(value: str) -> float:
    when = parse_time(value)
    if when is None:
        raise InvalidMessageError(f"not a timestamp: {value[:64]!r}", "$.ts")
    return when


def _held_by(event: TaskStateEvent) -> str:
    """A BLOCKED event's holds (at most :data:`MAX_HOLDS`) as the JSON text stored, as
    ``json.dumps`` writes it (what SQLAlchemy's JSON type would bind); ``null`` without any."""
    if isinstance(event.held_by, msgspec.UnsetType):
        return _NO_HOLDS
    return json.dumps(msgspec.to_builtins(event.held_by[:MAX_HOLDS]))


def _traceback(event: TaskStateEvent) -> str | None:
    """A failed attempt's traceback as stored (bounded as an engine sends it); ``None`` on a
    state that is not a failure, or a stopped task's."""
    if event.state not in _FAILURES or event.cancelled is True or not event.traceback:
        return None
    if event.state == "BLOCKED" and event.held is None:
        return None
    return clean(truncate_traceback(str(event.traceback)), None)


def _decided(event: TaskStateEvent) -> str:
    """The decision an event came of (:class:`~cascade.interfaces.commands.Decided`) as the
    JSON text stored; ``null`` without one."""
    if isinstance(event.decided, msgspec.UnsetType):
        return _NO_HOLDS
    return json.dumps(msgspec.to_builtins(event.decided))


def _state(event: TaskStateEvent) -> str:
    """The state a reader shows (``CANCELLED``, ``HELD``), which the history stores."""
    if event.held_by is msgspec.UNSET and event.cancelled is not True:
        return event.state
    return event.reader_state


def _ids(envelope: Envelope) -> tuple[str, str, str, str]:
    """The envelope's run, org, project and source ids as stored (``InvalidMessageError``)."""
    return (
        checked_id(envelope.run_id, "run_id"),
        checked_id(envelope.org_id, "org_id"),
        checked_id(envelope.project_id, "project_id"),
        checked_id(envelope.source, "source"),
    )


class Rows:
    """A batch turned into rows (:meth:`add` each message), each run's changes merged into one.

    ``owners``: the runs' sources as stored and what vouches for them (``_owners``), which
    the batch's events must come from (a run new to the history belongs to the source of its
    first event in the batch, or to the one ``owners`` names with what vouches for it).
    ``log_seqs``: per run, the highest log batch number stored, which a batch's is bounded by.
    """

    def __init__(
        self,
        owners: dict[str, Owner] | None = None,
        withdrawn: set[tuple[str, int]] | None = None,
        log_seqs: dict[str, int] | None = None,
    ) -> None:
        known = owners if owners is not None else {}
        self.owners = {run_id: source for run_id, (source, _) in known.items()}
        self._vouched = {run_id: why for run_id, (_, why) in known.items() if why is not None}
        self.claims: dict[tuple[str, str], tuple[int, float]] = {}
        """Messages refused as another source's, per run and that source."""
        self._withdrawn = withdrawn or set()  # (run_id, seq): events displaced, not stored
        self.task_events: list[dict[str, Any]] = []
        self.reused_events: list[dict[str, Any]] = []
        """Task events of a reused result (``reused_from``) or a cache's (``cached``): inserted
        apart."""
        self.origins: dict[str, dict[str, Any]] = {}
        """Per run, the name and origin of its ``ENGINE_STARTED`` in the batch (the first)."""
        self.graphs: dict[str, dict[str, Any]] = {}
        """Per run, the graph (or its size) of its ``ENGINE_STARTED`` in the batch (the first)."""
        self.run_events: list[dict[str, Any]] = []
        self.presence: list[dict[str, Any]] = []
        self.constraints: list[Received] = []
        self.cancels: list[dict[str, Any]] = []
        self.decisions: list[dict[str, Any]] = []
        self.issued: list[dict[str, Any]] = []
        self.logs = LogRows(log_seqs)
        self.runs: dict[str, dict[str, Any]] = {}
        self.refusals: dict[tuple[str, str], tuple[int, float]] = {}
        self.heartbeats = 0
        self.rejected = 0
        self.refused = 0
        self._ids: dict[tuple[str, str, str, str], tuple[str, str, str, str]] = {}

    def add(self, item: Received) -> None:
        """Add one message's rows, or count it as rejected or refused."""
        message = item.message
        try:
            if isinstance(message, Envelope):
                self._envelope(message, item)
            elif isinstance(message, StatusMessage):
                self._status(item, message)
            elif isinstance(message, (CancelReply, DecisionReply)):
                row = cancel_row(item) if isinstance(message, CancelReply) else decision_row(item)
                if self._owner(row["run_id"]) != row["source"]:
                    raise InvalidMessageError("not from the engine of a run the history knows")
                (self.cancels if isinstance(message, CancelReply) else self.decisions).append(row)
            elif isinstance(message, LogBatch):
                self._log_batch(item, message)
            elif isinstance(message, IssuedNote):
                self.issued.append(issued_row(item))
            else:
                self.constraints.append(item)
        except InvalidMessageError:
            self.rejected += 1

    def _owner(self, run_id: str) -> str | None:
        """The source that owns ``run_id``: stored, or the first of this batch."""
        owner = self.owners.get(run_id)
        if owner is None:
            run = self.runs.get(run_id)
            owner = None if run is None else run["source"]
        return owner

    def _log_batch(self, item: Received, batch: LogBatch) -> None:
        run_id, source = log_batch_ids(batch)
        owner = self._owner(run_id)
        if owner is not None and owner != source:
            self._refuse(run_id, REASON_FOREIGN, item.received_at, source)
            return
        try:
            self.logs.add(batch, run_id, source, item.received_at)
        except OutOfBoundsError:
            self._refuse(run_id, REASON_BEYOND, item.received_at)
            return
        if owner is None:  # a run heard of first by its logs: theirs
            self.owners[run_id] = source

    def _refuse(self, run_id: str, reason: str, at: float, source: str | None = None) -> None:
        count, last = self.refusals.get((run_id, reason), (0, at))
        self.refusals[(run_id, reason)] = (count + 1, max(last, at))
        self.refused += 1
        if source is not None:  # another source's claim on the run
            count, last = self.claims.get((run_id, source), (0, at))
            self.claims[(run_id, source)] = (count + 1, max(last, at))

    def claim_rows(self) -> list[dict[str, Any]]:
        """The ``run_claims`` changes of the messages refused as another source's."""
        return [
            {"run_id": run_id, "source": source, "refused": count, "set_aside": 0, "last_at": at}
            for (run_id, source), (count, at) in sorted(self.claims.items())
        ]

    def _envelope(self, envelope: Envelope, item: Received) -> None:
        # everything is checked before anything changes: a rejected message leaves no trace
        key = (envelope.run_id, envelope.org_id, envelope.project_id, envelope.source)
        ids = self._ids.get(key)
        if ids is None:
            ids = self._ids[key] = _ids(envelope)
        run_id = ids[0]
        received_at = item.received_at
        run = self.runs.get(run_id)
        owner = self.owners.get(run_id)
        if owner is None and run is not None:
            owner = run["source"]
        if owner is not None and owner != ids[3]:
            self._refuse(run_id, REASON_FOREIGN, received_at, ids[3])
            return
        if self._withdrawn and (run_id, envelope.seq) in self._withdrawn:
            self._refuse(run_id, REASON_BEYOND, received_at)
            return
        ts = item.at if isinstance(item, Timed) else parse_time(envelope.ts)
        if ts is None:
            raise InvalidMessageError(f"not a timestamp: {envelope.ts[:64]!r}", "$.ts")
        seq = _bounded(envelope.seq, "seq") if isinstance(envelope.seq, int) else None
        body = envelope.body
        if isinstance(body, TaskStateEvent):  # the most of them, written the shortest way
            said = body.error
            row = {
                "run_id": run_id,
                "seq": seq,
                "task_id": clean(body.task_id),
                "task_name": clean(body.task_name),
                "state": _state(body),
                "ts": ts,
                "duration_ms": body.duration_ms,
                "error": clean(truncate_error(said), None) if said else "",
                "held_by": _NO_HOLDS if body.held_by is msgspec.UNSET else _held_by(body),
                "traceback": None if body.traceback is msgspec.UNSET else _traceback(body),
                "decided": _NO_HOLDS if body.decided is msgspec.UNSET else _decided(body),
            }
            if body.reused_from is msgspec.UNSET and body.cached is msgspec.UNSET:
                self.task_events.append(row)
            else:  # a reuse or a cache's result, rare: its own insert, the others pay no column
                reused = body.reused_from
                row["reused_from"] = None if reused is msgspec.UNSET else clean(reused)
                row["cached"] = True if body.cached is True else None
                self.reused_events.append(row)
            run = self._run(run_id, ids, ts, received_at)
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
            run = self._run(run_id, ids, ts, received_at)
            if body.event == "ENGINE_STARTED":
                if tasks is not None:
                    run["planned_tasks"] = tasks
                if body.name is not None or body.origin is not None:
                    self.origins.setdefault(run_id, origin_columns(body))
                if body.graph is not None or body.graph_nodes is not None:
                    self._graph(run_id, body)
            elif run["ended_at"] is None:  # the first end seen wins, as in the upsert
                run["ended_at"] = ts
                run["status"] = "Cancelled" if body.cancelled else body.status or "Finished"
                run["error"] = error
        else:
            assert isinstance(body, Heartbeat)
            dropped = _bounded(body.dropped_telemetry, "body.dropped_telemetry") or 0
            if isinstance(body.last_seq, int):
                seq = _bounded(body.last_seq, "body.last_seq")
            run = self._run(run_id, ids, ts, received_at)
            run["dropped_telemetry"] = max(run["dropped_telemetry"], dropped)
            self.heartbeats += 1
        if seq is not None and (run["last_seq"] is None or seq > run["last_seq"]):
            run["last_seq"] = seq
        if isinstance(envelope.trace_id, str) and run["trace_id"] is None:
            run["trace_id"] = envelope.trace_id

    def _graph(self, run_id: str, body: LifecycleEvent) -> None:
        """Keep the graph of a run's start, unless malformed: then only it is refused
        (counted rejected), the start is stored all the same."""
        try:
            row = graph_row(run_id, body)
        except InvalidMessageError:
            self.rejected += 1
            return
        if row is not None:
            self.graphs.setdefault(run_id, row)

    def _run(
        self, run_id: str, ids: tuple[str, str, str, str], ts: float, received_at: float
    ) -> dict[str, Any]:
        """The run's change in this batch (made on its first event), moved to ``ts`` and to
        ``received_at`` (when the message was received)."""
        run = self.runs.get(run_id)
        if run is None:
            run = self.runs[run_id] = {
                "run_id": run_id,
                "org_id": ids[1],
                "project_id": ids[2],
                "source": ids[3],
                "started_at": ts,
                "last_ts": ts,
                "ended_at": None,
                "status": "Running",
                "error": None,
                "planned_tasks": None,
                "dropped_telemetry": 0,
                "last_seq": None,
                "trace_id": None,
                "received_at": received_at,
                "last_received_at": received_at,
                "vouched": self._vouched.get(run_id) if self.owners.get(run_id) == ids[3] else None,
            }
            return run
        if ts < run["started_at"]:
            run["started_at"] = ts
        elif ts > run["last_ts"]:
            run["last_ts"] = ts
        if received_at < run["received_at"]:
            run["received_at"] = received_at
        if received_at > run["last_received_at"]:
            run["last_received_at"] = received_at
        return run

    def _status(self, item: Received, status: StatusMessage) -> None:
        source = checked_id(status.source or decode_level(item.topic.rsplit("/", 1)[-1]), "source")
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
