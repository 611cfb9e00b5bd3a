"""Decisions on a held task: a request to the run's engine, its answer, and what an event says
was decided (docs/protocol.md, "Decisions on a held task").

A task whose attempts are used up under ``on_failure="hold"`` is held: published ``BLOCKED``
with a :class:`~cascade.interfaces.Hold` of type ``decision`` (the failed ``attempt``, the
``deadline`` and the ``default`` taken then). One of four decisions ends the hold: ``retry``
(one more attempt; failing again holds it again), ``skip`` (it ends ``SKIPPED``, its
dependents skipped as after a failure), ``complete`` (it ends ``COMPLETED`` with the
request's ``result`` given to its dependents) and ``fail`` (it ends ``FAILED``, as without a
hold). Requests travel as a cancel's do: QoS 1, not retained, on the run's command topic,
answered on :func:`~cascade.interfaces.commands.reply_topic` of the request's ``id``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal, TypeAlias

import msgspec

from ._asked import (
    ControlError,
    checked_text,
)
from ._constraint import convert
from ._errors import InvalidMessageError
from ._limits import MAX_CONTROL_PAYLOAD_BYTES, MAX_NUMBER
from ._topics import DEFAULT_PREFIX, encode_level

__all__ = [
    "DECISIONS",
    "MAX_RESULT_BYTES",
    "MAX_TASK_LENGTH",
    "Decided",
    "Decision",
    "DecisionOutcome",
    "DecisionReply",
    "DecisionRequest",
    "decide_topic",
    "decode_decision_reply",
    "decode_decision_request",
]

Decision: TypeAlias = Literal["retry", "skip", "complete", "fail"]
"""The four decisions on a held task."""
DECISIONS: tuple[Decision, ...] = ("retry", "skip", "complete", "fail")
DecisionOutcome: TypeAlias = Literal[
    "applied",
    "already_decided",
    "not_held",
    "unknown_task",
    "ambiguous",
    "stale_attempt",
    "not_retryable",
]
"""An answer's outcome: ``applied``; or refused: ``already_decided`` (the hold named was
decided before: ``decided`` says by whom), ``not_held`` (the task is not held), ``unknown_task``
(no task of the run has that id or name), ``ambiguous`` (several held tasks have that name:
``candidates`` lists their ids), ``stale_attempt`` (the task is held at another attempt than
the one named), ``not_retryable`` (a ``retry`` of a gate: it has no attempt to retry)."""

MAX_RESULT_BYTES = 16 * 1024
"""The longest ``result`` a ``complete`` may give, as JSON (the value dependents get)."""
MAX_TASK_LENGTH = 1024
"""The longest task id or name a decision names."""

_READ_LIMIT = 1024
_Seconds = Annotated[float, msgspec.Meta(ge=0, le=MAX_NUMBER)]
_Attempt = Annotated[int, msgspec.Meta(ge=1)]
_Text = Annotated[str, msgspec.Meta(max_length=_READ_LIMIT)]
_RequestId = Annotated[str, msgspec.Meta(pattern="^[A-Za-z0-9_-]{1,64}$")]


def decide_topic(org_id: str, project_id: str, run_id: str, prefix: str = DEFAULT_PREFIX) -> str:
    """``{prefix}/command/{org}/{project}/{run_id}/decide``: where the engine running ``run_id``
    (of ``org_id`` and ``project_id``) takes decisions on its held tasks (one of its
    :func:`~cascade.interfaces.commands.command_filter`)."""
    levels = (encode_level(org_id), encode_level(project_id), encode_level(run_id))
    return f"{prefix}/command/" + "/".join(levels) + "/decide"


class Decided(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A decision taken on a hold: which, on which failed ``attempt``, by whom and why.

    On the answers (``decided``: the decision that had been taken, when a request is refused
    as ``already_decided``) and, additive, on the task event a decision leads to (the retry's
    ``RUNNING``, the ``COMPLETED``, ``SKIPPED`` or ``FAILED`` that ends the hold), so that the
    run's own telemetry records every decision, the deadline's included: ``by`` is then
    ``None`` and ``deadline`` true. ``id`` is the request's (none for a deadline's).
    """

    decision: Decision
    attempt: _Attempt
    by: _Text | None = None
    reason: _Text | None = None
    at: _Seconds | None = None
    id: _RequestId | None = None
    deadline: bool | None = None


