"""The dashboard's access audit: every control a signed-in person issued or was refused,
and every read refused, with who (and what vouched for them), what, on what, and why.

Each row is logged (``cascade.dashboard.access``) and handed to the sink: the history's
``access_events`` table when the dashboard has a writable history (`cascade audit` shows
them), else nothing more. Writing never holds a request: rows go to a worker thread, and a
sink that fails is logged and counted, never raised into the request.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from ..access import Identity

__all__ = ["AccessEvent", "AccessLog"]

log = logging.getLogger("cascade.dashboard.access")

Outcome = Literal["allowed", "refused"]


@dataclass(frozen=True)
class AccessEvent:
    """One row of the access audit."""

    at: float
    who: str
    via: str
    """What vouched for ``who``: ``oidc``, ``proxy``, ``api-token``, ``token``."""
    action: str
    """``pause``, ``concurrency``, ``rate_limit``, ``resume``, ``cancel``, ``read``, ..."""
    target: str
    """A constraint scope, ``run:<id>``, or what was read."""
    outcome: Outcome
    reason: str | None = None


class AccessLog:
    """Where the dashboard's access rows go: the log, a counter, and ``sink`` (optional)."""

    def __init__(self, sink: Callable[[AccessEvent], None] | None = None) -> None:
        self.sink = sink
        self.counts: dict[Outcome, int] = {"allowed": 0, "refused": 0}
        self.failed = 0
        """Rows the sink could not take (each logged)."""
        self._pending: set[asyncio.Future[None]] = set()

    def add(
        self,
        identity: Identity,
        action: str,
        target: str,
        outcome: Outcome,
        reason: str | None = None,
    ) -> AccessEvent:
        """Record one row (its write to the sink runs in a worker thread)."""
        event = AccessEvent(
            time.time(), identity.name, identity.via, action, target, outcome, reason
        )
        self.counts[outcome] += 1
        level = logging.WARNING if outcome == "refused" else logging.INFO
        log.log(level, "%s %s (%s) %s %s%s", outcome, event.who, event.via, action, target,
                f": {reason}" if reason else "")  # fmt: skip
        if self.sink is not None:
            future = asyncio.get_running_loop().run_in_executor(None, self._write, event)
            self._pending.add(future)
            future.add_done_callback(self._pending.discard)
        return event

    def _write(self, event: AccessEvent) -> None:
        assert self.sink is not None
        try:
            self.sink(event)
        except Exception as exc:  # a history that cannot be written must not fail a request
            self.failed += 1
            log.error("the access audit could not store a row (%s): %s", event.action, exc)

    async def flush(self) -> None:
        """Wait for the rows handed to the sink so far (tests, and shutdown)."""
        if self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)
