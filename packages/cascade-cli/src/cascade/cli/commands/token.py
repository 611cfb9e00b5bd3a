"""`cascade token create|list|revoke`: per-person API tokens for scripts, kept in the history.

Whoever can write the history database is an admin of its tokens by that alone: the
commands check no role (the dashboard's ``/api/tokens`` takes admin over global).
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
from ..plumbing._view_options import parse_age
from ..rendering._fit import Cell, Column, fitted, print_fitted
from ..rendering._render import TimeFormat

__all__ = ["token_app"]

_WRITER = (
    "Whoever can write the history database (--db) manages its tokens: no role is checked "
    "here, as the dashboard's /api/tokens checks admin over global."
)

token_app = typer.Typer(
    name="token",
    help="Per-person API tokens for a team's dashboard, in the history.\n\n"
    "Per-person API tokens for scripts at a team's dashboard (Authorization: Bearer "
    f"cascade_...), kept hashed in the history. {_WRITER}",
    no_args_is_help=True,
    cls=OneLineErrors,
)

_COLUMNS = (
    Column("id", whole=True),
    Column("holder", rank=5),
    Column("label", whole=True),
    Column("state", whole=True),
    Column("created", whole=True, rank=3),
    Column("by", rank=2),
    Column("expires", whole=True, rank=4),
    Column("last used", whole=True, rank=1),
    Column("note", rank=0),
)


@token_app.command(cls=EndsOnErrors)
def create(
    holder: Annotated[
        str, typer.Argument(help="The person it acts as, as the roles file names them.")
    ],
    note: Annotated[
        str | None, typer.Option("--note", help="What it is for (shown in the list).")
    ] = None,
    expires: Annotated[
        str | None,
        typer.Option(
            "--expires",
            metavar="AGE",
            help="Expire after AGE: 24h, 30d (default: never; revoke it).",
        ),
    ] = None,
    operator: As = None,
    json_output: Json = False,
    db: Db = None,
) -> None:
    """Make an API token for HOLDER and print its secret, once.

    Make an API token for HOLDER and print its secret: the only time it is shown.

    The token carries HOLDER's roles from the dashboard's roles file as they are when it is
    used (a grant to a group the person is in by OpenID Connect does not come with it).
    Whoever can write the history database (--db) manages its tokens.
    Example: cascade token create alice@example.com --note nightly-report --expires 90d
    """
    expires_at = None if expires is None else time.time() + parse_age(expires)
    created_by = operator_name(operator, None)
    with open_writer("token", db) as history:
        made = query(
            lambda: history.create_token(
                holder, created_by=created_by, note=note, expires_at=expires_at
            )
        )
    if json_output:
        echo_json({**made.token.to_json(), "secret": made.secret})
        return
    token = made.token
    typer.echo(made.secret)
    typer.echo(
        f"token {token.id} for {inert(token.holder, SHOWN['name'])} ({token.label}...): the "
        "secret above is shown this once, keep it now; the history keeps its hash only",
        err=True,
    )


@token_app.command(name="list", cls=EndsOnErrors)
def list_tokens(
    ctx: typer.Context,
    holder: Annotated[
        str | None, typer.Option("--holder", help="Only this person's tokens.")
    ] = None,
    json_output: Json = False,
    db: Db = None,
) -> None:
    """The API tokens, newest first; never a secret.

    The API tokens, newest first, revoked and expired ones too; never a secret."""
    with open_history("token", db) as history:
        found = query(lambda: history.tokens(holder=holder))
    now = time.time()
    if json_output:
        echo_json([{**token.to_json(), "state": token.state(now)} for token in found])
        return
    console = CliContext.of(ctx).out()
    if not found:
        console.print(f"no API token in {history.location}", markup=False)
        return
    times = TimeFormat(now)

    def when(at: float | None) -> str:
        return times.short(at) if at is not None else "-"

    rows: list[list[Cell]] = [
        [
            str(token.id),
            cell(token.holder, SHOWN["name"]),
            token.label,
            token.state(now),
            times.short(token.created_at),
            cell(token.created_by, SHOWN["name"]),
            when(token.expires_at),
            when(token.last_used_at),
            cell(token.note, SHOWN["reason"]),
        ]
        for token in found
    ]
    table, left_out = fitted(
        _COLUMNS, rows, console.width, title=f"API tokens (times in {times.zone})"
    )
    print_fitted(console, table, left_out)
    console.print(history_line(history), soft_wrap=True)


@token_app.command(cls=EndsOnErrors)
def revoke(
    token_id: Annotated[
        int, typer.Argument(metavar="ID", min=1, help="The token's id (cascade token list).")
    ],
    db: Db = None,
) -> None:
    """Revoke token ID now.

    Revoke token ID now: a dashboard stops accepting it within 5 seconds.

    Whoever can write the history database (--db) manages its tokens.
    Example: cascade token revoke 3
    """
    with open_writer("token", db) as history:
        revoked = query(lambda: history.revoke_token(token_id))
    if revoked is None:
        raise fail(f"no token {token_id} in {history.location}")
    typer.echo(
        f"token {revoked.id} of {inert(revoked.holder, SHOWN['name'])} ({revoked.label}...) revoked"
    )
