"""`cascade record`: record the broker's telemetry, presence, constraints and cancels into the
history."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import signal
import time
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.live import Live
from rich.text import Text

from ._broker import (
    DEFAULT_BROKER,
    MAX_COUNT,
    MAX_DURATION,
    BrokerOptions,
    broker_options,
    finite,
)
from ._context import CliContext, UsageError
from ._history_db import Db, open_history
from ._listen import bind, parse_listen
from ._render import duration
from ._state import WatchState
from ._view_options import parse_age

if TYPE_CHECKING:
    from cascade.history import History, RecorderStats

    from .metrics import MetricsServer

__all__ = ["record"]

_STOP_TIMEOUT = 5.0  # seconds a stop waits for the queued messages to be written
_DEFAULT_QUEUE = 100_000
_SHORT_KEEP = 60.0  # seconds: a --keep below it needs --yes (0 deletes everything at once)


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
    yes: Annotated[
        bool, typer.Option("--yes", help="Mean a --keep shorter than a minute.")
    ] = False,
    duration_s: Annotated[
        float | None,
        typer.Option(
            "--duration",
            min=0,
            max=MAX_DURATION,
            callback=finite,
            help="Stop after this many seconds.",
        ),
    ] = None,
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
    ] = _DEFAULT_QUEUE,
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
    broker: BrokerOptions = DEFAULT_BROKER,
) -> None:
    """Record runs, tasks, engines and constraints into the history database until Ctrl-C.

    A SQLite file in the user's data directory unless --db says otherwise
    (postgresql://USER@HOST/DB for a fleet). On a terminal it shows a progress
    line (events/s, stored, dropped, gaps, lag); piped, it is quiet.
    Examples: cascade record; cascade record --db postgresql://cascade@db/cascade --keep 30d;
    cascade record --client-id recorder-1 (kept while it restarts)
    """
    kept = parse_age(keep) if keep is not None else None
    if kept is not None and kept < _SHORT_KEEP and not yes:
        raise typer.BadParameter(
            f"{keep} is shorter than a minute: it deletes the history within seconds of "
            "recording it; add --yes if that is meant",
            param_hint="'--keep'",
        )
    expiry = parse_age(session_expiry)
    if client_id is not None:
        _check_client_id(client_id)
    if share is not None:
        _check_group(share)
    broker = dataclasses.replace(
        broker,
        client_id=client_id,
        session_expiry=min(expiry, _MAX_EXPIRY) if client_id is not None else None,
    )
    listen = _metrics_address(metrics_listen) if metrics_listen is not None else None
    history = open_history("record", db, mode="write")
    context = CliContext.of(ctx)
    console = context.out()
    retention = f"keeping {keep}" if keep is not None else "keeping everything"

    async def job(connector: Any) -> RecorderStats:
        from cascade.history import Recorder

        exporter = _Exporter(connector.topic_prefix) if listen is not None else None
        recorder = Recorder(
            connector, history, keep=kept, max_queue=queue, name=client_id, share=share,
            observe=exporter.metrics.apply if exporter is not None else None,
        )  # fmt: skip
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
                url = await exporter.serve(listen)
                console.print(f"metrics on {url}", markup=False, highlight=False, soft_wrap=True)
            console.file.flush()
            stop = asyncio.Event()
            with _stop_on_signals(stop.set):
                await _wait(recorder, stop, duration_s, console)
        finally:
            await recorder.stop(timeout=_STOP_TIMEOUT)
            if exporter is not None:
                await exporter.stop()
        return _with_unreadable(recorder.stats, connector.stats.rejected)

    try:
        stats = context.run(broker, job, connect=False)
    except KeyboardInterrupt:  # before recording began (connecting): nothing to write
        raise typer.Exit(130) from None
    except _CannotListen as exc:  # --metrics-listen's address cannot be bound
        typer.echo(f"cascade: cannot listen on {metrics_listen}: {exc}", err=True)
        raise typer.Exit(1) from None
    finally:
        history.close()
    console.print(_summary(stats, history), markup=False, highlight=False, soft_wrap=True)


async def _wait(
    recorder: Any, stop: asyncio.Event, seconds: float | None, console: Console
) -> None:
    """Until ``stop`` (a signal) or ``seconds``; a progress line each second on a terminal."""
    deadline = None if seconds is None else time.monotonic() + seconds
    progress = _Progress(recorder, recorder.connector)
    live = Live(progress.line(), console=console, auto_refresh=False, transient=True)
    with live if console.is_terminal else contextlib.nullcontext():
        while not stop.is_set():
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), min(1.0, left) if left is not None else 1.0)
            if console.is_terminal:
                live.update(progress.line(), refresh=True)


class _Progress:
    """The terminal's progress line: the rate since the last line, and the counters."""

    def __init__(self, recorder: Any, connector: Any) -> None:
        self.recorder = recorder
        self.connector = connector
        self.last = (time.monotonic(), 0)

    def line(self) -> Text:
        stats = _with_unreadable(self.recorder.stats, self.connector.stats.rejected)
        now = time.monotonic()
        then, received = self.last
        rate = (stats.received - received) / (now - then) if now > then else 0.0
        self.last = (now, stats.received)
        text = Text(
            f"{rate:,.0f} events/s · stored {stats.stored:,} · duplicates {stats.duplicates:,}"
            f" · rejected {stats.rejected:,} · dropped {stats.dropped:,}"
            f" · gaps {'per run (shared)' if self.recorder.sharing else f'{stats.gaps:,}'}"
            f" · lag {duration(stats.lag)}"
        )
        if stats.last_error and stats.lag > 1:
            text.append(" · database: ", style="red").append(stats.last_error[:200], style="red")
        return text


def _metrics_address(value: str) -> tuple[str, int]:
    """``--metrics-listen``'s HOST:PORT (a usage error, exit 2, otherwise); the extra it needs
    is checked here too, before anything starts."""
    try:
        host, port = parse_listen(value, "--metrics-listen")
    except UsageError as exc:
        raise typer.BadParameter(str(exc)) from None
    try:
        import prometheus_client  # noqa: F401
    except ImportError:
        typer.echo(f"cascade: {METRICS_HINT}", err=True)
        raise typer.Exit(1) from None
    return host, port


METRICS_HINT = "--metrics-listen needs its extra: pip install 'cascade-cli[metrics]'"


class _CannotListen(Exception):
    """``--metrics-listen``'s address cannot be bound (the reason)."""


class _Exporter:
    """`cascade record`'s metrics: a watch state of their own, fed by the recorder, served
    from the loop (:class:`~cascade.cli.metrics.MetricsServer`)."""

    def __init__(self, prefix: str) -> None:
        from .metrics import CascadeMetrics

        self.metrics = CascadeMetrics(WatchState(prefix=prefix))
        self.server: MetricsServer | None = None

    async def serve(self, address: tuple[str, int]) -> str:
        """Listen on ``address``; the metrics' URL. :class:`_CannotListen` if it cannot."""
        from .metrics import CONTENT_TYPE, MetricsServer

        host, port = address
        try:
            sock = bind(host, port)
        except OSError as exc:
            raise _CannotListen(exc.strerror or str(exc)) from None
        self.server = MetricsServer(sock, self.metrics.render, CONTENT_TYPE)
        await self.server.start()
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{self.server.port}/metrics"

    async def stop(self) -> None:
        """Stop serving (if it did)."""
        if self.server is not None:
            await self.server.stop()


NO_SHARING = (
    "this broker does not deliver to shared subscriptions ($share/{group}/...): this recorder "
    "records every message, as each of the group does (the history stores each event once)"
)
_MAX_EXPIRY = 0xFFFFFFFF  # MQTT 5's largest session expiry: the session never expires


def _check_client_id(client_id: str) -> None:
    """MQTT client ids are UTF-8 strings of at most 65,535 bytes; brokers want them non-empty."""
    try:
        size = len(client_id.encode("utf-8"))
    except UnicodeEncodeError:
        size = -1
    if not 0 < size <= 65_535:
        raise typer.BadParameter(
            "must be a non-empty UTF-8 string of at most 65,535 bytes", param_hint="'--client-id'"
        )


def _with_unreadable(stats: RecorderStats, unreadable: int) -> RecorderStats:
    """The recorder's counts with the payloads its connector rejected (not JSON objects) as
    received and rejected: the recorder never saw them, but they reached this process."""
    return dataclasses.replace(
        stats, received=stats.received + unreadable, rejected=stats.rejected + unreadable
    )


def _check_group(group: str) -> None:
    """A shared subscription's group: a non-empty topic level without wildcards."""
    if not group or any(c in group for c in "/+#\x00"):
        raise typer.BadParameter(
            "must be a non-empty name without '/', '+', '#' or NUL", param_hint="'--share'"
        )


def _summary(stats: RecorderStats, history: History) -> str:
    return (
        f"recorded into {history.location}: {stats.received:,} received, "
        f"{stats.stored:,} stored, {stats.duplicates:,} duplicates, "
        f"{stats.rejected:,} rejected, {stats.dropped:,} dropped, "
        f"{stats.gaps:,} missed (gaps in the events' numbers)"
    )


@contextlib.contextmanager
def _stop_on_signals(stop: Any) -> Any:
    """SIGINT (Ctrl-C) and SIGTERM call ``stop`` instead of interrupting, so the recorder writes
    what it has queued and ends cleanly; where the loop cannot take signals, nothing changes."""
    loop = asyncio.get_running_loop()
    installed = []
    for number in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(number, stop)
        except (NotImplementedError, RuntimeError, ValueError):  # Windows, or not the main thread
            continue
        installed.append(number)
    try:
        yield
    finally:
        for number in installed:
            loop.remove_signal_handler(number)
