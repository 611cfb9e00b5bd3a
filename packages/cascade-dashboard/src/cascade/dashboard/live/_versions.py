"""What changed when: the model version each run, task, engine and constraint last changed at.

The dashboard's model counts every message it folds in (its ``version``); these record, per
thing a page shows, the version it last changed at, so that a page's stream sends only what
changed since what it holds (``_deltas``). Removals need no record: a page's stream knows what
it sent, and what is gone from the model is gone from its view.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["SEEN_STEP", "EntityVersions", "TaskLog"]

SEEN_STEP = 1.0
"""An engine's ``last_seen`` moving forward counts as a change once per this many seconds:
a busy engine's every event would otherwise make it change at every message."""


@dataclass(eq=False)
class TaskLog:
    """One run's changes: when its log began, its summary's last change, each task's.

    ``versions`` is in the order of the changes (a task that changes again moves to the end),
    so what changed after a version is read from its end, never by scanning every task.
    """

    born: int
    """The model version this log began at: a page that followed an earlier life of the run
    (forgotten, then heard of again) starts over."""
    changed: int
    """The version of the run summary's last change."""
    reset: int = 0
    """Tasks may have left the run's detail at this version (a run with more tasks than its
    timelines keep, compacted once ended): a page that followed it from before starts over."""
    versions: dict[str, int] = field(default_factory=dict)
    json: dict[str, bytes] = field(default_factory=dict)
    """Each task's detail as JSON, kept until it changes: every page of the run shares it."""
    summary: tuple[int, bytes] | None = None
    """The run's summary as JSON, and the version it was built at."""

    def touch(self, task_id: str, version: int) -> None:
        """The task ``task_id`` changed at ``version``."""
        self.versions.pop(task_id, None)
        self.versions[task_id] = version
        self.json.pop(task_id, None)

    def since(self, version: int) -> list[tuple[str, int]]:
        """The tasks changed after ``version`` with their versions, the earliest first."""
        changed = []
        for task_id, at in reversed(self.versions.items()):
            if at <= version:
                break
            changed.append((task_id, at))
        changed.reverse()
        return changed


@dataclass(eq=False)
class EntityVersions:
    """The versions engines and constraints last changed at, and of the lists' order."""

    engines: dict[str, int] = field(default_factory=dict)
    engine_status: dict[str, int] = field(default_factory=dict)
    """The version of each engine's last status message: its runs' ``partial`` says whether
    it is gone, so their summaries change with it."""
    constraints: dict[str, int] = field(default_factory=dict)
    runs_order: int = 0
    """Bumped when a run appears, goes, or starts or stops running: the runs' order may move."""
    engines_order: int = 0
    """Bumped when an engine appears or goes."""
    _seen: dict[str, float | None] = field(default_factory=dict)
    _json: dict[str, tuple[int, bytes]] = field(default_factory=dict)

    def engine_heard(self, source: str, last_seen: float | None, version: int) -> None:
        """An engine's message arrived: a change if it is new, or its ``last_seen`` moved
        on by :data:`SEEN_STEP` since the last change counted."""
        if source not in self.engines:
            self.engines_order = version
        else:
            before = self._seen.get(source)
            if last_seen is None or (before is not None and last_seen - before < SEEN_STEP):
                return
        self.engines[source] = version
        self._seen[source] = last_seen

    def engine_changed(self, source: str, last_seen: float | None, version: int) -> None:
        """An engine's status message arrived (or cleared it)."""
        if source not in self.engines:
            self.engines_order = version
        self.engines[source] = self.engine_status[source] = version
        self._seen[source] = last_seen

    def engine_summarised(self, source: str, version: int) -> None:
        """An engine's summary changed (its runs' rows are the summary's, not its status)."""
        if source not in self.engines:
            self.engines_order = version
        self.engines[source] = version

    def forget_engines(self, kept: dict[str, Any], version: int) -> None:
        """Drop what is kept of engines no longer in ``kept`` (the model's)."""
        gone = [source for source in self.engines if source not in kept]
        if gone:
            self.engines_order = version
        for source in gone:
            for table in (self.engines, self.engine_status, self._seen, self._json):
                table.pop(source, None)

    def engine_json(self, source: str, build: Any) -> bytes:
        """The engine's JSON, built by ``build()`` once per change of it."""
        version = self.engines.get(source, 0)
        kept = self._json.get(source)
        if kept is None or kept[0] != version:
            kept = self._json[source] = (version, build())
        return kept[1]
