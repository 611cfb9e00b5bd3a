"""What a command cannot see: a subscription the broker refused ends it (exit 1), saying so.

A broker ACL may deny a login a filter: mosquitto under MQTT 5 and NATS answer the SUBSCRIBE
with a refusal (``subscriptions_refused``), RabbitMQ closes the connection
(``subscriptions_cut``, then ``subscriptions_given_up``). A reader that went on would answer
"nothing" where it could not look: :class:`SightedConnector` checks the connector's counters
after each subscription of the command, and :func:`check_sight` once its work is done.

A SUBSCRIBE whose connection went before the broker answered it is not a refusal by itself: a
node that restarts, or a failover, cuts it too, and the connector makes it again on the next
connection. RabbitMQ cuts a denied one on every connection until the connector gives it up. So
a cut alone is a refusal only if the subscription is not made on a later connection within the
command's ``--timeout``.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from ._fail import fail

__all__ = ["SightedConnector", "check_sight", "refusals"]

_COUNTERS = ("subscriptions_refused", "subscriptions_cut", "subscriptions_given_up")

HOW = (
    "a login over less than global reads within its orgs and projects: give --org ORG or "
    "--project ORG/PROJECT (or $CASCADE_ORG) within its grants (docs/teams.md)"
)


def refusals(connector: Any) -> tuple[int, ...]:
    """The connector's counts of refused, cut and given-up subscriptions (0 for a connector
    that keeps none)."""
    stats = connector.stats
    return tuple(int(getattr(stats, name, 0)) for name in _COUNTERS)


def _said(before: tuple[int, ...], after: tuple[int, ...], what: str) -> str | None:
    refused, cut, given_up = (a - b for a, b in zip(after, before, strict=True))
    if not (refused or cut or given_up):
        return None
    said = (
        f"the broker refused {what}"
        if refused
        else f"the broker did not answer {what} (RabbitMQ closes the connection of a "
        "subscription its ACL denies)"
    )
    return f"{said}, so this command cannot see what it was asked about: {HOW}"


def check_sight(connector: Any, before: tuple[int, ...]) -> None:
    """Exit 1 if a subscription was refused or given up since ``before`` (:func:`refusals`;
    the cuts were looked at as they came: :meth:`SightedConnector.subscribe`)."""
    refused, _, given_up = refusals(connector)
    said = _said(before, (refused, before[1], given_up), "a subscription of this command")
    if said is not None:
        raise fail(said)


class SightedConnector:
    """``connector`` as a command uses it, whose :meth:`subscribe` ends the command (exit 1)
    when the broker refuses the subscription, naming its filter (a cut one: unless it is made
    on a later connection within ``timeout`` seconds); everything else is the connector's."""

    def __init__(self, connector: Any, timeout: float = 5.0) -> None:
        self._connector = connector
        self.timeout = timeout
        self.before = refusals(connector)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connector, name)

    async def subscribe(self, topic_filter: str, callback: Any, **options: Any) -> Any:
        """The connector's ``subscribe``; exit 1 if the broker refused ``topic_filter``."""
        before = refusals(self._connector)
        made = asyncio.Event()
        theirs = options.pop("on_sync", None)

        def on_sync(stage: str) -> None:
            if stage == "end":  # its marker came back: subscribed on this connection
                made.set()
            if theirs is not None:
                theirs(stage)

        handle = await self._connector.subscribe(topic_filter, callback, on_sync=on_sync, **options)
        after = refusals(self._connector)
        refused, cut, given_up = (a - b for a, b in zip(after, before, strict=True))
        if cut and not (refused or given_up):  # a node gone, or a denial: the next says
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(made.wait(), self.timeout)
            after = refusals(self._connector)
            if made.is_set() and after[0] == before[0] and after[2] == before[2]:
                return handle  # made again (a given-up filter's snapshot ends too: not made)
        said = _said(before, after, f"the subscription to {topic_filter}")
        if said is not None:
            raise fail(said)
        return handle
