"""How a command ends on an error Cascade raised: the one table of error types and exit codes.

Every command is an :class:`EndsOnErrors` (``_registry`` adds each so, the command groups
declare theirs): a :class:`~cascade.interfaces.CascadeError` it lets out ends it as
:data:`EXITS` says for the most specific of the error's types it names:

- ``USAGE`` (2): the command line's mistake, found before anything was sent; said as click
  says a usage error, on one line (``cascade pause: invalid value: --ttl must be ... (see
  cascade pause --help)``), for the option the table names if it names one
  (``invalid value for '--db': ...``), a :class:`~cascade.control.ControlError` with the flag
  of the field it names (:func:`~._context.flagged`);
- ``FAILURE`` (1): what could not be done (the broker, the database, no answer):
  ``cascade: MESSAGE`` on stderr, on one line (:func:`~._context.fail`).

An error the table does not name goes on as it came (a bug's traceback). What a command
refuses or fails at without an error of its own (no run has the id, a file it cannot write)
it ends itself, with :func:`~._context.usage` or :func:`~._context.fail`.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any, Final, Literal

from typer.core import TyperCommand

from cascade.interfaces import CascadeError

from ._context import fail, usage

__all__ = ["EXITS", "FAILURE", "USAGE", "EndsOnErrors", "Exit", "exit_of"]

USAGE: Final = 2
"""The exit code of a usage error (click's)."""
FAILURE: Final = 1
"""The exit code of a command that could not do what it was asked."""


@dataclass(frozen=True)
class Exit:
    """How a command ends on an error: its exit ``code`` and, for a usage error, the
    ``option`` the message names (``--db``), if the error does not say it itself."""

    code: Literal[1, 2]
    option: str | None = None


# Each error by where it is exported from.
EXITS: Final[dict[str, Exit]] = {
    # the command line's own mistakes, refused before anything is sent
    "cascade.cli.plumbing._context.UsageError": Exit(USAGE),
    "cascade.control.ControlError": Exit(USAGE),
    "cascade.interfaces.InvalidIdError": Exit(USAGE),
    "cascade.history.LocationError": Exit(USAGE, "--db"),
    "cascade.dashboard.SettingsError": Exit(USAGE),
    # what could not be done: the broker, the database, a serving process, a file of roles
    "cascade.interfaces.ConnectorError": Exit(FAILURE),
    "cascade.history.HistoryError": Exit(FAILURE),
    "cascade.control.StartError": Exit(FAILURE),
    "cascade.control.RunEndError": Exit(FAILURE),
    "cascade.control.RunLostError": Exit(FAILURE),
    "cascade.control.access.RolesError": Exit(FAILURE),
    "cascade.cli.access.AclError": Exit(FAILURE),
    "cascade.cli.commands.record._record.CannotListen": Exit(FAILURE),
}
"""Which Cascade errors end a command, and how: by the error's dotted name."""


def exit_of(exc: BaseException) -> Exit | None:
    """How :data:`EXITS` ends a command on ``exc``: the exit of its most specific type named
    there; ``None`` when none is.

    A name is looked up only for an error of that name, and only in a module imported
    already (one not imported has raised none of its errors): a package that imports its
    names when first used (``cascade.history``) loads nothing more (its SQLAlchemy) to say
    that a broker was not reachable."""
    for kind in type(exc).__mro__:
        for name, ends in EXITS.items():
            module, _, attribute = name.rpartition(".")
            if kind.__name__ != attribute:
                continue
            loaded = sys.modules.get(module)
            if loaded is not None and getattr(loaded, attribute, None) is kind:
                return ends
    return None


class EndsOnErrors(TyperCommand):
    """A command that a :class:`~cascade.interfaces.CascadeError` ends as :data:`EXITS` says."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except CascadeError as exc:
            ends = exit_of(exc)
            if ends is None:
                raise
            if ends.code == USAGE:
                raise usage(exc, option=ends.option, ctx=ctx) from None
            raise fail(str(exc)) from None
