"""The Schedules panel's endpoint: ``GET /api/schedules``, each served schedule once, live from
its servers' announcements (as `cascade schedules` lists them: when it fires, its next slots,
its last slot and the run that slot started, paused by whom, until when and why, the slots
skipped, the servers online), of the orgs and projects the asker may see, each saying whether
the asker may pause and resume it (``steerable``) and on which scope (``scope``: every org's
``schedule:<name>``, or, for an operator whose grant places its ``schedule:`` scopes in an
org or a project, ``org:ORG/schedule:<name>`` or ``project:ORG/PROJECT/schedule:<name>``).
Pausing and resuming go through ``/api/constraints`` on that scope, as every pause does
(``_controls``: :meth:`~._controls.Controls.steering_scope`)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from cascade.control.schedules import schedules_of

from ._controls import Controls

__all__ = ["list_schedules"]


async def list_schedules(controls: Controls, request: Request) -> Response:
    """``GET /api/schedules``: ``{"schedules": [...], "version"}``, each schedule as `cascade
    schedules --json` says it, and ``steerable``."""
    access = controls.team.reader(request.scope) if controls.team is not None else None
    among = access.among() if access is not None else None
    listed = []
    for view in schedules_of(controls.hub.workflows.served(among)):
        entry = view.as_json()
        scope = controls.steering_scope(
            access, f"schedule:{view.name}", view.org_id, view.project_id
        )
        entry["steerable"] = scope is not None
        if scope is not None:
            entry["scope"] = scope
        listed.append(entry)
    return JSONResponse({"schedules": listed, "version": controls.hub.workflows.version})
