"""The runs' and their tasks' bookkeeping: task states, engines' answers, blocked tasks, and
which runs a reader forgets."""

from __future__ import annotations

from cascade.interfaces import Envelope, Heartbeat, Hold, RunSnapshot, SnapshotTask, TaskStateEvent
from cascade.interfaces.commands import Decided
from cascade.interfaces.serving import RunOrigin
from cascade.interfaces.wire import (
    MAX_BLOCKED_TASKS,
    MAX_HOLDERS,
    MAX_HOLDS,
    BlockedTask,
    truncate_traceback,
    waiting_state,
)

from ._bounded_text import KEPT, truncate
from ._gaps import GapCounter, Seen
from ._timestamps import parse_timestamp
from ._views import RunView, TaskView

__all__ = [
    "apply_blocked",
    "apply_snapshot",
    "apply_task",
    "kept_holds",
    "numbered",
    "silent_or_excess_runs",
]

# The states whose traceback is kept (not CANCELLED), and those whose holds are.
_FAILURES = frozenset({"FAILED", "RETRYING", "HELD"})
_WAITING = frozenset({"BLOCKED", "HELD", "QUEUED"})


def apply_task(run: RunView, body: TaskStateEvent, ts: str, seq: int, entered: float) -> None:
    """A task's new state, unless a copy or older than what is shown; ``entered``: since when
    it is in that state (when it was heard; for a late event, when its engine sent it)."""
    task = run.tasks.get(body.task_id)
    state = body.reader_state
    since = entered
    if task is not None:
        if seq and task.seq:
            if seq <= task.seq:
                return  # a copy, or older than what is shown (the engine numbered both)
        elif seq and state == task.state and state in _WAITING:
            # a heartbeat said it waits, naming no error and no number (a snapshot's entry,
            # older than the heartbeat, tells the rest): since when is the heartbeat's
            since = task.since
        elif ts < task.ts or (ts == task.ts and state == task.state):
            return  # a copy resent after a lost connection, or older than what is shown
    decided = body.decided
    if isinstance(decided, Decided) and not decided.deadline:
        by = None if decided.by is None else truncate(decided.by, KEPT["name"])
        run.count_decision(body.task_id, decided.attempt, decided.decision, by)
    held = kept_holds(body.held_by) if isinstance(body.held_by, list) else None
    said = body.traceback  # a failed attempt's, bounded as an engine sends it
    traceback = truncate_traceback(said) if said and state in _FAILURES else None
    reused_from = body.reused_from if isinstance(body.reused_from, str) else None
    reused = None
    if state == "COMPLETED":
        if body.cached is True:
            reused = "cached"
        elif reused_from is not None:
            reused = "reused"
    # a map's size is said once, on its RUNNING: kept while its later states do not say it
    items = body.items if isinstance(body.items, int) else task.items if task else None
    run.set_task(
        TaskView(
            body.task_id,
            truncate(body.task_name, KEPT["name"]),
            state,
            since,
            body.duration_ms,
            truncate(body.error, KEPT["error"]),
            ts,
            held if state in _WAITING else None,
            seq,
            traceback,
            reused,
            reused_from if reused is not None else None,  # at most 1,024 characters: decoded
            items,
        )
    )


