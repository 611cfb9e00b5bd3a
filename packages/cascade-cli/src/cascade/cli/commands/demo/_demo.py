"""`cascade demo`: a sample workflow run live, with the control loop shown at work."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.text import Text

from cascade.connector_kit import bounded
from cascade.control import Controller
from cascade.interfaces import (
    Connector,
    Message,
    constraints_filter,
    status_filter,
    telemetry_filter,
)
from cascade.reader import ReaderModel
from cascade.runtime import Engine, RunCancelledError, TaskFailedError, task

from ...plumbing._broker import BrokerOptions, ConnectorFactory
from ...plumbing._engine_connector import engine_connector
from ...plumbing._invocation import cascade_command
from ...rendering._plural import counted
from ...rendering._render import render_watch
from ._demo_summary import demo_summary

__all__ = [
    "API_RATE",
    "API_REASON",
    "DEMO_OPERATOR",
    "LIMITED",
    "PAUSED",
    "Pace",
    "build_workflow",
    "demo_broker",
    "demo_engine_connector",
    "natural_seconds",
    "run_demo",
]

API_RATE = 2.0  # api_* task starts per second, at the natural pace
API_REASON = "the demo's API quota"
DEMO_OPERATOR = "cascade demo"  # who the demo's constraints say they were issued by
PAUSE_SECONDS = 3.0
PAUSED = "task:transform"  # what the demo pauses
LIMITED = "task:api_*"  # what it rate-limits
LIMIT_TTL = 120.0


@dataclass
class Pace:
    """How much slower than its natural pace the demo runs (``--duration``): every task's
    work, the pause and the rate limit's interval are stretched by ``factor``."""

    factor: float = 1.0

    def seconds(self, natural: float) -> float:
        """``natural`` seconds at this pace."""
        return natural * self.factor


PACE = Pace()


