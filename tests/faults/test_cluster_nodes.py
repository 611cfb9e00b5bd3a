"""Node losses on a three-node NATS JetStream cluster speaking MQTT (issue 50's scenarios).

Each scenario starts a cluster of its own (nodes a, b, c), so it may kill and restart nodes
freely; the `faults-nats` session runs them (they need nats-server, and the other families run
the scenarios of their own brokers).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cascade.connectors.mqtt import MqttConnector
from cascade.history import History
from cascade.interfaces import Message
from cascade.runtime import Engine, Event, LazyResult, TaskBlocked, TaskCompleted, TaskRunning
from cascade.testkit import NO_NATS, NatsCluster, NatsNode, broker_family, nats_server_path

from .conftest import Figures, MeteredConnector, as_connector
from .history_helpers import CASCADE, RecorderProcess, run_status, stored_seqs, until
from .workload import sleepy_fanout

pytestmark = [
    pytest.mark.skipif(
        broker_family() != "nats",
        reason=f"starts a NATS cluster of its own; the faults-nats session runs it "
        f"(CASCADE_TEST_BROKER={broker_family()})",
    ),
    pytest.mark.skipif(nats_server_path() is None, reason=NO_NATS),
]

SOURCE = "worker1.example.com"  # a dot NATS refuses in a topic: ids are encoded


@pytest.fixture
async def cluster() -> AsyncIterator[NatsCluster]:
    """A three-node cluster of the test's own, booted off the event loop."""
    nodes = NatsCluster()
    try:
        await asyncio.to_thread(nodes.start)
        yield nodes
    finally:
        await asyncio.to_thread(nodes.close)


def address(*nodes: NatsNode) -> str:
    """``--host`` for the CLI: the nodes as ``host:port,host:port``."""
    return ",".join(f"{node.host}:{node.port}" for node in nodes)


async def cascade(*args: str, timeout: float = 60.0) -> tuple[int, str, str]:
    """`cascade ARGS` in a child process: exit code, stdout, stderr."""
    process = await asyncio.create_subprocess_exec(
        *CASCADE,
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "COLUMNS": "400"},
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


class Arrivals:
    """A reader's subscription to the run's events: each distinct message, and when the first
    new one after a mark arrived."""

    def __init__(self) -> None:
        self.unique: set[bytes] = set()
        self.after_mark = asyncio.Event()
        self.marked = False
        self.first_after: float | None = None

    def mark(self) -> None:
        self.marked = True

    def __call__(self, message: Message) -> None:
        if message.raw in self.unique:
            return
        self.unique.add(message.raw)
        if self.marked and self.first_after is None:
            self.first_after = asyncio.get_running_loop().time()
            self.after_mark.set()


