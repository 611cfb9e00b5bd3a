"""What `cascade record` runs on: its progress line, its metrics exporter, the checks of
its options, its summary, and stopping on signals (the command is :mod:`.commands.record`)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import signal
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.live import Live
from rich.text import Text

from cascade.connector_kit import event_set
from cascade.interfaces import CascadeError
from cascade.reader import ReaderModel

from ...plumbing._listen import parse_listen
from ...rendering._plural import counted
from ...rendering._render import duration

if TYPE_CHECKING:
    from cascade.history import History, RecorderStats
    from cascade.metrics import MetricsServer

__all__ = [
    "CannotListen",
    "DEFAULT_QUEUE",
    "Exporter",
    "MAX_EXPIRY",
    "METRICS_HINT",
    "NO_SHARING",
    "SHORT_KEEP",
    "SILENT_RUN_KEPT",
    "STOP_TIMEOUT",
    "check_client_id",
    "check_group",
    "metrics_address",
    "record_until_stopped",
    "recording_summary",
    "serve_metrics",
    "stop_on_signals",
    "with_unreadable",
]

STOP_TIMEOUT = 5.0  # seconds a stop waits for the queued messages to be written
DEFAULT_QUEUE = 100_000
SHORT_KEEP = 60.0  # seconds: a --keep below it needs --yes (0 deletes everything at once)


async def record_until_stopped(
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
            await event_set(stop, min(1.0, left) if left is not None else 1.0)
            if console.is_terminal:
                live.update(progress.line(), refresh=True)


class _Progress:
    """The terminal's progress line: the rate since the last line, and the counters."""

    def __init__(self, recorder: Any, connector: Any) -> None:
        self.recorder = recorder
        self.connector = connector
        self.last = (time.monotonic(), 0)

    def line(self) -> Text:
        stats = with_unreadable(self.recorder.stats, self.connector.stats.rejected)
        now = time.monotonic()
        then, received = self.last
        rate = (stats.received - received) / (now - then) if now > then else 0.0
        self.last = (now, stats.received)
        text = Text(
            f"{rate:,.0f} events/s · stored {stats.stored:,} · duplicates {stats.duplicates:,}"
            f" · rejected {stats.rejected:,} · refused {stats.refused:,}"
            f" · dropped {stats.dropped:,}"
            f" · gaps {'per run (shared)' if self.recorder.sharing else f'{stats.gaps:,}'}"
            f" · lag {duration(stats.lag)}"
        )
        if stats.behind:
            text.append(f" · behind ({stats.queued:,} queued, {stats.shed:,} shed)", style="red")
        if stats.last_error and stats.lag > 1:
            text.append(" · database: ", style="red").append(stats.last_error[:200], style="red")
        return text


def metrics_address(value: str) -> tuple[str, int]:
    """``--metrics-listen``'s HOST:PORT (a usage error, exit 2, otherwise); the extra it needs
    is checked here too, before anything starts."""
    host, port = parse_listen(value, "--metrics-listen")
    try:
        import prometheus_client  # noqa: F401
    except ImportError:
        typer.echo(f"cascade: {METRICS_HINT}", err=True)
        raise typer.Exit(1) from None
    return host, port


METRICS_HINT = "--metrics-listen needs its extra: pip install 'cascade-cli[metrics]'"


class CannotListen(CascadeError):
    """``--metrics-listen``'s address cannot be bound: ``cannot listen on ADDRESS: reason``."""


SILENT_RUN_KEPT = 120.0
"""Seconds the metrics' state keeps a run it has heard nothing of (its end shed, or its engine
dead): a live run's engine sends a heartbeat every 5 s. The readers' default, ten minutes, held
every run whose end a recorder behind shed for that long, a thousand tasks each: its memory grew
by 13 MB a minute through a 12-minute soak (issue 91). The recorder's gap counter forgets such a
run after as long."""


