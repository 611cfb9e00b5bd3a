"""Param: values given when a run starts; run_if: a task that runs only when its condition holds."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from cascade.runtime import (
    DependencyMissingError,
    Engine,
    Event,
    Param,
    ParamError,
    Router,
    RunStarted,
    TaskCompleted,
    TaskFailedError,
    TaskSkipped,
    task,
)


class Calls:
    """Tasks that count their calls."""

    def __init__(self) -> None:
        self.calls: dict[str, list[Any]] = {}

        @task(name="get_db_url")
        def get_db_url(environment: str) -> str:
            self.calls.setdefault("get_db_url", []).append(environment)
            return "prod_db_url" if environment == "production" else "stage_db_url"

        @task(name="deploy")
        async def deploy(target: str) -> str:
            self.calls.setdefault("deploy", []).append(target)
            return f"deployed {target}"

        @task(name="announce")
        async def announce(status: str) -> str:
            self.calls.setdefault("announce", []).append(status)
            return status.upper()

        @task(name="wanted")
        async def wanted(flag: bool) -> bool:
            return flag

        self.get_db_url, self.deploy, self.announce, self.wanted = (
            get_db_url,
            deploy,
            announce,
            wanted,
        )


def _recorded(engine: Engine) -> list[Event]:
    events: list[Event] = []
    engine.events.subscribe(events.append)
    return events


async def test_a_param_takes_the_value_given_else_its_default() -> None:
    calls = Calls()
    env: Param[str] = Param("env", default="staging", description="where to deploy")
    url = calls.get_db_url(environment=env)
    assert await Engine().run(url) == "stage_db_url"
    assert await Engine().run(url, params={"env": "production"}) == "prod_db_url"
    assert calls.calls["get_db_url"] == ["staging", "production"]


async def test_a_param_nested_in_an_argument_is_bound_too() -> None:
    @task
    def join(parts: list[Any], by: dict[str, str]) -> str:
        return by["sep"].join(str(p) for p in parts)

    n: Param[int] = Param("n", type=int)
    assert await Engine().run(
        join([1, n, 3], {"sep": Param("sep", default="-")}), params={"n": 2}
    ) == ("1-2-3")


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "parameter n is required: give it in params"),
        ({"n": 1, "m": 2}, r"no parameter m in this workflow \(its parameters: n, sep\)"),
        ({"n": "5"}, r'parameter n must be int, not str \("5"\)'),
        ({"n": 1, "sep": 2}, r"parameter sep must be str, not int \(2\)"),
        ({"n": 10**300}, r"parameter n holds .*: a number in params is within"),
    ],
)
async def test_a_param_missing_unknown_or_ill_typed_fails_the_run_before_it_starts(
    params: dict[str, Any], message: str
) -> None:
    """The error names the parameter; no task runs, and no run starts."""
    ran: list[int] = []

    @task
    def show(n: int, sep: str) -> str:
        ran.append(n)
        return f"{n}{sep}"

    engine = Engine()
    events = _recorded(engine)
    with pytest.raises(ParamError, match=message):
        await engine.run(show(Param("n", type=int), Param("sep", default=",")), params=params)
    assert ran == []
    assert not [e for e in events if isinstance(e, RunStarted)]


def test_a_param_is_named_as_a_served_param_is() -> None:
    with pytest.raises(ValueError, match="a parameter's name is 1 to 64"):
        Param("has space")


async def test_two_params_of_one_name_must_agree() -> None:
    calls = Calls()
    target = [
        calls.get_db_url(Param("env", default="staging")),
        calls.get_db_url(Param("env", default="production")),
    ]
    with pytest.raises(ValueError, match="two parameters named env differ"):
        await Engine().run(target)
    same = [
        calls.get_db_url(Param("env", default="a")),
        calls.get_db_url(Param("env", default="a")),
    ]
    assert await Engine().run(same, params={"env": "production"}) == ["prod_db_url"] * 2


async def test_run_if_false_skips_the_task_and_what_needs_it_not_as_a_failure() -> None:
    """Its SKIPPED says ``condition false``; its dependents' say it was skipped for that; the
    run succeeds and the function never runs."""
    calls = Calls()
    should_deploy: Param[bool] = Param("deploy", default=False)
    deployed = calls.deploy("prod").run_if(should_deploy)
    told = calls.announce(deployed)
    engine = Engine()
    events = _recorded(engine)
    with pytest.raises(DependencyMissingError) as missing:  # as the Cascade engine raises
        await engine.run(told)
    assert (missing.value.task_id, missing.value.dependency_id) == (told.task_id, deployed.task_id)
    assert missing.value.arg_name == "<Target Output>"
    skipped = {e.task_name: e.error for e in events if isinstance(e, TaskSkipped)}
    assert skipped == {
        "deploy": "condition false",
        "announce": f"upstream task 'deploy' ({deployed.task_id}) was skipped (condition false)",
    }
    assert calls.calls == {}
    assert await engine.run(told, params={"deploy": True}) == "DEPLOYED PROD"
    with pytest.raises(ParamError, match="parameter deploy must be bool"):
        await engine.run(told, params={"deploy": "yes"})


async def test_run_if_waits_for_a_lazy_condition() -> None:
    calls = Calls()
    engine = Engine()
    events = _recorded(engine)
    yes = calls.deploy("a").run_if(calls.wanted(True))
    no = calls.deploy("b").run_if(calls.wanted(False))
    with pytest.raises(DependencyMissingError, match=r"<Target Output>\[1\]"):
        await engine.run([yes, no])
    assert calls.calls["deploy"] == ["a"]
    completed = [e.task_name for e in events if isinstance(e, TaskCompleted)]
    assert sorted(completed) == ["deploy", "wanted", "wanted"]


async def test_a_changed_param_reruns_exactly_the_tasks_it_reaches() -> None:
    """A task's fingerprint takes a Param as the value it is bound to: an equal value is reused,
    another is run again, and a task it does not reach is reused either way."""
    calls = Calls()
    engine = Engine(results=f"memory://params-{uuid.uuid4().hex}")
    events = _recorded(engine)
    env: Param[str] = Param("env", default="staging")
    target = [calls.get_db_url(env), calls.deploy("fixed")]
    await engine.run(target)
    (first,) = [e.run_id for e in events if isinstance(e, RunStarted)]
    steps = await engine.plan(target, rerun_of=first, params={"env": "production"})
    assert {s.task_name: s.action for s in steps} == {"get_db_url": "run", "deploy": "reuse"}
    steps = await engine.plan(target, rerun_of=first)
    assert {s.task_name: s.action for s in steps} == {"get_db_url": "reuse", "deploy": "reuse"}


class Sources:
    """from_db, from_api (fed by fetch) and process, counting their calls."""

    def __init__(self) -> None:
        self.calls: list[str] = []

        @task(name="from_db")
        def from_db() -> str:
            self.calls.append("from_db")
            return "Data from DB"

        @task(name="fetch")
        async def fetch() -> str:
            self.calls.append("fetch")
            return "API"

        @task(name="from_api")
        async def from_api(raw: str) -> str:
            self.calls.append("from_api")
            return f"Data from {raw}"

        @task(name="process_data")
        def process_data(data: str) -> str:
            self.calls.append("process_data")
            return f"Final data: {data}"

        self.from_db, self.fetch, self.from_api, self.process_data = (
            from_db,
            fetch,
            from_api,
            process_data,
        )


async def test_a_router_runs_only_the_branch_its_selector_chooses() -> None:
    """The other branch, what only it needs included, ends SKIPPED ``not routed`` without
    running; the task that takes the router gets the chosen branch's result."""
    sources = Sources()
    source: Param[str] = Param("data_source", default="db")
    data: Router[str] = Router(
        selector=source, routes={"db": sources.from_db(), "api": sources.from_api(sources.fetch())}
    )
    result = sources.process_data(data=data)
    engine = Engine()
    events = _recorded(engine)
    assert await engine.run(result) == "Final data: Data from DB"
    assert sources.calls == ["from_db", "process_data"]
    skipped = sorted((e.task_name, e.error) for e in events if isinstance(e, TaskSkipped))
    assert skipped == [("fetch", "not routed"), ("from_api", "not routed")]
    sources.calls.clear()
    assert await engine.run(result, params={"data_source": "api"}) == "Final data: Data from API"
    assert sources.calls == ["fetch", "from_api", "process_data"]
    with pytest.raises(ParamError, match=r"parameter data_source must be one of 'db', 'api'"):
        await engine.run(result, params={"data_source": "ftp"})


