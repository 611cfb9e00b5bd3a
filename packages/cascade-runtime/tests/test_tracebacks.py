"""A failed attempt's traceback is published on its FAILED or RETRYING event, bounded."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.interfaces import decode_envelope, events_topic
from cascade.runtime import Engine, RunStarted, TaskFailedError, task

MAX_TELEMETRY_PAYLOAD_BYTES = 256 * 1024  # the protocol's bound, as docs/protocol.md states it
MAX_TRACEBACK_LENGTH = 8 * 1024


@task
def parse(row: int) -> int:
    if row == 3:
        raise ValueError(f"row {row} has a negative amount")  # the raising line
    return row


@task
async def fine(x: int) -> int:
    return x


@task
def deep() -> None:
    cause: Exception | None = None
    for level in range(100):  # a chain of distinct exceptions: Python folds no line of it
        try:
            raise ValueError(f"level {level}") from cause
        except ValueError as exc:
            cause = exc
    raise RuntimeError("at the top") from cause


async def _bodies(work: Any) -> list[dict[str, Any]]:
    """The task events' bodies the run of ``work`` published, decoded as readers do."""
    broker = InMemoryBroker()
    engine = Engine(
        InMemoryConnector(broker, presence=False),
        org_id="o",
        project_id="p",
        heartbeat_interval=None,
    )
    started: list[RunStarted] = []
    engine.events.subscribe(lambda e: started.append(e) if isinstance(e, RunStarted) else None)
    with pytest.raises(TaskFailedError):
        await engine.run(work)
    topic = events_topic("o", "p", started[0].run_id)
    raw = [m.raw for m in broker.history if m.topic == topic]
    assert all(len(r) <= MAX_TELEMETRY_PAYLOAD_BYTES for r in raw)
    for r in raw:
        decode_envelope(r)  # every one is valid for a reader
    return [json.loads(r)["body"] for r in raw if json.loads(r)["body"]["type"] == "TaskStateEvent"]


async def test_a_failed_task_publishes_its_traceback_naming_the_raising_line() -> None:
    """FAILED carries the traceback as Python prints it: the task's file, function and the
    line that raised, and the exception; RUNNING and COMPLETED events carry none."""
    bodies = await _bodies(parse(fine(3)))
    by_state = {(b["task_name"], b["state"]): b for b in bodies}
    failed = by_state[("parse", "FAILED")]
    tb = failed["traceback"]
    assert tb.startswith("Traceback (most recent call last):\n")
    assert 'test_tracebacks.py", line ' in tb
    assert ", in parse\n" in tb
    assert 'raise ValueError(f"row {row} has a negative amount")  # the raising line' in tb
    assert tb.endswith("ValueError: row 3 has a negative amount\n")
    assert failed["error"] == "ValueError: row 3 has a negative amount"
    assert [b for b in bodies if b["state"] != "FAILED" and "traceback" in b] == []


async def test_each_failed_attempt_of_a_retried_task_publishes_its_traceback() -> None:
    """RETRYING (an attempt failed, another follows) carries that attempt's traceback too."""
    bodies = await _bodies(parse.with_retry(max_attempts=2)(3))
    states = [(b["state"], "traceback" in b) for b in bodies]
    assert states == [("RUNNING", False), ("RETRYING", True), ("RUNNING", False), ("FAILED", True)]
    for body in bodies[1], bodies[3]:
        assert body["traceback"].endswith("ValueError: row 3 has a negative amount\n")
        assert "# the raising line" in body["traceback"]


async def test_a_long_traceback_is_cut_in_its_middle_and_says_so() -> None:
    """A traceback over MAX_TRACEBACK_LENGTH keeps its start and its end (the raising line
    and the exception), says how much it left out, and the event stays under the bound."""
    bodies = await _bodies(deep())
    tb = next(b["traceback"] for b in bodies if b["state"] == "FAILED")
    assert tb.startswith("Traceback (most recent call last):\n")
    assert "ValueError: level 0\n" in tb  # where it began
    assert tb.endswith('raise RuntimeError("at the top") from cause\nRuntimeError: at the top\n')
    assert "ValueError: level 50\n" not in tb
    marker = tb.index("\n… (")
    assert tb[marker:].split("\n", 2)[1].endswith(" more characters)")
    assert MAX_TRACEBACK_LENGTH < len(tb) < MAX_TRACEBACK_LENGTH + 40
