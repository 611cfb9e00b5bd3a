"""Every error Cascade raises on purpose is a CascadeError, in every package: what each public
module exports, and each exception class the packages' sources define (but the few listed below).

A new error without the root fails here. The other packages are imported, not depended on: every
nox session installs them all beside this one.
"""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import pytest

import cascade
from cascade.interfaces import CascadeError

# Every package's top module: all are installed, or this test would pass over a missing one.
PACKAGES = (
    "cascade.interfaces",
    "cascade.connector_kit",
    "cascade.control",
    "cascade.metrics",
    "cascade.connectors.mqtt",
    "cascade.runtime",
    "cascade.history",
    "cascade.dashboard",
    "cascade.notify",
    "cascade.cli",
    "cascade.testkit",
)
# Exception classes that are no error Cascade raises, by package and name: each says why.
NO_ERRORS = {
    "cascade.cli:_Ended": "stops following a run's log lines once the history has the run's end;"
    " raised and caught in one module",
    "cascade.runtime:_Refused": "a start request refused: said in the request's answer, and by"
    " its message alone where a carry-on or a slot logs it (a private class is never named)",
    "cascade.runtime:_Taken": "a _Refused: a start request's id taken already in the results"
    " store; raised and caught in one module",
    "cascade.runtime:_Busy": "a _Refused: no room for a start request's run now; raised and"
    " caught in one module",
    "cascade.runtime:_Unclaimed": "a _Refused: a backfill refused before its slot was claimed;"
    " raised and caught in one module",
}


def _modules(*, private: bool) -> list[str]:
    """The dotted names of the modules under ``cascade``, in every package installed; with
    ``private``, also those of a private module or folder (``_name``)."""
    names: set[str] = set()
    for root in map(Path, cascade.__path__):
        for path in root.rglob("*.py"):
            parts = path.relative_to(root).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            if parts[-1] == "__main__" or "_migrations" in parts:  # run, not imported: the
                continue  # console script, and alembic's scripts (alembic runs them)
            if private or not any(part.startswith("_") for part in parts):
                names.add(".".join(("cascade", *parts)))
    return sorted(names)


def _errors(module: str, names: list[str]) -> dict[str, type[BaseException]]:
    imported = importlib.import_module(module)
    found = {name: getattr(imported, name) for name in names}
    return {
        name: kind
        for name, kind in found.items()
        if inspect.isclass(kind) and issubclass(kind, BaseException)
    }


def _key(kind: type[BaseException]) -> str:
    """``package:Name`` of an exception class: its package (``cascade.runtime``, wherever in
    it the class is) and its name."""
    package = next(p for p in sorted(PACKAGES, key=len, reverse=True) if kind.__module__ == p
                   or kind.__module__.startswith(f"{p}."))  # fmt: skip
    return f"{package}:{kind.__qualname__}"


def test_every_package_is_installed() -> None:
    public = set(_modules(private=False))
    assert [package for package in PACKAGES if package not in public] == []


@pytest.mark.parametrize("module", _modules(private=False))
def test_every_error_a_public_module_exports_is_a_cascade_error(module: str) -> None:
    exported = getattr(importlib.import_module(module), "__all__", [])
    errors = _errors(module, exported)
    listed = set(NO_ERRORS)
    outside = [name for name, kind in errors.items() if not issubclass(kind, CascadeError)]
    assert sorted(name for name in outside if _key(errors[name]) not in listed) == []


def test_every_exception_class_the_sources_define_is_a_cascade_error() -> None:
    defined: dict[str, type[BaseException]] = {}
    for module in _modules(private=True):
        imported = importlib.import_module(module)
        names = [name for name, value in vars(imported).items()
                 if getattr(value, "__module__", None) == module]  # fmt: skip
        defined.update({_key(kind): kind for kind in _errors(module, names).values()})
    assert len(defined) > 40  # the walk found the packages' errors
    outside = {key for key, kind in defined.items() if not issubclass(kind, CascadeError)}
    assert sorted(outside - set(NO_ERRORS)) == []
    # each exception listed is still one, and still outside: a list that only shrinks
    assert sorted(set(NO_ERRORS) - outside) == []


def test_the_root_keeps_the_standard_bases_callers_catch() -> None:
    from cascade.control import ControlError
    from cascade.interfaces import InvalidIdError, InvalidMessageError
    from cascade.runtime import InvalidTargetError, RerunError

    assert issubclass(InvalidMessageError, ValueError)
    assert issubclass(InvalidIdError, ValueError)
    assert issubclass(ControlError, ValueError)
    assert issubclass(RerunError, ValueError)
    assert issubclass(InvalidTargetError, TypeError)
    for kind in (InvalidMessageError, InvalidIdError, ControlError, RerunError, InvalidTargetError):
        assert issubclass(kind, CascadeError)
