"""``create_cli`` (a command line from a workflow's params) and ``dry_run`` (its plan printed),
as the existing Cascade engine's programs call them."""

from __future__ import annotations

from typing import Any

import pytest

import cascade.runtime as cs


@cs.task
def greet(name: str, times: int, loud: bool) -> str:
    text = " ".join([f"hello {name}"] * times)
    return text.upper() if loud else text


def _workflow() -> cs.LazyResult[str]:
    return greet(
        cs.Param("name", description="who to greet"),
        cs.Param("times", default=1, description="how often"),
        cs.Param("loud", default=False),
    )


def test_the_command_line_takes_each_param_as_an_option_of_its_type(
    capsys: pytest.CaptureFixture[str],
) -> None:
    cli = cs.create_cli(_workflow())
    assert cli(["--name", "ada", "--times", "2", "--loud", "yes"]) == "HELLO ADA HELLO ADA"
    assert capsys.readouterr().out.splitlines()[-1] == "HELLO ADA HELLO ADA"
    assert cli(["--name", "bob"]) == "hello bob"  # the defaults


def test_help_names_each_param_with_its_description_and_default(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        cs.create_cli(_workflow())(["--help"])
    assert exited.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--name VALUE who to greet" in text
    assert "how often (default: 1)" in text


@pytest.mark.parametrize(
    "argv",
    [[], ["--name", "x", "--times", "two"], ["--name", "x", "--loud", "maybe"], ["--nope", "1"]],
    ids=["required missing", "not an int", "not a boolean", "unknown"],
)
def test_a_bad_option_exits_2_before_anything_runs(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        cs.create_cli(_workflow())(argv)
    assert exited.value.code == 2
    assert "usage:" in capsys.readouterr().err


def test_dry_run_prints_the_plan_in_order_and_runs_nothing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    ran: list[str] = []

    @cs.task
    def extract() -> list[int]:
        ran.append("extract")
        return [1, 2]

    @cs.task
    def load(rows: list[int]) -> int:
        ran.append("load")
        return len(rows)

    cs.dry_run(load(extract()))
    lines = capsys.readouterr().out.splitlines()
    assert ran == []
    assert len(lines) == 2
    assert lines[0].startswith("[1/2] ")
    assert "extract" in lines[0]
    assert lines[1].startswith("[2/2] ")
    assert "load" in lines[1]
    assert "extract" in lines[1]


class Looked(dict[str, int]):
    """An argument that counts how often the engine looks through it (``values``): as often
    as it builds the graph of the workflow that holds it."""

    looks = 0

    def values(self) -> Any:
        self.looks += 1
        return super().values()


@cs.task
def count(extra: dict[str, int], times: int) -> int:
    return extra["n"] * times


def test_the_command_line_runs_the_graph_it_read_its_params_from() -> None:
    """Its graph is built once, for its options and its run, as a run's is."""
    ran = Looked(n=2)
    assert cs.run(count(ran, cs.Param("times", default=1)), params={"times": 3}) == 6
    once = ran.looks
    looked = Looked(n=2)
    cli = cs.create_cli(count(looked, cs.Param("times", default=1)))
    assert cli(["--times", "3"]) == 6
    assert looked.looks == once
    assert cli(["--times", "4"]) == 8  # the same graph, run again from the start
    assert looked.looks == once
