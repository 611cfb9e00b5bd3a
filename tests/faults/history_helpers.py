"""The history's fault scenarios' parts: numbered runs published as an engine publishes them,
a `cascade record` process, and what the database holds."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa

from cascade.history import History
from cascade.interfaces import Connector, events_topic, heartbeat_topic

CASCADE = [sys.executable, "-m", "cascade.cli"]


def cli(*args: str) -> str:
    """`cascade ARGS` (a reader), wide enough that no table cell wraps; its stdout."""
    wide = {**os.environ, "COLUMNS": "400"}
    done = subprocess.run(
        [*CASCADE, *args], capture_output=True, text=True, timeout=60, check=False, env=wide
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


class NumberedRun:
    """One run's envelopes as an engine sends them, numbered 1, 2, 3, ...: task states at QoS 0,
    the run's start and end at QoS 1, heartbeats with ``last_seq``. Keeps what it published."""

    def __init__(
        self,
        connector: Connector,
        *,
        project: str = "faults",
        source: str = "fault-engine",
        prefix: str = "cascade",
    ) -> None:
        self.connector = connector
        self.run_id = uuid.uuid4().hex
        self.project = project
        self.source = source
        self.prefix = prefix
        self.seq = 0
        self.sent: dict[int, tuple[str, dict[str, Any], int]] = {}  # seq: topic, payload, QoS
        self._tasks = 0

    def _envelope(self, body: dict[str, Any], seq: int | None) -> dict[str, Any]:
        envelope: dict[str, Any] = {
            "v": "1.0",
            "ts": datetime.now(timezone.utc).isoformat(),
            "run_id": self.run_id,
            "org_id": "local",
            "project_id": self.project,
            "source": self.source,
            "body": body,
        }
        if seq is not None:
            envelope["seq"] = seq
        return envelope

    async def _event(self, body: dict[str, Any], qos: int) -> None:
        self.seq += 1
        topic = events_topic("local", self.project, self.run_id, prefix=self.prefix)
        payload = self._envelope(body, self.seq)
        self.sent[self.seq] = (topic, payload, qos)
        await self.connector.publish(topic, payload, qos=qos)

    async def start(self) -> None:
        """``ENGINE_STARTED`` (QoS 1)."""
        await self._event({"type": "LifecycleEvent", "event": "ENGINE_STARTED"}, 1)

    async def tasks(self, count: int, *, per_second: float | None = None) -> None:
        """``count`` task states (QoS 0): each task RUNNING then COMPLETED, ``per_second`` at
        most (a pace, in bursts of 50)."""
        loop = asyncio.get_running_loop()
        began = loop.time()
        for index in range(count):
            task = self._tasks + index // 2
            state = "RUNNING" if index % 2 == 0 else "COMPLETED"
            body = {
                "type": "TaskStateEvent",
                "task_id": f"load-{task}",
                "task_name": "load",
                "state": state,
                "duration_ms": 0.0 if state == "RUNNING" else 12.5,
                "error": "",
            }
            await self._event(body, 0)
            if per_second is not None and index % 50 == 49:
                ahead = began + (index + 1) / per_second - loop.time()
                if ahead > 0:
                    await asyncio.sleep(ahead)  # a pace, not a synchronisation
        self._tasks += (count + 1) // 2

    def skip(self, count: int = 1) -> None:
        """Number ``count`` events and send none, as an engine whose full buffer dropped them."""
        self.seq += count

    async def heartbeat(self) -> None:
        """A heartbeat saying the last number sent (QoS 0, not numbered itself)."""
        topic = heartbeat_topic("local", self.project, self.run_id, prefix=self.prefix)
        body = {"type": "Heartbeat", "last_seq": self.seq, "dropped_telemetry": 0}
        await self.connector.publish(topic, self._envelope(body, None))

    async def stop(self, status: str = "Succeeded") -> None:
        """``ENGINE_STOPPED`` (QoS 1), the run's last number."""
        body = {"type": "LifecycleEvent", "event": "ENGINE_STOPPED", "status": status}
        await self._event(body, 1)

    async def resend(self, seqs: range) -> None:
        """Copies of events already sent, as an engine resends what was unconfirmed."""
        for seq in seqs:
            topic, payload, qos = self.sent[seq]
            await self.connector.publish(topic, payload, qos=qos)


