"""`--entrypoint PATH.py:FUNCTION`: a plain script's workflow, imported from its file, as a
served workflow names it (a function that builds a target from params, or a target), and the
target it builds for a rerun."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cascade.runtime import LazyResult

from ...plumbing._context import UsageError
from ...plumbing._python_file import import_python_file, raised

__all__ = ["Entrypoint", "load_entrypoint"]

_FORM = "PATH.py:FUNCTION"


@dataclass(frozen=True)
class Entrypoint:
    """The workflow ``name`` of the file ``path``: ``workflow``, a function that builds a
    target from params, or a target whose :class:`~cascade.runtime.Param` take them."""

    given: str
    path: Path
    name: str
    workflow: Any

    @property
    def is_target(self) -> bool:
        """Whether the workflow is a target itself (its params go to its run)."""
        return is_target(self.workflow)

    async def target(self, params: Mapping[str, Any]) -> Any:
        """The target a rerun with ``params`` runs: the function called with them (awaited
        when it returns an awaitable), or the target itself; :class:`UsageError` when the
        call does not take them, raises, or builds no target (it is no workflow)."""
        if self.is_target:
            return self.workflow
        try:
            inspect.signature(self.workflow).bind(**params)
        except TypeError as exc:
            raise UsageError(f"--param: {self.given}(...) takes no such params: {exc}") from None
        except ValueError:  # no signature to read (a builtin): the call says
            pass
        try:
            built = self.workflow(**params)
            if inspect.isawaitable(built):
                built = await built
        except Exception as exc:
            raise UsageError(f"--entrypoint {self.given}(...) raised {raised(exc)}") from None
        if not is_target(built):
            raise UsageError(
                f"--entrypoint {self.given} is not a workflow: it returned "
                f"{type(built).__name__}, not a target (a task's result, or a list, tuple or "
                "dict of them)"
            )
        return built


def is_target(value: Any) -> bool:
    """Whether ``value`` is what an engine runs: a lazy result, or a non-empty list, tuple or
    dict of them."""
    if isinstance(value, LazyResult):
        return True
    if not isinstance(value, (list, tuple, dict)) or not value:
        return False
    items = value.values() if isinstance(value, dict) else value
    return all(isinstance(item, LazyResult) for item in items)


def load_entrypoint(given: str) -> Entrypoint:
    """The workflow ``PATH.py:FUNCTION`` names, its file imported as ``python PATH.py`` would
    find its imports (its folder first on the path) but not as ``__main__`` (a script's
    ``if __name__ == "__main__":`` part does not run); :class:`UsageError`, one line, for a
    malformed value, a file missing, an import that fails, no such name, or a name that is
    neither a function nor a target."""
    where, sep, name = given.rpartition(":")
    if not sep or not where or not name.isidentifier():
        raise UsageError(f"--entrypoint takes {_FORM}, not {given!r}")
    path = Path(where).expanduser()
    if not path.is_file():
        raise UsageError(f"--entrypoint {given}: no file {where}")
    module = import_python_file(path, f"--entrypoint {given}")
    workflow = getattr(module, name, None)
    if workflow is None:
        raise UsageError(f"--entrypoint {given}: {where} has no function {name}")
    if not callable(workflow) and not is_target(workflow):
        raise UsageError(
            f"--entrypoint {given} is not a workflow: {name} is a {type(workflow).__name__}, "
            "neither a function that builds a target nor a target"
        )
    if isinstance(workflow, type):
        raise UsageError(f"--entrypoint {given} is not a workflow: {name} is a class")
    return Entrypoint(given, path.resolve(), name, workflow)
