"""A fleet worker's engines on a clock: what falls due in each round of its pacing loop.

No I/O and no clock of its own: :class:`EngineShare` is told the time and how many events
to make, and hands every message to a ``publish`` callable, so that a test can drive it on
a clock of its own (``_fleet_worker`` drives it on the real one).
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable

from ._fleet_engines import Outgoing, SimulatedEngine
from ._fleet_summaries import SummaryPacer

__all__ = ["EngineShare", "Publish"]

Publish = Callable[[Outgoing], bool]
"""Publishes a message; ``False``: it could not be sent (not connected)."""


class EngineShare:
    """Engines of a worker: events from engines taken at random, each engine's heartbeat
    every ``heartbeat_interval`` while it has a run, and their summaries.

    An engine's summary is wanted when a run of it starts or ends and at each heartbeat of
    a run, and goes as :class:`SummaryPacer` lets it (one a second per engine at most); at
    :meth:`stop` each engine whose run was cancelled, or whose summary waits, sends it at
    once. ``began`` (monotonic) is when the heartbeats' first interval starts; they are
    spread over it, or each at a random moment of its first ``beats_within`` seconds.
    ``heartbeats`` and ``summaries`` count what was published.
    """

    def __init__(
        self,
        engines: list[SimulatedEngine],
        rng: random.Random,
        publish: Publish,
        heartbeat_interval: float,
        began: float,
        beats_within: float | None = None,
    ) -> None:
        self.engines = engines
        self._rng = rng
        self._publish = publish
        self._interval = heartbeat_interval
        if beats_within is None:
            firsts = [
                heartbeat_interval * (n + rng.random()) / len(engines) for n in range(len(engines))
            ]
        else:
            firsts = [beats_within * rng.random() for _ in engines]
        self._beats = deque(
            sorted(
                ((began + first, engine) for first, engine in zip(firsts, engines, strict=True)),
                key=lambda beat: beat[0],
            )
        )
        self.pacer: SummaryPacer[SimulatedEngine] = SummaryPacer()
        self.heartbeats = self.summaries = 0

    def round(self, now: float, wall: float, ts: str, events: int) -> None:
        """``events`` events, then the heartbeats and summaries due at ``now`` (monotonic;
        ``wall`` epoch seconds and ``ts`` its ISO form)."""
        engines, rng, publish, pacer = self.engines, self._rng, self._publish, self.pacer
        count = len(engines)
        for _ in range(events):
            engine = engines[rng.randrange(count)]
            if not publish(engine.step(now, wall, ts)):
                engine.book.dropped += 1
            if engine.summary_wanted:
                engine.summary_wanted = False
                if pacer.want(engine, now):
                    self._summary(engine, now, ts)
        beats = self._beats
        while beats[0][0] <= now:
            at, engine = beats.popleft()
            beat = engine.heartbeat(ts)
            if beat is not None:
                publish(beat)
                self.heartbeats += 1
                if pacer.want(engine, now):
                    self._summary(engine, now, ts)
            beats.append((at + self._interval, engine))
        for engine in pacer.due(now):
            self._summary(engine, now, ts)

    def stop(self, now: float, ts: str) -> None:
        """End every live run as a stopped engine does; each engine that ended one, or
        whose summary waited, publishes its last summary at once."""
        for engine in self.engines:
            for message in engine.stop(now, ts):
                if not self._publish(message):
                    engine.book.dropped += 1
            if engine.summary_wanted or engine.book.pending:
                engine.summary_wanted = False
                self._summary(engine, now, ts)

    def _summary(self, engine: SimulatedEngine, now: float, ts: str) -> None:
        summaries = engine.summary(now, ts)  # counted on, whether they go or not
        if engine.summarises:
            for summary in summaries:
                self._publish(summary)
            self.summaries += 1