def natural_seconds(tasks: int) -> float:
    """About how long the run of ``build_workflow(tasks)`` lasts at the natural pace: the pause,
    then the api_* tasks beyond the rate limit's initial burst, then the fan-in."""
    parts = max(2, (tasks - 4) // 3)
    return PAUSE_SECONDS + max(0, parts - API_RATE) / API_RATE + 1.0


@task
async def extract(part: int) -> list[int]:
    """Fetch one partition of the input."""
    await asyncio.sleep(PACE.seconds(random.uniform(0.5, 1.5)))
    return list(range(part * 10, part * 10 + 10))


@task
def transform(rows: list[int]) -> int:
    """CPU-bound work, run in a thread."""
    time.sleep(PACE.seconds(random.uniform(0.3, 0.8)))
    return sum(row * 2 for row in rows)


@task(name="api_enrich")
async def api_enrich(value: int) -> int:
    """A call to a rate-limited API (the demo limits task:api_* before the run)."""
    await asyncio.sleep(PACE.seconds(0.05))
    return value + 1


_flaky_attempts: dict[str, int] = {}


@task
async def flaky_lookup(key: str) -> str:
    """Fails twice, then succeeds: retried by the engine."""
    _flaky_attempts[key] = _flaky_attempts.get(key, 0) + 1
    await asyncio.sleep(PACE.seconds(0.2))
    if _flaky_attempts[key] < 3:
        raise ConnectionError(f"lookup of {key!r} timed out (attempt {_flaky_attempts[key]})")
    return key.upper()


@task
async def validate_checksums(parts: int) -> None:
    """Always fails: shows a failure and the tasks it skips."""
    await asyncio.sleep(PACE.seconds(0.5))
    raise ValueError(f"checksum mismatch in partition {parts - 1}")


@task
async def publish_report(checked: None, label: str) -> str:
    """Depends on the failing validation, so it is skipped."""
    return label


@task
async def load(values: list[int], label: str) -> int:
    """Fan-in of everything transformed and enriched."""
    await asyncio.sleep(PACE.seconds(0.2))
    return sum(values)


def _say(console: Console, message: str) -> None:
    console.print(f"[dim]{time.strftime('%H:%M:%S')}[/dim] {message}")


def build_workflow(tasks: int) -> list[Any]:
    """About ``tasks`` tasks: fan-out, a rate-limited group, a retry, a failure, a fan-in.

    Each workflow built shows the retries again (the flaky lookup fails twice anew).
    """
    _flaky_attempts.clear()
    parts = max(2, (tasks - 4) // 3)
    enriched = [api_enrich(transform(extract(part))) for part in range(parts)]
    label = flaky_lookup.with_retry(max_attempts=3, delay=0.3)("daily")
    return [load(enriched, label), publish_report(validate_checksums(parts), label)]


@contextlib.asynccontextmanager
async def demo_broker(options: BrokerOptions, console: Console) -> AsyncIterator[BrokerOptions]:
    """``options`` as they are with a ``--host``; else an embedded broker's, while it runs."""
    if options.host is not None:
        yield options
        return
    from cascade.connectors.mqtt import EmbeddedBroker

    async with EmbeddedBroker() as broker:
        address = f"{broker.host}:{broker.port}"
        console.print(
            f"[dim]embedded MQTT broker on {address}, gone when the demo ends ("
            f"{cascade_command()} demo --duration 60 keeps it a minute); meanwhile, watch it "
            "from another terminal:[/]",
            soft_wrap=True,
        )
        console.print(f"[dim]  {cascade_command()} watch --host {address}[/]", soft_wrap=True)
        yield replace(options, host=broker.host, port=broker.port)


def demo_engine_connector(broker: BrokerOptions) -> Connector:
    """The demo engine's connector to ``broker`` (``cascade demo`` and ``dashboard --demo``):
    an engine's (:func:`~cascade.cli.plumbing._engine_connector.engine_connector`), as
    ``cascade-demo-engine``."""
    return engine_connector(broker, "cascade-demo-engine")


async def steer(
    control: Controller, state: ReaderModel, changed: asyncio.Event, console: Console
) -> None:
    """Pause the transforms as the run starts (before any can), then resume them.

    The run cannot finish while they are paused, so the resume is always shown.
    """
    while not state.runs:
        await changed.wait()
        changed.clear()
    # the pause expires when the demo says; the resume below only makes that visible at once
    seconds = PACE.seconds(PAUSE_SECONDS)
    await control.pause(PAUSED, ttl=seconds, reason="the demo shows a pause")
    _say(console, f"paused {PAUSED} for {seconds:.3g}s")
    await asyncio.sleep(seconds)
    await control.resume(PAUSED, type="pause")
    _say(console, f"resumed {PAUSED}")


async def cleared(
    state: ReaderModel, changed: asyncio.Event, topics: list[str], seconds: float
) -> None:
    """Wait (at most ``seconds``) until the view has heard that ``topics`` were cleared."""
    with contextlib.suppress(asyncio.TimeoutError):
        async with bounded(seconds):
            while any(topic in state.constraints for topic in topics):
                changed.clear()
                await changed.wait()


async def run_demo(
    options: BrokerOptions,
    tasks: int,
    factory: ConnectorFactory,
    console: Console,
    duration: float | None = None,
) -> bool:
    """Run the demo; returns whether it went as planned (one task fails on purpose).

    ``duration``: about how many seconds the run lasts (paced; default: its natural
    pace, :func:`natural_seconds`).
    """

    PACE.factor = 1.0 if duration is None else duration / natural_seconds(tasks)
    api_rate = f"{API_RATE / PACE.factor:.3g}/s"

    async with demo_broker(options, console) as broker, contextlib.AsyncExitStack() as stack:
        watcher = factory(broker)
        await watcher.connect(require=True)
        stack.push_async_callback(watcher.disconnect)
        prefix = watcher.topic_prefix
        state = ReaderModel(prefix=prefix)
        changed = asyncio.Event()

        def apply(message: Message) -> None:
            state.apply(message)
            changed.set()

        for topic_filter in (
            telemetry_filter(prefix=prefix),
            status_filter(prefix),
            constraints_filter(prefix),
        ):
            await watcher.subscribe(topic_filter, apply)
        if options.host is not None:  # a broker of the user's: say what the demo joins
            held = _cascade_state(state)
            if held:
                console.print(
                    f"[yellow]warning: {_shown_host(options)} already holds Cascade state "
                    f"({held}): the demo's run, its constraints and its engine's retained "
                    "status join it (`cascade demo` without --host runs on a broker of its "
                    "own)[/]",
                    soft_wrap=True,
                )

        limit_ttl = max(LIMIT_TTL, 2 * (duration or 0))
        control = Controller(watcher, issued_by=DEMO_OPERATOR, timeout=broker.timeout)
        await control.limit(LIMITED, rate=api_rate, ttl=limit_ttl, reason=API_REASON)
        _say(
            console,
            f"rate-limited task:api_* to {api_rate} until the run ends (at most {limit_ttl:g}s)",
        )

        engines_link = demo_engine_connector(broker)
        # Enough parallelism that a larger --tasks still finishes within a minute.
        engine = Engine(engines_link, max_concurrency=max(4, tasks // 6), heartbeat_interval=1.0)
        started = time.monotonic()
        run = asyncio.create_task(engine.run(build_workflow(tasks)))
        steering = asyncio.create_task(steer(control, state, changed, console))
        outcome = Text()
        with Live(render_watch(state), console=console, refresh_per_second=8) as live:
            while not run.done():
                await asyncio.wait({run}, timeout=0.125)
                live.update(render_watch(state))
            steering.cancel()
            await asyncio.gather(steering, return_exceptions=True)
            elapsed = time.monotonic() - started
            try:
                run.result()
                outcome = Text("the run succeeded, but a task was meant to fail", style="red")
                planned = False
            except TaskFailedError as exc:
                outcome = Text(f"run finished; as planned, {exc.task_name} failed", style="green")
                planned = True
            except RunCancelledError as exc:  # SIGTERM, or a cascade cancel from elsewhere
                outcome = Text(f"the run was stopped: {exc}", style="red")
                planned = False
            unlimited = await control.resume(LIMITED, type="rate_limit")
            await control.resume(PAUSED, type="pause")
            await cleared(state, changed, list(unlimited.topics), broker.timeout)
            live.update(render_watch(state))
        if not console.is_terminal:
            console.line()  # piped, Live's last frame ends without a newline
        console.print(outcome)
        console.print(
            demo_summary(
                next(iter(state.runs.values()), None),
                elapsed,
                host=None if options.host is None else _shown_host(options),
                retried={"flaky_lookup": max(_flaky_attempts.values(), default=0)},
                paused=f"task:transform was paused for {PACE.seconds(PAUSE_SECONDS):.3g}s "
                "and resumed",
                limited=f"task:api_* rate-limited to {api_rate}",
            )
        )
        return planned


def _cascade_state(state: ReaderModel) -> str:
    """What Cascade state a broker retains, as the demo's watcher took it in on subscribing
    (``""``: none): its engines' statuses and the constraints in force."""
    said = []
    if state.engines:
        said.append(counted(len(state.engines), "engine's status", "engines' statuses"))
    if state.constraints:
        said.append(counted(len(state.constraints), "constraint"))
    return ", ".join(said)


def _shown_host(options: BrokerOptions) -> str:
    """``--host`` as a user would type it again: without the port when it is MQTT's own."""
    if options.other_hosts or options.port != 1883:
        return options.address
    return options.host or "localhost"
