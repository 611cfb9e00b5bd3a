"""`cascade notify` against a real mosquitto and a real HTTP receiver: a failed run is posted
once within 2 s by one of two notifiers sharing a state database (a SQLite file; a real
PostgreSQL), and audited in the history; a winner killed mid-post is taken over after its
lease; a 500 is retried and counted; a receiver that never answers does not hold a notifier
up."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from cascade.connectors.mqtt import MqttConnector
from cascade.history import History
from cascade.runtime import Engine, task
from cascade.testkit import MosquittoBroker, WebhookReceiver

CASCADE = [sys.executable, "-m", "cascade.cli"]


@task
def load(rows: int) -> int:
    raise ValueError(f"row {rows} has a negative amount")


def _fail_a_run(broker: MosquittoBroker, project: str) -> tuple[str, float]:
    """Run a workflow whose task fails; its run id and when it ended."""

    async def go() -> str:
        engine = Engine(
            MqttConnector(broker.host, broker.port, source_id=f"eng-{project}"),
            project_id=project,
            heartbeat_interval=None,
        )
        with pytest.raises(Exception, match="negative amount") as raised:
            await engine.run(load(3))
        match = re.search(r"[0-9a-f]{32}", str(raised.value))
        assert match is not None
        return match.group(0)

    run_id = asyncio.run(go())
    return run_id, time.time()


class Notify:
    """A `cascade notify` process, started and read until its first line."""

    def __init__(self, broker: MosquittoBroker, url: str, state: Path | str, *args: str) -> None:
        env = {**os.environ, "CASCADE_NOTIFY_WEBHOOK": url}
        self.process = subprocess.Popen(
            [
                *CASCADE, "notify", "--host", f"{broker.host}:{broker.port}",
                "--state", str(state), "--metrics-listen", "127.0.0.1:0",
                "--allow-destination", "127.0.0.1", *args,
            ],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        )  # fmt: skip
        assert self.process.stdout is not None
        self.first = self.process.stdout.readline()
        assert self.first.startswith("notifying "), self.process.stderr.read()  # type: ignore[union-attr]
        found = re.search(r"metrics on (\S+);", self.first)
        assert found is not None
        self.metrics_url = found.group(1)

    def metrics(self) -> str:
        with urllib.request.urlopen(self.metrics_url, timeout=5) as answer:
            return str(answer.read().decode())

    def stop(self, timeout: float = 30.0) -> tuple[str, str]:
        self.process.send_signal(signal.SIGINT)
        out, err = self.process.communicate(timeout=timeout)
        return self.first + out, err


@pytest.fixture
def notifiers() -> Iterator[list[Notify]]:
    started: list[Notify] = []
    yield started
    for notify in started:
        if notify.process.poll() is None:
            notify.process.kill()
            notify.process.communicate()


@pytest.fixture(params=["sqlite", "postgresql"])
def state(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The notifiers' state database: a SQLite file, or a PostgreSQL database (skipped where
    PostgreSQL is not installed)."""
    if request.param == "sqlite":
        return str(tmp_path / "state.sqlite3")
    return str(request.getfixturevalue("postgresql_url"))


