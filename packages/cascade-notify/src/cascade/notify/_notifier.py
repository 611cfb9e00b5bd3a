"""``Notifier``: a long-running reader of the broker that posts one webhook per event.

The message callback only folds the message into the reader model and queues what it made
(it never waits); each event is then claimed among the group's notifiers (:class:`ClaimLedger`),
posted within the rate (else kept for the next digest), counted, marked posted in the state
database, and audited in the history where one is given.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from cascade.history import History, HistoryError, NotifyPost
from cascade.interfaces import Connector, Message, SubscriptionHandle, telemetry_filter
from cascade.reader import ReaderModel, subscribe_statuses

from ._bodies import body, digest_body
from ._claims import ClaimLedger, default_group, member_id
from ._notification import DEFAULT_EVENTS, Notification
from ._watch import DEFAULT_WARN_BEFORE, EventWatch
from ._webhook import Posted, Webhook

__all__ = ["DEFAULT_RATE", "MAX_PENDING", "NotifyCounts", "Notifier"]

DEFAULT_RATE = 10
"""Posts a minute at most (a burst of as many); the events beyond wait for the next digest."""

MAX_PENDING = 10_000
"""Events waiting to be claimed or posted; beyond, dropped and counted."""

_TICK = 1.0  # seconds between two looks at deadlines, the digest and the model's bounds
_PRUNE_EVERY = 3600.0  # seconds between two prunes of old claims
_LEASE_MARGIN = 30.0  # seconds a lease outlasts the longest post (clocks, the database)
_log = logging.getLogger("cascade.notify")


class NotifyCounts:
    """What a notifier did, counted: ``events[(kind, outcome)]`` (outcome ``posted``,
    ``failed``, ``digested``, ``by_another`` (another notifier of the group took it),
    ``already_sent`` (posted before this notifier started: a restart), ``dropped`` (over
    :data:`MAX_PENDING`));
    ``attempts[outcome]``, each HTTP attempt (``ok``, ``http_5xx``, ``http_4xx``, ``timeout``,
    ``unreachable``, ``refused``); ``posts[outcome]``, each post, one event's or a digest's (``ok``,
    ``failed``); ``audit_errors``: posts the history could not keep."""

    def __init__(self) -> None:
        self.events: Counter[tuple[str, str]] = Counter()
        self.attempts: Counter[str] = Counter()
        self.posts: Counter[str] = Counter()
        self.digests = 0
        self.audit_errors = 0


class Notifier:
    """Posts the events ``connector``'s broker tells of to ``webhook`` (see the module).

    ``fmt``: ``generic`` or ``slack``; ``events``, ``filters``, ``warn_before``,
    ``dashboard_url``: as :class:`EventWatch`; ``state``: the database the notifiers of
    ``group`` claim events in (:class:`ClaimLedger`; ``None``: no claims, every event posted);
    ``group``: by default, one per webhook (:func:`default_group`); ``lease``: seconds a claim
    is its owner's (by default the longest a post can take, and a margin); ``rate``: posts a
    minute; ``history``: where each post and final failure is audited.
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
        state: History | None = None,
        group: str | None = None,
        lease: float | None = None,
        rate: int = DEFAULT_RATE,
        history: History | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.connector = connector
        self.webhook = webhook
        self.fmt = fmt
        self.model = ReaderModel(prefix=connector.topic_prefix, clock=clock)
        self.watch = EventWatch(
            self.model,
            events=events,
            filters=filters,
            warn_before=warn_before,
            dashboard_url=dashboard_url,
            clock=clock,
        )
        self.counts = NotifyCounts()
        webhook.on_attempt = self._attempted
        self.member = member_id()
        """This notifier's name among the group's (in the claims and the audit)."""
        self.group = group or default_group(webhook.url)
        self.claims = (
            ClaimLedger(
                state,
                group=self.group,
                lease=lease if lease is not None else webhook.longest + _LEASE_MARGIN,
                member=self.member,
                clock=clock,
            )
            if state is not None
            else None
        )
        self.history = history
        self.rate = max(1, rate)
        self.clock = clock
        self._stopping = asyncio.Event()
        self._tokens = float(self.rate)
        self._refilled = time.monotonic()
        self._digest: list[Notification] = []
        self._pending = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._ticker: asyncio.Task[None] | None = None
        self._telemetry: SubscriptionHandle | None = None

    def _attempted(self, outcome: str) -> None:
        self.counts.attempts[outcome] += 1

    @property
    def pending(self) -> int:
        """Events being claimed or posted now."""
        return self._pending

    async def start(self) -> None:
        """Subscribe to telemetry and statuses and start the ticker."""
        prefix = self.connector.topic_prefix
        self._telemetry = await self.connector.subscribe(
            telemetry_filter(prefix=prefix), self.heard
        )
        await subscribe_statuses(self.connector, self.heard, summaries=False)
        self._ticker = asyncio.create_task(self._tick(), name="cascade-notify-ticker")

    async def stop(self, timeout: float = 5.0) -> None:
        """Stop; events being posted get ``timeout`` seconds, and a digest waiting is posted
        within it; events another notifier holds are left to it."""
        self._stopping.set()
        if self._telemetry is not None:
            await self._telemetry.unsubscribe()
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
        """A subscription's callback: fold ``message`` in, queue what it makes (nothing once
        stopping: a notifier stopped on a connection that lives on posts no more)."""
        if self._stopping.is_set():
            return
        for notification in self.watch.apply(message):
            self._queue(notification)

    def _queue(self, notification: Notification) -> None:
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
            if self.claims is not None:
                taken = await self.claims.claim(n.key, self._stopping)
                if taken is not None:
                    self.counts.events[(n.kind, taken)] += 1
                    return
            if not self._take_token():
                self._digest.append(n)  # claimed until the digest is posted
                self.counts.events[(n.kind, "digested")] += 1
                return
            posted = await self._post(body(n, self.fmt))
            await self._said(n, posted)
        except Exception:  # one event's trouble never stops the others
            _log.exception("cascade notify: %s could not be handled", n.key)
        finally:
            self._pending -= 1

    async def _said(self, n: Notification, posted: Posted, digest: bool = False) -> None:
        """Count, log, mark posted and audit how ``n``'s post ended."""
        outcome = "posted" if posted.ok else "failed"
        self.counts.events[(n.kind, outcome)] += 1
        if not posted.ok:
            _log.warning(
                "cascade notify: %s not posted to %s: %s", n.key, self.webhook.shown, posted.error
            )
        if self.claims is not None:
            await self.claims.settle(n.key, outcome)
        if self.history is not None:
            post = NotifyPost(
                at=self.clock(),
                event=n.kind,
                event_key=n.key,
                webhook=self.webhook.shown,
                outcome=outcome,
                attempts=posted.attempts,
                notifier=self.member,
                group=self.group,
                run_id=n.run_id or None,
                task_id=n.task_id,
                source=n.source or None,
                status=posted.status,
                error=posted.error or None,
                digest=digest,
            )
            try:
                await asyncio.to_thread(self.history.record_post, post)
            except HistoryError as exc:  # the history down: the post stands
                self.counts.audit_errors += 1
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
            await self._said(n, posted, digest=True)

    async def _tick(self) -> None:
        pruned = 0.0
        while True:
            # a warning is due at its time, not at the tick after it (up to a second late)
            due = self.watch.next_due()
            await asyncio.sleep(_TICK if due is None else min(_TICK, due - self.watch.clock()))
            try:
                if self.claims is not None and time.monotonic() - pruned >= _PRUNE_EVERY:
                    pruned = time.monotonic()
                    self._spawn(self.claims.prune())
                for notification in self.watch.due():
                    self._queue(notification)
                if self._digest and self._take_token():
                    self._spawn(self._post_digest())
                self.model.observe_connection(self.connector.is_connected)
                self.model.prune()
            except Exception:
                _log.exception("cascade notify: a tick failed")
