"""A run's maps folded: a map's items counted by state under the map's own task, the report's
first page showing the map and not its items, and filters still picking items."""

from __future__ import annotations

import time

from cascade.history import History, MapItems

from .messages import T0, lifecycle, task

ITEMS = 10_000
FAILED = (17, 4_242)  # the items that fail


def _mapped_run(history: History, items: int = ITEMS) -> None:
    """A run whose ``extract-1`` gives ``items`` values to the map ``transform-2``: two of its
    items fail, so the map and ``summarize-3`` are skipped; ``note[x]-4``, ``odd-5[]`` and
    ``odd-6[1]x`` have brackets but are no items."""
    batch = [
        lifecycle("r1", "ENGINE_STARTED", T0, tasks=3),
        task("r1", "extract-1", "RUNNING", T0),
        task("r1", "extract-1", "COMPLETED", T0 + 1, duration_ms=1000),
        task("r1", "transform-2", "RUNNING", T0 + 1),
    ]
    for index in range(items):
        item = f"transform-2[{index}]"
        batch.append(task("r1", item, "RUNNING", T0 + 1 + index / items, name="transform"))
        if index in FAILED:
            batch.append(task("r1", item, "FAILED", T0 + 2, name="transform", error="bad row"))
        else:
            batch.append(task("r1", item, "COMPLETED", T0 + 2, name="transform", duration_ms=5))
    why = "upstream task 'transform' (transform-2[17]) failed"
    batch += [
        task("r1", "transform-2", "SKIPPED", T0 + 3, error=why),
        task("r1", "summarize-3", "SKIPPED", T0 + 3, error=why),
        task("r1", "note[x]-4", "COMPLETED", T0 + 3, name="note[x]"),
        task("r1", "odd-5[]", "COMPLETED", T0 + 3, name="odd"),
        task("r1", "odd-6[1]x", "COMPLETED", T0 + 3, name="odd"),
        lifecycle("r1", "ENGINE_STOPPED", T0 + 4, status="Failed"),
    ]
    history.store(batch)


def test_a_map_of_10000_items_is_one_folded_row_of_the_first_page(history: History) -> None:
    _mapped_run(history)
    started = time.perf_counter()
    report = history.report("r1", limit=20)
    took = time.perf_counter() - started
    assert report is not None
    counts = {"COMPLETED": ITEMS - 2, "FAILED": 2}
    assert report.maps == [MapItems("transform-2", "transform", ITEMS, counts)]
    listed = [t.task_id for t in report.detail.tasks]
    assert sorted(listed) == sorted(
        ["extract-1", "transform-2", "summarize-3", "note[x]-4", "odd-5[]", "odd-6[1]x"]
    )
    assert report.folded == ITEMS
    assert report.matched == 6
    assert report.detail.next_after is None
    assert report.detail.run.tasks["COMPLETED"] == ITEMS - 2 + 4  # the run's counts: every task
    assert report.maps[0].to_json() == {
        "task_id": "transform-2",
        "task_name": "transform",
        "items": ITEMS,
        "counts": counts,
    }
    print(f"report of a run mapping {ITEMS:,} items: {took * 1000:.0f} ms")


def test_filters_and_summaries_still_pick_items(history: History) -> None:
    _mapped_run(history, items=50)
    failed = history.report("r1", limit=20, states=["failed"])
    assert failed is not None
    assert [t.task_id for t in failed.detail.tasks] == ["transform-2[17]"]
    assert [t.task_id for t in failed.failures] == ["transform-2[17]"]
    assert (failed.matched, failed.folded) == (1, 0)
    named = history.report("r1", limit=100, name_glob="transform")
    assert named is not None
    assert len(named.detail.tasks) == 51  # the map and its items
    assert (named.matched, named.folded) == (51, 0)
    slowest = history.report("r1", limit=5)
    assert slowest is not None
    assert "extract-1" in [t.task_id for t in slowest.slowest]
    assert any(t.task_id.startswith("transform-2[") for t in slowest.slowest)


def test_items_are_listed_when_asked_and_paged_without_them(history: History) -> None:
    _mapped_run(history, items=50)
    whole = history.report("r1", limit=500, items=True)
    assert whole is not None
    assert (len(whole.detail.tasks), whole.matched, whole.folded) == (56, 56, 0)
    assert whole.maps[0].items == 50
    first = history.run("r1", limit=2, items=False)
    assert first is not None
    paged = [t.task_id for t in first.tasks]
    after = first.next_after
    while after is not None:
        page = history.run("r1", after=after, limit=2, items=False, counts=False)
        assert page is not None
        paged += [t.task_id for t in page.tasks]
        after = page.next_after
    assert sorted(paged) == sorted(
        ["extract-1", "transform-2", "summarize-3", "note[x]-4", "odd-5[]", "odd-6[1]x"]
    )
    unpaged = history.run("r1", items=False)
    assert unpaged is not None
    assert sorted(t.task_id for t in unpaged.tasks) == sorted(paged)


def test_a_run_without_maps_has_none(history: History) -> None:
    history.store(
        [
            lifecycle("r2", "ENGINE_STARTED", T0),
            task("r2", "load-1", "COMPLETED", T0 + 1),
            lifecycle("r2", "ENGINE_STOPPED", T0 + 2, status="Succeeded"),
        ]
    )
    report = history.report("r2")
    assert report is not None
    assert (report.maps, report.folded, report.matched) == ([], 0, 1)


def test_a_maps_items_are_paged_alone(history: History) -> None:
    """A map's row opened: its items only, a page at a time; not another map's, not a task
    whose id merely starts alike."""
    _mapped_run(history, items=20)
    history.store(
        [
            task("r1", "transform-2[3][1]", "COMPLETED", T0 + 5, name="transform"),
            task("r1", "transform-20[1]", "COMPLETED", T0 + 5, name="transform"),
        ]
    )
    assert [entry.task_id for entry in history.maps("r1")] == [
        "transform-2",
        "transform-20",
        "transform-2[3]",
    ]
    seen: list[str] = []
    after = None
    while True:
        page = history.run("r1", after=after, limit=5, counts=False, item_of="transform-2")
        assert page is not None
        seen += [t.task_id for t in page.tasks]
        after = page.next_after
        if after is None:
            break
    assert sorted(seen) == sorted(f"transform-2[{index}]" for index in range(20))
    failed = history.run("r1", states=["failed"], item_of="transform-2", limit=5)
    assert failed is not None
    assert [t.task_id for t in failed.tasks] == ["transform-2[17]"]
    assert history.maps("nope") == []


def test_a_report_of_one_maps_items(history: History) -> None:
    _mapped_run(history, items=30)
    report = history.report("r1", limit=10, item_of="transform-2")
    assert report is not None
    assert all(t.task_id.startswith("transform-2[") for t in report.detail.tasks)
    assert (len(report.detail.tasks), report.matched, report.folded) == (10, 30, 0)
    failed = history.report("r1", limit=10, item_of="transform-2", states=["failed"])
    assert failed is not None
    assert [t.task_id for t in failed.detail.tasks] == ["transform-2[17]"]
    assert failed.matched == 1
