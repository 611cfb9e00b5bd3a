"""The bodies of the dashboard's controls, read once into what :mod:`cascade.control` takes."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from cascade.control import (
    ControlError,
    checked_reason,
    limit_constraints,
    pause_constraint,
    validate_scope,
)

__all__ = ["cancel_reason", "constraint_messages", "decision_fields"]

_PARAMS = {"pause": set(), "concurrency": {"limit"}, "rate_limit": {"rate"}}


def constraint_messages(body: Any, issued_by: str | None = None) -> list[tuple[str, Any]]:
    """What ``POST /api/constraints`` with ``body`` publishes: the CLI's own messages.

    ``body`` is ``{"scope": ..., "type": "pause" | "concurrency" | "rate_limit",
    "params": {...}, "ttl": seconds or null, "reason": text or null}``; the constraints
    say they were issued by ``issued_by``. Raises :class:`~cascade.control.ControlError`
    naming the field for anything the CLI would refuse with exit 2, and for a body of
    another shape (field ``body``).
    """
    if not isinstance(body, Mapping):
        raise ControlError("the body must be a JSON object", "body")
    unknown = set(body) - {"scope", "type", "params", "ttl", "reason"}
    if unknown:
        raise ControlError(f"unknown fields: {', '.join(sorted(map(str, unknown)))}", "body")
    kind, params, ttl = body.get("type"), body.get("params") or {}, body.get("ttl")
    notes = {"reason": _reason(body), "issued_by": issued_by}
    scope = validate_scope(body.get("scope"))
    if not isinstance(kind, str) or kind not in _PARAMS:
        raise ControlError(f"type must be pause, concurrency or rate_limit, not {kind!r}", "type")
    if not isinstance(params, Mapping):
        raise ControlError("params must be an object", "params")
    extra = set(params) - _PARAMS[kind]
    if extra:
        raise ControlError(
            f"params of {kind} take no {', '.join(sorted(map(str, extra)))}", "params"
        )
    if kind == "pause":
        return [pause_constraint(scope, ttl, **notes)]
    if kind == "concurrency":
        limit = params.get("limit")
        if isinstance(limit, bool) or not isinstance(limit, int):
            raise ControlError(f"concurrency must be a whole number, not {limit!r}", "concurrency")
        return list(limit_constraints(scope, limit, None, ttl, **notes))
    rate = params.get("rate")
    if isinstance(rate, (int, float)) and not isinstance(rate, bool) and math.isfinite(rate):
        rate = f"{rate:g}"
    if not isinstance(rate, str):
        raise ControlError(f"rate must be like '10/m', '0.5/s' or a number, not {rate!r}", "rate")
    return list(limit_constraints(scope, None, rate, ttl, **notes))


def cancel_reason(body: Any) -> str | None:
    """The reason of ``POST /api/runs/{id}/cancel`` with ``body`` (``{"reason": ...}`` or
    nothing); :class:`~cascade.control.ControlError` for anything else."""
    if body is None:
        return None
    if not isinstance(body, Mapping) or set(body) - {"reason"}:
        raise ControlError('the body must be {"reason": text} or nothing', "body")
    return _reason(body)


_DECISION_FIELDS = frozenset({"decision", "attempt", "result", "reason"})


def decision_fields(body: Any) -> dict[str, Any]:
    """What ``POST /api/runs/{id}/tasks/{task}/decide`` with ``body`` asks, as
    :func:`~cascade.control.decision_request` takes it: ``{"decision": "retry" | "skip" |
    "complete" | "fail", "attempt": n or null, "result": a complete's JSON value, "reason":
    text or null}`` (``result`` only when given: null is a value). A body of another shape:
    :class:`~cascade.control.ControlError` naming the field; the values themselves are
    checked by ``decision_request``."""
    if not isinstance(body, Mapping):
        raise ControlError("the body must be a JSON object", "body")
    unknown = set(body) - _DECISION_FIELDS
    if unknown:
        raise ControlError(f"unknown fields: {', '.join(sorted(map(str, unknown)))}", "body")
    decision = body.get("decision")
    if not isinstance(decision, str):
        raise ControlError(f"decision must be retry, skip, complete or fail, not {decision!r}",
                           "decision")  # fmt: skip
    fields: dict[str, Any] = {
        "decision": decision,
        "attempt": body.get("attempt"),
        "reason": _reason(body),
    }
    if "result" in body:
        fields["result"] = body["result"]
    return fields


def _reason(body: Mapping[str, Any]) -> str | None:
    reason = body.get("reason")
    if reason is not None and not isinstance(reason, str):
        raise ControlError(f"reason must be text, not {reason!r}", "reason")
    return checked_reason(reason or None)
