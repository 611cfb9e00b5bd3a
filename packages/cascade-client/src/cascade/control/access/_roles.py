"""The roles file: who is a ``viewer``, an ``operator`` or an ``admin``, over which scopes.

A TOML file of grants, each naming its role, its scopes and who holds it::

    [[grant]]
    role = "operator"                      # viewer, operator or admin
    scopes = ["project:acme/etl", "task:etl_*", "schedule:nightly"]
    people = ["alice@example.com"]         # names a sign-in gives (see Identity)
    groups = ["data-eng"]                  # groups a sign-in gives
    broker_users = ["alice"]               # MQTT logins (`cascade acl` writes their rights)

A person's rights are every grant that names them, one of their groups or (for a broker
login) their login. Anything else in the file (a key, a role, a scope of another kind) is
an error that names the grant, not a right silently lost or given.

The broker's other logins, for `cascade acl`, are in an optional ``[broker]`` table::

    [broker]
    engines = ["engine-1", "engine-2"]     # each engine's login, its source_id
    recorders = ["recorder"]               # `cascade record`: reads everything
    dashboards = ["dashboard"]             # steers for the people signed in to it
    notifiers = ["notifier"]               # `cascade notify`: reads runs and statuses only

``engines`` as a list serve every org; as a table, each key a scope (``global``,
``org:ORG``, ``project:ORG/PROJECT``) and its value the logins of that scope's engines, so
that `cascade acl` lets them serve, announce and take commands in that scope only::

    [broker.engines]
    "org:acme" = ["acme-engine-1"]
    "project:globex/web" = ["globex-web-1"]
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import Any

from cascade.interfaces import CascadeError

from ._identity import Identity
from ._scopes import GrantScope, ScopeError, parse_scope, steers

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]

__all__ = ["BrokerLogins", "Grant", "Role", "Roles", "RolesError"]

_KEYS = frozenset({"role", "scopes", "people", "groups", "broker_users"})
_WHO = ("people", "groups", "broker_users")
_SERVICES = ("engines", "recorders", "dashboards", "notifiers")


class RolesError(CascadeError, ValueError):
    """A roles file that cannot be read or says something this version does not know."""


class Role(IntEnum):
    """What a grant lets its holders do within its scopes; each can do what those below can.

    ``viewer`` sees runs, tasks, logs and the history; ``operator`` also pauses, limits,
    resumes and cancels (and pauses and resumes the schedules, served workflows and triggers
    of its ``schedule:``, ``workflow:`` and ``trigger:`` scopes);
    ``admin`` also creates and revokes API tokens (over ``global``).
    """

    VIEWER = 1
    OPERATOR = 2
    ADMIN = 3

    def __str__(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class Grant:
    """One ``[[grant]]``: a role over scopes, for people, groups and broker logins."""

    role: Role
    scopes: tuple[GrantScope, ...]
    people: frozenset[str] = frozenset()
    """Compared without case (e-mail addresses are)."""
    groups: frozenset[str] = frozenset()
    broker_users: frozenset[str] = frozenset()

    def covers_constraint(self, scope: str) -> bool:
        """Whether this grant's scopes cover a constraint on ``scope``
        (its ``task:``, ``schedule:``, ``workflow:`` and ``trigger:`` scopes
        within its ``org:`` and ``project:`` ones)."""
        return steers(self.scopes, scope)

    def names(self, identity: Identity) -> bool:
        """Whether this grant is ``identity``'s."""
        if identity.via == "broker":
            return identity.name in self.broker_users
        return identity.name.casefold() in self.people or not self.groups.isdisjoint(
            identity.groups
        )


@dataclass(frozen=True)
class BrokerLogins:
    """The ``[broker]`` table: the logins of engines, recorders, dashboards and notifiers,
    and each engine's scopes (``global`` for an engine of the plain list)."""

    engines: tuple[str, ...] = ()
    recorders: tuple[str, ...] = ()
    dashboards: tuple[str, ...] = ()
    notifiers: tuple[str, ...] = ()
    engine_scopes: Mapping[str, tuple[GrantScope, ...]] = field(default_factory=dict)

    def scopes_of(self, engine: str) -> tuple[GrantScope, ...]:
        """The scopes the engine login ``engine`` serves and takes commands in."""
        return self.engine_scopes.get(engine, (GrantScope("global"),))