def test_a_failed_run_is_posted_once_within_2_s_by_one_of_two_notifiers(
    mosquitto_broker: MosquittoBroker,
    receiver: WebhookReceiver,
    state: str,
    notifiers: list[Notify],
) -> None:
    """Two notifiers sharing a state database, one failed run: one post, naming the run, the
    task and the error, within 2 s of the run's end, audited in the history (the state's
    database here); the webhook's URL printed and kept nowhere."""
    for _ in range(2):
        notifiers.append(Notify(mosquitto_broker, receiver.url, state, "--db", state))
    project = f"p{uuid.uuid4().hex[:8]}"
    run_id, ended = _fail_a_run(mosquitto_broker, project)
    assert receiver.wait_for(posts=1, timeout=10)
    at, posted = receiver.posts[0]
    assert at - ended < 2.0
    assert posted["event"] == "run.failed"
    assert posted["run_id"] == run_id
    assert posted["task_name"] == "load"
    assert posted["error_line"] == "ValueError: row 3 has a negative amount"
    assert "load" in posted["text"]
    assert posted["project_id"] == project
    posted_by, by_another = (
        'cascade_notify_events_total{event="run.failed",outcome="posted"} 1.0',
        'cascade_notify_events_total{event="run.failed",outcome="by_another"} 1.0',
    )
    deadline = time.monotonic() + 10
    while not all(posted_by in (text := n.metrics()) or by_another in text for n in notifiers):
        assert time.monotonic() < deadline
        time.sleep(0.1)  # polling other processes' counters
    assert len(receiver.posts) == 1
    assert receiver.requests == 1
    counted = [notify.metrics() for notify in notifiers]
    assert sum(posted_by in text for text in counted) == 1
    assert sum(by_another in text for text in counted) == 1
    for notify in notifiers:
        out, err = notify.stop()
        assert notify.process.returncode == 0, err
        assert WebhookReceiver.SECRET not in out + err
        assert "http://127.0.0.1:" in out  # the host is said; the path never
    with History(state) as history:
        [audited] = [event for event in history.audit() if event.action == "notified"]
    assert (audited.type, audited.run_id) == ("run.failed", run_id)
    assert audited.notified is not None
    assert audited.notified["outcome"] == "posted"
    assert audited.notified["webhook"] == receiver.url.split("/services")[0] + "/…"
    assert WebhookReceiver.SECRET not in str(audited.to_json())


def test_a_winner_killed_mid_post_is_taken_over_after_its_lease(
    mosquitto_broker: MosquittoBroker,
    receiver: WebhookReceiver,
    tmp_path: Path,
    notifiers: list[Notify],
) -> None:
    """Two notifiers with a 3 s lease; the receiver holds the first post unanswered and the
    notifier that made it is killed (SIGKILL): the other posts the event once, after the
    lease, and counts the takeover."""
    receiver.hang_first = 1
    state = tmp_path / "state.sqlite3"
    for n in range(2):
        notifiers.append(Notify(
            mosquitto_broker, f"{receiver.url}?n={n}", state, "--group", "ops", "--lease", "3",
            "--post-timeout", "60", "--attempts", "1",
        ))  # fmt: skip
    _fail_a_run(mosquitto_broker, f"p{uuid.uuid4().hex[:8]}")
    assert receiver.wait_for(requests=1, timeout=10)
    held_at = time.time()
    winner = int(receiver.paths[0].rsplit("=", 1)[1])
    notifiers[winner].process.kill()
    notifiers[winner].process.communicate()
    assert receiver.wait_for(posts=1, timeout=15)
    at, posted = receiver.posts[0]
    assert posted["event"] == "run.failed"
    assert receiver.paths[1].endswith(f"?n={1 - winner}")
    assert at - held_at > 2.0  # not before the lease (3 s from the claim) ended
    survivor = notifiers[1 - winner]
    deadline = time.monotonic() + 10
    # the receiver has the post before the survivor has its answer (and counts it posted)
    counted = ("cascade_notify_takeovers_total 1.0",
               'cascade_notify_events_total{event="run.failed",outcome="posted"} 1.0')  # fmt: skip
    while not all(line in (text := survivor.metrics()) for line in counted):
        assert time.monotonic() < deadline, text
        time.sleep(0.1)  # polling another process's counters
    time.sleep(1.0)  # what a third post would take: none may come
    assert receiver.requests == 2


