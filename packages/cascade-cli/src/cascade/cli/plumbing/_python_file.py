"""A user's Python file imported by a command (`cascade rerun --entrypoint`, `cascade serve`):
as ``python PATH.py`` would find its imports, but not as ``__main__``."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from ._context import UsageError

__all__ = ["import_python_file", "raised"]


def import_python_file(path: Path, where: str, module_name: str | None = None) -> ModuleType:
    """The module of the file ``path``, its folder first on the path (its own imports found as
    ``python PATH.py`` finds them), imported as ``module_name`` (by default
    ``cascade_entrypoint_{stem}``: no clash with an installed module) and not as ``__main__``
    (a script's ``if __name__ == "__main__":`` part does not run). :class:`UsageError`, one line
    starting with ``where``, when it cannot be imported or its import raises."""
    folder = str(path.resolve().parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)  # its own imports, as `python PATH.py` finds them
    if module_name is None:
        stem = path.stem
        module_name = f"cascade_entrypoint_{stem}" if stem.isidentifier() else "entrypoint"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise UsageError(f"{where}: {path} cannot be imported as Python")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses and pickling look their module up
    try:
        spec.loader.exec_module(module)
    except (Exception, SystemExit) as exc:
        sys.modules.pop(module_name, None)
        raise UsageError(f"{where}: importing {path.name} raised {raised(exc)}") from None
    return module


def raised(exc: BaseException) -> str:
    """``ValueError: what it said``, on one line."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
