"""What the Cascade engine's spec and SDK tests assert of its names, checked on ours.

Each test is one program of the original's ``cascade-spec`` and ``cascade-sdk`` tests (named in
its docstring), written again for ``import cascade.runtime as cs``: *as written*, with that,
``cs.Engine()`` and ``engine.events`` only; *changed* names the row of docs/from-cascade.md the
test relies on.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
from collections.abc import Iterator

import pytest

import cascade.runtime as cs

# --- test_task.py, test_async.py ---


def test_a_call_of_a_task_is_a_lazy_result() -> None:
    """test_task_decorator_and_lazy_result: as written."""

    @cs.task
    def add(a: int, b: int) -> int:
        return a + b

    result = add(1, 2)
    assert isinstance(result, cs.LazyResult)
    assert result.task.name == "add"
    assert result.args == (1, 2)
    assert result.kwargs == {}


def test_a_task_knows_whether_it_is_a_coroutine_function() -> None:
    """test_task_detects_sync_function, test_task_detects_async_function and
    test_async_task_returns_lazy_result: as written."""

    @cs.task
    def sync_fn() -> int:
        return 1

    @cs.task
    async def async_fn(x: int) -> int:
        return x + 1

    assert sync_fn.is_async is False
    assert async_fn.is_async is True
    result = async_fn(10)
    assert result.task.name == "async_fn"
    assert result.args == (10,)


# --- test_routing.py ---


def test_a_router_takes_the_route_its_selector_names() -> None:
    """test_router_selects_correct_path: as written."""

    @cs.task
    def get_source() -> str:
        return "a"

    @cs.task
    def task_a() -> str:
        return "Result A"

    @cs.task
    def task_b() -> str:
        return "Result B"

    @cs.task
    def process(data: str) -> str:
        return f"Processed: {data}"

    router: cs.Router[str] = cs.Router(selector=get_source(), routes={"a": task_a(), "b": task_b()})
    assert cs.run(process(data=router)) == "Processed: Result A"


def test_a_router_on_a_param() -> None:
    """test_router_with_params: as written."""
    mode: cs.Param[str] = cs.Param("mode")

    @cs.task
    def prod_task() -> str:
        return "PROD"

    @cs.task
    def dev_task() -> str:
        return "DEV"

    @cs.task
    def deploy(env_name: str) -> str:
        return f"Deploying to {env_name}"

    router: cs.Router[str] = cs.Router(
        selector=mode, routes={"production": prod_task(), "development": dev_task()}
    )
    flow = deploy(env_name=router)
    assert cs.run(flow, params={"mode": "development"}) == "Deploying to DEV"
    assert cs.run(flow, params={"mode": "production"}) == "Deploying to PROD"


def test_a_param_no_route_takes_is_a_value_error() -> None:
    """test_router_invalid_selection: as written (raised before any task runs)."""
    selector: cs.Param[str] = cs.Param("sel")

    @cs.task
    def t1() -> int:
        return 1

    @cs.task
    def consumer(x: int) -> int:
        return x

    router: cs.Router[int] = cs.Router(selector=selector, routes={"a": t1()})
    with pytest.raises(ValueError, match="no matching route found"):
        cs.run(consumer(router), params={"sel": "invalid_key"})


# --- test_constraint.py ---


def test_with_constraints_is_a_method_of_a_call() -> None:
    """test_lazy_result_constraint_chaining and test_resource_constraint_definition: changed,
    ``cs.with_constraints(...)`` (a free function making a ``ResourceConstraint``) is the
    method on the task or its call, and it is honoured (a run without the capacity fails)."""

    @cs.task
    def heavy_task() -> str:
        return "done"

    lazy = heavy_task().with_constraints(cpu_cores=4)
    assert lazy is not None
    assert cs.run(lazy, system_resources={"cpu_cores": 4}) == "done"
    with pytest.raises(cs.TaskFailedError, match="cpu_cores"):
        cs.run(heavy_task().with_constraints(cpu_cores=8), system_resources={"cpu_cores": 4})


def test_a_constraint_is_on_the_graph() -> None:
    """test_constraint_propagation_to_node: changed, a graph's nodes are not public: a lazy
    amount's task is a dependency of the call (drawn by ``cs.visualize``) and the amount is
    honoured."""

    @cs.task
    def heavy_task() -> str:
        return "done"

    @cs.task
    def io_needed() -> int:
        return 2

    target = heavy_task().with_constraints(io_bandwidth=io_needed())
    assert "heavy_task-" in cs.visualize(target, format="text").splitlines()[-1]
    assert "<- io_needed-" in cs.visualize(target, format="text")
    assert cs.run(target, system_resources={"io_bandwidth": 2}) == "done"
    with pytest.raises(cs.TaskFailedError, match="io_bandwidth"):
        cs.run(target, system_resources={"io_bandwidth": 1})


# --- test_input_context.py ---


def test_params_and_envs_are_found_from_the_target() -> None:
    """test_param_factory_registration and test_env_factory_registration: changed, a
    workflow's params are its graph's (no ``cs.get_current_context()`` to read or clear):
    ``cs.create_cli`` and ``cs.dry_run`` find them from the target."""
    env: cs.Param[str] = cs.Param("env", default="dev", description="Environment")
    key = cs.Env("API_KEY", default="none")

    @cs.task
    def show(e: str, k: str) -> str:
        return f"{e}:{k}"

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        cli = cs.create_cli(show(env, key))
        with pytest.raises(SystemExit):
            cli(["--help"])
    assert "--env" in out.getvalue()
    assert "Environment" in out.getvalue()
    assert cs.run(show(env, key), params={"env": "prod"}) == "prod:none"


# --- test_resource.py ---


@cs.resource
def config() -> Iterator[dict[str, str]]:
    yield {"db_url": "production_url"}


class Connection:
    def __init__(self, url: str) -> None:
        self.url = url
        self.closed = False


@cs.resource
def db_connection(config: dict[str, str] = cs.inject("config")) -> Iterator[Connection]:
    connection = Connection(config["db_url"])
    yield connection
    connection.closed = True


@cs.task
def task_using_resource(conn: Connection = cs.inject("db_connection")) -> str:
    return conn.url


def test_a_task_gets_its_injected_resource() -> None:
    """test_di_end_to_end: as written, the engine made as ``cs.Engine()``."""
    engine = cs.Engine()
    engine.register(config)
    engine.register(db_connection)
    assert asyncio.run(engine.run(task_using_resource())) == "production_url"


def test_resources_are_acquired_in_order_and_released_in_reverse() -> None:
    """test_resource_events: as written, ``bus.subscribe(Event, ...)`` being
    ``engine.events.subscribe(...)``."""
    events: list[cs.Event] = []
    engine = cs.Engine()
    engine.events.subscribe(events.append)
    engine.register(config)
    engine.register(db_connection)
    asyncio.run(engine.run(task_using_resource()))
    acquired = [e.resource_name for e in events if isinstance(e, cs.ResourceAcquired)]
    released = [e.resource_name for e in events if isinstance(e, cs.ResourceReleased)]
    assert acquired.index("config") < acquired.index("db_connection")
    assert released.index("db_connection") < released.index("config")


def test_a_resource_is_overridden_for_a_block() -> None:
    """test_resource_override: changed, ``engine.resource_container.override(name, fake)`` is
    ``cs.override_resource(engine, name, fake)``."""

    @cs.resource
    def mock_db_connection() -> Iterator[Connection]:
        yield Connection("mock_db_url")

    engine = cs.Engine()
    engine.register(config)
    engine.register(db_connection)
    with cs.override_resource(engine, "db_connection", mock_db_connection):
        assert asyncio.run(engine.run(task_using_resource())) == "mock_db_url"
    assert asyncio.run(engine.run(task_using_resource())) == "production_url"


def test_a_resource_must_be_a_generator() -> None:
    """test_resource_must_be_generator: as written (``ResourceError`` is a ``TypeError``)."""
    with pytest.raises(TypeError, match="must be a generator"):

        @cs.resource  # type: ignore[arg-type]  # the mistake this test makes
        def not_a_generator() -> str:
            return "foo"


# --- test_auto_gathering.py ---


@cs.task(pure=True)
def task_one() -> int:
    return 1


@cs.task(pure=True)
def task_two() -> str:
    return "two"


def test_a_list_target_gives_a_list() -> None:
    """test_run_with_list_of_lazy_results: as written."""
    assert cs.run([task_one(), task_two()]) == [1, "two"]


def test_a_tuple_target_gives_a_tuple() -> None:
    """test_run_with_tuple_of_lazy_results: changed, a tuple's results are a tuple (the
    original made them a list): ``list(cs.run(...))``."""
    assert cs.run((task_one(), task_two())) == (1, "two")
    assert list(cs.run((task_one(), task_two()))) == [1, "two"]


def test_a_plain_value_in_a_list_target_is_refused() -> None:
    """test_run_with_mixed_list_of_lazy_results_and_literals: changed, a value that is no lazy
    result is refused before anything runs (the original passed it through): keep it out of
    the target."""
    with pytest.raises(cs.InvalidTargetError):
        cs.run([task_one(), "I am a literal", task_two()])


def test_an_empty_list_target_gives_an_empty_list() -> None:
    """test_run_with_empty_list: as written."""
    assert cs.run([]) == []


# --- tools/test_cli.py ---


def test_a_command_line_from_a_workflow_s_params(capsys: pytest.CaptureFixture[str]) -> None:
    """test_cli_generator_from_context: changed, the command line is argparse's, called as
    ``cli([...])`` (the original's was a Typer app)."""
    name: cs.Param[str] = cs.Param("name", description="User name")
    count: cs.Param[int] = cs.Param("count", default=1, type=int)

    @cs.task
    def greet(n: str, c: int) -> str:
        return f"Hello {n} " * c

    cli = cs.create_cli(greet(name, count))
    with pytest.raises(SystemExit):
        cli(["--help"])
    help_text = capsys.readouterr().out
    assert "--name" in help_text
    assert "User name" in help_text
    assert "--count" in help_text
    assert cli(["--name", "World", "--count", "2"]) == "Hello World Hello World "
    assert "Hello World Hello World" in capsys.readouterr().out


# --- tools/test_visualize.py ---


def test_a_diamond_as_dot() -> None:
    """test_visualize_diamond_graph: changed, nodes are named by our task ids (the original's
    structural ids), so the test looks for labels and edges by argument."""

    @cs.task
    def t_a() -> int:
        return 1

    @cs.task
    def t_b(x: int) -> int:
        return x + 1

    @cs.task
    def t_c(x: int) -> int:
        return x * 2

    @cs.task
    def t_d(y: int, z: int) -> int:
        return y + z

    r_a = t_a()
    dot = cs.visualize(t_d(t_b(r_a), z=t_c(r_a)))
    assert dot.startswith("digraph CascadeWorkflow {")
    assert dot.rstrip().endswith("}")
    assert 'label="t_a\\n(task)"' in dot
    assert 'label="t_b\\n(task)"' in dot
    assert 'label="z"' in dot


def test_conditions_and_constraints_are_drawn() -> None:
    """test_visualize_special_edge_types: changed, a condition's edge is dashed (the original
    also grey, labelled ``run_if``); a lazy constraint amount's edge is drawn too."""

    @cs.task
    def t_condition() -> bool:
        return True

    @cs.task
    def t_constraint_source() -> int:
        return 2

    @cs.task
    def t_main(data_in: int) -> int:
        return data_in

    data_source = cs.task(lambda: 1, name="data_source")()  # type: ignore[call-overload]
    target = (
        t_main(data_in=data_source)
        .run_if(t_condition())
        .with_constraints(cpu=t_constraint_source())
    )
    dot = cs.visualize(target)
    assert 'label="data_in"' in dot
    assert "dashed" in dot
    assert 't_constraint_source\\n(task)"' in dot


def test_a_list_target_is_drawn() -> None:
    """test_visualize_with_list_of_lazy_results: changed, no gather node is drawn (ours has
    none)."""

    @cs.task(pure=True)
    def t_a() -> str:
        return "a"

    @cs.task(pure=True)
    def t_b() -> str:
        return "b"

    dot = cs.visualize([t_a(), t_b()])
    assert 'label="t_a\\n(task)"' in dot
    assert 'label="t_b\\n(task)"' in dot


# --- the SDK's names ---


def test_the_sdk_s_names_are_ours_but_three_documented_ones() -> None:
    """The original's ``cascade.__all__``: each name is ``cs.<name>`` here, but for the three
    docs/from-cascade.md says how to replace."""
    names = [
        "task", "Param", "Env", "run", "dry_run", "visualize", "sequence", "pipeline",
        "Router", "Jump", "select_jump", "bind",
        "resource", "inject", "LazyResult", "Engine", "Event", "to_json",
        "from_json", "override_resource", "create_cli", "DependencyMissingError",
    ]  # fmt: skip
    assert [name for name in names if name not in cs.__all__] == []
    for replaced in ("with_constraints", "get_current_context", "MessageBus"):
        assert replaced not in cs.__all__
        with pytest.raises(AttributeError, match=replaced):
            getattr(cs, replaced)
