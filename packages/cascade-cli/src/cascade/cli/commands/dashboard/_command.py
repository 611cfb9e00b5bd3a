"""The `cascade dashboard` command (registered by the CLI's app)."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from typing import TYPE_CHECKING, Annotated

import typer

from ...plumbing._broker import BrokerOptions
from ...plumbing._context import CliContext, UsageError
from ...plumbing._history_db import Db, open_history
from ...plumbing._listen import parse_listen
from ...plumbing._operator import As, operator_name
from ...plumbing._view_options import DEFAULT_FLEET_THRESHOLD, FleetThreshold
from ._dashboard_face import demo_loop, record_command
from ._sign_in_options import (
    GroupsHeader,
    OidcClientId,
    OidcClientSecret,
    OidcGroupsClaim,
    OidcIssuer,
    OidcNameClaim,
    OidcPostLogoutUrl,
    PublicUrl,
    RolesFile,
    SessionSecret,
    SignInOptions,
    TrustedProxy,
    UserHeader,
)

if TYPE_CHECKING:
    from cascade.dashboard import HistorySource

__all__ = ["dashboard"]

EXTRA_HINT = "cascade dashboard needs its extra: pip install 'cascade-cli[dashboard]'"


def dashboard(
    ctx: typer.Context,
    listen: Annotated[
        str,
        typer.Option(
            "--listen",
            help="HOST:PORT to serve on; loopback unless told otherwise (port 0: any free one).",
        ),
    ] = "127.0.0.1:8787",
    token: Annotated[
        list[str] | None,
        typer.Option(
            "--token",
            envvar="CASCADE_DASHBOARD_TOKEN",
            help="Enable the controls for requests carrying 'Authorization: Bearer SECRET'; "
            "NAME=SECRET names who its controls are issued by (repeatable; the variable "
            "takes several, space-separated).",
        ),
    ] = None,
    demo: Annotated[
        bool,
        typer.Option(
            "--demo",
            help="Also run the demo workflow (on an embedded broker without --host); "
            "without --token, a random one is made and put in the printed URL.",
        ),
    ] = False,
    allowed_host: Annotated[
        list[str] | None,
        typer.Option(
            "--allowed-host",
            help="Also serve requests whose Host is NAME (repeatable); loopback names and "
            "the --listen host are served anyway (a defence against DNS rebinding).",
        ),
    ] = None,
    notify_allow_destination: Annotated[
        list[str] | None,
        typer.Option(
            "--notify-allow-destination",
            metavar="HOST|ADDRESS|NETWORK",
            show_default=False,
            help="Let the admins' webhooks post to this inside destination too (repeatable): "
            "a host name, an address or a network. By default a webhook that is, or resolves "
            "to, a loopback, private, link-local, multicast, reserved or metadata address is "
            "refused.",
        ),
    ] = None,
    db: Db = None,
    operator: As = None,
    fleet_threshold: FleetThreshold = DEFAULT_FLEET_THRESHOLD,
    roles: RolesFile = None,
    oidc_issuer: OidcIssuer = None,
    oidc_client_id: OidcClientId = None,
    oidc_client_secret: OidcClientSecret = None,
    oidc_name_claim: OidcNameClaim = None,
    oidc_groups_claim: OidcGroupsClaim = None,
    oidc_post_logout_url: OidcPostLogoutUrl = None,
    public_url: PublicUrl = None,
    session_secret: SessionSecret = None,
    trusted_proxy: TrustedProxy = None,
    proxy_user_header: UserHeader = None,
    proxy_groups_header: GroupsHeader = None,
    *,
    broker: BrokerOptions,
) -> None:
    """A live web page of the runs, with pause/resume/limit.

    A live web page of runs, tasks, engines and constraints, with pause/resume/limit controls.

    Without --token the page is read-only. It also shows the history `cascade record` keeps
    (past runs, a run's timeline, a task's duration over time, the audit trail): the one --db
    (or CASCADE_HISTORY_DB) names, else `cascade record`'s default file if it exists (opened
    read-only, never made; a file not there yet, or without tables yet, is waited for, the
    page showing it once `cascade record` made it). It says which on start and on the page;
    with none yet, how to start recording. From --fleet-threshold live runs (as the engines'
    summaries count them) it reads the fleet from the summaries, and a run's events only
    while a page has it open.
    With --roles, a team's dashboard: people sign in with OpenID Connect (--oidc-issuer) or
    through an auth proxy in front (--trusted-proxy), and see and do what the roles file
    grants them. Ends on Ctrl-C.
    Examples: cascade dashboard --host broker.example; cascade dashboard --demo;
    cascade dashboard --db postgresql://cascade@db/cascade
    """
    try:
        import prometheus_client  # noqa: F401
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        typer.echo(f"cascade: {EXTRA_HINT}", err=True)
        raise typer.Exit(1) from None
    from cascade.dashboard import (  # only once the extra is known to be there
        DashboardSettings,
        HistorySource,
        Tokens,
        serve_dashboard,
    )

    from ._team_sign_in import team_sign_in

    sign_in_options = SignInOptions(
        roles,
        oidc_issuer,
        oidc_client_id,
        oidc_client_secret,
        oidc_name_claim,
        oidc_groups_claim,
        oidc_post_logout_url,
        public_url,
        session_secret,
        trusted_proxy or [],
        proxy_user_header,
        proxy_groups_header,
    )
    host, port = parse_listen(listen)
    notify_allow = tuple(notify_allow_destination or ())
    if notify_allow:
        try:
            from cascade.notify import Destinations

            Destinations(notify_allow)
        except ImportError:
            pass  # no notifications to allow anything to: the dashboard warns so
        except ValueError as exc:
            raise UsageError(f"--notify-allow-destination: {exc}") from None
    name = operator_name(operator, broker.username)
    tokens = Tokens.parse(token or (), name)
    team = team_sign_in(sign_in_options, has_token=tokens is not None)

    # --db is asked for: a history it cannot open ends the command, but a file not made yet
    # (`cascade record` started beside it) is waited for, as the default one is
    history = awaited_history(db, HistorySource)
    awaited = history.default_path if db is not None else None  # a named file not made yet
    context = CliContext.of(ctx)
    factory, console = context.connector_factory, context.out()
    if demo and tokens is None and team.roles is None:  # the demo's controls work out of the box
        tokens = Tokens(((secrets.token_urlsafe(16).encode(), name),))
    for note in team.notes:
        console.print(note, soft_wrap=True, markup=False, highlight=False)

    def say(text: str) -> None:
        console.print(text, soft_wrap=True, markup=False, highlight=False)

    async def serve() -> None:
        async with contextlib.AsyncExitStack() as stack:
            served = broker
            if demo:
                from ..demo._demo import demo_broker

                served = await stack.enter_async_context(demo_broker(broker, console))
            await serve_dashboard(
                DashboardSettings(
                    connector=lambda: factory(served),
                    broker=served.address,
                    timeout=served.timeout,
                    host=host,
                    port=port,
                    allowed_hosts=(*(allowed_host or ()), *team.hosts),
                    notify_allow=notify_allow,
                    token=tokens,
                    operator=name,
                    roles=team.roles,
                    sign_in=team.sign_in,
                    history=history,
                    record_command=record_command(served, awaited),
                    fleet_threshold=fleet_threshold,
                    demo=(lambda: demo_loop(served)) if demo else None,
                    say=say,
                    warn=lambda text: console.print(f"[yellow]{text}[/yellow]"),
                )
            )

    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(serve())
    except OSError as exc:
        typer.echo(f"cascade: cannot listen on {listen}: {exc.strerror or exc}", err=True)
        raise typer.Exit(1) from None
    finally:
        history.close()


def awaited_history(db: str | None, source: type[HistorySource]) -> HistorySource:
    """The history ``db`` names (``None``: the default file, looked for), as the dashboard
    serves it: a SQLite file not made yet is waited for (`cascade record` started beside the
    dashboard makes it), as the default one is; any other that cannot be opened ends the
    command (exit 1)."""
    if db is None:
        return source.default()
    from cascade.history import HistoryMissing

    try:
        return source(open_history("dashboard", db))
    except HistoryMissing as missing:
        return source.awaiting(missing.path)
