"""Served params typed at the door: a start's params converted to its function's annotations
before any run starts, a wrong one refused naming the parameter and its type, and an
annotation no request could satisfy refused when serving starts."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import pathlib
from collections.abc import AsyncIterator, Callable
from datetime import date, datetime, timezone
from typing import Annotated, Any, Literal

import msgspec
import pytest

from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.control import Controller
from cascade.interfaces.serving import StartReply, decode_served, served_topic
from cascade.runtime import Engine, Param, RunFinished, RunStarted, task
from cascade.runtime.testing import EventRecorder, eventually

SOURCE = "server-1"


class Mode(enum.Enum):
    FULL = "full"
    QUICK = "quick"


@dataclasses.dataclass
class Window:
    start: date
    days: int = 1


class Limits(msgspec.Struct):
    rows: int
    share: float = 1.0


@task(name="echo")
def echo(value: str) -> str:
    return value


def _nightly(calls: list[dict[str, Any]]) -> Callable[..., Any]:
    """A workflow with a parameter of each kind, keeping what each call was given (its
    annotations are text, ``from __future__ import annotations``, resolved at serve())."""

    def nightly(  # type: ignore[no-untyped-def]  # note: unannotated, on purpose
        n: int,
        day: date | None = None,
        at: datetime | None = None,
        ratio: float = 1.0,
        mode: Mode = Mode.FULL,
        kind: Literal["a", "b"] = "a",
        ids: list[int] | None = None,
        tags: dict[str, int] | None = None,
        window: Window | None = None,
        limits: Limits | None = None,
        flag: bool = False,
        bounded: Annotated[int, msgspec.Meta(ge=1)] = 1,
        note=None,  # unannotated: the JSON as it is
        **extra: int,
    ) -> Any:
        calls.append({k: v for k, v in locals().items() if k != "calls"})
        return echo(str(n))

    return nightly


class Served:
    """An engine serving ``nightly`` on an in-memory broker, the runs it started, and a
    requester's connector."""

    def __init__(self, engine: Engine, requester: InMemoryConnector) -> None:
        self.engine = engine
        self.requester = requester
        self.calls: list[dict[str, Any]] = []
        self.recorder = EventRecorder()
        engine.events.subscribe(self.recorder)

    async def start(self, params: dict[str, Any]) -> StartReply:
        return await Controller(self.requester, timeout=10).start("nightly", params, on=SOURCE)

    def started(self) -> list[RunStarted]:
        return [e for e in self.recorder.events if isinstance(e, RunStarted)]


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    broker = InMemoryBroker()
    engine = Engine(InMemoryConnector(broker, source_id=SOURCE), heartbeat_interval=None)
    async with InMemoryConnector(broker, source_id="op", presence=False) as requester:
        serving = Served(engine, requester)
        workflows = {"nightly": _nightly(serving.calls), "plain": _return_unresolved}
        task_ = asyncio.create_task(engine.serve(workflows))
        try:
            await eventually(
                lambda: (
                    task_.done()
                    or broker.retained(served_topic("local", "default", SOURCE)) is not None
                )
            )
            assert not task_.done()
            yield serving
        finally:
            task_.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task_


