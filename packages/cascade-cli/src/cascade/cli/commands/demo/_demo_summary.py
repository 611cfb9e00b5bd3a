"""What `cascade demo` says at its end: what ran, what failed on purpose, what to try next."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text

from cascade.control.run_ids import short_id
from cascade.reader import RunView, inert

from ...plumbing._invocation import cascade_command
from ...rendering._plural import counted

__all__ = ["demo_summary"]


def _next_steps(host: str | None) -> Table:
    """Commands to try, with the broker's address where the demo had one that outlives it."""
    cascade = cascade_command()
    steps = Table.grid(padding=(0, 2))
    steps.add_column(no_wrap=True, style="bold")
    steps.add_column()
    if host is None:
        steps.add_row(
            f"{cascade} demo --duration 60",
            "a minute-long run: watch it from another terminal with the watch line it prints first",
        )
        steps.add_row(f"{cascade} dashboard --demo", "the same workflow in a web page")
        steps.add_row(
            f"{cascade} demo --host localhost",
            "on a broker of your own (mosquitto on localhost:1883), which outlives the demo: "
            "then watch, dashboard and record with --host localhost",
        )
        return steps
    steps.add_row(f"{cascade} watch --host {host}", "the live view of every run on this broker")
    steps.add_row(
        f"{cascade} dashboard --host {host}",
        "the same in a web page, read-only (--token NAME=SECRET turns its controls on)",
    )
    steps.add_row(
        f"{cascade} record --host {host}",
        f"keeps every run in a history (then: {cascade} runs, {cascade} run ID)",
    )
    steps.add_row(f"{cascade} demo --host {host}", "again, with one of the above watching")
    return steps


def demo_summary(
    run: RunView | None,
    elapsed: float,
    *,
    host: str | None,
    retried: dict[str, int],
    paused: str,
    limited: str,
) -> Group:
    """The demo's closing words.

    ``run``: the demo's run as the demo's own reader saw it over the broker
    (``None`` if nothing was heard); ``host``: the ``--host`` it ran on, or
    ``None`` for its embedded broker (gone with the demo); ``retried``: task
    name to attempts made; ``paused`` and ``limited``: what the demo sent.
    """
    said = Table.grid(padding=(0, 1))
    said.add_column(no_wrap=True)
    said.add_column()
    if run is None:
        said.add_row("·", Text("the demo's reader heard nothing of its run", style="red"))
    else:
        counts = run.counts()
        states = ", ".join(f"{n} {state.lower()}" for state, n in sorted(counts.items()))
        where = "its embedded broker" if host is None else host
        said.add_row(
            "·",
            f"run {short_id(run.run_id)}: {counted(sum(counts.values()), 'task')} in "
            f"{elapsed:.1f}s on {where}: {states or 'none seen'}",
        )
        skipped = counts["SKIPPED"]
        needing = "task needing its result was" if skipped == 1 else "tasks needing its result were"
        after = f"; {skipped:,} {needing} skipped" if skipped else ""
        for failed in run.failed_tasks():
            said.add_row(
                "·",
                f"{inert(failed.name, 200)} failed on purpose ({inert(failed.error, 300)}){after}",
            )
    for name, attempts in sorted(retried.items()):
        if attempts > 1:
            said.add_row(
                "·",
                f"{name} failed {counted(attempts - 1, 'time')} and succeeded on attempt "
                f"{attempts}: the engine retried it",
            )
    said.add_row(
        "·",
        f"{paused}, and {limited}: constraints sent over the broker, as `cascade pause` and "
        "`cascade limit` send them",
    )
    lines: list[Text | Table] = [Text("\nWhat happened", style="bold"), said]
    lines.append(Text("\nTry next", style="bold"))
    lines.append(_next_steps(host))
    return Group(*lines)
