"""`cascade record`: record the broker's telemetry, task logs, presence, constraints and
cancels into the history."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ...plumbing._broker import (
    DEFAULT_BROKER,
    MAX_COUNT,
    BrokerOptions,
    StopAfter,
    broker_options,
)
from ...plumbing._context import CliContext
from ...plumbing._history_db import Db, open_history
from ...plumbing._view_options import parse_age
from ._record import (
    DEFAULT_QUEUE,
    MAX_EXPIRY,
    NO_SHARING,
    SHORT_KEEP,
    STOP_TIMEOUT,
    Exporter,
    check_client_id,
    check_group,
    metrics_address,
    record_until_stopped,
    recording_summary,
    stop_on_signals,
    with_unreadable,
)

if TYPE_CHECKING:
    from cascade.history import RecorderStats

__all__ = ["record"]


@broker_options
def record(
    ctx: typer.Context,
    db: Db = None,
    keep: Annotated[
        str | None,
        typer.Option(
            "--keep",
            metavar="AGE",
            help="Delete runs and events older than AGE as it records (30d); default: keep all. "
            "Less than a minute (0 deletes everything as it comes) needs --yes.",
        ),
    ] = None,
    keep_logs: Annotated[
        str | None,
        typer.Option(
            "--keep-logs",
            metavar="AGE",
            help="Delete task log lines received longer ago than AGE (7d), whatever --keep "
            "keeps; default: as long as their run. Less than a minute needs --yes.",
        ),
    ] = None,
    yes: Annotated[
        bool, typer.Option("--yes", help="Mean a --keep or --keep-logs shorter than a minute.")
    ] = False,
    duration_s: StopAfter = None,
    client_id: Annotated[
        str | None,
        typer.Option(
            "--client-id",
            metavar="ID",
            help="A stable MQTT client id: the broker keeps this recorder's session, and the "
            "QoS 1 messages (runs' starts and ends, presence, constraints) published while it "
            "is away, for its next start with the same id.",
        ),
    ] = None,
    session_expiry: Annotated[
        str,
        typer.Option(
            "--session-expiry",
            metavar="AGE",
            help="With --client-id over MQTT 5: how long the broker keeps the session.",
        ),
    ] = "7d",
    queue: Annotated[
        int,
        typer.Option(
            "--queue",
            min=1,
            max=MAX_COUNT,
            help="Messages held while the database is slow or down; beyond, dropped and counted.",
        ),
    ] = DEFAULT_QUEUE,
    share: Annotated[
        str | None,
        typer.Option(
            "--share",
            metavar="GROUP",
            help="Share the telemetry with the other recorders of GROUP (an MQTT shared "
            "subscription, $share/GROUP/...): each message goes to one of them; run several "
            "into one PostgreSQL to record a stream one cannot keep up with.",
        ),
    ] = None,
    metrics_listen: Annotated[
        str | None,
        typer.Option(
            "--metrics-listen",
            metavar="HOST:PORT",
            help="Serve Prometheus metrics of what it receives at http://HOST:PORT/metrics "
            "(port 0: any free one); needs cascade-cli[metrics]. See docs/metrics.md.",
        ),
    ] = None,
    logins_bound: Annotated[
        bool,
        typer.Option(
            "--logins-bound",
            help="The broker's ACL lets each login write only its own {prefix}/issued/<login> "
            "(cascade acl writes such an ACL): keep the logins' --witness notes, and the audit "
            "names a login that did what its note says as vouched for by the broker.",
        ),
    ] = False,
    broker: BrokerOptions = DEFAULT_BROKER,
) -> None:
    """Record runs, tasks, engines and constraints into the history.

    Record runs, tasks, engines and constraints into the history database until Ctrl-C.

    A SQLite file in the user's data directory unless --db says otherwise
    (postgresql://USER@HOST/DB for a fleet). On a terminal it shows a progress
    line; piped, it is quiet. At the end it prints a summary with the same counters.

    What the counters mean:
    stored: new to the history;
    duplicates: what it already had (a copy delivered again; on every start the
    engines' retained statuses and the constraints in force: a quiet broker shows some);
    rejected: not the protocol (undecodable, oversized, refused by the database);
    refused: what no engine of its run can have sent (another source's events,
    a number out of bounds, a timestamp ahead), counted per run;
    dropped: valid but lost (--queue was full, or unwritten when it stopped);
    gaps: events that never arrived, counted from their numbers;
    lag: how long the oldest unwritten message has waited.

    Examples: cascade record; cascade record --db postgresql://cascade@db/cascade --keep 30d;
    cascade record --client-id recorder-1 (kept while it restarts)
    """
    kept = parse_age(keep) if keep is not None else None
    logs_kept = parse_age(keep_logs) if keep_logs is not None else None
    for age, given, option in ((kept, keep, "--keep"), (logs_kept, keep_logs, "--keep-logs")):
        if age is not None and age < SHORT_KEEP and not yes:
            raise typer.BadParameter(
                f"{given} is shorter than a minute: it deletes the history within seconds of "
                "recording it; add --yes if that is meant",
                param_hint=f"'{option}'",
            )
    expiry = parse_age(session_expiry)
    if client_id is not None:
        check_client_id(client_id)
    if share is not None:
        check_group(share)
    broker = dataclasses.replace(
        broker,
        client_id=client_id,
        session_expiry=min(expiry, MAX_EXPIRY) if client_id is not None else None,
    )
    listen = metrics_address(metrics_listen) if metrics_listen is not None else None
    history = open_history("record", db, mode="write")
    context = CliContext.of(ctx)
    console = context.out()
    retention = f"keeping {keep}" if keep is not None else "keeping everything"
    if keep_logs is not None:
        retention += f", task logs {keep_logs}"

    async def job(connector: Any) -> RecorderStats:
        from cascade.history import Recorder

        exporter = (
            Exporter(connector.topic_prefix, metrics_listen) if metrics_listen is not None else None
        )
        recorder = Recorder(
            connector,
            history,
            keep=kept,
            keep_logs=logs_kept,
            max_queue=queue,
            name=client_id,
            share=share,
            logins_bound=logins_bound,
            observe=exporter.metrics.apply if exporter is not None else None,
        )
        await recorder.start()  # subscribed before connecting: a kept session's messages
        try:
            await connector.connect(require=True)
            sharing = ""
            if share is not None and await recorder.check_sharing(broker.timeout):
                sharing = f", sharing the telemetry with group {share}"
            elif share is not None:
                typer.echo(f"cascade: warning: {NO_SHARING.format(group=share)}", err=True)
            console.print(
                f"recording {broker.address} into {history.location} ({retention}{sharing}); "
                "Ctrl-C ends it",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )
            if exporter is not None and listen is not None:
                exporter.metrics.count_gaps = not recorder.sharing  # a share's holes mean nothing
                exporter.follow(lambda: recorder.stats)
                url = await exporter.serve(listen)
                console.print(f"metrics on {url}", markup=False, highlight=False, soft_wrap=True)
            console.file.flush()
            stop = asyncio.Event()
            with stop_on_signals(stop.set):
                await record_until_stopped(recorder, stop, duration_s, console)
        finally:
            await recorder.stop(timeout=STOP_TIMEOUT)
            if exporter is not None:
                await exporter.stop()
        return with_unreadable(recorder.stats, connector.stats.rejected)

    try:
        stats = context.run(broker, job, connect=False)
    except KeyboardInterrupt:  # before recording began (connecting): nothing to write
        raise typer.Exit(130) from None
    finally:
        history.close()
    console.print(recording_summary(stats, history), markup=False, highlight=False, soft_wrap=True)
