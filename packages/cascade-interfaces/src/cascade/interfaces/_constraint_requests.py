"""What a pause and a limit publish, and the scope and type a resume names: validated before
anything is sent (:class:`ControlError` naming the field)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any, get_args

from ._asked import ControlError
from ._constraint import Constraint, ConstraintType, split_scope
from ._constraint import validate_scope as check_scope
from ._errors import InvalidMessageError
from ._rules import canonical_rate, expiry_after
from ._topics import DEFAULT_PREFIX, constraint_topic

__all__ = [
    "CONSTRAINT_TYPES",
    "MAX_CONCURRENCY",
    "limit_constraints",
    "parse_constraint_type",
    "pause_constraint",
    "validate_scope",
]

CONSTRAINT_TYPES: tuple[ConstraintType, ...] = get_args(ConstraintType)
MAX_CONCURRENCY = 2**31 - 1
# A constraint's id is "<type>-<scope>", at most 256 characters; the longest is "ratelimit-".
MAX_SCOPE_LENGTH = 256 - len("ratelimit-")
# Where the schema puts a problem, and the input that gave it.
_FIELD_AT = {"$.expires_at": "ttl", "$.params.limit": "concurrency", "$.params.rate": "rate"}


# C0, DEL and C1 controls, and lone surrogates (what a shell hands over for bytes that are not
# UTF-8): no task is named with them, and a typo or a paste is better refused than published.
_UNUSABLE_IN_SCOPE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def validate_scope(scope: object) -> str:
    """``global`` or ``task:<glob>``, the scopes an engine applies, in text a person can type;
    else :class:`ControlError`."""
    if not isinstance(scope, str):
        raise ControlError("scope must be a string: 'global' or 'task:<glob>'", "scope")
    try:
        check_scope(scope)
    except InvalidMessageError as exc:
        raise ControlError(f"{exc.reason} (e.g. task:api_*)", "scope") from None
    unusable = _UNUSABLE_IN_SCOPE.search(scope)
    if unusable is not None:
        raise ControlError(
            f"scope {scope!r} holds {unusable[0]!r}: a scope is text without control "
            "characters, in UTF-8",
            "scope",
        )
    return scope


def _constraint_scope(scope: str) -> str:
    validate_scope(scope)
    if len(scope) > MAX_SCOPE_LENGTH:
        raise ControlError(
            f"scope is too long: {len(scope)} characters, at most {MAX_SCOPE_LENGTH}", "scope"
        )
    return scope


def _expires_at(ttl: float | None) -> float | None:
    if ttl is None:
        return None
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float)):
        raise ControlError(f"ttl must be a number of seconds, not {ttl!r}", "ttl")
    try:
        return expiry_after(ttl, time.time())
    except ValueError as exc:
        # the interfaces' message names the CLI's flag; this one names the field
        raise ControlError(str(exc).removeprefix("--"), "ttl") from None


def _build(make: Callable[[], Constraint]) -> Constraint:
    """``make()``, with what the schema rejects reported against the field that gave it."""
    try:
        return make()
    except InvalidMessageError as exc:
        field = _FIELD_AT.get(exc.path, "scope")
        raise ControlError(f"{field}: {exc.reason}", field) from None


def pause_constraint(
    scope: str,
    ttl: float | None,
    *,
    reason: str | None = None,
    issued_by: str | None = None,
    prefix: str = DEFAULT_PREFIX,
) -> tuple[str, Constraint]:
    """The topic (under ``prefix``) and payload that pause ``scope``; stamped ``issued_at``
    now."""
    expires_at = _expires_at(ttl)
    notes = _notes(reason, issued_by)
    constraint = _build(
        lambda: Constraint.pause(_constraint_scope(scope), expires_at=expires_at, **notes)
    )
    return constraint_topic(scope, "pause", prefix), constraint


def _notes(reason: str | None, issued_by: str | None) -> dict[str, Any]:
    """The provenance of a constraint written now (``reason`` and ``issued_by`` if given)."""
    return {"reason": reason, "issued_by": issued_by, "issued_at": time.time()}


def limit_constraints(
    scope: str,
    concurrency: int | None,
    rate: str | None,
    ttl: float | None,
    *,
    reason: str | None = None,
    issued_by: str | None = None,
    prefix: str = DEFAULT_PREFIX,
) -> list[tuple[str, Constraint]]:
    """The topics (under ``prefix``) and payloads of a concurrency limit and/or a rate limit
    on ``scope``."""
    kind = split_scope(_constraint_scope(scope)).target.partition(":")[0]
    if kind in ("schedule", "workflow", "trigger"):
        raise ControlError(f"{scope} is a {kind}: it is paused and resumed, not limited", "scope")
    if concurrency is None and rate is None:
        raise ControlError("give concurrency, rate or both", "concurrency")
    expires_at = _expires_at(ttl)
    notes = _notes(reason, issued_by)
    result: list[tuple[str, Constraint]] = []
    if concurrency is not None:
        if isinstance(concurrency, bool) or not isinstance(concurrency, int):
            raise ControlError(
                f"concurrency must be a whole number, not {concurrency!r}", "concurrency"
            )
        if not 0 <= concurrency <= MAX_CONCURRENCY:
            raise ControlError(
                f"concurrency must be 0 or more, at most {MAX_CONCURRENCY}, not {concurrency}",
                "concurrency",
            )
        limited = _build(
            lambda: Constraint.concurrency(scope, concurrency, expires_at=expires_at, **notes)
        )
        result.append((constraint_topic(scope, "concurrency", prefix), limited))
    if rate is not None:
        try:
            published = canonical_rate(rate)
        except ValueError as exc:
            raise ControlError(f"rate: {exc}", "rate") from None
        rated = _build(
            lambda: Constraint.rate_limit(scope, published, expires_at=expires_at, **notes)
        )
        result.append((constraint_topic(scope, "rate_limit", prefix), rated))
    return result


def parse_constraint_type(value: str | None) -> ConstraintType | None:
    """A constraint type: ``pause``, ``concurrency``, ``rate_limit`` or ``None`` (all of them)."""
    if value is None:
        return None
    for kind in CONSTRAINT_TYPES:
        if value == kind:
            return kind
    raise ControlError(f"type must be pause, concurrency or rate_limit, not {value!r}", "type")
