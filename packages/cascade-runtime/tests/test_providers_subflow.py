"""``cs.subflow``: another workflow file's target run with params as one task, its result
the target's; a failure inside, a missing file or target fail the task ``subflow``."""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path

import pytest

import cascade.runtime as cs
from cascade.runtime import Engine, Event, TaskEvent, task

WORKFLOW = textwrap.dedent("""
    import cascade.runtime as cs

    calls = []

    @cs.task
    def double(x: int) -> int:
        calls.append(x)
        return x * 2

    @cs.task
    def explode(x: int) -> int:
        raise ValueError(f"no good: {x}")

    value = cs.Param("value", default=1, type=int)
    doubled = double(value)
    report = cs.format("{} doubled is {}", value, doubled)
    broken = explode(value)
""")


@pytest.fixture
def workflow(tmp_path: Path) -> str:
    path = tmp_path / "child_flow.py"
    path.write_text(WORKFLOW, encoding="utf-8")
    return str(path)


@task
def later(value: object) -> object:
    return value


def test_a_target_runs_with_params_as_one_task(workflow: str) -> None:
    """The file's target runs with the params given (lazy ones too): one task, ``subflow``."""
    events: list[Event] = []
    engine = Engine()
    engine.events.subscribe(events.append)
    results = asyncio.run(
        engine.run(
            [
                cs.subflow(workflow, "report", params={"value": later(21)}),
                cs.subflow(workflow, "doubled"),
            ]
        )
    )
    assert results == ["21 doubled is 42", 2]
    names = {e.task_name for e in events if isinstance(e, TaskEvent)}
    assert names == {"subflow", "later"}  # the child's tasks are its own engine's


def test_a_failure_inside_fails_the_subflow_task(workflow: str) -> None:
    """A task that fails in the child run fails ``subflow`` with that run's error."""
    with pytest.raises(cs.TaskFailedError) as raised:
        cs.run(cs.subflow(workflow, "broken", params={"value": 5}))
    assert raised.value.task_name == "subflow"
    inner = raised.value.exception
    assert isinstance(inner, cs.TaskFailedError)
    assert inner.task_name == "explode"
    assert "no good: 5" in str(inner.exception)


def test_a_missing_file_or_target_is_named(workflow: str, tmp_path: Path) -> None:
    """No file is ``FileNotFoundError``; no such variable a ``SubflowError`` naming the rest."""
    with pytest.raises(cs.TaskFailedError) as raised:
        cs.run(cs.subflow(str(tmp_path / "nope.py"), "report"))
    assert isinstance(raised.value.exception, FileNotFoundError)
    with pytest.raises(cs.TaskFailedError) as raised:
        cs.run(cs.subflow(workflow, "reprot"))
    missing = raised.value.exception
    assert isinstance(missing, cs.SubflowError)
    assert "'reprot'" in str(missing)
    assert "report" in str(missing)
