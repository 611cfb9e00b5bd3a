"""Serving workflows: announced, started by requests over the broker, a few at a time, each
request answered once on its reply topic."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import msgspec
import pytest

from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.interfaces import Constraint, Message, constraint_topic
from cascade.interfaces.commands import CancelRequest, cancel_topic, reply_topic
from cascade.interfaces.serving import (
    RunOrigin,
    ServedAnnouncement,
    StartReply,
    StartRequest,
    addressed_start_topic,
    decode_served,
    decode_start_reply,
    served_filter,
    served_topic,
    start_topic,
)
from cascade.runtime import (
    Engine,
    RunFinished,
    RunStarted,
    TaskBlocked,
    TaskRunning,
    TaskSkipped,
    task,
)
from cascade.runtime.testing import EventRecorder, eventually, serving

SOURCE = "server-1"


@task(name="extract")
async def extract(n: int) -> list[int]:
    return list(range(n))


@task(name="total")
def total(values: list[int]) -> int:
    return sum(values)


def nightly(day: str, limit: int = 10) -> Any:
    """The nightly load.

    Extracts and adds up.
    """
    return total(extract(limit))


async def hourly(*, hours: int = 1, tags: tuple[str, ...] = ("a",)) -> Any:
    return total(extract(hours))


class Gate:
    """Tasks that wait until released, each run's its own."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.entered = 0
        self.built = 0

        @task(name="waits")
        async def waits(tag: str) -> str:
            self.entered += 1
            await self.release.wait()
            return tag

        self.waits = waits

    def workflow(self, tag: str = "x") -> Any:
        self.built += 1
        return self.waits(tag)


