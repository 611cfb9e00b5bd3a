"""What `cascade pause`, `resume` and `limit` publish: validated before anything is sent."""

from __future__ import annotations

import time
from typing import get_args

from cascade.interfaces import (
    Constraint,
    ConstraintType,
    InvalidMessageError,
    constraint_topic,
)
from cascade.interfaces import validate_scope as check_scope

__all__ = [
    "CONSTRAINT_TYPES",
    "UsageError",
    "clear_topics",
    "limit_constraints",
    "pause_constraint",
    "validate_scope",
]

CONSTRAINT_TYPES: tuple[ConstraintType, ...] = get_args(ConstraintType)


class UsageError(ValueError):
    """A command's input is invalid; nothing was sent."""


def validate_scope(scope: str) -> str:
    """``global`` or ``task:<glob>``, the scopes an engine applies."""
    try:
        return check_scope(scope)
    except InvalidMessageError as exc:
        raise UsageError(f"{exc.reason} (e.g. task:api_*)") from None


def _expires_at(ttl: float | None) -> float | None:
    if ttl is None:
        return None
    if not ttl > 0:
        raise UsageError(f"--ttl must be a positive number of seconds, not {ttl}")
    return time.time() + ttl


def pause_constraint(scope: str, ttl: float | None) -> tuple[str, Constraint]:
    """The topic and payload that pause ``scope``."""
    constraint = Constraint.pause(validate_scope(scope), expires_at=_expires_at(ttl))
    return constraint_topic(scope, "pause"), constraint


def limit_constraints(
    scope: str, concurrency: int | None, rate: str | None, ttl: float | None
) -> list[tuple[str, Constraint]]:
    """The topics and payloads of a concurrency limit and/or a rate limit on ``scope``."""
    validate_scope(scope)
    if concurrency is None and rate is None:
        raise UsageError("give --concurrency N, --rate R, or both")
    expires_at = _expires_at(ttl)
    result: list[tuple[str, Constraint]] = []
    if concurrency is not None:
        if concurrency < 0:
            raise UsageError(f"--concurrency must be 0 or more, not {concurrency}")
        limited = Constraint.concurrency(scope, concurrency, expires_at=expires_at)
        result.append((constraint_topic(scope, "concurrency"), limited))
    if rate is not None:
        try:
            rated = Constraint.rate_limit(scope, rate, expires_at=expires_at)
        except InvalidMessageError as exc:
            raise UsageError(f"--rate: {exc.reason}") from None
        result.append((constraint_topic(scope, "rate_limit"), rated))
    return result


def clear_topics(scope: str, constraint_type: ConstraintType | None) -> list[str]:
    """The per-type topics that ``resume`` clears: one type, or all of them."""
    validate_scope(scope)
    types = CONSTRAINT_TYPES if constraint_type is None else (constraint_type,)
    return [constraint_topic(scope, kind) for kind in types]
