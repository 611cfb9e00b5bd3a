"""A history list as a file to download: CSV or JSON Lines (``?format=csv|jsonl``).

The rows are the objects ``cascade runs --json``, ``cascade tasks --json`` and ``cascade
audit --json`` print (each record's ``to_json()``), written by the history's one writer
(:func:`cascade.history.export_lines`, which says what each format holds), so a download is
what ``cascade runs/tasks/audit --format`` prints.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cascade.history import ExportFormatName

__all__ = ["FORMATS", "MAX_EXPORT", "Export", "export_body", "export_format", "file_name"]

MAX_EXPORT = 10_000
"""The most rows one download holds (``limit``, up to this; more matching: ``Cascade-More``)."""


@dataclass(frozen=True)
class Export:
    """One download format: its name (``format``, the file name's suffix) and ``media_type``."""

    format: ExportFormatName
    media_type: str


FORMATS = {
    "csv": Export("csv", "text/csv; charset=utf-8; header=present"),
    # not registered with IANA; the name JSON Lines' own page and OpenAPI's registry use
    "jsonl": Export("jsonl", "application/jsonl; charset=utf-8"),
}
"""The formats a list downloads in, by their ``?format=`` name."""


def export_format(params: Mapping[str, str]) -> Export | None:
    """The download ``?format=`` asks for (``None``: none, or ``json``: the list's JSON);
    ``ValueError`` naming the formats for any other."""
    name = params.get("format") or "json"
    if name == "json":
        return None
    found = FORMATS.get(name)
    if found is None:
        raise ValueError("format must be json, csv or jsonl")
    return found


def export_body(what: str, export: Export, rows: Iterable[Mapping[str, Any]]) -> bytes:
    """``rows`` of the list ``what`` (``runs``, ``tasks`` or ``audit``: ``--json`` objects) as
    the file ``export`` asks for, written by the history's one writer
    (:func:`cascade.history.export_lines`), so that it is what ``cascade runs/tasks/audit
    --format`` prints, byte for byte."""
    from cascade.history import (
        AUDIT_COLUMNS,
        AUDIT_TIMES,
        RUN_COLUMNS,
        RUN_TIMES,
        TASK_COLUMNS,
        export_lines,
    )

    columns, times = {
        "runs": (RUN_COLUMNS, RUN_TIMES),
        "tasks": (TASK_COLUMNS, ()),
        "audit": (AUDIT_COLUMNS, AUDIT_TIMES),
    }[what]
    return "".join(export_lines(export.format, columns, rows, times=times)).encode("utf-8")


def file_name(what: str, export: Export, now: float) -> str:
    """``cascade-runs-20261126T050607Z.csv``: what it holds and when it was made (UTC)."""
    stamp = datetime.fromtimestamp(now, timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return f"cascade-{what}-{stamp}.{export.format}"
