"""A constraint's scope and type are its topic's (issue 45): the shared decoder (the reader
model's refusals: cascade-client's test_reader_constraint_topics.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cascade.interfaces import (
    ConstraintTopicError,
    InvalidMessageError,
    Message,
    constraint_from_topic,
    constraint_topic,
    constraint_topic_key,
)

ETL_PAUSE = constraint_topic("task:etl_*", "pause")


def payload(scope: str, kind: str = "pause", **params: Any) -> dict[str, Any]:
    return {"id": "x", "scope": scope, "type": kind, "params": params}


def message(topic: str, body: dict[str, Any] | None) -> Message:
    raw = json.dumps(body).encode() if body is not None else b""
    return Message(topic=topic, payload=body or {}, raw=raw, retain=True)


@pytest.mark.parametrize(
    ("topic", "scope", "kind"),
    [
        ("cascade/constraints/global", "global", None),
        ("cascade/constraints/global/pause", "global", "pause"),
        ("cascade/constraints/task/etl_%2A/concurrency", "task:etl_*", "concurrency"),
        ("cascade/constraints/task/etl_%2A", "task:etl_*", None),
        ("cascade/constraints/task/api_*", "task:api_*", None),  # the existing tools'
        ("cascade/constraints/task/a/b", "task:a/b", None),
        ("cascade/constraints/task/pause", "task:pause", None),  # a task named pause
    ],
)
def test_a_topic_names_its_scope_and_type(topic: str, scope: str, kind: str | None) -> None:
    assert constraint_topic_key(topic) == (scope, kind)


@pytest.mark.parametrize("scope", ["global", "task:etl_*", "task:a.b", "task:x/y", "task:%"])
def test_every_topic_cascade_writes_is_its_scopes(scope: str) -> None:
    for kind in ("pause", "concurrency", "rate_limit", None):
        assert constraint_topic_key(constraint_topic(scope, kind, "site/c"), "site/c") == (
            scope,
            kind,
        )


@pytest.mark.parametrize(
    "topic", ["cascade/constraints/", "cascade/status/x", "cascade/constraints/tsk/x"]
)
def test_a_topic_of_no_scope_is_refused(topic: str) -> None:
    with pytest.raises(ConstraintTopicError):
        constraint_topic_key(topic)


def test_another_scope_or_type_than_the_topics_is_refused() -> None:
    """The attacks: ``global`` and ``task:*`` on a ``task:etl_*`` topic; a limit on its pause
    topic. A malformed payload stays a plain :class:`InvalidMessageError`."""
    with pytest.raises(ConstraintTopicError, match="'global' on the topic of 'task:etl_\\*'"):
        constraint_from_topic(ETL_PAUSE, payload("global"))
    with pytest.raises(ConstraintTopicError, match=r"at `\$.scope`"):
        constraint_from_topic(ETL_PAUSE, payload("task:*", "concurrency", limit=1))
    with pytest.raises(ConstraintTopicError, match=r"at `\$.type`"):
        constraint_from_topic(ETL_PAUSE, payload("task:etl_*", "concurrency", limit=1))
    with pytest.raises(InvalidMessageError) as malformed:
        constraint_from_topic(ETL_PAUSE, b"{nope")
    assert not isinstance(malformed.value, ConstraintTopicError)
    scoped = constraint_from_topic(
        constraint_topic("task:etl_*"), payload("task:etl_*", "rate_limit", rate="1/s")
    )
    assert scoped.type == "rate_limit"  # the per-scope topic holds any type
