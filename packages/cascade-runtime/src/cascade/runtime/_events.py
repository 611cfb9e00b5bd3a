"""The typed events a run emits, and the in-process bus that carries them."""

from __future__ import annotations

import logging
import time
import types
from collections.abc import Callable
from typing import Any, ClassVar, Literal, TypeAlias, overload

import msgspec

from cascade.connector_kit import RateLimitedLogger
from cascade.interfaces import Hold
from cascade.interfaces.commands import Decided
from cascade.interfaces.graphs import RunGraph
from cascade.interfaces.serving import RunOrigin

__all__ = [
    "Event",
    "EventBus",
    "EventHandler",
    "ResourceAcquired",
    "ResourceReleased",
    "RunFinished",
    "RunStarted",
    "TaskBlocked",
    "TaskCached",
    "TaskCancelled",
    "TaskCompleted",
    "TaskEvent",
    "TaskFailed",
    "TaskHeld",
    "TaskRetrying",
    "TaskMapped",
    "TaskRunning",
    "TaskSkipped",
    "WireEvent",
]

_log = logging.getLogger("cascade.runtime.events")


# The events are frozen msgspec Structs, made in C: every task makes two or more, and a frozen
# dataclass sets each field through object.__setattr__ (about ten times the cost). gc=False: an
# event holds ids, numbers and records that never refer back to it, so it is in no cycle, and
# the collector need not look at the thousands a run's telemetry keeps (each task's latest).
# Those that hold an exception are tracked: its traceback's frames may hold the event.


class RunStarted(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A run began: its graph is valid, retained constraints are applied, no task has started.

    ``name``: the run's name (``Engine.run(name=...)``, by default its target's task name);
    ``origin``: where it came from (a served workflow and its params, the run it reruns and
    the first of that line), or ``None``. ``graph``: its tasks and their dependencies as the
    wire carries them (:class:`~cascade.interfaces.graphs.RunGraph`), ``None`` for a run of more
    than :data:`~cascade.interfaces.wire.MAX_GRAPH_NODES` tasks or whose graph encodes in
    more than :data:`~cascade.interfaces.wire.MAX_GRAPH_BYTES`.
    """

    run_id: str
    task_count: int
    name: str | None = None
    origin: RunOrigin | None = None
    graph: RunGraph | None = None
    ts: float = msgspec.field(default_factory=time.time)


class RunFinished(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A run ended. ``status`` is ``Succeeded``, ``Failed`` or ``Cancelled``.

    ``error`` is ``"ExcType: message"`` of what ended the run, ``""`` on success.
    ``log_lines``: the lines its tasks logged, where its engine forwards their logs (``None``
    where it does not).
    """

    run_id: str
    status: Literal["Succeeded", "Failed", "Cancelled"]
    error: str = ""
    ts: float = msgspec.field(default_factory=time.time)
    log_lines: int | None = None


