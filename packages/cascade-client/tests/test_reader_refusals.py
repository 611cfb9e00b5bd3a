"""Whoever may publish can claim anything: the reader model refuses what no engine of a run
can have sent, changes nothing for it, and counts it by source and reason (the views that
say so are the CLI's tests)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

from cascade.connector_kit.testing import received, telemetry
from cascade.interfaces import (
    Heartbeat,
    LifecycleEvent,
    Message,
    StatusMessage,
    TaskStateEvent,
    status_topic,
)
from cascade.reader import ReaderModel

RUN = "58a88765cea2c1d0a1f3c2b7e9d84a61"


def telemetry_status(source: str) -> Message:
    """``source``'s retained online status, as its connector announces it."""
    return received(status_topic(source), StatusMessage(status="online", source=source),
                    retain=True)  # fmt: skip


def _message(
    body: Any, seq: int | None, source: str = "engine", ts: datetime | None = None
) -> Message:
    return telemetry(body, run_id=RUN, seq=seq, source=source, ts=ts)


def _task(task_id: str, state: str, seq: int, source: str = "engine", error: str = "") -> Message:
    body = TaskStateEvent(task_id=task_id, task_name="load", state=state, error=error)  # type: ignore[arg-type]
    return _message(body, seq, source)


def test_a_run_whose_numbering_restarts_is_flagged() -> None:
    state = ReaderModel()
    state.apply(_message(LifecycleEvent(event="ENGINE_STARTED", tasks=1), 1))
    state.apply(_task("a", "COMPLETED", 2))
    later = datetime.now(timezone.utc) + timedelta(seconds=5)
    state.apply(_message(LifecycleEvent(event="ENGINE_STARTED", tasks=1), 1, ts=later))
    assert state.refusals.describe("engine") == "1 conflict"


def _sourced(message: Message, level: str) -> Message:
    """``message`` on the sourced layout, ``level`` as its topic's source."""
    return Message(f"{message.topic}/{level}", message.payload, raw=message.raw)


def test_a_payload_that_is_not_its_topics_source_is_refused() -> None:
    """On the sourced layout the topic's last level is what a broker ACL binds to a login: a
    payload claiming another source is refused, counted by the topic's source, and changes
    nothing; the engine's own, on its own level, is applied."""
    state = ReaderModel()
    state.apply(_sourced(_message(LifecycleEvent(event="ENGINE_STARTED", tasks=1), 1), "engine"))
    state.apply(_sourced(_task("t", "FAILED", 2, error="Evil: forged"), "mallory"))
    state.apply(_sourced(_task("t", "COMPLETED", 2), "engine"))
    run = state.runs[RUN]
    assert run.counts() == {"COMPLETED": 1}
    assert run.refused == 1
    assert state.refusals.describe("mallory") == "1 not its topic's source"


def test_a_status_on_another_sources_topic_is_refused() -> None:
    """``{prefix}/status/{source}`` names its source: a status claiming another changes no
    engine's presence."""
    state = ReaderModel()
    forged = {"source": "engine", "status": "offline", "ts": datetime.now(timezone.utc).isoformat()}
    state.apply(Message("cascade/status/mallory", forged, raw=json.dumps(forged).encode()))
    assert state.engines == {}
    assert state.refusals.describe("mallory") == "1 not its topic's source"


def test_a_forged_heartbeat_heard_first_founds_no_number_base() -> None:
    """A forger's heartbeats for a live run, claiming the engine's own source and last_seq
    2**63 - 1, heard first by a reader joining mid-way: the engine's real events are taken
    (not 'seq out of bounds'), nothing counts as missed, and the forger's next heartbeat is
    refused."""
    state = ReaderModel()
    forged = Heartbeat(running=1, last_seq=2**63 - 1)
    state.apply(_message(forged, None))
    for seq in range(30, 51):
        state.apply(_task(f"t{seq}", "COMPLETED", seq))
    state.apply(_message(forged, None))
    run = state.runs[RUN]
    assert run.counts() == {"COMPLETED": 21}
    assert (state.gaps.missed, run.refused) == (0, 1)
    assert state.refusals.describe("engine") == "1 seq out of bounds"


