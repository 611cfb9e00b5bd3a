"""A run's link to the broker: connect and subscribe to constraints, waiting a bounded time."""

from __future__ import annotations

import asyncio
import fnmatch
import logging
import weakref
from collections.abc import Awaitable, Callable, Collection
from typing import Any

from cascade.interfaces import (
    Connector,
    ConstraintsSubscription,
    SyncPhase,
    TopicKey,
)
from cascade.interfaces.wire import split_scope

from .._steps import StepFailed, explain, within
from ..constraints._constraints import ConstraintManager

__all__ = ["DEFAULT_CONNECT_WAIT", "ControlLink"]

_log = logging.getLogger("cascade.runtime.engine")

#: Seconds a run waits, before its first task, for the broker connection and the
#: retained constraints; equal to the ConstraintManager's ``sync_hold`` default.
DEFAULT_CONNECT_WAIT = 5.0

NO_RETAINED_TO_WILDCARDS = (
    "this broker does not deliver retained messages to wildcard subscriptions (RabbitMQ's MQTT "
    "plugin, for one): the constraints set before this engine started are read through the "
    "index that Cascade's CLI and dashboard keep ({prefix}/index/constraints/0 to /15, and the "
    "record of earlier versions, {prefix}/index/constraints) and the global "
    "scope's topics; others that were retained without it (by other tools) will not apply, only "
    "those published while it runs (see the Brokers page of the docs)"
)

# Connectors whose constraints come through the index, said so: once per connector, not per run.
_reported: weakref.WeakSet[Connector] = weakref.WeakSet()


