"""A constraint read from its topic: the topic, which a broker ACL binds, says its scope and type.

A payload's ``scope`` and ``type`` are what its writer claims; the topic it arrived on is
what the broker let that writer publish to. So every reader (engines, ``cascade status``,
``watch``, ``why``, the dashboard, the history's recorder) decodes a constraint with
:func:`constraint_from_topic`, which refuses a payload whose scope (or, on a per-type topic,
type) is not its topic's: an operator granted ``cascade/constraints/task/etl_%2A/...`` can
then set only ``task:etl_*``, whatever the payload says.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple, get_args

from ._constraint import Constraint, ConstraintType, decode_constraint, validate_scope
from ._errors import InvalidMessageError
from ._topics import DEFAULT_PREFIX, scope_from_path

__all__ = [
    "ConstraintTopicError",
    "TopicKey",
    "constraint_from_topic",
    "constraint_topic_key",
]

_TYPES: frozenset[str] = frozenset(get_args(ConstraintType))


class ConstraintTopicError(InvalidMessageError):
    """A constraint on a topic that is not its scope's (or not its type's): a reader refuses it.

    Raised by :func:`constraint_from_topic`; an :class:`InvalidMessageError`, so every
    caller that refuses malformed messages refuses it too, and may count it apart.
    """


class TopicKey(NamedTuple):
    """What a constraint topic says: the ``scope`` and, on a per-type topic, the ``type``
    (``None`` on docs/protocol.md's per-scope topic, which holds a constraint of any type)."""

    scope: str
    type: ConstraintType | None


def constraint_topic_key(topic: str, prefix: str = DEFAULT_PREFIX) -> TopicKey:
    """The scope and type ``topic`` (``{prefix}/constraints/{scope path}[/{type}]``) stands for.

    The path is read with :func:`scope_from_path` (``task/etl_%2A`` is ``task:etl_*``); a last
    level that names a type (``pause``, ``concurrency``, ``rate_limit``) below a scope path is
    the type level (``task/etl_%2A/pause``), anything else is a scope path alone, as the
    existing tools write it (``task/api_*``, and ``task/a/b`` for ``task:a/b``). Raises
    :class:`ConstraintTopicError` for a topic outside ``{prefix}/constraints/`` or one that
    names no scope an engine applies.
    """
    base = f"{prefix}/constraints/"
    if not topic.startswith(base) or len(topic) == len(base):
        raise ConstraintTopicError(f"{topic[:200]!r} is not a constraint topic")
    path = topic[len(base) :]
    head, sep, last = path.rpartition("/")
    kind: ConstraintType | None = None
    if sep and last in _TYPES and (head == "global" or "/" in head):
        path, kind = head, last  # type: ignore[assignment]  # checked: one of _TYPES
    scope = scope_from_path(path)
    try:
        validate_scope(scope)
    except InvalidMessageError as exc:
        raise ConstraintTopicError(f"the topic {topic[:200]!r}: {exc}") from None
    return TopicKey(scope, kind)


def constraint_from_topic(
    topic: str, payload: Mapping[str, Any] | bytes | str, prefix: str = DEFAULT_PREFIX
) -> Constraint:
    """Decode the constraint ``payload`` that arrived on ``topic``, and check it is the topic's.

    The payload is decoded as :func:`decode_constraint` does (and its scope checked with
    :func:`validate_scope`: a malformed payload is an :class:`InvalidMessageError` whatever
    its topic); then its ``scope`` must be the one the topic's scope path names,
    and on a per-type topic its ``type`` the topic's type level. Raises
    :class:`InvalidMessageError` for a malformed payload, and :class:`ConstraintTopicError`
    (naming both) for a topic that is not a constraint topic or not this constraint's.
    """
    constraint = decode_constraint(payload)
    validate_scope(constraint.scope)
    key = constraint_topic_key(topic, prefix)
    if constraint.scope != key.scope:
        raise ConstraintTopicError(
            f"a constraint on {constraint.scope[:200]!r} on the topic of {key.scope[:200]!r}",
            "$.scope",
        )
    if key.type is not None and constraint.type != key.type:
        raise ConstraintTopicError(
            f"a {constraint.type} constraint on the topic of {key.type} on {key.scope[:200]!r}",
            "$.type",
        )
    return constraint
