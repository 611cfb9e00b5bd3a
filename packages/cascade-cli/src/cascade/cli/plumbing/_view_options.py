"""Options of the views (`status`, `watch`) and `forget`: ages, ids, JSON, and what the views
keep."""

from __future__ import annotations

from typing import Annotated

import typer

from cascade.reader import DEFAULT_FLEET_THRESHOLD

from ._broker import MAX_COUNT

__all__ = [
    "DEFAULT_FLEET_THRESHOLD",
    "DEFAULT_KEEP_FOR_AGE",
    "DEFAULT_OFFLINE_MAX_AGE",
    "FleetThreshold",
    "Json",
    "KeepFor",
    "KeepRuns",
    "OfflineMaxAge",
    "STATUS_JSON_ENGINES",
    "ShowAll",
    "check_id",
    "offline_cutoff",
    "parse_age",
]

DEFAULT_OFFLINE_MAX_AGE = "1h"
"""Offline engines last heard from longer ago than this are hidden by default."""


def parse_age(text: str) -> float:
    """Seconds in an age: ``90`` or ``90s``, ``15m``, ``2h``, ``7d``.

    Raises :class:`typer.BadParameter` (exit code 2) for anything else.
    """
    from cascade.reader import parse_age as reader_age

    try:
        return reader_age(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


OfflineMaxAge = Annotated[
    str,
    typer.Option(
        "--offline-max-age",
        metavar="AGE",
        help="Hide engines offline and last heard from longer ago than AGE (90s, 15m, 2h, 7d).",
    ),
]
ShowAll = Annotated[
    bool, typer.Option("--all", help="Show every engine, however long it has been offline.")
]
KeepRuns = Annotated[
    int,
    typer.Option(
        "--keep-runs",
        min=0,
        max=MAX_COUNT,
        metavar="N",
        help="Keep at most N finished runs in the view.",
    ),
]
KeepFor = Annotated[
    str,
    typer.Option(
        "--keep-for",
        metavar="AGE",
        help="Drop a run from the view AGE after it finished or was last heard from.",
    ),
]

FleetThreshold = Annotated[
    int,
    typer.Option(
        "--fleet-threshold",
        min=0,
        max=MAX_COUNT,
        metavar="RUNS",
        help="From RUNS live runs (as the engines' summaries count them), show the fleet from "
        "its engines' summaries and read a run's events only when it is opened; 0: always.",
    ),
]

DEFAULT_KEEP_FOR_AGE = "10m"
"""``--keep-for``'s default, :data:`~cascade.reader.DEFAULT_KEEP_FOR` as an age."""


def offline_cutoff(show_all: bool, offline_max_age: str) -> float | None:
    """The offline age beyond which engines are hidden, ``None`` with ``--all``."""
    return None if show_all else parse_age(offline_max_age)


Json = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
"""``--json`` of `status`: JSON instead of tables."""

STATUS_JSON_ENGINES = 1_000
"""Engines `cascade status --json` lists at most unless told to list every one: at about
500 bytes each, a fleet's 10,000 made 5 MB of JSON; a thousand stay under 1 MB."""


def check_id(value: str, option: str) -> None:
    """Refuse an id option that cannot stand in a topic: an ``InvalidIdError``, a usage error
    (exit 2, as :mod:`._exits` says)."""
    from cascade.interfaces import validate_id  # a command's work, not its --help

    validate_id(value, option)