async def test_params_reach_the_workflow_as_their_annotations_have_them(served: Served) -> None:
    """ISO text becomes a date and a datetime, an int a float, text an Enum, objects a
    dataclass and a struct; the unannotated takes the JSON. The run's origin holds the
    converted values as JSON (what a rerun replays)."""
    reply = await served.start({
        "n": 5, "day": "2026-11-25", "at": "2026-11-25T06:00:00+00:00", "ratio": 2,
        "mode": "quick", "kind": "b", "ids": [1, 2], "tags": {"x": 1},
        "window": {"start": "2026-11-01", "days": 3}, "limits": {"rows": 10},
        "flag": True, "bounded": 7, "note": {"free": ["json", 1]}, "more": 3,
    })  # fmt: skip
    assert reply.outcome == "started", reply.error
    await served.recorder.until(lambda: bool(served.recorder.names(RunFinished)))
    (call,) = served.calls
    assert call == {
        "n": 5, "day": date(2026, 11, 25), "at": datetime(2026, 11, 25, 6, tzinfo=timezone.utc),
        "ratio": 2.0, "mode": Mode.QUICK, "kind": "b", "ids": [1, 2], "tags": {"x": 1},
        "window": Window(date(2026, 11, 1), 3), "limits": Limits(rows=10), "flag": True,
        "bounded": 7, "note": {"free": ["json", 1]}, "extra": {"more": 3},
    }  # fmt: skip
    assert isinstance(call["ratio"], float)
    (started,) = served.started()
    assert started.origin is not None
    assert started.origin.params == {
        "n": 5, "day": "2026-11-25", "at": "2026-11-25T06:00:00Z", "ratio": 2.0,
        "mode": "quick", "kind": "b", "ids": [1, 2], "tags": {"x": 1},
        "window": {"start": "2026-11-01", "days": 3}, "limits": {"rows": 10, "share": 1.0},
        "flag": True, "bounded": 7, "note": {"free": ["json", 1]}, "more": 3,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"n": "5"}, 'nightly: parameter n must be int, not str ("5")'),
        (
            {"n": 1, "day": {"$where": "1"}},
            'nightly: parameter day must be date | None, not dict ({"$where": "1"})',
        ),
        (
            {"n": 10**18},
            "nightly: parameter n holds 1000000000000000000: a number in params is within ±1e+15",
        ),
        ({"n": 10**30}, "nightly: parameter n holds 1000000000000000000000000000000: a number"),
        ({"n": 1, "note": [1e300]}, "nightly: parameter note holds 1e+300: a number"),
        ({"n": True}, "nightly: parameter n must be int, not bool (true)"),
        ({"n": 5.5}, "nightly: parameter n must be int, not float (5.5)"),
        ({"n": 1, "ratio": "1.5"}, 'nightly: parameter ratio must be float, not str ("1.5")'),
        ({"n": 1, "flag": 1}, "nightly: parameter flag must be bool, not int (1)"),
        ({"n": 1, "at": "tomorrow"}, "nightly: parameter at must be datetime | None, not str"),
        (
            {"n": 1, "mode": "slow"},
            "nightly: parameter mode must be Mode, not str (\"slow\"): Invalid enum value 'slow'",
        ),
        ({"n": 1, "kind": "c"}, "nightly: parameter kind must be Literal['a', 'b'], not str"),
        (
            {"n": 1, "ids": [1, "2"]},
            'nightly: parameter ids must be list[int] | None, not list ([1, "2"]): Expected '
            "`int`, got `str` - at `$[1]`",
        ),
        ({"n": 1, "window": {"start": "yesterday"}}, "nightly: parameter window must be"),
        ({"n": 1, "limits": {}}, "nightly: parameter limits must be Limits | None, not dict"),
        ({"n": 1, "bounded": 0}, "nightly: parameter bounded must be Annotated["),
        ({"n": 1, "more": "x"}, 'nightly: parameter more must be int, not str ("x")'),
        ({"n": "x" * 500}, 'nightly: parameter n must be int, not str ("xxxxxxxx'),
    ],
)
async def test_a_param_its_annotation_refuses_is_refused_naming_it(
    served: Served, params: dict[str, Any], error: str
) -> None:
    """Refused before the workflow's function or any run: text is no number (``"5"``), a
    number beyond the protocol's bound is none (``10**18``), an object no date; the error
    names the parameter, the type and (cut) the value."""
    reply = await served.start(params)
    assert reply.outcome == "refused"
    assert reply.error.startswith(error), reply.error
    assert len(reply.error) < 400
    assert served.calls == []
    assert served.started() == []
    assert served.engine.stats.starts_refused == 1


async def test_a_missing_param_is_still_what_binding_says(served: Served) -> None:
    """A param not given, or one the function has not: the signature's refusal, as before."""
    assert (await served.start({})).error == "nightly: missing a required argument: 'n'"


def _untyped(day: pathlib.Path) -> Any:
    return echo(str(day))


def _ambiguous(day: date | str) -> Any:
    return echo(str(day))


