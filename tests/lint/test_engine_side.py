"""The engine side of the protocol (``cascade.interfaces.wire``) lists what the other packages of
the family use, and no more: each of its names is imported by a package's sources outside
``cascade-interfaces``, or names the contract of one that is (a function's result type, a bound
a function cuts to). A name nobody imports any more leaves the list (it stays in its room)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WIRE = ROOT / "packages/cascade-interfaces/src/cascade/interfaces/wire.py"
# Not imported elsewhere, but what the contract of a listed function names.
CONTRACTS = {
    "EnvelopeFormats": "what envelope_formats returns",
    "ScopeParts": "what split_scope returns",
    "MAX_ERROR_LENGTH": "what truncate_error cuts to",
    "MAX_TRACEBACK_LENGTH": "what truncate_traceback cuts to",
}


def _listed() -> set[str]:
    """The names the module's ``if TYPE_CHECKING:`` block imports: its ``__all__``."""
    names: set[str] = set()
    for node in ast.parse(WIRE.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            for statement in node.body:
                assert isinstance(statement, ast.ImportFrom)
                names.update(alias.name for alias in statement.names)
    return names


def _imported_elsewhere() -> set[str]:
    """The names the other packages' sources import from ``cascade.interfaces.wire``."""
    names: set[str] = set()
    for path in ROOT.glob("packages/*/src/**/*.py"):
        if path.is_relative_to(ROOT / "packages/cascade-interfaces"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module == "cascade.interfaces.wire":
                names.update(alias.name for alias in node.names)
    return names


def test_every_listed_name_is_used_by_another_package() -> None:
    """A listed name that no other package imports, and no contract names, is one too many."""
    listed = _listed()
    assert len(listed) > 50  # the walk read the module's list
    assert sorted(listed - _imported_elsewhere() - set(CONTRACTS)) == []


def test_the_contracts_are_listed() -> None:
    """What the contracts name is listed (a stale entry here would hide nothing)."""
    assert set(CONTRACTS) <= _listed()
