"""What the Cascade engine's provider tests (its ``cascade-library``) assert, checked on ours.

Each test is one program of the original's library tests (named in its docstring), written again
for ``import cascade.runtime as cs`` with an engine made as ``cs.Engine()``: *as written*, with
no other change; *changed* names the row of docs/from-cascade.md the test relies on.
``cs.http.*`` and ``cs.io.s3.*`` are checked against loopback servers in test_providers_http.py
and test_providers_s3.py.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy
from sqlalchemy.pool import StaticPool

import cascade.runtime as cs
from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector

# --- test_config.py ---

CONFIG = """
project:
  name: Cascade
  version: 1.0.0
databases:
  - name: analytics
    url: url1
"""


@pytest.fixture
def config_file(tmp_path: Path) -> str:
    path = tmp_path / "config.yml"
    path.write_text(CONFIG, encoding="utf-8")
    return str(path)


async def test_load_yaml_gives_the_file_as_a_dict(config_file: str) -> None:
    """test_load_yaml_provider: as written."""
    result = await cs.Engine().run(cs.load_yaml(config_file))
    assert isinstance(result, dict)
    assert result["project"]["name"] == "Cascade"


async def test_lookup_follows_a_dotted_key(config_file: str) -> None:
    """test_lookup_provider_basic: as written."""
    version = cs.lookup(source=cs.load_yaml(config_file), key="project.version")
    assert await cs.Engine().run(version) == "1.0.0"


@cs.task
def provide_dict() -> dict[str, Any]:
    return {"a": {"b": 10}}


@cs.task
def provide_flat() -> dict[str, Any]:
    return {"a": 1}


async def test_lookup_on_a_task_s_dict() -> None:
    """test_lookup_on_static_dict: as written."""
    assert await cs.Engine().run(cs.lookup(source=provide_dict(), key="a.b")) == 10


async def test_a_missing_key_is_a_key_error() -> None:
    """test_lookup_missing_key_raises_error: as written."""
    with pytest.raises(KeyError):
        await cs.Engine().run(cs.lookup(source=provide_flat(), key="b"))


async def test_a_key_below_a_value_is_a_type_error() -> None:
    """test_lookup_invalid_path_raises_type_error: changed, the TypeError's text is ours."""
    with pytest.raises(TypeError, match=r"'nonexistent' of 'a\.nonexistent'"):
        await cs.Engine().run(cs.lookup(source=provide_flat(), key="a.nonexistent"))


# --- test_helpers.py ---


@cs.task
def get_val() -> str:
    return "dynamic_value"


async def test_dict_gathers_values_and_results() -> None:
    """test_dict_provider: as written."""
    workflow = cs.dict(static_key="static", dynamic_key=get_val())
    assert await cs.Engine().run(workflow) == {
        "static_key": "static",
        "dynamic_key": "dynamic_value",
    }


async def test_format_with_keywords_and_positions() -> None:
    """test_format_provider and test_format_provider_with_positional_args: as written."""

    @cs.task
    def get_name() -> str:
        return "World"

    @cs.task
    def get_first() -> str:
        return "first"

    @cs.task
    def get_second() -> str:
        return "second"

    engine = cs.Engine()
    assert await engine.run(cs.format("Hello, {name}!", name=get_name())) == "Hello, World!"
    positional = cs.format("Positional: {}, {}", get_first(), get_second())
    assert await engine.run(positional) == "Positional: first, second"


# --- test_template.py ---


def test_a_template_renders_values_and_results() -> None:
    """test_template_with_literals and test_template_with_lazy_result: as written."""
    assert cs.run(cs.template("Hello, {{ name }}!", name="World")) == "Hello, World!"

    @cs.task
    def get_username() -> str:
        return "Cascade"

    @cs.task
    def process_text(text: str) -> str:
        return text.upper()

    rendered = cs.template("Username is {{ user }}.", user=get_username())
    assert cs.run(process_text(rendered)) == "USERNAME IS CASCADE."


# --- test_io.py ---


async def test_read_write_and_exists(tmp_path: Path) -> None:
    """test_read_text_provider, test_write_text_provider and test_fs_exists_provider: as
    written."""
    path = tmp_path / "test.txt"
    engine = cs.Engine()
    await engine.run(cs.write.text(str(path), "written by cascade"))
    assert path.read_text(encoding="utf-8") == "written by cascade"
    path.write_text("hello cascade", encoding="utf-8")
    assert await engine.run(cs.read.text(str(path))) == "hello cascade"
    assert await engine.run(cs.fs.exists(str(path))) is True
    assert await engine.run(cs.fs.exists(str(path) + ".missing")) is False