@pytest.mark.timeout(240)
async def test_engine_on_a_and_b_obeys_c_survives_a_killed(
    cluster: NatsCluster, figures: Figures, tmp_path: Path
) -> None:
    """Issue 50's done-when: an engine given nodes a and b, source id `worker1.example.com`,
    obeys a pause retained through c before it started, is resumed through b, keeps running when
    a is killed mid-run; a recorder on c stores every event (missing 0) and `cascade status`
    through c shows the engine. The engine keeps a standby connection to b (``standby=True``),
    through which its telemetry goes while b elects new JetStream leaders."""
    figures.scenario = "cluster: engine's node killed (done-when)"
    a, b, c = cluster.nodes
    prefix = "cascade"  # the CLI's; the cluster is this test's own
    common = ["--timeout", "30"]
    code, _, err = await cascade("pause", "--reason", "before the engine", "--host", address(c),
                                 *common)  # fmt: skip
    assert code == 0, err
    database = tmp_path / "history.db"
    recorder = await RecorderProcess.start("--host", address(c), "--db", str(database))
    arrivals = Arrivals()
    reader = MqttConnector(c.host, c.port, topic_prefix=prefix, presence=False)
    connector = MeteredConnector(
        MqttConnector(
            hosts=[address(a), address(b)], topic_prefix=prefix, source_id=SOURCE, standby=True
        )
    )
    # a's death may take the leader of a JetStream stream with it: the other nodes then hold
    # QoS 1 acks until a new one is elected (seconds, by NATS); the engine's last flush waits
    engine = Engine(
        as_connector(connector), max_concurrency=4, heartbeat_interval=1.0, shutdown_timeout=30
    )
    held, halfway = asyncio.Event(), asyncio.Event()
    started: list[str] = []
    tasks, completed = 400, 0

    def watch(event: Event) -> None:
        nonlocal completed
        if isinstance(event, TaskBlocked):
            held.set()
        elif isinstance(event, TaskRunning):
            started.append(event.run_id)
        elif isinstance(event, TaskCompleted):
            completed += 1
            if completed == tasks // 3:
                halfway.set()

    engine.events.subscribe(watch)
    loop = asyncio.get_running_loop()
    try:
        await reader.connect(require=True)
        await reader.subscribe(f"{prefix}/telemetry/#", arrivals)
        await connector.connect(require=True)
        target: LazyResult[int] = sleepy_fanout(tasks, 0.02)
        running = asyncio.create_task(engine.run(target))
        await asyncio.wait_for(held.wait(), 30)
        assert not started, "a task ran under the pause retained through node c"
        code, _, err = await cascade("resume", "--host", address(b), *common)
        assert code == 0, err
        await asyncio.wait_for(halfway.wait(), 60)
        reconnects = connector.stats.reconnects
        killed = loop.time()
        await asyncio.to_thread(a.kill)
        arrivals.mark()
        await asyncio.wait_for(arrivals.after_mark.wait(), 30)
        assert arrivals.first_after is not None
        failover = arrivals.first_after - killed
        while connector.stats.reconnects == reconnects:  # polling: a counter, nothing to await
            assert loop.time() - killed < 30, "the engine did not move to node b"
            await asyncio.sleep(0.01)
        moved = loop.time() - killed
        result = await asyncio.wait_for(running, 120)
        await connector.flush(30)
        run_id = started[0]
        url = f"sqlite:///{database}"
        await until(lambda: run_status(url, run_id) == "Succeeded", 60, what="the run's end")
        code, out, err = await cascade("status", "--json", "--host", address(c), *common)
        assert code == 0, err
        sources = {engine_row["source"] for engine_row in json.loads(out)["engines"]}
    finally:
        await connector.disconnect()
        await reader.disconnect()
        summary = ""
        with contextlib.suppress(Exception):
            _, summary = await recorder.finish()
        await recorder.close()
    seqs = stored_seqs(url, run_id)
    emitted, dropped = connector.emitted, connector.stats.dropped + engine.stats.telemetry_dropped
    figures.emitted, figures.delivered, figures.dropped = emitted, len(arrivals.unique), dropped
    figures.seconds, figures.what = failover, "a killed → next new event on c"
    missing = sorted(set(range(1, max(seqs) + 1)) - set(seqs)) if seqs else []
    figures.notes.append(f"recorder on c: {len(seqs)} events stored, missing {len(missing)}")
    figures.notes.append(
        f"moved to b after {moved:.1f} s; {connector.inner.stats.bridged} sent through the standby"
    )
    assert result == sum(range(tasks))
    assert SOURCE in sources
    assert missing == [], f"the recorder said: {recorder.errors[-10:]} {summary!r}"
    assert len(seqs) == len(set(seqs))
    assert dropped == 0


