"""One request type per verb of steering: what a pause, a limit, a resume, a cancel, a decision
and a start ask, checked once, where it is made; the protocol's, as the messages they are sent
as are, whoever makes them (``cascade.control`` sends them).

Each is a msgspec struct whose ``__post_init__`` holds the verb's checks: made in Python
(``Pause(scope="task:load_*", ttl=600)``) or decoded from a JSON body (:func:`read_request`, as
the dashboard reads its controls), bad input raises :class:`ControlError` naming the field
before anything is sent, and the fields are kept as they will be sent (a reason stripped, a run
id in lower case). Who issues it is the :class:`~cascade.control.Controller`'s, not the
request's; what it publishes is built when it is sent, stamped then. The engine checks a
decision made in its own process with :class:`Decide` too.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import Any, TypeVar

import msgspec
from msgspec.structs import force_setattr

from ._asked import (
    ControlError,
    checked_name,
    checked_prefix,
    checked_reason,
    is_full,
    new_request_id,
)
from ._constraint import Constraint, ConstraintType
from ._constraint_requests import (
    limit_constraints,
    parse_constraint_type,
    pause_constraint,
    validate_scope,
)
from ._decisions import Decision, DecisionRequest, checked_decision_fields
from ._serving import RerunMode, StartRequest
from ._start_request import start_request
from ._topics import DEFAULT_PREFIX

__all__ = ["Cancel", "Decide", "Limit", "Pause", "Resume", "Start", "read_request"]


class _Request(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What every request is: a value, its fields checked when it is made."""


def _place(request: Cancel | Start) -> None:
    for name in ("org", "project"):
        value = getattr(request, name)
        if value is not None and not isinstance(value, str):
            raise ControlError(f"{name} is an id: text, not {value!r}", name)


def _reason(request: Any) -> None:
    force_setattr(request, "reason", checked_reason(request.reason))


