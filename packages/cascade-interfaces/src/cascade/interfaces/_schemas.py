"""The wire protocol's message schemas (PROTOCOL.md), with strict decoding of untrusted input.

Schemas are msgspec structs: encoding them is fast enough for the telemetry hot
path, and decoding reports the offending field (``$.params.limit``). Unknown
fields are ignored, as the protocol asks of readers.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Annotated, Any, Literal, TypeAlias, TypeVar

import msgspec

from ._codec import DECODE_ERRORS, invalid_message
from ._errors import InvalidMessageError
from ._limits import MAX_CONTROL_PAYLOAD_BYTES, MAX_NUMBER
from ._rules import parse_rate

__all__ = [
    "PROTOCOL_VERSION",
    "Body",
    "Constraint",
    "ConstraintType",
    "Envelope",
    "Heartbeat",
    "LifecycleEvent",
    "LifecycleName",
    "RunStatus",
    "StatusMessage",
    "TaskState",
    "TaskStateEvent",
    "decode_constraint",
    "decode_envelope",
    "decode_status",
    "utc_now_iso",
    "validate_scope",
]

PROTOCOL_VERSION = "1.0"
_MAX_ID = 256
_MAX_SCOPE = 1024
_MAX_LIMIT = 2**31 - 1
_MAX_NUMBER = MAX_NUMBER

TaskState: TypeAlias = Literal["RUNNING", "COMPLETED", "FAILED", "SKIPPED", "BLOCKED", "RETRYING"]
LifecycleName: TypeAlias = Literal["ENGINE_STARTED", "ENGINE_STOPPED"]
RunStatus: TypeAlias = Literal["Succeeded", "Failed"]
ConstraintType: TypeAlias = Literal["pause", "concurrency", "rate_limit"]

_Count = Annotated[int, msgspec.Meta(ge=0)]
_Seconds = Annotated[float, msgspec.Meta(ge=0, le=_MAX_NUMBER)]


def utc_now_iso() -> str:
    """The current time as the protocol writes it: ISO 8601 in UTC with ``+00:00``."""
    return datetime.now(timezone.utc).isoformat()


class LifecycleEvent(
    msgspec.Struct, tag="LifecycleEvent", tag_field="type", kw_only=True, omit_defaults=True
):
    """A run's start or end. ``status`` and ``error`` are set on ``ENGINE_STOPPED``.

    ``tasks`` (on ``ENGINE_STARTED``) is how many tasks the run plans, so that an
    observer knows the run's size from its start; it is additive: readers that
    do not know it ignore it, and engines that do not send it leave it ``None``.
    """

    event: LifecycleName
    status: RunStatus | None = None
    error: str | None = None
    tasks: _Count | None = None


class TaskStateEvent(msgspec.Struct, tag="TaskStateEvent", tag_field="type", kw_only=True):
    """A task entered ``state``. ``error`` is ``"ExcType: message"``, or ``""`` when none."""

    task_id: str
    task_name: str
    state: TaskState
    duration_ms: Annotated[float, msgspec.Meta(ge=0, le=_MAX_NUMBER)] = 0.0
    error: str = ""


class Heartbeat(msgspec.Struct, tag="Heartbeat", tag_field="type", kw_only=True):
    """Periodic counters of a run, published on the run's ``.../heartbeat`` topic."""

    running: _Count = 0
    completed: _Count = 0
    failed: _Count = 0
    skipped: _Count = 0
    blocked: _Count = 0
    pending: _Count = 0
    dropped_telemetry: _Count = 0


Body: TypeAlias = "LifecycleEvent | TaskStateEvent | Heartbeat"


class Envelope(msgspec.Struct, kw_only=True):
    """The telemetry envelope that carries every body."""

    v: str = PROTOCOL_VERSION
    ts: str = msgspec.field(default_factory=utc_now_iso)
    run_id: str
    org_id: str
    project_id: str
    source: str
    body: LifecycleEvent | TaskStateEvent | Heartbeat


