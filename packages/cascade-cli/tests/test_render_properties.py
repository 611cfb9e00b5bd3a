"""No valid message breaks a renderer: the views over every schema (hypothesis)."""

from __future__ import annotations

import io
import json
import re
from datetime import datetime, timezone
from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.console import Console

from cascade.cli.rendering import render_status, render_watch, status_json
from cascade.interfaces import (
    Constraint,
    Envelope,
    Heartbeat,
    LifecycleEvent,
    Message,
    StatusMessage,
    TaskStateEvent,
    constraint_topic,
    events_topic,
    heartbeat_topic,
    status_topic,
)
from cascade.reader import ReaderModel

_MAX = 1e15  # the schemas' bound on every number
# rich markup, terminal escapes (CSI, OSC title and hyperlink, DCS, 8-bit CSI), bidi overrides,
# lone surrogates, wide or combining characters as well as any text
_hostile = st.sampled_from(
    ["[/]", "[bold]x", "[/x]", "[link=a]", "\x1b[31m", "界", "e\u0301", "\n",
     "\x1b[2J", "\x1b]0;PWNED\x1b\\", "\x1b]8;;http://x\x07a\x1b]8;;\x07", "\x1bP1$r\x1b\\",
     "\x9b2J", "\u202eevil", "\ud800", "\r\x08\x07"]
)  # fmt: skip
_controls = st.characters(codec=None, categories=["Cc", "Cs", "Cf"])
names = st.one_of(
    _hostile,
    st.text(min_size=1, max_size=40),
    st.text(st.one_of(_controls, st.characters()), min_size=1, max_size=40),
)
texts = st.one_of(st.just(""), names)
counts = st.integers(min_value=0, max_value=2**63 - 1)
seconds = st.floats(min_value=0, max_value=_MAX, allow_nan=False)
timestamps = st.one_of(
    st.none(),
    texts,
    st.datetimes(timezones=st.sampled_from([timezone.utc, None])).map(datetime.isoformat),
)

lifecycles = st.builds(
    LifecycleEvent,
    event=st.sampled_from(["ENGINE_STARTED", "ENGINE_STOPPED"]),
    status=st.sampled_from([None, "Succeeded", "Failed"]),
    error=st.one_of(st.none(), texts),
    tasks=st.one_of(st.none(), counts),
)
task_states = st.builds(
    TaskStateEvent,
    task_id=st.sampled_from(["a", "b", "c"]) | texts,
    task_name=texts,
    state=st.sampled_from(["RUNNING", "COMPLETED", "FAILED", "SKIPPED", "BLOCKED", "RETRYING"]),
    duration_ms=seconds,
    error=texts,
)
heartbeats = st.builds(
    Heartbeat,
    running=counts,
    completed=counts,
    failed=counts,
    skipped=counts,
    blocked=counts,
    pending=counts,
    dropped_telemetry=counts,
)


@st.composite
def telemetry(draw: st.DrawFn) -> Message:
    body = draw(st.one_of(lifecycles, task_states, heartbeats))
    ts = draw(texts | st.datetimes().map(lambda d: d.replace(tzinfo=timezone.utc).isoformat()))
    envelope = Envelope(
        ts=ts,
        run_id=draw(st.sampled_from(["r1", "r2"]) | names),
        org_id=draw(names),
        project_id=draw(names),
        source=draw(st.sampled_from(["s1", "s2"]) | texts),
        body=body,
    )
    make_topic = heartbeat_topic if isinstance(body, Heartbeat) else events_topic
    topic = make_topic(envelope.org_id, envelope.project_id, envelope.run_id)
    return _message(topic, envelope, draw(st.booleans()))


@st.composite
def statuses(draw: st.DrawFn) -> Message:
    status = StatusMessage(
        status=draw(st.sampled_from(["online", "offline"])),
        source=draw(st.one_of(st.none(), names)),
        session=draw(st.one_of(st.none(), counts)),
        ts=draw(timestamps),
        reason=draw(st.one_of(st.none(), texts)),
    )
    return _message(status_topic(draw(names)), status, draw(st.booleans()))


scopes = st.one_of(st.just("global"), names.map(lambda glob: f"task:{glob}"))
expiries = st.one_of(st.none(), seconds, st.sampled_from([1e14, 253402300800.0, 0.0]))


