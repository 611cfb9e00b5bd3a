"""The held tasks' metrics: how many tasks wait for a decision, and since when, by org and
project (:func:`~cascade.reader.held_tasks`, the one read of them, at scrape
time)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric

from cascade.reader import ReaderModel, held_tasks

from ._labels import OTHER, LabelCap, label_value

__all__ = ["held_metrics"]


def held_metrics(
    state: ReaderModel, now: float, orgs: LabelCap, projects: LabelCap
) -> Iterator[Metric]:
    """``cascade_tasks_held`` and ``cascade_task_hold_age_seconds`` by org and project: the
    live runs' tasks held for a decision, and the oldest one's age (0 for the projects of the
    runs the reader holds that hold none). A pair whose org or project is beyond its label's
    cap is counted under ``_other`` for both."""
    keys: dict[tuple[str, str], tuple[str, str]] = {}

    def key(org: str, project: str) -> tuple[str, str]:
        found = keys.get((org, project))
        if found is None:
            admitted = orgs.admits(org) and projects.admits(project)
            found = (label_value(org), label_value(project)) if admitted else (OTHER, OTHER)
            keys[(org, project)] = found
        return found

    count: dict[tuple[str, str], int] = {}
    oldest: dict[tuple[str, str], float] = {}
    for run in state.runs.values():  # every project the reader holds a run of has its series
        count.setdefault(key(run.org_id, run.project_id), 0)
    for held in held_tasks(state):  # the longest held first
        pair = key(held.org_id, held.project_id)
        count[pair] += 1
        oldest.setdefault(pair, now - held.since)
    tasks = GaugeMetricFamily(
        "cascade_tasks_held",
        'Tasks that failed and wait for a decision now (on_failure="hold"), by org and project.',
        labels=["org", "project"],
    )
    ages = GaugeMetricFamily(
        "cascade_task_hold_age_seconds",
        "Seconds the longest held task of the org and project has waited for a decision.",
        labels=["org", "project"],
    )
    for pair in sorted(count):
        tasks.add_metric(list(pair), count[pair])
        ages.add_metric(list(pair), max(0.0, oldest.get(pair, 0.0)))
    yield tasks
    yield ages
