"""`cascade rerun RUN --entrypoint PATH.py:FUNCTION`: a plain script's run rerun by the command
itself, with an engine of its own on the broker given, reusing what the results store kept of
the run (no serving process, no history needed): as Prefect's `flow-run retry --entrypoint`."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import msgspec
import typer

from cascade.control.run_ids import short_id
from cascade.interfaces import Connector
from cascade.interfaces.serving import PlanStep
from cascade.interfaces.wire import RerunMode
from cascade.runtime import (
    CycleError,
    DependencyMissingError,
    Engine,
    Event,
    InvalidTargetError,
    ParamError,
    RerunError,
    RunCancelledError,
    RunStarted,
    TaskFailedError,
)

from ...plumbing._broker import BrokerOptions
from ...plumbing._context import CliContext, UsageError, fail
from ...plumbing._engine_connector import engine_connector
from ..start._said import print_steps
from ._entrypoint import Entrypoint

__all__ = ["HereRerun", "rerun_here"]


@dataclass(frozen=True)
class HereRerun:
    """What `cascade rerun --entrypoint` was given: the run (an id or a prefix its store
    resolves), the workflow, the ``--param`` values, the rerun's mode, the results store
    (``None``: ``$CASCADE_RESULTS``, else ``./.cascade-results``, as ``Engine(results=True)``),
    whether it only plans, prints JSON, and the engine's org and project."""

    run: str
    entrypoint: Entrypoint
    params: dict[str, Any]
    mode: RerunMode
    from_task: str | None
    results: str | None
    dry_run: bool
    json_output: bool
    org: str | None
    project: str | None


def rerun_here(ctx: typer.Context, broker: BrokerOptions, asked: HereRerun) -> None:
    """Plan the rerun (``--dry-run``: print the plan and stop), else run it here and say how
    it ended: exit 0 once it succeeded, 1 when it failed, was cancelled, or the store has no
    such run; 2 for a workflow that builds no target or takes no such params."""
    out = CliContext.of(ctx).out()
    connector = None if asked.dry_run else engine_connector(broker)
    engine = Engine(
        connector,
        results=True if asked.results is None else asked.results,
        org_id=asked.org,
        project_id=asked.project,
    )
    started: list[RunStarted] = []

    def heard(event: Event) -> None:
        if isinstance(event, RunStarted):
            started.append(event)
            if not asked.json_output:
                rerun_of = event.origin.rerun_of if event.origin else None
                of = f" (a rerun of {short_id(rerun_of)})" if rerun_of else ""
                source = connector.source_id if connector is not None else "-"
                typer.echo(
                    f"started {asked.entrypoint.given} as run {short_id(event.run_id)} on "
                    f"{source}{of}"
                )

    async def job() -> tuple[str, list[PlanStep], str | None, str]:
        store = engine.results
        assert store is not None  # results=True or a path: a store
        try:
            rerun_of = await asyncio.to_thread(store.resolve, asked.run)
            manifest = await asyncio.to_thread(store.manifest, rerun_of)
        except RerunError as exc:
            raise fail(f"{exc} (the results store {store.url})") from None
        params = {**(manifest.params or {}), **asked.params}
        target = await asked.entrypoint.target({} if asked.entrypoint.is_target else params)
        run_params = params if asked.entrypoint.is_target else None
        steps = await engine.plan(
            target,
            rerun_of=rerun_of,
            rerun=asked.mode,
            from_task=asked.from_task,
            params=run_params,
        )
        if asked.dry_run:
            return rerun_of, steps, None, ""
        engine.events.subscribe(heard)
        try:
            await engine.run(
                target,
                rerun_of=rerun_of,
                rerun=asked.mode,
                from_task=asked.from_task,
                params=run_params,
            )
        except (TaskFailedError, RunCancelledError) as exc:
            status = "Cancelled" if isinstance(exc, RunCancelledError) else "Failed"
            return rerun_of, steps, status, str(exc)
        except DependencyMissingError:  # its target skipped: the run succeeded, as it says
            pass
        return rerun_of, steps, "Succeeded", ""

    try:
        rerun_of, steps, status, error = asyncio.run(job())
    except (InvalidTargetError, CycleError) as exc:
        given = asked.entrypoint.given
        raise UsageError(f"--entrypoint {given} is not a workflow: {exc}") from None
    except ParamError as exc:
        raise UsageError(f"--param: {exc}") from None
    except RerunError as exc:  # --from names no task of the workflow, a rerun of it is live
        raise fail(str(exc)) from None
    run_id = started[0].run_id if started else None
    if asked.json_output:
        typer.echo(_json(asked, rerun_of, steps, run_id, status, engine, connector))
    elif status is None:
        title = f"A rerun of run {short_id(rerun_of)} of {asked.entrypoint.given}, here"
        print_steps(out, steps, len(steps), title)
    else:
        typer.echo(f"run {short_id(run_id or '')} {status}")
    if status is not None and status != "Succeeded":
        raise fail(error) if error else typer.Exit(1)


def _json(
    asked: HereRerun,
    rerun_of: str,
    steps: list[PlanStep],
    run_id: str | None,
    status: str | None,
    engine: Engine,
    connector: Connector | None,
) -> str:
    """What `--json` prints: the plan (and, unless a dry run, the run started and how it
    ended), shaped as a serving process's answer is."""
    body: dict[str, Any] = {
        "outcome": "planned" if status is None else "started",
        "entrypoint": asked.entrypoint.given,
        "rerun_of": rerun_of,
        "plan": msgspec.to_builtins(steps),
        "plan_count": len(steps),
        "results": engine.results.url if engine.results is not None else None,
    }
    if status is not None:
        body |= {"run_id": run_id, "status": status}
        body["source"] = connector.source_id if connector is not None else None
    return json.dumps(body, ensure_ascii=True)
