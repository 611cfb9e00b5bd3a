"""docs/walkthrough.md, run as written: a newcomer's second week with real processes on a
private mosquitto and a fresh user data directory. The page's `etl.py` is served, its
background commands are started, each of its other `$` lines runs in order, and each line
shown under one must be printed (in order; `…` stands for lines left out), the sample run ids
swapped for the real ones and times for a pattern; the serving process's lines are checked
the same way, and the short address the page gives is the run's page.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from cascade.testkit import MosquittoBroker, free_port, sigint_default

from .examples import ROOT, Example, examples

PAGE = ROOT / "docs" / "walkthrough.md"
TIMEOUT = 60
BIN = Path(sys.executable).parent
SAMPLE_RUN = "58a88765cea2c1d0a1f3c2b7e9d84a61"  # the ids the page shows
SAMPLE_RERUN = "9b1f0c2d3e4a"
SAMPLE_ADDRESS = "127.0.0.1:8787"
_TIME = re.compile(r"\b\d{2}:\d{2}(:\d{2})?\b")
_DATE = re.compile(r"\b(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{1,2}\b")
_SECONDS = re.compile(r"\b\d+(\.\d+)?s\b")


class Ids:
    """The sample ids of the page, and the real ones they stand for once known."""

    def __init__(self, address: str) -> None:
        self.real: dict[str, str] = {SAMPLE_ADDRESS: address}

    def learn(self, sample: str, real: str) -> None:
        self.real[sample] = real

    def swap(self, text: str) -> str:
        for sample, real in self.real.items():
            if sample == SAMPLE_ADDRESS:
                text = text.replace(sample, real)
                continue
            # any prefix of 8 or more digits of a sample id is that prefix of the real one
            text = re.sub(sample[:8] + "[0-9a-f]*", _prefix_of(real), text)
        return text


def _prefix_of(real: str) -> Callable[[re.Match[str]], str]:
    """A match of a sample id's prefix replaced by as many digits of ``real``."""
    return lambda found: real[: len(found.group())]


def _normal(line: str) -> str:
    line = _SECONDS.sub("Ns", _DATE.sub("MON D", _TIME.sub("HH:MM", line)))
    return line.rstrip()


def shown_in(expected: list[str], printed: str, ids: Ids) -> None:
    """Each of ``expected`` (``…``: lines left out) is a line of ``printed``, in order."""
    lines = iter(_normal(line) for line in printed.splitlines())
    for want in expected:
        if want.strip() == "…":
            continue
        wanted = _normal(ids.swap(want))
        assert any(line == wanted for line in lines), f"not printed: {wanted!r}\n{printed}"


def steps(example: Example) -> Iterator[tuple[str, list[str]]]:
    """A console block's commands, each with the lines shown under it."""
    command: str | None = None
    shown: list[str] = []
    for line in example.code.splitlines():
        if line.startswith("$ "):
            if command is not None:
                yield command, shown
            command, shown = line[2:], []
        else:
            shown.append(line)
    if command is not None:
        yield command, shown


@pytest.fixture
def page() -> list[Example]:
    return examples(PAGE)