@st.composite
def constraints(draw: st.DrawFn) -> Message:
    scope = draw(scopes)
    expires_at = draw(expiries)
    kind = draw(st.sampled_from(["pause", "concurrency", "rate_limit"]))
    if kind == "pause":
        constraint = Constraint.pause(scope, expires_at=expires_at)
    elif kind == "concurrency":
        limit = draw(st.integers(min_value=0, max_value=2**31 - 1))
        constraint = Constraint.concurrency(scope, limit, expires_at=expires_at)
    else:
        rate = draw(
            st.floats(min_value=1e-9, max_value=_MAX)
            | st.builds("{}/{}".format, st.integers(1, 10**6), st.sampled_from("smh"))
        )
        capacity = draw(st.one_of(st.none(), st.floats(min_value=1, max_value=_MAX)))
        constraint = Constraint.rate_limit(scope, rate, capacity=capacity, expires_at=expires_at)
    topic = constraint_topic(scope, kind)
    if draw(st.booleans()):
        return _message(topic, None, True)  # cleared
    return _message(topic, constraint, True)


def _message(topic: str, payload: Any, retain: bool) -> Message:
    # through JSON's \\u escapes, as a lone surrogate travels on the wire
    decoded = json.loads(json.dumps(msgspec.to_builtins(payload))) if payload is not None else {}
    return Message(topic=topic, payload=decoded, retain=retain)


messages = st.lists(st.one_of(telemetry(), statuses(), constraints()), max_size=25)


# What rich itself writes to a terminal: colours and styles (SGR) only.
_SGR = re.compile("\x1b\\[[0-9;]*m")
# What a terminal acts on: C0 but the newline, DEL, C1, and what reorders or hides text.
_ACTIVE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _draw(renderable: Any, width: int) -> str:
    """What a terminal receives for ``renderable``: it must be inert."""
    out = io.StringIO()
    console = Console(file=out, width=width, force_terminal=True, color_system="truecolor")
    console.print(renderable)
    text = out.getvalue()
    text.encode("utf-8")  # no lone surrogate: it would end the command with an error
    active = _ACTIVE.search(_SGR.sub("", text))
    assert active is None, f"{active[0]!r} reaches the terminal in {text!r}"
    return text


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    batch=messages,
    now=st.floats(min_value=0, max_value=4e9),
    connected=st.lists(st.booleans(), max_size=3),
    max_age=st.one_of(st.none(), st.floats(min_value=0, max_value=1e12)),
    width=st.integers(min_value=20, max_value=200),
)
def test_no_valid_message_breaks_a_view(
    batch: list[Message],
    now: float,
    connected: list[bool],
    max_age: float | None,
    width: int,
) -> None:
    """Any sequence of valid messages is accepted and rendered by watch, status and --json."""
    state = ReaderModel(clock=lambda: now, keep_runs=3, keep_for=60.0)
    for message in batch:
        state.apply(message)
    for up in connected:
        state.observe_connection(up)
    state.prune()
    assert state.rejected == 0
    _draw(render_watch(state, offline_max_age=max_age, broker="h:1"), width)
    _draw(render_status(state, offline_max_age=max_age), width)
    document = json.loads(json.dumps(status_json(state, max_age)))
    for engine in document["engines"]:
        for key in ("ts", "last_seen"):
            if engine[key] is not None:
                assert datetime.fromisoformat(engine[key]).utcoffset() is not None
    for constraint in document["constraints"]:
        if constraint["expires_at"] is not None:
            assert datetime.fromisoformat(constraint["expires_at"]).utcoffset() is not None


@settings(max_examples=200, deadline=None)
@given(batch=st.lists(telemetry(), max_size=40))
def test_progress_never_goes_back(batch: list[Message]) -> None:
    """Whatever arrives, a run's finished count and its progress bar only move forward."""
    state = ReaderModel(keep_runs=None, keep_for=None)
    seen: dict[str, tuple[int, float]] = {}
    for message in batch:
        state.apply(message)
        for run_id, run in state.runs.items():
            done, progress = run.finished_tasks, run.progress
            before_done, before_progress = seen.get(run_id, (0, 0.0))
            assert done >= before_done
            if progress is not None:
                assert progress >= before_progress
                seen[run_id] = (done, progress)
            else:
                seen[run_id] = (done, before_progress)


def test_far_expiry_is_shown_as_such() -> None:
    """A constraint expiring beyond year 9999 (1e14) is shown as never expiring."""
    state = ReaderModel(clock=lambda: 1_800_000_000.0)
    pause = Constraint.pause("global", expires_at=1e14)
    state.apply(_message(constraint_topic("global", "pause"), pause, True))
    text = _draw(render_status(state), 120)
    assert "never (beyond year 9999)" in text
    assert status_json(state)["constraints"][0]["expires_at"] is None
