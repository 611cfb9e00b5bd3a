"""The served workflows the dashboard knows of: the serving processes' retained
announcements (``served/+``), kept as ``cascade.control`` keeps them, each with its source's
presence as the dashboard's own reader sees it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec

from cascade.control import Served, ServedHeard
from cascade.interfaces import Message
from cascade.reader import ReaderModel

__all__ = ["ServedWorkflows"]


class ServedWorkflows:
    """A callback on ``served/+`` (the hub subscribes it), and what it heard: who serves
    which workflow, online or not (:meth:`servers_of`, :meth:`listed`)."""

    def __init__(self, prefix: str, state: ReaderModel) -> None:
        self._heard = ServedHeard(prefix)
        self._state = state
        self.version = 0
        """Moves at each announcement taken (the page asks again when it moved)."""

    def __call__(self, message: Message) -> None:
        """Take one announcement (an empty one: its process stopped serving)."""
        self._heard(message)
        self.version += 1

    def _online(self, source: str) -> bool:
        engine = self._state.engines.get(source)
        return engine is None or engine.online

    def served(self, among: Iterable[tuple[str, str | None]] | None = None) -> list[Served]:
        """Every serving process heard of (of ``among``'s orgs and projects only, when given),
        with its presence, by source."""
        seen = None if among is None else set(among)
        return [
            Served(s.announcement, self._online(s.source))
            for s in self._heard.served()
            if seen is None
            or (s.announcement.org_id, None) in seen
            or (s.announcement.org_id, s.announcement.project_id) in seen
        ]

    def servers_of(
        self, workflow: str, among: Iterable[tuple[str, str | None]] | None = None
    ) -> list[Served]:
        """The processes that serve ``workflow`` (of ``among``'s, when given)."""
        return [s for s in self.served(among) if s.workflow(workflow) is not None]

    def listed(self, among: Iterable[tuple[str, str | None]] | None = None) -> list[dict[str, Any]]:
        """Each workflow served (by name), as ``GET /api/workflows`` answers it: its ``doc``
        and ``params`` (as its first server announces them), its ``servers``: source,
        org, project, online, running, queued, capacity, shared; and the ``triggers`` that
        start it, one per server: name, kind, what it starts on, source (and its org and
        project), online, paused (by, why, until: epoch seconds), the events heard, the runs
        started, the last event and run, waiting, dropped (docs/triggers.md)."""
        by_name: dict[str, dict[str, Any]] = {}
        for served in self.served(among):
            said = served.announcement
            for workflow in said.workflows:
                entry = by_name.setdefault(
                    workflow.name,
                    {
                        "name": workflow.name,
                        "doc": workflow.doc,
                        "params": msgspec.to_builtins(workflow.params),
                        "servers": [],
                        "triggers": [],
                    },
                )
                entry["servers"].append(
                    {
                        "source": said.source,
                        "org_id": said.org_id,
                        "project_id": said.project_id,
                        "online": served.online,
                        "running": said.running,
                        "queued": said.queued,
                        "capacity": said.capacity,
                        "shared": said.shared,
                    }
                )
                entry["triggers"].extend(
                    {
                        "name": t.name,
                        "kind": t.kind,
                        "on": t.on,
                        "source": said.source,
                        "org_id": said.org_id,
                        "project_id": said.project_id,
                        "online": served.online,
                        "paused": t.paused,
                        "paused_by": t.paused_by,
                        "paused_reason": t.paused_reason,
                        "paused_until": t.paused_until or None,
                        "events": t.events,
                        "started": t.started,
                        "last_event": t.last_event,
                        "last_run": t.last_run,
                        "waiting": t.waiting,
                        "dropped": t.dropped,
                    }
                    for t in said.triggers
                    if t.workflow == workflow.name
                )
        return [by_name[name] for name in sorted(by_name)]
