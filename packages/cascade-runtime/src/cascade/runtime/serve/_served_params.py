"""A served workflow's params typed at the door: each parameter's annotation resolved and
checked when serving starts, and each request's values converted to it before any run does.

A request's params are JSON, which has no dates, enums or classes: msgspec converts them
(``msgspec.convert``, strict), so ``int``, ``float``, ``bool``, ``str``, ``date``/``datetime``
(ISO 8601 text), ``Enum``/``Literal``, lists, tuples and dicts of these, ``X | None``,
dataclasses and msgspec structs take what JSON gives them, and ``Annotated[int,
msgspec.Meta(le=100)]`` adds bounds. Strict: text is never read as a number or a bool
(``"5"`` is no ``int``); an ``int`` is a ``float``. Every number in the params, whatever its
parameter's annotation, is within ``MAX_NUMBER`` (as every number a message carries). A
parameter without an annotation (or ``Any``) takes the JSON as it is.
"""

from __future__ import annotations

import functools
import inspect
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any

import msgspec

from ..workflow._param import convert_param

__all__ = ["ParamTypes"]


class ParamTypes:
    """The types a served function's params are converted to: by name (``named``: every
    parameter a request may give by name, ``types``: the annotated ones, ``written``: their
    annotations as announced), and ``rest``, that of its ``**kwargs``' values."""

    def __init__(
        self,
        named: frozenset[str],
        types_: Mapping[str, Any],
        written: Mapping[str, str],
        rest: tuple[Any, str] | None = None,
    ) -> None:
        self._named = named
        self._types = dict(types_)
        self._written = dict(written)
        self._rest = rest

    @classmethod
    def of(
        cls, workflow: str, build: Callable[..., Any], signature: inspect.Signature
    ) -> ParamTypes:
        """The types of ``build``'s params a request gives by name (string annotations, as
        ``from __future__ import annotations`` makes, resolved in its module); ``TypeError``
        naming the parameter for an annotation that does not resolve or that no JSON value
        converts to (``Path``, a class of one's own)."""
        named: set[str] = set()
        found: dict[str, Any] = {}
        written: dict[str, str] = {}
        rest: tuple[Any, str] | None = None
        for param in signature.parameters.values():
            if param.kind in (param.POSITIONAL_ONLY, param.VAR_POSITIONAL):
                continue
            if param.kind is not param.VAR_KEYWORD:
                named.add(param.name)
            if param.annotation is param.empty:
                continue
            resolved = _resolved(workflow, build, param)
            if resolved is Any:
                continue
            _check_convertible(workflow, param.name, resolved, _text(param.annotation))
            if param.kind is param.VAR_KEYWORD:
                rest = (resolved, _text(param.annotation))
            else:
                found[param.name] = resolved
                written[param.name] = _text(param.annotation)
        return cls(frozenset(named), found, written, rest)

    def convert(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """``params`` (JSON) as their annotations have them (a param not annotated, or not
        the function's, as it is: binding says what does not fit); :class:`ParamError`."""
        converted: dict[str, Any] = {}
        for name, value in params.items():
            if name in self._named:
                target, expected = self._types.get(name), self._written.get(name, "")
            elif self._rest is not None:
                target, expected = self._rest
            else:
                target, expected = None, ""
            converted[name] = convert_param(name, value, target, expected)
        return converted


def _text(annotation: Any) -> str:
    return annotation if isinstance(annotation, str) else inspect.formatannotation(annotation)


def _resolved(workflow: str, build: Callable[..., Any], param: inspect.Parameter) -> Any:
    """``param``'s annotation, evaluated when it is text, in the module of the function
    that defines it (as ``typing.get_type_hints`` does: its extras, such as msgspec's
    bounds, kept); only this parameter's, so that an unresolvable return annotation (a
    type imported under ``TYPE_CHECKING``) costs nothing."""
    annotation = param.annotation
    if not isinstance(annotation, str):
        return annotation
    holder = types.SimpleNamespace(
        __annotations__={param.name: annotation}, __globals__=_globals(build)
    )
    try:
        return typing.get_type_hints(holder, include_extras=True)[param.name]
    except Exception as exc:  # NameError, SyntaxError, TypeError: whatever eval raises
        raise TypeError(
            f"workflow {workflow!r}: the annotation of parameter {param.name!r} "
            f"({annotation!r}) does not resolve ({type(exc).__name__}: {exc}); a request's "
            "value is converted to it: import what it names at the module's top (not under "
            "TYPE_CHECKING), or annotate it Any to take the JSON as it is"
        ) from None


def _globals(build: Callable[..., Any]) -> dict[str, Any]:
    """The namespace ``build``'s annotations were written in."""
    function: Any = build
    while isinstance(function, functools.partial):
        function = function.func
    if not inspect.isroutine(function) and not inspect.isclass(function):
        function = type(function).__call__  # a callable object
    function = inspect.unwrap(function)
    namespace = getattr(function, "__globals__", None)
    if namespace is None and inspect.isclass(function):
        namespace = vars(inspect.getmodule(function) or types.ModuleType("empty"))
    return dict(namespace or {})


def _check_convertible(workflow: str, name: str, annotation: Any, written: str) -> None:
    """``TypeError`` unless msgspec converts some JSON value to ``annotation``."""
    try:
        info = msgspec.inspect.type_info(annotation)
        custom = _custom(info, set())
    except TypeError as exc:  # a union msgspec cannot tell apart, a type it does not know
        problem = str(exc)
    else:
        if custom is None:
            return
        problem = f"no JSON value converts to {getattr(custom, '__qualname__', custom)}"
    raise TypeError(
        f"workflow {workflow!r}: parameter {name!r} is annotated {written}, and "
        f"{problem}; annotate it with types JSON converts to (int, float, bool, str, "
        "date/datetime, Enum/Literal, lists and dicts of these, dataclasses, msgspec structs), "
        "or Any to take the JSON as it is"
    )


def _custom(info: Any, seen: set[int]) -> Any:
    """The first class inside ``info`` (a ``msgspec.inspect`` type) that msgspec converts no
    JSON to (``object`` is any value, as ``Any`` is); ``None`` if there is none."""
    if isinstance(info, msgspec.inspect.CustomType):
        return None if info.cls is object else info.cls
    if isinstance(info, msgspec.inspect.Field):
        return _custom(info.type, seen)
    if isinstance(info, tuple | list):
        for item in info:
            found = _custom(item, seen)
            if found is not None:
                return found
        return None
    if not isinstance(info, msgspec.inspect.Type) or id(info) in seen:
        return None
    seen.add(id(info))  # a recursive type refers to itself
    for field in info.__struct_fields__:
        found = _custom(getattr(info, field), seen)
        if found is not None:
            return found
    return None
