"""SIGTERM as a stop: handled while a run or serving lasts, only where the application handles
it not itself, and left as it was afterwards (the end to end: the CLI's
tests/integration/test_sigterm_over_mqtt.py, with real processes)."""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Iterator
from types import FrameType

import pytest

from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.interfaces.serving import served_topic
from cascade.runtime import Engine, task


@pytest.fixture
def default_sigterm() -> Iterator[None]:
    """SIGTERM's disposition is the default for the test, and is so again after it."""
    before = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)


@task
def during() -> object:
    return signal.getsignal(signal.SIGTERM)


@pytest.mark.usefixtures("default_sigterm")
async def test_a_run_handles_sigterm_while_it_runs_and_leaves_it_as_it_was() -> None:
    engine = Engine(InMemoryConnector(InMemoryBroker()))
    handler = await engine.run(during())
    assert handler is not signal.SIG_DFL  # the loop's: SIGTERM would stop the run
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


@pytest.mark.usefixtures("default_sigterm")
async def test_an_applications_own_sigterm_handler_is_left_alone() -> None:
    def own(signum: int, frame: FrameType | None) -> None:
        """The application's."""

    signal.signal(signal.SIGTERM, own)
    engine = Engine(InMemoryConnector(InMemoryBroker()))
    assert await engine.run(during()) is own
    assert signal.getsignal(signal.SIGTERM) is own


@pytest.mark.usefixtures("default_sigterm")
async def test_a_serving_engine_handles_sigterm_until_it_stops() -> None:
    broker = InMemoryBroker()
    engine = Engine(InMemoryConnector(broker, source_id="etl-1"))
    announced = asyncio.Event()
    async with InMemoryConnector(broker, presence=False, source_id="reader") as reader:
        await reader.subscribe(served_topic("local", "default", "etl-1"), lambda m: announced.set())
        serving = asyncio.create_task(engine.serve({"during": during()}))
        await asyncio.wait_for(announced.wait(), 10)
        assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
        serving.cancel()
        with pytest.raises(asyncio.CancelledError):
            await serving
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_a_run_off_the_main_thread_leaves_sigterm_alone(default_sigterm: None) -> None:
    seen: list[object] = []

    def run() -> None:
        engine = Engine(InMemoryConnector(InMemoryBroker()))
        seen.append(asyncio.run(engine.run(during())))

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(30)
    assert seen == [signal.SIG_DFL]


@task
async def installs(handler: object) -> None:
    signal.signal(signal.SIGTERM, handler)  # type: ignore[arg-type]


@pytest.mark.usefixtures("default_sigterm")
async def test_a_handler_the_application_installs_during_a_run_stays_after_it() -> None:
    def own(signum: int, frame: FrameType | None) -> None:
        """The application's, installed while a run was live (a web server starting)."""

    engine = Engine(InMemoryConnector(InMemoryBroker()))
    await engine.run(installs(own))
    assert signal.getsignal(signal.SIGTERM) is own
