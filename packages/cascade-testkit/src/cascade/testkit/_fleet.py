"""A simulated fleet: thousands of engines from a few processes, for benchmarks and tests.

    settings = FleetSettings(broker.host, broker.port, engines=1_000, rate=10_000)
    with FleetSimulator(settings) as fleet:  # every engine online, then their runs
        ...
        before = fleet.counts()
        ...
        print(fleet.counts().rate_since(before))  # events/s it really published

Each worker process (``_fleet_worker``) publishes as ``engines / processes`` engines over one
MQTT connection (Cascade's own connector, as engines publish), the engines' messages built
with the public schemas (``_fleet_engines``): retained presence with a session each, one run
at a time of ``tasks_per_run`` tasks that start, block, complete and fail, numbered per run,
with heartbeats and each engine's retained summary (``_fleet_summaries``). One connection has one
will, so the engines have none: a killed worker leaves its engines online;
:meth:`FleetSimulator.stop` ends their runs and says them offline.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import queue
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import IO, Any

from ._fleet_engines import FleetSettings

__all__ = ["FleetCounts", "FleetSimulator"]

_JOIN_TIMEOUT = 30.0


class _Worker:
    """One worker process (``python -m cascade.testkit._fleet_worker``) and its lines."""

    def __init__(self, settings: FleetSettings, index: int) -> None:
        # the child imports what this process imports, from where this process does
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "cascade.testkit._fleet_worker",
                json.dumps(dataclasses.asdict(settings)),
                str(index),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.lines: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        assert self.process.stdout is not None
        threading.Thread(target=self._read, args=(self.process.stdout,), daemon=True).start()

    def _read(self, stdout: IO[str]) -> None:
        for line in stdout:
            self.lines.put(line)
        self.lines.put(None)

    def send(self, command: str) -> None:
        """Tell the worker ``command`` (a worker gone is told nothing)."""
        stdin = self.process.stdin
        try:
            if stdin is not None and not stdin.closed:
                stdin.write(command + "\n")
                stdin.flush()
        except BrokenPipeError:
            pass

    def receive(self, kind: str, deadline: float) -> dict[str, Any]:
        """The worker's next word of ``kind`` (answers to ``report`` asked earlier are
        skipped), raising what the worker raised, or TimeoutError at ``deadline``."""
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise TimeoutError(f"a fleet worker did not say {kind!r} in time") from None
            if line is None:
                self.lines.put(None)
                code = self.process.wait()
                raise RuntimeError(f"a fleet worker ended (exit {code}) before saying {kind!r}")
            got, payload = json.loads(line)
            if got == "error":
                raise RuntimeError(f"a fleet worker failed:\n{payload}")
            if got == kind:
                result: dict[str, Any] = payload
                return result

    def end(self) -> None:
        """Close its stdin (a worker still running stops on it), wait, kill if it lingers."""
        if self.process.stdin is not None:
            with contextlib.suppress(BrokenPipeError):
                self.process.stdin.close()
        try:
            self.process.wait(_JOIN_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


@dataclass(frozen=True)
class FleetCounts:
    """What a fleet has published so far, over all its processes.

    ``events`` are the numbered task and run events (what ``rate`` paces); ``kinds`` splits
    them by task state (``RUNNING``, ``COMPLETED``, ``FAILED``, ``BLOCKED``, ``CANCELLED``
    at the end) and run event (``ENGINE_STARTED``, ``ENGINE_STOPPED``). ``summaries``: the
    engines' summaries published. ``engines`` (in :attr:`FleetSimulator.final` only): each
    engine's events by kind, by source, the truth its last summary must agree with
    (``cascade.testkit.final_tallies``). ``unsent``: messages
    the client refused while it was not connected (``disconnects``: how often it lost its
    connection, each said on stderr with the reason); ``shortfall``: events the token buckets
    let go because their process could not keep up with the rate. ``at`` is when they were
    collected (``time.monotonic()``), ``seconds`` how long the fleet has been publishing runs.
    """

    events: int = 0
    heartbeats: int = 0
    summaries: int = 0
    statuses: int = 0
    unsent: int = 0
    disconnects: int = 0
    shortfall: int = 0
    running_runs: int = 0
    seconds: float = 0.0
    at: float = field(default_factory=time.monotonic)
    kinds: dict[str, int] = field(default_factory=dict)
    engines: dict[str, dict[str, int]] = field(default_factory=dict)

    @classmethod
    def total(cls, reports: list[dict[str, Any]]) -> FleetCounts:
        """The sum of the workers' reports."""
        kinds: dict[str, int] = {}
        engines: dict[str, dict[str, int]] = {}
        for report in reports:
            for kind, count in report["kinds"].items():
                kinds[kind] = kinds.get(kind, 0) + count
            engines.update(report.get("engines", {}))
        summed = (
            "events",
            "heartbeats",
            "summaries",
            "statuses",
            "unsent",
            "disconnects",
            "shortfall",
            "running_runs",
        )
        return cls(
            **{name: sum(report[name] for report in reports) for name in summed},
            seconds=max(report["seconds"] for report in reports),
            kinds=kinds,
            engines=engines,
        )

    @property
    def runs_started(self) -> int:
        """Runs started (``ENGINE_STARTED`` sent)."""
        return self.kinds.get("ENGINE_STARTED", 0)

    def rate_since(self, earlier: FleetCounts) -> float:
        """Events a second published between ``earlier`` and these counts."""
        span = self.at - earlier.at
        return (self.events - earlier.events) / span if span > 0 else 0.0

    def heartbeat_rate_since(self, earlier: FleetCounts) -> float:
        """Heartbeats a second published between ``earlier`` and these counts."""
        span = self.at - earlier.at
        return (self.heartbeats - earlier.heartbeats) / span if span > 0 else 0.0

    def summary_rate_since(self, earlier: FleetCounts) -> float:
        """Engine summaries a second published between ``earlier`` and these counts."""
        span = self.at - earlier.at
        return (self.summaries - earlier.summaries) / span if span > 0 else 0.0


