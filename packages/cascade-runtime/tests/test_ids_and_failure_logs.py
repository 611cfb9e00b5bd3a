"""Bad ids are refused when the engine is made; connector failures are logged with their cause."""

from __future__ import annotations

import asyncio
import logging

import pytest

from cascade.connector_kit.testing import InMemoryConnector
from cascade.interfaces import InvalidIdError
from cascade.runtime import Engine, TelemetrySubscriber, task

MAX_ID_BYTES = 1024  # the protocol's bound, as docs/protocol.md states it


@task
async def one() -> int:
    return 1


@pytest.mark.parametrize("field", ["org_id", "project_id"])
@pytest.mark.parametrize("value", ["acme\udcff", "x" * (MAX_ID_BYTES + 1)])
def test_a_bad_id_is_refused_at_construction(field: str, value: str) -> None:
    """Not at the start of every run: Engine(...) raises, naming the field."""
    with pytest.raises(ValueError, match=rf"^{field} "):
        Engine(**{field: value})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("variable", "field"), [("CASCADE_ORG_ID", "org_id"), ("CASCADE_PROJECT_ID", "project_id")]
)
def test_a_bad_id_from_the_environment_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, field: str
) -> None:
    """A surrogate from os.environ (bytes that are not UTF-8) names the variable it came from."""
    monkeypatch.setenv(variable, "acme\udcff")
    with pytest.raises(InvalidIdError, match=rf"^{field} is not valid UTF-8.*\${variable}"):
        Engine(InMemoryConnector(presence=False))
    assert Engine(**{field: "ok"}).org_id  # type: ignore[arg-type]  # a given id wins


async def test_a_bad_org_id_used_to_fail_every_run_and_now_fails_nothing() -> None:
    """A valid unusual id (wildcards, non-ASCII) runs and publishes, encoded into the topic."""
    connector = InMemoryConnector(presence=False)
    engine = Engine(connector, org_id="a/b+#", project_id="ünï", heartbeat_interval=None)
    assert await engine.run(one()) == 1


@pytest.mark.parametrize("field", ["run_id", "org_id", "project_id"])
def test_the_telemetry_subscriber_refuses_a_bad_id(field: str) -> None:
    """TelemetrySubscriber is public too: it validates the ids it puts in topics and payloads."""
    ids = {"run_id": "r", "org_id": "o", "project_id": "p", field: "\udcff"}
    with pytest.raises(InvalidIdError, match=rf"^{field} "):
        TelemetrySubscriber(InMemoryConnector(), **ids)  # type: ignore[arg-type]


class Hanging(InMemoryConnector):
    """connect() or disconnect() never returns."""

    def __init__(self, hang: str) -> None:
        super().__init__(presence=False)
        self.hang = hang

    async def connect(self, *, require: bool = False) -> None:
        if self.hang == "connect":
            await asyncio.Event().wait()
        await super().connect()

    async def disconnect(self) -> None:
        if self.hang == "disconnect":
            await asyncio.Event().wait()
        await super().disconnect()


class BareTimeout(InMemoryConnector):
    """disconnect() raises a TimeoutError without a message, at once."""

    async def disconnect(self) -> None:
        await super().disconnect()
        raise TimeoutError


async def test_a_hung_disconnect_names_the_step_and_the_limit(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Not 'disconnect failed: TimeoutError: ' but what timed out, after how long, and why."""
    connector = Hanging("disconnect")
    engine = Engine(connector, heartbeat_interval=None, shutdown_timeout=0.05)
    with caplog.at_level(logging.WARNING, "cascade.runtime.engine"):
        await engine.run(one())
    await InMemoryConnector.disconnect(connector)
    assert caplog.messages == ["disconnect did not finish within 0.05 s (shutdown_timeout)"]


async def test_a_hung_connect_names_the_step_and_the_limit(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The run starts without the retained constraints, and the log says why and after what."""
    engine = Engine(Hanging("connect"), heartbeat_interval=None, connect_wait=0.05)
    with caplog.at_level(logging.WARNING, "cascade.runtime.engine"):
        await engine.run(one())
    assert caplog.messages[0].startswith(
        "the retained constraints are not known within 0.05 s (connect_wait): not connected to "
        "the broker yet (still trying) (broker "
    )
    assert engine.stats.constraints_unknown == 1


async def test_a_bare_timeout_of_the_connector_is_not_taken_for_the_deadline(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A TimeoutError the connector raised itself, early: said so, not blamed on the limit."""
    engine = Engine(BareTimeout(presence=False), heartbeat_interval=None, shutdown_timeout=30)
    with caplog.at_level(logging.WARNING, "cascade.runtime.engine"):
        await engine.run(one())
    assert caplog.messages == ["disconnect failed: TimeoutError (without a message)"]


class FailingPublish(InMemoryConnector):
    async def publish(self, *args: object, **kwargs: object) -> None:
        raise TimeoutError


async def test_a_failed_telemetry_publish_never_logs_an_empty_reason(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The telemetry warning names the exception and says it had no message."""
    engine = Engine(FailingPublish(presence=False), heartbeat_interval=None)
    with caplog.at_level(logging.WARNING, "cascade.runtime.telemetry"):
        await engine.run(one())
    assert caplog.messages
    assert all(m.endswith("TimeoutError: (without a message)") for m in caplog.messages)
