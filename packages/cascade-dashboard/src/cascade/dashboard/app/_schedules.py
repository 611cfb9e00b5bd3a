"""The Schedules panel's endpoint: ``GET /api/schedules``, each served schedule once, live from
its servers' announcements (as `cascade schedules` lists them: when it fires, its next slots,
its last slot and the run that slot started, paused by whom, until when and why, the slots
skipped, the servers online), of the orgs and projects the asker may see, each saying whether
the asker may pause and resume it (``steerable``). Pausing and resuming go through
``/api/constraints`` on the scope ``schedule:<name>``, as every pause does (``_controls``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from cascade.control.schedules import schedules_of

from ._controls import Controls

if TYPE_CHECKING:
    from cascade.control.access import Access

__all__ = ["list_schedules"]


def _steerable(controls: Controls, access: Access | None, name: str) -> bool:
    if access is None:
        return controls.tokens is not None
    return access.may_steer(f"schedule:{name}") is None


async def list_schedules(controls: Controls, request: Request) -> Response:
    """``GET /api/schedules``: ``{"schedules": [...], "version"}``, each schedule as `cascade
    schedules --json` says it, and ``steerable``."""
    access = controls.team.reader(request.scope) if controls.team is not None else None
    among = access.among() if access is not None else None
    listed = []
    for view in schedules_of(controls.hub.workflows.served(among)):
        entry = view.as_json()
        entry["steerable"] = _steerable(controls, access, view.name)
        listed.append(entry)
    return JSONResponse({"schedules": listed, "version": controls.hub.workflows.version})
