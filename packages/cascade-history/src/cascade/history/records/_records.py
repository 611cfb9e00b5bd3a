"""What the history's queries and writes return. Times are epoch seconds (UTC)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cascade.reader import DecisionCount

from ._attempts import Attempt, StateChange, attempts_of

__all__ = [
    "Claim",
    "Execution",
    "RunDetail",
    "RunLink",
    "RunSummary",
    "SourceGap",
    "Stored",
    "TaskHistory",
    "TaskStats",
]


@dataclass(frozen=True, slots=True)
class Stored:
    """What :meth:`History.store <cascade.history.History.store>` did with a batch.

    ``stored``: messages that added to the history (a heartbeat counts: it
    updates its run). ``duplicates``: messages it already had (a copy
    delivered again, a retained status or constraint delivered again on
    subscribing). ``rejected``: messages that cannot be stored (a timestamp
    that is no time, an id the protocol refuses, a value the database refuses; a cancel's
    answer from another source than its run's, or for a run it does not know).
    ``refused``: events of a run from another source than the one stored for it (what no
    engine of the run can have sent: counted per run, :attr:`RunSummary.refused`).
    """

    stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    refused: int = 0


@dataclass(frozen=True, slots=True)
class Claim:
    """Another source than a run's that spoke of it: ``refused``, its messages refused as not
    the run's engine's; ``set_aside``, its events (and log lines) the history held until a
    source something vouches for took the run over."""

    source: str
    refused: int
    set_aside: int

    def to_json(self) -> dict[str, Any]:
        """This claim as a JSON object."""
        return {"source": self.source, "refused": self.refused, "set_aside": self.set_aside}


@dataclass(frozen=True, slots=True)
class RunLink:
    """Another run of a run's line: its ``run_id`` and ``status`` (``None``: the history does
    not have it), its ``name`` where it had one, and, in a :attr:`RunSummary.line`, how many
    of its tasks ``reused`` a result of an earlier run (``None`` where not counted); in a
    :attr:`RunSummary.replaced_by`, the engine whose death it carried the run on after
    (``lost_engine``; ``None``: a person or a request reran it) and the server that carried it
    on (``source``; ``None`` but there)."""

    run_id: str
    status: str | None
    name: str | None = None
    reused: int | None = None
    lost_engine: str | None = None
    source: str | None = None

    def to_json(self) -> dict[str, Any]:
        """This link as a JSON object (``lost_engine`` and ``source`` only where it carried the
        run on)."""
        out = {
            "run_id": self.run_id,
            "status": self.status,
            "name": self.name,
            "reused": self.reused,
        }
        if self.lost_engine is not None:
            out["lost_engine"] = self.lost_engine
        if self.source is not None:
            out["source"] = self.source
        return out


@dataclass(frozen=True, slots=True)
class RunSummary:
    """One run: where it ran, how it went, and its tasks counted by their last state.

    ``status`` is ``Running`` until its ``ENGINE_STOPPED`` arrives, then
    ``Succeeded`` or ``Failed``. ``started_at`` is the earliest time known of
    the run (its ``ENGINE_STARTED``'s), ``duration`` is ``ended_at -
    started_at`` (``None`` while it runs). ``tasks`` counts the tasks by the
    state they were last seen in (``COMPLETED``, ``FAILED``, ...).
    ``dropped_telemetry`` is the engine's own count of events it could not
    send (its heartbeats'); ``missing_events`` the events it numbered that
    never reached the history (``None`` for engines that do not number them).
    ``trace_id`` is the run's OpenTelemetry trace id (``None``: the run was not traced, or
    its engine does not send it). ``refused``: messages about the run that no engine of it
    can have sent, refused and stored nowhere, by reason (``foreign source``, ``conflict``,
    ``seq out of bounds``, ``timestamp ahead``: ``cascade.reader.REFUSAL_REASONS``);
    empty when none. ``received_at``: when the history first received a message of it
    (what ``since`` and retention go by; ``started_at`` is what its messages say).
    ``vouched``: what vouches that ``source`` is the run's engine (``start``: its
    ``ENGINE_STARTED``; ``topic``: its sourced topic; ``online``: its online status;
    ``None``: only its word, first heard). ``claims``: the other sources that spoke of the
    run, each with its messages refused and its events set aside (:class:`Claim`).
    ``decisions``: the decisions people took on its held tasks that its engine applied, by
    kind and person (:class:`DecisionCount`; empty when none): what changed its outcome
    besides its code, which every list of runs says beside its status.
    ``line``: for a rerun or a run rerun since, its line of work: the first run and each
    rerun of it (of its org and project), oldest first, each with the results it reused
    (:attr:`RunLink.reused`); empty for a run that is neither (and where a read leaves the
    task counts out).
    """

    run_id: str
    org_id: str
    project_id: str
    source: str
    status: str
    started_at: float
    ended_at: float | None
    error: str | None
    planned_tasks: int | None
    tasks: dict[str, int]
    dropped_telemetry: int
    missing_events: int | None
    trace_id: str | None = None
    refused: dict[str, int] = field(default_factory=dict)
    received_at: float | None = None
    vouched: str | None = None
    claims: list[Claim] = field(default_factory=list)
    name: str | None = None
    origin: dict[str, Any] | None = None
    rerun_of: RunLink | None = None
    replaced_by: list[RunLink] = field(default_factory=list)
    decisions: list[DecisionCount] = field(default_factory=list)
    line: list[RunLink] = field(default_factory=list)
    lost_at: float | None = None
    """While ``Lost``: when the history heard its engine go offline (the first offline status
    received after its last event); its clock stops there. ``None`` otherwise."""

    @property
    def workflow(self) -> str | None:
        """The served workflow it ran (``None``: not a served one)."""
        return None if self.origin is None else self.origin.get("workflow")

    @property
    def schedule(self) -> str | None:
        """The schedule that started it (``None``: none did)."""
        return None if self.origin is None else self.origin.get("schedule")

    @property
    def scheduled_for(self) -> str | None:
        """The slot of :attr:`schedule` it fills (ISO, UTC), ``None`` when no schedule started
        it."""
        return None if self.origin is None else self.origin.get("scheduled_for")

    @property
    def carried_on_from(self) -> str | None:
        """The run it carries on, where a server carried that run on after its engine died
        (``lost_engine``); ``None`` otherwise."""
        return None if self.origin is None else self.origin.get("carried_on_from")

    @property
    def lost_engine(self) -> str | None:
        """The engine whose death :attr:`carried_on_from`'s run was carried on after."""
        return None if self.origin is None else self.origin.get("lost_engine")

    @property
    def root_run(self) -> str | None:
        """The first run of its line, for a rerun (``None`` otherwise)."""
        return None if self.origin is None else self.origin.get("root_run")

    @property
    def duration(self) -> float | None:
        """Seconds from start to end (for a lost run, to its engine's death: :attr:`lost_at`),
        ``None`` while the run has not ended."""
        end = self.ended_at if self.ended_at is not None else self.lost_at
        return None if end is None else max(0.0, end - self.started_at)

    def to_json(self) -> dict[str, Any]:
        """This run as a JSON object (``duration`` included)."""
        return {
            "run_id": self.run_id,
            "org_id": self.org_id,
            "project_id": self.project_id,
            "source": self.source,
            "status": self.status,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "lost_at": self.lost_at,
            "duration": self.duration,
            "error": self.error,
            "planned_tasks": self.planned_tasks,
            "tasks": dict(self.tasks),
            "dropped_telemetry": self.dropped_telemetry,
            "missing_events": self.missing_events,
            "trace_id": self.trace_id,
            "refused": dict(self.refused),
            "received_at": self.received_at,
            "vouched": self.vouched,
            "claims": [claim.to_json() for claim in self.claims],
            "name": self.name,
            "origin": self.origin,
            "rerun_of": None if self.rerun_of is None else self.rerun_of.to_json(),
            "replaced_by": [link.to_json() for link in self.replaced_by],
            "decisions": [decided.to_json() for decided in self.decisions],
            "line": [link.to_json() for link in self.line],
        }

    @property
    def status_said(self) -> str:
        """Its status with the decisions that made it, as every list says it: ``Succeeded``,
        ``Succeeded · 1 skipped by ops-1, 1 completed by ops-2``."""
        if not self.decisions:
            return self.status
        return f"{self.status} · {', '.join(str(decided) for decided in self.decisions)}"


