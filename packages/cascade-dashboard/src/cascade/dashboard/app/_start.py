"""The start form's endpoints: ``GET /api/workflows`` (the served workflows, each with who
serves it and whether the asker may start it, and the triggers that start it, each saying
whether the asker may pause and resume it, ``steerable``, and on which scope, ``scope``: as
``GET /api/schedules`` says it of a schedule, ``trigger:<name>`` or that placed in the org or
the project of the server that lists it) and ``POST /api/workflows/{name}/start``
(``{"params": {...}, "reason": "...", "on": "SOURCE", "org": "...", "project": "..."}``, each
optional), asked of a process serving it as `cascade start` asks (a
:class:`~cascade.control.Start` the :class:`~cascade.control.Controller` sends). A start's
topic names one org and project: those given, else the one place where the processes serving
it that the asker may see are; processes of several places and none named is a 409 naming
them.

Answers of a start: 200 with the serving process's answer (``run_id``, ``name``, ``queued``,
``source``); 400 for a malformed body or param (the CLI's words); 403 outside the asker's
scopes (in a team's dashboard, an operator of the project of every online process serving it:
the broker may give the request to any of them); 404 when nobody serves it (or none the
asker may see); 409 when the serving process refused it (its reason: a param it does not
take, busy, ...); 504 when none answered in time; 503 when the broker did not take the
request. In a team's dashboard each start that reached a serving process is a row of the
access audit (``start`` on ``workflow:<name>``, and what came of it), which vouches for the
history's ``start`` row of the run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from cascade.control import (
    ControlError,
    NobodyServesError,
    ServedInManyPlacesError,
    Start,
    StartTimeoutError,
    read_request,
)
from cascade.control.access import Role
from cascade.interfaces import ConnectorError

from .._guard import Refused, json_body, refusal
from ..auth._start_scope import may_start
from ._controls import Controls

if TYPE_CHECKING:
    from cascade.control.access import Access, Among
    from cascade.interfaces.serving import StartReply

__all__ = ["ask_start", "list_workflows", "read_asking", "send_start", "start_workflow"]

# what a start's body may not give: a rerun is the CLI's (`cascade rerun`)
_NO_RERUN: dict[str, Any] = {
    "rerun_of": None,
    "rerun": "failure",
    "from_task": None,
    "dry_run": False,
}


def _startable(controls: Controls, access: Access | None, name: str) -> bool:
    if access is None:
        return controls.tokens is not None
    if (access.role or 0) < Role.OPERATOR:
        return False
    servers = [s for s in controls.hub.workflows.servers_of(name, access.among()) if s.online]
    return may_start(access, name, servers) is None


async def list_workflows(controls: Controls, request: Request) -> Response:
    """``GET /api/workflows``: what is served, by name (see the module)."""
    access = controls.team.reader(request.scope) if controls.team is not None else None
    among = access.among() if access is not None else None
    listed = controls.hub.workflows.listed(among)
    for entry in listed:
        entry["startable"] = _startable(controls, access, entry["name"])
        for trigger in entry["triggers"]:
            target = f"trigger:{trigger['name']}"
            scope = controls.steering_scope(
                access, target, trigger["org_id"], trigger["project_id"]
            )
            trigger["steerable"] = scope is not None
            if scope is not None:
                trigger["scope"] = scope
    return JSONResponse({"workflows": listed, "version": controls.hub.workflows.version})


async def start_workflow(controls: Controls, request: Request) -> Response:
    """``POST /api/workflows/{name}/start`` (see the module)."""
    read = await read_asking(
        controls, request, 'send the start as application/json: {"params": {...}}'
    )
    if isinstance(read, Response):
        return read
    caller, among, body = read
    name = request.path_params["name"]
    return await ask_start(
        controls, request, caller, among, body, f"workflow:{name}", workflow=name, **_NO_RERUN
    )


async def read_asking(
    controls: Controls, request: Request, not_json: str
) -> Response | tuple[str | Access, Among | None, Any]:
    """Who asks a start or a rerun, what they may see (``None``: all) and the body they sent
    (``None``: none), else the refusal of a body that is not JSON (415 says ``not_json``)."""
    caller = controls.caller(request)
    try:
        body = await json_body(request, controls.max_body, not_json, optional=True)
    except Refused as refused:
        return refusal(refused.status, refused.message)
    return caller, caller.among() if not isinstance(caller, str) else None, body


async def ask_start(
    controls: Controls,
    request: Request,
    caller: str | Access,
    among: Among | None,
    body: Any,
    target: str,
    *,
    action: str = "start",
    **fixed: Any,
) -> Response:
    """The answer to a start or a rerun (``action``) asked with ``body``: read as a
    :class:`~cascade.control.Start` whose ``fixed`` fields the endpoint sets (400 for a
    malformed one), sent (:func:`send_start`), and what came of it answered and audited on
    ``target``: the plan of a dry run, else the run started."""
    try:
        asked = read_request(Start, body, **fixed)
    except (ControlError, UnicodeError) as exc:
        return refusal(400, str(exc))
    sent = await send_start(controls, request, caller, asked, among, target, action)
    if isinstance(sent, Response):
        return sent
    reply, answer = sent
    if reply.outcome == "planned":
        controls.audited(caller, action, target, f"planned on {reply.source} (dry run)")
        return JSONResponse(_planned(reply.plan_count, answer))
    controls.audited(caller, action, target, f"started run {reply.run_id} on {reply.source}")
    rerun = {"rerun_of": reply.rerun_of} if asked.rerun_of is not None else {}
    return JSONResponse(
        {
            "run_id": reply.run_id,
            "name": reply.name,
            **rerun,
            "queued": reply.queued,
            "source": reply.source,
            "reply": answer,
        }
    )


def _planned(plan_count: int, answer: dict[str, Any]) -> dict[str, Any]:
    return {
        "planned": True,
        "workflow": answer.get("workflow"),
        "source": answer.get("source"),
        "rerun_of": answer.get("rerun_of"),
        "plan": answer.get("plan", []),
        "plan_count": plan_count,
        "reply": answer,
    }


async def send_start(
    controls: Controls,
    request: Request,
    caller: str | Access,
    asked: Start,
    among: Among | None,
    target: str,
    action: str = "start",
) -> Response | tuple[StartReply, dict[str, Any]]:
    """Send ``asked`` (a start, or a rerun: ``action``) to a process serving its workflow
    that the asker may see, once the asker may start it there: the serving process's answer
    (and as JSON), else the refusal to answer with (audited, as the start's answers above)."""
    name = asked.workflow
    org, project = asked.org, asked.project
    servers = [
        s
        for s in controls.hub.workflows.servers_of(name, among)
        if s.online
        and org in (None, s.announcement.org_id)
        and project in (None, s.announcement.project_id)
    ]
    places = {(s.announcement.org_id, s.announcement.project_id) for s in servers}
    if len(places) == 1:  # the one place the asker sees it served: the start goes there
        ((org, project),) = places
    if not servers:
        return refusal(404, f"nobody serves {name} (cascade served lists who serves what)")
    holder = controls.checked(
        request, caller, action, target, lambda a: may_start(a, name, servers)
    )
    try:
        placed = msgspec.structs.replace(asked, org=org, project=project)
        reply = await controls.hub.controller(holder).send(placed)
    except (ControlError, UnicodeError) as exc:
        return refusal(400, str(exc))
    except NobodyServesError as exc:
        return refusal(404, str(exc))
    except ServedInManyPlacesError as exc:
        return refusal(409, str(exc))
    except StartTimeoutError as exc:
        controls.audited(caller, action, target, f"unanswered: {exc}")
        return refusal(504, str(exc))
    except ConnectorError as exc:
        return refusal(503, str(exc))
    answer = msgspec.to_builtins(reply)
    if reply.outcome == "refused":
        controls.audited(caller, action, target, f"refused by {reply.source}: {reply.error}")
        return JSONResponse({"error": reply.error, "reply": answer}, status_code=409)
    return reply, answer
