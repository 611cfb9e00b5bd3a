"""What anyone with publish rights sends reaches a real terminal inert (the bytes a pty gets),
and odd input ends in one line: `status` and `watch` against a real mosquitto."""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Callable, Iterator

import pytest

from cascade.connectors.mqtt import MqttConnector
from cascade.interfaces import constraint_topic, events_topic, status_topic
from cascade.testkit import BrokerEndpoint, sigint_default

# The scope, a title, a hyperlink, a DCS, an 8-bit CSI and a bidi override.
_SCOPE = "task:\x1b[2J\x1b]0;PWNED\x1b\\"
_ESCAPES = "\x1b]8;;http://evil\x07link\x1b]8;;\x07 \x1bP1$rq\x1b\\ \x9b2J \u202eevil"
# What must never reach the terminal: OSC, DCS, a screen clear, C1 (raw or UTF-8).
_FORBIDDEN = [b"\x1b]", b"\x1bP", b"\x1b[2J", b"\xc2\x9b", b"\x9b2J", "\u202e".encode()]


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "cascade.cli", *args]


def _env(broker: BrokerEndpoint) -> dict[str, str]:
    return {**os.environ, "CASCADE_MQTT_HOST": f"{broker.host}:{broker.port}", "TERM": "xterm"}


class Terminal:
    """A command on a pseudo-terminal of 40 x 160, and every byte it wrote there."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
        self.process = subprocess.Popen(
            args, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True,
            preexec_fn=sigint_default,  # Ctrl-C as a terminal gives it
        )  # fmt: skip
        os.close(slave)
        self.output = b""

    def read_until(self, done: Callable[[], bool], timeout: float) -> None:
        """Read what the command writes until ``done()`` or it exits (failing after ``timeout``)."""
        deadline = time.monotonic() + timeout
        while not done():
            left = deadline - time.monotonic()
            assert left > 0, f"timed out; the terminal got {self.output[-2000:]!r}"
            ready, _, _ = select.select([self.master], [], [], min(left, 0.5))
            if ready:
                try:
                    chunk = os.read(self.master, 65536)
                except OSError:  # the command exited and closed its side
                    chunk = b""
                if not chunk and self.process.poll() is not None:
                    return
                self.output += chunk

    def wait(self, timeout: float) -> int:
        self.read_until(lambda: self.process.poll() is not None, timeout)
        return self.process.wait(timeout)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        os.close(self.master)


@pytest.fixture
def hostile(mosquitto_broker: BrokerEndpoint, scope_name: str) -> Iterator[str]:
    """A hostile retained constraint and status, and telemetry sent by a hostile engine thread
    until the test ends; yields the run id."""
    run_id = f"run-{scope_name}"
    evil = f"evil-{scope_name}"
    scope = f"{_SCOPE}{scope_name}"  # on its own topic: a reader takes it, and shows it inert
    topics = [constraint_topic(scope, "pause"), status_topic(evil)]
    constraint = {"id": "x", "scope": scope, "type": "pause", "params": {}}
    status = {"status": "online", "source": evil, "session": 1, "reason": _ESCAPES}
    sending = True

    async def publish(*messages: tuple[str, object, bool]) -> None:
        async with MqttConnector(mosquitto_broker.host, mosquitto_broker.port, presence=False) as c:
            for topic, payload, retain in messages:
                raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                await c.publish(topic, raw, qos=1, retain=retain)

    def envelope(name: str, error: str, task_id: str) -> dict[str, object]:
        body = {"type": "TaskStateEvent", "task_id": task_id, "task_name": name,
                "state": "FAILED", "error": error}  # fmt: skip
        return {"v": "1.0", "run_id": run_id, "org_id": "o", "project_id": "p",
                "source": evil, "body": body}  # fmt: skip

    asyncio.run(publish((topics[0], constraint, True), (topics[1], status, True)))

    async def engine() -> None:
        events = events_topic("o", "p", run_id)
        async with MqttConnector(mosquitto_broker.host, mosquitto_broker.port, presence=False) as c:
            # a hostile name and error, a 200 kB name, a 2 MB one (over the bound); tasks of their
            # own, so that the view shows the hostile one whenever it draws, not by luck
            while sending:
                hostile = envelope("PWNED\x1b[2J" + _ESCAPES, _ESCAPES, "t1")
                await c.publish(events, json.dumps(hostile))
                await c.publish(events, json.dumps(envelope("n" * 200_000, "e", "t2")))
                await c.publish(events, json.dumps(envelope("m" * 2_000_000, "e", "t3")))
                await asyncio.sleep(0.05)

    import threading

    thread = threading.Thread(target=asyncio.run, args=(engine(),), daemon=True)
    thread.start()
    try:
        yield run_id
    finally:
        sending = False
        thread.join(10)
        asyncio.run(publish(*((topic, b"", True) for topic in topics)))


def _assert_inert(output: bytes) -> None:
    for sequence in _FORBIDDEN:
        assert sequence not in output, f"{sequence!r} reached the terminal: {output[-3000:]!r}"


def test_status_in_a_terminal_shows_hostile_text_inert(
    mosquitto_broker: BrokerEndpoint, hostile: str
) -> None:
    """`cascade status` on a pty: the scope and the reason are there, as visible escapes."""
    terminal = Terminal(_cli("status"), _env(mosquitto_broker))
    try:
        assert terminal.wait(30) == 0, terminal.output
    finally:
        terminal.close()
    _assert_inert(terminal.output)
    assert b"\\x1b]0;PWNED" in terminal.output


def test_watch_in_a_terminal_stays_inert_and_ends_at_once_on_ctrl_c(
    mosquitto_broker: BrokerEndpoint, hostile: str
) -> None:
    """`cascade watch` on a pty under a stream of hostile and huge messages: nothing reaches
    the terminal raw, and Ctrl-C ends it within a second."""
    terminal = Terminal(_cli("watch"), _env(mosquitto_broker))
    try:
        terminal.read_until(lambda: b"oversized message" in terminal.output, 30)
        terminal.read_until(lambda: b"PWNED\\x1b[2J" in terminal.output, 30)
        asked = time.monotonic()
        os.kill(terminal.process.pid, signal.SIGINT)
        code = terminal.wait(10)
        took = time.monotonic() - asked
    finally:
        terminal.close()
    _assert_inert(terminal.output)
    assert code == 0
    assert took < 1.0, f"Ctrl-C took {took:.2f} s"


def test_watch_json_into_head_ends_quietly(mosquitto_broker: BrokerEndpoint, hostile: str) -> None:
    """`cascade watch --json | head -1` exits 0 with nothing on stderr, time after time
    (the reader's end came inside the event loop and left asyncio a closed socket)."""
    for _ in range(10):
        watch = subprocess.Popen(
            _cli("watch", "--json"), env=_env(mosquitto_broker),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        head = subprocess.run(["head", "-1"], stdin=watch.stdout, capture_output=True, check=True)
        assert watch.stdout is not None
        watch.stdout.close()
        _, err = watch.communicate(timeout=20)
        assert watch.returncode == 0, err.decode()
        # nothing but its own one-line notes (how many oversized messages it ignored)
        assert all(line.startswith(b"cascade: ") for line in err.splitlines()), err.decode()
        line = json.loads(head.stdout)
        assert set(line) == {"topic", "retain", "payload"}


@pytest.mark.parametrize(
    "args",
    [
        ["pause", "task:\udcff"],
        ["limit", "task:\udcff", "--concurrency", "1"],
        ["status", "--host", "a" * 300],
        ["status", "--host", "\udcff"],
        ["status", "--timeout", "1e308"],
        ["status", "--timeout", "nan"],
        ["pause", "--ttl", "1e-9"],
    ],
)
def test_odd_input_is_one_line_and_exit_2(
    mosquitto_broker: BrokerEndpoint, args: list[str]
) -> None:
    """The reported inputs, as a shell hands them over (invalid UTF-8 as bytes): one line."""
    argv = [os.fsencode(arg) for arg in _cli(*args)]
    done = subprocess.run(argv, env=_env(mosquitto_broker), capture_output=True, timeout=30)
    assert done.returncode == 2, done.stderr.decode(errors="replace")
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert done.stderr.startswith(b"cascade ")


def test_rate_in_exponent_form_is_published_plain(
    mosquitto_broker: BrokerEndpoint, scope_name: str
) -> None:
    """`--rate 1e3` is a number like any other: published as 1000/s, which every reader reads."""
    env = _env(mosquitto_broker)
    scope = f"task:{scope_name}"
    done = subprocess.run(_cli("limit", scope, "--rate", "1e3"), env=env, capture_output=True)
    assert done.returncode == 0, done.stderr
    assert b"'rate': '1000/s'" in done.stdout
    subprocess.run(_cli("resume", scope), env=env, check=True, capture_output=True)
