"""A run's maps folded: the tasks a map (``task.map(...)``) made, counted by their last state
under the map's own task, so that a view shows one row where a run has 10,000 items.

A task whose id ends in ``[<digits>]`` is a map's item, and the part before the ``[`` is its
map's task id (docs/protocol.md); :func:`~._task_filters.item_parts` tells it in SQL, so a
run's items are counted by one ``GROUP BY``, never read one by one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from ..store._schema import task_events
from ._task_filters import item_parts, last_events

__all__ = ["MapItems", "map_items_query"]


@dataclass(frozen=True, slots=True)
class MapItems:
    """One map of a run and its items (the tasks ``<task_id>[0]`` on): its ``task_id`` and
    ``task_name`` (its items' too), how many ``items`` the history has of it, and those
    ``counts`` by their last state (``{"COMPLETED": 9998, "FAILED": 2}``).

    ``items`` counts the items the history has a state of: every item of a run that ended;
    of a run still going, those its engine has started (or cancelled, skipped) so far."""

    task_id: str
    task_name: str
    items: int
    counts: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """This map as a JSON object (``task_id``, ``task_name``, ``items``, ``counts``)."""
        return {
            "task_id": self.task_id,
            "task_name": self.task_name,
            "items": self.items,
            "counts": dict(self.counts),
        }


def map_items_query(connection: sa.Connection, run_id: str) -> list[MapItems]:
    """The maps of the run ``run_id`` (its whole id) with items in the history, by task id,
    each with its items counted by their last state: one ``GROUP BY`` over the items' last
    events."""
    te = task_events
    # LIKE alone is cheap: it narrows the events ranked; what tells an item is told once
    # per task, of its last event
    last = last_events(
        (te.c.task_id, te.c.state, te.c.task_name),
        te.c.run_id == run_id,
        te.c.task_id.like("%]"),
    )
    item, map_id = item_parts(last.c.task_id)
    picked = (
        sa.select(map_id.label("map_id"), last.c.task_name, last.c.state)
        .where(last.c.rank == 1, item)
        .subquery()
    )
    rows = connection.execute(
        sa.select(
            picked.c.map_id, sa.func.min(picked.c.task_name), picked.c.state, sa.func.count()
        ).group_by(picked.c.map_id, picked.c.state)
    ).all()
    counts: dict[str, dict[str, int]] = {}
    names: dict[str, str] = {}
    for map_task, name, state, count in rows:
        counts.setdefault(map_task, {})[state] = int(count)
        names.setdefault(map_task, name)
    return [
        MapItems(map_task, names[map_task], sum(by_state.values()), by_state)
        for map_task, by_state in sorted(counts.items())
    ]
