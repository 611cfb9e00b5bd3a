"""Which tasks a query means: each task's last state, and names matched against a shell glob
in SQL, alike in SQLite and PostgreSQL.

A glob is matched in SQL (``fnmatch.fnmatchcase``'s ``*``, ``?``, ``[...]`` and ``[!...]``,
case-sensitive), so that a page of matching tasks holds as many as it asks for, and a count
counts them, without reading the others: ``LIKE`` narrows the rows (a superset in both
dialects), then a regular expression that Python's ``re`` (SQLite's ``REGEXP``, as SQLAlchemy
installs it) and PostgreSQL's ``~`` read alike decides.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

import sqlalchemy as sa

from ..store._schema import task_events

__all__ = [
    "ESCAPE",
    "FINISHED_STATES",
    "glob_regex",
    "glob_to_like",
    "is_folded",
    "is_item",
    "item_parts",
    "items_of",
    "iteration_parts",
    "last_events",
    "members_of",
    "matching",
    "name_matches",
]

FINISHED_STATES = ("COMPLETED", "FAILED", "SKIPPED", "CANCELLED")
"""Task states a task does not leave."""

ESCAPE = "\\"


def glob_to_like(glob: str) -> str:
    """A ``LIKE`` pattern matching at least every name ``glob`` matches (``*``, ``?``, ``[...]``).

    ``[...]`` becomes ``_`` (one character), so names are checked against the
    glob itself afterwards; ``LIKE`` is case-insensitive in SQLite, too.
    """
    out: list[str] = []
    index = 0
    while index < len(glob):
        char = glob[index]
        if char == "*":
            out.append("%")
        elif char == "?":
            out.append("_")
        elif char == "[" and _class_end(glob, index + 1) >= 0:
            out.append("_")
            index = _class_end(glob, index + 1)
        elif char in "%_\\":
            out.append(ESCAPE + char)
        else:
            out.append(char)
        index += 1
    return "".join(out)


def _class_end(glob: str, start: int) -> int:
    """Where the class whose ``[`` is right before ``start`` ends (its ``]``), as ``fnmatch``
    reads it (a ``]`` first, or after ``!``, is a member); -1: no class, a ``[`` as any."""
    end = start + (glob[start : start + 1] == "!")
    end += glob[end : end + 1] == "]"
    return glob.find("]", end)


def _char(char: str) -> str:
    # A backslash before an ASCII character but a letter or digit makes it literal, in
    # Python's re and PostgreSQL's AREs alike, in a bracket expression too; no other
    # character is special in either (and a backslash before a letter would be an escape).
    return "\\" + char if char.isascii() and not char.isalnum() else char


def _members(stuff: str) -> list[str]:
    """A class's members (``a``, ``a-c``), in order, empty ranges (``z-a``) left out."""
    members: list[str] = []
    index = 0
    while index < len(stuff):
        if index + 2 < len(stuff) and stuff[index + 1] == "-":
            low, high = stuff[index], stuff[index + 2]
            if low <= high:
                members.append(f"{_char(low)}-{_char(high)}")
            index += 3
        else:
            members.append(_char(stuff[index]))
            index += 1
    return members


def glob_regex(glob: str) -> str | None:
    """A regular expression matching exactly the names ``glob`` matches
    (``fnmatch.fnmatchcase``), read alike by Python and PostgreSQL; ``None`` when no name
    can match (a class that is empty, as ``[z-a]``)."""
    out = ["(?s)\\A"]  # (?s): ? and * match a newline too, as in fnmatch
    index = 0
    while index < len(glob):
        char = glob[index]
        index += 1
        if char == "*":
            if out[-1] != ".*":
                out.append(".*")
        elif char == "?":
            out.append(".")
        elif char == "[":
            end = _class_end(glob, index)
            if end < 0:  # no class: a [ like any other character
                out.append(_char(char))
                continue
            stuff, index = glob[index:end], end + 1
            negated = stuff.startswith("!")
            members = _members(stuff[1:] if negated else stuff)
            if members:
                out.append(f"[{'^' if negated else ''}{''.join(members)}]")
            elif negated:
                out.append(".")
            else:
                return None
        else:
            out.append(_char(char))
    return "".join(out) + "\\Z"


def name_matches(column: Any, glob: str) -> sa.ColumnElement[bool]:
    """SQL saying that ``column`` matches the shell glob ``glob``, case-sensitively."""
    regex = glob_regex(glob)
    if regex is None:
        return sa.false()
    narrowed = column.like(glob_to_like(glob), escape=ESCAPE)
    return sa.and_(narrowed, column.regexp_match(regex))


def item_parts(task_id: Any) -> tuple[sa.ColumnElement[bool], sa.ColumnElement[str]]:
    """SQL saying that ``task_id`` (a column) is a map's item, as a task id ending in
    ``[<digits>]`` always is, and its map's task id (what is before that ``[``; meaningful for
    an item only): ``substr``, ``length``, ``rtrim`` and ``LIKE`` (where ``[`` and ``]`` are no
    wildcards), alike in SQLite and PostgreSQL."""
    inner = sa.func.substr(task_id, 1, sa.func.length(task_id) - 1)  # without its last ]
    head = sa.func.rtrim(inner, "0123456789")  # up to and with its [, when it is an item
    item = sa.and_(
        task_id.like("%]"),
        head.like("%["),
        sa.func.length(head) < sa.func.length(inner),  # one digit at least
    )
    return item, sa.func.substr(head, 1, sa.func.length(head) - 1)


def is_item(task_id: Any) -> sa.ColumnElement[bool]:
    """SQL saying that ``task_id`` (a column) is a map's item (:func:`item_parts`)."""
    return item_parts(task_id)[0]


def items_of(task_id: Any, map_task_id: str) -> list[sa.ColumnElement[bool]]:
    """SQL saying that ``task_id`` (a column) is an item of the map whose task id is
    ``map_task_id``: a ``LIKE`` on its prefix narrows, :func:`item_parts` decides."""
    item, map_id = item_parts(task_id)
    prefix = "".join(ESCAPE + c if c in "%_\\" else c for c in map_task_id) + "[%"
    return [task_id.like(prefix, escape=ESCAPE), item, map_id == map_task_id]


def iteration_parts(
    task_id: Any, run_id: str
) -> tuple[sa.ColumnElement[bool], sa.ColumnElement[str], sa.ColumnElement[int]]:
    """SQL saying that ``task_id`` (a column of ``task_events``, or of a query of them) is a
    loop's iteration in the run ``run_id``, its loop's task id and its number (meaningful for
    an iteration only): a task id ``<loop>@<digits>`` whose ``<loop>`` (what is before its
    last ``@``) is a task of the same run (docs/protocol.md). A task id a user's task name
    put an ``@`` in is told apart so: its part before the ``@`` is no task of the run."""
    head = sa.func.rtrim(task_id, "0123456789")  # up to and with its last @, when one
    loop_id = sa.func.substr(head, 1, sa.func.length(head) - 1)
    loop = task_events.alias("loop_task")
    iteration = sa.and_(
        task_id.like("%@%"),  # cheap: narrows before the rest is computed
        head.like("%@"),
        sa.func.length(head) < sa.func.length(task_id),  # one digit at least
        sa.exists().where(loop.c.run_id == run_id, loop.c.task_id == loop_id),
    )
    number = sa.cast(sa.func.substr(task_id, sa.func.length(head) + 1), sa.Integer)
    return iteration, loop_id, number


def is_folded(task_id: Any, run_id: str) -> sa.ColumnElement[bool]:
    """SQL saying that ``task_id`` (a column of ``task_events``) is folded into another
    task's row in the run ``run_id``: a map's item (:func:`item_parts`) or a loop's iteration
    (:func:`iteration_parts`)."""
    return sa.or_(is_item(task_id), iteration_parts(task_id, run_id)[0])


def members_of(task_id: Any, run_id: str, task: str) -> list[sa.ColumnElement[bool]]:
    """SQL saying that ``task_id`` (a column of ``task_events``) is folded into the row of the
    task ``task`` of the run ``run_id``: an item of the map, or an iteration of the loop,
    whose task id that is."""
    iteration, loop_id = iteration_parts(task_id, run_id)[:2]
    prefix = "".join(ESCAPE + c if c in "%_\\" else c for c in task) + "@%"
    looped = sa.and_(task_id.like(prefix, escape=ESCAPE), iteration, loop_id == task)
    return [sa.or_(sa.and_(*items_of(task_id, task)), looped)]


def last_events(columns: Sequence[Any], *where: Any) -> sa.Subquery:
    """``columns`` of the task events ``where`` says, each with its ``rank`` from its task's
    last (1): the latest, a finished state first among events of one time, the last stored
    first among equals."""
    te = task_events
    finished_first = sa.case((te.c.state.in_(FINISHED_STATES), 0), else_=1)
    return (
        sa.select(
            *columns,
            sa.func.row_number()
            .over(
                partition_by=(te.c.run_id, te.c.task_id),
                order_by=(te.c.ts.desc(), finished_first, te.c.id.desc()),
            )
            .label("rank"),
        )
        .where(*where)
        .subquery()
    )


def matching(
    run_id: str,
    states: Collection[str] | None,
    name_glob: str | None,
    *,
    after: str | None = None,
    items: bool = True,
    item_of: str | None = None,
) -> tuple[sa.Subquery, list[sa.ColumnElement[bool]]]:
    """The last event of each task of ``run_id`` (those after the task id ``after``; no map's
    item nor loop's iteration without ``items``; only the items of the map, or the iterations
    of the loop, ``item_of``), and what picks those whose
    last state is one of ``states`` (any case) and whose name matches ``name_glob`` (``None``:
    any)."""
    te = task_events
    where: list[Any] = [te.c.run_id == run_id]
    if not items:
        where.append(sa.not_(is_folded(te.c.task_id, run_id)))
    if item_of is not None:  # a map's items (a loop's iterations) only
        where += members_of(te.c.task_id, run_id, item_of)
    if after is not None:  # whole tasks, before ranking: a later page ranks fewer
        where.append(te.c.task_id > after)
    if name_glob is not None:  # before ranking too: a glob that picks few costs little
        where.append(name_matches(te.c.task_name, name_glob))
    last = last_events((te.c.task_id, te.c.state, te.c.ts, te.c.duration_ms), *where)
    picked = [last.c.rank == 1]
    if states is not None:
        picked.append(last.c.state.in_([state.upper() for state in states]))
    return last, picked
