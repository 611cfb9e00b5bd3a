"""CascadeMetrics' held tasks: how many wait for a decision, and the oldest one's age, by org
and project; a task held back by a constraint is no held task."""

from __future__ import annotations

import json
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from cascade.interfaces import (
    Envelope,
    Hold,
    LifecycleEvent,
    Message,
    TaskStateEvent,
    encode_payload,
    events_topic,
)
from cascade.metrics import OTHER, CascadeMetrics
from cascade.reader import ReaderModel

NOW = 1_767_229_200.0  # after every event below
_seconds = iter(range(1, 10**6))


def _event(body: Any, run_id: str, org: str = "acme", project: str = "etl") -> Message:
    second = next(_seconds)
    ts = f"2026-01-01T00:{second // 60:02d}:{second % 60:02d}+00:00"
    envelope = Envelope(run_id=run_id, org_id=org, project_id=project, source="host-1",
                        body=body, ts=ts)  # fmt: skip
    raw = encode_payload(envelope)
    return Message(topic=events_topic(org, project, run_id), payload=json.loads(raw), raw=raw)


def _held(task_id: str, run_id: str, **where: str) -> Message:
    hold = Hold(type="decision", attempt=1, deadline=NOW + 3600, default="fail")
    body = TaskStateEvent(task_id=task_id, task_name=task_id.split("-")[0], state="BLOCKED",
                          error="ValueError: no", held_by=[hold])  # fmt: skip
    return _event(body, run_id, **where)


def _samples(metrics: CascadeMetrics, name: str) -> dict[tuple[str, str], float]:
    found = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for sample in family.samples:
            if sample.name == name:
                found[(sample.labels["org"], sample.labels["project"])] = sample.value
    return found


def test_held_tasks_and_the_oldest_hold_by_org_and_project() -> None:
    clock = [NOW - 600.0]
    metrics = CascadeMetrics(ReaderModel(clock=lambda: clock[0]))
    for message in [
        _event(LifecycleEvent(event="ENGINE_STARTED"), "run-1"),
        _held("load-1", "run-1"),
        _held("side-1", "run-1"),
        _event(LifecycleEvent(event="ENGINE_STARTED"), "run-2", project="web"),
        _held("crawl-1", "run-2", project="web"),
        _event(TaskStateEvent(task_id="paused-1", task_name="paused", state="BLOCKED",
                              held_by=[Hold(type="pause", scope="global")]), "run-2",
               project="web"),
    ]:  # fmt: skip
        metrics.apply(message)
        clock[0] += 100.0
    assert _samples(metrics, "cascade_tasks_held") == {("acme", "etl"): 2, ("acme", "web"): 1}
    oldest = metrics.state.runs["run-1"].tasks["load-1"].since
    ages = _samples(metrics, "cascade_task_hold_age_seconds")
    assert ages[("acme", "etl")] == NOW - oldest
    assert ages[("acme", "web")] == NOW - metrics.state.runs["run-2"].tasks["crawl-1"].since
    assert ages[("acme", "etl")] > ages[("acme", "web")] > 0
    blocked = next(
        s.value
        for f in text_string_to_metric_families(metrics.render().decode())
        for s in f.samples
        if s.name == "cascade_tasks_blocked"
    )
    assert blocked == 1  # the paused task only: a held one is not blocked by a constraint


def test_a_decided_hold_is_no_longer_counted_and_a_project_holding_none_says_0() -> None:
    metrics = CascadeMetrics(ReaderModel(clock=lambda: NOW))
    metrics.apply(_event(LifecycleEvent(event="ENGINE_STARTED"), "run-1"))
    metrics.apply(_held("load-1", "run-1"))
    assert _samples(metrics, "cascade_tasks_held") == {("acme", "etl"): 1}
    metrics.apply(_event(TaskStateEvent(task_id="load-1", task_name="load", state="RUNNING"),
                         "run-1"))  # fmt: skip
    assert _samples(metrics, "cascade_tasks_held") == {("acme", "etl"): 0}
    assert _samples(metrics, "cascade_task_hold_age_seconds") == {("acme", "etl"): 0.0}


def test_orgs_beyond_the_cap_are_folded() -> None:
    metrics = CascadeMetrics(ReaderModel(clock=lambda: NOW), max_label_values=1)
    for org in ("acme", "evil-1", "evil-2"):
        metrics.apply(_event(LifecycleEvent(event="ENGINE_STARTED"), f"run-{org}", org=org))
        metrics.apply(_held("load-1", f"run-{org}", org=org))
    assert _samples(metrics, "cascade_tasks_held") == {("acme", "etl"): 1, (OTHER, OTHER): 2}
