"""The dashboard's one adapter onto the watch state model (:class:`~cascade.cli.WatchState`).

Everything the pages see is read from the model here, and only here, so that the
dashboard follows the model wherever it goes. What the model does not keep yet is
kept beside it, bounded: each task's timeline (a segment per state it was in), when
and when a run was first and last heard of.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec

from cascade.interfaces import DEFAULT_PREFIX, Constraint, Message

from .._state import WatchState
from .._status_json import refused
from .._views import FINISHED_STATES, EngineView, RunView, TaskView

__all__ = ["DashboardModel", "Segment"]

#: Segments kept per task (its last attempts), and per run in all.
MAX_SEGMENTS_PER_TASK = 32
MAX_SEGMENTS_PER_RUN = 20_000
#: Runs listed in a snapshot: the running ones first, then the last heard of.
MAX_RUNS_SHOWN = 100


@dataclass(slots=True)
class Segment:
    """A task's time in one state: ``start`` to ``end`` (``None`` while it lasts).

    ``outcome`` is the state it ended in, so a RUNNING segment can be drawn as the
    attempt it was: completed, failed or retried.
    """

    state: str
    start: float
    end: float | None = None
    outcome: str | None = None


@dataclass
class _Timeline:
    """What the dashboard keeps of one run beside the model."""

    first_seen: float
    last_seen: float
    ended: float | None = None
    segments: int = 0
    truncated: int = 0
    tasks: dict[str, list[Segment]] = field(default_factory=dict)
    views: dict[str, TaskView] = field(default_factory=dict)  # the model drops a finished run's


class DashboardModel:
    """A :class:`WatchState` fed by the dashboard's one subscription, read as JSON-ready dicts.

    ``version`` rises with every message, so pages can tell whether anything changed.
    """

    def __init__(
        self,
        prefix: str = DEFAULT_PREFIX,
        clock: Callable[[], float] = time.time,
        *,
        max_segments_per_run: int = MAX_SEGMENTS_PER_RUN,
    ) -> None:
        self.state = WatchState(prefix=prefix, clock=clock)
        # imported here: the plain CLI imports this module, and prometheus-client comes with
        # the dashboard's extra only
        from ..metrics import CascadeMetrics

        self.metrics = CascadeMetrics(self.state)
        """The Prometheus metrics of what the model sees (``/metrics``); it folds the messages."""
        self.clock = clock
        self.version = 0
        self.max_segments_per_run = max_segments_per_run
        self._timelines: dict[str, _Timeline] = {}
        self._pruned = clock()

    @property
    def prefix(self) -> str:
        """The topic prefix the model reads."""
        return self.state.prefix

    @prefix.setter
    def prefix(self, value: str) -> None:
        self.state.prefix = value

    @property
    def kept_timelines(self) -> frozenset[str]:
        """The ids of the runs whose timelines are kept."""
        return frozenset(self._timelines)

    def apply(self, message: Message) -> None:
        """Fold one received message into the model (and its metrics), and the run's timeline."""
        self.metrics.apply(message)
        self.version += 1
        self._prune()
        run_id = message.payload.get("run_id") if "/telemetry/" in message.topic else None
        if isinstance(run_id, str):
            run = self.state.runs.get(run_id)
            if run is not None:
                self._record(run, message.payload.get("body"))

    def _record(self, run: RunView, body: Any) -> None:
        now = self.clock()
        line = self._timelines.get(run.run_id)
        if line is None:
            line = self._timelines[run.run_id] = _Timeline(first_seen=now, last_seen=now)
            self._forget_gone_runs()
        line.last_seen = now
        if run.status != "Running" and line.ended is None:
            line.ended = now
        elif run.status == "Running":
            line.ended = None
        task_id = body.get("task_id") if isinstance(body, dict) else None
        task = run.tasks.get(task_id) if isinstance(task_id, str) else None
        if task is None:
            return
        segments = line.tasks.get(task.task_id)
        if segments is not None:
            line.views[task.task_id] = task
        if segments and _drawn(segments[-1], task):
            return
        if segments is None:
            if line.segments >= self.max_segments_per_run:
                line.truncated += 1
                return
            segments = line.tasks[task.task_id] = []
            line.views[task.task_id] = task
        if segments and segments[-1].end is None:
            segments[-1].end = task.since
            segments[-1].outcome = task.state
        if task.state not in ("COMPLETED", "FAILED", "CANCELLED") or not segments:
            end = task.since if task.state in FINISHED_STATES else None
            if len(segments) >= MAX_SEGMENTS_PER_TASK:
                del segments[0]  # a task's last attempts are the ones worth drawing
            else:
                line.segments += 1
            segments.append(Segment(task.state, task.since, end, task.state if end else None))

    def _forget_gone_runs(self) -> None:
        """Drop the timelines of runs the model no longer holds (its bounds are ours)."""
        if len(self._timelines) > len(self.state.runs):
            for run_id in [r for r in self._timelines if r not in self.state.runs]:
                del self._timelines[run_id]

    def _prune(self) -> None:
        """Apply the model's bounds on finished runs, at most once a second."""
        now = self.clock()
        if now - self._pruned >= 1.0:
            self._pruned = now
            self.state.prune(now)
            self._forget_gone_runs()

    # -- reading -----------------------------------------------------------------------

    def snapshot(self, max_runs: int = MAX_RUNS_SHOWN) -> dict[str, Any]:
        """Engines, runs (summaries, at most ``max_runs``) and constraints in force, as dicts.

        ``runs_total`` says how many runs there are, listed or not.
        """
        state = self.state
        runs = list(state.runs.values())
        if len(runs) > max_runs:
            shown = {id(run) for run in heapq.nlargest(max_runs, runs, key=self._recency)}
            runs = [run for run in runs if id(run) in shown]
        return {
            "version": self.version,
            "now": self.clock(),
            "engines": [_engine(e) for e in sorted(state.engines.values(), key=lambda e: e.source)],
            "runs": [self._run_summary(run) for run in runs],
            "runs_total": len(state.runs),
            "constraints": [_constraint(t, c) for t, c in state.active_constraints()],
            "rejected": state.rejected,
            "oversized": state.oversized,
            "missed": [
                {"source": source, "events": gaps.missed, "since": gaps.since}
                for source, gaps in sorted(state.gaps.by_source.items())
                if gaps.missed
            ],
            "refused": refused(state),
        }

    def _recency(self, run: RunView) -> tuple[bool, float]:
        line = self._timelines.get(run.run_id)
        return run.status == "Running", line.last_seen if line else 0.0

    def _run_summary(self, run: RunView) -> dict[str, Any]:
        line = self._timelines.get(run.run_id)
        counts = run.counts()
        return {
            "run_id": run.run_id,
            "org_id": run.org_id,
            "project_id": run.project_id,
            "source": run.source,
            "status": run.status,
            "error": run.error,
            "trace_id": run.trace_id,  # the run's OpenTelemetry trace id, null if not traced
            "total": run.total_tasks,
            "finished": run.finished_tasks,
            "progress": run.progress,  # never goes backwards; None while the total is unknown
            "counts": dict(counts),
            # what this view lacks of the run until its engine answers (None: nothing known)
            "partial": self.state.partial(run),
            "started": line.first_seen if line else None,
            "ended": line.ended if line else None,
        }

    def run_detail(self, run_id: str) -> dict[str, Any] | None:
        """One run with each task's timeline and the failures, or ``None`` if unknown."""
        run = self.state.runs.get(run_id)
        if run is None:
            return None
        line = self._timelines.get(run_id)
        tasks = []
        for task in {**line.views, **run.tasks}.values() if line else run.tasks.values():
            segments = line.tasks.get(task.task_id, ()) if line else ()
            tasks.append(
                {
                    "task_id": task.task_id,
                    "name": task.name,
                    "state": task.state,
                    "since": task.since,
                    "duration_ms": task.duration_ms,
                    "error": task.error,
                    # what holds it back while BLOCKED (null: its engine did not say)
                    "held_by": (
                        msgspec.to_builtins(list(task.held_by))
                        if task.state == "BLOCKED" and task.held_by is not None
                        else None
                    ),
                    "attempts": sum(1 for s in segments if s.state == "RUNNING"),
                    "segments": [
                        {"state": s.state, "start": s.start, "end": s.end, "outcome": s.outcome}
                        for s in segments
                    ],
                }
            )
        failures = [
            {"task_id": t.task_id, "name": t.name, "error": t.error}
            for t in run.tasks.values()
            if t.state == "FAILED"
        ]
        return {
            **self._run_summary(run),
            "tasks": tasks,
            "failures": failures,
            "truncated": line.truncated if line else 0,
        }


def _drawn(last: Segment, task: TaskView) -> bool:
    """Whether ``last`` already shows the task's current state (the model kept it as it was)."""
    if last.end is None or last.outcome is None:
        return last.state == task.state and last.start == task.since
    return last.outcome == task.state and last.end == task.since


def _engine(engine: EngineView) -> dict[str, Any]:
    status = engine.status  # None: only its telemetry was seen
    return {
        "source": engine.source,
        "status": status.status if status else "unknown",
        "reason": status.reason if status else "",
        "session": status.session if status else None,
        "last_seen": engine.last_seen,
        "conflict_session": engine.conflict_session,
    }


def _constraint(topic: str, constraint: Constraint) -> dict[str, Any]:
    return {
        "topic": topic,
        "id": constraint.id,
        "scope": constraint.scope,
        "type": constraint.type,
        "params": dict(constraint.params),
        "expires_at": constraint.expires_at,
        # who set it, why and when, as its writer claims (null: it did not say)
        **{
            name: _given(getattr(constraint, name)) for name in ("reason", "issued_by", "issued_at")
        },
    }


def _given(value: Any) -> Any:
    return None if value is msgspec.UNSET else value
