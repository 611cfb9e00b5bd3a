"""Constraint scopes placed in an org or a project: their text, their topic, and back."""

from __future__ import annotations

import json

import pytest

from cascade.interfaces import (
    Constraint,
    ConstraintTopicError,
    InvalidMessageError,
    constraint_from_topic,
    constraint_topic,
    constraint_topic_key,
    validate_scope,
)
from cascade.interfaces._shared import ScopeParts, place_scope, split_scope


@pytest.mark.parametrize(
    ("scope", "parts", "topic"),
    [
        ("task:etl_*", ScopeParts(None, None, "task:etl_*"), "task/etl_%2A"),
        ("org:acme/task:etl_*", ScopeParts("acme", None, "task:etl_*"), "org/acme/task/etl_%2A"),
        (
            "project:acme/etl/task:load",
            ScopeParts("acme", "etl", "task:load"),
            "project/acme/etl/task/load",
        ),
        ("org:acme/task:a/b", ScopeParts("acme", None, "task:a/b"), "org/acme/task/a%2Fb"),
        ("org:acme/schedule:nightly", ScopeParts("acme", None, "schedule:nightly"), None),
        ("org:a%2Eb/task:x", ScopeParts("a.b", None, "task:x"), "org/a%2Eb/task/x"),
        ("project:a%2Fb/c%2Ad/task:*", ScopeParts("a/b", "c*d", "task:*"), None),
    ],
)
def test_a_placed_scope_splits_and_has_one_topic_that_reads_back(
    scope: str, parts: ScopeParts, topic: str | None
) -> None:
    """Its parts, its topic (the place's levels first), and the topic read back to it."""
    assert validate_scope(scope) == scope
    assert split_scope(scope) == parts
    assert place_scope(parts.target, parts.org, parts.project) == scope
    built = constraint_topic(scope, "pause")
    if topic is not None:
        assert built == f"cascade/constraints/{topic}/pause"
    assert constraint_topic_key(built) == (scope, "pause")
    assert constraint_topic_key(constraint_topic(scope)) == (scope, None)


@pytest.mark.parametrize(
    ("scope", "says"),
    [
        ("org:acme", "names no tasks"),
        ("org:acme/", "names no tasks"),
        ("project:acme/task:x", "names no tasks"),
        ("org:acme/global", "'task:*' there"),
        ("org:a.b/task:x", "'org:a%2Eb/task:x'"),  # the org as its topic level, one way only
        ("org:/task:x", "empty"),
        ("org:acme/tsk:x", "unknown scope"),
        ("org:acme/schedule:a b", "unknown scope"),
    ],
)
def test_a_malformed_placed_scope_is_refused_saying_why(scope: str, says: str) -> None:
    """Refused at ``$.scope`` with what to write instead."""
    with pytest.raises(InvalidMessageError, match=says.replace("*", r"\*").replace(".", r"\.")):
        validate_scope(scope)


def test_a_placed_scope_covers_its_place_only() -> None:
    """An org's covers each of its projects; a project's that project alone."""
    org, project = split_scope("org:acme/task:*"), split_scope("project:acme/etl/task:*")
    assert org.covers("acme", "etl")
    assert org.covers("acme", "web")
    assert not org.covers("globex", "etl")
    assert project.covers("acme", "etl")
    assert not project.covers("acme", "web")
    assert not project.covers("globex", "etl")
    assert split_scope("task:*").covers("globex", "anything")


def test_a_placed_constraint_governs_the_tasks_of_its_place_only() -> None:
    """``applies_to`` without a place: no task of a placed scope; with one, its own."""
    paused = Constraint.pause("org:acme/task:etl_*")
    assert paused.applies_to("etl_load", "acme", "etl")
    assert not paused.applies_to("etl_load", "globex", "etl")
    assert not paused.applies_to("web", "acme", "etl")
    assert not paused.applies_to("etl_load")
    assert Constraint.pause("task:etl_*").applies_to("etl_load", "globex", "x")


def test_an_unplaced_payload_on_an_org_s_topic_is_refused() -> None:
    """An acme operator's topic cannot carry a fleet-wide (or another org's) pause."""
    topic = constraint_topic("org:acme/task:*", "pause")
    for scope in ("task:*", "org:globex/task:*", "global"):
        payload = json.dumps({"id": "p", "scope": scope, "type": "pause", "params": {}})
        with pytest.raises(ConstraintTopicError):
            constraint_from_topic(topic, payload)
    payload = json.dumps({"id": "p", "scope": "org:acme/task:*", "type": "pause", "params": {}})
    assert constraint_from_topic(topic, payload).scope == "org:acme/task:*"


def test_a_project_needs_its_org() -> None:
    """``place_scope`` of a project alone is a ValueError."""
    with pytest.raises(ValueError, match="without its org"):
        place_scope("task:x", None, "etl")
