"""The constraint matcher answers exactly what a scan with ``Constraint.applies_to`` would."""

from __future__ import annotations

import fnmatch

from hypothesis import given
from hypothesis import strategies as st

from cascade.interfaces import Constraint
from cascade.runtime.constraints._constraint_matcher import ConstraintMatcher, glob_matcher

_alphabet = st.sampled_from("ab-_*?[]!.")
_patterns = st.text(_alphabet, max_size=8)
_names = st.text(st.sampled_from("ab-_*?[].x"), max_size=8)


@given(_patterns, _names)
def test_glob_matcher_agrees_with_fnmatchcase(pattern: str, name: str) -> None:
    """Every glob, string-matched or compiled, decides as fnmatch.fnmatchcase does."""
    assert bool(glob_matcher(pattern)(name)) is fnmatch.fnmatchcase(name, pattern)


_scopes = st.one_of(st.just("global"), _patterns.map(lambda p: f"task:{p or 'a'}"))
_ops = st.lists(
    st.tuples(st.booleans(), _scopes, st.sampled_from(["pause", "concurrency"]), _names),
    max_size=30,
)


@given(_ops)
def test_matching_equals_a_full_scan_through_any_changes(
    ops: list[tuple[bool, str, str, str]],
) -> None:
    """Adds and removes interleaved with lookups (a warm cache): always the scan's answer."""
    matcher = ConstraintMatcher()
    names: set[str] = {"a", "ab", ""}
    for add, scope, kind, name in ops:
        key = (scope, kind)
        if add:
            constraint = (
                Constraint.pause(scope) if kind == "pause" else Constraint.concurrency(scope, 1)
            )
            matcher.add(key, constraint)
        else:
            matcher.remove(key)
        names.add(name)
        for probe in names:
            expected = {k for k, c in matcher.items() if c.applies_to(probe)}
            assert set(matcher.matching(probe)) == expected