def _unresolved(day: Missing) -> Any:  # type: ignore[name-defined]  # noqa: F821
    return echo(str(day))


def _return_unresolved(day: str) -> Unknown:  # type: ignore[name-defined]  # noqa: F821
    return echo(day)


@pytest.mark.parametrize(
    ("build", "error"),
    [
        (_untyped, "workflow 'w': parameter 'day' is annotated pathlib.Path, and no JSON value "
                   "converts to Path"),
        (_ambiguous, "workflow 'w': parameter 'day' is annotated date | str, and Type unions"),
        (_unresolved, "workflow 'w': the annotation of parameter 'day' ('Missing') does not "
                      "resolve (NameError"),
    ],
)  # fmt: skip
async def test_an_annotation_no_request_can_satisfy_refuses_to_serve(
    build: Callable[..., Any], error: str
) -> None:
    """``serve()`` raises ``TypeError`` naming the workflow and the parameter, before it
    connects. (An unresolvable return annotation is no parameter's: the fixture serves one.)"""
    engine = Engine(InMemoryConnector(InMemoryBroker(), source_id=SOURCE))
    with pytest.raises(TypeError) as raised:
        await engine.serve({"w": build})
    assert str(raised.value).startswith(error), str(raised.value)
    assert engine.connector is not None
    assert not engine.connector.is_connected


async def test_a_served_target_takes_its_params_from_its_params() -> None:
    """A workflow served as a target, not a function: the announcement lists its Params
    (type, default, description), a start's params are converted and checked by them (one
    converter: ``"5"`` is no ``int``), and its run binds them; a rerun replays them."""

    seen: list[tuple[int, str]] = []

    @task(name="report")
    def report(rows: int, env: str) -> str:
        seen.append((rows, env))
        return f"{rows} rows to {env}"

    target = report(
        Param("rows", type=int, description="how many rows"),
        Param("env", default="staging"),
    )
    broker = InMemoryBroker()
    engine = Engine(InMemoryConnector(broker, source_id=SOURCE), heartbeat_interval=None)
    recorder = EventRecorder()
    engine.events.subscribe(recorder)
    serving = asyncio.create_task(engine.serve({"nightly": target}))
    try:
        topic = served_topic("local", "default", SOURCE)
        await eventually(lambda: serving.done() or broker.retained(topic) is not None)
        retained = broker.retained(topic)
        assert retained is not None
        (announced,) = decode_served(retained).workflows
        described = {p.name: p for p in announced.params}
        assert (described["rows"].required, described["rows"].annotation) == (True, "int")
        assert described["rows"].description == "how many rows"
        assert (described["env"].required, described["env"].default) == (False, "staging")
        async with InMemoryConnector(broker, source_id="op", presence=False) as requester:
            controller = Controller(requester, timeout=10)
            refused = await controller.start("nightly", {"rows": "5"}, on=SOURCE)
            assert refused.error == 'nightly: parameter rows must be int, not str ("5")'
            unknown = await controller.start("nightly", {"rows": 1, "x": 2}, on=SOURCE)
            assert unknown.error.startswith("nightly: no parameter x in this workflow")
            reply = await controller.start("nightly", {"rows": 5}, on=SOURCE)
            assert reply.outcome == "started", reply.error
            await recorder.until(lambda: bool(recorder.names(RunFinished)))
    finally:
        serving.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await serving
    assert seen == [(5, "staging")]
    (started,) = [e for e in recorder.events if isinstance(e, RunStarted)]
    assert started.origin is not None
    assert started.origin.params == {"rows": 5, "env": "staging"}


DAY: Param[str] = Param("day", default="mon", description="the day to load")


EXTRACTED: list[str] = []


@task(name="extract")
def extract(day: str) -> str:
    EXTRACTED.append(day)
    return f"rows of {day}"


def _announced(broker: InMemoryBroker, name: str) -> Any:
    retained = broker.retained(served_topic("local", "default", SOURCE))
    assert retained is not None
    return next(w for w in decode_served(retained).workflows if w.name == name)