@dataclass(frozen=True, slots=True)
class TaskHistory:
    """One task of a run: every state it was seen in, in time order, and what they add up to.

    ``state`` is its last state; ``attempts`` how many times it started;
    ``duration_ms`` its last event's (since it first started); ``error`` its
    last error (``""`` when none); ``blocked_s`` the seconds a constraint
    held it back (from each ``BLOCKED`` to the state after it); ``held_by`` what
    held it the last time it was blocked, where its engine said (else ``None``).
    """

    task_id: str
    task_name: str
    state: str
    attempts: int
    started_at: float | None
    ended_at: float | None
    duration_ms: float
    error: str
    blocked_s: float
    states: list[StateChange] = field(default_factory=list)
    states_omitted: int = 0
    """Its earliest states left out of ``states`` (a page of a run keeps each task's last
    :data:`~cascade.history.STATES_KEPT`); ``attempts`` and ``started_at`` count them,
    ``blocked_s`` does not."""

    @property
    def held_by(self) -> list[dict[str, Any]] | None:
        """The holds of its last ``BLOCKED`` state that named them (``None``: none did)."""
        for change in reversed(self.states):
            if change.state == "BLOCKED" and change.held_by is not None:
                return change.held_by
        return None

    @property
    def traceback(self) -> str | None:
        """The traceback of its latest failed attempt that has one among its ``states``
        (``None``: none sent)."""
        for change in reversed(self.states):
            if change.traceback is not None:
                return change.traceback
        return None

    @property
    def reused_from(self) -> str | None:
        """The run whose stored result it took, when its last state is a reuse's
        ``COMPLETED`` (``None``: it ran, or has not completed)."""
        last = self.states[-1] if self.states else None
        return None if last is None or last.state != "COMPLETED" else last.reused_from

    @property
    def cached(self) -> bool:
        """Whether its last state is a ``COMPLETED`` its cache (``with_cache``) gave instead of
        running it (:attr:`reused_from` names the run that kept it, when from the store)."""
        last = self.states[-1] if self.states else None
        return last is not None and last.state == "COMPLETED" and last.cached

    @property
    def attempt_list(self) -> list[Attempt]:
        """Its attempts among its ``states``, first to last: each one's start, end, error,
        traceback, hold and the decision on it (:class:`~cascade.history.Attempt`)."""
        return attempts_of(self.states)

    @property
    def decisions(self) -> list[dict[str, Any]]:
        """The decisions taken on its holds, as its states say (``StateChange.decided``)."""
        return [change.decided for change in self.states if change.decided is not None]

    def to_json(self) -> dict[str, Any]:
        """This task as a JSON object, its states included."""
        return {
            "task_id": self.task_id,
            "task_name": self.task_name,
            "state": self.state,
            "attempts": self.attempts,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "duration_ms": self.duration_ms,
            "error": self.error,
            "blocked_s": self.blocked_s,
            "states": [change.to_json() for change in self.states],
            "attempt_list": [attempt.to_json() for attempt in self.attempt_list],
            **({"states_omitted": self.states_omitted} if self.states_omitted else {}),
            **({"reused_from": self.reused_from} if self.reused_from is not None else {}),
            **({"cached": True} if self.cached else {}),
        }