class ControlLink:
    """Connects ``connector`` (when ``manage``) and subscribes ``manager`` to the constraints.

    :meth:`open` waits at most ``wait`` seconds for both, and for the constraints'
    retained snapshot to end (the subscription's ``on_sync("end")``: a subscription the
    broker refused ends it only once a later SUBSCRIBE is granted); not at all once the
    connector's first attempt failed (a broker that is down costs the run nothing). What is
    still under way then goes on in the background (the connector keeps connecting, and subscribing
    again), so the constraints the broker retains apply from the moment they arrive;
    :meth:`open` says so in one warning naming the broker and why, and
    :attr:`constraints_known` is ``False`` (the engine counts it). :meth:`close` stops
    what is left.
    ``then`` (the run's cancel subscription) is made beside the constraints' (its
    SUBSCRIBE right behind theirs, so it costs the run's start no extra round trip);
    :meth:`open` does not wait for it.

    The subscription is :meth:`~cascade.interfaces.Connector.subscribe_constraints`'s: on a broker
    that sends retained messages only to exact subscriptions, each snapshot is read
    through the constraints index (with ``task_names``, only the topics of scopes that
    govern one of them) before the manager is told it ended.
    """

    def __init__(
        self,
        connector: Connector,
        manager: ConstraintManager,
        *,
        topic_prefix: str,
        manage: bool,
        wait: float,
        then: Callable[[], Awaitable[object]] | None = None,
        task_names: Collection[str] | None = None,
    ) -> None:
        self._connector = connector
        self._task_names = None if task_names is None else frozenset(task_names)
        self._then = then
        self._known = asyncio.Event()  # the constraints' snapshot ended once
        self._failed = False
        self._late_since: float | None = None  # when open() gave up waiting for them
        self.constraints_known = False
        """Whether the retained constraints were known when :meth:`open` returned."""
        self._manager = manager
        self._manage = manage
        self._wait = wait
        self._task: asyncio.Task[None] | None = None
        self.subscription: ConstraintsSubscription | None = None

    async def open(self) -> None:
        """Start connecting and subscribing; return once the retained constraints are
        known, or after ``wait`` seconds (then warn once, naming the broker and why)."""
        connector = self._connector
        refused_before = _refusals(connector)
        task = self._task = asyncio.create_task(self._establish())
        known = asyncio.create_task(self._known.wait())
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(self._wait, 0.0)
        pending: set[asyncio.Future[Any]] = {task, known}
        try:
            while pending and not self._known.is_set():
                done, _ = await asyncio.wait(
                    pending, timeout=max(0.0, deadline - loop.time()), return_when="FIRST_COMPLETED"
                )
                if not done or self._failed:  # out of time, or warned already (no connector)
                    break
                if not connector.is_connected:
                    break  # a broker that is down costs the run nothing: said below
                pending -= done  # subscribed: its snapshot may still be missing (refused)
        finally:
            known.cancel()
        self.constraints_known = self._known.is_set()
        if self.constraints_known or self._failed:
            return
        self._late_since = loop.time()
        self._manager.release_hold()  # this warning says what the hold's expiry would
        _log.warning(
            "the retained constraints are not known within %g s (connect_wait): %s (broker %s); "
            "the run starts under the constraints known so far, and applies them the moment "
            "they arrive",
            self._wait,
            _why(connector, refused_before, subscribed=task.done()),
            _broker(connector),
        )

    async def _establish(self) -> None:
        step = "connect"
        then: asyncio.Future[object] | None = None
        try:
            if self._manage:
                await self._connector.connect()
            step = "subscribe to the constraints"
            connector = self._connector
            subscribing = asyncio.ensure_future(
                connector.subscribe_constraints(
                    self._manager.handle_message,
                    on_sync=self._synced,
                    wanted=self._governs_a_task,
                    on_read_error=_read_failed,
                )
            )
            if self._then is not None:
                # Sent right behind the constraints' SUBSCRIBE, before the marker that ends
                # their snapshot: in place at the broker before the first task starts, at
                # no extra round trip.
                then = asyncio.ensure_future(self._then())
            self.subscription = await subscribing  # its snapshot's exact reads included
            self._say_indexed()
            if then is not None:
                step = "subscribe to the run's commands"
                await then
        except Exception as exc:
            self._failed = True
            _log.warning(
                "connector unavailable, running without control: %s failed: %s", step, explain(exc)
            )
        finally:
            if then is not None and not then.done():
                then.cancel()
                await asyncio.gather(then, return_exceptions=True)

    def _synced(self, phase: SyncPhase) -> None:
        """The subscription's ``on_sync``: the manager's (its end after the exact reads where
        the broker needs them, which is said once per connector)."""
        connector = self._connector
        if phase == "end":
            self._say_indexed()
        self._manager.sync(phase)
        if phase == "end" and not self._known.is_set():
            self._known.set()
            if self._late_since is not None:
                _log.info(
                    "the retained constraints arrived %.1f s after the run started without "
                    "them (broker %s); applied",
                    asyncio.get_running_loop().time() - self._late_since,
                    _broker(connector),
                )

    def _say_indexed(self) -> None:
        """Where the constraints come through the index, say once per connector what that
        misses (once subscribed: the first snapshot's end comes before)."""
        connector, subscription = self._connector, self.subscription
        if subscription is not None and subscription.indexed and connector not in _reported:
            _reported.add(connector)
            _log.warning("%s", NO_RETAINED_TO_WILDCARDS.format(prefix=connector.topic_prefix))

    def _governs_a_task(self, key: TopicKey) -> bool:
        """Whether a constraint on ``key``'s scope can hold one of the run's tasks back (the
        index's other topics are not read: they cannot change this run)."""
        names = self._task_names
        if not self._manager.governs_here(key.scope):
            return False  # placed in another org or project
        target = split_scope(key.scope).target
        if target == "global":
            return True
        kind, _, glob = target.partition(":")
        if kind != "task":
            return False  # a schedule's pause holds no task back
        if names is None:
            return True
        return any(fnmatch.fnmatchcase(name, glob) for name in names)

    async def close(self, timeout: float) -> None:
        """Stop connecting or subscribing if still under way, then unsubscribe; bounded."""
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=timeout)
        if self.subscription is not None:
            try:
                async with within("unsubscribe from the constraints", timeout, "shutdown_timeout"):
                    await self.subscription.unsubscribe()
            except StepFailed as exc:
                _log.warning("%s", exc)


def _refusals(connector: Connector) -> int:
    """The subscriptions the connector's broker refused so far (MQTT's SUBACK 0x80), if it
    counts them."""
    count = getattr(connector.stats, "subscriptions_refused", 0)
    return count if isinstance(count, int) else 0


def _broker(connector: Connector) -> str:
    """The broker's node(s) as the connector names them, for messages."""
    hosts = getattr(connector, "hosts", None)
    if isinstance(hosts, tuple | list) and hosts:
        return ",".join(str(host) for host in hosts)
    return repr(connector)


def _why(connector: Connector, refused_before: int, *, subscribed: bool) -> str:
    """Why the constraints' snapshot has not ended yet, as far as the connector tells."""
    if not connector.is_connected:
        return "not connected to the broker yet (still trying)"
    if _refusals(connector) > refused_before:
        return (
            "the broker refused the constraints subscription (SUBACK 0x80; subscribing again "
            "with backoff)"
        )
    if not subscribed:
        return "the broker has not answered the constraints subscription"
    return "the broker has not sent the end of the retained constraints"


def _read_failed(exc: Exception) -> None:
    _log.warning("could not read the retained constraints exactly: %s", explain(exc))