@pytest.mark.timeout(240)
async def test_reader_node_killed(cluster: NatsCluster, figures: Figures, tmp_path: Path) -> None:
    """A recorder given nodes c and b loses node c mid-run: it moves to b; the events it could
    not receive meanwhile are made good by the snapshot it asks the engine for (every task's
    final state and the run's end are in the history), or by the engine's retained summary
    (the run's end, when it fell while the recorder was away) with the rest counted as
    missed, never neither."""
    figures.scenario = "cluster: reader's node killed"
    a, b, c = cluster.nodes
    database = tmp_path / "history.db"
    url = f"sqlite:///{database}"
    recorder = await RecorderProcess.start("--host", address(c, b), "--db", str(database))
    connector = MeteredConnector(MqttConnector(a.host, a.port, source_id="steady"))
    engine = Engine(as_connector(connector), max_concurrency=4, heartbeat_interval=1.0)
    started: list[str] = []
    third = asyncio.Event()
    tasks, completed = 400, 0

    def watch(event: Event) -> None:
        nonlocal completed
        if isinstance(event, TaskRunning) and not started:
            started.append(event.run_id)
        elif isinstance(event, TaskCompleted):
            completed += 1
            if completed == tasks // 3:
                third.set()

    engine.events.subscribe(watch)
    try:
        await connector.connect(require=True)
        running = asyncio.create_task(engine.run(sleepy_fanout(tasks, 0.02)))
        await asyncio.wait_for(third.wait(), 60)
        await asyncio.to_thread(c.kill)
        result = await asyncio.wait_for(running, 120)
        await connector.flush(30)
        run_id = started[0]
        try:
            waited = await until(
                # Lost is no end: the engine's will, its connection closed by a node in the
                # election (docs/brokers.md), while the end it resends on reconnecting is coming
                lambda: run_status(url, run_id) not in (None, "Running", "Lost"),
                60,
                what="run's end",
            )
        except AssertionError as exc:  # what the recorder said of its connections, if anything
            raise AssertionError(f"{exc}; the recorder said: {recorder.errors[-20:]}") from None
        code, summary = await recorder.finish()
    finally:
        await connector.disconnect()
        await recorder.close()
    seqs = set(stored_seqs(url, run_id))
    holes = len(set(range(1, max(seqs) + 1)) - seqs)
    gaps = _counter(summary, "missed")
    with History(url) as history:
        detail = history.run(run_id)
    assert detail is not None
    final = Counter(task.state for task in detail.tasks)
    figures.emitted, figures.delivered = connector.emitted, len(seqs)
    figures.dropped, figures.seconds, figures.what = gaps, waited, "run's end stored after"
    figures.notes.append(
        f"{holes} events not received, {holes - gaps} of them made good by a snapshot; "
        f"recorder's summary: {summary}"
    )
    assert result == sum(range(tasks))
    assert code == 0
    assert detail.run.status == "Succeeded"
    if gaps == 0:  # nothing counted missing: the history has every task as it ended
        assert final == {"COMPLETED": tasks + 1}


def _counter(summary: str, name: str) -> int:
    """A count from the recorder's summary line (``..., 3 missed (gaps ...)``)."""
    for part in summary.replace(";", ",").split(","):
        words = part.split()
        if name in words:
            return int(words[words.index(name) - 1].replace(",", ""))
    raise AssertionError(f"no {name!r} in the recorder's summary: {summary!r}")


@pytest.mark.timeout(240)
async def test_two_of_three_nodes_killed(cluster: NatsCluster, figures: Figures) -> None:
    """With two nodes of three dead the cluster has no quorum: every command fails in one line
    within its --timeout; the engine's run goes on and finishes, its telemetry counted; once
    the nodes are back, `cascade status` shows the engine again. The nodes are back once they
    take MQTT connections: after a quorum loss nats-server 2.9.10's /healthz may never say ok
    again (a consumer it stopped, which it restarts itself from 2.9.17 on; docs/brokers.md)."""
    figures.scenario = "cluster: two of three nodes killed"
    a, b, c = cluster.nodes
    connector = MeteredConnector(MqttConnector(a.host, a.port, source_id="alone"))
    engine = Engine(as_connector(connector), max_concurrency=4, heartbeat_interval=1.0)
    first = asyncio.Event()
    engine.events.subscribe(lambda event: first.set() if isinstance(event, TaskRunning) else None)
    loop = asyncio.get_running_loop()
    try:
        await connector.connect(require=True)
        running = asyncio.create_task(engine.run(sleepy_fanout(300, 0.05)))
        await asyncio.wait_for(first.wait(), 30)
        await asyncio.to_thread(b.kill)
        await asyncio.to_thread(c.kill)
        failures = {}
        for command in (["status"], ["pause"], ["watch", "--duration", "3"]):
            began = loop.time()
            code, _, err = await cascade(*command, "--host", address(a), "--timeout", "5")
            failures[command[0]] = (code, err.strip().splitlines(), loop.time() - began)
        result = await asyncio.wait_for(running, 120)
        # quorum is what the engine needs back: after its loss nats-server 2.9.10 may keep a
        # node's /healthz failing for good (NatsNode.start)
        await asyncio.to_thread(b.start, healthy=False)
        await asyncio.to_thread(c.start, healthy=False)
        began = loop.time()
        sources: set[str] = set()
        while "alone" not in sources:
            assert loop.time() - began < 60, "the engine never showed again"
            code, out, _ = await cascade("status", "--json", "--host", address(a))
            if code == 0:
                sources = {row["source"] for row in json.loads(out)["engines"]}
        back = loop.time() - began
    finally:
        await connector.disconnect()
    figures.emitted, figures.dropped = connector.emitted, connector.stats.dropped
    figures.notes.append("dropped: every message the engine sent while the cluster had no quorum")
    figures.seconds, figures.what = back, "nodes back → status shows it"
    for name, (code, lines, seconds) in failures.items():
        figures.notes.append(f"{name}: exit {code} after {seconds:.1f} s: {' / '.join(lines)}")
    assert result == sum(range(300))
    for name, (code, lines, seconds) in failures.items():
        assert code != 0, f"{name} reported success without a quorum"
        assert len(lines) == 1, f"{name}: {lines}"
        assert seconds < 5 + 10, f"{name} took {seconds:.1f} s"