def test_a_500_is_retried_and_counted(
    mosquitto_broker: MosquittoBroker,
    receiver: WebhookReceiver,
    tmp_path: Path,
    notifiers: list[Notify],
) -> None:
    """The receiver answers 500 once: the post is retried (about a second later) and taken,
    and /metrics counts both attempts."""
    receiver.statuses = [500]
    notifiers.append(Notify(mosquitto_broker, receiver.url, tmp_path / "state"))
    _fail_a_run(mosquitto_broker, f"p{uuid.uuid4().hex[:8]}")
    assert receiver.wait_for(posts=1, timeout=10)
    assert receiver.requests == 2
    deadline = time.monotonic() + 10
    while 'outcome="ok"' not in (text := notifiers[0].metrics()):  # taken, then counted
        assert time.monotonic() < deadline, text
        time.sleep(0.1)  # polling another process's counters
    assert 'cascade_notify_http_attempts_total{outcome="http_5xx"} 1.0' in text
    assert 'cascade_notify_http_attempts_total{outcome="ok"} 1.0' in text
    assert 'cascade_notify_events_total{event="run.failed",outcome="posted"} 1.0' in text
    assert WebhookReceiver.SECRET not in text


def test_a_receiver_that_never_answers_does_not_hold_a_notifier_up(
    mosquitto_broker: MosquittoBroker,
    receiver: WebhookReceiver,
    tmp_path: Path,
    notifiers: list[Notify],
) -> None:
    """Each attempt ends at --post-timeout; the post fails, counted, and the notifier still
    stops at once when asked."""
    receiver.hang = True
    notify = Notify(
        mosquitto_broker, receiver.url, tmp_path / "state", "--post-timeout", "0.5",
        "--attempts", "2",
    )  # fmt: skip
    notifiers.append(notify)
    _fail_a_run(mosquitto_broker, f"p{uuid.uuid4().hex[:8]}")
    assert receiver.wait_for(requests=2, timeout=10)
    deadline = time.monotonic() + 10
    while 'outcome="failed"' not in (text := notify.metrics()):
        assert time.monotonic() < deadline, text
        time.sleep(0.1)  # polling another process's counters
    assert 'cascade_notify_http_attempts_total{outcome="timeout"} 2.0' in text
    started = time.monotonic()
    out, err = notify.stop()
    assert time.monotonic() - started < 10
    assert "0 posted, 1 failed" in out
    assert WebhookReceiver.SECRET not in out + err


ENGINE = """
import asyncio, sys, time
from cascade.connectors.mqtt import MqttConnector
from cascade.runtime import Engine, task

@task
def wait() -> None:
    print("running", flush=True)
    time.sleep(600)

host, port, source = sys.argv[1], int(sys.argv[2]), sys.argv[3]
engine = Engine(MqttConnector(host, port, source_id=source), heartbeat_interval=None)
asyncio.run(engine.run(wait()))
"""


def test_an_engine_killed_is_posted_once_as_lost(
    mosquitto_broker: MosquittoBroker,
    receiver: WebhookReceiver,
    tmp_path: Path,
    notifiers: list[Notify],
) -> None:
    """An engine process killed (SIGKILL) mid-run: the broker's will tells the notifiers, and
    one of two posts ``engine.lost`` naming the engine."""
    for _ in range(2):
        notifiers.append(Notify(mosquitto_broker, receiver.url, tmp_path / "state.sqlite3"))
    source = f"eng-{uuid.uuid4().hex[:8]}"
    engine = subprocess.Popen(
        [sys.executable, "-c", ENGINE, mosquitto_broker.host, str(mosquitto_broker.port), source],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert engine.stdout is not None
        assert engine.stdout.readline() == "running\n", engine.stderr.read()  # type: ignore[union-attr]
        engine.kill()
        engine.communicate()
        assert receiver.wait_for(posts=1, timeout=15)
    finally:
        if engine.poll() is None:
            engine.kill()
            engine.communicate()
    lost = [body for _, body in receiver.posts if body.get("source") == source]
    assert [body["event"] for body in lost] == ["engine.lost"]
    assert source in lost[0]["text"]
    time.sleep(1.0)  # what a second post would take: none may come
    assert [body for _, body in receiver.posts if body.get("source") == source] == lost
