"""Live constraints: validation of control messages, and the manager the scheduler asks."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from cascade.connector_kit import RateLimitedLogger
from cascade.interfaces import (
    DEFAULT_PREFIX,
    Constraint,
    ConstraintTopicError,
    Hold,
    InvalidMessageError,
    Message,
    SyncPhase,
    constraint_from_topic,
)
from cascade.interfaces.wire import MAX_CONTROL_PAYLOAD_BYTES, split_scope

from ._constraint_matcher import ConstraintMatcher
from ._constraint_matcher import Key as _Key
from ._holds import holds_of
from ._tokenbucket import TokenBucket

__all__ = ["DEFAULT_MAX_CONSTRAINTS", "ConstraintManager", "ConstraintStats"]

_log = logging.getLogger("cascade.runtime.constraints")

DEFAULT_MAX_CONSTRAINTS = 10_000
"""How many constraints an engine holds at most; a new one beyond it is rejected."""


@dataclass(slots=True)
class ConstraintStats:
    """Counters of the control loop (documented on :class:`~cascade.runtime.EngineStats`).

    ``accepted``: valid constraints applied. ``rejected_control``: control
    messages rejected as malformed (each logged at a limited rate).
    ``rejected_topic``: constraints refused because their payload names another scope
    or type than the topic they came on (which is what a broker ACL binds; logged at a
    limited rate), counted apart from, and not in, ``rejected_control``.
    ``rejected_over_cap``: valid new constraints rejected because the engine
    already held ``max_constraints``. ``cleared``: topics cleared by an empty
    payload. ``expired``: constraints ended by their ``expires_at``.
    ``unretained``: constraints dropped after a (re)subscription because the
    broker no longer retained them (cleared while the engine was away).
    ``elsewhere``: constraints placed in another org or project than the engine's
    (``org:globex/task:*``), which govern none of its tasks: set aside, not applied.
    """

    accepted: int = 0
    rejected_control: int = 0
    rejected_over_cap: int = 0
    rejected_topic: int = 0
    cleared: int = 0
    expired: int = 0
    unretained: int = 0
    elsewhere: int = 0


@dataclass(slots=True)
class _Entry:
    constraint: Constraint
    topic: str  # "" when applied in process, not from the broker
    epoch: int  # the sync epoch it was (last) received in


class ConstraintManager:
    """The constraints in force, and the answer to "may a task named X start now?".

    Keys and clearing: a constraint is keyed by ``(scope, type)``; a new one
    with the same key replaces the old whatever its id (last write wins), so
    a pause and a limit on one scope coexist. Each topic remembers the keys
    it set; an empty payload on a topic removes those keys (unless another
    topic has set them since): a clear never removes what another topic holds.

    A constraint's scope and type are its topic's
    (:func:`~cascade.interfaces.constraint_from_topic`): the broker's ACL binds the topic,
    not the payload, so a payload naming another scope (or, on a per-type topic, another
    type) than its topic is refused, counted (``stats.rejected_topic``) and logged at a
    limited rate. So only the writers of a scope's topics can take its keys. Both the
    per-scope topic of docs/protocol.md (any type) and the per-(scope, type) topics of
    ``constraint_topic(scope, type)`` work.

    ``place``, the engine's ``(org, project)``: a constraint placed in an org or a project
    (``org:acme/task:etl_*``, :func:`~cascade.interfaces.split_scope`) applies only if its
    place covers it; one placed elsewhere is set aside (``stats.elsewhere``). Without
    ``place``, only unplaced constraints apply.

    Converging on the broker: :meth:`sync` is the subscription's ``on_sync``.
    While a (re)subscription's retained snapshot arrives, no task is admitted
    (for ``sync_hold`` seconds at most: a hung broker costs at most that), so
    a constraint set while the engine was away applies before the next task
    starts. After the snapshot ends, a constraint that
    came from the broker before the snapshot began and was not delivered
    again in it is no longer retained there (a resume sent while the engine
    was away, a broker that lost its store), and is dropped. Under MQTT
    3.1.1 a live copy of a retained message and a message never retained
    look alike (both arrive without the retain flag), so this applies to
    every constraint from the broker: one published without retain holds
    until the next reconnection, if it is not cleared or expired first.

    Cost: the scheduler's question is answered from a :class:`ConstraintMatcher`,
    so constraints on other task names cost an admission nothing; at most
    ``max_constraints`` are held, and a new one beyond that is rejected,
    counted (``stats.rejected_over_cap``) and warned about at a limited rate.

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
        max_constraints: int = DEFAULT_MAX_CONSTRAINTS,
        sync_hold: float = 5.0,
        prefix: str = DEFAULT_PREFIX,
        place: tuple[str, str] | None = None,
    ) -> None:
        if max_constraints < 0:
            raise ValueError(f"max_constraints must be >= 0, not {max_constraints!r}")
        self._clock = clock
        self._prefix = prefix
        self._place = place
        self._monotonic = monotonic
        self._max = max_constraints
        self._active: dict[_Key, _Entry] = {}
        self._matcher = ConstraintMatcher()
        self._epoch = 0
        self._sync_hold = sync_hold
        self._holding = False
        self._hold_timer: asyncio.TimerHandle | None = None
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

        Never raises: malformed messages, and constraints on another topic than their
        scope's, are counted, logged and ignored.
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
            constraint = constraint_from_topic(
                message.topic, message.raw or message.payload, self._prefix
            )
        except ConstraintTopicError as exc:
            self.stats.rejected_topic += 1
            self._log.warning(
                "not-its-topic", "refused a constraint on %r: %s", message.topic[:300], exc
            )
            return
        except InvalidMessageError as exc:
            self.stats.rejected_control += 1
            self._log.warning("rejected", "rejected control message on %r: %s", message.topic, exc)
            return
        if not self.governs_here(constraint.scope):
            self.stats.elsewhere += 1
            return
        self.apply(constraint, message.topic)

    def governs_here(self, scope: str) -> bool:
        """Whether a constraint on ``scope`` can govern this engine's tasks by its place: an
        unplaced one always, one placed in an org or a project if it is this engine's."""
        parts = split_scope(scope)
        return parts.org is None or (self._place is not None and parts.covers(*self._place))

    def apply(self, constraint: Constraint, topic: str = "") -> bool:
        """Put ``constraint`` in force (replacing its ``(scope, type)``), as set by ``topic``.

        A rate limit that replaces one keeps its bucket's tokens: receiving the
        same limit again (a retained message after a reconnect, a controller
        that re-sends it) must not let a burst through. Returns ``False`` when
        it was rejected because ``max_constraints`` are held already.
        """
        key = (constraint.scope, constraint.type)
        if key not in self._active and len(self._active) >= self._max:
            self.stats.rejected_over_cap += 1
            self._log.warning(
                "over-cap",
                "rejected constraint %s on %r from %r: already holding %d (max_constraints)",
                constraint.type,
                constraint.scope,
                topic,
                self._max,
            )
            return False
        bucket = self._buckets.get(key)
        self._remove(key)
        self.stats.accepted += 1
        if constraint.expires_at is not None:
            delay = constraint.expires_at - self._clock()
            if delay <= 0:
                self.stats.expired += 1
                self._changed()
                return True
            loop = asyncio.get_running_loop()
            self._timers[key] = loop.call_later(delay, self._expire, key, constraint)
        self._active[key] = _Entry(constraint, topic, self._epoch)
        self._matcher.add(key, constraint)
        self._by_topic.setdefault(topic, set()).add(key)
        if constraint.type == "rate_limit":
            rate, capacity = constraint.rate_per_second, constraint.capacity
            if bucket is None:
                bucket = TokenBucket(rate, capacity, self._monotonic)
            else:
                bucket.retune(rate, capacity)
            self._buckets[key] = bucket
        self._changed()
        return True

    def sync(self, phase: SyncPhase) -> None:
        """The constraints subscription's ``on_sync``: converge on the broker's retained set.

        ``"begin"``: a (re)subscription starts; what arrives from now on is
        the broker's current state. ``"end"``: its retained messages are all
        in; every constraint from the broker received before ``"begin"`` and
        not again since is dropped (counted in ``stats.unretained``).
        """
        if phase == "begin":
            self._epoch += 1
            self._hold()
            return
        self._release()
        stale = [
            key for key, entry in self._active.items() if entry.topic and entry.epoch < self._epoch
        ]
        for key in stale:
            self._remove(key)
        if stale:
            self.stats.unretained += len(stale)
            _log.info(
                "dropped %d constraint(s) the broker no longer retains: %s",
                len(stale),
                ", ".join(f"{scope} {kind}" for scope, kind in stale[:10]),
            )
        self._changed()

    def _hold(self) -> None:
        """No task starts until the snapshot ends, or ``sync_hold`` seconds at most."""
        if self._hold_timer is not None:
            self._hold_timer.cancel()
        self._holding = True
        loop = asyncio.get_running_loop()
        self._hold_timer = loop.call_later(self._sync_hold, self._hold_expired)

    def release_hold(self) -> None:
        """Stop holding tasks for the snapshot under way (its end still applies what came):
        the engine said already that it starts without it."""
        if self._holding:
            self._release()
            self._changed()

    def _release(self) -> None:
        self._holding = False
        if self._hold_timer is not None:
            self._hold_timer.cancel()
            self._hold_timer = None

    def _hold_expired(self) -> None:
        self._hold_timer = None
        self._holding = False
        _log.warning(
            "the broker's retained constraints did not all arrive within %.1f s (sync_hold) "
            "of subscribing; tasks start under the constraints known so far",
            self._sync_hold,
        )
        self._changed()

    def clear_topic(self, topic: str) -> None:
        """Remove what ``topic`` set (an empty payload on it)."""
        keys = self._by_topic.pop(topic, set())
        for key in keys:
            self._remove(key)
        self.stats.cleared += 1
        self._changed()

    def close(self) -> None:
        """Cancel the timers (expiry, the snapshot's hold)."""
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        self._release()

    # -- the scheduler's questions --------------------------------------------

    @property
    def constraints(self) -> list[Constraint]:
        """The constraints in force now."""
        return [entry.constraint for entry in self._active.values()]

    def admit(self, task_name: str) -> float | None:
        """Start a task named ``task_name`` if the constraints allow it.

        Returns ``None`` when it may start (its start is then counted, and its
        rate-limit tokens are taken; call :meth:`finished` when it ends), or
        how long to wait: the seconds until the next token, or ``math.inf``
        when only a change of constraints (or a task ending) can let it start.
        """
        if self._holding:
            return math.inf
        if self._active:
            governing = self._matcher.matching(task_name)
            if governing:
                wait = self._check(governing)
                if wait is not None:
                    return wait
        self._running[task_name] += 1
        return None

    def holds(self, task_name: str) -> list[Hold]:
        """What holds a task named ``task_name`` back now (empty: nothing does).

        Asked only when a task blocks (and by the heartbeat, of the tasks blocked),
        never on the way to admitting one: see :func:`~._holds.holds_of`.
        """
        if self._holding:
            return [Hold(type="sync")]
        if not self._active:
            return []
        return holds_of(
            self._matcher.matching(task_name),
            self._matcher.matching,
            self._running,
            self._buckets,
            self._clock(),
        )

    def finished(self, task_name: str) -> None:
        """A task admitted by :meth:`admit` has ended."""
        count = self._running[task_name] - 1
        if count:
            self._running[task_name] = count
        else:
            del self._running[task_name]

    def _check(self, governing: dict[_Key, Constraint]) -> float | None:
        buckets: list[TokenBucket] = []
        matching = self._matcher.matching
        for key, constraint in governing.items():
            if constraint.type == "pause":
                return math.inf
            if constraint.type == "concurrency":
                running = sum(n for name, n in self._running.items() if key in matching(name))
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
            self._matcher.remove(key)
            keys = self._by_topic.get(entry.topic)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._by_topic[entry.topic]
        self._buckets.pop(key, None)
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()

    def _expire(self, key: _Key, constraint: Constraint) -> None:
        entry = self._active.get(key)
        if entry is not None and entry.constraint is constraint:
            self._timers.pop(key, None)
            self._remove(key)
            self.stats.expired += 1
            self._changed()

    def _changed(self) -> None:
        for callback in self._listeners:
            callback()
