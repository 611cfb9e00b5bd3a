"""The dashboard's access audit: every control a signed-in person issued or was refused,
and every read refused, with who (and what vouched for them), what, on what, and why.

Each row is logged (``cascade.dashboard.access``) as one JSON object on one line (ASCII
only: a newline, an escape sequence or any other control character a person put in a path
is ``\\n``, ``\\u001b`` in it, never a line or a command of its own), and handed to the sink:
the history's ``access_events`` table when the dashboard has a writable history (`cascade
audit` shows them), else nothing more.

Refusals are folded: those of one person (by the same claim), action and reason within a
minute are one row, whose ``count`` grows and whose ``last_at`` moves; a person's refusals
of more than :data:`FOLDS_A_MINUTE` kinds in a minute fold into one row of action ``*``. So
someone looping on what they may not do writes a few rows a minute, not one a request. The
first of a fold is logged at once; its count when the minute closes.

Writing never holds a request: rows go to one worker thread, in order, and a sink that fails
is logged and counted, never raised into the request.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any, Literal

from cascade.control.access import Identity

__all__ = ["FOLDS_A_MINUTE", "AccessEvent", "AccessLog", "log_line"]

log = logging.getLogger("cascade.dashboard.access")

Outcome = Literal["allowed", "refused"]
#: The most kinds (action and reason) of one person's refusals folded apart in a minute.
FOLDS_A_MINUTE = 16
_OTHERS = "more refusals of other kinds this minute"
_FLUSH_SECONDS = 1.0


@dataclass(frozen=True)
class AccessEvent:
    """One row of the access audit (of a fold of refusals: its first, and how many)."""

    at: float
    who: str
    via: str
    """What vouched for ``who``: ``oidc``, ``proxy``, ``api-token``, ``token``."""
    action: str
    """``pause``, ``concurrency``, ``rate_limit``, ``resume``, ``cancel``, ``read``, ..."""
    target: str
    """A constraint scope, ``run:<id>``, or what was read (of a fold: its first's)."""
    outcome: Outcome
    reason: str | None = None
    claim: str | None = None
    """The ID token's claim that named ``who`` (``via`` ``oidc``)."""
    count: int = 1
    """How many accesses the row stands for (a fold of refusals: more than one)."""
    last_at: float | None = None
    """When the last of ``count`` was (``None``: the row is one)."""
    fold: int | None = None
    """The fold a refusal row is (the same for its first and its later counts)."""


def log_line(event: AccessEvent) -> str:
    """``event`` as the log's line: one JSON object, ASCII only, no control character."""
    fields: dict[str, Any] = {
        "at": round(event.at, 3),
        "outcome": event.outcome,
        "who": event.who,
        "via": event.via,
        "claim": event.claim,
        "action": event.action,
        "target": event.target,
        "reason": event.reason,
    }
    if event.count > 1:
        fields["count"] = event.count
        fields["last_at"] = round(event.last_at or event.at, 3)
    return json.dumps(fields, ensure_ascii=True, separators=(",", ":"))


@dataclass
class _Fold:
    event: AccessEvent
    minute: int
    count: int = 1
    last_at: float = 0.0
    written: int = 1


class AccessLog:
    """Where the dashboard's access rows go: the log, a counter, and ``sink`` (optional),
    which takes each row, then each later count of a fold (the same ``fold``)."""

    def __init__(self, sink: Callable[[AccessEvent], object] | None = None) -> None:
        self.sink = sink
        self.counts: dict[Outcome, int] = {"allowed": 0, "refused": 0}
        self.failed = 0
        """Rows the sink could not take (each logged)."""
        self._pending: set[asyncio.Future[None]] = set()
        self._folds: dict[tuple[Any, ...], _Fold] = {}
        self._kinds: dict[tuple[str, str, int], int] = {}
        self._ids = itertools.count(1)
        self._timer: asyncio.TimerHandle | None = None
        self._worker: ThreadPoolExecutor | None = None

    def add(
        self,
        identity: Identity,
        action: str,
        target: str,
        outcome: Outcome,
        reason: str | None = None,
    ) -> AccessEvent:
        """Record one access (a refusal folds into its minute's row, if it has one)."""
        now = time.time()
        event = AccessEvent(
            now, identity.name, identity.via, action, target, outcome, reason, identity.claim
        )
        self.counts[outcome] += 1
        if outcome == "refused":
            return self._refused(event)
        log.info("%s", log_line(event))
        self._hand(event)
        return event

    def _refused(self, event: AccessEvent) -> AccessEvent:
        minute = int(event.at // 60)
        self._close(minute)
        person = (event.who, event.via, minute)
        key: tuple[Any, ...] = (*person, event.claim, event.action, event.reason)
        fold = self._folds.get(key)
        if fold is None and self._kinds.get(person, 0) >= FOLDS_A_MINUTE:
            key = (*person, event.claim, "*", _OTHERS)
            event = replace(event, action="*", target="*", reason=_OTHERS)
            fold = self._folds.get(key)
        if fold is not None:
            fold.count += 1
            fold.last_at = event.at
            self._schedule()
            return fold.event
        event = replace(event, fold=next(self._ids))
        self._folds[key] = _Fold(event, minute, last_at=event.at)
        self._kinds[person] = self._kinds.get(person, 0) + 1
        log.warning("%s", log_line(event))
        self._hand(event)
        return event

    def _schedule(self, delay: float = _FLUSH_SECONDS) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time() + delay
        if self._timer is not None:
            if self._timer.when() <= due:
                return
            self._timer.cancel()  # the minute's end, and counts came: write them sooner
        self._timer = loop.call_at(due, self._flush_folds)

    def _flush_folds(self, *, closing: bool = False) -> None:
        """Hand the folds' new counts to the sink; forget the folds of minutes past (and come
        back when this minute ends, while a fold of it is open)."""
        self._timer = None
        now = time.time()
        self._close(int(now // 60), force=closing)
        for fold in self._folds.values():
            self._count(fold)
        if self._folds and not closing:
            self._schedule(60.0 - now % 60 + 0.1)

    def _close(self, minute: int, *, force: bool = False) -> None:
        for key, fold in list(self._folds.items()):
            if fold.minute < minute or force:
                self._count(fold)
                if fold.count > 1:
                    log.warning("%s", log_line(self._counted(fold)))
                del self._folds[key]
        for person in [p for p in self._kinds if p[2] < minute or force]:
            del self._kinds[person]

    @staticmethod
    def _counted(fold: _Fold) -> AccessEvent:
        return replace(fold.event, count=fold.count, last_at=fold.last_at)

    def _count(self, fold: _Fold) -> None:
        if fold.count > fold.written:
            fold.written = fold.count
            self._hand(self._counted(fold))

    def _hand(self, event: AccessEvent) -> None:
        if self.sink is None:
            return
        if self._worker is None:  # one thread: a fold's counts reach the sink after its row
            self._worker = ThreadPoolExecutor(1, thread_name_prefix="cascade-access-audit")
        future = asyncio.get_running_loop().run_in_executor(self._worker, self._write, event)
        self._pending.add(future)
        future.add_done_callback(self._pending.discard)

    def _write(self, event: AccessEvent) -> None:
        assert self.sink is not None
        try:
            self.sink(event)
        except Exception as exc:  # a history that cannot be written must not fail a request
            self.failed += 1
            log.error("the access audit could not store a row (%s): %s", event.action, exc)

    async def flush(self) -> None:
        """Hand every fold's count so far to the sink and wait for what it was handed (tests,
        and shutdown: folds are closed then)."""
        if self._timer is not None:
            self._timer.cancel()
        self._flush_folds(closing=True)
        if self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)
