"""The `cascade` command: watch and steer running Cascade workflows through the broker.

This module only assembles the commands; each is built in a module of its own
on :mod:`._context` (its context, running and failing) and :mod:`._broker`
(the broker options every command takes).
"""

from __future__ import annotations

from typing import Annotated

import typer

from .commands.acl import acl
from .commands.audit import audit
from .commands.cancel import cancel
from .commands.dashboard import dashboard
from .commands.decide import complete, fail, retry, skip
from .commands.demo import demo
from .commands.forget import forget
from .commands.held import held
from .commands.history import history_app
from .commands.logs import logs
from .commands.record import record
from .commands.rerun import rerun
from .commands.run import run
from .commands.runs import runs
from .commands.served import served
from .commands.session import session_app
from .commands.start import start
from .commands.status import status
from .commands.steer import limit, pause, resume
from .commands.tasks import tasks
from .commands.token import token_app
from .commands.watch import watch
from .commands.why import why
from .plumbing._broker import broker_options
from .plumbing._context import CliContext
from .plumbing._debug import install_task_dump
from .plumbing._group import OneLineErrors
from .plumbing._pipes import guard_stdout
from .plumbing._version import version_callback

__all__ = ["CliContext", "app", "main"]

app = typer.Typer(
    name="cascade",
    help="Watch and steer running Cascade workflows through an MQTT broker.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    cls=OneLineErrors,
)


@app.callback()
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


# In the order `cascade --help` lists them.
for _command in (status, pause, limit, resume, cancel, watch, logs, why, demo):
    app.command()(_command)
# Held tasks, and the decisions on them.
for _decider in (held, retry, skip, complete, fail):
    app.command()(_decider)
# Served workflows: who serves what, and starting or rerunning one.
for _starter in (served, start, rerun):
    app.command()(_starter)
# Built with its own options; its web stack is an optional extra, imported when it runs.
app.command(name="dashboard")(broker_options(dashboard))
app.command()(forget)
# The broker's ACL from the roles file the dashboard signs people in with.
app.command()(acl)
# The history (the [history] extra, imported when they run): recording, and reading it back.
for _reader in (record, runs, run, tasks, audit):
    app.command()(_reader)
# Its schema, seen and migrated on purpose (readers never migrate it).
app.add_typer(history_app)
# Per-person API tokens for a team's dashboard, kept in the history.
app.add_typer(token_app)
app.add_typer(session_app)


def main() -> None:
    """Entry point of the `cascade` console script."""
    guard_stdout()
    install_task_dump()
    app(obj=CliContext(), prog_name="cascade")
