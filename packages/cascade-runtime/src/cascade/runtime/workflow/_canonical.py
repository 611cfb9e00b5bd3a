"""Values as one canonical tree of msgpack's types: equal values alike, different ones
differently. What result fingerprints hash and what makes two calls of a pure task one."""

from __future__ import annotations

import datetime
import decimal
import pathlib
import uuid
from collections.abc import Callable
from typing import Any

import msgspec

from cascade.interfaces import CascadeError

from ._param import Param
from ._resource import Inject
from ._router import Router
from ._task import LazyResult, MappedLazyResult, Unmapped

__all__ = ["NotCanonical", "canonical", "encode"]

encode = msgspec.msgpack.Encoder().encode
"""msgpack bytes of a canonical tree."""
_encode = encode
_SCALARS = frozenset((type(None), bool, int, float, str, bytes))


class NotCanonical(CascadeError):
    """An argument has no canonical encoding; the message says which and why."""


def canonical(value: Any, upstream: Callable[[Any], Any] | None) -> Any:
    """``value`` as a tree of msgpack's types where every container says its type, so that
    equal values encode alike and different ones differently (a :class:`Param` as its bound
    value, through ``upstream``); raises :class:`NotCanonical`."""
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind is list:
        return ["l", [canonical(item, upstream) for item in value]]
    if kind is tuple:
        return ["t", [canonical(item, upstream) for item in value]]
    if kind is dict:
        items = [(canonical(k, upstream), canonical(v, upstream)) for k, v in value.items()]
        items.sort(key=lambda item: _encode(item[0]))
        return ["d", items]
    if kind is set or kind is frozenset:
        members = sorted((canonical(item, upstream) for item in value), key=_encode)
        return ["s" if kind is set else "f", members]
    if kind is datetime.datetime or kind is datetime.date or kind is datetime.time:
        return [kind.__name__, value.isoformat()]
    if kind is decimal.Decimal or kind is uuid.UUID or isinstance(value, pathlib.PurePath):
        return [kind.__name__, str(value)]
    if upstream is not None and (kind is LazyResult or kind is Param or kind is MappedLazyResult):
        return upstream(value)
    if kind is Unmapped:
        return ["u", canonical(value.value, upstream)]
    if kind is Router:  # its selector and every route: which one it takes is the selector's
        routes = [(canonical(k, upstream), canonical(v, upstream)) for k, v in value.routes.items()]
        routes.sort(key=lambda route: _encode(route[0]))
        return ["R", canonical(value.selector, upstream), routes]
    if kind is Inject:  # a resource's name: its value is no input (a connection, a client)
        return ["i", value.name]
    raise NotCanonical(f"a {kind.__module__}.{kind.__qualname__} has no canonical encoding")
