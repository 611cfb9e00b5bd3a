"""docs/protocol.md, "Decisions on a held task": its JSON is what the engine sends and takes."""

from __future__ import annotations

import json
import re
from typing import Any

import msgspec

from cascade.connector_kit.testing import InMemoryConnector
from cascade.interfaces import Hold, TaskStateEvent
from cascade.interfaces.commands import Decided, DecisionRequest, decode_decision_reply
from cascade.runtime import TaskHeld, TaskSkipped, TelemetrySubscriber

from .examples import ROOT


def _section_json() -> list[str]:
    page = (ROOT / "docs" / "protocol.md").read_text(encoding="utf-8")
    start = page.index("## Decisions on a held task")
    section = page[start : page.index("\n## ", start + 1)]
    return re.findall(r"^```json\n(.*?)\n```$", section, re.M | re.S)


def _sent(event: Any) -> dict[str, Any]:
    telemetry = TelemetrySubscriber(
        InMemoryConnector(), run_id="58a88765cea2c1d0a1f3c2b7e9d84a61", org_id="local",
        project_id="default",
    )  # fmt: skip
    body: dict[str, Any] = json.loads(telemetry.task_envelope(event, 1))["body"]
    return body


def test_the_held_task_decision_and_answer_examples_are_the_wire() -> None:
    held, request, reply, _ = _section_json()
    shown = json.loads(held)
    event = msgspec.convert(shown, TaskStateEvent)
    assert event.reader_state == "HELD"
    assert event.held == Hold(type="decision", attempt=1, deadline=1795302720.0, default="fail")
    hold = Hold(type="decision", attempt=1, deadline=1795302720.0, default="fail")
    failure = ConnectionError("the API is down")
    sent = _sent(
        TaskHeld(run_id="r", task_id="load-3", task_name="load", duration_ms=61.2,
                 error="ConnectionError: the API is down", held_by=(hold,), exception=failure)
    )  # fmt: skip
    assert set(sent) == set(shown)
    assert {k: v for k, v in sent.items() if k != "traceback"} == {
        k: v for k, v in shown.items() if k != "traceback"
    }
    asked = msgspec.json.decode(request, type=DecisionRequest)
    answered = decode_decision_reply(reply)
    assert (asked.task, asked.decision, asked.attempt) == ("load", "retry", 1)
    assert answered.applied
    assert answered.decided is not None
    assert (answered.id, answered.decided.id) == (asked.id, asked.id)


def test_a_decided_event_carries_decided_as_documented() -> None:
    decided = Decided(decision="skip", attempt=1, at=1795302720.0, deadline=True)
    sent = _sent(
        TaskSkipped(run_id="r", task_id="load-3", task_name="load", attempt=1,
                    error="skipped at its hold's deadline", decided=decided)
    )  # fmt: skip
    assert sent["state"] == "SKIPPED"
    assert sent["decided"] == {"decision": "skip", "attempt": 1, "at": 1795302720.0,
                               "deadline": True}  # fmt: skip


def test_the_gate_example_is_what_the_engine_sends_for_a_gate() -> None:
    """A gate's BLOCKED: no error nor traceback; its hold of kind approval with its prompt."""
    shown = json.loads(_section_json()[3])
    event = msgspec.convert(shown, TaskStateEvent)
    assert event.reader_state == "HELD"
    assert event.held is not None
    assert event.held.awaits_approval
    hold = Hold(type="decision", attempt=1, deadline=1795302720.0, default="fail",
                kind="approval", prompt="Deploy v1.2 to production?")  # fmt: skip
    sent = _sent(TaskHeld(run_id="r", task_id="gate-4", task_name="gate", attempt=1,
                          held_by=(hold,)))  # fmt: skip
    assert sent == shown
