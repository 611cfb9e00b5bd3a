"""A small per-address budget for the sign-in pages: a flood from one address is answered 429
at the cost of a dictionary lookup, before any work."""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

__all__ = ["Budget"]


class Budget:
    """``burst`` requests from one address at once, then ``rate`` a second (a token bucket);
    at most ``addresses`` remembered (the longest idle forgotten first)."""

    def __init__(self, burst: int = 20, rate: float = 1.0, addresses: int = 10_000) -> None:
        self.burst = burst
        self.rate = rate
        self.addresses = addresses
        self.refused = 0
        """Requests answered 429."""
        self._buckets: dict[str, tuple[float, float]] = {}  # address -> (tokens, at)

    def take(self, address: str) -> bool:
        """Whether ``address`` may have one more request now."""
        now = time.monotonic()
        tokens, at = self._buckets.pop(address, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - at) * self.rate)
        allowed = tokens >= 1.0
        self._buckets[address] = (tokens - 1.0 if allowed else tokens, now)
        if len(self._buckets) > self.addresses:
            del self._buckets[next(iter(self._buckets))]
        if not allowed:
            self.refused += 1
        return allowed

    def refusal(self, request: Request) -> Response | None:
        """429 for a request over its address's budget, else ``None``."""
        address = request.client.host if request.client else "?"
        if self.take(address):
            return None
        wait = max(1, round(1 / self.rate))
        return PlainTextResponse(
            "too many sign-in requests from this address: wait a moment",
            status_code=429,
            headers={"retry-after": str(wait), "cache-control": "no-store"},
        )