@dataclass(frozen=True, slots=True)
class RunDetail:
    """A run and its tasks (every one, or a page of them), in the order they first appeared."""

    run: RunSummary
    tasks: list[TaskHistory]
    next_after: str | None = None
    """The cursor of the next page of tasks (``History.run(..., after=next_after)``);
    ``None``: no more."""

    def to_json(self) -> dict[str, Any]:
        """The run's JSON object with ``tasks``, a list of the tasks' objects."""
        return {**self.run.to_json(), "tasks": [task.to_json() for task in self.tasks]}


@dataclass(frozen=True, slots=True)
class TaskStats:
    """Every finished execution of the tasks named ``task_name`` in a period.

    ``runs``: the runs it ran in; ``executions``: how many of it finished
    (``COMPLETED`` or ``FAILED``; a run may have several of one name);
    ``failures``: how many of those failed. Durations are the finished
    executions' (from first start to end, retries included), in ms; the
    percentiles are nearest-rank (the value at rank ``ceil(p * n)``).
    """

    task_name: str
    runs: int
    executions: int
    failures: int
    p50_ms: float
    p95_ms: float
    max_ms: float
    approximate: bool = False

    @property
    def failure_rate(self) -> float:
        """``failures / executions``."""
        return self.failures / self.executions if self.executions else 0.0

    def to_json(self) -> dict[str, Any]:
        """These statistics as a JSON object (``failure_rate`` included)."""
        return {
            "task_name": self.task_name,
            "runs": self.runs,
            "executions": self.executions,
            "failures": self.failures,
            "failure_rate": self.failure_rate,
            "p50_ms": self.p50_ms,
            "p95_ms": self.p95_ms,
            "max_ms": self.max_ms,
            "approximate": self.approximate,
        }


@dataclass(frozen=True, slots=True)
class SourceGap:
    """What one recorder found missing of one source's (engine's) numbered events.

    ``missed``: events it never received, net of late copies that filled a
    hole (counted from each run's ``seq`` numbers and its heartbeats'
    ``last_seq`` by a :class:`~cascade.reader.GapCounter`, from the
    first event of a run it saw). ``first_at``: when it first found one
    missing; ``last_at``: when its count last changed. ``recorder`` names the
    recorder (its connector's source id, or ``cascade record --client-id``).
    """

    source: str
    recorder: str
    missed: int
    first_at: float
    last_at: float

    def to_json(self) -> dict[str, Any]:
        """This count as a JSON object."""
        return {
            "source": self.source,
            "recorder": self.recorder,
            "missed": self.missed,
            "first_at": self.first_at,
            "last_at": self.last_at,
        }


@dataclass(frozen=True, slots=True)
class Execution:
    """One finished execution of a task: ``COMPLETED`` or ``FAILED`` at ``ts``, after
    ``duration_ms`` (from its first start, retries included), in run ``run_id``."""

    run_id: str
    task_id: str
    ts: float
    duration_ms: float
    state: str

    def to_json(self) -> dict[str, Any]:
        """This execution as a JSON object."""
        return {
            "run_id": self.run_id,
            "task_id": self.task_id,
            "ts": self.ts,
            "duration_ms": self.duration_ms,
            "state": self.state,
        }