def apply_snapshot(
    run: RunView, gaps: GapCounter, source: str, body: RunSnapshot, now: float
) -> Seen | None:
    """One part of the engine's answer: its tasks as their latest events; once every part
    of the answer is in, what the reader missed up to ``through`` is made good. The part is
    one :func:`~._answers.answer_refusal` took.

    :attr:`~Seen.NEW`: the answer is whole now; :attr:`~Seen.BEYOND`: a task's number (or
    ``through``) is beyond what the run's engine can have sent (:data:`~._gaps.MAX_SEQ_JUMP`), and
    none of the part's tasks is taken (the caller counts it, as the history does); ``None``:
    the part is taken (or the run has ended) and the answer awaits its other parts."""
    if run.finished:
        return None
    entry: SnapshotTask
    for entry in body.tasks:  # as the history checks an answer's numbers: before any is taken
        if gaps.see(source, run.run_id, entry.seq) is Seen.BEYOND:
            return Seen.BEYOND
    if run.planned is None and body.planned is not None:
        run.planned = body.planned
    if run.name is None and isinstance(body.name, str):
        run.name = body.name
    if run.origin is None and isinstance(body.origin, RunOrigin):
        run.origin = body.origin
    for entry in body.tasks:
        # the entry is the task's latest event, sent when it entered its state: not now
        sent = parse_timestamp(entry.ts)
        apply_task(run, entry.event(), entry.ts, entry.seq, now if sent is None else min(sent, now))
    key = (body.after, body.through, body.last_seq, body.parts)
    if run.answer_key != key:
        run.answer_key, run.answer_parts, run.answer_tasks = key, set(), 0
    run.answer_parts.add(body.part)
    run.answer_tasks += len(body.tasks)
    if len(run.answer_parts) < body.parts:
        return None
    run.answer_key, run.answer_parts, run.answer_tasks = None, set(), 0
    if gaps.settle(source, run.run_id, body.through) is Seen.BEYOND:
        return Seen.BEYOND  # its tasks are taken, but not that it is whole: asked again
    run.joined_late = False  # what it still lacks (a cut answer) are holes: asked again
    return Seen.NEW


def apply_blocked(run: RunView, blocked: list[BlockedTask], ts: str, now: float) -> None:
    """A heartbeat's blocked tasks: what holds each now, and those the reader never saw (a task
    held for a decision is ``HELD``, one that waits for a worker ``QUEUED``)."""
    for item in blocked[:MAX_BLOCKED_TASKS]:
        task = run.tasks.get(item.task_id)
        held = kept_holds(item.held_by)
        state = waiting_state("BLOCKED", item.held_by)
        if task is None:
            since = item.since if item.since is not None else now
            name = truncate(item.task_name, KEPT["name"])
            run.set_task(TaskView(item.task_id, name, state, since, ts=ts, held_by=held))
        elif task.state == state:
            task.held_by = held


def numbered(envelope: Envelope) -> bool:
    """Whether the message's engine numbers its events (one that does not cannot say what a
    reader missed, nor answer for it)."""
    body = envelope.body
    return (
        isinstance(envelope.seq, int)
        or isinstance(body, RunSnapshot)
        or (isinstance(body, Heartbeat) and isinstance(body.last_seq, int))
    )


def kept_holds(holds: list[Hold]) -> tuple[Hold, ...]:
    """At most ``MAX_HOLDS`` holds, their texts cut to what a reader keeps."""
    kept = []
    for hold in holds[:MAX_HOLDS]:
        for name in ("scope", "reason", "issued_by", "rate", "resource", "ahead"):
            text = getattr(hold, name)
            if text is not None and len(text) > KEPT["reason"]:
                setattr(hold, name, truncate(text, KEPT["reason"]))
        if hold.holders is not None:
            most = sorted(hold.holders.items(), key=lambda item: -item[1])[:MAX_HOLDERS]
            hold.holders = {truncate(name, KEPT["name"]): n for name, n in most}
        if hold.users is not None:
            largest = sorted(hold.users.items(), key=lambda item: -item[1])[:MAX_HOLDERS]
            hold.users = {truncate(task_id, KEPT["name"]): n for task_id, n in largest}
        kept.append(hold)
    return tuple(kept)


def silent_or_excess_runs(
    runs: dict[str, RunView], now: float, keep_for: float | None, max_runs: int
) -> list[str]:
    """Unfinished runs not heard from for ``keep_for`` seconds (their engine died before
    their end), and beyond ``max_runs`` the least recently heard, some maybe twice (see
    :meth:`ReaderModel.prune`; finished runs go by the order they finished in)."""
    doomed: list[str] = []
    if keep_for is not None:
        horizon = now - keep_for
        doomed = [
            run_id
            for run_id, run in runs.items()
            if run.finished_at is None and run.last_heard < horizon
        ]
    if len(runs) > max_runs:
        by_age = sorted(runs.values(), key=lambda run: run.last_heard)
        doomed.extend(run.run_id for run in by_age[: len(by_age) - max_runs * 9 // 10])
    return doomed