class FleetSimulator:
    """``settings.engines`` simulated engines in ``settings.processes`` worker processes.

    :meth:`start` starts the workers (it returns at once); :meth:`wait_ready` returns once
    every engine's retained ``online`` status is acknowledged by the broker; :meth:`go`
    starts their runs, at ``settings.rate`` events a second over the fleet; :meth:`counts`
    says what was published so far; :meth:`stop` ends every run as a stopped engine does
    (its tasks ``FAILED`` with ``cancelled``, then ``ENGINE_STOPPED``), publishes each
    engine's last summary and every engine's ``offline`` and ends the workers. As a context
    manager: start, wait_ready and go on entry, stop on exit. A worker's error is raised
    (with its traceback) by whichever of these hears of it. :attr:`pids` are the workers'
    process ids (to measure them).
    """

    def __init__(self, settings: FleetSettings) -> None:
        self.settings = settings
        self._workers: list[_Worker] = []
        self.final: FleetCounts | None = None
        """The counts :meth:`stop` got from the workers, once stopped."""

    @property
    def pids(self) -> list[int]:
        """The worker processes' ids."""
        return [worker.process.pid for worker in self._workers]

    def start(self) -> None:
        """Start the worker processes (each connects and announces its engines)."""
        if self._workers:
            raise RuntimeError("this fleet has started already")
        self._workers = [_Worker(self.settings, n) for n in range(self.settings.processes)]

    def wait_ready(self, timeout: float = 120.0) -> FleetCounts:
        """Return once every engine's ``online`` is acknowledged (the births, retained)."""
        deadline = time.monotonic() + timeout
        return FleetCounts.total([worker.receive("ready", deadline) for worker in self._workers])

    def go(self) -> None:
        """Start the engines' runs."""
        for worker in self._workers:
            worker.send("go")

    def counts(self, timeout: float = 30.0) -> FleetCounts:
        """What the fleet has published so far (asked of every worker now)."""
        deadline = time.monotonic() + timeout
        for worker in self._workers:
            worker.send("report")
        return FleetCounts.total([worker.receive("report", deadline) for worker in self._workers])

    def stop(self, timeout: float = 120.0) -> FleetCounts:
        """End every run, say every engine offline, end the workers; the final counts."""
        if self.final is not None:
            return self.final
        deadline = time.monotonic() + timeout
        try:
            for worker in self._workers:
                worker.send("stop")
            reports = [worker.receive("stopped", deadline) for worker in self._workers]
            self.final = FleetCounts.total(reports)
            return self.final
        finally:
            for worker in self._workers:
                worker.end()

    def __enter__(self) -> FleetSimulator:
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            for worker in self._workers:
                worker.end()
            raise
        self.go()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
