"""`cascade serve PATH.py:NAME`: a file's workflows served on the broker until stopped, with the
engine's results store, org and project, schedules, resources and carry-on policy from flags
or the environment: what a user's `asyncio.run(engine.serve(...))` main does, for a
supervisor (systemd, a container) to run."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer

from cascade.runtime import Engine, LazyResult, Schedule

from ...plumbing._broker import DEFAULT_BROKER, BrokerOptions, broker_options
from ...plumbing._context import UsageError
from ...plumbing._engine_connector import engine_connector
from ...plumbing._python_file import import_python_file

__all__ = ["serve"]

_FORM = "PATH.py:NAME"
_LOST = ("carry-on", "hold", "none")


def _object(module: Any, name: str, option: str, given: str) -> Any:
    found = getattr(module, name, None)
    if found is None:
        raise UsageError(f"{option} {given}: the file defines no {name}")
    return found


def _workflows(given: str) -> tuple[Any, dict[str, Any]]:
    """The module ``PATH.py`` and the workflows its ``NAME`` names: a mapping of names to
    workflows (functions that build a target, or targets), or one workflow, served under
    ``NAME``; :class:`UsageError` for what is neither."""
    where, sep, name = given.rpartition(":")
    if not sep or not where or not name.isidentifier():
        raise UsageError(f"cascade serve takes {_FORM}, not {given!r}")
    path = Path(where).expanduser()
    if not path.is_file():
        raise UsageError(f"cascade serve {given}: no file {where}")
    stem = path.stem
    module = import_python_file(
        path, f"cascade serve {given}", stem if stem.isidentifier() else None
    )
    found = _object(module, name, "cascade serve", given)
    if isinstance(found, Mapping):
        return module, dict(found)
    one = isinstance(found, (LazyResult, list, tuple))
    if one or (callable(found) and not isinstance(found, type)):
        return module, {name: found}
    raise UsageError(
        f"cascade serve {given}: {name} is a value of type {type(found).__name__}, neither "
        "workflows (a dict "
        "of names to functions or targets) nor a workflow"
    )


@broker_options
def serve(
    ctx: typer.Context,
    workflows: Annotated[
        str,
        typer.Argument(
            metavar=_FORM,
            help="The workflows to serve: NAME in the file PATH.py, a dict of names to "
            "workflows (functions that build a target from params, or targets), or one "
            "workflow, served as NAME.",
        ),
    ],
    schedules: Annotated[
        str | None,
        typer.Option(
            "--schedules",
            metavar="NAME",
            help="A dict of names to cascade.runtime.Schedule in the same file: fired by "
            "themselves, once per slot across the servers.",
        ),
    ] = None,
    resources: Annotated[
        str | None,
        typer.Option(
            "--resources",
            metavar="NAME",
            help="A list of resources (@cascade.runtime.resource) in the same file, registered "
            "with the engine.",
        ),
    ] = None,
    results: Annotated[
        str | None,
        typer.Option(
            "--results",
            envvar="CASCADE_RESULTS",
            metavar="PATH_OR_URL",
            help="Where runs keep their results (a directory, or an fsspec URL every server "
            "reaches: s3://...); what carries a run on when its server dies. Default: "
            "$CASCADE_RESULTS, else none.",
        ),
    ] = None,
    org: Annotated[
        str | None,
        typer.Option("--org", help="The engine's org (default: $CASCADE_ORG_ID, else local)."),
    ] = None,
    project: Annotated[
        str | None,
        typer.Option(
            "--project", help="The engine's project (default: $CASCADE_PROJECT_ID, else default)."
        ),
    ] = None,
    source: Annotated[
        str | None,
        typer.Option(
            "--source",
            metavar="ID",
            help="The engine's source id (default HOST-PID); under a broker ACL, its login.",
        ),
    ] = None,
    max_runs: Annotated[
        int, typer.Option("--max-runs", min=1, max=10_000, help="Runs it runs at once.")
    ] = 4,
    max_queued: Annotated[
        int,
        typer.Option("--max-queued", min=0, max=1_000_000, help="Requests it queues beyond."),
    ] = 100,
    on_engine_lost: Annotated[
        str,
        typer.Option(
            "--on-engine-lost",
            metavar="|".join(_LOST),
            help="What it does with the runs of a server of the same workflows that dies.",
        ),
    ] = "carry-on",
    max_carry_ons: Annotated[
        int | None,
        typer.Option(
            "--max-carry-ons",
            min=0,
            max=1_000,
            help="A line carried on this many times is left lost.",
        ),
    ] = None,
    broker: BrokerOptions = DEFAULT_BROKER,
) -> None:
    """Serve a file's workflows on the broker until stopped.

    Imports NAME from PATH.py (as a module: its `if __name__ == "__main__":` part does not
    run) and serves it as `await engine.serve(...)` does: started by `cascade start`, by its
    `--schedules`, and carrying on the runs of a server of the same workflows that dies
    (docs/durability.md). SIGTERM and Ctrl-C stop it as a cancel does: its runs are cancelled
    and said so, its announcement cleared. Exit 2 for a file or name that is no workflow (one
    line, before anything connects).
    """
    if on_engine_lost not in _LOST:
        raise UsageError(f"--on-engine-lost takes {', '.join(_LOST)}, not {on_engine_lost!r}")
    module, served = _workflows(workflows)
    options: dict[str, Any] = {"max_runs": max_runs, "max_queued": max_queued}
    options["on_engine_lost"] = on_engine_lost
    if max_carry_ons is not None:
        options["max_carry_ons"] = max_carry_ons
    if schedules is not None:
        found = _object(module, schedules, "--schedules", schedules)
        if not isinstance(found, Mapping) or not all(
            isinstance(s, Schedule) for s in found.values()
        ):
            raise UsageError(f"--schedules {schedules}: not a dict of names to Schedule")
        options["schedules"] = dict(found)
    registered: list[Any] = []
    if resources is not None:
        found = _object(module, resources, "--resources", resources)
        registered = list(found) if isinstance(found, (list, tuple)) else [found]
    try:
        engine = Engine(
            engine_connector(broker, source),
            results=results,
            org_id=org,
            project_id=project,
            resources=registered,
        )
    except (TypeError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    with contextlib.suppress(KeyboardInterrupt):
        try:
            asyncio.run(engine.serve(served, **options))
        except (TypeError, ValueError) as exc:  # a workflow or schedule serve() refuses
            raise UsageError(f"cascade serve {workflows}: {exc}") from None
