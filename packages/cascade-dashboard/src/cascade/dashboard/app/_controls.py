"""The dashboard's controls: pause, limit and resume (``/api/constraints``), cancel
(``/api/runs/{run_id}/cancel``), decisions on held tasks (``_decide``) and starts of served
workflows (``_start``), for a token's
holder, or in a team's dashboard for whoever the roles file lets do that control on that
scope or run (``_team``). :class:`Controls` says who asks and whether they may, and audits
what they did: ``_decide`` and ``_start`` answer their requests with it."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import msgspec
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from cascade.control import Cancel, ControlError, Resume, read_request
from cascade.interfaces import ConnectorError
from cascade.interfaces.wire import place_scope

from .._guard import AccessRefused, Refused, Tokens, json_body, refusal
from .._history_source import HistorySource
from ..auth._team import Team
from ..live._hub import DashboardHub
from ..live._visible_runs import HistoryUnreadable, find_run, unknown_run
from ._control_bodies import constraint_request

if TYPE_CHECKING:
    from cascade.control.access import Access

__all__ = ["MAX_BODY", "Controls"]

MAX_BODY = 16 * 1024
"""The largest control request body accepted, in bytes."""
_BEARER = {"WWW-Authenticate": "Bearer"}


class Controls:
    """The control handlers of one dashboard app, around its hub, its tokens and its team."""

    def __init__(
        self,
        hub: DashboardHub,
        tokens: Tokens | None,
        history: HistorySource,
        team: Team | None = None,
    ) -> None:
        self.hub = hub
        self.tokens = tokens
        self.source = history
        self.team = team
        self.max_body = MAX_BODY

    def authorized(self, request: Request) -> str:
        """The name of the request's token (its controls are issued by it); else
        :class:`~._guard.AccessRefused` (401)."""
        if self.tokens is None:
            raise AccessRefused(
                401,
                "read-only dashboard: start it with --token to enable controls",
                headers=_BEARER,
            )
        name = self.tokens.holder(request.scope)
        if name is None:
            raise AccessRefused(401, "missing or wrong bearer token", headers=_BEARER)
        return name

    def caller(self, request: Request) -> str | Access:
        """Who a control request comes from: the name of its token, or in a team's dashboard
        the access of whoever signed in (a role is checked per control); else the refusal is
        raised."""
        if self.team is not None:
            return self.team.reader(request.scope, "control")
        return self.authorized(request)

    def checked(
        self,
        request: Request,
        caller: str | Access,
        action: str,
        target: str,
        check: Callable[[Access], str | None],
    ) -> str:
        """The name the control is issued by, once the team's roles allow it (else the
        refusal, audited, is raised)."""
        if isinstance(caller, str):
            return caller
        assert self.team is not None
        return self.team.control(request.scope, action, target, check, caller).identity.name

    def steering_scope(
        self, access: Access | None, target: str, org: str, project: str
    ) -> str | None:
        """The widest scope on which the asker (``access``; ``None``: the token's holder, if
        the dashboard has tokens) may pause and resume ``target`` (``schedule:<name>``,
        ``trigger:<name>``) of ``org``/``project``: every org's (``target``), its org's, its
        project's; ``None`` when none. The page's Pause and Resume go through
        ``/api/constraints`` on that scope."""
        if access is None:
            return target if self.tokens is not None else None
        for scope in (target, place_scope(target, org), place_scope(target, org, project)):
            if access.may_steer(scope) is None:
                return scope
        return None

    def unknown(self, caller: str | Access, given: str, action: str = "cancel") -> Response:
        """The 404 of a cancel (or a decision, ``action``) on a run nobody heard of or the
        asker may not see (audited in a team's dashboard, as every refused control: the same
        row for both)."""
        if self.team is not None and not isinstance(caller, str):
            self.team.audit.add(
                caller.identity,
                action,
                f"run:{given.strip().lower()}",
                "refused",
                "no such run among those they may see",
            )
        return unknown_run(given, team=self.team is not None)

    def audited(
        self, caller: str | Access, action: str, target: str, said: str | None = None
    ) -> None:
        """Audit a control done by a team member (``said``: what came of it)."""
        if self.team is not None and not isinstance(caller, str):
            self.team.done(caller, action, target, said)

    async def post_constraints(self, request: Request) -> Response:
        caller = self.caller(request)
        try:
            body = await json_body(request, MAX_BODY, "send the constraint as application/json")
        except Refused as refused:
            return refusal(refused.status, refused.message)
        name = caller if isinstance(caller, str) else caller.identity.name
        try:  # read once, refused as the CLI would, before any check
            kind, asked = constraint_request(body)
        except (ControlError, UnicodeError) as exc:
            return refusal(400, str(exc))
        scope = asked.scope
        self.checked(request, caller, kind, scope, lambda a: a.may_steer(scope))
        try:
            steered = await self.hub.controller(name).send(asked)
        except (ControlError, UnicodeError) as exc:
            return refusal(400, str(exc))
        except ConnectorError as exc:
            return refusal(503, str(exc))
        self.audited(caller, kind, scope)
        published = [
            {"topic": topic, "id": c.id, "type": c.type} for topic, c in steered.constraints
        ]
        return JSONResponse({"published": published})

    async def delete_constraints(self, request: Request) -> Response:
        caller = self.caller(request)
        scope = request.query_params.get("scope")
        if scope is None:
            return refusal(400, "give ?scope=global or ?scope=task:<glob>")
        try:
            asked = read_request(Resume, {"scope": scope, "type": request.query_params.get("type")})
        except (ControlError, UnicodeError) as exc:
            return refusal(400, str(exc))
        holder = self.checked(request, caller, "resume", scope, lambda a: a.may_steer(scope))
        try:
            cleared = list((await self.hub.controller(holder).send(asked)).topics)
        except (ControlError, UnicodeError) as exc:
            return refusal(400, str(exc))
        except ConnectorError as exc:
            return refusal(503, str(exc))
        self.audited(caller, "resume", scope)
        return JSONResponse({"cleared": cleared})

    async def cancel_run(self, request: Request) -> Response:
        caller = self.caller(request)
        try:
            body = await json_body(
                request, MAX_BODY, "send the reason as application/json", optional=True
            )
        except Refused as refused:
            return refusal(refused.status, refused.message)
        given = request.path_params["run_id"]
        among = caller.among() if not isinstance(caller, str) else None
        try:
            found = await find_run(self.hub.model, self.source.history, given, among)
            if found is None:  # never heard of, or hidden from the asker: the same answer
                return self.unknown(caller, given)
            run_id, org_id, project_id = found.run_id, found.org_id, found.project_id
            holder = self.checked(
                request,
                caller,
                "cancel",
                f"run:{run_id}",
                lambda a: a.may_cancel(org_id, project_id),
            )
            asked = read_request(Cancel, body, run_id=run_id, org=org_id, project=project_id)
            run = self.hub.run(run_id, holder, found.owner, org_id, project_id)
            answer = await run.cancel(reason=asked.reason)
        except (ControlError, UnicodeError) as exc:
            return refusal(400, str(exc))
        except (HistoryUnreadable, ConnectorError) as exc:
            return refusal(503, str(exc))
        if answer.reply is None:
            return refusal(504, answer.unanswered(self.hub.timeout))
        reply = answer.reply
        self.audited(caller, "cancel", f"run:{run_id}")
        return JSONResponse(
            {
                "cancelled": msgspec.to_builtins(reply),
                "said": answer.describe(),
                "refused": answer.refused,
            }
        )
