"""The ``cascade`` console script: the app of the one command asked for, or of every one.

Importing every command costs a command's start a third of its time (each brings what it needs:
the history, the dashboard's access rules, the controls); ``cascade status`` needs none of the
others, so it is built alone. Whatever else is asked (``--help``, ``--version``, a name that is
no command, the shell's completion) gets the whole app, which says it as it always has.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Annotated

import typer

from ._registry import COMMANDS, Command
from .plumbing._context import CliContext
from .plumbing._debug import install_task_dump
from .plumbing._group import OneLineErrors
from .plumbing._pipes import guard_stdout
from .plumbing._version import version_callback

__all__ = ["main", "new_app"]

_COMPLETING = "_CASCADE_COMPLETE"  # set by the shell's completion: it wants every command
_BY_NAME = {command.name: command for command in COMMANDS}


def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            is_eager=True,
            callback=version_callback,
            help="Print the versions of cascade and its packages, and exit.",
        ),
    ] = False,
) -> None:
    """Watch and steer running Cascade workflows through an MQTT broker."""


def new_app(*commands: Command) -> typer.Typer:
    """The ``cascade`` app of ``commands``, in their order: its help, options and error
    handling, and each command (none: the app with no command yet)."""
    app = typer.Typer(
        name="cascade",
        help="Watch and steer running Cascade workflows through an MQTT broker.",
        no_args_is_help=True,
        add_completion=True,
        pretty_exceptions_enable=False,
        cls=OneLineErrors,
    )
    app.callback()(_root)
    for command in commands:
        command.add_to(app)
    return app


def app_for(args: Sequence[str]) -> typer.Typer:
    """The app that runs ``cascade ARGS``: of their command alone when they name one, else of
    every command (as :mod:`._app`'s)."""
    asked = _BY_NAME.get(args[0]) if args and _COMPLETING not in os.environ else None
    return new_app(*COMMANDS) if asked is None else new_app(asked)


def main() -> None:
    """Entry point of the `cascade` console script."""
    guard_stdout()
    install_task_dump()
    app_for(sys.argv[1:])(obj=CliContext(), prog_name="cascade")
