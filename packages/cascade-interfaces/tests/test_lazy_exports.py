"""lazy_exports: a package's names, written once in its TYPE_CHECKING imports, imported from
their modules when first used."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

INIT = """
from typing import TYPE_CHECKING

from cascade.interfaces.lazy import lazy_exports

if TYPE_CHECKING:
    from ._one import ONE, one
    from ._two import TWO

__all__, __getattr__, __dir__ = lazy_exports(__name__)
"""


@pytest.fixture
def package(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A package of two modules whose names its ``__init__`` exports lazily."""
    name = f"lazy_{request.node.name}"
    root = tmp_path / name
    root.mkdir()
    (root / "__init__.py").write_text(INIT, encoding="utf-8")
    (root / "_one.py").write_text("ONE = 1\n\ndef one() -> int:\n    return ONE\n")
    (root / "_two.py").write_text("TWO = 2\n")
    sys.path.insert(0, str(tmp_path))
    yield name
    sys.path.remove(str(tmp_path))
    for module in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
        del sys.modules[module]


def test_names_are_the_type_checking_imports_each_imported_when_first_used(package: str) -> None:
    """``__all__`` is what the block imports; no module is imported until one of its names is
    used, and then only that one; the value is the module's own, kept once imported."""
    lazy = importlib.import_module(package)
    assert lazy.__all__ == ["ONE", "one", "TWO"]
    assert f"{package}._one" not in sys.modules
    assert f"{package}._two" not in sys.modules
    assert lazy.ONE == 1
    assert f"{package}._one" in sys.modules
    assert f"{package}._two" not in sys.modules
    assert lazy.one is sys.modules[f"{package}._one"].one
    assert "one" in vars(lazy)  # kept: the next use is a plain attribute
    assert {"ONE", "one", "TWO"} <= set(dir(lazy))
    with pytest.raises(AttributeError, match="has no attribute 'three'"):
        _ = lazy.three


def test_a_module_s_names_come_from_the_package_it_sits_in(package: str) -> None:
    """A module that is no package (``cascade.interfaces.wire``) exports its siblings' names
    the same way: ``._one`` is read beside it."""
    root = Path(importlib.import_module(package).__file__ or "").parent
    (root / "shared.py").write_text(INIT.replace("from ._two import TWO\n", ""), encoding="utf-8")
    shared = importlib.import_module(f"{package}.shared")
    assert shared.__all__ == ["ONE", "one"]
    assert shared.ONE == 1
    assert shared.one is sys.modules[f"{package}._one"].one


def test_a_block_that_is_not_from_imports_is_refused(tmp_path: Path, package: str) -> None:
    """A name the block would bring some other way could not be found: said at import."""
    init = tmp_path / package / "__init__.py"
    init.write_text(INIT.replace("from ._two import TWO", "import json"), encoding="utf-8")
    with pytest.raises(TypeError, match="only `from module import name`"):
        importlib.import_module(package)
