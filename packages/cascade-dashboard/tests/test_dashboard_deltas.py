"""A page's stream of changes: a snapshot of its view first, then only what changed, bounded.

The hub's model is fed messages as its subscription receives them; a follower (one stream's
page) is asked for its next event as its stream would, at each interval.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from typing import Any

import pytest

from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector, received, telemetry
from cascade.dashboard import DashboardHub
from cascade.dashboard.live import Follower
from cascade.interfaces import (
    Constraint,
    Heartbeat,
    LifecycleEvent,
    Message,
    StatusMessage,
    TaskStateEvent,
    constraint_topic,
    status_topic,
)
from cascade.interfaces.summaries import (
    EngineSummary,
    RunTally,
    SummaryRun,
    TaskTally,
    summary_messages,
)

NOW = datetime.now(timezone.utc)  # one timestamp: an engine's last_seen does not move


@pytest.fixture(autouse=True)
def _ticking(hub: DashboardHub) -> None:
    """The dashboard's clock moves a millisecond at each look: of two runs, the one heard of
    first is the older, however fast the test feeds them."""
    now = [time.time()]

    def clock() -> float:
        now[0] += 0.001
        return now[0]

    hub.model.clock = clock


def follow(hub: DashboardHub, params: dict[str, str], **options: Any) -> Follower:
    """A stream's follower of the view ``params`` ask for, reading the lists as they are now
    (a stream may read them as sorted up to an interval ago)."""
    return Follower.asked(hub, params, max_age=0.0, **options)


def task(task_id: str, state: str = "RUNNING", run_id: str = "run-1", **where: Any) -> Message:
    body = TaskStateEvent(task_id=task_id, task_name=task_id.split("-")[0], state=state)  # type: ignore[arg-type]
    return telemetry(body, run_id=run_id, ts=NOW, **where)


def ended(run_id: str, source: str = "host-1") -> Message:
    body = LifecycleEvent(event="ENGINE_STOPPED", status="Succeeded")
    return telemetry(body, run_id=run_id, source=source, ts=NOW)


def online(source: str) -> Message:
    status = StatusMessage(status="online", source=source, session=1, ts=NOW.isoformat())
    return received(status_topic(source), status, retain=True)


def pause(scope: str) -> Message:
    return received(
        constraint_topic(scope, "pause"), Constraint(id=f"pause-{scope}", scope=scope, type="pause")
    )


def feed(hub: DashboardHub, *messages: Message) -> None:
    for message in messages:
        hub.model.apply(message)


def event(follower: Follower) -> tuple[str, dict[str, Any]]:
    """The follower's next event: its kind and its data."""
    raw = follower.next_event()
    assert raw is not None, "no event: nothing changed"
    head, data = raw.decode().removesuffix("\n\n").split("\n")
    decoded: dict[str, Any] = json.loads(data.removeprefix("data: "))
    return head.removeprefix("event: "), decoded


def ids(part: dict[str, Any], key: str) -> list[str]:
    return [item[key] for item in part.get("upsert", [])]


def test_the_first_event_is_a_snapshot_of_the_view(hub: DashboardHub) -> None:
    """Every part of the view, each saying it replaces what the page holds."""
    feed(hub, online("host-1"), task("a-1"), task("b-1", run_id="run-2"), pause("global"))
    kind, first = event(follow(hub, {"limit": "10"}))
    assert kind == "snapshot"
    assert first["runs"]["reset"]
    assert first["engines"]["reset"]
    assert first["constraints"]["reset"]
    assert first["runs"]["order"] == ["run-2", "run-1"]  # both running: the newest first
    assert ids(first["runs"], "run_id") == ["run-2", "run-1"]
    assert (first["runs"]["matching"], first["runs"]["total"]) == (2, 2)
    assert ids(first["engines"], "source") == ["host-1"]
    assert ids(first["constraints"], "topic") == [constraint_topic("global", "pause")]
    assert first["epoch"] == hub.model.epoch
    assert first["version"] == hub.model.version
    assert first["more"] is False


def test_a_page_gets_only_what_changed(hub: DashboardHub) -> None:
    """Nothing changed: no event. One run's task moves: that run alone, nothing else."""
    feed(hub, online("host-1"), task("a-1"), task("b-1", run_id="run-2"), pause("global"))
    follower = follow(hub, {})
    event(follower)
    assert follower.next_event() is None
    feed(hub, task("b-1", "COMPLETED", run_id="run-2"))
    kind, delta = event(follower)
    assert kind == "delta"
    assert ids(delta["runs"], "run_id") == ["run-2"]
    assert delta["runs"]["upsert"][0]["counts"] == {"COMPLETED": 1}
    assert "reset" not in delta["runs"]
    assert "order" not in delta["runs"]
    assert not {"engines", "constraints", "tasks", "run"} & set(delta)
    assert follower.next_event() is None


