"""What a newcomer does in the first hour, with real processes and pipes: `watch | head -1`,
and `cascade demo --duration` watched from a second terminal."""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import sys
import time

import paho.mqtt.publish as mqtt_publish

from cascade.testkit import (
    NOT_THE_SHARED_BROKER,
    RETAINED_EXACT_ONLY_HANGS,
    BrokerEndpoint,
    skip_on_family,
)

CASCADE = [sys.executable, "-m", "cascade.cli"]


@skip_on_family("rabbitmq", RETAINED_EXACT_ONLY_HANGS)
def test_watch_into_a_closed_pipe_ends_quietly_with_0(
    mqtt_broker: BrokerEndpoint, scope_name: str
) -> None:
    """`cascade watch --json | head -1`: once the reader has gone, the next write ends watch, 0."""
    address = f"{mqtt_broker.host}:{mqtt_broker.port}"
    topic = f"cascade/constraints/task/{scope_name}/pause"
    payload = json.dumps({"id": "p", "scope": f"task:{scope_name}", "type": "pause"})
    mqtt_publish.single(topic, payload, qos=1, retain=True, hostname=mqtt_broker.host,
                        port=mqtt_broker.port)  # fmt: skip
    watch = subprocess.Popen(
        [*CASCADE, "watch", "--json", "--host", address],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert watch.stdout is not None
        assert watch.stderr is not None
        assert watch.stdout.readline()  # what `head -1` reads before it exits
        watch.stdout.close()  # the reader is gone: the pipe is closed
        deadline = time.monotonic() + 20
        while watch.poll() is None and time.monotonic() < deadline:
            mqtt_publish.single(topic, payload, qos=1, hostname=mqtt_broker.host,
                                port=mqtt_broker.port)  # fmt: skip
            with contextlib.suppress(subprocess.TimeoutExpired):
                watch.wait(0.2)
        err = watch.stderr.read().decode()
    finally:
        if watch.poll() is None:
            watch.kill()
        watch.wait()
        for stream in (watch.stdout, watch.stderr):
            if stream is not None:
                stream.close()
        mqtt_publish.single(topic, b"", qos=1, retain=True, hostname=mqtt_broker.host,
                            port=mqtt_broker.port)  # fmt: skip
    assert watch.returncode == 0, err
    assert err == ""


@skip_on_family("rabbitmq", NOT_THE_SHARED_BROKER)
@skip_on_family("nats", NOT_THE_SHARED_BROKER)
def test_demo_with_a_duration_is_watched_from_another_terminal() -> None:
    """`cascade demo --duration S` prints the command that watches it, and that command works
    while the demo runs; the demo lasts about S seconds."""
    started = time.monotonic()
    demo = subprocess.Popen(
        [*CASCADE, "demo", "--tasks", "8", "--duration", "10"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert demo.stdout is not None
        hint = ""
        while not hint:
            line = demo.stdout.readline()
            assert line, "the demo ended without saying how to watch it"
            match = re.search(r"cascade watch --host (\S+)", line)
            hint = match[1] if match else ""
        watch = subprocess.run(
            [*CASCADE, "watch", "--json", "--count", "3", "--duration", "20", "--host", hint],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert watch.returncode == 0, watch.stderr
        runs = {json.loads(line)["topic"] for line in watch.stdout.splitlines()}
        assert any("/telemetry/" in topic for topic in runs), watch.stdout
        out, err = demo.communicate(timeout=60)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.communicate()
    elapsed = time.monotonic() - started
    assert demo.returncode == 0, err
    assert "as planned" in out
    assert 7 <= elapsed < 30, elapsed  # ~10 s; unpaced, this demo lasts ~4 s
