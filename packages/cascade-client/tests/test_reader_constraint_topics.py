"""A constraint's scope and type are its topic's (issue 45): the reader model refuses, counts
and shows what an engine refuses."""

from __future__ import annotations

import json
from typing import Any

from cascade.interfaces import Constraint, Message, constraint_topic
from cascade.reader import REASON_NOT_ITS_TOPIC, ReaderModel

ETL_PAUSE = constraint_topic("task:etl_*", "pause")


def payload(scope: str, kind: str = "pause", **params: Any) -> dict[str, Any]:
    return {"id": "x", "scope": scope, "type": kind, "params": params}


def message(topic: str, body: dict[str, Any] | None) -> Message:
    raw = json.dumps(body).encode() if body is not None else b""
    return Message(topic=topic, payload=body or {}, raw=raw, retain=True)


def test_the_reader_refuses_counts_and_keeps_only_its_topics() -> None:
    """A reader shows only what engines apply; the refusal is counted by its topic; a clear
    removes what its topic held, never another topic's."""
    state = ReaderModel()
    admin = constraint_topic("global", "pause")
    state.apply(message(admin, payload("global")))
    state.apply(message(ETL_PAUSE, payload("global")))
    state.apply(
        message(
            constraint_topic("task:etl_*", "concurrency"), payload("task:*", "concurrency", limit=1)
        )
    )
    assert [t for t, _ in state.active_constraints()] == [admin]
    assert state.refusals.total == 2
    assert state.refusals.describe("constraints/task/etl_%2A/pause") == f"1 {REASON_NOT_ITS_TOPIC}"
    assert state.rejected == 0
    state.apply(message(ETL_PAUSE, payload("task:etl_*")))
    state.apply(message(ETL_PAUSE, None))
    assert [(t, c.scope) for t, c in state.active_constraints()] == [(admin, "global")]


def test_cascades_own_constraints_pass() -> None:
    state = ReaderModel()
    for constraint in (Constraint.pause("task:etl_*"), Constraint.concurrency("global", 2)):
        topic = constraint_topic(constraint.scope, constraint.type)
        raw = json.dumps({"id": constraint.id, "scope": constraint.scope, "type": constraint.type,
                          "params": constraint.params}).encode()  # fmt: skip
        state.apply(Message(topic=topic, payload=json.loads(raw), raw=raw))
    assert len(state.active_constraints()) == 2
    assert state.refusals.total == 0