class DecisionRequest(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A decision on a held task of ``run_id``: ``task`` is its id (``load-3``) or name
    (``load``; refused as ``ambiguous`` when several held tasks have it); ``attempt`` the
    held attempt the decision is about (``None``: whichever is held when it arrives);
    ``result`` the value a ``complete`` gives (JSON, at most :data:`MAX_RESULT_BYTES`;
    ``None`` is a value too). ``issued_by`` and ``reason`` are the requester's claim,
    ``issued_at`` epoch seconds. The answer goes to ``reply_topic(org, id, source)``.
    """

    id: _RequestId
    run_id: Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]
    task: Annotated[str, msgspec.Meta(min_length=1, max_length=_READ_LIMIT)]
    decision: Decision
    attempt: _Attempt | None = None
    result: Any = None
    issued_by: _Text | None = None
    reason: _Text | None = None
    issued_at: _Seconds | None = None

    def __post_init__(self) -> None:
        if self.result is not None:
            if self.decision != "complete":
                raise ValueError(f"a result goes with complete, not {self.decision}")
            if len(msgspec.json.encode(self.result)) > MAX_RESULT_BYTES:
                raise ValueError(f"a result is at most {MAX_RESULT_BYTES} bytes of JSON")


class DecisionReply(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The engine's answer to a :class:`DecisionRequest`: ``outcome`` (:data:`DecisionOutcome`),
    the task it found (``task_id``, ``task_name``; unset when none) and the ``attempt`` held
    when the request came; ``decided``, the decision taken on that hold (this request's when
    ``applied``, the earlier one's when ``already_decided``); ``candidates``, the ids of the
    held tasks of that name when ``ambiguous``. ``decision``, ``issued_by``, ``reason`` and
    ``issued_at`` echo the request's, so that the answer alone records it (the audit).

    A request ``id`` is applied once: a copy of it (QoS 1 resent) gets the same answer.
    """

    id: _RequestId
    run_id: str
    source: str
    decision: Decision
    outcome: Annotated[str, msgspec.Meta(max_length=64)]
    task_id: str | None = None
    task_name: str | None = None
    attempt: _Attempt | None = None
    decided: Decided | None = None
    candidates: Annotated[list[str], msgspec.Meta(max_length=_READ_LIMIT)] | None = None
    issued_by: str | None = None
    reason: str | None = None
    issued_at: _Seconds | None = None

    @property
    def applied(self) -> bool:
        """Whether the engine applied this request (a copy of an applied one included)."""
        return self.outcome == "applied"


def _checked_size(data: Mapping[str, Any] | bytes | str) -> None:
    if isinstance(data, (bytes, str)) and len(data) > MAX_CONTROL_PAYLOAD_BYTES:
        raise InvalidMessageError(
            f"command payload is {len(data)} bytes; at most {MAX_CONTROL_PAYLOAD_BYTES} accepted"
        )


def decode_decision_request(data: Mapping[str, Any] | bytes | str) -> DecisionRequest:
    """Decode and validate an untrusted decision request; raises :class:`InvalidMessageError`."""
    _checked_size(data)
    return convert(data, DecisionRequest)


def decode_decision_reply(data: Mapping[str, Any] | bytes | str) -> DecisionReply:
    """Decode and validate an engine's answer to a decision; raises
    :class:`InvalidMessageError`."""
    _checked_size(data)
    return convert(data, DecisionReply)


def checked_decision_fields(
    task: object, decision: object, attempt: object, result: Any
) -> tuple[str, Decision, Any]:
    """The held ``task`` (stripped), the ``decision`` and a ``complete``'s ``result`` (a copy
    of the JSON value; none given is ``null``: a gate approved is ``true``, as the CLI and the
    page send it; :data:`msgspec.UNSET` for the other decisions) as a decision sends them, the
    ``attempt`` checked; else :class:`ControlError` naming the field (``task``,
    ``decision``, ``attempt``, ``result``)."""
    if not isinstance(task, str):
        raise ControlError(f"task is a held task's id or name: text, not {task!r}", "task")
    named = checked_text(task, "task", MAX_TASK_LENGTH)
    checked = _checked_decision(decision)
    if attempt is not None and (
        isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 1
    ):
        raise ControlError(f"attempt must be a whole number from 1, not {attempt!r}", "attempt")
    given = result if result is msgspec.UNSET else _checked_result(result, checked)
    if checked == "complete" and result is msgspec.UNSET:
        given = None
    return named, checked, given


def _checked_decision(decision: object) -> Decision:
    for known in DECISIONS:
        if decision == known:
            return known
    raise ControlError(
        f"decision must be one of {', '.join(DECISIONS)}, not {decision!r}", "decision"
    )


def _checked_result(result: Any, decision: Decision) -> Any:
    if decision != "complete":
        raise ControlError(f"a result goes with complete, not with {decision}", "result")
    try:
        encoded = msgspec.json.encode(result)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ControlError(f"result is not JSON: {exc}", "result") from None
    if len(encoded) > MAX_RESULT_BYTES:
        raise ControlError(
            f"result is {len(encoded):,} bytes of JSON, at most {MAX_RESULT_BYTES:,}", "result"
        )
    return msgspec.json.decode(encoded)
