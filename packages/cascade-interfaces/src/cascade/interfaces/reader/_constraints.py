"""The constraints a reader keeps: set and cleared by their retained messages, bounded."""

from __future__ import annotations

import logging

from cascade.interfaces import Constraint, ConstraintTopicError, Message, constraint_from_topic
from cascade.interfaces.connector_kit import RateLimitedLogger

from ._bounded_text import KEPT, truncate

__all__ = ["active_constraints", "apply_constraint"]

_log = RateLimitedLogger(logging.getLogger("cascade.interfaces.reader"))


def apply_constraint(constraints: dict[str, Constraint], message: Message, prefix: str) -> None:
    """A constraint set (its texts cut to what a reader keeps), or cleared by an empty payload.

    Keyed by topic: a clear removes what its own topic held, never another's. A constraint
    whose payload names another scope or type than its topic raises
    :class:`~cascade.interfaces.ConstraintTopicError` (logged here at a limited rate), as
    an engine refuses it; a malformed one :class:`~cascade.interfaces.InvalidMessageError`.
    """
    if not message.payload:
        constraints.pop(message.topic, None)
        return
    try:
        constraint = constraint_from_topic(message.topic, message.payload, prefix)
    except ConstraintTopicError as exc:
        _log.warning("refused", "refused a constraint on %r: %s", message.topic[:300], exc)
        raise
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
