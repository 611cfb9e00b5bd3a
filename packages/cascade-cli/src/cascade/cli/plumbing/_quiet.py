"""What a command that reads the broker says when it has heard nothing for a while: which
broker it is connected to and what it waits for, one line on stderr (stdout stays the
command's own: ``--json`` is never mixed with it).

:meth:`CliContext.run <cascade.cli.plumbing.CliContext.run>` runs :func:`say_when_quiet`
beside the job of every command that gives it ``waiting_for``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cascade.interfaces import Connector

__all__ = ["QUIET_AFTER", "quiet_line", "say_when_quiet", "silent_line"]

QUIET_AFTER = 6.0
"""Seconds of silence after which a reading command says where it is connected: more than
the engines' heartbeat period (5 s), so that a live run's heartbeat comes first."""


def quiet_line(address: str, connected: bool, quiet: float, waiting_for: str) -> str:
    """The line said after ``quiet`` seconds with nothing heard on ``address``."""
    where = f"connected to {address}" if connected else f"not connected to {address} (retrying)"
    return f"cascade: {where}, nothing heard for {quiet:g} s: waiting for {waiting_for}"


def silent_line(address: str, looked_for: str) -> str:
    """The line said when a command heard nothing at all on ``address``, where it looked for
    ``looked_for``."""
    return f"cascade: heard nothing on {address}: {looked_for}"


async def say_when_quiet(
    connector: Connector,
    address: str,
    waiting_for: str,
    say: Callable[[str], None],
    after: float = QUIET_AFTER,
) -> None:
    """Until cancelled: once each time ``after`` seconds pass with no message delivered to
    any of ``connector``'s subscriptions (its ``stats.received`` unchanged), ``say`` the
    :func:`quiet_line`; something heard starts the count again."""
    import asyncio  # imported by the command that runs this, not by its --help

    loop = asyncio.get_running_loop()
    heard, since, said = connector.stats.received, loop.time(), False
    step = after / 4  # the line comes at most a quarter of ``after`` late
    while True:
        await asyncio.sleep(step)
        received = connector.stats.received
        if received != heard:
            heard, since, said = received, loop.time(), False
        elif not said and loop.time() - since >= after:
            said = True
            say(quiet_line(address, connector.is_connected, after, waiting_for))
