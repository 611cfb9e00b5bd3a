"""How to run `cascade` again from where the user is: what advice printed for them must say."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

__all__ = ["INVOCATION_ENV", "cascade_command"]

INVOCATION_ENV = "CASCADE_COMMAND"
"""Set by a launcher that puts `cascade` somewhere not on the PATH (the clone's
``python3 dev.py cascade``): the words that run this same command again."""


def cascade_command() -> str:
    """The words that start this `cascade` from the user's shell: ``$CASCADE_COMMAND`` when a
    launcher set it; ``cascade`` when that name on the PATH is this program; else this
    program's path (relative to the working directory when it is inside it)."""
    launcher = os.environ.get(INVOCATION_ENV, "").strip()
    if launcher:
        return launcher
    program = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if program is None or program.name not in ("cascade", "cascade.exe"):
        return "cascade"
    on_path = shutil.which("cascade")
    if on_path is not None and _same_file(Path(on_path), program):
        return "cascade"
    try:
        return str(program.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(program.resolve())


def _same_file(first: Path, second: Path) -> bool:
    try:
        return first.samefile(second)
    except OSError:
        return False