def test_a_forged_event_heard_first_founds_no_number_base() -> None:
    """A forger's event claiming the engine's source and seq 2**63 - 1, heard first by a reader
    joining mid-way: the engine's next event (far below it) makes the reader forget the forged
    one (counted refused) and hear the run anew; the engine's answer then settles no hole of
    2**63, nothing counts as missed, and the forger's next such event is refused."""
    state = ReaderModel()
    state.apply(_task("evil", "FAILED", 2**63 - 1, error="Evil: forged"))
    assert state.gaps.lone(RUN) == 2**63 - 1
    for seq in range(30, 51):
        state.apply(_task(f"t{seq}", "COMPLETED", seq))
    state.apply(_task("evil", "FAILED", 2**63 - 2, error="Evil: forged"))
    run = state.runs[RUN]
    assert run.counts() == {"COMPLETED": 21}
    assert (state.gaps.missed, run.refused, run.joined_late) == (0, 1, True)
    assert state.refusals.describe("engine") == "2 seq out of bounds"


def test_a_base_of_two_numbers_is_not_displaced() -> None:
    """Two consecutive numbers are a base as good as any: a number a million below them is
    refused, the run kept."""
    state = ReaderModel()
    state.apply(_task("a", "COMPLETED", 2_000_001))
    state.apply(_task("b", "COMPLETED", 2_000_002))
    state.apply(_task("c", "FAILED", 5))
    assert state.runs[RUN].counts() == {"COMPLETED": 2}
    assert state.refusals.describe("engine") == "1 seq out of bounds"


def test_a_forger_heard_first_under_its_own_name_yields_to_the_engine_something_vouches_for() -> (
    None
):
    """Heartbeats of mallory (no status) heard first make her the run's owner only until the
    engine whose online status the reader has speaks: the run is then engine's, what mallory
    said of it goes (counted), and her next message is refused."""
    state = ReaderModel()
    state.apply(_message(Heartbeat(running=5, last_seq=2**63 - 1), None, source="mallory"))
    assert (state.runs[RUN].source, state.runs[RUN].confirmed) == ("mallory", False)
    state.apply(telemetry_status("engine"))
    for seq in range(30, 41):
        state.apply(_task(f"t{seq}", "COMPLETED", seq))
    state.apply(_message(Heartbeat(running=5, last_seq=2**63 - 1), None, source="mallory"))
    run = state.runs[RUN]
    assert (run.source, run.confirmed, run.counts()) == ("engine", True, {"COMPLETED": 11})
    assert state.gaps.missed == 0
    assert state.refusals.describe("mallory") == "2 foreign source"


def test_among_sources_nothing_vouches_for_the_first_keeps_the_run() -> None:
    """Without a status, a start or a sourced topic for either, the second source is refused
    (first heard, not believed more: the run says its engine is unconfirmed)."""
    state = ReaderModel(ask=lambda run_id, after: None)
    state.apply(_task("a", "RUNNING", 7, source="first"))
    state.apply(_task("b", "RUNNING", 8, source="second"))
    run = state.runs[RUN]
    assert (run.source, run.confirmed, state.refusals.describe("second")) == (
        "first", False, "1 foreign source"
    )  # fmt: skip
    assert "first unconfirmed as its engine" in (state.partial(run) or "")


def test_a_run_on_another_orgs_topic_is_refused() -> None:
    """A run claiming acme/etl on globex's topic (the topic is what a broker ACL binds to a
    login's orgs and projects): no run, counted by its source."""
    claim = telemetry(LifecycleEvent(event="ENGINE_STARTED", tasks=1), run_id=RUN, seq=1,
                      source="mallory", org_id="acme", project_id="etl", sourced=True)  # fmt: skip
    forged = Message(claim.topic.replace("/acme/", "/globex/"), claim.payload, raw=claim.raw)
    state = ReaderModel()
    state.apply(forged)
    assert state.runs == {}
    assert state.refusals.describe("mallory") == "1 not its topic's org or project"
    state.apply(claim)
    assert state.runs[RUN].org_id == "acme"
