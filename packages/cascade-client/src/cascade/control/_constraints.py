"""What a resume clears: the topics of a scope's constraints, wherever a tool put them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, get_args

from cascade.interfaces import DEFAULT_PREFIX, constraint_topic
from cascade.interfaces.wire import ConstraintType

__all__ = ["clear_topics", "resume_topics"]

CONSTRAINT_TYPES: tuple[ConstraintType, ...] = get_args(ConstraintType)


def clear_topics(
    scope: str, constraint_type: ConstraintType | None, prefix: str = DEFAULT_PREFIX
) -> list[str]:
    """The per-type topics (under ``prefix``) that ``resume`` clears: one type, or all (the
    scope checked by the :class:`~cascade.interfaces.commands.Resume` that names it)."""
    types = CONSTRAINT_TYPES if constraint_type is None else (constraint_type,)
    return [constraint_topic(scope, kind, prefix) for kind in types]


def resume_topics(
    scope: str,
    constraint_type: ConstraintType | None,
    retained: Mapping[str, Mapping[str, Any]],
    prefix: str = DEFAULT_PREFIX,
) -> list[str]:
    """The topics ``resume`` clears, given the ``retained`` constraint payloads by topic.

    They are the scope's own per-type topics, and every topic whose constraint names
    ``scope`` in its payload (and the type), wherever an existing tool put it: a scope
    with ``/`` (``task:a/b``) was written to ``cascade/constraints/task/a/b``. A topic
    holding another scope's constraint is left alone; a payload naming no scope
    belongs to the scope whose topic it is on.
    """
    own = clear_topics(scope, constraint_type, prefix)
    mine = {*own, constraint_topic(scope, prefix=prefix)}

    def is_mine(topic: str, payload: Mapping[str, Any]) -> bool:
        named = payload.get("scope")
        return topic in mine if named is None else named == scope

    found = [
        topic
        for topic, payload in retained.items()
        if payload
        and is_mine(topic, payload)
        and constraint_type in (None, payload.get("type"))
        and topic not in own
    ]
    kept = [topic for topic in own if is_mine(topic, retained.get(topic) or {})]
    return kept + sorted(found)