@dataclass(frozen=True)
class Roles:
    """Every grant of a roles file, and its broker's other logins."""

    grants: tuple[Grant, ...]
    broker: BrokerLogins = BrokerLogins()

    @classmethod
    def load(cls, path: str | Path) -> Roles:
        """The roles in the TOML file at ``path``; :class:`RolesError` saying what is wrong."""
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise RolesError(f"cannot read the roles file {path}: {exc}") from None
        return cls.parse(text, str(path))

    @classmethod
    def parse(cls, text: str, name: str = "the roles file") -> Roles:
        """The roles in ``text`` (TOML); :class:`RolesError` naming ``name`` and the grant."""
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise RolesError(f"{name} is not TOML: {exc}") from None
        unknown = set(data) - {"grant", "broker"}
        if unknown:
            raise RolesError(f"{name}: unknown key {sorted(unknown)[0]!r} (grants are [[grant]])")
        grants = data.get("grant", [])
        if not isinstance(grants, list):
            raise RolesError(f"{name}: grant must be an array of tables ([[grant]])")
        return cls(
            tuple(_grant(raw, f"{name}, grant {i}") for i, raw in enumerate(grants, 1)),
            _broker(data.get("broker", {}), f"{name}, [broker]"),
        )

    def of(self, identity: Identity) -> tuple[Grant, ...]:
        """The grants ``identity`` holds."""
        return tuple(grant for grant in self.grants if grant.names(identity))

    def broker_users(self) -> list[str]:
        """Every broker login a grant names, sorted."""
        return sorted({user for grant in self.grants for user in grant.broker_users})


def _strings(raw: dict[str, Any], key: str, where: str) -> list[str]:
    value = raw.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise RolesError(f"{where}: {key} must be a list of non-empty strings")
    return value


def _broker(raw: Any, where: str) -> BrokerLogins:
    if not isinstance(raw, dict):
        raise RolesError(f"{where} is not a table")
    unknown = set(raw) - set(_SERVICES)
    if unknown:
        raise RolesError(f"{where}: unknown key {sorted(unknown)[0]!r} (keys: {list(_SERVICES)})")
    recorders, dashboards, notifiers = (tuple(_strings(raw, key, where)) for key in _SERVICES[1:])
    engines = raw.get("engines", [])
    if not isinstance(engines, dict):
        engine_logins = tuple(_strings(raw, "engines", where))
        return BrokerLogins(engine_logins, recorders, dashboards, notifiers)
    scopes: dict[str, list[GrantScope]] = {}
    for text in engines:
        try:
            scope = parse_scope(text)
        except ScopeError as exc:
            raise RolesError(f"{where}, engines: {exc}") from None
        if scope.names_constraints:
            raise RolesError(
                f"{where}, engines: {text!r} is a {scope.kind} scope; an engine serves a global, "
                "org: or project: scope"
            )
        for login in _strings(engines, text, f"{where}, engines"):
            scopes.setdefault(login, []).append(scope)
    return BrokerLogins(
        tuple(scopes),
        recorders,
        dashboards,
        notifiers,
        engine_scopes={login: tuple(found) for login, found in scopes.items()},
    )


def _grant(raw: Any, where: str) -> Grant:
    if not isinstance(raw, dict):
        raise RolesError(f"{where} is not a table")
    unknown = set(raw) - _KEYS
    if unknown:
        raise RolesError(f"{where}: unknown key {sorted(unknown)[0]!r} (keys: {sorted(_KEYS)})")
    role_name = raw.get("role")
    try:
        role = Role[str(role_name).upper()]
    except KeyError:
        raise RolesError(f"{where}: role {role_name!r} is not viewer, operator or admin") from None
    try:
        scopes = tuple(parse_scope(text) for text in _strings(raw, "scopes", where))
    except ScopeError as exc:
        raise RolesError(f"{where}: {exc}") from None
    if not scopes:
        raise RolesError(f'{where}: no scopes (give e.g. scopes = ["project:acme/etl"])')
    who = {key: _strings(raw, key, where) for key in _WHO}
    if not any(who.values()):
        raise RolesError(f"{where}: names no one (give people, groups or broker_users)")
    return Grant(
        role,
        scopes,
        people=frozenset(name.casefold() for name in who["people"]),
        groups=frozenset(who["groups"]),
        broker_users=frozenset(who["broker_users"]),
    )
