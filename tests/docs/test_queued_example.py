"""docs/protocol.md, "Queued: waiting for a worker": its JSON is what the engine sends for an
attempt that waits for a worker, and a reader shows it QUEUED."""

from __future__ import annotations

import json
import re

import msgspec

from cascade.connector_kit.testing import InMemoryConnector
from cascade.interfaces import Hold, TaskStateEvent
from cascade.runtime import TaskQueued, TelemetrySubscriber

from .examples import ROOT


def test_the_queued_example_is_what_the_engine_sends() -> None:
    page = (ROOT / "docs" / "protocol.md").read_text(encoding="utf-8")
    start = page.index("### Queued: waiting for a worker")
    section = page[start : page.index("**Why `BLOCKED` with a hold", start)]
    (example,) = re.findall(r"^```json\n(.*?)\n```$", section, re.M | re.S)
    shown = json.loads(example)
    event = msgspec.convert(shown, TaskStateEvent)
    assert (event.state, event.reader_state) == ("BLOCKED", "QUEUED")
    telemetry = TelemetrySubscriber(
        InMemoryConnector(), run_id="58a88765cea2c1d0a1f3c2b7e9d84a61", org_id="local",
        project_id="default",
    )  # fmt: skip
    hold = Hold(type="queued", executor="threads", workers=32)
    queued = TaskQueued(run_id="r", task_id="extract-41", task_name="extract", held_by=(hold,))
    assert json.loads(telemetry.task_envelope(queued, 1))["body"] == shown
