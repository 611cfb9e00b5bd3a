"""Values given when a run starts: :class:`Param` in a workflow, bound by ``engine.run(target,
params={...})``, and the one converter that types them, shared with served workflows' starts.

Conversion is msgspec's (``msgspec.convert``, strict): text is never read as a number or a bool
(``"5"`` is no ``int``), an ``int`` is a ``float``; ``date``/``datetime`` take ISO 8601 text,
``Enum``/``Literal``, lists, tuples and dicts of these, ``X | None``, dataclasses and msgspec
structs take what JSON gives them. Every number in a value is within ``MAX_NUMBER`` (as every
number a message carries).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Generic, TypeVar

import msgspec

from cascade.interfaces import CascadeError
from cascade.interfaces.wire import MAX_NUMBER

__all__ = ["Param", "ParamError", "bind_params", "check_numbers", "convert_param"]

T = TypeVar("T")

_SHOWN = 60  # characters of a refused value the refusal shows
_DETAIL = 300  # characters of msgspec's own account of it
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,63}")


class ParamError(CascadeError, TypeError, ValueError):
    """A parameter missing, unknown, of a type it does not take, or a value a router has no
    route for; the message names it. A ``TypeError``, and a ``ValueError`` as the existing
    Cascade engine raises for a value it refuses."""


class _Required:
    def __repr__(self) -> str:
        return "<required>"


REQUIRED: Any = _Required()


class Param(Generic[T]):
    """A value the run is given when it starts: ``engine.run(target, params={name: value})``.

    Put it where a task takes a value (an argument, nested in one, a ``run_if`` condition);
    each task gets the value the run was given, or ``default``. Without a default, a run not
    given it fails before any task runs, naming it. ``type`` converts and checks the value
    (strictly: ``"5"`` is no ``int``); ``None`` takes the default's type, or any value when
    there is no default. Two ``Param`` of one name in a graph must agree.
    """

    __slots__ = ("default", "description", "name", "type")

    def __init__(
        self, name: str, default: Any = REQUIRED, type: Any = None, description: str = ""
    ) -> None:
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ValueError(
                f"a parameter's name is 1 to 64 of A-Z a-z 0-9 _ - (a letter or _ first), "
                f"not {name!r}"
            )
        self.name = name
        self.default = default
        self.type = type if type is not None or default is REQUIRED else _type_of(default)
        self.description = description

    @property
    def required(self) -> bool:
        """Whether a run must be given it (it has no default)."""
        return self.default is REQUIRED

    def same(self, other: Param[Any]) -> bool:
        """Whether ``other`` is this parameter: the same name, default, type and description."""
        return (self.name, self.default, self.type, self.description) == (
            other.name,
            other.default,
            other.type,
            other.description,
        )

    def __repr__(self) -> str:
        default = "" if self.required else f", default={self.default!r}"
        return f"<Param {self.name}{default}>"


def _type_of(default: Any) -> Any:
    return None if default is None else type(default)


def _written(target: Any) -> str:
    return getattr(target, "__name__", None) or str(target)


def convert_param(name: str, value: Any, target: Any, expected: str | None = None) -> Any:
    """``value`` converted to ``target`` (``None``: as it is), every number in it within
    ``MAX_NUMBER``; :class:`ParamError` naming ``name`` and ``expected`` (``target`` written
    out) otherwise."""
    check_numbers(name, value)
    if target is None:
        return value
    try:
        return msgspec.convert(value, target, strict=True)
    except msgspec.ValidationError as exc:
        said = expected if expected is not None else _written(target)
        raise ParamError(_refusal(name, said, value, str(exc))) from None


def bind_params(found: Mapping[str, Param[Any]], given: Mapping[str, Any]) -> dict[str, Any]:
    """Each parameter of a graph (``found``, by name) bound to its value: the one ``given``,
    converted, else its default; :class:`ParamError` for one given that no ``Param`` of the
    graph names, one required and not given, or a value its type refuses."""
    unknown = sorted(set(given) - set(found))
    if unknown:
        known = ", ".join(sorted(found)) or "none"
        raise ParamError(
            f"no parameter {', '.join(unknown)} in this workflow (its parameters: {known})"
        )
    missing = sorted(name for name, param in found.items() if param.required and name not in given)
    if missing:
        raise ParamError(f"parameter {', '.join(missing)} is required: give it in params")
    return {
        name: convert_param(name, given[name], param.type) if name in given else param.default
        for name, param in found.items()
    }


def check_numbers(name: str, value: Any) -> None:
    """:class:`ParamError` for a number in ``value`` beyond :data:`MAX_NUMBER`."""
    if isinstance(value, bool):
        return
    if isinstance(value, int | float):
        if not -MAX_NUMBER <= value <= MAX_NUMBER:
            raise ParamError(
                f"parameter {name} holds {_shown(value)}: a number in params is within "
                f"±{MAX_NUMBER:g}"
            )
    elif isinstance(value, list | tuple):
        for item in value:
            check_numbers(name, item)
    elif isinstance(value, dict):
        for item in value.values():
            check_numbers(name, item)


def _refusal(name: str, expected: str, value: Any, detail: str) -> str:
    """``parameter n must be int, not str ("5")``, with msgspec's account when it says more
    (where inside the value, which bound)."""
    said = f"parameter {name} must be {expected}, not {_json_type(value)} ({_shown(value)})"
    plain = detail.startswith("Expected `") and ", got `" in detail and " - at `" not in detail
    return said if plain else f"{said}: {detail[:_DETAIL]}"


def _json_type(value: Any) -> str:
    return "None" if value is None else type(value).__name__


def _shown(value: Any) -> str:
    try:
        text = json.dumps(value, ensure_ascii=True)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 1] + "…"
