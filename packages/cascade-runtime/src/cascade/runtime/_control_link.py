"""A run's link to the broker: connect and subscribe to constraints, waiting a bounded time."""

from __future__ import annotations

import asyncio
import fnmatch
import logging
import weakref
from collections.abc import Awaitable, Callable, Collection

from cascade.interfaces import (
    Connector,
    SubscriptionHandle,
    SyncPhase,
    TopicKey,
    subscribe_constraints,
)

from ._constraints import ConstraintManager
from ._steps import StepFailed, explain, within

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

# Connectors whose broker's missing capabilities were reported: once per connector, not per run.
_reported: weakref.WeakSet[Connector] = weakref.WeakSet()


class ControlLink:
    """Connects ``connector`` (when ``manage``) and subscribes ``manager`` to the constraints.

    :meth:`open` waits at most ``wait`` seconds for both; what is still under way
    then goes on in the background (the connector keeps connecting, and the
    subscription is made when the connection is), so the constraints the broker
    retains apply from the moment they arrive. :meth:`close` stops what is left.
    ``then`` (the run's cancel subscription) is made beside the constraints' (its
    SUBSCRIBE right behind theirs, so it costs the run's start no extra round trip);
    :meth:`open` does not wait for it.

    The subscription is :func:`~cascade.interfaces.subscribe_constraints`'s: on a broker
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
        self._ready = asyncio.Event()
        self._manager = manager
        self._manage = manage
        self._wait = wait
        self._task: asyncio.Task[None] | None = None
        self.subscription: SubscriptionHandle | None = None

    async def open(self) -> None:
        """Start connecting and subscribing; return when done, or after ``wait`` seconds."""
        self._task = asyncio.create_task(self._establish())
        ready = asyncio.create_task(self._ready.wait())
        try:
            done, _ = await asyncio.wait(
                {self._task, ready}, timeout=max(self._wait, 0.0), return_when="FIRST_COMPLETED"
            )
        finally:
            ready.cancel()
        if not done:
            _log.warning(
                "no answer from the broker within %g s (connect_wait): the run starts without "
                "the retained constraints, which apply when the connection is made",
                self._wait,
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
                subscribe_constraints(
                    connector,
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
            self._ready.set()
            if then is not None:
                step = "subscribe to the run's commands"
                await then
        except Exception as exc:
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
        if (
            phase == "end"
            and connector.capabilities.retained_to_wildcards is False
            and connector not in _reported
        ):
            _reported.add(connector)
            _log.warning("%s", NO_RETAINED_TO_WILDCARDS.format(prefix=connector.topic_prefix))
        self._manager.sync(phase)

    def _governs_a_task(self, key: TopicKey) -> bool:
        """Whether a constraint on ``key``'s scope can hold one of the run's tasks back (the
        index's other topics are not read: they cannot change this run)."""
        names = self._task_names
        if names is None or key.scope == "global":
            return True
        glob = key.scope.partition(":")[2]
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


def _read_failed(exc: Exception) -> None:
    _log.warning("could not read the retained constraints exactly: %s", explain(exc))
