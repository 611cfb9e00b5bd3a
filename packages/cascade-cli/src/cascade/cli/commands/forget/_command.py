"""`cascade forget`: clear the retained statuses of engines that are gone."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer

from cascade.control import publish_confirmed
from cascade.interfaces import status_topic
from cascade.interfaces.summaries import summary_topic
from cascade.reader import SHOWN, inert

from ...plumbing._broker import DEFAULT_BROKER, BrokerOptions, broker_options
from ...plumbing._context import CliContext, fail
from ...plumbing._view_options import parse_age
from ._forget import placed_topics, retained_statuses, stale_statuses

__all__ = ["forget"]


@broker_options
def forget(
    ctx: typer.Context,
    source: Annotated[
        str | None, typer.Argument(help="The source whose retained status to clear.")
    ] = None,
    offline_older_than: Annotated[
        str | None,
        typer.Option(
            "--offline-older-than",
            metavar="AGE",
            help="Clear every offline status stamped more than AGE ago (90s, 15m, 2h, 7d); "
            "statuses without a time count as old.",
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Clear SOURCE's status even if it is online.")
    ] = False,
    broker: BrokerOptions = DEFAULT_BROKER,
) -> None:
    """Clear one engine's retained status, or old offline ones'.

    Clear retained engine statuses (and summaries): one SOURCE's, or every offline one
    older than an age.

    An engine that is still running announces itself again when it reconnects.
    Examples: cascade forget host-4242; cascade forget --offline-older-than 1d
    """
    if (source is None) == (offline_older_than is None):
        raise typer.BadParameter("give either a SOURCE or --offline-older-than AGE")
    age = parse_age(offline_older_than) if offline_older_than is not None else None

    async def clear(connector: Any) -> list[str]:
        retained = await retained_statuses(connector)
        if age is not None:
            doomed = stale_statuses(retained, age, time.time())
        else:
            assert source is not None
            topic = status_topic(source, connector.topic_prefix)
            doomed = [s for s in retained if s.topic == topic]
            if not doomed:
                raise fail(f"no status retained for {source!r}")
            status = doomed[0].status
            if status is not None and status.status == "online" and not force:
                raise fail(f"{source!r} is online; --force clears its status anyway")
        prefix = connector.topic_prefix
        clears: list[tuple[str, bytes]] = []
        for s in doomed:  # its runs' summaries per org and project, then its own, its status
            placed = await placed_topics(connector, s.source)
            clears += [(t, b"") for t in (*placed, summary_topic(s.source, prefix), s.topic)]
        await publish_confirmed(connector, clears, broker.timeout)
        return [s.source for s in doomed]

    forgotten = CliContext.of(ctx).run(broker, clear)
    if forgotten:
        shown = (inert(source, SHOWN["source"]) for source in forgotten)  # topic levels: anyone's
        typer.echo(f"forgot {len(forgotten)}: " + ", ".join(shown))
    else:
        typer.echo("nothing to forget")
