"""``cs.recv``: a task that waits for a message on a topic of its run's org and project.

What a task reaches of its engine's connector is this alone: :class:`RunSignals`, the value
of a resource the engine adds to a run whose tasks inject it (the Cascade engine injected
its connector the same way), which subscribes under
``{prefix}/signal/{org}/{project}/{topic}`` and nowhere else: the run's org and project
are levels a broker ACL binds, as in every other topic of a run. A run that does not use
``recv`` gets nothing added.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

from cascade.connector_kit import RateLimitedLogger
from cascade.interfaces import Connector, Message, encode_level
from cascade.interfaces.wire import MAX_SIGNAL_PAYLOAD_BYTES

from ._errors import CascadeRuntimeError
from .workflow._resource import Resource, ResourceMissing, inject, resource
from .workflow._task import Task, task

__all__ = ["SIGNALS", "RecvProvider", "RecvTimeout", "RunSignals", "signal_topic", "signals"]

SIGNALS = "cascade.signals"
"""The name of the resource :func:`signals` makes (what ``recv`` injects)."""
_SIGNALS = inject(SIGNALS)
_log = RateLimitedLogger(logging.getLogger("cascade.runtime.recv"))


class RecvTimeout(CascadeRuntimeError, TimeoutError):
    """``cs.recv(topic, timeout=...)`` got no message in time: ``topic`` (the broker's)."""

    def __init__(self, topic: str, timeout: float) -> None:
        super().__init__(f"no message on {topic!r} in {timeout:g} s")
        self.topic = topic
        self.timeout = timeout

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.topic, self.timeout))


def signal_topic(org_id: str, project_id: str, topic: str, prefix: str = "cascade") -> str:
    """``{prefix}/signal/{org}/{project}/{topic}``: org and project encoded as in every
    topic; ``topic`` is the user's (its levels and wildcards kept, as the prefix's are)."""
    if not isinstance(topic, str) or not topic or topic.startswith("/"):
        raise ValueError(f"a signal's topic is a non-empty str not starting with '/': {topic!r}")
    levels = (prefix, "signal", encode_level(org_id), encode_level(project_id), topic)
    return "/".join(levels)  # the connector's subscribe checks it as a filter


class RunSignals:
    """What one run's tasks receive through the engine's connector; ``stats``: the engine's
    (``signals_rejected`` counts the messages over :data:`MAX_SIGNAL_PAYLOAD_BYTES`)."""

    def __init__(
        self, connector: Connector, org_id: str, project_id: str, prefix: str, stats: Any = None
    ) -> None:
        self._connector = connector
        self._org = org_id
        self._project = project_id
        self._prefix = prefix
        self._stats = stats

    def topic(self, topic: str) -> str:
        """The broker's topic (filter) for the run's ``topic``."""
        return signal_topic(self._org, self._project, topic, self._prefix)

    async def receive(self, topic: str, timeout: float | None = None) -> dict[str, Any]:
        """The payload of the first message on ``topic`` (a retained one, if there is one)
        from the moment the subscription is made; :class:`RecvTimeout` after ``timeout``."""
        full = self.topic(topic)
        got: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()

        def take(message: Message) -> None:
            if len(message.raw) > MAX_SIGNAL_PAYLOAD_BYTES:  # as every other kind is bounded
                if self._stats is not None:
                    self._stats.signals_rejected += 1
                _log.warning(
                    "oversized-signal",
                    "cs.recv did not take a signal of %d bytes on %r: at most %d are taken",
                    len(message.raw),
                    full,
                    MAX_SIGNAL_PAYLOAD_BYTES,
                )
                return
            if not got.done():
                got.set_result(message.payload)

        handle = await self._connector.subscribe(full, take)
        try:
            if timeout is None:
                return await got
            try:
                return await asyncio.wait_for(got, timeout)
            except asyncio.TimeoutError:
                raise RecvTimeout(full, timeout) from None
        finally:
            await handle.unsubscribe()


def signals(
    connector: Connector | None, org_id: str, project_id: str, prefix: str, stats: Any = None
) -> Resource:
    """The resource :data:`SIGNALS` of a run: its :class:`RunSignals`, or ``None`` for an
    engine without a connector (``recv`` then says so)."""

    async def run_signals() -> AsyncIterator[RunSignals | None]:
        if connector is None:
            yield None
        else:
            yield RunSignals(connector, org_id, project_id, prefix, stats)

    return resource(name=SIGNALS)(run_signals)


async def _recv(topic: str, timeout: float | None = None, signals: Any = _SIGNALS) -> Any:
    """Wait for a message on the run's ``topic`` (``{prefix}/signal/{org}/{project}/{topic}``):
    its payload, a dict (``{}`` for an empty one); :class:`RecvTimeout` after ``timeout``
    seconds (``None``: as long as it takes)."""
    if signals is None:
        raise ResourceMissing(
            f"cs.recv({topic!r}) waits on the broker: it needs an engine with a connector "
            "(Engine(connector=...))"
        )
    received: dict[str, Any] = await signals.receive(topic, timeout)
    return received


class RecvProvider:
    """``cs.recv(topic, timeout=None)``: the task ``recv``."""

    name = "recv"
    _made: Task[Any, Any] | None = None

    def create_factory(self) -> Task[Any, Any]:
        if RecvProvider._made is None:
            RecvProvider._made = task(name="recv")(_recv)
        return RecvProvider._made
