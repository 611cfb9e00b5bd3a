"""A run's name and origin in the reader: from its ENGINE_STARTED, or from its engine's
snapshot answer for a reader that joined late; not from another source's."""

from __future__ import annotations

from cascade.connector_kit.testing import received
from cascade.interfaces import (
    Envelope,
    LifecycleEvent,
    Message,
    RunSnapshot,
    SnapshotTask,
    TaskStateEvent,
    events_topic,
    snapshot_topic,
)
from cascade.interfaces.serving import RunOrigin
from cascade.reader import ReaderModel

TS = "2026-11-23T10:00:00+00:00"
ORIGIN = RunOrigin(workflow="nightly", params={"n": 5}, rerun_of="a" * 32, root_run="a" * 32)


def _event(body: LifecycleEvent | TaskStateEvent, seq: int, source: str = "host-1") -> Message:
    envelope = Envelope(run_id="run-1", org_id="o", project_id="p", source=source, body=body,
                        seq=seq, ts=TS)  # fmt: skip
    return received(events_topic("o", "p", "run-1"), envelope)


def _answer(**fields: object) -> Message:
    task = SnapshotTask(seq=1, ts=TS, task_id="t1", task_name="t", state="RUNNING")
    body = RunSnapshot(after=0, through=5, last_seq=5, tasks=[task], **fields)  # type: ignore[arg-type]
    envelope = Envelope(run_id="run-1", org_id="o", project_id="p", source="host-1", body=body,
                        ts=TS)  # fmt: skip
    return received(snapshot_topic("o", "p", "run-1"), envelope)


def test_a_runs_start_names_it() -> None:
    state = ReaderModel()
    state.apply(_event(LifecycleEvent(event="ENGINE_STARTED", name="nightly", origin=ORIGIN), 1))
    run = state.runs["run-1"]
    assert (run.name, run.origin) == ("nightly", ORIGIN)


def test_a_run_without_a_name_has_none() -> None:
    state = ReaderModel()
    state.apply(_event(LifecycleEvent(event="ENGINE_STARTED"), 1))
    state.apply(_event(TaskStateEvent(task_id="t", task_name="t", state="RUNNING"), 2))
    run = state.runs["run-1"]
    assert (run.name, run.origin) == (None, None)


def test_a_reader_that_joined_late_learns_the_name_from_the_answer() -> None:
    asked: list[tuple[str, int]] = []
    state = ReaderModel(ask=lambda run_id, after: asked.append((run_id, after)))
    state.apply(_event(TaskStateEvent(task_id="t5", task_name="t", state="RUNNING"), 5))
    assert asked == [("run-1", 0)]
    assert state.runs["run-1"].name is None
    state.apply(_answer(name="nightly", origin=ORIGIN))
    run = state.runs["run-1"]
    assert (run.name, run.origin) == ("nightly", ORIGIN)


def test_another_sources_start_names_nothing() -> None:
    state = ReaderModel()
    state.apply(_event(LifecycleEvent(event="ENGINE_STARTED", name="nightly"), 1))
    state.apply(_event(LifecycleEvent(event="ENGINE_STARTED", name="forged"), 1, "mallory"))
    assert state.runs["run-1"].name == "nightly"
