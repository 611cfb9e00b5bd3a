"""What a task may still log: the token buckets of its lines (and its run's) a second, and its
lines so far."""

from __future__ import annotations

__all__ = ["LineBucket", "TaskLines", "bucket_empty"]


class LineBucket:
    """Tokens refilled at ``rate`` a second up to ``rate`` (a second's burst); starts full."""

    __slots__ = ("rate", "stamp", "tokens")

    def __init__(self, rate: float, now: float) -> None:
        self.rate = rate
        self.tokens = rate
        self.stamp = now

    def refill(self, now: float) -> None:
        """Add what the time since the last refill gives (``now``: the clock's time; one that
        went back adds none), up to the burst."""
        elapsed = now - self.stamp
        if elapsed > 0:
            self.tokens = min(self.rate, self.tokens + elapsed * self.rate)
            self.stamp = now

    def spend(self, now: float) -> None:
        """Use a token (there is one). A full bucket starts counting its refill from now:
        what accrued beyond the burst is not kept."""
        if self.tokens >= self.rate:
            self.stamp = now
        self.tokens -= 1.0


def bucket_empty(bucket: LineBucket, now: float) -> bool:
    """Whether ``bucket`` has no token even refilled (called only when it looked empty)."""
    bucket.refill(now)
    return bucket.tokens < 1.0


class TaskLines:
    """One task's lines so far (all its attempts) and its rate."""

    __slots__ = ("bucket", "n", "name")

    def __init__(self, name: str, rate: float, now: float) -> None:
        self.name = name
        self.n = 0
        self.bucket = LineBucket(rate, now)
