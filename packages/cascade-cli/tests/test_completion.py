"""Shell completion (typer's own) for bash, zsh and fish: the scripts and what they complete."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cascade.cli import app


def _complete(shell: str, words: str) -> str:
    """What the shell's completion function gets from `cascade` for the line ``words``."""
    env = {"_CASCADE_COMPLETE": f"complete_{shell}", "_TYPER_COMPLETE_ARGS": words}
    if shell == "bash":
        env |= {"COMP_WORDS": words, "COMP_CWORD": str(len(words.split()) - 1)}
    if shell == "fish":
        env["_TYPER_COMPLETE_FISH_ACTION"] = "get-args"
    result = CliRunner().invoke(app, [], env=env, prog_name="cascade")
    assert result.exit_code == 0, result.output
    return result.output


def test_help_offers_completion() -> None:
    result = CliRunner().invoke(app, ["--help"], prog_name="cascade")
    assert "--install-completion" in result.output
    assert "--show-completion" in result.output


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_the_script_completes_in_bash() -> None:
    """The script --show-completion prints (what --install-completion installs), run by bash."""
    cascade = Path(sys.executable).parent / "cascade"
    script = f"""
        eval "$('{cascade}' --show-completion)"
        COMP_WORDS=(cascade wat); COMP_CWORD=1; _cascade_completion '{cascade}'
        echo "${{COMPREPLY[@]}}"
        COMP_WORDS=(cascade watch --ho); COMP_CWORD=2; _cascade_completion '{cascade}'
        echo "${{COMPREPLY[@]}}"
    """
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60)
    assert done.stdout.splitlines() == ["watch", "--host"], done.stderr


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_commands_and_options_complete(shell: str) -> None:
    assert "watch" in _complete(shell, "cascade wat")
    assert "--host" in _complete(shell, "cascade watch --ho")
