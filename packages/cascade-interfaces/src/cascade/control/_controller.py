"""Steering from Python: one object that pauses, resumes, limits and cancels over a connector."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from cascade.interfaces import Connector, Constraint, ConstraintType

from ._cancel import CancelAnswer, Refusal, request_cancel
from ._constraints import limit_constraints, parse_constraint_type, pause_constraint
from ._constraints import validate_scope as _validate_scope
from ._errors import ControlError
from ._operator import MAX_OPERATOR_LENGTH, checked_reason, checked_text, default_operator
from ._publishing import clear_constraints, set_constraints
from ._run_ids import checked_prefix, heard_run_ids, is_full, live_wait, one_run

__all__ = ["Cleared", "Controller", "Steered"]


@dataclass(frozen=True)
class Steered:
    """Constraints the broker acknowledged (set, retained, in the index where it needs one):
    each one's topic and what was published there."""

    constraints: tuple[tuple[str, Constraint], ...]

    @property
    def topics(self) -> tuple[str, ...]:
        """The topics written, in order."""
        return tuple(topic for topic, _ in self.constraints)


@dataclass(frozen=True)
class Cleared:
    """What a resume cleared: the constraint topics emptied (none: nothing was in force)."""

    scope: str
    topics: tuple[str, ...]


class Controller:
    """Pause, resume, limit and cancel the runs of the engines on ``connector`` (connected;
    its ``topic_prefix`` says which deployment), as `cascade pause`, `resume`, `limit` and
    `cancel` do.

    Every control is validated before anything is sent, and bad input raises
    :class:`ControlError` naming the field (``ttl must be ...``). What the broker refuses
    raises :class:`PublishRefusedError` (a ``ConnectorError``); a broker that cannot be
    reached, another ``ConnectorError``. ``issued_by`` is who the controls say they are from
    (a claim; default: ``user@host``), ``timeout`` how long each waits for the broker (and a
    cancel for the engine's answer), and ``login`` the broker login that says, on its own
    topic, what it did (for the history's audit; ``None``: nothing is said).
    """

    def __init__(
        self,
        connector: Connector,
        *,
        issued_by: str | None = None,
        timeout: float = 5.0,
        login: str | None = None,
    ) -> None:
        self.connector = connector
        self.issued_by = (
            default_operator(None)
            if issued_by is None
            else checked_text(issued_by, "issued_by", MAX_OPERATOR_LENGTH)
        )
        self.timeout = timeout
        self.login = login

    async def pause(
        self, scope: str = "global", *, ttl: float | None = None, reason: str | None = None
    ) -> Steered:
        """Pause the tasks in ``scope`` (``global`` or ``task:<glob>``): none starts until
        resumed, or for ``ttl`` seconds; running ones finish."""
        message = pause_constraint(
            scope, ttl, reason=checked_reason(reason), issued_by=self.issued_by
        )
        return await self._set([message])

    async def limit(
        self,
        scope: str,
        *,
        concurrency: int | None = None,
        rate: str | None = None,
        ttl: float | None = None,
        reason: str | None = None,
    ) -> Steered:
        """Limit how many tasks of ``scope`` run at once (``concurrency``) and/or how fast
        they start (``rate``: ``"10/m"``, ``"0.5/s"``)."""
        messages = limit_constraints(
            scope, concurrency, rate, ttl, reason=checked_reason(reason), issued_by=self.issued_by
        )
        return await self._set(messages)

    async def resume(
        self,
        scope: str = "global",
        *,
        type: ConstraintType | None = None,
        reason: str | None = None,
    ) -> Cleared:
        """Clear the constraints on ``scope``: all of them, or only those of ``type``."""
        kind = parse_constraint_type(type)
        _validate_scope(scope)
        why = checked_reason(reason)
        topics = await clear_constraints(
            self.connector,
            scope,
            kind,
            self.timeout,
            issued_by=self.issued_by,
            reason=why,
            login=self.login,
        )
        return Cleared(scope, tuple(topics))

    async def cancel(
        self,
        run_id: str,
        *,
        reason: str | None = None,
        owner: str | None = None,
        org: str | None = None,
        on_refused: Callable[[Refusal], None] | None = None,
    ) -> CancelAnswer:
        """Ask the engine running ``run_id`` (a whole id: see :meth:`resolve_run`) to cancel
        it; its answer (:class:`CancelAnswer`: ``reply`` is ``None`` when none came within
        the timeout), taken only from the run's owner, with the answers from others refused
        (counted, and told to ``on_refused``)."""
        wanted = checked_prefix(run_id)
        if not is_full(wanted):
            raise ControlError(
                f"a whole run id (32 hex digits) is cancelled, not {run_id!r}", "run_id"
            )
        return await request_cancel(
            self.connector,
            wanted,
            issued_by=self.issued_by,
            reason=checked_reason(reason),
            timeout=self.timeout,
            owner=owner,
            on_refused=on_refused,
            login=self.login,
            org=org,
        )

    async def resolve_run(
        self, prefix: str, *, recorded: Iterable[str] = (), more: bool = False
    ) -> str | None:
        """The whole id of the one run whose id starts with ``prefix``: among ``recorded``
        (ids from a history, say; ``more``: it may hold others) and the runs heard live
        within 5 s (the timeout when shorter); ``None`` when none does. Several do:
        :class:`ControlError` naming them."""
        wanted = checked_prefix(prefix)
        if is_full(wanted):
            return wanted
        live = await heard_run_ids(self.connector, wanted, live_wait(self.timeout))
        return one_run(wanted, live, recorded, more=more)

    async def _set(self, messages: list[tuple[str, Constraint]]) -> Steered:
        await set_constraints(self.connector, messages, self.timeout, login=self.login)
        return Steered(tuple(messages))