class Operator:
    """A requester on the broker: sends start requests, keeps the answers and what is
    announced on the served topics."""

    def __init__(self, connector: InMemoryConnector) -> None:
        self.connector = connector
        self.replies: list[Message] = []
        self.served: dict[str, bytes] = {}
        self._changed = asyncio.Event()

    async def start(self) -> None:
        await self.connector.subscribe("cascade/reply/#", self._on_reply)
        await self.connector.subscribe(served_filter(), self._on_served)

    def _on_reply(self, message: Message) -> None:
        self.replies.append(message)
        self._changed.set()

    def _on_served(self, message: Message) -> None:
        self.served[message.topic] = message.raw
        self._changed.set()

    async def until(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        async def wait() -> None:
            while not predicate():
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(wait(), timeout)

    def place(self, source: str = SOURCE) -> tuple[str, str]:
        """The org and project ``source`` announces in (its topic's levels)."""
        for topic in self.served:
            _, _, org, project, level = topic.split("/")
            if level == source:
                return org, project
        return "local", "default"

    def announced(self, source: str = SOURCE) -> ServedAnnouncement | None:
        raw = self.served.get(served_topic(*self.place(source), source))
        return decode_served(raw) if raw else None

    def answers(self, request_id: str) -> list[StartReply]:
        return [decode_start_reply(m.raw) for m in self.replies if f"/{request_id}/" in m.topic]

    async def ask(
        self, request: StartRequest | dict[str, Any], topic: str | None = None
    ) -> StartReply:
        """Send ``request`` (addressed to SOURCE unless ``topic``) and await its answer."""
        fields = request if isinstance(request, dict) else msgspec.to_builtins(request)
        await self.send(request, topic)
        await self.until(lambda: bool(self.answers(fields["id"])))
        return self.answers(fields["id"])[-1]

    async def send(self, request: StartRequest | dict[str, Any], topic: str | None = None) -> None:
        fields = request if isinstance(request, dict) else msgspec.to_builtins(request)
        topic = topic or addressed_start_topic(*self.place(), fields["workflow"], SOURCE)
        await self.connector.publish(topic, request, qos=1)


@pytest.fixture
def broker() -> InMemoryBroker:
    return InMemoryBroker()


@pytest.fixture
async def operator(broker: InMemoryBroker) -> AsyncIterator[Operator]:
    async with InMemoryConnector(broker, source_id="operator", presence=False) as connector:
        op = Operator(connector)
        await op.start()
        yield op


def _engine(broker: InMemoryBroker, source: str = SOURCE, **options: Any) -> Engine:
    return Engine(InMemoryConnector(broker, source_id=source), heartbeat_interval=None, **options)


async def test_it_announces_what_it_serves_and_clears_it_when_it_stops(
    broker: InMemoryBroker, operator: Operator
) -> None:
    """Each workflow with its params as its function's signature has them (required,
    JSON default, annotation) and its doc's first line; the capacity; shared requests where
    the broker has them. Stopping clears the retained announcement and disconnects."""
    engine = _engine(broker, org_id="acme", project_id="etl")
    async with serving(engine, {"nightly": nightly, "hourly": hourly}, max_runs=3):
        await operator.until(lambda: (a := operator.announced()) is not None and a.shared)
        announced = operator.announced()
        assert broker.retained(served_topic("acme", "etl", SOURCE)) is not None
    assert announced is not None
    assert msgspec.to_builtins(announced.workflows) == [
        {
            "name": "nightly",
            "params": [
                {"name": "day", "annotation": "str"},
                {"name": "limit", "required": False, "default": 10, "annotation": "int"},
            ],
            "doc": "The nightly load.",
        },
        {
            "name": "hourly",
            "params": [
                {"name": "hours", "required": False, "default": 1, "annotation": "int"},
                {
                    "name": "tags",
                    "required": False,
                    "default": ["a"],
                    "annotation": "tuple[str, ...]",
                },
            ],
        },
    ]
    assert (announced.source, announced.org_id, announced.project_id) == (SOURCE, "acme", "etl")
    assert (announced.capacity, announced.running, announced.queued) == (3, 0, 0)
    assert broker.retained(served_topic("acme", "etl", SOURCE)) is None
    assert engine.connector is not None
    assert not engine.connector.is_connected


@pytest.mark.parametrize("rabbitmq", [False, True], ids=["no-shared", "rabbitmq-3"])
async def test_without_shared_subscriptions_it_says_so_and_takes_addressed_requests(
    rabbitmq: bool, caplog: pytest.LogCaptureFixture
) -> None:
    """On a broker without them, the probe finds none (on RabbitMQ 3.x, known by its retained
    messages, none is tried: a subscription its permissions deny would close the connection):
    shared is false, and a request addressed to the source is still taken (its run's origin
    has the params with their defaults)."""
    broker = InMemoryBroker(shared_subscriptions=False, retained_to_wildcards=not rabbitmq)
    async with InMemoryConnector(broker, source_id="op", presence=False) as connector:
        op = Operator(connector)
        await op.start()
        engine = _engine(broker, connect_wait=0)  # the probe waits 1 s
        recorder = EventRecorder()
        engine.events.subscribe(recorder)
        with caplog.at_level(logging.INFO, "cascade.runtime.serve"):
            async with serving(engine, {"nightly": nightly}):
                await eventually(lambda: "has no shared subscriptions" in caplog.text)
                await op.until(lambda: op.announced() is not None)
                request = StartRequest(id="r1", workflow="nightly", params={"day": "mon"})
                reply = await op.ask(request)
                assert reply.started
                await recorder.until(lambda: bool(recorder.names(RunFinished)))
                announced = op.announced()
    (started,) = [e for e in recorder.events if isinstance(e, RunStarted)]
    assert started.origin is not None
    assert started.origin.params == {"day": "mon", "limit": 10}  # defaults included
    assert announced is not None
    assert not announced.shared
    topics = {m.topic for m in broker.history}
    assert (served_topic("local", "default", SOURCE) + "/probe" in topics) is not rabbitmq


async def test_a_request_starts_a_named_run_and_the_answer_has_its_id(
    broker: InMemoryBroker, operator: Operator
) -> None:
    """``started`` with the new run's id, at once; the run runs (its ENGINE_STARTED under that
    id) to its end; the answer echoes who asked, why and when, on the reply topic of the
    engine's org, the request's id and the engine's source."""
    engine = _engine(broker, org_id="acme")
    recorder = EventRecorder()
    engine.events.subscribe(recorder)
    async with serving(engine, {"nightly": nightly}):
        await operator.until(lambda: operator.announced() is not None)
        request = StartRequest(
            id="req-1",
            workflow="nightly",
            params={"day": "mon", "limit": 4},
            issued_by="alice",
            reason="backfill",
            issued_at=1795216320.5,
        )
        reply = await operator.ask(request)
        await recorder.until(lambda: any(isinstance(e, RunFinished) for e in recorder.events))
    (message,) = operator.replies
    assert message.topic == reply_topic("acme", "req-1", SOURCE)
    assert not message.retain
    assert (reply.outcome, reply.source, reply.workflow, reply.name) == (
        "started", SOURCE, "nightly", "nightly"
    )  # fmt: skip
    assert not reply.queued
    assert (reply.issued_by, reply.reason, reply.issued_at) == ("alice", "backfill", 1795216320.5)
    (started,) = [e for e in recorder.events if isinstance(e, RunStarted)]
    (finished,) = [e for e in recorder.events if isinstance(e, RunFinished)]
    assert started.run_id == finished.run_id == reply.run_id
    assert finished.status == "Succeeded"
    assert started.name == "nightly"
    assert started.origin == RunOrigin(
        workflow="nightly",
        params={"day": "mon", "limit": 4},
        request_id="req-1",
        issued_by="alice",
        reason="backfill",
        issued_at=1795216320.5,
    )
    assert engine.stats.starts_taken == 1


async def test_refusals_say_why_and_bad_requests_get_no_answer(
    broker: InMemoryBroker, operator: Operator, caplog: pytest.LogCaptureFixture
) -> None:
    """A workflow it does not serve, params that do not fit the function, a function that
    raises, a target that is not one, a rerun where no results are kept: refused, each with
    why. A request that is not one, or names another workflow than its topic: no answer,
    counted and logged."""

    def broken(day: str) -> Any:
        raise RuntimeError(f"no data for {day}")

    def not_a_target() -> Any:
        return 42

    @task
    def rates() -> float:
        return 1.08

    def cached() -> Any:
        return rates.with_cache()()

    engine = _engine(broker)
    workflows: dict[str, Callable[..., Any]] = {
        "nightly": nightly,
        "broken": broken,
        "plain": not_a_target,
        "cached": cached,
    }
    async with serving(engine, workflows):
        await operator.until(lambda: operator.announced() is not None)

        async def refused(request: StartRequest | dict[str, Any], topic: str | None = None) -> str:
            reply = await operator.ask(request, topic)
            assert reply.outcome == "refused"
            assert reply.run_id is None
            return reply.error

        assert (
            await refused(
                StartRequest(id="u1", workflow="weekly"),
                addressed_start_topic("local", "default", "weekly", SOURCE),
            )
            == "server-1 does not serve 'weekly' (it serves nightly, broken, plain, cached)"
        )
        assert (
            await refused(StartRequest(id="p1", workflow="nightly"))
            == "nightly: missing a required argument: 'day'"
        )
        assert (
            await refused(StartRequest(id="p2", workflow="nightly", params={"day": "x", "y": 1}))
            == "nightly: got an unexpected keyword argument 'y'"
        )
        assert (
            await refused(StartRequest(id="b1", workflow="broken", params={"day": "mon"}))
            == "broken(...) raised RuntimeError: no data for mon"
        )
        assert (await refused(StartRequest(id="t1", workflow="plain"))).startswith(
            "plain(...) raised InvalidTargetError: "
        )
        assert (await refused(StartRequest(id="c1", workflow="cached"))).startswith(
            "cached(...) raised CacheError: task 'rates' (rates-"
        )
        assert (
            await refused(StartRequest(id="r1", workflow="nightly", rerun_of="abcdef12"))
            == "this engine keeps no results: it cannot rerun abcdef12"
        )
        with caplog.at_level(logging.WARNING, "cascade.runtime.serve"):
            topic = addressed_start_topic("local", "default", "nightly", SOURCE)
            await operator.connector.publish(topic, b"{not json", qos=1)  # the connector's
            await operator.connector.publish(topic, {"id": "n1"}, qos=1)
            await operator.connector.publish(topic, {"id": "a/b", "workflow": "nightly"}, qos=1)
            await operator.send(StartRequest(id="w1", workflow="broken"), topic)
            await broker.idle()
    assert not operator.answers("w1")
    assert len(operator.replies) == 7
    assert engine.stats.starts_rejected == 3
    assert engine.stats.starts_refused == 7
    assert engine.stats.starts_taken == 0
    assert "rejected a start request on 'cascade/start/local/default/nightly/server-1'" in (
        caplog.text
    )


async def test_a_copy_of_a_request_gets_the_same_answer_and_starts_nothing(
    broker: InMemoryBroker, operator: Operator
) -> None:
    """A copy (a QoS 1 resend, a requester trying again) is answered as the first was; one
    that comes while the first is being answered gets that answer only."""
    engine = _engine(broker)
    recorder = EventRecorder()
    engine.events.subscribe(recorder)
    async with serving(engine, {"nightly": nightly}):
        await operator.until(lambda: operator.announced() is not None)
        request = StartRequest(id="dup", workflow="nightly", params={"day": "mon"})
        await operator.send(request)
        await operator.send(request)  # while the first is answered: its answer is the one
        await operator.until(lambda: len(operator.answers("dup")) == 1)
        await operator.send(request)
        await operator.until(lambda: len(operator.answers("dup")) == 2)
        await recorder.until(lambda: any(isinstance(e, RunFinished) for e in recorder.events))
        await operator.send(request)  # after its run ended too
        await operator.until(lambda: len(operator.answers("dup")) == 3)
        await broker.idle()
    first, *copies = operator.answers("dup")
    assert first.started
    assert copies == [first, first]
    assert len([e for e in recorder.events if isinstance(e, RunStarted)]) == 1
    assert (engine.stats.starts_taken, engine.stats.starts_duplicated) == (1, 3)


async def test_runs_beyond_max_runs_wait_and_beyond_max_queued_are_refused(
    broker: InMemoryBroker, operator: Operator
) -> None:
    """max_runs=1, max_queued=1: the first runs, the second is queued (answered started,
    queued), the third refused busy; the announcement shows the load; when the first ends
    the second starts."""
    gate = Gate()
    engine = _engine(broker)
    recorder = EventRecorder()
    engine.events.subscribe(recorder)
    async with serving(engine, {"gated": gate.workflow}, max_runs=1, max_queued=1):
        await operator.until(lambda: operator.announced() is not None)
        probed = gate.built  # serving built it once, to list its graph's Params
        first = await operator.ask(StartRequest(id="q1", workflow="gated"))
        await recorder.until(lambda: gate.entered == 1)
        second = await operator.ask(StartRequest(id="q2", workflow="gated"))
        third = await operator.ask(StartRequest(id="q3", workflow="gated"))
        await operator.until(lambda: (a := operator.announced()) is not None and a.queued == 1)
        loaded = operator.announced()
        assert (first.started, first.queued) == (True, False)
        assert (second.started, second.queued) == (True, True)
        assert third.outcome == "refused"
        assert third.error == "busy: 1 runs running and 1 queued (max_runs 1, max_queued 1)"
        assert probed == 1
        assert gate.built - probed == 2  # the third's workflow was not even asked for its target
        assert loaded is not None
        assert (loaded.running, loaded.queued) == (1, 1)
        assert [r.run_id for r in loaded.live] == [first.run_id, second.run_id]  # queued last
        gate.release.set()
        await recorder.until(
            lambda: (
                [e.run_id for e in recorder.events if isinstance(e, RunFinished)]
                == [first.run_id, second.run_id]
            )
        )
        await operator.until(
            lambda: (a := operator.announced()) is not None and (a.running, a.queued) == (0, 0)
        )


async def test_two_runs_at_once_each_with_its_own_commands_and_constraints(
    broker: InMemoryBroker, operator: Operator
) -> None:
    """Two served runs at once: both run together; a cancel over the broker stops only
    its run (each run listens to its own commands); the other ends Succeeded; a failed run
    does not stop serving."""
    gate = Gate()
    engine = _engine(broker)
    recorder = EventRecorder()
    engine.events.subscribe(recorder)
    async with serving(engine, {"gated": gate.workflow}, max_runs=2):
        await operator.until(lambda: operator.announced() is not None)
        one = await operator.ask(StartRequest(id="c1", workflow="gated", params={"tag": "one"}))
        two = await operator.ask(StartRequest(id="c2", workflow="gated", params={"tag": "two"}))
        await recorder.until(lambda: len(recorder.names(TaskRunning)) == 2)
        await operator.until(lambda: (a := operator.announced()) is not None and a.running == 2)
        assert one.run_id is not None
        assert two.run_id is not None
        assert {e.run_id for e in recorder.events if isinstance(e, RunStarted)} == {
            one.run_id,
            two.run_id,
        }
        await operator.connector.publish(
            cancel_topic("local", "default", one.run_id),
            CancelRequest(id="k1", run_id=one.run_id),
            qos=1,
        )
        await recorder.until(lambda: any(isinstance(e, RunFinished) for e in recorder.events))
        gate.release.set()
        await recorder.until(
            lambda: len([e for e in recorder.events if isinstance(e, RunFinished)]) == 2
        )
        ends = {e.run_id: e.status for e in recorder.events if isinstance(e, RunFinished)}
        assert ends == {one.run_id: "Cancelled", two.run_id: "Succeeded"}
        assert len([m for m in operator.replies if "/k1/" in m.topic]) == 1
        third = await operator.ask(StartRequest(id="c3", workflow="gated", params={"tag": "3"}))
        await recorder.until(lambda: len(recorder.names(RunFinished)) == 3)
        assert third.started
        assert engine.connector is not None
        assert engine.connector.is_connected  # the runs left it so


async def test_a_run_that_fails_ends_as_usual_and_serving_goes_on(
    broker: InMemoryBroker, operator: Operator
) -> None:
    attempts: list[int] = []

    @task(name="flaky")
    async def flaky(n: int) -> int:
        attempts.append(n)
        if len(attempts) == 1:
            raise ValueError("first time")
        return n

    engine = _engine(broker)
    recorder = EventRecorder()
    engine.events.subscribe(recorder)

    def build(n: int = 1) -> Any:
        return flaky(n)

    async with serving(engine, {"flaky": build}):
        await operator.until(lambda: operator.announced() is not None)
        await operator.ask(StartRequest(id="f1", workflow="flaky"))
        await recorder.until(lambda: len(recorder.names(RunFinished)) == 1)
        await operator.ask(StartRequest(id="f2", workflow="flaky", params={"n": 2}))
        await recorder.until(lambda: len(recorder.names(RunFinished)) == 2)
    assert [e.status for e in recorder.events if isinstance(e, RunFinished)] == [
        "Failed",
        "Succeeded",
    ]


async def test_stopping_cancels_the_runs_and_leaves_a_connection_it_did_not_open(
    broker: InMemoryBroker, operator: Operator
) -> None:
    """Cancelled, serve cancels its runs (each ends Cancelled) and clears its announcement;
    a connector connected before stays connected."""
    gate = Gate()
    connector = InMemoryConnector(broker, source_id=SOURCE)
    await connector.connect()
    engine = Engine(connector, heartbeat_interval=None)
    recorder = EventRecorder()
    engine.events.subscribe(recorder)
    async with serving(engine, {"gated": gate.workflow}):
        await operator.until(lambda: operator.announced() is not None)
        await operator.ask(StartRequest(id="s1", workflow="gated"))
        await recorder.until(lambda: gate.entered == 1)
    assert [e.status for e in recorder.events if isinstance(e, RunFinished)] == ["Cancelled"]
    assert broker.retained(served_topic("local", "default", SOURCE)) is None
    assert connector.is_connected
    await connector.disconnect()


async def test_shared_requests_go_each_to_one_of_the_servers(
    broker: InMemoryBroker, operator: Operator
) -> None:
    """Two engines serve nightly; requests on start_topic (the shared subscription) are each
    taken by exactly one of them, and both take some."""
    engines = [_engine(broker, "server-a"), _engine(broker, "server-b")]
    recorder = EventRecorder()
    for engine in engines:
        engine.events.subscribe(recorder)
    async with serving(engines[0], {"nightly": nightly}), serving(engines[1], {"nightly": nightly}):
        await operator.until(
            lambda: all(
                (a := operator.announced(s)) is not None and a.shared
                for s in ("server-a", "server-b")
            )
        )
        ids = [f"s{i}" for i in range(10)]
        for request_id in ids:
            request = StartRequest(id=request_id, workflow="nightly", params={"day": "mon"})
            await operator.send(request, start_topic("local", "default", "nightly"))
        await operator.until(lambda: all(operator.answers(i) for i in ids))
        await recorder.until(lambda: len(recorder.names(RunFinished)) == len(ids))
        await broker.idle()
    answers = [operator.answers(i) for i in ids]
    assert all(len(a) == 1 and a[0].started for a in answers)
    by = [a[0].source for a in answers]
    assert {"server-a", "server-b"} == set(by)
    assert [e.stats.starts_taken for e in engines] == [by.count("server-a"), by.count("server-b")]


async def test_an_engine_takes_the_starts_of_its_own_org_and_project_only(
    broker: InMemoryBroker, operator: Operator
) -> None:
    """A globex engine serving nightly announces under globex and takes no start of acme's,
    shared or addressed to it; acme's own engine takes acme's."""
    theirs = _engine(broker, "server-g", org_id="globex", project_id="etl")
    ours = _engine(broker, "server-a", org_id="acme", project_id="etl")
    async with serving(theirs, {"nightly": nightly}), serving(ours, {"nightly": nightly}):
        await operator.until(
            lambda: all(
                (a := operator.announced(s)) is not None and a.shared
                for s in ("server-g", "server-a")
            )
        )
        assert operator.place("server-g") == ("globex", "etl")
        topics = (
            start_topic("acme", "etl", "nightly"),
            addressed_start_topic("acme", "etl", "nightly", "server-g"),
            addressed_start_topic("acme", "etl", "nightly", "server-a"),
        )
        for i, topic in enumerate(topics):
            request = StartRequest(id=f"a{i}", workflow="nightly", params={"day": "mon"})
            await operator.send(request, topic)
        await operator.until(lambda: bool(operator.answers("a0") and operator.answers("a2")))
        await broker.idle()
    assert [r.source for r in operator.answers("a0") + operator.answers("a2")] == [
        "server-a",
        "server-a",
    ]
    assert operator.answers("a1") == []
    assert (theirs.stats.starts_taken, ours.stats.starts_taken) == (0, 2)


async def test_serve_checks_its_arguments() -> None:
    with pytest.raises(ValueError, match="needs a connector"):
        await Engine().serve({"nightly": nightly})
    engine = _engine(InMemoryBroker())
    with pytest.raises(ValueError, match="workflow's name"):
        await engine.serve({"night ly": nightly})
    with pytest.raises(ValueError, match="max_runs"):
        await engine.serve({"nightly": nightly}, max_runs=0)
    async with serving(engine, {"nightly": nightly}):
        assert isinstance(engine.connector, InMemoryConnector)
        broker = engine.connector.broker
        await eventually(
            lambda: broker.retained(served_topic("local", "default", SOURCE)) is not None
        )
        twin = Engine(engine.connector)
        with pytest.raises(RuntimeError, match="server-1 serves already"):
            await twin.serve({"nightly": nightly})
        with pytest.raises(RuntimeError, match="serving already"):
            await engine.serve({"nightly": nightly})
    with pytest.raises(ValueError, match="at most 256 workflows"):
        await engine.serve({f"w{i}": nightly for i in range(257)})

    def wordy(day: str) -> Any:
        return None

    wordy.__doc__ = "x" * 1000
    with pytest.raises(ValueError, match="bytes to describe in the announcement; at most"):
        await engine.serve({f"w{i}": wordy for i in range(30)})
    with pytest.raises(ValueError, match="positional-only"):
        await engine.serve({"nightly": lambda *args: None} | {"p": _positional})


def _positional(day: str, /) -> Any:
    return None


async def test_runs_at_once_each_obey_the_constraints(
    broker: InMemoryBroker, operator: Operator
) -> None:
    """A retained pause on task:after holds that task in both runs at once; the first run
    cancelled, the engine still shows the pause of the one still live; cleared, it lets the
    other run end."""

    @task(name="after")
    async def after(value: str) -> str:
        return value

    gate = Gate()
    pause = constraint_topic("task:after", "pause")
    await operator.connector.publish(pause, Constraint.pause("task:after"), qos=1, retain=True)
    engine = _engine(broker)
    recorder = EventRecorder()
    engine.events.subscribe(recorder)

    def pair(tag: str) -> Any:
        return after(gate.waits(tag))

    async with serving(engine, {"pair": pair}, max_runs=2):
        await operator.until(lambda: operator.announced() is not None)
        one = await operator.ask(StartRequest(id="p1", workflow="pair", params={"tag": "a"}))
        two = await operator.ask(StartRequest(id="p2", workflow="pair", params={"tag": "b"}))
        gate.release.set()
        await recorder.until(lambda: len(recorder.names(TaskBlocked)) == 2)
        assert {e.run_id for e in recorder.events if isinstance(e, TaskBlocked)} == {
            one.run_id,
            two.run_id,
        }
        assert one.run_id is not None
        assert engine.cancel(one.run_id) is not None
        await recorder.until(lambda: len(recorder.names(RunFinished)) == 1)
        assert [c.type for c in engine.constraints] == ["pause"]  # the live run's
        await operator.connector.publish(pause, b"", qos=1, retain=True)
        await recorder.until(lambda: len(recorder.names(RunFinished)) == 2)
    ends = {e.run_id: e.status for e in recorder.events if isinstance(e, RunFinished)}
    assert ends == {one.run_id: "Cancelled", two.run_id: "Succeeded"}
    assert engine.constraints == []


async def test_a_served_run_whose_target_is_skipped_ends_succeeded_as_its_tasks_did(
    broker: InMemoryBroker, operator: Operator, caplog: pytest.LogCaptureFixture
) -> None:
    """Engine.run raises DependencyMissingError for a skipped target; a served run has no
    caller to raise to: it ends Succeeded, nothing logged of it, and serving goes on."""

    @task(name="maybe")
    async def maybe(go: bool) -> str:
        return "went"

    engine = _engine(broker)
    recorder = EventRecorder()
    engine.events.subscribe(recorder)

    def build(go: bool = False) -> Any:
        return maybe(go).run_if(go)

    with caplog.at_level(logging.INFO, logger="cascade"):
        async with serving(engine, {"maybe": build}):
            await operator.until(lambda: operator.announced() is not None)
            await operator.ask(StartRequest(id="m1", workflow="maybe"))
            await recorder.until(lambda: len(recorder.names(RunFinished)) == 1)
    assert [e.status for e in recorder.events if isinstance(e, RunFinished)] == ["Succeeded"]
    assert [e.task_name for e in recorder.events if isinstance(e, TaskSkipped)] == ["maybe"]
    assert "DependencyMissingError" not in caplog.text
