"""Live constraints: validation of control messages, and the manager the scheduler asks."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from cascade.interfaces import (
    MAX_CONTROL_PAYLOAD_BYTES,
    Constraint,
    InvalidMessageError,
    Message,
    RateLimitedLogger,
    decode_constraint,
    validate_scope,
)

from ._tokenbucket import TokenBucket

__all__ = ["ConstraintManager", "ConstraintStats"]

_log = logging.getLogger("cascade.runtime.constraints")

_Key = tuple[str, str]  # (scope, type)


@dataclass(slots=True)
class ConstraintStats:
    """Counters of the control loop.

    ``accepted``: valid constraints applied. ``rejected_control``: control
    messages rejected as malformed (each logged at a limited rate).
    ``cleared``: topics cleared by an empty payload. ``expired``: constraints
    ended by their ``expires_at``.
    """

    accepted: int = 0
    rejected_control: int = 0
    cleared: int = 0
    expired: int = 0


class ConstraintManager:
    """The constraints in force, and the answer to "may a task named X start now?".

    Keys and clearing: a constraint is keyed by ``(scope, type)``; a new one
    with the same key replaces the old whatever its id (last write wins), so
    a pause and a limit on one scope coexist. Each topic remembers the keys
    it set; an empty payload on a topic removes those keys (unless another
    topic has set them since). Both the per-scope topic of PROTOCOL.md and
    the per-(scope, type) topics of ``constraint_topic(scope, type)`` work,
    as scope and type are read from the payload.

    ``expires_at`` is honoured with a timer at that moment (no polling).
    Every change calls the ``on_change`` callbacks, which wake the scheduler.
    ``clock`` is wall time (for ``expires_at``), ``monotonic`` drives the
    token buckets; both are injectable for tests.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        stats: ConstraintStats | None = None,
    ) -> None:
        self._clock = clock
        self._monotonic = monotonic
        self._active: dict[_Key, tuple[Constraint, str]] = {}
        self._by_topic: dict[str, set[_Key]] = {}
        self._buckets: dict[_Key, TokenBucket] = {}
        self._timers: dict[_Key, asyncio.TimerHandle] = {}
        self._running: Counter[str] = Counter()
        self._listeners: list[Callable[[], None]] = []
        self._log = RateLimitedLogger(_log)
        self.stats = stats if stats is not None else ConstraintStats()

    # -- inputs --------------------------------------------------------------

    def on_change(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (synchronously) whenever the constraints in force change."""
        self._listeners.append(callback)

    def handle_message(self, message: Message) -> None:
        """The subscription callback for ``{prefix}/constraints/#``: validate, then apply or clear.

        Never raises: malformed messages are counted, logged and ignored.
        """
        if not message.raw and not message.payload:
            self.clear_topic(message.topic)
            return
        try:
            if len(message.raw) > MAX_CONTROL_PAYLOAD_BYTES:
                raise InvalidMessageError(
                    f"control payload is {len(message.raw)} bytes; "
                    f"at most {MAX_CONTROL_PAYLOAD_BYTES} accepted"
                )
            constraint = decode_constraint(message.raw or message.payload)
            validate_scope(constraint.scope)
        except InvalidMessageError as exc:
            self.stats.rejected_control += 1
            self._log.warning("rejected", "rejected control message on %r: %s", message.topic, exc)
            return
        self.apply(constraint, message.topic)

    def apply(self, constraint: Constraint, topic: str = "") -> None:
        """Put ``constraint`` in force (replacing its ``(scope, type)``), as set by ``topic``.

        A rate limit that replaces one keeps its bucket's tokens: receiving the
        same limit again (a retained message after a reconnect, a controller
        that re-sends it) must not let a burst through.
        """
        key = (constraint.scope, constraint.type)
        bucket = self._buckets.get(key)
        self._remove(key)
        self.stats.accepted += 1
        if constraint.expires_at is not None:
            delay = constraint.expires_at - self._clock()
            if delay <= 0:
                self.stats.expired += 1
                self._changed()
                return
            loop = asyncio.get_running_loop()
            self._timers[key] = loop.call_later(delay, self._expire, key, constraint)
        self._active[key] = (constraint, topic)
        self._by_topic.setdefault(topic, set()).add(key)
        if constraint.type == "rate_limit":
            rate, capacity = constraint.rate_per_second, constraint.capacity
            if bucket is None:
                bucket = TokenBucket(rate, capacity, self._monotonic)
            else:
                bucket.retune(rate, capacity)
            self._buckets[key] = bucket
        self._changed()

    def clear_topic(self, topic: str) -> None:
        """Remove what ``topic`` set (an empty payload on it)."""
        keys = self._by_topic.pop(topic, set())
        for key in keys:
            self._remove(key)
        self.stats.cleared += 1
        self._changed()

    def close(self) -> None:
        """Cancel the expiry timers."""
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()

    # -- the scheduler's questions --------------------------------------------

    @property
    def constraints(self) -> list[Constraint]:
        """The constraints in force now."""
        return [constraint for constraint, _ in self._active.values()]

    def admit(self, task_name: str) -> float | None:
        """Start a task named ``task_name`` if the constraints allow it.

        Returns ``None`` when it may start (its start is then counted, and its
        rate-limit tokens are taken; call :meth:`finished` when it ends), or
        how long to wait: the seconds until the next token, or ``math.inf``
        when only a change of constraints (or a task ending) can let it start.
        """
        if self._active:
            wait = self._check(task_name)
            if wait is not None:
                return wait
        self._running[task_name] += 1
        return None

    def finished(self, task_name: str) -> None:
        """A task admitted by :meth:`admit` has ended."""
        count = self._running[task_name] - 1
        if count:
            self._running[task_name] = count
        else:
            del self._running[task_name]

    def _check(self, task_name: str) -> float | None:
        buckets: list[TokenBucket] = []
        for key, (constraint, _) in self._active.items():
            if not constraint.applies_to(task_name):
                continue
            if constraint.type == "pause":
                return math.inf
            if constraint.type == "concurrency":
                running = sum(n for name, n in self._running.items() if constraint.applies_to(name))
                if running >= constraint.limit:
                    return math.inf
            else:
                buckets.append(self._buckets[key])
        wait = max((bucket.wait_time() for bucket in buckets), default=0.0)
        if wait > 0:
            return wait
        for bucket in buckets:
            bucket.take()
        return None

    # -- internals ------------------------------------------------------------

    def _remove(self, key: _Key) -> None:
        entry = self._active.pop(key, None)
        if entry is not None:
            keys = self._by_topic.get(entry[1])
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._by_topic[entry[1]]
        self._buckets.pop(key, None)
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()

    def _expire(self, key: _Key, constraint: Constraint) -> None:
        entry = self._active.get(key)
        if entry is not None and entry[0] is constraint:
            self._timers.pop(key, None)
            self._remove(key)
            self.stats.expired += 1
            self._changed()

    def _changed(self) -> None:
        for callback in self._listeners:
            callback()