class Exporter:
    """`cascade record`'s metrics: a watch state of their own, fed by the recorder, served
    from the loop (:class:`~cascade.metrics.MetricsServer`), at ``listen`` (``--metrics-listen``
    as given). The state keeps the last 20 runs that ended, and a run it hears nothing of for
    :data:`SILENT_RUN_KEPT` seconds."""

    def __init__(self, prefix: str, listen: str) -> None:
        from cascade.metrics import CascadeMetrics

        # counts only: no run's graph is read or kept (the history stores them); reading each
        # run's was a fortieth of the recorder's time in the soak, and held a thousand nodes
        state = ReaderModel(prefix=prefix, keep_for=SILENT_RUN_KEPT, max_graph_nodes=0)
        self.metrics = CascadeMetrics(state)
        self.server: MetricsServer | None = None
        self.listen = listen

    def follow(self, stats: Callable[[], RecorderStats]) -> None:
        """Serve the recorder's own figures too (``cascade_recorder_*``), read from ``stats``
        at each scrape: whether it keeps up, while it happens."""
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
        from prometheus_client.registry import Collector

        class RecorderCollector(Collector):
            def collect(self) -> Any:
                now = stats()
                yield GaugeMetricFamily(
                    "cascade_recorder_queued",
                    "Messages received and not yet written to the history.",
                    value=now.queued,
                )
                yield GaugeMetricFamily(
                    "cascade_recorder_lag_seconds",
                    "Seconds the oldest message not yet written has waited.",
                    value=now.lag,
                )
                yield GaugeMetricFamily(
                    "cascade_recorder_behind",
                    "1 while the recorder does not keep up (its queue a tenth full or more).",
                    value=int(now.behind),
                )
                yield CounterMetricFamily(
                    "cascade_recorder_dropped",
                    "Valid messages lost: the queue was full (or unwritten at the stop).",
                    value=now.dropped,
                )
                yield CounterMetricFamily(
                    "cascade_recorder_shed",
                    "Messages its connector discarded unread: it read too slowly for the broker.",
                    value=now.shed,
                )
                yield CounterMetricFamily(
                    "cascade_recorder_stored",
                    "Messages new to the history, written.",
                    value=now.stored,
                )

        self.metrics.registry.register(RecorderCollector())

    async def serve(self, address: tuple[str, int]) -> str:
        """Listen on ``address`` (:attr:`listen`'s); the metrics' URL. :class:`CannotListen` if
        it cannot."""
        self.server, url = await serve_metrics(self.metrics.render, address, self.listen)
        return url

    async def stop(self) -> None:
        """Stop serving (if it did)."""
        if self.server is not None:
            await self.server.stop()


async def serve_metrics(
    render: Callable[[], bytes], address: tuple[str, int], listen: str
) -> tuple[MetricsServer, str]:
    """Serve ``render()`` at ``/metrics`` on ``address`` (``--metrics-listen``'s, given as
    ``listen``): the server and its URL. :class:`CannotListen` if it cannot listen there."""
    from cascade.metrics import CONTENT_TYPE, MetricsServer, bind

    host, port = address
    try:
        sock = bind(host, port)
    except OSError as exc:
        raise CannotListen(f"cannot listen on {listen}: {exc.strerror or exc}") from None
    server = MetricsServer(sock, render, CONTENT_TYPE)
    await server.start()
    shown = f"[{host}]" if ":" in host else host
    return server, f"http://{shown}:{server.port}/metrics"


NO_SHARING = (
    "this broker does not deliver to shared subscriptions ($share/{group}/...): this recorder "
    "records every message, as each of the group does (the history stores each event once)"
)
MAX_EXPIRY = 0xFFFFFFFF  # MQTT 5's largest session expiry: the session never expires


def check_client_id(client_id: str) -> None:
    """MQTT client ids are UTF-8 strings of at most 65,535 bytes; brokers want them non-empty."""
    try:
        size = len(client_id.encode("utf-8"))
    except UnicodeEncodeError:
        size = -1
    if not 0 < size <= 65_535:
        raise typer.BadParameter(
            "must be a non-empty UTF-8 string of at most 65,535 bytes", param_hint="'--client-id'"
        )


def with_unreadable(stats: RecorderStats, unreadable: int) -> RecorderStats:
    """The recorder's counts with the payloads its connector rejected (not JSON objects) as
    received and rejected: the recorder never saw them, but they reached this process."""
    return dataclasses.replace(
        stats, received=stats.received + unreadable, rejected=stats.rejected + unreadable
    )


def check_group(group: str) -> None:
    """A shared subscription's group: a non-empty topic level without wildcards."""
    if not group or any(c in group for c in "/+#\x00"):
        raise typer.BadParameter(
            "must be a non-empty name without '/', '+', '#' or NUL", param_hint="'--share'"
        )


def recording_summary(stats: RecorderStats, history: History) -> str:
    return (
        f"recorded into {history.location}: {stats.received:,} received, "
        f"{stats.stored:,} stored, {stats.duplicates:,} duplicates, "
        f"{stats.rejected:,} rejected, {stats.refused:,} refused, {stats.dropped:,} dropped, "
        f"{stats.gaps:,} missed (gaps in the events' numbers)"
        + (
            f", {stats.unfollowed:,} runs no longer followed before their end"
            if stats.unfollowed
            else ""
        )
        + (
            f", {counted(stats.ends_from_summaries, 'run')} ended while it was away, as their "
            "engines' summaries said"
            if stats.ends_from_summaries
            else ""
        )
    )


@contextlib.contextmanager
def stop_on_signals(stop: Any) -> Any:
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
