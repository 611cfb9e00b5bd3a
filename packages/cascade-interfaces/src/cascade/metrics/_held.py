"""The held tasks' metrics: how many tasks wait for a decision, and since when, by org and
project (read from the reader's state at scrape time)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from prometheus_client.core import GaugeMetricFamily, Metric

from cascade.interfaces.reader import RunView

from ._labels import OTHER, LabelCap, label_value

__all__ = ["held_metrics"]


def held_metrics(
    runs: Iterable[RunView], now: float, orgs: LabelCap, projects: LabelCap
) -> Iterator[Metric]:
    """``cascade_tasks_held`` and ``cascade_task_hold_age_seconds`` by org and project: the
    live runs' tasks held for a decision, and the oldest one's age (0 for the projects of the
    runs the reader holds that hold none). A pair whose org or project is beyond its label's
    cap is counted under ``_other`` for both."""
    count: dict[tuple[str, str], int] = {}
    oldest: dict[tuple[str, str], float] = {}
    for run in runs:  # every project the reader holds a run of has its series: 0 when none
        if orgs.admits(run.org_id) and projects.admits(run.project_id):
            key = (label_value(run.org_id), label_value(run.project_id))
        else:
            key = (OTHER, OTHER)
        live = not run.finished and run.count("HELD")
        held = run.held_tasks() if live else []  # the longest held first
        count[key] = count.get(key, 0) + len(held)
        oldest.setdefault(key, 0.0)
        if held:
            oldest[key] = max(oldest[key], now - held[0].since)
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
    for key in sorted(count):
        tasks.add_metric(list(key), count[key])
        ages.add_metric(list(key), max(0.0, oldest[key]))
    yield tasks
    yield ages
