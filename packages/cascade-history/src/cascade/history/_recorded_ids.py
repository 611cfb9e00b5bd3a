"""The recorded runs a prefix of a run id may name: what `cascade cancel`, `why`, `logs` and the
dashboard's history and controls resolve a prefix among, beside the runs heard live
(:func:`cascade.control.run_ids.one_run`)."""

from __future__ import annotations

from collections.abc import Iterable

from cascade.control.run_ids import RECORDED_READ, Recorded

from ._history import History

__all__ = ["recorded_in"]


def recorded_in(
    history: History, prefix: str, among: Iterable[tuple[str, str | None]] | None = None
) -> Recorded:
    """The ids of the runs in ``history`` that start with ``prefix`` (blocks: a query); of
    ``among``'s orgs and projects only, when given (the others are not there)."""
    return Recorded(history.run_ids(prefix, limit=RECORDED_READ, among=among), history.location)
