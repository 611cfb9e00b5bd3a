"""`cascade status --json`: the state as one JSON object, every time in ISO 8601 with an offset."""

from __future__ import annotations

import fnmatch
import json
import re
from datetime import datetime, timezone
from typing import Any

import msgspec

from cascade.reader import LAST_TIMESTAMP, ReaderModel, parse_timestamp, refused_by_source

from ..plumbing._view_options import STATUS_JSON_ENGINES
from ._fleet_rank import needs_a_look
from ._summary_json import fleet_json, summary_json

__all__ = ["ascii_json", "iso_time", "status_json"]

_PROVENANCE = ("reason", "issued_by", "issued_at")


def iso_time(ts: float | None) -> str | None:
    """Epoch seconds as ISO 8601 in UTC (``2026-11-20T23:11:05.540744+00:00``).

    ``None`` for no time, and for times beyond year 9999, which docs/protocol.md
    treats as no expiry.
    """
    if ts is None or ts > LAST_TIMESTAMP:
        return None
    try:
        return datetime.fromtimestamp(ts, timezone.utc).isoformat()
    except (OverflowError, OSError, ValueError):
        return None


_NOT_ASCII = re.compile("[^\x00-\x7f]+")


def _escaped(match: re.Match[str]) -> str:
    return json.dumps(match[0])[1:-1]  # \uXXXX, astral characters as surrogate pairs


def ascii_json(value: Any) -> str:
    """``value`` as ASCII JSON, as ``json.dumps`` writes it (every character beyond ASCII
    escaped), at msgspec's speed; by ``json.dumps`` when a text holds a lone surrogate (which
    only ``json.dumps`` can write)."""
    try:
        text = msgspec.json.encode(value).decode()
    except (msgspec.EncodeError, UnicodeEncodeError):
        return json.dumps(value)
    return text if text.isascii() else _NOT_ASCII.sub(_escaped, text)


def status_json(
    state: ReaderModel,
    offline_max_age: float | None = None,
    *,
    most: int | None = STATUS_JSON_ENGINES,
    sources: str | None = None,
) -> dict[str, Any]:
    """Engines (``hidden_engines``: how many were left out) and the constraints in force.

    An engine has ``source``, ``status`` (``null`` when only its telemetry was
    seen), ``session``, ``reason``, ``ts`` (its status message's time) and
    ``last_seen``, ``conflict`` (and ``conflict_session`` when true: two live
    engines share the source id); a constraint its payload's fields and ``topic``, with
    ``expires_at`` and ``issued_at`` as times, and ``reason``, ``issued_by`` and ``issued_at``
    ``null`` when its writer did not say; ``missed``, per source, the events this view saw
    gaps for (``events``, ``since``; only views that read telemetry see any); ``refused``, what
    it refused, per source and reason; ``ignored``, the messages it did not read at all
    (``malformed``: not the protocol; ``oversized``: beyond their kind's bound).
    ``ended_cleanly``: how many of the engines listed a table folds into a count (they ended
    cleanly a while ago: :meth:`~cascade.reader.ReaderModel.engine_rows`); JSON
    lists them (within ``most``). Every time is ISO 8601 with an offset, or ``null``. An engine's
    ``summary`` is its latest
    summary as it sent it, every field present (``null``: it publishes none), and ``fleet``
    (:func:`~._summary_json.fleet_json`) adds up every engine heard of, hidden ones too.

    ``sources`` (a glob, as ``fnmatch`` reads it) lists only the engines whose source matches;
    beyond ``most`` engines (``None``: no bound) only the ``most`` that need a look first
    (:func:`~._fleet_rank.needs_a_look`) are listed, still by source: ``engines_matching``
    says how many there were to list, ``engines_listed`` how many are.
    """
    shown, hidden = state.visible_engines(offline_max_age)
    folded = state.engine_rows(offline_max_age).folded
    if sources is not None:
        shown = [e for e in shown if fnmatch.fnmatchcase(e.source, sources)]
    matching = len(shown)
    if most is not None and len(shown) > most:
        shown = sorted(needs_a_look(shown, most), key=lambda e: e.source)
    engines = []
    for engine in shown:
        status = engine.status
        engines.append(
            {
                "source": engine.source,
                "status": status.status if status else None,
                "session": status.session if status else None,
                "reason": status.reason if status else None,
                "ts": iso_time(parse_timestamp(status.ts)) if status else None,
                "last_seen": iso_time(engine.last_seen),
                "conflict": engine.conflict,
                **({"conflict_session": engine.conflict_session} if engine.conflict else {}),
                "summary": None if engine.summary is None else summary_json(engine.summary),
            }
        )
    constraints = []
    for topic, constraint in state.active_constraints():
        # its fields as they are (anyone's text, lone surrogates too): json.dumps escapes them
        fields = {name: getattr(constraint, name) for name in constraint.__struct_fields__}
        for name in _PROVENANCE:  # null when the writer did not say (older writers, other tools)
            if fields[name] is msgspec.UNSET:
                fields[name] = None
        fields["expires_at"] = iso_time(constraint.expires_at)
        fields["issued_at"] = iso_time(fields["issued_at"])
        constraints.append({"topic": topic, **fields})
    missed = [
        {"source": source, "events": gaps.missed, "since": iso_time(gaps.since)}
        for source, gaps in sorted(state.gaps.by_source.items())
        if gaps.missed
    ]
    return {
        "fleet": fleet_json(state.fleet()),
        "engines": engines,
        "engines_matching": matching,
        "engines_listed": len(engines),
        "hidden_engines": hidden,
        "ended_cleanly": len(folded),
        "constraints": constraints,
        "missed": missed,
        "refused": refused_by_source(state),
        "ignored": {"malformed": state.rejected, "oversized": state.oversized},
    }
