"""docs/results.md, "A script's run, rerun from the command line", run as written against a
private mosquitto: the page's `etl.py` is written out, each `$` line runs in order (the
script's run is the one that fails), and each line shown under one must be printed (in order;
`…` stands for lines left out), the sample run ids and source swapped for the real ones."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from cascade.testkit import MosquittoBroker

from .examples import ROOT, Example, examples

PAGE = ROOT / "docs" / "results.md"
SECTION = "## A script's run, rerun from the command line"
HARNESS = "tests/docs/test_script_rerun.py"
SAMPLE_RUN = "58a88765cea2c1d0a1f3c2b7e9d84a61"
SAMPLE_RERUN = "9b1f0c2d3e4a"
SAMPLE_SOURCE = "host-4242"
TIMEOUT = 120
BIN = Path(sys.executable).parent


def _section() -> list[Example]:
    """The blocks of the page's section."""
    text = PAGE.read_text(encoding="utf-8")
    start = text.index(SECTION)
    first = text[:start].count("\n") + 1
    last = first + text[start : text.index("\n## ", start + 1)].count("\n")
    return [e for e in examples(PAGE) if first <= e.line <= last]


def _steps(example: Example) -> list[tuple[str, list[str]]]:
    steps: list[tuple[str, list[str]]] = []
    for line in example.code.splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        elif steps:
            steps[-1][1].append(line)
    return steps


def _shown_in(expected: list[str], printed: str, swap: dict[str, str]) -> None:
    """Each of ``expected`` (``…``: lines left out), its samples swapped, is a line of
    ``printed``, in order."""
    lines = iter(line.rstrip() for line in printed.splitlines())
    for want in expected:
        if want.strip() == "…":
            continue
        for sample, real in swap.items():
            want = want.replace(sample, real)
        want = want.rstrip()
        assert any(line == want for line in lines), f"not printed: {want!r}\n{printed}"


def test_the_section_runs_as_written(tmp_path: Path, mosquitto_broker: MosquittoBroker) -> None:
    (script,) = [e for e in _section() if e.language == "python"]
    (console,) = [e for e in _section() if e.language == "console"]
    assert script.code.startswith("# etl.py\n")
    here = f'"{mosquitto_broker.host}", {mosquitto_broker.port}'
    (tmp_path / "etl.py").write_text(script.code.replace('"broker.example"', here))
    env = {k: v for k, v in os.environ.items() if k not in ("CASCADE_RESULTS",)}
    env |= {
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "COLUMNS": "80",
        "CASCADE_MQTT_HOST": mosquitto_broker.host,
        "CASCADE_MQTT_PORT": str(mosquitto_broker.port),
        "PATH": f"{BIN}{os.pathsep}{env['PATH']}",
    }
    swap: dict[str, str] = {}
    steps = _steps(console)
    assert [command for command, _ in steps][:2] == ["python etl.py", "touch fixed"]
    for command, shown in steps:
        for sample, real in swap.items():
            command = command.replace(sample, real)
        done = subprocess.run(
            command, shell=True, cwd=tmp_path, env=env, capture_output=True, text=True,
            timeout=TIMEOUT, check=False,
        )  # fmt: skip
        printed = done.stdout + done.stderr
        if command == "python etl.py":
            assert done.returncode == 1, printed  # the run the page reruns fails
            whole = re.search(r"cascade: run ([0-9a-f]{32}) \(load\) started", printed)
            assert whole is not None, printed
            swap[SAMPLE_RUN] = whole[1]
            swap[SAMPLE_RUN[:12]] = whole[1][:12]
        else:
            assert done.returncode == 0, f"{command}\n{printed}"
        started = re.search(r"as run ([0-9a-f]{12}) on (\S+) \(a rerun", done.stdout)
        if started:
            swap[SAMPLE_RERUN] = started[1]
            swap[SAMPLE_SOURCE] = started[2]
        _shown_in(shown, printed, swap)
    assert SAMPLE_RERUN in swap, "the page's rerun never ran"
    assert not (tmp_path / "data").exists()  # no history was needed, nor made


def test_the_section_says_what_the_harness_runs() -> None:
    """Every block of the section is skipped by the generic examples, naming this harness."""
    blocks = _section()
    assert [e.language for e in blocks] == ["python", "console"]
    for example in blocks:
        assert example.skip is not None, example.name
        assert HARNESS in example.skip, example.name
