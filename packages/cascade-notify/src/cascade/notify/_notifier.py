"""``Notifier``: a long-running reader of the broker that posts one webhook per event.

The message callback only folds the message into the reader model and queues what it made
(it never waits); each event is then claimed among the group's notifiers, posted within the
rate (else kept for the next digest), counted, and written down in the ledger.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from cascade.interfaces import Connector, Message, telemetry_filter
from cascade.reader import ReaderModel, subscribe_statuses

from ._bodies import body, digest_body
from ._claims import DEFAULT_WINDOW, FleetClaims
from ._ledger import SentLedger
from ._notification import DEFAULT_EVENTS, Notification
from ._watch import DEFAULT_WARN_BEFORE, EventWatch
from ._webhook import Posted, Webhook

__all__ = ["DEFAULT_RATE", "MAX_PENDING", "NotifyCounts", "Notifier"]

DEFAULT_RATE = 10
"""Posts a minute at most (a burst of as many); the events beyond wait for the next digest."""

MAX_PENDING = 10_000
"""Events waiting to be claimed or posted; beyond, dropped and counted."""

_TICK = 1.0  # seconds between two looks at deadlines, the digest and the model's bounds
_log = logging.getLogger("cascade.notify")


class NotifyCounts:
    """What a notifier did, counted: ``events[(kind, outcome)]`` (outcome ``posted``,
    ``failed``, ``digested``, ``by_another`` (another notifier of the group took it),
    ``already_sent`` (its ledger had it: a restart), ``dropped`` (over :data:`MAX_PENDING`));
    ``attempts[outcome]``, each HTTP attempt (``ok``, ``http_5xx``, ``http_4xx``, ``timeout``,
    ``unreachable``); ``posts[outcome]``, each post, one event's or a digest's (``ok``,
    ``failed``)."""

    def __init__(self) -> None:
        self.events: Counter[tuple[str, str]] = Counter()
        self.attempts: Counter[str] = Counter()
        self.posts: Counter[str] = Counter()
        self.digests = 0


class Notifier:
    """Posts the events ``connector``'s broker tells of to ``webhook`` (see the module).

    ``fmt``: ``generic`` or ``slack``; ``events``, ``filters``, ``warn_before``,
    ``dashboard_url``: as :class:`EventWatch`; ``group``: the notifiers that post each event
    once between them (:class:`FleetClaims`; ``None``: this one alone, no claims);
    ``ledger``: what was posted before a restart; ``rate``: posts a minute;
    ``audit(notification, outcome, error)``: told of every event posted or failed (the
    history's audit, where one is given).
    """

    def __init__(
        self,
        connector: Connector,
        webhook: Webhook,
        *,
        fmt: str = "generic",
        events: Iterable[str] = DEFAULT_EVENTS,
        filters: Iterable[tuple[str, ...]] = (),
        warn_before: float = DEFAULT_WARN_BEFORE,
        dashboard_url: str | None = None,
        group: str | None = "default",
        ledger: SentLedger | None = None,
        rate: int = DEFAULT_RATE,
        audit: Callable[[Notification, str, str], None] | None = None,
        claim_window: float = DEFAULT_WINDOW,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.connector = connector
        self.webhook = webhook
        self.fmt = fmt
        self.model = ReaderModel(prefix=connector.topic_prefix, clock=clock)
        self.watch = EventWatch(
            self.model, events=events, filters=filters, warn_before=warn_before,
            dashboard_url=dashboard_url, clock=clock,
        )  # fmt: skip
        self.counts = NotifyCounts()
        webhook.on_attempt = self._attempted
        self.claims = (
            FleetClaims(
                connector,
                group=group,
                window=claim_window,
                wait_done=webhook.attempts * (webhook.timeout + 30.0) + 10.0,
            )
            if group is not None
            else None
        )
        self.ledger = ledger
        self.rate = max(1, rate)
        self.audit = audit
        self.clock = clock
        self._tokens = float(self.rate)
        self._refilled = time.monotonic()
        self._digest: list[Notification] = []
        self._pending = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._ticker: asyncio.Task[None] | None = None

    def _attempted(self, outcome: str) -> None:
        self.counts.attempts[outcome] += 1

    @property
    def pending(self) -> int:
        """Events being claimed or posted now."""
        return self._pending

    async def start(self) -> None:
        """Subscribe (the claims first, then telemetry and statuses) and start the ticker."""
        if self.claims is not None:
            await self.claims.start()
        prefix = self.connector.topic_prefix
        await self.connector.subscribe(telemetry_filter(prefix=prefix), self.heard)
        await subscribe_statuses(self.connector, self.heard, summaries=False)
        self._ticker = asyncio.create_task(self._tick(), name="cascade-notify-ticker")

    async def stop(self, timeout: float = 5.0) -> None:
        """Stop; events being posted get ``timeout`` seconds, and a digest waiting is posted
        within it."""
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._drain(), timeout)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.webhook.close()

    async def _drain(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._digest:
            await self._post_digest()

    def heard(self, message: Message) -> None:
        """A subscription's callback: fold ``message`` in, queue what it makes."""
        for notification in self.watch.apply(message):
            self._queue(notification)

    def _queue(self, notification: Notification) -> None:
        if self.ledger is not None and self.ledger.has(notification.key):
            self.counts.events[(notification.kind, "already_sent")] += 1
            return
        if self._pending >= MAX_PENDING:
            self.counts.events[(notification.kind, "dropped")] += 1
            _log.warning(
                "cascade notify: %s dropped: %d events wait", notification.key, MAX_PENDING
            )
            return
        self._pending += 1
        self._spawn(self._handle(notification))

    def _spawn(self, work: Any) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _handle(self, n: Notification) -> None:
        try:
            if self.claims is not None and not await self.claims.decide(n.key):
                self.counts.events[(n.kind, "by_another")] += 1
                return
            if self.ledger is not None and not self.ledger.claim(n.key):
                self.counts.events[(n.kind, "already_sent")] += 1
                return
            if self._take_token():
                posted = await self._post(body(n, self.fmt))
                outcome = "posted" if posted.ok else "failed"
                self._said(n, outcome, posted.error)
            else:
                self._digest.append(n)
                outcome = "digested"
                self.counts.events[(n.kind, outcome)] += 1
            if self.ledger is not None:
                self.ledger.settle(n.key, outcome)
            if self.claims is not None:
                await self.claims.done(n.key, outcome)
        except Exception:  # one event's trouble never stops the others
            _log.exception("cascade notify: %s could not be handled", n.key)
        finally:
            self._pending -= 1

    def _said(self, n: Notification, outcome: str, error: str) -> None:
        self.counts.events[(n.kind, outcome)] += 1
        if outcome == "failed":
            _log.warning(
                "cascade notify: %s not posted to %s: %s", n.key, self.webhook.shown, error
            )
        if self.audit is not None:
            try:
                self.audit(n, outcome, error)
            except Exception as exc:  # the audit's database down: the post stands
                _log.warning("cascade notify: %s not audited: %s", n.key, exc)

    async def _post(self, payload: dict[str, Any]) -> Posted:
        posted = await self.webhook.post(payload)
        self.counts.posts["ok" if posted.ok else "failed"] += 1
        return posted

    def _take_token(self) -> bool:
        now = time.monotonic()
        self._tokens = min(self.rate, self._tokens + (now - self._refilled) * self.rate / 60.0)
        self._refilled = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    async def _post_digest(self) -> None:
        items, self._digest = self._digest, []
        self.counts.digests += 1
        posted = await self._post(digest_body(items, self.fmt))
        for n in items:
            self._said(n, "posted" if posted.ok else "failed", posted.error)

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(_TICK)
            try:
                for notification in self.watch.due():
                    self._queue(notification)
                if self._digest and self._take_token():
                    self._spawn(self._post_digest())
                self.model.observe_connection(self.connector.is_connected)
                self.model.prune()
            except Exception:
                _log.exception("cascade notify: a tick failed")
