"""`cascade history status` and `cascade history migrate`: a history's schema, seen and
migrated on purpose (readers never migrate; `cascade record` does on start)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from ...plumbing._context import fail
from ...plumbing._exits import EndsOnErrors
from ...plumbing._group import OneLineErrors
from ...plumbing._history_db import EXTRA_HINT, Db, Json, echo_json
from ._history_schema import schema_json, status_line

if TYPE_CHECKING:
    pass


__all__ = ["history_app"]

history_app = typer.Typer(
    name="history",
    help="The history database's schema: its status, migrating it.",
    no_args_is_help=True,
    cls=OneLineErrors,
)


@history_app.command(cls=EndsOnErrors)
def status(db: Db = None, json_output: Json = False) -> None:
    """The database's schema revision against this Cascade's.

    The database's schema revision against this Cascade's; changes nothing.

    Exit 0 when readers can read it as it is, 1 otherwise (none yet, older, newer, not a
    history). Example: cascade history status --db /data/history.sqlite3
    """
    try:
        from cascade.history import schema_status
    except ImportError:
        raise fail(f"cascade history {EXTRA_HINT}") from None
    found = schema_status(db)
    if json_output:
        echo_json(schema_json(found))
    else:
        typer.echo(status_line(found))
    if not found.up_to_date:
        raise typer.Exit(1)


@history_app.command(cls=EndsOnErrors)
def migrate(
    db: Db = None,
    sql: Annotated[
        bool,
        typer.Option("--sql", help="Print the SQL instead of running it (changes nothing)."),
    ] = False,
) -> None:
    """Create the history, or migrate it to this Cascade's schema.

    Create the history, or migrate it to this Cascade's schema keeping its data.

    All in one transaction, under a lock (a recorder running meanwhile waits). With --sql,
    print what it would run, for a DBA to review and apply (Alembic's offline mode).
    Example: cascade history migrate --db postgresql://cascade@db/history --sql
    """
    try:
        from cascade.history import migrate as migrate_history
        from cascade.history import migration_sql
    except ImportError:
        raise fail(f"cascade history {EXTRA_HINT}") from None
    if sql:
        typer.echo(migration_sql(db) or "-- up to date: nothing to run", nl=False)
        return
    found = migrate_history(db)
    typer.echo(f"{found.location}: revision {found.current}, up to date")
