"""What `cascade run` says of a run's name and origin: its name, the served workflow and its
params, the schedule and slot that started it, who started it and why, the run it reruns and
how that one ended, the runs that rerun it and how each ended, and the tasks whose stored
results it reused, by their run."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from rich.text import Text

from cascade.control.run_ids import short_id
from cascade.reader import SHOWN, inert

from ..runs._runs import RUN_STYLES, schedule_slot

if TYPE_CHECKING:
    from cascade.history import RunLink, RunSummary

    from ...rendering._render import TimeFormat

__all__ = ["lineage_lines", "lost_lines"]

_LINKS_SHOWN = 5  # the reruns of a run listed at most


def _link(link: RunLink) -> Text:
    """``58a88765cea2 (Failed)``: a run's short id and how it stands (``not recorded``: the
    history does not have it)."""
    text = Text(inert(short_id(link.run_id), SHOWN["name"]), style="bold")
    if link.status is None:
        return text.append(" (not recorded)", style="dim")
    return text.append(" (").append(link.status, RUN_STYLES.get(link.status, "")).append(")")


def _params(params: object) -> str:
    """The params as JSON, made inert and bounded."""
    return inert(json.dumps(params, sort_keys=True, ensure_ascii=False), SHOWN["params"])


def _replacement(link: RunLink) -> Text:
    """A run that reran this one, and where a server carried it on, the engine that died."""
    if link.lost_engine is None:
        return _link(link)
    engine = inert(link.lost_engine, SHOWN["name"])
    return _link(link).append(f" (carried on after {engine} died)")


def lineage_lines(summary: RunSummary, reused: dict[str, int], times: TimeFormat) -> list[Text]:
    """The lines of a run's name, workflow, params, schedule and slot (in ``times``' zone),
    start request, lineage and reuse (none for an unnamed run of an older engine)."""
    lines: list[Text] = []
    origin = summary.origin or {}
    named = []
    if summary.name is not None:
        named.append(f"name {inert(summary.name, SHOWN['name'])}")
    if origin.get("workflow") is not None:
        named.append(f"workflow {inert(str(origin['workflow']), SHOWN['name'])}")
    if "params" in origin:
        named.append(f"params {_params(origin['params'])}")
    if named:
        lines.append(Text("  ".join(named)))
    slot = schedule_slot(summary, times, at=True)
    if slot is not None:
        lines.append(Text(f"scheduled: {slot[0]}, slot {slot[1]}"))
    if origin.get("request_id") is not None:
        who = inert(str(origin.get("issued_by") or "someone unnamed"), SHOWN["name"])
        said = Text(f"started by {who} (request {inert(str(origin['request_id']), 64)})")
        if origin.get("reason"):
            said.append(f": {inert(str(origin['reason']), SHOWN['reason'])}")
        lines.append(said)
    if summary.rerun_of is not None:
        line = Text("rerun of ").append_text(_link(summary.rerun_of))
        if summary.carried_on_from is not None:
            engine = inert(str(summary.lost_engine or "its engine"), SHOWN["name"])
            line = Text("carried on from ").append_text(_link(summary.rerun_of))
            line.append(f" after {engine} died")
        root = summary.root_run
        if root is not None and root != summary.rerun_of.run_id:
            line.append(f", first run {inert(short_id(root), SHOWN['name'])}")
        lines.append(line)
    if summary.replaced_by:
        shown = summary.replaced_by[-_LINKS_SHOWN:]
        line = Text("replaced by ").append_text(
            Text(", ").join(_replacement(link) for link in shown)
        )
        if len(summary.replaced_by) > len(shown):
            line.append(f" (the last {len(shown)} of {len(summary.replaced_by):,})", style="dim")
        lines.append(line)
    if summary.status == "Lost" and not summary.replaced_by:
        run = short_id(summary.run_id)
        entry = "" if summary.workflow is not None else " --entrypoint FILE.py:FUNCTION"
        lines.append(
            Text(
                f"lost with its engine: `cascade rerun {run}{entry}` carries it on from what it "
                "kept (docs/durability.md)",
                style="yellow",
            )
        )
    if reused:
        total = sum(reused.values())
        runs = ", ".join(inert(short_id(run_id), SHOWN["name"]) for run_id in reused)
        task_s = "task's result" if total == 1 else "tasks' results"
        lines.append(Text(f"reused: {total:,} {task_s} from run {runs}", style="cyan"))
    return lines


def lost_lines(summary: RunSummary, times: TimeFormat) -> list[Text]:
    """A lost run's line: ``lost at 14:02:11 when its engine srv-1 went offline; carried on
    as 9f3c2a17b0d4 at srv-2`` (the last server that carried it on, where one did); none for
    a run not lost."""
    if summary.status != "Lost":
        return []
    when = f" at {times.at(summary.lost_at)}" if summary.lost_at is not None else ""
    engine = inert(summary.source, SHOWN["source"])
    said = Text(f"lost{when} when its engine {engine} went offline", style="magenta")
    carried = [link for link in summary.replaced_by if link.lost_engine is not None]
    if carried:
        link = carried[-1]
        by = f" at {inert(link.source, SHOWN['source'])}" if link.source is not None else ""
        said.append(f"; carried on as {inert(short_id(link.run_id), SHOWN['name'])}{by}")
    return [said]
