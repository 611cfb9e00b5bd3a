"""The decisions people took on a run's held tasks, as every list of runs says them."""

from __future__ import annotations

from collections.abc import Sequence

from cascade.reader import SHOWN, DecisionCount, inert

__all__ = ["decisions_text"]


def decisions_text(decisions: Sequence[DecisionCount], others: int = 0) -> str:
    """``1 skipped by ops-1, 1 completed by ops-2`` (``""``: none), names inert; ``others``
    the decisions of people beyond those a live reader lists (``3 more by others``)."""
    said = [
        f"{d.count:,} {d.done} by "
        + ("someone unnamed" if d.by is None else inert(d.by, SHOWN["source"]))
        for d in decisions
    ]
    if others:
        said.append(f"{others:,} more by others")
    return ", ".join(said)
