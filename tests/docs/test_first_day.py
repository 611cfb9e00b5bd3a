"""A newcomer's first day, as the README walks it, with real processes on a private mosquitto
and a fresh user data directory: record, run the demo, read what was recorded from the
default history (tables at 80 columns), and open the dashboard on it; nothing to guess.

(The install lines are tried by the package session, `python3 dev.py nox -s package`, and kept
one a use by tests/docs/test_install.py; the dashboard's page, test_history_in_browser.)
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cascade.testkit import MosquittoBroker, sigint_default

TIMEOUT = 60
CASCADE = str(Path(sys.executable).parent / "cascade")


@pytest.fixture
def user(tmp_path: Path, mosquitto_broker: MosquittoBroker) -> dict[str, str]:
    """A user's environment: a data directory of their own (where the default history goes),
    an 80-column terminal, and the README's `--host` given as the variables."""
    env = {k: v for k, v in os.environ.items() if k != "CASCADE_HISTORY_DB"}
    env |= {
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "COLUMNS": "80",
        "CASCADE_MQTT_HOST": mosquitto_broker.host,
        "CASCADE_MQTT_PORT": str(mosquitto_broker.port),
    }
    return env


def cascade(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [CASCADE, *args], env=env, capture_output=True, text=True, timeout=TIMEOUT, check=False
    )
    assert done.returncode == 0, f"cascade {' '.join(args)}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _lines(process: subprocess.Popen[str]) -> Iterator[str]:
    assert process.stdout is not None
    for line in process.stdout:
        yield line.rstrip("\n")


def test_record_the_demo_then_read_it_from_the_default_history(user: dict[str, str]) -> None:
    default = Path(user["XDG_DATA_HOME"]) / "cascade" / "history.sqlite3"
    address = f"{user['CASCADE_MQTT_HOST']}:{user['CASCADE_MQTT_PORT']}"
    recorder = subprocess.Popen(
        [CASCADE, "record"],
        env=user,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=sigint_default,  # Ctrl-C ends it even when the suite runs in the background
    )
    try:
        said = next(_lines(recorder))  # it says where it records, once subscribed
        assert said.startswith(f"recording {address} into {default} (keeping everything)")

        demo = cascade(user, "demo", "--tasks", "8")
        ran = re.search(r"run ([0-9a-f]{12}): (\d+) tasks", demo)
        assert ran, demo
        run_id = ran[1]
        assert "validate_checksums failed on purpose" in demo
        assert f"cascade watch --host {address}" in demo.split("Try next", 1)[1]

        # the recorder is another process: its database is polled until the run's end is in
        deadline = time.monotonic() + TIMEOUT
        while not [r for r in json.loads(cascade(user, "runs", "--json")) if r["ended_at"]]:
            assert time.monotonic() < deadline, "the demo's run never reached the history"
            time.sleep(0.1)
    finally:
        recorder.send_signal(signal.SIGINT)
        out, err = recorder.communicate(timeout=TIMEOUT)
    assert recorder.returncode == 0, err
    summary = out.strip().splitlines()[-1]
    assert summary.startswith(f"recorded into {default}: ")
    assert "duplicates" in summary

    runs = cascade(user, "runs").splitlines()
    (row,) = (line for line in runs if run_id in line)
    assert "│ Failed │" in row  # id and status whole at 80 columns
    assert runs[-1] == f"history: {default}"

    run = cascade(user, "run", run_id).splitlines()
    assert run[0].startswith(f"run {run_id}")
    counts = next(line for line in run if line.startswith("tasks: "))
    assert "failed 1" in counts
    assert run.index("Slowest") < next(i for i, x in enumerate(run) if x.startswith("Failures"))
    assert any("validate_checksums" in line and "ValueError" in line for line in run)
    assert run[-1] == f"history: {default}"
    assert max(map(len, run[:-1])) <= 80


def test_the_dashboard_finds_the_default_history_or_says_how_to_start_one(
    user: dict[str, str],
) -> None:
    default = Path(user["XDG_DATA_HOME"]) / "cascade" / "history.sqlite3"
    dashboard = subprocess.Popen(
        [CASCADE, "dashboard", "--listen", "127.0.0.1:0"],
        env=user,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=sigint_default,
    )
    try:
        said = []
        for line in _lines(dashboard):
            said.append(line)
            if line.startswith("cascade dashboard on http://"):
                break
        address = f"{user['CASCADE_MQTT_HOST']}:{user['CASCADE_MQTT_PORT']}"
        assert any(
            line.startswith(f"history: none yet at {default}") and address in line for line in said
        ), said
        assert not default.exists()  # a reader never makes it
    finally:
        dashboard.send_signal(signal.SIGINT)
        dashboard.communicate(timeout=TIMEOUT)
