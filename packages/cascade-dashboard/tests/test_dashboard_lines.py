"""Lines of work, live: a run, its reruns and its carry-ons are one row of the runs' list as
they happen (its latest run's, with the line), in `/api/state` and in a page's stream alike."""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from typing import Any

import httpx
import pytest

from cascade.connector_kit.testing import telemetry
from cascade.dashboard import DashboardHub, DashboardSettings, create_app
from cascade.dashboard.live import Follower
from cascade.interfaces import LifecycleEvent, Message, TaskStateEvent
from cascade.interfaces.serving import RunOrigin

NOW = datetime.now(timezone.utc)
A, B, C = "a" * 32, "b" * 32, "c" * 32


@pytest.fixture(autouse=True)
def _ticking(hub: DashboardHub) -> None:
    """The dashboard's clock moves a millisecond at each look: runs fed one after another are
    heard of one after another."""
    now = [time.time()]

    def clock() -> float:
        now[0] += 0.001
        return now[0]

    hub.model.clock = clock


def start(run_id: str, origin: RunOrigin | None = None, **where: Any) -> Message:
    body = LifecycleEvent(event="ENGINE_STARTED", tasks=2, name="etl", origin=origin)
    return telemetry(body, run_id=run_id, ts=NOW, **where)


def rerun(run_id: str, of: str, root: str, **where: Any) -> Message:
    """``run_id``'s start, a rerun of ``of`` whose line's first run is ``root``."""
    return start(run_id, RunOrigin(workflow="etl", rerun_of=of, root_run=root), **where)


def reused(run_id: str, task_id: str, kept_by: str) -> Message:
    body = TaskStateEvent(
        task_id=task_id, task_name=task_id, state="COMPLETED", reused_from=kept_by
    )
    return telemetry(body, run_id=run_id, ts=NOW)


def end(run_id: str, status: str, **where: Any) -> Message:
    body = LifecycleEvent(event="ENGINE_STOPPED", status=status)  # type: ignore[arg-type]
    return telemetry(body, run_id=run_id, ts=NOW, **where)


def feed(hub: DashboardHub, *messages: Message) -> None:
    for message in messages:
        hub.model.apply(message)


def client(hub: DashboardHub) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=create_app(hub, DashboardSettings(token=None)))
    return httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1")


async def state(hub: DashboardHub, **params: str) -> dict[str, Any]:
    async with client(hub) as http:
        answer = await http.get("/api/state", params={"limit": "25", **params})
    assert answer.status_code == 200, answer.text
    decoded: dict[str, Any] = answer.json()
    return decoded


def line_of(row: dict[str, Any]) -> list[tuple[str, str | None, int | None]]:
    return [(link["run_id"], link["status"], link["reused"]) for link in row["line"]]


def event(follower: Follower) -> dict[str, Any]:
    raw = follower.next_event()
    assert raw is not None, "no event: nothing changed"
    decoded: dict[str, Any] = json.loads(raw.decode().split("\ndata: ", 1)[1])
    return decoded


async def test_a_run_and_its_rerun_are_one_row_the_latest_with_its_line(
    hub: DashboardHub,
) -> None:
    """2 lines of work, 4 runs: 2 rows, each its latest run's, its line oldest first with the
    results each reused, in the history's RunLink shape."""
    from cascade.history import RunLink

    feed(hub, start(A), end(A, "Failed"), start("d" * 32), end("d" * 32, "Failed"))
    feed(hub, rerun(B, A, A), reused(B, "load", A), end(B, "Succeeded"))
    feed(hub, rerun("e" * 32, "d" * 32, "d" * 32))
    answer = await state(hub)
    assert [row["run_id"] for row in answer["runs"]] == ["e" * 32, B]
    assert (answer["runs_total"], answer["runs_matching"]) == (2, 2)
    row = answer["runs"][1]
    assert line_of(row) == [(A, "Failed", 0), (B, "Succeeded", 1)]
    assert row["line_more"] == 0
    assert set(row["line"][0]) == set(RunLink(A, "Failed").to_json())
    assert row["status"] == "Succeeded"  # the row is the latest run's, as it was


async def test_a_run_of_no_line_has_an_empty_line(hub: DashboardHub) -> None:
    """As the history's: a run never rerun, and no rerun, lists none."""
    feed(hub, start(A))
    [row] = (await state(hub))["runs"]
    assert "line" not in row
    assert "line_more" not in row


async def test_a_carry_on_and_a_rerun_of_a_rerun_join_the_first_runs_line(
    hub: DashboardHub,
) -> None:
    """A carry-on names the lost run and its line's first run, as a rerun does."""
    carried = RunOrigin(
        workflow="etl", rerun_of=B, root_run=A, carried_on_from=B, lost_engine="host-1", carry_ons=1
    )
    feed(hub, start(A), end(A, "Failed"), rerun(B, A, A), start(C, carried, source="host-2"))
    [row] = (await state(hub))["runs"]
    assert row["run_id"] == C
    assert line_of(row) == [(A, "Failed", 0), (B, "Running", 0), (C, "Running", 0)]


