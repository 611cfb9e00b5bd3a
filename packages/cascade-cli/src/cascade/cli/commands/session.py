"""`cascade session list|revoke`: a team's dashboard's sign-in sessions, kept in the history.

Whoever can write the history database is an admin of its sessions by that alone: the
commands check no role (the dashboard's ``/api/sessions`` takes admin over global).
"""

from __future__ import annotations

import time
from typing import Annotated

import typer

from cascade.reader import SHOWN, inert

from ..plumbing._context import CliContext, fail
from ..plumbing._exits import EndsOnErrors
from ..plumbing._group import OneLineErrors
from ..plumbing._history_db import (
    Db,
    Json,
    cell,
    echo_json,
    history_line,
    open_history,
    open_writer,
    query,
)
from ..plumbing._operator import As, operator_name
from ..rendering._fit import Cell, Column, fitted, print_fitted
from ..rendering._render import TimeFormat

__all__ = ["session_app"]

session_app = typer.Typer(
    name="session",
    help="A team's dashboard sign-in sessions: list them, end them.\n\n"
    "The sign-in sessions of a team's dashboard (OpenID Connect), kept in the history: "
    "list them, end them (a dashboard of the history refuses their cookies within 5 "
    "seconds). Whoever can write the history database (--db) manages them: no role is "
    "checked here, as the dashboard's /api/sessions checks admin over global.",
    no_args_is_help=True,
    cls=OneLineErrors,
)

_COLUMNS = (
    Column("handle", whole=True),
    Column("who", rank=4),
    Column("claim", rank=1),
    Column("state", whole=True),
    Column("signed in", whole=True, rank=3),
    Column("ends", whole=True, rank=2),
    Column("ended by", rank=0),
)


@session_app.command(name="list", cls=EndsOnErrors)
def list_sessions(
    ctx: typer.Context,
    who: Annotated[str | None, typer.Option("--who", help="Only this person's sessions.")] = None,
    json_output: Json = False,
    db: Db = None,
) -> None:
    """The sessions not yet expired, newest first, ended ones too."""
    now = time.time()
    with open_history("session", db) as history:
        found = query(lambda: history.sessions(since_expiry=now))
    found = [s for s in found if who is None or s.who == who]
    if json_output:
        echo_json([{**s.to_json(), "live": s.live(now)} for s in found])
        return
    console = CliContext.of(ctx).out()
    if not found:
        console.print(f"no sign-in session in {history.location}", markup=False)
        return
    times = TimeFormat(now)
    rows: list[list[Cell]] = [
        [
            s.handle,
            cell(s.who, SHOWN["name"]),
            cell(s.claim, SHOWN["name"]),
            "live" if s.live(now) else "ended",
            times.short(s.signed_in_at),
            times.short(s.revoked_at if s.revoked_at is not None else s.expires_at),
            cell(s.revoked_by, SHOWN["name"]),
        ]
        for s in found
    ]
    title = f"Sign-in sessions (times in {times.zone})"
    table, left_out = fitted(_COLUMNS, rows, console.width, title=title)
    print_fitted(console, table, left_out)
    console.print(history_line(history), soft_wrap=True)


@session_app.command(cls=EndsOnErrors)
def revoke(
    handle: Annotated[
        str | None,
        typer.Argument(metavar="[HANDLE]", help="The session's handle (cascade session list)."),
    ] = None,
    who: Annotated[
        str | None, typer.Option("--who", help="End every live session of this person.")
    ] = None,
    operator: As = None,
    db: Db = None,
) -> None:
    """End session HANDLE, or every live one of --who NAME.

    A dashboard of the history refuses the session's cookie within 5 seconds.
    Example: cascade session revoke --who alice@example.com
    """
    if (handle is None) == (who is None):
        raise typer.BadParameter("give a session's HANDLE or --who NAME (not both)")
    by = operator_name(operator, None)
    with open_writer("session", db) as history:
        ended = query(
            lambda: history.revoke_sessions(by=by, at=time.time(), handle=handle, who=who)
        )
    if not ended:
        raise fail(f"no live session {'of ' + who if who else handle} in {history.location}")
    for s in ended:
        typer.echo(f"session {s.handle} of {inert(s.who, SHOWN['name'])} ended")
