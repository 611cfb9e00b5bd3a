"""Reconnection delays: exponential backoff with jitter, bounded both ways."""

from __future__ import annotations

import random
from collections.abc import Callable

__all__ = ["Backoff"]


class Backoff:
    """Delays for successive reconnection attempts.

    Attempt ``n`` (from 0) waits a random time in ``[b/2, b]`` where
    ``b = min(maximum, initial * 2**n)``: the first retry comes within
    ``initial`` seconds, later ones spread out (the jitter keeps a fleet of
    engines from reconnecting in lockstep) and never exceed ``maximum``.
    """

    def __init__(
        self,
        initial: float = 0.1,
        maximum: float = 30.0,
        rand: Callable[[float, float], float] | None = None,
    ) -> None:
        if initial <= 0 or maximum < initial:
            raise ValueError("backoff needs 0 < initial <= maximum")
        self.initial = initial
        self.maximum = maximum
        self._rand = rand if rand is not None else random.uniform  # looked up when made
        self.attempt = 0

    def next_delay(self) -> float:
        """The delay before the next attempt; each call moves one attempt on."""
        base = min(self.maximum, self.initial * 2 ** min(self.attempt, 64))
        self.attempt += 1
        return self._rand(base / 2, base)

    def capped_delay(self) -> float:
        """A delay at the cap (with jitter), for failures that retrying soon cannot fix."""
        self.attempt += 1
        return self._rand(self.maximum / 2, self.maximum)

    def reset(self) -> None:
        """Start again from the initial delay (after a connection that stayed up)."""
        self.attempt = 0