async def test_a_router_chooses_by_a_task_result_and_a_shared_task_runs_anyway() -> None:
    """A lazy selector: the branches wait for it. A task another part of the graph needs too
    runs whichever route is chosen."""
    sources = Sources()

    @task
    async def pick(which: str) -> str:
        return which

    shared = sources.fetch()
    data: Router[str] = Router(
        pick("db"), {"db": sources.from_db(), "api": sources.from_api(shared)}
    )
    assert await Engine().run([sources.process_data(data), shared]) == [
        "Final data: Data from DB",
        "API",
    ]
    assert sorted(sources.calls) == ["fetch", "from_db", "process_data"]


async def test_a_lazy_selector_with_no_route_fails_the_task_that_takes_the_router() -> None:
    sources = Sources()

    @task
    async def pick() -> str:
        return "ftp"

    engine = Engine()
    events = _recorded(engine)
    data: Router[str] = Router(pick(), {"db": sources.from_db(), "api": sources.from_db()})
    with pytest.raises(
        TaskFailedError,
        match=r"RouteMissing: no matching route found for 'ftp' \(the routes: 'db', 'api'\)",
    ):
        await engine.run(sources.process_data(data))
    assert sources.calls == []
    assert sorted(e.error for e in events if isinstance(e, TaskSkipped)) == ["not routed"] * 2


async def test_a_task_that_takes_a_router_is_reused_by_a_rerun_with_the_same_selector() -> None:
    """Its fingerprint holds the selector and every route's: the same choice is reused, a
    changed one runs again (a router once made the task that takes it not reusable)."""
    sources = Sources()
    source: Param[str] = Param("data_source", default="db")
    data: Router[str] = Router(
        selector=source, routes={"db": sources.from_db(), "api": sources.from_api(sources.fetch())}
    )
    result = sources.process_data(data=data)
    engine = Engine(results=f"memory://results-{uuid.uuid4().hex}")
    events = _recorded(engine)
    assert await engine.run(result) == "Final data: Data from DB"
    (first,) = [e.run_id for e in events if isinstance(e, RunStarted)]
    sources.calls.clear()
    assert await engine.run(result, rerun_of=first) == "Final data: Data from DB"
    assert sources.calls == []
    assert await engine.run(result, rerun_of=first, params={"data_source": "api"}) == (
        "Final data: Data from API"
    )
    assert sources.calls == ["fetch", "from_api", "process_data"]
