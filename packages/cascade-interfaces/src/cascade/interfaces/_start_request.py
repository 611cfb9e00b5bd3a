"""A start or rerun request, checked before it is sent: every field a person or a form gave
is refused with :class:`ControlError` naming it, so a face can say it in its own words."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import msgspec

from ._asked import (
    MAX_OPERATOR_LENGTH,
    ControlError,
    checked_prefix,
    checked_reason,
    checked_text,
    new_request_id,
)
from ._serving import MAX_PARAMS_BYTES, RerunMode, StartRequest, check_workflow_name

__all__ = ["MIN_RERUN_PREFIX", "RERUN_MODES", "start_request"]

RERUN_MODES: tuple[RerunMode, ...] = ("failure", "all", "from")
"""What a rerun may execute again (:data:`~cascade.interfaces.serving.RerunMode`)."""
MIN_RERUN_PREFIX = 6
"""The fewest hex digits of a run id a rerun names the run by (the serving process resolves
it among the runs whose results it keeps)."""
_MAX_FROM_TASK = 1024


def start_request(
    workflow: str,
    params: Mapping[str, Any] | None = None,
    *,
    rerun_of: str | None = None,
    rerun: str = "failure",
    from_task: str | None = None,
    dry_run: bool = False,
    issued_by: str | None = None,
    reason: str | None = None,
) -> StartRequest:
    """The request to start ``workflow`` with ``params`` (JSON values by name), or to rerun
    ``rerun_of`` (a run id, or a prefix of at least 6 hex digits), stamped now with a fresh
    id. Bad input raises :class:`ControlError` naming the field (``workflow``, ``params``,
    ``rerun_of``, ``rerun``, ``from_task``, ``dry_run``, ``issued_by``, ``reason``)."""
    try:
        name = check_workflow_name(workflow)
    except ValueError as exc:
        raise ControlError(str(exc), "workflow") from None
    given = _checked_params(params)
    run = None if rerun_of is None else _checked_rerun_of(rerun_of)
    mode = _checked_mode(rerun)
    if (mode == "from") != (from_task is not None):
        raise ControlError("from_task goes with rerun 'from', and only with it", "from_task")
    task = None if from_task is None else checked_text(from_task, "from_task", _MAX_FROM_TASK)
    if run is None and (mode != "failure" or dry_run):
        field = "dry_run" if dry_run else "rerun"
        raise ControlError(f"{field} goes with rerun_of: a run to rerun", field)
    by = None if issued_by is None else checked_text(issued_by, "issued_by", MAX_OPERATOR_LENGTH)
    return StartRequest(
        id=new_request_id(),
        workflow=name,
        params=given,
        rerun_of=run,
        rerun=mode,
        from_task=task,
        dry_run=bool(dry_run),
        issued_by=by,
        reason=checked_reason(reason),
        issued_at=time.time(),
    )


def _checked_params(params: Mapping[str, Any] | None) -> dict[str, Any]:
    if params is None:
        return {}
    if not isinstance(params, Mapping) or not all(isinstance(k, str) for k in params):
        raise ControlError("params are JSON values by name (a dict with str keys)", "params")
    try:
        encoded = msgspec.json.encode(dict(params))
    except (TypeError, ValueError, OverflowError) as exc:
        raise ControlError(f"params are not JSON: {exc}", "params") from None
    if len(encoded) > MAX_PARAMS_BYTES:
        raise ControlError(
            f"params are {len(encoded):,} bytes of JSON, at most {MAX_PARAMS_BYTES:,}", "params"
        )
    decoded: dict[str, Any] = msgspec.json.decode(encoded)
    return decoded


def _checked_rerun_of(rerun_of: str) -> str:
    try:
        wanted = checked_prefix(rerun_of)
    except ControlError as exc:
        raise ControlError(f"rerun_of: {exc}", "rerun_of") from None
    if len(wanted) < MIN_RERUN_PREFIX:
        raise ControlError(
            f"rerun_of: give at least {MIN_RERUN_PREFIX} hex digits of the run's id, "
            f"not {rerun_of!r}",
            "rerun_of",
        )
    return wanted


def _checked_mode(rerun: str) -> RerunMode:
    for mode in RERUN_MODES:
        if rerun == mode:
            return mode
    raise ControlError(f"rerun must be one of {', '.join(RERUN_MODES)}, not {rerun!r}", "rerun")
