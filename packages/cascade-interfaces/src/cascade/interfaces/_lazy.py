"""A package's public names imported from their modules when first used (PEP 562), each name
written once: in its ``__init__``'s ``if TYPE_CHECKING:`` imports, which the type checker and
the IDE read as they are, and which :func:`lazy_exports` reads at run time for where each name
is defined. Whoever imports one name pays for its module only (a command's start)."""

from __future__ import annotations

import ast
import importlib
import sys
from collections.abc import Callable
from typing import Any

__all__ = ["lazy_exports"]


def _homes(path: str) -> dict[str, str]:
    """Each name the ``if TYPE_CHECKING:`` block of the module at ``path`` imports, and the
    module it imports it from (relative: ``._answers``), in the block's order."""
    with open(path, encoding="utf-8") as source:  # not pathlib: its import costs more
        tree = ast.parse(source.read(), filename=path)
    homes: dict[str, str] = {}
    blocks = [
        node
        for node in tree.body
        if isinstance(node, ast.If)
        and isinstance(node.test, ast.Name)
        and node.test.id == "TYPE_CHECKING"
    ]
    for block in blocks:
        for statement in block.body:
            if not isinstance(statement, ast.ImportFrom) or statement.module is None:
                raise TypeError(f"{path}: TYPE_CHECKING holds only `from module import name`")
            for alias in statement.names:
                homes[alias.asname or alias.name] = "." * statement.level + statement.module
    return homes


def lazy_exports(
    module: str,
) -> tuple[list[str], Callable[[str], Any], Callable[[], list[str]]]:
    """The ``__all__``, ``__getattr__`` and ``__dir__`` of the package ``module``
    (``__name__``): its public names are those its ``if TYPE_CHECKING:`` block imports, each
    imported from its module when first used and kept in the package's globals then::

        if TYPE_CHECKING:
            from ._controller import Controller
            from cascade.interfaces.commands import ControlError

        __all__, __getattr__, __dir__ = lazy_exports(__name__)
    """
    package = sys.modules[module]
    if package.__file__ is None:
        raise TypeError(f"{module} has no source file to read its names from")
    homes = _homes(package.__file__)
    # relative homes are read from the package a module sits in (itself, for a package)
    anchor = package.__package__ or module
    names = list(homes)
    namespace = vars(package)

    def __getattr__(name: str) -> Any:
        """Each public name, from its module on first use."""
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(home, anchor), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        """The module's names, those not imported yet included."""
        return sorted({*namespace, *names})

    return names, __getattr__, __dir__
