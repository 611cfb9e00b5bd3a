"""Router: only what the run needs runs, its routers' choices known, however many tasks take a
router, however routers nest, and whatever else the unchosen branches are part of."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from cascade.runtime import (
    DependencyMissingError,
    Engine,
    Event,
    Param,
    Router,
    RunStarted,
    TaskCompleted,
    TaskFailedError,
    TaskSkipped,
    task,
)


class Ran:
    """Tasks that note each call by name; ``value(name)`` makes one that returns its name."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def value(self, name: str) -> Any:
        @task(name=name)
        def made() -> str:
            self.calls.append(name)
            return name

        return made

    def join(self, name: str) -> Any:
        @task(name=name)
        def made(*values: Any) -> tuple[Any, ...]:
            self.calls.append(name)
            return (name, *values)

        return made

    def failing(self, name: str) -> Any:
        @task(name=name)
        def made() -> str:
            self.calls.append(name)
            raise RuntimeError(f"{name} broke")

        return made


def _recorded(engine: Engine) -> list[Event]:
    events: list[Event] = []
    engine.events.subscribe(events.append)
    return events


def _skipped(events: list[Event]) -> dict[str, str | None]:
    return {e.task_name: e.error for e in events if isinstance(e, TaskSkipped)}


@pytest.mark.parametrize("source", ["db", "api"])
async def test_two_tasks_taking_one_router_run_only_the_chosen_branch(source: str) -> None:
    """Issue 79: with two consumers both branches ran (and wrote both outputs)."""
    ran = Ran()
    routed: Router[str] = Router(
        Param("src", default="db"), {"db": ran.value("db")(), "api": ran.value("api")()}
    )
    a, b = ran.join("a"), ran.join("b")
    engine = Engine()
    events = _recorded(engine)
    result = await engine.run(b(routed, a(routed)), params={"src": source})
    assert result == ("b", source, ("a", source))
    assert sorted(ran.calls) == sorted([source, "a", "b"])
    other = "api" if source == "db" else "db"
    assert _skipped(events) == {other: "not routed"}


async def test_a_skip_in_a_branch_two_routers_did_not_choose_skips_neither_consumer() -> None:
    """Issue 79: the skip of an unchosen branch leaked into the task taking both routers."""
    ran = Ran()
    skipped = ran.value("a")().run_if(Param("c", default=False))
    bb = ran.value("b")()
    d2 = ran.join("d2")
    target = d2(
        Router(Param("p", default="x"), {"x": bb, "y": skipped}),
        Router(Param("q", default="x"), {"x": bb, "y": skipped}),
    )
    engine = Engine()
    events = _recorded(engine)
    assert await engine.run(target) == ("d2", "b", "b")
    assert _skipped(events) == {"a": "not routed"}


async def test_a_skipped_target_task_in_an_unchosen_branch_does_not_skip_the_consumer() -> None:
    """Issue 79: the branch is also the run's target (so it runs, and is skipped by its
    condition); the task taking the router did not choose it, and runs."""
    ran = Ran()
    skipped = ran.value("a")().run_if(Param("c", default=False))
    routed: Router[Any] = Router(Param("p", default="x"), {"x": ran.value("b")(), "y": skipped})
    engine = Engine()
    events = _recorded(engine)
    with pytest.raises(DependencyMissingError) as missing:  # its second item has no result
        await engine.run([ran.join("d")(routed), skipped])
    assert (missing.value.arg_name, missing.value.task_id) == (
        "<Target Output>[1]",
        skipped.task_id,
    )
    assert _skipped(events) == {"a": "condition false"}
    assert [e.task_name for e in events if isinstance(e, TaskCompleted)].count("d") == 1


async def test_a_failed_task_in_an_unchosen_branch_fails_the_run_but_not_the_consumer() -> None:
    ran = Ran()
    broken = ran.failing("broken")()
    routed: Router[Any] = Router(Param("p", default="x"), {"x": ran.value("b")(), "y": broken})
    engine = Engine()
    events = _recorded(engine)
    with pytest.raises(TaskFailedError, match="broken broke"):
        await engine.run([ran.join("d")(routed), broken])
    completed = {e.task_name for e in events if isinstance(e, TaskCompleted)}
    assert completed == {"b", "d"}
    assert _skipped(events) == {}


async def test_a_skip_in_the_chosen_branch_skips_the_consumer_saying_why() -> None:
    ran = Ran()
    skipped = ran.value("a")().run_if(Param("c", default=False))
    routed: Router[Any] = Router(Param("p", default="y"), {"x": ran.value("b")(), "y": skipped})
    engine = Engine()
    events = _recorded(engine)
    with pytest.raises(DependencyMissingError) as missing:
        await engine.run(ran.join("d")(routed))
    assert missing.value.dependency_id == skipped.task_id  # the first skipped upstream
    assert _skipped(events) == {
        "a": "condition false",
        "b": "not routed",
        "d": f"upstream task 'a' ({skipped.task_id}) was skipped (condition false)",
    }


@pytest.mark.parametrize(
    ("outer", "inner", "runs"), [("x", "i", "i"), ("x", "j", "j"), ("y", "i", "y")]
)
async def test_a_route_that_is_a_router_runs_only_the_branch_both_choose(
    outer: str, inner: str, runs: str
) -> None:
    """The inner router's selector runs only where the outer router chose it; the task that
    takes them fails on no route only of a router it reached (a key the inner one never had
    once failed it where the outer router chose another route)."""
    ran = Ran()

    @task(name="choose")
    def choose() -> str | None:
        ran.calls.append("choose")
        return inner

    nested: Router[Any] = Router(choose(), {"i": ran.value("i")(), "j": ran.value("j")()})
    routed: Router[Any] = Router(Param("outer", default="x"), {"x": nested, "y": ran.value("y")()})
    engine = Engine()
    events = _recorded(engine)
    assert await engine.run(ran.join("d")(routed), params={"outer": outer}) == ("d", runs)
    expected = {runs, "d"} | ({"choose"} if outer == "x" else set())
    assert set(ran.calls) == expected
    assert set(_skipped(events)) == {"i", "j", "y", "choose"} - expected
    assert set(_skipped(events).values()) == {"not routed"}


