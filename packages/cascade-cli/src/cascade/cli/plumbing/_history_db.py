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
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from ._context import fail
from ._view_options import parse_age

if TYPE_CHECKING:
    from rich.text import Text

    from cascade.history import History, Mode, RunDetail

__all__ = [
    "EXTRA_HINT",
    "SINCE_HELP",
    "Db",
    "DefaultHistory",
    "Json",
    "cell",
    "default_history",
    "echo_json",
    "gone",
    "history_line",
    "open_history",
    "open_writer",
    "opened_run",
    "query",
    "recorded_run_pages",
    "since_seconds",
    "task_pages",
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


@dataclasses.dataclass(frozen=True)
class DefaultHistory:
    """The history `cascade record` writes when given no ``--db`` (nor ``CASCADE_HISTORY_DB``)."""

    path: Path
    """The SQLite file: cascade.history's default, in the user's data directory."""
    exists: bool
    """Whether it is there yet: readers never make it, `cascade record` does."""


def default_history() -> DefaultHistory | None:
    """Where the default history is (``cascade.history.default_path()``, which follows the
    platform's rules: ``$XDG_DATA_HOME/cascade`` on Linux) and whether it exists yet;
    ``None`` without the history extra."""
    try:
        from cascade.history import default_path
    except ImportError:
        return None
    path = default_path()
    return DefaultHistory(path, path.exists())


def history_line(history: History) -> Text:
    """The dim line a reader's table ends with: which history it read (the default one, unless
    --db or CASCADE_HISTORY_DB named another). Printed unwrapped (soft_wrap), so that the path
    is copied whole."""
    from rich.text import Text

    return Text(f"history: {history.location}", style="dim")


def since_seconds(age: str | None) -> float | None:
    """The moment ``age`` ago (epoch seconds), ``None`` without one; exit 2 for a bad age."""
    return None if age is None else time.time() - parse_age(age)


def open_history(command: str, db: str | None, *, mode: Mode = "read") -> History:
    """The history ``db`` names. Readers (``mode="read"``) open it read-only: nothing is made
    nor migrated, and a database that is no history, or not at this code's revision, ends
    the command with one line saying what to do (a ``HistoryError``, exit 1; a malformed URL,
    the command line's mistake, a ``LocationError``, exit 2 on ``--db``: :mod:`._exits`); only
    ``cascade record`` writes."""
    try:
        from cascade.history import History
    except ImportError:
        raise fail(f"cascade {command} {EXTRA_HINT}") from None
    return History(db, mode=mode)


def open_writer(command: str, db: str | None) -> History:
    """The history ``db`` names, open for writing but never migrated nor made: one that is
    not at this code's revision ends the command as a reader's would (a recorder owns the
    schema; `cascade history migrate` moves it on purpose)."""
    open_history(command, db).close()
    from cascade.history import History

    return History(db, mode="write", migrate=False)


def opened_run(command: str, db: str | None, run_id: str) -> tuple[History, str]:
    """The history ``db``, open (the caller closes it), and the whole id of the run ``run_id``
    names in it: its id, or a prefix only it has. Exit 2 for a malformed id or one several
    runs' ids start with (naming them), exit 1 naming the database when no run's does."""
    from cascade.control.run_ids import checked_prefix, one_run
    from cascade.history import recorded_in

    wanted = checked_prefix(run_id)
    history = open_history(command, db)
    try:
        recorded = query(lambda: recorded_in(history, wanted))
        found = one_run(wanted, recorded.ids, more=recorded.capped)
    except BaseException:
        history.close()
        raise
    if found is None:
        history.close()
        raise fail(f"no run's id starts with {wanted!r} in {history.location}")
    return history, found


def gone(history: History, run_id: str) -> typer.Exit:
    """Exit 1: the run was there a moment ago, and has been pruned since."""
    return fail(f"run {run_id} is no longer in {history.location} (pruned meanwhile)")


def recorded_run_pages(command: str, db: str | None, run_id: str) -> Iterator[RunDetail]:
    """The run ``run_id`` names, as :func:`opened_run` finds it, page after page of its
    tasks (``TASKS_PAGE`` each): never all of a big run's events in memory at once. The first
    page is read before this returns (so a missing run fails first); the history is closed
    when the pages end."""
    from cascade.history import TASKS_PAGE

    history, found = opened_run(command, db, run_id)
    try:
        first = query(lambda: history.run(found, limit=TASKS_PAGE))
        if first is None:
            raise gone(history, found)
    except BaseException:
        history.close()
        raise

    def pages() -> Iterator[RunDetail]:
        try:
            yield from task_pages(history, first)
        finally:
            history.close()

    return pages()


def task_pages(
    history: History,
    first: RunDetail,
    *,
    limit: int | None = None,
    states: Collection[str] | None = None,
    name_glob: str | None = None,
    items: bool = True,
    item_of: str | None = None,
) -> Iterator[RunDetail]:
    """``first`` (a page of a run, read with these ``states``, ``name_glob``, ``items`` and
    ``item_of``),
    then the pages after it (``TASKS_PAGE`` tasks each at most), until ``limit`` tasks in all
    (``None``: every one). Each page carries the run as ``first`` does: its counts read once."""
    from cascade.history import TASKS_PAGE

    summary = first.run
    page = first
    listed = len(page.tasks)
    yield page
    while page.next_after is not None and (limit is None or listed < limit):
        size = TASKS_PAGE if limit is None else min(TASKS_PAGE, limit - listed)
        following = query(
            functools.partial(
                history.run,
                summary.run_id,
                after=page.next_after,
                limit=size,
                counts=False,
                states=states,
                name_glob=name_glob,
                items=items,
                item_of=item_of,
            )
        )
        if following is None:  # pruned meanwhile
            return
        page = dataclasses.replace(following, run=summary)
        listed += len(page.tasks)
        yield page


def query(job: Callable[[], _T]) -> _T:
    """Run a history query: a ``ValueError`` of the arguments is a usage error (exit 2); a
    database error (``HistoryError``) ends the command as every one does (exit 1)."""
    try:
        return job()
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def echo_json(value: Any) -> None:
    """``value`` as one line of ASCII JSON (every control character escaped)."""
    typer.echo(json.dumps(value))


def cell(text: str | None, limit: int, style: str = "") -> Text:
    """Stored text for a table: never markup, every active character escaped, bounded."""
    from rich.text import Text

    from cascade.reader import inert

    return Text(inert(text or "", limit) or "-", style=style)
