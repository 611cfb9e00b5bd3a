"""The body of ``POST /api/constraints``, read into the request it asks (:class:`Pause` or
:class:`Limit`): its shape (``type``, ``params``) is the dashboard's; the rest, and every
check, are the request's (:func:`~cascade.control.read_request`)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from cascade.control import ControlError, Limit, Pause, read_request
from cascade.interfaces.wire import ConstraintType

__all__ = ["constraint_request"]

_PARAMS: dict[ConstraintType, set[str]] = {
    "pause": set(),
    "concurrency": {"limit"},
    "rate_limit": {"rate"},
}


def constraint_request(body: Any) -> tuple[ConstraintType, Pause | Limit]:
    """What ``POST /api/constraints`` with ``body`` asks: the type of the constraint it sets,
    and the request (the CLI's own).

    ``body`` is ``{"scope": ..., "type": "pause" | "concurrency" | "rate_limit",
    "params": {...}, "ttl": seconds or null, "reason": text or null}``. Raises
    :class:`~cascade.control.ControlError` naming the field for anything the CLI would
    refuse with exit 2, and for a body of another shape (field ``body``).
    """
    if not isinstance(body, Mapping):
        raise ControlError("the body must be a JSON object", "body")
    unknown = set(body) - {"scope", "type", "params", "ttl", "reason"}
    if unknown:
        raise ControlError(f"unknown fields: {', '.join(sorted(map(str, unknown)))}", "body")
    kind, params = body.get("type"), body.get("params") or {}
    scope = body.get("scope")
    read_request(Pause, {"scope": scope})  # the scope first, as the CLI checks it
    given = {"scope": scope, "ttl": body.get("ttl"), "reason": body.get("reason") or None}
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
        return kind, read_request(Pause, given)
    if kind == "concurrency":
        limit = params.get("limit")
        if isinstance(limit, bool) or not isinstance(limit, int):
            raise ControlError(f"concurrency must be a whole number, not {limit!r}", "concurrency")
        return kind, read_request(Limit, {**given, "concurrency": limit})
    rate = params.get("rate")
    if isinstance(rate, (int, float)) and not isinstance(rate, bool) and math.isfinite(rate):
        rate = f"{rate:g}"
    if not isinstance(rate, str):
        raise ControlError(f"rate must be like '10/m', '0.5/s' or a number, not {rate!r}", "rate")
    return kind, read_request(Limit, {**given, "rate": rate})
