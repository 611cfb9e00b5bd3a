"""What a grant covers: ``global``, ``org:ORG``, ``project:ORG/PROJECT``, ``task:GLOB``,
``schedule:GLOB``, ``workflow:GLOB``, ``trigger:GLOB``.

Runs are seen and cancelled by their org and project; constraints are set and cleared by
their scope, which names tasks, a schedule, a served workflow or a trigger (``task:<glob>``,
``schedule:<name>``, ``workflow:<name>``, ``trigger:<name>``), fleet-wide or placed in an org
or a project (``org:acme/task:etl_*``, ``project:acme/etl/task:*``: their topics name the
place), so a grant's ``task:``, ``schedule:``, ``workflow:`` and ``trigger:`` scopes say which
constraints its holder may steer, and its ``org:`` and ``project:`` scopes where
(:func:`steers`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from cascade.interfaces import CascadeError
from cascade.interfaces.wire import split_scope

__all__ = ["GrantScope", "ScopeError", "glob_within", "parse_scope", "steers"]

Kind = Literal["global", "org", "project", "task", "schedule", "workflow", "trigger"]
_UNUSABLE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


class ScopeError(CascadeError, ValueError):
    """A scope a roles file or a request names that is not one of the seven kinds."""


@dataclass(frozen=True)
class GrantScope:
    """One scope of a grant: its ``kind`` and its ``org``, ``project``, or the ``glob`` of the
    task, schedule, served workflow or trigger names it covers."""

    kind: Kind
    org: str | None = None
    project: str | None = None
    glob: str | None = None

    def __str__(self) -> str:
        if self.kind == "global":
            return "global"
        if self.kind == "org":
            return f"org:{self.org}"
        if self.kind == "project":
            return f"project:{self.org}/{self.project}"
        return f"{self.kind}:{self.glob}"

    @property
    def names_constraints(self) -> bool:
        """Whether this scope names what constraints steer (tasks, schedules, served
        workflows, triggers), rather than a place (``global``, ``org:``, ``project:``)."""
        return self.kind not in ("global", "org", "project")

    def covers_run(self, org: str, project: str) -> bool:
        """Whether a run of ``org``/``project`` is within this scope."""
        if self.kind == "global":
            return True
        if self.kind == "org":
            return org == self.org
        return self.kind == "project" and org == self.org and project == self.project

    def covers_constraint(self, scope: str) -> bool:
        """Whether a constraint on ``scope`` (``global``, ``task:<glob>``, ``schedule:<name>``,
        ``workflow:<name>``, ``trigger:<name>``; unplaced: a placed one is a grant's question,
        :func:`steers`) is within this one."""
        if self.kind == "global":
            return True
        kind, _, glob = scope.partition(":")
        return self.names_constraints and kind == self.kind and glob_within(glob, self.glob or "")


def steers(scopes: Sequence[GrantScope], scope: str) -> bool:
    """Whether a grant over ``scopes`` covers a constraint on ``scope``.

    ``global`` covers every one. Otherwise its ``task:``, ``schedule:``, ``workflow:`` and
    ``trigger:`` scopes say which tasks, schedules, served workflows and triggers it steers,
    and its ``org:`` and ``project:`` scopes where: a grant naming any steers only the
    constraints placed within them (``["org:acme", "task:*"]`` steers ``org:acme/task:etl_*`` and
    ``project:acme/etl/task:*``, never the fleet-wide ``task:etl_*`` nor
    ``org:globex/task:*``); one naming none steers its targets fleet-wide, and so in every
    org and project too."""
    if any(grant.kind == "global" for grant in scopes):
        return True
    parts = split_scope(scope)
    places = [grant for grant in scopes if grant.kind in ("org", "project")]
    if places and (
        parts.org is None or not any(_within(parts.org, parts.project, p) for p in places)
    ):
        return False
    return any(grant.covers_constraint(parts.target) for grant in scopes)


def _within(org: str, project: str | None, place: GrantScope) -> bool:
    """Whether the place ``org`` (and ``project``: ``None``, all of the org's) is ``place``'s."""
    if place.kind == "org":
        return org == place.org
    return org == place.org and project is not None and project == place.project


def parse_scope(text: str) -> GrantScope:
    """The scope ``text`` names; :class:`ScopeError` saying why when it names none."""
    if not isinstance(text, str) or not text:
        raise ScopeError("a scope is a non-empty string")
    if _UNUSABLE.search(text):
        raise ScopeError(f"scope {text!r} holds a control character")
    if text == "global":
        return GrantScope("global")
    kind, sep, rest = text.partition(":")
    if sep and rest:
        if kind == "org" and "/" not in rest:
            return GrantScope("org", org=rest)
        if kind == "project":
            org, slash, project = rest.partition("/")
            if slash and org and project:
                return GrantScope("project", org=org, project=project)
        if kind == "task":
            return GrantScope("task", glob=rest)
        if kind in ("schedule", "workflow", "trigger"):
            return GrantScope(kind, glob=rest)  # type: ignore[arg-type]  # one of the three
    raise ScopeError(
        f"unknown scope {text!r}: give global, org:ORG, project:ORG/PROJECT, task:GLOB, "
        "schedule:GLOB, workflow:GLOB or trigger:GLOB"
    )


def _tokens(glob: str) -> list[str]:
    """``glob`` as fnmatch reads it: ``*``, ``?``, a ``[...]`` set, or one literal character."""
    tokens: list[str] = []
    i = 0
    while i < len(glob):
        char = glob[i]
        if char == "[":
            end = i + 1
            if end < len(glob) and glob[end] == "!":
                end += 1
            if end < len(glob) and glob[end] == "]":
                end += 1
            end = glob.find("]", end)
            if end != -1:
                tokens.append(glob[i : end + 1])
                i = end + 1
                continue
        tokens.append(char)
        i += 1
    return tokens


def _in_set(char: str, token: str) -> bool:
    body = token[1:-1]
    negated = body.startswith("!")
    if negated:
        body = body[1:]
    found = False
    i = 0
    while i < len(body):
        if i + 2 < len(body) and body[i + 1] == "-":
            found = found or body[i] <= char <= body[i + 2]
            i += 3
        else:
            found = found or char == body[i]
            i += 1
    return found != negated


def glob_within(inner: str, outer: str) -> bool:
    """Whether every task name ``inner`` matches (fnmatch, case-sensitive) ``outer`` matches
    too: checked without listing names, and on the safe side (``False`` when unsure).

    ``outer``'s ``*`` may stand for any run of ``inner``'s tokens, wildcards included; its
    ``?`` and sets only for one literal character, so ``a?`` is not within ``a[bc]``.
    """
    a, b = _tokens(inner), _tokens(outer)
    seen: dict[tuple[int, int], bool] = {}

    def within(i: int, j: int) -> bool:
        key = (i, j)
        if key in seen:
            return seen[key]
        if j == len(b):
            result = i == len(a)
        elif b[j] == "*":
            result = within(i, j + 1) or (i < len(a) and within(i + 1, j))
        elif i == len(a):
            result = False
        else:
            token, pattern = a[i], b[j]
            one_char = token != "*"
            literal = len(token) == 1 and token not in "*?"
            if pattern == "?":
                matches = one_char
            elif len(pattern) > 1:  # a set
                matches = token == pattern or (literal and _in_set(token, pattern))
            else:
                matches = token == pattern
            result = matches and within(i + 1, j + 1)
        seen[key] = result
        return result

    return within(0, 0)
