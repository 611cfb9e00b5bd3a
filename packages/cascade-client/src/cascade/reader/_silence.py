"""Telemetry an engine sends that never reaches this view: what a broker's ACL drops.

Nobody tells a reader that the broker dropped what it would have read, so a view can only tell
from what does arrive. Two kinds of evidence, each reliable on its own:

- mosquitto closes an MQTT 3.1.1 engine's connection at a denied QoS 1 publish (RabbitMQ at
  any), and the engine comes back at once: its will, its ``online``, its will again.
  :data:`FLAPS` wills received live within :data:`FLAP_WINDOW` seconds.
- A broker that drops a denied publish without a word lets the engine's summary through,
  and the summary counts its runs' events (``last_seq`` per run). Two summaries this view
  received live, the later counting events of runs whose topics this view subscribes to,
  while none of the engine's telemetry came since the earlier one: those events were sent
  while the view listened, on topics it reads, and did not arrive. Said
  :data:`SILENT_AFTER` seconds later (an event may come after the summary that counts it,
  on a broker that does not keep one publisher's messages in order), and no more once
  anything of the engine's telemetry arrives.
"""

from __future__ import annotations

from collections.abc import Iterable

from cascade.interfaces import events_topic, validate_filter
from cascade.interfaces.summaries import EngineSummary
from cascade.interfaces.wire import levels_match

from ._views import EngineView

__all__ = [
    "FLAPS",
    "FLAP_WINDOW",
    "SILENT_AFTER",
    "note_summary",
    "note_will",
    "silence_line",
    "silent_engines",
]

SILENT_AFTER = 5.0
"""Seconds after a summary counts events this view should have had and did not, before the
view says so: an honest broker delivers them before or within moments of that summary."""


FLAPS = 3
"""Wills of one source, received live within :data:`FLAP_WINDOW` seconds, that say its
connection is closed as soon as it is made."""

FLAP_WINDOW = 10.0
"""Seconds within which :data:`FLAPS` wills of one source are taken for a broker that closes
its connection (an engine reconnects within a second; a flaky network rarely drops three
connections in ten seconds). Said while the last of them is under a minute old."""

_FLAP_SAID_FOR = 60.0


def note_will(engine: EngineView, now: float) -> None:
    """``engine``'s will arrived live at ``now``: its last :data:`FLAPS` are kept."""
    engine.wills.append(now)
    del engine.wills[:-FLAPS]


def _flapping(engine: EngineView, now: float) -> bool:
    wills = engine.wills
    return (
        len(wills) >= FLAPS
        and wills[-1] - wills[-FLAPS] <= FLAP_WINDOW
        and now - wills[-1] <= _FLAP_SAID_FOR
    )


def _sent_since(
    before: EngineSummary, after: EngineSummary, filters: Iterable[str], prefix: str
) -> tuple[int, str | None]:
    """Events ``after`` counts beyond ``before`` of the listed runs whose events topic one
    of ``filters`` matches, and the first such run's ``org/project``."""
    patterns = [validate_filter(pattern).split("/") for pattern in filters]
    sent, where = 0, None
    if not patterns:  # this view reads no telemetry (a fleet's dashboard with no run open)
        return sent, where
    earlier = {run.run_id: run.last_seq for run in before.listed}
    for run in after.listed:
        grown = run.last_seq - earlier.get(run.run_id, 0)
        if grown <= 0:
            continue
        topic = events_topic(run.org_id, run.project_id, run.run_id, prefix).split("/")
        if any(levels_match(pattern, topic) for pattern in patterns):
            sent += grown
            where = where or f"{run.org_id}/{run.project_id}"
    return sent, where


def note_summary(
    engine: EngineView,
    before: EngineSummary | None,
    before_heard: float | None,
    retained: bool,
    filters: Iterable[str],
    prefix: str,
    now: float,
) -> None:
    """``engine``'s summary just arrived (``engine.summary``; ``before`` the one this view had,
    received at ``before_heard``): note the events it counts that this view should have
    received (see the module) and did not."""
    after = engine.summary
    if after is None or before is None or before_heard is None or retained:
        return
    heard = engine.telemetry_at
    if heard is not None and heard >= before_heard:
        return  # its telemetry reaches this view
    sent, where = _sent_since(before, after, filters, prefix)
    if not sent:
        return
    if engine.silent_since is None:
        engine.silent_since = now
    engine.unheard += sent
    engine.unheard_where = engine.unheard_where or where


def _silent(engine: EngineView, now: float) -> bool:
    since = engine.silent_since
    # a source that never announced a status is unconfirmed (counted_summary): summaries alone,
    # which anyone who can publish may send, never make an engine said silent
    return since is not None and now - since >= SILENT_AFTER and engine.status is not None


def silent_engines(engines: Iterable[EngineView], now: float) -> list[EngineView]:
    """The engines whose telemetry does not reach this view, by source: their connection
    closed :data:`FLAPS` times within :data:`FLAP_WINDOW` seconds, or for
    :data:`SILENT_AFTER` seconds none of the events their summary counted arrived (of the
    engines that announced a status: summaries alone prove no engine)."""
    return sorted(
        (engine for engine in engines if _flapping(engine, now) or _silent(engine, now)),
        key=lambda engine: engine.source,
    )


def silence_line(engine: EngineView) -> str:
    """One line naming the silent engine and the likely causes (its ``source`` as received:
    a view makes it inert)."""
    if engine.silent_since is None:  # flapping
        return (
            f"{engine.source}'s connection is closed as soon as it is made "
            f"({len(engine.wills)} wills within {FLAP_WINDOW:.0f} s), so its telemetry never "
            "arrives: the broker likely refuses what it publishes (under `cascade acl`'s ACL an "
            "engine's connector needs sourced_topics=True and its login as source_id)"
        )
    where = engine.unheard_where or "its org/project"
    return (
        f"no telemetry from {engine.source} reached this view, though its summary counts "
        f"{engine.unheard:,} events sent since: the broker's ACL likely drops them (under "
        "`cascade acl`'s ACL an engine's connector needs sourced_topics=True and its login as "
        f"source_id), or this login may not read telemetry of {where}"
    )
