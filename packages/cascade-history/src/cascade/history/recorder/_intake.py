"""What the recorder keeps of each message it receives, decided in its subscription callback.

:class:`Intake` decodes a message, refuses what no engine of its run can have sent (the
verdicts of ``RecorderGaps``: another source's, a conflict, a number out of bounds, a time
ahead; a source something vouches for taking over a run first heard from one nothing did,
``_vouches``) and hands back what to queue; the refusals, the vouches and the other sources'
claims wait for the writer (:meth:`Intake.counts`), which writes them with its next batch.
It never waits: it runs in the connector's callback.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from msgspec import UNSET

from cascade.connector_kit import RateLimitedLogger
from cascade.interfaces import (
    ConstraintTopicError,
    Envelope,
    Heartbeat,
    InvalidMessageError,
    Message,
    RunSnapshot,
    StatusMessage,
    events_topic,
    split_run_topic,
)
from cascade.interfaces.commands import CancelReply, DecisionReply
from cascade.interfaces.logs import LogBatch
from cascade.reader import (
    MAX_CLOCK_SKEW,
    REASON_FOREIGN,
    REASON_FUTURE,
    REASON_NOT_ITS_PLACE,
    Seen,
    answer_part_refusal,
    answer_stamped_ahead,
    snapshot_events,
)

from .._received import NotItsPlaceError, Received, Timed, read_message
from .._times import parse_time
from ._gaps import RecorderGaps
from ._vouches import Vouches

__all__ = ["Counts", "Intake"]

Counts = tuple[
    dict[tuple[str, str], int],  # refusals by run and reason
    dict[str, tuple[str, str]],  # vouched: run to source and what vouches
    dict[tuple[str, str], int],  # claims: refused by run and source
    dict[str, int],  # displaced: run to its lone number set aside
]
"""What the writer writes beside a batch (``History.store``'s ``refused``, ``vouched``,
``claims`` and ``displaced``)."""

_log = RateLimitedLogger(logging.getLogger("cascade.history"))


class Intake:
    """Turns received messages into what the history stores (:meth:`take`), and keeps the
    counts of what it refused for the writer (:meth:`counts`). ``on_refusal`` is called when
    there is a refusal to write (the writer wakes); ``sharing``: the telemetry comes through
    a shared subscription, a part of each run (no gaps, no run followed)."""

    def __init__(self, prefix: str, gaps: RecorderGaps, on_refusal: Callable[[], None]) -> None:
        self.prefix = prefix
        self.gaps = gaps
        self.vouches = Vouches()
        self.sharing = False
        self.refused = 0
        """Messages refused in the callback (and runs' lone events displaced, once written)."""
        self.rejected = 0
        """Messages that are no message of the protocol, or answers from another source."""
        self.listed = 0
        """The events snapshots listed beyond one a snapshot (a snapshot counts as them)."""
        self._on_refusal = on_refusal
        self._refusals: dict[tuple[str, str], int] = {}
        self._claims: dict[tuple[str, str], int] = {}

    def take(self, message: Message, now: float) -> list[Received]:
        """What the history stores of ``message`` (received at ``now``): one item, a
        snapshot's events, or nothing (refused and counted, rejected, or nothing it keeps)."""
        try:
            item = read_message(message, self.prefix, now)
        except ConstraintTopicError as exc:  # no run's: counted in the stats only
            self.refused += 1
            _log.warning(
                "not-its-topic", "refused a constraint on %r: %s", message.topic[:200], exc
            )
            return []
        except NotItsPlaceError as exc:  # forged: counted as its run's refusal
            self._refuse(exc.run_id, REASON_NOT_ITS_PLACE)
            _log.warning("not-its-place", "refused a message on %r: %s", message.topic[:200], exc)
            return []
        except InvalidMessageError as exc:
            self.rejected += 1
            _log.warning("rejected", "rejected a message on %r: %s", message.topic[:200], exc)
            return []
        if item is None:
            return []  # not something the history keeps (a cleared status)
        body = item.message
        if isinstance(body, Envelope):
            return self._envelope(item, body, hash(message.raw))
        if isinstance(body, StatusMessage):
            stamp = parse_time(body.ts)
            if stamp is not None and stamp - item.received_at > MAX_CLOCK_SKEW:
                self.refused += 1  # no run's: counted in the stats only
                return []
            self.vouches.status(item.topic, body)
        elif isinstance(body, LogBatch):
            stamp = parse_time(body.ts)
            if stamp is not None and stamp - item.received_at > MAX_CLOCK_SKEW:
                self._refuse(body.run_id, REASON_FUTURE)
                return []
            owner = self.gaps.owner(body.run_id)
            if owner is not None and owner != body.source:
                self._refuse(body.run_id, REASON_FOREIGN, body.source)
                return []
        elif isinstance(body, (CancelReply, DecisionReply)):
            owner = self.gaps.owner(body.run_id)
            if owner is not None and owner != body.source:
                self.rejected += 1  # only the run's engine answers for it
                return []
        return [item]

    def made(self, envelope: Envelope, now: float) -> list[Received]:
        """What the history stores of an envelope the recorder made itself (a run's end an
        engine's summary told of: ``_missed_ends``), checked as a received one would be."""
        topic = events_topic(envelope.org_id, envelope.project_id, envelope.run_id, self.prefix)
        return self._envelope(Received(topic, envelope, now), envelope, 0)

    def _envelope(self, item: Received, body: Envelope, digest: int) -> list[Received]:
        stamp = item.at if isinstance(item, Timed) else parse_time(body.ts)
        answer = body.body if isinstance(body.body, RunSnapshot) else None
        if (stamp is not None and stamp - item.received_at > MAX_CLOCK_SKEW) or (  # ahead()
            answer is not None and answer_stamped_ahead(answer, item.received_at)
        ):
            self._refuse(body.run_id, REASON_FUTURE)
            return []
        if isinstance(item, Timed):
            sourced = item.sourced
        else:  # made by the recorder itself
            split = split_run_topic(item.topic, self.prefix)
            sourced = split is not None and split[1] is not None
        vouched = self.vouches.of(body, sourced)
        if self.sharing:  # a shared recorder sees a part of each run: it cannot tell
            if vouched is not None:
                self.gaps.vouch(body, vouched)
        else:
            seen = self.gaps.see(body, item.received_at, digest, vouched)
            if seen is not Seen.NEW and seen is not Seen.COPY:
                self._refuse(body.run_id, seen.value, body.source)
                return []
            if isinstance(body.body, Heartbeat) and not self.gaps.numbered(body.run_id):
                body.body.last_seq = UNSET  # no event backs its claim yet: not stored
        if answer is None:
            return [item]
        refusal = answer_part_refusal(answer) if self.sharing else None
        if refusal is not None:  # a shared recorder checks each part on its own
            self._refuse(body.run_id, refusal.value)
            return []
        listed = snapshot_events(body)  # its tasks' latest events, as such
        self.listed += len(listed) - 1
        return [Received(item.topic, envelope, item.received_at) for envelope in listed]

    def _refuse(self, run_id: str, reason: str, source: str | None = None) -> None:
        """A message about ``run_id`` no engine of it can have sent: counted, to be written
        (``source``'s claim on the run, when it is refused as another source's)."""
        self.refused += 1
        key = (run_id, reason)
        self._refusals[key] = self._refusals.get(key, 0) + 1
        if source is not None and reason == REASON_FOREIGN:
            claim = (run_id, source)
            self._claims[claim] = self._claims.get(claim, 0) + 1
        self._on_refusal()

    @property
    def unwritten(self) -> bool:
        """Whether refusals wait to be written."""
        return bool(self._refusals)

    def counts(self) -> Counts:
        """The refusals, vouches, claims and displaced runs not written yet, for a write."""
        displaced = self.gaps.displaced()
        self.refused += len(displaced)  # each its run's one event, refused once displaced
        counted = (self._refusals, self.gaps.vouches(), self._claims, displaced)
        self._refusals, self._claims = {}, {}
        return counted

    def keep(self, counted: Counts) -> None:
        """What a failed write did not store: written with the next one."""
        refusals, vouched, claims, displaced = counted
        self.refused -= len(displaced)  # counted again when written
        self.gaps.keep_displaced(displaced)
        for key, count in refusals.items():
            self._refusals[key] = self._refusals.get(key, 0) + count
        for key, count in claims.items():
            self._claims[key] = self._claims.get(key, 0) + count
        self.gaps.keep_vouches(vouched)
