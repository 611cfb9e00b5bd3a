"""`cascade start NAME`: a served workflow started by a process that serves it."""

from __future__ import annotations

from typing import Annotated

import typer

from cascade.control import Start

from ...plumbing._broker import DEFAULT_BROKER, BrokerOptions, broker_options
from ...plumbing._operator import As, Reason, operator_name
from ._ask import Asked, ask
from ._params import Params, parsed_params

__all__ = ["JsonReply", "On", "Org", "Project", "Wait", "start"]

On = Annotated[
    str | None,
    typer.Option(
        "--on",
        metavar="SOURCE",
        help="The serving process to ask (its source, as `cascade served` lists it); "
        "default: one that serves the workflow (the broker picks one where it has shared "
        "subscriptions, else the least busy).",
    ),
]
Wait = Annotated[
    bool,
    typer.Option(
        "--wait",
        help="Wait until the run ends: exit 0 if it succeeded, 1 if it failed (or its "
        "serving process went offline first).",
    ),
]
JsonReply = Annotated[bool, typer.Option("--json", help="Print the server's answer as JSON.")]
Org = Annotated[
    str | None,
    typer.Option(
        "--org",
        help="Only the serving processes of this org (a start's topic names one org and "
        "project, which a broker ACL binds): needed where several serve the workflow.",
    ),
]
Project = Annotated[
    str | None,
    typer.Option("--project", help="Only the serving processes of this project (as --org)."),
]


@broker_options
def start(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The served workflow (cascade served lists them).")],
    param: Params = None,
    on: On = None,
    reason: Reason = None,
    operator: As = None,
    wait: Wait = False,
    json_output: JsonReply = False,
    org: Org = None,
    project: Project = None,
    broker: BrokerOptions = DEFAULT_BROKER,
) -> None:
    """Start a served workflow: a process serving it starts a run.

    Start a served workflow: a process serving it starts a run and answers with its id.

    Exit 0 once a serving process acknowledged it (with --wait: once the run succeeded);
    1 when it refused (its reason is said: an unknown param, a missing one, busy), when no
    process serves the workflow, when none answered within --timeout, or (--wait) when the
    run failed; 2 for bad input.
    Examples: cascade start nightly --param day=mon --param rows=5 --reason "late data";
    cascade start nightly --wait
    """
    by = operator_name(operator, broker.username)
    request = Start(
        workflow=name, params=parsed_params(param), reason=reason, on=on, org=org, project=project
    )
    ask(ctx, broker, Asked(request, by, wait, json_output, "start"))
