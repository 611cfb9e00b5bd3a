"""The Schedules panel's endpoint: ``GET /api/schedules``, each served schedule once, live from
its servers' announcements (as `cascade schedules` lists them: when it fires, its next slots,
its last slot and the run that slot started, paused by whom, until when and why, the slots
skipped, the servers online), of the orgs and projects the asker may see, each saying whether
the asker may pause and resume it (``steerable``) and on which scope (``scope``: every org's
``schedule:<name>``, or, for an operator whose grant places its ``schedule:`` scopes in an
org or a project, ``org:ORG/schedule:<name>`` or ``project:ORG/PROJECT/schedule:<name>``).
Pausing and resuming go through ``/api/constraints`` on that scope, as every pause does
(``_controls``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from cascade.control.schedules import ScheduleView, schedules_of
from cascade.interfaces.wire import place_scope

from ._controls import Controls

if TYPE_CHECKING:
    from cascade.control.access import Access

__all__ = ["list_schedules"]


def _steering_scope(controls: Controls, access: Access | None, view: ScheduleView) -> str | None:
    """The widest scope on which the asker may pause ``view``'s schedule: every org's, its
    org's, its project's; ``None`` when none."""
    target = f"schedule:{view.name}"
    if access is None:
        return target if controls.tokens is not None else None
    for scope in (
        target,
        place_scope(target, view.org_id),
        place_scope(target, view.org_id, view.project_id),
    ):
        if access.may_steer(scope) is None:
            return scope
    return None


async def list_schedules(controls: Controls, request: Request) -> Response:
    """``GET /api/schedules``: ``{"schedules": [...], "version"}``, each schedule as `cascade
    schedules --json` says it, and ``steerable``."""
    access = controls.team.reader(request.scope) if controls.team is not None else None
    among = access.among() if access is not None else None
    listed = []
    for view in schedules_of(controls.hub.workflows.served(among)):
        entry = view.as_json()
        scope = _steering_scope(controls, access, view)
        entry["steerable"] = scope is not None
        if scope is not None:
            entry["scope"] = scope
        listed.append(entry)
    return JSONResponse({"schedules": listed, "version": controls.hub.workflows.version})