def test_removals_are_sent(hub: DashboardHub) -> None:
    """A cleared constraint, a forgotten engine, a run pushed off the page: each removed."""
    feed(hub, online("host-1"), online("host-2"), task("a-1"), pause("global"))
    follower = follow(hub, {"limit": "1"})
    _, first = event(follower)
    assert first["runs"]["order"] == ["run-1"]
    topic = constraint_topic("global", "pause")
    feed(
        hub,
        received(topic, None, retain=True),
        received(status_topic("host-2"), None, retain=True),
        task("z-1", run_id="run-9"),  # newer: it takes the page's one row
    )
    _, delta = event(follower)
    assert delta["constraints"]["remove"] == [topic]
    assert delta["engines"]["remove"] == ["host-2"]
    assert delta["runs"]["remove"] == ["run-1"]
    assert delta["runs"]["order"] == ["run-9"]
    assert ids(delta["runs"], "run_id") == ["run-9"]
    assert (delta["runs"]["matching"], delta["runs"]["total"]) == (2, 2)
    assert delta["runs"]["next_after"] is not None


def test_the_open_runs_tasks_come_as_they_change(hub: DashboardHub) -> None:
    """The open run: all its tasks first, then each task that changed, with the version."""
    feed(hub, *(task(f"t-{n}") for n in range(5)))
    follower = follow(hub, {"run": "run-1"})
    _, first = event(follower)
    assert first["run"]["run_id"] == "run-1"
    assert first["tasks"]["reset"] is True
    assert len(first["tasks"]["upsert"]) == 5
    feed(hub, task("t-3", "COMPLETED"))
    _, delta = event(follower)
    assert ids(delta["tasks"], "task_id") == ["t-3"]
    assert delta["tasks"]["upsert"][0]["segments"][0]["outcome"] == "COMPLETED"
    assert delta["tasks"]["through"] == hub.model.version
    assert delta["run"]["counts"] == {"RUNNING": 4, "COMPLETED": 1}


def test_a_new_stream_resumes_the_open_runs_tasks_from_since(hub: DashboardHub) -> None:
    """Another page of runs (a new stream): only the tasks changed after ``since``."""
    feed(hub, *(task(f"t-{n}") for n in range(5)))
    _, first = event(follow(hub, {"run": "run-1"}))
    since = first["tasks"]["through"]
    feed(hub, task("t-1", "COMPLETED"))
    asked = {"run": "run-1", "since": str(since), "epoch": hub.model.epoch, "limit": "3"}
    kind, resumed = event(follow(hub, asked))
    assert kind == "delta"  # its lists are new, its tasks are not
    assert resumed["runs"]["reset"] is True
    assert "reset" not in resumed["tasks"]
    assert ids(resumed["tasks"], "task_id") == ["t-1"]


def test_a_page_too_far_behind_gets_the_tasks_afresh(hub: DashboardHub) -> None:
    """Another dashboard's version, or one it never reached: the run's tasks anew, once."""
    feed(hub, *(task(f"t-{n}") for n in range(5)))
    for since, epoch in ((3, "0ther000"), (hub.model.version + 50, hub.model.epoch)):
        asked = {"run": "run-1", "since": str(since), "epoch": epoch}
        _, first = event(follow(hub, asked))
        assert first["tasks"]["reset"] is True
        assert len(first["tasks"]["upsert"]) == 5


def test_owing_more_than_a_batch_and_half_the_run_is_a_fresh_snapshot(hub: DashboardHub) -> None:
    """30 tasks, 20 changed, batches of 10: one snapshot of the 30 rather than two batches."""
    feed(hub, *(task(f"t-{n}") for n in range(30)))
    follower = follow(hub, {"run": "run-1"}, max_batch=10)
    event(follower)
    feed(hub, *(task(f"t-{n}", "COMPLETED") for n in range(20)))
    _, delta = event(follower)
    assert delta["tasks"]["reset"] is True
    assert len(delta["tasks"]["upsert"]) == 30
    assert delta["more"] is False
    assert follower.next_event() is None


def test_batches_are_bounded_and_the_rest_follows(hub: DashboardHub) -> None:
    """35 of 100 tasks changed, batches of 10: 10, 10, 10, 5, each task once, in order."""
    feed(hub, *(task(f"t-{n:03}") for n in range(100)))
    follower = follow(hub, {"run": "run-1"}, max_batch=10)
    event(follower)
    changed = [f"t-{n:03}" for n in range(0, 70, 2)]
    feed(hub, *(task(task_id, "COMPLETED") for task_id in changed))
    got: list[str] = []
    sizes = []
    while True:
        _, delta = event(follower)
        batch = ids(delta.get("tasks", {}), "task_id")
        sizes.append(len(batch) + len(ids(delta.get("runs", {}), "run_id")))
        got += batch
        if not delta["more"]:
            break
    assert got == changed
    assert max(sizes) <= 10
    assert len(sizes) == 4
    assert delta["tasks"]["through"] == hub.model.version
    assert follower.next_event() is None


