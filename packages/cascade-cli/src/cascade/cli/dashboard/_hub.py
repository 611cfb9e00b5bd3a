"""The dashboard's one broker connection: one subscription shared by every open page."""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Mapping
from typing import Any

from cascade.interfaces import Connector, SnapshotAsker
from cascade.interfaces.connector_kit import event_set

from .._cancel import CancelAnswer, Refusal, request_cancel
from .._context import UsageError
from .._control import limit_constraints, pause_constraint, validate_scope
from .._operator import checked_reason, default_operator
from .._publishing import clear_constraints, parse_constraint_type, set_constraints
from .._reading import subscribe_constraints, subscribe_statuses
from .._run_ids import checked_prefix, is_full
from .._view_options import DEFAULT_FLEET_THRESHOLD
from ._fleet_mode import RELEASE_AFTER, FleetMode
from ._model import DashboardModel

__all__ = ["DashboardHub", "constraint_messages"]

_log = logging.getLogger("cascade.cli.dashboard")
_PARAMS = {"pause": set(), "concurrency": {"limit"}, "rate_limit": {"rate"}}


def constraint_messages(body: Any, issued_by: str | None = None) -> list[tuple[str, Any]]:
    """What ``POST /api/constraints`` with ``body`` publishes: the CLI's own messages.

    ``body`` is ``{"scope": ..., "type": "pause" | "concurrency" | "rate_limit",
    "params": {...}, "ttl": seconds or null, "reason": text or null}``; the constraints
    say they were issued by ``issued_by`` (the name of the request's token). Raises
    :class:`UsageError` (the CLI's, with its messages) for anything the CLI would refuse
    with exit 2.
    """
    if not isinstance(body, Mapping):
        raise UsageError("the body must be a JSON object")
    unknown = set(body) - {"scope", "type", "params", "ttl", "reason"}
    if unknown:
        raise UsageError(f"unknown fields: {', '.join(sorted(map(str, unknown)))}")
    scope, kind = body.get("scope"), body.get("type")
    params, ttl = body.get("params") or {}, body.get("ttl")
    reason = body.get("reason")
    if reason is not None and not isinstance(reason, str):
        raise UsageError(f"--reason must be text, not {reason!r}")
    notes = {"reason": checked_reason(reason or None), "issued_by": issued_by}
    if not isinstance(scope, str):
        raise UsageError("scope must be a string: 'global' or 'task:<glob>'")
    if not isinstance(kind, str) or kind not in _PARAMS:
        raise UsageError(f"type must be pause, concurrency or rate_limit, not {kind!r}")
    if not isinstance(params, Mapping):
        raise UsageError("params must be an object")
    extra = set(params) - _PARAMS[kind]
    if extra:
        raise UsageError(f"params of {kind} take no {', '.join(sorted(map(str, extra)))}")
    if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, (int, float))):
        raise UsageError(f"--ttl must be a number of seconds, not {ttl!r}")
    ttl = None if ttl is None else float(ttl)
    if kind == "pause":
        return [pause_constraint(scope, ttl, **notes)]
    if kind == "concurrency":
        limit = params.get("limit")
        if isinstance(limit, bool) or not isinstance(limit, int):
            raise UsageError(f"--concurrency must be a whole number, not {limit!r}")
        return list(limit_constraints(scope, limit, None, ttl, **notes))
    rate = params.get("rate")
    if isinstance(rate, (int, float)) and not isinstance(rate, bool) and math.isfinite(rate):
        rate = f"{rate:g}"
    if not isinstance(rate, str):
        raise UsageError(f"--rate must be like '10/m', '0.5/s' or a number, not {rate!r}")
    return list(limit_constraints(scope, None, rate, ttl, **notes))


