"""The `cascade dashboard` command (registered by the CLI's app)."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from typing import Annotated

import typer

from cascade.interfaces import ConnectorError

from .._broker import BrokerOptions
from .._context import CliContext, UsageError
from ._listen import parse_listen

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
        str | None,
        typer.Option(
            "--token",
            envvar="CASCADE_DASHBOARD_TOKEN",
            help="Enable the controls for requests carrying 'Authorization: Bearer TOKEN'.",
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
    *,
    broker: BrokerOptions,
) -> None:
    """A live web page of runs, tasks, engines and constraints, with pause/resume/limit controls.

    Without --token the page is read-only. Ends on Ctrl-C.
    Examples: cascade dashboard --host broker.example; cascade dashboard --demo
    """
    try:
        host, port = parse_listen(listen)
    except UsageError as exc:
        raise typer.BadParameter(str(exc)) from None
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        typer.echo(f"cascade: {EXTRA_HINT}", err=True)
        raise typer.Exit(1) from None
    from ._serve import serve_dashboard

    context = CliContext.of(ctx)
    factory, console = context.connector_factory, context.out()
    if token is not None and not token.strip():
        token = None
    if demo and token is None:
        token = secrets.token_urlsafe(16)  # the demo's controls work out of the box
    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(
                serve_dashboard(broker, factory, host, port, token, console, demo=demo,
                                allowed_host=allowed_host or ())
            )  # fmt: skip
    except ConnectorError as exc:
        typer.echo(f"cascade: {exc}", err=True)
        raise typer.Exit(1) from None
    except OSError as exc:
        typer.echo(f"cascade: cannot listen on {listen}: {exc.strerror or exc}", err=True)
        raise typer.Exit(1) from None
