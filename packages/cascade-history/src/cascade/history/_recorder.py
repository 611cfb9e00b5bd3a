"""``Recorder``: telemetry, task logs, presence, constraints and cancels from the broker, into a
``History``.

The same shape as the connector's sender: the subscription callback only
decodes and appends to one bounded queue (it never waits, so the connector
keeps receiving); one writer task drains the queue in batches, each stored in
a worker thread (``asyncio.to_thread``) in one transaction. A write the
database cannot take now (:class:`HistoryError`: server down, disk full,
locked) keeps its batch and is retried with exponential backoff while the
queue fills behind it; once the queue is full, new messages are dropped and
counted. Nothing is lost silently: every message received is, in the end,
stored, a duplicate, rejected, refused or dropped (see :class:`RecorderStats`), and
what never arrived is counted from the events' numbers (``gaps``, written per
source to the history with each batch: :meth:`History.gaps`).

What no engine of a run can have sent is refused in the callback, as the live readers do
(``cascade.interfaces.GapCounter``'s verdicts, fed the message's source and a digest of
its payload; ``ahead``), and the history keeps the rule where the callback cannot see it
(a restarted recorder, a shared one): the source stored for a run owns it. Refusals are
counted per run and reason, written with the batches (:attr:`RunSummary.refused`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections import deque
from collections.abc import Callable
from types import TracebackType

from msgspec import UNSET
from typing_extensions import Self

from cascade.interfaces import (
    MAX_CLOCK_SKEW,
    REASON_FOREIGN,
    REASON_FUTURE,
    CancelReply,
    Connector,
    ConstraintTopicError,
    Envelope,
    Heartbeat,
    InvalidMessageError,
    LogBatch,
    Message,
    RunSnapshot,
    Seen,
    SnapshotAsker,
    StatusMessage,
    SubscriptionHandle,
    answer_part_refusal,
    answer_stamped_ahead,
    cleared_filter,
    constraints_filter,
    issued_filter,
    logs_filter,
    reply_filter,
    rollcall_topic,
    snapshot_events,
    status_filter,
    telemetry_filter,
)
from cascade.interfaces.connector_kit import RateLimitedLogger, validate_filter

from ._errors import HistoryError
from ._gaps import MAX_FOLLOWED, RecorderGaps
from ._history import History
from ._pace import Pace
from ._received import Received, Timed, read_message
from ._recorder_stats import RecorderStats
from ._sharing import delivers_to_shared, shared_filter
from ._times import parse_time
from ._vouches import Vouches

__all__ = ["Recorder"]

_log = logging.getLogger("cascade.history")
_Counts = tuple[
    dict[tuple[str, str], int],  # refusals by run and reason
    dict[str, tuple[str, str]],  # vouched: run to source and what vouches
    dict[tuple[str, str], int],  # claims: refused by run and source
    dict[str, int],  # displaced: run to its lone number set aside
]
_PRUNE_EVERY = 60.0  # seconds between two prunings when there was nothing to prune


class Recorder:
    """Records everything the broker says about runs, engines and constraints into ``history``.

    ``await recorder.start()`` subscribes through ``connector`` (which must be
    connected, or connect by itself) to ``{prefix}/telemetry/#``-level
    telemetry, the tasks' logs (``{prefix}/logs/#``), ``{prefix}/status/+``,
    ``{prefix}/constraints/#``, the clear notes (``{prefix}/cleared/#``) and the engines'
    answers to cancels (``{prefix}/reply/+/+``);
    ``await recorder.stop()`` unsubscribes and writes what is queued (at most
    ``timeout`` seconds). Also an async context manager. ``max_queue`` bounds
    the messages waiting to be written (beyond it they are dropped, and
    counted), ``batch_size`` the messages of one transaction, and while messages keep coming
    two transactions start at least ``linger`` seconds apart unless a whole batch is queued
    (a transaction costs more than a thousand events in it: see ``_pace``). With ``keep``
    (seconds), runs and events older than that are pruned as it goes, in
    small batches between writes; with ``keep_logs`` (seconds), task log lines received
    longer ago than that too (else they go with their run). ``name`` is the recorder's name in the
    history's gap counts (:meth:`History.gaps`); by default the connector's
    source id. With ``share``, telemetry and logs are subscribed to through the MQTT
    shared subscription ``$share/{share}/...``: the broker gives each message
    to one recorder of the group, so several share one stream (into one
    database); presence, constraints and answers still reach every one of them (the
    history keeps each change once). :meth:`check_sharing` tells whether the
    broker does it. A shared recorder counts no gaps (it sees a part of each
    run): each run's missing events, in the history, count them all.

    ``observe``, if given, is called with every message the recorder receives, before it is
    queued (in the subscription callback: it must not wait); `cascade record` feeds its
    Prometheus metrics so. An exception it raises is logged (at a limited rate) and ignored.
    ``max_followed``: runs whose gaps it follows at once; a new run beyond that takes the
    place of the one heard of least recently (:attr:`RecorderStats.unfollowed`).
    ``logins_bound``: the broker's ACL lets each login write only its own
    ``{prefix}/issued/{login}`` (`cascade acl` writes such an ACL), so the recorder also keeps
    the logins' witness notes, and the audit says the broker vouches for a login that did
    what its note says (``_witness``). Anywhere else a note is not read: anyone could write it.
    """

    def __init__(
        self,
        connector: Connector,
        history: History,
        *,
        topic_prefix: str | None = None,
        max_queue: int = 100_000,
        batch_size: int = 5_000,
        linger: float = 0.1,
        keep: float | None = None,
        keep_logs: float | None = None,
        retry_initial: float = 0.05,
        retry_max: float = 5.0,
        name: str | None = None,
        share: str | None = None,
        clock: Callable[[], float] = time.time,
        observe: Callable[[Message], None] | None = None,
        max_followed: int = MAX_FOLLOWED,
        logins_bound: bool = False,
    ) -> None:
        if max_queue < 1 or batch_size < 1 or max_followed < 1:
            raise ValueError("max_queue, batch_size and max_followed must be at least 1")
        if not linger >= 0:
            raise ValueError("linger must be 0 or more")
        if history.mode != "write":  # else every batch would be retried, never stored
            raise ValueError("a Recorder writes: open its History with mode='write'")
        if share is not None:
            validate_filter(shared_filter(share, "x"))  # InvalidTopicError (a ValueError)
        self.connector = connector
        self.history = history
        self.prefix = topic_prefix if topic_prefix is not None else connector.topic_prefix
        self._levels = self.prefix.count("/")
        self.max_queue = max_queue
        self.batch_size = batch_size
        self.linger = linger
        self._pace = Pace(linger, batch_size)
        self.keep = keep
        self.keep_logs = keep_logs
        self.name = name if name is not None else connector.source_id
        self.share = share
        self.logins_bound = logins_bound
        self._telemetry: SubscriptionHandle | None = None
        self._logs: SubscriptionHandle | None = None  # shared or not as the telemetry
        self._sharing = False  # what `sharing` says, kept for the callback
        self._retry = (retry_initial, retry_max)
        self._clock = clock
        self._queue: deque[Received] = deque()
        self._pending: list[Received] = []  # the batch being written (kept while it fails)
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._closing = False
        self._writer: asyncio.Task[None] | None = None
        self._handles: list[SubscriptionHandle] = []
        self._log = RateLimitedLogger(_log)
        self._next_prune = 0.0
        self._received = self._stored = self._duplicates = 0
        self._rejected = self._dropped = self._write_errors = self._refused = 0
        self._refusals: dict[tuple[str, str], int] = {}  # (run_id, reason): not written yet
        self._claims: dict[tuple[str, str], int] = {}  # (run_id, source) refused as foreign
        self._last_error: str | None = None
        self._asker = SnapshotAsker(connector, self.prefix)
        self._gaps = RecorderGaps(clock, max_followed, ask=self._asker.ask)
        self._vouches = Vouches()
        self._observe = observe

    @property
    def sharing(self) -> bool:
        """Whether telemetry comes through a shared subscription (each message to one recorder
        of the group), so that this recorder's gap count means nothing and is not kept."""
        return self._sharing

    def _listen(self, handle: SubscriptionHandle | None) -> None:
        """Keep ``handle`` as the telemetry's subscription (``None``: none)."""
        self._telemetry = handle
        self._sharing = handle is not None and handle.topic_filter.startswith("$share/")

    @property
    def stats(self) -> RecorderStats:
        """The counters now."""
        oldest = self._pending[0] if self._pending else self._queue[0] if self._queue else None
        return RecorderStats(
            received=self._received,
            stored=self._stored,
            duplicates=self._duplicates,
            rejected=self._rejected,
            dropped=self._dropped,
            queued=len(self._queue) + len(self._pending),
            lag=max(0.0, self._clock() - oldest.received_at) if oldest is not None else 0.0,
            write_errors=self._write_errors,
            last_error=self._last_error,
            gaps=self._gaps.missed,
            refused=self._refused,
            unfollowed=self._gaps.unfollowed,
        )

    async def start(self) -> None:
        """Start the writer and subscribe; messages are recorded from now on."""
        if self._writer is not None:
            return
        self._closing = False
        self._pace = Pace(self.linger, self.batch_size)
        self._writer = asyncio.create_task(self._write_loop(), name="cascade-history-writer")
        prefix = self.prefix
        telemetry = telemetry_filter(prefix=prefix)
        logs = logs_filter(prefix=prefix)
        if self.share is not None:
            telemetry = shared_filter(self.share, telemetry)
            logs = shared_filter(self.share, logs)
        self._listen(await self.connector.subscribe(telemetry, self._on_message))
        self._logs = await self.connector.subscribe(logs, self._on_message)
        for topic_filter in (
            status_filter(prefix),
            constraints_filter(prefix),
            cleared_filter(prefix),
            reply_filter(prefix=prefix),
            *([issued_filter(prefix)] if self.logins_bound else []),
        ):
            self._handles.append(await self.connector.subscribe(topic_filter, self._on_message))
        if self.connector.capabilities.retained_to_wildcards is False:
            # no retained status comes through a wildcard: the sources online announce
            # themselves again (their presence vouches for the runs they speak of)
            await self.connector.publish(rollcall_topic(prefix), {"rollcall": 1}, qos=1)

    async def check_sharing(self, timeout: float = 5.0) -> bool:
        """With ``share``, once connected: whether the broker delivers through the shared
        subscription. If it does not, telemetry is subscribed to plainly instead (each
        recorder then gets every message; the history stores each event once), and ``False``.

        Raises :class:`~cascade.interfaces.ConnectorError` if the broker does not answer.
        """
        handle = self._telemetry
        if handle is None or not self.sharing:
            return False
        assert self.share is not None
        if await delivers_to_shared(self.connector, self.prefix, self.share, timeout):
            return True
        plain = telemetry_filter(prefix=self.prefix)
        self._listen(await self.connector.subscribe(plain, self._on_message))
        await handle.unsubscribe()
        if self._logs is not None:
            shared_logs = self._logs
            self._logs = await self.connector.subscribe(
                logs_filter(prefix=self.prefix), self._on_message
            )
            await shared_logs.unsubscribe()
        _log.info("the broker does not deliver to shared subscriptions: subscribed to %s", plain)
        return False

    async def flush(self, timeout: float | None = None) -> None:
        """Wait until every message received so far is written (or counted); ``TimeoutError``
        (``asyncio.TimeoutError``) after ``timeout`` seconds."""
        await asyncio.wait_for(self._idle.wait(), timeout)

    async def stop(self, timeout: float = 5.0) -> None:
        """Unsubscribe, write what is queued for at most ``timeout`` seconds, then stop.

        What could not be written by then (the database is down) is counted
        in ``dropped``. Idempotent.
        """
        handles, self._handles = self._handles, []
        if self._telemetry is not None:
            handles.append(self._telemetry)
            self._listen(None)
        if self._logs is not None:
            handles.append(self._logs)
            self._logs = None
        for handle in handles:
            await handle.unsubscribe()
        await self._asker.aclose()
        writer, self._writer = self._writer, None
        if writer is None:
            return
        self._closing = True
        self._pace.release()
        self._wake.set()
        try:
            await asyncio.wait_for(asyncio.shield(writer), timeout)
        except asyncio.TimeoutError:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
        left = len(self._queue) + len(self._pending)
        if left:
            self._dropped += left
            self._log.warning("stopped", "recorder stopped with %d messages unwritten", left)
        self._queue.clear()
        self._pending = []
        self._idle.set()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- the callback: never waits ----------------------------------------------------------

    def _on_message(self, message: Message) -> None:
        self._received += 1
        if self._observe is not None:
            try:
                self._observe(message)
            except Exception:  # an observer's bug never costs the history a message
                self._log.log(logging.ERROR, "observer", "the recorder's observer failed on %r",
                              message.topic[:200], exc_info=True)  # fmt: skip
        try:
            item = read_message(message, self.prefix, self._clock())
        except ConstraintTopicError as exc:  # no run's: counted in the stats only
            self._refused += 1
            self._log.warning("not-its-topic", "refused a constraint on %r: %s",
                              message.topic[:200], exc)  # fmt: skip
            return
        except InvalidMessageError as exc:
            self._rejected += 1
            self._log.warning("rejected", "rejected a message on %r: %s", message.topic[:200], exc)
            return
        if item is None:
            return  # not something the history keeps (a cleared status)
        body = item.message
        if isinstance(body, Envelope):
            stamp = item.at if isinstance(item, Timed) else parse_time(body.ts)
            answer = body.body if isinstance(body.body, RunSnapshot) else None
            if (stamp is not None and stamp - item.received_at > MAX_CLOCK_SKEW) or (  # ahead()
                answer is not None and answer_stamped_ahead(answer, item.received_at)
            ):
                self._refuse(body.run_id, REASON_FUTURE)
                return
            # the sourced layout has one level more: {prefix}/telemetry/org/project/run/kind/source
            vouched = self._vouches.of(body, item.topic.count("/") - self._levels == 6)
            if self._sharing:  # a shared recorder sees a part of each run: it cannot tell
                if vouched is not None:
                    self._gaps.vouch(body, vouched)
            else:
                seen = self._gaps.see(body, item.received_at, hash(message.raw), vouched)
                if seen is not Seen.NEW and seen is not Seen.COPY:
                    self._refuse(body.run_id, seen.value, body.source)
                    return
                if isinstance(body.body, Heartbeat) and not self._gaps.numbered(body.run_id):
                    body.body.last_seq = UNSET  # no event backs its claim yet: not stored
            if isinstance(body.body, RunSnapshot):  # its tasks' latest events, as such
                refusal = answer_part_refusal(body.body) if self._sharing else None
                if refusal is not None:  # a shared recorder checks each part on its own
                    self._refuse(body.run_id, refusal.value)
                    return
                listed = snapshot_events(body)
                self._received += len(listed) - 1  # counted as the events it lists
                for envelope in listed:
                    self._queue_item(Received(item.topic, envelope, item.received_at))
                return
        elif isinstance(body, StatusMessage):
            stamp = parse_time(body.ts)
            if stamp is not None and stamp - item.received_at > MAX_CLOCK_SKEW:
                self._refused += 1  # no run's: counted in the stats only
                return
            self._vouches.status(item.topic, body)
        elif isinstance(body, LogBatch):
            stamp = parse_time(body.ts)
            if stamp is not None and stamp - item.received_at > MAX_CLOCK_SKEW:
                self._refuse(body.run_id, REASON_FUTURE)
                return
            owner = self._gaps.owner(body.run_id)
            if owner is not None and owner != body.source:
                self._refuse(body.run_id, REASON_FOREIGN, body.source)
                return
        elif isinstance(body, CancelReply):
            owner = self._gaps.owner(body.run_id)
            if owner is not None and owner != body.source:
                self._rejected += 1  # only the run's engine answers for it
                return
        self._queue_item(item)

    def _refuse(self, run_id: str, reason: str, source: str | None = None) -> None:
        """A message about ``run_id`` no engine of it can have sent: counted, to be written
        (``source``'s claim on the run, when it is refused as another source's)."""
        self._refused += 1
        key = (run_id, reason)
        self._refusals[key] = self._refusals.get(key, 0) + 1
        if source is not None and reason == REASON_FOREIGN:
            claim = (run_id, source)
            self._claims[claim] = self._claims.get(claim, 0) + 1
        self._idle.clear()
        self._wake.set()

    def _queue_item(self, item: Received) -> None:
        queue = self._queue
        if len(queue) >= self.max_queue:
            self._dropped += 1
            self._log.warning("queue-full", "recorder queue full (%d): dropped", self.max_queue)
            return
        if not queue:  # else the writer is awake already, and not idle
            self._idle.clear()
            self._wake.set()
        queue.append(item)
        if len(queue) == self.batch_size:
            self._pace.full()

    # -- the writer ---------------------------------------------------------------------------

    async def _write_loop(self) -> None:
        delay, longest = self._retry
        backoff = delay
        while True:
            if not self._pending:
                if not self._queue and not self._refusals:
                    if self._closing:
                        if await self._write_gaps():
                            return
                        await asyncio.sleep(backoff)
                        backoff = min(backoff * 2, longest)
                        continue
                    self._idle.set()
                    await self._maybe_prune()
                    self._wake.clear()
                    if not self._queue and not self._refusals:
                        await self._wake.wait()
                    continue
                await self._pace.ready(len(self._queue))
                count = min(self.batch_size, len(self._queue))
                self._pending = [self._queue.popleft() for _ in range(count)]
            self._gaps.sweep()
            gaps, counts = self._gaps.changes()
            counted = self._take_counts()
            try:
                result = await asyncio.to_thread(
                    functools.partial(
                        self.history.store,
                        self._pending,
                        gaps=gaps,
                        recorder=self.name,
                        refused=counted[0],
                        vouched=counted[1],
                        claims=counted[2],
                        displaced=counted[3],
                    )
                )
            except HistoryError as exc:
                self._keep_counts(counted)
                self._write_errors += 1
                self._last_error = str(exc)
                self._log.warning("write", "history write failed (will retry): %s", exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, longest)
                continue
            except Exception:  # a fault of ours: it must not end the recording
                self._rejected += len(self._pending)
                self._log.log(
                    logging.ERROR,
                    "store-fault",
                    "could not store a batch of %d messages (rejected): a fault of the recorder",
                    len(self._pending),
                    exc_info=True,
                )
                self._pending = []
                continue
            backoff = delay
            self._gaps.written(counts)
            self._pending = []
            self._stored += result.stored
            self._duplicates += result.duplicates
            self._rejected += result.rejected
            self._refused += result.refused
            await self._maybe_prune()

    def _take_counts(self) -> _Counts:
        """The refusals, vouches and claims not written yet, for a write."""
        displaced = self._gaps.displaced()
        self._refused += len(displaced)  # each its run's one event, refused once displaced
        counted = (self._refusals, self._gaps.vouches(), self._claims, displaced)
        self._refusals, self._claims = {}, {}
        return counted

    def _keep_counts(self, counted: _Counts) -> None:
        """What a failed write did not store: written with the next one."""
        refusals, vouched, claims, displaced = counted
        self._refused -= len(displaced)  # counted again when written
        self._gaps.keep_displaced(displaced)
        for key, count in refusals.items():
            self._refusals[key] = self._refusals.get(key, 0) + count
        for key, count in claims.items():
            self._claims[key] = self._claims.get(key, 0) + count
        self._gaps.keep_vouches(vouched)

    async def _write_gaps(self) -> bool:
        """Write the gap and refusal counts not written yet (the recorder stops); whether
        that is done."""
        gaps, counts = self._gaps.changes()
        counted = self._take_counts()
        if not gaps and not any(counted):
            return True
        try:
            await asyncio.to_thread(
                functools.partial(
                    self.history.store,
                    [],
                    gaps=gaps,
                    recorder=self.name,
                    refused=counted[0],
                    vouched=counted[1],
                    claims=counted[2],
                    displaced=counted[3],
                )
            )
        except HistoryError as exc:
            self._keep_counts(counted)
            self._write_errors += 1
            self._last_error = str(exc)
            return False
        self._gaps.written(counts)
        return True

    async def _maybe_prune(self) -> None:
        if (self.keep is None and self.keep_logs is None) or self._clock() < self._next_prune:
            return
        pruned = 0
        try:
            if self.keep_logs is not None:
                now = self._clock()
                pruned += await asyncio.to_thread(self.history.prune_logs, now - self.keep_logs)
            if self.keep is not None:
                pruned += await asyncio.to_thread(self.history.prune, self._clock() - self.keep)
        except HistoryError as exc:
            self._log.warning("prune", "pruning the history failed: %s", exc)
        # more to prune: again soon, between writes; else in a minute
        self._next_prune = self._clock() + (1.0 if pruned else _PRUNE_EVERY)
