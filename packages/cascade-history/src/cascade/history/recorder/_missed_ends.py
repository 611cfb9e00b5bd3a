"""Runs' ends a recorder missed while it was away, read from their engines' retained summaries.

A run whose end fell while the recorder was away (a broker node lost, a failover) shows no
hole for a later event to reveal, and its engine, done with it, no longer answers snapshot
requests for it: without more it would stay ``Running`` in the history for ever (``Lost``
once its engine goes). Its engine's retained summary lists it ended, with its status and its
last event's number, and outlives the engine. So after a reconnection the recorder
subscribes, for a while, to the summary topic of each source with a run it follows that it
has not heard of since (:meth:`MissedEnds.look`), and what such a summary says ended is
stored as the run's end (:meth:`MissedEnds.ends`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from cascade.connector_kit import RateLimitedLogger
from cascade.interfaces import (
    Connector,
    Envelope,
    Heartbeat,
    InvalidMessageError,
    LifecycleEvent,
    Message,
    SubscriptionHandle,
    same_source,
)
from cascade.interfaces.summaries import decode_summary, summary_topic
from cascade.reader import MAX_CLOCK_SKEW

from .._times import parse_time
from ._gaps import RecorderGaps

__all__ = ["MAX_LOOKED", "MissedEnds"]

MAX_LOOKED = 1_000
"""Sources whose summaries are subscribed to at once at most (the runs of the others have
their ends stored only if heard)."""

_log = RateLimitedLogger(logging.getLogger("cascade.history"))


class MissedEnds:
    """The summaries of the sources a reconnection may have left a run's end unheard of.

    :meth:`look` subscribes (exact topics, so every broker sends the retained copy) to the
    summary of the source of each run named, until :meth:`release`; each summary delivered goes to
    ``deliver``, which hands it to :meth:`ends`. A summary counts only on its source's own
    topic, not stamped ahead, and only for runs followed from that very source that have not
    ended: a summary cannot end another source's run.
    """

    def __init__(
        self,
        connector: Connector,
        prefix: str,
        gaps: RecorderGaps,
        deliver: Callable[[Message], None],
    ) -> None:
        self._connector = connector
        self._prefix = prefix
        self._gaps = gaps
        self._deliver = deliver
        self._handles: dict[str, SubscriptionHandle] = {}
        self.taken = 0
        """Runs' ends taken from summaries."""
        self.refused = 0
        """Summaries refused: not the protocol's, another source's, or stamped ahead."""

    async def look(self, run_ids: Iterable[str]) -> None:
        """Subscribe to the summary of the source of each of ``run_ids`` (runs followed), each
        source once (at most :data:`MAX_LOOKED` sources in all)."""
        for source in dict.fromkeys(map(self._gaps.owner, run_ids)):
            if source is None or source in self._handles:
                continue
            if len(self._handles) >= MAX_LOOKED:
                _log.warning(
                    "looked",
                    "more than %d sources to read the summaries of after a "
                    "reconnection: the others' ended runs are not looked up",
                    MAX_LOOKED,
                )
                return
            topic = summary_topic(source, self._prefix)
            try:
                self._handles[source] = await self._connector.subscribe(topic, self._deliver)
            except Exception as exc:  # the connection went again: the next reconnection looks
                _log.warning("look", "could not subscribe to %r: %s", topic, exc)
                return

    async def release(self) -> None:
        """Unsubscribe from every summary :meth:`look` subscribed to."""
        handles, self._handles = self._handles, {}
        for handle in handles.values():
            try:
                await handle.unsubscribe()
            except Exception as exc:  # gone with the connection anyway (a clean session)
                _log.warning(
                    "release", "could not unsubscribe from %r: %s", handle.topic_filter, exc
                )

    def ends(self, message: Message, now: float) -> list[Envelope]:
        """What the summary in ``message`` (received at ``now``) says of the followed runs that
        have not ended: for each run it lists ended, its end, unnumbered (the real one, should
        it come late, fills its own place), then a heartbeat announcing its last event's number
        (what the recorder lacks of it is counted missed)."""
        source_level = message.topic.rsplit("/", 1)[-1]
        try:
            summary = decode_summary(message.raw or message.payload)
        except InvalidMessageError as exc:
            return self._refuse(message, str(exc))
        stamp = parse_time(summary.ts)
        if not same_source(summary.source, source_level):
            return self._refuse(message, f"from {summary.source!r}, not the topic's source")
        if stamp is not None and stamp - now > MAX_CLOCK_SKEW:
            return self._refuse(message, "stamped ahead")
        made: list[Envelope] = []
        for run in summary.listed:
            if (
                run.status == "Running"
                or self._gaps.owner(run.run_id) != summary.source
                or self._gaps.ended(run.run_id)
            ):
                continue
            ended = run.ended or summary.ts
            end = LifecycleEvent(
                event="ENGINE_STOPPED", status=run.status, cancelled=run.cancelled or None
            )
            for body in (end, Heartbeat(last_seq=run.last_seq)):
                made.append(
                    Envelope(
                        ts=ended,
                        run_id=run.run_id,
                        org_id=run.org_id,
                        project_id=run.project_id,
                        source=summary.source,
                        body=body,
                    )
                )
            self.taken += 1
            _log.log(
                logging.INFO,
                "ended",
                "run %s ended (%s) while the recorder was away: its end is taken from %s's summary",
                run.run_id,
                run.status,
                summary.source,
            )
        return made

    def _refuse(self, message: Message, why: str) -> list[Envelope]:
        self.refused += 1
        _log.warning("refused-summary", "refused a summary on %r: %s", message.topic[:200], why)
        return []
