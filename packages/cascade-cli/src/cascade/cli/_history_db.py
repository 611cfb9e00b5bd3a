"""What the history commands (`record`, `runs`, `run`, `tasks`, `audit`, `history`) share: the
database option, opening it (the ``[history]`` extra imported only then), periods, and JSON output.

A database that cannot be opened or read ends a command with one line and
exit 1; an option that cannot be read (a malformed --db URL too), exit 2; a
missing extra says what to install (exit 1), as `cascade dashboard` does.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.text import Text

from ._context import UsageError, fail, usage
from ._inert import inert
from ._run_ids import checked_prefix, one_run, recorded_in
from ._view_options import parse_age

if TYPE_CHECKING:
    from cascade.history import History, Mode, RunDetail

__all__ = [
    "EXTRA_HINT",
    "SINCE_HELP",
    "Db",
    "Json",
    "cell",
    "echo_json",
    "open_history",
    "query",
    "recorded_run",
    "recorded_run_pages",
    "since_seconds",
]

EXTRA_HINT = "needs the history extra: pip install 'cascade-cli[history]'"

_T = TypeVar("_T")

Db = Annotated[
    str | None,
    typer.Option(
        "--db",
        envvar="CASCADE_HISTORY_DB",
        metavar="URL",
        help="The history database: a SQLite file's path, sqlite:///PATH or "
        "postgresql://USER@HOST/DB (default: history.sqlite3 in the user's data directory).",
    ),
]
Json = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
SINCE_HELP = "Only the last AGE: 90s, 15m, 24h, 7d"


def since_seconds(age: str | None) -> float | None:
    """The moment ``age`` ago (epoch seconds), ``None`` without one; exit 2 for a bad age."""
    return None if age is None else time.time() - parse_age(age)


def open_history(command: str, db: str | None, *, mode: Mode = "read") -> History:
    """The history ``db`` names. Readers (``mode="read"``) open it read-only: nothing is made
    nor migrated, and a database that is no history, or not at this code's revision, ends
    the command with one line saying what to do; only ``cascade record`` writes."""
    try:
        from cascade.history import History, HistoryError, LocationError
    except ImportError:
        raise fail(f"cascade {command} {EXTRA_HINT}") from None
    try:
        return History(db, mode=mode)
    except LocationError as exc:  # a malformed URL: the command line's mistake
        raise typer.BadParameter(str(exc), param_hint="'--db'") from None
    except HistoryError as exc:
        raise fail(str(exc)) from None


def recorded_run_pages(command: str, db: str | None, run_id: str) -> Iterator[RunDetail]:
    """The run ``run_id`` names, as :func:`recorded_run` finds it, page after page of its
    tasks (``TASKS_PAGE`` each): never all of a big run's events in memory at once. The first
    page is read before this returns (so a missing run fails first); the history is closed
    when the pages end."""
    from cascade.history import TASKS_PAGE

    try:
        wanted = checked_prefix(run_id)
    except UsageError as exc:
        raise usage(exc) from None
    history = open_history(command, db)
    try:
        recorded = query(lambda: recorded_in(history, wanted))
        try:
            found = one_run(wanted, recorded.ids, more=recorded.capped)
        except UsageError as exc:
            raise usage(exc) from None
        first = None if found is None else query(lambda: history.run(found, limit=TASKS_PAGE))
    except BaseException:
        history.close()
        raise
    if first is None:
        history.close()
        raise fail(f"no run's id starts with {wanted!r} in {history.location}")

    def pages(page: RunDetail) -> Iterator[RunDetail]:
        summary = page.run
        try:
            yield page
            while page.next_after is not None:
                following = query(functools.partial(_next_page, history, page))
                if following is None:  # pruned meanwhile
                    return
                page = dataclasses.replace(following, run=summary)  # the counts read once
                yield page
        finally:
            history.close()

    return pages(first)


def _next_page(history: History, page: RunDetail) -> RunDetail | None:
    from cascade.history import TASKS_PAGE

    run_id = page.run.run_id
    return history.run(run_id, after=page.next_after, limit=TASKS_PAGE, counts=False)


def recorded_run(command: str, db: str | None, run_id: str) -> RunDetail:
    """The run ``run_id`` names (its id, or a prefix only it has) in the history ``db``;
    exit 2 for a malformed id or one several runs start with (naming them), exit 1 naming the
    database when it has no such run."""
    try:
        wanted = checked_prefix(run_id)
    except UsageError as exc:
        raise usage(exc) from None
    history = open_history(command, db)
    try:
        recorded = query(lambda: recorded_in(history, wanted))
        try:
            found = one_run(wanted, recorded.ids, more=recorded.capped)
        except UsageError as exc:
            raise usage(exc) from None
        detail = None if found is None else query(lambda: history.run(found))
    finally:
        history.close()
    if detail is None:
        raise fail(f"no run's id starts with {wanted!r} in {history.location}")
    return detail


def query(job: Callable[[], _T]) -> _T:
    """Run a history query: a database error ends the command (exit 1), a ``ValueError``
    of the arguments is a usage error (exit 2)."""
    from cascade.history import HistoryError

    try:
        return job()
    except HistoryError as exc:
        raise fail(str(exc)) from None
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def echo_json(value: Any) -> None:
    """``value`` as one line of ASCII JSON (every control character escaped)."""
    typer.echo(json.dumps(value))


def cell(text: str | None, limit: int, style: str = "") -> Text:
    """Stored text for a table: never markup, every active character escaped, bounded."""
    return Text(inert(text or "", limit) or "-", style=style)
