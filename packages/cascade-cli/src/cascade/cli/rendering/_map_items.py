"""A map's items as views fold them: a task whose id ends in ``[<digits>]`` is an item of the
map whose task id is the part before the ``[`` (docs/protocol.md), shown in its map's row."""

from __future__ import annotations

import re

__all__ = ["map_of"]

_ITEM = re.compile(r"(.*)\[[0-9]+\]", re.DOTALL)


def map_of(task_id: str) -> str | None:
    """The task id of the map whose item ``task_id`` is (``transform-7`` for
    ``transform-7[3]``); ``None``: it is no map's item."""
    found = _ITEM.fullmatch(task_id)
    return None if found is None else found[1]
