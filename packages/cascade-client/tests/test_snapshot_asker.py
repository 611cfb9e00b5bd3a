"""A reader's snapshot requests: the asker's per-run rate, and a snapshot's events."""

from __future__ import annotations

import msgspec

from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.interfaces import (
    ConnectorError,
    Envelope,
    Message,
    Payload,
    RunSnapshot,
    SnapshotTask,
    decode_envelope,
)
from cascade.reader import SnapshotAsker, snapshot_events


async def test_the_asker_asks_each_run_at_most_once_per_interval() -> None:
    """Two runs asked three times each within the interval: one request each; later, again."""
    now = [0.0]
    broker = InMemoryBroker()
    seen: list[Message] = []
    async with InMemoryConnector(broker, presence=False) as engine_side:
        await engine_side.subscribe("cascade/command/+/snapshot", seen.append)
        async with InMemoryConnector(broker, presence=False) as reader:
            asker = SnapshotAsker(reader, again_after=3.0, clock=lambda: now[0])
            assert [asker.ask("r1", 0), asker.ask("r1", 4), asker.ask("r2", 7)] == [
                True,
                False,
                True,
            ]
            now[0] = 3.5
            assert asker.ask("r1", 9) is True
            await asker.aclose()
            await broker.idle()
    asked = [(m.topic, m.payload) for m in seen]
    assert asked == [
        ("cascade/command/r1/snapshot", {"run_id": "r1"}),
        ("cascade/command/r2/snapshot", {"run_id": "r2", "after": 7}),
        ("cascade/command/r1/snapshot", {"run_id": "r1", "after": 9}),
    ]
    assert (asker.asked, asker.failed) == (3, 0)


class RefusingConnector(InMemoryConnector):
    """Every publish fails, as a connector whose buffer refuses it would."""

    async def publish(
        self, topic: str, payload: Payload, qos: int = 0, retain: bool = False
    ) -> None:
        raise ConnectorError("refused")


async def test_a_request_the_connector_refuses_is_counted() -> None:
    """A connector that raises: counted in failed, the reader goes on."""
    asker = SnapshotAsker(RefusingConnector(InMemoryBroker(), presence=False))
    assert asker.ask("r1") is True
    await asker.aclose()
    assert (asker.asked, asker.failed) == (1, 1)


def test_a_snapshot_lists_its_tasks_as_the_events_they_were() -> None:
    """Each task comes back in an envelope of the run with its own seq and ts; CANCELLED read."""
    task = SnapshotTask(
        seq=7, ts="2026-11-23T10:00:00+00:00", task_id="t", task_name="n", state="FAILED",
        error="RunCancelledError: x", cancelled=True,
    )  # fmt: skip
    body = RunSnapshot(after=0, through=9, last_seq=9, tasks=[task])
    answer = Envelope(run_id="r", org_id="o", project_id="p", source="e", body=body)
    decoded = decode_envelope(msgspec.json.encode(answer))
    (event,) = snapshot_events(decoded)
    assert (event.seq, event.ts, event.run_id, event.source) == (7, task.ts, "r", "e")
    assert event.body == task.event()
    assert task.event().reader_state == "CANCELLED"
    assert snapshot_events(Envelope(run_id="r", org_id="o", project_id="p", source="e",
                                    body=task.event())) == []  # fmt: skip
