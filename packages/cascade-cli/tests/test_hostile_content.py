"""What any publisher sends is inert and bounded in the views: escapes, sizes, lengths."""

from __future__ import annotations

import io
import json
import re

from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from cascade.cli.rendering import render_status, render_watch, status_json
from cascade.interfaces import (
    Envelope,
    Message,
    StatusMessage,
    TaskStateEvent,
    constraint_topic,
    encode_payload,
    events_topic,
    status_topic,
)
from cascade.reader import ReaderModel, inert

MAX_STATUS_PAYLOAD_BYTES = 16 * 1024  # the protocol's bound, as docs/protocol.md states it
MAX_TELEMETRY_PAYLOAD_BYTES = 256 * 1024

_ACTIVE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_MARK = "…[cut]"


@given(st.text(st.characters(codec=None)), st.integers(min_value=1, max_value=300))
def test_inert_text_has_nothing_a_terminal_acts_on(text: str, limit: int) -> None:
    """Any text comes out without control characters, overrides or surrogates, at most
    ``limit`` characters and the mark; short, plain text comes out as it is."""
    shown = inert(text, limit)
    assert _ACTIVE.search(shown) is None
    assert len(shown) <= limit + len(_MARK)
    if len(text) <= limit and _ACTIVE.search(text) is None:
        assert shown == text
    else:
        assert shown.endswith(_MARK) or shown != text


def test_the_reported_sequences_are_shown_as_text() -> None:
    """The issue's scope: its clear-screen and title sequences are visible, not obeyed."""
    shown = inert("task:\x1b[2J\x1b]0;PWNED\x1b\\", 200)
    assert shown == "task:\\x1b[2J\\x1b]0;PWNED\\x1b\\"
    assert inert("a\x9b2Jb\u202ec", 200) == "a\\x9b2Jb\\u202ec"


def _raw(topic: str, payload: Envelope | StatusMessage) -> Message:
    raw = encode_payload(payload)
    return Message(topic, json.loads(raw), raw)


def _task(name: str, error: str = "", run_id: str = "r1") -> Message:
    body = TaskStateEvent(task_id="t1", task_name=name, state="FAILED", error=error)
    envelope = Envelope(run_id=run_id, org_id="o", project_id="p", source="s", body=body)
    return _raw(events_topic("o", "p", run_id), envelope)


def test_oversized_messages_are_counted_and_change_nothing() -> None:
    """A message over its kind's bound is not read; the views say how many were ignored (the
    text views, and status --json)."""
    state = ReaderModel()
    state.apply(_task("x" * MAX_TELEMETRY_PAYLOAD_BYTES))
    reason = "y" * MAX_STATUS_PAYLOAD_BYTES
    state.apply(_raw(status_topic("e1"), StatusMessage(status="online", reason=reason)))
    assert (state.oversized, state.rejected) == (2, 0)
    assert not state.runs
    assert not state.engines
    for view in (render_watch(state), render_status(state)):
        out = io.StringIO()
        Console(file=out, width=120).print(view)
        assert "2 oversized messages ignored" in out.getvalue()
    assert status_json(state)["ignored"] == {"malformed": 0, "oversized": 2}


def test_long_fields_are_kept_cut() -> None:
    """Names, errors and reasons within the bounds are kept cut to a few kilobytes, marked."""
    state = ReaderModel()
    state.apply(_task("n" * 100_000, error="E" * 100_000))
    reason = "r" * 10_000
    state.apply(_raw(status_topic("e1"), StatusMessage(status="online", reason=reason)))
    task = state.runs["r1"].tasks["t1"]
    assert len(task.name) < 300
    assert task.name.endswith(_MARK)
    assert len(task.error) < 2100
    assert task.error.endswith(_MARK)
    status = state.engines["e1"].status
    assert status is not None
    assert status.reason is not None
    assert len(status.reason) < 300
    assert status.reason.endswith(_MARK)
    out = io.StringIO()
    Console(file=out, width=200).print(render_watch(state))
    assert len(out.getvalue()) < 5_000


def test_status_json_carries_any_scope_escaped() -> None:
    """A retained constraint whose scope holds a lone surrogate or an escape (valid JSON on the
    wire) is listed by `status --json` as ASCII JSON, where it cannot act on a terminal."""
    state = ReaderModel()
    scope = "task:\ud800\x1b]0;T\x07"
    payload = {"id": "x", "scope": scope, "type": "pause", "params": {}}
    raw = json.dumps(payload).encode()
    topic = constraint_topic(scope, "pause")  # its own: readers take no other
    state.apply(Message(topic, json.loads(raw), raw, retain=True))
    line = json.dumps(status_json(state))
    assert line.isascii()
    assert json.loads(line)["constraints"][0]["scope"] == scope
