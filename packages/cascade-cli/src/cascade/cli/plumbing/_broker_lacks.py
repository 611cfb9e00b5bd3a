"""What the views cannot show on a broker that lacks a capability, said once on stderr."""

from __future__ import annotations

import typer

__all__ = ["STATUS_LACKS", "WATCH_LACKS", "say_what_the_broker_lacks"]

# What status and watch cannot show where the broker sends retained messages to exact
# subscriptions only: the online engines answer a roll call, the indexed constraints are read.
STATUS_LACKS = (
    "status lists the engines online that answer its roll call (within --rollcall-wait), not "
    "those gone offline, and not the constraints retained by tools that do not keep Cascade's "
    "constraints index"
)
WATCH_LACKS = (
    "watch shows the engines online that answer its roll call and those that change while it "
    "runs, not those gone offline before, and the constraints retained by tools that do not "
    "keep Cascade's constraints index only once they change"
)


def say_what_the_broker_lacks(rollcalled: bool, consequence: str) -> None:
    """Once subscribed, where the broker sent no retained status and the roll was called
    (``rollcalled``, what ``subscribe_statuses`` returned): what that costs, on stderr."""
    if rollcalled:
        typer.echo(
            "cascade: warning: this broker does not deliver retained messages to wildcard "
            f"subscriptions: {consequence}",
            err=True,
        )
