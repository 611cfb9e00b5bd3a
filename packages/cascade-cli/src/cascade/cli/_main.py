"""The ``cascade`` console script: the app of the one command asked for, or a listing of all.

Importing every command costs a command's start a third of its time (each brings what it needs:
the history, the dashboard's access rules, the controls); ``cascade status`` needs none of the
others, so it is built alone. Whatever else is asked (``--help``, ``--version``, a name that is
no command) gets an app that lists every command by the summary the registry keeps of it
(:class:`Listing`) and imports none, saying what the whole app says; the shell's completion
gets the whole app, whose commands' options it completes.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Annotated, Any

import typer
import typer.main
from typer.core import TyperCommand

from ._registry import COMMANDS, Command
from .plumbing._context import CliContext
from .plumbing._debug import install_task_dump
from .plumbing._group import OneLineErrors
from .plumbing._pipes import guard_stdout
from .plumbing._version import version_callback

__all__ = ["Listing", "Root", "main", "new_app"]

_COMPLETING = "_CASCADE_COMPLETE"  # set by the shell's completion: it wants every command
_BY_NAME = {command.name: command for command in COMMANDS}
_PLAIN = {"max_content_width": 120}  # click's plain help as wide as the terminal, up to 120


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


class Root(OneLineErrors):
    """The `cascade` group: its own help (`cascade --help`, `cascade` alone) in click's plain
    text, its commands' framed as typer frames them. typer's framed help imports rich's
    markdown, syntax and traceback renderers: half of what `cascade --help` cost (issue 93)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.rich_markup_mode = None
        for name, command in self.commands.items():  # whole, as the listing's (click cuts help)
            if name in _BY_NAME:
                command.short_help = _BY_NAME[name].summary


class Listing(Root):
    """The `cascade` group that lists every command of the registry without importing any: by
    its name and summary (what ``cascade --help`` shows of it, and what a mistyped name is
    matched against); a command it is asked to run is built then, and runs as in the whole
    app."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._unbuilt = {command.name for command in COMMANDS} - set(self.commands)
        for command in COMMANDS:
            if command.name in self._unbuilt:
                self.commands[command.name] = TyperCommand(
                    command.name, help=command.summary, short_help=command.summary
                )

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        """The command ``args`` name, built (imported) now if it is one only listed so far."""
        name = args[0] if args else None
        if name in self._unbuilt:
            self._unbuilt.discard(name)
            whole = typer.main.get_command(new_app(_BY_NAME[name]))
            self.commands[name] = whole.commands[name]  # type: ignore[attr-defined]
        return super().resolve_command(ctx, args)


def new_app(*commands: Command, listing: bool = False) -> typer.Typer:
    """The ``cascade`` app of ``commands``, in their order: its help, options and error
    handling, and each command (none: the app with no command yet). ``listing``: an app that
    lists every command without importing any (:class:`Listing`)."""
    app = typer.Typer(
        name="cascade",
        help="Watch and steer running Cascade workflows through an MQTT broker.",
        no_args_is_help=True,
        add_completion=True,
        pretty_exceptions_enable=False,
        cls=Listing if listing else Root,
        context_settings=_PLAIN,
    )
    app.callback()(_root)
    for command in commands:
        command.add_to(app)
    return app


def app_for(args: Sequence[str]) -> typer.Typer:
    """The app that runs ``cascade ARGS``: of their command alone when they name one; for the
    shell's completion, of every command (as :mod:`._app`'s); else the listing of them all."""
    if _COMPLETING in os.environ:
        return new_app(*COMMANDS)
    asked = _BY_NAME.get(args[0]) if args else None
    return new_app(listing=True) if asked is None else new_app(asked)


def main() -> None:
    """Entry point of the `cascade` console script."""
    guard_stdout()
    install_task_dump()
    app_for(sys.argv[1:])(obj=CliContext(), prog_name="cascade")
