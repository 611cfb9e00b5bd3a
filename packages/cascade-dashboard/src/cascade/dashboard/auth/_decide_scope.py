"""Who may decide on a held task: an operator of its run's project (``global``, ``org:``,
``project:``), or of a ``task:<glob>`` scope its name matches (as its holder may steer the
constraints of those tasks). The broker cannot tell: the decide topic names the run, not the
task; the dashboard checks it."""

from __future__ import annotations

from collections.abc import Callable
from fnmatch import fnmatchcase

from cascade.control.access import Access, Role

__all__ = ["decidable", "may_decide"]


def may_decide(
    access: Access, org: str | None, project: str | None, task: str | None
) -> str | None:
    """Why ``access`` may not decide on the held task named ``task`` (``None``: its name is not
    known here) of a run of ``org``/``project`` (``None``: not known), or ``None`` when it
    may."""
    scopes = [
        scope for grant in access.grants if grant.role >= Role.OPERATOR for scope in grant.scopes
    ]
    if any(scope.kind == "global" for scope in scopes):
        return None
    if (
        org is not None
        and project is not None
        and any(scope.covers_run(org, project) for scope in scopes)
    ):
        return None
    if task is not None and any(
        scope.kind == "task" and fnmatchcase(task, scope.glob or "") for scope in scopes
    ):
        return None
    who = access.identity.name
    if task is None:
        return (
            f"the task is not known here: deciding on it takes an operator grant over its "
            f"project, which {who} has not"
        )
    where = f"project {org}/{project}" if org is not None and project is not None else "its run"
    return f"{who} is not an operator of {where} nor of a task scope matching {task}"


def decidable(access: Access | None, controls: bool) -> Callable[[str, str, str], bool] | None:
    """What the Decisions list marks as decidable by ``access`` (``None``: not a
    team's dashboard, where ``controls`` says whether the page has controls at all)."""
    if access is None:
        return (lambda org, project, task: True) if controls else None
    if (access.role or 0) < Role.OPERATOR:
        return None
    return lambda org, project, task: may_decide(access, org, project, task) is None
