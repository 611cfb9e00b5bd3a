"""When the sender asks the broker to confirm the QoS 0 messages it has written.

A QoS 0 PUBLISH gets no answer. The broker's answer to any later packet on
the same connection (here the PUBACK of an empty QoS 1 publish to the
connection's own ``{marker topic}/confirm``, which nobody subscribes to)
says that it has read every packet written before it: TCP keeps order.
Until then a QoS 0 message is unconfirmed, and a lost connection sends it
again on the next one (see :class:`~._buffer.OutgoingBuffer`).
"""

from __future__ import annotations

import asyncio

from ._buffer import OutgoingBuffer

__all__ = ["CONFIRM_DELAY", "Confirmations", "confirmation_topic"]

CONFIRM_DELAY = 0.05
"""Seconds a written QoS 0 message waits at most before the sender asks for a confirmation."""


def confirmation_topic(marker_topic: str) -> str:
    """The topic of a connection's confirmation requests: under its own marker topic."""
    return f"{marker_topic}/confirm"


class Confirmations:
    """Decides when the sender asks: every ``every`` QoS 0 messages, when it stalls, and soon.

    The sender asks when ``every`` QoS 0 messages wait for a request, when it
    stops with messages still queued (a full window, or paho's backlog: the
    answer is what frees it), while a flush waits (:meth:`want` wakes it), and at
    most :data:`CONFIRM_DELAY` after a pass left messages unrequested, so a
    trickle of telemetry is confirmed within about that delay. At one timer
    per delay and one request per ``every`` messages, the cost per message
    stays negligible.
    """

    def __init__(self, buffer: OutgoingBuffer, every: int, delay: float = CONFIRM_DELAY) -> None:
        self.every = max(1, every)
        self.delay = delay
        self.wanted = False
        self._buffer = buffer
        self._wake: asyncio.Event | None = None
        self._timer: asyncio.TimerHandle | None = None

    def due(self, stalled: bool, wake: asyncio.Event) -> bool:
        """At the end of a sender's pass: whether to ask now (else a timer will say when)."""
        if not self._buffer.unrequested:
            return False
        # while a flush waits, for all it hands: a flush longer than the window waited for
        # the timer once its last messages were fewer than ``every``
        if stalled or self.wanted or self._buffer.unrequested >= self.every or self._buffer.awaited:
            return True
        if self._timer is None:
            self._wake = wake
            self._timer = asyncio.get_running_loop().call_later(self.delay, self._expired)
        return False

    def asked(self) -> None:
        """The sender has just asked: nothing is unrequested any more."""
        self.wanted = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def want(self, wake: asyncio.Event | None) -> None:
        """A flush waits for the answer: wake the sender, which asks while it waits."""
        if wake is not None:
            wake.set()

    def _expired(self) -> None:
        self._timer = None
        self.wanted = True
        if self._wake is not None:
            self._wake.set()
