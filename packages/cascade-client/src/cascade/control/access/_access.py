"""What one identity may do: the grants of the roles file that name it, asked per action."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ._identity import Identity
from ._roles import Grant, Role, Roles

__all__ = ["Access", "Among"]

Among = frozenset[tuple[str, "str | None"]]
"""The orgs (``(org, None)``) and projects (``(org, project)``) someone may see."""


@dataclass(frozen=True)
class Access:
    """``identity``'s rights: the union of its ``grants``. Each ``may_*`` answers ``None``
    when allowed, else the reason of the refusal, in one line a 403 can say."""

    identity: Identity
    grants: tuple[Grant, ...]

    @classmethod
    def of(cls, roles: Roles, identity: Identity) -> Access:
        """The access the roles file gives ``identity``."""
        return cls(identity, roles.of(identity))

    def _scopes(self, role: Role) -> list[Any]:
        return [scope for grant in self.grants if grant.role >= role for scope in grant.scopes]

    @property
    def sees_everything(self) -> bool:
        """Whether a grant of it is over ``global`` (it sees every org's runs)."""
        return any(scope.kind == "global" for scope in self._scopes(Role.VIEWER))

    def sees(self, org: str, project: str) -> bool:
        """Whether it may see the runs of ``org``/``project`` (their tasks, logs, history)."""
        return any(scope.covers_run(org, project) for scope in self._scopes(Role.VIEWER))

    def among(self) -> Among | None:
        """The orgs and projects it may see, ``None`` when it sees every one (``global``)."""
        if self.sees_everything:
            return None
        return frozenset(
            (scope.org, scope.project)
            for scope in self._scopes(Role.VIEWER)
            if scope.kind in ("org", "project")
        )

    def may_cancel(self, org: str | None, project: str | None) -> str | None:
        """Why it may not cancel a run of ``org``/``project``, or ``None``. A run whose project
        is not known (``None``) takes an operator grant over ``global``."""
        scopes = self._scopes(Role.OPERATOR)
        if org is None or project is None:
            if any(scope.kind == "global" for scope in scopes):
                return None
            return (
                f"the run's project is not known here: cancelling it takes an operator grant "
                f"over global, which {self._who()} has not"
            )
        if any(scope.covers_run(org, project) for scope in scopes):
            return None
        return f"{self._who()} is not an operator of project {org}/{project}"

    def may_see_everything(self, what: str) -> str | None:
        """Why it may not read ``what`` (which covers every org), or ``None``."""
        if self.sees_everything:
            return None
        return f"{what} cover every project: {self._who()} needs a grant over global"

    def may_steer(self, scope: str) -> str | None:
        """Why it may not set or clear a constraint on ``scope``, or ``None``."""
        grants = [grant for grant in self.grants if grant.role >= Role.OPERATOR]
        if any(grant.covers_constraint(scope) for grant in grants):
            return None
        return f"{self._who()} is not an operator of scope {scope}"

    def may_administer(self) -> str | None:
        """Why it may not manage API tokens (that takes ``admin`` over ``global``), or ``None``."""
        if any(scope.kind == "global" for scope in self._scopes(Role.ADMIN)):
            return None
        return f"{self._who()} is not an admin over global"

    @property
    def role(self) -> Role | None:
        """Its highest role, ``None`` when no grant names it."""
        return max((grant.role for grant in self.grants), default=None)

    def _who(self) -> str:
        return self.identity.name

    def describe(self) -> dict[str, Any]:
        """Who it is and its grants, as JSON (the dashboard's ``/api/me``)."""
        return {
            "name": self.identity.name,
            "via": self.identity.via,
            "groups": sorted(self.identity.groups),
            "role": str(self.role) if self.role else None,
            "grants": [
                {"role": str(grant.role), "scopes": [str(s) for s in grant.scopes]}
                for grant in self.grants
            ],
        }