@pytest.mark.timeout(600)  # a dozen commands, each a process of its own
def test_the_walkthrough_runs_as_written(
    page: list[Example], tmp_path: Path, mosquitto_broker: MosquittoBroker
) -> None:
    dashboard_port = free_port()
    address = f"127.0.0.1:{dashboard_port}"
    ids = Ids(address)
    env = {k: v for k, v in os.environ.items() if k != "CASCADE_HISTORY_DB"}
    env |= {
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "COLUMNS": "80",
        "TZ": "UTC",
        "CASCADE_MQTT_HOST": mosquitto_broker.host,
        "CASCADE_MQTT_PORT": str(mosquitto_broker.port),
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "PYTHONUNBUFFERED": "1",
    }
    (script,) = [e for e in page if e.language == "python"]
    assert script.code.startswith("# etl.py\n")
    here = f'"{mosquitto_broker.host}", {mosquitto_broker.port}'
    (tmp_path / "etl.py").write_text(script.code.replace('"broker.example"', here))
    background, *consoles = [e for e in page if e.language == "console"]
    (served_said,) = [e for e in page if e.language == "text"]
    assert [c for c, _ in steps(background)] == [
        "cascade record &",
        f"CASCADE_DASHBOARD_URL=http://{SAMPLE_ADDRESS} python etl.py &",
        f"cascade dashboard --listen {SAMPLE_ADDRESS} --token s3cret &",
    ]

    def start(*args: str, extra: dict[str, str] | None = None) -> subprocess.Popen[str]:
        return subprocess.Popen(
            list(args), cwd=tmp_path, env={**env, **(extra or {})}, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, preexec_fn=sigint_default,
        )  # fmt: skip

    def until(process: subprocess.Popen[str], said: str) -> str:
        assert process.stdout is not None
        for line in process.stdout:
            if said in line:
                return line
        raise AssertionError(f"{process.args!r} ended before saying {said!r}")

    recorder = start("cascade", "record")
    serving = start(sys.executable, "etl.py", extra={"CASCADE_DASHBOARD_URL": f"http://{address}"})
    dashboard = start("cascade", "dashboard", "--listen", address, "--token", "s3cret")
    try:
        until(recorder, "recording ")
        until(dashboard, "cascade dashboard on ")
        deadline = time.monotonic() + TIMEOUT
        while "etl" not in _run(env, tmp_path, "cascade served --json")[1]:
            assert time.monotonic() < deadline, "etl.py never said it serves etl"
        served_lines: list[str] = []
        for block in consoles:
            for command, shown in steps(block):
                code, out = _run(env, tmp_path, ids.swap(command))
                assert code == 0, f"{command}\n{out}"
                started = re.search(r"started etl as run ([0-9a-f]{12}) on", out)
                if started and "rerun" not in command:
                    ids.learn(SAMPLE_RUN, _whole(serving, started[1], served_lines))
                elif started:
                    ids.learn(SAMPLE_RERUN, started[1])
                shown_in(shown, out, ids)
        shown_in(served_said.code.splitlines(), "\n".join(served_lines), ids)
        whole = ids.real[SAMPLE_RUN]
        link = httpx.get(
            f"http://{address}/runs/{whole[:12]}", timeout=TIMEOUT, follow_redirects=True
        )
        assert link.history[0].status_code == 302, link.history
        assert link.url.path == f"/runs/{whole}"
        assert whole in link.text  # the page came with the run in its first state
        assert f"http://{address}/runs/{whole[:12]}" in ids.swap(PAGE.read_text())
    finally:
        for process in (dashboard, serving, recorder):
            process.send_signal(signal.SIGINT)
        for process in (dashboard, serving, recorder):
            try:
                process.wait(TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if process.stdout is not None:
                process.stdout.close()


def _whole(serving: subprocess.Popen[str], short: str, said: list[str]) -> str:
    """The whole id of the run ``short`` as the serving process said it started, once it has
    said the run's first task held (its lines so far kept in ``said``)."""
    assert serving.stdout is not None
    whole = None
    for line in serving.stdout:
        said.append(line.rstrip("\n"))
        found = re.match(rf"run ({short}[0-9a-f]{{20}}) \(etl\) started", line)
        whole = found[1] if found else whole
        if whole and "held for a decision" in line:
            return whole
    raise AssertionError("etl.py ended before its run held:\n" + "\n".join(said))


def _run(env: dict[str, str], cwd: Path, command: str) -> tuple[int, str]:
    done = subprocess.run(
        command, shell=True, cwd=cwd, env=env, capture_output=True, text=True,
        timeout=TIMEOUT, check=False,
    )  # fmt: skip
    return done.returncode, done.stdout + done.stderr


def test_the_page_says_what_the_harness_runs(page: list[Example]) -> None:
    """Every block of the page is skipped by the generic examples (this harness runs them),
    and names this harness as the reason."""
    for example in page:
        assert example.skip is not None or example.language == "text", example.name
        if example.skip is not None:
            assert "tests/docs/test_walkthrough.py" in example.skip, example.name
    assert json.dumps(SAMPLE_RUN)  # the ids the page shows are those swapped
    assert SAMPLE_RUN[:12] in PAGE.read_text()