class Pause(_Request, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Pause the tasks in ``scope`` (``global`` or ``task:<glob>``): none starts until resumed,
    or for ``ttl`` seconds; running ones finish. As `cascade pause` asks it."""

    scope: str = "global"
    ttl: float | None = None
    reason: str | None = None

    def __post_init__(self) -> None:
        _reason(self)
        self.constraints()  # what it publishes is checked as it will be built

    def constraints(
        self, issued_by: str | None = None, prefix: str = DEFAULT_PREFIX
    ) -> list[tuple[str, Constraint]]:
        """The topic (under ``prefix``) and constraint it publishes, stamped now."""
        return [
            pause_constraint(
                self.scope, self.ttl, reason=self.reason, issued_by=issued_by, prefix=prefix
            )
        ]


class Limit(_Request, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Limit how many tasks of ``scope`` run at once (``concurrency``; 0: none start) and/or
    how fast they start (``rate``: ``"10/m"``, ``"0.5/s"``), for ``ttl`` seconds or until
    resumed. As `cascade limit` asks it."""

    scope: str
    concurrency: int | None = None
    rate: str | None = None
    ttl: float | None = None
    reason: str | None = None

    def __post_init__(self) -> None:
        _reason(self)
        self.constraints()

    def constraints(
        self, issued_by: str | None = None, prefix: str = DEFAULT_PREFIX
    ) -> list[tuple[str, Constraint]]:
        """The topics (under ``prefix``) and constraints it publishes (a concurrency limit, a
        rate limit or both), stamped now."""
        return limit_constraints(
            self.scope,
            self.concurrency,
            self.rate,
            self.ttl,
            reason=self.reason,
            issued_by=issued_by,
            prefix=prefix,
        )


class Resume(_Request, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Clear the constraints on ``scope``: all of them, or only those of ``type``. As
    `cascade resume` asks it."""

    scope: str = "global"
    type: ConstraintType | None = None
    reason: str | None = None

    def __post_init__(self) -> None:
        if self.type is not None and not isinstance(self.type, str):
            raise ControlError(
                f"type must be pause, concurrency or rate_limit, not {self.type!r}", "type"
            )
        force_setattr(self, "type", parse_constraint_type(self.type))
        validate_scope(self.scope)
        _reason(self)


class Cancel(_Request, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Cancel the run ``run_id``: its engine stops it and says what it stopped. As
    `cascade cancel` asks it.

    ``run_id`` is 1 to 32 hex digits (kept in lower case); only a whole id is sent: a face
    resolves a prefix first (:meth:`~cascade.control.Controller.resolve_run`). ``org`` and
    ``project`` are the run's when known (the request's topic names them; without them the
    run is first heard on its telemetry)."""

    run_id: str
    reason: str | None = None
    org: str | None = None
    project: str | None = None

    def __post_init__(self) -> None:
        force_setattr(self, "run_id", checked_prefix(self.run_id))
        _reason(self)
        _place(self)

    def whole_run_id(self) -> str:
        """The run's whole id; :class:`ControlError` for a prefix."""
        if not is_full(self.run_id):
            raise ControlError(
                f"a whole run id (32 hex digits) is cancelled, not {self.run_id!r}", "run_id"
            )
        return self.run_id


class Decide(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Take ``decision`` (``retry``, ``skip``, ``complete``, ``fail``) on the held ``task``
    (its id, or its name when one held task has it) of the run ``run_id``, at the held
    ``attempt`` (``None``: whichever is held when it arrives); ``result`` is a ``complete``'s
    only (any JSON value, ``None`` too: left unset, there is none). As `cascade retry`,
    `skip`, `complete` and `fail` ask it, and ``Engine.decide`` in the engine's own process.

    Checked when it is made: bad input raises :class:`ControlError` naming the field.
    ``run_id`` is 1 to 32 hex digits (kept in lower case; only a whole id is sent: a face
    resolves a prefix first); ``org`` and ``project`` are the run's when known (the request's
    topic names them; without them the run is first heard on its telemetry)."""

    run_id: str
    task: str
    decision: Decision
    attempt: int | None = None
    result: Any = msgspec.UNSET
    reason: str | None = None
    org: str | None = None
    project: str | None = None

    def __post_init__(self) -> None:
        force_setattr(self, "run_id", checked_prefix(self.run_id))
        task, decision, result = checked_decision_fields(
            self.task, self.decision, self.attempt, self.result
        )
        force_setattr(self, "task", task)
        force_setattr(self, "decision", decision)
        force_setattr(self, "result", result)
        force_setattr(self, "reason", checked_reason(self.reason))
        for name in ("org", "project"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise ControlError(f"{name} is an id: text, not {value!r}", name)

    def wire_request(
        self, *, issued_by: str | None = None, request_id: str | None = None
    ) -> DecisionRequest:
        """The :class:`DecisionRequest` it sends (a whole run id only: :class:`ControlError`
        for a prefix), stamped now, ``issued_by`` checked (:func:`checked_name`), with
        ``request_id`` (default: a fresh one)."""
        if not is_full(self.run_id):
            raise ControlError(
                f"a whole run id (32 hex digits) is decided on, not {self.run_id!r}", "run_id"
            )
        return DecisionRequest(
            id=new_request_id() if request_id is None else request_id,
            run_id=self.run_id,
            task=self.task,
            decision=self.decision,
            attempt=self.attempt,
            result=None if self.result is msgspec.UNSET else self.result,
            issued_by=None if issued_by is None else checked_name(issued_by),
            reason=self.reason,
            issued_at=time.time(),
        )


class Start(_Request, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Start the served ``workflow`` with ``params`` (JSON values by name), or rerun
    ``rerun_of`` (a run id, or a prefix of at least 6 hex digits): ``rerun`` says what runs
    again (``failure``, ``all``, or ``from`` ``from_task`` on), ``dry_run`` asks for the plan
    and starts nothing. ``on`` names the serving process (its source); ``org`` and
    ``project`` pick among the places that serve it. As `cascade start` and `rerun` ask it."""

    workflow: str
    params: dict[str, Any] | None = None
    reason: str | None = None
    on: str | None = None
    org: str | None = None
    project: str | None = None
    rerun_of: str | None = None
    rerun: RerunMode = "failure"
    from_task: str | None = None
    dry_run: bool = False

    def __post_init__(self) -> None:
        if self.reason is not None and not isinstance(self.reason, str):
            raise ControlError(f"reason must be text, not {self.reason!r}", "reason")
        if self.on is not None and not isinstance(self.on, str):
            raise ControlError("on is a serving process's source id", "on")
        _place(self)
        checked = self.wire_request()
        force_setattr(self, "workflow", checked.workflow)
        force_setattr(self, "params", checked.params or None)
        force_setattr(self, "reason", checked.reason)
        force_setattr(self, "rerun_of", checked.rerun_of)
        force_setattr(self, "from_task", checked.from_task)

    def wire_request(self, *, issued_by: str | None = None) -> StartRequest:
        """The :class:`~cascade.interfaces.serving.StartRequest` it sends, stamped now with a
        fresh id (``issued_by`` checked: :class:`ControlError`)."""
        return start_request(
            self.workflow,
            self.params,
            rerun_of=self.rerun_of,
            rerun=self.rerun,
            from_task=self.from_task,
            dry_run=self.dry_run,
            issued_by=issued_by,
            reason=self.reason,
        )


R = TypeVar("R", Pause, Limit, Resume, Cancel, Decide, Start)


def read_request(kind: type[R], body: Any, **given: Any) -> R:
    """The request of ``kind`` that a JSON ``body`` (decoded: a dict, or ``None`` for no body)
    asks, with ``given`` fields (the run and the task of an address, say) that the body may
    not give itself. Anything wrong raises :class:`ControlError` naming the field (``body``
    for its shape), in the words the request's own checks use."""
    if body is None:
        body = {}
    if not isinstance(body, Mapping):
        raise ControlError("the body must be a JSON object", "body")
    may_give = [name for name in kind.__struct_fields__ if name not in given]
    unknown = sorted(str(name) for name in body if name not in may_give)
    if unknown:
        raise ControlError(
            f"unknown fields: {', '.join(unknown)} (give {', '.join(may_give)})", "body"
        )
    fields = {**body, **given}
    try:
        return msgspec.convert(fields, kind)
    except msgspec.ValidationError as exc:
        if isinstance(exc.__cause__, ControlError):
            raise exc.__cause__ from None
        said, _, where = str(exc).partition(" - at `$")
    missing = re.fullmatch(r"Object missing required field `(\w+)`", said)
    if missing is not None:
        raise ControlError(f"{missing[1]} is missing", missing[1])
    field = re.split(r"[.\[`]", where.lstrip("."), maxsplit=1)[0] or "body"
    try:
        kind(**fields)  # a value of the wrong type: the request's checks say it in their words
    except ControlError:
        raise
    except (TypeError, ValueError, AttributeError):
        pass
    raise ControlError(f"{field}: {said}", field)
