"""A token bucket on an injectable clock, for rate-limit constraints."""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["TokenBucket"]


class TokenBucket:
    """Refills at ``rate`` tokens per second up to ``capacity``; starts full.

    ``capacity`` is at least one, so any positive rate (``0.01`` per second
    included) lets a task through every ``1 / rate`` seconds.
    """

    def __init__(
        self, rate: float, capacity: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be positive, not {rate}")
        self.rate = rate
        self.capacity = max(1.0, capacity)
        self._clock = clock
        self._tokens = self.capacity
        self._stamp = clock()

    def retune(self, rate: float, capacity: float) -> None:
        """Change rate and capacity, keeping the tokens already spent (none are given back)."""
        if rate <= 0:
            raise ValueError(f"rate must be positive, not {rate}")
        self._refill()
        self.rate = rate
        self.capacity = max(1.0, capacity)
        self._tokens = min(self._tokens, self.capacity)

    def _refill(self) -> None:
        now = self._clock()
        if now > self._stamp:
            self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def wait_time(self) -> float:
        """Seconds until a token is available: ``0.0`` if one is now."""
        self._refill()
        if self._tokens >= 1.0:
            return 0.0
        return (1.0 - self._tokens) / self.rate

    def take(self) -> None:
        """Use one token; call only after :meth:`wait_time` returned ``0.0``."""
        self._tokens -= 1.0
