"""Which constraints govern a task name, found without looking at the ones that do not."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable

from cascade.interfaces import Constraint
from cascade.interfaces.wire import split_scope

__all__ = ["ConstraintMatcher", "Key"]

Key = tuple[str, str]  # (scope, type)

_GLOB_CHARS = frozenset("*?[")
_MAX_CACHED_NAMES = 10_000


class ConstraintMatcher:
    """The constraints in force, indexed by what their scope can match.

    A constraint is indexed by its scope's target (:func:`~cascade.interfaces.split_scope`:
    ``org:acme/task:etl_*`` by ``task:etl_*``): whose place it governs, the manager decides
    before it comes here. ``global`` governs every name, ``task:<name>`` without glob characters
    one name (a dict lookup), and each other ``task:<glob>`` is compiled once.
    :meth:`matching` answers from a per-name cache that every change updates
    in place (one glob test per cached name, never a rebuild), so asking costs
    the same whether 0 or 10,000 unrelated constraints are held, and a stream
    of changes costs each change the number of task names seen, not a scan
    per admission.
    """

    def __init__(self) -> None:
        self._constraints: dict[Key, Constraint] = {}
        self._global: set[Key] = set()
        self._exact: dict[str, set[Key]] = {}
        self._globs: dict[Key, Callable[[str], object]] = {}
        self._cache: dict[str, dict[Key, Constraint]] = {}

    def __len__(self) -> int:
        return len(self._constraints)

    def __contains__(self, key: object) -> bool:
        return key in self._constraints

    def add(self, key: Key, constraint: Constraint) -> None:
        """Index ``constraint`` under ``key`` (replacing what ``key`` held)."""
        self.remove(key)
        self._constraints[key] = constraint
        target = split_scope(constraint.scope).target
        kind, _, pattern = target.partition(":")
        applies: Callable[[str], object]
        if target == "global":
            self._global.add(key)
            applies = _always
        elif kind == "task" and not _GLOB_CHARS.intersection(pattern):
            self._exact.setdefault(pattern, set()).add(key)
            applies = pattern.__eq__
        elif kind == "task":
            applies = glob_matcher(pattern)
            self._globs[key] = applies
        else:  # a scope that governs nothing (validated scopes never get here)
            return
        for name, found in self._cache.items():
            if applies(name):
                found[key] = constraint

    def remove(self, key: Key) -> Constraint | None:
        """Forget ``key``; returns what it held."""
        constraint = self._constraints.pop(key, None)
        if constraint is None:
            return None
        self._global.discard(key)
        self._globs.pop(key, None)
        pattern = split_scope(constraint.scope).target.partition(":")[2]
        exact = self._exact.get(pattern)
        if exact is not None:
            exact.discard(key)
            if not exact:
                del self._exact[pattern]
        for found in self._cache.values():
            found.pop(key, None)
        return constraint

    def get(self, key: Key) -> Constraint | None:
        """The constraint held under ``key``, if any."""
        return self._constraints.get(key)

    def items(self) -> list[tuple[Key, Constraint]]:
        """Every ``(key, constraint)`` held, oldest first."""
        return list(self._constraints.items())

    def matching(self, name: str) -> dict[Key, Constraint]:
        """The constraints that govern tasks named ``name`` (do not modify the result)."""
        found = self._cache.get(name)
        if found is None:
            found = self._lookup(name)
            if len(self._cache) >= _MAX_CACHED_NAMES:
                self._cache.clear()
            self._cache[name] = found
        return found

    def _lookup(self, name: str) -> dict[Key, Constraint]:
        keys = [*self._global, *self._exact.get(name, ())]
        keys += [key for key, applies in self._globs.items() if applies(name)]
        return {key: self._constraints[key] for key in keys}


def _always(_name: str) -> bool:
    return True


def glob_matcher(pattern: str) -> Callable[[str], object]:
    """A test of names against ``pattern``, exactly as ``fnmatch.fnmatchcase`` decides.

    Globs of ``*`` and literal text only (``api_*``, ``*-etl-*``), the usual
    kind, are matched with string methods: an engine may receive thousands at
    once, and compiling each into a regular expression costs ~0.1 ms. Others
    (``?``, ``[...]``) are compiled.
    """
    if "?" in pattern or "[" in pattern:
        return re.compile(fnmatch.translate(pattern)).match
    first, *middle, last = pattern.split("*") if "*" in pattern else (pattern, pattern)
    if "*" not in pattern:
        return pattern.__eq__
    least = len(first) + len(last) + sum(map(len, middle))

    def matches(name: str) -> bool:
        if len(name) < least or not name.startswith(first) or not name.endswith(last):
            return False
        position, end = len(first), len(name) - len(last)
        for piece in middle:  # leftmost first: a later '*' can absorb whatever follows
            found = name.find(piece, position, end)
            if found < 0:
                return False
            position = found + len(piece)
        return True

    return matches