class ResourceAcquired(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A run's resource (:func:`~cascade.runtime.resource`) was set up: its generator gave its
    value, on the first task of the run that injects it. Not published: the engine's own
    handlers see it (``engine.events``), the wire and the views do not."""

    run_id: str
    resource_name: str
    ts: float = msgspec.field(default_factory=time.time)


class ResourceReleased(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A run's resource was torn down at the run's end: its generator finished cleanly (a
    teardown that raises is logged and counted instead). Not published, as
    :class:`ResourceAcquired`."""

    run_id: str
    resource_name: str
    ts: float = msgspec.field(default_factory=time.time)


class TaskEvent(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """Base of the task events; ``state`` is the docs/protocol.md state name of each subclass.

    ``duration_ms`` is the time since the task first started (for
    ``TaskRetrying``: the failed attempt's time); ``error`` is
    ``"ExcType: message"`` or ``""``; ``attempt`` counts from 1. ``decided``: on the event a
    decision on a held task leads to (:class:`TaskHeld`), that decision, else ``None``.
    """

    state: ClassVar[
        Literal["RUNNING", "COMPLETED", "FAILED", "SKIPPED", "BLOCKED", "RETRYING", "CANCELLED"]
    ]
    run_id: str
    task_id: str
    task_name: str
    duration_ms: float = 0.0
    error: str = ""
    attempt: int = 1
    ts: float = msgspec.field(default_factory=time.time)
    decided: Decided | None = None


class TaskRunning(TaskEvent, frozen=True):
    """An attempt of a task started (each attempt emits one; ``attempt`` says which)."""

    state: ClassVar[Literal["RUNNING"]] = "RUNNING"


class TaskMapped(TaskRunning, frozen=True):
    """A mapped task (:meth:`Task.map <cascade.runtime.Task.map>`) made its ``items`` tasks,
    ``<task_id>[0]`` on: it runs until they have ended, then completes with their results
    (or is skipped, when one of them did not complete)."""

    items: int = 0


class TaskCompleted(TaskEvent, frozen=True):
    """A task returned. ``reused_from``: a rerun took its result, stored by the run named,
    instead of running it (it did not run: no ``TaskRunning`` before, ``duration_ms`` 0).
    ``cached``: its result came from its cache instead (a :class:`TaskCached`).
    ``not_kept``: why an engine that keeps results did not keep this one."""

    state: ClassVar[Literal["COMPLETED"]] = "COMPLETED"
    # a class attribute, not a field: a field more costs every task's event its setting
    cached: ClassVar[bool] = False
    reused_from: str | None = None
    not_kept: str | None = None


class TaskCached(TaskCompleted, frozen=True):
    """A task's cache (``with_cache``) gave its result instead of running it (no
    ``TaskRunning`` before; ``duration_ms`` the lookup's): from the results store, kept by
    the run ``reused_from`` names, or from its cache policy (``reused_from`` ``None``).
    A :class:`TaskCompleted` whose ``cached`` is true."""

    cached: ClassVar[bool] = True


class TaskFailed(TaskEvent, frozen=True, gc=True):
    """A task raised on its last attempt; ``exception`` is what it raised."""

    state: ClassVar[Literal["FAILED"]] = "FAILED"
    exception: BaseException | None = None


class TaskSkipped(TaskEvent, frozen=True):
    """A task will not run because a task it depends on failed or was skipped (``error`` names
    that task), or a decision skipped it while it was held (``decided`` says whose)."""

    state: ClassVar[Literal["SKIPPED"]] = "SKIPPED"


class TaskCancelled(TaskEvent, frozen=True):
    """The run stopped before the task ended: its last state, as every task has one.

    Emitted for each task of a run that a cancel (or the run's own failure, or the
    program awaiting the run) stopped: a coroutine task cancelled while it ran, a
    plain-function task abandoned in its thread (which runs on, its result discarded),
    and every task that had not started or was waiting for its next attempt.
    ``duration_ms`` is the time since it first started (0 if it never did); ``error``
    says what stopped the run. Published as ``FAILED`` with ``cancelled: true``.
    """

    state: ClassVar[Literal["CANCELLED"]] = "CANCELLED"


class TaskRetrying(TaskEvent, frozen=True, gc=True):
    """An attempt of a task failed and it will be tried again (``attempt`` is the failed one).

    Until its next attempt starts the task is not running: after the retry
    delay, that attempt is admitted like a first start (a rate-limit token,
    no pause in force, room under the concurrency limits and
    ``max_concurrency``), so it may be BLOCKED before its RUNNING. ``exception`` is what
    the failed attempt raised.
    """

    state: ClassVar[Literal["RETRYING"]] = "RETRYING"
    exception: BaseException | None = None


class TaskBlocked(TaskEvent, frozen=True):
    """A ready task the engine would start now is held back by a constraint.

    Emitted at most once per attempt that is held back, before that
    attempt's RUNNING; ``attempt`` is the one held back (above 1 for a retry,
    which constraints admit like a first start). "Would start now"
    means it is among the ready tasks that the engine's free slots
    (``max_concurrency`` minus running tasks) would take, so a pause over a
    backlog of thousands of tasks emits a handful of events, not thousands.

    ``held_by`` names what holds it back when it blocked (at most
    :data:`~cascade.interfaces.wire.MAX_HOLDS` :class:`~cascade.interfaces.Hold`): the
    constraints, with their scope, type and reason; the concurrency slots and the
    tasks that hold them; the rate limit and when its next start is due. It is
    computed only when a task blocks. Its subclass :class:`TaskHeld` is a failed task
    held for a decision.
    """

    state: ClassVar[Literal["BLOCKED"]] = "BLOCKED"
    held_by: tuple[Hold, ...] = ()


class TaskHeld(TaskBlocked, frozen=True, gc=True):
    """A task failed on its last automatic attempt under ``on_failure="hold"``: held for a
    decision (:meth:`Engine.decide <cascade.runtime.Engine.decide>`), its dependents waiting.

    A ``BLOCKED`` event, as it is published: ``held_by`` is its one
    :class:`~cascade.interfaces.Hold` of type ``decision`` (the failed ``attempt``, the
    ``deadline`` and the ``default`` taken then); ``error`` and ``exception`` are the failed
    attempt's, ``duration_ms`` the time since the task first started. The event a decision
    leads to carries it in ``decided``: the retry's ``TaskRunning``, or the ``TaskCompleted``,
    ``TaskSkipped`` or ``TaskFailed`` that ends the task.
    """

    exception: BaseException | None = None


class TaskQueued(TaskBlocked, frozen=True):
    """A plain-function task's attempt was handed to its executor, whose workers are all
    busy: it waits for one, and its ``TaskRunning`` comes when a worker starts it (its
    ``duration_ms`` counted from then).

    A ``BLOCKED`` event, as it is published: ``held_by`` is its one
    :class:`~cascade.interfaces.Hold` of type ``queued`` (the ``executor``, ``threads`` or
    ``processes``, and its ``workers``), which readers that know it show ``QUEUED``. An
    attempt handed over while a worker is free has none: it starts at once. Said at the
    run's next look at its waiting attempts (every 10 ms while some wait), stamped when it
    was handed over: an attempt that a worker started before has none either.
    """


Event: TypeAlias = RunStarted | RunFinished | TaskEvent | ResourceAcquired | ResourceReleased
"""Any event of a run: a type at run time too (``isinstance(event, Event)``, and
``events.subscribe(Event, handler)`` as the original's bus takes it)."""
EventHandler: TypeAlias = Callable[[Event], None]
WireEvent: TypeAlias = RunStarted | RunFinished | TaskEvent
"""The events the telemetry publishes: all but the resource events."""


class EventBus:
    """Delivers each event synchronously to every handler, in the order they subscribed.

    Handlers must be quick and must not block: they run on the engine's
    hot path. A handler that raises is logged (rate-limited) and isolated:
    it never breaks the run or the other handlers.
    """

    def __init__(self) -> None:
        self._handlers: list[Callable[[Any], None]] = []
        self._aside: list[Callable[[Any], None]] = []  # those that take the resource events too
        self._log = RateLimitedLogger(_log)
        self.handler_errors = 0

    @overload
    def subscribe(
        self, handler: Callable[[WireEvent], None], *, resources: Literal[False]
    ) -> Callable[[], None]: ...

    @overload
    def subscribe(self, handler: EventHandler, *, resources: bool = True) -> Callable[[], None]: ...

    @overload
    def subscribe(
        self, event_type: Any, handler: Callable[[Any], None], /, *, resources: bool = True
    ) -> Callable[[], None]: ...

    def subscribe(
        self,
        handler: Any,
        only: Callable[[Any], None] | None = None,
        *,
        resources: bool = True,
    ) -> Callable[[], None]:
        """Call ``handler`` with every event from now on; returns a function that stops it.
        ``resources=False``: not with :class:`ResourceAcquired` and :class:`ResourceReleased`
        (the telemetry's way: they stay off the wire).

        ``subscribe(EventType, handler)``, the original Cascade bus's form: ``handler`` gets
        only the events that are instances of ``EventType`` (a class, or a union such as
        :data:`Event`, which gets them all)."""
        if only is not None:
            handler = _of_type(handler, only)
        self._handlers.append(handler)
        if resources:
            self._aside.append(handler)

        def unsubscribe() -> None:
            for handlers in (self._handlers, self._aside):
                if handler in handlers:
                    handlers.remove(handler)

        return unsubscribe

    def emit(self, event: Event) -> None:
        """Deliver ``event`` to every handler."""
        for handler in self._handlers:  # inline: every task's events come this way
            try:
                handler(event)
            except Exception:
                self._failed(handler)

    def emit_aside(self, event: ResourceAcquired | ResourceReleased) -> None:
        """Deliver a resource event to the handlers that take those (not the telemetry)."""
        for handler in self._aside:
            try:
                handler(event)
            except Exception:
                self._failed(handler)

    def _failed(self, handler: Callable[[Any], None]) -> None:
        """A handler raised (in an ``except`` block: its exception logged with it)."""
        self.handler_errors += 1
        self._log.log(
            logging.ERROR,
            f"handler:{handler!r}",
            "event handler %r raised",
            handler,
            exc_info=True,
        )


def _of_type(event_type: Any, handler: Callable[[Any], None]) -> Callable[[Any], None]:
    """``handler``, called only with the events that are instances of ``event_type``."""
    if not isinstance(event_type, (type, types.UnionType)):
        raise TypeError(f"subscribe(EventType, handler): {event_type!r} is no event type")

    def of_type(event: Any) -> None:
        if isinstance(event, event_type):
            handler(event)

    return of_type