async def test_a_stream_folds_a_rerun_as_it_starts_and_says_its_lines_changes(
    hub: DashboardHub,
) -> None:
    """The rerun's row replaces its first run's; a change of an earlier run of the line
    (its end) is a change of the row."""
    feed(hub, start(A))
    follower = Follower.asked(hub, {"limit": "10"}, max_age=0.0)
    assert event(follower)["runs"]["order"] == [A]
    feed(hub, rerun(B, A, A))
    delta = event(follower)
    assert delta["runs"]["order"] == [B]
    assert delta["runs"]["remove"] == [A]
    assert line_of(delta["runs"]["upsert"][0]) == [(A, "Running", 0), (B, "Running", 0)]
    assert "matching" not in delta["runs"]  # one row of one line, as before
    feed(hub, end(A, "Failed"))
    delta = event(follower)
    [row] = delta["runs"]["upsert"]
    assert row["run_id"] == B
    assert line_of(row) == [(A, "Failed", 0), (B, "Running", 0)]


async def test_a_start_heard_late_folds_the_run_into_its_line(hub: DashboardHub) -> None:
    """A run first heard by a task's event names its line with its start, later."""
    feed(hub, start(A), end(A, "Failed"), reused(B, "load", A))
    async with client(hub) as http:  # one dashboard's lists, sorted as the runs come
        first = (await http.get("/api/state", params={"limit": "25"})).json()
        assert len(first["runs"]) == 2
        feed(hub, rerun(B, A, A))
        then = (await http.get("/api/state", params={"limit": "25"})).json()
    [row] = then["runs"]
    assert line_of(row) == [(A, "Failed", 0), (B, "Running", 1)]


async def test_filters_fold_what_they_match_into_the_latest_matching_run(
    hub: DashboardHub,
) -> None:
    """status=failed: the line's latest failed run, with its whole line; pages of one row
    list each line once."""
    feed(hub, start(A), end(A, "Failed"), rerun(B, A, A), end(B, "Failed"), rerun(C, B, A))
    feed(hub, start("d" * 32), end("d" * 32, "Failed"))
    answer = await state(hub, status="failed")
    assert [row["run_id"] for row in answer["runs"]] == ["d" * 32, B]
    assert (answer["runs_matching"], answer["runs_total"]) == (2, 2)
    assert [link["run_id"] for link in answer["runs"][1]["line"]] == [A, B, C]
    listed, after = [], None
    for _ in range(5):
        page = await state(hub, status="failed", limit="1", **({"after": after} if after else {}))
        listed += [row["run_id"] for row in page["runs"]]
        after = page["runs_next"]
        if after is None:
            break
    assert listed == ["d" * 32, B]
    listed, after = [], None
    for _ in range(5):
        page = await state(hub, limit="1", **({"after": after} if after else {}))
        listed += [row["run_id"] for row in page["runs"]]
        after = page["runs_next"]
        if after is None:
            break
    assert listed == [C, "d" * 32]


async def test_a_line_never_crosses_a_project(hub: DashboardHub) -> None:
    """A run of another project claiming a run's line starts a line of its own there: the
    run it names keeps its row, and no row lists the other project's run."""
    feed(hub, start(A), end(A, "Succeeded"))
    feed(hub, rerun(B, A, A, project_id="other"), rerun(C, A, A, org_id="elsewhere"))
    rows = {row["run_id"]: row for row in (await state(hub))["runs"]}
    assert set(rows) == {A, B, C}
    assert all("line" not in row for row in rows.values())


async def test_claims_that_loop_are_lines_that_do_not(hub: DashboardHub) -> None:
    """Two runs each naming the other as first, a run naming itself: every run listed once,
    each line read from its runs' own word, never followed from claim to claim."""
    feed(hub, rerun(A, B, B), rerun(B, A, A), rerun(C, C, C))
    answer = await state(hub)
    assert sorted(row["run_id"] for row in answer["runs"]) == [A, B, C]
    assert all("line" not in row for row in answer["runs"])


async def test_a_long_line_is_bounded_the_first_run_and_the_latest(hub: DashboardHub) -> None:
    """A line of 60 runs (one publisher's claims, say): one row listing 20 of them."""
    from cascade.dashboard.live import MAX_LINE_SHOWN

    feed(hub, start(A))
    reruns = [f"{n:032x}" for n in range(1, 60)]
    for run_id in reruns:
        feed(hub, rerun(run_id, A, A))
    [row] = (await state(hub))["runs"]
    assert row["run_id"] == reruns[-1]
    ids = [link["run_id"] for link in row["line"]]
    assert ids == [A, *reruns[-(MAX_LINE_SHOWN - 1) :]]
    assert row["line_more"] == 60 - MAX_LINE_SHOWN
