"""The rerun button's endpoint: ``POST /api/runs/{run_id}/rerun`` (``{"dry_run": true,
"rerun": "failure" | "all" | "from", "from_task": "...", "params": {...}, "reason": "..."}``,
each optional), asked of a process serving the run's workflow as `cascade rerun` asks it (a
:class:`~cascade.control.Start` with ``rerun_of``), to the process that ran it when it serves
the workflow still (it keeps the run's results).

The run is named by its whole id or a unique prefix (as every run address); its workflow is
the one its start named (``origin.workflow``: the live run's, else the history's). Answers:
200 ``{"planned": true, "plan": [...], "plan_count": N, ...}`` for a ``dry_run`` (what would
run, be reused or be forced, and why; nothing started), 200 ``{"run_id": ..., "rerun_of":
..., ...}`` once a rerun started; 400 for a malformed body; 403 outside the asker's scopes
(in a team's dashboard: an operator who may start the workflow where it is served; the
refusal is a row of the access audit); 404 for a run nobody heard of or the asker may not
see, and for a workflow nobody serves now; 409 for a run no served workflow started (a plain
script's), or when the serving process refused (its reason: the run's results not kept
there, a rerun of it live, ...); 504 unanswered; 503 broker or history down. Every rerun and
plan asked in a team's dashboard is a row of the access audit (``rerun`` on ``run:<id>``,
with what came of it), as every start.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from cascade.control import ControlError
from cascade.control.run_ids import short_id
from cascade.reader import RunView

from .._guard import refusal
from ..live._visible_runs import HistoryUnreadable, find_run, recorded_run
from ._controls import Controls
from ._start import ask_start, read_asking

__all__ = ["rerun_run"]


async def rerun_run(controls: Controls, request: Request) -> Response:
    """``POST /api/runs/{run_id}/rerun`` (see the module)."""
    read = await read_asking(
        controls, request, 'send the rerun as application/json: {"dry_run": true}'
    )
    if isinstance(read, Response):
        return read
    caller, among, body = read
    given = request.path_params["run_id"]
    try:
        found = await find_run(controls.hub.model, controls.source.history, given, among)
        if found is None:  # never heard of, or hidden from the asker: the same answer
            return controls.unknown(caller, given, "rerun")
        workflow, ran_on = await _workflow_of(controls, found.run_id)
    except (ControlError, UnicodeError) as exc:
        return refusal(400, str(exc))
    except HistoryUnreadable as exc:
        return refusal(503, str(exc))
    run_id = found.run_id
    if workflow is None:
        return refusal(
            409,
            f"run {short_id(run_id)} was not started by a served workflow (or "
            "its start is known neither live nor to the history): rerun it with "
            "`cascade rerun --entrypoint` or `--workflow NAME`",
        )
    servers = controls.hub.workflows.servers_of(workflow, among)
    # the process that ran it keeps its results: the rerun goes there while it serves it
    on = ran_on if any(s.online and s.announcement.source == ran_on for s in servers) else None
    return await ask_start(
        controls,
        request,
        caller,
        among,
        body,
        f"run:{run_id}",
        action="rerun",
        workflow=workflow,
        rerun_of=run_id,
        on=on,
        org=found.org_id,
        project=found.project_id,
    )


async def _workflow_of(controls: Controls, run_id: str) -> tuple[str | None, str | None]:
    """The served workflow the run ran and the source that ran it: as its live start said,
    else as the history recorded it."""
    heard = controls.hub.model.open_run(run_id)
    if isinstance(heard, RunView) and heard.origin is not None and heard.origin.workflow:
        return heard.origin.workflow, heard.source
    recorded = await recorded_run(controls.source.history, run_id)
    if recorded is not None and recorded.workflow:
        return recorded.workflow, recorded.source
    return None, heard.source if heard is not None else None