class DashboardHub:
    """Owns the connector, the model fed by it, and the wake-up of the pages' streams.

    Pages never hold a queue of their own: they wait for :attr:`DashboardModel.version`
    to move and then read the model, so however fast messages come, a slow page costs
    no memory.
    """

    def __init__(
        self,
        connector: Connector,
        *,
        timeout: float = 5.0,
        operator: str | None = None,
        fleet_threshold: int = DEFAULT_FLEET_THRESHOLD,
        release_after: float = RELEASE_AFTER,
    ) -> None:
        self.connector = connector
        self.timeout = timeout
        self.operator = operator or default_operator(None)
        """Who the controls of a token without a name are issued by."""
        self.model = DashboardModel(prefix=connector.topic_prefix)
        self.closing = asyncio.Event()
        self._changed = asyncio.Event()
        self.telemetry = FleetMode(
            connector,
            self._on_message,
            self.model,
            threshold=fleet_threshold,
            release_after=release_after,
            on_change=lambda: self._changed.set(),
        )
        """Which telemetry is read (every run's, or in fleet mode the opened runs'), and the
        pages' opened runs (``open``/``close``)."""

    async def start(self) -> None:
        """Connect (failing fast when the broker cannot be reached) and subscribe: to the
        engines' status and summaries first, so a fleet is known before any telemetry."""
        await self.connector.connect(require=True)
        self.model.state.ask = SnapshotAsker(self.connector).ask
        await subscribe_statuses(self.connector, self._on_message)
        await self.telemetry.start()
        await subscribe_constraints(self.connector, self._on_message)

    def close_streams(self) -> None:
        """End every page's stream (the server is stopping)."""
        self.closing.set()
        self._changed.set()

    async def stop(self) -> None:
        """End every page's stream, then disconnect."""
        self.close_streams()
        await self.telemetry.stop()
        await self.connector.disconnect()

    def _on_message(self, message: Any) -> None:
        self.model.apply(message)
        self.telemetry.consider(self.model.fleet.live_runs)
        self._changed.set()

    async def wait_change(self, seen: int, timeout: float) -> None:
        """Return once the model's version is past ``seen``, after ``timeout``, or on close."""
        if self.model.version != seen or self.closing.is_set():
            return
        if self._changed.is_set():
            self._changed = asyncio.Event()
        changed = self._changed
        await event_set(changed, timeout)

    def connection(self) -> dict[str, Any]:
        """The broker connection as the pages show it."""
        return {
            "connected": self.connector.is_connected,
            "prefix": self.connector.topic_prefix,
            "received": self.connector.stats.received,
        }

    async def apply_constraints(
        self, body: Any, issued_by: str | None = None
    ) -> list[dict[str, Any]]:
        """Validate ``body`` as the CLI does, publish it (issued by ``issued_by``, else
        :attr:`operator`), and wait for the broker's ack."""
        messages = constraint_messages(body, issued_by or self.operator)
        await set_constraints(self.connector, messages, self.timeout)
        return [{"topic": topic, "id": c.id, "type": c.type} for topic, c in messages]

    async def clear(self, scope: str, kind: str | None, issued_by: str | None = None) -> list[str]:
        """What ``cascade resume SCOPE [--type KIND]`` does, issued by ``issued_by`` (else
        :attr:`operator`); returns the topics cleared."""
        constraint_type = parse_constraint_type(kind)
        validate_scope(scope)
        return await clear_constraints(
            self.connector,
            scope,
            constraint_type,
            self.timeout,
            issued_by=issued_by or self.operator,
        )

    async def cancel(
        self,
        run_id: str,
        body: Any,
        issued_by: str | None = None,
        owner: str | None = None,
    ) -> CancelAnswer:
        """What ``cascade cancel RUN_ID`` does (``body``: ``{"reason": ...}`` or nothing),
        issued by ``issued_by`` (else :attr:`operator`): the answer of the run's engine, and
        how many from others were refused. ``run_id`` is a whole id (see :meth:`run_id`).

        The run's engine is ``owner`` (its history's) when given, else the source this
        dashboard heard the run from, else the first heard while the cancel waits."""
        wanted = checked_prefix(run_id)
        if not is_full(wanted):
            raise UsageError(f"a whole run id (32 hex digits) is cancelled, not {run_id!r}")
        if body is None:
            body = {}
        if not isinstance(body, Mapping) or set(body) - {"reason"}:
            raise UsageError('the body must be {"reason": text} or nothing')
        reason = body.get("reason")
        if reason is not None and not isinstance(reason, str):
            raise UsageError(f"--reason must be text, not {reason!r}")
        if owner is None:
            heard = self.model.state.runs.get(wanted)
            owner = heard.source if heard is not None else None
        return await request_cancel(
            self.connector,
            wanted,
            issued_by=issued_by or self.operator,
            reason=checked_reason(reason or None),
            timeout=self.timeout,
            owner=owner,
            on_refused=_log_refusal,
        )


def _log_refusal(refusal: Refusal) -> None:
    _log.warning("%s", refusal)
