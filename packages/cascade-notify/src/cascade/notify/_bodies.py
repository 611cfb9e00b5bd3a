"""The JSON a webhook receives: ``generic`` (every field, for a program) or ``slack`` (a Slack
incoming webhook's ``{"text", "blocks"}``, which Mattermost and Discord's Slack endpoint read too),
for one event or a digest of many."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime, timezone
from typing import Any

from ._notification import Notification

__all__ = ["FORMATS", "body", "digest_body", "headline"]

FORMATS = ("generic", "slack")
_SHOWN_IN_DIGEST = 10  # events a digest names one by one
_TEXT = 2900  # Slack cuts a section's text at 3000 characters


def _when(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="seconds")


def headline(n: Notification) -> str:
    """One line: what happened to what."""
    run = n.run_name or n.workflow or n.run_id[:12]
    where = f"{n.org_id}/{n.project_id}" if n.org_id else ""
    if n.kind == "run.failed":
        return f"run {run} ({n.run_id[:12]}) failed in {where}" + (
            f": task {n.task_name} ({n.task_id})" if n.task_id else ""
        )
    if n.kind == "run.succeeded":
        return f"run {run} ({n.run_id[:12]}) succeeded in {where}"
    if n.kind == "run.lost":
        return (
            f"run {run} ({n.run_id[:12]}) lost in {where}: its engine {n.source} died and no "
            "server carried it on"
        )
    if n.kind == "run.carried_on":
        lost = (n.carried_on_from or "")[:12]
        return (
            f"run {run} ({lost}) carried on as {n.run_id[:12]} by {n.source} in {where}: "
            f"its engine {n.lost_engine or '?'} died"
        )
    if n.kind in ("task.held", "hold.deadline"):
        what = "awaits approval" if n.prompt is not None else f"is held at attempt {n.attempt}"
        lead = "task" if n.kind == "task.held" else "deadline near: task"
        return f"{lead} {n.task_name} ({n.task_id}) of run {run} ({n.run_id[:12]}) {what}"
    runs = f", running {len(n.runs)} run{'s' if len(n.runs) != 1 else ''}" if n.runs else ""
    return f"engine {n.source} lost its connection{runs}"


def _details(n: Notification) -> list[str]:
    lines = []
    if n.error_line:
        lines.append(f"error: {n.error_line}")
    if n.error and n.error != n.error_line:
        lines.append(f"run's error: {n.error}" if n.kind == "run.failed" else n.error)
    if n.prompt:
        lines.append(f"asks: {n.prompt}")
    if n.deadline is not None:
        lines.append(f"{n.default or 'its default'} at {_when(n.deadline)} unless decided")
    if n.kind == "engine.lost" and n.runs:
        lines.append("runs: " + ", ".join(run[:12] for run in n.runs[:10]))
    return lines


def body(n: Notification, fmt: str) -> dict[str, Any]:
    """The JSON posted for ``n`` in format ``fmt`` (of :data:`FORMATS`)."""
    if fmt == "slack":
        text = headline(n)
        detail = "\n".join(_details(n))
        blocks: list[dict[str, Any]] = [
            {"type": "section", "text": {"type": "plain_text", "text": text[:_TEXT]}}
        ]
        if detail:
            blocks.append(
                {"type": "section", "text": {"type": "plain_text", "text": detail[:_TEXT]}}
            )
        if n.url:
            blocks.append(
                {"type": "section", "text": {"type": "mrkdwn", "text": f"<{n.url}|open the run>"}}
            )
        blocks.append(
            {"type": "context", "elements": [{"type": "plain_text", "text": _context(n)}]}
        )
        return {"text": text, "blocks": blocks}
    fields = {k: v for k, v in asdict(n).items() if v not in (None, "", ())}
    fields["runs"] = list(n.runs) if n.runs else None
    return {
        "event": n.kind,
        "text": headline(n),
        **{k: v for k, v in fields.items() if v is not None and k != "kind"},
        "at": _when(n.at),
    }


def _context(n: Notification) -> str:
    said = [n.kind, _when(n.at)]
    if n.source:
        said.append(f"engine {n.source}")
    return " · ".join(said)


def digest_body(items: Sequence[Notification], fmt: str) -> dict[str, Any]:
    """One JSON standing for ``items`` (posted when more came than the rate allows)."""
    kinds = Counter(n.kind for n in items)
    text = f"{len(items)} events: " + ", ".join(f"{count} {kind}" for kind, count in kinds.items())
    lines = [headline(n) for n in items[:_SHOWN_IN_DIGEST]]
    if len(items) > _SHOWN_IN_DIGEST:
        lines.append(f"… and {len(items) - _SHOWN_IN_DIGEST} more")
    if fmt == "slack":
        return {
            "text": text,
            "blocks": [
                {"type": "section", "text": {"type": "plain_text", "text": text[:_TEXT]}},
                {
                    "type": "section",
                    "text": {"type": "plain_text", "text": "\n".join(lines)[:_TEXT]},
                },
            ],
        }
    return {
        "event": "digest",
        "text": text,
        "counts": dict(kinds),
        "events": [body(n, "generic") for n in items],
    }
