"""The constraints a reader keeps: set and cleared by their retained messages, bounded."""

from __future__ import annotations

from cascade.interfaces import Constraint, Message, constraint_from_topic

from ._bounded_text import KEPT, truncate

__all__ = ["active_constraints", "apply_constraint"]


def apply_constraint(constraints: dict[str, Constraint], message: Message, prefix: str) -> None:
    """A constraint set (its texts cut to what a reader keeps), or cleared by an empty payload.

    Keyed by topic: a clear removes what its own topic held, never another's. A constraint
    whose payload names another scope or type than its topic raises
    :class:`~cascade.interfaces.ConstraintTopicError` (the model counts it refused, as it
    does every refusal, and the views show it), as an engine refuses it; a malformed one
    :class:`~cascade.interfaces.InvalidMessageError`.
    """
    if not message.payload:
        constraints.pop(message.topic, None)
        return
    constraint = constraint_from_topic(message.topic, message.payload, prefix)
    for name, limit in (("reason", KEPT["reason"]), ("issued_by", KEPT["name"])):
        text = getattr(constraint, name)
        if isinstance(text, str) and len(text) > limit:
            setattr(constraint, name, truncate(text, limit))
    constraints[message.topic] = constraint


def active_constraints(
    constraints: dict[str, Constraint], now: float
) -> list[tuple[str, Constraint]]:
    """The constraints in force at ``now`` (expired ones left out), by topic."""
    return [
        (topic, c)
        for topic, c in sorted(constraints.items())
        if c.expires_at is None or c.expires_at > now
    ]
