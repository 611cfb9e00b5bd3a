"""What `status`, `watch` and the dashboard subscribe to, on every kind of broker.

On a broker that sends retained messages only to subscriptions of their exact
topic, the wildcard subscriptions bring no retained constraint or status: the
connector reads the retained constraints exactly through the constraints index
(``Connector.subscribe_constraints``), and asks the online sources to announce
themselves again (a roll call, ``Connector.call_roll``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cascade.interfaces import (
    Connector,
    Message,
    SubscriptionHandle,
    encode_level,
    status_filter,
    telemetry_filter,
)
from cascade.interfaces.logs import logs_filter
from cascade.interfaces.summaries import placed_summary_filter, summary_filter

__all__ = ["ROLLCALL_WAIT", "Place", "subscribe_statuses", "subscribe_summaries"]


@dataclass(frozen=True)
class Place:
    """The org (and project) a reader reads within; ``None``: every one.

    A broker ACL binds a login's reads to the orgs and projects of its grants, and RabbitMQ
    closes the connection of a subscription it denies: a login over less than ``global``
    subscribes within its place, which the filters here keep to (telemetry, logs and the
    summaries per org and project; an engine's own summary, every org's, only everywhere).
    """

    org: str | None = None
    project: str | None = None

    @property
    def everywhere(self) -> bool:
        """Whether it names no org nor project: every one."""
        return self.org is None and self.project is None

    def telemetry(self, prefix: str, run_id: str | None = None, kind: str | None = None) -> str:
        """The filter over the telemetry of its runs (of ``run_id`` only, if given)."""
        if run_id is None and kind is None and self.org is not None:
            return "/".join((prefix, "telemetry", *self._levels(), "#"))
        return telemetry_filter(self.org, self.project, run_id, kind, prefix)

    def logs(self, prefix: str, run_id: str | None = None) -> str:
        """The filter over the log lines of its runs (of ``run_id`` only, if given)."""
        if run_id is None and self.org is not None:
            return "/".join((prefix, "logs", *self._levels(), "#"))
        return logs_filter(self.org, self.project, run_id, prefix)

    def summaries(self, prefix: str) -> str:
        """The filter over the engines' summaries per org and project, of its runs."""
        if self.everywhere:
            return placed_summary_filter(prefix)
        org, project = (encode_level(v) if v is not None else "+" for v in (self.org, self.project))
        return f"{prefix}/summary/{org}/{project}/+"

    def _levels(self) -> tuple[str, ...]:
        # an org's runs as an ACL grants them, `telemetry/acme/#`, not `telemetry/acme/+/#`
        levels = [encode_level(self.org or "")]
        if self.project is not None:
            levels.append(encode_level(self.project))
        return tuple(levels)


EVERYWHERE = Place()

ROLLCALL_WAIT = 1.0
"""Seconds `cascade status` gives the sources to answer a roll call (at most ``--timeout``):
nothing says that all have answered."""


async def subscribe_statuses(
    connector: Connector,
    callback: Callable[[Message], None],
    *,
    summaries: bool = True,
    place: Place = EVERYWHERE,
) -> bool:
    """Subscribe ``callback`` to every source's status (and, with ``summaries``, the engines'
    summaries of ``place``: :func:`subscribe_summaries`); where the broker sends it no
    retained status, call the roll call (the answers come to ``callback``: engines answer
    with both) and return ``True``."""
    prefix = connector.topic_prefix
    await connector.subscribe(status_filter(prefix), callback)
    if summaries:
        await subscribe_summaries(connector, callback, place)
    return await connector.call_roll()


async def subscribe_summaries(
    connector: Connector, callback: Callable[[Message], None], place: Place = EVERYWHERE
) -> tuple[SubscriptionHandle, ...]:
    """Subscribe ``callback`` to the engines' summaries: per org and project (of ``place``,
    ``{prefix}/summary/+/+/+`` everywhere, where the runs they list are vouched for), then,
    everywhere only, their own (``{prefix}/summary/+``, every org's figures), so that
    retained ones come in that order."""
    prefix = connector.topic_prefix
    placed = await connector.subscribe(place.summaries(prefix), callback)
    if not place.everywhere:
        return (placed,)
    return placed, await connector.subscribe(summary_filter(prefix), callback)
