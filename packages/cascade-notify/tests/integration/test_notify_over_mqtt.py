"""`cascade notify` against a real mosquitto and a real HTTP receiver: a failed run is posted
once within 2 s, by one of two notifiers; a 500 is retried and counted; a receiver that never
answers does not hold a notifier up."""

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
from cascade.runtime import Engine, task
from cascade.testkit import MosquittoBroker

from ..receiver import Receiver

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

    def __init__(self, broker: MosquittoBroker, url: str, state: Path, *args: str) -> None:
        env = {**os.environ, "CASCADE_NOTIFY_WEBHOOK": url}
        self.process = subprocess.Popen(
            [
                *CASCADE, "notify", "--host", f"{broker.host}:{broker.port}",
                "--state", str(state), "--metrics-listen", "127.0.0.1:0", *args,
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


def test_a_failed_run_is_posted_once_within_2_s_by_one_of_two_notifiers(
    mosquitto_broker: MosquittoBroker, receiver: Receiver, tmp_path: Path, notifiers: list[Notify]
) -> None:
    """Two notifiers of one group, one failed run: one post, naming the run, the task and the
    error, within 2 s of the run's end; the webhook's URL printed nowhere."""
    for n in range(2):
        notifiers.append(Notify(mosquitto_broker, receiver.url, tmp_path / f"state-{n}"))
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
    time.sleep(2.0)  # what a second post would take: none may come
    assert len(receiver.posts) == 1
    counted = [notify.metrics() for notify in notifiers]
    assert sum('outcome="posted"' in text for text in counted) == 1
    assert sum('cascade_notify_events_total{event="run.failed",outcome="by_another"} 1.0' in text
               for text in counted) == 1  # fmt: skip
    for notify in notifiers:
        out, err = notify.stop()
        assert notify.process.returncode == 0, err
        assert Receiver.SECRET not in out + err
        assert "http://127.0.0.1:" in out  # the host is said; the path never


def test_a_500_is_retried_and_counted(
    mosquitto_broker: MosquittoBroker, receiver: Receiver, tmp_path: Path, notifiers: list[Notify]
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
    assert Receiver.SECRET not in text


def test_a_receiver_that_never_answers_does_not_hold_a_notifier_up(
    mosquitto_broker: MosquittoBroker, receiver: Receiver, tmp_path: Path, notifiers: list[Notify]
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
    assert Receiver.SECRET not in out + err
