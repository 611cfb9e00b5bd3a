"""The audit's rows as the history returns them (``History.audit``). Times are epoch seconds
(UTC)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

__all__ = ["AUDIT_COLUMNS", "AuditEvent"]


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """A constraint set, cleared or expired on ``topic`` at ``at``, or a run cancelled.

    ``action`` is ``set`` (also a change of one in force), ``cleared`` (an
    empty retained payload: ``cascade resume``) or ``expired`` (its
    ``expires_at`` passed with nothing after it on its topic). A cleared
    event's scope, type and params are those of what it cleared, when the
    history had it. ``ttl`` is ``expires_at - at`` for a set with an expiry.
    ``reason``, ``issued_by`` and ``issued_at`` are what the writer said (``issued_by``
    is claimed, not checked): of a set, its constraint's; of a clear, the
    :class:`~cascade.interfaces.notes.ClearNote` its writer published beside it (`cascade
    resume --as --reason`, the dashboard); of an expiry, the set's. ``None`` where
    nothing said (older writers, ``mosquitto_pub``).

    ``cancelled``: the engine running run ``run_id`` (``source``) answered the cancel request
    ``request_id`` (`cascade cancel`, the dashboard's Cancel) on ``topic`` at ``at``; ``scope``
    is ``run:<run_id>``; ``stopped`` says what it stopped as the engine answered:
    ``outcome`` (``cancelled``, or ``already_cancelled`` for a second request), the running
    coroutine tasks it cancelled (``cancelled``: at most 32 ``{task_id, task_name}``;
    ``cancelled_count`` counts all), the plain-function tasks left to finish in their
    threads (``abandoned``, ``abandoned_count``) and ``not_started``. Its ``issued_by``,
    ``reason`` and ``issued_at`` are the request's, echoed by the engine (``None`` from
    engines that do not echo them). It is what the answering engine said: nothing checks it.
    These four fields are ``None`` for a constraint's event.

    ``decided``: the engine running run ``run_id`` (``source``) answered the decision request
    ``request_id`` on a held task (`cascade retry`, the dashboard's Retry, ...): ``type`` is
    the decision, ``scope`` ``run:<run_id>/task:<task_id>/attempt:<n>``, ``decided`` the
    answer (:meth:`~cascade.history.DecisionRecord.to_json`: its ``outcome``, ``applied`` or
    why refused, and the decision that won the hold); ``issued_by``, ``reason`` and
    ``issued_at`` the request's, echoed.

    ``start``: run ``run_id``'s engine (``source``) said a start request (``request_id``:
    `cascade start`, `cascade rerun`, the dashboard's start form) started it: ``type`` is the
    served workflow, ``params`` its params, ``scope`` ``run:<run_id>``, ``issued_by``,
    ``reason`` and ``issued_at`` the request's, ``started`` the run's ``name``, ``workflow``,
    ``params``, ``rerun_of`` and ``root_run``; ``at`` when the history first heard of the run.
    It is as much to be believed as the run's own events.

    ``refused``: a team's dashboard refused ``issued_by`` the action ``type`` (``pause``,
    ``resume``, ``cancel``, ``read``, ...) on ``scope`` (a constraint scope, ``run:<id>``
    with ``run_id`` set, or the path read), because ``reason``; ``topic`` is ``""``.

    ``count``: how many refusals the row stands for (those of one person, action and reason
    within a minute are one row: the first at ``at``, the last at ``last_at``); 1 otherwise.

    ``vouched``: what vouched for ``issued_by`` (``oidc``, ``proxy``, ``api-token``,
    ``token``; ``oidc:email``, ``oidc:sub``: the ID token's claim that named them). Of a
    refusal, what the dashboard signed the person in with; of a set, a clear or a cancel,
    what the dashboard's allowed row that matches it said (the match rule:
    ``cascade.history.access._access``); ``None``: only claimed, as its writer said it.

    ``notified``: `cascade notify` posted an event to a webhook, or failed to for good:
    ``type`` is the event's kind (``run.failed``, ...), ``scope`` ``run:<run_id>`` (an
    engine's loss: ``engine:<source>``), ``issued_by`` the notifier, ``notified`` the post
    (:meth:`~cascade.history.NotifyPost.to_json`: the webhook redacted, the outcome, the
    attempts, the last HTTP status and error).
    """

    at: float
    action: str
    scope: str | None = None
    type: str | None = None
    params: dict[str, Any] | None = None
    expires_at: float | None = None
    topic: str = ""
    constraint_id: str | None = None
    reason: str | None = None
    issued_by: str | None = None
    issued_at: float | None = None
    run_id: str | None = None
    source: str | None = None
    request_id: str | None = None
    stopped: dict[str, Any] | None = None
    decided: dict[str, Any] | None = None
    vouched: str | None = None
    count: int = 1
    last_at: float | None = None
    started: dict[str, Any] | None = None
    notified: dict[str, Any] | None = None

    @property
    def ttl(self) -> float | None:
        """Seconds from the set to its expiry, ``None`` without one."""
        if self.action != "set" or self.expires_at is None:
            return None
        return self.expires_at - self.at

    def to_json(self) -> dict[str, Any]:
        """This event as a JSON object (``ttl`` included)."""
        return {column: getattr(self, column) for column in AUDIT_COLUMNS}


def _columns() -> tuple[str, ...]:
    names = [field.name for field in fields(AuditEvent)]
    at = names.index("expires_at") + 1
    return (*names[:at], "ttl", *names[at:])


AUDIT_COLUMNS = _columns()
"""An audit row's columns: ``AuditEvent.to_json``'s fields (its own, ``ttl`` after
``expires_at``)."""
