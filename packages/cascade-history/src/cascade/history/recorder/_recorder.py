"""``Recorder``: telemetry, task logs, presence, constraints and cancels from the broker, into a
``History``.

The same shape as the connector's sender: the subscription callback only
decodes and appends to one bounded queue (it never waits, so the connector
keeps receiving); one writer task drains the queue in batches (``_writer``).
Nothing is lost silently: every message received is, in the end,
stored, a duplicate, rejected, refused or dropped (see :class:`RecorderStats`), and
what never arrived is counted from the events' numbers (``gaps``, written per
source to the history with each batch: :meth:`History.gaps`).

What no engine of a run can have sent is refused in the callback, as the live readers do
(``cascade.reader.GapCounter``'s verdicts, fed the message's source and a digest of
its payload; ``ahead``), and the history keeps the rule where the callback cannot see it
(a restarted recorder, a shared one): the source stored for a run owns it. Refusals are
counted per run and reason, written with the batches (:attr:`RunSummary.refused`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from types import TracebackType

from typing_extensions import Self

from cascade.connector_kit import RateLimitedLogger
from cascade.interfaces import (
    Connector,
    Message,
    SubscriptionHandle,
    constraints_filter,
    status_filter,
    telemetry_filter,
    validate_filter,
)
from cascade.interfaces.commands import reply_filter
from cascade.interfaces.logs import logs_filter
from cascade.interfaces.notes import cleared_filter, issued_filter
from cascade.reader import SnapshotAsker

from .._errors import HistoryError
from .._history import History
from ..records._recorder_notes import RecorderNote
from ._gaps import MAX_FOLLOWED, RecorderGaps
from ._intake import Intake
from ._missed_ends import MissedEnds
from ._recorder_stats import RecorderStats
from ._sharing import share_probe_topic, shared_filter
from ._writer import Writer

__all__ = ["Recorder"]

_log = logging.getLogger("cascade.history")
_REJOIN_CHECK = 1.0  # seconds between two looks at whether the connector reconnected
_REJOIN_FOR = 60.0  # seconds after a reconnection a run not heard of since is asked about
_SHED_SAID_FOR = 10.0  # seconds a recorder whose connector shed is said to be behind
NOTE_EVERY = 5.0
"""Seconds between two of a recorder's notes on itself in the history (:meth:`History.recorders
<cascade.history.History.recorders>`); it notes at once when it falls behind or catches up."""


class Recorder:
    """Records everything the broker says about runs, engines and constraints into ``history``.

    ``await recorder.start()`` subscribes through ``connector`` (which must be
    connected, or connect by itself) to ``{prefix}/telemetry/#``-level
    telemetry, the tasks' logs (``{prefix}/logs/#``), ``{prefix}/status/+``,
    ``{prefix}/constraints/#``, the clear notes (``{prefix}/cleared/#``) and the engines'
    answers to cancels and decisions (``{prefix}/reply/+/+``);
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

    Every ``note_every`` seconds, and at once when it falls behind or catches up, it notes in
    the history whether it keeps up (:meth:`History.recorders
    <cascade.history.History.recorders>`: the dashboard's header says a recorder behind while
    it is), from a task of its own, so that a writer stuck on a slow database is noted too.
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
        note_every: float = NOTE_EVERY,
    ) -> None:
        if max_queue < 1 or batch_size < 1 or max_followed < 1:
            raise ValueError("max_queue, batch_size and max_followed must be at least 1")
        if not linger >= 0:
            raise ValueError("linger must be 0 or more")
        if not note_every > 0:
            raise ValueError("note_every must be more than 0")
        if history.mode != "write":  # else every batch would be retried, never stored
            raise ValueError("a Recorder writes: open its History with mode='write'")
        if share is not None:
            validate_filter(shared_filter(share, "x"))  # InvalidTopicError (a ValueError)
        self.connector = connector
        self._shed_seen = connector.stats.shed
        self._shed_at: float | None = None
        self.history = history
        self.prefix = topic_prefix if topic_prefix is not None else connector.topic_prefix
        self.name = name if name is not None else connector.source_id
        self.share = share
        self.logins_bound = logins_bound
        self._telemetry: SubscriptionHandle | None = None
        self._logs: SubscriptionHandle | None = None  # shared or not as the telemetry
        self._clock = clock
        self._rejoining: asyncio.Task[None] | None = None
        self._handles: list[SubscriptionHandle] = []
        self._log = RateLimitedLogger(_log)
        self._received = 0
        self._asker = SnapshotAsker(connector, self.prefix)
        self._gaps = RecorderGaps(clock, max_followed, ask=self._asker.ask)
        self._intake = Intake(self.prefix, self._gaps, lambda: self._writer.wake())
        self._writer = Writer(
            history,
            self._intake,
            self._gaps,
            name=self.name,
            max_queue=max_queue,
            batch_size=batch_size,
            linger=linger,
            keep=keep,
            keep_logs=keep_logs,
            retry=(retry_initial, retry_max),
            clock=clock,
            log=self._log,
        )
        self._ends = MissedEnds(connector, self.prefix, self._gaps, self._on_summary)
        self._observe = observe
        self._note_every = note_every
        self._noting: asyncio.Task[None] | None = None
        self._behind_since: float | None = None  # as last noted

    @property
    def sharing(self) -> bool:
        """Whether telemetry comes through a shared subscription (each message to one recorder
        of the group), so that this recorder's gap count means nothing and is not kept."""
        return self._intake.sharing

    def _listen(self, handle: SubscriptionHandle | None) -> None:
        """Keep ``handle`` as the telemetry's subscription (``None``: none)."""
        self._telemetry = handle
        self._intake.sharing = handle is not None and handle.topic_filter.startswith("$share/")

    @property
    def stats(self) -> RecorderStats:
        """The counters now."""
        writer = self._writer
        oldest = writer.oldest
        return RecorderStats(
            received=self._received + self._intake.listed + self._ends.refused,
            stored=writer.stored,
            duplicates=writer.duplicates,
            rejected=writer.rejected + self._intake.rejected,
            dropped=writer.dropped,
            queued=writer.queued,
            lag=max(0.0, self._clock() - oldest) if oldest is not None else 0.0,
            write_errors=writer.write_errors,
            last_error=writer.last_error,
            gaps=self._gaps.missed,
            refused=writer.refused + self._intake.refused + self._ends.refused,
            unfollowed=self._gaps.unfollowed,
            ends_from_summaries=self._ends.taken,
            behind=writer.behind_since is not None or self._shedding(),
            times_behind=writer.times_behind,
            shed=self._shed_seen,
        )

    def _shedding(self) -> bool:
        """Whether the connector shed what it received (the recorder read too slowly for the
        broker) within the last :data:`_SHED_SAID_FOR` seconds of reading its stats."""
        shed = self.connector.stats.shed
        now = self._clock()
        if shed != self._shed_seen:
            self._shed_seen, self._shed_at = shed, now
        return self._shed_at is not None and now - self._shed_at < _SHED_SAID_FOR

    async def start(self) -> None:
        """Start the writer and subscribe; messages are recorded from now on."""
        if self._rejoining is not None:
            return
        self._writer.start()
        self._rejoining = asyncio.create_task(self._rejoin(), name="cascade-history-rejoin")
        self._noting = asyncio.create_task(self._note(), name="cascade-history-notes")
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
        # where no retained status comes through a wildcard, the sources online announce
        # themselves again (their presence vouches for the runs they speak of)
        await self.connector.call_roll()

    async def check_sharing(self, timeout: float = 5.0) -> bool:
        """With ``share``, once connected: whether the broker delivers through the shared
        subscription. If it does not (or does not answer within ``timeout`` seconds),
        telemetry and logs are subscribed to plainly instead (each recorder then gets every
        message; the history stores each event once), and ``False``: the connector's
        :meth:`~cascade.interfaces.Connector.subscribe_shared` fallback.
        """
        handle, logs = self._telemetry, self._logs
        if handle is None or logs is None or not self.sharing:
            return False
        assert self.share is not None
        telemetry, self._logs = await self.connector.subscribe_shared(
            self.share,
            [telemetry_filter(prefix=self.prefix), logs_filter(prefix=self.prefix)],
            self._on_message,
            probe=share_probe_topic(self.prefix, self.connector.source_id),
            timeout=timeout,
            plain=True,
            subscribed=[handle, logs],
        )
        self._listen(telemetry)
        if telemetry is handle:  # kept: the broker shares
            return True
        _log.info(
            "the broker does not deliver to shared subscriptions: subscribed to %s",
            telemetry.topic_filter,
        )
        return False

    async def flush(self, timeout: float | None = None) -> None:
        """Wait until every message received so far is written (or counted); ``TimeoutError``
        (``asyncio.TimeoutError``) after ``timeout`` seconds."""
        await self._writer.idle(timeout)

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
        rejoining, self._rejoining = self._rejoining, None
        noting, self._noting = self._noting, None
        for task in (rejoining, noting):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self._ends.release()
        await self._asker.aclose()
        await self._writer.stop(timeout)

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
                self._log.log(
                    logging.ERROR,
                    "observer",
                    "the recorder's observer failed on %r",
                    message.topic[:200],
                    exc_info=True,
                )
        for item in self._intake.take(message, self._clock()):
            self._writer.put(item)

    def _on_summary(self, message: Message) -> None:
        """A summary looked up after a reconnection: the ends it tells of are stored."""
        now = self._clock()
        for envelope in self._ends.ends(message, now):
            self._received += 1
            for item in self._intake.made(envelope, now):
                self._writer.put(item)

    # -- what it says of itself ---------------------------------------------------------------

    async def _note(self, check: float = 0.25) -> None:
        """Note in the history whether it keeps up: every ``note_every`` seconds, and as soon
        as it falls behind or catches up (looked at every ``check`` seconds). A note that
        cannot be written is logged; the next one is tried all the same."""
        noted_at: float | None = None
        while True:
            stats = self.stats
            now = self._clock()
            since = self._behind_since
            if stats.behind != (since is not None):
                since = self._behind_since = now if stats.behind else None
            elif noted_at is not None and now - noted_at < self._note_every:
                await asyncio.sleep(min(check, self._note_every))
                continue
            note = RecorderNote(
                self.name, now, since, stats.queued, stats.lag, stats.dropped, stats.shed
            )
            # a stop waits for a note being written (its thread writes on whatever happens
            # to the task): no transaction of it outlives the recorder
            writing = asyncio.ensure_future(asyncio.to_thread(self.history.note_recorder, note))
            try:
                await asyncio.shield(writing)
            except asyncio.CancelledError:
                with contextlib.suppress(HistoryError):
                    await writing
                raise
            except HistoryError as exc:
                self._log.warning("note", "could not note the recorder in the history: %s", exc)
            noted_at = now
            await asyncio.sleep(min(check, self._note_every))

    # -- after a reconnection ------------------------------------------------------------------

    async def _rejoin(self, every: float = _REJOIN_CHECK) -> None:
        """After each reconnection, ask the engine of every run followed that has not ended
        for a snapshot, again (at most every few seconds, for :data:`_REJOIN_FOR` seconds)
        until the run is heard of: what was sent while this recorder was away (a broker node
        lost, a failover) is gone for a clean session, and a run whose rest, end included,
        all fell in that time shows no hole for an event to reveal; its engine may be
        reconnecting too when the first request goes. A run that ended meanwhile its engine
        answers for no more: its end is read from the engine's retained summary (``_ends``,
        subscribed to for as long). Messages its connector shed (it read too slowly) are
        missed as a reconnection's are, and looked for the same way: a run whose end was
        shed would otherwise stay running in the history. The connector says a reconnection
        and a shed by its ``stats.reconnects`` and ``stats.shed`` alone, so they are looked
        at every ``every`` seconds."""
        stats = self.connector.stats
        seen = (stats.reconnects, stats.shed)
        since: float | None = None  # when the last reconnection (or shed) was noticed
        while True:
            await asyncio.sleep(every)
            missed = (stats.reconnects, stats.shed)
            if missed != seen:
                seen, since = missed, self._clock()
                await self._ends.look(self._gaps.unheard_since(since))
            if since is None:
                continue
            if self._clock() - since > _REJOIN_FOR:
                since = None
                await self._ends.release()
                continue
            for run_id in self._gaps.unheard_since(since):
                self._asker.ask(run_id)  # at most every few seconds a run, as after a hole