async def _retained(node: NatsNode, topic_filter: str) -> dict[str, bytes]:
    """What ``node`` retains under ``topic_filter`` now (its retained snapshot, by topic)."""
    found: dict[str, bytes] = {}
    synced = asyncio.Event()

    def keep(message: Message) -> None:
        if message.retain:
            found[message.topic] = message.raw

    reader = MqttConnector(node.host, node.port, presence=False)
    try:
        await reader.connect(require=True)
        await reader.subscribe(
            topic_filter, keep, on_sync=lambda phase: synced.set() if phase == "end" else None
        )
        await asyncio.wait_for(synced.wait(), 30)
    finally:
        await reader.disconnect()
    return found


@pytest.mark.timeout(300)
async def test_a_cleared_pause_does_not_come_back_after_a_node_restart(
    cluster: NatsCluster, figures: Figures
) -> None:
    """A pause set through a and cleared through b, with c killed before or just after the
    clear and restarted: NATS 2.9.10 sometimes brings a deleted retained message back after a
    node restart (on c alone, or on every node); what comes back is the expired copy the
    clear wrote first, so no engine is held and no reader shows a pause. c is given clients
    once its ``/healthz`` says ok (``NatsNode.start``): connected to before it caught up, a node
    killed before both writes served the pause itself (docs/brokers.md)."""
    figures.scenario = "cluster: node restarted after a clear"
    a, b, c = cluster.nodes
    came_back = 0
    rounds = 6
    for round_ in range(rounds):
        code, _, err = await cascade("pause", "--host", address(a), "--timeout", "30")
        assert code == 0, err
        if round_ % 2 == 0:
            await asyncio.to_thread(c.kill)
        code, _, err = await cascade("resume", "--host", address(b), "--timeout", "30")
        assert code == 0, err
        if round_ % 2 == 1:
            await asyncio.to_thread(c.kill)
        await asyncio.to_thread(c.start)
        for node in cluster.nodes:
            retained = await _retained(node, "cascade/constraints/#")
            came_back += bool(retained)
            for raw in retained.values():
                assert json.loads(raw)["expires_at"] is not None, f"{node.name}: {raw!r}"
        code, out, err = await cascade("status", "--json", "--host", address(c), "--timeout", "30")
        assert code == 0, err
        assert json.loads(out)["constraints"] == [], f"round {round_}: {out}"
        connector = MqttConnector(c.host, c.port, source_id=f"after-{round_}")
        engine = Engine(connector, heartbeat_interval=None)
        events: list[Event] = []
        engine.events.subscribe(events.append)
        async with connector:
            assert await asyncio.wait_for(engine.run(sleepy_fanout(3, 0.0)), 60) == 3
        held = [event for event in events if isinstance(event, TaskBlocked)]
        assert held == [], f"round {round_}: an engine through c was held"
    figures.notes.append(
        f"{came_back} of {rounds * 3} node reads found a cleared constraint brought back, "
        "each the expired copy"
    )
