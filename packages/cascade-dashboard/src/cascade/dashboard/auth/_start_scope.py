"""Who may start a served workflow: an operator of the project of every online process that
serves it (``global``, its ``org:``, its ``project:``), since the broker may give the request
to any of them (a shared subscription)."""

from __future__ import annotations

from collections.abc import Sequence

from cascade.control import Served
from cascade.control.access import Access, Role

__all__ = ["may_start"]


def may_start(access: Access, workflow: str, servers: Sequence[Served]) -> str | None:
    """Why ``access`` may not start ``workflow`` on ``servers`` (its online ones), or
    ``None`` when it may."""
    scopes = [
        scope for grant in access.grants if grant.role >= Role.OPERATOR for scope in grant.scopes
    ]
    for served in servers:
        org, project = served.announcement.org_id, served.announcement.project_id
        if not any(scope.covers_run(org, project) for scope in scopes):
            return (
                f"{access.identity.name} is not an operator of project {org}/{project}, "
                f"where {served.source} serves {workflow}"
            )
    return None
