"""``cs.subflow``: another workflow file's target run, with params, as one task.

The Cascade engine's meaning: the file is loaded afresh each time (its module's code run,
as a script's would be), its ``target`` named by the variable that holds it, and run to its
end by an engine of its own, with no connector, no resources and no results store of the
parent's: only the task ``subflow`` is seen from outside, its result the target's. A failure
inside fails the task with the inner run's error. The engine lives above the workflow idioms,
so this provider lives here, beside it.
"""

from __future__ import annotations

import asyncio
import importlib.util
import itertools
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ._engine import Engine
from ._errors import CascadeRuntimeError
from .workflow._from_params import Guard, GuardedTask, under_root
from .workflow._task import Task, TaskOptions

__all__ = ["SubflowError", "SubflowProvider"]


class SubflowError(CascadeRuntimeError, ValueError):
    """``cs.subflow``'s file has no ``target`` of that name, or it cannot be loaded."""


_loaded = itertools.count()


def _load_target(path: str, target: str) -> Any:
    """The value of ``target`` in the module the file ``path`` is, its code run afresh."""
    file = Path(path).resolve()
    if not file.is_file():
        raise FileNotFoundError(f"subflow: no workflow file {file}")
    spec = importlib.util.spec_from_file_location(f"_cascade_subflow_{next(_loaded)}", file)
    if spec is None or spec.loader is None:
        raise SubflowError(f"subflow: {file} cannot be loaded as a Python module")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # its own errors fail the task as they are
    if not hasattr(module, target):
        names = sorted(n for n in vars(module) if not n.startswith("_"))
        raise SubflowError(f"subflow: {file} has no {target!r} (it has {', '.join(names)})")
    return getattr(module, target)


async def _subflow(
    path: str,
    target: str,
    params: Mapping[str, Any] | None = None,
    *,
    root: str | os.PathLike[str] | None = None,
) -> Any:
    """Run ``target``, a variable of the workflow file ``path`` (with ``root``: under it),
    with ``params`` (its ``Param`` values), in an engine of its own: its result."""
    value = await asyncio.to_thread(_load_target, under_root(path, root, "subflow"), target)
    return await Engine().run(value, params=params)


class SubflowProvider:
    """``cs.subflow(path, target, params=None)``: the task ``subflow``."""

    name = "subflow"
    _made: Task[Any, Any] | None = None

    def create_factory(self) -> Task[Any, Any]:
        if SubflowProvider._made is None:
            # a path from a param names code to run: it stays under a root named in code
            guard = Guard("subflow", paths=("path",), in_code=("root",))
            SubflowProvider._made = GuardedTask(_subflow, guard, TaskOptions(name="subflow"))
        return SubflowProvider._made