class RecorderProcess:
    """`cascade record ARGS` in a child process: its first line, its stderr, its summary."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.first_line = ""
        self.errors: list[str] = []
        self.error_seen = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None

    @classmethod
    async def start(cls, *args: str) -> RecorderProcess:
        """Start it and wait for its first line (it is subscribed and connected then)."""
        process = await asyncio.create_subprocess_exec(
            *CASCADE,
            "record",
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        recorder = cls(process)
        recorder._reader = asyncio.create_task(recorder._read_errors())
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), 30)
        recorder.first_line = line.decode()
        if not recorder.first_line.startswith("recording "):
            await recorder.close()
            raise AssertionError(f"cascade record did not start: {line!r} {recorder.errors}")
        return recorder

    async def _read_errors(self) -> None:
        stderr = self.process.stderr
        assert stderr is not None
        while line := await stderr.readline():
            self.errors.append(line.decode(errors="replace").rstrip("\n"))
            self.error_seen.set()

    async def error_line(self, needle: str, timeout: float = 30.0) -> str:
        """The first stderr line holding ``needle``, waiting for it at most ``timeout`` s."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            found = next((line for line in self.errors if needle in line), None)
            if found is not None:
                return found
            self.error_seen.clear()
            await asyncio.wait_for(self.error_seen.wait(), max(0.0, deadline - loop.time()))

    def kill(self) -> None:
        """SIGKILL: the recorder dies mid-stream, as in a crash or an OOM kill."""
        self.process.kill()

    async def finish(self, timeout: float = 30.0) -> tuple[int, str]:
        """SIGTERM (as Ctrl-C), then its exit code and its last stdout line (the summary)."""
        self.process.terminate()
        assert self.process.stdout is not None
        out = await asyncio.wait_for(self.process.stdout.read(), timeout)
        code = await asyncio.wait_for(self.process.wait(), timeout)
        if self._reader is not None:
            await self._reader
        lines = out.decode().strip().splitlines()
        return code, lines[-1] if lines else ""

    async def close(self) -> None:
        """Kill it if it still runs, and reap it."""
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
        await self.process.wait()
        if self._reader is not None:
            await self._reader


async def until(
    check: Callable[[], bool], timeout: float = 30.0, *, what: str = "the condition"
) -> float:
    """Poll ``check`` (another process's database) until it holds; seconds it took."""
    loop = asyncio.get_running_loop()
    began = loop.time()
    while not await asyncio.to_thread(check):
        if loop.time() - began > timeout:
            raise AssertionError(f"{what} did not come within {timeout} s")
        await asyncio.sleep(0.1)  # polling another process's database
    return loop.time() - began


MARK_PROJECT = "faults-mark"
"""The project of :func:`until_delivered`'s marks: each a run of one task state."""


async def until_delivered(url: str, connector: Connector, timeout: float = 30.0) -> float:
    """Wait until the recorder writing ``url`` has taken everything ``connector`` published
    at QoS 0 so far (stored, or counted as dropped); seconds it took.

    It publishes a mark, a QoS 0 task state of a run of its own (project
    :data:`MARK_PROJECT`), and waits for the history to store it: one publisher's messages of
    one QoS level keep their order on every broker tested, and the recorder writes in the
    order it receives. A run's end is no such mark: it goes at QoS 1, which RabbitMQ delivers
    ahead of the QoS 0 task states published before it.
    """
    mark = NumberedRun(connector, project=MARK_PROJECT)
    await mark.tasks(1)
    return await until(
        lambda: len(stored_seqs(url, mark.run_id)) == 1, timeout, what="the mark (QoS 0)"
    )


def stored_seqs(url: str, run_id: str) -> list[int]:
    """Every number of ``run_id`` the database holds, as stored (copies would show twice)."""
    with History(url) as history:
        engine = sa.create_engine(history.url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                sa.text(
                    "SELECT seq FROM task_events WHERE run_id = :r AND seq IS NOT NULL "
                    "UNION ALL SELECT seq FROM run_events WHERE run_id = :r AND seq IS NOT NULL"
                ),
                {"r": run_id},
            ).all()
    finally:
        engine.dispose()
    return sorted(row[0] for row in rows)


def run_status(url: str, run_id: str) -> str | None:
    """The run's status in the history, ``None`` if it has not got there."""
    with History(url) as history:
        detail = history.run(run_id)
    return None if detail is None else detail.run.status
