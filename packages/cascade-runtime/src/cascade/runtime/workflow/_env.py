"""``Env``: an environment variable's value, read when the run gets there, as a task."""

from __future__ import annotations

import os
from typing import Any

from ._param import ParamError
from ._task import LazyResult, task

__all__ = ["Env"]


@task(name="env")
def _read_env(name: str, default: Any = None) -> Any:
    return os.environ.get(name, default)


def Env(name: str, default: Any = None, description: str = "") -> LazyResult[Any]:
    """The value of the environment variable ``name`` (a str), or ``default`` where it is not
    set, read by the task ``env`` in the engine's process when the run gets there (the
    Cascade engine's ``cs.Env``; ``description`` is its signature's, for the reader of the
    code). A task like any other: kept, and reused by a rerun, as what the run read."""
    if not isinstance(name, str) or not name:
        raise ParamError(f"Env takes a variable's name (a non-empty str), not {name!r}")
    del description
    return _read_env(name, default)
