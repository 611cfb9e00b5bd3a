"""Every Python block and every `$ cascade ...` transcript in the docs runs as written
(see examples.py for the rules), so the READMEs cannot rot."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cascade.testkit import MosquittoBroker

from .examples import BROKER_HOST, ROOT, Example, examples, markdown_files

ALL = [example for path in markdown_files() for example in examples(path)]
PYTHON = [e for e in ALL if e.language == "python"]
TRANSCRIPTS = [e for e in ALL if e.language == "console" and e.code.startswith("$ ")]
# marked blocks that are neither of the above: listed, so that the report says why they don't run
MARKED = [e for e in ALL if e.skip and e not in PYTHON and e not in TRANSCRIPTS]
# a bound on a hung example, not a speed goal: docs/scale.md's starts a Dask scheduler and two
# workers, about 20 s alone and 100 s on a 2-core machine under CI's parallel lanes
TIMEOUT = 300


def _params(found: list[Example]) -> list[object]:
    return [
        pytest.param(e, id=e.name, marks=[pytest.mark.skip(reason=e.skip)] if e.skip else [])
        for e in found
    ]


def _env(broker: MosquittoBroker) -> dict[str, str]:
    env = dict(os.environ)
    env["CASCADE_MQTT_HOST"] = broker.host
    env["CASCADE_MQTT_PORT"] = str(broker.port)
    # the interpreter running the tests runs the examples: its `cascade` comes first on PATH
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def test_the_docs_have_examples() -> None:
    """The collection itself works: the root README's example is found."""
    assert any(e.path == ROOT / "README.md" for e in PYTHON)
    assert TRANSCRIPTS


@pytest.mark.parametrize("example", _params(PYTHON))
def test_python_example_runs(
    example: Example, mosquitto_broker: MosquittoBroker, tmp_path: Path
) -> None:
    """The block runs to exit 0 against the test broker, and prints if it calls print()."""
    code = example.code.replace(BROKER_HOST, f'"{mosquitto_broker.host}", {mosquitto_broker.port}')
    script = tmp_path / "example.py"
    script.write_text(code, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=_env(mosquitto_broker),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, f"{example.name}\n{result.stdout}\n{result.stderr}"
    if "print(" in code:
        assert result.stdout.strip(), f"{example.name} printed nothing"


def _steps(code: str) -> list[tuple[str, list[str]]]:
    steps: list[tuple[str, list[str]]] = []
    for line in code.splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        elif steps and line.strip():
            steps[-1][1].append(line)
    return steps


@pytest.mark.parametrize("example", _params(TRANSCRIPTS))
def test_transcript_runs(
    example: Example, mosquitto_broker: MosquittoBroker, tmp_path: Path
) -> None:
    """Each `$ command` exits 0 against the test broker and prints the lines shown under it."""
    for command, expected in _steps(example.code):
        result = subprocess.run(
            command,
            shell=True,
            cwd=tmp_path,
            env=_env(mosquitto_broker),
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
        assert result.returncode == 0, f"{example.name}: {command}\n{result.stderr}"
        if expected:
            assert result.stdout.splitlines() == expected, f"{example.name}: {command}"


@pytest.mark.parametrize("example", _params(MARKED))
def test_marked_block(example: Example) -> None:
    """Never runs: every marked block is skipped, with the reason its marker gives."""
    raise AssertionError(f"{example.name} is marked and should have been skipped")