def test_a_messages_tasks_go_in_one_batch(hub: DashboardHub) -> None:
    """A heartbeat names 15 blocked tasks (one version), batches of 10: all 15 go together,
    and nothing is skipped nor sent twice."""
    feed(hub, *(task(f"t-{n}") for n in range(40)))
    follower = follow(hub, {"run": "run-1"}, max_batch=10)
    event(follower)
    blocked = [{"task_id": f"b-{n}", "task_name": "b", "held_by": []} for n in range(15)]
    beat = Heartbeat(running=40, blocked=15, blocked_tasks=blocked)  # type: ignore[arg-type]
    feed(hub, telemetry(beat, ts=NOW))
    _, delta = event(follower)
    assert sorted(ids(delta["tasks"], "task_id")) == sorted(f"b-{n}" for n in range(15))
    assert delta["tasks"]["through"] == hub.model.version
    assert follower.next_event() is None


def test_a_busy_list_does_not_starve_the_others(hub: DashboardHub) -> None:
    """Runs changing by more than a batch at every look: engines still get their turn."""
    feed(hub, *(task("a-1", run_id=f"run-{n:02}") for n in range(30)))
    follower = follow(hub, {"limit": "30"}, max_batch=10)
    event(follower)
    feed(hub, *(task("a-1", "COMPLETED", run_id=f"run-{n:02}") for n in range(30)))
    feed(hub, online("host-2"))
    _, busy = event(follower)
    assert len(busy["runs"]["upsert"]) == 10
    assert busy["more"] is True
    _, turn = event(follower)
    assert ids(turn["engines"], "source") == ["host-2"]


def test_a_run_that_ends_moves_after_the_running_ones(hub: DashboardHub) -> None:
    """The runs' order: running first, then the newest; an ended run moves down."""
    feed(hub, task("a-1", run_id="run-old"), task("a-1", run_id="run-new"))
    follower = follow(hub, {})
    _, first = event(follower)
    assert first["runs"]["order"] == ["run-new", "run-old"]
    feed(hub, task("a-1", run_id="run-newest"), ended("run-old"))
    _, delta = event(follower)
    assert delta["runs"]["order"] == ["run-newest", "run-new", "run-old"]
    assert ids(delta["runs"], "run_id") == ["run-newest", "run-old"]
    assert delta["runs"]["upsert"][1]["status"] == "Succeeded"


def test_tasks_that_leave_the_run_reach_the_page_as_a_fresh_snapshot(hub: DashboardHub) -> None:
    """A run with more tasks than its timelines keep drops the undrawn ones once it ended and
    compacted: the page gets the tasks left, afresh, not a stale five."""
    hub.model.max_segments_per_run = 3
    feed(hub, *(task(f"t-{n}") for n in range(5)))
    follower = follow(hub, {"run": "run-1"})
    _, first = event(follower)
    assert len(first["tasks"]["upsert"]) == 5
    assert first["run"]["truncated"] == 2
    feed(hub, *(task(f"t-{n}", "COMPLETED") for n in range(5)), ended("run-1"))
    _, delta = event(follower)
    assert delta["tasks"]["reset"] is True
    assert sorted(ids(delta["tasks"], "task_id")) == ["t-0", "t-1", "t-2"]
    assert delta["run"]["status"] == "Succeeded"


def _online(source: str) -> Message:
    said = StatusMessage(status="online", source=source, session=1)
    return received(status_topic(source), said, retain=True)


def _summary(source: str, run_id: str, **fields: Any) -> list[Message]:
    run = SummaryRun(
        run_id=run_id, org_id="local", project_id="p", status="Running",
        started=NOW.isoformat(), tasks=TaskTally(running=fields.pop("running", 1)), planned=10,
    )  # fmt: skip
    said = EngineSummary(
        source=source, ts=datetime.now(timezone.utc).isoformat(), runs=RunTally(running=1),
        listed=[run], **fields,
    )  # fmt: skip
    return [received(at, each, retain=True) for at, each in summary_messages(said)]


async def test_in_fleet_mode_a_summary_sends_pages_its_engine_and_its_runs_only(
    broker: InMemoryBroker,
) -> None:
    fleet = DashboardHub(InMemoryConnector(broker, presence=False), timeout=2.0, fleet_threshold=0)
    await fleet.start()
    try:
        sources = [f"host-{n:02}" for n in range(30)]
        feed(fleet, *(_online(source) for source in sources))
        feed(fleet, *(m for n, at in enumerate(sources) for m in _summary(at, f"run-{n:02}")))
        follower = follow(fleet, {"since": "0", "limit": "50", "engines_limit": "50"})
        assert event(follower)[0] == "snapshot"
        assert follower.next_event() is None
        feed(fleet, *_summary("host-07", "run-07", running=3, dropped=5))
        kind, data = event(follower)
    finally:
        await fleet.stop()
    assert kind == "delta"
    assert [e["source"] for e in data["engines"]["upsert"]] == ["host-07"]
    assert data["engines"]["upsert"][0]["summary"]["dropped"] == 5
    assert [r["run_id"] for r in data["runs"]["upsert"]] == ["run-07"]
    assert "order" not in data["runs"]  # a run's tallies moved, not its place
    assert data["fleet"]["dropped"] == 5
