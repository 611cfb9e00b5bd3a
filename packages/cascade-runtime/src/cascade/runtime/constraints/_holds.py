"""Why a task is blocked: the holds of the constraints that govern it, as the wire names them."""

from __future__ import annotations

import heapq
from collections.abc import Callable, Mapping

from cascade.interfaces import Constraint, Hold, canonical_rate
from cascade.interfaces.wire import MAX_HOLDERS, MAX_HOLDS

from ._constraint_matcher import Key
from ._tokenbucket import TokenBucket

__all__ = ["MAX_HOLD_TEXT", "holds_of"]

MAX_HOLD_TEXT = 256
"""Characters of a constraint's reason and issued_by a hold carries (a BLOCKED event stays small
whatever another writer put in the constraint)."""


def _text(value: object) -> str | None:
    return value[:MAX_HOLD_TEXT] if isinstance(value, str) else None


def _hold(
    constraint: Constraint,
    *,
    limit: int | None = None,
    running: int | None = None,
    holders: dict[str, int] | None = None,
    rate: str | None = None,
    next_start: float | None = None,
) -> Hold:
    return Hold(
        type=constraint.type,
        scope=constraint.scope,
        reason=_text(constraint.reason),
        issued_by=_text(constraint.issued_by),
        limit=limit,
        running=running,
        holders=holders,
        rate=rate,
        next_start=next_start,
    )


def holds_of(
    governing: Mapping[Key, Constraint],
    matching: Callable[[str], Mapping[Key, Constraint]],
    running: Mapping[str, int],
    buckets: Mapping[Key, TokenBucket],
    now: float,
) -> list[Hold]:
    """The constraints of ``governing`` that hold a task back now, at most ``MAX_HOLDS``.

    A pause holds always; a concurrency limit while the running tasks it governs
    (``running``: by name; ``matching(name)``: what governs that name) fill it, naming
    the most numerous of them; a rate limit while its bucket has no token, saying when
    the next is due (``now``: wall time). The same test as the admission's, run only
    once a task has been refused, so admitting tasks costs nothing more.
    """
    found: list[Hold] = []
    for key, constraint in governing.items():
        if len(found) >= MAX_HOLDS:
            break
        if constraint.type == "pause":
            found.append(_hold(constraint))
        elif constraint.type == "concurrency":
            holders = {name: n for name, n in running.items() if key in matching(name)}
            total = sum(holders.values())
            if total >= constraint.limit:
                most = heapq.nlargest(MAX_HOLDERS, holders.items(), key=lambda item: item[1])
                found.append(
                    _hold(constraint, limit=constraint.limit, running=total, holders=dict(most))
                )
        else:
            bucket = buckets.get(key)
            wait = bucket.wait_time() if bucket is not None else 0.0
            if wait > 0:
                rate = canonical_rate(constraint.params["rate"])
                found.append(_hold(constraint, rate=rate, next_start=now + wait))
    return found
