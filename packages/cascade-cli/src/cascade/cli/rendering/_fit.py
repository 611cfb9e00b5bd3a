"""Tables that fit the terminal: what must stay whole (ids, statuses, times, numbers) never
wraps nor is cut; other text folds onto more lines, or (a table's errors) keeps to one line
cut with an ellipsis; and when even that cannot fit, the least needed columns are left out,
saying which (the history commands' tables)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.console import Console, JustifyMethod
from rich.table import Table
from rich.text import Text

__all__ = ["Cell", "Column", "fits", "fitted", "left_out_line", "print_fitted"]

Cell = Text | str

_FOLD = 10  # the narrowest a folding column gets before columns are left out
_CHROME = 3  # a column's padding (1 each side) and the line after it, in the default box


@dataclass(frozen=True)
class Column:
    """A table's column: ``whole`` (never wrapped nor cut) or folding at ``fold`` characters
    at the narrowest (``one_line``: never folding, each cell cut to its line with an
    ellipsis instead, where a longer text is said in full elsewhere); ``rank``: when the table
    is too wide, the columns of the lowest rank are left out first (``None``: never)."""

    header: str
    whole: bool = False
    rank: int | None = None
    fold: int = _FOLD
    justify: JustifyMethod = "left"
    one_line: bool = False


def _width(cell: Cell) -> int:
    """The widest line of ``cell``."""
    text = cell if isinstance(cell, Text) else Text(cell)
    return max(line.cell_len for line in text.split(allow_blank=True))


def _empty(cells: list[Cell]) -> bool:
    return all(str(cell) in ("", "-") for cell in cells)


def fits(columns: Sequence[Column], rows: Sequence[Sequence[Cell]], width: int) -> bool:
    """Whether a table of ``rows`` under these ``columns`` fits ``width`` with every cell on
    one line."""
    widest = [
        max([_width(column.header), *(_width(row[index]) for row in rows)])
        for index, column in enumerate(columns)
    ]
    return sum(widest) + _CHROME * len(widest) + 1 <= width


def fitted(
    columns: Sequence[Column],
    rows: Sequence[Sequence[Cell]],
    width: int,
    *,
    title: str | None = None,
) -> tuple[Table, list[str]]:
    """A table of ``rows`` at most ``width`` wide (its ``title`` on its left), and the
    headers of the columns left out that had something to show (columns with only ``-`` in
    them go first, unsaid)."""
    cells = [[row[index] for row in rows] for index in range(len(columns))]
    needs = []
    for column, column_cells in zip(columns, cells, strict=True):
        widest = max([_width(column.header), *map(_width, column_cells)])
        needs.append(widest if column.whole else min(column.fold, widest))
    kept = list(range(len(columns)))

    def too_wide() -> bool:
        return sum(needs[index] for index in kept) + _CHROME * len(kept) + 1 > width

    while too_wide():
        candidates = [index for index in kept if columns[index].rank is not None]
        if not candidates:
            break
        kept.remove(min(candidates, key=lambda i: (not _empty(cells[i]), columns[i].rank or 0, -i)))
    table = Table(title=title, title_justify="left")
    natural = [max([_width(c.header), *map(_width, cells[i])]) for i, c in enumerate(columns)]
    chrome = _CHROME * len(kept) + 1
    for index in kept:
        column = columns[index]
        table.add_column(
            column.header,
            justify=column.justify,
            no_wrap=column.whole or column.one_line,
            # a fold asked wider than the default is kept: rich would narrow it as it does others
            min_width=needs[index] if column.whole or column.fold > _FOLD else None,
            # rich never narrows a column that does not wrap: it gets at most what the others
            # leave at their widest (rich narrows those that fold, if it must, not this one)
            max_width=max(
                needs[index], width - chrome - sum(natural[i] for i in kept if i != index)
            )
            if column.one_line
            else None,
            overflow="ellipsis" if column.one_line else "fold",
        )
    for row in rows:
        table.add_row(*(row[index] for index in kept))
    left_out = [
        column.header
        for index, column in enumerate(columns)
        if index not in kept and not _empty(cells[index])
    ]
    return table, left_out


def left_out_line(left_out: list[str], width: int) -> Text | None:
    """``not shown at 80 columns: project, source; --json has them`` (dim); ``None`` when
    nothing was left out."""
    if not left_out:
        return None
    shown = ", ".join(left_out)
    return Text(f"not shown at {width} columns: {shown}; --json has them", style="dim")


def print_fitted(console: Console, table: Table, left_out: list[str]) -> None:
    """Print a :func:`fitted` table, and the line saying what it left out, if anything."""
    console.print(table)
    line = left_out_line(left_out, console.width)
    if line is not None:
        console.print(line)
