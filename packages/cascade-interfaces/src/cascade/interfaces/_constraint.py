"""Constraints: the control messages of docs/protocol.md, strictly decoding untrusted input."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal, NamedTuple, TypeAlias, TypeVar

import msgspec

from ._codec import DECODE_ERRORS, invalid_message
from ._errors import InvalidMessageError
from ._limits import MAX_CONTROL_PAYLOAD_BYTES, MAX_NUMBER
from ._rules import parse_rate
from ._topics import decode_level, encode_level

__all__ = [
    "PROVENANCE",
    "Constraint",
    "ConstraintType",
    "ScopeParts",
    "convert",
    "decode_constraint",
    "place_scope",
    "split_scope",
    "validate_scope",
]

_MAX_ID = 256
_MAX_SCOPE = 1024
_MAX_LIMIT = 2**31 - 1
_MAX_NUMBER = MAX_NUMBER

ConstraintType: TypeAlias = Literal["pause", "concurrency", "rate_limit"]
"""A constraint's ``type``: a pause, a concurrency limit or a rate limit."""
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


class ScopeParts(NamedTuple):
    """A constraint's scope taken apart (:func:`split_scope`): the ``org`` and ``project`` it
    is placed in (``None``: every org's, every project's) and its ``target``, the scope of
    tasks or schedule within them (``global``, ``task:<glob>``, ``schedule:<name>``)."""

    org: str | None
    project: str | None
    target: str

    def covers(self, org: str, project: str) -> bool:
        """Whether the tasks of an engine of ``org`` and ``project`` are within the place."""
        return (self.org is None or self.org == org) and (
            self.project is None or self.project == project
        )


def split_scope(scope: str) -> ScopeParts:
    """``scope`` taken apart: ``org:acme/task:etl_*`` is ``ScopeParts("acme", None,
    "task:etl_*")``, ``project:acme/etl/schedule:nightly`` is ``ScopeParts("acme", "etl",
    "schedule:nightly")``, an unplaced scope (``task:etl_*``) its own target. An org or
    project is written as its topic level (:func:`encode_level`: ``a/b`` is ``a%2Fb``) and
    read back decoded. Never raises: :func:`validate_scope` says what is wrong with a scope."""
    kind, sep, rest = scope.partition(":")
    levels = {"org": 1, "project": 2}.get(kind)
    if not sep or levels is None:
        return ScopeParts(None, None, scope)
    parts = rest.split("/", levels)
    if len(parts) <= levels:
        return ScopeParts(decode_level(parts[0]), None, "")
    place = [decode_level(level) for level in parts[:levels]]
    return ScopeParts(place[0], place[1] if levels == 2 else None, parts[levels])


def place_scope(target: str, org: str | None = None, project: str | None = None) -> str:
    """The scope of ``target`` (``task:etl_*``, ``schedule:nightly``) within ``org`` (and its
    ``project``): ``org:acme/task:etl_*``, ``project:acme/etl/task:etl_*``; ``target`` itself
    without ``org``. Raises :class:`ValueError` for a project without its org. Validate the
    result with :func:`validate_scope`."""
    if org is None:
        if project is not None:
            raise ValueError(f"project {project!r} without its org")
        return target
    if project is None:
        return f"org:{encode_level(org)}/{target}"
    return f"project:{encode_level(org)}/{encode_level(project)}/{target}"


def validate_scope(scope: str) -> str:
    """Return ``scope`` if it is one Cascade applies: ``global`` or ``task:<glob>`` (tasks,
    as engines hold them back), or ``schedule:<name>`` (a served schedule, whose servers skip
    its slots while it is paused: a name of 1 to 64 of ``A-Z a-z 0-9 _ -``), or
    ``workflow:<name>`` (a served workflow, whose servers start no new run of it while it is
    paused: a pause only, as a schedule's), or ``trigger:<name>`` (a served trigger, whose
    servers start nothing on its events while it is paused: a pause only); or one of these
    placed in an org
    (``org:ORG/task:<glob>``) or a project
    (``project:ORG/PROJECT/task:<glob>``), which only the engines of that org (and project)
    apply (:func:`split_scope`).

    docs/protocol.md lets readers store other scopes as matching nothing; Cascade's
    engine and CLI reject them instead, so that a typo such as ``tsk:x`` or
    ``task:`` is reported rather than silently doing nothing. Raises
    :class:`InvalidMessageError` at ``$.scope``.
    """
    parts = split_scope(scope)
    if parts.org is not None:
        _check_placed(scope, parts)
        target = parts.target
    else:
        target = scope
    kind, sep, pattern = target.partition(":")
    if (target == "global" and parts.org is None) or (kind == "task" and sep and pattern):
        return scope
    if kind in ("schedule", "workflow", "trigger") and _SCHEDULE_NAME.fullmatch(pattern):
        return scope
    raise InvalidMessageError(
        f"unknown scope {scope!r}: expected 'global', 'task:<glob>', 'schedule:<name>', "
        "'workflow:<name>' or 'trigger:<name>' (a name of 1 to 64 of A-Z a-z 0-9 _ -), or one "
        "of the last four "
        "in an org or a project ('org:ORG/task:<glob>', 'project:ORG/PROJECT/task:<glob>')",
        "$.scope",
    )


def _check_placed(scope: str, parts: ScopeParts) -> None:
    """An org's (and project's) levels must be their ids' one encoding, so that a placed scope
    has exactly one topic, the one a broker ACL binds to that org's operators."""
    if not parts.target:
        raise InvalidMessageError(
            f"scope {scope[:200]!r} names no tasks in its place: 'org:ORG/task:<glob>', "
            "'project:ORG/PROJECT/task:<glob>'",
            "$.scope",
        )
    for name, value in (("org", parts.org), ("project", parts.project)):
        if value is not None and (not value or len(value.encode("utf-8", "surrogatepass")) > 1024):
            raise InvalidMessageError(
                f"scope {scope[:200]!r}: an empty or too long {name}", "$.scope"
            )
    if place_scope(parts.target, parts.org, parts.project) != scope:
        raise InvalidMessageError(
            f"scope {scope[:200]!r}: write its org and project as topic levels "
            f"({place_scope(parts.target, parts.org, parts.project)[:200]!r})",
            "$.scope",
        )
    if parts.target == "global":
        raise InvalidMessageError(
            f"scope {scope[:200]!r}: an org's or a project's tasks are all 'task:*' there, "
            "not 'global'",
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

    def applies_to(
        self, task_name: str, org: str | None = None, project: str | None = None
    ) -> bool:
        """Whether this constraint governs the task ``task_name`` (of an engine of ``org``
        and ``project``).

        ``global`` governs every task and ``task:<glob>`` the tasks whose name
        matches the glob (case-sensitive fnmatch); any other scope governs none. A scope
        placed in an org or a project (:func:`split_scope`) governs the tasks of the
        engines there only: none unless ``org`` and ``project`` are given and within it.
        """
        parts = split_scope(self.scope)
        if parts.org is not None and (
            org is None or project is None or not parts.covers(org, project)
        ):
            return False
        target = parts.target
        if target == "global":
            return True
        kind, sep, pattern = target.partition(":")
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
