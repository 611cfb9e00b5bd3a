"""``POST /api/runs/{run_id}/tasks/{task}/decide``: a decision on a held task (retry, skip,
complete or fail), asked of the run's engine as `cascade retry` asks it.

Answers: 200 with the engine's answer when it applied the decision; 409 when it refused it
(the hold was decided before: by whom, when, why; the task is not held; another attempt is
held ...), and at once, without asking, for a run lost with its engine (``lost``; where it
went when a server carried it on: ``carried_on_as``, ``carried_on_by`` and ``link``, the
carry-on's page, whose holds are the ones to decide now); 504 when no engine answered; 403
outside the asker's scopes (in a team's dashboard, an operator of the run's project, or of a
``task:<glob>`` the task's name matches); 404 for a run nobody heard of or the asker may not
see, as a cancel's. In a team's dashboard every decision that reached the engine is a row of
the access audit (who, the decision, ``run:<id>/task:<id>/attempt:<n>``, its outcome and the
reason given), as every refusal is.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import msgspec
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from cascade.control import ControlError, Decide, DecisionAnswer, read_request
from cascade.interfaces import ConnectorError

from .._guard import Refused, json_body, refusal
from ..auth._decide_scope import may_decide
from ..live._visible_runs import HistoryUnreadable, find_run
from ._controls import Controls

__all__ = ["decide_task", "decision_target"]


def decision_target(run_id: str, task: str, attempt: int | None) -> str:
    """``run:<id>/task:<task>/attempt:<n>``: what a decision is on, as the audit names it
    (the history's answers name it alike: the dashboard's row vouches for the engine's)."""
    target = f"run:{run_id}/task:{task}"
    return target if attempt is None else f"{target}/attempt:{attempt}"


def _task_name(controls: Controls, run_id: str, task: str) -> str | None:
    """The name of the task ``task`` (an id, or a name) of the live run, ``None`` when this
    dashboard does not know it."""
    run = controls.hub.model.state.runs.get(run_id)
    if run is None:
        return None
    found = run.tasks.get(task)
    if found is not None:
        return found.name
    return task if any(view.name == task for view in run.tasks.values()) else None


def _outcome(answer: DecisionAnswer, timeout: float, reason: str | None) -> str:
    """What the audit row says came of it, and the reason given."""
    if answer.reply is None:
        said = answer.unanswered(timeout)
    elif answer.applied:
        said = "applied"
    else:
        said = f"refused by the engine ({answer.reply.outcome}): {answer.describe()}"
    return said if reason is None else f"{said}; reason given: {reason}"


def _answer_json(answer: DecisionAnswer) -> dict[str, Any]:
    return {
        "decided": msgspec.to_builtins(answer.reply),
        "said": answer.describe(),
        "refused": answer.refused,
    }


def _lost_run(controls: Controls, run_id: str) -> dict[str, Any] | None:
    """The answer to a decision on a task of ``run_id`` when the live view holds it lost with
    its engine (nobody runs it to decide: its engine is offline), else ``None``."""
    run = controls.hub.model.state.runs.get(run_id)
    if run is None or not run.lost:
        return None
    said = f"run {run_id} was lost with its engine {run.source} (it went offline)"
    carried = run.carried_on_as
    if carried is None:
        said += ": no server carried it on (yet); rerun it to go on"
    else:
        said += f": carried on as {carried} at {run.carried_on_by}; decide there"
    return {
        "error": said,
        "lost": True,
        "lost_engine": run.source,
        "carried_on_as": carried,
        "carried_on_by": run.carried_on_by,
        "link": None if carried is None else f"/runs/{quote(carried, safe='')}",
    }


async def decide_task(controls: Controls, request: Request) -> Response:
    """The handler (see the module)."""
    caller = controls.caller(request)
    try:
        body = await json_body(
            request,
            controls.max_body,
            'send the decision as application/json: {"decision": "retry", ...}',
        )
    except Refused as refused:
        return refusal(refused.status, refused.message)
    given, task = request.path_params["run_id"], request.path_params["task"]
    among = caller.among() if not isinstance(caller, str) else None
    try:
        asked = read_request(Decide, body, run_id=given, task=task, org=None, project=None)
        found = await find_run(controls.hub.model, controls.source.history, given, among)
        if found is None:  # never heard of, or hidden from the asker: the same answer
            return controls.unknown(caller, given, asked.decision)
        run_id, org_id, project_id = found.run_id, found.org_id, found.project_id
        name = _task_name(controls, run_id, task)
        target = decision_target(run_id, task, asked.attempt)
        holder = controls.checked(
            request,
            caller,
            asked.decision,
            target,
            lambda a: may_decide(a, org_id, project_id, name),
        )
        lost = _lost_run(controls, run_id)
        if lost is not None:
            controls.audited(caller, asked.decision, target, f"refused: {lost['error']}")
            return JSONResponse(lost, status_code=409)
        run = controls.hub.run(run_id, holder, found.owner, org_id, project_id)
        answer = await run.decide(
            asked.task,
            asked.decision,
            attempt=asked.attempt,
            result=asked.result,
            reason=asked.reason,
        )
    except (ControlError, UnicodeError) as exc:
        return refusal(400, str(exc))
    except (HistoryUnreadable, ConnectorError) as exc:
        return refusal(503, str(exc))
    reply = answer.reply
    if reply is not None:
        target = decision_target(run_id, reply.task_id or task, reply.attempt or asked.attempt)
    controls.audited(
        caller, asked.decision, target, _outcome(answer, controls.hub.timeout, asked.reason)
    )
    if reply is None:
        return refusal(504, answer.unanswered(controls.hub.timeout))
    if not answer.applied:
        return JSONResponse({"error": answer.describe(), **_answer_json(answer)}, status_code=409)
    return JSONResponse(_answer_json(answer))
