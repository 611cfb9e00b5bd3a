"""`cascade pause`, `limit` and `resume`: set and clear constraints, acknowledged by the broker."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..plumbing._broker import DEFAULT_BROKER, BrokerOptions, broker_options
from ..plumbing._context import CliContext
from ..plumbing._operator import As, Reason, Witness, issued, operator_name, witness_login

if TYPE_CHECKING:
    from cascade.control import Controller

__all__ = ["limit", "pause", "resume"]

Ttl = Annotated[
    float | None,
    typer.Option("--ttl", help="Seconds until the constraint ends by itself (1 s to 10 years)."),
]
Scope = Annotated[
    str | None,
    typer.Argument(
        help="'global' (the default), 'task:<glob>' (e.g. task:api_*), 'schedule:<name>', "
        "'workflow:<name>' or 'trigger:<name>'; with --org/--project, within that org or "
        "project (the default there: task:*).",
        show_default=False,
    ),
]
SteerOrg = Annotated[
    str | None,
    typer.Option(
        "--org",
        envvar="CASCADE_ORG",
        help="Steer SCOPE within this org only: its engines obey it, no other org's "
        "(default: $CASCADE_ORG). An operator over an org steers there only.",
    ),
]
SteerProject = Annotated[
    str | None,
    typer.Option(
        "--project",
        envvar="CASCADE_PROJECT",
        metavar="[ORG/]PROJECT",
        help="Steer SCOPE within this project only: ORG/PROJECT, or PROJECT with --org "
        "(default: $CASCADE_PROJECT).",
    ),
]


@broker_options
def pause(
    ctx: typer.Context,
    scope: Scope = None,
    ttl: Ttl = None,
    reason: Reason = None,
    operator: As = None,
    witness: Witness = False,
    org: SteerOrg = None,
    project: SteerProject = None,
    broker: BrokerOptions = DEFAULT_BROKER,
) -> None:
    """Pause the tasks in SCOPE until resumed (running ones finish).

    Pause the tasks in SCOPE: they do not start until resumed (running ones finish).

    Examples: cascade pause; cascade pause task:load_* --ttl 7200 --reason "maintenance";
    cascade pause task:etl_* --org acme
    """
    from cascade.control import Pause  # the steering, imported when it runs

    scope = _placed(scope, org, project)
    asked = Pause(scope=scope, ttl=ttl, reason=reason)
    by, login = operator_name(operator, broker.username), witness_login(witness, broker.username)
    CliContext.of(ctx).run(broker, lambda c: _controller(c, by, broker, login).send(asked))
    typer.echo(f"paused {scope}" + (f" for {ttl:g}s" if ttl else "") + issued(by, asked.reason))


@broker_options
def limit(
    ctx: typer.Context,
    scope: Annotated[
        str,
        typer.Argument(
            help="'global' or 'task:<glob>', e.g. task:api_*; with --org/--project, within "
            "that org or project."
        ),
    ],
    concurrency: Annotated[
        int | None,
        typer.Option("--concurrency", help="At most N tasks running at once (0: none start)."),
    ] = None,
    rate: Annotated[
        str | None,
        typer.Option(
            "--rate",
            help="At most R task starts: '10' or '10/s' per second, '10/m', '2/h'; "
            "up to max(1, R per second) may start at once.",
        ),
    ] = None,
    ttl: Ttl = None,
    reason: Reason = None,
    operator: As = None,
    witness: Witness = False,
    org: SteerOrg = None,
    project: SteerProject = None,
    broker: BrokerOptions = DEFAULT_BROKER,
) -> None:
    """Limit how many tasks of SCOPE run at once, or how fast.

    Limit how many tasks of SCOPE run at once and/or how fast they start.

    Examples: cascade limit task:api_* --concurrency 2; cascade limit global --rate 10/m;
    cascade limit task:api_* --rate 10/m --org acme
    """
    from cascade.control import Limit

    scope = _placed(scope, org, project)
    asked = Limit(scope=scope, concurrency=concurrency, rate=rate, ttl=ttl, reason=reason)
    by, login = operator_name(operator, broker.username), witness_login(witness, broker.username)
    steered = CliContext.of(ctx).run(
        broker, lambda c: _controller(c, by, broker, login).send(asked)
    )
    done = ", ".join(f"{c.type} {c.params}" for _, c in steered.constraints)
    typer.echo(f"limited {scope}: {done}" + issued(by, asked.reason))


@broker_options
def resume(
    ctx: typer.Context,
    scope: Scope = None,
    constraint_type: Annotated[
        str | None,
        typer.Option("--type", help="Clear only this type: pause, concurrency or rate_limit."),
    ] = None,
    reason: Reason = None,
    operator: As = None,
    witness: Witness = False,
    org: SteerOrg = None,
    project: SteerProject = None,
    broker: BrokerOptions = DEFAULT_BROKER,
) -> None:
    """Clear the constraints on SCOPE (all of them, or only --type).

    Examples: cascade resume; cascade resume task:api_* --type pause --reason "load is done";
    cascade resume task:etl_* --org acme
    """
    from cascade.control import Resume

    scope = _placed(scope, org, project)
    asked = Resume(scope=scope, type=constraint_type, reason=reason)  # type: ignore[arg-type]
    by, login = operator_name(operator, broker.username), witness_login(witness, broker.username)
    CliContext.of(ctx).run(broker, lambda c: _controller(c, by, broker, login).send(asked))
    kind = asked.type
    typer.echo(f"resumed {scope}" + (f" ({kind})" if kind else "") + issued(by, asked.reason))


def _placed(scope: str | None, org: str | None, project: str | None) -> str:
    """SCOPE within --org and --project (``org:acme/task:etl_*``), or as given without them.

    Within a place, the scope is of its tasks (``task:*`` when none is given); ``global``,
    every org's, is a usage error there, and so is a scope already placed."""
    from cascade.interfaces.wire import place_scope, split_scope

    from ..plumbing._place import read_place

    place = read_place(org, project)
    if place.org is None and place.project is None:
        return scope or "global"
    if place.org is None:
        raise typer.BadParameter(
            "give the project's org: --project ORG/PROJECT, or --org ORG", param_hint="'--project'"
        )
    if scope == "global":
        raise typer.BadParameter(
            f"global is every org's: within {place.org} give task:* (or leave --org and "
            "$CASCADE_ORG out to steer every org)",
            param_hint="'SCOPE'",
        )
    if scope is not None and split_scope(scope).org is not None:
        raise typer.BadParameter(
            f"{scope} names its place already: leave --org and --project out",
            param_hint="'SCOPE'",
        )
    return place_scope(scope or "task:*", place.org, place.project)


def _controller(
    connector: Any, issued_by: str, broker: BrokerOptions, login: str | None
) -> Controller:
    """Steering through the command's connection, as its options say."""
    from cascade.control import Controller

    return Controller(connector, issued_by=issued_by, timeout=broker.timeout, login=login)
