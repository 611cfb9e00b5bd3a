"""`cascade rerun RUN --entrypoint PATH.py:FUNCTION --dry-run`: what the plan says of params,
--all and --from, and what is refused (the rerun itself, on a real broker:
tests/integration/test_rerun_entrypoint_over_mqtt.py)."""

from __future__ import annotations

import asyncio
import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from cascade.cli import app
from cascade.runtime import DependencyMissingError, Engine, TaskFailedError

SCRIPT = """\
from cascade.runtime import Param, task


@task
def extract(n: int) -> list[int]:
    return list(range(n))


@task
def transform(rows: list[int]) -> list[int]:
    if 3 in rows:
        raise ValueError("row 3 has a negative amount")
    return rows


@task
def load(rows: list[int]) -> int:
    return sum(rows)


def etl(n: int = 5):
    return load(transform(extract(n)))


graph = load(transform(extract(Param("n", default=5))))
"""


@pytest.fixture
def failed(tmp_path: Path) -> str:
    """The id of a run of ``etl.py``'s ``etl()`` that failed at transform, its results kept in
    ``results``."""
    (tmp_path / "etl.py").write_text(SCRIPT, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("etl_under_test", tmp_path / "etl.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    engine = Engine(results=str(tmp_path / "results"))
    with pytest.raises(TaskFailedError) as failure:
        asyncio.run(engine.run(module.etl()))
    run_id = failure.value.run_id
    assert run_id is not None
    return run_id


def _rerun(tmp_path: Path, run: str, *args: str, entrypoint: str = "etl.py:etl") -> Result:
    where = f"{tmp_path / entrypoint.split(':')[0]}:{entrypoint.split(':')[1]}"
    results = ("--results", str(tmp_path / "results"))
    return CliRunner().invoke(app, ["rerun", run[:12], "--entrypoint", where, *results, *args])


def _plan(result: Result) -> dict[str, tuple[str, str]]:
    assert result.exit_code == 0, result.output
    body: dict[str, Any] = json.loads(result.stdout)
    assert body["outcome"] == "planned"
    return {step["task_name"]: (step["action"], step["why"]) for step in body["plan"]}


def test_the_plan_reuses_what_completed(tmp_path: Path, failed: str) -> None:
    plan = _plan(_rerun(tmp_path, failed, "--dry-run", "--json"))
    assert plan == {
        "extract": ("reuse", "unchanged"),
        "transform": ("run", "it had failed"),
        "load": ("run", "it was skipped (a task it needs had failed)"),
    }


def test_a_param_goes_to_the_function_and_changes_what_it_reaches(
    tmp_path: Path, failed: str
) -> None:
    plan = _plan(_rerun(tmp_path, failed, "--param", "n=3", "--dry-run", "--json"))
    assert plan["extract"][0] == "run"
    assert plan["extract"][1].startswith("its input changed")


def test_a_target_takes_its_params_from_the_command(tmp_path: Path, failed: str) -> None:
    """A module's target (its Params its params) is a workflow too: n=5 is the run's graph."""
    plan = _plan(_rerun(tmp_path, failed, "--dry-run", "--json", entrypoint="etl.py:graph"))
    assert plan["extract"] == ("reuse", "unchanged")


def test_all_and_from_force_what_they_name(tmp_path: Path, failed: str) -> None:
    plan = _plan(_rerun(tmp_path, failed, "--all", "--dry-run", "--json"))
    assert {action for action, _ in plan.values()} == {"force", "run"}
    assert plan["extract"] == ("force", "rerun all")
    plan = _plan(_rerun(tmp_path, failed, "--from", "extract", "--dry-run", "--json"))
    assert plan["extract"][0] == "force"


def test_a_run_the_store_does_not_have_exits_1_naming_the_store(
    tmp_path: Path, failed: str
) -> None:
    other = "f" * 32 if not failed.startswith("f") else "e" * 32
    result = _rerun(tmp_path, other, "--dry-run")
    assert result.exit_code == 1, result.output
    assert str(tmp_path / "results") in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("--workflow", "etl"), "--workflow: for a serving process's rerun"),
        (("--on", "etl-1", "--as", "ana"), "--on, --as: for a serving process's rerun"),
        (("--param", "m=1"), "etl.py:etl(...) takes no such params: got an unexpected"),
        (("--dry-run", "--wait"), "--wait waits for a run: a --dry-run starts none"),
    ],
)
def test_what_does_not_go_with_an_entrypoint_exits_2(
    tmp_path: Path, failed: str, args: tuple[str, ...], said: str
) -> None:
    result = _rerun(tmp_path, failed, *args)
    assert result.exit_code == 2, result.output
    assert said in " ".join(result.stderr.split())


def test_results_without_an_entrypoint_exits_2() -> None:
    result = CliRunner().invoke(app, ["rerun", "58a88765cea2", "--results", "results"])
    assert result.exit_code == 2, result.output
    assert "--results goes with --entrypoint" in result.stderr


SKIPPING = """\
from cascade.runtime import task


@task
def deploy() -> str:
    return "deployed"


def flow():
    return deploy().run_if(False)
"""


def test_a_rerun_whose_target_is_skipped_says_succeeded(tmp_path: Path) -> None:
    """The run's target skipped (DependencyMissingError from Engine.run): the rerun here says
    Succeeded, as the run itself ended, and exits 0."""
    (tmp_path / "skipping.py").write_text(SKIPPING, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("skipping_under_test", tmp_path / "skipping.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    engine = Engine(results=str(tmp_path / "results"))
    with pytest.raises(DependencyMissingError) as missing:
        asyncio.run(engine.run(module.flow()))
    assert missing.value.run_id is not None
    result = _rerun(tmp_path, missing.value.run_id, "--json", entrypoint="skipping.py:flow")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["status"] == "Succeeded"


FETCHING = """\
from pathlib import Path

from cascade.runtime import task

HERE = Path(__file__).parent


@task
def fetch() -> tuple[str, ...]:
    return ("a", "b", "c")  # a tuple decodes back a list: never kept


@task
def count(response: tuple[str, ...]) -> int:
    return len(response)


@task
def load(n: int) -> int:
    if not (HERE / "fixed").exists():
        raise RuntimeError("the database is down")
    return n


def flow():
    return load(count(fetch()))
"""


def test_the_plan_says_a_task_no_task_it_runs_needs_is_skipped_not_needed(
    tmp_path: Path,
) -> None:
    """fetch's answer was not kept, count's was; load failed: the table says fetch is skipped,
    not needed, and counts it."""
    (tmp_path / "fetching.py").write_text(FETCHING, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("fetching_under_test", tmp_path / "fetching.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    engine = Engine(results=str(tmp_path / "results"))
    with pytest.raises(TaskFailedError) as failure:
        asyncio.run(engine.run(module.flow()))
    run = failure.value.run_id
    assert run is not None
    result = _rerun(tmp_path, run, "--dry-run", entrypoint="fetching.py:flow")
    assert result.exit_code == 0, result.output
    (fetch,) = [line for line in result.stdout.splitlines() if line.startswith("│ fetch ")]
    assert "│ skip " in fetch
    assert "not needed: every task that uses" in fetch
    assert "1 to run, 1 to reuse, 1 to skip; nothing was started" in result.stdout
