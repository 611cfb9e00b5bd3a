"""``ClaimLedger``: which notifier of a group posts an event, decided by a database they share.

Every notifier of a group reads every message (each needs a run's whole story to say what
failed), so each sees each event. Before posting, each claims it in the state database
(:meth:`cascade.history.History.claim_post`): the insert that makes the event's row owns the
post; the others find the row and look again, sooner at first and at the latest when the
holder's lease ends, until it is marked posted. A claim not marked posted within its lease
(its owner died mid-post) is taken over by one of them, and posted once more. The same rows
keep a restarted notifier from posting an event twice (a restart hears held tasks again).

A SQLite file is the state of one host's notifiers; PostgreSQL (the history's own database
may be it) that of notifiers on several hosts. The worst cases, each counted: a winner that
died mid-post costs one more post after the lease (``takeovers``); a post that outlasted its
lease may have been made twice (``overruns``); a database that cannot be reached for
``patience`` seconds lets each notifier post on its own (``unclaimed``): a duplicate is a
nuisance, a failure nobody hears of is what notifications are for.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import socket
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from cascade.history import History, HistoryError

__all__ = [
    "DEFAULT_PATIENCE",
    "KEEP_FOR",
    "ClaimLedger",
    "default_group",
    "default_ledger_path",
    "member_id",
]

KEEP_FOR = 30 * 86_400.0
"""Seconds a claim is remembered (a hold lasts a day by default; a month is ample)."""

DEFAULT_PATIENCE = 10.0
"""Seconds a claim is retried while the state database fails, before posting unclaimed."""

_FIRST_LOOK = 0.5  # seconds before a loser looks at the holder's claim again (then doubled)
_log = logging.getLogger("cascade.notify")


def member_id() -> str:
    """This process's name among the notifiers: ``host-pid-random``."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def default_group(url: str) -> str:
    """The group of the notifiers posting to ``url``: ``webhook-`` and a digest of it (the URL
    itself may hold a token), so that notifiers of one webhook post each event once, and
    those of two webhooks each post it."""
    return "webhook-" + hashlib.sha256(url.encode()).hexdigest()[:16]


def default_ledger_path() -> Path:
    """``$XDG_STATE_HOME/cascade/notify.sqlite3`` (``~/.local/state`` without it)."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "cascade" / "notify.sqlite3"


class ClaimLedger:
    """Claims events for ``member`` of ``group`` in ``state`` (see the module). ``lease``:
    seconds a claim is its owner's before another may take it over; longer than a post can
    take (:attr:`cascade.notify.Webhook.longest`)."""

    def __init__(
        self,
        state: History,
        *,
        group: str,
        lease: float,
        member: str | None = None,
        patience: float = DEFAULT_PATIENCE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.state = state
        self.group = group
        self.lease = lease
        self.member = member or member_id()
        self.patience = patience
        self.clock = clock
        self.started_at = clock()
        self.takeovers = 0
        """Claims taken over after their lease ended unposted (each may be one more post)."""
        self.overruns = 0
        """Posts of this notifier that outlasted their lease (another may have posted too)."""
        self.unclaimed = 0
        """Events posted without a claim: the state database failed for ``patience`` seconds."""
        self.errors: Counter[str] = Counter()
        """The state database's failures, by step: ``claim``, ``settle``, ``prune``."""
        self._unclaimed: set[str] = set()

    async def claim(self, key: str, stopping: asyncio.Event) -> str | None:
        """``None`` when this notifier posts the event ``key``; else what became of it:
        ``by_another`` (another notifier of the group posts or posted it) or ``already_sent``
        (posted before this notifier started: a restart). ``stopping``: the notifier stops;
        an event another notifier holds is left to it."""
        look, failing_since = _FIRST_LOOK, None
        while True:
            try:
                claim = await asyncio.to_thread(
                    self.state.claim_post, self.group, key, self.member, lease=self.lease
                )
            except HistoryError as exc:
                self.errors["claim"] += 1
                now = time.monotonic()
                failing_since = failing_since or now
                wait = failing_since + self.patience - now
                if wait <= 0 or stopping.is_set():
                    self._post_unclaimed(key, exc)
                    return None
                wait = min(look, wait)
            else:
                failing_since = None
                if claim.won:
                    self.takeovers += claim.taken_over
                    return None
                if claim.posted_at is not None:
                    return "already_sent" if claim.posted_at < self.started_at else "by_another"
                wait = min(look, claim.claimed_at + self.lease - self.clock())
            look *= 2
            if await _stopped(stopping, max(wait, 0.05)) and failing_since is None:
                return "by_another"

    def _post_unclaimed(self, key: str, exc: HistoryError) -> None:
        _log.warning("cascade notify: %s posted unclaimed: %s", key, exc)
        self.unclaimed += 1
        self._unclaimed.add(key)

    async def settle(self, key: str, outcome: str) -> None:
        """Mark this notifier's claim on ``key`` done with ``outcome``."""
        if key in self._unclaimed:
            self._unclaimed.discard(key)
            return
        try:
            mine = await asyncio.to_thread(
                self.state.end_post, self.group, key, self.member, outcome=outcome
            )
        except HistoryError as exc:
            self.errors["settle"] += 1
            _log.warning("cascade notify: %s not marked posted: %s", key, exc)
            return
        if not mine:
            self.overruns += 1
            _log.warning(
                "cascade notify: %s: the post outlasted its lease (%g s); another notifier may "
                "have posted it too",
                key,
                self.lease,
            )

    async def prune(self) -> None:
        """Forget the claims older than :data:`KEEP_FOR`."""
        try:
            await asyncio.to_thread(self.state.prune_post_claims, self.clock() - KEEP_FOR)
        except HistoryError as exc:
            self.errors["prune"] += 1
            _log.warning("cascade notify: old claims not pruned: %s", exc)


async def _stopped(stopping: asyncio.Event, seconds: float) -> bool:
    """Wait ``seconds``, or until ``stopping`` is set; whether it is."""
    try:
        await asyncio.wait_for(stopping.wait(), seconds)
    except asyncio.TimeoutError:
        return False
    return True