def test_a_dotted_name_s_first_part_is_a_namespace() -> None:
    """test_provider_registry_namespace_resolution: changed, the registry is not public: its
    namespace is ``cs.read``, and ``cs.read.text`` is a task named as its provider
    (``read.text``; the original's task was ``read_text``)."""
    factory = cs.read.text
    assert isinstance(factory, cs.Task)
    assert factory.name == "read.text"


# --- test_time_provider.py ---


async def test_wait_does_not_hold_back_other_tasks() -> None:
    """test_wait_is_non_blocking: as written, checked by order, not by time (the other task
    ends before the wait does)."""
    ended: list[str] = []

    @cs.task
    def immediate_task() -> str:
        ended.append("immediate")
        return "immediate"

    @cs.task
    def after_wait(value: None) -> None:
        ended.append("wait")
        return value

    @cs.task
    def wrapper(a: Any, b: Any) -> list[Any]:
        return [a, b]

    results = await cs.Engine().run(wrapper(after_wait(cs.wait(0.5)), immediate_task()))
    assert results == [None, "immediate"]
    assert ended == ["immediate", "wait"]


async def test_wait_takes_its_delay_from_a_task() -> None:
    """test_wait_accepts_lazy_result: as written."""

    @cs.task
    def get_delay() -> float:
        return 0.05

    loop = asyncio.get_running_loop()
    start = loop.time()
    assert await cs.Engine().run(cs.wait(get_delay())) is None
    assert loop.time() - start >= 0.05


# --- test_shell.py ---


def test_shell_gives_stdout() -> None:
    """test_shell_task_success and test_shell_task_integration: as written."""
    assert cs.run(cs.shell("echo 'Hello, Cascade!'")) == "Hello, Cascade!"

    @cs.task
    def process_output(text: str) -> str:
        return f"Processed: {text.upper()}"

    assert cs.run(process_output(cs.shell("echo 'data'"))) == "Processed: DATA"


def test_a_failing_command_is_a_runtime_error() -> None:
    """test_shell_task_failure_with_check: changed, the text says ``exited with 1`` (the
    original's ``failed with exit code 1``)."""
    with pytest.raises(RuntimeError, match="exited with 1"):
        cs.run(cs.shell("exit 1"))


def test_shell_maps_over_commands() -> None:
    """test_shell_map: as written."""

    @cs.task
    def join_results(items: list[str]) -> str:
        return "|".join(items)

    assert cs.run(join_results(cs.shell.map(command=["echo 'foo'", "echo 'bar'"]))) == "foo|bar"


# --- test_stdio.py ---


async def test_stdout_write(capsys: pytest.CaptureFixture[str]) -> None:
    """test_stdout_write: as written."""
    await cs.Engine().run(cs.io.stdout.write("Hello, Interactive World!"))
    assert capsys.readouterr().out == "Hello, Interactive World!\n"


async def test_stdin_read_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """test_stdin_read_line: as written."""
    monkeypatch.setattr("sys.stdin", io.StringIO("test input\n"))

    @cs.task
    def process_input(user_text: str) -> str:
        return f"Received: {user_text.upper()}"

    assert await cs.Engine().run(process_input(cs.io.stdin.read_line())) == "Received: TEST INPUT"


