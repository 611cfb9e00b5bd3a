"""`cascade notify`: a thin face over :class:`cascade.notify.Notifier`."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ...plumbing._broker import DEFAULT_BROKER, BrokerOptions, StopAfter, broker_options
from ...plumbing._context import CliContext, UsageError
from ...plumbing._history_db import open_history, open_writer
from ...plumbing._view_options import parse_age
from ..record._record import metrics_address, serve_metrics, stop_on_signals

if TYPE_CHECKING:
    from cascade.notify import Notifier

__all__ = ["notify"]

EXTRA_HINT = "cascade notify needs its extra: pip install 'cascade-cli[notify]'"
ENV_WEBHOOK = "CASCADE_NOTIFY_WEBHOOK"


def _webhook_url(webhook: str | None, webhook_file: Path | None) -> str:
    """The webhook's URL: ``--webhook-file``'s first line, else ``$CASCADE_NOTIFY_WEBHOOK`` or
    ``--webhook``; never shown."""
    if webhook_file is not None:
        try:
            lines = webhook_file.read_text(encoding="utf-8").split()
        except OSError as exc:
            raise UsageError(
                f"--webhook-file: cannot read {webhook_file}: {exc.strerror}"
            ) from None
        if not lines:
            raise UsageError(f"--webhook-file: {webhook_file} holds no URL")
        return lines[0]
    if not webhook:
        raise UsageError(
            f"say where to post: ${ENV_WEBHOOK}, --webhook-file PATH (a file holding the URL) "
            "or --webhook URL"
        )
    return webhook


@broker_options
def notify(
    ctx: typer.Context,
    webhook: Annotated[
        str | None,
        typer.Option(
            "--webhook",
            envvar=ENV_WEBHOOK,
            metavar="URL",
            show_default=False,
            help="The webhook to post to. It often holds a token: prefer $CASCADE_NOTIFY_WEBHOOK "
            "or --webhook-file to this option (other users of the machine can read a command "
            "line). Never printed: output shows its scheme and host only.",
        ),
    ] = None,
    webhook_file: Annotated[
        Path | None,
        typer.Option(
            "--webhook-file", metavar="PATH", help="A file whose first line is the webhook URL."
        ),
    ] = None,
    allow_destination: Annotated[
        list[str] | None,
        typer.Option(
            "--allow-destination",
            metavar="HOST|ADDRESS|NETWORK",
            show_default=False,
            help="Post to this inside destination too (repeat for several): a host name, an "
            "address or a network (10.0.0.0/8). By default a webhook that is, or resolves to, "
            "a loopback, private, link-local, multicast, reserved or cloud metadata address "
            "is refused.",
        ),
    ] = None,
    on: Annotated[
        str,
        typer.Option(
            "--on",
            metavar="EVENTS",
            help="Comma-separated: run.failed, task.held, hold.deadline, engine.lost, "
            "run.succeeded.",
        ),
    ] = "run.failed,task.held,hold.deadline,engine.lost,run.carried_on,run.lost",
    filters: Annotated[
        list[str] | None,
        typer.Option(
            "--filter",
            metavar="ORG[/PROJECT[/WORKFLOW]]",
            help="Only runs matching (globs; repeat for several); an engine.lost matches when "
            "a run it ran does.",
        ),
    ] = None,
    fmt: Annotated[
        str, typer.Option("--format", metavar="generic|slack", help="The body posted.")
    ] = "generic",
    dashboard_url: Annotated[
        str | None,
        typer.Option(
            "--dashboard-url", metavar="URL", help="The dashboard's address: each run's link."
        ),
    ] = None,
    warn_before: Annotated[
        str,
        typer.Option(
            "--warn-before", metavar="AGE", help="hold.deadline: how long before a hold's deadline."
        ),
    ] = "1h",
    group: Annotated[
        str | None,
        typer.Option(
            "--group",
            metavar="NAME",
            show_default=False,
            help="The notifiers sharing --state that post each event once between them "
            "(default: those posting to the same webhook).",
        ),
    ] = None,
    rate: Annotated[
        int,
        typer.Option(
            "--rate", min=1, max=10_000, help="Posts a minute at most; beyond, one digest."
        ),
    ] = 10,
    post_timeout: Annotated[
        float,
        typer.Option(
            "--post-timeout", min=0.1, max=300, help="Seconds one attempt at a post may take."
        ),
    ] = 10.0,
    attempts: Annotated[
        int, typer.Option("--attempts", min=1, max=20, help="Attempts at one post (backoff).")
    ] = 5,
    state: Annotated[
        str | None,
        typer.Option(
            "--state",
            metavar="PATH|URL",
            show_default=False,
            help="The database the notifiers claim events in, kept across restarts: a SQLite "
            "file (one host's notifiers; default $XDG_STATE_HOME/cascade/notify.sqlite3) or a "
            "PostgreSQL URL (notifiers on several hosts; the history's may be it).",
        ),
    ] = None,
    lease: Annotated[
        float | None,
        typer.Option(
            "--lease",
            metavar="SECONDS",
            min=0.1,
            show_default=False,
            help="Seconds a claim is its notifier's before another may take it over and post "
            "(default: the longest a post can take, and 30 s).",
        ),
    ] = None,
    metrics_listen: Annotated[
        str | None,
        typer.Option(
            "--metrics-listen",
            metavar="HOST:PORT",
            help="Serve its counts at http://HOST:PORT/metrics (port 0: any free one).",
        ),
    ] = None,
    duration_s: StopAfter = None,
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            envvar="CASCADE_HISTORY_DB",
            metavar="URL",
            show_default=False,
            help="A history to audit each post in (`cascade audit` lists them): a SQLite "
            "file's path, sqlite:///PATH or postgresql://USER@HOST/DB.",
        ),
    ] = None,
    broker: BrokerOptions = DEFAULT_BROKER,
) -> None:
    """Post webhooks when runs fail, tasks are held, engines are lost.

    Post a webhook when runs fail, tasks are held, holds near their deadline, engines are
    lost: one JSON message per event to a webhook until Ctrl-C: generic JSON, or the body of a
    Slack incoming webhook (--format slack). Several `cascade notify` sharing a --state post
    each event once between them. Given a history (--db, CASCADE_HISTORY_DB), each post is
    audited there (`cascade audit`). A webhook inside (loopback, private, link-local, ...)
    is posted to only when --allow-destination names it. See docs/notifications.md.

    Examples: CASCADE_NOTIFY_WEBHOOK=https://hooks.slack.com/services/... cascade notify
    --format slack; cascade notify --webhook-file /etc/cascade/hook --on run.failed
    --filter acme/etl --dashboard-url https://cascade.example
    """
    try:
        from cascade.notify import (
            EVENTS,
            FORMATS,
            Destinations,
            Notifier,
            NotifyMetrics,
            Webhook,
            default_ledger_path,
            parse_filter,
        )
    except ImportError:
        typer.echo(f"cascade: {EXTRA_HINT}", err=True)
        raise typer.Exit(1) from None
    events = [name.strip() for name in on.split(",") if name.strip()]
    unknown = [name for name in events if name not in EVENTS]
    if unknown or not events:
        raise UsageError(f"--on takes {', '.join(EVENTS)}; not {', '.join(unknown) or 'nothing'}")
    if fmt not in FORMATS:
        raise UsageError(f"--format is generic or slack, not {fmt!r}")
    try:
        levels = [parse_filter(text) for text in filters or ()]
    except ValueError as exc:
        raise UsageError(f"--filter: {exc}") from None
    url = _webhook_url(webhook, webhook_file)
    try:
        destinations = Destinations(allow_destination or ())
        hook = Webhook(url, timeout=post_timeout, attempts=attempts, destinations=destinations)
        destinations.check(url)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    listen = metrics_address(metrics_listen) if metrics_listen is not None else None
    lead = parse_age(warn_before)
    context = CliContext.of(ctx)
    # the state first: it makes or migrates its schema, which the history's may be
    claims = open_history("notify", state or str(default_ledger_path()), mode="write")
    try:
        history = open_writer("notify", db) if db is not None else None
    except BaseException:
        claims.close()
        raise

    async def job(connector: Any) -> Notifier:
        notifier = Notifier(
            connector,
            hook,
            fmt=fmt,
            events=events,
            filters=levels,
            warn_before=lead,
            dashboard_url=dashboard_url,
            state=claims,
            group=group,
            lease=lease,
            rate=rate,
            history=history,
        )
        await notifier.start()
        server = None
        try:
            await connector.connect(require=True)
            said = f"notifying {hook.shown} of {', '.join(events)} from {broker.address}"
            if listen is not None:
                server = await serve_metrics(
                    NotifyMetrics(notifier).render, listen, metrics_listen or ""
                )
                said += f"; metrics on {server[1]}"
            typer.echo(said + "; Ctrl-C ends it")
            stop = asyncio.Event()
            with stop_on_signals(stop.set), contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), duration_s)
        finally:
            await notifier.stop()
            if server is not None:
                await server[0].stop()
        return notifier

    try:
        notifier = context.run(broker, job, connect=False)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    finally:
        claims.close()
        if history is not None:
            history.close()
    events_done = notifier.counts.events
    posted = sum(v for (_, outcome), v in events_done.items() if outcome == "posted")
    failed = sum(v for (_, outcome), v in events_done.items() if outcome == "failed")
    others = sum(v for (_, outcome), v in events_done.items() if outcome == "by_another")
    typer.echo(
        f"notified: {posted} posted, {failed} failed, {others} posted by another notifier, "
        f"{notifier.counts.digests} digests, {notifier.counts.attempts.total()} HTTP attempts"
    )
