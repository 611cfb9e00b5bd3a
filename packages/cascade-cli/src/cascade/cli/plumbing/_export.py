"""`--format csv|jsonl`: what the history commands (`runs`, `tasks`, `audit`, `logs`) export, one
row a run, task, audit entry or log line, to a spreadsheet or a notebook.

The history's one writer makes the lines (:func:`cascade.history.export_lines`, which says
what each format holds), so an export here and a download from the dashboard agree.
"""

from __future__ import annotations

import sys
from collections.abc import Collection, Iterable, Mapping, Sequence
from enum import Enum
from typing import IO, Annotated, Any

import typer

__all__ = ["Export", "ExportFormat", "Exporter", "export_format"]


class ExportFormat(str, Enum):
    """What ``--format`` writes."""

    csv = "csv"
    jsonl = "jsonl"


Export = Annotated[
    ExportFormat | None,
    typer.Option(
        "--format",
        metavar="csv|jsonl",
        help="Export, one row a line on stdout: csv (a header, then the rows) or jsonl (JSON "
        "Lines). The columns are --json's fields, times in ISO 8601 UTC.",
        case_sensitive=False,
        show_default=False,
    ),
]


def export_format(format_: ExportFormat | None, json_output: bool) -> ExportFormat | None:
    """The format asked for; ``--json`` and ``--format`` together are a usage error (exit 2)."""
    if format_ is not None and json_output:
        raise typer.BadParameter("give --json or --format, not both", param_hint="'--format'")
    return format_


class Exporter:
    """Writes rows (JSON objects with ``columns`` as keys) in ``format_`` to stdout, through
    the history's one writer (:func:`cascade.history.export_lines`: the dashboard's downloads
    are the same bytes), each ``times`` field (epoch seconds, or ``None``) in ISO 8601 UTC."""

    def __init__(
        self,
        format_: ExportFormat,
        columns: Sequence[str],
        *,
        times: Collection[str] = (),
        out: IO[str] | None = None,
    ) -> None:
        self.format = format_
        self.columns = list(columns)
        self.times = set(times)
        self.out = out if out is not None else sys.stdout
        self._header_due = True

    def rows(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Write ``rows``, one a line (CSV: the header before the first call's rows)."""
        from cascade.history import export_lines

        lines = export_lines(self.format.value, self.columns, rows, times=self.times)
        if self.format is ExportFormat.csv and not self._header_due:
            next(lines)  # a later page of the same export: its header was written
        self._header_due = False
        self.out.writelines(lines)
        self.out.flush()