class StatusMessage(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A source's presence: birth (``online``), will and graceful shutdown (``offline``).

    Only ``status`` is required, so messages of older tools decode too.
    ``conflict_session`` (optional, Cascade's own): set on an ``online`` when
    the connector has seen another live connector announce the same source
    id, with that one's session: two engines share the id and their status
    messages hide each other's.
    """

    status: Literal["online", "offline"]
    source: str | None = None
    session: _Count | None = None
    ts: str | None = None
    reason: str | None = None
    conflict_session: _Count | None = None

    @classmethod
    def announce(
        cls,
        status: Literal["online", "offline"],
        source: str,
        session: int,
        reason: str | None = None,
        conflict_session: int | None = None,
    ) -> StatusMessage:
        """A connector's presence message for ``source`` and ``session``, stamped now."""
        return cls(
            status=status,
            source=source,
            session=session,
            ts=utc_now_iso(),
            reason=reason,
            conflict_session=conflict_session,
        )

    def supersedes(self, other: StatusMessage) -> bool:
        """Whether this message should replace ``other`` as the source's current status.

        The one rule of which status message hides which (readers and
        :class:`~cascade.interfaces.connector_kit.PresenceGuard` both use it):
        an ``offline`` from an older session than the ``online`` already seen
        is a stale will and never marks a live, reconnected source as
        offline; anything else replaces what came before.
        """
        if (
            self.status == "offline"
            and other.status == "online"
            and self.session is not None
            and other.session is not None
        ):
            return self.session >= other.session
        return True


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
    """Return ``scope`` if it is one an engine applies: ``global`` or ``task:<glob>``.

    PROTOCOL.md lets readers store other scopes as matching nothing; Cascade's
    engine and CLI reject them instead, so that a typo such as ``tsk:x`` or
    ``task:`` is reported rather than silently doing nothing. Raises
    :class:`InvalidMessageError` at ``$.scope``.
    """
    kind, sep, pattern = scope.partition(":")
    if scope == "global" or (kind == "task" and sep and pattern):
        return scope
    raise InvalidMessageError(
        f"unknown scope {scope!r}: expected 'global' or 'task:<glob>'", "$.scope"
    )


class Constraint(msgspec.Struct, kw_only=True):
    """A control message: pause, concurrency or rate limit on a scope, until ``expires_at``.

    ``scope`` is ``global`` or ``task:<glob>``; ``expires_at`` is epoch seconds
    or ``None``. Build one with :meth:`pause`, :meth:`concurrency` or
    :meth:`rate_limit`, which validate their arguments.
    """

    id: Annotated[str, msgspec.Meta(min_length=1, max_length=_MAX_ID)]
    scope: Annotated[str, msgspec.Meta(min_length=1, max_length=_MAX_SCOPE)]
    type: ConstraintType
    params: dict[str, Any] = msgspec.field(default_factory=dict)
    expires_at: _Seconds | None = None

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
    def pause(cls, scope: str, *, expires_at: float | None = None) -> Constraint:
        """A pause of every task in ``scope``."""
        return _checked(cls, scope, "pause", {}, expires_at)

    @classmethod
    def concurrency(cls, scope: str, limit: int, *, expires_at: float | None = None) -> Constraint:
        """At most ``limit`` tasks of ``scope`` running at once."""
        return _checked(cls, scope, "concurrency", {"limit": limit}, expires_at)

    @classmethod
    def rate_limit(
        cls,
        scope: str,
        rate: str | float,
        *,
        capacity: float | None = None,
        expires_at: float | None = None,
    ) -> Constraint:
        """Tasks of ``scope`` start at most at ``rate`` (``"10/m"``, ``0.5``).

        Up to ``capacity`` tasks may start at once after a quiet spell.
        """
        params: dict[str, Any] = {"rate": rate}
        if capacity is not None:
            params["capacity"] = capacity
        return _checked(cls, scope, "rate_limit", params, expires_at)


def _checked(
    cls: type[Constraint],
    scope: str,
    kind: ConstraintType,
    params: dict[str, Any],
    expires_at: float | None,
) -> Constraint:
    raw = {
        "id": f"{_ID_PREFIX[kind]}-{scope}",
        "scope": scope,
        "type": kind,
        "params": params,
        "expires_at": expires_at,
    }
    return decode_constraint(raw)


_T = TypeVar("_T")


def _convert(data: Mapping[str, Any] | bytes | str, target: type[_T], prefix: str = "$") -> _T:
    try:
        if isinstance(data, (bytes, str)):
            return msgspec.json.decode(data, type=target)
        return msgspec.convert(data, type=target)
    except DECODE_ERRORS as exc:
        raise invalid_message(exc, prefix) from None


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
    constraint = _convert(data, Constraint)
    params = _convert(constraint.params, _PARAMS[constraint.type], "$.params")
    if isinstance(params, _RateLimitParams):
        try:
            parse_rate(params.rate)
        except ValueError as exc:
            raise InvalidMessageError(str(exc), "$.params.rate") from None
    constraint.params = msgspec.to_builtins(params)
    return constraint


def decode_envelope(data: Mapping[str, Any] | bytes | str) -> Envelope:
    """Decode and validate a telemetry envelope; raises :class:`InvalidMessageError`."""
    return _convert(data, Envelope)


def decode_status(data: Mapping[str, Any] | bytes | str) -> StatusMessage:
    """Decode and validate a presence status message; raises :class:`InvalidMessageError`."""
    return _convert(data, StatusMessage)