async def test_a_served_functions_graph_params_are_its_params_the_originals_way() -> None:
    """``day = Param("day", ...)`` at module level, ``def etl(): return extract(day)``: the
    announcement lists ``day`` (default, description), a start's ``day`` reaches the run (as a
    served target's Param does: converted, checked), and a function's own parameters are
    described from its docstring."""

    def etl() -> Any:
        return extract(DAY)

    def report(rows: int, env: str = "staging") -> Any:
        """Write the report.

        Args:
            rows: how many rows to report
            env: where to write it
        """
        return extract(str(rows))

    broker = InMemoryBroker()
    engine = Engine(InMemoryConnector(broker, source_id=SOURCE), heartbeat_interval=None)
    recorder = EventRecorder()
    engine.events.subscribe(recorder)
    serving = asyncio.create_task(engine.serve({"etl": etl, "report": report}))
    try:
        topic = served_topic("local", "default", SOURCE)
        await eventually(lambda: serving.done() or broker.retained(topic) is not None)
        (day,) = _announced(broker, "etl").params
        assert (day.name, day.required, day.default) == ("day", False, "mon")
        assert day.description == "the day to load"
        described = {p.name: p.description for p in _announced(broker, "report").params}
        assert described == {"rows": "how many rows to report", "env": "where to write it"}
        async with InMemoryConnector(broker, source_id="op", presence=False) as requester:
            controller = Controller(requester, timeout=10)
            unknown = await controller.start("etl", {"days": "tue"}, on=SOURCE)
            assert "days" in unknown.error
            reply = await controller.start("etl", {"day": "tue"}, on=SOURCE)
            assert reply.outcome == "started", reply.error
            await recorder.until(lambda: bool(recorder.names(RunFinished)))
    finally:
        serving.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await serving
    (started,) = [e for e in recorder.events if isinstance(e, RunStarted)]
    assert started.origin is not None
    assert started.origin.params == {"day": "tue"}
    (finished,) = [e for e in recorder.events if isinstance(e, RunFinished)]
    assert finished.status == "Succeeded", finished.error
    assert EXTRACTED[-1] == "tue"


async def _served_params(workflows: dict[str, Any]) -> dict[str, Any]:
    """What serving ``workflows`` announces of each one's params, by workflow and name."""
    broker = InMemoryBroker()
    engine = Engine(InMemoryConnector(broker, source_id=SOURCE), heartbeat_interval=None)
    serving = asyncio.create_task(engine.serve(workflows))
    try:
        topic = served_topic("local", "default", SOURCE)
        await eventually(lambda: serving.done() or broker.retained(topic) is not None)
        if serving.done():
            serving.result()  # what serve() raised
        return {name: {p.name: p for p in _announced(broker, name).params} for name in workflows}
    finally:
        serving.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await serving


@pytest.mark.parametrize(
    "doc",
    [
        "Load.\n\nArgs:\n    day: the day to load\n",
        "Load.\n\nParameters\n----------\nday : str\n    the day to load\n",
        "Load.\n\n:param day: the day to load\n",
    ],
    ids=["google", "numpy", "sphinx"],
)
async def test_a_parameter_is_described_from_a_docstring_of_each_style(doc: str) -> None:
    def load(day: str) -> Any:
        return extract(day)

    load.__doc__ = doc
    described = await _served_params({"load": load})
    assert described["load"]["day"].description == "the day to load"


async def test_a_name_both_a_parameter_and_a_param_of_the_graph_is_refused_at_serve() -> None:
    def etl(day: str = "mon") -> Any:
        return extract(DAY)

    with pytest.raises(ValueError, match="day is both a parameter of the function and a Param"):
        await _served_params({"etl": etl})


async def test_listing_a_functions_graph_params_spends_no_task_id() -> None:
    """Serving builds the function once to find its Params: the task ids of what is built next
    are those it would have had (a served run's ids as the walkthrough prints them)."""

    def etl() -> Any:
        return extract(DAY)

    before = extract("x").task_id
    assert "day" in (await _served_params({"etl": etl}))["etl"]
    after = extract("y").task_id
    assert int(after.rsplit("-", 1)[1]) == int(before.rsplit("-", 1)[1]) + 1
