"""What a failed run raises: what a caller moving code from the existing Cascade engine (or from
Prefect, Dask, ``concurrent.futures``) catches, with the run still reachable from it."""

from __future__ import annotations

import errno
import pickle
from typing import Any

import pytest

import cascade.runtime as cs
from cascade.runtime import Engine, ParamError, RouteMissing, TaskFailedError


class _Coded(Exception):
    """An exception of a user's with arguments of its own and a text built from them."""

    def __init__(self, code: int, detail: str) -> None:
        super().__init__(code, detail)
        self.code = code
        self.detail = detail

    def __str__(self) -> str:
        return f"{self.code}/{self.detail}"


class _Unjoinable(Exception):
    """A class no other class may derive from."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        raise RuntimeError("final")


async def _failed_with(exception: BaseException) -> TaskFailedError:
    @cs.task
    def boom() -> None:
        raise exception

    with pytest.raises(TaskFailedError) as raised:
        await Engine().run(boom())
    return raised.value


@pytest.mark.parametrize(
    "exception",
    [
        ValueError("Always fail"),
        KeyError("missing"),
        FileNotFoundError(errno.ENOENT, "no such file"),
        _Coded(7, "bad row"),
    ],
    ids=["ValueError", "KeyError", "FileNotFoundError", "own class"],
)
async def test_a_failed_run_is_caught_as_the_task_s_own_exception(exception: Exception) -> None:
    failed = await _failed_with(exception)
    assert isinstance(failed, type(exception))
    assert type(failed).__name__ == "TaskFailedError"  # what the wire's error text names
    assert failed.exception is exception
    assert failed.__cause__ is exception
    assert failed.task_name == "boom"
    assert failed.run_id is not None
    assert str(failed) == (
        f"run {failed.run_id}: task 'boom' ({failed.task_id}) failed: "
        f"{type(exception).__name__}: {exception}"
    )


async def test_except_valueerror_around_a_run_catches_it_as_the_existing_engine_s_did() -> None:
    @cs.task
    def boom() -> None:
        raise ValueError("Something went wrong")

    with pytest.raises(ValueError, match="Something went wrong"):
        await Engine().run(boom())


async def test_a_class_that_cannot_be_joined_gives_a_plain_task_failed_error() -> None:
    failed = await _failed_with(_Unjoinable("x"))
    assert type(failed) is TaskFailedError
    assert isinstance(failed.exception, _Unjoinable)


async def test_a_failed_run_s_error_pickles_whole() -> None:
    failed = await _failed_with(_Coded(3, "row 12"))
    again = pickle.loads(pickle.dumps(failed))
    assert isinstance(again, TaskFailedError)
    assert isinstance(again, _Coded)
    assert (again.run_id, again.task_id, str(again)) == (failed.run_id, failed.task_id, str(failed))
    assert isinstance(again.exception, _Coded)
    assert again.exception.code == 3


def test_a_param_no_route_takes_is_a_value_error_before_any_task_runs() -> None:
    ran: list[str] = []

    @cs.task
    def load() -> int:
        ran.append("load")
        return 1

    @cs.task
    def consumer(x: int) -> int:
        return x

    router: cs.Router[int] = cs.Router(selector=cs.Param("sel"), routes={"a": load()})
    with pytest.raises(ValueError, match="no matching route found") as raised:
        cs.run(consumer(router), params={"sel": "invalid_key"})
    assert isinstance(raised.value, ParamError)
    assert ran == []


async def test_a_computed_selector_no_route_takes_fails_its_task_as_a_value_error() -> None:
    @cs.task
    def pick() -> str:
        return "ftp"

    @cs.task
    def fetch() -> str:
        return "db"

    @cs.task
    def consumer(x: str) -> str:
        return x

    with pytest.raises(ValueError, match="no matching route found for 'ftp'") as raised:
        await Engine().run(consumer(cs.Router(selector=pick(), routes={"db": fetch()})))
    assert isinstance(raised.value, RouteMissing)
    assert isinstance(raised.value, LookupError)


@cs.task
def _check() -> bool:
    return False


@cs.task
def _step(name: str) -> str:
    return name


@cs.task
def _explode() -> str:
    raise LookupError("gone")


def test_a_skipped_target_raises_dependency_missing_as_the_cascade_engine_does() -> None:
    """cs.run of a target its condition skips: DependencyMissingError (a CascadeRuntimeError)
    naming the target, where it is, the task skipped first upstream and the run."""
    skipped = _step("a").run_if(_check())
    target = _step(skipped)
    with pytest.raises(cs.DependencyMissingError) as raised:
        cs.run(target)
    error = raised.value
    assert isinstance(error, cs.CascadeRuntimeError)
    assert (error.task_id, error.arg_name, error.dependency_id) == (
        target.task_id,
        "<Target Output>",
        skipped.task_id,
    )
    assert error.run_id is not None
    assert len(error.run_id) == 32
    assert f"as {skipped.task_id} upstream was" in str(error)
    copied = pickle.loads(pickle.dumps(error))
    assert (copied.task_id, copied.arg_name, copied.dependency_id, copied.run_id) == (
        error.task_id,
        error.arg_name,
        error.dependency_id,
        error.run_id,
    )


def test_an_item_of_a_dict_target_skipped_is_named_by_its_key() -> None:
    """A dict target: its skipped item's key in arg_name; a skipped item of its own is its own
    dependency."""
    skipped = _step("b").run_if(False)
    with pytest.raises(cs.DependencyMissingError) as raised:
        cs.run({"kept": _step("a"), "gone": skipped})
    assert raised.value.arg_name == "<Target Output>['gone']"
    assert raised.value.dependency_id == raised.value.task_id == skipped.task_id


def test_a_failed_task_wins_over_a_skipped_target() -> None:
    """A task failed and the target is skipped: the failure is what the run raises."""
    with pytest.raises(TaskFailedError):
        cs.run([_explode(), _step("a").run_if(False)])


def test_a_sequence_stopped_by_a_skip_gives_none() -> None:
    """As the Cascade engine: a target skipped only because a task it runs after was skipped
    (a sequence stopped) gives None, not an error."""
    assert cs.run(cs.sequence([_step("a").run_if(False), _step("b")])) is None


async def test_the_run_still_ends_succeeded_on_the_wire_and_in_its_manifest(
    tmp_path: Any,
) -> None:
    """What the run publishes and keeps does not change: RunFinished Succeeded, the manifest's
    status Succeeded, the target SKIPPED in it."""
    engine = Engine(results=str(tmp_path / "results"))
    finished: list[str] = []
    engine.events.subscribe(
        lambda event: finished.append(event.status) if isinstance(event, cs.RunFinished) else None
    )
    target = _step("a").run_if(False)
    with pytest.raises(cs.DependencyMissingError) as raised:
        await engine.run(target)
    assert finished == ["Succeeded"]
    assert engine.results is not None
    manifest = engine.results.manifest(raised.value.run_id or "")
    assert manifest.status == "Succeeded"
    assert [task.state for task in manifest.tasks.values()] == ["SKIPPED"]
