"""What every command is built from, and how it runs and fails.

Each command takes its :class:`CliContext` with :meth:`CliContext.of`, runs its
broker work with :meth:`CliContext.run` and refuses its input with
:class:`UsageError`; the errors it lets out end it as :mod:`._exits` says
(a :class:`UsageError` exit 2, a broker failure exit 1): one line on stderr,
never a traceback. :func:`usage` (exit 2) and :func:`fail` (exit 1) are how
they are said, and how a command ends itself on what is no error.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import typer

from cascade.interfaces import CascadeError

from ._broker import BrokerOptions, ConnectorFactory, mqtt_connector
from ._fail import fail
from ._quiet import QUIET_AFTER, say_when_quiet, silent_line

if TYPE_CHECKING:
    import asyncio

    from rich.console import Console

    from cascade.control import ControlError

__all__ = ["CliContext", "UsageError", "fail", "flagged", "usage"]

_T = TypeVar("_T")


class UsageError(CascadeError, ValueError):
    """A command's input is invalid; nothing was sent."""


def usage(exc: Exception, *, option: str | None = None, ctx: Any = None) -> typer.BadParameter:
    """The usage error (exit 2) a command raises for ``exc`` (a
    :class:`~cascade.control.ControlError` said with the flag of the field it names), of
    ``option`` if given (``invalid value for '--db': ...``), in the command ``ctx`` if given
    (else click says the command it was raised in)."""
    from cascade.control import ControlError  # an error's path: no command's start pays for it

    if isinstance(exc, ControlError):
        exc = flagged(exc)
    hint = f"'{option}'" if option is not None else None
    return typer.BadParameter(str(exc), ctx=ctx, param_hint=hint)


# The input a field of cascade.control is given with on the command line.
_FLAGS = {
    "ttl": "--ttl",
    "concurrency": "--concurrency",
    "rate": "--rate",
    "type": "--type",
    "reason": "--reason",
    "issued_by": "--as (or $CASCADE_OPERATOR)",
    "username": "--username (the default for --as)",
    "attempt": "--attempt",
    "result": "--result",
    "task": "TASK",
    "params": "--param",
    "rerun_of": "RUN",
    "from_task": "--from",
}
# Messages that name several fields, as the command line says them.
_SAID = {"give concurrency, rate or both": "give --concurrency N, --rate R, or both"}


def flagged(exc: ControlError) -> UsageError:
    """``exc`` as the command line says it (exit 2): the field it names at its start said as
    the flag that gives it (``ttl must be`` -> ``--ttl must be``; ``scope:`` -> ``SCOPE:``)."""
    text = str(exc)
    flag = _FLAGS.get(exc.field)
    if text in _SAID:
        text = _SAID[text]
    elif flag is not None and text.startswith(exc.field):
        text = flag + text[len(exc.field) :]
    elif exc.field == "scope" and text.startswith("scope:"):
        text = "SCOPE" + text[len("scope") :]
    return UsageError(text)


@dataclass
class CliContext:
    """What the commands are built from; tests pass their own with ``obj=``."""

    connector_factory: ConnectorFactory = mqtt_connector
    console: Console | None = None
    quiet_after: float = QUIET_AFTER
    """Seconds of silence after which a command waiting on the broker says where it is
    connected and what it waits for (see :meth:`run`)."""

    @classmethod
    def of(cls, ctx: typer.Context) -> CliContext:
        """The context a command was invoked with (the default one if none was given)."""
        obj = ctx.obj
        return obj if isinstance(obj, CliContext) else cls()

    def out(self) -> Console:
        """Where the command prints: the given console, else one on stdout."""
        if self.console is not None:
            return self.console
        from rich.console import Console

        return Console()

    def run(
        self,
        options: BrokerOptions,
        job: Callable[[Any], Awaitable[_T]],
        *,
        connect: bool = True,
        waiting_for: str | None = None,
        if_silent: str | None = None,
    ) -> _T:
        """Connect, run ``job(connector)``, disconnect.

        A connection that fails raises :class:`~cascade.interfaces.ConnectError` at once, which
        ends the command in one line (exit 1, as every ``ConnectorError``: :mod:`._exits`).
        With ``connect=False`` the job connects itself (``connect(require=True)``), after
        subscribing first, say.

        ``waiting_for``: what the job waits for on the broker ("the log lines of run ..."),
        for a command that reads it: whenever it has heard nothing for :attr:`quiet_after`
        seconds, one line on stderr says which broker it is connected to and that.
        A subscription the broker refuses (an ACL) ends the command (exit 1) saying so, at
        once or when the job ends (:mod:`._sight`).
        ``if_silent``: what the job looked for, said on stderr with the broker's address when
        the job ends without a message heard (a command that listens for a few seconds only:
        an empty answer from a broker that may be the wrong one).
        """

        import asyncio  # what runs a command's broker work; its --help never needs it

        from ._sight import SightedConnector, check_sight

        async def session() -> _T:
            # a subscription the broker refuses ends the command: it cannot see what it was
            # asked about, and must not answer "nothing"
            connector = SightedConnector(self.connector_factory(options), options.timeout)
            watcher: asyncio.Task[None] | None = None
            try:
                if connect:
                    await connector.connect(require=True)
                if waiting_for is not None:
                    said = functools.partial(typer.echo, err=True)
                    quiet = say_when_quiet(
                        connector, options.address, waiting_for, said, self.quiet_after
                    )
                    watcher = asyncio.create_task(quiet)
                done = await job(connector)
                check_sight(connector, connector.before)
                if if_silent is not None and not connector.stats.received:
                    typer.echo(silent_line(options.address, if_silent), err=True)
                return done
            finally:
                if watcher is not None:
                    watcher.cancel()
                    await asyncio.gather(watcher, return_exceptions=True)
                await connector.disconnect()

        return asyncio.run(session())