async def test_a_prompt_then_its_answer(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """test_prompt_composition: as written (read_line waits for the write it is given)."""
    monkeypatch.setattr("sys.stdin", io.StringIO("Cascade User\n"))

    @cs.task
    def create_greeting(name: str) -> str:
        return f"Hello, {name}!"

    prompt = cs.io.stdout.write("Please enter your name: ")
    result = await cs.Engine().run(create_greeting(cs.io.stdin.read_line(prompt)))
    assert capsys.readouterr().out == "Please enter your name: \n"
    assert result == "Hello, Cascade User!"


# --- test_subflow.py ---

SUBFLOW = """
import cascade.runtime as cs

multiplier = cs.Param("multiplier", default=1)


@cs.task
def process(val, m):
    return val * m


result_node = process(10, multiplier)
"""


@pytest.fixture
def subflow_file(tmp_path: Path) -> str:
    path = tmp_path / "my_flow.py"
    path.write_text(SUBFLOW, encoding="utf-8")
    return str(path)


async def test_a_subflow_runs_with_params(subflow_file: str) -> None:
    """test_subflow_execution: as written (the subflow file's import line changed too)."""

    @cs.task
    def finalize(val: int) -> str:
        return f"Final: {val}"

    sub = cs.subflow(path=subflow_file, target="result_node", params={"multiplier": 5})
    assert await cs.Engine().run(finalize(sub)) == "Final: 50"


async def test_a_missing_subflow_file_is_file_not_found() -> None:
    """test_subflow_file_not_found: as written."""
    with pytest.raises(FileNotFoundError):
        await cs.Engine().run(cs.subflow(path="non_existent.py", target="foo"))


async def test_a_missing_subflow_target_is_a_value_error(subflow_file: str) -> None:
    """test_subflow_target_not_found: changed, the ValueError's text is ours (``has no
    'missing_var'``)."""
    with pytest.raises(ValueError, match="has no 'missing_var'"):
        await cs.Engine().run(cs.subflow(path=subflow_file, target="missing_var"))


# --- test_signal_provider.py ---


async def test_recv_waits_for_a_message_on_its_topic() -> None:
    """test_recv_blocks_and_wakes_up: changed, the engine is ``cs.Engine(connector)`` and the
    topic is bound to the run's org and project (``cascade/signal/{org}/{project}/{topic}``)."""
    broker = InMemoryBroker()
    sender = InMemoryConnector(broker, presence=False)
    await sender.connect()
    engine = cs.Engine(InMemoryConnector(broker, presence=False), heartbeat_interval=None)
    waiting = asyncio.Event()
    engine.events.subscribe(
        lambda event: waiting.set() if isinstance(event, cs.TaskRunning) else None
    )

    @cs.task
    def downstream_task(signal: Any) -> Any:
        return signal

    run = asyncio.create_task(engine.run(downstream_task(cs.recv("firefly/sync/pulse"))))
    await asyncio.wait_for(waiting.wait(), 10)
    assert not run.done()
    topic = "cascade/signal/local/default/firefly/sync/pulse"
    # retained: whether recv has subscribed yet or not, it gets it
    await sender.publish(topic, {"source": "firefly-01"}, qos=1, retain=True)
    assert await asyncio.wait_for(run, 10) == {"source": "firefly-01"}
    await sender.publish(topic, b"", qos=1, retain=True)
    await sender.disconnect()


async def test_recv_times_out_as_a_timeout_error() -> None:
    """test_recv_times_out: as written, the engine made as ``cs.Engine(connector)``."""
    engine = cs.Engine(InMemoryConnector(InMemoryBroker(), presence=False), heartbeat_interval=None)
    with pytest.raises(asyncio.TimeoutError):
        await engine.run(cs.recv("firefly/no-reply", timeout=0.05))


# --- test_sql.py ---


@cs.resource
def sqlite_db() -> Iterator[Any]:
    engine = sqlalchemy.create_engine(
        "sqlite:///:memory:", connect_args={"check_same_thread": False}, poolclass=StaticPool
    )
    with engine.connect() as conn:
        conn.execute(sqlalchemy.text("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)"))
        conn.execute(sqlalchemy.text("INSERT INTO users (name) VALUES ('Alice')"))
        conn.execute(sqlalchemy.text("INSERT INTO users (name) VALUES ('Bob')"))
        conn.commit()
    yield engine
    engine.dispose()


async def test_sql_on_a_registered_resource() -> None:
    """test_sql_query_success and test_sql_with_params: changed, ``cs.providers.sql.text`` is
    SQLAlchemy's ``sqlalchemy.text``."""
    engine = cs.Engine()
    engine.register(sqlite_db)
    users = await engine.run(cs.sql("SELECT * FROM users ORDER BY name", db="sqlite_db"))
    assert [row["name"] for row in users] == ["Alice", "Bob"]
    query = "SELECT * FROM users WHERE name = :name"
    bob = await engine.run(cs.sql(query, db="sqlite_db", params={"name": "Bob"}))
    assert [row["name"] for row in bob] == ["Bob"]


async def test_sql_on_a_resource_not_registered() -> None:
    """test_sql_missing_resource: changed, ``ResourceMissing`` (a ``LookupError``, the
    original's a ``NameError``), raised before any task runs."""
    with pytest.raises(cs.ResourceMissing, match="non_existent_db"):
        await cs.Engine().run(cs.sql("SELECT 1", db="non_existent_db"))
