"""History fault (a): `cascade record --client-id` SIGKILLed mid-stream and started again.

The broker keeps the recorder's session while it is dead: the QoS 1 messages (a run's start and
end) published meanwhile reach the new process; the QoS 0 task states published meanwhile, and
what the dead one had received but not yet written, are lost, and counted: each run's missing
events, from its numbers, shown by `cascade runs` and `cascade run`. The database is intact
(SQLite's integrity check) and holds every event once, copies resent by the engine included.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import uuid
from pathlib import Path

import pytest

from cascade.connectors.mqtt import MqttConnector
from cascade.history import History
from cascade.interfaces import Constraint, constraint_topic
from cascade.testkit import OwnBroker

from .conftest import Figures
from .history_helpers import (
    NumberedRun,
    RecorderProcess,
    cli,
    run_status,
    stored_seqs,
    until,
    until_delivered,
)

RATE = 2_000  # task states a second


@pytest.mark.timeout(180)
async def test_history_recorder_killed_and_restarted(
    own_broker: OwnBroker, tmp_path: Path, figures: Figures
) -> None:
    """Killed while a run streams, started again: the run's end (sent while it was dead) is
    there, every event stored once, what was lost counted, the file intact."""
    figures.scenario = "history (a) recorder SIGKILLed, restarted (persistent session)"
    db = tmp_path / "history.sqlite3"
    url = f"sqlite:///{db}"
    address = f"{own_broker.host}:{own_broker.port}"
    args = ["--host", address, "--db", str(db), "--client-id", f"rec-{uuid.uuid4().hex[:8]}"]
    engine = MqttConnector(own_broker.host, own_broker.port, presence=False)
    await engine.connect(require=True)
    recorders: list[RecorderProcess] = []
    try:
        recorders.append(await RecorderProcess.start(*args))
        pause = Constraint.pause("task:load")
        await engine.publish(constraint_topic("task:load", "pause"), pause, qos=1, retain=True)
        run = NumberedRun(engine)
        await run.start()
        await run.tasks(2_000, per_second=RATE)
        await until(lambda: len(stored_seqs(url, run.run_id)) > 1_000, what="half the run stored")
        streaming = asyncio.create_task(run.tasks(4_000, per_second=RATE))
        await asyncio.sleep(0.5)  # mid-stream: events are arriving and being written
        recorders[0].kill()
        await recorders[0].process.wait()
        killed_at = run.seq
        await streaming
        run.skip()  # one the engine dropped: something is missing on every broker
        await run.stop()  # QoS 1, while no recorder runs: the broker keeps it for the session
        second = NumberedRun(engine)
        await second.start()
        await second.tasks(200)
        await engine.flush(10)
        sent_while_dead = run.seq - killed_at - 1  # the skipped one was never sent

        loop = asyncio.get_running_loop()
        began = loop.time()
        recorders.append(await RecorderProcess.start(*args))
        await second.stop()
        await run.resend(range(1, 101))  # the engine resends after a lost connection
        await engine.flush(10)
        caught_up = await until(
            lambda: run_status(url, second.run_id) == "Succeeded", what="the second run's end"
        )
        await until(lambda: len(stored_seqs(url, run.run_id)) >= 2_000, what="resends written")
        await until_delivered(url, engine)  # the second run's end may come before its states
        took = loop.time() - began
        code, summary = await recorders[1].finish()
    finally:
        for recorder in recorders:
            await recorder.close()
        await engine.disconnect()
    assert code == 0, recorders[1].errors

    with sqlite3.connect(db) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    seqs = stored_seqs(url, run.run_id)
    assert len(seqs) == len(set(seqs)), "an event stored twice"
    assert set(seqs) <= set(run.sent)
    with History(url) as history:
        detail = history.run(run.run_id)
        audit = history.audit()
    assert detail is not None
    # its end came while no recorder ran: kept by the broker, delivered to the new process
    assert detail.run.status == "Succeeded"
    missing = detail.run.missing_events
    assert missing == run.seq - len(seqs)  # every loss counted
    if own_broker.is_mosquitto:
        # mosquitto queues no QoS 0 message for an offline session (queue_qos0_messages false);
        # RabbitMQ 3.10 keeps them in the session's queue (measured: 2,950 task states sent
        # while dead, all stored after the restart), so there only the skipped one and what the
        # killed recorder held unwritten (often nothing: it writes as soon as it has any) go.
        assert missing > 1
    assert missing <= sent_while_dead + 1 + 2_000  # at most what came after the first check
    assert [(e.action, e.scope) for e in audit] == [("set", "task:load")]  # once, not twice
    assert run_status(url, second.run_id) == "Succeeded"  # started and ended while away/back
    assert " duplicates, " in summary

    listed = cli("runs", "--db", str(db))
    assert "missing" in listed
    assert f"{missing:,}" in listed
    shown = cli("run", run.run_id[:12], "--db", str(db))
    assert f"missing: {missing:,} events the engine numbered" in shown
    as_json = json.loads(cli("runs", "--db", str(db), "--json"))
    assert {r["run_id"]: r["missing_events"] for r in as_json}[run.run_id] == missing

    figures.emitted = len(run.sent) + len(second.sent)
    figures.delivered = len(seqs) + len(stored_seqs(url, second.run_id))
    figures.dropped = missing
    figures.seconds = took
    figures.what = "restart to caught up"
    figures.notes.append(
        f"{sent_while_dead} events sent while dead ({sent_while_dead - 1} QoS 0 task states, "
        f"the run's end at QoS 1); {missing} missing in all (1 never sent), counted per run; "
        f"the end kept "
        f"by the broker; second run's end caught up {caught_up:.2f} s after restart"
    )
