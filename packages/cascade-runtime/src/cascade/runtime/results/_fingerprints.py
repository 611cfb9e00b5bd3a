"""What a task's result depends on, as one digest (its fingerprint), and the stable key of a task
in its graph (its name and its occurrence among the tasks of that name)."""

from __future__ import annotations

import contextlib
import hashlib
import types
import weakref
from collections.abc import Callable, Mapping
from typing import Any

import msgspec

from ..workflow._canonical import NotCanonical, canonical
from ..workflow._graph import Graph
from ..workflow._param import Param
from ..workflow._task import LazyResult, MappedLazyResult

__all__ = ["NotCanonical", "Prints", "code_hash", "fingerprint_call", "fingerprint_graph"]

_VERSION = "cascade-fingerprint/1"
_encode = msgspec.msgpack.Encoder().encode
_SCALARS = frozenset((type(None), bool, int, float, str, bytes))
_sha256 = hashlib.sha256
_codes: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()


class Prints:
    """The fingerprints of a graph's nodes, in graph order: each node's stable key, its code's
    hash, its fingerprint (``None``: it has none, and ``why_not`` says why; else ``""``).
    Lists of strings: a run of many tasks adds nothing for the garbage collector to track."""

    __slots__ = ("codes", "fingerprints", "keys", "why_not")

    def __init__(self, keys: list[str]) -> None:
        self.keys = keys
        self.codes: list[str] = []
        self.fingerprints: list[str | None] = []
        self.why_not: list[str] = []


def _code_digest(code: types.CodeType, digest: Any) -> None:
    digest.update(code.co_code)
    digest.update(repr((code.co_names, code.co_varnames, code.co_argcount)).encode())
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            _code_digest(const, digest)
        else:
            digest.update(repr(const).encode())


def code_hash(fn: Callable[..., Any]) -> str:
    """The hash of ``fn``'s code: its bytecode, names and constants (nested functions'
    included) and its defaults; not where it is in its file, nor the globals it reads. A
    callable without code of its own (a builtin, a ``partial``) hashes as its qualified name."""
    try:
        return _codes[fn]
    except (KeyError, TypeError):
        pass
    digest = hashlib.sha256()
    code = getattr(fn, "__code__", None)
    if isinstance(code, types.CodeType):
        _code_digest(code, digest)
        for defaults in (getattr(fn, "__defaults__", None), getattr(fn, "__kwdefaults__", None)):
            try:
                digest.update(_encode(canonical(defaults, None)))
            except NotCanonical:
                digest.update(type(defaults).__name__.encode())
    else:
        named = getattr(fn, "__qualname__", None) or type(fn).__qualname__
        digest.update(f"{getattr(fn, '__module__', '')}.{named}".encode())
    value = digest.hexdigest()
    with contextlib.suppress(TypeError):  # not weakly referenceable: computed each time
        _codes[fn] = value
    return value


def fingerprint_graph(graph: Graph, keys: list[str], values: Mapping[str, Any]) -> Prints:
    """Each node's fingerprint, in graph order: the sha256 of its name, its code's hash and
    each argument's canonical encoding, a lazy one as its upstream task's fingerprint. A task
    with an argument that has no canonical encoding, or below one without a fingerprint, has
    none (``why_not`` says why): it is not reusable. ``values``: its params' (a run's)."""
    prints = Prints(keys)
    fingerprints, codes, why_not = prints.fingerprints, prints.codes, prints.why_not
    by_lazy: dict[int, int] = {}  # a node with dependents: its index

    same = graph.same

    def upstream(lazy: Any) -> Any:
        if type(lazy) is Param:  # as the value it is bound to: as if given in its place
            return canonical(values[lazy.name], upstream)
        index = by_lazy[same.get(id(lazy), id(lazy))]  # a pure call's twin: the one run
        found = fingerprints[index]
        if found is None:
            raise NotCanonical(f"upstream {keys[index]} is not reusable")
        return ["r", found]

    hashes: dict[int, str] = {}  # by task: a graph has few functions and many calls of each
    scalars = _SCALARS
    for index, node in enumerate(graph.nodes):
        lazy = node.lazy
        spec = lazy.task
        code = hashes.get(id(spec))
        if code is None:
            code = hashes[id(spec)] = code_hash(spec.fn)
        args, kwargs = lazy.args, lazy.kwargs
        fingerprint: str | None = None
        why = ""
        try:
            # plain scalars (most arguments) are their own encoding: msgpack writes a tuple as
            # the list the general case makes, so both give the same bytes
            if not node.deps and all(type(arg) in scalars for arg in args):
                plain: Any = args
            else:
                ref = upstream if node.deps or node.binds else None
                plain = [_argument(at, arg, ref) for at, arg in enumerate(args, 1)]
            named = (
                sorted(
                    (name, _argument(name, arg, upstream if node.deps or node.binds else None))
                    for name, arg in kwargs.items()
                )
                if kwargs
                else ()
            )
            what: tuple[Any, ...] = (_VERSION, lazy.name, code, plain, named)
            if type(lazy) is MappedLazyResult:  # not the task called once on the lists
                what = (*what, "map")
            fingerprint = _sha256(_encode(what)).hexdigest()
        except NotCanonical as exc:
            why = str(exc)
        except (OverflowError, TypeError, ValueError) as exc:  # an int beyond msgpack's
            why = f"an argument has no canonical encoding ({exc})"
        fingerprints.append(fingerprint)
        codes.append(code)
        why_not.append(why)
        if node.dependents:
            by_lazy[id(lazy)] = index
    if len(fingerprints) != len(keys):
        raise ValueError("a key for each node")
    return prints


def fingerprint_call(lazy: LazyResult[Any], code: str) -> tuple[str | None, str]:
    """The fingerprint of a call whose arguments are values (a map's item), as
    :func:`fingerprint_graph` gives a task called on them directly: ``(fingerprint, "")``, or
    ``(None, why not)``."""
    try:
        plain = [_argument(at, arg, None) for at, arg in enumerate(lazy.args, 1)]
        named = sorted((name, _argument(name, arg, None)) for name, arg in lazy.kwargs.items())
        what = (_VERSION, lazy.name, code, plain, named or ())
        return _sha256(_encode(what)).hexdigest(), ""
    except NotCanonical as exc:
        return None, str(exc)
    except (OverflowError, TypeError, ValueError) as exc:
        return None, f"an argument has no canonical encoding ({exc})"


def _argument(which: int | str, value: Any, upstream: Callable[[Any], Any] | None) -> Any:
    """One argument's canonical encoding; :class:`NotCanonical` names it."""
    try:
        return canonical(value, upstream)
    except NotCanonical as exc:
        if str(exc).startswith("upstream "):
            raise
        raise NotCanonical(f"argument {which!s}: {exc}") from None
    except (RecursionError, TypeError, ValueError, OverflowError) as exc:
        raise NotCanonical(f"argument {which!s} has no canonical encoding ({exc})") from None
