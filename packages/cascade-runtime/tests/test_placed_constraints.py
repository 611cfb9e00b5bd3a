"""An engine applies the unplaced constraints and its own org's and project's, and no other's."""

from __future__ import annotations

import json

from cascade.interfaces import Message, constraint_topic
from cascade.runtime import ConstraintManager


def retained(scope: str, kind: str = "pause", **params: object) -> Message:
    raw = json.dumps({"id": f"{kind}-x", "scope": scope, "type": kind, "params": params}).encode()
    return Message(topic=constraint_topic(scope, kind), payload=json.loads(raw), raw=raw)


async def test_an_engine_of_acme_etl_obeys_its_org_and_project_and_sets_aside_the_others() -> None:
    """acme's and acme/etl's pauses hold its tasks; globex's and acme/web's are set aside."""
    manager = ConstraintManager(place=("acme", "etl"))
    for scope in ("org:globex/task:*", "project:acme/web/task:*", "project:globex/etl/task:*"):
        manager.handle_message(retained(scope))
    assert manager.constraints == []
    assert manager.stats.elsewhere == 3
    assert manager.admit("etl_load") is None
    manager.handle_message(retained("org:acme/task:etl_*"))
    assert manager.admit("etl_load") is not None
    assert manager.admit("web_report") is None
    manager.handle_message(retained("project:acme/etl/task:web_*", "concurrency", limit=0))
    assert manager.admit("web_report") is not None
    assert (manager.stats.accepted, manager.stats.rejected_topic) == (2, 0)


async def test_a_placed_and_an_unplaced_constraint_on_one_target_are_two() -> None:
    """An admin's fleet-wide pause of ``task:x`` and acme's are set and cleared apart."""
    manager = ConstraintManager(place=("acme", "etl"))
    manager.handle_message(retained("task:x"))
    manager.handle_message(retained("org:acme/task:x"))
    assert len(manager.constraints) == 2
    manager.clear_topic(constraint_topic("org:acme/task:x", "pause"))
    assert [c.scope for c in manager.constraints] == ["task:x"]
    assert manager.admit("x") is not None


async def test_an_engine_without_a_place_applies_no_placed_constraint() -> None:
    """A manager that knows no place sets every placed constraint aside."""
    manager = ConstraintManager()
    manager.handle_message(retained("org:acme/task:*"))
    assert manager.constraints == []
    assert manager.stats.elsewhere == 1
