"""The Cascade engine's documented programs (its tutorial, how-to guides, concepts and CLI
reference), each run on ours with its import line changed.

Each test names the page and section it comes from. *As written*: the program runs with
``import cascade.runtime as cs``, its engine made as ``cs.Engine()`` (or run by ``cs.run``) and
its events read from ``engine.events``; *changed*: it needs a row of docs/from-cascade.md. The
guides that call what the original itself does not have (``cs.http(url).json()``, ``cs.file``,
``cs.cli``) are run with the names both have.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import cascade.runtime as cs


def run_program(source: str, where: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``python app.py ARGS`` for the program ``source``, in ``where``."""
    script = where / "app.py"
    script.write_text(textwrap.dedent(source), encoding="utf-8")
    return subprocess.run(
        [sys.executable, str(script), *args],
        cwd=where,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


# --- tutorial/getting-started.md ---


def test_the_tutorial_s_first_program(tmp_path: Path) -> None:
    """Getting started, step 1: as written (``cs.format`` over a ``Param`` and ``cs.shell``)."""
    for name in ("a.txt", "b.txt"):
        (tmp_path / name).write_text("x", encoding="utf-8")
    done = run_program(
        """
        import cascade.runtime as cs

        user_name = cs.Param("name", default="Guest")
        file_count = cs.shell("ls -1 | wc -l")
        greeting = cs.format(
            "Hello, {name}! There are {count} files in this directory.",
            name=user_name,
            count=file_count,
        )

        if __name__ == "__main__":
            final_message = cs.run(greeting, params={"name": "Developer"})
            print(final_message)
        """,
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    # a.txt, b.txt and app.py itself
    assert done.stdout.strip() == "Hello, Developer! There are 3 files in this directory."


# --- how-to-guides/advanced-workflows.md ---


def test_a_shell_result_feeds_a_task(monkeypatch: pytest.MonkeyPatch) -> None:
    """Seamless mixing: as written (run in this repository, a git work tree)."""
    monkeypatch.chdir(Path(__file__).parent)
    commit_hash = cs.shell("git rev-parse --short HEAD")

    @cs.task
    def create_build_artifact(version: str) -> str:
        return f"artifact-{version}.zip"

    artifact = cs.run(create_build_artifact(version=commit_hash))
    assert artifact.startswith("artifact-")
    assert artifact.endswith(".zip")
    assert len(artifact) > 13


def test_a_param_with_a_default_and_its_override() -> None:
    """Parameterizing: as written, its commented ``Engine().run(db_url, params=...)`` run
    by ``cs.run(db_url, params=...)``."""
    env: cs.Param[str] = cs.Param("env", default="staging", description="target environment")

    @cs.task
    def get_db_url(environment: str) -> str:
        if environment == "production":
            return "prod_db_url"
        return "stage_db_url"

    db_url = get_db_url(environment=env)
    assert cs.run(db_url) == "stage_db_url"
    assert cs.run(db_url, params={"env": "production"}) == "prod_db_url"


def test_run_if_on_a_bool_param_never_runs_the_command() -> None:
    """Conditional execution: as written; the command never runs, so the run says its target
    has no result (as the original's ``DependencyMissingError``)."""
    should_deploy: cs.Param[bool] = cs.Param("deploy", default=False, type=bool)
    deployment_status = cs.shell("kubectl apply -f deployment.yaml", check=True).run_if(
        should_deploy
    )
    with pytest.raises(cs.DependencyMissingError):
        cs.run(deployment_status, params={"deploy": False})


def test_a_map_then_its_summary() -> None:
    """Mapping: as written."""
    files_to_process = ["data1.csv", "data2.csv", "data3.csv"]

    @cs.task
    def process_file(filepath: str) -> str:
        return f"processed_{filepath}"

    @cs.task
    def summarize(processed: list[str]) -> str:
        return f"Processed {len(processed)} files."

    final_summary = summarize(processed=process_file.map(filepath=files_to_process))
    assert cs.run(final_summary) == "Processed 3 files."


def test_a_router_on_a_param_with_a_default() -> None:
    """Dynamic routing: as written, run as the Param section's."""
    data_source_type: cs.Param[str] = cs.Param("data_source", default="db")

    @cs.task
    def from_db() -> str:
        return "Data from DB"

    @cs.task
    def from_api() -> str:
        return "Data from API"

    data_input: cs.Router[str] = cs.Router(
        selector=data_source_type, routes={"db": from_db(), "api": from_api()}
    )

    @cs.task
    def process_data(data: str) -> str:
        return f"Final data: {data}"

    result = process_data(data=data_input)
    assert "API" in cs.run(result, params={"data_source": "api"})
    assert cs.run(result) == "Final data: Data from DB"


# --- how-to-guides/defining-computations.md and using-providers.md ---


def test_a_task_is_a_lazy_result_until_run() -> None:
    """Imperative, ``@cs.task``: as written."""

    @cs.task
    def analyze_data(data: list[int]) -> dict[str, float]:
        if not data:
            return {}
        return {"mean": sum(data) / len(data)}

    analysis_result = analyze_data(data=[1, 2, 3, 4, 5])
    assert isinstance(analysis_result, cs.LazyResult)
    assert cs.run(analysis_result) == {"mean": 3.0}


def test_load_yaml_then_lookup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Declarative, config providers (and using-providers, ``cs.load_yaml``/``cs.lookup``):
    as written."""
    monkeypatch.chdir(tmp_path)
    Path("cascade.yml").write_text('project:\n  name: "MyApp"\n', encoding="utf-8")
    config_source = cs.load_yaml("cascade.yml")
    project_name = cs.lookup(source=config_source, key="project.name")
    assert cs.run(project_name) == "MyApp"


def test_a_key_made_by_a_template(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Dynamic configuration keys: as written."""
    monkeypatch.chdir(tmp_path)
    Path("config.yml").write_text(
        "db:\n  url:\n    staging: stage-url\n    production: prod-url\n", encoding="utf-8"
    )
    config_source = cs.load_yaml("config.yml")
    env: cs.Param[str] = cs.Param("env", default="staging")
    db_url_key = cs.template("db.url.{{ environment }}", environment=env)
    db_url = cs.lookup(source=config_source, key=db_url_key)
    assert cs.run(db_url) == "stage-url"
    assert cs.run(db_url, params={"env": "production"}) == "prod-url"


def test_shell_with_check() -> None:
    """Using providers, ``cs.shell``: as written."""
    python_version = cs.shell(f"{sys.executable} --version", check=True)
    assert cs.run(python_version).startswith("Python 3.")


# --- how-to-guides/dependency-injection.md ---


class Connection:
    def __init__(self) -> None:
        self.closed = False

    def query(self, sql: str) -> str:
        return f"rows of {sql}"

    def close(self) -> None:
        self.closed = True


opened: list[Connection] = []


def connect_to_db() -> Connection:
    opened.append(Connection())
    return opened[-1]


@cs.resource
def database_connection() -> Iterator[Connection]:
    conn = connect_to_db()
    yield conn
    conn.close()


def test_injection_in_the_signature() -> None:
    """The recommended pattern: as written, ``cs.Engine(...)`` made as ``cs.Engine()`` and its
    run awaited (``asyncio.run``), as the original's had to be too."""

    @cs.task
    def get_user(user_id: int, db: Connection = cs.inject("database_connection")) -> str:
        return db.query(f"SELECT * FROM users WHERE id={user_id}")

    user_data = get_user(123)
    engine = cs.Engine()
    engine.register(database_connection)
    assert asyncio.run(engine.run(user_data)) == "rows of SELECT * FROM users WHERE id=123"
    assert opened[-1].closed


def test_injection_at_the_call() -> None:
    """The provider author's pattern (``_sql_task(query=query, conn=cs.inject(db))``): as
    written, the resource's name chosen where the task is called."""

    @cs.task
    def _query_task(query: str, conn: Any) -> str:
        return str(conn.query(query))

    def query_factory(query: str, db: str) -> cs.LazyResult[str]:
        return _query_task(query=query, conn=cs.inject(db))

    engine = cs.Engine()
    engine.register(database_connection)
    assert asyncio.run(engine.run(query_factory("SELECT 1", "database_connection"))) == (
        "rows of SELECT 1"
    )


# --- how-to-guides/improving-robustness.md ---


def test_a_file_existence_cache_skips_the_command_once_the_file_is_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Caching: changed, ``from cascade.adapters.caching import FileExistenceCache`` is
    ``cs.FileExistenceCache`` (and the guide's ``sleep 2`` left out)."""
    monkeypatch.chdir(tmp_path)
    create_report_task = cs.shell("echo 'Generating report...' && touch report.txt")
    cache_policy = cs.FileExistenceCache(target_path="report.txt")
    cached_task = create_report_task.with_cache(cache_policy)
    assert cs.run(cached_task) == "Generating report..."
    assert Path("report.txt").exists()
    events: list[cs.Event] = []
    engine = cs.Engine()
    engine.events.subscribe(events.append)
    asyncio.run(engine.run(cached_task))
    assert [type(event).__name__ for event in events if isinstance(event, cs.TaskEvent)] == [
        "TaskCached"
    ]


def test_a_retry_with_backoff() -> None:
    """Retries: changed, the guide's ``cs.http(url)`` is none of the original's names either
    (``cs.http.get`` is); a flaky task stands for it. ``max_attempts=3`` is 3 attempts, as the
    guide says."""
    calls = 0

    @cs.task
    def api_call() -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise ConnectionError("flaky")
        return "data"

    robust_api_call = api_call().with_retry(max_attempts=3, delay=0.01, backoff=2.0)
    assert cs.run(robust_api_call) == "data"
    assert calls == 3


@cs.task
def train_model() -> str:
    return "Model Trained"


def test_system_resources_and_constraints() -> None:
    """Resource constraints: as written (``cs.run(target, system_resources=...)``); a system
    without the memory fails the task at once."""
    system_config = {"gpu_slots": 1, "memory_gb": 32}
    constrained_task = train_model().with_constraints(gpu_slots=1, memory_gb=16)
    assert cs.run(constrained_task, system_resources=system_config) == "Model Trained"
    with pytest.raises(cs.TaskFailedError, match="memory_gb"):
        cs.run(
            train_model().with_constraints(gpu_slots=1, memory_gb=16),
            system_resources={"gpu_slots": 1, "memory_gb": 8},
        )


def test_two_tasks_asking_the_one_gpu_run_one_at_a_time() -> None:
    """Resource constraints, "they will be forced to run serially": as written."""
    running = 0
    most = 0

    @cs.task
    async def train(i: int) -> int:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.01)
        running -= 1
        return i

    jobs = [train(i).with_constraints(gpu_slots=1) for i in range(3)]
    assert cs.run(jobs, system_resources={"gpu_slots": 1}) == [0, 1, 2]
    assert most == 1


def test_a_constraint_from_a_task() -> None:
    """Dynamic constraints (and concepts, control flow 2): as written."""

    @cs.task
    def calculate_required_cpu() -> int:
        return 4

    job = train_model().with_constraints(cpu_cores=calculate_required_cpu())
    assert cs.run(job, system_resources={"cpu_cores": 4}) == "Model Trained"
    with pytest.raises(cs.TaskFailedError, match="cpu_cores"):
        cs.run(
            train_model().with_constraints(cpu_cores=calculate_required_cpu()),
            system_resources={"cpu_cores": 2},
        )


# --- concepts/control_vs_data_flow.md ---


def test_data_flow_and_control_flow_drawn_apart() -> None:
    """Data flow and run_if: as written; ``cs.visualize`` draws the data edge plain and the
    condition's dashed."""

    @cs.task
    def get_user_id() -> int:
        return 101

    @cs.task
    def fetch_user_data(user_id: int) -> dict[str, str]:
        return {"name": "Alice"}

    @cs.task
    def should_deploy() -> bool:
        return True

    @cs.task
    def deploy() -> str:
        return "deployed"

    assert cs.run(fetch_user_data(get_user_id())) == {"name": "Alice"}
    assert cs.run(deploy().run_if(should_deploy())) == "deployed"
    dot = cs.visualize([fetch_user_data(get_user_id()), deploy().run_if(should_deploy())])
    edges = [line for line in dot.splitlines() if "->" in line]
    assert any('label="0"' in edge and "dashed" not in edge for edge in edges)
    assert any("dashed" in edge for edge in edges)


# --- reference/cli-tools.md ---

GREETER = """
import cascade.runtime as cs

name_param = cs.Param("name", description="the name of the one to greet")
count_param = cs.Param("count", default=1, type=int, description="how many times")


@cs.task
def generate_greeting(name: str, count: int) -> str:
    return "\\n".join([f"Hello, {name}!" for _ in range(count)])


@cs.task
def print_to_console(greeting: str) -> None:
    print(greeting)


workflow = print_to_console(generate_greeting(name=name_param, count=count_param))

if __name__ == "__main__":
    app = cs.create_cli(workflow)
    app()
"""


def test_a_command_line_from_params(tmp_path: Path) -> None:
    """The CLI tools reference: changed, its ``cs.cli(workflow)`` is no name of the original's
    either (its SDK has ``cs.create_cli``), so the program calls ``cs.create_cli``; ``--help``
    lists each param with its description, a param without a default is required."""
    helped = run_program(GREETER, tmp_path, "--help")
    assert helped.returncode == 0, helped.stderr
    assert "--name" in helped.stdout
    assert "the name of the one to greet" in helped.stdout
    assert "--count" in helped.stdout
    twice = run_program(GREETER, tmp_path, "--name", "Cascade", "--count", "2")
    assert twice.returncode == 0, twice.stderr
    assert twice.stdout.splitlines()[:2] == ["Hello, Cascade!", "Hello, Cascade!"]
    once = run_program(GREETER, tmp_path, "--name", "World")
    assert once.stdout.splitlines()[0] == "Hello, World!"
    missing = run_program(GREETER, tmp_path)
    assert missing.returncode == 2
    assert "--name" in missing.stderr
