"""Task graphs: dependencies, result shapes, cycles and bad targets."""

from __future__ import annotations

from typing import Any, NamedTuple

import pytest

from cascade.runtime import CycleError, Engine, InvalidTargetError, task

calls: list[str] = []


@task
def const(x: Any) -> Any:
    calls.append("const")
    return x


@task
async def add(a: int, b: int) -> int:
    return a + b


@task
def total(values: Any) -> int:
    return sum(values)


@task
def echo(value: Any) -> Any:
    return value


class Pair(NamedTuple):
    left: Any
    right: Any


async def test_fan_out_fan_in() -> None:
    """Many independent tasks feed one task that gets their results in order."""
    leaves = [const(i) for i in range(50)]
    assert await Engine().run(total(leaves)) == sum(range(50))


async def test_diamond_runs_shared_dependency_once() -> None:
    """A dependency used by two tasks runs once and both get its result."""
    calls.clear()
    root = const(2)
    assert await Engine().run(add(add(root, 1), add(root, 10))) == 15
    assert calls == ["const"]


async def test_nested_arguments_are_resolved() -> None:
    """Lazy results inside lists, tuples, named tuples and dicts are replaced by their results."""
    value = echo(
        {"list": [const(1), 2], "tuple": (const(3),), "pair": Pair(const(4), 5), "k": const(6)}
    )
    assert await Engine().run(value) == {
        "list": [1, 2],
        "tuple": (3,),
        "pair": Pair(4, 5),
        "k": 6,
    }


async def test_keyword_arguments_are_dependencies() -> None:
    """Lazy results passed by keyword are dependencies too."""
    assert await Engine().run(add(a=const(1), b=const(2))) == 3


async def test_target_shapes() -> None:
    """A list, tuple or dict target gives results of the same shape."""
    engine = Engine()
    assert await engine.run([const(1), const(2)]) == [1, 2]
    assert await engine.run((const(1), const(2))) == (1, 2)
    assert await engine.run({"a": const(1), "b": const(2)}) == {"a": 1, "b": 2}


async def test_cycle_is_rejected_before_anything_runs() -> None:
    """A cycle raises CycleError naming its tasks, and no task runs."""
    calls.clear()
    holder: list[Any] = []
    first = echo(holder)
    second = echo(first)
    holder.append(second)
    with pytest.raises(CycleError) as info:
        await Engine().run([const(1), second])
    assert info.value.tasks[0] == info.value.tasks[-1]
    assert set(info.value.tasks) == {first.task_id, second.task_id}
    assert calls == []


@pytest.mark.parametrize("target", [42, "x", None, [const(1), 3], {"a": 1}, echo])
async def test_bad_target_is_rejected_before_anything_runs(target: Any) -> None:
    """Anything but lazy results raises InvalidTargetError, and no task runs."""
    calls.clear()
    with pytest.raises(InvalidTargetError, match="lazy result"):
        await Engine().run(target)
    assert calls == []


async def test_self_containing_argument_is_not_a_problem() -> None:
    """A container holding itself among a task's arguments does not hang graph building."""
    loop: list[Any] = [const(1)]
    loop.append(loop)
    result = await Engine().run(echo(len(loop)))
    assert result == 2
