"""Messages as the broker delivers them, decoded, for the history's tests."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from cascade.history import Received
from cascade.interfaces import (
    Constraint,
    Envelope,
    StatusMessage,
    decode_constraint,
    decode_envelope,
    decode_status,
)
from cascade.interfaces.commands import decode_cancel_reply, decode_decision_reply
from cascade.interfaces.notes import decode_clear_note

__all__ = [
    "T0",
    "cancel_reply",
    "cleared",
    "constraint",
    "heartbeat",
    "iso",
    "lifecycle",
    "note",
    "status",
    "task",
]

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc).timestamp()
"""A fixed moment the tests' timestamps count from."""


def iso(ts: float) -> str:
    """``ts`` as the protocol writes it."""
    return datetime.fromtimestamp(ts, timezone.utc).isoformat()


def _envelope(
    run_id: str, ts: float, body: dict[str, Any], seq: int | None, **ids: str
) -> Envelope:
    raw: dict[str, Any] = {
        "ts": iso(ts),
        "run_id": run_id,
        "org_id": ids.get("org_id", "local"),
        "project_id": ids.get("project_id", "default"),
        "source": ids.get("source", "host-1"),
        "body": body,
    }
    if seq is not None:
        raw["seq"] = seq
    if "trace_id" in ids:
        raw["trace_id"] = ids["trace_id"]
    return decode_envelope(raw)


def task(
    run_id: str,
    task_id: str,
    state: str,
    ts: float,
    *,
    name: str | None = None,
    seq: int | None = None,
    duration_ms: float = 0.0,
    error: str = "",
    held_by: list[dict[str, Any]] | None = None,
    traceback: str | None = None,
    cancelled: bool | None = None,
    decided: dict[str, Any] | None = None,
    reused_from: str | None = None,
    cached: bool | None = None,
    **ids: str,
) -> Received:
    """A task state event of ``run_id`` (``name``: the task id's part before ``-``)."""
    body: dict[str, Any] = {
        "type": "TaskStateEvent",
        "task_id": task_id,
        "task_name": name if name is not None else task_id.split("-")[0],
        "state": state,
        "duration_ms": duration_ms,
        "error": error,
    }
    if held_by is not None:
        body["held_by"] = held_by
    if traceback is not None:
        body["traceback"] = traceback
    if cancelled is not None:
        body["cancelled"] = cancelled
    if decided is not None:
        body["decided"] = decided
    if reused_from is not None:
        body["reused_from"] = reused_from
    if cached is not None:
        body["cached"] = cached
    topic = f"cascade/telemetry/local/default/{run_id}/events"
    return Received(topic, _envelope(run_id, ts, body, seq, **ids), ts)


def lifecycle(
    run_id: str,
    event: str,
    ts: float,
    *,
    seq: int | None = None,
    status: str | None = None,
    error: str | None = None,
    tasks: int | None = None,
    cancelled: bool | None = None,
    name: str | None = None,
    origin: dict[str, Any] | None = None,
    graph: Any = None,
    graph_nodes: int | None = None,
    **ids: str,
) -> Received:
    """An ``ENGINE_STARTED`` or ``ENGINE_STOPPED`` of ``run_id`` (``name``, ``origin``,
    ``graph`` and ``graph_nodes``: a start's, as the wire has them)."""
    body: dict[str, Any] = {"type": "LifecycleEvent", "event": event}
    fields = (("status", status), ("error", error), ("tasks", tasks), ("cancelled", cancelled),
              ("name", name), ("origin", origin), ("graph", graph),
              ("graph_nodes", graph_nodes))  # fmt: skip
    for key, value in fields:
        if value is not None:
            body[key] = value
    topic = f"cascade/telemetry/local/default/{run_id}/events"
    return Received(topic, _envelope(run_id, ts, body, seq, **ids), ts)


def heartbeat(
    run_id: str, ts: float, *, dropped: int = 0, last_seq: int | None = None, **ids: str
) -> Received:
    """A heartbeat of ``run_id``."""
    body: dict[str, Any] = {"type": "Heartbeat", "dropped_telemetry": dropped}
    if last_seq is not None:
        body["last_seq"] = last_seq
    topic = f"cascade/telemetry/local/default/{run_id}/heartbeat"
    return Received(topic, _envelope(run_id, ts, body, None, **ids), ts)


def status(source: str, state: str, session: int, ts: float, *, retained: bool = False) -> Received:
    """A presence message of ``source``."""
    message: StatusMessage = decode_status(
        {"status": state, "source": source, "session": session, "ts": iso(ts)}
    )
    return Received(f"cascade/status/{source}", message, ts, retained)


def constraint(
    topic: str,
    scope: str,
    kind: str,
    at: float,
    *,
    params: dict[str, Any] | None = None,
    expires_at: float | None = None,
    retained: bool = False,
    **provenance: Any,
) -> Received:
    """A constraint set on ``topic`` (received at ``at``); ``provenance``: its ``reason``,
    ``issued_by``, ``issued_at``."""
    message: Constraint = decode_constraint(
        {
            "id": f"{kind}-{scope}",
            "scope": scope,
            "type": kind,
            "params": params or {},
            "expires_at": expires_at,
            **provenance,
        }
    )
    return Received(topic, message, at, retained)


def cleared(topic: str, at: float) -> Received:
    """A constraint topic cleared (an empty retained payload) at ``at``."""
    return Received(topic, None, at)


def note(topic: str, at: float, **said: Any) -> Received:
    """A clear note on constraint ``topic`` received at ``at`` (``issued_by``, ``reason``)."""
    return Received(topic, decode_clear_note(said), at)


def cancel_reply(
    request_id: str,
    run_id: str,
    at: float,
    *,
    cancelled: Sequence[str] = (),
    abandoned: Sequence[str] = (),
    not_started: int = 0,
    **said: Any,
) -> Received:
    """An engine's answer to the cancel request ``request_id`` of ``run_id``, received at
    ``at``, naming the tasks (``name-1``...) it cancelled and abandoned; ``said``: the
    request's ``issued_by``, ``reason``, ``issued_at`` echoed, or other fields."""

    def refs(names: Sequence[str]) -> list[dict[str, str]]:
        return [{"task_id": f"{name}-{i}", "task_name": name} for i, name in enumerate(names)]

    reply = decode_cancel_reply(
        {
            "id": request_id,
            "run_id": run_id,
            "source": "host-1",
            "cancelled": refs(cancelled),
            "cancelled_count": len(cancelled),
            "abandoned": refs(abandoned),
            "abandoned_count": len(abandoned),
            "not_started": not_started,
            **said,
        }
    )
    return Received(f"cascade/reply/local/{request_id}/host-1", reply, at)


def decision_reply(
    request_id: str, run_id: str, at: float, decision: str, outcome: str, **said: Any
) -> Received:
    """An engine's (``host-1``'s) answer to the decision request ``request_id`` on a held task
    of ``run_id``, received at ``at``; ``said``: its other fields (``task_id``, ``attempt``,
    ``decided``, the request's ``issued_by``, ``reason`` echoed, ``source``)."""
    reply = decode_decision_reply(
        {
            "id": request_id,
            "run_id": run_id,
            "source": "host-1",
            "decision": decision,
            "outcome": outcome,
            **said,
        }
    )
    return Received(f"cascade/reply/local/{request_id}/{reply.source}", reply, at)
