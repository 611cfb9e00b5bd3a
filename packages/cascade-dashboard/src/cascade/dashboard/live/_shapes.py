"""The JSON shapes of what the pages show: a task of a run's detail, an engine, a constraint.

Shared by ``/api/state`` and the streams' changes, so that both say the same thing alike.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import msgspec

from cascade.interfaces import Constraint
from cascade.reader import EngineView, TaskView, parse_timestamp

from ._fleet_index import FleetRun, summary_dict

if TYPE_CHECKING:
    from ._timelines import Segment

__all__ = ["constraint_dict", "engine_dict", "fleet_run_dict", "task_detail"]


def task_detail(task: TaskView, segments: Iterable[Segment]) -> dict[str, Any]:
    """One task of a run's detail: its state and its timeline's ``segments``."""
    drawn = list(segments)
    return {
        "task_id": task.task_id,
        "name": task.name,
        "state": task.state,
        "since": task.since,
        "duration_ms": task.duration_ms,
        "error": task.error,
        # a failed attempt's traceback while FAILED, RETRYING or HELD (null: none sent)
        "traceback": task.traceback,
        # what holds it back while BLOCKED, HELD or QUEUED (null: its engine did not say)
        "held_by": (
            msgspec.to_builtins(list(task.held_by))
            if task.state in ("BLOCKED", "HELD", "QUEUED") and task.held_by is not None
            else None
        ),
        # completed without running: its cache gave the result, or the run that kept it did
        "cached": task.reused == "cached",
        "reused_from": task.reused_from,
        # a map's own task: how many items its engine made (null: not a map, or not said)
        "items": task.items,
        "attempts": sum(1 for s in drawn if s.state == "RUNNING"),
        "segments": [
            {"state": s.state, "start": s.start, "end": s.end, "outcome": s.outcome} for s in drawn
        ],
    }


_LIVE_STATES = ("running", "blocked", "held", "pending")


def engine_dict(
    engine: EngineView, *, summary: bool = True, lost: tuple[int, int] | None = None
) -> dict[str, Any]:
    """One engine of the engines' list (without ``summary``: its summary left out, as for
    a reader who may not see every project its runs are of). An offline engine runs nothing:
    its last summary's live runs and tasks are left out of it (its runs were lost with it:
    ``lost``, the runs this view holds that were lost with it and how many of them another
    server carried on, said when there are any; ``None``: not said, as to a reader who may not
    see every project)."""
    status = engine.status  # None: only its telemetry was seen
    shown = summary_dict(engine.summary) if summary else None
    if shown is not None and status is not None and status.status == "offline":
        shown["live_runs"] = shown["runs"]["running"] = 0
        shown["tasks"].update(dict.fromkeys(_LIVE_STATES, 0))
    shape = {
        "source": engine.source,
        "status": status.status if status else "unknown",
        "reason": status.reason if status else "",
        "session": status.session if status else None,
        "last_seen": engine.last_seen,
        "conflict_session": engine.conflict_session,
        # the runs its own events showed live (what counts it while it sends no summary)
        "live_seen": len(engine.live_seen),
        # its latest summary: live runs, tasks by state, events/s, drops (null: none)
        "summary": shown,
    }
    if lost is not None and lost[0]:  # left out when none: a fleet's first answer is bounded
        # the runs lost with it (its status said offline before they ended), and how many of
        # those another server carried on
        shape["lost"] = {"runs": lost[0], "carried_on": lost[1]}
    return shape


def fleet_run_dict(listed: FleetRun) -> dict[str, Any]:
    """A run as its engine's summary lists it, in the shape of a run of the runs' list
    (``from_summary``: its tasks were not read, only counted by its engine)."""
    run, tasks = listed.run, listed.run.tasks
    finished = tasks.completed + tasks.failed + tasks.skipped  # failed counts the cancelled
    total = run.planned or None
    counts = (
        ("RUNNING", tasks.running),
        # blocked counts the held too, as on the wire (a summary saying more held is cut)
        ("BLOCKED", tasks.blocked - min(tasks.held, tasks.blocked)),
        ("HELD", min(tasks.held, tasks.blocked)),
        ("PENDING", tasks.pending),
        ("COMPLETED", tasks.completed),
        ("FAILED", tasks.failed - tasks.cancelled),
        ("CANCELLED", tasks.cancelled),
        ("SKIPPED", tasks.skipped),
    )
    return {
        "run_id": run.run_id,
        "org_id": run.org_id,
        "project_id": run.project_id,
        "source": listed.source,
        "status": listed.status,
        "error": None,
        "trace_id": run.trace_id,
        "name": run.name,
        "origin": None,  # a summary does not say it
        "total": total,
        "finished": finished,
        "progress": min(1.0, finished / total) if total else None,
        "counts": {state: n for state, n in counts if n > 0},
        "partial": None,
        "started": parse_timestamp(run.started),
        "ended": parse_timestamp(run.ended) if run.ended else None,
        "planned": run.planned,
        "last_seq": run.last_seq,
        "from_summary": True,
    }


def constraint_dict(topic: str, constraint: Constraint) -> dict[str, Any]:
    """One constraint in force, on ``topic``."""
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