async def test_a_route_of_several_tasks_runs_them_only_where_chosen() -> None:
    ran = Ran()
    routed: Router[Any] = Router(
        Param("p", default="x"),
        {"x": [ran.value("a")(), ran.value("b")()], "y": {"c": ran.value("c")()}},
    )
    engine = Engine()
    events = _recorded(engine)
    assert await engine.run(ran.join("d")(routed)) == ("d", ["a", "b"])
    assert sorted(ran.calls) == ["a", "b", "d"]
    assert _skipped(events) == {"c": "not routed"}


async def test_a_lazy_selector_that_fails_routes_no_branch() -> None:
    ran = Ran()
    routed: Router[Any] = Router(
        ran.failing("pick")(), {"x": ran.value("a")(), "y": ran.value("b")()}
    )
    engine = Engine()
    events = _recorded(engine)
    with pytest.raises(TaskFailedError, match="pick broke"):
        await engine.run(ran.join("d")(routed))
    assert ran.calls == ["pick"]
    skipped = _skipped(events)
    assert skipped["a"] == skipped["b"] == "not routed"
    assert "'pick'" in str(skipped["d"])


async def test_a_rerun_reuses_a_routed_task_only_where_it_is_chosen() -> None:
    ran = Ran()
    routed: Router[Any] = Router(
        Param("p", default="x"), {"x": ran.value("a")(), "y": ran.value("b")()}
    )
    target = ran.join("d")(routed)
    engine = Engine(results=f"memory://results-{uuid.uuid4().hex}")
    events = _recorded(engine)
    await engine.run(target)
    (first,) = [e.run_id for e in events if isinstance(e, RunStarted)]
    events.clear()
    ran.calls.clear()
    assert await engine.run(target, rerun_of=first, params={"p": "y"}) == ("d", "b")
    assert sorted(ran.calls) == ["b", "d"]
    assert _skipped(events) == {"a": "not routed"}
    reused = {e.task_name for e in events if isinstance(e, TaskCompleted) and e.reused_from}
    assert reused == set()


async def test_a_rerun_plan_says_skip_of_a_branch_its_router_will_not_choose() -> None:
    """Issue 79: a dry run listed the unrouted branch as ``run``; the rerun then skipped it."""
    ran = Ran()
    chosen: Param[str] = Param("dest", default="sqlite")
    load: Router[Any] = Router(
        chosen, {"sqlite": ran.value("load_sqlite")(), "csv": ran.value("load_csv")()}
    )
    target = ran.join("report")(load, ran.failing("flaky")())
    engine = Engine(results=f"memory://results-{uuid.uuid4().hex}")
    events = _recorded(engine)
    with pytest.raises(TaskFailedError):
        await engine.run(target)
    (first,) = [e.run_id for e in events if isinstance(e, RunStarted)]
    plan = {step.task_name: step for step in await engine.plan(target, rerun_of=first)}
    assert plan["load_csv"].action == "skip"
    assert plan["load_csv"].why.startswith("not routed")
    assert plan["load_sqlite"].action == "reuse"
    events.clear()
    with pytest.raises(TaskFailedError):
        await engine.run(target, rerun_of=first)
    assert _skipped(events)["load_csv"] == "not routed"
    switched = {
        s.task_name: s for s in await engine.plan(target, rerun_of=first, params={"dest": "csv"})
    }
    assert switched["load_sqlite"].action == "skip"
    assert switched["load_csv"].action == "run"


async def test_a_rerun_plan_says_a_branch_a_task_result_chooses_runs_only_where_chosen() -> None:
    ran = Ran()
    load: Router[Any] = Router(
        ran.failing("pick")(),
        {"sqlite": ran.value("load_sqlite")(), "csv": ran.value("load_csv")()},
    )
    engine = Engine(results=f"memory://results-{uuid.uuid4().hex}")
    events = _recorded(engine)
    with pytest.raises(TaskFailedError):
        await engine.run(ran.join("report")(load))
    (first,) = [e.run_id for e in events if isinstance(e, RunStarted)]
    plan = {s.task_name: s for s in await engine.plan(ran.join("report")(load), rerun_of=first)}
    assert plan["load_csv"].action == "run"
    assert plan["load_csv"].why.endswith("where its router chooses it")


async def test_a_rerun_plan_reads_the_kept_value_of_a_selector_it_reuses() -> None:
    """A lazy selector whose result the rerun reuses chooses as it did: the plan says so."""
    ran = Ran()
    load: Router[Any] = Router(
        ran.value("csv")(), {"sqlite": ran.value("load_sqlite")(), "csv": ran.value("load_csv")()}
    )
    target = ran.join("report")(load, ran.failing("flaky")())
    engine = Engine(results=f"memory://results-{uuid.uuid4().hex}")
    events = _recorded(engine)
    with pytest.raises(TaskFailedError):
        await engine.run(target)
    (first,) = [e.run_id for e in events if isinstance(e, RunStarted)]
    plan = {step.task_name: step for step in await engine.plan(target, rerun_of=first)}
    assert (plan["csv"].action, plan["load_csv"].action) == ("reuse", "reuse")
    assert plan["load_sqlite"].action == "skip"
