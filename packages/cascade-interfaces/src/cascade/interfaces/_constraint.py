"""Constraints: the control messages of docs/protocol.md, strictly decoding untrusted input."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal, TypeAlias, TypeVar

import msgspec

from ._codec import DECODE_ERRORS, invalid_message
from ._errors import InvalidMessageError
from ._limits import MAX_CONTROL_PAYLOAD_BYTES, MAX_NUMBER
from ._rules import parse_rate

__all__ = [
    "PROVENANCE",
    "Constraint",
    "ConstraintType",
    "convert",
    "decode_constraint",
    "validate_scope",
]

_MAX_ID = 256
_MAX_SCOPE = 1024
_MAX_LIMIT = 2**31 - 1
_MAX_NUMBER = MAX_NUMBER

ConstraintType: TypeAlias = Literal["pause", "concurrency", "rate_limit"]
_Seconds = Annotated[float, msgspec.Meta(ge=0, le=_MAX_NUMBER)]

_T = TypeVar("_T")


def convert(data: Mapping[str, Any] | bytes | str, target: type[_T], prefix: str = "$") -> _T:
    """``data`` (JSON text or decoded) as ``target``; :class:`InvalidMessageError` naming the
    field otherwise."""
    try:
        if isinstance(data, (bytes, str)):
            return msgspec.json.decode(data, type=target)
        return msgspec.convert(data, type=target)
    except DECODE_ERRORS as exc:
        raise invalid_message(exc, prefix) from None


class _PauseParams(msgspec.Struct):
    pass


class _ConcurrencyParams(msgspec.Struct):
    limit: Annotated[int, msgspec.Meta(ge=0, le=_MAX_LIMIT)]


class _RateLimitParams(msgspec.Struct, omit_defaults=True):
    rate: str | Annotated[float, msgspec.Meta(gt=0, le=_MAX_NUMBER)]
    capacity: Annotated[float, msgspec.Meta(ge=1, le=_MAX_NUMBER)] | None = None


_PARAMS: dict[str, type[msgspec.Struct]] = {
    "pause": _PauseParams,
    "concurrency": _ConcurrencyParams,
    "rate_limit": _RateLimitParams,
}
_ID_PREFIX = {"pause": "pause", "concurrency": "concurrency", "rate_limit": "ratelimit"}


def validate_scope(scope: str) -> str:
    """Return ``scope`` if it is one Cascade applies: ``global`` or ``task:<glob>`` (tasks,
    as engines hold them back), or ``schedule:<name>`` (a served schedule, whose servers skip
    its slots while it is paused: a name of 1 to 64 of ``A-Z a-z 0-9 _ -``).

    docs/protocol.md lets readers store other scopes as matching nothing; Cascade's
    engine and CLI reject them instead, so that a typo such as ``tsk:x`` or
    ``task:`` is reported rather than silently doing nothing. Raises
    :class:`InvalidMessageError` at ``$.scope``.
    """
    kind, sep, pattern = scope.partition(":")
    if scope == "global" or (kind == "task" and sep and pattern):
        return scope
    if kind == "schedule" and _SCHEDULE_NAME.fullmatch(pattern):
        return scope
    raise InvalidMessageError(
        f"unknown scope {scope!r}: expected 'global', 'task:<glob>' or 'schedule:<name>' (a "
        "name of 1 to 64 of A-Z a-z 0-9 _ -)",
        "$.scope",
    )


_SCHEDULE_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


class Constraint(msgspec.Struct, kw_only=True):
    """A control message: pause, concurrency or rate limit on a scope, until ``expires_at``.

    ``scope`` is ``global`` or ``task:<glob>``; ``expires_at`` is epoch seconds
    or ``None``. Build one with :meth:`pause`, :meth:`concurrency` or
    :meth:`rate_limit`, which validate their arguments.

    ``reason``, ``issued_by`` and ``issued_at`` (epoch seconds) say why, by whom
    and when it was set. They are additive and optional (``msgspec.UNSET``: left
    out of the payload; readers that do not know them ignore them), and
    ``issued_by`` is what the writer *claims*: nothing checks it. A reader takes a
    constraint whose annotations are malformed without them (see
    :func:`decode_constraint`), so they can never keep a constraint from applying.
    """

    id: Annotated[str, msgspec.Meta(min_length=1, max_length=_MAX_ID)]
    scope: Annotated[str, msgspec.Meta(min_length=1, max_length=_MAX_SCOPE)]
    type: ConstraintType
    params: dict[str, Any] = msgspec.field(default_factory=dict)
    expires_at: _Seconds | None = None
    reason: str | msgspec.UnsetType = msgspec.UNSET
    issued_by: str | msgspec.UnsetType = msgspec.UNSET
    issued_at: _Seconds | msgspec.UnsetType = msgspec.UNSET

    def applies_to(self, task_name: str) -> bool:
        """Whether this constraint governs the task ``task_name``.

        ``global`` governs every task and ``task:<glob>`` the tasks whose name
        matches the glob (case-sensitive fnmatch); any other scope governs none.
        """
        if self.scope == "global":
            return True
        kind, sep, pattern = self.scope.partition(":")
        return bool(sep) and kind == "task" and fnmatch.fnmatchcase(task_name, pattern)

    @property
    def limit(self) -> int:
        """The concurrency limit (``concurrency`` constraints)."""
        return int(self.params["limit"])

    @property
    def rate_per_second(self) -> float:
        """The rate in tasks per second (``rate_limit`` constraints)."""
        return parse_rate(self.params["rate"])

    @property
    def capacity(self) -> float:
        """The token bucket's size (``rate_limit``): ``params.capacity``, else ``max(1, rate)``.

        Never below one, so that every valid rate lets tasks through.
        """
        capacity = self.params.get("capacity")
        return float(capacity) if capacity is not None else max(1.0, self.rate_per_second)

    @classmethod
    def pause(
        cls,
        scope: str,
        *,
        expires_at: float | None = None,
        reason: str | None = None,
        issued_by: str | None = None,
        issued_at: float | None = None,
    ) -> Constraint:
        """A pause of every task in ``scope``; ``reason``, ``issued_by``, ``issued_at`` optional."""
        provenance = _provenance(reason, issued_by, issued_at)
        return _checked(cls, scope, "pause", {}, expires_at, provenance)

    @classmethod
    def concurrency(
        cls,
        scope: str,
        limit: int,
        *,
        expires_at: float | None = None,
        reason: str | None = None,
        issued_by: str | None = None,
        issued_at: float | None = None,
    ) -> Constraint:
        """At most ``limit`` tasks of ``scope`` running at once (the rest as :meth:`pause`)."""
        provenance = _provenance(reason, issued_by, issued_at)
        return _checked(cls, scope, "concurrency", {"limit": limit}, expires_at, provenance)

    @classmethod
    def rate_limit(
        cls,
        scope: str,
        rate: str | float,
        *,
        capacity: float | None = None,
        expires_at: float | None = None,
        reason: str | None = None,
        issued_by: str | None = None,
        issued_at: float | None = None,
    ) -> Constraint:
        """Tasks of ``scope`` start at most at ``rate`` (``"10/m"``, ``0.5``).

        Up to ``capacity`` tasks may start at once after a quiet spell (the rest
        as :meth:`pause`).
        """
        params: dict[str, Any] = {"rate": rate}
        if capacity is not None:
            params["capacity"] = capacity
        provenance = _provenance(reason, issued_by, issued_at)
        return _checked(cls, scope, "rate_limit", params, expires_at, provenance)


PROVENANCE = ("reason", "issued_by", "issued_at")
"""The optional fields of a :class:`Constraint` that say why, by whom and when it was set."""


def _provenance(
    reason: str | None, issued_by: str | None, issued_at: float | None
) -> dict[str, Any]:
    given = {"reason": reason, "issued_by": issued_by, "issued_at": issued_at}
    return {name: value for name, value in given.items() if value is not None}


def _checked(
    cls: type[Constraint],
    scope: str,
    kind: ConstraintType,
    params: dict[str, Any],
    expires_at: float | None,
    provenance: dict[str, Any],
) -> Constraint:
    raw = {
        "id": f"{_ID_PREFIX[kind]}-{scope}",
        "scope": scope,
        "type": kind,
        "params": params,
        "expires_at": expires_at,
        **provenance,
    }
    convert(raw, Constraint)  # strict: a writer's own annotations must be right
    return decode_constraint(raw)


def decode_constraint(data: Mapping[str, Any] | bytes | str) -> Constraint:
    """Decode and validate an untrusted control message.

    Raises :class:`InvalidMessageError` naming the field and the problem:
    payloads over :data:`MAX_CONTROL_PAYLOAD_BYTES`, missing or mistyped
    fields, unknown types, negative or non-integer limits, malformed rates,
    non-finite numbers.
    """
    if isinstance(data, (bytes, str)) and len(data) > MAX_CONTROL_PAYLOAD_BYTES:
        raise InvalidMessageError(
            f"control payload is {len(data)} bytes; at most {MAX_CONTROL_PAYLOAD_BYTES} accepted"
        )
    try:
        constraint = convert(data, Constraint)
    except InvalidMessageError as exc:
        if exc.path not in _PROVENANCE_PATHS:
            raise
        constraint = _without_bad_provenance(data)
    params = convert(constraint.params, _PARAMS[constraint.type], "$.params")
    if isinstance(params, _RateLimitParams):
        try:
            parse_rate(params.rate)
        except ValueError as exc:
            raise InvalidMessageError(str(exc), "$.params.rate") from None
    constraint.params = msgspec.to_builtins(params)
    return constraint


_PROVENANCE_PATHS = frozenset(f"$.{name}" for name in PROVENANCE)


def _without_bad_provenance(data: Mapping[str, Any] | bytes | str) -> Constraint:
    """The constraint of ``data`` with its malformed annotations left out (it applies anyway:
    readers that do not know them would apply it too)."""
    raw = dict(data) if isinstance(data, Mapping) else convert(data, dict[str, Any])
    for _ in PROVENANCE:
        try:
            return convert(raw, Constraint)
        except InvalidMessageError as exc:
            if exc.path not in _PROVENANCE_PATHS:
                raise
            raw.pop(exc.path[2:], None)
    return convert(raw, Constraint)
