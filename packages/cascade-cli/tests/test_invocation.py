"""What advice printed for the user calls `cascade`: the words that run it from their shell."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from cascade.cli.plumbing import cascade_command


@pytest.fixture(autouse=True)
def _no_launcher(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CASCADE_COMMAND", raising=False)


def _program(directory: Path) -> Path:
    program = directory / "bin" / "cascade"
    program.parent.mkdir()
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    return program


def test_a_launcher_says_how_it_is_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """``CASCADE_COMMAND`` (set by ``python3 dev.py``) wins."""
    monkeypatch.setenv("CASCADE_COMMAND", "python3 dev.py cascade")
    assert cascade_command() == "python3 dev.py cascade"


def test_cascade_on_the_path_is_called_by_its_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The `cascade` the shell finds is this one: the plain name."""
    program = _program(tmp_path)
    monkeypatch.setenv("PATH", str(program.parent))
    monkeypatch.setattr(sys, "argv", [str(program), "demo"])
    assert cascade_command() == "cascade"


def test_cascade_off_the_path_is_called_by_its_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A virtualenv's `cascade` not on the PATH: its path, relative to where the user is."""
    program = _program(tmp_path)
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr(sys, "argv", [str(program), "demo"])
    monkeypatch.chdir(tmp_path)
    assert cascade_command() == str(Path("bin") / "cascade")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert cascade_command() == str(program.resolve())
